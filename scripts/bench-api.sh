#!/usr/bin/env bash
# Node CPU per server API request, for one or more imserver binaries, interleaved.
#
# Starts each binary on the memory backplane (loopback ports 6601/6602), drives one endpoint
# with wrk (Debian package `wrk`) for DURATION seconds after a 2 s warm-up, and prints the
# node's CPU time (utime+stime from /proc) per request. Bodies carry a 64-byte message.
#
#   scripts/bench-api.sh old/imserver new/imserver          # every case, ROUNDS rounds
#   CASES="batch" ROUNDS=3 scripts/bench-api.sh .build-bench/release/imserver
#
# Cases: channel (POST /v1/channels/room/messages), users (POST /v1/messages to one
# offline user), batch (POST /v1/batch with 1,000 channel messages), mint (POST
# /v1/connect-url), mints (POST /v1/connect-urls with 1,000 clients), health (GET
# /v1/health, the HTTP floor). Settings: CASES, ROUNDS, DURATION, CONNECTIONS.
set -euo pipefail
command -v wrk >/dev/null || { echo "bench-api: needs wrk (apt-get install wrk)" >&2; exit 1; }
(($# > 0)) || { echo "usage: $0 imserver [imserver…]" >&2; exit 2; }
CASES=${CASES:-"channel users batch mint mints health"}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-16}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DATA='{"text":"hello, this is a sixty-four byte message body for testing ok"}'
python3 - "$WORK" "$DATA" <<'PY'
import sys
work, data = sys.argv[1], sys.argv[2]
bodies = {
    "channel": ("POST", "/v1/channels/room/messages", '{"from":"svc","data":%s}' % data),
    "users": ("POST", "/v1/messages", '{"from":"svc","to":["u1"],"data":%s}' % data),
    "batch": ("POST", "/v1/batch", '{"messages":[%s]}' % ",".join(
        ['{"from":"svc","channel":"room","data":%s}' % data] * 1000)),
    "mint": ("POST", "/v1/connect-url", '{"client":"user-123456","meta":"web"}'),
    "mints": ("POST", "/v1/connect-urls", '{"clients":[%s]}' % ",".join(
        '{"client":"user-%d","meta":"web"}' % i for i in range(1000))),
    "health": ("GET", "/v1/health", None),
}
for name, (method, path, body) in bodies.items():
    lua = 'wrk.method = "%s"\nwrk.path = "%s"\n' % (method, path)
    if body is not None:
        open("%s/%s.body" % (work, name), "w").write(body)
        lua += 'wrk.headers["Content-Type"] = "application/json"\n'
        lua += 'local f = io.open("%s/%s.body", "r")\nwrk.body = f:read("*a")\nf:close()\n' % (work, name)
    open("%s/%s.lua" % (work, name), "w").write(lua)
PY
for round in $(seq "$ROUNDS"); do
  for case in $CASES; do
    for server in "$@"; do
      IM_TOKEN_SECRET=0123456789abcdef0123456789abcdef IM_PUBLIC_LISTEN=127.0.0.1:6601 \
        IM_API_LISTEN=127.0.0.1:6602 IM_LOG_LEVEL=warning "$server" >"$WORK/server.log" 2>&1 &
      pid=$!
      for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:6602/v1/health && break; sleep 0.1; done
      wrk -t1 -c"$CONNECTIONS" -d2s -s "$WORK/$case.lua" http://127.0.0.1:6602 >/dev/null
      before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
      out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/$case.lua" http://127.0.0.1:6602)
      after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
      kill "$pid"; wait "$pid" 2>/dev/null || true
      requests=$(echo "$out" | awk '/requests in/ {print $1}')
      errors=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
      ticks=$(getconf CLK_TCK)
      python3 -c "import sys; n=$requests; c=($after-$before)/$ticks
print(f'round={$round} case=$case server=$server requests={n} per_s={n/$DURATION:.0f} cpu_s={c:.2f} '
      f'us_per_request={c/n*1e6:.1f} non2xx=${errors:-0}')"
    done
  done
done
