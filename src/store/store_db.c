/* SPDX-License-Identifier: MIT */
/*
 * store_db.c - the store's one sqlite connection: opening and checking
 * the directory, the file and its integrity, the schema migrations, the
 * prepared statements, and the error wording and transaction helpers
 * through which store.c (scripts, instances) and store_audit.c (the audit
 * log) run their statements (store_int.h). Calls neither of them.
 *
 * Threads and locks: libmicrohttpd threads (control stores, touches on
 * fetch) and the main thread (restore, expiry, supervisor) call in. The
 * connection is opened SQLITE_OPEN_NOMUTEX and st_lock serializes all use
 * of it: every public function but store_open()/store_close() holds
 * st_lock for its whole transaction, so there is one writer and no
 * statement is ever used by two threads. Nothing else is locked while
 * st_lock is held; callbacks that run under it must not call back in.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

/*
 * Constant text only: every value is a bound parameter. No PRAGMA here:
 * sqlite applies "PRAGMA synchronous = ..." when it is prepared, not when
 * it is stepped, so those run through store_pragma() each time.
 */
static const char *const store_stmt_sql[STMT_COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_SCRIPT_CONFLICT] =
	    "SELECT script_id, name, cluster FROM scripts"
	    " WHERE script_id = ?1 OR name = ?2 OR cluster = ?3 LIMIT 1",
	[STMT_SCRIPT_INSERT] =
	    "INSERT INTO scripts (script_id, name, named, code, owner, peer,"
	    " created_ms, last_fetch_ms, want_run, restart, cluster)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[STMT_SCRIPT_EXISTS] = "SELECT 1 FROM scripts WHERE script_id = ?1",
	[STMT_SCRIPT_SET_RUNNING] =
	    "UPDATE scripts SET want_run = ?2 WHERE script_id = ?1",
	[STMT_SCRIPT_TOUCH] =
	    "UPDATE scripts SET last_fetch_ms = ?2 WHERE script_id = ?1",
	[STMT_SCRIPT_DELETE] = "DELETE FROM scripts WHERE script_id = ?1",
	[STMT_SCRIPTS_SELECT] =
	    "SELECT script_id, name, named, code, owner, peer, created_ms,"
	    " last_fetch_ms, want_run, restart, cluster FROM scripts"
	    " ORDER BY created_ms, rowid",
	[STMT_INST_DELETE] = "DELETE FROM instances WHERE script_id = ?1",
	[STMT_INST_INSERT] =
	    "INSERT INTO instances (script_id, var, name, inst_id)"
	    " VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (script_id, var, name) DO NOTHING",
	[STMT_INST_LOOKUP] =
	    "SELECT inst_id FROM instances"
	    " WHERE script_id = ?1 AND var = ?2 AND name = ?3",
	[STMT_INST_SELECT] =
	    "SELECT var, name, inst_id FROM instances WHERE script_id = ?1"
	    " ORDER BY var, inst_id",
	[STMT_AUDIT_INSERT] =
	    "INSERT INTO audit (time_ms, user, peer, action, target, ok,"
	    " message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[STMT_AUDIT_SELECT] =
	    "SELECT time_ms, user, peer, action, target, ok, message"
	    " FROM audit WHERE time_ms >= ?1 ORDER BY seq",
	[STMT_AUDIT_PRUNE] =
	    "DELETE FROM audit WHERE action = ?1 AND seq <= (SELECT seq"
	    " FROM audit WHERE action = ?1 ORDER BY seq DESC LIMIT 1"
	    " OFFSET ?2)",
	[STMT_AUDIT_PRUNE_REFUSED] =
	    "DELETE FROM audit WHERE ok = 0 AND action <> 'login' AND seq <="
	    " (SELECT seq FROM audit WHERE ok = 0 AND action <> 'login'"
	    " ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
	[STMT_AUDIT_PRUNE_ALL] =
	    "DELETE FROM audit WHERE seq <= (SELECT seq FROM audit"
	    " ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
};

/*
 * 1 (with err) when the database file we hold is no longer the one at
 * st_path (the state directory was removed or replaced while running):
 * a write would go to an unlinked file and be lost at the next start.
 */
