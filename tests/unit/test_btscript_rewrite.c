/* SPDX-License-Identifier: MIT */
/*
 * test_btscript_rewrite.c - the script rewriter: the print block
 * appended for the exported variables (or none: custom output block,
 * on-demand), the SIGUSR1 probe for on-demand prints, and the script's
 * own bytes kept exactly, on hand-made and on real bpftrace 0.17
 * scripts from ../shared/fixtures.
 */
#include "testhelp.h"
#include "btscript_testhelp.h"

/* --- rewriting --- */

static char *
rewrite(const char *code, long interval_ms, size_t *lenp)
{
	struct bts_info	 info;
	char		 err[ERRLEN], *out;

	if (analyze(code, &info, err) != 0)
		fail_msg("refused: %s", err);
	out = bts_rewrite(code, strlen(code), &info, interval_ms, lenp);
	bts_info_free(&info);
	assert_non_null(out);
	return out;
}

static void
rewrite_appends_print_block(void **state)
{
	size_t	 len;
	char	*out;

	out = rewrite("BEGIN { @a = 1; @ = 2; printf(\"x\"); @b[1] = 3; }",
	    1000, &len);
	assert_string_equal(out, "BEGIN { @a = 1; @ = 2; printf(\"x\"); "
	    "@b[1] = 3; }\ninterval:ms:1000 { print(@a); print(@); "
	    "print(@b); }\n");
	assert_int_equal(len, strlen(out));
	free(out);
	out = rewrite("BEGIN { @a = 1; }", 250, &len);
	assert_string_equal(out,
	    "BEGIN { @a = 1; }\ninterval:ms:250 { print(@a); }\n");
	free(out);
	out = rewrite("BEGIN { @a = 1; }", 0, &len);
	assert_string_equal(out,
	    "BEGIN { @a = 1; }\ninterval:ms:1000 { print(@a); }\n");
	free(out);
}

static void
rewrite_prints_only_included(void **state)
{
	size_t	 len;
	char	*out;

	out = rewrite("// include: @b\nBEGIN { @a = 1; @b = 2; }", 1000, &len);
	assert_non_null(strstr(out, "\ninterval:ms:1000 { print(@b); }\n"));
	assert_null(strstr(out, "print(@a)"));
	free(out);
}

static void
rewrite_custom_output_block_untouched(void **state)
{
	const char	*code = "// custom-output-block\nBEGIN { @a = 1; }\n"
	    "interval:s:1 { print(@a); }";
	size_t		 len;
	char		*out;

	out = rewrite(code, 1000, &len);
	assert_string_equal(out, code);
	assert_int_equal(len, strlen(code));
	free(out);
	out = rewrite("// print: on-demand\nBEGIN { @a = 1; }", 1000, &len);
	assert_string_equal(out, "// print: on-demand\nBEGIN { @a = 1; }");
	free(out);
	out = rewrite("BEGIN { printf(\"only output\"); }", 1000, &len);
	assert_string_equal(out, "BEGIN { printf(\"only output\"); }");
	free(out);
}

/* on-demand with bpftrace 0.22+: a SIGUSR1 probe prints the variables */
static void
rewrite_usr1_probe(void **state)
{
	static const char	 code[] = "// print: on-demand\nBEGIN { @a = 1; "
	    "@[1] = 2; @h = hist(3); printf(\"x\"); }";
	struct bts_info		 info;
	char			 err[ERRLEN], *out;
	size_t			 len;

	(void)state;
	assert_int_equal(analyze(code, &info, err), 0);
	out = bts_rewrite_usr1(code, strlen(code), &info, &len);
	assert_non_null(out);
	assert_string_equal(out, "// print: on-demand\nBEGIN { @a = 1; "
	    "@[1] = 2; @h = hist(3); printf(\"x\"); }\n"
	    "self:signal:SIGUSR1 { print(@a); print(@); print(@h); }\n");
	assert_int_equal(len, strlen(out));
	free(out);
	bts_info_free(&info);
	/* only printf output: nothing to print, no probe */
	assert_int_equal(analyze("BEGIN { printf(\"x\"); }", &info, err), 0);
	out = bts_rewrite_usr1("BEGIN { printf(\"x\"); }", 22, &info, &len);
	assert_string_equal(out, "BEGIN { printf(\"x\"); }");
	free(out);
	bts_info_free(&info);
}

static void
rewrite_keeps_code_bytes(void **state)
{
	/* CRLF, tabs, UTF-8, odd bytes, no final newline, trailing comment */
	const char	 code[] = "// name: x\r\nBEGIN {\t@k[\"caf\xc3\xa9\"]"
	    " = 1; $b = \"\xff\\\"\"; } // end";
	const char	 tail[] = "\ninterval:ms:1000 { print(@k); }\n";
	struct bts_info	 info;
	char		 err[ERRLEN], *out;
	size_t		 len, n = sizeof(code) - 1;

	assert_int_equal(bts_analyze(code, n, &info, err, sizeof(err)), 0);
	out = bts_rewrite(code, n, &info, 1000, &len);
	assert_non_null(out);
	assert_int_equal(len, n + strlen(tail));
	assert_memory_equal(out, code, n);
	assert_string_equal(out + n, tail);
	free(out);
	out = bts_rewrite(code, n, NULL, 1000, &len);	/* no info: copy */
	assert_int_equal(len, n);
	assert_memory_equal(out, code, n);
	assert_int_equal(out[n], '\0');
	free(out);
	bts_info_free(&info);
}

/* --- real bpftrace 0.17 scripts --- */

static void
fixture_rewrite_keeps_code(void **state)
{
	const char	*files[] = { "keys_special_strings.bt",
		"printf_special_chars.bt", "sigusr1_dump.bt", NULL };
	struct bts_info	 info;
	size_t		 len, outlen;
	char		 err[ERRLEN], *code, *out;

	if (!fixtures_present())
		skip();
	for (int i = 0; files[i] != NULL; i++) {
		code = read_fixture(files[i], &len);
		assert_non_null(code);
		assert_int_equal(bts_analyze(code, len, &info, err,
		    sizeof(err)), 0);
		out = bts_rewrite(code, len, &info, 1000, &outlen);
		assert_non_null(out);
		assert_true(outlen > len);
		assert_memory_equal(out, code, len);
		assert_memory_equal(out + len, "\ninterval:ms:1000 {", 19);
		free(out);
		free(code);
		bts_info_free(&info);
	}
	code = read_fixture("sigusr1_dump.bt", &len);
	assert_non_null(code);
	assert_int_equal(bts_analyze(code, len, &info, err, sizeof(err)), 0);
	out = bts_rewrite(code, len, &info, 2000, &outlen);
	assert_string_equal(out + len, "\ninterval:ms:2000 { print(@a); "
	    "print(@b); print(@h); }\n");
	free(out);
	free(code);
	bts_info_free(&info);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rewrite_appends_print_block),
		cmocka_unit_test(rewrite_prints_only_included),
		cmocka_unit_test(rewrite_custom_output_block_untouched),
		cmocka_unit_test(rewrite_keeps_code_bytes),
		cmocka_unit_test(fixture_rewrite_keeps_code),
		cmocka_unit_test(rewrite_usr1_probe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
