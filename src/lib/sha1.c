/* SPDX-License-Identifier: MIT */
/*
 * sha1.c - SHA-1 (FIPS 180-4), used only to name things the way pmproxy
 * does (context "source" and metric "series" identifiers are 40-hex SHA-1
 * strings). Not used for anything security related.
 */
#include <stdint.h>
#include <string.h>

#include "util.h"

static uint32_t
rol(uint32_t v, int n)
{
	return (v << n) | (v >> (32 - n));
}

static void
sha1_block(void *ctx, const unsigned char *p)
{
	struct sha1	*c = ctx;
	uint32_t	 w[80], a, b, d, e, f, k, t, cc;
	int		 i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20)
			f = (b & cc) | (~b & d), k = 0x5A827999;
		else if (i < 40)
			f = b ^ cc ^ d, k = 0x6ED9EBA1;
		else if (i < 60)
			f = (b & cc) | (b & d) | (cc & d), k = 0x8F1BBCDC;
		else
			f = b ^ cc ^ d, k = 0xCA62C1D6;
		t = rol(a, 5) + f + e + k + w[i];
		e = d, d = cc, cc = rol(b, 30), b = a, a = t;
	}
	c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d, c->h[4] += e;
}

void
sha1_init(struct sha1 *c)
{
	static const uint32_t	 h0[5] = { 0x67452301, 0xEFCDAB89,
				     0x98BADCFE, 0x10325476, 0xC3D2E1F0 };

	memcpy(c->h, h0, sizeof(h0));
	c->b.len = 0;
	c->b.used = 0;
}

void
sha_blocks_add(struct sha_blocks *b, const void *data, size_t n,
    sha_block_fn block, void *ctx)
{
	const unsigned char	*p = data;

	b->len += n;
	while (n > 0) {
		size_t	 take = 64 - b->used;

		if (take > n)
			take = n;
		memcpy(b->blk + b->used, p, take);
		b->used += take, p += take, n -= take;
		if (b->used == 64) {
			block(ctx, b->blk);
			b->used = 0;
		}
	}
}

void
sha_blocks_end(struct sha_blocks *b, sha_block_fn block, void *ctx)
{
	unsigned char	 pad = 0x80, zero = 0, lenb[8];
	uint64_t	 bits = b->len * 8;
	int		 i;

	sha_blocks_add(b, &pad, 1, block, ctx);
	while (b->used != 56)
		sha_blocks_add(b, &zero, 1, block, ctx);
	for (i = 0; i < 8; i++)
		lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
	sha_blocks_add(b, lenb, 8, block, ctx);
}

void
sha1_add(struct sha1 *c, const void *data, size_t n)
{
	sha_blocks_add(&c->b, data, n, sha1_block, c);
}

void
sha1_end_hex(struct sha1 *c, char out[41])
{
	static const char	 hex[] = "0123456789abcdef";
	int			 i;

	sha_blocks_end(&c->b, sha1_block, c);
	for (i = 0; i < 20; i++) {
		unsigned char	 byte = (unsigned char)(c->h[i / 4] >> (24 - 8 * (i % 4)));

		out[2 * i] = hex[byte >> 4];
		out[2 * i + 1] = hex[byte & 15];
	}
	out[40] = '\0';
}

void
sha1_hex(const void *data, size_t n, char out[41])
{
	struct sha1	 c;

	sha1_init(&c);
	sha1_add(&c, data, n);
	sha1_end_hex(&c, out);
}
