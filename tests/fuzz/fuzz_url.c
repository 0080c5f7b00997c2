/* SPDX-License-Identifier: MIT */
/*
 * fuzz_url.c - libFuzzer harness for URL and query parameter parsing
 * (src/lib/query.c: pct_decode, params_parse) and the /pmapi routing and
 * handlers behind them (src/api/api_pmapi.c, src/api/api_pmwebd.c, the control
 * metrics of src/scripts/control.c), without libmicrohttpd: the few http.c
 * functions the API layer calls are replaced below, and the target is
 * split the way http_request.c's dispatch() does.
 *
 * The input is up to 8 requests, one a line:
 *
 *	FLAGS TARGET [ "\t" BODY ]
 *
 * FLAGS is one byte: bits 0-1 the method (GET, POST, OPTIONS, HEAD),
 * bit 2 the body is a form (application/x-www-form-urlencoded), bit 3 the
 * client is not on loopback. "$CTX" in TARGET or BODY stands for a context
 * created before the requests. Each input gets a fresh daemon state:
 * the self metrics, the control metrics (--control=loopback, no state
 * database: bpftrace is never started) and a source "fuzz" with a
 * metric of each type and an instance domain. Every 2xx answer with a
 * JSON content type must parse as JSON.
 */
#include "fuzzhelp.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "api.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "evloop.h"
#include "http.h"
#include "log.h"
#include "memcap.h"
#include "registry.h"
#include "scripts.h"
#include "top.h"
#include "util.h"

#define MAX_REQUESTS	8

/* ---- the http.c functions the API layer calls ---- */

static int	 cur_loopback;

static void
check_answer(unsigned status, const char *ctype, const char *body,
    size_t len)
{
	cJSON	*j;

	FZ_CHECK(status >= 100 && status < 600, "status %u", status);
	if (status >= 300 || ctype == NULL || strstr(ctype, "json") == NULL ||
	    len == 0)
		return;
	j = cJSON_ParseWithLength(body, len);
	FZ_CHECK(j != NULL, "status %u answer is not JSON: %.*s", status,
	    (int)(len > 400 ? 400 : len), body);
	cJSON_Delete(j);
}

int
http_reply(struct httpreq *hr, unsigned status, const char *ctype, char *body,
    size_t len)
{
	FZ_CHECK(body != NULL || len == 0, "NULL body of %zu bytes", len);
	check_answer(status, ctype, body, len);
	free(body);
	return MHD_YES;
}

/* the answer's charge goes back at once: no connection holds it here */
int
http_reply_buf(struct httpreq *hr, unsigned status, const char *ctype,
    struct buf *b)
{
	size_t	 len, charged = 0;
	char	*body = buf_take_charged(b, &len, &charged);

	if (b->b_mc && charged)
		memcap_release(b->b_mc, charged);
	if (body == NULL)
		return MHD_NO;
	return http_reply(hr, status, ctype, body, len);
}

int
http_reply_html(struct httpreq *hr, unsigned status, const char *servlet,
    const char *msg)
{
	FZ_CHECK(servlet != NULL && msg != NULL, "html reply without text");
	return MHD_YES;
}

int
http_reply_options(struct httpreq *hr, int allowed)
{
	return MHD_YES;
}

int
http_peer(struct httpreq *hr, char *out, size_t len)
{
	snprintf(out, len, "%s", cur_loopback ? "127.0.0.1" : "192.0.2.1");
	return cur_loopback;
}

/* ---- a daemon without a network ---- */

/* as main wires them; no main loop here, so no ticks */
static const struct scripts_hooks scripts_hooks = {
	.sh_changed = info_changed,
};

enum { F_U64, F_I32, F_DBL, F_STR, F_INST, F_N };

