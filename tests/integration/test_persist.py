#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_persist.py - scripts survive restarts and crashes (TAP).

Runs bpftraced with tests/lib/fake-bpftrace (no root or bpftrace needed)
on a state directory that outlives each daemon:

  * register, kill -9 the daemon, start it again: the scripts run again
    with the same names, script ids, PMIDs and instance ids; a stopped
    script stays stopped; a deregistered one stays gone;
  * kill -9 in the middle of a burst of registrations: the database opens
    and every acknowledged script is there;
  * code and names shaped like SQL injection come back byte for byte;
  * a corrupted database file, a state dir that is a file, and a full
    disk each give the documented error.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE


shared = btd.shared_dir


def daemon(state, sh, extra=()):
    return btd.Daemon(["--control", "loopback", "--bpftrace", FAKE] +
                      list(extra), env={"BT_SHARED": sh}, state_dir=state)


class Client:
    def __init__(self, d):
        self.d = d
        self.ctx = self.getj("/pmapi/context", polltimeout=120)[1]["context"]

    def getj(self, path, **params):
        st, _, body = btd.http("GET", self.d.url(
            path + "?" + urllib.parse.urlencode(params)), timeout=15.0)
        try:
            return st, json.loads(body)
        except ValueError:
            return st, {}

    def store(self, name, value):
        return self.getj("/pmapi/store", context=self.ctx, name=name,
                         value=value)

    def fetch(self, *names):
        st, j = self.getj("/pmapi/fetch", context=self.ctx,
                          names=",".join(names))
        return {v["name"]: v["instances"] for v in j.get("values", [])}

    def value(self, name):
        v = self.fetch(name).get(name)
        return v[0]["value"] if v else None

    def wait(self, name, pred, timeout=8):
        deadline = time.monotonic() + timeout
        v = None
        while time.monotonic() < deadline:
            v = self.value(name)
            if v is not None and pred(v):
                return v
            time.sleep(0.05)
        return v

    def pmids(self, prefix):
        st, j = self.getj("/pmapi/metric", prefix=prefix)
        return {m["name"]: m["pmid"] for m in j.get("metrics", [])}

    def instances(self, name):
        st, j = self.getj("/pmapi/indom", name=name)
        return {i["name"]: i["instance"] for i in j.get("instances", [])}


HOLD = "// fixture: map_string_key\n// fake: hold\n"
MAP_CODE = "tracepoint:a:b { @bycomm[comm] = count(); }\n"


