/* SPDX-License-Identifier: MIT */
/*
 * http_reply.c - the answers: http_reply*() for the dialects (api_*.c),
 * pmproxy's CORS headers and HTML error page, the JSON error body, the
 * preflight and OPTIONS/TRACE answers, and who the client is
 * (http_peer, http_header). The bottom of src/http/: it calls no other
 * file of the folder. Threads: libmicrohttpd's workers, one request at a
 * time each; no state of its own (the counters it bumps are atomics in
 * daemon_state.stats, a connection's hc_state an atomic store).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "buf.h"
#include "daemon.h"
#include "http.h"
#include "http_int.h"
#include "memcap.h"
#include "origin.h"
#include "util.h"

static const char CORS_HEADERS[] =
    "Accept, Accept-Language, Content-Language, Content-Type";
/* what a preflight allows: current Grafana adds X-Grafana-Device-ID */
static const char CORS_PREFLIGHT_HEADERS[] =
    "Accept, Accept-Language, Content-Language, Content-Type, "
    "X-Grafana-Device-ID";
static const char CORS_PREFLIGHT_HEADERS_AUTH[] =
    "Accept, Accept-Language, Content-Language, Content-Type, "
    "X-Grafana-Device-ID, Authorization";
/* TRACE is answered 405 (it would echo credentials back to a page) */
static const char ALLOW_METHODS[] = "GET, HEAD, OPTIONS";
static const char ALLOW_METHODS_POST[] = "GET, HEAD, POST, OPTIONS";
static const char ALLOW_METHODS_SERVER[] = "GET, PUT, HEAD, POST, OPTIONS";

/* --- replies --- */

/* Queue r, answering an HTTP/1.0 request in HTTP/1.0 as pmproxy does. */
static int
queue(struct httpreq *hr, unsigned status, struct MHD_Response *r)
{
	int	 ret;

	if (hr->hr_http10)
		MHD_set_response_options(r, MHD_RF_HTTP_1_0_SERVER,
		    MHD_RO_END);
	ret = MHD_queue_response(hr->hr_conn, status, r);
	MHD_destroy_response(r);
	if (hr->hr_hc && ret == MHD_YES)	/* answered: no deadline now */
		atomic_store(&hr->hr_hc->hc_state, HC_WORD(0, HC_ANSWER));
	return ret;
}

/*
 * pmproxy's CORS headers, "Access-Control-Allow-Origin: *", which a
 * browser never combines with credentials. A request with credentials
 * from an Origin given with --allow-origin (Grafana in browser access
 * mode with Basic auth) gets that Origin named instead, with credentials
 * allowed, so that its answers can be read; any other Origin is never
 * echoed (origin.c).
 */
static void
add_cors(struct httpreq *hr, struct MHD_Response *r)
{
	const char	*origin = http_header(hr, "Origin");

	if (http_header(hr, "Authorization") &&
	    origin_allowed(&hr->hr_ds->origin, origin)) {
		MHD_add_response_header(r, "Access-Control-Allow-Origin",
		    origin);
		MHD_add_response_header(r, "Access-Control-Allow-Credentials",
		    "true");
		MHD_add_response_header(r, "Vary", "Origin");
	} else
		MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(r, "Access-Control-Allow-Headers",
	    CORS_HEADERS);
	MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
}

