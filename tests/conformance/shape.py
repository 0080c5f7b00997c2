# SPDX-License-Identifier: MIT
"""shape.py - run conformance cases against a server and compare the
*shape* of two answers (Python stdlib only).

Server(name, base_url, subst).run(case) -> result dict (also the fixture
record format).  compare(ref, cand, case, ref_subst, cand_subst) ->
(diffs, notes): diffs are shape differences (test failures), notes are
transport details reported for information only.
"""

import gzip
import itertools
import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

# metric-like substitutions: replaced wherever they occur in a compared
# string (longest first); instance-like ones only when they are the whole
# string (so "context" as an instance name does not eat message words)
SUBSTRING_KEYS = ("u32", "u64_counter", "string", "indom_metric",
                  "prefix_mixed", "prefix_leaf", "prefix_nonleaf",
                  "indom_id")
WHOLE_KEYS = ("inst_name", "inst_glob", "inst_regex")

ALWAYS_EXACT = ("message", "client")
MAP_KEYS = ("labels",)               # objects whose keys are data
STRING_FORMATS = {
    "pmid": re.compile(r"^\d+\.\d+\.\d+$"),
    "indom": re.compile(r"^\d+\.\d+$"),
    "series": re.compile(r"^[0-9a-f]{40}$"),
    "source": re.compile(r"^[0-9a-f]{40}$"),
}
SELECTED_HEADERS = ("content-type", "content-length", "transfer-encoding",
                    "connection", "server", "www-authenticate", "allow")
PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)\}")


class ResolveError(Exception):
    pass


# ---------------------------------------------------------------------------
# running cases
# ---------------------------------------------------------------------------

def _decode(body):
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return body.decode("latin-1"), "latin-1"


def _plain_body(rec, hdrs):
    """The body as text; a gzip-encoded one (pmproxy 7.2.2 compresses on
    Accept-Encoding: gzip) is decompressed, so two gzip answers compare
    by what they say rather than by their compressed bytes."""
    body = rec["body"]
    if hdrs.get("content-encoding") != "gzip":
        return body
    try:
        raw = gzip.decompress(body.encode(rec.get("body_encoding", "utf-8")))
    except (OSError, EOFError, UnicodeEncodeError):
        return body
    return _decode(raw)[0]


def pmid_num(dotted):
    d, c, i = (int(x) for x in dotted.split("."))
    return (d << 22) | (c << 10) | i


