/* SPDX-License-Identifier: MIT */
/*
 * derive_bind.c - the second stage of a derived metric (derive.c has the
 * overview): a parsed tree bound against the namespace gets libpcp's
 * descriptor (type promotion, semantics, dimensions and scales, indom)
 * and the scale factors derive_eval.c applies; a rule it breaks is worded
 * as libpcp's "Semantic Error: ..." texts. Calls derive.c (the parser, to
 * bind a registered text), nothing else of the derived metrics.
 * Threads: HTTP workers; registered trees are shared and read only, so a
 * bound tree is always the caller's own copy. No locks.
 */
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "derive_int.h"


static int
arith(int type)
{
	return type >= PM_TYPE_32 && type <= PM_TYPE_DOUBLE;
}

static const int promote[6][6] = {
	{ PM_TYPE_32, PM_TYPE_U32, PM_TYPE_64, PM_TYPE_U64, PM_TYPE_FLOAT,
	  PM_TYPE_DOUBLE },
	{ PM_TYPE_U32, PM_TYPE_U32, PM_TYPE_64, PM_TYPE_U64, PM_TYPE_FLOAT,
	  PM_TYPE_DOUBLE },
	{ PM_TYPE_64, PM_TYPE_64, PM_TYPE_64, PM_TYPE_U64, PM_TYPE_FLOAT,
	  PM_TYPE_DOUBLE },
	{ PM_TYPE_U64, PM_TYPE_U64, PM_TYPE_U64, PM_TYPE_U64, PM_TYPE_FLOAT,
	  PM_TYPE_DOUBLE },
	{ PM_TYPE_FLOAT, PM_TYPE_FLOAT, PM_TYPE_FLOAT, PM_TYPE_FLOAT,
	  PM_TYPE_FLOAT, PM_TYPE_DOUBLE },
	{ PM_TYPE_DOUBLE, PM_TYPE_DOUBLE, PM_TYPE_DOUBLE, PM_TYPE_DOUBLE,
	  PM_TYPE_DOUBLE, PM_TYPE_DOUBLE },
};

/* every name resolves? -2 if one does not (pmproxy: registered, unbound) */
static int
names_known(const struct dexpr *n, derive_find_fn find, void *arg)
{
	if (n == NULL)
		return 0;
	if (n->d_op == D_NAME)
		return find(arg, n->d_name) ? 0 : -2;
	if (names_known(n->d_l, find, arg) < 0)
		return -2;
	return names_known(n->d_r, find, arg);
}

/* Bring operands with both dimensions non-zero to the larger scale. */
static void
map_scale(struct dexpr *n, int ldim, int rdim, int lsc, int rsc, int *outsc,
    int kind)
{
	static const double timef[] = { 1000, 1000, 1000, 60, 60 };
	double	 f = 1;
	int	 lo, hi;

	if (ldim == 0 || rdim == 0 || lsc == rsc)
		return;
	lo = lsc < rsc ? lsc : rsc;
	hi = lsc < rsc ? rsc : lsc;
	for (int i = lo; i < hi; i++)
		f *= kind == 0 ? 10 : kind == 1 ? (i >= 0 && i < 5 ?
		    timef[i] : 1) : 1024;
	if (lsc > rsc) {		/* left's scale wins; scale right */
		n->d_rmul *= rdim > 0 ? 1 / f : f;
	} else {			/* right's wins; libpcp's sign rule */
		*outsc = rsc;
		n->d_lmul *= (kind == 0 ? ldim : kind == 1 ? rdim : rdim) > 0 ?
		    1 / f : f;
	}
	n->d_desc.dd_type = PM_TYPE_DOUBLE;
}

static int bind_node(struct dexpr *, derive_find_fn, void *, const char **);

/*
 * libpcp's rate(): any arithmetic operand (a non-counter too), whose time
 * dimension is 0 (-> per second) or 1 (a time counter -> utilization, in
 * seconds per second); the result is an instant double with the time
 * dimension one lower, scale seconds (none when it is 0).
 */
static int
bind_rate(struct dexpr *n, derive_find_fn find, void *arg, const char **why)
{
	struct ddesc	*d = &n->d_desc;
	const pmUnits	*lu;
	double		 f = 1;

	if (bind_node(n->d_l, find, arg, why) < 0)
		return -1;
	lu = &n->d_l->d_desc.dd_units;
	if (!arith(n->d_l->d_desc.dd_type)) {
		*why = "Non-arithmetic operand for function";
		return -1;
	}
	if (lu->dimTime != 0 && lu->dimTime != 1) {
		*why = "Incorrect time dimension for operand";
		return -1;
	}
	*d = n->d_l->d_desc;
	d->dd_type = PM_TYPE_DOUBLE;
	d->dd_sem = PM_SEM_INSTANT;
	d->dd_units.dimTime--;
	d->dd_units.scaleTime = d->dd_units.dimTime == 0 ? 0 : PM_TIME_SEC;
	if (lu->dimTime == 1) {		/* operand's time unit -> seconds */
		for (int s = PM_TIME_SEC; s < (int)lu->scaleTime; s++)
			f *= 60;
		for (int s = (int)lu->scaleTime; s < PM_TIME_SEC; s++)
			f /= 1000;
	}
	n->d_lmul = f;
	return 0;
}

