/* SPDX-License-Identifier: MIT */
/*
 * ingest.c - turns bpftrace's "-f json" stdout, one line at a time, into
 * typed variable values and the bounded @output text ring (see ingest.h).
 * Runs on one thread (the supervisor's event loop); takes no locks and
 * keeps no global mutable state: everything lives in struct ingest.
 *
 * A line of the shape bpftrace prints for maps (plain ASCII names,
 * integer values) is read in one pass, in place (fast_line). Any other
 * line is read twice by a small JSON pull reader: a first pass validates
 * all of it (syntax, depth, number ranges, trailing bytes), a second pass
 * reads the content. Either way a malformed line changes nothing, and
 * both stage a print the same way: entries in one reused stage, names
 * pointing into the line, committed at the end. A print of the same names
 * as the last one only updates values, so instances are sorted only when
 * the set of names changed.
 *
 * Decisions the callers may rely on:
 * - Strings: \u0000, lone surrogates and invalid UTF-8 become U+FFFD, so
 *   every decoded string is valid UTF-8 without NUL bytes (names and
 *   values are C strings). 0.17's \uffffffXX (XX 80..ff) is the raw byte
 *   0xXX, so the original UTF-8 is rebuilt.
 * - Integers are exact int64/uint64; an integer outside both ranges, or a
 *   decimal that overflows a double, makes the line invalid.
 * - A value that is not an integer (text, tuple, struct, decimal) sent to
 *   an INT/UINT variable retypes it to STRING for good (iv_retyped = 1),
 *   also across ingest_reset(). A JSON null is stored as ING_NONE.
 * - printf/time/join/syscall/cat/value text is dropped (line returns 1)
 *   when the script has no @output variable (kind BTS_OUTPUT).
 * - A line of @output longer than the byte limit keeps its head (cut at a
 *   UTF-8 boundary); the rest of that line is dropped.
 * - ingest_seq() moves on every change of values, output or stats, but
 *   not for is_lines alone nor for a reprint of identical values.
 * - Instance ids run from 0 to INT32_MAX (PCP instance ids are int); the
 *   id table never shrinks, so il_max_instances bounds its memory too.
 * - A "data" object naming several maps (bpftrace prints one) is applied
 *   map by map; a bad one stops the line there.
 * - join and value text get a '\n' (as bpftrace's text mode prints
 *   them); printf, time, syscall and cat text is taken as it is.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "idtab.h"
#include "ingest.h"
#include "jsonr.h"

#define ING_SCRATCH_KEEP	(64 * 1024)	/* scratch kept between lines */
#define ING_MAX_ID		INT32_MAX	/* PCP instance ids are int */

/* --- values ------------------------------------------------------------ */

static void
val_free(struct ing_val *v)
{
	if (v->t == ING_STR)
		free(v->s);
	v->t = ING_NONE;
	v->s = NULL;
}

/* v as text for a STRING variable or @output; NULL on no memory. */
static char *
raw_text(const struct raw *v)
{
	char	 tmp[64];

	switch (v->k) {
	case R_STR:
	case R_JSON:
		return jr_memdup(v->s, strlen(v->s));
	case R_BOOL:
		snprintf(tmp, sizeof(tmp), "%s", v->i ? "true" : "false");
		break;
	case R_I64:
		snprintf(tmp, sizeof(tmp), "%" PRId64, v->i);
		break;
	case R_U64:
		snprintf(tmp, sizeof(tmp), "%" PRIu64, v->u);
		break;
	case R_DBL:
		snprintf(tmp, sizeof(tmp), "%.17g", v->d);
		break;
	default:
		tmp[0] = '\0';
	}
	return jr_memdup(tmp, strlen(tmp));
}

/* Converts v for a variable of type vt. -1 on no memory. */
static int
raw_to_val(const struct raw *v, enum bts_vtype vt, struct ing_val *out)
{
	struct raw	 n;

	memset(out, 0, sizeof(*out));
	out->t = ING_NONE;
	if (v->k == R_NULL)
		return 0;
	if (vt == BTS_V_STRING) {
		if ((out->s = raw_text(v)) == NULL)
			return -1;
		out->t = ING_STR;
		return 0;
	}
	if (v->k == R_BOOL)
		n = *v, n.k = R_I64;
	else if (jr_raw_int(v, &n) == -1)
		return 0;	/* not reached: retyped before */
	if (vt == BTS_V_UINT) {
		out->t = ING_U64;
		out->u = n.k == R_U64 ? n.u : (uint64_t)n.i;
	} else {
		out->t = ING_I64;
		out->i = n.k == R_U64 ? (int64_t)n.u : n.i;
	}
	return 0;
}

static int
val_equal(const struct ing_val *a, const struct ing_val *b)
{
	if (a->t != b->t)
		return 0;
	switch (a->t) {
	case ING_I64:
		return a->i == b->i;
	case ING_U64:
		return a->u == b->u;
	case ING_STR:
		return strcmp(a->s, b->s) == 0;
	default:
		return 1;
	}
}
/* --- @output ring -------------------------------------------------------- */

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

static void
out_pop(struct oring *o)
{
	struct oline	*l = &o->l[o->head];

	o->bytes -= l->len;
	free(l->s);
	l->s = NULL;
	o->head = (o->head + 1) % o->cap;
	o->n--;
}

static void
out_evict(struct oring *o)
{
	size_t	 maxl = o->max_lines;

	if (o->retain >= 0 && (size_t)o->retain < maxl)
		maxl = (size_t)o->retain;
	while (o->n > maxl ||
	    (o->n > 0 && o->hdrlen + o->bytes + o->part.b_len > o->max_bytes))
		out_pop(o);
}

static int
out_push(struct oring *o, char *s, size_t len)
{
	struct oline	*nl;
	size_t		 ncap, i;

	if (o->n == o->cap) {
		ncap = o->cap ? o->cap * 2 : 64;
		if ((nl = calloc(ncap, sizeof(*nl))) == NULL)
			return -1;
		for (i = 0; i < o->n; i++)
			nl[i] = o->l[(o->head + i) % o->cap];
		free(o->l);
		o->l = nl;
		o->cap = ncap;
		o->head = 0;
	}
	o->l[(o->head + o->n) % o->cap].s = s;
	o->l[(o->head + o->n) % o->cap].len = len;
	o->n++;
	o->bytes += len;
	return 0;
}

/* Adds s[0..n) (no '\n') to the unfinished line, within the byte limit. */
static int
out_part_add(struct oring *o, const char *s, size_t n, int *changed)
{
	size_t	 budget, room, take = n;

	if (o->ptrunc || n == 0)
		return 0;
	budget = o->max_bytes > o->hdrlen + 1 ? o->max_bytes - o->hdrlen - 1 :
	    0;
	room = budget > o->part.b_len ? budget - o->part.b_len : 0;
	if (take > room) {
		take = room;
		while (take > 0 && ((unsigned char)s[take] & 0xc0) == 0x80)
			take--;
		o->ptrunc = 1;
	}
	if (take == 0)
		return 0;
	*changed = 1;
	if (buf_append(&o->part, s, take) == -1)
		return -1;
	out_evict(o);
	return 0;
}

static int
out_line_done(struct oring *o)
{
	char	*s;
	size_t	 len;

	if (buf_putc(&o->part, '\n') == -1)
		return -1;
	len = o->part.b_len;
	if ((s = jr_memdup(o->part.b_data, len)) == NULL)
		return -1;
	buf_reset(&o->part);
	o->ptrunc = 0;
	if (o->retain >= 0 && o->hdr == NULL) {
		o->hdr = s;
		o->hdrlen = len;
	} else if (out_push(o, s, len) == -1) {
		free(s);
		return -1;
	}
	out_evict(o);
	return 0;
}

/* Appends printf-like text, splitting it into lines on '\n'. */
static int
out_append(struct oring *o, const char *s, size_t n, int *changed)
{
	const char	*nl;
	size_t		 seg;

	while (n > 0) {
		nl = memchr(s, '\n', n);
		seg = nl ? (size_t)(nl - s) : n;
		if (out_part_add(o, s, seg, changed) == -1)
			return -1;
		if (nl == NULL)
			break;
		*changed = 1;
		if (out_line_done(o) == -1)
			return -1;
		s += seg + 1;
		n -= seg + 1;
	}
	return 0;
}

static void
out_clear(struct oring *o)
{
	while (o->n > 0)
		out_pop(o);
	free(o->l);
	o->l = NULL;
	o->cap = o->head = 0;
	free(o->hdr);
	o->hdr = NULL;
	o->hdrlen = 0;
	buf_free(&o->part);
	o->ptrunc = 0;
}

/* --- the ingester -------------------------------------------------------- */

enum msgtype {
	M_UNKNOWN, M_PROBES, M_MAP, M_HIST, M_STATS, M_PRINTF, M_TIME,
	M_JOIN, M_SYSCALL, M_CAT, M_VALUE, M_LOST, M_HELPER, M_RUNTIME,
	M_ERRORF, M_WARNF
};

