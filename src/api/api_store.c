/* SPDX-License-Identifier: MIT */
/*
 * api_store.c - /pmapi/store of a local metric (bpftrace.control.*: the
 * metric's m_store, control.c; a pmcd metric goes to api_pcstore.c) and
 * /pmapi/derive (per-context derived metrics, in libpcp's order and with
 * its error texts).
 * Threads: runs in HTTP workers; ctx_* take the context table's lock.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "bt_limits.h"
#include "buf.h"
#include "http.h"
#include "pcp.h"
#include "registry.h"
#include "util.h"

/* --- store --- */

/* pmproxy converts the text to the metric's type before storing */
static int
value_fits_type(int type, const char *v, size_t len)
{
	char		 tmp[64];
	const char	*errstr;
	double		 d;

	if (type == PM_TYPE_STRING)
		return 1;
	if (len == 0 || len >= sizeof(tmp))
		return 0;
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	switch (type) {
	case PM_TYPE_32:
		strtonum_ll(tmp, INT32_MIN, INT32_MAX, &errstr);
		return errstr == NULL;
	case PM_TYPE_U32:
		strtonum_ll(tmp, 0, UINT32_MAX, &errstr);
		return errstr == NULL;
	case PM_TYPE_64:
	case PM_TYPE_U64:	/* u64 above INT64_MAX: not storable here */
		strtonum_ll(tmp, type == PM_TYPE_64 ? INT64_MIN : 0,
		    INT64_MAX, &errstr);
		return errstr == NULL;
	case PM_TYPE_FLOAT:
	case PM_TYPE_DOUBLE:
		return parse_double(tmp, &d) == 0;
	default:
		return 0;
	}
}

int
api_run_store(struct api *a)
{
	const char	*name = api_param(a, "name");
	const char	*spmid = api_param(a, "pmid");
	const char	*value = api_param(a, "value");
	struct store_req sr;
	struct metric	*m;
	char		 err[1024] = "", peer[64];
	pmID		 pmid;
	enum store_result st;
	int		 rv;

	memset(&sr, 0, sizeof(sr));
	sr.sr_ctx = a->a_ctx;
	sr.sr_loopback = http_peer(a->a_hr, peer, sizeof(peer));
	sr.sr_peer = peer;
	sr.sr_user = a->a_hr->hr_authed ? a->a_hr->hr_user : NULL;
	sr.sr_roles = a->a_hr->hr_roles;
	if (value) {
		sr.sr_value = value;
		sr.sr_vlen = params_find(&a->a_hr->hr_params, "value")->p_vlen;
	} else {
		sr.sr_value = a->a_hr->hr_body ? a->a_hr->hr_body : "";
		sr.sr_vlen = a->a_hr->hr_bodylen;
	}
	if (name) {
		if ((m = api_local_by_name(a, name)) == NULL &&
		    (api_pcmode(a) == PMCD_NONE || pmcd_owned_name(name) ||
		    api_pcstore(a, name, &sr, PM_ID_NULL, &rv)))
			return api_error(a, 400, 1, PM_ERR_NAME, "%s - failed "
			    "to lookup metric", name);
	} else if (api_parse_pmid(spmid, &pmid) == -1 ||
	    ((m = api_local_by_pmid(a, pmid)) == NULL &&
	    (api_pcmode(a) == PMCD_NONE || pmID_domain(pmid) == BT_DOMAIN ||
	    api_pcstore(a, NULL, &sr, pmid, &rv)))) {
		return api_error(a, 400, 1, PM_ERR_PMID, "%s - failed to "
		    "lookup PMID", spmid);
	}
	if (m == NULL)
		return rv;	/* pmcd's metric: answered */
	if (memchr(sr.sr_value, '\0', sr.sr_vlen) != NULL)
		return api_error(a, 400, 1, PM_ERR_BADSTORE, "failed to store "
		    "value to metric %s: Bad input to pmstore: value contains "
		    "a NUL byte", m->m_name);
	if (!value_fits_type(metric_type(m), sr.sr_value, sr.sr_vlen))
		return api_error(a, 400, 1, PM_ERR_TYPE, "failed to store "
		    "value to metric %s: Unknown or illegal metric type",
		    m->m_name);
	if (m->m_store == NULL)
		return api_error(a, 400, 1, PM_ERR_PERMISSION, "failed to "
		    "store value to metric %s: No permission to perform "
		    "requested operation", m->m_name);
	if ((st = m->m_store(m, &sr, err, sizeof(err))) != STORE_OK)
		return api_store_error(a, st, m->m_name, err);
	return api_send_success(a);
}

/* --- derive --- */

/*
 * pmAddDerivedMetric() on this context, in libpcp's order: the limit,
 * a duplicate name, the syntax; then the metric takes the next pmid, and
 * a semantic error keeps it (name and pmid stay used, as in libpcp).
 * An operand that is not known (yet) is no error: pmproxy answers
 * success and the metric stays invisible until its operands exist.
 */
static int
derive_one(struct api *a, const char *name, const char *expr,
    struct buf *err)
{
	struct ctxtab	*ct = a->a_ds->ctx;
	size_t		 max = a->a_ds->cfg.max_derived;
	struct dexpr	*tree, *bound = NULL;
	struct dmetric	*dm;
	struct ddesc	 d;
	const char	*why = NULL;
	enum ctx_result	 st;
	unsigned	 status;
	int		 rc;

