#!/usr/bin/env bash
# The Python package as a user installs it: a fresh virtual environment,
# `pip install bindings/python` offline (--no-index: the build backend needs
# nothing from an index), then smoke.py with the standard library's sqlite3.
#
#   bindings/python/test/run.sh [MODULE]
#
# With MODULE (the meson test passes build/ext/klevdb.so) the wheel takes
# that module; without, pip builds it from the sources (.ci/run).
# Exits 77 (skipped) where no Python has both venv and sqlite3 extension
# loading (Debian's /usr/bin/python3 has).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
module=${1:-}
[ -z "$module" ] || module=$(realpath "$module")
py=""
for cand in /usr/bin/python3 python3; do
  if "$cand" -c 'import sqlite3, venv, ensurepip; sqlite3.connect(":memory:").enable_load_extension(False)' \
      >/dev/null 2>&1; then
    py=$cand
    break
  fi
done
if [ -z "$py" ]; then
  echo "skipped: no python3 with venv, ensurepip and sqlite3 extension loading (Debian: python3-venv)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m venv "$tmp/venv"
args=(--no-index --disable-pip-version-check --no-cache-dir -q)
[ -z "$module" ] || args+=(--config-settings "module=$module")
"$tmp/venv/bin/pip" install "${args[@]}" "$root/bindings/python"
mkdir "$tmp/run"
cp -r "$root/tests/fixtures/v2-basic/store" "$tmp/run/go-store"
cp "$here/smoke.py" "$tmp/run/"
cd "$tmp/run"
"$tmp/venv/bin/python" smoke.py
