/* SPDX-License-Identifier: MIT */
/*
 * derive_eval.c - the third stage of a derived metric (derive.c has the
 * overview): a bound tree and its operands' values give the result
 * values, computed in the descriptor's type as libpcp does; rate() takes
 * its operand's values of the previous fetch (struct dhist, which the
 * context keeps: context.c) and hands back this fetch's. Also the value
 * vectors (struct dvals) and histories these pass around.
 * Threads: HTTP workers, on immutable trees and on values each call
 * owns; context.c calls dhist_copy(), dhist_bytes() and dhist_free()
 * under its context table lock. Nothing here locks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "derive_int.h"


static double
as_double(int type, const union value *v)
{
	switch (type) {
	case PM_TYPE_32:
	case PM_TYPE_64:
		return (double)v->i;
	case PM_TYPE_U32:
	case PM_TYPE_U64:
		return (double)v->u;
	default:
		return v->d;
	}
}

/* convert to type t (integer to integer keeps the bits, as C does) */
static union value
conv(int from, const union value *v, int to, double mul)
{
	union value	 r;
	double		 d;

	if (mul == 1 && to != PM_TYPE_FLOAT && to != PM_TYPE_DOUBLE &&
	    from != PM_TYPE_FLOAT && from != PM_TYPE_DOUBLE) {
		r.u = v->u;
		return r;
	}
	d = as_double(from, v) * mul;
	if (to == PM_TYPE_FLOAT || to == PM_TYPE_DOUBLE)
		r.d = to == PM_TYPE_FLOAT ? (double)(float)d : d;
	else if (to == PM_TYPE_32 || to == PM_TYPE_64)
		r.i = isfinite(d) && fabs(d) < 9.2e18 ? (int64_t)d : 0;
	else
		r.u = isfinite(d) && d >= 0 && d < 1.8e19 ? (uint64_t)d : 0;
	return r;
}

static union value
apply(enum dop op, int type, union value a, union value b)
{
	union value	 r;

	switch (type) {
	case PM_TYPE_32:
	case PM_TYPE_U32:
	case PM_TYPE_64:
	case PM_TYPE_U64:
		/* unsigned arithmetic wraps; narrow to 32 bits where needed */
		r.u = op == D_ADD ? a.u + b.u : op == D_SUB ? a.u - b.u :
		    a.u * b.u;
		if (type == PM_TYPE_32)
			r.i = (int32_t)(uint32_t)r.u;
		else if (type == PM_TYPE_U32)
			r.u = (uint32_t)r.u;
		return r;
	default:
		if (op == D_DIV)	/* libpcp: 0 / x is 0, even 0 / 0 */
			r.d = a.d == 0 ? 0 : a.d / b.d;
		else
			r.d = op == D_ADD ? a.d + b.d : op == D_SUB ?
			    a.d - b.d : a.d * b.d;
		if (type == PM_TYPE_FLOAT)
			r.d = (double)(float)r.d;
		return r;
	}
}

void
dvals_free(struct dvals *v)
{
	free(v->dv_inst);
	free(v->dv_vals);
	memset(v, 0, sizeof(*v));
}

static int
dvals_alloc(struct dvals *v, int n, int with_inst)
{
	v->dv_n = 0;
	v->dv_vals = calloc((size_t)n + 1, sizeof(*v->dv_vals));
	v->dv_inst = with_inst ? calloc((size_t)n + 1, sizeof(uint32_t)) :
	    NULL;
	return v->dv_vals == NULL || (with_inst && v->dv_inst == NULL) ?
	    -1 : 0;
}

static int
find_inst(const struct dvals *v, uint32_t id, int hint)
{
	if (hint < v->dv_n && v->dv_inst[hint] == id)
		return hint;
	for (int i = 0; i < v->dv_n; i++)
		if (v->dv_inst[i] == id)
			return i;
	return -1;
}

/*
 * libpcp's rate() of one operand: per instance present now and in the
 * previous fetch, (now - prev) / dt, the difference taken in the
 * operand's own type, so a 32- or 64-bit counter that wrapped once still
 * gives its increase (unsigned modular arithmetic), then scaled by mul (a
 * time counter's unit to seconds). Instances new since the previous fetch
 * and vanished ones have no value; so has everything when dt <= 0 (the
 * clock stepped back: libpcp would divide by it).
 */
