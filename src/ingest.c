/* SPDX-License-Identifier: MIT */
/*
 * ingest.c - turns bpftrace's "-f json" stdout, one line at a time, into
 * typed variable values and the bounded @output text ring (see ingest.h).
 * Runs on one thread (the supervisor's event loop); takes no locks and
 * keeps no global mutable state: everything lives in struct ingest.
 *
 * Each line is read twice by a small JSON pull reader: a first pass
 * validates all of it (syntax, depth, number ranges, trailing bytes), a
 * second pass reads the content. So a malformed line changes nothing.
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

/* --- instance ids ------------------------------------------------------ */

struct inst {
	char		*name;
	uint32_t	 id;
};

/* name -> id, never shrinks; two open-addressing indexes into e[] */
struct idtab {
	struct inst	*e;
	size_t		 n, cap;
	size_t		*byname;	/* entry index + 1; 0 is empty */
	size_t		*byid;
	size_t		 nslots;	/* power of two */
	uint64_t	 next;		/* next id to give out */
};

static size_t
hash_name(const char *s)
{
	uint64_t	 h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h ^ h >> 29);
}

static size_t
hash_id(uint32_t id)
{
	uint64_t	 h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h ^ h >> 32);
}

static size_t
idtab_find(const struct idtab *t, const char *name)
{
	size_t	 i, k;

	if (t->nslots == 0)
		return SIZE_MAX;
	for (i = hash_name(name) & (t->nslots - 1); (k = t->byname[i]) != 0;
	    i = (i + 1) & (t->nslots - 1))
		if (strcmp(t->e[k - 1].name, name) == 0)
			return k - 1;
	return SIZE_MAX;
}

static size_t
idtab_find_id(const struct idtab *t, uint32_t id)
{
	size_t	 i, k;

	if (t->nslots == 0)
		return SIZE_MAX;
	for (i = hash_id(id) & (t->nslots - 1); (k = t->byid[i]) != 0;
	    i = (i + 1) & (t->nslots - 1))
		if (t->e[k - 1].id == id)
			return k - 1;
	return SIZE_MAX;
}

static void
idtab_index(struct idtab *t, size_t k)
{
	size_t	 m = t->nslots - 1, i;

	for (i = hash_name(t->e[k].name) & m; t->byname[i]; i = (i + 1) & m)
		;
	t->byname[i] = k + 1;
	for (i = hash_id(t->e[k].id) & m; t->byid[i]; i = (i + 1) & m)
		;
	t->byid[i] = k + 1;
}

/* Room for one more entry, at most 3/4 of the slots used. */
static int
idtab_grow(struct idtab *t)
{
	struct inst	*e;
	size_t		*a, *b, ns, k;

	if (t->n == t->cap) {
		k = t->cap ? t->cap * 2 : 16;
		if ((e = realloc(t->e, k * sizeof(*e))) == NULL)
			return -1;
		t->e = e;
		t->cap = k;
	}
	if ((t->n + 1) * 4 <= t->nslots * 3)
		return 0;
	ns = t->nslots ? t->nslots * 2 : 32;
	a = calloc(ns, sizeof(*a));
	b = calloc(ns, sizeof(*b));
	if (a == NULL || b == NULL) {
		free(a);
		free(b);
		return -1;
	}
	free(t->byname);
	free(t->byid);
	t->byname = a;
	t->byid = b;
	t->nslots = ns;
	for (k = 0; k < t->n; k++)
		idtab_index(t, k);
	return 0;
}

/* Takes ownership of name on success (0); -1 on no memory. */
static int
idtab_add(struct idtab *t, char *name, uint32_t id)
{
	if (idtab_grow(t) == -1)
		return -1;
	t->e[t->n].name = name;
	t->e[t->n].id = id;
	idtab_index(t, t->n);
	if ((uint64_t)id + 1 > t->next)
		t->next = (uint64_t)id + 1;
	t->n++;
	return 0;
}

