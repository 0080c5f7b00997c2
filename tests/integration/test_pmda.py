#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_pmda.py - PMDA mode end to end (TAP): bpftraced as the socket PMDA
of the local pmcd (domain 151), installed with packaging/pcp/Install.

Needs root, a running (or startable) pmcd and the PCP tools pminfo,
pmstore, pmlogger and pmdumplog; otherwise every check is skipped with the
reason. pmcd.conf and the PMNS root are restored in a finally block (and
packaging/pcp/Remove is checked to restore them byte for byte). pmcd is
restarted once (values must come back without restarting bpftraced);
pmproxy is never touched.

bpftraced runs with tests/lib/fake-bpftrace (fixtures from
$BT_SHARED/fixtures/bpftrace-0.17) on a socket of its own,
$PCP_RUN_DIR/bpftraced-test-PID.socket, so a real bpftraced is not
disturbed; a last part uses the real bpftrace when it can run.
"""

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
from pmdatools import (INSTALL, REMOVE, SCRIPT_A, SCRIPT_B,  # noqa: E402
                       PmcdFiles, as_json, conf_line, pcp_env, pmda_daemon,
                       pminfo_ok, pminfo_values, read, run)

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE


shared = btd.shared_dir
wait_for = btd.wait_for


def pminfo_desc(name):
    rc, out = run(["pminfo", "-dT", name], timeout=10)
    return out if rc == 0 else ""


def checks_without_pmcd():
    """--pmda on/auto with a socket that cannot be made (no pmcd needed)."""
    bad = "/nonexistent-bpftraced-dir/x.socket"
    rc, out = run([btd.default_binary(), "--listen", "127.0.0.1:%d" %
                   btd.free_port(), "--state-dir", tempfile.mkdtemp(
                       prefix="btd-pmda-"), "--pmda", "on", "--pmda-socket",
                   bad], timeout=15)
    tap.ok(rc not in (0, -1) and "--pmda on" in out and bad in out,
           "--pmda on: a socket error is fatal at start", out[-400:])
    d = btd.Daemon(["--pmda", "auto", "--pmda-socket", bad])
    try:
        time.sleep(0.3)
        err = d.stderr_text()
        tap.ok(d.alive() and ("no pmcd: PMDA mode off" in err),
               "--pmda auto: no socket, logs 'no pmcd: PMDA mode off' and "
               "carries on", err[-400:])
        tap.ok(err.count("no pmcd") == 1, "the message is logged once")
    finally:
        d.stop()
    rc, out = run([btd.default_binary(), "--pmda", "sometimes"])
    tap.ok(rc == 2 and "expected auto, on or off" in out,
           "--pmda rejects other values")
    rc, out = run([btd.default_binary(), "--help"])
    tap.ok("--pmda auto|on|off" in out and "--pmda-socket" in out,
           "--help lists --pmda and --pmda-socket")


def main():
    if not os.access(btd.default_binary(), os.X_OK):
        btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())
    checks_without_pmcd()
    missing = [t for t in ("pminfo", "pmstore", "pmlogger", "pmdumplog")
               if shutil.which(t) is None]
    env = pcp_env()
    reason = None
    if missing or env is None:
        reason = "PCP is not installed (missing %s)" % (
            ", ".join(missing) or "pcp.env")
    elif os.geteuid() != 0:
        reason = "needs root (edits pmcd.conf, restarts pmcd)"
    elif shared() is None:
        reason = "no $BT_SHARED fixtures"
    if reason is None and not pminfo_ok():
        rc_dir = env.get("PCP_RC_DIR", "/etc/init.d")
        run([os.path.join(rc_dir, "pmcd"), "start"], timeout=30)
        if not wait_for(pminfo_ok, 10):
            reason = "pmcd is not running and cannot be started"
    if reason is not None:
        tap.skip("PMDA mode checks with pmcd", reason)
        tap.diag("skipped: " + reason)
        tap.done()
    # it restarts pmcd and installs domain 151: alone (test_archive.py
    # does the same); released at exit
    lock = btd.pmcd_lock(exclusive=True)
    lock.__enter__()
    files = PmcdFiles(env)
    if b"pmdabpftrace" in files.conf_before:
        rc, out = run([INSTALL], timeout=30)
        tap.ok(rc != 0 and "pmdabpftrace" in out,
               "Install refuses while PCP's bpftrace PMDA is installed", out)
        tap.skip("PMDA mode checks with pmcd",
                 "PCP's bpftrace PMDA holds domain 151")
        tap.done()
    sock = os.path.join(env.get("PCP_RUN_DIR", "/run/pcp"),
                        "bpftraced-test-%d.socket" % os.getpid())
    try:
        with_pmcd(files, sock, env)
    finally:
        files.restore(tap)
    tap.done()


def with_pmcd(files, sock, env):
    d = pmda_daemon(sock, FAKE)
    try:
        part_install(d, files.conf, sock)
        part_values(d)
        part_store(d)
        part_restart(d, env)
        part_pmlogger()
        part_daemon_restart(d, sock)
    finally:
        d.stop()
    rc, out = run([REMOVE], timeout=30)
    conf_after, pmns_after = read(files.conf), read(files.pmns)
    tap.ok(rc == 0 and conf_after == files.conf_before,
           "Remove restores pmcd.conf byte for byte", out)
    tap.ok(pmns_after == files.pmns_before, "Remove restores the PMNS root")
    rc, out = run([REMOVE], timeout=30)
    tap.ok(rc == 0 and read(files.conf) == files.conf_before,
           "Remove again: nothing to do (idempotent)", out)
    tap.ok(wait_for(lambda: run(["pminfo", "bpftrace"])[0] != 0, 10),
           "after Remove pmcd has no bpftrace names")


def part_install(d, conf, sock):
    rc, out = run([INSTALL, sock], timeout=30)
    with open(conf) as f:
        text = f.read()
    line = conf_line(sock)
    tap.ok(rc == 0 and line in text, "Install adds the socket agent to "
           "pmcd.conf", out)
    rc, out2 = run([INSTALL, sock], timeout=30)
    with open(conf) as f:
        tap.ok(rc == 0 and f.read() == text and "already" in out2,
               "Install again changes nothing (idempotent)", out2)
    ok = wait_for(lambda: pminfo_values("bpftrace.info.version"), 10)
    tap.ok(ok is not None, "pmcd connects: pminfo -f bpftrace.info.version",
           d.stderr_text()[-600:])


def part_values(d):
    r = btd.Client(d)
    _, j = r.store("bpftrace.control.register", SCRIPT_A)
    tap.ok(j.get("success") is True, "REST register of pmdaone", j)
    r.wait("bpftrace.scripts.pmdaone.status", lambda v: v == "started", 10)
    name = "bpftrace.scripts.pmdaone.data.bycomm"
    got = wait_for(lambda: pminfo_values(name), 10)
    rest = r.named_values(name)
    tap.ok(got is not None and as_json(got) == rest and rest,
           "pminfo -f %s shows the same instances and values as "
           "/pmapi/fetch" % name, "pminfo %r rest %r" % (got, rest))
    for m in ("bpftrace.scripts.pmdaone.status",
              "bpftrace.info.scripts_total", "bpftrace.scripts.pmdaone.pid"):
        a, b = as_json(pminfo_values(m)), r.named_values(m)
        tap.ok(a == b and b, "pminfo and REST agree on %s" % m,
               "%r %r" % (a, b))
    for m in (name, "bpftrace.control.register",
              "bpftrace.scripts.pmdaone.data_bytes"):
        desc, meta = pminfo_desc(m), r.metric(m)
        sem = {"counter": "counter", "instant": "instant",
               "discrete": "discrete"}[meta.get("sem", "instant")]
        typ = {"u64": "64-bit unsigned int", "u32": "32-bit unsigned int",
               "32": "32-bit int", "64": "64-bit int", "string": "string",
               "double": "double"}.get(meta.get("type"), "?")
        indom = meta.get("indom")
        ok = ("Data Type: %s" % typ in desc and "Semantics: %s" % sem in desc
              and (("InDom: %s " % indom) in desc if indom else
                   "PM_INDOM_NULL" in desc)
              and meta.get("text-help", "\0") in desc)
        tap.ok(ok, "pminfo -dT %s: same type, indom, semantics and help as "
               "/pmapi/metric" % m, desc + json.dumps(meta))
    rc, out = run(["pminfo", "-l", "bpftrace.control.register"])
    tap.ok('"metrictype":"control"' in out and '"agent":"bpftrace"' in out,
           "labels: agent and metrictype as REST", out)
    rc, out = run(["pminfo", "-f", "bpftrace.scripts.pmdaone.nosuch"])
    tap.ok(rc != 0 and "Unknown metric name" in out,
           "unknown names are refused by the dynamic PMNS", out)


def part_store(d):
    rc, out = run(["pmstore", "bpftrace.control.register", SCRIPT_B])
    tap.ok(rc == 0, "pmstore bpftrace.control.register (root, local:) "
           "registers a script", out + d.stderr_text()[-400:])
    got = wait_for(lambda: (pminfo_values(
        "bpftrace.scripts.pmdatwo.data.calls") or {}).get(None), 10)
    tap.ok(got is not None and got.isdigit(),
           "its metrics appear without restarting pmcd (dynamic PMNS)",
           got)
    r = btd.Client(d)
    tap.ok(str((r.named_values("bpftrace.scripts.pmdatwo.data.calls") or
                {}).get(None)) == got, "and REST serves the same value")
    # pmstore's pmcd context (and its answer) ended with pmstore; a new
    # pminfo has a new context: nothing to read back there
    v = pminfo_values("bpftrace.control.register")
    tap.ok(v == {None: '"{}"'}, "control.register in a fresh pmcd context "
           "reads {} (answers are per context)", v)
    tap.ok("audit: root from pmcd:local uid 0" in d.stderr_text(),
           "the store is audited as root, a local pmcd client",
           d.stderr_text()[-600:])
    rc, out = run(["pmstore", "bpftrace.control.register",
                   "// name: x y\nthis is not bpftrace"])
    tap.ok(rc != 0 and "Bad input" in out, "a refused script gives "
           "PM_ERR_BADSTORE", out)
    rc, out = run(["pmstore", "bpftrace.control.deregister", "pmdatwo"])
    gone = wait_for(lambda: run(["pminfo", "bpftrace.scripts.pmdatwo"])[0]
                    != 0, 5)
    tap.ok(rc == 0 and gone, "pmstore deregister removes the metrics", out)
    rc, out = run(["pmstore", "bpftrace.info.version", "x"])
    tap.ok(rc != 0 and "permission" in out.lower(),
           "a read-only metric refuses stores (PM_ERR_PERMISSION)", out)


def part_restart(d, env):
    pid = d.proc.pid
    before = pminfo_values("bpftrace.scripts.pmdaone.data.bycomm")
    rc, out = run([os.path.join(env.get("PCP_RC_DIR", "/etc/init.d"),
                                "pmcd"), "restart"], timeout=60)
    back = wait_for(lambda: pminfo_values(
        "bpftrace.scripts.pmdaone.data.bycomm"), 15)
    tap.ok(back == before and back, "pmcd restart: values return without "
           "restarting bpftraced", "%s %r %r" % (out[-300:], before, back))
    tap.ok(d.alive() and d.proc.pid == pid and
           "connection 2" in d.stderr_text(),
           "bpftraced kept running and accepted pmcd's new connection",
           d.stderr_text()[-600:])


def part_pmlogger():
    tmp = tempfile.mkdtemp(prefix="btd-pmlogger-")
    try:
        cfg = os.path.join(tmp, "config")
        with open(cfg, "w") as f:
            f.write("log mandatory on 1 sec {\n"
                    "\tbpftrace.scripts.pmdaone.data.bycomm\n"
                    "\tbpftrace.info.version\n}\n")
        arch = os.path.join(tmp, "arch")
        rc, out = run(["pmlogger", "-c", cfg, "-s", "5", "-t", "1sec",
                       "-l", os.path.join(tmp, "log"), arch], timeout=30)
        rc3, vals = run(["pmdumplog", arch,
                         "bpftrace.scripts.pmdaone.data.bycomm"])
        recs = vals.count("bpftrace.scripts.pmdaone.data.bycomm")
        tap.ok(rc == 0 and rc3 == 0 and recs >= 3 and "200" in vals and
               '"bpftrace"' in vals, "pmlogger records bpftrace metrics for "
               "5 s and pmdumplog reads them back (%d records)" % recs,
               out + vals[-600:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def part_daemon_restart(d, sock):
    """bpftraced restarts; pmcd is asked to connect again (SIGHUP)."""
    rc = d.stop(cleanup=False)
    err = d.stderr_text()
    tap.ok(rc == 0 and "Sanitizer" not in err and "runtime error" not in err,
           "bpftraced with a pmcd connection exits 0 on SIGTERM, no "
           "sanitizer reports", "rc %s %s" % (rc, err[-800:]))
    real = btd.real_bpftrace()
    d2 = pmda_daemon(sock, real or FAKE)
    try:
        ok = wait_for(lambda: (pminfo_values("bpftrace.daemon.pid") or
                               {}).get(None) == str(d2.proc.pid), 10)
        tap.ok(ok, "a restarted bpftraced is served again by the running "
               "pmcd", d2.stderr_text()[-600:])
        if not real:
            tap.skip("real bpftrace through pmstore", "bpftrace not found")
            return
        rc, out = run(["pmstore", "bpftrace.control.register",
                       "// name: pmdareal\ninterval:ms:100 "
                       "{ @ticks = count(); }"])
        st = wait_for(lambda: (pminfo_values(
            "bpftrace.scripts.pmdareal.status") or {}).get(None) in
            ('"started"', '"error"'), 15)
        status = (pminfo_values("bpftrace.scripts.pmdareal.status")
                  or {}).get(None)
        if rc != 0 or status != '"started"':
            err = pminfo_values("bpftrace.scripts.pmdareal.error")
            tap.skip("real bpftrace through pmstore",
                     "bpftrace cannot run here (%s %s)" % (status, err))
            return
        ticks = wait_for(lambda: int((pminfo_values(
            "bpftrace.scripts.pmdareal.data.ticks") or {}).get(None, "0"))
            > 0, 10)
        tap.ok(st and ticks, "a real bpftrace script registered with "
               "pmstore counts in pminfo")
        part_rate(d2)
    finally:
        rc = d2.stop(cleanup=False)
        err = d2.stderr_text()
        tap.ok(rc == 0 and "Sanitizer" not in err, "the second bpftraced "
               "exits 0 too", "rc %s %s" % (rc, err[-800:]))


def part_rate(d):
    """rate() of a bpftrace script's counter (100 ticks/s... 10/s here),
    derived in a bpftraced context and in the live pmproxy's (which reads
    it through pmcd and this PMDA): the same descriptor and first-fetch
    answer, and rates that agree."""
    pmproxy = os.environ.get("PMPROXY_URL", "http://127.0.0.1:44322")
    expr = "rate(bpftrace.scripts.pmdareal.data.ticks)"

    class Remote:
        def url(self, path="/"):
            return pmproxy + path
    try:
        p = btd.Client(Remote(), polltimeout=60)
    except (OSError, KeyError, TypeError):
        tap.skip("rate() of a bpftrace counter via pmproxy",
                 "no pmproxy at %s" % pmproxy)
        return
    b = btd.Client(d, polltimeout=60)
    sides = (b, p)
    regs = [c.getj("/pmapi/derive", context=c.ctx, name="r.ticks",
                   expr=expr)[1].get("success") for c in sides]
    metas = [(c.getj("/pmapi/metric", context=c.ctx, names="r.ticks")[1]
              .get("metrics") or [{}])[0] for c in sides]
    keys = ("pmid", "indom", "type", "sem", "units")
    tap.ok(regs == [True, True] and
           [{k: m.get(k) for k in keys} for m in metas][0] ==
           [{k: m.get(k) for k in keys} for m in metas][1] and
           metas[0].get("units") == "/ sec",
           "rate() of a bpftrace counter: registered on both, the same "
           "descriptor as pmproxy's (no units: / sec)", repr(metas))
    firsts = [[v for v in c.getj("/pmapi/fetch", context=c.ctx,
                                 names="r.ticks")[1].get("values", [])]
              for c in sides]
    tap.ok(firsts[0] == firsts[1] and firsts[0] and
           firsts[0][0]["instances"] == [{"instance": None, "value": 0}],
           "its first fetch: pmproxy's answer exactly", repr(firsts))
    time.sleep(3)
    rates = []
    for c in sides:
        v = c.getj("/pmapi/fetch", context=c.ctx, names="r.ticks")[1]
        rates.append(((v.get("values") or [{}])[0].get("instances") or
                      [{}])[0].get("value", -1))
    tap.ok(all(3 <= r <= 20 for r in rates) and
           0.5 <= rates[0] / rates[1] <= 2,
           "second fetch: about 10 ticks/s from bpftraced and from pmproxy "
           "(within a factor of 2)", repr(rates))


if __name__ == "__main__":
    main()
