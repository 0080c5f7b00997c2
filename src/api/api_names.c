/* SPDX-License-Identifier: MIT */
/*
 * api_names.c - the /pmapi commands about names: metric (descriptors),
 * indom (instances, with the instance filters), children (the namespace
 * one level down) and profile (the context's instance profile); and
 * which derived metric of the context a name means now.
 * Threads: runs in HTTP workers; reads immutable registry generations.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH	8
#include <pcre2.h>

#include "api.h"

#include "bt_limits.h"
#include "buf.h"
#include "pcp.h"
#include "registry.h"
#include "seriesid.h"
#include "util.h"

/* --- derived metrics: the context's set, bound to the current namespace --- */

const struct metric *
api_derive_find(void *arg, const char *name)
{
	struct api		*a = arg;
	const struct metric	*m = api_local_by_name(a, name);
	struct pcitem		*it;

	if (m == NULL && (it = api_pc_by_name(a, name)) != NULL)
		m = &it->m;	/* a pmcd metric is an operand too */
	return m;
}


/*
 * A derived metric of this context that is visible under name now: not
 * shadowed by a real metric (those win, as in libpcp), registered without
 * a semantic error, and with every operand present and consistent. With
 * boundp, the caller gets the bound tree to free.
 */
const struct dmetric *
api_derived_visible(struct api *a, const char *name, struct ddesc *desc,
    struct dexpr **boundp)
{
	const struct dmetric	*dm;
	struct dexpr		*bound;
	struct ddesc		 d;
	const char		*why;

	if (a->a_dset == NULL || api_local_by_name(a, name) != NULL ||
	    (dm = dset_find(a->a_dset, name)) == NULL || dm->dm_dead)
		return NULL;
	if (derive_bind_text(dm, api_derive_find, a, &bound, &d, &why) != 0)
		return NULL;
	if (desc)
		*desc = d;
	if (boundp)
		*boundp = bound;
	else
		derive_free(bound);
	return dm;
}

/* name is a strict prefix (a non-leaf) of some visible derived metric */
static int
derived_nonleaf(struct api *a, const char *name)
{
	size_t	 n = strlen(name);

	for (size_t i = 0; a->a_dset && i < a->a_dset->ds_n; i++) {
		const char	*dn = a->a_dset->ds_v[i]->dm_name;

		if ((n == 0 || (strncmp(dn, name, n) == 0 && dn[n] == '.')) &&
		    api_derived_visible(a, dn, NULL, NULL))
			return 1;
	}
	return 0;
}

/* --- metric --- */

/* ,"text-oneline":...,"text-help":... of a metric or indom answer */
static void
put_texts(struct buf *b, const char *oneline, const char *help)
{
	buf_puts(b, ",\"text-oneline\":");
	json_str(b, oneline);
	buf_puts(b, ",\"text-help\":");
	json_str(b, help);
}

/*
 * What the three descriptor writers share: the head of one metric's
 * object, from its name to its labels, with the series id (the hash of
 * name, type, semantics, units and the labels text) filled in. The
 * caller adds its texts and the closing brace.
 */
struct desc_head {
	const char	*dh_name;
	pmID		 dh_pmid;
	int		 dh_derived;	/* a derived pmid (api_put_dpmid) */
	pmInDom		 dh_indom;
	int		 dh_type, dh_sem;
	const pmUnits	*dh_units;
	const char	*dh_labels;	/* written as they are, or NULL: */
	const char	*dh_agent;	/* api_put_labels(agent, extra) */
	const char	*dh_extra;
};

static void
put_desc(struct api *a, const struct desc_head *d)
{
	struct buf	*b = &a->a_out;
	char		 units[64];
	size_t		 slot, lab;

	buf_puts(b, "{\"name\":");
	json_str(b, d->dh_name);
	buf_puts(b, ",\"series\":\"");
	slot = seriesid_slot(b);
	buf_puts(b, "\",\"pmid\":");
	if (d->dh_derived)
		api_put_dpmid(a, d->dh_pmid);
	else
		api_put_pmid(a, d->dh_pmid);
	if (d->dh_indom != PM_INDOM_NULL) {
		buf_puts(b, ",\"indom\":");
		api_put_indom(a, d->dh_indom);
	}
	bt_units_str(d->dh_units, units, sizeof(units));
	buf_printf(b, ",\"type\":\"%s\",\"sem\":\"%s\",\"units\":\"%s\","
	    "\"labels\":", bt_type_str(d->dh_type), bt_sem_str(d->dh_sem),
	    units);
	lab = b->b_len;
	if (d->dh_labels)
		buf_puts(b, d->dh_labels);
	else
		api_put_labels(a, d->dh_agent, d->dh_extra);
	seriesid_fill(b, slot, lab, d->dh_name, d->dh_type, d->dh_sem,
	    d->dh_units);
}

