/* SPDX-License-Identifier: MIT */
/*
 * test_store.c - the store's script rows and instance ids (store.c):
 * byte-exact round trips, refusals with a reason, start/stop, touches
 * and deletes, which writes are synced, and the start-up walk that calls
 * back in. The connection, migrations and damaged storage:
 * test_store_db.c; the audit log: test_store_audit.c. Each test gets a
 * fresh temporary state directory.
 */
#include "testhelp.h"
#include "store_testhelp.h"

#include <sys/syscall.h>

#include <stdatomic.h>

#define MANY_INSTANCES	10000

/*
 * Counts syncs: these definitions in the executable interpose on
 * libsqlite3's calls, so a test can see whether a commit reached the disk.
 */
static atomic_int	 nsyncs;

int
fdatasync(int fd)
{
	atomic_fetch_add(&nsyncs, 1);
	return (int)syscall(SYS_fdatasync, fd);
}

int
fsync(int fd)
{
	atomic_fetch_add(&nsyncs, 1);
	return (int)syscall(SYS_fsync, fd);
}

/* --- scripts --- */

static void
reopen_keeps_data(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 a = mkscript("s01", "one", 1);
	struct store_script	 b = mkscript("s02", "two", 2);
	struct loaded		 l;

	b.ss_owner = NULL;
	b.ss_peer = NULL;
	b.ss_restart = NULL;
	b.ss_named = 0;
	b.ss_want_run = 0;
	add_ok(st, &a);
	add_ok(st, &b);
	assert_int_equal(store_audit(st, "alice", "::1", "register", "s01", 1,
	    NULL), 0);
	store_close(st);

	st = open_ok(fx);
	load_ok(st, &l);
	assert_int_equal(l.n, 2);
	assert_script_equal(&a, l.v[0]);	/* created order */
	assert_script_equal(&b, l.v[1]);
	loaded_free(&l);
	store_close(st);
}

static void
add_load_round_trip_is_byte_exact(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 ss[4];
	struct loaded		 l;
	char			*big;
	size_t			 i;
	static const char	 nonutf8[] = "caf\xe9 \xff\xfe\x80 \xc3\x28 "
				    "\xed\xa0\x80 ok";

	big = malloc(64 * 1024);
	assert_non_null(big);
	for (i = 0; i < 64 * 1024; i++)		/* every byte but NUL */
		big[i] = (char)(1 + i % 255);

	ss[0] = mkscript("s0'); DROP TABLE scripts;--", "'); DROP TABLE "
	    "scripts;--", 10);
	ss[0].ss_code = "BEGIN { printf(\"'); DROP TABLE scripts;--\\n\"); }"
	    "\n\t// \"quotes\" 'single' `back` \\ \r\n";
	ss[0].ss_codelen = strlen(ss[0].ss_code);
	ss[0].ss_owner = "o'; DELETE FROM audit; --";
	ss[0].ss_peer = "[::1]:1234\"";
	ss[1] = mkscript("s1", "big", 11);
	ss[1].ss_code = big;
	ss[1].ss_codelen = 64 * 1024;
	ss[2] = mkscript("s2", nonutf8, 12);
	ss[2].ss_code = (char *)nonutf8;
	ss[2].ss_codelen = sizeof(nonutf8) - 1;
	ss[2].ss_owner = (char *)nonutf8;
	ss[2].ss_restart = (char *)nonutf8;
	ss[3] = mkscript("s3", "empty code", 13);
	ss[3].ss_code = "";
	ss[3].ss_codelen = 0;
	for (i = 0; i < 4; i++)
		add_ok(st, &ss[i]);
	store_close(st);

	st = open_ok(fx);
	load_ok(st, &l);
	assert_int_equal(l.n, 4);
	for (i = 0; i < 4; i++)
		assert_script_equal(&ss[i], l.v[i]);
	loaded_free(&l);
	store_close(st);
	free(big);
}

