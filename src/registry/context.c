/* SPDX-License-Identifier: MIT */
/*
 * context.c - REST client contexts, as pmproxy keeps them: a random
 * 31-bit id, a polltimeout after which an unused context is forgotten, and
 * per-context instance profiles and derived metrics. Both are immutable
 * and reference counted: a change builds a new one, so a request holds
 * them without holding the table lock, and both go with their context.
 * The one mutable part, the values each rate() saw at the context's last
 * fetch (struct rhist), is copied out and replaced under the lock.
 * The table is bounded (--max-contexts, --max-contexts-per-ip): a full one
 * evicts the least recently touched context, idle before busy, of the
 * address holding the most, rather than refusing everyone; what contexts
 * hold is charged to --max-memory. Threads: HTTP workers and the main
 * loop (GC); everything below is guarded by ct_lock, held only for table
 * operations.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bt_limits.h"
#include "memcap.h"
#include "registry.h"
#include "util.h"

struct prof_indom {
	pmInDom		 pi_indom;
	int		 pi_include_all; /* 1: all but pi_list; 0: only pi_list */
	size_t		 pi_n;
	uint32_t	*pi_list;	/* sorted */
};

struct profile {
	atomic_int		 pr_refs;
	int			 pr_default;	/* untouched indoms: 1 all, 0 none */
	size_t			 pr_n;
	struct prof_indom	*pr_indoms;
};

/*
 * A context is on exactly two lists at a time: the table's idle or busy
 * list and its peer's idle or busy list (busy: a request holds it now,
 * rc_busy > 0). Each list runs from least to most recently touched, so
 * eviction takes the head: O(1), no scan of the table.
 */
#define L_TAB		0
#define L_PEER		1

/* a derived metric's rate() operands at this context's last fetch */
struct rhist {
	pmID		 rh_pmid;
	size_t		 rh_bytes;	/* charged, this included */
	struct dhist	 rh_h;
	struct rhist	*rh_next;
};

struct rctx {
	uint32_t	 rc_id;
	int64_t		 rc_timeout_ms;
	int64_t		 rc_expires;	/* monotonic ms */
	struct profile	*rc_prof;	/* NULL: everything included */
	struct dset	*rc_derived;	/* NULL: none registered */
	struct rhist	*rc_rates;	/* rate() histories */
	int		 rc_busy;	/* requests holding it now */
	size_t		 rc_bytes;	/* charged to ct_mem, all of it */
	size_t		 rc_dbytes;	/* of which derived metrics */
	size_t		 rc_rbytes;	/* of which rc_rates (derived too) */
	size_t		 rc_pbytes;	/* of which the profile */
	struct peer	*rc_peer;
	struct rctx	*rc_next;	/* hash chain */
	struct rctx	*rc_lprev[2], *rc_lnext[2];	/* L_TAB, L_PEER */
};

struct clist {
	struct rctx	*cl_head, *cl_tail;	/* head: least recent */
};

/* the contexts of one client address (an IPv6 /64 counts as one) */
struct peer {
	char		 pe_key[INET6_ADDRSTRLEN];
	size_t		 pe_count;
	size_t		 pe_bytes;	/* what its contexts hold */
	size_t		 pe_heap;	/* index in ct_heap */
	int		 pe_pinned;	/* a creation for it is under way */
	struct clist	 pe_idle, pe_busy;
	struct peer	*pe_next;	/* hash chain */
};

#define CT_BUCKETS	4096
#define CT_PEER_BUCKETS	1024
#define CT_MEM_TRIES	64	/* evictions tried to make room in memory */

struct ctxtab {
	pthread_mutex_t	 ct_lock;
	struct rctx	*ct_bucket[CT_BUCKETS];
	struct peer	*ct_peers[CT_PEER_BUCKETS];
	struct clist	 ct_idle, ct_busy;
	/* peers, a max-heap on pe_bytes: who holds the most is evicted
	   from first when the table is full */
	struct peer	**ct_heap;
	size_t		 ct_npeers, ct_heapcap;
	size_t		 ct_count;
	struct ctx_limits ct_lim;
	uint64_t	 ct_evicted;
};

struct ctxtab *
ctx_new(size_t max)
{
	struct ctx_limits	 l = { .cl_max = max, .cl_per_peer = max,
				    .cl_derived_bytes = BT_MAX_DERIVED_BYTES,
				    .cl_profile_insts = BT_MAX_PROFILE_INSTANCES };

	return ctx_new_limits(&l);
}

