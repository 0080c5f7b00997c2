#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_restart.py - restarts with pmcd passthrough never lose bpftrace
(TAP).
"bpftrace --version" runs on a thread of its own while the main thread
goes on starting (pmcd passthrough, scripts, HTTP threads). It used to be
spawned with posix_spawnp(..., environ) while pmcd_init's setenv
realloc'd environ: about 1 start in 15 logged "bpftrace unavailable:
cannot run bpftrace: Bad address" and no script could run until the next
restart. Here the daemon is started BT_RESTARTS times (200; 20 on a
ThreadSanitizer build, where one start is enough to see the race) with
--pmcd localhost against the shared local pmcd, with bpftrace found along
$PATH (the real one when installed, else tests/lib/fake-bpftrace under
that name), and every start must:
  * know bpftrace's version (bpftrace.info.version has a value) and never
    log "bpftrace unavailable";
  * serve a pmcd metric (hinv.ncpu) through the passthrough;
  * exit 0 when stopped (no crash on a freed environment), and on a TSan
    build leave no ThreadSanitizer report (btd.Daemon.stop checks).
Skipped, with the reason, when no pmcd answers on 127.0.0.1:44321.
"""
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()


class QuickDaemon(btd.Daemon):
    """Starts without btd.Daemon's 1 s early-exit window (200 starts);
    a port taken meanwhile shows as an exit before answering and the
    caller starts again."""
    EARLY_EXIT_WINDOW = 0.0


def pmcd_answers():
    try:
        socket.create_connection(("127.0.0.1", 44321), timeout=2).close()
        return True
    except OSError:
        return False


def bpftrace_dir(tmp):
    """A directory for $PATH whose "bpftrace" answers --version: the real
    one's when it is installed, else the fake's (same name, so the search
    along PATH is what is tested)."""
    real = shutil.which("bpftrace")
    if real:
        return os.path.dirname(real), "real bpftrace (%s)" % real
    d = os.path.join(tmp, "bin")
    os.makedirs(d, exist_ok=True)
    os.symlink(os.path.join(btd.REPO_ROOT, "tests", "lib", "fake-bpftrace"),
               os.path.join(d, "bpftrace"))
    return d, "tests/lib/fake-bpftrace as bpftrace"


def start(env):
    last = None
    for _ in range(5):
        try:
            return QuickDaemon(["--control", "loopback"], pmcd="localhost",
                               env=env, start_timeout=30.0), None
        except btd.DaemonError as e:
            last = str(e)
            if "in use" not in last:
                break
    return None, last


def one_start(env, i, bad):
    d, err = start(env)
    if d is None:
        bad["start"].append("start %d: %s" % (i, (err or "")[-1500:]))
        return
    try:
        try:
            v = d.fetch_values("bpftrace.info.version,hinv.ncpu")
        except btd.DaemonError as e:
            v = {}
            bad["fetch"].append("start %d: %s" % (i, e))
        ver = (v.get("bpftrace.info.version") or {}).get(None)
        if not ver or not str(ver).startswith("v"):
            bad["version"].append("start %d: version %r" % (i, ver))
        if not v.get("hinv.ncpu"):
            bad["pmcd"].append("start %d: hinv.ncpu %r" % (i, v))
        text = d.stderr_text()
        if "bpftrace unavailable" in text:
            bad["unavailable"].append("start %d: %s" % (i, text[-1500:]))
    finally:
        try:
            rc = d.stop()
            if rc != 0:
                bad["exit"].append("start %d: exit %r" % (i, rc))
        except btd.DaemonError as e:
            bad["tsan"].append("start %d: %s" % (i, e))


def main():
    default = 20 if btd.TSAN else 200
    n = int(os.environ.get("BT_RESTARTS") or default)
    tmp = tempfile.mkdtemp(prefix="btd-restart-")
    try:
        with btd.pmcd_lock():
            if not pmcd_answers():
                tap.skip_all("no pmcd on 127.0.0.1:44321")
            bindir, what = bpftrace_dir(tmp)
            tap.diag("%d starts with --pmcd localhost, %s" % (n, what))
            env = {"PATH": bindir + os.pathsep + "/usr/bin:/bin",
                   "JOURNAL_STREAM": None, "FAKE_BPFTRACE_VERSION": None}
            bad = {k: [] for k in ("start", "fetch", "version", "pmcd",
                                   "unavailable", "exit", "tsan")}
            t0 = time.monotonic()
            for i in range(n):
                one_start(env, i, bad)
            dt = time.monotonic() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def show(k):
        return lambda: "%d of %d:\n%s" % (len(bad[k]), n,
                                          "\n".join(bad[k][:3]))
    tap.check(not bad["start"], "%d starts: each answered (%.0f s)" % (n, dt),
           show("start"))
    tap.check(not bad["unavailable"], "no start logged 'bpftrace unavailable'",
           show("unavailable"))
    tap.check(not bad["version"] and not bad["fetch"],
           "every start knew bpftrace's version (bpftrace.info.version)",
           lambda: show("version")() + "\n" + show("fetch")())
    tap.check(not bad["pmcd"], "every start served hinv.ncpu through pmcd",
           show("pmcd"))
    tap.check(not bad["exit"], "every daemon exited 0 when stopped",
           show("exit"))
    tap.check(not bad["tsan"], "no ThreadSanitizer report, no daemon died "
           "before it was stopped%s" % ("" if btd.TSAN else
                                        " (not a TSan build)"),
           show("tsan"))
    tap.done()


if __name__ == "__main__":
    main()
