/* SPDX-License-Identifier: MIT */
/*
 * test_bterr.c - sorting bpftrace's stderr into warnings and errors:
 * the shapes bpftrace 0.17 (real, as root here) writes for a missing
 * #include and a syntax error at end of file, and every recorded stderr
 * of bpftrace 0.17, 0.23 and 0.27 in $BT_SHARED/fixtures: the
 * RLIMIT_MEMLOCK line and WARNING blocks are warnings, and a script that
 * failed always has its reason among the errors.
 */
#include "testhelp.h"
#include "testhelp_fixtures.h"

#include "bterr.h"

/* classes of the lines of text, into cls (at most n); the line count */
static size_t
classify(const char *text, enum bterr_class *cls, size_t n)
{
	struct bterr	 be = { BTERR_NONE, 0 };
	const char	*p = text, *line;
	size_t		 k = 0, len;

	while (k < n && (line = th_next_line(&p, &len)) != NULL)
		cls[k++] = bterr_line(&be, line, len);
	return k;
}

#define RLIMIT_017 "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for " \
	"bpftrace. If your program is not loading, you can try \"ulimit -l " \
	"8192\" to fix the problem\n"
#define RLIMIT_023 "WARNING: Unknown error -1: couldn't set RLIMIT_MEMLOCK " \
	"for bpftrace. If your program is not loading, you can try \"ulimit " \
	"-l 8192\" to fix the problem\n"

/* bpftrace 0.17, a script with #include <net/tcp_states.h> missing */
static void
missing_include_is_an_error(void **state)
{
	static const char	 text[] = RLIMIT_017
	    "definitions.h:2:10: fatal error: 'net/tcp_states.h' file not found";
	enum bterr_class	 c[8];

	(void)state;
	assert_int_equal(classify(text, c, 8), 2);
	assert_int_equal(c[0], BTERR_WARNING);
	assert_int_equal(c[1], BTERR_ERROR);
}

/* the same after 0.23's WARNING-prefixed RLIMIT line and 0.27's extra one */
static void
missing_include_after_newer_warnings(void **state)
{
	static const char	 text[] = "WARNING: Could not read functions "
	    "from /sys/kernel/debug/tracing/available_filter_functions.\n"
	    RLIMIT_023
	    "definitions.h:2:10: fatal error: 'net/tcp_states.h' file not found\n"
	    "1 error generated.\n";
	enum bterr_class	 c[8];

	(void)state;
	assert_int_equal(classify(text, c, 8), 4);
	assert_int_equal(c[0], BTERR_WARNING);
	assert_int_equal(c[1], BTERR_WARNING);
	assert_int_equal(c[2], BTERR_ERROR);
	assert_int_equal(c[3], BTERR_ERROR);
}

/* bpftrace 0.17: "e.bt:1-4: ERROR: unexpected end of file, expected {" */
static void
line_range_location(void **state)
{
	static const char	 text[] = RLIMIT_017
	    "stdin:1-4: ERROR: unexpected end of file, expected {\n";
	enum bterr_class	 c[8];

	(void)state;
	assert_int_equal(classify(text, c, 8), 2);
	assert_int_equal(c[1], BTERR_ERROR);
}

/*
 * A warning with a location takes its source line and marker with it;
 * what comes after them is judged on its own.
 */
static void
warning_block_then_error(void **state)
{
	static const char	 text[] = RLIMIT_017
	    "stdin:1:1-16: WARNING: vfs_read is not traceable\n"
	    "kprobe:vfs_read { @x = count(); }\n"
	    "~~~~~~~~~~~~~~~\n"
	    "create_probe_event: open(/sys/kernel/tracing/kprobe_events): No "
	    "such file or directory\n"
	    "ERROR: Error attaching probe: 'kprobe:vfs_read'\n";
	enum bterr_class	 c[8];

	(void)state;
	assert_int_equal(classify(text, c, 8), 6);
	assert_int_equal(c[1], BTERR_WARNING);
	assert_int_equal(c[2], BTERR_WARNING);
	assert_int_equal(c[3], BTERR_WARNING);
	assert_int_equal(c[4], BTERR_ERROR);
	assert_int_equal(c[5], BTERR_ERROR);
}

/* the lines after a warning without source and marker are not taken */
static void
located_warning_without_source(void **state)
{
	static const char	 text[] =
	    "stdin:3:1-9: WARNING: something\n"
	    "stdin:4:1-2: ERROR: the real failure\n"
	    "BEGIN { x }\n"
	    "        ~\n"
	    "something else entirely\n";
	enum bterr_class	 c[8];

	(void)state;
	assert_int_equal(classify(text, c, 8), 5);
	assert_int_equal(c[0], BTERR_WARNING);
	assert_int_equal(c[1], BTERR_ERROR);
	assert_int_equal(c[2], BTERR_ERROR);
	assert_int_equal(c[3], BTERR_ERROR);
	assert_int_equal(c[4], BTERR_ERROR);
}