static void
duplicate_id_name_or_cluster_refused_with_reason(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 a = mkscript("s01", "one", 1);
	struct store_script	 dup;
	struct loaded		 l;
	char			 err[512];

	add_ok(st, &a);

	dup = mkscript("s01", "other", 2);
	err[0] = '\0';
	assert_int_equal(store_script_add(st, &dup, err, sizeof(err)), -1);
	assert_contains(err, "script id s01 is already stored");

	dup = mkscript("s02", "one", 2);
	err[0] = '\0';
	assert_int_equal(store_script_add(st, &dup, err, sizeof(err)), -1);
	assert_contains(err, "a script named \"one\" is already stored (s01)");

	dup = mkscript("s02", "two", 1);
	err[0] = '\0';
	assert_int_equal(store_script_add(st, &dup, err, sizeof(err)), -1);
	assert_contains(err, "PMID cluster 1 is already used by script s01");

	dup = mkscript("s02", "two", STORE_MAX_CLUSTER + 1);
	err[0] = '\0';
	assert_int_equal(store_script_add(st, &dup, err, sizeof(err)), -1);
	assert_contains(err, "PMID cluster 4096 is past 4095");

	/* Refusals wrote nothing, and the store is still usable. */
	dup = mkscript("s02", "two", 2);
	add_ok(st, &dup);
	load_ok(st, &l);
	assert_int_equal(l.n, 2);
	loaded_free(&l);
	store_close(st);
}

static void
set_running_is_persisted(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 a = mkscript("s01", "one", 1);
	struct loaded		 l;
	char			 err[512] = "";

	add_ok(st, &a);
	assert_int_equal(store_script_set_running(st, "s01", 0, err,
	    sizeof(err)), 0);
	store_close(st);
	st = open_ok(fx);
	load_ok(st, &l);
	assert_int_equal(l.v[0]->ss_want_run, 0);
	loaded_free(&l);
	assert_int_equal(store_script_set_running(st, "s01", 1, err,
	    sizeof(err)), 0);
	store_close(st);
	st = open_ok(fx);
	load_ok(st, &l);
	assert_int_equal(l.v[0]->ss_want_run, 1);
	loaded_free(&l);

	assert_int_equal(store_script_set_running(st, "nosuch", 1, err,
	    sizeof(err)), -1);
	assert_contains(err, "no stored script nosuch");
	store_close(st);
}

/*
 * Control writes are synced before they return; touches are not. (This
 * caught PRAGMA synchronous taking effect when prepared, not when run.)
 */
static void
control_writes_sync_and_touches_do_not(void **state)
{
	struct fx		*fx = *state;
	struct store		*st;
	struct store_script	 a = mkscript("s01", "one", 1);
	const char *const	 names[] = { "x" };
	const uint32_t		 ids[] = { 1 };
	char			 err[512] = "";
	int			 n;

	atomic_store(&nsyncs, 0);
	st = open_ok(fx);
	if (atomic_load(&nsyncs) == 0) {	/* the migration commits */
		store_close(st);
		print_message("# skipped: cannot observe fsync/fdatasync "
		    "calls of libsqlite3\n");
		skip();
	}
	n = atomic_load(&nsyncs);
	add_ok(st, &a);
	assert_true(atomic_load(&nsyncs) > n);
	n = atomic_load(&nsyncs);
	for (int i = 0; i < 10; i++)
		assert_int_equal(store_script_touch(st, "s01", i), 0);
	assert_int_equal(atomic_load(&nsyncs), n);
	assert_int_equal(store_script_set_running(st, "s01", 0, err,
	    sizeof(err)), 0);
	assert_true(atomic_load(&nsyncs) > n);
	n = atomic_load(&nsyncs);
	assert_int_equal(store_instances_add(st, "s01", "@v", 1, names, ids,
	    err, sizeof(err)), 0);
	assert_true(atomic_load(&nsyncs) > n);
	n = atomic_load(&nsyncs);
	assert_int_equal(store_audit(st, NULL, NULL, "stop", "s01", 1, NULL),
	    0);
	assert_true(atomic_load(&nsyncs) > n);
	n = atomic_load(&nsyncs);
	assert_int_equal(store_script_delete(st, "s01", err, sizeof(err)), 0);
	assert_true(atomic_load(&nsyncs) > n);
	store_close(st);
}

static void
touch_records_last_fetch(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 a = mkscript("s01", "one", 1);
	struct loaded		 l;

	add_ok(st, &a);
	assert_int_equal(store_script_touch(st, "s01", 1800000000123LL), 0);
	assert_int_equal(store_script_touch(st, "nosuch", 1), -1);
	store_close(st);
	st = open_ok(fx);
	load_ok(st, &l);
	assert_int_equal(l.v[0]->ss_last_fetch_ms, 1800000000123LL);
	loaded_free(&l);
	store_close(st);
}

