/* SPDX-License-Identifier: MIT */
/*
 * info.c - what the daemon tells about its scripts: the script object in
 * the PMDA's JSON (the control answers and scripts_json share it) and
 * the metrics bpftrace.info.scripts, scripts_json and tracepoints.
 * Above scripts.c (it reads the script table; scripts.c reports changes
 * through the hooks main registers), below control.c (which publishes
 * at once what a store changed).
 *
 * Threads: info_publish runs with ss_lock held, on the main thread or a
 * libmicrohttpd thread (a store). The tracepoint list is built by a
 * short-lived thread (started and joined by the main thread); ss_tp_lock
 * guards the list and the pid of its "bpftrace -l".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "registry.h"
#include "scripts.h"
#include "spawnenv.h"
#include "util.h"

#define TP_REFRESH_MS		(10 * 60 * 1000)
#define TP_MAX_BYTES		(16 * 1024 * 1024)
#define TP_STOP_WAIT_MS		3000	/* shutdown: then "bpftrace -l" is killed */
/*
 * A script object's bytes besides its code, variable names and error
 * text (info_object_max): ids, times, flags and the user (~2 KB), 128
 * bytes a variable (BTS_MAX_VARS: 32 KB), the // include: names
 * (BTS_MAX_INCLUDE of BTS_NAME_MAX bytes as JSON strings: ~100 KB).
 */
#define INFO_OBJECT_REST	(256 * 1024)
/* put_code_object's bytes besides head, code and tail: the cut flag, '}' */
#define INFO_CUT_ROOM		64
#define SCRIPTS_INDOM		pmInDom_build(BT_DOMAIN, 0)

/* INFO_OWNERS is no metric: the owner of each INFO_SCRIPTS instance */
enum info_slot {
	INFO_SCRIPTS, INFO_SCRIPTS_JSON, INFO_TRACEPOINTS, INFO_OWNERS, INFO_N
};

/* --- the script object, in the PMDA's JSON (Python json.dumps style) --- */

