#!/usr/bin/env bash
# Builds the Centrifuge peer (main.go beside this script) offline, into the path given:
#
#   Benchmarks/Peers/centrifuge/build.sh /tmp/centrifuge-peer
#
# It uses Go in GOPATH mode on Debian's packaged Go sources (no module download), so it needs:
#
#   apt-get install golang-go golang-github-centrifugal-centrifuge-dev \
#     golang-github-centrifugal-protocol-dev golang-github-fzambia-eagle-dev \
#     golang-github-igm-sockjs-go-dev golang-github-mna-redisc-dev
#
# (Debian's centrifuge package does not depend on the last four, which the library imports.)
# Nothing in the project's tests or CI needs this program.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 OUTPUT-PATH" >&2
  exit 2
fi
output=$1
[[ "$output" == /* ]] || output="$PWD/$output"
here=$(cd "$(dirname "$0")" && pwd)
gocode=${GOCODE:-/usr/share/gocode}
packages="golang-go golang-github-centrifugal-centrifuge-dev golang-github-centrifugal-protocol-dev \
golang-github-fzambia-eagle-dev golang-github-igm-sockjs-go-dev golang-github-mna-redisc-dev"

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: Go is not installed; install it and the library with:" >&2
  echo "  apt-get install $packages" >&2
  exit 1
fi
missing=()
for source in github.com/centrifugal/centrifuge github.com/centrifugal/protocol github.com/FZambia/eagle \
  github.com/igm/sockjs-go/v3 github.com/mna/redisc github.com/gomodule/redigo github.com/gorilla/websocket; do
  [[ -d "$gocode/src/$source" ]] || missing+=("$source")
done
if ((${#missing[@]} > 0)); then
  echo "build.sh: Go sources missing under $gocode/src: ${missing[*]}; install them with:" >&2
  echo "  apt-get install $packages" >&2
  exit 1
fi

# GOPATH mode, no network: imports resolve under $gocode only. The build cache is Go's default
# (or GOCACHE); the first build compiles the library and takes a minute.
cd "$here"
GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH="$gocode" go build -o "$output" .
echo "built $output ($(go version | cut -d' ' -f3), $(dpkg-query -W -f='centrifuge ${Version}' \
  golang-github-centrifugal-centrifuge-dev 2>/dev/null || echo 'centrifuge from '"$gocode"))"
