/* SPDX-License-Identifier: MIT */
/*
 * store_testhelp.h - what the store's unit tests (test_store*.c) share:
 * a fresh temporary state directory per test (fx_setup, fx_teardown),
 * opening the store, adding and loading scripts so that a failure fails
 * the test, comparing rows, and sqlite queries on the file behind the
 * store's back. Include after testhelp.h.
 */
#ifndef BT_STORE_TESTHELP_H
#define BT_STORE_TESTHELP_H
#include <sys/mount.h>
#include <sys/stat.h>

#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

struct fx {
	char	 dir[256];	/* the state dir, fresh per test */
	char	 path[600];	/* dir/bpftraced.db */
	char	 mnt[512];	/* a tmpfs mounted by the test, if any */
	int	 mounted;
};

static inline int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

static inline int
fx_setup(void **state)
{
	struct fx	*fx = calloc(1, sizeof(*fx));
	const char	*tmp = getenv("TMPDIR");

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/bt-store-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, STORE_DB_NAME);
	*state = fx;
	return 0;
}

static inline int
fx_teardown(void **state)
{
	struct fx	*fx = *state;

	if (fx->mounted)
		umount2(fx->mnt, MNT_DETACH);
	chmod(fx->dir, 0700);
	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static inline struct store *
open_ok(struct fx *fx)
{
	char		 err[512] = "";
	struct store	*st = store_open(fx->dir, err, sizeof(err));

	if (st == NULL)
		fail_msg("store_open(%s): %s", fx->dir, err);
	return st;
}

static inline struct store_script
mkscript(const char *id, const char *name, unsigned cluster)
{
	static char	 code[] = "tracepoint:syscalls:sys_enter_* "
			    "{ @[probe] = count(); }";
	struct store_script ss = {
		.ss_script_id = (char *)id,
		.ss_name = (char *)name,
		.ss_code = code,
		.ss_codelen = sizeof(code) - 1,
		.ss_owner = "alice",
		.ss_peer = "127.0.0.1",
		.ss_restart = "on-failure",
		.ss_named = 1,
		.ss_want_run = 1,
		.ss_cluster = cluster,
		.ss_created_ms = 1700000000000LL + cluster,
		.ss_last_fetch_ms = 1700000000500LL + cluster,
	};
	return ss;
}

static inline void
add_ok(struct store *st, const struct store_script *ss)
{
	char	 err[512] = "";

	if (store_script_add(st, ss, err, sizeof(err)) != 0)
		fail_msg("store_script_add(%s): %s", ss->ss_script_id, err);
}

struct loaded {
	struct store_script	**v;
	size_t			 n;
};

static inline int
collect_script(const struct store_script *ss, void *arg)
{
	struct loaded		 *l = arg;
	struct store_script	**nv;

	nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	assert_non_null(nv);
	l->v = nv;
	l->v[l->n] = store_script_dup(ss);
	assert_non_null(l->v[l->n]);
	l->n++;
	return 0;
}

static inline void
load_ok(struct store *st, struct loaded *l)
{
	char	 err[512] = "";

	memset(l, 0, sizeof(*l));
	if (store_scripts_load(st, collect_script, l, err, sizeof(err)) != 0)
		fail_msg("store_scripts_load: %s", err);
}

static inline void
loaded_free(struct loaded *l)
{
	for (size_t i = 0; i < l->n; i++)
		store_script_free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static inline void
assert_str_or_null_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static inline void
assert_script_equal(const struct store_script *a, const struct store_script *b)
{
	assert_string_equal(a->ss_script_id, b->ss_script_id);
	assert_string_equal(a->ss_name, b->ss_name);
	assert_int_equal(a->ss_codelen, b->ss_codelen);
	assert_memory_equal(a->ss_code, b->ss_code, a->ss_codelen);
	assert_int_equal(b->ss_code[b->ss_codelen], '\0');
	assert_str_or_null_equal(a->ss_owner, b->ss_owner);
	assert_str_or_null_equal(a->ss_peer, b->ss_peer);
	assert_str_or_null_equal(a->ss_restart, b->ss_restart);
	assert_int_equal(a->ss_named, b->ss_named);
	assert_int_equal(a->ss_want_run, b->ss_want_run);
	assert_int_equal(a->ss_cluster, b->ss_cluster);
	assert_int_equal(a->ss_created_ms, b->ss_created_ms);
	assert_int_equal(a->ss_last_fetch_ms, b->ss_last_fetch_ms);
}

/* An integer query on the db file, behind the store's back. */
static inline long long
raw_int(const char *path, const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*s;
	long long	 v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static inline void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}
#endif
