/* SPDX-License-Identifier: MIT */
/*
 * origin.c - the request-origin policy (see origin.h). A browser sends
 * whatever a page asks for to any address, with the visitor's network
 * position and cached credentials: a page on another origin must not be
 * able to store, derive or profile here. Browsers say where a request
 * comes from (Sec-Fetch-Site, Origin, Referer) and which name they
 * resolved (Host); clients that are not browsers send none of the first
 * three and are let through, as pmproxy lets them. A browser sends
 * Sec-Fetch-* only to https and loopback URLs, and a page can suppress
 * Referer, so a request to a plain-http address with none of them that
 * carries a browser's User-Agent (every browser's starts "Mozilla/", and
 * a page cannot change it) is refused too. Threads: pure functions of
 * their arguments, called from any HTTP worker.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "origin.h"
#include "util.h"

#define ORIGIN_MAX	512	/* longest "scheme://host:port" compared */

static const char *const refusal_names[REFUSE_COUNT] = {
	"host", "cross-site", "same-site", "origin", "referer", "preflight",
	"no-origin"
};

const char *
origin_refusal_name(enum origin_refusal r)
{
	return r < REFUSE_COUNT ? refusal_names[r] : "unknown";
}

static int
is_digits(const char *s, size_t n)
{
	if (n == 0 || n > 5)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* A DNS name: letters, digits, '-', '_', '.'; no leading '.' or '-'. */
int
origin_valid_hostname(const char *s)
{
	size_t	 n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

/* name (n bytes) equals the NUL-terminated s, ignoring case */
static int
name_eq(const char *name, size_t n, const char *s)
{
	return s != NULL && strlen(s) == n && strncasecmp(name, s, n) == 0;
}

/*
 * The Host header names us: an IP literal, localhost, our host name or
 * an --allow-host name, with any port. No Host at all is an HTTP/1.0
 * client, never a browser. A DNS-rebinding page's requests carry the
 * attacker's name here, whatever address it resolved to.
 */
int
origin_host_ok(const struct origin_policy *p, const char *host)
{
	char		 name[256];
	const char	*colon;
	size_t		 n;
	unsigned char	 addr[16];

	if (host == NULL)
		return 1;
	if (host[0] == '[') {		/* [v6]:port */
		const char	*end = strchr(host, ']');

		if (end == NULL || (end[1] != '\0' && (end[1] != ':' ||
		    !is_digits(end + 2, strlen(end + 2)))))
			return 0;
		n = (size_t)(end - host - 1);
		if (n == 0 || n >= sizeof(name))
			return 0;
		memcpy(name, host + 1, n);
		name[n] = '\0';
		return inet_pton(AF_INET6, name, addr) == 1;
	}
	colon = strchr(host, ':');
	if (colon != NULL && (strchr(colon + 1, ':') != NULL ||
	    !is_digits(colon + 1, strlen(colon + 1))))
		return 0;
	n = colon ? (size_t)(colon - host) : strlen(host);
	if (n > 0 && host[n - 1] == '.')	/* "localhost." is localhost */
		n--;
	if (n == 0 || n >= sizeof(name))
		return 0;
	memcpy(name, host, n);
	name[n] = '\0';
	if (inet_pton(AF_INET, name, addr) == 1 ||
	    name_eq(name, n, "localhost") || name_eq(name, n, p->op_hostname))
		return 1;
	for (int i = 0; i < p->op_nhosts; i++)
		if (name_eq(name, n, p->op_hosts[i]))
			return 1;
	return 0;
}

/* o (n bytes) is exactly one of the --allow-origin entries */
static int
allowed_n(const struct origin_policy *p, const char *o, size_t n)
{
	for (int i = 0; i < p->op_norigins; i++)
		if (name_eq(o, n, p->op_origins[i]))
			return 1;
	return 0;
}

int
origin_allowed(const struct origin_policy *p, const char *origin)
{
	return origin != NULL && allowed_n(p, origin, strlen(origin));
}

/* o (n bytes) is this server's own origin: the scheme we serve + Host */
static int
own_origin_n(const struct origin_req *r, const char *o, size_t n)
{
	char	 own[ORIGIN_MAX];
	int	 len;

	if (r->or_host == NULL)
		return 0;
	len = snprintf(own, sizeof(own), "%s://%s", r->or_tls ? "https" :
	    "http", r->or_host);
	return len > 0 && (size_t)len < sizeof(own) && name_eq(o, n, own);
}

/*
 * Requests that change state: the store, derive and profile commands in
 * either dialect (a path segment starting with one of them, with or
 * without pmwebd's "_", as the command table matches by prefix), and any
 * method but GET, HEAD, POST and OPTIONS.
 */
int
origin_changes_state(const char *method, const char *path)
{
	static const char *const cmds[] = { "store", "derive", "profile" };
	const char	*seg;

	if (method && strcmp(method, "GET") != 0 &&
	    strcmp(method, "HEAD") != 0 && strcmp(method, "POST") != 0 &&
	    strcmp(method, "OPTIONS") != 0)
		return 1;
	if (path == NULL || strncmp(path, "/pmapi/", 7) != 0)
		return 0;
	for (seg = path + 7; seg != NULL && *seg; ) {
		if (*seg == '_')
			seg++;
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strncmp(seg, cmds[i], strlen(cmds[i])) == 0)
				return 1;
		if ((seg = strchr(seg, '/')) != NULL)
			seg++;
	}
	return 0;
}

/* the "scheme://authority" part of a URL: its length, 0 when none */
static size_t
url_origin_len(const char *url)
{
	const char	*s = strstr(url, "://");

	if (s == NULL)
		return 0;
	s += 3;
	return (size_t)(s - url) + strcspn(s, "/?#");
}

/* A browser's request that would change state: may it? */
static int
browser_may_change(const struct origin_policy *p, const struct origin_req *r,
    enum origin_refusal *why)
{
	const char	*site = r->or_fetch_site, *mode = r->or_fetch_mode;
	size_t		 n;

	if (origin_allowed(p, r->or_origin))
		return 0;
	if (site != NULL) {	/* Fetch Metadata: the browser's own word */
		if (strcasecmp(site, "same-origin") == 0)
			return 0;
		/* typed into the address bar, a bookmark: no page asked */
		if (strcasecmp(site, "none") == 0 && (mode == NULL ||
		    strcasecmp(mode, "navigate") == 0))
			return 0;
		*why = strcasecmp(site, "same-site") == 0 ? REFUSE_SAME_SITE :
		    REFUSE_CROSS_SITE;
		return -1;
	}
	if (r->or_origin != NULL) {	/* older browsers: compare Origin */
		if (own_origin_n(r, r->or_origin, strlen(r->or_origin)))
			return 0;
		*why = REFUSE_ORIGIN;	/* "null" (sandboxed, file:) too */
		return -1;
	}
	if (r->or_referer != NULL) {
		n = url_origin_len(r->or_referer);
		if (n > 0 && (own_origin_n(r, r->or_referer, n) ||
		    allowed_n(p, r->or_referer, n)))
			return 0;
		*why = REFUSE_REFERER;
		return -1;
	}
	/* an <img referrerpolicy=no-referrer> to http://LAN-ADDRESS/ */
	if (r->or_user_agent != NULL &&
	    strncmp(r->or_user_agent, "Mozilla/", 8) == 0) {
		*why = REFUSE_NO_ORIGIN;
		return -1;
	}
	return 0;		/* not a browser: curl, scripts, Grafana proxy */
}

/*
 * The one decision for every request: 0 to serve it, -1 (with *why) to
 * refuse it. A CORS preflight (OPTIONS with an Origin) for a request that
 * would change state is refused unless its Origin is allowed; the
 * preflight's answer for the rest never names a foreign Origin
 * (http_reply_options), so credentials stay with allowed origins.
 */
int
origin_check(const struct origin_policy *p, const struct origin_req *r,
    enum origin_refusal *why)
{
	if (!origin_host_ok(p, r->or_host)) {
		*why = REFUSE_HOST;
		return -1;
	}
	if (r->or_method && strcmp(r->or_method, "OPTIONS") == 0) {
		if (r->or_origin != NULL && origin_changes_state(NULL,
		    r->or_path) && !origin_allowed(p, r->or_origin)) {
			*why = REFUSE_PREFLIGHT;
			return -1;
		}
		return 0;
	}
	if (!origin_changes_state(r->or_method, r->or_path))
		return 0;
	return browser_may_change(p, r, why);
}

/* An --allow-origin value: "http[s]://host[:port]", nothing more. */
int
origin_valid_spec(const char *spec, char *err, size_t errlen)
{
	const char	*h, *port;
	char		 host[256];
	size_t		 n;

	if (strncmp(spec, "http://", 7) == 0)
		h = spec + 7;
	else if (strncmp(spec, "https://", 8) == 0)
		h = spec + 8;
	else
		goto bad;
	if (h[0] == '[') {
		const char	*end = strchr(h, ']');
		unsigned char	 a[16];

		if (end == NULL || (n = (size_t)(end - h - 1)) == 0 ||
		    n >= sizeof(host))
			goto bad;
		memcpy(host, h + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, a) != 1)
			goto bad;
		port = end + 1;
	} else {
		n = strcspn(h, ":");
		if (n == 0 || n >= sizeof(host))
			goto bad;
		memcpy(host, h, n);
		host[n] = '\0';
		if (!origin_valid_hostname(host))
			goto bad;
		port = h + n;
	}
	if (*port == '\0' || (port[0] == ':' && is_digits(port + 1,
	    strlen(port + 1))))
		return 0;
bad:
	seterr(err, errlen, "--allow-origin %s: expected scheme://host[:port] "
	    "as a browser sends it in Origin (e.g. http://grafana.example:3000,"
	    " no path, no trailing slash)", spec);
	return -1;
}
