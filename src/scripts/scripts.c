/* SPDX-License-Identifier: MIT */
/*
 * scripts.c - registered bpftrace scripts as the registry sees them:
 * lookup, their PMID clusters, their metrics
 * bpftrace.scripts.<name>.{status,pid,...,data.<var>} and the values
 * published as immutable registry snapshots, the instance ids saved to
 * the store, deregistering and freeing. Running them (the children and
 * their pipes, the lifecycle each tick drives) is scripts_run.c's, which
 * calls in here; nothing here calls it.
 *
 * Threads and locks: control stores arrive on libmicrohttpd threads and
 * take ss_lock to change what a script should do (sc_want_run, sc_gone)
 * and to add scripts; they wake the main loop through an eventfd. The
 * main thread does everything with processes and pipes and owns each
 * script's ingest state (sc_ing, line buffers); it holds ss_lock while it
 * handles an event, so every sc_ field except those marked "main" is
 * read and written under ss_lock. Fetches never take ss_lock: they read
 * the published snapshots.
 *
 * Below info.c and control.c: it calls neither. A change reaches them
 * through ss_hooks, which main registers.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_limits.h"
#include "btscript.h"
#include "buf.h"
#include "daemon.h"
#include "evloop.h"
#include "ingest.h"
#include "log.h"
#include "registry.h"
#include "scripts.h"
#include "store.h"
#include "util.h"

static const char *const status_names[] = {
	"stopped", "starting", "started", "stopping", "error"
};

const char *
script_status_str(enum script_status st)
{
	return status_names[st];
}

/* --- lookup --- */

/* by name or id; deregistered scripts are invisible. Lock held. */
struct script *
scripts_find(struct scripts *ss, const char *key)
{
	struct script	*sc;

	TAILQ_FOREACH(sc, &ss->ss_list, sc_entry)
		if (!sc->sc_gone && (strcmp(sc->sc_name, key) == 0 ||
		    strcmp(sc->sc_id, key) == 0))
			return sc;
	return NULL;
}

static int
cluster_in_use(struct scripts *ss, unsigned c)
{
	struct script	*sc;

	TAILQ_FOREACH(sc, &ss->ss_list, sc_entry)
		if (sc->sc_cluster == c)
			return 1;
	return 0;
}

/* Clusters go up and are not reused while others are free. Lock held. */
int
script_alloc_cluster(struct scripts *ss, unsigned *out)
{
	unsigned	 span = SCRIPT_LAST_CLUSTER - SCRIPT_FIRST_CLUSTER + 1;

	for (unsigned i = 0; i < span; i++) {
		unsigned	 c = SCRIPT_FIRST_CLUSTER +
				    (ss->ss_next_cluster - SCRIPT_FIRST_CLUSTER +
				    i) % span;

		if (!cluster_in_use(ss, c)) {
			*out = c;
			ss->ss_next_cluster = c + 1 > SCRIPT_LAST_CLUSTER ?
			    SCRIPT_FIRST_CLUSTER : c + 1;
			return 0;
		}
	}
	return -1;
}

/* --- metrics --- */

struct item_def {
	const char	*suffix;
	unsigned	 item;		/* PMID item */
	int		 type, sem;
	pmUnits		 units;
	const char	*oneline;
};

/* the kinds of item: text, a number at this moment, a count of events */
#define ITEM_TEXT(suffix, item, oneline)				\
	ITEM_INSTANT(suffix, item, PM_TYPE_STRING, oneline)
#define ITEM_INSTANT(suffix, item, type, oneline)			\
	{ suffix, item, type, PM_SEM_INSTANT,				\
	    BT_UNITS(0, 0, 0, 0, 0, 0), oneline }
#define ITEM_COUNTER(suffix, item, type, oneline)			\
	{ suffix, item, type, PM_SEM_COUNTER,				\
	    BT_UNITS(0, 0, 1, 0, 0, PM_COUNT_ONE), oneline }

