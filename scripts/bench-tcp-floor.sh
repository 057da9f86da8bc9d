#!/usr/bin/env bash
# Kernel CPU floor for a WebSocket-like handshake over loopback TCP (see scripts/tcp-floor.c).
#
# Builds scripts/tcp-floor.c with gcc into /tmp/tcp-floor and runs it RUNS times; every run
# prints one parseable line starting with "RESULT scenario=tcp-floor". Arguments go to the
# program unchanged:
#
#   scripts/bench-tcp-floor.sh                                # 1 run, 15000 handshakes, one write
#   RUNS=3 scripts/bench-tcp-floor.sh --two-writes --count 15000 --in-flight 256
#
# Settings (environment): RUNS (default 1), PAUSE (seconds between runs, default 2), BIN.
# Exits non-zero if the build or any run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-1}"
PAUSE="${PAUSE:-2}"
BIN="${BIN:-/tmp/tcp-floor}"

gcc -O2 -o "$BIN" scripts/tcp-floor.c -lpthread

for ((i = 1; i <= RUNS; i++)); do
  # Each run leaves ~count connections in TIME_WAIT; 29 source addresses keep ports plentiful.
  "$BIN" "$@"
  if ((i < RUNS)); then sleep "$PAUSE"; fi
done
