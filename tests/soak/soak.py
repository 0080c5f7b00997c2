#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""soak.py - the long load tests of bpftraced (run by hand or before a
release; not part of make check):

    tests/soak/soak.py [--seconds 60] [--connections 256] [--idle 2000]

1. wrk with N connections for S seconds against /pmapi/fetch of a live
   bpftrace map (real bpftrace when it can run, else the fake replaying a
   2000-key map) while another thread registers and deregisters scripts
   in a loop: counts non-2xx answers, samples the daemon's RSS every
   second and reports the trend over the last half.
2. slowloris: I idle connections dribbling one header byte per second;
   meanwhile another client's fetch latency (p50/p99) is measured.
Prints a results table (markdown) for the README's reliability section;
exit status 1 when a check fails.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
import btd  # noqa: E402

FAKE = os.path.join(btd.REPO_ROOT, "tests", "lib", "fake-bpftrace")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def real_bpftrace():
    if os.geteuid() != 0:
        return False
    try:
        return subprocess.run(["bpftrace", "-e", "BEGIN { exit(); }"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def getj(d, path, **p):
    st, _, b = btd.http("GET", d.url(path + "?" + urllib.parse.urlencode(p)),
                        timeout=10)
    return st, (json.loads(b) if b.startswith(b"{") else {})


def churn(d, stop, counts):
    i = 0
    while not stop.is_set():
        name = "churn%d" % (i % 8)
        code = ("// name: %s\n// fixture: scalar_count\n// fake: hold\n"
                "tracepoint:raw_syscalls:sys_enter { @c = count(); }\n" % name)
        try:
            st, _ = getj(d, "/pmapi/store", name="bpftrace.control.register",
                         value=code)
            counts["register"] += st == 200
            time.sleep(0.2)
            st, _ = getj(d, "/pmapi/store",
                         name="bpftrace.control.deregister", value=name)
            counts["deregister"] += st == 200
        except OSError:
            counts["errors"] += 1
        i += 1


def wrk(url, conns, seconds):
    r = subprocess.run(["wrk", "-t", "2", "-c", str(conns), "-d",
                        "%ds" % seconds, "--latency", url],
                       capture_output=True, text=True)
    out = r.stdout
    req = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write "
                     r"(\d+), timeout (\d+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    rps = re.search(r"Requests/sec:\s+(\S+)", out)
    return {"requests": int(req.group(1)) if req else 0,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(map(int, errs.groups())) if errs else 0,
            "p99": p99.group(1) if p99 else "?",
            "rps": rps.group(1) if rps else "?", "raw": out}


def load_phase(d, args, real):
    if real:
        code = ("// name: big\ntracepoint:raw_syscalls:sys_enter "
                "{ @m[nsecs % 1000] = count(); }\n")
    else:
        code = ("// name: big\n// fixture: map_2000_keys_runtime\n"
                "// fake: hold\ntracepoint:a:b { @m[1] = count(); }\n")
    getj(d, "/pmapi/store", name="bpftrace.control.register", value=code)
    time.sleep(3)
    st, j = getj(d, "/pmapi/metric", prefix="bpftrace.scripts.big.data")
    var = j["metrics"][0]["name"]
    stop = threading.Event()
    counts = {"register": 0, "deregister": 0, "errors": 0}
    t = threading.Thread(target=churn, args=(d, stop, counts))
    samples = []

    def sampler():
        while not stop.is_set():
            samples.append(rss_kb(d.proc.pid))
            time.sleep(1)
    s = threading.Thread(target=sampler)
    t.start()
    s.start()
    res = wrk(d.url("/pmapi/fetch?names=" + var), args.connections,
              args.seconds)
    stop.set()
    t.join()
    s.join()
    half = samples[len(samples) // 2:]
    n = len(half)
    if n > 2:
        xs = range(n)
        mx, my = (n - 1) / 2, sum(half) / n
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, half)) / \
            sum((x - mx) ** 2 for x in xs)
    else:
        slope = 0.0
    res.update(counts=counts, rss_first=samples[0] if samples else 0,
               rss_last=samples[-1] if samples else 0, slope=slope)
    return res


def slowloris(d, idle, seconds):
    socks = []
    for _ in range(idle):
        try:
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(b"GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(s)
        except OSError:
            break
    stop = threading.Event()

    def dribble():
        while not stop.is_set():
            for s in list(socks):
                try:
                    s.sendall(b"X")
                except OSError:
                    socks.remove(s)
            time.sleep(1)
    t = threading.Thread(target=dribble)
    t.start()
    lat = []
    end = time.monotonic() + seconds
    conn = btd.connect(d.base)
    while time.monotonic() < end:
        t0 = time.monotonic()
        st, _, _ = btd.http("GET", d.url(
            "/pmapi/fetch?names=bpftrace.daemon.uptime"), conn=conn)
        lat.append((time.monotonic() - t0) * 1000)
        time.sleep(0.01)
    stop.set()
    t.join()
    held = len(socks)
    for s in socks:
        s.close()
    lat.sort()
    return {"opened": held, "n": len(lat),
            "p50": lat[len(lat) // 2] if lat else 0,
            "p99": lat[int(len(lat) * 0.99)] if lat else 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--idle", type=int, default=2000)
    args = ap.parse_args()
    real = real_bpftrace()
    env = {"BT_SHARED": os.environ.get("BT_SHARED") or os.path.join(
        os.path.dirname(btd.REPO_ROOT), "shared")}
    extra = [] if real else ["--bpftrace", FAKE]
    ok = True
    with btd.Daemon(["--control", "loopback", "--max-connections", "4096",
                     "--max-connections-per-ip", "0",
                     "--idle-timeout", "600", "--max-output-rate", "0"] +
                    extra, env=env) as d:
        r = load_phase(d, args, real)
        growth = r["slope"] * 60
        good = (r["non2xx"] == 0 and r["socket_errors"] == 0 and
                d.alive() and growth < 1024)
        ok &= good
        print("| load: wrk -c %d -d %ds on a %s map + register/deregister "
              "loop | %s req (%s req/s), p99 %s, non-2xx %d, socket errors "
              "%d; %d registers/%d deregisters; RSS %d -> %d KiB, trend "
              "%+.0f KiB/min over the last half | %s |"
              % (args.connections, args.seconds, "live bpftrace" if real
                 else "2000-key replayed", r["requests"], r["rps"],
                 r["p99"], r["non2xx"], r["socket_errors"],
                 r["counts"]["register"], r["counts"]["deregister"],
                 r["rss_first"], r["rss_last"], growth,
                 "ok" if good else "FAIL"))
        s = slowloris(d, args.idle, 20)
        good = s["p99"] < 10 and d.alive()
        ok &= good
        print("| slowloris: %d connections dribbling 1 byte/s, another "
              "client fetching for 20 s | %d fetches, p50 %.2f ms, p99 %.2f "
              "ms | %s |" % (s["opened"], s["n"], s["p50"], s["p99"],
                             "ok" if good else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
