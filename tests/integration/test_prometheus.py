#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_prometheus.py - the real Prometheus tools against /metrics (TAP).

promtool (Debian's prometheus package, 2.42) checks both forms:
  - the text form: no parse error, and the only lints are the ones
    pmproxy's own /metrics has for the same pmcd metrics (a PCP counter
    without "_total") plus bpftraced's own gauge bpftrace.info.scripts_total;
  - the OpenMetrics form: promtool 2.42 reads only the text format, so it
    must parse it without error; its counters are checked to be counter
    families of NAME_total samples.
Then a real Prometheus server (its own config and data directory, a free
port, 1 s scrapes) scrapes bpftraced for 30 s while a bpftrace script with
an interval probe, a count() and a hist() runs (real bpftrace as root,
tests/lib/fake-bpftrace replaying a recorded hist() otherwise); through
its HTTP API: the target is up, rate() over a counter is positive and
histogram_quantile() over the bpftrace hist is a number inside the
histogram's range. Skips with the reason when promtool or prometheus is
missing.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
import openmetrics  # noqa: E402

BIN = btd.default_binary()
SHARED = os.environ.get("BT_SHARED") or os.path.join(
    os.path.dirname(btd.REPO_ROOT), "shared")
FIX = os.path.join(SHARED, "fixtures", "bpftrace-0.17")
OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
PMPROXY = "http://127.0.0.1:44322"
PMCD_NAMES = "kernel.all,hinv.ncpu"
SCRAPE_SECONDS = 30

tap = btd.Tap()
if not os.access(BIN, os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % BIN)
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
if not PROMTOOL and not PROMETHEUS:
    btd.Tap.skip_all("neither promtool nor prometheus is installed "
                     "(Debian: apt-get install prometheus)")


def promtool(text):
    """(exit code, lint lines, parse error or None)"""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                       capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode(errors="replace")
    err = [ln for ln in out.splitlines() if "error while linting" in ln]
    lints = [ln for ln in out.splitlines()
             if ln.strip() and "error while linting" not in ln]
    return p.returncode, lints, (err[0] if err else None)


def get(d, path, accept=None):
    return btd.http("GET", d.url(path), headers={"Accept": accept}
                    if accept else {}, timeout=30.0)


def check_promtool(d, pmcd):
    names = "bpftrace" + ("," + PMCD_NAMES if pmcd else "")
    st, _, text = get(d, "/metrics?names=" + names)
    rc, lints, err = promtool(text)
    tap.ok(st == 200 and err is None, "promtool parses the text form "
           "(names=%s)" % names, err)
    ours = {ln.split()[0] for ln in lints
            if ln.endswith('counter metrics should have "_total" suffix')}
    other = [ln for ln in lints if not ln.endswith(
        'counter metrics should have "_total" suffix') and ln !=
        'bpftrace_info_scripts_total non-counter metrics should not have '
        '"_total" suffix']
    tap.ok(not other, "text form: no lint beyond the counter names "
           "pmproxy keeps and bpftrace.info.scripts_total", other[:10])
    if pmcd:
        try:
            st, _, ptext = btd.http("GET", PMPROXY + "/metrics?names=" +
                                    PMCD_NAMES, timeout=15.0)
        except OSError:
            st = None
        if st == 200:
            _, plints, perr = promtool(ptext)
            theirs = {ln.split()[0] for ln in plints if ln.endswith(
                'counter metrics should have "_total" suffix')}
            mine = {n for n in ours if not n.startswith("bpftrace_")}
            tap.ok(perr is None and theirs and mine == theirs,
                   "the counter-name lints on pmcd metrics are exactly "
                   "the live pmproxy's (%d)" % len(theirs),
                   sorted(mine ^ theirs)[:10])
        else:
            tap.skip("pmproxy's lints", "no live pmproxy on " + PMPROXY)
    st, hdrs, om = get(d, "/metrics?names=" + names, OM_ACCEPT)
    rc, lints, err = promtool(om)
    tap.ok(st == 200 and err is None, "promtool parses the OpenMetrics "
           "form too", err)
    try:
        fams = openmetrics.parse(om.decode(), om=True)
    except openmetrics.FormatError as e:
        fams = {}
        tap.ok(False, "OpenMetrics form passes the strict parser", str(e))
    else:
        tap.ok(True, "OpenMetrics form passes the strict parser")
    counters = {n: f for n, f in fams.items() if f.type == "counter"}
    bad = [n for n, f in counters.items()
           if not f.samples or any(s[0] != n + "_total" for s in f.samples)]
    tap.ok(counters and not bad and not any(f.type == "unknown"
                                            for f in fams.values()),
           "OpenMetrics: %d counter families, every sample NAME_total, "
           "none typed unknown" % len(counters), bad[:5])
    if pmcd:
        tap.ok("kernel_all_intr" in counters and "kernel_all_cpu_wait" in
               counters, "pmcd counters too (kernel.all.cpu.wait.total "
               "is family kernel_all_cpu_wait)", sorted(counters)[:8])


