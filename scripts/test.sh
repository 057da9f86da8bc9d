#!/usr/bin/env bash
# The project's one test command: installs what the tests need when it is missing
# (libhiredis-dev, redis-server), builds everything and runs every test suite.
# Integration tests start their own servers (redis-server, imserver nodes) on loopback.
# Arguments are passed to `swift test` (e.g. scripts/test.sh --filter MessagingTests).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test
swift build --build-tests
swift test --skip-build "$@"
