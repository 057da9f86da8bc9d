#!/usr/bin/env bash
# Installs the system packages ImServer builds and tests with, when they are missing:
# libhiredis-dev and libnats-dev (the Redis and NATS plugins' C libraries); with --test also
# redis-server, nats-server, PostgreSQL 15 and openssl (the tests start Redis, NATS and
# PostgreSQL, some with TLS and a certificate made by openssl), and Chromium, its driver and
# python3-selenium (the real-browser suite).
# Debian/Ubuntu; uses sudo when not root. Safe to run again.
set -euo pipefail

missing=()
browser=()
pkg-config --exists hiredis 2>/dev/null || missing+=(libhiredis-dev pkg-config)
pkg-config --exists libnats 2>/dev/null || missing+=(libnats-dev pkg-config)
if [ "${1:-}" = "--test" ]; then
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ -x /usr/lib/postgresql/15/bin/postgres ] || command -v postgres >/dev/null 2>&1 || missing+=(postgresql-15)
  command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  # The real-browser suite (scripts/browser-tests.py): headless Chromium driven by selenium.
  command -v chromium >/dev/null 2>&1 || browser+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || browser+=(chromium-driver)
  /usr/bin/python3 -c 'import selenium' >/dev/null 2>&1 || browser+=(python3-selenium)
fi
[ ${#missing[@]} -eq 0 ] && [ ${#browser[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]} ${browser[*]}" >&2
$sudo apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Chromium with its recommended packages (fonts among them), so pages render as for users.
if [ ${#browser[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${browser[@]}" >/dev/null
fi
# The Debian package starts a system-wide redis on 6379; the tests start their own.
# The same for a packaged nats-server, if its package starts one.
if command -v systemctl >/dev/null 2>&1; then
  $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
  $sudo systemctl disable --now postgresql >/dev/null 2>&1 || true
  $sudo systemctl disable --now nats-server >/dev/null 2>&1 || true
fi
# The PostgreSQL package may start a cluster of its own on 5432; the tests make their own.
if command -v pg_ctlcluster >/dev/null 2>&1; then $sudo pg_ctlcluster 15 main stop >/dev/null 2>&1 || true; fi
