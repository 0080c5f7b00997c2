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

#include <dirent.h>
#include <stdio.h>

#include "bterr.h"

/* classes of the lines of text, into cls (at most n); the line count */
static size_t
classify(const char *text, enum bterr_class *cls, size_t n)
{
	struct bterr	 be = { BTERR_NONE, 0 };
	const char	*p = text;
	size_t		 k = 0;

	while (*p && k < n) {
		const char	*nl = strchr(p, '\n');
		size_t		 len = nl ? (size_t)(nl - p) : strlen(p);

		cls[k++] = bterr_line(&be, p, len);
		p += len + (nl != NULL);
	}
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

static char *
slurp(const char *path)
{
	FILE	*f = fopen(path, "rb");
	char	*data = NULL;
	long	 n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (data = calloc(1, n + 1)) != NULL &&
	    fread(data, 1, n, f) != (size_t)n) {
		free(data);
		data = NULL;
	}
	fclose(f);
	return data;
}

/* an error line that says what failed: bpftrace's or clang's */
static int
is_cause(const char *line, size_t len)
{
	return memmem(line, len, "ERROR:", 6) != NULL ||
	    memmem(line, len, " error: ", 8) != NULL;
}

/*
 * Every recorded stderr (each version's cases and its extra/ ones): the
 * RLIMIT line is a warning; a script that ran (rc 0) has no error line;
 * one that failed (rc != 0) has its cause ("ERROR:" or a clang error)
 * among the errors, and no WARNING or HINT line there.
 */
static void
fixtures_of_three_versions(void **state)
{
	static const char *const vers[] = { "0.17", "0.23", "0.27",
	    "0.17/extra", "0.23/extra", "0.27/extra" };
	const char	*shared = getenv("BT_SHARED");
	int		 files = 0;

	(void)state;
	if (shared == NULL)
		skip();
	for (size_t v = 0; v < sizeof(vers) / sizeof(vers[0]); v++) {
		char		 dir[2048];
		DIR		*d;
		struct dirent	*de;

		snprintf(dir, sizeof(dir), "%s/fixtures/bpftrace-%s", shared,
		    vers[v]);
		if ((d = opendir(dir)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			char		 path[4096], *err, *rc;
			size_t		 len = strlen(de->d_name), n, nerr = 0;
			int		 cause;
			enum bterr_class c[4096];

			if (len < 8 || strcmp(de->d_name + len - 7, ".stderr"))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			err = slurp(path);
			snprintf(path + strlen(path) - 7, 8, ".rc");
			rc = slurp(path);
			assert_non_null(err);
			assert_non_null(rc);
			n = classify(err, c, 4096);
			cause = 0;
			for (size_t i = 0, off = 0; i < n; i++) {
				const char	*ln = err + off;
				size_t		 ll = strcspn(ln, "\n");

				off += ll + (ln[ll] == '\n');
				if (c[i] != BTERR_ERROR)
					continue;
				nerr++;
				cause |= is_cause(ln, ll);
				if (strncmp(ln, "HINT:", 5) == 0 ||
				    memmem(ln, ll, "WARNING:", 8) != NULL)
					fail_msg("%s/%s: \"%.*s\" filed as an "
					    "error", vers[v], de->d_name,
					    (int)ll, ln);
			}
			if (atoi(rc) != 0 && nerr > 0 && !cause)
				fail_msg("%s/%s: failed (rc %d), its errors "
				    "do not say why", vers[v], de->d_name,
				    atoi(rc));
			if (strstr(err, "RLIMIT_MEMLOCK") && n > 0 &&
			    strncmp(err, "WARNING: Could not", 18) != 0)
				assert_int_equal(c[0], BTERR_WARNING);
			if (atoi(rc) != 0 && nerr == 0)
				fail_msg("%s/%s: failed (rc %d), no error line",
				    vers[v], de->d_name, atoi(rc));
			if (atoi(rc) == 0 && nerr != 0)
				fail_msg("%s/%s: ran (rc 0), %zu error lines",
				    vers[v], de->d_name, nerr);
			files++;
			free(err);
			free(rc);
		}
		closedir(d);
	}
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
