/* SPDX-License-Identifier: MIT */
/*
 * http_conn.c - the open connections: how many each client address has
 * (--max-connections-per-ip, refused at accept), each one's charge to
 * --max-memory while it is open, and the request deadline
 * (--request-timeout) that a thread of its own enforces on them. http.c
 * hands libmicrohttpd the callbacks here; http_request.c marks a
 * request's start (http_conn_request). Calls no other file of src/http/.
 *
 * Threads and locks: libmicrohttpd's threads run the accept and
 * connection callbacks; the per-address table is guarded by ip_lock, the
 * connection list by conn_lock (never both at once). The deadline thread
 * holds conn_lock while it scans and changes hc_state only by
 * compare-and-swap (see struct hconn in http_int.h); dl_lock guards its
 * stop flag.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "daemon.h"
#include "http_int.h"
#include "log.h"
#include "memcap.h"
#include "util.h"

/* --- connections per address (--max-connections-per-ip) --- */

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

/* 16 bytes naming the client (see ip_key); all zero when unknown */
void
http_conn_key(struct MHD_Connection *conn, uint8_t key[16])
{
	const union MHD_ConnectionInfo	*ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL ||
	    !ip_key(ci->client_addr, key))
		memset(key, 0, 16);
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

MHD_RESULT
on_http_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct httpd	*h = cls;

	(void)len;
	return ip_count(h, sa, 0) < h->h_ds->cfg.max_conn_per_ip ? MHD_YES :
	    MHD_NO;
}

/* --- the connection list and its charge to --max-memory --- */

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
	atomic_init(&hc->hc_state, HC_WORD(now_mono_ms(), HC_WAIT));
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

void
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

/* A request began on hc: its deadline runs from its first byte. */
void
http_conn_request(struct hconn *hc)
{
	uint64_t	 v = atomic_load(&hc->hc_state);

	/* HC_REQ: the deadline thread saw its first bytes already */
	while (HC_PHASE(v) != HC_REQ && HC_PHASE(v) != HC_CUT &&
	    !atomic_compare_exchange_weak(&hc->hc_state, &v,
	    HC_WORD(now_mono_ms(), HC_REQ)))
		;
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
	long long	 now = now_mono_ms(), rx;
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

int
http_conn_deadline_start(struct httpd *h, char *err, size_t errlen)
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

void
http_conn_deadline_stop(struct httpd *h)
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
