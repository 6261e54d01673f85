#!/usr/bin/env python3
"""The exported symbols of the built libraries.

usage: test_exports.py NM KLEVDB_H LIBKLEVDB_SO MODULE_SO

The shared library must export exactly the functions that klevdb.h declares
(parsed from the header, so a call added to it without KLEVDB_API fails
here), and the loadable module exactly sqlite3_klevdb_init.
"""
import re
import subprocess
import sys


def header_functions(path):
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    # A #define's body is not a declaration (klevdb_msg_has_key(m) ...);
    # joined continuation lines go with it.
    text = re.sub(r"^\s*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    return set(re.findall(r"\b(klevdb_[a-z0-9_]+)\s*\(", text))


def exports(nm, path):
    out = subprocess.run([nm, "-D", "--defined-only", path], check=True,
                         capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = parts[1]
    return syms


def main():
    nm, header, lib, module = sys.argv[1:5]
    failed = 0
    api = header_functions(header)
    if len(api) < 50:
        print("FAIL - only %d functions parsed from %s" % (len(api), header))
        return 1
    got = exports(nm, lib)
    extra = sorted(set(got) - api)
    missing = sorted(api - set(got))
    not_text = sorted(s for s in api & set(got) if got[s] != "T")
    print("%s: %d exported, %d declared in klevdb.h" % (lib, len(got), len(api)))
    for what, names in (("exported but not in klevdb.h", extra),
                        ("declared in klevdb.h but not exported", missing),
                        ("exported but not as a function", not_text)):
        if names:
            failed += 1
            print("FAIL - %s: %s" % (what, " ".join(names)))
    got = exports(nm, module)
    print("%s: %s" % (module, " ".join(sorted(got))))
    if sorted(got) != ["sqlite3_klevdb_init"] or got["sqlite3_klevdb_init"] != "T":
        failed += 1
        print("FAIL - the module must export sqlite3_klevdb_init alone")
    print("ok" if not failed else "%d checks failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
