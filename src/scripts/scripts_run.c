/* SPDX-License-Identifier: MIT */
/*
 * scripts_run.c - running the registered scripts: one bpftrace child per
 * script (spawn, stop, its stdout and stderr lines, its exit) and the
 * lifecycle each tick drives (starting, started, stopping, stopped,
 * error; restart policy with backoff; idle expiry; output-rate limit;
 * on-demand prints), the eventfd that wakes the main loop, shutdown, and
 * the scripts' setup. Calls scripts.c (metrics, publishing, freeing);
 * scripts.c does not call it.
 *
 * Threads and locks: everything here runs on the main thread, under
 * ss_lock while it handles an event or a tick (scripts.c has the full
 * story), except scripts_wake(), which any thread calls: it only writes
 * the eventfd. The end of each tick reaches info.c and control.c through
 * ss_hooks, which main registers.
 */
#include <sys/queue.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "evloop.h"
#include "log.h"
#include "scripts.h"
#include "store.h"
#include "util.h"
#include "btscript.h"
#include "evloop.h"
#include "ingest.h"
#include "scripts.h"
#include "spawnenv.h"
#include "store.h"

#define READ_BUDGET		(1024 * 1024)	/* bytes per wakeup */

static void	on_script_out(struct evwatch *, uint32_t);
static void	on_script_err(struct evwatch *, uint32_t);

