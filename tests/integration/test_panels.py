#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_panels.py - Grafana panels that must not break for good (TAP).

Driven the way grafana-pcp's bpftrace datasource (HEAD) registers a
script: a new context, GET /pmapi/store of bpftrace.control.register
with the whole script URL-encoded in value=, then a fetch of
bpftrace.control.register on that context, whose value is the Script
(script_id, state, variables, metadata).

  * a missing #include: the compiler's "file not found" reaches
    state.error (not only "bpftrace exited with status 1"), with real
    bpftrace as root and with the fake replaying the same stderr;
  * a named script registered again with the same code (page reload,
    expired context, daemon restart) by the same principal gets the
    existing script (same script_id, same answer shape, 200); a different
    code under the name, or the same code by another user with
    --control=auth, stays 400 "already in use"; a stopped or failed one
    is started again (the panel shows this run, not "name in use");
  * a script of 5 KB and more, URL-encoded in GET store (a URL over
    pmproxy's 8 KiB), registers, runs and serves data (real bpftrace as
    root, else the fake); a store URL of --max-url-bytes is served, one
    byte more is 414 with a JSON message; 64 connections holding 30 KiB
    URLs are charged to --max-memory and never take it past its ceiling
    (the overflow is answered 503), and a bystander is served afterwards.
"""

import base64
import json
import os
import socket
import shutil
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE
HOLD = "// fake: hold\n"


class Grafana:
    """grafana-pcp's requests in server access mode (Grafana's data
    proxy): GET with a JSON Content-Type."""

    def __init__(self, d, headers=None):
        self.d = d
        self.headers = {"Content-Type": "application/json",
                        "X-Grafana-Org-Id": "1"}
        self.headers.update(headers or {})

    def get(self, path, **params):
        q = urllib.parse.urlencode(params)
        st, _, body = btd.http("GET", self.d.url(
            path + ("?" + q if q else "")), timeout=10.0,
            headers=self.headers)
        try:
            j = json.loads(body)
        except ValueError:
            j = None
        return st, j, body

    def context(self, polltimeout=30):
        return self.get("/pmapi/context", hostspec="pcp://127.0.0.1",
                        polltimeout=polltimeout)[1]["context"]

    def register(self, code):
        """(store status, store JSON, Script read back or None)"""
        t = self.context()
        st, j, _ = self.get("/pmapi/store", context=t,
                            name="bpftrace.control.register", value=code)
        _, f, _ = self.get("/pmapi/fetch", context=t,
                           names="bpftrace.control.register")
        try:
            script = json.loads(f["values"][0]["instances"][0]["value"])
        except (TypeError, KeyError, IndexError, ValueError):
            script = None
        return st, j, script

    def scripts(self):
        """bpftrace.info.scripts_json, by script_id"""
        _, f, _ = self.get("/pmapi/fetch", names="bpftrace.info.scripts_json")
        try:
            v = json.loads(f["values"][0]["instances"][0]["value"])
        except (TypeError, KeyError, IndexError, ValueError):
            return {}
        return {s["script_id"]: s for s in v}

    def wait_state(self, sid, pred, timeout=20.0):
        """the Script once pred(its state) holds; None if not in time"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.scripts().get(sid)
            if s and pred(s["state"]):
                return s
            time.sleep(0.2)
        return None


def fake_shared(extra):
    """A copy of the 0.17 fixtures with extra {name: (stdout, stderr, rc)},
    for BT_SHARED of the daemon (so the fake replays them)."""
    top = tempfile.mkdtemp(prefix="btd-panels-")
    dst = os.path.join(top, "fixtures", "bpftrace-0.17")
    shutil.copytree(os.path.join(btd.shared_dir(), "fixtures",
                                 "bpftrace-0.17"), dst)
    for name, (out, err, rc) in extra.items():
        for ext, data in ((".stdout", out), (".stderr", err),
                          (".rc", "%d\n" % rc), (".bt", "")):
            with open(os.path.join(dst, name + ext), "w") as f:
                f.write(data)
    return top


