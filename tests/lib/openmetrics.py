# SPDX-License-Identifier: MIT
"""openmetrics.py - a strict parser for Prometheus text (0.0.4) and
OpenMetrics 1.0.0 exposition, Python stdlib only.

    fams = parse(text, om=False)    # raises FormatError on any violation

Returns an ordered dict family name -> Family(name, type, help, samples,
comments) where samples are (name, labels dict, value float, timestamp or
None). Checked: the line grammar (no blank lines, "\\n" endings), metric
and label names, label value escaping (only \\\\, \\" and \\n), numbers,
HELP and TYPE at most once per family and before its samples, families
not interleaved, sample names allowed for the family's type, no duplicate
series, histograms (le present and a float, buckets in increasing le with
non-decreasing cumulative counts, a +Inf bucket last, _count equal to it).
OpenMetrics adds: "# EOF" last, only HELP/TYPE/UNIT comments, counter
samples *_total (or _created), timestamps in seconds, _count only with
_sum (and the other way round) for histograms.
"""

import math
import re

METRIC_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                      r"(?:[eE][+-]?[0-9]+)?\Z")
TYPES_TEXT = ("counter", "gauge", "histogram", "summary", "untyped")
TYPES_OM = ("counter", "gauge", "histogram", "gaugehistogram", "summary",
            "stateset", "info", "unknown")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("_count", "_sum", "_created"),
    "info": ("_info",),
}


class FormatError(ValueError):
    def __init__(self, lineno, msg, line=""):
        ValueError.__init__(self, "line %d: %s: %r" % (lineno, msg,
                                                       line[:200]))
        self.lineno = lineno


class Family:
    def __init__(self, name):
        self.name = name
        self.type = None
        self.help = None
        self.unit = None
        self.samples = []
        self.comments = []

    def __repr__(self):
        return "Family(%s, %s, %d samples)" % (self.name, self.type,
                                              len(self.samples))


def parse_float(s, lineno, line):
    if s in ("NaN", "+Inf", "-Inf", "Inf", "+inf", "-inf", "nan"):
        if s not in ("NaN", "+Inf", "-Inf"):
            raise FormatError(lineno, "non-canonical special value", line)
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not FLOAT_RE.match(s):
        raise FormatError(lineno, "bad number %r" % s, line)
    return float(s)


def unescape(s, lineno, line, quote_ok):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s):
                raise FormatError(lineno, "dangling backslash", line)
            n = s[i + 1]
            if n == "\\":
                out.append("\\")
            elif n == "n":
                out.append("\n")
            elif n == '"' and quote_ok:
                out.append('"')
            else:
                raise FormatError(lineno, "bad escape \\%s" % n, line)
            i += 2
            continue
        if c == "\n":
            raise FormatError(lineno, "raw newline", line)
        out.append(c)
        i += 1
    return "".join(out)


def parse_labels(s, i, lineno, line):
    """s[i] == '{'; returns (labels dict, index after '}')."""
    labels = {}
    i += 1
    if i < len(s) and s[i] == "}":
        return labels, i + 1
    while True:
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            raise FormatError(lineno, "bad label name", line)
        name = m.group(0)
        if name.startswith("__"):
            raise FormatError(lineno, "reserved label name %s" % name, line)
        if name in labels:
            raise FormatError(lineno, "duplicate label %s" % name, line)
        i = m.end()
        if s[i:i + 2] != '="':
            raise FormatError(lineno, "expected =\" after label name", line)
        i += 2
        j, val = i, []
        while True:
            if j >= len(s):
                raise FormatError(lineno, "unterminated label value", line)
            if s[j] == "\\":
                j += 2
                continue
            if s[j] == '"':
                break
            j += 1
        labels[name] = unescape(s[i:j], lineno, line, True)
        i = j + 1
        if i < len(s) and s[i] == ",":
            i += 1
            if i < len(s) and s[i] == "}":
                return labels, i + 1        # trailing comma is allowed
            continue
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        raise FormatError(lineno, "expected , or } in labels", line)


def family_of(sample, fams, cur, om):
    """The family a sample name belongs to (the current one only)."""
    if cur is None:
        return None
    if sample == cur.name:
        if cur.type in ("counter", "histogram", "summary", "info",
                        "gaugehistogram") and om:
            return None
        if cur.type in ("histogram", "summary") and not om:
            return None
        return cur
    for suf in SUFFIXES.get(cur.type, ()):
        if sample == cur.name + suf:
            if not om and suf == "_created":
                return None
            return cur
    return None


