/* SPDX-License-Identifier: MIT */
/*
 * store_int.h - private to the store: the connection (struct store), its
 * prepared statements and the helpers of store_db.c that store.c and
 * store_audit.c run their statements through. Every helper but
 * store_file_gone() expects st_lock held (store_lock()); store_write()
 * takes it itself. See store_db.c for the lock story.
 */
#ifndef BT_STORE_INT_H
#define BT_STORE_INT_H

#include <sys/types.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* The prepared statements; their SQL is in store_db.c. */
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

/* One open database (store_open()); fields under st_lock. */
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
 * The statements of one write transaction. Returns SQLITE_OK, an sqlite
 * error code (store_write words it), or STORE_FAILED when it refused for
 * a reason of its own, already written to err.
 */
#define STORE_FAILED	(-1)	/* no sqlite result code is negative */
typedef int	(*store_body)(struct store *st, const void *arg, char *err,
		    size_t errlen);

/* store_db.c */
int		 store_file_gone(struct store *st, char *err, size_t errlen);
void		 store_seterr(struct store *st, int rc, const char *what,
		    char *err, size_t errlen);
int		 store_warn_streak(struct store *st, int rc, const char *what,
		    int *failing);
void		 store_lock(struct store *st);
void		 store_unlock(struct store *st);
sqlite3_stmt	*store_stmt(struct store *st, enum store_stmt which);
void		 store_reset_all(struct store *st);
int		 store_run(struct store *st, enum store_stmt which);
int		 store_bind_str(sqlite3_stmt *s, int col, const char *v);
int		 store_bind_strs(sqlite3_stmt *s, int col,
		    const char *const *v, int n);
int		 store_begin(struct store *st);
int		 store_commit(struct store *st);
void		 store_rollback(struct store *st);
int		 store_write(struct store *st, const char *what,
		    store_body body, const void *arg, char *err, size_t errlen);
int		 store_pragma(struct store *st, const char *sql, char *out,
		    size_t outlen);

#endif
