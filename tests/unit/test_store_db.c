/* SPDX-License-Identifier: MIT */
/*
 * test_store_db.c - the store's connection and file (store_db.c): the
 * state directory and file modes, WAL, the schema migrations, refusals
 * of damaged, foreign, unwritable and full storage with a reason, one
 * store shared by threads, and a writer killed mid-way. Each test gets a
 * fresh temporary state directory.
 */
#include "testhelp.h"
#include "store_testhelp.h"

#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>

#define NOBODY		65534

/* --- helpers --- */

static const struct store_script *
loaded_find(const struct loaded *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i]->ss_script_id, id) == 0)
			return l->v[i];
	return NULL;
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
