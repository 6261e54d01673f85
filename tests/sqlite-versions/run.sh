#!/usr/bin/env bash
# The SQL tests (sql-tests/*.sql) run against the loadable module inside
# SQLite versions other than the system's: each amalgamation comes out of a
# better-sqlite3 tarball from the npm registry (`npm pack`, no install), is
# built with its default options (plus JSON1 where it was not yet built in)
# and linked with sql-tests/sqlrun.c built -DSQLRUN_LOADABLE, which loads the
# module with ".load" and prints what the 3.40 shell prints. The system's
# libsqlite3 goes through the same harness as a check of the harness itself.
# Then the differential fuzzers run on each version's libsqlite3.so.0.
#
#   tests/sqlite-versions/run.sh [--update] MODULE [CACHE_DIR]
#
# CACHE_DIR (default ~/.cache/klevdb-sqlite-versions) keeps the tarballs and
# builds between runs. Needs npm and network on the first run only. Ends
# with "N passed, N failed" (one test per version and script).
#
# Where a version answers otherwise, VERSION/NAME.diff (a patch of
# sql-tests/NAME.expected) says how; see README.md in this folder for why
# each difference is right. --update rewrites the .diff files from the
# output (then read them!).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
update=0
if [ "${1:-}" = --update ]; then update=1; shift; fi
module=$(realpath "${1:?usage: run.sh [--update] MODULE [CACHE_DIR]}")
cache=${2:-$HOME/.cache/klevdb-sqlite-versions}
mkdir -p "$cache"
cache=$(realpath "$cache")

# better-sqlite3 version -> the SQLite version its tarball bundles.
versions="7.0.0:3.31.1 7.5.0:3.37.2 7.6.2:3.39.1 13.2.0:3.54.1"
too_old="5.4.3:3.29.0"   # must refuse to load
# DESERIALIZE: Python's sqlite3 module links sqlite3_deserialize (opt-in before 3.36).
cflags="-O1 -fPIC -DSQLITE_THREADSAFE=1 -DSQLITE_ENABLE_JSON1 -DSQLITE_ENABLE_DESERIALIZE"
pass=0
fail=0

build() {  # build BETTER_SQLITE3_VERSION SQLITE_VERSION -> $cache/$2/sqlrun
  local bs=$1 v=$2 d=$cache/$2
  # A cache built with other flags (an older run.sh) is built again: an
  # object without -fPIC cannot become libsqlite3.so.0.
  if [ "$(cat "$d/cflags" 2>/dev/null)" != "$cflags" ]; then
    rm -rf "$d/sqlite3.o" "$d/sqlrun" "$d/lib"
  fi
  if [ -x "$d/sqlrun" ] && [ "$d/sqlrun" -nt "$root/sql-tests/sqlrun.c" ] && [ -f "$d/lib/libsqlite3.so.0" ]; then
    return 0
  fi
  mkdir -p "$d/src"
  if [ ! -f "$d/src/sqlite3.c" ]; then
    (cd "$d" && npm pack --silent "better-sqlite3@$bs" >/dev/null) || return 1
    local tgz=$d/better-sqlite3-$bs.tgz
    if tar tzf "$tgz" package/deps/sqlite3/sqlite3.c >/dev/null 2>&1; then
      tar xzf "$tgz" -C "$d/src" --strip-components=3 \
        package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h package/deps/sqlite3/sqlite3ext.h
    else   # older tarballs carry deps/sqlite3.tar.gz
      tar xzf "$tgz" -O package/deps/sqlite3.tar.gz | tar xzf - -C "$d/src"
    fi || return 1
    rm -f "$tgz"
  fi
  grep -q "^#define SQLITE_VERSION  *\"$v\"" "$d/src/sqlite3.h" || {
    echo "better-sqlite3@$bs does not bundle SQLite $v"
    return 1
  }
  if [ ! -f "$d/sqlite3.o" ]; then
    cc $cflags -c "$d/src/sqlite3.c" -o "$d/sqlite3.o" || return 1
    echo "$cflags" > "$d/cflags"
  fi
  mkdir -p "$d/lib"
  cc -shared -Wl,-soname,libsqlite3.so.0 "$d/sqlite3.o" -o "$d/lib/libsqlite3.so.0" -ldl -lpthread -lm ||
    return 1
  cc -O1 -Wall -Wextra -Werror -DSQLRUN_LOADABLE -I"$d/src" "$root/sql-tests/sqlrun.c" "$d/sqlite3.o" \
    -o "$d/sqlrun" -ldl -lpthread -lm
}

