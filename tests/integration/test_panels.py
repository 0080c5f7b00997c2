#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_panels.py - Grafana panels that must not break for good (TAP).

Driven the way grafana-pcp's bpftrace datasource (HEAD) registers a
script: a new context, GET /pmapi/store of bpftrace.control.register
with the whole script URL-encoded in value=, then a fetch of
bpftrace.control.register on that context, whose value is the Script
(script_id, state, variables, metadata).

  * a missing #include: the compiler's "file not found" reaches
    state.error (not only "bpftrace exited with status 1"), with real
    bpftrace as root and with the fake replaying the same stderr;
"""

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE
HOLD = "// fake: hold\n"


class Grafana:
    """grafana-pcp's requests in server access mode (Grafana's data
    proxy): GET with a JSON Content-Type."""

    def __init__(self, d, headers=None):
        self.d = d
        self.headers = {"Content-Type": "application/json",
                        "X-Grafana-Org-Id": "1"}
        self.headers.update(headers or {})

    def get(self, path, **params):
        q = urllib.parse.urlencode(params)
        st, _, body = btd.http("GET", self.d.url(
            path + ("?" + q if q else "")), timeout=10.0,
            headers=self.headers)
        try:
            j = json.loads(body)
        except ValueError:
            j = None
        return st, j, body

    def context(self, polltimeout=30):
        return self.get("/pmapi/context", hostspec="pcp://127.0.0.1",
                        polltimeout=polltimeout)[1]["context"]

    def register(self, code):
        """(store status, store JSON, Script read back or None)"""
        t = self.context()
        st, j, _ = self.get("/pmapi/store", context=t,
                            name="bpftrace.control.register", value=code)
        _, f, _ = self.get("/pmapi/fetch", context=t,
                           names="bpftrace.control.register")
        try:
            script = json.loads(f["values"][0]["instances"][0]["value"])
        except (TypeError, KeyError, IndexError, ValueError):
            script = None
        return st, j, script

    def scripts(self):
        """bpftrace.info.scripts_json, by script_id"""
        _, f, _ = self.get("/pmapi/fetch", names="bpftrace.info.scripts_json")
        try:
            v = json.loads(f["values"][0]["instances"][0]["value"])
        except (TypeError, KeyError, IndexError, ValueError):
            return {}
        return {s["script_id"]: s for s in v}

    def wait_state(self, sid, pred, timeout=20.0):
        deadline = time.monotonic() + timeout
        s = None
        while time.monotonic() < deadline:
            s = self.scripts().get(sid)
            if s and pred(s["state"]):
                return s
            time.sleep(0.2)
        return s


def fake_shared(extra):
    """A copy of the 0.17 fixtures with extra {name: (stdout, stderr, rc)},
    for BT_SHARED of the daemon (so the fake replays them)."""
    top = tempfile.mkdtemp(prefix="btd-panels-")
    dst = os.path.join(top, "fixtures", "bpftrace-0.17")
    shutil.copytree(os.path.join(btd.shared_dir(), "fixtures",
                                 "bpftrace-0.17"), dst)
    for name, (out, err, rc) in extra.items():
        for ext, data in ((".stdout", out), (".stderr", err),
                          (".rc", "%d\n" % rc), (".bt", "")):
            with open(os.path.join(dst, name + ext), "w") as f:
                f.write(data)
    return top


RLIMIT_017 = ("ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for "
              "bpftrace. If your program is not loading, you can try "
              "\"ulimit -l 8192\" to fix the problem\n")
MISSING = "net/btd_no_such_header.h"
# what real bpftrace 0.17 writes for it (as root here): no final newline
MISSING_STDERR = (RLIMIT_017 + "definitions.h:2:10: fatal error: '%s' file "
                  "not found" % MISSING)


def check_missing_include(g, code, how):
    st, j, script = g.register(code)
    sid = script and script.get("script_id")
    s = g.wait_state(sid, lambda s: s["status"] == "error") if sid else None
    err = s["state"]["error"] if s else ""
    tap.ok(s is not None and "file not found" in err and MISSING in err and
           "RLIMIT" not in err, "%s: a missing #include: state.error has "
           "the compiler's 'file not found' line, not the RLIMIT warning"
           % how, repr(s and s["state"])[:400])
    return sid


def test_missing_include(sh):
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE],
                    env={"BT_SHARED": sh}) as d:
        g = Grafana(d)
        sid = check_missing_include(
            g, "// fixture: include_missing\n#include <%s>\n"
            "tracepoint:sock:inet_sock_set_state { @s[args->newstate] = "
            "count(); }\n" % MISSING, "fake 0.17 replay")
        _, f, _ = g.get("/pmapi/fetch", names="bpftrace.scripts.%s.warnings"
                        % sid)
        w = f and f["values"] and f["values"][0]["instances"][0]["value"]
        tap.ok(w and "RLIMIT_MEMLOCK" in w and "file not found" not in w,
               "fake 0.17 replay: the RLIMIT line is in warnings, the "
               "error is not", repr(w)[:300])
    why = btd.bpftrace_usable()
    if why:
        tap.skip("a missing #include with real bpftrace", why)
        return
    with btd.Daemon(["--control", "loopback"]) as d:
        check_missing_include(Grafana(d), "#include <%s>\n"
                              "tracepoint:sock:inet_sock_set_state { "
                              "@s[args->newstate] = count(); }\n"
                              % MISSING, "real bpftrace")


def main():
    sh = fake_shared({"include_missing": ("", MISSING_STDERR, 1)})
    try:
        test_missing_include(sh)
    finally:
        shutil.rmtree(sh, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