struct ctxtab *
ctx_new_limits(const struct ctx_limits *l)
{
	struct ctxtab	*ct;

	if ((ct = calloc(1, sizeof(*ct))) == NULL)
		return NULL;
	pthread_mutex_init(&ct->ct_lock, NULL);
	ct->ct_lim = *l;
	if (ct->ct_lim.cl_per_peer == 0 ||
	    ct->ct_lim.cl_per_peer > ct->ct_lim.cl_max)
		ct->ct_lim.cl_per_peer = ct->ct_lim.cl_max;
	return ct;
}

/* --- lists --- */

static void
cl_unlink(struct clist *l, struct rctx *c, int w)
{
	if (c->rc_lprev[w])
		c->rc_lprev[w]->rc_lnext[w] = c->rc_lnext[w];
	else
		l->cl_head = c->rc_lnext[w];
	if (c->rc_lnext[w])
		c->rc_lnext[w]->rc_lprev[w] = c->rc_lprev[w];
	else
		l->cl_tail = c->rc_lprev[w];
	c->rc_lprev[w] = c->rc_lnext[w] = NULL;
}

static void
cl_append(struct clist *l, struct rctx *c, int w)
{
	c->rc_lnext[w] = NULL;
	c->rc_lprev[w] = l->cl_tail;
	if (l->cl_tail)
		l->cl_tail->rc_lnext[w] = c;
	else
		l->cl_head = c;
	l->cl_tail = c;
}

static void
lists_unlink(struct ctxtab *ct, struct rctx *c)
{
	cl_unlink(c->rc_busy ? &ct->ct_busy : &ct->ct_idle, c, L_TAB);
	cl_unlink(c->rc_busy ? &c->rc_peer->pe_busy : &c->rc_peer->pe_idle,
	    c, L_PEER);
}

/* (re)append as the most recently touched of its state */
static void
lists_append(struct ctxtab *ct, struct rctx *c)
{
	cl_append(c->rc_busy ? &ct->ct_busy : &ct->ct_idle, c, L_TAB);
	cl_append(c->rc_busy ? &c->rc_peer->pe_busy : &c->rc_peer->pe_idle,
	    c, L_PEER);
}

/* --- peers and their heap --- */

static void
heap_swap(struct ctxtab *ct, size_t i, size_t j)
{
	struct peer	*t = ct->ct_heap[i];

	ct->ct_heap[i] = ct->ct_heap[j];
	ct->ct_heap[j] = t;
	ct->ct_heap[i]->pe_heap = i;
	ct->ct_heap[j]->pe_heap = j;
}

/* restore heap order around i after its pe_bytes changed */
static void
heap_fix(struct ctxtab *ct, size_t i)
{
	while (i > 0 && ct->ct_heap[(i - 1) / 2]->pe_bytes <
	    ct->ct_heap[i]->pe_bytes) {
		heap_swap(ct, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t	 l = 2 * i + 1, r = l + 1, m = i;

		if (l < ct->ct_npeers &&
		    ct->ct_heap[l]->pe_bytes > ct->ct_heap[m]->pe_bytes)
			m = l;
		if (r < ct->ct_npeers &&
		    ct->ct_heap[r]->pe_bytes > ct->ct_heap[m]->pe_bytes)
			m = r;
		if (m == i)
			return;
		heap_swap(ct, i, m);
		i = m;
	}
}

static size_t
peer_hash(const char *s)
{
	uint32_t	 h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h % CT_PEER_BUCKETS;
}

/*
 * The key of a client address: IPv4 as is (also when v4-mapped), IPv6
 * by its /64, as one host usually holds a whole /64.
 */
static void
peer_key(const char *addr, char *out, size_t len)
{
	struct in6_addr	 a6;

	snprintf(out, len, "%s", addr ? addr : "");
	if (addr == NULL || inet_pton(AF_INET6, addr, &a6) != 1)
		return;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		inet_ntop(AF_INET, &a6.s6_addr[12], out, (socklen_t)len);
		return;
	}
	memset(&a6.s6_addr[8], 0, 8);
	inet_ntop(AF_INET6, &a6, out, (socklen_t)len);
}

