#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_pmapi.py - behaviour and values of the pmproxy /pmapi endpoints
of a real bpftraced (TAP).

tests/conformance/ compares answer *shapes* with pmproxy; this test
checks what the answers say: context lifetimes, metric metadata, fetched
values (pid, versions, counters that count exactly our requests),
instance filters, per-context profiles, store refusals, CORS, HEAD,
HTTP/1.0, keep-alive and concurrency.
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())

CORS_HEADERS = "Accept, Accept-Language, Content-Language, Content-Type"
METRIC_KEYS = ["name", "series", "pmid", "indom", "type", "sem", "units",
               "labels", "text-oneline", "text-help"]
# README.md "Metrics it always has"
PMIDS = {
    "bpftrace.control.register": "151.0.0",
    "bpftrace.control.deregister": "151.0.1",
    "bpftrace.control.start": "151.0.2",
    "bpftrace.control.stop": "151.0.3",
    "bpftrace.info.scripts": "151.1.0",
    "bpftrace.info.scripts_json": "151.1.1",
    "bpftrace.info.tracepoints": "151.1.2",
    "bpftrace.info.daemon_version": "151.1.3",
    "bpftrace.info.version": "151.1.4",
    "bpftrace.info.bpftrace_path": "151.1.5",
    "bpftrace.info.scripts_total": "151.1.6",
    "bpftrace.info.scripts_running": "151.1.7",
    "bpftrace.daemon.uptime": "151.2.0",
    "bpftrace.daemon.requests": "151.2.1",
    "bpftrace.daemon.errors": "151.2.2",
    "bpftrace.daemon.contexts": "151.2.3",
    "bpftrace.daemon.bytes_out": "151.2.4",
    "bpftrace.daemon.rss": "151.2.5",
    "bpftrace.daemon.pid": "151.2.6",
    "bpftrace.daemon.contexts_evicted": "151.2.12",
    "bpftrace.daemon.refused": "151.2.7",
    "bpftrace.daemon.memory_held": "151.2.13",
    "bpftrace.daemon.memory_refused": "151.2.14",
}
ENDPOINTS = ["context", "metric", "fetch", "indom", "children", "profile",
             "store", "derive", "other"]
REQ = "bpftrace.daemon.requests"


def pmid_num(d, c, i):
    return (d << 22) | (c << 10) | i


class Api:
    """JSON requests against one daemon."""

    def __init__(self, d):
        self.d = d

    def req(self, path, method="GET", **kw):
        """(status, headers, parsed JSON or None, raw body)"""
        st, hdrs, body = btd.http(method, self.d.url(path), **kw)
        try:
            obj = json.loads(body.decode("utf-8"))
        except ValueError:
            obj = None
        return st, hdrs, obj, body

    def json(self, path, **kw):
        return self.req(path, **kw)[2]

    def context(self, polltimeout=60):
        obj = self.json("/pmapi/context?polltimeout=%s" % polltimeout)
        return obj["context"]

    def values(self, names, ctx):
        """{name: {instance: value}} via /pmapi/<ctx>/fetch"""
        st, _, obj, body = self.req("/pmapi/%d/fetch?names=%s" % (ctx, names))
        if st != 200 or obj is None:
            raise btd.DaemonError("fetch %s: %s %r" % (names, st, body))
        return {v["name"]: {i["instance"]: i["value"]
                            for i in v["instances"]}
                for v in obj["values"]}

    def one(self, name, ctx):
        return self.values(name, ctx)[name][None]

    def requests(self, ctx, idmap):
        """bpftrace.daemon.requests as {endpoint name: count}"""
        v = self.values(REQ, ctx)[REQ]
        return {idmap[i]: n for i, n in v.items()}


def inst_ids(obj):
    return [i["instance"] for i in obj["instances"]] if obj else None


def expected_bpftrace_version():
    """What bpftraced should report for the bpftrace it runs ($BT_BPFTRACE
    or the one on PATH)."""
    path = btd.real_bpftrace()
    if not path:
        return ""
    try:
        out = subprocess.run([path, "--version"], capture_output=True,
                             timeout=10).stdout.decode()
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"\bv?\d+\.\d+\S*", out)
    return m.group(0) if m else None


