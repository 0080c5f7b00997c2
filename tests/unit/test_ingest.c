/* SPDX-License-Identifier: MIT */
/*
 * test_ingest.c - the JSON ingester against the real bpftrace 0.17 output
 * in $BT_SHARED/fixtures/bpftrace-0.17 (read in place; tests that need
 * them are skipped with a message when absent) and against hand-made
 * lines for what 0.17 never prints. Expected values come from reading the
 * fixture files, never from the ingester's own output.
 */
#include "testhelp.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>

#include "buf.h"
#include "ingest.h"

#define FIXDIR		"/fixtures/bpftrace-0.17/"
#define NFIXTURES	54

/* --- helpers ------------------------------------------------------------- */

struct tv {
	const char	*name;
	enum bts_kind	 kind;
	enum bts_vtype	 vt;
	int		 nkeys;
};

#define OUTPUT_VAR	{ "output", BTS_OUTPUT, BTS_V_STRING, 0 }

/* Builds the bts_info btscript.c would give, by hand; caller frees. */
static struct bts_info *
info_new(const struct tv *tv, size_t n, long retain)
{
	struct bts_info	*info = calloc(1, sizeof(*info));
	size_t		 i;

	assert_non_null(info);
	info->i_vars = calloc(n ? n : 1, sizeof(*info->i_vars));
	assert_non_null(info->i_vars);
	for (i = 0; i < n; i++) {
		info->i_vars[i].v_name = strdup(tv[i].name);
		info->i_vars[i].v_kind = tv[i].kind;
		info->i_vars[i].v_vtype = tv[i].vt;
		info->i_vars[i].v_nkeys = tv[i].nkeys;
		if (tv[i].kind == BTS_OUTPUT)
			info->i_has_output = 1;
	}
	info->i_nvars = n;
	info->i_meta.m_table_retain_lines = retain;
	info->i_meta.m_interval_ms = -1;
	return info;
}

static void
info_free(struct bts_info *info)
{
	size_t	 i;

	for (i = 0; i < info->i_nvars; i++)
		free(info->i_vars[i].v_name);
	free(info->i_vars);
	free(info);
}

static struct ingest *
ing_new(const struct tv *tv, size_t n, long retain,
    const struct ingest_limits *lim)
{
	struct bts_info	*info = info_new(tv, n, retain);
	struct ingest	*ing = ingest_new(info, lim);

	info_free(info);	/* ingest_new keeps its own copy */
	assert_non_null(ing);
	return ing;
}

#define ING(tvs, retain, lim) \
	ing_new(tvs, sizeof(tvs) / sizeof(tvs[0]), retain, lim)

static int
feed(struct ingest *ing, const char *line)
{
	char	 err[256] = "";

	return ingest_line(ing, line, strlen(line), err, sizeof(err));
}

static char *
fixture_path(const char *name)
{
	const char	*shared = getenv("BT_SHARED");
	size_t		 len;
	char		*p;

	if (shared == NULL)
		return NULL;
	len = strlen(shared) + strlen(FIXDIR) + strlen(name) + 1;
	p = malloc(len);
	assert_non_null(p);
	snprintf(p, len, "%s%s%s", shared, FIXDIR, name);
	return p;
}

/* The whole file, NUL-terminated; NULL when it cannot be read. */
static char *
slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*s = NULL;
	long	 n;

	if (path == NULL || (f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1)) != NULL) {
		if (fread(s, 1, (size_t)n, f) != (size_t)n) {
			free(s);
			s = NULL;
		} else {
			s[n] = '\0';
			*lenp = (size_t)n;
		}
	}
	fclose(f);
	return s;
}

/* NAME.stdout, or skip the test when the fixtures are not there. */
static char *
fixture(const char *name, size_t *lenp)
{
	char	 file[256];
	char	*path, *s;

	snprintf(file, sizeof(file), "%s.stdout", name);
	path = fixture_path(file);
	s = slurp(path, lenp);
	free(path);
	if (s == NULL) {
		print_message("skipped: fixture %s not found (BT_SHARED=%s)\n",
		    file, getenv("BT_SHARED") ? getenv("BT_SHARED") : "unset");
		skip();
	}
	return s;
}

/*
 * Feeds lines first..last (1-based, 0: to the end) of NAME.stdout and
 * fails on any line the ingester calls invalid.
 */
static void
feed_fixture_lines(struct ingest *ing, const char *name, size_t first,
    size_t last)
{
	char	 err[256];
	char	*text, *p, *nl;
	size_t	 len, no = 0;
	int	 rv;

	text = fixture(name, &len);
	for (p = text; p < text + len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(text + len - p))) == NULL)
			nl = text + len;
		no++;
		if (no < first || (last && no > last))
			continue;
		err[0] = '\0';
		rv = ingest_line(ing, p, (size_t)(nl - p), err, sizeof(err));
		if (rv == -1)
			fail_msg("%s.stdout line %zu: %s", name, no, err);
	}
	free(text);
}

static void
feed_fixture(struct ingest *ing, const char *name)
{
	feed_fixture_lines(ing, name, 1, 0);
}

static const struct ing_val *
inst(struct ingest *ing, const char *var, const char *name)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);
	size_t		 i;

	assert_non_null(v);
	assert_false(v->iv_scalar);
	for (i = 0; i < v->iv_n; i++)
		if (strcmp(v->iv_names[i], name) == 0)
			return &v->iv_vals[i];
	fail_msg("@%s has no instance \"%s\"", var, name);
	return NULL;
}

static int
has_inst(struct ingest *ing, const char *var, const char *name)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);
	size_t		 i;

	for (i = 0; v != NULL && i < v->iv_n; i++)
		if (strcmp(v->iv_names[i], name) == 0)
			return 1;
	return 0;
}

static uint64_t
inst_u(struct ingest *ing, const char *var, const char *name)
{
	const struct ing_val	*v = inst(ing, var, name);

	assert_int_equal(v->t, ING_U64);
	return v->u;
}

static int64_t
inst_i(struct ingest *ing, const char *var, const char *name)
{
	const struct ing_val	*v = inst(ing, var, name);

	assert_int_equal(v->t, ING_I64);
	return v->i;
}

static const char *
inst_s(struct ingest *ing, const char *var, const char *name)
{
	const struct ing_val	*v = inst(ing, var, name);

	assert_int_equal(v->t, ING_STR);
	return v->s;
}


static const struct ing_val *
scalar(struct ingest *ing, const char *var)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);

	assert_non_null(v);
	assert_true(v->iv_scalar);
	assert_int_equal(v->iv_n, 1);
	return &v->iv_vals[0];
}

/* the @output text, NUL-terminated; caller frees */
static char *
output(struct ingest *ing)
{
	struct buf	 b;

	buf_init(&b, TEST_BUF_MAX);
	assert_int_equal(ingest_output_text(ing, &b), 0);
	return buf_take(&b, NULL);
}

static void
assert_output(struct ingest *ing, const char *want)
{
	char	*got = output(ing);

	assert_string_equal(got, want);
	free(got);
}

/* --- numbers and scalars ------------------------------------------------- */

static void
scalar_count_from_fixture(void **state)
{
	struct tv	 tv[] = { { "calls", BTS_COUNT, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	assert_int_equal(ingest_var_by_name(ing, "calls")->iv_n, 0);
	feed_fixture(ing, "scalar_count");
	/* {"type": "map", "data": {"@calls": 379}} */
	assert_int_equal(scalar(ing, "calls")->t, ING_U64);
	assert_int_equal(scalar(ing, "calls")->u, 379);
	assert_int_equal(ingest_stats(ing)->is_lines, 2);	/* 2 blank */
	assert_int_equal(ingest_stats(ing)->is_bad_lines, 0);
	assert_null(ingest_var_by_name(ing, "nope"));
	assert_non_null(ingest_var(ing, 0));
	assert_null(ingest_var(ing, 1));
	assert_int_equal(ingest_nvars(ing), 1);
	ingest_free(ing);
}

static void
u64_max_printed_as_minus_one_is_u64_max(void **state)
{
	struct tv	 tv[] = { { "big", BTS_ASSIGN, BTS_V_UINT, 0 },
	    { "neg", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "m", BTS_ASSIGN, BTS_V_INT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed_fixture(ing, "negative_and_huge");
	/* @big = 18446744073709551615 printed as -1 */
	assert_int_equal(scalar(ing, "big")->t, ING_U64);
	assert_true(scalar(ing, "big")->u == UINT64_MAX);
	assert_true(scalar(ing, "neg")->i == -5);
	assert_true(inst_i(ing, "m", "1") == -42);
	assert_true(inst_i(ing, "m", "2") == INT64_MAX);
	/* 0.24+ prints such integers as strings, and JSON allows > 2^63 */
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@big\": \"18446744073709551614\"}}"), 0);
	assert_true(scalar(ing, "big")->u == UINT64_MAX - 1);
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@big\": 18446744073709551615}}"), 0);
	assert_true(scalar(ing, "big")->u == UINT64_MAX);
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@neg\": \"-9007199254740993\"}}"), 0);
	assert_true(scalar(ing, "neg")->i == -9007199254740993LL);
	assert_int_equal(ingest_var_by_name(ing, "neg")->iv_vtype, BTS_V_INT);
	ingest_free(ing);
}

static void
i64_min_exact(void **state)
{
	struct tv	 tv[] = { { "u8", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "s32", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "u32", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "i64min", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "cnt", BTS_COUNT, BTS_V_UINT, 0 },
	    { "sum", BTS_SUM, BTS_V_INT, 0 },
	    { "min", BTS_MIN, BTS_V_INT, 0 },
	    { "max", BTS_MAX, BTS_V_INT, 0 },
	    { "avgneg", BTS_AVG, BTS_V_INT, 0 },
	    { "stneg", BTS_STATS, BTS_V_INT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed_fixture(ing, "map_types_mixed");
	assert_true(scalar(ing, "i64min")->i == INT64_MIN);
	assert_true(scalar(ing, "s32")->i == -2147483648LL);
	assert_true(scalar(ing, "u32")->i == 4294967295LL);
	assert_true(scalar(ing, "u8")->i == 255);
	assert_true(scalar(ing, "cnt")->u == 1);
	assert_true(scalar(ing, "sum")->i == -3);
	assert_true(scalar(ing, "min")->i == -5);
	assert_true(scalar(ing, "avgneg")->i == -10);
	assert_true(inst_i(ing, "stneg", "count") == 1);
	assert_true(inst_i(ing, "stneg", "average") == -10);
	assert_true(inst_i(ing, "stneg", "total") == -10);
	/* bpftrace printed no @max line in this run */
	assert_int_equal(ingest_var_by_name(ing, "max")->iv_n, 0);
	/* one past the range is refused, not rounded */
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@i64min\": -9223372036854775809}}"), -1);
	assert_true(scalar(ing, "i64min")->i == INT64_MIN);
	ingest_free(ing);
}

/*
 * A variable's type never changes (clients cache descriptors): a value
 * that does not fit is dropped and counted, the variable keeps its type
 * and its last good value.
 */
