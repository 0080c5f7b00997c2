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

import json
import os
import shutil
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
CH = os.environ.get("PCP7_CHROOT", "")
SOCK_IN = "/run/pcp/bpftraced.socket"       # as pmcd (in the root) sees it
INSTALL = os.path.join(btd.REPO_ROOT, "packaging", "pcp", "Install")
REMOVE = os.path.join(btd.REPO_ROOT, "packaging", "pcp", "Remove")
SCRIPT_A = ("// name: pmdaone\n// fixture: map_string_key\n// fake: hold\n"
            "tracepoint:raw_syscalls:sys_enter { @bycomm[comm] = count(); }")
SCRIPT_B = ("// name: pmdatwo\n// fixture: scalar_count\n// fake: hold\n"
            "tracepoint:raw_syscalls:sys_enter { @calls = count(); }")


def sid(*argv, timeout=30):
    """Run argv in the sid root (its tools, its libpcp 7.2.2)."""
    cmd = ["chroot", CH, "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME=/root", "PMCD_PORT=%s" % os.environ.get(
               "PCP7_PMCD_PORT", "")] + list(argv)
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return r.returncode, r.stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


wait_for = btd.wait_for


def pminfo_values(name):
    """{instance name or None: value text} from the sid pminfo -f."""
    rc, out = sid("pminfo", "-f", name, timeout=10)
    if rc != 0 or "value" not in out:
        return None
    vals = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("inst ["):
            name_part = line[line.index(" or ") + 4:line.index("]")]
            vals[json.loads(name_part)] = line[line.index("] value ") + 8:]
        elif line.startswith("value "):
            vals[None] = line[6:]
    return vals


def as_json(vals):
    out = {}
    for k, v in (vals or {}).items():
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


class Rest:
    def __init__(self, d):
        self.d = d
        self.ctx = self.getj("/pmapi/context", polltimeout=120)["context"]

    def getj(self, path, **params):
        _, _, body = btd.http("GET", self.d.url(
            path + "?" + urllib.parse.urlencode(params)), timeout=15.0)
        try:
            return json.loads(body)
        except ValueError:
            return {}

    def store(self, name, value):
        return self.getj("/pmapi/store", context=self.ctx, name=name,
                         value=value)

    def values(self, name):
        f = self.getj("/pmapi/fetch", context=self.ctx, names=name)
        v = f.get("values", [])
        if not v:
            return None
        m = self.getj("/pmapi/metric", context=self.ctx, names=name)
        names = {}
        if m.get("metrics") and m["metrics"][0].get("indom"):
            ind = self.getj("/pmapi/indom", context=self.ctx,
                            indom=m["metrics"][0]["indom"])
            names = {i["instance"]: i["name"]
                     for i in ind.get("instances", [])}
        return {names.get(i["instance"]) if i["instance"] is not None
                else None: i["value"] for i in v[0]["instances"]}


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
    with open(conf, "rb") as f:
        conf_before = f.read()
    d = btd.Daemon(["--control", "loopback", "--pmda", "on",
                    "--pmda-socket", CH + SOCK_IN,
                    "--bpftrace", btd.FAKE_BPFTRACE],
                   env={"BT_SHARED": btd.shared_dir()})
    try:
        checks(d, conf)
    finally:
        d.stop()
    rc, out = sid(copy_in(REMOVE))
    with open(conf, "rb") as f:
        tap.ok(rc == 0 and f.read() == conf_before,
               "Remove (in the sid root) restores pmcd.conf byte for byte",
               out)
    tap.ok(wait_for(lambda: sid("pminfo", "bpftrace")[0] != 0, 10),
           "after Remove the sid pmcd has no bpftrace names")
    tap.done()


def checks(d, conf):
    rc, out = sid(copy_in(INSTALL), SOCK_IN)
    with open(conf) as f:
        text = f.read()
    tap.ok(rc == 0 and "bpftrace\t151\tsocket\tunix\t%s" % SOCK_IN in text,
           "Install (in the sid root: pcp 7.2.2's pmnsadd, pmsignal) adds "
           "the socket agent", out)
    got = wait_for(lambda: pminfo_values("bpftrace.info.version"), 15)
    tap.ok(got is not None, "pcp 7.2.2's pmcd connects: pminfo -f "
           "bpftrace.info.version = %s" % (got or {}).get(None),
           d.stderr_text()[-600:])
    r = Rest(d)
    j = r.store("bpftrace.control.register", SCRIPT_A)
    tap.ok(j.get("success") is True, "REST register of pmdaone", j)
    name = "bpftrace.scripts.pmdaone.data.bycomm"
    got = wait_for(lambda: pminfo_values(name), 10)
    rest = r.values(name)
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
        (r.values("bpftrace.scripts.pmdatwo.data.calls") or {}).get(None))
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
