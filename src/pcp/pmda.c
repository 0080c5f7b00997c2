/* SPDX-License-Identifier: MIT */
/*
 * pmda.c - PMDA mode: bpftraced serves domain 151 to a local pmcd as a
 * *socket* PMDA (pmcd.conf: "bpftrace 151 socket unix PATH"), so pminfo,
 * pmlogger, pmie and pmproxy see the same metrics as the REST API.
 *
 * Who listens: bpftraced. pmcd connects to socket PMDAs, so the daemon
 * binds PATH once at start (before privs_drop, so it can chown the socket
 * to PCP_USER for pmcd, which runs as that user) and keeps the listening
 * socket for its lifetime. pmcd neither forks nor owns the daemon: when
 * pmcd closes the connection (restart, SIGHUP reconfiguration, crash) the
 * PMDA thread goes back to accept() and serves the next pmcd.
 *
 * Threads and locks: libpcp_pmda keeps process-wide state (__pmdaMainPDU
 * has statics, the pmdaExt, the current context), so EVERY libpcp_pmda
 * call (pmdaDaemon, pmdaInit, __pmdaMainPDU, pmdaAddLabels, ...)
 * and every callback runs on the one PMDA thread started
 * here; the main thread only creates the socket before that thread exists
 * and joins it at shutdown (waking it through a pipe). The thread holds
 * no lock of its own: its per-context table and its last fetch result are
 * touched by it alone. It reads the registry through reg_acquire() and
 * source_snap() like the HTTP threads (both thread-safe; generations and
 * snapshots are immutable and reference counted), and stores go through
 * metric->m_store, which takes control.c's own locks exactly as a REST
 * store does. The users file is read under ds->auth_lock (auth_ref).
 *
 * Connection set-up: libpcp_pmda's pmdaConnect() would bind, accept once
 * and exit(1) on any socket error, and its version exchange is private,
 * so this file does the accept and the one-PDU credentials exchange
 * itself (PDU_CREDS with a CVERSION credential, both ways: a fixed part
 * of the PCP wire protocol) and then hands the descriptor to
 * __pmdaMainPDU, which is public.
 *
 * Per-context answers: control metrics answer per client context. pmcd's
 * contexts (pmdaExt.e_context, set by __pmdaMainPDU from each PDU; it is
 * what pmdaGetContext() returns inside libpcp_pmda's default callbacks,
 * which set it, and ours replace them) are mapped to ids with the top bit set
 * (PMDA_CTX_BIT), from a counter that never repeats, so they never meet a
 * REST context id (1..INT32_MAX) nor a former pmcd context.
 *
 * Who may store: pmcd sends each client's attributes (PMDA_FLAG_AUTHORIZE).
 * A local (unix socket) client comes with its uid, gid and pid
 * (SO_PEERCRED); a SASL login with a username (and uid, no pid). The
 * store's user is the SASL username, else the local uid's login name;
 * sr_loopback is set for local clients only, except PCP_USER's own
 * processes (pmproxy, pmlogger...), which speak for clients we cannot see.
 * --control=auth: the user must be in --auth-file with the control or
 * admin role (pmcd did the authentication; the password is not used).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcp/pmapi.h>
#include <pcp/pmda.h>

#include "pcplib.h"

#include "auth.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "log.h"
#include "pcp.h"
#include "registry.h"
#include "spawnenv.h"
#include "util.h"

/* libpcp exports this (pmdaConnect's version exchange uses it) */

/* the wire constants of the credentials exchange (PCP protocol 2) */
#define WIRE_PDU_CREDS		0x700c
#define WIRE_CVERSION		0x1
#define WIRE_PDU_VERSION	2
#define WIRE_HDR		12	/* len, type, from */
#define HANDSHAKE_MS		5000

#define PMDA_LISTEN_BACKLOG	4
#define PMDA_RECHECK_MS		250	/* socket file still there? */

struct pctx {
	int		 pc_ctx;		/* pmcd's client context */
	uint32_t	 pc_id;			/* ours: PMDA_CTX_BIT | seq */
	int		 pc_has_uid, pc_has_pid;
	unsigned	 pc_uid, pc_pid;
	char		 pc_user[AUTH_NAME_MAX + 1];	/* SASL username */
	/* the principal (pc_principal), worked out once after attributes */
	int		 pc_have_principal;
	char		 pc_puser[AUTH_NAME_MAX + 1];
	char		 pc_ppeer[96];
};

struct sc_entry {
	struct source	*src;
	struct snap	*snap;
};

static struct {
	struct daemon_state	*ds;
	char			 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int			 lfd;		/* listening socket */
	int			 wake[2];	/* main -> thread: stop */
	pthread_t		 thr;
	int			 running;
	uid_t			 pcp_uid;
	int			 has_pcp_uid;
	int			 listed;	/* pmcd.conf names P.path */
	dev_t			 sock_dev;	/* the socket file we made */
	ino_t			 sock_ino;
	/* PMDA thread only from here on */
	pmdaInterface		 dispatch;
	pmResult		*last;		/* the previous fetch answer */
	char			*text;		/* the previous help text */
	struct pctx		*ctxs;
	size_t			 nctxs, capctxs;
	uint32_t		 seq;
	unsigned		 nconn;
	unsigned long		 names_gen;	/* namespace the last fetch saw */
	int			 have_gen;	/* names_gen is set (this conn.) */
} P = { .lfd = -1, .wake = { -1, -1 } };

/* ---- per-context table (PMDA thread) ---- */

