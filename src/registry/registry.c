/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the in-memory PCP namespace and its values.
 *
 * Names, PMIDs and instance domains live in immutable, reference-counted
 * generations (struct ns). A writer builds the next generation under
 * reg_writer and swaps the pointer under reg_ptr_lock, which is only held
 * for a pointer copy and a reference increment, so readers never wait on a
 * writer's work. Values live in per-source snapshots (struct snap), also
 * immutable once published: a fetch takes a reference and can never see
 * half an update. Threads: any thread may read; writers are serialised.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "registry.h"
#include "util.h"

struct registry {
	pthread_mutex_t	 reg_writer;	/* serialises writers */
	pthread_mutex_t	 reg_ptr_lock;	/* guards reg_cur pointer swap */
	struct ns	*reg_cur;
	unsigned long	 reg_gen;	/* bumped per change, under writer */
};

/* --- arena: bump allocation for snapshots --- */

struct arena {
	struct arena	*a_next;
	size_t		 a_used;
	size_t		 a_size;
	max_align_t	 a_data[];
};

#define ARENA_CHUNK	(64 * 1024)

static void *
arena_alloc(struct arena **ap, size_t n)
{
	struct arena	*a = *ap;
	size_t		 align = sizeof(max_align_t);
	void		*p;

	n = (n + align - 1) & ~(align - 1);
	if (a == NULL || a->a_size - a->a_used < n) {
		size_t	 size = n > ARENA_CHUNK ? n : ARENA_CHUNK;

		if ((a = malloc(sizeof(*a) + size)) == NULL)
			return NULL;
		a->a_next = *ap;
		a->a_used = 0;
		a->a_size = size;
		*ap = a;
	}
	p = (char *)a->a_data + a->a_used;
	a->a_used += n;
	return p;
}

static void
arena_free(struct arena *a)
{
	while (a) {
		struct arena	*next = a->a_next;

		free(a);
		a = next;
	}
}

/* --- snapshots --- */

static void
snapfrag_free(struct snapfrag *f)
{
	if (f == NULL)
		return;
	free(f->sf_data);
	free(f);
}

/* Caller owns the returned snapshot (one reference). */
struct snap *
snap_new(int nsets, int nindoms)
{
	struct snap	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	atomic_init(&s->s_refs, 1);
	now_real(&s->s_ts);
	s->s_nsets = nsets;
	s->s_nindoms = nindoms;
	if ((nsets && (s->s_sets = calloc((size_t)nsets,
	    sizeof(*s->s_sets))) == NULL) ||
	    (nsets && (s->s_frags = calloc((size_t)nsets * SNAP_FRAG_VARIANTS,
	    sizeof(*s->s_frags))) == NULL) ||
	    (nindoms && (s->s_indoms = calloc((size_t)nindoms,
	    sizeof(*s->s_indoms))) == NULL)) {
		free(s->s_sets);
		free(s->s_frags);
		free(s);
		return NULL;
	}
	for (int i = 0; i < nsets; i++)
		s->s_sets[i].vs_err = PM_ERR_VALUE;
	return s;
}

void
snap_ref(struct snap *s)
{
	atomic_fetch_add(&s->s_refs, 1);
}

void
snap_release(struct snap *s)
{
	if (s == NULL || atomic_fetch_sub(&s->s_refs, 1) != 1)
		return;
	for (int i = 0; i < s->s_nheld; i++)
		shblk_unref(s->s_held[i]);
	free(s->s_held);
	for (int i = 0; s->s_frags && i < s->s_nsets * SNAP_FRAG_VARIANTS;
	    i++)
		snapfrag_free(atomic_load(&s->s_frags[i]));
	free(s->s_frags);
	arena_free(s->s_arena);
	free(s->s_sets);
	free(s->s_indoms);
	free(s);
}

void *
snap_alloc(struct snap *s, size_t n)
{
	return arena_alloc(&s->s_arena, n ? n : 1);
}

const char *
snap_strdup(struct snap *s, const char *str)
{
	size_t	 n = strlen(str) + 1;
	char	*p = snap_alloc(s, n);

	if (p)
		memcpy(p, str, n);
	return p;
}

