#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""qa_replay.py - replay PCP QA's REST requests on pmproxy and bpftraced.

    tests/conformance/qa_replay.py [--reference auto|live|fixture]
                                   [--record] [--only ID ...] [-v]

Reads qa/pcp-qa-requests.json (written by qa_extract.py from Debian's
pcp-testsuite; the package is not needed here), starts bpftraced with pmcd
passthrough (the same local pmcd as pmproxy's) and sends each request to
both, in the tests' order, one connection per request.  Each answer is
rendered as curl prints it (body; with -i the status line and headers;
-I the headers), run through the QA test's own filters (its sed, grep,
pmjson and sort stages) and the two texts are compared. bpftraced runs
with --control=loopback, so the tests' stores of sample metrics reach
pmcd as pmproxy's do; with a live pmproxy both share that pmcd, so before
each of bpftraced's turns the tests' earlier stores that pmproxy took are
sent again (pmproxy's turn may have moved the state they set: every fetch
of sample.colour counts it up).

Counts: match, deviation (differs as a documented deviation: listed in
qa/deviations.json and in README's "Where bpftraced deliberately differs"
section, checked here), differ (anything else: the test fails), skipped
(with the reason: redis series, TLS, SASL, QA PMDAs, ...).

The reference is the live pmproxy on $PMPROXY_URL (default
http://127.0.0.1:44322) when one answers, else the recorded answers in
qa/pmproxy-6.0.3-qa.json; --record rewrites that file from the live
pmproxy.  The sample PMDA is needed: installed in the local pmcd when
absent (as root) and removed again after, pmcd.conf restored byte for byte.
"""

import argparse
import datetime
import difflib
import json
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, HERE)
import btd  # noqa: E402
import samplepmda  # noqa: E402
from conformance import pmproxy_live  # noqa: E402

QA_DIR = os.path.join(HERE, "qa")
REQUESTS = os.path.join(QA_DIR, "pcp-qa-requests.json")
DEVIATIONS = os.path.join(QA_DIR, "deviations.json")
FIXTURE = os.path.join(QA_DIR, "pmproxy-6.0.3-qa.json")
README = os.path.join(os.path.dirname(os.path.dirname(HERE)), "README.md")
README_SECTION = "## Where bpftraced deliberately differs from pmproxy"
# values a sample store changes, restored after the run through pmproxy
SAMPLE_STORED = ("sample.long.write_me", "sample.many.count")


# ---- the filters -----------------------------------------------------------

def bre_to_py(pat, ere=False):
    """A POSIX basic (or extended) regular expression as a Python one."""
    classes = {"[:space:]": r"\s", "[:digit:]": r"0-9",
               "[:alpha:]": r"a-zA-Z", "[:alnum:]": r"a-zA-Z0-9",
               "[:upper:]": "A-Z", "[:lower:]": "a-z"}
    out, i = "", 0
    while i < len(pat):
        c = pat[i]
        if c == "[":
            j = i + 1
            if j < len(pat) and pat[j] == "^":
                j += 1
            if j < len(pat) and pat[j] == "]":
                j += 1
            while j < len(pat) and pat[j] != "]":
                if pat.startswith("[:", j):
                    j = pat.index(":]", j) + 2
                else:
                    j += 1
            body = pat[i + 1:j]
            for k, v in classes.items():
                body = body.replace(k, v)
            body = body.replace("\\", "\\\\")
            out += "[" + body + "]"
            i = j + 1
            continue
        if c == "\\" and i + 1 < len(pat):
            n = pat[i + 1]
            if not ere and n in "(){}|+?":
                out += n
            elif n.isdigit():
                out += "\\" + n
            else:
                out += re.escape(n)
            i += 2
            continue
        if not ere and c in "(){}|+?":
            out += "\\" + c
        else:
            out += c
        i += 1
    return out


def sed_split(expr, delim, start):
    """Split expr from start at unescaped delim: (field, next index)."""
    field, i = "", start
    while i < len(expr) and expr[i] != delim:
        if expr[i] == "\\" and i + 1 < len(expr):
            if expr[i + 1] == delim:
                field += delim if delim not in ".*[]^$\\" else "\\" + delim
            else:
                field += expr[i:i + 2]
            i += 2
            continue
        field += expr[i]
        i += 1
    return field, i + 1


def sed_repl(r):
    """sed replacement text -> Python's (\\1 stays, & is the match)."""
    out, i = "", 0
    while i < len(r):
        if r[i] == "\\" and i + 1 < len(r):
            out += "\\" + r[i + 1] if r[i + 1].isdigit() else \
                r[i + 1].replace("\\", "\\\\")
            i += 2
            continue
        out += "\\g<0>" if r[i] == "&" else r[i].replace("\\", "\\\\")
        i += 1
    return out


def compile_sed(expr, ere, env):
    expr = subst_env(expr, env)
    if expr.startswith("s"):
        d = expr[1]
        pat, i = sed_split(expr, d, 2)
        rep, i = sed_split(expr, d, i)
        flags = expr[i:]
        rx = re.compile(bre_to_py(pat, ere))
        count = 0 if "g" in flags else 1
        return ("s", rx, sed_repl(rep), count)
    m = re.match(r"^/(.*)/d$", expr)
    if m:
        return ("d", re.compile(bre_to_py(m.group(1), ere)))
    raise ValueError("sed expression %r not replayable" % expr)


def subst_env(s, env):
    return re.sub(r"@(\w+)@", lambda m: env.get(m.group(1), m.group(0)), s)


def pmjson(text):
    """pmjson's layout: 4-space indent, one member per line, the literal
    token text kept (number spelling, escapes); not JSON: unchanged."""
    toks = re.findall(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+',
                      text, re.S)
    if not toks or toks[0] not in "{[":
        return text
    out = []

    def value(i, ind, prefix):
        t = toks[i]
        if t not in ("{", "["):
            return i + 1, prefix + t
        close = "}" if t == "{" else "]"
        if toks[i + 1] == close:
            return i + 2, prefix + t + "    " + close
        out.append(prefix + t)
        i += 1
        while True:
            pre = "    " * (ind + 1)
            if t == "{":
                pre += toks[i] + ": "
                if toks[i + 1] != ":":
                    raise IndexError
                i += 2
            i, line = value(i, ind + 1, pre)
            if toks[i] == ",":
                out.append(line + ",")
                i += 1
                continue
            if toks[i] != close:
                raise IndexError
            out.append(line)
            return i + 1, "    " * ind + close

    try:
        i, last = value(0, 0, "")
    except IndexError:
        return text
    if i != len(toks):
        return text
    out.append(last)
    return "\n".join(out) + "\n"


def col_b(line):
    """col -b on one line: a carriage return goes back to column 0 and
    what follows overwrites; the last character in each column stays."""
    cells = []
    for part in line.split("\r"):
        for i, ch in enumerate(part):
            if i < len(cells):
                cells[i] = ch
            else:
                cells.append(ch)
    return "".join(cells)


def apply_filters(text, chain, env):
    for op in chain:
        kind = op["op"]
        if kind == "pmjson":
            text = pmjson(text)
        elif kind == "col":
            text = "\n".join(col_b(ln) for ln in text.split("\n"))
        elif kind == "sort":
            lines = text.split("\n")
            tail = lines[-1] == ""
            lines = sorted(x for x in lines if x or not tail) \
                if tail else sorted(lines)
            text = "\n".join(lines) + ("\n" if tail else "")
        elif kind == "tr-d-nl":
            text = text.replace("\n", "")
        elif kind == "grep":
            rx = re.compile(bre_to_py(subst_env(op["pattern"], env),
                                      op["ere"]))
            keep = [ln for ln in text.split("\n")
                    if bool(rx.search(ln)) != op["invert"] and ln != ""]
            text = "".join(ln + "\n" for ln in keep)
        elif kind == "sed":
            cmds = [compile_sed(e, op["ere"], env) for e in op["exprs"]]
            out = []
            lines = text.split("\n")
            last = lines.pop() if lines and lines[-1] == "" else None
            for ln in lines + ([] if last is not None else []):
                dropped = False
                for c in cmds:
                    if c[0] == "d":
                        if c[1].search(ln):
                            dropped = True
                            break
                    else:
                        ln = c[1].sub(c[2], ln, count=c[3])
                if not dropped:
                    out.append(ln)
            text = "\n".join(out) + ("\n" if last is not None and out
                                     else "")
        else:
            raise ValueError("unknown filter op %r" % kind)
    return text


# ---- talking HTTP as curl does ---------------------------------------------

def send(base, req, target):
    """One request on a fresh connection: (status, rendered text, json)."""
    host, port = btd.split_url(base)[:2]
    method = req["method"]
    hdrs = [("Host", "localhost:%d" % port),
            ("User-Agent", "curl/7.88.1"), ("Accept", "*/*")]
    for h in req.get("headers", []):
        k, _, v = h.partition(":")
        hdrs.append((k.strip(), v.strip()))
    body = req.get("body")
    data = b""
    if body is not None:
        data = body.encode()
        hdrs.append(("Content-Length", str(len(data))))
        hdrs.append(("Content-Type", "application/x-www-form-urlencoded"))
    msg = "%s %s HTTP/1.1\r\n" % (method, target) + \
        "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
    # as curl: a keep-alive request, the answer read by its framing
    raw = exchange(host, port, msg.encode("latin-1") + data, method)
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None, "(no answer)", None
    head = raw[:end + 4].decode("latin-1")
    rest = raw[end + 4:]
    status = int(head.split(" ", 2)[1])
    if re.search(r"(?im)^transfer-encoding:\s*chunked", head):
        rest = dechunk(rest)
    text = rest.decode("utf-8", "replace")
    out = req.get("output", "body")
    if method == "HEAD" or out == "headers":
        rendered = head
    elif out == "full":
        rendered = head + text
    else:
        rendered = text
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    return status, rendered, doc


def exchange(host, port, data, method, timeout=15.0):
    """Send one request; read one answer (Content-Length, chunked, or to
    the close) and close the connection."""
    sock = socket.create_connection((host, port), timeout=timeout)
    buf = b""
    try:
        sock.sendall(data)
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return buf
            buf += chunk
        end = buf.index(b"\r\n\r\n") + 4
        head = buf[:end].decode("latin-1")
        status = int(head.split(" ", 2)[1])
        if method == "HEAD" or status in (204, 304) or status < 200:
            return buf[:end]
        m = re.search(r"(?im)^content-length:\s*([0-9]+)", head)
        chunked = re.search(r"(?im)^transfer-encoding:\s*chunked", head)
        while True:
            if m and len(buf) >= end + int(m.group(1)):
                return buf[:end + int(m.group(1))]
            if chunked and (buf.endswith(b"\r\n0\r\n\r\n") or
                            buf[end:].startswith(b"0\r\n\r\n")):
                return buf
            chunk = sock.recv(65536)
            if not chunk:
                return buf
            buf += chunk
    except socket.timeout:
        return buf
    finally:
        sock.close()


def dechunk(b):
    out = b""
    while b:
        line, _, b = b.partition(b"\r\n")
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0:
            break
        out += b[:n]
        b = b[n + 2:]
    return out


class Side:
    """One server's run: its own context variables."""

    def __init__(self, name, base, env):
        self.name, self.base, self.env = name, base, env
        self.vars, self.last_ctx = {}, None

    def target(self, req):
        t = req["target"]
        for v in re.findall(r"@(\w+)@", t):
            if v in self.vars:
                t = t.replace("@%s@" % v, self.vars[v])
        return t

    def run(self, req):
        st, text, doc = send(self.base, req, self.target(req))
        self.note(req, doc)
        return {"status": st, "text": text, "context": self.last_ctx}

    def note(self, req, doc):
        if isinstance(doc, dict) and "context" in doc:
            self.last_ctx = str(doc["context"])
        if req.get("set") and self.last_ctx is not None:
            self.vars[req["set"]] = self.last_ctx

    def action(self, act):
        if self.last_ctx is not None:
            self.vars[act["var"]] = act.get("prefix", "") + self.last_ctx


class Recorded(Side):
    """The reference side from the recorded fixture."""

    def __init__(self, fixture):
        super().__init__("pmproxy(fixture)", None, fixture["env"])
        self.answers = fixture["answers"]

    def run(self, req):
        return self.answers.get(req["id"])


def local_env():
    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True,
                                  timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    dom = cmd("domainname") or cmd("hostname", "-d")
    if dom in ("", "(none)", "(null)"):
        dom = "localdomain"
    try:
        with open("/etc/machine-id") as f:
            mid = f.read().strip()
    except OSError:
        mid = "localmachine"
    ver = "6.0.3"
    try:
        with open("/etc/pcp.conf") as f:
            m = re.search(r"^PCP_VERSION=(\S+)", f.read(), re.M)
            ver = m.group(1) if m else ver
    except OSError:
        pass
    return {"hostname": socket.gethostname(), "machineid": mid,
            "domainname": dom, "PCP_VERSION": ver}


# ---- the documented deviations ---------------------------------------------

def check_readme(devs):
    """Every deviation id is in README's differences section, and every
    `qa:` id there is in deviations.json."""
    try:
        with open(README) as f:
            text = f.read()
    except OSError:
        return ["README.md not readable"]
    start = text.find(README_SECTION)
    if start < 0:
        return ["README has no %r section" % README_SECTION]
    end = text.find("\n## ", start + 1)
    sec = text[start:end if end > 0 else len(text)]
    ids = {d["id"] for d in devs}
    in_readme = set(re.findall(r"\[(qa:[a-z0-9-]+)\]", sec))
    errs = ["deviation %s is not in README's differences section" % i
            for i in sorted(ids - in_readme)]
    errs += ["README names %s but qa/deviations.json does not" % i
             for i in sorted(in_readme - ids)]
    return errs


def applies(entry, req):
    ids = entry.get("requests", "*")
    return ids == "*" or req["id"] in ids


def explained(req, ta, tb, devs):
    """The ids of the documented deviations whose rules, applied to both
    filtered answers, make them equal; None when they do not."""
    used = []
    for d in devs:
        if not applies(d, req):
            continue
        na, nb = normalise(ta, d, "pmproxy"), normalise(tb, d, "bpftraced")
        if (na, nb) != (ta, tb):
            used.append(d["id"])
        ta, tb = na, nb
    return used if used and ta == tb else None


def normalise(text, dev, side):
    if dev.get("whole"):
        return "(%s)\n" % dev["id"]
    for r in dev.get("rules", []):
        if r.get("side", "both") in ("both", side):
            text = re.sub(r["s"], r["r"], text, flags=re.M)
    if dev.get("sort"):
        text = "\n".join(sorted(text.split("\n")))
    return text


# ---- the sample PMDA --------------------------------------------------------

def sample_present(pmproxy_url, live):
    """The local pmcd serves the sample PMDA (asked through pmproxy when
    it runs, else with pminfo)."""
    if not live:
        try:
            r = subprocess.run(["pminfo", "-h", "local:", "-f",
                                "sample.long.one"], capture_output=True,
                               timeout=20)
        except (OSError, subprocess.SubprocessError):
            return False
        return r.returncode == 0 and b"value 1" in r.stdout
    try:
        st, _, body = btd.http("GET", pmproxy_url +
                               "/pmapi/fetch?names=sample.long.one",
                               timeout=5.0)
    except OSError:
        return False
    return st == 200 and b'"value"' in body


def stored_values(pmproxy_url):
    vals = {}
    for n in SAMPLE_STORED:
        try:
            st, _, body = btd.http("GET", "%s/pmapi/fetch?names=%s"
                                   % (pmproxy_url, n), timeout=5.0)
            v = json.loads(body)["values"][0]["instances"][0]["value"]
            vals[n] = v
        except (OSError, ValueError, KeyError, IndexError):
            pass
    return vals


def restore_values(pmproxy_url, vals):
    for n, v in vals.items():
        try:
            btd.http("GET", "%s/pmapi/store?name=%s&value=%s"
                     % (pmproxy_url, n, v), timeout=5.0)
        except OSError:
            pass


# ---- main --------------------------------------------------------------------

def load(path):
    with open(path) as f:
        return json.load(f)


def record(args, data, pmproxy_url):
    env = local_env()
    side = Side("pmproxy", pmproxy_url, env)
    answers = {}
    for req in data["requests"]:
        if req.get("action") == "set":
            side.action(req)
            continue
        if "skip" in req:
            continue
        ans = side.run(req)
        if req.get("output") == "status":
            ans["text"] = ""        # only the status is compared
        answers[req["id"]] = ans
        if req["target"].startswith("/pmapi/context?polltimeout"):
            time.sleep(0.35)        # the QA test lets it expire
    doc = {"format": 1,
           "server": "pmproxy 6.0.3 (Debian pcp 6.0.3-1.1), local pmcd "
                     "with the sample PMDA",
           "recorded": datetime.datetime.now(datetime.timezone.utc)
                       .strftime("%Y-%m-%dT%H:%M:%SZ"),
           "testsuite": data["testsuite"],
           "env": env, "answers": answers}
    with open(args.fixture, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("recorded %d answers -> %s" % (len(answers), args.fixture),
          file=sys.stderr)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", choices=("auto", "live", "fixture"),
                    default=os.environ.get("CONFORMANCE_REFERENCE", "auto"))
    ap.add_argument("--record", action="store_true",
                    help="record live pmproxy's answers into --fixture")
    ap.add_argument("--fixture", default=FIXTURE)
    ap.add_argument("--only", action="append", default=[],
                    help="replay only this request id (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    pmproxy_url = os.environ.get("PMPROXY_URL",
                                 "http://127.0.0.1:44322").rstrip("/")
    data = load(REQUESTS)
    devs = load(DEVIATIONS)["deviations"]
    tap = btd.Tap()

    live = args.reference != "fixture" and pmproxy_live(pmproxy_url)
    if args.reference == "live" and not live:
        print("Bail out! no pmproxy answering at %s" % pmproxy_url)
        return 1
    if args.record and not live:
        print("Bail out! --record needs a live pmproxy")
        return 1
    if not live and not os.path.exists(args.fixture):
        print("Bail out! no live pmproxy and no fixture %s" % args.fixture)
        return 1
    binary = btd.default_binary()
    if not args.record and not os.access(binary, os.X_OK):
        btd.Tap.skip_all("bpftraced not built")

    errs = check_readme(devs)
    tap.ok(not errs, "qa/deviations.json and README's differences section "
           "name the same deviations", "\n".join("  " + e for e in errs)
           or None)

    # the sample PMDA: shared with the other tests that use it (installed
    # when absent, removed by its last user); then pmcd held shared
    with samplepmda.installed() as why, btd.pmcd_lock():
        if why:
            btd.Tap.skip_all(why)
        for _ in range(40):
            if sample_present(pmproxy_url, live):
                break
            time.sleep(0.5)
        before = stored_values(pmproxy_url) if live else {}
        try:
            if args.record:
                return record(args, data, pmproxy_url)
            return replay(args, tap, data, devs, live, pmproxy_url)
        finally:
            if live:
                restore_values(pmproxy_url, before)


def replay(args, tap, data, devs, live, pmproxy_url):
    env = local_env()
    if live:
        ref = Side("pmproxy", pmproxy_url, env)
    else:
        ref = Recorded(load(args.fixture))
    try:
        daemon = btd.Daemon(["--control", "loopback"], pmcd=None)
    except btd.DaemonError as e:
        print("Bail out! cannot start bpftraced: %s"
              % " ".join(str(e).split()))
        return 1
    ours = Side("bpftraced", daemon.base, env)
    st, _, _ = btd.http("GET", daemon.url("/pmapi/fetch?names=hinv.ncpu"))
    if st != 200:
        daemon.stop()
        btd.Tap.skip_all("bpftraced has no pmcd passthrough (no local pmcd)")
    tap.diag("PCP QA replay: %s; bpftraced %s on %s; reference %s" % (
        data["testsuite"], daemon.binary, daemon.base,
        pmproxy_url if live else "%s (recorded %s)" % (
            os.path.relpath(args.fixture), load(args.fixture)["recorded"])))
    chains = data["filter_chains"]
    counts = {"match": 0, "deviation": 0, "differ": 0, "skipped": 0}
    skips, failed = {}, []
    setups = []     # the test's stores that pmproxy took, in order
    try:
        for req in data["requests"]:
            if req.get("action") == "set":
                ref.action(req)
                ours.action(req)
                continue
            if args.only and req["id"] not in args.only:
                continue
            if "skip" in req:
                counts["skipped"] += 1
                skips.setdefault(req["skip"], []).append(req["id"])
                continue
            what = "%s %s %s" % (req["id"], req["method"],
                                 req["target"] if len(req["target"]) < 100
                                 else req["target"][:60] + "...(%d bytes)"
                                 % len(req["target"]))
            a = ref.run(req)
            if a is None:
                counts["skipped"] += 1
                skips.setdefault("not in the recorded fixture",
                                 []).append(req["id"])
                continue
            if live and not is_store(req):
                # one pmcd behind both: bpftraced's turn starts from the
                # state the test's stores set (pmproxy's turn may have
                # moved it: each fetch of sample.colour counts it up)
                for st in setups:
                    send(ours.base, st, ours.target(st))
            b = ours.run(req)
            if is_store(req) and a.get("status") == 200:
                setups = [r for r in setups if r is not req] + [req]
            if live and req["target"].startswith(
                    "/pmapi/context?polltimeout"):
                time.sleep(0.35)
            chain = chains[req["filters"]] if "filters" in req else []
            ta = render(a, req, chain, ref.env)
            tb = render(b, req, chain, ours.env)
            if ta == tb:
                counts["match"] += 1
                tap.ok(True, what)
                if args.verbose:
                    tap.diag(indent(ta))
                continue
            dev = explained(req, ta, tb, devs)
            if dev:
                counts["deviation"] += 1
                tap.ok(True, "%s (deviation %s)" % (what, ", ".join(dev)))
                if args.verbose:
                    tap.diag(udiff(ta, tb))
                continue
            counts["differ"] += 1
            failed.append(req["id"])
            tap.ok(False, what, udiff(ta, tb))
    finally:
        daemon.stop()
    for reason, ids in skips.items():
        tap.skip("%d request(s): %s" % (len(ids), " ".join(ids[:12]) +
                                        (" ..." if len(ids) > 12 else "")),
                 reason)
    tap.diag("PCP QA replay: %(match)d match, %(deviation)d deviation, "
             "%(differ)d differ, %(skipped)d skipped" % counts)
    if failed:
        tap.diag("differ: %d: %s" % (len(failed), " ".join(failed)))
    tap.done()


def is_store(req):
    return req.get("target", "").split("?")[0].endswith("/store")


def render(ans, req, chain, env):
    out = req.get("output", "body")
    if out == "status":
        return "status %s\n" % ans["status"]
    text = ans["text"]
    try:
        return apply_filters(text, chain, env)
    except (ValueError, re.error) as e:
        return "(filter error: %s)" % e


def udiff(a, b):
    """The two filtered texts as a unified diff (pmproxy -> bpftraced);
    one-line answers are split at commas so the diff shows the field."""
    def lines(t):
        ls = t.split("\n")
        if len(ls) <= 2 and len(t) > 100:
            ls = t.replace(",", ",\n").split("\n")
        return ls
    d = list(difflib.unified_diff(lines(a), lines(b), "pmproxy",
                                  "bpftraced", n=2, lineterm=""))
    return indent("\n".join(d[:80]) + ("\n..." if len(d) > 80 else ""))


def indent(t, n=4):
    t = t if len(t) < 3000 else t[:3000] + "\n... (%d bytes)" % len(t)
    return "\n".join(" " * n + ln for ln in t.split("\n"))


if __name__ == "__main__":
    sys.exit(main())
