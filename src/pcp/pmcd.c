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
 * cache.lock guards the lookup cache and is never held across a libpcp
 * call. Lock order: never both.
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
 * Caching: names -> pmids, pmids -> descriptors and names, help texts and
 * merged labels are kept for PMCD_CACHE_MS (unknown names for
 * PMCD_NEGCACHE_MS); instances and values are never cached.
 *
 * Domain 151 is bpftraced's own: names below "bpftrace" and pmids or
 * indoms of domain 151 never go to pmcd, and pmcd answers in domain 151
 * (a pmcd that runs bpftraced's PMDA) are ignored, so there is no loop.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bt_limits.h"
#include "log.h"
#include "pcp.h"
#include "pcplib.h"
#include "registry.h"
#include "spawnenv.h"
#include "util.h"

#define PMCD_POOL		4
#define PMCD_BACKOFF_MIN_MS	1000
#define PMCD_BACKOFF_MAX_MS	5000
#define PMCD_RECHECK_MS		30000	/* default mode, pmcd not found */
#define PMCD_CACHE_MS		10000
#define PMCD_NEGCACHE_MS	2000
#define PMCD_CACHE_MAX		8192
#define PMCD_CACHE_BUCKETS	1024

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

/* ---- the cache ---- */

struct centry {
	struct centry	*next;
	int64_t		 expires;
	size_t		 len;
	char		*key;
	char		*val;
};

static struct {
	pthread_mutex_t	 lock;
	struct centry	*b[PMCD_CACHE_BUCKETS];
	size_t		 n;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static unsigned
khash(const char *k)
{
	unsigned	 h = 2166136261u;

	while (*k)
		h = (h ^ (unsigned char)*k++) * 16777619u;
	return h % PMCD_CACHE_BUCKETS;
}

static void
cache_flush_locked(void)
{
	for (size_t i = 0; i < PMCD_CACHE_BUCKETS; i++)
		while (cache.b[i]) {
			struct centry	*e = cache.b[i];

			cache.b[i] = e->next;
			free(e->key);
			free(e->val);
			free(e);
		}
	cache.n = 0;
}

static void
cache_flush(void)
{
	pthread_mutex_lock(&cache.lock);
	cache_flush_locked();
	pthread_mutex_unlock(&cache.lock);
}

/* a copy of the cached value (NUL-terminated), or NULL */
static char *
cache_get(const char *key, size_t *lenp)
{
	char		*v = NULL;
	int64_t		 now = now_mono_ms();

	pthread_mutex_lock(&cache.lock);
	for (struct centry *e = cache.b[khash(key)]; e; e = e->next)
		if (strcmp(e->key, key) == 0) {
			if (e->expires > now && (v = malloc(e->len + 1))) {
				memcpy(v, e->val, e->len);
				v[e->len] = '\0';
				if (lenp)
					*lenp = e->len;
			}
			break;
		}
	pthread_mutex_unlock(&cache.lock);
	return v;
}

static void
cache_put(const char *key, const void *val, size_t len, int64_t ttl)
{
	struct centry	*e;
	unsigned	 h = khash(key);

	pthread_mutex_lock(&cache.lock);
	if (cache.n >= PMCD_CACHE_MAX)	/* cache.n is the lock's too */
		cache_flush_locked();
	for (e = cache.b[h]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL ||
		    (e->key = strdup(key)) == NULL) {
			free(e);
			pthread_mutex_unlock(&cache.lock);
			return;
		}
		e->next = cache.b[h];
		cache.b[h] = e;
		cache.n++;
	}
	free(e->val);
	if ((e->val = malloc(len + 1)) != NULL) {
		memcpy(e->val, val, len);
		e->val[len] = '\0';
	}
	e->len = e->val ? len : 0;
	e->expires = e->val ? now_mono_ms() + ttl : 0;
	pthread_mutex_unlock(&cache.lock);
}

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
		cache_flush();
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

typedef int (*op_fn)(void *);

/*
 * Run op on a pooled context: its result, or PMCD_ECONN with the text
 * pmproxy answers. A dead connection is reconnected and op retried once
 * (a pmcd restart goes unnoticed); a request whose retry kills the fresh
 * connection too answers "IPC protocol failure" alone: its slot
 * reconnects on its next use, the pool does not back off.
 */
static int
run(op_fn op, void *arg)
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
	cache_flush();
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
	if (now_mono_ms() >= next && run(op_nothing, NULL) == 0 &&
	    atomic_load(&pool.up))
		return PMCD_UP;
	return cfg == CFG_AUTO && !found ? PMCD_NONE : PMCD_DOWN;
}

