#!/usr/bin/env python3
"""An installation into a DESTDIR, used as a C programmer would use it.

usage: test_install.py MESON READELF NM BUILDDIR SRCDIR WORKDIR VERSION
                       PREFIX BINDIR LIBDIR INCLUDEDIR MANDIR -- CC...

Runs `meson install --destdir WORKDIR/dest`, checks the files a Debian
library installs (libklevdb.so.0 with its SONAME and symlinks, the static
archive with klevdb_* as its only global names, klevdb.pc with the
version, the manual page, the tool and the module), then builds
examples/hello.c through pkg-config alone (the installed klevdb.pc, the
system's .pc files out of reach): against the shared library, run with
LD_LIBRARY_PATH, and against the static archive; and examples/static_demo.c
against the installed static libraries.
"""
import os
import re
import shutil
import subprocess
import sys

failed = 0


def check(ok, what):
    global failed
    if not ok:
        failed += 1
    print(("ok - " if ok else "FAIL - ") + what)
    return ok


def run(argv, env=None, quiet=False):
    """argv's result; its output is printed unless quiet (long listings)."""
    p = subprocess.run(argv, capture_output=True, text=True, env=env)
    print("$ %s -> %d" % (" ".join(argv), p.returncode))
    if not quiet or p.returncode:
        sys.stdout.write(p.stdout + p.stderr)
    return p


def main():
    sep = sys.argv.index("--")
    (meson, readelf, nm, builddir, srcdir, work, version, prefix, bindir,
     libdir, includedir, mandir) = sys.argv[1:sep]
    cc = sys.argv[sep + 1:]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    dest = os.path.join(work, "dest")
    p = run([meson, "install", "-C", builddir, "--destdir", dest,
             "--no-rebuild", "--quiet"])
    if not check(p.returncode == 0, "meson install --destdir"):
        return 1

    def under(d):  # an installation directory inside the DESTDIR
        return dest + os.path.join(prefix, d)

    lib, bin_, man = under(libdir), under(bindir), under(mandir)
    soname = "libklevdb.so.0"
    real = "libklevdb.so." + version
    check(os.path.isfile(os.path.join(lib, real)) and
          not os.path.islink(os.path.join(lib, real)), real + " installed")
    check(os.readlink(os.path.join(lib, soname)) == real,
          "%s -> %s" % (soname, real))
    check(os.readlink(os.path.join(lib, "libklevdb.so")) == soname,
          "libklevdb.so -> " + soname)
    dyn = run([readelf, "-d", os.path.join(lib, real)], quiet=True).stdout
    check("Library soname: [%s]" % soname in dyn, "SONAME " + soname)
    syms = run([nm, "-g", "--defined-only", os.path.join(lib, "libklevdb.a")],
               quiet=True).stdout
    names = [l.split()[2] for l in syms.splitlines() if len(l.split()) == 3]
    check(len(names) > 50 and all(n.startswith("klevdb_") for n in names),
          "libklevdb.a defines only klevdb_* globally (%d names)" % len(names))
    pc = open(os.path.join(lib, "pkgconfig", "klevdb.pc")).read()
    check(re.search(r"^Version: %s$" % re.escape(version), pc, re.M) is not None,
          "klevdb.pc carries Version: " + version)
    check("xxhash" not in pc, "klevdb.pc does not ask for libxxhash")
    page = os.path.join(man, "man1", "klevdb.1")
    check(os.path.isfile(page) and
          '"klevdb %s"' % version in open(page).read(), "man1/klevdb.1 installed")
    check(os.access(os.path.join(bin_, "klevdb"), os.X_OK), "bin/klevdb installed")
    check(os.path.isfile(os.path.join(lib, "sqlite3", "klevdb.so")),
          "sqlite3/klevdb.so installed")
    check(os.path.isfile(os.path.join(under(includedir), "klevdb.h")),
          "klevdb.h installed")

    # pkg-config sees the installed klevdb.pc and nothing of the system's.
    env = dict(os.environ, PKG_CONFIG_LIBDIR=os.path.join(lib, "pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=dest)
    env.pop("PKG_CONFIG_PATH", None)
    env.pop("LD_LIBRARY_PATH", None)

    def pkgconfig(*args):
        p = run(["pkg-config"] + list(args) + ["klevdb"], env=env)
        check(p.returncode == 0, "pkg-config " + " ".join(args))
        return p.stdout.split()

    cflags = pkgconfig("--cflags")
    libs = pkgconfig("--libs")
    static_libs = pkgconfig("--libs", "--static")
    check(any(f.startswith("-I" + dest) for f in cflags),
          "the header comes from the DESTDIR")
    check(any(f.startswith("-L" + dest) for f in libs),
          "the library comes from the DESTDIR")
    examples = os.path.join(srcdir, "examples")
    want = ("published 4 messages, next offset 4\n"
            "offset 0  apple = green\n"
            "offset 1  banana = yellow\n"
            "offset 2  cherry = red\n"
            "offset 3  apple = red\n"
            "latest apple: offset 3 is red\n"
            "first at or after 00:00:01.5: offset 2\n")

    hello = os.path.join(work, "hello")
    p = run(cc + [os.path.join(examples, "hello.c")] + cflags + ["-o", hello] + libs)
    if check(p.returncode == 0, "hello.c builds against the shared library"):
        needed = run([readelf, "-d", hello], quiet=True).stdout
        check("Shared library: [%s]" % soname in needed, "hello needs " + soname)
        run_env = dict(env, LD_LIBRARY_PATH=lib)
        p = run([hello, os.path.join(work, "hello.d")], env=run_env)
        check(p.returncode == 0 and p.stdout == want, "hello runs")

    hello_s = os.path.join(work, "hello_static")
    p = run(cc + [os.path.join(examples, "hello.c")] + cflags + ["-o", hello_s,
             "-Wl,-Bstatic"] + static_libs + ["-Wl,-Bdynamic"])
    if check(p.returncode == 0, "hello.c builds against the static library"):
        needed = run([readelf, "-d", hello_s], quiet=True).stdout
        check("libklevdb" not in needed, "hello_static needs no libklevdb.so")
        p = run([hello_s, os.path.join(work, "hello_static.d")], env=env)
        check(p.returncode == 0 and p.stdout == want, "hello_static runs")

    demo = os.path.join(work, "static_demo")
    p = run(cc + [os.path.join(examples, "static_demo.c")] + cflags +
            ["-o", demo, "-Wl,-Bstatic", "-lklevdb_sqlite"] + static_libs +
            ["-Wl,-Bdynamic", "-lsqlite3"])
    if check(p.returncode == 0, "static_demo.c builds against the static libraries"):
        os.makedirs(os.path.join(work, "demo.d"))
        p = run([demo, os.path.join(work, "demo.d")], env=env)
        check(p.returncode == 0 and p.stdout.endswith("ok\n"), "static_demo runs")

    print("ok" if not failed else "%d checks failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
