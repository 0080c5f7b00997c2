/* SPDX-License-Identifier: MIT */
/*
 * http.c - the HTTP server: libmicrohttpd wiring, one baton per request,
 * strict query parsing, body limits, CORS headers, OPTIONS/TRACE and
 * pmproxy-shaped HTML errors. Dialects (api_*.c) see a parsed httpreq and
 * answer through http_reply*(); main passes in the routes table that
 * names them and the failed-login hook, so this file calls nothing above
 * it. Threads: MHD's worker pool runs every
 * callback here; the shared mutable state is the per-address table
 * (ip_lock), the connection list (conn_lock, see struct hconn), and
 * atomics: daemon_state.stats, ds->mem and each hconn's hc_state.
 *
 * Memory (--max-memory, ds->mem): each connection is charged
 * conn_charge() (libmicrohttpd's pool for its URL and headers, sized for
 * --max-url-bytes, and our two copies of a URL of BT_URL_PREPAID bytes)
 * while it is open; the copies of a longer URL while its request runs;
 * a request body as it grows; an
 * answer from when it is built until the request ends (the client read
 * it or went away). Small error answers are covered by the connection's
 * charge. A refused charge is a 503 with memcap_message().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "auth.h"
#include "authq.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "memcap.h"
#include "origin.h"
#include "util.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

/*
 * Connections per client address (--max-connections-per-ip). Our own
 * table rather than libmicrohttpd's option, whose count is kept per
 * worker thread in thread-pool mode (so N threads let N times as many
 * through). Guarded by ip_lock; the accept callback and the connection
 * notifications run on libmicrohttpd's threads.
 */
#define IP_BUCKETS	1024

struct ipcount {
	uint8_t		 ic_addr[16];
	unsigned	 ic_n;
	struct ipcount	*ic_next;
};

/*
 * One open connection (libmicrohttpd's socket context). hc_state is the
 * request deadline's clock (--request-timeout): a phase in its low two
 * bits, a monotonic time in ms above them. HC_WAIT: between requests,
 * the time the last one ended (or the connection opened); HC_REQ: a
 * request is coming in, the time of its first byte; HC_ANSWER: it is
 * all in and answered, no deadline; HC_CUT: the deadline closed it.
 * Written by libmicrohttpd's threads with plain atomic stores and by the
 * deadline thread with compare-and-swap only, so no request takes a lock
 * for it. The list (hc_prev/hc_next) is guarded by conn_lock: a
 * connection is listed from NOTIFY_STARTED until NOTIFY_CLOSED, which
 * libmicrohttpd 0.9.75 calls before it closes the socket, so hc_fd is
 * open while the deadline thread holds conn_lock and looks at it.
 */
#define HC_WAIT		0u
#define HC_REQ		1u
#define HC_ANSWER	2u
#define HC_CUT		3u
#define HC_PHASE(v)	((unsigned)((v) & 3u))
#define HC_MS(v)	((long long)((v) >> 2))
#define HC_WORD(ms, ph)	(((uint64_t)(ms) << 2) | (ph))
/* bytes within this long of a request's end are taken as its own */
#define HC_RX_SLACK_MS	20
#define HC_SCAN_MS	1000	/* deadline thread's period */

struct hconn {
	struct hconn		*hc_prev, *hc_next;	/* conn_lock */
	int			 hc_fd;
	size_t			 hc_charged;	/* 0: the ceiling refused it */
	_Atomic uint64_t	 hc_state;
};

struct httpd {
	struct daemon_state	*h_ds;
	struct http_options	 h_opts;	/* set at start, then read-only */
	pthread_mutex_t		 ip_lock;
	struct ipcount		*ip_bucket[IP_BUCKETS];
	pthread_mutex_t		 conn_lock;	/* guards conns */
	struct hconn		*conns;
	pthread_mutex_t		 dl_lock;	/* guards dl_stop */
	pthread_cond_t		 dl_cond;
	int			 dl_stop;
	pthread_t		 dl_thread;
	int			 dl_started;	/* main thread only */
	char			*h_tls_cert;	/* PEM text, --tls-cert */
	char			*h_tls_key;
	struct authq		*h_authq;	/* password checks */
	struct MHD_Daemon	*h_mhd[BT_MAX_LISTEN];
	int			 h_fd[BT_MAX_LISTEN];
	int			 h_n;
	size_t			 h_pool;	/* libmicrohttpd's, per connection */
	size_t			 h_conn_charge;	/* to ds->mem per connection */
};