static const struct {
	const char	*name;
	enum msgtype	 t;
} msgtypes[] = {
	{ "attached_probes", M_PROBES }, { "map", M_MAP }, { "hist", M_HIST },
	{ "stats", M_STATS }, { "printf", M_PRINTF }, { "time", M_TIME },
	{ "join", M_JOIN }, { "syscall", M_SYSCALL }, { "cat", M_CAT },
	{ "value", M_VALUE }, { "lost_events", M_LOST },
	{ "helper_error", M_HELPER }, { "runtime_error", M_RUNTIME },
	{ "errorf", M_ERRORF }, { "warnf", M_WARNF },
};

/* where the top-level members of one message start (NULL: absent) */
struct msg {
	enum msgtype	 type;
	const char	*tname;		/* for errors */
	const char	*data, *probes, *events, *helper, *retcode;
	const char	*line, *col, *msgtext;
};

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
};

static int	 ing_fail(struct ingest *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static int
ing_fail(struct ingest *ing, const char *fmt, ...)
{
	va_list	 ap;

	if (ing->ebuf[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(ing->ebuf, sizeof(ing->ebuf), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void
jr_at(struct jr *r, struct ingest *ing, const char *line, const char *p,
    const char *end)
{
	r->start = line;
	r->p = p;
	r->end = end;
	r->depth = 1;
	r->err = ing->ebuf;
	r->errlen = sizeof(ing->ebuf);
}

/* --- the stage ----------------------------------------------------------- */

static struct vpriv *
vpriv(const struct ing_var *v)
{
	return v->iv_priv;
}

/* Starts a print of v: a new generation of marks in v's id table. */
static void
stage_begin(struct stage *st, struct ing_var *v, int hist)
{
	struct vpriv	*vp = vpriv(v);
	uint32_t	 k;

	if (++vp->vp_gen == 0) {	/* wrapped: no stale mark may match */
		for (k = 0; k < vp->vp_tab.it_n; k++)
			vp->vp_tab.it_e[k].ie_mark = 0;
		vp->vp_gen = 1;
	}
	st->st_n = 0;
	st->st_hist = hist;
	st->st_predict = 1;
	st->st_nadd = st->st_ncur = 0;
}

/* Frees what the entries own; keeps the arrays and one chunk. */
static void
stage_reset(struct stage *st)
{
	size_t	 i;

	if (st->st_strs)
		for (i = 0; i < st->st_n; i++)
			if (st->st_e[i].se_vt == ING_STR)
				free(st->st_e[i].se_v.s);
	st->st_strs = 0;
	st->st_n = 0;
	idchunk_reset(&st->st_chunks, ING_SCRATCH_KEEP);
}

static void
stage_free(struct stage *st)
{
	stage_reset(st);
	idchunk_free(&st->st_chunks);
	free(st->st_e);
	free(st->st_h);
	free(st->st_idx);
	free(st->st_pos);
	memset(st, 0, sizeof(*st));
}

static int
stage_grow(struct stage *st)
{
	struct sent	*e;
	struct shist	*h;
	size_t		 ncap;

	if (st->st_n == st->st_cap) {
		ncap = st->st_cap ? st->st_cap * 2 : 64;
		if ((e = realloc(st->st_e, ncap * sizeof(*e))) == NULL)
			return -1;
		st->st_e = e;
		st->st_cap = ncap;
	}
	if (st->st_hist && st->st_hcap < st->st_cap) {
		if ((h = realloc(st->st_h, st->st_cap * sizeof(*h))) == NULL)
			return -1;
		st->st_h = h;
		st->st_hcap = st->st_cap;
	}
	return 0;
}

static int
ident_current(const struct ing_var *v, const struct ident *e)
{
	return e->ie_pos < v->iv_n && v->iv_ids[e->ie_pos] == e->ie_id;
}

/* memcmp() == 0, without a call for the short names maps mostly have */
static inline int
same_bytes(const char *a, const char *b, size_t n)
{
	size_t	 i;

	if (n > 16)
		return memcmp(a, b, n) == 0;
	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/*
 * Hashes entry j's name and asks for the id-table memory its lookup will
 * read, a few entries ahead of the lookup: in a print of known names in
 * a new order each lookup is a few cache misses, which then overlap.
 */
#define ING_AHEAD	8

static inline void
stage_prefetch(struct stage *st, const struct idtab *t, size_t j)
{
	struct sent	*e = &st->st_e[j];
	uint32_t	 k;

	if (e->se_name == NULL)
		return;
	e->se_hash = idtab_hash(e->se_name, e->se_len);
	if (t->it_nslots == 0)
		return;
	k = t->it_byname[e->se_hash & (t->it_nslots - 1)];
	if (k != 0)
		__builtin_prefetch(&t->it_e[k - 1]);
}

/*
 * Finds each entry's id-table entry, marks names seen twice and counts
 * the current names seen and the others. Tries the entry printed at the
 * same place last time first: maps printed in the same order skip
 * hashing; the first miss ends that for this print.
 */
static void
stage_resolve(struct ing_var *v, struct stage *st)
{
	struct vpriv	*vp = vpriv(v);
	const struct idtab *t = &vp->vp_tab;
	struct ident	*ie;
	struct sent	*e;
	size_t		 i, ahead = 0;
	uint32_t	 k;

	for (i = 0; i < st->st_n; i++) {
		e = &st->st_e[i];
		if (e->se_name == NULL)
			continue;
		k = IDTAB_NONE;
		if (st->st_predict && i < vp->vp_nprev &&
		    (k = vp->vp_prev[i]) != IDTAB_NONE &&
		    (t->it_e[k].ie_len != e->se_len ||
		    !same_bytes(t->it_e[k].ie_name, e->se_name, e->se_len)))
			k = IDTAB_NONE;
		if (k == IDTAB_NONE) {
			st->st_predict = 0;
			for (ahead = ahead > i ? ahead : i;
			    ahead < st->st_n && ahead <= i + ING_AHEAD; ahead++)
				stage_prefetch(st, t, ahead);
			k = idtab_find(t, e->se_name, e->se_len, e->se_hash);
		}
		if ((e->se_k = k) == IDTAB_NONE) {
			st->st_nadd++;
			continue;
		}
		ie = &vp->vp_tab.it_e[k];
		if (ie->ie_mark == vp->vp_gen) {
			e->se_dup = 1;
			continue;
		}
		ie->ie_mark = vp->vp_gen;
		ie->ie_first = (uint32_t)i;
		if (ident_current(v, ie)) {
			e->se_hash = ie->ie_pos;
			e->se_cur = 1;
			st->st_ncur++;
		} else
			st->st_nadd++;
	}
}

/* Adds an entry (name NULL for a scalar). -1 on no memory. */
static int
stage_put(struct ingest *ing, struct ing_var *v, const char *name, size_t n,
    const struct raw *raw)
{
	struct stage	*st = &ing->stage;
	struct sent	*e;

	if (n > UINT32_MAX || stage_grow(st) == -1)
		return ing_fail(ing, "out of memory");
	e = &st->st_e[st->st_n];
	e->se_name = name;
	e->se_len = (uint32_t)n;
	e->se_k = IDTAB_NONE;
	e->se_hash = 0;
	e->se_rk = (uint8_t)raw->k;
	e->se_vt = ING_NONE;
	e->se_dup = 0;
	e->se_cur = 0;
	if (raw->k == R_U64)
		e->se_v.u = raw->u;
	else if (raw->k == R_DBL)
		e->se_v.d = raw->d;
	else if (raw->k == R_STR || raw->k == R_JSON)
		e->se_v.s = raw->s;
	else
		e->se_v.i = raw->i;
	st->st_n++;
	return 0;
}

/* A hist bucket entry: stage_put plus what buckets sort by. */
static int
stage_put_bucket(struct ingest *ing, struct ing_var *v, const char *name,
    size_t n, const struct raw *count, size_t klen, int lominf,
    const struct raw *lo)
{
	struct shist	*h;

	if (stage_put(ing, v, name, n, count) == -1)
		return -1;
	h = &ing->stage.st_h[ing->stage.st_n - 1];
	h->sh_klen = (uint32_t)klen;
	h->sh_lominf = (uint8_t)lominf;
	h->sh_lok = (uint8_t)(lominf ? R_I64 : lo->k);
	if (lo->k == R_U64)
		h->sh_lo.u = lo->u;
	else
		h->sh_lo.i = lominf ? 0 : lo->i;
	return 0;
}

/* A NUL-terminated copy in the stage's chunks; NULL on no memory. */
static char *
stage_strdup(struct ingest *ing, const char *s, size_t n)
{
	char	*p;

	if ((p = idchunk_strdup(&ing->stage.st_chunks, s, n)) == NULL)
		ing_fail(ing, "out of memory");
	return p;
}

/* Decimal text of an integer raw; returns its length. */
static size_t
fmt_int(char *out, const struct raw *n)
{
	char		 tmp[24];
	uint64_t	 u = n->k == R_U64 ? n->u : n->i < 0 ?
			    0 - (uint64_t)n->i : (uint64_t)n->i;
	size_t		 len = 0, i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (n->k != R_U64 && n->i < 0)
		out[len++] = '-';
	memcpy(out + len, tmp + i, sizeof(tmp) - i);
	return len + sizeof(tmp) - i;
}

/* "key:lo-hi" (or "lo-hi" unkeyed), -inf/inf for a missing bound. */
static char *
bucket_name(struct ingest *ing, const char *key, size_t klen, int keyed,
    const struct raw *lo, const struct raw *hi, size_t *np)
{
	struct buf	*b = &ing->tbuf;
	char		 num[24];

	buf_reset(b);
	if (keyed) {
		buf_append(b, key, klen);
		buf_putc(b, ':');
	}
	if (lo == NULL)
		buf_append(b, "-inf", 4);
	else
		buf_append(b, num, fmt_int(num, lo));
	buf_putc(b, '-');
	if (hi == NULL)
		buf_append(b, "inf", 3);
	else
		buf_append(b, num, fmt_int(num, hi));
	if (b->b_failed) {
		ing_fail(ing, "out of memory");
		return NULL;
	}
	*np = b->b_len;
	return stage_strdup(ing, b->b_data, b->b_len);
}

/* --- committing a print -------------------------------------------------- */

static void
sent_raw(const struct sent *e, struct raw *r)
{
	memset(r, 0, sizeof(*r));
	r->k = (enum rk)e->se_rk;
	if (r->k == R_U64)
		r->u = e->se_v.u;
	else if (r->k == R_DBL)
		r->d = e->se_v.d;
	else if (r->k == R_STR || r->k == R_JSON)
		r->s = e->se_v.s;
	else
		r->i = e->se_v.i;
}

static struct ing_val
sent_val(const struct sent *e)
{
	struct ing_val	 v;

	v.t = (enum ing_vt)e->se_vt;
	v.u = e->se_v.u;
	return v;
}

/* The entry's value now belongs to the caller. */
static struct ing_val
sent_take(struct sent *e)
{
	struct ing_val	 v = sent_val(e);

	e->se_vt = ING_NONE;
	e->se_v.s = NULL;
	return v;
}

static void
sent_set(struct sent *e, struct ing_val v)
{
	e->se_vt = (uint8_t)v.t;
	e->se_v.u = v.u;
}

/* Retypes v when a value cannot be an integer; converts all values. */
static int
stage_convert(struct ingest *ing, struct ing_var *v, struct stage *st)
{
	struct ing_val	 val;
	struct raw	 raw;
	size_t		 i;
	enum ing_vt	 it = v->iv_vtype == BTS_V_UINT ? ING_U64 : ING_I64;

	for (i = 0; i < st->st_n && v->iv_vtype != BTS_V_STRING; i++) {
		if (st->st_e[i].se_rk == R_I64 || st->st_e[i].se_rk == R_U64)
			continue;
		sent_raw(&st->st_e[i], &raw);
		if (jr_raw_needs_string(&raw)) {
			v->iv_vtype = BTS_V_STRING;
			v->iv_retyped = 1;
		}
	}
	for (i = 0; i < st->st_n; i++) {
		/* an integer for an integer variable: the same 64 bits */
		if ((st->st_e[i].se_rk == R_I64 ||
		    st->st_e[i].se_rk == R_U64) &&
		    v->iv_vtype != BTS_V_STRING) {
			st->st_e[i].se_vt = (uint8_t)it;
			continue;
		}
		sent_raw(&st->st_e[i], &raw);
		if (raw_to_val(&raw, v->iv_vtype, &val) == -1)
			return ing_fail(ing, "out of memory");
		sent_set(&st->st_e[i], val);
		if (val.t == ING_STR)
			st->st_strs = 1;
	}
	return 0;
}

static int
kind_sums(enum bts_kind k)
{
	return k == BTS_COUNT || k == BTS_SUM || k == BTS_HIST ||
	    k == BTS_LHIST;
}

/* b has the same name as a and came later: fold it into a. */
static void
sent_merge(struct sent *a, struct sent *b, enum bts_kind kind)
{
	struct ing_val	 bv;

	if (kind_sums(kind) && a->se_vt == b->se_vt && a->se_vt == ING_U64)
		a->se_v.u += b->se_v.u;
	else if (kind_sums(kind) && a->se_vt == b->se_vt &&
	    a->se_vt == ING_I64)
		a->se_v.i = (int64_t)((uint64_t)a->se_v.i +
		    (uint64_t)b->se_v.i);
	else {
		bv = sent_take(b);
		if (a->se_vt == ING_STR)
			free(a->se_v.s);
		sent_set(a, bv);
	}
	if (b->se_vt == ING_STR)
		free(b->se_v.s);
	b->se_vt = ING_NONE;
	b->se_dup = 1;
}

/* Folds each later entry of a name already in the id table into the
 * first one (the others are folded after sorting). */
static void
stage_fold_known(struct ing_var *v, struct stage *st)
{
	const struct ident	*ie;
	size_t			 i;

	for (i = 0; i < st->st_n; i++)
		if (st->st_e[i].se_dup) {
			ie = &vpriv(v)->vp_tab.it_e[st->st_e[i].se_k];
			sent_merge(&st->st_e[ie->ie_first], &st->st_e[i],
			    v->iv_kind);
		}
}

static int
bound_cmp(const struct shist *a, const struct shist *b)
{
	if (a->sh_lominf || b->sh_lominf)
		return b->sh_lominf - a->sh_lominf;
	if (a->sh_lok == R_U64 || b->sh_lok == R_U64) {
		if (a->sh_lok != b->sh_lok)
			return a->sh_lok == R_U64 ? 1 : -1;
		return (a->sh_lo.u > b->sh_lo.u) - (a->sh_lo.u < b->sh_lo.u);
	}
	return (a->sh_lo.i > b->sh_lo.i) - (a->sh_lo.i < b->sh_lo.i);
}

/* strcmp order (names hold no NUL) */
static int
name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int	 c = memcmp(a, b, an < bn ? an : bn);

	return c != 0 ? c : (an > bn) - (an < bn);
}

/* hist buckets: by key, then lower bound; others by name; then order */
static int
sent_cmp(const void *pa, const void *pb, void *arg)
{
	const struct stage	*st = arg;
	uint32_t		 ia = *(const uint32_t *)pa;
	uint32_t		 ib = *(const uint32_t *)pb;
	const struct sent	*a = &st->st_e[ia], *b = &st->st_e[ib];
	const struct shist	*ha, *hb;
	int			 c;

	if (st->st_hist) {
		ha = &st->st_h[ia];
		hb = &st->st_h[ib];
		c = name_cmp(a->se_name, ha->sh_klen, b->se_name, hb->sh_klen);
		if (c == 0)
			c = bound_cmp(ha, hb);
		if (c != 0)
			return c;
	}
	if ((c = name_cmp(a->se_name, a->se_len, b->se_name, b->se_len)))
		return c;
	return (ia > ib) - (ia < ib);
}

static int
same_name(const struct sent *a, const struct sent *b)
{
	return a->se_len == b->se_len &&
	    memcmp(a->se_name, b->se_name, a->se_len) == 0;
}

/* Room for n in *a (capacity *cap); -1 on no memory. */
static int
grow_u32(uint32_t **a, size_t *cap, size_t n)
{
	uint32_t	*p;

	if (*cap >= n)
		return 0;
	if ((p = realloc(*a, n * sizeof(*p))) == NULL)
		return -1;
	*a = p;
	*cap = n;
	return 0;
}

/* Folds adjacent entries of the same (new) name in sorted idx[0..n). */
static size_t
fold_sorted(struct ing_var *v, struct stage *st, uint32_t *idx, size_t n)
{
	size_t	 i, m = 0;

	for (i = 0; i < n; i++) {
		if (m > 0 && same_name(&st->st_e[idx[m - 1]],
		    &st->st_e[idx[i]])) {
			sent_merge(&st->st_e[idx[m - 1]], &st->st_e[idx[i]],
			    v->iv_kind);
			continue;
		}
		idx[m++] = idx[i];
	}
	return m;
}

/*
 * The current names this print has, in their current order (which is
 * sorted: it came from the same comparator), into b; returns how many.
 */
static size_t
stage_current(struct ing_var *v, struct stage *st, uint32_t *b)
{
	size_t	 i, nb = 0;

	memset(st->st_pos, 0xff, v->iv_n * sizeof(*st->st_pos));
	for (i = 0; i < st->st_n; i++)
		if (st->st_e[i].se_cur && !st->st_e[i].se_dup)
			st->st_pos[st->st_e[i].se_hash] = (uint32_t)i;
	for (i = 0; i < v->iv_n; i++)
		if (st->st_pos[i] != IDTAB_NONE)
			b[nb++] = st->st_pos[i];
	return nb;
}

/*
 * Puts the entries that are not folded yet into st_idx in instance
 * order, folding names printed more than once that were new. When the
 * current order is of the same kind, only the names that are not
 * current are sorted, then merged with the current ones: a print that
 * changed a few names of a big map costs O(n + m log m), not O(n log n).
 * *np: how many are left.
 */
static int
stage_sort(struct ingest *ing, struct ing_var *v, struct stage *st,
    size_t *np)
{
	uint32_t	*idx, *a, *b;
	size_t		 i, j, n = 0, na = 0, nb;
	int		 merge = vpriv(v)->vp_hist == st->st_hist && v->iv_n > 0;

	if (grow_u32(&st->st_idx, &st->st_idxcap, 2 * st->st_n + 1) == -1 ||
	    (merge && grow_u32(&st->st_pos, &st->st_poscap, v->iv_n) == -1))
		return ing_fail(ing, "out of memory");
	idx = st->st_idx;
	a = merge ? idx + st->st_n : idx;
	for (i = 0; i < st->st_n; i++)
		if (!st->st_e[i].se_dup && !(merge && st->st_e[i].se_cur))
			a[na++] = (uint32_t)i;
	if (na > 1)
		qsort_r(a, na, sizeof(*a), sent_cmp, st);
	na = fold_sorted(v, st, a, na);
	if (!merge) {
		*np = na;
		return 0;
	}
	b = a + na;
	nb = stage_current(v, st, b);
	for (i = j = 0; i < na || j < nb; n++)
		idx[n] = j == nb || (i < na && sent_cmp(&a[i], &b[j], st) < 0) ?
		    a[i++] : b[j++];
	*np = n;
	return 0;
}

static int
vals_same(const struct ing_val *a, const struct sent *b)
{
	struct ing_val	 bv = sent_val(b);

	return val_equal(a, &bv);
}

static void
var_clear(struct ing_var *v)
{
	size_t	 i;

	for (i = 0; i < v->iv_n; i++)
		val_free(&v->iv_vals[i]);
	free(v->iv_vals);
	free(v->iv_ids);
	free(v->iv_names);
	v->iv_iseq++;
	v->iv_vals = NULL;
	v->iv_ids = NULL;
	v->iv_names = NULL;
	v->iv_n = 0;
}

/*
 * The print has exactly the current names (each once, or folded), in the
 * same order class: only the values can change, in place, and the order
 * is kept as it is (it was sorted for these same names).
 */
static void
commit_same_names(struct ingest *ing, struct ing_var *v, struct stage *st)
{
	struct sent	*e;
	size_t		 i;

	for (i = 0; i < st->st_n; i++) {
		e = &st->st_e[i];
		if (i + ING_AHEAD < st->st_n && st->st_e[i + ING_AHEAD].se_cur &&
		    !st->st_e[i + ING_AHEAD].se_dup)
			__builtin_prefetch(&v->iv_vals[
			    st->st_e[i + ING_AHEAD].se_hash]);
		if (!e->se_dup && !vals_same(&v->iv_vals[e->se_hash], e))
			break;
	}
	if (i == st->st_n)
		return;		/* a reprint of the same values */
	for (i = 0; i < st->st_n; i++) {
		e = &st->st_e[i];
		if (e->se_dup)
			continue;
		val_free(&v->iv_vals[e->se_hash]);
		v->iv_vals[e->se_hash] = sent_take(e);
	}
	v->iv_seq++;
	ing->seq++;
}

/*
 * A print with other names than the current ones: sort, give new names
 * ids in that order (dropping those over the limit), and replace v's
 * instances. -1 on no memory.
 */
static int
commit_new_names(struct ingest *ing, struct ing_var *v, struct stage *st)
{
	struct vpriv	*vp = vpriv(v);
	struct idtab	*t = &vp->vp_tab;
	struct ing_val	*vals = NULL;
	uint32_t	*ids = NULL, k;
	char		**names = NULL;
	struct sent	*e;
	size_t		 i, j, n = 0, m = 0;
	int		 ret = -1;

	if (stage_sort(ing, v, st, &n) == -1)
		return -1;
	vals = calloc(n ? n : 1, sizeof(*vals));
	ids = calloc(n ? n : 1, sizeof(*ids));
	names = calloc(n ? n : 1, sizeof(*names));
	if (vals == NULL || ids == NULL || names == NULL) {
		ing_fail(ing, "out of memory");
		goto fail;
	}
	for (i = 0; i < n; i++) {
		e = &st->st_e[st->st_idx[i]];
		if ((k = e->se_k) == IDTAB_NONE) {
			if (t->it_n >= ing->lim.il_max_instances ||
			    t->it_next > ING_MAX_ID) {
				v->iv_dropped++;
				continue;
			}
			if ((k = idtab_add(t, e->se_name, e->se_len,
			    e->se_hash, (uint32_t)t->it_next)) == IDTAB_NONE) {
				ing_fail(ing, "out of memory");
				goto fail;
			}
			e->se_k = k;
		}
		ids[m] = t->it_e[k].ie_id;
		names[m] = (char *)t->it_e[k].ie_name;
		t->it_e[k].ie_pos = (uint32_t)m;	/* checked by iv_ids */
		vals[m++] = sent_take(e);
	}
	vp->vp_hist = st->st_hist;
	if (v->iv_n == m && memcmp(v->iv_ids, ids, m * sizeof(*ids)) == 0) {
		for (j = 0; j < m && val_equal(&v->iv_vals[j], &vals[j]); j++)
			;
		if (j == m) {	/* a reprint of the same values */
			for (j = 0; j < m; j++)
				val_free(&vals[j]);
			ret = 0;
			goto fail;
		}
	}
	var_clear(v);
	v->iv_vals = vals;
	v->iv_ids = ids;
	v->iv_names = names;
	v->iv_n = m;
	v->iv_seq++;
	ing->seq++;
	return 0;
fail:
	for (j = 0; ret == -1 && vals != NULL && j < m; j++)
		val_free(&vals[j]);
	free(vals);
	free(ids);
	free(names);
	return ret;
}

/* Remembers the order of this print to predict the next one. */
static void
stage_remember(struct ing_var *v, struct stage *st)
{
	struct vpriv	*vp = vpriv(v);
	uint32_t	*p;
	size_t		 i;

	if (st->st_predict && st->st_n == vp->vp_nprev)
		return;		/* printed in the same order again */
	if (vp->vp_prevcap < st->st_n) {
		if ((p = realloc(vp->vp_prev, st->st_n * sizeof(*p))) == NULL) {
			vp->vp_nprev = 0;	/* only a hint */
			return;
		}
		vp->vp_prev = p;
		vp->vp_prevcap = st->st_n;
	}
	for (i = 0; i < st->st_n; i++)
		vp->vp_prev[i] = st->st_e[i].se_k;
	vp->vp_nprev = st->st_n;
}

/* A scalar: its one value. -1 on no memory. */
static int
commit_scalar(struct ingest *ing, struct ing_var *v, struct stage *st)
{
	struct ing_val	 val;

	if (st->st_n == 0)
		return 0;
	val = sent_take(&st->st_e[0]);
	if (v->iv_n == 1 && val_equal(&v->iv_vals[0], &val)) {
		val_free(&val);
		return 0;
	}
	if (v->iv_vals == NULL &&
	    (v->iv_vals = calloc(1, sizeof(*v->iv_vals))) == NULL) {
		val_free(&val);
		return ing_fail(ing, "out of memory");
	}
	val_free(&v->iv_vals[0]);
	v->iv_vals[0] = val;
	v->iv_n = 1;
	v->iv_seq++;
	ing->seq++;
	return 0;
}

/*
 * Replaces v's values by what the stage holds (a full print of the map).
 * A print of the current names in the same kind of order only updates
 * values; otherwise the names are sorted. -1 on no memory.
 */
static int
var_commit(struct ingest *ing, struct ing_var *v)
{
	struct stage	*st = &ing->stage;

	if (stage_convert(ing, v, st) == -1)
		return -1;
	if (v->iv_scalar)
		return commit_scalar(ing, v, st);
	stage_resolve(v, st);
	stage_fold_known(v, st);
	if (st->st_nadd == 0 && st->st_ncur == v->iv_n &&
	    (vpriv(v)->vp_hist == st->st_hist || v->iv_n == 0))
		commit_same_names(ing, v, st);
	else if (commit_new_names(ing, v, st) == -1)
		return -1;
	stage_remember(v, st);
	return 0;
}

/* --- reading a print: the generic path ----------------------------------- */

/*
 * The value at r->p, any JSON; a string or container's text is copied to
 * the stage's chunks.
 */
static int
read_value(struct ingest *ing, struct jr *r, struct raw *raw)
{
	if (jr_value(r, raw, &ing->sbuf, &ing->tbuf) == -1)
		return -1;
	if (raw->s != NULL && (raw->s = stage_strdup(ing, raw->s,
	    ing->sbuf.b_len)) == NULL)
		return -1;
	return 0;
}

/* The member name just read (in kbuf), copied to the stage's chunks. */
static char *
key_copy(struct ingest *ing, size_t *np)
{
	*np = ing->kbuf.b_len;
	return stage_strdup(ing, buf_cstr(&ing->kbuf), ing->kbuf.b_len);
}

/* The value of a "@name" member: a keyed map, or one scalar value. */
static int
fill_map(struct ingest *ing, struct jr *r, struct ing_var *v)
{
	struct raw	 raw;
	size_t		 idx = 0, n;
	char		*name;
	int		 rv;

	if (v->iv_scalar) {
		if (read_value(ing, r, &raw) == -1)
			return -1;
		return stage_put(ing, v, NULL, 0, &raw);
	}
	if (jr_peek(r) != '{')
		return ing_fail(ing, "@%s: keyed map without keys",
		    v->iv_name);
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		if ((name = key_copy(ing, &n)) == NULL ||
		    read_value(ing, r, &raw) == -1 ||
		    stage_put(ing, v, name, n, &raw) == -1)
			return -1;
	}
	return rv;
}

/* hist bucket {"min"?, "max"?, "count"}: the count and bounds as given */
static int
read_bucket(struct ingest *ing, struct jr *r, struct raw *lo, int *haslo,
    struct raw *hi, int *hashi, struct raw *count)
{
	struct raw	 tmp;
	size_t		 idx = 0;
	int		 rv, which, hascount = 0;

	if (jr_peek(r) != '{')
		return ing_fail(ing, "hist bucket is not an object");
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		which = strcmp(buf_cstr(&ing->kbuf), "min") == 0 ? 1 :
		    strcmp(buf_cstr(&ing->kbuf), "max") == 0 ? 2 :
		    strcmp(buf_cstr(&ing->kbuf), "count") == 0 ? 3 : 0;
		if (which == 0) {
			if (jr_skip(r) == -1)
				return -1;
			continue;
		}
		if (jr_value(r, &tmp, &ing->sbuf, &ing->tbuf) == -1)
			return -1;
		if (jr_raw_int(&tmp, which == 1 ? lo : which == 2 ? hi :
		    count) == -1)
			return ing_fail(ing, "hist bucket %s is not an integer",
			    which == 1 ? "min" : which == 2 ? "max" : "count");
		if (which == 1)
			*haslo = 1;
		else if (which == 2)
			*hashi = 1;
		else
			hascount = 1;
	}
	if (rv == 0 && !hascount)
		return ing_fail(ing, "hist bucket without count");
	return rv;
}

/* Buckets of one hist: instances "key:lo-hi" (or "lo-hi" unkeyed). */
static int
fill_buckets(struct ingest *ing, struct jr *r, struct ing_var *v,
    const char *key, size_t klen, int keyed)
{
	struct raw	 lo, hi, count;
	size_t		 idx = 0, n;
	char		*name;
	int		 rv, haslo, hashi;

	if (jr_peek(r) != '[')
		return ing_fail(ing, "hist value is not an array");
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, ']', &idx, NULL)) == 1) {
		memset(&lo, 0, sizeof(lo));
		memset(&hi, 0, sizeof(hi));
		haslo = hashi = 0;
		if (read_bucket(ing, r, &lo, &haslo, &hi, &hashi, &count) == -1)
			return -1;
		if ((name = bucket_name(ing, key, klen, keyed,
		    haslo ? &lo : NULL, hashi ? &hi : NULL, &n)) == NULL ||
		    stage_put_bucket(ing, v, name, n, &count, keyed ? klen : 0,
		    !haslo, &lo) == -1)
			return -1;
	}
	return rv;
}

