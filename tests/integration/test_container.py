#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_container.py - packaging/container/Containerfile (TAP).

Without a container engine: the build context (the top of the tree) has
every file the build stage uses, the stages are Debian 12 slim (ARG
BASE) and the image one layer FROM scratch, the entry point is the
installed binary with options bpftraced accepts, and the run flags and
privileges are documented in the file.

With podman and debootstrap (as root): builds the image for real on a
base image imported from a bookworm minbase debootstrap root (Debian's
registry only; no container registry), cached between runs, checks its
size and contents, then mounts it and runs its bpftraced with its own
ENTRYPOINT options under chroot (podman run is refused on this VM): the
image's bpftrace runs an interval probe whose count is fetched over
/pmapi and /metrics.  Skips with the reason without podman, debootstrap,
root, tracefs or the registry; BT_NO_CONTAINER=1 skips it too.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import json
import fcntl
import glob
import hashlib
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

SRC = os.environ.get("BT_SRCDIR") or btd.REPO_ROOT
CF = os.path.join(SRC, "packaging", "container", "Containerfile")
BIN = btd.default_binary()
tap = btd.Tap()


def instructions(text):
    """(instruction, argument) with continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        if not cur and (line.startswith("#") or not line.strip()):
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        word, _, arg = cur.strip().partition(" ")
        out.append((word.upper(), arg.strip()))
        cur = ""
    return out


# -- the image itself ------------------------------------------------------
# Built with podman from a base image imported from a debootstrap root (no
# container registry is needed, only Debian's), cached between runs: the
# root in CACHE, the base image by the root's stamp, the image by a hash of
# its inputs (the Containerfile, the tracked files of the build context and
# the base image).  podman run is refused on this VM, so the test mounts
# the image and runs its bpftraced under chroot in a private mount
# namespace with the kernel filesystems bound in; the daemon's children
# (bpftrace) inherit that root without calling chroot themselves.

CACHE = os.environ.get("BT_CONTAINER_CACHE",
                       "/var/cache/bpftraced-versions")
ROOT = os.path.join(CACHE, "bookworm-base")
BASE_TAG = "localhost/bpftraced-base:bookworm"
IMAGE_TAG = "localhost/bpftraced:test"
MINIMAL_TAG = "localhost/bpftraced:test-minimal"
ROOT_LABEL = "org.bpftraced.root"
INPUTS_LABEL = "org.bpftraced.inputs"
DEBOOTSTRAP_TIMEOUT = 15 * 60      # about 30 s here
BUILD_TIMEOUT = 40 * 60            # about 1 min cold here, seconds cached
IMAGE_SIZE_LIMIT = 400 * 10**6     # 350 MB measured (536 MB before slimming)
MINIMAL_SIZE_LIMIT = 260 * 10**6   # 220 MB measured
DATA_TIMEOUT = 90                  # bpftrace 0.17 compiles in a few seconds
BUILD_LOG = os.path.join(CACHE, "bpftraced-image-build.log")
# an apt or debootstrap failure that means "no registry", not a bad build
NO_REGISTRY = ("Temporary failure resolving", "Could not resolve",
               "Failed to fetch", "Couldn't download", "Could not connect",
               "Network is unreachable", "Connection refused",
               "Unable to fetch some archives", "Failed getting release file",
               "Release signed by unknown key")


class Skip(Exception):
    pass


def run(argv, timeout, log=None, **kw):
    out = open(log, "w") if log else subprocess.PIPE
    try:
        return subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, **kw)
    finally:
        if log:
            out.close()


def tail(path_or_text, n=25):
    text = path_or_text
    if os.path.exists(path_or_text):
        with open(path_or_text, errors="replace") as f:
            text = f.read()
    return "\n".join(text.splitlines()[-n:])


def no_registry(text):
    return any(w in text for w in NO_REGISTRY)


def host_mirror():
    """The Debian mirror this machine's apt uses for bookworm (the host is
    Debian 12), so the root comes from wherever its packages come from."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            for stanza in f.read().split("\n\n"):
                kv = dict(line.split(":", 1) for line in stanza.splitlines()
                          if ":" in line and not line.startswith("#"))
                suites = kv.get("Suites", "").split()
                if "bookworm" in suites and "deb" in kv.get("Types", ""):
                    return kv.get("URIs", "").split()[0]
    try:
        with open("/etc/apt/sources.list") as f:
            for line in f:
                w = re.sub(r"\[[^]]*\]", "", line).split()
                if len(w) > 2 and w[0] == "deb" and w[2] == "bookworm":
                    return w[1]
    except OSError:
        pass
    return None


