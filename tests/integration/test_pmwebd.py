#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_pmwebd.py - the legacy pmwebd dialect (the "_" commands of
pmproxy's compat mode) of a real bpftraced (TAP).

Shapes and values of _context, _fetch, _metric, _indom, _store and
_children next to the pmproxy dialect's answers; pmwebd's context
creation form (local=); every PMWEBD error with its exact text and
status; context expiry as -12376; the 2019 grafana-pcp datasource's
pmwebd flow replayed in order with a script (tests/lib/fake-bpftrace
replaying a fixture from $BT_SHARED); and a second --listen answering
the same.
"""

import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())

FAKE = btd.FAKE_BPFTRACE
U32 = "bpftrace.daemon.contexts"        # singular u32
U64 = "bpftrace.daemon.uptime"          # singular u64 counter
STR = "bpftrace.info.daemon_version"    # singular string
PID = "bpftrace.daemon.pid"             # singular, constant
IND = "bpftrace.daemon.requests"        # instance domain 151.1
PMWEBD_CT = "text/plain"


shared = btd.shared_dir


def pmid_u32(dotted):
    d, c, i = (int(x) for x in dotted.split("."))
    return (d << 22) | (c << 10) | i


def indom_u32(dotted):
    d, s = (int(x) for x in dotted.split("."))
    return (d << 22) | s


def q(v):
    return urllib.parse.quote(str(v), safe="")


class Api:
    def __init__(self, base):
        self.base = base

    def req(self, path, method="GET", body=None, headers=None):
        st, h, b = btd.http(method, self.base + path, body=body,
                            headers=headers, timeout=15.0)
        return st, h, b.decode("utf-8", "replace")

    def json(self, path):
        st, h, b = self.req(path)
        try:
            return st, json.loads(b, object_pairs_hook=Pairs), b
        except ValueError:
            return st, None, b

    def context(self):
        st, j, _ = self.json("/pmapi/_context?polltimeout=120")
        return j["context"]


class Pairs(dict):
    """A dict that remembers its key order (for field-order checks)."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.order = [k for k, _ in pairs]


def pmwebd_error(api, path, code, text, status=400, desc=None):
    st, h, b = api.req(path)
    want = "PMWEBD error, code %d: %s" % (code, text)
    tap.check(st == status and b == want and
              h.get("content-type") == PMWEBD_CT,
              desc or "%s: %d %r" % (path, status, want),
              lambda: "got %s %r %r" % (st, h.get("content-type"), b[:300]))


def bare_metric(api, name):
    st, j, _ = api.json("/pmapi/metric?names=" + q(name))
    return j["metrics"][0]


# ---------------------------------------------------------------------------

