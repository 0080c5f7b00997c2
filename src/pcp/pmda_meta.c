/* SPDX-License-Identifier: MIT */
/*
 * pmda_meta.c - the PMDA callbacks that say what there is: a metric's
 * descriptor, help text and labels, an instance domain's instances, and
 * the dynamic namespace (name -> pmid, pmid -> name, children), all
 * answered from the registry's current generation (reg_acquire), domain
 * 151 only. pmda_fetch.c and pmda_store.c find their metrics through
 * pmda_meta_metric(); it calls pmda_ctx.c for who is asking.
 *
 * Threads: the PMDA thread alone; the previous help text (libpcp_pmda
 * does not free it) is kept in pmda_cb. Registry generations and
 * snapshots are immutable and reference counted: no lock is taken here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bt_limits.h"
#include "daemon.h"
#include "pmda_int.h"
#include "registry.h"

/* ---- our metrics (domain 151) by pmid or name ---- */

struct metric *
pmda_meta_metric(struct ns *ns, pmID pmid)
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

/* ---- metadata ---- */

int
pmda_meta_desc(pmID pmid, pmDesc *d, pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(pmda_cb.ds->reg);
	struct metric	*m = pmda_meta_metric(ns, pmid);

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

int
pmda_meta_text(int ident, int type, char **buffer, pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(pmda_cb.ds->reg);
	const char	*t = NULL;
	int		 help = (type & PM_TEXT_HELP) != 0;

	if (type & PM_TEXT_PMID) {
		struct metric	*m = pmda_meta_metric(ns, (pmID)ident);

		if (m)
			t = help ? m->m_help : m->m_oneline;
	} else if (type & PM_TEXT_INDOM) {
		struct indom	*in = ns_indom(ns, (pmInDom)ident);

		if (in)
			t = help ? in->i_help : in->i_oneline;
	}
	free(pmda_cb.text);
	pmda_cb.text = t && *t ? strdup(t) : NULL;
	ns_release(ns);
	if (pmda_cb.text == NULL)
		return PM_ERR_TEXT;
	*buffer = pmda_cb.text;
	return 0;
}

int
pmda_meta_instance(pmInDom indom, int inst, char *name, pmInResult **resp,
    pmdaExt *pe)
{
	struct ns		*ns = reg_acquire(pmda_cb.ds->reg);
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
	if ((rd = pmda_ctx_reader(pe->e_context, &rdb)) == NULL) {
		ns_release(ns);
		return -ENOMEM;
	}
	s = in->i_src ? source_snap(in->i_src) : NULL;
	/* --auth-reads: a script's map keys are its data */
	il = access_indom(pmda_cb.ds->cfg.auth_reads, in, rd) ?
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

int
pmda_meta_label(int ident, int type, pmLabelSet **lp, pmdaExt *pe)
{
	struct ns	*ns;
	struct metric	*m;
	int		 rv = 0;

	switch (type) {
	case PM_LABEL_DOMAIN:
		return pmdaAddLabels(lp, "{\"agent\":\"bpftrace\"}") < 0 ?
		    PM_ERR_GENERIC : 1;
	case PM_LABEL_ITEM:
		ns = reg_acquire(pmda_cb.ds->reg);
		if ((m = pmda_meta_metric(ns, (pmID)ident)) != NULL &&
		    m->m_labels && m->m_labels[0])
			rv = pmdaAddLabels(lp, "{%s}", m->m_labels) < 0 ?
			    PM_ERR_GENERIC : 1;
		ns_release(ns);
		return rv;
	default:
		return 0;
	}
}

/* ---- dynamic PMNS, answered from the current generation ---- */

int
pmda_meta_pmid(const char *name, pmID *pmid, pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(pmda_cb.ds->reg);
	struct metric	*m = metric_named(ns, name);

	if (m)
		*pmid = m->m_pmid;
	ns_release(ns);
	return m ? 0 : PM_ERR_NAME;
}

int
pmda_meta_name(pmID pmid, char ***names, pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(pmda_cb.ds->reg);
	struct metric	*m = pmda_meta_metric(ns, pmid);
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

int
pmda_meta_children(const char *name, int traverse, char ***kids, int **status,
    pmdaExt *pe)
{
	struct ns	*ns = reg_acquire(pmda_cb.ds->reg);
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