/* ---- names never asked of pmcd ---- */

int
pmcd_owned_name(const char *name)
{
	return strcmp(name, "bpftrace") == 0 ||
	    strncmp(name, "bpftrace.", 9) == 0;
}

/*
 * A name (or, with root set, a prefix where "" is the root) worth asking
 * pmcd about. libpcp refuses an empty name with PM_ERR_IPC, and pmcd
 * drops the connection on a request PDU past its size limit (a name of
 * 64 KiB); names with empty components or control characters are never
 * in a PMNS (pmcd answers them PM_ERR_NAME): all are answered here, as
 * pmcd would, without a round trip.
 */
int
pmcd_name_ok(const char *name, int root)
{
	size_t	 len = strlen(name);

	if (len == 0)
		return root;
	if (len > PMCD_NAME_MAX || name[0] == '.' || name[len - 1] == '.' ||
	    strstr(name, "..") != NULL)
		return 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* ---- lookups ---- */

struct op_name {
	const char	*name;
	pmID		 pmid;
	pmDesc		 desc;
};

static int
op_lookup_name(void *arg)
{
	struct op_name	*o = arg;
	int		 rc;

	if ((rc = pmLookupName(1, &o->name, &o->pmid)) < 0)
		return rc;
	if (o->pmid == PM_ID_NULL)
		return PM_ERR_NAME;
	return pmLookupDesc(o->pmid, &o->desc);
}

/* name -> pmid and descriptor: 0, PM_ERR_NAME (or another), PMCD_ECONN */
int
pmcd_lookup(const char *name, pmID *pmid, pmDesc *desc)
{
	struct op_name	 o = { .name = name };
	char		 key[PMCD_NAME_MAX + 8], *v;
	size_t		 len;
	int		 rc;

	if (pmcd_owned_name(name) || !pmcd_name_ok(name, 0))
		return PM_ERR_NAME;
	snprintf(key, sizeof(key), "n:%s", name);
	if ((v = cache_get(key, &len)) != NULL) {
		if (len == sizeof(int)) {
			memcpy(&rc, v, sizeof(rc));
			free(v);
			return rc;
		}
		if (len == sizeof(pmDesc)) {
			memcpy(desc, v, sizeof(*desc));
			*pmid = desc->pmid;
			free(v);
			return 0;
		}
		free(v);
	}
	rc = run(op_lookup_name, &o);
	if (rc == 0 && pmID_domain(o.pmid) == BT_DOMAIN)
		rc = PM_ERR_NAME;	/* our own PMDA, seen through pmcd */
	if (rc == PMCD_ECONN)
		return rc;
	if (rc < 0) {
		cache_put(key, &rc, sizeof(rc), PMCD_NEGCACHE_MS);
		return rc;
	}
	cache_put(key, &o.desc, sizeof(o.desc), PMCD_CACHE_MS);
	*pmid = o.pmid;
	*desc = o.desc;
	return 0;
}

struct op_id {
	pmID	 pmid;
	char	*name;
};

static int
op_name_id(void *arg)
{
	struct op_id	*o = arg;

	return pmNameID(o->pmid, &o->name);
}

/* pmid -> name (malloc'd) and descriptor */
int
pmcd_lookup_pmid(pmID pmid, char **namep, pmDesc *desc)
{
	struct op_id	 o = { .pmid = pmid };
	char		 key[64];
	int		 rc;

	if (pmID_domain(pmid) == BT_DOMAIN || pmID_domain(pmid) ==
	    DERIVE_DOMAIN)
		return PM_ERR_PMID;
	snprintf(key, sizeof(key), "i:%u", (unsigned)pmid);
	if ((*namep = cache_get(key, NULL)) == NULL) {
		if ((rc = run(op_name_id, &o)) < 0)
			return rc;
		cache_put(key, o.name, strlen(o.name), PMCD_CACHE_MS);
		*namep = o.name;
	}
	if ((rc = pmcd_lookup(*namep, &pmid, desc)) < 0) {
		free(*namep);
		*namep = NULL;
	}
	return rc;
}

struct op_text {
	int	 indom;
	unsigned id;
	int	 level;
	char	*text;
};

static int
op_text(void *arg)
{
	struct op_text	*o = arg;

	return o->indom ? pmLookupInDomText(o->id, o->level, &o->text) :
	    pmLookupText(o->id, o->level, &o->text);
}

/* one-line or help text of a pmid or indom; "" when there is none */
char *
pmcd_text(int indom, unsigned id, int help)
{
	struct op_text	 o = { indom, id, help ? PM_TEXT_HELP : PM_TEXT_ONELINE,
			    NULL };
	char		 key[64], *v;

	snprintf(key, sizeof(key), "t:%d:%u:%d", indom, id, help);
	if ((v = cache_get(key, NULL)) != NULL)
		return v;
	if (run(op_text, &o) < 0 || o.text == NULL)
		return strdup("");
	cache_put(key, o.text, strlen(o.text), PMCD_CACHE_MS);
	return o.text;
}

/* ---- labels, merged the way pmproxy shows them ---- */

#define LS_MAX	8

struct op_labels {
	int		 kind;		/* PMCD_LABELS_* */
	pmID		 pmid;
	pmInDom		 indom;
	char		*json;
	/* instances */
	int		 ninst;
	pmLabelSet	*inst;
	pmLabelSet	*base[LS_MAX];
	int		 nbase[LS_MAX];
	int		 nsets;
};

static void
labels_free(struct op_labels *o)
{
	for (int i = 0; i < o->nsets; i++)
		if (o->base[i])
			pmFreeLabelSets(o->base[i], o->nbase[i]);
	if (o->inst)
		pmFreeLabelSets(o->inst, o->ninst);
	o->nsets = 0;
	o->inst = NULL;
}

/* note labels (optional, e.g. sample's "changed") are left out */
static int
no_notes(const pmLabel *label, const char *json, void *arg)
{
	(void)json;
	(void)arg;
	return (label->flags & PM_LABEL_OPTIONAL) == 0;
}

static int
merge(pmLabelSet **sets, int n, char **out)
{
	char	 buf[PM_MAXLABELJSONLEN];
	int	 rc;

	if ((rc = pmMergeLabelSets(sets, n, buf, sizeof(buf), no_notes,
	    NULL)) < 0)
		return rc;
	if ((*out = strdup(rc > 0 ? buf : "{}")) == NULL)
		return -ENOMEM;
	return 0;
}

static int
op_labels(void *arg)
{
	struct op_labels	*o = arg;
	pmLabelSet		*sets[LS_MAX];
	int			 rc, n = 0;

	labels_free(o);
#define ADD(call) do { \
		if ((rc = (call)) < 0 && pmcd_conn_error(rc)) \
			return rc; \
		o->nbase[o->nsets] = rc > 0 ? rc : 0; \
		o->nsets++; \
	} while (0)
	ADD(pmGetContextLabels(&o->base[o->nsets]));
	if (o->kind == PMCD_LABELS_CONTEXT)
		goto merged;
	ADD(pmGetDomainLabels(o->kind == PMCD_LABELS_METRIC ?
	    (int)pmID_domain(o->pmid) : (int)pmInDom_domain(o->indom),
	    &o->base[o->nsets]));
	if (o->kind != PMCD_LABELS_INSTANCES && o->indom != PM_INDOM_NULL)
		ADD(pmGetInDomLabels(o->indom, &o->base[o->nsets]));
	if (o->kind == PMCD_LABELS_METRIC) {
		ADD(pmGetClusterLabels(o->pmid, &o->base[o->nsets]));
		ADD(pmGetItemLabels(o->pmid, &o->base[o->nsets]));
	}
#undef ADD
	if (o->kind == PMCD_LABELS_INSTANCES)
		return 0;	/* the caller merges per instance */
merged:
	for (int i = 0; i < o->nsets; i++)
		if (o->nbase[i] > 0 && o->base[i])
			sets[n++] = o->base[i];
	return merge(sets, n, &o->json);
}