def test_context(api):
    st, h, b = api.req("/pmapi/_context")
    m = re.match(r'^\{"context":(\d+)\}\r\n$', b)
    tap.check(st == 200 and m and h.get("content-type") ==
              "application/json",
              "_context: 200 {\"context\":N} and CRLF, nothing else",
              lambda: "%s %r" % (st, b))
    ctx = int(m.group(1)) if m else 0
    st, _, b = api.req("/pmapi/%d/_context?client=x" % ctx)
    tap.check(st == 200 and b == '{"context":%d}\r\n' % ctx,
              "/pmapi/N/_context: the same context, no client key",
              lambda: "%s %r" % (st, b))
    st, _, b = api.req("/pmapi/_context?context=%d" % ctx)
    tap.check(st == 200 and b == '{"context":%d}\r\n' % ctx,
              "_context?context=N: the same", lambda: "%s %r" % (st, b))

    # pmwebd's own creation form: only for pmwebd-only parameters
    st, h, b = api.req("/pmapi/context?local=1&polltimeout=30")
    m = re.match(r'^\{ "context": (\d+) \}$', b)
    tap.check(st == 200 and m and h.get("content-type") ==
              "application/json",
              "context?local=1: pmwebd's exact '{ \"context\": N }'",
              lambda: "%s %r" % (st, b))
    lctx = int(m.group(1)) if m else 0
    st, j, _ = api.json("/pmapi/%d/_fetch?names=%s" % (lctx, PID))
    tap.check(st == 200 and j and j["values"][0]["name"] == PID,
           "the local= context serves _fetch")
    st, j, _ = api.json("/pmapi/%d/fetch?names=%s" % (lctx, PID))
    tap.check(st == 200 and j and j["context"] == lctx,
           "... and the pmproxy dialect's fetch")
    st, h, b = api.req("/pmapi/context?local")
    tap.check(st == 200 and re.match(r'^\{ "context": \d+ \}$', b),
           "context?local (no value): pmwebd form too", repr(b))
    st, _, b = api.req("/pmapi/context?hostname=localhost&local=x"
                       "&polltimeout=abc")
    tap.check(st == 200 and re.match(r'^\{ "context": \d+ \}$', b),
           "hostname= with local=: pmwebd form; a bad polltimeout falls "
           "back to pmwebd's maximum (no error)", repr(b))
    for p in ("/pmapi/context?hostspec=127.0.0.1&polltimeout=30",
              "/pmapi/context?hostname=localhost", "/pmapi/context"):
        st, j, _ = api.json(p)
        tap.check(st == 200 and j and "source" in j and "labels" in j,
               "%s: pmproxy form with source (the 2019 datasource picks "
               "its dialect from it)" % p)
    pmwebd_error(api, "/pmapi/context?local=1&hostspec=remote.example.com",
                 -111, "Connection refused",
                 desc="local= with a remote hostspec: -111 (pmwebd tries "
                      "the hostspec first)")
    pmwebd_error(api, "/pmapi/context?archivefile=some/archive", -2,
                 "No such file or directory",
                 desc="archivefile=: -2, there are no archives")
    return api.context()        # polltimeout=120 for the tests below


def test_fetch(api, ctx):
    names = ",".join([U32, U64, STR, PID, IND])
    t0 = time.time()
    st, h, b = api.req("/pmapi/%d/_fetch?names=%s" % (ctx, names))
    t1 = time.time()
    j = json.loads(b, object_pairs_hook=Pairs) if st == 200 else None
    tap.check(j is not None and j.order == ["timestamp", "values"] and
              b.endswith("\r\n") and h.get("content-type") ==
              "application/json",
              "_fetch: 200 {timestamp, values}, no context key, CRLF",
              lambda: "%s %r" % (st, b[:300]))
    if j is None:
        return
    ts = j["timestamp"]
    tap.check(ts.order == ["s", "us"] and isinstance(ts["s"], int) and
              isinstance(ts["us"], int) and 0 <= ts["us"] < 1000000 and
              t0 - 1 <= ts["s"] + ts["us"] / 1e6 <= t1 + 1,
              "timestamp is {s,us} integers within 1 s of now",
              lambda: repr(ts))
    vals = {v["name"]: v for v in j["values"]}
    tap.check([v["name"] for v in j["values"]] == names.split(","),
           "values in the order asked", repr(list(vals)))
    ok = True
    for name, v in vals.items():
        want = pmid_u32(bare_metric(api, name)["pmid"])
        if not (isinstance(v["pmid"], int) and v["pmid"] == want and
                v.order == ["pmid", "name", "instances"]):
            ok = False
            tap.diag("%s: pmid %r, want %d; keys %r" % (name, v["pmid"],
                                                        want, v.order))
    tap.check(ok, "pmid is the u32 domain<<22|cluster<<10|item of the dotted "
           "pmid; keys pmid, name, instances")
    sing = [vals[n]["instances"] for n in (U32, U64, STR, PID)]
    tap.check(all(len(i) == 1 and i[0]["instance"] == -1 and
               list(i[0]) == ["instance", "value"] for i in sing),
           "singular metrics: one instance, instance -1", repr(sing))
    tap.check(isinstance(vals[U32]["instances"][0]["value"], int) and
           isinstance(vals[U64]["instances"][0]["value"], int),
           "u32 and u64 values are JSON integers")
    tap.check(vals[STR]["instances"][0]["value"] ==
           api.json("/pmapi/fetch?names=" + STR)[1]["values"][0][
               "instances"][0]["value"] and
           isinstance(vals[STR]["instances"][0]["value"], str),
           "string value: a JSON string, the pmproxy dialect's value")
    tap.check(vals[PID]["instances"][0]["value"] == api.pid,
           "bpftrace.daemon.pid is the daemon's pid")
    st, ij, _ = api.json("/pmapi/%d/_indom?name=%s" % (ctx, IND))
    ids = {i["instance"] for i in ij["instances"]}
    got = [i["instance"] for i in vals[IND]["instances"]]
    tap.check(got and all(isinstance(i, int) and i >= 0 and i in ids
                       for i in got),
           "indom metric: instance ids are the _indom instance numbers",
           repr(got))

    # other ways to name metrics
    num = pmid_u32(bare_metric(api, PID)["pmid"])
    for p, what in (("pmids=%d" % num, "pmids= decimal u32"),
                    ("pmids=%s" % hex(num), "pmids= 0x hex"),
                    ("name=%s" % PID, "name="),
                    ("names=no.such,%s,also.no" % PID,
                     "unknown names skipped")):
        st, j, _ = api.json("/pmapi/%d/_fetch?%s" % (ctx, p))
        tap.check(st == 200 and [v["name"] for v in j["values"]] == [PID],
               "_fetch %s" % what, repr(j)[:200])
    st, j, _ = api.json("/pmapi/_fetch?names=" + PID)
    tap.check(st == 200 and j and "context" not in j,
           "_fetch without a context: a throwaway one, as pmproxy")
    st, j, _ = api.json("/pmapi/_fetchXYZ?names=" + PID)
    tap.check(st == 200 and j and j["values"][0]["name"] == PID,
           "commands matched by prefix, as pmproxy (_fetchXYZ)")
    # the pmproxy dialect is unchanged
    st, j, _ = api.json("/pmapi/%d/fetch?names=%s" % (ctx, PID))
    tap.check(j["context"] == ctx and j["values"][0]["pmid"] ==
           bare_metric(api, PID)["pmid"] and
           j["values"][0]["instances"][0]["instance"] is None,
           "bare fetch still: context key, dotted pmid, instance null")