def test_kill9_restart(sh):
    state = tempfile.mkdtemp(prefix="btd-state-")
    d = daemon(state, sh)
    c = Client(d)
    c.store("bpftrace.control.register", "// name: keep\n" + HOLD + MAP_CODE)
    c.store("bpftrace.control.register", "// name: paused\n" + HOLD +
            MAP_CODE)
    c.store("bpftrace.control.register", "// name: gone\n" + HOLD + MAP_CODE)
    c.store("bpftrace.control.register", HOLD + MAP_CODE)
    anon = json.loads(c.value("bpftrace.control.register"))["script_id"]
    c.wait("bpftrace.scripts.keep.status", lambda v: v == "started")
    c.wait("bpftrace.scripts.keep.data.bycomm", lambda v: True)
    c.store("bpftrace.control.stop", "paused")
    c.wait("bpftrace.scripts.paused.status", lambda v: v == "stopped")
    c.store("bpftrace.control.deregister", "gone")
    before = c.pmids("bpftrace.scripts")
    inst = c.instances("bpftrace.scripts.keep.data.bycomm")
    pid = c.value("bpftrace.scripts.keep.pid")
    ids = json.loads(c.value("bpftrace.info.scripts_json"))
    ids = sorted((s["script_id"], s["metadata"]["name"]) for s in ids)
    d.proc.kill()                           # kill -9: no goodbye
    d.proc.wait()
    time.sleep(0.3)
    tap.ok(not os.path.exists("/proc/%d" % pid) or
           open("/proc/%d/stat" % pid).read().split()[2] == "Z",
           "kill -9 of the daemon takes its bpftrace children along "
           "(PR_SET_PDEATHSIG)")
    d2 = daemon(state, sh)
    try:
        c2 = Client(d2)
        s = c2.wait("bpftrace.scripts.keep.status", lambda v: v == "started")
        tap.ok(s == "started", "after kill -9 and a restart the named "
               "script runs again", s)
        after = c2.pmids("bpftrace.scripts")
        tap.ok(after == before and any(n.startswith(
            "bpftrace.scripts.%s." % anon) for n in after),
               "same metric names and PMIDs (%d metrics, the unnamed script "
               "too)" % len(after),
               "missing %r extra %r" % (sorted(set(before) - set(after))[:4],
                                        sorted(set(after) - set(before))[:4]))
        c2.wait("bpftrace.scripts.keep.data.bycomm", lambda v: True)
        inst2 = c2.instances("bpftrace.scripts.keep.data.bycomm")
        tap.ok(inst and inst2 == inst, "same instance names and ids",
               "%r vs %r" % (inst, inst2))
        ids2 = json.loads(c2.value("bpftrace.info.scripts_json"))
        ids2 = sorted((x["script_id"], x["metadata"]["name"]) for x in ids2)
        tap.ok(ids2 == ids, "same script ids", "%r vs %r" % (ids, ids2))
        tap.ok(c2.value("bpftrace.scripts.paused.status") == "stopped",
               "a stopped script stays stopped")
        st, j = c2.getj("/pmapi/metric", name="bpftrace.scripts.gone.status")
        tap.ok(st == 400, "a deregistered script stays gone")
        st, j = c2.store("bpftrace.control.start", "paused")
        s = c2.wait("bpftrace.scripts.paused.status",
                    lambda v: v == "started")
        tap.ok(s == "started", "the restored stopped script starts on "
               "request")
    finally:
        d2.stop()
    d3 = daemon(state, sh)
    try:
        c3 = Client(d3)
        s = c3.wait("bpftrace.scripts.paused.status",
                    lambda v: v == "started")
        tap.ok(s == "started", "start is remembered across a clean restart")
    finally:
        d3.stop()


def test_burst_kill(sh):
    state = tempfile.mkdtemp(prefix="btd-state-")
    d = daemon(state, sh)
    c = Client(d)
    acked = []

    def burst():
        for i in range(200):
            try:
                st, j = c.store("bpftrace.control.register",
                                "// name: b%03d\n%s" % (i, HOLD + MAP_CODE))
            except Exception:
                return
            if st == 200:
                acked.append("b%03d" % i)

    t = threading.Thread(target=burst)
    t.start()
    while len(acked) < 15 and t.is_alive():
        time.sleep(0.01)
    d.proc.kill()
    d.proc.wait()
    t.join()
    d2 = daemon(state, sh, ["--max-scripts", "300"])
    try:
        c2 = Client(d2)
        names = {x["metadata"]["name"] for x in json.loads(
            c2.value("bpftrace.info.scripts_json"))}
        missing = [n for n in acked if n not in names]
        tap.ok(len(acked) >= 15 and not missing,
               "kill -9 during a burst: all %d acknowledged registrations "
               "are there after restart (%d in all)" % (len(acked),
                                                       len(names)),
               "missing %r" % missing[:5])
    finally:
        d2.stop()


def test_bytes_kept(sh):
    state = tempfile.mkdtemp(prefix="btd-state-")
    code = ("// name: sqli_ok\n" + HOLD +
            "// '); DROP TABLE scripts;-- \"quoted\" \\\\ back\\slash\n"
            "tracepoint:a:b { @x[\"'; DELETE FROM audit;--\"] = count(); "
            "printf(\"%s\\n\", \"Robert'); DROP TABLE students;--\"); }\n")
    with daemon(state, sh) as d:
        c = Client(d)
        st, j = c.store("bpftrace.control.register", code)
        tap.ok(st == 200, "SQL-injection-shaped script text is accepted",
               repr(j))
    with daemon(state, sh) as d:
        c = Client(d)
        got = c.value("bpftrace.scripts.sqli_ok.code")
        tap.ok(got == code, "and comes back byte for byte after a restart",
               repr(got))


