/* SPDX-License-Identifier: MIT */
/*
 * idtab.h - the instance table of one ingested variable: every instance
 * name ever seen, with the id it got, found by name or by id. ingest.c
 * owns one per variable; the table never shrinks (il_max_instances bounds
 * it). Names live in a pool of chunks, so a name's address is stable until
 * idtab_free() (ing_var.iv_names points at them). Dependency-free.
 */
#ifndef BT_IDTAB_H
#define BT_IDTAB_H

#include <stddef.h>
#include <stdint.h>

#define IDTAB_NONE	UINT32_MAX	/* no entry, no position */

/* one name; pos/mark/first are ingest.c's per-print bookkeeping */
struct ident {
	const char	*ie_name;	/* NUL-terminated, in the pool */
	uint32_t	 ie_len;
	uint32_t	 ie_hash;	/* idtab_hash(ie_name, ie_len) */
	uint32_t	 ie_id;
	uint32_t	 ie_pos;	/* index among the variable's current
					   instances when it is one (checked
					   against iv_ids), else anything */
	uint32_t	 ie_mark;	/* print generation that saw it */
	uint32_t	 ie_first;	/* that print's first entry of it */
};

struct idchunk;

struct idtab {
	struct ident	*it_e;		/* in the order the ids were given */
	uint32_t	 it_n, it_cap;
	uint32_t	*it_byname;	/* entry index + 1; 0 is empty */
	uint32_t	*it_byid;
	size_t		 it_nslots;	/* power of two (or 0) */
	uint64_t	 it_next;	/* next id to give out */
	struct idchunk	*it_pool;	/* the names */
};

uint32_t	 idtab_hash(const char *s, size_t n);
/* entry index of name[0..n) (hash: idtab_hash of it), or IDTAB_NONE */
uint32_t	 idtab_find(const struct idtab *t, const char *name, size_t n,
		    uint32_t hash);
uint32_t	 idtab_find_id(const struct idtab *t, uint32_t id);
/* Adds a copy of name[0..n) with id; its entry index, or IDTAB_NONE on
 * no memory (nothing added). The name must not be in the table yet. */
uint32_t	 idtab_add(struct idtab *t, const char *name, size_t n,
		    uint32_t hash, uint32_t id);
/* Frees what t holds (not t itself); t is then empty and reusable. */
void		 idtab_free(struct idtab *t);

/*
 * A bump allocator of chunks for NUL-terminated copies: the id table's
 * name pool and ingest.c's per-print scratch. Addresses stay valid until
 * the chunk is freed.
 */
char		*idchunk_strdup(struct idchunk **cp, const char *s, size_t n);
/* Forgets all but the oldest chunk (kept when at most keep bytes). */
void		 idchunk_reset(struct idchunk **cp, size_t keep);
void		 idchunk_free(struct idchunk **cp);

#endif
