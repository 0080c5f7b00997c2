/* SPDX-License-Identifier: MIT */
/*
 * derive.c - per-context derived metrics (/pmapi/derive), as pmproxy
 * 6.0.3 and libpcp's pmAddDerivedMetric() define them, restricted to the
 * arithmetic subset: + - * / unary minus, parentheses, numeric constants
 * and metric names, plus rate(NAME) over the context's previous fetch.
 * This file holds what a client registers: the text parsed to a tree and
 * the registered definitions.
 *
 * Three stages, each a pure function of immutable inputs:
 *   derive_parse()  text -> tree; syntax errors worded and positioned as
 *                   libpcp's bison parser words them ("Syntax Error: ...").
 *                   Here.
 *   derive_bind()   tree + a name lookup -> descriptor (type, sem, units,
 *                   indom) with libpcp's type promotion, semantics and
 *                   dimension rules; "Semantic Error: ..." texts.
 *                   derive_bind.c.
 *   derive_eval()   tree + descriptor + operand values -> result values,
 *                   computed in the descriptor's type as libpcp does.
 *                   derive_eval_hist() also takes the rate() operands'
 *                   values of the previous fetch (struct dhist, kept by
 *                   the context: context.c) and returns this fetch's.
 *                   derive_eval.c.
 * Plus the per-context set (here): immutable, reference counted, replaced
 * copy-on-write under the context table lock (context.c). The tree's
 * nodes are derive_int.h's; the two other stages call into this file,
 * never the other way.
 * Threads: everything here runs in HTTP workers on immutable data.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "registry.h"
#include "derive_int.h"
#include "util.h"

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

/* A D_NAME node of the current token (a metric name). */
static struct dexpr *
name_node(struct parser *p)
{
	struct dexpr	*n;

	if ((n = mknode(p, D_NAME, NULL, NULL)) == NULL)
		return NULL;
	if ((n->d_name = strndup(p->s + p->tstart, p->tlen)) == NULL) {
		derive_free(n);
		return fail(p, "Out of memory");
	}
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
	if ((arg = name_node(p)) == NULL)
		return NULL;
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
			char		 tmp[64];
			size_t		 l = p->tlen < sizeof(tmp) - 1 ?
					    p->tlen : sizeof(tmp) - 1;
			const char	*errstr;

			/* lex() checked the token: at most 10 digits, or
			   digits with one '.'; a lone "." reads 0 */
			memcpy(tmp, p->s + p->tstart, l);
			tmp[l] = '\0';
			if (n->d_op == D_INT)
				n->d_num.u = strtonum_ull(tmp, 0, UINT64_MAX,
				    &errstr);
			else
				n->d_num.d = strtonum_d(tmp, -HUGE_VAL,
				    HUGE_VAL, &errstr);
		}
		lex(p);
		return n;
	case T_NAME:
		if ((n = name_node(p)) == NULL)
			return NULL;
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
		dmetric_unref(dm);	/* the only reference: frees it */
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
