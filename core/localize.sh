#!/bin/sh
# localize.sh - makes the installed libklevdb.a: the core objects linked into
# one relocatable object whose hidden symbols become local, so the archive's
# only global names are the klevdb_* API (and a program's own crc32c or
# file_read cannot be taken for the library's, nor the library's for its).
# Usage: localize.sh LD OBJCOPY AR OBJECTS.a OUT.a
set -eu
ld=$1 objcopy=$2 ar=$3 in=$4 out=$5
obj=${out%.a}.o
"$ld" -r --whole-archive "$in" -o "$obj"
"$objcopy" --localize-hidden "$obj"
rm -f "$out"
"$ar" rcs "$out" "$obj"
rm -f "$obj"