/* the merged labels of a metric or an indom, as a JSON object text */
char *
pmcd_labels(int kind, pmID pmid, pmInDom indom)
{
	struct op_labels	 o = { .kind = kind, .pmid = pmid,
				    .indom = indom };
	char			 key[64];
	char			*v;

	snprintf(key, sizeof(key), "l:%d:%u:%u", kind, (unsigned)pmid,
	    (unsigned)indom);
	if ((v = cache_get(key, NULL)) != NULL)
		return v;
	if (run(op_labels, &o) < 0 || o.json == NULL) {
		labels_free(&o);
		return strdup("{}");
	}
	labels_free(&o);
	cache_put(key, o.json, strlen(o.json), PMCD_CACHE_MS);
	return o.json;
}

/* ---- labels level by level, unmerged (pmproxy's /metrics) ---- */

#define LV_CONTEXT	0
#define LV_INDOM	1
#define LV_ITEM		2

struct op_level {
	int		 level;		/* LV_* */
	pmID		 pmid;
	pmInDom		 indom;
	char		*json;
};

/* one label set as its JSON object text ("{}" without labels) */
static char *
set_json(const pmLabelSet *ls, int n)
{
	if (n <= 0 || ls == NULL || ls->nlabels <= 0 || ls->json == NULL)
		return strdup("{}");
	return strndup(ls->json, (size_t)ls->jsonlen);
}

