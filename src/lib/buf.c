/* SPDX-License-Identifier: MIT */
/*
 * buf.c - capped growable buffer (see buf.h). Used for HTTP bodies,
 * JSON answers and bpftrace output. Never allocates past b_max.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "memcap.h"

/*
 * Cannot fail. max: the most bytes the buffer may hold, 1 to BUF_MAX; 0
 * (once "no cap") or more is a caller's bug: assert aborts.
 */
void
buf_init(struct buf *b, size_t max)
{
	assert(max > 0 && max <= BUF_MAX);
	memset(b, 0, sizeof(*b));
	b->b_max = max;
}

/* Ensure room for extra bytes plus a NUL. */
int
buf_reserve(struct buf *b, size_t extra)
{
	size_t	 need, ncap;
	char	*p;

	if (b->b_failed)
		return -1;
	if (extra > b->b_max - b->b_len) {
		b->b_failed = BUF_TOO_BIG;
		errno = E2BIG;
		return -1;
	}
	need = b->b_len + extra + 1;
	if (need <= b->b_cap)
		return 0;
	ncap = b->b_cap ? b->b_cap : 256;
	while (ncap < need)
		ncap *= 2;
	if (ncap > b->b_max + 1)
		ncap = b->b_max + 1;
	if (b->b_mc && memcap_charge(b->b_mc, ncap - b->b_cap) == -1) {
		b->b_failed = BUF_REFUSED;
		errno = ENOMEM;
		return -1;
	}
	if ((p = realloc(b->b_data, ncap)) == NULL) {
		if (b->b_mc)
			memcap_release(b->b_mc, ncap - b->b_cap);
		b->b_failed = BUF_NOMEM;
		return -1;
	}
	if (b->b_mc)
		b->b_charged += ncap - b->b_cap;
	b->b_data = p;
	b->b_cap = ncap;
	return 0;
}

/*
 * Charge the buffer's memory to mc from now on (what it holds already
 * too); buf_free releases it. Call on an empty or fresh buffer.
 */
void
buf_charge_to(struct buf *b, struct memcap *mc)
{
	if (b->b_mc == mc)
		return;
	if (b->b_mc)
		memcap_release(b->b_mc, b->b_charged);
	b->b_mc = mc;
	b->b_charged = 0;
	if (mc && b->b_cap) {
		if (memcap_charge(mc, b->b_cap) == 0)
			b->b_charged = b->b_cap;
		else
			b->b_failed = BUF_REFUSED;
	}
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) == -1)
		return -1;
	if (len)
		memcpy(b->b_data + b->b_len, data, len);
	b->b_len += len;
	b->b_data[b->b_len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_putc(struct buf *b, char c)
{
	if (b->b_len + 1 < b->b_cap && !b->b_failed) {
		b->b_data[b->b_len++] = c;
		b->b_data[b->b_len] = '\0';
		return 0;
	}
	return buf_append(b, &c, 1);
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list	 ap2;
	int	 n;
	size_t	 room;

	if (b->b_failed)
		return -1;
	room = b->b_cap > b->b_len ? b->b_cap - b->b_len : 0;
	va_copy(ap2, ap);
	n = vsnprintf(room ? b->b_data + b->b_len : NULL, room, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->b_failed = BUF_NOMEM;
		return -1;
	}
	if ((size_t)n < room) {
		b->b_len += (size_t)n;
		return 0;
	}
	if (buf_reserve(b, (size_t)n) == -1)
		return -1;
	vsnprintf(b->b_data + b->b_len, (size_t)n + 1, fmt, ap);
	b->b_len += (size_t)n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 rv;

	va_start(ap, fmt);
	rv = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rv;
}

/* NUL-terminated view of the contents; "" when empty. */
const char *
buf_cstr(struct buf *b)
{
	return b->b_data ? b->b_data : "";
}

/*
 * Caller owns (and frees) the returned memory, and the charge of a
 * charged buffer in *chargedp: it releases that to b_mc when it frees the
 * memory. The buffer is emptied and stays charged to b_mc.
 */
char *
buf_take_charged(struct buf *b, size_t *lenp, size_t *chargedp)
{
	char	*p = b->b_data;

	if (p == NULL && (p = calloc(1, 1)) == NULL)
		return NULL;
	if (lenp)
		*lenp = b->b_len;
	*chargedp = b->b_charged;
	b->b_charged = 0;
	b->b_data = NULL;
	b->b_len = b->b_cap = 0;
	b->b_failed = 0;
	return p;
}

/*
 * Caller owns (and frees) the returned memory; the buffer is emptied. A
 * charged buffer's charge ends here (buf_take_charged keeps it).
 */
char *
buf_take(struct buf *b, size_t *lenp)
{
	size_t	 charged = 0;
	char	*p = buf_take_charged(b, lenp, &charged);

	if (p && b->b_mc)
		memcap_release(b->b_mc, charged);
	return p;
}

void
buf_reset(struct buf *b)
{
	b->b_len = 0;
	b->b_failed = 0;
	if (b->b_data)
		b->b_data[0] = '\0';
}

/* Drop what was appended after len (a writer's rollback); a failed
   buffer stays failed. */
void
buf_truncate(struct buf *b, size_t len)
{
	if (len >= b->b_len)
		return;
	b->b_len = len;
	b->b_data[len] = '\0';
}

/* Accepts an already freed buffer; releases what it had charged. */
void
buf_free(struct buf *b)
{
	free(b->b_data);
	if (b->b_mc && b->b_charged)
		memcap_release(b->b_mc, b->b_charged);
	b->b_charged = 0;
	b->b_data = NULL;
	b->b_len = b->b_cap = 0;
	b->b_failed = 0;
}
