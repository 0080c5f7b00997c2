#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/bench/attacks.sh - the exhaustion attacks of issue 14 (see
# tests/bench/README.md): each attack for 20 s against a fresh daemon, the
# attacker on 127.0.0.2 and then on 127.0.0.1, beside a bystander fetching
# every 100 ms; markdown on stdout, progress on stderr. Options go to
# attacks.py: --only NAME,... --seconds N --bpftraced PATH --pass
# other|same|both --as-limit BYTES --list. About 10 minutes for all of them.
exec /usr/bin/python3 "$(dirname "$0")/attacks.py" "$@"
