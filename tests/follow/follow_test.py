#!/usr/bin/env python3
"""Follower test: a writer rewrites the store while followers in other
processes read it, and every error they meet is counted.

    follow_test.py CHILD CLI MODULE [--seconds S] [--no-sql]

CHILD is follow_child (the writer and a C API follower), CLI the klevdb
tool (`klevdb --json dump` in a loop), MODULE the SQLite extension (a
readonly=1 table in a second Python process; --no-sql leaves it out, for
sanitizer builds). The writer publishes, trims, deletes across segments,
compacts and gc's for S seconds; each follower checks that offsets climb
and that every message is content(offset) (follow_child.c says what that
is). Exits 1 if any follower saw an error or a wrong message, or if a
follower did nothing.
"""
import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

TIME_BASE = 1700000000000000


def content(o):
    value = None if o % 17 == 5 else "v%d-" % o + chr(ord("a") + o % 10) * (o % 40)
    return "k%d" % (o % 61), value, TIME_BASE + o * 1000


def sql_reader(module, store, seconds):
    """A readonly=1 table: scans, ranges, keys, times, counts, backwards."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(module)
    conn.execute("CREATE VIRTUAL TABLE temp.f USING klevdb(dir=%s, readonly=1, key='text', value='text')"
                 % ("'" + store.replace("'", "''") + "'"))
    rnd = random.Random(7)
    queries = errors = 0
    first_errors = []

    def bad(what):
        nonlocal errors
        errors += 1
        if len(first_errors) < 10:
            first_errors.append(what)

    def rows_ok(rows, what, desc=False):
        prev = None
        for off, key, value, t in rows:
            if prev is not None and (off >= prev if desc else off <= prev):
                bad("%s: offset %d after %d" % (what, off, prev))
            if (key, value, t) != content(off):
                bad("%s: offset %d is %r" % (what, off, (key, value, t)))
            prev = off

    cols = 'SELECT "offset", key, value, time FROM f'
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            rows = conn.execute(cols).fetchall()
            queries += 1
            rows_ok(rows, "scan")
            lo = rows[0][0] if rows else 0
            hi = rows[-1][0] + 1 if rows else 1
            for _ in range(10):
                o = rnd.randrange(lo, hi)
                rows_ok(conn.execute(cols + ' WHERE "offset" >= ? LIMIT 100', (o,)).fetchall(), "range")
                r = conn.execute(cols + ' WHERE key = ? ORDER BY "offset" DESC LIMIT 1',
                                 ("k%d" % (o % 61),)).fetchall()
                rows_ok(r, "latest by key")
                if r and r[0][1] != "k%d" % (o % 61):
                    bad("latest by key k%d: %r" % (o % 61, r[0]))
                rows_ok(conn.execute(cols + " WHERE time >= ? LIMIT 20",
                                     (TIME_BASE + o * 1000,)).fetchall(), "time")
                rows_ok(conn.execute(cols + ' WHERE "offset" <= ? ORDER BY "offset" DESC LIMIT 50',
                                     (o,)).fetchall(), "backwards", desc=True)
                conn.execute("SELECT count(*) FROM f").fetchone()
                queries += 5
        except sqlite3.Error as e:
            queries += 1
            bad("sqlite: %s" % e)
    for w in first_errors:
        print("sql error: " + w)
    print("sql queries=%d errors=%d" % (queries, errors), flush=True)
    return 1 if errors else 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--sql-reader":
        return sql_reader(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    ap = argparse.ArgumentParser()
    ap.add_argument("child")
    ap.add_argument("cli")
    ap.add_argument("module")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--no-sql", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="klevdb-follow-")
    store = os.path.join(work, "store")
    secs = args.seconds
    failed = []
    try:
        w = subprocess.Popen([args.child, "writer", store, str(secs + 1)], stdout=subprocess.PIPE,
                             text=True)
        if w.stdout.readline().strip() != "READY":
            print("follow_test: the writer did not start")
            return 1
        procs = [("c", subprocess.Popen([args.child, "reader", store, str(secs)],
                                        stdout=subprocess.PIPE, text=True))]
        if not args.no_sql:
            procs.append(("sql", subprocess.Popen([sys.executable, __file__, "--sql-reader",
                                                   args.module, store, str(secs)],
                                                  stdout=subprocess.PIPE, text=True)))
        dump = {"queries": 0, "errors": 0, "messages": 0}

        def dump_loop():
            end = time.monotonic() + secs
            while time.monotonic() < end:
                r = subprocess.run([args.cli, "--json", "dump", store], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
                dump["queries"] += 1
                prev = -1
                why = None
                if r.returncode != 0:
                    why = "exit %d: %s" % (r.returncode, r.stderr.strip())
                for line in r.stdout.splitlines() if not why else []:
                    m = json.loads(line)
                    o = m["offset"]
                    if o <= prev or (m.get("key"), m.get("value"), m["time_us"]) != content(o):
                        why = "offset %d after %d: %r" % (o, prev, m)
                        break
                    prev = o
                    dump["messages"] += 1
                if why:
                    dump["errors"] += 1
                    if dump["errors"] <= 10:
                        print("dump error: " + why)

        t = threading.Thread(target=dump_loop)
        t.start()
        for name, p in procs:
            out, _ = p.communicate(timeout=secs + 120)
            sys.stdout.write(out)
            last = out.strip().splitlines()[-1] if out.strip() else ""
            fields = dict(f.split("=") for f in last.split()[1:] if "=" in f)
            if p.returncode != 0 or fields.get("errors") != "0" or int(fields.get("queries", "0")) == 0:
                failed.append(name)
        t.join()
        print("dump queries=%d errors=%d messages=%d" % (dump["queries"], dump["errors"],
                                                         dump["messages"]))
        if dump["errors"] or dump["queries"] == 0:
            failed.append("dump")
        out, _ = w.communicate(timeout=120)
        sys.stdout.write(out)
        if w.returncode != 0:
            failed.append("writer")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("follow_test: %s (%g s)" % ("FAILED: " + ", ".join(failed) if failed else "OK", secs))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