def ensure_root():
    """A bookworm minbase root in CACHE (built once; seconds after)."""
    stamp = os.path.join(ROOT, ".complete")
    if os.path.exists(stamp):
        return 0.0
    mirror = os.environ.get("BT_DEBIAN_MIRROR") or host_mirror()
    if not mirror:
        raise Skip("no bookworm entry in this machine's apt sources")
    tmp = ROOT + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.monotonic()
    p = run(["debootstrap", "--variant=minbase", "bookworm", tmp, mirror],
            DEBOOTSTRAP_TIMEOUT)
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        if no_registry(p.stdout):
            raise Skip("Debian's registry is unreachable (debootstrap: %s)"
                       % tail(p.stdout, 1))
        raise RuntimeError("debootstrap failed:\n" + tail(p.stdout))
    with open(os.path.join(tmp, ".complete"), "w") as f:
        f.write("%d\n" % time.time())
    os.rename(tmp, ROOT)
    return time.monotonic() - t0


def image_label(tag, label):
    p = run(["podman", "image", "inspect", "--format",
             '{{index .Labels "%s"}}' % label, tag], 60)
    return p.stdout.strip() if p.returncode == 0 else None


def image_id(tag):
    p = run(["podman", "image", "inspect", "--format", "{{.Id}}", tag], 60)
    return p.stdout.strip() if p.returncode == 0 else None


def ensure_base():
    """The root imported as BASE_TAG, without apt's lists and caches (as
    Debian's slim image), re-imported when the root was rebuilt."""
    with open(os.path.join(ROOT, ".complete")) as f:
        stamp = f.read().strip()
    if image_label(BASE_TAG, ROOT_LABEL) == stamp:
        return
    tar = subprocess.Popen(
        ["tar", "-C", ROOT, "--exclude=./.complete",
         "--exclude=./var/lib/apt/lists/*", "--exclude=./var/cache/apt/*",
         "-c", "."], stdout=subprocess.PIPE)
    p = run(["podman", "import", "--change",
             "LABEL %s=%s" % (ROOT_LABEL, stamp), "-", BASE_TAG], 600,
            stdin=tar.stdout)
    tar.stdout.close()
    if tar.wait() != 0 or p.returncode != 0:
        raise RuntimeError("podman import failed:\n" + tail(p.stdout))