static void
idtab_free(struct idtab *t)
{
	size_t	 k;

	if (t == NULL)
		return;
	for (k = 0; k < t->n; k++)
		free(t->e[k].name);
	free(t->e);
	free(t->byname);
	free(t->byid);
	free(t);
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

struct ingest {
	struct ing_var		*vars;
	size_t			 nvars;
	size_t			 outvar;	/* SIZE_MAX: no @output */
	struct ingest_limits	 lim;
	struct ingest_stats	 st;
	uint64_t		 seq;
	struct oring		 out;
	struct buf		 kbuf, sbuf, tbuf;	/* scratch */
	char			 ebuf[256];	/* the current line's error */
};

/* one entry of a map print being built */
struct ent {
	char		*name;		/* owned until handed to the id table */
	size_t		 klen;		/* hist: length of the key part */
	int		 hist;
	int		 lominf;	/* hist: no lower bound */
	struct raw	 lo;		/* hist: lower bound (R_I64/R_U64) */
	size_t		 ord;		/* position in the message */
	struct raw	 raw;
	struct ing_val	 val;
};

struct stage {
	struct ent	*e;
	size_t		 n, cap;
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

static void
stage_free(struct stage *st)
{
	size_t	 i;

	for (i = 0; i < st->n; i++) {
		free(st->e[i].name);
		jr_raw_free(&st->e[i].raw);
		val_free(&st->e[i].val);
	}
	free(st->e);
	memset(st, 0, sizeof(*st));
}

/* Takes ownership of name and raw->s, also on failure. */
static int
stage_add(struct stage *st, char *name, struct raw *raw)
{
	struct ent	*e;
	size_t		 ncap;

	if (st->n == st->cap) {
		ncap = st->cap ? st->cap * 2 : 16;
		if ((e = realloc(st->e, ncap * sizeof(*e))) == NULL) {
			free(name);
			jr_raw_free(raw);
			return -1;
		}
		st->e = e;
		st->cap = ncap;
	}
	e = &st->e[st->n];
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->raw = *raw;
	e->ord = st->n++;
	raw->s = NULL;
	return 0;
}

static int
bound_cmp(const struct ent *a, const struct ent *b)
{
	if (a->lominf || b->lominf)
		return b->lominf - a->lominf;
	if (a->lo.k == R_U64 || b->lo.k == R_U64) {
		if (a->lo.k != b->lo.k)
			return a->lo.k == R_U64 ? 1 : -1;
		return (a->lo.u > b->lo.u) - (a->lo.u < b->lo.u);
	}
	return (a->lo.i > b->lo.i) - (a->lo.i < b->lo.i);
}

/* hist buckets: by key, then lower bound; others by name; then order */
static int
ent_cmp(const void *pa, const void *pb)
{
	const struct ent	*a = pa, *b = pb;
	size_t			 n = a->klen < b->klen ? a->klen : b->klen;
	int			 c;

	if (a->hist && b->hist) {
		if ((c = memcmp(a->name, b->name, n)) == 0)
			c = (a->klen > b->klen) - (a->klen < b->klen);
		if (c == 0)
			c = bound_cmp(a, b);
		if (c != 0)
			return c;
	}
	if ((c = strcmp(a->name, b->name)) != 0)
		return c;
	return (a->ord > b->ord) - (a->ord < b->ord);
}

static int
kind_sums(enum bts_kind k)
{
	return k == BTS_COUNT || k == BTS_SUM || k == BTS_HIST ||
	    k == BTS_LHIST;
}

/* b has the same name as a and came later: fold it into a. */
static void
ent_merge(struct ent *a, struct ent *b, enum bts_kind kind)
{
	if (kind_sums(kind) && a->val.t == b->val.t && a->val.t == ING_U64)
		a->val.u += b->val.u;
	else if (kind_sums(kind) && a->val.t == b->val.t &&
	    a->val.t == ING_I64)
		a->val.i = (int64_t)((uint64_t)a->val.i + (uint64_t)b->val.i);
	else {
		val_free(&a->val);
		a->val = b->val;
		b->val.t = ING_NONE;
		b->val.s = NULL;
	}
	free(b->name);
	b->name = NULL;
	jr_raw_free(&b->raw);
	val_free(&b->val);
}

/* Retypes v when a value cannot be an integer; converts all values. */
static int
stage_convert(struct ingest *ing, struct ing_var *v, struct stage *st)
{
	size_t	 i;

	for (i = 0; i < st->n && v->iv_vtype != BTS_V_STRING; i++)
		if (jr_raw_needs_string(&st->e[i].raw)) {
			v->iv_vtype = BTS_V_STRING;
			v->iv_retyped = 1;
		}
	for (i = 0; i < st->n; i++) {
		if (raw_to_val(&st->e[i].raw, v->iv_vtype, &st->e[i].val))
			return ing_fail(ing, "out of memory");
		jr_raw_free(&st->e[i].raw);
	}
	return 0;
}

/* Sorts and folds each duplicate name into one entry (ent_merge). */
static void
stage_fold(struct stage *st, enum bts_kind kind)
{
	struct ent	*e = st->e;
	size_t		 i, m = 0;

	if (st->n == 0)
		return;
	qsort(e, st->n, sizeof(*e), ent_cmp);
	for (i = 0; i < st->n; i++) {
		if (m > 0 && strcmp(e[m - 1].name, e[i].name) == 0) {
			ent_merge(&e[m - 1], &e[i], kind);
			continue;
		}
		if (m != i) {
			e[m] = e[i];
			memset(&e[i], 0, sizeof(e[i]));
		}
		m++;
	}
	st->n = m;
}

/*
 * Moves the values of st into ids/names/vals (names point into the id
 * table), giving new names an id; names over the limit are dropped.
 * *np is how many were kept. -1 on no memory.
 */
static int
stage_ids(struct ingest *ing, struct ing_var *v, struct stage *st,
    uint32_t *ids, char **names, struct ing_val *vals, size_t *np)
{
	struct idtab	*t = v->iv_priv;
	struct ent	*e;
	size_t		 i, m = 0, k;

	stage_fold(st, v->iv_kind);
	for (i = 0; i < st->n; i++) {
		e = &st->e[i];
		if ((k = idtab_find(t, e->name)) == SIZE_MAX) {
			if (t->n >= ing->lim.il_max_instances ||
			    t->next > ING_MAX_ID) {
				v->iv_dropped++;
				continue;
			}
			if (idtab_add(t, e->name, (uint32_t)t->next) == -1)
				return ing_fail(ing, "out of memory");
			e->name = NULL;
			k = t->n - 1;
		}
		ids[m] = t->e[k].id;
		names[m] = t->e[k].name;
		vals[m++] = e->val;
		e->val.t = ING_NONE;
		e->val.s = NULL;
	}
	*np = m;
	return 0;
}

static int
var_same(const struct ing_var *v, size_t n, const uint32_t *ids,
    const struct ing_val *vals)
{
	size_t	 i;

	if (v->iv_n != n)
		return 0;
	for (i = 0; i < n; i++)
		if ((ids && v->iv_ids[i] != ids[i]) ||
		    !val_equal(&v->iv_vals[i], &vals[i]))
			return 0;
	return 1;
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
	v->iv_vals = NULL;
	v->iv_ids = NULL;
	v->iv_names = NULL;
	v->iv_n = 0;
}

/* Replaces v's values by what st holds (a full print of the map). */
static int
var_commit(struct ingest *ing, struct ing_var *v, struct stage *st)
{
	struct ing_val	*vals = NULL;
	uint32_t	*ids = NULL;
	char		**names = NULL;
	size_t		 i, n = st->n ? st->n : 1;
	int		 ret = -1;

	if (stage_convert(ing, v, st) == -1)
		goto fail;
	vals = calloc(n, sizeof(*vals));
	if (!v->iv_scalar) {
		ids = calloc(n, sizeof(*ids));
		names = calloc(n, sizeof(*names));
	}
	if (vals == NULL || (!v->iv_scalar && (ids == NULL || names == NULL))) {
		ing_fail(ing, "out of memory");
		goto fail;
	}
	if (v->iv_scalar) {
		vals[0] = st->e[0].val;
		st->e[0].val.t = ING_NONE;
		n = 1;
	} else if (stage_ids(ing, v, st, ids, names, vals, &n) == -1)
		goto fail;
	if (var_same(v, n, ids, vals)) {
		for (i = 0; i < n; i++)
			val_free(&vals[i]);
		ret = 0;
		goto fail;
	}
	var_clear(v);
	v->iv_vals = vals;
	v->iv_ids = ids;
	v->iv_names = names;
	v->iv_n = n;
	v->iv_seq++;
	ing->seq++;
	return 0;
fail:
	free(vals);
	free(ids);
	free(names);
	return ret;
}

/* The value of a "@name" member: a keyed map, or one scalar value. */
static int
fill_map(struct ingest *ing, struct jr *r, struct ing_var *v,
    struct stage *st)
{
	struct raw	 raw;
	size_t		 idx = 0;
	char		*name;
	int		 rv;

	if (v->iv_scalar) {
		if (jr_raw(r, &raw, &ing->sbuf, &ing->tbuf) == -1)
			return -1;
		return stage_add(st, NULL, &raw) == -1 ?
		    ing_fail(ing, "out of memory") : 0;
	}
	if (jr_peek(r) != '{')
		return ing_fail(ing, "@%s: keyed map without keys",
		    v->iv_name);
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		if ((name = jr_memdup(buf_cstr(&ing->kbuf),
		    ing->kbuf.b_len)) == NULL)
			return ing_fail(ing, "out of memory");
		if (jr_raw(r, &raw, &ing->sbuf, &ing->tbuf) == -1) {
			free(name);
			return -1;
		}
		if (stage_add(st, name, &raw) == -1)
			return ing_fail(ing, "out of memory");
	}
	return rv;
}

/* hist bucket {"min"?, "max"?, "count"}: count in raw, bounds as given */
static int
read_bucket(struct ingest *ing, struct jr *r, struct ent *b, int *hasmax,
    struct raw *hi)
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
		if (jr_raw(r, &tmp, &ing->sbuf, &ing->tbuf) == -1)
			return -1;
		rv = jr_raw_int(&tmp, which == 1 ? &b->lo : which == 2 ? hi :
		    &b->raw);
		jr_raw_free(&tmp);
		if (rv == -1)
			return ing_fail(ing, "hist bucket %s is not an integer",
			    which == 1 ? "min" : which == 2 ? "max" : "count");
		if (which == 1)
			b->lominf = 0;
		else if (which == 2)
			*hasmax = 1;
		else
			hascount = 1;
	}
	if (rv == 0 && !hascount)
		return ing_fail(ing, "hist bucket without count");
	return rv;
}

