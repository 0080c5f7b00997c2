#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_packaging.py - the Debian package, built, installed, run and
purged on this machine (TAP; a few minutes).

In a temporary copy of the tree (git's files, packaging/debian copied to
debian/): `dpkg-buildpackage -us -uc -b` builds the .deb; lintian reports
no error; the .deb holds the same files as `make install` with Debian's
paths plus the unit and /etc/default/bpftraced, and the RPM spec's %files
(packaging/rpm/bpftraced.spec) names the same; `dpkg -i` installs it
(postinst makes /var/lib/bpftraced 0700 without systemd), the installed
/usr/sbin/bpftraced starts with the packaged config on a free port and
serves a metric and /metrics, stops with exit 0, and `dpkg --purge`
leaves nothing behind. The machine is restored (purged) whatever happens.

Skips with the reason: BT_SKIP_PACKAGING=1, no dpkg-buildpackage, not
root, unmet build dependencies or bpftrace not installed, or a bpftraced
already installed (files in /usr/sbin, /etc or /var/lib it would touch).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

SRC = os.environ.get("BT_SRCDIR") or btd.REPO_ROOT
PKG = "bpftraced"
TOUCHED = ["/usr/sbin/bpftraced", "/usr/sbin/bpftraced-passwd",
           "/etc/bpftraced", "/etc/default/bpftraced", "/var/lib/bpftraced",
           "/lib/systemd/system/bpftraced.service",
           "/usr/share/bpftraced", "/usr/share/doc/bpftraced",
           "/etc/systemd/system/multi-user.target.wants/bpftraced.service",
           "/var/lib/systemd/deb-systemd-helper-enabled/bpftraced.service"
           ".dsh-also",
           "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target"
           ".wants/bpftraced.service"]
tap = btd.Tap()


