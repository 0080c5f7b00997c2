/* SPDX-License-Identifier: MIT */
/*
 * pmcd.c - passthrough to a pmcd (--pmcd HOST): the metrics bpftraced
 * does not own are read from pmcd through a small pool of libpcp host
 * contexts, so one bpftraced shows the whole host next to bpftrace.*.
 *
 * Locks. libpcp (6.x) is thread-safe, keeps the "current context" per
 * thread and locks each context internally; still, two threads must not
 * interleave PDUs on one context, so a context is used by one thread at
 * a time. pool.lock guards the slot table (busy flags, broken flags,
 * backoff, the mode); a thread takes a free slot under it (waiting on
 * pool.cv when all PMCD_POOL slots are busy), drops the lock, calls
 * pmUseContext() and libpcp for as long as it holds the slot, then gives
 * it back under the lock. No libpcp call is made with pool.lock held,
 * except pmNewContext/pmReconnectContext, made with only the slot held.
 * cache.lock (pmcd_cache.c) guards the lookup cache and is never held
 * across a libpcp call. Lock order: never both.
 *
 * Reconnection. A call that fails with a connection error (PM_ERR_IPC,
 * a timeout, a reset) is checked with a probe on the same context: when
 * pmcd still answers, the error is that request's alone. Otherwise that
 * slot (only that one) is broken: it reconnects at once and the call is
 * retried; if the fresh connection dies too, that request answers
 * pmproxy's "IPC protocol failure" and nobody else notices. The pool
 * backs off only when a (re)connect fails: inside the backoff window a
 * broken slot answers pmproxy's "cannot reconnect context: Connection
 * timed out" (what libpcp's own reconnect backoff makes pmproxy say),
 * after it pmReconnectContext() is tried, and on failure its error
 * ("cannot reconnect context: ...") is the answer and the backoff
 * doubles (1 s up to 5 s). A slot that never connected answers
 * pmproxy's "cannot connect to PMCD: ...". A successful reconnect
 * flushes the cache (pmcd may have restarted with other agents). Inputs
 * libpcp or pmcd cannot take (an empty name, a name past PMCD_NAME_MAX,
 * a fetch of more than PMCD_FETCH_MAX pmids) never reach them.
 *
 * Modes. --pmcd off: never used. --pmcd HOST: always used; failures
 * give the texts above. Default (no flag): the local pmcd if it answers
 * at start; if it does not, bpftraced runs as with "off" and checks again
 * at most every 30 s when a request would need it; once found it is used
 * as with --pmcd localhost.
 *
 * The files: this one is the pool (acquire, release, reconnect, back off)
 * and the error text pmproxy answers; pmcd_run() runs one operation on a
 * pooled context. pmcd_names.c (names, descriptors, help text, the
 * namespace), pmcd_labels.c (labels, instance domains) and
 * pmcd_values.c (fetch, store) are the operations; pmcd_cache.c is their
 * lookup cache (names -> pmids, pmids -> descriptors and names, help
 * texts and merged labels, for PMCD_CACHE_MS; unknown names for
 * PMCD_NEGCACHE_MS; instances and values are never cached).
 *
 * Domain 151 is bpftraced's own: names below "bpftrace" and pmids or
 * indoms of domain 151 never go to pmcd, and pmcd answers in domain 151
 * (a pmcd that runs bpftraced's PMDA) are ignored, so there is no loop.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bt_limits.h"
#include "log.h"
#include "pcp.h"
#include "pcplib.h"
#include "pmcd_int.h"
#include "spawnenv.h"
#include "util.h"

#define PMCD_POOL		4
#define PMCD_BACKOFF_MIN_MS	1000
#define PMCD_BACKOFF_MAX_MS	5000
#define PMCD_RECHECK_MS		30000	/* default mode, pmcd not found */

enum { CFG_OFF, CFG_HOST, CFG_AUTO };