class Server:
    """One server under test: base URL plus its substitution map."""

    def __init__(self, name, base, subst, timeout=15.0):
        self.name = name
        self.base = base.rstrip("/")
        self.subst = dict(subst)
        self.timeout = timeout
        self.dynamic = {}            # cached run-time values
        self._case_ctx = None

    # -- raw requests ------------------------------------------------------
    def raw(self, method, target, headers=None, body=None, version=None):
        url = self.base + (target if target.startswith("/") or
                           target == "*" else "/" + target)
        return btd.http(method, url, body=body, headers=headers,
                        timeout=self.timeout, full=True, version=version)

    def _json(self, target):
        st, _, body, _ = self.raw("GET", target)
        try:
            return st, json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            return st, None

    # -- placeholders --------------------------------------------------------
    def value(self, key):
        """The raw (unquoted) value of a placeholder on this server."""
        if key in self.subst:
            return self.subst[key]
        if key == "ctx":
            if self._case_ctx is None:
                st, j = self._json("/pmapi/context?polltimeout=60")
                if st != 200 or not isinstance(j, dict) or \
                        "context" not in j:
                    raise ResolveError("%s: cannot create a context "
                                       "(status %s, %r)" % (self.name, st, j))
                self._case_ctx = str(j["context"])
            return self._case_ctx
        if key in self.dynamic:
            return self.dynamic[key]
        if key == "pmid_u32":
            st, j = self._json("/pmapi/metric?names=" +
                               self.q(self.subst["u32"]))
            try:
                v = j["metrics"][0]["pmid"]
            except (TypeError, KeyError, IndexError):
                raise ResolveError("%s: cannot look up the pmid of %s "
                                   "(status %s, %r)" % (self.name,
                                                        self.subst["u32"],
                                                        st, j))
            self.dynamic[key] = str(v)
            return self.dynamic[key]
        if key in ("pmid_u32_num", "pmid_u32_hex"):
            v = self.value("pmid_u32")
            try:
                n = pmid_num(v)
            except ValueError:
                raise ResolveError("%s: pmid %r is not D.C.I" % (self.name, v))
            self.dynamic[key] = str(n) if key.endswith("num") else hex(n)
            return self.dynamic[key]
        if key in ("indom_num", "indom_hex"):
            v = self.subst["indom_id"]
            try:
                d, s = (int(x) for x in v.split("."))
            except ValueError:
                raise ResolveError("%s: indom %r is not D.S" % (self.name, v))
            n = (d << 22) | s
            return str(n) if key.endswith("num") else hex(n)
        if key == "inst_id":
            st, j = self._json("/pmapi/indom?indom=%s&iname=%s" % (
                self.q(self.subst["indom_id"]), self.q(self.subst["inst_name"])))
            try:
                v = j["instances"][0]["instance"]
            except (TypeError, KeyError, IndexError):
                raise ResolveError("%s: cannot look up instance %r of indom "
                                   "%s (status %s, %r)" % (
                                       self.name, self.subst["inst_name"],
                                       self.subst["indom_id"], st, j))
            self.dynamic[key] = str(v)
            return self.dynamic[key]
        m = re.match(r"^long_(\d+)$", key)
        if m:
            n = int(m.group(1))
            head = "/pmapi/fetch?names="
            return head + "a" * (n - len(head))
        raise ResolveError("unknown placeholder {%s}" % key)

    @staticmethod
    def q(v):
        return urllib.parse.quote(v, safe=".,*-_~:")

    def fill(self, template, quote=True):
        def rep(m):
            key = m.group(1)
            v = self.value(key)
            if quote and key in self.subst:
                v = self.q(v)
            return v
        return PLACEHOLDER.sub(rep, template)

    # -- one case ------------------------------------------------------------
    def run(self, case):
        """Execute a case; return the result record (fixture format)."""
        self._case_ctx = None
        rec = {"id": case["id"]}
        try:
            for pre in case.get("pre", ()):
                t = self.fill(pre["target"])
                st, _, body, _ = self.raw(pre.get("method", "GET"), t)
                rec.setdefault("pre", []).append(
                    {"target": t, "status": st,
                     "body": _decode(body)[0][:500]})
            method = case.get("method", "GET")
            target = self.fill(case["target"])
            headers = {k: self.fill(v, quote=False)
                       for k, v in case.get("headers", {}).items()}
            body = case.get("body")
            version = case.get("version")
            rec["request"] = {"method": method, "target": target,
                              "headers": headers, "body": body}
            if version:
                rec["request"]["version"] = version
            st, hdrs, data, extra = self.raw(method, target, headers, body,
                                             version)
        except ResolveError as e:
            rec["error"] = "setup: %s" % e
            return rec
        except Exception as e:  # connection refused, reset, timeout...
            rec["error"] = "request failed: %s: %s" % (type(e).__name__, e)
            return rec
        text, enc = _decode(data)
        rec.update({
            "status": st, "reason": extra["reason"],
            "version": extra["version"],
            "headers": {k: v for k, v in hdrs.items() if k != "date"},
            "header_names": [k for k, _ in extra["header_list"]],
            "body": text,
        })
        if enc != "utf-8":
            rec["body_encoding"] = enc
        if self._case_ctx is not None:
            rec["ctx"] = self._case_ctx
        return rec


# ---------------------------------------------------------------------------
# comparing
# ---------------------------------------------------------------------------

def _tokens(subst, extra_values=()):
    """[(kind, value, token)] for normalising strings, longest first."""
    toks = []
    for k in SUBSTRING_KEYS:
        if subst.get(k):
            toks.append(("sub", subst[k], "{%s}" % k))
    for k in WHOLE_KEYS:
        if subst.get(k):
            toks.append(("whole", subst[k], "{%s}" % k))
    for v, t in extra_values:
        toks.append(("sub", v, t))
    toks.sort(key=lambda x: -len(x[1]))
    return toks


