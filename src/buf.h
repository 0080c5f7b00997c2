/* SPDX-License-Identifier: MIT */
/*
 * buf.h - a capped, growable byte buffer. Appends past the cap fail with
 * E2BIG and make the buffer "failed" (sticky), so writers may append many
 * times and check once. Dependency-free so it can be tested alone.
 */
#ifndef BT_BUF_H
#define BT_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char	*b_data;
	size_t	 b_len;
	size_t	 b_cap;
	size_t	 b_max;		/* hard cap on b_len */
	int	 b_failed;	/* sticky: an append failed */
};

void	 buf_init(struct buf *, size_t);
int	 buf_append(struct buf *, const void *, size_t);
int	 buf_puts(struct buf *, const char *);
int	 buf_putc(struct buf *, char);
int	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	 buf_vprintf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
int	 buf_reserve(struct buf *, size_t);
char	*buf_take(struct buf *, size_t *);
void	 buf_reset(struct buf *);
void	 buf_truncate(struct buf *, size_t);
void	 buf_free(struct buf *);
const char *buf_cstr(struct buf *);

#endif