static void
put_metric(struct api *a, const struct metric *m)
{
	struct buf	*b = &a->a_out;

	put_desc(a, &(struct desc_head){ .dh_name = m->m_name,
	    .dh_pmid = m->m_pmid, .dh_indom = m->m_indom,
	    .dh_type = metric_describe(m),	/* a client may cache it now */
	    .dh_sem = m->m_sem, .dh_units = &m->m_units,
	    .dh_agent = "bpftrace", .dh_extra = m->m_labels });
	put_texts(b, m->m_oneline, m->m_help);
	buf_putc(b, '}');
}

/* pmproxy's answer for a derived metric: no agent label, no help text */
static void
put_derived(struct api *a, const struct dmetric *dm, const struct ddesc *d)
{
	put_desc(a, &(struct desc_head){ .dh_name = dm->dm_name,
	    .dh_pmid = dm->dm_pmid, .dh_derived = 1, .dh_indom = d->dd_indom,
	    .dh_type = d->dd_type, .dh_sem = d->dd_sem,
	    .dh_units = &d->dd_units });
	buf_puts(&a->a_out, ",\"text-oneline\":\"\",\"text-help\":\"\"}");
}

/* the visible derived metrics named name or below it, in registration order */
static size_t
put_derived_tree(struct api *a, const char *name, size_t *count)
{
	size_t	 n = strlen(name), put = 0;

	for (size_t i = 0; a->a_dset && i < a->a_dset->ds_n; i++) {
		const struct dmetric	*dm = a->a_dset->ds_v[i];
		struct ddesc		 d;

		if (n && strcmp(dm->dm_name, name) != 0 &&
		    (strncmp(dm->dm_name, name, n) != 0 ||
		    dm->dm_name[n] != '.'))
			continue;
		if (api_derived_visible(a, dm->dm_name, &d, NULL) == NULL)
			continue;
		if ((*count)++)
			buf_putc(&a->a_out, ',');
		put_derived(a, dm, &d);
		put++;
	}
	return put;
}

/* a pmcd metric, as pmproxy describes it (labels merged by pmcd.c) */
static void
put_pmcd_metric(struct api *a, const char *name, const pmDesc *desc)
{
	struct buf	*b = &a->a_out;
	char		*labels, *oneline, *help;

	labels = pmcd_labels(PMCD_LABELS_METRIC, desc->pmid, desc->indom);
	oneline = pmcd_text(0, desc->pmid, 0);
	help = pmcd_text(0, desc->pmid, 1);
	put_desc(a, &(struct desc_head){ .dh_name = name,
	    .dh_pmid = desc->pmid, .dh_indom = desc->indom,
	    .dh_type = desc->type, .dh_sem = desc->sem,
	    .dh_units = &desc->units, .dh_labels = labels ? labels : "{}" });
	put_texts(b, oneline, help && *help ? help : oneline);
	buf_putc(b, '}');
	free(labels);
	free(oneline);
	free(help);
}

/* pmcd's metrics at or below name (after ours): how many were listed */
static size_t
put_pmcd_tree(struct api *a, const char *name, size_t *count)
{
	char	**names;
	size_t	 n, put = 0;
	pmDesc	 desc;
	pmID	 pmid;
	int	 rc;

	if (api_pcmode(a) == PMCD_NONE || pmcd_owned_name(name))
		return 0;
	if ((rc = pmcd_traverse(name, &names, &n)) < 0) {
		api_pc_failed(a, rc);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (api_local_by_name(a, names[i]) != NULL)
			continue;	/* ours wins */
		if ((rc = pmcd_lookup(names[i], &pmid, &desc)) < 0) {
			api_pc_failed(a, rc);
			if (rc == PMCD_ECONN)
				break;
			continue;
		}
		if ((*count)++)
			buf_putc(&a->a_out, ',');
		put_pmcd_metric(a, names[i], &desc);
		put++;
	}
	pmcd_names_free(names, n);
	return put;
}

/* Every metric at or below name; 0 when there is none. */
static size_t
put_metric_tree(struct api *a, const char *name, size_t *count)
{
	struct metric	*m;
	size_t		 lo, n, put = 0;

	if ((m = api_local_by_name(a, name)) != NULL) {
		if ((*count)++)
			buf_putc(&a->a_out, ',');
		put_metric(a, m);	/* a leaf traverses to itself */
		return 1;
	}
	n = ns_prefix_range(a->a_ns, name, &lo);
	for (size_t i = lo; i < lo + n; i++) {
		if (api_pc_hides(a, a->a_ns->ns_by_name[i]))
			continue;
		if ((*count)++)
			buf_putc(&a->a_out, ',');
		put_metric(a, a->a_ns->ns_by_name[i]);
		put++;
	}
	put += put_derived_tree(a, name, count);
	return put + put_pmcd_tree(a, name, count);
}

