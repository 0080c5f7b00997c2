/* SPDX-License-Identifier: MIT */
/*
 * jsonr.c - the JSON pull reader behind ingest.c (see jsonr.h): one line
 * at a time, validating and reading in the same code, never allocating
 * more than the caller's buffers. Pure functions over struct jr.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonr.h"
#include "util.h"

/* --- JSON pull reader ------------------------------------------------ */



int
jr_fail(struct jr *r, const char *what)
{
	if (r->err != NULL && r->err[0] == '\0')
		snprintf(r->err, r->errlen, "invalid JSON at byte %zu: %s",
		    (size_t)(r->p - r->start), what);
	return -1;
}

static int
jr_oom(struct jr *r)
{
	if (r->err != NULL && r->err[0] == '\0')
		snprintf(r->err, r->errlen, "out of memory");
	return -1;
}

int
jr_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Skips whitespace; returns the next byte, or -1 at the end. */
int
jr_peek(struct jr *r)
{
	while (r->p < r->end && jr_is_ws(*r->p))
		r->p++;
	return r->p < r->end ? (unsigned char)*r->p : -1;
}

static int
hex4(const char *p, const char *end, uint32_t *out)
{
	int	 i, h;

	if (end - p < 4)
		return -1;
	*out = 0;
	for (i = 0; i < 4; i++) {
		if ((h = hex_value(p[i])) < 0)
			return -1;
		*out = *out << 4 | (uint32_t)h;
	}
	return 0;
}

/*
 * bpftrace 0.17+ writes a byte >= 0x80 as \uffffffXX (a sign-extended
 * char through %04x). p points at the backslash; returns the byte or -1.
 */
static int
sext_byte(const char *p, const char *end)
{
	int	 i, hi, lo;

	if (end - p < 10)
		return -1;
	for (i = 2; i < 8; i++)
		if (p[i] != 'f' && p[i] != 'F')
			return -1;
	hi = hex_value(p[8]);
	lo = hex_value(p[9]);
	if (hi < 8 || lo < 0)
		return -1;
	return hi << 4 | lo;
}

