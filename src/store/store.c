/* SPDX-License-Identifier: MIT */
/*
 * store.c - registered scripts, their instance ids and the audit log in
 * one sqlite database (tables and guarantees: store.h; schema: sql/).
 * Open checks the directory, the file and its integrity, then applies the
 * embedded migrations; every later call runs prepared statements.
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
#include "util.h"

enum store_stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SCRIPT_CONFLICT,
	STMT_SCRIPT_INSERT,
	STMT_SCRIPT_EXISTS,
	STMT_SCRIPT_SET_RUNNING,
	STMT_SCRIPT_TOUCH,
	STMT_SCRIPT_DELETE,
	STMT_SCRIPTS_SELECT,
	STMT_INST_DELETE,
	STMT_INST_INSERT,
	STMT_INST_LOOKUP,
	STMT_INST_SELECT,
	STMT_AUDIT_INSERT,
	STMT_AUDIT_SELECT,
	STMT_AUDIT_PRUNE,
	STMT_AUDIT_PRUNE_REFUSED,
	STMT_AUDIT_PRUNE_ALL,
	STMT_COUNT
};

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

/* Adding one is a one-line change here; the column is plain TEXT. */
static const char *const store_audit_actions[] = {
	"register", "start", "stop", "deregister", "expire", "restore",
	"login", "refused", NULL
};

struct store {
	sqlite3		*st_db;
	char		*st_path;		/* dir/bpftraced.db */
	pthread_mutex_t	 st_lock;
	int		 st_lock_init;
	sqlite3_stmt	*st_stmt[STMT_COUNT];
	int		 st_touch_failing;	/* logged; quiet till success */
	int		 st_audit_failing;
	int64_t		 st_audit_max;		/* rows kept; 0: all */
	int64_t		 st_audit_added;	/* since the last prune */
	dev_t		 st_dev;		/* the file we opened */
	ino_t		 st_ino;
};

/*
 * 1 (with err) when the database file we hold is no longer the one at
 * st_path (the state directory was removed or replaced while running):
 * a write would go to an unlinked file and be lost at the next start.
 */
static int
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
 * Fills err with "<file>: <what>: <reason>", the reason chosen by the
 * class of rc so that a full disk, a damaged file and a permission problem
 * read differently. Call it before anything else runs on the connection
 * (a ROLLBACK would replace sqlite's message).
 */
static void
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
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
		seterr(err, errlen, "%s: %s: not a database (%s): the file is "
		    "damaged or not bpftraced's; move it away to start with no "
		    "scripts", st->st_path, what, msg);
		break;
	case SQLITE_CORRUPT:
		seterr(err, errlen, "%s: %s: the database file is corrupted "
		    "(%s); move it away to start with no scripts",
		    st->st_path, what, msg);
		break;
	case SQLITE_READONLY:
		seterr(err, errlen, "%s: %s: the database is read-only (%s); "
		    "check the permissions of the file, its directory and the "
		    "-wal/-shm files", st->st_path, what, msg);
		break;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
		seterr(err, errlen, "%s: %s: cannot open the database (%s%s%s)",
		    st->st_path, what, msg, sys != 0 ? ": " : "",
		    sys != 0 ? strerror(sys) : "");
		break;
	case SQLITE_IOERR:
		seterr(err, errlen, "%s: %s: I/O error (%s%s%s)", st->st_path,
		    what, msg, sys != 0 ? ": " : "",
		    sys != 0 ? strerror(sys) : "");
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		seterr(err, errlen, "%s: %s: the database is locked by another "
		    "process (%s)", st->st_path, what, msg);
		break;
	case SQLITE_NOMEM:
		seterr(err, errlen, "%s: %s: out of memory", st->st_path, what);
		break;
	default:
		seterr(err, errlen, "%s: %s: %s", st->st_path, what, msg);
		break;
	}
}

/* --- statements and transactions (st_lock held) --- */

static void
store_lock(struct store *st)
{
	pthread_mutex_lock(&st->st_lock);
}

static void
store_unlock(struct store *st)
{
	pthread_mutex_unlock(&st->st_lock);
}

static sqlite3_stmt *
store_stmt(struct store *st, enum store_stmt which)
{
	return st->st_stmt[which];
}