static void
type_fixed_misfits_counted(void **state)
{
	struct tv	 tv[] = { { "s", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "sm", BTS_ASSIGN, BTS_V_UINT, 1 },
	    { "n", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "big", BTS_ASSIGN, BTS_V_INT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*s = ingest_var_by_name(ing, "s");
	struct ing_var	*n = ingest_var_by_name(ing, "n");
	struct ing_var	*sm = ingest_var_by_name(ing, "sm");

	feed(ing, "{\"type\": \"map\", \"data\": {\"@n\": \"42\"}}");
	assert_true(scalar(ing, "n")->i == 42);	/* "42" is a number */
	assert_int_equal(ingest_stats(ing)->is_type_errors, 0);
	/* string_value: {"@s": "hello"}, {"@sm": {"1": "world"}} */
	feed_fixture(ing, "string_value");
	assert_int_equal(s->iv_vtype, BTS_V_INT);
	assert_int_equal(s->iv_n, 0);
	assert_int_equal(sm->iv_vtype, BTS_V_UINT);
	assert_int_equal(sm->iv_n, 0);
	assert_int_equal(ingest_stats(ing)->is_type_errors, 2);
	assert_non_null(strstr(ingest_stats(ing)->is_last_error,
	    "@sm[1]: value world does not fit"));
	/* a good value, then a decimal: the good one stays */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@s\": -12}}");
	assert_true(scalar(ing, "s")->i == -12);
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@s\": 2.5}}"), 0);
	assert_true(scalar(ing, "s")->i == -12);
	assert_int_equal(n->iv_vtype, BTS_V_INT);
	assert_int_equal(ingest_stats(ing)->is_type_errors, 3);
	/* a u64 above 2^63 (0.23 bare, 0.27 a string) for a signed one */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@big\": 7}}");
	feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@big\": 18446744073709551615}}");
	feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@big\": \"9223372036854775808\"}}");
	assert_true(scalar(ing, "big")->i == 7);
	assert_int_equal(ingest_stats(ing)->is_type_errors, 5);
	/* the good keys of a keyed print stay, the bad ones go */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@sm\": {\"a\": 1, "
	    "\"b\": \"x\", \"c\": \"18446744073709551615\", \"d\": -1}}}");
	assert_int_equal(sm->iv_n, 3);
	assert_true(inst_u(ing, "sm", "a") == 1);
	assert_true(inst_u(ing, "sm", "c") == UINT64_MAX);
	assert_true(inst_u(ing, "sm", "d") == UINT64_MAX);  /* 0.17's u64 */
	assert_int_equal(ingest_stats(ing)->is_type_errors, 6);
	ingest_free(ing);
}

/* every variable's type left to the first print (btscript's v_vopen) */
static struct ingest *
ing_new_open(const struct tv *tv, size_t n)
{
	struct bts_info	*info = info_new(tv, n, -1);
	struct ingest	*ing;
	size_t		 i;

	for (i = 0; i < n; i++)
		info->i_vars[i].v_vopen = 1;
	ing = ingest_new(info, NULL);
	info_free(info);
	assert_non_null(ing);
	return ing;
}

/* a typer as scripts.c's when a client was given every descriptor */
static int
typer_described(void *arg, size_t k, enum bts_vtype *vt, int final)
{
	(*(int *)arg)++;
	(void)k;
	(void)final;
	*vt = BTS_V_INT;
	return 0;
}

static void
open_type_first_print_decides(void **state)
{
	struct tv	 tv[] = { { "a", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "s", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "m", BTS_ASSIGN, BTS_V_INT, 1 },
	    { "n", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "g", BTS_ASSIGN, BTS_V_INT, 0 } };
	struct ingest	*ing = ing_new_open(tv, 5);
	struct ing_var	*a = ingest_var_by_name(ing, "a");
	struct ing_var	*s = ingest_var_by_name(ing, "s");
	struct ing_var	*m = ingest_var_by_name(ing, "m");
	struct ing_var	*n = ingest_var_by_name(ing, "n");
	struct ing_var	*g = ingest_var_by_name(ing, "g");

	assert_int_equal(a->iv_open, ING_OPEN_ANY);
	/* an empty print decides nothing */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@m\": {}}}");
	assert_int_equal(m->iv_open, ING_OPEN_ANY);
	/* 0.23's bare u64 and 0.27's string u64: unsigned, fixed */
	feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@a\": 18446744073709551615}}");
	assert_int_equal(a->iv_vtype, BTS_V_UINT);
	assert_int_equal(a->iv_open, ING_OPEN_NONE);
	assert_true(scalar(ing, "a")->u == UINT64_MAX);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@m\": "
	    "{\"k\": 1, \"l\": \"9223372036854775808\"}}}");
	assert_int_equal(m->iv_vtype, BTS_V_UINT);
	assert_true(inst_u(ing, "m", "l") == 9223372036854775808ull);
	assert_true(inst_u(ing, "m", "k") == 1);
	/* a string: STRING, and numbers are then text */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@s\": \"hello\"}}");
	assert_int_equal(s->iv_vtype, BTS_V_STRING);
	assert_int_equal(s->iv_open, ING_OPEN_NONE);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@s\": 5}}");
	assert_string_equal(scalar(ing, "s")->s, "5");
	/* small numbers: INT for now, the sign still open, never STRING */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@n\": 5}}");
	assert_int_equal(n->iv_vtype, BTS_V_INT);
	assert_int_equal(n->iv_open, ING_OPEN_SIGN);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@n\": \"x\"}}");
	assert_int_equal(n->iv_vtype, BTS_V_INT);
	assert_int_equal(ingest_stats(ing)->is_type_errors, 1);
	assert_true(scalar(ing, "n")->i == 5);
	feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@n\": 18446744073709551615}}");
	assert_int_equal(n->iv_vtype, BTS_V_UINT);
	assert_int_equal(n->iv_open, ING_OPEN_NONE);
	/* a negative one fixes INT; a u64 is then a misfit */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@g\": -3}}");
	assert_int_equal(g->iv_vtype, BTS_V_INT);
	assert_int_equal(g->iv_open, ING_OPEN_NONE);
	feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@g\": 18446744073709551615}}");
	assert_true(scalar(ing, "g")->i == -3);
	assert_int_equal(ingest_stats(ing)->is_type_errors, 2);
	/* a restart (new bpftrace run) keeps every type */
	ingest_reset(ing);
	assert_int_equal(s->iv_vtype, BTS_V_STRING);
	assert_int_equal(a->iv_vtype, BTS_V_UINT);
	assert_int_equal(a->iv_open, ING_OPEN_NONE);
	ingest_free(ing);
}

/* a type a client was given stays: the print's misfits are counted */
static void
open_type_described_first_stays(void **state)
{
	struct tv	 tv[] = { { "a", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "s", BTS_ASSIGN, BTS_V_INT, 0 } };
	struct ingest	*ing = ing_new_open(tv, 2);
	struct ing_var	*a = ingest_var_by_name(ing, "a");
	struct ing_var	*s = ingest_var_by_name(ing, "s");
	int		 asked = 0;

	ingest_set_typer(ing, typer_described, &asked);
	feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@a\": 18446744073709551615}}");
	feed(ing, "{\"type\": \"map\", \"data\": {\"@s\": \"hello\"}}");
	assert_int_equal(asked, 2);
	assert_int_equal(a->iv_vtype, BTS_V_INT);
	assert_int_equal(s->iv_vtype, BTS_V_INT);
	assert_int_equal(a->iv_open, ING_OPEN_NONE);
	assert_int_equal(a->iv_n, 0);
	assert_int_equal(ingest_stats(ing)->is_type_errors, 2);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@a\": 7}}");
	assert_int_equal(asked, 2);		/* fixed: not asked again */
	assert_true(scalar(ing, "a")->i == 7);
	ingest_free(ing);
}

/* 0.27 prints booleans as true/false, 0.23 as -1/0: the exact value */
static void
booleans_by_version(void **state)
{
	struct tv	 tv[] = { { "b", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "bm", BTS_ASSIGN, BTS_V_INT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	/* lines of extra/bool_null_types.stdout, 0.27 then 0.23 */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@b\": true}}");
	feed(ing, "{\"type\": \"map\", \"data\": {\"@bm\": {\"1\": false}}}");
	assert_true(scalar(ing, "b")->i == 1);
	assert_true(inst_i(ing, "bm", "1") == 0);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@b\": -1}}");
	assert_true(scalar(ing, "b")->i == -1);
	assert_int_equal(ingest_stats(ing)->is_type_errors, 0);
	ingest_free(ing);
}

/*
 * 0.23 escapes string map keys twice (keys_special_strings.stdout of
 * bpftrace-0.23): undone when the version says so, kept otherwise.
 */
static void
keys_escaped_twice_023(void **state)
{
	static const char line[] = "{\"type\": \"map\", \"data\": {\"@k\": "
	    "{\"quote\\\\\\\"inside\": 1, \"back\\\\\\\\slash\": 2, "
	    "\"tab\\\\there\": 3, \"new\\\\nline\": 4, "
	    "\"caf\\\\uffffffc3\\\\uffffffa9\": 5, "
	    "\"ctl\\\\u0001\\\\u001f\": 6, \"slash/and,comma\": 7, "
	    "\"\": 8, \"del\": 9}}}";
	static const char stack[] = "{\"type\": \"map\", \"data\": {\"@s\": "
	    "{\"\\\\n        ext4_get_group_desc+129\\\\n\": 3}}}";
	const char	*want[] = { "", "back\\slash", "caf\xc3\xa9",
	    "ctl\x01\x1f", "del", "new\nline", "quote\"inside",
	    "slash/and,comma", "tab\there" };
	struct tv	 tv[] = { { "k", BTS_COUNT, BTS_V_UINT, 1 },
	    { "s", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*k = ingest_var_by_name(ing, "k");
	size_t		 i;

	ingest_set_version(ing, "v0.23.2");
	assert_int_equal(feed(ing, line), 0);
	assert_int_equal(k->iv_n, 9);
	for (i = 0; i < 9; i++)
		assert_string_equal(k->iv_names[i], want[i]);
	assert_true(inst_u(ing, "k", "quote\"inside") == 1);
	assert_true(inst_u(ing, "k", "caf\xc3\xa9") == 5);
	assert_int_equal(feed(ing, stack), 0);
	assert_true(inst_u(ing, "s", "\n        ext4_get_group_desc+129\n")
	    == 3);
	/* a restart keeps the version; 0.17 and 0.27 escape once */
	ingest_reset(ing);
	assert_int_equal(feed(ing, line), 0);
	assert_true(inst_u(ing, "k", "quote\"inside") == 1);
	ingest_set_version(ing, "v0.27.1");
	assert_int_equal(feed(ing, line), 0);
	assert_true(inst_u(ing, "k", "quote\\\"inside") == 1);
	ingest_set_version(ing, NULL);
	assert_int_equal(feed(ing, line), 0);
	assert_true(inst_u(ing, "k", "new\\nline") == 4);
	/* a key that does not decode twice is kept as read */
	ingest_set_version(ing, "v0.23.2");
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@k\": "
	    "{\"bad\\\\q\": 1}}}"), 0);
	assert_true(inst_u(ing, "k", "bad\\q") == 1);
	ingest_free(ing);
}

/* 0.27: a cleared avg prints {}, a cleared stats() {} (extra/
 * empty_scalar_print.stdout): no value; both readers agree */
