/* SPDX-License-Identifier: MIT */
/*
 * pmda_store.c - the PMDA's store callback: a pmStore from a pmcd client
 * (pmstore, pmproxy) goes to the metric's m_store as a REST store does,
 * with the value as text and the client as the principal (see "Who may
 * store" in pmda.c); the result comes back as a PCP code
 * (metric_store_pmcode). It calls pmda_meta.c (which metric) and
 * pmda_ctx.c (who is asking).
 *
 * Threads: the PMDA thread; no state of its own. m_store takes
 * control.c's own locks, exactly as a REST store does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "daemon.h"
#include "log.h"
#include "pmda_int.h"
#include "registry.h"

/* a pmStore value as text: the number printed, or the string itself */
static int
store_text(const pmValueSet *vs, char *num, size_t numlen, const char **v,
    size_t *vlen)
{
	const pmValueBlock	*vb;
	pmAtomValue		 av;

	if (vs->numval != 1)
		return vs->numval < 0 ? vs->numval : PM_ERR_BADSTORE;
	if (vs->valfmt == PM_VAL_INSITU) {
		snprintf(num, numlen, "%d", vs->vlist[0].value.lval);
		*v = num;
		*vlen = strlen(num);
		return 0;
	}
	vb = vs->vlist[0].value.pval;
	if (vb == NULL || vb->vlen < (unsigned)PM_VAL_HDR_SIZE)
		return PM_ERR_BADSTORE;
	switch (vb->vtype) {
	case PM_TYPE_STRING:
		*v = vb->vbuf;
		*vlen = strnlen(vb->vbuf, vb->vlen - PM_VAL_HDR_SIZE);
		return 0;
	case PM_TYPE_64:
	case PM_TYPE_U64:
	case PM_TYPE_DOUBLE:
		if (vb->vlen < PM_VAL_HDR_SIZE + sizeof(int64_t))
			return PM_ERR_BADSTORE;
		memcpy(&av, vb->vbuf, sizeof(int64_t));
		if (vb->vtype == PM_TYPE_64)
			snprintf(num, numlen, "%lld", (long long)av.ll);
		else if (vb->vtype == PM_TYPE_U64)
			snprintf(num, numlen, "%llu", (unsigned long long)av.ull);
		else
			snprintf(num, numlen, "%.17g", av.d);
		*v = num;
		*vlen = strlen(num);
		return 0;
	default:
		return PM_ERR_TYPE;
	}
}

int
pmda_store(pmResult *res, pmdaExt *pe)
{
	struct daemon_state	*ds = pmda_cb.ds;
	struct pctx		*pc = pmda_ctx_lookup(pe->e_context, 1);
	struct ns		*ns;
	char			 user[AUTH_NAME_MAX + 1] = "", peer[96];
	char			 num[64], err[1024];
	int			 rv = 0;

	if (pc == NULL)
		return -ENOMEM;
	log_debug("pmda: store in context %d (uid %s%u, pid %s%u, user %s)",
	    pc->pc_ctx, pc->pc_has_uid ? "" : "none ", pc->pc_uid,
	    pc->pc_has_pid ? "" : "none ", pc->pc_pid, pc->pc_user);
	pmda_ctx_principal(pc, user, sizeof(user), peer, sizeof(peer));
	ns = reg_acquire(ds->reg);
	for (int i = 0; i < res->numpmid && rv == 0; i++) {
		const pmValueSet	*vs = res->vset[i];
		struct metric		*m = pmda_meta_metric(ns, vs->pmid);
		struct store_req	 sr;

		if (m == NULL) {
			rv = PM_ERR_PMID;
			break;
		}
		if (m->m_store == NULL) {
			rv = PM_ERR_PERMISSION;
			break;
		}
		memset(&sr, 0, sizeof(sr));
		if ((rv = store_text(vs, num, sizeof(num), &sr.sr_value,
		    &sr.sr_vlen)) != 0)
			break;
		sr.sr_ctx = pc->pc_id;
		sr.sr_peer = peer;
		sr.sr_user = user[0] ? user : NULL;
		sr.sr_loopback = pc->pc_has_pid && !(pmda_cb.has_pcp_uid &&
		    pc->pc_uid == (unsigned)pmda_cb.pcp_uid);
		if (sr.sr_user && ds->cfg.control == CONTROL_AUTH)
			sr.sr_roles = pmda_ctx_roles(ds, sr.sr_user);
		err[0] = '\0';
		rv = metric_store_pmcode(m->m_store(m, &sr, err, sizeof(err)));
		if (rv != 0)
			log_info("pmda: store to %s by %s (%s) refused: %s",
			    m->m_name, user[0] ? user : "anonymous", peer, err);
	}
	ns_release(ns);
	return rv;
}
