/* SPDX-License-Identifier: MIT */
/*
 * scripts.h - the scripts layer: the bpftrace child processes (sup.c),
 * the bpftrace version (btversion.c), registered scripts and their
 * metrics and publishing (scripts.c), their children and lifecycle
 * (scripts_run.c), bpftrace.info.* (info.c), the answers to control
 * stores (control_answer.c) and the control metrics and registration
 * (control.c). main wires them: a change and the end of each tick reach
 * info.c and control.c through struct scripts_hooks. Within the layer,
 * lowest first: sup.c, btversion.c, scripts.c, scripts_run.c, info.c,
 * control_answer.c, control.c; a file calls only those below it. Above
 * lib, store, registry and bpftrace; below pcp, http and api.
 *
 * The first part is what the layers above use (main wires the
 * subsystem, selfmetrics.c reads the bpftrace version, the api asks
 * control_store_allowed); the second, from "the script table" on, is
 * the subsystem's own: struct scripts and struct script. See scripts.c
 * for the lock story; fields marked "main" belong to the main thread
 * alone.
 */
#ifndef BT_SCRIPTS_H
#define BT_SCRIPTS_H

#include <sys/queue.h>
#include <sys/types.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "btdiag.h"
#include "btscript.h"
#include "bterr.h"
#include "buf.h"
#include "evloop.h"
#include "ingest.h"
#include "registry.h"

struct config;
struct daemon_state;
struct scripts;

/* ====================================================================
 * sup.c: bpftrace child processes
 * ==================================================================== */

struct child {
	pid_t		 ch_pid;		/* -1: none */
	int		 ch_out, ch_err;	/* non-blocking pipes, -1 closed */
	int		 ch_reaped;
	int		 ch_exit_code;		/* 128+sig when killed */
	int		 ch_signal;
};

/* one line of a child's output; cut: it was longer than the buffer */
typedef void	 (*sup_line_fn)(void *arg, const char *line, size_t len,
		    int cut);
/* bpftrace: an absolute path (execve, no $PATH search); envp: its
   environment (spawnenv_envp()) */
int		 sup_spawn(struct child *ch, const char *bpftrace,
		    char *const envp[], const char *code, size_t len,
		    int use_stdin, char *err, size_t errlen);
int		 sup_signal(struct child *ch, int sig);
int		 sup_reap(struct child *ch);
ssize_t		 sup_read_lines(int fd, struct buf *lb, size_t budget,
		    sup_line_fn fn, void *arg);
void		 sup_split_lines(struct buf *lb, const char *data, size_t len,
		    sup_line_fn fn, void *arg);
void		 sup_close(struct child *ch);

/* ====================================================================
 * btversion.c: bpftrace --version, in the background
 * ==================================================================== */

#define BT_VERSION_PENDING	0	/* bpftrace --version still running */
#define BT_VERSION_KNOWN	1
#define BT_VERSION_MISSING	2	/* not found or did not run */
int		 bt_detect_version(const char *path, char *const envp[],
		    char *out, size_t outlen, char *err, size_t errlen);
void		 bt_version_start(struct daemon_state *ds, int wait,
		    void (*on_done)(struct daemon_state *ds));
void		 bt_version_join(struct daemon_state *ds);
int		 bt_version_state(const struct daemon_state *ds);
const char	*bt_version(const struct daemon_state *ds);
int		 bt_version_at_least(const char *v, int major, int minor);

/* ====================================================================
 * scripts.c + info.c + control.c: registered scripts, their lifecycle,
 * metrics (lowest first; main wires them)
 * ==================================================================== */

enum script_status {
	SCRIPT_STOPPED, SCRIPT_STARTING, SCRIPT_STARTED, SCRIPT_STOPPING,
	SCRIPT_ERROR
};

/*
 * How scripts.c reports to the layers above it; main registers them
 * (each may be NULL). sh_changed: a script changed (now: clients must
 * see it at once), ss_lock held, any thread. sh_tick_locked: the end of
 * every tick, ss_lock held; sh_tick: after it, without the lock. Main
 * thread.
 */
struct scripts_hooks {
	void	(*sh_changed)(struct scripts *ss, int now);
	void	(*sh_tick_locked)(struct scripts *ss);
	void	(*sh_tick)(struct scripts *ss);
};

/* scripts_run.c */
int		 scripts_init(struct daemon_state *ds,
		    const struct scripts_hooks *hooks);
