/* SPDX-License-Identifier: MIT */
/*
 * api_passthru.c - the metrics of one /pmapi request that pmcd serves:
 * looked up once (pc_by_name, pc_by_pmid), kept in the request's batch
 * (a_pcb) and fetched together, PMCD_FETCH_MAX at a time. Also which
 * local metric pmcd's own one hides (pmcd.* while pmcd is up).
 * Threads: runs in HTTP workers; pmcd.c holds its own lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "pcp.h"
#include "registry.h"

/* --- metrics read from pmcd (pmcd.c): per-request batch --- */

#define PMCD_OWN_DOMAIN	2	/* pmcd's own PMDA: pmcd.* */

/* the pcitems of one request (struct pcitem: api.h) */
struct pcbatch {
	size_t		 n, cap;
	struct pcitem	**v;
};

int
api_pcmode(struct api *a)
{
	if (a->a_pcmode < 0)
		a->a_pcmode = pmcd_mode();
	return a->a_pcmode;
}

/* a local metric pmcd serves instead: ours are kept for when it is gone */
int
api_pc_hides(struct api *a, const struct metric *m)
{
	return m && pmID_domain(m->m_pmid) == PMCD_OWN_DOMAIN &&
	    api_pcmode(a) == PMCD_UP;
}

struct metric *
api_local_by_name(struct api *a, const char *name)
{
	struct metric	*m = ns_metric_by_name(a->a_ns, name);

	return api_pc_hides(a, m) ? NULL : m;
}

struct metric *
api_local_by_pmid(struct api *a, pmID pmid)
{
	struct metric	*m = ns_metric_by_pmid(a->a_ns, pmid);

	return api_pc_hides(a, m) ? NULL : m;
}

static void
pcitem_free(struct pcitem *it)
{
	for (int i = 0; i < it->nstrs; i++)
		free(it->strs[i]);
	free(it->strs);
	free(it->inst);
	free(it->vals);
	free(it->name);
	free(it);
}

void
api_pcbatch_free(struct pcbatch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		pcitem_free(b->v[i]);
	free(b->v);
	free(b);
}

