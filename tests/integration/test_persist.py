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
  * kill -9 while four keep-alive clients fetch a live map and another
    registers: no bpftrace child outlives the daemon, every acknowledged
    registration is back, the pid metrics name the new daemon's live
    children, and the clients see connection errors, then normal answers;
  * code and names shaped like SQL injection come back byte for byte;
  * a corrupted database file, a state dir that is a file, and a full
    disk each give the documented error.
"""

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE


shared = btd.shared_dir


def daemon(state, sh, extra=()):
    return btd.Daemon(["--control", "loopback", "--bpftrace", FAKE] +
                      list(extra), env={"BT_SHARED": sh}, state_dir=state)


class Client(btd.Client):
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


def tagged(tag):
    """{pid: (ppid, state, cmdline)} of live processes whose environment
    holds BTD_TEST_TAG=tag: a daemon's bpftrace children, found even when
    they were reparented (other tests' children have other tags)."""
    want = ("BTD_TEST_TAG=%s" % tag).encode()
    out = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % e, "rb") as f:
                if want not in f.read().split(b"\0"):
                    continue
            with open("/proc/%s/stat" % e) as f:
                st = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % e, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[int(e)] = (int(st[1]), st[0], cmd.strip())
    return out


def test_load_kill(sh):
    """kill -9 while four keep-alive clients fetch a live map and another
    client registers scripts; restart on the same state directory."""
    state = tempfile.mkdtemp(prefix="btd-state-")
    tag1, tag2 = "load1-%d" % os.getpid(), "load2-%d" % os.getpid()
    args = ["--control", "loopback", "--bpftrace", FAKE,
            "--max-scripts", "300"]
    d = btd.Daemon(args, env={"BT_SHARED": sh, "BTD_TEST_TAG": tag1},
                   state_dir=state)
    try:
        load_kill(d, sh, state, args, tag1, tag2)
    finally:
        d.stop()            # no-op after the kill; on an exception, ends it
        shutil.rmtree(state, ignore_errors=True)