def parse(text, om=False):
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(0, "not UTF-8: %s" % e)
    if not text.endswith("\n"):
        raise FormatError(0, "text does not end with a newline")
    lines = text[:-1].split("\n")
    if om:
        if not lines or lines[-1] != "# EOF":
            raise FormatError(len(lines), "no # EOF at the end")
        lines = lines[:-1]
    fams = {}
    order = []
    cur = None
    closed = set()
    series = set()
    pending = []        # comments before the next family's first line

    def get_family(name, lineno, line):
        nonlocal cur
        if cur is not None and cur.name == name:
            return cur
        if name in fams:
            raise FormatError(lineno, "family %s interleaved or its "
                              "metadata after samples" % name, line)
        if cur is not None:
            closed.add(cur.name)
        f = Family(name)
        f.comments.extend(pending)
        del pending[:]
        fams[name] = f
        order.append(name)
        cur = f
        return f

    for n, line in enumerate(lines, 1):
        if line == "":
            raise FormatError(n, "blank line", line)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            kw = parts[1] if len(parts) > 1 else ""
            if kw in ("HELP", "TYPE", "UNIT") and len(parts) >= 3:
                if kw == "UNIT" and not om:
                    pass                      # a comment in text format
                else:
                    name = parts[2]
                    if not METRIC_RE.match(name):
                        raise FormatError(n, "bad metric name", line)
                    f = get_family(name, n, line)
                    if f.samples:
                        raise FormatError(n, "%s after samples" % kw, line)
                    rest = parts[3] if len(parts) > 3 else ""
                    if kw == "HELP":
                        if f.help is not None:
                            raise FormatError(n, "second HELP", line)
                        f.help = unescape(rest, n, line, om)
                    elif kw == "TYPE":
                        if f.type is not None:
                            raise FormatError(n, "second TYPE", line)
                        if rest not in (TYPES_OM if om else TYPES_TEXT):
                            raise FormatError(n, "bad type %r" % rest, line)
                        f.type = rest
                    else:
                        if f.unit is not None:
                            raise FormatError(n, "second UNIT", line)
                        f.unit = rest
                    continue
            if om:
                raise FormatError(n, "comment not allowed in OpenMetrics",
                                  line)
            pending.append(line)
            continue
        m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
        if not m:
            raise FormatError(n, "bad sample name", line)
        sname = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, n, line)
        if i >= len(line) or line[i] != " ":
            raise FormatError(n, "expected a space before the value", line)
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2) or "" in rest:
            raise FormatError(n, "expected value [timestamp]", line)
        value = parse_float(rest[0], n, line)
        ts = None
        if len(rest) == 2:
            if om:
                ts = parse_float(rest[1], n, line)
                if math.isnan(ts) or math.isinf(ts):
                    raise FormatError(n, "bad timestamp", line)
            else:
                if not re.match(r"-?[0-9]+\Z", rest[1]):
                    raise FormatError(n, "timestamp is not integer ms", line)
                ts = int(rest[1])
        f = family_of(sname, fams, cur, om)
        if f is not None and pending:
            f.comments.extend(pending)
            del pending[:]
        if f is None:
            if om and sname in fams:
                raise FormatError(n, "sample outside its family", line)
            if sname in fams or sname in closed:
                raise FormatError(n, "family %s interleaved" % sname, line)
            # a sample without metadata: an untyped/unknown family
            f = get_family(sname, n, line)
            f.type = "unknown" if om else "untyped"
        if f.type is None:
            f.type = "unknown" if om else "untyped"
            if family_of(sname, fams, f, om) is None:
                raise FormatError(n, "sample %s does not fit family %s" %
                                  (sname, f.name), line)
        key = (sname, tuple(sorted(labels.items())))
        if key in series:
            raise FormatError(n, "duplicate series", line)
        series.add(key)
        if f.type == "histogram" and sname == f.name + "_bucket":
            if "le" not in labels:
                raise FormatError(n, "bucket without le", line)
            parse_float(labels["le"], n, line)
        if f.type in ("counter", "histogram") and om and value < 0 and \
                not sname.endswith("_sum"):
            raise FormatError(n, "negative counter value", line)
        f.samples.append((sname, labels, value, ts))
    for f in fams.values():
        if f.type == "histogram":
            check_histogram(f, om)
    return {k: fams[k] for k in order}


def check_histogram(f, om):
    groups = {}
    for sname, labels, value, _ in f.samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "count": None,
                                     "sum": None})
        if sname == f.name + "_bucket":
            g["buckets"].append((float(labels["le"].replace("Inf", "inf")),
                                 value))
        elif sname == f.name + "_count":
            g["count"] = value
        elif sname == f.name + "_sum":
            g["sum"] = value
    for rest, g in groups.items():
        b = g["buckets"]
        where = "%s%s" % (f.name, dict(rest))
        if not b:
            raise FormatError(0, "histogram without buckets: " + where)
        for (le1, c1), (le2, c2) in zip(b, b[1:]):
            if not le2 > le1:
                raise FormatError(0, "le not increasing in " + where)
            if c2 < c1:
                raise FormatError(0, "buckets not cumulative in " + where)
        if not math.isinf(b[-1][0]):
            raise FormatError(0, "no +Inf bucket last in " + where)
        if g["count"] is not None and g["count"] != b[-1][1]:
            raise FormatError(0, "_count differs from +Inf in " + where)
        if om and (g["count"] is None) != (g["sum"] is None):
            raise FormatError(0, "_count without _sum (or the reverse) "
                              "in " + where)