/* Makes every statement reusable and drops the caller's pointers. */
static void
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
static int
store_run(struct store *st, enum store_stmt which)
{
	int	 rc;

	rc = sqlite3_step(store_stmt(st, which));
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		rc = SQLITE_OK;
	sqlite3_reset(store_stmt(st, which));
	return rc;
}

static int
store_bind_str(sqlite3_stmt *s, int col, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(s, col);
	return sqlite3_bind_text(s, col, v, -1, SQLITE_STATIC);
}

static int
store_begin(struct store *st)
{
	return store_run(st, STMT_BEGIN);
}

static int
store_commit(struct store *st)
{
	return store_run(st, STMT_COMMIT);
}

/* After a failure: undo whatever the transaction did, if still open. */
static void
store_rollback(struct store *st)
{
	store_reset_all(st);
	if (sqlite3_get_autocommit(st->st_db) == 0)
		(void)store_run(st, STMT_ROLLBACK);
}

/*
 * The statements of one write transaction. Returns SQLITE_OK, an sqlite
 * error code (store_write words it), or STORE_FAILED when it refused for
 * a reason of its own, already written to err.
 */
#define STORE_FAILED	(-1)	/* no sqlite result code is negative */
#define STORE_STR_(x)	#x
#define STORE_STR(x)	STORE_STR_(x)
typedef int	(*store_body)(struct store *, const void *arg, char *err,
		    size_t errlen);

/*
 * Runs body in one transaction under st_lock: commits what it did, or
 * rolls it all back and leaves the reason in err ("what: ..."). Every
 * statement is reset and unbound afterwards. 0 or -1.
 */
static int
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

/*
 * Copies column col (NULL stays NULL) into *out, NUL-terminated; *lenp
 * gets the byte count if not NULL. Returns -1 on ENOMEM. Caller frees.
 */
static int
store_col_dup(sqlite3_stmt *s, int col, int blob, char **out, size_t *lenp)
{
	const void	*p;
	size_t		 len;

	*out = NULL;
	if (lenp != NULL)
		*lenp = 0;
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return 0;
	p = blob ? sqlite3_column_blob(s, col) :
	    (const void *)sqlite3_column_text(s, col);
	len = (size_t)sqlite3_column_bytes(s, col);
	if (p == NULL && len != 0)
		return -1;
	*out = malloc(len + 1);
	if (*out == NULL)
		return -1;
	if (len != 0)
		memcpy(*out, p, len);
	(*out)[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return 0;
}

/* --- open, migrate, close --- */

/* Runs one constant PRAGMA; copies the first column of its first row. */
static int
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

/* --- scripts --- */

/* Explains which unique column a new script collides with, if any. */
static int
store_script_conflict(struct store *st, const struct store_script *ss,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s = store_stmt(st, STMT_SCRIPT_CONFLICT);
	const char	*id, *name;
	int		 rc;

	rc = store_bind_str(s, 1, ss->ss_script_id);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 2, ss->ss_name);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, ss->ss_cluster);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW) {
		store_seterr(st, rc, "adding a script", err, errlen);
		return -1;
	}
	id = (const char *)sqlite3_column_text(s, 0);
	name = (const char *)sqlite3_column_text(s, 1);
	if (id != NULL && strcmp(id, ss->ss_script_id) == 0)
		seterr(err, errlen, "script id %s is already stored", id);
	else if (name != NULL && strcmp(name, ss->ss_name) == 0)
		seterr(err, errlen, "a script named \"%s\" is already stored "
		    "(%s)", name, id != NULL ? id : "?");
	else
		seterr(err, errlen, "PMID cluster %u is already used by script "
		    "%s", ss->ss_cluster, id != NULL ? id : "?");
	return -1;
}

static int
store_script_valid(const struct store_script *ss, char *err, size_t errlen)
{
	if (ss == NULL || ss->ss_script_id == NULL ||
	    ss->ss_script_id[0] == '\0') {
		seterr(err, errlen, "a stored script needs a script id");
		return -1;
	}
	if (ss->ss_name == NULL || ss->ss_name[0] == '\0') {
		seterr(err, errlen, "script %s: a stored script needs a name",
		    ss->ss_script_id);
		return -1;
	}
	if (ss->ss_code == NULL && ss->ss_codelen != 0) {
		seterr(err, errlen, "script %s: code is NULL",
		    ss->ss_script_id);
		return -1;
	}
	if (ss->ss_cluster > STORE_MAX_CLUSTER) {
		seterr(err, errlen, "script %s: PMID cluster %u is past %d",
		    ss->ss_script_id, ss->ss_cluster, STORE_MAX_CLUSTER);
		return -1;
	}
	return 0;
}