/* text that merely mentions a tag is no warning */
static void
mentions_are_errors(void **state)
{
	static const char	 text[] = RLIMIT_023
	    "libbpf: prog 'x': WARNING: is not an opening tag here\n"
	    "some tool said: warning: without a location\n";
	enum bterr_class	 c[8];

	(void)state;
	assert_int_equal(classify(text, c, 8), 3);
	assert_int_equal(c[0], BTERR_WARNING);
	assert_int_equal(c[1], BTERR_ERROR);
	assert_int_equal(c[2], BTERR_ERROR);
}

/*
 * bpftrace 0.27, a while loop too long for the verifier: the HINT goes
 * with the warning before it; the error is the loading failure alone.
 */
static void
hint_follows_its_diagnostic(void **state)
{
	static const char	 text[] = RLIMIT_023
	    "large_output.bt:1:17-139: WARNING: While loops are deprecated and "
	    "may be removed in the future.\n"
	    "BEGIN { $i = 0; while ($i < 3000) { $i++; } exit(); }\n"
	    "                ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
	    "HINT: For loops support ranges (e.g. `for ($x : $start..$end) { "
	    "... }`), and can be used in place of while.\n"
	    "ERROR: Error loading BPF program for begin_1. Error code: -28 (No "
	    "space left on device). Use -v for full kernel error log.\n"
	    "HINT: an error's hint\n"
	    "WARNING: Total lost event count: 21910\n";
	static const char	 alone[] = "HINT: nothing before it\n";
	enum bterr_class	 c[8];

	(void)state;
	assert_int_equal(classify(text, c, 8), 8);
	for (int i = 0; i < 5; i++)
		assert_int_equal(c[i], BTERR_WARNING);
	assert_int_equal(c[5], BTERR_ERROR);
	assert_int_equal(c[6], BTERR_ERROR);
	assert_int_equal(c[7], BTERR_WARNING);
	assert_int_equal(classify(alone, c, 8), 1);
	assert_int_equal(c[0], BTERR_WARNING);
}

/* an error line that says what failed: bpftrace's or clang's */
static int
is_cause(const char *line, size_t len)
{
	return memmem(line, len, "ERROR:", 6) != NULL ||
	    memmem(line, len, " error: ", 8) != NULL;
}

/*
 * One recorded stderr (path: NAME.stderr, NAME.rc beside it): the RLIMIT
 * line is a warning; a script that ran (rc 0) has no error line; one
 * that failed (rc != 0) has its cause ("ERROR:" or a clang error) among
 * the errors, and no WARNING or HINT line there.
 */
static void
check_stderr_fixture(const char *path, const char *label, void *arg)
{
	char		 rcpath[4096], *err, *rc;
	const char	*p, *ln;
	size_t		 n, nerr = 0, ll;
	int		 cause;
	enum bterr_class c[4096];

	(void)arg;
	snprintf(rcpath, sizeof(rcpath), "%.*s.rc", (int)(strlen(path) - 7),
	    path);
	err = th_slurp(path, NULL);
	rc = th_slurp(rcpath, NULL);
	assert_non_null(err);
	assert_non_null(rc);
	n = classify(err, c, 4096);
	cause = 0;
	p = err;
	for (size_t i = 0; i < n && (ln = th_next_line(&p, &ll)) != NULL;
	    i++) {
		if (c[i] != BTERR_ERROR)
			continue;
		nerr++;
		cause |= is_cause(ln, ll);
		if (strncmp(ln, "HINT:", 5) == 0 ||
		    memmem(ln, ll, "WARNING:", 8) != NULL)
			fail_msg("%s: \"%.*s\" filed as an error", label,
			    (int)ll, ln);
	}
	if (atoi(rc) != 0 && nerr > 0 && !cause)
		fail_msg("%s: failed (rc %d), its errors do not say why",
		    label, atoi(rc));
	if (strstr(err, "RLIMIT_MEMLOCK") && n > 0 &&
	    strncmp(err, "WARNING: Could not", 18) != 0)
		assert_int_equal(c[0], BTERR_WARNING);
	if (atoi(rc) != 0 && nerr == 0)
		fail_msg("%s: failed (rc %d), no error line", label, atoi(rc));
	if (atoi(rc) == 0 && nerr != 0)
		fail_msg("%s: ran (rc 0), %zu error lines", label, nerr);
	free(err);
	free(rc);
}

/* every recorded stderr: each version's cases and its extra/ ones */
static void
fixtures_of_three_versions(void **state)
{
	int	 files;

	(void)state;
	files = th_each_fixture(".stderr", check_stderr_fixture, NULL);
	if (files == 0)
		skip();
	print_message("# %d stderr fixtures classified\n", files);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(missing_include_is_an_error),
		cmocka_unit_test(missing_include_after_newer_warnings),
		cmocka_unit_test(line_range_location),
		cmocka_unit_test(warning_block_then_error),
		cmocka_unit_test(located_warning_without_source),
		cmocka_unit_test(mentions_are_errors),
		cmocka_unit_test(hint_follows_its_diagnostic),
		cmocka_unit_test(fixtures_of_three_versions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
