#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_access.py - who may run code as root through bpftraced (TAP).

Script control (register/start/stop/deregister) runs bpftrace as root, so
--control off|loopback|auth, --auth-file, --auth-reads, the owner check,
--max-scripts-per-user and the audit trail are proved here end to end,
table-driven, against the real binary:

  matrix   principal (anonymous, wrong password, unknown user, control
           user, read-only user, admin) x action (register, stop, start,
           deregister, fetch) x mode (off, loopback, auth, auth+TLS,
           auth+--auth-reads) x client address (127.0.0.1, 192.0.2.2)
  owners   with --control=auth a control user cannot act on another's
           script; the owner and an admin can
  quota    --max-scripts-per-user 2
  audit    one "audit:" line on stderr per control action

A refused store must leave no trace (no bpftrace run, no metric, script
count unchanged); an accepted one must really have acted (status metric
changes, tests/lib/fake-bpftrace ran it).  The non-loopback client is this
host's own non-loopback address (the daemon also listens there); those
rows are skipped, saying so, when the host has none.
"""

import base64
import http.client as httpclient
import json
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

class Tap(btd.Tap):
    """btd.Tap, with the diagnostics printed only for a failure."""

    def ok(self, cond, desc, diag=None):
        return super().ok(cond, desc, None if cond else diag)


tap = Tap()
FAKE = btd.FAKE_BPFTRACE
NOPERM = "No permission to perform requested operation"
BADCRED = "authentication required: unknown user or wrong password"
ACTIONS = ("register", "stop", "start", "deregister", "fetch")

# principal -> (user, password) or None; the users file holds the roles
PRINCIPALS = [
    ("anonymous", None),
    ("wrong password", ("alice", "not-her-password")),
    ("unknown user", ("mallory", "pw-mallory")),
    ("control user", ("alice", "pw-alice")),
    ("read-only user", ("rita", "pw-rita")),
    ("admin", ("root", "pw-root")),
]
USERS = [("alice", "control"), ("bob", "control"), ("rita", "read"),
         ("root", "admin")]



shared = btd.shared_dir


def local_addr(family, addr):
    """addr when this host can bind it, else None."""
    return addr if btd.can_bind(addr, family) else None


def basic(cred):
    if cred is None:
        return {}
    tok = base64.b64encode(("%s:%s" % cred).encode()).decode()
    return {"Authorization": "Basic " + tok}


# --------------------------------------------------------------------------
# clients and daemons
# --------------------------------------------------------------------------

class Endpoint:
    """One listener of a daemon, as a client on some address sees it."""

    def __init__(self, host, port, tls, label):
        self.host, self.port, self.tls, self.label = host, port, tls, label
        self.loopback = host in ("127.0.0.1", "::1")

    def request(self, method, target, headers=None, body=None):
        """(status, lowercased headers, body bytes, parsed JSON or None)"""
        if self.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = httpclient.HTTPSConnection(self.host, self.port,
                                              timeout=10, context=ctx)
        else:
            conn = httpclient.HTTPConnection(self.host, self.port,
                                             timeout=10)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        try:
            j = json.loads(data.decode("utf-8"))
        except ValueError:
            j = None
        return r.status, hdrs, data, j

    def store(self, action, value, cred=None, headers=None):
        h = dict(basic(cred))
        h.update(headers or {})
        return self.request("GET", "/pmapi/store?" + urllib.parse.urlencode(
            {"name": "bpftrace.control." + action, "value": value}), h)

    def fetch(self, names, cred=None):
        return self.request("GET", "/pmapi/fetch?names=" + names,
                            basic(cred))


class Daemon(btd.Daemon):
    """btd.Daemon plus listeners on other addresses, maybe TLS."""

    def __init__(self, args, shared_dir, tls=None, extra_hosts=(),
                 observer=None):
        self.tls = tls                       # (cert, key) or None
        self.extra = [(h, btd.free_port(h)) for h in extra_hosts]
        self.observer_cred = observer
        self.dump = tempfile.mkdtemp(prefix="btd-dump-")
        a = list(args) + ["--bpftrace", FAKE]
        # the matrix sends far more than --auth-fail-rate's 30 bad
        # passwords a minute from 127.0.0.1 on purpose: no throttling
        # here (test_auth_flood.py tests it); and plain HTTP with
        # passwords on the non-loopback 192.0.2.2 is what it tests
        if not any(x.startswith("--auth-fail-rate") for x in a):
            a += ["--auth-fail-rate", "0"]
        if self.extra and not tls:
            a += ["--allow-plain-auth"]
        for h, p in self.extra:
            a += ["--listen", ("[%s]:%d" if ":" in h else "%s:%d") % (h, p)]
        if tls:
            a += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        super().__init__(a, env={"BT_SHARED": shared_dir,
                                 "FAKE_BPFTRACE_DUMP": self.dump})

    def endpoint(self, host="127.0.0.1"):
        port = self.port if host == "127.0.0.1" else dict(self.extra)[host]
        return Endpoint(host, port, self.tls is not None,
                        "https" if self.tls else "http")

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise btd.DaemonError("bpftraced exited at start:\n" +
                                      self.stderr_text())
            try:
                self.endpoint().request("GET", "/pmapi/context")
                return
            except (OSError, httpclient.HTTPException):
                time.sleep(0.05)
        raise btd.DaemonError("bpftraced did not answer:\n" +
                              self.stderr_text())

    def stop(self, *a, **kw):
        rc = super().stop(*a, **kw)
        shutil.rmtree(self.dump, ignore_errors=True)
        return rc

    # -- what the daemon has, seen by an observer with read rights ---------
    def values(self, names):
        st, _, body, j = self.endpoint().fetch(names, self.observer_cred)
        if st != 200 or j is None:
            raise btd.DaemonError("fetch %s: %s %r" % (names, st, body))
        return {v["name"]: v["instances"][0]["value"] if v["instances"]
                else None for v in j["values"]}

    def status(self, script):
        return self.values("bpftrace.scripts.%s.status" % script).get(
            "bpftrace.scripts.%s.status" % script)

    def total(self):
        return self.values("bpftrace.info.scripts_total")[
            "bpftrace.info.scripts_total"]

    def wait(self, pred, timeout=5.0):
        return btd.wait_for(pred, timeout, 0.02)

    def wait_status(self, script, want, timeout=5.0):
        self.wait(lambda: self.status(script) == want, timeout)
        return self.status(script)

    def ran(self, script):
        """mtime of the program fake-bpftrace last received, or None."""
        try:
            return os.stat(os.path.join(self.dump, script + ".bt")
                           ).st_mtime_ns
        except OSError:
            return None

    def audit_lines(self):
        return [ln for ln in self.stderr_text().splitlines()
                if "audit: " in ln]


def code_for(name, hold=True):
    return ("// name: %s\n// fixture: scalar_count\n%s"
            "tracepoint:raw_syscalls:sys_enter { @calls = count(); }\n"
            % (name, "// fake: hold\n" if hold else ""))


def msg_of(j):
    return (j or {}).get("message", "")


# --------------------------------------------------------------------------
# the matrix
# --------------------------------------------------------------------------

def expected(mode, auth_reads, principal, cred, ep, action):
    """(status, message fragment, challenge expected) for one row."""
    if principal in ("wrong password", "unknown user"):
        return 401, BADCRED, True        # credentials sent are checked
    if action == "fetch":
        if auth_reads and cred is None:
            return 401, "authentication required", True
        return 200, None, False
    if mode == "off":
        return 400, NOPERM + " (script control is off; see --control)", False
    if mode == "loopback":
        if ep.loopback:
            return 200, None, False
        return 400, NOPERM + " (control is limited to loopback clients)", \
            False
    # auth
    if cred is None:
        if auth_reads:
            return 401, "authentication required", True
        return 401, NOPERM + " (authentication required)", True
    if principal == "read-only user":
        return 403, NOPERM + " (user rita has neither the control nor the " \
            "admin role)", False
    return 200, None, False


def row_name(mode_label, ep, principal, action):
    return "%s, %s client %s, %s: %s" % (mode_label, ep.label, ep.host,
                                         principal, action)


def check_answer(got, want):
    st, hdrs, body, j = got
    wst, wmsg, challenge = want
    ok = st == wst
    if wmsg is not None:
        ok = ok and wmsg in msg_of(j)
    ok = ok and ("www-authenticate" in hdrs) == (st == 401)
    if challenge:
        ok = ok and hdrs.get("www-authenticate") == 'Basic realm="bpftraced"'
    return ok, "want %s %r%s; got %s %s" % (
        wst, wmsg, " + challenge" if challenge else "", st,
        body[:300])


def run_matrix(d, mode, tag_mode, mode_label, auth_reads, endpoints,
               targets):
    """Every principal x action on every endpoint of daemon d; returns
    how many stores reached the control code (each must be audited)."""
    sent = 0
    for ep in endpoints:
        tag = re.sub(r"\W", "_", ep.host)
        for principal, cred in PRINCIPALS:
            name = "m_%s_%s_%s" % (tag_mode, tag,
                                   re.sub(r"\W", "_", principal))
            own = None          # the script this principal registered
            for action in ACTIONS:
                desc = row_name(mode_label, ep, principal, action)
                want = expected(mode, auth_reads, principal, cred, ep,
                                action)
                if action == "fetch":
                    got = ep.fetch("bpftrace.info.scripts_total", cred)
                    ok, why = check_answer(got, want)
                    if ok and want[0] == 200:
                        v = got[3]["values"][0]["instances"][0]["value"]
                        ok = isinstance(v, int)
                        why += "; value %r" % v
                    tap.ok(ok, desc + (" -> 200 with the value" if
                           want[0] == 200 else " -> %d" % want[0]), why)
                    continue
                if want[0] == 200:
                    target = own or name
                else:
                    target = {"register": name, "stop": targets["run"],
                              "deregister": targets["run"],
                              "start": targets["once"]}[action]
                before = {"total": d.total(), "run": d.ran(target),
                          "status": d.status(target)}
                value = code_for(name) if action == "register" else target
                got = ep.store(action, value, cred)
                # refused in http.c without credentials (--auth-reads)
                # never reaches the control code; bad credentials are
                # refused there too, but audited as a failed login
                if not (auth_reads and cred is None):
                    sent += 1
                ok, why = check_answer(got, want)
                if want[0] == 200:
                    ok2, why2 = acted(d, action, name, before)
                    if action == "register":
                        own = name
                    tap.ok(ok and ok2, desc + " -> 200, " + why2, why)
                else:
                    ok2, why2 = no_trace(d, action, target, before)
                    tap.ok(ok and ok2, desc + " -> %d %s; %s" % (
                        want[0], (want[1] or "")[len(NOPERM) + 1:] if
                        (want[1] or "").startswith(NOPERM) else want[1],
                        why2), why)
    return sent


def acted(d, action, name, before):
    """Did the accepted store really act?"""
    if action == "register":
        st = d.wait_status(name, "started")
        return st == "started" and d.ran(name) is not None, \
            "bpftrace ran it, status %s" % st
    if action == "stop":
        st = d.wait_status(name, "stopped")
        return st == "stopped", "status %s" % st
    if action == "start":
        st = d.wait_status(name, "started")
        return st == "started" and d.ran(name) != before["run"], \
            "bpftrace ran it again, status %s" % st
    gone = d.wait(lambda: d.status(name) is None and
                  d.total() == before["total"] - 1)
    return bool(gone), "its metrics are gone, scripts_total %d -> %d" % (
        before["total"], d.total())


def no_trace(d, action, target, before):
    """A refused store left nothing behind."""
    time.sleep(0.03)        # let a wrongly accepted action show itself
    now = {"total": d.total(), "run": d.ran(target),
           "status": d.status(target)}
    if action == "register":
        ok = now["status"] is None and now["run"] is None and \
            now["total"] == before["total"]
        return ok, "nothing ran (no metric, scripts_total %d)" % now["total"]
    ok = now == before
    return ok, "%s untouched (%s)" % (target, now["status"])


def targets_files(tmp):
    """--script files: one running, one that ran once and stopped."""
    paths = []
    for name, hold in (("tgt_run", True), ("tgt_once", False)):
        p = os.path.join(tmp, name + ".bt")
        with open(p, "w") as f:
            f.write(code_for(name, hold))
        paths += ["--script", p]
    return paths


def ready_targets(d):
    ok = d.wait_status("tgt_run", "started") == "started" and \
        d.wait_status("tgt_once", "stopped") == "stopped"
    return ok, {"run": "tgt_run", "once": "tgt_once"}


# --------------------------------------------------------------------------
# owners, quota, malformed credentials, audit
# --------------------------------------------------------------------------

ALICE, BOB, ROOT = ("alice", "pw-alice"), ("bob", "pw-bob"), \
    ("root", "pw-root")


def test_owners(d, ep):
    st = ep.store("register", code_for("own_a"), ALICE)
    ok = st[0] == 200 and d.wait_status("own_a", "started") == "started"
    tap.ok(ok, "owners: alice registers own_a", st[2][:200])
    belongs = NOPERM + " (script own_a belongs to alice)"
    for action in ("stop", "start", "deregister"):
        before = (d.status("own_a"), d.ran("own_a"), d.total())
        got = ep.store(action, "own_a", BOB)
        time.sleep(0.05)
        after = (d.status("own_a"), d.ran("own_a"), d.total())
        tap.ok(got[0] == 403 and belongs in msg_of(got[3]) and
               before == after, "owners: bob (control) cannot %s alice's "
               "script: 403 naming the owner, script untouched" % action,
               "%s %r %r->%r" % (got[0], got[2][:200], before, after))
    got = ep.store("stop", "own_a", ALICE)
    tap.ok(got[0] == 200 and d.wait_status("own_a", "stopped") == "stopped",
           "owners: alice stops her own script", got[2][:200])
    got = ep.store("start", "own_a", ALICE)
    tap.ok(got[0] == 200 and d.wait_status("own_a", "started") == "started",
           "owners: alice starts it again", got[2][:200])
    got = ep.store("stop", "own_a", ROOT)
    tap.ok(got[0] == 200 and d.wait_status("own_a", "stopped") == "stopped",
           "owners: admin stops alice's script", got[2][:200])
    got = ep.store("start", "own_a", ROOT)
    tap.ok(got[0] == 200 and d.wait_status("own_a", "started") == "started",
           "owners: admin starts alice's script", got[2][:200])
    total = d.total()
    got = ep.store("deregister", "own_a", ROOT)
    tap.ok(got[0] == 200 and d.wait(lambda: d.status("own_a") is None and
                                    d.total() == total - 1),
           "owners: admin deregisters alice's script", got[2][:200])
    got = ep.store("stop", "nosuch", ALICE)
    tap.ok(got[0] == 400 and "Bad input to pmstore: script not found" in
           msg_of(got[3]), "owners: stopping an unknown script is 400 "
           "'script not found'", got[2][:200])
    # a script from loopback/--script (no owner): only an admin may act
    got = ep.store("stop", "tgt_run", ALICE)
    tap.ok(got[0] == 403 and NOPERM + " (script tgt_run belongs to nobody)"
           in msg_of(got[3]) and d.status("tgt_run") == "started",
           "owners: a script without owner (--script) is refused to a "
           "control user, saying it belongs to nobody", got[2][:200])
    return 1 + 3 + 5 + 1 + 1


def test_quota(d, ep):
    """--max-scripts-per-user 2 on this daemon."""
    sent = 0
    for n in ("q_a1", "q_a2"):
        got = ep.store("register", code_for(n), ALICE)
        sent += 1
        tap.ok(got[0] == 200 and d.wait_status(n, "started") == "started",
               "quota: alice registers %s" % n, got[2][:200])
    total = d.total()
    got = ep.store("register", code_for("q_a3"), ALICE)
    sent += 1
    time.sleep(0.05)
    tap.ok(got[0] == 400 and "user alice has 2 scripts, the limit is 2 (see "
           "--max-scripts-per-user)" in msg_of(got[3]) and
           d.status("q_a3") is None and d.ran("q_a3") is None and
           d.total() == total,
           "quota: alice's third register is refused with the reason and "
           "nothing runs", got[2][:300])
    got = ep.store("register", code_for("q_b1"), BOB)
    sent += 1
    tap.ok(got[0] == 200 and d.wait_status("q_b1", "started") == "started",
           "quota: bob can still register", got[2][:200])
    got = ep.store("deregister", "q_a1", ALICE)
    sent += 1
    d.wait(lambda: d.status("q_a1") is None)
    got = ep.store("register", code_for("q_a3"), ALICE)
    sent += 1
    tap.ok(got[0] == 200 and d.wait_status("q_a3", "started") == "started",
           "quota: after deregistering one, alice may register again",
           got[2][:200])
    got = ep.store("deregister", "q_a2,q_a3,q_b1", ROOT)
    sent += 3
    d.wait(lambda: d.status("q_b1") is None)
    return sent


def test_malformed(d, ep):
    for hdr in ("Basic !!!not-base64!!!", "Bearer abc.def",
                "Basic " + base64.b64encode(b"no-colon").decode()):
        total = d.total()
        got = ep.store("register", code_for("mal"), None,
                       {"Authorization": hdr})
        time.sleep(0.03)
        tap.ok(got[0] == 400 and msg_of(got[3]).startswith(
               "malformed Authorization header: ") and
               d.status("mal") is None and d.ran("mal") is None and
               d.total() == total,
               "auth: malformed Authorization %r -> 400, nothing runs"
               % hdr.split()[0], got[2][:200])


def test_same_answer_for_bad_credentials(ep):
    """An unknown user and a wrong password must read alike."""
    a = ep.store("stop", "tgt_run", ("alice", "wrong"))
    b = ep.store("stop", "tgt_run", ("nosuchuser", "wrong"))
    tap.ok(a[0] == b[0] == 401 and a[2] == b[2] and
           msg_of(a[3]) == BADCRED, "auth: wrong password and unknown user "
           "get the same 401 answer, byte for byte", "%r / %r" % (a[2],
                                                                 b[2]))
    return 2                    # both audited as failed logins


def audit_rows(d, where="1"):
    """Rows of the daemon's audit table (read beside the running daemon)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        d.state_dir, "bpftraced.db"), uri=True, timeout=10)
    try:
        return db.execute("SELECT user, peer, action, target, ok, message "
                          "FROM audit WHERE " + where + " ORDER BY seq"
                          ).fetchall()
    finally:
        db.close()