static int
store_script_insert(struct store *st, const void *arg, char *err,
    size_t errlen)
{
	const struct store_script	*ss = arg;
	sqlite3_stmt			*s = store_stmt(st, STMT_SCRIPT_INSERT);
	int				 rc;

	if (store_script_conflict(st, ss, err, errlen) == -1)
		return STORE_FAILED;
	rc = store_bind_str(s, 1, ss->ss_script_id);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 2, ss->ss_name);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 3, ss->ss_named != 0);
	if (rc == SQLITE_OK)	/* zero bytes still bind a (empty) BLOB */
		rc = sqlite3_bind_blob64(s, 4,
		    ss->ss_code != NULL ? ss->ss_code : "", ss->ss_codelen,
		    SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 5, ss->ss_owner);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 6, ss->ss_peer);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 7, ss->ss_created_ms);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 8, ss->ss_last_fetch_ms);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 9, ss->ss_want_run != 0);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 10, ss->ss_restart);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 11, ss->ss_cluster);
	if (rc == SQLITE_OK)
		rc = store_run(st, STMT_SCRIPT_INSERT);
	return rc;
}

int
store_script_add(struct store *st, const struct store_script *ss, char *err,
    size_t errlen)
{
	if (store_script_valid(ss, err, errlen) == -1 ||
	    store_file_gone(st, err, errlen))
		return -1;
	return store_write(st, "adding a script", store_script_insert, ss, err,
	    errlen);
}

/* 1 if script_id is stored, 0 if not, -1 with err set. */
static int
store_script_exists(struct store *st, const char *script_id, const char *what,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s = store_stmt(st, STMT_SCRIPT_EXISTS);
	int		 rc;

	rc = store_bind_str(s, 1, script_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return rc == SQLITE_ROW;
	}
	store_seterr(st, rc, what, err, errlen);
	sqlite3_reset(s);
	return -1;
}

/* What a one-script write transaction is about. */
struct store_one {
	const char	*so_id;
	const char	*so_what;
	int		 so_want_run;
};

/* STORE_FAILED (err set) when the last statement changed no row. */
static int
store_changed(struct store *st, const struct store_one *so, char *err,
    size_t errlen)
{
	if (sqlite3_changes(st->st_db) != 0)
		return SQLITE_OK;
	seterr(err, errlen, "%s: no stored script %s", so->so_what, so->so_id);
	return STORE_FAILED;
}

static int
store_script_run_flag(struct store *st, const void *arg, char *err,
    size_t errlen)
{
	const struct store_one	*so = arg;
	sqlite3_stmt		*s = store_stmt(st, STMT_SCRIPT_SET_RUNNING);
	int			 rc;

	rc = store_bind_str(s, 1, so->so_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, so->so_want_run != 0);
	if (rc == SQLITE_OK)
		rc = store_run(st, STMT_SCRIPT_SET_RUNNING);
	if (rc == SQLITE_OK)
		rc = store_changed(st, so, err, errlen);
	return rc;
}

int
store_script_set_running(struct store *st, const char *script_id,
    int want_run, char *err, size_t errlen)
{
	struct store_one	 so = { script_id, want_run ?
				    "recording a start" : "recording a stop",
				    want_run };

	if (script_id == NULL) {
		seterr(err, errlen, "%s: no script id", so.so_what);
		return -1;
	}
	if (store_file_gone(st, err, errlen))
		return -1;
	return store_write(st, so.so_what, store_script_run_flag, &so, err,
	    errlen);
}

int
store_script_touch(struct store *st, const char *script_id,
    int64_t last_fetch_ms)
{
	sqlite3_stmt	*s = store_stmt(st, STMT_SCRIPT_TOUCH);
	char		 err[512];
	int		 rc, ret = -1;

	if (script_id == NULL)
		return -1;
	store_lock(st);
	/* Takes effect at this commit: the WAL is written, not synced. */
	rc = store_pragma(st, "PRAGMA synchronous = NORMAL", NULL, 0);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 1, script_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, last_fetch_ms);
	if (rc == SQLITE_OK)
		rc = store_run(st, STMT_SCRIPT_TOUCH);
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "recording a fetch", err, sizeof(err));
		if (!st->st_touch_failing)
			log_warnx("%s (further failures not logged until one "
			    "succeeds)", err);
		st->st_touch_failing = 1;
	} else {
		st->st_touch_failing = 0;
		ret = sqlite3_changes(st->st_db) == 0 ? -1 : 0;
	}
	/* Control writes after this must be synced again. */
	rc = store_pragma(st, "PRAGMA synchronous = FULL", NULL, 0);
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "restoring synchronous=FULL", err,
		    sizeof(err));
		log_warnx("%s", err);
		ret = -1;
	}
	store_reset_all(st);
	store_unlock(st);
	return ret;
}