static int
bind_node(struct dexpr *n, derive_find_fn find, void *arg, const char **why)
{
	const struct ddesc	*l, *r;
	struct ddesc		*d = &n->d_desc;
	const struct metric	*m;
	pmUnits			*u = &d->dd_units;

	n->d_lmul = n->d_rmul = 1;
	switch (n->d_op) {
	case D_INT:
	case D_DBL:
		memset(d, 0, sizeof(*d));
		d->dd_type = n->d_op == D_INT ? PM_TYPE_U32 : PM_TYPE_DOUBLE;
		d->dd_sem = PM_SEM_DISCRETE;
		d->dd_indom = PM_INDOM_NULL;
		return 0;
	case D_NAME:
		if ((m = find(arg, n->d_name)) == NULL)
			return -2;
		d->dd_type = metric_describe(m);	/* the operand's type is kept */
		d->dd_sem = m->m_sem;
		d->dd_units = m->m_units;
		d->dd_indom = m->m_indom;
		return 0;
	case D_RATE:
		return bind_rate(n, find, arg, why);
	case D_NEG:
		if (bind_node(n->d_l, find, arg, why) < 0)
			return -1;
		if (!arith(n->d_l->d_desc.dd_type)) {
			*why = "Non-arithmetic operand for unary negation";
			return -1;
		}
		*d = n->d_l->d_desc;
		d->dd_sem = PM_SEM_INSTANT;
		if (d->dd_type == PM_TYPE_U32)
			d->dd_type = PM_TYPE_32;
		else if (d->dd_type == PM_TYPE_U64)
			d->dd_type = PM_TYPE_64;
		return 0;
	default:
		break;
	}
	if (bind_node(n->d_l, find, arg, why) < 0 ||
	    bind_node(n->d_r, find, arg, why) < 0)
		return -1;
	l = &n->d_l->d_desc;
	r = &n->d_r->d_desc;
	if (l->dd_sem == PM_SEM_COUNTER && r->dd_sem == PM_SEM_COUNTER) {
		if (n->d_op != D_ADD && n->d_op != D_SUB) {
			*why = "Illegal operator for counters";
			return -1;
		}
	} else if (l->dd_sem == PM_SEM_COUNTER) {
		if (n->d_op != D_MUL && n->d_op != D_DIV) {
			*why = "Illegal operator for counter and non-counter";
			return -1;
		}
	} else if (r->dd_sem == PM_SEM_COUNTER && n->d_op != D_MUL) {
		*why = "Illegal operator for non-counter and counter";
		return -1;
	}
	/* the descriptor of the left operand, unless it is a constant */
	*d = (n->d_l->d_op != D_INT && n->d_l->d_op != D_DBL) ? *l : *r;
	if (l->dd_sem != PM_SEM_COUNTER && r->dd_sem != PM_SEM_COUNTER)
		d->dd_sem = l->dd_sem == PM_SEM_DISCRETE &&
		    r->dd_sem == PM_SEM_DISCRETE ? PM_SEM_DISCRETE :
		    PM_SEM_INSTANT;
	if (!arith(l->dd_type)) {
		*why = "Non-arithmetic type for left operand";
		return -1;
	}
	if (!arith(r->dd_type)) {
		*why = "Non-arithmetic type for right operand";
		return -1;
	}
	d->dd_type = n->d_op == D_DIV ? PM_TYPE_DOUBLE :
	    promote[l->dd_type][r->dd_type];
	if ((n->d_op == D_ADD || n->d_op == D_SUB) &&
	    (l->dd_units.dimCount != r->dd_units.dimCount ||
	    l->dd_units.dimTime != r->dd_units.dimTime ||
	    l->dd_units.dimSpace != r->dd_units.dimSpace) &&
	    !(l->dd_units.dimTime == 0 && r->dd_units.dimTime == 0 &&
	    l->dd_units.dimSpace == 0 && r->dd_units.dimSpace == 0 &&
	    ((l->dd_units.dimCount == 0 && r->dd_units.dimCount == 1) ||
	    (l->dd_units.dimCount == 1 && r->dd_units.dimCount == 0)))) {
		*why = "Dimensions are not the same";
		return -1;
	}
	if (n->d_op == D_MUL || n->d_op == D_DIV) {
		const pmUnits	*lu = &l->dd_units, *ru = &r->dd_units;

		if (l->dd_sem == PM_SEM_COUNTER &&
		    r->dd_sem != PM_SEM_COUNTER &&
		    (ru->dimCount || ru->dimTime || ru->dimSpace)) {
			*why = "Non-counter and not dimensionless for right "
			    "operand";
			return -1;
		}
		if (l->dd_sem != PM_SEM_COUNTER &&
		    r->dd_sem == PM_SEM_COUNTER &&
		    (lu->dimCount || lu->dimTime || lu->dimSpace)) {
			*why = "Non-counter and not dimensionless for left "
			    "operand";
			return -1;
		}
	}
	{
		/* libpcp's map_units(): common scales, then dimensions */
		int	 sc = u->scaleCount, st = u->scaleTime,
			 ss = u->scaleSpace;

		map_scale(n, l->dd_units.dimCount, r->dd_units.dimCount,
		    l->dd_units.scaleCount, r->dd_units.scaleCount, &sc, 0);
		map_scale(n, l->dd_units.dimTime, r->dd_units.dimTime,
		    l->dd_units.scaleTime, r->dd_units.scaleTime, &st, 1);
		map_scale(n, l->dd_units.dimSpace, r->dd_units.dimSpace,
		    l->dd_units.scaleSpace, r->dd_units.scaleSpace, &ss, 2);
		u->scaleCount = sc;
		u->scaleTime = st;
		u->scaleSpace = ss;
		if (n->d_op == D_MUL || n->d_op == D_DIV) {
			int	 s = n->d_op == D_MUL ? 1 : -1;

			u->dimCount = l->dd_units.dimCount +
			    s * r->dd_units.dimCount;
			u->dimTime = l->dd_units.dimTime +
			    s * r->dd_units.dimTime;
			u->dimSpace = l->dd_units.dimSpace +
			    s * r->dd_units.dimSpace;
		}
		if (u->dimCount && !l->dd_units.dimCount)
			u->scaleCount = r->dd_units.scaleCount;
		if (u->dimTime && !l->dd_units.dimTime)
			u->scaleTime = r->dd_units.scaleTime;
		if (u->dimSpace && !l->dd_units.dimSpace)
			u->scaleSpace = r->dd_units.scaleSpace;
		if (!u->dimCount)
			u->scaleCount = 0;
		if (!u->dimTime)
			u->scaleTime = 0;
		if (!u->dimSpace)
			u->scaleSpace = 0;
	}
	if (l->dd_indom != PM_INDOM_NULL && r->dd_indom != PM_INDOM_NULL &&
	    l->dd_indom != r->dd_indom) {
		*why = "Operands should have the same instance domain";
		return -1;
	}
	d->dd_indom = l->dd_indom != PM_INDOM_NULL ? l->dd_indom :
	    r->dd_indom;
	return 0;
}

