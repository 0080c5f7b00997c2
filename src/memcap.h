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

struct memcap {
	_Atomic size_t		 mc_used;	/* bytes charged now */
	_Atomic size_t		 mc_peak;	/* highest mc_used seen */
	_Atomic uint64_t	 mc_refused;	/* charges refused */
	size_t			 mc_limit;	/* 0: no ceiling */
};

void	 memcap_init(struct memcap *mc, size_t limit);
/* 0: n bytes charged; -1: refused (nothing charged, mc_refused counted) */
int	 memcap_charge(struct memcap *mc, size_t n);
void	 memcap_release(struct memcap *mc, size_t n);
size_t	 memcap_used(struct memcap *mc);
/* "memory limit reached: N of M bytes held for clients (--max-memory)" */
void	 memcap_message(struct memcap *mc, char *out, size_t len);

#endif
