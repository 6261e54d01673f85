#!/usr/bin/env python3
"""A static link beside a program's own names.

usage: test_clash.py CLASH TOOL WORKDIR

CLASH (clash.c linked with the static libklevdb.a) defines crc32c,
file_read and write_full of its own and publishes three messages into
WORKDIR/store; the klevdb tool then finds the store sound and reads them.
"""
import os
import shutil
import subprocess
import sys


def run(*argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    print("$ %s -> %d\n%s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def main():
    clash, tool, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    store = os.path.join(work, "store")
    failed = 0
    if run(clash, store).returncode != 0:
        print("FAIL - clash did not publish")
        return 1
    p = run(tool, "check", store)
    if p.returncode != 0 or p.stdout != "ok: 1 segment, 3 messages\n":
        failed += 1
        print("FAIL - klevdb check")
    p = run(tool, "dump", store)
    want = ("0  2024-05-01T09:00:00.000000Z  k1  one\n"
            "1  2024-05-01T09:00:00.000001Z  k2  two\n"
            "2  2024-05-01T09:00:00.000002Z  k1  three\n")
    if p.returncode != 0 or p.stdout != want:
        failed += 1
        print("FAIL - klevdb dump, wanted:\n" + want)
    p = run(tool, "get", store, "--key", "k1")
    if p.returncode != 0 or p.stdout != "2  2024-05-01T09:00:00.000002Z  k1  three\n":
        failed += 1
        print("FAIL - klevdb get --key k1")
    print("ok" if not failed else "%d checks failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
