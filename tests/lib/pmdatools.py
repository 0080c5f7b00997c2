# SPDX-License-Identifier: MIT
"""pmdatools.py - bpftraced as the socket PMDA (domain 151) of a pmcd: what
test_pmda.py, test_archive.py and tests/versions/pcp7_pmda.py share.

    run()             a command's (exit code, stdout and stderr as text)
    pcp_env()         PCP's variables from pcp.env
    pminfo_ok()       the local pmcd answers pminfo
    pminfo_values()   {instance name or None: value text} from pminfo -f
    as_json()         those value texts as REST's JSON values
    PmcdFiles         pmcd.conf and the PMNS root: snapshot, restore()
    pmda_daemon()     a bpftraced in PMDA mode on a socket of its own
    INSTALL, REMOVE   packaging/pcp/Install and Remove
    SCRIPT_A, SCRIPT_B  two fake-bpftrace scripts (map and scalar)

The REST side is btd.Client's (named_values() answers in pminfo's shape).
Whoever installs the PMDA holds btd.pmcd_lock(exclusive=True).
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import btd  # noqa: E402

INSTALL = os.path.join(btd.REPO_ROOT, "packaging", "pcp", "Install")
REMOVE = os.path.join(btd.REPO_ROOT, "packaging", "pcp", "Remove")
SCRIPT_A = ("// name: pmdaone\n// fixture: map_string_key\n// fake: hold\n"
            "tracepoint:raw_syscalls:sys_enter { @bycomm[comm] = count(); }")
SCRIPT_B = ("// name: pmdatwo\n// fixture: scalar_count\n// fake: hold\n"
            "tracepoint:raw_syscalls:sys_enter { @calls = count(); }")


def run(argv, timeout=30, **kw):
    """(exit code, stdout and stderr as text); -1 and the error when argv
    cannot run or outlives timeout seconds."""
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, **kw)
        return r.returncode, r.stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def pcp_env():
    """PCP's variables from pcp.env (PCP_RUN_DIR, PCP_PMCDCONF_PATH...),
    None without it."""
    rc, out = run(["/bin/sh", "-c", ". ${PCP_DIR}/etc/pcp.env && env"])
    if rc != 0:
        return None
    return dict(line.split("=", 1) for line in out.splitlines()
                if line.startswith("PCP_") and "=" in line)


def pminfo_ok():
    return run(["pminfo", "-f", "pmcd.version"], timeout=10)[0] == 0


def parse_pminfo(out):
    """{instance name or None: value text} of pminfo -f's text."""
    vals = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("inst ["):
            # inst [0 or "bash"] value 12
            name_part = line[line.index(" or ") + 4:line.index("]")]
            vals[json.loads(name_part)] = line[line.index("] value ") + 8:]
        elif line.startswith("value "):
            vals[None] = line[6:]
    return vals


def pminfo_values(name, run=run):
    """{instance name or None: value text} from pminfo -f NAME, None when
    it has no value; run(argv, timeout=) runs pminfo (another root's)."""
    rc, out = run(["pminfo", "-f", name], timeout=10)
    if rc != 0 or "value" not in out:
        return None
    return parse_pminfo(out)


def as_json(vals):
    """pminfo prints strings quoted and numbers bare: make them JSON."""
    out = {}
    for k, v in (vals or {}).items():
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def read(path):
    """A file's bytes."""
    with open(path, "rb") as f:
        return f.read()


class PmcdFiles:
    """pmcd.conf and the PMNS root of env (pcp_env()) as they are now;
    restore() puts back what changed since."""

    def __init__(self, env):
        self.env = env
        self.conf = env.get("PCP_PMCDCONF_PATH", "/etc/pcp/pmcd/pmcd.conf")
        self.pmns = os.path.join(env.get("PCP_VAR_DIR", "/var/lib/pcp"),
                                 "pmns", "root")
        self.conf_before = read(self.conf)
        self.pmns_before = read(self.pmns)

    def restore(self, tap):
        """Rewrite what differs, then have pmcd (SIGHUP) read it again,
        and wait until it answers."""
        changed = False
        for path, before in ((self.conf, self.conf_before),
                             (self.pmns, self.pmns_before)):
            if read(path) != before:
                with open(path, "wb") as g:
                    g.write(before)
                changed = True
        if changed:
            tap.diag("restored pmcd.conf / PMNS root after a failure")
            run([os.path.join(self.env.get("PCP_BINADM_DIR",
                                           "/usr/lib/pcp/bin"),
                              "pmsignal"), "-a", "-s", "HUP", "pmcd"])
        btd.wait_for(pminfo_ok, 10)


def conf_line(sock):
    """The pmcd.conf line Install writes for a bpftraced on sock."""
    return "bpftrace\t151\tsocket\tunix\t%s" % sock


def pmda_daemon(sock, bpftrace=btd.FAKE_BPFTRACE, **kw):
    """bpftraced with --pmda on at sock, loopback control, that bpftrace
    (fake-bpftrace reads $BT_SHARED's fixtures); kw to btd.Daemon."""
    return btd.Daemon(["--control", "loopback", "--pmda", "on",
                       "--pmda-socket", sock, "--bpftrace", bpftrace],
                      env={"BT_SHARED": btd.shared_dir()}, **kw)
