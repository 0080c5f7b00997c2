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
 *    format ties _count to _sum). Sample names stay pmproxy's: a PCP
 *    counter whose name does not end in _total is TYPE unknown there
 *    (OpenMetrics would otherwise require a _total sample name, which
 *    would no longer match a pmproxy dashboard).
 *
 * Only the metrics bpftraced holds are served (not pmcd's: see --pmcd).
 * Threads: HTTP workers; reads one namespace generation and one snapshot
 * per source, like a fetch.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bpftraced.h"

#define TEXT_CT		"text/plain; version=0.0.4; charset=utf-8"
#define OM_CT		"application/openmetrics-text; version=1.0.0; " \
			"charset=utf-8"
#define MAX_SOURCES	64

struct scrape {
	struct httpreq	*hr;
	struct reader	 rd;		/* --auth-reads: who scrapes */
	struct ns	*ns;
	struct buf	 out;
	int		 om;		/* OpenMetrics */
	int		 times;
	int		 nsrc;
	struct {
		struct source	*src;
		struct snap	*snap;
	} src[MAX_SOURCES];
};

static struct snap *
scrape_snap(struct scrape *sc, struct source *src)
{
	struct snap	*s;

	for (int i = 0; i < sc->nsrc; i++)
		if (sc->src[i].src == src)
			return sc->src[i].snap;
	s = source_snap(src);
	if (sc->nsrc < MAX_SOURCES) {
		sc->src[sc->nsrc].src = src;
		sc->src[sc->nsrc++].snap = s;
	} else {	/* keep the last slot's snapshot alive until the end */
		snap_release(sc->src[MAX_SOURCES - 1].snap);
		sc->src[MAX_SOURCES - 1].src = src;
		sc->src[MAX_SOURCES - 1].snap = s;
	}
	return s;
}

/* --- names, escaping, numbers --- */

/* pmproxy's mapping ('.' to '_'), plus anything else invalid to '_' */
static void
put_name(struct buf *b, const char *name)
{
	for (const char *p = name; *p; p++) {
		char	 c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9' && p != name) || c == '_' ||
		    c == ':'))
			c = '_';
		buf_putc(b, c);
	}
}

static void
put_name_n(struct buf *b, const char *name, size_t n)
{
	char	 tmp[512];

	snprintf(tmp, sizeof(tmp), "%.*s", (int)n, name);
	put_name(b, tmp);
}

/*
 * Escaped text: '\\' and '\n' always, '"' in label values (and in
 * OpenMetrics HELP); invalid UTF-8 bytes become U+FFFD.
 */
static void
put_escaped(struct buf *b, const char *s, size_t n, int quote)
{
	size_t	 i = 0;

	while (i < n) {
		unsigned char	 c = (unsigned char)s[i];

		if (c == '\\') {
			buf_puts(b, "\\\\");
			i++;
		} else if (c == '\n') {
			buf_puts(b, "\\n");
			i++;
		} else if (c == '"' && quote) {
			buf_puts(b, "\\\"");
			i++;
		} else if (c < 0x80) {
			buf_putc(b, (char)c);
			i++;
		} else {
			size_t	 k = 1;

			while (k < 4 && i + k < n &&
			    ((unsigned char)s[i + k] & 0xC0) == 0x80)
				k++;
			while (k > 0 && !utf8_valid(s + i, k))
				k--;
			if (k == 0) {
				buf_puts(b, "\xEF\xBF\xBD");
				i++;
			} else {
				buf_append(b, s + i, k);
				i += k;
			}
		}
	}
}

static void
put_label(struct buf *b, int *first, const char *key, const char *val,
    size_t vlen)
{
	buf_putc(b, *first ? '{' : ',');
	*first = 0;
	put_name(b, key);
	buf_puts(b, "=\"");
	put_escaped(b, val, vlen, 1);
	buf_putc(b, '"');
}

static void
put_float(struct buf *b, double d, int om)
{
	if (isnan(d))
		buf_puts(b, "NaN");
	else if (isinf(d))
		buf_puts(b, d > 0 ? "+Inf" : "-Inf");
	else if (om && d == floor(d) && fabs(d) < 1e15)
		buf_printf(b, "%.1f", d);
	else
		buf_printf(b, "%.17g", d);
}

/* a value as pmproxy writes it (its fetch encoding) */
static void
put_value(struct buf *b, int type, const union value *v, int om)
{
	switch (type) {
	case PM_TYPE_32:
		buf_printf(b, "%d", (int32_t)v->i);
		break;
	case PM_TYPE_U32:
		buf_printf(b, "%u", (uint32_t)v->u);
		break;
	case PM_TYPE_64:
		buf_printf(b, "%" PRId64, v->i);
		break;
	case PM_TYPE_U64:
		buf_printf(b, "%" PRIu64, v->u);
		break;
	case PM_TYPE_FLOAT:
		if (isfinite(v->d))
			buf_printf(b, "%.8g", (double)(float)v->d);
		else
			put_float(b, v->d, om);
		break;
	default:
		if (isfinite(v->d))
			buf_printf(b, "%.16g", v->d);
		else
			put_float(b, v->d, om);
		break;
	}
}