/* Copy n values (and instance ids, NULL for singular) into slot. */
int
snap_set_values(struct snap *s, int slot, int n, const uint32_t *inst,
    const union value *vals)
{
	struct valset	*vs;
	uint32_t	*ip = NULL;
	union value	*vp;

	if (slot < 0 || slot >= s->s_nsets || n < 0)
		return -1;
	vs = &s->s_sets[slot];
	if ((vp = snap_alloc(s, sizeof(*vp) * (size_t)n)) == NULL)
		return -1;
	if (inst && (ip = snap_alloc(s, sizeof(*ip) * (size_t)n)) == NULL)
		return -1;
	if (n > 0)
		memcpy(vp, vals, sizeof(*vp) * (size_t)n);
	if (inst && n > 0)
		memcpy(ip, inst, sizeof(*ip) * (size_t)n);
	vs->vs_n = n;
	vs->vs_err = 0;
	vs->vs_inst = ip;
	vs->vs_vals = vp;
	return 0;
}

int
snap_set1(struct snap *s, int slot, union value v)
{
	return snap_set_values(s, slot, 1, NULL, &v);
}

int
snap_set_str1(struct snap *s, int slot, const char *str)
{
	union value	 v;

	if ((v.s = snap_strdup(s, str)) == NULL)
		return -1;
	return snap_set1(s, slot, v);
}

int
snap_set_indom(struct snap *s, int slot, int n, const uint32_t *ids,
    const char *const *names)
{
	struct instlist	*il;
	uint32_t	*ip;
	const char	**np;

	if (slot < 0 || slot >= s->s_nindoms || n < 0)
		return -1;
	il = &s->s_indoms[slot];
	ip = snap_alloc(s, sizeof(*ip) * (size_t)n);
	np = snap_alloc(s, sizeof(*np) * (size_t)n);
	if (ip == NULL || np == NULL)
		return -1;
	if (n > 0)
		memcpy(ip, ids, sizeof(*ip) * (size_t)n);
	for (int i = 0; i < n; i++)
		if ((np[i] = snap_strdup(s, names[i])) == NULL)
			return -1;
	il->il_n = n;
	il->il_ids = ip;
	il->il_names = np;
	return 0;
}

/* --- shared blocks --- */

struct shblk {
	atomic_int	 sb_refs;
	max_align_t	 sb_data[];
};

/* Caller owns one reference; the data is uninitialised. */
struct shblk *
shblk_new(size_t size)
{
	struct shblk	*b;

	if ((b = malloc(sizeof(*b) + (size ? size : 1))) == NULL)
		return NULL;
	atomic_init(&b->sb_refs, 1);
	return b;
}

void *
shblk_data(struct shblk *b)
{
	return b->sb_data;
}

void
shblk_unref(struct shblk *b)
{
	if (b != NULL && atomic_fetch_sub(&b->sb_refs, 1) == 1)
		free(b);
}

/* s keeps a reference on b until it is released. -1 on no memory. */
int
snap_hold(struct snap *s, struct shblk *b)
{
	struct shblk	**h;
	int		 ncap;

	if (s->s_nheld == s->s_heldcap) {
		ncap = s->s_heldcap ? s->s_heldcap * 2 : 8;
		if ((h = realloc(s->s_held, (size_t)ncap * sizeof(*h))) ==
		    NULL)
			return -1;
		s->s_held = h;
		s->s_heldcap = ncap;
	}
	atomic_fetch_add(&b->sb_refs, 1);
	s->s_held[s->s_nheld++] = b;
	return 0;
}

/* Like snap_set_values, pointing at memory s owns or holds. */
int
snap_set_values_nocopy(struct snap *s, int slot, int n, const uint32_t *inst,
    const union value *vals)
{
	struct valset	*vs;

	if (slot < 0 || slot >= s->s_nsets || n < 0)
		return -1;
	vs = &s->s_sets[slot];
	vs->vs_n = n;
	vs->vs_err = 0;
	vs->vs_inst = inst;
	vs->vs_vals = vals;
	return 0;
}

/* Like snap_set_indom, pointing at memory s owns or holds. */
int
snap_set_indom_nocopy(struct snap *s, int slot, int n, const uint32_t *ids,
    const char *const *names)
{
	struct instlist	*il;

	if (slot < 0 || slot >= s->s_nindoms || n < 0)
		return -1;
	il = &s->s_indoms[slot];
	il->il_n = n;
	il->il_ids = ids;
	il->il_names = names;
	return 0;
}

const struct instlist *
snap_instances(const struct snap *s, const struct indom *in)
{
	if (s == NULL || in->i_slot < 0 || in->i_slot >= s->s_nindoms)
		return NULL;
	return &s->s_indoms[in->i_slot];
}

