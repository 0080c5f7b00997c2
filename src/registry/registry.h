/* SPDX-License-Identifier: MIT */
/*
 * registry.h - the registry layer: the metric namespace and its values
 * (registry.c), a request's snapshots (snapcache.c), who may read which
 * values under --auth-reads (access.c), per-context derived metrics
 * (derive.c) and the REST client contexts (context.c). Also the store
 * contract (store_req, store_result) that the layers above implement
 * (scripts) and call (pcp, api).
 * Above lib and store; below bpftrace, scripts, pcp, http and api.
 */
#ifndef BT_REGISTRY_H
#define BT_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <pcp/pmapi.h>

#include "buf.h"
#include "memcap.h"

/* a pmUnits literal */
#define BT_UNITS(ds, dt, dc, ss, st, sc) \
	((pmUnits){ .dimSpace = (ds), .dimTime = (dt), .dimCount = (dc), \
	    .scaleSpace = (ss), .scaleTime = (st), .scaleCount = (sc) })

/*
 * Context ids: REST contexts (context.c) stay below this bit; the pmcd
 * client contexts of PMDA mode (pmda.c) have it set, so a store_req or
 * reader names either kind.
 */
#define PMDA_CTX_BIT		0x80000000u

/* ====================================================================
 * registry.c: the metric namespace and its values
 * ==================================================================== */

union value {
	int64_t		 i;
	uint64_t	 u;
	double		 d;
	const char	*s;
};

/* the values of one metric in one snapshot */
struct valset {
	int			 vs_n;		/* values present */
	int			 vs_err;	/* PM_ERR_* when no values */
	const uint32_t		*vs_inst;	/* NULL: singular */
	const union value	*vs_vals;
};

/* the instances of one instance domain in one snapshot */
struct instlist {
	int			 il_n;
	const uint32_t		*il_ids;
	const char *const	*il_names;
};

/*
 * One slot's values written out once (by api_pmapi.c, as the "instances"
 * JSON array of /pmapi/fetch) and kept with the snapshot they were
 * written from; sf_type is the metric type they were written for.
 */
struct snapfrag {
	int			 sf_type;	/* PM_TYPE_* */
	size_t			 sf_len;
	char			*sf_data;	/* owned */
};

#define SNAP_FRAG_VARIANTS	2	/* pmproxy, pmwebd (singular: -1) */

/*
 * Immutable once published; reference counted; owns an arena and holds
 * references on the shared blocks its sets and instance lists point in.
 * The one exception is s_frags, a write-once cache derived from the
 * values: each entry goes from NULL to a fragment at most once
 * (compare-and-swap, any thread, no lock) and is freed with the snapshot.
 */
struct snap {
	atomic_int		 s_refs;
	struct timespec		 s_ts;
	int			 s_nsets;
	struct valset		*s_sets;
	int			 s_nindoms;
	struct instlist		*s_indoms;
	struct arena		*s_arena;
	struct shblk		**s_held;
	int			 s_nheld, s_heldcap;
	_Atomic(struct snapfrag *) *s_frags;	/* [s_nsets][VARIANTS] */
};

struct source;
struct metric;
typedef struct snap *(*source_refresh_fn)(struct source *src, void *arg);

/* a store request, as the control paths see it */
struct store_req {
	uint32_t		 sr_ctx;	/* REST context id */
	const char		*sr_value;
	size_t			 sr_vlen;
	const char		*sr_peer;	/* client address text */
	const char		*sr_user;	/* authenticated user or NULL */
	unsigned		 sr_roles;	/* AUTH_ROLE_* of sr_user */
	int			 sr_loopback;	/* client on 127/8 or ::1 */
};
/*
 * What a store did; err (the store's char *, size_t) says why it did
 * not. Each dialect translates it once: api.c (HTTP status and pmwebd's
 * code), pmda_store.c (a PCP error code), both through
 * metric_store_pmcode().
 */