/* Find or add the peer of addr. Lock held. NULL: no memory. */
static struct peer *
peer_get_locked(struct ctxtab *ct, const char *addr)
{
	char		 key[INET6_ADDRSTRLEN];
	struct peer	*pe;
	size_t		 h;

	peer_key(addr, key, sizeof(key));
	h = peer_hash(key);
	for (pe = ct->ct_peers[h]; pe; pe = pe->pe_next)
		if (strcmp(pe->pe_key, key) == 0)
			return pe;
	if (ct->ct_npeers == ct->ct_heapcap) {
		size_t		 ncap = ct->ct_heapcap ? 2 * ct->ct_heapcap : 16;
		struct peer	**nh = realloc(ct->ct_heap,
				    ncap * sizeof(*nh));

		if (nh == NULL)
			return NULL;
		ct->ct_heap = nh;
		ct->ct_heapcap = ncap;
	}
	if (ct->ct_lim.cl_mem &&
	    memcap_try(ct->ct_lim.cl_mem, sizeof(*pe)) == -1)
		return NULL;
	if ((pe = calloc(1, sizeof(*pe))) == NULL) {
		if (ct->ct_lim.cl_mem)
			memcap_release(ct->ct_lim.cl_mem, sizeof(*pe));
		return NULL;
	}
	snprintf(pe->pe_key, sizeof(pe->pe_key), "%s", key);
	pe->pe_next = ct->ct_peers[h];
	ct->ct_peers[h] = pe;
	pe->pe_heap = ct->ct_npeers;
	ct->ct_heap[ct->ct_npeers++] = pe;
	heap_fix(ct, pe->pe_heap);
	return pe;
}

/* Forget a peer that holds no context any more. Lock held. */
static void
peer_drop_locked(struct ctxtab *ct, struct peer *pe)
{
	struct peer	**pp = &ct->ct_peers[peer_hash(pe->pe_key)];
	size_t		 i = pe->pe_heap;

	while (*pp != pe)
		pp = &(*pp)->pe_next;
	*pp = pe->pe_next;
	if (i != --ct->ct_npeers) {
		heap_swap(ct, i, ct->ct_npeers);
		heap_fix(ct, i);
	}
	free(pe);
	if (ct->ct_lim.cl_mem)
		memcap_release(ct->ct_lim.cl_mem, sizeof(*pe));
}

/* c's charge changed by delta bytes (already charged/released). */
static void
ctx_account_locked(struct ctxtab *ct, struct rctx *c, ssize_t delta)
{
	c->rc_bytes += (size_t)delta;
	c->rc_peer->pe_bytes += (size_t)delta;
	heap_fix(ct, c->rc_peer->pe_heap);
}

/* --- the table --- */

static void
ctx_uncharge(struct ctxtab *ct, size_t n)
{
	if (ct->ct_lim.cl_mem)
		memcap_release(ct->ct_lim.cl_mem, n);
}

static void
rctx_free(struct ctxtab *ct, struct rctx *c)
{
	profile_release(c->rc_prof);
	dset_release(c->rc_derived);
	while (c->rc_rates) {
		struct rhist	*r = c->rc_rates;

		c->rc_rates = r->rh_next;
		dhist_free(&r->rh_h);
		free(r);
	}
	ctx_uncharge(ct, c->rc_bytes);
	free(c);
}

/* Unlink c (*pp points at it in its chain) and free it. Lock held. */
static void
ctx_remove_locked(struct ctxtab *ct, struct rctx **pp, struct rctx *c)
{
	struct peer	*pe = c->rc_peer;

	*pp = c->rc_next;
	lists_unlink(ct, c);
	ct->ct_count--;
	pe->pe_count--;
	pe->pe_bytes -= c->rc_bytes;
	heap_fix(ct, pe->pe_heap);
	if (pe->pe_count == 0 && !pe->pe_pinned)
		peer_drop_locked(ct, pe);
	rctx_free(ct, c);
}

static struct rctx **
ctx_slot_locked(struct ctxtab *ct, uint32_t id)
{
	struct rctx	**pp = &ct->ct_bucket[id % CT_BUCKETS];

	while (*pp && (*pp)->rc_id != id)
		pp = &(*pp)->rc_next;
	return pp;
}

static void
ctx_evict_locked(struct ctxtab *ct, struct rctx *c)
{
	ctx_remove_locked(ct, ctx_slot_locked(ct, c->rc_id), c);
	ct->ct_evicted++;
}

void
ctx_free(struct ctxtab *ct)
{
	if (ct == NULL)
		return;
	for (size_t i = 0; i < CT_BUCKETS; i++)
		while (ct->ct_bucket[i])
			ctx_remove_locked(ct, &ct->ct_bucket[i],
			    ct->ct_bucket[i]);
	pthread_mutex_destroy(&ct->ct_lock);
	free(ct->ct_heap);
	free(ct);
}