static void
cleared_avg_stats_027(void **state)
{
	struct tv	 tv[] = { { "av", BTS_AVG, BTS_V_INT, 0 },
	    { "st", BTS_STATS, BTS_V_INT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed(ing, "{\"type\": \"stats\", \"data\": {\"@av\": 4}}");
	feed(ing, "{\"type\": \"stats\", \"data\": {\"@st\": {\"count\": 1, "
	    "\"average\": 2, \"total\": 2}}}");
	assert_int_equal(ingest_var_by_name(ing, "av")->iv_n, 1);
	assert_int_equal(ingest_var_by_name(ing, "st")->iv_n, 3);
	assert_int_equal(feed(ing, "{\"type\": \"stats\", \"data\": "
	    "{\"@av\": {}}}"), 0);
	assert_int_equal(feed(ing, "{\"type\": \"stats\", \"data\": "
	    "{\"@st\": {}}}"), 0);
	assert_int_equal(ingest_var_by_name(ing, "av")->iv_n, 0);
	assert_int_equal(ingest_var_by_name(ing, "st")->iv_n, 0);
	assert_int_equal(ingest_stats(ing)->is_bad_lines, 0);
	/* {} with a member is not a clear: refused, value kept */
	feed(ing, "{\"type\": \"stats\", \"data\": {\"@av\": 4}}");
	assert_int_equal(feed(ing, "{\"type\": \"stats\", \"data\": "
	    "{\"@av\": {\"x\": 1}}}"), -1);
	assert_true(scalar(ing, "av")->i == 4);
	ingest_free(ing);
}

static void
string_and_tuple_values(void **state)
{
	struct tv	 tv[] = { { "s", BTS_ASSIGN, BTS_V_STRING, 0 },
	    { "sm", BTS_ASSIGN, BTS_V_STRING, 1 },
	    { "t", BTS_ASSIGN, BTS_V_STRING, 0 },
	    { "tm", BTS_ASSIGN, BTS_V_STRING, 1 },
	    { "b", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "z", BTS_ASSIGN, BTS_V_STRING, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed_fixture(ing, "string_value");
	feed_fixture(ing, "tuple_value");
	assert_string_equal(scalar(ing, "s")->s, "hello");
	assert_string_equal(inst_s(ing, "sm", "1"), "world");
	/* {"@t": [1,"two",3]}, {"@tm": {"k": [4,"five"]}} */
	assert_string_equal(scalar(ing, "t")->s, "[1,\"two\",3]");
	assert_string_equal(inst_s(ing, "tm", "k"), "[4,\"five\"]");
	assert_int_equal(ingest_var_by_name(ing, "t")->iv_vtype, BTS_V_STRING);
	/* 0.24+: booleans, null, structs */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@b\": true}}");
	assert_true(scalar(ing, "b")->i == 1);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@z\": null}}");
	assert_int_equal(scalar(ing, "z")->t, ING_NONE);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@t\": "
	    "{ \"a\" : [1, \"x\\\"y\\u0001\"], \"b\": {}}}}");
	assert_string_equal(scalar(ing, "t")->s,
	    "{\"a\":[1,\"x\\\"y\\u0001\"],\"b\":{}}");
	feed(ing, "{\"type\": \"map\", \"data\": {\"@t\": [\"a\\tb\\nc\"]}}");
	assert_string_equal(scalar(ing, "t")->s, "[\"a\\tb\\nc\"]");
	feed(ing, "{\"type\": \"map\", \"data\": {\"@z\": false}}");
	assert_string_equal(scalar(ing, "z")->s, "false");
	feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@z\": 18446744073709551615}}");
	assert_string_equal(scalar(ing, "z")->s, "18446744073709551615");
	ingest_free(ing);
	ingest_free(NULL);
}

/* --- keyed maps ---------------------------------------------------------- */

static void
keyed_map_replaced_not_merged(void **state)
{
	struct tv	 tv[] = { { "a", BTS_ASSIGN, BTS_V_INT, 1 },
	    { "s", BTS_ASSIGN, BTS_V_INT, 0 } };
	struct tv	 tc[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 },
	    { "h", BTS_HIST, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*a = ingest_var_by_name(ing, "a");

	/* what a synchronous print() would have shown before delete() */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@a\": "
	    "{\"1\": 1, \"2\": 2, \"3\": 3}}}");
	assert_int_equal(a->iv_n, 3);
	feed_fixture(ing, "delete_clear");	/* {"1": 1, "3": 3, "4": 4} */
	assert_int_equal(a->iv_n, 3);
	assert_string_equal(a->iv_names[0], "1");
	assert_string_equal(a->iv_names[1], "3");
	assert_string_equal(a->iv_names[2], "4");
	assert_true(inst_i(ing, "a", "4") == 4);
	assert_false(has_inst(ing, "a", "2"));
	ingest_free(ing);

	ing = ING(tc, -1, NULL);
	feed_fixture_lines(ing, "periodic_print_clear", 1, 2);
	assert_int_equal(inst_u(ing, "c", "bpftrace"), 154);
	feed_fixture_lines(ing, "periodic_print_clear", 3, 3);
	assert_int_equal(inst_u(ing, "c", "bpftrace"), 27);	/* not 181 */
	feed_fixture(ing, "periodic_print_clear");
	assert_int_equal(inst_u(ing, "c", "memfd:sealed-91"), 6);
	assert_int_equal(inst_u(ing, "c", "python3"), 8);
	assert_int_equal(inst_u(ing, "c", "bpftrace"), 25);
	ingest_free(ing);

	/* print_top_div_hist: print(@c, 2) drops pmproxy from the set */
	ing = ING(tc, -1, NULL);
	feed_fixture_lines(ing, "print_top_div_hist", 3, 3);
	assert_int_equal(ingest_var_by_name(ing, "c")->iv_n, 3);
	feed_fixture_lines(ing, "print_top_div_hist", 2, 2);
	assert_int_equal(ingest_var_by_name(ing, "c")->iv_n, 2);
	assert_false(has_inst(ing, "c", "pmproxy"));
	assert_int_equal(inst_u(ing, "c", "memfd:sealed-91"), 33);
	ingest_free(ing);
}