/* names= (or a name= list): each name traversed, unknown ones flagged */
static int
metric_names(struct api *a, const char *names)
{
	char		**list;
	size_t		 n, count = 0;

	if ((list = api_split_list(names, &n, a->a_ds->cfg.max_names)) == NULL)
		return api_too_many_names(a);
	for (size_t i = 0; i < n; i++) {
		a->a_pcerr = 0;
		if (put_metric_tree(a, list[i], &count) > 0)
			continue;
		buf_puts(&a->a_out, count++ ? ",{\"name\":" : "{\"name\":");
		json_str(&a->a_out, list[i]);
		buf_puts(&a->a_out, ",\"message\":");
		/* pmcd unreachable: its error for this name, pmproxy's text */
		json_str(&a->a_out, a->a_pcerr ? pmcd_error_text() :
		    "Unknown metric name");
		buf_puts(&a->a_out, ",\"success\":false}");
	}
	api_free_list(list);
	buf_puts(&a->a_out, "]}");
	return api_send_out(a, 200);
}

int
api_run_metric(struct api *a)
{
	const char	*prefix = api_param(a, "prefix");
	const char	*names = api_param(a, "names");
	const char	*name = api_param(a, "name");
	const char	*p;
	size_t		 count = 0;

	if (prefix == NULL && names == NULL && name != NULL &&
	    strchr(name, ',') != NULL)
		names = name;		/* 6.0.3 splits name= like names= */
	if (prefix == NULL && names != NULL && *names != '\0' &&
	    strchr(names, ',') == NULL)
		name = names, names = NULL;	/* one name: as name= */
	p = prefix ? prefix : (names ? NULL : (name ? name : ""));
	api_put_head(a);
	buf_puts(&a->a_out, ",\"metrics\":[");
	if (p == NULL)
		return metric_names(a, names);
	if (put_metric_tree(a, p, &count) == 0 && *p) {
		if (a->a_pcerr)		/* pmcd is gone: pmproxy's error */
			return api_pc_error(a, 1);
		/*
		 * pmwebd traverses an unknown prefix to an empty list (the
		 * 2019 datasource asks _metric?prefix= once per metric and
		 * treats an error as fatal); pmproxy refuses it.
		 */
		if (API_PMWEBD(a) && prefix != NULL) {
			buf_reset(&a->a_out);
			api_put_head(a);
			buf_puts(&a->a_out, ",\"metrics\":[]}");
			return api_send_out(a, 200);
		}
		return api_error(a, 400, 1, PM_ERR_NAME, "%s traversal failed "
		    "- Unknown metric name", p);
	}
	buf_puts(&a->a_out, "]}");
	return api_send_out(a, 200);
}

/* --- instance filters shared by indom and profile --- */

enum match_mode { MATCH_EXACT, MATCH_GLOB, MATCH_REGEX };

/*
 * match=regex patterns come from clients, so they go to PCRE2 with every
 * limit set (pattern length and nesting at compile; backtracking steps,
 * recursion depth and heap at match), never to glibc regcomp(), which has
 * no limits: "((.{255}){255}){255}" costs it seconds and gigabytes.
 */
#define RE_MAX_NEST		32	/* nested parentheses */
#define RE_DEPTH_LIMIT		1000
#define RE_HEAP_LIMIT_KB	1024

struct instfilter {
	int		 f_active;
	char		**f_ids;
	size_t		 f_nids;
	char		**f_names;
	size_t		 f_nnames;
	enum match_mode	 f_mode;
	pcre2_code	**f_re;
	size_t		 f_nre;
	pcre2_match_context *f_mctx;
	pcre2_match_data *f_md;
	int		 f_err;		/* a match passed a limit */
};

static void
filter_free(struct instfilter *f)
{
	for (size_t i = 0; i < f->f_nre; i++)
		pcre2_code_free(f->f_re[i]);
	free(f->f_re);
	pcre2_match_data_free(f->f_md);
	pcre2_match_context_free(f->f_mctx);
	api_free_list(f->f_ids);
	api_free_list(f->f_names);
}

