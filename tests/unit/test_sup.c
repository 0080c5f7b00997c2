/* SPDX-License-Identifier: MIT */
/*
 * test_sup.c - the child-process layer: line splitting across reads,
 * over-long lines, spawning (a failed exec is reported, not hidden),
 * reading a child's output to EOF, exit codes and signals.
 */
#include "testhelp.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "buf.h"
#include "scripts.h"

extern char **environ;

struct lines {
	char	 got[64][256];
	int	 cut[64];
	int	 n;
};

static void
on_line(void *arg, const char *line, size_t len, int cut)
{
	struct lines	*l = arg;

	if (l->n < 64) {
		snprintf(l->got[l->n], sizeof(l->got[0]), "%.*s", (int)len,
		    line);
		l->cut[l->n++] = cut;
	}
}

static void
lines_split_across_chunks(void **state)
{
	struct lines	 l = { .n = 0 };
	struct buf	 lb;

	(void)state;
	buf_init(&lb, 1024);
	sup_split_lines(&lb, "ab", 2, on_line, &l);
	assert_int_equal(l.n, 0);
	sup_split_lines(&lb, "c\nd\n\ne", 6, on_line, &l);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.got[0], "abc");
	assert_string_equal(l.got[1], "d");
	assert_string_equal(l.got[2], "");
	sup_split_lines(&lb, "f\n", 2, on_line, &l);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.got[3], "ef");
	assert_int_equal(l.cut[3], 0);
	buf_free(&lb);
}

static void
overlong_line_is_cut_and_next_line_is_whole(void **state)
{
	struct lines	 l = { .n = 0 };
	struct buf	 lb;
	char		 big[100];

	(void)state;
	memset(big, 'x', sizeof(big));
	buf_init(&lb, 16);
	sup_split_lines(&lb, "start", 5, on_line, &l);
	sup_split_lines(&lb, big, sizeof(big), on_line, &l);
	sup_split_lines(&lb, "\nnext\n", 6, on_line, &l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.cut[0], 1);
	assert_string_equal(l.got[1], "next");
	assert_int_equal(l.cut[1], 0);
	buf_free(&lb);
}

static void
spawn_missing_binary_reports_exec_error(void **state)
{
	struct child	 ch;
	char		 err[256] = "";

	(void)state;
	assert_int_equal(sup_spawn(&ch, "/nonexistent/bpftrace", environ,
	    "BEGIN{}", 7, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot run /nonexistent/bpftrace"));
	assert_non_null(strstr(err, "No such file"));
}

/* Drain both pipes of ch into l until EOF; return the child's status. */
static int
drain_and_reap(struct child *ch, struct lines *l)
{
	struct buf	 lo, le;
	struct lines	 errl = { .n = 0 };

	buf_init(&lo, 1 << 20);
	buf_init(&le, 1 << 20);
	while (ch->ch_out >= 0 || ch->ch_err >= 0) {
		struct pollfd	 p[2] = { { ch->ch_out, POLLIN, 0 },
				    { ch->ch_err, POLLIN, 0 } };

		poll(p, 2, 1000);
		if (ch->ch_out >= 0 && sup_read_lines(ch->ch_out, &lo, 1 << 20,
		    on_line, l) == -1) {
			close(ch->ch_out);
			ch->ch_out = -1;
		}
		if (ch->ch_err >= 0 && sup_read_lines(ch->ch_err, &le, 1 << 20,
		    on_line, &errl) == -1) {
			close(ch->ch_err);
			ch->ch_err = -1;
		}
	}
	while (!sup_reap(ch))
		usleep(1000);
	buf_free(&lo);
	buf_free(&le);
	return ch->ch_exit_code;
}

/* 1 when the shared bpftrace fixtures are there to replay */
static int
have_fixtures(void)
{
	char		 p[4096];
	const char	*sh = getenv("BT_SHARED");

	if (sh == NULL)
		return 0;
	snprintf(p, sizeof(p), "%s/fixtures/bpftrace-0.17/scalar_count.stdout",
	    sh);
	if (access(p, R_OK) == 0)
		return 1;
	print_message("skipped: %s not found\n", p);
	return 0;
}

static const char *
fake_path(void)
{
	static char	 p[4096];
	const char	*src = getenv("BT_SRCDIR");

	snprintf(p, sizeof(p), "%s/tests/lib/fake-bpftrace", src ? src : ".");
	return p;
}

static void
spawn_reads_output_to_eof_and_exit_code(void **state)
{
	struct child	 ch;
	struct lines	 l = { .n = 0 };
	char		 err[256];
	const char	*code = "// fixture: syntax_error\n";

	(void)state;
	if (!have_fixtures())
		skip();
	assert_int_equal(sup_spawn(&ch, fake_path(), environ, code,
	    strlen(code), 1, err, sizeof(err)), 0);
	assert_true(ch.ch_pid > 0);
	assert_int_equal(drain_and_reap(&ch, &l), 1);	/* syntax_error.rc */
	assert_int_equal(l.n, 0);			/* nothing on stdout */
	sup_close(&ch);
}

static void
spawn_scalar_fixture_lines(void **state)
{
	struct child	 ch;
	struct lines	 l = { .n = 0 };
	char		 err[256];
	const char	*code = "// fixture: scalar_count\n";

	(void)state;
	if (!have_fixtures())
		skip();
	assert_int_equal(sup_spawn(&ch, fake_path(), environ, code,
	    strlen(code), 1, err, sizeof(err)), 0);
	assert_int_equal(drain_and_reap(&ch, &l), 0);
	assert_true(l.n >= 2);
	assert_non_null(strstr(l.got[0], "attached_probes"));
	sup_close(&ch);
}

static void
signal_group_stops_child(void **state)
{
	struct child	 ch;
	struct lines	 l = { .n = 0 };
	char		 err[256];
	const char	*code = "// fixture: scalar_count\n// fake: hold\n";

	(void)state;
	if (!have_fixtures())
		skip();
	assert_int_equal(sup_spawn(&ch, fake_path(), environ, code,
	    strlen(code), 1, err, sizeof(err)), 0);
	usleep(300000);
	assert_int_equal(sup_reap(&ch), 0);		/* still running */
	assert_int_equal(sup_signal(&ch, SIGINT), 0);
	assert_int_equal(drain_and_reap(&ch, &l), 0);	/* hold: exit 0 */
	assert_int_equal(sup_signal(&ch, SIGINT), -1);	/* reaped: refused */
	sup_close(&ch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_split_across_chunks),
		cmocka_unit_test(overlong_line_is_cut_and_next_line_is_whole),
		cmocka_unit_test(spawn_missing_binary_reports_exec_error),
		cmocka_unit_test(spawn_reads_output_to_eof_and_exit_code),
		cmocka_unit_test(spawn_scalar_fixture_lines),
		cmocka_unit_test(signal_group_stops_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
