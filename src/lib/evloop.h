/* SPDX-License-Identifier: MIT */
/* evloop.h - the main thread's epoll loop (see evloop.c). */
#ifndef BT_EVLOOP_H
#define BT_EVLOOP_H

#include <stdint.h>

struct evwatch;
typedef void (*evwatch_fn)(struct evwatch *w, uint32_t events);
typedef void (*evloop_tick_fn)(void *arg);

struct evwatch {
	int		 ew_fd;
	uint32_t	 ew_events;
	evwatch_fn	 ew_cb;
	void		*ew_arg;
};

struct evloop;
struct evloop	*evloop_new(void);
void		 evloop_free(struct evloop *el);
int		 evloop_add(struct evloop *el, struct evwatch *w);
int		 evloop_del(struct evloop *el, struct evwatch *w);
void		 evloop_set_tick(struct evloop *el, int ms, evloop_tick_fn fn,
		    void *arg);
void		 evloop_stop(struct evloop *el);
int		 evloop_run(struct evloop *el);

#endif
