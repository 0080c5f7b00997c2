#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_dashboards.py - the sample Grafana dashboards and provisioning
files in web/grafana/ (TAP).

Checks that every dashboard is valid JSON in the shape Grafana imports
(uid, title, schemaVersion, panels with gridPos and targets), that every
target uses grafana-pcp's bpftrace data source with a format that client
supports, that the checked-in JSON is what make-dashboards.py writes, and
then - with real bpftrace, as root - that every script in them registers
and produces data for the variable its panel format shows (while the
test makes syscalls, disk I/O, TCP connections and processes happen).
"""

import glob
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
GRAFANA = os.path.join(btd.REPO_ROOT, "web", "grafana")
FORMATS = {"time_series", "heatmap", "csv_table", "flamegraph"}
DS_TYPE = "performancecopilot-bpftrace-datasource"


def targets(dash):
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            yield p, t


def check_files():
    paths = sorted(glob.glob(os.path.join(GRAFANA, "dashboards", "*.json")))
    tap.ok(paths, "web/grafana/dashboards has dashboards", repr(paths))
    dashes = []
    for p in paths:
        name = os.path.basename(p)
        try:
            d = json.load(open(p))
        except ValueError as e:
            tap.ok(False, "%s is valid JSON" % name, str(e))
            continue
        ok = (isinstance(d.get("uid"), str) and d.get("title") and
              isinstance(d.get("schemaVersion"), int) and
              all("gridPos" in x and "type" in x for x in d["panels"]))
        tap.ok(ok, "%s: uid, title, schemaVersion, panels with gridPos" %
               name)
        ts = list(targets(d))
        tap.ok(ts and all(t["datasource"]["type"] == DS_TYPE and
                          t.get("format") in FORMATS and t.get("expr") and
                          t.get("refId") for _, t in ts),
               "%s: %d targets, each with the bpftrace data source, a "
               "supported format, refId and a script" % (name, len(ts)))
        dashes.append((name, d))
    gen = os.path.join(GRAFANA, "make-dashboards.py")
    tmp = tempfile.mkdtemp(prefix="btd-dash-")
    r = subprocess.run([sys.executable, "-c", (
        "import runpy,sys,os; sys.argv=['x']; "
        "m = runpy.run_path(%r); import json; "
        "print(json.dumps(m['dashboard'](), indent=2, ensure_ascii=False))")
        % gen], capture_output=True, text=True)
    want = json.load(open(os.path.join(
        GRAFANA, "dashboards", "bpftraced-system-analysis.json")))
    tap.ok(r.returncode == 0 and json.loads(r.stdout) == want,
           "the checked-in dashboard is what make-dashboards.py writes",
           r.stderr[-300:])
    for y in glob.glob(os.path.join(GRAFANA, "provisioning", "*", "*.yaml")):
        text = open(y).read()
        ok = text.startswith("#") and "apiVersion: 1" in text
        if "datasources" in y:
            ok = ok and DS_TYPE in text and "http://localhost:44322" in text
        tap.ok(ok, "provisioning %s: apiVersion 1%s" % (
            os.path.relpath(y, GRAFANA), ", bpftrace data source at "
            "localhost:44322" if "datasources" in y else ""))
    del tmp
    return dashes


def bpftrace_usable():
    if os.geteuid() != 0:
        return "not root"
    try:
        p = subprocess.run([btd.BT_BPFTRACE or "bpftrace", "-e",
                            "BEGIN { exit(); }"],
                           capture_output=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired) as e:
        return "bpftrace unavailable: %s" % e
    return None if p.returncode == 0 else "bpftrace cannot run here"


def load(d, seconds):
    """Make every kind of event the panels trace happen."""
    end = time.monotonic() + seconds
    f = tempfile.NamedTemporaryFile(dir="/var/tmp", delete=False)
    try:
        while time.monotonic() < end:
            subprocess.run(["/bin/true"])
            s = socket.create_connection(("127.0.0.1", d.port))
            s.close()
            os.write(f.fileno(), os.urandom(65536))
            os.fsync(f.fileno())
            time.sleep(0.1)
    finally:
        f.close()
        os.unlink(f.name)


def pick_var(ans, fmt):
    vs = ans["variables"]
    if fmt == "heatmap":
        return next(v for v in vs if vs[v]["metrictype"] == "histogram")
    if fmt == "csv_table":
        return next(v for v in vs if vs[v]["metrictype"] == "output")
    return next(iter(vs))


def run_scripts(dashes):
    with btd.Daemon(["--control", "loopback", "--max-output-rate", "0"]) \
            as d:
        _, _, body = btd.http("GET", d.url("/pmapi/context?polltimeout=120"))
        ctx = json.loads(body)["context"]

        def getj(path, **p):
            p["context"] = ctx
            st, _, b = btd.http("GET", d.url(path + "?" +
                                             urllib.parse.urlencode(p)))
            return json.loads(b)

        regs = []
        for name, dash in dashes:
            for p, t in targets(dash):
                getj("/pmapi/store", name="bpftrace.control.register",
                     value=t["expr"])
                j = getj("/pmapi/fetch", names="bpftrace.control.register")
                ans = json.loads(j["values"][0]["instances"][0]["value"])
                regs.append((name, p["title"], t["format"], ans))
        load(d, 4)
        for name, title, fmt, ans in regs:
            sid = ans.get("script_id")
            var = pick_var(ans, fmt)[1:] or "root"
            m = "bpftrace.scripts.%s.data.%s" % (sid, var)
            deadline = time.monotonic() + 6
            inst = []
            while time.monotonic() < deadline and not inst:
                j = getj("/pmapi/fetch", names=m + ",bpftrace.scripts.%s."
                         "status" % sid)
                vals = {v["name"]: v["instances"] for v in j["values"]}
                inst = [i for i in vals.get(m, [])
                        if i["value"] not in ("", 0)]
                if fmt == "csv_table" and inst and \
                        inst[0]["value"].count("\n") < 2:
                    inst = []       # header only so far
                time.sleep(0.3)
            st = (vals.get("bpftrace.scripts.%s.status" % sid) or
                  [{}])[0].get("value")
            tap.ok(st == "started" and inst, "%s / %s: the script runs and "
                   "@%s has data (%s)" % (name, title, var, fmt),
                   "status=%r values=%r" % (st, repr(inst)[:200]))


def main():
    dashes = check_files()
    why = bpftrace_usable()
    if why:
        tap.skip("every dashboard script registers and produces data", why)
    else:
        run_scripts(dashes)
    tap.done()


if __name__ == "__main__":
    main()
