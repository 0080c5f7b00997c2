#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench.py - the bpftraced benchmarks (tests/bench/README.md).

    bench.py fetch | ingest | footprint | overhead | start

Each prints a small table (markdown) with the figures, the ratios measured
back to back in the same run, the targets and the load average next to
every figure. Python stdlib only, plus wrk for fetch. Run as root from the
source tree after a plain optimized build (./configure && make).
"""

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

FAKE = os.path.join(HERE, "bench-bpftrace")
PCP = os.path.join(HERE, "pcp-stack.sh")
PMPROXY = "http://127.0.0.1:44322"
CLK = os.sysconf("SC_CLK_TCK")
DUR = int(os.environ.get("BENCH_DURATION", "8"))     # wrk seconds
WARM = int(os.environ.get("BENCH_WARMUP", "2"))
WITH_PCP = os.environ.get("BENCH_PCP", "1") != "0"

# the script both stacks run for fetch: a scalar, a 1,000-key map and a
# 64-bucket lhist, from one tracepoint
FETCH_SCRIPT = """// name: bench
tracepoint:raw_syscalls:sys_enter {
  @scalar = count();
  @map[nsecs % 1000] = count();
  @hist = lhist(nsecs % 64, 0, 64, 1);
}
"""
# the 100,000-key map (both stacks; dd drives the syscalls)
BIG_SCRIPT = """// name: big
tracepoint:raw_syscalls:sys_enter { @big[nsecs % 100000] = count(); }
"""


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine():
    model = cores = "?"
    for line in subprocess.run(["lscpu"], capture_output=True,
                               text=True).stdout.splitlines():
        k, _, v = line.partition(":")
        if k.strip() == "Model name":
            model = v.strip()
        if k.strip() == "CPU(s)":
            cores = v.strip()
    return "%s, %s CPUs, Linux %s, load %s" % (model, cores,
                                              os.uname().release, load())


def cpu_s(pid):
    """user+system CPU seconds of one process (not its children)."""
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pids_matching(pattern):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8",
                                                             "replace")
        except OSError:
            continue
        if re.search(pattern, cmd):
            out.append(int(p))
    return out


def pcp_stack_pids():
    """pmcd, pmproxy and the Python bpftrace PMDA (with its helpers);
    bpftrace itself is left out on both sides."""
    d = {}
    for name, pat in (("pmcd", r"^/usr/libexec/pcp/bin/pmcd|^\S*pmcd "),
                      ("pmproxy", r"^\S*pmproxy "),
                      ("pmda", r"pmdabpftrace\.python")):
        d[name] = [p for p in pids_matching(pat)
                   if not re.search(r"bench\.py", open(
                       "/proc/%d/cmdline" % p).read())]
    return d


def mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


def table(title, header, rows):
    print()
    print("### " + title)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    sys.stdout.flush()


def note(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def get(url, timeout=10.0):
    st, _, body = btd.http("GET", url, timeout=timeout)
    return st, body


def get_json(url, timeout=10.0):
    st, body = get(url, timeout)
    try:
        return st, json.loads(body.decode("utf-8"))
    except ValueError:
        return st, None


def new_context(base):
    st, obj = get_json(base + "/pmapi/context?polltimeout=3600")
    if st != 200:
        raise RuntimeError("context at %s: %s %r" % (base, st, obj))
    return obj["context"]


def store(base, ctx, name, value):
    q = urllib.parse.urlencode({"context": ctx, "name": name,
                                "value": value})
    st, body = get(base + "/pmapi/store?" + q)
    if st != 200:
        raise RuntimeError("store %s: %s %r" % (name, st, body[:300]))


def fetch(base, ctx, names):
    st, obj = get_json("%s/pmapi/fetch?context=%s&names=%s"
                       % (base, ctx, names))
    if st != 200 or obj is None:
        return {}
    return {v["name"]: {i["instance"]: i["value"] for i in v["instances"]}
            for v in obj.get("values", [])}


def wait_for(cond, timeout, step=0.2, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise RuntimeError("timed out waiting for " + what)


def daemon(args=(), fake=True, env=None):
    # wrk opens up to 256 connections from one address
    a = ["--control", "loopback", "--log-level", "warning",
         "--max-connections-per-ip", "0"]
    if fake:
        a += ["--bpftrace", FAKE]
    return btd.Daemon(a + list(args), env=env)


def drive_syscalls(n=3000000):
    """n read+write syscall pairs (dd bs=1), to fill the tracepoint maps."""
    subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=1",
                    "count=%d" % n], stderr=subprocess.DEVNULL)


def n_instances(base, ctx, name):
    v = fetch(base, ctx, name).get(name)
    return len(v) if v else 0


# --------------------------------------------------------------------------
# the PCP stack (pmcd + pmproxy + Python bpftrace PMDA)
# --------------------------------------------------------------------------

class PcpStack:
    """Installs the PMDA for the time of a with-block, then removes it and
    restores bpftrace.conf and pmcd.conf exactly (pcp-stack.sh)."""

    def __enter__(self):
        r = subprocess.run([PCP, "install"], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run([PCP, "remove"])
            raise RuntimeError("PMDA install failed:\n" + r.stdout +
                           r.stderr)
        return self

    def __exit__(self, *exc):
        r = subprocess.run([PCP, "remove"], capture_output=True, text=True)
        note("PMDA removed: %s" % r.stdout.strip().replace("\n", "; "))
        return False

    @staticmethod
    def up():
        try:
            st, _ = get(PMPROXY + "/pmapi/context", timeout=3)
            return st == 200
        except OSError:
            return False

    @staticmethod
    def restart_pmproxy():
        subprocess.run(["/etc/init.d/pmproxy", "restart"],
                       capture_output=True)
        wait_for(PcpStack.up, 30, what="pmproxy")


def register(base, ctx, code):
    store(base, ctx, "bpftrace.control.register", code)


# --------------------------------------------------------------------------
# 1. fetch
# --------------------------------------------------------------------------

def lat_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v if m.group(2) == "ms" \
        else v * 1000


def wrk(url, conns, dur=DUR):
    threads = 1 if conns == 1 else 2
    if WARM:
        subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns,
                        "-d%ds" % WARM, url], capture_output=True)
    ld = load()
    r = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns,
                        "-d%ds" % dur, "--timeout", "5s", "--latency", url],
                       capture_output=True, text=True)
    out = r.stdout
    res = {"load": ld, "rps": 0.0, "p99": float("nan"), "p50": float("nan"),
           "errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if m:
        res["p99"] = lat_ms(m.group(1))
    m = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    if m:
        res["p50"] = lat_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        res["errors"] += sum(int(x) for x in m.groups())
    if not m and res["rps"] == 0:
        res["errors"] = -1
        note("wrk output: " + out + r.stderr)
    return res


def build_c(name, src, libs):
    """$TMPDIR/<name> built with cc from src (which includes benchmhd.h),
    again whenever either file is newer than it."""
    exe = os.path.join(tempfile.gettempdir(), name)
    deps = [os.path.join(HERE, src), os.path.join(HERE, "benchmhd.h")]
    if not os.path.exists(exe) or any(
            os.path.getmtime(exe) < os.path.getmtime(d) for d in deps):
        subprocess.run(["cc", "-O2", "-o", exe, deps[0]] + libs, check=True)
    return exe


def build_ceiling():
    return build_c("bench-ceiling", "ceiling.c", ["-lmicrohttpd", "-lpthread"])


def fetch_bench():
    conns = [int(c) for c in os.environ.get("BENCH_CONNS",
                                            "1,16,256").split(",")]
    metrics = [("scalar", "bpftrace.scripts.bench.data.scalar"),
               ("1,000-instance map", "bpftrace.scripts.bench.data.map"),
               ("64-bucket lhist", "bpftrace.scripts.bench.data.hist")]
    ceiling = build_ceiling()
    threads = os.cpu_count()
    results = []          # (metric, conns, side, res)
    note("fetch: bpftraced with real bpftrace, load %s" % load())
    with daemon(fake=False, args=["--http-threads", str(threads)]) as d:
        base = d.base
        ctx = new_context(base)
        register(base, ctx, FETCH_SCRIPT)
        wait_for(lambda: n_instances(base, ctx, metrics[1][1]) >= 1000
                 and n_instances(base, ctx, metrics[2][1]) >= 64, 60,
                 what="bpftraced's map to have 1000 keys")
        tmp = tempfile.mkdtemp(prefix="bench-fetch-")
        for label, name in metrics:
            if os.environ.get("BENCH_CEILING", "1") == "0":
                break
            url = "%s/pmapi/fetch?context=%s&names=%s" % (base, ctx, name)
            st, body = get(url)
            bodyf = os.path.join(tmp, "body")
            with open(bodyf, "wb") as f:
                f.write(body)
            port = btd.free_port()
            cp = subprocess.Popen([ceiling, str(port), bodyf, str(threads)],
                                  stdout=subprocess.DEVNULL)
            try:
                wait_for(lambda: _connects(port), 5, 0.02, "ceiling")
                curl = "http://127.0.0.1:%d/pmapi/fetch?context=%s&names=%s" \
                    % (port, ctx, name)
                for c in conns:
                    results.append((label, c, "bpftraced", len(body),
                                    wrk(url, c)))
                    results.append((label, c, "ceiling", len(body),
                                    wrk(curl, c)))
                    note("%s c=%d done" % (label, c))
            finally:
                cp.terminate()
                cp.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        rows = []
        for label, c, side, blen, r in results:
            if side != "bpftraced":
                continue
            ce = [x for x in results if x[0] == label and x[1] == c and
                  x[2] == "ceiling"][0][4]
            rows.append([label, blen, c, "%.0f" % r["rps"], "%.0f" % ce["rps"],
                         "%.0f%%" % (100.0 * r["rps"] / ce["rps"]) if ce["rps"]
                         else "-",
                         "%.2f / %.2f" % (r["p99"], ce["p99"]),
                         "%.2fx" % (r["p99"] / ce["p99"]) if ce["p99"] else "-",
                         "%d / %d" % (r["errors"], ce["errors"]),
                         "%s / %s" % (r["load"], ce["load"])])
        table("fetch: bpftraced vs the libmicrohttpd ceiling (same body size, "
              "%d HTTP threads, wrk %ds after %ds warm-up)" % (threads, DUR,
                                                              WARM),
              ["metric", "body B", "conns", "bpftraced req/s", "ceiling req/s",
               "% of ceiling", "p99 ms (btd / ceil)", "p99 ratio",
               "errors (btd / ceil)", "load (btd / ceil)"], rows)

        pcp = {}
        if WITH_PCP:
            # PCP side at 1 connection, and (same run) bpftraced again, so
            # the ratio is back to back
            pcp_conns = [int(c) for c in os.environ.get(
                "BENCH_PCP_CONNS", "1").split(",")]
            with PcpStack():
                pctx = new_context(PMPROXY)
                register(PMPROXY, pctx, FETCH_SCRIPT)
                note('PCP side: waiting for the PMDA\'s map')
                wait_for(lambda: n_instances(PMPROXY, pctx, metrics[1][1])
                         >= 1000 and n_instances(PMPROXY, pctx,
                                                 metrics[2][1]) >= 64, 90,
                         what="the PMDA's map to have 1000 keys")
                for label, name in metrics:
                    purl = "%s/pmapi/fetch?context=%s&names=%s" % (
                        PMPROXY, pctx, name)
                    _, pbody = get(purl)
                    url = "%s/pmapi/fetch?context=%s&names=%s" % (base, ctx,
                                                                  name)
                    for c in pcp_conns:
                        if not PcpStack.up():
                            PcpStack.restart_pmproxy()
                            pcp[(label, c)] = None
                            continue
                        pres = wrk(purl, c)
                        pres["up"] = PcpStack.up()
                        pres["bytes"] = len(pbody)
                        bres = wrk(url, c)
                        pcp[(label, c)] = (pres, bres)
                        if not pres["up"]:
                            note("pmproxy died at %d connections" % c)
                            PcpStack.restart_pmproxy()
                            pctx = new_context(PMPROXY)
                store(PMPROXY, pctx, "bpftrace.control.deregister", "bench")

    if pcp:
        rows = []
        for (label, c), v in pcp.items():
            if v is None:
                rows.append([label, c, "pmproxy down", "", "", "", "", ""])
                continue
            p, b = v
            rows.append([label, c, "%.0f" % b["rps"], "%.0f" % p["rps"],
                         "%.1fx" % (b["rps"] / p["rps"]) if p["rps"]
                         else "inf",
                         "%.2f / %.2f" % (b["p99"], p["p99"]),
                         "%d / %d%s" % (b["errors"], p["errors"],
                                        "" if p["up"] else
                                        " (pmproxy died)"),
                         "%s / %s" % (b["load"], p["load"])])
        table("fetch: bpftraced vs the PCP stack (pmproxy + pmcd + Python "
              "bpftrace PMDA), same script, back to back",
              ["metric", "conns", "bpftraced req/s", "PCP req/s",
               "ratio", "p99 ms (btd / PCP)", "errors (btd / PCP)",
               "load (btd / PCP)"], rows)


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# 2. ingest
# --------------------------------------------------------------------------

def run_rusage(argv, stdin=None, stdout=None):
    """(user+sys CPU s, wall s) of one child."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=stdin, stdout=stdout)
    _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0
    return ru.ru_utime + ru.ru_stime, time.monotonic() - t0


