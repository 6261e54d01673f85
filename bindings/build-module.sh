#!/bin/sh
# Builds the loadable SQLite module (klevdb.so) from this repository's
# sources for the Node and Python packages, and copies it to OUT_DIR.
#
#   bindings/build-module.sh OUT_DIR
#
# Needs what the repository's own build needs (meson, ninja, a C compiler,
# SQLite's and xxhash's headers); builds in build-bindings/ at the top of
# the repository (a release build, nothing but the module).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: build-module.sh OUT_DIR}
build=$root/build-bindings
for tool in meson ninja; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "klevdb: building the module needs $tool (Debian: apt-get install meson ninja-build)" >&2
    exit 1
  }
done
if [ ! -f "$build/build.ninja" ]; then
  # Warnings stay warnings here: another compiler may have new ones.
  meson setup "$build" "$root" --buildtype=release -Dwerror=false >&2
fi
ninja -C "$build" ext/klevdb.so >&2
mkdir -p "$out"
cp "$build/ext/klevdb.so" "$out/klevdb.so"
