#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_pmcd_store.py - /pmapi/store of pmcd metrics (TAP).

Stores to sample.write_me (u32) and sample.string.write_me go through
bpftraced to pmcd (pminfo sees the new values; both are put back after),
under the rules of control stores: refused with --control=off, allowed
for loopback clients with --control=loopback, and with --control=auth
only for an authenticated principal with the control role. Uses the
sample PMDA (installed for the test when absent, removed after).
"""

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "lib"))
import btd  # noqa: E402
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


def store(d, query, headers=None):
    st, _, body = btd.http("GET", d.url("/pmapi/store?" + query),
                           headers=headers)
    return st, body


def main():
    with samplepmda.installed() as why, btd.pmcd_lock():
        if why:
            btd.Tap.skip_all(why)
        old_u32 = pminfo_value("sample.write_me")
        old_str = pminfo_value("sample.string.write_me")
        new_u32 = "4242" if old_u32 != "4242" else "4343"
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
            subprocess.run(["pmstore", "sample.write_me", old_u32],
                           capture_output=True)
            subprocess.run(["pmstore", "sample.string.write_me", old_str],
                           capture_output=True)
    tap.done()


main()