static int
numeric(int type)
{
	return type == PM_TYPE_32 || type == PM_TYPE_U32 ||
	    type == PM_TYPE_64 || type == PM_TYPE_U64 ||
	    type == PM_TYPE_FLOAT || type == PM_TYPE_DOUBLE;
}

static void
put_time(struct scrape *sc, const struct snap *s)
{
	if (!sc->times)
		return;
	if (sc->om)
		buf_printf(&sc->out, " %lld.%03ld", (long long)s->s_ts.tv_sec,
		    s->s_ts.tv_nsec / 1000000);
	else
		buf_printf(&sc->out, " %lld", (long long)s->s_ts.tv_sec * 1000 +
		    s->s_ts.tv_nsec / 1000000);
}

/* --- labels --- */

/* The context labels, then the metric's ("k":"v" JSON members). */
static void
put_base_labels(struct scrape *sc, const struct metric *m, int *first)
{
	struct daemon_state	*ds = sc->hr->hr_ds;
	struct buf		*b = &sc->out;
	const char		*p = m->m_labels;

	put_label(b, first, "domainname", ds->domainname,
	    strlen(ds->domainname));
	put_label(b, first, "hostname", ds->hostname, strlen(ds->hostname));
	if (ds->machineid[0])
		put_label(b, first, "machineid", ds->machineid,
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
		put_label(b, first, key, v, (size_t)(ve - v));
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
		    scrape_snap(sc, in->i_src);
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
put_meta(struct scrape *sc, const struct metric *m, const char *type,
    const char *suffix_cut)
{
	struct buf	*b = &sc->out;
	char		 units[64];
	size_t		 n = strlen(m->m_name);

	if (suffix_cut)
		n -= strlen(suffix_cut);
	if (!sc->om) {
		bt_units_str(&m->m_units, units, sizeof(units));
		buf_printf(b, "# PCP5 %s %u.%u.%u %s ", m->m_name,
		    pmID_domain(m->m_pmid), pmID_cluster(m->m_pmid),
		    pmID_item(m->m_pmid), bt_type_str(m->m_type));
		if (m->m_indom == PM_INDOM_NULL)
			buf_puts(b, "PM_INDOM_NULL");
		else
			buf_printf(b, "%u.%u", pmInDom_domain(m->m_indom),
			    pmInDom_serial(m->m_indom));
		buf_printf(b, " %s %s\n", bt_sem_str(m->m_sem), units);
	}
	buf_puts(b, "# HELP ");
	put_name_n(b, m->m_name, n);
	buf_putc(b, ' ');
	if (m->m_oneline)
		put_escaped(b, m->m_oneline, strlen(m->m_oneline), sc->om);
	buf_puts(b, "\n# TYPE ");
	put_name_n(b, m->m_name, n);
	buf_printf(b, " %s\n", type);
}

static void
put_plain(struct scrape *sc, const struct metric *m, const struct snap *s,
    const struct valset *vs)
{
	struct buf	*b = &sc->out;
	const char	*type = m->m_sem == PM_SEM_COUNTER ? "counter" : "gauge";
	const char	*cut = NULL;
	struct iname	*names = NULL;
	int		 nnames = 0;
	size_t		 len = strlen(m->m_name);

	if (sc->om && m->m_sem == PM_SEM_COUNTER) {
		if (len > 6 && strcmp(m->m_name + len - 6, "_total") == 0)
			cut = "_total";
		else
			type = "unknown";
	}
	put_meta(sc, m, type, cut);
	if (vs->vs_inst)
		names = inames(sc, m, s, &nnames);
	for (int i = 0; i < vs->vs_n; i++) {
		int	 first = 1;
		char	 id[16];

		put_name(b, m->m_name);
		put_base_labels(sc, m, &first);
		if (vs->vs_inst) {
			const char	*nm = iname_find(names, nnames,
			    vs->vs_inst[i]);

			snprintf(id, sizeof(id), "%u", vs->vs_inst[i]);
			put_label(b, &first, "instname", nm ? nm : id,
			    strlen(nm ? nm : id));
			put_label(b, &first, "instid", id, strlen(id));
		}
		buf_puts(b, "} ");
		put_value(b, m->m_type, &vs->vs_vals[i], sc->om);
		put_time(sc, s);
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

/* "-inf", "inf" or an integer; returns the end or NULL */
static const char *
parse_bound(const char *p, long double *out, int *inf)
{
	char	*end;
	int	 neg = *p == '-';

	*inf = 0;
	if (strncmp(p + neg, "inf", 3) == 0) {
		*inf = neg ? -1 : 1;
		*out = 0;
		return p + neg + 3;
	}
	if (!(p[neg] >= '0' && p[neg] <= '9'))
		return NULL;
	*out = strtold(p, &end);
	return end;
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

	put_name(b, m->m_name);
	buf_puts(b, suffix);
	put_base_labels(sc, m, &first);
	if (keyed)
		put_label(b, &first, "instname", bk->key, bk->keylen);
	if (le)
		put_label(b, &first, "le", le, strlen(le));
	buf_printf(b, "} %" PRIu64, v);
	put_time(sc, s);
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
	struct bucket	*bk;
	struct iname	*names;
	int		 nnames, keyed = -1, ret = -1;

	if (vs->vs_inst == NULL || (m->m_type != PM_TYPE_U64 &&
	    m->m_type != PM_TYPE_64 && m->m_type != PM_TYPE_U32 &&
	    m->m_type != PM_TYPE_32))
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
		bk[i].count = m->m_type == PM_TYPE_64 || m->m_type ==
		    PM_TYPE_32 ? (vs->vs_vals[i].i < 0 ? 0 :
		    (uint64_t)vs->vs_vals[i].i) : vs->vs_vals[i].u;
	}
	qsort(bk, (size_t)vs->vs_n, sizeof(*bk), bucket_cmp);
	put_meta(sc, m, "histogram", NULL);
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

	if (!numeric(m->m_type) || m->m_ctxval || m->m_src == NULL ||
	    access_metric(sc->hr->hr_ds, m, &sc->rd) != ACCESS_ALL ||
	    (s = scrape_snap(sc, m->m_src)) == NULL ||
	    m->m_slot >= s->s_nsets)
		return;
	vs = &s->s_sets[m->m_slot];
	if (vs->vs_n <= 0)
		return;		/* no values: nothing to write */
	if (is_hist(m) && put_hist(sc, m, s, vs) == 0)
		return;
	put_plain(sc, m, s, vs);
}

/* every metric at or below name; 0 when there is none */
static size_t
put_tree(struct scrape *sc, const char *name)
{
	struct metric	*m;
	size_t		 lo, n;

	if (*name && (m = ns_metric_by_name(sc->ns, name)) != NULL) {
		put_metric(sc, m);
		return 1;
	}
	if (*name == '\0') {
		for (size_t i = 0; i < sc->ns->ns_nmetrics; i++)
			put_metric(sc, sc->ns->ns_by_name[i]);
		return sc->ns->ns_nmetrics;
	}
	n = ns_prefix_range(sc->ns, name, &lo);
	for (size_t i = lo; i < lo + n; i++)
		put_metric(sc, sc->ns->ns_by_name[i]);
	return n;
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
		if ((q = strstr(q, "q=")) != NULL && strtod(q + 2, NULL) <= 0)
			continue;
		return 1;
	}
	return 0;
}

static int
unknown_name(struct scrape *sc, const char *name)
{
	struct buf	 b;
	uint32_t	 id = 0;
	char		 msg[1100], peer[64];
	char		*body;
	size_t		 len;

	/* pmproxy answers with the temporary context it made */
	http_peer(sc->hr, peer, sizeof(peer));
	if (ctx_create_for(sc->hr->hr_ds->ctx, BT_CTX_TIMEOUT, peer, &id) !=
	    CTX_OK)
		id = 0;
	snprintf(msg, sizeof(msg), "'%.1024s' - Unknown metric name", name);
	buf_init(&b, 0);
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

int
api_metrics(struct httpreq *hr)
{
	struct scrape	 sc;
	const char	*names = params_get(&hr->hr_params, "names");
	const char	*times = params_get(&hr->hr_params, "times");
	char		*list = NULL, *save = NULL, *tok;
	char		 msg[128];
	int		 ret;

	atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
	if (strcmp(hr->hr_method, "OPTIONS") == 0)
		return http_reply_options(hr, HTTP_GET | HTTP_POST);
	if (strcmp(hr->hr_method, "GET") != 0 &&
	    strcmp(hr->hr_method, "HEAD") != 0 &&
	    strcmp(hr->hr_method, "POST") != 0)
		return http_reply_html(hr, 400, "webapi servlet",
		    "failed to process URL");
	memset(&sc, 0, sizeof(sc));
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
		if ((list = strdup(names)) == NULL) {
			ret = http_reply_error(hr, 503, "out of memory");
			goto done;
		}
		for (tok = strtok_r(list, ",", &save); tok;
		    tok = strtok_r(NULL, ",", &save)) {
			if (put_tree(&sc, tok) == 0) {
				ret = unknown_name(&sc, tok);
				goto done;
			}
		}
	} else
		put_tree(&sc, "");
	if (sc.om)
		buf_puts(&sc.out, "# EOF\n");
	if (sc.out.b_failed) {
		ret = answer_failed(hr, sc.out.b_failed);
		goto done;
	}
	ret = http_reply_buf(hr, 200, sc.om ? OM_CT : TEXT_CT, &sc.out);
done:
	free(list);
	buf_free(&sc.out);
	for (int i = 0; i < sc.nsrc; i++)
		snap_release(sc.src[i].snap);
	ns_release(sc.ns);
	return ret;
}
