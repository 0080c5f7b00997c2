/* SPDX-License-Identifier: MIT */
/*
 * http.c - the HTTP server: libmicrohttpd started on each --listen socket
 * (TLS with --tls-cert), the password verifiers and the request deadline
 * started beside it, all stopped again by httpd_stop(). The rest of the
 * layer is split by concern: http_request.c (one request: baton, framing,
 * body, parsing, routing), http_auth.c (origin policy, credentials),
 * http_conn.c (connections per address, their charge, the deadline) and
 * http_reply.c (answers, CORS); http_int.h holds what they share.
 * Dialects (api_*.c) see a parsed httpreq and answer through
 * http_reply*(); main passes in the routes table that names them and the
 * failed-login hook, so this layer calls nothing above it. Threads:
 * httpd_start() and httpd_stop() run on the main thread; libmicrohttpd's
 * worker pool runs every callback; the shared mutable state is the
 * per-address table (ip_lock), the connection list (conn_lock, see
 * struct hconn), and atomics: daemon_state.stats, ds->mem and each
 * hconn's hc_state.
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
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "authq.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "http.h"
#include "http_int.h"
#include "log.h"
#include "memcap.h"
#include "util.h"

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

/*
 * One libmicrohttpd daemon on fd, in our threading mode; with --tls-cert
 * the TLS options come first (MHD_OPTION_ARRAY: empty without TLS).
 */
static struct MHD_Daemon *
start_mhd(struct httpd *h, int fd)
{
	const struct config	*c = &h->h_ds->cfg;
	unsigned		 flags = MHD_USE_INTERNAL_POLLING_THREAD |
				    MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
				    MHD_ALLOW_SUSPEND_RESUME;
	MHD_AcceptPolicyCallback apc = c->max_conn_per_ip ? on_http_accept :
				    NULL;
	struct MHD_OptionItem	 tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, h->h_tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, h->h_tls_key },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0, c->tls_priority },
		{ MHD_OPTION_END, 0, NULL }
	};

	return MHD_start_daemon(flags | (h->h_tls_cert ? MHD_USE_TLS : 0), 0,
	    apc, h, on_http_request, h,
	    MHD_OPTION_ARRAY, h->h_tls_cert ? tls : &tls[3],
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
	buf_init(&b, HTTP_PEM_FILE_MAX);
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
	    errlen)) == NULL || http_conn_deadline_start(h, err, errlen) == -1)
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
	http_conn_deadline_stop(h);
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