def test_metric(api, ctx):
    st, j, b = api.json("/pmapi/%d/_metric?names=%s,%s,%s" %
                        (ctx, U32, IND, STR))
    tap.check(st == 200 and j and j.order == ["context", "metrics"] and
           j["context"] == ctx and b.endswith("\r\n"),
           "_metric: 200 {context, metrics} (pmproxy's compat mode keeps "
           "the context)", repr(b[:200]))
    if not j:
        return
    for m in j["metrics"]:
        bare = bare_metric(api, m["name"])
        want = [k for k in bare]
        ok = (m.order == want and m["pmid"] == pmid_u32(bare["pmid"]) and
              isinstance(m["pmid"], int) and
              all(m[k] == bare[k] for k in ("type", "sem", "units",
                                            "text-oneline", "text-help",
                                            "series", "labels")))
        if "indom" in bare:
            ok = ok and m["indom"] == indom_u32(bare["indom"])
        else:
            ok = ok and "indom" not in m
        tap.check(ok, "_metric %s: numeric pmid%s, the rest as the bare "
               "metric answer" % (m["name"], ", numeric indom" if "indom"
                                  in bare else ", no indom"),
               "%r\n%r" % (dict(m), dict(bare)))
    st, j, _ = api.json("/pmapi/%d/_metric?prefix=bpftrace.daemon" % ctx)
    tap.check(st == 200 and len(j["metrics"]) == 11 and
           all(isinstance(m["pmid"], int) for m in j["metrics"]),
           "_metric?prefix=bpftrace.daemon: the 11 daemon metrics")
    st, j, b = api.json("/pmapi/%d/_metric?prefix=no.such.metric" % ctx)
    tap.check(st == 200 and b == '{"context":%d,"metrics":[]}\r\n' % ctx,
           "_metric?prefix= of an unknown name: 200, empty list (pmwebd)",
           repr(b))
    st, j, _ = api.json("/pmapi/%d/_metric?names=%s,no.such" % (ctx, U32))
    tap.check(st == 200 and j["metrics"][1] == {
        "name": "no.such", "message": "Unknown metric name",
        "success": False},
        "_metric?names= with an unknown name: in-array error (pmproxy)")