# The differential fuzzers (tests/ext) with a fixed seed, in Python whose
# sqlite3 module runs on this version's libsqlite3.so.0 (LD_LIBRARY_PATH;
# Debian's python3, built for 3.40, calls nothing newer than 3.31 here).
run_fuzz() {  # run_fuzz VERSION
  local v=$1 py=/usr/bin/python3 t n got work
  got=$(LD_LIBRARY_PATH=$cache/$v/lib "$py" -c 'import sqlite3; print(sqlite3.sqlite_version)' 2>&1)
  if [ "$got" != "$v" ]; then
    echo "FAIL $v fuzz: $py runs on SQLite $got"
    fail=$((fail + 1))
    return
  fi
  for t in fuzz_query:2000 fuzz_tx:500 fuzz_consumers:2000; do
    n=${t##*:}
    t=${t%%:*}
    work=$(mktemp -d)
    if LD_LIBRARY_PATH=$cache/$v/lib "$py" "$root/tests/ext/$t.py" "$module" "$work/d" "$n" 1 \
        > "$work/log" 2>&1; then
      echo "ok $v $t: $(tail -n 1 "$work/log")"
      pass=$((pass + 1))
    else
      echo "FAIL $v $t"
      tail -n 60 "$work/log"
      fail=$((fail + 1))
    fi
    rm -rf "$work"
  done
}

run_version() {  # run_version LABEL SQLRUN
  local label=$1 runner=$2 t name exp
  for t in "$root"/sql-tests/*.sql; do
    name=$(basename "$t" .sql)
    exp=$here/$label/$name.diff
    local work base=$root/sql-tests/$name.expected
    work=$(mktemp -d)
    cp "$t" "$work/$name.sql"
    if [ "$update" = 1 ]; then
      python3 "$root/sql-tests/run.py" --update --shell="$runner" shell "$module" "$root/tests/fixtures" \
        "$work/$name.sql" > /dev/null
      mkdir -p "$here/$label"
      if diff -u --label "sql-tests/$name.expected" --label "$label" "$base" "$work/$name.expected" \
          > "$exp"; then rm -f "$exp"; else echo "updated $exp"; fi
      rmdir "$here/$label" 2>/dev/null
      rm -rf "$work"
      continue
    fi
    if [ -f "$exp" ]; then
      patch -s -o "$work/$name.expected" "$base" "$exp" || { echo "FAIL $label $name: $exp does not apply"; fail=$((fail + 1)); rm -rf "$work"; continue; }
    else
      cp "$base" "$work/$name.expected"
    fi
    if python3 "$root/sql-tests/run.py" --shell="$runner" shell "$module" "$root/tests/fixtures" \
        "$work/$name.sql" > "$work/log" 2>&1; then
      echo "ok $label $name"
      pass=$((pass + 1))
    else
      echo "FAIL $label $name"
      head -n 60 "$work/log"
      fail=$((fail + 1))
    fi
    rm -rf "$work"
  done
}

# The harness itself, on the system's SQLite: must pass as the shell does.
sysv=$(pkg-config --modversion sqlite3 2>/dev/null || echo system)
mkdir -p "$cache/system"
if cc -O1 -Wall -Wextra -Werror -DSQLRUN_LOADABLE "$root/sql-tests/sqlrun.c" -o "$cache/system/sqlrun" \
    $(pkg-config --cflags --libs sqlite3); then
  echo "== SQLite $sysv (the system's libsqlite3)"
  run_version "$sysv" "$cache/system/sqlrun"
else
  echo "FAIL: cannot build sqlrun against the system's SQLite"
  fail=$((fail + 1))
fi
for pair in $versions; do
  bs=${pair%%:*}
  v=${pair##*:}
  echo "== SQLite $v (better-sqlite3@$bs)"
  if build "$bs" "$v"; then
    run_version "$v" "$cache/$v/sqlrun"
    [ "$update" = 1 ] || run_fuzz "$v"
  else
    echo "FAIL: cannot build SQLite $v"
    fail=$((fail + 1))
  fi
done
bs=${too_old%%:*}
v=${too_old##*:}
echo "== SQLite $v (better-sqlite3@$bs): too old, refused"
want="Error: error during initialization: klevdb: SQLite $v is too old; the klevdb module needs 3.31.0 or newer"
if ! build "$bs" "$v"; then
  echo "FAIL: cannot build SQLite $v"
  fail=$((fail + 1))
else
  # The connection goes on without the module.
  got=$(echo "SELECT 1;" | "$cache/$v/sqlrun" -batch -cmd ".load '$module'" 2>&1)
  if [ "$got" = "$want"$'\n'"1" ]; then
    echo "ok $v refused"
    pass=$((pass + 1))
  else
    echo "FAIL $v refused: got"
    echo "$got"
    fail=$((fail + 1))
  fi
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
