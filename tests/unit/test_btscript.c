/* SPDX-License-Identifier: MIT */
/*
 * test_btscript.c - the bpftrace script analyser: variable discovery,
 * kinds and types, output detection, refusals, tokenizer corners, the
 * variables of real bpftrace 0.17 scripts from ../shared/fixtures, and
 * garbage input that must never crash. Metadata comments:
 * test_btscript_meta.c; the appended print block: test_btscript_rewrite.c.
 */
#include "testhelp.h"
#include "btscript_testhelp.h"

/* --- helpers --- */

struct fixture_vars {
	const char	*fv_file;
	const char	*fv_names;	/* space-separated, in export order */
};

static const struct bts_var *
find_var(const struct bts_info *info, const char *name)
{
	for (size_t i = 0; i < info->i_nvars; i++)
		if (strcmp(info->i_vars[i].v_name, name) == 0)
			return &info->i_vars[i];
	return NULL;
}

/* The exported names joined with spaces, for one-line comparisons. */
static void
var_names(const struct bts_info *info, char *out, size_t outlen)
{
	size_t	 off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < info->i_nvars && off < outlen; i++)
		off += snprintf(out + off, outlen - off, "%s%s",
		    i ? " " : "", info->i_vars[i].v_name);
}

static void
assert_names(const char *code, const char *expected)
{
	struct bts_info	 info;
	char		 err[ERRLEN], names[1024];

	assert_int_equal(analyze(code, &info, err), 0);
	var_names(&info, names, sizeof(names));
	assert_string_equal(names, expected);
	bts_info_free(&info);
}

/* Analyses a fixture; the caller frees info. */
static void
analyze_fixture(const char *file, struct bts_info *info)
{
	char	 err[ERRLEN];
	size_t	 len = 0;
	char	*code = read_fixture(file, &len);

	if (code == NULL)
		fail_msg("cannot read fixture %s", file);
	if (bts_analyze(code, len, info, err, sizeof(err)) != 0)
		fail_msg("%s refused: %s", file, err);
	free(code);
}

/* --- variable discovery --- */

static void
compound_assignment_is_one_variable(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("BEGIN { @a += 1; }", &info, err), 0);
	assert_int_equal(info.i_nvars, 1);
	assert_string_equal(info.i_vars[0].v_name, "a");
	assert_int_equal(info.i_vars[0].v_kind, BTS_ASSIGN);
	assert_int_equal(info.i_vars[0].v_vtype, BTS_V_INT);
	assert_int_equal(info.i_vars[0].v_nkeys, 0);
	bts_info_free(&info);
	assert_names("BEGIN { @b++; @c = 1 }", "b c");
}

/* u64 literals and casts are unsigned: the value needs it (0.23+ print
 * them above 2^63); other numbers stay signed */
static void
u64_literal_and_cast_unsigned(void **state)
{
	static const struct {
		const char	*code;
		enum bts_vtype	 vt;
	} cases[] = {
		{ "BEGIN { @v = 18446744073709551615; }", BTS_V_UINT },
		{ "BEGIN { @v = 0xffffffffffffffff; }", BTS_V_UINT },
		{ "BEGIN { @v = 9223372036854775808 }", BTS_V_UINT },
		{ "BEGIN { @v = (uint64)9007199254740993; }", BTS_V_UINT },
		{ "BEGIN { @v[1] = (u64)-1; }", BTS_V_UINT },
		{ "BEGIN { @v = 9223372036854775807; }", BTS_V_INT },
		{ "BEGIN { @v = 18446744073709551615 - arg0; }", BTS_V_INT },
		{ "BEGIN { @v = (uint32)5; }", BTS_V_INT },
		{ "BEGIN { @v = (1 == 1); }", BTS_V_INT },
	};
	struct bts_info	 info;
	char		 err[ERRLEN];
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(analyze(cases[i].code, &info, err), 0);
		if (info.i_vars[0].v_vtype != cases[i].vt)
			fail_msg("%s: type %d", cases[i].code,
			    (int)info.i_vars[0].v_vtype);
		bts_info_free(&info);
	}
}