/* Called with ct_lock held. Expired contexts are unlinked and freed. */
static struct rctx *
ctx_find_locked(struct ctxtab *ct, uint32_t id, int64_t now)
{
	struct rctx	**pp = ctx_slot_locked(ct, id);
	struct rctx	*c = *pp;

	if (c == NULL)
		return NULL;
	if (c->rc_expires <= now) {
		ctx_remove_locked(ct, pp, c);
		return NULL;
	}
	return c;
}

/* the least recently touched of l that is not keep */
static struct rctx *
cl_oldest(const struct clist *l, int w, const struct rctx *keep)
{
	struct rctx	*c = l->cl_head;

	if (c != NULL && c == keep)
		c = c->rc_lnext[w];
	return c;
}

/*
 * Whom to evict when the table is full: an idle context of the address
 * holding the most, else the least recently touched idle one anywhere,
 * else (busy_ok) the least recently touched one in use. Never keep.
 */
static struct rctx *
ctx_victim_locked(struct ctxtab *ct, const struct rctx *keep, int busy_ok)
{
	struct rctx	*c = NULL;

	if (ct->ct_npeers > 0)
		c = cl_oldest(&ct->ct_heap[0]->pe_idle, L_PEER, keep);
	if (c == NULL)
		c = cl_oldest(&ct->ct_idle, L_TAB, keep);
	if (c == NULL && busy_ok)
		c = cl_oldest(&ct->ct_busy, L_TAB, keep);
	return c;
}

/*
 * Charge n more bytes for context keep (NULL: a new one). When the
 * ceiling is reached, idle contexts of whoever holds the most go first,
 * a bounded number of them. 0, or -1: refused.
 */
static int
ctx_charge_locked(struct ctxtab *ct, const struct rctx *keep, size_t n)
{
	struct rctx	*v;

	if (ct->ct_lim.cl_mem == NULL)
		return 0;
	for (int i = 0; i < CT_MEM_TRIES; i++) {
		if (memcap_try(ct->ct_lim.cl_mem, n) == 0)
			return 0;
		if ((v = ctx_victim_locked(ct, keep, 0)) == NULL)
			break;
		ctx_evict_locked(ct, v);
	}
	return -1;
}

/*
 * Another holder's charge did not fit --max-memory: evict idle contexts
 * (whoever holds the most first) until want bytes are back, a bounded
 * number of them. Returns the bytes released. Takes ct_lock: memcap
 * calls it only from charges made without that lock (memcap_try below).
 */
size_t
ctx_reclaim(struct ctxtab *ct, size_t want)
{
	struct rctx	*v;
	size_t		 freed = 0;

	if (ct == NULL || ct->ct_lim.cl_mem == NULL)
		return 0;
	pthread_mutex_lock(&ct->ct_lock);
	for (int i = 0; i < CT_MEM_TRIES && freed < want; i++) {
		if ((v = ctx_victim_locked(ct, NULL, 0)) == NULL)
			break;
		freed += v->rc_bytes;
		ctx_evict_locked(ct, v);
	}
	pthread_mutex_unlock(&ct->ct_lock);
	return freed;
}

/*
 * Make room for one more context of pe: past the per-address share the
 * address's own least recently touched context goes (idle first); past
 * the table size, one chosen by ctx_victim_locked. Never refuses.
 */
static void
ctx_make_room_locked(struct ctxtab *ct, struct peer *pe)
{
	struct rctx	*v;

	if (pe->pe_count >= ct->ct_lim.cl_per_peer) {
		if ((v = pe->pe_idle.cl_head) == NULL)
			v = pe->pe_busy.cl_head;
		if (v != NULL)
			ctx_evict_locked(ct, v);
	}
	while (ct->ct_count >= ct->ct_lim.cl_max &&
	    (v = ctx_victim_locked(ct, NULL, 1)) != NULL)
		ctx_evict_locked(ct, v);
}

