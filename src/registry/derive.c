/* SPDX-License-Identifier: MIT */
/*
 * derive.c - per-context derived metrics (/pmapi/derive), as pmproxy
 * 6.0.3 and libpcp's pmAddDerivedMetric() define them, restricted to the
 * arithmetic subset: + - * / unary minus, parentheses, numeric constants
 * and metric names, plus rate(NAME) over the context's previous fetch.
 *
 * Three stages, each a pure function of immutable inputs:
 *   derive_parse()  text -> tree; syntax errors worded and positioned as
 *                   libpcp's bison parser words them ("Syntax Error: ...").
 *   derive_bind()   tree + a name lookup -> descriptor (type, sem, units,
 *                   indom) with libpcp's type promotion, semantics and
 *                   dimension rules; "Semantic Error: ..." texts.
 *   derive_eval()   tree + descriptor + operand values -> result values,
 *                   computed in the descriptor's type as libpcp does.
 *                   derive_eval_hist() also takes the rate() operands'
 *                   values of the previous fetch (struct dhist, kept by
 *                   the context: context.c) and returns this fetch's.
 * Plus the per-context set: immutable, reference counted, replaced
 * copy-on-write under the context table lock (context.c).
 * Threads: everything here runs in HTTP workers on immutable data.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "registry.h"

enum dop { D_INT, D_DBL, D_NAME, D_NEG, D_ADD, D_SUB, D_MUL, D_DIV,
	D_RATE };

struct dexpr {
	enum dop	 d_op;
	union value	 d_num;		/* D_INT (u) / D_DBL (d) */
	char		*d_name;	/* D_NAME */
	struct dexpr	*d_l, *d_r;
	/* filled by derive_bind(): each node's descriptor and scaling */
	struct ddesc	 d_desc;
	double		 d_lmul, d_rmul; /* operand scale factors */
	/* D_RATE: d_lmul scales a time counter's rate to seconds/second */
};

/* ---- lexer ---- */

enum tok { T_EOS, T_INT, T_DBL, T_NAME, T_PLUS, T_MINUS, T_STAR, T_SLASH,
	T_LP, T_RP, T_RATE, T_UNSUP, T_ERR };

struct parser {
	const char	*s;
	size_t		 len;
	size_t		 pos;		/* next unread byte */
	enum tok	 t;		/* current token */
	long		 tstart;	/* its offset; EOS: len - 1 */
	size_t		 tlen;
	const char	*lexmsg;	/* T_ERR / T_UNSUP reason */
	int		 first;		/* current token is the first one */
	const char	*frames[2 * DERIVE_MAX_DEPTH + 8];
	int		 nframes;
	int		 depth;
	int		 nodes;
	int		 failed;
	long		 erroff;
	const char	*errmsg;	/* NULL: no reason line */
	char		 unsup[128];
};

/* libpcp's function names: "name(" is a function call there */
static const char *const pcp_funcs[] = {
	"anon", "avg", "count", "defined", "delta", "instant", "matchinst",
	"max", "min", "mkconst", "rate", "rescale", "scalar", "sum", NULL
};

