#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_pmcd_pool.py - no request can break the shared pmcd pool (TAP).

A bpftraced with --pmcd localhost; four "good" clients fetch hinv.ncpu in
a loop while one client sends the inputs that used to put the pool into
its "IPC protocol failure" / reconnect backoff state for everyone: an
empty name in a names= list (libpcp refuses it with PM_ERR_IPC), names
and prefixes of 70000 bytes (pmcd drops a connection whose request PDU
passes its limit), control characters, empty components, and a fetch of
every pmcd metric at once. Each bad request gets pmproxy's answer (200,
the bad name skipped, or its "Unknown metric name"), no good request
fails during or after them, and the daemon never logs a lost connection.
Skipped when no pmcd answers here.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())
PMINFO = shutil.which("pminfo")


def pmcd_names():
    """Every metric name the local pmcd has, or None without a pmcd."""
    if PMINFO is None:
        return None
    try:
        r = subprocess.run([PMINFO], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [n for n in r.stdout.decode().split() if n]
    return names if r.returncode == 0 and "hinv.ncpu" in names else None


NAMES = pmcd_names()
if NAMES is None:
    btd.Tap.skip_all("no pmcd answers here (pminfo hinv.ncpu)")

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Good(threading.Thread):
    """Fetches hinv.ncpu until stopped; keeps every failure."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = d
        self.stop = threading.Event()
        self.ok = 0
        self.bad = []

    def run(self):
        conn = None
        while not self.stop.is_set():
            try:
                conn = conn or btd.connect(self.d.base)
                st, _, body = btd.http(
                    "GET", self.d.url("/pmapi/fetch?names=hinv.ncpu"),
                    conn=conn, timeout=30)
                v = json.loads(body)["values"] if st == 200 else None
                if st == 200 and v and v[0]["name"] == "hinv.ncpu":
                    self.ok += 1
                else:
                    self.bad.append((st, body[:200]))
            except Exception as e:  # noqa: BLE001 - any failure counts
                self.bad.append(("exc", repr(e)[:200]))
                conn = None
            time.sleep(0.005)


def names_of(body):
    try:
        return [v["name"] for v in json.loads(body).get("values", [])]
    except (ValueError, KeyError, AttributeError):
        return None


def failed(body):
    try:
        return json.loads(body).get("success") is False
    except ValueError:
        return False


def main():
    big = "x" * 70000
    cases = [
        # (description, method, path, form body or None, check(st, body))
        ("empty name first in the list", "GET",
         "/pmapi/fetch?names=,hinv.ncpu", None,
         lambda st, b: st == 200 and names_of(b) == ["hinv.ncpu"]),
        ("empty names only", "GET", "/pmapi/fetch?names=,,", None,
         lambda st, b: st == 200 and names_of(b) == []),
        ("empty name in the middle, metric", "GET",
         "/pmapi/metric?names=hinv.ncpu,,kernel.all.load", None,
         lambda st, b: st == 200),
        ("empty name, fetch by name=", "GET", "/pmapi/fetch?name=,hinv.ncpu",
         None, lambda st, b: st in (200, 400)),
        ("control characters", "GET",
         "/pmapi/fetch?names=%01,a%09b,%7f,hinv.ncpu", None,
         lambda st, b: st == 200 and names_of(b) == ["hinv.ncpu"]),
        ("empty components", "GET",
         "/pmapi/fetch?names=.,hinv..ncpu,hinv.,.hinv,hinv.ncpu", None,
         lambda st, b: st == 200 and names_of(b) == ["hinv.ncpu"]),
        ("a 70000-byte name (form body)", "POST", "/pmapi/fetch",
         "names=" + big + ",hinv.ncpu",
         lambda st, b: st == 200 and names_of(b) == ["hinv.ncpu"]),
        # (the message is cut at 1 KiB: no "Unknown metric name" left)
        ("a 70000-byte metric name", "POST", "/pmapi/metric",
         "names=" + big, lambda st, b: st == 400 and failed(b)),
        ("a 70000-byte prefix", "POST", "/pmapi/metric", "prefix=" + big,
         lambda st, b: st == 400 and failed(b)),
        ("a 70000-byte children prefix", "POST", "/pmapi/children",
         "prefix=" + big, lambda st, b: st == 400),
        ("a 70000-byte indom name", "POST", "/pmapi/indom", "name=" + big,
         lambda st, b: st == 400),
        ("every pmcd metric in one fetch (form body)", "POST",
         "/pmapi/fetch", "names=" + ",".join(NAMES),
         lambda st, b: st == 200 and "hinv.ncpu" in (names_of(b) or [])),
        ("4096 pmids in one fetch", "POST", "/pmapi/fetch",
         "pmids=" + ",".join("60.%d.%d" % (c, i) for c in range(64)
                             for i in range(64)),
         lambda st, b: st == 200 and "hinv.ncpu" in (names_of(b) or [])),
    ]
    with btd.pmcd_lock(), btd.Daemon(pmcd="localhost",
                                     args=["--max-names", "100000"]) as d:
        # warm: the pool is up before the clients start
        ok = False
        for _ in range(40):
            st, _, _ = btd.http("GET", d.url("/pmapi/fetch?names=hinv.ncpu"))
            if st == 200:
                ok = True
                break
            time.sleep(0.25)
        if not tap.ok(ok, "bpftraced passes hinv.ncpu through from pmcd"):
            tap.done()
        for spec in ("pcp://127.0.0.1%3Fcontainer=abc",
                     "localhost%3Fusername=x%26container=abc"):
            st, _, body = btd.http("GET", d.url("/pmapi/context?hostspec="
                                                + spec))
            tap.ok(st == 400 and b"containers are not supported" in body,
                   "a container hostspec (%s) is refused, never served "
                   "host-wide" % spec, "  got %s %r" % (st, body[:200]))
        good = [Good(d) for _ in range(4)]
        for g in good:
            g.start()
        for rnd in range(3):
            for desc, method, path, form, check in cases:
                try:
                    st, _, body = btd.http(
                        method, d.url(path), timeout=120,
                        body=form.encode() if form else None,
                        headers=FORM if form else None)
                except Exception as e:  # noqa: BLE001
                    st, body = "exc", repr(e).encode()
                if rnd == 0:
                    good_answer = check(st, body)
                    tap.ok(good_answer, "%s: %s %s answers as pmproxy"
                           % (desc, method, path[:60]),
                           None if good_answer else
                           "  got %s %r" % (st, body[:300]))
        time.sleep(0.5)
        for g in good:
            g.stop.set()
        for g in good:
            g.join(60)
        n_ok = sum(g.ok for g in good)
        bad = [b for g in good for b in g.bad]
        tap.ok(n_ok > 0 and not bad, "other clients' pmcd fetches never "
               "failed during the bad requests (%d ok, %d failed)"
               % (n_ok, len(bad)), "  first failures: %r" % bad[:3])
        st, _, body = btd.http("GET", d.url("/pmapi/fetch?names=hinv.ncpu"))
        tap.ok(st == 200 and names_of(body) == ["hinv.ncpu"],
               "a fetch after them works", "  got %s %r" % (st, body[:200]))
        log = d.stderr_text()
        tap.ok("IPC protocol failure" not in log and
               "connection lost" not in log and "reconnect" not in log,
               "the daemon never lost or reconnected its pmcd connections",
               "  log: %s" % log[-1500:])
    tap.done()


main()
