/* SPDX-License-Identifier: MIT */
/* test_memcap.c - the overall memory ceiling: charges up to the limit, never past it, from any thread. */
#include <pthread.h>
#include <string.h>

#include "testhelp.h"
#include "memcap.h"

static void
memcap_charges_up_to_the_limit_and_refuses_past_it(void **state)
{
	struct memcap	 mc;
	char		 msg[128];

	memcap_init(&mc, 1000);
	assert_int_equal(memcap_charge(&mc, 600), 0);
	assert_int_equal(memcap_charge(&mc, 400), 0);
	assert_int_equal(memcap_used(&mc), 1000);
	assert_int_equal(memcap_charge(&mc, 1), -1);
	assert_int_equal(memcap_used(&mc), 1000);
	assert_int_equal(atomic_load(&mc.mc_refused), 1);
	memcap_release(&mc, 400);
	assert_int_equal(memcap_charge(&mc, 401), -1);
	assert_int_equal(memcap_charge(&mc, 400), 0);
	assert_int_equal(atomic_load(&mc.mc_peak), 1000);
	memcap_message(&mc, msg, sizeof(msg));
	assert_non_null(strstr(msg, "1000 of 1000 bytes"));
	assert_non_null(strstr(msg, "--max-memory"));
}

static void
memcap_refuses_a_charge_larger_than_the_limit_without_wrapping(void **state)
{
	struct memcap	 mc;

	memcap_init(&mc, 1000);
	assert_int_equal(memcap_charge(&mc, 10), 0);
	assert_int_equal(memcap_charge(&mc, (size_t)-1), -1);
	assert_int_equal(memcap_charge(&mc, (size_t)-5), -1);
	assert_int_equal(memcap_used(&mc), 10);
	memcap_release(&mc, 20);	/* more than held: floors at 0 */
	assert_int_equal(memcap_used(&mc), 0);
}

static void
memcap_zero_limit_means_no_ceiling(void **state)
{
	struct memcap	 mc;

	memcap_init(&mc, 0);
	assert_int_equal(memcap_charge(&mc, (size_t)1 << 40), 0);
	assert_int_equal(memcap_used(&mc), (size_t)1 << 40);
}

static size_t
reclaim_half(void *arg, size_t want)
{
	struct memcap	*mc = arg;
	size_t		 n = memcap_used(mc) / 2;

	(void)want;
	memcap_release(mc, n);
	return n;
}

static void
memcap_reclaims_once_when_a_charge_does_not_fit(void **state)
{
	struct memcap	 mc;

	memcap_init(&mc, 1000);
	memcap_set_reclaim(&mc, reclaim_half, &mc);
	assert_int_equal(memcap_charge(&mc, 800), 0);
	/* 800 + 400 > 1000: the hook frees 400, then it fits */
	assert_int_equal(memcap_charge(&mc, 400), 0);
	assert_int_equal(memcap_used(&mc), 800);
	assert_int_equal(atomic_load(&mc.mc_refused), 0);
	/* memcap_try never reclaims */
	assert_int_equal(memcap_try(&mc, 300), -1);
	assert_int_equal(memcap_used(&mc), 800);
	/* a charge larger than the ceiling does not reclaim at all */
	assert_int_equal(memcap_charge(&mc, 2000), -1);
	assert_int_equal(memcap_used(&mc), 800);
	assert_int_equal(atomic_load(&mc.mc_refused), 2);
}

static void
memcap_client_share_leaves_the_daemon_its_reserve(void **state)
{
	size_t	 mib = 1024 * 1024;

	assert_int_equal(memcap_client_share(256 * mib), 224 * mib);
	assert_int_equal(memcap_client_share(64 * mib), 32 * mib);
	assert_int_equal(memcap_client_share(4 * mib), 2 * mib);
}

static struct memcap	 shared_mc;

static void *
charge_many(void *arg)
{
	size_t	*ok = arg;

	for (int i = 0; i < 100000; i++)
		if (memcap_charge(&shared_mc, 3) == 0)
			(*ok)++;
	return NULL;
}

static void
memcap_threads_never_pass_the_limit_together(void **state)
{
	pthread_t	 t[4];
	size_t		 ok[4] = { 0 }, sum = 0;

	memcap_init(&shared_mc, 100000);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, charge_many, &ok[i]);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		sum += ok[i];
	}
	assert_int_equal(sum, 100000 / 3);
	assert_int_equal(memcap_used(&shared_mc), sum * 3);
	assert_true(atomic_load(&shared_mc.mc_peak) <= 100000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(memcap_charges_up_to_the_limit_and_refuses_past_it),
		cmocka_unit_test(memcap_refuses_a_charge_larger_than_the_limit_without_wrapping),
		cmocka_unit_test(memcap_zero_limit_means_no_ceiling),
		cmocka_unit_test(memcap_client_share_leaves_the_daemon_its_reserve),
		cmocka_unit_test(memcap_reclaims_once_when_a_charge_does_not_fit),
		cmocka_unit_test(memcap_threads_never_pass_the_limit_together),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
