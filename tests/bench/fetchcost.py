#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""fetchcost.py - instructions the daemon spends per fetch, counted by
callgrind, for two (or more) builds side by side: a figure that does not
move with the machine's load, unlike req/s (tests/bench/README.md).

    tests/bench/fetchcost.py [--requests N] BINARY [BINARY...]

Each binary runs under valgrind --tool=callgrind with the fake bpftrace
printing a 1,000-key map once; when the map is in, the counters are zeroed
(callgrind_control -z), N fetches go over one keep-alive connection for
each of a scalar, the 1,000-instance map and a /metrics scrape, and the
counters are dumped after each (callgrind_control -d). Prints a markdown
table: instructions per request for each shape and binary, and each binary's
ratio to the first.
"""
import argparse
import glob
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import btd  # noqa: E402

FAKE = os.path.join(HERE, "bench-bpftrace")
SCRIPT = ("// name: cost\n// bench: map 1000 3600000\n"
          "tracepoint:raw_syscalls:sys_enter { @m[tid] = count(); }\n")
SHAPES = [("scalar", "/pmapi/fetch?names=bpftrace.daemon.uptime"),
          ("1,000-instance map",
           "/pmapi/fetch?names=bpftrace.scripts.cost.data.m"),
          ("/metrics, 1,000-instance map",
           "/metrics?names=bpftrace.scripts.cost.data.m")]


def wrapper(binary, outdir):
    """A script that runs binary under callgrind (btd.Daemon execs it)."""
    path = os.path.join(outdir, "run")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec valgrind -q --tool=callgrind "
                "--callgrind-out-file=%s/cg.%%p %s \"$@\"\n"
                % (outdir, binary))
    os.chmod(path, 0o755)
    return path


def ir_of(outdir, pid):
    """Total Ir of the newest dump of pid (callgrind_control -d writes
    cg.PID.N)."""
    dumps = sorted(glob.glob("%s/cg.%d.*" % (outdir, pid)),
                   key=lambda p: int(p.rsplit(".", 1)[1]))
    with open(dumps[-1]) as f:
        for line in f:
            m = re.match(r"(?:summary|totals): (\d+)", line)
            if m:
                return int(m.group(1))
    raise RuntimeError("no totals in " + dumps[-1])


def vg_pid(d):
    """The valgrind process is the daemon's pid (the wrapper execs)."""
    return d.proc.pid


def measure(binary, n):
    outdir = tempfile.mkdtemp(prefix="fetchcost-")
    d = btd.Daemon(["--control", "loopback", "--log-level", "warning",
                    "--bpftrace", FAKE, "--http-threads", "1"],
                   binary=wrapper(binary, outdir), start_timeout=120)
    try:
        c = btd.Client(d)
        c.register(SCRIPT)
        name = "bpftrace.scripts.cost.data.m"
        if not btd.wait_for(lambda: len(c.fetch(name).get(name) or [])
                            >= 1000, 120):
            raise RuntimeError("the 1,000-key map did not come")
        pid = vg_pid(d)
        res = {}
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
        for label, path in SHAPES:
            subprocess.run(["callgrind_control", "-z", str(pid)],
                           check=True, capture_output=True)
            for _ in range(n):
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise RuntimeError("%s: %d %r" % (path, r.status,
                                                      body[:200]))
            subprocess.run(["callgrind_control", "-d", str(pid)],
                           check=True, capture_output=True)
            time.sleep(0.5)
            res[label] = ir_of(outdir, pid) / n
        conn.close()
        return res
    finally:
        d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    rows = {b: measure(b, a.requests) for b in a.binaries}
    first = a.binaries[0]
    print("| shape | " + " | ".join(a.binaries) + " | ratio to first |")
    print("|---|" + "---|" * (len(a.binaries) + 1))
    for label, _ in SHAPES:
        vals = [rows[b][label] for b in a.binaries]
        ratio = ", ".join("%.3f" % (v / vals[0]) for v in vals[1:])
        print("| %s | %s | %s |" % (
            label, " | ".join("%.0f" % v for v in vals), ratio))
    print("\ninstructions per request (callgrind Ir between -z and -d, "
          "%d requests on one keep-alive connection each)" % a.requests)


if __name__ == "__main__":
    main()
