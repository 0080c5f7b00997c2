/* SPDX-License-Identifier: MIT */
/*
 * http_auth.c - who is asking, and from where, before any handler runs:
 * the request-origin policy (origin.c: Host, Origin, Sec-Fetch-*) and,
 * with --auth-file, the Basic credentials (auth.c), whose crypt runs on a
 * verifier thread (authq.c) while the connection waits suspended. A
 * failed login reaches the hook main passed in (ho_login_failed).
 * http_request.c calls it; it calls http_reply.c and http_conn.c.
 *
 * Threads: libmicrohttpd's workers, and authq's verifier threads for
 * on_auth_done(). The one state shared between them is the baton's
 * bt_auth_* answer, handed over as struct baton (http_int.h) says; the
 * users file is read under ds->auth_lock (auth_ref).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "auth.h"
#include "authq.h"
#include "daemon.h"
#include "http.h"
#include "http_int.h"
#include "log.h"
#include "memcap.h"
#include "origin.h"
#include "util.h"

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

/* The job's header copy and db reference, once the check is over. */
void
http_auth_job_release(struct daemon_state *ds, struct baton *bt)
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

	http_conn_key(hr->hr_conn, bt->bt_addr);
	if (authq_take_token(h->h_authq, bt->bt_addr, &retry) == -1) {
		auth_unref(db);
		http_peer(hr, peer, sizeof(peer));
		snprintf(msg, sizeof(msg), "too many failed logins from %s "
		    "(over %u a minute, --auth-fail-rate): try again in %u s",
		    peer, ds->cfg.auth_fail_rate, retry);
		*ret = http_reply_retry(hr, 429, msg, retry, 0);
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
	http_auth_job_release(ds, bt);
	authq_refund(h->h_authq, bt->bt_addr);
	if (rv == AUTHQ_STOPPING)
		snprintf(msg, sizeof(msg), "server shutting down");
	else
		snprintf(msg, sizeof(msg), "too many password checks waiting "
		    "(%u, --auth-queue): try again", ds->cfg.auth_queue);
	*ret = http_reply_retry(hr, 503, msg, 1, 0);
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
		http_auth_job_release(ds, bt);
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
int
http_auth_authenticate(struct httpd *h, struct httpreq *hr, struct baton *bt,
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
int
http_auth_check_origin(struct httpreq *hr, const char *path, int *ret)
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
