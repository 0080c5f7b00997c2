/* SPDX-License-Identifier: MIT */
/*
 * test_store.c - the sqlite store: migrations, byte-exact round trips,
 * refusals with a reason, damaged/unwritable/full storage, and a writer
 * killed mid-way. Each test gets a fresh temporary state directory.
 */
#include "testhelp.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

#define NOBODY		65534
#define MANY_INSTANCES	10000

struct fx {
	char	 dir[256];	/* the state dir, fresh per test */
	char	 path[600];	/* dir/bpftraced.db */
	char	 mnt[512];	/* a tmpfs mounted by the test, if any */
	int	 mounted;
};

/* --- fixture and helpers --- */

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

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

static int
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

static int
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

static struct store *
open_ok(struct fx *fx)
{
	char		 err[512] = "";
	struct store	*st = store_open(fx->dir, err, sizeof(err));

	if (st == NULL)
		fail_msg("store_open(%s): %s", fx->dir, err);
	return st;
}

static struct store_script
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

static void
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

static int
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

static void
load_ok(struct store *st, struct loaded *l)
{
	char	 err[512] = "";

	memset(l, 0, sizeof(*l));
	if (store_scripts_load(st, collect_script, l, err, sizeof(err)) != 0)
		fail_msg("store_scripts_load: %s", err);
}

static void
loaded_free(struct loaded *l)
{
	for (size_t i = 0; i < l->n; i++)
		store_script_free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static const struct store_script *
loaded_find(const struct loaded *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i]->ss_script_id, id) == 0)
			return l->v[i];
	return NULL;
}

static void
assert_str_or_null_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
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
static long long
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

static void
raw_exec(const char *path, const char *sql)
{
	sqlite3		*db;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* --- schema and migrations --- */

static void
migrate_fresh_db_sets_user_version_to_migration_count(void **state)
{
	struct fx	*fx = *state;
	struct store	*st = open_ok(fx);
	struct stat	 sb;

	assert_true(store_nmigrations >= 1);
	assert_string_equal(store_path(st), fx->path);
	store_close(st);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"),
	    (long long)store_nmigrations);
	assert_int_equal(stat(fx->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* A second open has nothing to migrate and changes nothing. */
	st = open_ok(fx);
	store_close(st);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"),
	    (long long)store_nmigrations);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_master"
	    " WHERE name IN ('scripts', 'instances', 'audit')"), 3);
}