/* Takes ownership of body (malloc'd, may be NULL when len is 0). */
int
http_reply(struct httpreq *hr, unsigned status, const char *ctype, char *body,
    size_t len)
{
	struct MHD_Response	*r;

	r = MHD_create_response_from_buffer(len, body ? body : "",
	    body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	add_cors(hr, r);
	if (ctype)
		MHD_add_response_header(r, "Content-Type", ctype);
	if (status == 401)
		MHD_add_response_header(r, "WWW-Authenticate",
		    "Basic realm=\"bpftraced\"");
	if (status >= 400)
		atomic_fetch_add(&hr->hr_ds->stats.st_errors, 1);
	atomic_fetch_add(&hr->hr_ds->stats.st_bytes_out, len);
	return queue(hr, status, r);
}

/*
 * Answer with b's contents (b is emptied). What b charged to ds->mem
 * stays charged, to the request, until the request ends and
 * libmicrohttpd has let go of the answer (on_http_completed).
 */
int
http_reply_buf(struct httpreq *hr, unsigned status, const char *ctype,
    struct buf *b)
{
	size_t	 len, charged = 0;
	char	*body = buf_take_charged(b, &len, &charged);

	if (b->b_mc && charged) {
		if (hr->hr_held)
			*hr->hr_held += charged;
		else
			memcap_release(b->b_mc, charged);
	}
	if (body == NULL)
		return MHD_NO;
	return http_reply(hr, status, ctype, body, len);
}

/* 503 {"message":"memory limit reached: ...","success":false} */
int
http_reply_memcap(struct httpreq *hr)
{
	char	 msg[256];

	memcap_message(&hr->hr_ds->mem, msg, sizeof(msg));
	return http_reply_error(hr, 503, msg);
}

/*
 * A reply whose body is static, never freed (the embedded web UI), with
 * extra headers; no CORS headers: the page is for its own origin only.
 * A HEAD request gets the same headers without the body (MHD drops it).
 */
int
http_reply_static(struct httpreq *hr, unsigned status, const void *body,
    size_t len, const struct http_hdr *hdrs, size_t nhdrs)
{
	struct MHD_Response	*r;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	for (size_t i = 0; i < nhdrs; i++)
		MHD_add_response_header(r, hdrs[i].hh_name, hdrs[i].hh_value);
	if (status >= 400)
		atomic_fetch_add(&hr->hr_ds->stats.st_errors, 1);
	if (strcmp(hr->hr_method, "HEAD") != 0)
		atomic_fetch_add(&hr->hr_ds->stats.st_bytes_out, len);
	return queue(hr, status, r);
}

static const char *
status_text(unsigned status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default:  return "Error";
	}
}

/* pmproxy's HTML error page (http.c http_error), with our server name. */
int
http_reply_html(struct httpreq *hr, unsigned status, const char *servlet,
    const char *msg)
{
	struct buf	 b;

	buf_init(&b, HTTP_ERROR_BODY_MAX);
	buf_printf(&b, "<html>\r\n<head><title>%u %s</title></head>\r\n"
	    "<body>\r\n<h1>%u %s</h1>\r\n<p><b>%s</b>: %s</p><hr>\r\n"
	    "<p><small><i>bpftraced/%s</i></small></p>\r\n</body>\r\n"
	    "</html>\r\n", status, status_text(status), status,
	    status_text(status), servlet, msg, BT_VERSION);
	return http_reply(hr, status, "text/html", buf_take(&b, NULL),
	    b.b_failed ? 0 : strlen(b.b_data ? b.b_data : ""));
}

/*
 * CORS preflight, as pmproxy: 405 when the requested method is not
 * allowed, else 200. Unlike pmproxy, the Origin is named (with
 * credentials) only when --allow-origin lists it; any other gets "*",
 * which a browser will not use with credentials. Preflights for stores
 * from other origins were refused before this (origin_check).
 */
int
http_reply_options(struct httpreq *hr, int allowed)
{
	struct MHD_Response	*r;
	const char		*want, *origin, *reqh;
	int			 ok = 1, named;
	unsigned		 status = 200;

	want = http_header(hr, "Access-Control-Request-Method");
	if (want) {
		if (strcmp(want, "GET") == 0 || strcmp(want, "HEAD") == 0 ||
		    strcmp(want, "OPTIONS") == 0)
			ok = 1;
		else if (strcmp(want, "POST") == 0)
			ok = (allowed & HTTP_POST) != 0;
		else
			ok = 0;
	}
	if (!ok)
		status = 405;
	r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	if (ok) {
		origin = http_header(hr, "Origin");
		reqh = http_header(hr, "Access-Control-Request-Headers");
		named = origin_allowed(&hr->hr_ds->origin, origin);
		if (origin) {
			MHD_add_response_header(r,
			    "Access-Control-Allow-Origin", named ? origin : "*");
			MHD_add_response_header(r, "Vary", "Origin");
		}
		MHD_add_response_header(r, "Access-Control-Allow-Methods",
		    (allowed & HTTP_POST) ? ALLOW_METHODS_POST : ALLOW_METHODS);
		MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
		if (reqh && named && strcasestr(reqh, "authorization")) {
			/* an allowed page about to send Basic credentials */
			MHD_add_response_header(r,
			    "Access-Control-Allow-Headers",
			    CORS_PREFLIGHT_HEADERS_AUTH);
			MHD_add_response_header(r,
			    "Access-Control-Allow-Credentials", "true");
		} else if (reqh)
			MHD_add_response_header(r,
			    "Access-Control-Allow-Headers",
			    CORS_PREFLIGHT_HEADERS);
	}
	return queue(hr, status, r);
}

