/* SPDX-License-Identifier: MIT */
/*
 * origin.h - who may change state: the request-origin policy that keeps a
 * web page on another origin (or a DNS-rebinding name) from registering
 * scripts through the visitor's browser. Pure functions of the request
 * headers and the configured lists; dependency-free (no other header), so
 * tests/unit/test_origin.c drives them with a table.
 */
#ifndef BT_ORIGIN_H
#define BT_ORIGIN_H

#include <stddef.h>

/* why a request was refused; the instances of bpftrace.daemon.refused */
enum origin_refusal {
	REFUSE_HOST,		/* Host is not a name we answer for (421) */
	REFUSE_CROSS_SITE,	/* Sec-Fetch-Site: cross-site (403) */
	REFUSE_SAME_SITE,	/* Sec-Fetch-Site: same-site, another port */
	REFUSE_ORIGIN,		/* an Origin neither ours nor allowed */
	REFUSE_REFERER,		/* no Origin, a Referer from elsewhere */
	REFUSE_PREFLIGHT,	/* CORS preflight for a store, auth, ... */
	REFUSE_NO_ORIGIN,	/* a browser that tells nothing of its origin */
	REFUSE_COUNT
};

/* the configuration: --allow-origin, --allow-host, our own host name */
struct origin_policy {
	char *const	*op_origins;	/* exact "scheme://host[:port]" */
	int		 op_norigins;
	char *const	*op_hosts;	/* extra names for Host, no port */
	int		 op_nhosts;
	const char	*op_hostname;	/* gethostname() */
};

/* the headers of one request that the policy looks at (NULL: absent) */
struct origin_req {
	const char	*or_method;
	const char	*or_path;	/* decoded, without the query */
	const char	*or_host;
	const char	*or_origin;
	const char	*or_fetch_site;	/* Sec-Fetch-Site */
	const char	*or_fetch_mode;	/* Sec-Fetch-Mode */
	const char	*or_referer;
	const char	*or_user_agent;
	int		 or_tls;	/* served over HTTPS */
};

const char	*origin_refusal_name(enum origin_refusal r);
int		 origin_host_ok(const struct origin_policy *p,
		    const char *host);
int		 origin_allowed(const struct origin_policy *p,
		    const char *origin);
int		 origin_changes_state(const char *method, const char *path);
int		 origin_check(const struct origin_policy *p,
		    const struct origin_req *r, enum origin_refusal *why);
int		 origin_valid_spec(const char *spec, char *err, size_t errlen);
int		 origin_valid_hostname(const char *s);

#endif
