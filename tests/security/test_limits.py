#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_limits.py - what one client can make a real bpftraced hold (TAP).

Each attack of issue 14 ("One request, a day-long outage"), replayed for
real against the daemon:

  - 16,384 pipelined GET /pmapi/context?polltimeout=86400 on one
    connection from 127.0.0.1; afterwards a bystander on 127.0.0.2 still
    gets a context and fetches, and the contexts of a "Grafana server"
    (many users, one address: 127.0.0.3) made before still answer;
  - a polltimeout above --max-polltimeout is clamped to it;
  - POST /pmapi/N/derive with 256 lines of ~4 KB expressions;
  - indom match=regex with iname=((.{255}){255}){255};
  - a profile grown past --max-profile-instances;
  - derived metrics of many contexts against --max-memory.

Every step is bounded in count and time; memory is read from
/proc/<pid>/status (VmRSS, VmHWM).
"""

import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())

FLOOD = 16384
REQ = "bpftrace.daemon.requests"


def vm_kb(d, field):
    """VmRSS/VmHWM of the daemon in KiB."""
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def get(d, path, src="127.0.0.1", timeout=30.0, method="GET", body=None):
    """(status, JSON or {}) from a connection whose source is src."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout,
                                   source_address=(src, 0))
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        raw = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, {}


def new_context(d, src="127.0.0.1", polltimeout=30):
    st, j = get(d, "/pmapi/context?hostspec=localhost&polltimeout=%d"
                % polltimeout, src)
    return st, j.get("context"), j


def loopback_alias_usable():
    try:
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.close()
        return True
    except OSError:
        return False


def pipelined_flood(d, n):
    """n pipelined context requests on one connection: (statuses seen,
    first context id, seconds)."""
    req = (b"GET /pmapi/context?polltimeout=86400 HTTP/1.1\r\n"
           b"Host: 127.0.0.1\r\n\r\n") * n
    s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
    t0 = time.monotonic()
    sender = threading.Thread(target=s.sendall, args=(req,), daemon=True)
    sender.start()
    data = bytearray()
    statuses = {}
    deadline = t0 + 120
    seen = 0
    while seen < n and time.monotonic() < deadline:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
        seen = data.count(b"HTTP/1.1 ")
    elapsed = time.monotonic() - t0
    s.close()
    sender.join(5)
    for m in re.finditer(rb"HTTP/1\.1 (\d{3})", bytes(data)):
        statuses[int(m.group(1))] = statuses.get(int(m.group(1)), 0) + 1
    m = re.search(rb'"context":(\d+)', bytes(data))
    return statuses, int(m.group(1)) if m else None, elapsed


def self_value(d, name, src="127.0.0.2"):
    st, j = get(d, "/pmapi/fetch?names=" + name, src)
    try:
        return j["values"][0]["instances"][0]["value"]
    except (KeyError, IndexError):
        return None


def start(args=()):
    try:
        return btd.Daemon(list(args)), None
    except btd.DaemonError as e:
        return None, str(e)


# ---- 1. the context flood, a bystander and a Grafana server ----
if not loopback_alias_usable():
    tap.skip("context flood from one address", "cannot bind 127.0.0.2")
else:
    d, err = start()
    with d:
        # a Grafana server: many users' contexts from one address
        grafana = [new_context(d, "127.0.0.3")[1] for _ in range(100)]
        statuses, first, secs = pipelined_flood(d, FLOOD)
        tap.diag("flood: %s in %.2f s" % (statuses, secs))
        tap.check(sum(statuses.values()) == FLOOD,
                  "all %d pipelined context requests answered" % FLOOD,
                  lambda: "answers: %r" % statuses)
        st, ctx, j = new_context(d, "127.0.0.2")
        tap.check(st == 200 and ctx,
                  "a bystander from another address still gets a context",
                  lambda: "%s %r" % (st, j))
        st, j = get(d, "/pmapi/%s/fetch?names=%s" % (ctx, REQ), "127.0.0.2")
        tap.check(st == 200 and j.get("values"),
                  "and fetches with it", lambda: "%s %r" % (st, j))
        st, j = get(d, "/pmapi/fetch?names=%s" % REQ, "127.0.0.2")
        tap.check(st == 200, "a fetch without a context works too",
                  lambda: "%s %r" % (st, j))
        bad = []
        for c in grafana:
            st, j = get(d, "/pmapi/%s/fetch?names=%s" % (c, REQ),
                        "127.0.0.3")
            if st != 200:
                bad.append((c, st, j.get("message")))
        tap.check(not bad, "the 100 contexts of the Grafana server's "
                  "address made before the flood all still answer",
                  lambda: "%d failed, e.g. %r" % (len(bad), bad[:3]))
        st, j = get(d, "/pmapi/%s/fetch?names=%s" % (first, REQ))
        tap.check(st == 400 and "unknown context identifier" in
                  j.get("message", ""),
                  "the flood's oldest context was evicted: it answers "
                  "as an expired one (clients make a new one)",
                  lambda: "%s %r" % (st, j))
        ev = self_value(d, "bpftrace.daemon.contexts_evicted")
        tap.check(isinstance(ev, int) and ev >= FLOOD // 8,
                  "bpftrace.daemon.contexts_evicted counts the evictions",
                  lambda: "value %r" % ev)
        n = self_value(d, "bpftrace.daemon.contexts")
        tap.check(isinstance(n, int) and n <= 12288 + 100 + 10,
                  "one address holds at most --max-contexts-per-ip "
                  "(12288) contexts", lambda: "contexts %r" % n)

