/* SPDX-License-Identifier: MIT */
/*
 * bpftraced.h - the shared internal header: structs and cross-file
 * prototypes, grouped by the file that defines them (the named limits
 * are in bt_limits.h).
 */
#ifndef BPFTRACED_H
#define BPFTRACED_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <pcp/pmapi.h>

#include "buf.h"
#include "log.h"
#include "memcap.h"
#include "origin.h"
#include "util.h"
#include "bt_limits.h"

/* libpcp's derived-metric constants and derive.c's own bounds */
#define DERIVE_MAX_EXPR		8192	/* bytes of one expression */
#define DERIVE_MAX_DEPTH	256	/* nesting of ( and unary - */
#define DERIVE_MAX_NODES	4096	/* operators and operands */
#define DERIVE_DOMAIN		511	/* libpcp's DYNAMIC_PMID */
#define DERIVE_PMID_FLAG	0x80000000u	/* libpcp's derived bit (u32) */

/* ---- units helper ---- */
#define BT_UNITS(ds, dt, dc, ss, st, sc) \
	((pmUnits){ .dimSpace = (ds), .dimTime = (dt), .dimCount = (dc), \
	    .scaleSpace = (ss), .scaleTime = (st), .scaleCount = (sc) })

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
typedef struct snap *(*source_refresh_fn)(struct source *, void *);

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
 * code), pmda.c (a PCP error code).
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
typedef int (*metric_ctxval_fn)(struct metric *, const struct reader *,
    struct buf *);

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
void		 reg_free(struct registry *);
struct ns	*reg_acquire(struct registry *);
void		 ns_release(struct ns *);
int		 reg_add(struct registry *, struct metric **, size_t,
		    struct indom **, size_t, char *, size_t);
int		 reg_add_release(struct registry *r, struct metric **ms,
		    size_t nm, struct indom **ids, size_t ni, const char *who);
int		 reg_remove_source(struct registry *, const struct source *);
unsigned long	 reg_generation(struct registry *);

struct metric	*ns_metric_by_name(const struct ns *, const char *);
struct metric	*ns_metric_by_pmid(const struct ns *, pmID);
struct indom	*ns_indom(const struct ns *, pmInDom);
size_t		 ns_prefix_range(const struct ns *, const char *, size_t *);
int		 ns_is_nonleaf(const struct ns *, const char *);

struct metric	*metric_new(const char *, pmID, pmInDom, int, int, pmUnits,
		    const char *, const char *, const char *, struct source *,
		    int);
void		 metric_unref(struct metric *);

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
int		 metric_type(const struct metric *);
int		 metric_describe(const struct metric *);
void		 metric_type_open(struct metric *);
int		 metric_type_propose(struct metric *, int type, int final,
		    int *typep);
/* metric_type_propose on the registered metric pmid (none: taken) */
int		 reg_type_propose(struct registry *, pmID, int type, int final,
		    int *typep);
struct indom	*indom_new(pmInDom, const char *, const char *,
		    struct source *, int);
void		 indom_unref(struct indom *);

struct source	*source_new(const char *, source_refresh_fn, void *);
void		 source_ref(struct source *);
void		 source_unref(struct source *);
struct snap	*source_snap(struct source *);
void		 source_publish(struct source *, struct snap *);

struct snap	*snap_new(int, int);
void		 snap_ref(struct snap *);
void		 snap_release(struct snap *);
void		*snap_alloc(struct snap *, size_t);
const char	*snap_strdup(struct snap *, const char *);
int		 snap_set1(struct snap *, int, union value);
int		 snap_set_str1(struct snap *, int, const char *);
int		 snap_set_values(struct snap *, int, int, const uint32_t *,
		    const union value *);
int		 snap_set_indom(struct snap *, int, int, const uint32_t *,
		    const char *const *);
const struct instlist *snap_instances(const struct snap *, const struct indom *);
/*
 * Shared blocks: immutable memory that successive snapshots of a source
 * point into instead of copying it each time (a map's instance names,
 * values that did not change). Filled once after shblk_new, then only
 * read. snap_hold gives s a reference; the _nocopy setters take pointers
 * into s's arena or into a block s holds.
 */
