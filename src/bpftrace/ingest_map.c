/* SPDX-License-Identifier: MIT */
/*
 * ingest_map.c - one print of a map, hist or stats (see ingest_int.h):
 * read by the generic JSON reader (or by ingest_fast.c) into a stage
 * that is reused from print to print, then committed to the variable.
 * A print of the current names only updates values in place; otherwise
 * the new names are sorted and merged into the current order, and get
 * ids in that order. Runs on the ingester's thread; no globals.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_int.h"

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
char *
map_raw_text(const struct raw *v)
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

/*
 * Converts v for a variable of type vt: 0 done, 1 when it does not fit
 * (the type never changes: the caller counts it), -1 on no memory.
 * Integers are exact: an INT variable takes int64 (and booleans as 0/1),
 * a UINT one uint64; 0.17 prints u64 values as int64, so a negative one
 * for a UINT variable is its two's complement.
 */
static int
raw_to_val(const struct raw *v, enum bts_vtype vt, struct ing_val *out)
{
	struct raw	 n;

	memset(out, 0, sizeof(*out));
	out->t = ING_NONE;
	if (v->k == R_NULL)
		return 0;
	if (vt == BTS_V_STRING) {
		if ((out->s = map_raw_text(v)) == NULL)
			return -1;
		out->t = ING_STR;
		return 0;
	}
	if (v->k == R_BOOL)
		n = *v, n.k = R_I64;
	else if (jr_raw_int(v, &n) == -1)
		return 1;
	if (vt == BTS_V_UINT) {
		out->t = ING_U64;
		out->u = n.k == R_U64 ? n.u : (uint64_t)n.i;
		return 0;
	}
	if (n.k == R_U64)
		return 1;
	out->t = ING_I64;
	out->i = n.i;
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

/* --- the stage ----------------------------------------------------------- */

/* Starts a print of v: a new generation of marks in v's id table. */
void
map_begin(struct stage *st, struct ing_var *v, int hist)
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
	st->st_clear = 0;
	st->st_nadd = st->st_ncur = 0;
}

/* Frees what the entries own; keeps the arrays and one chunk. */
void
map_reset(struct stage *st)
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

