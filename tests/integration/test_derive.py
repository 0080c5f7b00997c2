#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_derive.py - per-context derived metrics (/pmapi/derive) of a real
bpftraced (TAP), replaying grafana-pcp's Vector datasource flow:

context, derive per panel expression (name derived_<md5(expr)>), metric
for the derived names, fetch of them with other names, a duplicate
registration (which the client ignores), context reset -> register again.
Values are checked against bpftraced's own metrics. Also: the POST
config-file form, pmproxy's error texts, --max-derived, and a derived
metric whose operand (a script's metric) disappears.
"""

import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())

FAKE = btd.FAKE_BPFTRACE
REQ = "bpftrace.daemon.requests"


class Client(btd.Client):
    def __init__(self, d, polltimeout=11):
        super().__init__(d, polltimeout=polltimeout, hostspec="localhost")

    def derive(self, name, expr):
        return self.getj("/pmapi/derive", context=self.ctx, name=name,
                         expr=expr)

    def fetchv(self, *names):
        """(status, JSON, {name: {instance: value}}) of one fetch"""
        st, j = self.fetchj(*names)
        return st, j, {v["name"]: {i["instance"]: i["value"]
                                   for i in v["instances"]}
                       for v in j.get("values", [])}


def vname(expr):
    """The name the Vector datasource gives a derived expression."""
    return "derived_" + hashlib.md5(expr.encode()).hexdigest()


def test_vector_flow():
    with btd.Daemon() as d:
        c = Client(d)
        panels = ["bpftrace.daemon.requests * 2",
                  "bpftrace.daemon.pid + 1",
                  "(bpftrace.daemon.uptime + bpftrace.daemon.uptime) / 2",
                  "bpftrace.daemon.contexts * 10 - 1"]
        for e in panels:
            st, j = c.derive(vname(e), e)
            tap.ok(st == 200 and j == {"context": c.ctx, "success": True},
                   "derive %r: {context, success:true}" % e, repr(j))
        names = [vname(e) for e in panels]
        st, j = c.getj("/pmapi/metric", context=c.ctx, names=",".join(names))
        ms = {m["name"]: m for m in j.get("metrics", [])}
        tap.ok(st == 200 and sorted(ms) == sorted(names),
               "metric describes every derived name", repr(j)[:300])
        req = ms.get(names[0], {})
        tap.ok(req.get("pmid") == "511.2047.1023" and
               ms.get(names[1], {}).get("pmid") == "511.2047.1022",
               "pmids 511.2047.1023, .1022, ... in registration order "
               "(libpcp's per-context scheme)")
        tap.ok(list(req) == ["name", "series", "pmid", "indom", "type",
                             "sem", "units", "labels", "text-oneline",
                             "text-help"] and req["indom"] == "151.1" and
               req["type"] == "u64" and req["sem"] == "counter" and
               req["units"] == "count" and "agent" not in req["labels"] and
               req["text-oneline"] == "",
               "requests*2: pmproxy's field order, the operand's indom, "
               "u64 counter count, no agent label, empty help", repr(req))
        pid = ms.get(names[1], {})
        tap.ok("indom" not in pid and pid.get("type") == "u32" and
               pid.get("sem") == "discrete",
               "pid+1: singular u32 discrete (libpcp's promotion rules)",
               repr(pid))
        up = ms.get(names[2], {})
        tap.ok(up.get("type") == "double" and up.get("sem") == "counter" and
               up.get("units") == "sec", "uptime sum / 2: double counter sec",
               repr(up))
        st, j, v = c.fetchv(REQ, "bpftrace.daemon.pid",
                            "bpftrace.daemon.uptime", *names)
        tap.ok(st == 200 and all(n in v for n in names),
               "fetch answers derived names next to plain ones",
               repr(j)[:400])
        base = v.get(REQ, {})
        dbl = v.get(names[0], {})
        tap.ok(base and sorted(dbl) == sorted(base) and
               all(dbl[i] == 2 * base[i] for i in base),
               "requests*2 is twice every endpoint's count in the same fetch",
               "%r %r" % (base, dbl))
        tap.ok(v.get(names[1], {}).get(None) ==
               v.get("bpftrace.daemon.pid", {}).get(None) + 1 ==
               d.proc.pid + 1, "pid+1 is the daemon's pid plus one")
        tap.ok(v.get(names[2], {}).get(None) ==
               v.get("bpftrace.daemon.uptime", {}).get(None),
               "(uptime + uptime) / 2 equals uptime")
        pos = [x["name"] for x in j["values"]]
        tap.ok(pos == [REQ, "bpftrace.daemon.pid", "bpftrace.daemon.uptime"]
               + names, "values come in the order asked for")
        st, j = c.derive(vname(panels[0]), panels[0])
        tap.ok(st == 400 and j.get("message") ==
               'Error: pmAddDerivedMetric("%s", ...): returns -12409\n'
               'Duplicate per-context derived metric name\n'
               % vname(panels[0]) and j.get("success") is False,
               "a second panel with the same expression: pmproxy's "
               "duplicate text (the client ignores it)", repr(j))
        st, j = c.getj("/pmapi/indom", context=c.ctx, name=names[0])
        tap.ok(st == 200 and j.get("indom") == "151.1" and
               len(j.get("instances", [])) == 9,
               "indom by a derived name: its operands' instance domain")
        st, j = c.getj("/pmapi/indom", context=c.ctx, name=names[1])
        tap.ok(st == 400 and j.get("message") ==
               "%s - metric has null indom" % names[1],
               "indom of a singular derived metric: null indom", repr(j))
        # profile applies to derived metrics of that indom
        c.getj("/pmapi/profile", context=c.ctx, expr="add",
               indom="151.1", iname="fetch")
        st, j, v = c.fetchv(names[0])
        tap.ok(list(v.get(names[0], {})) == [2],
               "an instance profile restricts derived values too", repr(v))
        # other contexts do not see them
        other = Client(d)
        st, j, v = other.fetchv(*names)
        tap.ok(st == 200 and v == {}, "another context has none of them")
        st, j = other.derive(vname(panels[0]), panels[0])
        tap.ok(st == 200, "and can register the same name itself")
        # context reset: expired, the client makes a new one, registers again
        short = Client(d, polltimeout=1)
        short.derive("x.y", "bpftrace.daemon.pid * 1")
        time.sleep(1.6)
        st, j, v = short.fetchv("x.y")
        tap.ok(st == 400 and "unknown context identifier" in
               j.get("message", ""), "derived metrics go with an expired "
               "context", repr(j))
        short.new_context()
        st, j, v = short.fetchv("x.y")
        tap.ok(v == {}, "a new context starts with no derived metrics")
        st, j = short.derive("x.y", "bpftrace.daemon.pid * 1")
        st2, j2, v = short.fetchv("x.y")
        tap.ok(st == 200 and v.get("x.y", {}).get(None) == d.proc.pid,
               "registering again after the reset works", repr(v))
        tap.ok(d.alive(), "daemon alive")


def test_errors_and_forms():
    with btd.Daemon(["--max-derived", "3"]) as d:
        c = Client(d)
        st, j = c.derive("my.bad", "bpftrace.daemon.pid +")
        tap.ok(st == 400 and j.get("message") ==
               'Syntax Error: pmAddDerivedMetric("my.bad", ...)\n'
               'bpftrace.daemon.pid +\n                    ^\n'
               'Arithmetic expression expected to follow PLUS\n',
               "syntax error: libpcp's text, caret and reason", repr(j))
        st, j = c.derive("my.sem", "bpftrace.daemon.uptime + 1")
        tap.ok(st == 400 and j.get("message") ==
               'Semantic Error: pmAddDerivedMetric("my.sem", ...)\n'
               'bpftrace.daemon.uptime + 1\n^\n'
               'Illegal operator for counter and non-counter\n',
               "counter + constant: libpcp's semantic error", repr(j))
        st, j = c.derive("my.sem", "1")
        tap.ok(st == 400 and "Duplicate per-context derived metric name" in
               j.get("message", ""), "a semantic error keeps the name used "
               "(as in libpcp)", repr(j))
        st, j = c.derive("my.unknown", "no.such.metric * 2")
        tap.ok(st == 200, "an unknown operand is accepted, as pmproxy does")
        st, j = c.getj("/pmapi/metric", context=c.ctx, name="my.unknown")
        tap.ok(st == 400 and j.get("message") == "my.unknown traversal "
               "failed - Unknown metric name",
               "but the metric is not visible", repr(j))
        st, j = c.derive("my.three", "3")
        tap.ok(st == 200, "the 3rd counted one is accepted", repr(j))
        st, j = c.derive("my.four", "4")
        tap.ok(st == 400 and "Too many per-context derived metrics "
               "(bpftraced limit 3, see --max-derived)" in
               j.get("message", ""), "--max-derived 3: the 4th is refused "
               "(semantic and unknown ones count, syntax errors do not, "
               "as in libpcp)", repr(j))
        c.new_context()
        st, j = c.getj("/pmapi/derive", context=c.ctx, name="only.name")
        tap.ok(st == 400 and j.get("message") == "invalid derive parameters",
               "name without expr: invalid derive parameters", repr(j))
        st, h, body = btd.http("GET", d.url("/pmapi/derive?context=%d"
                                            % c.ctx))
        tap.ok(st == 400 and b"failed to process URL" in body and
               h.get("content-type", "").startswith("text/html"),
               "GET without name and expr: the HTML 400 page")
        st, j = c.getj("/pmapi/derive", method="POST", context=c.ctx,
                       body=b"p.a = bpftrace.daemon.pid * 3\n# comment\n\n"
                            b"p.b = bpftrace.daemon.pid * 4\n")
        st2, j2, v = c.fetchv("p.a", "p.b")
        tap.ok(st == 200 and v.get("p.a", {}).get(None) == 3 * d.proc.pid
               and v.get("p.b", {}).get(None) == 4 * d.proc.pid,
               "POST config body: name = expr lines, # comments", repr(j))
        st, j = c.getj("/pmapi/derive", method="POST", context=c.ctx,
                       body=b"p.c = 3\np.d = 4")
        tap.ok(st == 400 and j.get("message") == 'failed to parse derived '
               'metric "p.d" on line 1 - incomplete expression\n',
               "the last line must end in a newline (pmproxy's text)",
               repr(j))
        c.new_context()
        st, j = c.getj("/pmapi/derive", method="POST", context=c.ctx,
                       body=b"q.a = 1\nq.b = 1 +\nq.c = 2\n")
        tap.ok(st == 400 and j.get("message", "").startswith(
               'failed to create derived metric "q.b" on line 1 from: 1 +\n'
               'Syntax Error: pmAddDerivedMetric("q.b", ...)\n'),
               "an error names the line; earlier lines stay", repr(j))
        st, j, v = c.fetchv("q.a", "q.c")
        tap.ok(list(v) == ["q.a"], "q.a registered, q.c not", repr(v))
        st, j = c.getj("/pmapi/derive", method="POST", context=c.ctx,
                       name="q.z", body=b"bpftrace.daemon.pid")
        st2, j2, v = c.fetchv("q.z")
        tap.ok(st == 200 and v.get("q.z", {}).get(None) == d.proc.pid,
               "POST with name=: the body is that metric's expression")
        st, j = c.getj("/pmapi/derive", method="POST", context=c.ctx,
                       body=b"")
        tap.ok(st == 400 and j.get("message") == "invalid derive parameters",
               "POST with an empty body: invalid derive parameters")
        st, j = c.getj("/pmapi/derive", method="POST", context=c.ctx,
                       name="big", body=("1+" * 5000 + "1").encode())
        tap.ok(st == 400 and "is too long (bpftraced limit 8192)" in
               j.get("message", ""), "a 10 KB expression is refused")
        st, j = c.getj("/pmapi/derive", context=c.ctx, name="deep",
                       expr="(" * 1000 + "1" + ")" * 1000)
        tap.ok(st == 400 and "Expression nested too deeply" in
               j.get("message", ""), "1000 nested parentheses are refused")
        st, j = c.getj("/pmapi/derive", context=c.ctx, name="bin",
                       expr="\x01\x7f\xff")
        tap.ok(st == 400 and "Illegal character" in j.get("message", ""),
               "garbage bytes: Illegal character")
        st, j, v = c.fetchv(REQ)
        st2, j2 = c.getj("/pmapi/indom", context=c.ctx, name=REQ)
        idx = [i["instance"] for i in j2.get("instances", [])
               if i["name"] == "derive"]
        cnt = v.get(REQ, {}).get(idx[0]) if idx else None
        tap.ok(isinstance(cnt, int) and cnt >= 10,
               "derive requests are counted (EP_DERIVE)", repr(cnt))
        tap.ok(d.alive(), "daemon alive")


def test_operand_disappears(sh):
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE],
                    env={"BT_SHARED": sh}) as d:
        c = Client(d, polltimeout=60)
        code = ("// name: dsc\n// fixture: scalar_count\n// fake: hold\n"
                "tracepoint:raw_syscalls:sys_enter { @calls = count(); }\n")
        m = "bpftrace.scripts.dsc.data.calls"
        st, j = c.getj("/pmapi/store", context=c.ctx,
                       name="bpftrace.control.register", value=code)
        deadline = time.monotonic() + 8
        v = {}
        while time.monotonic() < deadline:
            v = c.fetchv(m)[2]
            if v.get(m):
                break
            time.sleep(0.05)
        tap.ok(v.get(m, {}).get(None) == 379, "script metric has its value",
               repr(v))
        st, j = c.derive("calls2", m + " * 2")
        st2, j2, v = c.fetchv("calls2", m)
        tap.ok(st == 200 and v.get("calls2", {}).get(None) == 758,
               "derived from a script metric", repr(v))
        st, j = c.getj("/pmapi/store", context=c.ctx,
                       name="bpftrace.control.deregister", value="dsc")
        st, j, v = c.fetchv("calls2", "bpftrace.daemon.pid")
        tap.ok(st == 200 and "calls2" not in v and
               "bpftrace.daemon.pid" in v,
               "operand deregistered: the derived metric has no value",
               repr(j)[:300])
        # a lone name that does not resolve: pmproxy's 400 (issue 15)
        st, j = c.getj("/pmapi/metric", context=c.ctx, names="calls2")
        tap.ok(st == 400 and "calls2 traversal failed - Unknown metric "
               "name" in j.get("message", ""),
               "and is not described (400 traversal failed)", repr(j))
        st, j = c.getj("/pmapi/metric", context=c.ctx,
                       names="calls2,bpftrace.daemon.pid")
        tap.ok(st == 200 and j["metrics"][0].get("success") is False,
               "beside a known name: an error entry", repr(j))
        st, j = c.getj("/pmapi/fetch", context=c.ctx, name="calls2")
        tap.ok(st == 400 and j.get("message") == "bad parameters passed",
               "singular fetch of it: bad parameters passed")
        tap.ok(d.alive(), "daemon alive after its operand went away")


def test_pmwebd_dialect():
    """Derived metrics of a context, read with the "_" (pmwebd) commands:
    pmproxy 6.0.3's compat answers (u32 pmid with libpcp's derived bit,
    u32 indom, instance -1), pmwebd's text errors."""
    with btd.Daemon() as d:
        c = Client(d)
        C = "/pmapi/%d/" % c.ctx
        c.derive("my.req2", REQ + " * 2")
        c.derive("my.pid1", "bpftrace.daemon.pid + 1")
        c.derive("my.gone", "no.such.metric * 2")
        st, j = c.getj(C + "_fetch", names="my.req2,bpftrace.daemon.pid,"
                       "my.pid1")
        vals = {v["name"]: v for v in j.get("values", [])}
        pid1 = vals.get("my.pid1", {})
        req2 = vals.get("my.req2", {})
        tap.ok(st == 200 and list(j) == ["timestamp", "values"] and
               [v["name"] for v in j["values"]] ==
               ["my.req2", "bpftrace.daemon.pid", "my.pid1"],
               "_fetch answers derived names next to plain ones, in order",
               repr(j)[:300])
        tap.ok(pid1.get("pmid") == 4292870142 and
               req2.get("pmid") == 4292870143,
               "_fetch: u32 pmids with libpcp's derived bit (4292870143 is "
               "511.2047.1023), as pmproxy's compat mode writes them",
               repr(j)[:300])
        tap.ok(pid1.get("instances") == [{"instance": -1,
                                          "value": d.proc.pid + 1}],
               "_fetch: a singular derived value has instance -1",
               repr(pid1))
        tap.ok(len(req2.get("instances", [])) == 9 and
               all(isinstance(i["instance"], int) and i["instance"] >= 0
                   for i in req2["instances"]),
               "_fetch: per-instance derived values keep their ids",
               repr(req2)[:300])
        for q, desc in ((dict(pmids="4292870143"), "_fetch?pmids="),
                        (dict(pmid="4292870143"), "_fetch?pmid=")):
            st, j = c.getj(C + "_fetch", **q)
            tap.ok(st == 200 and [v["name"] for v in j.get("values", [])] ==
                   ["my.req2"], "%s of the u32 derived pmid finds it "
                   "(as pmproxy)" % desc, repr(j)[:300])
        st, j = c.getj("/pmapi/fetch", context=c.ctx, pmids="4292870143")
        tap.ok(st == 200 and [(v["name"], v["pmid"]) for v in
                              j.get("values", [])] ==
               [("my.req2", "511.2047.1023")], "fetch?pmids= of the u32 "
               "derived pmid finds it too, written 511.2047.1023",
               repr(j)[:300])
        st, j = c.getj(C + "_metric", names="my.req2,my.pid1")
        ms = {m["name"]: m for m in j.get("metrics", [])}
        tap.ok(st == 200 and ms.get("my.req2", {}).get("pmid") ==
               4292870143 and ms["my.req2"].get("indom") == 633339905 and
               ms.get("my.pid1", {}).get("pmid") == 4292870142 and
               "indom" not in ms["my.pid1"],
               "_metric: u32 pmid and indom of derived metrics",
               repr(j)[:400])
        st, j = c.getj(C + "_metric", prefix="my")
        tap.ok(st == 200 and sorted(m["name"] for m in j.get("metrics", []))
               == ["my.pid1", "my.req2"],
               "_metric?prefix= of a derived non-leaf lists the visible ones",
               repr(j)[:300])
        st, j = c.getj(C + "_children", prefix="my")
        tap.ok(st == 200 and sorted(j.get("leaf", [])) == ["pid1", "req2"],
               "_children of a derived non-leaf", repr(j))
        st, j = c.getj(C + "_indom", name="my.req2")
        tap.ok(st == 200 and list(j)[0] == "indom" and
               j["indom"] == 633339905 and len(j.get("instances", [])) == 9,
               "_indom of a derived metric: its operands' u32 indom",
               repr(j)[:300])
        for q, code, text, desc in (
                ("_indom?name=my.pid1", -12359, "Unknown or illegal "
                 "instance domain identifier", "_indom of a singular derived "
                 "metric"),
                ("_indom?name=my.gone", -12357, "Unknown metric name",
                 "_indom of a derived metric without its operands"),
                ("_fetch?name=my.gone", -12357, "Unknown metric name",
                 "_fetch?name= of an invisible derived metric"),
                ("_fetch?names=my.gone", -12443, "Insufficient elements in "
                 "list", "_fetch?names= of only an invisible derived metric"),
                ("_fetch?pmids=511.2047.1023", -12443, "Insufficient "
                 "elements in list", "_fetch?pmids= of a derived pmid "
                 "without the derived bit finds nothing (as pmproxy)"),
                ("_children?prefix=my.gone", -12357, "Unknown metric name",
                 "_children of an invisible derived metric"),
                ("_derive?name=my.x&expr=1", -22, "Invalid argument",
                 "_derive: pmwebd had no derived metrics")):
            st, h, b = btd.http("GET", d.url(C + q), timeout=15.0)
            want = "PMWEBD error, code %d: %s" % (code, text)
            tap.ok(st == 400 and b.decode(errors="replace") == want,
                   "%s: %s" % (desc, want), repr(b)[:200])
        tap.ok(d.alive(), "daemon alive")


def main():
    test_vector_flow()
    test_errors_and_forms()
    test_pmwebd_dialect()
    s = os.environ.get("BT_SHARED") or os.path.join(
        os.path.dirname(btd.REPO_ROOT), "shared")
    if os.path.isdir(os.path.join(s, "fixtures")):
        test_operand_disappears(s)
    else:
        tap.skip("operand disappears", "no shared fixtures (set BT_SHARED)")
    tap.done()


main()
