#!/usr/bin/env python3
"""The manual page covers the tool.

usage: test_manpage.py TOOL KLEVDB_1 [GROFF]

Every command listed by `klevdb --help`, and every option that it and each
command's --help show, appears in klevdb.1; its version is the tool's. With
GROFF, the page renders without a warning (groff -man -ww).
"""
import re
import subprocess
import sys

OPTION = re.compile(r"(?<![\w-])(--?[a-z][a-z0-9-]*)")


def helptext(tool, *args):
    p = subprocess.run([tool] + list(args) + ["--help"], capture_output=True,
                       text=True)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def options(text):
    """The options in usage lines and in the first column of option lines."""
    found = set()
    for line in text.splitlines():
        s = line.strip()
        if line.startswith("usage:") or (line.startswith(" ") and
                                         s.startswith("klevdb ")):
            found |= set(OPTION.findall(s))
        elif s.startswith("-"):
            found |= set(OPTION.findall(re.split(r"\s{2,}", s)[0]))
    return found


def main():
    tool, page = sys.argv[1:3]
    groff = sys.argv[3] if len(sys.argv) > 3 else None
    roff = open(page).read()
    text = roff.replace("\\-", "-")
    failed = 0
    top = helptext(tool)
    cmds = re.findall(r"^  ([a-z]+)  ", top.split("commands:")[1].split("\n\n")[0],
                      re.M)
    if len(cmds) < 10:
        print("FAIL - only %d commands in klevdb --help" % len(cmds))
        return 1
    wanted = {"": options(top) | {"--version"}}
    for c in cmds:
        wanted[c] = options(helptext(tool, c))
        if not re.search(r'^\.BI "?%s\b' % c, text, re.M):
            failed += 1
            print("FAIL - command %s has no entry in %s" % (c, page))
    for c, opts in sorted(wanted.items()):
        for o in sorted(opts):
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), text):
                failed += 1
                print("FAIL - %s (of %s) is not in %s" % (o, c or "klevdb", page))
    nopts = len(set().union(*wanted.values()))
    print("%d commands, %d distinct options" % (len(cmds), nopts))
    version = subprocess.run([tool, "--version"], capture_output=True,
                             text=True).stdout.split()[-1]
    if '"klevdb %s"' % version not in roff:
        failed += 1
        print("FAIL - the page's version is not %s" % version)
    if groff:
        p = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", page],
                           capture_output=True, text=True)
        if p.returncode != 0 or p.stderr:
            failed += 1
            print("FAIL - groff: %s" % p.stderr)
    print("ok" if not failed else "%d checks failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
