#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_firstprint.py - a variable's type from the script and its first
print (TAP).

Where the source does not tell a variable's type (@x = arg0, @s = $str,
@y = an expression), the first print decides it, unless a client was
given the metric's descriptor first: then the type it was given stays and
the values that do not fit are counted in type_errors.

1. tests/lib/fake-bpftrace replays the recorded output of bpftrace 0.17,
   0.23 and 0.27 ($FAKE_BPFTRACE_VERSION) for a script whose variables
   are all open: nobody asked for a descriptor, so u64 values above 2^63
   (0.23 bare, 0.27 strings) make the metric u64, a string print a
   string, a negative value a signed 64-bit one; 0.27's true is 1.
2. The same variables with "// fake: pace": a client asks /pmapi/metric
   before the first print and keeps its type ("64"); the prints that do
   not fit are type_errors, and a restart keeps the type.
3. The real bpftrace ($BT_BPFTRACE, else bpftrace on PATH; needs root):
   a string variable typed by its first print, and one described first.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE
U64MAX = 18446744073709551615

# the analysis cannot type any of these (argN, $s, an expression)
OPEN_HUGE = ("kprobe:f { @neg = arg0; @big = arg1; @m[1] = arg2; }\n")
OPEN_STR = ("BEGIN { $v = \"hello\"; @s = $v; $w = \"world\"; "
            "@sm[1] = $w; }\n")
OPEN_BOOL = ("BEGIN { @b = (1 == 1); @bm[1] = (2 > 3); @ptr = (int8 *)16; "
             "@f = (uint16)65535; @neg8 = (int8)-1; }\n")


def m(script, item):
    return "bpftrace.scripts.%s.%s" % (script, item)


class C(btd.Client):
    def reg(self, code):
        return self.getj("/pmapi/store", context=self.ctx,
                         name="bpftrace.control.register", value=code)

    def vals(self, name):
        st, j = self.getj("/pmapi/fetch", context=self.ctx, names=name)
        v = j.get("values", []) if isinstance(j, dict) else []
        return {i["instance"] if not isinstance(i["instance"], int) or
                i["instance"] < 0 else i.get("name", i["instance"]):
                i["value"] for i in v[0]["instances"]} if v else {}

    def inst_vals(self, name):
        """{instance name: value} of a keyed metric"""
        st, j = self.getj("/pmapi/fetch", context=self.ctx, names=name)
        v = j.get("values", []) if isinstance(j, dict) else []
        if not v:
            return {}
        st, ind = self.getj("/pmapi/indom", context=self.ctx, name=name)
        names = {i["instance"]: i["name"]
                 for i in ind.get("instances", [])} \
            if isinstance(ind, dict) else {}
        return {names.get(i["instance"], i["instance"]): i["value"]
                for i in v[0]["instances"]}

    def wait(self, name, pred, timeout=15, keyed=False):
        deadline = time.monotonic() + timeout
        v = {}
        while time.monotonic() < deadline:
            v = self.inst_vals(name) if keyed else self.vals(name)
            if pred(v):
                return v
            time.sleep(0.05)
        return v

    def mtype(self, name):
        st, j = self.getj("/pmapi/metric", context=self.ctx, name=name)
        ms = j.get("metrics", []) if isinstance(j, dict) else []
        return ms[0].get("type") if ms else None


def fake_daemon(fx, version):
    """bpftraced with the fake bpftrace as bpftrace VERSION replaying the
    fixtures of fx"""
    return btd.Daemon(["--control", "loopback", "--bpftrace", FAKE],
                      env={"BT_SHARED": os.path.dirname(os.path.dirname(fx)),
                           "FAKE_BPFTRACE_VERSION": version})