struct slot {
	int	 ctx;		/* libpcp handle, -1: never connected */
	int	 busy;
	int	 broken;
};

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cv;
	int		 cfg;
	int		 found;		/* CFG_AUTO: connected once */
	char		*host;
	struct slot	 s[PMCD_POOL];
	int64_t		 next_try;	/* monotonic ms */
	int		 backoff_ms;
	atomic_int	 up;
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

static _Thread_local char	 last_text[320];
static _Thread_local int	 last_code;

/* ---- the pool ---- */

int
pmcd_conn_error(int rc)
{
	return rc == PM_ERR_IPC || rc == PM_ERR_TIMEOUT ||
	    rc == PM_ERR_NOCONTEXT ||
	    rc == -ECONNREFUSED || rc == -ECONNRESET || rc == -EPIPE ||
	    rc == -ETIMEDOUT || rc == -ENOTCONN || rc == -EHOSTUNREACH ||
	    rc == -ENETUNREACH || rc == -EBADF;
}

/* last_text = prefix + pmErrStr(code), as pmproxy words it */
static int
set_error(int code, const char *prefix)
{
	char	 e[256];

	if (code == PM_ERR_NYI && !pcplib_loaded())
		snprintf(e, sizeof(e), "%s", pcplib_error());
	else
		pmErrStr_r(code, e, sizeof(e));
	snprintf(last_text, sizeof(last_text), "%s%s", prefix, e);
	last_code = code;
	return PMCD_ECONN;
}

const char *
pmcd_error_text(void)
{
	return last_text;
}

int
pmcd_error_code(void)
{
	return last_code;
}

static void
backoff_locked(void)
{
	pool.next_try = now_mono_ms() + (pool.cfg == CFG_AUTO && !pool.found ?
	    PMCD_RECHECK_MS : pool.backoff_ms);
	pool.backoff_ms = pool.backoff_ms * 2 > PMCD_BACKOFF_MAX_MS ?
	    PMCD_BACKOFF_MAX_MS : pool.backoff_ms * 2;
	atomic_store(&pool.up, 0);
}

/* set once the missing libpcp was logged: once is enough */
static atomic_int	 libpcp_warned;

