#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_pcplib.py - libpcp is loaded only when PCP is used (TAP).

bpftraced is not linked against libpcp (src/lib/pcplib.c). This drives the real
daemon: with --pmcd off --pmda off nothing of libpcp is mapped, yet units,
error texts and pmcd.version are right; with the library made unloadable
(BPFTRACED_LIBPCP) it still serves bpftrace metrics, --pmda auto carries on
without PMDA mode, --pmda on refuses to start saying why, and --pmcd HOST
answers with the reason; with a local pmcd answering, the default mode
loads libpcp and serves pmcd's metrics.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
GONE = "/nonexistent/libpcp.so.3"


def mapped_libpcp(pid):
    with open("/proc/%d/maps" % pid) as f:
        return sorted({line.split()[-1] for line in f
                       if "/libpcp" in line})


def pmcd_answers():
    try:
        socket.create_connection(("127.0.0.1", 44321), 1).close()
        return True
    except OSError:
        return False


def metric(d, name):
    st, obj, body = d.get_json("/pmapi/metric?names=" + name)
    if st != 200 or not obj:
        return {}
    return obj["metrics"][0]


def test_not_loaded():
    with btd.Daemon(["--pmda", "off"]) as d:
        tap.ok(d.proc.pid > 0 and mapped_libpcp(d.proc.pid) == [],
               "--pmcd off --pmda off: no libpcp mapped",
               mapped_libpcp(d.proc.pid))
        for name, units in (("bpftrace.daemon.requests", "count"),
                            ("bpftrace.daemon.uptime", "sec"),
                            ("bpftrace.daemon.bytes_out", "byte"),
                            ("bpftrace.daemon.rss", "Kbyte"),
                            ("bpftrace.info.version", "none")):
            m = metric(d, name)
            tap.ok(m.get("units") == units,
                   "units of %s without libpcp: %r" % (name, units), m)
        st, obj, _ = d.get_json("/pmapi/context")
        ctx = obj["context"] if st == 200 and obj else 0
        st, _, body = btd.http("GET", d.url("/pmapi/%d/_fetch?names=no.such"
                                            % ctx))
        tap.ok(st == 400 and b"code -12443: Insufficient elements in list"
               in body,
               "pmwebd error text without libpcp", body[:200])
        v = d.fetch_values("pmcd.version")
        tap.ok(v.get("pmcd.version", {}).get(None, "").count(".") == 2,
               "pmcd.version from pcp.conf (%r)" % v, v)
        tap.ok(mapped_libpcp(d.proc.pid) == [],
               "still no libpcp after those requests")


def test_unloadable():
    env = {"BPFTRACED_LIBPCP": GONE}
    with btd.Daemon(["--pmda", "auto"], env=env) as d:
        v = d.fetch_values("bpftrace.info.scripts_running")
        tap.ok("bpftrace.info.scripts_running" in v,
               "libpcp unloadable: bpftrace metrics served")
        err = d.stderr_text()
        tap.ok(os.path.exists("/etc/pcp.conf") is False or
               ("PMDA mode off" in err and GONE in err),
               "--pmda auto: PMDA mode off, saying why", err[-800:])
    d = btd.Daemon(["--pmda", "on", "--pmda-socket",
                    "/tmp/btd-test-pcplib.socket"], env=env, start=False)
    try:
        d.start()
        started = True
    except btd.DaemonError as e:
        started = False
        msg = str(e)
    tap.ok(not started and GONE in msg and "cannot load" in msg,
           "--pmda on: refuses to start, naming the library",
           msg[-600:] if not started else "it started")
    d.stop()
    with btd.Daemon(["--pmda", "off"], env=env, pmcd="localhost") as d:
        st, obj, body = d.get_json("/pmapi/fetch?names=kernel.all.load")
        tap.ok(st >= 400 and b"cannot load " + GONE.encode() in body,
               "--pmcd localhost: a pmcd metric's answer names the "
               "missing library (%d)" % st,
               "%r\n%s" % (body[:300], d.stderr_text()[-1000:]))
        v = d.fetch_values("bpftrace.info.scripts_running")
        tap.ok("bpftrace.info.scripts_running" in v,
               "and bpftrace metrics are still served")


def test_loaded_for_pmcd():
    if not pmcd_answers():
        tap.skip("default mode loads libpcp for a local pmcd",
                 "no pmcd on 127.0.0.1:44321")
        return
    with btd.pmcd_lock():
        with btd.Daemon(["--pmda", "off"], pmcd=None) as d:
            st, obj, body = d.get_json("/pmapi/fetch?names=kernel.all.load")
            tap.ok(st == 200 and obj and obj["values"],
                   "default mode: kernel.all.load from the local pmcd",
                   body[:300])
            tap.ok(any("libpcp.so" in p for p in
                       mapped_libpcp(d.proc.pid)),
                   "and libpcp is mapped now", mapped_libpcp(d.proc.pid))


def main():
    test_not_loaded()
    test_unloadable()
    test_loaded_for_pmcd()
    tap.done()


if __name__ == "__main__":
    main()
