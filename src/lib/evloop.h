/* SPDX-License-Identifier: MIT */
/* evloop.h - the main thread's epoll loop (see evloop.c). */
#ifndef BT_EVLOOP_H
#define BT_EVLOOP_H

#include <stdint.h>

struct evwatch;
typedef void (*evwatch_fn)(struct evwatch *, uint32_t);
typedef void (*evloop_tick_fn)(void *);

struct evwatch {
	int		 ew_fd;
	uint32_t	 ew_events;
	evwatch_fn	 ew_cb;
	void		*ew_arg;
};

struct evloop;
struct evloop	*evloop_new(void);
void		 evloop_free(struct evloop *);
int		 evloop_add(struct evloop *, struct evwatch *);
int		 evloop_del(struct evloop *, struct evwatch *);
void		 evloop_set_tick(struct evloop *, int, evloop_tick_fn, void *);
void		 evloop_stop(struct evloop *);
int		 evloop_run(struct evloop *);

#endif
