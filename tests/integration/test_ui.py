#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_ui.py - the built-in web page (TAP).

Part 1, no browser: every file of web/ui/ is served from the binary with
the right Content-Type, "/" is index.html, ETag/If-None-Match gives 304,
HEAD works, path tricks find nothing, other paths keep pmproxy's answers,
and the assets stay under 200 KB gzip-compressed.

Part 2, headless Chromium driven by tests/ui/ui.js (playwright-core)
against the real daemon with real bpftrace, as root: type a script with a
hist() and a printf() into the page, Ctrl+Enter, see it started, its
histogram drawn (pixel check), the heat map and the output log, stop it,
deregister it; no console errors. Screenshots go to
tests/integration/ui-screens/ (or $UI_SCREENS_DIR); ui-running.png is
copied to web/ui-screenshot.png (the README's) when that is missing or
UI_UPDATE_SCREENSHOT=1. When Chromium or
playwright-core are missing the test installs them (apt-get install
chromium as root, npm install playwright-core into
~/.cache/bpftraced-tests/node, or $BT_UI_NODE_DIR); set BT_UI_NO_INSTALL=1
to only skip. Each missing piece is a skip with its reason.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402
import browser  # noqa: E402

tap = btd.Tap()
SRC = os.environ.get("BT_SRCDIR") or btd.REPO_ROOT
UI_DIR = os.path.join(SRC, "web", "ui")
TYPES = {".html": "text/html; charset=utf-8",
         ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8",
         ".json": "application/json"}
GZIP_BUDGET = 200 * 1024
UI_JS = os.path.join(SRC, "tests", "ui", "ui.js")


def ui_files():
    """The embedded assets: Makefile.am's UI_ASSETS, in order."""
    with open(os.path.join(SRC, "Makefile.am")) as f:
        text = f.read().replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("UI_ASSETS ="):
            return [os.path.basename(p) for p in line.split("=", 1)[1].split()]
    raise RuntimeError("no UI_ASSETS in Makefile.am")


def read_asset(name):
    with open(os.path.join(UI_DIR, name), "rb") as f:
        return f.read()


# --------------------------------------------------------------------------
# part 1: the files
# --------------------------------------------------------------------------

def test_assets(d):
    names = ui_files()
    tap.check(sorted(names) == sorted(n for n in os.listdir(UI_DIR)
                                      if not n.startswith(".")),
              "every file in web/ui/ is embedded (Makefile.am UI_ASSETS)",
              lambda: "%s vs %s" % (names, os.listdir(UI_DIR)))
    st, h, body = btd.http("GET", d.url("/"))
    tap.check(st == 200 and h.get("content-type") ==
              "text/html; charset=utf-8" and body == read_asset("index.html"),
              "GET / serves index.html as text/html",
              lambda: "%s %s %r" % (st, h, body[:200]))
    csp = h.get("content-security-policy", "")
    tap.check("connect-src 'self'" in csp and "script-src 'self'" in csp,
              "the page gets a same-origin-only Content-Security-Policy",
              csp)
    for name in names:
        ext = os.path.splitext(name)[1]
        st, h, body = btd.http("GET", d.url("/ui/" + name))
        tap.check(st == 200 and body == read_asset(name) and
                  h.get("content-type") == TYPES.get(ext) and
                  h.get("etag", "").startswith('"') and
                  h.get("cache-control") == "no-cache" and
                  h.get("x-content-type-options") == "nosniff",
                  "GET /ui/%s: the file's bytes as %s, with ETag and "
                  "Cache-Control" % (name, TYPES.get(ext)),
                  lambda: "%s %s" % (st, h))


def test_conditional_and_head(d):
    st, h, _ = btd.http("GET", d.url("/ui/app.js"))
    etag = h.get("etag")
    for inm, desc in ((etag, "the same ETag"),
                      ("W/" + etag, "a weak ETag"),
                      ('"x", ' + etag, "a list holding it"),
                      ("*", "*")):
        st, h2, body = btd.http("GET", d.url("/ui/app.js"),
                                headers={"If-None-Match": inm})
        tap.check(st == 304 and body == b"" and h2.get("etag") == etag,
                  "If-None-Match with %s answers 304 without a body" % desc,
                  lambda: "%s %s %r" % (st, h2, body[:80]))
    st, _, body = btd.http("GET", d.url("/ui/app.js"),
                           headers={"If-None-Match": '"0-0"'})
    tap.check(st == 200 and body == read_asset("app.js"),
              "another ETag gets the file (200)", str(st))
    st, _, _ = btd.http("GET", d.url("/ui/app.css"))
    _, h3, _ = btd.http("GET", d.url("/ui/index.html"))
    tap.check(h3.get("etag") != etag, "each file has its own ETag")
    st, h, body = btd.http("HEAD", d.url("/"))
    tap.check(st == 200 and body == b"" and
              h.get("content-length") == str(len(read_asset("index.html")))
              and h.get("etag"),
              "HEAD / answers the headers, Content-Length, no body",
              lambda: "%s %s %r" % (st, h, body))
    st, h, body = btd.http("POST", d.url("/"), body="x")
    tap.check(st == 405, "POST / is 405 (the page is read with GET)",
              lambda: "%s %r" % (st, body[:200]))


def test_refusals(d):
    for target in ("/ui/../README.md", "/ui/..%2fREADME.md",
                   "/ui/%2e%2e/%2e%2e/etc/passwd", "/ui/./app.js",
                   "/ui//app.js", "/ui/", "/ui/nosuch.js",
                   "/ui/app.js/", "/ui/APP.JS", "/ui/app.js%00"):
        st, h, body = btd.http("GET", d.url(target))
        ok = st in (400, 404) and b"SPDX" not in body and \
            b"root:" not in body
        if st == 404:
            try:
                ok = ok and "no such file" in json.loads(body)["message"]
            except (ValueError, KeyError):
                ok = False
        tap.check(ok, "GET %s is refused (%d), nothing read from disk"
                  % (target, st), lambda: "%s %r" % (st, body[:200]))
    st, h, body = btd.http("GET", d.url("/nosuch"))
    tap.check(st == 400 and b"unknown servlet" in body and
              h.get("content-type") == "text/html",
              "/nosuch keeps pmproxy's 400 'unknown servlet' page",
              lambda: "%s %r" % (st, body[:200]))
    st, _, body = btd.http("GET", d.url("/index.html"))
    tap.check(st == 400 and b"unknown servlet" in body,
              "/index.html is not a second name for the page (pmproxy's 400)")
    st, obj, _ = d.get_json("/pmapi/fetch?names=bpftrace.info.version")
    tap.check(st == 200 and obj and "values" in obj,
              "the REST API is unchanged next to the page")


def test_size_and_offline():
    total_raw = total_gz = 0
    external = []
    for name in ui_files():
        data = read_asset(name)
        total_raw += len(data)
        total_gz += len(gzip.compress(data, 9))
        text = data.decode("utf-8")
        for marker in ("http://", "https://", "//cdn", "@import"):
            if marker in text:
                external.append("%s: %s" % (name, marker))
    tap.diag("web UI assets: %d bytes, %d bytes gzip-compressed"
             % (total_raw, total_gz))
    tap.check(total_gz < GZIP_BUDGET,
              "the assets are %d bytes gzip-compressed (< %d)"
              % (total_gz, GZIP_BUDGET))
    tap.check(not external, "no asset refers to another origin (offline)",
              lambda: "; ".join(external))


# --------------------------------------------------------------------------
# part 2: the page in Chromium
# --------------------------------------------------------------------------

bpftrace_usable = btd.bpftrace_usable


def find_chromium():
    return browser.find_chromium(tap.diag)


def find_playwright():
    return browser.find_playwright(tap.diag)


SCRIPT_NAME = "uitest"
LOG_TEXT = "uitest tick"
SCRIPT_CODE = """// a hist(), a counter, a keyed map and a printf()
tracepoint:raw_syscalls:sys_enter {
    @usecs = hist((nsecs % 100000) / 100);
    @calls = count();
    @bycomm[comm] = count();
}
interval:ms:500 { printf("uitest tick %d\\n", elapsed / 1000000); }
"""


def browser_steps():
    why = bpftrace_usable()
    chromium = playwright = None
    if why is None:
        chromium, why = find_chromium()
    if why is None:
        playwright, why = find_playwright()
    if why is not None:
        tap.skip("the page in headless Chromium: register, histogram, "
                 "log, stop, deregister", why)
        return
    out = os.environ.get("UI_SCREENS_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "ui-screens")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError:                 # a read-only source tree (distcheck)
        out = tempfile.mkdtemp(prefix="ui-screens-")
    udd = tempfile.mkdtemp(prefix="btd-chromium-")
    with btd.Daemon(["--control", "loopback"]) as d:
        # completion needs the tracepoint list, made in the background
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            v = d.fetch_values("bpftrace.info.tracepoints")
            if v.get("bpftrace.info.tracepoints", {}).get(None):
                break
            time.sleep(0.5)
        env = dict(os.environ, PLAYWRIGHT_CORE=playwright, CHROMIUM=chromium,
                   BTD_URL=d.base, OUT_DIR=out, USER_DATA_DIR=udd,
                   SCRIPT_NAME=SCRIPT_NAME, SCRIPT_CODE=SCRIPT_CODE,
                   LOG_TEXT=LOG_TEXT)
        try:
            p = subprocess.run(["node", UI_JS], capture_output=True,
                               timeout=400, env=env, cwd=udd)
            stdout, stderr, rc = p.stdout, p.stderr, p.returncode
        except subprocess.TimeoutExpired as e:
            stdout, stderr, rc = e.stdout or b"", e.stderr or b"", "timeout"
        seen = 0
        for line in stdout.decode(errors="replace").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                tap.diag(line)
                continue
            if r.get("step") == "console":
                tap.check(not r["errors"], "no console errors in the page",
                          lambda: "\n".join(r["errors"]))
            else:
                tap.check(r["ok"], r["step"] + (" (%s)" % r["detail"][:120]
                                                if r["ok"] else ""),
                          r["detail"])
            seen += 1
        tap.check(rc == 0 and seen >= 10, "ui.js ran to the end (rc %s)" % rc,
                  lambda: stderr.decode(errors="replace")[-2000:] +
                  d.stderr_text()[-1500:])
    shutil.rmtree(udd, ignore_errors=True)
    shot = os.path.join(out, "ui-running.png")
    tap.check(os.path.isfile(shot) and os.path.getsize(shot) > 10000,
              "screenshots written to %s" % out)
    # the README's picture: made when missing, refreshed on request
    readme_shot = os.path.join(SRC, "web", "ui-screenshot.png")
    if os.path.isfile(shot) and (os.environ.get("UI_UPDATE_SCREENSHOT") or
                                 not os.path.exists(readme_shot)):
        try:
            shutil.copyfile(shot, readme_shot)
            tap.diag("copied to web/ui-screenshot.png")
        except OSError as e:
            tap.diag("web/ui-screenshot.png not updated: %s" % e)


def main():
    with btd.Daemon() as d:
        test_assets(d)
        test_conditional_and_head(d)
        test_refusals(d)
    test_size_and_offline()
    browser_steps()
    tap.done()


if __name__ == "__main__":
    main()