int
store_file_gone(struct store *st, char *err, size_t errlen)
{
	struct stat	 sb;

	if (st->st_ino == 0)
		return 0;
	if (stat(st->st_path, &sb) == 0 && sb.st_dev == st->st_dev &&
	    sb.st_ino == st->st_ino)
		return 0;
	seterr(err, errlen, "%s: the state database was removed or replaced "
	    "while bpftraced runs; refusing to write where it would be lost "
	    "(restart bpftraced)", st->st_path);
	return 1;
}

/* --- errors --- */

/*
 * The reasons that need no errno: "<reason> (<sqlite's message>)<hint>",
 * by primary result code.
 */
static const struct store_reason {
	int		 sr_rc;
	const char	*sr_reason;
	const char	*sr_hint;
} store_reasons[] = {
	{ SQLITE_NOTADB, "not a database", ": the file is damaged or not "
	    "bpftraced's; move it away to start with no scripts" },
	{ SQLITE_CORRUPT, "the database file is corrupted",
	    "; move it away to start with no scripts" },
	{ SQLITE_READONLY, "the database is read-only", "; check the "
	    "permissions of the file, its directory and the -wal/-shm files" },
	{ SQLITE_BUSY, "the database is locked by another process", "" },
	{ SQLITE_LOCKED, "the database is locked by another process", "" },
};

/*
 * Fills err with "<file>: <what>: <reason>", the reason chosen by the
 * class of rc so that a full disk, a damaged file and a permission problem
 * read differently. Call it before anything else runs on the connection
 * (a ROLLBACK would replace sqlite's message).
 */
void
store_seterr(struct store *st, int rc, const char *what, char *err,
    size_t errlen)
{
	const char	*msg;
	int		 sys;

	msg = st->st_db != NULL ? sqlite3_errmsg(st->st_db) :
	    sqlite3_errstr(rc);
	sys = st->st_db != NULL ? sqlite3_system_errno(st->st_db) : 0;
	if ((rc & 0xff) == SQLITE_FULL || sys == ENOSPC || sys == EDQUOT) {
		seterr(err, errlen, "%s: %s: disk full (%s)", st->st_path, what,
		    sys != 0 ? strerror(sys) : msg);
		return;
	}
	for (size_t i = 0; i < sizeof(store_reasons) /
	    sizeof(store_reasons[0]); i++)
		if ((rc & 0xff) == store_reasons[i].sr_rc) {
			seterr(err, errlen, "%s: %s: %s (%s)%s", st->st_path,
			    what, store_reasons[i].sr_reason, msg,
			    store_reasons[i].sr_hint);
			return;
		}
	switch (rc & 0xff) {
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_IOERR:
		seterr(err, errlen, "%s: %s: %s (%s%s%s)", st->st_path, what,
		    (rc & 0xff) == SQLITE_IOERR ? "I/O error" :
		    "cannot open the database", msg, sys != 0 ? ": " : "",
		    sys != 0 ? strerror(sys) : "");
		break;
	case SQLITE_NOMEM:
		seterr(err, errlen, "%s: %s: out of memory", st->st_path, what);
		break;
	default:
		seterr(err, errlen, "%s: %s: %s", st->st_path, what, msg);
		break;
	}
}

/*
 * For the writes whose failure the caller only logs (touches, audit
 * rows): rc SQLITE_OK clears *failing and returns 0; else the reason is
 * logged, once per streak of failures (*failing set), and -1 returned.
 */
int
store_warn_streak(struct store *st, int rc, const char *what, int *failing)
{
	char	 err[512];

	if (rc == SQLITE_OK) {
		*failing = 0;
		return 0;
	}
	store_seterr(st, rc, what, err, sizeof(err));
	if (!*failing)
		log_warnx("%s (further failures not logged until one "
		    "succeeds)", err);
	*failing = 1;
	return -1;
}

/* --- statements and transactions (st_lock held) --- */

void
store_lock(struct store *st)
{
	pthread_mutex_lock(&st->st_lock);
}

void
store_unlock(struct store *st)
{
	pthread_mutex_unlock(&st->st_lock);
}

sqlite3_stmt *
store_stmt(struct store *st, enum store_stmt which)
{
	return st->st_stmt[which];
}

