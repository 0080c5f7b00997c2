/* SPDX-License-Identifier: MIT */
/*
 * control.c - the PMDA's control surface: bpftrace.control.{register,
 * deregister,start,stop} (stores, with the answer read back per context
 * by fetching the same metric, as PCP's bpftrace PMDA does: the answers
 * are control_answer.c's), who may use them (--control), the audit trail
 * of control actions and failed logins, and the scripts registered at
 * start (state database, --script, --scripts-dir). The top of the
 * scripts subsystem: it drives scripts.c, scripts_run.c, info.c and
 * control_answer.c; nothing below calls it.
 *
 * Threads: stores run on libmicrohttpd threads and take ss_lock (script
 * table) or ss_ans_lock (answers), never both at once. control_restore,
 * control_autostart* and control_tick run on the main thread.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "auth.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "log.h"
#include "memcap.h"
#include "registry.h"
#include "scripts.h"
#include "store.h"
#include "util.h"

enum ctl_item { CTL_REGISTER, CTL_DEREGISTER, CTL_START, CTL_STOP, CTL_N };
static const char *const ctl_names[CTL_N] = {
	"register", "deregister", "start", "stop"
};

/* --- registration --- */

static struct script *
script_new(struct scripts *ss, const char *code, size_t len,
    struct bts_info *info, const struct store_req *sr,
    const struct store_script *row)
{
	struct ingest_limits	 lim = {
		.il_max_instances = ss->ss_ds->cfg.max_instances,
		.il_output_bytes = ING_DEF_OUTPUT_BYTES,
		.il_output_lines = ING_DEF_OUTPUT_LINES,
		.il_max_line = ss->ss_ds->cfg.max_line,
	};
	struct script		*sc;
	unsigned char		 r[16];

	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	sc->sc_ss = ss;
	sc->sc_info = *info;
	memset(info, 0, sizeof(*info));
	sc->sc_child.ch_pid = -1;
	sc->sc_child.ch_out = sc->sc_child.ch_err = -1;
	sc->sc_pid = -1;
	buf_init(&sc->sc_error, BT_ERROR_TEXT_MAX);
	buf_init(&sc->sc_warnings, BT_ERROR_TEXT_MAX);
	buf_init(&sc->sc_lout, ss->ss_ds->cfg.max_line);
	buf_init(&sc->sc_lerr, SCRIPT_STDERR_LINE_MAX);
	random_bytes(r, sizeof(r));
	if ((sc->sc_id = malloc(34)) == NULL)
		goto fail;
	sc->sc_id[0] = 's';
	for (int i = 0; i < 16; i++)
		snprintf(sc->sc_id + 1 + 2 * i, 3, "%02x", r[i]);
	if (row) {		/* restored: same id, cluster and birth */
		snprintf(sc->sc_id, 34, "%s", row->ss_script_id);
		sc->sc_cluster = row->ss_cluster;
	}
	sc->sc_inst_saved = calloc(sc->sc_info.i_nvars + 1, sizeof(size_t));
	sc->sc_named = sc->sc_info.i_meta.m_name != NULL;
	sc->sc_name = strdup(sc->sc_named ? sc->sc_info.i_meta.m_name :
	    sc->sc_id);
	sc->sc_code = strndup(code, len);
	sc->sc_codelen = len;
	sc->sc_user = sr->sr_user ? strdup(sr->sr_user) : NULL;
	snprintf(sc->sc_peer, sizeof(sc->sc_peer), "%s",
	    sr->sr_peer ? sr->sr_peer : "");
	now_real(&sc->sc_created);
	if (row) {
		sc->sc_created.tv_sec = (time_t)(row->ss_created_ms / 1000);
		sc->sc_created.tv_nsec = (long)(row->ss_created_ms % 1000) *
		    1000000;
	}
	sc->sc_registered_ms = now_mono_ms();
	sc->sc_interval_ms = sc->sc_info.i_meta.m_interval_ms > 0 ?
	    sc->sc_info.i_meta.m_interval_ms :
	    (long)ss->ss_ds->cfg.print_interval_ms;
	sc->sc_run = bts_rewrite(code, len, &sc->sc_info, sc->sc_interval_ms,
	    &sc->sc_runlen);
	sc->sc_ing = ingest_new(&sc->sc_info, &lim);
	if (sc->sc_name == NULL || sc->sc_code == NULL || sc->sc_run == NULL ||
	    sc->sc_ing == NULL || sc->sc_inst_saved == NULL)
		goto fail;
	return sc;
fail:
	script_free(sc);
	return NULL;
}

/*
 * One control action for the audit trail: who (user or address), what,
 * on which script, and how it ended. Logged, and kept in the state
 * database when there is one.
 */