/* compile f's patterns; -1 after an error answer */
static int
filter_compile(struct api *a, struct instfilter *f, int *ret)
{
	pcre2_compile_context	*cc;
	PCRE2_UCHAR		 why[160] = "out of memory";
	PCRE2_SIZE		 off = 0;
	int			 code = 0;

	cc = pcre2_compile_context_create(NULL);
	f->f_mctx = pcre2_match_context_create(NULL);
	f->f_md = pcre2_match_data_create(1, NULL);
	f->f_re = calloc(f->f_nnames, sizeof(*f->f_re));
	if (cc == NULL || f->f_mctx == NULL || f->f_md == NULL ||
	    f->f_re == NULL)
		goto fail;
	pcre2_set_max_pattern_length(cc, BT_MAX_REGEX);
	pcre2_set_parens_nest_limit(cc, RE_MAX_NEST);
	pcre2_set_match_limit(f->f_mctx,
	    (uint32_t)a->a_ds->cfg.max_regex_steps);
	pcre2_set_depth_limit(f->f_mctx, RE_DEPTH_LIMIT);
	pcre2_set_heap_limit(f->f_mctx, RE_HEAP_LIMIT_KB);
	for (; f->f_nre < f->f_nnames; f->f_nre++) {
		const char	*pat = f->f_names[f->f_nre];

		if (strlen(pat) > BT_MAX_REGEX) {
			snprintf((char *)why, sizeof(why), "longer than %d "
			    "bytes", BT_MAX_REGEX);
			goto bad;
		}
		f->f_re[f->f_nre] = pcre2_compile((PCRE2_SPTR)pat,
		    PCRE2_ZERO_TERMINATED, 0, &code, &off, cc);
		if (f->f_re[f->f_nre] == NULL) {
			pcre2_get_error_message(code, why, sizeof(why));
			goto bad;
		}
	}
	pcre2_compile_context_free(cc);
	return 0;
bad:
	*ret = api_error_inval(a, 400, 1, "%s - invalid regular expression: %s",
	    f->f_names[f->f_nre], (const char *)why);
	pcre2_compile_context_free(cc);
	filter_free(f);
	return -1;
fail:
	pcre2_compile_context_free(cc);
	filter_free(f);
	*ret = api_error(a, 503, 1, -ENOMEM, "out of memory");
	return -1;
}

/* the answer when a regex match passed a limit (f->f_err) */
static int
filter_error(struct api *a, const struct instfilter *f)
{
	(void)f;
	return api_error_inval(a, 400, 1, "invalid regular expression: "
	    "matching it costs more than %zu steps per instance name "
	    "(bpftraced limit, see --max-regex-steps)",
	    a->a_ds->cfg.max_regex_steps);
}

static int
filter_init(struct api *a, struct instfilter *f, int *ret)
{
	const char	*ids = api_param(a, "instance");
	const char	*names = api_param(a, "iname");
	const char	*match = api_param(a, "match");

	memset(f, 0, sizeof(*f));
	if (match == NULL || strcmp(match, "exact") == 0)
		f->f_mode = MATCH_EXACT;
	else if (strcmp(match, "glob") == 0)
		f->f_mode = MATCH_GLOB;
	else if (strcmp(match, "regex") == 0)
		f->f_mode = MATCH_REGEX;
	else {
		*ret = api_error_inval(a, 400, 0, "%s - invalid 'match' "
		    "parameter value", match);
		return -1;
	}
	if ((ids && (f->f_ids = api_split_list(ids, &f->f_nids,
	    a->a_ds->cfg.max_names)) == NULL) || (names && (f->f_names =
	    api_split_list(names, &f->f_nnames, a->a_ds->cfg.max_names)) ==
	    NULL)) {
		filter_free(f);
		*ret = api_error(a, 400, 1, -E2BIG, "too many instances (at "
		    "most %zu, see --max-names)", a->a_ds->cfg.max_names);
		return -1;
	}
	f->f_active = ids != NULL || names != NULL;
	if (f->f_mode == MATCH_REGEX && f->f_nnames &&
	    filter_compile(a, f, ret) == -1)
		return -1;
	return 0;
}

static int
filter_match(struct instfilter *f, uint32_t id, const char *name)
{
	int	 rc;

	if (!f->f_active)
		return 1;
	if (f->f_err)
		return 0;
	for (size_t i = 0; i < f->f_nids; i++) {
		const char	*errstr;

		if ((uint32_t)strtonum_ll(f->f_ids[i], 0, UINT32_MAX,
		    &errstr) == id && errstr == NULL)
			return 1;
	}
	for (size_t i = 0; i < f->f_nnames; i++) {
		switch (f->f_mode) {
		case MATCH_EXACT:
			if (strcmp(f->f_names[i], name) == 0)
				return 1;
			break;
		case MATCH_GLOB:
			if (fnmatch(f->f_names[i], name, 0) == 0)
				return 1;
			break;
		case MATCH_REGEX:
			rc = pcre2_match(f->f_re[i], (PCRE2_SPTR)name,
			    PCRE2_ZERO_TERMINATED, 0, 0, f->f_md, f->f_mctx);
			if (rc >= 0)
				return 1;
			if (rc != PCRE2_ERROR_NOMATCH) {
				f->f_err = 1;	/* a limit: the request fails */
				return 0;
			}
			break;
		}
	}
	return 0;
}

