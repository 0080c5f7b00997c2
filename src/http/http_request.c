/* SPDX-License-Identifier: MIT */
/*
 * http_request.c - one request, from its first line to its end: the baton
 * made when its target arrives (on_http_uri), its framing checked
 * (RFC 9112) and its body read within --max-body-bytes and --max-memory
 * (on_http_request), its target split into a decoded path and
 * parameters, the origin policy and credentials checked (http_auth.c),
 * then the routes table main passed in picks the handler (dispatch);
 * on_http_completed() frees the baton and what it charged. http.c hands
 * these callbacks to libmicrohttpd.
 *
 * Threads: libmicrohttpd's workers; a connection's callbacks never run at
 * once, so the baton needs no lock (but see struct baton in http_int.h
 * for the answer a verifier thread hands back). ds->mem is atomic.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "http.h"
#include "http_int.h"
#include "log.h"
#include "memcap.h"
#include "util.h"

/* --- request parsing and routing --- */

/* Is the body application/x-www-form-urlencoded? */
int
http_form_body(struct httpreq *hr)
{
	const char	*ct = http_header(hr, "Content-Type");

	return ct && strncasecmp(ct, "application/x-www-form-urlencoded",
	    33) == 0;
}

/* Split the raw target into a decoded path and parameters. */
static int
parse_target(struct httpreq *hr, struct baton *bt, char **pathp, char *err,
    size_t errlen)
{
	const char	*q = memchr(bt->bt_uri, '?', bt->bt_urilen);
	size_t		 plen = q ? (size_t)(q - bt->bt_uri) : bt->bt_urilen;

	if (pct_decode(bt->bt_uri, plen, pathp, NULL) != 0) {
		seterr(err, errlen, "malformed percent-encoding in URL path");
		return -1;
	}
	if (q && params_parse(&hr->hr_params, q + 1,
	    bt->bt_urilen - plen - 1, err, errlen) == -1)
		return -1;
	return 0;
}

static int
dispatch(struct httpd *h, struct httpreq *hr, struct baton *bt)
{
	char		 err[256];
	char		*path = NULL;
	int		 ret, rv;

	if (bt->bt_urilen > hr->hr_ds->cfg.max_url) {
		atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
		seterr(err, sizeof(err), "request URL too long: %zu bytes, the "
		    "limit is %zu (see --max-url-bytes)", bt->bt_urilen,
		    hr->hr_ds->cfg.max_url);
		return http_reply_error(hr, 414, err);
	}
	if (bt->bt_too_big) {
		atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
		return http_reply_html(hr, 413, "webapi servlet",
		    "request body too large");
	}
	if (strcmp(hr->hr_method, "TRACE") == 0) {
		atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
		return http_reply_trace(hr);
	}
	if (parse_target(hr, bt, &path, err, sizeof(err)) == -1) {
		atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
		ret = http_reply_html(hr, 400, "webapi servlet", err);
		goto done;
	}
	if (http_auth_check_origin(hr, path, &ret) == -1)
		goto done;
	if (strcmp(hr->hr_method, "OPTIONS") == 0 &&
	    strcmp(bt->bt_uri, "*") == 0) {
		ret = http_reply_server_options(hr);
		goto done;
	}
	if (strcmp(hr->hr_method, "OPTIONS") != 0 &&
	    (rv = http_auth_authenticate(h, hr, bt, path, &ret)) != 0) {
		if (rv == 1)		/* suspended: we are called again */
			ret = MHD_YES;
		else
			atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER],
			    1);
		goto done;
	}
	hr->hr_path = path;
	hr->hr_body = bt->bt_body.b_data;
	hr->hr_bodylen = bt->bt_body.b_len;
	if (hr->hr_body && http_form_body(hr) &&
	    params_parse(&hr->hr_params, hr->hr_body, hr->hr_bodylen, err,
	    sizeof(err)) == -1) {
		atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
		ret = http_reply_html(hr, 400, "webapi servlet", err);
		goto done;
	}
	for (const struct http_route *rt = h->h_opts.ho_routes;
	    rt && rt->rt_handler; rt++)
		if (rt->rt_match ? rt->rt_match(path) : rt->rt_exact ?
		    strcmp(path, rt->rt_prefix) == 0 :
		    strncmp(path, rt->rt_prefix, strlen(rt->rt_prefix)) == 0) {
			ret = rt->rt_handler(hr);
			goto done;
		}
	atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
	ret = http_reply_html(hr, 400, "unknown servlet", "no handler for URL");