static int
put_utf8(struct buf *b, uint32_t cp)
{
	char	 s[4];
	size_t	 n;

	if (cp < 0x80) {
		s[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (char)(0xc0 | cp >> 6);
		s[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (char)(0xe0 | cp >> 12);
		s[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		s[0] = (char)(0xf0 | cp >> 18);
		s[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		s[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(b, s, n);
}

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	size_t		 len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		lo = s[0] == 0xe0 ? 0xa0 : 0x80;
		hi = s[0] == 0xed ? 0x9f : 0xbf;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		lo = s[0] == 0xf0 ? 0x90 : 0x80;
		hi = s[0] == 0xf4 ? 0x8f : 0xbf;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* Replaces each invalid byte in b[from..] by U+FFFD. -1: no memory. */
static int
utf8_fix(struct buf *b, size_t from)
{
	const unsigned char	*s;
	unsigned char		*tail;
	size_t			 i, n, len;
	int			 rv = 0;

	for (i = from; i < b->b_len; i += len) {
		s = (const unsigned char *)b->b_data;
		if ((len = utf8_seq(s + i, b->b_len - i)) == 0)
			break;
	}
	if (i >= b->b_len)
		return 0;
	n = b->b_len - i;
	if ((tail = malloc(n)) == NULL)
		return -1;
	memcpy(tail, b->b_data + i, n);
	b->b_len = i;
	for (i = 0; i < n && rv == 0; i += len) {
		if ((len = utf8_seq(tail + i, n - i)) != 0)
			rv = buf_append(b, tail + i, len);
		else {
			rv = put_utf8(b, 0xfffd);
			len = 1;
		}
	}
	free(tail);
	return rv;
}

/* r->p at a backslash inside a string; out may be NULL (validate). */
static int
jr_escape(struct jr *r, struct buf *out)
{
	static const char	 in[] = "\"\\/bfnrt";
	static const char	 to[] = "\"\\/\b\f\n\r\t";
	const char		*c;
	uint32_t		 cp, lo;
	int			 byte, rv = 0;

	if (r->end - r->p < 2)
		return jr_fail(r, "truncated escape");
	if (r->p[1] != 'u') {
		if (r->p[1] == '\0' || (c = strchr(in, r->p[1])) == NULL)
			return jr_fail(r, "bad escape");
		r->p += 2;
		return out ? buf_putc(out, to[c - in]) : 0;
	}
	if ((byte = sext_byte(r->p, r->end)) >= 0) {
		r->p += 10;
		if (out) {
			char ch = (char)byte;
			rv = buf_append(out, &ch, 1);
		}
		return rv;
	}
	if (hex4(r->p + 2, r->end, &cp) == -1)
		return jr_fail(r, "bad \\u escape");
	r->p += 6;
	if (cp >= 0xd800 && cp <= 0xdbff && r->end - r->p >= 6 &&
	    r->p[0] == '\\' && r->p[1] == 'u' &&
	    hex4(r->p + 2, r->end, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		r->p += 6;
	} else if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0)
		cp = 0xfffd;
	return out ? put_utf8(out, cp) : 0;
}

/* Decodes the string at r->p, appending it to out (NULL: validate). */
int
jr_string(struct jr *r, struct buf *out)
{
	const char	*q;
	size_t		 from = out ? out->b_len : 0;

	if (r->p >= r->end || *r->p != '"')
		return jr_fail(r, "expected a string");
	r->p++;
	for (;;) {
		if (r->p >= r->end)
			return jr_fail(r, "unterminated string");
		if (*r->p == '"')
			break;
		if ((unsigned char)*r->p < 0x20)
			return jr_fail(r, "control byte in string");
		if (*r->p == '\\') {
			if (jr_escape(r, out) == -1)
				return out && out->b_failed ? jr_oom(r) : -1;
			continue;
		}
		for (q = r->p; q < r->end && *q != '"' && *q != '\\' &&
		    (unsigned char)*q >= 0x20; q++)
			;
		if (out && buf_append(out, r->p, (size_t)(q - r->p)) == -1)
			return jr_oom(r);
		r->p = q;
	}
	r->p++;
	if (out && utf8_fix(out, from) == -1)
		return jr_oom(r);
	return 0;
}

/*
 * Decodes the JSON escapes in s[0..n) once more (bpftrace 0.18-0.23 escape
 * string map keys twice), appending to out; other bytes are copied as
 * they are. -1 at a bad escape or on no memory (out is then partial).
 */
int
jr_unescape(const char *s, size_t n, struct buf *out)
{
	struct jr	 r = { .p = s, .end = s + n, .start = s };
	const char	*q;
	size_t		 from = out->b_len;

	while (r.p < r.end) {
		if (*r.p == '\\') {
			if (jr_escape(&r, out) == -1)
				return -1;
			continue;
		}
		for (q = r.p; q < r.end && *q != '\\'; q++)
			;
		if (buf_append(out, r.p, (size_t)(q - r.p)) == -1)
			return -1;
		r.p = q;
	}
	return out->b_failed || utf8_fix(out, from) == -1 ? -1 : 0;
}

/*
 * Integer text "-?[0-9]+" to R_I64 (when it fits) or R_U64. -1 when it
 * is not such text or is outside both 64-bit ranges.
 */
static int
parse_int(const char *s, size_t n, struct raw *out)
{
	uint64_t	 mag = 0;
	unsigned	 d;
	size_t		 i = 0;
	int		 neg = 0;

	if (n > 0 && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == n)
		return -1;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (mag > (UINT64_MAX - d) / 10)
			return -1;
		mag = mag * 10 + d;
	}
	if (neg && mag > (uint64_t)INT64_MAX + 1)
		return -1;
	if (neg) {
		out->k = R_I64;
		out->i = mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
	} else if (mag <= (uint64_t)INT64_MAX) {
		out->k = R_I64;
		out->i = (int64_t)mag;
	} else {
		out->k = R_U64;
		out->u = mag;
	}
	return 0;
}

static int
is_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

static const char *
skip_digits(const char *p, const char *end)
{
	while (is_digit(p, end))
		p++;
	return p;
}

/* Decimal with a fraction or exponent: must be finite. */
static int
jr_decimal(struct jr *r, const char *s, size_t n, struct raw *out)
{
	const char	*errstr;
	char		*tmp;
	double		 d;

	if ((tmp = malloc(n + 1)) == NULL)
		return jr_oom(r);
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	/* finite; too close to 0 reads as 0 (or subnormal) */
	d = strtonum_d(tmp, -DBL_MAX, DBL_MAX, &errstr);
	free(tmp);
	if (errstr != NULL)
		return jr_fail(r, "number out of range");
	if (out) {
		out->k = R_DBL;
		out->d = d;
	}
	return 0;
}

/* The JSON number at r->p; integers never go through a double. */
static int
jr_number(struct jr *r, struct raw *out)
{
	const char	*s = r->p, *q = r->p, *end = r->end;
	struct raw	 tmp = { .k = R_NULL };
	int		 isint = 1;

	if (q < end && *q == '-')
		q++;
	if (!is_digit(q, end))
		return jr_fail(r, "unexpected byte");
	q = *q == '0' ? q + 1 : skip_digits(q, end);
	if (q < end && *q == '.') {
		isint = 0;
		if (!is_digit(++q, end))
			return jr_fail(r, "bad number");
		q = skip_digits(q, end);
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		isint = 0;
		if (++q < end && (*q == '+' || *q == '-'))
			q++;
		if (!is_digit(q, end))
			return jr_fail(r, "bad number");
		q = skip_digits(q, end);
	}
	if (!isint) {
		r->p = q;
		return jr_decimal(r, s, (size_t)(q - s), out);
	}
	if (parse_int(s, (size_t)(q - s), &tmp) == -1)
		return jr_fail(r, "integer out of 64-bit range");
	r->p = q;
	if (out)
		*out = tmp;
	return 0;
}

static int
jr_literal(struct jr *r, struct raw *out)
{
	static const struct {
		const char	*word;
		enum rk		 k;
		int		 v;
	} lits[] = { { "true", R_BOOL, 1 }, { "false", R_BOOL, 0 },
	    { "null", R_NULL, 0 } };
	size_t	 i, n;

	for (i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		n = strlen(lits[i].word);
		if ((size_t)(r->end - r->p) >= n &&
		    memcmp(r->p, lits[i].word, n) == 0) {
			r->p += n;
			if (out) {
				out->k = lits[i].k;
				out->i = lits[i].v;
			}
			return 0;
		}
	}
	return jr_fail(r, "unexpected byte");
}

/* Enters the object or array at r->p. */
int
jr_open(struct jr *r)
{
	if (++r->depth > JR_MAX_DEPTH)
		return jr_fail(r, "nested deeper than ING_MAX_DEPTH");
	r->p++;
	return 0;
}

/*
 * Steps to the next element of the container opened last. Returns 1
 * with r->p at the value (for an object, the member name decoded into
 * key, which may be NULL), 0 after the closing bracket, -1 on error.
 * *idx counts the elements seen; start it at 0.
 */
int
jr_next(struct jr *r, char close, size_t *idx, struct buf *key)
{
	int	 c = jr_peek(r);

	if (c == close) {
		r->p++;
		r->depth--;
		return 0;
	}
	if (*idx > 0) {
		if (c != ',')
			return jr_fail(r, c < 0 ? "unexpected end" :
			    "expected ',' or a closing bracket");
		r->p++;
		c = jr_peek(r);
	}
	if (close == '}') {
		if (c != '"')
			return jr_fail(r, "expected a member name");
		if (key)
			buf_reset(key);
		if (jr_string(r, key) == -1)
			return -1;
		if (jr_peek(r) != ':')
			return jr_fail(r, "expected ':'");
		r->p++;
	}
	jr_peek(r);
	(*idx)++;
	return 1;
}


static int
jr_skip_container(struct jr *r)
{
	char	 close = *r->p == '{' ? '}' : ']';
	size_t	 idx = 0;
	int	 rv;

	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, close, &idx, NULL)) == 1)
		if (jr_skip(r) == -1)
			return -1;
	return rv;
}

/* Validates and skips any value; recursion is bounded by the depth. */
int
jr_skip(struct jr *r)
{
	int	 c = jr_peek(r);

	if (c == '{' || c == '[')
		return jr_skip_container(r);
	if (c == '"')
		return jr_string(r, NULL);
	if (c == 't' || c == 'f' || c == 'n')
		return jr_literal(r, NULL);
	if (c < 0)
		return jr_fail(r, "unexpected end");
	return jr_number(r, NULL);
}

/* Appends s as a JSON string: '"', '\\' and control bytes escaped. */
static int
json_quote(struct buf *out, const char *s, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 c;
	size_t			 i;

	buf_putc(out, '"');
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			buf_putc(out, '\\');
			buf_putc(out, (char)c);
		} else if (c == '\n')
			buf_puts(out, "\\n");
		else if (c == '\t')
			buf_puts(out, "\\t");
		else if (c < 0x20) {
			buf_puts(out, "\\u00");
			buf_putc(out, hex[c >> 4]);
			buf_putc(out, hex[c & 15]);
		} else
			buf_putc(out, (char)c);
	}
	return buf_putc(out, '"');
}