static void
open_creates_missing_state_dir_0700(void **state)
{
	struct fx	*fx = *state;
	char		 sub[600], err[512] = "";
	struct store	*st;
	struct stat	 sb;

	snprintf(sub, sizeof(sub), "%s/state", fx->dir);
	st = store_open(sub, err, sizeof(err));
	assert_non_null(st);
	store_close(st);
	assert_int_equal(stat(sub, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
}

static void
open_uses_wal(void **state)
{
	struct fx	*fx = *state;
	struct store	*st = open_ok(fx);
	char		 wal[700];
	struct stat	 sb;

	snprintf(wal, sizeof(wal), "%s-wal", fx->path);
	assert_int_equal(stat(wal, &sb), 0);	/* exists while open */
	store_close(st);
}

/* The build embeds exactly the files in sql/, byte for byte. */
static void
embedded_migrations_match_sql_files(void **state)
{
	const char	*src = getenv("BT_SRCDIR");
	char		 dir[512], path[1024], *buf;
	struct dirent	**ents;
	int		 n, k = 0;
	FILE		*f;
	long		 len;

	if (src == NULL) {
		print_message("# skipped: BT_SRCDIR is not set (make check "
		    "sets it)\n");
		skip();
	}
	snprintf(dir, sizeof(dir), "%s/sql", src);
	n = scandir(dir, &ents, NULL, alphasort);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		size_t	 l = strlen(ents[i]->d_name);

		if (l > 4 && strcmp(ents[i]->d_name + l - 4, ".sql") == 0) {
			assert_true((size_t)k < store_nmigrations);
			assert_string_equal(store_migrations[k].sm_name,
			    ents[i]->d_name);
			assert_int_equal(store_migrations[k].sm_version, k + 1);
			snprintf(path, sizeof(path), "%s/%s", dir,
			    ents[i]->d_name);
			f = fopen(path, "rb");
			assert_non_null(f);
			fseek(f, 0, SEEK_END);
			len = ftell(f);
			rewind(f);
			buf = malloc((size_t)len + 1);
			assert_non_null(buf);
			assert_int_equal(fread(buf, 1, (size_t)len, f),
			    (size_t)len);
			fclose(f);
			assert_int_equal(store_migrations[k].sm_len,
			    (size_t)len);
			assert_memory_equal(store_migrations[k].sm_sql, buf,
			    (size_t)len);
			free(buf);
			k++;
		}
		free(ents[i]);
	}
	free(ents);
	assert_int_equal((size_t)k, store_nmigrations);
}

static void
newer_user_version_refused(void **state)
{
	struct fx	*fx = *state;
	char		 err[512] = "", sql[64], want[128];

	store_close(open_ok(fx));
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %zu",
	    store_nmigrations + 1);
	raw_exec(fx->path, sql);
	assert_null(store_open(fx->dir, err, sizeof(err)));
	snprintf(want, sizeof(want), "database schema version %zu is newer "
	    "than this bpftraced (%zu)", store_nmigrations + 1,
	    store_nmigrations);
	assert_contains(err, want);
	assert_contains(err, fx->path);
}

/* The real 001 followed by a fake 002 (built at run time). */
static void
fake_migrations(struct store_migration m[2], const char *name2,
    const char *sql2)
{
	m[0] = store_migrations[0];
	m[1] = (struct store_migration){ 2, name2, sql2, strlen(sql2) };
}

static void
migrations_apply_in_order_from_older_version(void **state)
{
	struct fx		*fx = *state;
	struct store_migration	 m[2];
	struct store_script	 a = mkscript("s01", "one", 1);
	struct loaded		 l;
	char			 err[512] = "";
	struct store		*st;

	fake_migrations(m, "002_note.sql", "ALTER TABLE scripts ADD COLUMN "
	    "note TEXT; UPDATE scripts SET note = 'migrated';");
	st = store_open_migrations(fx->dir, m, 1, err, sizeof(err));
	assert_non_null(st);
	add_ok(st, &a);
	store_close(st);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 1);

	st = store_open_migrations(fx->dir, m, 2, err, sizeof(err));
	if (st == NULL)
		fail_msg("store_open_migrations: %s", err);
	load_ok(st, &l);
	assert_int_equal(l.n, 1);
	assert_script_equal(&a, l.v[0]);
	loaded_free(&l);
	store_close(st);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 2);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM scripts"
	    " WHERE note = 'migrated'"), 1);
}

static void
failed_migration_rolls_back_and_keeps_version(void **state)
{
	struct fx		*fx = *state;
	struct store_migration	 m[2];
	char			 err[512] = "";

	fake_migrations(m, "002_bad.sql", "CREATE TABLE c (z INTEGER);"
	    " INSERT INTO nosuch VALUES (1);");
	assert_null(store_open_migrations(fx->dir, m, 2, err, sizeof(err)));
	assert_contains(err, fx->path);
	assert_contains(err, "002_bad.sql");
	assert_contains(err, "nosuch");
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_master"
	    " WHERE name = 'c'"), 0);
	store_close(open_ok(fx));	/* the real list still opens it */
}

static void
foreign_database_refused(void **state)
{
	struct fx	*fx = *state;
	char		 err[512] = "";

	raw_exec(fx->path, "CREATE TABLE someone_elses (x);");
	assert_null(store_open(fx->dir, err, sizeof(err)));
	assert_contains(err, fx->path);
	assert_contains(err, "not bpftraced's database");
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

/* --- damaged, unwritable and full storage --- */

static void
write_file(const char *path, const void *p, size_t len, off_t at)
{
	int	 fd = open(path, O_WRONLY | O_CREAT, 0600);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, len, at), (ssize_t)len);
	close(fd);
}

