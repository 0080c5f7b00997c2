/* SPDX-License-Identifier: MIT */
/*
 * bt_limits.h - every named limit and default of bpftraced, nothing else.
 * Each has a flag and a config key (config.c), a line in --help and the
 * man pages. Not "limits.h": with src/ on the include path, that name
 * shadows the C library's <limits.h> (gcc's syslimits.h include_next).
 */
#ifndef BT_LIMITS_H
#define BT_LIMITS_H

#define BT_DOMAIN		151
#define BT_DEFAULT_LISTEN	"127.0.0.1:44322"
#define BT_DEFAULT_STATE_DIR	"/var/lib/bpftraced"
#define BT_MAX_LISTEN		8
/* request target bytes (--max-url-bytes): grafana-pcp sends a whole
   script URL-encoded in store?value=; pmproxy answers 414 at 8192 */
#define BT_MAX_URL_BYTES	(32 * 1024)
#define BT_MAX_BODY		(1024 * 1024)
#define BT_MAX_CONNECTIONS	1024
/* per client address: above Grafana's data-proxy pool of 100 idle
   connections per host, and many browsers' 6 (a shared NAT address too) */
#define BT_MAX_CONN_PER_IP	128
/* seconds from a request's first byte until it is all in (headers and
   body); a client dribbling a byte under --idle-timeout is cut here */
#define BT_REQUEST_TIMEOUT	30
/* libmicrohttpd's per-connection pool (URL, headers, read/write
   buffers): BT_CONN_POOL, or --max-url-bytes + BT_CONN_POOL / 2 when that
   is more (http.c conn_pool); charged to --max-memory while the
   connection is open, with BT_URL_PREPAID twice for our copies of the URL
   (the target and its decoded parameters); a longer URL charges its own
   copies while its request runs */
#define BT_CONN_POOL		(64 * 1024)
#define BT_URL_PREPAID		8192
/* bytes of one answer (pmapi, pmwebd, /metrics) */
#define BT_MAX_ANSWER		(64 * 1024 * 1024)
#define BT_MAX_CONTEXTS		16384
#define BT_IDLE_TIMEOUT		60	/* seconds a connection may idle */
#define BT_CTX_TIMEOUT		5.0	/* pmproxy's default polltimeout */
#define BT_CTX_TIMEOUT_MAX	86400.0	/* highest --max-polltimeout */
#define BT_MAX_POLLTIMEOUT	600	/* s; a longer polltimeout is clamped */
#define BT_MAX_CONTEXTS_PER_IP	12288	/* 3/4 of the table per address */
#define BT_MAX_PROFILE_INSTANCES 10000	/* instance ids in one profile */
#define BT_MAX_DERIVED_BYTES	(512 * 1024) /* per context: 256 x 2 KB */
#define BT_MAX_REGEX		256	/* bytes of one match=regex pattern */
#define BT_MAX_REGEX_STEPS	100000	/* PCRE2 match limit per name */
#define BT_MAX_NAMES		4096	/* names=/pmids= entries per request */
#define BT_MAX_PARAMS		256
#define BT_MAX_MEMORY		(256 * 1024 * 1024) /* held for clients */

#define BT_MAX_SCRIPTS		64	/* registered scripts */
#define BT_MAX_SCRIPTS_PER_USER	16	/* per authenticated user */
#define BT_MAX_SCRIPT_BYTES	(64 * 1024)
/* one control answer kept for its fetch (the echoed code is cut to fit) */
#define BT_MAX_CONTROL_ANSWER	(64 * 1024)
#define BT_MIN_CONTROL_ANSWER	4096	/* room for the rest of an answer */
#define BT_MAX_OUTPUT_RATE	(2 * 1024 * 1024) /* stdout bytes/s */
#define BT_MAX_LINE		(8 * 1024 * 1024) /* one JSON line */
#define BT_MAX_INSTANCES	10000	/* per variable */
#define BT_SCRIPT_EXPIRY	60	/* s without a fetch (unnamed) */
#define BT_PRINT_INTERVAL_MS	1000
#define BT_STOP_TIMEOUT_MS	5000	/* SIGINT, then SIGKILL */
#define BT_SHUTDOWN_WAIT_MS	700	/* at exit: stop within 1 s */
#define BT_EOF_GRACE_MS		2000	/* stdout closed, still running */
#define BT_ERROR_TEXT_MAX	(16 * 1024)
#define BT_RESTART_MAX_BACKOFF_MS 60000
#define BT_TOUCH_INTERVAL_MS	30000	/* last-fetch times saved */
/* audit rows of failed logins and of refused control stores, each: rows
   written a minute (the rest are counted in one summary row), rows kept */
#define BT_AUDIT_RATE		60
#define BT_AUDIT_ROWS		1000
/* password checks (crypt, ~25 ms each) run off the HTTP threads */
#define BT_AUTH_THREADS		1	/* verifier threads */
#define BT_AUTH_QUEUE		64	/* checks waiting for one; then 503 */
#define BT_AUTH_FAIL_RATE	30	/* failed checks a minute per address */
#define BT_AUTH_FAIL_ADDRS	1024	/* addresses whose failures are kept */
/* GnuTLS priorities: TLS 1.2 and 1.3 with forward secrecy only */
#define BT_TLS_PRIORITY		"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
				"-RSA:-DHE-DSS:-VERS-SSL3.0"
#define BT_MAX_AUDIT_ROWS	100000	/* audit rows kept, all actions */
#define BT_MAX_DERIVED		256	/* derived metrics per context */
#define BT_MAX_DERIVED_LIMIT	65536	/* highest --max-derived */
/* pmwebd's -t default, seconds (api_pmwebd.c) */
#define BT_PMWEBD_CTX_TIMEOUT	300

#endif /* BT_LIMITS_H */
