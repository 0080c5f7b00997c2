/* SPDX-License-Identifier: MIT */
/*
 * pmcd_labels.c - labels and instance domains from pmcd: a metric's or an
 * indom's label sets merged the way pmproxy shows them, the same sets
 * level by level for /metrics, and the instances of an indom (with the
 * labels pmproxy 6.0.3 lists for each). Each is one operation that
 * pmcd_run() (pmcd.c) runs on a pooled context; merged labels are kept in
 * pmcd_cache.c, instances never.
 *
 * Threads: any request thread; no state of its own (pmcd.c's pool and
 * pmcd_cache.c's cache hold their locks, never both).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_limits.h"
#include "pcp.h"
#include "pmcd_int.h"

/* ---- labels, merged the way pmproxy shows them ---- */

#define LS_MAX	8

struct op_labels {
	int		 kind;		/* PMCD_LABELS_* */
	pmID		 pmid;
	pmInDom		 indom;
	char		*json;
	/* instances */
	int		 ninst;
	pmLabelSet	*inst;
	pmLabelSet	*base[LS_MAX];
	int		 nbase[LS_MAX];
	int		 nsets;
};

static void
labels_free(struct op_labels *o)
{
	for (int i = 0; i < o->nsets; i++)
		if (o->base[i])
			pmFreeLabelSets(o->base[i], o->nbase[i]);
	if (o->inst)
		pmFreeLabelSets(o->inst, o->ninst);
	o->nsets = 0;
	o->inst = NULL;
}

/* note labels (optional, e.g. sample's "changed") are left out */
static int
no_notes(const pmLabel *label, const char *json, void *arg)
{
	(void)json;
	(void)arg;
	return (label->flags & PM_LABEL_OPTIONAL) == 0;
}

static int
merge(pmLabelSet **sets, int n, char **out)
{
	char	 buf[PM_MAXLABELJSONLEN];
	int	 rc;

	if ((rc = pmMergeLabelSets(sets, n, buf, sizeof(buf), no_notes,
	    NULL)) < 0)
		return rc;
	if ((*out = strdup(rc > 0 ? buf : "{}")) == NULL)
		return -ENOMEM;
	return 0;
}

static int
op_labels(void *arg)
{
	struct op_labels	*o = arg;
	pmLabelSet		*sets[LS_MAX];
	int			 rc, n = 0;

	labels_free(o);
#define ADD(call) do { \
		if ((rc = (call)) < 0 && pmcd_conn_error(rc)) \
			return rc; \
		o->nbase[o->nsets] = rc > 0 ? rc : 0; \
		o->nsets++; \
	} while (0)
	ADD(pmGetContextLabels(&o->base[o->nsets]));
	if (o->kind == PMCD_LABELS_CONTEXT)
		goto merged;
	ADD(pmGetDomainLabels(o->kind == PMCD_LABELS_METRIC ?
	    (int)pmID_domain(o->pmid) : (int)pmInDom_domain(o->indom),
	    &o->base[o->nsets]));
	if (o->kind != PMCD_LABELS_INSTANCES && o->indom != PM_INDOM_NULL)
		ADD(pmGetInDomLabels(o->indom, &o->base[o->nsets]));
	if (o->kind == PMCD_LABELS_METRIC) {
		ADD(pmGetClusterLabels(o->pmid, &o->base[o->nsets]));
		ADD(pmGetItemLabels(o->pmid, &o->base[o->nsets]));
	}
#undef ADD
	if (o->kind == PMCD_LABELS_INSTANCES)
		return 0;	/* the caller merges per instance */
merged:
	for (int i = 0; i < o->nsets; i++)
		if (o->nbase[i] > 0 && o->base[i])
			sets[n++] = o->base[i];
	return merge(sets, n, &o->json);
}