struct shblk	*shblk_new(size_t);
void		*shblk_data(struct shblk *);
void		 shblk_unref(struct shblk *);
int		 snap_hold(struct snap *, struct shblk *);
int		 snap_set_values_nocopy(struct snap *, int, int, const uint32_t *,
		    const union value *);
int		 snap_set_indom_nocopy(struct snap *, int, int, const uint32_t *,
		    const char *const *);
const struct snapfrag *snap_frag(const struct snap *, int, int);
const struct snapfrag *snap_frag_set(struct snap *, int, int,
		    struct snapfrag *);

const char	*bt_type_str(int);
const char	*bt_sem_str(int);
void		 bt_units_str(const pmUnits *, char *, size_t);

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
void		 access_filter_free(struct valset *);

/* ====================================================================
 * derive.c: per-context derived metrics
 * ==================================================================== */

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

typedef const struct metric *(*derive_find_fn)(void *, const char *);
typedef const struct valset *(*derive_values_fn)(void *, const char *);

int		 derive_parse(const char *, const char *, struct dexpr **,
		    struct buf *);
int		 derive_bind(const struct dexpr *, derive_find_fn, void *,
		    struct dexpr **, struct ddesc *, const char **);
void		 derive_semantic_text(struct buf *, const char *,
		    const char *, const char *);
int		 derive_eval(const struct dexpr *, derive_values_fn, void *,
		    struct dvals *);
int		 derive_eval_hist(const struct dexpr *, derive_values_fn,
		    void *, const struct dhist *, struct dhist *,
		    const struct timespec *, struct dvals *);
int		 derive_rate(int, const struct dvals *, const struct dvals *,
		    double, double, struct dvals *);
void		 dhist_free(struct dhist *);
size_t		 dhist_bytes(const struct dhist *);
int		 dhist_copy(struct dhist *, const struct dhist *);
int		 derive_is_name(const struct dexpr *);
void		 derive_free(struct dexpr *);
void		 dvals_free(struct dvals *);
pmID		 derive_pmid(unsigned);
int		 derive_bind_text(const struct dmetric *, derive_find_fn,
		    void *, struct dexpr **, struct ddesc *, const char **);
struct dmetric	*dmetric_new(const char *, const char *, int);
void		 dmetric_unref(struct dmetric *);
struct dset	*dset_add(const struct dset *, struct dmetric *);
void		 dset_release(struct dset *);
const struct dmetric *dset_find(const struct dset *, const char *);

/* ====================================================================
 * pmcd.c: passthrough of the metrics bpftraced does not own to a pmcd
 * ==================================================================== */

#define PMCD_NONE	0	/* off, or no local pmcd found (yet) */
#define PMCD_UP		1
#define PMCD_DOWN	2	/* configured or found, not answering now */
#define PMCD_ECONN	(-100001)	/* pmcd unreachable: pmcd_error_text() */
#define PMCD_NAME_MAX	1024	/* longer names are unknown, never sent */
#define PMCD_FETCH_MAX	1024	/* pmids per pmFetch: pmcd's PDU limit */
#define PMCD_LABELS_METRIC	0
#define PMCD_LABELS_INDOM	1
#define PMCD_LABELS_INSTANCES	2
#define PMCD_LABELS_CONTEXT	3	/* the context's alone */

/* the instances of one pmcd instance domain */
struct pmcd_indom {
	int	 pi_n;
	int	*pi_ids;
	char	**pi_names;	/* one block (pmGetInDom) */
	char	**pi_labels;	/* merged JSON objects, or NULL */
};

int		 pmcd_init(const char *);
void		 pmcd_fini(void);
int		 pmcd_mode(void);
int		 pmcd_owned_name(const char *);
int		 pmcd_name_ok(const char *, int);
int		 pmcd_conn_error(int);
const char	*pmcd_error_text(void);
int		 pmcd_error_code(void);
int		 pmcd_lookup(const char *, pmID *, pmDesc *);
int		 pmcd_lookup_pmid(pmID, char **, pmDesc *);
char		*pmcd_text(int, unsigned, int);
char		*pmcd_labels(int, pmID, pmInDom);
int		 pmcd_indom(pmInDom, struct pmcd_indom *, int);
void		 pmcd_indom_free(struct pmcd_indom *);
int		 pmcd_children(const char *, char ***, int **);
int		 pmcd_traverse(const char *, char ***, size_t *);
void		 pmcd_names_free(char **, size_t);
int		 pmcd_fetch(int, pmID *, pmResult **);
int		 pmcd_store(const pmDesc *, const int *, size_t,
		    const char *, size_t, char *, size_t);
