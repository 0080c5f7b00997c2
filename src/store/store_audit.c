/* SPDX-License-Identifier: MIT */
/*
 * store_audit.c - the audit log in the state database: one row per
 * control action (store_audit()), bounded by store_audit_limit() and the
 * per-action prunes, read back by store_audit_load(). Runs its statements
 * through store_db.c's helpers (store_int.h); st_audit_* are its fields
 * of struct store.
 *
 * Threads and locks: any thread. Every function holds st_lock for its
 * statements; the st_audit_* fields are read and written only under it.
 * store_audit_load() runs its callback locked: it must not call back in.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

/* Adding one is a one-line change here; the column is plain TEXT. */
static const char *const store_audit_actions[] = {
	"register", "start", "stop", "deregister", "expire", "restore",
	"login", "refused", NULL
};

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
		rc = store_bind_strs(s, 2, (const char *const []){ user, peer,
		    action, target }, 4);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 6, ok != 0);
	if (rc == SQLITE_OK)
		rc = store_bind_str(s, 7, message);
	if (rc == SQLITE_OK)	/* autocommit: one statement, synced */
		rc = store_run(st, STMT_AUDIT_INSERT);
	if (store_warn_streak(st, rc, "appending to the audit log",
	    &st->st_audit_failing) == 0)
		ret = 0;
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
