/* SPDX-License-Identifier: MIT */
/*
 * selfmetrics.c - the daemon's own metrics: bpftrace.info.* (versions,
 * script counts) and bpftrace.daemon.* (uptime, requests per endpoint,
 * errors, requests refused by the origin policy, contexts, memory).
 * Values are computed per fetch from atomics, so every endpoint has real
 * data before any script exists.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bt_limits.h"
#include "daemon.h"
#include "memcap.h"
#include "origin.h"
#include "registry.h"
#include "scripts.h"
#include "top.h"
#include "util.h"

#define SELF_INDOM_ENDPOINT	pmInDom_build(BT_DOMAIN, 1)
#define SELF_INDOM_REFUSAL	pmInDom_build(BT_DOMAIN, 2)

static const char *const ep_names[EP_COUNT] = {
	"context", "metric", "fetch", "indom", "children", "profile",
	"store", "derive", "other"
};

enum self_slot {
	S_DAEMON_VERSION, S_BPFTRACE_VERSION, S_BPFTRACE_PATH, S_NSCRIPTS,
	S_NRUNNING, S_UPTIME, S_REQUESTS, S_ERRORS, S_CONTEXTS, S_BYTES_OUT,
	S_RSS, S_PID, S_PMCD_HOSTNAME, S_PMCD_VERSION, S_CTX_EVICTED, S_REFUSED,
	S_MEM_HELD, S_MEM_REFUSED,
	S_COUNT
};

#define PMCD_DOMAIN	2	/* pmcd's own PMDA, for clients that ask it */

struct self_def {
	const char	*name;
	int		 cluster, item;
	int		 type, sem;
	pmUnits		 units;
	int		 indom;		/* 1: endpoints, 2: refusals */
	const char	*labels;
	const char	*oneline;
	const char	*help;
	int		 domain;	/* 0: BT_DOMAIN */
};

#define NOUNITS		BT_UNITS(0, 0, 0, 0, 0, 0)
#define COUNT		BT_UNITS(0, 0, 1, 0, 0, PM_COUNT_ONE)
#define CONTROL		"\"metrictype\":\"control\""

