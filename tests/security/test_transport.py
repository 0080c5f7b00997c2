#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_transport.py - the HTTP layer's limits under hostile clients (TAP).

Issue 14's transport items, each on a real daemon, scaled to run in a
bounded time on a loaded 2-core machine:

  answers   a POST /pmapi/fetch naming bpftrace.info.tracepoints 2,744
            times (a ~180 MB answer before) is refused with a clear 400
            (--max-answer-bytes) and the daemon's RSS does not grow; a
            list past --max-names is refused naming the flag; 8 clients
            that do not read their ~12 MB answers make the daemon hold no
            more than --max-memory, the excess get 503 with the memory
            message
  bystander 600 connections from 127.0.0.2 dribbling a partial request
            while --max-connections is 512: one address gets at most
            --max-connections-per-ip (128 by default), the rest are
            closed, and a client on 127.0.0.1 still gets answers
  deadline  a client dribbling a request a byte a second is cut after
            --request-timeout (3 s here), on a fresh connection and on a
            kept-alive one, while a kept-alive connection idle between
            requests for longer is not
  bodies    300 connections each declaring a 1 MiB-1 body (1,000 in the
            issue): the daemon holds no more than --max-memory (64 MiB
            here), the connections it cannot take get 503 with the memory
            message before sending their bodies

The daemon's memory is VmRSS from /proc/PID/status. Bounds are generous
(the ceiling plus slack) and the base daemon passes them by hundreds of MB.
"""

import json
import os
import resource
import select
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())

MiB = 1024 * 1024
TP = "bpftrace.info.tracepoints"
NTP = 2744
MEMMSG = "memory limit reached"

# a bpftrace that lists NTP tracepoints (~66 KB as one value) and is the
# fixture replayer otherwise
STUB = """#!/usr/bin/python3
import os, sys
if "-l" in sys.argv[1:]:
    for i in range(%d):
        print("tracepoint:sys%%02d:ev%%05d" %% (i %% 97, i))
    sys.exit(0)
os.execv(%r, [%r] + sys.argv[1:])
""" % (NTP, btd.FAKE_BPFTRACE, btd.FAKE_BPFTRACE)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 8192):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))


def rss(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def settled_growth(d, before, limit=8.0):
    """The daemon's RSS growth once it stopped growing (or after limit s)."""
    last, t0 = rss(d), time.monotonic()
    while time.monotonic() - t0 < limit:
        time.sleep(0.5)
        now = rss(d)
        if now <= last + 256 * 1024:
            break
        last = now
    return max(last, rss(d)) - before


def stub_path(tmp):
    p = os.path.join(tmp, "bpftrace")
    with open(p, "w") as f:
        f.write(STUB)
    os.chmod(p, 0o755)
    return p


def tracepoints_ready(d):
    """Wait until the tracepoint list is served; its length."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st, _, b = btd.http("GET", d.url("/pmapi/fetch?names=" + TP))
        if st == 200:
            v = json.loads(b).get("values", [])
            if v and len(v[0]["instances"][0]["value"]) > 10000:
                return len(v[0]["instances"][0]["value"])
        time.sleep(0.1)
    return 0


def post_names(n):
    return ("names=" + ",".join([TP] * n)).encode()


def post_request(d, body):
    return (b"POST /pmapi/fetch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


def read_head(s, timeout):
    """Status and the first bytes of an answer on s (b"" when closed)."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        # the JSON error bodies are small: read a little more
        s.settimeout(0.5)
        while len(data) < 4096:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    status = 0
    if data.startswith(b"HTTP/1."):
        try:
            status = int(data.split(b" ", 2)[1])
        except ValueError:
            pass
    return status, data


