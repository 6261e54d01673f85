#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (independently of
# the meson build, which is usually gcc) and runs each for N seconds over
# its seed corpus in tests/fuzz/corpus/<target>/.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     default: 60 s, every target
#
# Environment:
#   CLANG         the compiler (default: clang)
#   FUZZ_JOBS     targets run at once (default 1)
#   FUZZ_WORK     work directory (default: a fresh temporary one, removed
#                 when everything passed, kept when something failed)
#   FUZZ_BUILD    where to put the binaries (default: FUZZ_WORK/bin); when
#                 given, binaries newer than their sources are reused (the
#                 flags are not tracked: use another FUZZ_BUILD for other
#                 FUZZ_CFLAGS)
#   FUZZ_CFLAGS   extra compiler flags (e.g. -fsanitize-recover=pointer-overflow
#                 to go on past a known report while debugging)
#   FUZZ_UBSAN_OPTIONS, FUZZ_ASAN_OPTIONS  appended to the sanitizer options
#                 (e.g. suppressions=FILE)
#
# New corpus entries go to FUZZ_WORK/corpus/<target>/, never into the
# repository. Exit status 0 only if no target reported a crash, leak,
# timeout, out-of-memory or sanitizer report; each failure prints the
# reproducing input in hex and the command that replays it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_log fuzz_index fuzz_store fuzz_args fuzz_codec)
CLANG=${CLANG:-clang}
jobs=${FUZZ_JOBS:-1}

if ! command -v "$CLANG" >/dev/null; then
  echo "fuzz: $CLANG not found (apt-get install clang)" >&2
  exit 77   # meson: skipped
fi

work=${FUZZ_WORK:-}
own_work=0
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/klevdb-fuzz.XXXXXX")
  own_work=1
fi
bin=${FUZZ_BUILD:-$work/bin}
mkdir -p "$bin" "$work/corpus" "$work/artifacts" "$work/logs"
# Scratch files of the targets (fuzz_store's directories, fuzz_args's
# database), on tmpfs when there is one; removed whatever happens, since a
# crashing target cannot clean up after itself.
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
FUZZ_TMPDIR=$(mktemp -d "$shm/klevdb-fuzz-tmp.XXXXXX") || exit 1
export FUZZ_TMPDIR
trap 'rm -rf "$FUZZ_TMPDIR"' EXIT

# The library's sources as core/meson.build lists them, so that a file
# added there is never missing here.
core_src=()
for f in $(grep -o "'src/[a-z_0-9]*\.c'" "$src/core/meson.build" | tr -d "'"); do
  core_src+=("$src/core/$f")
done
[ ${#core_src[@]} -gt 10 ] || { echo "run.sh: no sources found in core/meson.build"; exit 1; }
ext_src=("$src/ext/args.c" "$src/ext/codec.c")

# Sources of each target (beyond the core).
declare -A extra=([fuzz_log]="" [fuzz_index]="" [fuzz_store]=""
                  [fuzz_args]="${ext_src[*]}" [fuzz_codec]="${ext_src[*]}")
declare -A libs=([fuzz_log]="" [fuzz_index]="" [fuzz_store]=""
                 [fuzz_args]="-lsqlite3" [fuzz_codec]="-lsqlite3")

# shellcheck disable=SC2054  # the commas belong to -fsanitize=
cflags=(-g -O1 -std=c11 -D_GNU_SOURCE -DSQLITE_CORE
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -fno-omit-frame-pointer
        -I"$src/core/include" -I"$src/core/src" -I"$src/ext" -I"$here")
# shellcheck disable=SC2206
cflags+=(${FUZZ_CFLAGS:-})

build() {  # build TARGET
  local t=$1 out=$bin/$1
  # shellcheck disable=SC2206
  local srcs=("$here/$t.c" "${core_src[@]}" ${extra[$t]})
  if [ -n "${FUZZ_BUILD:-}" ] && [ -x "$out" ]; then
    local newer=0 s
    for s in "${srcs[@]}" "$here/fuzz_common.h" "$src"/core/src/*.h "$src"/core/include/*.h "$src/ext/kvt.h"; do
      [ "$s" -nt "$out" ] && newer=1
    done
    [ $newer -eq 0 ] && return 0
  fi
  # shellcheck disable=SC2086
  "$CLANG" "${cflags[@]}" -o "$out" "${srcs[@]}" -lpthread ${libs[$t]}
}

run_one() {  # run_one TARGET -> 0 ok, 1 failed
  local t=$1 log=$work/logs/$1.log
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  # The first corpus directory receives new inputs; the seeds are read only.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1${FUZZ_ASAN_OPTIONS:+:$FUZZ_ASAN_OPTIONS} \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1${FUZZ_UBSAN_OPTIONS:+:$FUZZ_UBSAN_OPTIONS} \
    "$bin/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" \
      "$work/corpus/$t" "$here/corpus/$t" >"$log" 2>&1
  local rc=$?
  local stats
  stats=$(grep -E '^#[0-9]+.*(DONE|INITED)' "$log" | tail -1)
  local found=0 a
  for a in "$work/artifacts/$t/"*; do [ -e "$a" ] && found=1; done
  if [ $rc -ne 0 ] || [ $found -eq 1 ]; then
    echo "FAIL $t (exit $rc) ${stats}"
    grep -E 'ERROR|SUMMARY|runtime error|property failed|^    #[0-9]' "$log" | head -60
    for a in "$work/artifacts/$t/"*; do
      [ -f "$a" ] || continue
      echo "  artifact $a ($(stat -c %s "$a") bytes):"
      od -An -tx1 -v "$a" | head -40 | sed 's/^/   /'
      echo "  replay: $bin/$t $a"
    done
    return 1
  fi
  echo "ok   $t ${stats} $(grep -E '^stat::number_of_executed_units' "$log" | sed 's/.*: */execs=/')"
  return 0
}

fail=0
for t in "${targets[@]}"; do
  if [ ! -f "$here/$t.c" ]; then
    echo "fuzz: no target $t" >&2
    exit 2
  fi
  build "$t" || { echo "FAIL $t: build"; fail=1; }
done
[ $fail -eq 0 ] || exit 1

echo "fuzz: ${#targets[@]} targets, ${secs} s each, $jobs at a time (work: $work)"
pids=()
results=$work/results
: >"$results"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  ( run_one "$t" >"$work/logs/$t.result"; echo $? >>"$results" ) &
  pids+=($!)
done
wait
for t in "${targets[@]}"; do cat "$work/logs/$t.result"; done
if grep -qv '^0$' "$results"; then
  echo "fuzz: FAILED (logs and artifacts kept in $work)"
  exit 1
fi
[ $own_work -eq 1 ] && rm -rf "$work"
echo "fuzz: all targets passed"
exit 0