static void
audit_action(struct scripts *ss, const struct store_req *sr,
    const char *action, const char *target, int ok, const char *msg)
{
	const char	*who = sr->sr_user ? sr->sr_user : "anonymous";
	const char	*peer = sr->sr_peer ? sr->sr_peer : "";

	log_info("audit: %s from %s: %s %s: %s%s%s", who, peer, action,
	    target ? target : "-", ok ? "ok" : "refused", msg ? ": " : "",
	    msg ? msg : "");
	if (ss->ss_ds->store)
		store_audit(ss->ss_ds->store, sr->sr_user, peer, action,
		    target, ok, msg);
}

/*
 * A client-supplied script name or id as an audit target: at most
 * BTS_NAME_MAX bytes, anything but [A-Za-z0-9_,] shown as '?', so a value
 * cannot pass for another field or line of the audit trail.
 */
static const char *
audit_target(const char *v, size_t len, char *out, size_t outlen)
{
	size_t	 n = 0;

	for (size_t i = 0; i < len && n + 1 < outlen && n < BTS_NAME_MAX;
	    i++) {
		unsigned char	 c = (unsigned char)v[i];

		out[n++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == ',' ? (char)c :
		    '?';
	}
	out[n] = '\0';
	return n ? out : "-";
}

/*
 * Whether one more row of this kind may go to the audit table this
 * minute (--audit-rate); *dropped is set, once a minute is over, to the
 * rows that minute left out (the caller writes one row saying so).
 * Takes ss_login_lock.
 */
static int
audit_admit(struct scripts *ss, struct audit_limit *al, const char *what,
    unsigned long *dropped)
{
	unsigned	 rate = ss->ss_ds->cfg.audit_rate;
	int64_t		 now = now_mono_ms();
	int		 keep;

	*dropped = 0;
	pthread_mutex_lock(&ss->ss_login_lock);
	if (now - al->al_window >= 60000) {
		*dropped = al->al_dropped;
		al->al_window = now;
		al->al_rows = 0;
		al->al_dropped = 0;
	}
	keep = al->al_rows < rate;
	if (keep)
		al->al_rows++;
	else if (al->al_dropped++ == 0)
		log_warnx("audit: over %u %s this minute; the rest are counted, "
		    "not written to the audit table (--audit-rate)", rate, what);
	pthread_mutex_unlock(&ss->ss_login_lock);
	return keep;
}

/*
 * A failed login (unknown user or wrong password) on a store to
 * bpftrace.control.<item>: audit action "login", the user name that was
 * tried and the control item, both client text shown like a target.
 * Logged every time; written to the state database at most --audit-rate
 * times a minute (one more row then counts the ones left out) and only
 * the newest --audit-rows login rows are kept, so a client guessing
 * passwords can neither grow the table without bound nor make us sync
 * the database once per guess.
 * libmicrohttpd's threads; takes ss_login_lock, then the store's lock.
 */
void
control_audit_login(struct scripts *ss, const char *peer, const char *user,
    const char *item, const char *why)
{
	char		 u[BTS_NAME_MAX + 1], t[BTS_NAME_MAX + 1], msg[160];
	struct store	*st = ss->ss_ds->store;
	unsigned long	 dropped;
	int		 keep;

	user = audit_target(user, strlen(user), u, sizeof(u));
	item = audit_target(item, strlen(item), t, sizeof(t));
	log_info("audit: %s from %s: login %s: refused: %s", user, peer, item,
	    why);
	if (st == NULL)
		return;
	keep = audit_admit(ss, &ss->ss_login_limit, "failed logins", &dropped);
	if (dropped) {
		snprintf(msg, sizeof(msg), "%lu more failed logins in the "
		    "minute before not written (over %u a minute, "
		    "--audit-rate)", dropped, ss->ss_ds->cfg.audit_rate);
		store_audit(st, NULL, NULL, "login", NULL, 0, msg);
	}
	if (!keep)
		return;
	store_audit(st, user, peer, "login", item, 0, why);
	store_audit_prune(st, "login", ss->ss_ds->cfg.audit_rows);
}

/*
 * A control store refused because of who asked (control off, not
 * loopback, no credentials or no role): cheap to send, so rows are
 * bounded like failed logins: at most --audit-rate rows a minute, the
 * rest counted in one "refused" row, and only the newest --audit-rows
 * refused rows kept. Logged when written, the rest counted in the log
 * too, so neither the table, the log nor database syncs grow with a
 * flood. libmicrohttpd's threads; takes ss_login_lock, then the store's.
 */
static void
control_audit_refused(struct scripts *ss, const struct store_req *sr,
    const char *action, const char *target, const char *why)
{
	struct store	*st = ss->ss_ds->store;
	unsigned long	 dropped;
	char		 msg[160];

	if (!audit_admit(ss, &ss->ss_refused_limit, "refused control stores",
	    &dropped) && dropped == 0)
		return;
	if (dropped) {
		snprintf(msg, sizeof(msg), "%lu more refused control stores in "
		    "the minute before not written (over %u a minute, "
		    "--audit-rate)", dropped, ss->ss_ds->cfg.audit_rate);
		log_info("audit: %s", msg);
		if (st)
			store_audit(st, NULL, NULL, "refused", NULL, 0, msg);
		return;
	}
	audit_action(ss, sr, action, target, 0, why);
	if (st)
		store_audit_prune_refused(st, ss->ss_ds->cfg.audit_rows);
}

/* Live scripts owned by user. Lock held. */
static unsigned
user_scripts(struct scripts *ss, const char *user)
{
	struct script	*sc;
	unsigned	 n = 0;

	TAILQ_FOREACH(sc, &ss->ss_list, sc_entry)
		if (!sc->sc_gone && sc->sc_user && strcmp(sc->sc_user,
		    user) == 0)
			n++;
	return n;
}

static const char	*restart_str(enum bts_restart);

/* Commit the new script to the state database before it is answered. */
static int
script_persist(struct scripts *ss, struct script *sc, char *err,
    size_t errlen)
{
	struct store_script	 row = {
		.ss_script_id = sc->sc_id, .ss_name = sc->sc_name,
		.ss_code = sc->sc_code, .ss_codelen = sc->sc_codelen,
		.ss_owner = sc->sc_user, .ss_peer = sc->sc_peer,
		.ss_restart = (char *)restart_str(sc->sc_info.i_meta.m_restart),
		.ss_named = sc->sc_named, .ss_want_run = sc->sc_want_run,
		.ss_cluster = sc->sc_cluster,
		.ss_created_ms = (int64_t)sc->sc_created.tv_sec * 1000 +
		    sc->sc_created.tv_nsec / 1000000,
		.ss_last_fetch_ms = 0,
	};
	char			 serr[512];

	if (ss->ss_ds->store == NULL)
		return 0;
	if (store_script_add(ss->ss_ds->store, &row, serr, sizeof(serr)) ==
	    -1) {
		log_warnx("script %s: %s", sc->sc_name, serr);
		seterr(err, errlen, "cannot save the script: %s", serr);
		return -1;
	}
	return 0;
}

static void
on_restore_instance(const char *var, const char *name, uint32_t id,
    void *arg)
{
	struct script	*sc = arg;

	if (ingest_seed_instance(sc->sc_ing, var, name, id) == -1)
		log_warnx("script %s: cannot restore instance %s of @%s",
		    sc->sc_name, name, var);
}

/* Seed the ids saved earlier; they count as saved. Lock held. */
static void
script_restore_instances(struct scripts *ss, struct script *sc)
{
	char	 err[256];

	if (store_instances_load(ss->ss_ds->store, sc->sc_id,
	    on_restore_instance, sc, err, sizeof(err)) == -1)
		log_warnx("script %s: %s", sc->sc_name, err);
	for (size_t k = 0; k < sc->sc_info.i_nvars; k++)
		sc->sc_inst_saved[k] = ingest_var_known(ingest_var(sc->sc_ing,
		    k));
}

static const char *
restart_str(enum bts_restart r)
{
	return r == BTS_RESTART_ALWAYS ? "always" :
	    r == BTS_RESTART_ON_FAILURE ? "on-failure" : "never";
}

/*
 * With --control=auth only the owner of a script or an admin may act on
 * it; anonymous (loopback) control has no owners. Lock held.
 */
static int
may_act_on(struct scripts *ss, const struct script *sc,
    const struct store_req *sr, char *err, size_t errlen)
{
	if (ss->ss_ds->cfg.control != CONTROL_AUTH ||
	    (sr->sr_roles & AUTH_ROLE_ADMIN) ||
	    (sc->sc_user && sr->sr_user && strcmp(sc->sc_user,
	    sr->sr_user) == 0))
		return 0;
	seterr(err, errlen, "No permission to perform requested operation "
	    "(script %s belongs to %s)", sc->sc_name,
	    sc->sc_user ? sc->sc_user : "nobody");
	return -1;
}

/*
 * Make sc run (start) or stop, saved in the state database first; the
 * main loop does it. Lock held. -1 with err when the database refused.
 */
static int
script_set_wanted(struct scripts *ss, struct script *sc, int start,
    char *err, size_t errlen)
{
	if (ss->ss_ds->store && store_script_set_running(ss->ss_ds->store,
	    sc->sc_id, start, err, errlen) == -1) {
		log_warnx("script %s: %s", sc->sc_name, err);
		return -1;
	}
	sc->sc_want_run = start;
	sc->sc_restart_at = 0;
	sc->sc_backoff_ms = 0;
	if (start && sc->sc_child.ch_pid <= 0)
		sc->sc_status = SCRIPT_STARTING;
	else if (!start && sc->sc_child.ch_pid > 0)
		sc->sc_status = SCRIPT_STOPPING;
	sc->sc_dirty = 1;
	return 0;
}

/*
 * A register of a name in use, by the principal that registered it and
 * with the same code, is the same panel again (a page reload, an expired
 * context, a restart of Grafana or of the daemon): it gets that script,
 * not an error. The principal is the user with --control=auth; in
 * loopback mode every client that may control is the one anonymous
 * principal (anyone may act on any script there anyway).
 */
static int
same_registration(struct scripts *ss, const struct script *sc,
    const struct store_req *sr)
{
	if (sc->sc_codelen != sr->sr_vlen || memcmp(sc->sc_code, sr->sr_value,
	    sr->sr_vlen) != 0)
		return 0;
	if (ss->ss_ds->cfg.control != CONTROL_AUTH)
		return 1;
	return sc->sc_user && sr->sr_user && strcmp(sc->sc_user,
	    sr->sr_user) == 0;
}

/*
 * The same registration again: the existing script, in the answer a new
 * one gets. Registering means "run this": one that runs is left alone
 * (same pid, data kept); one that stopped or failed is started again as
 * a start would (a new bpftrace, its state reset), so a panel reloaded
 * after an error shows the error of this run, not "name in use". Lock
 * held. STORE_OK, or STORE_INTERNAL when the state database refused.
 */
static enum store_result
register_again(struct scripts *ss, struct script *sc,
    const struct store_req *sr, char **answer, char *err, size_t errlen)
{
	struct buf	 b;
	int		 rerun = sc->sc_child.ch_pid <= 0 || !sc->sc_want_run;

	if (rerun && script_set_wanted(ss, sc, 1, err, errlen) == -1) {
		audit_action(ss, sr, "register", sc->sc_name, 0, err);
		return STORE_INTERNAL;
	}
	script_publish(sc);
	info_changed(ss, 1);	/* scripts_json says so when we answer */
	if (answer) {
		buf_init(&b, info_object_max(&ss->ss_ds->cfg));
		info_put_script(&b, sc, 0, ss->ss_ds->cfg.max_control_answer);
		*answer = buf_take(&b, NULL);
	}
	log_info("script %s: registered again with the same code by %s%s",
	    sc->sc_name, sr->sr_user ? sr->sr_user : sr->sr_peer,
	    rerun ? "; starting it" : "");
	audit_action(ss, sr, "register", sc->sc_name, 1, rerun ?
	    "the same script again: started" : "the same script again");
	return STORE_OK;
}

/*
 * Register a script; answer (unless NULL) gets the script JSON (also on
 * refusal, like the PMDA, so clients can read the reason back).
 * STORE_REFUSED with err on refusal, STORE_INTERNAL when the state
 * database failed.
 */
static enum store_result
do_register(struct scripts *ss, const struct store_req *sr,
    const struct store_script *row, char **answer, char *err, size_t errlen)
{
	const struct config	*cfg = &ss->ss_ds->cfg;
	struct bts_info		 info;
	struct script		*sc = NULL, *old;
	struct buf		 b;
	enum store_result	 rv = STORE_REFUSED;

	memset(&info, 0, sizeof(info));
	if (sr->sr_vlen > cfg->max_script_bytes) {
		seterr(err, errlen, "script is %zu bytes, the limit is %zu "
		    "(see --max-script-bytes)", sr->sr_vlen,
		    cfg->max_script_bytes);
		goto refused;
	}
	if (bts_analyze(sr->sr_value, sr->sr_vlen, &info, err, errlen) == -1)
		goto refused;
	pthread_mutex_lock(&ss->ss_lock);
	if (row == NULL && info.i_meta.m_name && (old = scripts_find(ss,
	    info.i_meta.m_name)) != NULL && same_registration(ss, old, sr)) {
		rv = register_again(ss, old, sr, answer, err, errlen);
		pthread_mutex_unlock(&ss->ss_lock);
		bts_info_free(&info);
		if (rv == STORE_OK)
			scripts_wake(ss);
		else if (answer)
			*answer = info_refused_script(sr->sr_value, sr->sr_vlen, err,
			    cfg->max_control_answer);
		return rv;
	}
	if (ss->ss_n >= (int)cfg->max_scripts) {
		seterr(err, errlen, "too many scripts: the limit is %u (see "
		    "--max-scripts)", cfg->max_scripts);
		goto refused_locked;
	}
	if (row == NULL && sr->sr_user && cfg->control == CONTROL_AUTH &&
	    user_scripts(ss, sr->sr_user) >= cfg->max_scripts_per_user) {
		seterr(err, errlen, "user %s has %u scripts, the limit is %u "
		    "(see --max-scripts-per-user)", sr->sr_user,
		    user_scripts(ss, sr->sr_user), cfg->max_scripts_per_user);
		goto refused_locked;
	}
	if (info.i_meta.m_name && scripts_find(ss, info.i_meta.m_name)) {
		seterr(err, errlen, "Script name %s is already in use by "
		    "another script.", info.i_meta.m_name);
		goto refused_locked;
	}
	if ((sc = script_new(ss, sr->sr_value, sr->sr_vlen, &info, sr,
	    row)) == NULL || (row == NULL &&
	    script_alloc_cluster(ss, &sc->sc_cluster) == -1) ||
	    (sc->sc_src = source_new(sc->sc_name, NULL, NULL)) == NULL ||
	    (sc->sc_user && (sc->sc_src->src_owner = strdup(sc->sc_user)) ==
	    NULL)) {
		seterr(err, errlen, "out of memory or PMID clusters");
		goto refused_locked;
	}
	err[0] = '\0';
	if (script_add_metrics(ss, sc, err, errlen) == -1)
		goto refused_locked;
	sc->sc_want_run = row ? row->ss_want_run : 1;
	sc->sc_status = sc->sc_want_run ? SCRIPT_STARTING : SCRIPT_STOPPED;
	if (row == NULL && script_persist(ss, sc, err, errlen) == -1) {
		reg_remove_source(ss->ss_ds->reg, sc->sc_src);
		rv = STORE_INTERNAL;	/* our failure, not the script's */
		goto refused_locked;
	}
	if (row)
		script_restore_instances(ss, sc);
	script_publish(sc);
	TAILQ_INSERT_TAIL(&ss->ss_list, sc, sc_entry);
	atomic_store(&ss->ss_ds->nscripts, ++ss->ss_n);
	/* scripts_json lists it when we answer (a restore publishes once,
	   at the end) */
	info_changed(ss, !ss->ss_restoring);
	if (answer) {	/* (a restore has no one to answer) */
		buf_init(&b, info_object_max(cfg));
		info_put_script(&b, sc, 0, cfg->max_control_answer);
		*answer = buf_take(&b, NULL);
	}
	log_info("script %s: %s from %s (cluster %u)", sc->sc_name,
	    row ? "restored" : "registered", sc->sc_peer[0] ? sc->sc_peer :
	    "local", sc->sc_cluster);
	audit_action(ss, sr, row ? "restore" : "register", sc->sc_name, 1,
	    NULL);
	pthread_mutex_unlock(&ss->ss_lock);
	scripts_wake(ss);
	return STORE_OK;
refused_locked:
	pthread_mutex_unlock(&ss->ss_lock);
	script_free(sc);
refused:
	bts_info_free(&info);
	if (answer)
		*answer = info_refused_script(sr->sr_value, sr->sr_vlen, err,
		    cfg->max_control_answer);
	audit_action(ss, sr, row ? "restore" : "register", NULL, 0, err);
	return rv;
}

static enum store_result
do_deregister(struct scripts *ss, const struct store_req *sr,
    const char *list, char *err, size_t errlen)
{
	char		*copy, *tok, *save = NULL, denied[512] = "";
	int		 missing = 0;
	struct script	*sc;

	if ((copy = strdup(list)) == NULL)
		return STORE_REFUSED;
	pthread_mutex_lock(&ss->ss_lock);
	for (tok = strtok_r(copy, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if ((sc = scripts_find(ss, tok)) == NULL) {
			char	 t[BTS_NAME_MAX + 1];

			audit_action(ss, sr, "deregister", audit_target(tok,
			    strlen(tok), t, sizeof(t)), 0, "script not found");
			missing++;
			continue;
		}
		if (may_act_on(ss, sc, sr, denied, sizeof(denied)) == -1) {
			audit_action(ss, sr, "deregister", sc->sc_name, 0,
			    denied);
			continue;
		}
		log_info("script %s: deregister requested by %s", sc->sc_name,
		    sr->sr_user ? sr->sr_user : sr->sr_peer);
		audit_action(ss, sr, "deregister", sc->sc_name, 1, NULL);
		script_deregister_locked(ss, sc);
	}
	pthread_mutex_unlock(&ss->ss_lock);
	free(copy);
	scripts_wake(ss);
	if (denied[0]) {
		seterr(err, errlen, "%s", denied);
		return STORE_FORBIDDEN;
	}
	if (missing) {
		seterr(err, errlen, "one or more scripts were not found");
		return STORE_REFUSED;
	}
	return STORE_OK;
}

static enum store_result
do_start_stop(struct scripts *ss, const struct store_req *sr,
    const char *key, int start, char *err, size_t errlen)
{
	const char	*action = start ? "start" : "stop";
	struct script	*sc;
	char		 t[BTS_NAME_MAX + 1];

	pthread_mutex_lock(&ss->ss_lock);
	if ((sc = scripts_find(ss, key)) == NULL) {
		pthread_mutex_unlock(&ss->ss_lock);
		seterr(err, errlen, "script not found");
		audit_action(ss, sr, action, audit_target(key, strlen(key), t,
		    sizeof(t)), 0, err);
		return STORE_REFUSED;
	}
	if (may_act_on(ss, sc, sr, err, errlen) == -1) {
		audit_action(ss, sr, action, sc->sc_name, 0, err);
		pthread_mutex_unlock(&ss->ss_lock);
		return STORE_FORBIDDEN;
	}
	if (script_set_wanted(ss, sc, start, err, errlen) == -1) {
		audit_action(ss, sr, action, sc->sc_name, 0, err);
		pthread_mutex_unlock(&ss->ss_lock);
		return STORE_INTERNAL;
	}
	audit_action(ss, sr, action, sc->sc_name, 1, NULL);
	log_info("script %s: %s requested by %s", sc->sc_name,
	    start ? "start" : "stop", sr->sr_user ? sr->sr_user : sr->sr_peer);
	pthread_mutex_unlock(&ss->ss_lock);
	scripts_wake(ss);
	return STORE_OK;
}

/* --- the store callback and who may use it --- */

/* who may store: to bpftrace.control.* and, passed through, to pmcd */
enum store_result
control_store_allowed(const struct daemon_state *ds,
    const struct store_req *sr, char *err, size_t errlen)
{
	switch (ds->cfg.control) {
	case CONTROL_AUTH:
		if (sr->sr_user == NULL) {
			seterr(err, errlen, "No permission to perform requested "
			    "operation (authentication required)");
			return STORE_UNAUTHENTICATED;
		}
		if ((sr->sr_roles & (AUTH_ROLE_CONTROL | AUTH_ROLE_ADMIN)) == 0) {
			seterr(err, errlen, "No permission to perform requested "
			    "operation (user %s has neither the control nor the "
			    "admin role)", sr->sr_user);
			return STORE_FORBIDDEN;
		}
		return STORE_OK;
	case CONTROL_LOOPBACK:
		if (sr->sr_loopback)
			return STORE_OK;
		seterr(err, errlen, "No permission to perform requested "
		    "operation (control is limited to loopback clients)");
		return STORE_NOT_ALLOWED;
	default:
		seterr(err, errlen, "No permission to perform requested "
		    "operation (script control is off; see --control)");
		return STORE_NOT_ALLOWED;
	}
}

static enum store_result
on_control_store(struct metric *m, const struct store_req *sr, char *err,
    size_t errlen)
{
	struct scripts	*ss = m->m_arg;
	int		 item = (int)pmID_item(m->m_pmid);
	enum store_result rv;
	char		*answer = NULL, *val, detail[512] = "";
	char		 t[BTS_NAME_MAX + 1];
	size_t		 reserve;

	if ((rv = control_store_allowed(ss->ss_ds, sr, err, errlen)) !=
	    STORE_OK) {
		/* a register's value is code: its name is not known yet */
		control_audit_refused(ss, sr, ctl_names[item],
		    item == CTL_REGISTER ? NULL : audit_target(sr->sr_value,
		    sr->sr_vlen, t, sizeof(t)), err);
		return rv;
	}
	/* room for the answer, charged before acting so a refusal acts not */
	reserve = control_answer_cost_max(sr->sr_user,
	    ss->ss_ds->cfg.max_control_answer);
	if (memcap_charge(&ss->ss_ds->mem, reserve) == -1) {
		memcap_message(&ss->ss_ds->mem, err, errlen);
		audit_action(ss, sr, ctl_names[item], NULL, 0, err);
		return STORE_NOMEM;
	}
	if (item == CTL_REGISTER) {
		rv = do_register(ss, sr, NULL, &answer, detail, sizeof(detail));
	} else {
		if ((val = strndup(sr->sr_value, sr->sr_vlen)) == NULL) {
			memcap_release(&ss->ss_ds->mem, reserve);
			return STORE_REFUSED;
		}
		rv = item == CTL_DEREGISTER ?
		    do_deregister(ss, sr, val, detail, sizeof(detail)) :
		    do_start_stop(ss, sr, val, item == CTL_START, detail,
		    sizeof(detail));
		free(val);
		if (rv == STORE_OK)
			answer = strdup("{\"success\": \"true\"}");
		else {
			struct buf	 b;

			buf_init(&b, ss->ss_ds->cfg.max_control_answer);
			buf_puts(&b, "{\"error\": ");
			json_str(&b, detail);
			buf_putc(&b, '}');
			answer = buf_take(&b, NULL);
		}
	}
	if (answer)
		control_answer_set(ss, sr, item, answer, reserve);
	else
		memcap_release(&ss->ss_ds->mem, reserve);
	if (rv == STORE_FORBIDDEN || rv == STORE_INTERNAL)
		seterr(err, errlen, "%s", detail); /* "No permission", or ours */
	else if (rv != STORE_OK)
		seterr(err, errlen, "Bad input to pmstore: %s", detail);
	return rv;
}

static int
on_restore_script(const struct store_script *row, void *arg)
{
	struct scripts		*ss = arg;
	struct store_req	 sr = {
		.sr_value = row->ss_code, .sr_vlen = row->ss_codelen,
		.sr_user = row->ss_owner, .sr_peer = row->ss_peer,
		.sr_loopback = 1, .sr_roles = AUTH_ROLE_ADMIN,
	};
	char			 err[512];

	if (do_register(ss, &sr, row, NULL, err, sizeof(err)) != STORE_OK)
		log_warnx("cannot restore script %s (%s): %s", row->ss_name ?
		    row->ss_name : row->ss_script_id, row->ss_script_id, err);
	return 0;
}

/*
 * At start, before the daemon listens: every saved script again, with its
 * ids, in its state, so that the first answer already lists them (their
 * bpftrace starts afterwards, from the main loop: "starting" until then).
 * Registering is cheap when it is done in bulk: one sync for the audit
 * records (store_scripts_load) and one bpftrace.info rebuild at the end
 * instead of one per script (each lists every script: quadratic).
 */
int
control_restore(struct scripts *ss)
{
	char	 err[512];
	int	 rv;

	if (ss->ss_ds->store == NULL)
		return 0;
	pthread_mutex_lock(&ss->ss_lock);
	ss->ss_restoring = 1;
	pthread_mutex_unlock(&ss->ss_lock);
	rv = store_scripts_load(ss->ss_ds->store, on_restore_script, ss, err,
	    sizeof(err));
	pthread_mutex_lock(&ss->ss_lock);
	ss->ss_restoring = 0;
	info_publish(ss, 1);
	pthread_mutex_unlock(&ss->ss_lock);
	if (rv == -1) {
		log_error("%s", err);
		return -1;
	}
	if (ss->ss_n)
		log_info("restored %d scripts from %s", ss->ss_n,
		    store_path(ss->ss_ds->store));
	return 0;
}

/*
 * An autostart file whose script is already there (restored from the
 * state database) is left alone when the code is the same; a changed
 * file replaces it. Returns 1 when nothing is left to do.
 */
static int
autostart_known(struct scripts *ss, const char *name, const char *code,
    size_t len)
{
	struct script	*sc;
	int		 same;

	pthread_mutex_lock(&ss->ss_lock);
	if ((sc = scripts_find(ss, name)) == NULL) {
		pthread_mutex_unlock(&ss->ss_lock);
		return 0;
	}
	same = sc->sc_codelen == len && memcmp(sc->sc_code, code, len) == 0;
	if (!same) {
		log_info("script %s: its file changed; replacing it", name);
		script_deregister_locked(ss, sc);	/* name free at once */
	}
	pthread_mutex_unlock(&ss->ss_lock);
	return same;
}

/* The script's // name:, into out; 0 when it has none (or is refused). */
static int
autostart_name(const char *code, size_t len, char *out, size_t outlen)
{
	struct bts_info	 info;
	char		 err[256];
	int		 ok;

	if (bts_analyze(code, len, &info, err, sizeof(err)) == -1)
		return 0;
	if ((ok = info.i_meta.m_name != NULL))
		snprintf(out, outlen, "%s", info.i_meta.m_name);
	bts_info_free(&info);
	return ok;
}

/*
 * Like the PMDA's autostart directories: a file others could have
 * written is not run as root. Owner root; no group write unless the
 * group is root; no world write.
 */
static int
root_only(const char *path, const struct stat *st)
{
	if (st->st_uid != 0 || (st->st_mode & S_IWOTH) ||
	    ((st->st_mode & S_IWGRP) && st->st_gid != 0)) {
		log_warnx("--scripts-dir: %s is writable by others than root "
		    "(owner %u, mode %o); skipped", path, (unsigned)st->st_uid,
		    (unsigned)(st->st_mode & 07777));
		return 0;
	}
	return 1;
}

static int
is_bt_file(const struct dirent *d)
{
	size_t	 n = strlen(d->d_name);

	return n > 3 && d->d_name[0] != '.' &&
	    strcmp(d->d_name + n - 3, ".bt") == 0;
}

/* --scripts-dir DIR: every DIR/NAME.bt, in name order. */
int
control_autostart_dir(struct scripts *ss, const char *dir)
{
	struct dirent	**ents = NULL;
	struct stat	 st;
	char		 path[4096];
	int		 n, bad = 0;

	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		log_warnx("--scripts-dir %s: %s", dir, S_ISDIR(st.st_mode) ?
		    strerror(errno) : "not a directory");
		return -1;
	}
	if (!root_only(dir, &st))
		return -1;
	if ((n = scandir(dir, &ents, is_bt_file, alphasort)) == -1) {
		log_warn("--scripts-dir %s", dir);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    root_only(path, &st))
			bad |= control_autostart(ss, path) == -1;
		else
			bad = 1;
		free(ents[i]);
	}
	free(ents);
	return bad ? -1 : 0;
}