def normalise(s, toks):
    for kind_, v, t in toks:
        if kind_ == "whole" and s == v:
            return t
    for kind_, v, t in toks:
        if kind_ == "sub" and v:
            s = re.sub(r"(?<![\w])" + re.escape(v) + r"(?![\w])", t, s)
    return s


def normalise_variants(s, toks):
    """All normalisations of s when one value stands for several
    placeholders (e.g. bpftraced's "bpftrace" is both prefix_mixed and
    prefix_nonleaf): one variant per choice of token for each value."""
    groups = {}
    for i, (kind_, v, t) in enumerate(toks):
        groups.setdefault((kind_, v), []).append(i)
    dups = [g for g in groups.values() if len(g) > 1]
    if not dups:
        return [normalise(s, toks)]
    out = []
    for choice in itertools.product(*dups):
        drop = {i for g in dups for i in g} - set(choice)
        n = normalise(s, [x for i, x in enumerate(toks) if i not in drop])
        if n not in out:
            out.append(n)
    return out


def kind(v, loose):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "number" if loose else "int"
    if isinstance(v, float):
        return "number" if loose else "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _short(v, n=60):
    s = json.dumps(v)
    return s if len(s) <= n else s[:n] + "..."


def compare_json(ref, cand, opts, rtok, ctok, path="$", key=None, out=None):
    """Append shape differences between ref and cand to out (a list)."""
    if out is None:
        out = []
    loose = opts.get("loose_numbers", False)
    kr, kc = kind(ref, loose), kind(cand, loose)
    if kr != kc:
        out.append("%s: kind %s expected, got %s (%s)" % (path, kr, kc,
                                                          _short(cand)))
        return out
    if kr == "object":
        if key in MAP_KEYS:
            return out               # label sets: keys are data
        optional = set(opts.get("optional_keys", ()))
        rk = [k for k in ref if not (k in optional and k not in cand)]
        ck = [k for k in cand if not (k in optional and k not in ref)]
        if rk != ck:
            out.append("%s: keys %s expected, got %s" % (path, rk, ck))
        for k in ref:
            if k in cand:
                compare_json(ref[k], cand[k], opts, rtok, ctok,
                             "%s.%s" % (path, k), k, out)
    elif kr == "array":
        emptiness = opts.get("emptiness", True)
        if not ref or not cand:
            if emptiness and bool(ref) != bool(cand):
                out.append("%s: %s array expected, got %s" % (
                    path, "non-empty" if ref else "empty",
                    "non-empty" if cand else "empty"))
            return out
        if key in opts.get("elementwise", ()):
            if len(ref) != len(cand):
                out.append("%s: %d elements expected, got %d" % (
                    path, len(ref), len(cand)))
            for i, (a, b) in enumerate(zip(ref, cand)):
                compare_json(a, b, opts, rtok, ctok, "%s[%d]" % (path, i),
                             key, out)
        else:
            compare_json(ref[0], cand[0], opts, rtok, ctok, path + "[0]",
                         key, out)
    elif kr == "string":
        fmt = STRING_FORMATS.get(key)
        if fmt and fmt.match(ref) and not fmt.match(cand):
            out.append("%s: %r does not look like a %s (expected like %r)"
                       % (path, cand, key, ref))
        exact = set(ALWAYS_EXACT) | set(opts.get("exact_keys", ()))
        if key in exact:
            nr = normalise_variants(ref, rtok)
            nc = normalise_variants(cand, ctok)
            if not set(nr) & set(nc):
                out.append("%s: %r expected, got %r" % (path, nr[0], nc[0]))
    elif kr == "bool":
        if ref != cand:
            out.append("%s: %s expected, got %s" % (path, _short(ref),
                                                    _short(cand)))
    return out


_BARE_CTX = re.compile(r'("context":)([^"\d\-\[{][^,}]*)')