def ingest_bench():
    path = os.environ.get("BENCH_STREAM", os.path.join(
        tempfile.gettempdir(), "bench-stream.json"))
    mb = float(os.environ.get("BENCH_STREAM_MB", "100"))
    if not os.path.exists(path) or \
            abs(os.path.getsize(path) - mb * 1e6) > mb * 1e6 * 0.05:
        note("generating %s (%.0f MB)" % (path, mb))
        subprocess.run([sys.executable, os.path.join(HERE, "gen-stream.py"),
                        path, str(mb)], check=True, stdout=subprocess.DEVNULL)
    size = os.path.getsize(path)
    script_src = open(os.path.join(HERE, "gen-stream.py")).read()
    script = re.search(r'SCRIPT = """(.*?)"""', script_src, re.S).group(1)
    script = script.replace("\\\\", "\\")
    script = "// bench: stream %s\n%s" % (path, script)
    reps = int(os.environ.get("BENCH_REPS", "3"))
    # warm the page cache
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL)
    rows = []
    for rep in range(reps):
        # cat: alone into /dev/null, and as the reader of a pipe (what the
        # daemon is: the fake's cat writes, the daemon reads)
        ld0 = load()
        cat_dev, cat_dev_w = run_rusage(["cat", path],
                                        stdout=subprocess.DEVNULL)
        w = subprocess.Popen(["cat", path], stdout=subprocess.PIPE)
        cat_rd, cat_rd_w = run_rusage(["cat"], stdin=w.stdout,
                                      stdout=subprocess.DEVNULL)
        w.stdout.close()
        w.wait()
        with open(path, "rb") as f:
            py, py_w = run_rusage(
                ["/usr/bin/python3", "-c",
                 "import json, sys\nfor l in sys.stdin.buffer:\n"
                 "    json.loads(l)\n"], stdin=f)
        # the daemon: register a script whose fake bpftrace cats the file
        with daemon(args=["--max-output-rate", "4000000000",
                          "--max-instances", "200000",
                          "--max-line", "16777216"]) as d:
            ctx = new_context(d.base)
            pid = d.proc.pid
            time.sleep(0.5)
            c0 = cpu_s(pid)
            t0 = time.monotonic()
            register(d.base, ctx, script)
            pre = "bpftrace.scripts.ingest."

            def done():
                v = fetch(d.base, ctx, pre + "data_bytes," + pre + "status")
                b = v.get(pre + "data_bytes", {}).get(None, 0)
                return b >= size and \
                    v.get(pre + "status", {}).get(None) != "started"
            wait_for(done, 600, 0.05, "ingest to finish")
            btd_w = time.monotonic() - t0
            btd_cpu = cpu_s(pid) - c0
            v = fetch(d.base, ctx, pre + "data.m5," + pre + "data.m4")
            nm5 = len(v.get(pre + "data.m5", {}))
            ld1 = load()
        rows.append([rep + 1, "%.3f" % btd_cpu, "%.3f" % cat_rd,
                     "%.3f" % cat_dev, "%.3f" % py,
                     "%.0f" % (size / 1e6 / btd_cpu),
                     "%.1fx" % (py / btd_cpu), "%.1fx" % (btd_cpu / cat_rd),
                     "%.1fx" % (btd_cpu / max(cat_dev, 0.005)),
                     "%.2f / %.2f / %.2f" % (btd_w, cat_rd_w, py_w),
                     nm5, "%s .. %s" % (ld0, ld1)])
    table("ingest: CPU seconds for a %.1f MB bpftrace JSON stream (%d lines; "
          "maps of 10^2..10^5 keys, hists, printf)"
          % (size / 1e6, sum(1 for _ in open(path, "rb"))),
          ["run", "bpftraced CPU s", "cat (pipe reader) CPU s",
           "cat >/dev/null CPU s", "python3 json.loads CPU s",
           "bpftraced MB/CPU-s", "python / bpftraced",
           "bpftraced / cat reader", "bpftraced / cat >/dev/null",
           "wall s (btd / cat / py)", "@m5 keys after", "load"], rows)


