#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/bench/overhead.sh - see tests/bench/README.md
exec /usr/bin/python3 "$(dirname "$0")/bench.py" overhead "$@"
