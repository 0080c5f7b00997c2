/* SPDX-License-Identifier: MIT */
/*
 * api_pmwebd.c - the legacy pmwebd dialect: the "_"-prefixed commands of
 * PCP 3.x/4.x pmwebd (/pmapi/N/_fetch, _metric, _indom, _store), as
 * pmproxy 5/6 still serves them in its compat mode, plus pmwebd's own
 * context creation. api_pmapi.c routes "/pmapi/[N/]_cmd" here; the
 * handlers that only differ in how ids are written are the bare
 * commands' (api_fetch.c, api_names.c, api_store.c), run with CMD_PMWEBD
 * set (numeric pmid/indom, instance -1, pmwebd's errors: api.c).
 *
 * Which form answers what:
 *  - A successful answer is pmproxy 6.0.3's compat mode, byte for byte:
 *    _fetch {"timestamp":{"s":S,"us":US},"values":[...]} without a
 *    context key, u32 pmids and "instance":-1 for singular metrics;
 *    _metric the metric answer with u32 pmid/indom; _indom without a
 *    context key and with a u32 indom; _context {"context":N}; _store,
 *    _profile and _children as the bare commands. These are supersets
 *    of pmwebd's shapes: pmwebd clients read only pmwebd's fields.
 *  - An error is pmwebd's: text/plain "PMWEBD error, code -N: <pmErrStr>"
 *    with status 400 (401/403/500/503 where bpftraced refuses for who is
 *    asking or for its own limits). pmproxy's compat mode answers its
 *    JSON errors instead, which pmwebd clients cannot read: the 2019
 *    grafana-pcp datasource only recreates an expired context when the
 *    text body holds "12376", and tells store failures apart by -12357
 *    and -12400.
 *  - Where pmwebd and pmproxy's compat mode behave differently, pmwebd's
 *    behaviour wins: a fetch with no valid name is -12443 "Insufficient
 *    elements in list" (pmproxy: 200 with no values); _metric?prefix= of
 *    an unknown name is an empty list (pmproxy: 400); an unknown "_"
 *    command or a non-numeric context in "/pmapi/X/_cmd" is -22
 *    "Invalid argument" (pmproxy: its HTML "unknown servlet" page);
 *    _derive is -22 too, pmwebd having had no derived metrics (pmproxy's
 *    compat mode registers them). Derived metrics registered with
 *    /pmapi/N/derive are served by _fetch, _metric, _indom and _children
 *    of that context (u32 pmids with libpcp's derived bit).
 *    HTTP-layer refusals (a missing mandatory parameter, URL too long)
 *    stay pmproxy's HTML pages, as for the bare commands.
 *
 * Context creation (api_pmwebd_context_form): /pmapi/context answers in
 * pmwebd's form, exactly "{ "context": N }" with pmwebd's 300 s default
 * polltimeout, only when the request names no existing context and
 * carries a parameter that only pmwebd knows: local= (a local context)
 * or archivefile= (refused: no archives here). hostspec= and hostname=
 * are pmproxy parameters too, so such requests get pmproxy's answer with
 * "source": both grafana-pcp generations send hostspec= and the 2019
 * one picks the pmproxy dialect from that key.
 *
 * Threads: runs in HTTP workers, like api_pmapi.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "http.h"
#include "registry.h"
#include "util.h"

/* _context: {"context":N}, no client, no source (pmproxy compat) */
static int
run_context(struct api *a)
{
	buf_printf(&a->a_out, "{\"context\":%u}", a->a_ctx);
	return api_send_out(a, 200);
}

static int
run_bad_url(struct api *a)
{
	return api_error_pmwebd(a->a_hr, 400, -EINVAL);
}

/* pmwebd's polltimeout: whole seconds; bad or out of range is the max */
static double
pmwebd_timeout(const char *s)
{
	const char		*errstr;
	unsigned long long	 v;

	if (s == NULL || *s == '\0')
		return BT_PMWEBD_CTX_TIMEOUT;
	/* base 0 (0x, 0 octal) as strtol's before */
	v = strtonum_ull_base(s, 0, 1, BT_PMWEBD_CTX_TIMEOUT, &errstr);
	if (errstr != NULL)
		return BT_PMWEBD_CTX_TIMEOUT;
	return (double)v;
}

