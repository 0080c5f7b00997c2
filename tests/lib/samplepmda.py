# SPDX-License-Identifier: MIT
"""samplepmda.py - PCP's sample PMDA in the local pmcd for a test.

    with samplepmda.installed() as why_not:
        if why_not: skip(why_not)

Installs it only when it is absent and removes it again when the last
test using it is done, putting /etc/pcp/pmcd/pmcd.conf back byte for
byte; never removes one that was there before the tests. Yields None
when sample.* answers, else the reason.

make check -j runs several of these tests side by side, so the install
is shared between them (a test must not remove the PMDA another one is
still reading):
  - META_LOCK (exclusive) serialises install and removal decisions;
  - every user holds USERS_LOCK shared while it uses the PMDA, so the
    releasing test removes it only when it can take USERS_LOCK exclusive
    without waiting (nobody else uses it);
  - MARKER holds pmcd.conf's bytes from before the install and exists
    only while a test's install is in place: a PMDA without a marker was
    there before the tests and is never removed.
Install and Remove edit pmcd.conf and signal pmcd, so each runs under
btd.pmcd_lock(exclusive=True) (test_pmda.py and test_archive.py snapshot
pmcd.conf under that lock). Take this before btd.pmcd_lock(), never
inside it.
"""

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import btd  # noqa: E402

PMDA_DIR = "/var/lib/pcp/pmdas/sample"
PMCD_CONF = "/etc/pcp/pmcd/pmcd.conf"
_TMP = tempfile.gettempdir()
META_LOCK = os.path.join(_TMP, "bpftraced-tests-sample.lock")
USERS_LOCK = os.path.join(_TMP, "bpftraced-tests-sample.users")
MARKER = os.path.join(_TMP, "bpftraced-tests-sample.installed")


def present():
    pminfo = shutil.which("pminfo")
    if pminfo is None:
        return False
    r = subprocess.run([pminfo, "-f", "sample.long.one"],
                       capture_output=True, timeout=30)
    return r.returncode == 0 and b"value 1" in r.stdout


@contextlib.contextmanager
def _flock(path, mode):
    f = open(path, "a")
    try:
        fcntl.flock(f, mode)
        yield f
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def _install():
    """Install under META_LOCK; returns None or the reason it failed."""
    if os.geteuid() != 0 or not os.access(os.path.join(PMDA_DIR, "Install"),
                                          os.X_OK):
        return "sample PMDA absent and cannot be installed here"
    with btd.pmcd_lock(exclusive=True):
        with open(PMCD_CONF, "rb") as f:
            saved = f.read()
        with open(MARKER, "wb") as f:
            f.write(saved)
        subprocess.run(["./Install"], cwd=PMDA_DIR, input=b"",
                       capture_output=True, timeout=300)
    return None if present() else "sample PMDA did not install"


def _remove():
    """Remove under META_LOCK and restore pmcd.conf from MARKER."""
    with open(MARKER, "rb") as f:
        saved = f.read()
    with btd.pmcd_lock(exclusive=True):
        subprocess.run(["./Remove"], cwd=PMDA_DIR, capture_output=True,
                       timeout=300)
        with open(PMCD_CONF, "rb") as f:
            now = f.read()
        if now != saved:
            with open(PMCD_CONF, "wb") as f:
                f.write(saved)
    os.unlink(MARKER)


def _release():
    with _flock(META_LOCK, fcntl.LOCK_EX):
        if not os.path.exists(MARKER):
            return
        with open(USERS_LOCK, "a") as u:
            try:
                fcntl.flock(u, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return          # another test still uses it: it removes
            try:
                _remove()
            finally:
                fcntl.flock(u, fcntl.LOCK_UN)


@contextlib.contextmanager
def installed():
    users = open(USERS_LOCK, "a")
    try:
        with _flock(META_LOCK, fcntl.LOCK_EX):
            why = None if present() else _install()
            fcntl.flock(users, fcntl.LOCK_SH)
        try:
            yield why
        finally:
            fcntl.flock(users, fcntl.LOCK_UN)
            _release()
    finally:
        users.close()


def main(argv):
    """samplepmda.py hold CMD [ARG...]: CMD runs while the sample PMDA is
    in the local pmcd (installed and removed around it as for a test);
    exits with CMD's status. For a CMD that cannot install it itself:
    tests/versions/pcp7.sh runs its tests in a pid namespace, where
    Install's SIGHUP cannot reach the local pmcd."""
    if len(argv) < 3 or argv[1] != "hold":
        sys.stderr.write("usage: samplepmda.py hold CMD [ARG...]\n")
        return 2
    with installed() as why:
        if why:
            sys.stderr.write("samplepmda: %s\n" % why)
        return subprocess.call(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