/* where the source does not tell the type, the first print may (v_vopen) */
static void
unknown_rhs_is_open(void **state)
{
	static const struct {
		const char	*code;
		enum bts_vtype	 vt;
		int		 open;
	} cases[] = {
		{ "kprobe:f { @v = arg0; }", BTS_V_INT, 1 },
		{ "BEGIN { $s = \"a\"; @v = $s; }", BTS_V_INT, 1 },
		{ "BEGIN { @v[1] = @w[2]; @w[2] = 1; }", BTS_V_INT, 1 },
		{ "kretprobe:f { @v = retval; }", BTS_V_INT, 1 },
		{ "tracepoint:a:b { @v = args->x; }", BTS_V_INT, 1 },
		{ "BEGIN { @v = 18446744073709551615 - arg0; }", BTS_V_INT, 1 },
		{ "BEGIN { @v = (1 == 1); }", BTS_V_INT, 1 },
		{ "BEGIN { @v = 5; }", BTS_V_INT, 0 },
		{ "BEGIN { @v = 5 }", BTS_V_INT, 0 },
		{ "BEGIN { @v = pid; }", BTS_V_INT, 0 },
		{ "BEGIN { @v[tid] = nsecs; }", BTS_V_INT, 0 },
		{ "BEGIN { @v = comm; }", BTS_V_STRING, 0 },
		{ "BEGIN { @v = \"x\"; }", BTS_V_STRING, 0 },
		{ "BEGIN { @v = (uint64)arg0; }", BTS_V_UINT, 0 },
		{ "BEGIN { @v++; }", BTS_V_INT, 0 },
		{ "BEGIN { @v += arg0; }", BTS_V_INT, 0 },
		{ "BEGIN { @v = count(); }", BTS_V_UINT, 0 },
		{ "BEGIN { @v = sum(arg0); }", BTS_V_INT, 0 },
		/* the first definition settles; an aggregation later too */
		{ "BEGIN { @v = arg0; @v = count(); }", BTS_V_UINT, 0 },
	};
	struct bts_info	 info;
	char		 err[ERRLEN];
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(analyze(cases[i].code, &info, err), 0);
		if (info.i_vars[0].v_vtype != cases[i].vt ||
		    info.i_vars[0].v_vopen != cases[i].open)
			fail_msg("%s: type %d open %d", cases[i].code,
			    (int)info.i_vars[0].v_vtype,
			    info.i_vars[0].v_vopen);
		bts_info_free(&info);
	}
}

static void
every_update_operator_defines(void **state)
{
	assert_names("BEGIN { @a -= 1; @b *= 2; @c /= 2; @d %= 2; @e &= 1; "
	    "@f |= 1; @g ^= 1; @h <<= 1; @i >>= 1; @j--; ++@k; --@l; "
	    "@m[1]++; ++@n[1, 2]; }", "a b c d e f g h i j k l m n");
}

static void
pre_increment_with_key_counts_keys(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("k:f { ++@n[comm, pid]; }", &info, err), 0);
	assert_int_equal(info.i_nvars, 1);
	assert_int_equal(info.i_vars[0].v_nkeys, 2);
	assert_int_equal(info.i_vars[0].v_kind, BTS_ASSIGN);
	bts_info_free(&info);
}

static void
equality_is_not_assignment(void **state)
{
	assert_names("BEGIN { @x = 1; if (@y == 5) { @z = 2 } "
	    "if (@w != 1 && @v <= 2 && @u >= 3) { exit(); } }", "x z");
}

static void
reads_and_map_functions_do_not_define(void **state)
{
	assert_names("BEGIN { @a[1] = 1; delete(@b[1]); clear(@c); "
	    "print(@d); zero(@e); $x = @f[2] + @g; @h = @i; }", "a h");
}

static void
order_is_first_definition(void **state)
{
	assert_names("i:s:1 { print(@late); } BEGIN { @b = 1; @a = 2; "
	    "@b = 3; } END { @late = 4; }", "b a late");
}

static void
comments_and_strings_do_not_define_variables(void **state)
{
	assert_refused("// @x = 1\n/* printf( @z = 3 */ BEGIN { $s = "
	    "\"@y = 2\"; }", "no bpftrace variables or printf statements");
	assert_names("BEGIN { $s = \"a \\\" @y = 2 \\\\\"; @real = 1; "
	    "/* @c = count(); */ } // @d = 1", "real");
}

static void
bare_map_is_root(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("k:f { @ = count(); }", &info, err), 0);
	assert_int_equal(info.i_nvars, 1);
	assert_string_equal(info.i_vars[0].v_name, "root");
	assert_int_equal(info.i_vars[0].v_bare, 1);
	assert_int_equal(info.i_vars[0].v_kind, BTS_COUNT);
	bts_info_free(&info);
	assert_names("k:f { @[comm] = count(); @x = 1; }", "root x");
}

static void
bare_map_and_root_clash_refused(void **state)
{
	assert_refused("BEGIN { @ = 1; @root = 2; }", "@root");
	assert_refused("BEGIN { @root = 1; @ = 2; }", "@root");
}

static void
explicit_root_is_not_bare(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("BEGIN { @root = 1; }", &info, err), 0);
	assert_string_equal(info.i_vars[0].v_name, "root");
	assert_int_equal(info.i_vars[0].v_bare, 0);
	bts_info_free(&info);
}

