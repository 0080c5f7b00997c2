/* SPDX-License-Identifier: MIT */
/*
 * btscript.c - bpftrace source analysis and rewriting (see btscript.h).
 * A tokenizer that knows comments, strings, probe paths and operators
 * turns the code into tokens and reads metadata comments as it meets
 * them; one pass over the tokens then finds the @maps the script assigns
 * and the calls that print text. Pure functions on text: no daemon state,
 * runs on the calling thread and locks nothing.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btscript.h"
#include "buf.h"
#include "util.h"

/* tokens index the code with 32 bits; longer code is refused */
#define BTS_MAX_CODE		((size_t)INT32_MAX - 1)
#define BTS_INTERVAL_MIN_MS	100
#define BTS_INTERVAL_MAX_MS	3600000
#define BTS_DEFAULT_INTERVAL_MS	1000
#define NONE			SIZE_MAX	/* "no token" index */

enum tok_type {
	TK_IDENT,		/* printf, comm, kprobe ... */
	TK_NUM,			/* 42, 0x1f, 1_000 */
	TK_STR,			/* "..." with escapes (maybe unterminated) */
	TK_MAP,			/* @name or bare @ */
	TK_VAR,			/* $name, $1 */
	TK_PATH,		/* :probe/path*glob (bpftrace's path token) */
	TK_PUNCT		/* operators, brackets, stray bytes */
};

struct tok {
	uint32_t	 t_off;
	uint32_t	 t_len;
	int32_t		 t_match;	/* partner of ( ) [ ]; -1: none */
	uint8_t		 t_type;
};

struct lexer {
	const char	*l_code;
	size_t		 l_len;
	size_t		 l_pos;
	int		 l_bol;		/* only blanks since the line began */
	struct tok	*l_toks;	/* owned; freed by bts_analyze */
	size_t		 l_ntok;
	size_t		 l_cap;
	struct bts_meta	*l_meta;	/* metadata comments land here */
	char		*l_err;
	size_t		 l_errlen;
};

struct scan {
	const char	*s_code;
	const struct tok *s_toks;
	size_t		 s_ntok;
	struct bts_var	*s_vars;	/* BTS_MAX_VARS slots; owned */
	size_t		 s_nvars;
	int		 s_output;	/* a call that prints text was seen */
	char		*s_err;
	size_t		 s_errlen;
};

static const char *const multi_ops[] = {	/* longest first */
	"<<=", ">>=", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/=", "%=",
	"&=", "|=", "^=", "++", "--", "&&", "||", "<<", ">>", "->", NULL
};

static const char *const update_ops[] = {
	"++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=",
	">>=", NULL
};

static const char *const output_calls[] = {
	"printf", "time", "join", "system", "cat", NULL
};

/*
 * Builtins and functions whose value is a string, a stack or a tuple-like
 * text. kaddr(), uaddr(), kptr() and uptr() return addresses: numbers.
 */
static const char *const string_exprs[] = {
	"comm", "func", "probe", "username", "kstack", "ustack", "str",
	"ksym", "usym", "strftime", "path", "buf", "cgroup_path", "ntop",
	"macaddr", "strerror", NULL
};

static const struct {
	const char	*a_name;
	enum bts_kind	 a_kind;
} aggregations[] = {
	{ "count", BTS_COUNT }, { "sum", BTS_SUM }, { "min", BTS_MIN },
	{ "max", BTS_MAX }, { "avg", BTS_AVG }, { "stats", BTS_STATS },
	{ "hist", BTS_HIST }, { "lhist", BTS_LHIST }, { NULL, BTS_ASSIGN }
};

/* --- character classes --- */

