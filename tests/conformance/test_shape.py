#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_shape.py - TAP unit test of the shape comparator (shape.py).

Needs no server: each test mutates a recorded pmproxy answer from the
fixture (or a small hand-made one) and checks that compare() reports the
difference, or that it stays quiet for differences that are only data.
"""

import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
import cases  # noqa: E402
import shape  # noqa: E402

FIX = os.path.join(HERE, "fixtures", "pmproxy-6.0.3.json")
P, B = cases.SUBST_PMPROXY, cases.SUBST_BPFTRACED


def rec(status=200, body="", ct="application/json", extra=None):
    h = {"access-control-allow-origin": "*",
         "access-control-allow-headers":
             "Accept, Accept-Language, Content-Language, Content-Type",
         "access-control-max-age": "86400", "connection": "Keep-Alive",
         "content-length": str(len(body))}
    if ct:
        h["content-type"] = ct
    h.update(extra or {})
    return {"status": status, "reason": "", "headers": h,
            "header_names": list(h), "body": body}


def js(o):
    return json.dumps(o, separators=(",", ":")) + "\r\n"


def main():
    tap = btd.Tap()
    fx = json.load(open(FIX))["cases"] if os.path.exists(FIX) else {}

    def check(desc, ref, cand, case=None, want=True, ps=P, cs=P,
              contains=None):
        diffs, _ = shape.compare(ref, cand, case or {"id": "t"}, ps, cs)
        good = bool(diffs) == want
        if good and contains:
            good = any(contains in d for d in diffs)
        tap.ok(good, desc, None if good else "diffs: %r" % diffs)

    # identical and data-only differences
    fetch = {"context": 5, "timestamp": 1.5, "values": [
        {"pmid": "60.0.32", "name": "hinv.ncpu",
         "instances": [{"instance": None, "value": 2}]}]}
    ours = copy.deepcopy(fetch)
    ours.update(context=99, timestamp=7.25)
    ours["values"][0].update(pmid="151.2.3", name=B["u32"])
    ours["values"][0]["instances"][0]["value"] = 12345678901234
    check("data-only differences pass", rec(body=js(fetch)),
          rec(body=js(ours)), {"opts": {"exact_keys": ["name"]}},
          want=False, cs=B)

    bad = copy.deepcopy(ours)
    bad["values"][0]["name"] = "bpftrace.other"
    check("exact name after substitution", rec(body=js(fetch)),
          rec(body=js(bad)), {"opts": {"exact_keys": ["name"]}}, cs=B,
          contains="values[0].name")

    bad = copy.deepcopy(fetch)
    bad["values"][0]["instances"][0]["value"] = "2"
    check("value kind int vs string", rec(body=js(fetch)),
          rec(body=js(bad)), contains="kind int")

    bad = copy.deepcopy(fetch)
    bad["values"][0]["instances"][0]["value"] = 2.5
    check("int vs float is a difference by default", rec(body=js(fetch)),
          rec(body=js(bad)))
    check("... but not with loose_numbers", rec(body=js(fetch)),
          rec(body=js(bad)), {"opts": {"loose_numbers": True}}, want=False)

    bad = copy.deepcopy(fetch)
    bad["values"][0]["instances"][0]["instance"] = 0
    check("singular instance null vs int", rec(body=js(fetch)),
          rec(body=js(bad)), contains="instance")

    bad = {"timestamp": 1.5, "context": 5, "values": fetch["values"]}
    check("key order", rec(body=js(fetch)), rec(body=js(bad)),
          contains="keys")

    bad = copy.deepcopy(fetch)
    bad["values"][0]["pmid"] = 251658272
    check("pmid number instead of D.C.I string", rec(body=js(fetch)),
          rec(body=js(bad)))
    bad["values"][0]["pmid"] = "60.0"
    check("pmid string not D.C.I", rec(body=js(fetch)), rec(body=js(bad)),
          contains="pmid")

    bad = copy.deepcopy(fetch)
    bad["values"] = []
    check("empty vs non-empty array", rec(body=js(fetch)),
          rec(body=js(bad)), contains="empty")
    check("... unless emptiness is relaxed", rec(body=js(fetch)),
          rec(body=js(bad)), {"opts": {"emptiness": False}}, want=False)

    check("missing CRLF", rec(body=js(fetch)),
          rec(body=js(fetch).rstrip()), contains="CRLF")
    check("status", rec(body=js(fetch)), rec(400, js(fetch)),
          contains="status")
    r = rec(body=js(fetch))
    c = rec(body=js(fetch))
    del c["headers"]["access-control-max-age"]
    check("missing CORS header", r, c, contains="access-control-max-age")
    c = rec(body=js(fetch), ct="application/json; charset=utf-8")
    check("content-type parameter", r, c, contains="content-type")
    c = rec(body=js(fetch), extra={"connection": "close"})
    check("Connection header is a note, not a difference", r, c,
          want=False)

    err = {"context": 1, "message": "hinv.ncpu traversal failed - "
           "Unknown metric name", "success": False}
    ok_ = dict(err, context=2, message=B["u32"] + " traversal failed - "
               "Unknown metric name")
    check("message equal after substitution", rec(400, js(err)),
          rec(400, js(ok_)), want=False, cs=B)
    bad = dict(ok_, message="Unknown metric name")
    check("message text differs", rec(400, js(err)), rec(400, js(bad)),
          cs=B, contains="message")
    bad = dict(ok_, success=True)
    check("success bool value", rec(400, js(err)), rec(400, js(bad)),
          cs=B, contains="success")

    lab = {"context": 1, "labels": {"hostname": "vm", "agent": "linux"}}
    lab2 = {"context": 1, "labels": {"agent": "bpftrace", "x": 1}}
    check("labels are maps: keys are data", rec(body=js(lab)),
          rec(body=js(lab2)), want=False)

    met = {"metrics": [{"name": "a", "pmid": "1.2.3", "type": "u32"},
                       {"name": "b", "pmid": "1.2.4", "indom": "1.2",
                        "type": "u32"}]}
    met2 = {"metrics": [{"name": "a", "pmid": "1.2.3", "indom": "1.1",
                         "type": "u32"}]}
    check("optional_keys tolerates indom", rec(body=js(met)),
          rec(body=js(met2)), {"opts": {"optional_keys": ["indom"]}},
          want=False)
    check("elementwise length", rec(body=js(met)), rec(body=js(met2)),
          {"opts": {"elementwise": ["metrics"],
                    "optional_keys": ["indom"]}}, contains="elements")

    html = ("<html>\r\n<p><b>unknown servlet</b>: no handler for URL</p>"
            "<hr>\r\n<p><small><i>pmproxy/6.0.3</i></small></p>\r\n")
    check("HTML: version masked", rec(400, html, "text/html"),
          rec(400, html.replace("pmproxy/6.0.3", "bpftraced/0.1"),
              "text/html"), want=False)
    check("HTML: servlet text differs", rec(400, html, "text/html"),
          rec(400, html.replace("unknown", "webapi"), "text/html"),
          contains="HTML")
    check("empty body vs body", rec(200, "", None), rec(200, "x", None),
          contains="empty")

    invalid = '{"context":abc,"message":"invalid context identifier: abc",' \
              '"success":false}\r\n'
    valid = js({"context": "abc", "message":
                "invalid context identifier: abc", "success": False})
    diffs, _ = shape.compare(rec(400, invalid), rec(400, valid),
                             {"id": "fetch-bad-context"}, P, B)
    rem, allowed = shape.apply_deviation("fetch-bad-context", diffs,
                                         cases.DEVIATIONS)
    good = not rem and bool(allowed)
    tap.ok(good, "bad-context deviation allowed, and named",
           None if good else "diffs %r" % diffs)
    check("invalid candidate JSON is a difference", rec(400, valid),
          rec(400, invalid), contains="invalid JSON")

    # recorded answers compare equal to themselves, under either subst
    for cid in ("fetch-multi", "metric-prefix-mixed", "indom-by-name",
                "options-context", "url-too-long-9000"):
        if cid not in fx:
            tap.skip("fixture self-compare %s" % cid, "not in fixture")
            continue
        c = cases.case_by_id(cid)
        diffs, notes = shape.compare(fx[cid], fx[cid], c, P, P)
        good = not diffs and not notes
        tap.ok(good, "fixture self-compare %s" % cid,
               None if good else "diffs %r notes %r" % (diffs, notes))

    # every case's placeholders can be filled from the substitution maps
    dyn = {"ctx", "pmid_u32", "pmid_u32_num", "pmid_u32_hex", "inst_id",
           "indom_num", "indom_hex"}
    bad = []
    for c in cases.CASES:
        for t in [c["target"]] + [p["target"] for p in c.get("pre", ())]:
            for k in shape.PLACEHOLDER.findall(t):
                if k not in P and k not in dyn and \
                        not k.startswith("long_"):
                    bad.append((c["id"], k))
    tap.ok(not bad, "all placeholders known",
           "unknown: %r" % bad if bad else None)
    tap.done()


if __name__ == "__main__":
    main()
