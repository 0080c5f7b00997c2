/* SPDX-License-Identifier: MIT */
/*
 * pmda.c - PMDA mode: bpftraced serves domain 151 to a local pmcd as a
 * *socket* PMDA (pmcd.conf: "bpftrace 151 socket unix PATH"), so pminfo,
 * pmlogger, pmie and pmproxy see the same metrics as the REST API.
 *
 * Who listens: bpftraced. pmcd connects to socket PMDAs, so the daemon
 * binds PATH once at start (before privs_drop, so it can chown the socket
 * to PCP_USER for pmcd, which runs as that user) and keeps the listening
 * socket for its lifetime. pmcd neither forks nor owns the daemon: when
 * pmcd closes the connection (restart, SIGHUP reconfiguration, crash) the
 * PMDA thread goes back to accept() and serves the next pmcd.
 *
 * Threads and locks: libpcp_pmda keeps process-wide state (__pmdaMainPDU
 * has statics, the pmdaExt, the current context), so EVERY libpcp_pmda
 * call (pmdaDaemon, pmdaInit, __pmdaMainPDU, pmdaAddLabels, ...)
 * and every callback runs on the one PMDA thread started
 * here; the main thread only creates the socket before that thread exists
 * and joins it at shutdown (waking it through a pipe). The thread holds
 * no lock of its own: its per-context table and its last fetch result are
 * touched by it alone. It reads the registry through reg_acquire() and
 * source_snap() like the HTTP threads (both thread-safe; generations and
 * snapshots are immutable and reference counted), and stores go through
 * metric->m_store, which takes control.c's own locks exactly as a REST
 * store does. The users file is read under ds->auth_lock (auth_ref).
 *
 * Connection set-up: libpcp_pmda's pmdaConnect() would bind, accept once
 * and exit(1) on any socket error, and its version exchange is private,
 * so this file does the accept and the one-PDU credentials exchange
 * itself (PDU_CREDS with a CVERSION credential, both ways: a fixed part
 * of the PCP wire protocol) and then hands the descriptor to
 * __pmdaMainPDU, which is public.
 *
 * Per-context answers: control metrics answer per client context. pmcd's
 * contexts (pmdaExt.e_context, set by __pmdaMainPDU from each PDU; it is
 * what pmdaGetContext() returns inside libpcp_pmda's default callbacks,
 * which set it, and ours replace them) are mapped to ids with the top bit set
 * (PMDA_CTX_BIT), from a counter that never repeats, so they never meet a
 * REST context id (1..INT32_MAX) nor a former pmcd context.
 *
 * Who may store: pmcd sends each client's attributes (PMDA_FLAG_AUTHORIZE).
 * A local (unix socket) client comes with its uid, gid and pid
 * (SO_PEERCRED); a SASL login with a username (and uid, no pid). The
 * store's user is the SASL username, else the local uid's login name;
 * sr_loopback is set for local clients only, except PCP_USER's own
 * processes (pmproxy, pmlogger...), which speak for clients we cannot see.
 * --control=auth: the user must be in --auth-file with the control or
 * admin role (pmcd did the authentication; the password is not used).
 *
 * The files: this one is the PMDA thread, its socket and the connection
 * set-up, and pmda_start()/pmda_stop(). The callbacks it hands
 * libpcp_pmda are in pmda_fetch.c (values), pmda_store.c (stores) and
 * pmda_meta.c (descriptors, help, instances, labels, the namespace);
 * pmda_ctx.c keeps pmcd's client contexts and who each one is.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcp/pmapi.h>
#include <pcp/pmda.h>

#include "pcplib.h"

#include "bt_limits.h"
#include "daemon.h"
#include "log.h"
#include "pcp.h"
#include "pmda_int.h"
#include "spawnenv.h"
#include "util.h"

/* libpcp exports this (pmdaConnect's version exchange uses it) */

/* the wire constants of the credentials exchange (PCP protocol 2) */
#define WIRE_PDU_CREDS		0x700c
#define WIRE_CVERSION		0x1
#define WIRE_PDU_VERSION	2
#define WIRE_HDR		12	/* len, type, from */
#define HANDSHAKE_MS		5000

#define PMDA_LISTEN_BACKLOG	4
#define PMDA_RECHECK_MS		250	/* socket file still there? */

static struct {
	char			 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int			 lfd;		/* listening socket */
	int			 wake[2];	/* main -> thread: stop */
	pthread_t		 thr;
	int			 running;
	int			 listed;	/* pmcd.conf names P.path */
	dev_t			 sock_dev;	/* the socket file we made */
	ino_t			 sock_ino;
	/* PMDA thread only from here on */
	pmdaInterface		 dispatch;
	unsigned		 nconn;
} P = { .lfd = -1, .wake = { -1, -1 } };

