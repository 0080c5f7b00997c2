/* SPDX-License-Identifier: MIT */
/*
 * store.c - registered scripts and their instance ids in the state
 * database (tables and guarantees: store.h; schema: sql/): adding,
 * starting/stopping, touching and deleting a script's row, loading them
 * all at start, and copies of a row. The connection, its statements and
 * transactions are store_db.c's (store_int.h); the audit log is
 * store_audit.c's.
 *
 * Threads and locks: libmicrohttpd threads (control stores) and the main
 * thread (restore, expiry, touches) call in. Every function holds st_lock
 * for its whole transaction (store_write(), or store_lock() around its
 * statements); store_scripts_load() reads the rows first and runs its
 * callbacks unlocked, store_instances_load() runs its callback locked.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

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

/* store_write() of a one-script body, once the id and the file are checked */
static int
store_write_one(struct store *st, const struct store_one *so, store_body body,
    char *err, size_t errlen)
{
	if (so->so_id == NULL) {
		seterr(err, errlen, "%s: no script id", so->so_what);
		return -1;
	}
	if (store_file_gone(st, err, errlen))
		return -1;
	return store_write(st, so->so_what, body, so, err, errlen);
}

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

	return store_write_one(st, &so, store_script_run_flag, err, errlen);
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
	if (store_warn_streak(st, rc, "recording a fetch",
	    &st->st_touch_failing) == 0)
		ret = sqlite3_changes(st->st_db) == 0 ? -1 : 0;
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

	return store_write_one(st, &so, store_script_remove, err, errlen);
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

	rc = store_bind_strs(s, 1, (const char *const []){ script_id, var,
	    name }, 3);
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
