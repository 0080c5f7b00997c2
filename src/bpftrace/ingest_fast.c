/* SPDX-License-Identifier: MIT */
/*
 * ingest_fast.c - the one-pass reader for the usual shape of a map, hist
 * or stats print (see fast_line below and ingest_int.h): no allocation
 * per key, names staged where they are in the line. Runs on the
 * ingester's thread; no globals.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_int.h"

/* --- reading a print: the fast path -------------------------------------- */

/*
 * One pass over a line of the shape bpftrace prints for map, hist and
 * stats, {"type": "T", "data": {"@name": VALUE}}, with plain ASCII member
 * names (no escapes) and integer values: keys are staged where they are
 * in the line, numbers are read once. It stages exactly what the generic
 * path would for such a line. At anything else (escapes, other bytes,
 * decimals, strings, more members, any error) it stops before anything
 * changed and the line takes the generic path, which validates it and
 * says what is wrong.
 */

struct fcur {
	const char	*p, *end;
};

static inline void
f_ws(struct fcur *f)
{
	while (f->p < f->end && jr_is_ws(*f->p))
		f->p++;
}

/* The next non-blank byte is c: steps over it. */
static inline int
f_eat(struct fcur *f, char c)
{
	f_ws(f);
	if (f->p < f->end && *f->p == c) {
		f->p++;
		return 0;
	}
	return -1;
}

/* The next non-blank byte, not consumed; -1 at the end. */
static inline int
f_peek(struct fcur *f)
{
	f_ws(f);
	return f->p < f->end ? (unsigned char)*f->p : -1;
}

static inline int
f_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* A string of plain ASCII: where it is in the line. */
static inline int
f_string(struct fcur *f, const char **s, size_t *n)
{
	const char	*q;

	if (f_eat(f, '"') == -1)
		return -1;
	for (q = f->p; q < f->end && f_plain((unsigned char)*q); q++)
		;
	if (q >= f->end || *q != '"')
		return -1;
	*s = f->p;
	*n = (size_t)(q - f->p);
	f->p = q + 1;
	return 0;
}

/* A member name and its ':'. */
static inline int
f_key(struct fcur *f, const char **s, size_t *n)
{
	if (f_string(f, s, n) == -1 || f_eat(f, ':') == -1)
		return -1;
	return 0;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * Up to 8 leading decimal digits of p[0..8) at once: their value in *v,
 * their count returned (0..8).
 */
static inline unsigned
digits8(const char *p, uint64_t *v)
{
	uint64_t	 raw, x, bad;
	unsigned	 n;

	memcpy(&raw, p, 8);
	x = raw - 0x3030303030303030ULL;
	/*
	 * A byte's top bit set: it was below '0' (x) or above '9' (raw +
	 * 0x46). Borrows and carries only move to later bytes, so the
	 * first flagged byte is the first that is not a digit.
	 */
	bad = (x | (raw + 0x4646464646464646ULL)) & 0x8080808080808080ULL;
	n = bad ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
	if (n == 0)
		return 0;
	x <<= 8 * (8 - n);	/* the digits to the top, zeros before */
	x = (x * 10 + (x >> 8)) & 0x00ff00ff00ff00ffULL;
	x = (x * 100 + (x >> 16)) & 0x0000ffff0000ffffULL;
	x = (x * 10000 + (x >> 32)) & 0x00000000ffffffffULL;
	*v = x;
	return n;
}
#endif

/* An integer, read as jr_number and parse_int read it. */
static int
f_int(struct fcur *f, struct raw *out)
{
	static const uint64_t	 pow10[] = { 1, 10, 100, 1000, 10000,
	    100000, 1000000, 10000000, 100000000 };
	const char	*q, *end = f->end;
	uint64_t	 mag = 0, part;
	unsigned	 d, n, nd = 0;
	int		 neg = 0;

	f_ws(f);
	q = f->p;
	if (q < end && *q == '-') {
		neg = 1;
		q++;
	}
	if (q >= end || *q < '0' || *q > '9')
		return -1;
	if (*q == '0')
		q++;
	else {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		/* whole blocks of 8 while no overflow is possible */
		while (nd <= 11 && end - q >= 8 &&
		    (n = digits8(q, &part)) > 0) {
			mag = mag * pow10[n] + part;
			nd += n;
			q += n;
			if (n < 8)
				break;
		}
#endif
		for (; q < end && *q >= '0' && *q <= '9'; q++) {
			d = (unsigned)(*q - '0');
			if (++nd > 19 && mag > (UINT64_MAX - d) / 10)
				return -1;
			mag = mag * 10 + d;
		}
	}
	if (q < end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' ||
	    *q == 'E'))
		return -1;
	if (neg && mag > (uint64_t)INT64_MAX + 1)
		return -1;
	out->k = R_I64;
	if (neg)
		out->i = mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
	else if (mag <= (uint64_t)INT64_MAX)
		out->i = (int64_t)mag;
	else {
		out->k = R_U64;
		out->u = mag;
	}
	f->p = q;
	return 0;
}

