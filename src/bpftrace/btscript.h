/* SPDX-License-Identifier: MIT */
/*
 * btscript.h - bpftrace source analysis and rewriting: a real tokenizer
 * (comments, strings, operators) that finds the script's metadata
 * comments and the @variables it defines, and the rewriter that appends
 * the periodic print block. Pure functions on text; no daemon state, so
 * it is unit-tested alone (tests/unit/test_btscript*.c).
 */
#ifndef BT_BTSCRIPT_H
#define BT_BTSCRIPT_H

#include <stddef.h>

#define BTS_MAX_VARS		256	/* variables per script */
#define BTS_MAX_INCLUDE		256	/* names in // include: */
#define BTS_NAME_MAX		64	/* // name: length */
/*
 * What bts_rewrite(_usr1) adds to the code besides the variables' names
 * (which the code holds, so its cap is twice the code and this): a probe
 * and a print(@) of 10 bytes a variable.
 */
#define BTS_REWRITE_ROOM	(64 + BTS_MAX_VARS * 16)

/* what a variable is made of, from the first assignment that says so */
enum bts_kind {
	BTS_ASSIGN,		/* @x = expr, @x += 1, @x++ ... */
	BTS_COUNT,		/* count() */
	BTS_SUM,		/* sum() */
	BTS_MIN,		/* min() */
	BTS_MAX,		/* max() */
	BTS_AVG,		/* avg(): bpftrace prints it as "stats" */
	BTS_STATS,		/* stats(): {count, average, total} */
	BTS_HIST,		/* hist() */
	BTS_LHIST,		/* lhist() */
	BTS_OUTPUT		/* the synthetic @output (printf/time/...) */
};

/* the value type a variable holds, as far as the source tells */
enum bts_vtype {
	BTS_V_INT,		/* signed 64-bit (bpftrace 0.17 prints i64) */
	BTS_V_UINT,		/* counts: count(), hist/lhist buckets */
	BTS_V_STRING		/* strings, tuples, stacks, str(), comm ... */
};

enum bts_mtype {		/* grafana-pcp's metrictype label */
	BTS_MT_NONE,
	BTS_MT_HISTOGRAM,
	BTS_MT_STACKS,		/* count() keyed by kstack/ustack */
	BTS_MT_OUTPUT
};

struct bts_var {
	char		*v_name;	/* without '@'; bare '@' is "root" */
	enum bts_kind	 v_kind;
	enum bts_vtype	 v_vtype;
	enum bts_mtype	 v_mtype;
	int		 v_nkeys;	/* 0: scalar; else keys in [a, b, ..] */
	int		 v_counter;	/* PCP semantics counter (else instant) */
	int		 v_bare;	/* 1: the bare '@' map (v_name "root");
					   a script may not define both @ and
					   @root */
	int		 v_vopen;	/* 1: the source does not tell the type
					   (@x = arg0, @x = $s, @x = @y ...):
					   v_vtype (INT) is a guess the first
					   print may replace (ingest.c) */
};

/* the restart policy from "// restart: never|on-failure|always" */
enum bts_restart {
	BTS_RESTART_NEVER,
	BTS_RESTART_ON_FAILURE,
	BTS_RESTART_ALWAYS
};

struct bts_meta {
	char		*m_name;		/* // name: or NULL */
	char		**m_include;		/* // include: @a, @b: names
						   trimmed, stored without '@'
						   ("@" alone is "root") */
	size_t		 m_ninclude;		/* 0: no include list */
	long		 m_table_retain_lines;	/* -1: not set */
	int		 m_custom_output_block;	/* // custom-output-block */
	enum bts_restart m_restart;		/* // restart: */
	long		 m_interval_ms;		/* // interval: 500ms|2s; -1 */
	int		 m_on_demand;		/* // print: on-demand (SIGUSR1) */
};

/* the analysis result; owns all its strings */
struct bts_info {
	struct bts_meta	 i_meta;
	struct bts_var	*i_vars;	/* exported variables, first-use order */
	size_t		 i_nvars;	/* includes @output when present */
	int		 i_has_output;	/* printf/time/join/system/cat/print of
					   a non-map value seen in code, and
					   "output" is in i_vars (not dropped
					   by // include:) */
};

/*
 * Analyse code[0..len). On success fills *info (caller frees with
 * bts_info_free) and returns 0. On a script the daemon must refuse
 * (bad // name:, non-integer table-retain-lines, unknown restart value,
 * bad // interval: or // print:, // include: naming an unknown variable,
 * @output assigned by the script, no variables and no output, too many
 * variables, a NUL byte in code) returns -1 with a one-line reason in
 * err; *info is then zeroed. Unterminated strings/comments are not
 * errors here: bpftrace itself reports them with line and column.
 */
int	 bts_analyze(const char *code, size_t len, struct bts_info *info,
	    char *err, size_t errlen);
void	 bts_info_free(struct bts_info *info);

/*
 * The code bpftrace runs: the original text, then (unless
 * custom-output-block or on-demand) "\ninterval:ms:N { print(@a);
 * print(@b); ... }\n" over every exported non-output variable (none:
 * no block). interval_ms < 1 means 1000. Returns a
 * malloc'd NUL-terminated string (caller frees) and its length in *lenp,
 * or NULL on allocation failure.
 */
char	*bts_rewrite(const char *code, size_t len, const struct bts_info *info,
	    long interval_ms, size_t *lenp);

/*
 * print: on-demand with a bpftrace that has no SIGUSR1 map dump (0.22+):
 * the original text, then "\nself:signal:SIGUSR1 { print(@a); ... }\n"
 * over every exported non-output variable (none: no probe), so SIGUSR1
 * prints them as the dump did. Allocation as bts_rewrite.
 */
char	*bts_rewrite_usr1(const char *code, size_t len,
	    const struct bts_info *info, size_t *lenp);

/* 1 when name is a valid script name ([A-Za-z_][A-Za-z0-9_]*, <= 64) */
int	 bts_name_valid(const char *name);

#endif