def answers(d, tmp):
    with btd.Daemon(["--bpftrace", stub_path(tmp), "--max-memory",
                     str(64 * MiB)]) as dm:
        vlen = tracepoints_ready(dm)
        if not tap.ok(vlen > 50000, "the stub's tracepoint list is served "
                      "(%d bytes)" % vlen):
            return
        before = rss(dm)
        st, _, b = btd.http("POST", dm.url("/pmapi/fetch"),
                            body=post_names(NTP),
                            headers={"Content-Type":
                                     "application/x-www-form-urlencoded"},
                            timeout=60)
        grown = rss(dm) - before
        tap.check(st == 400 and b"answer too large" in b and
                  b"--max-answer-bytes" in b,
                  "%d x %s (%d MB of answer): 400 answer too large, naming "
                  "--max-answer-bytes" % (NTP, TP, NTP * vlen // 10**6),
                  lambda: (st, b[:300]))
        tap.check(grown < 32 * MiB, "the refused answer left the daemon's "
                  "RSS under +32 MiB (grew %d MiB)" % (grown // MiB))

        st, _, b = btd.http("POST", dm.url("/pmapi/fetch"),
                            body=post_names(4097),
                            headers={"Content-Type":
                                     "application/x-www-form-urlencoded"})
        tap.check(st == 400 and b"too many metric names" in b and
                  b"--max-names" in b, "4,097 names: 400 naming --max-names",
                  lambda: (st, b[:300]))

        # 8 clients, ~12 MB answers they do not read
        n = (12 * 10**6) // vlen
        req = post_request(dm, post_names(n))
        before = rss(dm)
        socks = []
        for _ in range(8):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", dm.port))
            s.sendall(req)
            socks.append(s)
        # every client has the start of its answer: all were built
        deadline = time.monotonic() + 30
        pending = list(socks)
        while pending and time.monotonic() < deadline:
            r, _, _ = select.select(pending, [], [], 1)
            pending = [s for s in pending if s not in r]
        held = settled_growth(dm, before)
        results = []
        for s in socks:
            st, data = read_head(s, 5)
            results.append((st, MEMMSG.encode() in data))
            s.close()
        ok200 = sum(1 for st, _ in results if st == 200)
        mem503 = sum(1 for st, m in results if st == 503 and m)
        tap.check(held < 64 * MiB + 24 * MiB, "8 clients not reading %d MB "
                  "answers: the daemon holds under --max-memory 64 MiB "
                  "+ slack (grew %d MiB)" % (n * vlen // 10**6, held // MiB))
        tap.check(ok200 >= 1 and mem503 >= 1 and ok200 + mem503 == 8,
                  "some answered 200, the rest 503 '%s' (%d, %d)" %
                  (MEMMSG, ok200, mem503), lambda: results)
        st, _, _ = btd.http("GET", dm.url("/pmapi/context"))
        tap.ok(st == 200, "the daemon answers afterwards")


def bystander(d, tmp):
    with btd.Daemon(["--max-connections", "512"]) as dm:
        socks = []
        for _ in range(600):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", dm.port))
            except BlockingIOError:
                pass
            socks.append(s)
        select.select([], socks, [], 5)
        for s in socks:
            try:
                s.send(b"GET /pmapi/context HTTP/1.1\r\nX-Pad: ")
            except OSError:
                pass
        t0 = time.monotonic()
        got = []
        for i in range(5):
            for s in socks:         # a byte now and then, like a slowloris
                try:
                    s.send(b"a")
                except OSError:
                    pass
            t = time.monotonic()
            try:
                st, _, _ = btd.http("GET", dm.url("/pmapi/context"),
                                    timeout=15)
            except OSError as e:
                st = str(e)
            got.append((st, round(time.monotonic() - t, 2)))
            if st != 200:
                break               # one 15 s wait is proof enough
        tap.check(all(st == 200 for st, _ in got), "600 dribbling "
                  "connections from 127.0.0.2 (--max-connections 512): "
                  "a client on 127.0.0.1 gets its 5 answers (%.1f s)" %
                  (time.monotonic() - t0), lambda: got)
        closed = 0
        r, _, _ = select.select(socks, [], [], 2)
        for s in r:
            try:
                if s.recv(4096) == b"":
                    closed += 1
            except OSError:
                closed += 1
        tap.check(closed >= 600 - 128 - 16, "127.0.0.2 kept at most "
                  "--max-connections-per-ip (128 by default): %d of 600 "
                  "closed" % closed)
        for s in socks:
            s.close()


def dribble(s, t_max, step=1.0):
    """Send a header byte every step s until closed; seconds it took."""
    t0 = time.monotonic()
    s.settimeout(step)
    while time.monotonic() - t0 < t_max:
        try:
            s.send(b"a")
            if s.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


def deadline(d, tmp):
    try:
        dm = btd.Daemon(["--request-timeout", "3"])
    except btd.DaemonError as e:
        tap.ok(False, "bpftraced --request-timeout 3 starts", str(e)[-300:])
        return
    with dm:
        s = socket.create_connection(("127.0.0.1", dm.port))
        s.send(b"GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
        took = dribble(s, 20)
        s.close()
        tap.check(took is not None and 2.5 <= took <= 12, "a request "
                  "dribbled a byte a second is cut after --request-timeout "
                  "3 s (%s s)" % (took and round(took, 1)))

        # kept alive: idle between requests longer than the deadline is
        # fine; a dribbled second request is cut
        s = socket.create_connection(("127.0.0.1", dm.port))
        s.sendall(b"GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        st1, _ = read_head(s, 5)
        time.sleep(5)
        s.sendall(b"GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        st2, _ = read_head(s, 5)
        tap.check(st1 == 200 and st2 == 200, "a kept-alive connection idle "
                  "5 s between requests is not cut (%s, %s)" % (st1, st2))
        s.send(b"GET /pmapi/context HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
        took = dribble(s, 20)
        s.close()
        tap.check(took is not None and 2 <= took <= 12, "its dribbled "
                  "next request is cut too (%s s)" % (took and
                                                      round(took, 1)))
        st, _, _ = btd.http("GET", dm.url("/pmapi/context"))
        tap.ok(st == 200, "the daemon answers afterwards")


def bodies(d, tmp):
    nconn = 300
    clen = MiB - 1
    with btd.Daemon(["--max-memory", str(64 * MiB),
                     "--max-connections-per-ip", "0"]) as dm:
        before = rss(dm)
        head = (b"POST /pmapi/derive HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Length: %d\r\n\r\n" % clen)
        socks = []
        for _ in range(nconn):
            s = socket.create_connection(("127.0.0.1", dm.port))
            s.sendall(head)
            socks.append(s)
        time.sleep(1.0)
        refused, taken = [], []
        r, _, _ = select.select(socks, [], [], 1)
        for s in socks:
            (refused if s in r else taken).append(s)
        mem503 = 0
        for s in refused:
            st, data = read_head(s, 2)
            mem503 += st == 503 and MEMMSG.encode() in data
        body = b"x" * (clen - 1)    # all but the last byte: held
        for s in taken:
            try:
                s.settimeout(10)
                s.sendall(body)
            except OSError:
                pass
        grown = settled_growth(dm, before)
        tap.check(grown < 64 * MiB + 32 * MiB, "%d connections holding "
                  "1 MiB-1 bodies: the daemon grew under --max-memory "
                  "64 MiB + slack (%d MiB, %d bodies taken)" %
                  (nconn, grown // MiB, len(taken)))
        tap.check(mem503 >= nconn // 2 and mem503 == len(refused),
                  "the connections it could not take got 503 '%s' before "
                  "sending their bodies (%d of %d)" %
                  (MEMMSG, mem503, nconn))
        for s in socks:
            s.close()
        st, _, _ = btd.http("GET", dm.url("/pmapi/context"))
        tap.ok(st == 200, "the daemon answers afterwards")


def main():
    raise_nofile()
    tmp = tempfile.mkdtemp(prefix="btd-transport-")
    for part in (answers, bystander, deadline, bodies):
        try:
            part(None, tmp)
        except (OSError, btd.DaemonError, ValueError, KeyError) as e:
            tap.ok(False, "%s: ran to the end" % part.__name__, repr(e))
    tap.done()


if __name__ == "__main__":
    main()