/* a password check handed to a verifier thread (authq.c) */
#define BT_AUTH_NONE	0	/* none asked */
#define BT_AUTH_PENDING	1	/* queued; the connection is suspended */
#define BT_AUTH_DONE	2	/* bt_auth_* hold the answer */

/*
 * Per-request baton, freed in on_http_completed(). The bt_auth_* fields
 * and bt_job are the one part another thread touches: while bt_auth is
 * BT_AUTH_PENDING the connection is suspended, so libmicrohttpd calls
 * neither the handler nor the completion callback for it; the verifier's
 * done callback writes the answer, publishes BT_AUTH_DONE (release) and
 * resumes the connection as its last touch of the baton; the handler
 * reads the answer after an acquire load of bt_auth. authq_stop() runs
 * before MHD_stop_daemon() and answers every queued check, so no
 * connection is still suspended when the daemon stops.
 */
struct baton {
	char		*bt_uri;	/* raw request target */
	size_t		 bt_urilen;
	struct buf	 bt_body;	/* charged to ds->mem */
	struct hconn	*bt_hc;		/* its connection, or NULL */
	size_t		 bt_held;	/* answer bytes charged to ds->mem */
	int		 bt_started;
	int		 bt_too_big;
	uintptr_t	 bt_uri_at;	/* where MHD's request line had it */
	struct MHD_Connection *bt_conn;
	atomic_int	 bt_auth;	/* BT_AUTH_* */
	struct authq_job bt_job;	/* aj_db, aj_hdr: ours till used */
	size_t		 bt_job_mem;	/* charged to ds->mem for aj_hdr */
	uint8_t		 bt_addr[16];	/* the client, for its token */
	enum auth_result bt_auth_r;
	struct auth_user bt_auth_u;
	char		 bt_auth_err[256];
	int		 bt_refused;	/* the body passed --max-memory */
	size_t		 bt_url_charged; /* a long URL's copies, ds->mem */
	int		 bt_url_refused; /* ... did not fit: 503 */
};

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

static long long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

	buf_init(&b, 4096);
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
static int
reply_trace(struct httpreq *hr)
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
static int
reply_server_options(struct httpreq *hr)
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

/*
 * {"message":...,"success":false} with our CORS headers, a Retry-After
 * header when retry_s is not 0, and the connection closed after it when
 * close is set.
 */
static char *
error_body(const char *msg, size_t *lenp)
{
	struct buf	 b;

	buf_init(&b, 4096);
	buf_puts(&b, "{\"message\":");
	json_str(&b, msg);
	buf_puts(&b, ",\"success\":false}\r\n");
	if (b.b_failed) {
		buf_free(&b);
		return NULL;
	}
	return buf_take(&b, lenp);
}

static int
reply_error_retry(struct httpreq *hr, unsigned status, const char *msg,
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

/* --- who is asking --- */

/* A failed login: the hook main passed in (the audit trail) hears of it. */
static void
login_failed(struct httpd *h, struct httpreq *hr, struct baton *bt,
    const char *path, const char *tried, const char *why)
{
	if (h->h_opts.ho_login_failed)
		h->h_opts.ho_login_failed(hr, path, bt->bt_body.b_data,
		    bt->bt_body.b_len, tried, why);
}

/* 16 bytes naming the client (see ip_key); all zero when unknown */
static int	ip_key(const struct sockaddr *, uint8_t [16]);

static void
conn_key(struct MHD_Connection *conn, uint8_t key[16])
{
	const union MHD_ConnectionInfo	*ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL ||
	    !ip_key(ci->client_addr, key))
		memset(key, 0, 16);
}

/* The job's header copy and db reference, once the check is over. */
static void
auth_job_release(struct daemon_state *ds, struct baton *bt)
{
	if (bt->bt_job.aj_hdr != NULL) {
		explicit_bzero(bt->bt_job.aj_hdr, strlen(bt->bt_job.aj_hdr));
		free(bt->bt_job.aj_hdr);
		memcap_release(&ds->mem, bt->bt_job_mem);
	}
	auth_unref(bt->bt_job.aj_db);
	bt->bt_job.aj_hdr = NULL;
	bt->bt_job.aj_db = NULL;
	bt->bt_job_mem = 0;
}

/* Under the queue's lock, just before the job becomes visible. */
static void
on_auth_prepare(void *arg)
{
	struct baton	*bt = arg;

	atomic_store_explicit(&bt->bt_auth, BT_AUTH_PENDING,
	    memory_order_relaxed);
	MHD_suspend_connection(bt->bt_conn);
}

