# SPDX-License-Identifier: MIT
"""cases.py - the pmproxy /pmapi shape-conformance case table (data only).

Each case is a request template plus comparison options.  Placeholders in
"{braces}" are filled per server:

  * static ones from SUBST_PMPROXY / SUBST_BPFTRACED below (URL-quoted when
    put into a request target);
  * dynamic ones looked up on the server at run time (see shape.py):
      {ctx}           a fresh context, GET /pmapi/context?polltimeout=60
      {pmid_u32}      the dotted pmid of {u32} (from /pmapi/metric)
      {pmid_u32_num}  the same pmid as a decimal integer
      {pmid_u32_hex}  ... and as 0x hex
      {indom_num}     {indom_id} as a decimal integer ({indom_hex}: 0x hex)
      {inst_id}       the instance number of {inst_name} in {indom_id}
      {long_NNNN}     a target padded with 'a' to exactly NNNN bytes

Case keys:
  id        unique name, used as the TAP description and fixture key
  method    HTTP method (default GET)
  target    request target template (sent raw, never re-encoded)
  headers   request headers (templates allowed in values)
  body      request body (str) or None
  version   "HTTP/1.0" to send an HTTP/1.0 request line
  pre       list of {"method","target"} requests sent first (same {ctx});
            their answers are not compared
  opts      comparison options (see shape.compare_json):
              exact_keys     JSON keys whose string values must be equal
                             after name substitution ("message" and
                             "client" are always exact)
              loose_numbers  int and float count as one kind ("number");
                             for values of float metrics, whose %.8g
                             output can look like an integer
              elementwise    list of keys whose arrays must have equal
                             length and are compared element by element
                             (other arrays: the first elements only)
              optional_keys  keys that may be present on one side only
                             (e.g. "indom" across a mixed metric list)
              emptiness      (default True) an empty array must be empty
                             on both sides; False: only element shapes
  note      what the case checks (free text)
  pmcd      True: the case names pmcd metrics literally (kernel.all.load,
            hinv.ncpu, disk.dev.read, ...), the same on both sides, and
            needs a bpftraced that passes them through to a pmcd; the
            harness skips it (with the reason) when bpftraced has none

To point the comparison at other metrics, edit the two SUBST_* dicts;
every metric-dependent string in a case goes through them.
"""

# ---------------------------------------------------------------------------
# Per-server substitutions.  Keep the keys of the two dicts identical.
# ---------------------------------------------------------------------------

# Real pmproxy 6.0.3 with a plain local pmcd (linux PMDA).
SUBST_PMPROXY = {
    "u32": "hinv.ncpu",                    # singular, PM_TYPE_U32
    "u64_counter": "kernel.all.cpu.user",  # singular, U64, counter
    "string": "kernel.uname.release",      # singular, STRING
    "indom_metric": "kernel.all.load",     # has an instance domain
    "indom_id": "60.2",                    # ... which is this one
    "inst_name": "1 minute",               # one instance name in it
    "inst_glob": "1*",                     # glob matching >= 1 instance
    "inst_regex": "^1",                    # regex matching >= 1 instance
    "prefix_mixed": "kernel.all",          # PMNS node: leaves + non-leaves
    "prefix_leaf": "kernel.uname",         # PMNS node: leaves only
    "prefix_nonleaf": "kernel",            # PMNS node: non-leaves only
}

# bpftraced (domain 151): its own daemon metrics, always present.
SUBST_BPFTRACED = {
    "u32": "bpftrace.daemon.contexts",
    "u64_counter": "bpftrace.daemon.uptime",
    "string": "bpftrace.info.daemon_version",
    "indom_metric": "bpftrace.daemon.requests",
    "indom_id": "151.1",
    # "context" always exists: the test harness polls /pmapi/context
    # before any case runs.
    "inst_name": "context",
    "inst_glob": "c*",
    "inst_regex": "^c",
    # NB: without loaded scripts bpftraced has no PMNS node with both
    # leaves and non-leaves; "bpftrace" has non-leaves only, so the
    # children-mixed cases cannot require a non-empty "leaf" list.
    "prefix_mixed": "bpftrace",
    "prefix_leaf": "bpftrace.daemon",
    "prefix_nonleaf": "bpftrace",
}

ORIGIN = "http://example.com"
UNKNOWN_CTX = "12345"   # pmproxy ids are random 31-bit; ours must not hit it

# ---------------------------------------------------------------------------
# Documented intentional deviations.  A case listed here passes when every
# difference found matches one of "allow" (regular expressions searched in
# the difference text); the test output names the deviation and its reason.
# ---------------------------------------------------------------------------
_PMWEBD_ALLOW = [r"^header content-type: 'application/json' expected, "
                 r"got 'text/plain'",
                 r"^body: candidate body is not valid JSON",
                 r"^body: ends with CRLF expected yes, got no"]
_PMWEBD_ERROR = {
    "reason": "a pmwebd-dialect error: pmwebd's 400 text/plain 'PMWEBD "
              "error, code N: text', not pmproxy compat mode's JSON",
    "allow": _PMWEBD_ALLOW,
}
_PMWEBD_BAD_URL = {
    "reason": "pmwebd answers a bad URL with 'PMWEBD error, code -22: "
              "Invalid argument' (400 text/plain); pmproxy with its HTML "
              "'unknown servlet' page (also 400)",
    "allow": [r"^header content-type: 'text/html' expected, got "
              r"'text/plain'", r"^body: ends with CRLF expected yes, got no",
              r"^body: HTML differs"],
}

# The request-origin policy (src/lib/origin.c, README "differences"): TRACE is
# not served or advertised, a preflight never echoes a foreign Origin ("*"
# instead), allows X-Grafana-Device-ID, and a preflight for a store or
# derive from an origin not given with --allow-origin is refused (403).
_NO_TRACE = r"^header access-control-allow-methods: '(.*), TRACE, " \
    r"OPTIONS' expected, got '\1, OPTIONS'$"
_NO_ECHO = r"^header access-control-allow-origin: 'http://example\.com' " \
    r"expected, got '\*'$"
_DEVICE_ID = r"^header access-control-allow-headers: '(.*)' expected, got " \
    r"'\1, X-Grafana-Device-ID'$"
_LONG_URL_SERVED = {
    "reason": "pmproxy answers 414 from 8192 bytes of URL; grafana-pcp "
              "sends a whole bpftrace script URL-encoded in store?value=, "
              "so bpftraced serves URLs up to --max-url-bytes (32768)",
    "allow": [r"^status: 414 expected, got 200$",
              r"^header content-type: 'text/html' expected, got "
              r"'application/json'$", r"^body: HTML differs"],
}
_PREFLIGHT = {
    "reason": "a preflight never names a foreign Origin (pmproxy echoes any), "
              "does not list TRACE (answered 405), and allows "
              "X-Grafana-Device-ID (as pmproxy 7.2.2)",
    "allow": [_NO_TRACE, _NO_ECHO, _DEVICE_ID],
}
_PREFLIGHT_STORE = {
    "reason": "a preflight for a store/derive from an origin not given with "
              "--allow-origin is refused: 403 with a JSON message (pmproxy "
              "allows it, echoing the Origin)",
    "allow": [r"^status: (200|405) expected, got 403$",
              r"^header content-type: None expected, got "
              r"'application/json'$",
              r"^header access-control-allow-headers: None expected, got "
              r"'Accept, Accept-Language, Content-Language, Content-Type'$",
              r"^header access-control-allow-methods: '.*' expected, got "
              r"None$",
              r"^header access-control-allow-origin: ('http://example\.com'"
              r"|None) expected, got '\*'$",
              r"^header access-control-max-age: None expected, got '86400'$",
              r"^body: ends with CRLF expected no, got yes$",
              r"^body: empty expected, got \d+ bytes: .*cross-origin "
              r"request refused \(preflight\)"],
}

