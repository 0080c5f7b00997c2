/* SPDX-License-Identifier: MIT */
/*
 * snapcache.h - the snapshots one request reads (a fetch, a /metrics
 * scrape): one per source, taken when the request first needs it, so all
 * of a source's metrics in one answer come from the same snapshot. The
 * caller gives the slots; the cache lives on its stack for the request.
 */
#ifndef BT_SNAPCACHE_H
#define BT_SNAPCACHE_H

struct source;
struct snap;

struct snapcache_slot {
	struct source	*ss_src;
	struct snap	*ss_snap;
};

struct snapcache {
	struct snapcache_slot	*sc_slot;
	int			 sc_n, sc_max;
};

void		 snapcache_init(struct snapcache *c, struct snapcache_slot *slot,
		    int max);
/* src's snapshot (NULL when it has none), held until snapcache_release */
struct snap	*snapcache_get(struct snapcache *c, struct source *src);
void		 snapcache_release(struct snapcache *c);

#endif /* BT_SNAPCACHE_H */