# ---------------------------------------------------------------------------
def test_context(api, d):
    st, hdrs, obj, body = api.req("/pmapi/context")
    tap.check(st == 200 and obj is not None and
              list(obj.keys()) == ["context", "source", "hostspec", "labels"],
              "context: 200 with fields context, source, hostspec, labels "
              "in that order", lambda: "%s %r" % (st, body))
    if obj is None:
        return None
    c1 = obj["context"]
    tap.check(isinstance(c1, int) and 1 <= c1 <= 0x7fffffff,
              "context: id is an integer in 1..2^31-1", repr(c1))
    tap.check(re.fullmatch(r"[0-9a-f]{40}", obj["source"] or ""),
              "context: source is 40 lowercase hex digits", obj["source"])
    host = socket.gethostname()
    tap.check(obj["hostspec"] == host and obj["labels"].get("hostname") ==
              host, "context: hostspec and labels.hostname are this host's "
              "name (%s)" % host, repr(obj))
    mid = None
    try:
        with open("/etc/machine-id") as f:
            mid = f.readline().strip()
    except OSError:
        pass
    if mid:
        tap.check(obj["labels"].get("machineid") == mid,
                  "context: labels.machineid is /etc/machine-id", repr(obj))
    else:
        tap.skip("context: labels.machineid is /etc/machine-id",
                 "no /etc/machine-id")
    tap.check(isinstance(obj["labels"].get("domainname"), str) and
              obj["labels"]["domainname"] != "",
              "context: labels.domainname is a non-empty string")
    ids = [c1] + [api.json("/pmapi/context")["context"] for _ in range(19)]
    objs = [api.json("/pmapi/context") for _ in range(2)]
    tap.check(len(set(ids)) == 20,
              "context: 20 new contexts have 20 different ids", repr(ids))
    tap.check(all(o["source"] == obj["source"] for o in objs),
              "context: source is the same for every context")
    st, _, o, body = api.req("/pmapi/context?hostspec=localhost&"
                             "polltimeout=60&client=req42")
    tap.check(st == 200 and o and list(o.keys())[:2] == ["context", "client"]
              and o["client"] == "req42",
              "context: client=req42 echoed right after context",
              lambda: repr(body))
    st, _, o, body = api.req("/pmapi/context?client=a%22b%5Cc%0A%01%FF")
    tap.check(st == 200 and o and o["client"] == 'a"b\\c\n\x01\ufffd',
              "context: client with quote, backslash, control bytes and "
              "invalid UTF-8 comes back as valid JSON of the same text "
              "(U+FFFD for the bad byte)", lambda: repr(body))

    ctx = api.context(60)
    st, _, o, _ = api.req("/pmapi/%d/context" % ctx)
    tap.check(st == 200 and o and o["context"] == ctx and
              o["source"] == obj["source"],
              "context reuse via path /pmapi/N/context answers N")
    st, _, o, _ = api.req("/pmapi/context?context=%d" % ctx)
    tap.check(st == 200 and o and o["context"] == ctx,
              "context reuse via ?context=N answers N")
    o1 = api.json("/pmapi/fetch?context=%d&names=bpftrace.daemon.pid" % ctx)
    o2 = api.json("/pmapi/%d/fetch?names=bpftrace.daemon.pid" % ctx)
    tap.check(o1 and o2 and o1["context"] == ctx and o2["context"] == ctx,
              "fetch on an existing context (?context= and path) answers "
              "with that context id")
    o3 = api.json("/pmapi/fetch?names=bpftrace.daemon.pid")
    o4 = api.json("/pmapi/fetch?names=bpftrace.daemon.pid")
    tap.check(o3 and o4 and len({o3["context"], o4["context"], ctx}) == 3,
              "context-less fetches each get a new context id")
    return ctx


def test_polltimeout(api):
    keep = api.context(60)
    c = api.context(1)
    statuses = []
    t0 = time.monotonic()
    for k in (1, 2, 3):                     # uses at 0.6, 1.2, 1.8 s
        time.sleep(max(0, t0 + 0.6 * k - time.monotonic()))
        statuses.append(api.req("/pmapi/%d/fetch?names=bpftrace.daemon.pid"
                                % c)[0])
    tap.check(statuses == [200, 200, 200],
              "polltimeout=1: each use re-arms the timer (alive at "
              "0.6/1.2/1.8 s)", repr(statuses))
    time.sleep(2.5)
    st, _, o, body = api.req("/pmapi/%d/fetch?names=bpftrace.daemon.pid" % c)
    tap.check(st == 400 and o == {"context": c, "message":
                                  "unknown context identifier: %d" % c,
                                  "success": False},
              "polltimeout=1: after 2.5 s idle, 400 'unknown context "
              "identifier: N' with the id echoed", lambda: "%s %r"
              % (st, body))
    st, _, o, body = api.req("/pmapi/%d/context" % c)
    tap.check(st == 400 and o and "context" not in o and
              o.get("message") == "unknown context identifier: %d" % c,
              "expired context on /pmapi/N/context: 400 without a context "
              "key (as pmproxy)", lambda: "%s %r" % (st, body))
    st, _, o, _ = api.req("/pmapi/%d/fetch?names=bpftrace.daemon.pid" % keep)
    tap.check(st == 200, "a polltimeout=60 context made before is still "
              "alive after that")
    # the contexts gauge drops when the GC frees expired contexts
    short = [api.context(0.5) for _ in range(4)]
    n1 = api.one("bpftrace.daemon.contexts", keep)
    time.sleep(2.2)
    n2 = api.one("bpftrace.daemon.contexts", keep)
    tap.check(len(set(short)) == 4 and n1 >= 5 and n1 - n2 >= 4,
              "bpftrace.daemon.contexts counts live contexts and drops by "
              ">= 4 once four polltimeout=0.5 contexts expire",
              "before %s after %s" % (n1, n2))