/* --- fragments: a slot's values written once per snapshot --- */

/* The cached fragment of slot in variant, or NULL when none yet. */
const struct snapfrag *
snap_frag(const struct snap *s, int slot, int variant)
{
	if (s->s_frags == NULL || slot < 0 || slot >= s->s_nsets ||
	    variant < 0 || variant >= SNAP_FRAG_VARIANTS)
		return NULL;
	return atomic_load_explicit(&s->s_frags[slot * SNAP_FRAG_VARIANTS +
	    variant], memory_order_acquire);
}

/*
 * Cache f for slot in variant; takes ownership of f. Two threads may
 * write the same fragment at once: the first one stays, the other is
 * freed, and both callers get the one that stayed. NULL (f freed) when
 * slot or variant is out of range.
 */
const struct snapfrag *
snap_frag_set(struct snap *s, int slot, int variant, struct snapfrag *f)
{
	struct snapfrag	*old = NULL;
	_Atomic(struct snapfrag *) *e;

	if (s->s_frags == NULL || slot < 0 || slot >= s->s_nsets ||
	    variant < 0 || variant >= SNAP_FRAG_VARIANTS) {
		snapfrag_free(f);
		return NULL;
	}
	e = &s->s_frags[slot * SNAP_FRAG_VARIANTS + variant];
	if (atomic_compare_exchange_strong_explicit(e, &old, f,
	    memory_order_acq_rel, memory_order_acquire))
		return f;
	snapfrag_free(f);
	return old;
}

/* --- sources --- */

/* Caller owns one reference. refresh may be NULL (published snapshots). */
struct source *
source_new(const char *name, source_refresh_fn refresh, void *arg)
{
	struct source	*src;

	if ((src = calloc(1, sizeof(*src))) == NULL)
		return NULL;
	if ((src->src_name = strdup(name)) == NULL) {
		free(src);
		return NULL;
	}
	atomic_init(&src->src_refs, 1);
	atomic_init(&src->src_last_fetch, now_mono_ms());
	pthread_mutex_init(&src->src_lock, NULL);
	src->src_refresh = refresh;
	src->src_arg = arg;
	return src;
}

void
source_ref(struct source *src)
{
	atomic_fetch_add(&src->src_refs, 1);
}

void
source_unref(struct source *src)
{
	if (src == NULL || atomic_fetch_sub(&src->src_refs, 1) != 1)
		return;
	snap_release(src->src_cur);
	pthread_mutex_destroy(&src->src_lock);
	free(src->src_name);
	free(src->src_owner);
	free(src);
}

/* The current snapshot (caller releases it), or NULL when none yet. */
struct snap *
source_snap(struct source *src)
{
	struct snap	*s;

	atomic_store(&src->src_last_fetch, now_mono_ms());
	if (src->src_refresh)
		return src->src_refresh(src, src->src_arg);
	pthread_mutex_lock(&src->src_lock);
	if ((s = src->src_cur) != NULL)
		snap_ref(s);
	pthread_mutex_unlock(&src->src_lock);
	return s;
}

/* Takes ownership of s. */
void
source_publish(struct source *src, struct snap *s)
{
	struct snap	*old;

	pthread_mutex_lock(&src->src_lock);
	old = src->src_cur;
	src->src_cur = s;
	pthread_mutex_unlock(&src->src_lock);
	snap_release(old);
}

/* --- metrics and indoms --- */

static char *
xstrdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/*
 * Caller owns one reference. Takes a reference on src. (Its series id is
 * worked out where an answer shows it, from the labels shown: seriesid.c.)
 */
struct metric *
metric_new(const char *name, pmID pmid, pmInDom indom, int type, int sem,
    pmUnits units, const char *oneline, const char *help, const char *labels,
    struct source *src, int slot)
{
	struct metric	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	atomic_init(&m->m_refs, 1);
	m->m_name = strdup(name);
	m->m_oneline = strdup(oneline ? oneline : "");
	m->m_help = strdup(help ? help : (oneline ? oneline : ""));
	m->m_labels = xstrdup_or_null(labels);
	if (m->m_name == NULL || m->m_oneline == NULL || m->m_help == NULL ||
	    (labels && m->m_labels == NULL)) {
		metric_unref(m);
		return NULL;
	}
	m->m_pmid = pmid;
	m->m_indom = indom;
	atomic_init(&m->m_tword, (uint32_t)(uint16_t)(int16_t)type);
	m->m_sem = sem;
	m->m_units = units;
	m->m_src = src;
	m->m_slot = slot;
	if (src)
		source_ref(src);
	return m;
}