def run(cmd, cwd=None, timeout=900, env=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode(errors="replace")


def preconditions():
    if os.environ.get("BT_SKIP_PACKAGING") == "1":
        return "BT_SKIP_PACKAGING=1"
    for tool in ("dpkg-buildpackage", "dpkg", "dh"):
        if shutil.which(tool) is None:
            return "%s not installed (apt-get install dpkg-dev debhelper)" \
                % tool
    if os.geteuid() != 0:
        return "needs root (dpkg -i)"
    rc, _ = run(["dpkg-query", "-W", "-f=${Status}", PKG])
    if rc == 0:
        _, st = run(["dpkg-query", "-W", "-f=${Status}", PKG])
        if "not-installed" not in st and st.strip():
            return "a bpftraced package is installed (%s)" % st.strip()
    there = [p for p in TOUCHED if os.path.lexists(p)]
    if there:
        return "would touch existing files: %s" % " ".join(there)
    rc, _ = run(["dpkg-query", "-W", "-f=${Status}", "bpftrace"])
    if rc != 0:
        return "bpftrace is not installed (the package depends on it)"
    rc, out = run(["dpkg-checkbuilddeps",
                   os.path.join(SRC, "packaging", "debian", "control")])
    if rc != 0:
        return "build dependencies: " + out.strip().splitlines()[-1]
    return None


def copy_tree(dst):
    """git's files (tracked and untracked, not ignored) or, outside git,
    the tree without build products."""
    rc, out = run(["git", "-C", SRC, "ls-files", "-co", "--exclude-standard",
                   "-z"])
    if rc == 0 and out:
        for rel in out.split("\0"):
            if not rel or not os.path.isfile(os.path.join(SRC, rel)):
                continue
            os.makedirs(os.path.join(dst, os.path.dirname(rel)),
                        exist_ok=True)
            shutil.copy2(os.path.join(SRC, rel), os.path.join(dst, rel))
    else:
        shutil.copytree(SRC, dst, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(
                            "*.o", "*.a", "*.log", "*.trs", "Makefile",
                            "config.status", "config.h", "autom4te.cache",
                            ".deps", "build-logs", "bpftraced",
                            "bpftraced-passwd"))
    shutil.copytree(os.path.join(SRC, "packaging", "debian"),
                    os.path.join(dst, "debian"))


def deb_files(deb):
    rc, out = run(["dpkg-deb", "-c", deb])
    files = set()
    for line in out.splitlines():
        name = line.split()[5] if len(line.split()) >= 6 else ""
        if line.startswith("d"):
            continue
        files.add(name.lstrip("."))
    return files


def spec_files(spec):
    """The spec's %files, macros expanded (rpmspec -P when there is one)."""
    text = None
    if shutil.which("rpmspec"):
        rc, out = run(["rpmspec", "-P", spec])
        if rc == 0:
            text = out
    if text is None:
        with open(spec) as f:
            text = f.read()
        for k, v in (("%{_sbindir}", "/usr/sbin"), ("%{_sysconfdir}", "/etc"),
                     ("%{_mandir}", "/usr/share/man"),
                     ("%{_datadir}", "/usr/share"),
                     ("%{_docdir}", "/usr/share/doc"),
                     ("%{_unitdir}", "/usr/lib/systemd/system"),
                     ("%{_localstatedir}", "/var"),
                     ("%{name}", "bpftraced")):
            text = text.replace(k, v)
    m = re.search(r"^%files\s*\n(.*?)(?=^%(?:changelog|post|postun|pre|"
                  r"preun|check|install|build|prep|description|package|"
                  r"files)\b|\Z)", text, re.S | re.M)
    files = set()
    for line in (m.group(1) if m else "").splitlines():
        line = line.strip()
        if re.match(r"%(dir|doc|license)\b", line) or line.startswith("#"):
            continue        # directories; docs named relative to the tree
        line = re.sub(r"%(config\(noreplace\)|attr\([^)]*\))\s*", "", line)
        if line.startswith("/"):
            files.add(line.split()[-1].rstrip("*"))
    return files


def norm(files, dist):
    """Compare the two packagings: drop distribution-specific paths."""
    out = set()
    for f in files:
        f = re.sub(r"\.gz$", "", f)
        if f.startswith("/usr/share/doc/") and not f.startswith(
                "/usr/share/doc/bpftraced/examples"):
            continue        # README, changelog, copyright: each its own
        f = f.replace("/usr/lib/systemd/system/", "/lib/systemd/system/")
        f = f.replace("/etc/sysconfig/bpftraced", "/etc/default/bpftraced")
        if f in ("/var/lib/bpftraced", "/etc/bpftraced"):
            continue        # directories: rpm lists them, dpkg makes them
        if f.endswith("bpftraced-passwd.8"):
            continue        # a man page link on Debian
        out.add(f)
    return out


def man_excluded():
    """dpkg drops man pages on minimal images (path-exclude)."""
    d = "/etc/dpkg/dpkg.cfg.d"
    for f in os.listdir(d) if os.path.isdir(d) else []:
        try:
            with open(os.path.join(d, f)) as fh:
                if re.search(r"^path-exclude[= ]/usr/share/man", fh.read(),
                             re.M):
                    return True
        except OSError:
            pass
    return False


def main():
    why = preconditions()
    if why:
        btd.Tap.skip_all(why)
    tmp = tempfile.mkdtemp(prefix="btd-pkg-")
    top = os.path.join(tmp, "bpftraced-src")
    installed = False
    daemon = None
    try:
        copy_tree(top)
        t0 = time.monotonic()
        env = dict(os.environ)
        for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ASAN_OPTIONS",
                  "UBSAN_OPTIONS", "CFLAGS", "LDFLAGS"):
            env.pop(k, None)
        rc, out = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=top,
                      env=env, timeout=1800)
        tap.ok(rc == 0, "dpkg-buildpackage -us -uc -b builds (%.0f s)" %
               (time.monotonic() - t0), None if rc == 0 else out[-4000:])
        debs = [f for f in os.listdir(tmp) if f.startswith(PKG + "_") and
                f.endswith(".deb")]
        if rc != 0 or len(debs) != 1:
            tap.ok(False, "one bpftraced .deb", os.listdir(tmp))
            return
        deb = os.path.join(tmp, debs[0])
        if shutil.which("lintian"):
            changes = [f for f in os.listdir(tmp) if f.endswith(".changes")]
            rc, out = run(["lintian", "--fail-on", "error",
                           os.path.join(tmp, changes[0])], timeout=900)
            errs = [ln for ln in out.splitlines() if ln.startswith("E:")]
            tap.ok(rc == 0 and not errs, "lintian: no errors",
                   out[-3000:] if errs or rc else None)
            if out.strip():
                tap.diag("lintian: " + " | ".join(
                    ln for ln in out.splitlines()
                    if not ln.startswith("running with root"))[:1500])
        else:
            tap.skip("lintian: no errors", "lintian not installed")
        rc, dep = run(["dpkg-deb", "-f", deb, "Depends"])
        tap.check(all(d in dep for d in ("bpftrace", "libmicrohttpd12",
                                      "libsqlite3-0", "libcrypt1")) and
                  "libpcp" not in dep,
                  "Depends: bpftrace and the linked shared libraries "
                  "(shlibs), not libpcp (loaded when used)", dep)
        rc, rec = run(["dpkg-deb", "-f", deb, "Recommends"])
        tap.check("libpcp3" in rec and "libpcp-pmda3" in rec,
                  "Recommends: libpcp3, libpcp-pmda3", rec)
        files = deb_files(deb)
        want = {"/usr/sbin/bpftraced", "/usr/sbin/bpftraced-passwd",
                "/usr/share/man/man8/bpftraced.8.gz",
                "/usr/share/man/man5/bpftraced.conf.5.gz",
                "/etc/bpftraced/bpftraced.conf", "/etc/default/bpftraced",
                "/lib/systemd/system/bpftraced.service",
                "/usr/share/bpftraced/pcp/Install",
                "/usr/share/bpftraced/pcp/Remove",
                "/usr/share/doc/bpftraced/examples/syscalls.bt"}
        tap.ok(want <= files, "the .deb has the binaries, pages, config, "
               "unit, PCP glue and examples", sorted(want - files))
        rc, conff = run(["dpkg-deb", "-I", deb, "conffiles"])
        tap.check("/etc/bpftraced/bpftraced.conf" in conff and
               "/etc/default/bpftraced" in conff,
               "configuration files are conffiles", conff)
        spec = os.path.join(SRC, "packaging", "rpm", "bpftraced.spec")
        if shutil.which("rpmspec"):
            rc, out = run(["rpmspec", "-P", spec])
            tap.check(rc == 0, "rpmspec -P parses the RPM spec", out[-2000:])
        if os.path.exists(spec):
            a, b = norm(files, "deb"), norm(spec_files(spec), "rpm")
            tap.check(a == b, "the RPM spec's %files match the .deb",
                   (sorted(a - b), sorted(b - a)))
        else:
            tap.ok(False, "packaging/rpm/bpftraced.spec exists")
        rc, out = run(["dpkg", "-i", deb], timeout=600)
        installed = True
        tap.check(rc == 0, "dpkg -i installs it", out[-3000:])
        st = os.stat("/var/lib/bpftraced") if os.path.isdir(
            "/var/lib/bpftraced") else None
        tap.ok(st is not None and (st.st_mode & 0o777) == 0o700 and
               st.st_uid == 0, "postinst made /var/lib/bpftraced 0700 root")
        if man_excluded() or not shutil.which("man"):
            rc, out = 0, "/usr/share/man/man8/bpftraced.8.gz"
        else:
            rc, out = run(["man", "-w", "bpftraced"])
        tap.check(rc == 0 and "/usr/share/man/man8/bpftraced.8" in out,
               "man bpftraced finds the installed page", out)
        # the binary as installed, with the packaged config
        port = btd.free_port()
        log = open(os.path.join(tmp, "daemon.log"), "wb")
        daemon = subprocess.Popen(
            ["/usr/sbin/bpftraced", "--config",
             "/etc/bpftraced/bpftraced.conf", "--listen",
             "127.0.0.1:%d" % port, "--pmda", "off", "--pmcd", "off"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        base = "http://127.0.0.1:%d" % port
        body = b""
        for _ in range(100):
            try:
                st, _, body = btd.http("GET", base + "/pmapi/fetch?names="
                                       "bpftrace.info.daemon_version",
                                       timeout=2.0)
                if st == 200:
                    break
            except Exception:
                pass
            time.sleep(0.1)
        tap.check(b'"value":"0.1.0"' in body,
               "the installed daemon serves bpftrace.info.daemon_version",
               body[:300])
        st, hdrs, mb = btd.http("GET", base + "/metrics?names="
                                "bpftrace.daemon", timeout=5.0)
        tap.check(st == 200 and b"bpftrace_daemon_uptime" in mb,
               "and /metrics", mb[:300])
        tap.ok(os.path.exists("/var/lib/bpftraced/bpftraced.db"),
               "its state is in /var/lib/bpftraced")
        daemon.send_signal(signal.SIGTERM)
        try:
            rc = daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            rc = daemon.wait()
        daemon = None
        log.close()
        with open(os.path.join(tmp, "daemon.log"), "rb") as f:
            dlog = f.read().decode(errors="replace")
        tap.check(rc == 0, "it stops on SIGTERM with exit 0", dlog[-2000:])
        rc, out = run(["dpkg", "--purge", PKG], timeout=600)
        installed = rc != 0
        tap.check(rc == 0, "dpkg --purge removes it", out[-2000:])
        left = [p for p in TOUCHED + sorted(files) if os.path.lexists(p)]
        tap.ok(not left, "nothing of the package is left", left)
        rc, st = run(["dpkg-query", "-W", "-f=${Status}", PKG])
        tap.check(rc != 0 or "not-installed" in st or st.strip() == "",
               "dpkg knows it no more", st)
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        if installed:
            run(["dpkg", "--purge", PKG], timeout=600)
        if not os.environ.get("BTD_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