static struct dexpr *
tree_clone(const struct dexpr *n)
{
	struct dexpr	*c;

	if (n == NULL)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	*c = *n;
	c->d_name = NULL;
	c->d_l = c->d_r = NULL;
	if ((n->d_name && (c->d_name = strdup(n->d_name)) == NULL) ||
	    (n->d_l && (c->d_l = tree_clone(n->d_l)) == NULL) ||
	    (n->d_r && (c->d_r = tree_clone(n->d_r)) == NULL)) {
		derive_free(c);
		return NULL;
	}
	return c;
}

/*
 * Binds t, the caller's own tree, in place: 0 with *bound = t and its
 * descriptor in *out, or -1 with t freed (*why says which rule).
 */
static int
bind_own(struct dexpr *t, derive_find_fn find, void *arg,
    struct dexpr **bound, struct ddesc *out, const char **why)
{
	if (bind_node(t, find, arg, why) < 0) {
		derive_free(t);
		return -1;
	}
	*out = t->d_desc;
	*bound = t;
	return 0;
}

/*
 * Bind a registered tree against the current namespace. Registered trees
 * are shared between threads, so the bound form is a private copy that
 * the caller frees with derive_free(). Returns 0, -1 on a semantic error
 * (*why says which), -2 when an operand name is unknown, -3 no memory.
 */
int
derive_bind(const struct dexpr *n, derive_find_fn find, void *arg,
    struct dexpr **bound, struct ddesc *out, const char **why)
{
	struct dexpr	*c;

	*why = NULL;
	*bound = NULL;
	if (names_known(n, find, arg) < 0)
		return -2;
	if ((c = tree_clone(n)) == NULL)
		return -3;
	return bind_own(c, find, arg, bound, out, why);
}

/*
 * derive_bind() of a registered metric's text: parsed afresh and bound in
 * place, so the caller owns *bound. -3 also when the text does not parse
 * (it did when it was registered).
 */
int
derive_bind_text(const struct dmetric *dm, derive_find_fn find, void *arg,
    struct dexpr **bound, struct ddesc *out, const char **why)
{
	struct dexpr	*t;
	struct buf	 err;
	int		 rc;

	*why = NULL;
	*bound = NULL;
	buf_init(&err, DERIVE_ERR_MAX);
	rc = derive_parse(dm->dm_name, dm->dm_text, &t, &err);
	buf_free(&err);
	if (rc == -1)
		return -3;
	if (names_known(t, find, arg) < 0) {
		derive_free(t);
		return -2;
	}
	return bind_own(t, find, arg, bound, out, why);
}

void
derive_semantic_text(struct buf *err, const char *name, const char *expr,
    const char *why)
{
	buf_printf(err, "Semantic Error: pmAddDerivedMetric(\"%s\", ...)\n%s\n"
	    "^\n%s\n", name, expr, why);
}