/* A new context for client address peer, id random in 1..INT32_MAX. */
enum ctx_result
ctx_create_for(struct ctxtab *ct, double timeout_s, const char *peer,
    uint32_t *idp)
{
	struct rctx	*c;
	struct peer	*pe;
	uint32_t	 id;
	int64_t		 now = now_mono_ms();
	int		 rc;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return CTX_FULL;
	c->rc_timeout_ms = (int64_t)(timeout_s * 1000.0);
	c->rc_expires = now + c->rc_timeout_ms;
	pthread_mutex_lock(&ct->ct_lock);
	if (ct->ct_lim.cl_max == 0 || (pe = peer_get_locked(ct, peer)) == NULL)
		goto fail;
	pe->pe_pinned = 1;	/* making room may take its last context */
	ctx_make_room_locked(ct, pe);
	rc = ctx_charge_locked(ct, NULL, sizeof(*c));
	pe->pe_pinned = 0;
	if (rc == -1) {
		if (pe->pe_count == 0)
			peer_drop_locked(ct, pe);
		pthread_mutex_unlock(&ct->ct_lock);
		free(c);
		return CTX_NOMEM;
	}
	do {
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = (uint32_t)random();
		id &= 0x7fffffff;
	} while (id == 0 || ctx_find_locked(ct, id, now) != NULL);
	c->rc_id = id;
	c->rc_peer = pe;
	c->rc_next = ct->ct_bucket[id % CT_BUCKETS];
	ct->ct_bucket[id % CT_BUCKETS] = c;
	ct->ct_count++;
	pe->pe_count++;
	lists_append(ct, c);
	ctx_account_locked(ct, c, (ssize_t)sizeof(*c));
	pthread_mutex_unlock(&ct->ct_lock);
	*idp = id;
	return CTX_OK;
fail:
	pthread_mutex_unlock(&ct->ct_lock);
	free(c);
	return CTX_FULL;
}

enum ctx_result
ctx_create(struct ctxtab *ct, double timeout_s, uint32_t *idp)
{
	return ctx_create_for(ct, timeout_s, NULL, idp);
}

/*
 * Use a context: re-arms its timer and marks it busy until ctx_done();
 * busy contexts are evicted last. If profp is set, *profp gets a
 * reference to its profile (or NULL); if dsetp is set, *dsetp gets one to
 * its derived metrics (or NULL). The caller releases them.
 */
enum ctx_result
ctx_use(struct ctxtab *ct, uint32_t id, struct profile **profp,
    struct dset **dsetp)
{
	struct rctx	*c;
	int64_t		 now = now_mono_ms();

	pthread_mutex_lock(&ct->ct_lock);
	if ((c = ctx_find_locked(ct, id, now)) == NULL) {
		pthread_mutex_unlock(&ct->ct_lock);
		return CTX_UNKNOWN;
	}
	c->rc_expires = now + c->rc_timeout_ms;
	lists_unlink(ct, c);
	c->rc_busy++;
	lists_append(ct, c);
	if (profp) {
		*profp = c->rc_prof;
		if (*profp)
			atomic_fetch_add(&(*profp)->pr_refs, 1);
	}
	if (dsetp) {
		*dsetp = c->rc_derived;
		if (*dsetp)
			atomic_fetch_add(&(*dsetp)->ds_refs, 1);
	}
	pthread_mutex_unlock(&ct->ct_lock);
	return CTX_OK;
}

/* The request that called ctx_use() is done with id (gone: no-op). */
void
ctx_done(struct ctxtab *ct, uint32_t id)
{
	struct rctx	*c;

	pthread_mutex_lock(&ct->ct_lock);
	if ((c = *ctx_slot_locked(ct, id)) != NULL && c->rc_busy > 0) {
		lists_unlink(ct, c);
		c->rc_busy--;
		lists_append(ct, c);
	}
	pthread_mutex_unlock(&ct->ct_lock);
}

#define CT_MALLOC_OVERHEAD	16	/* glibc's header per allocation */

/* what one registered derived metric holds: itself, name, text, slot */
static size_t
dmetric_bytes(const struct dmetric *dm)
{
	return sizeof(*dm) + strlen(dm->dm_name) + strlen(dm->dm_text) + 2 +
	    3 * CT_MALLOC_OVERHEAD + sizeof(struct dmetric *);
}

/*
 * Add a derived metric to a context (copy-on-write; readers keep the old
 * set). The duplicate and limit checks happen here, under the lock, so
 * two racing registrations of one name cannot both succeed. On CTX_OK
 * dm->dm_pmid is set and the context holds its own reference.
 */
