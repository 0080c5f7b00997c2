#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_badrequests.py - bpftraced under bad, malformed and hostile
requests (TAP).

A table of bad HTTP requests, each with the status and (for JSON and
HTML answers) the message it must get; then raw-socket garbage and
half-open connections.  Afterwards the daemon must still be alive, still
answer a fetch with the right values, have counted every error answer in
bpftrace.daemon.errors, leave no sanitizer reports on stderr and exit 0
on SIGTERM.
"""

import json
import os
import random
import shutil
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())

MAX_BODY = 4096
UNKNOWN_SERVLET = "<b>unknown servlet</b>: no handler for URL"
FAILED_URL = "<b>webapi servlet</b>: failed to process URL"
BAD_PCT_Q = "malformed percent-encoding in query parameter"
BAD_PCT_P = "malformed percent-encoding in URL path"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PREFLIGHT_DELETE = {"Origin": "http://a.example",
                    "Access-Control-Request-Method": "DELETE"}

# (description, method, target, headers, body, status, kind, text)
#   kind "json": application/json, valid UTF-8 JSON, "message" contains
#                text, "success" false (for status >= 400)
#   kind "html": text/html, body contains text
#   kind "empty": no body
#   kind "text": text/plain, the body is text exactly (pmwebd's errors)
# {ctx} is a live context; {long:N} a target of exactly N bytes.
TABLE = [
    # unknown servlets and commands
    ("unknown servlet", "GET", "/nosuch", None, None, 400, "html",
     UNKNOWN_SERVLET),
    # "/" is the web page (tests/integration/test_ui.py); "/ui" without the
    # slash is nothing, as in pmproxy
    ("/ui without slash", "GET", "/ui", None, None, 400, "html",
     UNKNOWN_SERVLET),
    ("/pmapi without slash", "GET", "/pmapi", None, None, 400, "html",
     UNKNOWN_SERVLET),
    ("unknown /pmapi command", "GET", "/pmapi/bogus", None, None, 400,
     "html", UNKNOWN_SERVLET),
    ("command in the wrong case", "GET", "/pmapi/Fetch?names=x", None, None,
     400, "html", UNKNOWN_SERVLET),
    ("/pmapi/abc/metrics (not a context number)", "GET",
     "/pmapi/abc/metrics?names=bpftrace.daemon.pid", None, None, 400, "html",
     UNKNOWN_SERVLET),
    ("pmwebd _fetch of no known name", "GET", "/pmapi/_fetch?names=x",
     None, None, 400, "text",
     "PMWEBD error, code -12443: Insufficient elements in list"),
    ("pmwebd unknown _ command", "GET", "/pmapi/_bogus", None, None, 400,
     "text", "PMWEBD error, code -22: Invalid argument"),
    ("non-numeric context in path", "GET", "/pmapi/abc/fetch?names=x", None,
     None, 400, "html", UNKNOWN_SERVLET),
    ("40-digit context in path", "GET", "/pmapi/" + "9" * 40 +
     "/fetch?names=x", None, None, 400, "html", UNKNOWN_SERVLET),
    # percent-encoding
    ("malformed %zz in query", "GET", "/pmapi/fetch?names=%zz", None, None,
     400, "html", BAD_PCT_Q),
    ("lone % at end of query", "GET", "/pmapi/fetch?names=%", None, None,
     400, "html", BAD_PCT_Q),
    ("truncated %4 escape", "GET", "/pmapi/fetch?names=%4", None, None, 400,
     "html", BAD_PCT_Q),
    ("malformed escape in a key", "GET", "/pmapi/fetch?na%mes=x", None, None,
     400, "html", BAD_PCT_Q),
    ("malformed escape in path", "GET", "/pmapi/fe%ZZtch?names=x", None,
     None, 400, "html", BAD_PCT_P),
    ("encoded NUL %00 in query", "GET", "/pmapi/fetch?names=a%00b", None,
     None, 400, "html", BAD_PCT_Q),
    ("encoded NUL %00 in path", "GET", "/pmapi/fetch%00?names=x", None,
     None, 400, "html", BAD_PCT_P),
    # missing mandatory parameters (HTTP layer, HTML)
    ("fetch without names/pmids", "GET", "/pmapi/fetch", None, None, 400,
     "html", FAILED_URL),
    ("fetch with only unrelated params", "GET", "/pmapi/fetch?foo=1", None,
     None, 400, "html", FAILED_URL),
    ("indom without indom/name", "GET", "/pmapi/indom", None, None, 400,
     "html", FAILED_URL),
    ("profile without expr", "GET", "/pmapi/profile?indom=151.1", None, None,
     400, "html", FAILED_URL),
    ("store without value (GET)", "GET",
     "/pmapi/store?name=bpftrace.daemon.pid", None, None, 400, "html",
     FAILED_URL),
    ("store without name/pmid", "GET", "/pmapi/store?value=1", None, None,
     400, "html", FAILED_URL),
    ("derive GET without name/expr", "GET", "/pmapi/derive", None, None, 400,
     "html", FAILED_URL),
    ("OPTIONS on fetch without params", "OPTIONS", "/pmapi/fetch",
     {"Origin": "http://a.example", "Access-Control-Request-Method": "GET"},
     None, 400, "html", FAILED_URL),
    # contexts
    ("non-numeric ?context=", "GET",
     "/pmapi/fetch?context=abc&names=bpftrace.daemon.pid", None, None, 400,
     "json", "invalid context identifier: abc"),
    ("unknown context id", "GET",
     "/pmapi/fetch?context=12345&names=bpftrace.daemon.pid", None, None, 400,
     "json", "unknown context identifier: 12345"),
    ("context id above 2^32-1", "GET",
     "/pmapi/4294967296/fetch?names=bpftrace.daemon.pid", None, None, 400,
     "json", "invalid context identifier: 4294967296"),
    ("negative ?context=", "GET",
     "/pmapi/metric?context=-1&name=bpftrace.daemon.pid", None, None, 400,
     "json", "invalid context identifier: -1"),
    ("polltimeout=abc", "GET", "/pmapi/context?polltimeout=abc", None, None,
     400, "json", "invalid timeout requested in polltime"),
    ("polltimeout=0", "GET", "/pmapi/context?polltimeout=0", None, None, 400,
     "json", "invalid timeout requested in polltime"),
    ("polltimeout=-5", "GET", "/pmapi/context?polltimeout=-5", None, None,
     400, "json", "invalid timeout requested in polltime"),
    ("polltimeout=nan", "GET", "/pmapi/context?polltimeout=nan", None, None,
     400, "json", "invalid timeout requested in polltime"),
    ("polltimeout=1e9 (above one day)", "GET",
     "/pmapi/context?polltimeout=1e9", None, None, 400, "json",
     "invalid timeout requested in polltime"),
    ("remote hostspec", "GET", "/pmapi/context?hostspec=pcp.example.com",
     None, None, 400, "json", "cannot connect to PMCD: pcp.example.com"),
    # metrics, pmids
    ("fetch unknown name=", "GET", "/pmapi/fetch?name=no.such.metric", None,
     None, 400, "json", "bad parameters passed"),
    ("metric unknown name=", "GET", "/pmapi/metric?name=no.such.metric",
     None, None, 400, "json",
     "no.such.metric traversal failed - Unknown metric name"),
    ("metric partial prefix", "GET", "/pmapi/metric?prefix=bpftrace.dae",
     None, None, 400, "json", "bpftrace.dae traversal failed"),
    ("fetch unknown pmid", "GET", "/pmapi/fetch?pmid=1.2.3", None, None, 400,
     "json", "bad parameters passed"),
    ("fetch pmid with two parts", "GET", "/pmapi/fetch?pmid=151.2", None,
     None, 400, "json", "bad parameters passed"),
    ("fetch pmid domain 512", "GET", "/pmapi/fetch?pmid=512.0.0", None, None,
     400, "json", "bad parameters passed"),
    ("fetch pmid=-1", "GET", "/pmapi/fetch?pmid=-1", None, None, 400, "json",
     "bad parameters passed"),
    ("fetch names= empty", "GET", "/pmapi/fetch?names=", None, None, 400,
     "json", "Insufficient elements in list"),
    ("fetch names= with 4098 entries", "GET", "/pmapi/fetch?names=" +
     "," * 4097, None, None, 400, "json",
     "too many metric names (at most 4096, see --max-names)"),
    ("duplicated name= (first one wins)", "GET",
     "/pmapi/fetch?name=no.such.metric&name=bpftrace.daemon.pid", None, None,
     400, "json", "bad parameters passed"),
    ("non-UTF-8 metric name", "GET", "/pmapi/metric?name=%C3%28%FF", None,
     None, 400, "json", "\ufffd(\ufffd traversal failed"),
    ("non-UTF-8 fetch name", "GET", "/pmapi/fetch?name=%FF%FE", None, None,
     400, "json", "bad parameters passed"),
    # indom, children, profile
    ("indom garbage", "GET", "/pmapi/indom?indom=garbage", None, None, 400,
     "json", "failed to lookup indom garbage"),
    ("indom unknown serial", "GET", "/pmapi/indom?indom=151.99", None, None,
     400, "json", "failed to lookup indom 151.99"),
    ("indom of a singular metric", "GET",
     "/pmapi/indom?name=bpftrace.daemon.uptime", None, None, 400, "json",
     "bpftrace.daemon.uptime - metric has null indom"),
    ("indom of an unknown metric", "GET", "/pmapi/indom?name=no.such", None,
     None, 400, "json", "no.such - failed to lookup metric"),
    ("indom bad match=", "GET", "/pmapi/indom?indom=151.1&match=bogus", None,
     None, 400, "json", "bogus - invalid 'match' parameter value"),
    ("indom invalid regex", "GET",
     "/pmapi/indom?indom=151.1&iname=(&match=regex", None, None, 400, "json",
     "( - invalid regular expression"),
    ("indom 300-byte regex", "GET",
     "/pmapi/indom?indom=151.1&iname=" + "a" * 300 + "&match=regex", None,
     None, 400, "json", "invalid regular expression"),
    ("children unknown prefix", "GET", "/pmapi/children?prefix=no.such",
     None, None, 400, "json", "child traversal failed - Unknown metric name"),
    ("profile bad expr", "GET", "/pmapi/{ctx}/profile?expr=bogus&indom=151.1",
     None, None, 400, "json", "bogus - invalid 'expr' parameter value"),
    ("profile unknown instance", "GET",
     "/pmapi/{ctx}/profile?expr=add&indom=151.1&iname=nosuch", None, None,
     400, "json", "add - Unknown or illegal instance identifier"),
    ("profile bad indom", "GET", "/pmapi/{ctx}/profile?expr=add&indom=garbage",
     None, None, 400, "json", "invalid profile parameters"),
    ("profile unknown context", "GET",
     "/pmapi/12345/profile?expr=add&indom=151.1", None, None, 400, "json",
     "unknown context identifier: 12345"),
    # store, derive
    ("store unknown pmid", "GET", "/pmapi/store?pmid=garbage&value=1", None,
     None, 400, "json", "garbage - failed to lookup PMID"),
    ("store unknown metric", "GET", "/pmapi/store?name=no.such&value=1", None,
     None, 400, "json", "no.such - failed to lookup metric"),
    ("store non-numeric value to u32", "GET",
     "/pmapi/store?name=bpftrace.daemon.pid&value=abc", None, None, 400,
     "json", "Unknown or illegal metric type"),
    ("store u32 overflow", "GET",
     "/pmapi/store?name=bpftrace.daemon.pid&value=99999999999", None, None,
     400, "json", "Unknown or illegal metric type"),
    ("store POST body with a NUL byte", "POST",
     "/pmapi/store?name=bpftrace.info.version", None, b"a\x00b", 400, "json",
     "value contains a NUL byte"),
    ("derive syntax error", "GET", "/pmapi/derive?name=a&expr=b%20%2B", None,
     None, 400, "json", "Syntax Error: pmAddDerivedMetric"),
    ("derive name without expr", "GET", "/pmapi/derive?name=a", None,
     None, 400, "json", "invalid derive parameters"),
    ("derive garbage bytes", "GET", "/pmapi/derive?name=a&expr=%01%FF%80",
     None, None, 400, "json", "Illegal character"),
    # sizes and counts
    ("300 query parameters", "GET", "/pmapi/fetch?" + "&".join(
        "p%d=1" % i for i in range(300)), None, None, 400, "html",
     "too many query parameters"),
    ("form body with 300 parameters", "POST",
     "/pmapi/fetch?names=bpftrace.daemon.pid", FORM,
     "&".join("p%d=1" % i for i in range(300)), 400, "html",
     "too many query parameters"),
    ("form body with a bad escape", "POST",
     "/pmapi/fetch?names=bpftrace.daemon.pid", FORM, "names=%zz", 400,
     "html", BAD_PCT_Q),
    # pmproxy answers 414 at 8192 bytes; grafana-pcp sends whole scripts
    # in store?value=, so bpftraced takes --max-url-bytes (32768)
    ("URL of 32769 bytes (one over --max-url-bytes)", "GET", "{long:32769}",
     None, None, 414, "json", "the limit is 32768 (see --max-url-bytes)"),
    ("URL of 60000 bytes", "GET", "{long:60000}", None, None, 414, "json",
     "request URL too long"),
    ("body one byte over --max-request-bytes", "POST",
     "/pmapi/store?name=bpftrace.info.version", None, "x" * (MAX_BODY + 1),
     413, "html", "request body too large"),
    ("1 MB body", "POST", "/pmapi/store?name=bpftrace.info.version", None,
     "x" * (1 << 20), 413, "html", "request body too large"),
    # methods
    ("PATCH", "PATCH", "/pmapi/context", None, None, 405, "html",
     "method not allowed"),
    ("unknown method BREW", "BREW", "/pmapi/context", None, None, 405,
     "html", "method not allowed"),
    ("CONNECT", "CONNECT", "/pmapi/context", None, None, 405, "html",
     "method not allowed"),
    ("preflight asking for DELETE", "OPTIONS", "/pmapi/context",
     PREFLIGHT_DELETE, None, 405, "empty", None),
    # not errors: the boundaries right below the limits
    ("URL of 8192 bytes is served (pmproxy: 414)", "GET", "{long:8192}",
     None, None, 200, "json", None),
    ("URL of exactly --max-url-bytes is served", "GET", "{long:32768}",
     None, None, 200, "json", None),
    ("body of exactly --max-request-bytes is read", "POST",
     "/pmapi/store?name=bpftrace.daemon.pid", None, "x" * MAX_BODY, 400,
     "json", "Unknown or illegal metric type"),
    ("non-UTF-8 names= entry alone: 400 'traversal failed' as pmproxy, "
     "valid JSON", "GET", "/pmapi/metric?names=%FF", None, None, 400, "json",
     "traversal failed - Unknown metric name"),
    ("non-UTF-8 names= entry beside a known name: 200 with a valid-JSON "
     "error element", "GET", "/pmapi/metric?names=%FF,bpftrace.daemon.pid",
     None, None, 200, "json", None),
]


def long_target(n):
    head = "/pmapi/fetch?names=bpftrace.daemon.pid,"
    return head + "a" * (n - len(head))


def check_row(d, ctx, row):
    desc, method, target, headers, body, want_st, kind, text = row
    if target.startswith("{long:"):
        target = long_target(int(target[6:-1]))
    target = target.replace("{ctx}", str(ctx))
    try:
        st, hdrs, data = btd.http(method, d.url(target), headers=headers,
                                  body=body, timeout=10)
    except Exception as e:                  # noqa: BLE001
        tap.ok(False, "%s: %s -> %d" % (desc, method, want_st),
               "exception %r" % e)
        return None
    problems = []
    if st != want_st:
        problems.append("status %s, want %s" % (st, want_st))
    ctype = hdrs.get("content-type", "")
    if kind == "json":
        if ctype != "application/json":
            problems.append("content-type %r" % ctype)
        try:
            obj = json.loads(data.decode("utf-8", "strict"))
        except ValueError as e:
            obj = None
            problems.append("not valid UTF-8 JSON: %s" % e)
        if obj is not None and want_st >= 400:
            if obj.get("success") is not False:
                problems.append("success is not false")
            if text and text not in obj.get("message", ""):
                problems.append("message %r lacks %r"
                                % (obj.get("message"), text))
        elif obj is not None and text:
            if text not in json.dumps(obj):
                problems.append("answer lacks %r" % text)
    elif kind == "html":
        if ctype != "text/html":
            problems.append("content-type %r" % ctype)
        if text and text.encode() not in data:
            problems.append("body lacks %r" % text)
        if b"<i>bpftraced/" not in data:
            problems.append("not bpftraced's error page")
    elif kind == "empty":
        if data:
            problems.append("non-empty body")
    elif kind == "text":
        if ctype != "text/plain":
            problems.append("content-type %r" % ctype)
        if data != text.encode():
            problems.append("body is not %r" % text)
    what = {"json": "JSON", "html": "HTML", "empty": "empty",
            "text": "text"}[kind]
    tap.check(not problems, "%s: %s -> %d %s%s" % (
        desc, method, want_st, what, (" '%s'" % text) if text else ""),
        lambda: "%s\nanswer: %r" % ("; ".join(problems), data[:300]))
    return st, hdrs


# ---------------------------------------------------------------------------
# raw-socket garbage
# ---------------------------------------------------------------------------
def raw_status(data):
    r = btd.parse_response(data)
    return r["status"] if r else None


def test_raw(d):
    host, port = "127.0.0.1", d.port
    many_headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100)
                            for i in range(2000))
    client_hello = bytes.fromhex(
        "16030100a5010000a103035b7e2b") + random.Random(7).randbytes(120)
    client_hello = client_hello.replace(b"\n", b"\x00")
    rows = [
        ("garbage request line", b"GARBAGE\r\n\r\n", (None, 400)),
        ("HTTP/9.9 request", b"GET /pmapi/context HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
         (505,)),
        ("HTTP/0.9-style request line", b"GET /pmapi/context\r\n\r\n",
         (400,)),
        ("2000 request headers (header flood)",
         b"GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many_headers +
         b"\r\n", (431,)),
        ("one 70 KB header", b"GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         b"X-Big: " + b"v" * 70000 + b"\r\n\r\n", (431,)),
        ("100 KB request target", b"GET /pmapi/fetch?names=" +
         b"a" * 100000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", (414, 431)),
        ("Content-Length: abc",
         b"POST /pmapi/store?name=x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         b"Content-Length: abc\r\n\r\n", (400,)),
        ("invalid chunked body",
         b"POST /pmapi/store?name=x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", (400,)),
        ("header line without a colon",
         b"GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\nNo colon here\r\n\r\n",
         (400,)),
        ("NUL byte in the request target",
         b"GET /pmapi/con\x00text HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
         b"\r\n\r\n", (400,)),
        ("TLS ClientHello on the plain-HTTP port (no line end: closed by "
         "--idle-timeout 2)", client_hello, (None, 400)),
        ("4 KB of random bytes", random.Random(1234).randbytes(4096),
         (None, 400)),
    ]
    for desc, data, allowed in rows:
        t0 = time.monotonic()
        try:
            out = btd.raw(host, port, data, timeout=5)
        except OSError as e:
            out = ("<%s>" % e).encode()
        dt = time.monotonic() - t0
        st = raw_status(out)
        tap.check(st in allowed and dt < 4.5 and (st is not None or
                                                  out == b""),
                  "raw %s: %s, connection closed by the server (%.2f s)"
                  % (desc, " or ".join("no answer" if a is None else str(a)
                                       for a in allowed), dt),
                  lambda: "got %r" % out[:300])
    # raw non-UTF-8 bytes in the target: valid JSON back
    out = btd.raw(host, port, b"GET /pmapi/metric?name=\xff\xfe.x HTTP/1.1"
                  b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    r = btd.parse_response(out)
    try:
        msg = json.loads(r["body"].decode("utf-8", "strict"))["message"]
    except Exception:                       # noqa: BLE001
        msg = None
    tap.check(r and r["status"] == 400 and msg ==
              "\ufffd\ufffd.x traversal failed - Unknown metric name",
              "raw non-UTF-8 bytes in the target: 400 with valid UTF-8 JSON "
              "(U+FFFD for the bad bytes)", lambda: repr(out[:300]))
    # a good request pipelined with garbage: the good one is answered
    out = btd.raw(host, port, b"GET /pmapi/fetch?names=bpftrace.daemon.pid "
                  b"HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGARBAGE\x00\x01\r\n\r\n")
    r = btd.parse_response(out)
    try:
        v = json.loads(r["body"])["values"][0]["instances"][0]["value"]
    except Exception:                       # noqa: BLE001
        v = None
    tap.check(r and r["status"] == 200 and v == d.proc.pid,
              "a good request followed by garbage on the same connection "
              "is answered correctly", lambda: repr(out[:300]))


def test_half_open(d):
    host, port = "127.0.0.1", d.port
    socks = []

    def conn():
        s = socket.create_connection((host, port), timeout=5)
        socks.append(s)
        return s

    try:
        for _ in range(4):
            conn()                                      # silent
        for _ in range(4):
            conn().sendall(b"GET /pmapi/fetch?names=bpftrace.dae")
        for _ in range(4):
            conn().sendall(b"POST /pmapi/store?name=bpftrace.info.version "
                           b"HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                           b"\r\n0123456789")           # body never ends
        for _ in range(2):
            s = conn()
            s.sendall(b"GET /pmapi/context HTTP/1.1\r\nHo")
            s.shutdown(socket.SHUT_WR)                  # half-closed
        time.sleep(0.3)
        t0 = time.monotonic()
        try:
            pid = d.fetch_values("bpftrace.daemon.pid")[
                "bpftrace.daemon.pid"][None]
        except Exception as e:                          # noqa: BLE001
            pid = repr(e)
        dt = time.monotonic() - t0
        tap.check(pid == d.proc.pid and dt < 2,
                  "with 14 stalled/half-open connections a fetch is still "
                  "answered correctly (%.3f s)" % dt, repr(pid))
    finally:
        for s in socks:
            s.close()
    # clients that vanish mid-request or before reading the answer
    for k in range(20):
        s = socket.create_connection((host, port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))           # close = RST
        if k % 2:
            s.sendall(b"GET /pmapi/metric?prefix=bpftrace HTTP/1.1\r\n"
                      b"Host: 127.0.0.1\r\n\r\n")
        else:
            s.sendall(b"POST /pmapi/store?name=x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Length: 100000\r\n\r\n" + b"x" * 5000)
        s.close()
    time.sleep(0.3)
    tap.check(d.alive(), "daemon alive after 20 clients reset their "
              "connections mid-request")


def main():
    try:
        d = btd.Daemon(args=["--max-request-bytes", str(MAX_BODY),
                             "--idle-timeout", "2"],
                       env={"JOURNAL_STREAM": None})
    except btd.DaemonError as e:
        tap.ok(False, "bpftraced starts", str(e))
        tap.done()
    try:
        ctx = d.get_json("/pmapi/context?polltimeout=120")[1]["context"]
        base = "/pmapi/%d/fetch?names=" % ctx
        err0 = d.fetch_values("bpftrace.daemon.errors", ctx)[
            "bpftrace.daemon.errors"][None]
        req0 = d.fetch_values("bpftrace.daemon.requests", ctx)[
            "bpftrace.daemon.requests"]
        counted = answered = 0
        for row in TABLE:
            res = check_row(d, ctx, row)
            if res is None:
                continue
            answered += 1
            st, hdrs = res
            # bpftraced's own error answers carry the CORS headers; the
            # 405 preflight answer does not and is not an error answer
            if st >= 400 and "access-control-allow-origin" in hdrs:
                counted += 1
        tap.check(len(TABLE) >= 30, "the table has %d requests (>= 30)"
                  % len(TABLE))
        err1 = d.fetch_values("bpftrace.daemon.errors", ctx)[
            "bpftrace.daemon.errors"][None]
        req1 = d.fetch_values("bpftrace.daemon.requests", ctx)[
            "bpftrace.daemon.requests"]
        tap.check(err1 - err0 == counted,
                  "bpftrace.daemon.errors rose by exactly the %d error "
                  "answers of the table" % counted, "%d -> %d"
                  % (err0, err1))
        total = sum(req1.values()) - sum(req0.values())
        tap.check(total == answered + 2,
                  "bpftrace.daemon.requests counts every answered request "
                  "(%d table rows + 2 counter fetches)" % answered,
                  "counted %d" % total)

        test_raw(d)
        test_half_open(d)

        tap.check(d.alive(), "daemon still running after the table, the "
                  "garbage and the half-open connections")
        st, _, body = btd.http("GET", d.url(base + "bpftrace.daemon.pid,"
                                            "bpftrace.info.daemon_version"))
        try:
            vals = {v["name"]: v["instances"][0]["value"]
                    for v in json.loads(body)["values"]}
        except ValueError:
            vals = {}
        ver = btd.http("GET", d.url("/pmapi/fetch?names=bpftrace.info."
                                    "daemon_version"))[2]
        tap.check(st == 200 and vals.get("bpftrace.daemon.pid") ==
                  d.proc.pid and vals.get("bpftrace.info.daemon_version")
                  and ver and b'"value":"%s"' %
                  vals["bpftrace.info.daemon_version"].encode() in ver,
                  "a fetch on the old context still answers correctly "
                  "(pid, daemon_version)", lambda: repr(body[:300]))
        err2 = d.fetch_values("bpftrace.daemon.errors", ctx)[
            "bpftrace.daemon.errors"][None]
        tap.check(err2 > err1, "bpftrace.daemon.errors kept rising during "
                  "the raw garbage (%d -> %d)" % (err1, err2))
    except Exception:                       # noqa: BLE001
        import traceback
        tap.ok(False, "test script ran to the end without an exception",
               traceback.format_exc())
    finally:
        t0 = time.monotonic()
        rc = d.stop(cleanup=False)
        dt = time.monotonic() - t0
        err = d.stderr_text()
        if not os.environ.get("BTD_KEEP"):
            shutil.rmtree(d._tmp, ignore_errors=True)
    tap.check(rc == 0 and dt < 2, "SIGTERM after all that: exit 0 "
              "(%.2f s)" % dt, lambda: "rc=%s\n%s" % (rc, err[-2000:]))
    bad = [ln for ln in err.splitlines()
           if "Sanitizer" in ln or "runtime error:" in ln]
    tap.check(not bad, "no sanitizer reports on stderr",
              lambda: "\n".join(bad[:20]) + "\n" + err[-3000:])
    tap.done()


if __name__ == "__main__":
    main()