static int
op_level(void *arg)
{
	struct op_level	*o = arg;
	pmLabelSet	*ls = NULL;
	int		 rc;

	switch (o->level) {
	case LV_CONTEXT: rc = pmGetContextLabels(&ls); break;
	case LV_INDOM:	 rc = pmGetInDomLabels(o->indom, &ls); break;
	default:	 rc = pmGetItemLabels(o->pmid, &ls); break;
	}
	if (rc < 0 && pmcd_conn_error(rc))
		return rc;
	o->json = set_json(ls, rc);
	if (ls)
		pmFreeLabelSets(ls, rc);
	return o->json ? 0 : -ENOMEM;
}

/* one level's set (cached), or NULL with *rc PMCD_ECONN or -ENOMEM */
static char *
level_json(int level, pmID pmid, pmInDom indom, int *rc)
{
	struct op_level	 o = { .level = level, .pmid = pmid, .indom = indom };
	char		 key[64], *v;

	snprintf(key, sizeof(key), "v:%d:%u:%u", level, (unsigned)pmid,
	    (unsigned)indom);
	if ((v = cache_get(key, NULL)) != NULL)
		return v;
	if ((*rc = run(op_level, &o)) < 0 || o.json == NULL) {
		free(o.json);
		*rc = *rc == PMCD_ECONN ? PMCD_ECONN : -ENOMEM;
		return NULL;
	}
	cache_put(key, o.json, strlen(o.json), PMCD_CACHE_MS);
	return o.json;
}

struct op_instlabels {
	pmInDom		 indom;
	pmLabelSet	*sets;
	int		 n;
};

static int
op_instlabels(void *arg)
{
	struct op_instlabels	*o = arg;
	int			 rc;

	rc = pmGetInstancesLabels(o->indom, &o->sets);
	if (rc < 0 && pmcd_conn_error(rc))
		return rc;
	o->n = rc > 0 ? rc : 0;
	return 0;
}

void
pmcd_levels_free(struct pmcd_levels *lv)
{
	free(lv->context);
	free(lv->indom);
	free(lv->item);
	for (int i = 0; lv->inst && i < lv->ninst; i++)
		free(lv->inst[i]);
	free(lv->inst);
	free(lv->inst_ids);
	memset(lv, 0, sizeof(*lv));
}

/*
 * A metric's label sets as pmproxy's /metrics sees them: the context's,
 * the indom's, the item's (note labels too) and each instance's own;
 * not the agent's (domain) or the cluster's, which pmproxy's scrape
 * context has not loaded. 0, PMCD_ECONN or -ENOMEM.
 */
