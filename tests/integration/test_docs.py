#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_docs.py - the manual pages cover the program (TAP).

Every flag of `bpftraced --help` is in bpftraced(8); every config-file key
(the long flags but config, help and version) is in bpftraced.conf(5) and
in the packaged packaging/bpftraced.conf, and nothing stale is; both pages
render with `man --warnings -l` without a warning; the metric families a
daemon serves, its signals and exit statuses are documented; the packaged
configuration file passes `bpftraced --config FILE -n`.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

BIN = btd.default_binary()
SRC = os.environ.get("BT_SRCDIR") or btd.REPO_ROOT
MAN8 = os.path.join(SRC, "man", "bpftraced.8")
MAN5 = os.path.join(SRC, "man", "bpftraced.conf.5")
CONF = os.path.join(SRC, "packaging", "bpftraced.conf")
NOT_KEYS = {"config", "help", "version", "check"}   # check: ignored

tap = btd.Tap()
if not os.access(BIN, os.X_OK):
    btd.Tap.skip_all("bpftraced not built (%s)" % BIN)


def roff_text(path):
    """The page's source with font escapes gone and \\- as -."""
    with open(path) as f:
        s = f.read()
    s = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\:|\\%", "", s)
    return s.replace("\\-", "-").replace("\\e", "\\").replace("\\(aq", "'")


def section(text, name):
    m = re.search(r"^\.SH \"?%s\"?\n(.*?)(?=^\.SH |\Z)" % re.escape(name),
                  text, re.S | re.M)
    return m.group(1) if m else ""


def help_flags():
    p = subprocess.run([BIN, "--help"], stdout=subprocess.PIPE, text=True)
    longs = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", p.stdout))
    shorts = set(re.findall(r"(?<![\w-])(-[a-zA-Z])\b", p.stdout))
    return p.returncode, longs, shorts


