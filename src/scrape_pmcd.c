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
 * Labels are the metric's merged labels (pmcd_labels) without the
 * agent's own ("agent"), which pmproxy's /metrics leaves out, then
 * instname and instid. Not written, as in pmproxy: string and aggregate
 * metrics, metrics without values. Differences from pmproxy: the
 * instances' own labels (pmproxy adds them, e.g. cpu="0") are not
 * written (pmcd.c gives none), and a PMID with several names is written
 * once, under the name the traversal found.
 *
 * Reads: pmcd's metrics have no owner, so every reader who may read at
 * all (http.c: --auth-reads) reads them, as with /pmapi/fetch.
 * Threads: HTTP workers; pmcd.c does the locking.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpftraced.h"
#include "jsonr.h"
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

/* one label of a merged set; pmproxy's /metrics leaves agent out */
static void
put_one_label(struct buf *b, int *first, const char *key, const char *v,
    size_t vlen)
{
	if (strcmp(key, "agent") != 0)
		scrape_label(b, first, key, v, vlen);
}

/* a merged label set (a flat JSON object) as Prometheus labels */
static void
put_json_labels(struct buf *b, int *first, const char *json)
{
	struct jr	 r;
	struct buf	 key, val;
	char		 err[64];
	size_t		 idx = 0;

	memset(&r, 0, sizeof(r));
	r.p = r.start = json;
	r.end = json + strlen(json);
	r.err = err;
	r.errlen = sizeof(err);
	if (jr_peek(&r) != '{' || jr_open(&r) == -1)
		return;
	buf_init(&key, 0);
	buf_init(&val, 0);
	while (jr_next(&r, '}', &idx, &key) == 1) {
		const char	*start = r.p;

		if (jr_peek(&r) == '"') {
			buf_reset(&val);
			if (jr_string(&r, &val) == -1)
				break;
			put_one_label(b, first, buf_cstr(&key), buf_cstr(&val),
			    val.b_len);
		} else {
			if (jr_skip(&r) == -1)
				break;
			put_one_label(b, first, buf_cstr(&key), start,
			    (size_t)(r.p - start));
		}
	}
	buf_free(&key);
	buf_free(&val);
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

/* one metric's family: header, then a sample per value */
static void
put_pmcd_metric(struct scrape *sc, const struct pitem *it,
    const pmValueSet *vset, const struct timespec *ts)
{
	struct buf		*b = &sc->out;
	struct scrape_meta	 mt;
	struct pmcd_indom	 pi;
	const char		*suffix;
	char			*oneline, *labels;
	int			 have_pi = 0;

	memset(&pi, 0, sizeof(pi));
	oneline = pmcd_text(0, it->desc.pmid, 0);
	labels = pmcd_labels(PMCD_LABELS_METRIC, it->desc.pmid,
	    it->desc.indom);
	if (it->desc.indom != PM_INDOM_NULL)
		have_pi = pmcd_indom(it->desc.indom, &pi, 0) >= 0;
	mt.name = it->name;
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
		int		 first = 1;

		if (get_value(it->desc.type, vset, i, &v) == -1)
			continue;
		scrape_name(b, it->name);
		buf_puts(b, suffix);
		put_json_labels(b, &first, labels ? labels : "{}");
		if (it->desc.indom != PM_INDOM_NULL) {
			snprintf(id, sizeof(id), "%d", vset->vlist[i].inst);
			nm = have_pi ? inst_name(&pi, vset->vlist[i].inst) :
			    NULL;
			scrape_label(b, &first, "instname", nm ? nm : id,
			    strlen(nm ? nm : id));
			scrape_label(b, &first, "instid", id, strlen(id));
		}
		buf_puts(b, first ? " " : "} ");
		scrape_value(b, it->desc.type, &v, sc->om);
		scrape_time(sc, ts);
		buf_putc(b, '\n');
	}
	if (have_pi)
		pmcd_indom_free(&pi);
	free(labels);
	free(oneline);
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
		    res->vset[i]->numval > 0)
			put_pmcd_metric(sc, &items[i], res->vset[i], &ts);
	pmFreeResult(res);
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
		if (!numeric(items[k].desc.type))
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