int
pmcd_label_levels(pmID pmid, pmInDom indom, struct pmcd_levels *lv)
{
	struct op_instlabels	 oi = { .indom = indom };
	int			 rc = -ENOMEM;

	memset(lv, 0, sizeof(*lv));
	if ((lv->context = level_json(LV_CONTEXT, PM_ID_NULL,
	    PM_INDOM_NULL, &rc)) == NULL ||
	    (lv->item = level_json(LV_ITEM, pmid, PM_INDOM_NULL, &rc)) ==
	    NULL)
		goto fail;
	if (indom == PM_INDOM_NULL)
		return 0;
	if ((lv->indom = level_json(LV_INDOM, PM_ID_NULL, indom, &rc)) ==
	    NULL)
		goto fail;
	if ((rc = run(op_instlabels, &oi)) < 0) {
		rc = rc == PMCD_ECONN ? PMCD_ECONN : -ENOMEM;
		goto fail;
	}
	rc = -ENOMEM;
	if ((lv->inst = calloc((size_t)oi.n + 1, sizeof(char *))) == NULL ||
	    (lv->inst_ids = calloc((size_t)oi.n + 1, sizeof(int))) == NULL)
		goto fail;
	for (int i = 0; i < oi.n; i++, lv->ninst++) {
		lv->inst_ids[i] = oi.sets[i].inst;
		if ((lv->inst[i] = set_json(&oi.sets[i], 1)) == NULL)
			goto fail;
	}
	pmFreeLabelSets(oi.sets, oi.n);
	return 0;
fail:
	if (oi.sets)
		pmFreeLabelSets(oi.sets, oi.n);
	pmcd_levels_free(lv);
	return rc;
}

/* ---- instance domains ---- */

struct op_indom {
	pmInDom	 indom;
	int	 n;
	int	*ids;
	char	**names;
};

static int
op_indom(void *arg)
{
	struct op_indom	*o = arg;

	return o->n = pmGetInDom(o->indom, &o->ids, &o->names);
}

void
pmcd_indom_free(struct pmcd_indom *pi)
{
	for (int i = 0; pi->pi_labels && i < pi->pi_n; i++)
		free(pi->pi_labels[i]);
	free(pi->pi_labels);
	free(pi->pi_ids);
	free(pi->pi_names);
	memset(pi, 0, sizeof(*pi));
}

/*
 * The instances of indom, with each one's labels when labels is set:
 * the context's and the agent's merged, which is what pmproxy 6.0.3
 * lists for every instance (it leaves the instance's own labels out).
 */
int
pmcd_indom(pmInDom indom, struct pmcd_indom *pi, int labels)
{
	struct op_indom		 o = { .indom = indom };
	struct op_labels	 ol = { .kind = PMCD_LABELS_INSTANCES,
				    .indom = indom };
	int			 rc;

	memset(pi, 0, sizeof(*pi));
	if (pmInDom_domain(indom) == BT_DOMAIN)
		return PM_ERR_INDOM;
	if ((rc = run(op_indom, &o)) < 0)
		return rc;
	pi->pi_n = o.n;
	pi->pi_ids = o.ids;
	pi->pi_names = o.names;
	if (!labels)
		return 0;
	if ((pi->pi_labels = calloc((size_t)o.n + 1, sizeof(char *))) == NULL)
		return -ENOMEM;
	if (run(op_labels, &ol) < 0)
		labels_free(&ol);
	for (int i = 0; i < o.n; i++) {
		pmLabelSet	*sets[LS_MAX + 1];
		int		 n = 0;

		for (int k = 0; k < ol.nsets; k++)
			if (ol.nbase[k] > 0 && ol.base[k])
				sets[n++] = ol.base[k];
		if (merge(sets, n, &pi->pi_labels[i]) < 0)
			pi->pi_labels[i] = NULL;
	}
	labels_free(&ol);
	return 0;
}

/* ---- the namespace ---- */

struct op_children {
	const char	*prefix;
	char		**names;
	int		*status;
};

static int
op_children(void *arg)
{
	struct op_children	*o = arg;

	return pmGetChildrenStatus(o->prefix, &o->names, &o->status);
}

/*
 * The children of prefix: their count (names/status arrays to free()),
 * PM_ERR_NAME or PMCD_ECONN. bpftraced's own root is left out.
 */
int
pmcd_children(const char *prefix, char ***names, int **status)
{
	struct op_children	 o = { .prefix = prefix };
	int			 n, k = 0;

	*names = NULL;
	*status = NULL;
	if (pmcd_owned_name(prefix) || !pmcd_name_ok(prefix, 1))
		return PM_ERR_NAME;
	if ((n = run(op_children, &o)) <= 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (*prefix == '\0' && strcmp(o.names[i], "bpftrace") == 0)
			continue;
		o.names[k] = o.names[i];	/* pointers into one block */
		o.status[k++] = o.status[i];
	}
	*names = o.names;
	*status = o.status;
	return k;
}

struct op_trav {
	const char	*prefix;
	char		**v;
	size_t		 n, cap;
	int		 oom;
};