static void
multi_key_count(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("t:a:b { @m[comm, pid, args->id] = count(); "
	    "@one[comm] = count(); @s = count(); }", &info, err), 0);
	assert_int_equal(info.i_nvars, 3);
	assert_int_equal(find_var(&info, "m")->v_nkeys, 3);
	assert_int_equal(find_var(&info, "one")->v_nkeys, 1);
	assert_int_equal(find_var(&info, "s")->v_nkeys, 0);
	for (size_t i = 0; i < info.i_nvars; i++) {
		assert_int_equal(info.i_vars[i].v_kind, BTS_COUNT);
		assert_int_equal(info.i_vars[i].v_vtype, BTS_V_UINT);
		assert_int_equal(info.i_vars[i].v_counter, 1);
		assert_int_equal(info.i_vars[i].v_mtype, BTS_MT_NONE);
	}
	bts_info_free(&info);
}

static void
nested_key_commas_not_counted(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("BEGIN { @a[\"x,y\", (1, 2), f(3, 4), "
	    "@b[5, 6]] = 1; @e[] = 2; }", &info, err), 0);
	assert_int_equal(find_var(&info, "a")->v_nkeys, 4);
	assert_int_equal(find_var(&info, "e")->v_nkeys, 0);
	bts_info_free(&info);
}

static void
keyed_hist_supported(void **state)
{
	struct bts_info		 info;
	const struct bts_var	*h, *l;
	char			 err[ERRLEN];

	assert_int_equal(analyze("t:a:b { @h[comm, pid] = hist(args->ret); "
	    "@l[comm] = lhist(args->id, 0, 300, 50); }", &info, err), 0);
	h = find_var(&info, "h");
	l = find_var(&info, "l");
	assert_non_null(h);
	assert_non_null(l);
	assert_int_equal(h->v_kind, BTS_HIST);
	assert_int_equal(h->v_nkeys, 2);
	assert_int_equal(l->v_kind, BTS_LHIST);
	assert_int_equal(l->v_nkeys, 1);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(info.i_vars[i].v_mtype, BTS_MT_HISTOGRAM);
		assert_int_equal(info.i_vars[i].v_vtype, BTS_V_UINT);
		assert_int_equal(info.i_vars[i].v_counter, 1);
	}
	bts_info_free(&info);
}

static void
stacks_label(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("profile:hz:99 { @k[kstack] = count(); "
	    "@u[ustack(3), comm] = count(); @c[comm] = count(); "
	    "@f[args->kstack] = count(); @s[kstack] = sum(1); }", &info,
	    err), 0);
	assert_int_equal(find_var(&info, "k")->v_mtype, BTS_MT_STACKS);
	assert_int_equal(find_var(&info, "u")->v_mtype, BTS_MT_STACKS);
	assert_int_equal(find_var(&info, "u")->v_nkeys, 2);
	assert_int_equal(find_var(&info, "c")->v_mtype, BTS_MT_NONE);
	assert_int_equal(find_var(&info, "f")->v_mtype, BTS_MT_NONE);
	assert_int_equal(find_var(&info, "s")->v_mtype, BTS_MT_NONE);
	bts_info_free(&info);
}

static void
avg_and_stats_kinds(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];
	static const struct {
		const char	*name;
		enum bts_kind	 kind;
	} want[] = {
		{ "s", BTS_SUM }, { "mn", BTS_MIN }, { "mx", BTS_MAX },
		{ "a", BTS_AVG }, { "st", BTS_STATS }
	};

	assert_int_equal(analyze("k:f { @s = sum(1); @mn = min(2); "
	    "@mx = max(3); @a = avg(4); @st[comm] = stats(5); }", &info, err),
	    0);
	assert_int_equal(info.i_nvars, 5);
	for (size_t i = 0; i < 5; i++) {
		const struct bts_var	*v = &info.i_vars[i];

		assert_string_equal(v->v_name, want[i].name);
		assert_int_equal(v->v_kind, want[i].kind);
		assert_int_equal(v->v_vtype, BTS_V_INT);
		assert_int_equal(v->v_counter, 0);
		assert_int_equal(v->v_mtype, BTS_MT_NONE);
	}
	assert_int_equal(info.i_vars[4].v_nkeys, 1);
	bts_info_free(&info);
}

static void
later_aggregation_sets_kind(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("BEGIN { @x++; } k:f { @x = count(); "
	    "@x = hist(1); }", &info, err), 0);
	assert_int_equal(info.i_nvars, 1);
	assert_int_equal(info.i_vars[0].v_kind, BTS_COUNT);
	assert_int_equal(info.i_vars[0].v_counter, 1);
	bts_info_free(&info);
}