static int
store_script_remove(struct store *st, const void *arg, char *err,
    size_t errlen)
{
	const struct store_one	*so = arg;
	int			 rc;

	rc = store_bind_str(store_stmt(st, STMT_INST_DELETE), 1, so->so_id);
	if (rc == SQLITE_OK)
		rc = store_run(st, STMT_INST_DELETE);
	if (rc == SQLITE_OK)
		rc = store_bind_str(store_stmt(st, STMT_SCRIPT_DELETE), 1,
		    so->so_id);
	if (rc == SQLITE_OK)
		rc = store_run(st, STMT_SCRIPT_DELETE);
	if (rc == SQLITE_OK)
		rc = store_changed(st, so, err, errlen);
	return rc;
}

int
store_script_delete(struct store *st, const char *script_id, char *err,
    size_t errlen)
{
	struct store_one	 so = { script_id, "deleting a script", 0 };

	if (script_id == NULL) {
		seterr(err, errlen, "%s: no script id", so.so_what);
		return -1;
	}
	if (store_file_gone(st, err, errlen))
		return -1;
	return store_write(st, so.so_what, store_script_remove, &so, err,
	    errlen);
}

/* Frees what ss points to, not ss; leaves ss zeroed. */
static void
store_script_clear(struct store_script *ss)
{
	free(ss->ss_script_id);
	free(ss->ss_name);
	free(ss->ss_code);
	free(ss->ss_owner);
	free(ss->ss_peer);
	free(ss->ss_restart);
	memset(ss, 0, sizeof(*ss));
}

/* Fills ss (zeroed by the caller) from a STMT_SCRIPTS_SELECT row. */
static int
store_script_row(sqlite3_stmt *s, struct store_script *ss)
{
	if (store_col_dup(s, 0, 0, &ss->ss_script_id, NULL) == -1 ||
	    store_col_dup(s, 1, 0, &ss->ss_name, NULL) == -1 ||
	    store_col_dup(s, 3, 1, &ss->ss_code, &ss->ss_codelen) == -1 ||
	    store_col_dup(s, 4, 0, &ss->ss_owner, NULL) == -1 ||
	    store_col_dup(s, 5, 0, &ss->ss_peer, NULL) == -1 ||
	    store_col_dup(s, 9, 0, &ss->ss_restart, NULL) == -1)
		return -1;
	if (ss->ss_code == NULL)
		ss->ss_code = strdup("");
	if (ss->ss_code == NULL)
		return -1;
	ss->ss_named = sqlite3_column_int(s, 2) != 0;
	ss->ss_created_ms = sqlite3_column_int64(s, 6);
	ss->ss_last_fetch_ms = sqlite3_column_int64(s, 7);
	ss->ss_want_run = sqlite3_column_int(s, 8) != 0;
	ss->ss_cluster = (unsigned)sqlite3_column_int64(s, 10);
	return 0;
}

/*
 * Reads every script into *vp (caller frees each with store_script_clear
 * and the array), so that callbacks run without st_lock.
 */
static int
store_scripts_read(struct store *st, struct store_script **vp, size_t *np,
    char *err, size_t errlen)
{
	sqlite3_stmt		*s = store_stmt(st, STMT_SCRIPTS_SELECT);
	struct store_script	*v = NULL, *nv;
	size_t			 n = 0, cap = 0;
	int			 rc, ret = -1;

	store_lock(st);
	for (;;) {
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		if (n == cap) {
			cap = cap != 0 ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL)
				goto nomem;
			v = nv;
		}
		memset(&v[n], 0, sizeof(v[n]));
		n++;	/* counted first so that cleanup frees a partial row */
		if (store_script_row(s, &v[n - 1]) == -1)
			goto nomem;
	}
	if (rc != SQLITE_DONE) {
		store_seterr(st, rc, "loading scripts", err, errlen);
		goto fail;
	}
	*vp = v;
	*np = n;
	v = NULL;
	n = 0;
	ret = 0;
	goto done;