def test_state_dir_removed(sh):
    import shutil
    state = tempfile.mkdtemp(prefix="btd-state-")
    with daemon(state, sh) as d:
        c = Client(d)
        st, j = c.store("bpftrace.control.register",
                        "// name: early\n" + HOLD + MAP_CODE)
        shutil.rmtree(state)
        st, j = c.store("bpftrace.control.register",
                        "// name: late\n" + HOLD + MAP_CODE)
        tap.ok(st == 500 and "removed or replaced" in j.get("message", ""),
               "state dir removed while running: a register is refused "
               "with 500 instead of being written where it would be lost",
               repr((st, j))[:300])
        st, j = c.getj("/pmapi/metric", name="bpftrace.scripts.late.status")
        tap.ok(st == 400 and c.value("bpftrace.scripts.early.status") and
               d.alive(), "nothing of it registered; the running script and "
               "the daemon carry on")


def expect_start_error(args, env, want, desc):
    r = subprocess.run([btd.default_binary(), "--listen",
                        "127.0.0.1:%d" % btd._free_port()] + args,
                       capture_output=True, timeout=20, env=env)
    err = r.stderr.decode(errors="replace")
    tap.ok(r.returncode != 0 and want in err, desc,
           "rc=%s stderr=%r" % (r.returncode, err[-400:]))


def test_faults(sh):
    env = dict(os.environ, BT_SHARED=sh)
    state = tempfile.mkdtemp(prefix="btd-state-")
    with open(os.path.join(state, "bpftraced.db"), "wb") as f:
        f.write(b"this is not a database " * 200)
    expect_start_error(["--state-dir", state], env, "not a database",
                       "a garbage database file: exit non-zero, 'not a "
                       "database' naming the file")
    notdir = os.path.join(tempfile.mkdtemp(prefix="btd-state-"), "f")
    open(notdir, "w").close()
    expect_start_error(["--state-dir", notdir], env, "Not a directory",
                       "a state dir that is a file: exit non-zero, 'Not a "
                       "directory' naming it")
    ro = tempfile.mkdtemp(prefix="btd-ro-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs",
                        ro], capture_output=True)
    if r.returncode != 0:
        tap.skip("read-only state dir: exit non-zero naming it",
                 "cannot mount a tmpfs here")
    else:
        try:
            expect_start_error(["--state-dir", ro], env,
                               "Read-only file system",
                               "a read-only state dir: exit non-zero, "
                               "'Read-only file system' naming it")
        finally:
            subprocess.run(["umount", "-l", ro], capture_output=True)
    mnt = tempfile.mkdtemp(prefix="btd-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                        mnt], capture_output=True)
    if r.returncode != 0:
        tap.skip("disk full: register answers an error and nothing is "
                 "half-saved", "cannot mount a tmpfs here: %s" %
                 r.stderr.decode(errors="replace").strip())
        return
    try:
        with daemon(mnt, sh) as d:
            c = Client(d)
            st, j = c.store("bpftrace.control.register",
                            "// name: before\n" + HOLD + MAP_CODE)
            # fill the disk
            with open(os.path.join(mnt, "filler"), "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            big = "// name: after\n" + HOLD + MAP_CODE + "// " + "x" * 60000
            st, _, body = btd.http(
                "POST", d.url("/pmapi/store"), body=urllib.parse.urlencode(
                    {"context": c.ctx, "name": "bpftrace.control.register",
                     "value": big}).encode(),
                headers={"Content-Type":
                         "application/x-www-form-urlencoded"})
            j = json.loads(body) if body.startswith(b"{") else {}
            tap.ok(st == 500 and "disk full" in j.get("message", ""),
                   "disk full: register fails with 500 'cannot save the "
                   "script: ... disk full'",
                   repr((st, j))[:300])
            st, j = c.getj("/pmapi/metric",
                           name="bpftrace.scripts.after.status")
            tap.ok(st == 400, "and the refused script left no metrics")
            os.unlink(os.path.join(mnt, "filler"))
            st, j = c.store("bpftrace.control.register",
                            "// name: again\n" + HOLD + MAP_CODE)
            tap.ok(st == 200, "with space again, register works", repr(j))
            tap.ok(d.alive(), "the daemon kept running through it")
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def main():
    sh = shared()
    if sh is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    test_kill9_restart(sh)
    test_burst_kill(sh)
    test_bytes_kept(sh)
    test_state_dir_removed(sh)
    test_faults(sh)
    tap.done()


if __name__ == "__main__":
    main()