/* /pmapi/context?local=1 (or archivefile=, hostspec=): pmwebd's answer */
static int
run_new_context(struct api *a)
{
	const char	*hs = api_param(a, "hostspec");
	char		 peer[64];
	double		 timeout;
	uint32_t	 id;
	struct buf	 b;
	enum ctx_result	 rc;

	if (hs == NULL || *hs == '\0')
		hs = api_param(a, "hostname");
	if (hs && *hs) {		/* pmwebd looks at a hostspec first */
		if (!api_host_is_local(a, hs))
			return api_error_pmwebd(a->a_hr, 400, -ECONNREFUSED);
	} else if (api_param(a, "archivefile") != NULL) {
		return api_error_pmwebd(a->a_hr, 400, -ENOENT);
	}
	timeout = pmwebd_timeout(api_param(a, "polltimeout"));
	if (timeout > a->a_ds->cfg.max_polltimeout)	/* --max-polltimeout */
		timeout = a->a_ds->cfg.max_polltimeout;
	http_peer(a->a_hr, peer, sizeof(peer));
	if ((rc = ctx_create_for(a->a_ds->ctx, timeout, peer, &id)) != CTX_OK)
		return api_ctx_error(a, API_CTX_NEW, rc, NULL, 0);
	buf_init(&b, 64);	/* 28 bytes at most */
	buf_printf(&b, "{ \"context\": %u }", id);
	if (b.b_failed) {
		buf_free(&b);
		return api_error_pmwebd(a->a_hr, 503, -ENOMEM);
	}
	return http_reply(a->a_hr, 200, "application/json", buf_take(&b, NULL),
	    b.b_len);
}

#define GP	(HTTP_GET | HTTP_POST)
#define W	CMD_PMWEBD
/* matched by prefix in pmproxy's order, like the bare commands */
static const struct cmd cmds[] = {
	{ "_context",  EP_CONTEXT,  HTTP_GET, api_ok_always, run_context, W },
	{ "_profile",  EP_PROFILE,  HTTP_GET, api_ok_profile, api_run_profile,
	    W },
	{ "_metric",   EP_METRIC,   HTTP_GET, api_ok_always, api_run_metric, W },
	{ "_derive",   EP_DERIVE,   GP, api_ok_derive, api_run_derive, W },
	{ "_fetch",    EP_FETCH,    HTTP_GET, api_ok_fetch, api_run_fetch,
	    W },
	{ "_indom",    EP_INDOM,    HTTP_GET, api_ok_indom, api_run_indom, W },
	{ "_store",    EP_STORE,    GP, api_ok_store, api_run_store, W },
	{ "_children", EP_CHILDREN, HTTP_GET, api_ok_always, api_run_children,
	    W },
	{ NULL, EP_OTHER, 0, NULL, NULL, 0 }
};

static const struct cmd bad_url = {
	"_", EP_OTHER, HTTP_GET, api_ok_always, run_bad_url, W | CMD_NOCTX
};

static const struct cmd new_context = {
	"context", EP_CONTEXT, HTTP_GET, api_ok_always, run_new_context,
	W | CMD_NOCTX
};
#undef W
#undef GP

/* p is the command part of the path, starting with "_" */
const struct cmd *
api_pmwebd_lookup(const char *p)
{
	if (strcmp(p, "_metrics") == 0)
		return NULL;	/* compat scrape: not served, as metrics */
	for (const struct cmd *c = cmds; c->c_name; c++)
		if (strncmp(p, c->c_name, strlen(c->c_name)) == 0)
			return c;
	return &bad_url;
}

const struct cmd *
api_pmwebd_bad_url(void)
{
	return &bad_url;
}

/* The rule is in the comment at the top of this file. */
const struct cmd *
api_pmwebd_context_form(struct httpreq *hr)
{
	if (params_get(&hr->hr_params, "local") != NULL ||
	    params_get(&hr->hr_params, "archivefile") != NULL)
		return &new_context;
	return NULL;
}
