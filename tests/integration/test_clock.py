#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_clock.py - wall-clock jumps under a running daemon (TAP).

bpftraced runs under libfaketime (Debian's libfaketime package) with the
wall clock (CLOCK_REALTIME, time(), gettimeofday()) moved at run time
through FAKETIME_TIMESTAMP_FILE, and CLOCK_MONOTONIC left alone
(FAKETIME_DONT_FAKE_MONOTONIC=1): what an NTP step or an admin's `date -s`
does to a real machine. The fake bpftrace child runs without the
preload: libfaketime 0.9.10 breaks Python's time.sleep() (EINVAL from
clock_nanosleep with TIMER_ABSTIME on the real monotonic clock).

The clock jumps a year forward, then a day back (366 days back from where
it was), then forward and back again, while the daemon holds a REST
context (polltimeout 3 s), an unnamed script (--script-expiry 4) and an
idle keep-alive connection (--idle-timeout 3). Every timer must run on
the monotonic clock: nothing expires early at a forward jump, everything
still expires after a backward one, fetch timestamps follow the wall
clock, the daemon's counters keep going and nothing crashes.
"""

import glob
import json
import os
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
YEAR = 365 * 86400
DAY = 86400
SLACK = 60              # seconds between our clock and the daemon's answer


def libfaketime():
    for pat in ("/usr/lib/*/faketime/libfaketimeMT.so.1",
                "/usr/lib/faketime/libfaketimeMT.so.1",
                "/usr/local/lib/faketime/libfaketimeMT.so.1"):
        hits = sorted(glob.glob(pat))
        if hits:
            return hits[0]
    return None


class Clock:
    """The daemon's wall-clock offset, through libfaketime's file."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.set(0)

    def set(self, seconds):
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            f.write("%+d\n" % seconds)
        os.rename(tmp, self.path)
        self.offset = seconds
        time.sleep(0.1)


class Client:
    def __init__(self, d, ctx):
        self.d = d
        self.ctx = ctx

    def get(self, path, conn=None, **p):
        st, _, b = btd.http("GET", self.d.url(
            path + ("?" + urllib.parse.urlencode(p) if p else "")),
            conn=conn, timeout=20)
        try:
            return st, json.loads(b)
        except ValueError:
            return st, None

    def fetch(self, names, conn=None):
        """(status, answer) of a fetch in our context."""
        return self.get("/pmapi/fetch", conn=conn, context=self.ctx,
                        names=names)

    def value(self, name):
        st, j = self.get("/pmapi/fetch", names=name)
        try:
            return j["values"][0]["instances"][0]["value"]
        except (TypeError, KeyError, IndexError):
            return None


def m(sid, item):
    return "bpftrace.scripts.%s.%s" % (sid, item)


def register(d):
    """Registers an unnamed script (through a context of its own, for the
    answer); returns its id once it runs, or None."""
    st, j = Client(d, 0).get("/pmapi/context", polltimeout=60)
    c = Client(d, (j or {}).get("context"))
    c.get("/pmapi/store", context=c.ctx, name="bpftrace.control.register",
          value="// fixture: scalar_count\n// fake: hold\n"
          "tracepoint:raw_syscalls:sys_enter { @calls = count(); }\n")
    _, j = c.fetch("bpftrace.control.register")
    try:
        sid = json.loads(j["values"][0]["instances"][0]["value"]
                         )["script_id"]
    except (TypeError, KeyError, IndexError, ValueError):
        return None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if c.value(m(sid, "status")) == "started":
            return sid
        time.sleep(0.1)
    return None


def check_fetch(c, clock, names, what):
    """One fetch in the context: 200, and its timestamp on the daemon's
    (faked) wall clock. Returns the answer or None."""
    st, j = c.fetch(names)
    ts = (j or {}).get("timestamp")
    want = time.time() + clock.offset
    ok = st == 200 and isinstance(ts, (int, float)) and \
        abs(ts - want) < SLACK
    tap.check(ok, what, "status %s, timestamp %r, expected ~%.0f (offset %+d "
           "s)" % (st, ts, want, clock.offset))
    return j if ok else None


