#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""record.py - record real pmproxy's answers to every conformance case.

    tests/conformance/record.py --pmproxy http://127.0.0.1:44322 \
        [--out tests/conformance/fixtures/pmproxy-6.0.3.json] [--case ID...]
        [--server TEXT]

pmproxy 7.2.2 (the sid root): tests/versions/pcp7.sh record [--case ID...]

Runs the cases of cases.py one at a time, on one connection per request
(pmproxy 6.0.3 crashes under many concurrent keep-alive connections), with
SUBST_PMPROXY, and writes status, headers (all but Date), header order and
the raw body text of each answer as JSON.  With --case only those cases
are re-recorded and merged into the existing file.
"""

import argparse
import datetime
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cases  # noqa: E402
import shape  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "fixtures", "pmproxy-6.0.3.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pmproxy", default="http://127.0.0.1:44322",
                    help="pmproxy base URL (default %(default)s)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--case", action="append", default=[],
                    help="record only this case id (repeatable)")
    ap.add_argument("--server", default=None,
                    help="the fixture's server text (default: the "
                         "existing fixture's, else pmproxy 6.0.3's)")
    args = ap.parse_args()

    srv = shape.Server("pmproxy", args.pmproxy, cases.SUBST_PMPROXY)
    try:
        st, _, body, _ = srv.raw("GET", "/pmapi/context")
    except OSError as e:
        sys.exit("record: pmproxy at %s does not answer: %s" % (args.pmproxy, e))
    if st != 200:
        sys.exit("record: pmproxy /pmapi/context answered %s: %r" % (st, body))

    old = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            old = json.load(f)
    results = dict(old.get("cases", {})) if args.case else {}
    selected = [c for c in cases.CASES
                if not args.case or c["id"] in args.case]
    if args.case and len(selected) != len(set(args.case)):
        known = {c["id"] for c in cases.CASES}
        sys.exit("record: unknown case(s): %s"
                 % sorted(set(args.case) - known))
    failed = 0
    for c in selected:
        rec = srv.run(c)
        results[c["id"]] = rec
        if "error" in rec:
            failed += 1
            print("%-40s ERROR %s" % (c["id"], rec["error"]), file=sys.stderr)
        else:
            print("%-40s %s %s" % (c["id"], rec["status"],
                                   rec["headers"].get("content-type")),
                  file=sys.stderr)
    # keep case order stable
    order = [c["id"] for c in cases.CASES]
    results = {k: results[k] for k in order if k in results}

    doc = {
        "format": 1,
        "server": args.server or old.get(
            "server", "pmproxy 6.0.3 (Debian pcp 6.0.3-1.1), local pmcd"),
        "recorded": datetime.datetime.now(datetime.timezone.utc)
                    .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "url": args.pmproxy,
        "subst": cases.SUBST_PMPROXY,
        "dynamic": {k: v for k, v in srv.dynamic.items()} or
                   old.get("dynamic", {}),
        "cases": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, args.out)
    print("record: wrote %d cases to %s" % (len(results), args.out),
          file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