def script_file(tmp, real):
    path = os.path.join(tmp, "promtest.bt")
    if real:
        code = ("// name: promtest\n"
                "interval:ms:50 { @ticks = count(); "
                "@lat = hist(nsecs % 4096); }\n")
    else:
        with open(os.path.join(FIX, "hist_global.bt")) as f:
            fx = re.sub(r"interval:ms:\d+ \{ exit\(\); \}", "", f.read())
        code = ("// name: promtest\n// fixture: hist_global\n"
                "// fake: hold\n" + fx)
    with open(path, "w") as f:
        f.write(code)
    return path


def query(base, q):
    st, _, body = btd.http("GET", base + "/api/v1/query?query=" +
                           urllib.parse.quote(q), timeout=15.0)
    try:
        j = json.loads(body)
    except ValueError:
        return None
    if st != 200 or j.get("status") != "success":
        return None
    return [(r["metric"], float(r["value"][1]))
            for r in j["data"]["result"]]


def check_prometheus(d, real, tmp):
    port = btd.free_port()
    conf = os.path.join(tmp, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: bpftraced\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                % d.port)
    log = open(os.path.join(tmp, "prometheus.log"), "wb")
    p = subprocess.Popen([PROMETHEUS, "--config.file=" + conf,
                          "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                          "--web.listen-address=127.0.0.1:%d" % port],
                         stdout=log, stderr=log, cwd=tmp)
    base = "http://127.0.0.1:%d" % port
    try:
        end = time.time() + 30
        while time.time() < end:
            try:
                if btd.http("GET", base + "/-/ready", timeout=2.0)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        time.sleep(SCRAPE_SECONDS)
        up = query(base, 'up{job="bpftraced"}')
        tap.ok(up and up[0][1] == 1.0, "Prometheus: target up after %d s "
               "of 1 s scrapes" % SCRAPE_SECONDS, up)
        st, _, tg = btd.http("GET", base + "/api/v1/targets", timeout=15.0)
        t = (json.loads(tg).get("data", {}).get("activeTargets") or [{}])[0]
        tap.ok(t.get("health") == "up" and not t.get("lastError"),
               "scrapes without error (OpenMetrics negotiated)",
               t.get("lastError"))
        r = query(base, 'rate(bpftrace_daemon_requests_total'
                  '{instname="other"}[10s])')
        tap.ok(r and 0.2 < r[0][1] < 20, "rate() over a counter (the "
               "scrapes themselves, about 1/s)", r)
        if real:
            r = query(base, "rate(bpftrace_scripts_promtest_data_ticks_total[10s])")
            tap.ok(r and 5 < r[0][1] < 40, "rate() over the script's "
                   "count() (interval:ms:50, about 20/s)", r)
            hist, hi = "bpftrace_scripts_promtest_data_lat_bucket", 4096
        else:
            hist, hi = "bpftrace_scripts_promtest_data_h_bucket", 1e12
        r = query(base, "histogram_quantile(0.5, %s)" % hist)
        tap.ok(r and r[0][1] == r[0][1] and -1e12 < r[0][1] <= hi,
               "histogram_quantile() over the bpftrace hist is a number in "
               "its range", r)
        r = query(base, "histogram_quantile(0.99, sum by (le) "
                  "(rate(%s[10s])))" % hist)
        tap.ok(r is not None, "histogram_quantile() over rate() answers "
               "(%s)" % ("a number" if r else "no samples: the fake's "
                         "buckets do not move") if not real else
               "histogram_quantile() over rate() answers", r)
    finally:
        btd.stop_process(p, 20)
        log.close()


def main():
    real_why = btd.bpftrace_usable()
    real = real_why is None
    tmp = tempfile.mkdtemp(prefix="btd-prom-")
    args = ["--script", script_file(tmp, real)]
    if not real:
        args += ["--bpftrace", btd.FAKE_BPFTRACE]
        tap.diag("fake bpftrace: %s" % real_why)
    pmcd = None
    with btd.pmcd_lock():
        with btd.Daemon(args=args, pmcd=None) as d:
            st, _, _ = get(d, "/metrics?names=hinv.ncpu")
            pmcd = st == 200
            if not pmcd:
                tap.diag("no pmcd behind bpftraced: pmcd metrics not "
                         "checked")
            end = time.time() + 20
            while time.time() < end and b"promtest" not in \
                    get(d, "/metrics?names=bpftrace.scripts")[2]:
                time.sleep(0.5)
            if PROMTOOL:
                check_promtool(d, pmcd)
            else:
                tap.skip("promtool checks", "promtool not installed")
            if PROMETHEUS:
                check_prometheus(d, real, tmp)
            else:
                tap.skip("Prometheus server", "prometheus not installed")
    shutil.rmtree(tmp, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