def test_metric(api, ctx):
    st, _, o, body = api.req("/pmapi/%d/metric?name=%s" % (ctx, REQ))
    m = o["metrics"][0] if o and o.get("metrics") else {}
    tap.check(st == 200 and list(o.keys()) == ["context", "metrics"] and
              len(o["metrics"]) == 1 and list(m.keys()) == METRIC_KEYS,
              "metric by name: one metric, fields in pmproxy's order",
              lambda: repr(body))
    tap.check(m.get("pmid") == "151.2.1" and m.get("indom") == "151.1" and
              m.get("type") == "u64" and m.get("sem") == "counter" and
              m.get("units") == "count" and
              m.get("text-oneline") == "HTTP API requests served, "
              "per endpoint" and m.get("labels", {}).get("agent") ==
              "bpftrace", "metric %s: pmid 151.2.1, indom 151.1, u64 "
              "counter, units count, agent label" % REQ, repr(m))
    o = api.json("/pmapi/%d/metric?name=bpftrace.daemon.uptime" % ctx)
    m = o["metrics"][0] if o and o.get("metrics") else {}
    tap.check("indom" not in m and m.get("pmid") == "151.2.0" and
              m.get("units") == "sec" and m.get("sem") == "counter" and
              m.get("text-help") == m.get("text-oneline") and
              list(m.keys()) == [k for k in METRIC_KEYS if k != "indom"],
              "metric bpftrace.daemon.uptime: no indom key, units sec, "
              "text-help falls back to the one-line text", repr(m))
    o = api.json("/pmapi/%d/metric?prefix=bpftrace" % ctx)
    ms = o["metrics"] if o else []
    got = {x["name"]: x["pmid"] for x in ms}
    tap.check(got == PMIDS, "metric prefix=bpftrace: exactly the %d "
              "documented metrics with README's pmids" % len(PMIDS),
              lambda: repr(got))
    tap.check(ms and all(re.fullmatch(r"\d+\.\d+\.\d+", x["pmid"])
                         for x in ms),
              "every pmid is a \"D.C.I\" string")
    series = [x["series"] for x in ms]
    tap.check(all(re.fullmatch(r"[0-9a-f]{40}", s) for s in series) and
              len(set(series)) == len(series),
              "every series is 40 hex digits and unique per metric")
    o2 = api.json("/pmapi/%d/metric?prefix=bpftrace" % ctx)
    tap.check(o2 and [x["series"] for x in o2["metrics"]] == series,
              "series ids are stable between requests")
    names = [x["name"] for x in ms]
    tap.check(names == sorted(names), "metric prefix: metrics in name order")
    host = socket.gethostname()
    tap.check(ms and all(x["labels"].get("hostname") == host for x in ms),
              "every metric's labels include the context labels (hostname)")
    o = api.json("/pmapi/%d/metric?prefix=bpftrace.info" % ctx)
    info = [x["name"] for x in o["metrics"]] if o else []
    tap.check(info == sorted(n for n in PMIDS if n.startswith(
        "bpftrace.info.")) and all(x["labels"].get("metrictype") ==
                                   "control" for x in o["metrics"]),
              "metric prefix=bpftrace.info: the 8 info metrics, each "
              "labelled metrictype=control", repr(info))
    o = api.json("/pmapi/%d/metric?names=bpftrace.daemon.pid,no.such.metric,"
                 "bpftrace.info.version" % ctx)
    ms = o["metrics"] if o else []
    tap.check(len(ms) == 3 and ms[0].get("name") == "bpftrace.daemon.pid" and
              ms[1] == {"name": "no.such.metric", "message":
                        "Unknown metric name", "success": False} and
              ms[2].get("pmid") == "151.1.4",
              "metric names=a,unknown,b: 3 elements in request order, the "
              "unknown one as an in-array error", repr(ms)[:500])
    o = api.json("/pmapi/%d/metric?name=bpftrace.daemon.pid,"
                 "bpftrace.daemon.rss" % ctx)
    tap.check(o and [x["name"] for x in o["metrics"]] ==
              ["bpftrace.daemon.pid", "bpftrace.daemon.rss"],
              "metric name=a,b is split like names=")
    o = api.json("/pmapi/%d/metric?names=bpftrace.info" % ctx)
    tap.check(o and [x["name"] for x in o["metrics"]] == info,
              "metric names=<non-leaf> lists the subtree")