int		 pmcd_names_of(pmID, char ***);

/* a metric's label sets level by level, as pmproxy's /metrics uses them */
struct pmcd_levels {
	char	*context;	/* JSON object texts, "{}" without labels */
	char	*indom;		/* NULL: a singular metric */
	char	*item;
	int	 ninst;
	int	*inst_ids;
	char	**inst;		/* the instance inst_ids[i]'s own set */
};
int		 pmcd_label_levels(pmID, pmInDom, struct pmcd_levels *);
void		 pmcd_levels_free(struct pmcd_levels *);

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

struct ctxtab	*ctx_new(size_t);
struct ctxtab	*ctx_new_limits(const struct ctx_limits *);
void		 ctx_free(struct ctxtab *);
int		 ctx_create(struct ctxtab *, double, uint32_t *);
int		 ctx_create_for(struct ctxtab *, double, const char *,
		    uint32_t *);
int		 ctx_use(struct ctxtab *, uint32_t, struct profile **,
		    struct dset **);
void		 ctx_done(struct ctxtab *, uint32_t);
uint64_t	 ctx_evictions(struct ctxtab *);
int		 ctx_derive_add(struct ctxtab *, uint32_t, struct dmetric *,
		    size_t);
int		 ctx_profile_change(struct ctxtab *, uint32_t, int, pmInDom,
		    const uint32_t *, size_t);
int		 ctx_rate_get(struct ctxtab *, uint32_t, pmID, struct dhist *);
int		 ctx_rate_put(struct ctxtab *, uint32_t, pmID, struct dhist *);
int		 ctx_alive(struct ctxtab *, uint32_t);
size_t		 ctx_gc(struct ctxtab *);
size_t		 ctx_count(struct ctxtab *);
size_t		 ctx_reclaim(struct ctxtab *ct, size_t want);
int		 profile_allows(const struct profile *, pmInDom, uint32_t);
int		 profile_allows_all(const struct profile *, pmInDom);
void		 profile_release(struct profile *);

#define CTX_OK		0
#define CTX_UNKNOWN	(-1)
#define CTX_FULL	(-2)
#define CTX_DUP		(-3)	/* derived name already in this context */
#define CTX_LIMIT	(-4)	/* --max-derived / --max-profile-instances */
#define CTX_NOMEM	(-5)	/* --max-memory reached */
#define CTX_BYTES	(-6)	/* --max-derived-bytes reached */

/* ====================================================================
 * selfmetrics.c: the daemon's own metrics
 * ==================================================================== */

enum api_endpoint {
	EP_CONTEXT, EP_METRIC, EP_FETCH, EP_INDOM, EP_CHILDREN, EP_PROFILE,
	EP_STORE, EP_DERIVE, EP_OTHER, EP_COUNT
};

struct selfstats {
	atomic_ullong	st_requests[EP_COUNT];
	atomic_ullong	st_errors;
	atomic_ullong	st_bytes_out;
	atomic_ullong	st_refused[REFUSE_COUNT];	/* origin.h reasons */
};

struct daemon_state;
struct httpd;
struct scripts;
struct auth_db;
struct store;
struct evloop;
int		 self_register(struct daemon_state *);
const char	*ep_name(enum api_endpoint);

/* ====================================================================
 * bpftraced.c / config.c: daemon-wide state
 * ==================================================================== */

struct listen_addr {
	char	la_spec[128];
};

