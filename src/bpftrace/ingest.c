/* SPDX-License-Identifier: MIT */
/*
 * ingest.c - turns bpftrace's "-f json" stdout, one line at a time, into
 * typed variable values and the bounded @output text ring (see ingest.h).
 * Runs on one thread (the supervisor's event loop); takes no locks and
 * keeps no global mutable state: everything lives in struct ingest.
 *
 * A line of the shape bpftrace prints for maps (plain ASCII names,
 * integer values) is read in one pass, in place (ingest_fast.c). Any
 * other line is read twice by a small JSON pull reader: a first pass
 * validates all of it (syntax, depth, number ranges, trailing bytes), a
 * second pass reads the content. Either way a malformed line changes
 * nothing, and both stage a print the same way (ingest_map.c): entries
 * in one reused stage, names pointing into the line, committed at the
 * end. A print of the same names as the last one only updates values,
 * so instances are sorted only when the set of names changed.
 *
 * Decisions the callers may rely on:
 * - Strings: \u0000, lone surrogates and invalid UTF-8 become U+FFFD, so
 *   every decoded string is valid UTF-8 without NUL bytes (names and
 *   values are C strings). 0.17's \uffffffXX (XX 80..ff) is the raw byte
 *   0xXX, so the original UTF-8 is rebuilt.
 * - Integers are exact int64/uint64; an integer outside both ranges, or a
 *   decimal that overflows a double, makes the line invalid.
 * - A variable's type is the script analysis's and never changes (clients
 *   cache descriptors). A value that does not fit it (text, tuple, struct
 *   or decimal for an INT/UINT variable, a u64 above 2^63 for an INT one)
 *   is dropped and counted in is_type_errors. Integers printed as strings
 *   (0.24+ above 2^53) are integers; true/false are 1/0. A JSON null is
 *   stored as ING_NONE.
 * - Keys: ingest_set_version() says whether the bpftrace escapes string
 *   map keys twice (0.18-0.23); then the second escaping is undone.
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
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_int.h"
#include "util.h"

/* --- @output ring -------------------------------------------------------- */

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

int
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
		map_begin(&ing->stage, v, t == M_HIST);
		rv = map_fill(ing, r, v, t);
		if (rv != -1)
			rv = map_commit(ing, v);
		map_reset(&ing->stage);
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
	s = raw.k == R_NULL ? jr_memdup("", 0) : map_raw_text(&raw);
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

/*
 * Measured: 0.17 escapes keys once, 0.23.2 twice, 0.27 once (0.24
 * rewrote the JSON output). 0.18-0.22 are taken as 0.23 (the same
 * printer); a key that does not decode a second time is kept as read.
 */
void
ingest_set_version(struct ingest *ing, const char *version)
{
	static const unsigned long long max[] = { UINT_MAX, UINT_MAX };
	unsigned long long	 v[2];
	const char		*rest, *errstr;

	if (version != NULL && *version == 'v')
		version++;
	if (version == NULL || strtonum_dotted(version, 2, max, v, &rest,
	    &errstr) == -1)
		v[0] = 0, v[1] = 17;
	ing->keys_esc2 = v[0] == 0 && v[1] >= 18 && v[1] < 24;
}

void
ingest_set_typer(struct ingest *ing, ingest_type_fn fn, void *arg)
{
	ing->typer = fn;
	ing->typer_arg = arg;
}

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
	iv->iv_open = bv->v_kind == BTS_ASSIGN && bv->v_vopen ?
	    ING_OPEN_ANY : ING_OPEN_NONE;
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
	ing->lim.il_max_line = ING_DEF_MAX_LINE;
	if (lim != NULL && lim->il_max_instances)
		ing->lim.il_max_instances = lim->il_max_instances;
	if (lim != NULL && lim->il_output_bytes)
		ing->lim.il_output_bytes = lim->il_output_bytes;
	if (lim != NULL && lim->il_output_lines)
		ing->lim.il_output_lines = lim->il_output_lines;
	if (lim != NULL && lim->il_max_line)
		ing->lim.il_max_line = lim->il_max_line;
	ing->outvar = SIZE_MAX;
	ing->st.is_probes = -1;
	buf_init(&ing->kbuf, ING_SCRATCH_MAX(ing->lim.il_max_line));
	buf_init(&ing->sbuf, ING_SCRATCH_MAX(ing->lim.il_max_line));
	buf_init(&ing->tbuf, ING_SCRATCH_MAX(ing->lim.il_max_line));
	/* the unfinished @output line stays within the ring's bytes */
	buf_init(&ing->out.part, ing->lim.il_output_bytes);
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
		map_var_clear(&ing->vars[i]);
		vpriv_free(ing->vars[i].iv_priv);
		free(ing->vars[i].iv_name);
	}
	map_free(&ing->stage);
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
		map_var_clear(v);
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

/* The most ingest_output_text writes: the ring's bytes (il_output_bytes). */
size_t
ingest_output_max(const struct ingest *ing)
{
	return ing->lim.il_output_bytes;
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