def test_fetch(api, d, ctx, t_start):
    st, hdrs, o, body = api.req("/pmapi/%d/fetch?names=bpftrace.info.version,"
                                "bpftrace.daemon.uptime,%s" % (ctx, REQ))
    m = re.match(rb'\{"context":(\d+),"timestamp":(\d+)\.(\d+),"values":\[',
                 body)
    tap.check(m and len(m.group(3)) == 9,
              "fetch: timestamp is seconds.nanoseconds with exactly 9 "
              "fraction digits", lambda: repr(body[:120]))
    tap.check(m and abs(int(m.group(2)) - time.time()) < 5,
              "fetch: timestamp is the current wall-clock time")
    tap.check(o and list(o.keys()) == ["context", "timestamp", "values"] and
              [v["name"] for v in o["values"]] ==
              ["bpftrace.info.version", "bpftrace.daemon.uptime", REQ] and
              all(list(v.keys()) == ["pmid", "name", "instances"]
                  for v in o["values"]),
              "fetch: values in request order, fields pmid, name, instances")
    vals = {v["name"]: v for v in o["values"]} if o else {}
    ver = vals.get("bpftrace.info.version", {})
    tap.check(ver.get("pmid") == "151.1.4" and
              [list(i.keys()) for i in ver.get("instances", [])] ==
              [["instance", "value"]] and
              ver["instances"][0]["instance"] is None,
              "fetch: singular metric has one instance with instance null",
              repr(ver))
    want = expected_bpftrace_version()
    if want is None:
        tap.skip("fetch: bpftrace.info.version is what bpftrace --version "
                 "says", "could not run bpftrace --version here")
    else:
        tap.check(ver.get("instances", [{}])[0].get("value") == want,
                  "fetch: bpftrace.info.version is what bpftrace --version "
                  "says (%r)" % want, repr(ver))
    req = vals.get(REQ, {})
    tap.check([i["instance"] for i in req.get("instances", [])] ==
              list(range(9)) and all(isinstance(i["value"], int) for i in
                                     req["instances"]),
              "fetch: %s has instances 0..8 with integer values" % REQ)

    up1 = api.one("bpftrace.daemon.uptime", ctx)
    time.sleep(1.1)
    up2 = api.one("bpftrace.daemon.uptime", ctx)
    tap.check(isinstance(up1, int) and up1 <= time.monotonic() - t_start + 1
              and 1 <= up2 - up1 <= 2,
              "fetch: bpftrace.daemon.uptime grows by 1-2 between fetches "
              "1.1 s apart", "%r then %r" % (up1, up2))

    pid = d.proc.pid
    o = api.json("/pmapi/%d/fetch?pmids=151.2.6,151.1.3" % ctx)
    tap.check(o and [v["name"] for v in o["values"]] ==
              ["bpftrace.daemon.pid", "bpftrace.info.daemon_version"] and
              o["values"][0]["instances"][0]["value"] == pid,
              "fetch pmids=151.2.6,151.1.3: pid (= our child's pid) and "
              "daemon_version, in that order", lambda: repr(o))
    forms = ["%d" % pmid_num(151, 2, 6), "0x%x" % pmid_num(151, 2, 6),
             "151.2.6"]
    got = []
    for f in forms:
        o = api.json("/pmapi/%d/fetch?pmid=%s" % (ctx, f))
        got.append(o["values"][0]["instances"][0]["value"] if o and
                   o.get("values") else None)
    tap.check(got == [pid] * 3, "fetch pmid= as decimal, 0x hex and D.C.I "
              "all give bpftrace.daemon.pid", repr(got))
    o = api.json("/pmapi/%d/fetch?name=bpftrace.daemon.pid" % ctx)
    tap.check(o and o["values"][0]["instances"][0]["value"] == pid,
              "fetch name= (singular) gives the value")
    o = api.json("/pmapi/%d/fetch?names=no.such.metric,bpftrace.daemon.pid,"
                 "bpftrace.daemon" % ctx)
    tap.check(o and [v["name"] for v in o["values"]] ==
              ["bpftrace.daemon.pid"],
              "fetch names=: unknown and non-leaf names are dropped")
    o = api.json("/pmapi/%d/fetch?names=bpftrace.daemon.rss,"
                 "bpftrace.info.bpftrace_path,bpftrace.info.scripts_total"
                 % ctx)
    v = {x["name"]: x["instances"][0]["value"] for x in o["values"]} \
        if o else {}
    tap.check(isinstance(v.get("bpftrace.daemon.rss"), int) and
              v["bpftrace.daemon.rss"] > 100 and
              v.get("bpftrace.info.bpftrace_path") ==
              (btd.BT_BPFTRACE or "bpftrace") and
              v.get("bpftrace.info.scripts_total") == 0,
              "fetch: rss > 100 KB, bpftrace_path %r (%s), scripts_total 0"
              % (btd.BT_BPFTRACE or "bpftrace", "$BT_BPFTRACE" if
                 btd.BT_BPFTRACE else "default"), repr(v))

    # bytes_out counts response bodies exactly
    _, _, _, b0body = api.req("/pmapi/%d/fetch?names=bpftrace.daemon."
                              "bytes_out" % ctx)
    b0 = json.loads(b0body)["values"][0]["instances"][0]["value"]
    _, _, _, mbody = api.req("/pmapi/%d/metric?prefix=bpftrace" % ctx)
    _, _, _, ebody = api.req("/pmapi/%d/fetch?name=no.such" % ctx)
    b1 = api.one("bpftrace.daemon.bytes_out", ctx)
    want = len(b0body) + len(mbody) + len(ebody)
    tap.check(b1 - b0 == want,
              "bpftrace.daemon.bytes_out grows by exactly the body bytes "
              "sent in between (%d)" % want, "%d -> %d" % (b0, b1))


