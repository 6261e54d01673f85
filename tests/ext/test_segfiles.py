#!/usr/bin/env python3
"""Segment files that are not their segment's, seen through SQL: a table
on a store whose head log was replaced by an older segment's, or is a
symbolic link to one, fails with a clear error instead of answering `key =`
for ever or dropping the segment from count(*).

usage: test_segfiles.py MODULE WORKDIR
"""
import os
import shutil
import sqlite3
import sys
import threading

import extcheck
from extcheck import check


def make(d):
    """A database file with table ev on a store of several segments."""
    db = os.path.join(d, "t.db")
    conn = extcheck.connect(db)
    conn.execute("CREATE VIRTUAL TABLE ev USING klevdb(dir='s', rollover='1KB', key='text', "
                 "value='text')")
    for i in range(60):
        conn.execute("INSERT INTO ev(key, value) VALUES (?, ?)", ("abc"[i % 3], "v%d" % i))
    conn.close()
    store = os.path.join(d, "s")
    logs = sorted(f for f in os.listdir(store) if f.endswith(".log"))
    check(len(logs) >= 3, "a store of several segments", repr(logs))
    return db, store, logs


def query(db, sql):
    """Runs sql on a new connection; an answer that takes 20 s is a hang."""
    conn = extcheck.connect(db)
    timer = threading.Timer(20, conn.interrupt)
    timer.start()
    try:
        return conn.execute(sql).fetchall(), None
    except sqlite3.Error as e:
        return None, str(e)
    finally:
        timer.cancel()
        conn.close()


def test_swapped_head(d):
    db, store, logs = make(d)
    rows, err = query(db, "SELECT count(*) FROM ev WHERE key = 'a'")
    check(rows == [(20,)], "key = before the damage", repr((rows, err)))
    shutil.copyfile(os.path.join(store, logs[0]), os.path.join(store, logs[-1]))
    for sql in ("SELECT count(*) FROM ev WHERE key = 'a'", "SELECT count(*) FROM ev"):
        rows, err = query(db, sql)
        check(rows is None and err.startswith("klevdb: ") and "another segment" in err,
              "%s: a clear error" % sql, repr((rows, err)))


def test_symlinked_head(d):
    db, store, logs = make(d)
    first, head = os.path.join(store, logs[0]), os.path.join(store, logs[-1])
    size0 = os.path.getsize(first)
    os.unlink(head)
    os.symlink(first, head)
    rows, err = query(db, "SELECT count(*) FROM ev WHERE key = 'a'")
    check(rows is None and "symbolic link" in (err or ""), "key = on a symlinked head: refused",
          repr((rows, err)))
    rows, err = query(db, "INSERT INTO ev(key, value) VALUES ('a', 'through the link')")
    check(rows is None and "symbolic link" in (err or ""), "INSERT: refused", repr((rows, err)))
    check(os.path.getsize(first) == size0, "nothing written through the link")


if __name__ == "__main__":
    sys.exit(extcheck.main("test_segfiles", __doc__, sys.argv,
                           [test_swapped_head, test_symlinked_head]))