/* The next member of an object: 1 after ',', 0 after the '}'. */
static inline int
f_more(struct fcur *f, char close)
{
	if (f_eat(f, ',') == 0)
		return 1;
	return f_eat(f, close) == 0 ? 0 : -1;
}

/* Opens an object or array: 1 when it has members, 0 when empty. */
static inline int
f_open(struct fcur *f, char open, char close)
{
	if (f_eat(f, open) == -1)
		return -1;
	return f_eat(f, close) == 0 ? 0 : 1;
}

/*
 * {"sub": n, ...}: instances "sub" of a map, or with key (a keyed
 * stats()) instances "key:sub"
 */
static int
fast_ints(struct ingest *ing, struct fcur *f, struct ing_var *v,
    const char *key, size_t klen)
{
	struct raw	 raw;
	const char	*s;
	size_t		 n;
	int		 rv;

	if ((rv = f_open(f, '{', '}')) <= 0)
		return rv;
	do {
		if (f_key(f, &s, &n) == -1 || f_int(f, &raw) == -1)
			return -1;
		if (key != NULL &&
		    (s = map_joined_name(ing, key, klen, s, n, &n)) == NULL)
			return -1;
		if (map_put(ing, v, s, n, &raw) == -1)
			return -1;
	} while ((rv = f_more(f, '}')) == 1);
	return rv;
}

static int
fast_map(struct ingest *ing, struct fcur *f, struct ing_var *v)
{
	struct raw	 raw;

	if (v->iv_scalar)
		return f_int(f, &raw) == -1 ? -1 :
		    map_put(ing, v, NULL, 0, &raw);
	return fast_ints(ing, f, v, NULL, 0);
}

static int
fast_bucket(struct ingest *ing, struct fcur *f, struct ing_var *v,
    const char *key, size_t klen, int keyed)
{
	struct raw	 lo, hi, count, x;
	const char	*s;
	size_t		 n;
	char		*name;
	int		 rv, haslo = 0, hashi = 0, hascount = 0;

	memset(&lo, 0, sizeof(lo));
	if (f_eat(f, '{') == -1)
		return -1;
	do {
		if (f_key(f, &s, &n) == -1 || f_int(f, &x) == -1)
			return -1;
		if (n == 3 && memcmp(s, "min", 3) == 0) {
			lo = x;
			haslo = 1;
		} else if (n == 3 && memcmp(s, "max", 3) == 0) {
			hi = x;
			hashi = 1;
		} else if (n == 5 && memcmp(s, "count", 5) == 0) {
			count = x;
			hascount = 1;
		} else
			return -1;
	} while ((rv = f_more(f, '}')) == 1);
	if (rv == -1 || !hascount)
		return -1;
	if ((name = map_bucket_name(ing, key, klen, keyed, haslo ? &lo : NULL,
	    hashi ? &hi : NULL, &n)) == NULL)
		return -1;
	return map_put_bucket(ing, v, name, n, &count, keyed ? klen : 0,
	    !haslo, &lo);
}

