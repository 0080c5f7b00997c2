#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_origin.py - the request-origin policy over HTTP, no browser (TAP).

Replays the header sets real clients send and asserts what bpftraced does
with each (status, CORS headers, bpftrace.daemon.refused, what got
registered), with --control=loopback and tests/lib/fake-bpftrace:

  * Grafana in server (proxy) access mode: the request its data source
    proxy makes (Grafana pkg/api/pluginproxy/ds_proxy.go director and
    pkg/util/proxyutil PrepareProxyRequest: Host set to the data source
    URL's host; Origin, Referer, Cookie and X-Forwarded-Host/-Port/-Proto
    removed; User-Agent Grafana/<version>, X-Grafana-Referer and
    X-Forwarded-For set; the browser's other headers, Sec-Fetch-* and
    X-Grafana-* among them, passed on) registers a script, by IP address
    and by an --allow-host name; another name gets 421;
  * Grafana in browser access mode (Origin http://grafana.example:3000,
    Sec-Fetch-Site cross-site): registers when --allow-origin names it,
    is refused (403, naming --allow-origin) when not; its preflight may
    send X-Grafana-Device-ID;
  * every method that stores (GET, HEAD, PUT, DELETE, POST) from a
    cross-site page is refused and counted, and still works for curl;
  * TRACE is 405 with Allow and echoes nothing; preflights and answers
    never name a foreign Origin, with or without control bytes;
  * Host: IP literals, localhost, this machine's name and --allow-host
    names are served, a rebinding name is 421 even for a read.
"""

import http.client
import json
import os
import socket
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())

REASONS = ["host", "cross-site", "same-site", "origin", "referer",
           "preflight", "no-origin"]
GRAFANA = "http://grafana.example:3000"
DS_NAME = "bpftraced-ds.example"        # a data source URL's host name
CHROME_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, "
             "like Gecko) Chrome/124.0.0.0 Safari/537.36")


def code(name):
    return ("// name: %s\n// fixture: hist_global\n// fake: hold\n"
            "tracepoint:a:b { @h = hist(1); }\n" % name)


def req(d, method, target, headers=None, body=None, host=None):
    """(status, headers, body); host replaces the Host header."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        c.putrequest(method, target, skip_host=True,
                     skip_accept_encoding=True)
        c.putheader("Host", host or "127.0.0.1:%d" % d.port)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def store_target(name, value, ctx=None):
    q = {"name": name, "value": value}
    if ctx is not None:
        q["context"] = ctx
    return "/pmapi/store?" + urllib.parse.urlencode(q)


def refused(d):
    """bpftrace.daemon.refused per reason (0 for each when absent)."""
    v = d.fetch_values("bpftrace.daemon.refused").get(
        "bpftrace.daemon.refused", {})
    return {r: v.get(i, 0) for i, r in enumerate(REASONS)}


def scripts(d):
    v = d.fetch_values("bpftrace.info.scripts_total")
    return v["bpftrace.info.scripts_total"][None]


def message(body):
    try:
        return json.loads(body)["message"]
    except (ValueError, KeyError):
        return ""


def grafana_proxy_headers(host_port):
    """What Grafana's data source proxy sends for a browser's request to
    /api/datasources/proxy/uid/<uid>/pmapi/...: the browser's headers
    minus Origin/Referer/Cookie/X-Forwarded-*, plus Grafana's own."""
    return {
        "Accept": "application/json, text/plain, */*",
        "Accept-Language": "en-US,en;q=0.9",
        "Content-Type": "application/json",
        "Sec-Ch-Ua": '"Chromium";v="124", "Not-A.Brand";v="99"',
        "Sec-Ch-Ua-Mobile": "?0",
        "Sec-Ch-Ua-Platform": '"Linux"',
        "Sec-Fetch-Dest": "empty",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "same-origin",     # the browser talked to Grafana
        "X-Dashboard-Uid": "bpftrace-flame",
        "X-Datasource-Uid": "P3E5B8C2A1D4F6E7",
        "X-Grafana-Device-Id": "9c3f1e0d2b7a4c58a6e1f0b3d2c4e5f6",
        "X-Grafana-Org-Id": "1",
        "X-Panel-Id": "2",
        "X-Plugin-Id": "performancecopilot-bpftrace-datasource",
        "X-Grafana-Referer": "http://grafana.example:3000/d/bpftrace-flame",
        "X-Forwarded-For": "192.0.2.10",
        "User-Agent": "Grafana/10.4.1",
    }