static int
tword_type(uint32_t w)
{
	return (int)(int16_t)(uint16_t)(w & 0xffffu);
}

static uint32_t
tword(int type, int open)
{
	return (uint32_t)(uint16_t)(int16_t)type | (open ? MT_OPEN : 0);
}

/* The type now; it may still change while open (see registry.h). */
int
metric_type(const struct metric *m)
{
	return tword_type(atomic_load(&m->m_tword));
}

/*
 * The type a descriptor hands out, fixed from now on. The metric is not
 * const (metric_new allocates it): const here only says that nothing a
 * reader sees besides the type's openness changes.
 */
int
metric_describe(const struct metric *cm)
{
	struct metric	*m = (struct metric *)(uintptr_t)cm;
	uint32_t	 w = atomic_load(&m->m_tword);

	while ((w & MT_OPEN) &&
	    !atomic_compare_exchange_weak(&m->m_tword, &w, w & ~MT_OPEN))
		;
	return tword_type(w);
}

/* Before the metric is registered: the data may still choose its type. */
void
metric_type_open(struct metric *m)
{
	atomic_store(&m->m_tword, atomic_load(&m->m_tword) | MT_OPEN);
}

/*
 * The data proposes type (final: and fixes it). Returns 1 while the type
 * is still open, 0 once fixed; *typep is the type in force, which is not
 * type when a descriptor fixed the type first.
 */
int
metric_type_propose(struct metric *m, int type, int final, int *typep)
{
	uint32_t	 w = atomic_load(&m->m_tword);

	while ((w & MT_OPEN) && !atomic_compare_exchange_weak(&m->m_tword,
	    &w, tword(type, !final)))
		;
	if (w & MT_OPEN) {		/* the swap happened */
		*typep = type;
		return !final;
	}
	*typep = tword_type(w);
	return 0;
}

/*
 * A store's result as the PCP code pmcd passes on to its client: 0 for
 * STORE_OK, PM_ERR_GENERIC for STORE_INTERNAL (ours: the state
 * database), -ENOMEM for STORE_NOMEM (--max-memory).
 */
int
metric_store_pmcode(enum store_result rv)
{
	switch (rv) {
	case STORE_OK:
		return 0;
	case STORE_INTERNAL:
		return PM_ERR_GENERIC;	/* ours: the state database */
	case STORE_NOMEM:
		return -ENOMEM;		/* --max-memory */
	case STORE_NOT_ALLOWED:
	case STORE_UNAUTHENTICATED:
	case STORE_FORBIDDEN:
		return PM_ERR_PERMISSION;
	default:
		return PM_ERR_BADSTORE;
	}
}

void
metric_unref(struct metric *m)
{
	if (m == NULL || atomic_fetch_sub(&m->m_refs, 1) != 1)
		return;
	source_unref(m->m_src);
	free(m->m_name);
	free(m->m_oneline);
	free(m->m_help);
	free(m->m_labels);
	free(m);
}

struct indom *
indom_new(pmInDom id, const char *oneline, const char *help,
    struct source *src, int slot)
{
	struct indom	*in;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return NULL;
	atomic_init(&in->i_refs, 1);
	in->i_id = id;
	in->i_oneline = strdup(oneline ? oneline : "");
	in->i_help = strdup(help ? help : (oneline ? oneline : ""));
	if (in->i_oneline == NULL || in->i_help == NULL) {
		indom_unref(in);
		return NULL;
	}
	in->i_src = src;
	in->i_slot = slot;
	if (src)
		source_ref(src);
	return in;
}

void
indom_unref(struct indom *in)
{
	if (in == NULL || atomic_fetch_sub(&in->i_refs, 1) != 1)
		return;
	source_unref(in->i_src);
	free(in->i_oneline);
	free(in->i_help);
	free(in);
}

/* --- generations --- */

static void
ns_free(struct ns *ns)
{
	for (size_t i = 0; i < ns->ns_nmetrics; i++)
		metric_unref(ns->ns_by_name[i]);
	for (size_t i = 0; i < ns->ns_nindoms; i++)
		indom_unref(ns->ns_indoms[i]);
	free(ns->ns_by_name);
	free(ns->ns_by_pmid);
	free(ns->ns_indoms);
	free(ns);
}

