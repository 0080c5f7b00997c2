/* SPDX-License-Identifier: MIT */
/*
 * pcp.h - the pcp layer: the daemon as a client of pmcd (pmcd*.c: the
 * passthrough of the metrics bpftraced does not own) and as a PMDA of it
 * (pmda*.c: PMDA mode). libpcp's negative PM_ERR_* codes are this layer's
 * own vocabulary; the api layer turns pmcd_* failures into pmproxy's
 * answers. Above lib, store, registry, bpftrace and scripts; below http
 * and api.
 */
#ifndef BT_PCP_H
#define BT_PCP_H

#include <stddef.h>

#include <pcp/pmapi.h>

struct daemon_state;

/* ====================================================================
 * pmcd*.c: passthrough of the metrics bpftraced does not own to a pmcd
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

/* pmcd.c: the pool of contexts, its mode, the error text of its failures */
int		 pmcd_init(const char *host);
void		 pmcd_fini(void);
int		 pmcd_mode(void);
int		 pmcd_conn_error(int rc);
const char	*pmcd_error_text(void);
int		 pmcd_error_code(void);

/* pmcd_names.c: names, descriptors, help text, the namespace */
int		 pmcd_owned_name(const char *name);
int		 pmcd_name_ok(const char *name, int root);
int		 pmcd_lookup(const char *name, pmID *pmid, pmDesc *desc);
int		 pmcd_lookup_pmid(pmID pmid, char **namep, pmDesc *desc);
char		*pmcd_text(int indom, unsigned id, int help);
int		 pmcd_children(const char *prefix, char ***names,
		    int **status);
int		 pmcd_traverse(const char *prefix, char ***names, size_t *np);
void		 pmcd_names_free(char **v, size_t n);
int		 pmcd_names_of(pmID pmid, char ***namesp);

/* pmcd_values.c: fetch and store */
int		 pmcd_fetch(int n, pmID *pmids, pmResult **res);
int		 pmcd_store(const pmDesc *desc, const int *insts, size_t ninst,
		    const char *value, size_t len, char *err, size_t errlen);

/* pmcd_labels.c: labels and instance domains */
char		*pmcd_labels(int kind, pmID pmid, pmInDom indom);
int		 pmcd_indom(pmInDom indom, struct pmcd_indom *pi, int labels);
void		 pmcd_indom_free(struct pmcd_indom *pi);

/* a metric's label sets level by level, as pmproxy's /metrics uses them */
struct pmcd_levels {
	char	*context;	/* JSON object texts, "{}" without labels */
	char	*indom;		/* NULL: a singular metric */
	char	*item;
	int	 ninst;
	int	*inst_ids;
	char	**inst;		/* the instance inst_ids[i]'s own set */
};
int		 pmcd_label_levels(pmID pmid, pmInDom indom,
		    struct pmcd_levels *lv);
void		 pmcd_levels_free(struct pmcd_levels *lv);

/* ====================================================================
 * pmda.c: PMDA mode (its callbacks in pmda_*.c, pmda_int.h).
 * pmda_start() runs on the main thread before
 * privs_drop() (it binds and chowns the socket) and starts the PMDA
 * thread; pmda_stop() joins it. Every libpcp_pmda call happens on that
 * one thread. pmda_start: 0 running or off (auto), -1 fatal. Its client
 * contexts are PMDA_CTX_BIT ids (registry.h).
 * ==================================================================== */

int		 pmda_start(struct daemon_state *ds, char *err, size_t errlen);
void		 pmda_stop(void);
int		 pmda_active(void);

#endif /* BT_PCP_H */