# ---- 2. polltimeout is clamped to --max-polltimeout ----
d, err = start(["--max-polltimeout", "1"])
if d is None:
    tap.ok(False, "--max-polltimeout 1 is accepted", err[-300:])
else:
    with d:
        st, ctx, j = new_context(d, polltimeout=86400)
        tap.check(st == 200 and ctx, "polltimeout=86400 is accepted "
                  "(clamped, not refused)", lambda: "%s %r" % (st, j))
        st, j = get(d, "/pmapi/context?local=1&polltimeout=300")
        wctx = j.get("context")
        time.sleep(2.5)
        st, j = get(d, "/pmapi/%s/fetch?names=%s" % (ctx, REQ))
        tap.check(st == 400 and "unknown context identifier" in
                  j.get("message", ""),
                  "and expires after --max-polltimeout (1 s), not a day",
                  lambda: "%s %r" % (st, j))
        st, j = get(d, "/pmapi/%s/fetch?names=%s" % (wctx, REQ))
        tap.check(wctx and st == 400 and "unknown context identifier" in
                  j.get("message", ""), "a pmwebd-form context "
                  "(context?local=1&polltimeout=300) is clamped too",
                  lambda: "%s %s %r" % (wctx, st, j))

# ---- 3. the derive flood: 256 lines of ~4 KB expressions ----
expr = "+".join(["1"] * 1995)           # 3989 bytes, 3989 nodes
body = "".join("d%03d = %s\n" % (i, expr) for i in range(256))
d, err = start()
with d:
    rss0 = vm_kb(d, "VmRSS")
    answers = []
    for k in range(3):
        st, ctx, j = new_context(d)
        t0 = time.monotonic()
        st, j = get(d, "/pmapi/%s/derive" % ctx, method="POST",
                    body=body.encode())
        answers.append((st, j.get("message", "")[-300:],
                        time.monotonic() - t0))
    grown = vm_kb(d, "VmRSS") - rss0
    tap.diag("derive answers: %r; RSS +%d KiB" % (
        [(a[0], round(a[2], 2)) for a in answers], grown))
    st, msg, _ = answers[0]
    tap.check(st == 400 and "--max-derived-bytes" in msg,
              "a 256 x 4 KB derive POST is refused with a clear error "
              "naming --max-derived-bytes", lambda: "%s %r" % (st, msg))
    if os.environ.get("BT_SANITIZERS") == "yes":
        tap.skip("three such POSTs grow the daemon by less than 16 MiB",
                 "RSS is not the daemon's under ASan (freed memory is "
                 "quarantined); the plain build checks it")
    else:
        tap.check(grown < 16 * 1024,
                  "three such POSTs grow the daemon by less than 16 MiB "
                  "(was +81 MB each)", lambda: "grew %d KiB" % grown)