/* ---- connection handling ---- */

/* Remove the socket file unless someone has replaced it since. */
static void
unlink_ours(void)
{
	struct stat	 st;

	if (stat(P.path, &st) == 0 && st.st_dev == P.sock_dev &&
	    st.st_ino == P.sock_ino)
		unlink(P.path);
}

static int
wait_fd(int fd, int ms)
{
	struct pollfd	 p[2] = {
		{ .fd = fd, .events = POLLIN }, { .fd = P.wake[0], .events = POLLIN }
	};
	int		 rv;

	do
		rv = poll(p, 2, ms);
	while (rv == -1 && errno == EINTR);
	if (rv == -1 || (p[1].revents & POLLIN))
		return -1;	/* error or stop */
	return rv == 0 ? 1 : 0;	/* 1: timeout */
}

static int
read_full(int fd, void *buf, size_t len)
{
	unsigned char	*p = buf;

	while (len > 0) {
		ssize_t	 n;

		if (wait_fd(fd, HANDSHAKE_MS) != 0)
			return -1;
		if ((n = read(fd, p, len)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The version exchange pmdaConnect would do: we send PDU_CREDS with one
 * CVERSION credential (protocol 2, our feature flags), pmcd answers with
 * its own. Returns pmcd's protocol version or -1.
 */
static int
handshake(int fd, unsigned flags)
{
	uint32_t	 out[5], hdr[3], body[64];
	uint32_t	 len, n;
	int		 version = -1;

	out[0] = htonl(sizeof(out));
	out[1] = htonl(WIRE_PDU_CREDS);
	out[2] = htonl((uint32_t)getpid());
	out[3] = htonl(1);
	out[4] = htonl((WIRE_CVERSION << 24) | (WIRE_PDU_VERSION << 16) |
	    (flags & 0xffff));
	if (send(fd, out, sizeof(out), MSG_NOSIGNAL) != (ssize_t)sizeof(out) ||
	    read_full(fd, hdr, sizeof(hdr)) == -1)
		return -1;
	len = ntohl(hdr[0]);
	if (ntohl(hdr[1]) != WIRE_PDU_CREDS || len < WIRE_HDR + 8 ||
	    len > WIRE_HDR + sizeof(body) || (len - WIRE_HDR) % 4 != 0 ||
	    read_full(fd, body, len - WIRE_HDR) == -1)
		return -1;
	n = ntohl(body[0]);
	for (uint32_t i = 0; i < n && 1 + i < (len - WIRE_HDR) / 4; i++) {
		uint32_t	 c = ntohl(body[1 + i]);

		if ((c >> 24) == WIRE_CVERSION)
			version = (int)((c >> 16) & 0xff);
	}
	if (version < 0)
		return -1;
	__pmSetVersionIPC(fd, version);
	return version;
}

static void
serve(int fd)
{
	pmdaExt	*pe = P.dispatch.version.any.ext;

	pe->e_infd = pe->e_outfd = fd;
	pe->e_flags |= PMDA_EXT_CONNECTED;
	for (;;) {
		if (wait_fd(fd, -1) != 0)
			break;
		if (__pmdaMainPDU(&P.dispatch) < 0)
			break;
	}
	pe->e_flags &= ~PMDA_EXT_CONNECTED;
	pe->e_infd = pe->e_outfd = -1;
	pmda_cb.nctxs = 0;	/* pmcd's contexts went with it */
	pmda_cb.have_gen = 0;	/* a new pmcd starts from its own names */
}

static int	 open_socket(char *err, size_t errlen);
static void	 poke_pmcd(void);

/* Is the socket file at P.path still the one we listen on? */
static int
socket_is_ours(void)
{
	struct stat	 st;

	return P.lfd != -1 && stat(P.path, &st) == 0 &&
	    st.st_dev == P.sock_dev && st.st_ino == P.sock_ino;
}

/*
 * pmcd removes a socket agent's Unix socket when it drops the agent (at
 * its shutdown, or after a protocol error): make a new one and ask pmcd
 * to connect. Logs a failure once until it works again.
 */
static int
reopen(void)
{
	static int	 failing;
	char		 err[256];

	if (open_socket(err, sizeof(err)) == -1) {
		if (!failing)
			log_warnx("pmda: cannot re-create %s (%s); trying again",
			    P.path, err);
		failing = 1;
		return -1;
	}
	failing = 0;
	log_info("pmda: re-created %s (pmcd had removed it)", P.path);
	if (P.listed)
		poke_pmcd();
	return 0;
}

static int
stopping(void)
{
	struct pollfd	 p = { .fd = P.wake[0], .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static void *
pmda_thread(void *arg)
{
	pmdaInterface	*d = &P.dispatch;

	pmSetProgname("bpftraced");
	pmdaDaemon(d, PMDA_INTERFACE_7, "bpftrace", BT_DOMAIN, NULL, NULL);
	if (d->status == 0) {
		/* ours replace libpcp_pmda's table-driven defaults */
		d->version.seven.fetch = pmda_fetch;
		d->version.seven.desc = pmda_meta_desc;
		d->version.seven.instance = pmda_meta_instance;
		d->version.seven.text = pmda_meta_text;
		d->version.seven.store = pmda_store;
		d->version.seven.pmid = pmda_meta_pmid;
		d->version.seven.name = pmda_meta_name;
		d->version.seven.children = pmda_meta_children;
		d->version.seven.attribute = on_pmda_attribute;
		d->version.seven.label = pmda_meta_label;
		pmdaSetCommFlags(d, PMDA_FLAG_AUTHORIZE);
		pmdaSetEndContextCallBack(d, on_pmda_end_context);
		pmdaInit(d, NULL, 0, NULL, 0);
	}
	if (d->status != 0) {
		log_warnx("pmda: libpcp_pmda set-up failed: %s; PMDA mode off",
		    pmErrStr(d->status));
		unlink_ours();		/* pmcd finds nobody, not a mute peer */
		shutdown(P.lfd, SHUT_RDWR);
		return NULL;
	}
	while (!stopping()) {
		int	 fd, version, w;

		if (!socket_is_ours()) {	/* pmcd unlinked it */
			if (P.lfd != -1)
				close(P.lfd);
			P.lfd = -1;
		}
		if (P.lfd == -1 && reopen() == -1) {
			if (wait_fd(P.wake[0], PMDA_RECHECK_MS) == -1)
				break;
			continue;
		}
		if ((w = wait_fd(P.lfd, PMDA_RECHECK_MS)) == -1)
			break;
		if (w == 1)
			continue;	/* see that the socket is still there */
		if ((fd = accept4(P.lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno != EINTR && errno != EAGAIN &&
			    errno != ECONNABORTED)
				log_warn("pmda: accept on %s", P.path);
			continue;
		}
		if ((version = handshake(fd, d->comm.flags)) < 0) {
			log_warnx("pmda: a client of %s did not complete the "
			    "pmcd version exchange; closed", P.path);
			close(fd);
			continue;
		}
		P.nconn++;
		log_info("pmda: pmcd connected on %s (protocol %d, flags "
		    "%#x, connection %u)", P.path, version, d->comm.flags,
		    P.nconn);
		serve(fd);
		close(fd);
		if (!stopping())
			log_info("pmda: pmcd closed the connection; waiting for "
			    "it to connect again");
	}
	free(pmda_cb.text);
	pmda_cb.text = NULL;
	free(pmda_cb.last);
	pmda_cb.last = NULL;
	free(pmda_cb.ctxs);
	pmda_cb.ctxs = NULL;
	return NULL;
}

/* ---- start/stop (main thread) ---- */

/* PCP's run directory: $PCP_RUN_DIR, pcp.conf's, else /run/pcp */
static const char *
pcp_run_dir(void)
{
	const char	*dir = spawnenv_get("PCP_RUN_DIR");

	if (dir == NULL || *dir == '\0')
		dir = pmGetOptionalConfig("PCP_RUN_DIR");
	return dir != NULL && *dir != '\0' ? dir : "/run/pcp";
}

static void
default_path(char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/bpftraced.socket", pcp_run_dir());
}

/* An existing socket file: taken when someone answers on it. */
static int
check_existing(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un	 sa;
	struct stat		 st;
	int			 fd, rv;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : (seterr(err, errlen, "%s: %s",
		    path, strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		seterr(err, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		seterr(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rv == 0) {
		seterr(err, errlen, "%s is in use by another process (another "
		    "bpftraced?)", path);
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		seterr(err, errlen, "stale %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* 0660, owned by PCP_USER when we may: pmcd runs as that user. */
static void
socket_owner(const char *path)
{
	const char	*user = pmGetOptionalConfig("PCP_USER");
	struct passwd	 pw, *res = NULL;
	char		 buf[4096];

	if (chmod(path, 0660) == -1)
		log_warn("pmda: chmod %s", path);
	if (user == NULL || *user == '\0')
		user = "pcp";
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return;
	pmda_cb.pcp_uid = pw.pw_uid;
	pmda_cb.has_pcp_uid = 1;
	if (geteuid() == 0 && chown(path, pw.pw_uid, pw.pw_gid) == -1)
		log_warn("pmda: chown %s to %s", path, user);
}

static int
open_socket(char *err, size_t errlen)
{
	struct sockaddr_un	 sa;
	struct stat		 st;

	if (check_existing(P.path, err, errlen) == -1)
		return -1;
	if ((P.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		seterr(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", P.path);
	if (bind(P.lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		seterr(err, errlen, "bind %s: %s", P.path, strerror(errno));
		goto fail;
	}
	socket_owner(P.path);
	if (stat(P.path, &st) == 0) {
		P.sock_dev = st.st_dev;
		P.sock_ino = st.st_ino;
	}
	if (listen(P.lfd, PMDA_LISTEN_BACKLOG) == -1) {
		seterr(err, errlen, "listen %s: %s", P.path, strerror(errno));
		unlink(P.path);
		goto fail;
	}
	return 0;
fail:
	close(P.lfd);
	P.lfd = -1;
	return -1;
}

/* Is PATH named on a pmcd.conf line? Only to give a hint in the log. */
static int
in_pmcd_conf(const char *conf, const char *path)
{
	FILE	*f = fopen(conf, "r");
	char	 line[1024];
	int	 found = 0;

	if (f == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = line[0] != '#' && strstr(line, path) != NULL &&
		    strstr(line, "socket") != NULL;
	fclose(f);
	return found;
}

/*
 * pmcd tries a socket agent when it starts and on SIGHUP; it does not
 * retry by itself. When pmcd.conf names our socket, ask a running pmcd to
 * connect now (what "pmsignal -s HUP pmcd" does): it re-reads pmcd.conf,
 * and reconnects agents it has lost. Before privs_drop (pmcd runs as
 * PCP_USER, so this needs CAP_KILL).
 */
static void
poke_pmcd(void)
{
	char		 path[512], line[32];
	FILE		*f;
	long long	 pid;
	const char	*errstr;

	snprintf(path, sizeof(path), "%s/pmcd.pid", pcp_run_dir());
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	pid = strtonum_ll(line, 2, INT32_MAX, &errstr);
	if (errstr != NULL)
		return;
	/* a stale pid file must not make us signal someone else */
	snprintf(path, sizeof(path), "/proc/%lld/comm", pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	if (strcmp(line, "pmcd\n") != 0)
		return;
	if (kill((pid_t)pid, SIGHUP) == 0)
		log_info("pmda: asked pmcd (pid %lld) to connect (SIGHUP)", pid);
}

int
pmda_start(struct daemon_state *ds, char *err, size_t errlen)
{
	const char	*conf;
	struct stat	 st;
	int		 listed;

	if (ds->cfg.pmda == PMDA_OFF)
		return 0;
	pmda_cb.ds = ds;
	if (ds->cfg.pmda_socket)
		snprintf(P.path, sizeof(P.path), "%s", ds->cfg.pmda_socket);
	else
		default_path(P.path, sizeof(P.path));
	conf = pmGetOptionalConfig("PCP_PMCDCONF_PATH");
	if (ds->cfg.pmda == PMDA_AUTO && (conf == NULL || stat(conf, &st) ==
	    -1)) {
		log_info("no pmcd: PMDA mode off (%s not found)", conf ? conf :
		    "pcp.conf");
		return 0;
	}
	/* PCP is set up (or PMDA mode was asked for): libpcp_pmda now */
	if (pcplib_load(err, errlen) == -1) {
		if (ds->cfg.pmda == PMDA_ON)
			return -1;
		log_info("PMDA mode off: %s (Debian: apt-get install "
		    "libpcp3 libpcp-pmda3)", err);
		return 0;
	}
	if (open_socket(err, errlen) == -1) {
		if (ds->cfg.pmda == PMDA_ON)
			return -1;
		log_info("no pmcd: PMDA mode off (%s)", err);
		return 0;
	}
	/* before the thread: it reads P.listed (reopen), never writes it */
	listed = conf && in_pmcd_conf(conf, P.path);
	P.listed = listed;
	if (pipe2(P.wake, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    pthread_create(&P.thr, NULL, pmda_thread, NULL) != 0) {
		seterr(err, errlen, "PMDA thread: %s", strerror(errno));
		pmda_stop();
		return ds->cfg.pmda == PMDA_ON ? -1 : 0;
	}
	P.running = 1;
	log_info("PMDA mode: domain %d on %s for pmcd%s", BT_DOMAIN, P.path,
	    listed ? "" : " (not in pmcd.conf: see packaging/pcp/Install)");
	if (listed)
		poke_pmcd();
	return 0;
}

int
pmda_active(void)
{
	return P.running;
}

void
pmda_stop(void)
{
	if (P.running) {
		if (write(P.wake[1], "x", 1) == -1)
			log_warn("pmda: wake");
		pthread_join(P.thr, NULL);
		P.running = 0;
	}
	if (P.lfd != -1) {
		unlink_ours();
		close(P.lfd);
		P.lfd = -1;
	}
	for (int i = 0; i < 2; i++)
		if (P.wake[i] != -1) {
			close(P.wake[i]);
			P.wake[i] = -1;
		}
}