nomem:
	seterr(err, errlen, "%s: loading scripts: out of memory", st->st_path);
fail:
done:
	sqlite3_reset(s);
	store_unlock(st);
	for (size_t i = 0; i < n; i++)
		store_script_clear(&v[i]);
	free(v);
	return ret;
}

/*
 * Calls cb for every stored script. What the callbacks write (the audit
 * trail's "restore" records) is committed once at the end: one sync for
 * the lot instead of one per script, which was most of a 100-script
 * restore (2-3 ms each). Meant for start-up, before other threads use
 * the store; a failed commit loses those records only, and says so.
 */
int
store_scripts_load(struct store *st, store_script_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct store_script	*v = NULL;
	size_t			 n = 0, i;
	int			 ret = 0, txn, rc;
	char			 cerr[512];

	if (store_scripts_read(st, &v, &n, err, errlen) == -1)
		return -1;
	store_lock(st);
	txn = n > 0 && store_begin(st) == SQLITE_OK;
	store_unlock(st);
	for (i = 0; i < n && ret == 0; i++)
		ret = cb(&v[i], arg);
	if (txn) {
		store_lock(st);
		if ((rc = store_commit(st)) != SQLITE_OK) {
			store_seterr(st, rc, "committing the restore's audit "
			    "records", cerr, sizeof(cerr));
			log_warnx("%s", cerr);
			store_rollback(st);
		}
		store_unlock(st);
	}
	for (i = 0; i < n; i++)
		store_script_clear(&v[i]);
	free(v);
	return ret;
}

/* --- instances --- */

/*
 * After an INSERT that did nothing: the name is stored already, which is
 * fine only with the same id. 0 if so, else -1 with err set.
 */
static int
store_inst_same(struct store *st, const char *script_id, const char *var,
    const char *name, uint32_t id, char *err, size_t errlen)
{
	sqlite3_stmt	*s = store_stmt(st, STMT_INST_LOOKUP);
	int64_t		 have;
	int		 rc;

	rc = store_bind_str(s, 1, script_id);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 2, var);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 3, name);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		store_seterr(st, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc,
		    "adding instances", err, errlen);
		sqlite3_reset(s);
		return -1;
	}
	have = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (have == id)
		return 0;
	seterr(err, errlen, "script %s variable %s: instance \"%s\" is stored "
	    "with id %" PRId64 ", not %" PRIu32, script_id, var, name, have,
	    id);
	return -1;
}

/* What store_instances_add writes. */
struct store_insts {
	const char		 *si_id;
	const char		 *si_var;
	size_t			  si_n;
	const char *const	 *si_names;
	const uint32_t		 *si_ids;
};

/* Inserts instance i; STORE_FAILED (err set) if its id or name clash. */
static int
store_instance_insert(struct store *st, const struct store_insts *si,
    size_t i, char *err, size_t errlen)
{
	sqlite3_stmt	*s = store_stmt(st, STMT_INST_INSERT);
	int		 rc;

	rc = store_bind_str(s, 3, si->si_names[i]);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, si->si_ids[i]);
	if (rc == SQLITE_OK)
		rc = store_run(st, STMT_INST_INSERT);
	if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		seterr(err, errlen, "adding instances: script %s variable %s: "
		    "instance id %" PRIu32 " is stored for another name than "
		    "\"%s\"", si->si_id, si->si_var, si->si_ids[i],
		    si->si_names[i]);
		return STORE_FAILED;
	}
	if (rc == SQLITE_OK && sqlite3_changes(st->st_db) == 0 &&
	    store_inst_same(st, si->si_id, si->si_var, si->si_names[i],
	    si->si_ids[i], err, errlen) == -1)
		return STORE_FAILED;
	return rc;
}