def test_counters(api, ctx):
    st, _, o, _ = api.req("/pmapi/%d/indom?name=%s" % (ctx, REQ))
    idmap = {i["instance"]: i["name"] for i in o["instances"]} if o else {}
    tap.check(sorted(idmap.values()) == sorted(ENDPOINTS),
              "indom of %s: one instance per endpoint" % REQ, repr(idmap))
    other_ctx = api.context(60)
    err0 = api.one("bpftrace.daemon.errors", ctx)
    before = api.requests(ctx, idmap)
    plan = {"children": 7, "metric": 5, "indom": 3, "profile": 2,
            "store": 2, "other": 5}
    for _ in range(7):
        api.req("/pmapi/%d/children?prefix=bpftrace" % ctx)
    for _ in range(5):
        api.req("/pmapi/%d/metric?name=bpftrace.daemon.pid" % ctx)
    for _ in range(3):
        api.req("/pmapi/%d/indom?indom=151.1" % ctx)
    for _ in range(2):
        api.req("/pmapi/%d/profile?expr=add&indom=151.1" % other_ctx)
    for _ in range(2):                      # 2 errors (read-only)
        api.req("/pmapi/%d/store?name=bpftrace.daemon.pid&value=1" % ctx)
    api.req("/pmapi/bogus")                 # 4 x other, all errors
    api.req("/nosuch")
    api.req("/ui/nosuch.js")                # the web page's 404
    api.req("/pmapi/context", method="PATCH")
    api.req("/")                            # other, the page: no error
    after = api.requests(ctx, idmap)
    err1 = api.one("bpftrace.daemon.errors", ctx)
    delta = {k: after[k] - before[k] for k in after}
    want = {k: plan.get(k, 0) for k in ENDPOINTS}
    want["fetch"] = 1                       # the fetch reading "after"
    tap.check(delta == want, "%s rose by exactly the requests made per "
              "endpoint (7 children, 5 metric, 3 indom, 2 profile, "
              "2 store, 5 other, 1 fetch)" % REQ,
              lambda: "delta %r\nwant  %r" % (delta, want))
    tap.check(err1 - err0 == 6, "bpftrace.daemon.errors rose by exactly "
              "the 6 error answers", "%d -> %d" % (err0, err1))


def test_indom(api, ctx):
    full = api.json("/pmapi/%d/indom?name=%s" % (ctx, REQ))
    tap.check(full and full["indom"] == "151.1" and
              [(i["instance"], i["name"]) for i in full["instances"]] ==
              list(enumerate(ENDPOINTS)) and
              full["text-oneline"] == "bpftraced REST API endpoints",
              "indom by name: 151.1 with instances 0..8 = context, metric, "
              "fetch, indom, children, profile, store, derive, other",
              lambda: repr(full)[:400])
    host = socket.gethostname()
    tap.check(full and all(i["labels"].get("hostname") == host
                           for i in full["instances"]),
              "indom: every instance carries the context labels")
    num = (151 << 22) | 1
    same = [api.json("/pmapi/%d/indom?indom=%s" % (ctx, f))
            for f in ("151.1", str(num), "0x%x" % num, "0x%X" % num)]
    tap.check(all(s and s["instances"] == full["instances"] for s in same),
              "indom= as D.S, decimal and 0x hex (either case) give the "
              "same answer as name=")
    cases = [
        ("instance=2,4", [2, 4]),
        ("iname=fetch,store", [2, 6]),
        ("iname=*t*&match=glob", [0, 1, 2, 6, 8]),
        ("iname=c*&match=exact", []),
        ("iname=c*", []),
        ("iname=%5E(de%7Cpr)&match=regex", [5, 7]),
        ("iname=c.*&match=regex", [0, 1, 2, 4]),
        ("iname=%5Eo&match=regex", [8]),
        ("instance=3&iname=other", [3, 8]),
        ("instance=999", []),
        ("iname=FETCH", []),
        ("iname=%5Bcf%5D*&match=glob", [0, 2, 4]),
    ]
    for q, want in cases:
        o = api.json("/pmapi/%d/indom?indom=151.1&%s" % (ctx, q))
        tap.check(inst_ids(o) == want, "indom filter %s -> instances %s"
                  % (q, want), lambda: "got %r" % inst_ids(o))