static void
lex(struct parser *p)
{
	const char	*s = p->s;
	size_t		 i;
	char		 c;

	p->first = p->tstart == -2;
	while (p->pos < p->len && isspace((unsigned char)s[p->pos]))
		p->pos++;
	p->lexmsg = NULL;
	if (p->pos >= p->len) {
		p->t = T_EOS;
		p->tstart = (long)p->len - 1;	/* libpcp: last byte */
		p->tlen = 0;
		return;
	}
	i = p->pos;
	p->tstart = (long)i;
	c = s[i];
	if (isdigit((unsigned char)c) || c == '.') {
		int	 dbl = c == '.';

		while (++i < p->len && (isdigit((unsigned char)s[i]) ||
		    (!dbl && s[i] == '.')))
			if (s[i] == '.')
				dbl = 1;
		p->tlen = i - p->pos;
		p->pos = i;
		if (dbl) {
			p->t = T_DBL;
			return;
		}
		p->t = T_INT;
		/* 10 digits max once leading zeros are gone */
		{
			size_t	 k = (size_t)p->tstart, n = p->tlen;
			uint64_t v = 0;

			while (n > 1 && s[k] == '0')
				k++, n--;
			for (size_t j = 0; j < n && v <= 0xffffffffULL; j++)
				v = v * 10 + (uint64_t)(s[k + j] - '0');
			if (v > 0xffffffffULL) {
				p->t = T_ERR;
				p->lexmsg = "Constant value too large";
			}
		}
		return;
	}
	if (isalpha((unsigned char)c)) {
		while (++i < p->len && (isalnum((unsigned char)s[i]) ||
		    s[i] == '_' || s[i] == '.'))
			;
		p->tlen = i - p->pos;
		p->pos = i;
		p->t = T_NAME;
		if (i < p->len && s[i] == '(' && p->tlen == 4 &&
		    strncmp(s + p->tstart, "rate", 4) == 0) {
			p->t = T_RATE;
			return;
		}
		if (i < p->len && s[i] == '(')
			for (int f = 0; pcp_funcs[f]; f++)
				if (strlen(pcp_funcs[f]) == p->tlen &&
				    strncmp(pcp_funcs[f], s + p->tstart,
				    p->tlen) == 0) {
					snprintf(p->unsup, sizeof(p->unsup),
					    "Function %s() is not supported by "
					    "bpftraced", pcp_funcs[f]);
					p->t = T_UNSUP;
					p->lexmsg = p->unsup;
				}
		return;
	}
	p->pos = i + 1;
	p->tlen = 1;
	switch (c) {
	case '+': p->t = T_PLUS; return;
	case '-': p->t = T_MINUS; return;
	case '*': p->t = T_STAR; return;
	case '/': p->t = T_SLASH; return;
	case '(': p->t = T_LP; return;
	case ')': p->t = T_RP; return;
	case '<': case '>': case '!': case '?': case ':': case '[': case '"':
	case '=': case '&': case '|':
		{
			char	 op[3] = { c, 0, 0 };
			char	 n = p->pos < p->len ? s[p->pos] : 0;

			if (c == '=' && n != '=') {
				/* libpcp: a token no rule takes, no reason */
				p->t = T_ERR;
				return;
			}
			if ((c == '&' && n != '&') || (c == '|' && n != '|'))
				break;		/* libpcp: Illegal character */
			if ((strchr("<>!=", c) && n == '=') ||
			    (c == '&' && n == '&') || (c == '|' && n == '|')) {
				op[1] = n;
				p->pos++;
				p->tlen = 2;
			}
			snprintf(p->unsup, sizeof(p->unsup), "Operator '%s' is "
			    "not supported by bpftraced (only + - * / and "
			    "parentheses)", op);
			p->t = T_UNSUP;
			p->lexmsg = p->unsup;
			return;
		}
	default:
		break;
	}
	p->t = T_ERR;
	p->lexmsg = "Illegal character";
}

/* ---- parser: recursive descent with libpcp's error recovery texts ---- */

void
derive_free(struct dexpr *n)
{
	if (n == NULL)
		return;
	derive_free(n->d_l);
	derive_free(n->d_r);
	free(n->d_name);
	free(n);
}

/*
 * Fail at the current token. The reason is the lexer's (bad character,
 * constant too large), else the innermost error rule still open, as bison
 * would pop states to it; a rule-less error has no reason line.
 */
static struct dexpr *
fail(struct parser *p, const char *why)
{
	if (p->failed)
		return NULL;
	p->failed = 1;
	p->erroff = p->tstart;
	if (p->lexmsg)
		p->errmsg = p->lexmsg;
	else if (why)
		p->errmsg = why;
	else
		p->errmsg = p->nframes ? p->frames[p->nframes - 1] : NULL;
	return NULL;
}