/* On a verifier thread: the last touch of bt is the resume. */
static void
on_auth_done(void *arg, enum auth_result r, const struct auth_user *u,
    const char *err)
{
	struct baton	*bt = arg;

	bt->bt_auth_r = r;
	bt->bt_auth_u = *u;
	snprintf(bt->bt_auth_err, sizeof(bt->bt_auth_err), "%s", err);
	atomic_store_explicit(&bt->bt_auth, BT_AUTH_DONE,
	    memory_order_release);
	MHD_resume_connection(bt->bt_conn);
}

/*
 * Hand a check that needs crypt to the verifiers: 1 when the connection
 * is suspended until the answer, -1 after an error answer was queued in
 * *ret (no token for this address: 429; queue full or no memory: 503).
 * Takes over the db reference.
 */
static int
auth_enqueue(struct httpreq *hr, struct baton *bt, struct auth_db *db,
    const char *hdr, int *ret)
{
	struct daemon_state	*ds = hr->hr_ds;
	struct httpd		*h = ds->httpd;
	char			 msg[512], peer[64];
	unsigned		 retry = 0;
	int			 rv;

	conn_key(hr->hr_conn, bt->bt_addr);
	if (authq_take_token(h->h_authq, bt->bt_addr, &retry) == -1) {
		auth_unref(db);
		http_peer(hr, peer, sizeof(peer));
		snprintf(msg, sizeof(msg), "too many failed logins from %s "
		    "(over %u a minute, --auth-fail-rate): try again in %u s",
		    peer, ds->cfg.auth_fail_rate, retry);
		*ret = reply_error_retry(hr, 429, msg, retry, 0);
		return -1;
	}
	bt->bt_job_mem = strlen(hdr) + 1;
	if (memcap_charge(&ds->mem, bt->bt_job_mem) == -1) {
		bt->bt_job_mem = 0;
		auth_unref(db);
		authq_refund(h->h_authq, bt->bt_addr);
		memcap_message(&ds->mem, msg, sizeof(msg));
		*ret = http_reply_error(hr, 503, msg);
		return -1;
	}
	bt->bt_conn = hr->hr_conn;
	bt->bt_job.aj_db = db;
	bt->bt_job.aj_hdr = strdup(hdr);
	bt->bt_job.aj_done = on_auth_done;
	bt->bt_job.aj_arg = bt;
	rv = bt->bt_job.aj_hdr == NULL ? AUTHQ_FULL :
	    authq_submit(h->h_authq, &bt->bt_job, on_auth_prepare);
	if (rv == AUTHQ_QUEUED)
		return 1;
	auth_job_release(ds, bt);
	authq_refund(h->h_authq, bt->bt_addr);
	if (rv == AUTHQ_STOPPING)
		snprintf(msg, sizeof(msg), "server shutting down");
	else
		snprintf(msg, sizeof(msg), "too many password checks waiting "
		    "(%u, --auth-queue): try again", ds->cfg.auth_queue);
	*ret = reply_error_retry(hr, 503, msg, 1, 0);
	return -1;
}

/*
 * The answer for this request: known without crypt, from the verifier
 * that ran (*r, u, err filled in, 0), or handed to one now (1: suspended;
 * -1: answer queued in *ret).
 */
static int
auth_result(struct httpreq *hr, struct baton *bt, const char *hdr,
    enum auth_result *r, struct auth_user *u, char *err, size_t errlen,
    int *ret)
{
	struct daemon_state	*ds = hr->hr_ds;
	struct auth_db		*db;

	if (atomic_load_explicit(&bt->bt_auth, memory_order_acquire) ==
	    BT_AUTH_DONE) {
		*r = bt->bt_auth_r;
		*u = bt->bt_auth_u;
		snprintf(err, errlen, "%s", bt->bt_auth_err);
		explicit_bzero(&bt->bt_auth_u, sizeof(bt->bt_auth_u));
		auth_job_release(ds, bt);
		/* a success, or our failure, costs the address nothing */
		if (*r == AUTH_OK || *r == AUTH_ERROR)
			authq_refund(ds->httpd->h_authq, bt->bt_addr);
		return 0;
	}
	pthread_mutex_lock(&ds->auth_lock);
	db = auth_ref(ds->auth);
	pthread_mutex_unlock(&ds->auth_lock);
	if (auth_check_quick(db, hdr, u, r, err, errlen)) {
		auth_unref(db);
		return 0;
	}
	return auth_enqueue(hr, bt, db, hdr, ret);
}

/*
 * With --auth-file, a request that carries credentials is checked (and
 * with --auth-reads every request must); hr_user/hr_roles are filled in.
 * A check that needs crypt runs on a verifier thread while the
 * connection waits suspended; the handler runs again when it is done.
 * Returns 0 to go on, 1 when suspended (return MHD_YES), or -1 after an
 * error answer was queued in *ret.
 */