/* A hist: an array of buckets, or an object key -> array of buckets. */
static int
fill_hist(struct ingest *ing, struct jr *r, struct ing_var *v)
{
	size_t	 idx = 0, n;
	char	*key;
	int	 c = jr_peek(r), rv;

	/* buckets are instances: a scalar has no room for them */
	if (v->iv_scalar)
		return ing_fail(ing, "@%s: hist value does not match the "
		    "variable", v->iv_name);
	if (c == '[')
		return fill_buckets(ing, r, v, "", 0, 0);
	if (c != '{')
		return ing_fail(ing, "@%s: hist value is not an array or "
		    "object", v->iv_name);
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		if ((key = key_copy(ing, &n)) == NULL ||
		    fill_buckets(ing, r, v, key, n, 1) == -1)
			return -1;
	}
	return rv;
}

/* "prefix:name" in the stage's chunks */
static char *
joined_name(struct ingest *ing, const char *prefix, size_t plen,
    const char *name, size_t nlen, size_t *np)
{
	struct buf	*b = &ing->tbuf;

	buf_reset(b);
	buf_append(b, prefix, plen);
	buf_putc(b, ':');
	buf_append(b, name, nlen);
	if (b->b_failed) {
		ing_fail(ing, "out of memory");
		return NULL;
	}
	*np = b->b_len;
	return stage_strdup(ing, b->b_data, b->b_len);
}

