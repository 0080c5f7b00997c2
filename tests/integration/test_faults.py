#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_faults.py - bpftrace children that misbehave (TAP).

With tests/lib/fake-bpftrace standing in for bpftrace: a child that is
SIGKILLed, SIGSTOPped, floods stdout, prints invalid JSON, prints one
100 MB line, or closes stdout but keeps running. Each time the script's
status and error say what happened, the limits trip, no zombie is left,
and a healthy script next to it keeps being served.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE


shared = btd.shared_dir


class C(btd.Client):
    """btd.Client, waiting 10 s at most, every 0.1 s."""

    wait_timeout = 10
    wait_step = 0.1

    def __init__(self, d):
        super().__init__(d, polltimeout=300, timeout=20)

    def reg(self, name, extra, body="BEGIN { @x = count(); }"):
        code = "// name: %s\n// fixture: scalar_count\n%s\n%s\n" % (
            name, extra, body)
        return self.store("bpftrace.control.register", code)


def m(name, item):
    return "bpftrace.scripts.%s.%s" % (name, item)


def zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] == "Z"
    except OSError:
        return False


def gone(pid):
    return not os.path.exists("/proc/%d" % pid) or zombie(pid) is False \
        and not os.path.exists("/proc/%d/exe" % pid)


def healthy(c):
    return c.value(m("ok", "status")) == "started"


def main():
    sh = shared()
    if sh is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE,
                     "--stop-timeout", "700", "--max-output-rate",
                     "1048576", "--max-line", "1048576"],
                    env={"BT_SHARED": sh}) as d:
        c = C(d)
        c.reg("ok", "// fake: hold")
        c.wait(m("ok", "status"), lambda v: v == "started")

        c.reg("kill", "// fake: hold")
        pid = c.wait(m("kill", "pid"), lambda v: v > 0)
        c.wait(m("kill", "status"), lambda v: v == "started")
        os.kill(pid, signal.SIGKILL)
        s = c.wait(m("kill", "status"), lambda v: v == "error")
        err = c.value(m("kill", "error")) or ""
        tap.ok(s == "error" and c.value(m("kill", "exit_code")) == 137 and
               "killed by a signal" in err and not zombie(pid),
               "SIGKILLed child: status error, exit_code 137, error says "
               "killed, no zombie", repr((s, err)))

        c.reg("stop", "// fake: hold")
        pid = c.wait(m("stop", "pid"), lambda v: v > 0)
        c.wait(m("stop", "status"), lambda v: v == "started")
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        c.store("bpftrace.control.stop", "stop")
        s = c.wait(m("stop", "status"), lambda v: v == "stopped")
        tap.ok(s == "stopped" and time.monotonic() - t0 < 5 and
               not zombie(pid), "SIGSTOPped child: stop still works (SIGKILL "
               "after --stop-timeout), no zombie", repr(s))

        c.reg("flood", "// fake: flood")
        s = c.wait(m("flood", "status"), lambda v: v == "error", timeout=15)
        err = c.value(m("flood", "error")) or ""
        tap.ok(s == "error" and "exceeds limit of 1048576 bytes per second"
               in err, "a child flooding stdout trips --max-output-rate",
               repr((s, err)))

        c.reg("junk", "// fake: garbage")
        v = c.wait(m("junk", "data.x"), lambda v: v == 42)
        tap.ok(v == 42 and c.value(m("junk", "status")) == "started",
               "invalid JSON lines are skipped; the good line after them is "
               "served and the script keeps running", repr(v))

        c.reg("big", "// fake: bigline 100",
              body="BEGIN { printf(\"x\"); }")
        s = c.wait(m("big", "status"), lambda v: v == "error", timeout=30)
        err = c.value(m("big", "error")) or ""
        tap.ok(s == "error" and "longer than 1048576 bytes" in err,
               "a 100 MB line trips --max-line and stops the script",
               repr((s, err)))

        c.reg("closed", "// fake: close-stdout")
        pid = c.wait(m("closed", "pid"), lambda v: v > 0)
        s = c.wait(m("closed", "status"), lambda v: v == "error",
                   timeout=10)
        err = c.value(m("closed", "error")) or ""
        time.sleep(0.3)
        tap.ok(s == "error" and "closed its output" in err and
               not os.path.exists("/proc/%d" % pid),
               "a child that closes stdout but keeps running is stopped "
               "with an error saying so", repr((s, err)))

        tap.ok(healthy(c) and d.alive(), "the healthy script next to them "
               "is still served, the daemon still runs")
        rss = c.value("bpftrace.daemon.rss")
        if os.environ.get("ASAN_OPTIONS"):
            # ASan keeps freed memory in quarantine and adds shadow memory
            tap.skip("the daemon's RSS after a 100 MB line stays bounded",
                     "RSS is not meaningful under AddressSanitizer "
                     "(%s KiB)" % rss)
        else:
            tap.ok(isinstance(rss, int) and rss < 200 * 1024,
                   "the daemon's RSS after a 100 MB line stays bounded "
                   "(%s KiB)" % rss)
    tap.done()


if __name__ == "__main__":
    main()
