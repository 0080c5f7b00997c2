/* SPDX-License-Identifier: MIT */
/*
 * api_pmapi.c - the pmproxy /pmapi dialect: one table of commands, one
 * handler per command, parameters parsed in one place. Answers copy
 * pmproxy 6.0.3 byte for byte (field order, compact JSON, CRLF after each
 * body, error texts) except where pmproxy writes invalid JSON or
 * malformed numbers; those deviations are listed in README.md.
 * Threads: runs in HTTP workers; reads immutable registry generations.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH	8
#include <pcre2.h>

#include <microhttpd.h>

#include "bpftraced.h"
#include "seriesid.h"

#define JSON_CT		"application/json"

/* --- parameters --- */

const char *
api_param(struct api *a, const char *key)
{
	return params_get(&a->a_hr->hr_params, key);
}

static int
has(struct httpreq *hr, const char *key)
{
	return params_get(&hr->hr_params, key) != NULL;
}

int
api_ok_always(struct httpreq *hr)
{
	return 1;
}

int
api_ok_fetch(struct httpreq *hr)
{
	return has(hr, "name") || has(hr, "names") || has(hr, "pmid") ||
	    has(hr, "pmids");
}

int
api_ok_indom(struct httpreq *hr)
{
	return has(hr, "indom") || has(hr, "name");
}

int
api_ok_profile(struct httpreq *hr)
{
	return has(hr, "expr");
}

int
api_ok_store(struct httpreq *hr)
{
	return (has(hr, "name") || has(hr, "pmid")) &&
	    (has(hr, "value") || strcmp(hr->hr_method, "POST") == 0);
}

int
api_ok_derive(struct httpreq *hr)
{
	return strcmp(hr->hr_method, "POST") == 0 || has(hr, "name") ||
	    has(hr, "expr");
}

/* Split a comma list into a NULL-terminated array; caller frees [0], arr. */
static char **
split_list(const char *s, size_t *np, size_t max)
{
	char	**v, *copy;
	size_t	 n = 1, i = 0;

	for (const char *p = s; *p; p++)
		if (*p == ',')
			n++;
	if (n > max)
		return NULL;
	if ((copy = strdup(s)) == NULL)
		return NULL;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL) {
		free(copy);
		return NULL;
	}
	for (char *tok = copy, *next; tok; tok = next) {
		if ((next = strchr(tok, ',')) != NULL)
			*next++ = '\0';
		v[i++] = tok;
	}
	*np = i;
	return v;
}

/* 400: a names=/pmids= list past --max-names */
static int
too_many_names(struct api *a)
{
	return api_error(a, 400, 1, -E2BIG, "too many metric names (at most "
	    "%zu, see --max-names)", a->a_ds->cfg.max_names);
}

static void
free_list(char **v)
{
	if (v) {
		free(v[0]);
		free(v);
	}
}

