/* SPDX-License-Identifier: MIT */
/*
 * scrape_order.c - the order pmproxy 6.0.3 writes a sample's labels in
 * on /metrics.
 *
 * pmproxy puts a sample's labels, level by level, into a fresh hash
 * table keyed by label name (a later level's value replaces an earlier
 * one's), then writes them in the order a full cursor scan of that
 * table visits them. That order is a function of the label names and
 * the sequence they were added in: the table is libpcp_web's redis-style
 * dictionary (SipHash-1-2 with its all-zero seed, power-of-two bucket
 * arrays from 4 that double once full, incremental rehashing one bucket
 * per lookup or insert, new entries at the head of their bucket's chain,
 * the scan cursor counting with its bits reversed). This file models
 * that table over the names alone, so that bpftraced's /metrics lists
 * pmcd metrics' labels exactly as pmproxy does (checked against the
 * live pmproxy by tests/conformance, the PCP QA replay 1543.50-54).
 *
 * Pure functions; no shared state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scrape.h"

/* ---- SipHash-1-2 (one compression, two finalisation rounds) ---- */

static uint64_t
rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

struct sip {
	uint64_t	v[4];
};

static void
sip_round(struct sip *s)
{
	s->v[0] += s->v[1];
	s->v[1] = rotl64(s->v[1], 13) ^ s->v[0];
	s->v[0] = rotl64(s->v[0], 32);
	s->v[2] += s->v[3];
	s->v[3] = rotl64(s->v[3], 16) ^ s->v[2];
	s->v[0] += s->v[3];
	s->v[3] = rotl64(s->v[3], 21) ^ s->v[0];
	s->v[2] += s->v[1];
	s->v[1] = rotl64(s->v[1], 17) ^ s->v[2];
	s->v[2] = rotl64(s->v[2], 32);
}

static uint64_t
le64(const unsigned char *p, size_t n)
{
	uint64_t	 r = 0;

	for (size_t i = 0; i < n; i++)
		r |= (uint64_t)p[i] << (8 * i);
	return r;
}

/* the key is all zero bytes: k0 = k1 = 0 leave the constants as they are */
uint64_t
scrape_siphash12(const void *data, size_t len)
{
	const unsigned char	*p = data;
	struct sip		 s = { { 0x736f6d6570736575ULL,
				    0x646f72616e646f6dULL,
				    0x6c7967656e657261ULL,
				    0x7465646279746573ULL } };
	uint64_t		 m;
	size_t			 whole = len - len % 8;

	for (size_t i = 0; i < whole; i += 8) {
		m = le64(p + i, 8);
		s.v[3] ^= m;
		sip_round(&s);
		s.v[0] ^= m;
	}
	m = ((uint64_t)len << 56) | le64(p + whole, len % 8);
	s.v[3] ^= m;
	sip_round(&s);
	s.v[0] ^= m;
	s.v[2] ^= 0xff;
	sip_round(&s);
	sip_round(&s);
	return s.v[0] ^ s.v[1] ^ s.v[2] ^ s.v[3];
}

/* ---- the table, over entry indexes ---- */

#define ORDER_INITIAL	4	/* the first bucket array */
#define ORDER_EMPTY	SIZE_MAX

struct otab {
	size_t	*heads;		/* bucket -> first entry, ORDER_EMPTY */
	size_t	 size;		/* 0: no array */
	size_t	 used;
};

struct otable {
	struct otab	 t[2];
	long		 rehashidx;	/* -1: not rehashing */
	const struct scrape_lkey *keys;
	uint64_t	*hash;		/* per key */
	size_t		*next;		/* per key: chain */
	int		 failed;
};

static int
rehashing(const struct otable *o)
{
	return o->rehashidx != -1;
}

static void
tab_free(struct otab *t)
{
	free(t->heads);
	memset(t, 0, sizeof(*t));
}

/* a bucket array of the next power of two >= want, from 4 */
static void
tab_expand(struct otable *o, size_t want)
{
	struct otab	 n;
	size_t		 real = ORDER_INITIAL;

	if (rehashing(o) || o->t[0].used > want)
		return;
	while (real < want)
		real *= 2;
	if (real == o->t[0].size)
		return;
	memset(&n, 0, sizeof(n));
	if ((n.heads = malloc(real * sizeof(size_t))) == NULL) {
		o->failed = 1;
		return;
	}
	for (size_t i = 0; i < real; i++)
		n.heads[i] = ORDER_EMPTY;
	n.size = real;
	if (o->t[0].heads == NULL) {
		o->t[0] = n;
		return;
	}
	o->t[1] = n;
	o->rehashidx = 0;
}