def parse_json(text):
    """(value, repaired) or raises ValueError.  repaired is True when the
    text was invalid JSON made valid by quoting a bare context value
    (pmproxy's {"context":abc,...})."""
    try:
        return json.loads(text), False
    except ValueError:
        fixed = _BARE_CTX.sub(lambda m: m.group(1) + json.dumps(m.group(2)),
                              text, count=1)
        if fixed == text:
            raise
        return json.loads(fixed), True


def _html_norm(text):
    return re.sub(r"<i>[^<]*</i>", "<i>*</i>", text)


def _is_json_ct(ct):
    return (ct or "").split(";")[0].strip().lower() == "application/json"


def compare(ref, cand, case, ref_subst, cand_subst):
    """Compare two result records.  Returns (diffs, notes)."""
    diffs, notes = [], []
    if "error" in ref:
        return ["reference: %s" % ref["error"]], notes
    if "error" in cand:
        return [cand["error"]], notes
    opts = case.get("opts", {})

    if ref["status"] != cand["status"]:
        diffs.append("status: %s expected, got %s" % (ref["status"],
                                                      cand["status"]))
    if ref.get("version") != cand.get("version"):
        diffs.append("status line: %s expected, got %s" % (
            ref.get("version"), cand.get("version")))
    rh, ch = ref["headers"], cand["headers"]
    for k in ("content-type", "content-encoding"):
        if rh.get(k) != ch.get(k):
            diffs.append("header %s: %r expected, got %r" % (
                k, rh.get(k), ch.get(k)))
    cors = sorted({k for k in list(rh) + list(ch)
                   if k.startswith("access-control-")})
    for k in cors:
        if rh.get(k) != ch.get(k):
            diffs.append("header %s: %r expected, got %r" % (
                k, rh.get(k), ch.get(k)))

    # transport details: informational only
    if rh.get("connection") != ch.get("connection"):
        notes.append("connection: %r vs %r" % (rh.get("connection"),
                                               ch.get("connection")))
    rf = "chunked" if "transfer-encoding" in rh else \
        ("length" if "content-length" in rh else "none")
    cf = "chunked" if "transfer-encoding" in ch else \
        ("length" if "content-length" in ch else "none")
    if rf != cf:
        notes.append("framing: %s vs %s" % (rf, cf))
    for k in ("server", "www-authenticate"):
        if (k in rh) != (k in ch):
            notes.append("%s header: %s vs %s" % (
                k, "present" if k in rh else "absent",
                "present" if k in ch else "absent"))
    rd = "date" in [h.lower() for h in ref.get("header_names", ())]
    cd = "date" in [h.lower() for h in cand.get("header_names", ())]
    if rd != cd:
        notes.append("date header: %s vs %s" % (
            "present" if rd else "absent", "present" if cd else "absent"))

    rb, cb = _plain_body(ref, rh), _plain_body(cand, ch)
    if rb.endswith("\r\n") != cb.endswith("\r\n"):
        diffs.append("body: ends with CRLF expected %s, got %s" % (
            "yes" if rb.endswith("\r\n") else "no",
            "yes" if cb.endswith("\r\n") else "no"))
    if not rb or not cb:
        if bool(rb) != bool(cb):
            diffs.append("body: %s expected, got %s" % (
                "empty" if not rb else "%d bytes" % len(rb),
                "empty" if not cb else "%d bytes: %s" % (len(cb),
                                                         _short(cb, 80))))
        return diffs, notes

    if _is_json_ct(rh.get("content-type")) or rb.lstrip()[:1] in ("{", "["):
        try:
            rj, rfix = parse_json(rb)
        except ValueError:
            return diffs + ["reference body is not JSON"], notes
        try:
            cj, cfix = parse_json(cb)
        except ValueError as e:
            return diffs + ["body: candidate body is not valid JSON (%s): %s"
                            % (e, _short(cb, 120))], notes
        if cfix and not rfix:
            diffs.append("body: candidate body is invalid JSON")
        elif rfix and not cfix:
            diffs.append("body: reference body is invalid JSON (bare "
                         "context value); compared after quoting it")
        rtok = _tokens(ref_subst, ([(ref["ctx"], "{ctx}")]
                                   if ref.get("ctx") else []))
        ctok = _tokens(cand_subst, ([(cand["ctx"], "{ctx}")]
                                    if cand.get("ctx") else []))
        for d in compare_json(rj, cj, opts, rtok, ctok):
            diffs.append("body: " + d)
    elif (rh.get("content-type") or "").startswith("text/plain") and \
            "# TYPE " in rb:
        diffs += compare_prom(rb, cb, opts.get("prom_labels_exact"))
    elif (rh.get("content-type") or "").startswith("text/html"):
        if _html_norm(rb) != _html_norm(cb):
            diffs.append("body: HTML differs: expected %s, got %s" % (
                _short(_html_norm(rb), 200), _short(_html_norm(cb), 200)))
    return diffs, notes


