#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_replay.py - every real bpftrace 0.17 fixture, end to end (TAP).

bpftraced runs with --bpftrace tests/lib/fake-bpftrace, which replays a
fixture's recorded stdout, stderr and exit code. Each fixture script is
registered over HTTP as a user would; then the served metrics are
compared with what the fixture's own output says, computed here
independently with Python's json module:

  * final status/exit_code follow the recorded exit code;
  * a scalar map's value is the last value bpftrace printed for it;
  * a keyed map's instance names are the keys of its last print;
  * a hist's instance count is the bucket count of its last print;
  * the RLIMIT_MEMLOCK line never lands in `error`.

Runs without root or bpftrace; needs the shared fixtures ($BT_SHARED).
"""

import glob
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE
U64 = 1 << 64


def fixture_dir():
    shared = os.environ.get("BT_SHARED") or os.path.join(
        os.path.dirname(btd.REPO_ROOT), "shared")
    d = os.path.join(shared, "fixtures", "bpftrace-0.17")
    return d if os.path.isdir(d) else None


def expected(stdout):
    """var -> ("scalar", v) | ("keys", set) | ("hist", n) | ("text", s)"""
    out = {}
    text, exact = [], b"\\uffffff" not in stdout
    for raw in stdout.split(b"\n"):
        if not raw.strip():
            continue
        msg = json.loads(raw)
        t, data = msg.get("type"), msg.get("data")
        if t in ("printf", "time", "syscall", "cat"):
            text.append(data)
        elif t == "join":           # a line of its own, as in text mode
            text.append(data + "\n")
        elif t == "value":
            exact = False
        if text and exact and sum(map(len, text)) < 200000:
            out["output"] = ("text", "".join(text))
        else:
            out.pop("output", None)
        if t not in ("map", "hist", "stats") or not isinstance(data, dict):
            continue
        for name, val in data.items():
            var = name[1:] or "root"
            if t == "hist":
                if isinstance(val, dict):
                    out[var] = ("hist", sum(len(b) for b in val.values()))
                else:
                    out[var] = ("hist", len(val))
            elif isinstance(val, dict) and t == "stats" and \
                    "average" in val:
                out[var] = ("hist", 3)
            elif isinstance(val, dict) and t == "stats" and \
                    all(isinstance(x, dict) for x in val.values()):
                out[var] = ("keys", {"%s:%s" % (k, part) for k in val
                                     for part in ("count", "average",
                                                  "total")})
            elif isinstance(val, dict):
                out[var] = ("keys", set(val))
            else:
                out[var] = ("scalar", val)
    return out


class Client(btd.Client):
    def __init__(self, d):
        super().__init__(d, polltimeout=300, timeout=20.0, context=True)

    def fetch(self, names):
        st, j = self.getj("/pmapi/fetch", names=",".join(names))
        return {v["name"]: v["instances"] for v in j.get("values", [])}


def check_fixture(c, fdir, name):
    with open(os.path.join(fdir, name + ".bt")) as f:
        code = f.read()
    with open(os.path.join(fdir, name + ".stdout"), "rb") as f:
        stdout = f.read()
    with open(os.path.join(fdir, name + ".rc")) as f:
        rc = int(f.read().strip() or 0)
    sname = "fx_" + name
    st, j = c.getj("/pmapi/store", name="bpftrace.control.register",
                   value="// name: %s\n// fixture: %s\n%s" % (sname, name,
                                                              code))
    if st != 200:
        ans = c.fetch(["bpftrace.control.register"]).get(
            "bpftrace.control.register", [{}])[0].get("value", "{}")
        why = json.loads(ans).get("state", {}).get("error", "")
        tap.ok("Bad input to pmstore" in j.get("message", "") and why,
               "%s: refused with a reason (%s)" % (name, why[:80]))
        return
    base = "bpftrace.scripts.%s." % sname
    want = "stopped" if rc == 0 else "error"
    deadline = time.monotonic() + 15
    status = None
    while time.monotonic() < deadline:
        v = c.fetch([base + "status"]).get(base + "status")
        status = v[0]["value"] if v else None
        if status == want:
            break
        time.sleep(0.1)
    got = c.fetch([base + "exit_code", base + "error"])
    code_v = got.get(base + "exit_code", [{}])[0].get("value")
    err = got.get(base + "error", [{}])[0].get("value", "")
    ok = status == want and code_v == rc and "RLIMIT_MEMLOCK" not in err
    st, j = c.getj("/pmapi/metric", prefix=base + "data")
    metrics = {m["name"][len(base + "data."):]: m
               for m in j.get("metrics", [])}
    exp = expected(stdout)
    vals = c.fetch([base + "data." + v for v in metrics]) if metrics else {}
    bad = []
    for var, (kind, x) in exp.items():
        if var not in metrics:
            continue
        inst = vals.get(base + "data." + var, [])
        if kind == "scalar" and isinstance(x, int):
            v = inst[0]["value"] if inst else None
            if v != x and v != x % U64:
                bad.append("%s=%r want %r" % (var, v, x))
        elif kind == "keys" and not any("\uffff" in k for k in x):
            st, ij = c.getj("/pmapi/indom", name=base + "data." + var)
            names = {i["name"] for i in ij.get("instances", [])}
            if names != x:
                bad.append("%s keys differ: %d vs %d (e.g. %r)" % (
                    var, len(names), len(x), sorted(x ^ names)[:3]))
        elif kind == "text":
            v = inst[0]["value"] if inst else None
            if v != x and (v or "").count("\n") < 10000:
                bad.append("output %r want %r" % ((v or "")[:60], x[:60]))
        elif kind == "hist" and len(inst) != x:
            bad.append("%s has %d instances, want %d" % (var, len(inst), x))
    tap.ok(ok and not bad, "%s: status %s, exit %d, %d variables match the "
           "recorded output" % (name, want, rc, len(exp)),
           "status=%r exit=%r err=%r %s" % (status, code_v, err[:200], bad)
           if not (ok and not bad) else None)
    c.getj("/pmapi/store", name="bpftrace.control.deregister", value=sname)


def main():
    fdir = fixture_dir()
    if fdir is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    names = sorted(os.path.basename(p)[:-3]
                   for p in glob.glob(os.path.join(fdir, "*.bt")))
    env = {"BT_SHARED": os.path.dirname(os.path.dirname(fdir))}
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE,
                     "--max-output-rate", "0"], env=env) as d:
        c = Client(d)
        for n in names:
            check_fixture(c, fdir, n)
        tap.ok(d.alive(), "daemon alive after replaying %d fixtures"
               % len(names))
        time.sleep(0.6)     # the main loop frees deregistered scripts
        st, j = c.getj("/pmapi/fetch", names="bpftrace.info.scripts_total")
        tap.ok(st == 200 and j["values"][0]["instances"][0]["value"] == 0,
               "every fixture script deregistered cleanly", repr(j)[:200])
    tap.done()


if __name__ == "__main__":
    main()