static const struct self_def self_defs[S_COUNT] = {
	[S_DAEMON_VERSION] = { "bpftrace.info.daemon_version", 1, 3,
	    PM_TYPE_STRING, PM_SEM_DISCRETE, NOUNITS, 0, CONTROL,
	    "version of the bpftraced daemon", NULL },
	[S_BPFTRACE_VERSION] = { "bpftrace.info.version", 1, 4,
	    PM_TYPE_STRING, PM_SEM_DISCRETE, NOUNITS, 0, CONTROL,
	    "version of the bpftrace binary in use",
	    "Version reported by bpftrace --version, e.g. v0.17.0; the "
	    "empty string when bpftrace was not found or did not run; no "
	    "value right after start, while bpftrace --version runs." },
	[S_BPFTRACE_PATH] = { "bpftrace.info.bpftrace_path", 1, 5,
	    PM_TYPE_STRING, PM_SEM_DISCRETE, NOUNITS, 0, CONTROL,
	    "path of the bpftrace binary bpftraced runs", NULL },
	[S_NSCRIPTS] = { "bpftrace.info.scripts_total", 1, 6,
	    PM_TYPE_U32, PM_SEM_INSTANT, COUNT, 0, CONTROL,
	    "number of registered bpftrace scripts", NULL },
	[S_NRUNNING] = { "bpftrace.info.scripts_running", 1, 7,
	    PM_TYPE_U32, PM_SEM_INSTANT, COUNT, 0, CONTROL,
	    "number of bpftrace scripts currently running", NULL },
	[S_UPTIME] = { "bpftrace.daemon.uptime", 2, 0,
	    PM_TYPE_U64, PM_SEM_COUNTER, BT_UNITS(0, 1, 0, 0, PM_TIME_SEC, 0),
	    0, NULL, "time since bpftraced started", NULL },
	[S_REQUESTS] = { "bpftrace.daemon.requests", 2, 1,
	    PM_TYPE_U64, PM_SEM_COUNTER, COUNT, 1, NULL,
	    "HTTP API requests served, per endpoint",
	    "Requests answered by the REST API since start, one instance per "
	    "/pmapi endpoint; everything else is counted as \"other\"." },
	[S_ERRORS] = { "bpftrace.daemon.errors", 2, 2,
	    PM_TYPE_U64, PM_SEM_COUNTER, COUNT, 0, NULL,
	    "HTTP requests answered with an error status", NULL },
	[S_CONTEXTS] = { "bpftrace.daemon.contexts", 2, 3,
	    PM_TYPE_U32, PM_SEM_INSTANT, COUNT, 0, NULL,
	    "REST client contexts currently alive", NULL },
	[S_CTX_EVICTED] = { "bpftrace.daemon.contexts_evicted", 2, 12,
	    PM_TYPE_U64, PM_SEM_COUNTER, COUNT, 0, NULL,
	    "REST client contexts evicted to make room",
	    "Contexts dropped before their polltimeout because the table "
	    "(--max-contexts), the client address's share "
	    "(--max-contexts-per-ip) or --max-memory was full; their next "
	    "use answers \"unknown context identifier\"." },
	[S_MEM_HELD] = { "bpftrace.daemon.memory_held", 2, 13,
	    PM_TYPE_U64, PM_SEM_INSTANT, BT_UNITS(1, 0, 0, PM_SPACE_BYTE, 0, 0),
	    0, NULL, "bytes held for clients, counted against --max-memory",
	    "What clients make the daemon hold now: contexts, derived "
	    "metrics, profiles, connections, request bodies, answers not yet "
	    "read and control answers. Requests that would take it past "
	    "--max-memory are answered 503." },
	[S_MEM_REFUSED] = { "bpftrace.daemon.memory_refused", 2, 14,
	    PM_TYPE_U64, PM_SEM_COUNTER, COUNT, 0, NULL,
	    "requests refused by the --max-memory ceiling", NULL },
	[S_BYTES_OUT] = { "bpftrace.daemon.bytes_out", 2, 4,
	    PM_TYPE_U64, PM_SEM_COUNTER, BT_UNITS(1, 0, 0, PM_SPACE_BYTE, 0, 0),
	    0, NULL, "bytes of HTTP response bodies sent", NULL },
	[S_RSS] = { "bpftrace.daemon.rss", 2, 5,
	    PM_TYPE_U64, PM_SEM_INSTANT, BT_UNITS(1, 0, 0, PM_SPACE_KBYTE, 0, 0),
	    0, NULL, "resident set size of the bpftraced process", NULL },
	[S_PID] = { "bpftrace.daemon.pid", 2, 6,
	    PM_TYPE_U32, PM_SEM_DISCRETE, NOUNITS, 0, NULL,
	    "process id of bpftraced", NULL },
	[S_REFUSED] = { "bpftrace.daemon.refused", 2, 7,
	    PM_TYPE_U64, PM_SEM_COUNTER, COUNT, 2, NULL,
	    "HTTP requests refused by the request-origin policy, per reason",
	    "Requests refused before any handler ran: \"host\" (421, a Host "
	    "header bpftraced does not answer for: DNS rebinding, see "
	    "--allow-host), \"cross-site\" and \"same-site\" (403, a page on "
	    "another origin asked for a store, derive or profile, by "
	    "Sec-Fetch-Site), \"origin\" (403, the same told by an Origin "
	    "header), \"referer\" (403, by a Referer), \"no-origin\" (403, a "
	    "browser that sent none of these) and \"preflight\" (403, a CORS "
	    "preflight for one). See --allow-origin." },
	/* grafana-pcp's "Save & Test" and version checks fetch these */
	[S_PMCD_HOSTNAME] = { "pmcd.hostname", 0, 21,
	    PM_TYPE_STRING, PM_SEM_DISCRETE, NOUNITS, 0, NULL,
	    "local hostname", "The host name bpftraced serves metrics for "
	    "(what pmcd.hostname is in pmcd).", PMCD_DOMAIN },
	[S_PMCD_VERSION] = { "pmcd.version", 0, 7,
	    PM_TYPE_STRING, PM_SEM_DISCRETE, NOUNITS, 0, NULL,
	    "PMCD version", "The PCP version whose protocol bpftraced speaks: "
	    "the version of the libpcp it was built with. Clients use it for "
	    "feature checks.", PMCD_DOMAIN },
};

static uint64_t
self_rss_kb(void)
{
	FILE			*f;
	char			 line[256], *p;
	const char		*errstr;
	unsigned long long	 resident = 0;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return 0;
	/* "size resident shared ...", in pages */
	if (fgets(line, sizeof(line), f) != NULL &&
	    (p = strchr(line, ' ')) != NULL) {
		p[1 + strcspn(p + 1, " \n")] = '\0';
		resident = strtonum_ull(p + 1, 0, UINT64_MAX, &errstr);
	}
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

#define SELF_MAX_INST	((int)EP_COUNT > (int)REFUSE_COUNT ? (int)EP_COUNT : \
			    (int)REFUSE_COUNT)

/* n counters as the values of slot, instances 0..n-1 of indom islot */
static int
self_fill_counters(struct snap *s, int slot, int islot, int n,
    atomic_ullong *counters, const char *const *names)
{
	uint32_t	 ids[SELF_MAX_INST];
	union value	 vals[SELF_MAX_INST];

	for (int i = 0; i < n; i++) {
		ids[i] = (uint32_t)i;
		vals[i].u = atomic_load(&counters[i]);
	}
	if (snap_set_values(s, slot, n, ids, vals) == -1)
		return -1;
	return snap_set_indom(s, islot, n, ids, names);
}