/*
 * --script FILE at start: registered like a loopback store; a script
 * without "// name:" is named after its file ("foo.bt" -> foo). 0, -1
 * when it could not be read or was refused, -2 when the state database
 * failed.
 */
int
control_autostart(struct scripts *ss, const char *path)
{
	struct store_req	 sr = { .sr_loopback = 1, .sr_peer = "--script" };
	struct buf		 code;
	char			*answer = NULL, err[512], stem[BTS_NAME_MAX + 1];
	const char		*base = strrchr(path, '/');
	FILE			*f;
	size_t			 n;
	char			 chunk[8192];
	enum store_result	 st;
	int			 rv = -1;

	buf_init(&code, ss->ss_ds->cfg.max_script_bytes + 64);
	if ((f = fopen(path, "r")) == NULL) {
		log_warn("--script %s", path);
		return -1;
	}
	base = base ? base + 1 : path;
	snprintf(stem, sizeof(stem), "%.*s", (int)strcspn(base, "."), base);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&code, chunk, n);
	fclose(f);
	if (!strstr(buf_cstr(&code), "// name:") && bts_name_valid(stem)) {
		struct buf	 named;

		buf_init(&named, code.b_max + BTS_NAME_MAX + 16); /* + name */
		buf_printf(&named, "// name: %s\n", stem);
		buf_append(&named, code.b_data, code.b_len);
		buf_free(&code);
		code = named;
	}
	sr.sr_value = buf_cstr(&code);
	sr.sr_vlen = code.b_len;
	if (code.b_failed)
		log_warnx("--script %s: larger than --max-script-bytes", path);
	else if (autostart_name(sr.sr_value, sr.sr_vlen, stem, sizeof(stem)) &&
	    autostart_known(ss, stem, sr.sr_value, sr.sr_vlen))
		rv = 0;		/* restored from the state database */
	else if ((st = do_register(ss, &sr, NULL, &answer, err,
	    sizeof(err))) == STORE_OK)
		rv = 0;
	else if (st == STORE_REFUSED)
		log_warnx("--script %s: %s", path, err);
	else
		rv = -2;	/* ours (the state database), logged there */
	free(answer);
	buf_free(&code);
	return rv;
}