def test_indom(api, ctx):
    st, j, b = api.json("/pmapi/%d/_indom?name=%s" % (ctx, IND))
    bst, bare, _ = api.json("/pmapi/indom?name=%s" % IND)
    tap.check(st == 200 and j and j.order == ["indom", "labels",
                                           "text-oneline", "text-help",
                                           "instances"] and
           b.endswith("\r\n"),
           "_indom: {indom, labels, text-oneline, text-help, instances}, "
           "no context key", repr(b[:200]))
    if not j:
        return
    tap.check(j["indom"] == indom_u32(bare["indom"]) and
           isinstance(j["indom"], int), "indom is the u32 of the dotted "
           "indom (%s)" % bare["indom"])
    tap.check([(i["instance"], i["name"]) for i in j["instances"]] ==
           [(i["instance"], i["name"]) for i in bare["instances"]] and
           all(list(i) == ["instance", "name", "labels"]
               for i in j["instances"]),
           "instances as the bare indom answer: {instance, name, labels}")
    num = indom_u32(bare["indom"])
    st, j2, _ = api.json("/pmapi/%d/_indom?indom=%d&iname=context" %
                         (ctx, num))
    tap.check(st == 200 and [i["name"] for i in j2["instances"]] ==
           ["context"], "_indom?indom=<u32>&iname=: filtered", repr(j2))


def test_children(api, ctx):
    st, j, _ = api.json("/pmapi/%d/_children?prefix=bpftrace.daemon" % ctx)
    tap.check(st == 200 and j and j["context"] == ctx and
           "uptime" in j["leaf"],
           "_children: as the bare children answer (pmproxy compat)")