enum ctx_result
ctx_derive_add(struct ctxtab *ct, uint32_t id, struct dmetric *dm,
    size_t max)
{
	struct rctx	*c;
	struct dset	*ns;
	size_t		 n = 0;
	enum ctx_result	 ret = CTX_OK;

	pthread_mutex_lock(&ct->ct_lock);
	if ((c = ctx_find_locked(ct, id, now_mono_ms())) == NULL ||
	    dm == NULL)
		ret = CTX_UNKNOWN;
	else if (c->rc_derived && c->rc_derived->ds_n >= max)
		ret = CTX_LIMIT;
	else if (dset_find(c->rc_derived, dm->dm_name) != NULL)
		ret = CTX_DUP;
	else if (c->rc_dbytes + c->rc_rbytes + (n = dmetric_bytes(dm)) >
	    ct->ct_lim.cl_derived_bytes)
		ret = CTX_BYTES;
	else if (ctx_charge_locked(ct, c, n) == -1)
		ret = CTX_NOMEM;
	else if ((ns = dset_add(c->rc_derived, dm)) == NULL) {
		ctx_uncharge(ct, n);
		ret = CTX_FULL;
	} else {
		dset_release(c->rc_derived);
		c->rc_derived = ns;
		c->rc_dbytes += n;
		ctx_account_locked(ct, c, (ssize_t)n);
	}
	pthread_mutex_unlock(&ct->ct_lock);
	return ret;
}

/* --- rate() histories --- */

/*
 * A copy of what derived metric pmid's rate() nodes saw at context id's
 * last fetch (*out zeroed: none, the first fetch). CTX_FULL: no memory.
 */
enum ctx_result
ctx_rate_get(struct ctxtab *ct, uint32_t id, pmID pmid, struct dhist *out)
{
	struct rctx	*c;
	struct rhist	*r;
	enum ctx_result	 ret = CTX_OK;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ct->ct_lock);
	if ((c = *ctx_slot_locked(ct, id)) == NULL)
		ret = CTX_UNKNOWN;
	else
		for (r = c->rc_rates; r; r = r->rh_next)
			if (r->rh_pmid == pmid) {
				if (dhist_copy(out, &r->rh_h) == -1)
					ret = CTX_FULL;
				break;
			}
	pthread_mutex_unlock(&ct->ct_lock);
	return ret;
}

/*
 * Keep h (moved in on CTX_OK, h zeroed) as pmid's history in context id,
 * replacing the last one. Charged to the context's derived-metric bytes
 * (CTX_BYTES past --max-derived-bytes) and to --max-memory (CTX_NOMEM);
 * on an error the old history is dropped too, so the next fetch starts
 * again as a first one rather than against stale values.
 */
enum ctx_result
ctx_rate_put(struct ctxtab *ct, uint32_t id, pmID pmid, struct dhist *h)
{
	struct rctx	*c;
	struct rhist	**pp, *r = NULL;
	size_t		 nb = sizeof(*r) + dhist_bytes(h), ob = 0;
	enum ctx_result	 ret = CTX_OK;

	pthread_mutex_lock(&ct->ct_lock);
	if ((c = *ctx_slot_locked(ct, id)) == NULL) {
		ret = CTX_UNKNOWN;
		goto done;
	}
	for (pp = &c->rc_rates; *pp; pp = &(*pp)->rh_next)
		if ((*pp)->rh_pmid == pmid)
			break;
	if ((r = *pp) != NULL) {	/* unlink and release the old one */
		*pp = r->rh_next;
		ob = r->rh_bytes;
		dhist_free(&r->rh_h);
		c->rc_rbytes -= ob;
		ctx_uncharge(ct, ob);
		ctx_account_locked(ct, c, -(ssize_t)ob);
	}
	if (c->rc_dbytes + c->rc_rbytes + nb > ct->ct_lim.cl_derived_bytes)
		ret = CTX_BYTES;
	else if (ctx_charge_locked(ct, c, nb) == -1)
		ret = CTX_NOMEM;
	else if (r == NULL && (r = calloc(1, sizeof(*r))) == NULL) {
		ctx_uncharge(ct, nb);
		ret = CTX_FULL;
	}
	if (ret != CTX_OK) {
		free(r);
		goto done;
	}
	r->rh_pmid = pmid;
	r->rh_bytes = nb;
	r->rh_h = *h;
	memset(h, 0, sizeof(*h));
	r->rh_next = c->rc_rates;
	c->rc_rates = r;
	c->rc_rbytes += nb;
	ctx_account_locked(ct, c, (ssize_t)nb);
done:
	pthread_mutex_unlock(&ct->ct_lock);
	return ret;
}