static struct pctx *
ctx_lookup(int ctx, int create)
{
	for (size_t i = 0; i < P.nctxs; i++)
		if (P.ctxs[i].pc_ctx == ctx)
			return &P.ctxs[i];
	if (!create)
		return NULL;
	if (P.nctxs == P.capctxs) {
		size_t		 cap = P.capctxs ? P.capctxs * 2 : 16;
		struct pctx	*v = realloc(P.ctxs, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		P.ctxs = v;
		P.capctxs = cap;
	}
	memset(&P.ctxs[P.nctxs], 0, sizeof(P.ctxs[0]));
	P.ctxs[P.nctxs].pc_ctx = ctx;
	P.ctxs[P.nctxs].pc_id = PMDA_CTX_BIT | (P.seq++ & ~PMDA_CTX_BIT);
	return &P.ctxs[P.nctxs++];
}

static void
on_end_context(int ctx)
{
	log_debug("pmda: context %d ended", ctx);
	for (size_t i = 0; i < P.nctxs; i++)
		if (P.ctxs[i].pc_ctx == ctx) {
			P.ctxs[i] = P.ctxs[--P.nctxs];
			return;
		}
}

static int
on_attribute(int ctx, int attr, const char *value, int len, pmdaExt *pe)
{
	struct pctx	*pc;
	const char	*errstr;
	long long	 n;

	if ((pc = ctx_lookup(ctx, 1)) == NULL)
		return -ENOMEM;
	pc->pc_have_principal = 0;	/* worked out again with this one */
	if (value == NULL || len <= 0)
		return 0;
	switch (attr) {
	case PMDA_ATTR_USERNAME:
		if (strnlen(value, (size_t)len) <= AUTH_NAME_MAX)
			snprintf(pc->pc_user, sizeof(pc->pc_user), "%.*s", len,
			    value);
		break;
	case PMDA_ATTR_USERID:
		n = strtonum_ll(value, 0, UINT32_MAX, &errstr);
		if (errstr == NULL) {
			pc->pc_uid = (unsigned)n;
			pc->pc_has_uid = 1;
		}
		break;
	case PMDA_ATTR_PROCESSID:
		n = strtonum_ll(value, 1, UINT32_MAX, &errstr);
		if (errstr == NULL) {
			pc->pc_pid = (unsigned)n;
			pc->pc_has_pid = 1;
		}
		break;
	default:
		break;
	}
	log_debug("pmda: context %d attribute %d = %.*s", ctx, attr, len,
	    value);
	return 0;
}

/* ---- lookups ---- */

static struct metric *
metric_of(struct ns *ns, pmID pmid)
{
	struct metric	*m = ns_metric_by_pmid(ns, pmid);

	return m && pmID_domain(m->m_pmid) == BT_DOMAIN ? m : NULL;
}

static struct metric *
metric_named(struct ns *ns, const char *name)
{
	struct metric	*m = ns_metric_by_name(ns, name);

	return m && pmID_domain(m->m_pmid) == BT_DOMAIN ? m : NULL;
}

static struct snap *
sc_get(struct sc_entry *sc, int *n, int max, struct source *src)
{
	for (int i = 0; i < *n; i++)
		if (sc[i].src == src)
			return sc[i].snap;
	if (*n == max) {		/* full: the last slot is recycled */
		snap_release(sc[max - 1].snap);
		(*n)--;
	}
	sc[*n].src = src;
	sc[*n].snap = source_snap(src);
	return sc[(*n)++].snap;
}

/* ---- fetch ---- */

/*
 * The value sets (and value blocks) of an answer belong to libpcp_pmda
 * once the fetch callback returns: __pmdaMainPDU frees them after sending,
 * as with pmdaFetch. Only the outer pmResult is ours (kept until the next
 * fetch, as pmdaFetch keeps its own). result_free() is for an answer
 * never handed over.
 */
static void
result_free(pmResult *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < r->numpmid; i++) {
		pmValueSet	*vs = r->vset[i];

		if (vs == NULL)
			continue;
		if (vs->numval > 0 && vs->valfmt == PM_VAL_DPTR)
			for (int j = 0; j < vs->numval; j++)
				free(vs->vlist[j].value.pval);
		free(vs);
	}
	free(r);
}

/* One value into pv: 32-bit types in place, others in a value block. */
static int
stuff(pmValue *pv, int type, const union value *v)
{
	pmValueBlock	*vb;
	const void	*p;
	size_t		 len;
	int64_t		 i64;
	uint64_t	 u64;
	float		 f;
	double		 d;

	switch (type) {
	case PM_TYPE_32:
		pv->value.lval = (int32_t)v->i;
		return PM_VAL_INSITU;
	case PM_TYPE_U32:
		pv->value.lval = (int32_t)(uint32_t)v->u;
		return PM_VAL_INSITU;
	case PM_TYPE_64:
		i64 = v->i;
		p = &i64;
		len = sizeof(i64);
		break;
	case PM_TYPE_U64:
		u64 = v->u;
		p = &u64;
		len = sizeof(u64);
		break;
	case PM_TYPE_FLOAT:
		f = (float)v->d;
		p = &f;
		len = sizeof(f);
		break;
	case PM_TYPE_DOUBLE:
		d = v->d;
		p = &d;
		len = sizeof(d);
		break;
	case PM_TYPE_STRING:
		p = v->s ? v->s : "";
		len = strlen(p) + 1;
		break;
	default:
		return PM_ERR_TYPE;
	}
	if (PM_VAL_HDR_SIZE + len >= (1u << 24))
		return PM_ERR_TOOBIG;
	if ((vb = calloc(1, PM_VAL_HDR_SIZE + len + sizeof(pmValueBlock))) ==
	    NULL)
		return -ENOMEM;
	vb->vtype = (unsigned)type;
	vb->vlen = (unsigned)(PM_VAL_HDR_SIZE + len);
	memcpy(vb->vbuf, p, len);
	pv->value.pval = vb;
	return PM_VAL_DPTR;
}

static pmValueSet *
vset_new(pmID pmid, int n)
{
	pmValueSet	*vs = calloc(1, sizeof(*vs) +
	    (size_t)(n > 1 ? n - 1 : 0) * sizeof(pmValue));

	if (vs)
		vs->pmid = pmid;
	return vs;
}

static void	 pc_principal(const struct pctx *, char *, size_t, char *,
		    size_t);
static unsigned	 user_roles(struct daemon_state *, const char *);
static pmValueSet *fetch_values(pmID, const struct metric *,
		    const struct valset *);