/* the merged labels of a metric or an indom, as a JSON object text */
char *
pmcd_labels(int kind, pmID pmid, pmInDom indom)
{
	struct op_labels	 o = { .kind = kind, .pmid = pmid,
				    .indom = indom };
	char			 key[64];
	char			*v;

	snprintf(key, sizeof(key), "l:%d:%u:%u", kind, (unsigned)pmid,
	    (unsigned)indom);
	if ((v = pmcd_cache_get(key, NULL)) != NULL)
		return v;
	if (pmcd_run(op_labels, &o) < 0 || o.json == NULL) {
		labels_free(&o);
		return strdup("{}");
	}
	labels_free(&o);
	pmcd_cache_put(key, o.json, strlen(o.json), PMCD_CACHE_MS);
	return o.json;
}

/* ---- labels level by level, unmerged (pmproxy's /metrics) ---- */

#define LV_CONTEXT	0
#define LV_INDOM	1
#define LV_ITEM		2

struct op_level {
	int		 level;		/* LV_* */
	pmID		 pmid;
	pmInDom		 indom;
	char		*json;
};

/* one label set as its JSON object text ("{}" without labels) */
static char *
set_json(const pmLabelSet *ls, int n)
{
	if (n <= 0 || ls == NULL || ls->nlabels <= 0 || ls->json == NULL)
		return strdup("{}");
	return strndup(ls->json, (size_t)ls->jsonlen);
}

static int
op_level(void *arg)
{
	struct op_level	*o = arg;
	pmLabelSet	*ls = NULL;
	int		 rc;

	switch (o->level) {
	case LV_CONTEXT: rc = pmGetContextLabels(&ls); break;
	case LV_INDOM:	 rc = pmGetInDomLabels(o->indom, &ls); break;
	default:	 rc = pmGetItemLabels(o->pmid, &ls); break;
	}
	if (rc < 0 && pmcd_conn_error(rc))
		return rc;
	o->json = set_json(ls, rc);
	if (ls)
		pmFreeLabelSets(ls, rc);
	return o->json ? 0 : -ENOMEM;
}

/* one level's set (cached), or NULL with *rc PMCD_ECONN or -ENOMEM */
static char *
level_json(int level, pmID pmid, pmInDom indom, int *rc)
{
	struct op_level	 o = { .level = level, .pmid = pmid, .indom = indom };
	char		 key[64], *v;

	snprintf(key, sizeof(key), "v:%d:%u:%u", level, (unsigned)pmid,
	    (unsigned)indom);
	if ((v = pmcd_cache_get(key, NULL)) != NULL)
		return v;
	if ((*rc = pmcd_run(op_level, &o)) < 0 || o.json == NULL) {
		free(o.json);
		*rc = *rc == PMCD_ECONN ? PMCD_ECONN : -ENOMEM;
		return NULL;
	}
	pmcd_cache_put(key, o.json, strlen(o.json), PMCD_CACHE_MS);
	return o.json;
}

struct op_instlabels {
	pmInDom		 indom;
	pmLabelSet	*sets;
	int		 n;
};

static int
op_instlabels(void *arg)
{
	struct op_instlabels	*o = arg;
	int			 rc;

	rc = pmGetInstancesLabels(o->indom, &o->sets);
	if (rc < 0 && pmcd_conn_error(rc))
		return rc;
	o->n = rc > 0 ? rc : 0;
	return 0;
}

void
pmcd_levels_free(struct pmcd_levels *lv)
{
	free(lv->context);
	free(lv->indom);
	free(lv->item);
	for (int i = 0; lv->inst && i < lv->ninst; i++)
		free(lv->inst[i]);
	free(lv->inst);
	free(lv->inst_ids);
	memset(lv, 0, sizeof(*lv));
}

/*
 * A metric's label sets as pmproxy's /metrics sees them: the context's,
 * the indom's, the item's (note labels too) and each instance's own;
 * not the agent's (domain) or the cluster's, which pmproxy's scrape
 * context has not loaded. 0, PMCD_ECONN or -ENOMEM.
 */
