#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_control_role.py - what bpftraced can keep apart although the control
role is root on the host (TAP).

  reads    with --auth-reads a script's code, output and data variables are
           readable by the user who registered it and by admins only: in
           /pmapi/fetch, pmwebd's _fetch, /pmapi/indom, /metrics,
           bpftrace.info.scripts and bpftrace.info.scripts_json; a script
           started with --script is readable by every reader
  answers  the answer to a control store goes to the principal that stored
           it: another user (or an anonymous client) fetching the same
           context gets "{}" and does not consume it
  bound    a refused 70 KB register keeps at most
           --max-control-answer-bytes of answer, and kept answers count
           against --max-memory (503 once it is full, room again once one
           is read)
  fds      bpftrace children (the script, bpftrace --version, bpftrace -l)
           get fds 0-2 only, not an fd the daemon inherited
"""

import base64
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE
USERS = [("alice", "control"), ("bob", "control"), ("rita", "read"),
         ("root", "admin")]
MEMMSG = "memory limit reached"


def hdr(user):
    if user is None:
        return {}
    tok = base64.b64encode(("%s:pw-%s" % (user, user)).encode()).decode()
    return {"Authorization": "Basic " + tok}


def req(d, path, user=None, body=None, method="GET", **params):
    """(status, parsed JSON or None, raw body)"""
    url = d.url(path + ("?" + urllib.parse.urlencode(params)
                        if params else ""))
    h = hdr(user)
    if body is not None:
        h["Content-Type"] = "text/plain"
    st, _, raw = btd.http(method, url, body=body, headers=h, timeout=30)
    try:
        return st, json.loads(raw.decode("utf-8")), raw
    except ValueError:
        return st, None, raw


def context(d, user=None):
    st, j, raw = req(d, "/pmapi/context", user, polltimeout=120)
    if st != 200:
        raise btd.DaemonError("context: %s %r" % (st, raw[:200]))
    return j["context"]


def store(d, ctx, action, value, user=None):
    return req(d, "/pmapi/store", user, body=value, method="POST",
               context=ctx, name="bpftrace.control." + action)


def values(d, names, user=None, ctx=None):
    """{name: {instance: value}} of one /pmapi/fetch"""
    p = {"names": names}
    if ctx is not None:
        p["context"] = ctx
    st, j, raw = req(d, "/pmapi/fetch", user, **p)
    if st != 200 or j is None:
        raise btd.DaemonError("fetch %s: %s %r" % (names, st, raw[:200]))
    return {v["name"]: {i["instance"]: i["value"] for i in v["instances"]}
            for v in j["values"]}


def answer(d, ctx, user=None, action="register"):
    name = "bpftrace.control." + action
    return values(d, name, user, ctx).get(name, {}).get(None)


def code_for(name, fixture="scalar_count"):
    return ("// name: %s\n// fixture: %s\n// fake: hold\n"
            "tracepoint:raw_syscalls:sys_enter { @calls = count(); }\n"
            % (name, fixture))


def wait(pred, timeout=10.0):
    return btd.wait_for(pred, timeout, 0.05)


# --------------------------------------------------------------------------
# reads
# --------------------------------------------------------------------------

def test_reads(s, tmp, users):
    pub = os.path.join(tmp, "pub.bt")
    with open(pub, "w") as f:
        f.write(code_for("pub"))
    args = ["--control", "auth", "--auth-file", users, "--auth-reads",
            "--bpftrace", FAKE, "--script", pub]
    with btd.Daemon(args, env={"BT_SHARED": s}, wait_version=False) as d:
        ctx = context(d, "alice")
        st, _, raw = store(d, ctx, "register", code_for("amine"), "alice")
        tap.check(st == 200, "alice registers amine", raw[:300])
        ctx = context(d, "alice")
        st, _, raw = store(d, ctx, "register",
                           "// name: amap\n// fixture: big_map\n"
                           "BEGIN { @big[1] = 1; }\n", "alice")
        tap.check(st == 200, "alice registers amap (a map)", raw[:300])
        data = "bpftrace.scripts.amine.data.calls"
        code = "bpftrace.scripts.amine.code"
        status = "bpftrace.scripts.amine.status"
        names = ",".join((data, code, status))
        ok = wait(lambda: data in values(d, data, "alice"))
        tap.check(ok, "the owner reads her script's data")
        # the map's name is in the namespace before its first print:
        # wait for instances, not for the name
        wait(lambda: values(d, "bpftrace.scripts.amap.data.big",
                            "alice").get("bpftrace.scripts.amap.data.big"))
        wait(lambda: "bpftrace.scripts.pub.data.calls" in values(
            d, "bpftrace.scripts.pub.data.calls", "bob"))

        for who, sees in (("alice", True), ("root", True), ("bob", False),
                          ("rita", False)):
            v = values(d, names, who)
            got = (data in v, code in v)
            tap.check(got == (sees, sees) and status in v,
                      "--auth-reads fetch as %s (%s): data and code %s, "
                      "status readable" % (who, dict(USERS)[who],
                                           "readable" if sees else "absent"),
                      repr(v)[:400])

        # pmwebd's _fetch
        for who, sees in (("alice", True), ("bob", False)):
            c = context(d, who)
            st, j, raw = req(d, "/pmapi/%d/_fetch" % c, who,
                             names=",".join((data, code, status)))
            got = sorted(x["name"] for x in (j or {}).get("values", []))
            want = sorted([code, data, status] if sees else [status])
            tap.check(st == 200 and got == want,
                      "pmwebd _fetch as %s: %s" % (who, want), raw[:300])

        # /pmapi/indom: the map's keys are data
        for who, sees in (("alice", True), ("bob", False)):
            st, j, raw = req(d, "/pmapi/indom", who,
                             name="bpftrace.scripts.amap.data.big")
            n = len((j or {}).get("instances", []))
            tap.check(st == 200 and (n > 0) == sees,
                      "indom of alice's map as %s: %s instances" % (
                          who, "its" if sees else "no"), raw[:300])

        # /metrics
        for who, sees in (("alice", True), ("bob", False)):
            st, _, raw = btd.http("GET", d.url("/metrics"), headers=hdr(who))
            text = raw.decode("utf-8", "replace")
            tap.check(st == 200 and ("bpftrace_scripts_amine_data_calls"
                                     in text) == sees and
                      "bpftrace_scripts_pub_data_calls" in text,
                      "/metrics as %s: alice's variables %s, the --script "
                      "one's listed" % (who, "listed" if sees else "absent"),
                      text[:300])

        # the --script one (no owner) is everyone's
        v = values(d, "bpftrace.scripts.pub.data.calls,"
                   "bpftrace.scripts.pub.code", "bob")
        tap.check(len(v) == 2, "a --script script's data and code are "
                  "readable by another user", repr(v)[:300])

        # info.scripts: code per script
        for who, sees in (("alice", True), ("root", True), ("bob", False)):
            v = values(d, "bpftrace.info.scripts", who).get(
                "bpftrace.info.scripts", {})
            codes = list(v.values())
            has_a = any("name: amine" in c for c in codes)
            has_p = any("name: pub" in c for c in codes)
            tap.check(has_a == sees and has_p,
                      "bpftrace.info.scripts as %s: alice's code %s, the "
                      "--script one's shown" % (who, "shown" if sees
                                                 else "absent"),
                      repr(codes)[:300])

        # info.scripts_json: others' entries redacted
        for who, sees in (("alice", True), ("root", True), ("bob", False)):
            v = values(d, "bpftrace.info.scripts_json", who)
            lst = json.loads(v["bpftrace.info.scripts_json"][None])
            ent = {e["name"]: e for e in lst}
            a = ent.get("amine", {})
            shown = "name: amine" in a.get("code", "")
            tap.check("amine" in ent and shown == sees and
                      a.get("redacted", False) != sees and
                      "name: pub" in ent.get("pub", {}).get("code", ""),
                      "scripts_json as %s: alice's entry listed, its code "
                      "%s" % (who, "shown" if sees else "redacted"),
                      repr(a)[:300])

        # derived metrics cannot read it either
        seen = {}
        for who, name in (("alice", "alice.mine"), ("bob", "bob.steal")):
            c = context(d, who)
            st, _, raw = req(d, "/pmapi/derive", who, context=c, name=name,
                             expr=data + " * 2")
            seen[who] = (st, name in values(d, name, who, c))
        tap.check(seen == {"alice": (200, True), "bob": (200, False)},
                  "a derived metric over alice's variable: listed for alice, "
                  "no value for bob", repr(seen))


# --------------------------------------------------------------------------
# answers
# --------------------------------------------------------------------------

def test_answers(s, users):
    args = ["--control", "auth", "--auth-file", users, "--bpftrace", FAKE]
    with btd.Daemon(args, env={"BT_SHARED": s}, wait_version=False) as d:
        ctx = context(d, "alice")
        st, _, raw = store(d, ctx, "register", code_for("secret1"), "alice")
        tap.check(st == 200, "alice registers in her context", raw[:200])
        for thief in ("bob", "root", None):
            got = answer(d, ctx, thief)
            tap.check(got == "{}", "%s fetching alice's context gets {} "
                      "for the register answer" % (thief or "an anonymous "
                                                   "client"), repr(got)[:300])
        got = answer(d, ctx, "alice")
        tap.check(got and json.loads(got).get("name") == "secret1",
                  "alice still reads her answer afterwards (not consumed)",
                  repr(got)[:300])
        tap.check(answer(d, ctx, "alice") == "{}",
                  "reading it consumed it, as the PMDA does")

    # anonymous loopback control: an authenticated reader is another
    # principal
    args = ["--control", "loopback", "--auth-file", users, "--bpftrace",
            FAKE]
    with btd.Daemon(args, env={"BT_SHARED": s}, wait_version=False) as d:
        ctx = context(d)
        st, _, raw = store(d, ctx, "register", code_for("anon1"))
        tap.check(st == 200, "anonymous loopback register", raw[:200])
        got = answer(d, ctx, "bob")
        tap.check(got == "{}", "bob fetching the anonymous client's "
                  "context gets {}", repr(got)[:300])
        got = answer(d, ctx)
        tap.check(got and json.loads(got).get("name") == "anon1",
                  "the anonymous client reads its answer", repr(got)[:300])


# --------------------------------------------------------------------------
# bound
# --------------------------------------------------------------------------

def test_bound(s):
    big = "// " + '"' * 70000 + "\nBEGIN { exit(); }\n"
    for limit in (None, 4096):
        args = ["--control", "loopback", "--bpftrace", FAKE]
        if limit:
            args += ["--max-control-answer-bytes", str(limit)]
        lim = limit or 65536
        with btd.Daemon(args, env={"BT_SHARED": s},
                        wait_version=False) as d:
            ctx = context(d)
            st, j, raw = store(d, ctx, "register", big)
            got = answer(d, ctx)
            size = len(got.encode()) if got else 0
            try:
                a = json.loads(got)
            except (TypeError, ValueError):
                a = {}
            tap.check(st == 400 and "max-script-bytes" in (j or {}).get(
                "message", "") and 0 < size <= lim and
                a.get("code_truncated") is True and
                a["code"].startswith('// ""') and
                "max-script-bytes" in a.get("state", {}).get("error", ""),
                "a refused 70 KB register of quotes keeps an answer of "
                "%d bytes (limit %d), valid JSON, code cut and marked"
                % (size, lim), raw[:200])



def test_answer_memory(s):
    """kept answers are charged to --max-memory"""
    big = "// " + '"' * 70000 + "\nBEGIN { exit(); }\n"
    # the same size as big, so it needs what the refused store needed
    after = code_for("after")
    after += "// " + '"' * (len(big) - len(after) - 4) + "\n"
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE,
                     "--max-script-bytes", "131072",
                     "--max-memory", "2097152"], env={"BT_SHARED": s},
                    wait_version=False) as d:
        spare = context(d)      # holds no answer: a store must reserve one
        ctxs, codes, msg = [], [], ""
        for _ in range(40):
            # short-lived contexts: their answers go when they expire
            st, j, raw = req(d, "/pmapi/context", None, polltimeout=6)
            if st == 200:
                c = j["context"]
                st, j, raw = store(d, c, "register", big)
            codes.append(st)
            if st == 503:
                msg = (j or {}).get("message", "")
                break
            ctxs.append(c)
        st, _, sraw = store(d, spare, "register", after)
        tap.check(codes[-1] == 503 and MEMMSG in msg and
                  "--max-memory" in msg and len(ctxs) >= 4,
                  "unread 64 KiB answers fill --max-memory 2 MiB (1 MiB for "
                  "clients): request "
                  "%d is refused 503 (%s)" % (len(codes), msg), repr(codes))
        # at the ceiling every answer is refused too (answers are charged
        # while they are sent): wait for the contexts to expire, which
        # frees their answers, before looking for the script
        deadline = time.monotonic() + 30
        while True:
            try:
                v = values(d, "bpftrace.scripts.after.status")
                held = values(d, "bpftrace.daemon.memory_held")
                if held["bpftrace.daemon.memory_held"][None] < 400000:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            except btd.DaemonError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        # refused for memory, or its idle context was evicted to make
        # room (--max-memory reclaims idle contexts first): either way
        # nothing ran
        refused = st == 503 or (st == 400 and b"unknown context" in sraw)
        tap.check(refused and v == {}, "a store refused for memory did "
                  "not act (no script 'after')", repr((st, v, sraw[:300])))
        st, _, raw = store(d, context(d), "register", after)
        tap.check(st == 200, "expired contexts free their answers' memory: "
                  "the next register is accepted", raw[:200])


# --------------------------------------------------------------------------
# fds
# --------------------------------------------------------------------------

FD_FAKE = r"""#!/bin/sh
# lists its own open fds into $FD_DUMP/<mode>, then acts as bpftrace
# (in a subshell: a redirection of the shell's own saves its fds above 9)
dump() { (ls -l /proc/$$/fd) > "$FD_DUMP/$1.tmp"; mv "$FD_DUMP/$1.tmp" "$FD_DUMP/$1"; }
case "$1" in
--version) dump version; echo "bpftrace v0.17.0"; exit 0 ;;
-l) dump list; echo "tracepoint:sched:sched_switch"; exit 0 ;;
esac
dump run
cat > /dev/null
echo '{"type": "attached_probes", "data": {"probes": 1}}'
exit 0
"""


def open_fds(path, fake):
    """the fds in one `ls -l /proc/PID/fd` dump, minus the shell's own
    descriptor for the script it runs"""
    fds = {}
    with open(path) as f:
        for ln in f:
            m = re.search(r"\s(\d+) -> (.*)$", ln.rstrip("\n"))
            if m:
                fds[int(m.group(1))] = m.group(2)
    return {fd: t for fd, t in fds.items() if fd > 2 and t != fake}


def test_fds(s, tmp):
    dump = os.path.join(tmp, "fds")
    os.mkdir(dump)
    fake = os.path.join(tmp, "fd-bpftrace")
    with open(fake, "w") as f:
        f.write(FD_FAKE)
    os.chmod(fake, stat.S_IRWXU)
    script = os.path.join(tmp, "fdprobe.bt")
    with open(script, "w") as f:
        f.write("// name: fdprobe\nBEGIN { @x = 1; exit(); }\n")
    secret = os.path.join(tmp, "inherited")
    with open(secret, "w") as f:
        f.write("not for bpftrace\n")
    fd = os.open(secret, os.O_RDONLY)
    os.dup2(fd, 251)
    os.close(fd)
    os.set_inheritable(251, True)
    try:
        with btd.Daemon(["--bpftrace", fake, "--script", script],
                        env={"BT_SHARED": s, "FD_DUMP": dump},
                        pass_fds=(251,), wait_version=False) as d:
            pid = d.proc.pid
            try:
                inherited = os.readlink("/proc/%d/fd/251" % pid)
            except OSError:
                inherited = None
            tap.check(inherited == secret, "the daemon did inherit fd 251 "
                      "(the test's premise)", repr(inherited))
            for mode, what in (("version", "bpftrace --version"),
                               ("list", "bpftrace -l"),
                               ("run", "the script's bpftrace")):
                p = os.path.join(dump, mode)
                wait(lambda: os.path.exists(p), 15.0)
                if not os.path.exists(p):
                    tap.ok(False, "%s ran" % what, d.stderr_text()[-1500:])
                    continue
                extra = open_fds(p, fake)
                tap.check(extra == {}, "%s has fds 0-2 only (no fd 251, no "
                          "fd of the daemon's)" % what, repr(extra))
    finally:
        os.close(251)


def main():
    s = btd.shared_dir()
    if s is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    if not os.access(btd.passwd_binary(), os.X_OK):
        btd.Tap.skip_all("no bpftraced-passwd at %s" % btd.passwd_binary())
    tmp = tempfile.mkdtemp(prefix="btd-role-")
    try:
        users = btd.users_file(tmp, USERS)
        for name, fn, args in (("reads", test_reads, (s, tmp, users)),
                               ("answers", test_answers, (s, users)),
                               ("memory", test_answer_memory, (s,)),
                               ("bound", test_bound, (s,)),
                               ("fds", test_fds, (s, tmp))):
            try:
                fn(*args)
            except (btd.DaemonError, OSError, ValueError, KeyError) as e:
                tap.ok(False, "%s: ran to the end" % name, str(e)[-1500:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
