/* SPDX-License-Identifier: MIT */
/*
 * api_pmapi.c - the pmproxy /pmapi dialect: one table of commands, one
 * handler per command (api_names.c, api_fetch.c, api_store.c; the "_"
 * commands are api_pmwebd.c's), parameters parsed in one place (api.c).
 * This file finds the command and the request's context and runs it.
 * Answers copy pmproxy 6.0.3 byte for byte (field order, compact JSON,
 * CRLF after each body, error texts) except where pmproxy writes invalid
 * JSON or malformed numbers; those deviations are listed in README.md.
 * Threads: runs in HTTP workers; reads immutable registry generations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "bt_limits.h"
#include "buf.h"
#include "daemon.h"
#include "http.h"
#include "registry.h"
#include "util.h"

/* --- context --- */

/*
 * 1 when a hostspec names a container (its attributes, after '?',
 * separated by '&' or ',', hold a "container" key): bpftraced cannot
 * enter one, and must never answer host-wide values as a container's.
 */
static int
hostspec_container(const char *spec)
{
	const char	*p = strchr(spec, '?');

	while (p != NULL) {
		p++;
		p += strspn(p, " ");
		if (strncasecmp(p, "container", 9) == 0 &&
		    strchr("=&, ", p[9]) != NULL)
			return 1;
		p = strpbrk(p, "&,");
	}
	return 0;
}

/*
 * Find or create the request's context. Returns 0, or -1 after an error
 * answer was queued (*ret holds the MHD result).
 */
static int
resolve_context(struct api *a, int *ret)
{
	const char	*errstr, *pt, *hs;
	char		 peer[64];
	double		 timeout = BT_CTX_TIMEOUT;
	enum ctx_result	 rc;
	struct profile	**profp = a->a_cmd->c_ep == EP_FETCH ? &a->a_prof : NULL;
	struct dset	**dsetp = a->a_cmd->c_ep == EP_CONTEXT ||
			    a->a_cmd->c_ep == EP_STORE ? NULL : &a->a_dset;

	if (a->a_ctxstr) {
		long long	 id = strtonum_ll(a->a_ctxstr, 0, UINT32_MAX,
				    &errstr);

		if (errstr) {
			*ret = api_error(a, 400, 2, -EINVAL,
			    "invalid context identifier: %s", a->a_ctxstr);
			return -1;
		}
		a->a_ctx = (uint32_t)id;
		if ((rc = ctx_use(a->a_ds->ctx, a->a_ctx, profp, dsetp)) !=
		    CTX_OK) {
			/* pmproxy echoes the id, except on /context */
			*ret = api_ctx_error(a, API_CTX_USE, rc, NULL,
			    a->a_cmd->c_ep == EP_CONTEXT ? 0 : 1);
			return -1;
		}
		a->a_held = 1;
		return 0;
	}
	if ((pt = api_param(a, "polltimeout")) != NULL &&
	    (parse_double(pt, &timeout) == -1 || timeout <= 0 ||
	    timeout > BT_CTX_TIMEOUT_MAX)) {
		*ret = api_error_inval(a, 400, 0,
		    "invalid timeout requested in polltime");
		return -1;
	}
	/* clamped, not refused: a client asking for longer still works */
	if (timeout > a->a_ds->cfg.max_polltimeout)
		timeout = a->a_ds->cfg.max_polltimeout;
	if ((hs = api_param(a, "hostspec")) == NULL)
		hs = api_param(a, "hostname");
	if (hs && hostspec_container(hs)) {
		*ret = api_error(a, 400, 0, -EOPNOTSUPP, "cannot connect to "
		    "PMCD: containers are not supported by bpftraced (%s "
		    "names a container; it would get the host's values)", hs);
		return -1;
	}
	if (hs && *hs && !api_host_is_local(a, hs)) {
		*ret = api_error(a, 400, 0, -ECONNREFUSED, "cannot connect to "
		    "PMCD: %s is not served by bpftraced (only the local host)",
		    hs);
		return -1;
	}
	http_peer(a->a_hr, peer, sizeof(peer));
	if ((rc = ctx_create_for(a->a_ds->ctx, timeout, peer, &a->a_ctx)) ==
	    CTX_OK)
		return 0;
	*ret = api_ctx_error(a, API_CTX_NEW, rc, NULL, 0);
	return -1;
}

static int
run_context(struct api *a)
{
	struct daemon_state	*ds = a->a_ds;

	api_put_head(a);
	buf_printf(&a->a_out, ",\"source\":\"%s\",\"hostspec\":",
	    ds->source_id);
	json_str(&a->a_out, ds->hostname);
	buf_puts(&a->a_out, ",\"labels\":");
	api_put_labels(a, NULL, NULL);
	buf_putc(&a->a_out, '}');
	return api_send_out(a, 200);
}

/* --- the command table, matched by prefix in pmproxy's order --- */