static int
store_instances_insert(struct store *st, const void *arg, char *err,
    size_t errlen)
{
	const struct store_insts	*si = arg;
	sqlite3_stmt			*s = store_stmt(st, STMT_INST_INSERT);
	size_t				 i;
	int				 rc;

	switch (store_script_exists(st, si->si_id, "adding instances", err,
	    errlen)) {
	case 1:
		break;
	case 0:
		seterr(err, errlen, "adding instances: no stored script %s",
		    si->si_id);
		/* FALLTHROUGH */
	default:
		return STORE_FAILED;
	}
	/* The same statement for every row: bind the constant part once. */
	rc = store_bind_str(s, 1, si->si_id);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 2, si->si_var);
	for (i = 0; i < si->si_n && rc == SQLITE_OK; i++)
		rc = store_instance_insert(st, si, i, err, errlen);
	return rc;
}

int
store_instances_add(struct store *st, const char *script_id, const char *var,
    size_t n, const char *const *names, const uint32_t *ids, char *err,
    size_t errlen)
{
	struct store_insts	 si = { script_id, var, n, names, ids };
	const char		*what = "adding instances";
	size_t			 i;

	if (script_id == NULL || var == NULL || (n != 0 &&
	    (names == NULL || ids == NULL))) {
		seterr(err, errlen, "%s: missing script id, variable or "
		    "instances", what);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (names[i] == NULL) {
			seterr(err, errlen, "%s: script %s variable %s: "
			    "instance %zu has no name", what, script_id, var,
			    i);
			return -1;
		}
	return store_write(st, what, store_instances_insert, &si, err, errlen);
}
int
store_instances_load(struct store *st, const char *script_id,
    store_inst_cb cb, void *arg, char *err, size_t errlen)
{
	sqlite3_stmt	*s = store_stmt(st, STMT_INST_SELECT);
	const char	*var, *name;
	int		 rc, ret = -1;

	if (script_id == NULL) {
		seterr(err, errlen, "loading instances: no script id");
		return -1;
	}
	store_lock(st);
	rc = store_bind_str(s, 1, script_id);
	while (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		var = (const char *)sqlite3_column_text(s, 0);
		name = (const char *)sqlite3_column_text(s, 1);
		if (var == NULL || name == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		cb(var, name, (uint32_t)sqlite3_column_int64(s, 2), arg);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		store_seterr(st, rc, "loading instances", err, errlen);
		goto done;
	}
	ret = 0;
done:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	store_unlock(st);
	return ret;
}

/* --- audit --- */

static int	audit_prune_all_locked(struct store *);

/* appends between two prunes: an eighth of the bound, at most 1024 */
static int64_t
audit_prune_every(int64_t max)
{
	return max / 8 + 1 < STORE_AUDIT_PRUNE_EVERY ? max / 8 + 1 :
	    STORE_AUDIT_PRUNE_EVERY;
}

static int
store_audit_action_known(const char *action)
{
	for (int i = 0; store_audit_actions[i] != NULL; i++)
		if (strcmp(store_audit_actions[i], action) == 0)
			return 1;
	return 0;
}

int
store_audit(struct store *st, const char *user, const char *peer,
    const char *action, const char *target, int ok, const char *message)
{
	sqlite3_stmt	*s = store_stmt(st, STMT_AUDIT_INSERT);
	struct timespec	 ts;
	char		 err[512];
	int64_t		 ms;
	int		 rc, ret = -1;

	if (action == NULL || !store_audit_action_known(action)) {
		log_warnx("%s: audit: unknown action \"%s\"", st->st_path,
		    action != NULL ? action : "(null)");
		return -1;
	}
	now_real(&ts);
	ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	store_lock(st);
	rc = sqlite3_bind_int64(s, 1, ms);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 2, user);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 3, peer);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 4, action);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 5, target);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 6, ok != 0);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 7, message);
	if (rc == SQLITE_OK)	/* autocommit: one statement, synced */
		rc = store_run(st, STMT_AUDIT_INSERT);
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "appending to the audit log", err,
		    sizeof(err));
		if (!st->st_audit_failing)
			log_warnx("%s (further failures not logged until one "
			    "succeeds)", err);
		st->st_audit_failing = 1;
	} else {
		st->st_audit_failing = 0;
		ret = 0;
	}
	store_reset_all(st);
	if (ret == 0 && st->st_audit_max > 0 && ++st->st_audit_added >=
	    audit_prune_every(st->st_audit_max))
		(void)audit_prune_all_locked(st);
	store_unlock(st);
	return ret;
}

