/* SPDX-License-Identifier: MIT */
/*
 * memcap.c - the overall memory ceiling: one atomic counter of the bytes
 * held for clients, charged before an allocation and released after the
 * free. A charge is a compare-and-swap loop, so two threads can never
 * both pass the ceiling with the last free bytes.
 */
#include <stdio.h>

#include "memcap.h"

size_t
memcap_client_share(size_t max_memory)
{
	if (max_memory >= 2 * MEMCAP_RESERVE)
		return max_memory - MEMCAP_RESERVE;
	return max_memory / 2;
}

void
memcap_init(struct memcap *mc, size_t limit)
{
	mc->mc_reclaim = NULL;
	mc->mc_reclaim_arg = NULL;
	atomic_init(&mc->mc_used, 0);
	atomic_init(&mc->mc_peak, 0);
	atomic_init(&mc->mc_refused, 0);
	mc->mc_limit = limit;
}

static void
note_peak(struct memcap *mc, size_t now)
{
	size_t	 peak = atomic_load(&mc->mc_peak);

	while (now > peak &&
	    !atomic_compare_exchange_weak(&mc->mc_peak, &peak, now))
		;
}

void
memcap_set_reclaim(struct memcap *mc, memcap_reclaim_fn fn, void *arg)
{
	mc->mc_reclaim = fn;
	mc->mc_reclaim_arg = arg;
}

/* 0 charged, -1 does not fit (nothing counted) */
static int
charge_once(struct memcap *mc, size_t n)
{
	size_t	 used = atomic_load(&mc->mc_used);

	do {
		if (mc->mc_limit != 0 &&
		    (n > mc->mc_limit || used > mc->mc_limit - n))
			return -1;
	} while (!atomic_compare_exchange_weak(&mc->mc_used, &used, used + n));
	note_peak(mc, used + n);
	return 0;
}

int
memcap_try(struct memcap *mc, size_t n)
{
	if (charge_once(mc, n) == 0)
		return 0;
	atomic_fetch_add(&mc->mc_refused, 1);
	return -1;
}

int
memcap_charge(struct memcap *mc, size_t n)
{
	if (charge_once(mc, n) == 0)
		return 0;
	if (mc->mc_reclaim != NULL && n <= mc->mc_limit &&
	    mc->mc_reclaim(mc->mc_reclaim_arg, n) > 0 &&
	    charge_once(mc, n) == 0)
		return 0;
	atomic_fetch_add(&mc->mc_refused, 1);
	return -1;
}

void
memcap_release(struct memcap *mc, size_t n)
{
	size_t	 used = atomic_load(&mc->mc_used);

	/* never below zero, even if a caller releases more than it holds */
	while (!atomic_compare_exchange_weak(&mc->mc_used, &used,
	    used >= n ? used - n : 0))
		;
}

size_t
memcap_used(struct memcap *mc)
{
	return atomic_load(&mc->mc_used);
}

void
memcap_message(struct memcap *mc, char *out, size_t len)
{
	snprintf(out, len, "memory limit reached: %zu of %zu bytes held for "
	    "clients (see --max-memory)", memcap_used(mc), mc->mc_limit);
}
