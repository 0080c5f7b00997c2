/* SPDX-License-Identifier: MIT */
/*
 * bpftraced.c - main: flags, state directory, wiring of registry, contexts,
 * HTTP server and the main event loop (signals, periodic GC). Runs in the
 * foreground; SIGTERM/SIGINT stop it gracefully.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "evloop.h"
#include "http.h"
#include "log.h"
#include "memcap.h"
#include "notify.h"
#include "pcp.h"
#include "privs.h"
#include "registry.h"
#include "scripts.h"
#include "seriesid.h"
#include "spawnenv.h"
#include "store.h"
#include "top.h"
#include "util.h"

struct mainctx {
	struct daemon_state	*ds;
	struct evloop		*loop;
	struct evwatch		 sigw;
	unsigned		 ticks;
};

/* --- the scripts subsystem: scripts.c reports, info.c and control.c act --- */

/* The end of a tick, ss_lock held: the periodic bpftrace.info rebuild. */
static void
on_scripts_tick_locked(struct scripts *ss)
{
	info_publish(ss, 0);
}

/* After a tick, without ss_lock: old answers, the tracepoint list. */
static void
on_scripts_tick(struct scripts *ss)
{
	control_tick(ss);
	info_tick(ss);
}

static const struct scripts_hooks scripts_hooks = {
	.sh_changed = info_changed,	/* bpftrace.info.* */
	.sh_tick_locked = on_scripts_tick_locked,
	.sh_tick = on_scripts_tick,
};

/* --- the HTTP server: the dialects it routes to, the audit it feeds --- */

/*
 * Matched in order, by prefix (pmproxy's servlet table). "/" alone is the
 * web page; every other path pmproxy does not know stays its HTML 400.
 */
static const struct http_route http_routes[] = {
	/* /metrics, /pmapi/metrics, /pmapi/N/metrics */
	{ NULL, api_metrics, 0, api_metrics_path },
	{ "/pmapi/", api_pmapi, 0, NULL },
	{ "/", api_ui, 1, NULL },
	{ "/ui/", api_ui, 0, NULL },
	{ NULL, NULL, 0, NULL }
};

/*
 * A failed login on a store to bpftrace.control.* (query or form body)
 * goes to the audit trail, like the control actions themselves. On a
 * libmicrohttpd thread.
 */
static void
on_http_login_failed(struct httpreq *hr, const char *path, const char *body,
    size_t bodylen, const char *tried, const char *why)
{
	static const char	 ctl[] = "bpftrace.control.";
	struct params		 form;
	const char		*name, *slash = strrchr(path, '/');
	char			 peer[64], err[64];

	/* pmproxy's /pmapi/store and pmwebd's /pmapi/N/_store */
	if (hr->hr_ds->scripts == NULL || strncmp(path, "/pmapi/", 7) != 0 ||
	    slash == NULL || (strcmp(slash, "/store") != 0 &&
	    strcmp(slash, "/_store") != 0))
		return;
	params_init(&form, BT_MAX_PARAMS);
	name = params_get(&hr->hr_params, "name");
	if (name == NULL && body && http_form_body(hr) &&
	    params_parse(&form, body, bodylen, err, sizeof(err)) == 0)
		name = params_get(&form, "name");
	if (name != NULL && strncmp(name, ctl, sizeof(ctl) - 1) == 0) {
		http_peer(hr, peer, sizeof(peer));
		control_audit_login(hr->hr_ds->scripts, peer, tried,
		    name + sizeof(ctl) - 1, why);
	}
	params_free(&form);
}

static const struct http_options http_options = {
	.ho_routes = http_routes,
	.ho_login_failed = on_http_login_failed,
};

