/* SPDX-License-Identifier: MIT */
/*
 * context.c - REST client contexts, as pmproxy keeps them: a random
 * 31-bit id, a polltimeout after which an unused context is forgotten, and
 * per-context instance profiles and derived metrics. Both are immutable
 * and reference counted: a change builds a new one, so a request holds
 * them without holding the table lock, and both go with their context. Threads: HTTP workers and the main loop (GC);
 * everything below is guarded by ct_lock, held only for table operations.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bpftraced.h"

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

struct rctx {
	uint32_t	 rc_id;
	int64_t		 rc_timeout_ms;
	int64_t		 rc_expires;	/* monotonic ms */
	struct profile	*rc_prof;	/* NULL: everything included */
	struct dset	*rc_derived;	/* NULL: none registered */
	int		 rc_implicit;	/* made for a request without one */
	int		 rc_used;	/* asked for by id since */
	struct rctx	*rc_next;	/* hash chain */
};

#define CT_BUCKETS	4096

struct ctxtab {
	pthread_mutex_t	 ct_lock;
	struct rctx	*ct_bucket[CT_BUCKETS];
	size_t		 ct_count;
	size_t		 ct_max;
	/*
	 * Implicit contexts (a fetch without a context makes one, as in
	 * pmproxy) in creation order, so a full table can drop the oldest
	 * one nobody asked for again instead of refusing: under load,
	 * context-less clients would otherwise fill the table in seconds.
	 */
	uint32_t	*ct_ring;
	size_t		 ct_ring_head, ct_ring_len;
};

struct ctxtab *
ctx_new(size_t max)
{
	struct ctxtab	*ct;

	if ((ct = calloc(1, sizeof(*ct))) == NULL)
		return NULL;
	pthread_mutex_init(&ct->ct_lock, NULL);
	ct->ct_max = max;
	if ((ct->ct_ring = calloc(max + 1, sizeof(*ct->ct_ring))) == NULL) {
		free(ct);
		return NULL;
	}
	return ct;
}

static void
rctx_free(struct rctx *c)
{
	profile_release(c->rc_prof);
	dset_release(c->rc_derived);
	free(c);
}

void
ctx_free(struct ctxtab *ct)
{
	if (ct == NULL)
		return;
	for (size_t i = 0; i < CT_BUCKETS; i++)
		while (ct->ct_bucket[i]) {
			struct rctx	*c = ct->ct_bucket[i];

			ct->ct_bucket[i] = c->rc_next;
			rctx_free(c);
		}
	pthread_mutex_destroy(&ct->ct_lock);
	free(ct->ct_ring);
	free(ct);
}

/* Called with ct_lock held. Expired contexts are unlinked and freed. */
static struct rctx *
ctx_find_locked(struct ctxtab *ct, uint32_t id, int64_t now)
{
	struct rctx	**pp = &ct->ct_bucket[id % CT_BUCKETS];

	for (; *pp; pp = &(*pp)->rc_next) {
		struct rctx	*c = *pp;

		if (c->rc_id != id)
			continue;
		if (c->rc_expires <= now) {
			*pp = c->rc_next;
			ct->ct_count--;
			rctx_free(c);
			return NULL;
		}
		return c;
	}
	return NULL;
}

static int	ctx_create2(struct ctxtab *, double, int, uint32_t *);

/* Unlink and free context id if it is there. Lock held. */
static int
ctx_drop_locked(struct ctxtab *ct, uint32_t id, int only_unused)
{
	struct rctx	**pp = &ct->ct_bucket[id % CT_BUCKETS];

	for (; *pp; pp = &(*pp)->rc_next) {
		struct rctx	*c = *pp;

		if (c->rc_id != id)
			continue;
		if (only_unused && c->rc_used)
			return 0;
		*pp = c->rc_next;
		ct->ct_count--;
		rctx_free(c);
		return 1;
	}
	return 0;
}

/* Make room by dropping the oldest implicit context not used since. */
static int
ctx_evict_locked(struct ctxtab *ct)
{
	while (ct->ct_ring_len > 0) {
		uint32_t	 id = ct->ct_ring[ct->ct_ring_head];

		ct->ct_ring_head = (ct->ct_ring_head + 1) % (ct->ct_max + 1);
		ct->ct_ring_len--;
		if (ctx_drop_locked(ct, id, 1))
			return 1;
	}
	return 0;
}