static const struct item_def items[SCRIPT_NITEMS] = {
	[SI_STATUS] = ITEM_TEXT("status", 0, "status of bpftrace script"),
	[SI_PID] = ITEM_INSTANT("pid", 1, PM_TYPE_U32,
	    "pid of bpftrace process"),
	[SI_EXIT_CODE] = ITEM_INSTANT("exit_code", 2, PM_TYPE_32,
	    "exit code of bpftrace process"),
	[SI_ERROR] = ITEM_TEXT("error", 3, "errors of the bpftrace script"),
	[SI_PROBES] = ITEM_INSTANT("probes", 4, PM_TYPE_U32,
	    "number of attached probes"),
	[SI_CODE] = ITEM_TEXT("code", 5, "bpftrace script"),
	[SI_DATA_BYTES] = { "data_bytes", 6, PM_TYPE_U32, PM_SEM_COUNTER,
	    BT_UNITS(1, 0, 0, PM_SPACE_BYTE, 0, 0),
	    "received bytes from bpftrace" },
	[SI_WARNINGS] = ITEM_TEXT("warnings", 1020,
	    "warnings bpftrace printed (kept apart from errors)"),
	[SI_LOST_EVENTS] = ITEM_COUNTER("lost_events", 1021, PM_TYPE_U64,
	    "events bpftrace reported lost"),
	[SI_OUTPUT] = ITEM_TEXT("output", 1019,
	    "bpftrace's error output (the 2019 grafana-pcp reads it)"),
	[SI_RESTARTS] = ITEM_COUNTER("restarts", 1022, PM_TYPE_U32,
	    "automatic restarts after the script ended"),
	[SI_HELPER_ERRORS] = ITEM_COUNTER("helper_errors", 1015, PM_TYPE_U64,
	    "failed BPF helper calls bpftrace reported, per helper:retcode "
	    "(map_update_elem:-7 is a full map)"),
	[SI_RUNTIME_ERRORS] = ITEM_COUNTER("runtime_errors", 1016, PM_TYPE_U64,
	    "runtime errors bpftrace reported (its runtime_error lines)"),
	[SI_LAST_HELPER_ERROR] = ITEM_TEXT("last_helper_error", 1017,
	    "the last helper_error or runtime_error (kept at most once a "
	    "second)"),
	[SI_TYPE_ERRORS] = ITEM_COUNTER("type_errors", 1018, PM_TYPE_U64,
	    "values that did not fit their variable's type (dropped)"),
};

/* the helper_errors kinds: after every variable's indom serial */
static pmInDom
script_diag_indom(const struct script *sc)
{
	return pmInDom_build(BT_DOMAIN, sc->sc_cluster * 1000 + 999);
}

static int
var_pmtype(const struct ing_var *v)
{
	switch (v->iv_vtype) {
	case BTS_V_UINT:
		return PM_TYPE_U64;
	case BTS_V_STRING:
		return PM_TYPE_STRING;
	default:
		return PM_TYPE_64;
	}
}

static const char *
mtype_label(enum bts_mtype mt)
{
	switch (mt) {
	case BTS_MT_HISTOGRAM:
		return "\"metrictype\":\"histogram\"";
	case BTS_MT_STACKS:
		return "\"metrictype\":\"stacks\"";
	case BTS_MT_OUTPUT:
		return "\"metrictype\":\"output\"";
	default:
		return NULL;
	}
}

pmInDom
script_var_indom(const struct script *sc, size_t k)
{
	return pmInDom_build(BT_DOMAIN, sc->sc_cluster * 1000 +
	    SCRIPT_DATA_ITEM + (unsigned)k);
}

/*
 * A metric's labels: its own (NULL: none) and, once bpftrace's version is
 * known, "bpftrace_version" (which bpftrace ran the script) into out.
 */
static const char *
script_labels(const struct script *sc, const char *own, char *out,
    size_t outlen)
{
	if (sc->sc_label_ver[0] == '\0')
		return own;
	snprintf(out, outlen, "%s%s\"bpftrace_version\":\"%s\"", own ? own : "",
	    own ? "," : "", sc->sc_label_ver);
	return out;
}