def test_failed_login_rows(d):
    """Failed logins on control stores are rows of the audit table."""
    rows = audit_rows(d, "action = 'login'")
    tap.ok(("alice", "127.0.0.1", "login", "register", 0,
            "unknown user or wrong password") in rows and
           ("mallory", "127.0.0.1", "login", "stop", 0,
            "unknown user or wrong password") in rows and
           ("nosuchuser", "127.0.0.1", "login", "stop", 0,
            "unknown user or wrong password") in rows,
           "audit table: failed logins on control stores are rows (action "
           "login, the user name tried, address, the control item)",
           "\n".join(map(repr, rows)))


def test_failed_login_bound(s, users):
    """A burst of guesses on a fresh daemon: every one is logged, at most
    --audit-rate (60) a minute are written to the table."""
    with Daemon(["--control", "auth", "--auth-file", users], s) as d:
        ep = d.endpoint()
        n = 70
        t0 = time.monotonic()
        st = [ep.store("start", "x", ("u%d" % i, "guess"))[0]
              for i in range(n)]
        dt = time.monotonic() - t0
        rows = audit_rows(d, "action = 'login'")
        lines = [ln for ln in d.audit_lines()
                 if ": login start: refused" in ln]
        if dt >= 55:
            tap.skip("audit table: failed logins bounded to 60 rows a "
                     "minute", "the burst took %.0f s, not within one "
                     "minute" % dt)
            return
        tap.ok(st == [401] * n and len(lines) == n and len(rows) == 60 and
               [r[0] for r in rows] == ["u%d" % i for i in range(60)] and
               "audit: over 60 failed logins this minute" in
               d.stderr_text(),
               "audit table: %d failed logins in %.1f s are all logged, "
               "only the first 60 are written as rows" % (n, dt),
               "statuses %r, log lines %d, rows %d" % (set(st), len(lines),
                                                      len(rows)))


