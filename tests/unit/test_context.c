/* SPDX-License-Identifier: MIT */
/* test_context.c - context ids, expiry, limits and instance profiles. */
#include <unistd.h>

#include "testhelp.h"
#include "bpftraced.h"

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

	assert_int_equal(ctx_create(ct, 0.2, &a), CTX_OK);
	assert_int_equal(ctx_create(ct, 30, &b), CTX_OK);
	usleep(120 * 1000);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_OK);	/* re-arms */
	usleep(120 * 1000);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_OK);
	usleep(250 * 1000);
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

	for (int i = 0; i < 3; i++)
		assert_int_equal(ctx_create(ct, 5, &id), CTX_OK);
	assert_int_equal(ctx_create(ct, 5, &id), CTX_FULL);
	ctx_free(ct);
}

static void
full_table_evicts_oldest_unused_implicit_context(void **state)
{
	struct ctxtab	*ct = ctx_new(3);
	uint32_t	 kept, used, a, b, c;

	(void)state;
	assert_int_equal(ctx_create(ct, 60, &kept), CTX_OK);	/* explicit */
	assert_int_equal(ctx_create_implicit(ct, 60, &used), CTX_OK);
	assert_int_equal(ctx_create_implicit(ct, 60, &a), CTX_OK);
	assert_int_equal(ctx_use(ct, used, NULL, NULL), CTX_OK);
	/* full: the oldest implicit one nobody used again (a) makes room */
	assert_int_equal(ctx_create_implicit(ct, 60, &b), CTX_OK);
	assert_int_equal(ctx_use(ct, a, NULL, NULL), CTX_UNKNOWN);
	assert_int_equal(ctx_use(ct, used, NULL, NULL), CTX_OK);
	assert_int_equal(ctx_use(ct, kept, NULL, NULL), CTX_OK);
	assert_int_equal(ctx_use(ct, b, NULL, NULL), CTX_OK);
	/* all three used or explicit now: nothing may be evicted */
	assert_int_equal(ctx_create_implicit(ct, 60, &c), CTX_FULL);
	assert_int_equal(ctx_create(ct, 60, &c), CTX_FULL);
	assert_int_equal(ctx_count(ct), 3);
	ctx_free(ct);
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
		cmocka_unit_test(full_table_evicts_oldest_unused_implicit_context),
		cmocka_unit_test(profile_add_restricts_then_del_excludes),
		cmocka_unit_test(profile_allows_all_only_when_nothing_is_left_out),
		cmocka_unit_test(profile_held_by_reader_is_immutable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