def first_print_decides(fx, version):
    """Nobody described the metrics: each first print types its metric."""
    with fake_daemon(fx, version) as d:
        c = C(d)
        c.reg("// name: hg\n// fixture: negative_and_huge\n// fake: hold\n"
              + OPEN_HUGE)
        c.reg("// name: st\n// fixture: string_value\n// fake: hold\n"
              + OPEN_STR)
        # fetch answers carry no type: waiting on them describes nothing
        big = c.wait(m("hg", "data.big"), lambda v: v != {})
        mm = c.wait(m("hg", "data.m"), lambda v: len(v) == 2, keyed=True)
        neg = c.wait(m("hg", "data.neg"), lambda v: v != {})
        s = c.wait(m("st", "data.s"), lambda v: v != {})
        sm = c.wait(m("st", "data.sm"), lambda v: v != {}, keyed=True)
        # 0.17 prints u64 as i64: 2^64-1 is -1 there, and signed
        u64 = version != "v0.17.0"
        types = [c.mtype(m("hg", "data.big")), c.mtype(m("hg", "data.m")),
                 c.mtype(m("hg", "data.neg")), c.mtype(m("st", "data.s")),
                 c.mtype(m("st", "data.sm"))]
        errs = [c.vals(m(x, "type_errors")).get(None) for x in ("hg", "st")]
        tap.check(types == ["u64" if u64 else "64", "64", "64", "string",
                            "string"] and
                  big == {None: U64MAX if u64 else -1} and
                  mm == {"1": -42, "2": 9223372036854775807} and
                  neg == {None: -5} and s == {None: "hello"} and
                  sm == {"1": "world"} and errs == [0, 0],
                  "%s: nobody described them: the first print types each "
                  "open variable (u64 above 2^63, string, negative), no "
                  "type_errors" % version,
                  lambda: repr((types, big, mm, neg, s, sm, errs)))
        if version != "v0.27.1":
            return
        c.reg("// name: bo\n// fixture: extra/bool_null_types\n"
              "// fake: hold\n" + OPEN_BOOL)
        b = c.wait(m("bo", "data.b"), lambda v: v != {})
        bm = c.wait(m("bo", "data.bm"), lambda v: v != {}, keyed=True)
        types = [c.mtype(m("bo", "data.b")), c.mtype(m("bo", "data.bm"))]
        tap.check(b == {None: 1} and bm == {"1": 0} and
                  types == ["64", "64"],
                  "v0.27.1: true/false type an open variable as a number "
                  "(1/0)", lambda: repr((b, bm, types)))


def described_first_stays(fx, version):
    """A client asks /pmapi/metric before the first print: its type stays,
    the prints that do not fit are type_errors, a restart keeps it."""
    with fake_daemon(fx, version) as d:
        c = C(d)
        # pace: the first data line comes 1.5 s after the probes line
        c.reg("// name: hd\n// fixture: negative_and_huge\n// fake: hold\n"
              "// fake: pace 1500\n" + OPEN_HUGE)
        c.reg("// name: sd\n// fixture: string_value\n// fake: hold\n"
              "// fake: pace 1500\n" + OPEN_STR)
        before = [c.mtype(m("hd", "data.big")), c.mtype(m("sd", "data.s")),
                  c.mtype(m("sd", "data.sm"))]
        early = [c.vals(m("hd", "data.big")), c.vals(m("sd", "data.s"))]
        neg = c.wait(m("hd", "data.neg"), lambda v: v != {})
        errs = c.wait(m("sd", "type_errors"),
                      lambda v: v.get(None) == 2).get(None)
        herrs = c.vals(m("hd", "type_errors")).get(None)
        after = [c.mtype(m("hd", "data.big")), c.mtype(m("sd", "data.s")),
                 c.mtype(m("sd", "data.sm"))]
        data = [c.vals(m("hd", "data.big")), c.vals(m("sd", "data.s")),
                c.inst_vals(m("sd", "data.sm"))]
        # 0.17 prints 2^64-1 as -1: that fits the signed type
        big_errs = 0 if version == "v0.17.0" else 1
        tap.check(before == ["64", "64", "64"] and early == [{}, {}] and
                  after == before and errs == 2 and herrs == big_errs and
                  neg == {None: -5} and
                  data == [{None: -1} if big_errs == 0 else {}, {}, {}],
                  "%s: described before the first print: the type stays "
                  "64 and the values that do not fit are type_errors "
                  "(%d + 2)" % (version, big_errs),
                  lambda: repr((before, early, after, errs, herrs, neg,
                                data)))
        # a new bpftrace run: stop, start, wait for the new pid
        pid = c.vals(m("sd", "pid")).get(None)
        st, j = c.getj("/pmapi/store", context=c.ctx,
                       name="bpftrace.control.stop", value="sd")
        c.wait(m("sd", "status"), lambda v: v.get(None) == "stopped")
        st, j = c.getj("/pmapi/store", context=c.ctx,
                       name="bpftrace.control.start", value="sd")
        c.wait(m("sd", "pid"), lambda v: v.get(None) not in (None, pid, 0))
        again = c.wait(m("sd", "type_errors"), lambda v: v.get(None) == 2,
                       timeout=20).get(None)
        t = c.mtype(m("sd", "data.s"))
        tap.check(t == "64" and again == 2,
                  "%s: a new run of the script keeps the type it was "
                  "described with" % version, lambda: repr((t, again, j)))


