/* SPDX-License-Identifier: MIT */
/*
 * test_btscript_meta.c - the metadata comments of a bpftrace script
 * ("// name:", include, table-retain-lines, restart, interval, print):
 * defaults, every key, where they count, the valid values and the
 * refusals with a reason.
 */
#include "testhelp.h"
#include "btscript_testhelp.h"

/* --- metadata comments --- */

static void
metadata_defaults(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("BEGIN { @x = 1; }", &info, err), 0);
	assert_null(info.i_meta.m_name);
	assert_null(info.i_meta.m_include);
	assert_int_equal(info.i_meta.m_ninclude, 0);
	assert_int_equal(info.i_meta.m_table_retain_lines, -1);
	assert_int_equal(info.i_meta.m_custom_output_block, 0);
	assert_int_equal(info.i_meta.m_restart, BTS_RESTART_NEVER);
	assert_int_equal(info.i_meta.m_interval_ms, -1);
	assert_int_equal(info.i_meta.m_on_demand, 0);
	bts_info_free(&info);
}

static void
metadata_all_keys(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("// name: syscalls_by_comm  \n"
	    "  // table-retain-lines: 10\n"
	    "\t// custom-output-block\n"
	    "// restart: on-failure\n"
	    "// interval: 500ms\n"
	    "// print: on-demand\n"
	    "//include:@c\n"
	    "// author: somebody\n"
	    "// run: bpftrace -f json x.bt\n"
	    "t:a:b { @c[comm] = count(); }\n", &info, err), 0);
	assert_string_equal(info.i_meta.m_name, "syscalls_by_comm");
	assert_int_equal(info.i_meta.m_table_retain_lines, 10);
	assert_int_equal(info.i_meta.m_custom_output_block, 1);
	assert_int_equal(info.i_meta.m_restart, BTS_RESTART_ON_FAILURE);
	assert_int_equal(info.i_meta.m_interval_ms, 500);
	assert_int_equal(info.i_meta.m_on_demand, 1);
	assert_int_equal(info.i_meta.m_ninclude, 1);
	assert_string_equal(info.i_meta.m_include[0], "c");
	bts_info_free(&info);
}

static void
metadata_only_from_line_comments_at_line_start(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("/*\n// name: in_block\n*/\n"
	    "BEGIN { @x = 1; } // name: trailing\n"
	    "BEGIN { $s = \"\n// name: in_string\n\"; }\n"
	    "// name is not metadata\n", &info, err), 0);
	assert_null(info.i_meta.m_name);
	bts_info_free(&info);
}

static void
metadata_crlf_lines(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("// name: dos\r\n// restart: always\r\n"
	    "BEGIN { @x = 1; }\r\n", &info, err), 0);
	assert_string_equal(info.i_meta.m_name, "dos");
	assert_int_equal(info.i_meta.m_restart, BTS_RESTART_ALWAYS);
	bts_info_free(&info);
}

static void
name_one_char_ok(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("// name: a\nBEGIN { @x = 1; }", &info, err),
	    0);
	assert_string_equal(info.i_meta.m_name, "a");
	bts_info_free(&info);
	assert_true(bts_name_valid("_"));
	assert_true(bts_name_valid("a1_B"));
}

static void
name_valid_length_boundary(void **state)
{
	char	 name[BTS_NAME_MAX + 2];

	memset(name, 'n', sizeof(name));
	name[BTS_NAME_MAX] = '\0';
	assert_true(bts_name_valid(name));
	name[BTS_NAME_MAX] = 'n';
	name[BTS_NAME_MAX + 1] = '\0';
	assert_false(bts_name_valid(name));
	assert_false(bts_name_valid(""));
	assert_false(bts_name_valid(NULL));
	assert_false(bts_name_valid("1abc"));
	assert_false(bts_name_valid("a-b"));
	assert_false(bts_name_valid("a b"));
	assert_false(bts_name_valid("caf\xc3\xa9"));
}

static void
name_invalid_refused(void **state)
{
	assert_refused("// name: my script\nBEGIN { @x = 1; }",
	    "\"my script\"");
	assert_refused("// name: 9lives\nBEGIN { @x = 1; }", "\"9lives\"");
	assert_refused("// name:\nBEGIN { @x = 1; }", "needs a value");
	assert_refused("// name\nBEGIN { @x = 1; }", "needs a value");
}

static void
include_trims_spaces(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("// include: @b ,  @output,@\t\n"
	    "BEGIN { @a = 1; @b = 2; @ = 3; printf(\"x\"); }", &info, err),
	    0);
	assert_int_equal(info.i_meta.m_ninclude, 3);
	assert_string_equal(info.i_meta.m_include[0], "b");
	assert_string_equal(info.i_meta.m_include[1], "output");
	assert_string_equal(info.i_meta.m_include[2], "root");
	/* source order, @a dropped */
	assert_int_equal(info.i_nvars, 3);
	assert_string_equal(info.i_vars[0].v_name, "b");
	assert_string_equal(info.i_vars[1].v_name, "root");
	assert_string_equal(info.i_vars[2].v_name, "output");
	assert_int_equal(info.i_has_output, 1);
	bts_info_free(&info);
}

