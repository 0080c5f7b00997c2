/* SPDX-License-Identifier: MIT */
/*
 * memcap.h - the overall memory ceiling (--max-memory): bytes the daemon
 * holds because a client asked (contexts, derived metrics, profiles,
 * request bodies and URLs, answers waiting to be read, control answers).
 * Each holder charges before it allocates and releases what it charged
 * when it frees; a charge that would pass the ceiling is refused and the
 * request answered 503. Lock-free (one atomic counter), any thread.
 * Dependency-free so it can be tested alone.
 */
#ifndef BT_MEMCAP_H
#define BT_MEMCAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Called when a charge of want bytes does not fit: frees what it can
 * (e.g. idle contexts of whoever holds the most) and returns the bytes
 * it released. Must not be called with a lock the hook takes.
 */
typedef size_t (*memcap_reclaim_fn)(void *arg, size_t want);

struct memcap {
	_Atomic size_t		 mc_used;	/* bytes charged now */
	_Atomic size_t		 mc_peak;	/* highest mc_used seen */
	_Atomic uint64_t	 mc_refused;	/* charges refused */
	size_t			 mc_limit;	/* 0: no ceiling */
	/* set once before any other thread starts, read-only after */
	memcap_reclaim_fn	 mc_reclaim;
	void			*mc_reclaim_arg;
};

/*
 * --max-memory is the process's ceiling: clients may make it hold that
 * less MEMCAP_RESERVE (32 MiB: libraries, the daemon's own data and the
 * allocator's slack), or half of a ceiling below 64 MiB.
 */
#define MEMCAP_RESERVE		((size_t)32 * 1024 * 1024)
size_t	 memcap_client_share(size_t max_memory);
void	 memcap_init(struct memcap *mc, size_t limit);
void	 memcap_set_reclaim(struct memcap *mc, memcap_reclaim_fn fn,
	    void *arg);
/*
 * 0: n bytes charged; -1: refused (nothing charged, mc_refused counted).
 * When n does not fit, the reclaim hook runs once and the charge is
 * tried again; memcap_try never reclaims (for callers holding a lock
 * the hook takes).
 */
int	 memcap_charge(struct memcap *mc, size_t n);
int	 memcap_try(struct memcap *mc, size_t n);
void	 memcap_release(struct memcap *mc, size_t n);
size_t	 memcap_used(struct memcap *mc);
/* "memory limit reached: N of M bytes held for clients (--max-memory)" */
void	 memcap_message(struct memcap *mc, char *out, size_t len);

#endif
