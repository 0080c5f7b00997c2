/* SPDX-License-Identifier: MIT */
/*
 * api.c - what every /pmapi command shares: its parameters, the JSON it
 * writes (pmproxy 6.0.3's shapes, compact, CRLF after each body) and the
 * error answers of both dialects (pmproxy's JSON, pmwebd's text). The
 * bottom of the api files: it calls none of them (api.h).
 * Threads: runs in HTTP workers; reads immutable registry generations.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "http.h"
#include "memcap.h"
#include "registry.h"
#include "util.h"

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
char **
api_split_list(const char *s, size_t *np, size_t max)
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
int
api_too_many_names(struct api *a)
{
	return api_error(a, 400, 1, -E2BIG, "too many metric names (at most "
	    "%zu, see --max-names)", a->a_ds->cfg.max_names);
}

void
api_free_list(char **v)
{
	if (v) {
		free(v[0]);
		free(v);
	}
}

/*
 * A pmID or pmInDom as one number: decimal, 0x hex (or 0 octal: C's
 * base 0, as before).
 */
static int
parse_u32(const char *s, uint32_t *out)
{
	const char	*errstr;
	uint32_t	 v;

	v = (uint32_t)strtonum_ull_base(s, 0, 0, UINT32_MAX, &errstr);
	if (errstr != NULL)
		return -1;
	*out = v;
	return 0;
}

/* "D.C.I", decimal or 0x hex */
int
api_parse_pmid(const char *s, pmID *out)
{
	static const unsigned long long max[] = { 511, 4095, 1023 };
	unsigned long long	 v[3];
	const char		*errstr;

	if (strtonum_dotted(s, 3, max, v, NULL, &errstr) == 0) {
		*out = pmID_build((unsigned)v[0], (unsigned)v[1],
		    (unsigned)v[2]);
		return 0;
	}
	return parse_u32(s, out);	/* a string with dots fails there */
}

/* "D.S", decimal or 0x hex */
int
api_parse_indom(const char *s, pmInDom *out)
{
	static const unsigned long long max[] = { 511, 4194303 };
	unsigned long long	 v[2];
	const char		*errstr;

	if (strtonum_dotted(s, 2, max, v, NULL, &errstr) == 0) {
		*out = pmInDom_build((unsigned)v[0], (unsigned)v[1]);
		return 0;
	}
	return parse_u32(s, out);
}
/* --- JSON answers --- */

void
api_put_head(struct api *a)
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
 * pmwebd's error answer, text/plain with status: "PMWEBD error, code
 * -12376: Attempt to use an illegal context". Both dialects' errors are
 * written here, so the pmwebd dialect (api_pmwebd.c) calls down into
 * this file and never the other way round.
 */
int
api_error_pmwebd(struct httpreq *hr, unsigned status, int code)
{
	char		 text[PM_MAXERRMSGLEN];
	struct buf	 b;

	pmErrStr_r(code, text, sizeof(text));
	buf_init(&b, sizeof(text) + 64);	/* the text and its prefix */
	buf_printf(&b, "PMWEBD error, code %d: %s", code, text);
	if (b.b_failed) {
		buf_free(&b);
		return http_reply(hr, status, "text/plain", NULL, 0);
	}
	return http_reply(hr, status, "text/plain", buf_take(&b, NULL),
	    b.b_len);
}

/*
 * {"context":N,"message":"...","success":false} with status 400 etc.,
 * for a message of any length. with_ctx: 0 no context key, 1 the
 * context id, 2 the raw context text of the request (kept valid JSON).
 * pmcode is the PCP (or -errno) code of the failure: the pmwebd dialect
 * answers with it alone ("PMWEBD error, code -12357: ..."), as pmwebd
 * did; the pmproxy dialect with the message.
 */
int
api_error_text(struct api *a, unsigned status, int with_ctx, int pmcode,
    const char *msg)
{
	buf_reset(&a->a_out);
	if (API_PMWEBD(a))
		return api_error_pmwebd(a->a_hr, status, pmcode);
	a->a_out.b_failed = 0;
	buf_putc(&a->a_out, '{');
	if (with_ctx == 1)
		buf_printf(&a->a_out, "\"context\":%u,", a->a_ctx);
	else if (with_ctx == 2) {
		buf_puts(&a->a_out, "\"context\":");
		json_str(&a->a_out, a->a_ctxstr);
		buf_putc(&a->a_out, ',');
	}
	buf_puts(&a->a_out, "\"message\":");
	json_str(&a->a_out, msg);
	buf_puts(&a->a_out, ",\"success\":false}");
	return api_send_out(a, status);
}