/* Makes every statement reusable and drops the caller's pointers. */
void
store_reset_all(struct store *st)
{
	for (int i = 0; i < STMT_COUNT; i++) {
		if (st->st_stmt[i] == NULL)
			continue;
		sqlite3_reset(st->st_stmt[i]);
		sqlite3_clear_bindings(st->st_stmt[i]);
	}
}

/* Steps a statement that returns no row; SQLITE_OK or the error. */
int
store_run(struct store *st, enum store_stmt which)
{
	int	 rc;

	rc = sqlite3_step(store_stmt(st, which));
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		rc = SQLITE_OK;
	sqlite3_reset(store_stmt(st, which));
	return rc;
}

int
store_bind_str(sqlite3_stmt *s, int col, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(s, col);
	return sqlite3_bind_text(s, col, v, -1, SQLITE_STATIC);
}

/*
 * Binds v[0] .. v[n - 1] to columns col .. col + n - 1 as store_bind_str()
 * does; SQLITE_OK or the first error.
 */
int
store_bind_strs(sqlite3_stmt *s, int col, const char *const *v, int n)
{
	int	 rc = SQLITE_OK;

	for (int i = 0; i < n && rc == SQLITE_OK; i++)
		rc = store_bind_str(s, col + i, v[i]);
	return rc;
}

int
store_begin(struct store *st)
{
	return store_run(st, STMT_BEGIN);
}

int
store_commit(struct store *st)
{
	return store_run(st, STMT_COMMIT);
}

/* After a failure: undo whatever the transaction did, if still open. */
void
store_rollback(struct store *st)
{
	store_reset_all(st);
	if (sqlite3_get_autocommit(st->st_db) == 0)
		(void)store_run(st, STMT_ROLLBACK);
}

/*
 * Runs body in one transaction under st_lock: commits what it did, or
 * rolls it all back and leaves the reason in err ("what: ..."). Every
 * statement is reset and unbound afterwards. 0 or -1.
 */
int
store_write(struct store *st, const char *what, store_body body,
    const void *arg, char *err, size_t errlen)
{
	int	 rc, ret = -1;

	store_lock(st);
	rc = store_begin(st);
	if (rc == SQLITE_OK)
		rc = body(st, arg, err, errlen);
	if (rc == SQLITE_OK)
		rc = store_commit(st);
	if (rc == SQLITE_OK)
		ret = 0;
	else {
		if (rc != STORE_FAILED)
			store_seterr(st, rc, what, err, errlen);
		store_rollback(st);
	}
	store_reset_all(st);
	store_unlock(st);
	return ret;
}

/* --- open, migrate, close --- */

#define STORE_STR_(x)	#x
#define STORE_STR(x)	STORE_STR_(x)