/* Members of a stats object: "name" -> number, or "name:sub" -> number. */
static int
fill_stats_obj(struct ingest *ing, struct jr *r, struct ing_var *v,
    const char *prefix, size_t plen)
{
	struct raw	 raw;
	size_t		 idx = 0, n;
	char		*name;
	int		 rv;

	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		if (prefix == NULL && jr_peek(r) == '{') {
			if ((name = key_copy(ing, &n)) == NULL ||
			    fill_stats_obj(ing, r, v, name, n) == -1)
				return -1;
			continue;
		}
		name = prefix ? joined_name(ing, prefix, plen,
		    buf_cstr(&ing->kbuf), ing->kbuf.b_len, &n) :
		    key_copy(ing, &n);
		if (name == NULL || read_value(ing, r, &raw) == -1 ||
		    stage_put(ing, v, name, n, &raw) == -1)
			return -1;
	}
	return rv;
}

/* avg: a number (or key -> number); stats(): {count, average, total}. */
static int
fill_stats(struct ingest *ing, struct jr *r, struct ing_var *v)
{
	if (v->iv_scalar && jr_peek(r) != '{')
		return fill_map(ing, r, v);
	if (v->iv_scalar || jr_peek(r) != '{')
		return ing_fail(ing, "@%s: stats value does not match the "
		    "variable", v->iv_name);
	return fill_stats_obj(ing, r, v, NULL, 0);
}

