/* SPDX-License-Identifier: MIT */
/*
 * api_fetch.c - /pmapi/fetch and pmwebd's _fetch: the values of local
 * metrics (instances arrays cached with their snapshot), of the
 * context's derived metrics (computed from the same snapshots) and of
 * pmcd's metrics, in the request's order.
 * Threads: runs in HTTP workers; reads immutable registry generations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "pcp.h"
#include "registry.h"
#include "util.h"

/* the snapshots of one request: one per source (snapcache.c) */
#define FETCH_MAX_SOURCES	16

struct dfetch {
	struct api		*a;
	struct snapcache	*sc;
};

/* an operand's values: only plain (snapshot) metrics have them */
static const struct valset *
derive_values(void *arg, const char *name)
{
	struct dfetch		*f = arg;
	const struct metric	*m = api_local_by_name(f->a, name);
	struct snap		*s;
	struct pcitem		*it;

	if (m == NULL && (it = api_pc_by_name(f->a, name)) != NULL) {
		if (!it->fetched)
			api_pc_fetch(f->a);
		return &it->vs;
	}
	if (m == NULL || m->m_ctxval || m->m_src == NULL ||
	    access_metric(f->a->a_ds->cfg.auth_reads, m, &f->a->a_rd) !=
	    ACCESS_ALL ||
	    (s = snapcache_get(f->sc, m->m_src)) == NULL ||
	    m->m_slot >= s->s_nsets)
		return NULL;
	return &s->s_sets[m->m_slot];
}

/* --- fetch --- */

/* a fetch target: a real metric, one of the context's derived, or pmcd's */
struct fitem {
	struct metric		*m;
	const struct dmetric	*dm;
	struct pcitem		*pc;
};

/*
 * The "instances" array of a set with values, as far as prof lets them
 * through; returns how many were written (nothing is left in b for 0).
 */
static int
put_instances(struct buf *b, const struct metric *m, const struct valset *vs,
    const struct profile *prof, int pmwebd)
{
	size_t	 start = b->b_len;
	int	 n = 0, type = metric_type(m);

	buf_putc(b, '[');
	for (int i = 0; i < vs->vs_n; i++) {
		if (vs->vs_inst && !profile_allows(prof, m->m_indom,
		    vs->vs_inst[i]))
			continue;
		if (n++)
			buf_putc(b, ',');
		if (vs->vs_inst) {
			buf_puts(b, "{\"instance\":");
			api_put_u64(b, vs->vs_inst[i]);
			buf_puts(b, ",\"value\":");
		} else
			buf_puts(b, pmwebd ? "{\"instance\":-1,\"value\":" :
			    "{\"instance\":null,\"value\":");
		api_put_value(b, type, &vs->vs_vals[i]);
		buf_putc(b, '}');
	}
	buf_putc(b, ']');
	if (n == 0)
		buf_truncate(b, start);
	return n;
}

/*
 * m's instances array from snapshot s, written once per snapshot and
 * cached with it (snap_frag_set), or NULL when it cannot be cached: the
 * source builds a snapshot per fetch (self metrics), the context's
 * profile restricts m's instances, or memory ran out.
 */
static const struct snapfrag *
fetch_frag(struct api *a, const struct metric *m, struct snap *s,
    const struct valset *vs)
{
	int			 variant = vs->vs_inst ? 0 : API_PMWEBD(a);
	const struct snapfrag	*f;
	struct snapfrag		*nf;
	struct buf		 b;

	if (m->m_src->src_refresh || (vs->vs_inst &&
	    !profile_allows_all(a->a_prof, m->m_indom)))
		return NULL;
	if ((f = snap_frag(s, m->m_slot, variant)) != NULL)
		return f->sf_type == metric_type(m) ? f : NULL;
	if ((nf = calloc(1, sizeof(*nf))) == NULL)
		return NULL;
	buf_init(&b, a->a_ds->cfg.max_answer);	/* the snapshot's, uncharged */
	buf_reserve(&b, (size_t)vs->vs_n * 32 + 32);
	put_instances(&b, m, vs, NULL, variant);
	if (b.b_failed) {
		buf_free(&b);
		free(nf);
		return NULL;
	}
	nf->sf_type = metric_type(m);
	nf->sf_data = buf_take(&b, &nf->sf_len);
	if (nf->sf_data == NULL) {
		free(nf);
		return NULL;
	}
	f = snap_frag_set(s, m->m_slot, variant, nf);
	return f && f->sf_type == metric_type(m) ? f : NULL;
}

