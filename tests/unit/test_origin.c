/* SPDX-License-Identifier: MIT */
/*
 * test_origin.c - the request-origin policy (src/lib/origin.c) as a table of
 * header combinations: what a browser sends for a drive-by from another
 * origin (img, form POST, fetch no-cors; cross-site and same-site), for
 * DNS rebinding, for the built-in page (same-origin), for Grafana in
 * server mode (its proxy drops Origin and Referer, keeps Sec-Fetch-*,
 * sets Host) and browser mode (Origin allowed by --allow-origin), and
 * for clients that are not browsers.
 */
#include "testhelp.h"
#include "origin.h"

static char *origins[] = { "http://grafana.example:3000" };
static char *hosts[] = { "bpftraced", "lb.example.com" };
static const struct origin_policy POLICY = {
	origins, 1, hosts, 2, "myhost"
};
static const struct origin_policy EMPTY = { NULL, 0, NULL, 0, "myhost" };

#define OK	(-1)	/* no refusal */
#define H	"127.0.0.1:44322"

struct row {
	const char	*what;
	const char	*method, *path, *host, *origin, *site, *mode, *referer;
	int		 tls;
	int		 want;	/* OK or an enum origin_refusal */
	const char	*ua;	/* User-Agent; NULL when not given */
};

#define MOZ	"Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156"

