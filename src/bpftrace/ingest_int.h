/* SPDX-License-Identifier: MIT */
/*
 * ingest_int.h - what the ingester's files share (ingest.c: lines,
 * messages and the @output ring; ingest_map.c: a print of a map, hist or
 * stats staged and committed; ingest_fast.c: the one-pass reader for the
 * usual shape of such a print). Not for other files: they use ingest.h.
 */
#ifndef BT_INGEST_INT_H
#define BT_INGEST_INT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "idtab.h"
#include "ingest.h"
#include "jsonr.h"

#define ING_SCRATCH_KEEP	(64 * 1024)	/* scratch kept between lines */
/* the scratch buffers' cap (kbuf, sbuf, tbuf): a member of one line as
   it decodes, and the bounds a bucket name adds ("key:lo-hi") */
#define ING_SCRATCH_MAX(line)	(JR_DECODED_MAX(line) + 64)
#define ING_MAX_ID		INT32_MAX	/* PCP instance ids are int */
#define ING_AHEAD		8	/* entries looked up ahead (prefetch) */
#define ING_SLOW		(-2)	/* fast_line: take the generic path */

enum msgtype {
	M_UNKNOWN, M_PROBES, M_MAP, M_HIST, M_STATS, M_PRINTF, M_TIME,
	M_JOIN, M_SYSCALL, M_CAT, M_VALUE, M_LOST, M_HELPER, M_RUNTIME,
	M_ERRORF, M_WARNF
};

/* --- the @output ring (ingest.c) --- */

struct oline {
	char		*s;
	size_t		 len;
};

struct oring {
	struct oline	*l;		/* circular: complete lines with '\n' */
	size_t		 cap, head, n;
	size_t		 bytes;		/* sum of l[].len */
	char		*hdr;		/* table-retain-lines header line */
	size_t		 hdrlen;
	struct buf	 part;		/* the unfinished last line */
	int		 ptrunc;	/* dropping the rest of a long line */
	long		 retain;	/* -1: no header mode */
	size_t		 max_lines, max_bytes;
};

/* --- a print being read (ingest_map.c) --- */

/*
 * One entry of a print being read: its name as printed (in the line, or
 * in the stage's chunks), the id-table entry of that name when it has
 * one, and its value, first as read (rk, v) and then converted (vt, v).
 */
struct sent {
	const char	*se_name;	/* NULL: a scalar's one value */
	uint32_t	 se_len;
	uint32_t	 se_k;		/* id-table entry, or IDTAB_NONE */
	uint32_t	 se_hash;	/* se_k NONE: the name's hash; else its
					   position among the current names,
					   when it is one */
	uint8_t		 se_rk;		/* enum rk, as read */
	uint8_t		 se_vt;		/* enum ing_vt, once converted */
	uint8_t		 se_dup;	/* a later entry of a name seen
					   before in this print */
	uint8_t		 se_cur;	/* a current name (se_hash: where) */
	union {
		int64_t		 i;
		uint64_t	 u;
		double		 d;
		char		*s;	/* as read: in the chunks; converted:
					   ING_STR, owned by the entry */
	}		 se_v;
};

/* hist prints: what buckets sort by, beside each entry */
struct shist {
	uint32_t	 sh_klen;	/* length of the key part */
	uint8_t		 sh_lominf;	/* no lower bound */
	uint8_t		 sh_lok;	/* R_I64 or R_U64 */
	union {
		int64_t		 i;
		uint64_t	 u;
	}		 sh_lo;
};

/*
 * The print being read, for one variable. Reused for every print (reset,
 * not freed), so a print allocates nothing per key: names that are not
 * in the line as they are (escaped, or built like hist buckets) and text
 * values go to the chunks.
 */
struct stage {
	struct sent	*st_e;
	size_t		 st_n, st_cap;
	struct shist	*st_h;		/* [st_cap] when st_hist */
	size_t		 st_hcap;
	int		 st_hist;	/* a hist print (bucket order) */
	int		 st_strs;	/* entries may own strings */
	int		 st_predict;	/* still in the last print's order */
	int		 st_clear;	/* a scalar printed as {} (cleared) */
	size_t		 st_nadd;	/* names not among the current ones */
	size_t		 st_ncur;	/* current names seen (once each) */
	struct idchunk	*st_chunks;
	uint32_t	*st_idx;	/* commit: entries in instance order */
	size_t		 st_idxcap;
	uint32_t	*st_pos;	/* commit: entry of each current name */
	size_t		 st_poscap;
};

/* the private part of an ing_var */
struct vpriv {
	struct idtab	 vp_tab;
	uint32_t	 vp_gen;	/* print generation (ident.ie_mark) */
	int		 vp_hist;	/* the current order is bucket order */
	uint32_t	*vp_prev;	/* the last print's id-table entries, */
	size_t		 vp_nprev;	/* in the order printed */
	size_t		 vp_prevcap;
};

struct ingest {
	struct ing_var		*vars;
	size_t			 nvars;
	size_t			 outvar;	/* SIZE_MAX: no @output */
	struct ingest_limits	 lim;
	struct ingest_stats	 st;
	uint64_t		 seq;
	struct oring		 out;
	struct buf		 kbuf, sbuf, tbuf;	/* scratch */
	struct stage		 stage;
	char			 ebuf[256];	/* the current line's error */
	int			 keys_esc2;	/* keys escaped twice (0.18-0.23) */
	ingest_type_fn		 typer;		/* NULL: take every proposal */
	void			*typer_arg;
};

static inline struct vpriv *
vpriv(const struct ing_var *v)
{
	return v->iv_priv;
}

/* ingest.c */
int		 ing_fail(struct ingest *ing, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));

/* ingest_map.c */
char		*map_raw_text(const struct raw *v);
void		 map_begin(struct stage *st, struct ing_var *v, int hist);
void		 map_reset(struct stage *st);
void		 map_free(struct stage *st);
int		 map_put(struct ingest *ing, struct ing_var *v,
		    const char *name, size_t n, const struct raw *raw);
int		 map_put_bucket(struct ingest *ing, struct ing_var *v,
		    const char *name, size_t n, const struct raw *count,
		    size_t klen, int lominf, const struct raw *lo);
char		*map_strdup(struct ingest *ing, const char *s, size_t n);
char		*map_bucket_name(struct ingest *ing, const char *key,
		    size_t klen, int keyed, const struct raw *lo,
		    const struct raw *hi, size_t *np);
char		*map_joined_name(struct ingest *ing, const char *prefix,
		    size_t plen, const char *name, size_t nlen, size_t *np);
int		 map_fill(struct ingest *ing, struct jr *r, struct ing_var *v,
		    enum msgtype t);
int		 map_commit(struct ingest *ing, struct ing_var *v);
void		 map_var_clear(struct ing_var *v);

/* ingest_fast.c */
int		 fast_line(struct ingest *ing, const char *line, size_t len);

#endif