int
pmcd_label_levels(pmID pmid, pmInDom indom, struct pmcd_levels *lv)
{
	struct op_instlabels	 oi = { .indom = indom };
	int			 rc = -ENOMEM;

	memset(lv, 0, sizeof(*lv));
	if ((lv->context = level_json(LV_CONTEXT, PM_ID_NULL,
	    PM_INDOM_NULL, &rc)) == NULL ||
	    (lv->item = level_json(LV_ITEM, pmid, PM_INDOM_NULL, &rc)) ==
	    NULL)
		goto fail;
	if (indom == PM_INDOM_NULL)
		return 0;
	if ((lv->indom = level_json(LV_INDOM, PM_ID_NULL, indom, &rc)) ==
	    NULL)
		goto fail;
	if ((rc = pmcd_run(op_instlabels, &oi)) < 0) {
		rc = rc == PMCD_ECONN ? PMCD_ECONN : -ENOMEM;
		goto fail;
	}
	rc = -ENOMEM;
	if ((lv->inst = calloc((size_t)oi.n + 1, sizeof(char *))) == NULL ||
	    (lv->inst_ids = calloc((size_t)oi.n + 1, sizeof(int))) == NULL)
		goto fail;
	for (int i = 0; i < oi.n; i++, lv->ninst++) {
		lv->inst_ids[i] = oi.sets[i].inst;
		if ((lv->inst[i] = set_json(&oi.sets[i], 1)) == NULL)
			goto fail;
	}
	pmFreeLabelSets(oi.sets, oi.n);
	return 0;
fail:
	if (oi.sets)
		pmFreeLabelSets(oi.sets, oi.n);
	pmcd_levels_free(lv);
	return rc;
}

/* ---- instance domains ---- */

struct op_indom {
	pmInDom	 indom;
	int	 n;
	int	*ids;
	char	**names;
};

static int
op_indom(void *arg)
{
	struct op_indom	*o = arg;

	return o->n = pmGetInDom(o->indom, &o->ids, &o->names);
}

void
pmcd_indom_free(struct pmcd_indom *pi)
{
	for (int i = 0; pi->pi_labels && i < pi->pi_n; i++)
		free(pi->pi_labels[i]);
	free(pi->pi_labels);
	free(pi->pi_ids);
	free(pi->pi_names);
	memset(pi, 0, sizeof(*pi));
}

/*
 * The instances of indom, with each one's labels when labels is set:
 * the context's and the agent's merged, which is what pmproxy 6.0.3
 * lists for every instance (it leaves the instance's own labels out).
 */
int
pmcd_indom(pmInDom indom, struct pmcd_indom *pi, int labels)
{
	struct op_indom		 o = { .indom = indom };
	struct op_labels	 ol = { .kind = PMCD_LABELS_INSTANCES,
				    .indom = indom };
	int			 rc;

	memset(pi, 0, sizeof(*pi));
	if (pmInDom_domain(indom) == BT_DOMAIN)
		return PM_ERR_INDOM;
	if ((rc = pmcd_run(op_indom, &o)) < 0)
		return rc;
	pi->pi_n = o.n;
	pi->pi_ids = o.ids;
	pi->pi_names = o.names;
	if (!labels)
		return 0;
	if ((pi->pi_labels = calloc((size_t)o.n + 1, sizeof(char *))) == NULL)
		return -ENOMEM;
	if (pmcd_run(op_labels, &ol) < 0)
		labels_free(&ol);
	for (int i = 0; i < o.n; i++) {
		pmLabelSet	*sets[LS_MAX + 1];
		int		 n = 0;

		for (int k = 0; k < ol.nsets; k++)
			if (ol.nbase[k] > 0 && ol.base[k])
				sets[n++] = ol.base[k];
		if (merge(sets, n, &pi->pi_labels[i]) < 0)
			pi->pi_labels[i] = NULL;
	}
	labels_free(&ol);
	return 0;
}
