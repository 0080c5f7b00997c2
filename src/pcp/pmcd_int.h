/* SPDX-License-Identifier: MIT */
/*
 * pmcd_int.h - what the pmcd passthrough files of src/pcp/ share: the
 * lookup cache (pmcd_cache.c) and running one operation on a pooled
 * context (pmcd_run, pmcd.c). pmcd_names.c, pmcd_labels.c and
 * pmcd_values.c sit above both; the public pmcd_* functions are in
 * pcp.h. The calls run one way: names/labels/values -> pmcd.c ->
 * pmcd_cache.c.
 */
#ifndef BT_PMCD_INT_H
#define BT_PMCD_INT_H

#include <stddef.h>
#include <stdint.h>

#define PMCD_CACHE_MS		10000
#define PMCD_NEGCACHE_MS	2000

/* pmcd_cache.c: keys to values, with a time to live; never held across
   a libpcp call */
char	*pmcd_cache_get(const char *key, size_t *lenp);
void	 pmcd_cache_put(const char *key, const void *val, size_t len,
	    int64_t ttl);
void	 pmcd_cache_flush(void);

/* pmcd.c: one libpcp operation on a pooled context, made current */
typedef int (*pmcd_op_fn)(void *arg);
int	 pmcd_run(pmcd_op_fn op, void *arg);

#endif /* BT_PMCD_INT_H */