	if (strlen(name) > DERIVE_MAX_EXPR) {
		api_derive_text(err, "...", "Derived metric name too long");
		return -1;
	}
	if (a->a_dset && a->a_dset->ds_n >= max) {
		(void)api_ctx_derive_error(a, CTX_LIMIT, name, err);
		return -1;
	}
	if (dset_find(a->a_dset, name)) {
		(void)api_ctx_derive_error(a, CTX_DUP, name, err);
		return -1;
	}
	if (derive_parse(name, expr, &tree, err) == -1)
		return -1;
	rc = derive_bind(tree, api_derive_find, a, &bound, &d, &why);
	derive_free(bound);
	derive_free(tree);
	if ((dm = dmetric_new(name, expr, rc == -1)) == NULL) {
		api_derive_text(err, name, "Out of memory");
		return -1;
	}
	rc = rc == -1 ? -1 : 0;
	if ((st = ctx_derive_add(ct, a->a_ctx, dm, max)) != CTX_OK) {
		if ((status = api_ctx_derive_error(a, st, name, err)) != 400)
			a->a_status = status;
		rc = -2;
	}
	if (rc == -1)
		derive_semantic_text(err, name, expr, why);
	dmetric_unref(dm);
	/* later lines of a config see this one */
	dset_release(a->a_dset);
	a->a_dset = NULL;
	if (ctx_use(ct, a->a_ctx, NULL, &a->a_dset) == CTX_OK)
		ctx_done(ct, a->a_ctx);
	return rc < 0 ? -1 : 0;
}

static int
is_marker(char c)
{
	return c == '\r' || c == '\n' || c == '&' || c == ';';
}

/*
 * pmproxy's "configuration file" form (webgroup.c): "name = expr" lines,
 * '#' comments, every line ending in a newline (or & or ;); the first
 * error stops it, earlier lines stay registered. Line numbers count the
 * way pmproxy counts them (from 0, blank lines included).
 */
static int
derive_config(struct api *a, const char *s, size_t len, struct buf *err)
{
	unsigned	 line = 0;
	size_t		 p = 0, ns, ne, es;
	char		*name, *expr;
	struct buf	 sub;
	int		 rc;

	while (p < len) {
		if (isspace((unsigned char)s[p])) {
			if (s[p++] == '\n')
				line++;
			continue;
		}
		if (s[p] == '#') {
			while (p < len && !is_marker(s[p]))
				p++;
			if (p == len)
				break;
			line++;
			p++;
			continue;
		}
		ns = p;
		while (p < len && !isspace((unsigned char)s[p]) && s[p] != '=')
			p++;
		if (p == len) {
			ne = len;
			goto incomplete;
		}
		ne = p++;
		while (p < len && ((isspace((unsigned char)s[p]) &&
		    !is_marker(s[p])) || s[p] == '='))
			p++;
		es = p;
		while (p < len && !is_marker(s[p]))
			p++;
		if (p == len)
			goto incomplete;
		name = strndup(s + ns, ne - ns);
		expr = strndup(s + es, p - es);
		/* its text ends in an error answer, capped like one */
		buf_init(&sub, a->a_ds->cfg.max_answer);
		rc = name && expr ? derive_one(a, name, expr, &sub) : -1;
		if (rc == -1)
			buf_printf(err, "failed to create derived metric \"%s\" "
			    "on line %u from: %s\n%s", name ? name : "", line,
			    expr ? expr : "", buf_cstr(&sub));
		buf_free(&sub);
		free(name);
		free(expr);
		if (rc == -1)
			return -1;
		line++;
		p++;
	}
	return 0;
incomplete:
	name = strndup(s + ns, ne - ns);
	buf_printf(err, "failed to parse derived metric \"%s\" on line %u - "
	    "incomplete expression\n", name ? name : "", line);
	free(name);
	return -1;
}

static int
derive_too_big(struct api *a)
{
	char	 msg[160];

	snprintf(msg, sizeof(msg), "Derived metrics of this context would "
	    "hold more than %zu bytes (bpftraced limit, see "
	    "--max-derived-bytes)", a->a_ds->cfg.max_derived_bytes);
	return api_error_text(a, 400, 1, PM_ERR_BADDERIVE, msg);
}

/*
 * GET name= and expr=: one metric. expr= alone, or a POST body when there
 * is no expr= (pmproxy adds the body as expr unless one is there): the
 * configuration form. A POST body with name= is that metric's expression.
 */
int
api_run_derive(struct api *a)
{
	const char	*name = api_param(a, "name");
	const char	*expr = api_param(a, "expr");
	struct httpreq	*hr = a->a_hr;
	struct buf	 err;
	char		*body = NULL;
	int		 rc;

	/* pmwebd had no derived metrics: "_derive" is a bad request there */
	if (API_PMWEBD(a))
		return api_error_inval(a, 400, 1, "derived metrics are not "
		    "served in the pmwebd dialect");
	if (expr == NULL && strcmp(hr->hr_method, "POST") == 0 &&
	    hr->hr_body && hr->hr_bodylen > 0) {
		if ((body = strndup(hr->hr_body, hr->hr_bodylen)) == NULL)
			return api_error(a, 503, 1, -ENOMEM,
			    "out of memory");
		expr = body;
	}
	if (expr == NULL) {
		free(body);
		return api_error_inval(a, 400, 1, "invalid derive parameters");
	}
	/* more text than a context may hold: refused before any parsing */
	if ((body ? hr->hr_bodylen : strlen(expr)) >
	    a->a_ds->cfg.max_derived_bytes) {
		free(body);
		return derive_too_big(a);
	}
	/* the error answer's text, capped like the answer */
	buf_init(&err, a->a_ds->cfg.max_answer);
	if (name)
		rc = derive_one(a, name, expr, &err);
	else
		rc = derive_config(a, expr, body ? hr->hr_bodylen :
		    strlen(expr), &err);
	free(body);
	rc = rc == 0 ? api_send_success(a) : api_error_text(a, a->a_status ?
	    a->a_status : 400, 1, PM_ERR_BADDERIVE, buf_cstr(&err));
	buf_free(&err);
	return rc;
}