static void
set_error(struct script *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_error(struct script *sc, const char *fmt, ...)
{
	va_list	 ap;

	buf_reset(&sc->sc_error);
	va_start(ap, fmt);
	buf_vprintf(&sc->sc_error, fmt, ap);
	va_end(ap);
	sc->sc_dirty = 1;
}

static void
watch_fd(struct scripts *ss, struct script *sc, struct evwatch *w, int fd,
    evwatch_fn cb)
{
	w->ew_fd = fd;
	w->ew_events = EPOLLIN;
	w->ew_cb = cb;
	w->ew_arg = sc;
	if (evloop_add(ss->ss_ds->loop, w) == -1)
		log_warn("%s: %s: epoll", __func__, sc->sc_name);
}

static void
unwatch(struct scripts *ss, struct evwatch *w, int *fd)
{
	if (*fd < 0)
		return;
	evloop_del(ss->ss_ds->loop, w);
	close(*fd);
	*fd = -1;
}

/*
 * The registered metrics' labels say which bpftrace runs the script: a
 * script registered while "bpftrace --version" still ran is registered
 * again (same names and PMIDs) once the version is known. Lock held.
 */
static void
script_relabel(struct scripts *ss, struct script *sc)
{
	char	 v[sizeof(sc->sc_label_ver)], err[256] = "";

	script_label_version(bt_version(ss->ss_ds), v, sizeof(v));
	if (strcmp(v, sc->sc_label_ver) == 0 || sc->sc_gone)
		return;
	reg_remove_source(ss->ss_ds->reg, sc->sc_src);
	if (script_add_metrics(ss, sc, err, sizeof(err)) == -1)
		log_warnx("script %s: re-registering with the bpftrace "
		    "version label: %s", sc->sc_name, err);
}

/*
 * print: on-demand: bpftrace before 0.22 dumps every map on SIGUSR1;
 * later ones do not, so their program gets a self:signal:SIGUSR1 probe
 * that prints the variables (unless the script has one). -1: no memory.
 */
static int
script_prepare_run(struct scripts *ss, struct script *sc)
{
	char	*run;
	size_t	 len;

	if (!sc->sc_info.i_meta.m_on_demand ||
	    !bt_version_at_least(bt_version(ss->ss_ds), 0, 22) ||
	    memmem(sc->sc_code, sc->sc_codelen, "self:signal:SIGUSR1",
	    strlen("self:signal:SIGUSR1")) != NULL)
		return 0;
	if ((run = bts_rewrite_usr1(sc->sc_code, sc->sc_codelen,
	    &sc->sc_info, &len)) == NULL)
		return -1;
	free(sc->sc_run);
	sc->sc_run = run;
	sc->sc_runlen = len;
	return 0;
}

/* Start bpftrace for sc. Main thread, lock held. */
static void
script_spawn(struct scripts *ss, struct script *sc)
{
	const struct config	*cfg = &ss->ss_ds->cfg;
	char			 err[512];

	ingest_reset(sc->sc_ing);
	btdiag_reset(&sc->sc_diag);
	buf_reset(&sc->sc_error);
	buf_reset(&sc->sc_warnings);
	buf_reset(&sc->sc_lout);
	buf_reset(&sc->sc_lerr);
	sc->sc_probes = 0;
	sc->sc_data_bytes = 0;
	sc->sc_lost = 0;
	sc->sc_exit_code = 0;
	memset(&sc->sc_err, 0, sizeof(sc->sc_err));
	sc->sc_dirty = 1;
	if (bt_version_state(ss->ss_ds) != BT_VERSION_KNOWN) {
		sc->sc_status = SCRIPT_ERROR;
		sc->sc_want_run = 0;
		set_error(sc, "bpftrace is not available (%s); see "
		    "bpftrace.info.version", cfg->bpftrace_path);
		return;
	}
	ingest_set_version(sc->sc_ing, bt_version(ss->ss_ds));
	script_relabel(ss, sc);
	if (script_prepare_run(ss, sc) == -1) {
		sc->sc_status = SCRIPT_ERROR;
		sc->sc_want_run = 0;
		set_error(sc, "out of memory");
		return;
	}
	if (sup_spawn(&sc->sc_child, spawnenv_bpftrace(), spawnenv_envp(),
	    sc->sc_run, sc->sc_runlen, bt_version_at_least(bt_version(ss->ss_ds), 0, 11),
	    err, sizeof(err)) == -1) {
		sc->sc_status = SCRIPT_ERROR;
		sc->sc_want_run = 0;
		set_error(sc, "%s", err);
		log_warnx("script %s: %s", sc->sc_name, err);
		return;
	}
	sc->sc_pid = sc->sc_child.ch_pid;
	sc->sc_status = SCRIPT_STARTING;
	sc->sc_started_ms = now_mono_ms();
	sc->sc_rate_since = sc->sc_started_ms;
	sc->sc_rate_bytes = sc->sc_rate_diag = 0;
	sc->sc_stop_deadline = 0;
	sc->sc_stop_reason = STOP_NONE;
	sc->sc_eof_at = 0;
	watch_fd(ss, sc, &sc->sc_wout, sc->sc_child.ch_out, on_script_out);
	watch_fd(ss, sc, &sc->sc_werr, sc->sc_child.ch_err, on_script_err);
	atomic_fetch_add(&ss->ss_ds->nrunning, 1);
	log_info("script %s: started bpftrace pid %d", sc->sc_name,
	    (int)sc->sc_pid);
}

/* Ask the child to stop: SIGINT now, SIGKILL at the deadline. */
static void
script_stop_child(struct scripts *ss, struct script *sc, enum stop_reason r)
{
	if (sc->sc_child.ch_pid <= 0 || sc->sc_child.ch_reaped)
		return;
	if (sc->sc_stop_deadline == 0) {
		sup_signal(&sc->sc_child, SIGINT);
		sc->sc_stop_deadline = now_mono_ms() +
		    ss->ss_ds->cfg.stop_timeout_ms;
		sc->sc_stop_reason = r;
	}
	if (sc->sc_status == SCRIPT_STARTED || sc->sc_status == SCRIPT_STARTING)
		sc->sc_status = SCRIPT_STOPPING;
	sc->sc_dirty = 1;
}

static void
on_stdout_line(void *arg, const char *line, size_t len, int cut)
{
	struct script	*sc = arg;
	char		 err[256];

	if (cut) {
		sc->sc_line_too_long = 1;
		return;
	}
	if (btdiag_line(&sc->sc_diag, line, len, now_mono_ms()) == 1)
		sc->sc_dirty = 1;	/* counted: no data in it */
	else if (ingest_line(sc->sc_ing, line, len, err, sizeof(err)) == -1)
		log_debug("script %s: bad output line: %s", sc->sc_name, err);
	if (sc->sc_status == SCRIPT_STARTING)
		sc->sc_status = SCRIPT_STARTED;
}

/*
 * stderr: known warnings (the RLIMIT_MEMLOCK line, WARNING blocks) go to
 * warnings, every other line to error (bterr.c sorts them).
 */
static void
on_stderr_line(void *arg, const char *line, size_t len, int cut)
{
	struct script	*sc = arg;
	struct buf	*to;

	(void)cut;
	to = bterr_line(&sc->sc_err, line, len) == BTERR_WARNING ?
	    &sc->sc_warnings : &sc->sc_error;
	if (to->b_len + len + 2 < BT_ERROR_TEXT_MAX) {
		if (to->b_len && to->b_data[to->b_len - 1] != '\n')
			buf_putc(to, '\n');	/* after our own message */
		buf_append(to, line, len);
		buf_putc(to, '\n');
	}
	sc->sc_dirty = 1;
}

static void
script_read(struct scripts *ss, struct script *sc, int err_side)
{
	struct child	*ch = &sc->sc_child;
	uint64_t	 diag;
	ssize_t		 n;

	if (err_side) {
		if (sup_read_lines(ch->ch_err, &sc->sc_lerr, READ_BUDGET,
		    on_stderr_line, sc) == -1)
			unwatch(ss, &sc->sc_werr, &ch->ch_err);
		return;
	}
	diag = sc->sc_diag.bd_bytes;
	n = sup_read_lines(ch->ch_out, &sc->sc_lout, READ_BUDGET,
	    on_stdout_line, sc);
	if (n > 0) {
		sc->sc_data_bytes += (uint64_t)n;
		sc->sc_rate_bytes += (uint64_t)n;
	}
	sc->sc_rate_diag += sc->sc_diag.bd_bytes - diag;
	if (n == -1) {
		unwatch(ss, &sc->sc_wout, &ch->ch_out);
		if (sc->sc_stop_deadline == 0)	/* it should exit now */
			sc->sc_eof_at = now_mono_ms();
	}
	if (sc->sc_line_too_long) {
		sc->sc_line_too_long = 0;
		set_error(sc, "bpftrace output line longer than %zu bytes "
		    "(see --max-line)", ss->ss_ds->cfg.max_line);
		script_stop_child(ss, sc, STOP_LIMIT);
	}
	sc->sc_lost = ingest_stats(sc->sc_ing)->is_lost_events;
	sc->sc_probes = ingest_stats(sc->sc_ing)->is_probes;
}

static void
on_script_io(struct evwatch *w, int err_side)
{
	struct script	*sc = w->ew_arg;
	struct scripts	*ss = sc->sc_ss;

	pthread_mutex_lock(&ss->ss_lock);
	script_read(ss, sc, err_side);
	if (ingest_seq(sc->sc_ing) != sc->sc_pub_seq || sc->sc_dirty)
		script_publish(sc);
	pthread_mutex_unlock(&ss->ss_lock);
	if (sc->sc_child.ch_out < 0 && sc->sc_child.ch_err < 0)
		scripts_on_sigchld(ss);	/* pipes closed: exit is near */
}

static void
on_script_out(struct evwatch *w, uint32_t events)
{
	(void)events;
	on_script_io(w, 0);
}

static void
on_script_err(struct evwatch *w, uint32_t events)
{
	(void)events;
	on_script_io(w, 1);
}

/* The child is gone: drain pipes, record why, decide what is next. */
static void
script_exited(struct scripts *ss, struct script *sc)
{
	struct child	*ch = &sc->sc_child;
	int		 code = ch->ch_exit_code, asked = sc->sc_stop_deadline != 0;

	while (ch->ch_out >= 0)
		script_read(ss, sc, 0);
	while (ch->ch_err >= 0)
		script_read(ss, sc, 1);
	sup_close(ch);
	atomic_fetch_sub(&ss->ss_ds->nrunning, 1);
	sc->sc_exit_code = code;
	ch->ch_pid = -1;
	sc->sc_stop_deadline = 0;
	log_info("script %s: bpftrace pid %d exited with %d%s", sc->sc_name,
	    (int)sc->sc_pid, code, asked ? " (stopped)" : "");
	if (sc->sc_stop_reason == STOP_LIMIT) {
		sc->sc_status = SCRIPT_ERROR;
	} else if (asked || code == 0) {
		sc->sc_status = SCRIPT_STOPPED;
	} else {
		sc->sc_status = SCRIPT_ERROR;
		if (sc->sc_error.b_len == 0)
			set_error(sc, "bpftrace exited with status %d%s", code,
			    ch->ch_signal ? " (killed by a signal)" : "");
	}
	if (!asked)
		script_plan_restart(sc, code);
	else if (sc->sc_stop_reason != STOP_RESTART)
		sc->sc_want_run = sc->sc_want_run && sc->sc_stop_reason ==
		    STOP_NONE;
	sc->sc_dirty = 1;
}

/* restart policy: backoff doubles up to BT_RESTART_MAX_BACKOFF_MS */
void
script_plan_restart(struct script *sc, int code)
{
	enum bts_restart	 p = sc->sc_info.i_meta.m_restart;
	int64_t			 now = now_mono_ms();

	if (!sc->sc_want_run || p == BTS_RESTART_NEVER ||
	    (p == BTS_RESTART_ON_FAILURE && code == 0)) {
		sc->sc_want_run = 0;
		return;
	}
	if (now - sc->sc_started_ms > BT_RESTART_MAX_BACKOFF_MS)
		sc->sc_backoff_ms = 0;	/* it ran well for a while */
	sc->sc_backoff_ms = sc->sc_backoff_ms ? sc->sc_backoff_ms * 2 : 1000;
	if (sc->sc_backoff_ms > BT_RESTART_MAX_BACKOFF_MS)
		sc->sc_backoff_ms = BT_RESTART_MAX_BACKOFF_MS;
	sc->sc_restart_at = now + sc->sc_backoff_ms;
	log_info("script %s: restarting in %lld ms (restart policy)",
	    sc->sc_name, (long long)sc->sc_backoff_ms);
}

/* --- reconciling wanted and actual state (main thread, lock held) --- */

static void
script_unlink(struct scripts *ss, struct script *sc)
{
	TAILQ_REMOVE(&ss->ss_list, sc, sc_entry);
	ss->ss_n--;
	atomic_store(&ss->ss_ds->nscripts, ss->ss_n);
	log_info("script %s: deregistered", sc->sc_name);
	script_free(sc);
}

static void
script_check_rate(struct scripts *ss, struct script *sc, int64_t now)
{
	int64_t		 el = now - sc->sc_rate_since;
	size_t		 max = ss->ss_ds->cfg.max_output_rate;
	uint64_t	 bytes;

	if (el < 1000)
		return;
	/* helper_error/runtime_error lines do not count: a full map makes
	   bpftrace print one per failed update, and that must not stop a
	   script (btdiag.c counts them at a small cost) */
	bytes = sc->sc_rate_bytes > sc->sc_rate_diag ? sc->sc_rate_bytes -
	    sc->sc_rate_diag : 0;
	if (max && bytes * 1000 / (uint64_t)el > max) {
		set_error(sc, "BPFtrace output exceeds limit of %zu bytes per "
		    "second (see --max-output-rate)", max);
		log_warnx("script %s: output rate over %zu bytes/s; stopping",
		    sc->sc_name, max);
		script_stop_child(ss, sc, STOP_LIMIT);
	}
	sc->sc_rate_since = now;
	sc->sc_rate_bytes = sc->sc_rate_diag = 0;
}

/*
 * print: on-demand: no timer in the script; when someone fetched since
 * the last dump and the data is older than the interval, SIGUSR1 makes
 * bpftrace print every map (the dump before 0.22, the probe
 * script_prepare_run added since). Fetches in between share one dump.
 */
static void
script_on_demand(struct script *sc, int64_t now)
{
	int64_t	 last = atomic_load(&sc->sc_src->src_last_fetch);

	if (!sc->sc_info.i_meta.m_on_demand || sc->sc_status != SCRIPT_STARTED)
		return;
	if (last > sc->sc_last_usr1 && now - sc->sc_last_usr1 >=
	    sc->sc_interval_ms) {
		if (kill(sc->sc_child.ch_pid, SIGUSR1) == 0)
			sc->sc_last_usr1 = now;
	}
}

static int
script_expired(struct scripts *ss, struct script *sc, int64_t now)
{
	int64_t		 last;
	unsigned	 exp = ss->ss_ds->cfg.script_expiry;

	if (sc->sc_named || exp == 0 || sc->sc_gone)
		return 0;
	last = atomic_load(&sc->sc_src->src_last_fetch);
	if (last < sc->sc_registered_ms)
		last = sc->sc_registered_ms;
	return now - last > (int64_t)exp * 1000;
}

static void
script_reconcile(struct scripts *ss, struct script *sc, int64_t now)
{
	struct child	*ch = &sc->sc_child;
	int		 alive = ch->ch_pid > 0;

	if (script_expired(ss, sc, now)) {
		log_info("script %s: not fetched for %u s; deregistering",
		    sc->sc_name, ss->ss_ds->cfg.script_expiry);
		script_deregister_locked(ss, sc);
	}
	if (alive && sup_reap(ch))
		script_exited(ss, sc);
	alive = ch->ch_pid > 0;
	if (alive) {
		if (!sc->sc_want_run || sc->sc_gone)
			script_stop_child(ss, sc, sc->sc_gone ? STOP_GONE :
			    STOP_NONE);
		else if (sc->sc_eof_at && now - sc->sc_eof_at >
		    BT_EOF_GRACE_MS && sc->sc_stop_deadline == 0) {
			/* no output can reach us any more: a wedged child */
			set_error(sc, "bpftrace closed its output but kept "
			    "running; stopped it");
			log_warnx("script %s: stdout closed, pid %d still "
			    "running; stopping it", sc->sc_name,
			    (int)ch->ch_pid);
			script_stop_child(ss, sc, STOP_LIMIT);
		}
		else {
			script_check_rate(ss, sc, now);
			script_on_demand(sc, now);
		}
		if (sc->sc_stop_deadline && now > sc->sc_stop_deadline) {
			log_warnx("script %s: no exit %u ms after SIGINT; "
			    "SIGKILL", sc->sc_name,
			    ss->ss_ds->cfg.stop_timeout_ms);
			sup_signal(ch, SIGKILL);
			sc->sc_stop_deadline = now + 60000;
		}
	} else if (sc->sc_gone) {
		return;		/* freed by the caller */
	} else if (sc->sc_want_run && now >= sc->sc_restart_at &&
	    bt_version_state(ss->ss_ds) != BT_VERSION_PENDING) {
		/* while bpftrace --version runs, it stays "starting": the
		   version thread wakes the loop when it is done */
		if (sc->sc_restart_at)
			sc->sc_restarts++;
		sc->sc_restart_at = 0;
		script_spawn(ss, sc);
	}
	if (sc->sc_dirty || ingest_seq(sc->sc_ing) != sc->sc_pub_seq)
		script_publish(sc);
}

/*
 * Save when each script was last fetched, at most every
 * BT_TOUCH_INTERVAL_MS: cheap writes (no fsync), for the audit of who
 * still uses what; expiry itself runs on the in-memory time.
 */
static void
script_touch(struct scripts *ss, struct script *sc, int64_t now)
{
	int64_t		 last = atomic_load(&sc->sc_src->src_last_fetch);
	struct timespec	 wall;

	if (ss->ss_ds->store == NULL || sc->sc_gone ||
	    last <= sc->sc_touched_ms ||
	    now - sc->sc_touched_ms < BT_TOUCH_INTERVAL_MS)
		return;
	now_real(&wall);
	store_script_touch(ss->ss_ds->store, sc->sc_id,
	    (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 -
	    (now - last));
	sc->sc_touched_ms = now;
}

/* Everything periodic and every wake-up ends here. Main thread. */
void
scripts_tick(struct scripts *ss)
{
	struct script	*sc, *next;
	int64_t		 now = now_mono_ms();

	pthread_mutex_lock(&ss->ss_lock);
	for (sc = TAILQ_FIRST(&ss->ss_list); sc; sc = next) {
		next = TAILQ_NEXT(sc, sc_entry);
		script_reconcile(ss, sc, now);
		script_touch(ss, sc, now);
		if (sc->sc_gone && sc->sc_child.ch_pid <= 0)
			script_unlink(ss, sc);
	}
	if (ss->ss_hooks.sh_tick_locked)
		ss->ss_hooks.sh_tick_locked(ss);
	pthread_mutex_unlock(&ss->ss_lock);
	if (ss->ss_hooks.sh_tick)
		ss->ss_hooks.sh_tick(ss);
}

void
scripts_on_sigchld(struct scripts *ss)
{
	scripts_tick(ss);
}

static void
on_scripts_wake(struct evwatch *w, uint32_t events)
{
	struct scripts	*ss = w->ew_arg;
	uint64_t	 v;

	(void)events;
	if (read(w->ew_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("%s: eventfd", __func__);
	scripts_tick(ss);
}

/* Any thread: have the main loop look at the scripts soon. */
void
scripts_wake(struct scripts *ss)
{
	uint64_t	 one = 1;

	if (write(ss->ss_wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: eventfd", __func__);
}

/*
 * Stop every child (SIGINT, then SIGKILL after the stop timeout) and wait
 * for them; at daemon exit. Main thread.
 */
void
scripts_shutdown(struct scripts *ss, int timeout_ms)
{
	struct script	*sc;
	int64_t		 deadline = now_mono_ms() + timeout_ms;
	int		 left;

	pthread_mutex_lock(&ss->ss_lock);
	TAILQ_FOREACH(sc, &ss->ss_list, sc_entry)
		sup_signal(&sc->sc_child, SIGINT);
	do {
		left = 0;
		TAILQ_FOREACH(sc, &ss->ss_list, sc_entry)
			if (sc->sc_child.ch_pid > 0 && !sup_reap(&sc->sc_child))
				left++;
		if (left && now_mono_ms() < deadline) {
			pthread_mutex_unlock(&ss->ss_lock);
			usleep(10000);
			pthread_mutex_lock(&ss->ss_lock);
		}
	} while (left && now_mono_ms() < deadline);
	TAILQ_FOREACH(sc, &ss->ss_list, sc_entry)
		if (sc->sc_child.ch_pid > 0 && !sc->sc_child.ch_reaped) {
			sup_signal(&sc->sc_child, SIGKILL);
			while (!sup_reap(&sc->sc_child))
				usleep(1000);
		}
	pthread_mutex_unlock(&ss->ss_lock);
}

/* --- setup --- */

/*
 * hooks (NULL: none) are how the scripts report to the layers above;
 * main registers them. Main thread.
 */
int
scripts_init(struct daemon_state *ds, const struct scripts_hooks *hooks)
{
	struct scripts	*ss;

	if ((ss = calloc(1, sizeof(*ss))) == NULL)
		return -1;
	ss->ss_ds = ds;
	if (hooks)
		ss->ss_hooks = *hooks;
	pthread_mutex_init(&ss->ss_lock, NULL);
	TAILQ_INIT(&ss->ss_list);
	ss->ss_next_cluster = SCRIPT_FIRST_CLUSTER;
	if ((ss->ss_wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		goto fail;
	ss->ss_wakew.ew_fd = ss->ss_wakefd;
	ss->ss_wakew.ew_events = EPOLLIN;
	ss->ss_wakew.ew_cb = on_scripts_wake;
	ss->ss_wakew.ew_arg = ss;
	ds->scripts = ss;
	if (evloop_add(ds->loop, &ss->ss_wakew) == -1)
		goto fail;
	return 0;
fail:
	log_warn("%s", __func__);
	return -1;
}

void
scripts_fini(struct daemon_state *ds)
{
	struct scripts	*ss = ds->scripts;
	struct script	*sc;

	if (ss == NULL)
		return;
	while ((sc = TAILQ_FIRST(&ss->ss_list)) != NULL) {
		TAILQ_REMOVE(&ss->ss_list, sc, sc_entry);
		sup_close(&sc->sc_child);
		script_free(sc);
	}
	if (ss->ss_wakefd >= 0)
		close(ss->ss_wakefd);
	pthread_mutex_destroy(&ss->ss_lock);
	free(ss);
	ds->scripts = NULL;
}
