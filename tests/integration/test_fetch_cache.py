#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_fetch_cache.py - fetch answers written once per snapshot (TAP).

A fetch writes a metric's "instances" array once per value snapshot and
caches it there (api_pmapi.c fetch_frag); later fetches copy it. What must
not leak through the cache, checked on one snapshot that does not change
(tests/lib/fake-bpftrace replays a 4-key map once and holds):

  * the same context fetching twice gets the same values;
  * a context whose profile restricts the map's instances gets only those,
    after another context's fetch filled the cache, and the other context
    still gets all four;
  * a singular metric is "instance":null in /pmapi/fetch and -1 in the
    pmwebd _fetch, whichever of the two asked first.
"""

import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

FAKE = btd.FAKE_BPFTRACE
MAP = "bpftrace.scripts.cache.data.bycomm"
STATUS = "bpftrace.scripts.cache.status"
tap = btd.Tap()


def getj(d, path, **q):
    st, _, body = btd.http("GET", d.url(path + "?" +
                                        urllib.parse.urlencode(q)))
    try:
        return st, json.loads(body), body
    except ValueError:
        return st, None, body


def values(d, ctx, name, pmwebd=False):
    """the answer's values array (the timestamp left out)"""
    if pmwebd:
        st, o, body = getj(d, "/pmapi/%d/_fetch" % ctx, names=name)
    else:
        st, o, body = getj(d, "/pmapi/fetch", context=ctx, names=name)
    return o.get("values") if st == 200 and o else body


def instances(vals):
    return sorted(i["instance"] for i in vals[0]["instances"]) \
        if isinstance(vals, list) and vals else vals


def main():
    sh = btd.shared_dir()
    if sh is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE],
                    env={"BT_SHARED": sh}) as d:
        a = getj(d, "/pmapi/context")[1]["context"]
        b = getj(d, "/pmapi/context")[1]["context"]
        getj(d, "/pmapi/store", context=a, name="bpftrace.control.register",
             value="// name: cache\n// fixture: map_string_key\n"
             "// fake: hold\ntracepoint:a:b { @bycomm[comm] = count(); }\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                len(instances(values(d, a, MAP)) or []) < 4:
            time.sleep(0.05)
        first = values(d, a, MAP)
        again = values(d, a, MAP)
        tap.ok(isinstance(first, list) and len(first[0]["instances"]) == 4
               and again == first,
               "the same context fetching the map twice gets the same 4 "
               "instances", repr((first, again)))
        all4 = instances(first)
        st, m, _ = getj(d, "/pmapi/metric", name=MAP)
        indom = m["metrics"][0]["indom"]
        one = all4[0]
        st, _, body = getj(d, "/pmapi/%d/profile" % b, expr="add",
                           indom=indom, instance=str(one))
        got_b = instances(values(d, b, MAP))
        got_a = instances(values(d, a, MAP))
        tap.ok(st == 200 and got_b == [one] and got_a == all4,
               "a profile restricting instance %d is applied after another "
               "context filled the cache; that context still gets all 4"
               % one, repr((st, body, got_a, got_b)))
        st, _, _ = getj(d, "/pmapi/%d/profile" % b, expr="del",
                        indom=indom)
        tap.ok(st == 200 and values(d, b, MAP) == [],
               "a profile excluding every instance leaves the map out",
               repr(values(d, b, MAP)))
        for order in ((False, True), (True, False)):
            c = getj(d, "/pmapi/context")[1]["context"]
            got = {}
            for pmwebd in order:
                v = values(d, c, STATUS, pmwebd)
                got[pmwebd] = v[0]["instances"] if isinstance(v, list) \
                    and v else v
            tap.ok(got[False] == [{"instance": None, "value": "started"}]
                   and got[True] == [{"instance": -1, "value": "started"}],
                   "singular metric: instance null in /pmapi/fetch and -1 in "
                   "pmwebd _fetch (%s asked first)"
                   % ("pmwebd" if order[0] else "pmproxy"), repr(got))
    tap.done()


if __name__ == "__main__":
    main()