def test_children(api, ctx):
    cases = [
        ("", "", [], ["bpftrace", "pmcd"]),
        ("?prefix=bpftrace", "bpftrace", [], ["control", "daemon", "info"]),
        ("?prefix=bpftrace.info", "bpftrace.info",
         ["bpftrace_path", "daemon_version", "scripts", "scripts_json",
          "scripts_running", "scripts_total", "tracepoints", "version"],
         []),
        ("?prefix=bpftrace.daemon", "bpftrace.daemon",
         ["bytes_out", "contexts", "contexts_evicted", "errors",
          "memory_held", "memory_refused", "pid", "refused", "requests",
          "rss", "uptime"], []),
        ("?prefix=bpftrace.daemon.pid", "bpftrace.daemon.pid", [], []),
    ]
    for q, name, leaf, nonleaf in cases:
        st, _, o, body = api.req("/pmapi/%d/children%s" % (ctx, q))
        tap.check(st == 200 and o == {"context": ctx, "name": name,
                                      "leaf": leaf, "nonleaf": nonleaf},
                  "children of %r: leaf %s, nonleaf %s" % (name, leaf,
                                                            nonleaf),
                  lambda: "%s %r" % (st, body))
    st, _, o, _ = api.req("/pmapi/%d/children?prefix=bpftrace.dae" % ctx)
    tap.check(st == 400 and o and o.get("message") ==
              "child traversal failed - Unknown metric name",
              "children of a partial name component (bpftrace.dae): 400")


def test_profile(api):
    a, b = api.context(60), api.context(60)

    def insts(ctx):
        o = api.values(REQ, ctx)
        return sorted(o.get(REQ, {}).keys())

    allids = list(range(9))
    steps = [
        ("add&name=%s&iname=fetch" % REQ, [2]),
        ("add&indom=151.1&instance=0", [0, 2]),
        ("del&indom=151.1&iname=fetch", [0]),
        ("del&indom=151.1", []),
        ("add&indom=151.1", allids),
        ("del&indom=151.1&iname=c*&match=glob", [1, 2, 3, 5, 6, 7, 8]),
        ("add&indom=151.1&iname=children", [1, 2, 3, 4, 5, 6, 7, 8]),
        ("del", []),
        ("add", allids),
    ]
    for q, want in steps:
        st, _, o, body = api.req("/pmapi/%d/profile?expr=%s" % (a, q))
        ok = st == 200 and o == {"context": a, "success": True}
        got_a, got_b = insts(a), insts(b)
        tap.check(ok and got_a == want and got_b == allids,
                  "profile expr=%s: fetch on that context returns "
                  "instances %s, another context still all 9"
                  % (q.replace("&", " "), want),
                  lambda: "answer %s %r; a=%r b=%r" % (st, body, got_a,
                                                       got_b))
    api.req("/pmapi/%d/profile?expr=add&indom=151.1&iname=fetch" % b)
    o = api.json("/pmapi/fetch?names=%s" % REQ)
    tap.check(o and len(o["values"][0]["instances"]) == 9,
              "a profile never affects context-less fetches")


def test_store(api, d, ctx):
    pid = d.proc.pid
    for q, metric in [("name=bpftrace.daemon.pid&value=5",
                       "bpftrace.daemon.pid"),
                      ("pmid=151.1.4&value=v9.9.9", "bpftrace.info.version"),
                      ("name=bpftrace.daemon.uptime&value=0",
                       "bpftrace.daemon.uptime")]:
        st, hdrs, o, body = api.req("/pmapi/%d/store?%s" % (ctx, q))
        tap.check(st == 400 and hdrs.get("content-type") ==
                  "application/json" and
                  o == {"context": ctx, "message": "failed to store value "
                        "to metric %s: No permission to perform requested "
                        "operation" % metric, "success": False},
                  "store %s (read-only): 400 with pmproxy's 'No permission' "
                  "message" % q, lambda: "%s %r" % (st, body))
    st, _, o, body = api.req("/pmapi/%d/store?name=bpftrace.daemon.pid" % ctx,
                             method="POST", body="7")
    tap.check(st == 400 and o and "No permission" in o.get("message", ""),
              "store by POST body to a read-only metric: same refusal",
              lambda: "%s %r" % (st, body))
    v = api.values("bpftrace.daemon.pid,bpftrace.info.version", ctx)
    tap.check(v["bpftrace.daemon.pid"][None] == pid and
              v["bpftrace.info.version"][None] != "v9.9.9",
              "after refused stores the values are unchanged")