static int
authenticate(struct httpd *h, struct httpreq *hr, struct baton *bt,
    const char *path, int *ret)
{
	struct daemon_state	*ds = hr->hr_ds;
	const char		*hdr = http_header(hr, "Authorization");
	struct auth_user	 u;
	char			 err[256], msg[512];
	enum auth_result	 r;
	int			 rv;

	if (ds->auth == NULL || (hdr == NULL && !ds->cfg.auth_reads))
		return 0;
	if ((rv = auth_result(hr, bt, hdr, &r, &u, err, sizeof(err),
	    ret)) != 0)
		return rv;
	if (r == AUTH_OK && ds->cfg.auth_reads && (u.au_roles &
	    (AUTH_ROLE_READ | AUTH_ROLE_CONTROL | AUTH_ROLE_ADMIN)) == 0) {
		snprintf(msg, sizeof(msg), "user %s may not read metrics "
		    "(no read role)", u.au_name);
		*ret = http_reply_error(hr, 403, msg);
		return -1;
	}
	switch (r) {
	case AUTH_OK:
		snprintf(hr->hr_user, sizeof(hr->hr_user), "%s", u.au_name);
		hr->hr_roles = u.au_roles;
		hr->hr_authed = 1;
		return 0;
	case AUTH_MALFORMED:
		snprintf(msg, sizeof(msg), "malformed Authorization header: %s",
		    err);
		*ret = http_reply_error(hr, 400, msg);
		return -1;
	case AUTH_ERROR:
		if (strcmp(err, "server shutting down") == 0) {
			*ret = http_reply_error(hr, 503, err);
			return -1;
		}
		log_warnx("authentication: %s", err);
		*ret = http_reply_error(hr, 500, "authentication failed: "
		    "internal error");
		return -1;
	case AUTH_MISSING:	/* err is "authentication required" already */
		*ret = http_reply_error(hr, 401, err);
		return -1;
	default:
		if (r == AUTH_BAD) {	/* failed logins are worth a line */
			char	 peer[64];

			http_peer(hr, peer, sizeof(peer));
			log_warnx("authentication failed from %s: %s", peer,
			    err);
			login_failed(h, hr, bt, path, u.au_tried, err);
		}
		snprintf(msg, sizeof(msg), "authentication required: %s", err);
		*ret = http_reply_error(hr, 401, msg);
		return -1;
	}
}

/* --- where the request comes from --- */

