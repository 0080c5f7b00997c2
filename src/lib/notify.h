/* SPDX-License-Identifier: MIT */
/*
 * notify.h - sd_notify(3) over $NOTIFY_SOCKET, without libsystemd
 * (notify.c): main says READY=1 once it serves and STOPPING=1 when it
 * shuts down. Without $NOTIFY_SOCKET each call does nothing. Main thread.
 */
#ifndef BT_NOTIFY_H
#define BT_NOTIFY_H

int	 notify_open(void);
void	 notify_send(const char *state);
void	 notify_close(void);

#endif