static const struct row rows[] = {
	/* not browsers: curl, pmproxy-style scripts, HTTP/1.0 */
	{ "curl store", "GET", "/pmapi/store", H, NULL, NULL, NULL, NULL, 0,
	    OK, NULL },
	{ "curl PUT store", "PUT", "/pmapi/store", H, NULL, NULL, NULL, NULL,
	    0, OK, NULL },
	{ "HTTP/1.0 without Host", "GET", "/pmapi/store", NULL, NULL, NULL,
	    NULL, NULL, 0, OK, NULL },
	/* drive-by: <img src=store>, cross-site and same-site */
	{ "img cross-site", "GET", "/pmapi/store", H, NULL, "cross-site",
	    "no-cors", "http://evil.example/", 0, REFUSE_CROSS_SITE, NULL },
	{ "img same-site (other port)", "GET", "/pmapi/store", H, NULL,
	    "same-site", "no-cors", "http://127.0.0.1:8080/", 0,
	    REFUSE_SAME_SITE, NULL },
	{ "form POST cross-site", "POST", "/pmapi/store", H,
	    "http://localhost:8080", "cross-site", "navigate", NULL, 0,
	    REFUSE_CROSS_SITE, NULL },
	{ "fetch no-cors pmwebd _store", "POST", "/pmapi/1/_store", H,
	    "http://127.0.0.1:8080", "same-site", "no-cors", NULL, 0,
	    REFUSE_SAME_SITE, NULL },
	{ "derive cross-site", "GET", "/pmapi/derive", H, NULL, "cross-site",
	    "no-cors", NULL, 0, REFUSE_CROSS_SITE, NULL },
	{ "profile cross-site", "GET", "/pmapi/7/profile", H, NULL,
	    "cross-site", "no-cors", NULL, 0, REFUSE_CROSS_SITE, NULL },
	{ "unknown Sec-Fetch-Site value", "GET", "/pmapi/store", H, NULL,
	    "bogus", NULL, NULL, 0, REFUSE_CROSS_SITE, NULL },
	{ "none but not a navigation", "GET", "/pmapi/store", H, NULL,
	    "none", "no-cors", NULL, 0, REFUSE_CROSS_SITE, NULL },
	/* browsers without Fetch Metadata: Origin, then Referer */
	{ "old browser POST, foreign Origin", "POST", "/pmapi/store", H,
	    "http://evil.example", NULL, NULL, NULL, 0, REFUSE_ORIGIN, NULL },
	{ "Origin null (sandboxed page)", "POST", "/pmapi/store", H, "null",
	    NULL, NULL, NULL, 0, REFUSE_ORIGIN, NULL },
	{ "old browser img, foreign Referer", "GET", "/pmapi/store", H, NULL,
	    NULL, NULL, "http://evil.example/x.html", 0, REFUSE_REFERER, NULL },
	{ "Referer of this very server", "GET", "/pmapi/store", H, NULL,
	    NULL, NULL, "http://127.0.0.1:44322/ui/", 0, OK, NULL },
	{ "old browser, own Origin", "POST", "/pmapi/store", H,
	    "http://127.0.0.1:44322", NULL, NULL, NULL, 0, OK, NULL },
	{ "own Origin over http to an https server", "POST", "/pmapi/store",
	    H, "http://127.0.0.1:44322", NULL, NULL, NULL, 1, REFUSE_ORIGIN, NULL },
	{ "own Origin over https", "POST", "/pmapi/store", H,
	    "https://127.0.0.1:44322", NULL, NULL, NULL, 1, OK, NULL },
	/* plain http to a LAN address: no Fetch Metadata, no Referer */
	{ "img no-referrer to http://LAN", "GET", "/pmapi/store",
	    "192.168.1.5:44322", NULL, NULL, NULL, NULL, 0, REFUSE_NO_ORIGIN,
	    MOZ },
	{ "curl with a User-Agent", "GET", "/pmapi/store", H, NULL, NULL,
	    NULL, NULL, 0, OK, "curl/7.88.1" },
	{ "Grafana proxy without Sec-Fetch-*", "GET", "/pmapi/store", H, NULL,
	    NULL, NULL, NULL, 0, OK, "Grafana/10.4.1" },
	{ "browser read without any origin", "GET", "/pmapi/fetch", H, NULL,
	    NULL, NULL, NULL, 0, OK, MOZ },
	/* the built-in page: same-origin */
	{ "built-in page store", "POST", "/pmapi/store", H,
	    "http://127.0.0.1:44322", "same-origin", "cors", NULL, 0, OK, NULL },
	{ "address bar navigation", "GET", "/pmapi/store", H, NULL, "none",
	    "navigate", NULL, 0, OK, NULL },
	/* Grafana server mode: Host = data source URL, Origin dropped */
	{ "Grafana proxy", "GET", "/pmapi/store", "bpftraced:44322", NULL,
	    "same-origin", "cors", NULL, 0, OK, NULL },
	/* Grafana browser mode, allowed and not */
	{ "Grafana browser mode allowed", "GET", "/pmapi/store", H,
	    "http://grafana.example:3000", "cross-site", "cors", NULL, 0, OK, NULL },
	{ "allowed origin, case differs", "POST", "/pmapi/store", H,
	    "HTTP://Grafana.Example:3000", "cross-site", "cors", NULL, 0, OK, NULL },
	{ "allowed host, other port", "POST", "/pmapi/store", H,
	    "http://grafana.example:3001", "cross-site", "cors", NULL, 0,
	    REFUSE_CROSS_SITE, NULL },
	{ "allowed origin as a prefix", "POST", "/pmapi/store", H,
	    "http://grafana.example:30001", NULL, NULL, NULL, 0,
	    REFUSE_ORIGIN, NULL },
	/* reads stay open to every origin (CORS *) */
	{ "cross-site fetch of values", "GET", "/pmapi/fetch", H, NULL,
	    "cross-site", "cors", NULL, 0, OK, NULL },
	{ "cross-site context", "GET", "/pmapi/context", H,
	    "http://evil.example", "cross-site", "cors", NULL, 0, OK, NULL },
	{ "cross-site POST to fetch", "POST", "/pmapi/fetch", H,
	    "http://evil.example", "cross-site", "no-cors", NULL, 0, OK, NULL },
	{ "cross-site DELETE on fetch", "DELETE", "/pmapi/fetch", H,
	    "http://evil.example", "cross-site", "cors", NULL, 0,
	    REFUSE_CROSS_SITE, NULL },
	/* preflights */
	{ "preflight for a store", "OPTIONS", "/pmapi/store", H,
	    "http://evil.example", "cross-site", "cors", NULL, 0,
	    REFUSE_PREFLIGHT, NULL },
	{ "preflight for a store, allowed", "OPTIONS", "/pmapi/store", H,
	    "http://grafana.example:3000", "cross-site", "cors", NULL, 0, OK, NULL },
	{ "preflight for a fetch", "OPTIONS", "/pmapi/fetch", H,
	    "http://evil.example", "cross-site", "cors", NULL, 0, OK, NULL },
	{ "OPTIONS without Origin", "OPTIONS", "/pmapi/store", H, NULL, NULL,
	    NULL, NULL, 0, OK, NULL },
	/* Host: DNS rebinding and the names we answer for */
	{ "rebinding name, same-origin", "POST", "/pmapi/store",
	    "rebind.test:44322", "http://rebind.test:44322", "same-origin",
	    "cors", NULL, 0, REFUSE_HOST, NULL },
	{ "rebinding name, a read", "GET", "/pmapi/fetch", "rebind.test",
	    NULL, "same-origin", "cors", NULL, 0, REFUSE_HOST, NULL },
	{ "localhost", "GET", "/pmapi/store", "localhost:44322", NULL, NULL,
	    NULL, NULL, 0, OK, NULL },
	{ "LOCALHOST.", "GET", "/pmapi/fetch", "LOCALHOST.", NULL, NULL, NULL,
	    NULL, 0, OK, NULL },
	{ "own host name", "GET", "/pmapi/fetch", "MyHost:44322", NULL, NULL,
	    NULL, NULL, 0, OK, NULL },
	{ "--allow-host name", "GET", "/pmapi/fetch", "lb.example.com", NULL,
	    NULL, NULL, NULL, 0, OK, NULL },
	{ "subdomain of an allowed host", "GET", "/pmapi/fetch",
	    "x.lb.example.com", NULL, NULL, NULL, NULL, 0, REFUSE_HOST, NULL },
	{ "IPv6 literal", "GET", "/pmapi/fetch", "[::1]:44322", NULL, NULL,
	    NULL, NULL, 0, OK, NULL },
	{ "IPv6 without brackets", "GET", "/pmapi/fetch", "::1", NULL, NULL,
	    NULL, NULL, 0, REFUSE_HOST, NULL },
	{ "port not a number", "GET", "/pmapi/fetch", "127.0.0.1:x", NULL,
	    NULL, NULL, NULL, 0, REFUSE_HOST, NULL },
	{ "empty Host", "GET", "/pmapi/fetch", "", NULL, NULL, NULL, NULL, 0,
	    REFUSE_HOST, NULL },
	{ "localhost as a prefix", "GET", "/pmapi/fetch", "localhost.evil",
	    NULL, NULL, NULL, NULL, 0, REFUSE_HOST, NULL },
};