def test_options_does_not_store(d, ep):
    total = d.total()
    got = ep.request("OPTIONS", "/pmapi/store?" + urllib.parse.urlencode(
        {"name": "bpftrace.control.register", "value": code_for("opt")}))
    time.sleep(0.05)
    tap.ok(got[0] in (200, 405) and d.status("opt") is None and
           d.ran("opt") is None and d.total() == total,
           "auth: an unauthenticated OPTIONS on /pmapi/store registers "
           "nothing", "%s" % got[0])


def test_audit_forgery(d, ep):
    """A refused stop's target is client text: it cannot forge a line."""
    got = ep.store("stop", "x: ok\nbpftraced: info: audit: root from "
                   "127.0.0.1: stop tgt_run: ok")
    lines = d.audit_lines()
    want = ("audit: anonymous from 127.0.0.1: stop x??ok?bpftraced??info??"
            "audit??root?from?127?0?0?1??stop?tgt_run?: refused: ")
    tap.ok(got[0] == 401 and lines and want in lines[-1] and
           not has_line(lines, r"audit: root from 127\.0\.0\.1: stop "
                        r"tgt_run"),
        "audit: a refused stop's client-supplied target is shown with "
        "'?' for anything but [A-Za-z0-9_,], at most 64 bytes (no forged "
        "fields or lines)",
        "\n".join(lines[-2:]))
    return 1