def test_grafana_server_mode(d):
    before = scripts(d)
    h = grafana_proxy_headers(d.port)
    st, _, body = req(d, "GET", store_target("bpftrace.control.register",
                                             code("gproxy1")), h)
    tap.check(st == 200 and scripts(d) == before + 1,
              "Grafana server mode (proxy header set, Host = data source "
              "IP) registers a script", lambda: "%s %r" % (st, body[:300]))
    st, _, body = req(d, "GET", store_target("bpftrace.control.register",
                                             code("gproxy2")), h,
                      host="%s:%d" % (DS_NAME, d.port))
    tap.check(st == 200 and scripts(d) == before + 2,
              "Grafana server mode with the data source named by an "
              "--allow-host name registers", lambda: "%s %r" % (st, body))
    r0 = refused(d)
    st, _, body = req(d, "GET", store_target("bpftrace.control.register",
                                             code("gproxy3")), h,
                      host="other-name.example:%d" % d.port)
    tap.check(st == 421 and "--allow-host" in message(body) and
              refused(d)["host"] == r0["host"] + 1 and
              scripts(d) == before + 2,
              "a data source URL with a name bpftraced was not given: 421 "
              "naming --allow-host, counted", lambda: "%s %r" % (st, body))


def browser_mode_headers(origin):
    return {"Origin": origin, "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty",
            "Referer": origin + "/d/x", "User-Agent": CHROME_UA,
            "X-Grafana-Device-Id": "9c3f1e0d2b7a4c58",
            "X-Grafana-Org-Id": "1", "Accept": "application/json"}


def test_grafana_browser_mode(d, d_plain):
    st, h, _ = req(d, "OPTIONS", store_target("bpftrace.control.register",
                                              "x"),
                   {"Origin": GRAFANA, "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers":
                    "x-grafana-device-id,x-grafana-org-id"})
    tap.check(st == 200 and h.get("access-control-allow-origin") == GRAFANA
              and "X-Grafana-Device-ID" in
              h.get("access-control-allow-headers", ""),
              "browser mode: the preflight from the allowed origin is "
              "answered, X-Grafana-Device-ID allowed", repr(h))
    before = scripts(d)
    st, h, body = req(d, "GET", store_target("bpftrace.control.register",
                                             code("gbrowser")),
                      browser_mode_headers(GRAFANA))
    tap.check(st == 200 and scripts(d) == before + 1 and
              h.get("access-control-allow-origin") == "*",
              "browser mode from an --allow-origin origin registers (the "
              "answer readable: Allow-Origin *)",
              lambda: "%s %r %r" % (st, h, body))
    r0 = refused(d_plain)
    st, h, body = req(d_plain, "GET", store_target(
        "bpftrace.control.register", code("gbrowser")),
        browser_mode_headers(GRAFANA))
    tap.check(st == 403 and "--allow-origin" in message(body) and
              scripts(d_plain) == 0 and
              refused(d_plain)["cross-site"] == r0["cross-site"] + 1,
              "browser mode without --allow-origin: 403 naming the flag, "
              "nothing registered", lambda: "%s %r" % (st, body))