DEVIATIONS = {
    "pmcd-context-container": {
        "reason": "a container hostspec is refused (400 with a JSON "
                  "message): bpftraced cannot enter a container and never "
                  "serves host-wide values as a container's; pmproxy "
                  "6.0.3 answers a context",
        "allow": [r"^status: 200 expected, got 400$", r"^body: \$: keys "],
    },
    "options-context": _PREFLIGHT,
    "options-context-no-request-headers": _PREFLIGHT,
    "options-grafana-device-id": _PREFLIGHT,
    "options-context-no-origin": _PREFLIGHT,
    "options-fetch-with-params": _PREFLIGHT,
    "options-star": _PREFLIGHT,
    "options-store-post": _PREFLIGHT_STORE,
    "options-store-put-refused": _PREFLIGHT_STORE,
    "options-derive-post": _PREFLIGHT_STORE,
    "fetch-bad-context": {
        "reason": "pmproxy echoes ?context=abc raw into invalid JSON "
                  "({\"context\":abc,...}); bpftraced may write valid JSON",
        "allow": [r"reference body is invalid JSON", r"\$\.context\b",
                  r"^body: \$: keys "],
    },
    "fetch-bad-percent": {
        "reason": "pmproxy answers a malformed %-escape with 'unknown "
                  "servlet: no handler for URL'; bpftraced says what is "
                  "wrong (same status and content type)",
        "allow": [r"^body: HTML differs"],
    },
    "fetch-truncated-percent": {
        "reason": "as fetch-bad-percent",
        "allow": [r"^body: HTML differs"],
    },
    "url-too-long-8192": _LONG_URL_SERVED,
    "url-too-long-9000": _LONG_URL_SERVED,
    "url-too-long-40000": {
        "reason": "past --max-url-bytes (32768) bpftraced answers 414 too, "
                  "with a JSON message naming the flag (Grafana shows "
                  "data.message) instead of pmproxy's HTML page",
        "allow": [r"^header content-type: 'text/html' expected, got "
                  r"'application/json'$", r"^body: HTML differs"],
    },
    "root": {
        "reason": "GET / is bpftraced's built-in web page (200, "
                  "src/api/api_ui.c, web/ui/index.html), same-origin only, so "
                  "without CORS headers; pmproxy 6.0.3 has no page and "
                  "answers its 400 'unknown servlet' (still so for /nosuch)",
        "allow": [r"^status: 400 expected, got 200$",
                  r"^header content-type: 'text/html' expected, got "
                  r"'text/html; charset=utf-8'$",
                  r"^header access-control-[a-z-]+: .* expected, got None$",
                  r"^body: ends with CRLF expected yes, got no$",
                  r"^body: HTML differs: .*got \"<!doctype html>"],
    },
    # -- the pmwebd dialect ("_" commands), see src/api/api_pmwebd.c ----------
    # pmproxy's compat mode answers errors in its own JSON; bpftraced
    # answers them as pmwebd did (400 text/plain "PMWEBD error, code N:
    # text"), the only form pmwebd clients read (the 2019 grafana-pcp
    # datasource recreates its context on "12376" in a text body).
    "compat-fetch-names-empty": _PMWEBD_ERROR,
    "compat-fetch-unknown-name": _PMWEBD_ERROR,
    "compat-fetch-unknown-context": _PMWEBD_ERROR,
    "compat-fetch-unknown-context-param": _PMWEBD_ERROR,
    "compat-metric-unknown-name": _PMWEBD_ERROR,
    "compat-indom-null-indom": _PMWEBD_ERROR,
    "compat-indom-unknown-metric": _PMWEBD_ERROR,
    "compat-children-unknown": _PMWEBD_ERROR,
    "compat-store-unknown-metric": _PMWEBD_ERROR,
    "compat-store-bad-value": _PMWEBD_ERROR,
    "compat-context-unknown": _PMWEBD_ERROR,
    "compat-fetch-unknown-names": {
        "reason": "pmwebd answers a fetch with no valid name with pmFetch's "
                  "error (400 'PMWEBD error, code -12443: Insufficient "
                  "elements in list'); pmproxy's compat mode with 200 and "
                  "no values",
        "allow": _PMWEBD_ALLOW + [r"^status: 200 expected, got 400"],
    },
    "compat-metric-unknown-prefix": {
        "reason": "pmwebd traverses an unknown prefix to an empty list "
                  "(200); pmproxy refuses it (400). The 2019 datasource "
                  "asks _metric?prefix= per metric and fails on an error",
        "allow": [r"^status: 400 expected, got 200", r"^body: \$: keys "],
    },
    "compat-unknown-command": _PMWEBD_BAD_URL,
    "compat-non-numeric-context": _PMWEBD_BAD_URL,
    "compat-derive": {
        "reason": "pmwebd had no derived metrics: bpftraced refuses _derive "
                  "with 'PMWEBD error, code -22: Invalid argument'; "
                  "pmproxy's compat mode registers the metric (200). "
                  "Metrics registered with derive are served by the _ "
                  "commands (compat-derive-*)",
        "allow": _PMWEBD_ALLOW + [r"^status: 200 expected, got 400"],
    },
    "context-local": {
        "reason": "local= is a pmwebd-only parameter: bpftraced answers "
                  "pmwebd's exact '{ \"context\": N }' (pmproxy ignores "
                  "local= and answers its own form)",
        "allow": [r"^body: \$: keys ", r"^body: ends with CRLF"],
    },
}

# /metrics: the text format's content type says its version and charset
# (Prometheus reads it; pmproxy 6.0.3 sends a bare text/plain)
_PROM_CT = {
    "reason": "bpftraced's /metrics says 'text/plain; version=0.0.4; "
              "charset=utf-8' (the exposition format's own type); "
              "pmproxy 6.0.3 a bare 'text/plain'",
    "allow": [r"^header content-type: 'text/plain' expected, got "
              r"'text/plain; version=0\.0\.4; charset=utf-8'$"],
}
_PROM_CASES = ["metrics-names-pmcd", "metrics-name-singular",
               "metrics-target", "metrics-names-before-name",
               "metrics-name-before-target", "metrics-prefix-pmcd",
               "pmapi-metrics-target", "pmapi-ctx-metrics",
               "metrics-pmcd-labels-sample", "metrics-pmcd-labels-kernel",
               "metrics-pmcd-aliases"]
DEVIATIONS.update({cid: _PROM_CT for cid in _PROM_CASES})

# ---------------------------------------------------------------------------
# The cases.
# ---------------------------------------------------------------------------
_METRIC_EXACT = ["name", "type"]

