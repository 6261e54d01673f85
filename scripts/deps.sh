#!/usr/bin/env bash
# Installs the Debian packages klevdb needs to build and test, if missing.
set -euo pipefail
pkgs="meson ninja-build gcc pkg-config libsqlite3-dev sqlite3 libxxhash-dev python3 python3-venv patch clang libclang-rt-14-dev librdkafka-dev kcat"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq $missing
