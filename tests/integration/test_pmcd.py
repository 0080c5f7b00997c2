#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_pmcd.py - pmcd passthrough (--pmcd) of a real bpftraced (TAP).

Needs Debian's pcp: the local pmcd is started by the test when it is not
running (every check is skipped, with the reason, when pmcd is not
installed or cannot start). Checks, for kernel.all.load, hinv.ncpu,
kernel.all.cpu.user and disk.dev.read: /pmapi/metric, fetch, indom and
children through bpftraced have pmproxy's shape (the live pmproxy on
$PMPROXY_URL when it answers, asked one request at a time; else pminfo)
and the same values for constants; a mixed fetch (bpftrace.* + kernel.*)
is one answer with one timestamp; derived metrics over pmcd metrics;
profiles; --pmcd off; pmcd stopped (bpftrace metrics still served,
kernel.* answers carry pmproxy's error texts) and started again (answers
come back without restarting bpftraced). pmcd is always started again in
a finally block. Other tests may restart pmcd concurrently: the "pmcd
up" checks poll for a few seconds before failing.
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())

INIT = "/etc/init.d/pmcd"
PMINFO = shutil.which("pminfo")
PMPROXY = os.environ.get("PMPROXY_URL", "http://127.0.0.1:44322")
# pmproxy 6.0.3's answers when pmcd is gone (recorded from the live one):
# the request that finds the connection broken, the ones during libpcp's
# reconnect backoff or after a failed reconnect, a context that never
# connected.
PMCD_DOWN_TEXTS = ("IPC protocol failure", "cannot reconnect context: ",
                   "cannot connect to PMCD: ")


