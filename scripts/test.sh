#!/usr/bin/env bash
# The whole test suite: a normal build (warnings are errors) and an
# AddressSanitizer + UndefinedBehaviorSanitizer build, each running every
# meson test, and a ThreadSanitizer build running the store's tests. Ends
# with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
pass=0
fail=0
run() {  # run BUILDDIR SUITE|all [meson setup options...]
  local dir=$1 suite=$2
  shift 2
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --werror "$@" >/dev/null || { fail=$((fail + 1)); return; }
  fi
  if ! ninja -C "$dir" >/dev/null; then
    ninja -C "$dir" | tail -30
    fail=$((fail + 1))
    return
  fi
  local log
  # suite long: the long forms of the reliability suites, run by hand.
  local only=(--no-suite long)
  [ "$suite" = all ] || only=(--suite "$suite")
  log=$(meson test -C "$dir" --print-errorlogs --num-processes 2 "${only[@]}" 2>&1)
  echo "$log" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Expected Fail|Unexpected Pass|Skipped|Timeout): '
  echo "$log" | sed -n '/^--- command ---/,/^-------/p' | head -200
  local ok bad to
  ok=$(echo "$log" | sed -n 's/^Ok: *//p' | tail -1)
  bad=$(echo "$log" | sed -n 's/^Fail: *//p' | tail -1)
  to=$(echo "$log" | sed -n 's/^Timeout: *//p' | tail -1)
  pass=$((pass + ${ok:-0}))
  fail=$((fail + ${bad:-0} + ${to:-0}))
  [ -n "$ok" ] || fail=$((fail + 1))
}
echo "== normal build (build/)"
run build all
echo "== sanitizer build (build-asan/)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run build-asan all -Db_sanitize=address,undefined -Db_lundef=false
echo "== thread sanitizer build (build-tsan/), the store's tests"
TSAN_OPTIONS=halt_on_error=1 run build-tsan core -Db_sanitize=thread -Db_lundef=false
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
