/* SPDX-License-Identifier: MIT */
/* test_buf.c - the capped buffer: growth, caps, sticky failure, ownership. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testhelp.h"
#include "buf.h"
#include "memcap.h"

static void
buf_appends_and_terminates(void **state)
{
	struct buf	 b;

	buf_init(&b, TEST_BUF_MAX);
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_int_equal(buf_putc(&b, 'd'), 0);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_string_equal(buf_cstr(&b), "abcd42-x");
	assert_int_equal(b.b_len, 8);
	buf_free(&b);
	assert_null(b.b_data);
	buf_free(&b);		/* double free is harmless */
}

static void
buf_grows_past_initial_capacity(void **state)
{
	struct buf	 b;

	buf_init(&b, TEST_BUF_MAX);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_printf(&b, "%05d", i), 0);
	assert_int_equal(b.b_len, 50000);
	assert_memory_equal(b.b_data + 49995, "09999", 5);
	buf_free(&b);
}

static void
buf_cap_fails_and_sticks(void **state)
{
	struct buf	 b;

	buf_init(&b, 10);
	assert_int_equal(buf_puts(&b, "0123456789"), 0);
	assert_int_equal(buf_putc(&b, 'x'), -1);
	assert_true(b.b_failed);
	assert_int_equal(buf_puts(&b, ""), -1);	/* sticky */
	assert_int_equal(b.b_len, 10);
	buf_reset(&b);
	assert_false(b.b_failed);
	assert_int_equal(buf_printf(&b, "%s", "01234567890"), -1);
	buf_free(&b);
}

static void
buf_take_hands_over_memory(void **state)
{
	struct buf	 b;
	size_t		 len;
	char		*p;

	buf_init(&b, TEST_BUF_MAX);
	p = buf_take(&b, &len);		/* empty buffer gives "" */
	assert_non_null(p);
	assert_string_equal(p, "");
	assert_int_equal(len, 0);
	free(p);
	buf_puts(&b, "hello");
	p = buf_take(&b, &len);
	assert_string_equal(p, "hello");
	assert_int_equal(len, 5);
	assert_null(b.b_data);
	free(p);
}

static void
buf_truncate_rolls_back(void **state)
{
	struct buf	 b;

	buf_init(&b, TEST_BUF_MAX);
	buf_puts(&b, "keep,drop");
	buf_truncate(&b, 4);
	assert_int_equal(b.b_len, 4);
	assert_string_equal(buf_cstr(&b), "keep");
	buf_truncate(&b, 10);		/* past the end: nothing happens */
	assert_string_equal(buf_cstr(&b), "keep");
	buf_free(&b);
}

/* a charged buffer: capacity charged as it grows, released when freed */
static void
buf_charges_its_capacity(void **state)
{
	struct memcap	 mc;
	struct buf	 b;
	size_t		 len, charged;
	char		*p;

	memcap_init(&mc, 4096);
	buf_init(&b, TEST_BUF_MAX);
	buf_charge_to(&b, &mc);
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_int_equal(memcap_used(&mc), b.b_cap);
	assert_int_equal(buf_reserve(&b, 1500), 0);
	assert_int_equal(memcap_used(&mc), b.b_cap);
	/* past the ceiling: refused, nothing more charged, sticky */
	assert_int_equal(buf_reserve(&b, 5000), -1);
	assert_int_equal(b.b_failed, BUF_REFUSED);
	assert_int_equal(memcap_used(&mc), b.b_cap);
	buf_free(&b);
	assert_int_equal(memcap_used(&mc), 0);
	/* taken with its charge: the taker releases it */
	assert_int_equal(buf_puts(&b, "xyz"), 0);
	p = buf_take_charged(&b, &len, &charged);
	assert_int_equal(len, 3);
	assert_int_equal(memcap_used(&mc), charged);
	assert_true(charged > 0);
	free(p);
	memcap_release(&mc, charged);
	/* buf_take ends the charge */
	assert_int_equal(buf_puts(&b, "xyz"), 0);
	free(buf_take(&b, NULL));
	assert_int_equal(memcap_used(&mc), 0);
	/* the cap still says BUF_TOO_BIG */
	buf_init(&b, 8);
	buf_charge_to(&b, &mc);
	assert_int_equal(buf_puts(&b, "123456789"), -1);
	assert_int_equal(b.b_failed, BUF_TOO_BIG);
	buf_free(&b);
	assert_int_equal(memcap_used(&mc), 0);
}

/* buf_init(max) in a child: how it ended (its stderr is /dev/null) */
static int
init_in_child(size_t max)
{
	struct buf	 b;
	pid_t		 pid;
	int		 st = 0;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(2);
		buf_init(&b, max);
		buf_free(&b);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

/* no uncapped buffer: a cap of 0 (or past BUF_MAX) is a bug, aborted */
static void
buf_zero_cap_aborts(void **state)
{
	int	 st;

	st = init_in_child(0);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	st = init_in_child(BUF_MAX + 1);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	st = init_in_child(1);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = init_in_child(BUF_MAX);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* the smallest and the largest cap hold what they say */
static void
buf_caps_at_their_bounds(void **state)
{
	struct buf	 b;

	buf_init(&b, 1);
	assert_int_equal(buf_putc(&b, 'a'), 0);
	assert_string_equal(buf_cstr(&b), "a");
	errno = 0;
	assert_int_equal(buf_putc(&b, 'b'), -1);
	assert_int_equal(errno, E2BIG);
	assert_int_equal(b.b_failed, BUF_TOO_BIG);
	buf_free(&b);
	buf_init(&b, BUF_MAX);
	assert_int_equal(b.b_max, BUF_MAX);
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_true(b.b_cap >= 4 && b.b_cap <= BUF_MAX + 1);
	/* a reserve past the cap is refused before any allocation */
	assert_int_equal(buf_reserve(&b, BUF_MAX), -1);
	assert_int_equal(b.b_failed, BUF_TOO_BIG);
	assert_string_equal(buf_cstr(&b), "abc");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_appends_and_terminates),
		cmocka_unit_test(buf_grows_past_initial_capacity),
		cmocka_unit_test(buf_cap_fails_and_sticks),
		cmocka_unit_test(buf_take_hands_over_memory),
		cmocka_unit_test(buf_truncate_rolls_back),
		cmocka_unit_test(buf_charges_its_capacity),
		cmocka_unit_test(buf_zero_cap_aborts),
		cmocka_unit_test(buf_caps_at_their_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