/*
 * The pmcd client of this fetch as a reader (pointing into its context
 * entry: valid until the next ctx_lookup with create). The name is
 * looked up once per context; the roles each time under --auth-reads
 * (the users file may be reloaded). NULL out of memory.
 */
static const struct reader *
fetch_reader(int ctx, struct reader *rd)
{
	struct pctx	*pc = ctx_lookup(ctx, 1);

	if (pc == NULL)
		return NULL;
	if (!pc->pc_have_principal) {
		pc_principal(pc, pc->pc_puser, sizeof(pc->pc_puser),
		    pc->pc_ppeer, sizeof(pc->pc_ppeer));
		pc->pc_have_principal = 1;
	}
	memset(rd, 0, sizeof(*rd));
	rd->rd_ctx = pc->pc_id;
	rd->rd_user = pc->pc_puser[0] ? pc->pc_puser : NULL;
	rd->rd_roles = P.ds->cfg.auth_reads ? user_roles(P.ds, rd->rd_user) :
	    0;
	rd->rd_peer = pc->pc_ppeer;
	return rd;
}

/* a value set of one error code */
static pmValueSet *
vset_err(pmID pmid, int code)
{
	pmValueSet	*vs = vset_new(pmid, 0);

	if (vs)
		vs->numval = code;
	return vs;
}

static pmValueSet *
fetch_one(struct ns *ns, pmID pmid, const struct reader *rd,
    struct sc_entry *sc, int *nsc, int maxsc)
{
	struct metric		*m = metric_of(ns, pmid);
	const struct valset	*v;
	struct valset		 mine = { 0 };
	struct snap		*s;
	pmValueSet		*vs;
	int			 fmt, access;

	if (m == NULL)
		return vset_err(pmid, PM_ERR_PMID);
	if (m->m_ctxval) {
		struct buf	 b;
		union value	 u;
		int		 rv;

		buf_init(&b, 0);
		if ((rv = m->m_ctxval(m, rd, &b)) == 1) {
			buf_free(&b);	/* no value of its own: m_src's */
			goto plain;
		}
		if ((vs = vset_new(pmid, 1)) == NULL) {
			buf_free(&b);
			return NULL;
		}
		if (rv != 0 || b.b_failed) {
			vs->numval = PM_ERR_VALUE;
		} else {
			u.s = buf_cstr(&b);
			vs->vlist[0].inst = PM_IN_NULL;
			if ((fmt = stuff(&vs->vlist[0], PM_TYPE_STRING, &u)) < 0)
				vs->numval = fmt;
			else {
				vs->valfmt = fmt;
				vs->numval = 1;
			}
		}
		buf_free(&b);
		return vs;
	}
plain:
	/* --auth-reads: another user's script data, as pmcd says it */
	if ((access = access_metric(P.ds->cfg.auth_reads, m, rd)) ==
	    ACCESS_NONE)
		return vset_err(pmid, PM_ERR_PERMISSION);
	s = m->m_src ? sc_get(sc, nsc, maxsc, m->m_src) : NULL;
	if (s == NULL || m->m_slot >= s->s_nsets)
		return vset_err(pmid, PM_ERR_VALUE);
	v = &s->s_sets[m->m_slot];
	if (access == ACCESS_FILTER) {
		if (access_filter(m, s, v, rd, P.ds->cfg.auth_reads,
		    &mine) == -1)
			return NULL;
		v = &mine;
	}
	vs = fetch_values(pmid, m, v);
	access_filter_free(&mine);
	return vs;
}

/* v's values as a pmValueSet (an error code when there are none) */
static pmValueSet *
fetch_values(pmID pmid, const struct metric *m, const struct valset *v)
{
	pmValueSet	*vs;
	int		 k = 0, fmt;

	if (v->vs_n <= 0) {
		/* a map with no keys yet has no values; a scalar, an error */
		if ((vs = vset_new(pmid, 0)) != NULL)
			vs->numval = v->vs_err ? v->vs_err :
			    (m->m_indom == PM_INDOM_NULL ? PM_ERR_VALUE : 0);
		return vs;
	}
	if ((vs = vset_new(pmid, v->vs_n)) == NULL)
		return NULL;
	vs->valfmt = PM_VAL_INSITU;
	for (int i = 0; i < v->vs_n; i++) {
		pmValue	*pv = &vs->vlist[k];

		pv->inst = v->vs_inst ? (int)v->vs_inst[i] : (int)PM_IN_NULL;
		if ((fmt = stuff(pv, metric_type(m), &v->vs_vals[i])) < 0)
			continue;
		vs->valfmt = fmt;
		k++;
	}
	vs->numval = k ? k : PM_ERR_VALUE;
	return vs;
}

/*
 * A PMDA's result timestamp is not a time: pmcd reads it as the PMDA's
 * state-change flags (the first byte in PCP 6.0, all of tv_sec later;
 * __pmdaMainPDU forwards tv_sec) and passes any flags to every client,
 * and pmcd stamps the answer itself. A real time there reads as random
 * PMCD_ADD_AGENT/RESTART/... bits, so pmlogger re-validates and writes a
 * <mark> on nearly every fetch. So: zero, except PMCD_NAMES_CHANGE once
 * after the namespace changed (a script came or went), which is what
 * libpcp_pmda's pmdaExtSetFlags(PMDA_EXT_NAMES_CHANGE) sends and which
 * makes pmlogger look for new metrics under its dynamic roots.
 */
static void
result_state(pmResult *r)
{
	unsigned long	 g = reg_generation(P.ds->reg);

	memset(&r->timestamp, 0, sizeof(r->timestamp));
	if (P.have_gen && g != P.names_gen)
		r->timestamp.tv_sec = PMCD_NAMES_CHANGE;
	P.names_gen = g;
	P.have_gen = 1;
}

