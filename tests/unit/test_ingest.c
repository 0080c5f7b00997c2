/* SPDX-License-Identifier: MIT */
/*
 * test_ingest.c - the JSON ingester line by line: numbers, scalars and
 * their types, strings and escapes, the other messages (probes, lost
 * events, errors), hostile input, and every real bpftrace 0.17 output in
 * $BT_SHARED/fixtures/bpftrace-0.17 replayed (read in place; tests that
 * need them are skipped with a message when absent). Maps and hists:
 * test_ingest_map.c; @output: test_ingest_output.c; the in-place reader:
 * test_ingest_fast.c. Expected values come from reading the fixture
 * files, never from the ingester's own output.
 */
#include "testhelp.h"
#include "ingest_testhelp.h"

#include <dirent.h>

#define NFIXTURES	54

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
		cmocka_unit_test(nonascii_escape_repaired),
		cmocka_unit_test(escapes_decode_to_valid_utf8),
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
