/* SPDX-License-Identifier: MIT */
/*
 * store.h - bpftraced's persistent state in one sqlite database,
 * <state dir>/bpftraced.db, so that registered scripts survive restarts.
 *
 * Tables (schema: sql/NNN_*.sql, embedded in the binary, applied at open
 * in one transaction each and counted in PRAGMA user_version):
 *   scripts    one row per registered script: id, name (unique), named
 *              flag, code (a BLOB, returned byte for byte), owner, peer,
 *              created/last-fetched unix ms, desired state, restart
 *              policy, PMID cluster (unique).
 *   instances  (script, variable, instance name) -> instance id, so that
 *              instance ids stay stable across restarts.
 *   audit      log of control actions, the newest rows kept
 *              (store_audit_limit).
 *
 * Guarantees:
 *   - A function that takes err returns only after its transaction has
 *     committed (WAL, synchronous=FULL: on disk, not just in the page
 *     cache), or it returns -1 with nothing changed and a message in err
 *     naming the database file. store_script_touch() is the one cheap
 *     write (synchronous=NORMAL): a power cut may lose the last touches,
 *     never a control write, and never leaves the file inconsistent.
 *     store_audit() is synced like a control write.
 *   - All SQL is constant text with bound parameters.
 *   - Every function is thread-safe (one connection, one internal mutex),
 *     except store_open()/store_close(), which the caller must not run
 *     concurrently with anything else on the same store.
 *   - Open refuses, with a distinct message: a state dir that cannot be
 *     created or written, a database that is read-only, not a database,
 *     corrupted (PRAGMA quick_check), or whose schema is newer than this
 *     binary. A full disk is reported as such by any write.
 */
#ifndef BT_STORE_H
#define BT_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_DB_NAME		"bpftraced.db"
#define STORE_MAX_CLUSTER	4095	/* PMID cluster is 12 bits */
#define STORE_BUSY_TIMEOUT_MS	5000	/* another process holds a lock */
/*
 * sqlite's page cache (its default is 2000 KiB). It fills with every page
 * the appends to the audit table walk through, so it grew for the first
 * hour of a register/deregister soak; the database's hot pages (scripts,
 * the audit tail) fit in far less, and the OS caches the file anyway.
 */
#define STORE_CACHE_KIB		256
#define STORE_AUDIT_PRUNE_EVERY	1024	/* appends between two prunes */

struct store;

/*
 * One script row. Strings are NUL-terminated; ss_code is also counted by
 * ss_codelen (it may hold any bytes). ss_owner, ss_peer and ss_restart may
 * be NULL. A struct filled by the caller stays the caller's; one the store
 * hands to a callback belongs to the store and lives only for the call
 * (keep it with store_script_dup()).
 */
struct store_script {
	char		*ss_script_id;
	char		*ss_name;
	char		*ss_code;
	size_t		 ss_codelen;
	char		*ss_owner;
	char		*ss_peer;
	char		*ss_restart;
	int		 ss_named;	/* 0 or 1 */
	int		 ss_want_run;	/* desired: 1 running, 0 stopped */
	unsigned	 ss_cluster;	/* 0 .. STORE_MAX_CLUSTER */
	int64_t		 ss_created_ms;	/* unix ms */
	int64_t		 ss_last_fetch_ms;
};

/*
 * Opens (creating if needed: the dir 0700, the file 0600) dir/bpftraced.db
 * and brings its schema up to date. Returns the store, which the caller
 * frees with store_close(), or NULL with a message in err.
 */
struct store	*store_open(const char *dir, char *err, size_t errlen);
void		 store_close(struct store *st);		/* accepts NULL */
const char	*store_path(const struct store *st);	/* the db file */

/* Control writes: 0 once committed, or -1 with err set. */
int		 store_script_add(struct store *st,
		    const struct store_script *ss, char *err, size_t errlen);
int		 store_script_set_running(struct store *st,
		    const char *script_id, int want_run, char *err,
		    size_t errlen);
int		 store_script_delete(struct store *st, const char *script_id,
		    char *err, size_t errlen);		/* and its instances */
/*
 * Cheap (no fsync: a power cut may lose it); 0, or -1 for an unknown id or
 * on error (errors logged once per failing streak).
 */
int		 store_script_touch(struct store *st, const char *script_id,
		    int64_t last_fetch_ms);