/* 1 if something accepts on pmcd's TCP port ($PMCD_PORT, 44321) here */
static int
local_port_open(void)
{
	const char		*env = spawnenv_get("PMCD_PORT");
	const char		*errstr = NULL;
	struct sockaddr_in	 sa = { .sin_family = AF_INET };
	long long		 port = 44321;
	char			 first[16];
	int			 fd, ok;

	if (env != NULL && *env != '\0') {
		snprintf(first, sizeof(first), "%.*s", (int)strcspn(env, ","),
		    env);
		port = strtonum_ll(first, 1, 65535, &errstr);
		if (errstr != NULL)
			port = 44321;
	}
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/*
 * Before a first context: libpcp is loaded only when there is a pmcd to
 * talk to (the default mode: something listens on pmcd's port here;
 * --pmcd HOST: always). 0, or an error for set_error.
 */
static int
need_libpcp(void)
{
	char	 err[256];

	if (pcplib_loaded())
		return 0;
	if (pool.cfg == CFG_AUTO && !local_port_open())	/* "localhost" */
		return -ECONNREFUSED;
	if (pcplib_load(err, sizeof(err)) == 0)
		return 0;
	if (atomic_exchange(&libpcp_warned, 1) == 0)
		log_warnx("pmcd passthrough: %s (Debian: apt-get install "
		    "libpcp3)", err);
	return PM_ERR_NYI;
}

/* what a thread that has not tried yet reports while others back off */
static int
no_libpcp_code(void)
{
	return !pcplib_loaded() && pcplib_error()[0] != '\0' ? PM_ERR_NYI :
	    -ECONNREFUSED;
}

/* a slot with a usable context, current in this thread; PMCD_ECONN */
static int
acquire(struct slot **sp)
{
	struct slot	*s = NULL;
	int		 rc, isnew, flush = 0;

	pthread_mutex_lock(&pool.lock);
	if (pool.cfg == CFG_OFF) {
		pthread_mutex_unlock(&pool.lock);
		return set_error(-ECONNREFUSED, "cannot connect to PMCD: ");
	}
	for (;;) {
		/* a connected slot first: a broken one may be backing off */
		for (int i = 0; i < PMCD_POOL && s == NULL; i++)
			if (!pool.s[i].busy && pool.s[i].ctx >= 0 &&
			    !pool.s[i].broken)
				s = &pool.s[i];
		for (int i = 0; i < PMCD_POOL && s == NULL; i++)
			if (!pool.s[i].busy)
				s = &pool.s[i];
		if (s)
			break;
		pthread_cond_wait(&pool.cv, &pool.lock);
	}
	s->busy = 1;
	if (s->ctx >= 0 && !s->broken) {
		pthread_mutex_unlock(&pool.lock);
		goto use;
	}
	isnew = s->ctx < 0;
	if (now_mono_ms() < pool.next_try) {
		s->busy = 0;
		pthread_cond_signal(&pool.cv);
		pthread_mutex_unlock(&pool.lock);
		return isnew ? set_error(last_code ? last_code :
		    no_libpcp_code(), "cannot connect to PMCD: ") :
		    set_error(-ETIMEDOUT, "cannot reconnect context: ");
	}
	pthread_mutex_unlock(&pool.lock);
	if ((rc = isnew ? need_libpcp() : 0) == 0)
		rc = isnew ? pmNewContext(PM_CONTEXT_HOST, pool.host) :
		    pmReconnectContext(s->ctx);
	pthread_mutex_lock(&pool.lock);
	if (rc < 0) {
		backoff_locked();
		s->busy = 0;
		pthread_cond_signal(&pool.cv);
		pthread_mutex_unlock(&pool.lock);
		return set_error(rc, isnew ? "cannot connect to PMCD: " :
		    "cannot reconnect context: ");
	}
	if (isnew)
		s->ctx = rc;
	else
		flush = 1;
	s->broken = 0;
	pool.found = 1;
	pool.next_try = 0;
	pool.backoff_ms = PMCD_BACKOFF_MIN_MS;
	atomic_store(&pool.up, 1);
	pthread_mutex_unlock(&pool.lock);
	if (flush) {
		pmcd_cache_flush();
		log_info("pmcd %s: reconnected", pool.host);
	}
use:
	if ((rc = pmUseContext(s->ctx)) < 0) {
		pthread_mutex_lock(&pool.lock);
		s->broken = 1;
		s->busy = 0;
		pthread_cond_signal(&pool.cv);
		pthread_mutex_unlock(&pool.lock);
		return set_error(rc, "cannot reconnect context: ");
	}
	*sp = s;
	return 0;
}

/*
 * One request must never take the pool down for the others. A use that
 * failed with a connection error is checked with a cheap probe on the
 * same context: when pmcd still answers, the error was this request's
 * own (libpcp refuses some inputs with PM_ERR_IPC without sending them)
 * and the slot stays as it is. Only a dead connection breaks the slot,
 * and only that slot: the others find out for themselves on their next
 * use (a pmcd restart costs each one retried call, no failed request).
 * The pool backs off only when a (re)connect fails (acquire()), never
 * because of what a request asked.
 */
static int
op_probe(void)
{
	const char	*name = "pmcd.numagents";
	pmID		 pmid;

	return pmLookupName(1, &name, &pmid);
}

static int
conn_dead(int rc)
{
	if (!pmcd_conn_error(rc))
		return 0;
	if (rc == PM_ERR_TIMEOUT || rc == -ETIMEDOUT)
		return 1;	/* a hung pmcd: no second wait */
	return pmcd_conn_error(op_probe());
}

/* give the slot back; dead: its connection is gone */
static void
release(struct slot *s, int dead)
{
	pthread_mutex_lock(&pool.lock);
	if (dead) {
		log_warnx("pmcd %s: connection lost, reconnecting", pool.host);
		s->broken = 1;
	}
	s->busy = 0;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.lock);
}