static int
is_ident_start(int c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_ident_char(int c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int
is_path_char(int c)
{
	return is_ident_char(c) || c == '-' || c == '.' || c == '/' ||
	    c == '*' || c == '+' || c == '#';
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int
in_list(const char *const *list, const char *s, size_t n)
{
	for (; *list != NULL; list++)
		if (strlen(*list) == n && memcmp(*list, s, n) == 0)
			return 1;
	return 0;
}

int
bts_name_valid(const char *name)
{
	size_t	 i;

	if (name == NULL || !is_ident_start((unsigned char)name[0]))
		return 0;
	for (i = 1; name[i] != '\0'; i++)
		if (i >= BTS_NAME_MAX || !is_ident_char((unsigned char)name[i]))
			return 0;
	return 1;
}

/* 1 when s[0..n) is "" or an identifier (a map name after '@') */
static int
map_name_valid(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0)
		return 1;
	if (!is_ident_start((unsigned char)s[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!is_ident_char((unsigned char)s[i]))
			return 0;
	return 1;
}

/* --- metadata comments: "// key" or "// key: value" --- */

static int
meta_set_name(struct bts_meta *m, const char *val, char *err, size_t errlen)
{
	char	*s;

	if (!bts_name_valid(val)) {
		seterr(err, errlen, "invalid // name: \"%.64s\" (want "
		    "[A-Za-z_][A-Za-z0-9_]*, at most %d characters)", val,
		    BTS_NAME_MAX);
		return -1;
	}
	if ((s = strdup(val)) == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	free(m->m_name);
	m->m_name = s;
	return 0;
}

static void
free_names(char **v, size_t n)
{
	size_t	 i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* One "@name" of an include list, trimmed; "@" alone becomes "root". */
static char *
include_item(const char *s, size_t n, char *err, size_t errlen)
{
	char	*name;

	while (n > 0 && is_blank((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_blank((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || s[0] != '@' || !map_name_valid(s + 1, n - 1)) {
		seterr(err, errlen, "// include: \"%.*s\" is not a @variable",
		    (int)(n > 64 ? 64 : n), s);
		return NULL;
	}
	name = n == 1 ? strdup("root") : strndup(s + 1, n - 1);
	if (name == NULL)
		seterr(err, errlen, "out of memory");
	return name;
}

static int
meta_set_include(struct bts_meta *m, const char *val, char *err,
    size_t errlen)
{
	char		**v;
	const char	*p = val, *comma;
	size_t		 n = 0;

	if ((v = calloc(BTS_MAX_INCLUDE, sizeof(*v))) == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		if (n == BTS_MAX_INCLUDE) {
			seterr(err, errlen, "// include: more than %d names",
			    BTS_MAX_INCLUDE);
			goto fail;
		}
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		v[n] = include_item(p, comma - p, err, errlen);
		if (v[n] == NULL)
			goto fail;
		n++;
		if (*comma == '\0')
			break;
		p = comma + 1;
	}
	free_names(m->m_include, m->m_ninclude);
	m->m_include = v;
	m->m_ninclude = n;
	return 0;
fail:
	free_names(v, n);
	return -1;
}

static int
meta_set_retain(struct bts_meta *m, const char *val, char *err, size_t errlen)
{
	const char	*e;
	long long	 n;

	n = strtonum_ll(val, 0, LONG_MAX, &e);
	if (e != NULL) {
		seterr(err, errlen, "// table-retain-lines: \"%.64s\" is not a "
		    "non-negative integer (%s)", val, e);
		return -1;
	}
	m->m_table_retain_lines = (long)n;
	return 0;
}

static int
meta_set_custom(struct bts_meta *m, const char *val, char *err, size_t errlen)
{
	m->m_custom_output_block = 1;
	return 0;
}

static int
meta_set_restart(struct bts_meta *m, const char *val, char *err,
    size_t errlen)
{
	if (strcmp(val, "never") == 0)
		m->m_restart = BTS_RESTART_NEVER;
	else if (strcmp(val, "on-failure") == 0)
		m->m_restart = BTS_RESTART_ON_FAILURE;
	else if (strcmp(val, "always") == 0)
		m->m_restart = BTS_RESTART_ALWAYS;
	else {
		seterr(err, errlen, "// restart: \"%.64s\" is not one of "
		    "never, on-failure, always", val);
		return -1;
	}
	return 0;
}

/* "500ms", "2s" or "2" (seconds), within 100 ms .. 1 h */
static int
meta_set_interval(struct bts_meta *m, const char *val, char *err,
    size_t errlen)
{
	char		 num[16];
	const char	*e = "invalid", *unit = val;
	long long	 n = 0, mult = 0;

	while (*unit >= '0' && *unit <= '9')
		unit++;
	if (strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "s") == 0 || *unit == '\0')
		mult = 1000;
	if (mult != 0 && (size_t)(unit - val) < sizeof(num)) {
		memcpy(num, val, unit - val);
		num[unit - val] = '\0';
		n = strtonum_ll(num, 0, BTS_INTERVAL_MAX_MS, &e) * mult;
	}
	if (e == NULL && (n < BTS_INTERVAL_MIN_MS || n > BTS_INTERVAL_MAX_MS))
		e = "out of range";
	if (e != NULL) {
		seterr(err, errlen, "// interval: \"%.64s\" is not "
		    "100ms..3600s (%s; write 500ms, 2s or 2)", val, e);
		return -1;
	}
	m->m_interval_ms = (long)n;
	return 0;
}

static int
meta_set_print(struct bts_meta *m, const char *val, char *err, size_t errlen)
{
	if (strcmp(val, "on-demand") == 0)
		m->m_on_demand = 1;
	else if (strcmp(val, "interval") == 0)
		m->m_on_demand = 0;
	else {
		seterr(err, errlen, "// print: \"%.64s\" is not on-demand or "
		    "interval", val);
		return -1;
	}
	return 0;
}

static const struct meta_key {
	const char	*mk_key;
	int		 mk_needs_value;
	int		(*mk_set)(struct bts_meta *, const char *, char *,
			    size_t);
} meta_keys[] = {
	{ "name", 1, meta_set_name },
	{ "include", 1, meta_set_include },
	{ "table-retain-lines", 1, meta_set_retain },
	{ "custom-output-block", 0, meta_set_custom },
	{ "restart", 1, meta_set_restart },
	{ "interval", 1, meta_set_interval },
	{ "print", 1, meta_set_print },
	{ NULL, 0, NULL }
};

static int
meta_apply(struct lexer *lx, const char *key, size_t klen, const char *val,
    size_t vlen)
{
	const struct meta_key	*mk;
	char			*v;
	int			 rc;

	for (mk = meta_keys; mk->mk_key != NULL; mk++)
		if (strlen(mk->mk_key) == klen &&
		    memcmp(mk->mk_key, key, klen) == 0)
			break;
	if (mk->mk_key == NULL)
		return 0;	/* unknown keys are ignored, as by the PMDA */
	if (mk->mk_needs_value && (val == NULL || vlen == 0)) {
		seterr(lx->l_err, lx->l_errlen, "// %s needs a value "
		    "(// %s: VALUE)", mk->mk_key, mk->mk_key);
		return -1;
	}
	if ((v = strndup(val ? val : "", vlen)) == NULL) {
		seterr(lx->l_err, lx->l_errlen, "out of memory");
		return -1;
	}
	rc = mk->mk_set(lx->l_meta, v, lx->l_err, lx->l_errlen);
	free(v);
	return rc;
}

/* s[0..n) is a whole "//..." comment that begins its line. */
static int
meta_line(struct lexer *lx, const char *s, size_t n)
{
	size_t	 p = 2, k, q;

	while (p < n && is_blank((unsigned char)s[p]))
		p++;
	for (k = p; k < n && (is_ident_char((unsigned char)s[k]) ||
	    s[k] == '-'); k++)
		;
	if (k == p)
		return 0;
	for (q = k; q < n && is_blank((unsigned char)s[q]); q++)
		;
	if (q == n)
		return meta_apply(lx, s + p, k - p, NULL, 0);
	if (s[q] != ':')
		return 0;	/* prose such as "// name of the game" */
	for (q++; q < n && is_blank((unsigned char)s[q]); q++)
		;
	while (n > q && is_blank((unsigned char)s[n - 1]))
		n--;
	return meta_apply(lx, s + p, k - p, s + q, n - q);
}

/* --- tokenizer --- */

static size_t
line_end(const char *s, size_t len, size_t pos)
{
	const char	*nl = memchr(s + pos, '\n', len - pos);

	return nl ? (size_t)(nl - s) : len;
}

/* past the closing quote, or len when unterminated */
static size_t
scan_string(const char *s, size_t len, size_t pos)
{
	for (pos++; pos < len; pos++) {
		if (s[pos] == '\\' && pos + 1 < len)
			pos++;
		else if (s[pos] == '"')
			return pos + 1;
	}
	return len;
}

static size_t
scan_block_comment(const char *s, size_t len, size_t pos)
{
	for (pos += 2; pos + 1 < len; pos++)
		if (s[pos] == '*' && s[pos + 1] == '/')
			return pos + 2;
	return len;
}

/*
 * bpftrace lexes ":path" in probes as one token, so a slash-star inside a
 * glob (uprobe:/lib/<star>.so:f) opens no comment. Returns pos + 1 when
 * no path follows the colon.
 */
static size_t
scan_path(const char *s, size_t len, size_t pos)
{
	for (pos++; pos < len;) {
		if (s[pos] == '\\' && pos + 1 < len)
			pos += 2;
		else if (is_path_char((unsigned char)s[pos]))
			pos++;
		else
			break;
	}
	return pos;
}

static size_t
scan_punct(const char *s, size_t len, size_t pos)
{
	const char *const	*op;
	size_t			 n;

	for (op = multi_ops; *op != NULL; op++) {
		n = strlen(*op);
		if (len - pos >= n && memcmp(s + pos, *op, n) == 0)
			return pos + n;
	}
	return pos + 1;
}

static size_t
scan_while_ident(const char *s, size_t len, size_t pos)
{
	while (pos < len && is_ident_char((unsigned char)s[pos]))
		pos++;
	return pos;
}

static int
lex_push(struct lexer *lx, enum tok_type type, size_t start, size_t end)
{
	struct tok	*t;
	size_t		 ncap;

	if (lx->l_ntok == lx->l_cap) {
		ncap = lx->l_cap ? lx->l_cap * 2 : 256;
		if ((t = reallocarray(lx->l_toks, ncap, sizeof(*t))) == NULL) {
			seterr(lx->l_err, lx->l_errlen, "out of memory");
			return -1;
		}
		lx->l_toks = t;
		lx->l_cap = ncap;
	}
	t = &lx->l_toks[lx->l_ntok++];
	t->t_off = (uint32_t)start;
	t->t_len = (uint32_t)(end - start);
	t->t_match = -1;
	t->t_type = (uint8_t)type;
	lx->l_pos = end;
	return 0;
}

/* Whitespace, comments and "#" lines. Returns 1 if something was skipped,
 * -1 when a metadata comment is refused. */
static int
lex_skip(struct lexer *lx)
{
	const char	*s = lx->l_code;
	size_t		 len = lx->l_len, pos = lx->l_pos, end;
	char		 c = s[pos], c1 = pos + 1 < len ? s[pos + 1] : '\0';

	if (c == '\n') {
		lx->l_bol = 1;
		lx->l_pos++;
	} else if (is_blank((unsigned char)c)) {
		lx->l_pos++;
	} else if (c == '/' && c1 == '/') {
		end = line_end(s, len, pos);
		if (lx->l_bol && meta_line(lx, s + pos, end - pos) == -1)
			return -1;
		lx->l_pos = end;
	} else if (c == '/' && c1 == '*') {
		lx->l_pos = scan_block_comment(s, len, pos);
		lx->l_bol = 0;
	} else if (c == '#' && lx->l_bol) {	/* #include, #define, #! */
		lx->l_pos = line_end(s, len, pos);
	} else
		return 0;
	return 1;
}

static int
lex_token(struct lexer *lx)
{
	const char	*s = lx->l_code;
	size_t		 len = lx->l_len, pos = lx->l_pos;
	unsigned char	 c = (unsigned char)s[pos];
	size_t		 end;

	lx->l_bol = 0;
	if (c == '"')
		return lex_push(lx, TK_STR, pos, scan_string(s, len, pos));
	if (is_ident_start(c))
		return lex_push(lx, TK_IDENT, pos,
		    scan_while_ident(s, len, pos));
	if (c >= '0' && c <= '9')
		return lex_push(lx, TK_NUM, pos, scan_while_ident(s, len, pos));
	if (c == '@') {
		end = pos + 1;
		if (end < len && is_ident_start((unsigned char)s[end]))
			end = scan_while_ident(s, len, end);
		return lex_push(lx, TK_MAP, pos, end);
	}
	if (c == '$')
		return lex_push(lx, TK_VAR, pos,
		    scan_while_ident(s, len, pos + 1));
	if (c == ':') {
		end = scan_path(s, len, pos);
		if (end > pos + 1)
			return lex_push(lx, TK_PATH, pos, end);
	}
	return lex_push(lx, TK_PUNCT, pos, scan_punct(s, len, pos));
}

static int
lex_run(struct lexer *lx)
{
	int	 rc;

	while (lx->l_pos < lx->l_len) {
		rc = lex_skip(lx);
		if (rc == -1)
			return -1;
		if (rc == 0 && lex_token(lx) == -1)
			return -1;
	}
	return 0;
}

/* --- token helpers --- */

static int
tok_is(const struct scan *sc, size_t i, const char *text)
{
	const struct tok	*t;

	if (i >= sc->s_ntok)
		return 0;
	t = &sc->s_toks[i];
	return t->t_len == strlen(text) &&
	    memcmp(sc->s_code + t->t_off, text, t->t_len) == 0;
}

static int
tok_in(const struct scan *sc, size_t i, enum tok_type type,
    const char *const *list)
{
	const struct tok	*t;

	if (i >= sc->s_ntok || sc->s_toks[i].t_type != type)
		return 0;
	t = &sc->s_toks[i];
	return in_list(list, sc->s_code + t->t_off, t->t_len);
}

/* an identifier used as a field name (args->comm, x.str) is no builtin */
static int
tok_is_field(const struct scan *sc, size_t i)
{
	return i > 0 && (tok_is(sc, i - 1, ".") || tok_is(sc, i - 1, "->"));
}

/* index of the partner of the ( or [ at i, or NONE when unmatched */
static size_t
tok_close(const struct scan *sc, size_t i)
{
	int32_t	 m;

	if (i >= sc->s_ntok)
		return NONE;
	m = sc->s_toks[i].t_match;
	return m > (int32_t)i ? (size_t)m : NONE;
}

/*
 * Pair ( with ) and [ with ]. A closer that does not match the innermost
 * opener is left alone, so pairs always nest properly and a scan between
 * partners never leaves its range.
 */
static int
link_brackets(const char *code, struct tok *toks, size_t n)
{
	int32_t	*stack;
	size_t	 depth = 0, i;
	char	 c, open;

	if (n == 0)
		return 0;
	if ((stack = malloc(n * sizeof(*stack))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (toks[i].t_type != TK_PUNCT || toks[i].t_len != 1)
			continue;
		c = code[toks[i].t_off];
		if (c == '(' || c == '[') {
			stack[depth++] = (int32_t)i;
			continue;
		}
		if ((c != ')' && c != ']') || depth == 0)
			continue;
		open = code[toks[stack[depth - 1]].t_off];
		if ((c == ')' && open != '(') || (c == ']' && open != '['))
			continue;
		depth--;
		toks[stack[depth]].t_match = (int32_t)i;
		toks[i].t_match = stack[depth];
	}
	free(stack);
	return 0;
}

/* commas at the top level of the group opened at i (a matched ( or [) */
static int
count_commas(const struct scan *sc, size_t i)
{
	size_t	 k, close = tok_close(sc, i), inner;
	int	 n = 0;

	for (k = i + 1; k < close; k++) {
		inner = tok_close(sc, k);
		if (inner != NONE)
			k = inner;
		else if (tok_is(sc, k, ","))
			n++;
	}
	return n;
}

/* --- variables --- */

static int
key_count(const struct scan *sc, size_t open)
{
	if (open == NONE || tok_close(sc, open) == open + 1)
		return 0;
	return count_commas(sc, open) + 1;
}

static int
key_has_stack(const struct scan *sc, size_t open)
{
	static const char *const stacks[] = { "kstack", "ustack", NULL };
	size_t	 k, close = tok_close(sc, open);

	if (open == NONE)
		return 0;
	for (k = open + 1; k < close; k++)
		if (tok_in(sc, k, TK_IDENT, stacks) && !tok_is_field(sc, k))
			return 1;
	return 0;
}

static enum bts_kind
rhs_kind(const struct scan *sc, size_t r)
{
	const struct tok	*t;
	size_t			 i;

	if (r >= sc->s_ntok || sc->s_toks[r].t_type != TK_IDENT ||
	    !tok_is(sc, r + 1, "("))
		return BTS_ASSIGN;
	t = &sc->s_toks[r];
	for (i = 0; aggregations[i].a_name != NULL; i++)
		if (strlen(aggregations[i].a_name) == t->t_len &&
		    memcmp(aggregations[i].a_name, sc->s_code + t->t_off,
		    t->t_len) == 0)
			return aggregations[i].a_kind;
	return BTS_ASSIGN;
}

/* A decimal or 0x literal above INT64_MAX (bpftrace makes it a u64). */
static int
tok_big_literal(const struct scan *sc, size_t r)
{
	const struct tok	*t = &sc->s_toks[r];
	char			 num[32];
	const char		*errstr;
	size_t			 i, n = 0;

	if (t->t_type != TK_NUM)
		return 0;
	for (i = 0; i < t->t_len && n + 1 < sizeof(num); i++)
		if (sc->s_code[t->t_off + i] != '_')
			num[n++] = sc->s_code[t->t_off + i];
	num[n] = '\0';
	strtonum_ull_base(num, 0, (unsigned long long)INT64_MAX + 1,
	    UINT64_MAX, &errstr);	/* C's 0x and 0 (octal) prefixes */
	return errstr == NULL;
}

/* builtins whose value is a signed-64 number for sure */
static const char *const int_exprs[] = {
	"pid", "tid", "uid", "gid", "cpu", "nsecs", "elapsed", "cgroup",
	"rand", "numaid", "jiffies", NULL
};

/* tok r is followed by the end of the statement */
static int
tok_ends(const struct scan *sc, size_t r)
{
	return r + 1 >= sc->s_ntok || tok_is(sc, r + 1, ";") ||
	    tok_is(sc, r + 1, "}");
}

/* Value type of a plain assignment from how its right-hand side starts:
 * "...", a tuple (a, b) or a string builtin give strings; a (uint64) cast
 * or a literal above INT64_MAX unsigned 64-bit; a literal or an integer
 * builtin alone signed 64-bit. Anything else (arg0, $s, @y, a call, an
 * expression) is a signed guess that *open says the first print may
 * replace. */
static enum bts_vtype
rhs_vtype(const struct scan *sc, size_t r, int *open)
{
	static const char *const u64[] = { "uint64", "u64", NULL };

	*open = 0;

	while (tok_is(sc, r, "(")) {
		if (tok_close(sc, r) == NONE)
			return BTS_V_INT;
		if (count_commas(sc, r) > 0)
			return BTS_V_STRING;
		if (tok_in(sc, r + 1, TK_IDENT, u64) && tok_is(sc, r + 2, ")"))
			return BTS_V_UINT;
		r++;		/* (expr) or a cast: look inside */
	}
	if (r >= sc->s_ntok)
		return BTS_V_INT;
	if (tok_big_literal(sc, r) && tok_ends(sc, r))
		return BTS_V_UINT;
	if (sc->s_toks[r].t_type == TK_STR ||
	    tok_in(sc, r, TK_IDENT, string_exprs))
		return BTS_V_STRING;
	if ((sc->s_toks[r].t_type == TK_NUM || (tok_in(sc, r, TK_IDENT,
	    int_exprs) && !tok_is_field(sc, r))) && tok_ends(sc, r))
		return BTS_V_INT;
	*open = 1;
	return BTS_V_INT;
}

/* Settle v's kind; for count() the key at kopen decides "stacks". */
static void
var_settle(const struct scan *sc, struct bts_var *v, enum bts_kind kind,
    enum bts_vtype vtype, int vopen, size_t kopen)
{
	v->v_kind = kind;
	v->v_vtype = BTS_V_INT;
	v->v_vopen = 0;
	v->v_mtype = BTS_MT_NONE;
	v->v_counter = 0;
	switch (kind) {
	case BTS_COUNT:
		v->v_vtype = BTS_V_UINT;
		v->v_counter = 1;
		if (key_has_stack(sc, kopen))
			v->v_mtype = BTS_MT_STACKS;
		break;
	case BTS_HIST:
	case BTS_LHIST:
		v->v_vtype = BTS_V_UINT;
		v->v_counter = 1;
		v->v_mtype = BTS_MT_HISTOGRAM;
		break;
	case BTS_ASSIGN:
		v->v_vtype = vtype;
		v->v_vopen = vopen;
		break;
	default:
		break;
	}
}

static struct bts_var *
var_find(struct scan *sc, const char *name, size_t n, int bare)
{
	size_t	 i;

	for (i = 0; i < sc->s_nvars; i++)
		if (sc->s_vars[i].v_bare == bare &&
		    strlen(sc->s_vars[i].v_name) == n &&
		    memcmp(sc->s_vars[i].v_name, name, n) == 0)
			return &sc->s_vars[i];
	return NULL;
}

static struct bts_var *
var_add(struct scan *sc, const char *name, size_t n, int bare)
{
	struct bts_var	*v;

	if (n == 4 && memcmp(name, "root", 4) == 0 &&
	    var_find(sc, "root", 4, !bare) != NULL) {
		seterr(sc->s_err, sc->s_errlen, "@ and @root would both be "
		    "exported as \"root\"; rename @root");
		return NULL;
	}
	if (sc->s_nvars == BTS_MAX_VARS) {
		seterr(sc->s_err, sc->s_errlen, "more than %d variables",
		    BTS_MAX_VARS);
		return NULL;
	}
	v = &sc->s_vars[sc->s_nvars];
	if ((v->v_name = strndup(name, n)) == NULL) {
		seterr(sc->s_err, sc->s_errlen, "out of memory");
		return NULL;
	}
	v->v_bare = bare;
	sc->s_nvars++;
	return v;
}

/*
 * The map at token i is assigned: kopen is its key's "[" (or NONE), rhs
 * the first token after "=" (NONE for ++, --, op=).
 */
static int
var_define(struct scan *sc, size_t i, size_t kopen, size_t rhs)
{
	const struct tok	*t = &sc->s_toks[i];
	const char		*name = sc->s_code + t->t_off + 1;
	size_t			 n = t->t_len - 1;
	int			 bare = n == 0;
	struct bts_var		*v;
	enum bts_kind		 kind = rhs_kind(sc, rhs);
	enum bts_vtype		 vt = BTS_V_INT;
	int			 vopen = 0;

	if (bare) {
		name = "root";
		n = 4;
	} else if (n == 6 && memcmp(name, "output", 6) == 0) {
		seterr(sc->s_err, sc->s_errlen, "@output is reserved for "
		    "printf output; rename the variable");
		return -1;
	}
	v = var_find(sc, name, n, bare);
	if (v != NULL) {
		if (v->v_kind == BTS_ASSIGN && kind != BTS_ASSIGN)
			var_settle(sc, v, kind, BTS_V_INT, 0, kopen);
		return 0;
	}
	v = var_add(sc, name, n, bare);
	if (v == NULL)
		return -1;
	v->v_nkeys = key_count(sc, kopen);
	if (rhs != NONE)
		vt = rhs_vtype(sc, rhs, &vopen);
	var_settle(sc, v, kind, vt, vopen, kopen);
	return 0;
}

/* Is the map at token i assigned (=, op=, ++, --)? */
static int
scan_map(struct scan *sc, size_t i)
{
	size_t	 j = i + 1, kopen = NONE;
	int	 pre = i > 0 && (tok_is(sc, i - 1, "++") ||
		    tok_is(sc, i - 1, "--"));

	if (tok_is(sc, j, "[")) {
		if (tok_close(sc, j) == NONE)
			return 0;	/* unterminated key: bpftrace says so */
		kopen = j;
		j = tok_close(sc, j) + 1;
	}
	if (tok_is(sc, j, "="))
		return var_define(sc, i, kopen, j + 1);
	if (pre || tok_in(sc, j, TK_PUNCT, update_ops))
		return var_define(sc, i, kopen, NONE);
	return 0;
}

/* printf(, time(, join(, system(, cat(, or print( of a non-map value */
static int
call_prints(const struct scan *sc, size_t i)
{
	size_t	 a = i + 2;

	if (!tok_is(sc, i + 1, "(") || tok_is_field(sc, i))
		return 0;
	if (tok_in(sc, i, TK_IDENT, output_calls))
		return 1;
	if (!tok_is(sc, i, "print") || a >= sc->s_ntok || tok_is(sc, a, ")"))
		return 0;
	return !(sc->s_toks[a].t_type == TK_MAP &&
	    (tok_is(sc, a + 1, ",") || tok_is(sc, a + 1, ")")));
}

static int
scan_run(struct scan *sc)
{
	size_t	 i;

	for (i = 0; i < sc->s_ntok; i++) {
		if (sc->s_toks[i].t_type == TK_IDENT && call_prints(sc, i))
			sc->s_output = 1;
		else if (sc->s_toks[i].t_type == TK_MAP &&
		    scan_map(sc, i) == -1)
			return -1;
	}
	return 0;
}

/* --- the result --- */

static void
vars_free(struct bts_var *vars, size_t n)
{
	size_t	 i;

	if (vars == NULL)
		return;
	for (i = 0; i < n; i++)
		free(vars[i].v_name);
	free(vars);
}

void
bts_info_free(struct bts_info *info)
{
	if (info == NULL)
		return;
	vars_free(info->i_vars, info->i_nvars);
	free(info->i_meta.m_name);
	free_names(info->i_meta.m_include, info->i_meta.m_ninclude);
	memset(info, 0, sizeof(*info));
}

/* Refuse empty scripts, then append the synthetic "output" variable. */
static int
add_output(struct bts_info *info, int output, char *err, size_t errlen)
{
	struct bts_var	*v;

	if (info->i_nvars == 0 && !output) {
		seterr(err, errlen, "no bpftrace variables or printf "
		    "statements found, please include at least one variable "
		    "or print statement in your script");
		return -1;
	}
	if (!output)
		return 0;
	if (info->i_nvars == BTS_MAX_VARS) {
		seterr(err, errlen, "more than %d variables (counting the "
		    "printf output)", BTS_MAX_VARS);
		return -1;
	}
	v = &info->i_vars[info->i_nvars];
	if ((v->v_name = strdup("output")) == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	v->v_kind = BTS_OUTPUT;
	v->v_vtype = BTS_V_STRING;
	v->v_mtype = BTS_MT_OUTPUT;
	info->i_nvars++;
	info->i_has_output = 1;
	return 0;
}

static int
included(const struct bts_meta *m, const char *name)
{
	size_t	 i;

	for (i = 0; i < m->m_ninclude; i++)
		if (strcmp(m->m_include[i], name) == 0)
			return 1;
	return 0;
}

/* "// include:" keeps only the listed variables, in source order. */
static int
apply_include(struct bts_info *info, char *err, size_t errlen)
{
	const struct bts_meta	*m = &info->i_meta;
	size_t			 i, j, keep = 0;

	for (i = 0; i < m->m_ninclude; i++) {
		for (j = 0; j < info->i_nvars; j++)
			if (strcmp(info->i_vars[j].v_name, m->m_include[i]) ==
			    0)
				break;
		if (j == info->i_nvars) {
			seterr(err, errlen, "// include: @%s is not a variable "
			    "of the script", m->m_include[i]);
			return -1;
		}
	}
	if (m->m_ninclude == 0)
		return 0;
	info->i_has_output = 0;
	for (i = 0; i < info->i_nvars; i++) {
		if (!included(m, info->i_vars[i].v_name)) {
			free(info->i_vars[i].v_name);
			continue;
		}
		if (info->i_vars[i].v_kind == BTS_OUTPUT)
			info->i_has_output = 1;
		info->i_vars[keep++] = info->i_vars[i];
	}
	for (i = keep; i < info->i_nvars; i++)
		memset(&info->i_vars[i], 0, sizeof(info->i_vars[i]));
	info->i_nvars = keep;
	return 0;
}

int
bts_analyze(const char *code, size_t len, struct bts_info *info, char *err,
    size_t errlen)
{
	struct lexer	 lx;
	struct scan	 sc;
	int		 ret = -1;

	memset(info, 0, sizeof(*info));
	memset(&lx, 0, sizeof(lx));
	memset(&sc, 0, sizeof(sc));
	info->i_meta.m_table_retain_lines = -1;
	info->i_meta.m_interval_ms = -1;
	if (code == NULL) {
		code = "";
		len = 0;
	}
	if (len > BTS_MAX_CODE) {
		seterr(err, errlen, "script too large");
		goto fail;
	}
	if (memchr(code, '\0', len) != NULL) {
		seterr(err, errlen, "script contains a NUL byte");
		goto fail;
	}
	lx.l_code = code;
	lx.l_len = len;
	lx.l_bol = 1;
	lx.l_meta = &info->i_meta;
	lx.l_err = err;
	lx.l_errlen = errlen;
	if (lex_run(&lx) == -1)
		goto fail;
	sc.s_vars = calloc(BTS_MAX_VARS, sizeof(*sc.s_vars));
	if (sc.s_vars == NULL ||
	    link_brackets(code, lx.l_toks, lx.l_ntok) == -1) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	sc.s_code = code;
	sc.s_toks = lx.l_toks;
	sc.s_ntok = lx.l_ntok;
	sc.s_err = err;
	sc.s_errlen = errlen;
	if (scan_run(&sc) == -1)
		goto fail;
	info->i_vars = sc.s_vars;	/* info owns them from here */
	info->i_nvars = sc.s_nvars;
	sc.s_vars = NULL;
	if (add_output(info, sc.s_output, err, errlen) == -1 ||
	    apply_include(info, err, errlen) == -1)
		goto fail;
	ret = 0;
fail:
	free(lx.l_toks);
	vars_free(sc.s_vars, sc.s_nvars);
	if (ret == -1)
		bts_info_free(info);
	return ret;
}

/* --- rewriting --- */

static int
needs_print_block(const struct bts_info *info)
{
	size_t	 i;

	if (info == NULL || info->i_meta.m_custom_output_block ||
	    info->i_meta.m_on_demand)
		return 0;
	for (i = 0; i < info->i_nvars; i++)
		if (info->i_vars[i].v_kind != BTS_OUTPUT)
			return 1;
	return 0;
}

/* " print(@a); print(@b); ..." over the exported non-output variables */
static void
print_calls(struct buf *b, const struct bts_info *info)
{
	for (size_t i = 0; i < info->i_nvars; i++) {
		if (info->i_vars[i].v_kind == BTS_OUTPUT)
			continue;
		buf_printf(b, " print(@%s);", info->i_vars[i].v_bare ? "" :
		    info->i_vars[i].v_name);
	}
}

static char *
take_or_null(struct buf *b, size_t *lenp)
{
	if (b->b_failed) {
		buf_free(b);
		return NULL;
	}
	return buf_take(b, lenp);
}

char *
bts_rewrite(const char *code, size_t len, const struct bts_info *info,
    long interval_ms, size_t *lenp)
{
	struct buf	 b;

	buf_init(&b, 2 * len + BTS_REWRITE_ROOM);
	if (len > 0)
		buf_append(&b, code, len);
	if (needs_print_block(info)) {
		if (interval_ms < 1)
			interval_ms = BTS_DEFAULT_INTERVAL_MS;
		buf_printf(&b, "\ninterval:ms:%ld {", interval_ms);
		print_calls(&b, info);
		buf_puts(&b, " }\n");
	}
	return take_or_null(&b, lenp);
}

char *
bts_rewrite_usr1(const char *code, size_t len, const struct bts_info *info,
    size_t *lenp)
{
	struct buf	 b;
	size_t		 i;

	buf_init(&b, 2 * len + BTS_REWRITE_ROOM);
	if (len > 0)
		buf_append(&b, code, len);
	for (i = 0; info != NULL && i < info->i_nvars; i++)
		if (info->i_vars[i].v_kind != BTS_OUTPUT)
			break;
	if (info != NULL && i < info->i_nvars) {
		buf_puts(&b, "\nself:signal:SIGUSR1 {");
		print_calls(&b, info);
		buf_puts(&b, " }\n");
	}
	return take_or_null(&b, lenp);
}