enum store_result {
	STORE_OK = 0,
	STORE_REFUSED,		/* bad value or request, the target's
				   refusal */
	STORE_NOT_ALLOWED,	/* no control from here (--control) */
	STORE_UNAUTHENTICATED,	/* --control=auth, nobody logged in */
	STORE_FORBIDDEN,	/* this principal may not */
	STORE_INTERNAL,		/* ours: the state database failed */
	STORE_NOMEM		/* --max-memory */
};
typedef enum store_result (*metric_store_fn)(struct metric *m,
    const struct store_req *sr, char *err, size_t errlen);
/* registry.c: a store's result as the PCP code pmcd passes on */
int	 metric_store_pmcode(enum store_result rv);
/*
 * Who reads a value: the principal of a fetch. Control answers go only to
 * the principal that stored them; with --auth-reads a script's private
 * values go only to its owner and admins (access.c).
 */
struct reader {
	uint32_t		 rd_ctx;	/* REST context id (or PMDA_CTX_BIT) */
	const char		*rd_user;	/* authenticated user or NULL */
	unsigned		 rd_roles;	/* AUTH_ROLE_* of rd_user */
	const char		*rd_peer;	/* client address text, no port */
};
/*
 * Per-reader value (e.g. the answer to this principal's last store): 0
 * with the text in the buf; 1: none of its own, the value is m_src's.
 */
typedef int (*metric_ctxval_fn)(struct metric *m, const struct reader *rd,
    struct buf *out);

/* A producer of values: the daemon itself, or one bpftrace script. */
struct source {
	atomic_int		 src_refs;
	pthread_mutex_t		 src_lock;	/* guards src_cur swap only */
	struct snap		*src_cur;
	source_refresh_fn	 src_refresh;	/* built per fetch if set */
	void			*src_arg;
	atomic_llong		 src_last_fetch; /* monotonic ms */
	char			*src_name;
	char			*src_owner;	/* set once before publishing;
						   NULL: readable by all */
};

struct metric {
	atomic_int		 m_refs;
	char			*m_name;
	pmID			 m_pmid;
	pmInDom			 m_indom;
	_Atomic uint32_t	 m_tword;	/* the PM_TYPE_* and MT_OPEN:
						   read it with metric_type()
						   or metric_describe() */
	int			 m_sem;		/* PM_SEM_* */
	pmUnits			 m_units;
	char			*m_oneline;
	char			*m_help;
	char			*m_labels;	/* JSON members, no braces */
	struct source		*m_src;
	int			 m_slot;	/* index into s_sets */
	metric_store_fn		 m_store;	/* NULL: not storable */
	metric_ctxval_fn	 m_ctxval;	/* NULL: value from m_src */
	void			*m_arg;
	int			 m_private;	/* MPRIV_*: --auth-reads */
	int			 m_owner_slot;	/* MPRIV_INST: owners' set */
};

/* who may read a metric's values under --auth-reads (access.c) */
#define MPRIV_NONE	0	/* everyone who may read at all */
#define MPRIV_SOURCE	1	/* the owner of m_src and admins */
#define MPRIV_INST	2	/* per instance: owners in set m_owner_slot */


struct indom {
	atomic_int		 i_refs;
	pmInDom			 i_id;
	char			*i_oneline;
	char			*i_help;
	struct source		*i_src;
	int			 i_slot;	/* index into s_indoms */
};

/* one immutable generation of the namespace */
struct ns {
	atomic_int		 ns_refs;
	size_t			 ns_nmetrics;
	struct metric		**ns_by_name;	/* sorted by name */
	struct metric		**ns_by_pmid;	/* sorted by pmid */
	size_t			 ns_nindoms;
	struct indom		**ns_indoms;	/* sorted by id */
};

struct registry;

struct registry	*reg_new(void);
void		 reg_free(struct registry *r);
struct ns	*reg_acquire(struct registry *r);
void		 ns_release(struct ns *ns);
int		 reg_add(struct registry *r, struct metric **ms, size_t nm,
		    struct indom **ids, size_t ni, char *err, size_t errlen);
int		 reg_add_release(struct registry *r, struct metric **ms,
		    size_t nm, struct indom **ids, size_t ni, const char *who);
int		 reg_remove_source(struct registry *r,
		    const struct source *src);
unsigned long	 reg_generation(struct registry *r);