static int
pmda_fetch(int n, pmID *pmids, pmResult **resp, pmdaExt *pe)
{
	struct sc_entry		 sc[16];
	int			 nsc = 0, rv = 0;
	struct ns		*ns;
	pmResult		*r;
	struct reader		 rdb;
	const struct reader	*rd;

	free(P.last);
	P.last = NULL;
	if ((rd = fetch_reader(pe->e_context, &rdb)) == NULL)
		return -ENOMEM;
	if (n <= 0 || (r = calloc(1, sizeof(*r) +
	    (size_t)n * sizeof(pmValueSet *))) == NULL)
		return n <= 0 ? PM_ERR_TOOSMALL : -ENOMEM;
	ns = reg_acquire(P.ds->reg);
	for (int i = 0; i < n; i++) {
		if ((r->vset[i] = fetch_one(ns, pmids[i], rd, sc,
		    &nsc, (int)(sizeof(sc) / sizeof(sc[0])))) == NULL) {
			rv = -ENOMEM;
			r->numpmid = i;
			break;
		}
		r->numpmid = i + 1;
	}
	for (int i = 0; i < nsc; i++)
		snap_release(sc[i].snap);
	ns_release(ns);
	if (rv < 0) {
		result_free(r);
		return rv;
	}
	result_state(r);
	P.last = r;
	*resp = r;
	return 0;
}

/* ---- metadata ---- */

static int
pmda_desc(pmID pmid, pmDesc *d, pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(P.ds->reg);
	struct metric	*m = metric_of(ns, pmid);

	if (m) {
		d->pmid = m->m_pmid;
		d->type = metric_describe(m);
		d->indom = m->m_indom;
		d->sem = m->m_sem;
		d->units = m->m_units;
	}
	ns_release(ns);
	return m ? 0 : PM_ERR_PMID;
}

static int
pmda_text(int ident, int type, char **buffer, pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(P.ds->reg);
	const char	*t = NULL;
	int		 help = (type & PM_TEXT_HELP) != 0;

	if (type & PM_TEXT_PMID) {
		struct metric	*m = metric_of(ns, (pmID)ident);

		if (m)
			t = help ? m->m_help : m->m_oneline;
	} else if (type & PM_TEXT_INDOM) {
		struct indom	*in = ns_indom(ns, (pmInDom)ident);

		if (in)
			t = help ? in->i_help : in->i_oneline;
	}
	free(P.text);
	P.text = t && *t ? strdup(t) : NULL;
	ns_release(ns);
	if (P.text == NULL)
		return PM_ERR_TEXT;
	*buffer = P.text;
	return 0;
}

static int
pmda_instance(pmInDom indom, int inst, char *name, pmInResult **resp,
    pmdaExt *pe)
{
	struct ns		*ns = reg_acquire(P.ds->reg);
	struct indom		*in = ns_indom(ns, indom);
	struct snap		*s = NULL;
	const struct instlist	*il;
	pmInResult		*r = NULL;
	int			 n = 0, rv = 0, all;
	struct reader		 rdb;
	const struct reader	*rd;

	if (in == NULL) {
		ns_release(ns);
		return PM_ERR_INDOM;
	}
	if ((rd = fetch_reader(pe->e_context, &rdb)) == NULL) {
		ns_release(ns);
		return -ENOMEM;
	}
	s = in->i_src ? source_snap(in->i_src) : NULL;
	/* --auth-reads: a script's map keys are its data */
	il = access_indom(P.ds->cfg.auth_reads, in, rd) ?
	    snap_instances(s, in) : NULL;
	all = inst == (int)PM_IN_NULL && name == NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto nomem;
	r->indom = indom;
	if (il && il->il_n > 0 && (((r->instlist = calloc((size_t)il->il_n,
	    sizeof(int))) == NULL) || ((r->namelist = calloc((size_t)il->il_n,
	    sizeof(char *))) == NULL)))
		goto nomem;
	for (int i = 0; il && i < il->il_n; i++) {
		int	 match = all ||
		    (name == NULL && inst == (int)il->il_ids[i]) ||
		    (name != NULL && strcmp(name, il->il_names[i]) == 0);

		if (!match)
			continue;
		r->instlist[n] = (int)il->il_ids[i];
		if (name == NULL &&
		    (r->namelist[n] = strdup(il->il_names[i])) == NULL)
			goto nomem;
		n++;
		if (!all)
			break;
	}
	r->numinst = n;
	if (!all && n == 0)
		rv = PM_ERR_INST;
	if (name != NULL) {		/* a name lookup answers ids only */
		free(r->namelist);
		r->namelist = NULL;
	}
	goto done;
nomem:
	rv = -ENOMEM;
done:
	if (rv < 0 && r) {
		for (int i = 0; r->namelist && i < n; i++)
			free(r->namelist[i]);
		free(r->namelist);
		free(r->instlist);
		free(r);
		r = NULL;
	}
	snap_release(s);
	ns_release(ns);
	if (rv == 0)
		*resp = r;
	return rv;
}

static int
pmda_label(int ident, int type, pmLabelSet **lp, pmdaExt *pe)
{
	struct ns	*ns;
	struct metric	*m;
	int		 rv = 0;

	switch (type) {
	case PM_LABEL_DOMAIN:
		return pmdaAddLabels(lp, "{\"agent\":\"bpftrace\"}") < 0 ?
		    PM_ERR_GENERIC : 1;
	case PM_LABEL_ITEM:
		ns = reg_acquire(P.ds->reg);
		if ((m = metric_of(ns, (pmID)ident)) != NULL && m->m_labels &&
		    m->m_labels[0])
			rv = pmdaAddLabels(lp, "{%s}", m->m_labels) < 0 ?
			    PM_ERR_GENERIC : 1;
		ns_release(ns);
		return rv;
	default:
		return 0;
	}
}

/* ---- dynamic PMNS, answered from the current generation ---- */

static int
pmda_pmid(const char *name, pmID *pmid, pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(P.ds->reg);
	struct metric	*m = metric_named(ns, name);

	if (m)
		*pmid = m->m_pmid;
	ns_release(ns);
	return m ? 0 : PM_ERR_NAME;
}