static void
put_time(struct buf *b, const struct timespec *ts)
{
	struct tm	 tm;
	char		 t[64];

	localtime_r(&ts->tv_sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_printf(b, "\"%s.%06ld\"", t, ts->tv_nsec / 1000);
}

/*
 * When the running child started, in Unix seconds (null when none runs):
 * the web page shows the uptime from it. A bpftraced extension to the
 * PMDA's state; fixed while the child runs, so the snapshot stays valid.
 */
static void
put_started_at(struct buf *b, const struct script *sc)
{
	struct timespec	 now;
	double		 t;

	if (sc->sc_pid <= 0 || sc->sc_started_ms == 0) {
		buf_puts(b, ", \"started_at\": null");
		return;
	}
	now_real(&now);
	t = (double)now.tv_sec + now.tv_nsec / 1e9 -
	    (double)(now_mono_ms() - sc->sc_started_ms) / 1000.0;
	buf_printf(b, ", \"started_at\": %.3f", t);
}

static void
put_nullable_str(struct buf *b, const char *s)
{
	if (s)
		json_str(b, s);
	else
		buf_puts(b, "null");
}

static void
put_metadata(struct buf *b, const struct bts_meta *m)
{
	buf_puts(b, "{\"name\": ");
	put_nullable_str(b, m->m_name);
	buf_puts(b, ", \"include\": ");
	if (m->m_ninclude == 0)
		buf_puts(b, "null");
	else {
		buf_putc(b, '[');
		for (size_t i = 0; i < m->m_ninclude; i++) {
			char	 at[BTS_NAME_MAX + 2];

			snprintf(at, sizeof(at), "@%s", m->m_include[i]);
			buf_puts(b, i ? ", " : "");
			json_str(b, at);
		}
		buf_putc(b, ']');
	}
	if (m->m_table_retain_lines >= 0)
		buf_printf(b, ", \"table_retain_lines\": %ld",
		    m->m_table_retain_lines);
	else
		buf_puts(b, ", \"table_retain_lines\": null");
	buf_printf(b, ", \"custom_output_block\": %s}",
	    m->m_custom_output_block ? "true" : "false");
}

static int
var_datatype(const struct bts_var *v)
{
	return v->v_vtype == BTS_V_STRING ? PM_TYPE_STRING :
	    v->v_vtype == BTS_V_UINT ? PM_TYPE_U64 : PM_TYPE_64;
}

static const char *
var_mtype(enum bts_mtype mt)
{
	static const char *const n[] = {
		NULL, "histogram", "stacks", "output"
	};

	return n[mt];
}

static void
put_variables(struct buf *b, const struct bts_info *info)
{
	buf_putc(b, '{');
	for (size_t i = 0; i < info->i_nvars; i++) {
		const struct bts_var	*v = &info->i_vars[i];

		buf_printf(b, "%s\"@%s\": {\"single\": %s, \"semantics\": %d, "
		    "\"datatype\": %d, \"metrictype\": ", i ? ", " : "",
		    v->v_bare ? "" : v->v_name,
		    v->v_nkeys || v->v_kind == BTS_HIST ||
		    v->v_kind == BTS_LHIST || v->v_kind == BTS_STATS ?
		    "false" : "true",
		    v->v_counter ? PM_SEM_COUNTER : PM_SEM_INSTANT,
		    var_datatype(v));
		put_nullable_str(b, var_mtype(v->v_mtype));
		buf_putc(b, '}');
	}
	buf_putc(b, '}');
}

/*
 * The fields the 2019 grafana-pcp datasource reads from the register
 * answer (the PMDA of that time wrote them): name, vars without '@',
 * status, exit_code, output. Extra keys are harmless to newer clients.
 */
static void
put_legacy(struct buf *b, const char *name, const struct bts_info *info,
    const char *status, int exit_code, const char *output)
{
	buf_puts(b, ", \"name\": ");
	json_str(b, name);
	buf_puts(b, ", \"vars\": [");
	for (size_t i = 0; info && i < info->i_nvars; i++) {
		buf_puts(b, i ? ", " : "");
		json_str(b, info->i_vars[i].v_name);
	}
	buf_printf(b, "], \"status\": \"%s\", \"exit_code\": %d, "
	    "\"output\": ", status, exit_code);
	json_str(b, output);
}

/*
 * head + code as a JSON string + tail + "}", the code cut so that the
 * whole stays within max bytes ("code_truncated": true then says so):
 * an answer stays bounded whatever the size and escaping of the script.
 */
static void
put_code_object(struct buf *b, const struct buf *head, const char *code,
    size_t len, const struct buf *tail, size_t max)
{
	static const char	 cut[] = ", \"code_truncated\": true";
	size_t			 fixed = head->b_len + tail->b_len + sizeof(cut);
	ssize_t			 n;

	if (head->b_failed || tail->b_failed) {	/* not a part of it */
		b->b_failed = head->b_failed ? head->b_failed : tail->b_failed;
		return;
	}
	buf_append(b, head->b_data, head->b_len);
	n = json_strn_short(b, code, len, max > fixed + 2 ? max - fixed : 2);
	buf_append(b, tail->b_data, tail->b_len);
	if (n >= 0 && (size_t)n < len)
		buf_puts(b, cut);
	buf_putc(b, '}');
}

/*
 * The most one script object (info_put_script) takes, whatever its
 * script: its code and its variables' names (no longer than the code,
 * each written twice) and its error text (twice) as JSON strings, 6 bytes
 * a byte at worst (\u00XX), and INFO_OBJECT_REST. A bound no object
 * reaches: the cap of the buffers that hold objects.
 */
size_t
info_object_max(const struct config *cfg)
{
	return 6 * (3 * (cfg->max_script_bytes + 64) + 2 * BT_ERROR_TEXT_MAX) +
	    INFO_OBJECT_REST;
}

/*
 * One script as the PMDA writes it, in at most max bytes (the code is
 * cut). redact: for a reader who may not see it (--auth-reads), without
 * its code, errors and output. Lock held.
 */
void
info_put_script(struct buf *b, const struct script *sc, int redact, size_t max)
{
	struct timespec	 last = sc->sc_created;
	struct buf	 head, tail;
	const char	*error = redact ? "" : buf_cstr((struct buf *)
			    &sc->sc_error);
	int64_t		 lf = sc->sc_src ?
			    atomic_load(&sc->sc_src->src_last_fetch) : 0;

	if (lf > sc->sc_registered_ms)
		last.tv_sec += (lf - sc->sc_registered_ms) / 1000;
	buf_init(&head, info_object_max(&sc->sc_ss->ss_ds->cfg));
	buf_init(&tail, info_object_max(&sc->sc_ss->ss_ds->cfg));
	buf_puts(&head, "{\"script_id\": ");
	json_str(&head, sc->sc_id);
	buf_puts(&head, ", \"username\": ");
	put_nullable_str(&head, sc->sc_user);
	buf_printf(&head, ", \"persistent\": %s, \"created_at\": ",
	    sc->sc_named ? "true" : "false");
	put_time(&head, &sc->sc_created);
	buf_puts(&head, ", \"last_accessed_at\": ");
	put_time(&head, &last);
	buf_puts(&head, ", \"code\": ");
	buf_puts(&tail, ", \"metadata\": ");
	put_metadata(&tail, &sc->sc_info.i_meta);
	buf_puts(&tail, ", \"variables\": ");
	put_variables(&tail, &sc->sc_info);
	buf_printf(&tail, ", \"state\": {\"status\": \"%s\", \"pid\": %d, "
	    "\"exit_code\": %d, \"error\": ",
	    script_status_str(sc->sc_status), sc->sc_pid > 0 ?
	    (int)sc->sc_pid : -1, sc->sc_exit_code);
	json_str(&tail, error);
	buf_printf(&tail, ", \"probes\": %d, \"data_bytes\": %llu",
	    sc->sc_probes > 0 ? sc->sc_probes : 0,
	    (unsigned long long)sc->sc_data_bytes);
	put_started_at(&tail, sc);
	buf_putc(&tail, '}');
	put_legacy(&tail, sc->sc_name, &sc->sc_info, script_status_str(
	    sc->sc_status), sc->sc_exit_code, error);
	if (redact)	/* --auth-reads: another user's script */
		buf_puts(&tail, ", \"redacted\": true");
	put_code_object(b, &head, redact ? "" : sc->sc_code, redact ? 0 :
	    sc->sc_codelen, &tail, max);
	buf_free(&head);
	buf_free(&tail);
}

/*
 * The answer for a script refused before it existed, in max bytes.
 * Caller frees; NULL when out of memory.
 */
char *
info_refused_script(const char *code, size_t len, const char *reason, size_t max)
{
	struct buf	 b, head, tail;
	struct timespec	 now;
	char		 id[40];
	unsigned char	 r[16];

	now_real(&now);
	random_bytes(r, sizeof(r));
	id[0] = 's';
	for (int i = 0; i < 16; i++)
		snprintf(id + 1 + 2 * i, 3, "%02x", r[i]);
	/* the fields, and the reason twice as a JSON string */
	buf_init(&head, INFO_OBJECT_REST + 12 * strlen(reason));
	buf_init(&tail, INFO_OBJECT_REST + 12 * strlen(reason));
	buf_puts(&head, "{\"script_id\": ");
	json_str(&head, id);
	buf_puts(&head, ", \"username\": null, \"persistent\": false, "
	    "\"created_at\": ");
	put_time(&head, &now);
	buf_puts(&head, ", \"last_accessed_at\": ");
	put_time(&head, &now);
	buf_puts(&head, ", \"code\": ");
	buf_puts(&tail, ", \"metadata\": {\"name\": null, \"include\": null, "
	    "\"table_retain_lines\": null, \"custom_output_block\": false}, "
	    "\"variables\": {}, \"state\": {\"status\": \"error\", "
	    "\"pid\": -1, \"exit_code\": 0, \"error\": ");
	json_str(&tail, reason);
	buf_puts(&tail, ", \"probes\": 0, \"data_bytes\": 0}");
	/* the 2019 client takes stopped + a non-zero exit code as failed */
	put_legacy(&tail, id, NULL, "stopped", 1, reason);
	/* the code is cut to max */
	buf_init(&b, head.b_len + max + tail.b_len + INFO_CUT_ROOM);
	put_code_object(&b, &head, code, len, &tail, max);
	buf_free(&head);
	buf_free(&tail);
	return buf_take(&b, NULL);
}

/* --- info metrics --- */

/* Every script; rd NULL: in full, else as rd may see them. Lock held. */
static int
put_scripts_json(struct scripts *ss, struct buf *b, const struct reader *rd)
{
	struct script	*sc;
	int		 n = 0;

	buf_putc(b, '[');
	TAILQ_FOREACH(sc, &ss->ss_list, sc_entry) {
		if (sc->sc_gone)
			continue;
		if (n++)
			buf_puts(b, ", ");
		info_put_script(b, sc, rd &&
		    !access_owner_ok(ss->ss_ds->cfg.auth_reads, sc->sc_user,
		    rd), SIZE_MAX);
	}
	buf_putc(b, ']');
	return b->b_failed ? -1 : 0;
}


/*
 * Rebuild the info snapshot when scripts changed, at most once a second
 * unless now is set (a change clients must see at once). Any thread,
 * ss_lock held (the snapshot swap itself is atomic for readers).
 */
void
info_publish(struct scripts *ss, int now)
{
	struct script	*sc;
	struct snap	*s;
	struct buf	 b;
	uint32_t	*ids;
	const char	**names;
	union value	*vals, *owners;
	int		 n = 0, rv = 0;

	if (now)
		ss->ss_info_last_ms = 0;
	if (ss->ss_info_last_ms && now_mono_ms() - ss->ss_info_last_ms < 1000)
		return;		/* counters only: at most once a second */
	if (!atomic_exchange(&ss->ss_info_dirty, 0))
		return;
	ss->ss_info_last_ms = now_mono_ms();
	ids = calloc((size_t)ss->ss_n + 1, sizeof(*ids));
	names = calloc((size_t)ss->ss_n + 1, sizeof(*names));
	vals = calloc((size_t)ss->ss_n + 1, sizeof(*vals));
	owners = calloc((size_t)ss->ss_n + 1, sizeof(*owners));
	if (ids == NULL || names == NULL || vals == NULL || owners == NULL ||
	    (s = snap_new(INFO_N, 1)) == NULL)
		goto done;
	TAILQ_FOREACH(sc, &ss->ss_list, sc_entry) {
		if (sc->sc_gone)
			continue;
		ids[n] = sc->sc_cluster;
		names[n] = sc->sc_name;
		vals[n].s = snap_strdup(s, sc->sc_code);
		owners[n].s = snap_strdup(s, sc->sc_user ? sc->sc_user : "");
		n++;
	}
	rv |= snap_set_values(s, INFO_SCRIPTS, n, ids, vals);
	rv |= snap_set_values(s, INFO_OWNERS, n, ids, owners);
	rv |= snap_set_indom(s, 0, n, ids, names);
	/* n objects, ", " between them, "[]" */
	buf_init(&b, (size_t)n * (info_object_max(&ss->ss_ds->cfg) + 2) + 2);
	rv |= put_scripts_json(ss, &b, NULL);
	rv |= snap_set_str1(s, INFO_SCRIPTS_JSON, buf_cstr(&b));
	buf_free(&b);
	pthread_mutex_lock(&ss->ss_tp_lock);
	rv |= snap_set_str1(s, INFO_TRACEPOINTS,
	    ss->ss_tracepoints ? ss->ss_tracepoints : "");
	pthread_mutex_unlock(&ss->ss_tp_lock);
	if (rv)
		snap_release(s);
	else
		source_publish(ss->ss_info_src, s);
done:
	free(ids);
	free(names);
	free(vals);
	free(owners);
}

/*
 * A script changed: the next info_publish rebuilds the snapshot; now:
 * rebuild it at once (a change clients must see when they are answered).
 * The hook main registers for scripts.c (sh_changed). Any thread; ss_lock
 * held when now is set.
 */
void
info_changed(struct scripts *ss, int now)
{
	atomic_store(&ss->ss_info_dirty, 1);
	if (now)
		info_publish(ss, 1);
}

/*
 * bpftrace.info.scripts_json for one reader: with --auth-reads, other
 * users' scripts without their code, errors and output (built now, under
 * ss_lock); 1 (the published snapshot's value) for everyone else.
 */
static int
on_info_json_ctxval(struct metric *m, const struct reader *rd,
    struct buf *out)
{
	struct scripts	*ss = m->m_arg;
	int		 rv;

	if (!ss->ss_ds->cfg.auth_reads || (rd->rd_roles & AUTH_ROLE_ADMIN))
		return 1;
	pthread_mutex_lock(&ss->ss_lock);
	rv = put_scripts_json(ss, out, rd);
	pthread_mutex_unlock(&ss->ss_lock);
	return rv;
}

/* --- tracepoints: "bpftrace -l tracepoint:*" in a background thread --- */

static char *
run_list(struct scripts *ss, const char *bpftrace)
{
	posix_spawn_file_actions_t	 fa;
	char				*argv[] = { (char *)bpftrace, "-l",
					    "tracepoint:*", NULL };
	struct buf			 out;
	char				 chunk[65536];
	int				 p[2], st;
	pid_t				 pid;
	ssize_t				 n;

	if (pipe2(p, O_CLOEXEC) == -1)
		return NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);	/* 0-2 only */
	if (bpftrace == NULL ||		/* not found at start */
	    posix_spawn(&pid, bpftrace, &fa, NULL, argv, spawnenv_envp()) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	pthread_mutex_lock(&ss->ss_tp_lock);	/* info_fini may kill it */
	ss->ss_tp_pid = pid > 0 ? pid : 0;
	pthread_mutex_unlock(&ss->ss_tp_lock);
	buf_init(&out, TP_MAX_BYTES);
	while (pid > 0 && (n = read(p[0], chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(&out, chunk, (size_t)n) == -1)
			break;
	}
	close(p[0]);
	pthread_mutex_lock(&ss->ss_tp_lock);	/* not to be killed once reaped */
	ss->ss_tp_pid = 0;
	pthread_mutex_unlock(&ss->ss_tp_lock);
	if (pid > 0)
		waitpid(pid, &st, 0);
	/* one per line -> comma separated, as the PMDA serves it */
	for (size_t i = 0; i < out.b_len; i++)
		if (out.b_data[i] == '\n')
			out.b_data[i] = i + 1 == out.b_len ? '\0' : ',';
	if (out.b_len && out.b_data[out.b_len - 1] == '\0')
		out.b_len--;
	return out.b_failed ? (buf_free(&out), NULL) : buf_take(&out, NULL);
}

static void *
tp_thread(void *arg)
{
	struct scripts	*ss = arg;
	char		*list = run_list(ss, spawnenv_bpftrace());

	pthread_mutex_lock(&ss->ss_tp_lock);
	if (list) {
		free(ss->ss_tracepoints);
		ss->ss_tracepoints = list;
	}
	ss->ss_tp_busy = 0;
	pthread_mutex_unlock(&ss->ss_tp_lock);
	info_changed(ss, 0);
	scripts_wake(ss);
	return NULL;
}

/* SIGHUP: the next info_tick lists the tracepoints again. Main thread. */
void
info_refresh_tracepoints(struct scripts *ss)
{
	pthread_mutex_lock(&ss->ss_tp_lock);
	ss->ss_tp_time = 0;
	pthread_mutex_unlock(&ss->ss_tp_lock);
}

/*
 * Every tick: list the tracepoints again when the list is old (once
 * bpftrace is known). Main thread.
 */
void
info_tick(struct scripts *ss)
{
	int		 go;

	if (bt_version_state(ss->ss_ds) != BT_VERSION_KNOWN)
		return;
	pthread_mutex_lock(&ss->ss_tp_lock);
	go = !ss->ss_tp_busy && (ss->ss_tp_time == 0 ||
	    now_mono_ms() - ss->ss_tp_time > TP_REFRESH_MS);
	if (go) {
		ss->ss_tp_busy = 1;
		ss->ss_tp_time = now_mono_ms();
	}
	pthread_mutex_unlock(&ss->ss_tp_lock);
	if (!go)
		return;
	if (ss->ss_tp_joinable)		/* the last one is done (not busy) */
		pthread_join(ss->ss_tp_thread, NULL);
	ss->ss_tp_joinable = pthread_create(&ss->ss_tp_thread, NULL,
	    tp_thread, ss) == 0;
	if (!ss->ss_tp_joinable) {
		pthread_mutex_lock(&ss->ss_tp_lock);
		ss->ss_tp_busy = 0;
		pthread_mutex_unlock(&ss->ss_tp_lock);
	}
}

/*
 * Shutdown: let a running "bpftrace -l" finish (up to TP_STOP_WAIT_MS),
 * then kill it, and join the thread, which uses ss until it returns.
 * Main thread.
 */
static void
tp_join(struct scripts *ss)
{
	int64_t	 deadline = now_mono_ms() + TP_STOP_WAIT_MS;
	int	 busy = 1;

	while (ss->ss_tp_joinable && busy && now_mono_ms() < deadline) {
		pthread_mutex_lock(&ss->ss_tp_lock);
		busy = ss->ss_tp_busy;
		pthread_mutex_unlock(&ss->ss_tp_lock);
		if (busy)
			usleep(10000);
	}
	pthread_mutex_lock(&ss->ss_tp_lock);
	if (ss->ss_tp_busy && ss->ss_tp_pid > 0)
		kill(ss->ss_tp_pid, SIGKILL);
	pthread_mutex_unlock(&ss->ss_tp_lock);
	if (ss->ss_tp_joinable)
		pthread_join(ss->ss_tp_thread, NULL);
	ss->ss_tp_joinable = 0;
}


/* --- registration of the info metrics --- */

static int
add_info_metrics(struct scripts *ss)
{
	struct metric	*ms[INFO_N] = { 0 };
	struct indom	*in;
	int		 nm = 0;

	ms[nm++] = metric_new("bpftrace.info.scripts", pmID_build(BT_DOMAIN,
	    1, 0), SCRIPTS_INDOM, PM_TYPE_STRING, PM_SEM_INSTANT,
	    BT_UNITS(0, 0, 0, 0, 0, 0), "registered bpftrace scripts",
	    "The code of every registered script; instance names are the "
	    "script names.", "\"metrictype\":\"control\"", ss->ss_info_src,
	    INFO_SCRIPTS);
	if (ms[nm - 1]) {	/* --auth-reads: only the code one may read */
		ms[nm - 1]->m_private = MPRIV_INST;
		ms[nm - 1]->m_owner_slot = INFO_OWNERS;
	}
	if ((ms[nm] = metric_new("bpftrace.info.scripts_json", pmID_build(
	    BT_DOMAIN, 1, 1), PM_INDOM_NULL, PM_TYPE_STRING, PM_SEM_INSTANT,
	    BT_UNITS(0, 0, 0, 0, 0, 0), "registered bpftrace scripts as JSON",
	    NULL, "\"metrictype\":\"control\"", ss->ss_info_src,
	    INFO_SCRIPTS_JSON)) != NULL) {
		ms[nm]->m_ctxval = on_info_json_ctxval;
		ms[nm]->m_arg = ss;
	}
	nm++;
	ms[nm++] = metric_new("bpftrace.info.tracepoints", pmID_build(
	    BT_DOMAIN, 1, 2), PM_INDOM_NULL, PM_TYPE_STRING, PM_SEM_INSTANT,
	    BT_UNITS(0, 0, 0, 0, 0, 0), "available tracepoints",
	    "Comma-separated output of bpftrace -l 'tracepoint:*', refreshed "
	    "every 10 minutes.", "\"metrictype\":\"control\"",
	    ss->ss_info_src, INFO_TRACEPOINTS);
	in = indom_new(SCRIPTS_INDOM, "registered bpftrace scripts", NULL,
	    ss->ss_info_src, 0);
	return reg_add_release(ss->ss_ds->reg, ms, (size_t)nm, &in, 1,
	    __func__);
}

/* After control_init (the metrics keep their order). Main thread. */
int
info_init(struct scripts *ss)
{
	pthread_mutex_init(&ss->ss_tp_lock, NULL);
	if ((ss->ss_info_src = source_new("info", NULL, NULL)) == NULL)
		return -1;
	ss->ss_info_dirty = 1;
	pthread_mutex_lock(&ss->ss_lock);
	info_publish(ss, 0);
	pthread_mutex_unlock(&ss->ss_lock);
	return add_info_metrics(ss);
}

/* Before scripts_fini; accepts an info_init that failed. Main thread. */
void
info_fini(struct scripts *ss)
{
	tp_join(ss);	/* a running "bpftrace -l" */
	source_unref(ss->ss_info_src);
	ss->ss_info_src = NULL;
	pthread_mutex_lock(&ss->ss_tp_lock);
	free(ss->ss_tracepoints);
	ss->ss_tracepoints = NULL;
	pthread_mutex_unlock(&ss->ss_tp_lock);
}
