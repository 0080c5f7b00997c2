/* SPDX-License-Identifier: MIT */
/* test_evloop.c - the main loop: a watcher removed by an earlier callback
 * of the same epoll batch is not called (its memory may be gone). */
#include <sys/epoll.h>
#include <unistd.h>

#include "testhelp.h"
#include "evloop.h"

struct pair {
	struct evloop	*el;
	struct evwatch	 w[2];
	int		 fd[2][2];	/* a pipe per watcher */
	int		 deleted[2];
	int		 called_after_delete;
	int		 calls;
};

/* Like a script freed by scripts_tick: the other watcher is removed. */
static void
on_ready(struct evwatch *w, uint32_t events)
{
	struct pair	*p = w->ew_arg;
	int		 me = w == &p->w[1];

	(void)events;
	if (p->deleted[me])
		p->called_after_delete = 1;
	p->calls++;
	if (!p->deleted[!me]) {
		evloop_del(p->el, &p->w[!me]);
		p->deleted[!me] = 1;
	}
	evloop_del(p->el, w);
	p->deleted[me] = 1;
}

/* after the batch: the loop has nothing left to do */
static void
on_tick(void *arg)
{
	evloop_stop(arg);
}

static void
deleted_watcher_gets_no_pending_event(void **state)
{
	struct pair	 p = { 0 };

	(void)state;
	assert_non_null(p.el = evloop_new());
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe(p.fd[i]), 0);
		p.w[i].ew_fd = p.fd[i][0];
		p.w[i].ew_events = EPOLLIN;
		p.w[i].ew_cb = on_ready;
		p.w[i].ew_arg = &p;
		assert_int_equal(evloop_add(p.el, &p.w[i]), 0);
		assert_int_equal(write(p.fd[i][1], "x", 1), 1);
	}
	evloop_set_tick(p.el, 0, on_tick, p.el);
	assert_int_equal(evloop_run(p.el), 0);
	assert_int_equal(p.calls, 1);
	assert_false(p.called_after_delete);
	for (int i = 0; i < 2; i++) {
		close(p.fd[i][0]);
		close(p.fd[i][1]);
	}
	evloop_free(p.el);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deleted_watcher_gets_no_pending_event),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
