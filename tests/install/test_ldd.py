#!/usr/bin/env python3
"""What the built libraries need at run time.

usage: test_ldd.py LDD FILE...

Each FILE (the loadable module, libklevdb.so) may need nothing beyond the C
library: ldd lists only linux-vdso, libc and the dynamic loader, and a
libpthread, libdl, librt or libm only where it is glibc's own (the same
directory as libc). No libxxhash: xxhash is compiled in.
"""
import os
import re
import subprocess
import sys

ALWAYS = re.compile(r"^(linux-vdso\.so\.\d+|libc\.so\.6|ld-linux[-\w.]*\.so\.\d+)$")
GLIBC_PARTS = re.compile(r"^(libpthread|libdl|librt|libm)\.so\.\d+$")


def main():
    ldd, files = sys.argv[1], sys.argv[2:]
    failed = 0
    for f in files:
        out = subprocess.run([ldd, f], check=True, capture_output=True,
                             text=True).stdout
        print("%s:\n%s" % (f, out.rstrip()))
        libs = {}
        for line in out.splitlines():
            m = re.match(r"\s*(\S+)(?:\s+=>\s+(\S+))?", line)
            if m:
                libs[os.path.basename(m.group(1))] = m.group(2)
        libc_dir = os.path.dirname(libs.get("libc.so.6") or "")
        if "libc.so.6" not in libs:
            failed += 1
            print("FAIL - %s: no libc in its ldd list" % f)
        for name, path in sorted(libs.items()):
            if ALWAYS.match(name):
                continue
            if GLIBC_PARTS.match(name) and path and \
               os.path.dirname(path) == libc_dir:
                continue
            failed += 1
            print("FAIL - %s needs %s (%s)" % (f, name, path))
    print("ok" if not failed else "%d checks failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
