/* SPDX-License-Identifier: MIT */
/*
 * btversion.c - find out which bpftrace we have: runs "bpftrace --version"
 * once at start-up and keeps the "vX.Y.Z" word. A missing or failing
 * bpftrace is not fatal: the daemon serves its state and says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpftraced.h"

extern char **environ;

#define BT_VERSION_TIMEOUT_MS	5000

static int
read_all(int fd, char *out, size_t len)
{
	size_t	 got = 0;
	int64_t	 deadline = now_mono_ms() + BT_VERSION_TIMEOUT_MS;

	while (got + 1 < len) {
		struct pollfd	 pfd = { .fd = fd, .events = POLLIN };
		int64_t		 left = deadline - now_mono_ms();
		ssize_t		 n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		if ((n = read(fd, out + got, len - 1 - got)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	return 0;
}

/* out gets e.g. "v0.17.0"; err says why when -1 is returned. */
int
bt_detect_version(const char *path, char *out, size_t outlen, char *err,
    size_t errlen)
{
	posix_spawn_file_actions_t	 fa;
	char				 text[256], *v, *argv[3];
	int				 p[2], status, rv;
	pid_t				 pid;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) == -1) {
		seterr(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	argv[0] = (char *)path;
	argv[1] = "--version";
	argv[2] = NULL;
	rv = posix_spawnp(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rv != 0) {
		close(p[0]);
		seterr(err, errlen, "cannot run %s: %s", path, strerror(rv));
		return -1;
	}
	rv = read_all(p[0], text, sizeof(text));
	close(p[0]);
	if (rv == -1)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (rv == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		seterr(err, errlen, "%s --version failed", path);
		return -1;
	}
	if ((v = strstr(text, " v")) == NULL) {
		seterr(err, errlen, "unexpected %s --version output", path);
		return -1;
	}
	v++;
	v[strcspn(v, " \r\n")] = '\0';
	snprintf(out, outlen, "%s", v);
	return 0;
}