def test_audit(d, sent, where):
    """sent: the control stores made; the two --script targets add two."""
    sent += 2
    lines = d.audit_lines()
    tap.ok(len(lines) == sent, "audit (%s): one audit line per control "
           "action (%d)" % (where, sent),
           "got %d:\n%s" % (len(lines), "\n".join(lines)))
    return lines


def has_line(lines, pat):
    return any(re.search(pat, ln) for ln in lines)


# --------------------------------------------------------------------------

def main():
    s = shared()
    if s is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    if not os.access(btd.passwd_binary(), os.X_OK):
        btd.Tap.skip_all("no bpftraced-passwd at %s" % btd.passwd_binary())
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="btd-access-")
    try:
        run(s, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tap.diag("runtime %.1fs" % (time.monotonic() - t0))
    tap.done()


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    if shutil.which("openssl") is None:
        return None, "no openssl to make a self-signed certificate"
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-subj", "/CN=localhost", "-days", "1",
                        "-keyout", key, "-out", cert],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        return None, "openssl req failed: %s" % p.stderr.decode()[:200]
    return (cert, key), None


def run(s, tmp):
    users = btd.users_file(tmp, USERS)
    tgt = targets_files(tmp)
    v4 = local_addr(socket.AF_INET, "192.0.2.2")
    extra = [v4] if v4 else []
    no_v4 = "this host has no non-loopback address 192.0.2.2 to test from"

    def endpoints(d):
        return [d.endpoint()] + [d.endpoint(h) for h in extra]

    def skip_nonloop(mode_label):
        if v4:
            return
        for principal, _ in PRINCIPALS:
            for action in ACTIONS:
                tap.skip("%s, client 192.0.2.2, %s: %s" % (
                    mode_label, principal, action), no_v4)

    # ---- off ----
    with Daemon(["--control", "off", "--auth-file", users] + tgt, s,
                extra_hosts=extra) as d:
        ok, targets = ready_targets(d)
        tap.ok(ok, "off: the --script targets run (tgt_run started, "
               "tgt_once ran and stopped)")
        sent = run_matrix(d, "off", "off", "--control off", False, endpoints(d),
                          targets)
        skip_nonloop("--control off")
        lines = test_audit(d, sent, "--control off")
        tap.ok(has_line(lines, r"audit: root from 127\.0\.0\.1: register -: "
                        r"refused: " + NOPERM + r" \(script control is off"),
               "audit: an admin's refused register (control off) is logged "
               "as refused, with user and address")
    with Daemon(["--control", "off"], s) as d:
        ep = d.endpoint()
        got = ep.store("register", code_for("noauth"), ("x", "y"))
        tap.ok(got[0] == 400 and NOPERM + " (script control is off" in
               msg_of(got[3]) and d.status("noauth") is None,
               "--control off without --auth-file: credentials are ignored, "
               "register still 400 " + NOPERM, got[2][:200])

    # ---- loopback (also IPv6 when there is ::1 / fd00::2) ----
    v6 = [h for h in (local_addr(socket.AF_INET6, "::1"),
                      local_addr(socket.AF_INET6, "fd00::2")) if h]
    with Daemon(["--control", "loopback", "--auth-file", users] + tgt, s,
                extra_hosts=extra + v6) as d:
        ok, targets = ready_targets(d)
        tap.ok(ok, "loopback: the --script targets run")
        sent = run_matrix(d, "loopback", "loop", "--control loopback", False,
                          endpoints(d), targets)
        skip_nonloop("--control loopback")
        for h, want in (("::1", 200), ("fd00::2", 400)):
            desc = "--control loopback, IPv6 client %s: anonymous register" \
                % h
            if h not in v6:
                tap.skip(desc, "no %s on this host" % h)
                continue
            name = "v6_" + ("lo" if want == 200 else "ext")
            got = d.endpoint(h).store("register", code_for(name))
            sent += 1
            st = d.wait_status(name, "started", 2 if want == 200 else 0.1)
            tap.ok(got[0] == want and (st == "started") == (want == 200) and
                   (want == 200 or "limited to loopback" in msg_of(got[3])),
                   desc + " -> %d" % want, got[2][:200])
        lines = test_audit(d, sent, "--control loopback")
        if v4:
            tap.ok(has_line(lines, r"audit: anonymous from 192\.0\.2\.2: "
                            r"register -: refused: " + NOPERM +
                            r" \(control is limited to loopback clients\)"),
                   "audit: a refused non-loopback register names the "
                   "address")
        else:
            tap.skip("audit: a refused non-loopback register", no_v4)
        tap.ok(has_line(lines, r"audit: anonymous from 127\.0\.0\.1: "
                        r"register m_loop_127_0_0_1_anonymous: ok"),
               "audit: an anonymous loopback register is logged ok with "
               "its target")

    # ---- auth, plain HTTP; also owners, quota, malformed headers ----
    with Daemon(["--control", "auth", "--auth-file", users,
                 "--max-scripts-per-user", "2"] + tgt, s,
                extra_hosts=extra) as d:
        ok, targets = ready_targets(d)
        tap.ok(ok, "auth: the --script targets run")
        sent = run_matrix(d, "auth", "auth", "--control auth", False, endpoints(d),
                          targets)
        skip_nonloop("--control auth")
        ep = d.endpoint()
        test_malformed(d, ep)
        test_options_does_not_store(d, ep)
        sent += test_same_answer_for_bad_credentials(ep)
        sent += test_owners(d, ep)
        sent += test_quota(d, ep)
        sent += test_audit_forgery(d, ep)
        lines = test_audit(d, sent, "--control auth")
        for desc, pat in [
            ("a control user's register ok",
             r"audit: alice from 127\.0\.0\.1: register own_a: ok$"),
            ("a read-only user's refused register",
             r"audit: rita from 127\.0\.0\.1: register -: refused: " +
             NOPERM + r" \(user rita has neither"),
            ("an admin's deregister of another's script",
             r"audit: root from 127\.0\.0\.1: deregister own_a: ok$"),
            ("bob's refused stop of alice's script",
             r"audit: bob from 127\.0\.0\.1: stop own_a: refused: " +
             NOPERM + r" \(script own_a belongs to alice\)"),
            ("bob's refused deregister of alice's script",
             r"audit: bob from 127\.0\.0\.1: deregister own_a: refused: " +
             NOPERM + r" \(script own_a belongs to alice\)"),
            ("a refused stop names its target",
             r"audit: anonymous from 127\.0\.0\.1: stop tgt_run: refused: "
             + NOPERM + r" \(authentication required\)"),
            ("a refused start names its target",
             r"audit: rita from 127\.0\.0\.1: start tgt_once: refused: "
             + NOPERM + r" \(user rita has neither"),
            ("a stop of an unknown script is refused",
             r"audit: alice from 127\.0\.0\.1: stop nosuch: refused: "
             r"script not found"),
            ("bob's refused start of alice's script",
             r"audit: bob from 127\.0\.0\.1: start own_a: refused: " +
             NOPERM + r" \(script own_a belongs to alice\)"),
            ("the quota refusal",
             r"audit: alice from 127\.0\.0\.1: register -: refused: "
             r"user alice has 2 scripts"),
        ]:
            tap.ok(has_line(lines, pat), "audit: " + desc, pat)
        tap.ok(has_line(lines, r"audit: alice from 127\.0\.0\.1: "
                        r"login register: refused: unknown user or wrong "
                        r"password$"),
               "audit: a control store with a wrong password is audited "
               "as a failed login (the user name tried, the control item)")
        tap.ok(has_line(lines, r"audit: mallory from 127\.0\.0\.1: "
                        r"login deregister: refused: unknown user or wrong "
                        r"password$"),
               "audit: a control store by an unknown user is audited "
               "alike")
        test_failed_login_rows(d)
        st = ep.request("GET", "/pmapi/1/_store?" + urllib.parse.urlencode(
            {"name": "bpftrace.control.start", "value": "tgt_run"}),
            basic(("pwebd", "wrong")))[0]
        rows = audit_rows(d, "action = 'login' AND user = 'pwebd'")
        tap.ok(st == 401 and rows == [("pwebd", "127.0.0.1", "login",
                                       "start", 0, "unknown user or wrong "
                                       "password")],
               "audit table: a failed login on pmwebd's _store of a "
               "control item is a row too (%d)" % st, repr(rows))
    test_failed_login_bound(s, users)

    # ---- auth over TLS ----
    tls, why = make_cert(tmp)
    if tls is None:
        tap.skip("--control auth over TLS: the whole matrix", why)
    else:
        with Daemon(["--control", "auth", "--auth-file", users] + tgt, s,
                    tls=tls, extra_hosts=extra) as d:
            ok, targets = ready_targets(d)
            tap.ok(ok, "auth+TLS: the --script targets run")
            sent = run_matrix(d, "auth", "tls", "--control auth + TLS", False,
                              endpoints(d), targets)
            skip_nonloop("--control auth + TLS")
            plain = Endpoint("127.0.0.1", d.port, False, "http")
            try:
                got = plain.store("register", code_for("plain"), ALICE)[0]
            except (OSError, httpclient.HTTPException) as e:
                got = type(e).__name__
            time.sleep(0.05)
            tap.ok(got != 200 and d.status("plain") is None,
                   "auth+TLS: cleartext HTTP to the TLS port is not served "
                   "(credentials never accepted in clear)", repr(got))
            test_audit(d, sent, "--control auth + TLS")

    # ---- auth with --auth-reads ----
    with Daemon(["--control", "auth", "--auth-file", users,
                 "--auth-reads"] + tgt, s, extra_hosts=extra,
                observer=ROOT) as d:
        ok, targets = ready_targets(d)
        tap.ok(ok, "auth-reads: the --script targets run")
        sent = run_matrix(d, "auth", "reads", "--control auth --auth-reads", True,
                          endpoints(d), targets)
        skip_nonloop("--control auth --auth-reads")
        for path in ("/pmapi/context",
                     "/pmapi/fetch?names=bpftrace.info.scripts_total"):
            got = d.endpoint().request("GET", path)
            tap.ok(got[0] == 401 and got[1].get("www-authenticate") ==
                   'Basic realm="bpftraced"' and msg_of(got[3]) ==
                   "authentication required", "--auth-reads: an anonymous "
                   "%s is 401 'authentication required' (said once) with "
                   "the challenge" % path.split("?")[0], got[2][:200])
        test_audit(d, sent, "--control auth --auth-reads")


if __name__ == "__main__":
    main()
