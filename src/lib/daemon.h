/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - the daemon-wide state: the configuration (config.c fills it
 * from flags and the config file), the request counters, and struct
 * daemon_state, which main.c builds and hands to every layer it wires
 * (scripts, pcp, http, api read it). It sits at the bottom so that any
 * layer may include it: it is made of lib types and bt_limits.h only,
 * names each layer's object as an opaque pointer, and declares no
 * function (config.c's and selfmetrics.c's are in src/top.h).
 * Threads: cfg is written once in main before any thread starts, then
 * read-only; the other fields say who writes them.
 */
#ifndef BT_DAEMON_H
#define BT_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include "bt_limits.h"
#include "memcap.h"
#include "origin.h"

/* --- selfmetrics.c: the request counters (bpftrace.daemon.*) --- */

/* what a request asked for: the instances of bpftrace.daemon.requests */
enum api_endpoint {
	EP_CONTEXT, EP_METRIC, EP_FETCH, EP_INDOM, EP_CHILDREN, EP_PROFILE,
	EP_STORE, EP_DERIVE, EP_OTHER, EP_COUNT
};

/* counted by http.c and the api files, read by selfmetrics.c */
struct selfstats {
	atomic_ullong	st_requests[EP_COUNT];
	atomic_ullong	st_errors;
	atomic_ullong	st_bytes_out;
	atomic_ullong	st_refused[REFUSE_COUNT];	/* origin.h reasons */
};

/* --- config.c: flags and the config file --- */

struct listen_addr {
	char	la_spec[128];
};

struct config {
	struct listen_addr	 listen[BT_MAX_LISTEN];
	int			 nlisten;
	char			*state_dir;
	char			*bpftrace_path;
	int			 log_level;
	int			 http_threads;
	size_t			 max_body;
	size_t			 max_url;	/* --max-url-bytes */
	unsigned		 max_connections;
	unsigned		 max_conn_per_ip;
	size_t			 max_contexts;
	size_t			 max_contexts_per_ip;
	unsigned		 max_polltimeout;	/* seconds */
	size_t			 max_derived_bytes;	/* per context */
	size_t			 max_profile_instances;	/* per context */
	size_t			 max_regex_steps;	/* per instance name */
	size_t			 max_derived;	/* per context */
	size_t			 max_memory;	/* --max-memory */
	unsigned		 idle_timeout;
	unsigned		 request_timeout; /* seconds; 0: none */
	size_t			 max_names;	/* names=/pmids= per request */
	size_t			 max_answer;	/* bytes of one answer */
	int			 check_only;
	int			 control;	/* CONTROL_OFF/_LOOPBACK */
	unsigned		 max_scripts;
	size_t			 max_script_bytes;
	size_t			 max_control_answer;	/* bytes */
	size_t			 max_output_rate;
	size_t			 max_line;
	size_t			 max_instances;
	unsigned		 script_expiry;	/* seconds; 0: never */
	unsigned		 print_interval_ms;
	unsigned		 stop_timeout_ms;
	char			**scripts;	/* --script FILE, at start */
	int			 nscripts;
	char			*scripts_dir;	/* --scripts-dir: *.bt at start */
	char			*auth_file;
	int			 auth_reads;	/* reads need credentials too */
	unsigned		 max_scripts_per_user;
	size_t			 max_audit_rows;	/* 0: keep all */
	char			*tls_cert;
	char			*tls_key;
	char			*tls_priority;	/* GnuTLS priority string */
	int			 allow_plain_auth; /* auth on plain non-loopback */
	unsigned		 auth_threads;
	unsigned		 auth_queue;
	unsigned		 auth_fail_rate;	/* a minute; 0: no limit */
	size_t			 auth_fail_addrs;
	unsigned		 audit_rate;	/* rows a minute */
	unsigned		 audit_rows;	/* rows kept */
	int			 pmda;		/* PMDA_AUTO/_ON/_OFF */
	char			*pmda_socket;	/* NULL: $PCP_RUN_DIR/... */
	char			*pmcd_host;	/* --pmcd; NULL: local if it answers */
	char			**allow_origins; /* --allow-origin, exact */
	int			 nallow_origins;
	char			**allow_hosts;	/* --allow-host, for Host */
	int			 nallow_hosts;
};

/* --pmda */
#define PMDA_AUTO		0
#define PMDA_ON			1
#define PMDA_OFF		2

/* --control */
#define CONTROL_OFF		0
#define CONTROL_LOOPBACK	1
#define CONTROL_AUTH		2

/* --- main.c: the state every layer is handed --- */

struct registry;
struct ctxtab;
struct source;
struct scripts;
struct evloop;
struct store;
struct auth_db;
struct httpd;

struct daemon_state {
	struct config		 cfg;
	struct registry		*reg;
	struct ctxtab		*ctx;
	struct selfstats	 stats;
	struct memcap		 mem;		/* --max-memory; atomics */
	struct source		*self_src;
	struct timespec		 start_mono;
	struct timespec		 start_real;
	char			 hostname[256];
	char			 machineid[64];
	char			 domainname[256];
	char			 source_id[41];	/* sha1 hex of our source */
	char			*ctx_labels;	/* JSON members, no braces */
	/* bpftrace --version runs in the background (btversion.c): the
	   text is written once, before bt_state leaves BT_VERSION_PENDING */
	char			 bpftrace_version[64];	/* "" when missing */
	atomic_int		 bt_state;	/* BT_VERSION_* */
	pthread_t		 bt_thread;
	int			 bt_thread_started;	/* main thread only */
	void			(*bt_on_done)(struct daemon_state *ds);
						/* the version thread calls it
						   when done (main wires it) */
	char			 pcp_version[32];	/* libpcp's */
	atomic_int		 nscripts;
	atomic_int		 nrunning;
	struct scripts		*scripts;
	struct evloop		*loop;
	struct store		*store;		/* state database */
	pthread_mutex_t		 auth_lock;	/* guards the auth pointer swap */
	struct auth_db		*auth;		/* --auth-file, or NULL */
	struct origin_policy	 origin;	/* points into cfg; read-only */
	struct httpd		*httpd;		/* set by httpd_start() */
};

#endif /* BT_DAEMON_H */