/* --- reading a print: the fast path -------------------------------------- */

/*
 * One pass over a line of the shape bpftrace prints for map, hist and
 * stats, {"type": "T", "data": {"@name": VALUE}}, with plain ASCII member
 * names (no escapes) and integer values: keys are staged where they are
 * in the line, numbers are read once. It stages exactly what the generic
 * path would for such a line. At anything else (escapes, other bytes,
 * decimals, strings, more members, any error) it stops before anything
 * changed and the line takes the generic path, which validates it and
 * says what is wrong.
 */

struct fcur {
	const char	*p, *end;
};

static inline void
f_ws(struct fcur *f)
{
	while (f->p < f->end && jr_is_ws(*f->p))
		f->p++;
}

/* The next non-blank byte is c: steps over it. */
static inline int
f_eat(struct fcur *f, char c)
{
	f_ws(f);
	if (f->p < f->end && *f->p == c) {
		f->p++;
		return 0;
	}
	return -1;
}

/* The next non-blank byte, not consumed; -1 at the end. */
static inline int
f_peek(struct fcur *f)
{
	f_ws(f);
	return f->p < f->end ? (unsigned char)*f->p : -1;
}

static inline int
f_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* A string of plain ASCII: where it is in the line. */
static inline int
f_string(struct fcur *f, const char **s, size_t *n)
{
	const char	*q;

	if (f_eat(f, '"') == -1)
		return -1;
	for (q = f->p; q < f->end && f_plain((unsigned char)*q); q++)
		;
	if (q >= f->end || *q != '"')
		return -1;
	*s = f->p;
	*n = (size_t)(q - f->p);
	f->p = q + 1;
	return 0;
}

/* A member name and its ':'. */
static inline int
f_key(struct fcur *f, const char **s, size_t *n)
{
	if (f_string(f, s, n) == -1 || f_eat(f, ':') == -1)
		return -1;
	return 0;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * Up to 8 leading decimal digits of p[0..8) at once: their value in *v,
 * their count returned (0..8).
 */
static inline unsigned
digits8(const char *p, uint64_t *v)
{
	uint64_t	 raw, x, bad;
	unsigned	 n;

	memcpy(&raw, p, 8);
	x = raw - 0x3030303030303030ULL;
	/*
	 * A byte's top bit set: it was below '0' (x) or above '9' (raw +
	 * 0x46). Borrows and carries only move to later bytes, so the
	 * first flagged byte is the first that is not a digit.
	 */
	bad = (x | (raw + 0x4646464646464646ULL)) & 0x8080808080808080ULL;
	n = bad ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
	if (n == 0)
		return 0;
	x <<= 8 * (8 - n);	/* the digits to the top, zeros before */
	x = (x * 10 + (x >> 8)) & 0x00ff00ff00ff00ffULL;
	x = (x * 100 + (x >> 16)) & 0x0000ffff0000ffffULL;
	x = (x * 10000 + (x >> 32)) & 0x00000000ffffffffULL;
	*v = x;
	return n;
}
#endif

/* An integer, read as jr_number and parse_int read it. */
static int
f_int(struct fcur *f, struct raw *out)
{
	static const uint64_t	 pow10[] = { 1, 10, 100, 1000, 10000,
	    100000, 1000000, 10000000, 100000000 };
	const char	*q, *end = f->end;
	uint64_t	 mag = 0, part;
	unsigned	 d, n, nd = 0;
	int		 neg = 0;

	f_ws(f);
	q = f->p;
	if (q < end && *q == '-') {
		neg = 1;
		q++;
	}
	if (q >= end || *q < '0' || *q > '9')
		return -1;
	if (*q == '0')
		q++;
	else {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		/* whole blocks of 8 while no overflow is possible */
		while (nd <= 11 && end - q >= 8 &&
		    (n = digits8(q, &part)) > 0) {
			mag = mag * pow10[n] + part;
			nd += n;
			q += n;
			if (n < 8)
				break;
		}
#endif
		for (; q < end && *q >= '0' && *q <= '9'; q++) {
			d = (unsigned)(*q - '0');
			if (++nd > 19 && mag > (UINT64_MAX - d) / 10)
				return -1;
			mag = mag * 10 + d;
		}
	}
	if (q < end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' ||
	    *q == 'E'))
		return -1;
	if (neg && mag > (uint64_t)INT64_MAX + 1)
		return -1;
	out->k = R_I64;
	if (neg)
		out->i = mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
	else if (mag <= (uint64_t)INT64_MAX)
		out->i = (int64_t)mag;
	else {
		out->k = R_U64;
		out->u = mag;
	}
	f->p = q;
	return 0;
}