int
derive_rate(int type, const struct dvals *now, const struct dvals *prev,
    double dt, double mul, struct dvals *out)
{
	memset(out, 0, sizeof(*out));
	out->dv_type = PM_TYPE_DOUBLE;
	if (dvals_alloc(out, now->dv_n, now->dv_inst != NULL) == -1)
		return -1;
	if (!(dt > 0) || prev == NULL || prev->dv_vals == NULL ||
	    (now->dv_inst == NULL) != (prev->dv_inst == NULL))
		return 0;
	for (int i = 0; i < now->dv_n; i++) {
		union value	 a = now->dv_vals[i], b;
		double		 d;
		int		 j = 0;

		if (now->dv_inst && (j = find_inst(prev, now->dv_inst[i],
		    i)) < 0)
			continue;
		if (!now->dv_inst && prev->dv_n < 1)
			break;
		b = prev->dv_vals[j];
		switch (type) {
		case PM_TYPE_32:
			d = (double)(int32_t)((uint32_t)a.u - (uint32_t)b.u);
			break;
		case PM_TYPE_U32:
			d = (double)(uint32_t)((uint32_t)a.u - (uint32_t)b.u);
			break;
		case PM_TYPE_64:
			d = (double)(int64_t)(a.u - b.u);
			break;
		case PM_TYPE_U64:
			d = (double)(a.u - b.u);
			break;
		default:
			d = a.d - b.d;
			break;
		}
		if (now->dv_inst)
			out->dv_inst[out->dv_n] = now->dv_inst[i];
		out->dv_vals[out->dv_n++].d = d / dt * mul;
	}
	return 0;
}

/* one evaluation: the operand source and the rate() histories */
struct evalctx {
	derive_values_fn	 get;
	void			*arg;
	const struct dhist	*prev;	/* NULL: no previous fetch */
	struct dhist		*next;	/* NULL: not kept */
	const struct timespec	*stamp;
	int			 k;	/* the next rate() node's slot */
};

static int eval_node(const struct dexpr *, struct evalctx *, struct dvals *);

static int
dvals_copy(struct dvals *to, const struct dvals *from)
{
	memset(to, 0, sizeof(*to));
	to->dv_type = from->dv_type;
	if (dvals_alloc(to, from->dv_n, from->dv_inst != NULL) == -1) {
		dvals_free(to);
		return -1;
	}
	memcpy(to->dv_vals, from->dv_vals, (size_t)from->dv_n *
	    sizeof(*to->dv_vals));
	if (from->dv_inst)
		memcpy(to->dv_inst, from->dv_inst, (size_t)from->dv_n *
		    sizeof(*to->dv_inst));
	to->dv_n = from->dv_n;
	return 0;
}

/* rate(operand): the operand now against its slot of the previous fetch */
static int
eval_rate(const struct dexpr *n, struct evalctx *e, struct dvals *out)
{
	struct dvals		 cur;
	const struct dvals	*old = NULL;
	double			 dt = 0;
	int			 k = e->k++, ret;

	if (eval_node(n->d_l, e, &cur) == -1)
		return -1;
	if (e->prev && k < e->prev->dh_n && e->prev->dh_v[k].dv_vals) {
		old = &e->prev->dh_v[k];
		dt = (double)(e->stamp->tv_sec - e->prev->dh_stamp.tv_sec) +
		    (double)(e->stamp->tv_nsec - e->prev->dh_stamp.tv_nsec) /
		    1e9;
	}
	ret = derive_rate(n->d_l->d_desc.dd_type, &cur, old, dt, n->d_lmul,
	    out);
	if (e->next && k < e->next->dh_n) {
		dvals_free(&e->next->dh_v[k]);
		e->next->dh_v[k] = cur;		/* kept for the next fetch */
	} else {
		dvals_free(&cur);
	}
	return ret;
}