def run(sh, tmp, lib):
    clock = Clock(os.path.join(tmp, "faketime.rc"))
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {
        "BT_SHARED": sh,
        "LD_PRELOAD": lib,
        "FAKETIME_TIMESTAMP_FILE": clock.path,
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        # libfaketime is preloaded ahead of the ASan runtime: allowed
        "ASAN_OPTIONS": (asan + ":" if asan else "") +
        "verify_asan_link_order=0",
    }
    fake = os.path.join(tmp, "bpftrace")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\nunset LD_PRELOAD\nexec %s \"$@\"\n"
                % btd.FAKE_BPFTRACE)
    os.chmod(fake, 0o755)
    with btd.Daemon(["--control", "loopback", "--bpftrace", fake,
                     "--script-expiry", "4", "--idle-timeout", "3"],
                    env=env) as d:
        c = Client(d, 0)
        sid = register(d)
        tap.check(sid, "an unnamed script is registered and runs "
                  "(--script-expiry 4)")
        if not sid:
            return
        pid = c.value(m(sid, "pid"))
        calls = m(sid, "data.calls")
        st, j = c.get("/pmapi/context", polltimeout=3)
        c.ctx = (j or {}).get("context")
        tap.check(st == 200 and c.ctx, "a context with polltimeout=3", repr(j))
        j = check_fetch(c, clock, calls, "before any jump: the fetch "
                        "timestamp is the real time")
        v0 = j and j["values"][0]["instances"][0]["value"]
        up0 = c.value("bpftrace.daemon.uptime")
        held = btd.connect(d.url("/"), timeout=10)
        st, _ = c.get("/pmapi/context", conn=held)
        tap.check(st == 200 and v0 == 379 and pid, "script started (pid %s), "
               "@calls 379, keep-alive connection open" % pid,
               "status %s, value %r" % (st, v0))

        # -- a year forward ------------------------------------------------
        clock.set(YEAR)
        st, j = c.fetch(calls)
        ts = (j or {}).get("timestamp") or 0
        if st == 200 and abs(ts - time.time()) < SLACK:
            tap.skip("wall-clock jumps", "libfaketime (%s) did not move "
                     "the daemon's clock: fetch timestamp %r" % (lib, ts))
            held.close()
            return
        tap.check(st == 200 and abs(ts - (time.time() + YEAR)) < SLACK,
               "a year forward: the context (polltimeout 3 s) is not "
               "expired, the fetch timestamp is a year ahead",
               "status %s, timestamp %r" % (st, ts))
        try:
            st, _ = c.get("/pmapi/context", conn=held)
        except (OSError, btd.httpclient.HTTPException) as e:
            st = type(e).__name__
        tap.check(st == 200, "a year forward: the idle keep-alive connection "
               "(--idle-timeout 3) is still served", "got %s" % st)
        up1 = c.value("bpftrace.daemon.uptime")
        tap.check(isinstance(up0, int) and isinstance(up1, int) and
               0 <= up1 - up0 < 30, "a year forward: "
               "bpftrace.daemon.uptime did not jump (%s -> %s)" % (up0, up1))

        # -- fetch for 6 s (over the expiry and the polltimeout) while the
        #    clock goes a day back, then a year forward again ------------
        ok, bad = 0, []
        t0 = time.monotonic()
        for step, offset in enumerate([YEAR] * 3 + [-DAY] * 4 + [YEAR] * 3):
            if offset != clock.offset:
                clock.set(offset)
            st, j = c.fetch(calls)
            ts = (j or {}).get("timestamp") or 0
            try:
                v = j["values"][0]["instances"][0]["value"]
            except (TypeError, KeyError, IndexError):
                v = None
            if st == 200 and v == 379 and \
                    abs(ts - (time.time() + offset)) < SLACK:
                ok += 1
            else:
                bad.append((step, offset, st, ts, v))
            time.sleep(0.6)
        dt = time.monotonic() - t0
        tap.check(not bad and dt > 4, "%d fetches over %.1f s across +1 year, "
               "-1 day, +1 year: all 200 in the context, the script served, "
               "timestamps follow the wall clock" % (ok, dt), repr(bad))
        tap.check(c.value(m(sid, "status")) == "started" and
               c.value(m(sid, "pid")) == pid,
               "the script fetched throughout is neither expired as idle "
               "nor restarted (same pid %s)" % pid)
        up2 = c.value("bpftrace.daemon.uptime")
        req = c.value("bpftrace.daemon.requests")
        tap.check(isinstance(up2, int) and 4 <= up2 - up1 <= 60,
               "bpftrace.daemon.uptime kept counting seconds (%s -> %s over "
               "%.1f s)" % (up1, up2, dt))
        tap.check(req is not None, "counters are served (requests %r)" % req)

        # -- made and last used a year ahead, then 366 days back and idle:
        #    a wall-clock timer would never fire now --------------------
        st, j = c.get("/pmapi/context", polltimeout=3)
        c2 = Client(d, (j or {}).get("context"))
        sid2 = register(d)
        st2, _ = c2.fetch(m(sid2, "data.calls") if sid2 else "x")
        tap.check(st == 200 and sid2 and st2 == 200, "a year ahead: a new "
                  "context (polltimeout 3) and a new unnamed script, "
                  "fetched once", repr((st, sid2, st2)))
        clock.set(-DAY)
        t0 = time.monotonic()
        time.sleep(5.5)
        idle = time.monotonic() - t0
        st, j = c.fetch("bpftrace.daemon.uptime")
        st2, j2 = c2.fetch("bpftrace.daemon.uptime")
        tap.check(st == 400 and st2 == 400, "after the clock went 366 days "
                  "back, both contexts idle for %.1f s expire (polltimeout "
                  "3 s)" % idle, "status %s %r / %s %r" % (st, j, st2, j2))
        st, j = c.get("/pmapi/metric", name=m(sid, "status"))
        st2, j2 = c.get("/pmapi/metric", name=m(sid2 or "x", "status"))
        tap.check(st == 400 and st2 == 400, "... and both unnamed scripts "
                  "not fetched for 4 s are deregistered (--script-expiry)",
                  "status %s %r / %s %r" % (st, j, st2, j2))
        try:
            st, _ = c.get("/pmapi/context", conn=held)
        except (OSError, btd.httpclient.HTTPException) as e:
            st = type(e).__name__
        held.close()
        tap.check(st != 200, "... and the idle keep-alive connection was "
               "closed (--idle-timeout 3): %s" % st)
        # -- still whole ---------------------------------------------------
        clock.set(0)
        st, j = Client(d, 0).get("/pmapi/fetch",
                                 names="bpftrace.daemon.requests")
        err = d.stderr_text()
        tap.check(st == 200 and d.alive() and "Sanitizer" not in err and
               "runtime error" not in err, "the daemon is alive and "
               "answers; no sanitizer report", err[-1500:])
    tap.check(d.returncode == 0, "clean exit (%s)" % d.returncode,
           d.stderr_text()[-1500:])


def main():
    sh = btd.shared_dir()
    if sh is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    lib = libfaketime()
    if lib is None:
        btd.Tap.skip_all("libfaketime not installed (Debian: apt-get "
                         "install libfaketime)")
    tmp = tempfile.mkdtemp(prefix="btd-clock-")
    try:
        run(sh, tmp, lib)
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