static void
garbage_file_refused_as_not_a_database(void **state)
{
	struct fx	*fx = *state;
	char		 junk[8192], err[512] = "";

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = "this is not a database\n"[i % 23];
	write_file(fx->path, junk, sizeof(junk), 0);
	assert_null(store_open(fx->dir, err, sizeof(err)));
	assert_contains(err, fx->path);
	assert_contains(err, "not a database");
}

static void
malformed_database_refused_as_corrupted(void **state)
{
	struct fx		*fx = *state;
	struct store		*st = open_ok(fx);
	struct store_script	 ss;
	char			 id[16], name[16], junk[4096 * 4];
	char			 err[512] = "";
	static char		 code[16 * 1024];

	memset(code, 'x', sizeof(code));
	for (unsigned i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "s%u", i);
		snprintf(name, sizeof(name), "n%u", i);
		ss = mkscript(id, name, i);
		ss.ss_code = code;
		ss.ss_codelen = sizeof(code);
		add_ok(st, &ss);
	}
	store_close(st);	/* checkpoints the WAL into the file */
	memset(junk, 0xa5, sizeof(junk));
	write_file(fx->path, junk, sizeof(junk), 4096);	/* pages 2-5 */
	assert_null(store_open(fx->dir, err, sizeof(err)));
	assert_contains(err, fx->path);
	assert_contains(err, "corrupted");
}

static void
state_dir_that_is_a_file_refused(void **state)
{
	struct fx	*fx = *state;
	char		 file[600], err[512] = "";

	snprintf(file, sizeof(file), "%s/file", fx->dir);
	write_file(file, "x", 1, 0);
	assert_null(store_open(file, err, sizeof(err)));
	assert_contains(err, "state directory");
	assert_contains(err, file);
	assert_contains(err, "is not a directory");
}

/*
 * Runs store_open(dir) as an unprivileged user when we are root (root
 * writes through mode bits); err gets its message. 1 if it was refused,
 * 0 if it opened, -1 if the test cannot run (reason in err).
 */
static int
open_as_nobody(const char *dir, char *err, size_t errlen)
{
	int	 p[2], status;
	pid_t	 pid;
	ssize_t	 n;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store	*st;
		char		 e[512] = "";

		close(p[0]);
		if (geteuid() == 0 && (setgroups(0, NULL) == -1 ||
		    setgid(NOBODY) == -1 || setuid(NOBODY) == -1)) {
			snprintf(e, sizeof(e), "cannot drop to uid %d: %s",
			    NOBODY, strerror(errno));
			(void)!write(p[1], e, strlen(e));
			_exit(3);
		}
		if (access(dir, X_OK) == -1) {
			snprintf(e, sizeof(e), "uid %d cannot reach %s: %s",
			    NOBODY, dir, strerror(errno));
			(void)!write(p[1], e, strlen(e));
			_exit(3);
		}
		st = store_open(dir, e, sizeof(e));
		(void)!write(p[1], e, strlen(e));
		store_close(st);
		_exit(st == NULL ? 1 : 0);
	}
	close(p[1]);
	n = read(p[0], err, errlen - 1);
	err[n > 0 ? n : 0] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 3)
		return -1;
	return WEXITSTATUS(status) == 1;
}

static void
unwritable_state_dir_refused(void **state)
{
	struct fx	*fx = *state;
	char		 dir[600], err[512] = "";
	int		 r;

	snprintf(dir, sizeof(dir), "%s/ro", fx->dir);
	assert_int_equal(mkdir(dir, 0500), 0);
	assert_int_equal(chmod(dir, 0555), 0);
	assert_int_equal(chmod(fx->dir, 0755), 0);
	r = open_as_nobody(dir, err, sizeof(err));
	if (r == -1) {
		print_message("# skipped: %s\n", err);
		skip();
	}
	assert_int_equal(r, 1);
	assert_contains(err, "state directory");
	assert_contains(err, dir);
	assert_contains(err, "is not writable");
}

