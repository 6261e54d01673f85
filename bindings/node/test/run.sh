#!/usr/bin/env bash
# The Node package as a user gets it: `npm pack` (which builds the module
# into the package), install the tarball into a fresh project beside
# better-sqlite3 (from the npm registry), run smoke.js there. For .ci/run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root/bindings/node"
tgz=$(npm pack --silent --pack-destination "$tmp" | tail -n 1)
files=$(tar tzf "$tmp/$tgz" | sort)
echo "$files"
[ "$files" = $'package/index.d.ts\npackage/index.js\npackage/lib/linux-x64/klevdb.so\npackage/package.json' ]
mkdir "$tmp/app"
cd "$tmp/app"
npm init -y >/dev/null
npm install --no-audit --no-fund --loglevel=error "$tmp/$tgz" better-sqlite3@12
cp -r "$root/tests/fixtures/v2-basic/store" go-store
cp "$here/smoke.js" .
node smoke.js