static void
put_fetch_head(struct api *a, pmID pmid, const char *name, int count)
{
	struct buf	*b = &a->a_out;

	buf_puts(b, count ? ",{\"pmid\":" : "{\"pmid\":");
	api_put_pmid(a, pmid);
	buf_puts(b, ",\"name\":");
	json_str(b, name);
	buf_puts(b, ",\"instances\":");
}

/*
 * A metric whose value depends on who asks (m_ctxval); 1 when it has none
 * of its own for this reader (the snapshot's value is the answer).
 */
static int
put_fetch_ctxval(struct api *a, struct metric *m, int *count)
{
	struct buf	*b = &a->a_out;
	struct buf	 v;
	int		 rv;

	buf_init(&v, a->a_ds->cfg.max_answer);	/* it goes in the answer */
	if ((rv = m->m_ctxval(m, &a->a_rd, &v)) == 0) {
		put_fetch_head(a, m->m_pmid, m->m_name, *count);
		buf_puts(b, API_PMWEBD(a) ? "[{\"instance\":-1,\"value\":" :
		    "[{\"instance\":null,\"value\":");
		json_strn(b, buf_cstr(&v), v.b_len);
		buf_puts(b, "}]}");
		(*count)++;
	}
	buf_free(&v);
	return rv;
}

/*
 * The values set of m in this request's snapshot of its source, or NULL
 * when m has none there.
 */
static const struct valset *
fetch_valset(struct metric *m, struct snapcache *sc, struct snap **sp)
{
	struct snap	*s;

	if (m->m_src == NULL || (s = snapcache_get(sc, m->m_src)) == NULL ||
	    m->m_slot >= s->s_nsets)
		return NULL;
	*sp = s;
	return &s->s_sets[m->m_slot];
}

/* --auth-reads: only the instances this reader may see (no cache) */
static void
put_fetch_filtered(struct api *a, struct metric *m, const struct snap *s,
    const struct valset *vs, int *count)
{
	struct buf	*b = &a->a_out;
	struct valset	 mine;
	size_t		 start = b->b_len;

	if (vs->vs_n <= 0 || access_filter(m, s, vs, &a->a_rd,
	    a->a_ds->cfg.auth_reads, &mine) == -1)
		return;
	put_fetch_head(a, m->m_pmid, m->m_name, *count);
	if (put_instances(b, m, &mine, a->a_prof, API_PMWEBD(a)) == 0)
		buf_truncate(b, start);	/* none to show: no values */
	else {
		buf_putc(b, '}');
		(*count)++;
	}
	access_filter_free(&mine);
}

static void
put_fetch_metric(struct api *a, struct metric *m, struct snapcache *sc,
    int *count)
{
	struct buf		*b = &a->a_out;
	const struct snapfrag	*f;
	const struct valset	*vs;
	struct snap		*s;
	size_t			 start;
	int			 access;

	if (m->m_ctxval && put_fetch_ctxval(a, m, count) != 1)
		return;
	if ((access = access_metric(a->a_ds->cfg.auth_reads, m,
	    &a->a_rd)) == ACCESS_NONE)
		return;		/* --auth-reads: as if it had no values */
	if ((vs = fetch_valset(m, sc, &s)) == NULL)
		return;
	if (access == ACCESS_FILTER) {
		put_fetch_filtered(a, m, s, vs, count);
		return;
	}
	if (vs->vs_n <= 0 && vs->vs_err == 0) {
		/*
		 * A known-empty set (a map with no keys yet): listed with no
		 * instances, so grafana-pcp does not take it for a missing
		 * metric and register the script again.
		 */
		put_fetch_head(a, m->m_pmid, m->m_name, *count);
		buf_puts(b, "[]}");
		(*count)++;
		return;
	}
	if (vs->vs_n <= 0)
		return;		/* pmproxy drops metrics without values */
	start = b->b_len;
	put_fetch_head(a, m->m_pmid, m->m_name, *count);
	if ((f = fetch_frag(a, m, s, vs)) != NULL)
		buf_append(b, f->sf_data, f->sf_len);
	else if (put_instances(b, m, vs, a->a_prof, API_PMWEBD(a)) == 0) {
		buf_truncate(b, start);	/* the profile let none through */
		return;
	}
	buf_putc(b, '}');
	(*count)++;
}

/*
 * Room for the answer's local metrics in one allocation: their cached
 * fragments (written now when missing) plus their heads.
 */