def test_errors(api, ctx):
    E = pmwebd_error
    C = "/pmapi/%d" % ctx
    E(api, C + "/_fetch?names=no.such.metric", -12443,
      "Insufficient elements in list",
      desc="_fetch with no valid name: 400 -12443")
    E(api, C + "/_fetch?names=bpftrace.daemon", -12443,
      "Insufficient elements in list",
      desc="_fetch of a non-leaf only: 400 -12443")
    E(api, C + "/_fetch?names=", -12443, "Insufficient elements in list",
      desc="_fetch names= empty: 400 -12443")
    E(api, C + "/_fetch?pmids=1.2.3", -12443,
      "Insufficient elements in list",
      desc="_fetch pmids= unknown: 400 -12443")
    E(api, C + "/_fetch?name=no.such.metric", -12357, "Unknown metric name")
    E(api, C + "/_fetch?pmid=1.2.3", -12358,
      "Unknown or illegal metric identifier")
    for cmd in ("_fetch?names=" + PID, "_metric?names=" + PID,
                "_indom?name=" + IND, "_store?name=%s&value=1" % U32,
                "_context", "_children?prefix=bpftrace",
                "_profile?expr=add&indom=151.1"):
        E(api, "/pmapi/12345/" + cmd, -12376,
          "Attempt to use an illegal context",
          desc="unknown context on %s: 400 -12376" % cmd.split("?")[0])
    E(api, "/pmapi/_fetch?context=12345&names=" + PID, -12376,
      "Attempt to use an illegal context", desc="?context= unknown: -12376")
    E(api, "/pmapi/0/_fetch?names=" + PID, -12376,
      "Attempt to use an illegal context", desc="context 0: -12376")
    E(api, "/pmapi/_fetch?context=abc&names=" + PID, -22,
      "Invalid argument", desc="?context=abc: -22")
    E(api, "/pmapi/99999999999/_fetch?names=" + PID, -22,
      "Invalid argument", desc="context id beyond u32: -22")
    E(api, "/pmapi/abc/_fetch?names=" + PID, -22, "Invalid argument",
      desc="non-numeric context in the path: -22 (bad URL)")
    E(api, C + "/_bogus", -22, "Invalid argument",
      desc="unknown _ command: -22 (bad URL)")
    E(api, C + "/_", -22, "Invalid argument", desc="bare _: -22")
    E(api, "/pmapi/_nosuch?names=x", -22, "Invalid argument",
      desc="unknown _ command without a context: -22")
    E(api, C + "/_metric?name=no.such.metric", -12357,
      "Unknown metric name")
    E(api, C + "/_indom?name=" + U32, -12359,
      "Unknown or illegal instance domain identifier",
      desc="_indom of a singular metric: -12359")
    E(api, C + "/_indom?name=no.such.metric", -12357, "Unknown metric name")
    E(api, C + "/_indom?indom=garbage", -12359,
      "Unknown or illegal instance domain identifier")
    E(api, C + "/_indom?indom=151.1&match=bogus", -22, "Invalid argument")
    E(api, C + "/_children?prefix=no.such", -12357, "Unknown metric name")
    E(api, C + "/_store?name=no.such.metric&value=1", -12357,
      "Unknown metric name", desc="_store unknown metric: -12357 (the 2019 "
      "datasource's MissingMetricsError)")
    E(api, C + "/_store?pmid=1.2.3&value=1", -12358,
      "Unknown or illegal metric identifier")
    E(api, C + "/_store?name=%s&value=abc" % U32, -12397,
      "Unknown or illegal metric type")
    E(api, C + "/_store?name=%s&value=5" % U32, -12387,
      "No permission to perform requested operation",
      desc="_store to a read-only metric: -12387")
    E(api, C + "/_derive?name=a.b&expr=" + U32, -22, "Invalid argument",
      desc="_derive: -22 (pmwebd: not supported)")
    E(api, C + "/_profile?expr=bogus&indom=151.1", -22, "Invalid argument")
    E(api, C + "/_profile?expr=add&indom=151.1&iname=nosuch", -12360,
      "Unknown or illegal instance identifier")
    # refusals of the HTTP layer stay pmproxy's HTML pages
    for p in ("/_fetch", "/_indom", "/_store?name=" + U32):
        st, h, b = api.req(C + p)
        tap.check(st == 400 and h.get("content-type") == "text/html" and
               "failed to process URL" in b,
               "%s without its mandatory parameters: pmproxy's HTML 400"
               % p.split("?")[0])
    st, h, b = api.req("/pmapi/_metrics")
    tap.check(st == 400 and "unknown servlet" in b,
           "_metrics (the compat scrape) is not served, as metrics")
    # profiles work per context in the pmwebd dialect too
    st, j, _ = api.json(C + "/_profile?expr=add&indom=151.1&iname=fetch")
    ok1 = st == 200 and j == {"context": ctx, "success": True}
    st, j, _ = api.json(C + "/_fetch?names=" + IND)
    tap.check(ok1 and [i["instance"] for i in j["values"][0]["instances"]] ==
           [2], "_profile then _fetch: only the profiled instance",
           repr(j)[:300])
    api.req(C + "/_profile?expr=del&indom=151.1")


def test_expiry(api):
    st, _, b = api.req("/pmapi/context?local=1&polltimeout=1")
    ctx = int(re.sub(r"\D", "", b))
    st, _, _ = api.req("/pmapi/%d/_fetch?names=%s" % (ctx, PID))
    tap.check(st == 200, "a polltimeout=1 context answers at once")
    time.sleep(1.6)             # idle: every use re-arms the timer
    st, h, b = api.req("/pmapi/%d/_fetch?names=%s" % (ctx, PID))
    tap.check(st == 400 and b == "PMWEBD error, code -12376: Attempt to use an "
           "illegal context" and "12376" in b,
           "after it expires: 400 -12376 (the 2019 datasource recreates "
           "its context on '12376')", repr(b))