static void
multi_key_joined_names(void **state)
{
	struct tv	 tv[] = { { "m2", BTS_ASSIGN, BTS_V_INT, 2 },
	    { "m3", BTS_ASSIGN, BTS_V_INT, 3 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*m3;

	feed_fixture(ing, "keys_multi_mixed");
	assert_true(inst_i(ing, "m2", "a,b,1") == 10);
	assert_true(inst_i(ing, "m2", "c,-2") == 20);
	m3 = ingest_var_by_name(ing, "m3");
	assert_int_equal(m3->iv_n, 2);
	/* strcmp order */
	assert_string_equal(m3->iv_names[0], "p\"q,0,");
	assert_string_equal(m3->iv_names[1], "x,-1,y");
	assert_true(m3->iv_vals[0].i == 40);
	assert_true(m3->iv_vals[1].i == 30);
	ingest_free(ing);

	ing = ING(tv, -1, NULL);
	feed_fixture(ing, "map_multi_key");
	assert_int_equal(ingest_var_by_name(ing, "m2")->iv_n, 17);
	assert_true(inst_i(ing, "m2", "bpftrace,257") == 1);
	assert_true(inst_i(ing, "m2", "python3,232") == 30);
	assert_true(inst_i(ing, "m2", "memfd:sealed-91,202") == 14);
	assert_true(inst_i(ing, "m3", "bpftrace,14968,1") == 1);
	ingest_free(ing);
}

static void
duplicate_keys_summed(void **state)
{
	struct tv	 tv[] = { { "us", BTS_COUNT, BTS_V_UINT, 2 },
	    { "ks", BTS_COUNT, BTS_V_UINT, 2 },
	    { "x", BTS_ASSIGN, BTS_V_INT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed_fixture(ing, "ustack_keys");
	/* "\n    0x7ff6121d8ad7\n,bash": 1 appears twice in one object */
	assert_int_equal(ingest_var_by_name(ing, "us")->iv_n, 4);
	assert_int_equal(inst_u(ing, "us", "\n    0x7ff6121d8ad7\n,bash"), 2);
	assert_int_equal(inst_u(ing, "us", ",swapper/0"), 67);
	assert_int_equal(inst_u(ing, "us", "\n    free+104\n,pmproxy"), 1);
	assert_int_equal(inst_u(ing, "ks", "pv_native_safe_halt,0"), 67);
	/* not a count: the last one wins */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@x\": "
	    "{\"a\": 1, \"b\": 2, \"a\": 5}}}");
	assert_true(inst_i(ing, "x", "a") == 5);
	assert_int_equal(ingest_var_by_name(ing, "x")->iv_n, 2);
	ingest_free(ing);

	/* sum() is signed and summed too; hist buckets as well */
	{
		struct tv	 ts[] = { { "s", BTS_SUM, BTS_V_INT, 1 },
		    { "h", BTS_HIST, BTS_V_UINT, 1 } };

		ing = ING(ts, -1, NULL);
		feed(ing, "{\"type\": \"map\", \"data\": {\"@s\": "
		    "{\"k\": -3, \"k\": -4}}}");
		assert_true(inst_i(ing, "s", "k") == -7);
		feed(ing, "{\"type\": \"hist\", \"data\": {\"@h\": "
		    "{\"k\": [{\"min\": 9223372036854775808, \"count\": 1}, "
		    "{\"min\": 2, \"max\": 3, \"count\": 1}], "
		    "\"k\": [{\"min\": 2, \"max\": 3, \"count\": 4}]}}}");
		assert_int_equal(ingest_var_by_name(ing, "h")->iv_n, 2);
		assert_string_equal(ingest_var_by_name(ing, "h")->iv_names[1],
		    "k:9223372036854775808-inf");
		assert_int_equal(inst_u(ing, "h", "k:2-3"), 5);
		ingest_free(ing);
	}
}

/* --- hist, lhist, avg, stats --------------------------------------------- */

static void
hist_bucket_names_pmda_compatible(void **state)
{
	/* hist_global.stdout, in order, with their counts */
	static const struct {
		const char	*name;
		uint64_t	 count;
	} want[] = { { "-inf--1", 24 }, { "0-0", 285 }, { "1-1", 25 },
	    { "2-3", 2 }, { "4-7", 0 }, { "8-15", 4 }, { "16-31", 0 },
	    { "32-63", 14 }, { "64-127", 13 }, { "128-255", 0 },
	    { "256-511", 0 }, { "512-1023", 4 }, { "1024-2047", 0 },
	    { "2048-4095", 0 }, { "4096-8191", 0 }, { "8192-16383", 13 } };
	struct tv	 tv[] = { { "h", BTS_HIST, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*h = ingest_var_by_name(ing, "h");
	size_t		 i;

	feed_fixture(ing, "hist_global");
	assert_false(h->iv_scalar);
	assert_int_equal(h->iv_n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < h->iv_n; i++) {
		assert_string_equal(h->iv_names[i], want[i].name);
		assert_int_equal(h->iv_vals[i].t, ING_U64);
		assert_int_equal(h->iv_vals[i].u, want[i].count);
	}
	ingest_free(ing);
}

static void
lhist_open_ends(void **state)
{
	static const char *const names[] = { "0-49", "50-99", "100-149",
	    "150-199", "200-249", "250-299", "300-inf" };
	static const uint64_t counts[] = { 67, 1, 1, 12, 111, 2, 103 };
	struct tv	 tv[] = { { "l", BTS_LHIST, BTS_V_UINT, 0 },
	    { "h", BTS_HIST, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*l = ingest_var_by_name(ing, "l");
	struct ing_var	*h = ingest_var_by_name(ing, "h");
	size_t		 i;

	feed_fixture(ing, "lhist");
	assert_int_equal(l->iv_n, 7);
	for (i = 0; i < 7; i++) {
		assert_string_equal(l->iv_names[i], names[i]);
		assert_int_equal(l->iv_vals[i].u, counts[i]);
	}
	/* lhist(5|-1|99, 0, 10, 5) and hist(0|1|1000000|-7) */
	feed_fixture(ing, "hist_empty_and_print");
	assert_int_equal(l->iv_n, 4);
	assert_string_equal(l->iv_names[0], "-inf--1");
	assert_string_equal(l->iv_names[1], "0-4");
	assert_string_equal(l->iv_names[2], "5-9");
	assert_string_equal(l->iv_names[3], "10-inf");
	assert_int_equal(inst_u(ing, "l", "0-4"), 0);
	assert_int_equal(inst_u(ing, "l", "10-inf"), 1);
	assert_string_equal(h->iv_names[0], "-inf--1");
	assert_string_equal(h->iv_names[h->iv_n - 1], "524288-1048575");
	assert_int_equal(inst_u(ing, "h", "524288-1048575"), 1);
	assert_int_equal(inst_u(ing, "h", "0-0"), 1);
	assert_int_equal(inst_u(ing, "h", "1-1"), 1);
	/* 0.24: bounds and counts may come as strings */
	feed(ing, "{\"type\": \"hist\", \"data\": {\"@l\": [{\"min\": "
	    "\"18446744073709551615\", \"count\": \"3\"}, {\"max\": 0, "
	    "\"count\": 1}]}}");
	assert_int_equal(l->iv_n, 2);
	assert_string_equal(l->iv_names[0], "-inf-0");
	assert_string_equal(l->iv_names[1], "18446744073709551615-inf");
	assert_int_equal(l->iv_vals[1].u, 3);
	ingest_free(ing);
}

static void
keyed_hist_instances(void **state)
{
	struct tv	 tv[] = { { "hk", BTS_HIST, BTS_V_UINT, 1 },
	    { "lk", BTS_LHIST, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*hk = ingest_var_by_name(ing, "hk");

	feed_fixture(ing, "hist_keyed");
	/* python3: 11 buckets, memfd:sealed-91: 2, bpftrace: 16 */
	assert_int_equal(hk->iv_n, 29);
	assert_string_equal(hk->iv_names[0], "bpftrace:-inf--1");
	assert_string_equal(hk->iv_names[1], "bpftrace:0-0");
	assert_string_equal(hk->iv_names[15], "bpftrace:8192-16383");
	assert_string_equal(hk->iv_names[16], "memfd:sealed-91:-inf--1");
	assert_string_equal(hk->iv_names[18], "python3:0-0");
	assert_string_equal(hk->iv_names[28], "python3:512-1023");
	assert_int_equal(inst_u(ing, "hk", "bpftrace:-inf--1"), 4);
	assert_int_equal(inst_u(ing, "hk", "bpftrace:0-0"), 147);
	assert_int_equal(inst_u(ing, "hk", "bpftrace:8192-16383"), 9);
	assert_int_equal(inst_u(ing, "hk", "memfd:sealed-91:0-0"), 28);
	assert_int_equal(inst_u(ing, "hk", "python3:64-127"), 7);
	feed_fixture(ing, "lhist_keyed");
	assert_int_equal(inst_u(ing, "lk", "pmproxy:200-299"), 1);
	assert_int_equal(inst_u(ing, "lk", "bpftrace:300-inf"), 1);
	assert_int_equal(inst_u(ing, "lk", "mkdir:200-299"), 117);
	ingest_free(ing);
}

static void
hist_zeroed_empty(void **state)
{
	struct tv	 tv[] = { { "h", BTS_HIST, BTS_V_UINT, 0 },
	    { "l", BTS_LHIST, BTS_V_UINT, 0 },
	    { "hk", BTS_HIST, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*h = ingest_var_by_name(ing, "h");
	uint64_t	 seq;

	feed(ing, "{\"type\": \"hist\", \"data\": {\"@h\": "
	    "[{\"min\": 4, \"max\": 7, \"count\": 1}]}}");
	assert_int_equal(h->iv_n, 1);
	seq = h->iv_seq;
	feed_fixture_lines(ing, "hist_zeroed", 2, 2);	/* "@h": [] */
	assert_int_equal(h->iv_n, 0);
	assert_true(h->iv_seq > seq);
	feed_fixture(ing, "hist_zeroed");
	assert_int_equal(h->iv_n, 0);
	assert_int_equal(ingest_var_by_name(ing, "l")->iv_n, 0);
	assert_int_equal(ingest_var_by_name(ing, "hk")->iv_n, 0);
	assert_int_equal(ingest_stats(ing)->is_bad_lines, 0);
	ingest_free(ing);
}

static void
avg_and_stats_values(void **state)
{
	struct tv	 tv[] = { { "a", BTS_AVG, BTS_V_INT, 0 },
	    { "st", BTS_STATS, BTS_V_INT, 0 } };
	struct tv	 tk[] = { { "av", BTS_AVG, BTS_V_INT, 1 },
	    { "st", BTS_STATS, BTS_V_INT, 1 },
	    { "cnt", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*st;

	feed_fixture(ing, "avg_stats");
	/* {"@a": 199}
	 * {"@st": {"count": 303, "average": 199, "total": 60396}} */
	assert_true(scalar(ing, "a")->i == 199);
	st = ingest_var_by_name(ing, "st");
	assert_int_equal(st->iv_n, 3);
	assert_string_equal(st->iv_names[0], "average");
	assert_string_equal(st->iv_names[1], "count");
	assert_string_equal(st->iv_names[2], "total");
	assert_true(inst_i(ing, "st", "count") == 303);
	assert_true(inst_i(ing, "st", "average") == 199);
	assert_true(inst_i(ing, "st", "total") == 60396);
	ingest_free(ing);

	ing = ING(tk, -1, NULL);
	feed_fixture(ing, "stats_keyed");
	assert_true(inst_i(ing, "av", "pmproxy") == 91);
	assert_true(inst_i(ing, "av", "bpftrace") == 136);
	assert_int_equal(inst_u(ing, "cnt", "pmproxy"), 21);
	st = ingest_var_by_name(ing, "st");
	assert_int_equal(st->iv_n, 6);
	assert_string_equal(st->iv_names[0], "bpftrace:average");
	assert_string_equal(st->iv_names[5], "pmproxy:total");
	assert_true(inst_i(ing, "st", "pmproxy:count") == 21);
	assert_true(inst_i(ing, "st", "pmproxy:average") == 91);
	assert_true(inst_i(ing, "st", "pmproxy:total") == 1926);
	assert_true(inst_i(ing, "st", "bpftrace:count") == 21);
	assert_true(inst_i(ing, "st", "bpftrace:average") == 136);
	assert_true(inst_i(ing, "st", "bpftrace:total") == 2857);
	ingest_free(ing);
}

/* --- strings and escapes ------------------------------------------------- */

static void
nonascii_escape_repaired(void **state)
{
	struct tv	 tv[] = { { "k", BTS_ASSIGN, BTS_V_INT, 1 },
	    { "v", BTS_ASSIGN, BTS_V_STRING, 1 }, OUTPUT_VAR };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed_fixture(ing, "printf_special_chars");
	assert_output(ing, "quote \" backslash \\ tab \t unicode \xc3\xa9 end\n"
	    "multi\nline\n");
	assert_true(inst_i(ing, "k", "a\"b") == 1);
	assert_true(inst_i(ing, "k", "c\\d") == 2);
	feed_fixture(ing, "keys_special_strings");
	assert_true(inst_i(ing, "k", "caf\xc3\xa9") == 5);
	assert_true(inst_i(ing, "k", "quote\"inside") == 1);
	assert_true(inst_i(ing, "k", "back\\slash") == 2);
	assert_true(inst_i(ing, "k", "tab\there") == 3);
	assert_true(inst_i(ing, "k", "new\nline") == 4);
	assert_true(inst_i(ing, "k", "ctl\x01\x1f") == 6);
	assert_true(inst_i(ing, "k", "slash/and,comma") == 7);
	assert_true(inst_i(ing, "k", "") == 8);
	assert_true(inst_i(ing, "k", "del\x7f") == 9);
	assert_string_equal(inst_s(ing, "v", "1"),
	    "val \"q\" \\ \t \xc3\xa9");
	ingest_free(ing);
}

static void
escapes_decode_to_valid_utf8(void **state)
{
	static const struct {
		const char	*json;		/* the value of @v */
		const char	*want;
	} cases[] = {
		{ "\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80" },	/* pair */
		{ "\"a\\ud800b\"", "a\xef\xbf\xbd" "b" },	/* lone high */
		{ "\"a\\udc00b\"", "a\xef\xbf\xbd" "b" },	/* lone low */
		{ "\"a\\u0000b\"", "a\xef\xbf\xbd" "b" },	/* NUL */
		{ "\"\\u00e9\\u20AC\"", "\xc3\xa9\xe2\x82\xac" },
		{ "\"\\uffffffc3(\"", "\xef\xbf\xbd(" },	/* half é */
		{ "\"\\uFFFFFFC3\\uffffffA9\"", "\xc3\xa9" },
		{ "\"\\uffffff7f\"", "\xef\xbf\xbf" "ff7f" },	/* not 0.17 */
		{ "\"raw \xff\xc3(\"", "raw \xef\xbf\xbd\xef\xbf\xbd(" },
		{ "\"\xed\xa0\x80\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\"\\/\\b\\f\\r\"", "/\b\f\r" },
	};
	struct tv	 tv[] = { { "v", BTS_ASSIGN, BTS_V_STRING, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	char		 line[256];
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(line, sizeof(line), "{\"type\": \"map\", "
		    "\"data\": {\"@v\": %s}}", cases[i].json);
		assert_int_equal(feed(ing, line), 0);
		assert_string_equal(scalar(ing, "v")->s, cases[i].want);
	}
	ingest_free(ing);
}

/* --- output -------------------------------------------------------------- */

static void
printf_multiline_output(void **state)
{
	struct tv	 tv[] = { OUTPUT_VAR };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed_fixture(ing, "printf_multiline_csv");
	assert_output(ing, "h1,h2\n1,2\n3,4\na\"b\",c\\d,\te\n"
	    "-1,4294967295,ff,s,A\n\r\n\x01\x1b[31mred\x1b[0m\n");
	ingest_free(ing);

	/* time() and printf() without newline continue the line */
	ing = ING(tv, -1, NULL);
	feed_fixture(ing, "strftime_printf");
	assert_output(ing, "2026-11-25T05:11:28|05:11:28.265721\n"
	    "05:11:28\n2026-11-25 05:11:28\nno-newlineno newline at end\n");
	ingest_free(ing);

	ing = ING(tv, -1, NULL);
	feed_fixture(ing, "system_cat");	/* partial last line shown */
	assert_output(ing, "hello from system\nsecond line\nLinux\n"
	    "no newline");
	feed(ing, "{\"type\": \"printf\", \"data\": \"!\\n\"}");
	assert_output(ing, "hello from system\nsecond line\nLinux\n"
	    "no newline!\n");
	ingest_free(ing);

	ing = ING(tv, -1, NULL);
	feed_fixture_lines(ing, "join_exec", 1, 5);
	assert_output(ing, "/bin/echo a b\n/bin/echo,a b\n"
	    "/bin/true x y,z q\"uote\n/bin/true,x,y,z,q\"uote\n");
	ingest_free(ing);

	ing = ING(tv, -1, NULL);
	feed_fixture(ing, "print_non_map");
	assert_output(ing, "1\n-1\nstr \"q\"\n[1,\"two\",-3]\nbpftrace\n1\n"
	    "[7,\"seven\"]\n1\n");
	ingest_free(ing);
}

static void
printf_ignored_without_output_var(void **state)
{
	struct tv	 tv[] = { { "x", BTS_ASSIGN, BTS_V_INT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	uint64_t	 seq = ingest_seq(ing);

	assert_int_equal(feed(ing, "{\"type\": \"printf\", "
	    "\"data\": \"hi\\n\"}"), 1);
	assert_int_equal(ingest_seq(ing), seq);
	assert_output(ing, "");
	feed_fixture(ing, "quiet_flag");
	assert_true(scalar(ing, "x")->i == 1);
	ingest_free(ing);
}

static void
table_retain_lines_keeps_header(void **state)
{
	struct tv	 tv[] = { OUTPUT_VAR };
	struct ingest	*ing = ING(tv, 2, NULL);

	feed_fixture(ing, "printf_csv");
	assert_output(ing, "comm,pid,value\nswapper/0,0,859\n"
	    "swapper/0,0,558\n");
	ingest_free(ing);

	ing = ING(tv, 0, NULL);
	feed_fixture(ing, "printf_csv");
	assert_output(ing, "comm,pid,value\n");
	ingest_free(ing);

	ing = ING(tv, 2, NULL);
	feed_fixture(ing, "large_output");	/* 3000 printf lines */
	assert_output(ing, "line 0,padding-padding-padding-padding,0\n"
	    "line 2998,padding-padding-padding-padding,8988004\n"
	    "line 2999,padding-padding-padding-padding,8994001\n");
	/* a restart prints the header again */
	ingest_reset(ing);
	assert_output(ing, "");
	feed(ing, "{\"type\": \"printf\", \"data\": \"h\\n1\\n2\\n3\\n4\"}");
	assert_output(ing, "h\n2\n3\n4");
	ingest_free(ing);
}

/* the @output text always fits in ingest_output_max bytes (its cap) */
static void
output_text_fits_output_max(void **state)
{
	struct tv		 tv[] = { OUTPUT_VAR };
	struct ingest_limits	 lim = { 0, 0, 1000, 0 };
	struct ingest		*ing;
	struct buf		 out;
	char			 l[160], data[80];
	size_t			 max;

	for (int retain = -1; retain <= 2; retain += 3)
		for (lim.il_output_bytes = 1; lim.il_output_bytes < 64;
		    lim.il_output_bytes += 7) {
			ing = ING(tv, retain, &lim);
			max = ingest_output_max(ing);
			assert_int_equal(max, lim.il_output_bytes);
			for (int i = 0; i < 40; i++) {
				memset(data, 'a' + i % 26, sizeof(data));
				snprintf(l, sizeof(l), "{\"type\": \"printf\", "
				    "\"data\": \"%.*s%s\"}", (i * 7) % 50, data,
				    i % 3 ? "\\n" : "");
				feed(ing, l);
				buf_init(&out, max);
				assert_int_equal(ingest_output_text(ing, &out),
				    0);
				assert_true(out.b_len <= max);
				buf_free(&out);
			}
			ingest_free(ing);
		}
}

static void
output_ring_bounded(void **state)
{
	struct tv		 tv[] = { OUTPUT_VAR };
	struct ingest_limits	 lim = { 0, 100, 4, 0 };
	struct ingest		*ing = ING(tv, -1, &lim);
	struct ing_var		*ov = ingest_var_by_name(ing, "output");
	struct buf		 line;
	char			 l[64], *text;
	uint64_t		 seq = ov->iv_seq;
	int			 i;

	for (i = 0; i < 50; i++) {
		snprintf(l, sizeof(l),
		    "{\"type\": \"printf\", \"data\": \"line %02d\\n\"}", i);
		assert_int_equal(feed(ing, l), 0);
	}
	assert_output(ing, "line 46\nline 47\nline 48\nline 49\n");
	assert_true(ov->iv_seq > seq);
	assert_int_equal(ov->iv_n, 0);	/* the text is not a value */
	ingest_free(ing);

	lim.il_output_bytes = 20;
	lim.il_output_lines = 1000;
	ing = ING(tv, -1, &lim);
	for (i = 0; i < 10; i++) {
		snprintf(l, sizeof(l),
		    "{\"type\": \"printf\", \"data\": \"line %02d\\n\"}", i);
		feed(ing, l);
	}
	assert_output(ing, "line 08\nline 09\n");
	/* one 1 MB printf without newline: the head of it, in 20 bytes */
	buf_init(&line, TEST_BUF_MAX);
	buf_puts(&line, "{\"type\": \"printf\", \"data\": \"");
	for (i = 0; i < 1024 * 1024; i++)
		buf_putc(&line, i % 64 ? 'x' : 'y');
	buf_puts(&line, "\"}");
	assert_int_equal(ingest_line(ing, line.b_data, line.b_len, NULL, 0), 0);
	assert_output(ing, "yxxxxxxxxxxxxxxxxxx");
	feed(ing, "{\"type\": \"printf\", \"data\": \"tail\\nnext\\n\"}");
	assert_output(ing, "next\n");
	buf_free(&line);
	ingest_free(ing);

	/* a cut never splits a UTF-8 character */
	lim.il_output_bytes = 10;
	ing = ING(tv, -1, &lim);
	feed(ing, "{\"type\": \"printf\", \"data\": \"\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\"}");
	text = output(ing);
	assert_string_equal(text, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	free(text);
	ingest_free(ing);
}

/* --- instances ----------------------------------------------------------- */

static uint32_t
id_of(struct ingest *ing, const char *var, const char *name)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);
	size_t		 i;

	for (i = 0; i < v->iv_n; i++)
		if (strcmp(v->iv_names[i], name) == 0)
			return v->iv_ids[i];
	fail_msg("no instance %s", name);
	return 0;
}

static void
instance_ids_stable_across_reset(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");
	uint32_t	 ib, ip, im;

	feed_fixture(ing, "scalar_count");	/* attached_probes */
	feed_fixture_lines(ing, "periodic_print_clear", 2, 2);
	ib = id_of(ing, "c", "bpftrace");
	ip = id_of(ing, "c", "python3");
	im = id_of(ing, "c", "memfd:sealed-91");
	assert_true(ib != ip && ip != im && ib != im);
	assert_true(ib < 3 && ip < 3 && im < 3);
	ingest_reset(ing);
	assert_int_equal(c->iv_n, 0);
	assert_int_equal(ingest_stats(ing)->is_probes, -1);
	assert_int_equal(ingest_stats(ing)->is_lines, 0);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"new\": 1, \"bpftrace\": 2}}}");
	assert_int_equal(id_of(ing, "c", "bpftrace"), ib);
	assert_int_equal(id_of(ing, "c", "new"), 3);
	feed_fixture_lines(ing, "periodic_print_clear", 3, 3);
	assert_int_equal(id_of(ing, "c", "python3"), ip);
	assert_int_equal(id_of(ing, "c", "memfd:sealed-91"), im);
	assert_false(has_inst(ing, "c", "new"));	/* not reused */
	ingest_free(ing);
}

struct seen {
	int	 n;
	int	 bash;
};

static void
count_inst(const char *var, const char *name, uint32_t id, void *arg)
{
	struct seen	*s = arg;

	s->n++;
	if (strcmp(var, "c") == 0 && strcmp(name, "bash") == 0 && id == 7)
		s->bash = 1;
}

static void
seed_instance(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 },
	    { "x", BTS_ASSIGN, BTS_V_INT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct seen	 s = { 0, 0 };

	assert_int_equal(ingest_seed_instance(ing, "c", "bash", 7), 0);
	assert_int_equal(ingest_seed_instance(ing, "c", "bash", 7), 0);
	assert_int_equal(ingest_seed_instance(ing, "c", "bash", 8), -1);
	assert_int_equal(ingest_seed_instance(ing, "c", "zsh", 7), -1);
	assert_int_equal(ingest_seed_instance(ing, "c", "big", 0x80000000u),
	    -1);
	assert_int_equal(ingest_seed_instance(ing, "nope", "bash", 1), -1);
	assert_int_equal(ingest_seed_instance(ing, "x", "bash", 1), -1);
	assert_int_equal(ingest_seed_instance(ing, "c", "sh", 2), 0);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"python\": 1, \"bash\": 2, \"sh\": 3}}}");
	assert_int_equal(id_of(ing, "c", "bash"), 7);
	assert_int_equal(id_of(ing, "c", "sh"), 2);
	assert_int_equal(id_of(ing, "c", "python"), 8);	/* past the seed */
	ingest_foreach_instance(ing, count_inst, &s);
	assert_int_equal(s.n, 3);
	assert_true(s.bash);
	ingest_free(ing);
}

static void
max_instances_drops(void **state)
{
	struct tv		 tv[] = {
	    { "byid", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest_limits	 lim = { 5, 0, 0, 0 };
	struct ingest		*ing = ING(tv, -1, &lim);
	struct ing_var		*v = ingest_var_by_name(ing, "byid");

	feed_fixture(ing, "map_int_key");	/* 23 keys */
	assert_int_equal(v->iv_n, 5);
	assert_int_equal(v->iv_dropped, 18);
	assert_string_equal(v->iv_names[0], "0");	/* first 5 by name */
	assert_string_equal(v->iv_names[4], "186");
	assert_int_equal(inst_u(ing, "byid", "100"), 1);
	assert_int_equal(inst_u(ing, "byid", "186"), 12);
	/* known names still update; new ones still dropped */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@byid\": "
	    "{\"0\": 99, \"zzz\": 1}}}");
	assert_int_equal(v->iv_n, 1);
	assert_int_equal(inst_u(ing, "byid", "0"), 99);
	assert_int_equal(v->iv_dropped, 19);
	ingest_free(ing);
}

static void
identical_reprint_keeps_seq(void **state)
{
	struct tv	 tv[] = { { "a", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "b", BTS_ASSIGN, BTS_V_INT, 1 },
	    { "h", BTS_HIST, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*b = ingest_var_by_name(ing, "b");
	uint64_t	 seq, bseq;

	feed_fixture_lines(ing, "sigusr1_dump", 1, 4);
	seq = ingest_seq(ing);
	bseq = b->iv_seq;
	feed_fixture_lines(ing, "sigusr1_dump", 5, 0);	/* same values */
	assert_int_equal(ingest_seq(ing), seq);
	assert_int_equal(b->iv_seq, bseq);
	assert_true(inst_i(ing, "b", "k") == 8);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@b\": {\"k\": 9}}}");
	assert_true(ingest_seq(ing) > seq);
	assert_true(b->iv_seq > bseq);
	ingest_free(ing);
}

/* --- one pass, reused order ---------------------------------------------- */

/* names of @var joined with '|', for order checks; caller frees */
static char *
names_of(struct ingest *ing, const char *var)
{
	struct ing_var	*v = ingest_var_by_name(ing, var);
	struct buf	 b;
	size_t		 i;

	buf_init(&b, TEST_BUF_MAX);
	for (i = 0; i < v->iv_n; i++)
		buf_printf(&b, "%s%s", i ? "|" : "", v->iv_names[i]);
	return buf_take(&b, NULL);
}

static void
assert_names(struct ingest *ing, const char *var, const char *want)
{
	char	*got = names_of(ing, var);

	assert_string_equal(got, want);
	free(got);
}

static void
same_names_reprint_keeps_order_and_ids(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");
	uint64_t	 seq, iseq = c->iv_iseq;

	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 1, \"a\": 2, \"c\": 3}}}"), 0);
	assert_names(ing, "c", "a|b|c");
	assert_true(c->iv_iseq != iseq);	/* the first names, too */
	/* new names get ids in instance order */
	assert_int_equal(id_of(ing, "c", "a"), 0);
	assert_int_equal(id_of(ing, "c", "b"), 1);
	assert_int_equal(id_of(ing, "c", "c"), 2);
	seq = c->iv_seq;
	iseq = c->iv_iseq;
	/* the same names in another order: values move, order and ids stay */
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"c\": 30, \"a\": 10, \"b\": 20}}}"), 0);
	assert_names(ing, "c", "a|b|c");
	assert_int_equal(c->iv_ids[0], 0);
	assert_int_equal(c->iv_ids[2], 2);
	assert_int_equal(inst_u(ing, "c", "a"), 10);
	assert_int_equal(inst_u(ing, "c", "b"), 20);
	assert_int_equal(inst_u(ing, "c", "c"), 30);
	assert_true(c->iv_seq > seq);
	assert_int_equal(c->iv_iseq, iseq);
	/* and again, same values in yet another order: nothing changed */
	seq = ingest_seq(ing);
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 20, \"c\": 30, \"a\": 10}}}"), 0);
	assert_int_equal(ingest_seq(ing), seq);
	/* the same in the generic path's shape (member order, escapes) */
	assert_int_equal(feed(ing, "{\"data\": {\"@c\": {\"\\u0062\": 21, "
	    "\"c\": 31, \"a\": 11}}, \"type\": \"map\"}"), 0);
	assert_names(ing, "c", "a|b|c");
	assert_int_equal(inst_u(ing, "c", "b"), 21);
	assert_int_equal(c->iv_iseq, iseq);
	ingest_free(ing);
}

static void
changed_names_sorted_again(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");
	uint64_t	 iseq;

	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 1, \"a\": 2, \"c\": 3}}}");
	iseq = c->iv_iseq;
	/* one gone, one new */
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"d\": 4, \"a\": 5}}}"), 0);
	assert_names(ing, "c", "a|d");
	assert_int_equal(id_of(ing, "c", "d"), 3);
	assert_true(c->iv_iseq != iseq);
	/* one back (its old id), same count as before but other names */
	iseq = c->iv_iseq;
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"d\": 1, \"b\": 1}}}"), 0);
	assert_names(ing, "c", "b|d");
	assert_int_equal(id_of(ing, "c", "b"), 1);
	assert_true(c->iv_iseq != iseq);
	/* a subset, and then the empty map */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": {\"d\": 2}}}");
	assert_names(ing, "c", "d");
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": {}}}");
	assert_int_equal(c->iv_n, 0);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": {\"c\": 9}}}");
	assert_names(ing, "c", "c");
	assert_int_equal(id_of(ing, "c", "c"), 2);
	ingest_free(ing);
}

static void
duplicates_folded_on_every_path(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 },
	    { "x", BTS_ASSIGN, BTS_V_INT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");

	/* new names, repeated */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"a\": 1, \"b\": 2, \"a\": 3, \"b\": 1, \"a\": 1}}}");
	assert_names(ing, "c", "a|b");
	assert_int_equal(inst_u(ing, "c", "a"), 5);
	assert_int_equal(inst_u(ing, "c", "b"), 3);
	/* known names, the same set: summed in place */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 1, \"a\": 1, \"b\": 10}}}");
	assert_names(ing, "c", "a|b");
	assert_int_equal(inst_u(ing, "c", "b"), 11);
	assert_int_equal(inst_u(ing, "c", "a"), 1);
	/* a known name twice and a new one */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"b\": 1, \"z\": 1, \"b\": 1}}}");
	assert_names(ing, "c", "b|z");
	assert_int_equal(inst_u(ing, "c", "b"), 2);
	/* the same set as before, but counted twice: still 2 instances */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"z\": 1, \"z\": 1}}}");
	assert_names(ing, "c", "z");
	assert_int_equal(c->iv_n, 1);
	assert_int_equal(inst_u(ing, "c", "z"), 2);
	/* not a count: the last one wins, on both paths */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@x\": "
	    "{\"a\": 1, \"b\": 2, \"a\": -5}}}");
	assert_true(inst_i(ing, "x", "a") == -5);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@x\": "
	    "{\"b\": 7, \"a\": 1, \"a\": 2}}}");
	assert_true(inst_i(ing, "x", "a") == 2);
	assert_true(inst_i(ing, "x", "b") == 7);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@x\": "
	    "{\"b\": 7, \"\\u0061\": 3, \"a\": \"s\"}}}");
	/* "s" does not fit the INT variable: dropped, the other "a" stays */
	assert_true(inst_i(ing, "x", "a") == 3);
	assert_true(inst_i(ing, "x", "b") == 7);
	assert_int_equal(ingest_stats(ing)->is_type_errors, 1);
	ingest_free(ing);
}

