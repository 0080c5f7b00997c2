#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_layers.py - check-layers.py on the built tree, and on planted objects.

The built tree (the directory of $BPFTRACED's src/) must pass. Then tiny
objects compiled into a temporary src/<layer>/ tree plant the shapes the
check must refuse (a call up a layer, a function pointer taken up a layer,
two files of one folder calling each other, a stale exception, a number
parsed with strtol or sscanf outside util.c) and the ones it must accept
(a call down, the ingest folder's cycle, an allowed exception with its
reason, util.c's own strtol).
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "check-layers.py")
LAYERS = os.path.join(HERE, "layers.txt")


def run(builddir, layers=LAYERS):
    r = subprocess.run([sys.executable, CHECK, "--layers", layers, builddir],
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def plant(files, extra_layers=""):
    """A build tree of objects compiled from {"src/lib/a.c": code}, and its
    layers.txt: the real one without its allow-parser exceptions (they
    name real objects, which a planted tree has not), and extra_layers."""
    root = tempfile.mkdtemp(prefix="btd-layers-")
    for rel, code in files.items():
        src = os.path.join(root, rel)
        os.makedirs(os.path.dirname(src), exist_ok=True)
        with open(src, "w") as f:
            f.write(code)
        r = subprocess.run([CC, "-c", "-o", src[:-2] + ".o", src],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (rel, r.stderr))
        os.unlink(src)
    layers = os.path.join(root, "layers.txt")
    with open(LAYERS) as f, open(layers, "w") as out:
        out.write("".join(line for line in f
                          if not line.startswith("allow-parser ")))
        out.write(extra_layers)
    return root, layers


LOW = "int low(void) { return 1; }\n"
HIGH_CALLS_LOW = "int low(void);\nint high(void) { return low(); }\n"
LOW_CALLS_HIGH = "int high(void);\nint low(void) { return high(); }\n"
HIGH = "int high(void) { return 2; }\n"

CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") \
    or shutil.which("clang")


STRTOL = ("#include <stdlib.h>\n"
          "long n(const char *s) { return strtol(s, 0, 0); }\n")
SSCANF = ("#include <stdio.h>\n"
          "int n(const char *s) { int v; return sscanf(s, \"%d\", &v); }\n")


def case(t, desc, files, want_rc, want_text, extra_layers=""):
    root, layers = plant(files, extra_layers)
    try:
        rc, out = run(root, layers)
        t.check(rc == want_rc and want_text in out, desc,
                lambda: "rc %d (want %d), want %r in:\n%s"
                % (rc, want_rc, want_text, out))
    finally:
        shutil.rmtree(root)


def main():
    t = btd.Tap()
    binary = btd.default_binary()
    builddir = os.path.dirname(os.path.dirname(os.path.abspath(binary)))
    if not os.path.isdir(os.path.join(builddir, "src", "lib")):
        t.ok(False, "built tree passes check-layers",
             "no built objects under %s/src: build first" % builddir)
    else:
        rc, out = run(builddir)
        t.check(rc == 0 and "check-layers: ok" in out,
                "built tree passes check-layers", out)
    if CC is None or shutil.which(os.environ.get("NM", "nm")) is None:
        for d in range(13):
            t.skip("planted case %d" % d, "no cc or nm")
        t.done()
        return
    case(t, "a call down a layer passes",
         {"src/lib/low.c": LOW, "src/api/high.c": HIGH_CALLS_LOW},
         0, "check-layers: ok")
    case(t, "a call up a layer fails, naming objects, layers and symbol",
         {"src/lib/low.c": LOW_CALLS_HIGH, "src/api/high.c": HIGH},
         1, "up-call: src/lib/low.o (lib) uses high from src/api/high.o (api)")
    case(t, "a function pointer taken up a layer fails",
         {"src/store/low.c": "int high(void);\nint (*hook)(void) = high;\n",
          "src/http/high.c": HIGH},
         1, "up-call: src/store/low.o (store) uses high from "
         "src/http/high.o (http)")
    case(t, "src/ itself is the top layer: a call up into it fails",
         {"src/registry/low.c": LOW_CALLS_HIGH, "src/high.c": HIGH},
         1, "up-call: src/registry/low.o (registry) uses high from "
         "src/high.o (top)")
    cyc = {"src/%s/a.c": "int b(void);\nint a(int n) { return n ? b() : 0; }\n",
           "src/%s/b.c": "int a(int);\nint b(void) { return a(0); }\n"}
    case(t, "two files of one folder calling each other fail (cycle)",
         {k % "api": v for k, v in cyc.items()},
         1, "cycle: src/api/a.o <-> src/api/b.o")
    case(t, "the bpftrace folder may cycle (the ingest trio)",
         {k % "bpftrace": v for k, v in cyc.items()},
         0, "check-layers: ok")
    case(t, "an allowed exception with its reason passes and is listed",
         {"src/lib/low.c": LOW_CALLS_HIGH, "src/api/high.c": HIGH},
         0, "allowed: src/lib/low.o -> src/api/high.o: planted for the test",
         "allow src/lib/low.o src/api/high.o planted for the test\n")
    case(t, "an exception that matches nothing fails (stale)",
         {"src/lib/low.c": LOW, "src/api/high.c": HIGH_CALLS_LOW},
         1, "stale exception: allow src/lib/low.o src/api/high.o",
         "allow src/lib/low.o src/api/high.o planted for the test\n")
    case(t, "strtol outside util.c fails, naming object and parser",
         {"src/api/num.c": STRTOL}, 1,
         "number parser: src/api/num.o calls strtol (read numbers with the "
         "strtonum family of src/lib/util.o)")
    case(t, "sscanf (glibc's __isoc99_sscanf) outside util.c fails",
         {"src/store/num.c": SSCANF}, 1,
         "number parser: src/store/num.o calls sscanf")
    case(t, "util.c may call strtol (the strtonum family's own)",
         {"src/lib/util.c": STRTOL}, 0, "check-layers: ok")
    case(t, "an allowed parser with its reason passes and is listed",
         {"src/api/num.c": STRTOL}, 0,
         "allowed: src/api/num.o -> libc:strtol: planted for the test",
         "allow-parser src/api/num.o strtol planted for the test\n")
    case(t, "a parser exception that matches nothing fails (stale)",
         {"src/api/num.c": LOW}, 1,
         "stale exception: allow-parser src/api/num.o strtol",
         "allow-parser src/api/num.o strtol planted for the test\n")
    t.done()


if __name__ == "__main__":
    main()
