/* SPDX-License-Identifier: MIT */
/*
 * api_metrics.c - GET /metrics: the registry's numeric metrics as
 * Prometheus text, named as pmproxy 6.0.3's /metrics names them, so
 * dashboards built on a pmproxy scrape still match:
 *
 *   # PCP5 bpftrace.daemon.requests 151.2.1 u64 151.1 counter count
 *   # HELP bpftrace_daemon_requests HTTP API requests served, per endpoint
 *   # TYPE bpftrace_daemon_requests counter
 *   bpftrace_daemon_requests{domainname="..",hostname="..",machineid="..",
 *       instname="fetch",instid="2"} 17
 *
 * '.' becomes '_'; TYPE is counter for PM_SEM_COUNTER, gauge otherwise;
 * labels are the context labels, the metric's labels and, per instance,
 * instname and instid; string metrics (text output, versions) are left
 * out, as pmproxy leaves them out. names= is a list of PMNS prefixes
 * (pmproxy 6.0.3); an unknown one is pmproxy's 400 JSON error.
 *
 * Differences from pmproxy, on purpose:
 *  - bpftrace hist()/lhist() variables (label metrictype=histogram,
 *    instances "lo-hi" or "key:lo-hi", inclusive integer bounds) are real
 *    Prometheus histograms: cumulative NAME_bucket{le="hi"} series ending
 *    in le="+Inf", and NAME_count. NAME_sum is never written: bpftrace's
 *    buckets do not carry the sum of the values. A keyed histogram has
 *    one series set per key, the key in instname (no instid: it differs
 *    per bucket).
 *  - Label values and HELP are escaped as the format says (pmproxy does
 *    not escape); bytes that are not UTF-8 become U+FFFD.
 *  - times=true appends milliseconds computed correctly (pmproxy 6.0.3
 *    divides the nanoseconds by 1000).
 *  - A client that accepts application/openmetrics-text (Prometheus does,
 *    by default) gets OpenMetrics 1.0.0: no "# PCP5" comments, "# EOF" at
 *    the end, timestamps in seconds, histograms without _count (the
 *    format ties _count to _sum), counters as counter families of
 *    NAME_total samples (the format requires the suffix; the text form
 *    keeps pmproxy's names).
 *
 * names=, else name=, else target= (pmproxy's order); /pmapi/metrics and
 * /pmapi/N/metrics answer the same (N, or context=, must be alive). A
 * scrape without names is bpftraced's metrics; a name it does not own
 * is read from pmcd when passthrough is on (scrape_pmcd.c).
 * Threads: HTTP workers; reads one namespace generation and one snapshot
 * per source, like a fetch.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "http.h"
#include "pcp.h"
#include "registry.h"
#include "scrape.h"
#include "util.h"

#define TEXT_CT		"text/plain; version=0.0.4; charset=utf-8"
#define OM_CT		"application/openmetrics-text; version=1.0.0; " \
			"charset=utf-8"

static int
numeric(int type)
{
	return type == PM_TYPE_32 || type == PM_TYPE_U32 ||
	    type == PM_TYPE_64 || type == PM_TYPE_U64 ||
	    type == PM_TYPE_FLOAT || type == PM_TYPE_DOUBLE;
}

/* --- labels --- */

/* The context labels, then the metric's ("k":"v" JSON members). */
static void
put_base_labels(struct scrape *sc, const struct metric *m, int *first)
{
	struct daemon_state	*ds = sc->hr->hr_ds;
	struct buf		*b = &sc->out;
	const char		*p = m->m_labels;

	scrape_label(b, first, "domainname", ds->domainname,
	    strlen(ds->domainname));
	scrape_label(b, first, "hostname", ds->hostname, strlen(ds->hostname));
	if (ds->machineid[0])
		scrape_label(b, first, "machineid", ds->machineid,
		    strlen(ds->machineid));
	/* our labels are flat: "key":"value" or "key":token, no escapes */
	while (p && *p) {
		const char	*k, *ke, *v, *ve;
		char		 key[128];

		if ((k = strchr(p, '"')) == NULL || (ke = strchr(k + 1, '"')) ==
		    NULL || ke[1] != ':')
			break;
		v = ke + 2;
		if (*v == '"') {
			v++;
			if ((ve = strchr(v, '"')) == NULL)
				break;
			p = ve + 1;
		} else {
			ve = v + strcspn(v, ",");
			p = ve;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(ke - k - 1), k + 1);
		scrape_label(b, first, key, v, (size_t)(ve - v));
		if (*p == ',')
			p++;
	}
}