/* a header value fit for a log line or a message: control bytes as '?' */
static const char *
printable(const char *s, char *out, size_t len)
{
	size_t	 i = 0;

	if (s == NULL)
		return "(none)";
	for (; *s && i + 1 < len; s++)
		out[i++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
	out[i] = '\0';
	return out;
}

/*
 * The request-origin policy (origin.c), for every request, before
 * credentials are looked at and before any handler runs. Returns 0 to go
 * on, or -1 after the refusal (421 for a Host we do not answer for, 403
 * for a page on another origin) was queued in *ret and counted in
 * bpftrace.daemon.refused.
 */
static int
check_origin(struct httpreq *hr, const char *path, int *ret)
{
	struct daemon_state	*ds = hr->hr_ds;
	struct origin_req	 orq;
	enum origin_refusal	 why;
	char			 peer[64], hbuf[128], obuf[128], sbuf[32];
	const char		*host, *org, *site;
	char			 msg[768];

	memset(&orq, 0, sizeof(orq));
	orq.or_method = hr->hr_method;
	orq.or_path = path;
	orq.or_host = http_header(hr, "Host");
	orq.or_origin = http_header(hr, "Origin");
	orq.or_fetch_site = http_header(hr, "Sec-Fetch-Site");
	orq.or_fetch_mode = http_header(hr, "Sec-Fetch-Mode");
	orq.or_referer = http_header(hr, "Referer");
	orq.or_user_agent = http_header(hr, "User-Agent");
	orq.or_tls = ds->cfg.tls_cert != NULL;
	if (origin_check(&ds->origin, &orq, &why) == 0)
		return 0;
	atomic_fetch_add(&ds->stats.st_refused[why], 1);
	atomic_fetch_add(&ds->stats.st_requests[EP_OTHER], 1);
	http_peer(hr, peer, sizeof(peer));
	host = printable(orq.or_host, hbuf, sizeof(hbuf));
	org = printable(orq.or_origin, obuf, sizeof(obuf));
	site = printable(orq.or_fetch_site, sbuf, sizeof(sbuf));
	log_info("refused %s %s from %s (%s): Host %s, Origin %s, "
	    "Sec-Fetch-Site %s", hr->hr_method, path ? path : "", peer,
	    origin_refusal_name(why), host, org, site);
	if (why == REFUSE_HOST) {
		snprintf(msg, sizeof(msg), "misdirected request: Host %s is "
		    "not a name bpftraced answers for (IP addresses, "
		    "localhost and %s are; add others with --allow-host "
		    "NAME); a web page using its own DNS name for this "
		    "address (DNS rebinding) is refused this way", host,
		    ds->hostname);
		*ret = http_reply_error(hr, 421, msg);
	} else {
		snprintf(msg, sizeof(msg), "cross-origin request refused "
		    "(%s): a web page on another origin (Origin %s, "
		    "Sec-Fetch-Site %s) may not store, derive or profile; "
		    "start bpftraced with --allow-origin ORIGIN to allow a "
		    "trusted one (e.g. Grafana in browser access mode)",
		    origin_refusal_name(why), org, site);
		*ret = http_reply_error(hr, 403, msg);
	}
	return -1;
}

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
		return reply_trace(hr);
	}
	if (parse_target(hr, bt, &path, err, sizeof(err)) == -1) {
		atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
		ret = http_reply_html(hr, 400, "webapi servlet", err);
		goto done;
	}
	if (check_origin(hr, path, &ret) == -1)
		goto done;
	if (strcmp(hr->hr_method, "OPTIONS") == 0 &&
	    strcmp(bt->bt_uri, "*") == 0) {
		ret = reply_server_options(hr);
		goto done;
	}
	if (strcmp(hr->hr_method, "OPTIONS") != 0 &&
	    (rv = authenticate(h, hr, bt, path, &ret)) != 0) {
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
	char		*end;

	if ((bt->bt_hc && bt->bt_hc->hc_charged == 0) || bt->bt_url_refused)
		goto refuse;
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Content-Length");
	if (cl == NULL || *cl == '\0')
		return 0;
	errno = 0;
	n = strtoull(cl, &end, 10);
	/* too large is answered 413 once read, as before; nonsense is
	   libmicrohttpd's business */
	if (errno || *end != '\0' || n == 0 || n > h->h_ds->cfg.max_body)
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

static MHD_RESULT
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
			ret = reply_error_retry(&hr, 400, bad, 0, 1);
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

/* A request began on hc: its deadline runs from its first byte. */
static void
hconn_request(struct hconn *hc)
{
	uint64_t	 v = atomic_load(&hc->hc_state);

	/* HC_REQ: the deadline thread saw its first bytes already */
	while (HC_PHASE(v) != HC_REQ && HC_PHASE(v) != HC_CUT &&
	    !atomic_compare_exchange_weak(&hc->hc_state, &v,
	    HC_WORD(now_ms(), HC_REQ)))
		;
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
static void *
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
		hconn_request(bt->bt_hc);
	}
	return bt;
}

static void
on_http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct httpd	*h = cls;
	struct baton	*bt = *con_cls;

	if (bt == NULL)
		return;
	/* never BT_AUTH_PENDING here: a suspended connection is not closed */
	auth_job_release(((struct httpd *)cls)->h_ds, bt);
	if (bt->bt_hc)		/* waiting for the next request from now */
		atomic_store(&bt->bt_hc->hc_state, HC_WORD(now_ms(), HC_WAIT));
	buf_free(&bt->bt_body);
	memcap_release(&h->h_ds->mem, bt->bt_held + bt->bt_url_charged);
	free(bt->bt_uri);
	free(bt);
	*con_cls = NULL;
}

static void
on_http_log(void *cls, const char *fmt, va_list ap)
{
	char	 msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_debug("http: %s", msg);
}

/* --- listening sockets --- */

static int
open_listener(const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 fd, one = 1;

	if (http_parse_listen(spec, &ss, &sslen, err, errlen) == -1)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		seterr(err, errlen, "socket for %s: %s", spec, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1) {
		seterr(err, errlen, "cannot listen on %s: %s%s", spec,
		    strerror(errno), errno == EADDRINUSE ?
		    " (another pmproxy or bpftraced running? use --listen)" :
		    "");
		close(fd);
		return -1;
	}
	if (listen(fd, 1024) == -1) {
		seterr(err, errlen, "listen on %s: %s", spec, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* 16 bytes naming the client: IPv6, or IPv4 mapped; 0 for others */
static int
ip_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr, 4);
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr, 16);
		return 1;
	}
	return 0;
}

static unsigned
ip_hash(const uint8_t key[16])
{
	unsigned	 h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % IP_BUCKETS;
}