static void
on_main_signal(struct evwatch *w, uint32_t events)
{
	struct mainctx			*mc = w->ew_arg;
	struct signalfd_siginfo		 si;

	while (read(w->ew_fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("signal %d: shutting down", si.ssi_signo);
			evloop_stop(mc->loop);
			break;
		case SIGHUP:
			log_info("SIGHUP: refreshing bpftrace.info.tracepoints");
			if (mc->ds->scripts) {
				info_refresh_tracepoints(mc->ds->scripts);
				on_scripts_tick(mc->ds->scripts);
			}
			break;
		case SIGCHLD:
			if (mc->ds->scripts)
				scripts_on_sigchld(mc->ds->scripts);
			break;
		default:
			break;
		}
	}
}

static void
on_main_tick(void *arg)
{
	struct mainctx	*mc = arg;
	size_t		 n;

	if (mc->ds->scripts)
		scripts_tick(mc->ds->scripts);
	if (++mc->ticks % 5 != 0)
		return;
	if ((n = ctx_gc(mc->ds->ctx)) != 0)
		log_debug("expired %zu contexts", n);
}

/* mkdir -p with mode 0700 for the leaf. */
static int
make_state_dir(const char *dir)
{
	char		 path[4096];
	size_t		 len;
	struct stat	 st;

	if ((len = strlen(dir)) == 0 || len >= sizeof(path)) {
		errno = len == 0 ? ENOENT : ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return -1;
	if (stat(path, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return access(path, W_OK | X_OK);
}

static void
read_first_line(const char *path, char *out, size_t len)
{
	FILE	*f = fopen(path, "r");

	out[0] = '\0';
	if (f == NULL)
		return;
	if (fgets(out, (int)len, f) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	fclose(f);
}

/* Host identity for context answers and labels, like pmcd's. */
static int
host_identity(struct daemon_state *ds)
{
	struct buf	 b;

	if (gethostname(ds->hostname, sizeof(ds->hostname)) == -1)
		snprintf(ds->hostname, sizeof(ds->hostname), "localhost");
	ds->hostname[sizeof(ds->hostname) - 1] = '\0';
	if (getdomainname(ds->domainname, sizeof(ds->domainname)) == -1 ||
	    ds->domainname[0] == '\0' ||
	    strcmp(ds->domainname, "(none)") == 0)
		snprintf(ds->domainname, sizeof(ds->domainname), "localdomain");
	read_first_line("/etc/machine-id", ds->machineid,
	    sizeof(ds->machineid));
	/* the three as JSON strings (6 bytes a byte at worst) and keys */
	buf_init(&b, 6 * (sizeof(ds->domainname) + sizeof(ds->hostname) +
	    sizeof(ds->machineid)) + 64);
	buf_puts(&b, "\"domainname\":");
	json_str(&b, ds->domainname);
	buf_puts(&b, ",\"hostname\":");
	json_str(&b, ds->hostname);
	if (ds->machineid[0]) {
		buf_puts(&b, ",\"machineid\":");
		json_str(&b, ds->machineid);
	}
	if (b.b_failed)
		return -1;
	ds->ctx_labels = buf_take(&b, NULL);
	/* pmproxy's "source" id: from the context labels (seriesid.c) */
	seriesid_source(ds->ctx_labels, ds->source_id);
	/* who may change state from a browser (origin.c); fixed from here */
	ds->origin.op_origins = ds->cfg.allow_origins;
	ds->origin.op_norigins = ds->cfg.nallow_origins;
	ds->origin.op_hosts = ds->cfg.allow_hosts;
	ds->origin.op_nhosts = ds->cfg.nallow_hosts;
	ds->origin.op_hostname = ds->hostname;
	return 0;
}

static int
setup_signals(struct mainctx *mc)
{
	sigset_t	 set;
	int		 fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGPIPE);
	/* before any thread exists, so every thread inherits the mask */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	sigdelset(&set, SIGPIPE);
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		return -1;
	mc->sigw.ew_fd = fd;
	mc->sigw.ew_events = EPOLLIN;
	mc->sigw.ew_cb = on_main_signal;
	mc->sigw.ew_arg = mc;
	return evloop_add(mc->loop, &mc->sigw);
}

/* -n: the script files must exist and be readable. */
static int
check_scripts(struct daemon_state *ds)
{
	for (int i = 0; i < ds->cfg.nscripts; i++)
		if (access(ds->cfg.scripts[i], R_OK) == -1) {
			log_warn("--script %s", ds->cfg.scripts[i]);
			return -1;
		}
	if (ds->cfg.scripts_dir && access(ds->cfg.scripts_dir, R_OK | X_OK) ==
	    -1) {
		log_warn("--scripts-dir %s", ds->cfg.scripts_dir);
		return -1;
	}
	return 0;
}

static size_t
on_memcap_reclaim(void *arg, size_t want)
{
	return ctx_reclaim(arg, want);
}

/* On the version thread: start the scripts that waited for bpftrace. */
static void
on_bt_version_done(struct daemon_state *ds)
{
	if (ds->scripts)
		scripts_wake(ds->scripts);
}

static int
daemon_init(struct daemon_state *ds)
{
	char			 err[512];
	struct ctx_limits	 cl = {
		.cl_max = ds->cfg.max_contexts,
		.cl_per_peer = ds->cfg.max_contexts_per_ip,
		.cl_derived_bytes = ds->cfg.max_derived_bytes,
		.cl_profile_insts = ds->cfg.max_profile_instances,
		.cl_mem = &ds->mem,
	};

	memcap_init(&ds->mem, memcap_client_share(ds->cfg.max_memory));
	clock_gettime(CLOCK_MONOTONIC, &ds->start_mono);
	now_real(&ds->start_real);
	if (make_state_dir(ds->cfg.state_dir) == -1) {
		log_error("state directory %s: %s", ds->cfg.state_dir,
		    strerror(errno));
		return -1;
	}
	if (host_identity(ds) == -1)
		return -1;
	if ((ds->reg = reg_new()) == NULL ||
	    (ds->ctx = ctx_new_limits(&cl)) == NULL)
		return -1;
	/* before any thread: idle contexts make room for other charges */
	memcap_set_reclaim(&ds->mem, on_memcap_reclaim, ds->ctx);
	pthread_mutex_init(&ds->auth_lock, NULL);
	if (ds->cfg.auth_file && (ds->auth = auth_load(ds->cfg.auth_file, err,
	    sizeof(err))) == NULL) {
		log_error("%s", err);
		return -1;
	}
	if (ds->cfg.control == CONTROL_LOOPBACK)
		log_warnx("--control=loopback: any local user may run bpftrace "
		    "scripts as root; use --control=auth on shared machines");
	if ((ds->store = store_open(ds->cfg.state_dir, err, sizeof(err))) ==
	    NULL) {
		log_error("%s", err);
		return -1;
	}
	/* a failed prune is logged; the daemon runs on with a bigger table */
	(void)store_audit_limit(ds->store, (int64_t)ds->cfg.max_audit_rows);
	/* control's metrics before info's: the registry keeps that order */
	if (self_register(ds) == -1 ||
	    scripts_init(ds, &scripts_hooks) == -1 ||
	    control_init(ds->scripts) == -1 || info_init(ds->scripts) == -1)
		return -1;
	/* in the background: the daemon listens meanwhile (-n waits) */
	bt_version_start(ds, ds->cfg.check_only, on_bt_version_done);
	if (!ds->cfg.check_only && pmcd_init(ds->cfg.pmcd_host) == -1)
		return -1;
	if (ds->cfg.check_only)
		return check_scripts(ds);
	if (control_restore(ds->scripts) == -1)
		return -1;
	for (int i = 0; i < ds->cfg.nscripts; i++)
		control_autostart(ds->scripts, ds->cfg.scripts[i]);
	if (ds->cfg.scripts_dir)
		control_autostart_dir(ds->scripts, ds->cfg.scripts_dir);
	return 0;
}

static void
daemon_fini(struct daemon_state *ds)
{
	bt_version_join(ds);	/* it may wake the scripts */
	if (ds->scripts)
		scripts_shutdown(ds->scripts, ds->cfg.stop_timeout_ms <
		    BT_SHUTDOWN_WAIT_MS ? (int)ds->cfg.stop_timeout_ms :
		    BT_SHUTDOWN_WAIT_MS);
	if (ds->scripts) {	/* top down: control, info, scripts */
		control_fini(ds->scripts);
		info_fini(ds->scripts);
	}
	scripts_fini(ds);
	pmcd_fini();
	store_close(ds->store);
	auth_unref(ds->auth);
	reg_free(ds->reg);
	ctx_free(ds->ctx);
	source_unref(ds->self_src);
	free(ds->ctx_labels);
	config_free(&ds->cfg);
	spawnenv_fini();	/* every thread that spawns has ended */
}

/* -n: every --listen value must parse (binding is not tried). */
static int
check_listen(const struct config *cfg)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 err[256];

	for (int i = 0; i < cfg->nlisten; i++)
		if (http_parse_listen(cfg->listen[i].la_spec, &ss, &len, err,
		    sizeof(err)) == -1) {
			log_error("%s", err);
			return -1;
		}
	return 0;
}

int
main(int argc, char **argv)
{
	struct daemon_state	 ds;
	struct mainctx		 mc = { .ds = &ds };
	struct httpd		*httpd = NULL;
	char			 err[512];
	int			 rv, status = 1;

	/*
	 * A fixed mmap threshold: allocations of 128 KiB and more (request
	 * bodies, answers) get pages of their own that go back to the system
	 * when freed. glibc's default raises the threshold after such a free,
	 * so later ones land in the heap between long-lived small blocks and
	 * RSS grows past what is held (measured: 577 MiB for ~250 MiB held
	 * under the control-answer flood of tests/bench/attacks.py).
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	memset(&ds, 0, sizeof(ds));
	if (config_defaults(&ds.cfg) == -1)
		return 1;
	if ((rv = config_parse_args(&ds.cfg, argc, argv)) != 0) {
		config_free(&ds.cfg);
		return rv == 1 ? 0 : 2;
	}
	log_init(ds.cfg.log_level);
	/* before any thread: after it nothing reads or writes environ */
	if (spawnenv_start(ds.cfg.bpftrace_path, err, sizeof(err)) == -1) {
		log_error("%s", err);
		config_free(&ds.cfg);
		return 1;
	}
	if ((mc.loop = evloop_new()) == NULL || setup_signals(&mc) == -1) {
		log_warn("event loop");
		goto done;
	}
	ds.loop = mc.loop;
	if (daemon_init(&ds) == -1)
		goto done;
	if (ds.cfg.check_only) {
		if (check_listen(&ds.cfg) == -1)
			goto done;
		printf("configuration OK\n");
		status = 0;
		goto done;
	}
	if ((httpd = httpd_start(&ds, &http_options, err,
	    sizeof(err))) == NULL) {
		log_error("%s", err);
		goto done;
	}
	/* binds and chowns the socket: before the capabilities go */
	if (pmda_start(&ds, err, sizeof(err)) == -1) {
		log_error("--pmda on: %s", err);
		goto done;
	}
	notify_open();		/* connects: before the capabilities go */
	if (privs_drop(pmda_active()) == -1)
		log_warn("cannot drop capabilities (running with all of them)");
	log_info("bpftraced %s ready", BT_VERSION);
	notify_send("READY=1");
	evloop_set_tick(mc.loop, 200, on_main_tick, &mc);
	if (evloop_run(mc.loop) == 0)
		status = 0;
	notify_send("STOPPING=1");
done:
	notify_close();
	pmda_stop();
	httpd_stop(httpd);
	if (mc.sigw.ew_fd > 0)
		close(mc.sigw.ew_fd);
	evloop_free(mc.loop);
	daemon_fini(&ds);
	return status;
}