# --------------------------------------------------------------------------
# 3. footprint
# --------------------------------------------------------------------------

def mem_detail(pid):
    """"RssAnon / Pss" of one process now (shared library pages are in
    VmRSS in full, in Pss shared out)."""
    anon = pss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return "anon %s, PSS %s" % (mib(anon), mib(pss))


def settle_rss(pid, secs=3.0):
    """the highest RSS seen over secs (transients included)."""
    hi = 0
    end = time.monotonic() + secs
    while time.monotonic() < end:
        hi = max(hi, rss_kib(pid))
        time.sleep(0.1)
    return hi


def build_floor(with_pcp):
    libs = ["-lmicrohttpd", "-lsqlite3", "-lcrypt", "-lpthread"]
    if with_pcp:
        libs += ["-DWITH_PCP", "-lpcp_pmda", "-lpcp"]
    return build_c("bench-floor" + ("-pcp" if with_pcp else ""), "floor.c",
                   libs)


def floor_rss(with_pcp):
    """idle RSS of floor.c: the libraries bpftraced links, doing nothing
    of bpftraced's own (tests/bench/floor.c)."""
    exe = build_floor(with_pcp)
    port = btd.free_port()
    tmp = tempfile.mkdtemp(prefix="bench-floor.")
    p = subprocess.Popen([exe, str(port), os.path.join(tmp, "db"), "2"],
                         stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: _connects(port), 5, 0.02, "floor")
        get("http://127.0.0.1:%d/" % port)
        time.sleep(1)
        return settle_rss(p.pid), mem_detail(p.pid)
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def footprint_bench():
    rows = []
    for with_pcp in (False, True):
        rss, detail = floor_rss(with_pcp)
        rows.append(["floor: libmicrohttpd (+GnuTLS), sqlite3, libcrypt%s, "
                     "no bpftraced code (tests/bench/floor.c)" %
                     (", libpcp, libpcp_pmda" if with_pcp else ""),
                     mib(rss), detail, load()])
    # bpftraced: idle (real bpftrace binary: --version, tracepoint list)
    with daemon(fake=False) as d:
        time.sleep(2)
        idle = settle_rss(d.proc.pid)
        rows.append(["bpftraced idle (no scripts)", mib(idle),
                     mem_detail(d.proc.pid), load()])
    with daemon(args=["--max-scripts", "32"]) as d:
        ctx = new_context(d.base)
        for i in range(20):
            register(d.base, ctx, "// name: s%02d\n// bench: map 100 1000\n"
                     "tracepoint:raw_syscalls:sys_enter { @m[pid] = count(); "
                     "@h = hist(args->id); }\n" % i)
        wait_for(lambda: fetch(d.base, ctx, "bpftrace.info.scripts_running")
                 .get("bpftrace.info.scripts_running", {}).get(None) == 20,
                 60, what="20 scripts running")
        time.sleep(3)
        twenty = settle_rss(d.proc.pid)
        rows.append(["bpftraced, 20 scripts (fake bpftrace, 100-key map "
                     "each, printed every s)", mib(twenty),
                     mem_detail(d.proc.pid), load()])
    with daemon(args=["--max-instances", "100000"]) as d:
        ctx = new_context(d.base)
        register(d.base, ctx, "// bench: map 100000 1000 big\n" + BIG_SCRIPT)
        wait_for(lambda: n_instances(d.base, ctx,
                                     "bpftrace.scripts.big.data.big")
                 >= 100000, 60, 0.5, "100,000 keys")
        big_fake = settle_rss(d.proc.pid, 5)
        rows.append(["bpftraced, one 100,000-key map (fake bpftrace, "
                     "printed every s)", mib(big_fake),
                     mem_detail(d.proc.pid), load()])
    env = {"BPFTRACE_MAP_KEYS_MAX": "200000"}
    with daemon(fake=False, args=["--max-instances", "100000"],
                env=env) as d:
        ctx = new_context(d.base)
        register(d.base, ctx, FETCH_SCRIPT)
        wait_for(lambda: n_instances(d.base, ctx,
                                     "bpftrace.scripts.bench.data.map")
                 >= 1000, 60, 0.5, "bench map")
        time.sleep(3)
        one = settle_rss(d.proc.pid)
        register(d.base, ctx, BIG_SCRIPT)

        def full():
            drive_syscalls(1000000)
            return n_instances(d.base, ctx,
                               "bpftrace.scripts.big.data.big") >= 99000
        wait_for(full, 120, 0, "100,000 keys (real bpftrace)")
        time.sleep(2)
        big_real = settle_rss(d.proc.pid, 5)
        big_detail = mem_detail(d.proc.pid)
        nbig = n_instances(d.base, ctx, "bpftrace.scripts.big.data.big")
        ld = load()
    pcp_rows = []
    if WITH_PCP:
        script_env_note = "(bpftrace via a wrapper with " \
            "BPFTRACE_MAP_KEYS_MAX=200000)"
        with PcpStack():
            time.sleep(2)
            pids = pcp_stack_pids()

            def stack_rss():
                per = {k: sum(rss_kib(p) for p in v) for k, v in pids.items()}
                return sum(per.values()), per
            pidle, pper = stack_rss()
            pctx = new_context(PMPROXY)
            register(PMPROXY, pctx, FETCH_SCRIPT)
            wait_for(lambda: n_instances(PMPROXY, pctx,
                                         "bpftrace.scripts.bench.data.map")
                     >= 1000, 90, 0.5, "PMDA bench map")
            time.sleep(3)
            pone, pper1 = stack_rss()
            register(PMPROXY, pctx, BIG_SCRIPT)

            def pfull():
                drive_syscalls(1000000)
                return n_instances(PMPROXY, pctx,
                                   "bpftrace.scripts.big.data.big") >= 99000
            try:
                wait_for(pfull, 180, 0, "100,000 keys (PMDA)")
                time.sleep(3)
                pbig, pper2 = stack_rss()
                npbig = n_instances(PMPROXY, pctx,
                                    "bpftrace.scripts.big.data.big")
            except RuntimeError as e:
                pbig, pper2, npbig = None, {}, 0
                note("PMDA big map: %s" % e)
            pld = load()
            for n in ("bench", "big"):
                try:
                    store(PMPROXY, pctx, "bpftrace.control.deregister", n)
                except RuntimeError:
                    pass

        def fmt(per):
            return ", ".join("%s %s" % (k, mib(v)) for k, v in per.items())
        pcp_rows = [
            ["idle (no scripts)", mib(idle), mib(pidle), fmt(pper),
             "%.1f%%" % (100.0 * idle / pidle)],
            ["the fetch script (scalar, 1,000-key map, 64-bucket lhist)",
             mib(one), mib(pone), fmt(pper1),
             "%.1f%%" % (100.0 * one / pone)],
            ["+ one 100,000-key map %s" % script_env_note,
             "%s (%d keys)" % (mib(big_real), nbig),
             "%s (%d keys)" % (mib(pbig), npbig) if pbig else "failed",
             fmt(pper2),
             "%.1f%%" % (100.0 * big_real / pbig) if pbig else "-"],
        ]
    table("footprint: bpftraced's RSS (highest VmRSS over 3-5 s)",
          ["case", "RSS", "of which", "load"], rows + [
              ["bpftraced, fetch script + 100,000-key map (real bpftrace)",
               "%s (%d keys)" % (mib(big_real), nbig), big_detail, ld]])
    if pcp_rows:
        table("footprint: bpftraced vs the PCP stack (pmcd + pmproxy + "
              "Python PMDA; bpftrace processes excluded on both sides), "
              "load %s" % pld,
              ["case", "bpftraced", "PCP stack", "PCP parts",
               "bpftraced / PCP"], pcp_rows)


