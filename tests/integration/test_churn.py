#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_churn.py - what register/deregister churn leaves behind (TAP).

The long soak (tests/soak/soak.py) found the daemon's memory growing with
every register/deregister cycle; these are the short, deterministic
checks of each bound it needed:

1. Control answers (the reply to a store, read back by fetching the same
   control metric in the same context) go with their context. Stores
   without a context each make an implicit context; their answers used to
   stay in a table of 4096 for 10 minutes after those contexts were gone,
   and once the table was full the oldest answer was recycled: a client
   that had stored in its own long-lived context lost its answer to other
   clients' churn.
2. The audit table (two rows per register/deregister cycle) keeps the
   newest --max-audit-rows rows, so the state database stops growing.
"""

import os
import sqlite3
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import btd  # noqa: E402

tap = btd.Tap()
FAKE = btd.FAKE_BPFTRACE
ENV = {"BT_SHARED": btd.shared_dir()}
ARGS = ["--control", "loopback", "--bpftrace", FAKE]
BATCH = 2100            # two batches: more than the 4096 answers kept


def store_contextless(d, conn, item, value, polltimeout):
    st, _, _ = btd.http("GET", d.url("/pmapi/store?" + urllib.parse.urlencode(
        {"name": "bpftrace.control." + item, "value": value,
         "polltimeout": polltimeout})), conn=conn)
    return st


def answers_follow_contexts():
    with btd.Daemon(ARGS, env=ENV) as d:
        c = btd.Client(d, polltimeout=300)
        code = ("// name: keep\n// fixture: scalar_count\n// fake: hold\n"
                "tracepoint:raw_syscalls:sys_enter { @c = count(); }\n")
        st, _ = c.getj("/pmapi/store", context=c.ctx,
                       name="bpftrace.control.register", value=code)
        tap.check(st == 200, "register in a long-lived context", "status %s" % st)
        conn = btd.connect(d.base)
        bad = 0
        for batch in range(2):
            for _ in range(BATCH):
                # refused (no such script), answered all the same; each
                # makes an implicit context that lives 1 s
                bad += store_contextless(d, conn, "deregister", "nosuch",
                                         1) != 400
            time.sleep(1.5)
        tap.check(bad == 0, "%d context-less deregister stores answered 400"
               % (2 * BATCH), "%d other statuses" % bad)
        st, j = c.getj("/pmapi/fetch", context=c.ctx,
                       names="bpftrace.control.register")
        vals = j.get("values") or [{}]
        text = ((vals[0].get("instances") or [{}])[0]).get("value", "")
        tap.check(st == 200 and '"name": "keep"' in text,
                  "the register answer survives %d stores of expired "
                  "contexts" % (2 * BATCH), lambda: "%s %r" % (st, text))


def audit_rows_bounded():
    keep, n = 16, 100
    try:
        d = btd.Daemon(ARGS + ["--max-audit-rows", str(keep)], env=ENV)
    except btd.DaemonError as e:
        tap.ok(False, "a daemon with --max-audit-rows %d starts" % keep,
               str(e).splitlines()[0])
        return
    with d:
        conn = btd.connect(d.base)
        for i in range(n):
            store_contextless(d, conn, "deregister", "nosuch%d" % i, 5)
        d.stop(cleanup=False)
        db = sqlite3.connect(os.path.join(d.state_dir, "bpftraced.db"))
        rows = [r[0] for r in db.execute(
            "SELECT target FROM audit ORDER BY seq")]
        db.close()
    most = keep + keep // 8 + 1
    tap.check(keep <= len(rows) <= most,
              "--max-audit-rows %d: %d..%d audit rows after %d actions"
              % (keep, keep, most, n), lambda: "%d rows" % len(rows))
    tap.check(rows and rows[-1] == "nosuch%d" % (n - 1) and
              "nosuch%d" % (n - keep) in rows,
              "the newest rows are the ones kept", lambda: repr(rows))


answers_follow_contexts()
audit_rows_bounded()
tap.done()
