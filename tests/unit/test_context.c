/* SPDX-License-Identifier: MIT */
/* test_context.c - context ids, expiry, limits and instance profiles. */
#include <unistd.h>

#include "testhelp.h"
#include "bt_limits.h"
#include "memcap.h"
#include "registry.h"

#define INDOM	pmInDom_build(BT_DOMAIN, 5)

static void
context_ids_are_unique_31bit(void **state)
{
	struct ctxtab	*ct = ctx_new(1000);
	uint32_t	 ids[200];

	for (int i = 0; i < 200; i++) {
		assert_int_equal(ctx_create(ct, 5.0, &ids[i]), CTX_OK);
		assert_true(ids[i] > 0 && ids[i] <= 0x7fffffff);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(ids[i], ids[j]);
	}
	assert_int_equal(ctx_count(ct), 200);
	assert_int_equal(ctx_use(ct, ids[7], NULL, NULL), CTX_OK);
	assert_int_equal(ctx_use(ct, 0, NULL, NULL), CTX_UNKNOWN);
	ctx_free(ct);
}

static void
context_expires_after_polltimeout(void **state)
{
	struct ctxtab	*ct = ctx_new(10);
	uint32_t	 a, b;

	/* margins of 0.6 s around a 1 s polltimeout: a loaded 2-core CI
	   machine oversleeps a 120 ms usleep past a 200 ms one */
	assert_int_equal(ctx_create(ct, 1.0, &a), CTX_OK);
	assert_int_equal(ctx_create(ct, 30, &b), CTX_OK);
	usleep(400 * 1000);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_OK);	/* re-arms */
	usleep(400 * 1000);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_OK);
	usleep(1300 * 1000);
	assert_int_equal(ctx_gc(ct), 1);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_UNKNOWN);
	assert_int_equal(ctx_use(ct, b, NULL, NULL), CTX_OK);
	ctx_free(ct);
}

/* ctx_alive (control answers ask it) looks without re-arming the timer */
static void
context_alive_does_not_rearm(void **state)
{
	struct ctxtab	*ct = ctx_new(10);
	uint32_t	 a, b;

	assert_int_equal(ctx_create(ct, 1.0, &a), CTX_OK);
	assert_int_equal(ctx_create(ct, 30, &b), CTX_OK);
	assert_int_equal(ctx_alive(ct, a), 1);
	usleep(600 * 1000);
	assert_int_equal(ctx_alive(ct, a), 1);
	usleep(600 * 1000);	/* re-armed at 0.6 s it would live to 1.6 s */
	assert_int_equal(ctx_alive(ct, a), 0);
	assert_int_equal(ctx_alive(ct, b), 1);
	assert_int_equal(ctx_alive(ct, a ^ b ^ 1), 0);
	assert_int_equal(ctx_count(ct), 1);	/* a was freed on the way */
	ctx_free(ct);
}

static void
context_table_is_bounded(void **state)
{
	struct ctxtab	*ct = ctx_new(3);
	uint32_t	 id;

	for (int i = 0; i < 10; i++)
		assert_int_equal(ctx_create(ct, 5, &id), CTX_OK);
	assert_int_equal(ctx_count(ct), 3);
	assert_int_equal(ctx_evictions(ct), 7);
	ctx_free(ct);
}

/* a full table evicts the least recently touched idle context, and a
   context in use by a request only when every one is in use */