static void
reserve_fetch(struct api *a, const struct fitem *ms, size_t n,
    struct snapcache *sc)
{
	const struct snapfrag	*f;
	const struct valset	*vs;
	struct snap		*s;
	size_t			 need = 0;

	for (size_t i = 0; i < n; i++) {
		if (ms[i].m == NULL || ms[i].m->m_ctxval)
			continue;
		need += 64 + strlen(ms[i].m->m_name);
		if ((vs = fetch_valset(ms[i].m, sc, &s)) != NULL &&
		    vs->vs_n > 0 && (f = fetch_frag(a, ms[i].m, s, vs)) != NULL)
			need += f->sf_len;
	}
	buf_reserve(&a->a_out, need);
}

/*
 * Evaluate dm at the fetch's time ts against the context's previous fetch
 * (its rate() operands), and keep this fetch's for the next one. 0, or
 * -1 with no value; a history the context cannot keep sets *err.
 */
static int
eval_derived(struct api *a, const struct dmetric *dm, struct dexpr *bound,
    struct dfetch *f, const struct timespec *ts, struct dvals *v,
    enum ctx_result *err)
{
	struct dhist	 prev, next;
	int		 rc;

	if (ctx_rate_get(a->a_ds->ctx, a->a_ctx, dm->dm_pmid, &prev) ==
	    CTX_FULL)
		*err = CTX_FULL;
	rc = derive_eval_hist(bound, derive_values, f, &prev, &next, ts, v);
	if (next.dh_n > 0 && a->a_held) {
		enum ctx_result	 st = ctx_rate_put(a->a_ds->ctx, a->a_ctx,
				    dm->dm_pmid, &next);

		if (st != CTX_OK && st != CTX_UNKNOWN && *err == CTX_OK)
			*err = st;
	}
	dhist_free(&prev);
	dhist_free(&next);
	return rc == 0 ? 0 : -1;
}

/* one derived metric's values, computed from this request's snapshots */
static void
put_fetch_derived(struct api *a, const struct dmetric *dm,
    struct snapcache *sc, const struct timespec *ts, int *count,
    enum ctx_result *err)
{
	struct buf	*b = &a->a_out;
	struct dfetch	 f = { a, sc };
	struct dexpr	*bound;
	struct ddesc	 d;
	struct dvals	 v;
	int		 first = 1;

	if (api_derived_visible(a, dm->dm_name, &d, &bound) == NULL)
		return;
	if (eval_derived(a, dm, bound, &f, ts, &v, err) == -1) {
		derive_free(bound);
		return;		/* an operand has no value: no value */
	}
	buf_puts(b, *count ? ",{\"pmid\":" : "{\"pmid\":");
	api_put_dpmid(a, dm->dm_pmid);
	buf_puts(b, ",\"name\":");
	json_str(b, dm->dm_name);
	buf_puts(b, ",\"instances\":[");
	for (int i = 0; i < v.dv_n; i++) {
		if (v.dv_inst && !profile_allows(a->a_prof, d.dd_indom,
		    v.dv_inst[i]))
			continue;
		if (!first)
			buf_putc(b, ',');
		first = 0;
		if (v.dv_inst)
			buf_printf(b, "{\"instance\":%u,\"value\":",
			    v.dv_inst[i]);
		else
			buf_printf(b, "{\"instance\":%s,\"value\":",
			    API_PMWEBD(a) ? "-1" : "null");
		api_put_value(b, v.dv_type, &v.dv_vals[i]);
		buf_putc(b, '}');
	}
	/*
	 * pmproxy answers a singular metric without values (a rate() at its
	 * first fetch) with the value it cached for it: 0 until it had one
	 */
	if (v.dv_n == 0 && d.dd_indom == PM_INDOM_NULL)
		buf_printf(b, "{\"instance\":%s,\"value\":0}",
		    API_PMWEBD(a) ? "-1" : "null");
	buf_puts(b, "]}");
	(*count)++;
	dvals_free(&v);
	derive_free(bound);
}

/*
 * A pmcd metric's values. One with none (numval 0, or an error such as
 * no access to proc.*) is kept with an empty "instances", as pmproxy
 * lists it: grafana-pcp takes a missing name for a missing metric.
 */
static void
put_fetch_pc_as(struct api *a, const struct pcitem *it, const char *name,
    int *count);

/* pmproxy lists a pmid with several names (aliases) once per name */
static void
put_fetch_pc(struct api *a, const struct pcitem *it, int *count)
{
	char	**names = NULL;
	int	 n = pmcd_names_of(it->pmid, &names);

	if (n <= 1)
		put_fetch_pc_as(a, it, it->name, count);
	for (int i = 0; n > 1 && i < n; i++)
		put_fetch_pc_as(a, it, names[i], count);
	free(names);
}

