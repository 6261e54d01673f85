#!/usr/bin/env bash
# Set-up and demo: installs what is missing, builds klevdb into build/, and
# runs the demo on a fresh store in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
store=$(mktemp -d /tmp/klevdb-demo.XXXXXX)/events
echo "== store: $store"
build/examples/hello "$store"
