/* SPDX-License-Identifier: MIT */
/*
 * evloop.c - the main thread's event loop: epoll over file descriptors
 * (signalfd, child pipes) plus one periodic tick. Only the main thread
 * touches a loop; HTTP runs in libmicrohttpd's own threads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "evloop.h"
#include "util.h"

struct evloop {
	int		 el_epfd;
	int		 el_stop;
	int		 el_tick_ms;
	int64_t		 el_next_tick;
	evloop_tick_fn	 el_tick;
	void		*el_tick_arg;
	struct epoll_event *el_batch;	/* the events being dispatched */
	int		 el_nbatch;
};

struct evloop *
evloop_new(void)
{
	struct evloop	*el;

	if ((el = calloc(1, sizeof(*el))) == NULL)
		return NULL;
	if ((el->el_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		free(el);
		return NULL;
	}
	return el;
}

void
evloop_free(struct evloop *el)
{
	if (el == NULL)
		return;
	close(el->el_epfd);
	free(el);
}

/* w must stay valid until evloop_del(); events are EPOLLIN etc. */
int
evloop_add(struct evloop *el, struct evwatch *w)
{
	struct epoll_event	 ev = { .events = w->ew_events, .data.ptr = w };

	return epoll_ctl(el->el_epfd, EPOLL_CTL_ADD, w->ew_fd, &ev);
}

/*
 * A callback may remove (and free) another watcher whose event is still
 * pending in the batch being dispatched: that event is dropped.
 */
int
evloop_del(struct evloop *el, struct evwatch *w)
{
	for (int i = 0; i < el->el_nbatch; i++)
		if (el->el_batch[i].data.ptr == w)
			el->el_batch[i].data.ptr = NULL;
	return epoll_ctl(el->el_epfd, EPOLL_CTL_DEL, w->ew_fd, NULL);
}

void
evloop_set_tick(struct evloop *el, int ms, evloop_tick_fn fn, void *arg)
{
	el->el_tick_ms = ms;
	el->el_tick = fn;
	el->el_tick_arg = arg;
	el->el_next_tick = now_mono_ms() + ms;
}

void
evloop_stop(struct evloop *el)
{
	el->el_stop = 1;
}

int
evloop_run(struct evloop *el)
{
	struct epoll_event	 evs[32];

	while (!el->el_stop) {
		int	 timeout = -1, n;

		if (el->el_tick) {
			int64_t	 left = el->el_next_tick - now_mono_ms();

			timeout = left < 0 ? 0 : (int)left;
		}
		n = epoll_wait(el->el_epfd, evs, 32, timeout);
		if (n == -1 && errno != EINTR)
			return -1;
		el->el_batch = evs;
		el->el_nbatch = n > 0 ? n : 0;
		for (int i = 0; i < n && !el->el_stop; i++) {
			struct evwatch	*w = evs[i].data.ptr;

			if (w != NULL)		/* removed meanwhile */
				w->ew_cb(w, evs[i].events);
		}
		el->el_nbatch = 0;
		if (el->el_tick && now_mono_ms() >= el->el_next_tick) {
			el->el_next_tick = now_mono_ms() + el->el_tick_ms;
			el->el_tick(el->el_tick_arg);
		}
	}
	return 0;
}