/* the version as a label value: [A-Za-z0-9._+~-] only, else "" */
void
script_label_version(const char *v, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s", v);
	if (out[strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._+~-")] != '\0')
		out[0] = '\0';
}

/*
 * The ingest's typer (ingest.h): an open variable's type is its metric's,
 * which a first print may still choose until a client was given it.
 * Called on the script's ingest path (scripts lock held; takes the
 * registry's pointer lock, as reg_add under the scripts lock does).
 */
static int
script_var_typer(void *arg, size_t k, enum bts_vtype *vt, int final)
{
	struct script	*sc = arg;
	int		 type, open;

	open = reg_type_propose(sc->sc_ss->ss_ds->reg, pmID_build(BT_DOMAIN,
	    sc->sc_cluster, SCRIPT_DATA_ITEM + (unsigned)k),
	    *vt == BTS_V_STRING ? PM_TYPE_STRING : *vt == BTS_V_UINT ?
	    PM_TYPE_U64 : PM_TYPE_64, final, &type);
	*vt = type == PM_TYPE_STRING ? BTS_V_STRING : type == PM_TYPE_U64 ?
	    BTS_V_UINT : BTS_V_INT;
	return open;
}

static struct metric *
data_metric(struct script *sc, size_t k)
{
	const struct bts_var	*bv = &sc->sc_info.i_vars[k];
	struct ing_var		*iv = ingest_var(sc->sc_ing, k);
	char			 name[512], help[256], labels[256];
	struct metric		*m;

	snprintf(name, sizeof(name), "bpftrace.scripts.%s.data.%s",
	    sc->sc_name, bv->v_name);
	snprintf(help, sizeof(help), "@%s variable of bpftrace script",
	    bv->v_name);
	m = metric_new(name, pmID_build(BT_DOMAIN, sc->sc_cluster,
	    SCRIPT_DATA_ITEM + (unsigned)k), bv->v_nkeys || !iv->iv_scalar ?
	    script_var_indom(sc, k) : PM_INDOM_NULL, var_pmtype(iv),
	    bv->v_counter ? PM_SEM_COUNTER : PM_SEM_INSTANT,
	    BT_UNITS(0, 0, 0, 0, 0, 0), help, NULL, script_labels(sc,
	    mtype_label(bv->v_mtype), labels, sizeof(labels)),
	    sc->sc_src, SCRIPT_NITEMS + (int)k);
	if (m != NULL && iv->iv_open != ING_OPEN_NONE)
		metric_type_open(m);	/* the first print may type it */
	return m;
}

static void
unref_all(struct metric **ms, size_t nm, struct indom **ins, size_t ni)
{
	for (size_t i = 0; i < nm; i++)
		metric_unref(ms[i]);
	for (size_t i = 0; i < ni; i++)
		indom_unref(ins[i]);
}

/*
 * --auth-reads: what only the owner and admins read: the code, the text
 * bpftrace printed (error, warnings, output) and the data variables.
 * Status, pid, exit code and the counters are everyone's.
 */
static int
script_item_private(int i)
{
	return i == SI_CODE || i == SI_ERROR || i == SI_WARNINGS ||
	    i == SI_OUTPUT || i == SI_LAST_HELPER_ERROR ? MPRIV_SOURCE :
	    MPRIV_NONE;
}

/* Add this script's metrics and indoms to the registry. */
int
script_add_metrics(struct scripts *ss, struct script *sc, char *err,
    size_t errlen)
{
	size_t		 nv = sc->sc_info.i_nvars, nm = 0, ni = 0;
	struct metric	*ms[SCRIPT_NITEMS + BTS_MAX_VARS + 1];
	struct indom	*ins[BTS_MAX_VARS + 2];
	char		 name[512], labels[256];
	int		 ret = -1;

	script_label_version(bt_version(ss->ss_ds), sc->sc_label_ver,
	    sizeof(sc->sc_label_ver));
	for (int i = 0; i < SCRIPT_NITEMS; i++) {
		const struct item_def	*d = &items[i];

		snprintf(name, sizeof(name), "bpftrace.scripts.%s.%s",
		    sc->sc_name, d->suffix);
		if ((ms[nm++] = metric_new(name, pmID_build(BT_DOMAIN,
		    sc->sc_cluster, d->item), i == SI_HELPER_ERRORS ?
		    script_diag_indom(sc) : PM_INDOM_NULL, d->type, d->sem,
		    d->units, d->oneline, NULL, script_labels(sc,
		    "\"metrictype\":\"control\"", labels, sizeof(labels)),
		    sc->sc_src, i)) == NULL)
			goto fail;
		ms[nm - 1]->m_private = script_item_private(i);
	}
	/* the helper_errors kinds: indom slot nv, after the variables' */
	if ((ins[ni++] = indom_new(script_diag_indom(sc), "kinds of failed "
	    "BPF helper calls (helper:retcode)", NULL, sc->sc_src,
	    (int)nv)) == NULL)
		goto fail;
	for (size_t k = 0; k < nv; k++) {
		if ((ms[nm] = data_metric(sc, k)) == NULL)
			goto fail;
		ms[nm]->m_private = MPRIV_SOURCE;	/* the script's data */
		if (ms[nm++]->m_indom != PM_INDOM_NULL && (ins[ni++] =
		    indom_new(script_var_indom(sc, k), "instances of a bpftrace "
		    "map or histogram", NULL, sc->sc_src, (int)k)) == NULL)
			goto fail;
	}
	if (reg_add(ss->ss_ds->reg, ms, nm, ins, ni, err, errlen) == -1)
		goto fail;
	ingest_set_typer(sc->sc_ing, script_var_typer, sc);
	ret = 0;
fail:
	if (ret == -1 && err[0] == '\0')
		seterr(err, errlen, "out of memory");
	unref_all(ms, nm, ins, ni);
	return ret;
}

/* --- snapshots --- */

/*
 * A variable's instances (ids, then names) as a shared block, so that
 * snapshots copy them only when they changed. NULL on no memory.
 */
static struct shblk *
inst_block(const struct ing_var *iv, const char *const **namesp)
{
	struct shblk	*b;
	size_t		 n = iv->iv_n, chars = 0, off, len, i;
	uint32_t	*ids;
	char		**names, *p;

	for (i = 0; i < n; i++)
		chars += strlen(iv->iv_names[i]) + 1;
	off = (n * sizeof(*ids) + sizeof(char *) - 1) & ~(sizeof(char *) - 1);
	if ((b = shblk_new(off + n * sizeof(*names) + chars)) == NULL)
		return NULL;
	ids = shblk_data(b);
	names = (char **)((char *)ids + off);
	p = (char *)(names + n);
	if (n > 0)
		memcpy(ids, iv->iv_ids, n * sizeof(*ids));
	for (i = 0; i < n; i++) {
		len = strlen(iv->iv_names[i]) + 1;
		memcpy(p, iv->iv_names[i], len);
		names[i] = p;
		p += len;
	}
	*namesp = (const char *const *)names;
	return b;
}

/* the text of a value for a STRING metric, in num when it is a number */
static const char *
val_text(const struct ing_val *v, char *num, size_t size)
{
	switch (v->t) {
	case ING_STR:
		return v->s ? v->s : "";
	case ING_I64:
		snprintf(num, size, "%lld", (long long)v->i);
		return num;
	case ING_U64:
		snprintf(num, size, "%llu", (unsigned long long)v->u);
		return num;
	default:
		return "";
	}
}

/*
 * A variable's values as PCP values of pmtype, in a shared block (strings
 * copied in after the values). NULL on no memory.
 */
static struct shblk *
vals_block(const struct ing_var *iv, int pmtype)
{
	struct shblk	*b;
	union value	*vals;
	size_t		 n = iv->iv_n, chars = 0, len, i;
	char		 num[32], *p;

	for (i = 0; pmtype == PM_TYPE_STRING && i < n; i++)
		chars += strlen(val_text(&iv->iv_vals[i], num,
		    sizeof(num))) + 1;
	if ((b = shblk_new(n * sizeof(*vals) + chars)) == NULL)
		return NULL;
	vals = shblk_data(b);
	p = (char *)(vals + n);
	for (i = 0; i < n; i++) {
		const struct ing_val	*v = &iv->iv_vals[i];

		vals[i].u = 0;
		if (pmtype == PM_TYPE_STRING) {
			const char	*t = val_text(v, num, sizeof(num));

			len = strlen(t) + 1;
			memcpy(p, t, len);
			vals[i].s = p;
			p += len;
		} else if (v->t == ING_I64)
			vals[i].i = v->i;
		else if (v->t == ING_U64)
			vals[i].u = v->u;
	}
	return b;
}

/*
 * What the last snapshot of one variable pointed at: rebuilt only when
 * the ingester says the instances (iv_iseq) or the values (iv_seq) moved.
 */
struct pubcache {
	struct shblk	*pc_inst;	/* ids, then names */
	const char *const *pc_names;	/* in pc_inst */
	uint64_t	 pc_iseq;
	struct shblk	*pc_vals;
	uint64_t	 pc_seq;
	int		 pc_pmtype;
};

static void
pubcache_free(struct pubcache *pc, size_t n)
{
	for (size_t k = 0; pc != NULL && k < n; k++) {
		shblk_unref(pc[k].pc_inst);
		shblk_unref(pc[k].pc_vals);
	}
	free(pc);
}

/* Brings pc up to date with iv; -1 on no memory (pc unchanged). */
static int
pubcache_update(struct pubcache *pc, const struct ing_var *iv, int pmtype,
    int indom)
{
	const char *const *names;
	struct shblk	*b;

	if (indom && (pc->pc_inst == NULL || pc->pc_iseq != iv->iv_iseq)) {
		if ((b = inst_block(iv, &names)) == NULL)
			return -1;
		shblk_unref(pc->pc_inst);
		pc->pc_inst = b;
		pc->pc_names = names;
		pc->pc_iseq = iv->iv_iseq;
	}
	if (pc->pc_vals == NULL || pc->pc_seq != iv->iv_seq ||
	    pc->pc_pmtype != pmtype) {
		if ((b = vals_block(iv, pmtype)) == NULL)
			return -1;
		shblk_unref(pc->pc_vals);
		pc->pc_vals = b;
		pc->pc_seq = iv->iv_seq;
		pc->pc_pmtype = pmtype;
	}
	return 0;
}

static int
snap_var(struct snap *s, struct script *sc, size_t k)
{
	struct ing_var	*iv = ingest_var(sc->sc_ing, k);
	struct pubcache	*pc = &sc->sc_pub[k];
	int		 slot = SCRIPT_NITEMS + (int)k, pmtype = var_pmtype(iv);
	int		 singular, n = (int)iv->iv_n;
	const uint32_t	*ids;

	if (sc->sc_info.i_vars[k].v_kind == BTS_OUTPUT) {
		struct buf	 text;
		int		 rv;

		buf_init(&text, ingest_output_max(sc->sc_ing));
		rv = ingest_output_text(sc->sc_ing, &text) == -1 ? -1 :
		    snap_set_str1(s, slot, buf_cstr(&text));
		buf_free(&text);
		return rv;
	}
	singular = iv->iv_scalar && !sc->sc_info.i_vars[k].v_nkeys;
	if (pubcache_update(pc, iv, pmtype, !singular) == -1 ||
	    snap_hold(s, pc->pc_vals) == -1)
		return -1;
	if (singular)
		return snap_set_values_nocopy(s, slot, n ? 1 : 0, NULL,
		    shblk_data(pc->pc_vals));
	if (snap_hold(s, pc->pc_inst) == -1)
		return -1;
	ids = shblk_data(pc->pc_inst);
	return snap_set_values_nocopy(s, slot, n, ids,
	    shblk_data(pc->pc_vals)) |
	    snap_set_indom_nocopy(s, (int)k, n, ids, pc->pc_names);
}

/*
 * Tell the layer above (main's hooks: bpftrace.info.*) that a script
 * changed; now: publish at once. Lock held.
 */
static void
scripts_changed(struct scripts *ss, int now)
{
	if (ss->ss_hooks.sh_changed)
		ss->ss_hooks.sh_changed(ss, now);
}

/* Remove the script's metrics now; the main loop stops and frees it. */
void
script_deregister_locked(struct scripts *ss, struct script *sc)
{
	char	 err[512];

	if (sc->sc_gone)
		return;
	sc->sc_gone = 1;
	sc->sc_want_run = 0;
	reg_remove_source(ss->ss_ds->reg, sc->sc_src);
	scripts_changed(ss, 1);	/* and no longer lists it */
	if (ss->ss_ds->store && store_script_delete(ss->ss_ds->store,
	    sc->sc_id, err, sizeof(err)) == -1)
		log_warnx("script %s: %s", sc->sc_name, err);
}


/*
 * bpftrace.info.scripts_json carries each script's state: a change of
 * status, pid, exit code, probes or error is published at once (clients
 * poll it next to the data and must not see data from a script the list
 * still calls "starting"); counters like data_bytes ride along with the
 * next periodic rebuild (at most one per second). Lock held.
 */
static void
script_info_changed(struct script *sc)
{
	uint64_t	 sig = (uint64_t)sc->sc_status ^
			    ((uint64_t)(uint32_t)sc->sc_pid << 8) ^
			    ((uint64_t)(uint32_t)sc->sc_exit_code << 40) ^
			    ((uint64_t)(uint32_t)sc->sc_probes << 48) ^
			    ((uint64_t)sc->sc_error.b_len << 24);

	if (sig != sc->sc_info_sig) {
		sc->sc_info_sig = sig;
		scripts_changed(sc->sc_ss, 1);	/* now, not later */
	} else
		scripts_changed(sc->sc_ss, 0);
}

/* helper_errors (per kind), runtime_errors, last_helper_error */
static int
snap_diag(struct snap *s, const struct script *sc)
{
	const struct btdiag	*bd = &sc->sc_diag;
	uint32_t		 ids[BTDIAG_MAX_KINDS + 1];
	union value		 vals[BTDIAG_MAX_KINDS + 1];
	const char		*names[BTDIAG_MAX_KINDS + 1];
	int			 n = (int)bd->bd_nkinds;

	for (int i = 0; i < n; i++) {
		ids[i] = (uint32_t)i;
		vals[i].u = bd->bd_kinds[i].k_count;
		names[i] = bd->bd_kinds[i].k_name;
	}
	return snap_set_values(s, SI_HELPER_ERRORS, n, ids, vals) |
	    snap_set_indom(s, (int)sc->sc_info.i_nvars, n, ids, names) |
	    snap_set1(s, SI_RUNTIME_ERRORS, (union value){ .u =
	    bd->bd_runtime }) |
	    snap_set_str1(s, SI_LAST_HELPER_ERROR, bd->bd_last);
}

/* Build and publish the script's values. Main thread, lock held. */
void
script_publish(struct script *sc)
{
	size_t		 nv = sc->sc_info.i_nvars;
	struct snap	*s;
	int		 rv = 0;

	if (sc->sc_src == NULL)
		return;
	if (sc->sc_pub == NULL &&
	    (sc->sc_pub = calloc(nv + 1, sizeof(*sc->sc_pub))) == NULL)
		return;
	if ((s = snap_new(SCRIPT_NITEMS + (int)nv, (int)nv + 1)) == NULL)
		return;
	rv |= snap_diag(s, sc);
	rv |= snap_set_str1(s, SI_STATUS, script_status_str(sc->sc_status));
	rv |= snap_set1(s, SI_PID, (union value){ .u = sc->sc_pid > 0 ?
	    (uint64_t)sc->sc_pid : 0 });
	rv |= snap_set1(s, SI_EXIT_CODE, (union value){ .i = sc->sc_exit_code });
	rv |= snap_set_str1(s, SI_ERROR, buf_cstr(&sc->sc_error));
	rv |= snap_set1(s, SI_PROBES, (union value){ .u = sc->sc_probes > 0 ?
	    (uint64_t)sc->sc_probes : 0 });
	rv |= snap_set_str1(s, SI_CODE, sc->sc_code);
	rv |= snap_set1(s, SI_DATA_BYTES,
	    (union value){ .u = (uint32_t)sc->sc_data_bytes });
	rv |= snap_set_str1(s, SI_WARNINGS, buf_cstr(&sc->sc_warnings));
	rv |= snap_set1(s, SI_LOST_EVENTS, (union value){ .u = sc->sc_lost });
	rv |= snap_set1(s, SI_RESTARTS, (union value){ .u = sc->sc_restarts });
	rv |= snap_set1(s, SI_TYPE_ERRORS, (union value){
	    .u = ingest_stats(sc->sc_ing)->is_type_errors });
	rv |= snap_set_str1(s, SI_OUTPUT, buf_cstr(&sc->sc_error));
	for (size_t k = 0; k < nv && rv == 0; k++)
		rv |= snap_var(s, sc, k);
	if (rv != 0) {
		log_warnx("%s: %s: out of memory building values", __func__,
		    sc->sc_name);
		snap_release(s);
		return;
	}
	source_publish(sc->sc_src, s);
	sc->sc_pub_seq = ingest_seq(sc->sc_ing);
	sc->sc_dirty = 0;
	script_info_changed(sc);
	script_save_instances(sc->sc_ss, sc);
}

/*
 * Save the instance ids given out since the last save, so a restart
 * serves every name with the id it had. Main thread, lock held.
 */
void
script_save_instances(struct scripts *ss, struct script *sc)
{
	struct store	*st = ss->ss_ds->store;
	char		 err[256];

	if (st == NULL || sc->sc_gone || sc->sc_inst_saved == NULL)
		return;
	for (size_t k = 0; k < sc->sc_info.i_nvars; k++) {
		struct ing_var	*iv = ingest_var(sc->sc_ing, k);
		size_t		 known = ingest_var_known(iv), from, n;
		const char	**names;
		uint32_t	*ids;

		if ((from = sc->sc_inst_saved[k]) >= known)
			continue;
		n = known - from;
		names = calloc(n, sizeof(*names));
		ids = calloc(n, sizeof(*ids));
		for (size_t i = 0; names && ids && i < n; i++)
			ingest_var_instance_at(iv, from + i, &names[i], &ids[i]);
		if (names && ids && store_instances_add(st, sc->sc_id,
		    iv->iv_name, n, names, ids, err, sizeof(err)) == 0)
			sc->sc_inst_saved[k] = known;
		else
			log_warnx("script %s: cannot save instance ids: %s",
			    sc->sc_name, names && ids ? err : "out of memory");
		free(names);
		free(ids);
	}
}

/* --- freeing --- */

void
script_free(struct script *sc)
{
	if (sc == NULL)
		return;
	ingest_free(sc->sc_ing);
	pubcache_free(sc->sc_pub, sc->sc_info.i_nvars);
	bts_info_free(&sc->sc_info);
	source_unref(sc->sc_src);
	buf_free(&sc->sc_error);
	buf_free(&sc->sc_warnings);
	buf_free(&sc->sc_lout);
	buf_free(&sc->sc_lerr);
	free(sc->sc_id);
	free(sc->sc_name);
	free(sc->sc_code);
	free(sc->sc_run);
	free(sc->sc_user);
	free(sc->sc_inst_saved);
	free(sc);
}