void		 scripts_fini(struct daemon_state *ds);
void		 scripts_tick(struct scripts *ss);
void		 scripts_wake(struct scripts *ss);	/* any thread */
void		 scripts_on_sigchld(struct scripts *ss);
void		 scripts_shutdown(struct scripts *ss, int timeout_ms);

/* info.c */
int		 info_init(struct scripts *ss);
void		 info_fini(struct scripts *ss);
void		 info_changed(struct scripts *ss, int now);
void		 info_publish(struct scripts *ss, int now);
void		 info_tick(struct scripts *ss);
void		 info_refresh_tracepoints(struct scripts *ss);

/* control.c */
int		 control_init(struct scripts *ss);
void		 control_fini(struct scripts *ss);
void		 control_tick(struct scripts *ss);
int		 control_restore(struct scripts *ss);
int		 control_autostart(struct scripts *ss, const char *path);
int		 control_autostart_dir(struct scripts *ss, const char *dir);
void		 control_audit_login(struct scripts *ss, const char *peer,
		    const char *user, const char *item, const char *why);
/* who may store to bpftrace.control.* and, passed through, to pmcd */
enum store_result control_store_allowed(const struct daemon_state *ds,
		    const struct store_req *sr, char *err, size_t errlen);

/* ====================================================================
 * the script table: private to scripts.c, info.c and control.c
 * ==================================================================== */

/*
 * Value slots of a script's snapshot; data variables follow from
 * SCRIPT_NITEMS. The PMID items are in scripts.c: the PMDA's 0..6, data
 * variables from SCRIPT_DATA_ITEM (10, as the PMDA), our additions at the
 * top of the item range so they never collide with variables.
 */
enum script_item {
	SI_STATUS, SI_PID, SI_EXIT_CODE, SI_ERROR, SI_PROBES, SI_CODE,
	SI_DATA_BYTES, SI_WARNINGS, SI_LOST_EVENTS, SI_RESTARTS, SI_OUTPUT,
	SI_HELPER_ERRORS, SI_RUNTIME_ERRORS, SI_LAST_HELPER_ERROR,
	SI_TYPE_ERRORS, SCRIPT_NITEMS
};
#define SCRIPT_DATA_ITEM	10
/* one line of bpftrace's stderr (an error message): longer ones are cut */
#define SCRIPT_STDERR_LINE_MAX	(64 * 1024)

enum stop_reason {
	STOP_NONE,		/* a user stop */
	STOP_GONE,		/* deregistered */
	STOP_LIMIT,		/* a limit was hit: ends in error */
	STOP_RESTART
};

struct script {
	TAILQ_ENTRY(script)	 sc_entry;
	struct scripts		*sc_ss;
	/* set at registration, then read-only */
	char			*sc_id;		/* "s" + 32 hex */
	char			*sc_name;	/* // name: or sc_id */
	int			 sc_named;
	char			*sc_code;	/* as registered */
	size_t			 sc_codelen;
	char			*sc_run;	/* rewritten, what bpftrace runs
						   (main: redone at spawn for
						   on-demand on 0.22+) */
	size_t			 sc_runlen;
	struct bts_info		 sc_info;
	unsigned		 sc_cluster;
	char			*sc_user;	/* NULL: none */
	char			 sc_peer[64];
	struct timespec		 sc_created;	/* wall clock */
	int64_t			 sc_registered_ms;
	long			 sc_interval_ms;
	struct source		*sc_src;
	/* under ss_lock */
	enum script_status	 sc_status;
	int			 sc_want_run;
	int			 sc_gone;	/* deregistered */
	pid_t			 sc_pid;	/* last pid, kept after exit */
	int			 sc_exit_code;
	struct buf		 sc_error;
	struct buf		 sc_warnings;
	int			 sc_probes;
	uint64_t		 sc_data_bytes;
	uint64_t		 sc_lost;
	unsigned		 sc_restarts;
	int64_t			 sc_restart_at;
	int64_t			 sc_backoff_ms;
	int64_t			 sc_started_ms;
	int64_t			 sc_stop_deadline;
	enum stop_reason	 sc_stop_reason;
	int64_t			 sc_last_usr1;
	int			 sc_dirty;
	char			 sc_label_ver[32]; /* the bpftrace version in
						   the registered metrics'
						   labels ("": none) */
	/* main */
	struct child		 sc_child;
	struct evwatch		 sc_wout, sc_werr;
	struct buf		 sc_lout, sc_lerr;
	struct ingest		*sc_ing;
	uint64_t		 sc_pub_seq;
	uint64_t		 sc_rate_bytes;
	uint64_t		 sc_rate_diag;	/* of which helper_error and
						   runtime_error lines */
	struct btdiag		 sc_diag;	/* their counts (btdiag.c) */
	int64_t			 sc_rate_since;
	int			 sc_line_too_long;
	int64_t			 sc_eof_at;	/* stdout closed at (mono) */
	struct bterr		 sc_err;	/* where stderr is at */
	size_t			*sc_inst_saved;	/* per variable, in the store */
	struct pubcache		*sc_pub;	/* per variable: what the last
						   snapshot shares (scripts.c) */
	int64_t			 sc_touched_ms;	/* last fetch saved (mono) */
	uint64_t		 sc_info_sig;	/* state last in scripts_json */
};

