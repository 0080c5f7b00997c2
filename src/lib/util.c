/* SPDX-License-Identifier: MIT */
/*
 * util.c - checked number parsing, error text, clocks and JSON string
 * escaping. JSON escaping follows pmproxy: '"', '\\' and control bytes are
 * written as uppercase \u00XX; invalid UTF-8 bytes become U+FFFD so that
 * every answer stays valid JSON.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "buf.h"
#include "util.h"

/*
 * Numbers: every number bpftraced reads goes through the strtonum(3)
 * family below (whole string, range [min, max], errstr "empty",
 * "invalid", "too small" or "too large" and 0 on failure). Only these
 * call the C library's strto* functions.
 */

/* strtonum(3) equivalent: base 10, whole string, range checked. */
long long
strtonum_ll(const char *s, long long min, long long max, const char **errstr)
{
	char		*end;
	long long	 v;

	*errstr = NULL;
	if (s == NULL || *s == '\0') {
		*errstr = "empty";
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || end == s) {
		*errstr = "invalid";
		return 0;
	}
	if (errno == ERANGE || v < min) {
		*errstr = v < min ? "too small" : "too large";
		return 0;
	}
	if (v > max) {
		*errstr = "too large";
		return 0;
	}
	return v;
}

/*
 * The unsigned number at the start of s as strtoull(3) reads it in base
 * (leading white space, a '+', base 0's 0x and 0 prefixes), *end just
 * past it. A minus sign is "invalid": strtoull would wrap it around.
 */
static unsigned long long
ull_prefix(const char *s, int base, unsigned long long min,
    unsigned long long max, const char **end, const char **errstr)
{
	const char		*p = s;
	char			*e;
	unsigned long long	 v;

	*errstr = NULL;
	*end = s;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '-') {
		*errstr = "invalid";
		return 0;
	}
	errno = 0;
	v = strtoull(s, &e, base);
	if (e == s) {
		*errstr = "invalid";
		return 0;
	}
	*end = e;
	if (errno == ERANGE || v > max) {
		*errstr = "too large";
		return 0;
	}
	if (v < min) {
		*errstr = "too small";
		return 0;
	}
	return v;
}

/*
 * strtonum(3) for the whole unsigned 64-bit range, in base (10, 16, or
 * 0: C's "0x" hex and "0" octal as well): whole string, no minus sign.
 */
unsigned long long
strtonum_ull_base(const char *s, int base, unsigned long long min,
    unsigned long long max, const char **errstr)
{
	const char		*end;
	unsigned long long	 v;

	if (s == NULL || *s == '\0') {
		*errstr = "empty";
		return 0;
	}
	v = ull_prefix(s, base, min, max, &end, errstr);
	if (*errstr == NULL && *end != '\0') {
		*errstr = "invalid";
		return 0;
	}
	return v;
}

/* strtonum_ull_base in base 10 */
unsigned long long
strtonum_ull(const char *s, unsigned long long min, unsigned long long max,
    const char **errstr)
{
	return strtonum_ull_base(s, 10, min, max, errstr);
}

/*
 * n base-10 numbers joined by dots: a pmID "D.C.I", an instance domain
 * "D.S", a version "0.17.0". Each is read as strtonum_ull reads one and
 * must be within [0, max[i]]; they go to v[0..n). end NULL: nothing may
 * follow the n-th number; else text may follow it (where no digit can
 * go on, as in "0.17.0" read as 2 numbers or "0.21-rc1") and *end points
 * there. 0, or -1 with *errstr set.
 */
int
strtonum_dotted(const char *s, int n, const unsigned long long *max,
    unsigned long long *v, const char **end, const char **errstr)
{
	const char	*p = s;

	if (s == NULL || *s == '\0') {
		*errstr = "empty";
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (i > 0 && *p++ != '.') {
			*errstr = "invalid";
			return -1;
		}
		v[i] = ull_prefix(p, 10, 0, max[i], &p, errstr);
		if (*errstr != NULL)
			return -1;
	}
	if (end != NULL)
		*end = p;
	else if (*p != '\0') {
		*errstr = "invalid";
		return -1;
	}
	return 0;
}

/*
 * strtonum(3) for doubles: the whole string in strtod(3)'s syntax, within
 * [min, max]. NaN is "invalid"; an infinity (the word, or a number past
 * the double range) is within [-HUGE_VAL, HUGE_VAL] only. A value too
 * close to 0 to represent reads as the nearest one (0 or subnormal), as
 * strtod gives it. errno is then as strtod left it: ERANGE after a number
 * past the range or too close to 0, for a caller that refuses those, 0
 * after any other success.
 */