static int
self_fill_refused(struct snap *s, struct daemon_state *ds)
{
	const char	*names[REFUSE_COUNT];

	for (int i = 0; i < REFUSE_COUNT; i++)
		names[i] = origin_refusal_name((enum origin_refusal)i);
	return self_fill_counters(s, S_REFUSED, 1, REFUSE_COUNT,
	    ds->stats.st_refused, names);
}

/* Builds a fresh snapshot per fetch; caller releases it. */
static struct snap *
self_refresh(struct source *src, void *arg)
{
	struct daemon_state	*ds = arg;
	struct snap		*s;
	struct timespec		 now;
	int			 rv = 0;

	if ((s = snap_new(S_COUNT, 2)) == NULL)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &now);
	rv |= snap_set_str1(s, S_DAEMON_VERSION, BT_VERSION);
	if (bt_version_state(ds) != BT_VERSION_PENDING)	/* else no value */
		rv |= snap_set_str1(s, S_BPFTRACE_VERSION, bt_version(ds));
	rv |= snap_set_str1(s, S_BPFTRACE_PATH, ds->cfg.bpftrace_path);
	rv |= snap_set1(s, S_NSCRIPTS,
	    (union value){ .u = (uint64_t)atomic_load(&ds->nscripts) });
	rv |= snap_set1(s, S_NRUNNING,
	    (union value){ .u = (uint64_t)atomic_load(&ds->nrunning) });
	rv |= snap_set1(s, S_UPTIME,
	    (union value){ .u = (uint64_t)(now.tv_sec - ds->start_mono.tv_sec) });
	rv |= self_fill_counters(s, S_REQUESTS, 0, EP_COUNT,
	    ds->stats.st_requests, ep_names);
	rv |= self_fill_refused(s, ds);
	rv |= snap_set1(s, S_ERRORS,
	    (union value){ .u = atomic_load(&ds->stats.st_errors) });
	rv |= snap_set1(s, S_CONTEXTS,
	    (union value){ .u = ctx_count(ds->ctx) });
	rv |= snap_set1(s, S_CTX_EVICTED,
	    (union value){ .u = ctx_evictions(ds->ctx) });
	rv |= snap_set1(s, S_MEM_HELD,
	    (union value){ .u = memcap_used(&ds->mem) });
	rv |= snap_set1(s, S_MEM_REFUSED,
	    (union value){ .u = atomic_load(&ds->mem.mc_refused) });
	rv |= snap_set1(s, S_BYTES_OUT,
	    (union value){ .u = atomic_load(&ds->stats.st_bytes_out) });
	rv |= snap_set1(s, S_RSS, (union value){ .u = self_rss_kb() });
	rv |= snap_set1(s, S_PID, (union value){ .u = (uint64_t)getpid() });
	rv |= snap_set_str1(s, S_PMCD_HOSTNAME, ds->hostname);
	rv |= snap_set_str1(s, S_PMCD_VERSION, ds->pcp_version);
	if (rv != 0) {
		snap_release(s);
		return NULL;
	}
	return s;
}

int
self_register(struct daemon_state *ds)
{
	struct metric	*ms[S_COUNT] = { 0 };
	struct indom	*in[2] = { NULL, NULL };

	/* libpcp's version ("6.0.3"), read once before any thread */
	snprintf(ds->pcp_version, sizeof(ds->pcp_version), "%s",
	    pmGetConfig("PCP_VERSION"));
	ds->self_src = source_new("bpftraced", self_refresh, ds);
	if (ds->self_src == NULL)
		return -1;
	for (int i = 0; i < S_COUNT; i++) {
		const struct self_def	*d = &self_defs[i];

		ms[i] = metric_new(d->name, pmID_build(d->domain ? d->domain :
		    BT_DOMAIN, d->cluster,
		    d->item), d->indom == 1 ? SELF_INDOM_ENDPOINT :
		    d->indom == 2 ? SELF_INDOM_REFUSAL : PM_INDOM_NULL,
		    d->type, d->sem, d->units, d->oneline, d->help, d->labels,
		    ds->self_src, i);
		if (ms[i] == NULL)
			break;
	}
	in[0] = indom_new(SELF_INDOM_ENDPOINT, "bpftraced REST API endpoints",
	    "One instance per /pmapi endpoint (context, metric, fetch, ...).",
	    ds->self_src, 0);
	in[1] = indom_new(SELF_INDOM_REFUSAL, "why bpftraced refused requests",
	    "One instance per reason of the request-origin policy (host, "
	    "cross-site, same-site, origin, referer, preflight, no-origin).",
	    ds->self_src, 1);
	return reg_add_release(ds->reg, ms, S_COUNT, in, 2, __func__);
}