/* api_error_text() with a printf format; the message is cut at 1023 bytes */
int
api_error(struct api *a, unsigned status, int with_ctx, int pmcode,
    const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return api_error_text(a, status, with_ctx, pmcode, msg);
}

/* {"context":N[,"client":...],"success":true} */
int
api_send_success(struct api *a)
{
	buf_reset(&a->a_out);
	api_put_head(a);
	buf_puts(&a->a_out, ",\"success\":true}");
	return api_send_out(a, 200);
}

/* pmproxy writes "D.C.I"; its compat mode and pmwebd the u32 */
void
api_put_pmid(struct api *a, pmID p)
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
void
api_put_dpmid(struct api *a, pmID p)
{
	api_put_pmid(a, API_PMWEBD(a) ? (pmID)((unsigned)p | DERIVE_PMID_FLAG) :
	    p);
}

void
api_put_indom(struct api *a, pmInDom in)
{
	if (API_PMWEBD(a))
		buf_printf(&a->a_out, "%u", (unsigned)in);
	else
		buf_printf(&a->a_out, "\"%u.%u\"", pmInDom_domain(in),
		    pmInDom_serial(in));
}

/* just past the JSON value that starts at p (a string, a bare word or
   number, or a nested object or array), or NULL when it does not end */
static const char *
label_value_end(const char *p)
{
	int	 depth = 0;

	if (*p != '"' && *p != '{' && *p != '[') {
		while (*p && *p != ',' && *p != ':' && *p != '}' && *p != ']')
			p++;
		return p;
	}
	for (; *p; p++) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p == '\0')
				return NULL;
		} else if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		if (depth == 0)
			return p + 1;
	}
	return NULL;
}

struct lpair {
	const char	*lp_s;		/* "key":value */
	size_t		 lp_n;
};

static int
lpair_cmp(const void *x, const void *y)
{
	const struct lpair *a = x, *b = y;
	size_t	 n = a->lp_n < b->lp_n ? a->lp_n : b->lp_n;
	int	 c = memcmp(a->lp_s, b->lp_s, n);

	return c ? c : (a->lp_n > b->lp_n) - (a->lp_n < b->lp_n);
}

/* split "k":v,"k":v,... into pairs; the count, or -1 past max */
static int
label_pairs(const char *s, struct lpair *out, int n, int max)
{
	const char	*e;

	while (s && *s) {
		if (*s == ',') {
			s++;
			continue;
		}
		if (*s != '"' || (e = label_value_end(s)) == NULL ||
		    *e != ':' || (e = label_value_end(e + 1)) == NULL ||
		    e[0] == ':' || n >= max)
			return -1;
		out[n].lp_s = s;
		out[n++].lp_n = (size_t)(e - s);
		s = e;
	}
	return n;
}

/*
 * Labels as pmproxy gives them: agent, context and metric labels merged
 * into one object sorted by name (libpcp's merge). The series id is the
 * hash of this text, so the order is part of the answer. Pieces that do
 * not split as "name":value lists are written as they are.
 */
void
api_put_labels(struct api *a, const char *agent, const char *extra)
{
	struct buf	*b = &a->a_out;
	struct lpair	 p[API_MAX_LABELS];
	char		 ag[64];
	int		 n = 0;

	buf_putc(b, '{');
	if (agent) {
		snprintf(ag, sizeof(ag), "\"agent\":\"%s\"", agent);
		n = label_pairs(ag, p, n, API_MAX_LABELS);
	}
	if (n >= 0)
		n = label_pairs(a->a_ds->ctx_labels, p, n, API_MAX_LABELS);
	if (n >= 0)
		n = label_pairs(extra, p, n, API_MAX_LABELS);
	if (n < 0) {		/* not a plain list: unsorted, as given */
		if (agent)
			buf_printf(b, "\"agent\":\"%s\",", agent);
		buf_puts(b, a->a_ds->ctx_labels);
		if (extra && *extra) {
			buf_putc(b, ',');
			buf_puts(b, extra);
		}
		buf_putc(b, '}');
		return;
	}
	qsort(p, (size_t)n, sizeof(p[0]), lpair_cmp);
	for (int i = 0; i < n; i++) {
		if (i)
			buf_putc(b, ',');
		buf_append(b, p[i].lp_s, p[i].lp_n);
	}
	buf_putc(b, '}');
}