def load_kill(d, sh, state, args, tag1, tag2):
    c = Client(d)
    c.store("bpftrace.control.register", "// name: live\n" + HOLD + MAP_CODE)
    c.wait("bpftrace.scripts.live.status", lambda v: v == "started")
    live = "bpftrace.scripts.live.data.bycomm"
    deadline = time.monotonic() + 10
    want = []
    while time.monotonic() < deadline and len(want) != 4:
        want = sorted((i["instance"], i["value"])
                      for i in c.fetch(live).get(live) or [])
        time.sleep(0.05)
    want_pmid = c.pmids(live).get(live)
    stop = threading.Event()
    killed = threading.Event()
    events = [[] for _ in range(4)]     # per client: (phase, outcome)

    def fetcher(k):
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = btd.connect(d.url("/"), timeout=5)
                st, _, body = btd.http(
                    "GET", d.url("/pmapi/fetch?names=" + live), conn=conn)
                got = pmid = None
                if st == 200:
                    j = json.loads(body)
                    pmid = j["values"][0]["pmid"]
                    got = sorted((i["instance"], i["value"]) for i in
                                 j["values"][0]["instances"])
                if st == 200 and pmid == want_pmid and got == want:
                    out = "ok"
                elif st == 200 and pmid == want_pmid and got == []:
                    out = "empty"       # restored, no output from it yet
                else:
                    out = "http %d %s" % (st, body[:300])
            except (OSError, btd.httpclient.HTTPException, ValueError,
                    KeyError, IndexError) as e:
                out = "conn " + type(e).__name__
            # the phase is when the answer (or error) came
            events[k].append(("after" if killed.is_set() else "before",
                              out))
            if out.startswith("conn "):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    acked = []

    def registrar():
        for i in range(250):
            if killed.is_set():
                return
            try:
                st, j = c.store("bpftrace.control.register",
                                "// name: r%03d\n%s" % (i, HOLD + MAP_CODE))
            except Exception:       # noqa: BLE001 - the daemon died
                return
            if st == 200:
                acked.append("r%03d" % i)

    threads = [threading.Thread(target=fetcher, args=(k,), daemon=True)
               for k in range(4)]
    threads.append(threading.Thread(target=registrar, daemon=True))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(acked) < 12 or min(
            len(e) for e in events) < 20):
        time.sleep(0.02)
    old_kids = tagged(tag1)
    killed.set()
    d.proc.kill()                           # kill -9 mid-load
    d.proc.wait()
    n_acked = len(acked)
    # the children go with it (PR_SET_PDEATHSIG): none left reparented
    deadline = time.monotonic() + 5
    left = tagged(tag1)
    while time.monotonic() < deadline and any(
            v[1] != "Z" for v in left.values()):
        time.sleep(0.05)
        left = tagged(tag1)
    orphans = {p: v for p, v in left.items() if v[1] != "Z"}
    tap.check(n_acked >= 12 and len(old_kids) >= 2 and not orphans,
           "kill -9 under load (4 fetching clients, %d registrations "
           "acknowledged): none of the old daemon's %d bpftrace children "
           "is left running (checked /proc for 5 s)" % (n_acked,
                                                         len(old_kids)),
           "orphans (pid: ppid, state, cmdline): %r" % orphans)
    t0 = time.monotonic()
    d2 = btd.Daemon(args, env={"BT_SHARED": sh, "BTD_TEST_TAG": tag2},
                    state_dir=state, port=d.port)   # where clients look
    try:
        c2 = Client(d2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and min(sum(
                1 for ph, o in e if ph == "after" and o == "ok")
                for e in events) < 20:
            time.sleep(0.05)
        restart_s = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(30)
        # per client: before the kill all good; from the kill on: answers
        # the old daemon still gave (that instant), connection errors,
        # then the new daemon's: the restored metric (same PMID) without
        # values until its new bpftrace child prints, then the same values
        rows, good, empties = [], True, []
        for k, e in enumerate(events):
            before = [o for ph, o in e if ph == "before"]
            after = [o for ph, o in e if ph == "after"]
            i = 0
            while i < len(after) and after[i] == "ok":
                i += 1
            j = i
            while j < len(after) and after[j] != "ok":
                j += 1
            n_err = 0
            while n_err < j - i and after[i + n_err].startswith("conn "):
                n_err += 1
            empty, rest = after[i + n_err:j], after[j:]
            good = good and before.count("ok") == len(before) >= 20 and \
                n_err > 0 and empty.count("empty") == len(empty) and \
                rest.count("ok") == len(rest) >= 20
            rows.append("client %d: %d/%d good before, %d good in flight, "
                        "errors %s, %d without values yet, then %d/%d good; "
                        "unexpected: %r" % (
                            k, before.count("ok"), len(before), i,
                            dict(collections.Counter(after[i:i + n_err])),
                            empty.count("empty"), rest.count("ok"),
                            len(rest), [o for o in empty + rest
                                        if o not in ("ok", "empty")][:3]))
            empties.append(empty.count("empty"))
        tap.ok(good, "each fetching client: all answers good before the "
               "kill; then connection errors; then from the restarted "
               "daemon on the same port the restored metric, same PMID, "
               "without values until its new child prints (%s answers), "
               "then the same values (%.1f s from restart to 20 good "
               "fetches each); no other answer" % (
                   "/".join(map(str, empties)), restart_s),
               "\n".join(rows))
        names = {x["metadata"]["name"] for x in json.loads(
            c2.value("bpftrace.info.scripts_json"))}
        missing = [n for n in ["live"] + acked[:n_acked] if n not in names]
        tap.check(not missing, "every acknowledged registration is back "
               "(%d acknowledged, %d scripts after restart)"
               % (n_acked, len(names)), "missing %r" % missing[:10])
        # restored scripts run as new children of the new daemon, and their
        # pid metrics say so
        deadline = time.monotonic() + 20
        bad = names
        while time.monotonic() < deadline and bad:
            kids = tagged(tag2)
            pids = {n: c2.value("bpftrace.scripts.%s.pid" % n)
                    for n in sorted(names)}
            bad = {n: p for n, p in pids.items()
                   if not (isinstance(p, int) and p in kids and
                           kids[p][0] == d2.proc.pid and kids[p][1] != "Z"
                           and p not in old_kids)}
            if bad:
                time.sleep(0.2)
        tap.check(not bad, "the pid metric of each of the %d restored scripts "
               "is a live child of the new daemon (pid %d), none an old "
               "pid" % (len(names), d2.proc.pid),
               "bad: %r" % dict(list(bad.items())[:5]))
        err = d2.stderr_text()
        tap.ok(d2.alive() and "Sanitizer" not in err and
               "runtime error" not in err, "the restarted daemon is "
               "alive; no sanitizer report", err[-1500:])
    finally:
        stop.set()
        d2.stop()
    tap.ok(not [p for p, v in tagged(tag2).items() if v[1] != "Z"],
           "after its clean stop, none of the new daemon's children is "
           "left")


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
    test_load_kill(sh)
    test_bytes_kept(sh)
    test_state_dir_removed(sh)
    test_faults(sh)
    tap.done()


if __name__ == "__main__":
    main()