/*
 * indom from ?indom= or the indom of ?name=; -1 after an error answer.
 * *inp is ours, or NULL with *pcp the indom of a pmcd metric (its
 * existence is checked when its instances are read).
 */
static int
resolve_indom(struct api *a, struct indom **inp, pmInDom *pcp, int *ret,
    int profile)
{
	const char	*is = api_param(a, "indom");
	const char	*name = api_param(a, "name");
	struct metric	*m;
	struct pcitem	*pc;
	pmInDom		 id;

	*inp = NULL;
	*pcp = PM_INDOM_NULL;
	if (is) {
		if (api_parse_indom(is, &id) == 0 &&
		    (*inp = ns_indom(a->a_ns, id)) != NULL)
			return 0;
		if (api_parse_indom(is, &id) == 0 && id != PM_INDOM_NULL &&
		    pmInDom_domain(id) != BT_DOMAIN &&
		    api_pcmode(a) != PMCD_NONE) {
			*pcp = id;
			return 0;
		}
		if (profile)
			*ret = api_error(a, 400, 1, PM_ERR_INDOM,
			    "invalid profile parameters");
		else
			*ret = api_error(a, 400, 1, PM_ERR_INDOM,
			    "failed to lookup indom %s", is);
		return -1;
	}
	if (name == NULL) {
		*ret = api_error_inval(a, 400, 1, "invalid %s parameters",
		    profile ? "profile" : "indom");
		return -1;
	}
	if ((m = api_local_by_name(a, name)) == NULL) {
		struct ddesc	 d;

		/* a derived metric has its operands' instance domain */
		if (api_derived_visible(a, name, &d, NULL) != NULL) {
			if (d.dd_indom == PM_INDOM_NULL)
				goto null;
			if ((*inp = ns_indom(a->a_ns, d.dd_indom)) == NULL)
				*pcp = d.dd_indom;
			return 0;
		}
		if ((pc = api_pc_by_name(a, name)) != NULL) {
			if (pc->desc.indom == PM_INDOM_NULL)
				goto null;
			*pcp = pc->desc.indom;
			return 0;
		}
		if (a->a_pcerr)
			*ret = api_pc_error(a, 1);
		else
			*ret = api_error(a, 400, 1, PM_ERR_NAME, "%s - failed "
			    "to lookup metric", name);
		return -1;
	}
	if (m->m_indom == PM_INDOM_NULL ||
	    (*inp = ns_indom(a->a_ns, m->m_indom)) == NULL)
		goto null;
	return 0;
null:
	*ret = api_error(a, 400, 1, PM_ERR_INDOM, "%s - metric has "
	    "null indom", name);
	return -1;
}

/*
 * The instances of a pmcd indom: 0, or -1 after pmproxy's error answer
 * (an indom pmcd does not know, or pmcd gone).
 */
static int
pc_indom_failed(struct api *a, int rc, int *ret, int profile)
{
	if (rc == PMCD_ECONN) {
		a->a_pcerr = 1;
		*ret = api_pc_error(a, 1);
	} else if (profile) {
		*ret = api_error(a, 400, 1, PM_ERR_INDOM,
		    "invalid profile parameters");
	} else if (api_param(a, "indom")) {
		*ret = api_error(a, 400, 1, PM_ERR_INDOM,
		    "failed to lookup indom %s", api_param(a, "indom"));
	} else {
		*ret = api_error(a, 400, 1, PM_ERR_INDOM, "%s - metric has "
		    "null indom", api_param(a, "name"));
	}
	return -1;
}

static int
pc_indom(struct api *a, pmInDom id, struct pmcd_indom *pi, int labels,
    int *ret, int profile)
{
	int	 rc = pmcd_indom(id, pi, labels);

	if (rc >= 0)
		return 0;
	pmcd_indom_free(pi);
	return pc_indom_failed(a, rc, ret, profile);
}

/* an indom answer's head; pmproxy's compat mode (pmwebd) has no context */
static void
put_indom_head(struct api *a, pmInDom id)
{
	if (API_PMWEBD(a))
		buf_puts(&a->a_out, "{\"indom\":");
	else {
		api_put_head(a);
		buf_puts(&a->a_out, ",\"indom\":");
	}
	api_put_indom(a, id);
}

/*
 * indom= naming an instance domain pmcd does not know: pmproxy answers
 * 200 with the context's labels, no texts and no instances.
 */
