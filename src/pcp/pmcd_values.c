/* SPDX-License-Identifier: MIT */
/*
 * pmcd_values.c - values through pmcd: one pmFetch of a batch of pmids,
 * and a store of a value given as text, converted to the metric's type
 * (one pmStore for all the instances named). Each is one operation that
 * pmcd_run() (pmcd.c) runs on a pooled context; values are never cached.
 *
 * Threads: any request thread; no state of its own.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcp.h"
#include "pmcd_int.h"
#include "util.h"

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
	if ((rc = pmcd_run(op_fetch, &o)) < 0)
		return rc;
	*res = o.res;
	return 0;
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
		/* a number past the double range (ERANGE) is refused, as
		   is NaN (strtod's "nan" was taken before: no metric
		   wants it stored) */
		d = strtonum_d(text, -HUGE_VAL, HUGE_VAL, &errstr);
		if (errstr != NULL || errno != 0)
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
	if ((rc = pmcd_run(op_store, &o)) < 0 && rc != PMCD_ECONN)
		pmErrStr_r(rc, err, (int)errlen);
fail:
	free(vb);
	free(vs);
	free(res);
	free(text);
	return rc < 0 ? rc : 0;
}