RLIMIT_017 = ("ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for "
              "bpftrace. If your program is not loading, you can try "
              "\"ulimit -l 8192\" to fix the problem\n")
MISSING = "net/btd_no_such_header.h"
# what real bpftrace 0.17 writes for it (as root here): no final newline
MISSING_STDERR = (RLIMIT_017 + "definitions.h:2:10: fatal error: '%s' file "
                  "not found" % MISSING)


def check_missing_include(g, code, how):
    st, j, script = g.register(code)
    sid = script and script.get("script_id")
    s = g.wait_state(sid, lambda s: s["status"] == "error") if sid else None
    err = s["state"]["error"] if s else ""
    tap.ok(s is not None and "file not found" in err and MISSING in err and
           "RLIMIT" not in err, "%s: a missing #include: state.error has "
           "the compiler's 'file not found' line, not the RLIMIT warning"
           % how, repr(s and s["state"])[:400])
    return sid


def test_missing_include(sh):
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE],
                    env={"BT_SHARED": sh}) as d:
        g = Grafana(d)
        sid = check_missing_include(
            g, "// fixture: include_missing\n#include <%s>\n"
            "tracepoint:sock:inet_sock_set_state { @s[args->newstate] = "
            "count(); }\n" % MISSING, "fake 0.17 replay")
        _, f, _ = g.get("/pmapi/fetch", names="bpftrace.scripts.%s.warnings"
                        % sid)
        w = f and f["values"] and f["values"][0]["instances"][0]["value"]
        tap.ok(w and "RLIMIT_MEMLOCK" in w and "file not found" not in w,
               "fake 0.17 replay: the RLIMIT line is in warnings, the "
               "error is not", repr(w)[:300])
    why = btd.bpftrace_usable()
    if why:
        tap.skip("a missing #include with real bpftrace", why)
        return
    with btd.Daemon(["--control", "loopback"]) as d:
        check_missing_include(Grafana(d), "#include <%s>\n"
                              "tracepoint:sock:inet_sock_set_state { "
                              "@s[args->newstate] = count(); }\n"
                              % MISSING, "real bpftrace")


def wait_pid_change(g, sid, old_pid, timeout=20.0):
    return g.wait_state(sid, lambda s: s["pid"] > 0 and s["pid"] != old_pid
                        and s["status"] in ("starting", "started"), timeout)


def check_again(g, code, first, how):
    """Register code again; it must be first's script, answered alike."""
    st, j, again = g.register(code)
    tap.ok(st == 200 and again and again["script_id"] ==
           first["script_id"] and set(again) == set(first) and
           again["state"]["status"] in ("starting", "started") and
           again["variables"] == first["variables"] and
           again["metadata"] == first["metadata"],
           "%s: the same name and code again: 200, the existing script "
           "(same script_id, the answer shape of a new registration)" % how,
           repr((st, j, again and again["state"]))[:400])
    return again


