/* SPDX-License-Identifier: MIT */
/*
 * test_store_audit.c - the store's audit log (store_audit.c): rows
 * appended and loaded back as written, the load walk stopped by its
 * callback, and the per-action prune keeping the newest rows. Each test
 * gets a fresh temporary state directory.
 */
#include "testhelp.h"
#include "store_testhelp.h"

/* --- audit --- */

struct audits {
	int	 n;
	char	 last[512];
};

static int
collect_audit(int64_t time_ms, const char *user, const char *peer,
    const char *action, const char *target, int ok, const char *message,
    void *arg)
{
	struct audits	*a = arg;

	a->n++;
	snprintf(a->last, sizeof(a->last), "%s|%s|%s|%s|%d|%s",
	    user != NULL ? user : "-", peer != NULL ? peer : "-", action,
	    target != NULL ? target : "-", ok, message != NULL ? message : "-");
	assert_true(time_ms > 1600000000000LL);	/* unix ms, not monotonic */
	return 0;
}

static int
stop_after_first(int64_t time_ms, const char *user, const char *peer,
    const char *action, const char *target, int ok, const char *message,
    void *arg)
{
	(*(int *)arg)++;
	return 42;
}

static void
audit_append_and_load(void **state)
{
	struct fx	*fx = *state;
	struct store	*st = open_ok(fx);
	struct audits	 a = { 0 };
	int		 calls = 0;

	assert_int_equal(store_audit(st, "alice", "10.0.0.1", "register",
	    "s01", 1, NULL), 0);
	assert_int_equal(store_audit(st, NULL, "10.0.0.2", "start", "s01", 0,
	    "no such probe 'x'; DROP TABLE audit;--"), 0);
	assert_int_equal(store_audit(st, "bob", NULL, "nonsense", "s01", 1,
	    NULL), -1);
	store_close(st);

	st = open_ok(fx);
	assert_int_equal(store_audit_load(st, 0, collect_audit, &a), 0);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.last, "-|10.0.0.2|start|s01|0|no such probe "
	    "'x'; DROP TABLE audit;--");
	a.n = 0;
	assert_int_equal(store_audit_load(st, INT64_MAX, collect_audit, &a),
	    0);
	assert_int_equal(a.n, 0);
	assert_int_equal(store_audit_load(st, 0, stop_after_first, &calls),
	    42);
	assert_int_equal(calls, 1);
	store_close(st);
}

/* The failed-login rows are capped: only the newest keep of one action. */
static void
audit_prune_keeps_newest_rows_of_one_action(void **state)
{
	struct fx	*fx = *state;
	struct store	*st = open_ok(fx);
	struct audits	 a = { 0 };
	char		 user[16];

	assert_int_equal(store_audit(st, "root", NULL, "register", "s01", 1,
	    NULL), 0);
	for (int i = 0; i < 7; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		assert_int_equal(store_audit(st, user, "10.0.0.9", "login",
		    "register", 0, "unknown user or wrong password"), 0);
	}
	assert_int_equal(store_audit(st, "root", NULL, "stop", "s01", 1,
	    NULL), 0);
	assert_int_equal(store_audit_prune(st, "login", 10), 0);
	assert_int_equal(store_audit_prune(st, "login", 3), 4);
	assert_int_equal(store_audit_prune(st, "login", 3), 0);
	store_close(st);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit"
	    " WHERE action = 'login'"), 3);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit"
	    " WHERE action = 'login' AND user IN ('u4', 'u5', 'u6')"), 3);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit"
	    " WHERE action != 'login'"), 2);
	st = open_ok(fx);
	assert_int_equal(store_audit_load(st, 0, collect_audit, &a), 0);
	assert_int_equal(a.n, 5);
	assert_string_equal(a.last, "root|-|stop|s01|1|-");
	store_close(st);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(audit_append_and_load),
		T(audit_prune_keeps_newest_rows_of_one_action),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
