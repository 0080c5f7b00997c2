/* SPDX-License-Identifier: MIT */
/*
 * pmda_int.h - what the PMDA mode files of src/pcp/ share: pmcd's client
 * contexts (struct pctx) and the callbacks' state (pmda_cb), both
 * owned by pmda_ctx.c, and the callbacks pmda.c hands libpcp_pmda.
 * The calls run one way: pmda.c (thread, socket) -> pmda_fetch.c,
 * pmda_store.c -> pmda_meta.c -> pmda_ctx.c. The public pmda_* functions
 * are in pcp.h.
 */
#ifndef BT_PMDA_INT_H
#define BT_PMDA_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pcp/pmapi.h>
#include <pcp/pmda.h>

#include "auth.h"
#include "daemon.h"
#include "pcp.h"
#include "registry.h"

struct pctx {
	int		 pc_ctx;		/* pmcd's client context */
	uint32_t	 pc_id;			/* ours: PMDA_CTX_BIT | seq */
	int		 pc_has_uid, pc_has_pid;
	unsigned	 pc_uid, pc_pid;
	char		 pc_user[AUTH_NAME_MAX + 1];	/* SASL username */
	/* the principal (pmda_ctx_principal), worked out once */
	int		 pc_have_principal;
	char		 pc_puser[AUTH_NAME_MAX + 1];
	char		 pc_ppeer[96];
};

/*
 * The state of the PMDA callbacks (defined in pmda_ctx.c). pmda.c sets ds
 * before the PMDA thread starts, and pcp_uid when it makes the socket (on
 * the main thread before the PMDA thread exists, later on the PMDA thread
 * when it re-creates the socket); it resets the per-connection part when
 * pmcd goes and frees the rest when the thread ends. Everything below ds
 * and pcp_uid is the PMDA thread's alone.
 */
struct pmda_cb {
	struct daemon_state	*ds;
	uid_t			 pcp_uid;	/* PCP_USER's, for stores */
	int			 has_pcp_uid;
	/* PMDA thread only from here on */
	pmResult		*last;		/* the previous fetch answer */
	char			*text;		/* the previous help text */
	struct pctx		*ctxs;		/* pmcd's contexts */
	size_t			 nctxs, capctxs;
	uint32_t		 seq;		/* never repeats */
	unsigned long		 names_gen;	/* namespace the last fetch saw */
	int			 have_gen;	/* names_gen is set (this conn.) */
};
extern struct pmda_cb	 pmda_cb;

/* pmda_ctx.c: pmcd's client contexts and who each one is */
struct pctx	*pmda_ctx_lookup(int ctx, int create);
void		 on_pmda_end_context(int ctx);
int		 on_pmda_attribute(int ctx, int attr, const char *value,
		    int len, pmdaExt *pe);
void		 pmda_ctx_principal(const struct pctx *pc, char *user,
		    size_t ulen, char *peer, size_t plen);
unsigned	 pmda_ctx_roles(struct daemon_state *ds, const char *user);
const struct reader *pmda_ctx_reader(int ctx, struct reader *rd);

/* pmda_meta.c: descriptors, help text, instances, labels, the PMNS */
struct metric	*pmda_meta_metric(struct ns *ns, pmID pmid);
int		 pmda_meta_desc(pmID pmid, pmDesc *d, pmdaExt *pe);
int		 pmda_meta_text(int ident, int type, char **buffer,
		    pmdaExt *pe);
int		 pmda_meta_instance(pmInDom indom, int inst, char *name,
		    pmInResult **resp, pmdaExt *pe);
int		 pmda_meta_label(int ident, int type, pmLabelSet **lp,
		    pmdaExt *pe);
int		 pmda_meta_pmid(const char *name, pmID *pmid, pmdaExt *pe);
int		 pmda_meta_name(pmID pmid, char ***names, pmdaExt *pe);
int		 pmda_meta_children(const char *name, int traverse,
		    char ***kids, int **status, pmdaExt *pe);

/* pmda_fetch.c */
int		 pmda_fetch(int n, pmID *pmids, pmResult **resp, pmdaExt *pe);

/* pmda_store.c */
int		 pmda_store(pmResult *res, pmdaExt *pe);

#endif /* BT_PMDA_INT_H */