struct metric	*ns_metric_by_name(const struct ns *ns, const char *name);
struct metric	*ns_metric_by_pmid(const struct ns *ns, pmID pmid);
struct indom	*ns_indom(const struct ns *ns, pmInDom id);
size_t		 ns_prefix_range(const struct ns *ns, const char *prefix,
		    size_t *lo);
int		 ns_is_nonleaf(const struct ns *ns, const char *name);

struct metric	*metric_new(const char *name, pmID pmid, pmInDom indom,
		    int type, int sem, pmUnits units, const char *oneline,
		    const char *help, const char *labels, struct source *src,
		    int slot);
void		 metric_unref(struct metric *m);

/*
 * A metric's type never changes once a client may have cached it. It is
 * fixed at metric_new, unless metric_type_open() leaves it to the data
 * (a script variable whose type the analysis cannot tell: the first
 * print decides). Lock story: m_tword is one atomic word (type | MT_OPEN);
 * only the one thread that feeds the metric's data proposes types
 * (metric_type_propose, a compare-and-swap that fails once the word is
 * fixed); every path that hands out a descriptor (a type to cache)
 * calls metric_describe, which fixes the word with a compare-and-swap and
 * returns the type it fixed. Fixed is final. Value readers call
 * metric_type after they hold the snapshot they read values from: a
 * proposal is made before the values of that type are published.
 */
#define MT_OPEN		0x10000u	/* the type may still be proposed */
int		 metric_type(const struct metric *m);
int		 metric_describe(const struct metric *m);
void		 metric_type_open(struct metric *m);
int		 metric_type_propose(struct metric *m, int type, int final,
		    int *typep);
/* metric_type_propose on the registered metric pmid (none: taken) */
int		 reg_type_propose(struct registry *r, pmID pmid, int type,
		    int final, int *typep);
struct indom	*indom_new(pmInDom id, const char *oneline, const char *help,
		    struct source *src, int slot);
void		 indom_unref(struct indom *in);

struct source	*source_new(const char *name, source_refresh_fn refresh,
		    void *arg);
void		 source_ref(struct source *src);
void		 source_unref(struct source *src);
struct snap	*source_snap(struct source *src);
void		 source_publish(struct source *src, struct snap *s);

struct snap	*snap_new(int nsets, int nindoms);
void		 snap_ref(struct snap *s);
void		 snap_release(struct snap *s);
void		*snap_alloc(struct snap *s, size_t n);
const char	*snap_strdup(struct snap *s, const char *str);
int		 snap_set1(struct snap *s, int slot, union value v);
int		 snap_set_str1(struct snap *s, int slot, const char *str);
int		 snap_set_values(struct snap *s, int slot, int n,
		    const uint32_t *inst, const union value *vals);
int		 snap_set_indom(struct snap *s, int slot, int n,
		    const uint32_t *ids, const char *const *names);
const struct instlist *snap_instances(const struct snap *s,
		    const struct indom *in);
/*
 * Shared blocks: immutable memory that successive snapshots of a source
 * point into instead of copying it each time (a map's instance names,
 * values that did not change). Filled once after shblk_new, then only
 * read. snap_hold gives s a reference; the _nocopy setters take pointers
 * into s's arena or into a block s holds.
 */
struct shblk	*shblk_new(size_t size);
void		*shblk_data(struct shblk *b);
void		 shblk_unref(struct shblk *b);
int		 snap_hold(struct snap *s, struct shblk *b);
int		 snap_set_values_nocopy(struct snap *s, int slot, int n,
		    const uint32_t *inst, const union value *vals);
int		 snap_set_indom_nocopy(struct snap *s, int slot, int n,
		    const uint32_t *ids, const char *const *names);
const struct snapfrag *snap_frag(const struct snap *s, int slot,
		    int variant);
const struct snapfrag *snap_frag_set(struct snap *s, int slot, int variant,
		    struct snapfrag *f);

const char	*bt_type_str(int type);
const char	*bt_sem_str(int sem);
void		 bt_units_str(const pmUnits *u, char *out, size_t len);

/* ====================================================================
 * snapcache.c: the snapshots one request reads (a fetch, a /metrics
 * scrape): one per source, taken when the request first needs it, so all
 * of a source's metrics in one answer come from the same snapshot. The
 * caller gives the slots; the cache lives on its stack for the request.
 * ==================================================================== */

