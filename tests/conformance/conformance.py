#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""conformance.py - pmproxy 6.0.3 /pmapi shape conformance test (TAP).

    tests/conformance/conformance.py [--reference live|fixture|auto]
                                     [--pmproxy-version 6.0.3|7.2.2]
                                     [--self-test] [--case ID ...] [-v]

Starts bpftraced (tests/lib/btd.py Daemon; binary from $BPFTRACED or
src/bpftraced, extra arguments from $BPFTRACED_ARGS) and runs every case
of cases.py against it, comparing the shape of each answer with real
pmproxy's: live pmproxy when one answers on $PMPROXY_URL (default
http://127.0.0.1:44322), else the recorded fixtures/pmproxy-6.0.3.json.
With a live pmproxy, its answers are also compared with the fixture and
any drift is reported (as a TODO test: it does not fail the run).

One TAP test per case; exit status 1 on any shape difference.  Without
the bpftraced binary it prints "1..0 # SKIP bpftraced not built".

--self-test compares live pmproxy against the fixture (no bpftraced
needed): a check of the comparator and of the recording.

--pmproxy-version 7.2.2 (conformance_pmproxy7.py) compares with pmproxy
7.2.2 instead: fixtures/pmproxy-7.2.2.json, the deviations of
cases.deviations_for("7.2.2"), and live only at $PMPROXY7_URL (set by
tests/versions/pcp7.sh conformance, which runs the sid root's pmproxy);
the host's pmproxy on $PMPROXY_URL is never taken for a 7.2.2.
"""

import argparse
import json
import os
import shlex
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
import cases  # noqa: E402
import samplepmda  # noqa: E402
import shape  # noqa: E402

VERSIONS = ("6.0.3", "7.2.2")


def fixture_path(version):
    return os.path.join(HERE, "fixtures", "pmproxy-%s.json" % version)


FIXTURE = fixture_path("6.0.3")


def pmproxy_live(url, version=None):
    """True when a real pmproxy answers at url (not, say, a bpftraced
    left listening on pmproxy's port: pmproxy signs its error pages),
    and, with version, when it signs them with that version."""
    if not url:
        return False
    try:
        st, _, body = btd.http("GET", url.rstrip("/") + "/pmapi/context",
                               timeout=3.0)
        if st != 200 or b'"context"' not in body:
            return False
        _, _, body = btd.http("GET", url.rstrip("/") + "/pmapi/bogus",
                              timeout=3.0)
    except Exception:
        return False
    if version is not None:
        return ("<i>pmproxy/%s</i>" % version).encode() in body
    return b"<i>pmproxy/" in body


PMCD_DOWN = ("IPC protocol failure", "cannot reconnect context: ",
             "cannot connect to PMCD: ")


def pmcd_gone(rec):
    """bpftraced answered one of pmproxy's "pmcd is gone" texts."""
    return any(t in rec.get("body", "") for t in PMCD_DOWN)


def wait_pmcd(srv, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        st, _, _, _ = srv.raw("GET", "/pmapi/fetch?names=hinv.ncpu")
        if st == 200:
            return True
        time.sleep(0.5)
    return False


def load_fixture(path):
    with open(path) as f:
        return json.load(f)


def diag_pair(tap, ref_name, ref, cand_name, cand):
    tap.diag("  %s: %s" % (ref_name, shape.summary(ref, 200)))
    tap.diag("  %s: %s" % (cand_name, shape.summary(cand, 200)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", choices=("auto", "live", "fixture"),
                    default=os.environ.get("CONFORMANCE_REFERENCE", "auto"))
    ap.add_argument("--self-test", action="store_true",
                    help="compare live pmproxy with the fixture only")
    ap.add_argument("--case", action="append", default=[],
                    help="run only this case id (repeatable)")
    ap.add_argument("--pmproxy-version", choices=VERSIONS,
                    default=os.environ.get("CONFORMANCE_PMPROXY", "6.0.3"),
                    help="the pmproxy compared with (default %(default)s)")
    ap.add_argument("--fixture", default=None,
                    help="default fixtures/pmproxy-VERSION.json")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print both answers for passing cases too")
    args = ap.parse_args()

    if args.fixture is None:
        args.fixture = fixture_path(args.pmproxy_version)
    if args.pmproxy_version == "6.0.3":
        pmproxy_url = os.environ.get("PMPROXY_URL", "http://127.0.0.1:44322")
        live_version = None
    else:
        pmproxy_url = os.environ.get("PMPROXY7_URL", "")
        live_version = args.pmproxy_version
    args.deviations = cases.deviations_for(args.pmproxy_version)
    selected = [c for c in cases.CASES
                if not args.case or c["id"] in args.case]
    tap = btd.Tap()

    fixture = load_fixture(args.fixture) if os.path.exists(args.fixture) \
        else None
    fx_subst = fixture["subst"] if fixture else cases.SUBST_PMPROXY

    # ---- self-test: live pmproxy versus its own recording -----------------
    if args.self_test:
        if not fixture:
            btd.Tap.skip_all("no fixture %s" % args.fixture)
        if not pmproxy_live(pmproxy_url, live_version):
            btd.Tap.skip_all("no pmproxy %s answering at %s" % (
                args.pmproxy_version, pmproxy_url or "(no PMPROXY7_URL)"))
        live = shape.Server("pmproxy", pmproxy_url, cases.SUBST_PMPROXY)
        tap.diag("self-test: live pmproxy %s vs fixture recorded %s"
                 % (pmproxy_url, fixture.get("recorded")))
        for c in selected:
            ref = fixture["cases"].get(c["id"])
            if ref is None:
                tap.ok(False, c["id"], "case missing from the fixture: "
                       "re-run record.py")
                continue
            got = live.run(c)
            diffs, notes = shape.compare(ref, got, c, fx_subst,
                                         cases.SUBST_PMPROXY)
            tap.ok(not diffs, c["id"],
                   "\n".join(["  " + d for d in diffs + notes]) or None)
            if diffs or args.verbose:
                diag_pair(tap, "fixture", ref, "live", got)
        tap.done()

    # ---- the real test: bpftraced versus pmproxy ---------------------------
    binary = btd.default_binary()
    if not os.access(binary, os.X_OK):
        btd.Tap.skip_all("bpftraced not built")

    use_live = False
    if args.reference in ("auto", "live"):
        use_live = pmproxy_live(pmproxy_url, live_version)
        if args.reference == "live" and not use_live:
            print("Bail out! no pmproxy %s answering at %s" % (
                args.pmproxy_version, pmproxy_url or "(no PMPROXY7_URL)"))
            return 1
    if not use_live and not fixture:
        print("Bail out! no live pmproxy and no fixture %s" % args.fixture)
        return 1

    # the sample PMDA for the cases that name sample.* (installed when
    # absent, removed after); tests that stop pmcd (test_pmcd.py) wait
    # until this run is over
    with samplepmda.installed() as why, btd.pmcd_lock():
        if why:
            tap.diag("sample.* cases compare errors: %s" % why)
        return run_cases(args, tap, fixture, fx_subst, selected,
                         pmproxy_url, use_live)


def run_cases(args, tap, fixture, fx_subst, selected, pmproxy_url,
              use_live):
    extra = shlex.split(os.environ.get("BPFTRACED_ARGS", ""))
    try:
        # the default --pmcd: the local pmcd when it answers, for the
        # "pmcd" cases (same pmcd metric names on both sides)
        daemon = btd.Daemon(args=extra, pmcd=None)
    except btd.DaemonError as e:
        print("Bail out! cannot start bpftraced: %s" %
              " ".join(str(e).split()))
        sys.stderr.write(str(e) + "\n")
        return 1

    ours = shape.Server("bpftraced", daemon.base, cases.SUBST_BPFTRACED)
    live = shape.Server("pmproxy", pmproxy_url, cases.SUBST_PMPROXY) \
        if use_live else None
    ref_name = "pmproxy(live)" if use_live else "pmproxy(fixture)"
    ref_subst = cases.SUBST_PMPROXY if use_live else fx_subst
    tap.diag("bpftraced %s on %s; reference: pmproxy %s %s" % (
        btd.default_binary(), daemon.base, args.pmproxy_version,
        pmproxy_url if use_live else
        "%s (recorded %s)" % (os.path.relpath(args.fixture),
                              fixture.get("recorded"))))

    # Cases marked "pmcd" name pmcd's metrics on both sides: they need a
    # bpftraced with a pmcd behind it (the local one, found at start).
    # Without one each is reported as a SKIP with the reason, not a
    # failure: bpftraced without pmcd answers "Unknown metric name".
    st, _, _ = btd.http("GET", daemon.url("/pmapi/metric?name=hinv.ncpu"))
    ours_pmcd = st == 200
    if not ours_pmcd and any(c.get("pmcd") for c in selected):
        tap.diag("bpftraced has no pmcd (none answered on localhost at "
                 "start): the pmcd cases are skipped")
    drift, all_notes, failed_ids = [], {}, []
    try:
        for c in selected:
            if c.get("pmcd") and not ours_pmcd:
                tap.skip("%s: %s %s" % (c["id"], c.get("method", "GET"),
                                        c["target"]),
                         "bpftraced has no pmcd")
                continue
            this_ref_name, this_ref_subst = ref_name, ref_subst
            if use_live:
                ref = live.run(c)
                fx = fixture["cases"].get(c["id"]) if fixture else None
                if fx is not None and "error" not in ref:
                    d, _ = shape.compare(fx, ref, c, fx_subst,
                                         cases.SUBST_PMPROXY)
                    if d:
                        drift.append((c["id"], d))
                elif fixture:
                    drift.append((c["id"], ["not in the fixture"]
                                  if fx is None else [ref["error"]]))
                if "error" in ref and fx is not None:
                    # live pmproxy failed (it crashes easily): fall back
                    tap.diag("  live pmproxy failed for %s (%s); using the "
                             "fixture" % (c["id"], ref["error"]))
                    ref, this_ref_name, this_ref_subst = \
                        fx, "pmproxy(fixture)", fx_subst
            else:
                ref = fixture["cases"].get(c["id"])
                if ref is None:
                    tap.ok(False, c["id"], "  case missing from the fixture:"
                           " re-run record.py")
                    failed_ids.append(c["id"])
                    continue
            got = ours.run(c)
            if pmcd_gone(got):
                # pmcd restarted under this case (another test or a
                # worker restarting it): wait for it, run the case again
                wait_pmcd(ours)
                got = ours.run(c)
            # a pmcd case names the same metrics on both sides: compared
            # literally, without the per-server name substitutions
            diffs, notes = shape.compare(
                ref, got, c, {} if c.get("pmcd") else this_ref_subst,
                {} if c.get("pmcd") else cases.SUBST_BPFTRACED)
            remaining, allowed = shape.apply_deviation(c["id"], diffs,
                                                       args.deviations)
            for n in notes:
                all_notes.setdefault(n.split(":")[0], []).append(c["id"])
            desc = "%s: %s %s" % (c["id"], c.get("method", "GET"), c["target"])
            lines = ["  " + d for d in remaining]
            if allowed:
                lines.append("  allowed deviation: %s" %
                             args.deviations[c["id"]]["reason"])
                lines += ["    (allowed) " + d for d in allowed]
            elif c["id"] in args.deviations and not remaining:
                lines.append("  note: deviation listed for this case but "
                             "not needed (answers already match)")
            if not tap.ok(not remaining, desc, "\n".join(lines) or None):
                failed_ids.append(c["id"])
                diag_pair(tap, this_ref_name, ref, "bpftraced", got)
            elif args.verbose:
                diag_pair(tap, this_ref_name, ref, "bpftraced", got)
            if not daemon.alive():
                break
    finally:
        alive = daemon.alive()
        tap.ok(alive, "bpftraced still running after the cases",
               None if alive else "stderr:\n" + daemon.stderr_text()[-3000:])
        rc = daemon.stop(cleanup=False)
        tap.ok(rc == 0, "bpftraced exits 0 on SIGTERM (got %s)" % rc,
               None if rc == 0 else daemon.stderr_text()[-2000:])
        daemon.stop()

    if use_live and fixture:
        lines = []
        for cid, d in drift:
            lines.append("  %s:" % cid)
            lines += ["    " + x for x in d]
        if drift:       # a passing TODO would be an XPASS: make check fails
            tap.todo(False, "live pmproxy matches the recorded fixture",
                     "drift is informational; re-record with record.py",
                     "\n".join(lines))
        else:
            tap.ok(True, "live pmproxy matches the recorded fixture")
    if all_notes:
        tap.diag("transport notes (informational, not failures):")
        for k, ids in sorted(all_notes.items()):
            tap.diag("  %s differs in %d case(s): %s" % (
                k, len(ids), ", ".join(ids[:8]) +
                (", ..." if len(ids) > 8 else "")))
    if failed_ids:
        tap.diag("shape differences in %d case(s): %s" %
                 (len(failed_ids), " ".join(failed_ids)))
    return tap.done(exit=False)


if __name__ == "__main__":
    sys.exit(main())
