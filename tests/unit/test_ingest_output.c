/* SPDX-License-Identifier: MIT */
/*
 * test_ingest_output.c - the ingester's @output text: printf lines from
 * the bpftrace 0.17 fixtures in $BT_SHARED (skipped when absent), the
 * table header kept by table-retain-lines, and the ring bounded in lines
 * and bytes (ingest_output_max) without splitting a UTF-8 character.
 */
#include "testhelp.h"
#include "ingest_testhelp.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(printf_multiline_output),
		cmocka_unit_test(printf_ignored_without_output_var),
		cmocka_unit_test(table_retain_lines_keeps_header),
		cmocka_unit_test(output_ring_bounded),
		cmocka_unit_test(output_text_fits_output_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