static struct snap *
fuzz_refresh(struct source *src, void *arg)
{
	static const uint32_t		 ids[] = { 0, 7, 4000000000u };
	static const char *const	 names[] = { "a", "b c", "x\"y\\z" };
	union value			 vals[3] = {
		{ .u = 1 }, { .u = UINT64_MAX }, { .u = 0 }
	};
	struct snap			*s = snap_new(F_N, 1);

	if (s == NULL)
		return NULL;
	snap_set1(s, F_U64, (union value){ .u = 42 });
	snap_set1(s, F_I32, (union value){ .i = -7 });
	snap_set1(s, F_DBL, (union value){ .d = 0.5 });
	snap_set_str1(s, F_STR, "tab\there \xc3\xa9 \"q\"");
	snap_set_values(s, F_INST, 3, ids, vals);
	snap_set_indom(s, 0, 3, ids, names);
	return s;
}

static int
fuzz_source(struct daemon_state *ds)
{
	static const struct {
		const char	*name;
		int		 type;
	} defs[F_N] = {
		{ "fuzz.u64", PM_TYPE_U64 }, { "fuzz.i32", PM_TYPE_32 },
		{ "fuzz.dbl", PM_TYPE_DOUBLE }, { "fuzz.str", PM_TYPE_STRING },
		{ "fuzz.inst.val", PM_TYPE_U64 },
	};
	struct metric	*ms[F_N];
	struct indom	*in;
	struct source	*src = source_new("fuzz", fuzz_refresh, NULL);
	pmInDom		 id = pmInDom_build(BT_DOMAIN, 4000);
	char		 err[256];
	int		 rv;

	if (src == NULL)
		return -1;
	for (int i = 0; i < F_N; i++)
		ms[i] = metric_new(defs[i].name, pmID_build(BT_DOMAIN, 4000, i),
		    i == F_INST ? id : PM_INDOM_NULL, defs[i].type,
		    PM_SEM_INSTANT, BT_UNITS(0, 0, 0, 0, 0, 0), "one line",
		    NULL, "\"k\":\"v\"", src, i);
	in = indom_new(id, "fuzz instances", NULL, src, 0);
	rv = reg_add(ds->reg, ms, F_N, &in, 1, err, sizeof(err));
	for (int i = 0; i < F_N; i++)
		metric_unref(ms[i]);
	indom_unref(in);
	source_unref(src);
	return rv;
}

static struct daemon_state *
daemon_new(void)
{
	struct daemon_state	*ds = calloc(1, sizeof(*ds));

	if (ds == NULL || config_defaults(&ds->cfg) == -1)
		abort();
	ds->cfg.control = CONTROL_LOOPBACK;
	ds->cfg.max_scripts = 4;
	snprintf(ds->hostname, sizeof(ds->hostname), "fuzzhost");
	snprintf(ds->machineid, sizeof(ds->machineid), "0123456789abcdef");
	snprintf(ds->domainname, sizeof(ds->domainname), "localdomain");
	sha1_hex("bpftraced:fuzzhost", 18, ds->source_id);
	ds->ctx_labels = strdup("\"domainname\":\"localdomain\","
	    "\"hostname\":\"fuzzhost\",\"machineid\":\"0123456789abcdef\"");
	snprintf(ds->pcp_version, sizeof(ds->pcp_version), "6.0.3");
	pthread_mutex_init(&ds->auth_lock, NULL);
	if ((ds->loop = evloop_new()) == NULL ||
	    (ds->reg = reg_new()) == NULL ||
	    (ds->ctx = ctx_new(8)) == NULL ||
	    self_register(ds) == -1 || fuzz_source(ds) == -1 ||
	    scripts_init(ds, &scripts_hooks) == -1 ||
	    control_init(ds->scripts) == -1 || info_init(ds->scripts) == -1)
		abort();
	return ds;
}

static void
daemon_free(struct daemon_state *ds)
{
	if (ds->scripts) {
		control_fini(ds->scripts);
		info_fini(ds->scripts);
	}
	scripts_fini(ds);
	reg_free(ds->reg);
	ctx_free(ds->ctx);
	source_unref(ds->self_src);
	free(ds->ctx_labels);
	config_free(&ds->cfg);
	evloop_free(ds->loop);
	pthread_mutex_destroy(&ds->auth_lock);
	free(ds);
}