static void
put_num(struct buf *b, const struct raw *n)
{
	if (n->k == R_U64)
		buf_printf(b, "%" PRIu64, n->u);
	else
		buf_printf(b, "%" PRId64, n->i);
}

/* Buckets of one hist: instances "key:lo-hi" (or "lo-hi" unkeyed). */
static int
fill_buckets(struct ingest *ing, struct jr *r, struct stage *st,
    const char *key, size_t klen, int keyed)
{
	struct ent	 b;
	struct raw	 hi;
	struct buf	 nb;
	size_t		 idx = 0;
	char		*name;
	int		 rv, hasmax;

	if (jr_peek(r) != '[')
		return ing_fail(ing, "hist value is not an array");
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, ']', &idx, NULL)) == 1) {
		memset(&b, 0, sizeof(b));
		memset(&hi, 0, sizeof(hi));
		b.lominf = 1;
		hasmax = 0;
		if (read_bucket(ing, r, &b, &hasmax, &hi) == -1)
			return -1;
		buf_init(&nb, 0);
		if (keyed) {
			buf_append(&nb, key, klen);
			buf_putc(&nb, ':');
		}
		if (b.lominf)
			buf_puts(&nb, "-inf");
		else
			put_num(&nb, &b.lo);
		buf_putc(&nb, '-');
		if (hasmax)
			put_num(&nb, &hi);
		else
			buf_puts(&nb, "inf");
		name = nb.b_failed ? NULL : buf_take(&nb, NULL);
		buf_free(&nb);
		if (name == NULL || stage_add(st, name, &b.raw) == -1)
			return ing_fail(ing, "out of memory");
		st->e[st->n - 1].hist = 1;
		st->e[st->n - 1].klen = keyed ? klen : 0;
		st->e[st->n - 1].lominf = b.lominf;
		st->e[st->n - 1].lo = b.lo;
	}
	return rv;
}