def test_store_methods(d):
    page = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
            "User-Agent": CHROME_UA, "Origin": "http://evil.example"}
    before = scripts(d)
    for method in ("GET", "HEAD", "PUT", "DELETE", "POST"):
        r0 = refused(d)
        body = None
        target = store_target("bpftrace.control.register", code("m"))
        hdrs = dict(page)
        if method == "POST":
            target = "/pmapi/store"
            body = urllib.parse.urlencode({"name":
                                           "bpftrace.control.register",
                                           "value": code("m")})
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        st, _, data = req(d, method, target, hdrs, body)
        r1 = refused(d)
        tap.check(st == 403 and r1["cross-site"] == r0["cross-site"] + 1 and
                  scripts(d) == before,
                  "%s store from a cross-site page: 403, counted, nothing "
                  "registered" % method, lambda: "%s %r" % (st, data))
    for i, method in enumerate(("GET", "PUT")):
        st, _, data = req(d, method, store_target(
            "bpftrace.control.register", code("curl%d" % i)),
            {"User-Agent": "curl/7.88.1"})
        tap.check(st == 200 and scripts(d) == before + i + 1,
                  "%s store from curl (no browser headers) still works"
                  % method, lambda: "%s %r" % (st, data))
    # derive and profile are state too; pmwebd's _store as well
    ctx = d.get_json("/pmapi/context")[1]["context"]
    for target, what in (
            ("/pmapi/%d/derive?name=x.y&expr=1" % ctx, "derive"),
            ("/pmapi/%d/profile?expr=add&indom=151.1&iname=fetch" % ctx,
             "profile"),
            ("/pmapi/%d/_store?name=bpftrace.control.register&value=x"
             % ctx, "pmwebd _store")):
        r0 = refused(d)
        st, _, data = req(d, "GET", target, page)
        tap.check(st == 403 and refused(d)["cross-site"] ==
                  r0["cross-site"] + 1,
                  "%s from a cross-site page: 403" % what,
                  lambda: "%s %r" % (st, data))
    st, _, data = req(d, "GET", "/pmapi/%d/derive?name=x.y&expr=1" % ctx)
    tap.check(st == 200, "derive without browser headers still works",
              lambda: "%s %r" % (st, data))
    # reads stay open to every origin
    st, h, _ = req(d, "GET", "/pmapi/fetch?names=bpftrace.daemon.pid", page)
    tap.check(st == 200 and h.get("access-control-allow-origin") == "*",
              "a cross-site read is served with Allow-Origin *", repr(h))
    # the built-in page's own store: same-origin
    st, _, data = req(d, "POST", "/pmapi/store", {
        "Origin": "http://127.0.0.1:%d" % d.port,
        "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors",
        "User-Agent": CHROME_UA,
        "Content-Type": "application/x-www-form-urlencoded"},
        urllib.parse.urlencode({"name": "bpftrace.control.register",
                                "value": code("page")}))
    tap.check(st == 200, "a same-origin page (the built-in one) stores",
              lambda: "%s %r" % (st, data))
    # no Fetch Metadata (plain http to a name): the browser is still told
    r0 = refused(d)
    st, _, data = req(d, "GET", store_target("bpftrace.control.register",
                                             code("x")),
                      {"User-Agent": CHROME_UA, "Accept": "image/*"})
    tap.check(st == 403 and refused(d)["no-origin"] ==
              r0["no-origin"] + 1,
              "a browser's store that says nothing of its origin (old "
              "browser, <img referrerpolicy=no-referrer>): 403",
              lambda: "%s %r" % (st, data))