struct snapcache_slot {
	struct source	*ss_src;
	struct snap	*ss_snap;
};

struct snapcache {
	struct snapcache_slot	*sc_slot;
	int			 sc_n, sc_max;
};

void		 snapcache_init(struct snapcache *c, struct snapcache_slot *slot,
		    int max);
/* src's snapshot (NULL when it has none), held until snapcache_release */
struct snap	*snapcache_get(struct snapcache *c, struct source *src);
void		 snapcache_release(struct snapcache *c);

/* ====================================================================
 * access.c: --auth-reads, who sees which values
 * ==================================================================== */

/*
 * auth_reads is the daemon's --auth-reads (cfg.auth_reads): without it
 * every reader sees every value.
 */
#define ACCESS_NONE	0
#define ACCESS_ALL	1
#define ACCESS_FILTER	2	/* some instances: access_filter() */
int		 access_owner_ok(int auth_reads, const char *owner,
		    const struct reader *rd);
int		 access_metric(int auth_reads, const struct metric *m,
		    const struct reader *rd);
int		 access_indom(int auth_reads, const struct indom *in,
		    const struct reader *rd);
int		 access_filter(const struct metric *m, const struct snap *s,
		    const struct valset *vs, const struct reader *rd,
		    int auth_reads, struct valset *out);
void		 access_filter_free(struct valset *vs);

/* ====================================================================
 * derive.c: per-context derived metrics
 * ==================================================================== */

/* libpcp's derived-metric constants and derive.c's own bounds */
#define DERIVE_MAX_EXPR		8192	/* bytes of one expression */
#define DERIVE_MAX_DEPTH	256	/* nesting of ( and unary - */
#define DERIVE_MAX_NODES	4096	/* operators and operands */
#define DERIVE_DOMAIN		511	/* libpcp's DYNAMIC_PMID */
#define DERIVE_PMID_FLAG	0x80000000u	/* libpcp's derived bit (u32) */

struct dexpr;

/* a derived metric's descriptor, as libpcp computes it */
struct ddesc {
	int		 dd_type;
	int		 dd_sem;
	pmUnits		 dd_units;
	pmInDom		 dd_indom;
};

/* values of an expression: singular (dv_inst NULL) or per instance */
struct dvals {
	int		 dv_type;
	int		 dv_n;
	uint32_t	*dv_inst;
	union value	*dv_vals;
};

/*
 * The rate() operands' values of one fetch of one derived metric, one
 * slot per rate() node (dv_vals NULL: none); the context keeps the last
 * one for the next fetch.
 */
struct dhist {
	struct timespec	 dh_stamp;	/* the fetch's timestamp */
	int		 dh_n;
	struct dvals	*dh_v;
};

/* one registered derived metric; immutable, reference counted */
struct dmetric {
	atomic_int	 dm_refs;
	char		*dm_name;
	char		*dm_text;	/* the expression as registered */
	pmID		 dm_pmid;
	int		 dm_dead;	/* semantic error: name kept, no value */
};

/* a context's derived metrics; immutable, replaced copy-on-write */
struct dset {
	atomic_int	 ds_refs;
	size_t		 ds_n;
	struct dmetric	**ds_v;		/* registration order */
};

/* the metric named name (NULL: none), for derive_bind */
typedef const struct metric *(*derive_find_fn)(void *arg, const char *name);
/* the values of the metric named name (NULL: none), for derive_eval */
typedef const struct valset *(*derive_values_fn)(void *arg,
    const char *name);

int		 derive_parse(const char *name, const char *expr,
		    struct dexpr **out, struct buf *err);
int		 derive_bind(const struct dexpr *n, derive_find_fn find,
		    void *arg, struct dexpr **bound, struct ddesc *out,
		    const char **why);
void		 derive_semantic_text(struct buf *err, const char *name,
		    const char *expr, const char *why);
int		 derive_eval(const struct dexpr *n, derive_values_fn get,
		    void *arg, struct dvals *out);
int		 derive_eval_hist(const struct dexpr *n, derive_values_fn get,
		    void *arg, const struct dhist *prev, struct dhist *next,
		    const struct timespec *stamp, struct dvals *out);