def test_datasource_2019(api, fx):
    """The 2019 datasource in its pmwebd dialect, call by call."""
    name = "pw2019"
    with open(os.path.join(fx, "negative_and_huge.bt")) as f:
        code = "// name: %s\n// fixture: negative_and_huge\n// fake: hold\n" \
            % name + f.read()
    # 1. endpoint context (hostspec and polltimeout hard-coded)
    st, j, _ = api.json("/pmapi/context?hostspec=127.0.0.1&polltimeout=30")
    tap.check(st == 200 and isinstance(j["context"], int),
           "2019 flow: context?hostspec=127.0.0.1&polltimeout=30")
    ectx = j["context"]
    # 2. registration on a temporary context: _store, then _fetch
    st, j, _ = api.json("/pmapi/context?hostspec=127.0.0.1&polltimeout=30")
    tctx = j["context"]
    st, j, b = api.json("/pmapi/%d/_store?name=bpftrace.control.register"
                        "&value=%s" % (tctx, q(code)))
    tap.check(st == 200 and b == '{"context":%d,"success":true}\r\n' % tctx,
           "2019 flow: _store bpftrace.control.register: 200 success",
           repr(b))
    st, j, _ = api.json("/pmapi/%d/_fetch?names=bpftrace.control.register"
                        % tctx)
    inst = j["values"][0]["instances"] if st == 200 else []
    try:
        ans = json.loads(inst[0]["value"])
    except (IndexError, KeyError, TypeError, ValueError):
        ans = {}
    tap.check(len(inst) == 1 and inst[0]["instance"] == -1 and
           isinstance(inst[0]["value"], str) and ans.get("script_id") and
           ans["metadata"]["name"] == name,
           "2019 flow: _fetch of bpftrace.control.register in the same "
           "context: a JSON string naming the script", repr(inst)[:300])
    st, j, _ = api.json("/pmapi/%d/_fetch?names=bpftrace.control.register"
                        % ectx)
    v = j["values"][0]["instances"][0]["value"] if st == 200 else None
    tap.check(v is not None and json.loads(v).get("script_id") !=
           ans.get("script_id"),
           "... per context: the endpoint context has not its answer",
           repr(v)[:200])
    # 3. control metrics: _metric once per metric with prefix=
    base = "bpftrace.scripts.%s." % name
    ctl = [base + s for s in ("status", "exit_code", "error")]
    ok = True
    for m in ctl:
        st, j, _ = api.json("/pmapi/%d/_metric?prefix=%s" % (ectx, m))
        ok = ok and st == 200 and len(j["metrics"]) == 1 and \
            j["metrics"][0]["name"] == m and \
            isinstance(j["metrics"][0]["pmid"], int)
    tap.check(ok, "2019 flow: _metric?prefix= per control metric: one entry, "
           "numeric pmid")
    # 4. poll with a names list until the script runs
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        st, j, _ = api.json("/pmapi/%d/_fetch?names=%s" % (ectx,
                                                           ",".join(ctl)))
        vals = {v["name"]: v["instances"][0]["value"]
                for v in (j or {}).get("values", []) if v["instances"]}
        status = vals.get(base + "status")
        if status == "started":
            break
        time.sleep(0.1)
    tap.check(status == "started" and vals.get(base + "exit_code") == 0,
           "2019 flow: _fetch of status,exit_code,error: started",
           repr(vals))
    # 5. data: metadata, indom, values (64-bit exact)
    data = [base + "data." + v for v in ("big", "m", "neg")]
    deadline = time.monotonic() + 10
    vals = {}
    while time.monotonic() < deadline:
        st, j, _ = api.json("/pmapi/%d/_fetch?names=%s" % (ectx,
                                                           ",".join(data)))
        vals = {v["name"]: v["instances"] for v in (j or {}).get("values",
                                                               [])}
        if len(vals.get(base + "data.m", [])) == 2:
            break
        time.sleep(0.1)
    st, ij, _ = api.json("/pmapi/%d/_indom?name=%s" % (ectx, base + "data.m"))
    names = {i["instance"]: i["name"] for i in (ij or {}).get("instances",
                                                             [])}
    m = {names.get(i["instance"]): i["value"]
         for i in vals.get(base + "data.m", [])}
    tap.check(m == {"1": -42, "2": 9223372036854775807},
           "2019 flow: keyed map through _indom names: 2^63-1 exact, -42",
           repr(m))
    tap.check([i["instance"] for i in vals.get(base + "data.big", [])] == [-1]
           and vals[base + "data.big"][0]["value"] == (1 << 64) - 1 and
           vals.get(base + "data.neg", [{}])[0].get("value") == -5,
           "2019 flow: scalars with instance -1 (@big = 2^64-1 exact: a "
           "u64 literal makes a u64 metric)", repr(vals)[:300])
    st, j, _ = api.json("/pmapi/%d/_metric?prefix=%s" % (ectx, data[1]))
    tap.check(st == 200 and j["metrics"][0]["indom"] == ij["indom"],
           "_metric indom equals the _indom answer's indom")
    # 6. expiry: the datasource sees 12376 and makes a new context
    st, _, b = api.req("/pmapi/987654/_fetch?names=" + ",".join(ctl))
    tap.check(st == 400 and "12376" in b, "2019 flow: a lost context answers "
           "with 12376 in the text")
    # 7. a refused script: -12400, the answer still readable
    st, j, _ = api.json("/pmapi/context?hostspec=127.0.0.1&polltimeout=30")
    rctx = j["context"]
    st, _, b = api.req("/pmapi/%d/_store?name=bpftrace.control.register"
                       "&value=%s" % (rctx, q("tracepoint:a:b { }")))
    tap.check(st == 400 and b == "PMWEBD error, code -12400: Bad input to "
           "pmstore", "2019 flow: a refused script: 400 -12400 (the "
           "datasource answers {success:false} and reads the answer)",
           repr(b))
    st, j, _ = api.json("/pmapi/%d/_fetch?names=bpftrace.control.register"
                        % rctx)
    ans = json.loads(j["values"][0]["instances"][0]["value"])
    tap.check(ans.get("state", {}).get("status") == "error" and
           ans["state"].get("error"),
           "... and _fetch of the register metric says why", repr(ans)[:200])
    api.req("/pmapi/%d/_store?name=bpftrace.control.deregister&value=%s"
            % (ectx, name))