_PROM_SAMPLE = re.compile(r'([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)')
_PROM_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


# label values that are the recording host's, not data to compare
_PROM_HOST_LABELS = ("hostname", "machineid", "domainname")


def prom_families(text, exact=False):
    """Prometheus text (pmproxy's /metrics form) as a list of families:
    (pcp5 fields but the name, name, type, [(sample, label keys,
    instname, instid)]); exact: the labels as written instead, in their
    order with their values (the host's own masked)."""
    fams = []
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# PCP5 "):
            fams.append({"pcp5": tuple(line.split()[2:]), "name": None,
                         "type": None, "samples": []})
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            if not fams or fams[-1]["name"] is not None:
                fams.append({"pcp5": None, "name": None, "type": None,
                             "samples": []})
            fams[-1].update(name=name, type=typ)
        elif line.startswith("#"):
            continue
        else:
            m = _PROM_SAMPLE.match(line)
            if not m or not fams:
                raise ValueError("not a sample line: %r" % line[:80])
            pairs = _PROM_LABEL.findall(m.group(2) or "")
            labels = dict(pairs)
            float(m.group(3))
            if exact:
                fams[-1]["samples"].append((m.group(1), tuple(
                    (k, "HOST" if k in _PROM_HOST_LABELS else v)
                    for k, v in pairs)))
                continue
            fams[-1]["samples"].append((m.group(1), tuple(sorted(labels)),
                                        labels.get("instname"),
                                        labels.get("instid")))
    return fams


def compare_prom(rb, cb, exact=False):
    """Families, their # PCP5 fields, TYPE, sample names, label names and
    instances must be equal; values, label order and label values other
    than instname/instid are data. exact (opts prom_labels_exact): each
    sample's labels in pmproxy's order with their values too (but the
    host's hostname, machineid and domainname)."""
    try:
        rf = prom_families(rb, exact)
    except ValueError as e:
        return ["reference body is not Prometheus text: %s" % e]
    try:
        cf = prom_families(cb, exact)
    except ValueError as e:
        return ["body: candidate body is not Prometheus text: %s" % e]
    diffs = []
    rn, cn = [f["name"] for f in rf], [f["name"] for f in cf]
    if rn != cn:
        return ["body: families %s expected, got %s" % (rn, cn)]
    for r, c in zip(rf, cf):
        for k in ("pcp5", "type"):
            if r[k] != c[k]:
                diffs.append("body: %s %s: %r expected, got %r" % (
                    r["name"], k, r[k], c[k]))
        if sorted(r["samples"]) != sorted(c["samples"]):
            diffs.append("body: %s samples: %s expected, got %s" % (
                r["name"], _short(sorted(r["samples"]), 200),
                _short(sorted(c["samples"]), 200)))
    return diffs


def apply_deviation(case_id, diffs, deviations):
    """Split diffs into (remaining, allowed) per the deviation allowlist."""
    dev = deviations.get(case_id)
    if not dev:
        return diffs, []
    pats = [re.compile(p) for p in dev["allow"]]
    remaining, allowed = [], []
    for d in diffs:
        (allowed if any(p.search(d) for p in pats) else remaining).append(d)
    return remaining, allowed


def summary(rec, n=300):
    """A short one-record description for diagnostics."""
    if "error" in rec:
        return rec["error"]
    b = rec.get("body", "")
    return "%s %s ct=%r body=%s" % (rec["status"], rec.get("reason", ""),
                                    rec["headers"].get("content-type"),
                                    _short(b, n))