static void
trav_cb(const char *name, void *arg)
{
	struct op_trav	*o = arg;
	char		**nv;

	if (o->oom || pmcd_owned_name(name))
		return;
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		if ((nv = realloc(o->v, o->cap * sizeof(*nv))) == NULL) {
			o->oom = 1;
			return;
		}
		o->v = nv;
	}
	if ((o->v[o->n] = strdup(name)) == NULL)
		o->oom = 1;
	else
		o->n++;
}

static int
op_traverse(void *arg)
{
	struct op_trav	*o = arg;

	for (size_t i = 0; i < o->n; i++)
		free(o->v[i]);
	o->n = 0;
	return pmTraversePMNS_r(o->prefix, trav_cb, o);
}

void
pmcd_names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* every leaf at or below prefix: 0, PM_ERR_NAME or PMCD_ECONN */
int
pmcd_traverse(const char *prefix, char ***names, size_t *np)
{
	struct op_trav	 o = { .prefix = prefix };
	int		 rc;

	*names = NULL;
	*np = 0;
	if (pmcd_owned_name(prefix) || !pmcd_name_ok(prefix, 1))
		return PM_ERR_NAME;
	rc = run(op_traverse, &o);
	if (rc >= 0 && o.oom)
		rc = -ENOMEM;
	if (rc < 0) {
		pmcd_names_free(o.v, o.n);
		return rc;
	}
	if (o.n == 0) {
		free(o.v);
		return PM_ERR_NAME;
	}
	*names = o.v;
	*np = o.n;
	return 0;
}

/* ---- values ---- */

struct op_fetch {
	int		 n;
	pmID		*pmids;
	pmResult	*res;
};

static int
op_fetch(void *arg)
{
	struct op_fetch	*o = arg;

	return pmFetch(o->n, o->pmids, &o->res);
}

/* one pmFetch of n pmids; the result is the caller's (pmFreeResult) */
int
pmcd_fetch(int n, pmID *pmids, pmResult **res)
{
	struct op_fetch	 o = { n, pmids, NULL };
	int		 rc;

	*res = NULL;
	if ((rc = run(op_fetch, &o)) < 0)
		return rc;
	*res = o.res;
	return 0;
}

/* ---- names of one pmid ---- */

struct op_all {
	pmID	 pmid;
	char	**names;
};

static int
op_name_all(void *arg)
{
	struct op_all	*o = arg;

	return pmNameAll(o->pmid, &o->names);
}

/*
 * Every name of a pmid, in pmcd's order (pmproxy lists a fetched pmid
 * once per name): their count and one malloc'd block (free() it), or
 * an error. Cached as the names joined by NUL bytes.
 */
int
pmcd_names_of(pmID pmid, char ***namesp)
{
	struct op_all	 o = { .pmid = pmid };
	char		 key[64], *v, **out, *p;
	size_t		 len = 0, tot;
	int		 n = 0, rc;

	*namesp = NULL;
	snprintf(key, sizeof(key), "a:%u", (unsigned)pmid);
	if ((v = cache_get(key, &len)) == NULL) {
		if ((rc = run(op_name_all, &o)) <= 0)
			return rc < 0 ? rc : PM_ERR_PMID;
		for (int i = 0; i < rc; i++)
			len += strlen(o.names[i]) + 1;
		if ((v = malloc(len + 1)) == NULL) {
			free(o.names);
			return -ENOMEM;
		}
		for (int i = 0, at = 0; i < rc; i++)
			at += snprintf(v + at, len + 1 - (size_t)at, "%s",
			    o.names[i]) + 1;	/* past its NUL */
		free(o.names);
		cache_put(key, v, len, PMCD_CACHE_MS);
	}
	for (size_t i = 0; i < len; i++)
		n += v[i] == '\0';
	tot = (size_t)(n + 1) * sizeof(char *) + len;
	if ((out = malloc(tot)) == NULL) {
		free(v);
		return -ENOMEM;
	}
	p = (char *)(out + n + 1);
	memcpy(p, v, len);
	free(v);
	for (int i = 0; i < n; i++) {
		out[i] = p;
		p += strlen(p) + 1;
	}
	out[n] = NULL;
	*namesp = out;
	return n;
}

/* ---- stores ---- */

struct op_store {
	pmResult	*res;
};

static int
op_store(void *arg)
{
	struct op_store	*o = arg;

	return pmStore(o->res);
}

