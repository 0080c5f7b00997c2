# SPDX-License-Identifier: MIT
"""browser.py - headless Chromium for the tests (test_ui.py, tests/security/).

find_chromium() and find_playwright() return (path, None) or (None, why
not). When a piece is missing they install it, unless BT_UI_NO_INSTALL is
set: Debian's chromium with apt-get (as root), playwright-core with npm
into ~/.cache/bpftraced-tests/node (or $BT_UI_NODE_DIR), outside the
source tree. diag is a callable for a line of progress (Tap.diag).
"""

import os
import shutil
import subprocess

PLAYWRIGHT_VERSION = "1.65.1"       # drives Debian 12's Chromium


def may_install():
    return not os.environ.get("BT_UI_NO_INSTALL")


def find_chromium(diag=lambda msg: None):
    """(path, None) or (None, why not); installs Debian's chromium."""
    for p in (os.environ.get("CHROMIUM"), "/usr/bin/chromium",
              shutil.which("chromium") or ""):
        if p and os.access(p, os.X_OK):
            return p, None
    if not may_install():
        return None, "chromium is not installed (BT_UI_NO_INSTALL set)"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed and apt-get cannot run here"
    diag("installing chromium with apt-get (once)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        p = subprocess.run(["apt-get", "install", "-y", "-q", "chromium"],
                           capture_output=True, timeout=900, env=env)
        if p.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True,
                           timeout=300, env=env)
            p = subprocess.run(["apt-get", "install", "-y", "-q",
                                "chromium"], capture_output=True,
                               timeout=900, env=env)
    except subprocess.TimeoutExpired:
        return None, "apt-get install chromium timed out (no network?)"
    if p.returncode != 0 or not os.access("/usr/bin/chromium", os.X_OK):
        return None, "apt-get install chromium failed (no network?): %s" % (
            p.stderr.decode(errors="replace").strip()[-200:])
    return "/usr/bin/chromium", None


def find_playwright(diag=lambda msg: None):
    """(module dir, None) or (None, why not); npm-installs it outside the
    source tree, in a cache directory reused by later runs."""
    if not shutil.which("node"):
        return None, "node is not installed (apt-get install nodejs npm)"
    base = os.environ.get("BT_UI_NODE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "bpftraced-tests", "node")
    mod = os.path.join(base, "node_modules", "playwright-core")
    if os.path.isfile(os.path.join(mod, "package.json")):
        return mod, None
    if not may_install():
        return None, "playwright-core is not installed (BT_UI_NO_INSTALL set)"
    if not shutil.which("npm"):
        return None, "npm is not installed (apt-get install npm)"
    os.makedirs(base, exist_ok=True)
    diag("installing playwright-core %s with npm into %s"
         % (PLAYWRIGHT_VERSION, base))
    try:
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                            "--no-save", "--prefix", base,
                            "playwright-core@" + PLAYWRIGHT_VERSION],
                           capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "npm install playwright-core timed out (no network?)"
    if p.returncode != 0 or not os.path.isdir(mod):
        return None, "npm install playwright-core failed (no network?): %s" % (
            p.stderr.decode(errors="replace").strip()[-200:])
    return mod, None
