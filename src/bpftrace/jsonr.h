/* SPDX-License-Identifier: MIT */
/*
 * jsonr.h - the small JSON pull reader ingest.c reads bpftrace's lines
 * with: exact 64-bit integers, length-aware strings with bpftrace 0.17's
 * \uffffffXX repaired to bytes and invalid UTF-8 made U+FFFD, depth and
 * size limits, duplicate keys allowed. No state outside struct jr.
 */
#ifndef BT_JSONR_H
#define BT_JSONR_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/*
 * The most n bytes of JSON string decode to (jr_string, jr_unescape): an
 * escape never grows, an invalid byte becomes U+FFFD (3 bytes). A cap
 * for a buffer that holds what a text decodes to (+1: never 0).
 */
#define JR_DECODED_MAX(n)	(3 * (size_t)(n) + 1)

/* JSON nesting accepted (ingest.h's ING_MAX_DEPTH, under that name in the
   error text as it always was) */
#define JR_MAX_DEPTH		32

struct jr {
	const char	*p;
	const char	*end;
	const char	*start;		/* of the line, for error offsets */
	int		 depth;
	char		*err;		/* first error wins */
	size_t		 errlen;
};

/* a scalar as read from JSON; s is owned */
enum rk { R_NULL, R_BOOL, R_I64, R_U64, R_DBL, R_STR, R_JSON };

struct raw {
	enum rk		 k;
	int64_t		 i;	/* R_I64, R_BOOL */
	uint64_t	 u;	/* R_U64 */
	double		 d;	/* R_DBL */
	char		*s;	/* R_STR, R_JSON (compact JSON text) */
};

int		jr_fail(struct jr *r, const char *what);
int		jr_is_ws(char c);
int		jr_peek(struct jr *r);
int		jr_string(struct jr *r, struct buf *out);
int		jr_unescape(const char *s, size_t n, struct buf *out);
int		jr_open(struct jr *r);
int		jr_next(struct jr *r, char close, size_t *idx, struct buf *key);
int		jr_skip(struct jr *r);
void		jr_raw_free(struct raw *v);
char	*jr_memdup(const char *s, size_t n);
int		jr_raw(struct jr *r, struct raw *v, struct buf *sb, struct buf *tmp);
int		jr_value(struct jr *r, struct raw *v, struct buf *sb,
		    struct buf *tmp);
int		jr_raw_int(const struct raw *v, struct raw *out);
int		jr_raw_needs_string(const struct raw *v);

#endif
