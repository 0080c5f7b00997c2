/* SPDX-License-Identifier: MIT */
/*
 * api.h - the api layer, the top of the request path: the dialects that
 * answer what http.c routes to them. The first part is what main puts in
 * the routes table (api_pmapi, api_metrics, api_ui) and the embedded web
 * page; the rest is what the /pmapi dialect files share and nothing
 * outside them uses: the per-request baton (struct api), the command
 * table's entries, and each file's cross-file functions. /metrics'
 * own (api_metrics.c, scrape_*.c) is in scrape.h.
 * Above every other layer but the top (main.c).
 *
 * Who calls whom (no file calls one above it in this list):
 *   api_pmapi.c   dispatch: the command table, the context of a request
 *   api_pmwebd.c  the "_"-prefixed commands (pmwebd's dialect)
 *   api_store.c   store, derive    api_pcstore.c  store to pmcd metrics
 *   api_fetch.c   fetch
 *   api_names.c   metric, indom, children, profile; derived visibility
 *   api_passthru.c  this request's metrics from pmcd (pcitem batch)
 *   api.c         parameters, JSON writing, both dialects' errors
 */
#ifndef BT_API_H
#define BT_API_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <pcp/pmapi.h>

#include "buf.h"
#include "daemon.h"
#include "http.h"
#include "registry.h"

/* ====================================================================
 * the routes main passes to httpd_start
 * ==================================================================== */

/* api_pmapi.c: /pmapi/ (the pmproxy and pmwebd dialects) */
int		 api_pmapi(struct httpreq *hr);

/* api_metrics.c: GET /metrics, Prometheus/OpenMetrics text */
int		 api_metrics(struct httpreq *hr);
int		 api_metrics_path(const char *path);	/* a scrape URL path */

/*
 * api_ui.c: the built-in web page ("/" and "/ui/<file>"), served from
 * ui_assets[], which src/lib/embed.sh generates from web/ui/ at build
 * time.
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

int		 api_ui(struct httpreq *hr);

/* ====================================================================
 * the /pmapi dialect files' own
 * ==================================================================== */

struct api;
typedef int (*api_fn)(struct api *a);

/* one command of a dialect's table, matched by prefix */
struct cmd {
	const char		*c_name;
	enum api_endpoint	 c_ep;
	int			 c_methods;	/* HTTP_GET | HTTP_POST */
	int			(*c_params_ok)(struct httpreq *hr);
	api_fn			 c_run;
	int			 c_flags;	/* CMD_* */
};
/* most labels one answer merges (agent + context + metric); more are
   written unsorted, as given */
#define API_MAX_LABELS	64

#define CMD_PMWEBD	0x01	/* pmwebd shapes and PMWEBD errors */
#define CMD_NOCTX	0x02	/* runs before/without context lookup */

struct pcbatch;

/* one request, from api_pmapi() to its answer */
struct api {
	struct httpreq		*a_hr;
	struct daemon_state	*a_ds;
	const struct cmd	*a_cmd;
	const char		*a_ctxstr;	/* from path or ?context= */
	uint32_t		 a_ctx;
	int			 a_held;	/* ctx_use()d: ctx_done() */
	unsigned		 a_status;	/* error status if not 400 */
	struct profile		*a_prof;
	struct dset		*a_dset;	/* this context's derived */
	struct ns		*a_ns;
	struct buf		 a_out;
	int			 a_pcmode;	/* PMCD_*, -1: not asked yet */
	int			 a_pcerr;	/* pmcd failed (pmcd_error_text) */
	struct pcbatch		*a_pcb;		/* pmcd metrics of this request */
	struct reader		 a_rd;		/* who asks (set with a_ctx) */
	char			 a_peer[64];	/* a_rd.rd_peer */
};

#define API_PMWEBD(a)	((a)->a_cmd && ((a)->a_cmd->c_flags & CMD_PMWEBD))

/* one pmcd metric a request uses: its descriptor, then its values */
struct pcitem {
	char		*name;
	pmID		 pmid;
	pmDesc		 desc;
	struct metric	 m;		/* descriptor view for derive_bind */
	int		 fetched;
	struct valset	 vs;
	uint32_t	*inst;
	union value	*vals;
	char		**strs;
	int		 nstrs;
};