def main():
    rc, longs, shorts = help_flags()
    tap.ok(rc == 0 and len(longs) > 30, "--help lists the flags",
           (rc, len(longs)))
    m8, m5 = roff_text(MAN8), roff_text(MAN5)
    opts8 = section(m8, "OPTIONS")
    missing = sorted(f for f in longs | shorts
                     if not re.search(r"(?<![\w-])%s(?![\w-])" %
                                      re.escape(f), opts8))
    tap.ok(not missing, "every --help flag is in bpftraced(8) OPTIONS",
           missing)
    documented = set(re.findall(r"^\.B[IR]? +\"?(--[a-z][a-z0-9-]*)", opts8,
                                re.M))
    documented |= set(re.findall(r"^\.BR -[a-zA-Z] \", \" (--[a-z-]+)",
                                 opts8, re.M))
    stale = sorted(documented - longs)
    tap.ok(not stale, "bpftraced(8) documents no flag --help lacks", stale)
    keys = {f[2:] for f in longs} - NOT_KEYS
    keys5 = set(re.findall(r"^\.BI \"([a-z][a-z0-9-]*) = \"", m5, re.M))
    tap.ok(keys <= keys5, "every config key is in bpftraced.conf(5)",
           sorted(keys - keys5))
    tap.ok(keys5 <= keys, "bpftraced.conf(5) lists no unknown key",
           sorted(keys5 - keys))
    with open(CONF) as f:
        conf = f.read()
    keysc = set(re.findall(r"^# ([a-z][a-z0-9-]*) = ", conf, re.M))
    tap.ok(keysc == keys, "packaging/bpftraced.conf shows every key",
           (sorted(keys - keysc), sorted(keysc - keys)))
    tmp = tempfile.mkdtemp(prefix="btd-docs-")
    try:
        p = subprocess.run([BIN, "--config", CONF, "-n", "--state-dir",
                            os.path.join(tmp, "st"), "--pmda", "off",
                            "--pmcd", "off"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        tap.check(p.returncode == 0 and "configuration OK" in p.stdout,
               "the packaged bpftraced.conf passes -n", p.stderr)
        # every key of the page's defaults, uncommented, is accepted
        lines = [re.sub(r"\s{2,}\(.*$", "", ln[2:]) for ln in
                 conf.splitlines() if re.match(r"# [a-z-]+ = ", ln)]
        lines = [ln for ln in lines if not re.match(
            r"(auth-file|tls-cert|tls-key|script|scripts-dir|pmcd|bpftrace"
            r"|listen|state-dir|pmda-socket) ", ln)]
        cf = os.path.join(tmp, "all.conf")
        with open(cf, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = subprocess.run([BIN, "--config", cf, "-n", "--state-dir",
                            os.path.join(tmp, "st"), "--pmda", "off",
                            "--pmcd", "off"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        tap.check(p.returncode == 0, "the defaults shown in the packaged file "
               "are accepted values", p.stderr + "\n".join(lines))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for sec in ("SYNOPSIS", "DESCRIPTION", "OPTIONS", "METRICS",
                "PROMETHEUS", "SIGNALS", "ENVIRONMENT", "FILES",
                "EXIT STATUS", "EXAMPLES", "SEE ALSO", "CAPABILITIES"):
        tap.ok(section(m8, sec).strip() != "", "bpftraced(8) has %s" % sec)
    sig = section(m8, "SIGNALS")
    tap.ok(all(s in sig for s in ("SIGTERM", "SIGINT", "SIGHUP")),
           "signals SIGTERM, SIGINT and SIGHUP are documented")
    ex = section(m8, "EXIT STATUS")
    tap.ok(all(re.search(r"^\.B %d$" % n, ex, re.M) for n in (0, 1, 2)),
           "exit statuses 0, 1 and 2 are documented")
    files = section(m8, "FILES")
    tap.ok(all(f in files for f in ("/var/lib/bpftraced",
                                    "/etc/bpftraced/bpftraced.conf",
                                    "bpftraced.service", "bpftraced-passwd",
                                    "/usr/share/bpftraced/pcp/Install")),
           "files: state dir, config, unit, passwd, PCP glue")
    with open(os.path.join(SRC, "Makefile.am")) as f:
        mk = f.read()
    tap.ok("man/bpftraced.8" in mk and "man/bpftraced.conf.5" in mk,
           "Makefile.am installs both pages")
    # metric families of a running daemon
    metrics = section(m8, "METRICS")
    with btd.Daemon(["--pmcd", "off"]) as d:
        names = []
        for prefix in ("bpftrace", "pmcd"):
            st, j, _ = d.get_json("/pmapi/metric?prefix=" + prefix)
            names += [m["name"] for m in (j or {}).get("metrics", [])]
    miss = [n for n in names
            if n not in metrics and not (n.rsplit(".", 1)[0] + "." in
                                         metrics and
                                         n.rsplit(".", 1)[1] in metrics)]
    tap.check(names and not miss, "every metric the daemon serves is in "
           "METRICS", miss)
    for item in ("status", "pid", "exit_code", "error", "warnings", "probes",
                 "code", "data_bytes", "lost_events", "restarts",
                 "helper_errors", "runtime_errors", "last_helper_error",
                 "bpftrace_version", "data."):
        if item not in metrics:
            tap.ok(False, "per-script item %s in METRICS" % item)
            break
    else:
        tap.ok(True, "per-script items are in METRICS")
    # rendering
    if shutil.which("man") is None:
        tap.skip("man -l renders the pages", "man(1) is not installed")
    else:
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8",
                   MAN_KEEP_FORMATTING="")
        for page in (MAN8, MAN5):
            p = subprocess.run(["man", "--warnings", "-l", page],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, timeout=60)
            tap.check(p.returncode == 0 and p.stderr == b"" and
                   len(p.stdout) > 2000,
                   "man --warnings -l %s: no warnings"
                   % os.path.basename(page), p.stderr.decode()[:2000])
    tap.done()


if __name__ == "__main__":
    main()
