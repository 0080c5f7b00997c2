#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_pmcd_store.py - /pmapi/store of pmcd metrics (TAP).

Stores to sample.write_me (u32) and sample.string.write_me go through
bpftraced to pmcd (pminfo sees the new values; both are put back after),
under the rules of control stores: refused with --control=off, allowed
for loopback clients with --control=loopback, and with --control=auth
only for an authenticated principal with the control role. As pmproxy:
by pmid=, with the value in a POST body, and per instance (iname=a,b or
instance=ids of sample.bin; the stored instances become the context's
profile; an unknown instance name is refused and nothing is stored).
With a live pmproxy the answers are compared with its own. Uses the
sample PMDA (installed for the test when absent, removed after).
"""

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
PMPROXY = os.environ.get("PMPROXY_URL", "http://127.0.0.1:44322")
import samplepmda  # noqa: E402

tap = btd.Tap()
if not os.access(btd.default_binary(), os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())
if shutil.which("pminfo") is None:
    btd.Tap.skip_all("pminfo absent (Debian: pcp)")


def pminfo_value(name):
    r = subprocess.run(["pminfo", "-f", name], capture_output=True,
                       timeout=30)
    m = re.search(rb"value (.*)", r.stdout)
    return m.group(1).decode().strip('"') if m else None


def pminfo_insts(name):
    """{instance name: value} of a metric with instances, per pminfo."""
    r = subprocess.run(["pminfo", "-f", name], capture_output=True,
                       timeout=30)
    return {m.group(1).decode(): m.group(2).decode() for m in re.finditer(
        rb'inst \[\d+ or "([^"]*)"\] value (\S+)', r.stdout)}


def pmproxy_answer(query):
    """pmproxy's (status, body with the context id masked), or None."""
    try:
        st, _, body = btd.http("GET", PMPROXY + "/pmapi/store?" + query,
                               timeout=10)
    except OSError:
        return None
    return st, re.sub(rb'"context":\d+', b'"context":N', body)


def store(d, query, headers=None):
    st, _, body = btd.http("GET", d.url("/pmapi/store?" + query),
                           headers=headers)
    return st, body


def instance_stores(d, u32):
    """pmid=, POST and per-instance stores (sample.long.write_me and
    sample.bin, put back by main), against pminfo and pmproxy."""
    st, body = store(d, "pmid=29.0.14&value=31")
    tap.ok(st == 200 and pminfo_value("sample.long.write_me") == "31",
           "store by pmid= (29.0.14): sample.long.write_me is 31 per pminfo",
           "  %s %r %r" % (st, body, pminfo_value("sample.long.write_me")))
    st, _, body = btd.http("POST", d.url(
        "/pmapi/store?name=sample.long.write_me"), body=b"37",
        headers={"Content-Type": "text/plain"})
    tap.ok(st == 200 and pminfo_value("sample.long.write_me") == "37",
           "POST store, the value in the body: 37 per pminfo",
           "  %s %r %r" % (st, body, pminfo_value("sample.long.write_me")))
    before = pminfo_insts("sample.bin")
    st, body = store(d, "name=sample.bin&value=7&iname=bin-200,bin-300")
    after = pminfo_insts("sample.bin")
    want = dict(before, **{"bin-200": "7", "bin-300": "7"})
    tap.ok(st == 200 and len(before) == 9 and after == want,
           "iname=bin-200,bin-300: those two instances are 7 per pminfo, "
           "the others unchanged", "  %s %r\n  before %r\n  after %r" %
           (st, body, before, after))
    st, body = store(d, "name=sample.bin&value=9&instance=400,500")
    after2 = pminfo_insts("sample.bin")
    tap.ok(st == 200 and after2 == dict(after, **{"bin-400": "9",
                                                    "bin-500": "9"}),
           "instance=400,500: those two instances are 9 per pminfo",
           "  %s %r %r" % (st, body, after2))
    st, body = store(d, "name=sample.bin&value=11&iname=bin-600,nosuch")
    tap.ok(st == 400 and b"Unknown or illegal instance identifier" in body
           and pminfo_insts("sample.bin") == after2,
           "an unknown instance name: 400, nothing stored",
           "  %s %r" % (st, body))
    st, body = store(d, "name=sample.bin&value=11&instance=7")
    tap.ok(st == 400 and b"failed to store value to metric sample.bin: "
           b"Unknown or illegal instance identifier" in body,
           "an instance the agent refuses: its error, pmproxy's text",
           "  %s %r" % (st, body))
    # the stored instances become the context's profile, as in pmproxy
    st, ans = btd.Client(d).getj("/pmapi/context")
    ctx = ans.get("context")
    st, body = store(d, "context=%s&name=sample.bin&value=8&iname=bin-900"
                     % ctx)
    st2, ans = btd.Client(d).getj("/pmapi/fetch", context=ctx,
                                  name="sample.bin")
    insts = {tuple(i["instance"] for i in v["instances"])
             for v in ans.get("values", [])}
    tap.ok(st == 200 and insts == {(900,)},
           "after iname=bin-900 the context fetches that instance alone",
           "  %s %r %r" % (st, body, ans))
    same, seen = [], []
    for q in ("name=sample.bin&value=100&iname=bin-100",
              "name=sample.bin&value=5&iname=nosuch",
              "name=sample.bin&value=x&iname=bin-100",
              "name=sample.bin&value=200&instance=200,abc",
              "pmid=29.0.6&value=300&instance=300",
              "pmid=29.0.6&value=x",
              "name=sample.long.write_me&value=%s&iname=zz" % u32[:2],
              "name=sample.bin&value=400&iname=bin-400,bin-400"):
        ref = pmproxy_answer(q)
        if ref is None:
            break
        st, body = store(d, q)
        seen.append(q)
        if ref != (st, re.sub(rb'"context":\d+', b'"context":N', body)):
            same.append("%s: pmproxy %r, bpftraced %s %r" % (q, ref, st,
                                                            body))
    if not seen:
        tap.skip("the same stores side by side with pmproxy",
                 "no pmproxy on %s" % PMPROXY)
    else:
        tap.ok(not same, "%d stores answer as pmproxy's (status and JSON)"
               % len(seen), "\n".join("  " + x for x in same))


