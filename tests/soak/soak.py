#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""soak.py - the long load tests of bpftraced (run by hand or before a
release; not part of make check):

    tests/soak/soak.py [--seconds 60] [--connections 256] [--idle 2000]
        [--samples FILE]

1. wrk with N connections for S seconds against /pmapi/fetch of a live
   bpftrace map (real bpftrace when it can run, else the fake replaying a
   2000-key map) while another thread registers and deregisters scripts
   in a loop: counts non-2xx answers, samples the daemon's RSS every
   second and reports RSS at the start, half way and at the end, and the
   trend (least squares) over the last half. The RSS check: less than
   1 MiB of growth over the last half (the trend times its length), so a
   60-minute run checks "flat over the last 30 minutes".
2. slowloris: I idle connections dribbling one header byte per second;
   meanwhile another client's fetch latency (p50/p99) is measured
   (--idle 0 skips it).
Prints a results table (markdown) for the README's reliability section;
exit status 1 when a check fails. --samples writes one line per RSS
sample (seconds since the start, KiB, churn cycles so far).
"""
import argparse
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
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


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def state_db(d):
    """(database + WAL bytes, audit rows) of the daemon's state."""
    path = os.path.join(d.state_dir, "bpftraced.db")
    size = sum(os.path.getsize(p) for p in (path, path + "-wal")
               if os.path.exists(p))
    try:
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
        rows = db.execute("SELECT count(*) FROM audit").fetchone()[0]
        db.close()
    except sqlite3.Error:
        rows = -1
    return size, rows


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
    t0 = time.monotonic()

    def sampler():
        while not stop.is_set():
            samples.append((time.monotonic() - t0, rss_kb(d.proc.pid),
                            counts["deregister"]))
            time.sleep(1)
    s = threading.Thread(target=sampler)
    t.start()
    s.start()
    res = wrk(d.url("/pmapi/fetch?names=" + var), args.connections,
              args.seconds)
    stop.set()
    t.join()
    s.join()
    if args.samples:
        with open(args.samples, "w") as f:
            for t, kb, cycles in samples:
                f.write("%.1f %d %d\n" % (t, kb, cycles))
    half = samples[len(samples) // 2:]
    n = len(half)
    slope = 0.0         # KiB per second over the last half
    if n > 2:
        xs = [t for t, _, _ in half]
        ys = [kb for _, kb, _ in half]
        mx, my = sum(xs) / n, sum(ys) / n
        den = sum((x - mx) ** 2 for x in xs)
        if den > 0:
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den
    res.update(counts=counts, slope=slope,
               rss_first=samples[0][1] if samples else 0,
               rss_mid=half[0][1] if half else 0,
               rss_last=samples[-1][1] if samples else 0,
               half_s=(half[-1][0] - half[0][0]) if n > 1 else 0.0)
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
    ap.add_argument("--samples", help="write the RSS samples to this file")
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
        load0 = loadavg()
        r = load_phase(d, args, real)
        db_bytes, audit_rows = state_db(d)
        # growth over the last half: its trend times its length
        growth = r["slope"] * r["half_s"]
        good = (r["non2xx"] == 0 and r["socket_errors"] == 0 and
                d.alive() and growth < 1024)
        ok &= good
        print("| load: wrk -c %d -d %ds on a %s map + register/deregister "
              "loop | %s req (%s req/s), p99 %s, non-2xx %d, socket errors "
              "%d; %d registers/%d deregisters (%d client errors); state "
              "database %d KiB, %d audit rows; RSS %d KiB at the start, "
              "%d half way, %d at the end; trend over the last half "
              "%+.1f KiB/min, %+.0f KiB over it (check < 1024); load "
              "average %s before, %s after | %s |"
              % (args.connections, args.seconds, "live bpftrace" if real
                 else "2000-key replayed", r["requests"], r["rps"],
                 r["p99"], r["non2xx"], r["socket_errors"],
                 r["counts"]["register"], r["counts"]["deregister"],
                 r["counts"]["errors"], db_bytes // 1024, audit_rows,
                 r["rss_first"], r["rss_mid"], r["rss_last"],
                 r["slope"] * 60, growth, load0, loadavg(),
                 "ok" if good else "FAIL"), flush=True)
        if args.idle <= 0:
            sys.exit(0 if ok else 1)
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
