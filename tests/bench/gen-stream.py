#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gen-stream.py OUT [MB] - writes a bpftrace 0.17 "-f json" stream of about
MB megabytes (default 100) shaped like a busy script's output: rounds of
keyed maps of 10^2, 10^3, 10^4 and 10^5 keys (string, integer and
two-part keys), a 64-bucket hist, a keyed lhist, stats, and printf lines.
Deterministic (fixed seed). The matching script is SCRIPT below."""
import random
import sys

SCRIPT = """// name: ingest
tracepoint:raw_syscalls:sys_enter {
  @m2[comm] = count(); @m3[pid] = count(); @m4[comm, pid] = count();
  @m5[tid] = count(); @h = hist(args->id); @lh[comm] = lhist(args->id, 0, 640, 10);
  @st = stats(args->id);
  printf("%d,%s,%d\\n", pid, comm, args->id);
}
"""


def main():
    out, mb = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 100
    rnd = random.Random(42)
    limit = int(mb * 1000 * 1000)
    comms = ["proc%d" % i for i in range(100)]
    n = 0
    with open(out, "w") as f:
        def w(s):
            nonlocal n
            f.write(s)
            f.write("\n")
            n += len(s) + 1
        w('{"type": "attached_probes", "data": {"probes": 1}}')
        r = 0
        while n < limit:
            r += 1
            for i in range(50):
                w('{"type": "printf", "data": "%d,%s,%d\\n"}' %
                  (rnd.randrange(1, 1 << 22), comms[i % 100], i))
            w('{"type": "map", "data": {"@m2": {%s}}}' % ", ".join(
                '"%s": %d' % (c, rnd.randrange(1 << 20)) for c in comms))
            w('{"type": "map", "data": {"@m3": {%s}}}' % ", ".join(
                '"%d": %d' % (1000 + i, rnd.randrange(1 << 30))
                for i in range(1000)))
            w('{"type": "map", "data": {"@m4": {%s}}}' % ", ".join(
                '"%s,%d": %d' % (comms[i % 100], 10000 + i,
                                 rnd.randrange(1 << 30))
                for i in range(10000)))
            w('{"type": "map", "data": {"@m5": {%s}}}' % ", ".join(
                '"%d": %d' % (200000 + i, rnd.randrange(1 << 40))
                for i in range(100000)))
            b = [{"max": -1, "count": rnd.randrange(100)}]
            b += [{"min": 0 if i == 0 else 1 << (i - 1),
                   "max": 0 if i == 0 else (1 << i) - 1,
                   "count": rnd.randrange(1 << 20)} for i in range(62)]
            b.append({"min": 1 << 61, "count": 3})
            w('{"type": "hist", "data": {"@h": [%s]}}' % ", ".join(
                "{" + ", ".join('"%s": %d' % kv for kv in x.items()) + "}"
                for x in b))
            w('{"type": "hist", "data": {"@lh": {%s}}}' % ", ".join(
                '"%s": [%s]' % (c, ", ".join(
                    '{"min": %d, "max": %d, "count": %d}'
                    % (10 * i, 10 * i + 9, rnd.randrange(1000))
                    for i in range(64))) for c in comms[:20]))
            w('{"type": "stats", "data": {"@st": {"count": %d, "average": %d, '
              '"total": %d}}}' % (r * 1000, 17, r * 17000))
    print(n)


if __name__ == "__main__":
    main()
