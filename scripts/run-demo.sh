#!/usr/bin/env bash
# Runs one ImServer node with the demo chat on the in-process memory backplane:
# open http://127.0.0.1:6001/ in two browser tabs. Installs the build's system library
# (libhiredis-dev) when it is missing. Extra arguments go to imserver.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
exec swift run imserver --demo "$@"