def test_cors_and_trace(d):
    cred = "Basic Z3JhZmFuYTpzZWNyZXQ="
    st, h, body = req(d, "TRACE", "/pmapi/context",
                      {"Authorization": cred, "X-Secret": "s3cr3t"})
    tap.check(st == 405 and "TRACE" not in h.get("allow", "x TRACE") and
              "GET" in h.get("allow", "") and b"s3cr3t" not in body and
              cred.encode() not in body and "x-secret" not in h and
              "authorization" not in h,
              "TRACE: 405 with Allow, echoes nothing",
              lambda: "%s %r %r" % (st, h, body))
    for path in ("/pmapi/context", "/pmapi/store?name=a&value=1"):
        st, h, _ = req(d, "OPTIONS", path, {
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        tap.check("evil" not in h.get("access-control-allow-origin", "")
                  and "access-control-allow-credentials" not in h and
                  "TRACE" not in h.get("access-control-allow-methods", ""),
                  "preflight for %s from a foreign origin: the Origin is "
                  "not named, no credentials (%d)" % (path, st), repr(h))
    st, h, _ = req(d, "OPTIONS", "*", {"Origin": "http://evil.example"})
    tap.check(st == 200 and h.get("access-control-allow-origin") == "*" and
              "TRACE" not in h.get("access-control-allow-methods", ""),
              "OPTIONS * names no foreign Origin and no TRACE", repr(h))
    st, h, _ = req(d, "GET", "/pmapi/context",
                   {"Origin": "http://evil.example", "Authorization": cred})
    tap.check(h.get("access-control-allow-origin") == "*" and
              "access-control-allow-credentials" not in h,
              "a credentialed request from a foreign origin gets '*' and "
              "no credentials", repr(h))
    # control bytes in Origin: never copied into an answer
    raw = ("GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Origin: http://evil\x01\x7f.example\r\nAuthorization: %s\r\n"
           "Connection: close\r\n\r\n" % cred).encode("latin-1")
    data = btd.raw("127.0.0.1", d.port, raw)
    tap.check(b"evil" not in data and b"\x01" not in data,
              "an Origin with control bytes is never echoed",
              repr(data[:300]))
    raw = ("OPTIONS /pmapi/store?name=a&value=1 HTTP/1.1\r\n"
           "Host: 127.0.0.1\r\nOrigin: http://g\x01.example\r\n"
           "Access-Control-Request-Method: POST\r\n"
           "Connection: close\r\n\r\n").encode("latin-1")
    data = btd.raw("127.0.0.1", d.port, raw)
    tap.check(b"\x01" not in data and b"g.example" not in data,
              "a preflight with control bytes in Origin echoes nothing",
              repr(data[:300]))


def test_host(d):
    for host, what in (("127.0.0.1:%d" % d.port, "an IPv4 literal"),
                       ("[::1]:%d" % d.port, "an IPv6 literal"),
                       ("localhost:%d" % d.port, "localhost"),
                       ("%s:%d" % (socket.gethostname(), d.port),
                        "this machine's name"),
                       (DS_NAME.upper(), "an --allow-host name (any case, "
                        "no port)")):
        st, _, data = req(d, "GET", "/pmapi/fetch?names=bpftrace.daemon.pid",
                          host=host)
        tap.check(st == 200, "Host %s (%s) is served" % (host, what),
                  lambda: "%s %r" % (st, data[:200]))
    r0 = refused(d)
    for host in ("rebind.test:%d" % d.port, "x.%s" % DS_NAME,
                 "localhost.evil.example", "127.0.0.1.nip.io"):
        st, h, data = req(d, "GET", "/pmapi/fetch?names=bpftrace.daemon.pid",
                          {"Sec-Fetch-Site": "same-origin"}, host=host)
        tap.check(st == 421 and h.get("content-type") == "application/json"
                  and "--allow-host" in message(data) and b"pid" not in data,
                  "Host %s (rebinding): 421 with a JSON message, even for a "
                  "read" % host, lambda: "%s %r" % (st, data[:300]))
    tap.check(refused(d)["host"] == r0["host"] + 4,
              "each 421 is counted in bpftrace.daemon.refused[host]")


def main():
    sh = btd.shared_dir()
    env = {"BT_SHARED": sh} if sh else None
    common = ["--control", "loopback", "--bpftrace", btd.FAKE_BPFTRACE]
    with btd.Daemon(common + ["--allow-origin", GRAFANA,
                              "--allow-host", DS_NAME], env=env) as d, \
            btd.Daemon(common, env=env) as d_plain:
        test_grafana_server_mode(d)
        test_grafana_browser_mode(d, d_plain)
        test_store_methods(d)
        test_cors_and_trace(d)
        test_host(d)
        tap.ok(d.alive() and d_plain.alive(), "daemons alive at the end")
    tap.done()


if __name__ == "__main__":
    main()