/* a pmID or pmInDom as one decimal or 0x hex number */
static int
parse_u32(const char *s, uint32_t *out)
{
	char		*end;
	unsigned long	 v;

	if (*s == '\0' || *s == '-')
		return -1;
	v = strtoul(s, &end, 0);
	if (*end != '\0' || v > 0xffffffffUL)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "D.C.I", decimal or 0x hex */
static int
parse_pmid(const char *s, pmID *out)
{
	unsigned	 d, c, i;
	int		 n = 0;

	if (sscanf(s, "%u.%u.%u%n", &d, &c, &i, &n) == 3 && s[n] == '\0') {
		if (d > 511 || c > 4095 || i > 1023)
			return -1;
		*out = pmID_build(d, c, i);
		return 0;
	}
	return parse_u32(s, out);
}

/* "D.S", decimal or 0x hex */
static int
parse_indom(const char *s, pmInDom *out)
{
	unsigned	 d, ser;
	int		 n = 0;

	if (sscanf(s, "%u.%u%n", &d, &ser, &n) == 2 && s[n] == '\0') {
		if (d > 511 || ser > 4194303)
			return -1;
		*out = pmInDom_build(d, ser);
		return 0;
	}
	return parse_u32(s, out);
}

/* --- JSON answers --- */

static void
put_head(struct api *a)
{
	const char	*client = api_param(a, "client");

	buf_printf(&a->a_out, "{\"context\":%u", a->a_ctx);
	if (client) {
		buf_puts(&a->a_out, ",\"client\":");
		json_str(&a->a_out, client);
	}
}

/*
 * An answer buffer for this request: at most --max-answer-bytes, charged
 * to --max-memory as it grows.
 */
void
api_buf_init(struct api *a, struct buf *b)
{
	buf_init(b, a->a_ds->cfg.max_answer);
	buf_charge_to(b, &a->a_ds->mem);
}

/*
 * The answer could not be built: larger than --max-answer-bytes (400),
 * or the memory ceiling refused it (503). The error answer is small and
 * not charged (the connection's charge covers it).
 */
static int
answer_failed(struct api *a)
{
	int	 why = a->a_out.b_failed;
	char	 msg[256];

	buf_free(&a->a_out);
	if (a->a_out.b_mc == NULL)	/* even the error answer failed */
		return http_reply_html(a->a_hr, 503, "webapi servlet",
		    "out of memory");
	buf_charge_to(&a->a_out, NULL);
	if (why == BUF_REFUSED) {
		memcap_message(&a->a_ds->mem, msg, sizeof(msg));
		return api_error(a, 503, 1, -ENOMEM, "%s", msg);
	}
	if (why == BUF_TOO_BIG)
		return api_error(a, 400, 1, -E2BIG, "answer too large: more "
		    "than %zu bytes (ask for fewer metrics, or raise "
		    "--max-answer-bytes)", a->a_ds->cfg.max_answer);
	return api_error(a, 503, 1, -ENOMEM, "out of memory");
}

int
api_send_out(struct api *a, unsigned status)
{
	if (a->a_out.b_failed)
		return answer_failed(a);
	buf_puts(&a->a_out, "\r\n");
	if (a->a_out.b_failed)
		return answer_failed(a);
	return http_reply_buf(a->a_hr, status, JSON_CT, &a->a_out);
}

/*
 * {"context":N,"message":"...","success":false} with status 400 etc.
 * pmcode is the PCP (or -errno) code of the failure: the pmwebd dialect
 * answers with it alone ("PMWEBD error, code -12357: ..."), as pmwebd
 * did; the pmproxy dialect with the message.
 */
int
api_error(struct api *a, unsigned status, int with_ctx, int pmcode,
    const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;

	if (API_PMWEBD(a)) {
		buf_reset(&a->a_out);
		return api_pmwebd_error(a->a_hr, status, pmcode);
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_reset(&a->a_out);
	a->a_out.b_failed = 0;
	buf_putc(&a->a_out, '{');
	if (with_ctx == 1)
		buf_printf(&a->a_out, "\"context\":%u,", a->a_ctx);
	else if (with_ctx == 2) {	/* raw context text, kept valid JSON */
		buf_puts(&a->a_out, "\"context\":");
		json_str(&a->a_out, a->a_ctxstr);
		buf_putc(&a->a_out, ',');
	}
	buf_puts(&a->a_out, "\"message\":");
	json_str(&a->a_out, msg);
	buf_puts(&a->a_out, ",\"success\":false}");
	return api_send_out(a, status);
}

/* an error whose code does not matter to pmwebd clients: -EINVAL */
#define send_error(a, status, with_ctx, ...) \
	api_error((a), (status), (with_ctx), -EINVAL, __VA_ARGS__)
#define send_out	api_send_out

/* api_error() for a preformatted message of any length */
static int
send_error_msg(struct api *a, unsigned status, int pmcode, const char *msg)
{
	if (API_PMWEBD(a)) {
		buf_reset(&a->a_out);
		return api_pmwebd_error(a->a_hr, status, pmcode);
	}
	buf_reset(&a->a_out);
	a->a_out.b_failed = 0;
	buf_printf(&a->a_out, "{\"context\":%u,\"message\":", a->a_ctx);
	json_str(&a->a_out, msg);
	buf_puts(&a->a_out, ",\"success\":false}");
	return send_out(a, status);
}

static int
send_success(struct api *a)
{
	buf_reset(&a->a_out);
	put_head(a);
	buf_puts(&a->a_out, ",\"success\":true}");
	return send_out(a, 200);
}

int
api_send_success(struct api *a)
{
	return send_success(a);
}

/* pmproxy writes "D.C.I"; its compat mode and pmwebd the u32 */
static void
put_pmid(struct api *a, pmID p)
{
	if (API_PMWEBD(a))
		buf_printf(&a->a_out, "%u", (unsigned)p);
	else
		buf_printf(&a->a_out, "\"%u.%u.%u\"", pmID_domain(p),
		    pmID_cluster(p), pmID_item(p));
}

/*
 * A derived metric's pmid: libpcp sets the top ("derived") bit of its
 * dynamic pmids, which only the u32 form shows (pmproxy's compat mode
 * writes 511.2047.1023 as 4292870143).
 */
static void
put_dpmid(struct api *a, pmID p)
{
	put_pmid(a, API_PMWEBD(a) ? (pmID)((unsigned)p | DERIVE_PMID_FLAG) :
	    p);
}

static void
put_indom(struct api *a, pmInDom in)
{
	if (API_PMWEBD(a))
		buf_printf(&a->a_out, "%u", (unsigned)in);
	else
		buf_printf(&a->a_out, "\"%u.%u\"", pmInDom_domain(in),
		    pmInDom_serial(in));
}

/* Labels in pmproxy's (sorted) key order: agent, context, metric. */
static void
put_labels(struct api *a, const char *agent, const char *extra)
{
	struct buf	*b = &a->a_out;

	buf_putc(b, '{');
	if (agent)
		buf_printf(b, "\"agent\":\"%s\",", agent);
	buf_puts(b, a->a_ds->ctx_labels);
	if (extra && *extra) {
		buf_putc(b, ',');
		buf_puts(b, extra);
	}
	buf_putc(b, '}');
}

/* integers in decimal without printf: a fetch of a big map writes one per
   instance, and vfprintf was two thirds of its CPU */
static void
put_u64(struct buf *b, uint64_t u)
{
	char	 d[24], *p = d + sizeof(d);

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	buf_append(b, p, (size_t)(d + sizeof(d) - p));
}

static void
put_i64(struct buf *b, int64_t i)
{
	if (i < 0) {
		buf_putc(b, '-');
		put_u64(b, (uint64_t)0 - (uint64_t)i);
	} else
		put_u64(b, (uint64_t)i);
}

static void
put_value(struct buf *b, int type, const union value *v)
{
	switch (type) {
	case PM_TYPE_32:
		put_i64(b, (int32_t)v->i);
		break;
	case PM_TYPE_U32:
		put_u64(b, (uint32_t)v->u);
		break;
	case PM_TYPE_64:
		put_i64(b, (int64_t)v->i);
		break;
	case PM_TYPE_U64:
		put_u64(b, (uint64_t)v->u);
		break;
	case PM_TYPE_FLOAT:
		if (isfinite(v->d))
			buf_printf(b, "%.8g", (double)(float)v->d);
		else
			buf_puts(b, "null");
		break;
	case PM_TYPE_DOUBLE:
		if (isfinite(v->d))
			buf_printf(b, "%.16g", v->d);
		else
			buf_puts(b, "null");
		break;
	case PM_TYPE_STRING:
		json_str(b, v->s);
		break;
	default:
		buf_puts(b, "null");
	}
}

/* --- snapshots for one request: one per source --- */

struct snapcache {
	int	 n;
	struct {
		struct source	*src;
		struct snap	*snap;
	} e[16];
};

static struct snap *
snapcache_get(struct snapcache *sc, struct source *src)
{
	struct snap	*s;

	for (int i = 0; i < sc->n; i++)
		if (sc->e[i].src == src)
			return sc->e[i].snap;
	s = source_snap(src);
	if (sc->n < 16) {
		sc->e[sc->n].src = src;
		sc->e[sc->n++].snap = s;
	} else {
		/* too many sources to cache: keep the oldest slot's life */
		snap_release(sc->e[15].snap);
		sc->e[15].src = src;
		sc->e[15].snap = s;
	}
	return s;
}

static void
snapcache_free(struct snapcache *sc)
{
	for (int i = 0; i < sc->n; i++)
		snap_release(sc->e[i].snap);
	sc->n = 0;
}

/* --- metrics read from pmcd (pmcd.c): per-request batch --- */

#define PMCD_OWN_DOMAIN	2	/* pmcd's own PMDA: pmcd.* */

/* one pmcd metric this request uses: its descriptor, then its values */
struct pcitem {
	char		*name;
	pmID		 pmid;
	pmDesc		 desc;
	struct metric	 m;		/* descriptor view for derive_bind */
	int		 fetched;
	struct valset	 vs;
	uint32_t	*inst;
	union value	*vals;
	char		**strs;
	int		 nstrs;
};

struct pcbatch {
	size_t		 n, cap;
	struct pcitem	**v;
};

static int
pcmode(struct api *a)
{
	if (a->a_pcmode < 0)
		a->a_pcmode = pmcd_mode();
	return a->a_pcmode;
}

/* a local metric pmcd serves instead: ours are kept for when it is gone */
static int
hidden(struct api *a, const struct metric *m)
{
	return m && pmID_domain(m->m_pmid) == PMCD_OWN_DOMAIN &&
	    pcmode(a) == PMCD_UP;
}

static struct metric *
local_by_name(struct api *a, const char *name)
{
	struct metric	*m = ns_metric_by_name(a->a_ns, name);

	return hidden(a, m) ? NULL : m;
}

static struct metric *
local_by_pmid(struct api *a, pmID pmid)
{
	struct metric	*m = ns_metric_by_pmid(a->a_ns, pmid);

	return hidden(a, m) ? NULL : m;
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

static void
pcbatch_free(struct pcbatch *b)
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
	it->m.m_type = desc->type;
	it->m.m_sem = desc->sem;
	it->m.m_units = desc->units;
	it->m.m_slot = -1;
	b->v[b->n++] = it;
	return it;
}

static void
pc_failed(struct api *a, int rc)
{
	if (rc == PMCD_ECONN)
		a->a_pcerr = 1;
}

/* a metric bpftraced does not own, from pmcd; NULL: none (a_pcerr) */
static struct pcitem *
pc_by_name(struct api *a, const char *name)
{
	pmDesc	 desc;
	pmID	 pmid;
	char	*copy;
	int	 rc;

	for (size_t i = 0; a->a_pcb && i < a->a_pcb->n; i++)
		if (strcmp(a->a_pcb->v[i]->name, name) == 0)
			return a->a_pcb->v[i];
	if (pcmode(a) == PMCD_NONE || pmcd_owned_name(name))
		return NULL;
	if ((rc = pmcd_lookup(name, &pmid, &desc)) < 0) {
		pc_failed(a, rc);
		return NULL;
	}
	if ((copy = strdup(name)) == NULL)
		return NULL;
	return pc_add(a, copy, &desc);
}

static struct pcitem *
pc_by_pmid(struct api *a, pmID pmid)
{
	pmDesc	 desc;
	char	*name;
	int	 rc;

	for (size_t i = 0; a->a_pcb && i < a->a_pcb->n; i++)
		if (a->a_pcb->v[i]->pmid == pmid)
			return a->a_pcb->v[i];
	if (pcmode(a) == PMCD_NONE)
		return NULL;
	if ((rc = pmcd_lookup_pmid(pmid, &name, &desc)) < 0) {
		pc_failed(a, rc);
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
static void
pc_fetch(struct api *a)
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
				pc_failed(a, rc);
			pc_take(b->v + from, i - from, res, rc);
			if (rc >= 0)
				pmFreeResult(res);
		}
		from = i;
	}
}

/* pmproxy's answer when pmcd failed under this request */
static int
pc_error(struct api *a, int with_ctx)
{
	return api_error(a, 400, with_ctx, pmcd_error_code(), "%s",
	    pmcd_error_text());
}

/* --- derived metrics: the context's set, bound to the current namespace --- */

static const struct metric *
derive_find(void *arg, const char *name)
{
	struct api		*a = arg;
	const struct metric	*m = local_by_name(a, name);
	struct pcitem		*it;

	if (m == NULL && (it = pc_by_name(a, name)) != NULL)
		m = &it->m;	/* a pmcd metric is an operand too */
	return m;
}

struct dfetch {
	struct api		*a;
	struct snapcache	*sc;
};

/* an operand's values: only plain (snapshot) metrics have them */
static const struct valset *
derive_values(void *arg, const char *name)
{
	struct dfetch		*f = arg;
	const struct metric	*m = local_by_name(f->a, name);
	struct snap		*s;
	struct pcitem		*it;

	if (m == NULL && (it = pc_by_name(f->a, name)) != NULL) {
		if (!it->fetched)
			pc_fetch(f->a);
		return &it->vs;
	}
	if (m == NULL || m->m_ctxval || m->m_src == NULL ||
	    access_metric(f->a->a_ds, m, &f->a->a_rd) != ACCESS_ALL ||
	    (s = snapcache_get(f->sc, m->m_src)) == NULL ||
	    m->m_slot >= s->s_nsets)
		return NULL;
	return &s->s_sets[m->m_slot];
}

/*
 * A derived metric of this context that is visible under name now: not
 * shadowed by a real metric (those win, as in libpcp), registered without
 * a semantic error, and with every operand present and consistent. With
 * boundp, the caller gets the bound tree to free.
 */
static const struct dmetric *
derived_visible(struct api *a, const char *name, struct ddesc *desc,
    struct dexpr **boundp)
{
	const struct dmetric	*dm;
	struct dexpr		*bound;
	struct ddesc		 d;
	const char		*why;

	if (a->a_dset == NULL || local_by_name(a, name) != NULL ||
	    (dm = dset_find(a->a_dset, name)) == NULL || dm->dm_dead)
		return NULL;
	if (derive_bind_text(dm, derive_find, a, &bound, &d, &why) != 0)
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
		    derived_visible(a, dn, NULL, NULL))
			return 1;
	}
	return 0;
}

