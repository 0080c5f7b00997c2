/* SPDX-License-Identifier: MIT */
/*
 * config.c - command-line flags and the optional config file (--config,
 * "key = value" lines using the long flag names). Flags given on the
 * command line win over the file. Runs once in main before any thread.
 */
#include <errno.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bt_limits.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "top.h"

enum {
	OPT_LISTEN = 256, OPT_STATE_DIR, OPT_LOG_LEVEL, OPT_CONFIG,
	OPT_BPFTRACE, OPT_HTTP_THREADS, OPT_MAX_BODY, OPT_MAX_URL, OPT_MAX_CONNECTIONS,
	OPT_MAX_CONN_PER_IP, OPT_MAX_CONTEXTS, OPT_MAX_DERIVED, OPT_IDLE_TIMEOUT, OPT_HELP,
	OPT_VERSION, OPT_CHECK, OPT_CONTROL, OPT_MAX_SCRIPTS,
	OPT_MAX_SCRIPT_BYTES, OPT_MAX_OUTPUT_RATE, OPT_MAX_LINE,
	OPT_MAX_INSTANCES, OPT_SCRIPT_EXPIRY, OPT_PRINT_INTERVAL,
	OPT_STOP_TIMEOUT, OPT_SCRIPT, OPT_SCRIPTS_DIR, OPT_AUTH_FILE,
	OPT_AUTH_READS, OPT_MAX_SCRIPTS_PER_USER, OPT_TLS_CERT, OPT_TLS_KEY,
	OPT_PMDA, OPT_PMDA_SOCKET, OPT_PMCD, OPT_MAX_MEMORY,
	OPT_MAX_CONTROL_ANSWER,
	OPT_MAX_CTX_PER_IP, OPT_MAX_POLLTIMEOUT, OPT_MAX_DERIVED_BYTES,
	OPT_MAX_PROFILE_INSTANCES, OPT_MAX_REGEX_STEPS, OPT_ALLOW_ORIGIN,
	OPT_ALLOW_HOST,
	OPT_TLS_PRIORITY, OPT_ALLOW_PLAIN_AUTH, OPT_AUTH_THREADS,
	OPT_AUTH_QUEUE, OPT_AUTH_FAIL_RATE, OPT_AUTH_FAIL_ADDRS,
	OPT_AUDIT_RATE, OPT_AUDIT_ROWS,
	OPT_REQUEST_TIMEOUT, OPT_MAX_NAMES, OPT_MAX_ANSWER, OPT_MAX_AUDIT_ROWS
};

