#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""attacks.py - the resource-exhaustion attacks of issue 14, each against a
fresh bpftraced, with a bystander fetching beside it (tests/bench/README.md).

    attacks.py [--only NAME[,NAME...]] [--seconds N] [--bpftraced PATH]
               [--pass other|same|both] [--as-limit BYTES] [--list]

Each attack runs --seconds (20) against a new daemon (the binary, on a free
port, a temporary state directory, the fake bench-bpftrace, the flags the
attack needs). Pass "other": the attacker's sockets are bound to 127.0.0.2
and the bystander's to 127.0.0.1; pass "same": both on 127.0.0.1 (a Grafana
behind one proxy address). The bystander keeps one keep-alive connection and
sends GET /pmapi/fetch?names=bpftrace.daemon.uptime every 100 ms (in a
process of its own, away from the attacker's threads); an answer
that is not a 200 within 1 s (status, timeout, reset, refused) is an error,
and its time (up to the 1 s) is in the latencies. Beside it, once a second,
the same fetch on a new connection (reported as "new connections ok / tried",
not counted in the errors: can a client that was not connected before the
attack still get in?). The daemon's peak RSS is
its VmHWM (polled every 100 ms with VmRSS, so a daemon that dies still has a
figure). The daemon runs under prlimit --as (default 4 GiB) so that an attack
on an unfixed build cannot take the machine's memory; a daemon that dies is
reported. Prints one markdown row per attack as it ends (stdout; progress on
stderr), then a summary against the targets: bystander p99 <= 10 ms, peak
RSS <= 256 MiB (the --max-memory default), 0 bystander errors.

Python stdlib only; run as root or not; traffic goes to 127.0.0.0/8 only.
Every loop is bounded by the attack's deadline.
"""

import argparse
import base64
import collections
import errno
import json
import multiprocessing
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

FAKE = os.path.join(HERE, "bench-bpftrace")
OTHER_ADDR = "127.0.0.2"
BYSTANDER_ADDR = "127.0.0.1"
BYSTANDER_PATH = "/pmapi/fetch?names=bpftrace.daemon.uptime"
BYSTANDER_PERIOD = 0.1          # s between the bystander's requests
BYSTANDER_TIMEOUT = 1.0         # s: a slower answer is an error
TARGET_P99_MS = 10.0
TARGET_RSS = 256 * 1024 * 1024  # the --max-memory default
DEFAULT_AS = 4 << 30            # prlimit --as on the daemon
GRACE = 5.0                     # s after the deadline for threads to end
TRACEPOINTS = 2000              # fake bpftrace -l lines (~94 KB of names)
BIG_NAMES = 2744                # names in one big-answer fetch


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def note(msg):
    sys.stderr.write("attacks: %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------
# HTTP on raw sockets
# --------------------------------------------------------------------------

class Closed(Exception):
    """The daemon closed the connection (EOF)."""


def connect(port, src, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Reader:
    """Reads HTTP/1.1 answers off one socket; bodies are counted and
    dropped (only the first `keep` bytes are returned), so a 250 MB answer
    costs no memory here."""

    CHUNK = 1 << 18

    def __init__(self, sock):
        self.s = sock
        self.buf = bytearray()
        self.scratch = bytearray(self.CHUNK)
        self.got = 0                # bytes received on this connection

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        self.s.settimeout(left)
        n = self.s.recv_into(self.scratch)
        if n == 0:
            raise Closed()
        self.got += n
        return n

    def _fill(self, deadline):
        n = self._recv(deadline)
        self.buf += self.scratch[:n]

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > 65536:
                raise ValueError("header line too long")
            self._fill(deadline)

    def _body(self, n, keep, deadline):
        out = bytearray()
        take = min(n, len(self.buf))
        out += self.buf[:min(take, keep)]
        del self.buf[:take]
        n -= take
        while n > 0:
            m = self._recv(deadline)
            use = min(m, n)
            if len(out) < keep:
                out += self.scratch[:min(use, keep - len(out))]
            if m > n:                       # the next answer began
                self.buf += self.scratch[n:m]
            n -= use
        return out

    def answer(self, deadline, keep=0):
        """(status, first `keep` bytes of the body)."""
        status_line = self._line(deadline)
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError("bad status line %r" % status_line[:80])
        status = int(parts[1])
        length, chunked = None, False
        while True:
            line = self._line(deadline)
            if not line:
                break
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v.strip())
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
        body = bytearray()
        if chunked:
            while True:
                size = int(self._line(deadline).split(b";")[0], 16)
                body += self._body(size, max(0, keep - len(body)), deadline)
                self._line(deadline)
                if size == 0:
                    break
        elif length is not None:
            body = self._body(length, keep, deadline)
        elif status not in (204, 304) and not 100 <= status < 200:
            while True:                     # until close
                try:
                    n = self._recv(deadline)
                except Closed:
                    break
                if len(body) < keep:
                    body += self.scratch[:min(n, keep - len(body))]
        return status, bytes(body)


def request(method, path, body=None, headers=(), ctype=None):
    h = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    h += list(headers)
    if body is not None:
        h.append("Content-Type: %s" % (ctype or "text/plain"))
        h.append("Content-Length: %d" % len(body))
    return ("\r\n".join(h) + "\r\n\r\n").encode() + (body or b"")


def err_kind(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(e, Closed):
        return "closed"
    if isinstance(e, OSError) and e.errno == errno.EADDRNOTAVAIL:
        return "no-port"
    if isinstance(e, OSError):
        return "oserror-%s" % (errno.errorcode.get(e.errno, e.errno))
    return type(e).__name__


# --------------------------------------------------------------------------
# the attack's context: where to send, until when, what came back
# --------------------------------------------------------------------------

class Run:
    def __init__(self, port, src, seconds):
        self.port = port
        self.src = src
        self.deadline = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.extra = {}

    def count(self, key, n=1):
        with self.lock:
            self.counts[str(key)] += n

    def left(self):
        return self.deadline - time.monotonic()

    def over(self):
        return time.monotonic() >= self.deadline

    def connect(self, timeout=2.0):
        return connect(self.port, self.src, min(timeout, max(0.05,
                                                             self.left())))

    def open_many(self, n, first=b""):
        """Up to n non-blocking connections (fewer once the time is over),
        each having sent first; a failed one counts as "connect KIND", the
        ones made as "opened"."""
        socks = []
        for _ in range(n):
            if self.over():
                break
            try:
                s = self.connect(1.0)
                s.setblocking(False)
                if first:
                    s.send(first)
                socks.append(s)
            except OSError as e:
                self.count("connect " + err_kind(e))
        self.count("opened", len(socks))
        return socks


class Conn:
    """One keep-alive attacker connection; req() counts the status."""

    def __init__(self, run, timeout=2.0):
        self.run = run
        self.s = run.connect(timeout)
        self.rd = Reader(self.s)

    def req(self, data, keep=0, timeout=30.0):
        deadline = min(self.run.deadline, time.monotonic() + timeout)
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        self.s.settimeout(left)
        self.s.sendall(data)
        st, body = self.rd.answer(deadline, keep)
        self.run.count(st)
        return st, body

    def close(self):
        self.s.close()


def new_context(conn, timeout=30.0):
    st, body = conn.req(request("GET", "/pmapi/context?polltimeout=86400"),
                        keep=4096, timeout=timeout)
    if st != 200:
        return None
    try:
        return json.loads(body)["context"]
    except (ValueError, KeyError):
        return None


def closed_loop(run, nconns, step, timeout=30.0, setup=None):
    """nconns threads, each on its own keep-alive connection, calling
    step(conn, state) until the deadline; a failed connection is counted
    and replaced."""
    def worker(i):
        conn, state = None, {"i": i}
        while not run.over():
            try:
                if conn is None:
                    conn = Conn(run)
                    if setup:
                        setup(conn, state)
                step(conn, state)
            except (OSError, Closed, ValueError) as e:
                run.count("cut at the end" if run.over() else err_kind(e))
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.01)
        if conn:
            conn.close()
    ts = [threading.Thread(target=worker, args=(i,), daemon=True)
          for i in range(nconns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(0.0, run.left()) + GRACE)


# --------------------------------------------------------------------------
# the attacks
# --------------------------------------------------------------------------

def atk_idle(run):
    """No attack: the bystander alone, for the machine's own noise."""
    while not run.over():
        time.sleep(min(0.5, max(0.0, run.left())))
    return "none"


def atk_contexts(run):
    """16,384 pipelined GET /pmapi/context?polltimeout=86400 on one
    connection, then more (up to 16,384 unanswered at a time) until the
    deadline."""
    req = request("GET", "/pmapi/context?polltimeout=86400")
    batch = req * 1024
    while not run.over():
        try:
            s = run.connect()
        except OSError as e:
            run.count(err_kind(e))
            time.sleep(0.05)
            continue
        state = {"sent": 0, "got": 0, "dead": False}
        rd = Reader(s)

        def reader():
            try:
                while not run.over():
                    st, _ = rd.answer(run.deadline)
                    run.count(st)
                    state["got"] += 1
            except (OSError, Closed, ValueError) as e:
                if not run.over():
                    run.count(err_kind(e))
            state["dead"] = True
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            while not run.over() and not state["dead"]:
                if state["sent"] - state["got"] < 16384:
                    s.settimeout(max(0.05, run.left()))
                    s.sendall(batch)
                    state["sent"] += 1024
                else:
                    time.sleep(0.005)
        except (OSError, Closed) as e:
            if not run.over():
                run.count(err_kind(e))
        t.join(max(0.0, run.left()) + GRACE)
        s.close()
    return "pipelined on 1 connection"


def derive_body():
    term = "bpftrace.daemon.uptime + "          # 25 bytes
    expr = term * 159 + "bpftrace.daemon.uptime"  # ~4,000 bytes
    return "".join("bench.d%03d = %s\n" % (i, expr)
                   for i in range(256)).encode()


def atk_derive(run):
    """8 connections: a new context, then POST /pmapi/N/derive with 256
    lines of ~4 KB expressions, again and again."""
    body = derive_body()

    def step(conn, state):
        ctx = new_context(conn)
        if ctx is None:
            return
        conn.req(request("POST", "/pmapi/%d/derive" % ctx, body))
    closed_loop(run, 8, step)
    return "8 connections, %d B bodies" % len(body)


REGEX = "((.{255}){255}){255}"


def atk_regex(run):
    """4 connections asking GET /pmapi/indom?indom=151.1&match=regex&
    iname=((.{255}){255}){255} in a loop."""
    path = "/pmapi/indom?indom=151.1&match=regex&iname=" + \
        urllib.parse.quote(REGEX, safe="")
    req = request("GET", path)
    closed_loop(run, 4, lambda c, s: c.req(req, timeout=60.0))
    return "4 connections"


def atk_auth(n):
    def attack(run):
        """n connections sending a fetch with wrong Basic credentials
        for the one user of the --auth-file, in a loop."""
        cred = base64.b64encode(b"bench:wrong-password").decode()
        req = request("GET", BYSTANDER_PATH,
                      headers=["Authorization: Basic " + cred])
        closed_loop(run, n, lambda c, s: c.req(req))
        return "%d connections" % n
    attack.__doc__ = attack.__doc__.replace("n connections",
                                            "%d connections" % n)
    return attack


def atk_store_off(run):
    """16 connections storing to bpftrace.control.register with
    --control off (refused, audited), in a loop."""
    q = urllib.parse.urlencode({"name": "bpftrace.control.register",
                                "value": "// name: x\nBEGIN { exit(); }"})
    req = request("GET", "/pmapi/store?" + q)
    closed_loop(run, 16, lambda c, s: c.req(req))
    return "16 connections"


def atk_bigfetch(run):
    """8 connections: POST /pmapi/fetch (form body) naming
    bpftrace.info.tracepoints 2,744 times (~94 KB value each)."""
    body = ("names=" + ",".join(["bpftrace.info.tracepoints"] *
                                BIG_NAMES)).encode()
    req = request("POST", "/pmapi/fetch", body,
                  ctype="application/x-www-form-urlencoded")
    st_bytes = collections.Counter()

    def step(conn, state):
        before = conn.rd.got
        conn.req(req, timeout=60.0)
        with run.lock:
            st_bytes["bytes"] += conn.rd.got - before
            st_bytes["answers"] += 1
    closed_loop(run, 8, step, timeout=60.0)
    avg = st_bytes["bytes"] / st_bytes["answers"] if st_bytes["answers"] \
        else 0
    return "8 connections, %d tracepoints, answers %.0f MB on average" % (
        TRACEPOINTS, avg / 1e6)


def atk_slowloris(run):
    """1,100 connections, each sending one more header byte every 5 s."""
    n, period = 1100, 5.0
    head = b"GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    socks = run.open_many(n, head)
    nxt = time.monotonic() + period
    while not run.over():
        time.sleep(max(0.0, min(nxt, run.deadline) - time.monotonic()))
        if run.over():
            break
        nxt += period
        alive = []
        for s in socks:
            try:
                s.send(b"a")
                try:
                    d = s.recv(4096)
                except BlockingIOError:
                    d = None
                if d == b"":
                    raise Closed()
                if d and d.startswith(b"HTTP/1.1 "):
                    run.count("answered %s" % d[9:12].decode("latin-1"))
                alive.append(s)
            except (OSError, Closed) as e:
                run.count("dropped " + err_kind(e))
                s.close()
        socks = alive
    run.count("open at end", len(socks))
    for s in socks:
        s.close()
    return "%d connections, 1 byte / %.0f s" % (n, period)


def atk_profile(run):
    """4 connections adding 800 new instance ids per request to the
    profile of one context (GET /pmapi/N/profile?expr=add&indom=151.1)."""
    shared = {"ctx": None, "next": 1000000}

    def setup(conn, state):
        with run.lock:
            ctx = shared["ctx"]
        if ctx is None:
            ctx = new_context(conn)
            with run.lock:
                shared["ctx"] = shared["ctx"] or ctx
                ctx = shared["ctx"]
        state["ctx"] = ctx

    def step(conn, state):
        with run.lock:
            first = shared["next"]
            shared["next"] += 800
        ids = ",".join(str(i) for i in range(first, first + 800))
        conn.req(request("GET", "/pmapi/%s/profile?expr=add&indom=151.1&"
                         "instance=%s" % (state["ctx"], ids)))
    closed_loop(run, 4, step, setup=setup)
    return "4 connections, 1 context, %d ids sent" % (shared["next"] -
                                                      1000000)


def atk_bodies(run):
    """1,000 connections, each sending POST /pmapi/derive with
    Content-Length: 1048575 and all of the body but its last byte, then
    holding it until the deadline."""
    n, length = 1000, 1048575
    head = request("POST", "/pmapi/derive").replace(
        b"\r\n\r\n", ("\r\nContent-Type: text/plain\r\nContent-Length: %d"
                      "\r\n\r\n" % length).encode())
    data = memoryview(head + b"#" * (length - 1))
    socks = dict.fromkeys(run.open_many(n), 0)
    sending = dict(socks)
    done = set()
    sel = selectors.DefaultSelector()       # fds past 1024: not select()
    for s in sending:
        sel.register(s, selectors.EVENT_WRITE)
    while not run.over() and sending:
        for key, _ in sel.select(min(0.5, max(0.0, run.left()))):
            s = key.fileobj
            try:
                off = sending[s]
                k = s.send(data[off:off + (1 << 20)])
                off += k
                if off >= len(data):
                    del sending[s]
                    done.add(s)
                    sel.modify(s, selectors.EVENT_READ)
                else:
                    sending[s] = off
            except OSError as e:
                run.count("dropped " + err_kind(e))
                del sending[s]
                sel.unregister(s)
                s.close()
                socks.pop(s, None)
    run.count("holding 1 MB-1", len(done))
    run.count("unfinished", len(sending))
    # hold; note answers and closes the daemon sends meanwhile
    for s in sending:
        sel.unregister(s)
    live = set(done)
    while not run.over() and live:
        for key, _ in sel.select(min(0.5, max(0.0, run.left()))):
            s = key.fileobj
            try:
                d = s.recv(65536)
            except OSError as e:
                run.count("dropped " + err_kind(e))
                d = b""
            if d.startswith(b"HTTP/1.1 "):
                run.count("answered %s" % d[9:12].decode("latin-1"))
            if not d:
                run.count("closed by daemon")
                live.discard(s)
                sel.unregister(s)
    sel.close()
    for s in socks:
        s.close()
    return "%d connections x %d B" % (n, length)


def atk_ctl_answers(run):
    """8 connections: a new context, then POST /pmapi/N/store of
    bpftrace.control.register with a ~1 MB script (form body), refused
    (--max-script-bytes) under --control loopback: the refusal, which
    quotes the script, is kept for the context to read back."""
    script = "// name: big\nBEGIN { printf(\"%s\"); }\n" % ("x" * 1040000)
    body = urllib.parse.urlencode({"name": "bpftrace.control.register",
                                   "value": script}).encode()
    sizes = collections.Counter()

    def step(conn, state):
        ctx = new_context(conn)
        if ctx is None:
            return
        before = conn.rd.got
        conn.req(request("POST", "/pmapi/%d/store" % ctx, body,
                         ctype="application/x-www-form-urlencoded"))
        with run.lock:
            sizes["bytes"] += conn.rd.got - before
            sizes["answers"] += 1
    closed_loop(run, 8, step)
    avg = sizes["bytes"] / sizes["answers"] if sizes["answers"] else 0
    return "8 connections, %d B bodies, answers %.0f B on average" % (
        len(body), avg)


def users_file(tmp, binary):
    pw = os.path.join(os.path.dirname(binary), "bpftraced-passwd")
    if not os.access(pw, os.X_OK):
        pw = os.path.join(btd.REPO_ROOT, "src", "bpftraced-passwd")
    p = subprocess.run([pw, "--roles", "control", "bench"],
                       input=b"bench-password", stdout=subprocess.PIPE,
                       check=True)
    path = os.path.join(tmp, "users")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(p.stdout)
    return path


def tracepoints_ready(base):
    st, _, body = btd.http("GET", base + "/pmapi/fetch?names="
                           "bpftrace.info.tracepoints", timeout=5)
    return st == 200 and len(body) > 50000


# name: (function, daemon args, extra env, ready check or None)
ATTACKS = collections.OrderedDict([
    ("idle", (atk_idle, [], {}, None)),
    ("contexts", (atk_contexts, [], {}, None)),
    ("derive", (atk_derive, [], {}, None)),
    ("regex", (atk_regex, [], {}, None)),
    ("auth16", (atk_auth(16), ["--control", "auth", "--auth-file",
                               "@USERS"], {}, None)),
    ("auth64", (atk_auth(64), ["--control", "auth", "--auth-file",
                               "@USERS"], {}, None)),
    ("store-off", (atk_store_off, ["--control", "off"], {}, None)),
    ("bigfetch", (atk_bigfetch, [], {"BENCH_TRACEPOINTS": str(TRACEPOINTS)},
                  tracepoints_ready)),
    ("slowloris", (atk_slowloris, [], {}, None)),
    ("profile", (atk_profile, [], {}, None)),
    ("bodies", (atk_bodies, [], {}, None)),
    ("ctl-answers", (atk_ctl_answers, ["--control", "loopback"], {}, None)),
])


# --------------------------------------------------------------------------
# the bystander and the RSS sampler
# --------------------------------------------------------------------------

class Bystander(threading.Thread):
    """One keep-alive connection from BYSTANDER_ADDR; a fetch every
    100 ms. A connection the daemon closed while idle (EOF before any
    answer byte) is retried once at once, as HTTP clients do."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_evt = threading.Event()
        self.lat = []
        self.errors = collections.Counter()
        self.req = request("GET", BYSTANDER_PATH)
        self.sock = None

    def once(self, deadline):
        fresh = self.sock is None
        if fresh:
            self.sock = connect(self.port, BYSTANDER_ADDR,
                                max(0.01, deadline - time.monotonic()))
            self.rd = Reader(self.sock)
        got = self.rd.got
        try:
            self.sock.sendall(self.req)
            return self.rd.answer(deadline)[0]
        except (Closed, ConnectionResetError, BrokenPipeError):
            if fresh or self.rd.got != got:
                raise
            self.sock.close()           # stale keep-alive: retry once
            self.sock = None
            return self.once(deadline)

    def run(self):
        nxt = time.monotonic()
        while not self.stop_evt.is_set():
            t0 = time.monotonic()
            deadline = t0 + BYSTANDER_TIMEOUT
            try:
                st = self.once(deadline)
                if st != 200:
                    self.errors["status %d" % st] += 1
            except (OSError, Closed, ValueError) as e:
                self.errors[err_kind(e)] += 1
                if self.sock:
                    self.sock.close()
                self.sock = None
            self.lat.append((time.monotonic() - t0) * 1000.0)
            nxt += BYSTANDER_PERIOD
            now = time.monotonic()
            if nxt < now:
                nxt = now
            self.stop_evt.wait(nxt - now)
        if self.sock:
            self.sock.close()


class Prober(threading.Thread):
    """Once a second, the bystander's fetch on a new connection (from
    BYSTANDER_ADDR, Connection: close, 1 s): can a client that was not
    connected before the attack still get in? Reported beside the
    bystander's figures, not counted in its errors."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_evt = threading.Event()
        self.tried = 0
        self.ok = 0
        self.req = request("GET", BYSTANDER_PATH,
                           headers=["Connection: close"])

    def run(self):
        while not self.stop_evt.wait(1.0):
            self.tried += 1
            deadline = time.monotonic() + BYSTANDER_TIMEOUT
            s = None
            try:
                s = connect(self.port, BYSTANDER_ADDR, BYSTANDER_TIMEOUT)
                s.sendall(self.req)
                if Reader(s).answer(deadline)[0] == 200:
                    self.ok += 1
            except (OSError, Closed, ValueError):
                pass
            finally:
                if s:
                    s.close()