# --------------------------------------------------------------------------
# 4. overhead
# --------------------------------------------------------------------------

def overhead_bench():
    secs = int(os.environ.get("BENCH_OVERHEAD_SECS", "30"))
    n, keys = 10, 10000
    with daemon(args=["--max-instances", str(keys)]) as d:
        ctx = new_context(d.base)
        for i in range(n):
            register(d.base, ctx, "// name: o%02d\n// bench: map %d 1000\n"
                     "tracepoint:raw_syscalls:sys_enter { @m[tid] = count(); "
                     "}\n" % (i, keys))
        wait_for(lambda: all(
            n_instances(d.base, ctx, "bpftrace.scripts.o%02d.data.m" % i)
            >= keys for i in range(n)), 120, 1, "10 maps of 10,000 keys")
        time.sleep(3)
        pid = d.proc.pid
        ld0 = load()
        c0, t0 = cpu_s(pid), time.monotonic()
        b0 = fetch(d.base, ctx, "bpftrace.scripts.o00.data_bytes")
        time.sleep(secs)
        c1, t1 = cpu_s(pid), time.monotonic()
        b1 = fetch(d.base, ctx, "bpftrace.scripts.o00.data_bytes")
        rate = (b1["bpftrace.scripts.o00.data_bytes"][None] -
                b0["bpftrace.scripts.o00.data_bytes"][None]) / (t1 - t0)
        pct = 100.0 * (c1 - c0) / (t1 - t0)
        # the same daemon, scripts stopped: its own idle cost
        for i in range(n):
            store(d.base, ctx, "bpftrace.control.stop", "o%02d" % i)
        time.sleep(3)
        c2, t2 = cpu_s(pid), time.monotonic()
        time.sleep(min(secs, 10))
        idle = 100.0 * (cpu_s(pid) - c2) / (time.monotonic() - t2)
        ld1 = load()
    table("overhead: bpftraced CPU while %d scripts print a %d-key map every "
          "second (fake bpftrace; %d s)" % (n, keys, secs),
          ["case", "CPU % of one core", "target", "met", "load"],
          [["10 scripts x 10,000 keys, 1 print/s each (%.0f KB/s per script)"
            % (rate / 1000), "%.2f%%" % pct, "<= 1%",
            "yes" if pct <= 1 else "no", "%s .. %s" % (ld0, ld1)],
           ["same daemon, scripts stopped", "%.2f%%" % idle, "", "",
            ld1]])