static void
table_decides_each_combination(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row	*r = &rows[i];
		struct origin_req	 q = {
			r->method, r->path, r->host, r->origin, r->site,
			r->mode, r->referer, r->ua, r->tls
		};
		enum origin_refusal	 why = REFUSE_COUNT;
		int			 got;

		got = origin_check(&POLICY, &q, &why) == 0 ? OK : (int)why;
		if (got != r->want)
			fail_msg("%s: expected %s, got %s", r->what,
			    r->want == OK ? "allowed" :
			    origin_refusal_name(r->want), got == OK ?
			    "allowed" : origin_refusal_name(got));
	}
}

static void
no_allowed_origin_by_default(void **state)
{
	struct origin_req	 q = { "GET", "/pmapi/store", H,
				    "http://grafana.example:3000",
				    "cross-site", "cors", NULL, NULL, 0 };
	enum origin_refusal	 why;

	assert_int_equal(origin_check(&EMPTY, &q, &why), -1);
	assert_int_equal(why, REFUSE_CROSS_SITE);
	assert_false(origin_allowed(&EMPTY, "http://grafana.example:3000"));
	assert_false(origin_allowed(&POLICY, NULL));
	assert_false(origin_allowed(&POLICY, "*"));
	assert_false(origin_host_ok(&EMPTY, "bpftraced"));
}

static void
changes_state_covers_every_spelling(void **state)
{
	assert_true(origin_changes_state("GET", "/pmapi/store"));
	assert_true(origin_changes_state("GET", "/pmapi/storex"));
	assert_true(origin_changes_state("GET", "/pmapi/12/store"));
	assert_true(origin_changes_state("GET", "/pmapi/12/_store"));
	assert_true(origin_changes_state("GET", "/pmapi/_profile"));
	assert_true(origin_changes_state("GET", "/pmapi/x/_derive"));
	assert_true(origin_changes_state("GET", "/pmapi/store/extra"));
	assert_true(origin_changes_state("PUT", "/pmapi/fetch"));
	assert_true(origin_changes_state("DELETE", "/"));
	assert_false(origin_changes_state("GET", "/pmapi/fetch"));
	assert_false(origin_changes_state("POST", "/pmapi/context"));
	assert_false(origin_changes_state("HEAD", "/pmapi/_fetch"));
	assert_false(origin_changes_state("GET", "/ui/app.js"));
	assert_false(origin_changes_state("GET", "/metrics"));
}

static void
allow_origin_spec_is_exact(void **state)
{
	char	 err[512];

	assert_int_equal(origin_valid_spec("http://grafana:3000", err,
	    sizeof(err)), 0);
	assert_int_equal(origin_valid_spec("https://g.example", err,
	    sizeof(err)), 0);
	assert_int_equal(origin_valid_spec("http://[::1]:3000", err,
	    sizeof(err)), 0);
	assert_int_equal(origin_valid_spec("http://g.example/", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "--allow-origin"));
	assert_int_equal(origin_valid_spec("*", err, sizeof(err)), -1);
	assert_int_equal(origin_valid_spec("null", err, sizeof(err)), -1);
	assert_int_equal(origin_valid_spec("g.example:3000", err,
	    sizeof(err)), -1);
	assert_int_equal(origin_valid_spec("http://g.example:30x", err,
	    sizeof(err)), -1);
	assert_int_equal(origin_valid_spec("http://g\r\nX: y", err,
	    sizeof(err)), -1);
	assert_int_equal(origin_valid_spec("http://", err, sizeof(err)), -1);
	assert_true(origin_valid_hostname("bpftraced"));
	assert_true(origin_valid_hostname("lb-1.example.com"));
	assert_false(origin_valid_hostname("lb.example.com:80"));
	assert_false(origin_valid_hostname("a b"));
	assert_false(origin_valid_hostname(""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_decides_each_combination),
		cmocka_unit_test(no_allowed_origin_by_default),
		cmocka_unit_test(changes_state_covers_every_spelling),
		cmocka_unit_test(allow_origin_spec_is_exact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
