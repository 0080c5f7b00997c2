#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_notify.py - systemd readiness (Type=notify) without libsystemd
(TAP): a Unix datagram socket stands in for systemd's $NOTIFY_SOCKET, as
a path and as an abstract '@' name. READY=1 must come only once the
listener answers, STOPPING=1 on SIGTERM, and no bpftrace child may
inherit NOTIFY_SOCKET.
"""

import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

BIN = btd.default_binary()
FAKE = btd.FAKE_BPFTRACE
tap = btd.Tap()
if not os.access(BIN, os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % BIN)


def run(addr, label):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(addr if not addr.startswith("@") else "\0" + addr[1:])
    s.settimeout(10)
    tmp = tempfile.mkdtemp(prefix="btd-notify-")
    script = os.path.join(tmp, "env.bt")
    with open(script, "w") as f:
        f.write("// name: envcheck\n// fixture: scalar_count\n// fake: hold\n"
                "tracepoint:raw_syscalls:sys_enter { @calls = count(); }\n")
    d = btd.Daemon(["--bpftrace", FAKE, "--pmcd", "off", "--script", script],
                   env={"NOTIFY_SOCKET": addr},
                   start=False)
    try:
        d.start()
        msg = s.recv(4096)
        tap.ok(msg == b"READY=1", "%s: READY=1 received" % label, msg)
        st, _, _ = btd.http("GET", d.url("/pmapi/context"))
        tap.ok(st == 200, "%s: the daemon serves when ready" % label, st)
        d.stop(cleanup=False)
        msg = s.recv(4096)
        tap.ok(msg == b"STOPPING=1", "%s: STOPPING=1 on SIGTERM" % label,
               msg)
        tap.ok(d.returncode == 0, "%s: exit 0" % label, d.returncode)
    except (socket.timeout, btd.DaemonError) as e:
        tap.ok(False, "%s: notify messages" % label, "%s\n%s" %
               (e, d.stderr_text()))
    finally:
        d.stop()
        s.close()


def main():
    tmp = tempfile.mkdtemp(prefix="btd-notify-sock-")
    run(os.path.join(tmp, "notify"), "path socket")
    run("@btd-notify-%d" % os.getpid(), "abstract socket")
    # a daemon with a socket nobody listens on still starts (warning only)
    d = btd.Daemon(["--pmcd", "off"],
                   env={"NOTIFY_SOCKET": os.path.join(tmp, "nobody")})
    tap.ok(d.alive(), "an unusable NOTIFY_SOCKET is not fatal")
    d.stop()
    # the child's environment: fake-bpftrace records nothing of it, so
    # check /proc of a running child instead
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = os.path.join(tmp, "notify2")
    s.bind(path)
    s.settimeout(10)
    tdir = tempfile.mkdtemp(prefix="btd-notify-env-")
    script = os.path.join(tdir, "hold.bt")
    with open(script, "w") as f:
        f.write("// name: hold\n// fixture: scalar_count\n// fake: hold\n"
                "tracepoint:raw_syscalls:sys_enter { @calls = count(); }\n")
    d = btd.Daemon(["--bpftrace", FAKE, "--pmcd", "off", "--script",
                    script], env={"NOTIFY_SOCKET": path})
    try:
        s.recv(4096)
        import time
        pid = None
        for _ in range(50):
            v = d.fetch_values("bpftrace.scripts.hold.pid")
            pid = (v.get("bpftrace.scripts.hold.pid") or {}).get(None)
            if pid:
                break
            time.sleep(0.1)
        env = b""
        if pid:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
        tap.ok(pid and b"NOTIFY_SOCKET=" not in env,
               "bpftrace children do not inherit NOTIFY_SOCKET", pid)
    finally:
        d.stop()
        s.close()
    tap.done()


if __name__ == "__main__":
    main()