double
strtonum_d(const char *s, double min, double max, const char **errstr)
{
	char	*end;
	double	 v;

	*errstr = NULL;
	if (s == NULL || *s == '\0') {
		*errstr = "empty";
		return 0;
	}
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || end == s || isnan(v)) {
		*errstr = "invalid";
		return 0;
	}
	if (v < min) {
		*errstr = "too small";
		return 0;
	}
	if (v > max) {
		*errstr = "too large";
		return 0;
	}
	return v;
}

/* Finite double, whole string, not underflowed. Returns -1 on failure. */
int
parse_double(const char *s, double *out)
{
	const char	*errstr;
	double		 v;

	v = strtonum_d(s, -DBL_MAX, DBL_MAX, &errstr);
	if (errstr != NULL || errno == ERANGE)
		return -1;
	*out = v;
	return 0;
}

void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int64_t
now_mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
now_real(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* The value of the hex digit c (either case), or -1. */
int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;	/* ASCII: 'A'..'F' is 'a'..'f' without this bit */
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Length of the valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t		 len, i;
	uint32_t	 cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2, cp = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3, cp = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return len;
}

int
utf8_valid(const char *s, size_t n)
{
	size_t	 i = 0, k;

	while (i < n) {
		if ((k = utf8_seq((const unsigned char *)s + i, n - i)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

int
json_strn(struct buf *b, const char *s, size_t n)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, run, k;

	if (buf_reserve(b, n + 2) == -1)
		return -1;
	buf_putc(b, '"');
	while (i < n) {
		/* copy the longest run of plain bytes at once */
		for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x80 &&
		    p[run] != '"' && p[run] != '\\'; run++)
			;
		if (run > i) {
			buf_append(b, p + i, run - i);
			i = run;
			continue;
		}
		if (p[i] < 0x20 || p[i] == '"' || p[i] == '\\') {
			char	 esc[6] = { '\\', 'u', '0', '0',
			    hex[p[i] >> 4], hex[p[i] & 15] };
			buf_append(b, esc, 6);
			i++;
		} else if ((k = utf8_seq(p + i, n - i)) != 0) {
			buf_append(b, p + i, k);
			i += k;
		} else {
			buf_puts(b, "\\uFFFD");
			i++;
		}
	}
	return buf_putc(b, '"');
}

/*
 * s[0..n) as a JSON string the way Python's json.dumps writes it (short
 * escapes \" \\ \n \t \r \b \f, \u00XX for other control bytes,
 * UTF-8 kept), quotes included, in at most max bytes: the text is cut at
 * a character boundary when it does not fit. Returns the bytes of s
 * written; -1 out of memory (or max < 2).
 */
ssize_t
json_strn_short(struct buf *b, const char *s, size_t n, size_t max)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, used = 2, k;
	char			 esc[8];

	if (max < 2 || buf_reserve(b, (n + 2 < max ? n + 2 : max)) == -1)
		return -1;
	buf_putc(b, '"');
	while (i < n) {
		const char	*sh = NULL;

		switch (p[i]) {
		case '"': sh = "\\\""; break;
		case '\\': sh = "\\\\"; break;
		case '\n': sh = "\\n"; break;
		case '\t': sh = "\\t"; break;
		case '\r': sh = "\\r"; break;
		case '\b': sh = "\\b"; break;
		case '\f': sh = "\\f"; break;
		default: break;
		}
		if (sh) {
			k = 1;
			snprintf(esc, sizeof(esc), "%s", sh);
		} else if (p[i] < 0x20) {
			k = 1;
			snprintf(esc, sizeof(esc), "\\u00%c%c", hex[p[i] >> 4],
			    hex[p[i] & 15]);
		} else if (p[i] < 0x80) {
			k = 1;
			esc[0] = (char)p[i];
			esc[1] = '\0';
		} else if ((k = utf8_seq(p + i, n - i)) != 0) {
			memcpy(esc, p + i, k);
			esc[k] = '\0';
		} else {
			k = 1;
			snprintf(esc, sizeof(esc), "\\uFFFD");
		}
		if (used + strlen(esc) > max)
			break;
		buf_puts(b, esc);
		used += strlen(esc);
		i += k;
	}
	buf_putc(b, '"');
	return b->b_failed ? -1 : (ssize_t)i;
}

int
json_str(struct buf *b, const char *s)
{
	return json_strn(b, s ? s : "", s ? strlen(s) : 0);
}

/* Fill p with random bytes (getrandom; falls back to random()). */
void
random_bytes(void *p, size_t len)
{
	unsigned char	*c = p;
	ssize_t		 n = getrandom(p, len, 0);

	for (size_t i = n < 0 ? 0 : (size_t)n; i < len; i++)
		c[i] = (unsigned char)random();
}