def main():
    with samplepmda.installed() as why, btd.pmcd_lock():
        if why:
            btd.Tap.skip_all(why)
        old_u32 = pminfo_value("sample.write_me")
        old_str = pminfo_value("sample.string.write_me")
        new_u32 = "4242" if old_u32 != "4242" else "4343"
        old_long = pminfo_value("sample.long.write_me")
        old_bin = pminfo_insts("sample.bin")
        try:
            with btd.Daemon(pmcd="localhost",
                            args=["--control", "off"]) as d:
                st, body = store(d, "name=sample.write_me&value=" + new_u32)
                tap.ok(st == 400 and b"No permission" in body and
                       pminfo_value("sample.write_me") == old_u32,
                       "--control=off: a pmcd store is refused, value kept",
                       "  %s %r" % (st, body))
            with btd.Daemon(pmcd="localhost",
                            args=["--control", "loopback"]) as d:
                st, body = store(d, "name=sample.write_me&value=" + new_u32)
                tap.ok(st == 200 and b'"success":true' in body,
                       "--control=loopback: store to sample.write_me "
                       "answers success", "  %s %r" % (st, body))
                tap.ok(pminfo_value("sample.write_me") == new_u32,
                       "pmcd's sample.write_me is now %s" % new_u32,
                       "  pminfo: %r" % pminfo_value("sample.write_me"))
                st, body = store(d, "name=sample.string.write_me&value=hi")
                tap.ok(st == 200 and
                       pminfo_value("sample.string.write_me") == "hi",
                       "a string store reaches pmcd too",
                       "  %s %r" % (st, body))
                st, body = store(d, "name=sample.write_me&value=abc")
                tap.ok(st == 400 and b"Unknown or illegal metric type" in
                       body, "a value of the wrong type: pmproxy's 400",
                       "  %s %r" % (st, body))
                st, body = store(d, "name=hinv.ncpu&value=1")
                tap.ok(st == 400 and b"No permission" in body,
                       "pmcd's refusal (hinv.ncpu) is its error text",
                       "  %s %r" % (st, body))
                st, body = store(d, "name=no.such.metric&value=1")
                tap.ok(st == 400 and b"no.such.metric - failed to lookup "
                       b"metric" in body, "an unknown name: pmproxy's 400",
                       "  %s %r" % (st, body))
                instance_stores(d, new_u32)
            tmp = tempfile.mkdtemp(prefix="btd-pcstore-")
            users = btd.users_file(tmp, [("ops", "control"), ("view", "read")])
            with btd.Daemon(pmcd="localhost", args=[
                    "--control", "auth", "--auth-file", users]) as d:
                st, body = store(d, "name=sample.write_me&value=" + old_u32)
                tap.ok(st in (401, 403) and
                       pminfo_value("sample.write_me") == new_u32,
                       "--control=auth: an anonymous store is refused",
                       "  %s %r" % (st, body))
                auth = {"Authorization": "Basic " + base64.b64encode(
                    b"view:pw-view").decode()}
                st, body = store(d, "name=sample.write_me&value=" + old_u32,
                                 auth)
                tap.ok(st == 403, "--control=auth: a user without the "
                       "control role is refused (403)", "  %s %r" % (st, body))
                auth = {"Authorization": "Basic " + base64.b64encode(
                    b"ops:pw-ops").decode()}
                st, body = store(d, "name=sample.write_me&value=" + old_u32,
                                 auth)
                tap.ok(st == 200 and
                       pminfo_value("sample.write_me") == old_u32,
                       "--control=auth: the control user's store reaches "
                       "pmcd (value restored)", "  %s %r" % (st, body))
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            for inst, v in old_bin.items():
                subprocess.run(["pmstore", "-i", inst, "sample.bin", v],
                               capture_output=True)
            subprocess.run(["pmstore", "sample.long.write_me", old_long],
                           capture_output=True)
            subprocess.run(["pmstore", "sample.write_me", old_u32],
                           capture_output=True)
            subprocess.run(["pmstore", "sample.string.write_me", old_str],
                           capture_output=True)
    tap.done()


main()