/*
 * Calls cb for every script, oldest ss_created_ms first (ties: the order
 * they were added). The rows are read first and the lock released, so cb
 * may call store functions (e.g. store_instances_load()). A non-zero
 * return from cb stops the walk. Returns 0, -1 with err set, or the
 * non-zero value cb returned.
 */
typedef int	(*store_script_cb)(const struct store_script *ss, void *arg);
int		 store_scripts_load(struct store *st, store_script_cb cb,
		    void *arg, char *err, size_t errlen);

/*
 * Records n instance name -> id pairs of one variable of a script, all in
 * one transaction. Re-adding a pair already stored is a no-op; a name
 * stored with another id, or an id stored for another name, is refused
 * and nothing of the batch is written.
 */
int		 store_instances_add(struct store *st, const char *script_id,
		    const char *var, size_t n, const char *const *names,
		    const uint32_t *ids, char *err, size_t errlen);
/*
 * Calls cb for every instance of the script, ordered by variable and id,
 * with the store locked (cb must not call store functions); the strings
 * live only for the call. An unknown script has no instances: 0.
 */
typedef void	(*store_inst_cb)(const char *var, const char *name, uint32_t id,
		    void *arg);
int		 store_instances_load(struct store *st, const char *script_id,
		    store_inst_cb cb, void *arg, char *err, size_t errlen);

/*
 * Appends one control action (register, start, stop, deregister, expire,
 * restore; login: a failed login on a control store; refused: how many
 * refused control stores were left out in a minute) stamped with
 * the current time. user, peer, target and message may be NULL. Returns
 * 0, or -1 (logged) if the action is unknown or the write failed: an
 * audit failure must not fail the action itself.
 */
int		 store_audit(struct store *st, const char *user,
		    const char *peer, const char *action, const char *target,
		    int ok, const char *message);
/*
 * Deletes all but the newest keep audit rows of one action (the failed
 * logins, whose count a client could otherwise grow without bound).
 * Returns the number of rows deleted, or -1 (logged).
 */
int		 store_audit_prune(struct store *st, const char *action,
		    int64_t keep);
/*
 * Deletes all but the newest keep refused rows (ok = 0) other than failed
 * logins: refused control stores and the "refused" rows counting the
 * ones left out. Returns the number of rows deleted, or -1 (logged).
 */
int		 store_audit_prune_refused(struct store *st, int64_t keep);
/*
 * Keeps the audit table to about max rows (0: no bound): at once, and then
 * every store_audit() that brings the rows added since the last prune to
 * max / 8 + 1 (at most STORE_AUDIT_PRUNE_EVERY) deletes all but the newest
 * max rows. So the table holds at most max + max / 8 + 1 rows and the
 * database file stops growing under register/deregister churn (freed
 * pages are reused). Returns the rows deleted now, or -1 (logged).
 */
int		 store_audit_limit(struct store *st, int64_t max);
/*
 * Calls cb for every audit entry at or after since_ms, oldest first, with
 * the store locked (cb must not call store functions; the strings live
 * only for the call); non-zero from cb stops the walk. Returns 0, -1
 * (logged), or cb's non-zero value.
 */
typedef int	(*store_audit_cb)(int64_t time_ms, const char *user,
		    const char *peer, const char *action, const char *target,
		    int ok, const char *message, void *arg);
int		 store_audit_load(struct store *st, int64_t since_ms,
		    store_audit_cb cb, void *arg);

/* A deep copy the caller frees with store_script_free(); NULL if ENOMEM. */
struct store_script *store_script_dup(const struct store_script *ss);
void		 store_script_free(struct store_script *ss); /* accepts NULL */

/*
 * The embedded migrations, generated from sql/NNN_*.sql into store_sql.c.
 * store_open_migrations() opens with another list; it exists for tests.
 */
struct store_migration {
	int		 sm_version;	/* 1, 2, ...: user_version after it */
	const char	*sm_name;	/* "001_init.sql" */
	const char	*sm_sql;
	size_t		 sm_len;
};
extern const struct store_migration store_migrations[];
extern const size_t store_nmigrations;
struct store	*store_open_migrations(const char *dir,
		    const struct store_migration *mig, size_t nmig, char *err,
		    size_t errlen);

#endif