static const struct option long_opts[] = {
	{ "listen",		required_argument, NULL, OPT_LISTEN },
	{ "state-dir",		required_argument, NULL, OPT_STATE_DIR },
	{ "log-level",		required_argument, NULL, OPT_LOG_LEVEL },
	{ "config",		required_argument, NULL, OPT_CONFIG },
	{ "bpftrace",		required_argument, NULL, OPT_BPFTRACE },
	{ "http-threads",	required_argument, NULL, OPT_HTTP_THREADS },
	{ "max-request-bytes",	required_argument, NULL, OPT_MAX_BODY },
	{ "max-url-bytes",	required_argument, NULL, OPT_MAX_URL },
	{ "max-connections",	required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "max-connections-per-ip", required_argument, NULL,
	    OPT_MAX_CONN_PER_IP },
	{ "max-contexts",	required_argument, NULL, OPT_MAX_CONTEXTS },
	{ "max-contexts-per-ip", required_argument, NULL, OPT_MAX_CTX_PER_IP },
	{ "max-polltimeout",	required_argument, NULL, OPT_MAX_POLLTIMEOUT },
	{ "max-derived",	required_argument, NULL, OPT_MAX_DERIVED },
	{ "max-derived-bytes",	required_argument, NULL, OPT_MAX_DERIVED_BYTES },
	{ "max-profile-instances", required_argument, NULL,
	    OPT_MAX_PROFILE_INSTANCES },
	{ "max-regex-steps",	required_argument, NULL, OPT_MAX_REGEX_STEPS },
	{ "max-memory",		required_argument, NULL, OPT_MAX_MEMORY },
	{ "idle-timeout",	required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "request-timeout",	required_argument, NULL, OPT_REQUEST_TIMEOUT },
	{ "max-names",		required_argument, NULL, OPT_MAX_NAMES },
	{ "max-answer-bytes",	required_argument, NULL, OPT_MAX_ANSWER },
	{ "control",		required_argument, NULL, OPT_CONTROL },
	{ "max-scripts",	required_argument, NULL, OPT_MAX_SCRIPTS },
	{ "max-script-bytes",	required_argument, NULL, OPT_MAX_SCRIPT_BYTES },
	{ "max-control-answer-bytes", required_argument, NULL,
	    OPT_MAX_CONTROL_ANSWER },
	{ "max-output-rate",	required_argument, NULL, OPT_MAX_OUTPUT_RATE },
	{ "max-line",		required_argument, NULL, OPT_MAX_LINE },
	{ "max-instances",	required_argument, NULL, OPT_MAX_INSTANCES },
	{ "script-expiry",	required_argument, NULL, OPT_SCRIPT_EXPIRY },
	{ "print-interval",	required_argument, NULL, OPT_PRINT_INTERVAL },
	{ "stop-timeout",	required_argument, NULL, OPT_STOP_TIMEOUT },
	{ "script",		required_argument, NULL, OPT_SCRIPT },
	{ "scripts-dir",	required_argument, NULL, OPT_SCRIPTS_DIR },
	{ "auth-file",		required_argument, NULL, OPT_AUTH_FILE },
	{ "auth-reads",		no_argument,	   NULL, OPT_AUTH_READS },
	{ "max-scripts-per-user", required_argument, NULL,
	    OPT_MAX_SCRIPTS_PER_USER },
	{ "allow-origin",	required_argument, NULL, OPT_ALLOW_ORIGIN },
	{ "allow-host",		required_argument, NULL, OPT_ALLOW_HOST },
	{ "max-audit-rows",	required_argument, NULL, OPT_MAX_AUDIT_ROWS },
	{ "tls-cert",		required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key",		required_argument, NULL, OPT_TLS_KEY },
	{ "tls-priority",	required_argument, NULL, OPT_TLS_PRIORITY },
	{ "allow-plain-auth",	no_argument,	   NULL, OPT_ALLOW_PLAIN_AUTH },
	{ "auth-threads",	required_argument, NULL, OPT_AUTH_THREADS },
	{ "auth-queue",		required_argument, NULL, OPT_AUTH_QUEUE },
	{ "auth-fail-rate",	required_argument, NULL, OPT_AUTH_FAIL_RATE },
	{ "auth-fail-addresses", required_argument, NULL, OPT_AUTH_FAIL_ADDRS },
	{ "audit-rate",		required_argument, NULL, OPT_AUDIT_RATE },
	{ "audit-rows",		required_argument, NULL, OPT_AUDIT_ROWS },
	{ "pmda",		required_argument, NULL, OPT_PMDA },
	{ "pmda-socket",	required_argument, NULL, OPT_PMDA_SOCKET },
	{ "pmcd",		required_argument, NULL, OPT_PMCD },
	{ "check",		no_argument,	   NULL, OPT_CHECK },
	{ "help",		no_argument,	   NULL, OPT_HELP },
	{ "version",		no_argument,	   NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

/*
 * The numeric options: the range a value must lie in, the default, and
 * the struct config field (an unsigned, int or size_t) it goes to.
 */
struct num_opt {
	int		 no_opt;
	long long	 no_min, no_max, no_def;
	size_t		 no_off, no_size;
};

#define NUM(opt, field, min, max, def)					\
	{ opt, min, max, def, offsetof(struct config, field),		\
	    sizeof(((struct config *)0)->field) }

static const struct num_opt num_opts[] = {
	/* its default depends on the CPUs: config_defaults sets it */
	NUM(OPT_HTTP_THREADS, http_threads, 1, 256, 2),
	NUM(OPT_MAX_BODY, max_body, 1024, 1LL << 30, BT_MAX_BODY),
	NUM(OPT_MAX_URL, max_url, 1024, 1 << 20, BT_MAX_URL_BYTES),
	NUM(OPT_MAX_CONNECTIONS, max_connections, 1, 1000000,
	    BT_MAX_CONNECTIONS),
	NUM(OPT_MAX_CONN_PER_IP, max_conn_per_ip, 0, 1000000,
	    BT_MAX_CONN_PER_IP),
	NUM(OPT_MAX_CONTEXTS, max_contexts, 1, 10000000, BT_MAX_CONTEXTS),
	NUM(OPT_MAX_DERIVED, max_derived, 0, BT_MAX_DERIVED_LIMIT,
	    BT_MAX_DERIVED),
	NUM(OPT_MAX_MEMORY, max_memory, 1024 * 1024, 1LL << 40,
	    BT_MAX_MEMORY),
	NUM(OPT_MAX_CTX_PER_IP, max_contexts_per_ip, 1, 10000000,
	    BT_MAX_CONTEXTS_PER_IP),
	NUM(OPT_MAX_POLLTIMEOUT, max_polltimeout, 1,
	    (long long)BT_CTX_TIMEOUT_MAX, BT_MAX_POLLTIMEOUT),
	NUM(OPT_MAX_DERIVED_BYTES, max_derived_bytes, 1024, 1LL << 30,
	    BT_MAX_DERIVED_BYTES),
	NUM(OPT_MAX_PROFILE_INSTANCES, max_profile_instances, 1, 100000000,
	    BT_MAX_PROFILE_INSTANCES),
	NUM(OPT_MAX_REGEX_STEPS, max_regex_steps, 100, 100000000,
	    BT_MAX_REGEX_STEPS),
	NUM(OPT_IDLE_TIMEOUT, idle_timeout, 1, 86400, BT_IDLE_TIMEOUT),
	NUM(OPT_REQUEST_TIMEOUT, request_timeout, 0, 86400,
	    BT_REQUEST_TIMEOUT),
	NUM(OPT_MAX_NAMES, max_names, 1, 1000000, BT_MAX_NAMES),
	NUM(OPT_MAX_ANSWER, max_answer, 65536, 1LL << 32, BT_MAX_ANSWER),
	/* scripts, users and TLS */
	NUM(OPT_AUTH_THREADS, auth_threads, 1, 64, BT_AUTH_THREADS),
	NUM(OPT_AUTH_QUEUE, auth_queue, 1, 65536, BT_AUTH_QUEUE),
	NUM(OPT_AUTH_FAIL_RATE, auth_fail_rate, 0, 1000000,
	    BT_AUTH_FAIL_RATE),
	NUM(OPT_AUTH_FAIL_ADDRS, auth_fail_addrs, 1, 1000000,
	    BT_AUTH_FAIL_ADDRS),
	NUM(OPT_AUDIT_RATE, audit_rate, 1, 1000000, BT_AUDIT_RATE),
	NUM(OPT_AUDIT_ROWS, audit_rows, 1, 100000000, BT_AUDIT_ROWS),
	NUM(OPT_MAX_SCRIPTS_PER_USER, max_scripts_per_user, 1, 4000,
	    BT_MAX_SCRIPTS_PER_USER),
	NUM(OPT_MAX_AUDIT_ROWS, max_audit_rows, 0, 1LL << 31,
	    BT_MAX_AUDIT_ROWS),
	NUM(OPT_MAX_SCRIPTS, max_scripts, 1, 4000, BT_MAX_SCRIPTS),
	NUM(OPT_MAX_SCRIPT_BYTES, max_script_bytes, 16, 16 << 20,
	    BT_MAX_SCRIPT_BYTES),
	NUM(OPT_MAX_CONTROL_ANSWER, max_control_answer,
	    BT_MIN_CONTROL_ANSWER, 16 << 20, BT_MAX_CONTROL_ANSWER),
	NUM(OPT_MAX_OUTPUT_RATE, max_output_rate, 0, 1LL << 40,
	    BT_MAX_OUTPUT_RATE),
	NUM(OPT_MAX_LINE, max_line, 65536, 1LL << 30, BT_MAX_LINE),
	NUM(OPT_MAX_INSTANCES, max_instances, 1, 10000000, BT_MAX_INSTANCES),
	NUM(OPT_SCRIPT_EXPIRY, script_expiry, 0, 86400 * 365,
	    BT_SCRIPT_EXPIRY),
	NUM(OPT_PRINT_INTERVAL, print_interval_ms, 100, 3600000,
	    BT_PRINT_INTERVAL_MS),
	NUM(OPT_STOP_TIMEOUT, stop_timeout_ms, 10, 600000,
	    BT_STOP_TIMEOUT_MS),
};

#undef NUM
#define NUM_NOPTS	(sizeof(num_opts) / sizeof(num_opts[0]))

/* Store n (in o's range) in o's field of c, whichever its width. */
static void
num_store(struct config *c, const struct num_opt *o, long long n)
{
	char		*field = (char *)c + o->no_off;
	size_t		 z = (size_t)n;
	unsigned	 u = (unsigned)n;

	if (o->no_size == sizeof(z))
		memcpy(field, &z, sizeof(z));
	else
		memcpy(field, &u, sizeof(u));
}

static void
usage(FILE *f)
{
	fprintf(f,
"Usage: bpftraced [OPTION]...\n"
"Serve bpftrace scripts as live PCP metrics over the pmproxy REST API.\n"
"\n"
"  --listen ADDR:PORT        listen address, repeatable; IPv6 as [ADDR]:PORT\n"
"                            (default %s)\n"
"  --state-dir DIR           state directory (default %s)\n"
"  --config FILE             read options from FILE (key = value, keys are\n"
"                            the long option names); flags win over FILE\n"
"  --log-level LEVEL         error, warning, info or debug (default info)\n"
"  --bpftrace PATH           bpftrace binary (default bpftrace, from PATH)\n"
"  --http-threads N          HTTP worker threads (default: number of CPUs)\n"
"  --max-request-bytes N     largest request body accepted (default %d)\n"
"  --max-url-bytes N         longest request URL; longer ones get 414\n"
"                            (default %d; pmproxy's is 8192)\n"
"  --max-connections N       concurrent HTTP connections (default %d)\n"
"  --max-connections-per-ip N  per client address, 0 = no limit (default %d)\n"
"  --max-contexts N          live REST contexts; a full table evicts the\n"
"                            least recently used, idle first (default %d)\n"
"  --max-contexts-per-ip N   contexts of one client address (IPv6: /64);\n"
"                            past it that address's least recently used\n"
"                            context is evicted (default %d)\n"
"  --max-polltimeout SECONDS longest context polltimeout; longer requests\n"
"                            are clamped to it (default %d)\n"
"  --max-derived N           derived metrics per context (default %d)\n"
"  --max-derived-bytes N     bytes of derived metrics per context (default %d)\n"
"  --max-profile-instances N instance ids in one context's profile\n"
"                            (default %d)\n"
"  --max-regex-steps N       backtracking steps of a match=regex pattern\n"
"                            per instance name (default %d)\n"
"  --max-memory BYTES        bytes clients may make the daemon hold (contexts,\n"
"                            derived metrics, profiles, bodies, answers);\n"
"                            past it requests get 503 (default %d)\n"
"  --idle-timeout SECONDS    close idle HTTP connections after (default %d)\n"
"  --request-timeout SECONDS  close a connection whose request is not all in\n"
"                            (headers and body) this long after its first\n"
"                            byte, 0 = no limit (default %d)\n"
"  --max-names N             metric names or pmids in one request's names=,\n"
"                            pmids= lists (default %d)\n"
"  --max-answer-bytes N      largest answer built for one request\n"
"                            (default %d)\n"
"  --pmcd HOST|off           serve the metrics bpftraced does not own\n"
"                            (kernel.*, disk.*, ...) from the pmcd on HOST;\n"
"                            off: bpftrace metrics only (default: the local\n"
"                            pmcd if it answers, checked again every 30 s)\n"
"\n"
"Scripts:\n"
"  --control off|loopback|auth  who may register/start/stop/deregister\n"
"                            scripts: nobody (default), anonymous clients on\n"
"                            127.0.0.0/8 and ::1, or users of --auth-file\n"
"                            with the control or admin role (HTTP Basic)\n"
"  --auth-file FILE          users file: name:crypt-hash[:roles] lines, roles\n"
"                            control,admin,read; mode 0600 (bpftraced-passwd)\n"
"  --auth-reads              reads need credentials too (role read, control\n"
"                            or admin)\n"
"  --max-scripts-per-user N  scripts one user may have registered (default %d)\n"
"  --allow-origin ORIGIN     a web origin (scheme://host[:port]; Grafana's\n"
"                            in browser access mode) whose pages may store,\n"
"                            derive and profile and get credentialed CORS\n"
"                            answers; repeatable or comma-separated\n"
"                            (default none: same-origin pages only)\n"
"  --allow-host NAME         another name clients reach bpftraced by (a load\n"
"                            balancer's, a container's), accepted in Host\n"
"                            besides IP literals, localhost and this\n"
"                            machine's name; repeatable (default none)\n"
"  --auth-threads N          threads checking passwords, off the HTTP\n"
"                            threads (default %d)\n"
"  --auth-queue N            password checks waiting for a thread; past it\n"
"                            requests get 503 (default %d)\n"
"  --auth-fail-rate N        failed password checks a minute per client\n"
"                            address; past it 429, no check, 0 = no limit\n"
"                            (default %d)\n"
"  --auth-fail-addresses N   client addresses --auth-fail-rate tracks\n"
"                            (default %d)\n"
"  --audit-rate N            audit rows a minute for failed logins, and\n"
"                            for refused control stores; the rest are\n"
"                            counted in one row (default %d)\n"
"  --audit-rows N            failed-login rows kept, and refused-store rows\n"
"                            kept (default %d)\n"
"  --max-audit-rows N        control actions kept in the state database's\n"
"                            audit table, the newest; 0 = all (default %d)\n"
"  --tls-cert FILE, --tls-key FILE  serve HTTPS (PEM files; the key file\n"
"                            must not be readable by group or others)\n"
"  --tls-priority STRING     GnuTLS priority string (default: TLS 1.2 and\n"
"                            1.3, forward-secret key exchange only)\n"
"  --allow-plain-auth        allow --control=auth or --auth-reads on a\n"
"                            non-loopback address without TLS (passwords\n"
"                            in clear text)\n"
"  --scripts-dir DIR         register every DIR/*.bt at start; DIR and files\n"
"                            must be writable only by root\n"
"  --script FILE             register FILE at start (repeatable); its name is\n"
"                            its // name: or the file name without .bt\n"
"  --max-scripts N           registered scripts (default %d)\n"
"  --max-script-bytes N      largest script accepted (default %d)\n"
"  --max-control-answer-bytes N  largest answer to a control store kept for\n"
"                            its fetch; the script text it echoes is cut to\n"
"                            fit (default %d)\n"
"  --max-output-rate N       bpftrace stdout bytes/s before the script is\n"
"                            stopped with an error, 0 = no limit (default %d)\n"
"  --max-line N              longest bpftrace output line (default %d)\n"
"  --max-instances N         instances per variable (default %d)\n"
"  --script-expiry SECONDS   deregister unnamed scripts not fetched for this\n"
"                            long, 0 = never (default %d)\n"
"  --print-interval MS       how often scripts print their maps (default %d)\n"
"  --stop-timeout MS         SIGINT to SIGKILL delay on stop (default %d)\n"
"\n"
"PCP (PMDA mode, see bpftraced(8)):\n"
"  --pmda auto|on|off        serve domain 151 to a local pmcd as a socket\n"
"                            PMDA: auto (default) listens when PCP is set\n"
"                            up and carries on without it, on makes a\n"
"                            socket error fatal, off never listens\n"
"  --pmda-socket PATH        the Unix socket pmcd connects to (default\n"
"                            $PCP_RUN_DIR/bpftraced.socket, /run/pcp/...)\n"
"\n"
"  -n, --check               check the configuration, print\n"
"                            \"configuration OK\" and exit\n"
"  -h, --help                show this help and exit\n"
"  -V, --version             show the version and exit\n",
	    BT_DEFAULT_LISTEN, BT_DEFAULT_STATE_DIR, BT_MAX_BODY,
	    BT_MAX_URL_BYTES,
	    BT_MAX_CONNECTIONS, BT_MAX_CONN_PER_IP, BT_MAX_CONTEXTS,
	    BT_MAX_CONTEXTS_PER_IP,
	    BT_MAX_POLLTIMEOUT, BT_MAX_DERIVED, BT_MAX_DERIVED_BYTES,
	    BT_MAX_PROFILE_INSTANCES, BT_MAX_REGEX_STEPS, BT_MAX_MEMORY,
	    BT_IDLE_TIMEOUT, BT_REQUEST_TIMEOUT, BT_MAX_NAMES, BT_MAX_ANSWER,
	    BT_MAX_SCRIPTS_PER_USER, BT_AUTH_THREADS, BT_AUTH_QUEUE,
	    BT_AUTH_FAIL_RATE, BT_AUTH_FAIL_ADDRS, BT_AUDIT_RATE, BT_AUDIT_ROWS,
	    BT_MAX_AUDIT_ROWS,
	    BT_MAX_SCRIPTS, BT_MAX_SCRIPT_BYTES, BT_MAX_CONTROL_ANSWER,
	    BT_MAX_OUTPUT_RATE,
	    BT_MAX_LINE, BT_MAX_INSTANCES, BT_SCRIPT_EXPIRY,
	    BT_PRINT_INTERVAL_MS, BT_STOP_TIMEOUT_MS);
}

int
config_defaults(struct config *c)
{
	long	 ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	c->state_dir = strdup(BT_DEFAULT_STATE_DIR);
	c->bpftrace_path = strdup("bpftrace");
	c->log_level = BT_LOG_INFO;
	for (size_t i = 0; i < NUM_NOPTS; i++)
		num_store(c, &num_opts[i], num_opts[i].no_def);
	c->http_threads = ncpu > 0 ? (int)(ncpu > 16 ? 16 : ncpu) : 2;
	c->control = CONTROL_OFF;
	c->pmda = PMDA_AUTO;
	c->tls_priority = strdup(BT_TLS_PRIORITY);
	return c->state_dir && c->bpftrace_path && c->tls_priority ? 0 : -1;
}

void
config_free(struct config *c)
{
	free(c->state_dir);
	free(c->bpftrace_path);
	c->state_dir = c->bpftrace_path = NULL;
	free(c->scripts_dir);
	free(c->auth_file);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_priority);
	c->tls_priority = NULL;
	free(c->pmda_socket);
	c->pmda_socket = NULL;
	free(c->pmcd_host);
	c->pmcd_host = NULL;
	c->scripts_dir = c->auth_file = c->tls_cert = c->tls_key = NULL;
	for (int i = 0; i < c->nscripts; i++)
		free(c->scripts[i]);
	free(c->scripts);
	c->scripts = NULL;
	c->nscripts = 0;
	for (int i = 0; i < c->nallow_origins; i++)
		free(c->allow_origins[i]);
	free(c->allow_origins);
	c->allow_origins = NULL;
	c->nallow_origins = 0;
	for (int i = 0; i < c->nallow_hosts; i++)
		free(c->allow_hosts[i]);
	free(c->allow_hosts);
	c->allow_hosts = NULL;
	c->nallow_hosts = 0;
}

static int
set_num(const char *name, const char *val, long long min, long long max,
    long long *out)
{
	const char	*errstr;

	*out = strtonum_ll(val, min, max, &errstr);
	if (errstr) {
		fprintf(stderr, "bpftraced: --%s %s: %s (allowed %lld..%lld)\n",
		    name, val, errstr, min, max);
		return -1;
	}
	return 0;
}

static int
replace_str(char **dst, const char *val)
{
	char	*s = strdup(val);

	if (s == NULL)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static const struct num_opt *
num_find(int opt)
{
	for (size_t i = 0; i < NUM_NOPTS; i++)
		if (num_opts[i].no_opt == opt)
			return &num_opts[i];
	return NULL;
}

/* A numeric option's value: checked against its range, then stored. */
static int
num_set(struct config *c, const struct num_opt *o, const char *name,
    const char *val)
{
	long long	 n;

	if (set_num(name, val, o->no_min, o->no_max, &n) == -1)
		return -1;
	num_store(c, o, n);
	return 0;
}

/* a flag given a value in a file: "auth-reads = no" turns it off */
static int
flag_value(const char *val)
{
	return val == NULL || !(strcmp(val, "0") == 0 ||
	    strcmp(val, "no") == 0 || strcmp(val, "false") == 0);
}

/* Append a copy of s (n bytes) to the string list *vp of *np entries. */
static int
list_add(char ***vp, int *np, const char *s, size_t n)
{
	char	**v = realloc(*vp, sizeof(*v) * ((size_t)*np + 1));

	if (v == NULL)
		return -1;
	*vp = v;
	if ((v[*np] = strndup(s, n)) == NULL)
		return -1;
	(*np)++;
	return 0;
}

static int
add_script(struct config *c, const char *path)
{
	return list_add(&c->scripts, &c->nscripts, path, strlen(path));
}

/*
 * --allow-origin and --allow-host: each value is one entry or a comma
 * list, checked here so that a request can only ever be compared with
 * (and an Origin echoed from) well-formed text.
 */
static int
add_allowed(struct config *c, int opt, const char *val)
{
	char		 err[512], item[512];
	const char	*p = val;
	size_t		 n;

	do {
		n = strcspn(p, ",");
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		snprintf(item, sizeof(item), "%.*s", (int)n, p);
		if (opt == OPT_ALLOW_ORIGIN) {
			if (n >= sizeof(item) ||
			    origin_valid_spec(item, err, sizeof(err)) == -1) {
				fprintf(stderr, "bpftraced: %s\n", err);
				return -1;
			}
			if (list_add(&c->allow_origins, &c->nallow_origins,
			    item, n) == -1)
				return -1;
		} else {
			if (n >= sizeof(item) || !origin_valid_hostname(item)) {
				fprintf(stderr, "bpftraced: --allow-host %s: "
				    "expected a host name (no port, no "
				    "scheme)\n", item);
				return -1;
			}
			if (list_add(&c->allow_hosts, &c->nallow_hosts, item,
			    n) == -1)
				return -1;
		}
		p += strcspn(p, ",");
	} while (*p++ == ',');
	return 0;
}

/* the script-related options */
static int
config_apply_scripts(struct config *c, int opt, const char *val)
{
	switch (opt) {
	case OPT_CONTROL:
		if (strcmp(val, "off") == 0)
			c->control = CONTROL_OFF;
		else if (strcmp(val, "loopback") == 0)
			c->control = CONTROL_LOOPBACK;
		else if (strcmp(val, "auth") == 0)
			c->control = CONTROL_AUTH;
		else {
			fprintf(stderr, "bpftraced: --control %s: expected off, "
			    "loopback or auth\n", val);
			return -1;
		}
		return 0;
	case OPT_SCRIPT:
		return add_script(c, val);
	case OPT_SCRIPTS_DIR:
		return replace_str(&c->scripts_dir, val);
	case OPT_AUTH_FILE:
		return replace_str(&c->auth_file, val);
	case OPT_AUTH_READS:	/* a flag; "auth-reads = no" in a file */
		c->auth_reads = flag_value(val);
		return 0;
	case OPT_ALLOW_ORIGIN:
	case OPT_ALLOW_HOST:
		return add_allowed(c, opt, val);
	case OPT_TLS_CERT:
		return replace_str(&c->tls_cert, val);
	case OPT_TLS_KEY:
		return replace_str(&c->tls_key, val);
	case OPT_TLS_PRIORITY:
		if (val == NULL || *val == '\0') {
			fprintf(stderr, "bpftraced: --tls-priority: a GnuTLS "
			    "priority string is required\n");
			return -1;
		}
		return replace_str(&c->tls_priority, val);
	case OPT_ALLOW_PLAIN_AUTH:	/* a flag, like --auth-reads */
		c->allow_plain_auth = flag_value(val);
		return 0;
	case OPT_PMDA:
		if (strcmp(val, "auto") == 0)
			c->pmda = PMDA_AUTO;
		else if (strcmp(val, "on") == 0)
			c->pmda = PMDA_ON;
		else if (strcmp(val, "off") == 0)
			c->pmda = PMDA_OFF;
		else {
			fprintf(stderr, "bpftraced: --pmda %s: expected auto, on "
			    "or off\n", val);
			return -1;
		}
		return 0;
	case OPT_PMDA_SOCKET:
		if (val[0] != '/' || strlen(val) >= 108) {
			fprintf(stderr, "bpftraced: --pmda-socket %s: expected an "
			    "absolute path shorter than 108 bytes\n", val);
			return -1;
		}
		return replace_str(&c->pmda_socket, val);
	case OPT_PMCD:
		if (val == NULL || *val == '\0' || strlen(val) > 255) {
			fprintf(stderr, "bpftraced: --pmcd: a host name or "
			    "\"off\" is required\n");
			return -1;
		}
		return replace_str(&c->pmcd_host, val);
	default:
		return -1;
	}
}

/* Apply one option; from_file tells where it came from (listen resets). */
static int
config_apply(struct config *c, int opt, const char *name, const char *val,
    int *listen_reset)
{
	const struct num_opt	*o = num_find(opt);

	if (o != NULL)
		return num_set(c, o, name, val);
	switch (opt) {
	case OPT_LISTEN:
		if (*listen_reset) {
			c->nlisten = 0;
			*listen_reset = 0;
		}
		if (c->nlisten >= BT_MAX_LISTEN) {
			fprintf(stderr, "bpftraced: at most %d --listen\n",
			    BT_MAX_LISTEN);
			return -1;
		}
		snprintf(c->listen[c->nlisten++].la_spec,
		    sizeof(c->listen[0].la_spec), "%s", val);
		return 0;
	case OPT_STATE_DIR:
		return replace_str(&c->state_dir, val);
	case OPT_BPFTRACE:
		return replace_str(&c->bpftrace_path, val);
	case OPT_LOG_LEVEL:
		if ((c->log_level = log_level_parse(val)) == -1) {
			fprintf(stderr, "bpftraced: --log-level %s: expected "
			    "error, warning, info or debug\n", val);
			return -1;
		}
		return 0;
	case OPT_CHECK:
		c->check_only = 1;
		return 0;
	default:
		return config_apply_scripts(c, opt, val);
	}
}

static int
opt_by_name(const char *name)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (strcmp(o->name, name) == 0 && o->val != OPT_CONFIG &&
		    o->val != OPT_HELP && o->val != OPT_VERSION)
			return o->val;
	return -1;
}

static char *
trim(char *s)
{
	char	*e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	    e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int
config_load_file(struct config *c, const char *path, int *listen_reset)
{
	FILE	*f;
	char	 line[4096];
	int	 lineno = 0, ret = 0;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "bpftraced: --config %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char	*s = trim(line), *eq, *key, *val;
		int	 opt;

		lineno++;
		if (*s == '\0' || *s == '#')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			fprintf(stderr, "bpftraced: %s:%d: expected key = value\n",
			    path, lineno);
			ret = -1;
			break;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if ((opt = opt_by_name(key)) == -1) {
			fprintf(stderr, "bpftraced: %s:%d: unknown key '%s'\n",
			    path, lineno, key);
			ret = -1;
			break;
		}
		if (opt == OPT_CHECK)
			continue;
		if (config_apply(c, opt, key, val, listen_reset) == -1) {
			fprintf(stderr, "bpftraced: in %s:%d\n", path, lineno);
			ret = -1;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* 1 when spec listens on a loopback address only (127/8, ::1) */
static int
listen_is_loopback(const char *spec)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 err[256];

	if (http_parse_listen(spec, &ss, &sslen, err, sizeof(err)) == -1)
		return 1;	/* reported when the listener opens */
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)(void *)&ss)->sin_addr.
		    s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a =
		    &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		    (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

/*
 * Basic credentials over plain HTTP from another host travel in clear
 * text: --control=auth or --auth-reads on a non-loopback listener needs
 * TLS, or the operator's explicit --allow-plain-auth.
 */
static int
config_check_plain_auth(const struct config *c)
{
	if ((c->control != CONTROL_AUTH && !c->auth_reads) ||
	    c->tls_cert != NULL || c->allow_plain_auth)
		return 0;
	for (int i = 0; i < c->nlisten; i++)
		if (!listen_is_loopback(c->listen[i].la_spec)) {
			fprintf(stderr, "bpftraced: --%s on --listen %s without "
			    "TLS: passwords would cross the network in clear "
			    "text; add --tls-cert/--tls-key, listen on "
			    "loopback only, or pass --allow-plain-auth\n",
			    c->control == CONTROL_AUTH ? "control=auth" :
			    "auth-reads", c->listen[i].la_spec);
			return -1;
		}
	return 0;
}

/* Options that only make sense together. */
static int
config_check(const struct config *c)
{
	if ((c->control == CONTROL_AUTH || c->auth_reads) &&
	    c->auth_file == NULL) {
		fprintf(stderr, "bpftraced: --control=auth and --auth-reads "
		    "need --auth-file\n");
		return -1;
	}
	if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
		fprintf(stderr, "bpftraced: --tls-cert and --tls-key go "
		    "together\n");
		return -1;
	}
	return config_check_plain_auth(c);
}

/*
 * Returns 0 to run, 1 to exit successfully (--help, --version), -1 on a
 * usage error (already reported on stderr).
 */
int
config_parse_args(struct config *c, int argc, char **argv)
{
	const char	*cfgfile = NULL;
	int		 opt, idx, listen_reset = 1;

	opterr = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "hVn", long_opts, &idx)) != -1) {
		if (opt == OPT_CONFIG)
			cfgfile = optarg;
		else if (opt == 'h' || opt == OPT_HELP) {
			usage(stdout);
			return 1;
		} else if (opt == 'V' || opt == OPT_VERSION) {
			printf("bpftraced %s\n", BT_VERSION);
			return 1;
		} else if (opt == '?') {
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bpftraced: unexpected argument '%s'\n",
		    argv[optind]);
		return -1;
	}
	if (cfgfile && config_load_file(c, cfgfile, &listen_reset) == -1)
		return -1;
	listen_reset = 1;	/* command-line --listen replaces the file's */
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "hVn", long_opts, &idx)) != -1) {
		if (opt == 'n')
			opt = OPT_CHECK;
		if (opt == OPT_CONFIG || opt == 'h' || opt == 'V')
			continue;
		if (config_apply(c, opt, long_opts[idx].name, optarg,
		    &listen_reset) == -1)
			return -1;
	}
	if (c->nlisten == 0) {
		snprintf(c->listen[0].la_spec, sizeof(c->listen[0].la_spec),
		    "%s", BT_DEFAULT_LISTEN);
		c->nlisten = 1;
	}
	return config_check(c);
}