/*
 * Re-writes the value at r->p as compact JSON into out (tuples, structs
 * shown as text). Strings are decoded and re-escaped (so \uffffffXX is
 * repaired); numbers and literals are copied verbatim. tmp is scratch.
 */
static int
jr_compact(struct jr *r, struct buf *out, struct buf *tmp)
{
	const char	*s;
	size_t		 idx = 0;
	char		 close;
	int		 c = jr_peek(r), rv;

	if (c == '"') {
		buf_reset(tmp);
		if (jr_string(r, tmp) == -1)
			return -1;
		json_quote(out, tmp->b_data ? tmp->b_data : "", tmp->b_len);
	} else if (c == '{' || c == '[') {
		close = c == '{' ? '}' : ']';
		if (jr_open(r) == -1)
			return -1;
		buf_putc(out, (char)c);
		while ((rv = jr_next(r, close, &idx, tmp)) == 1) {
			if (idx > 1)
				buf_putc(out, ',');
			if (close == '}') {
				json_quote(out, buf_cstr(tmp), tmp->b_len);
				buf_putc(out, ':');
			}
			if (jr_compact(r, out, tmp) == -1)
				return -1;
		}
		if (rv == -1)
			return -1;
		buf_putc(out, close);
	} else {
		s = r->p;
		if (jr_skip(r) == -1)
			return -1;
		buf_append(out, s, (size_t)(r->p - s));
	}
	return out->b_failed ? jr_oom(r) : 0;
}