static void
full_table_evicts_least_recently_used_idle_first(void **state)
{
	struct ctxtab	*ct = ctx_new(3);
	uint32_t	 a, b, c, d, e, f;

	(void)state;
	assert_int_equal(ctx_create(ct, 60, &a), CTX_OK);
	assert_int_equal(ctx_create(ct, 60, &b), CTX_OK);
	assert_int_equal(ctx_create(ct, 60, &c), CTX_OK);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_OK);
	ctx_done(ct, a);			/* a: touched, idle */
	assert_int_equal(ctx_use(ct, b, NULL, NULL), CTX_OK);	/* busy */
	assert_int_equal(ctx_create(ct, 60, &d), CTX_OK);	/* c goes */
	assert_int_equal(ctx_use(ct, c, NULL, NULL), CTX_UNKNOWN);
	assert_int_equal(ctx_create(ct, 60, &e), CTX_OK);	/* a goes */
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_UNKNOWN);
	assert_int_equal(ctx_create(ct, 60, &f), CTX_OK);	/* d goes */
	assert_int_equal(ctx_use(ct, d, NULL, NULL), CTX_UNKNOWN);
	/* b, the oldest, survives: it is in use */
	assert_int_equal(ctx_use(ct, b, NULL, NULL), CTX_OK);
	ctx_done(ct, b);
	ctx_done(ct, b);
	assert_int_equal(ctx_use(ct, e, NULL, NULL), CTX_OK);
	assert_int_equal(ctx_use(ct, f, NULL, NULL), CTX_OK);
	/* only b idle now: it goes before the busy e and f */
	assert_int_equal(ctx_create(ct, 60, &a), CTX_OK);
	assert_int_equal(ctx_use(ct, b, NULL, NULL), CTX_UNKNOWN);
	/* all busy: the least recently touched busy one goes */
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_OK);
	assert_int_equal(ctx_create(ct, 60, &b), CTX_OK);
	assert_int_equal(ctx_use(ct, e, NULL, NULL), CTX_UNKNOWN);
	assert_int_equal(ctx_count(ct), 3);
	assert_int_equal(ctx_evictions(ct), 5);
	ctx_free(ct);
}

static struct ctxtab *
tab(size_t max, size_t per_peer, struct memcap *mc)
{
	struct ctx_limits	 l = { max, per_peer, 4096, 100, mc };

	return ctx_new_limits(&l);
}

/* one address flooding evicts its own contexts, nobody else's */
static void
per_address_share_evicts_own_contexts(void **state)
{
	struct ctxtab	*ct = tab(10, 6, NULL);
	uint32_t	 mine[4], id;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(ctx_create_for(ct, 60, "10.0.0.2",
		    &mine[i]), CTX_OK);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1", &id),
		    CTX_OK);
	assert_int_equal(ctx_count(ct), 10);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ctx_use(ct, mine[i], NULL, NULL), CTX_OK);
	assert_int_equal(ctx_use(ct, id, NULL, NULL), CTX_OK);
	ctx_free(ct);
}

/* a share of one: each new context replaces the address's last one */
static void
share_of_one_replaces_the_last_context(void **state)
{
	struct ctxtab	*ct = tab(1, 1, NULL);
	uint32_t	 a, b;

	(void)state;
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1", &a), CTX_OK);
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1", &b), CTX_OK);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_UNKNOWN);
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.2", &a), CTX_OK);
	assert_int_equal(ctx_use(ct, b, NULL, NULL), CTX_UNKNOWN);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_OK);
	assert_int_equal(ctx_count(ct), 1);
	ctx_free(ct);
}

/* a full table takes from the address holding the most, even when a
   lighter address's context is older */
static void
full_table_evicts_from_the_heaviest_address(void **state)
{
	struct ctxtab	*ct = tab(10, 8, NULL);
	uint32_t	 old, heavy[8], id;

	(void)state;
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.2", &old), CTX_OK);
	for (int i = 0; i < 8; i++)
		assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1",
		    &heavy[i]), CTX_OK);
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.3", &id), CTX_OK);
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.3", &id), CTX_OK);
	assert_int_equal(ctx_use(ct, old, NULL, NULL), CTX_OK);
	assert_int_equal(ctx_use(ct, heavy[0], NULL, NULL), CTX_UNKNOWN);
	assert_int_equal(ctx_use(ct, heavy[1], NULL, NULL), CTX_OK);
	assert_int_equal(ctx_count(ct), 10);
	ctx_free(ct);
}

/* an IPv6 /64 is one address; a v4-mapped address is its IPv4 one */
static void
ipv6_addresses_count_by_64(void **state)
{
	struct ctxtab	*ct = tab(100, 2, NULL);
	uint32_t	 a, b, c, d;

	(void)state;
	assert_int_equal(ctx_create_for(ct, 60, "2001:db8::1", &a), CTX_OK);
	assert_int_equal(ctx_create_for(ct, 60, "2001:db8::2:3", &b), CTX_OK);
	assert_int_equal(ctx_create_for(ct, 60, "2001:db8::ffff", &c),
	    CTX_OK);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_UNKNOWN);
	assert_int_equal(ctx_create_for(ct, 60, "2001:db8:0:1::1", &d),
	    CTX_OK);
	assert_int_equal(ctx_use(ct, b, NULL, NULL), CTX_OK);
	assert_int_equal(ctx_create_for(ct, 60, "::ffff:10.1.1.1", &a),
	    CTX_OK);
	assert_int_equal(ctx_create_for(ct, 60, "10.1.1.1", &b), CTX_OK);
	assert_int_equal(ctx_create_for(ct, 60, "10.1.1.1", &c), CTX_OK);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_UNKNOWN);
	ctx_free(ct);
}