static int
unknown_pcindom(struct api *a, pmInDom id, struct instfilter *f)
{
	char	*labels = pmcd_labels(PMCD_LABELS_CONTEXT, PM_ID_NULL, id);

	put_indom_head(a, id);
	buf_printf(&a->a_out, ",\"labels\":%s,\"instances\":[]}",
	    labels ? labels : "{}");
	free(labels);
	return f->f_err ? filter_error(a, f) : api_send_out(a, 200);
}

/* /indom for a pmcd instance domain: pmcd's texts and merged labels */
static int
run_pcindom(struct api *a, pmInDom id, struct instfilter *f)
{
	struct pmcd_indom	 pi;
	char			*labels, *oneline, *help;
	int			 ret, count = 0;

	if ((ret = pmcd_indom(id, &pi, 1)) < 0 && ret != PMCD_ECONN &&
	    api_param(a, "indom") != NULL) {
		pmcd_indom_free(&pi);
		ret = unknown_pcindom(a, id, f);
		filter_free(f);
		return ret;
	}
	if (ret < 0)
		pmcd_indom_free(&pi);
	if (ret < 0 && pc_indom_failed(a, ret, &ret, 0) == -1) {
		filter_free(f);
		return ret;
	}
	labels = pmcd_labels(PMCD_LABELS_INDOM, PM_ID_NULL, id);
	oneline = pmcd_text(1, id, 0);
	help = pmcd_text(1, id, 1);
	put_indom_head(a, id);
	buf_printf(&a->a_out, ",\"labels\":%s", labels ? labels : "{}");
	put_texts(&a->a_out, oneline, help && *help ? help : oneline);
	buf_puts(&a->a_out, ",\"instances\":[");
	for (int i = 0; i < pi.pi_n; i++) {
		if (!filter_match(f, (uint32_t)pi.pi_ids[i], pi.pi_names[i]))
			continue;
		buf_printf(&a->a_out, "%s{\"instance\":%u,\"name\":",
		    count++ ? "," : "", (uint32_t)pi.pi_ids[i]);
		json_str(&a->a_out, pi.pi_names[i]);
		buf_printf(&a->a_out, ",\"labels\":%s}", pi.pi_labels &&
		    pi.pi_labels[i] ? pi.pi_labels[i] : "{}");
	}
	buf_puts(&a->a_out, "]}");
	free(labels);
	free(oneline);
	free(help);
	pmcd_indom_free(&pi);
	ret = f->f_err ? filter_error(a, f) : api_send_out(a, 200);
	filter_free(f);
	return ret;
}

/* --- indom --- */

int
api_run_indom(struct api *a)
{
	struct instfilter	 f;
	struct indom		*in;
	const struct instlist	*il;
	struct snap		*s;
	pmInDom			 pcid;
	int			 ret, count = 0;

	if (resolve_indom(a, &in, &pcid, &ret, 0) == -1)
		return ret;
	if (filter_init(a, &f, &ret) == -1)
		return ret;
	if (in == NULL)
		return run_pcindom(a, pcid, &f);
	s = in->i_src ? source_snap(in->i_src) : NULL;
	/* --auth-reads: a script's map keys are its data: none listed */
	il = access_indom(a->a_ds->cfg.auth_reads, in, &a->a_rd) ?
	    snap_instances(s, in) : NULL;
	put_indom_head(a, in->i_id);
	buf_puts(&a->a_out, ",\"labels\":");
	api_put_labels(a, NULL, NULL);
	put_texts(&a->a_out, in->i_oneline, in->i_help);
	buf_puts(&a->a_out, ",\"instances\":[");
	for (int i = 0; il && i < il->il_n; i++) {
		if (!filter_match(&f, il->il_ids[i], il->il_names[i]))
			continue;
		buf_printf(&a->a_out, "%s{\"instance\":%u,\"name\":",
		    count++ ? "," : "", il->il_ids[i]);
		json_str(&a->a_out, il->il_names[i]);
		buf_puts(&a->a_out, ",\"labels\":");
		api_put_labels(a, NULL, NULL);
		buf_putc(&a->a_out, '}');
	}
	buf_puts(&a->a_out, "]}");
	snap_release(s);
	ret = f.f_err ? filter_error(a, &f) : api_send_out(a, 200);
	filter_free(&f);
	return ret;
}

/* --- children --- */

