/* SPDX-License-Identifier: MIT */
/*
 * idtab.c - an ingested variable's instance names and ids (see idtab.h):
 * two open-addressing indexes of 32-bit entry numbers (by name, by id)
 * over one array of entries that keep their name's length and hash, so a
 * probe compares a number before it touches a name, and a growth rehashes
 * nothing. Names are packed into 64 KiB chunks, not one malloc each.
 * Runs on whichever thread owns the ingester; no locks, no globals.
 */
#include <stdlib.h>
#include <string.h>

#include "idtab.h"

#define IDCHUNK_SIZE	(64 * 1024)

struct idchunk {
	struct idchunk	*ic_next;	/* older chunk */
	size_t		 ic_used, ic_size;
	char		 ic_data[];
};

/* --- chunks ------------------------------------------------------------- */

char *
idchunk_strdup(struct idchunk **cp, const char *s, size_t n)
{
	struct idchunk	*c = *cp;
	size_t		 size;
	char		*p;

	if (c == NULL || c->ic_size - c->ic_used < n + 1) {
		size = n + 1 > IDCHUNK_SIZE ? n + 1 : IDCHUNK_SIZE;
		if ((c = malloc(sizeof(*c) + size)) == NULL)
			return NULL;
		c->ic_next = *cp;
		c->ic_used = 0;
		c->ic_size = size;
		*cp = c;
	}
	p = c->ic_data + c->ic_used;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	c->ic_used += n + 1;
	return p;
}

void
idchunk_reset(struct idchunk **cp, size_t keep)
{
	struct idchunk	*c = *cp, *next;

	while (c != NULL && c->ic_next != NULL) {
		next = c->ic_next;
		free(c);
		c = next;
	}
	if (c != NULL && c->ic_size > keep) {
		free(c);
		c = NULL;
	}
	if (c != NULL)
		c->ic_used = 0;
	*cp = c;
}

void
idchunk_free(struct idchunk **cp)
{
	idchunk_reset(cp, 0);
}

/* --- hashing ------------------------------------------------------------ */

/* 8 bytes at a time; only ever compared within this process */
uint32_t
idtab_hash(const char *s, size_t n)
{
	uint64_t	 h = 0x9e3779b97f4a7c15ULL ^ n, w;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	if (n > 0) {
		w = 0;
		memcpy(&w, s, n);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
	}
	h ^= h >> 29;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 32;
	return (uint32_t)h;
}

static uint32_t
hash_id(uint32_t id)
{
	uint64_t	 h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (uint32_t)(h ^ h >> 32);
}

/* --- lookups ------------------------------------------------------------ */

uint32_t
idtab_find(const struct idtab *t, const char *name, size_t n, uint32_t hash)
{
	const struct ident	*e;
	size_t			 m = t->it_nslots - 1, i;
	uint32_t		 k;

	if (t->it_nslots == 0)
		return IDTAB_NONE;
	for (i = hash & m; (k = t->it_byname[i]) != 0; i = (i + 1) & m) {
		e = &t->it_e[k - 1];
		if (e->ie_hash == hash && e->ie_len == n &&
		    memcmp(e->ie_name, name, n) == 0)
			return k - 1;
	}
	return IDTAB_NONE;
}

uint32_t
idtab_find_id(const struct idtab *t, uint32_t id)
{
	size_t		 m = t->it_nslots - 1, i;
	uint32_t	 k;

	if (t->it_nslots == 0)
		return IDTAB_NONE;
	for (i = hash_id(id) & m; (k = t->it_byid[i]) != 0; i = (i + 1) & m)
		if (t->it_e[k - 1].ie_id == id)
			return k - 1;
	return IDTAB_NONE;
}

static void
idtab_index(struct idtab *t, uint32_t k)
{
	size_t	 m = t->it_nslots - 1, i;

	for (i = t->it_e[k].ie_hash & m; t->it_byname[i]; i = (i + 1) & m)
		;
	t->it_byname[i] = k + 1;
	for (i = hash_id(t->it_e[k].ie_id) & m; t->it_byid[i]; i = (i + 1) & m)
		;
	t->it_byid[i] = k + 1;
}

/* Room for one more entry, at most 3/4 of the slots used. */
static int
idtab_grow(struct idtab *t)
{
	struct ident	*e;
	uint32_t	*a, *b, k;
	size_t		 ns;

	if (t->it_n == UINT32_MAX - 1)
		return -1;
	if (t->it_n == t->it_cap) {
		k = t->it_cap ? (t->it_cap > UINT32_MAX / 2 ? UINT32_MAX - 1 :
		    t->it_cap * 2) : 16;
		if ((e = realloc(t->it_e, (size_t)k * sizeof(*e))) == NULL)
			return -1;
		t->it_e = e;
		t->it_cap = k;
	}
	if (((size_t)t->it_n + 1) * 4 <= t->it_nslots * 3)
		return 0;
	ns = t->it_nslots ? t->it_nslots * 2 : 32;
	a = calloc(ns, sizeof(*a));
	b = calloc(ns, sizeof(*b));
	if (a == NULL || b == NULL) {
		free(a);
		free(b);
		return -1;
	}
	free(t->it_byname);
	free(t->it_byid);
	t->it_byname = a;
	t->it_byid = b;
	t->it_nslots = ns;
	for (k = 0; k < t->it_n; k++)
		idtab_index(t, k);
	return 0;
}

uint32_t
idtab_add(struct idtab *t, const char *name, size_t n, uint32_t hash,
    uint32_t id)
{
	struct ident	*e;
	char		*s;

	if (n > UINT32_MAX || idtab_grow(t) == -1 ||
	    (s = idchunk_strdup(&t->it_pool, name, n)) == NULL)
		return IDTAB_NONE;
	e = &t->it_e[t->it_n];
	memset(e, 0, sizeof(*e));
	e->ie_name = s;
	e->ie_len = (uint32_t)n;
	e->ie_hash = hash;
	e->ie_id = id;
	e->ie_pos = IDTAB_NONE;
	idtab_index(t, t->it_n);
	if ((uint64_t)id + 1 > t->it_next)
		t->it_next = (uint64_t)id + 1;
	return t->it_n++;
}

void
idtab_free(struct idtab *t)
{
	if (t == NULL)
		return;
	free(t->it_e);
	free(t->it_byname);
	free(t->it_byid);
	idchunk_free(&t->it_pool);
	memset(t, 0, sizeof(*t));
}