static void
bucket_order_and_name_order_not_mixed(void **state)
{
	struct tv	 tv[] = { { "h", BTS_HIST, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	feed(ing, "{\"type\": \"hist\", \"data\": {\"@h\": ["
	    "{\"min\": 2, \"max\": 3, \"count\": 1}, "
	    "{\"min\": 10, \"max\": 15, \"count\": 2}]}}");
	assert_names(ing, "h", "2-3|10-15");
	/* the same names printed as a map: strcmp order */
	feed(ing, "{\"type\": \"map\", \"data\": {\"@h\": "
	    "{\"2-3\": 1, \"10-15\": 2}}}");
	assert_names(ing, "h", "10-15|2-3");
	/* and back */
	feed(ing, "{\"type\": \"hist\", \"data\": {\"@h\": ["
	    "{\"min\": 10, \"max\": 15, \"count\": 2}, "
	    "{\"min\": 2, \"max\": 3, \"count\": 1}]}}");
	assert_names(ing, "h", "2-3|10-15");
	ingest_free(ing);
}

/* many prints with built and escaped names: the scratch is reused */
static void
scratch_reused_across_prints(void **state)
{
	struct tv	 tv[] = { { "hk", BTS_HIST, BTS_V_UINT, 1 },
	    { "k", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	char		 line[512], name[64];
	int		 i, j;

	for (i = 0; i < 300; i++) {
		snprintf(line, sizeof(line), "{\"type\": \"hist\", \"data\": "
		    "{\"@hk\": {\"k\\u00e9%d\": [{\"max\": -1, \"count\": %d}, "
		    "{\"min\": 0, \"max\": 0, \"count\": 1}], \"p\": "
		    "[{\"min\": %d, \"count\": 2}]}}}", i % 7, i, i % 3);
		assert_int_equal(feed(ing, line), 0);
		snprintf(name, sizeof(name), "k\xc3\xa9%d:-inf--1", i % 7);
		assert_int_equal(inst_u(ing, "hk", name), i);
		snprintf(name, sizeof(name), "p:%d-inf", i % 3);
		assert_int_equal(inst_u(ing, "hk", name), 2);
		assert_int_equal(ingest_var_by_name(ing, "hk")->iv_n, 3);
		snprintf(line, sizeof(line), "{\"type\": \"map\", \"data\": "
		    "{\"@k\": {\"a\\tb\": %d, \"c\": 1}}}", i);
		assert_int_equal(feed(ing, line), 0);
		assert_int_equal(inst_u(ing, "k", "a\tb"), i);
	}
	/* names the table gave out stay valid through all that */
	for (j = 0; j < 7; j++) {
		snprintf(name, sizeof(name), "k\xc3\xa9%d:0-0", j);
		assert_true(ingest_seed_instance(ing, "hk", name, 999) == -1);
	}
	assert_int_equal(ingest_var_known(ingest_var_by_name(ing, "hk")),
	    7 * 2 + 3);
	ingest_free(ing);
}

static void
long_and_many_names(void **state)
{
	struct tv	 tv[] = { { "c", BTS_COUNT, BTS_V_UINT, 1 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct ing_var	*c = ingest_var_by_name(ing, "c");
	struct buf	 line;
	const char	*first;
	char		*big;
	size_t		 n = 200 * 1024, i, r;

	/* a 200 KiB name, bigger than a chunk of the name pool */
	big = malloc(n + 1);
	assert_non_null(big);
	for (i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	buf_init(&line, TEST_BUF_MAX);
	buf_printf(&line, "{\"type\": \"map\", \"data\": {\"@c\": "
	    "{\"%s\": 1, \"short\": 2}}}", big);
	assert_int_equal(ingest_line(ing, line.b_data, line.b_len, NULL, 0), 0);
	assert_int_equal(inst_u(ing, "c", big), 1);
	first = c->iv_names[0];
	/* 5,000 names of 300 bytes, in three orders */
	for (r = 0; r < 3; r++) {
		buf_reset(&line);
		buf_puts(&line, "{\"type\": \"map\", \"data\": {\"@c\": {");
		for (i = 0; i < 5000; i++)
			buf_printf(&line, "%s\"%0300zu\": %zu", i ? ", " : "",
			    r == 1 ? 4999 - i : (i * 7919) % 5000, i + r);
		buf_printf(&line, ", \"%s\": 3}}}", big);
		assert_int_equal(ingest_line(ing, line.b_data, line.b_len,
		    NULL, 0), 0);
		assert_int_equal(c->iv_n, 5001);
		for (i = 1; i < c->iv_n; i++)
			assert_true(strcmp(c->iv_names[i - 1],
			    c->iv_names[i]) < 0);
	}
	assert_int_equal(inst_u(ing, "c", big), 3);
	assert_int_equal(strlen(first), n);	/* still the table's copy */
	assert_int_equal(ingest_var_known(c), 5002);
	buf_free(&line);
	free(big);
	ingest_free(ing);
}

/* the fast path and the generic path read a print the same way */
static void
fast_and_generic_paths_agree(void **state)
{
	static const char *const pairs[][2] = {
		{ "{\"type\": \"map\", \"data\": {\"@m\": {\"x\": -1, "
		    "\"y\": 9223372036854775808, \"z\": 0}}}",
		  "{\"data\":{\"@m\":{\"\\u0078\":-1,\"y\":9223372036854775808,"
		    "\"z\":0}},\"type\":\"map\"}" },
		{ "{\"type\": \"hist\", \"data\": {\"@h\": [{\"max\": -1, "
		    "\"count\": 1}, {\"min\": 0, \"max\": 0, \"count\": 2}, "
		    "{\"min\": 1, \"count\": 3}]}}",
		  "{\"type\": \"hist\", \"data\": {\"@h\": [{\"max\": -1, "
		    "\"count\": 1, \"x\": 1}, {\"min\": 0, \"max\": 0, "
		    "\"count\": \"2\"}, {\"min\": 1, \"count\": 3}]}}" },
		{ "{\"type\": \"stats\", \"data\": {\"@s\": {\"k\": {\"count\": "
		    "2, \"average\": 3, \"total\": 6}}}}",
		  "{\"type\": \"stats\", \"data\": {\"@s\": {\"k\": {\"count\": "
		    "2, \"average\": 3, \"total\": 6}}}, \"x\": 1}" },
	};
	struct tv	 tv[] = { { "m", BTS_ASSIGN, BTS_V_UINT, 1 },
	    { "h", BTS_HIST, BTS_V_UINT, 0 },
	    { "s", BTS_STATS, BTS_V_INT, 1 } };
	struct ingest	*a = ING(tv, -1, NULL), *b = ING(tv, -1, NULL);
	struct ing_var	*va, *vb;
	size_t		 i, k, j;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		assert_int_equal(feed(a, pairs[i][0]), 0);
		assert_int_equal(feed(b, pairs[i][1]), 0);
	}
	assert_int_equal(ingest_seq(a), ingest_seq(b));
	for (k = 0; k < ingest_nvars(a); k++) {
		va = ingest_var(a, k);
		vb = ingest_var(b, k);
		assert_int_equal(va->iv_n, vb->iv_n);
		assert_true(va->iv_n > 0);
		for (j = 0; j < va->iv_n; j++) {
			assert_string_equal(va->iv_names[j], vb->iv_names[j]);
			assert_int_equal(va->iv_ids[j], vb->iv_ids[j]);
			assert_int_equal(va->iv_vals[j].t, vb->iv_vals[j].t);
			assert_true(va->iv_vals[j].u == vb->iv_vals[j].u);
		}
	}
	assert_true(inst_u(a, "m", "y") == 9223372036854775808ULL);
	assert_true(inst_u(a, "m", "x") == UINT64_MAX);	/* 0.17's u64 */
	assert_names(a, "h", "-inf--1|0-0|1-inf");
	assert_names(a, "s", "k:average|k:count|k:total");
	ingest_free(a);
	ingest_free(b);
}

/* every number text reads the same on the fast path as on the generic one */
static void
fast_path_numbers_match_generic(void **state)
{
	static const char *const nums[] = { "0", "-0", "7", "-7", "00", "01",
	    "-", "--1", "1e5", "1E5", "12345678e1", "1234567e-1", "1.5",
	    "12345678.5", "123456789012", "1234567890123456789",
	    "9223372036854775807", "9223372036854775808",
	    "-9223372036854775808", "-9223372036854775809",
	    "18446744073709551615", "18446744073709551616",
	    "99999999999999999999", "123456789012345678901", "1x", "12345678x",
	    "1234567:", "12345678:", "1 ", "1\t", "+1", "0x10", "1/",
	    "4294967296", "12345678901234567890" };
	struct tv	 tv[] = { { "s", BTS_ASSIGN, BTS_V_STRING, 0 },
	    { "m", BTS_ASSIGN, BTS_V_INT, 1 } };
	struct ingest	*a = ING(tv, -1, NULL), *b = ING(tv, -1, NULL);
	char		 la[256], lb[256], ea[256], eb[256];
	size_t		 i;
	int		 ra, rb;

	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		snprintf(la, sizeof(la), "{\"type\": \"map\", \"data\": "
		    "{\"@s\": %s}}", nums[i]);
		snprintf(lb, sizeof(lb), "{\"type\": \"map\", \"data\": "
		    "{\"@s\": %s}, \"x\": 0}", nums[i]);
		ea[0] = eb[0] = '\0';
		ra = ingest_line(a, la, strlen(la), ea, sizeof(ea));
		rb = ingest_line(b, lb, strlen(lb), eb, sizeof(eb));
		assert_int_equal(ra, rb);
		assert_string_equal(ea, eb);
		if (ra == 0)
			assert_string_equal(scalar(a, "s")->s,
			    scalar(b, "s")->s);
		/* and as a map value, next to a key */
		snprintf(la, sizeof(la), "{\"type\": \"map\", \"data\": "
		    "{\"@m\": {\"k\": %s, \"j\": 1}}}", nums[i]);
		snprintf(lb, sizeof(lb), "{\"type\": \"map\", \"data\": "
		    "{\"@m\": {\"\\u006b\": %s, \"j\": 1}}}", nums[i]);
		ra = ingest_line(a, la, strlen(la), ea, sizeof(ea));
		rb = ingest_line(b, lb, strlen(lb), eb, sizeof(eb));
		assert_int_equal(ra, rb);
		/* a number that does not fit INT is dropped on both */
		assert_int_equal(has_inst(a, "m", "k"), has_inst(b, "m", "k"));
		if (ra == 0 && has_inst(a, "m", "k"))
			assert_true(inst_i(a, "m", "k") == inst_i(b, "m", "k"));
	}
	assert_true(ingest_stats(a)->is_type_errors > 0);
	assert_int_equal(ingest_stats(a)->is_type_errors,
	    ingest_stats(b)->is_type_errors);
	assert_true(ingest_stats(a)->is_bad_lines > 0);
	assert_int_equal(ingest_stats(a)->is_bad_lines,
	    ingest_stats(b)->is_bad_lines);
	ingest_free(a);
	ingest_free(b);
}

/* --- other messages ------------------------------------------------------ */

static void
attached_probes(void **state)
{
	struct tv	 tv[] = { { "x", BTS_COUNT, BTS_V_UINT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);

	assert_int_equal(ingest_stats(ing)->is_probes, -1);
	feed_fixture(ing, "quiet_flag");	/* -q: no attached_probes */
	assert_int_equal(ingest_stats(ing)->is_probes, -1);
	feed_fixture(ing, "kprobe_unavailable");
	assert_int_equal(ingest_stats(ing)->is_probes, 2);
	feed_fixture(ing, "hist_zeroed");
	assert_int_equal(ingest_stats(ing)->is_probes, 1);
	/* 0.9.2: top level; 0.24: "count" too; decimal string */
	assert_int_equal(feed(ing, "{\"type\": \"attached_probes\", "
	    "\"probes\": 5}"), 0);
	assert_int_equal(ingest_stats(ing)->is_probes, 5);
	assert_int_equal(feed(ing, "{\"type\": \"attached_probes\", "
	    "\"count\": 1, \"data\": {\"probes\": \"6\"}}"), 0);
	assert_int_equal(ingest_stats(ing)->is_probes, 6);
	assert_int_equal(feed(ing, "{\"type\": \"attached_probes\", "
	    "\"data\": {}}"), -1);
	ingest_free(ing);
}

static void
lost_events_summed(void **state)
{
	struct tv	 tv[] = { OUTPUT_VAR };
	struct ingest	*ing = ING(tv, 0, NULL);
	const char	*key = "\"events\": ";
	char		*text, *p;
	size_t		 len, n = 0;
	uint64_t	 sum = 0;

	/* counted independently: every "events": N in the raw text */
	text = fixture("lost_events", &len);
	for (p = strstr(text, key); p != NULL; p = strstr(p, key)) {
		p += strlen(key);
		sum += strtoull(p, NULL, 10);
		n++;
	}
	free(text);
	assert_int_equal(n, 4753);	/* as the fixture README says */
	assert_int_equal(sum, 32152);	/* awk over the file agrees */
	feed_fixture(ing, "lost_events");
	assert_int_equal(ingest_stats(ing)->is_lost_events, sum);
	assert_int_equal(ingest_stats(ing)->is_bad_lines, 0);
	assert_int_equal(feed(ing, "{\"type\": \"lost_events\", "
	    "\"events\": 8}"), 0);	/* 0.9.2 */
	assert_int_equal(ingest_stats(ing)->is_lost_events, sum + 8);
	ingest_free(ing);
}

static void
helper_error_counted(void **state)
{
	struct tv	 tv[] = { { "v", BTS_ASSIGN, BTS_V_INT, 0 },
	    OUTPUT_VAR };
	struct ingest	*ing = ING(tv, -1, NULL);
	const struct ingest_stats *st = ingest_stats(ing);

	feed_fixture(ing, "helper_error_k");
	assert_int_equal(st->is_helper_errors, 2);
	assert_int_equal(st->is_bad_lines, 0);
	assert_non_null(strstr(st->is_last_error, "probe_read_str"));
	assert_non_null(strstr(st->is_last_error, "-14"));
	assert_non_null(strstr(st->is_last_error, "line 2 col 52"));
	assert_true(scalar(ing, "v")->i == 0);
	assert_output(ing, "|\n");
	/* 0.24+ runtime_error and errorf carry a msg */
	assert_int_equal(feed(ing, "{\"type\": \"runtime_error\", \"msg\": "
	    "\"division by zero\", \"filename\": \"s.bt\", \"line\": 3, "
	    "\"col\": 9}"), 0);
	assert_non_null(strstr(st->is_last_error, "division by zero"));
	assert_non_null(strstr(st->is_last_error, "runtime_error"));
	assert_int_equal(st->is_helper_errors, 2);
	ingest_free(ing);
}

static void
unknown_types_and_vars_counted(void **state)
{
	struct tv	 tv[] = { { "a", BTS_ASSIGN, BTS_V_INT, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	const struct ingest_stats *st = ingest_stats(ing);

	assert_int_equal(feed(ing, "{\"type\": \"tseries\", \"data\": []}"), 1);
	assert_int_equal(st->is_unknown_types, 1);
	assert_int_equal(feed(ing, "  \t\r "), 1);
	assert_int_equal(feed(ing, ""), 1);
	assert_int_equal(st->is_lines, 1);
	feed_fixture(ing, "sigusr1_dump");	/* @b and @h are not known */
	assert_int_equal(st->is_unknown_vars, 4);
	assert_true(scalar(ing, "a")->i == 7);
	assert_int_equal(st->is_bad_lines, 0);
	/* bare '@' is "root"; member order does not matter */
	ingest_free(ing);
	{
		struct tv	 tr[] = {
		    { "root", BTS_ASSIGN, BTS_V_INT, 0 } };

		ing = ING(tr, -1, NULL);
		assert_int_equal(feed(ing, "{\"data\": {\"@\": 3}, "
		    "\"type\": \"map\"}"), 0);
		assert_true(scalar(ing, "root")->i == 3);
		ingest_free(ing);
	}
}

/* --- hostile input ------------------------------------------------------- */

/*
 * Found by tests/fuzz/fuzz_ingest (input: tests/fuzz/regressions/
 * ingest/hist-for-scalar): a "hist" print for a variable the analysis found scalar
 * (@h = 1) read an empty bucket list into it and then its first entry,
 * which did not exist (a NULL dereference). Now refused, like stats.
 */
static void
hist_print_for_scalar_refused(void **state)
{
	static const struct tv	 tvs[] = {
		{ "h", BTS_ASSIGN, BTS_V_INT, 0 },
	};
	struct ingest	*ing = ING(tvs, -1, NULL);
	struct ing_var	*v = ingest_var_by_name(ing, "h");

	assert_int_equal(feed(ing, "{\"type\": \"hist\", \"data\": "
	    "{\"@h\": []}}"), -1);
	assert_int_equal(feed(ing, "{\"type\": \"hist\", \"data\": "
	    "{\"@h\": [{\"min\": 1, \"max\": 1, \"count\": 3}]}}"), -1);
	assert_int_equal(feed(ing, "{\"type\": \"hist\", \"data\": "
	    "{\"@h\": {\"k\": []}}}"), -1);
	assert_int_equal(ingest_stats(ing)->is_bad_lines, 3);
	assert_int_equal(v->iv_n, 0);
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@h\": 5}}"), 0);
	assert_int_equal(v->iv_n, 1);
	assert_int_equal(v->iv_vals[0].i, 5);
	ingest_free(ing);
}

static void
garbage_lines_rejected(void **state)
{
	static const char *const bad[] = {
		"{",
		"}",
		"{\"type\": \"map\"",
		"{\"type\": \"map\", \"data\": {\"@a\": 1}}x",
		"{\"type\": \"map\", \"data\": {\"@a\": 1}} {}",
		"{\"type\": \"map\", \"data\": {\"@a\": 1},}",
		"{\"type\": \"map\" \"data\": {}}",
		"{\"type\" \"map\"}",
		"{type: \"map\"}",
		"{'type': 'map'}",
		"[\"type\", \"map\"]",
		"\"map\"",
		"42",
		"{\"data\": {\"@a\": 1}}",
		"{\"type\": 7, \"data\": {}}",
		"{\"type\": \"map\", \"data\": [1]}",
		"{\"type\": \"map\", \"data\": {\"@a\": 01}}",
		"{\"type\": \"map\", \"data\": {\"@a\": 1.}}",
		"{\"type\": \"map\", \"data\": {\"@a\": -}}",
		"{\"type\": \"map\", \"data\": {\"@a\": +1}}",
		"{\"type\": \"map\", \"data\": {\"@a\": 1e}}",
		"{\"type\": \"map\", \"data\": {\"@a\": .5}}",
		"{\"type\": \"map\", \"data\": {\"@a\": 1e999}}",
		"{\"type\": \"map\", \"data\": {\"@a\": 18446744073709551616}}",
		"{\"type\": \"map\", \"data\": {\"@a\": tru}}",
		"{\"type\": \"map\", \"data\": {\"@a\": NaN}}",
		"{\"type\": \"map\", \"data\": {\"@a\": \"x\\q\"}}",
		"{\"type\": \"map\", \"data\": {\"@a\": \"\\u12\"}}",
		"{\"type\": \"map\", \"data\": {\"@a\": \"\\u12G4\"}}",
		"{\"type\": \"map\", \"data\": {\"@a\": \"tab\there\"}}",
		"{\"type\": \"map\", \"data\": {\"@a\": \"open}}",
		"{\"type\": \"map\", \"data\": {\"@a\": \"x\\",
		"{\"type\": \"map\", \"data\": {\"@k\": 1}}",	/* not keyed */
		"{\"type\": \"hist\", \"data\": {\"@h\": 5}}",
		"{\"type\": \"hist\", \"data\": {\"@h\": [{\"min\": 1}]}}",
		"{\"type\": \"hist\", \"data\": {\"@h\": "
		    "[{\"count\": \"x\"}]}}",
		"{\"type\": \"hist\", \"data\": {\"@h\": [1, 2]}}",
		"{\"type\": \"stats\", \"data\": {\"@a\": {\"count\": 1}}}",
		"{\"type\": \"printf\", \"data\": 5}",
		"{\"type\": \"printf\"}",
		"{\"type\": \"lost_events\", \"data\": {\"events\": \"many\"}}",
		/* a byte order mark */
		"\xef\xbb\xbf{\"type\": \"map\", \"data\": {}}",
	};
	struct tv	 tv[] = { { "a", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "k", BTS_ASSIGN, BTS_V_INT, 1 },
	    { "h", BTS_HIST, BTS_V_UINT, 0 }, OUTPUT_VAR };
	struct ingest	*ing = ING(tv, -1, NULL);
	const struct ingest_stats *st = ingest_stats(ing);
	char		 err[256];
	size_t		 i, n = sizeof(bad) / sizeof(bad[0]);
	const char	 nul[] =
	    "{\"type\": \"map\", \"data\": {\"@a\": \"a\0b\"}}";

	assert_true(n >= 20);
	feed(ing, "{\"type\": \"map\", \"data\": {\"@a\": 1}}");
	for (i = 0; i < n; i++) {
		err[0] = '\0';
		if (ingest_line(ing, bad[i], strlen(bad[i]), err,
		    sizeof(err)) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
		assert_string_equal(st->is_last_error, err);
	}
	assert_int_equal(ingest_line(ing, nul, sizeof(nul) - 1, err,
	    sizeof(err)), -1);
	assert_int_equal(ingest_line(ing, "\0", 1, err, sizeof(err)), -1);
	assert_int_equal(st->is_bad_lines, n + 2);
	assert_true(scalar(ing, "a")->i == 1);	/* nothing was changed */
	assert_int_equal(ingest_line(ing, "x", 1, NULL, 0), -1);
	ingest_free(ing);
}

static void
deep_nesting_rejected(void **state)
{
	struct tv	 tv[] = { OUTPUT_VAR };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct buf	 b;
	int		 i;

	buf_init(&b, TEST_BUF_MAX);
	for (i = 0; i < 10000; i++)
		buf_putc(&b, '[');
	assert_int_equal(ingest_line(ing, b.b_data, b.b_len, NULL, 0), -1);
	assert_non_null(strstr(ingest_stats(ing)->is_last_error, "deeper"));
	/* the envelope is level 1, so data may nest ING_MAX_DEPTH - 1 */
	buf_reset(&b);
	buf_puts(&b, "{\"type\": \"value\", \"data\": ");
	for (i = 0; i < ING_MAX_DEPTH - 1; i++)
		buf_putc(&b, '[');
	for (i = 0; i < ING_MAX_DEPTH - 1; i++)
		buf_putc(&b, ']');
	buf_putc(&b, '}');
	assert_int_equal(ingest_line(ing, b.b_data, b.b_len, NULL, 0), 0);
	buf_reset(&b);
	buf_puts(&b, "{\"type\": \"value\", \"data\": ");
	for (i = 0; i < ING_MAX_DEPTH; i++)
		buf_putc(&b, '[');
	for (i = 0; i < ING_MAX_DEPTH; i++)
		buf_putc(&b, ']');
	buf_putc(&b, '}');
	assert_int_equal(ingest_line(ing, b.b_data, b.b_len, NULL, 0), -1);
	buf_free(&b);
	ingest_free(ing);
}

static void
huge_numbers_rejected(void **state)
{
	struct tv	 tv[] = { { "a", BTS_ASSIGN, BTS_V_STRING, 0 } };
	struct ingest	*ing = ING(tv, -1, NULL);
	struct buf	 b;
	int		 i;

	buf_init(&b, TEST_BUF_MAX);
	buf_puts(&b, "{\"type\": \"map\", \"data\": {\"@a\": ");
	for (i = 0; i < 400; i++)
		buf_putc(&b, '9');
	buf_puts(&b, "}}");
	assert_int_equal(ingest_line(ing, b.b_data, b.b_len, NULL, 0), -1);
	assert_non_null(strstr(ingest_stats(ing)->is_last_error, "range"));
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@a\": 1e-99999}}"), 0);	/* underflows to 0: finite */
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@a\": -1E+999999999999999999999}}"), -1);
	assert_int_equal(feed(ing, "{\"type\": \"map\", \"data\": "
	    "{\"@a\": 1.25e2}}"), 0);
	assert_string_equal(scalar(ing, "a")->s, "125");
	buf_free(&b);
	ingest_free(ing);
}

/* xorshift, so the run is the same every time */
static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
any_bytes_are_safe(void **state)
{
	static const char *const names[] = { "hist_keyed", "stats_keyed",
	    "keys_special_strings", "printf_special_chars", "tuple_value",
	    "helper_error_k", "ustack_keys", "print_non_map" };
	struct tv	 tv[] = { { "hk", BTS_HIST, BTS_V_UINT, 1 },
	    { "st", BTS_STATS, BTS_V_INT, 1 }, { "av", BTS_AVG, BTS_V_INT, 1 },
	    { "cnt", BTS_COUNT, BTS_V_UINT, 1 },
	    { "k", BTS_COUNT, BTS_V_UINT, 1 },
	    { "v", BTS_ASSIGN, BTS_V_INT, 1 },
	    { "t", BTS_ASSIGN, BTS_V_INT, 0 },
	    { "tm", BTS_ASSIGN, BTS_V_INT, 1 },
	    { "us", BTS_COUNT, BTS_V_UINT, 2 },
	    OUTPUT_VAR };
	struct ingest	*ing = ING(tv, 3, NULL);
	char		*text, *p, *nl, *mut;
	size_t		 len, n, cut, i, k;
	uint32_t	 seed = 12345;

	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		text = fixture(names[k], &len);
		for (p = text; p < text + len; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(text + len - p));
			if (nl == NULL)
				nl = text + len;
			n = (size_t)(nl - p);
			/* every truncation of the line */
			for (cut = 0; cut < n && cut < 4000; cut++)
				ingest_line(ing, p, cut, NULL, 0);
			/* random byte flips, in a copy so ASan sees the end */
			for (i = 0; i < 200 && n > 0; i++) {
				mut = malloc(n);
				memcpy(mut, p, n);
				mut[rnd(&seed) % n] = (char)rnd(&seed);
				mut[rnd(&seed) % n] = (char)rnd(&seed);
				ingest_line(ing, mut, n, NULL, 0);
				free(mut);
			}
		}
		free(text);
	}
	for (i = 0; i < 2000; i++) {
		char	 junk[64];

		for (n = 0; n < sizeof(junk); n++)
			junk[n] = (char)rnd(&seed);
		ingest_line(ing, junk, rnd(&seed) % sizeof(junk), NULL, 0);
	}
	assert_true(ingest_stats(ing)->is_bad_lines > 0);
	ingest_reset(ing);
	ingest_free(ing);
}

/* --- every fixture ------------------------------------------------------- */

/*
 * The bts_info for a fixture, from a simple scan of its text: every
 * "@name" right after "data": {" of a map/hist/stats line, typed from
 * the first byte of its value. Plus @output.
 */
static struct bts_info *
info_from_text(const char *text)
{
	struct tv	 tv[BTS_MAX_VARS + 1];
	char		 names[BTS_MAX_VARS][64];
	const char	*p, *q, *eol, *v;
	size_t		 n = 0, i, len;
	int		 hist, stats;

	for (p = text; (p = strstr(p, "\"data\": {\"@")) != NULL; p = eol) {
		eol = strchr(p, '\n') ? strchr(p, '\n') : p + strlen(p);
		for (q = p; q > text && q[-1] != '\n'; q--)
			;
		hist = strncmp(q, "{\"type\": \"hist\"", 15) == 0;
		stats = strncmp(q, "{\"type\": \"stats\"", 16) == 0;
		if (!hist && !stats && strncmp(q, "{\"type\": \"map\"", 14))
			continue;
		p += strlen("\"data\": {\"@");
		len = strcspn(p, "\"");
		for (i = 0; i < n && strncmp(names[i], p, len); i++)
			;
		if (i < n || n == BTS_MAX_VARS || len >= 64)
			continue;
		memcpy(names[n], p, len);
		names[n][len] = '\0';
		v = p + len + 3;	/* past "@name": */
		tv[n].name = names[n][0] ? names[n] : "root";
		tv[n].nkeys = *v == '{' && !stats ? 1 : 0;
		tv[n].vt = hist ? BTS_V_UINT : *v == '"' || *v == '[' ?
		    BTS_V_STRING : BTS_V_INT;
		tv[n].kind = hist ? BTS_HIST : stats ?
		    (*v == '{' ? BTS_STATS : BTS_AVG) : BTS_ASSIGN;
		if (stats && *v == '{' && strncmp(v, "{\"count\"", 8))
			tv[n].nkeys = 1;
		n++;
	}
	tv[n].name = "output";
	tv[n].kind = BTS_OUTPUT;
	tv[n].vt = BTS_V_STRING;
	tv[n].nkeys = 0;
	return info_new(tv, n + 1, -1);
}

static void
every_fixture_replays_without_bad_lines(void **state)
{
	struct bts_info	*info;
	struct ingest	*ing;
	struct dirent	*de;
	DIR		*d;
	char		*dir, *text, name[256];
	size_t		 len, nfix = 0, nlines;
	const char	*p;

	if ((dir = fixture_path("")) == NULL || (d = opendir(dir)) == NULL) {
		free(dir);
		print_message("skipped: no fixture directory (BT_SHARED)\n");
		skip();
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 8 || strcmp(de->d_name + len - 7, ".stdout") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 7),
		    de->d_name);
		text = fixture(name, &len);
		info = info_from_text(text);
		ing = ingest_new(info, NULL);
		info_free(info);
		assert_non_null(ing);
		feed_fixture(ing, name);
		for (nlines = 0, p = text; *p; p++)	/* non-blank lines */
			if (*p == '{' && (p == text || p[-1] == '\n'))
				nlines++;
		if (ingest_stats(ing)->is_bad_lines != 0)
			fail_msg("%s: %s", name,
			    ingest_stats(ing)->is_last_error);
		assert_int_equal(ingest_stats(ing)->is_lines, nlines);
		assert_int_equal(ingest_stats(ing)->is_unknown_types, 0);
		assert_int_equal(ingest_stats(ing)->is_unknown_vars, 0);
		ingest_free(ing);
		free(text);
		nfix++;
	}
	closedir(d);
	free(dir);
	assert_int_equal(nfix, NFIXTURES);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scalar_count_from_fixture),
		cmocka_unit_test(u64_max_printed_as_minus_one_is_u64_max),
		cmocka_unit_test(i64_min_exact),
		cmocka_unit_test(type_fixed_misfits_counted),
		cmocka_unit_test(open_type_first_print_decides),
		cmocka_unit_test(open_type_described_first_stays),
		cmocka_unit_test(booleans_by_version),
		cmocka_unit_test(keys_escaped_twice_023),
		cmocka_unit_test(cleared_avg_stats_027),
		cmocka_unit_test(string_and_tuple_values),
		cmocka_unit_test(keyed_map_replaced_not_merged),
		cmocka_unit_test(multi_key_joined_names),
		cmocka_unit_test(duplicate_keys_summed),
		cmocka_unit_test(hist_bucket_names_pmda_compatible),
		cmocka_unit_test(lhist_open_ends),
		cmocka_unit_test(keyed_hist_instances),
		cmocka_unit_test(hist_zeroed_empty),
		cmocka_unit_test(avg_and_stats_values),
		cmocka_unit_test(nonascii_escape_repaired),
		cmocka_unit_test(escapes_decode_to_valid_utf8),
		cmocka_unit_test(printf_multiline_output),
		cmocka_unit_test(printf_ignored_without_output_var),
		cmocka_unit_test(table_retain_lines_keeps_header),
		cmocka_unit_test(output_ring_bounded),
		cmocka_unit_test(output_text_fits_output_max),
		cmocka_unit_test(instance_ids_stable_across_reset),
		cmocka_unit_test(seed_instance),
		cmocka_unit_test(max_instances_drops),
		cmocka_unit_test(identical_reprint_keeps_seq),
		cmocka_unit_test(same_names_reprint_keeps_order_and_ids),
		cmocka_unit_test(changed_names_sorted_again),
		cmocka_unit_test(duplicates_folded_on_every_path),
		cmocka_unit_test(bucket_order_and_name_order_not_mixed),
		cmocka_unit_test(scratch_reused_across_prints),
		cmocka_unit_test(long_and_many_names),
		cmocka_unit_test(fast_and_generic_paths_agree),
		cmocka_unit_test(fast_path_numbers_match_generic),
		cmocka_unit_test(attached_probes),
		cmocka_unit_test(lost_events_summed),
		cmocka_unit_test(helper_error_counted),
		cmocka_unit_test(unknown_types_and_vars_counted),
		cmocka_unit_test(garbage_lines_rejected),
		cmocka_unit_test(hist_print_for_scalar_refused),
		cmocka_unit_test(deep_nesting_rejected),
		cmocka_unit_test(huge_numbers_rejected),
		cmocka_unit_test(any_bytes_are_safe),
		cmocka_unit_test(every_fixture_replays_without_bad_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
