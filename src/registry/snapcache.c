/* SPDX-License-Identifier: MIT */
/*
 * snapcache.c - a request's snapshots, one per source (registry.h).
 * Threads: the one HTTP worker that owns the request; the snapshots are
 * immutable and reference-counted (registry.c).
 */
#include "registry.h"

void
snapcache_init(struct snapcache *c, struct snapcache_slot *slot, int max)
{
	c->sc_slot = slot;
	c->sc_n = 0;
	c->sc_max = max;
}

struct snap *
snapcache_get(struct snapcache *c, struct source *src)
{
	struct snapcache_slot	*last = &c->sc_slot[c->sc_max - 1];
	struct snap		*s;

	for (int i = 0; i < c->sc_n; i++)
		if (c->sc_slot[i].ss_src == src)
			return c->sc_slot[i].ss_snap;
	s = source_snap(src);
	if (c->sc_n < c->sc_max) {
		c->sc_slot[c->sc_n].ss_src = src;
		c->sc_slot[c->sc_n++].ss_snap = s;
	} else {
		/* more sources than slots: the last slot's snapshot goes */
		snap_release(last->ss_snap);
		last->ss_src = src;
		last->ss_snap = s;
	}
	return s;
}

void
snapcache_release(struct snapcache *c)
{
	for (int i = 0; i < c->sc_n; i++)
		snap_release(c->sc_slot[i].ss_snap);
	c->sc_n = 0;
}
