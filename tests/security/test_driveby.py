#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_driveby.py - a web page cannot register a script through the
visitor's browser (TAP; issue 14, "drive-by root from any web page").

bpftraced runs with --control=loopback (the README's run command) and
tests/lib/fake-bpftrace, so no root is needed. Headless Chromium
(tests/security/driveby.js, playwright-core) visits attacker pages served
by a Python http.server on another port, each making one request that
would register a script: an <img>, an auto-submitted form POST and a
fetch() with mode no-cors, from

  * http://localhost:APORT     cross-site to http://127.0.0.1:DPORT;
  * http://127.0.0.1:APORT     same-site, another port;
  * http://rebind.test:APORT   a DNS-rebinding name (--host-resolver-rules
    maps it to 127.0.0.1): the page's same-origin requests for /pmapi/
    are relayed byte for byte to bpftraced, as if the name now resolved
    to it, so bpftraced sees Host: rebind.test and Sec-Fetch-Site:
    same-origin.

For each visit, bpftrace.daemon.refused is read before and after (by
node, not the page): the test passes only when exactly that request
reached bpftraced and was refused for the expected reason, so a browser
blocking a request by itself cannot make it pass; nothing is registered.
Then the flows that must keep working do register: the built-in page
(same-origin fetch) and a page on an origin allowed with --allow-origin
(Grafana's browser access mode: a CORS fetch that also reads the answer).
Chromium or playwright-core missing (and not installable) is a skip.
"""

import http.client
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
import browser  # noqa: E402

tap = btd.Tap()
DRIVEBY_JS = os.path.join(HERE, "driveby.js")
CODE = ("// fixture: hist_global\n// fake: hold\n"
        "tracepoint:a:b { @h = hist(1); }\n")
REASONS = ["host", "cross-site", "same-site", "origin", "referer",
           "preflight", "no-origin"]

# One request per page; sets window.__done when it has finished.
ATTACK_PAGE = """<!doctype html>
<meta charset="utf-8"><title>cat pictures</title>
<body><script>
const P = new URLSearchParams(location.search);
const kind = P.get('kind'), target = P.get('target');
const form = 'name=bpftrace.control.register&value=' +
    encodeURIComponent(P.get('code'));
function done(s) { window.__seen = s; window.__done = true; }
if (kind === 'img' || kind === 'img-noref') {
  const i = new Image();
  if (kind === 'img-noref') i.referrerPolicy = 'no-referrer';
  i.onload = () => done('img load');
  i.onerror = () => done('img error');
  i.src = target + '?' + form;
} else if (kind === 'form') {
  const f = document.createElement('iframe');
  f.name = 'sink';
  document.body.appendChild(f);
  f.onload = () => done('form answered');
  const fm = document.createElement('form');
  fm.method = 'POST';
  fm.action = target;
  fm.target = 'sink';
  for (const [k, v] of new URLSearchParams(form)) {
    const i = document.createElement('input');
    i.type = 'hidden'; i.name = k; i.value = v;
    fm.appendChild(i);
  }
  document.body.appendChild(fm);
  fm.submit();
} else if (kind === 'fetch') {
  fetch(target, { method: 'POST', mode: 'no-cors', body: form,
                  headers: { 'Content-Type':
                             'application/x-www-form-urlencoded' } })
    .then((r) => done('fetch ' + r.type), (e) => done('fetch error ' + e));
} else if (kind === 'cors') {
  fetch(target + '?' + form, { mode: 'cors' })
    .then((r) => r.text().then((t) => done('cors ' + r.status + ' ' + t)),
          (e) => done('cors error ' + e));
}
</script>
"""


def attacker_server(daemon):
    """The attacker's web server: /attack.html, and /pmapi/ relayed to
    bpftraced (daemon["port"]) unchanged: the rebinding name's second DNS
    answer."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def relay(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            c = http.client.HTTPConnection("127.0.0.1", daemon["port"],
                                           timeout=10)
            c.putrequest(self.command, self.path, skip_host=True,
                         skip_accept_encoding=True)
            for k, v in self.headers.items():
                c.putheader(k, v)
            c.endheaders(body)
            r = c.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("content-length", "connection",
                                     "transfer-encoding", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            c.close()

        def do_GET(self):
            if self.path.startswith("/pmapi/"):
                return self.relay()
            if not self.path.startswith("/attack.html"):
                self.send_error(404)
                return
            data = ATTACK_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = relay
        do_HEAD = relay
        do_PUT = relay
        do_DELETE = relay

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def attack_url(origin, kind, target):
    return "%s/attack.html?%s" % (origin, urllib.parse.urlencode(
        {"kind": kind, "target": target, "code": CODE}))


def run_visits(chromium, playwright, dbase, visits):
    udd = tempfile.mkdtemp(prefix="btd-chromium-")
    env = dict(os.environ, PLAYWRIGHT_CORE=playwright, CHROMIUM=chromium,
               BTD_URL=dbase, USER_DATA_DIR=udd, VISITS=json.dumps(visits),
               RESOLVER_RULES="MAP rebind.test 127.0.0.1, "
                              "MAP grafana.example 127.0.0.1, "
                              "MAP bpftraced.test 127.0.0.1")
    try:
        p = subprocess.run(["node", DRIVEBY_JS], capture_output=True,
                           timeout=240, env=env, cwd=udd)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = e.stdout or b"", e.stderr or b"", "timeout"
    finally:
        shutil.rmtree(udd, ignore_errors=True)
    results = {}
    for line in out.decode(errors="replace").splitlines():
        try:
            r = json.loads(line)
            results[r["visit"]] = r
        except (ValueError, KeyError):
            tap.diag(line)
    return results, rc, err.decode(errors="replace")


def deltas(r):
    b = (r.get("before") or {}).get("refused") or {}
    a = (r.get("after") or {}).get("refused") or {}
    return {REASONS[int(k)]: a[k] - b.get(k, 0) for k in a
            if a[k] - b.get(k, 0)}


def main():
    chromium, why = browser.find_chromium(tap.diag)
    playwright = None
    if why is None:
        playwright, why = browser.find_playwright(tap.diag)
    if why is not None:
        btd.Tap.skip_all(why)
    where = {}
    srv = attacker_server(where)
    aport = srv.server_address[1]
    allowed = "http://grafana.example:%d" % aport
    env = {"BT_SHARED": btd.shared_dir()} if btd.shared_dir() else None
    with btd.Daemon(["--control", "loopback", "--bpftrace",
                     btd.FAKE_BPFTRACE, "--allow-origin", allowed,
                     "--allow-host", "bpftraced.test"], env=env) as d:
        where["port"] = d.port
        store = d.base + "/pmapi/store"
        attacks = []
        for origin, reason, target, what in (
                ("http://localhost:%d" % aport, "cross-site", store,
                 "cross-site page (localhost vs 127.0.0.1)"),
                ("http://127.0.0.1:%d" % aport, "same-site", store,
                 "same-site page on another port"),
                ("http://rebind.test:%d" % aport, "host", "/pmapi/store",
                 "DNS-rebinding page (Host rebind.test)")):
            for kind, how in (("img", "<img>"), ("form", "form POST"),
                              ("fetch", "fetch no-cors POST")):
                attacks.append({"id": "%s-%s" % (reason, kind),
                                "url": attack_url(origin, kind, target),
                                "what": "%s: %s" % (what, how),
                                "reason": reason})
        # plain http to a name (not loopback, not https): Chromium sends
        # no Sec-Fetch-*, and the page drops the Referer
        attacks.append({"id": "no-origin-img", "url": attack_url(
            "http://localhost:%d" % aport, "img-noref",
            "http://bpftraced.test:%d/pmapi/store" % d.port),
            "what": "cross-site page, <img referrerpolicy=no-referrer> to "
                    "http://bpftraced.test (no Fetch Metadata)",
            "reason": "no-origin"})
        same_origin = {
            "id": "builtin-page", "url": d.base + "/",
            "eval": "fetch('/pmapi/store', {method: 'POST', headers: "
                    "{'Content-Type': 'application/x-www-form-urlencoded'},"
                    " body: 'name=bpftrace.control.register&value=' + "
                    "encodeURIComponent(%s)}).then((r) => r.text().then("
                    "(t) => r.status + ' ' + t))" % json.dumps(CODE)}
        grafana = {"id": "allowed-origin",
                   "url": attack_url("http://grafana.example:%d" % aport,
                                     "cors", store)}
        visits = attacks + [same_origin, grafana]
        results, rc, err = run_visits(chromium, playwright, d.base,
                                      [{k: v[k] for k in ("id", "url", "eval")
                                        if k in v} for v in visits])
        for a in attacks:
            r = results.get(a["id"], {})
            dl = deltas(r)
            # Chromium retries a request answered 421 once, on a new
            # connection (it may have been sent to the wrong server)
            want = [1, 2] if a["reason"] == "host" else [1]
            tap.check(r.get("ok") and list(dl) == [a["reason"]] and
                      dl[a["reason"]] in want and
                      (r.get("after") or {}).get("scripts") == 0,
                      "%s reached bpftraced and was refused (%s), nothing "
                      "registered" % (a["what"], a["reason"]),
                      lambda: "%r deltas %r" % (r, dl))
        r = results.get("builtin-page", {})
        b, a = r.get("before") or {}, r.get("after") or {}
        tap.check(r.get("ok") and r.get("page", "").startswith("200") and
                  a.get("scripts") == (b.get("scripts") or 0) + 1 and
                  not deltas(r),
                  "the built-in page (same-origin fetch POST) registers",
                  repr(r))
        r = results.get("allowed-origin", {})
        b, a = r.get("before") or {}, r.get("after") or {}
        tap.check(r.get("ok") and r.get("page", "").startswith("cors 200")
                  and a.get("scripts") == (b.get("scripts") or 0) + 1 and
                  not deltas(r),
                  "a page on an --allow-origin origin (Grafana browser "
                  "mode) registers and reads the answer", repr(r))
        tap.check(rc == 0 and len(results) == len(visits),
                  "driveby.js ran every visit (rc %s)" % rc,
                  lambda: err[-2000:] + d.stderr_text()[-1500:])
    srv.shutdown()
    tap.done()


if __name__ == "__main__":
    main()
