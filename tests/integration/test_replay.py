#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_replay.py - every real bpftrace fixture of 0.17, 0.23 and 0.27
(extra/ included), end to end, with exact values (TAP).

One bpftraced per version runs with --bpftrace tests/lib/fake-bpftrace and
FAKE_BPFTRACE_VERSION set, so the daemon believes it runs that bpftrace
and the fake replays that version's recorded stdout, stderr and exit code.
Each fixture script is registered over HTTP as a user would; the served
metrics are then compared with what a reader of the fixture's own stdout
expects, computed here independently (Python's json module, which keeps
integers exact):

  * status/exit_code follow the recorded exit code;
  * every variable's last print gives exactly its values: scalars, every
    key of a map with its value, hist/lhist buckets ("lo-hi", -inf/inf
    for a missing bound, "key:lo-hi" keyed) with their counts, avg and
    stats parts; a number printed as a string (0.24+ above 2^53) is that
    integer, true/false are 1/0; a value that does not fit the metric's
    type (a u64 above 2^63 for a signed metric, text for a number) is
    not served and counted in type_errors;
  * keys of 0.23, which escapes string map keys twice, are decoded twice;
    \\uffffffXX is the byte XX (bpftrace's escape of non-ASCII bytes).

Then the differences between versions are asserted by name: @big of
negative_and_huge is 2^64-1 on every version (as -1, bare, as a string),
0.23's keys are not served doubly escaped, 0.27's true/false, stripped
spaces in keys, cleared avg/stats ({}), attached_probes with "count".
Runs without root or bpftrace; needs the shared fixtures ($BT_SHARED).
"""

import glob
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE
U64 = 1 << 64
VERSIONS = (("0.17", "v0.17.0"), ("0.23", "v0.23.2"), ("0.27", "v0.27.1"))
SEXT = re.compile(r"\\uffffff([89a-fA-F][0-9a-fA-F])")
MARK = 0xE000       # a byte b of \uffffffXX decodes to chr(MARK + b) first


def shared_dir():
    shared = os.environ.get("BT_SHARED") or os.path.join(
        os.path.dirname(btd.REPO_ROOT), "shared")
    return shared if os.path.isdir(os.path.join(shared, "fixtures")) \
        else None


def mark_bytes(text):
    """\\uffffffXX -> a private-use character standing for byte XX"""
    return SEXT.sub(lambda m: "\\u%04x" % (MARK + int(m.group(1), 16)),
                    text)


def unmark(s):
    """the decoded string as bpftraced serves it: marked bytes rebuilt,
    NUL and invalid UTF-8 as U+FFFD"""
    out = bytearray()
    for ch in s:
        o = ord(ch)
        if MARK + 0x80 <= o <= MARK + 0xff:
            out.append(o - MARK)
        elif o == 0 or 0xd800 <= o <= 0xdfff:
            out += "\ufffd".encode()
        else:
            out += ch.encode()
    return out.decode("utf-8", "replace")


def key_text(k, twice):
    """a map key as served: 0.23's second escaping undone"""
    if twice and "\\" in k:
        try:
            k = json.loads('"' + mark_bytes(k) + '"', strict=False)
        except ValueError:
            pass            # kept as read, as the daemon does
    return unmark(k)


class Obj(dict):
    """a JSON object that also keeps its members in order, repeats too
    (bpftrace prints a key twice when its bytes differ past the end)"""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.pairs = pairs


def load_lines(stdout):
    for raw in stdout.split(b"\n"):
        if raw.strip():
            yield json.loads(mark_bytes(raw.decode("utf-8",
                                                   "surrogateescape")),
                             object_pairs_hook=Obj)


def number(v):
    """an integer as printed (int, integer string, bool), else None"""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    return None


def bucket_name(b):
    lo = number(b["min"]) if "min" in b else None
    hi = number(b["max"]) if "max" in b else None
    return "%s-%s" % ("-inf" if lo is None else lo,
                      "inf" if hi is None else hi)


def expected(stdout, twice):
    """var -> ("scalar", v|None) | ("inst", {name: v}); "output" text"""
    out, text, exact = {}, [], b"\\uffffff" not in stdout
    for msg in load_lines(stdout):
        t, data = msg.get("type"), msg.get("data")
        if t in ("printf", "time", "syscall", "cat"):
            text.append(unmark(data))
        elif t == "join":
            text.append(unmark(data) + "\n")
        elif t == "value":
            exact = False
        if t not in ("map", "hist", "stats") or not isinstance(data, dict):
            continue
        for name, val in data.items():
            var = name[1:] or "root"
            if t == "hist":
                inst = {}
                groups = val.items() if isinstance(val, dict) else \
                    [(None, val)]
                for k, buckets in groups:
                    for b in buckets:
                        n = bucket_name(b)
                        if k is not None:
                            n = key_text(k, twice) + ":" + n
                        inst[n] = inst.get(n, 0) + number(b["count"])
                out[var] = ("inst", inst)
            elif t == "stats" and isinstance(val, dict) and val and \
                    all(isinstance(x, dict) for x in val.values()):
                out[var] = ("inst", {"%s:%s" % (key_text(k, twice), p): x
                                     for k, parts in val.items()
                                     for p, x in parts.items()})
            elif t == "stats" and isinstance(val, dict) and \
                    ("average" in val or not val):
                out[var] = ("inst", dict(val))     # {}: cleared (0.24+)
            elif isinstance(val, dict):         # repeats: see folded()
                out[var] = ("pairs", [(key_text(k, twice), x)
                                      for k, x in val.pairs])
            else:
                out[var] = ("scalar", val)
    if text and exact and sum(map(len, text)) < 200000:
        out["output"] = ("text", "".join(text))
    return out


def want_value(x, mtype):
    """what a metric of PCP type mtype serves for printed value x:
    (True, value) or (False, why) when it does not fit"""
    if mtype == "string":
        if isinstance(x, str):
            return True, unmark(x)
        if isinstance(x, bool):
            return True, "true" if x else "false"
        if isinstance(x, int):
            return True, str(x)
        return True, None       # tuples, structs: text, not compared
    n = number(x)
    if n is None:
        return False, "not an integer"
    if mtype == "u64":
        return True, n % U64
    if n > (1 << 63) - 1:
        return False, "above INT64_MAX"
    return True, n


class Client(btd.Client):
    def __init__(self, d):
        super().__init__(d, polltimeout=300, timeout=30.0, context=True)

    def indom(self, metric):
        st, ij = self.getj("/pmapi/indom", name=metric)
        return {i["instance"]: i["name"] for i in ij.get("instances", [])}


def served(c, metric):
    """instance name (None for a singular metric) -> value"""
    inst = c.fetch(metric).get(metric, [])
    names = c.indom(metric) if any(i.get("instance") not in (None, -1)
                                   for i in inst) else {}
    return {names.get(i.get("instance")): i["value"] for i in inst}


def folded(pairs, counter):
    """a print's keys: a key printed twice sums for count(), the last
    one wins otherwise (as bpftraced folds them)"""
    out = {}
    for k, x in pairs:
        n = number(x)
        out[k] = out[k] + n if counter and k in out and n is not None \
            else x
    return out


def compare(c, base, metrics, exp):
    """differences between what is served and exp; the misfit count"""
    bad, misfits = [], 0
    for var, (kind, x) in sorted(exp.items()):
        if var not in metrics:
            continue
        mname, mtype = base + "data." + var, metrics[var]["type"]
        got = served(c, mname)
        if kind == "text":
            v = got.get(None)
            if v != x and (v or "").count("\n") < 10000:
                bad.append("output %r want %r" % ((v or "")[:60], x[:60]))
            continue
        want = {} if kind == "scalar" and x is None else \
            {None: x} if kind == "scalar" else \
            folded(x, metrics[var]["sem"] == "counter") \
            if kind == "pairs" else x
        exp_vals = {}
        for name, val in want.items():
            ok, v = want_value(val, mtype)
            if not ok:
                misfits += 1
            elif v is not None:
                exp_vals[name] = v
            else:
                exp_vals[name] = got.get(name)      # shape only
        if kind == "scalar" and not exp_vals and None in got and \
                misfits:
            exp_vals = got      # the last value that fitted stays
        if got != exp_vals:
            diff = sorted(set(got.items()) ^ set(exp_vals.items()),
                          key=repr)[:3]
            bad.append("@%s (%s): %d served, %d expected, e.g. %r" % (
                var, mtype, len(got), len(exp_vals), diff))
    return bad, misfits


class Replay:
    def __init__(self, c, shared, ver):
        self.c, self.ver = c, ver
        self.fdir = os.path.join(shared, "fixtures", "bpftrace-" + ver)
        self.twice = ver == "0.23"
        self.results = {}

    def run(self, rel):
        """registers fixture rel ("name" or "extra/name"), waits for its
        end and compares; returns (ok, base, metrics, exp)"""
        c, fdir = self.c, self.fdir
        path = os.path.join(fdir, rel)
        code = open(path + ".bt").read()
        stdout = open(path + ".stdout", "rb").read()
        rc = int(open(path + ".rc").read().strip() or 0)
        sname = "fx_" + rel.replace("/", "_")
        st, j = c.getj("/pmapi/store", name="bpftrace.control.register",
                       value="// name: %s\n// fixture: %s\n%s" % (
                           sname, rel, code))
        label = "%s %s" % (self.ver, rel)
        if st != 200:
            ans = c.fetch("bpftrace.control.register").get(
                "bpftrace.control.register", [{}])[0].get("value", "{}")
            why = json.loads(ans).get("state", {}).get("error", "")
            tap.ok("Bad input to pmstore" in j.get("message", "") and why,
                   "%s: refused with a reason (%s)" % (label, why[:80]))
            return None
        base = "bpftrace.scripts.%s." % sname
        want = "stopped" if rc == 0 else "error"
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            v = c.fetch(base + "status").get(base + "status")
            status = v[0]["value"] if v else None
            if status == want:
                break
            time.sleep(0.1)
        got = c.fetch(base + "exit_code", base + "error",
                      base + "type_errors")
        code_v = got.get(base + "exit_code", [{}])[0].get("value")
        err = got.get(base + "error", [{}])[0].get("value", "")
        terr = got.get(base + "type_errors", [{}])[0].get("value")
        ok = status == want and code_v == rc and "RLIMIT_MEMLOCK" not in err
        st, j = c.getj("/pmapi/metric", prefix=base + "data")
        metrics = {m["name"][len(base + "data."):]: m
                   for m in j.get("metrics", [])}
        exp = expected(stdout, self.twice)
        bad, misfits = compare(c, base, metrics, exp)
        if misfits and not terr:
            bad.append("%d values do not fit, type_errors=%r" % (misfits,
                                                                 terr))
        tap.ok(ok and not bad, "%s: status %s, exit %d, %d variables "
               "exactly as printed" % (label, want, rc, len(exp)),
               "status=%r exit=%r err=%r %s" % (status, code_v, err[:200],
                                                bad)
               if not (ok and not bad) else None)
        self.results[rel] = (base, metrics)
        return base, metrics

    def done(self, rel):
        self.c.getj("/pmapi/store", name="bpftrace.control.deregister",
                    value="fx_" + rel.replace("/", "_"))


def one_value(c, metric, inst_name=None):
    return served(c, metric).get(inst_name)


def check_differences(r):
    """the version differences, asserted by name"""
    c, ver = r.c, r.ver
    res = r.run("negative_and_huge")
    if res:
        base, metrics = res
        big = one_value(c, base + "data.big")
        tap.ok(big == U64 - 1 and metrics["big"]["type"] == "u64",
               "%s: @big = 18446744073709551615 (printed %s) is served "
               "exactly as a u64" % (ver, {"0.17": "-1", "0.23": "bare",
                                           "0.27": "as a string"}[ver]),
               repr((big, metrics["big"]["type"])))
        r.done("negative_and_huge")
    res = r.run("keys_special_strings")
    if res:
        base, _ = res
        names = set(served(c, base + "data.k"))
        want = {"quote\"inside", "back\\slash", "tab\there", "new\nline",
                "caf\u00e9", "ctl\x01\x1f", "slash/and,comma", "", "del\x7f"}
        tap.ok(names == want, "%s: string keys served once unescaped "
               "(quote\"inside, new<LF>line, caf\u00e9)%s" % (
                   ver, ", 0.23's second escaping undone"
                   if ver == "0.23" else ""), repr(sorted(names ^ want)))
        r.done("keys_special_strings")
    res = r.run("stack_keys")
    if res:
        base, _ = res
        names = list(served(c, base + "data.st"))
        tap.ok(names and all(n.startswith("\n") and "\\n" not in n
                             for n in names),
               "%s: stack keys have real line breaks, no literal \\n"
               % ver, repr(names[:1])[:200])
        r.done("stack_keys")
    if ver == "0.17":
        return
    res = r.run("extra/bool_null_types")
    if res:
        base, metrics = res
        b = one_value(c, base + "data.b")
        bm = one_value(c, base + "data.bm", "1")
        i64 = one_value(c, base + "data.i64big")
        u64 = one_value(c, base + "data.u64big")
        want = (1, 0) if ver == "0.27" else (-1, 0)
        tap.ok((b, bm) == want and i64 == -9007199254740993 and
               u64 == 9007199254740993 and
               metrics["u64big"]["type"] == "u64",
               "%s: booleans %s, integers beyond 2^53 exact%s" % (
                   ver, "true/false as 1/0" if ver == "0.27" else
                   "as printed (-1/0)",
                   " (printed as strings)" if ver == "0.27" else ""),
               repr((b, bm, i64, u64, metrics.get("u64big", {})
                     .get("type"))))
        r.done("extra/bool_null_types")
    res = r.run("extra/keys_spaces")
    if res:
        base, _ = res
        k = served(c, base + "data.k")
        k2 = served(c, base + "data.k2")
        if ver == "0.27":
            tap.ok(k == {"ab": 1, "lead": 2} and k2 == {"xy,3": 4},
                   "0.27: spaces stripped from keys by bpftrace are served "
                   "as printed (ab, lead, xy,3)", repr((k, k2)))
        else:
            tap.ok(k == {"a b": 1, "  lead": 2} and k2 == {"x y,3": 4},
                   "0.23: keys keep their spaces", repr((k, k2)))
        r.done("extra/keys_spaces")
    res = r.run("extra/empty_scalar_print")
    if res:
        base, _ = res
        av = served(c, base + "data.av")
        st = served(c, base + "data.st")
        if ver == "0.27":
            tap.ok(av == {} and st == {}, "0.27: a cleared avg/stats "
                   "printed as {} has no value", repr((av, st)))
        else:
            tap.ok(st == {} and av == {}, "0.23: cleared avg/stats are "
                   "not printed: no value", repr((av, st)))
        r.done("extra/empty_scalar_print")
    res = r.run("scalar_count")
    if res:
        base, _ = res
        p = c.fetch(base + "probes").get(base + "probes", [{}])[0] \
            .get("value")
        first = next(load_lines(open(os.path.join(
            r.fdir, "scalar_count.stdout"), "rb").read()))
        tap.ok(p == first["data"]["probes"] and
               ("count" in first) == (ver == "0.27"),
               "%s: attached_probes%s gives the probe count (%r)" % (
                   ver, " with \"count\"" if ver == "0.27" else "", p))
        r.done("scalar_count")


def replay_version(shared, ver, vstr):
    fdir = os.path.join(shared, "fixtures", "bpftrace-" + ver)
    if not os.path.isdir(fdir):
        tap.skip("bpftrace %s fixtures" % ver, "no %s" % fdir)
        return
    rels = sorted(os.path.relpath(p, fdir)[:-3] for p in
                  glob.glob(os.path.join(fdir, "*.bt")) +
                  glob.glob(os.path.join(fdir, "extra", "*.bt")))
    env = {"BT_SHARED": shared, "FAKE_BPFTRACE_VERSION": vstr}
    with btd.Daemon(["--control", "loopback", "--bpftrace", FAKE,
                     "--max-output-rate", "0"], env=env) as d:
        c = Client(d)
        r = Replay(c, shared, ver)
        for rel in rels:
            if r.run(rel):
                r.done(rel)
        check_differences(r)
        tap.ok(d.alive(), "%s: daemon alive after replaying %d fixtures"
               % (ver, len(rels)))
        time.sleep(0.6)     # the main loop frees deregistered scripts
        st, j = c.getj("/pmapi/fetch", names="bpftrace.info.scripts_total")
        tap.ok(st == 200 and j["values"][0]["instances"][0]["value"] == 0,
               "%s: every fixture script deregistered cleanly" % ver,
               repr(j)[:200])


def main():
    shared = shared_dir()
    if shared is None:
        btd.Tap.skip_all("no shared fixtures (set BT_SHARED)")
    only = os.environ.get("REPLAY_VERSIONS")
    for ver, vstr in VERSIONS:
        if only and ver not in only.split(","):
            continue
        replay_version(shared, ver, vstr)
    tap.done()


if __name__ == "__main__":
    main()