struct answer;

/* rows of one kind written to the audit table in the current minute */
struct audit_limit {
	int64_t			 al_window;	/* start, mono ms */
	unsigned		 al_rows;
	unsigned long		 al_dropped;
};

struct scripts {
	struct daemon_state	*ss_ds;
	struct scripts_hooks	 ss_hooks;	/* set at init, then read-only */
	pthread_mutex_t		 ss_lock;
	TAILQ_HEAD(, script)	 ss_list;
	int			 ss_n;
	unsigned		 ss_next_cluster;
	int			 ss_wakefd;
	struct evwatch		 ss_wakew;
	/* info.c */
	atomic_int		 ss_info_dirty;
	int64_t			 ss_info_last_ms; /* last info rebuild (mono) */
	int			 ss_restoring;	/* control_restore: info once */
	struct source		*ss_info_src;	/* bpftrace.info.scripts* */
	/* control.c: per-context answers, under their own lock */
	pthread_mutex_t		 ss_ans_lock;
	struct answer		*ss_answers;
	size_t			 ss_nanswers;
	/* control.c: audit rows of failed logins and of refused control
	   stores written this minute, both under ss_login_lock */
	pthread_mutex_t		 ss_login_lock;
	struct audit_limit	 ss_login_limit;
	struct audit_limit	 ss_refused_limit;
	/* tracepoints list, refreshed in the background: the list, time,
	   busy flag and pid under ss_tp_lock; the thread handle is the main
	   thread's (it starts and joins it) */
	pthread_mutex_t		 ss_tp_lock;
	char			*ss_tracepoints;
	int64_t			 ss_tp_time;
	int			 ss_tp_busy;
	pid_t			 ss_tp_pid;	/* "bpftrace -l" running, or 0 */
	pthread_t		 ss_tp_thread;
	int			 ss_tp_joinable;
};

/* scripts.c */
#define SCRIPT_FIRST_CLUSTER	100	/* the PMID clusters scripts get */
#define SCRIPT_LAST_CLUSTER	4095
const char	*script_status_str(enum script_status status);
struct script	*scripts_find(struct scripts *ss, const char *key);
int		 script_add_metrics(struct scripts *ss, struct script *sc,
		    char *err, size_t errlen);
void		 script_label_version(const char *v, char *out,
		    size_t outlen);
void		 script_publish(struct script *sc);
void		 script_free(struct script *sc);
pmInDom		 script_var_indom(const struct script *sc, size_t k);
void		 script_save_instances(struct scripts *ss, struct script *sc);
int		 script_alloc_cluster(struct scripts *ss, unsigned *cluster);
void		 script_deregister_locked(struct scripts *ss,
		    struct script *sc);

/* scripts_run.c */
void		 script_plan_restart(struct script *sc, int code);

/* control_answer.c */
struct metric;
struct reader;
struct store_req;
int		 control_answers_init(struct scripts *ss);
void		 control_answers_fini(struct scripts *ss);
size_t		 control_answer_cost_max(const char *user, size_t max);
void		 control_answer_set(struct scripts *ss,
		    const struct store_req *sr, int item, char *text,
		    size_t charged);
int		 on_control_ctxval(struct metric *m, const struct reader *rd,
		    struct buf *out);
void		 control_answers_sweep(struct scripts *ss);

/* info.c */
size_t		 info_object_max(const struct config *cfg);
void		 info_put_script(struct buf *b, const struct script *sc,
		    int redact, size_t max);
char		*info_refused_script(const char *code, size_t len,
		    const char *reason, size_t max);

#endif /* BT_SCRIPTS_H */