static int
pmda_name(pmID pmid, char ***names, pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(P.ds->reg);
	struct metric	*m = metric_of(ns, pmid);
	char		**v = NULL;
	size_t		 len;

	if (m) {
		len = strlen(m->m_name) + 1;
		if ((v = malloc(sizeof(char *) + len)) != NULL) {
			v[0] = (char *)&v[1];
			memcpy(v[0], m->m_name, len);
		}
	}
	ns_release(ns);
	if (m == NULL)
		return PM_ERR_PMID;
	if (v == NULL)
		return -ENOMEM;
	*names = v;
	return 1;
}

/* One malloc block: n pointers then the strings, as libpcp frees it. */
static char **
name_block(char *const *names, const size_t *lens, size_t n)
{
	size_t	 total = n * sizeof(char *);
	char	**v, *p;

	for (size_t i = 0; i < n; i++)
		total += lens[i] + 1;
	if ((v = malloc(total ? total : 1)) == NULL)
		return NULL;
	p = (char *)&v[n];
	for (size_t i = 0; i < n; i++) {
		v[i] = p;
		memcpy(p, names[i], lens[i]);
		p[lens[i]] = '\0';
		p += lens[i] + 1;
	}
	return v;
}

static int
pmda_children(const char *name, int traverse, char ***kids, int **status,
    pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(P.ds->reg);
	size_t		 lo, n, plen = strlen(name), k = 0;
	char		**names = NULL, **block = NULL;
	size_t		*lens = NULL;
	int		*st = NULL, rv;

	*kids = NULL;
	*status = NULL;
	n = ns_prefix_range(ns, name, &lo);
	if (n == 0) {
		struct metric	*m = metric_named(ns, name);

		rv = m == NULL ? PM_ERR_NAME : 0;
		if (m && traverse) {	/* a leaf traverses to itself */
			size_t	 l = strlen(m->m_name);

			block = name_block(&m->m_name, &l, 1);
			rv = block ? 1 : -ENOMEM;
			*kids = block;
		}
		ns_release(ns);
		return rv;
	}
	names = calloc(n, sizeof(char *));
	lens = calloc(n, sizeof(size_t));
	st = calloc(n, sizeof(int));
	if (names == NULL || lens == NULL || st == NULL) {
		rv = -ENOMEM;
		goto done;
	}
	for (size_t i = lo; i < lo + n; i++) {
		struct metric	*m = ns->ns_by_name[i];
		char		*comp;
		size_t		 clen;

		if (pmID_domain(m->m_pmid) != BT_DOMAIN)
			continue;
		if (traverse) {
			names[k] = m->m_name;
			lens[k] = strlen(m->m_name);
			st[k++] = PMNS_LEAF_STATUS;
			continue;
		}
		comp = m->m_name + (plen ? plen + 1 : 0);
		clen = strcspn(comp, ".");
		if (k && lens[k - 1] == clen &&
		    strncmp(names[k - 1], comp, clen) == 0)
			continue;	/* sorted: same child as before */
		names[k] = comp;
		lens[k] = clen;
		st[k++] = comp[clen] ? PMNS_NONLEAF_STATUS : PMNS_LEAF_STATUS;
	}
	if (k == 0) {
		rv = PM_ERR_NAME;
		goto done;
	}
	if ((block = name_block(names, lens, k)) == NULL) {
		rv = -ENOMEM;
		goto done;
	}
	*kids = block;
	*status = st;
	st = NULL;
	rv = (int)k;
done:
	free(names);
	free(lens);
	free(st);
	ns_release(ns);
	return rv;
}

/* ---- store ---- */

/* The login name of a local client, or "" */
static void
uid_name(unsigned uid, char *out, size_t outlen)
{
	struct passwd	 pw, *res = NULL;
	char		 buf[4096];

	out[0] = '\0';
	if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 &&
	    res != NULL && strlen(res->pw_name) < outlen)
		snprintf(out, outlen, "%s", res->pw_name);
}

static int
store_text(const pmValueSet *vs, char *num, size_t numlen, const char **v,
    size_t *vlen)
{
	const pmValueBlock	*vb;
	pmAtomValue		 av;

	if (vs->numval != 1)
		return vs->numval < 0 ? vs->numval : PM_ERR_BADSTORE;
	if (vs->valfmt == PM_VAL_INSITU) {
		snprintf(num, numlen, "%d", vs->vlist[0].value.lval);
		*v = num;
		*vlen = strlen(num);
		return 0;
	}
	vb = vs->vlist[0].value.pval;
	if (vb == NULL || vb->vlen < (unsigned)PM_VAL_HDR_SIZE)
		return PM_ERR_BADSTORE;
	switch (vb->vtype) {
	case PM_TYPE_STRING:
		*v = vb->vbuf;
		*vlen = strnlen(vb->vbuf, vb->vlen - PM_VAL_HDR_SIZE);
		return 0;
	case PM_TYPE_64:
	case PM_TYPE_U64:
	case PM_TYPE_DOUBLE:
		if (vb->vlen < PM_VAL_HDR_SIZE + sizeof(int64_t))
			return PM_ERR_BADSTORE;
		memcpy(&av, vb->vbuf, sizeof(int64_t));
		if (vb->vtype == PM_TYPE_64)
			snprintf(num, numlen, "%lld", (long long)av.ll);
		else if (vb->vtype == PM_TYPE_U64)
			snprintf(num, numlen, "%llu", (unsigned long long)av.ull);
		else
			snprintf(num, numlen, "%.17g", av.d);
		*v = num;
		*vlen = strlen(num);
		return 0;
	default:
		return PM_ERR_TYPE;
	}
}

/* a store's result as the PCP code pmcd passes on to the client */
static int
store_code(enum store_result rv)
{
	switch (rv) {
	case STORE_OK:
		return 0;
	case STORE_INTERNAL:
		return PM_ERR_GENERIC;	/* ours: the state database */
	case STORE_NOMEM:
		return -ENOMEM;		/* --max-memory */
	case STORE_NOT_ALLOWED:
	case STORE_UNAUTHENTICATED:
	case STORE_FORBIDDEN:
		return PM_ERR_PERMISSION;
	default:
		return PM_ERR_BADSTORE;
	}
}

