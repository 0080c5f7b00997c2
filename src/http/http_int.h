/* SPDX-License-Identifier: MIT */
/*
 * http_int.h - what the files of src/http/ share and nobody else sees: the
 * server (struct httpd), one open connection (struct hconn), one request's
 * baton, and the cross-file functions of http.c, http_conn.c,
 * http_auth.c, http_request.c and http_reply.c. The API layer above sees
 * only struct httpreq and the http_* functions of http.h. The calls
 * run one way: http.c -> http_request.c -> http_auth.c -> http_conn.c,
 * http_reply.c (make check-layers: no cycle between these files).
 */
#ifndef BT_HTTP_INT_H
#define BT_HTTP_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "authq.h"
#include "bt_limits.h"
#include "buf.h"
#include "http.h"

/* an error answer's body (the JSON message or pmproxy's HTML page): the
   messages are the daemon's own short texts (a longer one fails the
   buffer: http_reply_html sends an empty page, error_body gives NULL) */
#define HTTP_ERROR_BODY_MAX	4096
/* a --tls-cert or --tls-key PEM file: a key or a certificate chain is a
   few KiB; a larger file is refused ("larger than 1 MiB") */
#define HTTP_PEM_FILE_MAX	(1024 * 1024)

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

/* http_reply.c: answers, CORS headers, who the client is */
int		 http_reply_retry(struct httpreq *hr, unsigned status,
		    const char *msg, unsigned retry_s, int close);
int		 http_reply_trace(struct httpreq *hr);
int		 http_reply_server_options(struct httpreq *hr);

/* http_conn.c: connections per address, their charge, the deadline */
MHD_RESULT	 on_http_accept(void *cls, const struct sockaddr *sa,
		    socklen_t len);
void		 on_http_connection(void *cls, struct MHD_Connection *conn,
		    void **sctx, enum MHD_ConnectionNotificationCode toe);
void		 http_conn_key(struct MHD_Connection *conn, uint8_t key[16]);
void		 http_conn_request(struct hconn *hc);
int		 http_conn_deadline_start(struct httpd *h, char *err,
		    size_t errlen);
void		 http_conn_deadline_stop(struct httpd *h);

/* http_auth.c: the request-origin policy and authentication */
int		 http_auth_check_origin(struct httpreq *hr, const char *path,
		    int *ret);
int		 http_auth_authenticate(struct httpd *h, struct httpreq *hr,
		    struct baton *bt, const char *path, int *ret);
void		 http_auth_job_release(struct daemon_state *ds,
		    struct baton *bt);

/* http_request.c: libmicrohttpd's request callbacks */
MHD_RESULT	 on_http_request(void *cls, struct MHD_Connection *conn,
		    const char *url, const char *method, const char *version,
		    const char *upload_data, size_t *upload_data_size,
		    void **con_cls);
void		*on_http_uri(void *cls, const char *uri,
		    struct MHD_Connection *conn);
void		 on_http_completed(void *cls, struct MHD_Connection *conn,
		    void **con_cls, enum MHD_RequestTerminationCode toe);
void		 on_http_log(void *cls, const char *fmt, va_list ap);

#endif /* BT_HTTP_INT_H */
