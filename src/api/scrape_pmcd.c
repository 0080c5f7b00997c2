/* SPDX-License-Identifier: MIT */
/*
 * scrape_pmcd.c - pmcd's metrics in /metrics, when a scrape names them
 * (names=, name=, target=) and pmcd passthrough is on: every leaf at or
 * below the name (pmcd_traverse), its descriptor (pmcd_lookup, cached),
 * its values (pmcd_fetch, SCRAPE_PMCD_BATCH pmids a fetch), written as
 * pmproxy 6.0.3's /metrics writes them:
 *
 *   # PCP5 kernel.all.load 60.2.0 float 60.2 instant none
 *   # HELP kernel_all_load 1, 5 and 15 minute load average
 *   # TYPE kernel_all_load gauge
 *   kernel_all_load{domainname="..",hostname="..",machineid="..",
 *       instname="1 minute",instid="1"} 0.44
 *
 * Labels as pmproxy's scrape puts them together: the context's, the
 * indom's, the item's (note labels too) and the instance's own sets
 * (pmcd_label_levels; a later level's label of the same name wins),
 * then instname and instid unless a set has them; not the agent's or
 * the cluster's, which pmproxy's scrape context has not loaded. They are
 * written in pmproxy's order (scrape_order.c). A PMID is written once
 * per name (pmcd_names_of, pmproxy's order), once per traversal. Not
 * written, as in pmproxy: string and aggregate metrics, metrics without
 * values.
 *
 * Reads: pmcd's metrics have no owner, so every reader who may read at
 * all (http.c: --auth-reads) reads them, as with /pmapi/fetch.
 * Threads: HTTP workers; pmcd.c does the locking.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonr.h"
#include "pcp.h"
#include "scrape.h"

#define SCRAPE_PMCD_BATCH	256	/* pmids in one pmFetch */

struct pitem {
	const char	*name;		/* from pmcd_traverse */
	pmDesc		 desc;
};

static int
numeric(int type)
{
	return type == PM_TYPE_32 || type == PM_TYPE_U32 ||
	    type == PM_TYPE_64 || type == PM_TYPE_U64 ||
	    type == PM_TYPE_FLOAT || type == PM_TYPE_DOUBLE;
}

/* the labels of one sample in the order pmproxy adds them */
struct lseq {
	size_t			 n, cap;
	struct scrape_lkey	*k;
	char			**v;
	size_t			*vlen;
	int			 failed;
};

static void
lseq_trunc(struct lseq *q, size_t n)
{
	while (q->n > n) {
		q->n--;
		free((char *)q->k[q->n].name);
		free(q->v[q->n]);
	}
}

static void
lseq_free(struct lseq *q)
{
	lseq_trunc(q, 0);
	free(q->k);
	free(q->v);
	free(q->vlen);
	memset(q, 0, sizeof(*q));
}

static void
lseq_add(struct lseq *q, const char *key, size_t klen, const char *v,
    size_t vlen)
{
	char	*kc = NULL, *vc = NULL;

	if (q->failed)
		return;
	if (q->n == q->cap) {
		size_t	 cap = q->cap ? q->cap * 2 : 16;
		void	*nk, *nv, *nl;

		nk = realloc(q->k, cap * sizeof(*q->k));
		if (nk)
			q->k = nk;
		nv = realloc(q->v, cap * sizeof(*q->v));
		if (nv)
			q->v = nv;
		nl = realloc(q->vlen, cap * sizeof(*q->vlen));
		if (nl)
			q->vlen = nl;
		if (nk == NULL || nv == NULL || nl == NULL) {
			q->failed = 1;
			return;
		}
		q->cap = cap;
	}
	if ((kc = strndup(key, klen)) == NULL ||
	    (vc = malloc(vlen + 1)) == NULL) {
		free(kc);
		q->failed = 1;
		return;
	}
	memcpy(vc, v, vlen);
	vc[vlen] = '\0';
	q->k[q->n].name = kc;
	q->k[q->n].len = klen;
	q->v[q->n] = vc;
	q->vlen[q->n++] = vlen;
}

static int
lseq_has(const struct lseq *q, const char *key)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->k[i].name, key) == 0)
			return 1;
	return 0;
}