/* the context's derived metrics below prefix, after the real ones */
static void
put_derived_children(struct api *a, const char *prefix, struct buf *leaf,
    size_t *nleaf, struct buf *nonleaf, size_t *nnon)
{
	size_t	 plen = strlen(prefix);

	for (size_t i = 0; a->a_dset && i < a->a_dset->ds_n; i++) {
		const char	*name = a->a_dset->ds_v[i]->dm_name;
		const char	*comp = plen ? name + plen + 1 : name;
		size_t		 clen;
		int		 isleaf, seen = 0;
		char		*child;

		if (plen && (strncmp(name, prefix, plen) != 0 ||
		    name[plen] != '.'))
			continue;
		if (api_derived_visible(a, name, NULL, NULL) == NULL)
			continue;
		clen = strcspn(comp, ".");
		isleaf = comp[clen] == '\0';
		/* listed already: a real metric, or an earlier derived one */
		for (size_t j = 0; j < i && !seen; j++) {
			const char	*o = a->a_dset->ds_v[j]->dm_name;
			const char	*oc = plen ? o + plen + 1 : o;

			seen = (!plen || (strncmp(o, prefix, plen) == 0 &&
			    o[plen] == '.')) && strncmp(oc, comp, clen) == 0 &&
			    (oc[clen] == '\0') == isleaf &&
			    (oc[clen] == '\0' || oc[clen] == '.') &&
			    api_derived_visible(a, o, NULL, NULL) != NULL;
		}
		if (seen || (child = strndup(name, (size_t)(comp - name) +
		    clen)) == NULL)
			continue;
		if (isleaf ? ns_metric_by_name(a->a_ns, child) != NULL :
		    ns_is_nonleaf(a->a_ns, child))
			seen = 1;
		free(child);
		if (seen)
			continue;
		if (isleaf) {
			buf_puts(leaf, (*nleaf)++ ? "," : "");
			json_strn(leaf, comp, clen);
		} else {
			buf_puts(nonleaf, (*nnon)++ ? "," : "");
			json_strn(nonleaf, comp, clen);
		}
	}
}

/* a child component already listed (ours come first) */
struct seen {
	size_t		 n, cap;
	char		**v;
};

static int
seen_has(const struct seen *sn, const char *c, size_t len)
{
	for (size_t i = 0; i < sn->n; i++)
		if (strlen(sn->v[i]) == len && strncmp(sn->v[i], c, len) == 0)
			return 1;
	return 0;
}

static void
seen_add(struct seen *sn, const char *c, size_t len)
{
	char	**nv;

	if (sn->n == sn->cap) {
		sn->cap = sn->cap ? sn->cap * 2 : 16;
		if ((nv = realloc(sn->v, sn->cap * sizeof(*nv))) == NULL)
			return;
		sn->v = nv;
	}
	if ((sn->v[sn->n] = strndup(c, len)) != NULL)
		sn->n++;
}

static void
seen_free(struct seen *sn)
{
	for (size_t i = 0; i < sn->n; i++)
		free(sn->v[i]);
	free(sn->v);
}

int
api_run_children(struct api *a)
{
	const char	*prefix = api_param(a, "prefix");
	struct buf	 leaf, nonleaf;
	size_t		 lo, n, plen, nleaf = 0, nnon = 0, shown = 0;
	const char	*last = NULL;
	size_t		 lastlen = 0;
	struct seen	 sn = { 0 };
	char		**pcn = NULL;
	int		*pcs = NULL, pn = PM_ERR_NAME, known;

	if (prefix == NULL)
		prefix = "";
	plen = strlen(prefix);
	n = ns_prefix_range(a->a_ns, prefix, &lo);
	for (size_t i = lo; i < lo + n; i++)
		shown += !api_pc_hides(a, a->a_ns->ns_by_name[i]);
	known = shown > 0 || !plen || api_local_by_name(a, prefix) != NULL ||
	    derived_nonleaf(a, prefix) ||
	    api_derived_visible(a, prefix, NULL, NULL);
	/* pmcd's children of the same node, after ours */
	if (api_pcmode(a) != PMCD_NONE && !pmcd_owned_name(prefix) &&
	    api_local_by_name(a, prefix) == NULL &&
	    (pn = pmcd_children(prefix, &pcn, &pcs)) < 0)
		api_pc_failed(a, pn);
	if (!known && pn < 0)
		return a->a_pcerr ? api_pc_error(a, 1) : api_error(a, 400, 1,
		    PM_ERR_NAME, "child traversal failed - Unknown metric "
		    "name");
	api_buf_init(a, &leaf);
	api_buf_init(a, &nonleaf);
	for (size_t i = lo; i < lo + n; i++) {
		const char	*name = a->a_ns->ns_by_name[i]->m_name;
		const char	*comp = plen ? name + plen + 1 : name;
		size_t		 clen = strcspn(comp, ".");
		struct buf	*b = comp[clen] ? &nonleaf : &leaf;

		if (api_pc_hides(a, a->a_ns->ns_by_name[i]))
			continue;	/* pmcd lists its own pmcd.* */
		if (last && clen == lastlen && strncmp(comp, last, clen) == 0)
			continue;	/* same child as the previous name */
		last = comp;
		lastlen = clen;
		seen_add(&sn, comp, clen);
		buf_puts(b, (b == &leaf ? nleaf++ : nnon++) ? "," : "");
		json_strn(b, comp, clen);
	}
	put_derived_children(a, prefix, &leaf, &nleaf, &nonleaf, &nnon);
	for (int i = 0; i < pn; i++) {
		struct buf	*b = pcs[i] == PMNS_LEAF_STATUS ? &leaf : &nonleaf;

		if (seen_has(&sn, pcn[i], strlen(pcn[i])))
			continue;
		buf_puts(b, (b == &leaf ? nleaf++ : nnon++) ? "," : "");
		json_str(b, pcn[i]);
	}
	free(pcn);
	free(pcs);
	seen_free(&sn);
	api_put_head(a);
	buf_puts(&a->a_out, ",\"name\":");
	json_str(&a->a_out, prefix);
	buf_printf(&a->a_out, ",\"leaf\":[%s],\"nonleaf\":[%s]}",
	    buf_cstr(&leaf), buf_cstr(&nonleaf));
	if (leaf.b_failed || nonleaf.b_failed)
		a->a_out.b_failed = leaf.b_failed ? leaf.b_failed :
		    nonleaf.b_failed;
	buf_free(&leaf);
	buf_free(&nonleaf);
	return api_send_out(a, 200);
}