struct config {
	struct listen_addr	 listen[BT_MAX_LISTEN];
	int			 nlisten;
	char			*state_dir;
	char			*bpftrace_path;
	int			 log_level;
	int			 http_threads;
	size_t			 max_body;
	size_t			 max_url;	/* --max-url-bytes */
	unsigned		 max_connections;
	unsigned		 max_conn_per_ip;
	size_t			 max_contexts;
	size_t			 max_contexts_per_ip;
	unsigned		 max_polltimeout;	/* seconds */
	size_t			 max_derived_bytes;	/* per context */
	size_t			 max_profile_instances;	/* per context */
	size_t			 max_regex_steps;	/* per instance name */
	size_t			 max_derived;	/* per context */
	size_t			 max_memory;	/* --max-memory */
	unsigned		 idle_timeout;
	unsigned		 request_timeout; /* seconds; 0: none */
	size_t			 max_names;	/* names=/pmids= per request */
	size_t			 max_answer;	/* bytes of one answer */
	int			 check_only;
	int			 control;	/* CONTROL_OFF/_LOOPBACK */
	unsigned		 max_scripts;
	size_t			 max_script_bytes;
	size_t			 max_control_answer;	/* bytes */
	size_t			 max_output_rate;
	size_t			 max_line;
	size_t			 max_instances;
	unsigned		 script_expiry;	/* seconds; 0: never */
	unsigned		 print_interval_ms;
	unsigned		 stop_timeout_ms;
	char			**scripts;	/* --script FILE, at start */
	int			 nscripts;
	char			*scripts_dir;	/* --scripts-dir: *.bt at start */
	char			*auth_file;
	int			 auth_reads;	/* reads need credentials too */
	unsigned		 max_scripts_per_user;
	size_t			 max_audit_rows;	/* 0: keep all */
	char			*tls_cert;
	char			*tls_key;
	char			*tls_priority;	/* GnuTLS priority string */
	int			 allow_plain_auth; /* auth on plain non-loopback */
	unsigned		 auth_threads;
	unsigned		 auth_queue;
	unsigned		 auth_fail_rate;	/* a minute; 0: no limit */
	size_t			 auth_fail_addrs;
	unsigned		 audit_rate;	/* rows a minute */
	unsigned		 audit_rows;	/* rows kept */
	int			 pmda;		/* PMDA_AUTO/_ON/_OFF */
	char			*pmda_socket;	/* NULL: $PCP_RUN_DIR/... */
	char			*pmcd_host;	/* --pmcd; NULL: local if it answers */
	char			**allow_origins; /* --allow-origin, exact */
	int			 nallow_origins;
	char			**allow_hosts;	/* --allow-host, for Host */
	int			 nallow_hosts;
};

#define PMDA_AUTO		0
#define PMDA_ON			1
#define PMDA_OFF		2

#define CONTROL_OFF		0
#define CONTROL_LOOPBACK	1
#define CONTROL_AUTH		2

struct daemon_state {
	struct config		 cfg;
	struct registry		*reg;
	struct ctxtab		*ctx;
	struct selfstats	 stats;
	struct memcap		 mem;		/* --max-memory; atomics */
	struct source		*self_src;
	struct timespec		 start_mono;
	struct timespec		 start_real;
	char			 hostname[256];
	char			 machineid[64];
	char			 domainname[256];
	char			 source_id[41];	/* sha1 hex of our source */
	char			*ctx_labels;	/* JSON members, no braces */
	/* bpftrace --version runs in the background (btversion.c): the
	   text is written once, before bt_state leaves BT_VERSION_PENDING */
	char			 bpftrace_version[64];	/* "" when missing */
	atomic_int		 bt_state;	/* BT_VERSION_* */
	pthread_t		 bt_thread;
	int			 bt_thread_started;	/* main thread only */
	void			(*bt_on_done)(struct daemon_state *);
						/* the version thread calls it
						   when done (main wires it) */
	char			 pcp_version[32];	/* libpcp's */
	atomic_int		 nscripts;
	atomic_int		 nrunning;
	struct scripts		*scripts;
	struct evloop		*loop;
	struct store		*store;		/* state database */
	pthread_mutex_t		 auth_lock;	/* guards the auth pointer swap */
	struct auth_db		*auth;		/* --auth-file, or NULL */
	struct origin_policy	 origin;	/* points into cfg; read-only */
	struct httpd		*httpd;		/* set by httpd_start() */
};

int	 config_defaults(struct config *);
int	 config_parse_args(struct config *, int, char **);
void	 config_free(struct config *);

/*
 * pmda.c: PMDA mode. pmda_start() runs on the main thread before
 * privs_drop() (it binds and chowns the socket) and starts the PMDA
 * thread; pmda_stop() joins it. Every libpcp_pmda call happens on that
 * one thread. pmda_start: 0 running or off (auto), -1 fatal.
 */