/* --- context --- */

int
api_host_is_local(struct api *a, const char *spec)
{
	char		 host[256];
	const char	*h;
	size_t		 n;

	if (strncmp(spec, "local:", 6) == 0 || strncmp(spec, "unix:", 5) == 0)
		return 1;
	if (strncmp(spec, "pcp://", 6) == 0)	/* grafana-pcp's default */
		spec += 6;
	else if (strncmp(spec, "pcps://", 7) == 0)
		spec += 7;
	n = strcspn(spec, "?");		/* drop ?username=... */
	if (n >= sizeof(host))
		return 0;
	memcpy(host, spec, n);
	host[n] = '\0';
	if (host[0] != '[' && strchr(host, ':') == strrchr(host, ':') &&
	    strchr(host, ':') != NULL &&
	    strcmp(strchr(host, ':'), ":44321") == 0)
		*strchr(host, ':') = '\0';	/* pmcd's own port */
	h = host;
	return strcmp(h, "localhost") == 0 || strcmp(h, "127.0.0.1") == 0 ||
	    strcmp(h, "::1") == 0 || strcmp(h, "[::1]") == 0 ||
	    strcmp(h, "localhost.localdomain") == 0 ||
	    strcmp(h, "localhost6") == 0 ||
	    strcmp(h, a->a_ds->hostname) == 0;
}

/*
 * 1 when a hostspec names a container (its attributes, after '?',
 * separated by '&' or ',', hold a "container" key): bpftraced cannot
 * enter one, and must never answer host-wide values as a container's.
 */
static int
hostspec_container(const char *spec)
{
	const char	*p = strchr(spec, '?');

	while (p != NULL) {
		p++;
		p += strspn(p, " ");
		if (strncasecmp(p, "container", 9) == 0 &&
		    strchr("=&, ", p[9]) != NULL)
			return 1;
		p = strpbrk(p, "&,");
	}
	return 0;
}

/*
 * Find or create the request's context. Returns 0, or -1 after an error
 * answer was queued (*ret holds the MHD result).
 */
static int
resolve_context(struct api *a, int *ret)
{
	const char	*errstr, *pt, *hs;
	char		 peer[64], msg[160];
	double		 timeout = BT_CTX_TIMEOUT;
	struct profile	**profp = a->a_cmd->c_ep == EP_FETCH ? &a->a_prof : NULL;
	struct dset	**dsetp = a->a_cmd->c_ep == EP_CONTEXT ||
			    a->a_cmd->c_ep == EP_STORE ? NULL : &a->a_dset;

	if (a->a_ctxstr) {
		long long	 id = strtonum_ll(a->a_ctxstr, 0, UINT32_MAX,
				    &errstr);

		if (errstr) {
			*ret = api_error(a, 400, 2, -EINVAL,
			    "invalid context identifier: %s", a->a_ctxstr);
			return -1;
		}
		a->a_ctx = (uint32_t)id;
		if (ctx_use(a->a_ds->ctx, a->a_ctx, profp, dsetp) != CTX_OK) {
			/* pmproxy echoes the id, except on /context */
			*ret = api_error(a, 400,
			    a->a_cmd->c_ep == EP_CONTEXT ? 0 : 1,
			    PM_ERR_NOCONTEXT, "unknown context identifier: %u",
			    a->a_ctx);
			return -1;
		}
		a->a_held = 1;
		return 0;
	}
	if ((pt = api_param(a, "polltimeout")) != NULL &&
	    (parse_double(pt, &timeout) == -1 || timeout <= 0 ||
	    timeout > BT_CTX_TIMEOUT_MAX)) {
		*ret = send_error(a, 400, 0,
		    "invalid timeout requested in polltime");
		return -1;
	}
	/* clamped, not refused: a client asking for longer still works */
	if (timeout > a->a_ds->cfg.max_polltimeout)
		timeout = a->a_ds->cfg.max_polltimeout;
	if ((hs = api_param(a, "hostspec")) == NULL)
		hs = api_param(a, "hostname");
	if (hs && hostspec_container(hs)) {
		*ret = api_error(a, 400, 0, -EOPNOTSUPP, "cannot connect to "
		    "PMCD: containers are not supported by bpftraced (%s "
		    "names a container; it would get the host's values)", hs);
		return -1;
	}
	if (hs && *hs && !api_host_is_local(a, hs)) {
		*ret = api_error(a, 400, 0, -ECONNREFUSED, "cannot connect to "
		    "PMCD: %s is not served by bpftraced (only the local host)",
		    hs);
		return -1;
	}
	http_peer(a->a_hr, peer, sizeof(peer));
	switch (ctx_create_for(a->a_ds->ctx, timeout, peer, &a->a_ctx)) {
	case CTX_OK:
		return 0;
	case CTX_NOMEM:
		memcap_message(&a->a_ds->mem, msg, sizeof(msg));
		*ret = api_error(a, 503, 0, -ENOMEM, "%s", msg);
		return -1;
	default:
		*ret = api_error(a, 503, 0, -EMFILE, "too many contexts (limit "
		    "%zu, see --max-contexts)", a->a_ds->cfg.max_contexts);
		return -1;
	}
}

static int
run_context(struct api *a)
{
	struct daemon_state	*ds = a->a_ds;

	put_head(a);
	buf_printf(&a->a_out, ",\"source\":\"%s\",\"hostspec\":",
	    ds->source_id);
	json_str(&a->a_out, ds->hostname);
	buf_puts(&a->a_out, ",\"labels\":");
	put_labels(a, NULL, NULL);
	buf_putc(&a->a_out, '}');
	return send_out(a, 200);
}

/* --- metric --- */