/* Add delta to the address's count; returns the count before. */
static unsigned
ip_count(struct httpd *h, const struct sockaddr *sa, int delta)
{
	struct ipcount	**pp, *e;
	uint8_t		 key[16];
	unsigned	 before = 0;

	if (sa == NULL || !ip_key(sa, key))
		return 0;
	pthread_mutex_lock(&h->ip_lock);
	for (pp = &h->ip_bucket[ip_hash(key)]; (e = *pp) != NULL;
	    pp = &e->ic_next)
		if (memcmp(e->ic_addr, key, 16) == 0)
			break;
	if (e)
		before = e->ic_n;
	if (delta > 0 && e == NULL && (e = calloc(1, sizeof(*e))) != NULL) {
		memcpy(e->ic_addr, key, 16);
		*pp = e;
	}
	if (e && delta != 0) {
		e->ic_n = delta < 0 && e->ic_n == 0 ? 0 : e->ic_n + delta;
		if (e->ic_n == 0) {
			*pp = e->ic_next;
			free(e);
		}
	}
	pthread_mutex_unlock(&h->ip_lock);
	return before;
}

static MHD_RESULT
on_http_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct httpd	*h = cls;

	(void)len;
	return ip_count(h, sa, 0) < h->h_ds->cfg.max_conn_per_ip ? MHD_YES :
	    MHD_NO;
}

/* A new connection: listed, charged (or marked refused), waiting. */
static struct hconn *
hconn_open(struct httpd *h, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo	*ci;
	struct hconn			*hc;

	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return NULL;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	hc->hc_fd = ci ? ci->connect_fd : -1;
	if (memcap_charge(&h->h_ds->mem, h->h_conn_charge) == 0)
		hc->hc_charged = h->h_conn_charge;
	atomic_init(&hc->hc_state, HC_WORD(now_ms(), HC_WAIT));
	pthread_mutex_lock(&h->conn_lock);
	hc->hc_next = h->conns;
	if (h->conns)
		h->conns->hc_prev = hc;
	h->conns = hc;
	pthread_mutex_unlock(&h->conn_lock);
	return hc;
}

static void
hconn_close(struct httpd *h, struct hconn *hc)
{
	pthread_mutex_lock(&h->conn_lock);
	if (hc->hc_prev)
		hc->hc_prev->hc_next = hc->hc_next;
	else
		h->conns = hc->hc_next;
	if (hc->hc_next)
		hc->hc_next->hc_prev = hc->hc_prev;
	pthread_mutex_unlock(&h->conn_lock);
	memcap_release(&h->h_ds->mem, hc->hc_charged);
	free(hc);
}

static void
on_http_connection(void *cls, struct MHD_Connection *conn, void **sctx,
    enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo	*ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr)
		ip_count(cls, ci->client_addr,
		    toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		*sctx = hconn_open(cls, conn);
	else if (*sctx) {
		hconn_close(cls, *sctx);
		*sctx = NULL;
	}
}

/* --- the request deadline (--request-timeout) --- */

/* When data last came in on fd (monotonic ms), or 0 when unknown. */
static long long
last_rx_ms(int fd, long long now)
{
	struct tcp_info	 ti;
	socklen_t	 len = sizeof(ti);

	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return 0;
	return now - (long long)ti.tcpi_last_data_recv;
}

/*
 * One look at every connection, under conn_lock. One waiting for a
 * request that received bytes since its last request ended has a
 * request coming in: its deadline starts at those bytes (libmicrohttpd
 * tells us of a request only once its request line is in, which a slow
 * client may dribble). One whose request has run past the deadline is
 * shut down; libmicrohttpd sees the end of the stream and closes it.
 */
static size_t
deadline_scan(struct httpd *h, long long limit_ms)
{
	long long	 now = now_ms(), rx;
	size_t		 cut = 0;
	uint64_t	 v;

	pthread_mutex_lock(&h->conn_lock);
	for (struct hconn *hc = h->conns; hc; hc = hc->hc_next) {
		v = atomic_load(&hc->hc_state);
		if (HC_PHASE(v) == HC_WAIT) {
			rx = last_rx_ms(hc->hc_fd, now);
			if (rx > HC_MS(v) + HC_RX_SLACK_MS)
				atomic_compare_exchange_strong(&hc->hc_state,
				    &v, HC_WORD(rx, HC_REQ));
		} else if (HC_PHASE(v) == HC_REQ && now - HC_MS(v) > limit_ms &&
		    atomic_compare_exchange_strong(&hc->hc_state, &v,
		    HC_WORD(now, HC_CUT))) {
			shutdown(hc->hc_fd, SHUT_RDWR);
			cut++;
		}
	}
	pthread_mutex_unlock(&h->conn_lock);
	return cut;
}

