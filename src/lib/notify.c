/* SPDX-License-Identifier: MIT */
/*
 * notify.c - systemd's readiness protocol without libsystemd: with
 * Type=notify, systemd passes $NOTIFY_SOCKET, a Unix datagram socket
 * (a path, or an abstract name written with a leading '@'); the daemon
 * sends "READY=1" once it serves and "STOPPING=1" when it starts to shut
 * down. READY means answering: persisted scripts are registered (listed,
 * "starting") but their bpftrace may not run yet, and bpftrace --version
 * may still be running (bpftrace.info.version without a value); clients
 * see both in the scripts' status, and waiting would only delay the
 * units ordered after us. The socket is connected at start (before
 * capabilities are dropped). The variable is read from spawnenv's copy of
 * the environment and environ is left alone (threads run by then);
 * spawnenv keeps it out of the bpftrace children's environment.
 * Without $NOTIFY_SOCKET everything here does nothing.
 * Main thread only.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "spawnenv.h"

static int notify_fd = -1;

int
notify_open(void)
{
	const char		*path = spawnenv_get("NOTIFY_SOCKET");
	struct sockaddr_un	 sun;
	socklen_t		 len;
	size_t			 n;
	int			 fd;

	if (path == NULL || *path == '\0')
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sun.sun_path)) {
		log_warnx("NOTIFY_SOCKET %s: not an absolute path or @name; "
		    "readiness is not reported", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';		/* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (path[0] == '@' ? 0 : 1));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, len) == -1) {
		log_warn("NOTIFY_SOCKET %s", path);
		if (fd != -1)
			close(fd);
		return -1;
	}
	notify_fd = fd;
	return 0;
}

void
notify_send(const char *state)
{
	if (notify_fd == -1)
		return;
	if (send(notify_fd, state, strlen(state), MSG_NOSIGNAL) == -1)
		log_warn("sd_notify %s", state);
}

void
notify_close(void)
{
	if (notify_fd != -1)
		close(notify_fd);
	notify_fd = -1;
}