done:
	free(path);
	return ret;
}

static int
method_known(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
	    strcmp(m, "POST") == 0 || strcmp(m, "OPTIONS") == 0 ||
	    strcmp(m, "TRACE") == 0 || strcmp(m, "PUT") == 0 ||
	    strcmp(m, "DELETE") == 0;
}

/* --- message framing (RFC 9112) --- */

struct framing {
	int	 fr_cl;		/* Content-Length fields */
	int	 fr_te;		/* Transfer-Encoding fields */
};

static MHD_RESULT
count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct framing	*fr = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, "Content-Length") == 0)
		fr->fr_cl++;
	else if (strcasecmp(key, "Transfer-Encoding") == 0)
		fr->fr_te++;
	return MHD_YES;
}

/*
 * What libmicrohttpd 0.9.75 lets through and RFC 9112 says to reject, as
 * a request smuggling defence: more than one Content-Length (section
 * 6.3: even when equal, since another server may take the other one),
 * Content-Length with Transfer-Encoding (6.1), and a NUL in the request
 * target. MHD hands the URI callback the target as a C string that ends
 * at a NUL, and the handler the version that follows the target in the
 * same request line buffer (parsed in place, never moved while its
 * headers are in use): a gap between the two is the rest of the target
 * after a NUL. Only addresses are compared; no byte is read. NULL when
 * the request is fine, else the reason.
 */
static const char *
framing_error(struct MHD_Connection *conn, const struct baton *bt,
    const char *version, size_t max_url)
{
	struct framing	 fr = { 0, 0 };
	uintptr_t	 v = (uintptr_t)version;

	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &fr);
	if (fr.fr_cl > 1)
		return "more than one Content-Length header";
	if (fr.fr_cl && fr.fr_te)
		return "Content-Length together with Transfer-Encoding";
	if (bt->bt_uri_at != 0 && v > bt->bt_uri_at + bt->bt_urilen + 1 &&
	    v <= bt->bt_uri_at + max_url + 16)
		return "NUL byte in the request target";
	return NULL;
}

static void
hr_init(struct httpreq *hr, struct httpd *h, struct MHD_Connection *conn,
    const char *method, const char *version, struct baton *bt)
{
	memset(hr, 0, sizeof(*hr));
	hr->hr_ds = h->h_ds;
	hr->hr_conn = conn;
	hr->hr_method = method;
	hr->hr_http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
	hr->hr_hc = bt->bt_hc;
	hr->hr_held = &bt->bt_held;
	params_init(&hr->hr_params, BT_MAX_PARAMS);
}

/*
 * The headers are in. A connection the ceiling could not take, or a
 * body it cannot take (Content-Length), is answered 503 now, before the
 * body is read; libmicrohttpd then closes the connection. Returns 0 to
 * go on reading the request, else the answer's result.
 */
static int
early_answer(struct httpd *h, struct MHD_Connection *conn, const char *method,
    const char *version, struct baton *bt, int *ret)
{
	struct httpreq	 hr;
	const char	*cl;
	unsigned long long n;
	const char	*errstr;

	if ((bt->bt_hc && bt->bt_hc->hc_charged == 0) || bt->bt_url_refused)
		goto refuse;
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Content-Length");
	if (cl == NULL || *cl == '\0')
		return 0;
	n = strtonum_ull(cl, 1, h->h_ds->cfg.max_body, &errstr);
	/* too large is answered 413 once read, as before; nonsense is
	   libmicrohttpd's business */
	if (errstr != NULL)
		return 0;
	if (buf_reserve(&bt->bt_body, (size_t)n) == 0)
		return 0;
	if (bt->bt_body.b_failed != BUF_REFUSED)
		return 0;	/* out of memory: found again when appending */
refuse:
	hr_init(&hr, h, conn, method, version, bt);
	atomic_fetch_add(&h->h_ds->stats.st_requests[EP_OTHER], 1);
	*ret = http_reply_memcap(&hr);
	params_free(&hr.hr_params);
	return -1;
}