static void
push(struct parser *p, const char *msg)
{
	if (p->nframes < (int)(sizeof(p->frames) / sizeof(p->frames[0])))
		p->frames[p->nframes++] = msg;
}

static struct dexpr *
mknode(struct parser *p, enum dop op, struct dexpr *l, struct dexpr *r)
{
	struct dexpr	*n;

	if (++p->nodes > DERIVE_MAX_NODES ||
	    (n = calloc(1, sizeof(*n))) == NULL) {
		derive_free(l);
		derive_free(r);
		return fail(p, "Expression too large");
	}
	n->d_op = op;
	n->d_l = l;
	n->d_r = r;
	return n;
}

static struct dexpr *parse_sum(struct parser *);
static struct dexpr *parse_product(struct parser *);

/*
 * rate(NAME): libpcp 6.0.3 takes a metric name only (not an expression,
 * a constant or another function); anything else fails at the offending
 * token with its "L_RATE L_LPAREN error" rule's text.
 */
static struct dexpr *
parse_rate(struct parser *p)
{
	static const char why[] = "Metric name expected to follow rate(";
	struct dexpr	*n, *arg;

	lex(p);				/* the '(' the lexer saw */
	lex(p);
	if (p->t != T_NAME)
		return fail(p, why);
	if ((arg = mknode(p, D_NAME, NULL, NULL)) == NULL)
		return NULL;
	if ((arg->d_name = strndup(p->s + p->tstart, p->tlen)) == NULL) {
		derive_free(arg);
		return fail(p, "Out of memory");
	}
	lex(p);
	if (p->t != T_RP) {
		derive_free(arg);
		return fail(p, why);
	}
	if ((n = mknode(p, D_RATE, arg, NULL)) == NULL)
		return NULL;
	lex(p);
	return n;
}

static int
too_deep(struct parser *p)
{
	if (++p->depth <= DERIVE_MAX_DEPTH)
		return 0;
	p->lexmsg = NULL;
	fail(p, "Expression nested too deeply");
	return 1;
}

static struct dexpr *
parse_primary(struct parser *p)
{
	struct dexpr	*n;

	switch (p->t) {
	case T_INT:
	case T_DBL:
		if ((n = mknode(p, p->t == T_INT ? D_INT : D_DBL, NULL,
		    NULL)) == NULL)
			return NULL;
		{
			char	 tmp[64];
			size_t	 l = p->tlen < sizeof(tmp) - 1 ? p->tlen :
				    sizeof(tmp) - 1;

			memcpy(tmp, p->s + p->tstart, l);
			tmp[l] = '\0';
			if (n->d_op == D_INT)
				n->d_num.u = strtoull(tmp, NULL, 10);
			else
				n->d_num.d = strtod(tmp, NULL);
		}
		lex(p);
		return n;
	case T_NAME:
		if ((n = mknode(p, D_NAME, NULL, NULL)) == NULL)
			return NULL;
		if ((n->d_name = strndup(p->s + p->tstart, p->tlen)) == NULL) {
			derive_free(n);
			return fail(p, "Out of memory");
		}
		lex(p);
		/* bison's "L_NAME error" rule: only these cannot follow */
		if (p->t == T_NAME || p->t == T_INT || p->t == T_DBL) {
			derive_free(n);
			return fail(p, "Arithmetic or relational or boolean "
			    "operator expected to follow NAME");
		}
		return n;
	case T_RATE:
		return parse_rate(p);
	case T_LP:
		{
			int	 initial = p->first;

			if (too_deep(p))
				return NULL;
			lex(p);
			if (initial)
				push(p, "Unexpected initial '('");
			if ((n = parse_sum(p)) == NULL)
				return NULL;
			if (p->t != T_RP) {
				derive_free(n);
				return fail(p, NULL);
			}
			if (initial)
				p->nframes--;
			p->depth--;
			lex(p);
			return n;
		}
	default:
		return fail(p, NULL);
	}
}