/* "$CTX" -> the context id; returns a NUL-terminated copy */
static char *
subst_ctx(const char *s, size_t n, uint32_t ctx)
{
	char	 id[16];
	char	*out = malloc(n * 4 + 1), *o = out;

	if (out == NULL)
		abort();
	snprintf(id, sizeof(id), "%u", ctx);
	for (size_t i = 0; i < n; i++) {
		if (i + 4 <= n && memcmp(s + i, "$CTX", 4) == 0) {
			o += sprintf(o, "%s", id);
			i += 3;
		} else
			*o++ = s[i];
	}
	*o = '\0';
	return out;
}

/* http_request.c's dispatch(), after authentication, without MHD */
static void
request(struct daemon_state *ds, uint32_t ctx, const char *line, size_t n)
{
	static const char *const methods[] = { "GET", "POST", "OPTIONS",
	    "HEAD" };
	struct httpreq	 hr;
	const char	*tab, *q;
	char		*target, *body = NULL, *path = NULL, err[256];
	size_t		 tlen, plen;
	int		 flags;

	if (n == 0)
		return;
	flags = (unsigned char)line[0];
	line++;
	n--;
	tab = memchr(line, '\t', n);
	tlen = tab ? (size_t)(tab - line) : n;
	target = subst_ctx(line, tlen, ctx);
	if (tab)
		body = subst_ctx(tab + 1, n - tlen - 1, ctx);
	tlen = strlen(target);
	if (tlen > BT_MAX_URL_BYTES)
		goto done;

	memset(&hr, 0, sizeof(hr));
	hr.hr_ds = ds;
	hr.hr_method = methods[flags & 3];
	params_init(&hr.hr_params, BT_MAX_PARAMS);
	cur_loopback = !(flags & 8);
	q = memchr(target, '?', tlen);
	plen = q ? (size_t)(q - target) : tlen;
	if (pct_decode(target, plen, &path, NULL) != 0)
		goto done_params;
	FZ_CHECK(strlen(path) <= plen, "decoded path grew");
	if (q && params_parse(&hr.hr_params, q + 1, tlen - plen - 1, err,
	    sizeof(err)) == -1)
		goto done_params;
	hr.hr_path = path;
	if (body) {
		hr.hr_body = body;
		hr.hr_bodylen = strlen(body);
		if ((flags & 4) && params_parse(&hr.hr_params, hr.hr_body,
		    hr.hr_bodylen, err, sizeof(err)) == -1)
			goto done_params;
	}
	for (int i = 0; i < hr.hr_params.n; i++)
		FZ_CHECK(hr.hr_params.v[i].p_vlen ==
		    strlen(hr.hr_params.v[i].p_val) &&
		    params_get(&hr.hr_params, hr.hr_params.v[i].p_key) ==
		    hr.hr_params.v[i].p_val, "parameter %d", i);
	if (strncmp(path, "/pmapi/", 7) == 0)
		(void)api_pmapi(&hr);
done_params:
	params_free(&hr.hr_params);
done:
	free(path);
	free(target);
	free(body);
}

FZ_INITIALIZE_QUIET_LOG()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*p = (const char *)data;
	struct daemon_state	*ds;
	uint32_t		 ctx = 0;

	if (size > 64 * 1024)
		return 0;
	ds = daemon_new();
	if (ctx_create(ds->ctx, 5.0, &ctx) != CTX_OK)
		abort();
	for (int r = 0; r < MAX_REQUESTS && size > 0; r++) {
		const char	*nl = memchr(p, '\n', size);
		size_t		 len = nl ? (size_t)(nl - p) : size;

		request(ds, ctx, p, len);
		p += len;
		size -= len;
		if (nl) {
			p++;
			size--;
		}
	}
	daemon_free(ds);
	return 0;
}