def test_register_again(sh):
    state = tempfile.mkdtemp(prefix="btd-panels-state-")
    code = ("// name: panel\n// fixture: scalar_count\n" + HOLD +
            "tracepoint:raw_syscalls:sys_enter { @c = count(); }\n")
    args = ["--control", "loopback", "--bpftrace", FAKE]
    try:
        with btd.Daemon(args, env={"BT_SHARED": sh}, state_dir=state) as d:
            g = Grafana(d)
            st, _, first = g.register(code)
            sid = first and first["script_id"]
            s = g.wait_state(sid, lambda s: s["status"] == "started")
            tap.ok(st == 200 and s is not None, "a named script registers "
                   "and runs", repr(first)[:200])
            pid = s["state"]["pid"] if s else None
            check_again(g, code, first, "page reload")
            s = g.scripts().get(sid)
            tap.ok(s and s["state"]["pid"] == pid and s["state"]["status"]
                   in ("starting", "started"),
                   "a running script is left running (same pid, data kept)",
                   repr(s and s["state"]))
            st, j, other = g.register(code.replace("@c = count()",
                                                   "@d = count()"))
            tap.ok(st == 400 and "already in use" in j.get("message", "")
                   and other and other["state"]["status"] == "error",
                   "another code under the taken name stays 400 'already "
                   "in use' (and the answer reads back as an error)",
                   repr(j)[:300])
            _, _, n = g.get("/pmapi/fetch", names="bpftrace.scripts.panel."
                            "data.c")
            tap.ok(b'"bpftrace.scripts.panel.data.c"' in n, "the panel's "
                   "data metric is still served", repr(n)[:200])
            # a script that failed, then the panel is reloaded
            bad = ("// name: failing\n// fixture: syntax_error\n"
                   "BEGIN { @x = 1; }\n")
            st, _, f1 = g.register(bad)
            fid = f1 and f1["script_id"]
            s1 = g.wait_state(fid, lambda s: s["status"] == "error")
            again = check_again(g, bad, f1, "after an error")
            tap.ok(s1 is not None and again and again["state"]["status"] ==
                   "starting", "a failed script registered again is started "
                   "again (state starting, not the old error)",
                   repr(again and again["state"]))
            s2 = g.wait_state(fid, lambda s: s["status"] == "error" and
                              s["pid"] != (s1 or {}).get("state", {}).get(
                                  "pid"))
            tap.ok(s2 is not None and "syntax error" in s2["state"]["error"],
                   "and it fails again with this run's reason",
                   repr(s2 and s2["state"]))
            # a script the user stopped
            t = g.context()
            g.get("/pmapi/store", context=t, name="bpftrace.control.stop",
                  value="panel")
            s = g.wait_state(sid, lambda s: s["status"] == "stopped")
            check_again(g, code, first, "after a stop")
            s3 = wait_pid_change(g, sid, pid)
            tap.ok(s is not None and s3 is not None, "a stopped script "
                   "registered again runs again (a new bpftrace)",
                   repr(s3 and s3["state"]))
        # the named script persisted: a daemon restart, then a reload
        with btd.Daemon(args, env={"BT_SHARED": sh}, state_dir=state) as d:
            g = Grafana(d)
            check_again(g, code, first, "after a daemon restart")
            s = g.wait_state(sid, lambda s: s["status"] == "started")
            tap.ok(s is not None and len([x for x in g.scripts().values()
                                          if x["metadata"]["name"] ==
                                          "panel"]) == 1,
                   "after the restart: one script 'panel', running",
                   repr(s and s["state"]))
    finally:
        shutil.rmtree(state, ignore_errors=True)


def basic(user):
    tok = base64.b64encode(("%s:pw-%s" % (user, user)).encode()).decode()
    return {"Authorization": "Basic " + tok}


def test_register_again_auth(sh):
    tmp = tempfile.mkdtemp(prefix="btd-panels-auth-")
    try:
        users = btd.users_file(tmp, [("alice", "control"),
                                     ("bob", "control")])
        code = ("// name: mine\n// fixture: scalar_count\n" + HOLD +
                "tracepoint:raw_syscalls:sys_enter { @c = count(); }\n")
        with btd.Daemon(["--control", "auth", "--auth-file", users,
                         "--bpftrace", FAKE], env={"BT_SHARED": sh}) as d:
            alice, bob = Grafana(d, basic("alice")), Grafana(d, basic("bob"))
            st, _, first = alice.register(code)
            tap.ok(st == 200 and first and first["username"] == "alice",
                   "--control=auth: alice registers 'mine'", repr(first)[:200])
            st, j, other = bob.register(code)
            tap.ok(st == 400 and "already in use" in j.get("message", ""),
                   "--control=auth: the same code by bob stays 400 'already "
                   "in use'", repr(j)[:300])
            check_again(alice, code, first, "--control=auth, alice again")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


MAX_URL = 32768