static void
put_fetch_pc_as(struct api *a, const struct pcitem *it, const char *name,
    int *count)
{
	struct buf		*b = &a->a_out;
	const struct valset	*vs = &it->vs;
	int			 first = 1;

	if (vs->vs_n <= 0) {
		buf_puts(b, *count ? ",{\"pmid\":" : "{\"pmid\":");
		api_put_pmid(a, it->pmid);
		buf_puts(b, ",\"name\":");
		json_str(b, name);
		buf_puts(b, ",\"instances\":[]}");
		(*count)++;
		return;
	}
	for (int i = 0; i < vs->vs_n; i++) {
		if (vs->vs_inst && !profile_allows(a->a_prof, it->desc.indom,
		    vs->vs_inst[i]))
			continue;
		if (first) {
			buf_puts(b, *count ? ",{\"pmid\":" : "{\"pmid\":");
			api_put_pmid(a, it->pmid);
			buf_puts(b, ",\"name\":");
			json_str(b, name);
			buf_puts(b, ",\"instances\":[");
			first = 0;
		} else {
			buf_putc(b, ',');
		}
		if (vs->vs_inst)
			buf_printf(b, "{\"instance\":%u,\"value\":",
			    vs->vs_inst[i]);
		else
			buf_printf(b, "{\"instance\":%s,\"value\":",
			    API_PMWEBD(a) ? "-1" : "null");
		api_put_value(b, it->desc.type, &vs->vs_vals[i]);
		buf_putc(b, '}');
	}
	if (!first) {
		buf_puts(b, "]}");
		(*count)++;
	}
}

/* ours first, then this context's derived metrics, then pmcd's */
static int
fitem_by_name(struct api *a, const char *name, struct fitem *it)
{
	it->dm = NULL;
	it->pc = NULL;
	if ((it->m = api_local_by_name(a, name)) != NULL)
		return 0;
	if ((it->dm = api_derived_visible(a, name, NULL, NULL)) != NULL)
		return 0;
	return (it->pc = api_pc_by_name(a, name)) ? 0 : -1;
}

/*
 * A derived metric is found by pmid only in the u32 form with libpcp's
 * derived bit (4292870143 for 511.2047.1023), as in pmproxy 6.0.3: its
 * "D.C.I" form lacks the bit and finds nothing there either.
 */
static int
fitem_by_pmid(struct api *a, pmID pmid, struct fitem *it)
{
	it->dm = NULL;
	it->pc = NULL;
	if ((it->m = api_local_by_pmid(a, pmid)) != NULL)
		return 0;
	if (((unsigned)pmid & DERIVE_PMID_FLAG) == 0)
		return (it->pc = api_pc_by_pmid(a, pmid)) ? 0 : -1;
	for (size_t i = 0; a->a_dset && i < a->a_dset->ds_n; i++) {
		const struct dmetric	*dm = a->a_dset->ds_v[i];

		if (((unsigned)dm->dm_pmid | DERIVE_PMID_FLAG) ==
		    (unsigned)pmid)
			return (it->dm = api_derived_visible(a, dm->dm_name,
			    NULL, NULL)) ? 0 : -1;
	}
	return -1;
}

/*
 * Resolve the fetch list: names, then pmids (singular forms are strict).
 * Derived metrics are found by name, and by pmid in the u32 form only
 * (fitem_by_pmid).
 */