static void
aggregation_name_needs_call(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("BEGIN { @x = count; @y = $count(1); }",
	    &info, err), 0);
	assert_int_equal(info.i_vars[0].v_kind, BTS_ASSIGN);
	assert_int_equal(info.i_vars[1].v_kind, BTS_ASSIGN);
	bts_info_free(&info);
}

static void
string_values_typed_string(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];
	const char	*strs[] = { "s", "t", "c", "k", "u", "f", "y", "st",
		"p", "pt", NULL };
	const char	*ints[] = { "n", "neg", "cast", "paren", "inc", "ka",
		"cmp", NULL };

	assert_int_equal(analyze("k:f { @s = \"hi\"; @t = (1, \"two\"); "
	    "@c[pid] = comm; @k = kstack; @u = ustack(5); @f = func; "
	    "@y = ksym(reg(\"ip\")); @st = str(arg0); "
	    "@p = path(arg1); @pt = ((1, 2)); "
	    "@n = 42; @neg = -5; @cast = (uint8)255; @paren = (1 + 2); "
	    "@inc = 1; @inc++; @ka = kaddr(\"x\"); @cmp = $a == 1; }",
	    &info, err), 0);
	for (int i = 0; strs[i] != NULL; i++) {
		const struct bts_var	*v = find_var(&info, strs[i]);

		if (v == NULL || v->v_vtype != BTS_V_STRING)
			fail_msg("@%s is not a string", strs[i]);
		assert_int_equal(v->v_kind, BTS_ASSIGN);
	}
	for (int i = 0; ints[i] != NULL; i++) {
		const struct bts_var	*v = find_var(&info, ints[i]);

		if (v == NULL || v->v_vtype != BTS_V_INT)
			fail_msg("@%s is not an int", ints[i]);
	}
	assert_int_equal(find_var(&info, "c")->v_nkeys, 1);
	bts_info_free(&info);
}

/* --- output detection --- */

static void
output_detected_by_printf_call_only(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("BEGIN { printf(\"hi\\n\"); @x = 1; }",
	    &info, err), 0);
	assert_int_equal(info.i_has_output, 1);
	assert_int_equal(info.i_nvars, 2);
	assert_string_equal(info.i_vars[0].v_name, "x");
	assert_string_equal(info.i_vars[1].v_name, "output");
	assert_int_equal(info.i_vars[1].v_kind, BTS_OUTPUT);
	assert_int_equal(info.i_vars[1].v_vtype, BTS_V_STRING);
	assert_int_equal(info.i_vars[1].v_mtype, BTS_MT_OUTPUT);
	assert_int_equal(info.i_vars[1].v_nkeys, 0);
	assert_int_equal(info.i_vars[1].v_counter, 0);
	bts_info_free(&info);

	/* in comments, strings, names or fields: no output */
	assert_int_equal(analyze("// printf(\"x\")\nBEGIN { /* time( */ "
	    "$s = \"printf(\"; @printf = 1; @t = args->time(1); "
	    "@u = $x.cat(2); $printf = 3; @v = printf; }", &info, err), 0);
	assert_int_equal(info.i_has_output, 0);
	assert_null(find_var(&info, "output"));
	assert_int_equal(info.i_nvars, 4);
	bts_info_free(&info);
}

static void
every_printing_call_detected(void **state)
{
	const char	*calls[] = { "printf(\"x\")", "time()",
		"time(\"%H\")", "join(args->argv)", "system(\"ls\")",
		"cat(\"/etc/hostname\")", "print(\"x\")", "print($a)",
		"print((1, 2))", "print(1)", "print(@m[1])", "print(@a + 1)",
		"printf (\"spaced\")", NULL };
	char		 code[256], err[ERRLEN];
	struct bts_info	 info;

	for (int i = 0; calls[i] != NULL; i++) {
		snprintf(code, sizeof(code), "BEGIN { %s; }", calls[i]);
		if (analyze(code, &info, err) != 0 || !info.i_has_output)
			fail_msg("%s: no output detected (%s)", calls[i], err);
		assert_string_equal(info.i_vars[0].v_name, "output");
		bts_info_free(&info);
	}
}

static void
print_of_map_is_not_output(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("BEGIN { @a = 1; @ = 2; print(@a); "
	    "print(@a, 3); print(@a, 3, 2); print(@); }", &info, err), 0);
	assert_int_equal(info.i_has_output, 0);
	assert_int_equal(info.i_nvars, 2);
	bts_info_free(&info);
}

static void
output_only_script_accepted(void **state)
{
	assert_names("i:ms:200 { time(\"%H:%M:%S\\n\"); }", "output");
}