def big_script(real):
    """A named script of 5 KB and more: many syscall tracepoints, each
    commented, the way a dashboard's script grows."""
    calls = ["read", "write", "openat", "close", "mmap", "munmap", "brk",
             "futex", "poll", "ppoll", "epoll_wait", "recvfrom", "sendto",
             "recvmsg", "sendmsg", "newfstat", "newfstatat", "lseek", "ioctl",
             "pread64", "pwrite64", "nanosleep", "clock_nanosleep",
             "getpid", "clone", "execve", "wait4", "kill", "rt_sigaction",
             "rt_sigprocmask"]
    lines = ["// name: bigpanel",
             "// A dashboard script that counts system calls by kind, the",
             "// way scripts grow once a team keeps adding to them: every",
             "// probe below has its own comment, so that the script keeps",
             "// explaining itself to the next person who opens the panel."]
    if not real:
        lines += ["// fixture: scalar_count", HOLD.strip()]
    lines.append("tracepoint:raw_syscalls:sys_enter { @c = count(); }")
    for c in calls:
        lines.append("// %s: how many times a process called %s(2) since the "
                     "script started; a counter, so the panel shows a rate" %
                     (c, c))
        lines.append("tracepoint:syscalls:sys_enter_%s { @%s = count(); }"
                     % (c, c))
    return "\n".join(lines) + "\n"


def store_url(ctx, code):
    """grafana-pcp's register URL: the script %-encoded (spaces %20)"""
    return "/pmapi/store?" + urllib.parse.urlencode(
        {"context": ctx, "name": "bpftrace.control.register",
         "value": code}, quote_via=urllib.parse.quote)


def http_get(d, target):
    st, _, body = btd.http("GET", d.url(target), timeout=10.0,
                           headers={"Content-Type": "application/json"})
    try:
        return st, json.loads(body)
    except ValueError:
        return st, None


def padded_store(g, n):
    """A register of a valid script whose store URL is exactly n bytes."""
    t = g.context()
    code = ("// name: pad%d\n// fixture: scalar_count\n" % n + HOLD +
            "tracepoint:raw_syscalls:sys_enter { @c = count(); }\n//")
    url = store_url(t, code)
    return t, store_url(t, code + "x" * (n - len(url)))


def test_long_urls(sh):
    why = btd.bpftrace_usable()
    real = why is None
    args = ["--control", "loopback"] + ([] if real else ["--bpftrace", FAKE])
    with btd.Daemon(args, env={"BT_SHARED": sh}) as d:
        g = Grafana(d)
        code = big_script(real)
        t = g.context()
        url = store_url(t, code)
        st, j = http_get(d, url)
        _, f, _ = g.get("/pmapi/fetch", context=t,
                        names="bpftrace.control.register")
        try:
            script = json.loads(f["values"][0]["instances"][0]["value"])
        except (TypeError, KeyError, IndexError, ValueError):
            script = {}
        tap.ok(len(code) >= 5000 and 8192 < len(url) <= MAX_URL and
               st == 200 and script.get("metadata", {}).get("name") ==
               "bigpanel" and len(script.get("variables", {})) == 31,
               "a %d-byte script in a %d-byte GET store URL registers "
               "(%s bpftrace)" % (len(code), len(url), "real" if real
                                  else "fake"), repr((st, j))[:300])
        m = "bpftrace.scripts.bigpanel.data.c"
        deadline, v = time.monotonic() + 30, None
        while time.monotonic() < deadline and not v:
            _, f, _ = g.get("/pmapi/fetch", names=m)
            try:
                v = f["values"][0]["instances"][0]["value"]
            except (TypeError, KeyError, IndexError):
                v = None
            time.sleep(0.3)
        tap.ok(v and v > 0, "it runs and its data is fetched (%s = %r)"
               % (m, v), repr(g.scripts().get(script.get("script_id"),
                                              {}).get("state"))[:300])
        t, url = padded_store(g, MAX_URL)
        st, j = http_get(d, url)
        tap.ok(len(url) == MAX_URL and st == 200 and j.get("success"),
               "a store URL of exactly --max-url-bytes (%d) is served"
               % len(url), repr((st, j))[:300])
        t, url = padded_store(g, MAX_URL + 1)
        st, j = http_get(d, url)
        tap.ok(len(url) == MAX_URL + 1 and st == 414 and j and
               "--max-url-bytes" in j.get("message", "") and
               j.get("success") is False, "one byte more: 414 with a JSON "
               "message naming --max-url-bytes", repr((st, j))[:300])
    if not real:
        tap.diag("real bpftrace not used: %s" % why)


