#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pcp7_pmda.py - bpftraced as a PMDA of pcp 7.2.2's pmcd (TAP).

    tests/versions/pcp7.sh pmda

Run by pcp7.sh inside its namespaces, with the sid root's pmcd up
($PCP7_CHROOT, $PCP7_PMCD_PORT): bpftraced (the host build, the host's
libpcp via dlopen, tests/lib/fake-bpftrace) listens on the socket
/run/pcp/bpftraced.socket of the overlay; packaging/pcp/Install runs in
the sid root (pcp 7.2.2's pmnsadd, pmsignal); then the sid root's own
tools talk to it through its pmcd: pminfo (values equal to REST's),
pmstore (register, deregister, refused stores), pmlogger for 5 s and
pmrep -a / pmdumplog reading the archive; Remove restores pmcd.conf.
Without pcp7.sh's environment every check is skipped with the reason.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
import pmdatools  # noqa: E402
from pmdatools import (INSTALL, REMOVE, SCRIPT_A, SCRIPT_B,  # noqa: E402
                       as_json, conf_line, pmda_daemon, read)

tap = btd.Tap()
CH = os.environ.get("PCP7_CHROOT", "")
SOCK_IN = "/run/pcp/bpftraced.socket"       # as pmcd (in the root) sees it


def sid(*argv, timeout=30):
    """Run argv in the sid root (its tools, its libpcp 7.2.2)."""
    return pmdatools.run(
        ["chroot", CH, "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
         "HOME=/root", "PMCD_PORT=%s" % os.environ.get(
             "PCP7_PMCD_PORT", "")] + list(argv), timeout=timeout)


wait_for = btd.wait_for


def pminfo_values(name):
    """{instance name or None: value text} from the sid pminfo -f."""
    return pmdatools.pminfo_values(
        name, run=lambda argv, timeout: sid(*argv, timeout=timeout))


def copy_in(path):
    """A packaging script copied into the root's /tmp: its path there."""
    dst = "/tmp/bpftraced-" + os.path.basename(path)
    shutil.copy(path, CH + dst)
    os.chmod(CH + dst, 0o755)
    return dst


def main():
    if not os.access(btd.default_binary(), os.X_OK):
        btd.Tap.skip_all("bpftraced not built (%s)" % btd.default_binary())
    if not CH or not os.path.isdir(CH + "/run/pcp"):
        btd.Tap.skip_all("no pcp 7 root running: use tests/versions/pcp7.sh "
                         "pmda")
    if btd.shared_dir() is None:
        btd.Tap.skip_all("no $BT_SHARED fixtures for fake-bpftrace")
    rc, out = sid("pminfo", "-f", "pmcd.version")
    version = out.split('value "')[-1].split('"')[0] if rc == 0 else "?"
    tap.ok(rc == 0 and version.startswith("7."),
           "the sid pmcd answers: pmcd.version %s" % version, out)
    conf = CH + "/etc/pcp/pmcd/pmcd.conf"
    conf_before = read(conf)
    d = pmda_daemon(CH + SOCK_IN)
    try:
        checks(d, conf)
    finally:
        d.stop()
    rc, out = sid(copy_in(REMOVE))
    tap.ok(rc == 0 and read(conf) == conf_before,
           "Remove (in the sid root) restores pmcd.conf byte for byte", out)
    tap.ok(wait_for(lambda: sid("pminfo", "bpftrace")[0] != 0, 10),
           "after Remove the sid pmcd has no bpftrace names")
    tap.done()


def checks(d, conf):
    rc, out = sid(copy_in(INSTALL), SOCK_IN)
    with open(conf) as f:
        text = f.read()
    tap.ok(rc == 0 and conf_line(SOCK_IN) in text,
           "Install (in the sid root: pcp 7.2.2's pmnsadd, pmsignal) adds "
           "the socket agent", out)
    got = wait_for(lambda: pminfo_values("bpftrace.info.version"), 15)
    tap.ok(got is not None, "pcp 7.2.2's pmcd connects: pminfo -f "
           "bpftrace.info.version = %s" % (got or {}).get(None),
           d.stderr_text()[-600:])
    r = btd.Client(d)
    _, j = r.store("bpftrace.control.register", SCRIPT_A)
    tap.ok(j.get("success") is True, "REST register of pmdaone", j)
    name = "bpftrace.scripts.pmdaone.data.bycomm"
    got = wait_for(lambda: pminfo_values(name), 10)
    rest = r.named_values(name)
    tap.ok(got is not None and as_json(got) == rest and rest,
           "sid pminfo -f %s: the same instances and values as REST (%d)"
           % (name, len(rest or {})), "pminfo %r rest %r" % (got, rest))
    rc, out = sid("pminfo", "-dT", name)
    tap.ok(rc == 0 and "Data Type: 64-bit unsigned int" in out and
           "Semantics: counter" in out and "InDom: 151." in out,
           "sid pminfo -dT: descriptor and help of a map metric", out)
    rc, out = sid("pminfo", "-l", "bpftrace.control.register")
    tap.ok('"agent":"bpftrace"' in out and '"metrictype":"control"' in out,
           "sid pminfo -l: labels", out)

    rc, out = sid("pmstore", "bpftrace.control.register", SCRIPT_B)
    tap.ok(rc == 0, "sid pmstore bpftrace.control.register registers a "
           "script", out + d.stderr_text()[-400:])
    got = wait_for(lambda: (pminfo_values(
        "bpftrace.scripts.pmdatwo.data.calls") or {}).get(None), 10)
    tap.ok(got is not None and got.isdigit() and str(
        (r.named_values("bpftrace.scripts.pmdatwo.data.calls") or
         {}).get(None))
        == got, "its metric appears without restarting pmcd, as REST: %s"
        % got)
    rc, out = sid("pmstore", "bpftrace.control.register",
                  "// name: x y\nthis is not bpftrace")
    tap.ok(rc != 0 and "Bad input" in out, "a refused script: "
           "PM_ERR_BADSTORE", out)
    rc, out = sid("pmstore", "bpftrace.info.version", "x")
    tap.ok(rc != 0 and "permission" in out.lower(),
           "a read-only metric refuses stores", out)
    rc, out = sid("pmstore", "bpftrace.control.deregister", "pmdatwo")
    gone = wait_for(lambda: sid("pminfo", "bpftrace.scripts.pmdatwo")[0]
                    != 0, 5)
    tap.ok(rc == 0 and gone, "sid pmstore deregister removes the metrics",
           out)

    logged(name)


def logged(name):
    """pmlogger (sid) records for 5 s; pmrep -a and pmdumplog read it."""
    tmp = "/tmp/bpftraced-pmlogger"
    os.makedirs(CH + tmp, exist_ok=True)
    with open(CH + tmp + "/config", "w") as f:
        f.write("log mandatory on 1 sec {\n\t%s\n\tbpftrace.info.version\n"
                "\tbpftrace.info.scripts_total\n}\n" % name)
    rc, out = sid("pmlogger", "-c", tmp + "/config", "-s", "5", "-t", "1sec",
                  "-l", tmp + "/log", tmp + "/arch", timeout=40)
    rc2, dump = sid("pmdumplog", tmp + "/arch", name)
    recs = dump.count(name)
    tap.ok(rc == 0 and rc2 == 0 and recs >= 3,
           "sid pmlogger records bpftrace metrics for 5 s; pmdumplog reads "
           "%d records" % recs, out + dump[-600:])
    # bycomm is a counter the fake bpftrace holds constant: pmrep shows
    # its rate, 0 (no value in the first row); scripts_total is instant
    rc, out = sid("pmrep", "-a", tmp + "/arch", "-z", "-o", "csv",
                  "-i", "bpftrace", "bpftrace.info.scripts_total", name)
    rows = [ln.split(",") for ln in out.splitlines()
            if ln and ln[0].isdigit()]
    full = [r for r in rows[1:] if r[1] != ""]
    tap.ok(rc == 0 and len(full) >= 3 and
           all(r[1:] == ["1", "0.000"] for r in full),
           "sid pmrep -a ARCHIVE: %d rows of scripts_total 1 and the "
           "counter's rate 0" % len(full), out[-800:])
    tap.diag("pmrep -a: %s" % (",".join(rows[-2]) if len(rows) > 1
                               else out[-300:]))


if __name__ == "__main__":
    main()