static void
output_reserved(void **state)
{
	assert_refused("BEGIN { @output = 1; }", "@output is reserved");
	assert_refused("BEGIN { printf(\"x\"); @output[1]++; }",
	    "@output is reserved");
	/* reading it (bpftrace will complain) and @outputs are fine */
	assert_names("BEGIN { @outputs = 1; print(@output); }", "outputs");
}

/* --- refusals --- */

static void
no_vars_refused(void **state)
{
	assert_refused("BEGIN { exit(); }", "no bpftrace variables or printf "
	    "statements found, please include at least one variable or print "
	    "statement in your script");
	assert_refused("", "no bpftrace variables");
	assert_refused("BEGIN { print(@x); clear(@y); }", "no bpftrace");
}

static void
nul_byte_refused(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];
	const char	 code[] = "BEGIN { @x = 1; }\0@y = 2;";

	assert_int_equal(bts_analyze(code, sizeof(code) - 1, &info, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
	assert_null(info.i_vars);
}

static void
max_vars_boundary(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN], *code;
	size_t		 cap = BTS_MAX_VARS * 16 + 64, off;

	code = malloc(cap);
	assert_non_null(code);
	off = (size_t)snprintf(code, cap, "BEGIN {");
	for (int i = 0; i < BTS_MAX_VARS; i++)
		off += (size_t)snprintf(code + off, cap - off, " @v%d = 1;", i);
	snprintf(code + off, cap - off, " }");
	assert_int_equal(analyze(code, &info, err), 0);
	assert_int_equal(info.i_nvars, BTS_MAX_VARS);
	assert_string_equal(info.i_vars[BTS_MAX_VARS - 1].v_name, "v255");
	bts_info_free(&info);

	/* one more variable, or the output on top: refused */
	snprintf(code + off, cap - off, " @extra = 1; }");
	assert_refused(code, "more than 256 variables");
	snprintf(code + off, cap - off, " printf(\"x\"); }");
	assert_refused(code, "more than 256 variables");
	free(code);
}

/* --- tokenizer corners --- */

static void
probe_path_glob_is_not_a_comment(void **state)
{
	assert_names("uprobe:/lib/x86_64-linux-gnu/*.so:f* { @x = 1; }\n"
	    "kprobe:vfs_* { @y = count(); }", "x y");
}

static void
preprocessor_lines_skipped(void **state)
{
	assert_names("#!/usr/bin/env bpftrace\n#include <linux/sched.h>\n"
	    "#define Q \"\n#define M @z = 1\nBEGIN { @x = 1; }", "x");
}

static void
unterminated_string_and_comment_are_safe(void **state)
{
	assert_names("BEGIN { @x = 1; printf(\"abc", "x output");
	assert_refused("BEGIN { $s = \"@y = 1; }", "no bpftrace");
	assert_refused("BEGIN { /* @y = 1; }", "no bpftrace");
	assert_refused("BEGIN { $s = \"abc\\", "no bpftrace");
	assert_refused("@x[1, (2", "no bpftrace");
	assert_names("@x = ", "x");
	assert_names("@x++", "x");
	assert_refused("@", "no bpftrace");
	assert_refused("/", "no bpftrace");
	assert_refused(":", "no bpftrace");
}

static void
mismatched_brackets_do_not_confuse_keys(void **state)
{
	assert_refused("BEGIN { @a[1, (2] = 1; }", "no bpftrace");
	assert_names("BEGIN { @a[1)] = 1; @b[(1, 2)] = 2; }", "a b");
}

/* --- real bpftrace 0.17 scripts --- */

static void
fixtures_export_expected_variables(void **state)
{
	static const struct fixture_vars	 want[] = {
		{ "attach_error.bt", "x" },
		{ "avg_stats.bt", "a st" },
		{ "big_map.bt", "big" },
		{ "delete_clear.bt", "a s" },
		{ "empty_maps_at_exit.bt", "never cleared h st" },
		{ "end_probe_print.bt", "a b output" },
		{ "helper_error_k.bt", "v output" },
		{ "hist_empty_and_print.bt", "h l" },
		{ "hist_zeroed.bt", "h l hk" },
		{ "join_exec.bt", "output" },
		{ "keys_multi_mixed.bt", "m2 m3" },
		{ "keys_special_strings.bt", "k v" },
		{ "large_output.bt", "big output" },
		{ "lost_events.bt", "output" },
		{ "map_2000_keys_runtime.bt", "n tick" },
		{ "map_types_mixed.bt", "u8 s32 u32 i64min cnt sum min max "
		    "avgneg stneg" },
		{ "negative_and_huge.bt", "neg big m" },
		{ "periodic_print_clear.bt", "c" },
		{ "print_non_map.bt", "output" },
		{ "print_top_div_hist.bt", "c h" },
		{ "printf_special_chars.bt", "k output" },
		{ "runtime_div_by_zero_and_helpers.bt", "d s output" },
		{ "signal_sigint.bt", "c m output" },
		{ "sigusr1_dump.bt", "a b h" },
		{ "strftime_printf.bt", "output" },
		{ "system_cat.bt", "output" },
		{ "time_output.bt", "output" },
		{ "tuple_value.bt", "t tm" },
		{ "ustack_keys.bt", "us ks" },
		{ "zero.bt", "z" },
	};
	struct bts_info	 info;
	char		 names[512];

	if (!fixtures_present())
		skip();
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		analyze_fixture(want[i].fv_file, &info);
		var_names(&info, names, sizeof(names));
		if (strcmp(names, want[i].fv_names) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"",
			    want[i].fv_file, names, want[i].fv_names);
		assert_null(info.i_meta.m_name);	/* "// run:" ignored */
		bts_info_free(&info);
	}
}