void
map_free(struct stage *st)
{
	map_reset(st);
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
int
map_put(struct ingest *ing, struct ing_var *v, const char *name, size_t n,
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

/* A hist bucket entry: map_put plus what buckets sort by. */
int
map_put_bucket(struct ingest *ing, struct ing_var *v, const char *name,
    size_t n, const struct raw *count, size_t klen, int lominf,
    const struct raw *lo)
{
	struct shist	*h;

	if (map_put(ing, v, name, n, count) == -1)
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
char *
map_strdup(struct ingest *ing, const char *s, size_t n)
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
char *
map_bucket_name(struct ingest *ing, const char *key, size_t klen, int keyed,
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
	return map_strdup(ing, b->b_data, b->b_len);
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

/* Why entry e of v did not fit, for is_last_error. */
static void
misfit_note(struct ingest *ing, const struct ing_var *v, const struct sent *e)
{
	struct raw	 raw;
	char		*text;

	sent_raw(e, &raw);
	text = map_raw_text(&raw);
	snprintf(ing->st.is_last_error, sizeof(ing->st.is_last_error),
	    "@%s%s%.*s%s: value %.64s does not fit its %s type (dropped)",
	    v->iv_name, e->se_name ? "[" : "", e->se_name ? (int)e->se_len : 0,
	    e->se_name ? e->se_name : "", e->se_name ? "]" : "",
	    text ? text : "?",
	    v->iv_vtype == BTS_V_UINT ? "unsigned 64-bit" : "signed 64-bit");
	free(text);
}

/*
 * What the print in st says about an open variable's type: a value that
 * is no integer (open to any type) makes it STRING; one above INT64_MAX
 * UINT (0.23+ print u64 so); a negative one INT. *final: the print
 * decided; else every value is in [0, INT64_MAX] and INT is a guess.
 */
static enum bts_vtype
stage_vtype(const struct ing_var *v, const struct stage *st, int *final)
{
	struct raw	 raw, n;
	size_t		 i;
	int		 big = 0, neg = 0;

	for (i = 0; i < st->st_n; i++) {
		sent_raw(&st->st_e[i], &raw);
		if (raw.k == R_NULL)
			continue;
		if (raw.k == R_BOOL)
			n = raw, n.k = R_I64;
		else if (jr_raw_int(&raw, &n) == -1) {
			if (v->iv_open == ING_OPEN_ANY) {
				*final = 1;
				return BTS_V_STRING;
			}
			continue;	/* a misfit, counted by the caller */
		}
		if (n.k == R_U64 && n.u > (uint64_t)INT64_MAX)
			big = 1;
		else if (n.k == R_I64 && n.i < 0)
			neg = 1;
	}
	*final = big || neg;
	return big ? BTS_V_UINT : BTS_V_INT;
}

/*
 * An open variable's print proposes a type (stage_vtype); the typer says
 * which one is in force: the proposal unless a client was given the
 * metric's descriptor first.
 */
static void
stage_decide(struct ingest *ing, struct ing_var *v, const struct stage *st)
{
	enum bts_vtype	 vt;
	int		 final, open;

	if (st->st_n == 0)
		return;			/* an empty print says nothing */
	vt = stage_vtype(v, st, &final);
	open = ing->typer ? ing->typer(ing->typer_arg, (size_t)(v -
	    ing->vars), &vt, final) : !final;
	v->iv_vtype = vt;
	v->iv_open = open ? ING_OPEN_SIGN : ING_OPEN_NONE;
}

/*
 * Converts every value to v's type, which never changes: the entries
 * whose value does not fit are counted in is_type_errors and left out of
 * the print. -1 on no memory.
 */
static int
stage_convert(struct ingest *ing, struct ing_var *v, struct stage *st)
{
	struct ing_val	 val;
	struct raw	 raw;
	struct sent	*e;
	size_t		 i, m = 0;
	enum ing_vt	 it;
	int		 rv;

	if (v->iv_open != ING_OPEN_NONE)
		stage_decide(ing, v, st);
	it = v->iv_vtype == BTS_V_UINT ? ING_U64 : ING_I64;
	for (i = 0; i < st->st_n; i++) {
		e = &st->st_e[i];
		/* an integer for an integer variable: the same 64 bits */
		if (v->iv_vtype != BTS_V_STRING && (e->se_rk == R_I64 ||
		    (e->se_rk == R_U64 && it == ING_U64))) {
			e->se_vt = (uint8_t)it;
			goto keep;
		}
		sent_raw(e, &raw);
		if ((rv = raw_to_val(&raw, v->iv_vtype, &val)) == -1)
			return ing_fail(ing, "out of memory");
		if (rv == 1) {
			ing->st.is_type_errors++;
			misfit_note(ing, v, e);
			ing->seq++;
			continue;
		}
		sent_set(e, val);
		if (val.t == ING_STR)
			st->st_strs = 1;
keep:
		if (m != i) {
			st->st_e[m] = st->st_e[i];
			st->st_e[i].se_vt = ING_NONE;	/* moved */
			if (st->st_hist)
				st->st_h[m] = st->st_h[i];
		}
		m++;
	}
	st->st_n = m;
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

void
map_var_clear(struct ing_var *v)
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
	map_var_clear(v);
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

	if (st->st_n == 0 && st->st_clear && v->iv_n > 0) {
		map_var_clear(v);	/* 0.24+: a cleared avg prints {} */
		v->iv_seq++;
		ing->seq++;
	}
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
int
map_commit(struct ingest *ing, struct ing_var *v)
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
	if (raw->s != NULL && (raw->s = map_strdup(ing, raw->s,
	    ing->sbuf.b_len)) == NULL)
		return -1;
	return 0;
}

/*
 * The member name just read (in kbuf), copied to the stage's chunks. A
 * bpftrace that escapes keys twice had its second escaping undone (when
 * that fails the key is kept as read).
 */
static char *
key_copy(struct ingest *ing, size_t *np)
{
	struct buf	*t = &ing->tbuf;

	if (ing->keys_esc2 && ing->kbuf.b_len > 0 &&
	    memchr(ing->kbuf.b_data, '\\', ing->kbuf.b_len) != NULL) {
		buf_reset(t);
		if (jr_unescape(ing->kbuf.b_data, ing->kbuf.b_len, t) == 0) {
			*np = t->b_len;
			return map_strdup(ing, buf_cstr(t), t->b_len);
		}
	}
	*np = ing->kbuf.b_len;
	return map_strdup(ing, buf_cstr(&ing->kbuf), ing->kbuf.b_len);
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
		return map_put(ing, v, NULL, 0, &raw);
	}
	if (jr_peek(r) != '{')
		return ing_fail(ing, "@%s: keyed map without keys",
		    v->iv_name);
	if (jr_open(r) == -1)
		return -1;
	while ((rv = jr_next(r, '}', &idx, &ing->kbuf)) == 1) {
		if ((name = key_copy(ing, &n)) == NULL ||
		    read_value(ing, r, &raw) == -1 ||
		    map_put(ing, v, name, n, &raw) == -1)
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
		if ((name = map_bucket_name(ing, key, klen, keyed,
		    haslo ? &lo : NULL, hashi ? &hi : NULL, &n)) == NULL ||
		    map_put_bucket(ing, v, name, n, &count, keyed ? klen : 0,
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
char *
map_joined_name(struct ingest *ing, const char *prefix, size_t plen,
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
	return map_strdup(ing, b->b_data, b->b_len);
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
		name = prefix ? map_joined_name(ing, prefix, plen,
		    buf_cstr(&ing->kbuf), ing->kbuf.b_len, &n) :
		    key_copy(ing, &n);
		if (name == NULL || read_value(ing, r, &raw) == -1 ||
		    map_put(ing, v, name, n, &raw) == -1)
			return -1;
	}
	return rv;
}

/*
 * avg: a number (or key -> number); stats(): {count, average, total}.
 * 0.24+ print a cleared avg as {}: the scalar has no value then.
 */
static int
fill_stats(struct ingest *ing, struct jr *r, struct ing_var *v)
{
	struct jr	 probe;
	size_t		 idx = 0;

	if (v->iv_scalar && jr_peek(r) != '{')
		return fill_map(ing, r, v);
	probe = *r;
	if (v->iv_scalar && jr_open(&probe) == 0 &&
	    jr_next(&probe, '}', &idx, NULL) == 0) {
		*r = probe;
		ing->stage.st_clear = 1;
		return 0;
	}
	if (v->iv_scalar || jr_peek(r) != '{')
		return ing_fail(ing, "@%s: stats value does not match the "
		    "variable", v->iv_name);
	return fill_stats_obj(ing, r, v, NULL, 0);
}

/* The value of one "@name" member of a map, hist or stats print. */
int
map_fill(struct ingest *ing, struct jr *r, struct ing_var *v, enum msgtype t)
{
	return t == M_HIST ? fill_hist(ing, r, v) :
	    t == M_STATS ? fill_stats(ing, r, v) : fill_map(ing, r, v);
}