/* A hist: an array of buckets, or an object key -> array of buckets. */
static int
fill_hist(struct ingest *ing, struct jr *r, struct ing_var *v,
    struct stage *st)
{
	size_t	 idx = 0;
	char	*key;
	int	 rv, c = jr_peek(r);

	/* buckets are instances: a scalar has no room for them */
	if (v->iv_scalar)
		return ing_fail(ing, "@%s: hist value does not match the "
		    "variable", v->iv_name);
	if (c == '[')
		return fill_buckets(ing, r, st, "", 0, 0);
	if (c != '{')
		return ing_fail(ing, "@%s: hist value is not an array or "
		    "object", v->iv_name);
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		if ((key = jr_memdup(buf_cstr(&ing->kbuf),
		    ing->kbuf.b_len)) == NULL)
			return ing_fail(ing, "out of memory");
		rv = fill_buckets(ing, r, st, key, strlen(key), 1);
		free(key);
		if (rv == -1)
			return -1;
	}
	return rv;
}

/* Members of a stats object: "name" -> number, or "name:sub" -> number. */
static int
fill_stats_obj(struct ingest *ing, struct jr *r, struct stage *st,
    const char *prefix)
{
	struct raw	 raw;
	size_t		 idx = 0, len;
	char		*name;
	int		 rv;

	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		if (prefix == NULL && jr_peek(r) == '{') {
			if ((name = jr_memdup(buf_cstr(&ing->kbuf),
			    ing->kbuf.b_len)) == NULL)
				return ing_fail(ing, "out of memory");
			rv = fill_stats_obj(ing, r, st, name);
			free(name);
			if (rv == -1)
				return -1;
			continue;
		}
		len = prefix ? strlen(prefix) + ing->kbuf.b_len + 2 :
		    ing->kbuf.b_len + 1;
		if ((name = malloc(len)) == NULL)
			return ing_fail(ing, "out of memory");
		snprintf(name, len, "%s%s%s", prefix ? prefix : "",
		    prefix ? ":" : "", buf_cstr(&ing->kbuf));
		if (jr_raw(r, &raw, &ing->sbuf, &ing->tbuf) == -1) {
			free(name);
			return -1;
		}
		if (stage_add(st, name, &raw) == -1)
			return ing_fail(ing, "out of memory");
	}
	return rv;
}