/* one label set (a flat JSON object), in its own order */
static void
lseq_json(struct lseq *q, const char *json)
{
	struct jr	 r;
	struct buf	 key, val;
	char		 err[64];
	size_t		 idx = 0;

	if (json == NULL)
		return;
	memset(&r, 0, sizeof(r));
	r.p = r.start = json;
	r.end = json + strlen(json);
	r.err = err;
	r.errlen = sizeof(err);
	if (jr_peek(&r) != '{' || jr_open(&r) == -1)
		return;
	buf_init(&key, JR_DECODED_MAX(r.end - r.start));
	buf_init(&val, JR_DECODED_MAX(r.end - r.start));
	while (jr_next(&r, '}', &idx, &key) == 1) {
		const char	*start = r.p;

		if (jr_peek(&r) == '"') {
			buf_reset(&val);
			if (jr_string(&r, &val) == -1)
				break;
			lseq_add(q, buf_cstr(&key), key.b_len, buf_cstr(&val),
			    val.b_len);
		} else {
			if (jr_skip(&r) == -1)
				break;
			lseq_add(q, buf_cstr(&key), key.b_len, start,
			    (size_t)(r.p - start));
		}
	}
	buf_free(&key);
	buf_free(&val);
}

/* the sample's labels, in pmproxy's order; the last value of a name */
static void
put_labels(struct buf *b, int *first, struct lseq *q)
{
	size_t	*order;
	int	 n;

	if (q->failed || (order = calloc(q->n + 1, sizeof(*order))) == NULL) {
		b->b_failed = BUF_NOMEM;
		return;
	}
	n = scrape_label_order(q->k, q->n, order);
	if (n < 0)
		b->b_failed = BUF_NOMEM;
	for (int i = 0; i < n; i++) {
		size_t	 last = order[i];

		for (size_t j = order[i] + 1; j < q->n; j++)
			if (strcmp(q->k[j].name, q->k[order[i]].name) == 0)
				last = j;
		scrape_label(b, first, q->k[last].name, q->v[last],
		    q->vlen[last]);
	}
	free(order);
}

static int
get_value(int type, const pmValueSet *vset, int i, union value *v)
{
	pmAtomValue	 av;

	memset(&av, 0, sizeof(av));
	if (pmExtractValue(vset->valfmt, &vset->vlist[i], type, &av,
	    type) < 0)
		return -1;
	switch (type) {
	case PM_TYPE_32:	v->i = av.l; break;
	case PM_TYPE_U32:	v->u = av.ul; break;
	case PM_TYPE_64:	v->i = av.ll; break;
	case PM_TYPE_U64:	v->u = av.ull; break;
	case PM_TYPE_FLOAT:	v->d = av.f; break;
	default:		v->d = av.d; break;
	}
	return 0;
}

static const char *
inst_name(const struct pmcd_indom *pi, int id)
{
	for (int i = 0; i < pi->pi_n; i++)
		if (pi->pi_ids[i] == id)
			return pi->pi_names[i];
	return NULL;
}

static const char *
inst_labels(const struct pmcd_levels *lv, int id)
{
	for (int i = 0; i < lv->ninst; i++)
		if (lv->inst_ids[i] == id)
			return lv->inst[i];
	return NULL;
}

/* one family under one of the metric's names: header, then its samples */
static void
put_family(struct scrape *sc, const char *name, const struct pitem *it,
    const pmValueSet *vset, const struct timespec *ts,
    const char *oneline, const struct pmcd_indom *pi,
    const struct pmcd_levels *lv)
{
	struct buf		*b = &sc->out;
	struct scrape_meta	 mt;
	struct lseq		 q;
	const char		*suffix;
	size_t			 base;

	memset(&q, 0, sizeof(q));
	lseq_json(&q, lv->context);
	lseq_json(&q, lv->indom);
	lseq_json(&q, lv->item);
	base = q.n;
	mt.name = name;
	mt.pmid = it->desc.pmid;
	mt.type = it->desc.type;
	mt.indom = it->desc.indom;
	mt.sem = it->desc.sem;
	mt.units = it->desc.units;
	mt.oneline = oneline && *oneline ? oneline : NULL;
	suffix = scrape_head(sc, &mt);
	for (int i = 0; i < vset->numval; i++) {
		union value	 v;
		const char	*nm;
		char		 id[16];
		int		 first = 1, inst = vset->vlist[i].inst;

		if (get_value(it->desc.type, vset, i, &v) == -1)
			continue;
		scrape_name(b, name);
		buf_puts(b, suffix);
		lseq_trunc(&q, base);
		if (it->desc.indom != PM_INDOM_NULL) {
			lseq_json(&q, inst_labels(lv, inst));
			snprintf(id, sizeof(id), "%u", (unsigned)inst);
			nm = pi ? inst_name(pi, inst) : NULL;
			if (!lseq_has(&q, "instname"))
				lseq_add(&q, "instname", 8, nm ? nm : id,
				    strlen(nm ? nm : id));
			if (!lseq_has(&q, "instid"))
				lseq_add(&q, "instid", 6, id, strlen(id));
		}
		put_labels(b, &first, &q);
		buf_puts(b, first ? " " : "} ");
		scrape_value(b, it->desc.type, &v, sc->om);
		scrape_time(sc, ts);
		buf_putc(b, '\n');
	}
	lseq_free(&q);
}