static void
put_metric(struct api *a, const struct metric *m)
{
	struct buf	*b = &a->a_out;
	char		 units[64];
	size_t		 slot, lab;

	buf_puts(b, "{\"name\":");
	json_str(b, m->m_name);
	buf_puts(b, ",\"series\":\"");
	slot = seriesid_slot(b);
	buf_puts(b, "\",\"pmid\":");
	put_pmid(a, m->m_pmid);
	if (m->m_indom != PM_INDOM_NULL) {
		buf_puts(b, ",\"indom\":");
		put_indom(a, m->m_indom);
	}
	bt_units_str(&m->m_units, units, sizeof(units));
	buf_printf(b, ",\"type\":\"%s\",\"sem\":\"%s\",\"units\":\"%s\","
	    "\"labels\":", bt_type_str(m->m_type), bt_sem_str(m->m_sem), units);
	lab = b->b_len;
	put_labels(a, "bpftrace", m->m_labels);
	seriesid_fill(b, slot, lab, m->m_name, m->m_type, m->m_sem,
	    &m->m_units);
	buf_puts(b, ",\"text-oneline\":");
	json_str(b, m->m_oneline);
	buf_puts(b, ",\"text-help\":");
	json_str(b, m->m_help);
	buf_putc(b, '}');
}