def held(d, host="127.0.0.2"):
    """bpftrace.daemon.memory_held and memory_refused, asked from host"""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10,
                                 source_address=(host, 0))
    try:
        s.sendall(b"GET /pmapi/fetch?names=bpftrace.daemon.memory_held,"
                  b"bpftrace.daemon.memory_refused HTTP/1.1\r\n"
                  b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = btd.recv_all(s)
    finally:
        s.close()
    st = int(data.split(b" ", 2)[1])
    if st != 200:
        return st, None, None
    j = json.loads(data.split(b"\r\n\r\n", 1)[1])
    v = {x["name"]: x["instances"][0]["value"] for x in j["values"]}
    return st, v["bpftrace.daemon.memory_held"], \
        v["bpftrace.daemon.memory_refused"]


def open_long(d, n, size):
    """n connections, each with a whole size-byte request line and a Host
    header sent, the end of the headers not yet: each holds its URL."""
    target = b"/pmapi/fetch?names=" + b"a" * (size - 19)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)
    return socks


def finish(socks):
    """end every request; the status of each"""
    out = []
    for s in socks:
        try:
            s.sendall(b"Connection: close\r\n\r\n")
            data = btd.recv_all(s)
            out.append(int(data.split(b" ", 2)[1]) if data else None)
        except OSError:
            out.append(None)
        finally:
            s.close()
    return out


def test_url_memory():
    n, size = 64, 30 * 1024
    # default ceiling: every connection and its URL is counted
    with btd.Daemon([]) as d:
        _, base, _ = held(d)
        socks = open_long(d, n, size)
        time.sleep(1.0)
        _, during, _ = held(d)
        sts = finish(socks)
        time.sleep(0.5)
        _, after, _ = held(d)
        per = (during - base) / n if during is not None else 0
        tap.ok(during is not None and per >= 64 * 1024 + 2 * (size - 8192)
               and sts.count(200) == n and after <= base + 64 * 1024,
               "%d connections with %d-byte URLs are charged to "
               "--max-memory (%.0f KiB each), all served, all released"
               % (n, size, per / 1024), repr((base, during, after,
                                              sorted(set(sts), key=str))))
    # a small ceiling: 8 MiB, 4 MiB of it for clients
    share = 4 * 1024 * 1024
    with btd.Daemon(["--max-memory", str(8 * 1024 * 1024)]) as d:
        socks = open_long(d, n, size)
        time.sleep(1.0)
        st, during, _ = held(d)
        sts = finish(socks)
        time.sleep(0.5)
        st2, after, refused = held(d)
        tap.ok((during is None or during <= share) and st2 == 200 and
               sts.count(200) >= 8 and sts.count(503) >= 1 and
               sts.count(200) + sts.count(503) == n and refused >= 1,
               "%d connections with %d-byte URLs under an 8 MiB ceiling: "
               "held stays within the clients' 4 MiB (%s), %d served, %d "
               "answered 503, a bystander is served afterwards"
               % (n, size, during if during is not None else
                  "the bystander got %d" % st, sts.count(200),
                  sts.count(503)), repr((during, after, refused, sts)))


def main():
    sh = fake_shared({"include_missing": ("", MISSING_STDERR, 1)})
    try:
        test_missing_include(sh)
        test_register_again(sh)
        test_register_again_auth(sh)
        test_long_urls(sh)
        test_url_memory()
    finally:
        shutil.rmtree(sh, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
