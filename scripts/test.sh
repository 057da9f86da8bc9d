#!/usr/bin/env bash
# The project's one test command: installs what the tests need when it is missing
# (libhiredis-dev, redis-server), builds everything and runs every test suite.
# Integration tests start their own servers (redis-server, imserver nodes) on loopback.
# Then builds and tests Examples/CustomBackplane, a plugin package outside the main package,
# so the public plugin API cannot break unnoticed, and Benchmarks, the package of the load
# generator imbench (kept out of the main package so downstream packages do not resolve its
# dependencies). Last, the real-browser suite (scripts/browser-tests.py) drives the demo chat
# and /imclient.js in headless Chromium.
# Arguments are passed to `swift test` of the main package, and then only its tests run
# (e.g. scripts/test.sh --filter MessagingTests).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test
swift build --build-tests
swift test --skip-build "$@"
if [[ $# -eq 0 ]]; then
  (
    cd Examples/CustomBackplane
    swift build --build-tests
    swift test --skip-build
  )
  (
    cd Benchmarks
    swift build --build-tests
    swift test --skip-build
  )
  # The demo chat and /imclient.js in headless Chromium; screenshots in .build/browser-artifacts.
  /usr/bin/python3 scripts/browser-tests.py "$(swift build --show-bin-path)/imserver"
fi
