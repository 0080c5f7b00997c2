#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_container.py - packaging/container/Containerfile (TAP).

The image cannot be built here, so this checks what can be checked
without a container engine: the build context (the top of the tree) has
every file the build stage uses (COPY sources, packaging/debian, the
Makefile.am install rules' inputs), the final stage is Debian slim and
installs the .deb (which pulls bpftrace), the entry point is the
installed binary with options bpftraced accepts (`-n` with the packaged
config), and the run flags and privileges are documented in the file.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import json

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "lib"))
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


def main():
    with open(CF) as f:
        text = f.read()
    ins = instructions(text)
    froms = [a for i, a in ins if i == "FROM"]
    tap.ok(len(froms) == 2 and all("debian:bookworm-slim" in f
                                   for f in froms),
           "two stages, both Debian 12 slim", froms)
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
    eng = shutil.which("podman") or shutil.which("docker")
    tap.skip("build the image", "not built by the tests (needs a registry); %s" %
             ("engine %s present" % eng if eng else "no container engine"))
    tap.done()


if __name__ == "__main__":
    main()