static void
read_only_db_file_refused(void **state)
{
	struct fx	*fx = *state;
	char		 err[512] = "";
	int		 r;

	store_close(open_ok(fx));
	/* The dir is writable by anyone; the file only by its owner. */
	assert_int_equal(chmod(fx->dir, 0777), 0);
	assert_int_equal(chmod(fx->path, 0444), 0);
	r = open_as_nobody(fx->dir, err, sizeof(err));
	if (r == -1) {
		print_message("# skipped: %s\n", err);
		skip();
	}
	assert_int_equal(r, 1);
	assert_contains(err, fx->path);
	assert_contains(err, "is not writable");
}

static void
disk_full_reported_and_store_recovers(void **state)
{
	struct fx		*fx = *state;
	struct store		*st;
	struct store_script	 ss;
	struct loaded		 l;
	char			 id[16], name[16], err[512] = "", filler[600];
	char			 block[4096];
	static char		 code[8 * 1024];
	unsigned		 i, added = 0;
	int			 fd, full = 0;

	snprintf(fx->mnt, sizeof(fx->mnt), "%s/mnt", fx->dir);
	assert_int_equal(mkdir(fx->mnt, 0700), 0);
	if (mount("tmpfs", fx->mnt, "tmpfs", 0, "size=512k,mode=0700") == -1) {
		print_message("# skipped: cannot mount a small tmpfs to fill: "
		    "%s\n", strerror(errno));
		skip();
	}
	fx->mounted = 1;
	/* The state dir is the mount itself: fill it, then write. */
	st = store_open(fx->mnt, err, sizeof(err));
	if (st == NULL)
		fail_msg("store_open on tmpfs: %s", err);
	memset(code, 'y', sizeof(code));
	ss = mkscript("s0", "n0", 0);
	add_ok(st, &ss);
	added++;

	snprintf(filler, sizeof(filler), "%s/filler", fx->mnt);
	fd = open(filler, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	memset(block, 0, sizeof(block));
	while (write(fd, block, sizeof(block)) > 0)
		;
	assert_int_equal(errno, ENOSPC);
	close(fd);

	for (i = 1; i < 64 && !full; i++) {
		snprintf(id, sizeof(id), "s%u", i);
		snprintf(name, sizeof(name), "n%u", i);
		ss = mkscript(id, name, i);
		ss.ss_code = code;
		ss.ss_codelen = sizeof(code);
		err[0] = '\0';
		if (store_script_add(st, &ss, err, sizeof(err)) == 0)
			added++;
		else
			full = 1;
	}
	assert_true(full);
	assert_contains(err, "disk full");
	assert_contains(err, store_path(st));
	/* Reads still work and show only what was committed. */
	load_ok(st, &l);
	assert_int_equal(l.n, added);
	loaded_free(&l);

	/* With space again the same add succeeds on the same store. */
	assert_int_equal(unlink(filler), 0);
	add_ok(st, &ss);
	added++;
	store_close(st);
	st = store_open(fx->mnt, err, sizeof(err));
	if (st == NULL)
		fail_msg("reopen after disk full: %s", err);
	load_ok(st, &l);
	assert_int_equal(l.n, added);
	loaded_free(&l);
	store_close(st);
}

/* --- concurrency and crashes --- */

#define THREADS		4
#define PER_THREAD	25

struct worker {
	struct store	*st;
	int		 t;
	int		 fails;
};

static void *
worker_run(void *arg)
{
	struct worker		*w = arg;
	struct store_script	 ss;
	char			 id[16], name[16], err[512];

	for (int i = 0; i < PER_THREAD; i++) {
		unsigned	 c = (unsigned)(w->t * PER_THREAD + i);

		snprintf(id, sizeof(id), "s%u", c);
		snprintf(name, sizeof(name), "n%u", c);
		ss = mkscript(id, name, c);
		if (store_script_add(w->st, &ss, err, sizeof(err)) != 0 ||
		    store_script_touch(w->st, id, 1) != 0 ||
		    store_audit(w->st, "u", "p", "register", id, 1, NULL) != 0)
			w->fails++;
	}
	return NULL;
}

static void
threads_share_one_store(void **state)
{
	struct fx	*fx = *state;
	struct store	*st = open_ok(fx);
	struct worker	 w[THREADS];
	pthread_t	 th[THREADS];
	struct loaded	 l;

	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){ .st = st, .t = t };
		assert_int_equal(pthread_create(&th[t], NULL, worker_run,
		    &w[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].fails, 0);
	}
	load_ok(st, &l);
	assert_int_equal(l.n, THREADS * PER_THREAD);
	loaded_free(&l);
	store_close(st);
}