/* text -> the atom of type; 0 or -1 (not a value of that type) */
static int
parse_atom(int type, const char *text, pmAtomValue *av)
{
	const char	*errstr = NULL;
	double		 d;
	char		*end;

	switch (type) {
	case PM_TYPE_32:
		av->l = (int32_t)strtonum_ll(text, INT32_MIN, INT32_MAX, &errstr);
		break;
	case PM_TYPE_U32:
		av->ul = (uint32_t)strtonum_ll(text, 0, UINT32_MAX, &errstr);
		break;
	case PM_TYPE_64:
		av->ll = strtonum_ll(text, INT64_MIN, INT64_MAX, &errstr);
		break;
	case PM_TYPE_U64:
		av->ull = (uint64_t)strtonum_ll(text, 0, INT64_MAX, &errstr);
		break;
	case PM_TYPE_FLOAT:
	case PM_TYPE_DOUBLE:
		errno = 0;
		d = strtod(text, &end);
		if (*text == '\0' || *end != '\0' || errno != 0)
			return -1;
		if (type == PM_TYPE_FLOAT)
			av->f = (float)d;
		else
			av->d = d;
		break;
	default:
		return -1;
	}
	return errstr == NULL ? 0 : -1;
}

/*
 * Store value (len bytes, no NUL) into the pmcd metric desc through
 * pmcd, as one pmStore of ninst values (the same value for each of the
 * instances insts; ninst 0: one value for PM_IN_NULL, as pmproxy sends
 * for a singular metric or when no instance is named): 0, PM_ERR_TYPE
 * (not a value of its type), another PCP error (pmcd's or the agent's
 * refusal, in err), or PMCD_ECONN.
 */
int
pmcd_store(const pmDesc *desc, const int *insts, size_t ninst,
    const char *value, size_t len, char *err, size_t errlen)
{
	struct op_store	 o;
	pmResult	*res = NULL;
	pmValueSet	*vs = NULL;
	pmValueBlock	*vb = NULL;
	pmAtomValue	 av;
	char		*text = NULL;
	size_t		 size, n = ninst ? ninst : 1;
	const void	*src;
	int		 rc;

	if ((text = strndup(value, len)) == NULL)
		return -ENOMEM;
	memset(&av, 0, sizeof(av));
	if (desc->type != PM_TYPE_STRING && parse_atom(desc->type, text,
	    &av) == -1) {
		rc = PM_ERR_TYPE;
		goto fail;
	}
	if ((res = calloc(1, sizeof(*res))) == NULL ||
	    (vs = calloc(1, sizeof(pmValueSet) + (n - 1) *
	    sizeof(pmValue))) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	res->numpmid = 1;
	res->vset[0] = vs;
	vs->pmid = desc->pmid;
	vs->numval = (int)n;
	if (desc->type == PM_TYPE_32 || desc->type == PM_TYPE_U32) {
		vs->valfmt = PM_VAL_INSITU;
		for (size_t i = 0; i < n; i++)
			vs->vlist[i].value.lval = desc->type == PM_TYPE_32 ?
			    av.l : (int)av.ul;
	} else {
		switch (desc->type) {
		case PM_TYPE_STRING:	src = text; size = len + 1; break;
		case PM_TYPE_FLOAT:	src = &av.f; size = sizeof(av.f); break;
		case PM_TYPE_DOUBLE:	src = &av.d; size = sizeof(av.d); break;
		default:		src = &av.ll; size = sizeof(av.ll); break;
		}
		if ((vb = calloc(1, PM_VAL_HDR_SIZE + size + 8)) == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		vb->vtype = (unsigned)desc->type;
		vb->vlen = (unsigned)(PM_VAL_HDR_SIZE + size);
		memcpy(vb->vbuf, src, size);
		vs->valfmt = PM_VAL_DPTR;
		/* one block for every instance: pmStore only reads it */
		for (size_t i = 0; i < n; i++)
			vs->vlist[i].value.pval = vb;
	}
	for (size_t i = 0; i < n; i++)
		vs->vlist[i].inst = ninst ? insts[i] : (int)PM_IN_NULL;
	o.res = res;
	if ((rc = run(op_store, &o)) < 0 && rc != PMCD_ECONN)
		pmErrStr_r(rc, err, (int)errlen);
fail:
	free(vb);
	free(vs);
	free(res);
	free(text);
	return rc < 0 ? rc : 0;
}