/* --- api.c: parameters --- */
const char	*api_param(struct api *a, const char *key);
int		 api_ok_always(struct httpreq *hr);
int		 api_ok_fetch(struct httpreq *hr);
int		 api_ok_indom(struct httpreq *hr);
int		 api_ok_profile(struct httpreq *hr);
int		 api_ok_store(struct httpreq *hr);
int		 api_ok_derive(struct httpreq *hr);
/* a comma list as a NULL-terminated array (NULL: more than max, or no
   memory); free it with api_free_list() */
char		**api_split_list(const char *s, size_t *np, size_t max);
void		 api_free_list(char **v);
int		 api_too_many_names(struct api *a);
int		 api_parse_pmid(const char *s, pmID *out);
int		 api_parse_indom(const char *s, pmInDom *out);
int		 api_host_is_local(struct api *a, const char *spec);

/* --- api.c: JSON answers and errors --- */
void		 api_buf_init(struct api *a, struct buf *b);
int		 api_send_out(struct api *a, unsigned status);
int		 api_send_success(struct api *a);
int		 api_error_text(struct api *a, unsigned status, int with_ctx,
		    int pmcode, const char *msg);
int		 api_error(struct api *a, unsigned status, int with_ctx,
		    int pmcode, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));
/* an error whose code does not matter to pmwebd clients: -EINVAL */
#define api_error_inval(a, status, with_ctx, ...) \
	api_error((a), (status), (with_ctx), -EINVAL, __VA_ARGS__)
int		 api_error_pmwebd(struct httpreq *hr, unsigned status,
		    int code);
int		 api_store_error(struct api *a, enum store_result rv,
		    const char *what, const char *err);

/* what asked the context table (context.c); it words a refusal */
enum api_ctx_op {
	API_CTX_NEW,		/* a new context (/pmapi/context) */
	API_CTX_USE,		/* the context a request names */
	API_CTX_PROFILE,	/* a profile change; what: its expr */
	API_CTX_DERIVE,		/* a derived metric of the context */
	API_CTX_RATE		/* the rate() values a fetch keeps */
};
int		 api_ctx_error(struct api *a, enum api_ctx_op op,
		    enum ctx_result rc, const char *what, int with_ctx);
unsigned	 api_ctx_derive_error(struct api *a, enum ctx_result rc,
		    const char *name, struct buf *err);
void		 api_derive_text(struct buf *err, const char *name,
		    const char *why);
void		 api_put_head(struct api *a);
void		 api_put_pmid(struct api *a, pmID p);
void		 api_put_dpmid(struct api *a, pmID p);
void		 api_put_indom(struct api *a, pmInDom in);
void		 api_put_labels(struct api *a, const char *agent,
		    const char *extra);
void		 api_put_u64(struct buf *b, uint64_t u);
void		 api_put_value(struct buf *b, int type, const union value *v);

/* --- api_passthru.c: metrics read from pmcd, one batch per request --- */
int		 api_pcmode(struct api *a);
int		 api_pc_hides(struct api *a, const struct metric *m);
struct metric	*api_local_by_name(struct api *a, const char *name);
struct metric	*api_local_by_pmid(struct api *a, pmID pmid);
struct pcitem	*api_pc_by_name(struct api *a, const char *name);
struct pcitem	*api_pc_by_pmid(struct api *a, pmID pmid);
void		 api_pc_failed(struct api *a, int rc);
void		 api_pc_fetch(struct api *a);
int		 api_pc_error(struct api *a, int with_ctx);
void		 api_pcbatch_free(struct pcbatch *b);

/* --- api_names.c: metric, indom, children, profile --- */
const struct metric *api_derive_find(void *arg, const char *name);
const struct dmetric *api_derived_visible(struct api *a, const char *name,
		    struct ddesc *desc, struct dexpr **boundp);
int		 api_run_metric(struct api *a);
int		 api_run_indom(struct api *a);
int		 api_run_children(struct api *a);
int		 api_run_profile(struct api *a);

/* --- api_fetch.c --- */
int		 api_run_fetch(struct api *a);

/* --- api_store.c, api_pcstore.c --- */
int		 api_run_store(struct api *a);
int		 api_run_derive(struct api *a);
int		 api_pcstore(struct api *a, const char *name,
		    const struct store_req *sr, pmID pmid, int *ret);

/* --- api_pmwebd.c: the "_" commands, for api_pmapi.c's dispatch --- */
const struct cmd *api_pmwebd_lookup(const char *p);
const struct cmd *api_pmwebd_bad_url(void);
const struct cmd *api_pmwebd_context_form(struct httpreq *hr);

#endif /* BT_API_H */