/* unary minus binds like binary minus in libpcp: -a*b is -(a*b) */
static struct dexpr *
parse_neg(struct parser *p)
{
	struct dexpr	*n;

	if (p->t != T_MINUS)
		return parse_primary(p);
	if (too_deep(p))
		return NULL;
	lex(p);
	push(p, "Arithmetic expression expected to follow NEG");
	if ((n = parse_product(p)) == NULL)
		return NULL;
	p->nframes--;
	p->depth--;
	return mknode(p, D_NEG, n, NULL);
}

static struct dexpr *
parse_binary(struct parser *p, int product)
{
	struct dexpr	*l, *r;

	if ((l = product ? parse_neg(p) : parse_product(p)) == NULL)
		return NULL;
	for (;;) {
		enum dop	 op;
		const char	*msg;

		if (product && p->t == T_STAR) {
			op = D_MUL;
			msg = "Arithmetic expression expected to follow STAR";
		} else if (product && p->t == T_SLASH) {
			op = D_DIV;
			msg = "Arithmetic expression expected to follow SLASH";
		} else if (!product && p->t == T_PLUS) {
			op = D_ADD;
			msg = "Arithmetic expression expected to follow PLUS";
		} else if (!product && p->t == T_MINUS) {
			op = D_SUB;
			msg = "Arithmetic expression expected to follow MINUS";
		} else {
			return l;
		}
		lex(p);
		push(p, msg);
		if ((r = product ? parse_neg(p) : parse_product(p)) == NULL) {
			derive_free(l);
			return NULL;
		}
		p->nframes--;
		if ((l = mknode(p, op, l, r)) == NULL)
			return NULL;
	}
}

static struct dexpr *
parse_product(struct parser *p)
{
	return parse_binary(p, 1);
}

static struct dexpr *
parse_sum(struct parser *p)
{
	return parse_binary(p, 0);
}

static const char *
initial_msg(enum tok t)
{
	switch (t) {
	case T_PLUS:	return "Unexpected initial '+'";
	case T_STAR:	return "Unexpected initial '*'";
	case T_SLASH:	return "Unexpected initial '/'";
	case T_RP:	return "Unexpected initial ')'";
	default:	return NULL;
	}
}

static void
syntax_text(struct buf *err, const char *name, const char *expr, long off,
    const char *why)
{
	buf_printf(err, "Syntax Error: pmAddDerivedMetric(\"%s\", ...)\n%s\n",
	    name, expr);
	if (off != 0)		/* libpcp's "%*s^" with width expr - offset */
		for (long i = 0; i < (off > 0 ? off : -off); i++)
			buf_putc(err, ' ');
	buf_puts(err, "^\n");
	if (why)
		buf_printf(err, "%s\n", why);
}

int
derive_parse(const char *name, const char *expr, struct dexpr **out,
    struct buf *err)
{
	struct parser	*p;
	struct dexpr	*n = NULL;
	const char	*msg;

	*out = NULL;
	if (strlen(expr) > DERIVE_MAX_EXPR) {
		buf_printf(err, "Syntax Error: pmAddDerivedMetric(\"%s\", ...)"
		    "\nexpression of %zu bytes is too long (bpftraced limit "
		    "%d)\n", name, strlen(expr), DERIVE_MAX_EXPR);
		return -1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		buf_puts(err, "Syntax Error: out of memory\n");
		return -1;
	}
	p->s = expr;
	p->len = strlen(expr);
	p->tstart = -2;			/* marks the first token */
	lex(p);
	if ((msg = initial_msg(p->t)) != NULL) {
		lex(p);
		fail(p, msg);
	} else if ((n = parse_sum(p)) != NULL && p->t != T_EOS) {
		/* defn-level rules: "expr ')' error" and "expr '(' error" */
		if (p->t == T_RP || p->t == T_LP) {
			msg = p->t == T_RP ? "Unexpected ')'" :
			    "Unexpected '('";
			lex(p);
			fail(p, msg);
		} else {
			fail(p, NULL);
		}
	}
	if (p->failed) {
		derive_free(n);
		syntax_text(err, name, expr, p->erroff, p->errmsg);
		free(p);
		return -1;
	}
	free(p);
	*out = n;
	return 0;
}

