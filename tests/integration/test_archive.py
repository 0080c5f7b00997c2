#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_archive.py - one host -> many hosts with PCP's own tools (TAP):
bpftraced in PMDA mode (domain 151 of the local pmcd), pmlogger recording
a bpftrace script for 10 s, the archive read back with pmrep, pmval,
pmlogcheck and pmdumplog, then loaded into a private redis-server with
`pmseries --load` and queried with pmseries and a private pmproxy's
/series/query. Also: pmFetch through pmcd returns 0 (no state change) on
every steady fetch, PMCD_NAMES_CHANGE once when a script's metrics
appear, and the series ids bpftraced answers equal pmproxy's (a pmcd
metric through bpftraced's passthrough, a bpftrace metric served directly
and by pmproxy through PMDA mode).

Needs root, a running pmcd, the PCP tools and redis-server; the parts
that cannot run here are skipped with the reason. pmcd.conf and the PMNS
root are restored byte for byte (packaging/pcp/Remove, and a finally
block after a failure); the shared pmproxy (44322) is never touched: the
pmproxy here runs on free ports with its own configuration, unix socket
and log, against a redis-server on a free port in a temporary directory.
The real bpftrace is used when it can run (tracepoints/interval probes as
root), else tests/lib/fake-bpftrace replays a fixture.
"""

import ctypes
import ctypes.util
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
import pmdatools  # noqa: E402
from pmdatools import (INSTALL, REMOVE, PmcdFiles, pcp_env,  # noqa: E402
                       pmda_daemon, pminfo_ok, read)

tap = btd.Tap()
TOOLS = ("pminfo", "pmlogger", "pmdumplog", "pmrep", "pmval", "pmlogcheck")
PMPROXY = "/usr/lib/pcp/bin/pmproxy"
PMCD_NAMES_CHANGE = 1 << 4
LOG_SECONDS = 10
CONTROL = "kernel.all.load"     # logged beside, as a yardstick

# the script pmlogger records: real bpftrace, or the fake's fixture
REAL_SCRIPT = ("// name: archtest\n"
               "interval:ms:100 { @ticks = count(); @bykey[\"x\"] = count();"
               " @bykey[\"y\"] = count(); }")
FAKE_SCRIPT = ("// name: archtest\n// fixture: map_string_key\n"
               "// fake: hold\n"
               "tracepoint:raw_syscalls:sys_enter { @bycomm[comm] = count(); }")
# registered while pmlogger runs: found through PMCD_NAMES_CHANGE
LATE_REAL = "// name: archlate\ninterval:ms:100 { @calls = count(); }"
LATE_FAKE = ("// name: archlate\n// fixture: scalar_count\n// fake: hold\n"
             "tracepoint:raw_syscalls:sys_enter { @calls = count(); }")
LATE_METRIC = "bpftrace.scripts.archlate.data.calls"


run = functools.partial(pmdatools.run, timeout=60)
wait_for = btd.wait_for


def pminfo_value(name):
    """pminfo -f's text when name has at least one value, else None."""
    rc, out = run(["pminfo", "-f", name], timeout=10)
    has = re.search(r"^\s+(value |inst \[)", out, re.M)
    return out if rc == 0 and has else None


def getj(base, path, timeout=15.0, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params)
                         if params else "")
    try:
        st, _, body = btd.http("GET", url, timeout=timeout)
        return st, json.loads(body)
    except (OSError, ValueError) as e:
        return 0, {"error": str(e)}


class Pmapi:
    """pmFetch through pmcd with libpcp itself (ctypes): its return value
    is what the tools never show, the state-change flags."""

    def __init__(self):
        path = ctypes.util.find_library("pcp")
        self.lib = ctypes.CDLL(path or "libpcp.so.3")
        self.lib.pmLookupName.argtypes = [
            ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_uint)]
        self.lib.pmFetch.argtypes = [ctypes.c_int,
                                     ctypes.POINTER(ctypes.c_uint),
                                     ctypes.POINTER(ctypes.c_void_p)]
        self.lib.pmFreeResult.argtypes = [ctypes.c_void_p]
        self.lib.pmNewContext.argtypes = [ctypes.c_int, ctypes.c_char_p]
        self.ctx = self.lib.pmNewContext(1, b"local:")   # PM_CONTEXT_HOST

    def pmids(self, names):
        arr = (ctypes.c_char_p * len(names))(*[n.encode() for n in names])
        out = (ctypes.c_uint * len(names))()
        sts = self.lib.pmLookupName(len(names), arr, out)
        return list(out) if sts == len(names) else None

    def fetch(self, pmids):
        ids = (ctypes.c_uint * len(pmids))(*pmids)
        res = ctypes.c_void_p()
        sts = self.lib.pmFetch(len(pmids), ids, ctypes.byref(res))
        if sts >= 0 and res.value:
            self.lib.pmFreeResult(res)
        return sts

    def close(self):
        if self.ctx >= 0:
            self.lib.pmDestroyContext(self.ctx)
            self.ctx = -1


