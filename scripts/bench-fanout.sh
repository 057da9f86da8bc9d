#!/usr/bin/env bash
# Fan-out latency against offered load, on this machine.
#
# Builds release imserver (this package) and imbench (the Benchmarks package) in their own
# scratch folder, starts one imserver on the memory backplane with generous limits, runs
# `imbench fanout` once per rate against it, and writes docs/bench/fanout.csv,
# docs/bench/fanout.png (p99 latency vs offered rate) and docs/bench/fanout-results.txt
# (every RESULT line). Everything stays on 127.0.0.0/8.
#
#   scripts/bench-fanout.sh                         # 1000 members, 50..600 msg/s, 20 s each
#   MEMBERS=500 RATES="100 200" DURATION=10 scripts/bench-fanout.sh
#
# Settings (environment): MEMBERS, RATES, DURATION (s per rate), SETTLE (s), PORT, API_PORT,
# OUT (output folder), SCRATCH (build folder), JOBS (build jobs), WORKERS (imbench --workers),
# SKIP_BUILD=1 (use what SCRATCH holds), LOG (the server's log file).
# Binaries: imserver in $SCRATCH/release, imbench in $SCRATCH/imbench/release (Benchmarks is a
# package of its own, built with its own scratch folder inside SCRATCH).
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${MEMBERS:-1000}
RATES=${RATES:-"50 100 200 400 600"}
DURATION=${DURATION:-20}
SETTLE=${SETTLE:-5}
PORT=${PORT:-6001}
API_PORT=${API_PORT:-6002}
OUT=${OUT:-docs/bench}
SCRATCH=${SCRATCH:-.build-bench}
JOBS=${JOBS:-1}
WORKERS=${WORKERS:-0}

BENCH_SCRATCH="$SCRATCH/imbench"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  swift build -c release -j "$JOBS" --scratch-path "$SCRATCH" --product imserver
  swift build -c release -j "$JOBS" --package-path Benchmarks --scratch-path "$BENCH_SCRATCH" --product imbench
fi
BIN=$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)
BENCH_BIN=$(swift build -c release --package-path Benchmarks --scratch-path "$BENCH_SCRATCH" --show-bin-path)
mkdir -p "$OUT"
LOG=${LOG:-${TMPDIR:-/tmp}/imbench-fanout-imserver.log}

SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
IM_BACKPLANE_URL=memory:// \
IM_NODE_ID=bench-1 \
IM_PUBLIC_LISTEN="127.0.0.1:$PORT" \
IM_API_LISTEN="127.0.0.1:$API_PORT" \
IM_TOKEN_SECRET="$SECRET" \
IM_TOKEN_LIFETIME=600 \
IM_LOG_LEVEL=warning \
IM_LIMITS_HANDSHAKES_PER_SECOND=1000000 \
IM_LIMITS_CONNECTIONS_PER_NODE=1000000 \
IM_LIMITS_CONNECTIONS_PER_USER=16 \
IM_LIMITS_WRITE_BUFFER_HIGH_WATER=1048576 \
IM_LIMITS_MAX_QUEUED_BYTES=16777216 \
IM_LIMITS_SLOW_CONSUMER_TIMEOUT=30 \
  "$BIN/imserver" >"$LOG" 2>&1 &
SERVER=$!
stop_server() {
  kill -TERM "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
}
trap stop_server EXIT

python3 - "$PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/health"
for _ in range(300):
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(f"imserver did not answer {url}")
PY
echo "imserver pid $SERVER healthy on :$PORT (API :$API_PORT), log $LOG" >&2

CSV="$OUT/fanout.csv"
RESULTS="$OUT/fanout-results.txt"
echo "offered_rate,p50_ms,p99_ms,p999_ms,deliveries_per_s" >"$CSV"
: >"$RESULTS"
status=0
for rate in $RATES; do
  echo "== fanout: $MEMBERS members, $rate msg/s for $DURATION s" >&2
  line=$("$BENCH_BIN/imbench" fanout --url "ws://127.0.0.1:$PORT/ws" --api "http://127.0.0.1:$API_PORT" \
    --members "$MEMBERS" --rate "$rate" --duration "$DURATION" --settle "$SETTLE" --pid "$SERVER" \
    --workers "$WORKERS" --source-addresses 127.0.0.2-127.0.0.30 | grep '^RESULT ') || status=1
  echo "$line" | tee -a "$RESULTS"
  field() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  if [[ -n "$line" ]]; then
    echo "$rate,$(field p50_ms),$(field p99_ms),$(field p999_ms),$(field deliveries_per_s)" >>"$CSV"
  fi
done

python3 scripts/bench-chart.py "$CSV" "$OUT/fanout.png" \
  --title "ImServer fan-out, $MEMBERS members, one node: latency vs offered load"
echo "wrote $CSV, $OUT/fanout.png and $RESULTS" >&2
exit "$status"