/* ---- binding: libpcp's descriptor rules ---- */

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
	if (bind_node(c, find, arg, why) < 0) {
		derive_free(c);
		return -1;
	}
	*out = c->d_desc;
	*bound = c;
	return 0;
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
	buf_init(&err, 0);
	rc = derive_parse(dm->dm_name, dm->dm_text, &t, &err);
	buf_free(&err);
	if (rc == -1)
		return -3;
	if (names_known(t, find, arg) < 0) {
		derive_free(t);
		return -2;
	}
	if (bind_node(t, find, arg, why) < 0) {
		derive_free(t);
		return -1;
	}
	*out = t->d_desc;
	*bound = t;
	return 0;
}

void
derive_semantic_text(struct buf *err, const char *name, const char *expr,
    const char *why)
{
	buf_printf(err, "Semantic Error: pmAddDerivedMetric(\"%s\", ...)\n%s\n"
	    "^\n%s\n", name, expr, why);
}

/* ---- evaluation ---- */

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

int
derive_is_name(const struct dexpr *n)
{
	return n->d_op == D_NAME;
}

/* ---- the per-context set ---- */

pmID
derive_pmid(unsigned k)
{
	/* libpcp: 511.2047.1023 downwards; item 0 is never used */
	return pmID_build(DERIVE_DOMAIN, 2047 - k / 1023, 1023 - k % 1023);
}

/*
 * Only the text is kept, not the parse tree: a node is ~80 bytes with
 * its allocation, so a 4 KB expression of 4096 nodes held 320 KB, 81 MB
 * for 256 of them in one context. derive_bind_text() parses it per use,
 * which costs what cloning the tree cost.
 */
struct dmetric *
dmetric_new(const char *name, const char *expr, int dead)
{
	struct dmetric	*dm;

	if ((dm = calloc(1, sizeof(*dm))) == NULL)
		return NULL;
	atomic_init(&dm->dm_refs, 1);
	dm->dm_name = strdup(name);
	dm->dm_text = strdup(expr);
	if (dm->dm_name == NULL || dm->dm_text == NULL) {
		free(dm->dm_name);
		free(dm->dm_text);
		free(dm);
		return NULL;
	}
	dm->dm_dead = dead;
	return dm;
}

void
dmetric_unref(struct dmetric *dm)
{
	if (dm == NULL || atomic_fetch_sub(&dm->dm_refs, 1) != 1)
		return;
	free(dm->dm_name);
	free(dm->dm_text);
	free(dm);
}

void
dset_release(struct dset *s)
{
	if (s == NULL || atomic_fetch_sub(&s->ds_refs, 1) != 1)
		return;
	for (size_t i = 0; i < s->ds_n; i++)
		dmetric_unref(s->ds_v[i]);
	free(s->ds_v);
	free(s);
}

const struct dmetric *
dset_find(const struct dset *s, const char *name)
{
	for (size_t i = 0; s && i < s->ds_n; i++)
		if (strcmp(s->ds_v[i]->dm_name, name) == 0)
			return s->ds_v[i];
	return NULL;
}

/* A new set: old plus dm (which gets the next pmid). NULL: no memory. */
struct dset *
dset_add(const struct dset *old, struct dmetric *dm)
{
	struct dset	*s;
	size_t		 n = old ? old->ds_n : 0;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->ds_v = calloc(n + 1, sizeof(*s->ds_v))) == NULL) {
		free(s);
		return NULL;
	}
	atomic_init(&s->ds_refs, 1);
	for (size_t i = 0; i < n; i++) {
		s->ds_v[i] = old->ds_v[i];
		atomic_fetch_add(&s->ds_v[i]->dm_refs, 1);
	}
	dm->dm_pmid = derive_pmid((unsigned)n);
	atomic_fetch_add(&dm->dm_refs, 1);
	s->ds_v[n] = dm;
	s->ds_n = n + 1;
	return s;
}