MHD_RESULT
on_http_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct httpd	*h = cls;
	struct baton	*bt = *con_cls;
	struct httpreq	 hr;
	int		 ret;

	if (bt == NULL)		/* no URI callback ran: cannot happen */
		return MHD_NO;
	if (!bt->bt_started) {
		const char	*bad = framing_error(conn, bt, version,
		    h->h_ds->cfg.max_url);

		bt->bt_started = 1;
		if (bad != NULL) {
			/* answered before the body: the connection must close */
			hr_init(&hr, h, conn, method, version, bt);
			atomic_fetch_add(&h->h_ds->stats.st_requests[EP_OTHER],
			    1);
			ret = http_reply_retry(&hr, 400, bad, 0, 1);
			params_free(&hr.hr_params);
			return ret;
		}
		if (early_answer(h, conn, method, version, bt, &ret) == -1)
			return ret;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!bt->bt_too_big && !bt->bt_refused &&
		    buf_append(&bt->bt_body, upload_data,
		    *upload_data_size) == -1) {
			if (bt->bt_body.b_failed == BUF_REFUSED)
				bt->bt_refused = 1;
			else
				bt->bt_too_big = 1;
			buf_free(&bt->bt_body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (bt->bt_hc)		/* all in: a slow answer is no slow request */
		atomic_store(&bt->bt_hc->hc_state, HC_WORD(0, HC_ANSWER));
	hr_init(&hr, h, conn, method, version, bt);
	if (bt->bt_refused) {
		atomic_fetch_add(&h->h_ds->stats.st_requests[EP_OTHER], 1);
		ret = http_reply_memcap(&hr);
	} else if (!method_known(method)) {
		atomic_fetch_add(&h->h_ds->stats.st_requests[EP_OTHER], 1);
		ret = http_reply_html(&hr, 405, "webapi servlet",
		    "method not allowed");
	} else {
		ret = dispatch(h, &hr, bt);
	}
	params_free(&hr.hr_params);
	return ret;
}

/*
 * A URL longer than BT_URL_PREPAID (up to --max-url-bytes; a longer one
 * is answered 414 without being kept) charges our two copies of it, the
 * target and its decoded parameters, for as long as its request runs;
 * its bytes in libmicrohttpd's pool are in the connection's charge. One
 * the ceiling cannot take is answered 503 before it is parsed.
 */
static void
url_charge(struct httpd *h, struct baton *bt)
{
	size_t	 n;

	if (bt->bt_urilen <= BT_URL_PREPAID ||
	    bt->bt_urilen > h->h_ds->cfg.max_url)
		return;
	n = 2 * (bt->bt_urilen - BT_URL_PREPAID);
	if (memcap_charge(&h->h_ds->mem, n) == 0)
		bt->bt_url_charged = n;
	else
		bt->bt_url_refused = 1;
}

/* Runs before header parsing: keeps the raw target, creates the baton. */
void *
on_http_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct httpd			*h = cls;
	const union MHD_ConnectionInfo	*ci;
	struct baton			*bt;

	if ((bt = calloc(1, sizeof(*bt))) == NULL)
		return NULL;
	bt->bt_urilen = strlen(uri);
	bt->bt_uri_at = (uintptr_t)uri;
	url_charge(h, bt);
	if ((bt->bt_uri = strdup(uri)) == NULL) {
		free(bt);
		return NULL;
	}
	buf_init(&bt->bt_body, h->h_ds->cfg.max_body);
	buf_charge_to(&bt->bt_body, &h->h_ds->mem);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context) {
		bt->bt_hc = ci->socket_context;
		http_conn_request(bt->bt_hc);
	}
	return bt;
}

void
on_http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct httpd	*h = cls;
	struct baton	*bt = *con_cls;

	if (bt == NULL)
		return;
	/* never BT_AUTH_PENDING here: a suspended connection is not closed */
	http_auth_job_release(((struct httpd *)cls)->h_ds, bt);
	if (bt->bt_hc)		/* waiting for the next request from now */
		atomic_store(&bt->bt_hc->hc_state, HC_WORD(now_mono_ms(),
		    HC_WAIT));
	buf_free(&bt->bt_body);
	memcap_release(&h->h_ds->mem, bt->bt_held + bt->bt_url_charged);
	free(bt->bt_uri);
	free(bt);
	*con_cls = NULL;
}

void
on_http_log(void *cls, const char *fmt, va_list ap)
{
	char	 msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_debug("http: %s", msg);
}