/* 1 while context id exists (its timer is not re-armed), else 0. */
int
ctx_alive(struct ctxtab *ct, uint32_t id)
{
	int	 alive;

	pthread_mutex_lock(&ct->ct_lock);
	alive = ctx_find_locked(ct, id, now_mono_ms()) != NULL;
	pthread_mutex_unlock(&ct->ct_lock);
	return alive;
}

size_t
ctx_gc(struct ctxtab *ct)
{
	int64_t	 now = now_mono_ms();
	size_t	 freed = 0;

	pthread_mutex_lock(&ct->ct_lock);
	for (size_t i = 0; i < CT_BUCKETS; i++) {
		struct rctx	**pp = &ct->ct_bucket[i];

		while (*pp) {
			struct rctx	*c = *pp;

			if (c->rc_expires <= now) {
				ctx_remove_locked(ct, pp, c);
				freed++;
			} else {
				pp = &c->rc_next;
			}
		}
	}
	pthread_mutex_unlock(&ct->ct_lock);
	return freed;
}

uint64_t
ctx_evictions(struct ctxtab *ct)
{
	uint64_t	 n;

	pthread_mutex_lock(&ct->ct_lock);
	n = ct->ct_evicted;
	pthread_mutex_unlock(&ct->ct_lock);
	return n;
}

size_t
ctx_count(struct ctxtab *ct)
{
	size_t	 n;

	pthread_mutex_lock(&ct->ct_lock);
	n = ct->ct_count;
	pthread_mutex_unlock(&ct->ct_lock);
	return n;
}

/* --- profiles --- */