/* what contexts hold is charged to the memory ceiling and given back;
   at the ceiling idle contexts make room, else creation is refused */
static void
contexts_are_charged_to_memcap(void **state)
{
	struct memcap	 mc;
	struct ctxtab	*ct;
	uint32_t	 a, b, ids[100];
	size_t		 one;

	(void)state;
	memcap_init(&mc, 0);
	ct = tab(1000, 1000, &mc);
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1", &a), CTX_OK);
	assert_true(memcap_used(&mc) > 0);
	one = memcap_used(&mc);
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1", &b), CTX_OK);
	one = memcap_used(&mc) - one;		/* one more context */
	ctx_free(ct);
	assert_int_equal(memcap_used(&mc), 0);

	memcap_init(&mc, 20 * one);
	ct = tab(1000, 1000, &mc);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1", &ids[i]),
		    CTX_OK);
	assert_true(ctx_count(ct) < 20);	/* the old ones made room */
	assert_true(memcap_used(&mc) <= 20 * one);
	/* all in use: nothing may go, the next is refused */
	for (int i = 0; i < 100; i++)
		ctx_use(ct, ids[i], NULL, NULL);
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1", &a), CTX_NOMEM);
	ctx_free(ct);
	assert_int_equal(memcap_used(&mc), 0);
}

static void
derived_bytes_per_context_are_bounded(void **state)
{
	struct memcap	 mc;
	struct ctxtab	*ct;
	struct dmetric	*dm;
	char		 text[3001], name[16];
	uint32_t	 id;

	(void)state;
	memcap_init(&mc, 0);
	ct = tab(10, 10, &mc);		/* 4096 bytes of derived */
	memset(text, '1', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1", &id), CTX_OK);
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		dm = dmetric_new(name, text, 0);
		assert_int_equal(ctx_derive_add(ct, id, dm, 256),
		    i == 0 ? CTX_OK : CTX_BYTES);
		dmetric_unref(dm);
	}
	assert_true(memcap_used(&mc) > 3000);
	ctx_free(ct);
	assert_int_equal(memcap_used(&mc), 0);
}

static void
profile_instances_are_bounded(void **state)
{
	struct memcap	 mc;
	struct ctxtab	*ct;
	uint32_t	 id, ids[101];

	(void)state;
	memcap_init(&mc, 0);
	ct = tab(10, 10, &mc);		/* 100 instances a profile */
	for (uint32_t i = 0; i < 101; i++)
		ids[i] = i;
	assert_int_equal(ctx_create_for(ct, 60, "10.0.0.1", &id), CTX_OK);
	assert_int_equal(ctx_profile_change(ct, id, 1, INDOM, ids, 100),
	    CTX_OK);
	assert_int_equal(ctx_profile_change(ct, id, 1, INDOM, ids, 100),
	    CTX_OK);			/* the same ids: no growth */
	assert_int_equal(ctx_profile_change(ct, id, 1, INDOM + 1, ids, 1),
	    CTX_LIMIT);
	assert_int_equal(ctx_profile_change(ct, id, 1, INDOM, ids, 101),
	    CTX_LIMIT);
	assert_true(memcap_used(&mc) > 400);
	assert_int_equal(ctx_profile_change(ct, id, 1, PM_INDOM_NULL, NULL,
	    0), CTX_OK);
	ctx_free(ct);
	assert_int_equal(memcap_used(&mc), 0);
}

