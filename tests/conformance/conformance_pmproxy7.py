#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""conformance_pmproxy7.py - the conformance suite against pmproxy 7.2.2.

conformance.py --pmproxy-version 7.2.2: bpftraced's answers to every case
compared with fixtures/pmproxy-7.2.2.json (recorded from the Debian sid
root's pmproxy with tests/versions/pcp7.sh record), under the deviations
of cases.deviations_for("7.2.2").  Live when $PMPROXY7_URL names a running
pmproxy 7.2.2 (tests/versions/pcp7.sh conformance starts one); the host's
pmproxy 6.0.3 is never used here.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import conformance  # noqa: E402

if __name__ == "__main__":
    sys.argv[1:1] = ["--pmproxy-version", "7.2.2"]
    sys.exit(conformance.main())