static void
fixture_map_types_mixed_kinds(void **state)
{
	static const struct {
		const char	*name;
		enum bts_kind	 kind;
		enum bts_vtype	 vtype;
		int		 counter;
	} want[] = {
		{ "u8", BTS_ASSIGN, BTS_V_INT, 0 },
		{ "s32", BTS_ASSIGN, BTS_V_INT, 0 },
		{ "i64min", BTS_ASSIGN, BTS_V_INT, 0 },
		{ "cnt", BTS_COUNT, BTS_V_UINT, 1 },
		{ "sum", BTS_SUM, BTS_V_INT, 0 },
		{ "min", BTS_MIN, BTS_V_INT, 0 },
		{ "max", BTS_MAX, BTS_V_INT, 0 },
		{ "avgneg", BTS_AVG, BTS_V_INT, 0 },
		{ "stneg", BTS_STATS, BTS_V_INT, 0 },
	};
	struct bts_info	 info;

	if (!fixtures_present())
		skip();
	analyze_fixture("map_types_mixed.bt", &info);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct bts_var	*v = find_var(&info, want[i].name);

		assert_non_null(v);
		assert_int_equal(v->v_kind, want[i].kind);
		assert_int_equal(v->v_vtype, want[i].vtype);
		assert_int_equal(v->v_counter, want[i].counter);
	}
	bts_info_free(&info);
}

static void
fixture_keys_and_labels(void **state)
{
	struct bts_info	 info;

	if (!fixtures_present())
		skip();
	analyze_fixture("keys_multi_mixed.bt", &info);	/* "a,b" is one key */
	assert_int_equal(find_var(&info, "m2")->v_nkeys, 2);
	assert_int_equal(find_var(&info, "m3")->v_nkeys, 3);
	bts_info_free(&info);

	analyze_fixture("ustack_keys.bt", &info);
	assert_int_equal(find_var(&info, "us")->v_mtype, BTS_MT_STACKS);
	assert_int_equal(find_var(&info, "us")->v_nkeys, 2);
	assert_int_equal(find_var(&info, "ks")->v_mtype, BTS_MT_NONE);
	assert_int_equal(find_var(&info, "ks")->v_nkeys, 2);
	bts_info_free(&info);

	analyze_fixture("stack_keys.bt", &info);
	assert_int_equal(info.i_nvars, 1);
	assert_int_equal(info.i_vars[0].v_mtype, BTS_MT_STACKS);
	bts_info_free(&info);

	analyze_fixture("hist_keyed.bt", &info);
	assert_int_equal(info.i_vars[0].v_kind, BTS_HIST);
	assert_int_equal(info.i_vars[0].v_nkeys, 1);
	assert_int_equal(info.i_vars[0].v_mtype, BTS_MT_HISTOGRAM);
	bts_info_free(&info);

	analyze_fixture("lhist_keyed.bt", &info);
	assert_int_equal(info.i_vars[0].v_kind, BTS_LHIST);
	assert_int_equal(info.i_vars[0].v_nkeys, 1);
	bts_info_free(&info);

	analyze_fixture("many_keys_runtime.bt", &info);
	assert_int_equal(info.i_vars[0].v_nkeys, 3);
	assert_int_equal(info.i_vars[0].v_kind, BTS_COUNT);
	bts_info_free(&info);
}