/*
 * A pmcd client as a principal: the SASL name, else the login name of
 * a local uid (user, "" when none), and where it is (peer). The same for
 * stores and fetches, so a control answer reaches the one who stored.
 */
static void
pc_principal(const struct pctx *pc, char *user, size_t ulen, char *peer,
    size_t plen)
{
	user[0] = '\0';
	if (pc->pc_user[0])
		snprintf(user, ulen, "%s", pc->pc_user);
	else if (pc->pc_has_uid && pc->pc_has_pid)
		uid_name(pc->pc_uid, user, ulen);
	if (pc->pc_has_pid)
		snprintf(peer, plen, "pmcd:local uid %u pid %u", pc->pc_uid,
		    pc->pc_pid);
	else
		snprintf(peer, plen, "pmcd:%s", pc->pc_user[0] ? "sasl" :
		    "remote");
}

/* user's roles in --auth-file (0 when not listed or no file) */
static unsigned
user_roles(struct daemon_state *ds, const char *user)
{
	struct auth_db	*db;
	unsigned	 roles = 0;

	if (user == NULL || user[0] == '\0')
		return 0;
	pthread_mutex_lock(&ds->auth_lock);
	db = ds->auth ? auth_ref(ds->auth) : NULL;
	pthread_mutex_unlock(&ds->auth_lock);
	if (auth_user_roles(db, user, &roles) == -1)
		roles = 0;
	auth_unref(db);
	return roles;
}

static int
pmda_store(pmResult *res, pmdaExt *pe)
{
	struct daemon_state	*ds = P.ds;
	struct pctx		*pc = ctx_lookup(pe->e_context, 1);
	struct ns		*ns;
	char			 user[AUTH_NAME_MAX + 1] = "", peer[96];
	char			 num[64], err[1024];
	int			 rv = 0;

	if (pc == NULL)
		return -ENOMEM;
	log_debug("pmda: store in context %d (uid %s%u, pid %s%u, user %s)",
	    pc->pc_ctx, pc->pc_has_uid ? "" : "none ", pc->pc_uid,
	    pc->pc_has_pid ? "" : "none ", pc->pc_pid, pc->pc_user);
	pc_principal(pc, user, sizeof(user), peer, sizeof(peer));
	ns = reg_acquire(ds->reg);
	for (int i = 0; i < res->numpmid && rv == 0; i++) {
		const pmValueSet	*vs = res->vset[i];
		struct metric		*m = metric_of(ns, vs->pmid);
		struct store_req	 sr;

		if (m == NULL) {
			rv = PM_ERR_PMID;
			break;
		}
		if (m->m_store == NULL) {
			rv = PM_ERR_PERMISSION;
			break;
		}
		memset(&sr, 0, sizeof(sr));
		if ((rv = store_text(vs, num, sizeof(num), &sr.sr_value,
		    &sr.sr_vlen)) != 0)
			break;
		sr.sr_ctx = pc->pc_id;
		sr.sr_peer = peer;
		sr.sr_user = user[0] ? user : NULL;
		sr.sr_loopback = pc->pc_has_pid && !(P.has_pcp_uid &&
		    pc->pc_uid == (unsigned)P.pcp_uid);
		if (sr.sr_user && ds->cfg.control == CONTROL_AUTH)
			sr.sr_roles = user_roles(ds, sr.sr_user);
		err[0] = '\0';
		rv = store_code(m->m_store(m, &sr, err, sizeof(err)));
		if (rv != 0)
			log_info("pmda: store to %s by %s (%s) refused: %s",
			    m->m_name, user[0] ? user : "anonymous", peer, err);
	}
	ns_release(ns);
	return rv;
}

/* ---- connection handling ---- */

/* Remove the socket file unless someone has replaced it since. */
static void
unlink_ours(void)
{
	struct stat	 st;

	if (stat(P.path, &st) == 0 && st.st_dev == P.sock_dev &&
	    st.st_ino == P.sock_ino)
		unlink(P.path);
}

static int
wait_fd(int fd, int ms)
{
	struct pollfd	 p[2] = {
		{ .fd = fd, .events = POLLIN }, { .fd = P.wake[0], .events = POLLIN }
	};
	int		 rv;

	do
		rv = poll(p, 2, ms);
	while (rv == -1 && errno == EINTR);
	if (rv == -1 || (p[1].revents & POLLIN))
		return -1;	/* error or stop */
	return rv == 0 ? 1 : 0;	/* 1: timeout */
}