static int
eval_node(const struct dexpr *n, struct evalctx *e, struct dvals *out)
{
	struct dvals	 l = { 0 }, r = { 0 };
	const struct dvals *s, *o;
	int		 ret = -1, type = n->d_desc.dd_type;

	memset(out, 0, sizeof(*out));
	out->dv_type = type;
	switch (n->d_op) {
	case D_INT:
	case D_DBL:
		if (dvals_alloc(out, 1, 0) == -1)
			return -1;
		out->dv_n = 1;
		out->dv_vals[0] = n->d_num;
		return 0;
	case D_NAME:
		{
			const struct valset	*vs = e->get(e->arg, n->d_name);

			if (vs == NULL || (vs->vs_n <= 0 && vs->vs_err != 0))
				return -1;	/* no values: none derived */
			if (dvals_alloc(out, vs->vs_n, vs->vs_inst != NULL))
				return -1;
			for (int i = 0; i < vs->vs_n; i++) {
				out->dv_vals[i] = vs->vs_vals[i];
				if (vs->vs_inst)
					out->dv_inst[i] = vs->vs_inst[i];
			}
			out->dv_n = vs->vs_n > 0 ? vs->vs_n : 0;
			return 0;
		}
	case D_RATE:
		return eval_rate(n, e, out);
	case D_NEG:
		if (eval_node(n->d_l, e, &l) == -1)
			return -1;
		*out = l;
		out->dv_type = type;
		for (int i = 0; i < out->dv_n; i++) {
			union value	 v = conv(l.dv_type, &l.dv_vals[i],
					    type, 1);

			if (type == PM_TYPE_FLOAT || type == PM_TYPE_DOUBLE)
				v.d = -v.d;
			else if (type == PM_TYPE_32)
				v.i = (int32_t)(0u - (uint32_t)v.u);
			else
				v.u = 0 - v.u;
			out->dv_vals[i] = v;
		}
		return 0;
	default:
		break;
	}
	if (eval_node(n->d_l, e, &l) == -1 ||
	    eval_node(n->d_r, e, &r) == -1)
		goto done;
	{
		/* the instance side drives; two instance sides intersect */
		int	 opt = n->d_op == D_DIV ? PM_TYPE_DOUBLE : type;

		s = l.dv_inst || !r.dv_inst ? &l : &r;
		o = s == &l ? &r : &l;
		if (dvals_alloc(out, s->dv_n, s->dv_inst != NULL) == -1)
			goto done;
		for (int i = 0; i < s->dv_n; i++) {
			int		 j = 0;
			union value	 a, b;

			if (o->dv_inst) {
				if ((j = find_inst(o, s->dv_inst[i], i)) < 0)
					continue;
			} else if (o->dv_n < 1) {
				break;
			}
			a = s == &l ? l.dv_vals[i] : l.dv_vals[j];
			b = s == &l ? r.dv_vals[j] : r.dv_vals[i];
			a = conv(l.dv_type, &a, opt, n->d_lmul);
			b = conv(r.dv_type, &b, opt, n->d_rmul);
			if (s->dv_inst)
				out->dv_inst[out->dv_n] = s->dv_inst[i];
			out->dv_vals[out->dv_n++] = apply(n->d_op, opt, a, b);
		}
		if (!s->dv_inst && (l.dv_n < 1 || r.dv_n < 1))
			out->dv_n = 0;
		ret = 0;
	}
done:
	dvals_free(&l);
	dvals_free(&r);
	if (ret == -1)
		dvals_free(out);
	return ret;
}

/*
 * Evaluate a bound tree: 0 with the values (possibly none: an operand
 * had no instances), or -1 when an operand has no value at all.
 */
int
derive_eval(const struct dexpr *n, derive_values_fn get, void *arg,
    struct dvals *out)
{
	return derive_eval_hist(n, get, arg, NULL, NULL, NULL, out);
}

static int
rate_nodes(const struct dexpr *n)
{
	if (n == NULL)
		return 0;
	return (n->d_op == D_RATE) + rate_nodes(n->d_l) + rate_nodes(n->d_r);
}

void
dhist_free(struct dhist *h)
{
	for (int i = 0; h->dh_v && i < h->dh_n; i++)
		dvals_free(&h->dh_v[i]);
	free(h->dh_v);
	memset(h, 0, sizeof(*h));
}

/* what h holds on the heap (charged to its context) */
size_t
dhist_bytes(const struct dhist *h)
{
	size_t	 b = (size_t)h->dh_n * sizeof(*h->dh_v);

	for (int i = 0; h->dh_v && i < h->dh_n; i++)
		b += ((size_t)h->dh_v[i].dv_n + 1) * (sizeof(union value) +
		    (h->dh_v[i].dv_inst ? sizeof(uint32_t) : 0));
	return b;
}

int
dhist_copy(struct dhist *to, const struct dhist *from)
{
	memset(to, 0, sizeof(*to));
	if (from->dh_n == 0)
		return 0;
	if ((to->dh_v = calloc((size_t)from->dh_n, sizeof(*to->dh_v))) == NULL)
		return -1;
	to->dh_n = from->dh_n;
	to->dh_stamp = from->dh_stamp;
	for (int i = 0; i < from->dh_n; i++)
		if (from->dh_v[i].dv_vals &&
		    dvals_copy(&to->dh_v[i], &from->dh_v[i]) == -1) {
			dhist_free(to);
			return -1;
		}
	return 0;
}

/*
 * derive_eval() at time stamp with the rate() operands' values of the
 * previous fetch (prev, or NULL: none, rate() gives no values); with
 * next, also returns this fetch's for the next one (the caller frees it
 * with dhist_free(); dh_n 0: the tree has no rate()). Slots are the
 * rate() nodes in evaluation order.
 */
int
derive_eval_hist(const struct dexpr *n, derive_values_fn get, void *arg,
    const struct dhist *prev, struct dhist *next,
    const struct timespec *stamp, struct dvals *out)
{
	struct timespec	 zero = { 0, 0 };
	struct evalctx	 e = { get, arg, prev, next, stamp ? stamp : &zero,
			    0 };
	int		 nr;

	if (next) {
		memset(next, 0, sizeof(*next));
		next->dh_stamp = *e.stamp;
		if ((nr = rate_nodes(n)) > 0) {
			if ((next->dh_v = calloc((size_t)nr,
			    sizeof(*next->dh_v))) == NULL)
				return -2;
			next->dh_n = nr;
		}
	}
	return eval_node(n, &e, out);
}