static void
fixture_string_and_tuple_values(void **state)
{
	struct bts_info	 info;

	if (!fixtures_present())
		skip();
	analyze_fixture("tuple_value.bt", &info);
	assert_int_equal(find_var(&info, "t")->v_vtype, BTS_V_STRING);
	assert_int_equal(find_var(&info, "tm")->v_vtype, BTS_V_STRING);
	bts_info_free(&info);
	analyze_fixture("string_value.bt", &info);
	assert_int_equal(find_var(&info, "s")->v_vtype, BTS_V_STRING);
	assert_int_equal(find_var(&info, "sm")->v_vtype, BTS_V_STRING);
	assert_int_equal(find_var(&info, "sm")->v_nkeys, 1);
	bts_info_free(&info);
	analyze_fixture("keys_special_strings.bt", &info);
	assert_int_equal(find_var(&info, "k")->v_vtype, BTS_V_INT);
	assert_int_equal(find_var(&info, "v")->v_vtype, BTS_V_STRING);
	bts_info_free(&info);
}

/* --- garbage and adversarial input --- */

/* Checks the invariants every answer must satisfy. */
static void
check_answer(const char *code, size_t len)
{
	struct bts_info	 info;
	char		 err[ERRLEN], *out;
	size_t		 outlen;
	int		 rc;

	err[0] = '\0';
	rc = bts_analyze(code, len, &info, err, sizeof(err));
	if (rc == -1) {
		assert_true(err[0] != '\0');
		assert_null(info.i_vars);
		assert_int_equal(info.i_nvars, 0);
		return;
	}
	assert_int_equal(rc, 0);
	assert_true(info.i_nvars > 0 && info.i_nvars <= BTS_MAX_VARS);
	for (size_t i = 0; i < info.i_nvars; i++) {
		assert_non_null(info.i_vars[i].v_name);
		assert_true(info.i_vars[i].v_nkeys >= 0);
	}
	out = bts_rewrite(code, len, &info, 1000, &outlen);
	assert_non_null(out);
	assert_true(outlen >= len);
	assert_memory_equal(out, code, len);
	free(out);
	bts_info_free(&info);
}

static uint32_t
xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
random_bytes_never_crash(void **state)
{
	static const char	 alphabet[] = "@@@[[]]((),,,=====+-<>!\"\"\\/"
	    "/**;{}:$ \n\tabcx_0159printfcounthist#";
	uint32_t		 seed = 0x2545f491;
	char			*code;

	for (int round = 0; round < 4000; round++) {
		size_t	 len = xorshift(&seed) % 300;

		/* exactly len bytes, no NUL after: ASan sees overreads */
		code = malloc(len ? len : 1);
		assert_non_null(code);
		for (size_t i = 0; i < len; i++) {
			uint32_t	 r = xorshift(&seed);

			code[i] = round % 4 == 0 ? (char)(r & 0xff) :
			    alphabet[r % (sizeof(alphabet) - 1)];
		}
		check_answer(code, len);
		free(code);
	}
}

static void
every_prefix_of_fixtures_is_safe(void **state)
{
	const char	*files[] = { "keys_special_strings.bt",
		"printf_multiline_csv.bt", "ustack_keys.bt",
		"helper_error_k.bt", NULL };
	size_t		 len;
	char		*code, *cut;

	if (!fixtures_present())
		skip();
	for (int i = 0; files[i] != NULL; i++) {
		code = read_fixture(files[i], &len);
		assert_non_null(code);
		for (size_t n = 0; n <= len; n++) {
			/* an exact-size copy: ASan catches reads past n */
			cut = malloc(n ? n : 1);
			assert_non_null(cut);
			memcpy(cut, code, n);
			check_answer(cut, n);
			free(cut);
		}
		free(code);
	}
}