static void
ctx_ring_push_locked(struct ctxtab *ct, uint32_t id)
{
	size_t	 cap = ct->ct_max + 1;

	if (ct->ct_ring_len == cap) {	/* stale ids only: forget one */
		ct->ct_ring_head = (ct->ct_ring_head + 1) % cap;
		ct->ct_ring_len--;
	}
	ct->ct_ring[(ct->ct_ring_head + ct->ct_ring_len) % cap] = id;
	ct->ct_ring_len++;
}

/* New context with a random id in 1..INT32_MAX. */
int
ctx_create(struct ctxtab *ct, double timeout_s, uint32_t *idp)
{
	return ctx_create2(ct, timeout_s, 0, idp);
}

/* A context made for a request that named none (may be evicted). */
int
ctx_create_implicit(struct ctxtab *ct, double timeout_s, uint32_t *idp)
{
	return ctx_create2(ct, timeout_s, 1, idp);
}

static int
ctx_create2(struct ctxtab *ct, double timeout_s, int implicit, uint32_t *idp)
{
	struct rctx	*c;
	uint32_t	 id;
	int64_t		 now = now_mono_ms();

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return CTX_FULL;
	c->rc_timeout_ms = (int64_t)(timeout_s * 1000.0);
	c->rc_expires = now + c->rc_timeout_ms;
	c->rc_implicit = implicit;
	pthread_mutex_lock(&ct->ct_lock);
	if (ct->ct_count >= ct->ct_max && !ctx_evict_locked(ct)) {
		pthread_mutex_unlock(&ct->ct_lock);
		free(c);
		return CTX_FULL;
	}
	do {
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = (uint32_t)random();
		id &= 0x7fffffff;
	} while (id == 0 || ctx_find_locked(ct, id, now) != NULL);
	c->rc_id = id;
	c->rc_next = ct->ct_bucket[id % CT_BUCKETS];
	ct->ct_bucket[id % CT_BUCKETS] = c;
	ct->ct_count++;
	if (implicit)
		ctx_ring_push_locked(ct, id);
	pthread_mutex_unlock(&ct->ct_lock);
	*idp = id;
	return CTX_OK;
}

/*
 * Use a context: re-arms its timer. If profp is set, *profp gets a
 * reference to its profile (or NULL); if dsetp is set, *dsetp gets one to
 * its derived metrics (or NULL). The caller releases them.
 */
int
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
	c->rc_used = 1;
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

/*
 * Add a derived metric to a context (copy-on-write; readers keep the old
 * set). The duplicate and limit checks happen here, under the lock, so
 * two racing registrations of one name cannot both succeed. On CTX_OK
 * dm->dm_pmid is set and the context holds its own reference.
 */
int
ctx_derive_add(struct ctxtab *ct, uint32_t id, struct dmetric *dm,
    size_t max)
{
	struct rctx	*c;
	struct dset	*ns;
	int		 ret = CTX_OK;

	pthread_mutex_lock(&ct->ct_lock);
	if ((c = ctx_find_locked(ct, id, now_mono_ms())) == NULL)
		ret = CTX_UNKNOWN;
	else if (c->rc_derived && c->rc_derived->ds_n >= max)
		ret = CTX_LIMIT;
	else if (dset_find(c->rc_derived, dm->dm_name) != NULL)
		ret = CTX_DUP;
	else if ((ns = dset_add(c->rc_derived, dm)) == NULL)
		ret = CTX_FULL;
	else {
		dset_release(c->rc_derived);
		c->rc_derived = ns;
	}
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
				*pp = c->rc_next;
				rctx_free(c);
				ct->ct_count--;
				freed++;
			} else {
				pp = &c->rc_next;
			}
		}
	}
	pthread_mutex_unlock(&ct->ct_lock);
	return freed;
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

int
ctx_profile_change(struct ctxtab *ct, uint32_t id, int add, pmInDom indom,
    const uint32_t *insts, size_t n)
{
	struct rctx	*c;
	struct profile	*np;
	int		 ret = CTX_OK;

	pthread_mutex_lock(&ct->ct_lock);
	if ((c = ctx_find_locked(ct, id, now_mono_ms())) == NULL) {
		ret = CTX_UNKNOWN;
		goto done;
	}
	if ((np = profile_apply(c->rc_prof, add, indom, insts, n)) == NULL) {
		ret = CTX_FULL;
		goto done;
	}
	profile_release(c->rc_prof);
	c->rc_prof = np;
done:
	pthread_mutex_unlock(&ct->ct_lock);
	return ret;
}