# ---- 4. the regex bomb ----
d, err = start()
with d:
    rss0 = vm_kb(d, "VmRSS")
    bomb = urllib.parse.quote("((.{255}){255}){255}")
    t0 = time.monotonic()
    try:
        st, j = get(d, "/pmapi/indom?name=%s&match=regex&iname=%s"
                    % (REQ, bomb), timeout=60)
    except (OSError, http.client.HTTPException) as e:
        st, j = None, {"message": repr(e)}
    secs = time.monotonic() - t0
    hwm = vm_kb(d, "VmHWM") - rss0
    tap.diag("regex bomb: %s in %.2f s, peak +%d KiB" % (st, secs, hwm))
    tap.check(st == 400 and "invalid regular expression" in
              j.get("message", ""),
              "iname=((.{255}){255}){255} is answered 400 invalid regular "
              "expression", lambda: "%s %r" % (st, j))
    tap.check(secs < 2.0, "fast (under 2 s; glibc regcomp took 10 s)",
              lambda: "%.2f s" % secs)
    tap.check(hwm < 64 * 1024, "with bounded memory (peak under +64 MiB; "
              "glibc regcomp took 2.7 GB)", lambda: "+%d KiB" % hwm)
    st, j = get(d, "/pmapi/indom?name=%s&match=regex&iname=%s"
                % (REQ, urllib.parse.quote("^f.tch$")))
    names = [i["name"] for i in j.get("instances", [])]
    tap.check(st == 200 and names == ["fetch"],
              "an ordinary regex still matches", lambda: "%s %r" % (st, j))
    st, j = get(d, "/pmapi/indom?name=%s&match=regex&iname=%s"
                % (REQ, urllib.parse.quote("(unclosed")))
    tap.check(st == 400 and "invalid regular expression" in
              j.get("message", "") and "(unclosed" in j.get("message", ""),
              "a malformed regex is answered 400 with the reason",
              lambda: "%s %r" % (st, j))

# ---- 4b. catastrophic backtracking against --max-regex-steps ----
d, err = start(["--max-regex-steps", "100"])
if d is None:
    tap.ok(False, "--max-regex-steps 100 is accepted", err[-300:])
else:
    with d:
        t0 = time.monotonic()
        st, j = get(d, "/pmapi/indom?name=%s&match=regex&iname=%s"
                    % (REQ, urllib.parse.quote("^(.+)+[0-9]")))
        tap.check(st == 400 and "--max-regex-steps" in j.get("message", "")
                  and time.monotonic() - t0 < 2.0,
                  "a backtracking regex past --max-regex-steps is answered "
                  "400 naming the flag", lambda: "%s %r" % (st, j))
        st, j = get(d, "/pmapi/profile?name=%s&expr=add&match=regex&"
                    "iname=%s" % (REQ, urllib.parse.quote("^(.+)+[0-9]")))
        tap.check(st == 400 and "--max-regex-steps" in j.get("message", ""),
                  "in a profile change too", lambda: "%s %r" % (st, j))

# ---- 5. profile growth ----
d, err = start()
with d:
    st, ctx, j = new_context(d)
    answers = []
    for k in range(12):
        ids = ",".join(str(100000 + k * 1000 + i) for i in range(1000))
        st, j = get(d, "/pmapi/%s/profile?name=%s&expr=add&instance=%s"
                    % (ctx, REQ, ids))
        answers.append((st, j.get("message", "")))
    sts = [a[0] for a in answers]
    tap.diag("profile answers: %r" % sts)
    tap.check(sts[:10] == [200] * 10,
              "a profile takes 10,000 instance ids",
              lambda: "%r" % answers[:10])
    tap.check(sts[10] == 403 and "--max-profile-instances" in answers[10][1],
              "the 10,001st is refused (403) naming "
              "--max-profile-instances", lambda: "%r" % (answers[10],))
    st, j = get(d, "/pmapi/%s/fetch?names=%s" % (ctx, REQ))
    tap.check(st == 200, "the context still fetches",
              lambda: "%s %r" % (st, j))

# ---- 6. derived metrics of many contexts against --max-memory ----
d, err = start(["--max-memory", "4194304"])
with d:
    small = "".join("m%03d = %s\n" % (i, "+".join(["2"] * 500))
                    for i in range(200))       # ~200 KB a context
    ctxs = []
    for k in range(30):
        st, ctx, j = new_context(d)
        if st != 200:
            break
        st, j = get(d, "/pmapi/%s/derive" % ctx, method="POST",
                    body=small.encode())
        ctxs.append((ctx, st))
    alive = 0
    for ctx, _ in ctxs:
        st, j = get(d, "/pmapi/%s/metric?names=m000" % ctx)
        alive += st == 200
    tap.diag("derive answers %r, %d of %d contexts alive" % (
        sorted(set(s for _, s in ctxs)), alive, len(ctxs)))
    tap.check(len(ctxs) == 30 and all(s == 200 for _, s in ctxs[-3:]),
              "new contexts still register derived metrics at the "
              "--max-memory ceiling", lambda: "%r" % ctxs)
    tap.check(alive * 200 * 1000 < 4194304,
              "what they hold stays under --max-memory (4 MiB): the least "
              "recently used idle contexts made room",
              lambda: "%d contexts alive" % alive)

tap.done()