/* integers in decimal without printf: a fetch of a big map writes one per
   instance, and vfprintf was two thirds of its CPU */
void
api_put_u64(struct buf *b, uint64_t u)
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
		api_put_u64(b, (uint64_t)0 - (uint64_t)i);
	} else
		api_put_u64(b, (uint64_t)i);
}

void
api_put_value(struct buf *b, int type, const union value *v)
{
	switch (type) {
	case PM_TYPE_32:
		put_i64(b, (int32_t)v->i);
		break;
	case PM_TYPE_U32:
		api_put_u64(b, (uint32_t)v->u);
		break;
	case PM_TYPE_64:
		put_i64(b, (int64_t)v->i);
		break;
	case PM_TYPE_U64:
		api_put_u64(b, (uint64_t)v->u);
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
/* --- hosts --- */

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


/* --- the store contract (metric_store_fn, control_store_allowed) --- */

/* the HTTP status of a refused store */
static unsigned
store_status(enum store_result rv)
{
	switch (rv) {
	case STORE_UNAUTHENTICATED:
		return 401;
	case STORE_FORBIDDEN:
		return 403;
	case STORE_INTERNAL:
		return 500;
	case STORE_NOMEM:
		return 503;
	default:
		return 400;
	}
}

/*
 * the PCP code of a refused store, for pmwebd's error answers: as pmcd's
 * clients hear it, but -EIO where our state database failed
 */
static int
store_pmcode(enum store_result rv)
{
	return rv == STORE_INTERNAL ? -EIO : metric_store_pmcode(rv);
}

/* the answer to a store to metric what that was refused with err */
int
api_store_error(struct api *a, enum store_result rv, const char *what,
    const char *err)
{
	return api_error(a, store_status(rv), 1, store_pmcode(rv), "failed to "
	    "store value to metric %s: %s", what, err);
}

/* --- the context table's refusals (enum ctx_result, context.c) --- */

/* a refused profile change (API_CTX_PROFILE), pmproxy's words */
static unsigned
ctx_profile_refusal(struct api *a, enum ctx_result rc, const char *expr,
    int *pmcode, char *msg, size_t len)
{
	char	 mem[160];

	switch (rc) {
	case CTX_UNKNOWN:
		*pmcode = PM_ERR_NOCONTEXT;
		snprintf(msg, len, "%s - unknown context", expr);
		return 400;
	case CTX_LIMIT:
		*pmcode = -E2BIG;
		snprintf(msg, len, "%s - the profile of this context would "
		    "list more than %zu instances (bpftraced limit, see "
		    "--max-profile-instances)", expr,
		    a->a_ds->cfg.max_profile_instances);
		return 403;
	case CTX_NOMEM:
		*pmcode = -ENOMEM;
		memcap_message(&a->a_ds->mem, mem, sizeof(mem));
		snprintf(msg, len, "%s - %s", expr, mem);
		return 503;
	default:
		*pmcode = -EINVAL;
		snprintf(msg, len, "%s - out of memory", expr);
		return 400;
	}
}

/* a refused derived metric (API_CTX_DERIVE): the reason libpcp gives */
static unsigned
ctx_derive_refusal(struct api *a, enum ctx_result rc, char *msg,
    size_t len)
{
	switch (rc) {
	case CTX_UNKNOWN:
		snprintf(msg, len, "unknown context identifier: %u", a->a_ctx);
		return 400;
	case CTX_DUP:
		snprintf(msg, len, "Duplicate per-context derived metric "
		    "name");
		return 400;
	case CTX_LIMIT:
		snprintf(msg, len, "Too many per-context derived metrics "
		    "(bpftraced limit %zu, see --max-derived)",
		    a->a_ds->cfg.max_derived);
		return 400;
	case CTX_BYTES:
		snprintf(msg, len, "Derived metrics of this context would "
		    "hold more than %zu bytes (bpftraced limit, see "
		    "--max-derived-bytes)", a->a_ds->cfg.max_derived_bytes);
		return 400;
	case CTX_NOMEM:
		memcap_message(&a->a_ds->mem, msg, len);
		return 503;
	default:
		snprintf(msg, len, "Out of memory");
		return 400;
	}
}

/* a rate() history a fetch could not keep (API_CTX_RATE) */
static unsigned
ctx_rate_refusal(struct api *a, enum ctx_result rc, char *msg, size_t len)
{
	switch (rc) {
	case CTX_NOMEM:
		memcap_message(&a->a_ds->mem, msg, len);
		return 503;
	case CTX_BYTES:
		snprintf(msg, len, "rate() values of the derived metrics of "
		    "this context would hold more than %zu bytes (bpftraced "
		    "limit, see --max-derived-bytes)",
		    a->a_ds->cfg.max_derived_bytes);
		return 400;
	default:
		snprintf(msg, len, "out of memory keeping rate() values");
		return 503;
	}
}

/*
 * The one place a refusal of the context table (rc, never CTX_OK)
 * becomes what a client is told, worded for what asked (op): the HTTP
 * status (returned), the PCP or -errno code that pmwebd clients get
 * (*pmcode) and pmproxy's text (msg, len bytes). what: the profile's
 * expr for API_CTX_PROFILE.
 */
static unsigned
ctx_refusal(struct api *a, enum api_ctx_op op, enum ctx_result rc,
    const char *what, int *pmcode, char *msg, size_t len)
{
	switch (op) {
	case API_CTX_NEW:
		/* pmwebd answered EMFILE to any refused context */
		if (rc == CTX_NOMEM && !API_PMWEBD(a)) {
			*pmcode = -ENOMEM;
			memcap_message(&a->a_ds->mem, msg, len);
			return 503;
		}
		*pmcode = -EMFILE;
		snprintf(msg, len, "too many contexts (limit %zu, see "
		    "--max-contexts)", a->a_ds->cfg.max_contexts);
		return 503;
	case API_CTX_USE:
		*pmcode = PM_ERR_NOCONTEXT;
		snprintf(msg, len, "unknown context identifier: %u", a->a_ctx);
		return 400;
	case API_CTX_PROFILE:
		return ctx_profile_refusal(a, rc, what, pmcode, msg, len);
	case API_CTX_DERIVE:
		*pmcode = PM_ERR_BADDERIVE;
		return ctx_derive_refusal(a, rc, msg, len);
	default:
		*pmcode = PM_ERR_TOOBIG;
		return ctx_rate_refusal(a, rc, msg, len);
	}
}

/* the error answer to a refusal of the context table (ctx_refusal) */
int
api_ctx_error(struct api *a, enum api_ctx_op op, enum ctx_result rc,
    const char *what, int with_ctx)
{
	char		 msg[256];
	int		 pmcode;
	unsigned	 status;

	status = ctx_refusal(a, op, rc, what, &pmcode, msg, sizeof(msg));
	return api_error_text(a, status, with_ctx, pmcode, msg);
}

/* libpcp's wording for errors that are PMAPI codes, not parse errors */
void
api_derive_text(struct buf *err, const char *name, const char *why)
{
	buf_printf(err, "Error: pmAddDerivedMetric(\"%s\", ...): returns %d\n"
	    "%s\n", name, PM_ERR_BADDERIVE, why);
}

/*
 * A derived metric name that this context refuses (rc: from
 * ctx_derive_add(), or the same checks made before it): libpcp's text
 * (pmproxy's for an unknown context) appended to err; returns the HTTP
 * status of the answer.
 */
unsigned
api_ctx_derive_error(struct api *a, enum ctx_result rc, const char *name,
    struct buf *err)
{
	char		 why[256];
	int		 pmcode;
	unsigned	 status;

	status = ctx_refusal(a, API_CTX_DERIVE, rc, NULL, &pmcode, why,
	    sizeof(why));
	if (rc == CTX_UNKNOWN)
		buf_puts(err, why);
	else
		api_derive_text(err, name, why);
	return status;
}