/* pmproxy's answer for a derived metric: no agent label, no help text */
static void
put_derived(struct api *a, const struct dmetric *dm, const struct ddesc *d)
{
	struct buf	*b = &a->a_out;
	char		 units[64];
	size_t		 slot, lab;

	buf_puts(b, "{\"name\":");
	json_str(b, dm->dm_name);
	buf_puts(b, ",\"series\":\"");
	slot = seriesid_slot(b);
	buf_puts(b, "\",\"pmid\":");
	put_dpmid(a, dm->dm_pmid);
	if (d->dd_indom != PM_INDOM_NULL) {
		buf_puts(b, ",\"indom\":");
		put_indom(a, d->dd_indom);
	}
	bt_units_str(&d->dd_units, units, sizeof(units));
	buf_printf(b, ",\"type\":\"%s\",\"sem\":\"%s\",\"units\":\"%s\","
	    "\"labels\":", bt_type_str(d->dd_type), bt_sem_str(d->dd_sem),
	    units);
	lab = b->b_len;
	put_labels(a, NULL, NULL);
	seriesid_fill(b, slot, lab, dm->dm_name, d->dd_type, d->dd_sem,
	    &d->dd_units);
	buf_puts(b, ",\"text-oneline\":\"\",\"text-help\":\"\"}");
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
		if (derived_visible(a, dm->dm_name, &d, NULL) == NULL)
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
	char		 units[64];
	char		*labels, *oneline, *help;
	size_t		 slot, lab;

	bt_units_str(&desc->units, units, sizeof(units));
	labels = pmcd_labels(PMCD_LABELS_METRIC, desc->pmid, desc->indom);
	oneline = pmcd_text(0, desc->pmid, 0);
	help = pmcd_text(0, desc->pmid, 1);
	buf_puts(b, "{\"name\":");
	json_str(b, name);
	buf_puts(b, ",\"series\":\"");
	slot = seriesid_slot(b);
	buf_puts(b, "\",\"pmid\":");
	put_pmid(a, desc->pmid);
	if (desc->indom != PM_INDOM_NULL) {
		buf_puts(b, ",\"indom\":");
		put_indom(a, desc->indom);
	}
	buf_printf(b, ",\"type\":\"%s\",\"sem\":\"%s\",\"units\":\"%s\","
	    "\"labels\":", bt_type_str(desc->type), bt_sem_str(desc->sem),
	    units);
	lab = b->b_len;
	buf_puts(b, labels ? labels : "{}");
	seriesid_fill(b, slot, lab, name, desc->type, desc->sem,
	    &desc->units);
	buf_puts(b, ",\"text-oneline\":");
	json_str(b, oneline);
	buf_puts(b, ",\"text-help\":");
	json_str(b, help && *help ? help : oneline);
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

	if (pcmode(a) == PMCD_NONE || pmcd_owned_name(name))
		return 0;
	if ((rc = pmcd_traverse(name, &names, &n)) < 0) {
		pc_failed(a, rc);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (local_by_name(a, names[i]) != NULL)
			continue;	/* ours wins */
		if ((rc = pmcd_lookup(names[i], &pmid, &desc)) < 0) {
			pc_failed(a, rc);
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

	if ((m = local_by_name(a, name)) != NULL) {
		if ((*count)++)
			buf_putc(&a->a_out, ',');
		put_metric(a, m);	/* a leaf traverses to itself */
		return 1;
	}
	n = ns_prefix_range(a->a_ns, name, &lo);
	for (size_t i = lo; i < lo + n; i++) {
		if (hidden(a, a->a_ns->ns_by_name[i]))
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

	if ((list = split_list(names, &n, a->a_ds->cfg.max_names)) == NULL)
		return too_many_names(a);
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
	free_list(list);
	buf_puts(&a->a_out, "]}");
	return send_out(a, 200);
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
	put_head(a);
	buf_puts(&a->a_out, ",\"metrics\":[");
	if (p == NULL)
		return metric_names(a, names);
	if (put_metric_tree(a, p, &count) == 0 && *p) {
		if (a->a_pcerr)		/* pmcd is gone: pmproxy's error */
			return pc_error(a, 1);
		/*
		 * pmwebd traverses an unknown prefix to an empty list (the
		 * 2019 datasource asks _metric?prefix= once per metric and
		 * treats an error as fatal); pmproxy refuses it.
		 */
		if (API_PMWEBD(a) && prefix != NULL) {
			buf_reset(&a->a_out);
			put_head(a);
			buf_puts(&a->a_out, ",\"metrics\":[]}");
			return send_out(a, 200);
		}
		return api_error(a, 400, 1, PM_ERR_NAME, "%s traversal failed "
		    "- Unknown metric name", p);
	}
	buf_puts(&a->a_out, "]}");
	return send_out(a, 200);
}

/* --- fetch --- */

/*
 * The "instances" array of a set with values, as far as prof lets them
 * through; returns how many were written (nothing is left in b for 0).
 */
static int
put_instances(struct buf *b, const struct metric *m, const struct valset *vs,
    const struct profile *prof, int pmwebd)
{
	size_t	 start = b->b_len;
	int	 n = 0;

	buf_putc(b, '[');
	for (int i = 0; i < vs->vs_n; i++) {
		if (vs->vs_inst && !profile_allows(prof, m->m_indom,
		    vs->vs_inst[i]))
			continue;
		if (n++)
			buf_putc(b, ',');
		if (vs->vs_inst) {
			buf_puts(b, "{\"instance\":");
			put_u64(b, vs->vs_inst[i]);
			buf_puts(b, ",\"value\":");
		} else
			buf_puts(b, pmwebd ? "{\"instance\":-1,\"value\":" :
			    "{\"instance\":null,\"value\":");
		put_value(b, m->m_type, &vs->vs_vals[i]);
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
		return f->sf_type == m->m_type ? f : NULL;
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
	nf->sf_type = m->m_type;
	nf->sf_data = buf_take(&b, &nf->sf_len);
	if (nf->sf_data == NULL) {
		free(nf);
		return NULL;
	}
	f = snap_frag_set(s, m->m_slot, variant, nf);
	return f && f->sf_type == m->m_type ? f : NULL;
}

static void
put_fetch_head(struct api *a, pmID pmid, const char *name, int count)
{
	struct buf	*b = &a->a_out;

	buf_puts(b, count ? ",{\"pmid\":" : "{\"pmid\":");
	put_pmid(a, pmid);
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

	buf_init(&v, 0);
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

	if (vs->vs_n <= 0 || access_filter(m, s, vs, &a->a_rd, a->a_ds,
	    &mine) == -1)
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
	if ((access = access_metric(a->a_ds, m, &a->a_rd)) == ACCESS_NONE)
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
 * -1 with no value; a history the context cannot keep sets *err (CTX_*).
 */
static int
eval_derived(struct api *a, const struct dmetric *dm, struct dexpr *bound,
    struct dfetch *f, const struct timespec *ts, struct dvals *v, int *err)
{
	struct dhist	 prev, next;
	int		 rc;

	if (ctx_rate_get(a->a_ds->ctx, a->a_ctx, dm->dm_pmid, &prev) ==
	    CTX_FULL)
		*err = CTX_FULL;
	rc = derive_eval_hist(bound, derive_values, f, &prev, &next, ts, v);
	if (next.dh_n > 0 && a->a_held) {
		int	 st = ctx_rate_put(a->a_ds->ctx, a->a_ctx, dm->dm_pmid,
			    &next);

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
    struct snapcache *sc, const struct timespec *ts, int *count, int *err)
{
	struct buf	*b = &a->a_out;
	struct dfetch	 f = { a, sc };
	struct dexpr	*bound;
	struct ddesc	 d;
	struct dvals	 v;
	int		 first = 1;

	if (derived_visible(a, dm->dm_name, &d, &bound) == NULL)
		return;
	if (eval_derived(a, dm, bound, &f, ts, &v, err) == -1) {
		derive_free(bound);
		return;		/* an operand has no value: no value */
	}
	buf_puts(b, *count ? ",{\"pmid\":" : "{\"pmid\":");
	put_dpmid(a, dm->dm_pmid);
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
		put_value(b, v.dv_type, &v.dv_vals[i]);
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
		put_pmid(a, it->pmid);
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
			put_pmid(a, it->pmid);
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
		put_value(b, it->desc.type, &vs->vs_vals[i]);
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
	if ((it->m = local_by_name(a, name)) != NULL)
		return 0;
	if ((it->dm = derived_visible(a, name, NULL, NULL)) != NULL)
		return 0;
	return (it->pc = pc_by_name(a, name)) ? 0 : -1;
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
	if ((it->m = local_by_pmid(a, pmid)) != NULL)
		return 0;
	if (((unsigned)pmid & DERIVE_PMID_FLAG) == 0)
		return (it->pc = pc_by_pmid(a, pmid)) ? 0 : -1;
	for (size_t i = 0; a->a_dset && i < a->a_dset->ds_n; i++) {
		const struct dmetric	*dm = a->a_dset->ds_v[i];

		if (((unsigned)dm->dm_pmid | DERIVE_PMID_FLAG) ==
		    (unsigned)pmid)
			return (it->dm = derived_visible(a, dm->dm_name, NULL,
			    NULL)) ? 0 : -1;
	}
	return -1;
}

/*
 * Resolve the fetch list: names, then pmids (singular forms are strict).
 * Derived metrics are found by name, and by pmid in the u32 form only
 * (fitem_by_pmid).
 */
int
api_fetch_lookup(struct api *a, struct fitem **outp, size_t *np, int *ret)
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
	if (list && (v = split_list(list, &n, a->a_ds->cfg.max_names)) == NULL)
		goto toomany;
	if (plist && (pv = split_list(plist, &pn,
	    a->a_ds->cfg.max_names - n)) == NULL)
		goto toomany;
	if ((out = calloc(n + pn + 2, sizeof(*out))) == NULL)
		goto toomany;
	if (single && fitem_by_name(a, single, &out[k++]) == -1) {
		code = PM_ERR_NAME;
		goto bad;
	}
	if (spmid && (parse_pmid(spmid, &pmid) == -1 ||
	    fitem_by_pmid(a, pmid, &out[k++]) == -1)) {
		code = PM_ERR_PMID;
		goto bad;
	}
	a->a_pcerr = 0;	/* a single name's failure only counts above */
	for (size_t i = 0; i < n; i++)
		if (fitem_by_name(a, v[i], &out[k]) == 0)
			k++;
	for (size_t i = 0; i < pn; i++)
		if (parse_pmid(pv[i], &pmid) == 0 &&
		    fitem_by_pmid(a, pmid, &out[k]) == 0)
			k++;
	free_list(v);
	free_list(pv);
	/*
	 * One pmFetch for every pmcd metric (derived operands included).
	 * When pmcd failed and nothing of ours was asked for, the answer
	 * is pmproxy's error; otherwise ours are served without pmcd's.
	 */
	pc_fetch(a);
	if (a->a_pcerr) {
		size_t	 ours = 0;

		for (size_t i = 0; i < k; i++)
			ours += out[i].pc == NULL;
		if (ours == 0) {
			free(out);
			*ret = pc_error(a, 1);
			return -1;
		}
	}
	*outp = out;
	*np = k;
	return 0;
bad:
	free(out);
	free_list(v);
	free_list(pv);
	*ret = a->a_pcerr ? pc_error(a, 1) :
	    api_error(a, 400, 1, code, "bad parameters passed");
	return -1;
toomany:
	free_list(v);
	free_list(pv);
	*ret = too_many_names(a);
	return -1;
}

/*
 * The members of a fetch's "values" array, in the request's order; a
 * derived metric's values are computed from the same snapshots as the
 * plain metrics of this request.
 */
int
api_put_fetch_values(struct api *a, const struct fitem *ms, size_t n,
    const struct timespec *ts)
{
	struct snapcache	 sc = { 0 };
	int			 count = 0, err = CTX_OK;

	reserve_fetch(a, ms, n, &sc);
	for (size_t i = 0; i < n; i++)
		if (ms[i].m)
			put_fetch_metric(a, ms[i].m, &sc, &count);
		else if (ms[i].pc)
			put_fetch_pc(a, ms[i].pc, &count);
		else
			put_fetch_derived(a, ms[i].dm, &sc, ts, &count, &err);
	snapcache_free(&sc);
	return err;
}

/*
 * The error answer for a rate() history the context could not keep
 * (api_put_fetch_values() != CTX_OK): the values are not sent, as the
 * next fetch would silently have no rate.
 */
int
api_rate_error(struct api *a, int err)
{
	char	 msg[256];

	buf_reset(&a->a_out);
	if (err == CTX_NOMEM) {
		memcap_message(&a->a_ds->mem, msg, sizeof(msg));
		return api_error(a, 503, 1, PM_ERR_TOOBIG, "%s", msg);
	}
	if (err == CTX_BYTES)
		return api_error(a, 400, 1, PM_ERR_TOOBIG, "rate() values of "
		    "the derived metrics of this context would hold more than "
		    "%zu bytes (bpftraced limit, see --max-derived-bytes)",
		    a->a_ds->cfg.max_derived_bytes);
	return api_error(a, 503, 1, PM_ERR_TOOBIG, "out of memory keeping "
	    "rate() values");
}

static int
run_fetch(struct api *a)
{
	struct fitem		*ms;
	struct timespec		 ts;
	size_t			 n;
	int			 ret, err;

	if (api_fetch_lookup(a, &ms, &n, &ret) == -1)
		return ret;
	now_real(&ts);
	put_head(a);
	buf_printf(&a->a_out, ",\"timestamp\":%lld.%09ld,\"values\":[",
	    (long long)ts.tv_sec, ts.tv_nsec);
	err = api_put_fetch_values(a, ms, n, &ts);
	free(ms);
	if (err != CTX_OK)
		return api_rate_error(a, err);
	buf_puts(&a->a_out, "]}");
	return send_out(a, 200);
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
	free_list(f->f_ids);
	free_list(f->f_names);
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
	*ret = send_error(a, 400, 1, "%s - invalid regular expression: %s",
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
	return send_error(a, 400, 1, "invalid regular expression: matching "
	    "it costs more than %zu steps per instance name (bpftraced limit, "
	    "see --max-regex-steps)", a->a_ds->cfg.max_regex_steps);
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
		*ret = send_error(a, 400, 0, "%s - invalid 'match' parameter "
		    "value", match);
		return -1;
	}
	if ((ids && (f->f_ids = split_list(ids, &f->f_nids,
	    a->a_ds->cfg.max_names)) == NULL) || (names && (f->f_names =
	    split_list(names, &f->f_nnames, a->a_ds->cfg.max_names)) ==
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
		if (parse_indom(is, &id) == 0 &&
		    (*inp = ns_indom(a->a_ns, id)) != NULL)
			return 0;
		if (parse_indom(is, &id) == 0 && id != PM_INDOM_NULL &&
		    pmInDom_domain(id) != BT_DOMAIN &&
		    pcmode(a) != PMCD_NONE) {
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
		*ret = send_error(a, 400, 1, "invalid %s parameters",
		    profile ? "profile" : "indom");
		return -1;
	}
	if ((m = local_by_name(a, name)) == NULL) {
		struct ddesc	 d;

		/* a derived metric has its operands' instance domain */
		if (derived_visible(a, name, &d, NULL) != NULL) {
			if (d.dd_indom == PM_INDOM_NULL)
				goto null;
			if ((*inp = ns_indom(a->a_ns, d.dd_indom)) == NULL)
				*pcp = d.dd_indom;
			return 0;
		}
		if ((pc = pc_by_name(a, name)) != NULL) {
			if (pc->desc.indom == PM_INDOM_NULL)
				goto null;
			*pcp = pc->desc.indom;
			return 0;
		}
		if (a->a_pcerr)
			*ret = pc_error(a, 1);
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
		*ret = pc_error(a, 1);
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

/*
 * indom= naming an instance domain pmcd does not know: pmproxy answers
 * 200 with the context's labels, no texts and no instances.
 */
static int
unknown_pcindom(struct api *a, pmInDom id, struct instfilter *f)
{
	char	*labels = pmcd_labels(PMCD_LABELS_CONTEXT, PM_ID_NULL, id);

	if (API_PMWEBD(a))
		buf_puts(&a->a_out, "{\"indom\":");
	else {
		put_head(a);
		buf_puts(&a->a_out, ",\"indom\":");
	}
	put_indom(a, id);
	buf_printf(&a->a_out, ",\"labels\":%s,\"instances\":[]}",
	    labels ? labels : "{}");
	free(labels);
	return f->f_err ? filter_error(a, f) : send_out(a, 200);
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
	if (API_PMWEBD(a))
		buf_puts(&a->a_out, "{\"indom\":");
	else {
		put_head(a);
		buf_puts(&a->a_out, ",\"indom\":");
	}
	put_indom(a, id);
	buf_printf(&a->a_out, ",\"labels\":%s,\"text-oneline\":",
	    labels ? labels : "{}");
	json_str(&a->a_out, oneline);
	buf_puts(&a->a_out, ",\"text-help\":");
	json_str(&a->a_out, help && *help ? help : oneline);
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
	ret = f->f_err ? filter_error(a, f) : send_out(a, 200);
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
	il = access_indom(a->a_ds, in, &a->a_rd) ? snap_instances(s, in) :
	    NULL;
	if (API_PMWEBD(a))	/* pmproxy's compat mode: no context key */
		buf_puts(&a->a_out, "{\"indom\":");
	else {
		put_head(a);
		buf_puts(&a->a_out, ",\"indom\":");
	}
	put_indom(a, in->i_id);
	buf_puts(&a->a_out, ",\"labels\":");
	put_labels(a, NULL, NULL);
	buf_puts(&a->a_out, ",\"text-oneline\":");
	json_str(&a->a_out, in->i_oneline);
	buf_puts(&a->a_out, ",\"text-help\":");
	json_str(&a->a_out, in->i_help);
	buf_puts(&a->a_out, ",\"instances\":[");
	for (int i = 0; il && i < il->il_n; i++) {
		if (!filter_match(&f, il->il_ids[i], il->il_names[i]))
			continue;
		buf_printf(&a->a_out, "%s{\"instance\":%u,\"name\":",
		    count++ ? "," : "", il->il_ids[i]);
		json_str(&a->a_out, il->il_names[i]);
		buf_puts(&a->a_out, ",\"labels\":");
		put_labels(a, NULL, NULL);
		buf_putc(&a->a_out, '}');
	}
	buf_puts(&a->a_out, "]}");
	snap_release(s);
	ret = f.f_err ? filter_error(a, &f) : send_out(a, 200);
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
		if (derived_visible(a, name, NULL, NULL) == NULL)
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
			    derived_visible(a, o, NULL, NULL) != NULL;
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
		shown += !hidden(a, a->a_ns->ns_by_name[i]);
	known = shown > 0 || !plen || local_by_name(a, prefix) != NULL ||
	    derived_nonleaf(a, prefix) ||
	    derived_visible(a, prefix, NULL, NULL);
	/* pmcd's children of the same node, after ours */
	if (pcmode(a) != PMCD_NONE && !pmcd_owned_name(prefix) &&
	    local_by_name(a, prefix) == NULL &&
	    (pn = pmcd_children(prefix, &pcn, &pcs)) < 0)
		pc_failed(a, pn);
	if (!known && pn < 0)
		return a->a_pcerr ? pc_error(a, 1) : api_error(a, 400, 1,
		    PM_ERR_NAME, "child traversal failed - Unknown metric "
		    "name");
	api_buf_init(a, &leaf);
	api_buf_init(a, &nonleaf);
	for (size_t i = lo; i < lo + n; i++) {
		const char	*name = a->a_ns->ns_by_name[i]->m_name;
		const char	*comp = plen ? name + plen + 1 : name;
		size_t		 clen = strcspn(comp, ".");
		struct buf	*b = comp[clen] ? &nonleaf : &leaf;

		if (hidden(a, a->a_ns->ns_by_name[i]))
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
	put_head(a);
	buf_puts(&a->a_out, ",\"name\":");
	json_str(&a->a_out, prefix);
	buf_printf(&a->a_out, ",\"leaf\":[%s],\"nonleaf\":[%s]}",
	    buf_cstr(&leaf), buf_cstr(&nonleaf));
	if (leaf.b_failed || nonleaf.b_failed)
		a->a_out.b_failed = leaf.b_failed ? leaf.b_failed :
		    nonleaf.b_failed;
	buf_free(&leaf);
	buf_free(&nonleaf);
	return send_out(a, 200);
}

/* --- profile --- */

/* the answer to a profile change that ctx_profile_change() returned */
static int
profile_answer(struct api *a, const char *expr, int ret)
{
	char	 msg[160];

	switch (ret) {
	case CTX_OK:
		return send_success(a);
	case CTX_UNKNOWN:
		return api_error(a, 400, 1, PM_ERR_NOCONTEXT,
		    "%s - unknown context", expr);
	case CTX_LIMIT:
		return api_error(a, 403, 1, -E2BIG, "%s - the profile of this "
		    "context would list more than %zu instances (bpftraced "
		    "limit, see --max-profile-instances)", expr,
		    a->a_ds->cfg.max_profile_instances);
	case CTX_NOMEM:
		memcap_message(&a->a_ds->mem, msg, sizeof(msg));
		return api_error(a, 503, 1, -ENOMEM, "%s - %s", expr, msg);
	default:
		return send_error(a, 400, 1, "%s - out of memory", expr);
	}
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
		return send_error(a, 400, 1, "%s - invalid 'expr' parameter "
		    "value", expr);
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

/* --- store --- */

/* pmproxy converts the text to the metric's type before storing */
static int
value_fits_type(int type, const char *v, size_t len)
{
	char		 tmp[64];
	const char	*errstr;
	double		 d;

	if (type == PM_TYPE_STRING)
		return 1;
	if (len == 0 || len >= sizeof(tmp))
		return 0;
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	switch (type) {
	case PM_TYPE_32:
		strtonum_ll(tmp, INT32_MIN, INT32_MAX, &errstr);
		return errstr == NULL;
	case PM_TYPE_U32:
		strtonum_ll(tmp, 0, UINT32_MAX, &errstr);
		return errstr == NULL;
	case PM_TYPE_64:
	case PM_TYPE_U64:	/* u64 above INT64_MAX: not storable here */
		strtonum_ll(tmp, type == PM_TYPE_64 ? INT64_MIN : 0,
		    INT64_MAX, &errstr);
		return errstr == NULL;
	case PM_TYPE_FLOAT:
	case PM_TYPE_DOUBLE:
		return parse_double(tmp, &d) == 0;
	default:
		return 0;
	}
}

/* the PCP code of a refused store, for pmwebd's error answers */
static int
store_code(int rv, const char *err)
{
	if (rv == -500)
		return -EIO;		/* ours: the state database */
	if (rv == -503)
		return -ENOMEM;		/* --max-memory */
	if (rv < -1 || strncmp(err, "No permission", 13) == 0)
		return PM_ERR_PERMISSION;
	return PM_ERR_BADSTORE;
}

int
api_run_store(struct api *a)
{
	const char	*name = api_param(a, "name");
	const char	*spmid = api_param(a, "pmid");
	const char	*value = api_param(a, "value");
	struct store_req sr;
	struct metric	*m;
	char		 err[1024] = "", peer[64];
	pmID		 pmid;
	int		 rv;

	memset(&sr, 0, sizeof(sr));
	sr.sr_ctx = a->a_ctx;
	sr.sr_loopback = http_peer(a->a_hr, peer, sizeof(peer));
	sr.sr_peer = peer;
	sr.sr_user = a->a_hr->hr_authed ? a->a_hr->hr_user : NULL;
	sr.sr_roles = a->a_hr->hr_roles;
	if (value) {
		sr.sr_value = value;
		sr.sr_vlen = params_find(&a->a_hr->hr_params, "value")->p_vlen;
	} else {
		sr.sr_value = a->a_hr->hr_body ? a->a_hr->hr_body : "";
		sr.sr_vlen = a->a_hr->hr_bodylen;
	}
	if (name) {
		if ((m = local_by_name(a, name)) == NULL &&
		    (pcmode(a) == PMCD_NONE || pmcd_owned_name(name) ||
		    api_pcstore(a, name, &sr, PM_ID_NULL, &rv)))
			return api_error(a, 400, 1, PM_ERR_NAME, "%s - failed "
			    "to lookup metric", name);
	} else if (parse_pmid(spmid, &pmid) == -1 ||
	    ((m = local_by_pmid(a, pmid)) == NULL &&
	    (pcmode(a) == PMCD_NONE || pmID_domain(pmid) == BT_DOMAIN ||
	    api_pcstore(a, NULL, &sr, pmid, &rv)))) {
		return api_error(a, 400, 1, PM_ERR_PMID, "%s - failed to "
		    "lookup PMID", spmid);
	}
	if (m == NULL)
		return rv;	/* pmcd's metric: answered */
	if (memchr(sr.sr_value, '\0', sr.sr_vlen) != NULL)
		return api_error(a, 400, 1, PM_ERR_BADSTORE, "failed to store "
		    "value to metric %s: Bad input to pmstore: value contains "
		    "a NUL byte", m->m_name);
	if (!value_fits_type(m->m_type, sr.sr_value, sr.sr_vlen))
		return api_error(a, 400, 1, PM_ERR_TYPE, "failed to store "
		    "value to metric %s: Unknown or illegal metric type",
		    m->m_name);
	if (m->m_store == NULL)
		return api_error(a, 400, 1, PM_ERR_PERMISSION, "failed to "
		    "store value to metric %s: No permission to perform "
		    "requested operation", m->m_name);
	if ((rv = m->m_store(m, &sr, err, sizeof(err))) != 0)
		return api_error(a, rv < -1 ? (unsigned)-rv : 400, 1,
		    store_code(rv, err), "failed to store value to metric "
		    "%s: %s", m->m_name, err);
	return send_success(a);
}

/* --- derive --- */

/* libpcp's wording for errors that are PMAPI codes, not parse errors */
static void
derive_pmapi_text(struct buf *err, const char *name, const char *why)
{
	buf_printf(err, "Error: pmAddDerivedMetric(\"%s\", ...): returns %d\n"
	    "%s\n", name, PM_ERR_BADDERIVE, why);
}

/*
 * pmAddDerivedMetric() on this context, in libpcp's order: the limit,
 * a duplicate name, the syntax; then the metric takes the next pmid, and
 * a semantic error keeps it (name and pmid stay used, as in libpcp).
 * An operand that is not known (yet) is no error: pmproxy answers
 * success and the metric stays invisible until its operands exist.
 */
static int
derive_one(struct api *a, const char *name, const char *expr,
    struct buf *err)
{
	struct ctxtab	*ct = a->a_ds->ctx;
	size_t		 max = a->a_ds->cfg.max_derived;
	struct dexpr	*tree, *bound = NULL;
	struct dmetric	*dm;
	struct ddesc	 d;
	const char	*why = NULL;
	char		 lim[128];
	int		 rc;

	snprintf(lim, sizeof(lim), "Too many per-context derived metrics "
	    "(bpftraced limit %zu, see --max-derived)", max);
	if (strlen(name) > DERIVE_MAX_EXPR) {
		derive_pmapi_text(err, "...", "Derived metric name too long");
		return -1;
	}
	if (a->a_dset && a->a_dset->ds_n >= max) {
		derive_pmapi_text(err, name, lim);
		return -1;
	}
	if (dset_find(a->a_dset, name)) {
		derive_pmapi_text(err, name, "Duplicate per-context derived "
		    "metric name");
		return -1;
	}
	if (derive_parse(name, expr, &tree, err) == -1)
		return -1;
	rc = derive_bind(tree, derive_find, a, &bound, &d, &why);
	derive_free(bound);
	derive_free(tree);
	if ((dm = dmetric_new(name, expr, rc == -1)) == NULL) {
		derive_pmapi_text(err, name, "Out of memory");
		return -1;
	}
	rc = rc == -1 ? -1 : 0;
	switch (ctx_derive_add(ct, a->a_ctx, dm, max)) {
	case CTX_OK:
		break;
	case CTX_DUP:
		derive_pmapi_text(err, name, "Duplicate per-context derived "
		    "metric name");
		rc = -2;
		break;
	case CTX_LIMIT:
		derive_pmapi_text(err, name, lim);
		rc = -2;
		break;
	case CTX_BYTES:
		snprintf(lim, sizeof(lim), "Derived metrics of this context "
		    "would hold more than %zu bytes (bpftraced limit, see "
		    "--max-derived-bytes)", a->a_ds->cfg.max_derived_bytes);
		derive_pmapi_text(err, name, lim);
		rc = -2;
		break;
	case CTX_NOMEM:
		memcap_message(&a->a_ds->mem, lim, sizeof(lim));
		derive_pmapi_text(err, name, lim);
		a->a_status = 503;
		rc = -2;
		break;
	case CTX_UNKNOWN:
		buf_printf(err, "unknown context identifier: %u", a->a_ctx);
		rc = -2;
		break;
	default:
		derive_pmapi_text(err, name, "Out of memory");
		rc = -2;
		break;
	}
	if (rc == -1)
		derive_semantic_text(err, name, expr, why);
	dmetric_unref(dm);
	/* later lines of a config see this one */
	dset_release(a->a_dset);
	a->a_dset = NULL;
	if (ctx_use(ct, a->a_ctx, NULL, &a->a_dset) == CTX_OK)
		ctx_done(ct, a->a_ctx);
	return rc < 0 ? -1 : 0;
}

static int
is_marker(char c)
{
	return c == '\r' || c == '\n' || c == '&' || c == ';';
}

/*
 * pmproxy's "configuration file" form (webgroup.c): "name = expr" lines,
 * '#' comments, every line ending in a newline (or & or ;); the first
 * error stops it, earlier lines stay registered. Line numbers count the
 * way pmproxy counts them (from 0, blank lines included).
 */
static int
derive_config(struct api *a, const char *s, size_t len, struct buf *err)
{
	unsigned	 line = 0;
	size_t		 p = 0, ns, ne, es;
	char		*name, *expr;
	struct buf	 sub;
	int		 rc;

	while (p < len) {
		if (isspace((unsigned char)s[p])) {
			if (s[p++] == '\n')
				line++;
			continue;
		}
		if (s[p] == '#') {
			while (p < len && !is_marker(s[p]))
				p++;
			if (p == len)
				break;
			line++;
			p++;
			continue;
		}
		ns = p;
		while (p < len && !isspace((unsigned char)s[p]) && s[p] != '=')
			p++;
		if (p == len) {
			ne = len;
			goto incomplete;
		}
		ne = p++;
		while (p < len && ((isspace((unsigned char)s[p]) &&
		    !is_marker(s[p])) || s[p] == '='))
			p++;
		es = p;
		while (p < len && !is_marker(s[p]))
			p++;
		if (p == len)
			goto incomplete;
		name = strndup(s + ns, ne - ns);
		expr = strndup(s + es, p - es);
		buf_init(&sub, 0);
		rc = name && expr ? derive_one(a, name, expr, &sub) : -1;
		if (rc == -1)
			buf_printf(err, "failed to create derived metric \"%s\" "
			    "on line %u from: %s\n%s", name ? name : "", line,
			    expr ? expr : "", buf_cstr(&sub));
		buf_free(&sub);
		free(name);
		free(expr);
		if (rc == -1)
			return -1;
		line++;
		p++;
	}
	return 0;
incomplete:
	name = strndup(s + ns, ne - ns);
	buf_printf(err, "failed to parse derived metric \"%s\" on line %u - "
	    "incomplete expression\n", name ? name : "", line);
	free(name);
	return -1;
}

static int
derive_too_big(struct api *a)
{
	char	 msg[160];

	snprintf(msg, sizeof(msg), "Derived metrics of this context would "
	    "hold more than %zu bytes (bpftraced limit, see "
	    "--max-derived-bytes)", a->a_ds->cfg.max_derived_bytes);
	return send_error_msg(a, 400, PM_ERR_BADDERIVE, msg);
}

/*
 * GET name= and expr=: one metric. expr= alone, or a POST body when there
 * is no expr= (pmproxy adds the body as expr unless one is there): the
 * configuration form. A POST body with name= is that metric's expression.
 */
int
api_run_derive(struct api *a)
{
	const char	*name = api_param(a, "name");
	const char	*expr = api_param(a, "expr");
	struct httpreq	*hr = a->a_hr;
	struct buf	 err;
	char		*body = NULL;
	int		 rc;

	/* pmwebd had no derived metrics: "_derive" is a bad request there */
	if (API_PMWEBD(a))
		return send_error(a, 400, 1, "derived metrics are not served "
		    "in the pmwebd dialect");
	if (expr == NULL && strcmp(hr->hr_method, "POST") == 0 &&
	    hr->hr_body && hr->hr_bodylen > 0) {
		if ((body = strndup(hr->hr_body, hr->hr_bodylen)) == NULL)
			return api_error(a, 503, 1, -ENOMEM,
			    "out of memory");
		expr = body;
	}
	if (expr == NULL) {
		free(body);
		return send_error(a, 400, 1, "invalid derive parameters");
	}
	/* more text than a context may hold: refused before any parsing */
	if ((body ? hr->hr_bodylen : strlen(expr)) >
	    a->a_ds->cfg.max_derived_bytes) {
		free(body);
		return derive_too_big(a);
	}
	buf_init(&err, 0);
	if (name)
		rc = derive_one(a, name, expr, &err);
	else
		rc = derive_config(a, expr, body ? hr->hr_bodylen :
		    strlen(expr), &err);
	free(body);
	rc = rc == 0 ? send_success(a) : send_error_msg(a, a->a_status ?
	    a->a_status : 400, PM_ERR_BADDERIVE, buf_cstr(&err));
	buf_free(&err);
	return rc;
}

/* --- the command table, matched by prefix in pmproxy's order --- */

#define GP	(HTTP_GET | HTTP_POST)
static const struct cmd cmds[] = {
	{ "context",  EP_CONTEXT,  HTTP_GET, api_ok_always, run_context, 0 },
	{ "profile",  EP_PROFILE,  HTTP_GET, api_ok_profile, api_run_profile,
	    0 },
	{ "metric",   EP_METRIC,   HTTP_GET, api_ok_always, api_run_metric, 0 },
	{ "derive",   EP_DERIVE,   GP, api_ok_derive, api_run_derive, 0 },
	{ "fetch",    EP_FETCH,    HTTP_GET, api_ok_fetch, run_fetch, 0 },
	{ "indom",    EP_INDOM,    HTTP_GET, api_ok_indom, api_run_indom, 0 },
	{ "store",    EP_STORE,    GP, api_ok_store, api_run_store, 0 },
	{ "children", EP_CHILDREN, HTTP_GET, api_ok_always, api_run_children,
	    0 },
	{ NULL, EP_OTHER, 0, NULL, NULL, 0 }
};
#undef GP

/*
 * "/pmapi/[N/][_]cmd": sets *ctxp to the path's context text, or NULL.
 * A "_" command is pmproxy's compat mode, the pmwebd dialect
 * (api_pmwebd.c), and so is "/pmapi/X/_cmd" with a non-numeric X,
 * which pmwebd refused as a bad URL.
 */
static const struct cmd *
lookup_cmd(const char *path, char *ctxbuf, size_t ctxlen, const char **ctxp)
{
	const char	*p = path + strlen("/pmapi/");
	size_t		 digits = strspn(p, "0123456789");
	size_t		 seg = strcspn(p, "/");

	*ctxp = NULL;
	if (digits > 0 && p[digits] == '/') {
		if (digits >= ctxlen)
			return NULL;
		memcpy(ctxbuf, p, digits);
		ctxbuf[digits] = '\0';
		*ctxp = ctxbuf;
		p += digits + 1;
	} else if (p[seg] == '/' && p[seg + 1] == '_') {
		return api_pmwebd_bad_url();
	}
	if (*p == '_')
		return api_pmwebd_lookup(p);
	if (strcmp(p, "metrics") == 0 || strncmp(p, "metrics?", 8) == 0)
		return NULL;	/* the scrape servlet: not served yet */
	for (const struct cmd *c = cmds; c->c_name; c++)
		if (strncmp(p, c->c_name, strlen(c->c_name)) == 0)
			return c;
	return NULL;
}

/* who asks: the principal for control answers and --auth-reads */
static void
set_reader(struct api *a)
{
	http_peer(a->a_hr, a->a_peer, sizeof(a->a_peer));
	a->a_rd.rd_ctx = a->a_ctx;
	a->a_rd.rd_user = a->a_hr->hr_authed ? a->a_hr->hr_user : NULL;
	a->a_rd.rd_roles = a->a_hr->hr_authed ? a->a_hr->hr_roles : 0;
	a->a_rd.rd_peer = a->a_peer;
}

int
api_pmapi(struct httpreq *hr)
{
	struct api	 a;
	char		 ctxbuf[32];
	const char	*pathctx;
	int		 ret;

	memset(&a, 0, sizeof(a));
	a.a_pcmode = -1;
	a.a_hr = hr;
	a.a_ds = hr->hr_ds;
	if ((a.a_cmd = lookup_cmd(hr->hr_path, ctxbuf, sizeof(ctxbuf),
	    &pathctx)) == NULL) {
		atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
		return http_reply_html(hr, 400, "unknown servlet",
		    "no handler for URL");
	}
	atomic_fetch_add(&hr->hr_ds->stats.st_requests[a.a_cmd->c_ep], 1);
	if (a.a_cmd->c_flags & CMD_NOCTX)	/* pmwebd's bad URL */
		return a.a_cmd->c_run(&a);
	if (!a.a_cmd->c_params_ok(hr))
		return http_reply_html(hr, 400, "webapi servlet",
		    "failed to process URL");
	if (strcmp(hr->hr_method, "OPTIONS") == 0)
		return http_reply_options(hr, a.a_cmd->c_methods);
	a.a_ctxstr = pathctx ? pathctx : api_param(&a, "context");
	api_buf_init(&a, &a.a_out);
	if (a.a_cmd->c_ep == EP_CONTEXT && a.a_ctxstr == NULL &&
	    !API_PMWEBD(&a)) {
		const struct cmd	*w = api_pmwebd_context_form(hr);

		if (w != NULL) {	/* pmwebd's own context creation */
			a.a_cmd = w;
			ret = w->c_run(&a);
			buf_free(&a.a_out);
			return ret;
		}
	}
	if (resolve_context(&a, &ret) == 0) {
		set_reader(&a);
		a.a_ns = reg_acquire(hr->hr_ds->reg);
		ret = a.a_cmd->c_run(&a);
		ns_release(a.a_ns);
	}
	if (a.a_held)
		ctx_done(hr->hr_ds->ctx, a.a_ctx);
	profile_release(a.a_prof);
	dset_release(a.a_dset);
	pcbatch_free(a.a_pcb);
	buf_free(&a.a_out);
	return ret;
}