def test_http(api, d, ctx):
    host, port = "127.0.0.1", d.port
    # CORS
    for path, what in [("/pmapi/context", "200 JSON"),
                       ("/pmapi/fetch?name=no.such", "400 JSON"),
                       ("/pmapi/bogus", "400 HTML")]:
        st, hdrs, _ = btd.http("GET", d.url(path),
                               headers={"Origin": "http://example.com"})
        tap.check(hdrs.get("access-control-allow-origin") == "*" and
                  hdrs.get("access-control-allow-headers") == CORS_HEADERS
                  and hdrs.get("access-control-max-age") == "86400",
                  "CORS headers on a GET answered %s (%d)" % (what, st),
                  repr(hdrs))
    # preflights never name a foreign Origin (pmproxy echoes any): "*"
    st, hdrs, body = btd.http(
        "OPTIONS", d.url("/pmapi/context"),
        headers={"Origin": "http://grafana.example:3000",
                 "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "X-Custom"})
    tap.check(st == 200 and body == b"" and
              hdrs.get("access-control-allow-origin") == "*" and
              hdrs.get("access-control-allow-methods") ==
              "GET, HEAD, OPTIONS" and
              hdrs.get("access-control-allow-headers") == CORS_HEADERS +
              ", X-Grafana-Device-ID" and
              "access-control-allow-credentials" not in hdrs and
              hdrs.get("access-control-max-age") == "86400",
              "OPTIONS preflight: 200, empty, Allow-Origin * (the Origin is "
              "not echoed), lists methods (no TRACE) and allowed headers",
              lambda: "%s %r" % (st, hdrs))
    st, hdrs, _ = btd.http(
        "OPTIONS", d.url("/pmapi/store?name=x&value=1"),
        headers={"Origin": "http://a.example",
                 "Access-Control-Request-Method": "POST"})
    tap.check(st == 403 and hdrs.get("access-control-allow-origin") == "*"
              and "access-control-allow-methods" not in hdrs,
              "OPTIONS preflight for POST on store from an origin not "
              "allowed: 403", lambda: "%s %r" % (st, hdrs))
    st, hdrs, _ = btd.http(
        "OPTIONS", d.url("/pmapi/fetch?names=x"),
        headers={"Origin": "http://a.example",
                 "Access-Control-Request-Method": "POST"})
    tap.check(st == 405 and "access-control-allow-origin" not in hdrs,
              "OPTIONS preflight for POST on fetch: 405 without CORS "
              "headers", lambda: "%s %r" % (st, hdrs))

    # HEAD: headers only; the next answer on the connection follows at once
    data = btd.raw(host, port,
                   b"HEAD /pmapi/%d/fetch?names=bpftrace.daemon.pid HTTP/1.1"
                   b"\r\nHost: 127.0.0.1\r\n\r\nGET /pmapi/%d/fetch?names=bpftrace."
                   b"daemon.pid HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   b"\r\n" % (ctx, ctx))
    end = data.find(b"\r\n\r\n")
    first = btd.parse_response(data)
    tail = data[end + 4:] if end != -1 else b""
    second = btd.parse_response(tail)
    tap.check(first and first["status"] == 200 and
              int(first["headers"].get("content-length", "0")) > 0 and
              tail.startswith(b"HTTP/1.1 200 ") and second and
              json.loads(second["body"])["values"][0]["instances"][0]
              ["value"] == d.proc.pid,
              "HEAD: 200 with Content-Length but no body bytes (the next "
              "answer starts right after the headers)",
              lambda: repr(data[:600]))

    # HTTP/1.0
    data = btd.raw(host, port, b"GET /pmapi/%d/fetch?names=bpftrace.daemon."
                   b"pid HTTP/1.0\r\n\r\n" % ctx)
    r = btd.parse_response(data)
    tap.check(r and data.startswith(b"HTTP/1.0 200 OK\r\n") and
              json.loads(r["body"])["values"][0]["instances"][0]["value"] ==
              d.proc.pid, "HTTP/1.0 request: 'HTTP/1.0 200 OK' and the "
              "right body", lambda: repr(data[:300]))
    data = btd.raw(host, port, b"GET /pmapi/bogus HTTP/1.0\r\n\r\n")
    tap.check(data.startswith(b"HTTP/1.0 400 Bad Request\r\n"),
              "HTTP/1.0 request answered with an error: HTTP/1.0 400",
              lambda: repr(data[:200]))
    st, _, _, extra = btd.http("GET", d.url("/pmapi/context"), full=True)
    tap.check(extra["version"] == "HTTP/1.1",
              "HTTP/1.1 request: HTTP/1.1 answer")

    # body ends with CRLF
    bodies = {}
    for path in ["/pmapi/context", "/pmapi/%d/context" % ctx,
                 "/pmapi/%d/metric?name=bpftrace.daemon.pid" % ctx,
                 "/pmapi/%d/fetch?names=bpftrace.daemon.pid" % ctx,
                 "/pmapi/%d/indom?indom=151.1" % ctx,
                 "/pmapi/%d/children?prefix=bpftrace" % ctx,
                 "/pmapi/%d/profile?expr=add" % ctx,
                 "/pmapi/%d/store?name=bpftrace.daemon.pid&value=1" % ctx,
                 "/pmapi/fetch?name=no.such",
                 "/pmapi/context?polltimeout=abc",
                 "/pmapi/bogus", "/pmapi/fetch"]:
        bodies[path] = btd.http("GET", d.url(path))[2]
    bad = [p for p, b in bodies.items()
           if not b.endswith(b"\r\n") or b.endswith(b"\r\n\r\n") or
           b.count(b"\r\n") > 1 and b.startswith(b"{")]
    tap.check(not bad, "every answer body (%d endpoints, success and "
              "errors, JSON and HTML) ends with exactly one CRLF"
              % len(bodies), lambda: repr({p: bodies[p][-20:] for p in bad}))

    # keep-alive: 100 requests on one connection
    conn = btd.connect(d.base)
    try:
        ok, sock_names = 0, set()
        for k in range(100):
            path = ("/pmapi/%d/fetch?names=bpftrace.daemon.pid" % ctx
                    if k % 2 else "/pmapi/%d/metric?name=bpftrace.daemon.pid"
                    % ctx)
            st, hdrs, body = btd.http("GET", d.url(path), conn=conn)
            sock_names.add(conn.sock.getsockname() if conn.sock else None)
            o = json.loads(body)
            if st == 200 and o["context"] == ctx and \
                    hdrs.get("connection", "").lower() != "close":
                ok += 1
    finally:
        conn.close()
    tap.check(ok == 100 and len(sock_names) == 1 and None not in sock_names,
              "keep-alive: 100 requests on one connection, all 200, the "
              "connection never re-opened", "ok=%d sockets=%r"
              % (ok, sock_names))


def test_concurrency(api, d, ctx, idmap):
    nthreads, nreq = 16, 50
    results = [None] * nthreads
    before = api.requests(ctx, idmap)["fetch"]
    pid = d.proc.pid
    barrier = threading.Barrier(nthreads)

    def worker(n):
        good, errs = 0, []
        conn = btd.connect(d.base, timeout=20)
        try:
            barrier.wait(10)
            for _ in range(nreq):
                st, _, body = btd.http(
                    "GET", d.url("/pmapi/%d/fetch?names=bpftrace.daemon.pid,"
                                 "%s" % (ctx, REQ)), conn=conn)
                o = json.loads(body)
                if st == 200 and o["values"][0]["instances"][0]["value"] \
                        == pid and len(o["values"][1]["instances"]) == 9:
                    good += 1
                elif len(errs) < 3:
                    errs.append((st, body[:200]))
        except Exception as e:          # noqa: BLE001
            errs.append(repr(e))
        finally:
            conn.close()
        results[n] = (good, errs)

    threads = [threading.Thread(target=worker, args=(n,))
               for n in range(nthreads)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    dt = time.monotonic() - t0
    good = sum(r[0] for r in results if r)
    tap.check(good == nthreads * nreq,
              "%d concurrent connections x %d fetches: all 200 with valid "
              "JSON and correct values (%.2f s)" % (nthreads, nreq, dt),
              lambda: repr([r for r in results if not r or r[1]][:3]))
    after = api.requests(ctx, idmap)["fetch"]
    tap.check(after - before == nthreads * nreq + 1,
              "fetch counter rose by exactly %d under concurrency"
              % (nthreads * nreq + 1), "%d -> %d" % (before, after))
    tap.check(d.alive(), "daemon alive after the concurrent load")


def main():
    try:
        d = btd.Daemon(env={"JOURNAL_STREAM": None})
    except btd.DaemonError as e:
        tap.ok(False, "bpftraced starts", str(e))
        tap.done()
    t_start = time.monotonic() - 1.5        # Daemon.start waits ~1 s
    api = Api(d)

    guarded = tap.guarded   # one group's exception skips no other

    try:
        ctx = guarded(test_context, api, d) or api.context(60)
        guarded(test_metric, api, ctx)
        guarded(test_fetch, api, d, ctx, t_start)
        guarded(test_counters, api, ctx)
        guarded(test_indom, api, ctx)
        guarded(test_children, api, ctx)
        guarded(test_profile, api)
        guarded(test_store, api, d, ctx)
        guarded(test_http, api, d, ctx)
        o = api.json("/pmapi/%d/indom?indom=151.1" % ctx)
        idmap = {i["instance"]: i["name"] for i in o["instances"]}
        guarded(test_concurrency, api, d, ctx, idmap)
        guarded(test_polltimeout, api)
        tap.check(d.alive(), "daemon still running at the end")
    finally:
        if tap.failed:
            tap.diag("daemon stderr:\n" + d.stderr_text()[-3000:])
        rc = d.stop()
        tap.check(rc == 0, "daemon exits 0 on SIGTERM at the end",
                  lambda: "rc=%s" % rc)
    tap.done()


if __name__ == "__main__":
    main()