def test_second_listener(api2, ctx):
    st, _, b = api2.req("/pmapi/%d/_context" % ctx)
    tap.check(st == 200 and b == '{"context":%d}\r\n' % ctx,
           "second --listen: _context of a context made on the first")
    st, j, _ = api2.json("/pmapi/%d/_fetch?names=%s" % (ctx, PID))
    tap.check(st == 200 and j["values"][0]["instances"][0]["instance"] == -1,
           "second --listen: _fetch")
    st, j, _ = api2.json("/pmapi/%d/fetch?names=%s" % (ctx, PID))
    tap.check(st == 200 and j["context"] == ctx and
           j["values"][0]["instances"][0]["instance"] is None,
           "second --listen: the pmproxy dialect too")
    st, _, b = api2.req("/pmapi/context?local=1")
    tap.check(st == 200 and re.match(r'^\{ "context": \d+ \}$', b),
           "second --listen: pmwebd context creation")
    pmwebd_error(api2, "/pmapi/12345/_fetch?names=" + PID, -12376,
                 "Attempt to use an illegal context",
                 desc="second --listen: -12376")


def main():
    s = shared()
    port2 = btd.free_port()
    args = ["--listen", "127.0.0.1:%d" % port2]
    env = {}
    if s:
        args += ["--control", "loopback", "--bpftrace", FAKE,
                 "--print-interval", "250"]
        env["BT_SHARED"] = s
    with btd.Daemon(args, env=env) as d:
        api = Api(d.base)
        api.pid = d.proc.pid
        ctx = test_context(api)
        test_fetch(api, ctx)
        test_metric(api, ctx)
        test_indom(api, ctx)
        test_children(api, ctx)
        test_errors(api, ctx)
        test_expiry(api)
        if s:
            test_datasource_2019(api, os.path.join(s, "fixtures",
                                                   "bpftrace-0.17"))
        else:
            tap.skip("2019 datasource flow", "no shared fixtures "
                     "(set BT_SHARED)")
        test_second_listener(Api("http://127.0.0.1:%d" % port2), ctx)
        tap.check(d.alive(), "daemon still running")
    tap.done()


if __name__ == "__main__":
    main()