void
profile_release(struct profile *p)
{
	if (p == NULL || atomic_fetch_sub(&p->pr_refs, 1) != 1)
		return;
	for (size_t i = 0; i < p->pr_n; i++)
		free(p->pr_indoms[i].pi_list);
	free(p->pr_indoms);
	free(p);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	 x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
list_has(const uint32_t *l, size_t n, uint32_t v)
{
	return bsearch(&v, l, n, sizeof(*l), cmp_u32) != NULL;
}

int
profile_allows(const struct profile *p, pmInDom indom, uint32_t inst)
{
	if (p == NULL)
		return 1;
	for (size_t i = 0; i < p->pr_n; i++) {
		const struct prof_indom	*pi = &p->pr_indoms[i];

		if (pi->pi_indom != indom)
			continue;
		return pi->pi_include_all ? !list_has(pi->pi_list, pi->pi_n,
		    inst) : list_has(pi->pi_list, pi->pi_n, inst);
	}
	return p->pr_default;
}

/* 1 when p lets every instance of indom through (fetch may use cached
   answers then) */
int
profile_allows_all(const struct profile *p, pmInDom indom)
{
	if (p == NULL)
		return 1;
	for (size_t i = 0; i < p->pr_n; i++) {
		const struct prof_indom	*pi = &p->pr_indoms[i];

		if (pi->pi_indom == indom)
			return pi->pi_include_all && pi->pi_n == 0;
	}
	return p->pr_default;
}

/* Set union (add=1) or difference (add=0) of sorted list l with v[0..n). */
static uint32_t *
list_merge(const uint32_t *l, size_t ln, const uint32_t *v, size_t vn,
    int add, size_t *outn)
{
	uint32_t	*out;
	size_t		 k = 0;

	if ((out = malloc(sizeof(*out) * (ln + vn + 1))) == NULL)
		return NULL;
	for (size_t i = 0; i < ln; i++)
		if (add || !list_has(v, vn, l[i]))
			out[k++] = l[i];
	if (add)
		for (size_t i = 0; i < vn; i++)
			if (!list_has(l, ln, v[i]) &&
			    (i == 0 || v[i] != v[i - 1]))
				out[k++] = v[i];
	qsort(out, k, sizeof(*out), cmp_u32);
	*outn = k;
	return out;
}

/*
 * pmAddProfile / pmDelProfile semantics with pmproxy's twist: the first
 * "add" of an explicit list on an untouched indom restricts the indom to
 * that list (pmproxy answers only the added instances). n == 0 means the
 * whole indom; indom PM_INDOM_NULL means every indom (all or none). Builds a new profile; the old one stays valid for readers.
 */
static struct profile *
profile_apply(const struct profile *old, int add, pmInDom indom,
    const uint32_t *insts, size_t n)
{
	struct profile		*p;
	struct prof_indom	*pi = NULL;
	uint32_t		*v = NULL;
	size_t			 oldn = old ? old->pr_n : 0;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	atomic_init(&p->pr_refs, 1);
	p->pr_default = old ? old->pr_default : 1;
	if (indom == PM_INDOM_NULL) {	/* every indom: reset to all/none */
		p->pr_default = add;
		oldn = 0;
	}
	p->pr_indoms = calloc(oldn + 1, sizeof(*p->pr_indoms));
	if (p->pr_indoms == NULL)
		goto fail;
	if (indom == PM_INDOM_NULL)
		return p;
	for (size_t i = 0; i < oldn; i++) {
		struct prof_indom	*d = &p->pr_indoms[p->pr_n++];

		*d = old->pr_indoms[i];
		d->pi_list = malloc(sizeof(uint32_t) * (d->pi_n + 1));
		if (d->pi_list == NULL)
			goto fail;
		memcpy(d->pi_list, old->pr_indoms[i].pi_list,
		    sizeof(uint32_t) * d->pi_n);
		if (d->pi_indom == indom)
			pi = d;
	}
	if (pi == NULL) {
		pi = &p->pr_indoms[p->pr_n++];
		pi->pi_indom = indom;
		pi->pi_include_all = add ? 0 : p->pr_default;
		pi->pi_n = 0;
		if ((pi->pi_list = malloc(sizeof(uint32_t))) == NULL)
			goto fail;
	}
	if (n == 0) {
		pi->pi_include_all = add;
		pi->pi_n = 0;
		return p;
	}
	if ((v = malloc(sizeof(*v) * n)) == NULL)
		goto fail;
	memcpy(v, insts, sizeof(*v) * n);
	qsort(v, n, sizeof(*v), cmp_u32);
	{
		/* include_all: the list holds exclusions; else inclusions */
		int		 grow = pi->pi_include_all ? !add : add;
		size_t		 nn;
		uint32_t	*nl = list_merge(pi->pi_list, pi->pi_n, v, n,
				    grow, &nn);

		if (nl == NULL)
			goto fail;
		free(pi->pi_list);
		pi->pi_list = nl;
		pi->pi_n = nn;
	}
	free(v);
	return p;
fail:
	free(v);
	profile_release(p);
	return NULL;
}

/* what p holds, and (*insts) how many instance ids it lists */
static size_t
profile_bytes(const struct profile *p, size_t *insts)
{
	size_t	 b = 0;

	*insts = 0;
	if (p == NULL)
		return 0;
	b = sizeof(*p) + p->pr_n * sizeof(*p->pr_indoms);
	for (size_t i = 0; i < p->pr_n; i++) {
		*insts += p->pr_indoms[i].pi_n;
		b += (p->pr_indoms[i].pi_n + 1) * sizeof(uint32_t);
	}
	return b;
}

/*
 * Change a context's profile. CTX_LIMIT: the new profile would list more
 * than --max-profile-instances ids; CTX_NOMEM: --max-memory reached.
 */
enum ctx_result
ctx_profile_change(struct ctxtab *ct, uint32_t id, int add, pmInDom indom,
    const uint32_t *insts, size_t n)
{
	struct rctx	*c;
	struct profile	*np;
	size_t		 nb, ninst;
	enum ctx_result	 ret = CTX_OK;

	pthread_mutex_lock(&ct->ct_lock);
	if ((c = ctx_find_locked(ct, id, now_mono_ms())) == NULL) {
		ret = CTX_UNKNOWN;
		goto done;
	}
	if ((np = profile_apply(c->rc_prof, add, indom, insts, n)) == NULL) {
		ret = CTX_FULL;
		goto done;
	}
	nb = profile_bytes(np, &ninst);
	if (ninst > ct->ct_lim.cl_profile_insts)
		ret = CTX_LIMIT;
	else if (nb > c->rc_pbytes &&
	    ctx_charge_locked(ct, c, nb - c->rc_pbytes) == -1)
		ret = CTX_NOMEM;
	if (ret != CTX_OK) {
		profile_release(np);
		goto done;
	}
	if (nb < c->rc_pbytes)
		ctx_uncharge(ct, c->rc_pbytes - nb);
	ctx_account_locked(ct, c, (ssize_t)nb - (ssize_t)c->rc_pbytes);
	c->rc_pbytes = nb;
	profile_release(c->rc_prof);
	c->rc_prof = np;
done:
	pthread_mutex_unlock(&ct->ct_lock);
	return ret;
}