/* Runs one constant PRAGMA; copies the first column of its first row. */
int
store_pragma(struct store *st, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt	*s = NULL;
	const char	*v;
	int		 rc;

	if (out != NULL && outlen != 0)
		out[0] = '\0';
	rc = sqlite3_prepare_v2(st->st_db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		v = (const char *)sqlite3_column_text(s, 0);
		if (out != NULL && outlen != 0)
			snprintf(out, outlen, "%s", v != NULL ? v : "");
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	/* On error keep sqlite's message: finalize would not clear it. */
	sqlite3_finalize(s);
	return rc;
}

/* The directory exists (made 0700 if missing), is one, and is writable. */
static int
store_check_dir(const char *dir, char *err, size_t errlen)
{
	struct stat	 sb;

	if (stat(dir, &sb) == -1) {
		if (errno != ENOENT) {
			seterr(err, errlen, "state directory %s: %s", dir,
			    strerror(errno));
			return -1;
		}
		if (mkdir(dir, 0700) == -1) {
			seterr(err, errlen, "cannot create state directory %s: "
			    "%s", dir, strerror(errno));
			return -1;
		}
	} else if (!S_ISDIR(sb.st_mode)) {
		seterr(err, errlen, "state directory %s is not a directory",
		    dir);
		return -1;
	}
	/* sqlite needs to create -wal and -shm files beside the db. */
	if (access(dir, W_OK | X_OK) == -1) {
		seterr(err, errlen, "state directory %s is not writable: %s",
		    dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Creates the file 0600 (sqlite would use 0644) or checks it is writable. */
static int
store_check_file(const char *path, char *err, size_t errlen)
{
	int	 fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1) {
		if (errno == EACCES || errno == EPERM || errno == EROFS)
			seterr(err, errlen, "%s is not writable: %s", path,
			    strerror(errno));
		else
			seterr(err, errlen, "cannot open %s: %s", path,
			    strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* Refuses a file that quick_check finds damaged (reads the whole db). */
static int
store_check_integrity(struct store *st, char *err, size_t errlen)
{
	char	 res[256];
	int	 rc;

	rc = store_pragma(st, "PRAGMA quick_check(1)", res, sizeof(res));
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "checking integrity", err, errlen);
		return -1;
	}
	if (strcmp(res, "ok") != 0) {
		for (char *p = res; *p != '\0'; p++)	/* one line */
			if (*p == '\n')
				*p = ' ';
		seterr(err, errlen, "%s: checking integrity: the database file "
		    "is corrupted (%s); move it away to start with no scripts",
		    st->st_path, res);
		return -1;
	}
	return 0;
}

static int
store_user_version(struct store *st, long long *v, char *err, size_t errlen)
{
	char		 res[32];
	const char	*errstr;
	int		 rc;

	rc = store_pragma(st, "PRAGMA user_version", res, sizeof(res));
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "reading the schema version", err, errlen);
		return -1;
	}
	*v = strtonum_ll(res, INT_MIN, INT_MAX, &errstr);
	if (errstr != NULL) {
		seterr(err, errlen, "%s: schema version \"%s\" is %s",
		    st->st_path, res, errstr);
		return -1;
	}
	return 0;
}

/*
 * Applies migrations user_version+1 .. n, each in its own transaction
 * that also sets user_version, so a failure leaves the last good version.
 */
static int
store_migrate(struct store *st, const struct store_migration *mig, size_t n,
    char *err, size_t errlen)
{
	char		 what[128], sql[64], res[32];
	long long	 v;
	int		 rc;

	if (store_user_version(st, &v, err, errlen) == -1)
		return -1;
	if (v < 0 || (unsigned long long)v > n) {
		seterr(err, errlen, "%s: database schema version %lld is newer "
		    "than this bpftraced (%zu)", st->st_path, v, n);
		return -1;
	}
	if (v == 0) {
		/* Never add our tables to some other application's file. */
		rc = store_pragma(st, "SELECT count(*) FROM sqlite_master",
		    res, sizeof(res));
		if (rc != SQLITE_OK) {
			store_seterr(st, rc, "reading the schema", err, errlen);
			return -1;
		}
		if (strcmp(res, "0") != 0) {
			seterr(err, errlen, "%s: has tables but no bpftraced "
			    "schema version: not bpftraced's database",
			    st->st_path);
			return -1;
		}
	}
	for (size_t i = (size_t)v; i < n; i++) {
		snprintf(what, sizeof(what), "applying schema migration %s",
		    mig[i].sm_name);
		if (mig[i].sm_version != (int)i + 1) {
			seterr(err, errlen, "%s: %s: numbered %d, expected %zu",
			    st->st_path, what, mig[i].sm_version, i + 1);
			return -1;
		}
		rc = sqlite3_exec(st->st_db, "BEGIN IMMEDIATE", NULL, NULL,
		    NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(st->st_db, mig[i].sm_sql, NULL, NULL,
			    NULL);
		if (rc == SQLITE_OK) {
			/* An integer we own; PRAGMA takes no parameters. */
			snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
			    mig[i].sm_version);
			rc = sqlite3_exec(st->st_db, sql, NULL, NULL, NULL);
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(st->st_db, "COMMIT", NULL, NULL,
			    NULL);
		if (rc != SQLITE_OK) {
			store_seterr(st, rc, what, err, errlen);
			if (sqlite3_get_autocommit(st->st_db) == 0)
				sqlite3_exec(st->st_db, "ROLLBACK", NULL, NULL,
				    NULL);
			return -1;
		}
		log_info("%s: applied schema migration %s", st->st_path,
		    mig[i].sm_name);
	}
	return 0;
}

struct store *
store_open_migrations(const char *dir, const struct store_migration *mig,
    size_t nmig, char *err, size_t errlen)
{
	struct store	*st = NULL;
	char		 mode[16];
	size_t		 len;
	int		 rc;

	if (dir == NULL || *dir == '\0') {
		seterr(err, errlen, "no state directory given");
		goto fail;
	}
	if (sqlite3_threadsafe() == 0) {	/* st_lock relies on it */
		seterr(err, errlen, "sqlite was built without thread support "
		    "(SQLITE_THREADSAFE=0)");
		goto fail;
	}
	if (store_check_dir(dir, err, errlen) == -1)
		goto fail;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto nomem;
	len = strlen(dir) + 1 + sizeof(STORE_DB_NAME);
	st->st_path = malloc(len);
	if (st->st_path == NULL)
		goto nomem;
	snprintf(st->st_path, len, "%s/%s", dir, STORE_DB_NAME);
	if (pthread_mutex_init(&st->st_lock, NULL) != 0)
		goto nomem;
	st->st_lock_init = 1;
	if (store_check_file(st->st_path, err, errlen) == -1)
		goto fail;

	rc = sqlite3_open_v2(st->st_path, &st->st_db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (st->st_db == NULL)
		goto nomem;
	sqlite3_extended_result_codes(st->st_db, 1);
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "opening", err, errlen);
		goto fail;
	}
	if (sqlite3_db_readonly(st->st_db, "main") == 1) {
		store_seterr(st, SQLITE_READONLY, "opening", err, errlen);
		goto fail;
	}
	sqlite3_busy_timeout(st->st_db, STORE_BUSY_TIMEOUT_MS);
	rc = store_pragma(st, "PRAGMA foreign_keys = ON", NULL, 0);
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "enabling foreign keys", err, errlen);
		goto fail;
	}
	if (store_check_integrity(st, err, errlen) == -1)
		goto fail;
	rc = store_pragma(st, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "enabling WAL", err, errlen);
		goto fail;
	}
	if (strcmp(mode, "wal") != 0) {
		seterr(err, errlen, "%s: enabling WAL: journal mode stayed "
		    "\"%s\" (is the file system shared or read-only?)",
		    st->st_path, mode);
		goto fail;
	}
	rc = store_pragma(st, "PRAGMA synchronous = FULL", NULL, 0);
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "setting synchronous=FULL", err, errlen);
		goto fail;
	}
	rc = store_pragma(st, "PRAGMA cache_size = -"
	    STORE_STR(STORE_CACHE_KIB), NULL, 0);
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "setting cache_size", err, errlen);
		goto fail;
	}
	if (store_migrate(st, mig, nmig, err, errlen) == -1)
		goto fail;
	for (int i = 0; i < STMT_COUNT; i++) {
		rc = sqlite3_prepare_v3(st->st_db, store_stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->st_stmt[i], NULL);
		if (rc != SQLITE_OK) {
			store_seterr(st, rc, "preparing statements (schema "
			    "out of date?)", err, errlen);
			goto fail;
		}
	}
	return st;

nomem:
	seterr(err, errlen, "opening the state database in %s: out of memory",
	    dir);
fail:
	store_close(st);
	return NULL;
}

struct store *
store_open(const char *dir, char *err, size_t errlen)
{
	struct store	*st;
	struct stat	 sb;

	st = store_open_migrations(dir, store_migrations, store_nmigrations,
	    err, errlen);
	if (st && stat(st->st_path, &sb) == 0) {	/* see store_file_gone */
		st->st_dev = sb.st_dev;
		st->st_ino = sb.st_ino;
	}
	return st;
}

void
store_close(struct store *st)
{
	int	 rc;

	if (st == NULL)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->st_stmt[i]);
	if (st->st_db != NULL) {
		/* The last close checkpoints the WAL into the db file. */
		rc = sqlite3_close(st->st_db);
		if (rc != SQLITE_OK)
			log_warnx("%s: closing: %s", st->st_path,
			    sqlite3_errstr(rc));
	}
	if (st->st_lock_init)
		pthread_mutex_destroy(&st->st_lock);
	free(st->st_path);
	free(st);
}

const char *
store_path(const struct store *st)
{
	return st->st_path;
}