void
ns_release(struct ns *ns)
{
	if (ns && atomic_fetch_sub(&ns->ns_refs, 1) == 1)
		ns_free(ns);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp((*(struct metric *const *)a)->m_name,
	    (*(struct metric *const *)b)->m_name);
}

static int
cmp_pmid(const void *a, const void *b)
{
	pmID	 x = (*(struct metric *const *)a)->m_pmid;
	pmID	 y = (*(struct metric *const *)b)->m_pmid;

	return x < y ? -1 : x > y;
}

static int
cmp_indom(const void *a, const void *b)
{
	pmInDom	 x = (*(struct indom *const *)a)->i_id;
	pmInDom	 y = (*(struct indom *const *)b)->i_id;

	return x < y ? -1 : x > y;
}

/* A generation holding ms and ids, not sorted yet; takes references. */
static struct ns *
ns_alloc(struct metric **ms, size_t nm, struct indom **ids, size_t ni)
{
	struct ns	*ns;

	if ((ns = calloc(1, sizeof(*ns))) == NULL)
		return NULL;
	atomic_init(&ns->ns_refs, 1);
	ns->ns_by_name = malloc(sizeof(*ms) * (nm ? nm : 1));
	ns->ns_by_pmid = malloc(sizeof(*ms) * (nm ? nm : 1));
	ns->ns_indoms = malloc(sizeof(*ids) * (ni ? ni : 1));
	if (!ns->ns_by_name || !ns->ns_by_pmid || !ns->ns_indoms) {
		free(ns->ns_by_name);
		free(ns->ns_by_pmid);
		free(ns->ns_indoms);
		free(ns);
		return NULL;
	}
	for (size_t i = 0; i < nm; i++) {
		atomic_fetch_add(&ms[i]->m_refs, 1);
		ns->ns_by_name[i] = ns->ns_by_pmid[i] = ms[i];
	}
	for (size_t i = 0; i < ni; i++) {
		atomic_fetch_add(&ids[i]->i_refs, 1);
		ns->ns_indoms[i] = ids[i];
	}
	ns->ns_nmetrics = nm;
	ns->ns_nindoms = ni;
	qsort(ns->ns_indoms, ni, sizeof(*ids), cmp_indom);
	return ns;
}

/* Build a generation from arrays; takes references it needs. */
static struct ns *
ns_build(struct metric **ms, size_t nm, struct indom **ids, size_t ni)
{
	struct ns	*ns;

	if ((ns = ns_alloc(ms, nm, ids, ni)) == NULL)
		return NULL;
	qsort(ns->ns_by_name, nm, sizeof(*ms), cmp_name);
	qsort(ns->ns_by_pmid, nm, sizeof(*ms), cmp_pmid);
	return ns;
}

/* dst gets the sorted a[0..na) and b[0..nb) merged, in cmp's order */
static void
merge_metrics(struct metric **dst, struct metric *const *a, size_t na,
    struct metric *const *b, size_t nb, int (*cmp)(const void *,
    const void *))
{
	size_t	 i = 0, j = 0, k = 0;

	while (i < na && j < nb)
		dst[k++] = cmp(&a[i], &b[j]) <= 0 ? a[i++] : b[j++];
	while (i < na)
		dst[k++] = a[i++];
	while (j < nb)
		dst[k++] = b[j++];
}

/*
 * The next generation: cur's metrics plus add[0..nm) (sorted here, in
 * place), and cur's indoms plus ids. cur's arrays are sorted already, so
 * a merge does (O(n) rather than a full sort per script: a restore of
 * 100 scripts sorted ~1,000 metrics 100 times over).
 */
static struct ns *
ns_build_add(const struct ns *cur, struct metric **all, size_t nm,
    struct indom **alli, size_t ni)
{
	struct metric	**add = all + cur->ns_nmetrics;
	size_t		 n = cur->ns_nmetrics;
	struct ns	*ns;

	if ((ns = ns_alloc(all, n + nm, alli, cur->ns_nindoms + ni)) == NULL)
		return NULL;
	qsort(add, nm, sizeof(*add), cmp_name);
	merge_metrics(ns->ns_by_name, cur->ns_by_name, n, add, nm, cmp_name);
	qsort(add, nm, sizeof(*add), cmp_pmid);
	merge_metrics(ns->ns_by_pmid, cur->ns_by_pmid, n, add, nm, cmp_pmid);
	return ns;
}