# --------------------------------------------------------------------------
# 5. start
# --------------------------------------------------------------------------

def time_to_answer(argv, path="/pmapi/fetch?names=bpftrace.info.version",
                   port=None, until=None, timeout=30.0):
    """seconds from exec to the first 200 answer (and, with until, to the
    first answer for which until(body) holds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    try:
        while time.monotonic() - t0 < timeout:
            try:
                s = socket.create_connection(("127.0.0.1", port), 1)
            except OSError:
                time.sleep(0.0005)
                continue
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
                       "\r\n\r\n" % path).encode())
            data = btd.recv_all(s)
            s.close()
            if data.startswith(b"HTTP/1.1 200"):
                if first is None:
                    first = time.monotonic() - t0
                if until is None or until(data):
                    return first, time.monotonic() - t0, p
            time.sleep(0.001)
        raise RuntimeError("no answer from %s" % argv)
    except BaseException:
        p.kill()
        p.wait()
        raise


def stop(p):
    btd.stop_process(p, 15)


def start_bench():
    reps = int(os.environ.get("BENCH_REPS", "10"))
    exe = btd.default_binary()
    rows = []
    for label, fake in (("real bpftrace (runs bpftrace --version)", False),
                        ("fake bpftrace", True)):
        times = []
        for _ in range(reps):
            st = tempfile.mkdtemp(prefix="bench-start-")
            port = btd.free_port()
            argv = [exe, "--listen", "127.0.0.1:%d" % port, "--state-dir",
                    st, "--pmda", "off", "--log-level", "warning"] + \
                (["--bpftrace", FAKE] if fake else [])
            first, _, p = time_to_answer(argv, port=port)
            stop(p)
            shutil.rmtree(st, ignore_errors=True)
            times.append(first * 1000)
        rows.append(["exec to first answered fetch, %s" % label,
                     "%.1f" % statistics.median(times), "%.1f" % max(times),
                     "<= 50 ms", "yes" if statistics.median(times) <= 50
                     else "no", load()])
    # restore 100 persisted scripts (fake bpftrace: no compile)
    st = tempfile.mkdtemp(prefix="bench-restore-")
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE,
                     "--max-scripts", "128", "--log-level", "warning"],
                    state_dir=st) as d:
        ctx = new_context(d.base)
        for i in range(100):
            register(d.base, ctx, "// name: r%03d\ntracepoint:raw_syscalls:"
                     "sys_enter { @m[tid] = count(); @h = hist(args->id); }\n"
                     % i)
        wait_for(lambda: fetch(d.base, ctx, "bpftrace.info.scripts_running")
                 .get("bpftrace.info.scripts_running", {}).get(None) == 100,
                 60, what="100 scripts running")
        d.stop(cleanup=False)
    rtimes, ftimes = [], []
    for _ in range(max(3, reps // 3)):
        port = btd.free_port()
        argv = [exe, "--listen", "127.0.0.1:%d" % port, "--state-dir", st,
                "--pmda", "off", "--bpftrace", FAKE, "--max-scripts", "128",
                "--log-level", "warning"]

        def all_running(body):
            m = re.search(rb'"value":(\d+)', body)
            return m is not None and int(m.group(1)) == 100
        first, full, p = time_to_answer(
            argv, "/pmapi/fetch?names=bpftrace.info.scripts_running",
            port=port, until=all_running)
        stop(p)
        ftimes.append(first * 1000)
        rtimes.append(full * 1000)
    shutil.rmtree(st, ignore_errors=True)
    rows.append(["exec to first answered fetch, 100 persisted scripts",
                 "%.1f" % statistics.median(ftimes), "%.1f" % max(ftimes),
                 "<= 50 ms", "yes" if statistics.median(ftimes) <= 50
                 else "no", load()])
    rows.append(["exec to all 100 persisted scripts running (fake "
                 "bpftrace, no compile)",
                 "%.1f" % statistics.median(rtimes), "%.1f" % max(rtimes),
                 "", "", load()])
    table("start: ms from exec (%d runs; restore: %d runs)"
          % (reps, len(rtimes)),
          ["case", "median ms", "max ms", "target", "met", "load"], rows)


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    fn = {"fetch": fetch_bench, "ingest": ingest_bench,
          "footprint": footprint_bench, "overhead": overhead_bench,
          "start": start_bench}.get(what)
    if fn is None:
        sys.stderr.write(__doc__)
        return 2
    if not os.access(btd.default_binary(), os.X_OK):
        sys.stderr.write("bench: build first (src/bpftraced missing)\n")
        return 2
    print("## %s (%s)" % (what, time.strftime("%Y-%m-%d %H:%M:%S")))
    print()
    print("machine: " + machine())
    print("binary: %s" % btd.default_binary())
    fn()
    return 0


if __name__ == "__main__":
    sys.exit(main())