/* The next member of an object: 1 after ',', 0 after the '}'. */
static inline int
f_more(struct fcur *f, char close)
{
	if (f_eat(f, ',') == 0)
		return 1;
	return f_eat(f, close) == 0 ? 0 : -1;
}

/* Opens an object or array: 1 when it has members, 0 when empty. */
static inline int
f_open(struct fcur *f, char open, char close)
{
	if (f_eat(f, open) == -1)
		return -1;
	return f_eat(f, close) == 0 ? 0 : 1;
}

static int
fast_map(struct ingest *ing, struct fcur *f, struct ing_var *v)
{
	struct raw	 raw;
	const char	*s;
	size_t		 n;
	int		 rv;

	if (v->iv_scalar)
		return f_int(f, &raw) == -1 ? -1 :
		    stage_put(ing, v, NULL, 0, &raw);
	if ((rv = f_open(f, '{', '}')) <= 0)
		return rv;
	do {
		if (f_key(f, &s, &n) == -1 || f_int(f, &raw) == -1 ||
		    stage_put(ing, v, s, n, &raw) == -1)
			return -1;
	} while ((rv = f_more(f, '}')) == 1);
	return rv;
}

static int
fast_bucket(struct ingest *ing, struct fcur *f, struct ing_var *v,
    const char *key, size_t klen, int keyed)
{
	struct raw	 lo, hi, count, x;
	const char	*s;
	size_t		 n;
	char		*name;
	int		 rv, haslo = 0, hashi = 0, hascount = 0;

	memset(&lo, 0, sizeof(lo));
	if (f_eat(f, '{') == -1)
		return -1;
	do {
		if (f_key(f, &s, &n) == -1 || f_int(f, &x) == -1)
			return -1;
		if (n == 3 && memcmp(s, "min", 3) == 0) {
			lo = x;
			haslo = 1;
		} else if (n == 3 && memcmp(s, "max", 3) == 0) {
			hi = x;
			hashi = 1;
		} else if (n == 5 && memcmp(s, "count", 5) == 0) {
			count = x;
			hascount = 1;
		} else
			return -1;
	} while ((rv = f_more(f, '}')) == 1);
	if (rv == -1 || !hascount)
		return -1;
	if ((name = bucket_name(ing, key, klen, keyed, haslo ? &lo : NULL,
	    hashi ? &hi : NULL, &n)) == NULL)
		return -1;
	return stage_put_bucket(ing, v, name, n, &count, keyed ? klen : 0,
	    !haslo, &lo);
}

static int
fast_buckets(struct ingest *ing, struct fcur *f, struct ing_var *v,
    const char *key, size_t klen, int keyed)
{
	int	 rv;

	if ((rv = f_open(f, '[', ']')) <= 0)
		return rv;
	do {
		if (fast_bucket(ing, f, v, key, klen, keyed) == -1)
			return -1;
	} while ((rv = f_more(f, ']')) == 1);
	return rv;
}

static int
fast_hist(struct ingest *ing, struct fcur *f, struct ing_var *v)
{
	const char	*s;
	size_t		 n;
	int		 rv;

	if (v->iv_scalar)
		return -1;
	if (f_peek(f) == '[')
		return fast_buckets(ing, f, v, "", 0, 0);
	if ((rv = f_open(f, '{', '}')) <= 0)
		return rv;
	do {
		if (f_key(f, &s, &n) == -1 ||
		    fast_buckets(ing, f, v, s, n, 1) == -1)
			return -1;
	} while ((rv = f_more(f, '}')) == 1);
	return rv;
}

/* {"sub": n, ...} of a keyed stats(): instances "key:sub" */
static int
fast_stats_sub(struct ingest *ing, struct fcur *f, struct ing_var *v,
    const char *key, size_t klen)
{
	struct raw	 raw;
	const char	*s;
	size_t		 n;
	char		*name;
	int		 rv;

	if ((rv = f_open(f, '{', '}')) <= 0)
		return rv;
	do {
		if (f_key(f, &s, &n) == -1 || f_int(f, &raw) == -1 ||
		    (name = joined_name(ing, key, klen, s, n, &n)) == NULL ||
		    stage_put(ing, v, name, n, &raw) == -1)
			return -1;
	} while ((rv = f_more(f, '}')) == 1);
	return rv;
}

static int
fast_stats(struct ingest *ing, struct fcur *f, struct ing_var *v)
{
	struct raw	 raw;
	const char	*s;
	size_t		 n;
	int		 rv;

	if (v->iv_scalar)
		return f_peek(f) == '{' ? -1 : fast_map(ing, f, v);
	if ((rv = f_open(f, '{', '}')) <= 0)
		return rv;
	do {
		if (f_key(f, &s, &n) == -1)
			return -1;
		if (f_peek(f) == '{')
			rv = fast_stats_sub(ing, f, v, s, n);
		else
			rv = f_int(f, &raw) == -1 ? -1 :
			    stage_put(ing, v, s, n, &raw);
		if (rv == -1)
			return -1;
	} while ((rv = f_more(f, '}')) == 1);
	return rv;
}

/* "name" of {"name" with exactly those plain bytes */
static int
f_is(const char *s, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(s, want, n) == 0;
}

/*
 * The whole line on the fast path: 0 used, -1 invalid (no memory while
 * committing), ING_SLOW when the generic path must read it instead.
 */
#define ING_SLOW	(-2)

static int
fast_line(struct ingest *ing, const char *line, size_t len)
{
	struct fcur	 f = { line, line + len };
	struct ing_var	*v;
	const char	*s;
	char		 name[64];
	size_t		 n;
	enum msgtype	 t;
	int		 rv;

	if (f_eat(&f, '{') == -1 || f_key(&f, &s, &n) == -1 ||
	    !f_is(s, n, "type") || f_string(&f, &s, &n) == -1)
		return ING_SLOW;
	t = f_is(s, n, "map") ? M_MAP : f_is(s, n, "hist") ? M_HIST :
	    f_is(s, n, "stats") ? M_STATS : M_UNKNOWN;
	if (t == M_UNKNOWN || f_eat(&f, ',') == -1 ||
	    f_key(&f, &s, &n) == -1 || !f_is(s, n, "data") ||
	    f_eat(&f, '{') == -1 || f_key(&f, &s, &n) == -1 || n == 0 ||
	    s[0] != '@' || n > sizeof(name))
		return ING_SLOW;
	memcpy(name, s + 1, n - 1);
	name[n - 1] = '\0';
	v = ingest_var_by_name(ing, n > 1 ? name : "root");
	if (v == NULL || v->iv_kind == BTS_OUTPUT)
		return ING_SLOW;
	stage_begin(&ing->stage, v, t == M_HIST);
	rv = t == M_HIST ? fast_hist(ing, &f, v) : t == M_STATS ?
	    fast_stats(ing, &f, v) : fast_map(ing, &f, v);
	if (rv == 0 && (f_eat(&f, '}') == -1 || f_eat(&f, '}') == -1 ||
	    f_peek(&f) != -1))
		rv = -1;
	if (rv == 0)
		rv = var_commit(ing, v);
	else {
		ing->ebuf[0] = '\0';	/* the generic path tells */
		rv = ING_SLOW;
	}
	stage_reset(&ing->stage);
	return rv;
}
static struct ing_var *
var_for_member(struct ingest *ing, const char *m)
{
	struct ing_var	*v;

	if (*m == '@')
		m++;
	v = ingest_var_by_name(ing, *m ? m : "root");
	return v == NULL || v->iv_kind == BTS_OUTPUT ? NULL : v;
}