/*
 * A child adds scripts and reports each id on a pipe only after
 * store_script_add() returned; we SIGKILL it mid-way. Every reported id
 * must be in the database, which must open cleanly.
 */
static void
killed_writer_loses_no_committed_script(void **state)
{
	struct fx	*fx = *state;
	struct store	*st;
	struct loaded	 l;
	char		 buf[65536], *line, *save;
	size_t		 len = 0, reported = 0;
	ssize_t		 n;
	int		 p[2], status, killed = 0;
	pid_t		 pid;

	store_close(open_ok(fx));	/* the child should not migrate */
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store_script	 ss;
		char			 id[16], name[16], e[512];

		close(p[0]);
		st = store_open(fx->dir, e, sizeof(e));
		if (st == NULL)
			_exit(2);
		for (unsigned i = 0; i <= STORE_MAX_CLUSTER; i++) {
			snprintf(id, sizeof(id), "s%u", i);
			snprintf(name, sizeof(name), "n%u", i);
			ss = mkscript(id, name, i);
			if (store_script_add(st, &ss, e, sizeof(e)) != 0)
				_exit(2);
			snprintf(e, sizeof(e), "%s\n", id);
			if (write(p[1], e, strlen(e)) == -1)
				_exit(2);
		}
		_exit(0);
	}
	close(p[1]);
	for (;;) {
		n = read(p[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (!killed && len >= 200) {	/* some 40 commits in */
			kill(pid, SIGKILL);
			killed = 1;
		}
		assert_true(len < sizeof(buf) - 1);
	}
	buf[len] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status))
		fail_msg("the writer ended before it was killed (status %d)",
		    status);

	st = open_ok(fx);
	load_ok(st, &l);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (loaded_find(&l, line) == NULL)
			fail_msg("%s was committed but is missing", line);
		reported++;
	}
	assert_true(reported >= 40);
	/* At most the one add in flight when killed may have landed too. */
	assert_true(l.n == reported || l.n == reported + 1);
	loaded_free(&l);
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
		T(migrate_fresh_db_sets_user_version_to_migration_count),
		T(open_creates_missing_state_dir_0700),
		T(open_uses_wal),
		T(embedded_migrations_match_sql_files),
		T(newer_user_version_refused),
		T(migrations_apply_in_order_from_older_version),
		T(failed_migration_rolls_back_and_keeps_version),
		T(foreign_database_refused),
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
		T(audit_append_and_load),
		T(audit_prune_keeps_newest_rows_of_one_action),
		T(garbage_file_refused_as_not_a_database),
		T(malformed_database_refused_as_corrupted),
		T(state_dir_that_is_a_file_refused),
		T(unwritable_state_dir_refused),
		T(read_only_db_file_refused),
		T(disk_full_reported_and_store_recovers),
		T(threads_share_one_store),
		T(killed_writer_loses_no_committed_script),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
