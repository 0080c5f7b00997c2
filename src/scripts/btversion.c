/* SPDX-License-Identifier: MIT */
/*
 * btversion.c - find out which bpftrace we have: runs "bpftrace --version"
 * once at start-up and keeps the "vX.Y.Z" word. A missing or failing
 * bpftrace is not fatal: the daemon serves its state and says why.
 * It takes 30-70 ms with a real bpftrace, so it runs on a thread of its
 * own while the daemon starts listening: until it is done the version is
 * "pending" (bpftrace.info.version has no value, scripts wait in
 * "starting"). The thread writes ds->bpftrace_version once, then
 * publishes bt_state (release); readers load bt_state (acquire) first.
 * It starts before privs_drop(), which lowers the main thread's sets
 * only, so "bpftrace --version" keeps full capabilities, as it had when
 * it ran on the main thread before the drop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "scripts.h"
#include "spawnenv.h"
#include "util.h"

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

/*
 * out gets e.g. "v0.17.0"; err says why when -1 is returned. path is
 * bpftrace's absolute path (spawnenv_bpftrace(); NULL: not found), envp
 * its environment (spawnenv_envp()): environ and $PATH are not read here.
 */
int
bt_detect_version(const char *path, char *const envp[], char *out,
    size_t outlen, char *err, size_t errlen)
{
	posix_spawn_file_actions_t	 fa;
	char				 text[256], *v, *argv[3];
	int				 p[2], status, rv;
	pid_t				 pid;

	out[0] = '\0';
	if (path == NULL) {
		seterr(err, errlen, "%s", spawnenv_bpftrace_error());
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		seterr(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);	/* 0-2 only */
	argv[0] = (char *)path;
	argv[1] = "--version";
	argv[2] = NULL;
	rv = posix_spawn(&pid, path, &fa, NULL, argv, envp);
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

/* --- in the background, at start --- */

static void
bt_version_finish(struct daemon_state *ds, int ok, const char *err)
{
	if (ok)
		log_info("using bpftrace %s (%s)", ds->bpftrace_version,
		    spawnenv_bpftrace());
	else
		log_warnx("bpftrace unavailable: %s; scripts cannot run", err);
	atomic_store_explicit(&ds->bt_state, ok ? BT_VERSION_KNOWN :
	    BT_VERSION_MISSING, memory_order_release);
}

static void *
bt_version_thread(void *arg)
{
	struct daemon_state	*ds = arg;
	char			 err[512];
	int			 ok;

	ok = bt_detect_version(spawnenv_bpftrace(), spawnenv_envp(),
	    ds->bpftrace_version, sizeof(ds->bpftrace_version), err,
	    sizeof(err)) == 0;
	bt_version_finish(ds, ok, err);
	if (ds->bt_on_done)	/* e.g. start the scripts that waited */
		ds->bt_on_done(ds);
	return NULL;
}

/*
 * Run bpftrace --version on a thread (or here, when wait is set or no
 * thread can be made). Main thread, once: on_done (NULL: none) runs on
 * that thread when it is done, so the caller can wake the main loop.
 * bt_version_join() before exit.
 */
void
bt_version_start(struct daemon_state *ds, int wait,
    void (*on_done)(struct daemon_state *ds))
{
	ds->bt_on_done = on_done;
	if (!wait && pthread_create(&ds->bt_thread, NULL, bt_version_thread,
	    ds) == 0) {
		ds->bt_thread_started = 1;
		return;
	}
	bt_version_thread(ds);
}

void
bt_version_join(struct daemon_state *ds)
{
	if (ds->bt_thread_started)
		pthread_join(ds->bt_thread, NULL);
	ds->bt_thread_started = 0;
}

/* BT_VERSION_PENDING, _KNOWN or _MISSING. Any thread. */
int
bt_version_state(const struct daemon_state *ds)
{
	return atomic_load_explicit(&ds->bt_state, memory_order_acquire);
}

/* "v0.17.0"; "" when bpftrace is missing or not asked yet. Any thread. */
const char *
bt_version(const struct daemon_state *ds)
{
	return bt_version_state(ds) == BT_VERSION_KNOWN ?
	    ds->bpftrace_version : "";
}

/*
 * Is version v ("v0.17.0" or "0.17.0") at least major.minor? An unknown
 * format counts as new, as the PMDA does. Any thread.
 */
int
bt_version_at_least(const char *v, int major, int minor)
{
	static const unsigned long long max[] = { INT_MAX, INT_MAX };
	unsigned long long	 n[2];
	const char		*rest, *errstr;

	if (v == NULL || strtonum_dotted(v[0] == 'v' ? v + 1 : v, 2, max, n,
	    &rest, &errstr) == -1)
		return 1;	/* unknown format: assume new, as the PMDA */
	return (int)n[0] > major || ((int)n[0] == major && (int)n[1] >= minor);
}