static int
fast_buckets(struct ingest *ing, struct fcur *f, struct ing_var *v,
    const char *key, size_t klen, int keyed)
{
	int	 rv;

	if ((rv = f_open(f, '[', ']')) <= 0)
		return rv;
	do {
		if (fast_bucket(ing, f, v, key, klen, keyed) == -1)
			return -1;
	} while ((rv = f_more(f, ']')) == 1);
	return rv;
}

static int
fast_hist(struct ingest *ing, struct fcur *f, struct ing_var *v)
{
	const char	*s;
	size_t		 n;
	int		 rv;

	if (v->iv_scalar)
		return -1;
	if (f_peek(f) == '[')
		return fast_buckets(ing, f, v, "", 0, 0);
	if ((rv = f_open(f, '{', '}')) <= 0)
		return rv;
	do {
		if (f_key(f, &s, &n) == -1 ||
		    fast_buckets(ing, f, v, s, n, 1) == -1)
			return -1;
	} while ((rv = f_more(f, '}')) == 1);
	return rv;
}

static int
fast_stats(struct ingest *ing, struct fcur *f, struct ing_var *v)
{
	struct raw	 raw;
	const char	*s;
	size_t		 n;
	int		 rv;

	if (v->iv_scalar)
		return f_peek(f) == '{' ? -1 : fast_map(ing, f, v);
	if ((rv = f_open(f, '{', '}')) <= 0)
		return rv;
	do {
		if (f_key(f, &s, &n) == -1)
			return -1;
		if (f_peek(f) == '{')
			rv = fast_ints(ing, f, v, s, n);
		else
			rv = f_int(f, &raw) == -1 ? -1 :
			    map_put(ing, v, s, n, &raw);
		if (rv == -1)
			return -1;
	} while ((rv = f_more(f, '}')) == 1);
	return rv;
}

/* "name" of {"name" with exactly those plain bytes */
static int
f_is(const char *s, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(s, want, n) == 0;
}

/*
 * The whole line on the fast path: 0 used, -1 invalid (no memory while
 * committing), ING_SLOW when the generic path must read it instead.
 */
int
fast_line(struct ingest *ing, const char *line, size_t len)
{
	struct fcur	 f = { line, line + len };
	struct ing_var	*v;
	const char	*s;
	char		 name[64];
	size_t		 n;
	enum msgtype	 t;
	int		 rv;

	if (f_eat(&f, '{') == -1 || f_key(&f, &s, &n) == -1 ||
	    !f_is(s, n, "type") || f_string(&f, &s, &n) == -1)
		return ING_SLOW;
	t = f_is(s, n, "map") ? M_MAP : f_is(s, n, "hist") ? M_HIST :
	    f_is(s, n, "stats") ? M_STATS : M_UNKNOWN;
	if (t == M_UNKNOWN || f_eat(&f, ',') == -1 ||
	    f_key(&f, &s, &n) == -1 || !f_is(s, n, "data") ||
	    f_eat(&f, '{') == -1 || f_key(&f, &s, &n) == -1 || n == 0 ||
	    s[0] != '@' || n > sizeof(name))
		return ING_SLOW;
	memcpy(name, s + 1, n - 1);
	name[n - 1] = '\0';
	v = ingest_var_by_name(ing, n > 1 ? name : "root");
	if (v == NULL || v->iv_kind == BTS_OUTPUT)
		return ING_SLOW;
	map_begin(&ing->stage, v, t == M_HIST);
	rv = t == M_HIST ? fast_hist(ing, &f, v) : t == M_STATS ?
	    fast_stats(ing, &f, v) : fast_map(ing, &f, v);
	if (rv == 0 && (f_eat(&f, '}') == -1 || f_eat(&f, '}') == -1 ||
	    f_peek(&f) != -1))
		rv = -1;
	if (rv == 0)
		rv = map_commit(ing, v);
	else {
		ing->ebuf[0] = '\0';	/* the generic path tells */
		rv = ING_SLOW;
	}
	map_reset(&ing->stage);
	return rv;
}