/* one metric: a family per name of its PMID, in pmcd's order */
static int
put_pmcd_metric(struct scrape *sc, const struct pitem *it,
    const pmValueSet *vset, const struct timespec *ts)
{
	struct pmcd_indom	 pi;
	struct pmcd_levels	 lv;
	char			*oneline, **names = NULL;
	int			 have_pi = 0, nn, rc;

	memset(&pi, 0, sizeof(pi));
	if ((rc = pmcd_label_levels(it->desc.pmid, it->desc.indom, &lv)) < 0) {
		if (rc == PMCD_ECONN)
			sc->pmcd_err = 1;
		else
			sc->out.b_failed = BUF_NOMEM;
		return -1;
	}
	oneline = pmcd_text(0, it->desc.pmid, 0);
	if (it->desc.indom != PM_INDOM_NULL)
		have_pi = pmcd_indom(it->desc.indom, &pi, 0) >= 0;
	if ((nn = pmcd_names_of(it->desc.pmid, &names)) <= 0)
		put_family(sc, it->name, it, vset, ts, oneline,
		    have_pi ? &pi : NULL, &lv);
	for (int i = 0; i < nn; i++)
		put_family(sc, names[i], it, vset, ts, oneline,
		    have_pi ? &pi : NULL, &lv);
	free(names);
	if (have_pi)
		pmcd_indom_free(&pi);
	pmcd_levels_free(&lv);
	free(oneline);
	return 0;
}

/* one pmFetch of items[0..n); 0 or -1 (pmcd failed) */
static int
put_batch(struct scrape *sc, const struct pitem *items, int n)
{
	pmID		 pmids[SCRAPE_PMCD_BATCH];
	pmResult	*res;
	struct timespec	 ts;
	int		 rc;

	for (int i = 0; i < n; i++)
		pmids[i] = items[i].desc.pmid;
	if ((rc = pmcd_fetch(n, pmids, &res)) < 0) {
		if (rc != PMCD_ECONN)
			return 0;	/* no values: nothing written */
		sc->pmcd_err = 1;
		return -1;
	}
	ts.tv_sec = res->timestamp.tv_sec;
	ts.tv_nsec = (long)res->timestamp.tv_usec * 1000;
	for (int i = 0; i < n && i < res->numpmid; i++)
		if (res->vset[i]->pmid == pmids[i] &&
		    res->vset[i]->numval > 0 &&
		    put_pmcd_metric(sc, &items[i], res->vset[i], &ts) == -1)
			break;
	pmFreeResult(res);
	return sc->pmcd_err ? -1 : 0;
}

/* a PMID met before in this traversal (pmproxy writes it once) */
static int
seen_pmid(const struct pitem *items, size_t k, pmID pmid)
{
	for (size_t i = 0; i < k; i++)
		if (items[i].desc.pmid == pmid)
			return 1;
	return 0;
}

int
scrape_pmcd(struct scrape *sc, const char *name)
{
	struct pitem	*items = NULL;
	char		**names = NULL;
	size_t		 n = 0, k = 0, found = 0;
	pmID		 pmid;
	int		 rc, ret = -1;

	if ((rc = pmcd_traverse(name, &names, &n)) < 0) {
		if (rc == PMCD_ECONN)
			sc->pmcd_err = 1;
		else if (rc == -ENOMEM)
			sc->out.b_failed = BUF_NOMEM;
		return rc == PMCD_ECONN || rc == -ENOMEM ? -1 : 0;
	}
	if ((items = calloc(n + 1, sizeof(*items))) == NULL) {
		sc->out.b_failed = BUF_NOMEM;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = pmcd_lookup(names[i], &pmid, &items[k].desc)) < 0) {
			if (rc == PMCD_ECONN) {
				sc->pmcd_err = 1;
				goto done;
			}
			continue;
		}
		found++;
		if (!numeric(items[k].desc.type) ||
		    seen_pmid(items, k, items[k].desc.pmid))
			continue;
		items[k++].name = names[i];
	}
	for (size_t i = 0; i < k; i += SCRAPE_PMCD_BATCH)
		if (put_batch(sc, items + i, (int)(k - i < SCRAPE_PMCD_BATCH ?
		    k - i : SCRAPE_PMCD_BATCH)) == -1)
			goto done;
	ret = found > 0;
done:
	free(items);
	pmcd_names_free(names, n);
	return ret;
}
