#!/usr/bin/env bash
# Set-up and demo: installs what is missing, builds klevdb into build/, then,
# in a fresh temporary directory, runs the C demo (examples/hello.c) and the
# SQL quickstart (examples/quickstart.sql) through the sqlite3 shell with the
# extension loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
tmp=$(mktemp -d /tmp/klevdb-demo.XXXXXX)

echo "== C library (examples/hello.c): store $tmp/events"
build/examples/hello "$tmp/events"

echo
echo "== SQLite extension (examples/quickstart.sql), in $tmp:"
echo "   sqlite3 -cmd '.load $root/build/ext/klevdb' quickstart.db < $root/examples/quickstart.sql"
# -bail: stop at the first error (and fail the script) rather than go on.
(cd "$tmp" && sqlite3 -batch -bail -cmd ".load '$root/build/ext/klevdb'" quickstart.db \
  < "$root/examples/quickstart.sql")

echo
echo "== The command-line tool (build/tools/klevdb) on the same store:"
echo "   build/tools/klevdb stat $tmp/quickstart.d"
build/tools/klevdb stat "$tmp/quickstart.d"

echo
echo "== Files left in $tmp (remove it when done):"
(cd "$tmp" && find . -mindepth 1 -maxdepth 2 | sort | sed 's|^\./|   |')
echo "   Open it again: cd $tmp && sqlite3 -cmd '.load $root/build/ext/klevdb' quickstart.db"