/* one bucket moved to the new array (at most 10 empty ones skipped) */
static void
rehash_step(struct otable *o)
{
	size_t	 e, nx, b;
	int	 empty = 10;

	if (!rehashing(o))
		return;
	if (o->t[0].used != 0) {
		while (o->t[0].heads[o->rehashidx] == ORDER_EMPTY) {
			o->rehashidx++;
			if (--empty == 0)
				return;
		}
		for (e = o->t[0].heads[o->rehashidx]; e != ORDER_EMPTY;
		    e = nx) {
			nx = o->next[e];
			b = o->hash[e] & (o->t[1].size - 1);
			o->next[e] = o->t[1].heads[b];
			o->t[1].heads[b] = e;
			o->t[0].used--;
			o->t[1].used++;
		}
		o->t[0].heads[o->rehashidx] = ORDER_EMPTY;
		o->rehashidx++;
	}
	if (o->t[0].used == 0) {
		tab_free(&o->t[0]);
		o->t[0] = o->t[1];
		memset(&o->t[1], 0, sizeof(o->t[1]));
		o->rehashidx = -1;
	}
}

static int
same_key(const struct otable *o, size_t a, size_t b)
{
	return o->keys[a].len == o->keys[b].len &&
	    memcmp(o->keys[a].name, o->keys[b].name, o->keys[a].len) == 0;
}

/* the entry holding key k's name, or ORDER_EMPTY */
static size_t
tab_find(struct otable *o, size_t k)
{
	if (o->t[0].used + o->t[1].used == 0)
		return ORDER_EMPTY;
	rehash_step(o);
	for (int t = 0; t < 2 && o->t[t].size; t++) {
		size_t	 e = o->t[t].heads[o->hash[k] & (o->t[t].size - 1)];

		for (; e != ORDER_EMPTY; e = o->next[e])
			if (same_key(o, e, k))
				return e;
		if (!rehashing(o))
			break;
	}
	return ORDER_EMPTY;
}

static void
tab_add(struct otable *o, size_t k)
{
	struct otab	*t;
	size_t		 b;

	rehash_step(o);
	if (!rehashing(o)) {
		if (o->t[0].size == 0)
			tab_expand(o, ORDER_INITIAL);
		else if (o->t[0].used >= o->t[0].size)
			tab_expand(o, o->t[0].used * 2);
	}
	if (o->failed)
		return;
	t = rehashing(o) ? &o->t[1] : &o->t[0];
	b = o->hash[k] & (t->size - 1);
	o->next[k] = t->heads[b];
	t->heads[b] = k;
	t->used++;
}

static size_t
rev_bits(size_t v)
{
	size_t	 r = 0;

	for (size_t i = 0; i < sizeof(v) * 8; i++, v >>= 1)
		r = (r << 1) | (v & 1);
	return r;
}

static void
emit_chain(const struct otable *o, size_t e, size_t *out, size_t *n)
{
	for (; e != ORDER_EMPTY; e = o->next[e])
		out[(*n)++] = e;
}

/* the full scan: entries in visiting order into out */
static size_t
tab_scan(const struct otable *o, size_t *out)
{
	const struct otab *s, *l;
	size_t		 v = 0, m0, m1, n = 0;

	if (o->t[0].used + o->t[1].used == 0)
		return 0;
	do {
		if (!rehashing(o)) {
			m0 = o->t[0].size - 1;
			emit_chain(o, o->t[0].heads[v & m0], out, &n);
		} else {
			s = &o->t[0];
			l = &o->t[1];
			if (s->size > l->size) {
				s = &o->t[1];
				l = &o->t[0];
			}
			m0 = s->size - 1;
			m1 = l->size - 1;
			emit_chain(o, s->heads[v & m0], out, &n);
			do {
				emit_chain(o, l->heads[v & m1], out, &n);
				v = (((v | m0) + 1) & ~m0) | (v & m0);
			} while (v & (m0 ^ m1));
		}
		v |= ~m0;
		v = rev_bits(v);
		v++;
		v = rev_bits(v);
	} while (v != 0);
	return n;
}

/*
 * keys[0..n) in the order pmproxy adds them (a name may repeat: a later
 * level's label of the same name); order[] gets the index of each
 * distinct name's first appearance, in pmproxy's writing order. Returns
 * how many, or -1 (out of memory).
 */
int
scrape_label_order(const struct scrape_lkey *keys, size_t n, size_t *order)
{
	struct otable	 o;
	int		 rc = -1;

	memset(&o, 0, sizeof(o));
	o.rehashidx = -1;
	o.keys = keys;
	if ((o.hash = calloc(n + 1, sizeof(*o.hash))) == NULL ||
	    (o.next = calloc(n + 1, sizeof(*o.next))) == NULL)
		goto done;
	for (size_t i = 0; i < n; i++) {
		o.hash[i] = scrape_siphash12(keys[i].name, keys[i].len);
		o.next[i] = ORDER_EMPTY;
		if (tab_find(&o, i) == ORDER_EMPTY)
			tab_add(&o, i);
		if (o.failed)
			goto done;
	}
	rc = (int)tab_scan(&o, order);
done:
	tab_free(&o.t[0]);
	tab_free(&o.t[1]);
	free(o.hash);
	free(o.next);
	return rc;
}