def inputs_hash(base_id):
    """sha256 of the base image and every file git knows in the build
    context (tracked or not ignored), or None without git (then podman's
    own layer cache decides)."""
    try:
        p = subprocess.run(["git", "-C", SRC, "ls-files", "-z", "-c", "-o",
                            "--exclude-standard"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    h = hashlib.sha256(base_id.encode() + b"\0")
    for name in sorted(set(p.stdout.decode().split("\0")) - {""}):
        path = os.path.join(SRC, name)
        if not os.path.isfile(path):
            continue
        h.update(name.encode() + b"\0")
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def ensure_image(tag, target):
    """(seconds spent building, "built" or "reused ...")."""
    old = image_id(tag)
    digest = inputs_hash(image_id(BASE_TAG))
    if digest and old and image_label(tag, INPUTS_LABEL) == digest:
        return 0.0, "reused (inputs unchanged)"
    argv = ["podman", "build", "--isolation", "chroot", "--network", "host",
            "--build-arg", "BASE=" + BASE_TAG, "-f", CF, "-t", tag]
    if target:
        argv += ["--target", target]
    if digest:
        argv += ["--label", "%s=%s" % (INPUTS_LABEL, digest)]
    t0 = time.monotonic()
    p = run(argv + [SRC], BUILD_TIMEOUT, log=BUILD_LOG)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        text = tail(BUILD_LOG, 400)
        if no_registry(text):
            raise Skip("Debian's registry is unreachable (podman build: "
                       "see %s)" % BUILD_LOG)
        raise RuntimeError("podman build failed (%s):\n%s"
                           % (BUILD_LOG, tail(BUILD_LOG)))
    new = image_id(tag)
    if old and new and old != new:
        run(["podman", "rmi", old], 120)
    if digest:
        drop_stale_stages(digest)
    return secs, "built"


def drop_stale_stages(digest):
    """The stage images of earlier builds of this test (untagged, with an
    older INPUTS_LABEL; about 300 MB each), so that a machine that runs the
    test after every change does not fill up; layers the current build
    shares with them (the build stage's apt layer) stay cached."""
    p = run(["podman", "images", "-q", "--no-trunc", "-f",
             "dangling=true"], 60)
    for iid in p.stdout.split():
        label = image_label(iid, INPUTS_LABEL)
        if label and label != digest:
            run(["podman", "rmi", iid], 120)


class ImageDaemon(btd.Daemon):
    """The image's bpftraced, with the image's ENTRYPOINT options (its
    --listen replaced by a free loopback port), chrooted into the mounted
    image in a private mount namespace: /proc, /sys (tracefs, debugfs, the
    bpf filesystem), /dev bound in, this daemon's temporary directory as
    the image's /tmp (state directory and script)."""

    WRAP = ('set -e; M=$1; T=$2; shift 2; '
            'mount --rbind /proc "$M/proc"; mount --rbind /sys "$M/sys"; '
            'mount --rbind /dev "$M/dev"; mount --bind "$T" "$M/tmp"; '
            'exec chroot "$M" "$@"')

    def __init__(self, mnt, entry, extra):
        self.mnt, self.entry = mnt, list(entry)
        super().__init__(extra, binary="/bin/sh", start=False)

    def command(self, port):
        argv, skip = [], False
        for a in self.entry:
            if skip:
                argv.append("127.0.0.1:%d" % port)
                skip = False
                continue
            skip = a == "--listen"
            argv.append(a)
        return (["unshare", "--mount", "--propagation", "private", "sh",
                 "-c", self.WRAP, "sh", self.mnt, self._tmp] + argv +
                ["--state-dir", "/tmp/state"] + self.args)


def image_tests():
    if os.geteuid() != 0:
        tap.skip("build and run the image", "needs root (podman, chroot)")
        return
    if os.environ.get("BT_NO_CONTAINER"):
        tap.skip("build and run the image", "BT_NO_CONTAINER is set")
        return
    missing = [t for t in ("podman", "debootstrap", "unshare", "chroot",
                           "tar") if not shutil.which(t)]
    if missing:
        tap.skip("build and run the image", "not installed: %s (quickstart "
                 "TEST_DEPS has them)" % " ".join(missing))
        return
    try:
        os.makedirs(CACHE, exist_ok=True)
        with open(os.path.join(CACHE, "bpftraced-image.lock"), "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)     # one build at a time
            root_secs = ensure_root()
            ensure_base()
            secs, how = ensure_image(IMAGE_TAG, None)
            msecs, mhow = ensure_image(MINIMAL_TAG, "minimal")
    except Skip as e:
        tap.skip("build and run the image", str(e))
        return
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        tap.ok(False, "the image builds", str(e))
        return
    tap.ok(True, "the image builds (%s in %.0f s; base root %s); "
           "--target minimal: %s in %.0f s" % (
               how, secs, "built in %.0f s" % root_secs if root_secs
               else "cached", mhow, msecs))
    for tag, limit in ((IMAGE_TAG, IMAGE_SIZE_LIMIT),
                       (MINIMAL_TAG, MINIMAL_SIZE_LIMIT)):
        tap.diag("image %s" % tag)
        test_image(tag, limit)


def test_image(tag, limit):
    p = run(["podman", "image", "inspect", "--format",
             "{{.Size}} {{json .Config.Entrypoint}}", tag], 60)
    size, _, entry = p.stdout.strip().partition(" ")
    size, entry = int(size), json.loads(entry)
    tap.ok(size <= limit, "%s is %.0f MB (at most %.0f MB: no docs, "
           "manual pages, translations, apt caches or lists)"
           % (tag, size / 1e6, limit / 1e6))
    p = run(["podman", "image", "mount", tag], 120)
    mnt = p.stdout.strip()
    if p.returncode != 0 or not os.path.isdir(mnt):
        tap.ok(False, "podman image mount", p.stdout)
        return
    try:
        check_contents(mnt)
        run_image(mnt, entry)
    finally:
        run(["podman", "image", "unmount", tag], 120)


def check_contents(mnt):
    def listing(d):
        try:
            return os.listdir(os.path.join(mnt, d))
        except OSError:
            return []
    docs = [os.path.relpath(os.path.join(r, f), mnt) for r, _, fs in
            os.walk(os.path.join(mnt, "usr/share/doc")) for f in fs
            if f != "copyright"]
    left = {"usr/share/doc (not copyright)": docs[:5],
            "usr/share/man": listing("usr/share/man"),
            "usr/share/locale": [x for x in listing("usr/share/locale")
                                 if x != "locale.alias"],
            "var/lib/apt/lists": [x for x in listing("var/lib/apt/lists")
                                  if x not in ("partial", "lock")],
            "var/cache/apt": [x for x in listing("var/cache/apt")
                              if x != "archives"],
            "var/cache/apt/archives": [x for x in
                                       listing("var/cache/apt/archives")
                                       if x.endswith(".deb")]}
    left = {k: v for k, v in left.items() if v}
    tap.check(not left, "nothing only a person reads, no apt caches or lists",
           left)
    bt = os.path.join(mnt, "usr/bin/bpftrace")
    tap.ok(os.access(bt, os.X_OK) and os.path.exists(os.path.join(
        mnt, "usr/sbin/bpftraced")), "the image has bpftrace and bpftraced")


def bpftrace_children(pid):
    out = []
    for task in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            with open(task) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def run_image(mnt, entry):
    if not os.path.isdir("/sys/kernel/tracing/events") and \
            not os.path.isdir("/sys/kernel/debug/tracing/events"):
        tap.skip("the image's bpftraced runs bpftrace", "tracefs is not "
                 "mounted (quickstart mounts it)")
        return
    d = ImageDaemon(mnt, entry, ["--script", "/tmp/tick.bt"])
    with open(os.path.join(d._tmp, "tick.bt"), "w") as f:
        f.write("interval:ms:100 { @ticks = count(); }\n")
    try:
        d.start_timeout = 60
        d.start()
    except btd.DaemonError as e:
        tap.ok(False, "the image's bpftraced starts (chroot, its "
               "ENTRYPOINT options)", str(e)[-3000:])
        return
    try:
        tap.ok(True, "the image's bpftraced starts (chroot, its ENTRYPOINT "
               "options, --listen 127.0.0.1:%d)" % d.port)
        ver = d.fetch_values("bpftrace.info.version")
        ver = (ver.get("bpftrace.info.version") or {}).get(None)
        tap.ok(isinstance(ver, str) and re.match(r"v0\.\d+", ver) is not None,
               "bpftrace.info.version is the image's bpftrace (%s)" % ver)
        name = "bpftrace.scripts.tick.data.ticks"
        deadline, val, exe = time.monotonic() + DATA_TIMEOUT, None, None
        while time.monotonic() < deadline:
            for c in bpftrace_children(d.proc.pid):
                try:
                    if os.path.samefile("/proc/%d/exe" % c,
                                        os.path.join(mnt, "usr/bin/"
                                                     "bpftrace")):
                        exe = c
                except OSError:
                    pass
            try:
                val = d.fetch_values(name).get(name, {}).get(None)
            except btd.DaemonError:
                val = None
            if isinstance(val, int) and val > 0 and exe:
                break
            time.sleep(0.5)
        tap.ok(exe is not None, "the script runs the image's "
               "/usr/bin/bpftrace (the daemon's child, same file)")
        tap.ok(isinstance(val, int) and val > 0, "a real bpftrace interval "
               "probe counts: %s = %s" % (name, val),
               d.stderr_text()[-2000:] if not val else None)
        st, _, body = btd.http("GET", d.url("/metrics"))
        tap.check(st == 200 and re.search(
            rb"^bpftrace_scripts_tick_data_ticks(_total)?(\{[^}]*\})? [1-9]", body,
            re.M) is not None, "/metrics serves the script's metric",
            (st, body[:300]))
    finally:
        rc = d.stop(cleanup=False)
        tap.ok(rc == 0, "the image's bpftraced exits 0 on SIGTERM (%s)" % rc,
               d.stderr_text()[-2000:] if rc != 0 else None)
        d.stop()


def main():
    with open(CF) as f:
        text = f.read()
    ins = instructions(text)
    froms = [a for i, a in ins if i == "FROM"]
    argv_ = dict(a.split("=", 1) for i, a in ins if i == "ARG" and "=" in a)
    stages = [f.replace("${BASE}", argv_.get("BASE", "?")).split()[0]
              for f in froms]
    named = {f.split()[-1]: f.split()[0] for f in froms if " AS " in f}
    tap.ok(argv_.get("BASE") == "docker.io/library/debian:bookworm-slim"
           and stages[-1] == "scratch" and named.get("minimal") == "scratch"
           and named.get("build") == named.get("runtime") == "${BASE}",
           "build and runtime stages on Debian 12 slim (ARG BASE), the "
           "image and the minimal target one layer FROM scratch", froms)
    tap.ok(re.search(r"COPY --from=runtime / /", text) is not None,
           "the image is the runtime stage's whole root", None)
    missing = []
    for i, a in ins:
        if i not in ("COPY", "ADD"):
            continue
        args = [w for w in shlex.split(a) if not w.startswith("--")]
        if any(w.startswith("--from") for w in shlex.split(a)):
            continue
        for s in args[:-1]:
            if not os.path.exists(os.path.join(SRC, s)):
                missing.append(s)
    tap.ok(not missing, "every COPY/ADD source exists in the build "
           "context", missing)
    runs = " ".join(a for i, a in ins if i == "RUN")
    used = set(re.findall(r"(packaging/[\w./-]+)", runs))
    tap.ok(used and all(os.path.exists(os.path.join(SRC, p)) for p in used),
           "files the build stage uses exist", sorted(used))
    with open(os.path.join(SRC, "Makefile.am")) as f:
        mk = f.read()
    inputs = set(re.findall(r"(?:packaging|man)/[\w./-]+\.(?:bt|conf|8|5)\b",
                            mk)) | {"packaging/pcp/Install",
                                    "packaging/pcp/Remove"}
    tap.ok(all(os.path.exists(os.path.join(SRC, p)) for p in inputs),
           "the install rules' inputs exist",
           sorted(p for p in inputs if not os.path.exists(
               os.path.join(SRC, p))))
    tap.ok(re.search(r"apt-get install .*bpftraced_\*\.deb", runs) and
           "dpkg-buildpackage" in runs,
           "the image installs the .deb built from packaging/debian "
           "(Depends pulls bpftrace)")
    ep = [a for i, a in ins if i == "ENTRYPOINT"]
    try:
        argv = json.loads(ep[-1]) if ep else []
    except ValueError:
        argv = []
    tap.ok(argv[:1] == ["/usr/sbin/bpftraced"], "ENTRYPOINT is the "
           "installed binary (exec form)", ep)
    if os.access(BIN, os.X_OK) and argv:
        tmp = tempfile.mkdtemp(prefix="btd-cf-")
        try:
            args = [a.replace("/etc/bpftraced/bpftraced.conf",
                              os.path.join(SRC, "packaging",
                                           "bpftraced.conf"))
                    for a in argv[1:]]
            p = subprocess.run([BIN] + args + ["-n", "--state-dir", tmp],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=30)
            tap.check(p.returncode == 0, "bpftraced accepts the "
                      "ENTRYPOINT's options", p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        tap.skip("ENTRYPOINT options", "bpftraced not built")
    for what in ("--privileged", "--pid=host", "/sys/kernel/debug",
                 "/sys/kernel/tracing", "/lib/modules", "CAP_BPF",
                 "CAP_PERFMON", "seccomp", "/var/lib/bpftraced", "44322",
                 "--control=auth"):
        if what not in text:
            tap.ok(False, "run flags document %s" % what)
            break
    else:
        tap.ok(True, "the run flags and privileges are documented")
    image_tests()
    tap.done()


if __name__ == "__main__":
    main()