def pmcd_answers():
    if PMINFO is None:
        return False
    try:
        r = subprocess.run([PMINFO, "-f", "hinv.ncpu"], capture_output=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and b"value" in r.stdout


def pmcd_ctl(action):
    try:
        subprocess.run([INIT, action], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass


def pmcd_start(wait=40.0):
    """pmcd answering twice, 1 s apart; started again while it does not
    (a slow stop of a loaded machine may finish after the stop's wait)."""
    end = time.time() + wait
    while time.time() < end:
        if pmcd_answers():
            time.sleep(1.0)
            if pmcd_answers():
                return True
        pmcd_ctl("start")
        time.sleep(0.5)
    return pmcd_answers()


if PMINFO is None or not os.access(INIT, os.X_OK):
    btd.Tap.skip_all("pcp is not installed (no pminfo or %s)" % INIT)
if not pmcd_start():
    btd.Tap.skip_all("the local pmcd cannot be started (%s start)" % INIT)


def pmproxy_live():
    try:
        st, _, body = btd.http("GET", PMPROXY + "/pmapi/context",
                               timeout=3.0)
        if st != 200:
            return False
        _, _, body = btd.http("GET", PMPROXY + "/pmapi/bogus", timeout=3.0)
    except Exception:
        return False
    return b"<i>pmproxy/" in body


def pmproxy_get(path):
    """(status, JSON) from pmproxy: one connection per request."""
    st, _, body = btd.http("GET", PMPROXY + path, timeout=10.0)
    try:
        return st, json.loads(body.decode("utf-8"))
    except ValueError:
        return st, None


def shape(v):
    """The JSON shape: types and keys, not values (labels: a map)."""
    if isinstance(v, dict):
        return {k: ("map" if k == "labels" else shape(x))
                for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def no_agent(labels):
    return {k: v for k, v in labels.items() if k != "agent"}


def poll(fn, timeout=15.0, step=0.5):
    """fn() until it returns a true value or the time is up."""
    end = time.time() + timeout
    while True:
        r = fn()
        if r or time.time() >= end:
            return r
        time.sleep(step)


LIVE = pmproxy_live()
tap.diag("reference: %s" % ("live pmproxy " + PMPROXY if LIVE else
                            "pminfo (no pmproxy answering)"))
METRICS = ("kernel.all.load", "hinv.ncpu", "kernel.all.cpu.user",
           "disk.dev.read")

d = btd.Daemon(pmcd=None)       # the default: the local pmcd
try:
    st, obj, _ = d.get_json("/pmapi/context")
    ctx = obj["context"]

    # ---- metric / indom / children against pmproxy --------------------
    for name in METRICS:
        st, ours, _ = d.get_json("/pmapi/metric?name=" + name)
        ok = st == 200 and ours and len(ours.get("metrics", ())) == 1
        tap.check(ok, "metric %s: 200, one metric" % name,
               lambda: "%s %r" % (st, ours))
        if not ok:
            continue
        m = ours["metrics"][0]
        if LIVE:
            pst, ref = pmproxy_get("/pmapi/metric?name=" + name)
            r = ref["metrics"][0] if pst == 200 and ref else {}
            tap.check(shape(r) == shape(m), "metric %s: pmproxy's shape" % name,
                   lambda: "pmproxy %r\nours %r" % (shape(r), shape(m)))
            same = {k: (r.get(k), m.get(k)) for k in
                    ("name", "pmid", "indom", "type", "sem", "units",
                     "text-oneline", "text-help", "labels")
                    if r.get(k) != m.get(k)}
            tap.check(not same, "metric %s: pmproxy's descriptor, texts and "
                   "labels" % name, lambda: repr(same))
        else:
            r = subprocess.run([PMINFO, "-d", name], capture_output=True,
                               text=True).stdout
            tap.check(("Data Type: %s" % {"float": "float", "u32": "32-bit "
                    "unsigned int", "u64": "64-bit unsigned int"}
                    .get(m["type"], "?")) in r,
                   "metric %s: pminfo's type" % name, lambda: r)

    st, ours, _ = d.get_json("/pmapi/fetch?names=hinv.ncpu")
    ncpu = ours["values"][0]["instances"][0]["value"] if st == 200 else None
    if LIVE:
        pst, ref = pmproxy_get("/pmapi/fetch?names=hinv.ncpu")
        rn = ref["values"][0]["instances"][0]["value"] if ref else None
        tap.check(shape(ref) == shape(ours), "fetch hinv.ncpu: pmproxy's shape",
               lambda: "%r\n%r" % (ref, ours))
    else:
        out = subprocess.run([PMINFO, "-f", "hinv.ncpu"], capture_output=True,
                             text=True).stdout
        rn = int(out.split("value")[-1].split()[0]) if "value" in out \
            else None
    tap.check(ncpu is not None and ncpu == rn, "fetch hinv.ncpu: %r (reference "
           "%r)" % (ncpu, rn))

    for name in ("kernel.all.load", "disk.dev.read"):
        st, ours, _ = d.get_json("/pmapi/indom?name=" + name)
        names = sorted(i["name"] for i in ours.get("instances", ())) \
            if st == 200 and ours else None
        if LIVE:
            pst, ref = pmproxy_get("/pmapi/indom?name=" + name)
            rnames = sorted(i["name"] for i in ref.get("instances", ()))
            # pmproxy shows the agent label of an indom only once a metric
            # of that agent was described in the context (Vector's order);
            # bpftraced always does: compared without it
            tap.check(shape(ref) == shape(ours) and
                   no_agent(ref["labels"]) == no_agent(ours["labels"]) and
                   ref["text-oneline"] == ours["text-oneline"],
                   "indom %s: pmproxy's shape, labels and texts" % name,
                   lambda: "%r\n%r" % (ref, ours))
        else:
            out = subprocess.run([PMINFO, "-f", name], capture_output=True,
                                 text=True).stdout
            rnames = sorted(l.split(' or "', 1)[1].split('"]')[0]
                            for l in out.splitlines() if ' or "' in l)
        tap.check(names == rnames, "indom %s: instance names %s" % (name, names),
               lambda: "reference %r" % rnames)

    st, ours, _ = d.get_json("/pmapi/children?prefix=kernel.all")
    if LIVE:
        pst, ref = pmproxy_get("/pmapi/children?prefix=kernel.all")
        tap.check(st == 200 and {k: v for k, v in ours.items() if k != "context"}
               == {k: v for k, v in ref.items() if k != "context"},
               "children kernel.all: pmproxy's lists",
               lambda: "%r\n%r" % (ref, ours))
    else:
        tap.check(st == 200 and "load" in ours["leaf"] and "cpu" in
               ours["nonleaf"], "children kernel.all: load, cpu")
    st, ours, _ = d.get_json("/pmapi/children")
    tap.check(st == 200 and "bpftrace" in ours["nonleaf"] and "kernel" in
           ours["nonleaf"] and ours["nonleaf"].count("pmcd") == 1,
           "children of the root: bpftrace next to pmcd's roots, pmcd once",
           lambda: repr(ours))
    st, ours, _ = d.get_json("/pmapi/metric?name=pmcd.hostname")
    tap.check(st == 200 and ours["metrics"][0]["labels"].get("agent") == "pmcd",
           "pmcd.hostname comes from pmcd when there is one",
           lambda: repr(ours))

    # ---- one fetch, both sides -----------------------------------------
    st, ours, body = d.get_json("/pmapi/%d/fetch?names=bpftrace.daemon.pid,"
                                "kernel.all.load,hinv.ncpu" % ctx)
    names = [v["name"] for v in ours["values"]] if st == 200 else []
    tap.check(names == ["bpftrace.daemon.pid", "kernel.all.load", "hinv.ncpu"]
           and body.count(b'"timestamp"') == 1,
           "mixed fetch: one answer, one timestamp, request order",
           lambda: body[:600])
    st, ours, _ = d.get_json("/pmapi/%d/fetch?pmids=151.2.6,60.0.32" % ctx)
    tap.check(st == 200 and [v["pmid"] for v in ours["values"]] ==
           ["151.2.6", "60.0.32"], "mixed fetch by pmid",
           lambda: repr(ours))
    st, ours, _ = d.get_json("/pmapi/%d/_fetch?names=hinv.ncpu,"
                             "bpftrace.daemon.pid" % ctx)
    tap.check(st == 200 and ours["values"][0]["pmid"] == 251658272 and
           ours["values"][0]["instances"][0]["instance"] == -1,
           "pmwebd dialect: u32 pmid, instance -1", lambda: repr(ours))

    # ---- derived over pmcd metrics -------------------------------------
    st, obj, _ = d.get_json("/pmapi/%d/derive?name=t.ncpu2&expr=hinv.ncpu*2"
                            % ctx)
    tap.check(st == 200 and obj.get("success"), "derive over hinv.ncpu",
           lambda: repr(obj))
    st, obj, _ = d.get_json("/pmapi/%d/derive?name=t.mix&expr=hinv.ncpu%%2B"
                            "bpftrace.info.scripts_total" % ctx)
    vals = d.fetch_values("t.ncpu2,t.mix,hinv.ncpu", ctx=ctx)
    tap.check(vals.get("t.ncpu2", {}).get(None) == 2 * ncpu and
           vals.get("t.mix", {}).get(None) == ncpu,
           "derived values: hinv.ncpu*2, hinv.ncpu + a bpftrace metric",
           lambda: repr(vals))
    st, obj, _ = d.get_json("/pmapi/%d/derive?name=t.load&expr=kernel.all."
                            "load*1" % ctx)
    st, obj, _ = d.get_json("/pmapi/%d/indom?name=t.load" % ctx)
    tap.check(st == 200 and obj["indom"] == "60.2" and
           len(obj["instances"]) == 3,
           "indom of a derived metric over kernel.all.load", lambda: repr(obj))

    # ---- profiles ------------------------------------------------------
    for q in ("expr=del&indom=60.2",
              "expr=add&indom=60.2&iname=5%20minute"):
        st, obj, _ = d.get_json("/pmapi/%d/profile?%s" % (ctx, q))
    vals = d.fetch_values("kernel.all.load,t.load", ctx=ctx)
    tap.check(list(vals.get("kernel.all.load", {})) == [5] and
           list(vals.get("t.load", {})) == [5],
           "profile: only the 5 minute instance, derived too",
           lambda: repr(vals))
finally:
    d.stop()

# ---- --pmcd off ------------------------------------------------------------
with btd.Daemon() as off:      # btd's default: --pmcd off
    st, obj, _ = off.get_json("/pmapi/metric?name=kernel.all.load")
    tap.check(st == 400 and "Unknown metric name" in obj.get("message", ""),
           "--pmcd off: kernel.all.load is unknown", lambda: repr(obj))
    st, obj, _ = off.get_json("/pmapi/metric?name=pmcd.hostname")
    tap.check(st == 200 and obj["metrics"][0]["labels"].get("agent") ==
           "bpftrace", "--pmcd off: pmcd.hostname is ours",
           lambda: repr(obj))

# ---- pmcd stopped, then started again ---------------------------------------
# (the conformance run holds the shared lock while it needs pmcd)
lock = btd.pmcd_lock(exclusive=True)
lock.__enter__()
d = btd.Daemon(pmcd="localhost")
try:
    st, obj, _ = d.get_json("/pmapi/context")
    ctx = obj["context"]
    tap.check(poll(lambda: d.get_json("/pmapi/%d/fetch?names=hinv.ncpu" % ctx)[0]
                == 200), "pmcd up: hinv.ncpu served")
    pmcd_ctl("stop")
    down = poll(lambda: not pmcd_answers(), timeout=30)
    if not down:
        tap.skip("pmcd stopped", "pmcd did not stop (%s stop)" % INIT)
    else:
        msgs = []
        for path in ("fetch?names=kernel.all.load", "fetch?names=hinv.ncpu",
                     "metric?name=kernel.all.load",
                     "indom?name=kernel.all.load",
                     "children?prefix=kernel.all"):
            st, obj, _ = d.get_json("/pmapi/%d/%s" % (ctx, path))
            msgs.append((path, st, (obj or {}).get("message")))
        tap.check(all(st == 400 and m and m.startswith(PMCD_DOWN_TEXTS)
                   for _, st, m in msgs),
               "pmcd stopped: kernel.* answers carry pmproxy's error texts",
               lambda: repr(msgs))
        tap.diag("texts: %s" % sorted({m for _, _, m in msgs if m}))
        vals = d.fetch_values("bpftrace.daemon.pid,kernel.all.load", ctx=ctx)
        tap.check(list(vals) == ["bpftrace.daemon.pid"],
               "pmcd stopped: bpftrace metrics still served (mixed fetch)",
               lambda: repr(vals))
        st, obj, _ = d.get_json("/pmapi/%d/metric?name=pmcd.hostname" % ctx)
        tap.check(st == 200 and obj["metrics"][0]["labels"]["agent"] ==
               "bpftrace", "pmcd stopped: pmcd.hostname is ours again",
               lambda: repr(obj))
        # a list: one name alone answers as name= (400, pmproxy's text)
        st, obj, _ = d.get_json("/pmapi/%d/metric?names=hinv.ncpu,"
                                "kernel.all.load" % ctx)
        tap.check(st == 200 and obj["metrics"][0]["message"]
               .startswith(PMCD_DOWN_TEXTS),
               "pmcd stopped: names= lists pmcd's error per name",
               lambda: repr(obj))
finally:
    pmcd_start()
    lock.__exit__(None, None, None)
try:
    back = poll(lambda: d.get_json("/pmapi/%d/fetch?names=hinv.ncpu" % ctx)[0]
                == 200, timeout=20)
    tap.check(back and pmcd_answers(), "pmcd back: kernel.* served again "
           "without restarting bpftraced")
    tap.check(d.alive(), "bpftraced still running")
finally:
    d.stop()
tap.done()
