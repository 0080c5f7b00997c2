# SPDX-License-Identifier: MIT
"""samplepmda.py - PCP's sample PMDA in the local pmcd for a test.

    with samplepmda.installed() as why_not:
        if why_not: skip(why_not)

Installs it only when it is absent and then removes it again, putting
/etc/pcp/pmcd/pmcd.conf back byte for byte; never removes one that was
there before. Yields None when sample.* answers, else the reason.
"""

import contextlib
import os
import shutil
import subprocess

PMDA_DIR = "/var/lib/pcp/pmdas/sample"
PMCD_CONF = "/etc/pcp/pmcd/pmcd.conf"


def present():
    pminfo = shutil.which("pminfo")
    if pminfo is None:
        return False
    r = subprocess.run([pminfo, "-f", "sample.long.one"],
                       capture_output=True, timeout=30)
    return r.returncode == 0 and b"value 1" in r.stdout


@contextlib.contextmanager
def installed():
    if present():
        yield None
        return
    if os.geteuid() != 0 or not os.access(os.path.join(PMDA_DIR, "Install"),
                                          os.X_OK):
        yield "sample PMDA absent and cannot be installed here"
        return
    with open(PMCD_CONF, "rb") as f:
        saved = f.read()
    try:
        subprocess.run(["./Install"], cwd=PMDA_DIR, input=b"",
                       capture_output=True, timeout=300)
        yield None if present() else "sample PMDA did not install"
    finally:
        subprocess.run(["./Remove"], cwd=PMDA_DIR, capture_output=True,
                       timeout=300)
        with open(PMCD_CONF, "rb") as f:
            now = f.read()
        if now != saved:
            with open(PMCD_CONF, "wb") as f:
                f.write(saved)
