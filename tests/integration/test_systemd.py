#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_systemd.py - packaging/systemd/bpftraced.service (TAP).

`systemd-analyze verify` must be silent (the unit's ExecStart pointed at
the built binary, its Documentation= pages found through MANPATH); the
unit is Type=notify with the hardening the issue asks for, and its
CapabilityBoundingSet is exactly src/lib/privs.c's keep_caps (what bpftrace
needs) plus pmda_caps and the two bpftraced needs before it drops them
(CAP_SETPCAP, CAP_NET_BIND_SERVICE). Skips without systemd-analyze.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

SRC = os.environ.get("BT_SRCDIR") or btd.REPO_ROOT
UNIT = os.path.join(SRC, "packaging", "systemd", "bpftraced.service")
BIN = btd.default_binary()
tap = btd.Tap()


def directives(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def caps_of(name, text):
    m = re.search(r"%s\[\] = \{(.*?)\};" % name, text, re.S)
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S) if m else ""
    return set(re.findall(r"CAP_[A-Z_]+", body))


def main():
    with open(UNIT) as f:
        text = f.read()
    d = directives(text)
    tap.ok(d.get("Type") == ["notify"], "Type=notify", d.get("Type"))
    for k, v in (("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                 ("NoNewPrivileges", "yes"),
                 ("StateDirectory", "bpftraced")):
        tap.ok(d.get(k) == [v], "%s=%s" % (k, v), d.get(k))
    tap.ok(d.get("ProtectHome", [""])[0] in ("yes", "read-only", "tmpfs"),
           "ProtectHome is set", d.get("ProtectHome"))
    exe = d.get("ExecStart", [""])[0].split()
    tap.ok(exe[:3] == ["/usr/sbin/bpftraced", "--config",
                       "/etc/bpftraced/bpftraced.conf"],
           "ExecStart runs the installed binary with the packaged config",
           exe)
    unit_caps = set()
    for v in d.get("CapabilityBoundingSet", []):
        unit_caps |= set(v.split())
    with open(os.path.join(SRC, "src", "lib", "privs.c")) as f:
        privs = f.read()
    keep, pmda = caps_of("keep_caps", privs), caps_of("pmda_caps", privs)
    want = keep | pmda | {"CAP_SETPCAP", "CAP_NET_BIND_SERVICE"}
    tap.ok(len(keep) >= 8 and unit_caps == want,
           "CapabilityBoundingSet = privs.c keep_caps + pmda_caps + "
           "CAP_SETPCAP, CAP_NET_BIND_SERVICE",
           (sorted(unit_caps - want), sorted(want - unit_caps)))
    sa = shutil.which("systemd-analyze")
    if sa is None:
        tap.skip("systemd-analyze verify", "systemd-analyze not installed")
        tap.done()
    tmp = tempfile.mkdtemp(prefix="btd-unit-")
    try:
        for sec, page in (("8", "bpftraced.8"), ("5", "bpftraced.conf.5")):
            os.makedirs(os.path.join(tmp, "man", "man" + sec))
            shutil.copy(os.path.join(SRC, "man", page),
                        os.path.join(tmp, "man", "man" + sec))
        u = os.path.join(tmp, "bpftraced.service")
        with open(u, "w") as f:
            f.write(text.replace("/usr/sbin/bpftraced",
                                 os.path.abspath(BIN)))
        env = dict(os.environ, MANPATH=os.path.join(tmp, "man"),
                   SYSTEMD_LOG_LEVEL="notice")
        p = subprocess.run([sa, "verify", u], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, timeout=120)
        out = p.stdout.decode(errors="replace")
        # outside a booted systemd, verify may only note that it is not
        # PID 1 / has no bus; anything about our unit is a failure
        ours = [ln for ln in out.splitlines() if "bpftraced" in ln]
        tap.ok(p.returncode == 0 and not ours,
               "systemd-analyze verify is clean", out[-3000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