struct inst {
	char		*var;
	char		*name;
	uint32_t	 id;
};

struct insts {
	struct inst	*v;
	size_t		 n, cap;
};

static void
collect_inst(const char *var, const char *name, uint32_t id, void *arg)
{
	struct insts	*is = arg;

	if (is->n == is->cap) {
		is->cap = is->cap != 0 ? is->cap * 2 : 64;
		is->v = realloc(is->v, is->cap * sizeof(*is->v));
		assert_non_null(is->v);
	}
	is->v[is->n].var = strdup(var);
	is->v[is->n].name = strdup(name);
	is->v[is->n].id = id;
	is->n++;
}

static void
insts_free(struct insts *is)
{
	for (size_t i = 0; i < is->n; i++) {
		free(is->v[i].var);
		free(is->v[i].name);
	}
	free(is->v);
	memset(is, 0, sizeof(*is));
}

static void
insts_load_ok(struct store *st, const char *id, struct insts *is)
{
	char	 err[512] = "";

	memset(is, 0, sizeof(*is));
	if (store_instances_load(st, id, collect_inst, is, err,
	    sizeof(err)) != 0)
		fail_msg("store_instances_load: %s", err);
}

static void
delete_removes_script_and_its_instances(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 a = mkscript("s01", "one", 1);
	struct store_script	 b = mkscript("s02", "two", 2);
	const char *const	 names[] = { "cpu0", "cpu1" };
	const uint32_t		 ids[] = { 0, 1 };
	struct insts		 is;
	struct loaded		 l;
	char			 err[512] = "";

	add_ok(st, &a);
	add_ok(st, &b);
	assert_int_equal(store_instances_add(st, "s01", "@x", 2, names, ids,
	    err, sizeof(err)), 0);
	assert_int_equal(store_instances_add(st, "s02", "@x", 2, names, ids,
	    err, sizeof(err)), 0);
	assert_int_equal(store_script_delete(st, "s01", err, sizeof(err)), 0);
	assert_int_equal(store_script_delete(st, "s01", err, sizeof(err)), -1);
	assert_contains(err, "no stored script s01");
	store_close(st);

	st = open_ok(fx);
	load_ok(st, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0]->ss_script_id, "s02");
	loaded_free(&l);
	insts_load_ok(st, "s01", &is);
	assert_int_equal(is.n, 0);
	insts_free(&is);
	insts_load_ok(st, "s02", &is);
	assert_int_equal(is.n, 2);
	insts_free(&is);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM instances"
	    " WHERE script_id = 's01'"), 0);
	/* The name and cluster are free again. */
	add_ok(st, &a);
	store_close(st);
}

static void
instances_batch_of_10000_round_trip(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 a = mkscript("s01", "one", 1);
	static char		 namebuf[MANY_INSTANCES][48];
	static const char	*names[MANY_INSTANCES];
	static uint32_t		 ids[MANY_INSTANCES];
	const char *const	 odd[] = { "'); DROP TABLE instances;--",
				    "caf\xe9\n\"x\"" };
	const uint32_t		 oddids[] = { 7, UINT32_MAX };
	struct insts		 is;
	char			 err[512] = "";
	size_t			 i;

	add_ok(st, &a);
	for (i = 0; i < MANY_INSTANCES; i++) {
		snprintf(namebuf[i], sizeof(namebuf[i]), "pid %zu comm x", i);
		names[i] = namebuf[i];
		ids[i] = (uint32_t)(i * 3);
	}
	assert_int_equal(store_instances_add(st, "s01", "@bytes",
	    MANY_INSTANCES, names, ids, err, sizeof(err)), 0);
	/* Re-adding the same pairs is a no-op. */
	assert_int_equal(store_instances_add(st, "s01", "@bytes", 100, names,
	    ids, err, sizeof(err)), 0);
	assert_int_equal(store_instances_add(st, "s01", "@odd", 2, odd, oddids,
	    err, sizeof(err)), 0);
	store_close(st);

	st = open_ok(fx);
	insts_load_ok(st, "s01", &is);
	assert_int_equal(is.n, MANY_INSTANCES + 2);
	for (i = 0; i < MANY_INSTANCES; i++) {	/* ordered by var, id */
		assert_string_equal(is.v[i].var, "@bytes");
		assert_string_equal(is.v[i].name, names[i]);
		assert_int_equal(is.v[i].id, ids[i]);
	}
	assert_string_equal(is.v[i].var, "@odd");
	assert_string_equal(is.v[i].name, odd[0]);
	assert_int_equal(is.v[i].id, 7);
	assert_string_equal(is.v[i + 1].name, odd[1]);
	assert_int_equal(is.v[i + 1].id, UINT32_MAX);
	insts_free(&is);
	store_close(st);
}