/* map, hist, stats: data is {"@name": value, ...}. */
static int
on_maps(struct ingest *ing, struct jr *r, enum msgtype t)
{
	struct ing_var	*v;
	size_t		 idx = 0;
	int		 rv, used = 0;

	if (jr_peek(r) != '{')
		return ing_fail(ing, "data is not an object");
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		if ((v = var_for_member(ing, buf_cstr(&ing->kbuf))) == NULL) {
			ing->st.is_unknown_vars++;
			ing->seq++;
			if (jr_skip(r) == -1)
				return -1;
			continue;
		}
		stage_begin(&ing->stage, v, t == M_HIST);
		rv = t == M_HIST ? fill_hist(ing, r, v) :
		    t == M_STATS ? fill_stats(ing, r, v) : fill_map(ing, r, v);
		if (rv != -1)
			rv = var_commit(ing, v);
		stage_reset(&ing->stage);
		if (rv == -1)
			return -1;
		used = 1;
	}
	return rv == -1 ? -1 : !used;
}

/* Text for @output; join and value lines end with '\n' as in text mode. */
static int
on_text(struct ingest *ing, struct jr *r, enum msgtype t)
{
	struct ing_var	*ov;
	struct raw	 raw;
	char		*s;
	int		 changed = 0, rv;

	if (jr_raw(r, &raw, &ing->sbuf, &ing->tbuf) == -1)
		return -1;
	if (t != M_VALUE && raw.k != R_STR) {
		jr_raw_free(&raw);
		return ing_fail(ing, "data is not a string");
	}
	if (ing->outvar == SIZE_MAX) {
		jr_raw_free(&raw);
		return 1;
	}
	s = raw.k == R_NULL ? jr_memdup("", 0) : raw_text(&raw);
	jr_raw_free(&raw);
	if (s == NULL)
		return ing_fail(ing, "out of memory");
	rv = out_append(&ing->out, s, strlen(s), &changed);
	if (rv == 0 && (t == M_JOIN || t == M_VALUE))
		rv = out_append(&ing->out, "\n", 1, &changed);
	free(s);
	if (changed) {
		ov = &ing->vars[ing->outvar];
		ov->iv_seq++;
		ing->seq++;
	}
	return rv == -1 ? ing_fail(ing, "out of memory") : 0;
}

/* The integer member at p (top level or in data), -1 when absent/bad. */
static int
member_int(struct ingest *ing, const char *line, const char *p,
    const char *end, struct raw *out)
{
	struct jr	 r;
	struct raw	 raw;
	int		 rv;

	if (p == NULL)
		return -1;
	jr_at(&r, ing, line, p, end);
	if (jr_raw(&r, &raw, &ing->sbuf, &ing->tbuf) == -1)
		return -1;
	rv = jr_raw_int(&raw, out);
	jr_raw_free(&raw);
	return rv;
}

/* data.NAME of {"data": {"NAME": n}}, else the top-level NAME. */
static int
payload_int(struct ingest *ing, const char *line, const struct msg *m,
    const char *end, const char *name, const char *top, struct raw *out)
{
	struct jr	 r;
	size_t		 idx = 0;
	int		 rv, found = -1;

	if (m->data == NULL)
		return member_int(ing, line, top, end, out);
	jr_at(&r, ing, line, m->data, end);
	if (jr_peek(&r) != '{' || jr_open(&r) == -1)
		return -1;
	while ((rv = jr_next(&r, '}', &idx, &ing->kbuf)) == 1) {
		if (strcmp(buf_cstr(&ing->kbuf), name) == 0)
			found = member_int(ing, line, r.p, end, out);
		if (jr_skip(&r) == -1)
			return -1;
	}
	if (rv == 0 && found == -1)
		found = member_int(ing, line, top, end, out);
	return rv == -1 ? -1 : found;
}

static int
on_probes(struct ingest *ing, const char *line, const struct msg *m,
    const char *end)
{
	struct raw	 n;
	int		 probes;

	if (payload_int(ing, line, m, end, "probes", m->probes, &n) == -1)
		return ing_fail(ing, "attached_probes without a probe count");
	probes = n.k == R_U64 || n.i > INT32_MAX ? INT32_MAX :
	    n.i < 0 ? 0 : (int)n.i;
	if (probes != ing->st.is_probes) {
		ing->st.is_probes = probes;
		ing->seq++;
	}
	return 0;
}

static int
on_lost(struct ingest *ing, const char *line, const struct msg *m,
    const char *end)
{
	struct raw	 n;
	uint64_t	 add;

	if (payload_int(ing, line, m, end, "events", m->events, &n) == -1)
		return ing_fail(ing, "lost_events without an event count");
	add = n.k == R_U64 ? n.u : n.i < 0 ? 0 : (uint64_t)n.i;
	ing->st.is_lost_events = ing->st.is_lost_events + add <
	    ing->st.is_lost_events ? UINT64_MAX : ing->st.is_lost_events + add;
	ing->seq++;
	return 0;
}

/* The string member at p into b, or "" when absent or not a string. */
static void
member_str(struct ingest *ing, const char *line, const char *p,
    const char *end, struct buf *b)
{
	struct jr	 r;

	buf_reset(b);
	if (p == NULL)
		return;
	jr_at(&r, ing, line, p, end);
	if (jr_peek(&r) == '"' && jr_string(&r, b) == -1)
		buf_reset(b);
}

/* helper_error, runtime_error, errorf, warnf: a one-line summary. */
static int
on_error(struct ingest *ing, const char *line, const struct msg *m,
    const char *end)
{
	struct ingest_stats	*st = &ing->st;
	struct raw		 n;
	char			 where[64] = "";
	long long		 l = 0, c = 0;
	int64_t			 ret = 0;

	if (member_int(ing, line, m->line, end, &n) == 0 && n.k == R_I64)
		l = n.i;
	if (member_int(ing, line, m->col, end, &n) == 0 && n.k == R_I64)
		c = n.i;
	if (member_int(ing, line, m->retcode, end, &n) == 0 && n.k == R_I64)
		ret = n.i;
	if (m->line != NULL)
		snprintf(where, sizeof(where), " at line %lld col %lld", l, c);
	member_str(ing, line, m->msgtext ? m->msgtext : m->data, end,
	    &ing->sbuf);
	if (m->type == M_HELPER) {
		member_str(ing, line, m->helper, end, &ing->kbuf);
		snprintf(st->is_last_error, sizeof(st->is_last_error),
		    "helper_error: %s returned %" PRId64 "%s%s%s",
		    buf_cstr(&ing->kbuf), ret, where,
		    ing->sbuf.b_len ? ": " : "", buf_cstr(&ing->sbuf));
		st->is_helper_errors++;
	} else
		snprintf(st->is_last_error, sizeof(st->is_last_error),
		    "%s: %s%s", m->tname, buf_cstr(&ing->sbuf), where);
	ing->seq++;
	return 0;
}

/* Records where each top-level member starts (the last one wins). */
static int
read_envelope(struct ingest *ing, struct jr *r, struct msg *m)
{
	static const char *const names[] = { "data", "probes", "events",
	    "helper", "retcode", "line", "col", "msg" };
	const char	**slots[] = { &m->data, &m->probes, &m->events,
	    &m->helper, &m->retcode, &m->line, &m->col, &m->msgtext };
	const char	*type = NULL;
	size_t		 idx = 0, i;
	int		 rv;

	if (jr_peek(r) != '{')
		return ing_fail(ing, "line is not a JSON object");
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		if (strcmp(buf_cstr(&ing->kbuf), "type") == 0)
			type = r->p;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(buf_cstr(&ing->kbuf), names[i]) == 0)
				*slots[i] = r->p;
		if (jr_skip(r) == -1)
			return -1;
	}
	if (rv == -1)
		return -1;
	if (type == NULL || *type != '"')
		return ing_fail(ing, "no \"type\" string");
	r->p = type;
	buf_reset(&ing->tbuf);
	if (jr_string(r, &ing->tbuf) == -1)
		return -1;
	m->type = M_UNKNOWN;
	for (i = 0; i < sizeof(msgtypes) / sizeof(msgtypes[0]); i++)
		if (strcmp(buf_cstr(&ing->tbuf), msgtypes[i].name) == 0) {
			m->type = msgtypes[i].t;
			m->tname = msgtypes[i].name;
		}
	return 0;
}

static int
dispatch(struct ingest *ing, const char *line, const char *end,
    const struct msg *m)
{
	struct jr	 r;
	const char	*text = m->data ? m->data : m->msgtext;

	switch (m->type) {
	case M_PROBES:
		return on_probes(ing, line, m, end);
	case M_LOST:
		return on_lost(ing, line, m, end);
	case M_HELPER:
	case M_RUNTIME:
	case M_ERRORF:
	case M_WARNF:
		return on_error(ing, line, m, end);
	case M_MAP:
	case M_HIST:
	case M_STATS:
		if (m->data == NULL)
			return ing_fail(ing, "%s without data", m->tname);
		jr_at(&r, ing, line, m->data, end);
		return on_maps(ing, &r, m->type);
	case M_UNKNOWN:
		ing->st.is_unknown_types++;
		ing->seq++;
		return 1;
	default:
		if (text == NULL)
			return ing_fail(ing, "%s without data", m->tname);
		jr_at(&r, ing, line, text, end);
		return on_text(ing, &r, m->type);
	}
}

static int
line_blank(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!jr_is_ws(s[i]))
			return 0;
	return 1;
}