/* --- profile --- */

/* the answer to a profile change that ctx_profile_change() returned */
static int
profile_answer(struct api *a, const char *expr, enum ctx_result ret)
{
	if (ret == CTX_OK)
		return api_send_success(a);
	return api_ctx_error(a, API_CTX_PROFILE, ret, expr, 1);
}

int
api_run_profile(struct api *a)
{
	const char		*expr = api_param(a, "expr");
	struct instfilter	 f;
	struct indom		*in;
	struct snap		*s = NULL;
	const struct instlist	*il;
	uint32_t		*ids = NULL;
	size_t			 n = 0;
	int			 add, ret;
	pmInDom			 pcid;
	struct pmcd_indom	 pi = { 0 };
	struct instlist		 pil = { 0 };

	if (strcmp(expr, "add") == 0)
		add = 1;
	else if (strcmp(expr, "del") == 0)
		add = 0;
	else
		return api_error_inval(a, 400, 1, "%s - invalid 'expr' "
		    "parameter value", expr);
	if (api_param(a, "indom") == NULL && api_param(a, "name") == NULL) {
		/* pmAddProfile/pmDelProfile(PM_INDOM_NULL): every indom */
		return profile_answer(a, expr, ctx_profile_change(a->a_ds->ctx,
		    a->a_ctx, add, PM_INDOM_NULL, NULL, 0));
	}
	if (resolve_indom(a, &in, &pcid, &ret, 1) == -1)
		return ret;
	if (filter_init(a, &f, &ret) == -1)
		return ret;
	if (in == NULL) {
		/* a pmcd indom: the same filter over pmcd's instances */
		if (pc_indom(a, pcid, &pi, 0, &ret, 1) == -1) {
			filter_free(&f);
			return ret;
		}
		pil.il_n = pi.pi_n;
		pil.il_ids = (const uint32_t *)pi.pi_ids;
		pil.il_names = (const char *const *)pi.pi_names;
	}
	if (f.f_active) {
		s = in && in->i_src ? source_snap(in->i_src) : NULL;
		il = in ? snap_instances(s, in) : &pil;
		ids = calloc((il ? (size_t)il->il_n : 0) + f.f_nids + 1,
		    sizeof(*ids));
		for (int i = 0; ids && il && i < il->il_n; i++)
			if (filter_match(&f, il->il_ids[i], il->il_names[i]))
				ids[n++] = il->il_ids[i];
		for (size_t i = 0; ids && i < f.f_nids; i++) {
			const char	*errstr;
			long long	 v = strtonum_ll(f.f_ids[i], 0,
					    UINT32_MAX, &errstr);

			if (errstr == NULL)
				ids[n++] = (uint32_t)v;
		}
		snap_release(s);
		if (f.f_err) {
			free(ids);
			pmcd_indom_free(&pi);
			ret = filter_error(a, &f);
			filter_free(&f);
			return ret;
		}
		if (n == 0) {	/* nothing matched: not "the whole indom" */
			free(ids);
			filter_free(&f);
			pmcd_indom_free(&pi);
			return api_error(a, 400, 1, PM_ERR_INST, "%s - Unknown "
			    "or illegal instance identifier", expr);
		}
	}
	filter_free(&f);
	pmcd_indom_free(&pi);
	ret = ctx_profile_change(a->a_ds->ctx, a->a_ctx, add, in ? in->i_id :
	    pcid, ids, n);
	free(ids);
	return profile_answer(a, expr, ret);
}
