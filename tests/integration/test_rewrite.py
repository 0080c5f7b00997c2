#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_rewrite.py - what bpftraced makes bpftrace run, and the script
metadata comments, end to end (TAP).

bpftraced runs with tests/lib/fake-bpftrace, which records the program it
received ($FAKE_BPFTRACE_DUMP) and replays a fixture, so these checks run
without root or bpftrace: the print block (interval, order, bare @,
include, custom-output-block, print: on-demand), table-retain-lines on
data.output, include dropping printf text, the register answer's
metadata, and the limits on script count and size.
"""

import json
import os
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE


shared = btd.shared_dir


class Client(btd.Client):
    def wait_status(self, name, want, timeout=10):
        return self.wait("bpftrace.scripts.%s.status" % name,
                         lambda s: s == want, timeout)


def received(dump, name, timeout=5):
    p = os.path.join(dump, name + ".bt")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(p):
            time.sleep(0.05)
            with open(p) as f:
                return f.read()
        time.sleep(0.05)
    return None


def test_print_block(c, dump):
    code = ("// name: pb\n// fixture: scalar_count\n"
            "tracepoint:a:b { @z = count(); @a[comm] = sum(1); @ = 1; "
            "printf(\"hi\\n\"); }\n")
    c.register(code)
    got = received(dump, "pb")
    tap.ok(got is not None and got.startswith(code),
           "bpftrace gets the script byte for byte", repr(got)[:200])
    tail = got[len(code):] if got else ""
    tap.ok(tail == "\ninterval:ms:250 { print(@z); print(@a); print(@); }\n",
           "then one print block: --print-interval, first-use order, bare @,"
           " no @output", repr(tail))


def test_metadata(c, dump):
    cases = [
        ("iv", "// interval: 2s\n",
         "\ninterval:ms:2000 { print(@x); print(@y); }\n"),
        ("cob", "// custom-output-block\n", ""),
        ("od", "// print: on-demand\n", ""),
        ("inc", "// include: @x\n", "\ninterval:ms:250 { print(@x); }\n"),
    ]
    for name, meta, want in cases:
        code = ("// name: %s\n%s// fixture: scalar_count\n"
                "tracepoint:a:b { @x = count(); @y = max(1); }\n"
                % (name, meta))
        if name == "inc":
            code = code.replace("@y = max(1);", "@y = max(1); "
                                "printf(\"dropped\\n\");")
        st, j, ans = c.register(code)
        got = received(dump, name)
        tap.ok(got == code + want, "%s: bpftrace gets %r after the code"
               % (meta.strip(), want), repr(got[len(code):] if got else got))
    st, j, ans = c.register("// name: meta2\n// include: @x, @output\n"
                            "// table-retain-lines: 3\n"
                            "// fixture: scalar_count\n"
                            "tracepoint:a:b { @x = count(); @y = 1; "
                            "printf(\"a\\n\"); }\n")
    md = ans.get("metadata", {})
    tap.ok(md == {"name": "meta2", "include": ["@x", "@output"],
                  "table_retain_lines": 3, "custom_output_block": False},
           "register answer metadata as the PMDA writes it", repr(md))
    tap.ok(sorted(ans.get("variables", {})) == ["@output", "@x"],
           "// include: with spaces keeps @x and @output only",
           repr(ans.get("variables")))
    st, j = c.getj("/pmapi/metric", name="bpftrace.scripts.inc.data.output")
    tap.ok(st == 400, "include without @output: no output metric (as the "
           "PMDA)", repr(j)[:200])


def test_table_retain_lines(c, fx):
    with open(os.path.join(fx, "large_output.stdout")) as f:
        lines = [json.loads(x)["data"] for x in f if '"printf"' in x]
    code = ("// name: trl\n// table-retain-lines: 5\n"
            "// fixture: large_output\n" +
            open(os.path.join(fx, "large_output.bt")).read())
    st, j, ans = c.register(code)
    c.wait_status("trl", "stopped")
    out = c.value("bpftrace.scripts.trl.data.output")
    want = lines[0] + "".join(lines[-5:])
    tap.ok(out == want, "table-retain-lines 5: the header and the last 5 of "
           "%d printf lines" % len(lines), repr(out)[:300])
    st, j, ans = c.register("// name: ring\n// fixture: large_output\n" +
                            open(os.path.join(fx, "large_output.bt")).read())
    c.wait_status("ring", "stopped")
    out = c.value("bpftrace.scripts.ring.data.output") or ""
    tap.ok(out == "".join(lines), "without retain: all %d lines kept "
           "(under the ring's limits)" % len(lines), "%d bytes" % len(out))


def test_retype(c):
    """The source cannot tell @s holds a string ($v); bpftrace prints one.
    A client asks for the descriptor before the first print (pace: the
    first data line comes 1.5 s after the probes line): the type it may
    have cached never changes: the metric stays a number, the strings are
    not served and are counted in type_errors. (Without that client the
    first print would make it a string: test_firstprint.py.)"""
    c.register("// name: rt\n// fixture: string_value\n// fake: hold\n"
               "// fake: pace 1500\n"
               "BEGIN { $v = \"hello\"; @s = $v; $w = \"world\"; "
               "@sm[1] = $w; }\n")
    st, j = c.getj("/pmapi/metric", name="bpftrace.scripts.rt.data.s")
    before = (j.get("metrics") or [{}])[0]
    st, j = c.getj("/pmapi/metric", name="bpftrace.scripts.rt.data.sm")
    before_sm = (j.get("metrics") or [{}])[0]
    deadline = time.monotonic() + 10
    errs = None
    while time.monotonic() < deadline and errs != 2:
        errs = c.value("bpftrace.scripts.rt.type_errors")
        time.sleep(0.1)
    st, j = c.getj("/pmapi/metric", name="bpftrace.scripts.rt.data.s")
    after = (j.get("metrics") or [{}])[0]
    st, f = c.getj("/pmapi/fetch", context=c.ctx,
                   names="bpftrace.scripts.rt.data.s,"
                   "bpftrace.scripts.rt.data.sm")
    inst = [v["instances"] for v in f.get("values", [])]
    tap.ok(before.get("type") == "64" and after.get("type") == "64" and
           before_sm.get("type") == "64" and
           after.get("pmid") == before.get("pmid") and errs == 2 and
           not any(inst),
           "a variable typed from the source as a number keeps its type "
           "when bpftrace prints strings: not served, 2 type_errors",
           repr((before.get("type"), after.get("type"), errs, inst)))
    c.getj("/pmapi/store", context=c.ctx,
           name="bpftrace.control.deregister", value="rt")


def test_limits(fx):
    d = btd.Daemon(["--control", "loopback", "--bpftrace", FAKE,
                    "--max-scripts", "2", "--max-script-bytes", "200"],
                   env={"BT_SHARED": os.path.dirname(os.path.dirname(fx))})
    with d:
        c = Client(d)
        body = "// fixture: scalar_count\nBEGIN { @x = 1; }\n"
        r = [c.register("// name: l%d\n%s" % (i, body))[:2]
             for i in range(3)]
        tap.ok(r[0][0] == 200 and r[1][0] == 200 and r[2][0] == 400 and
               "too many scripts: the limit is 2" in r[2][1]["message"],
               "--max-scripts 2: the third register is refused with the "
               "reason", repr(r[2]))
        c.getj("/pmapi/store", context=c.ctx,
               name="bpftrace.control.deregister", value="l0,l1")
        st, j, ans = c.register("// name: big\n" + body + "// " + "x" * 200)
        tap.ok(st == 400 and "is 2" in j.get("message", "") and
               "the limit is 200" in j["message"],
               "--max-script-bytes: a bigger script is refused, saying so",
               repr(j))
        st, j = c.getj("/pmapi/store", context=c.ctx,
                       name="bpftrace.control.deregister", value="l0,nosuch")
        ans = c.value("bpftrace.control.deregister")
        tap.ok(st == 400 and json.loads(ans) == {
            "error": "one or more scripts were not found"},
               "deregister of an unknown name: 400 and the PMDA's answer",
               repr((st, j, ans)))


def test_old_and_missing_bpftrace(fx):
    s = os.path.dirname(os.path.dirname(fx))
    dump = tempfile.mkdtemp(prefix="btd-dump-")
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE],
                    env={"BT_SHARED": s, "FAKE_BPFTRACE_DUMP": dump,
                         "FAKE_BPFTRACE_VERSION": "v0.10.2"}) as d:
        c = Client(d)
        c.register("// name: old\n// fixture: scalar_count\n"
                   "BEGIN { @x = 1; }\n")
        c.wait_status("old", "stopped")
        try:
            argv = open(os.path.join(dump, "old.argv")).read()
        except OSError:
            argv = None
        tap.ok(argv == "-f json -e", "bpftrace < 0.11 gets the program with "
               "-e (no stdin programs there)", repr(argv))
    with btd.Daemon(["--control", "loopback", "--bpftrace",
                     "/nonexistent/bpftrace"]) as d:
        c = Client(d)
        tap.ok(c.value("bpftrace.info.version") == "" and
               c.value("bpftrace.info.bpftrace_path") ==
               "/nonexistent/bpftrace",
               "missing bpftrace: info.version empty, info.bpftrace_path "
               "says which")
        st, j, ans = c.register("// name: nob\nBEGIN { @x = 1; }\n")
        s = c.wait_status("nob", "error")
        err = c.value("bpftrace.scripts.nob.error") or ""
        tap.ok(st == 200 and s == "error" and "bpftrace is not available"
               in err, "missing bpftrace: a script goes to error saying why",
               repr((s, err)))


def test_tracepoints_refresh(fx):
    s = os.path.dirname(os.path.dirname(fx))
    tp = os.path.join(tempfile.mkdtemp(prefix="btd-tp-"), "tp")
    with btd.Daemon(["--bpftrace", FAKE], env={
            "BT_SHARED": s, "FAKE_BPFTRACE_TP_FILE": tp}) as d:
        c = Client(d)
        deadline = time.monotonic() + 5
        v = ""
        while time.monotonic() < deadline and not v:
            v = c.value("bpftrace.info.tracepoints") or ""
            time.sleep(0.1)
        tap.ok(v.split(",") == ["tracepoint:sched:sched_switch",
                                "tracepoint:raw_syscalls:sys_enter",
                                "tracepoint:raw_syscalls:sys_exit"],
               "info.tracepoints: bpftrace -l output, comma separated",
               repr(v))
        with open(tp, "w") as f:
            f.write("tracepoint:new:one\n")
        d.proc.send_signal(1)       # SIGHUP
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "new:one" not in v:
            v = c.value("bpftrace.info.tracepoints") or ""
            time.sleep(0.1)
        tap.ok(v.startswith("tracepoint:new:one,"),
               "SIGHUP lists the tracepoints again", repr(v))


def test_scripts_dir(fx):
    s = os.path.dirname(os.path.dirname(fx))
    if os.geteuid() != 0:
        tap.skip("--scripts-dir: root-only files run, others are skipped",
                 "needs root to own the files")
        return
    d = tempfile.mkdtemp(prefix="btd-auto-")
    os.chmod(d, 0o755)
    body = "// fixture: scalar_count\n// fake: hold\nBEGIN { @x = 1; }\n"
    for name, mode in (("good", 0o644), ("open", 0o666), ("grpw", 0o664)):
        p = os.path.join(d, name + ".bt")
        with open(p, "w") as f:
            f.write(body)
        os.chmod(p, mode)
    os.chown(os.path.join(d, "grpw.bt"), 0, 100)    # group write, gid 100
    with open(os.path.join(d, "skip.txt"), "w") as f:
        f.write(body)
    with btd.Daemon(["--bpftrace", FAKE, "--scripts-dir", d],
                    env={"BT_SHARED": s}) as dm:
        c = Client(dm)
        st = c.wait_status("good", "started")
        names = sorted(x["metadata"]["name"] for x in json.loads(
            c.value("bpftrace.info.scripts_json")))
        err = dm.stderr_text()
        tap.ok(st == "started" and names == ["good"],
               "--scripts-dir: DIR/good.bt runs under its file name; "
               "world- or group-writable files and non-.bt files do not",
               repr((st, names)))
        tap.ok("open.bt is writable by others than root" in err and
               "grpw.bt is writable by others than root" in err,
               "the skipped files are named in the log", err[-600:])
    os.chmod(d, 0o777)
    with btd.Daemon(["--bpftrace", FAKE, "--scripts-dir", d],
                    env={"BT_SHARED": s}) as dm:
        c = Client(dm)
        time.sleep(0.5)
        n = c.value("bpftrace.info.scripts_total")
        tap.ok(n == 0 and "is writable by others than root" in
               dm.stderr_text(), "a world-writable --scripts-dir is not "
               "read at all", repr(n))


def main():
    s = shared()
    if s is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    fx = os.path.join(s, "fixtures", "bpftrace-0.17")
    dump = tempfile.mkdtemp(prefix="btd-dump-")
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE,
                     "--print-interval", "250", "--max-output-rate", "0"],
                    env={"BT_SHARED": s, "FAKE_BPFTRACE_DUMP": dump}) as d:
        c = Client(d)
        test_print_block(c, dump)
        test_metadata(c, dump)
        test_table_retain_lines(c, fx)
        test_retype(c)
        tap.ok(d.alive(), "daemon alive")
    test_limits(fx)
    test_old_and_missing_bpftrace(fx)
    test_tracepoints_refresh(fx)
    test_scripts_dir(fx)
    tap.done()


if __name__ == "__main__":
    main()