/*
 * Run op on a pooled context: its result, or PMCD_ECONN with the text
 * pmproxy answers. A dead connection is reconnected and op retried once
 * (a pmcd restart goes unnoticed); a request whose retry kills the fresh
 * connection too answers "IPC protocol failure" alone: its slot
 * reconnects on its next use, the pool does not back off.
 */
int
pmcd_run(pmcd_op_fn op, void *arg)
{
	struct slot	*s = NULL;
	int		 rc, dead;

	for (int tries = 0; ; tries++) {
		if ((rc = acquire(&s)) != 0)
			return tries ? set_error(PM_ERR_IPC, "") : rc;
		rc = op(arg);
		dead = conn_dead(rc);
		release(s, dead);
		if (!dead)
			return rc;
		if (tries)
			return set_error(PM_ERR_IPC, "");
	}
}

static int
op_nothing(void *arg)
{
	return 0;
}

int
pmcd_init(const char *host)
{
	for (int i = 0; i < PMCD_POOL; i++)
		pool.s[i].ctx = -1;
	pool.backoff_ms = PMCD_BACKOFF_MIN_MS;
	if (host && strcmp(host, "off") == 0) {
		pool.cfg = CFG_OFF;
		log_info("pmcd passthrough off");
		return 0;
	}
	pool.cfg = host ? CFG_HOST : CFG_AUTO;
	if ((pool.host = strdup(host ? host : "localhost")) == NULL)
		return -1;
	/* libpcp's own reconnect backoff, PMCD_RECONNECT_TIMEOUT, shorter
	   than ours: spawnenv_start() set it before any thread started */
	if (pmcd_mode() == PMCD_UP)
		log_info("pmcd passthrough: %s", pool.host);
	else if (pool.cfg == CFG_AUTO)
		log_info("no pmcd answering on %s (%s): serving bpftrace metrics "
		    "only, checking again every %d s", pool.host,
		    pmcd_error_text(), PMCD_RECHECK_MS / 1000);
	else
		log_warnx("pmcd %s: %s; retrying when asked", pool.host,
		    pmcd_error_text());
	return 0;
}

void
pmcd_fini(void)
{
	pthread_mutex_lock(&pool.lock);
	for (int i = 0; i < PMCD_POOL; i++)
		if (pool.s[i].ctx >= 0 && !pool.s[i].busy) {
			pmDestroyContext(pool.s[i].ctx);
			pool.s[i].ctx = -1;
		}
	free(pool.host);
	pool.host = NULL;
	pool.cfg = CFG_OFF;
	pthread_mutex_unlock(&pool.lock);
	pmcd_cache_flush();
}

/*
 * PMCD_NONE: names bpftraced does not own are unknown (off, or the
 * default mode before a local pmcd was found, re-checked lazily);
 * PMCD_UP: pmcd answers; PMCD_DOWN: it should, but does not now. When
 * it is not up and the backoff has passed, this tries to reconnect.
 */
int
pmcd_mode(void)
{
	int		 cfg, found;
	int64_t		 next;

	pthread_mutex_lock(&pool.lock);
	cfg = pool.cfg;
	found = pool.found;
	next = pool.next_try;
	pthread_mutex_unlock(&pool.lock);
	if (cfg == CFG_OFF)
		return PMCD_NONE;
	if (atomic_load(&pool.up))
		return PMCD_UP;
	if (now_mono_ms() >= next && pmcd_run(op_nothing, NULL) == 0 &&
	    atomic_load(&pool.up))
		return PMCD_UP;
	return cfg == CFG_AUTO && !found ? PMCD_NONE : PMCD_DOWN;
}
