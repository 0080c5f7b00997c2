#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_start.py - what a client sees while the daemon starts (TAP).

The daemon listens before "bpftrace --version" is done (it runs in the
background); persisted scripts are registered before it listens and their
bpftrace children start afterwards. With tests/lib/fake-bpftrace made to
take 500 ms for --version (FAKE_BPFTRACE_VERSION_DELAY_MS):

  * a fetch is answered well within those 500 ms; bpftrace.info.version
    has no value until the version is known, then the fake's version;
  * READY=1 ($NOTIFY_SOCKET) means "answering": it comes before the
    version is known;
  * a script registered meanwhile is "starting", then "started";
  * with persisted scripts, the first answer lists every one of them
    ("starting"), and they all run once the version is known.
"""

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

BIN = btd.default_binary()
FAKE = btd.FAKE_BPFTRACE
DELAY_MS = 500
HOLD = "// fixture: map_string_key\n// fake: hold\n" \
       "tracepoint:a:b { @bycomm[comm] = count(); }\n"
tap = btd.Tap()


def slow_env(sh):
    env = dict(os.environ)
    env.update({"BT_SHARED": sh,
                "FAKE_BPFTRACE_VERSION_DELAY_MS": str(DELAY_MS)})
    env.pop("NOTIFY_SOCKET", None)
    return env


def launch(state, env):
    """exec the daemon by hand (btd.Daemon waits for the version)."""
    port = btd.free_port()
    argv = [BIN, "--listen", "127.0.0.1:%d" % port, "--state-dir", state,
            "--pmda", "off", "--pmcd", "off", "--control", "loopback",
            "--bpftrace", FAKE, "--log-level", "warning"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p, "http://127.0.0.1:%d" % port, t0


def fetch(base, names, ctx=None):
    """{name: first value or the instances list} of one fetch; None when
    there is no answer yet."""
    q = {"names": ",".join(names)}
    if ctx is not None:
        q["context"] = ctx
    try:
        st, _, body = btd.http("GET", base + "/pmapi/fetch?" +
                               urllib.parse.urlencode(q), timeout=2.0)
    except OSError:
        return None
    if st != 200:
        return None
    out = {}
    for v in json.loads(body)["values"]:
        ins = v["instances"]
        out[v["name"]] = ins[0]["value"] if len(ins) == 1 else ins
    return out


def first_answer(base, names, t0, p, timeout=10.0):
    while time.monotonic() - t0 < timeout and p.poll() is None:
        v = fetch(base, names)
        if v is not None:
            return v, time.monotonic() - t0
        time.sleep(0.002)
    return None, None


def wait_for(base, names, pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = fetch(base, names)
        if v is not None and pred(v):
            return v
        time.sleep(0.05)
    return v


stop = btd.stop_process


def test_answer_before_version(sh):
    state = tempfile.mkdtemp(prefix="btd-start-")
    p, base, t0 = launch(state, slow_env(sh))
    try:
        v, secs = first_answer(base, ["bpftrace.info.version",
                                      "bpftrace.info.daemon_version"], t0, p)
        tap.ok(v is not None and secs < DELAY_MS / 1000.0,
               "first fetch answered %.0f ms after exec, before bpftrace "
               "--version (%d ms) is done" % ((secs or 0) * 1000, DELAY_MS),
               repr(v))
        tap.ok(v is not None and "bpftrace.info.version" not in v and
               v.get("bpftrace.info.daemon_version"),
               "meanwhile bpftrace.info.version has no value (not a wrong "
               "one); bpftrace.info.daemon_version has its own", repr(v))
        ctx = json.loads(btd.http("GET", base + "/pmapi/context")[2])[
            "context"]
        st, _, body = btd.http("GET", base + "/pmapi/store?" +
                               urllib.parse.urlencode({
                                   "context": ctx,
                                   "name": "bpftrace.control.register",
                                   "value": "// name: early\n" + HOLD}))
        early = fetch(base, ["bpftrace.scripts.early.status",
                             "bpftrace.info.version"])
        tap.ok(st == 200 and early is not None and
               (early.get("bpftrace.scripts.early.status") == "starting" or
                "bpftrace.info.version" in early),
               "a script registered before the version is known waits in "
               "\"starting\"", repr((st, body[:200], early)))
        v = wait_for(base, ["bpftrace.info.version",
                            "bpftrace.scripts.early.status"],
                     lambda v: v.get("bpftrace.scripts.early.status") ==
                     "started")
        tap.ok(v is not None and v.get("bpftrace.info.version") ==
               "v0.17.0" and v.get("bpftrace.scripts.early.status") ==
               "started", "then the version is the fake's (v0.17.0) and the "
               "script runs", repr(v))
    finally:
        stop(p)


def test_ready_before_version(sh):
    tmp = tempfile.mkdtemp(prefix="btd-start-notify-")
    addr = os.path.join(tmp, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(addr)
    s.settimeout(10)
    env = slow_env(sh)
    env["NOTIFY_SOCKET"] = addr
    p, base, t0 = launch(os.path.join(tmp, "state"), env)
    try:
        msg = s.recv(4096)
        secs = time.monotonic() - t0
        v = fetch(base, ["bpftrace.info.version"])
        tap.ok(msg == b"READY=1" and v is not None and
               "bpftrace.info.version" not in v and
               secs < DELAY_MS / 1000.0,
               "READY=1 means answering: sent %.0f ms after exec, before "
               "the version is known" % (secs * 1000), repr((msg, v)))
    except socket.timeout:
        tap.ok(False, "READY=1 received")
    finally:
        stop(p)
        s.close()


def test_restore_listed_first(sh):
    state = tempfile.mkdtemp(prefix="btd-start-restore-")
    names = ["r%d" % i for i in range(5)]
    d = btd.Daemon(["--control", "loopback", "--bpftrace", FAKE],
                   env={"BT_SHARED": sh}, state_dir=state)
    try:
        ctx = d.get_json("/pmapi/context")[1]["context"]
        for n in names:
            d.get_json("/pmapi/store?" + urllib.parse.urlencode({
                "context": ctx, "name": "bpftrace.control.register",
                "value": "// name: %s\n%s" % (n, HOLD)}))
        status = ["bpftrace.scripts.%s.status" % n for n in names]
        v = wait_for(d.base, status, lambda v: all(
            v.get(s) == "started" for s in status), timeout=15)
        tap.ok(v and all(v.get(s) == "started" for s in status),
               "setup: %d persisted scripts running" % len(names), repr(v))
    finally:
        d.stop(cleanup=False)
    p, base, t0 = launch(state, slow_env(sh))
    try:
        v, secs = first_answer(base, status + ["bpftrace.info.version"],
                               t0, p)
        tap.ok(v is not None and all(v.get(s) == "starting"
                                     for s in status) and
               "bpftrace.info.version" not in v,
               "restart: the first answer (%.0f ms after exec, version "
               "still unknown) lists every restored script, \"starting\""
               % ((secs or 0) * 1000), repr(v))
        v = wait_for(base, status, lambda v: all(
            v.get(s) == "started" for s in status), timeout=15)
        tap.ok(v is not None and all(v.get(s) == "started"
                                     for s in status),
               "then all of them run", repr(v))
    finally:
        stop(p)


def main():
    if not os.access(BIN, os.X_OK):
        btd.Tap.skip_all("bpftraced not built (%s)" % BIN)
    sh = btd.shared_dir()
    if sh is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    test_answer_before_version(sh)
    test_ready_before_version(sh)
    test_restore_listed_first(sh)
    tap.done()


if __name__ == "__main__":
    main()
