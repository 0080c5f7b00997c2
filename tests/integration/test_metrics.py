#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_metrics.py - GET /metrics: Prometheus text and OpenMetrics (TAP).

A daemon runs recorded bpftrace 0.17 output (tests/lib/fake-bpftrace):
keyed and plain hist(), lhist(), a map with hostile keys, stats() and
printf text. Both formats must pass tests/lib/openmetrics.py (strict),
the values must be those of /pmapi/fetch, histograms real Prometheus
histograms, text output left out, and the non-histogram output must
follow pmproxy 6.0.3's /metrics mapping (the live pmproxy on
127.0.0.1:44322 when one answers, else the recorded transcript). Past
--max-answer-bytes or --max-memory, /metrics answers the JSON error
/pmapi/fetch gives.
"""

import json
import os
import re
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
import openmetrics  # noqa: E402

BIN = btd.default_binary()
FAKE = btd.FAKE_BPFTRACE
SHARED = os.environ.get("BT_SHARED") or os.path.join(
    os.path.dirname(btd.REPO_ROOT), "shared")
FIX = os.path.join(SHARED, "fixtures", "bpftrace-0.17")
OM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/"
             "openmetrics-text;version=0.0.1;q=0.75,text/plain;"
             "version=0.0.4;q=0.5,*/*;q=0.1")   # Prometheus 2.x's
SCRIPTS = ["hist_keyed", "hist_global", "lhist", "lhist_keyed",
           "keys_special_strings", "avg_stats", "printf_multiline_csv",
           "map_int_key"]
PCP5_RE = re.compile(r"# PCP5 ([a-z][\w.]*) (\d+\.\d+\.\d+) (\w+) "
                     r"(PM_INDOM_NULL|\d+\.\d+) (counter|instant|discrete)"
                     r" (.+)\Z")

tap = btd.Tap()
if not os.access(BIN, os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % BIN)
if not os.path.isdir(FIX):
    btd.Tap.skip_all("no bpftrace fixtures in %s" % FIX)


def pname(name):
    return name.replace(".", "_")


def scripts_dir():
    d = tempfile.mkdtemp(prefix="btd-metrics-")
    for s in SCRIPTS:
        with open(os.path.join(FIX, s + ".bt")) as f:
            code = f.read()
        code = re.sub(r"interval:ms:\d+ \{ exit\(\); \}", "", code)
        with open(os.path.join(d, s + ".bt"), "w") as f:
            f.write("// name: %s\n// fixture: %s\n// fake: hold\n%s"
                    % (s, s, code))
    return d


def get(d, path, accept=None):
    hdrs = {"Accept": accept} if accept else {}
    return btd.http("GET", d.url(path), headers=hdrs, timeout=15.0)


def fetch(d, names):
    st, j, _ = d.get_json("/pmapi/fetch?names=" + urllib.parse.quote(names))
    return {v["name"]: v["instances"] for v in (j or {}).get("values", [])}


def indom(d, name):
    st, j, _ = d.get_json("/pmapi/indom?name=" + name)
    return {i["instance"]: i["name"] for i in (j or {}).get("instances", [])}


def parses(text, om, desc):
    try:
        fams = openmetrics.parse(text, om=om)
        tap.ok(True, desc)
        return fams
    except openmetrics.FormatError as e:
        tap.ok(False, desc, str(e))
        return {}


def test_formats(d):
    st, hdrs, body = get(d, "/metrics")
    tap.ok(st == 200, "GET /metrics answers 200", st)
    tap.ok(hdrs.get("content-type", "").startswith("text/plain"),
           "plain scrape is text/plain", hdrs.get("content-type"))
    text = parses(body, False, "text format passes the strict parser")
    st, hdrs, obody = get(d, "/metrics", OM_ACCEPT)
    ct = hdrs.get("content-type", "")
    tap.ok(st == 200 and ct.startswith("application/openmetrics-text") and
           "version=1.0.0" in ct, "Prometheus' Accept gets OpenMetrics "
           "1.0.0", ct)
    om = parses(obody, True, "OpenMetrics passes the strict parser "
                "(# EOF, no free comments, histogram rules)")
    tap.ok(obody.endswith(b"# EOF\n") and b"# PCP5" not in obody,
           "OpenMetrics ends in # EOF and has no # PCP5 lines")
    st, _, b2 = get(d, "/metrics", "text/plain;version=0.0.4")
    tap.ok(b"# EOF" not in b2 and b"# PCP5" in b2,
           "text/plain is asked for: pmproxy's form with # PCP5 lines")
    st, _, b3 = get(d, "/metrics",
                    "application/openmetrics-text;q=0,text/plain")
    tap.ok(b"# EOF" not in b3, "openmetrics with q=0 is not chosen")
    return text, om


def test_mapping(d, text, om):
    want_counter = {"bpftrace_daemon_requests", "bpftrace_daemon_uptime",
                    "bpftrace_daemon_errors"}
    for n in sorted(want_counter):
        f = text.get(n)
        tap.ok(f is not None and f.type == "counter",
               "%s is a counter (PCP counter semantics)" % n,
               f and f.type)
        g = om.get(n)
        tap.ok(g is not None and g.type == "counter" and g.samples and
               all(s[0] == n + "_total" for s in g.samples),
               "OpenMetrics: %s is a counter family of %s_total samples"
               % (n, n), g)
    f = text.get("bpftrace_daemon_contexts")
    tap.ok(f is not None and f.type == "gauge",
           "instant metric is a gauge", f and f.type)
    f = text.get("bpftrace_daemon_pid")
    tap.ok(f is not None and f.type == "gauge",
           "discrete metric is a gauge", f and f.type)
    strings = ["bpftrace_info_version", "bpftrace_info_daemon_version",
               "bpftrace_info_scripts_json", "pmcd_hostname",
               "bpftrace_scripts_printf_multiline_csv_data_output",
               "bpftrace_scripts_hist_keyed_status",
               "bpftrace_control_register"]
    tap.ok(not any(s in text or s in om for s in strings),
           "string metrics (text output, versions, status) are left out",
           [s for s in strings if s in text])
    # every family: # PCP5 line first, metric name from it with . -> _
    bad = []
    for name, f in text.items():
        m = PCP5_RE.match(f.comments[0]) if f.comments else None
        if not m or pname(m.group(1)) != name:
            bad.append(name)
            continue
        want = {"counter": "counter"}.get(m.group(5), "gauge")
        if f.type != "histogram" and f.type != want:
            bad.append(name)
        if f.help is None:
            bad.append(name)
    tap.ok(not bad, "every family has # PCP5, HELP and TYPE from its "
           "semantics", bad)
    # labels: context labels everywhere, instname/instid per instance
    req = text["bpftrace_daemon_requests"]
    labels = req.samples[0][1]
    tap.ok({"hostname", "domainname", "instname", "instid"} <=
           set(labels), "instance metrics carry instname and instid, plus "
           "the context labels", labels)
    names = indom(d, "bpftrace.daemon.requests")
    tap.ok(all(names.get(int(s[1]["instid"])) == s[1]["instname"]
               for s in req.samples),
           "instname/instid are the indom's names and ids")


def test_values(d, text):
    m = "bpftrace.scripts.map_int_key.data.byid"
    vals = fetch(d, m).get(m, [])
    names = indom(d, m)
    want = {names[i["instance"]]: i["value"] for i in vals}
    f = text.get(pname(m))
    got = {s[1]["instname"]: s[2] for s in f.samples} if f else {}
    tap.ok(want and got == {k: float(v) for k, v in want.items()},
           "map values are /pmapi/fetch's, keys as instname",
           (sorted(want.items())[:4], sorted(got.items())[:4]))
    m = "bpftrace.scripts.keys_special_strings.data.k"
    vals = fetch(d, m).get(m, [])
    names = indom(d, m)
    want = {names[i["instance"]]: float(i["value"]) for i in vals}
    f = text.get(pname(m))
    got = {s[1]["instname"]: s[2] for s in f.samples} if f else {}
    tap.ok(want and got == want, "hostile keys (quote, backslash, newline, "
           "tab, control and non-UTF-8 bytes) survive label escaping",
           (want, got))
    m = "bpftrace.scripts.avg_stats.data.st"
    f = text.get(pname(m))
    got = {s[1]["instname"]: s[2] for s in f.samples} if f else {}
    tap.ok(got.get("count") == 303 and got.get("total") == 60396,
           "stats() is a gauge per count/average/total", got)


def bucket_hi(name):
    """"lo-hi" (lo, hi: integers, -inf or inf) -> hi as text."""
    m = re.match(r"(-?(?:inf|\d+))-(-?(?:inf|\d+))\Z", name)
    return m.group(2) if m else None


def hist_groups(f, suffix="_bucket"):
    out = {}
    for sname, labels, value, _ in f.samples:
        key = labels.get("instname", "")
        if sname.endswith(suffix):
            out.setdefault(key, []).append((labels.get("le"), value))
    return out


def test_histograms(d, text, om):
    m = "bpftrace.scripts.hist_global.data.h"
    f = text.get(pname(m))
    g = om.get(pname(m))
    tap.ok(f is not None and f.type == "histogram" and g is not None and
           g.type == "histogram", "hist() is a histogram family in both "
           "formats", f)
    if f is None:
        return
    vals = fetch(d, m).get(m, [])
    names = indom(d, m)
    total = sum(i["value"] for i in vals)
    buckets = hist_groups(f)[""]
    tap.ok(buckets[-1] == ("+Inf", total), "+Inf bucket is the total of "
           "the PCP buckets", (buckets[-1], total))
    cnt = [s for s in f.samples if s[0].endswith("_count")]
    tap.ok(len(cnt) == 1 and cnt[0][2] == total, "_count is the total")
    tap.ok(not any(s[0].endswith("_sum") for s in f.samples),
           "no _sum (bpftrace's buckets do not carry it)")
    # each le is the inclusive upper bound of a PCP bucket "lo-hi"
    his = sorted(int(bucket_hi(n)) for n in names.values()
                 if not n.endswith("-inf"))
    les = [int(le) for le, _ in buckets if le != "+Inf"]
    tap.ok(les == his, "le values are the buckets' upper bounds", (les, his))
    cum, ok = 0, True
    byhi = {}
    for i in vals:
        byhi[bucket_hi(names[i["instance"]])] = i["value"]
    for le, v in buckets:
        if le == "+Inf":
            continue
        cum += byhi[le]
        ok = ok and v == cum
    tap.ok(ok, "bucket counts are cumulative sums of the PCP buckets")
    gb = hist_groups(g)[""]
    tap.ok([v for _, v in gb] == [v for _, v in buckets] and
           all(le == "+Inf" or re.match(r"-?\d+\.0\Z", le) for le, _ in gb),
           "OpenMetrics has the same buckets with canonical le values",
           gb[:3])
    tap.ok(not any(s[0].endswith("_count") for s in g.samples),
           "OpenMetrics histogram has no _count without _sum")
    # lhist: the last bucket is open ("300-inf"), so +Inf is that bucket
    m = "bpftrace.scripts.lhist.data.l"
    f = text.get(pname(m))
    b = hist_groups(f)[""] if f else []
    tap.ok(b and b[-1] == ("+Inf", 297.0) and b[-2] == ("299", 194.0),
           "lhist: open last bucket becomes +Inf", b[-3:])
    # keyed: one histogram per key (instname), key with ':' kept whole
    for s in ("hist_keyed", "lhist_keyed"):
        m = "bpftrace.scripts.%s.data.%s" % (s, "hk" if s == "hist_keyed"
                                            else "lk")
        f = text.get(pname(m))
        if f is None:
            m2 = [k for k in text if k.startswith(pname(
                "bpftrace.scripts.%s.data." % s))]
            f = text.get(m2[0]) if m2 else None
            m = m2[0].replace("_", ".") if m2 else m
        groups = hist_groups(f) if f else {}
        counts = {k: v[0][1] for k, v in hist_groups(f, "_count").items()} \
            if f else {}
        tap.ok(f is not None and f.type == "histogram" and len(groups) > 1
               and all(v[-1][0] == "+Inf" and v[-1][1] == counts.get(k)
                       for k, v in groups.items()),
               "%s: one histogram per key, each ending in +Inf = _count"
               % s, sorted(groups)[:5])
        if s == "hist_keyed":
            tap.ok("memfd:sealed-91" in groups,
                   "a key containing ':' stays whole", sorted(groups))


def test_params(d):
    st, hdrs, body = get(d, "/metrics?names=bpftrace.daemon")
    fams = openmetrics.parse(body) if st == 200 else {}
    tap.ok(st == 200 and fams and all(n.startswith("bpftrace_daemon_")
                                      for n in fams),
           "names= is a PMNS prefix (pmproxy 6.0.3)", list(fams))
    st, hdrs, body = get(d, "/metrics?names=bpftrace.daemon.pid,"
                         "bpftrace.daemon.uptime")
    fams = openmetrics.parse(body) if st == 200 else {}
    tap.ok(list(fams) == ["bpftrace_daemon_pid", "bpftrace_daemon_uptime"],
           "names= in the order given", list(fams))
    st, hdrs, body = get(d, "/metrics?names=no.such.metric")
    try:
        j = json.loads(body)
    except ValueError:
        j = {}
    tap.ok(st == 400 and j.get("message") ==
           "'no.such.metric' - Unknown metric name" and
           j.get("success") is False and isinstance(j.get("context"), int),
           "unknown name: pmproxy's 400 JSON", body[:200])
    st, _, body = get(d, "/metrics?names=bpftrace.daemon.pid&times=true")
    fams = openmetrics.parse(body) if st == 200 else {}
    ts = fams["bpftrace_daemon_pid"].samples[0][3] if fams else None
    import time
    tap.ok(ts is not None and abs(ts / 1000.0 - time.time()) < 60,
           "times=true appends milliseconds (correctly, unlike 6.0.3)", ts)
    st, _, body = get(d, "/metrics?names=bpftrace.daemon.pid&times=true",
                      OM_ACCEPT)
    try:
        fams = openmetrics.parse(body, om=True)
    except openmetrics.FormatError:
        fams = {}
    ts = fams["bpftrace_daemon_pid"].samples[0][3] if fams else None
    tap.ok(ts is not None and abs(ts - time.time()) < 60,
           "OpenMetrics timestamps are seconds", ts)
    st, hdrs, _ = btd.http("POST", d.url("/metrics"), body=b"",
                           timeout=10.0)
    tap.ok(st == 200, "POST works as in pmproxy", st)
    st, _, _ = btd.http("GET", d.url("/metricsx"), timeout=10.0)
    tap.ok(st == 400, "/metricsx is still the unknown servlet", st)


PMPROXY = "http://127.0.0.1:44322"
PMPROXY_NAMES = "hinv.ncpu,kernel.all.load,kernel.all.pswitch"


def pmproxy_sample():
    """pmproxy's /metrics text: live when it answers, else the recorded
    transcript [48]; None when neither is there."""
    try:
        st, hdrs, body = btd.http("GET", PMPROXY + "/metrics?names=" +
                                  PMPROXY_NAMES, timeout=5.0)
        if st == 200 and b"# PCP5" in body:
            return "live pmproxy", body.decode()
    except Exception:
        pass
    path = os.path.join(SHARED, "reference", "pmproxy-transcripts.txt")
    try:
        with open(path) as f:
            t = f.read()
    except OSError:
        return None, None
    m = re.search(r"### \[48\].*?\r?\n\r?\n(# PCP5.*?)\n\n", t, re.S)
    return ("recorded transcript", m.group(1) + "\n") if m else (None, None)


def shape(fams):
    """Per family: (type, whether it has instances, label names beyond
    the instance ones, and the metadata line order)."""
    out = {}
    for name, f in fams.items():
        m = PCP5_RE.match(f.comments[0]) if f.comments else None
        sem = m.group(5) if m else None
        indom = m.group(4) != "PM_INDOM_NULL" if m else None
        inst_ok = all(("instname" in s[1] and "instid" in s[1]) == indom
                      for s in f.samples)
        out[name] = (sem, f.type, indom, inst_ok,
                     frozenset(k for s in f.samples for k in s[1]
                               if k not in ("instname", "instid", "le")))
    return out


def test_pmproxy_compare(d, text):
    src, ptext = pmproxy_sample()
    if ptext is None:
        tap.skip("pmproxy comparison", "no live pmproxy and no transcript")
        return
    try:
        pf = openmetrics.parse(ptext)
        tap.ok(True, "pmproxy's own /metrics (%s) passes the text-format "
               "parser" % src)
    except openmetrics.FormatError as e:
        tap.ok(False, "pmproxy's /metrics (%s) parses" % src, str(e))
        return
    ps, ours = shape(pf), shape({k: v for k, v in text.items()
                                 if v.type != "histogram"})
    ctx = frozenset(["hostname", "machineid", "domainname"])
    rule = lambda sem, typ: typ == ("counter" if sem == "counter"
                                    else "gauge")  # noqa: E731
    tap.ok(all(rule(v[0], v[1]) and v[3] and v[4] == ctx
               for v in ps.values()),
           "pmproxy (%s): TYPE from semantics, instname+instid exactly for "
           "indom metrics, context labels" % src, ps)
    bad = [k for k, v in ours.items()
           if not (rule(v[0], v[1]) and v[3] and ctx <= v[4] and
                   v[4] - ctx <= {"metrictype", "bpftrace_version"})]
    tap.ok(not bad, "ours follow the same rules (plus the metric's "
           "metrictype and bpftrace_version labels, as pmproxy adds "
           "metric labels)", bad)
    # same meta line order: # PCP5, # HELP, # TYPE, then the samples
    po = [ln.split(" ")[1] for ln in ptext.splitlines() if ln.startswith("#")]
    st, _, body = get(d, "/metrics?names=bpftrace.daemon")
    oo = [ln.split(" ")[1] for ln in body.decode().splitlines()
          if ln.startswith("#")]
    tap.ok(po[:3] == ["PCP5", "HELP", "TYPE"] and oo[:3] == po[:3] and
           len(oo) % 3 == 0, "metadata lines come in pmproxy's order",
           (po[:3], oo[:3]))
    if src == "live pmproxy":
        hl = next(iter(pf.values())).samples[0][1]
        ol = text["bpftrace_daemon_pid"].samples[0][1]
        tap.ok(all(hl.get(k) == ol.get(k) for k in ctx),
               "context label values equal the live pmproxy's",
               (hl, ol))


BAD = [
    ("no newline at the end", "a 1", False),
    ("blank line", "a 1\n\nb 2\n", False),
    ("bad escape in a label", 'a{x="\\t"} 1\n', False),
    ("raw quote in a label", 'a{x="q"q"} 1\n', False),
    ("second TYPE", "# TYPE a gauge\n# TYPE a gauge\na 1\n", False),
    ("interleaved family", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n"
     "a{x=\"1\"} 2\n", False),
    ("duplicate series", "a 1\na 2\n", False),
    ("buckets not cumulative", "# TYPE h histogram\nh_bucket{le=\"1\"} 5\n"
     "h_bucket{le=\"+Inf\"} 4\n", False),
    ("no +Inf bucket", "# TYPE h histogram\nh_bucket{le=\"1\"} 5\n", False),
    ("_count differs", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 5\n"
     "h_count 4\n", False),
    ("OpenMetrics without # EOF", "# TYPE a gauge\na 1\n", True),
    ("OpenMetrics counter sample without _total",
     "# TYPE a counter\na 1\n# EOF\n", True),
    ("OpenMetrics free comment", "# PCP5 x\na 1\n# EOF\n", True),
    ("OpenMetrics _count without _sum", "# TYPE h histogram\n"
     "h_bucket{le=\"+Inf\"} 5\nh_count 5\n# EOF\n", True),
    ("bad metric name", "1a 1\n", False),
    ("bad value", "a one\n", False),
]


def test_parser_rejects():
    for desc, text, om in BAD:
        try:
            openmetrics.parse(text, om=om)
            tap.ok(False, "parser rejects: " + desc)
        except openmetrics.FormatError:
            tap.ok(True, "parser rejects: " + desc)
    good = ("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\n"
            "h_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\n"
            "# TYPE c counter\nc_total{a=\"\\\"\\\\\\n\"} 1 1.5\n# EOF\n")
    try:
        openmetrics.parse(good, om=True)
        tap.ok(True, "parser accepts a valid OpenMetrics text")
    except openmetrics.FormatError as e:
        tap.ok(False, "parser accepts a valid OpenMetrics text", str(e))


def test_auth_reads():
    pw = os.environ.get("BPFTRACED_PASSWD") or os.path.join(
        os.path.dirname(BIN), "bpftraced-passwd")
    if not os.access(pw, os.X_OK):
        tap.skip("--auth-reads covers /metrics", "no bpftraced-passwd")
        return
    tmp = tempfile.mkdtemp(prefix="btd-metrics-auth-")
    users = os.path.join(tmp, "users")
    import subprocess
    line = subprocess.run([pw, "--roles", "read", "prom"], input=b"s3cret\n",
                          stdout=subprocess.PIPE, check=True).stdout
    with open(users, "wb") as f:
        f.write(line)
    os.chmod(users, 0o600)
    import base64
    cred = "Basic " + base64.b64encode(b"prom:s3cret").decode()
    with btd.Daemon(["--pmcd", "off", "--auth-file", users,
                     "--auth-reads"]) as d:
        st, hdrs, _ = get(d, "/metrics")
        st2, _, body = btd.http("GET", d.url("/metrics"),
                                headers={"Authorization": cred})
        tap.ok(st == 401 and "www-authenticate" in hdrs and st2 == 200 and
               b"bpftrace_daemon_uptime" in body,
               "--auth-reads: /metrics needs credentials (401, then 200)",
               (st, st2))
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


def post_names(d, path, n, accept=None):
    hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
    if accept:
        hdrs["Accept"] = accept
    body = ("names=" + ",".join(["bpftrace.daemon.uptime"] * n)).encode()
    return btd.http("POST", d.url(path), body=body, headers=hdrs,
                    timeout=30.0)


def test_answer_limits():
    """/metrics is built within --max-answer-bytes and charged to
    --max-memory, as /pmapi answers are: past either, the same JSON error
    /pmapi/fetch gives (400 naming --max-answer-bytes, 503 naming
    --max-memory), never a cut body."""
    with btd.Daemon(["--pmcd", "off", "--max-answer-bytes", "65536"]) as d:
        st, _, b = post_names(d, "/metrics", 10)
        tap.ok(st == 200 and b.count(b"\nbpftrace_daemon_uptime{") == 10,
               "--max-answer-bytes 65536: a small /metrics answer is "
               "served", (st, b[:200]))
        _, _, pb = post_names(d, "/pmapi/fetch", 1000)
        pmsg = json.loads(pb).get("message")
        for path, accept in (("/metrics", None), ("/metrics", OM_ACCEPT),
                             ("/pmapi/metrics", None)):
            st, hdrs, b = post_names(d, path, 1000, accept)
            j = json.loads(b) if st == 400 else {}
            tap.ok(st == 400 and "json" in hdrs.get("content-type", "") and
                   j.get("success") is False and
                   j.get("message") == pmsg and
                   "answer too large" in pmsg and
                   "--max-answer-bytes" in pmsg,
                   "%s%s past --max-answer-bytes: 400, /pmapi/fetch's "
                   "message" % (path, " (OpenMetrics)" if accept else ""),
                   (st, b[:300], pmsg))
    with btd.Daemon(["--pmcd", "off", "--max-memory",
                     str(1024 * 1024)]) as d:
        st, hdrs, b = post_names(d, "/metrics", 4096)
        j = json.loads(b) if st == 503 else {}
        tap.ok(st == 503 and j.get("success") is False and
               "memory limit reached" in j.get("message", "") and
               "--max-memory" in j.get("message", ""),
               "/metrics past --max-memory: 503 with the memory message",
               (st, b[:300]))
        st, _, b = get(d, "/metrics")
        tap.ok(st == 200 and b"bpftrace_daemon_uptime" in b,
               "and the memory is back: /metrics is served again",
               (st, b[:200]))


def main():
    test_parser_rejects()
    test_auth_reads()
    test_answer_limits()
    sd = scripts_dir()
    args = ["--bpftrace", FAKE, "--pmcd", "off"]
    for s in SCRIPTS:
        args += ["--script", os.path.join(sd, s + ".bt")]
    try:
        with btd.Daemon(args, env={"BT_SHARED": SHARED}) as d:
            # wait for every script's data
            import time
            deadline = time.monotonic() + 15
            want = ["bpftrace.scripts.%s.status" % s for s in SCRIPTS]
            while time.monotonic() < deadline:
                v = fetch(d, ",".join(want))
                if all(v.get(w, [{}])[0].get("value") == "started"
                       for w in want) and fetch(
                        d, "bpftrace.scripts.lhist_keyed.data"):
                    break
                time.sleep(0.2)
            time.sleep(1.5)
            text, om = test_formats(d)
            test_mapping(d, text, om)
            test_values(d, text)
            test_histograms(d, text, om)
            test_params(d)
            test_pmproxy_compare(d, text)
            d.stop(cleanup=False)
            tap.ok(d.returncode == 0 and "runtime error" not in
                   d.stderr_text() and "ERROR: " not in d.stderr_text(),
                   "daemon exits 0 with no sanitizer reports",
                   d.stderr_text()[-2000:])
    finally:
        import shutil
        shutil.rmtree(sd, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