static void
instances_conflict_refuses_whole_batch(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 a = mkscript("s01", "one", 1);
	const char *const	 n1[] = { "a", "b" };
	const uint32_t		 i1[] = { 1, 2 };
	const char *const	 n2[] = { "c", "a" };	/* a: 1, not 9 */
	const uint32_t		 i2[] = { 3, 9 };
	const char *const	 n3[] = { "d", "e" };	/* 2 is b's */
	const uint32_t		 i3[] = { 4, 2 };
	struct insts		 is;
	char			 err[512] = "";

	add_ok(st, &a);
	assert_int_equal(store_instances_add(st, "s01", "@x", 2, n1, i1, err,
	    sizeof(err)), 0);
	assert_int_equal(store_instances_add(st, "s01", "@x", 2, n2, i2, err,
	    sizeof(err)), -1);
	assert_contains(err, "instance \"a\" is stored with id 1, not 9");
	assert_int_equal(store_instances_add(st, "s01", "@x", 2, n3, i3, err,
	    sizeof(err)), -1);
	assert_contains(err, "instance id 2 is stored for another name");
	assert_int_equal(store_instances_add(st, "nosuch", "@x", 2, n1, i1,
	    err, sizeof(err)), -1);
	assert_contains(err, "no stored script nosuch");
	insts_load_ok(st, "s01", &is);
	assert_int_equal(is.n, 2);		/* neither c nor d was kept */
	insts_free(&is);
	store_close(st);
}

struct restore {
	struct store	*st;
	int		 scripts, insts, stop_at;
};

static void
count_inst(const char *var, const char *name, uint32_t id, void *arg)
{
	((struct restore *)arg)->insts++;
}

/* What the daemon does at start-up: instances and audit per script. */
static int
restore_script(const struct store_script *ss, void *arg)
{
	struct restore	*r = arg;
	char		 err[512] = "";

	if (store_instances_load(r->st, ss->ss_script_id, count_inst, r, err,
	    sizeof(err)) != 0)
		fail_msg("store_instances_load: %s", err);
	assert_int_equal(store_audit(r->st, NULL, NULL, "restore",
	    ss->ss_script_id, 1, NULL), 0);
	if (++r->scripts == r->stop_at)
		return 7;
	return 0;
}

static void
scripts_load_callback_may_call_store(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 a = mkscript("s01", "one", 1);
	struct store_script	 b = mkscript("s02", "two", 2);
	const char *const	 names[] = { "x", "y", "z" };
	const uint32_t		 ids[] = { 1, 2, 3 };
	struct restore		 r = { .st = st };
	char			 err[512] = "";

	add_ok(st, &a);
	add_ok(st, &b);
	assert_int_equal(store_instances_add(st, "s02", "@v", 3, names, ids,
	    err, sizeof(err)), 0);
	assert_int_equal(store_scripts_load(st, restore_script, &r, err,
	    sizeof(err)), 0);
	assert_int_equal(r.scripts, 2);
	assert_int_equal(r.insts, 3);
	/* A non-zero return stops the walk and is passed back. */
	r = (struct restore){ .st = st, .stop_at = 1 };
	assert_int_equal(store_scripts_load(st, restore_script, &r, err,
	    sizeof(err)), 7);
	assert_int_equal(r.scripts, 1);
	store_close(st);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit"
	    " WHERE action = 'restore'"), 3);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(reopen_keeps_data),
		T(add_load_round_trip_is_byte_exact),
		T(duplicate_id_name_or_cluster_refused_with_reason),
		T(set_running_is_persisted),
		T(control_writes_sync_and_touches_do_not),
		T(touch_records_last_fetch),
		T(delete_removes_script_and_its_instances),
		T(instances_batch_of_10000_round_trip),
		T(instances_conflict_refuses_whole_batch),
		T(scripts_load_callback_may_call_store),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