static void
include_without_output_drops_it(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("// include: @a\n"
	    "BEGIN { @a = 1; printf(\"x\"); }", &info, err), 0);
	assert_int_equal(info.i_nvars, 1);
	assert_string_equal(info.i_vars[0].v_name, "a");
	assert_int_equal(info.i_has_output, 0);
	bts_info_free(&info);
}

static void
include_unknown_refused(void **state)
{
	assert_refused("// include: @a, @nope\nBEGIN { @a = 1; }",
	    "@nope is not a variable");
	assert_refused("// include: @output\nBEGIN { @a = 1; }",
	    "@output is not a variable");
	assert_refused("// include: a\nBEGIN { @a = 1; }",
	    "\"a\" is not a @variable");
	assert_refused("// include: @a,,@b\nBEGIN { @a = 1; @b = 1; }",
	    "is not a @variable");
	assert_refused("// include: @a-b\nBEGIN { @a = 1; }",
	    "\"@a-b\" is not a @variable");
}

static void
table_retain_lines_bad_refused(void **state)
{
	assert_refused("// table-retain-lines: ten\nBEGIN { @x = 1; }",
	    "table-retain-lines: \"ten\"");
	assert_refused("// table-retain-lines: -1\nBEGIN { @x = 1; }",
	    "\"-1\"");
	assert_refused("// table-retain-lines: 5x\nBEGIN { @x = 1; }",
	    "\"5x\"");
	assert_refused("// table-retain-lines: 99999999999999999999999\n"
	    "BEGIN { @x = 1; }", "not a non-negative integer");
}

static void
table_retain_lines_zero_ok(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("// table-retain-lines: 0\nBEGIN { @x = 1; }",
	    &info, err), 0);
	assert_int_equal(info.i_meta.m_table_retain_lines, 0);
	bts_info_free(&info);
}

static void
restart_values(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("// restart: never\nBEGIN { @x = 1; }",
	    &info, err), 0);
	assert_int_equal(info.i_meta.m_restart, BTS_RESTART_NEVER);
	bts_info_free(&info);
	assert_int_equal(analyze("// restart: always\nBEGIN { @x = 1; }",
	    &info, err), 0);
	assert_int_equal(info.i_meta.m_restart, BTS_RESTART_ALWAYS);
	bts_info_free(&info);
	assert_refused("// restart: sometimes\nBEGIN { @x = 1; }",
	    "restart: \"sometimes\"");
}

static void
interval_units_and_range(void **state)
{
	static const struct {
		const char	*val;
		long		 ms;
	} ok[] = {
		{ "500ms", 500 }, { "2s", 2000 }, { "1", 1000 },
		{ "100ms", 100 }, { "3600s", 3600000 }, { "3600000ms", 3600000 }
	};
	const char	*bad[] = { "99ms", "0", "3601s", "3600001ms", "1.5s",
		"2m", "ms", "-1s", "5 s", "999999999999999999999", NULL };
	struct bts_info	 info;
	char		 code[128], err[ERRLEN];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(code, sizeof(code),
		    "// interval: %s\nBEGIN { @x = 1; }",
		    ok[i].val);
		if (analyze(code, &info, err) != 0)
			fail_msg("%s refused: %s", ok[i].val, err);
		assert_int_equal(info.i_meta.m_interval_ms, ok[i].ms);
		bts_info_free(&info);
	}
	for (int i = 0; bad[i] != NULL; i++) {
		snprintf(code, sizeof(code),
		    "// interval: %s\nBEGIN { @x = 1; }",
		    bad[i]);
		assert_refused(code, "// interval:");
	}
}

static void
print_mode_values(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("// print: interval\nBEGIN { @x = 1; }",
	    &info, err), 0);
	assert_int_equal(info.i_meta.m_on_demand, 0);
	bts_info_free(&info);
	assert_refused("// print: sometimes\nBEGIN { @x = 1; }",
	    "print: \"sometimes\"");
}

static void
later_metadata_wins(void **state)
{
	struct bts_info	 info;
	char		 err[ERRLEN];

	assert_int_equal(analyze("// name: first\n// include: @a\n"
	    "// name: second\n// include: @b\nBEGIN { @a = 1; @b = 2; }",
	    &info, err), 0);
	assert_string_equal(info.i_meta.m_name, "second");
	assert_int_equal(info.i_meta.m_ninclude, 1);
	assert_string_equal(info.i_meta.m_include[0], "b");
	assert_int_equal(info.i_nvars, 1);
	bts_info_free(&info);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(metadata_defaults),
		cmocka_unit_test(metadata_all_keys),
		cmocka_unit_test(
		    metadata_only_from_line_comments_at_line_start),
		cmocka_unit_test(metadata_crlf_lines),
		cmocka_unit_test(name_one_char_ok),
		cmocka_unit_test(name_valid_length_boundary),
		cmocka_unit_test(name_invalid_refused),
		cmocka_unit_test(include_trims_spaces),
		cmocka_unit_test(include_without_output_drops_it),
		cmocka_unit_test(include_unknown_refused),
		cmocka_unit_test(table_retain_lines_bad_refused),
		cmocka_unit_test(table_retain_lines_zero_ok),
		cmocka_unit_test(restart_values),
		cmocka_unit_test(interval_units_and_range),
		cmocka_unit_test(print_mode_values),
		cmocka_unit_test(later_metadata_wins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