/* Every tick, after the scripts were looked at. Main thread. */
void
control_tick(struct scripts *ss)
{
	control_answers_sweep(ss);
}

/* --- registration of the control metrics --- */

static int
add_control_metrics(struct scripts *ss)
{
	struct metric	*ms[CTL_N] = { 0 };
	struct source	*ctl;
	char		 name[128];
	int		 ret;

	if ((ctl = source_new("control", NULL, NULL)) == NULL)
		return -1;
	for (int i = 0; i < CTL_N; i++) {
		snprintf(name, sizeof(name), "bpftrace.control.%s",
		    ctl_names[i]);
		if ((ms[i] = metric_new(name, pmID_build(BT_DOMAIN, 0,
		    (unsigned)i), PM_INDOM_NULL, PM_TYPE_STRING,
		    PM_SEM_INSTANT, BT_UNITS(0, 0, 0, 0, 0, 0),
		    i == CTL_REGISTER ? "register a bpftrace script" :
		    i == CTL_DEREGISTER ? "deregister bpftrace scripts" :
		    i == CTL_START ? "start a stopped bpftrace script" :
		    "stop a running bpftrace script",
		    "Store to act; fetch in the same context to read the "
		    "answer (JSON text).", "\"metrictype\":\"control\"",
		    ctl, i)) == NULL)
			break;
		ms[i]->m_store = on_control_store;
		ms[i]->m_ctxval = on_control_ctxval;
		ms[i]->m_arg = ss;
	}
	ret = reg_add_release(ss->ss_ds->reg, ms, CTL_N, NULL, 0, __func__);
	source_unref(ctl);
	return ret;
}

/* After scripts_init, before info_init. Main thread. */
int
control_init(struct scripts *ss)
{
	pthread_mutex_init(&ss->ss_login_lock, NULL);
	if (control_answers_init(ss) == -1)
		return -1;
	return add_control_metrics(ss);
}

/* Before scripts_fini; accepts a control_init that failed. */
void
control_fini(struct scripts *ss)
{
	control_answers_fini(ss);
}