CASES = [
    # ---- context --------------------------------------------------------
    {"id": "context-create", "target": "/pmapi/context",
     "note": "new context: context/source/hostspec/labels"},
    {"id": "context-create-params",
     "target": "/pmapi/context?hostspec=localhost&polltimeout=60&client=req42",
     "note": "client echoed right after context"},
    {"id": "context-client-escape", "target": "/pmapi/context?client=a%22b",
     "note": "client value JSON-escaped"},
    {"id": "context-hostname-alias", "target": "/pmapi/context?hostname=localhost"},
    {"id": "context-existing-path", "target": "/pmapi/{ctx}/context"},
    {"id": "context-existing-param", "target": "/pmapi/context?context={ctx}"},
    {"id": "context-bad-polltimeout", "target": "/pmapi/context?polltimeout=abc",
     "note": "400, no context key"},
    {"id": "context-unknown", "target": "/pmapi/" + UNKNOWN_CTX + "/context"},
    {"id": "context-polltimeout-double", "target": "/pmapi/context?polltimeout=0.5",
     "note": "polltimeout is parsed as a double"},
    {"id": "context-trailing-slash", "target": "/pmapi/context/"},
    {"id": "context-http10", "target": "/pmapi/context", "version": "HTTP/1.0",
     "note": "the reply copies the request's HTTP version"},
    {"id": "context-head", "method": "HEAD", "target": "/pmapi/context",
     "note": "HEAD: headers only"},
    {"id": "context-put", "method": "PUT", "target": "/pmapi/context",
     "note": "6.0.3 does not refuse other methods"},
    {"id": "context-delete", "method": "DELETE", "target": "/pmapi/context"},

    # ---- metric ---------------------------------------------------------
    {"id": "metric-u32", "target": "/pmapi/metric?name={u32}",
     "opts": {"exact_keys": _METRIC_EXACT},
     "note": "singular metric: no indom key"},
    {"id": "metric-u64-counter", "target": "/pmapi/metric?names={u64_counter}",
     "opts": {"exact_keys": _METRIC_EXACT + ["sem"]}},
    {"id": "metric-string", "target": "/pmapi/metric?names={string}",
     "opts": {"exact_keys": _METRIC_EXACT}},
    {"id": "metric-indom", "target": "/pmapi/metric?names={indom_metric}",
     "opts": {"exact_keys": ["name"]},
     "note": "indom key present, D.S string"},
    {"id": "metric-names-multi",
     "target": "/pmapi/metric?names={u32},{indom_metric},{string}",
     "opts": {"elementwise": ["metrics"], "exact_keys": ["name"]}},
    {"id": "metric-names-with-unknown",
     "target": "/pmapi/metric?names={u32},no.such.metric",
     "opts": {"elementwise": ["metrics"], "exact_keys": ["name"]},
     "note": "200 with an in-array error element"},
    {"id": "metric-name-list", "target": "/pmapi/metric?name={u32},{string}",
     "opts": {"elementwise": ["metrics"], "exact_keys": ["name"]},
     "note": "name= is comma-split too"},
    {"id": "metric-prefix-is-leaf", "target": "/pmapi/metric?prefix={u32}",
     "opts": {"elementwise": ["metrics"], "exact_keys": _METRIC_EXACT}},
    {"id": "metric-names-nonleaf", "target": "/pmapi/metric?names={prefix_leaf}",
     "opts": {"optional_keys": ["indom"]},
     "note": "a non-leaf in names= is traversed"},
    {"id": "metric-prefix-leaf", "target": "/pmapi/metric?prefix={prefix_leaf}",
     "opts": {"optional_keys": ["indom"]}},
    {"id": "metric-prefix-mixed", "target": "/pmapi/metric?prefix={prefix_mixed}",
     "opts": {"optional_keys": ["indom"]}},
    {"id": "metric-with-context", "target": "/pmapi/{ctx}/metric?names={u32}",
     "opts": {"exact_keys": _METRIC_EXACT}},
    {"id": "metric-unknown-name", "target": "/pmapi/metric?name=no.such.metric",
     "note": "400 'X traversal failed - Unknown metric name'"},
    {"id": "metric-unknown-prefix", "target": "/pmapi/metric?prefix=no.such"},
    {"id": "metric-unknown-context",
     "target": "/pmapi/metric?context=" + UNKNOWN_CTX + "&names={u32}"},

    # ---- fetch ----------------------------------------------------------
    {"id": "fetch-u32", "target": "/pmapi/fetch?names={u32}",
     "opts": {"exact_keys": ["name"]},
     "note": "singular: instance null, integer value"},
    {"id": "fetch-u64-counter", "target": "/pmapi/fetch?names={u64_counter}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-string", "target": "/pmapi/fetch?names={string}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-indom", "target": "/pmapi/fetch?names={indom_metric}",
     "opts": {"exact_keys": ["name"], "loose_numbers": True}},
    {"id": "fetch-multi",
     "target": "/pmapi/fetch?names={u32},{u64_counter},{string},{indom_metric}",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"],
              "loose_numbers": True}},
    {"id": "fetch-name-singular", "target": "/pmapi/fetch?name={u32}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-pmids-dotted", "target": "/pmapi/fetch?pmids={pmid_u32}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-pmids-numeric", "target": "/pmapi/fetch?pmids={pmid_u32_num}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-pmids-hex", "target": "/pmapi/fetch?pmids={pmid_u32_hex}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-pmids-unknown", "target": "/pmapi/fetch?pmids=1.2.3",
     "note": "200 with values:[]"},
    {"id": "fetch-pmids-garbage", "target": "/pmapi/fetch?pmids=garbage"},
    {"id": "fetch-pmid-unknown", "target": "/pmapi/fetch?pmid=1.2.3",
     "note": "singular: 400 'bad parameters passed'"},
    {"id": "fetch-pmid-singular", "target": "/pmapi/fetch?pmid={pmid_u32}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-context-path", "target": "/pmapi/{ctx}/fetch?names={u32}&client=x1",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-context-param", "target": "/pmapi/fetch?context={ctx}&names={u32}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-encoded-comma", "target": "/pmapi/fetch?names={u32}%2C{string}",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"]},
     "note": "percent-encoded comma in names="},
    {"id": "fetch-names-empty", "target": "/pmapi/fetch?names=",
     "note": "400 'Insufficient elements in list'"},
    {"id": "fetch-names-trailing-comma", "target": "/pmapi/fetch?names={u32},",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"]}},
    {"id": "fetch-names-empty-element",
     "target": "/pmapi/fetch?names={u32},,{string}",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"]}},
    {"id": "fetch-names-repeated-param",
     "target": "/pmapi/fetch?names={u32}&names={string}",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"]},
     "note": "the first occurrence of a parameter wins"},
    {"id": "fetch-names-nonleaf", "target": "/pmapi/fetch?names={prefix_leaf}",
     "note": "non-leaf names are dropped: values:[]"},
    {"id": "fetch-accept-gzip", "target": "/pmapi/fetch?names={u32}",
     "headers": {"Accept-Encoding": "gzip"},
     "opts": {"exact_keys": ["name"]}, "note": "no compression in 6.0.3"},
    {"id": "fetch-http10", "target": "/pmapi/fetch?names={u32}",
     "version": "HTTP/1.0", "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-percent-encoded-command", "target": "/pmapi/%66etch?names={u32}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "fetch-context-zero", "target": "/pmapi/0/fetch?names={u32}"},
    {"id": "fetch-unknown-names", "target": "/pmapi/fetch?names=no.such.metric",
     "note": "200 with values:[]"},
    {"id": "fetch-partial", "target": "/pmapi/fetch?names={u32},no.such.metric",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"]},
     "note": "unknown names silently dropped"},
    {"id": "fetch-unknown-name", "target": "/pmapi/fetch?name=no.such.metric",
     "note": "400 'bad parameters passed'"},
    {"id": "fetch-no-params", "target": "/pmapi/fetch",
     "note": "HTML 400 from the HTTP layer"},
    {"id": "fetch-unknown-context",
     "target": "/pmapi/fetch?context=" + UNKNOWN_CTX + "&names={u32}"},
    {"id": "fetch-unknown-context-path",
     "target": "/pmapi/" + UNKNOWN_CTX + "/fetch?names={u32}"},
    {"id": "fetch-bad-context", "target": "/pmapi/fetch?context=abc&names={u32}",
     "note": "pmproxy writes invalid JSON (see DEVIATIONS)"},
    {"id": "fetch-post", "method": "POST", "target": "/pmapi/fetch?names={u32}",
     "body": "x", "headers": {"Content-Type": "application/x-www-form-urlencoded"},
     "opts": {"exact_keys": ["name"]},
     "note": "POST accepted on a GET command"},
    {"id": "fetch-command-prefix", "target": "/pmapi/fetchXYZ?names={u32}",
     "opts": {"exact_keys": ["name"]},
     "note": "commands are matched by prefix in 6.0.3"},
    {"id": "fetch-bad-percent", "target": "/pmapi/fetch?names=%zz",
     "note": "malformed percent-encoding"},
    {"id": "fetch-truncated-percent", "target": "/pmapi/fetch?names=%"},

    # ---- indom ----------------------------------------------------------
    {"id": "indom-by-name", "target": "/pmapi/indom?name={indom_metric}"},
    {"id": "indom-by-id", "target": "/pmapi/indom?indom={indom_id}"},
    {"id": "indom-by-number", "target": "/pmapi/indom?indom={indom_num}"},
    {"id": "indom-by-hex", "target": "/pmapi/indom?indom={indom_hex}"},
    {"id": "indom-iname", "target": "/pmapi/indom?indom={indom_id}&iname={inst_name}",
     "opts": {"elementwise": ["instances"], "exact_keys": ["name"]}},
    {"id": "indom-instance", "target": "/pmapi/indom?indom={indom_id}&instance={inst_id}",
     "opts": {"elementwise": ["instances"], "exact_keys": ["name"]}},
    {"id": "indom-glob",
     "target": "/pmapi/indom?indom={indom_id}&iname={inst_glob}&match=glob"},
    {"id": "indom-regex",
     "target": "/pmapi/indom?indom={indom_id}&iname={inst_regex}&match=regex"},
    {"id": "indom-iname-nomatch", "target": "/pmapi/indom?indom={indom_id}&iname=nosuch",
     "note": "200 with instances:[]"},
    {"id": "indom-with-context", "target": "/pmapi/{ctx}/indom?indom={indom_id}"},
    {"id": "indom-instance-unknown",
     "target": "/pmapi/indom?indom={indom_id}&instance=999999",
     "note": "200 with instances:[]"},
    {"id": "indom-name-nonleaf", "target": "/pmapi/indom?name={prefix_leaf}"},
    {"id": "indom-null-indom", "target": "/pmapi/indom?name={u32}",
     "note": "400 'X - metric has null indom'"},
    {"id": "indom-garbage", "target": "/pmapi/indom?indom=garbage"},
    {"id": "indom-unknown-metric", "target": "/pmapi/indom?name=no.such.metric"},
    {"id": "indom-bad-match", "target": "/pmapi/indom?indom={indom_id}&match=bogus",
     "note": "400 without a context key"},
    {"id": "indom-no-params", "target": "/pmapi/indom"},

    # ---- children -------------------------------------------------------
    {"id": "children-mixed", "target": "/pmapi/children?prefix={prefix_mixed}",
     "opts": {"exact_keys": ["name"], "emptiness": False},
     "note": "emptiness relaxed: see SUBST_BPFTRACED prefix_mixed"},
    {"id": "children-nonleaf-only", "target": "/pmapi/children?prefix={prefix_nonleaf}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "children-leaf-only", "target": "/pmapi/children?prefix={prefix_leaf}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "children-root", "target": "/pmapi/children",
     "opts": {"exact_keys": ["name"]}, "note": "name:\"\", roots in nonleaf"},
    {"id": "children-of-leaf", "target": "/pmapi/children?prefix={u32}",
     "opts": {"exact_keys": ["name"]}, "note": "200, both lists empty"},
    {"id": "children-with-context", "target": "/pmapi/{ctx}/children?prefix={prefix_leaf}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "children-empty-prefix", "target": "/pmapi/children?prefix=",
     "opts": {"exact_keys": ["name"]}},
    {"id": "children-unknown", "target": "/pmapi/children?prefix=no.such"},

    # ---- profile --------------------------------------------------------
    {"id": "profile-add-iname",
     "target": "/pmapi/{ctx}/profile?expr=add&indom={indom_id}&iname={inst_name}"},
    {"id": "profile-add-instance",
     "target": "/pmapi/{ctx}/profile?expr=add&indom={indom_id}&instance={inst_id}"},
    {"id": "profile-add-by-name",
     "target": "/pmapi/{ctx}/profile?expr=add&name={indom_metric}&iname={inst_name}"},
    {"id": "profile-del-all", "target": "/pmapi/{ctx}/profile?expr=del&indom={indom_id}"},
    {"id": "profile-then-fetch",
     "pre": [{"target": "/pmapi/{ctx}/profile?expr=del&indom={indom_id}"},
             {"target": "/pmapi/{ctx}/profile?expr=add&indom={indom_id}&iname={inst_name}"}],
     "target": "/pmapi/{ctx}/fetch?names={indom_metric}",
     "opts": {"elementwise": ["values", "instances"], "exact_keys": ["name"],
              "loose_numbers": True},
     "note": "the profile limits later fetches to one instance"},
    {"id": "profile-no-context", "target": "/pmapi/profile?expr=add&indom={indom_id}"},
    {"id": "profile-no-indom", "target": "/pmapi/{ctx}/profile?expr=add"},
    {"id": "profile-bad-indom", "target": "/pmapi/{ctx}/profile?expr=add&indom=garbage"},
    {"id": "profile-bad-expr", "target": "/pmapi/{ctx}/profile?expr=bogus&indom={indom_id}"},
    {"id": "profile-no-expr", "target": "/pmapi/{ctx}/profile?indom={indom_id}",
     "note": "HTML 400: expr is mandatory"},
    {"id": "profile-unknown-context",
     "target": "/pmapi/" + UNKNOWN_CTX + "/profile?expr=add&indom={indom_id}"},

    # ---- store (plumbing: error cases only) ------------------------------
    {"id": "store-no-params", "target": "/pmapi/store"},
    {"id": "store-no-value", "target": "/pmapi/store?name={u32}",
     "note": "HTML 400: value mandatory for GET"},
    {"id": "store-value-only", "target": "/pmapi/store?value=5"},
    {"id": "store-unknown-metric", "target": "/pmapi/store?name=no.such.metric&value=1"},
    {"id": "store-unknown-pmid", "target": "/pmapi/store?pmid=1.2.3&value=1"},
    {"id": "store-bad-value", "target": "/pmapi/store?name={u32}&value=abc"},
    {"id": "store-read-only", "target": "/pmapi/store?name={u32}&value=5"},
    {"id": "store-unknown-context",
     "target": "/pmapi/store?context=" + UNKNOWN_CTX + "&name={u32}&value=1"},

    # ---- derive (per-context derived metrics) ----------------------------
    {"id": "derive-get", "target": "/pmapi/{ctx}/derive?name=cf.d&expr={u32}*2",
     "note": "success: {context, success:true}"},
    {"id": "derive-get-context-param",
     "target": "/pmapi/derive?context={ctx}&name=cf.d&expr={u32}*2"},
    {"id": "derive-then-metric",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.d&expr={u32}*2"}],
     "target": "/pmapi/{ctx}/metric?names=cf.d",
     "opts": {"exact_keys": ["name", "type", "pmid", "text-oneline",
                             "text-help"]},
     "note": "pmid 511.2047.1023, no agent label, empty help texts"},
    {"id": "derive-then-fetch",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.d&expr={u32}*2"},
             {"target": "/pmapi/{ctx}/derive?name=cf.e&expr=7"}],
     "target": "/pmapi/{ctx}/fetch?names=cf.d,{u32},cf.e",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"]},
     "note": "derived names next to plain ones (pmids: derive-post-then-fetch)"},
    {"id": "derive-fetch-by-pmid",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.d&expr=7"}],
     "target": "/pmapi/{ctx}/fetch?pmids=511.2047.1023",
     "note": "6.0.3 does not find derived metrics by pmid"},
    {"id": "derive-indom",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.i&expr={indom_metric}*2"}],
     "target": "/pmapi/{ctx}/indom?name=cf.i",
     "note": "a derived metric has its operands' indom"},
    {"id": "derive-duplicate",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.d&expr=1"}],
     "target": "/pmapi/{ctx}/derive?name=cf.d&expr=2",
     "note": "grafana-pcp matches 'Duplicate per-context derived metric name'"},
    {"id": "derive-syntax-error", "target": "/pmapi/{ctx}/derive?name=my.bad&expr=1%20%2B",
     "note": "'Syntax Error: ...', caret under the position, reason"},
    {"id": "derive-syntax-initial", "target": "/pmapi/{ctx}/derive?name=my.bad&expr=(1%202)"},
    {"id": "derive-syntax-empty", "target": "/pmapi/{ctx}/derive?name=my.bad&expr="},
    {"id": "derive-semantic-error",
     "target": "/pmapi/{ctx}/derive?name=my.sem&expr={u64_counter}%2B1",
     "note": "'Semantic Error: ...': counter plus a constant"},
    {"id": "derive-semantic-string",
     "target": "/pmapi/{ctx}/derive?name=my.str&expr={string}*2"},
    {"id": "derive-unknown-operand",
     "target": "/pmapi/{ctx}/derive?name=cf.u&expr=no.such.metric*2",
     "note": "accepted; the metric stays invisible"},
    {"id": "derive-unknown-operand-metric",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.u&expr=no.such.metric*2"}],
     "target": "/pmapi/{ctx}/metric?name=cf.u"},
    {"id": "derive-name-only", "target": "/pmapi/{ctx}/derive?name=cf.x",
     "note": "JSON 400 invalid derive parameters"},
    {"id": "derive-no-params", "target": "/pmapi/{ctx}/derive",
     "note": "HTML 400: GET needs name or expr"},
    {"id": "derive-expr-config",
     "target": "/pmapi/{ctx}/derive?expr=cf.c%20%3D%203%0A",
     "note": "expr without name: the config-file form"},
    {"id": "derive-post-config", "method": "POST",
     "target": "/pmapi/{ctx}/derive",
     "body": "cf.p = 3\n# comment\n\ncf.q = 4\n",
     "note": "POST body: name = expr lines, # comments"},
    {"id": "derive-post-then-fetch",
     "pre": [{"method": "POST", "target": "/pmapi/{ctx}/derive?expr=cf.p%3D3%0Acf.q%3D4.5%0A"}],
     "target": "/pmapi/{ctx}/fetch?names=cf.p,cf.q",
     "opts": {"elementwise": ["values"], "exact_keys": ["name", "pmid"]}},
    {"id": "derive-post-incomplete", "method": "POST",
     "target": "/pmapi/{ctx}/derive", "body": "cf.p = 3\ncf.q = 4",
     "note": "every line must end with a newline"},
    {"id": "derive-post-error-line", "method": "POST",
     "target": "/pmapi/{ctx}/derive", "body": "cf.p = 3\ncf.q = 4 +\n",
     "note": "the failing line is named (counted from 0)"},
    {"id": "derive-post-empty", "method": "POST",
     "target": "/pmapi/{ctx}/derive", "body": ""},
    {"id": "derive-unknown-context",
     "target": "/pmapi/" + UNKNOWN_CTX + "/derive?name=cf.d&expr=1"},
    {"id": "options-derive-post",
     "method": "OPTIONS", "target": "/pmapi/derive?name=a&expr=b",
     "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}},

    # ---- generic errors -------------------------------------------------
    {"id": "unknown-command", "target": "/pmapi/bogus"},
    {"id": "unknown-command-ping", "target": "/pmapi/ping"},
    {"id": "unknown-command-case", "target": "/pmapi/Context",
     "note": "commands are case-sensitive"},
    {"id": "non-numeric-context-path", "target": "/pmapi/abc/fetch?names={u32}"},
    {"id": "pmapi-bare", "target": "/pmapi"},
    {"id": "pmapi-slash", "target": "/pmapi/"},
    {"id": "unknown-servlet", "target": "/nosuch"},
    {"id": "logger-ping", "target": "/logger/ping",
     "note": "pmproxy 7's archive-push servlet (pmlogger -> pmproxy): 200 "
             "there, 400 unknown servlet in 6.0.3"},
    {"id": "root", "target": "/",
     "note": "the web page here (see DEVIATIONS)"},
    {"id": "url-too-long-8192", "target": "{long_8192}",
     "note": "414 at exactly 8192 bytes"},
    {"id": "url-too-long-9000", "target": "{long_9000}"},
    {"id": "url-too-long-40000", "target": "{long_40000}",
     "note": "over bpftraced's --max-url-bytes too"},

    # ---- compat mode: the pmwebd dialect ("_" commands) ----------------
    {"id": "compat-context", "target": "/pmapi/_context",
     "note": "{\"context\":N} only"},
    {"id": "compat-context-existing", "target": "/pmapi/{ctx}/_context?client=x",
     "note": "no client key either"},
    {"id": "compat-context-unknown", "target": "/pmapi/" + UNKNOWN_CTX + "/_context"},
    {"id": "context-local", "target": "/pmapi/context?local=1",
     "note": "pmwebd's local context form"},
    {"id": "compat-fetch-u32", "target": "/pmapi/{ctx}/_fetch?names={u32}",
     "opts": {"exact_keys": ["name"]},
     "note": "{timestamp:{s,us}}, numeric pmid, instance -1, no context"},
    {"id": "compat-fetch-multi",
     "target": "/pmapi/{ctx}/_fetch?names={u32},{u64_counter},{string},{indom_metric}",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"],
              "loose_numbers": True}},
    {"id": "compat-fetch-name", "target": "/pmapi/{ctx}/_fetch?name={u32}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "compat-fetch-pmids", "target": "/pmapi/{ctx}/_fetch?pmids={pmid_u32_num}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "compat-fetch-no-context", "target": "/pmapi/_fetch?names={u32}",
     "opts": {"exact_keys": ["name"]}, "note": "a throwaway context"},
    {"id": "compat-fetch-command-prefix",
     "target": "/pmapi/{ctx}/_fetchXYZ?names={u32}",
     "opts": {"exact_keys": ["name"]}},
    {"id": "compat-fetch-partial",
     "target": "/pmapi/{ctx}/_fetch?names={u32},no.such.metric",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"]}},
    {"id": "compat-fetch-unknown-names",
     "target": "/pmapi/{ctx}/_fetch?names=no.such.metric"},
    {"id": "compat-fetch-names-empty", "target": "/pmapi/{ctx}/_fetch?names="},
    {"id": "compat-fetch-unknown-name",
     "target": "/pmapi/{ctx}/_fetch?name=no.such.metric"},
    {"id": "compat-fetch-no-params", "target": "/pmapi/{ctx}/_fetch",
     "note": "HTML 400 from the HTTP layer, as the bare command"},
    {"id": "compat-fetch-unknown-context",
     "target": "/pmapi/" + UNKNOWN_CTX + "/_fetch?names={u32}"},
    {"id": "compat-fetch-unknown-context-param",
     "target": "/pmapi/_fetch?context=" + UNKNOWN_CTX + "&names={u32}"},
    {"id": "compat-metric", "target": "/pmapi/{ctx}/_metric?names={indom_metric}",
     "opts": {"exact_keys": ["name"]}, "note": "numeric pmid and indom"},
    {"id": "compat-metric-u32", "target": "/pmapi/{ctx}/_metric?names={u32}",
     "opts": {"exact_keys": _METRIC_EXACT}, "note": "no indom key"},
    {"id": "compat-metric-prefix-leaf", "target": "/pmapi/{ctx}/_metric?prefix={u32}",
     "opts": {"elementwise": ["metrics"], "exact_keys": _METRIC_EXACT},
     "note": "the 2019 datasource's form"},
    {"id": "compat-metric-names-with-unknown",
     "target": "/pmapi/{ctx}/_metric?names={u32},no.such.metric",
     "opts": {"elementwise": ["metrics"], "exact_keys": ["name"]}},
    {"id": "compat-metric-unknown-prefix",
     "target": "/pmapi/{ctx}/_metric?prefix=no.such.metric"},
    {"id": "compat-metric-unknown-name",
     "target": "/pmapi/{ctx}/_metric?name=no.such.metric"},
    {"id": "compat-indom", "target": "/pmapi/{ctx}/_indom?name={indom_metric}",
     "note": "numeric indom, no context"},
    {"id": "compat-indom-by-number", "target": "/pmapi/{ctx}/_indom?indom={indom_num}"},
    {"id": "compat-indom-iname",
     "target": "/pmapi/{ctx}/_indom?indom={indom_id}&iname={inst_name}",
     "opts": {"elementwise": ["instances"], "exact_keys": ["name"]}},
    {"id": "compat-indom-null-indom", "target": "/pmapi/{ctx}/_indom?name={u32}"},
    {"id": "compat-indom-unknown-metric",
     "target": "/pmapi/{ctx}/_indom?name=no.such.metric"},
    {"id": "compat-children", "target": "/pmapi/{ctx}/_children?prefix={prefix_leaf}",
     "opts": {"exact_keys": ["name"]}, "note": "as the bare command"},
    {"id": "compat-children-unknown", "target": "/pmapi/{ctx}/_children?prefix=no.such"},
    {"id": "compat-profile-add",
     "target": "/pmapi/{ctx}/_profile?expr=add&indom={indom_id}&iname={inst_name}"},
    {"id": "compat-store-unknown-metric",
     "target": "/pmapi/{ctx}/_store?name=no.such.metric&value=1"},
    {"id": "compat-store-bad-value", "target": "/pmapi/{ctx}/_store?name={u32}&value=abc"},
    {"id": "compat-store-no-value", "target": "/pmapi/{ctx}/_store?name={u32}",
     "note": "HTML 400 from the HTTP layer"},
    {"id": "compat-unknown-command", "target": "/pmapi/{ctx}/_bogus"},
    {"id": "compat-non-numeric-context", "target": "/pmapi/abc/_fetch?names={u32}"},
    # derived metrics of a context (registered with derive), read with "_"
    {"id": "compat-derive-then-fetch",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.d&expr={u32}*2"},
             {"target": "/pmapi/{ctx}/derive?name=cf.i&expr={indom_metric}*2"}],
     "target": "/pmapi/{ctx}/_fetch?names=cf.d,{u32},cf.i",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"],
              "loose_numbers": True},
     "note": "u32 pmid with libpcp's derived bit (4292870143), instance -1"},
    {"id": "compat-derive-fetch-by-pmid",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.d&expr=7"}],
     "target": "/pmapi/{ctx}/_fetch?pmids=4292870143",
     "opts": {"exact_keys": ["name"]},
     "note": "the u32 form with the derived bit finds it (D.C.I does not)"},
    {"id": "compat-derive-then-metric",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.i&expr={indom_metric}*2"}],
     "target": "/pmapi/{ctx}/_metric?names=cf.i",
     "opts": {"exact_keys": ["name", "text-oneline", "text-help"]},
     "note": "u32 pmid and indom, no agent label, empty help texts (the "
             "type follows the operand: float there, u64 here)"},
    {"id": "compat-derive-indom",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.i&expr={indom_metric}*2"}],
     "target": "/pmapi/{ctx}/_indom?name=cf.i"},
    {"id": "compat-derive-children",
     "pre": [{"target": "/pmapi/{ctx}/derive?name=cf.d&expr={u32}*2"}],
     "target": "/pmapi/{ctx}/_children?prefix=cf",
     "opts": {"exact_keys": ["leaf"]}},
    {"id": "compat-derive", "target": "/pmapi/{ctx}/_derive?name=cf.d&expr={u32}*2",
     "note": "pmproxy's compat mode registers it; pmwebd had no derive"},

    # ---- pmcd passthrough: the same pmcd metrics on both sides ----------
    {"id": "pmcd-metric-load", "pmcd": True,
     "target": "/pmapi/metric?name=kernel.all.load",
     "opts": {"exact_keys": ["name", "type", "sem", "units", "pmid", "indom",
                             "text-oneline", "text-help", "agent",
                             "hostname"]}},
    {"id": "pmcd-metric-ncpu", "pmcd": True,
     "target": "/pmapi/metric?names=hinv.ncpu",
     "opts": {"exact_keys": ["name", "type", "sem", "units", "pmid",
                             "text-oneline", "text-help", "agent"]}},
    {"id": "pmcd-metric-cpu-user", "pmcd": True,
     "target": "/pmapi/metric?name=kernel.all.cpu.user",
     "opts": {"exact_keys": ["name", "type", "sem", "units", "pmid",
                             "device_type", "agent"]}},
    {"id": "pmcd-metric-disk-read", "pmcd": True,
     "target": "/pmapi/metric?name=disk.dev.read",
     "opts": {"exact_keys": ["name", "type", "sem", "units", "pmid", "indom",
                             "device_type", "indom_name"]}},
    {"id": "pmcd-metric-names-mixed", "pmcd": True,
     "target": "/pmapi/metric?names=hinv.ncpu,no.such.metric,kernel.all.load",
     "opts": {"elementwise": ["metrics"], "exact_keys": ["name", "message"],
              "optional_keys": ["indom"]}},
    {"id": "pmcd-metric-prefix", "pmcd": True,
     "target": "/pmapi/metric?prefix=kernel.uname",
     "opts": {"elementwise": ["metrics"], "exact_keys": ["name", "type"]}},
    {"id": "pmcd-fetch-load-ncpu", "pmcd": True,
     "target": "/pmapi/fetch?names=kernel.all.load,hinv.ncpu",
     "opts": {"elementwise": ["values"], "exact_keys": ["name", "pmid"],
              "loose_numbers": True}},
    {"id": "pmcd-fetch-pmid", "pmcd": True,
     "target": "/pmapi/fetch?pmids=60.0.32",
     "opts": {"exact_keys": ["name", "pmid"]}},
    {"id": "pmcd-fetch-cpu-user", "pmcd": True,
     "target": "/pmapi/fetch?name=kernel.all.cpu.user",
     "opts": {"exact_keys": ["name", "pmid"]}},
    {"id": "pmcd-indom-load", "pmcd": True,
     "target": "/pmapi/indom?name=kernel.all.load",
     "opts": {"exact_keys": ["indom", "text-oneline", "agent"]}},
    {"id": "pmcd-indom-disk", "pmcd": True,
     "target": "/pmapi/indom?indom=60.1",
     "opts": {"exact_keys": ["indom", "text-oneline", "device_type",
                             "indom_name"]}},
    {"id": "pmcd-indom-iname", "pmcd": True,
     "target": "/pmapi/indom?name=kernel.all.load&iname=5%20minute",
     "opts": {"elementwise": ["instances"], "exact_keys": ["name"]}},
    {"id": "pmcd-children-kernel-all", "pmcd": True,
     "target": "/pmapi/children?prefix=kernel.all",
     "opts": {"exact_keys": ["name", "leaf", "nonleaf"],
              "elementwise": ["leaf", "nonleaf"]}},
    {"id": "pmcd-children-leaf", "pmcd": True,
     "target": "/pmapi/children?prefix=hinv.ncpu",
     "opts": {"exact_keys": ["name"]}},
    {"id": "pmcd-profile-then-fetch", "pmcd": True,
     "pre": [{"target": "/pmapi/{ctx}/profile?expr=del&indom=60.2"},
             {"target": "/pmapi/{ctx}/profile?expr=add&indom=60.2&iname=5%20minute"}],
     "target": "/pmapi/{ctx}/fetch?names=kernel.all.load",
     "opts": {"elementwise": ["values", "instances"], "exact_keys": ["name"],
              "loose_numbers": True}},
    {"id": "pmcd-derive-then-fetch", "pmcd": True,
     "pre": [{"target": "/pmapi/{ctx}/derive?name=pc.load2&expr=kernel.all.load*2"}],
     "target": "/pmapi/{ctx}/fetch?names=pc.load2,hinv.ncpu",
     "opts": {"elementwise": ["values"], "exact_keys": ["name"],
              "loose_numbers": True}},
    {"id": "pmcd-compat-fetch", "pmcd": True,
     "target": "/pmapi/{ctx}/_fetch?names=hinv.ncpu,kernel.all.load",
     "opts": {"elementwise": ["values"], "exact_keys": ["name", "pmid"],
              "loose_numbers": True}},

    # ---- /metrics and /pmapi/metrics (Prometheus text, pmproxy's form):
    # families, # PCP5 fields, TYPE, sample and label names, instances
    {"id": "metrics-names-pmcd", "pmcd": True,
     "target": "/metrics?names=kernel.all.load,hinv.ncpu,kernel.all.intr"},
    {"id": "metrics-name-singular", "pmcd": True,
     "target": "/metrics?name=kernel.all.load",
     "note": "name= (singular) is honoured like names="},
    {"id": "metrics-target", "pmcd": True,
     "target": "/metrics?target=hinv.ncpu,kernel.all.load",
     "note": "target= (pmwebd's) too"},
    {"id": "metrics-names-before-name", "pmcd": True,
     "target": "/metrics?name=kernel.all.load&names=hinv.ncpu",
     "note": "names= wins over name="},
    {"id": "metrics-name-before-target", "pmcd": True,
     "target": "/metrics?target=hinv.ncpu&name=kernel.all.load",
     "note": "name= wins over target="},
    {"id": "metrics-prefix-pmcd", "pmcd": True,
     "target": "/metrics?names=kernel.all.cpu",
     "note": "a PMNS prefix: every leaf below it, counters included"},
    {"id": "metrics-name-unknown", "target": "/metrics?name=no.such.metric",
     "opts": {"exact_keys": ["message"]}},
    {"id": "metrics-unknown-context", "target":
     "/metrics?context=" + UNKNOWN_CTX + "&names={u32}"},
    {"id": "pmapi-metrics-target", "pmcd": True,
     "target": "/pmapi/metrics?target=hinv.ncpu,kernel.all.load",
     "note": "the scrape servlet under /pmapi/ (qa/1543)"},
    {"id": "pmapi-ctx-metrics", "pmcd": True,
     "target": "/pmapi/{ctx}/metrics?target=hinv.ncpu"},
    {"id": "pmapi-metrics-unknown-context",
     "target": "/pmapi/" + UNKNOWN_CTX + "/metrics?target={u32}"},
    # pmcd metrics' labels exactly as pmproxy writes them: its levels
    # (context, indom, item, instance; no agent/cluster), in its order
    {"id": "metrics-pmcd-labels-sample", "pmcd": True,
     "target": "/metrics?names=sample.long.one,sample.colour,sample.bin",
     "opts": {"prom_labels_exact": True},
     "note": "indom label model, instance label bin, no role/cluster/agent"},
    {"id": "metrics-pmcd-labels-kernel", "pmcd": True,
     "target": "/metrics?names=kernel.all.load,kernel.percpu.cpu.user,"
               "hinv.ncpu",
     "opts": {"prom_labels_exact": True}},
    {"id": "metrics-pmcd-aliases", "pmcd": True,
     "target": "/pmapi/metrics?target=sample.dupnames.four",
     "opts": {"prom_labels_exact": True},
     "note": "every name of an aliased PMID, each PMID once"},
    # ---- pmcd passthrough, issue 15 (sample PMDA where named) -----------
    {"id": "pmcd-fetch-empty-name", "pmcd": True,
     "target": "/pmapi/fetch?names=,hinv.ncpu",
     "opts": {"elementwise": ["values"], "exact_keys": ["name", "pmid"]},
     "note": "the empty name skipped, 200; the pool keeps working"},
    {"id": "pmcd-fetch-novalues", "pmcd": True,
     "target": "/pmapi/fetch?names=sample.darkness,hinv.ncpu",
     "opts": {"elementwise": ["values"], "exact_keys": ["name", "pmid"]},
     "note": "a metric with no values kept with instances:[]"},
    {"id": "pmcd-fetch-dupnames", "pmcd": True,
     "target": "/pmapi/fetch?pmids=29.0.2",
     "opts": {"elementwise": ["values"], "exact_keys": ["name", "pmid"]},
     "note": "a pmid with two names: one entry per name"},
    {"id": "pmcd-metric-note-labels", "pmcd": True,
     "target": "/pmapi/metric?name=sample.write_me",
     "opts": {"exact_keys": ["name", "pmid", "agent", "cluster", "role"]},
     "note": "the note label \"changed\" is left out"},
    {"id": "pmcd-indom-unknown", "pmcd": True,
     "target": "/pmapi/indom?indom=0.0",
     "opts": {"exact_keys": ["indom", "hostname"]},
     "note": "200, the context's labels, no instances"},
    {"id": "pmcd-metric-unknown-names", "pmcd": True,
     "target": "/pmapi/metric?names=no.such.metric",
     "note": "one unknown name in names=: 400 traversal failed"},
    {"id": "pmcd-metric-unknown-bpftrace", "pmcd": True,
     "target": "/pmapi/metric?names=bpftrace.no.such",
     "note": "as above for a bpftrace.* name"},
    {"id": "pmcd-context-container", "pmcd": True,
     "target": "/pmapi/context?hostspec=pcp://127.0.0.1%3Fcontainer=abc",
     "note": "pmproxy accepts it (host-wide values); refused here"},

    # ---- CORS -----------------------------------------------------------
    {"id": "cors-get-with-origin", "target": "/pmapi/context",
     "headers": {"Origin": ORIGIN},
     "note": "plain GET keeps Allow-Origin *"},
    {"id": "options-context",
     "method": "OPTIONS", "target": "/pmapi/context",
     "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "X-Foo"}},
    {"id": "options-grafana-device-id",
     "method": "OPTIONS", "target": "/pmapi/fetch?names={u32}",
     "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers":
                     "content-type,x-grafana-device-id"},
     "note": "current Grafana's preflight (X-Grafana-Device-ID): 7.2.2 "
             "allows it, 6.0.3 does not list it"},
    {"id": "options-context-no-request-headers",
     "method": "OPTIONS", "target": "/pmapi/context",
     "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}},
    {"id": "options-context-no-origin",
     "method": "OPTIONS", "target": "/pmapi/context"},
    {"id": "options-fetch-with-params",
     "method": "OPTIONS", "target": "/pmapi/fetch?names={u32}",
     "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}},
    {"id": "options-fetch-no-params",
     "method": "OPTIONS", "target": "/pmapi/fetch",
     "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "X-Foo"},
     "note": "mandatory-parameter check also applies to OPTIONS"},
    {"id": "options-fetch-post-refused",
     "method": "OPTIONS", "target": "/pmapi/fetch?names={u32}",
     "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
     "note": "405, no CORS headers"},
    {"id": "options-store-post",
     "method": "OPTIONS", "target": "/pmapi/store?name={u32}&value=1",
     "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
     "note": "store allows POST"},
    {"id": "options-store-put-refused",
     "method": "OPTIONS", "target": "/pmapi/store?name={u32}&value=1",
     "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}},
    {"id": "options-star", "method": "OPTIONS", "target": "*",
     "headers": {"Origin": ORIGIN}},
]


def case_by_id(cid):
    for c in CASES:
        if c["id"] == cid:
            return c
    raise KeyError(cid)


def _check():
    ids = [c["id"] for c in CASES]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, "duplicate case ids: %s" % sorted(dup)
    assert set(SUBST_PMPROXY) == set(SUBST_BPFTRACED), "SUBST_* keys differ"
    for d in DEVIATIONS:
        assert d in ids, "deviation for unknown case %s" % d


_check()


# ---------------------------------------------------------------------------
# Per-pmproxy-version deviations.  DEVIATIONS above are bpftraced's
# differences from pmproxy 6.0.3; DEVIATIONS_7 adjust them for pmproxy
# 7.2.2 (fixtures/pmproxy-7.2.2.json, recorded from the sid root with
# tests/versions/pcp7.sh record).  README "pmproxy 6.0.3 and 7.2.2" has
# the table of which one bpftraced follows where the two differ, and why.
# ---------------------------------------------------------------------------
# Every 7.2.2 answer (not only preflights) carries its shipped
# pmproxy.conf's Access-Control-Allow-Headers with X-Grafana-Device-ID;
# bpftraced lists it where a browser reads it (preflights, _PREFLIGHT)
# and keeps 6.0.3's list on ordinary answers, where browsers ignore it.
_ALL_7 = {
    "reason": "Access-Control-Allow-Headers on an ordinary (non-preflight) "
              "answer is 6.0.3's list; 7.2.2 adds X-Grafana-Device-ID, "
              "which only matters (and is sent by bpftraced) in preflights",
    "allow": [r"^header access-control-allow-headers: '(.*), "
              r"X-Grafana-Device-ID' expected, got '\1'$"],
}
# OPTIONS requests answered with an error page, not as a preflight
_NOT_PREFLIGHT = {"options-fetch-no-params"}
DEVIATIONS_7 = {
    "fetch-accept-gzip": {
        "reason": "pmproxy 7.2.2 gzips an answer when asked (Accept-Encoding:"
                  " gzip); bpftraced answers identity as 6.0.3 did, which "
                  "every client must accept",
        "allow": [r"^header content-encoding: 'gzip' expected, got None$",
                  r"^body: ends with CRLF expected no, got yes$",
                  r"^reference body is not JSON$"],
    },
    "derive-unknown-operand": {
        "reason": "pmproxy 7.2.2 refuses a derived metric over an unknown "
                  "metric (400 'Unknown operand metric'); bpftraced accepts "
                  "it as 6.0.3 did: script metrics appear when a script is "
                  "registered, so a derive may name one that comes later",
        "allow": [r"^status: 400 expected, got 200$",
                  r"^body: \$: keys \['context', 'message', 'success'\] "
                  r"expected, got \['context', 'success'\]$",
                  r"^body: \$\.success: false expected, got true$"],
    },
    "logger-ping": {
        "reason": "pmproxy 7.2.2 answers /logger/ping (the servlet pmlogger "
                  "pushes archives to); bpftraced takes no archives, so it "
                  "answers 6.0.3's 400 'unknown servlet' rather than invite "
                  "a push",
        "allow": [r"^status: 200 expected, got 400$",
                  r"^header content-type: 'application/json' expected, got "
                  r"'text/html'$", r"^body: ",
                  r"^header access-control-allow-headers: "],
    },
}
# /metrics: 7.2.2 adds the domain and cluster labels (agent="linux", the
# sample PMDA's role/cluster) and orders labels otherwise; bpftraced keeps
# 6.0.3's label set and order (README: Prometheus series identity).
_PROM_LABELS_7 = {
    "reason": "/metrics labels as pmproxy 6.0.3: no domain/cluster labels "
              "(agent=, the sample PMDA's role=, cluster=) and 6.0.3's "
              "order; 7.2.2 adds them, so a series' identity would change "
              "with the pmproxy version",
    "allow": [r"^body: [a-z_]+ samples: "],
}
DEVIATIONS_7.update({cid: {
    "reason": _PROM_CT["reason"] + "; " + _PROM_LABELS_7["reason"],
    "allow": _PROM_CT["allow"] + _PROM_LABELS_7["allow"]}
    for cid in _PROM_CASES})


def deviations_for(version):
    """The deviations table for comparing bpftraced with pmproxy VERSION:
    DEVIATIONS for 6.0.3; for 7.2.2 those updated by DEVIATIONS_7, and
    _ALL_7 allowed in every case but the OPTIONS ones."""
    if version == "6.0.3":
        return DEVIATIONS
    devs = dict(DEVIATIONS)
    devs.update(DEVIATIONS_7)
    out = {}
    for c in CASES:
        d = devs.get(c["id"])
        if c.get("method") == "OPTIONS" and c["id"] not in _NOT_PREFLIGHT:
            # preflights must list X-Grafana-Device-ID as 7.2.2 does
            if d is not None:
                out[c["id"]] = d
        elif d is None:
            out[c["id"]] = _ALL_7
        else:
            out[c["id"]] = {"reason": d["reason"] + "; " + _ALL_7["reason"],
                            "allow": d["allow"] + _ALL_7["allow"]}
    return out