def real_cases():
    why = btd.bpftrace_usable() if not btd.BT_BPFTRACE else (
        None if os.geteuid() == 0 else "not root")
    if why:
        tap.skip("real bpftrace: a first print types a string variable", why)
        tap.skip("real bpftrace: a variable described first keeps its type",
                 why)
        return
    args = ["--control", "loopback"] + (
        ["--bpftrace", btd.BT_BPFTRACE] if btd.BT_BPFTRACE else [])
    with btd.Daemon(args=args) as d:
        c = C(d)
        ver = c.vals("bpftrace.info.version").get(None, "")
        st, j = c.reg("// name: rs\nBEGIN { $v = \"hello\"; @s = $v; "
                      "@n = 1 - 6; @u = 18446744073709551615 - 0; }\n")
        s = c.wait(m("rs", "data.s"), lambda v: v != {})
        n = c.wait(m("rs", "data.n"), lambda v: v != {})
        u = c.wait(m("rs", "data.u"), lambda v: v != {})
        types = [c.mtype(m("rs", "data.s")), c.mtype(m("rs", "data.n")),
                 c.mtype(m("rs", "data.u"))]
        errs = c.vals(m("rs", "type_errors")).get(None)
        # 0.17 prints u64 as i64: 2^64-1 is -1 there, and signed
        old = ver.startswith("v0.") and int(ver.split(".")[1]) < 18
        tap.check(s == {None: "hello"} and n == {None: -5} and
                  u == {None: -1 if old else U64MAX} and
                  types == ["string", "64", "64" if old else "u64"] and
                  errs == 0,
                  "real bpftrace %s: the first print types @s = $v as a "
                  "string, @n = 1 - 6 as 64, @u = 2^64-1 - 0 as %s" % (
                      ver, "64 (-1)" if old else "u64"),
                  lambda: repr((st, j, s, n, u, types, errs)))
        # the first print comes with the 3 s interval: describe before it
        st, j = c.reg("// name: rd\n// interval: 3s\n"
                      "BEGIN { $v = \"hello\"; @s = $v; }\n")
        before = c.mtype(m("rd", "data.s"))
        errs = c.wait(m("rd", "type_errors"),
                      lambda v: (v.get(None) or 0) >= 1, 20).get(None)
        after = c.mtype(m("rd", "data.s"))
        tap.check(before == "64" and after == "64" and (errs or 0) >= 1 and
                  c.vals(m("rd", "data.s")) == {},
                  "real bpftrace %s: a variable described before its first "
                  "print keeps its type, the strings are type_errors" % ver,
                  lambda: repr((st, j, before, after, errs)))


def main():
    s = btd.shared_dir()
    if s is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    fx = os.path.join(s, "fixtures", "bpftrace-0.17")
    for version in ("v0.17.0", "v0.23.2", "v0.27.1"):
        first_print_decides(fx, version)
        described_first_stays(fx, version)
    real_cases()
    tap.done()


if __name__ == "__main__":
    main()