int	 pmda_start(struct daemon_state *, char *, size_t);
void	 pmda_stop(void);
int	 pmda_active(void);
/* pmcd client contexts as store_req/m_ctxval ids; REST ids stay below */
#define PMDA_CTX_BIT		0x80000000u

/* notify.c: sd_notify(3) over $NOTIFY_SOCKET, without libsystemd */
int	 notify_open(void);
void	 notify_send(const char *);
void	 notify_close(void);

/* privs.c */
int	 privs_drop(int);	/* 1: keep what PMDA mode needs */

/* btversion.c */
#define BT_VERSION_PENDING	0	/* bpftrace --version still running */
#define BT_VERSION_KNOWN	1
#define BT_VERSION_MISSING	2	/* not found or did not run */
int	 bt_detect_version(const char *, char *const [], char *, size_t,
	    char *, size_t);
void	 bt_version_start(struct daemon_state *ds, int wait,
	    void (*on_done)(struct daemon_state *ds));
void	 bt_version_join(struct daemon_state *);
int	 bt_version_state(const struct daemon_state *);
const char *bt_version(const struct daemon_state *);
int	 bt_version_at_least(const char *v, int major, int minor);

/* ====================================================================
 * http.c + api_pmapi.c
 * ==================================================================== */

struct MHD_Connection;
struct hconn;

/* one parsed HTTP request, as the API layers see it */
struct httpreq {
	struct daemon_state	*hr_ds;
	struct MHD_Connection	*hr_conn;
	const char		*hr_method;
	int			 hr_http10;	/* request was HTTP/1.0 */
	int			 hr_authed;	/* hr_user holds a checked user */
	char			 hr_user[65];
	unsigned		 hr_roles;
	const char		*hr_path;	/* decoded, without query */
	struct params		 hr_params;	/* query + form body */
	const char		*hr_body;	/* raw body (POST), or NULL */
	size_t			 hr_bodylen;
	struct hconn		*hr_hc;		/* its connection, or NULL */
	size_t			*hr_held;	/* answer bytes charged to
						   ds->mem until the request
						   ends, or NULL */
};

#define HTTP_GET	0x01
#define HTTP_POST	0x02

/*
 * The routes table main passes to httpd_start, matched in order (by
 * prefix, the whole path when rt_exact, or rt_match instead of both); a
 * NULL rt_handler ends it.
 */
struct http_route {
	const char	*rt_prefix;
	int		(*rt_handler)(struct httpreq *hr);
	int		 rt_exact;	/* the whole path, not a prefix */
	int		(*rt_match)(const char *path);	/* instead of both */
};

struct http_options {
	const struct http_route	*ho_routes;
	/*
	 * A request failed authentication (bad user or password): path
	 * decoded, body the raw request body (NULL: none), tried the user
	 * name given, why the reason. On a libmicrohttpd thread; NULL: none.
	 */
	void	(*ho_login_failed)(struct httpreq *hr, const char *path,
		    const char *body, size_t bodylen, const char *tried,
		    const char *why);
};

struct httpd;
struct httpd	*httpd_start(struct daemon_state *ds,
		    const struct http_options *opts, char *err, size_t errlen);
void		 httpd_stop(struct httpd *h);
int		 http_form_body(struct httpreq *hr);
/* a --listen spec: "ADDR:PORT", "[V6ADDR]:PORT", "*:PORT" or "PORT" */
int		 http_parse_listen(const char *spec, struct sockaddr_storage *ss,
		    socklen_t *sslen, char *err, size_t errlen);
int		 http_reply(struct httpreq *, unsigned, const char *, char *,
		    size_t);
int		 http_reply_buf(struct httpreq *, unsigned, const char *,
		    struct buf *);
int		 http_reply_memcap(struct httpreq *);
int		 http_reply_html(struct httpreq *, unsigned, const char *,
		    const char *);
int		 http_reply_options(struct httpreq *, int);
const char	*http_header(struct httpreq *, const char *);
int		 http_peer(struct httpreq *, char *, size_t);
int		 http_reply_error(struct httpreq *, unsigned, const char *);

/* an extra response header for http_reply_static() */
struct http_hdr {
	const char	*hh_name;
	const char	*hh_value;
};
int		 http_reply_static(struct httpreq *, unsigned, const void *,
		    size_t, const struct http_hdr *, size_t);