static int
fetch_lookup(struct api *a, struct fitem **outp, size_t *np, int *ret)
{
	const char	*single = api_param(a, "name");
	const char	*spmid = api_param(a, "pmid");
	const char	*list = api_param(a, "names");
	const char	*plist = api_param(a, "pmids");
	struct fitem	*out;
	char		**v = NULL, **pv = NULL;
	size_t		 n = 0, pn = 0, k = 0;
	pmID		 pmid;
	int		 code = 0;

	if (list && *list == '\0') {
		*ret = api_error(a, 400, 1, PM_ERR_TOOSMALL,
		    "Insufficient elements in list");
		return -1;
	}
	if (list && (v = api_split_list(list, &n, a->a_ds->cfg.max_names)) ==
	    NULL)
		goto toomany;
	if (plist && (pv = api_split_list(plist, &pn,
	    a->a_ds->cfg.max_names - n)) == NULL)
		goto toomany;
	if ((out = calloc(n + pn + 2, sizeof(*out))) == NULL)
		goto toomany;
	if (single && fitem_by_name(a, single, &out[k++]) == -1) {
		code = PM_ERR_NAME;
		goto bad;
	}
	if (spmid && (api_parse_pmid(spmid, &pmid) == -1 ||
	    fitem_by_pmid(a, pmid, &out[k++]) == -1)) {
		code = PM_ERR_PMID;
		goto bad;
	}
	a->a_pcerr = 0;	/* a single name's failure only counts above */
	for (size_t i = 0; i < n; i++)
		if (fitem_by_name(a, v[i], &out[k]) == 0)
			k++;
	for (size_t i = 0; i < pn; i++)
		if (api_parse_pmid(pv[i], &pmid) == 0 &&
		    fitem_by_pmid(a, pmid, &out[k]) == 0)
			k++;
	api_free_list(v);
	api_free_list(pv);
	/*
	 * One pmFetch for every pmcd metric (derived operands included).
	 * When pmcd failed and nothing of ours was asked for, the answer
	 * is pmproxy's error; otherwise ours are served without pmcd's.
	 */
	api_pc_fetch(a);
	if (a->a_pcerr) {
		size_t	 ours = 0;

		for (size_t i = 0; i < k; i++)
			ours += out[i].pc == NULL;
		if (ours == 0) {
			free(out);
			*ret = api_pc_error(a, 1);
			return -1;
		}
	}
	*outp = out;
	*np = k;
	return 0;
bad:
	free(out);
	api_free_list(v);
	api_free_list(pv);
	*ret = a->a_pcerr ? api_pc_error(a, 1) :
	    api_error(a, 400, 1, code, "bad parameters passed");
	return -1;
toomany:
	api_free_list(v);
	api_free_list(pv);
	*ret = api_too_many_names(a);
	return -1;
}

/*
 * The members of a fetch's "values" array, in the request's order; a
 * derived metric's values are computed from the same snapshots as the
 * plain metrics of this request.
 */
static enum ctx_result
put_fetch_values(struct api *a, const struct fitem *ms, size_t n,
    const struct timespec *ts)
{
	struct snapcache_slot	 slot[FETCH_MAX_SOURCES];
	struct snapcache	 sc;
	int			 count = 0;
	enum ctx_result		 err = CTX_OK;

	snapcache_init(&sc, slot, FETCH_MAX_SOURCES);
	reserve_fetch(a, ms, n, &sc);
	for (size_t i = 0; i < n; i++)
		if (ms[i].m)
			put_fetch_metric(a, ms[i].m, &sc, &count);
		else if (ms[i].pc)
			put_fetch_pc(a, ms[i].pc, &count);
		else
			put_fetch_derived(a, ms[i].dm, &sc, ts, &count, &err);
	snapcache_release(&sc);
	return err;
}

/*
 * The error answer for a rate() history the context could not keep
 * (put_fetch_values() != CTX_OK): the values are not sent, as the
 * next fetch would silently have no rate.
 */
static int
rate_error(struct api *a, enum ctx_result err)
{
	buf_reset(&a->a_out);
	return api_ctx_error(a, API_CTX_RATE, err, NULL, 1);
}

/*
 * /pmapi/fetch, and pmwebd's _fetch: its timestamp form, no context key,
 * and no valid name at all is pmFetch's error (pmproxy: 200, no values).
 */
int
api_run_fetch(struct api *a)
{
	struct fitem		*ms;
	struct timespec		 ts;
	size_t			 n;
	int			 ret;
	enum ctx_result		 err;

	if (fetch_lookup(a, &ms, &n, &ret) == -1)
		return ret;
	if (n == 0 && API_PMWEBD(a)) {
		free(ms);
		return api_error(a, 400, 1, PM_ERR_TOOSMALL,
		    "Insufficient elements in list");
	}
	now_real(&ts);
	if (API_PMWEBD(a))
		buf_printf(&a->a_out, "{\"timestamp\":{\"s\":%lld,\"us\":%ld},"
		    "\"values\":[", (long long)ts.tv_sec, ts.tv_nsec / 1000);
	else {
		api_put_head(a);
		buf_printf(&a->a_out, ",\"timestamp\":%lld.%09ld,\"values\":[",
		    (long long)ts.tv_sec, ts.tv_nsec);
	}
	err = put_fetch_values(a, ms, n, &ts);
	free(ms);
	if (err != CTX_OK)
		return rate_error(a, err);
	buf_puts(&a->a_out, "]}");
	return api_send_out(a, 200);
}