/* avg: a number (or key -> number); stats(): {count, average, total}. */
static int
fill_stats(struct ingest *ing, struct jr *r, struct ing_var *v,
    struct stage *st)
{
	if (v->iv_scalar && jr_peek(r) != '{')
		return fill_map(ing, r, v, st);
	if (v->iv_scalar || jr_peek(r) != '{')
		return ing_fail(ing, "@%s: stats value does not match the "
		    "variable", v->iv_name);
	return fill_stats_obj(ing, r, st, NULL);
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
	struct stage	 st;
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
		memset(&st, 0, sizeof(st));
		rv = t == M_HIST ? fill_hist(ing, r, v, &st) :
		    t == M_STATS ? fill_stats(ing, r, v, &st) :
		    fill_map(ing, r, v, &st);
		if (rv != -1)
			rv = var_commit(ing, v, &st);
		stage_free(&st);
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
	iv->iv_priv = calloc(1, sizeof(struct idtab));
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

void
ingest_free(struct ingest *ing)
{
	size_t	 i;

	if (ing == NULL)
		return;
	for (i = 0; i < ing->nvars; i++) {
		var_clear(&ing->vars[i]);
		idtab_free(ing->vars[i].iv_priv);
		free(ing->vars[i].iv_name);
	}
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
	size_t		 k, kid;
	char		*s;

	if (v == NULL || v->iv_scalar || id > ING_MAX_ID || name == NULL)
		return -1;
	t = v->iv_priv;
	k = idtab_find(t, name);
	kid = idtab_find_id(t, id);
	if (k != SIZE_MAX || kid != SIZE_MAX)
		return k == kid ? 0 : -1;
	if ((s = jr_memdup(name, strlen(name))) == NULL)
		return -1;
	if (idtab_add(t, s, id) == -1) {
		free(s);
		return -1;
	}
	return 0;
}

size_t
ingest_var_known(const struct ing_var *v)
{
	const struct idtab	*t = v->iv_priv;

	return t ? t->n : 0;
}

void
ingest_var_instance_at(const struct ing_var *v, size_t k, const char **name,
    uint32_t *id)
{
	const struct idtab	*t = v->iv_priv;

	*name = t->e[k].name;
	*id = t->e[k].id;
}

/* Every name -> id ever given, per variable, in the order given. */
void
ingest_foreach_instance(const struct ingest *ing, ingest_inst_cb cb,
    void *arg)
{
	const struct idtab	*t;
	size_t			 i, k;

	for (i = 0; i < ing->nvars; i++) {
		t = ing->vars[i].iv_priv;
		for (k = 0; k < t->n; k++)
			cb(ing->vars[i].iv_name, t->e[k].name, t->e[k].id,
			    arg);
	}
}
