/* SPDX-License-Identifier: MIT */
/*
 * ingest.h - turns bpftrace's "-f json" stdout, one line at a time, into
 * the current typed values of one script's variables: scalars, keyed maps,
 * hist/lhist buckets, avg/stats, and the bounded @output text ring.
 * Owned and driven by one thread (the supervisor's event loop); the daemon
 * copies what it needs into an immutable registry snapshot after a batch
 * of lines. Dependency-free apart from btscript.h and buf.h, so it is
 * unit-tested alone by replaying the real bpftrace 0.17 fixtures
 * (tests/unit/test_ingest*.c).
 *
 * JSON is read by a small pull reader in ingest.c instead of cJSON:
 * cJSON keeps numbers only as doubles (bpftrace prints exact 64-bit
 * integers), rejects nothing on duplicate keys, and cannot take the
 * \uffffffXX escapes 0.17 writes for non-ASCII bytes.
 */
#ifndef BT_INGEST_H
#define BT_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "bt_limits.h"
#include "btscript.h"
#include "jsonr.h"

struct buf;

#define ING_MAX_DEPTH		JR_MAX_DEPTH	/* JSON nesting accepted */
#define ING_DEF_MAX_INSTANCES	10000	/* per variable */
#define ING_DEF_OUTPUT_BYTES	(256 * 1024)
#define ING_DEF_OUTPUT_LINES	10000
#define ING_DEF_MAX_LINE	BT_MAX_LINE	/* --max-line-bytes' default */

/* a zero field (or a NULL pointer to ingest_new) means the default */
struct ingest_limits {
	size_t		 il_max_instances;	/* per variable; beyond: dropped */
	size_t		 il_output_bytes;	/* @output ring, bytes */
	size_t		 il_output_lines;	/* @output ring, lines */
	size_t		 il_max_line;		/* bytes of one line fed */
};

enum ing_vt { ING_NONE, ING_I64, ING_U64, ING_STR };

struct ing_val {
	enum ing_vt	 t;
	union {
		int64_t		 i;
		uint64_t	 u;
		char		*s;	/* owned by the variable */
	};
};

/*
 * One exported variable. Instances are the current keys (maps), buckets
 * (hist/lhist: "lo-hi", "-inf--1", "1000-inf"; keyed: "key:lo-hi"), stats
 * parts ("count", "average", "total"; keyed: "key:count", ...). Each name
 * gets an id the first time it is seen, never reused for another name,
 * and stable across ingest_reset() (ids can be seeded for persistence).
 * Instances are kept sorted: buckets by lower bound (per key), others by
 * name (strcmp). A map print replaces the whole variable (entries not in
 * it were deleted or cleared); a duplicate key within one print sums for
 * counts and keeps the last value otherwise.
 * The @output variable (kind BTS_OUTPUT) keeps iv_n 0: its text comes
 * from ingest_output_text(); its iv_seq moves when the text changes.
 */
struct ing_var {
	char		*iv_name;	/* without '@' ("root" for bare '@') */
	enum bts_kind	 iv_kind;
	enum bts_vtype	 iv_vtype;	/* the value type, from the script's
					   analysis or, where the analysis
					   cannot tell (iv_open), from the
					   first print; fixed from then on
					   (clients cache descriptors): a value
					   that does not fit is counted in
					   is_type_errors and dropped */
	int		 iv_open;	/* ING_OPEN_*: what a print may still
					   decide (kept by ingest_reset: a
					   restart keeps the type) */
	int		 iv_scalar;	/* 1: one value, no instance domain */
	size_t		 iv_n;		/* current instances (or 1/0 scalar) */
	uint32_t	*iv_ids;	/* [iv_n] instance ids */
	char		**iv_names;	/* [iv_n] instance names; they belong
					   to the id table (valid until
					   ingest_free): do not free */
	struct ing_val	*iv_vals;	/* [iv_n] */
	uint64_t	 iv_seq;	/* bumped at every change */
	uint64_t	 iv_iseq;	/* bumped when iv_ids/iv_names may have
					   changed (not for values alone) */
	size_t		 iv_dropped;	/* instances dropped at the limit
					   (a running count; zeroed by
					   ingest_reset) */
	void		*iv_priv;	/* ingest.c: name -> id table and the
					   last print's order */
};

