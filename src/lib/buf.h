/* SPDX-License-Identifier: MIT */
/*
 * buf.h - a capped, growable byte buffer. Every buffer has a cap, given
 * to buf_init: a named limit or constant that says why that size (there
 * is no "uncapped": a cap of 0 is a programming error, asserted). Appends
 * past the cap fail with E2BIG and make the buffer "failed" (sticky), so
 * writers may append many times and check once. A buffer given a memory
 * ceiling (buf_charge_to) charges its capacity to it as it grows and
 * releases it when freed; a refused charge fails the buffer like the cap
 * does (BUF_REFUSED).
 * Depends on memcap.c only, so it can be tested alone.
 */
#ifndef BT_BUF_H
#define BT_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct memcap;

/* the largest cap: the capacity doubles and adds 1 without overflow */
#define BUF_MAX		(SIZE_MAX / 2)

/* why a buffer failed (b_failed, sticky until reset) */
#define BUF_TOO_BIG	1	/* past b_max */
#define BUF_NOMEM	2	/* malloc failed */
#define BUF_REFUSED	3	/* the memory ceiling refused the growth */

struct buf {
	char		*b_data;
	size_t		 b_len;
	size_t		 b_cap;
	size_t		 b_max;		/* hard cap on b_len */
	int		 b_failed;	/* sticky: an append failed, BUF_* */
	struct memcap	*b_mc;		/* NULL: not charged */
	size_t		 b_charged;	/* bytes charged to b_mc (b_cap) */
};

void	 buf_init(struct buf *b, size_t max);
int	 buf_append(struct buf *b, const void *data, size_t len);
int	 buf_puts(struct buf *b, const char *s);
int	 buf_putc(struct buf *b, char c);
int	 buf_printf(struct buf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	 buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	    __attribute__((format(printf, 2, 0)));
int	 buf_reserve(struct buf *b, size_t extra);
char	*buf_take(struct buf *b, size_t *lenp);
void	 buf_charge_to(struct buf *b, struct memcap *mc);
char	*buf_take_charged(struct buf *b, size_t *lenp, size_t *chargedp);
void	 buf_reset(struct buf *b);
void	 buf_truncate(struct buf *b, size_t len);
void	 buf_free(struct buf *b);
const char *buf_cstr(struct buf *b);

#endif