void
jr_raw_free(struct raw *v)
{
	free(v->s);
	v->s = NULL;
}

char *
jr_memdup(const char *s, size_t n)
{
	char	*p;

	if ((p = malloc(n + 1)) == NULL)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/*
 * Reads any value into v; a string or container (as compact JSON text)
 * is left in sb, NUL-terminated, with v->s pointing at it (not owned:
 * valid until sb changes).
 */
int
jr_value(struct jr *r, struct raw *v, struct buf *sb, struct buf *tmp)
{
	int	 c = jr_peek(r);

	memset(v, 0, sizeof(*v));
	if (c == '"' || c == '{' || c == '[') {
		buf_reset(sb);
		if (c == '"' ? jr_string(r, sb) : jr_compact(r, sb, tmp))
			return -1;
		v->k = c == '"' ? R_STR : R_JSON;
		v->s = (char *)buf_cstr(sb);
		return sb->b_failed ? jr_oom(r) : 0;
	}
	if (c == 't' || c == 'f' || c == 'n')
		return jr_literal(r, v);
	if (c < 0)
		return jr_fail(r, "unexpected end");
	return jr_number(r, v);
}

/* Reads any value into v (v->s owned); containers become JSON text. */
int
jr_raw(struct jr *r, struct raw *v, struct buf *sb, struct buf *tmp)
{
	if (jr_value(r, v, sb, tmp) == -1) {
		v->s = NULL;
		return -1;
	}
	if (v->s != NULL && (v->s = jr_memdup(v->s, sb->b_len)) == NULL)
		return jr_oom(r);
	return 0;
}

/* An integer, or an integer given as a decimal string (0.24+). */
int
jr_raw_int(const struct raw *v, struct raw *out)
{
	if (v->k == R_I64 || v->k == R_U64) {
		*out = *v;
		out->s = NULL;
		return 0;
	}
	if (v->k == R_STR)
		return parse_int(v->s, strlen(v->s), out);
	return -1;
}

/* 1 when v cannot be stored in an INT/UINT variable. */
int
jr_raw_needs_string(const struct raw *v)
{
	struct raw	 n;

	if (v->k == R_DBL || v->k == R_JSON)
		return 1;
	return v->k == R_STR && jr_raw_int(v, &n) == -1;
}
