/* SPDX-License-Identifier: MIT */
/*
 * sup.c - the bpftrace child processes: spawn one per running script
 * (own process group, PR_SET_PDEATHSIG, script text on stdin from a
 * memfd so a big script never blocks us on a pipe), read its stdout and
 * stderr as non-blocking pipes split into lines, signal the group, reap.
 * Runs on the main thread only; scripts.c decides what to do with lines
 * and exits. A failed exec comes back over a CLOEXEC pipe as an errno.
 * The child gets fds 0-2 only: every other fd is closed before the exec,
 * inherited ones without CLOEXEC included.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "scripts.h"
#include "util.h"

/* --- spawning --- */

static int
code_memfd(const char *code, size_t len)
{
	int	 fd;
	size_t	 off = 0;

	if ((fd = memfd_create("bpftraced-script", MFD_CLOEXEC)) == -1)
		return -1;
	while (off < len) {
		ssize_t	 n = write(fd, code + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) == -1)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/*
 * In the child: only async-signal-safe calls until exec. parent is the
 * daemon's pid from before the fork: if it died before PR_SET_PDEATHSIG
 * took effect, no signal will come, so give up rather than run bpftrace
 * as init's orphan.
 */
static void __attribute__((noreturn))
child_exec(char *const argv[], char *const envp[], int in, int out, int err,
    int report, pid_t parent)
{
	sigset_t	 none;
	int		 e;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(in, 0) == -1 || dup2(out, 1) == -1 || dup2(err, 2) == -1)
		goto fail;
	/* nothing else of ours (or of whoever started us) reaches bpftrace;
	   report (CLOEXEC) stays open until the exec succeeds */
	if (report > 3)
		close_range(3, (unsigned)report - 1, 0);
	close_range((unsigned)report + 1, ~0U, 0);
	/* execve: no $PATH search (execvp's getenv after a fork from a
	   threaded process could read a list another thread was changing) */
	execve(argv[0], argv, envp);
fail:
	e = errno;
	if (write(report, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static void
close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* Wait for the exec report: 0 when exec succeeded (pipe closed). */
static int
exec_result(int fd)
{
	int	 e = 0;
	ssize_t	 n;

	do {
		n = read(fd, &e, sizeof(e));
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(e) ? e : 0;
}

/*
 * Start "bpftrace -f json -" (or "-e code" when use_stdin is 0) with the
 * code. bpftrace is an absolute path, envp the child's environment.
 * Fills ch (pid, non-blocking stdout/stderr fds). -1 with err set.
 */
int
sup_spawn(struct child *ch, const char *bpftrace, char *const envp[],
    const char *code, size_t len, int use_stdin, char *err, size_t errlen)
{
	int	 fds[7] = { -1, -1, -1, -1, -1, -1, -1 };
	char	*argv[6];
	int	 e, n = 0;
	pid_t	 pid, parent = getpid();

	memset(ch, 0, sizeof(*ch));
	ch->ch_pid = -1;
	ch->ch_out = ch->ch_err = -1;
	argv[n++] = (char *)bpftrace;
	argv[n++] = "-f";
	argv[n++] = "json";
	argv[n++] = use_stdin ? "-" : "-e";
	if (!use_stdin)
		argv[n++] = (char *)code;
	argv[n] = NULL;
	if ((fds[0] = use_stdin ? code_memfd(code, len) :
	    open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1 ||
	    pipe2(&fds[1], O_CLOEXEC) == -1 || pipe2(&fds[3], O_CLOEXEC) == -1 ||
	    pipe2(&fds[5], O_CLOEXEC) == -1) {
		seterr(err, errlen, "cannot set up pipes: %s", strerror(errno));
		goto fail;
	}
	if ((pid = fork()) == -1) {
		seterr(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_exec(argv, envp, fds[0], fds[2], fds[4], fds[6],
		    parent);
	close(fds[6]);
	fds[6] = -1;
	if ((e = exec_result(fds[5])) != 0) {
		waitpid(pid, NULL, 0);
		seterr(err, errlen, "cannot run %s: %s", bpftrace, strerror(e));
		goto fail;
	}
	ch->ch_pid = pid;
	ch->ch_out = fds[1];
	ch->ch_err = fds[3];
	fds[1] = fds[3] = -1;
	fcntl(ch->ch_out, F_SETFL, O_NONBLOCK);
	fcntl(ch->ch_err, F_SETFL, O_NONBLOCK);
	close_fds(fds, 7);
	return 0;
fail:
	close_fds(fds, 7);
	return -1;
}

/* --- signals and reaping --- */

/* Signal the child's whole process group (it is its own group leader). */
int
sup_signal(struct child *ch, int sig)
{
	if (ch->ch_pid <= 0 || ch->ch_reaped)
		return -1;
	if (kill(-ch->ch_pid, sig) == -1 && kill(ch->ch_pid, sig) == -1)
		return -1;
	return 0;
}

/* Non-blocking: 1 when the child has exited (status recorded), else 0. */
int
sup_reap(struct child *ch)
{
	int	 status;
	pid_t	 r;

	if (ch->ch_pid <= 0 || ch->ch_reaped)
		return ch->ch_reaped;
	do {
		r = waitpid(ch->ch_pid, &status, WNOHANG);
	} while (r == -1 && errno == EINTR);
	if (r == 0)
		return 0;
	ch->ch_reaped = 1;
	if (r == -1) {		/* not ours any more: treat as lost */
		ch->ch_exit_code = -1;
		ch->ch_signal = 0;
		return 1;
	}
	if (WIFEXITED(status)) {
		ch->ch_exit_code = WEXITSTATUS(status);
		ch->ch_signal = 0;
	} else if (WIFSIGNALED(status)) {
		ch->ch_signal = WTERMSIG(status);
		ch->ch_exit_code = 128 + ch->ch_signal;
	}
	/* the group may outlive its leader: make sure nothing stays */
	kill(-ch->ch_pid, SIGKILL);
	return 1;
}

/* --- reading --- */

/*
 * Read what is available on fd into lb and hand out complete lines.
 * Returns bytes read (>= 0), or -1 at EOF/error (fd is done) when this
 * call read nothing before it (so every byte read is counted). A line
 * longer than lb's cap is cut: the callback gets it with truncated=1.
 * At most `budget` bytes per call so one noisy child cannot starve the
 * loop.
 */
ssize_t
sup_read_lines(int fd, struct buf *lb, size_t budget, sup_line_fn fn,
    void *arg)
{
	char	 chunk[65536];
	size_t	 total = 0;

	while (total < budget) {
		ssize_t	 n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return (ssize_t)total;
		if (n <= 0 && total > 0)
			return (ssize_t)total;	/* count these bytes now; the
						   EOF or error comes again on
						   the next call */
		if (n <= 0) {
			if (lb->b_len > 0)	/* last line without '\n' */
				fn(arg, lb->b_data, lb->b_len, 0);
			buf_reset(lb);
			return -1;
		}
		total += (size_t)n;
		sup_split_lines(lb, chunk, (size_t)n, fn, arg);
	}
	return (ssize_t)total;
}

/* Split data into lines, keeping a partial last line in lb. */
void
sup_split_lines(struct buf *lb, const char *data, size_t len, sup_line_fn fn,
    void *arg)
{
	const char	*p = data, *end = data + len, *nl;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (lb->b_len == 0 && !lb->b_failed) {
			fn(arg, p, (size_t)(nl - p), 0);
		} else {
			int	 cut = lb->b_failed ||
				    buf_append(lb, p, (size_t)(nl - p)) == -1;

			fn(arg, lb->b_data ? lb->b_data : "", lb->b_len, cut);
			buf_reset(lb);
			lb->b_failed = 0;
		}
		p = nl + 1;
	}
	if (p < end && !lb->b_failed && buf_append(lb, p,
	    (size_t)(end - p)) == -1)
		lb->b_failed = 1;	/* keep dropping until the newline */
}

void
sup_close(struct child *ch)
{
	if (ch->ch_out >= 0)
		close(ch->ch_out);
	if (ch->ch_err >= 0)
		close(ch->ch_err);
	ch->ch_out = ch->ch_err = -1;
}