/* Drops scratch memory a huge line left behind. */
static void
scratch_trim(struct ingest *ing)
{
	struct buf	*b[] = { &ing->kbuf, &ing->sbuf, &ing->tbuf };
	size_t		 i;

	for (i = 0; i < 3; i++)
		if (b[i]->b_cap > ING_SCRATCH_KEEP)
			buf_free(b[i]);
		else
			buf_reset(b[i]);
}

int
ingest_line(struct ingest *ing, const char *line, size_t len, char *err,
    size_t errlen)
{
	struct jr	 r;
	struct msg	 m;
	int		 rv;

	if (line == NULL || line_blank(line, len))
		return 1;
	ing->st.is_lines++;
	ing->ebuf[0] = '\0';
	if ((rv = fast_line(ing, line, len)) != ING_SLOW)
		goto done;
	memset(&m, 0, sizeof(m));
	jr_at(&r, ing, line, line, line + len);
	r.depth = 0;
	rv = jr_skip(&r);
	if (rv == 0 && jr_peek(&r) != -1)
		rv = jr_fail(&r, "trailing bytes after the JSON value");
	if (rv == 0) {
		jr_at(&r, ing, line, line, line + len);
		r.depth = 0;
		rv = read_envelope(ing, &r, &m);
	}
	if (rv == 0)
		rv = dispatch(ing, line, line + len, &m);
done:
	if (rv == -1) {
		if (ing->ebuf[0] == '\0')
			ing_fail(ing, "invalid line");
		ing->st.is_bad_lines++;
		snprintf(ing->st.is_last_error, sizeof(ing->st.is_last_error),
		    "%s", ing->ebuf);
		ing->seq++;
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", ing->ebuf);
	}
	scratch_trim(ing);
	return rv;
}

/* --- life cycle and accessors -------------------------------------------- */

static int
var_init(struct ing_var *iv, const struct bts_var *bv)
{
	const char	*name = bv->v_name ? bv->v_name : "";

	memset(iv, 0, sizeof(*iv));
	iv->iv_name = jr_memdup(name, strlen(name));
	iv->iv_priv = calloc(1, sizeof(struct vpriv));
	if (iv->iv_name == NULL || iv->iv_priv == NULL)
		return -1;
	iv->iv_kind = bv->v_kind;
	iv->iv_vtype = bv->v_kind == BTS_OUTPUT ? BTS_V_STRING : bv->v_vtype;
	iv->iv_scalar = bv->v_kind == BTS_OUTPUT || (bv->v_nkeys == 0 &&
	    bv->v_kind != BTS_STATS && bv->v_kind != BTS_HIST &&
	    bv->v_kind != BTS_LHIST);
	return 0;
}

struct ingest *
ingest_new(const struct bts_info *info, const struct ingest_limits *lim)
{
	struct ingest	*ing;
	size_t		 i;

	if ((ing = calloc(1, sizeof(*ing))) == NULL)
		return NULL;
	ing->lim.il_max_instances = ING_DEF_MAX_INSTANCES;
	ing->lim.il_output_bytes = ING_DEF_OUTPUT_BYTES;
	ing->lim.il_output_lines = ING_DEF_OUTPUT_LINES;
	if (lim != NULL && lim->il_max_instances)
		ing->lim.il_max_instances = lim->il_max_instances;
	if (lim != NULL && lim->il_output_bytes)
		ing->lim.il_output_bytes = lim->il_output_bytes;
	if (lim != NULL && lim->il_output_lines)
		ing->lim.il_output_lines = lim->il_output_lines;
	ing->outvar = SIZE_MAX;
	ing->st.is_probes = -1;
	buf_init(&ing->kbuf, 0);
	buf_init(&ing->sbuf, 0);
	buf_init(&ing->tbuf, 0);
	buf_init(&ing->out.part, 0);
	ing->out.retain = info->i_meta.m_table_retain_lines;
	ing->out.max_lines = ing->lim.il_output_lines;
	ing->out.max_bytes = ing->lim.il_output_bytes;
	if (info->i_nvars > 0 &&
	    (ing->vars = calloc(info->i_nvars, sizeof(*ing->vars))) == NULL)
		goto fail;
	for (i = 0; i < info->i_nvars; i++) {
		ing->nvars++;
		if (var_init(&ing->vars[i], &info->i_vars[i]) == -1)
			goto fail;
		if (info->i_vars[i].v_kind == BTS_OUTPUT &&
		    ing->outvar == SIZE_MAX)
			ing->outvar = i;
	}
	return ing;
fail:
	ingest_free(ing);
	return NULL;
}

static void
vpriv_free(struct vpriv *vp)
{
	if (vp == NULL)
		return;
	idtab_free(&vp->vp_tab);
	free(vp->vp_prev);
	free(vp);
}

void
ingest_free(struct ingest *ing)
{
	size_t	 i;

	if (ing == NULL)
		return;
	for (i = 0; i < ing->nvars; i++) {
		var_clear(&ing->vars[i]);
		vpriv_free(ing->vars[i].iv_priv);
		free(ing->vars[i].iv_name);
	}
	stage_free(&ing->stage);
	free(ing->vars);
	out_clear(&ing->out);
	buf_free(&ing->kbuf);
	buf_free(&ing->sbuf);
	buf_free(&ing->tbuf);
	free(ing);
}

void
ingest_reset(struct ingest *ing)
{
	struct ing_var	*v;
	size_t		 i;

	for (i = 0; i < ing->nvars; i++) {
		v = &ing->vars[i];
		if (v->iv_n > 0 || (v->iv_kind == BTS_OUTPUT &&
		    (ing->out.n || ing->out.hdr || ing->out.part.b_len)))
			v->iv_seq++;
		var_clear(v);
		v->iv_dropped = 0;
	}
	out_clear(&ing->out);
	memset(&ing->st, 0, sizeof(ing->st));
	ing->st.is_probes = -1;
	ing->seq++;
}

uint64_t
ingest_seq(const struct ingest *ing)
{
	return ing->seq;
}

size_t
ingest_nvars(const struct ingest *ing)
{
	return ing->nvars;
}

struct ing_var *
ingest_var(struct ingest *ing, size_t i)
{
	return i < ing->nvars ? &ing->vars[i] : NULL;
}

/* name without '@'; linear: scripts have at most BTS_MAX_VARS */
struct ing_var *
ingest_var_by_name(struct ingest *ing, const char *name)
{
	size_t	 i;

	for (i = 0; i < ing->nvars; i++)
		if (strcmp(ing->vars[i].iv_name, name) == 0)
			return &ing->vars[i];
	return NULL;
}

const struct ingest_stats *
ingest_stats(const struct ingest *ing)
{
	return &ing->st;
}

int
ingest_output_text(const struct ingest *ing, struct buf *out)
{
	const struct oring	*o = &ing->out;
	size_t			 i;

	if (o->hdr != NULL)
		buf_append(out, o->hdr, o->hdrlen);
	for (i = 0; i < o->n; i++)
		buf_append(out, o->l[(o->head + i) % o->cap].s,
		    o->l[(o->head + i) % o->cap].len);
	if (o->part.b_len)
		buf_append(out, o->part.b_data, o->part.b_len);
	return out->b_failed ? -1 : 0;
}

/*
 * Gives name the id before data arrives. 0 when seeded (or already so),
 * -1 for an unknown or scalar variable, an id above INT32_MAX, or a name
 * or id already taken otherwise.
 */
int
ingest_seed_instance(struct ingest *ing, const char *var, const char *name,
    uint32_t id)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);
	struct idtab	*t;
	uint32_t	 k, kid, hash;
	size_t		 n;

	if (v == NULL || v->iv_scalar || id > ING_MAX_ID || name == NULL)
		return -1;
	t = &vpriv(v)->vp_tab;
	n = strlen(name);
	hash = idtab_hash(name, n);
	k = idtab_find(t, name, n, hash);
	kid = idtab_find_id(t, id);
	if (k != IDTAB_NONE || kid != IDTAB_NONE)
		return k == kid ? 0 : -1;
	return idtab_add(t, name, n, hash, id) == IDTAB_NONE ? -1 : 0;
}

size_t
ingest_var_known(const struct ing_var *v)
{
	return v->iv_priv ? vpriv(v)->vp_tab.it_n : 0;
}

void
ingest_var_instance_at(const struct ing_var *v, size_t k, const char **name,
    uint32_t *id)
{
	const struct idtab	*t = &vpriv(v)->vp_tab;

	*name = t->it_e[k].ie_name;
	*id = t->it_e[k].ie_id;
}

/* Every name -> id ever given, per variable, in the order given. */
void
ingest_foreach_instance(const struct ingest *ing, ingest_inst_cb cb,
    void *arg)
{
	const struct idtab	*t;
	size_t			 i, k;

	for (i = 0; i < ing->nvars; i++) {
		t = &vpriv(&ing->vars[i])->vp_tab;
		for (k = 0; k < t->it_n; k++)
			cb(ing->vars[i].iv_name, t->it_e[k].ie_name,
			    t->it_e[k].ie_id, arg);
	}
}