struct registry *
reg_new(void)
{
	struct registry	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	pthread_mutex_init(&r->reg_writer, NULL);
	pthread_mutex_init(&r->reg_ptr_lock, NULL);
	if ((r->reg_cur = ns_build(NULL, 0, NULL, 0)) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
reg_free(struct registry *r)
{
	if (r == NULL)
		return;
	ns_release(r->reg_cur);
	pthread_mutex_destroy(&r->reg_writer);
	pthread_mutex_destroy(&r->reg_ptr_lock);
	free(r);
}

/* The current generation; caller calls ns_release(). */
struct ns *
reg_acquire(struct registry *r)
{
	struct ns	*ns;

	pthread_mutex_lock(&r->reg_ptr_lock);
	ns = r->reg_cur;
	atomic_fetch_add(&ns->ns_refs, 1);
	pthread_mutex_unlock(&r->reg_ptr_lock);
	return ns;
}

int
reg_type_propose(struct registry *r, pmID pmid, int type, int final,
    int *typep)
{
	struct ns	*ns = reg_acquire(r);
	struct metric	*m = ns_metric_by_pmid(ns, pmid);
	int		 open;

	if (m != NULL)
		open = metric_type_propose(m, type, final, typep);
	else {
		*typep = type;
		open = !final;
	}
	ns_release(ns);
	return open;
}

static void
reg_swap(struct registry *r, struct ns *next)
{
	struct ns	*old;

	pthread_mutex_lock(&r->reg_ptr_lock);
	old = r->reg_cur;
	r->reg_cur = next;
	pthread_mutex_unlock(&r->reg_ptr_lock);
	r->reg_gen++;
	ns_release(old);
}

unsigned long
reg_generation(struct registry *r)
{
	unsigned long	 g;

	pthread_mutex_lock(&r->reg_writer);
	g = r->reg_gen;
	pthread_mutex_unlock(&r->reg_writer);
	return g;
}

/* Is name in the subtree of leaf ("a.b.c" under "a.b")? */
static int
name_under(const char *name, const char *leaf)
{
	size_t	 n = strlen(leaf);

	return strncmp(name, leaf, n) == 0 && name[n] == '.';
}

/* Is any proper prefix of name ("a", "a.b" for "a.b.c") a metric? */
static int
ancestor_is_leaf(const struct ns *ns, const char *name)
{
	char	 buf[1024];
	size_t	 n = strlen(name);

	if (n >= sizeof(buf))
		return 1;
	memcpy(buf, name, n + 1);
	for (size_t i = 0; i < n; i++) {
		if (buf[i] != '.')
			continue;
		buf[i] = '\0';
		if (ns_metric_by_name(ns, buf) != NULL)
			return 1;
		buf[i] = '.';
	}
	return 0;
}

/*
 * Add metrics and indoms atomically. Duplicate names, PMIDs, indoms, or a
 * name that is a leaf where a subtree exists (or vice versa) fail the whole
 * add with nothing modified. The registry takes its own references; the
 * caller keeps (and drops) its own.
 */
int
reg_add(struct registry *r, struct metric **ms, size_t nm, struct indom **ids,
    size_t ni, char *err, size_t errlen)
{
	struct ns	*cur, *next = NULL;
	struct metric	**all = NULL;
	struct indom	**alli = NULL;
	int		 ret = -1;

	pthread_mutex_lock(&r->reg_writer);
	cur = r->reg_cur;
	for (size_t i = 0; i < nm; i++) {
		size_t	 lo;

		if (ns_metric_by_name(cur, ms[i]->m_name) ||
		    ns_metric_by_pmid(cur, ms[i]->m_pmid)) {
			seterr(err, errlen, "metric %s or its PMID is already "
			    "registered", ms[i]->m_name);
			goto done;
		}
		if (ns_prefix_range(cur, ms[i]->m_name, &lo) > 0 ||
		    ancestor_is_leaf(cur, ms[i]->m_name)) {
			seterr(err, errlen, "metric %s clashes with a PMNS "
			    "subtree or leaf", ms[i]->m_name);
			goto done;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(ms[i]->m_name, ms[j]->m_name) == 0 ||
			    ms[i]->m_pmid == ms[j]->m_pmid) {
				seterr(err, errlen, "duplicate metric %s",
				    ms[i]->m_name);
				goto done;
			}
			if (name_under(ms[i]->m_name, ms[j]->m_name) ||
			    name_under(ms[j]->m_name, ms[i]->m_name)) {
				seterr(err, errlen, "metric %s clashes with a "
				    "PMNS subtree or leaf", ms[i]->m_name);
				goto done;
			}
		}
	}
	for (size_t i = 0; i < ni; i++)
		if (ns_indom(cur, ids[i]->i_id)) {
			seterr(err, errlen, "indom %s is already registered",
			    pmInDomStr(ids[i]->i_id));
			goto done;
		}
	all = malloc(sizeof(*all) * (cur->ns_nmetrics + nm + 1));
	alli = malloc(sizeof(*alli) * (cur->ns_nindoms + ni + 1));
	if (all == NULL || alli == NULL) {
		seterr(err, errlen, "out of memory");
		goto done;
	}
	memcpy(all, cur->ns_by_name, sizeof(*all) * cur->ns_nmetrics);
	memcpy(all + cur->ns_nmetrics, ms, sizeof(*all) * nm);
	memcpy(alli, cur->ns_indoms, sizeof(*alli) * cur->ns_nindoms);
	if (ni > 0)	/* ids may be NULL: memcpy(p, NULL, 0) is UB */
		memcpy(alli + cur->ns_nindoms, ids, sizeof(*alli) * ni);
	if ((next = ns_build_add(cur, all, nm, alli, ni)) == NULL) {
		seterr(err, errlen, "out of memory");
		goto done;
	}
	reg_swap(r, next);
	ret = 0;
done:
	pthread_mutex_unlock(&r->reg_writer);
	free(all);
	free(alli);
	return ret;
}

/*
 * reg_add for a caller done with its metrics and indoms: it drops its
 * references to all of them whatever the outcome (NULL entries are
 * allowed: a failed metric_new or indom_new, then nothing is added).
 * A refused add is logged as "who: reason". Returns 0 or -1.
 */
int
reg_add_release(struct registry *r, struct metric **ms, size_t nm,
    struct indom **ids, size_t ni, const char *who)
{
	char	 err[256];
	int	 ret = -1;

	for (size_t i = 0; i < nm; i++)
		if (ms[i] == NULL)
			goto done;
	for (size_t i = 0; i < ni; i++)
		if (ids[i] == NULL)
			goto done;
	if (reg_add(r, ms, nm, ids, ni, err, sizeof(err)) == -1) {
		log_warnx("%s: %s", who, err);
		goto done;
	}
	ret = 0;
done:
	for (size_t i = 0; i < nm; i++)
		metric_unref(ms[i]);
	for (size_t i = 0; i < ni; i++)
		indom_unref(ids[i]);
	return ret;
}

/* Remove every metric and indom whose values come from src. */
int
reg_remove_source(struct registry *r, const struct source *src)
{
	struct ns	*cur, *next;
	struct metric	**keep;
	struct indom	**keepi;
	size_t		 nm = 0, ni = 0;
	int		 ret = -1;

	pthread_mutex_lock(&r->reg_writer);
	cur = r->reg_cur;
	keep = malloc(sizeof(*keep) * (cur->ns_nmetrics + 1));
	keepi = malloc(sizeof(*keepi) * (cur->ns_nindoms + 1));
	if (keep == NULL || keepi == NULL)
		goto done;
	for (size_t i = 0; i < cur->ns_nmetrics; i++)
		if (cur->ns_by_name[i]->m_src != src)
			keep[nm++] = cur->ns_by_name[i];
	for (size_t i = 0; i < cur->ns_nindoms; i++)
		if (cur->ns_indoms[i]->i_src != src)
			keepi[ni++] = cur->ns_indoms[i];
	if ((next = ns_build(keep, nm, keepi, ni)) == NULL)
		goto done;
	reg_swap(r, next);
	ret = 0;
done:
	pthread_mutex_unlock(&r->reg_writer);
	free(keep);
	free(keepi);
	return ret;
}

/* --- lookups on a generation (no locks: generations are immutable) --- */

/* how element i of one of a generation's sorted arrays compares with key */
typedef int (*ns_cmp_fn)(const struct ns *ns, size_t i, const void *key);

static int
ns_cmp_name(const struct ns *ns, size_t i, const void *key)
{
	return strcmp(ns->ns_by_name[i]->m_name, key);
}

static int
ns_cmp_pmid(const struct ns *ns, size_t i, const void *key)
{
	pmID	 p = ns->ns_by_pmid[i]->m_pmid, k = *(const pmID *)key;

	return p < k ? -1 : p > k;
}

static int
ns_cmp_indom(const struct ns *ns, size_t i, const void *key)
{
	pmInDom	 p = ns->ns_indoms[i]->i_id, k = *(const pmInDom *)key;

	return p < k ? -1 : p > k;
}

/* Binary search of [0, n) sorted by cmp: 1 with *at when key is there. */
static int
ns_search(const struct ns *ns, size_t n, ns_cmp_fn cmp, const void *key,
    size_t *at)
{
	size_t	 lo = 0, hi = n;

	while (lo < hi) {
		size_t	 mid = lo + (hi - lo) / 2;
		int	 c = cmp(ns, mid, key);

		if (c == 0) {
			*at = mid;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

struct metric *
ns_metric_by_name(const struct ns *ns, const char *name)
{
	size_t	 i;

	return ns_search(ns, ns->ns_nmetrics, ns_cmp_name, name, &i) ?
	    ns->ns_by_name[i] : NULL;
}

struct metric *
ns_metric_by_pmid(const struct ns *ns, pmID pmid)
{
	size_t	 i;

	return ns_search(ns, ns->ns_nmetrics, ns_cmp_pmid, &pmid, &i) ?
	    ns->ns_by_pmid[i] : NULL;
}

struct indom *
ns_indom(const struct ns *ns, pmInDom id)
{
	size_t	 i;

	return ns_search(ns, ns->ns_nindoms, ns_cmp_indom, &id, &i) ?
	    ns->ns_indoms[i] : NULL;
}

/*
 * Metrics strictly below the PMNS node "prefix" (names starting with
 * "prefix."), as a range [*lo, *lo + n) of ns_by_name. An empty prefix is
 * the root: every metric. Names sharing the prefix "prefix." are
 * contiguous in strcmp order, so one binary search finds the range.
 */
size_t
ns_prefix_range(const struct ns *ns, const char *prefix, size_t *lo)
{
	size_t	 plen = strlen(prefix), a = 0, b = ns->ns_nmetrics, first;

	*lo = 0;
	if (plen == 0)
		return ns->ns_nmetrics;
	/* lower bound of names >= "prefix." */
	while (a < b) {
		size_t		 mid = a + (b - a) / 2;
		const char	*n = ns->ns_by_name[mid]->m_name;
		int		 c = strncmp(n, prefix, plen);

		if (c == 0)
			c = (unsigned char)n[plen] - (unsigned char)'.';
		if (c < 0)
			a = mid + 1;
		else
			b = mid;
	}
	first = a;
	for (b = first; b < ns->ns_nmetrics; b++) {
		const char	*n = ns->ns_by_name[b]->m_name;

		if (strncmp(n, prefix, plen) != 0 || n[plen] != '.')
			break;
	}
	*lo = first;
	return b - first;
}

int
ns_is_nonleaf(const struct ns *ns, const char *name)
{
	size_t	 lo;

	return ns_prefix_range(ns, name, &lo) > 0;
}

/* --- type, semantics and units text, as pmproxy writes them --- */

const char *
bt_type_str(int type)
{
	switch (type) {
	case PM_TYPE_32:	return "32";
	case PM_TYPE_U32:	return "u32";
	case PM_TYPE_64:	return "64";
	case PM_TYPE_U64:	return "u64";
	case PM_TYPE_FLOAT:	return "float";
	case PM_TYPE_DOUBLE:	return "double";
	case PM_TYPE_STRING:	return "string";
	case PM_TYPE_AGGREGATE:	return "aggregate";
	case PM_TYPE_EVENT:	return "event";
	default:		return "unknown";
	}
}

const char *
bt_sem_str(int sem)
{
	switch (sem) {
	case PM_SEM_COUNTER:	return "counter";
	case PM_SEM_INSTANT:	return "instant";
	case PM_SEM_DISCRETE:	return "discrete";
	default:		return "unknown";
	}
}

void
bt_units_str(const pmUnits *u, char *out, size_t len)
{
	pmUnits	 copy = *u;

	if (pmUnitsStr_r(&copy, out, (int)len) == NULL || out[0] == '\0')
		snprintf(out, len, "none");
}