def _bystander_main(port, stop, out):
    by, pr = Bystander(port), Prober(port)
    by.start()
    pr.start()
    stop.wait(3600)
    by.stop_evt.set()
    pr.stop_evt.set()
    by.join(BYSTANDER_TIMEOUT + 1)
    pr.join(BYSTANDER_TIMEOUT + 1)
    out.send((list(by.lat), dict(by.errors), (pr.ok, pr.tried)))
    out.close()


class BystanderProcess:
    """The bystander and the prober in a process of their own, so that
    the attacker's threads (this process's GIL) do not slow them down."""

    def __init__(self, port):
        mp = multiprocessing.get_context("fork")
        self.stop = mp.Event()
        self.rx, tx = mp.Pipe(duplex=False)
        self.p = mp.Process(target=_bystander_main,
                            args=(port, self.stop, tx), daemon=True)
        self.p.start()
        tx.close()

    def finish(self):
        """(latencies ms, errors by kind, (new connections ok, tried))"""
        self.stop.set()
        res = ([], {"bystander lost": 1}, (0, 0))
        if self.rx.poll(2 * BYSTANDER_TIMEOUT + 5):
            res = self.rx.recv()
        self.p.join(5)
        if self.p.is_alive():
            self.p.terminate()
            self.p.join()
        return res


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.stop_evt = threading.Event()
        self.peak_kib = 0

    def sample(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        self.peak_kib = max(self.peak_kib,
                                            int(line.split()[1]))
        except (OSError, ValueError):
            pass

    def run(self):
        while not self.stop_evt.wait(0.1):
            self.sample()


def pct(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


# --------------------------------------------------------------------------
# one attack
# --------------------------------------------------------------------------

class CappedDaemon(btd.Daemon):
    """btd.Daemon under prlimit: --as (if set) and the file limit this
    script had before it raised its own."""

    AS = 0
    NOFILE = None

    def command(self, port):
        pre = ["prlimit"]
        if self.AS:
            pre.append("--as=%d" % self.AS)
        if self.NOFILE:
            pre.append("--nofile=%d:%d" % self.NOFILE)
        return pre + ["--"] + super().command(port)


def run_attack(name, where, seconds, binary):
    fn, args, env, ready = ATTACKS[name]
    tmp = tempfile.mkdtemp(prefix="bench-attack-")
    try:
        args = [users_file(tmp, binary) if a == "@USERS" else a
                for a in args]
        env = dict(env)
        d = CappedDaemon(["--bpftrace", FAKE, "--log-level", "warning"] +
                         args, binary=binary, env=env)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    res = {"name": name, "pass": where}
    try:
        if ready:
            end = time.monotonic() + 20
            while not ready(d.base) and time.monotonic() < end:
                time.sleep(0.2)
        pid = d.proc.pid
        by = BystanderProcess(d.port)   # first: fork before our threads
        rss = RssSampler(pid)
        rss.sample()
        rss.start()
        time.sleep(1.0)                 # the bystander's baseline
        res["load0"] = load()
        src = OTHER_ADDR if where == "other" else BYSTANDER_ADDR
        run = Run(d.port, src, seconds)
        t = threading.Thread(target=lambda: res.__setitem__(
            "how", fn(run)), daemon=True)
        t.start()
        t.join(seconds + 3 * GRACE)
        if t.is_alive():
            run.count("attacker still running at the end")
        time.sleep(0.5)
        res["lat"], res["errors"], res["probes"] = by.finish()
        rss.sample()
        rss.stop_evt.set()
        rss.join(1)
        res["load1"] = load()
        res["peak_kib"] = rss.peak_kib
        res["counts"] = dict(run.counts)
        rc = d.proc.poll() if d.proc else None
        res["died"] = rc
        if rc is not None:
            tail = d.stderr_text().strip().splitlines()[-3:]
            note("%s/%s: daemon exited with %s: %s" % (name, where, rc,
                                                      " | ".join(tail)))
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def fmt_counts(c):
    return ", ".join("%s: %d" % (k, v) for k, v in
                     sorted(c.items(), key=lambda kv: -kv[1])) or "-"


def row(r):
    lat = r["lat"]
    nerr = sum(r["errors"].values())
    died = ""
    if r["died"] is not None:
        died = " (daemon died: %s)" % ("signal %d" % -r["died"]
                                       if r["died"] < 0 else
                                       "exit %d" % r["died"])
    return [r["name"], r["pass"],
            "%d / %.1f / %.1f / %.1f" % (len(lat), pct(lat, 50),
                                         pct(lat, 99), max(lat or [0])),
            "%d%s" % (nerr, " (" + fmt_counts(r["errors"]) + ")"
                      if nerr else ""),
            "%d / %d" % r["probes"],
            "%.1f MiB%s" % (r["peak_kib"] / 1024.0, died),
            fmt_counts(r["counts"]), r.get("how", ""),
            "%s .. %s" % (r["load0"], r["load1"])]


def print_row(cells):
    print("| " + " | ".join(str(c) for c in cells) + " |")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated attacks (--list)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--bpftraced", default=btd.default_binary())
    ap.add_argument("--pass", dest="passes", default="both",
                    choices=("other", "same", "both"))
    ap.add_argument("--as-limit", type=int, default=DEFAULT_AS,
                    help="prlimit --as on the daemon, bytes; 0: none "
                    "(default 4 GiB)")
    ap.add_argument("--list", action="store_true")
    o = ap.parse_args()
    if o.list:
        for k, v in ATTACKS.items():
            print("%-12s %s" % (k, " ".join(v[0].__doc__.split()) if
                                v[0].__doc__ else ""))
        return 0
    names = list(ATTACKS)
    if o.only:
        names = o.only.split(",")
        bad = [n for n in names if n not in ATTACKS]
        if bad:
            sys.stderr.write("unknown attack(s): %s (known: %s)\n"
                             % (", ".join(bad), ", ".join(ATTACKS)))
            return 2
    binary = os.path.abspath(o.bpftraced)
    if not os.access(binary, os.X_OK):
        sys.stderr.write("attacks: no executable %s (build first)\n"
                         % binary)
        return 2
    if o.seconds <= 0 or o.seconds > 600:
        sys.stderr.write("attacks: --seconds must be in (0, 600]\n")
        return 2
    # SIGTERM unwinds like ^C, so the daemon of the attack is stopped
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    CappedDaemon.NOFILE = (soft, hard)
    CappedDaemon.AS = o.as_limit
    want = max(soft, min(hard, 8192))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 4096:
        note("only %d file descriptors: slowloris and bodies will be "
             "short of connections" % want)
    try:        # the attacker's address must exist
        connect(btd.free_port(), OTHER_ADDR, 1).close()
    except ConnectionRefusedError:
        pass
    passes = ["other", "same"] if o.passes == "both" else [o.passes]
    ver = subprocess.run([binary, "--version"], capture_output=True,
                         text=True).stdout.strip()
    print("## exhaustion attacks, issue 14 (%s)" % time.strftime(
        "%Y-%m-%d %H:%M:%S"))
    print()
    print("machine: %d CPUs, Linux %s, load %s" % (os.cpu_count(),
                                                  os.uname().release, load()))
    print("binary: %s (%s)" % (binary, ver))
    print("daemon under: prlimit %s--nofile=%d:%d (this script's own "
          "limit, raised to %d for the attacker)" % (
              "--as=%d (%.1f GiB) " % (o.as_limit, o.as_limit / 2.0 ** 30)
              if o.as_limit else "", soft, hard, want))
    print("each attack: %g s; bystander GET %s every %d ms from %s, "
          "error = not 200 within %g s; attacker from %s (pass other) or "
          "%s (pass same)" % (o.seconds, BYSTANDER_PATH,
                              BYSTANDER_PERIOD * 1000, BYSTANDER_ADDR,
                              BYSTANDER_TIMEOUT, OTHER_ADDR, BYSTANDER_ADDR))
    print()
    header = ["attack", "pass", "bystander n / p50 / p99 / max ms",
              "bystander errors", "new connections ok / tried",
              "daemon peak RSS", "attacker answers",
              "attack", "load (start .. end)"]
    print_row(header)
    print("|" + "---|" * len(header))
    results = []
    t0 = time.monotonic()
    for where in passes:
        for name in names:
            note("%s, pass %s, load %s" % (name, where, load()))
            r = run_attack(name, where, o.seconds, binary)
            results.append(r)
            print_row(row(r))
    print()
    print("### summary vs targets (bystander p99 <= %g ms, peak RSS <= "
          "%d MiB, 0 bystander errors)" % (TARGET_P99_MS, TARGET_RSS >> 20))
    print()
    header = ["attack", "pass", "p99 ms", "peak RSS MiB", "errors",
              "all met"]
    print_row(header)
    print("|" + "---|" * len(header))
    for r in results:
        p99 = pct(r["lat"], 99)
        nerr = sum(r["errors"].values())
        ok = [p99 <= TARGET_P99_MS, r["peak_kib"] * 1024 <= TARGET_RSS,
              nerr == 0 and r["died"] is None]
        print_row([r["name"], r["pass"],
                   "%.1f %s" % (p99, "ok" if ok[0] else "MISSED"),
                   "%.1f %s" % (r["peak_kib"] / 1024.0,
                                "ok" if ok[1] else "MISSED"),
                   "%d%s %s" % (nerr, " (died)" if r["died"] is not None
                                else "", "ok" if ok[2] else "MISSED"),
                   "yes" if all(ok) else "no"])
    print()
    print("total %.0f s, load now %s" % (time.monotonic() - t0, load()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