/* --- instance names --- */

struct iname {
	uint32_t	 id;
	const char	*name;
};

static int
iname_cmp(const void *a, const void *b)
{
	const struct iname	*x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* id -> name for one metric's instances; NULL names when none known */
static struct iname *
inames(struct scrape *sc, const struct metric *m, const struct snap *s,
    int *np)
{
	const struct indom	*in = ns_indom(sc->ns, m->m_indom);
	const struct instlist	*il = NULL;
	struct iname		*v;
	struct snap		*is;

	*np = 0;
	if (in && in->i_src) {
		is = in->i_src == m->m_src ? (struct snap *)s :
		    snapcache_get(&sc->snaps, in->i_src);
		il = snap_instances(is, in);
	}
	if (il == NULL || il->il_n <= 0)
		return NULL;
	if ((v = calloc((size_t)il->il_n, sizeof(*v))) == NULL)
		return NULL;
	for (int i = 0; i < il->il_n; i++) {
		v[i].id = il->il_ids[i];
		v[i].name = il->il_names[i];
	}
	qsort(v, (size_t)il->il_n, sizeof(*v), iname_cmp);
	*np = il->il_n;
	return v;
}

static const char *
iname_find(const struct iname *v, int n, uint32_t id)
{
	struct iname	 key = { .id = id }, *r;

	if (v == NULL)
		return NULL;
	r = bsearch(&key, v, (size_t)n, sizeof(*v), iname_cmp);
	return r ? r->name : NULL;
}

/* --- one metric --- */

static void
metric_meta(const struct metric *m, struct scrape_meta *mt)
{
	mt->name = m->m_name;
	mt->pmid = m->m_pmid;
	mt->type = metric_describe(m);	/* # PCP5 and TYPE lines */
	mt->indom = m->m_indom;
	mt->sem = m->m_sem;
	mt->units = m->m_units;
	mt->oneline = m->m_oneline;
}

static void
put_plain(struct scrape *sc, const struct metric *m, const struct snap *s,
    const struct valset *vs)
{
	struct buf		*b = &sc->out;
	struct scrape_meta	 mt;
	const char		*suffix;
	struct iname		*names = NULL;
	int			 nnames = 0;

	metric_meta(m, &mt);
	suffix = scrape_head_as(sc, &mt, NULL);
	if (vs->vs_inst)
		names = inames(sc, m, s, &nnames);
	for (int i = 0; i < vs->vs_n; i++) {
		int	 first = 1;
		char	 id[16];

		scrape_name(b, m->m_name);
		buf_puts(b, suffix);
		put_base_labels(sc, m, &first);
		if (vs->vs_inst) {
			const char	*nm = iname_find(names, nnames,
			    vs->vs_inst[i]);

			snprintf(id, sizeof(id), "%u", vs->vs_inst[i]);
			scrape_label(b, &first, "instname", nm ? nm : id,
			    strlen(nm ? nm : id));
			scrape_label(b, &first, "instid", id, strlen(id));
		}
		buf_puts(b, "} ");
		scrape_value(b, mt.type, &vs->vs_vals[i], sc->om);
		scrape_time(sc, &s->s_ts);
		buf_putc(b, '\n');
	}
	free(names);
}

/* one bucket of a histogram instance: key part, bounds, count */
struct bucket {
	const char	*key;	/* not NUL-terminated: keylen bytes */
	size_t		 keylen;
	int		 hiinf;
	long double	 hi;
	uint64_t	 count;
	int		 order;
};

/*
 * "-inf", "inf" or an integer (an int64 or a u64: the bounds ingest
 * writes into bucket names); returns the end or NULL
 */
static const char *
parse_bound(const char *p, long double *out, int *inf)
{
	char		 num[32];
	const char	*errstr;
	int		 neg = *p == '-';
	size_t		 n;

	*inf = 0;
	if (strncmp(p + neg, "inf", 3) == 0) {
		*inf = neg ? -1 : 1;
		*out = 0;
		return p + neg + 3;
	}
	n = (size_t)neg + strspn(p + neg, "0123456789");
	if (n == (size_t)neg || n >= sizeof(num))
		return NULL;
	memcpy(num, p, n);
	num[n] = '\0';
	if (neg)
		*out = (long double)strtonum_ll(num, INT64_MIN, 0, &errstr);
	else
		*out = (long double)strtonum_ull(num, 0, UINT64_MAX, &errstr);
	return errstr == NULL ? p + n : NULL;
}

/* "key:lo-hi" (keyed) or "lo-hi" */
static int
parse_bucket(const char *name, int keyed, struct bucket *bk)
{
	const char	*p = name, *c;
	long double	 lo;
	int		 loinf;

	bk->key = "";
	bk->keylen = 0;
	if (keyed) {
		if ((c = strrchr(name, ':')) == NULL)
			return -1;
		bk->key = name;
		bk->keylen = (size_t)(c - name);
		p = c + 1;
	}
	if ((p = parse_bound(p, &lo, &loinf)) == NULL || *p++ != '-' ||
	    loinf == 1 || (p = parse_bound(p, &bk->hi, &bk->hiinf)) == NULL ||
	    *p != '\0' || bk->hiinf == -1)
		return -1;
	return 0;
}

static int
bucket_cmp(const void *a, const void *b)
{
	const struct bucket	*x = a, *y = b;
	size_t			 n = x->keylen < y->keylen ? x->keylen :
	    y->keylen;
	int			 c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	if (x->keylen != y->keylen)
		return x->keylen < y->keylen ? -1 : 1;
	if (x->hiinf != y->hiinf)
		return x->hiinf - y->hiinf;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return x->order - y->order;
}

static void
put_hist_sample(struct scrape *sc, const struct metric *m,
    const struct snap *s, const char *suffix, const struct bucket *bk,
    int keyed, const char *le, uint64_t v)
{
	struct buf	*b = &sc->out;
	int		 first = 1;

	scrape_name(b, m->m_name);
	buf_puts(b, suffix);
	put_base_labels(sc, m, &first);
	if (keyed)
		scrape_label(b, &first, "instname", bk->key, bk->keylen);
	if (le)
		scrape_label(b, &first, "le", le, strlen(le));
	buf_printf(b, "} %" PRIu64, v);
	scrape_time(sc, &s->s_ts);
	buf_putc(b, '\n');
}

/*
 * A bpftrace histogram as a Prometheus histogram; -1 when its instance
 * names are not buckets (then it is written as a plain metric).
 */
static int
put_hist(struct scrape *sc, const struct metric *m, const struct snap *s,
    const struct valset *vs)
{
	struct scrape_meta	 mt;
	struct bucket		*bk;
	struct iname		*names;
	int			 nnames, keyed = -1, ret = -1;

	int			 type = metric_type(m);

	if (vs->vs_inst == NULL || (type != PM_TYPE_U64 &&
	    type != PM_TYPE_64 && type != PM_TYPE_U32 &&
	    type != PM_TYPE_32))
		return -1;
	if ((names = inames(sc, m, s, &nnames)) == NULL)
		return -1;
	if ((bk = calloc((size_t)vs->vs_n, sizeof(*bk))) == NULL)
		goto done;
	for (int i = 0; i < vs->vs_n; i++) {
		const char	*nm = iname_find(names, nnames, vs->vs_inst[i]);
		int		 k;

		if (nm == NULL)
			goto done;
		k = strchr(nm, ':') != NULL;
		if (keyed == -1)
			keyed = k;
		if (k != keyed || parse_bucket(nm, keyed, &bk[i]) == -1)
			goto done;
		bk[i].order = i;
		bk[i].count = type == PM_TYPE_64 || type ==
		    PM_TYPE_32 ? (vs->vs_vals[i].i < 0 ? 0 :
		    (uint64_t)vs->vs_vals[i].i) : vs->vs_vals[i].u;
	}
	qsort(bk, (size_t)vs->vs_n, sizeof(*bk), bucket_cmp);
	metric_meta(m, &mt);
	scrape_head_as(sc, &mt, "histogram");
	for (int i = 0; i < vs->vs_n; ) {
		uint64_t	 cum = 0;
		int		 j, inf = 0;
		char		 le[64];

		for (j = i; j < vs->vs_n && bk[j].keylen == bk[i].keylen &&
		    memcmp(bk[j].key, bk[i].key, bk[i].keylen) == 0; j++) {
			cum += bk[j].count;
			if (bk[j].hiinf) {
				inf = 1;
				snprintf(le, sizeof(le), "+Inf");
			} else
				snprintf(le, sizeof(le), "%.0Lf%s", bk[j].hi,
				    sc->om ? ".0" : "");
			/* equal bounds (cannot happen in bpftrace): merged */
			if (j + 1 < vs->vs_n && bk[j + 1].keylen ==
			    bk[j].keylen && memcmp(bk[j + 1].key, bk[j].key,
			    bk[j].keylen) == 0 && bk[j + 1].hiinf ==
			    bk[j].hiinf && bk[j + 1].hi == bk[j].hi)
				continue;
			put_hist_sample(sc, m, s, "_bucket", &bk[j], keyed, le,
			    cum);
		}
		if (!inf)
			put_hist_sample(sc, m, s, "_bucket", &bk[i], keyed,
			    "+Inf", cum);
		if (!sc->om)
			put_hist_sample(sc, m, s, "_count", &bk[i], keyed, NULL,
			    cum);
		i = j;
	}
	ret = 0;
done:
	free(bk);
	free(names);
	return ret;
}

static int
is_hist(const struct metric *m)
{
	return m->m_labels && strstr(m->m_labels,
	    "\"metrictype\":\"histogram\"") != NULL;
}

static void
put_metric(struct scrape *sc, const struct metric *m)
{
	const struct valset	*vs;
	struct snap		*s;

	if (!numeric(metric_type(m)) || m->m_ctxval || m->m_src == NULL ||
	    access_metric(sc->hr->hr_ds->cfg.auth_reads, m, &sc->rd) !=
	    ACCESS_ALL ||
	    (s = snapcache_get(&sc->snaps, m->m_src)) == NULL ||
	    m->m_slot >= s->s_nsets)
		return;
	vs = &s->s_sets[m->m_slot];
	if (vs->vs_n <= 0)
		return;		/* no values: nothing to write */
	if (!numeric(metric_describe(m)))
		return;		/* decided by a print newer than the check */
	if (is_hist(m) && put_hist(sc, m, s, vs) == 0)
		return;
	put_plain(sc, m, s, vs);
}

/* pmcd's own agent (pmcd.*): served by pmcd when it answers */
#define PMCD_OWN_DOMAIN	2

/*
 * Every metric of ours at or below name; 0 when there is none. With
 * hide_pmcd, ours in pmcd's domain are left out (pmcd serves them).
 */
static size_t
put_tree(struct scrape *sc, const char *name, int hide_pmcd)
{
	struct metric	*m;
	size_t		 lo, n, k = 0;

	if (*name && (m = ns_metric_by_name(sc->ns, name)) != NULL) {
		if (hide_pmcd && pmID_domain(m->m_pmid) == PMCD_OWN_DOMAIN)
			return 0;
		put_metric(sc, m);
		return 1;
	}
	if (*name == '\0') {
		for (size_t i = 0; i < sc->ns->ns_nmetrics; i++)
			put_metric(sc, sc->ns->ns_by_name[i]);
		return sc->ns->ns_nmetrics;
	}
	n = ns_prefix_range(sc->ns, name, &lo);
	for (size_t i = lo; i < lo + n; i++) {
		m = sc->ns->ns_by_name[i];
		if (hide_pmcd && pmID_domain(m->m_pmid) == PMCD_OWN_DOMAIN)
			continue;
		put_metric(sc, m);
		k++;
	}
	return k;
}

/*
 * One name of names=: ours (bpftrace.*, and pmcd.* while pmcd is not
 * answering), else pmcd's when passthrough is on. How many metrics were
 * found, -1 when pmcd failed (sc->pmcd_err) or memory ran out.
 */
static int
put_name_tree(struct scrape *sc, const char *name, int *mode)
{
	size_t	 n;

	if (pmcd_owned_name(name))
		return (int)(put_tree(sc, name, 0) > 0);
	if (*mode < 0)
		*mode = pmcd_mode();
	if (*mode == PMCD_UP)
		return scrape_pmcd(sc, name);
	if ((n = put_tree(sc, name, 0)) > 0 || *mode == PMCD_NONE)
		return n > 0;
	return scrape_pmcd(sc, name);
}

/*
 * An Accept q-value above 0? The number after "q=", up to ';' or white
 * space; what is not a number counts as 0 (strtod's reading before read
 * a leading number and ignored the rest: "q=0.5x" was 0.5, now 0).
 */
static int
qvalue_positive(char *s)
{
	const char	*errstr;
	double		 q;

	s += strspn(s, " \t");
	s[strcspn(s, "; \t")] = '\0';
	q = strtonum_d(s, -HUGE_VAL, HUGE_VAL, &errstr);
	return errstr == NULL && q > 0;
}

/* Accept: does the client take OpenMetrics (with a q above 0)? */
static int
wants_openmetrics(const char *accept)
{
	const char	*p = accept;

	while (p && *p) {
		size_t	 n = strcspn(p, ",");
		char	 item[256], *q;

		snprintf(item, sizeof(item), "%.*s", (int)n, p);
		p += n;
		if (*p == ',')
			p++;
		q = item + strspn(item, " \t");
		if (strncasecmp(q, "application/openmetrics-text", 28) != 0 ||
		    (q[28] != '\0' && q[28] != ';' && q[28] != ' '))
			continue;
		if ((q = strstr(q, "q=")) != NULL && !qvalue_positive(q + 2))
			continue;
		return 1;
	}
	return 0;
}

/* pmproxy's JSON error, with the temporary context it made */
static int
json_error(struct scrape *sc, const char *msg)
{
	struct buf	 b;
	uint32_t	 id = 0;
	char		 peer[64];
	char		*body;
	size_t		 len;

	http_peer(sc->hr, peer, sizeof(peer));
	if (ctx_create_for(sc->hr->hr_ds->ctx, BT_CTX_TIMEOUT, peer, &id) !=
	    CTX_OK)
		id = 0;
	buf_init(&b, sc->hr->hr_ds->cfg.max_answer);	/* an answer */
	buf_printf(&b, "{\"context\":%u,\"message\":", id);
	json_str(&b, msg);
	buf_puts(&b, ",\"success\":false}\r\n");
	if (b.b_failed) {
		buf_free(&b);
		return http_reply_error(sc->hr, 503, "out of memory");
	}
	body = buf_take(&b, &len);
	return http_reply(sc->hr, 400, "application/json", body, len);
}

static int
unknown_name(struct scrape *sc, const char *name)
{
	char	 msg[1100];

	snprintf(msg, sizeof(msg), "'%.1024s' - Unknown metric name", name);
	return json_error(sc, msg);
}

/*
 * The context named by the path (/pmapi/N/metrics) or by context=, as
 * pmproxy checks it: 0 (none named, or alive: its timeout restarts), or
 * -1 after its 400 answer (*ret).
 */
static int
check_context(struct httpreq *hr, const char *ctxstr, int *ret)
{
	const char	*errstr;
	struct buf	 b;
	long long	 id;
	char		 msg[160], *body;
	size_t		 len;

	if (ctxstr == NULL)
		return 0;
	id = strtonum_ll(ctxstr, 0, UINT32_MAX, &errstr);
	if (errstr == NULL && ctx_use(hr->hr_ds->ctx, (uint32_t)id, NULL,
	    NULL) == CTX_OK) {
		ctx_done(hr->hr_ds->ctx, (uint32_t)id);
		return 0;
	}
	snprintf(msg, sizeof(msg), "%s context identifier: %.64s",
	    errstr ? "invalid" : "unknown", ctxstr);
	buf_init(&b, hr->hr_ds->cfg.max_answer);	/* an answer */
	buf_puts(&b, "{\"context\":");
	if (errstr)
		json_str(&b, ctxstr);
	else
		buf_printf(&b, "%lld", id);
	buf_puts(&b, ",\"message\":");
	json_str(&b, msg);
	buf_puts(&b, ",\"success\":false}\r\n");
	if (b.b_failed) {
		buf_free(&b);
		*ret = http_reply_error(hr, 503, "out of memory");
		return -1;
	}
	body = buf_take(&b, &len);
	*ret = http_reply(hr, 400, "application/json", body, len);
	return -1;
}

/*
 * /pmapi/metrics and /pmapi/N/metrics: pmproxy's scrape servlet under
 * /pmapi/ (what /metrics answers, N a context that must be alive). The
 * context text goes to ctxbuf; 1 when path is one of them.
 */
static int
pmapi_scrape_path(const char *path, char *ctxbuf, size_t ctxlen,
    const char **ctxp)
{
	const char	*p;
	size_t		 digits;

	*ctxp = NULL;
	if (strncmp(path, "/pmapi/", 7) != 0)
		return 0;
	p = path + 7;
	if (strcmp(p, "metrics") == 0)
		return 1;
	digits = strspn(p, "0123456789");
	if (digits == 0 || digits >= ctxlen || strcmp(p + digits, "/metrics"))
		return 0;
	memcpy(ctxbuf, p, digits);
	ctxbuf[digits] = '\0';
	*ctxp = ctxbuf;
	return 1;
}

int
api_metrics_path(const char *path)
{
	char		 ctx[32];
	const char	*c;

	return strcmp(path, "/metrics") == 0 ||
	    pmapi_scrape_path(path, ctx, sizeof(ctx), &c);
}

static size_t
count_names(const char *s)
{
	size_t	 n = 1;

	for (; *s; s++)
		n += *s == ',';
	return n;
}

/* past --max-answer-bytes (400), or the memory ceiling refused (503) */
static int
answer_failed(struct httpreq *hr, int why)
{
	char	 msg[256];

	if (why == BUF_REFUSED)
		return http_reply_memcap(hr);
	if (why != BUF_TOO_BIG)
		return http_reply_error(hr, 503, "out of memory");
	snprintf(msg, sizeof(msg), "answer too large: more than %zu bytes "
	    "(ask for fewer metrics, or raise --max-answer-bytes)",
	    hr->hr_ds->cfg.max_answer);
	return http_reply_error(hr, 400, msg);
}

/* names=, else name=, else target= (pmwebd's): pmproxy's order */
static const char *
scrape_names(struct httpreq *hr)
{
	static const char *const keys[] = { "names", "name", "target" };
	const char	*v;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((v = params_get(&hr->hr_params, keys[i])) != NULL)
			return v;
	return NULL;
}

/* each name of the list, in order; -1 after an error answer (*ret) */
static int
put_names(struct scrape *sc, const char *names, int *ret)
{
	char	*list, *save = NULL, *tok;
	int	 mode = -1, n = 0;

	if ((list = strdup(names)) == NULL) {
		*ret = http_reply_error(sc->hr, 503, "out of memory");
		return -1;
	}
	for (tok = strtok_r(list, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		if ((n = put_name_tree(sc, tok, &mode)) > 0)
			continue;
		if (n == 0)
			*ret = unknown_name(sc, tok);
		else if (sc->pmcd_err)
			*ret = json_error(sc, pmcd_error_text());
		else
			break;	/* out of memory: the buffer says so */
		free(list);
		return -1;
	}
	free(list);
	return 0;
}

int
api_metrics(struct httpreq *hr)
{
	struct scrape	 sc;
	const char	*names = scrape_names(hr);
	const char	*times = params_get(&hr->hr_params, "times");
	const char	*ctxstr;
	char		 msg[128], ctxbuf[32];
	int		 ret;

	atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
	if (strcmp(hr->hr_method, "OPTIONS") == 0)
		return http_reply_options(hr, HTTP_GET | HTTP_POST);
	if (strcmp(hr->hr_method, "GET") != 0 &&
	    strcmp(hr->hr_method, "HEAD") != 0 &&
	    strcmp(hr->hr_method, "POST") != 0)
		return http_reply_html(hr, 400, "webapi servlet",
		    "failed to process URL");
	if (!pmapi_scrape_path(hr->hr_path, ctxbuf, sizeof(ctxbuf), &ctxstr) ||
	    ctxstr == NULL)
		ctxstr = params_get(&hr->hr_params, "context");
	if (check_context(hr, ctxstr, &ret) == -1)
		return ret;
	memset(&sc, 0, sizeof(sc));
	snapcache_init(&sc.snaps, sc.snap_slot, SCRAPE_MAX_SOURCES);
	sc.hr = hr;
	sc.rd.rd_user = hr->hr_authed ? hr->hr_user : NULL;
	sc.rd.rd_roles = hr->hr_authed ? hr->hr_roles : 0;
	sc.om = wants_openmetrics(http_header(hr, "Accept"));
	sc.times = times && strcmp(times, "true") == 0;
	buf_init(&sc.out, hr->hr_ds->cfg.max_answer);
	buf_charge_to(&sc.out, &hr->hr_ds->mem);
	sc.ns = reg_acquire(hr->hr_ds->reg);
	if (names && count_names(names) > hr->hr_ds->cfg.max_names) {
		snprintf(msg, sizeof(msg), "too many metric names (at most "
		    "%zu, see --max-names)", hr->hr_ds->cfg.max_names);
		ret = http_reply_error(hr, 400, msg);
		goto done;
	}
	if (names && *names) {
		if (put_names(&sc, names, &ret) == -1)
			goto done;
	} else
		put_tree(&sc, "", 0);
	if (sc.om)
		buf_puts(&sc.out, "# EOF\n");
	if (sc.out.b_failed) {
		ret = answer_failed(hr, sc.out.b_failed);
		goto done;
	}
	ret = http_reply_buf(hr, 200, sc.om ? OM_CT : TEXT_CT, &sc.out);
done:
	buf_free(&sc.out);
	snapcache_release(&sc.snaps);
	ns_release(sc.ns);
	return ret;
}