/* The client's address as text; returns 1 when it is a loopback one. */
int
http_peer(struct httpreq *hr, char *out, size_t len)
{
	const union MHD_ConnectionInfo	*ci;
	const struct sockaddr		*sa;

	snprintf(out, len, "unknown");
	ci = MHD_get_connection_info(hr->hr_conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in	*in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)len);
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6	*in6 = (const void *)sa;
		const uint8_t			*b = in6->sin6_addr.s6_addr;

		inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)len);
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && b[12] == 127;
	}
	return 0;
}

const char *
http_header(struct httpreq *hr, const char *name)
{
	return MHD_lookup_connection_value(hr->hr_conn, MHD_HEADER_KIND, name);
}

/*
 * TRACE would echo the request's headers (Authorization included) back to
 * whoever sent it: 405, as for any method we do not serve. pmproxy
 * answers it; see README.md, differences from pmproxy.
 */
int
http_reply_trace(struct httpreq *hr)
{
	struct MHD_Response	*r;
	static const char	 msg[] = "{\"message\":\"method not allowed: "
				    "TRACE is not served\",\"success\":false}"
				    "\r\n";

	r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Allow", ALLOW_METHODS_SERVER);
	MHD_add_response_header(r, "Content-Type", "application/json");
	atomic_fetch_add(&hr->hr_ds->stats.st_errors, 1);
	return queue(hr, 405, r);
}

/* OPTIONS *: what the server serves; a foreign Origin is not named. */
int
http_reply_server_options(struct httpreq *hr)
{
	struct MHD_Response	*r;
	const char		*origin;

	r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	origin = http_header(hr, "Origin");
	if (origin)
		MHD_add_response_header(r, "Access-Control-Allow-Origin",
		    origin_allowed(&hr->hr_ds->origin, origin) ? origin : "*");
	MHD_add_response_header(r, "Access-Control-Allow-Methods",
	    ALLOW_METHODS_SERVER);
	MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
	return queue(hr, 200, r);
}

/* {"message":...,"success":false}, malloc'd (caller frees), or NULL */
static char *
error_body(const char *msg, size_t *lenp)
{
	struct buf	 b;

	buf_init(&b, HTTP_ERROR_BODY_MAX);
	buf_puts(&b, "{\"message\":");
	json_str(&b, msg);
	buf_puts(&b, ",\"success\":false}\r\n");
	if (b.b_failed) {
		buf_free(&b);
		return NULL;
	}
	return buf_take(&b, lenp);
}

/*
 * {"message":...,"success":false} with our CORS headers, a Retry-After
 * header when retry_s is not 0, and the connection closed after it when
 * close is set.
 */
int
http_reply_retry(struct httpreq *hr, unsigned status, const char *msg,
    unsigned retry_s, int close)
{
	struct MHD_Response	*r;
	char			 ra[16], *body;
	size_t			 len;

	if ((body = error_body(msg, &len)) == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	add_cors(hr, r);
	MHD_add_response_header(r, "Content-Type", "application/json");
	snprintf(ra, sizeof(ra), "%u", retry_s);
	if (retry_s)
		MHD_add_response_header(r, "Retry-After", ra);
	if (close)
		MHD_add_response_header(r, "Connection", "close");
	atomic_fetch_add(&hr->hr_ds->stats.st_errors, 1);
	atomic_fetch_add(&hr->hr_ds->stats.st_bytes_out, len);
	return queue(hr, status, r);
}

/* {"message":...,"success":false} with our CORS headers. */
int
http_reply_error(struct httpreq *hr, unsigned status, const char *msg)
{
	size_t	 len;
	char	*body = error_body(msg, &len);

	if (body == NULL)
		return MHD_NO;
	return http_reply(hr, status, "application/json", body, len);
}