static void
profile_add_restricts_then_del_excludes(void **state)
{
	struct ctxtab	*ct = ctx_new(10);
	struct profile	*p;
	uint32_t	 id, one = 1, five = 5, fifteen = 15;

	ctx_create(ct, 5, &id);
	assert_int_equal(ctx_use(ct, id, &p, NULL), CTX_OK);
	assert_null(p);			/* default: everything */
	assert_true(profile_allows(p, INDOM, 5));
	/* pmproxy: adding a list on an untouched indom restricts to it */
	assert_int_equal(ctx_profile_change(ct, id, 1, INDOM, &one, 1),
	    CTX_OK);
	ctx_use(ct, id, &p, NULL);
	assert_true(profile_allows(p, INDOM, 1));
	assert_false(profile_allows(p, INDOM, 5));
	assert_true(profile_allows(p, pmInDom_build(BT_DOMAIN, 6), 5));
	profile_release(p);
	ctx_profile_change(ct, id, 1, INDOM, &fifteen, 1);
	ctx_profile_change(ct, id, 0, INDOM, &one, 1);
	ctx_use(ct, id, &p, NULL);
	assert_false(profile_allows(p, INDOM, 1));
	assert_true(profile_allows(p, INDOM, 15));
	assert_false(profile_allows(p, INDOM, 5));
	profile_release(p);
	/* add with no list: the whole indom again; del with a list excludes */
	ctx_profile_change(ct, id, 1, INDOM, NULL, 0);
	ctx_profile_change(ct, id, 0, INDOM, &five, 1);
	ctx_use(ct, id, &p, NULL);
	assert_true(profile_allows(p, INDOM, 1));
	assert_false(profile_allows(p, INDOM, 5));
	profile_release(p);
	/* del all */
	ctx_profile_change(ct, id, 0, INDOM, NULL, 0);
	ctx_use(ct, id, &p, NULL);
	assert_false(profile_allows(p, INDOM, 15));
	profile_release(p);
	assert_int_equal(ctx_profile_change(ct, 12345, 1, INDOM, NULL, 0),
	    CTX_UNKNOWN);
	ctx_free(ct);
}

/* fetch caches an indom's answer only when the profile passes all of it */
static void
profile_allows_all_only_when_nothing_is_left_out(void **state)
{
	struct ctxtab	*ct = ctx_new(10);
	struct profile	*p;
	uint32_t	 id, one = 1;

	ctx_create(ct, 5, &id);
	assert_true(profile_allows_all(NULL, INDOM));
	ctx_profile_change(ct, id, 1, INDOM, &one, 1);	/* only 1 */
	ctx_use(ct, id, &p, NULL);
	assert_false(profile_allows_all(p, INDOM));
	assert_true(profile_allows_all(p, pmInDom_build(BT_DOMAIN, 6)));
	profile_release(p);
	ctx_profile_change(ct, id, 1, INDOM, NULL, 0);	/* all again */
	ctx_use(ct, id, &p, NULL);
	assert_true(profile_allows_all(p, INDOM));
	profile_release(p);
	ctx_profile_change(ct, id, 0, INDOM, &one, 1);	/* all but 1 */
	ctx_use(ct, id, &p, NULL);
	assert_false(profile_allows_all(p, INDOM));
	profile_release(p);
	ctx_profile_change(ct, id, 0, INDOM, NULL, 0);	/* none */
	ctx_use(ct, id, &p, NULL);
	assert_false(profile_allows_all(p, INDOM));
	profile_release(p);
	ctx_free(ct);
}

static void
profile_held_by_reader_is_immutable(void **state)
{
	struct ctxtab	*ct = ctx_new(10);
	struct profile	*held;
	uint32_t	 id, one = 1;

	ctx_create(ct, 5, &id);
	ctx_profile_change(ct, id, 1, INDOM, &one, 1);
	ctx_use(ct, id, &held, NULL);
	ctx_profile_change(ct, id, 1, INDOM, NULL, 0);
	assert_false(profile_allows(held, INDOM, 2));	/* unchanged */
	ctx_free(ct);		/* the reader's reference outlives it */
	assert_true(profile_allows(held, INDOM, 1));
	profile_release(held);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(context_ids_are_unique_31bit),
		cmocka_unit_test(context_expires_after_polltimeout),
		cmocka_unit_test(context_alive_does_not_rearm),
		cmocka_unit_test(context_table_is_bounded),
		cmocka_unit_test(full_table_evicts_least_recently_used_idle_first),
		cmocka_unit_test(per_address_share_evicts_own_contexts),
		cmocka_unit_test(share_of_one_replaces_the_last_context),
		cmocka_unit_test(full_table_evicts_from_the_heaviest_address),
		cmocka_unit_test(ipv6_addresses_count_by_64),
		cmocka_unit_test(contexts_are_charged_to_memcap),
		cmocka_unit_test(derived_bytes_per_context_are_bounded),
		cmocka_unit_test(profile_instances_are_bounded),
		cmocka_unit_test(profile_add_restricts_then_del_excludes),
		cmocka_unit_test(profile_allows_all_only_when_nothing_is_left_out),
		cmocka_unit_test(profile_held_by_reader_is_immutable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