/* audit_prune_run with the store locked by the caller */
static int
audit_prune_locked(struct store *st, enum store_stmt stmt, const char *action,
    int64_t keep)
{
	sqlite3_stmt	*s = store_stmt(st, stmt);
	char		 err[512];
	int		 rc = SQLITE_OK, ret = -1, col = 1;

	if (action)
		rc = store_bind_str(s, col++, action);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, col, keep);
	if (rc == SQLITE_OK)
		rc = store_run(st, stmt);
	if (rc != SQLITE_OK) {
		store_seterr(st, rc, "pruning the audit log", err, sizeof(err));
		log_warnx("%s", err);
	} else
		ret = sqlite3_changes(st->st_db);
	store_reset_all(st);
	return ret;
}

/* Lock held; the rows deleted, or -1 (logged). */
static int
audit_prune_all_locked(struct store *st)
{
	st->st_audit_added = 0;
	return audit_prune_locked(st, STMT_AUDIT_PRUNE_ALL, NULL,
	    st->st_audit_max);
}

int
store_audit_limit(struct store *st, int64_t max)
{
	int	 ret = 0;

	store_lock(st);
	st->st_audit_max = max > 0 ? max : 0;
	if (st->st_audit_max > 0)
		ret = audit_prune_all_locked(st);
	store_unlock(st);
	return ret;
}

/* Run an audit prune statement: action (may be NULL: the statement has
   none) and keep bound in that order. Returns the rows deleted, or -1. */
static int
audit_prune_run(struct store *st, enum store_stmt stmt, const char *action,
    int64_t keep)
{
	int	 ret;

	store_lock(st);
	ret = audit_prune_locked(st, stmt, action, keep);
	store_unlock(st);
	return ret;
}

int
store_audit_prune(struct store *st, const char *action, int64_t keep)
{
	return audit_prune_run(st, STMT_AUDIT_PRUNE, action, keep);
}

int
store_audit_prune_refused(struct store *st, int64_t keep)
{
	return audit_prune_run(st, STMT_AUDIT_PRUNE_REFUSED, NULL, keep);
}

int
store_audit_load(struct store *st, int64_t since_ms, store_audit_cb cb,
    void *arg)
{
	sqlite3_stmt	*s = store_stmt(st, STMT_AUDIT_SELECT);
	char		 err[512];
	const char	*action;
	int		 rc, ret = 0;

	store_lock(st);
	rc = sqlite3_bind_int64(s, 1, since_ms);
	while (ret == 0 && rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		action = (const char *)sqlite3_column_text(s, 3);
		if (action == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		ret = cb(sqlite3_column_int64(s, 0),
		    (const char *)sqlite3_column_text(s, 1),
		    (const char *)sqlite3_column_text(s, 2), action,
		    (const char *)sqlite3_column_text(s, 4),
		    sqlite3_column_int(s, 5),
		    (const char *)sqlite3_column_text(s, 6), arg);
		rc = SQLITE_OK;
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		store_seterr(st, rc, "reading the audit log", err, sizeof(err));
		log_warnx("%s", err);
		ret = -1;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	store_unlock(st);
	return ret;
}

/* --- copies --- */

static int
store_strdup_null(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL)
		return 0;
	*out = strdup(s);
	return *out == NULL ? -1 : 0;
}

struct store_script *
store_script_dup(const struct store_script *ss)
{
	struct store_script	*c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	*c = *ss;
	c->ss_script_id = c->ss_name = c->ss_code = NULL;
	c->ss_owner = c->ss_peer = c->ss_restart = NULL;
	c->ss_code = malloc(ss->ss_codelen + 1);
	if (c->ss_code == NULL)
		goto fail;
	if (ss->ss_codelen != 0)
		memcpy(c->ss_code, ss->ss_code, ss->ss_codelen);
	c->ss_code[ss->ss_codelen] = '\0';
	if (store_strdup_null(ss->ss_script_id, &c->ss_script_id) == -1 ||
	    store_strdup_null(ss->ss_name, &c->ss_name) == -1 ||
	    store_strdup_null(ss->ss_owner, &c->ss_owner) == -1 ||
	    store_strdup_null(ss->ss_peer, &c->ss_peer) == -1 ||
	    store_strdup_null(ss->ss_restart, &c->ss_restart) == -1)
		goto fail;
	return c;

fail:
	store_script_free(c);
	return NULL;
}

void
store_script_free(struct store_script *ss)
{
	if (ss == NULL)
		return;
	store_script_clear(ss);
	free(ss);
}