static int
read_full(int fd, void *buf, size_t len)
{
	unsigned char	*p = buf;

	while (len > 0) {
		ssize_t	 n;

		if (wait_fd(fd, HANDSHAKE_MS) != 0)
			return -1;
		if ((n = read(fd, p, len)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The version exchange pmdaConnect would do: we send PDU_CREDS with one
 * CVERSION credential (protocol 2, our feature flags), pmcd answers with
 * its own. Returns pmcd's protocol version or -1.
 */
static int
handshake(int fd, unsigned flags)
{
	uint32_t	 out[5], hdr[3], body[64];
	uint32_t	 len, n;
	int		 version = -1;

	out[0] = htonl(sizeof(out));
	out[1] = htonl(WIRE_PDU_CREDS);
	out[2] = htonl((uint32_t)getpid());
	out[3] = htonl(1);
	out[4] = htonl((WIRE_CVERSION << 24) | (WIRE_PDU_VERSION << 16) |
	    (flags & 0xffff));
	if (send(fd, out, sizeof(out), MSG_NOSIGNAL) != (ssize_t)sizeof(out) ||
	    read_full(fd, hdr, sizeof(hdr)) == -1)
		return -1;
	len = ntohl(hdr[0]);
	if (ntohl(hdr[1]) != WIRE_PDU_CREDS || len < WIRE_HDR + 8 ||
	    len > WIRE_HDR + sizeof(body) || (len - WIRE_HDR) % 4 != 0 ||
	    read_full(fd, body, len - WIRE_HDR) == -1)
		return -1;
	n = ntohl(body[0]);
	for (uint32_t i = 0; i < n && 1 + i < (len - WIRE_HDR) / 4; i++) {
		uint32_t	 c = ntohl(body[1 + i]);

		if ((c >> 24) == WIRE_CVERSION)
			version = (int)((c >> 16) & 0xff);
	}
	if (version < 0)
		return -1;
	__pmSetVersionIPC(fd, version);
	return version;
}

static void
serve(int fd)
{
	pmdaExt	*pe = P.dispatch.version.any.ext;

	pe->e_infd = pe->e_outfd = fd;
	pe->e_flags |= PMDA_EXT_CONNECTED;
	for (;;) {
		if (wait_fd(fd, -1) != 0)
			break;
		if (__pmdaMainPDU(&P.dispatch) < 0)
			break;
	}
	pe->e_flags &= ~PMDA_EXT_CONNECTED;
	pe->e_infd = pe->e_outfd = -1;
	P.nctxs = 0;		/* pmcd's contexts went with it */
	P.have_gen = 0;		/* a new pmcd starts from its own names */
}

static int	 open_socket(char *, size_t);
static void	 poke_pmcd(void);

/* Is the socket file at P.path still the one we listen on? */
static int
socket_is_ours(void)
{
	struct stat	 st;

	return P.lfd != -1 && stat(P.path, &st) == 0 &&
	    st.st_dev == P.sock_dev && st.st_ino == P.sock_ino;
}

/*
 * pmcd removes a socket agent's Unix socket when it drops the agent (at
 * its shutdown, or after a protocol error): make a new one and ask pmcd
 * to connect. Logs a failure once until it works again.
 */
static int
reopen(void)
{
	static int	 failing;
	char		 err[256];

	if (open_socket(err, sizeof(err)) == -1) {
		if (!failing)
			log_warnx("pmda: cannot re-create %s (%s); trying again",
			    P.path, err);
		failing = 1;
		return -1;
	}
	failing = 0;
	log_info("pmda: re-created %s (pmcd had removed it)", P.path);
	if (P.listed)
		poke_pmcd();
	return 0;
}

static int
stopping(void)
{
	struct pollfd	 p = { .fd = P.wake[0], .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static void *
pmda_thread(void *arg)
{
	pmdaInterface	*d = &P.dispatch;

	pmSetProgname("bpftraced");
	pmdaDaemon(d, PMDA_INTERFACE_7, "bpftrace", BT_DOMAIN, NULL, NULL);
	if (d->status == 0) {
		/* ours replace libpcp_pmda's table-driven defaults */
		d->version.seven.fetch = pmda_fetch;
		d->version.seven.desc = pmda_desc;
		d->version.seven.instance = pmda_instance;
		d->version.seven.text = pmda_text;
		d->version.seven.store = pmda_store;
		d->version.seven.pmid = pmda_pmid;
		d->version.seven.name = pmda_name;
		d->version.seven.children = pmda_children;
		d->version.seven.attribute = on_attribute;
		d->version.seven.label = pmda_label;
		pmdaSetCommFlags(d, PMDA_FLAG_AUTHORIZE);
		pmdaSetEndContextCallBack(d, on_end_context);
		pmdaInit(d, NULL, 0, NULL, 0);
	}
	if (d->status != 0) {
		log_warnx("pmda: libpcp_pmda set-up failed: %s; PMDA mode off",
		    pmErrStr(d->status));
		unlink_ours();		/* pmcd finds nobody, not a mute peer */
		shutdown(P.lfd, SHUT_RDWR);
		return NULL;
	}
	while (!stopping()) {
		int	 fd, version, w;

		if (!socket_is_ours()) {	/* pmcd unlinked it */
			if (P.lfd != -1)
				close(P.lfd);
			P.lfd = -1;
		}
		if (P.lfd == -1 && reopen() == -1) {
			if (wait_fd(P.wake[0], PMDA_RECHECK_MS) == -1)
				break;
			continue;
		}
		if ((w = wait_fd(P.lfd, PMDA_RECHECK_MS)) == -1)
			break;
		if (w == 1)
			continue;	/* see that the socket is still there */
		if ((fd = accept4(P.lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno != EINTR && errno != EAGAIN &&
			    errno != ECONNABORTED)
				log_warn("pmda: accept on %s", P.path);
			continue;
		}
		if ((version = handshake(fd, d->comm.flags)) < 0) {
			log_warnx("pmda: a client of %s did not complete the "
			    "pmcd version exchange; closed", P.path);
			close(fd);
			continue;
		}
		P.nconn++;
		log_info("pmda: pmcd connected on %s (protocol %d, flags "
		    "%#x, connection %u)", P.path, version, d->comm.flags,
		    P.nconn);
		serve(fd);
		close(fd);
		if (!stopping())
			log_info("pmda: pmcd closed the connection; waiting for "
			    "it to connect again");
	}
	free(P.text);
	P.text = NULL;
	free(P.last);
	P.last = NULL;
	free(P.ctxs);
	P.ctxs = NULL;
	return NULL;
}

/* ---- start/stop (main thread) ---- */

/* PCP's run directory: $PCP_RUN_DIR, pcp.conf's, else /run/pcp */
static const char *
pcp_run_dir(void)
{
	const char	*dir = spawnenv_get("PCP_RUN_DIR");

	if (dir == NULL || *dir == '\0')
		dir = pmGetOptionalConfig("PCP_RUN_DIR");
	return dir != NULL && *dir != '\0' ? dir : "/run/pcp";
}

static void
default_path(char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/bpftraced.socket", pcp_run_dir());
}

/* An existing socket file: taken when someone answers on it. */
static int
check_existing(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un	 sa;
	struct stat		 st;
	int			 fd, rv;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : (seterr(err, errlen, "%s: %s",
		    path, strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		seterr(err, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		seterr(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rv == 0) {
		seterr(err, errlen, "%s is in use by another process (another "
		    "bpftraced?)", path);
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		seterr(err, errlen, "stale %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* 0660, owned by PCP_USER when we may: pmcd runs as that user. */
static void
socket_owner(const char *path)
{
	const char	*user = pmGetOptionalConfig("PCP_USER");
	struct passwd	 pw, *res = NULL;
	char		 buf[4096];

	if (chmod(path, 0660) == -1)
		log_warn("pmda: chmod %s", path);
	if (user == NULL || *user == '\0')
		user = "pcp";
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return;
	P.pcp_uid = pw.pw_uid;
	P.has_pcp_uid = 1;
	if (geteuid() == 0 && chown(path, pw.pw_uid, pw.pw_gid) == -1)
		log_warn("pmda: chown %s to %s", path, user);
}

static int
open_socket(char *err, size_t errlen)
{
	struct sockaddr_un	 sa;
	struct stat		 st;

	if (check_existing(P.path, err, errlen) == -1)
		return -1;
	if ((P.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		seterr(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", P.path);
	if (bind(P.lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		seterr(err, errlen, "bind %s: %s", P.path, strerror(errno));
		goto fail;
	}
	socket_owner(P.path);
	if (stat(P.path, &st) == 0) {
		P.sock_dev = st.st_dev;
		P.sock_ino = st.st_ino;
	}
	if (listen(P.lfd, PMDA_LISTEN_BACKLOG) == -1) {
		seterr(err, errlen, "listen %s: %s", P.path, strerror(errno));
		unlink(P.path);
		goto fail;
	}
	return 0;
fail:
	close(P.lfd);
	P.lfd = -1;
	return -1;
}

/* Is PATH named on a pmcd.conf line? Only to give a hint in the log. */
static int
in_pmcd_conf(const char *conf, const char *path)
{
	FILE	*f = fopen(conf, "r");
	char	 line[1024];
	int	 found = 0;

	if (f == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = line[0] != '#' && strstr(line, path) != NULL &&
		    strstr(line, "socket") != NULL;
	fclose(f);
	return found;
}

/*
 * pmcd tries a socket agent when it starts and on SIGHUP; it does not
 * retry by itself. When pmcd.conf names our socket, ask a running pmcd to
 * connect now (what "pmsignal -s HUP pmcd" does): it re-reads pmcd.conf,
 * and reconnects agents it has lost. Before privs_drop (pmcd runs as
 * PCP_USER, so this needs CAP_KILL).
 */
static void
poke_pmcd(void)
{
	char		 path[512], line[32];
	FILE		*f;
	long long	 pid;
	const char	*errstr;

	snprintf(path, sizeof(path), "%s/pmcd.pid", pcp_run_dir());
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	pid = strtonum_ll(line, 2, INT32_MAX, &errstr);
	if (errstr != NULL)
		return;
	/* a stale pid file must not make us signal someone else */
	snprintf(path, sizeof(path), "/proc/%lld/comm", pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	if (strcmp(line, "pmcd\n") != 0)
		return;
	if (kill((pid_t)pid, SIGHUP) == 0)
		log_info("pmda: asked pmcd (pid %lld) to connect (SIGHUP)", pid);
}

int
pmda_start(struct daemon_state *ds, char *err, size_t errlen)
{
	const char	*conf;
	struct stat	 st;
	int		 listed;

	if (ds->cfg.pmda == PMDA_OFF)
		return 0;
	P.ds = ds;
	if (ds->cfg.pmda_socket)
		snprintf(P.path, sizeof(P.path), "%s", ds->cfg.pmda_socket);
	else
		default_path(P.path, sizeof(P.path));
	conf = pmGetOptionalConfig("PCP_PMCDCONF_PATH");
	if (ds->cfg.pmda == PMDA_AUTO && (conf == NULL || stat(conf, &st) ==
	    -1)) {
		log_info("no pmcd: PMDA mode off (%s not found)", conf ? conf :
		    "pcp.conf");
		return 0;
	}
	/* PCP is set up (or PMDA mode was asked for): libpcp_pmda now */
	if (pcplib_load(err, errlen) == -1) {
		if (ds->cfg.pmda == PMDA_ON)
			return -1;
		log_info("PMDA mode off: %s (Debian: apt-get install "
		    "libpcp3 libpcp-pmda3)", err);
		return 0;
	}
	if (open_socket(err, errlen) == -1) {
		if (ds->cfg.pmda == PMDA_ON)
			return -1;
		log_info("no pmcd: PMDA mode off (%s)", err);
		return 0;
	}
	/* before the thread: it reads P.listed (reopen), never writes it */
	listed = conf && in_pmcd_conf(conf, P.path);
	P.listed = listed;
	if (pipe2(P.wake, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    pthread_create(&P.thr, NULL, pmda_thread, NULL) != 0) {
		seterr(err, errlen, "PMDA thread: %s", strerror(errno));
		pmda_stop();
		return ds->cfg.pmda == PMDA_ON ? -1 : 0;
	}
	P.running = 1;
	log_info("PMDA mode: domain %d on %s for pmcd%s", BT_DOMAIN, P.path,
	    listed ? "" : " (not in pmcd.conf: see packaging/pcp/Install)");
	if (listed)
		poke_pmcd();
	return 0;
}

int
pmda_active(void)
{
	return P.running;
}

void
pmda_stop(void)
{
	if (P.running) {
		if (write(P.wake[1], "x", 1) == -1)
			log_warn("pmda: wake");
		pthread_join(P.thr, NULL);
		P.running = 0;
	}
	if (P.lfd != -1) {
		unlink_ours();
		close(P.lfd);
		P.lfd = -1;
	}
	for (int i = 0; i < 2; i++)
		if (P.wake[i] != -1) {
			close(P.wake[i]);
			P.wake[i] = -1;
		}
}