static struct pcitem *
pc_add(struct api *a, char *name, const pmDesc *desc)
{
	struct pcbatch	*b = a->a_pcb;
	struct pcitem	*it, **nv;

	if (b == NULL && (b = a->a_pcb = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 8;
		if ((nv = realloc(b->v, b->cap * sizeof(*nv))) == NULL)
			return NULL;
		b->v = nv;
	}
	if ((it = calloc(1, sizeof(*it))) == NULL)
		return NULL;
	it->name = name;
	it->pmid = desc->pmid;
	it->desc = *desc;
	it->m.m_name = it->name;
	it->m.m_pmid = desc->pmid;
	it->m.m_indom = desc->indom;
	atomic_init(&it->m.m_tword, (uint32_t)(uint16_t)desc->type);
	it->m.m_sem = desc->sem;
	it->m.m_units = desc->units;
	it->m.m_slot = -1;
	b->v[b->n++] = it;
	return it;
}

void
api_pc_failed(struct api *a, int rc)
{
	if (rc == PMCD_ECONN)
		a->a_pcerr = 1;
}

/* a metric bpftraced does not own, from pmcd; NULL: none (a_pcerr) */
struct pcitem *
api_pc_by_name(struct api *a, const char *name)
{
	pmDesc	 desc;
	pmID	 pmid;
	char	*copy;
	int	 rc;

	for (size_t i = 0; a->a_pcb && i < a->a_pcb->n; i++)
		if (strcmp(a->a_pcb->v[i]->name, name) == 0)
			return a->a_pcb->v[i];
	if (api_pcmode(a) == PMCD_NONE || pmcd_owned_name(name))
		return NULL;
	if ((rc = pmcd_lookup(name, &pmid, &desc)) < 0) {
		api_pc_failed(a, rc);
		return NULL;
	}
	if ((copy = strdup(name)) == NULL)
		return NULL;
	return pc_add(a, copy, &desc);
}

struct pcitem *
api_pc_by_pmid(struct api *a, pmID pmid)
{
	pmDesc	 desc;
	char	*name;
	int	 rc;

	for (size_t i = 0; a->a_pcb && i < a->a_pcb->n; i++)
		if (a->a_pcb->v[i]->pmid == pmid)
			return a->a_pcb->v[i];
	if (api_pcmode(a) == PMCD_NONE)
		return NULL;
	if ((rc = pmcd_lookup_pmid(pmid, &name, &desc)) < 0) {
		api_pc_failed(a, rc);
		return NULL;
	}
	return pc_add(a, name, &desc);
}

static void
pc_store_values(struct pcitem *it, const pmValueSet *vset)
{
	int	 n = vset->numval;

	it->fetched = 1;
	if (n < 0) {
		it->vs.vs_err = n;
		return;
	}
	it->inst = calloc((size_t)n + 1, sizeof(*it->inst));
	it->vals = calloc((size_t)n + 1, sizeof(*it->vals));
	it->strs = calloc((size_t)n + 1, sizeof(*it->strs));
	if (it->inst == NULL || it->vals == NULL || it->strs == NULL) {
		it->vs.vs_err = -ENOMEM;
		return;
	}
	for (int i = 0; i < n; i++) {
		pmAtomValue	 av;
		int		 t = it->desc.type;

		it->inst[i] = (uint32_t)vset->vlist[i].inst;
		memset(&av, 0, sizeof(av));
		if (t < PM_TYPE_32 || t > PM_TYPE_STRING ||
		    pmExtractValue(vset->valfmt, &vset->vlist[i], t, &av,
		    t) < 0) {
			it->vals[i].u = 0;
			continue;
		}
		switch (t) {
		case PM_TYPE_32:	it->vals[i].i = av.l; break;
		case PM_TYPE_U32:	it->vals[i].u = av.ul; break;
		case PM_TYPE_64:	it->vals[i].i = av.ll; break;
		case PM_TYPE_U64:	it->vals[i].u = av.ull; break;
		case PM_TYPE_FLOAT:	it->vals[i].d = av.f; break;
		case PM_TYPE_DOUBLE:	it->vals[i].d = av.d; break;
		case PM_TYPE_STRING:
			it->strs[it->nstrs++] = av.cp;
			it->vals[i].s = av.cp;
			break;
		}
	}
	it->vs.vs_n = n;
	/* a singular metric has one value, instance PM_IN_NULL */
	it->vs.vs_inst = it->desc.indom == PM_INDOM_NULL ? NULL : it->inst;
	it->vs.vs_vals = it->vals;
}

/* the values of res for the unfetched items among v[0..n) */
static void
pc_take(struct pcitem **v, size_t n, const pmResult *res, int rc)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i]->fetched)
			continue;
		v[i]->fetched = 1;
		if (rc < 0) {
			v[i]->vs.vs_err = rc;
			continue;
		}
		for (int k = 0; k < res->numpmid; k++)
			if (res->vset[k]->pmid == v[i]->pmid) {
				pc_store_values(v[i], res->vset[k]);
				break;
			}
	}
}

/*
 * pmFetch every item of the batch not fetched yet, PMCD_FETCH_MAX pmids
 * at a time (a longer request PDU makes pmcd drop the connection). An
 * item fetched with no value keeps vs_n 0: pmproxy lists it with an
 * empty "instances".
 */
void
api_pc_fetch(struct api *a)
{
	struct pcbatch	*b = a->a_pcb;
	pmResult	*res;
	pmID		 pmids[PMCD_FETCH_MAX];
	size_t		 from = 0, i;
	int		 n, rc;

	while (b != NULL && from < b->n) {
		for (n = 0, i = from; i < b->n && n < PMCD_FETCH_MAX; i++)
			if (!b->v[i]->fetched)
				pmids[n++] = b->v[i]->pmid;
		if (n > 0) {
			if ((rc = pmcd_fetch(n, pmids, &res)) < 0)
				api_pc_failed(a, rc);
			pc_take(b->v + from, i - from, res, rc);
			if (rc >= 0)
				pmFreeResult(res);
		}
		from = i;
	}
}

/* pmproxy's answer when pmcd failed under this request */
int
api_pc_error(struct api *a, int with_ctx)
{
	return api_error(a, 400, with_ctx, pmcd_error_code(), "%s",
	    pmcd_error_text());
}