#define GP	(HTTP_GET | HTTP_POST)
static const struct cmd cmds[] = {
	{ "context",  EP_CONTEXT,  HTTP_GET, api_ok_always, run_context, 0 },
	{ "profile",  EP_PROFILE,  HTTP_GET, api_ok_profile, api_run_profile,
	    0 },
	{ "metric",   EP_METRIC,   HTTP_GET, api_ok_always, api_run_metric, 0 },
	{ "derive",   EP_DERIVE,   GP, api_ok_derive, api_run_derive, 0 },
	{ "fetch",    EP_FETCH,    HTTP_GET, api_ok_fetch, api_run_fetch, 0 },
	{ "indom",    EP_INDOM,    HTTP_GET, api_ok_indom, api_run_indom, 0 },
	{ "store",    EP_STORE,    GP, api_ok_store, api_run_store, 0 },
	{ "children", EP_CHILDREN, HTTP_GET, api_ok_always, api_run_children,
	    0 },
	{ NULL, EP_OTHER, 0, NULL, NULL, 0 }
};
#undef GP

/*
 * "/pmapi/[N/][_]cmd": sets *ctxp to the path's context text, or NULL.
 * A "_" command is pmproxy's compat mode, the pmwebd dialect
 * (api_pmwebd.c), and so is "/pmapi/X/_cmd" with a non-numeric X,
 * which pmwebd refused as a bad URL.
 */
static const struct cmd *
lookup_cmd(const char *path, char *ctxbuf, size_t ctxlen, const char **ctxp)
{
	const char	*p = path + strlen("/pmapi/");
	size_t		 digits = strspn(p, "0123456789");
	size_t		 seg = strcspn(p, "/");

	*ctxp = NULL;
	if (digits > 0 && p[digits] == '/') {
		if (digits >= ctxlen)
			return NULL;
		memcpy(ctxbuf, p, digits);
		ctxbuf[digits] = '\0';
		*ctxp = ctxbuf;
		p += digits + 1;
	} else if (p[seg] == '/' && p[seg + 1] == '_') {
		return api_pmwebd_bad_url();
	}
	if (*p == '_')
		return api_pmwebd_lookup(p);
	if (strcmp(p, "metrics") == 0 || strncmp(p, "metrics?", 8) == 0)
		return NULL;	/* the scrape servlet: not served yet */
	for (const struct cmd *c = cmds; c->c_name; c++)
		if (strncmp(p, c->c_name, strlen(c->c_name)) == 0)
			return c;
	return NULL;
}

/* who asks: the principal for control answers and --auth-reads */
static void
set_reader(struct api *a)
{
	http_peer(a->a_hr, a->a_peer, sizeof(a->a_peer));
	a->a_rd.rd_ctx = a->a_ctx;
	a->a_rd.rd_user = a->a_hr->hr_authed ? a->a_hr->hr_user : NULL;
	a->a_rd.rd_roles = a->a_hr->hr_authed ? a->a_hr->hr_roles : 0;
	a->a_rd.rd_peer = a->a_peer;
}

int
api_pmapi(struct httpreq *hr)
{
	struct api	 a;
	char		 ctxbuf[32];
	const char	*pathctx;
	int		 ret;

	memset(&a, 0, sizeof(a));
	a.a_pcmode = -1;
	a.a_hr = hr;
	a.a_ds = hr->hr_ds;
	if ((a.a_cmd = lookup_cmd(hr->hr_path, ctxbuf, sizeof(ctxbuf),
	    &pathctx)) == NULL) {
		atomic_fetch_add(&hr->hr_ds->stats.st_requests[EP_OTHER], 1);
		return http_reply_html(hr, 400, "unknown servlet",
		    "no handler for URL");
	}
	atomic_fetch_add(&hr->hr_ds->stats.st_requests[a.a_cmd->c_ep], 1);
	if (a.a_cmd->c_flags & CMD_NOCTX)	/* pmwebd's bad URL */
		return a.a_cmd->c_run(&a);
	if (!a.a_cmd->c_params_ok(hr))
		return http_reply_html(hr, 400, "webapi servlet",
		    "failed to process URL");
	if (strcmp(hr->hr_method, "OPTIONS") == 0)
		return http_reply_options(hr, a.a_cmd->c_methods);
	a.a_ctxstr = pathctx ? pathctx : api_param(&a, "context");
	api_buf_init(&a, &a.a_out);
	if (a.a_cmd->c_ep == EP_CONTEXT && a.a_ctxstr == NULL &&
	    !API_PMWEBD(&a)) {
		const struct cmd	*w = api_pmwebd_context_form(hr);

		if (w != NULL) {	/* pmwebd's own context creation */
			a.a_cmd = w;
			ret = w->c_run(&a);
			buf_free(&a.a_out);
			return ret;
		}
	}
	if (resolve_context(&a, &ret) == 0) {
		set_reader(&a);
		a.a_ns = reg_acquire(hr->hr_ds->reg);
		ret = a.a_cmd->c_run(&a);
		ns_release(a.a_ns);
	}
	if (a.a_held)
		ctx_done(hr->hr_ds->ctx, a.a_ctx);
	profile_release(a.a_prof);
	dset_release(a.a_dset);
	api_pcbatch_free(a.a_pcb);
	buf_free(&a.a_out);
	return ret;
}