static void *
deadline_thread(void *arg)
{
	struct httpd	*h = arg;
	long long	 limit = (long long)h->h_ds->cfg.request_timeout * 1000;
	struct timespec	 ts;
	size_t		 cut;

	pthread_mutex_lock(&h->dl_lock);
	while (!h->dl_stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += HC_SCAN_MS / 1000;
		pthread_cond_timedwait(&h->dl_cond, &h->dl_lock, &ts);
		if (h->dl_stop)
			break;
		pthread_mutex_unlock(&h->dl_lock);
		if ((cut = deadline_scan(h, limit)) > 0)
			log_info("closed %zu connection(s) whose request was "
			    "not in %u s after its first byte (see "
			    "--request-timeout)", cut,
			    h->h_ds->cfg.request_timeout);
		pthread_mutex_lock(&h->dl_lock);
	}
	pthread_mutex_unlock(&h->dl_lock);
	return NULL;
}

static int
deadline_start(struct httpd *h, char *err, size_t errlen)
{
	pthread_condattr_t	 ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->dl_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (h->h_ds->cfg.request_timeout == 0)
		return 0;
	if (pthread_create(&h->dl_thread, NULL, deadline_thread, h) != 0) {
		seterr(err, errlen, "cannot start the request deadline thread");
		return -1;
	}
	h->dl_started = 1;
	return 0;
}

static void
deadline_stop(struct httpd *h)
{
	if (!h->dl_started)
		return;
	pthread_mutex_lock(&h->dl_lock);
	h->dl_stop = 1;
	pthread_cond_signal(&h->dl_cond);
	pthread_mutex_unlock(&h->dl_lock);
	pthread_join(h->dl_thread, NULL);
	h->dl_started = 0;
}

static struct MHD_Daemon *
start_mhd(struct httpd *h, int fd)
{
	const struct config	*c = &h->h_ds->cfg;
	unsigned		 flags = MHD_USE_INTERNAL_POLLING_THREAD |
				    MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
				    MHD_ALLOW_SUSPEND_RESUME;
	MHD_AcceptPolicyCallback apc = c->max_conn_per_ip ? on_http_accept :
				    NULL;

	if (h->h_tls_cert)
		return MHD_start_daemon(flags | MHD_USE_TLS, 0, apc, h,
		    on_http_request, h,
		    MHD_OPTION_HTTPS_MEM_CERT, h->h_tls_cert,
		    MHD_OPTION_HTTPS_MEM_KEY, h->h_tls_key,
		    MHD_OPTION_HTTPS_PRIORITIES, c->tls_priority,
		    MHD_OPTION_LISTEN_SOCKET, fd,
		    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->http_threads,
		    MHD_OPTION_CONNECTION_LIMIT, c->max_connections,
		    MHD_OPTION_NOTIFY_CONNECTION, on_http_connection, h,
		    MHD_OPTION_CONNECTION_TIMEOUT, c->idle_timeout,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->h_pool,
		    MHD_OPTION_URI_LOG_CALLBACK, on_http_uri, h,
		    MHD_OPTION_NOTIFY_COMPLETED, on_http_completed, h,
		    MHD_OPTION_EXTERNAL_LOGGER, on_http_log, h,
		    MHD_OPTION_END);
	return MHD_start_daemon(flags, 0, apc, h,
	    on_http_request, h,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->http_threads,
	    MHD_OPTION_CONNECTION_LIMIT, c->max_connections,
	    MHD_OPTION_NOTIFY_CONNECTION, on_http_connection, h,
	    MHD_OPTION_CONNECTION_TIMEOUT, c->idle_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->h_pool,
	    MHD_OPTION_URI_LOG_CALLBACK, on_http_uri, h,
	    MHD_OPTION_NOTIFY_COMPLETED, on_http_completed, h,
	    MHD_OPTION_EXTERNAL_LOGGER, on_http_log, h,
	    MHD_OPTION_END);
}

/*
 * Read a PEM file whole; caller frees. A private key (secret) must not be
 * accessible to group or others: checked on the file we opened.
 */
