/* SPDX-License-Identifier: MIT */
/*
 * pmda_fetch.c - the PMDA's fetch callback: each pmid's values, from one
 * snapshot per source (source_snap), as pmValueSets (32-bit types in
 * place, others in value blocks), the per-context control answers
 * (m_ctxval) and --auth-reads filtering (access.c) as for a REST fetch,
 * and the result's state flags that tell pmcd the namespace changed. It
 * calls pmda_meta.c (which metric) and pmda_ctx.c (who is asking).
 *
 * Threads: the PMDA thread alone; the previous answer and the namespace
 * generation it saw are kept in pmda_cb. Snapshots are immutable and
 * reference counted, so no lock is taken here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "pmda_int.h"
#include "registry.h"

/* sources one fetch reads a snapshot of before the last slot is reused */
#define PMDA_FETCH_SOURCES	16

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
	pmAtomValue	 av;
	const void	*p = &av;	/* a number's bytes start the union */
	size_t		 len;

	switch (type) {
	case PM_TYPE_32:
		pv->value.lval = (int32_t)v->i;
		return PM_VAL_INSITU;
	case PM_TYPE_U32:
		pv->value.lval = (int32_t)(uint32_t)v->u;
		return PM_VAL_INSITU;
	case PM_TYPE_64:	av.ll = v->i; len = sizeof(av.ll); break;
	case PM_TYPE_U64:	av.ull = v->u; len = sizeof(av.ull); break;
	case PM_TYPE_FLOAT:	av.f = (float)v->d; len = sizeof(av.f); break;
	case PM_TYPE_DOUBLE:	av.d = v->d; len = sizeof(av.d); break;
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

static pmValueSet *fetch_values(pmID pmid, const struct metric *m,
		    const struct valset *v);

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
    struct snapcache *sc)
{
	struct metric		*m = pmda_meta_metric(ns, pmid);
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

		buf_init(&b, pmda_cb.ds->cfg.max_answer);
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
	if ((access = access_metric(pmda_cb.ds->cfg.auth_reads, m, rd)) ==
	    ACCESS_NONE)
		return vset_err(pmid, PM_ERR_PERMISSION);
	s = m->m_src ? snapcache_get(sc, m->m_src) : NULL;
	if (s == NULL || m->m_slot >= s->s_nsets)
		return vset_err(pmid, PM_ERR_VALUE);
	v = &s->s_sets[m->m_slot];
	if (access == ACCESS_FILTER) {
		if (access_filter(m, s, v, rd, pmda_cb.ds->cfg.auth_reads,
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
	unsigned long	 g = reg_generation(pmda_cb.ds->reg);

	memset(&r->timestamp, 0, sizeof(r->timestamp));
	if (pmda_cb.have_gen && g != pmda_cb.names_gen)
		r->timestamp.tv_sec = PMCD_NAMES_CHANGE;
	pmda_cb.names_gen = g;
	pmda_cb.have_gen = 1;
}

int
pmda_fetch(int n, pmID *pmids, pmResult **resp, pmdaExt *pe)
{
	struct snapcache_slot	 slot[PMDA_FETCH_SOURCES];
	struct snapcache	 sc;
	int			 rv = 0;
	struct ns		*ns;
	pmResult		*r;
	struct reader		 rdb;
	const struct reader	*rd;

	free(pmda_cb.last);
	pmda_cb.last = NULL;
	if ((rd = pmda_ctx_reader(pe->e_context, &rdb)) == NULL)
		return -ENOMEM;
	if (n <= 0 || (r = calloc(1, sizeof(*r) +
	    (size_t)n * sizeof(pmValueSet *))) == NULL)
		return n <= 0 ? PM_ERR_TOOSMALL : -ENOMEM;
	snapcache_init(&sc, slot, PMDA_FETCH_SOURCES);
	ns = reg_acquire(pmda_cb.ds->reg);
	for (int i = 0; i < n; i++) {
		if ((r->vset[i] = fetch_one(ns, pmids[i], rd,
		    &sc)) == NULL) {
			rv = -ENOMEM;
			r->numpmid = i;
			break;
		}
		r->numpmid = i + 1;
	}
	snapcache_release(&sc);
	ns_release(ns);
	if (rv < 0) {
		result_free(r);
		return rv;
	}
	result_state(r);
	pmda_cb.last = r;
	*resp = r;
	return 0;
}
