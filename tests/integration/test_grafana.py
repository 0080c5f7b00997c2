#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_grafana.py - grafana-pcp's request flows against bpftraced (TAP).

Each flow replays the requests a generation of the grafana-pcp plugin
sends, in its order and shape (shared/reference/grafana-pcp-protocol.md
section 1), and asserts what that client reads from each answer:

  * HEAD pcp-bpftrace: poller context (hostspec=pcp://127.0.0.1,
    polltimeout=11), register on a temporary context and read the Script
    back, metric metadata with labels (histogram/output/stacks), fetch of
    data + bpftrace.info.scripts_json, indom on new instance ids, the
    editor's tracepoint completion without a context, a changed script
    replacing the old one (deregister flow), "Save & Test" (pmcd.version);
  * OLD (2019) pcp-bpftrace in the pmproxy dialect: context with `source`
    (dialect detection), /pmapi/<ctx>/... paths, the old answer fields
    (name, vars, status, exit_code, output), control-metric polling, a
    failed script, context expiry recovery, "Save & Test" (pmcd.hostname);
  * v1.0.x: deregister by sendBeacon (POST, text/plain body of ids).

bpftrace is tests/lib/fake-bpftrace replaying real 0.17 fixtures, so the
flows are exact and need no root.
"""

import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE


shared = btd.shared_dir


class Grafana:
    def __init__(self, d):
        self.d = d

    def get(self, path, **params):
        q = urllib.parse.urlencode(params)
        st, hdrs, body = btd.http("GET", self.d.url(
            path + ("?" + q if q else "")), timeout=6.0,
            headers={"Origin": "http://grafana:3000",
                     "Content-Type": "application/json"})
        try:
            j = json.loads(body)
        except ValueError:
            j = None
        return st, hdrs, j


def fetched(j):
    return {v["name"]: v["instances"] for v in (j or {}).get("values", [])}


def head_flow(d):
    g = Grafana(d)
    st, h, j = g.get("/pmapi/context", hostspec="pcp://127.0.0.1",
                     polltimeout=11)
    tap.ok(st == 200 and isinstance(j.get("context"), int) and
           "labels" in j and h.get("access-control-allow-origin"),
           "HEAD #1: poller context for hostspec=pcp://127.0.0.1 (CORS "
           "allowed for the browser)", repr(j)[:200])
    c1 = j["context"]
    code = ("// fixture: hist_global\n// fake: hold\n"
            "tracepoint:a:b { @h = hist(1); }\n")
    st, _, j = g.get("/pmapi/context", hostspec="pcp://127.0.0.1",
                     polltimeout=30)
    t = j["context"]
    g.get("/pmapi/store", context=t, name="bpftrace.control.register",
          value=code)
    st, _, j = g.get("/pmapi/fetch", context=t,
                     names="bpftrace.control.register")
    script = json.loads(fetched(j)["bpftrace.control.register"][0]["value"])
    sid = script["script_id"]
    tap.ok(script["state"]["status"] in ("starting", "started") and
           script["variables"]["@h"]["metrictype"] == "histogram" and
           script["metadata"]["name"] is None,
           "HEAD #5: register on a temporary context, Script read back "
           "(script_id, variables with metrictype, state.status)",
           repr(script)[:300])
    m = "bpftrace.scripts.%s.data.h" % sid
    st, _, j = g.get("/pmapi/metric", context=c1, names=m)
    md = j["metrics"][0]
    tap.ok(md["name"] == m and "indom" in md and md["type"] == "u64" and
           md["sem"] == "counter" and md["labels"]["metrictype"] ==
           "histogram", "HEAD #2: metadata: indom, u64 counter, "
           "labels.metrictype=histogram", repr(md)[:300])
    # scripts_json says "started" a moment after the first values (it is
    # republished on the main loop's tick): wait for both, under load too
    deadline = time.monotonic() + 6
    vals, sj = [], []
    while time.monotonic() < deadline and not (vals and any(
            s["script_id"] == sid and s["state"]["status"] == "started"
            for s in sj)):
        st, _, j = g.get("/pmapi/fetch", context=c1,
                         names=m + ",bpftrace.info.scripts_json")
        f = fetched(j)
        vals = f.get(m, [])
        sj = json.loads(f["bpftrace.info.scripts_json"][0]["value"])
        time.sleep(0.2)
    tap.ok(isinstance(j["timestamp"], float) and vals and
           any(s["script_id"] == sid and s["state"]["status"] == "started"
               for s in sj), "HEAD #3/#7: fetch of data + scripts_json: "
           "float timestamp, values, the script started", repr(j)[:300])
    st, _, j = g.get("/pmapi/indom", context=c1, name=m)
    names = {i["instance"]: i["name"] for i in j["instances"]}
    tap.ok(all(v["instance"] in names for v in vals) and
           all("-" in n for n in names.values()) and "labels" in j,
           "HEAD #4: indom names every fetched instance with a low-high "
           "bucket (heatmap reads the upper bound)", repr(names)[:200])
    code = ("// name: kst\n// fixture: stack_keys\n// fake: hold\n"
            "profile:hz:99 { @st[kstack] = count(); }\n")
    g.get("/pmapi/store", context=t, name="bpftrace.control.register",
          value=code)
    st, _, j = g.get("/pmapi/fetch", context=t,
                     names="bpftrace.control.register")
    script = json.loads(fetched(j)["bpftrace.control.register"][0]["value"])
    st, _, j = g.get("/pmapi/metric", context=c1,
                     names="bpftrace.scripts.kst.data.st")
    md = (j.get("metrics") or [{}])[0]
    deadline = time.monotonic() + 6
    names = {}
    while time.monotonic() < deadline and not names:
        st, _, j = g.get("/pmapi/indom", context=c1,
                         name="bpftrace.scripts.kst.data.st")
        names = {i["name"] for i in j.get("instances", [])}
        time.sleep(0.2)
    tap.ok(script["variables"]["@st"]["metrictype"] == "stacks" and
           md.get("labels", {}).get("metrictype") == "stacks" and names and
           all(n.startswith("\n    ") for n in names),
           "HEAD flame graph: kstack-keyed count() is metrictype=stacks and "
           "its instance names are the raw stacks", repr(sorted(names))[:200])
    g.get("/pmapi/store", context=t, name="bpftrace.control.deregister",
          value="kst")
    # a changed script in the same panel: deregister the old, register new
    st, _, j = g.get("/pmapi/context", hostspec="pcp://127.0.0.1",
                     polltimeout=30)
    t2 = j["context"]
    g.get("/pmapi/store", context=t2, name="bpftrace.control.deregister",
          value=sid)
    st, _, j = g.get("/pmapi/fetch", context=t2,
                     names="bpftrace.control.deregister")
    ans = json.loads(fetched(j)["bpftrace.control.deregister"][0]["value"])
    st, _, j = g.get("/pmapi/fetch", context=c1, names=m)
    tap.ok(ans == {"success": "true"} and not fetched(j),
           "HEAD #6: deregister answer parses; the old script's data is gone "
           "(no orphan)", repr(ans))
    st, _, j = g.get("/pmapi/fetch", hostspec="pcp://127.0.0.1",
                     names="bpftrace.info.tracepoints")
    tp = fetched(j).get("bpftrace.info.tracepoints", [{}])[0].get("value")
    tap.ok(isinstance(tp, str) and "tracepoint:sched:sched_switch" in
           tp.split(","), "HEAD #9: tracepoint completion without a "
           "context", repr(tp)[:100])
    st, _, j = g.get("/pmapi/context", hostspec="pcp://127.0.0.1",
                     polltimeout=30)
    st, _, j = g.get("/pmapi/fetch", context=j["context"],
                     names="pmcd.version")
    v = fetched(j)["pmcd.version"][0]["value"]
    tap.ok(isinstance(v, str) and v[0].isdigit(),
           "HEAD #12: Save & Test reads pmcd.version (%s)" % v)
    st, _, j = g.get("/pmapi/fetch", context=c1,
                     names="bpftrace.info.scripts_json")
    tap.ok(fetched(j)["bpftrace.info.scripts_json"],
           "scripts_json is never an empty instance list (the client reads "
           "instances[0])")


def old_flow(d):
    g = Grafana(d)
    st, _, j = g.get("/pmapi/context", hostspec="127.0.0.1", polltimeout=30)
    tap.ok("source" in j, "OLD #1: the context answer has `source`, so the "
           "2019 client picks the pmproxy dialect")
    ctx = j["context"]
    st, _, j = g.get("/pmapi/context", hostspec="127.0.0.1", polltimeout=30)
    tmp = j["context"]
    code = ("// fixture: printf_csv\n// fake: hold\n"
            "// table-retain-lines: 10\n"
            "BEGIN { printf(\"comm,pid,value\\n\"); }\n")
    g.get("/pmapi/%d/store" % tmp, name="bpftrace.control.register",
          value=code)
    st, _, j = g.get("/pmapi/%d/fetch" % tmp,
                     names="bpftrace.control.register")
    ans = json.loads(fetched(j)["bpftrace.control.register"][0]["value"])
    tap.ok(isinstance(ans.get("name"), str) and ans.get("vars") ==
           ["output"] and ans.get("status") in ("starting", "started") and
           "exit_code" in ans and "output" in ans,
           "OLD #7: answer has name, vars (no @), status, exit_code, output",
           repr({k: ans.get(k) for k in ("name", "vars", "status",
                                         "exit_code", "output")}))
    name = ans["name"]
    ctl = ["bpftrace.scripts.%s.%s" % (name, x)
           for x in ("status", "exit_code", "output")]
    st, _, j = g.get("/pmapi/%d/metric" % ctx, names=",".join(ctl))
    got = [m["name"] for m in j.get("metrics", []) if "pmid" in m]
    labels = [m.get("labels", {}) for m in j.get("metrics", [])]
    tap.ok(got == ctl and all(lb.get("agent") == "bpftrace" and
                              lb.get("metrictype") == "control"
                              for lb in labels),
           "OLD #3: the control metrics status, exit_code, output exist with "
           "agent=bpftrace, metrictype=control", repr(got))
    deadline = time.monotonic() + 6
    out = ""
    while time.monotonic() < deadline and "," not in out:
        st, _, j = g.get("/pmapi/%d/fetch" % ctx, names=",".join(
            ctl + ["bpftrace.scripts.%s.data.output" % name]))
        f = fetched(j)
        out = (f.get("bpftrace.scripts.%s.data.output" % name) or
               [{}])[0].get("value", "")
        time.sleep(0.2)
    tap.ok(f[ctl[0]][0]["value"] == "started" and out.startswith(
        "comm,pid,value\n") and out.count("\n") <= 11,
           "OLD #5: polling status and the CSV output (header + at most 10 "
           "rows) for the table panel", repr(out)[:200])
    st, _, j = g.get("/pmapi/%d/store" % tmp,
                     name="bpftrace.control.register",
                     value="tracepoint:sched:sched_switch { }")
    st2, _, j2 = g.get("/pmapi/%d/fetch" % tmp,
                       names="bpftrace.control.register")
    bad = json.loads(fetched(j2)["bpftrace.control.register"][0]["value"])
    tap.ok("Bad input" in j.get("message", "") and bad.get("status") ==
           "stopped" and bad.get("exit_code") != 0 and bad.get("output"),
           "OLD: a refused script reads back as stopped with a non-zero "
           "exit code and the reason (the client marks it failed)",
           repr(bad)[:300])
    st, _, j = g.get("/pmapi/12345/fetch", names=ctl[0])
    tap.ok(st >= 400 and "unknown context identifier" in j.get("message",
                                                               ""),
           "OLD: an expired context says 'unknown context identifier' (the "
           "client creates a new one and retries)")
    st, _, j = g.get("/pmapi/context", hostspec="127.0.0.1", polltimeout=30)
    st, _, j = g.get("/pmapi/%d/fetch" % j["context"], names="pmcd.hostname")
    tap.ok(st == 200 and fetched(j)["pmcd.hostname"][0]["value"],
           "OLD #10: Save & Test fetches pmcd.hostname")
    return name


def beacon_flow(d, name):
    g = Grafana(d)
    st, _, j = g.get("/pmapi/context", hostspec="127.0.0.1", polltimeout=30)
    ctx = j["context"]
    st, _, body = btd.http(
        "POST", d.url("/pmapi/%d/store?name=bpftrace.control.deregister"
                      % ctx), body=name.encode(),
        headers={"Content-Type": "text/plain;charset=UTF-8"})
    st2, _, j = g.get("/pmapi/metric", name="bpftrace.scripts.%s.status" %
                      name)
    tap.ok(st == 200 and st2 == 400, "v1.0.x: sendBeacon POST deregister "
           "with the ids as a text/plain body works", body[:200])


def browser_auth_flow(sh):
    """Grafana in browser access mode with Basic auth: the preflight must
    allow the Authorization header and credentials, and the answers must
    name the Origin (a browser refuses "*" with credentials)."""
    import subprocess
    import tempfile
    users = os.path.join(tempfile.mkdtemp(prefix="btd-users-"), "users")
    pw = subprocess.run([os.environ.get("BPFTRACED_PASSWD", os.path.join(
        btd.REPO_ROOT, "src", "bpftraced-passwd")), "grafana"],
        input=b"secret\n", capture_output=True)
    if pw.returncode != 0:
        tap.skip("browser mode with Basic auth", "bpftraced-passwd failed")
        return
    with open(users, "wb") as f:
        f.write(pw.stdout)
    os.chmod(users, 0o600)
    import base64
    cred = "Basic " + base64.b64encode(b"grafana:secret").decode()
    origin = "http://grafana.example:3000"
    with btd.Daemon(["--control", "auth", "--auth-file", users,
                     "--allow-origin", origin,
                     "--bpftrace", FAKE], env={"BT_SHARED": sh}) as d:
        st, h, _ = btd.http("OPTIONS", d.url(
            "/pmapi/store?name=bpftrace.control.register&value=x"), headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        tap.ok(st == 200 and "Authorization" in
               h.get("access-control-allow-headers", "") and
               h.get("access-control-allow-credentials") == "true" and
               h.get("access-control-allow-origin") == origin,
               "browser preflight allows Authorization with credentials",
               repr(h))
        st, h, body = btd.http("GET", d.url(
            "/pmapi/context?hostspec=pcp://127.0.0.1&polltimeout=11"),
            headers={"Origin": origin, "Authorization": cred})
        tap.ok(st == 200 and h.get("access-control-allow-origin") == origin
               and h.get("access-control-allow-credentials") == "true",
               "a credentialed answer names the Origin, not *", repr(h))
        st, h, body = btd.http("GET", d.url("/pmapi/context"),
                               headers={"Origin": origin})
        tap.ok(h.get("access-control-allow-origin") == "*",
               "without credentials the answer stays pmproxy's '*'")
        # a page elsewhere riding the browser's cached Basic credentials
        evil = "http://evil.example"
        st, h, _ = btd.http("OPTIONS", d.url(
            "/pmapi/context"), headers={
            "Origin": evil, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        tap.ok(st == 200 and h.get("access-control-allow-origin") == "*" and
               "access-control-allow-credentials" not in h and
               "Authorization" not in h.get("access-control-allow-headers",
                                            ""),
               "a preflight from an origin not allowed neither names it "
               "nor allows credentials", repr(h))
        st, h, _ = btd.http("GET", d.url("/pmapi/context"), headers={
            "Origin": evil, "Authorization": cred})
        tap.ok(h.get("access-control-allow-origin") == "*" and
               "access-control-allow-credentials" not in h,
               "a credentialed answer to an origin not allowed is '*' "
               "(unreadable to the page)", repr(h))


def main():
    sh = shared()
    if sh is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    # the flows send Origin: http://grafana:3000 (browser access mode),
    # which the operator allows; bpftraced refuses stores from other origins
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE,
                     "--allow-origin", "http://grafana:3000",
                     "--print-interval", "300"], env={"BT_SHARED": sh}) as d:
        head_flow(d)
        name = old_flow(d)
        beacon_flow(d, name)
        tap.ok(d.alive(), "daemon alive after the flows")
    browser_auth_flow(sh)
    tap.done()


if __name__ == "__main__":
    main()