static char *
read_pem(const char *path, int secret, char *err, size_t errlen)
{
	struct buf	 b;
	struct stat	 st;
	char		 chunk[4096];
	size_t		 n;
	FILE		*f;

	if ((f = fopen(path, "re")) == NULL) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (secret && fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
		seterr(err, errlen, "--tls-key %s: mode %04o lets group or "
		    "others at the private key; chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
		fclose(f);
		return NULL;
	}
	buf_init(&b, 1024 * 1024);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	if (b.b_failed || b.b_len == 0) {
		seterr(err, errlen, "%s: empty or larger than 1 MiB", path);
		buf_free(&b);
		return NULL;
	}
	return buf_take(&b, NULL);
}

static int
load_tls(struct httpd *h, const struct config *c, char *err, size_t errlen)
{
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		seterr(err, errlen, "--tls-cert: this libmicrohttpd has no TLS "
		    "support");
		return -1;
	}
	if ((h->h_tls_cert = read_pem(c->tls_cert, 0, err, errlen)) == NULL ||
	    (h->h_tls_key = read_pem(c->tls_key, 1, err, errlen)) == NULL)
		return -1;
	return 0;
}

/*
 * libmicrohttpd's pool per connection: it holds the request line and
 * headers while they are parsed, and the answer's headers. BT_CONN_POOL
 * takes a URL of 32 KiB beside the headers; a larger --max-url-bytes gets
 * room for its URL and the same BT_CONN_POOL / 2 for the rest.
 */
static size_t
conn_pool(size_t max_url)
{
	size_t	 want = max_url + BT_CONN_POOL / 2;

	return want > BT_CONN_POOL ? want : BT_CONN_POOL;
}

/*
 * Listen on every --listen address; opts (copied) names the routes and
 * the failed-login hook, so this file calls nothing above it. Main
 * thread; httpd_stop() frees what it returns.
 */
struct httpd *
httpd_start(struct daemon_state *ds, const struct http_options *opts,
    char *err, size_t errlen)
{
	struct httpd	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	h->h_ds = ds;
	h->h_opts = *opts;
	ds->httpd = h;
	h->h_pool = conn_pool(ds->cfg.max_url);
	h->h_conn_charge = h->h_pool + 2 * BT_URL_PREPAID;
	pthread_mutex_init(&h->ip_lock, NULL);
	pthread_mutex_init(&h->conn_lock, NULL);
	pthread_mutex_init(&h->dl_lock, NULL);
	if ((h->h_authq = authq_new(ds->cfg.auth_threads, ds->cfg.auth_queue,
	    ds->cfg.auth_fail_rate, ds->cfg.auth_fail_addrs, err,
	    errlen)) == NULL || deadline_start(h, err, errlen) == -1)
		goto fail;
	if (ds->cfg.tls_cert && load_tls(h, &ds->cfg, err, errlen) == -1)
		goto fail;
	for (int i = 0; i < ds->cfg.nlisten; i++) {
		const char	*spec = ds->cfg.listen[i].la_spec;
		int		 fd = open_listener(spec, err, errlen);

		if (fd == -1)
			goto fail;
		h->h_fd[h->h_n] = fd;
		if ((h->h_mhd[h->h_n] = start_mhd(h, fd)) == NULL) {
			if (h->h_tls_cert)
				seterr(err, errlen, "cannot start HTTPS server "
				    "on %s: check --tls-cert, --tls-key and "
				    "--tls-priority \"%s\"", spec,
				    ds->cfg.tls_priority);
			else
				seterr(err, errlen, "cannot start HTTP server "
				    "on %s", spec);
			close(fd);
			goto fail;
		}
		h->h_n++;
		log_info("listening on %s", spec);
	}
	return h;
fail:
	httpd_stop(h);
	return NULL;
}

void
httpd_stop(struct httpd *h)
{
	if (h == NULL)
		return;
	/* first: no connection may be left suspended (see struct baton) */
	authq_stop(h->h_authq);
	deadline_stop(h);
	for (int i = 0; i < h->h_n; i++) {
		MHD_stop_daemon(h->h_mhd[i]);
		close(h->h_fd[i]);
	}
	for (int i = 0; i < IP_BUCKETS; i++)
		while (h->ip_bucket[i]) {
			struct ipcount	*e = h->ip_bucket[i];

			h->ip_bucket[i] = e->ic_next;
			free(e);
		}
	pthread_mutex_destroy(&h->ip_lock);
	pthread_mutex_destroy(&h->conn_lock);
	pthread_mutex_destroy(&h->dl_lock);
	pthread_cond_destroy(&h->dl_cond);
	authq_free(h->h_authq);
	h->h_ds->httpd = NULL;
	if (h->h_tls_key)	/* private key material: wipe before free */
		explicit_bzero(h->h_tls_key, strlen(h->h_tls_key));
	free(h->h_tls_key);
	free(h->h_tls_cert);
	free(h);
}