static void
megabyte_of_at_signs(void **state)
{
	size_t		 len = 1 << 20;
	char		*code = malloc(len);
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_non_null(code);
	memset(code, '@', len);
	assert_int_equal(bts_analyze(code, len, &info, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no bpftrace variables"));
	for (size_t i = 1; i < len; i += 2)
		code[i] = '=';
	assert_int_equal(bts_analyze(code, len, &info, err, sizeof(err)), 0);
	assert_int_equal(info.i_nvars, 1);
	assert_string_equal(info.i_vars[0].v_name, "root");
	bts_info_free(&info);
	free(code);
}

static void
deep_nesting_is_linear_and_safe(void **state)
{
	size_t		 depth = 200000, len = 2 * depth + 64, off;
	char		*code = malloc(len);
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_non_null(code);
	/* unterminated: @x[(((((... never closes, so @x is not assigned */
	off = (size_t)snprintf(code, len, "@x[");
	memset(code + off, '(', depth);
	assert_int_equal(bts_analyze(code, off + depth, &info, err,
	    sizeof(err)), -1);

	/* closed: one key, whatever the depth */
	memset(code + off + depth, ')', depth);
	off += 2 * depth;
	off += (size_t)snprintf(code + off, len - off, "] = count();");
	assert_int_equal(bts_analyze(code, off, &info, err, sizeof(err)), 0);
	assert_int_equal(info.i_nvars, 1);
	assert_int_equal(info.i_vars[0].v_nkeys, 1);
	assert_int_equal(info.i_vars[0].v_kind, BTS_COUNT);
	bts_info_free(&info);

	/* a deeply parenthesised right-hand side */
	off = (size_t)snprintf(code, len, "@y = ");
	memset(code + off, '(', depth);
	off += depth;
	code[off++] = '"';
	code[off++] = '"';
	memset(code + off, ')', depth);
	off += depth;
	assert_int_equal(bts_analyze(code, off, &info, err, sizeof(err)), 0);
	assert_int_equal(info.i_vars[0].v_vtype, BTS_V_STRING);
	bts_info_free(&info);
	free(code);
}

static void
nested_assigned_keys_all_defined(void **state)
{
	/* @a0[@a1[@a2[... = 1] = 1] = 1: each key is counted once */
	size_t		 n = 200, cap = n * 24 + 16, off = 0;
	char		*code = malloc(cap);
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_non_null(code);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(code + off, cap - off, "@a%zu[", i);
	off += (size_t)snprintf(code + off, cap - off, "kstack");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(code + off, cap - off, "] = count()");
	assert_int_equal(bts_analyze(code, off, &info, err, sizeof(err)), 0);
	assert_int_equal(info.i_nvars, n);
	assert_string_equal(info.i_vars[0].v_name, "a0");
	for (size_t i = 0; i < n; i++)
		assert_int_equal(info.i_vars[i].v_mtype, BTS_MT_STACKS);
	bts_info_free(&info);
	free(code);
}

static void
null_and_empty_inputs(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];
	size_t		 len = 99;
	char		*out;

	assert_int_equal(bts_analyze(NULL, 0, &info, err, sizeof(err)), -1);
	assert_int_equal(bts_analyze("", 0, &info, NULL, 0), -1);
	bts_info_free(NULL);
	bts_info_free(&info);		/* already zeroed: harmless */
	out = bts_rewrite(NULL, 0, NULL, 1000, &len);
	assert_non_null(out);
	assert_string_equal(out, "");
	assert_int_equal(len, 0);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(compound_assignment_is_one_variable),
		cmocka_unit_test(u64_literal_and_cast_unsigned),
		cmocka_unit_test(unknown_rhs_is_open),
		cmocka_unit_test(every_update_operator_defines),
		cmocka_unit_test(pre_increment_with_key_counts_keys),
		cmocka_unit_test(equality_is_not_assignment),
		cmocka_unit_test(reads_and_map_functions_do_not_define),
		cmocka_unit_test(order_is_first_definition),
		cmocka_unit_test(comments_and_strings_do_not_define_variables),
		cmocka_unit_test(bare_map_is_root),
		cmocka_unit_test(bare_map_and_root_clash_refused),
		cmocka_unit_test(explicit_root_is_not_bare),
		cmocka_unit_test(multi_key_count),
		cmocka_unit_test(nested_key_commas_not_counted),
		cmocka_unit_test(keyed_hist_supported),
		cmocka_unit_test(stacks_label),
		cmocka_unit_test(avg_and_stats_kinds),
		cmocka_unit_test(later_aggregation_sets_kind),
		cmocka_unit_test(aggregation_name_needs_call),
		cmocka_unit_test(string_values_typed_string),
		cmocka_unit_test(output_detected_by_printf_call_only),
		cmocka_unit_test(every_printing_call_detected),
		cmocka_unit_test(print_of_map_is_not_output),
		cmocka_unit_test(output_only_script_accepted),
		cmocka_unit_test(output_reserved),
		cmocka_unit_test(no_vars_refused),
		cmocka_unit_test(nul_byte_refused),
		cmocka_unit_test(max_vars_boundary),
		cmocka_unit_test(probe_path_glob_is_not_a_comment),
		cmocka_unit_test(preprocessor_lines_skipped),
		cmocka_unit_test(unterminated_string_and_comment_are_safe),
		cmocka_unit_test(mismatched_brackets_do_not_confuse_keys),
		cmocka_unit_test(fixtures_export_expected_variables),
		cmocka_unit_test(fixture_map_types_mixed_kinds),
		cmocka_unit_test(fixture_keys_and_labels),
		cmocka_unit_test(fixture_string_and_tuple_values),
		cmocka_unit_test(random_bytes_never_crash),
		cmocka_unit_test(every_prefix_of_fixtures_is_safe),
		cmocka_unit_test(megabyte_of_at_signs),
		cmocka_unit_test(deep_nesting_is_linear_and_safe),
		cmocka_unit_test(nested_assigned_keys_all_defined),
		cmocka_unit_test(null_and_empty_inputs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