int		 derive_rate(int type, const struct dvals *now,
		    const struct dvals *prev, double dt, double mul,
		    struct dvals *out);
void		 dhist_free(struct dhist *h);
size_t		 dhist_bytes(const struct dhist *h);
int		 dhist_copy(struct dhist *to, const struct dhist *from);
int		 derive_is_name(const struct dexpr *n);
void		 derive_free(struct dexpr *n);
void		 dvals_free(struct dvals *v);
pmID		 derive_pmid(unsigned k);
int		 derive_bind_text(const struct dmetric *dm, derive_find_fn find,
		    void *arg, struct dexpr **bound, struct ddesc *out,
		    const char **why);
struct dmetric	*dmetric_new(const char *name, const char *expr, int dead);
void		 dmetric_unref(struct dmetric *dm);
struct dset	*dset_add(const struct dset *old, struct dmetric *dm);
void		 dset_release(struct dset *s);
const struct dmetric *dset_find(const struct dset *s, const char *name);

/* ====================================================================
 * context.c: REST client contexts (polltimeout expiry, profiles)
 * ==================================================================== */

/* Immutable instance profile of one context, shared by reference. */
struct profile;
struct ctxtab;

/* the limits of a context table; 0 per_peer: the whole table */
struct ctx_limits {
	size_t		 cl_max;		/* --max-contexts */
	size_t		 cl_per_peer;		/* --max-contexts-per-ip */
	size_t		 cl_derived_bytes;	/* --max-derived-bytes */
	size_t		 cl_profile_insts;	/* --max-profile-instances */
	struct memcap	*cl_mem;		/* NULL: not charged */
};

/*
 * What a context table operation did: the registry's words for it. The
 * api layer turns a refusal into the client's answer in one place
 * (api.c: ctx_refusal); other callers only test for CTX_OK.
 */
enum ctx_result {
	CTX_OK = 0,
	CTX_UNKNOWN = -1,	/* no such context (expired or never made) */
	CTX_FULL = -2,		/* no room: the table, or out of memory */
	CTX_DUP = -3,		/* derived name already in this context */
	CTX_LIMIT = -4,		/* --max-derived / --max-profile-instances */
	CTX_NOMEM = -5,		/* --max-memory reached */
	CTX_BYTES = -6		/* --max-derived-bytes reached */
};

struct ctxtab	*ctx_new(size_t max);
struct ctxtab	*ctx_new_limits(const struct ctx_limits *l);
void		 ctx_free(struct ctxtab *ct);
enum ctx_result	 ctx_create(struct ctxtab *ct, double timeout_s,
		    uint32_t *idp);
enum ctx_result	 ctx_create_for(struct ctxtab *ct, double timeout_s,
		    const char *peer, uint32_t *idp);
enum ctx_result	 ctx_use(struct ctxtab *ct, uint32_t id,
		    struct profile **profp, struct dset **dsetp);
void		 ctx_done(struct ctxtab *ct, uint32_t id);
uint64_t	 ctx_evictions(struct ctxtab *ct);
enum ctx_result	 ctx_derive_add(struct ctxtab *ct, uint32_t id,
		    struct dmetric *dm, size_t max);
enum ctx_result	 ctx_profile_change(struct ctxtab *ct, uint32_t id,
		    int add, pmInDom indom, const uint32_t *insts, size_t n);
enum ctx_result	 ctx_rate_get(struct ctxtab *ct, uint32_t id, pmID pmid,
		    struct dhist *out);
enum ctx_result	 ctx_rate_put(struct ctxtab *ct, uint32_t id, pmID pmid,
		    struct dhist *h);
int		 ctx_alive(struct ctxtab *ct, uint32_t id);
size_t		 ctx_gc(struct ctxtab *ct);
size_t		 ctx_count(struct ctxtab *ct);
size_t		 ctx_reclaim(struct ctxtab *ct, size_t want);
int		 profile_allows(const struct profile *p, pmInDom indom,
		    uint32_t inst);
int		 profile_allows_all(const struct profile *p, pmInDom indom);
void		 profile_release(struct profile *p);

#endif /* BT_REGISTRY_H */