/*
 * api_ui.c: the built-in web page ("/" and "/ui/<file>"), served from
 * ui_assets[], which src/ui_embed.sh generates from web/ui/ at build time.
 */
struct ui_asset {
	const char		*ua_name;	/* basename, served as /ui/<name> */
	const unsigned char	*ua_data;
	size_t			 ua_len;
	const char		*ua_etag;	/* quoted: "\"crc-size\"" */
};
extern const struct ui_asset	ui_assets[];
extern const size_t		ui_nassets;

#define UI_INDEX	"index.html"	/* what "/" serves */

int		 api_ui(struct httpreq *);

/* api_metrics.c: GET /metrics, Prometheus/OpenMetrics text */
int		 api_metrics(struct httpreq *);
int		 api_metrics_path(const char *);	/* a scrape URL path */
const struct ui_asset *ui_asset_find(const char *);

/* api_pmapi.c: /pmapi/ (the pmproxy and pmwebd dialects; api.h) */
int		 api_pmapi(struct httpreq *);


/* ====================================================================
 * sup.c: bpftrace child processes
 * ==================================================================== */

struct child {
	pid_t		 ch_pid;		/* -1: none */
	int		 ch_out, ch_err;	/* non-blocking pipes, -1 closed */
	int		 ch_reaped;
	int		 ch_exit_code;		/* 128+sig when killed */
	int		 ch_signal;
};

typedef void	 (*sup_line_fn)(void *, const char *, size_t, int);
/* bpftrace: an absolute path (execve, no $PATH search); envp: its
   environment (spawnenv_envp()) */
int		 sup_spawn(struct child *, const char *, char *const [],
		    const char *, size_t, int, char *, size_t);
int		 sup_signal(struct child *, int);
int		 sup_reap(struct child *);
ssize_t		 sup_read_lines(int, struct buf *, size_t, sup_line_fn,
		    void *);
void		 sup_split_lines(struct buf *, const char *, size_t,
		    sup_line_fn, void *);
void		 sup_close(struct child *);

/* ====================================================================
 * scripts.c + info.c + control.c: registered scripts, their lifecycle,
 * metrics (lowest first; main wires them)
 * ==================================================================== */

enum script_status {
	SCRIPT_STOPPED, SCRIPT_STARTING, SCRIPT_STARTED, SCRIPT_STOPPING,
	SCRIPT_ERROR
};

/*
 * How scripts.c reports to the layers above it; main registers them
 * (each may be NULL). sh_changed: a script changed (now: clients must
 * see it at once), ss_lock held, any thread. sh_tick_locked: the end of
 * every tick, ss_lock held; sh_tick: after it, without the lock. Main
 * thread.
 */
struct scripts_hooks {
	void	(*sh_changed)(struct scripts *ss, int now);
	void	(*sh_tick_locked)(struct scripts *ss);
	void	(*sh_tick)(struct scripts *ss);
};

/* scripts.c */
int		 scripts_init(struct daemon_state *ds,
		    const struct scripts_hooks *hooks);
void		 scripts_fini(struct daemon_state *ds);
void		 scripts_tick(struct scripts *ss);
void		 scripts_wake(struct scripts *ss);	/* any thread */
void		 scripts_on_sigchld(struct scripts *ss);
void		 scripts_shutdown(struct scripts *ss, int timeout_ms);

/* info.c */
int		 info_init(struct scripts *ss);
void		 info_fini(struct scripts *ss);
void		 info_changed(struct scripts *ss, int now);
void		 info_publish(struct scripts *ss, int now);
void		 info_tick(struct scripts *ss);
void		 info_refresh_tracepoints(struct scripts *ss);

/* control.c */
int		 control_init(struct scripts *ss);
void		 control_fini(struct scripts *ss);
void		 control_tick(struct scripts *ss);
int		 control_restore(struct scripts *ss);
int		 control_autostart(struct scripts *ss, const char *path);
int		 control_autostart_dir(struct scripts *ss, const char *dir);
void		 control_audit_login(struct scripts *ss, const char *peer,
		    const char *user, const char *item, const char *why);
/* who may store to bpftrace.control.* and, passed through, to pmcd */
enum store_result control_store_allowed(const struct daemon_state *ds,
		    const struct store_req *sr, char *err, size_t errlen);

#endif /* BPFTRACED_H */