def main():
    if not os.access(btd.default_binary(), os.X_OK):
        btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())
    missing = [t for t in TOOLS if shutil.which(t) is None]
    env = pcp_env()
    reason = None
    if missing or env is None:
        reason = "PCP tools are not installed (missing %s)" % (
            ", ".join(missing) or "pcp.env")
    elif os.geteuid() != 0:
        reason = "needs root (installs domain 151 into pmcd.conf)"
    elif btd.shared_dir() is None:
        reason = "no $BT_SHARED fixtures"
    elif not pminfo_ok():
        reason = "pmcd is not running"
    if reason is not None:
        btd.Tap.skip_all(reason)
    # nobody else may restart or reconfigure pmcd meanwhile: either is a
    # real state change (and a <mark>) in the archive
    with btd.pmcd_lock(exclusive=True):
        locked_main(env)
    tap.done()


def locked_main(env):
    files = PmcdFiles(env)
    if re.search(rb"^bpftrace\s", files.conf_before, re.M):
        btd.Tap.skip_all("domain 151 is in use in %s" % files.conf)
    sock = os.path.join(env.get("PCP_RUN_DIR", "/run/pcp"),
                        "bpftraced-archive-%d.socket" % os.getpid())
    tmp = tempfile.mkdtemp(prefix="btd-archive-")
    os.chmod(tmp, 0o755)
    try:
        with_pmcd(tmp, sock, files)
    finally:
        files.restore(tap)
        if not os.environ.get("BTD_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


def with_pmcd(tmp, sock, files):
    why = btd.bpftrace_usable()
    real = why is None
    tap.diag("bpftrace: %s" % ("real" if real else "fake (%s)" % why))
    d = pmda_daemon(sock, shutil.which("bpftrace") if real else
                    btd.FAKE_BPFTRACE, pmcd="localhost")
    try:
        rc, out = run([INSTALL, sock], timeout=30)
        ok = rc == 0 and wait_for(
            lambda: pminfo_value("bpftrace.info.version"), 15)
        tap.ok(ok, "bpftraced is domain 151 of the local pmcd (Install)",
               None if ok else out + d.stderr_text()[-600:])
        if not ok:
            return
        names = part_register(d, real)
        if names is None:
            return
        arch = part_pmlogger(d, real, tmp, names)
        part_series_ids(d, tmp, names)
        if arch:
            part_redis(tmp, arch, names)
    finally:
        rc = d.stop(cleanup=False)
        err = d.stderr_text()
        tap.ok(rc == 0 and "Sanitizer" not in err and
               "runtime error" not in err, "bpftraced exits 0, no sanitizer "
               "reports", "rc %s %s" % (rc, err[-800:]))
        d.stop()        # removes its temporary directory
        rc, out = run([REMOVE], timeout=30)
        tap.ok(rc == 0 and read(files.conf) == files.conf_before,
               "Remove restores pmcd.conf byte for byte", out)


def part_register(d, real):
    """Registers the script; checks pmFetch's state flags around it."""
    api = Pmapi()
    try:
        base = api.pmids(["bpftrace.info.version", "bpftrace.daemon.pid"])
        flags = [api.fetch(base) for _ in range(3)]
        st, j = btd.Client(d).store("bpftrace.control.register",
                                    REAL_SCRIPT if real else FAKE_SCRIPT)
        tap.ok(st == 200 and j.get("success") is True,
               "REST register of the archtest script", j)
        data = (["bpftrace.scripts.archtest.data.ticks",
                 "bpftrace.scripts.archtest.data.bykey"] if real else
                ["bpftrace.scripts.archtest.data.bycomm"])
        pmids = None
        deadline = time.monotonic() + 20
        while pmids is None and time.monotonic() < deadline:
            flags.append(api.fetch(base))
            pmids = api.pmids(data)
            time.sleep(0.2)
        tap.ok(pmids is not None, "its metrics appear in pmcd's namespace",
               d.stderr_text()[-600:])
        if pmids is None:
            return None
        has = wait_for(lambda: pminfo_value(data[0]), 30)
        tap.ok(has, "%s has a value through pmcd" % data[0],
               has or "%s\n%s" % (pminfo_value(
                   "bpftrace.scripts.archtest.error"), d.stderr_text()[-800:]))
        flags += [api.fetch(base + pmids) for _ in range(2)]
        tap.ok(PMCD_NAMES_CHANGE in flags and
               set(flags) <= {0, PMCD_NAMES_CHANGE},
               "pmFetch through pmcd: PMCD_NAMES_CHANGE (16) once the "
               "script's metrics came, no other state flag",
               "flags %r" % flags)
        steady = []
        for _ in range(12):
            steady.append(api.fetch(base + pmids))
            time.sleep(0.25)
        # pmcd itself flags a names change to every client when its PMNS
        # is reloaded (SIGHUP): tolerated once, nothing else is
        tap.ok(set(steady) <= {0, PMCD_NAMES_CHANGE} and
               steady.count(0) >= len(steady) - 1,
               "pmFetch of bpftrace metrics through pmcd returns 0 (no "
               "state change) on steady fetches (%d of %d)" % (
                   steady.count(0), len(steady)), "returned %r" % steady)
        return data
    finally:
        api.close()


def part_pmlogger(d, real, tmp, names):
    # bpftrace.scripts is a non-leaf name: pmlogger looks below it again
    # for new metrics whenever a fetch reports PMCD_NAMES_CHANGE
    cfg = os.path.join(tmp, "pmlogger.config")
    with open(cfg, "w") as f:
        f.write("log mandatory on 1 sec {\n\t%s\n\tbpftrace.info.scripts_total"
                "\n\t%s\n\tbpftrace.scripts\n}\n" % ("\n\t".join(names),
                                                     CONTROL))
    arch = os.path.join(tmp, "arch")
    log = os.path.join(tmp, "pmlogger.log")
    p = subprocess.Popen(["pmlogger", "-c", cfg, "-s", str(LOG_SECONDS),
                          "-t", "1sec", "-l", log, arch],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    time.sleep(3)
    st, j = btd.Client(d).store("bpftrace.control.register",
                                LATE_REAL if real else LATE_FAKE)
    try:
        out, _ = p.communicate(timeout=LOG_SECONDS + 60)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        rc = -1
    out = out.decode("utf-8", "replace")
    with open(log, errors="replace") as f:
        logtext = f.read()
    tap.ok(rc == 0, "pmlogger records the script for %d s" % LOG_SECONDS,
           out + logtext[-800:])
    if rc != 0:
        return None
    rc, late = run(["pmdumplog", arch, LATE_METRIC])
    n = len(re.findall(r"\(%s\): value \d+" % re.escape(LATE_METRIC), late))
    tap.ok(st == 200 and n >= 2, "a script registered while pmlogger runs "
           "is logged too (%d values of %s): PMCD_NAMES_CHANGE" % (
               n, LATE_METRIC), "%r\n%s" % (j, late[-800:]))
    tap.ok("PMCD state changed" not in logtext,
           "pmlogger never logs 'Validating metrics after PMCD state "
           "changed'", logtext[-800:])
    rc, dump = run(["pmdumplog", arch])
    marks = dump.count("<mark>")
    recs = len(re.findall(r"^\d\d:\d\d:\d\d\.\d+ +\d+ metrics?", dump, re.M))
    tap.ok(rc == 0 and marks == 0 and recs >= LOG_SECONDS - 1,
           "pmdumplog: %d records, %d <mark> records" % (recs, marks),
           dump[-1500:])
    rc, out = run(["pmlogcheck", arch])
    tap.ok(rc == 0 and out.strip() == "", "pmlogcheck finds nothing wrong",
           "rc %d: %s" % (rc, out[-800:]))
    # pmval interpolates from the archive's start, the prologue record
    # before the first sample: at most that first line has no value
    rc, out = run(["pmval", "-a", arch, "-t", "1sec", "-r", names[0]])
    lines = [l for l in out.splitlines()
             if re.match(r"^\d\d:\d\d:\d\d\.\d+\s+\S", l)]
    vals = [l for l in lines if re.match(r"^\S+(\s+[0-9.]+)+\s*$", l)]
    tap.ok(rc == 0 and len(vals) >= LOG_SECONDS - 2 and
           out.count("No values available") <= 1,
           "pmval -a: %s has a value at %d of %d samples" % (
               names[0], len(vals), len(lines)), out[-1200:])
    # pmrep: the instant bpftrace metric has a value wherever kernel.all.load
    # has one; counters (rate-converted) from the second value on
    # (pmrep runs on pmpython, which runs the first python3 on PATH: the
    # system's has PCP's module, python3-pcp)
    path = "/usr/bin:/bin:" + os.environ.get("PATH", "")
    cols = names + ["bpftrace.info.scripts_total", CONTROL]
    rc, out = run(["pmrep", "-a", arch, "-t", "1sec", "-o", "csv", "-U"] +
                  cols, env=dict(os.environ, PATH=path))
    lines = [l.split(",") for l in out.splitlines() if l.strip()] or [[]]
    head, rows = lines[0], lines[1:]
    total = [i for i, h in enumerate(head) if "scripts_total" in h]
    load = [i for i, h in enumerate(head) if CONTROL in h]
    ctl = [r for r in rows if load and r[load[0]] != ""]
    full = [r for r in rows if len(r) == len(head) and "" not in r and
            "N/A" not in r]
    lone = [r for r in ctl if not total or r[total[0]] == ""]
    tap.ok(rc == 0 and len(full) >= LOG_SECONDS - 3 and not lone and
           len(full) >= len(ctl) - 1,
           "pmrep -a: %d of %d rows have every column (%d with %s)" % (
               len(full), len(rows), len(ctl), CONTROL), out[-1500:])
    return arch


def part_series_ids(d, tmp, names):
    """bpftraced's series ids equal pmproxy's (here: a private pmproxy on
    the shared pmcd, which sees bpftrace.* through PMDA mode)."""
    px = PrivateProxy(tmp, redis_port=None)
    try:
        if not px.start():
            tap.skip("series ids equal pmproxy's", px.why)
            return
        _, c1 = getj(d.base, "/pmapi/context")
        _, c2 = getj(px.base, "/pmapi/context")
        tap.ok(c1.get("source") and c1.get("source") == c2.get("source"),
               "/pmapi/context source: bpftraced's equals pmproxy's",
               "%r %r" % (c1.get("source"), c2.get("source")))
        for name in ["kernel.all.load", "hinv.ncpu", names[0],
                     "bpftrace.info.scripts_total"]:
            _, a = getj(d.base, "/pmapi/metric", context=c1["context"],
                        names=name)
            _, b = getj(px.base, "/pmapi/metric", context=c2["context"],
                        names=name)
            ma = (a.get("metrics") or [{}])[0]
            mb = (b.get("metrics") or [{}])[0]
            tap.ok(ma.get("series") and ma.get("series") == mb.get("series"),
                   "series of %s: bpftraced %s, pmproxy %s" % (
                       name, ma.get("series"), mb.get("series")),
                   "bpftraced %s\npmproxy %s" % (json.dumps(ma),
                                                 json.dumps(mb)))
    finally:
        px.stop()


class PrivateProxy:
    """pmproxy on free ports with its own config, socket and log."""

    def __init__(self, tmp, redis_port):
        self.dir = tempfile.mkdtemp(prefix="pmproxy-", dir=tmp)
        os.chmod(self.dir, 0o777)
        self.redis_port = redis_port
        self.proc = None
        self.why = None
        self.port = None

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        if not os.access(PMPROXY, os.X_OK):
            self.why = "pmproxy not installed (%s)" % PMPROXY
            return False
        cfg = os.path.join(self.dir, "pmproxy.conf")
        redis = self.redis_port is not None
        with open(cfg, "w") as f:
            f.write("[pmproxy]\npcp.enabled = true\nhttp.enabled = true\n"
                    "redis.enabled = %s\nsecure.enabled = false\n"
                    "[redis]\nenabled = %s\nservers = 127.0.0.1:%d\n"
                    "[discover]\nenabled = false\n"
                    "[pmseries]\nenabled = %s\n[pmsearch]\nenabled = false\n"
                    % (str(redis).lower(), str(redis).lower(),
                       self.redis_port or 1, str(redis).lower()))
        for _ in range(5):
            self.port = btd.free_port()
            log = os.path.join(self.dir, "pmproxy.log")
            self.proc = subprocess.Popen(
                [PMPROXY, "-f", "-A", "-c", cfg, "-p", str(self.port),
                 "-s", os.path.join(self.dir, "pmproxy.socket"),
                 "-l", log, "-x", os.path.join(self.dir, "pmproxy.err")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=self.dir)
            if wait_for(lambda: self.proc.poll() is not None or
                        getj(self.base, "/pmapi/context",
                             timeout=2.0)[0] == 200, 15):
                if self.proc.poll() is None:
                    return True
            self.stop()
        self.why = "private pmproxy did not start: %s" % self.log()[-400:]
        return False

    def log(self):
        try:
            with open(os.path.join(self.dir, "pmproxy.log"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                btd.stop_process(self.proc)
            self.proc = None


class Redis:
    """redis-server on a free loopback port in its own directory."""

    def __init__(self, tmp):
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=tmp)
        self.proc = None
        self.port = None

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self):
        for _ in range(5):
            self.port = btd.free_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind",
                 "127.0.0.1", "--dir", self.dir, "--save", "",
                 "--appendonly", "no", "--daemonize", "no",
                 "--logfile", os.path.join(self.dir, "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=self.dir)
            if wait_for(lambda: self.proc.poll() is not None or
                        self.ping(), 10) and self.proc.poll() is None:
                return True
            self.stop()
        return False

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                btd.stop_process(self.proc)
            self.proc = None


def part_redis(tmp, arch, names):
    if shutil.which("redis-server") is None or shutil.which(
            "pmseries") is None:
        tap.skip("pmseries --load and /series/query",
                 "redis-server or pmseries is not installed")
        return
    r = Redis(tmp)
    px = None
    try:
        if not r.start():
            tap.skip("pmseries --load and /series/query",
                     "redis-server does not start here")
            return
        rp = str(r.port)
        rc, out = run(["pmseries", "-p", rp, "--load", arch], timeout=120)
        tap.ok(rc == 0, "pmseries --load ARCHIVE into redis-server on port "
               "%s" % rp, out[-800:])
        rc, out = run(["pmseries", "-p", rp, names[0]])
        ids = re.findall(r"^([0-9a-f]{40})$", out, re.M)
        tap.ok(rc == 0 and ids, "pmseries %s: %d series" % (names[0],
                                                          len(ids)), out)
        rc, out = run(["pmseries", "-p", rp, "%s[samples:%d]" %
                       (names[0], LOG_SECONDS)])
        samples = re.findall(r"^\s+\[Mon|^\s+\[\w{3} ", out, re.M)
        tap.ok(rc == 0 and len(samples) >= LOG_SECONDS - 2,
               "pmseries %s[samples:%d]: %d timestamped values" % (
                   names[0], LOG_SECONDS, len(samples)), out[-1200:])
        px = PrivateProxy(tmp, redis_port=r.port)
        if not px.start():
            tap.skip("/series/query through a private pmproxy", px.why)
            return
        for name in names:
            st, q = getj(px.base, "/series/query", expr=name)
            tap.ok(st == 200 and isinstance(q, list) and q,
                   "pmproxy /series/query?expr=%s finds it" % name, q)
            if not (isinstance(q, list) and q):
                continue
            st, v = getj(px.base, "/series/values", series=",".join(q),
                         samples=str(LOG_SECONDS))
            got = [x for x in v if isinstance(x, dict) and "value" in x] \
                if isinstance(v, list) else []
            tap.ok(st == 200 and len(got) >= LOG_SECONDS - 2,
                   "pmproxy /series/values: %d values of %s" % (len(got),
                                                                name),
                   json.dumps(v)[:1200])
    finally:
        if px is not None:
            px.stop()
        r.stop()


if __name__ == "__main__":
    main()