struct ingest_stats {
	uint64_t	 is_lines;	/* non-blank lines read */
	uint64_t	 is_bad_lines;	/* lines that were not valid JSON or
					   had an unexpected shape */
	uint64_t	 is_unknown_types;
	uint64_t	 is_unknown_vars;	/* maps the analysis did not find */
	uint64_t	 is_lost_events;	/* sum of lost_events.data.events */
	uint64_t	 is_helper_errors;
	uint64_t	 is_type_errors;	/* values that did not fit their
						   variable's type (dropped) */
	int		 is_probes;		/* attached_probes; -1 unknown */
	char		 is_last_error[256];	/* last bad line's reason, or
						   runtime_error/helper_error */
};

#define ING_OPEN_NONE	0	/* the type is fixed */
#define ING_OPEN_ANY	2	/* nothing kept yet: any type */
#define ING_OPEN_SIGN	1	/* numbers in [0, INT64_MAX] kept (as INT):
				   a negative one fixes INT, one above
				   INT64_MAX UINT; never STRING (values of
				   a number type are published) */

/*
 * Asked before an open variable's print is converted: the type the print
 * proposes in *vt (final: fix it; else ING_OPEN_SIGN's INT guess). Sets
 * *vt to the type in force (a client may have fixed another one) and
 * returns 1 while the type may still change, 0 once fixed. k is the
 * variable's index.
 */
typedef int	(*ingest_type_fn)(void *arg, size_t k, enum bts_vtype *vt,
		    int final);

struct ingest;

/*
 * Who fixes open types (scripts.c: the variable's metric, so that a
 * type a client was given stays). Without one, every proposal is taken.
 */
void		 ingest_set_typer(struct ingest *ing, ingest_type_fn fn,
		    void *arg);

/* Takes a copy of what it needs from info; NULL on allocation failure. */
struct ingest	*ingest_new(const struct bts_info *info,
		    const struct ingest_limits *lim);
void		 ingest_free(struct ingest *ing);

/*
 * Feed one line (without its '\n'; need not be NUL-terminated). Returns
 * 0 when it was used, 1 when ignored (blank, or a type we skip), -1 when
 * invalid (counted in is_bad_lines; reason in err). Never aborts: every
 * byte sequence is safe to feed.
 */
int		 ingest_line(struct ingest *ing, const char *line, size_t len,
		    char *err, size_t errlen);

/*
 * The bpftrace that prints the lines, as "bpftrace --version" says it
 * ("v0.23.2"; NULL or "" unknown: read as 0.17). Decides how keys are
 * read: 0.18 to 0.23 escape string map keys twice (quote\\\"inside),
 * which is undone. Set before a run's first line (ingest_reset keeps it).
 */
void		 ingest_set_version(struct ingest *ing, const char *version);

/* Forget all values, output and stats (a restart); keep instance ids. */
void		 ingest_reset(struct ingest *ing);

/* Changes whenever anything visible changed (values, output, stats). */
uint64_t	 ingest_seq(const struct ingest *ing);

size_t		 ingest_nvars(const struct ingest *ing);
struct ing_var	*ingest_var(struct ingest *ing, size_t i);
struct ing_var	*ingest_var_by_name(struct ingest *ing, const char *name);
const struct ingest_stats *ingest_stats(const struct ingest *ing);

/*
 * The @output text: the ring's lines joined (each keeps its '\n'). With
 * table-retain-lines N: the first line ever seen (the CSV header) plus
 * the last N lines. Appends to out; returns 0, or -1 when out is full.
 */
int		 ingest_output_text(const struct ingest *ing, struct buf *out);
size_t		 ingest_output_max(const struct ingest *ing);

/*
 * Persistence hooks: seed a known name -> id before data arrives; list.
 * A variable's names are kept in the order they got their ids, so
 * ingest_var_known()/ingest_var_instance_at() let a caller save only the
 * ones added since it last looked.
 */
size_t		 ingest_var_known(const struct ing_var *v);
void		 ingest_var_instance_at(const struct ing_var *v, size_t k,
		    const char **name, uint32_t *id);
int		 ingest_seed_instance(struct ingest *ing, const char *var,
		    const char *name, uint32_t id);
typedef void	 (*ingest_inst_cb)(const char *var, const char *name,
		    uint32_t id, void *arg);
void		 ingest_foreach_instance(const struct ingest *ing,
		    ingest_inst_cb cb, void *arg);

#endif
