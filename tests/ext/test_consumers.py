#!/usr/bin/python3
"""Named consumers across processes and connections, which a SQL script
cannot do alone.

usage: test_consumers.py MODULE WORKDIR

  (a) two processes, two database files, one store: each database keeps its
      own position for the same consumer name; a consumer in the other
      process reads and commits while this one holds an open transaction
      that writes the store (its rows are not the end until they commit).
  (b) two connections of one database (WAL) as the same consumer: SQLite's
      write lock orders their commits. With BEGIN IMMEDIATE the second
      waits and reads on from the first's position; one that read in an
      older snapshot cannot commit (SQLITE_BUSY), and retried in a new
      transaction its position is refused as backwards.

Prints "test_consumers: N checks, M failed" and exits 1 if any failed.
"""
import json
import os
import sqlite3
import subprocess
import sys

import extcheck
from extcheck import check, connect


def q(s):
    return "'" + s.replace("'", "''") + "'"


def child(module, db, store, n):
    """Reads n messages as consumer 'billing' of db's table and commits
    them; prints the offsets and the position as JSON."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(module)
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS events USING klevdb(dir=%s)" % q(store))
    conn.execute("BEGIN IMMEDIATE")
    rows = [r[0] for r in conn.execute(
        "SELECT offset FROM events WHERE consumer = 'billing' AND wait = 2000 LIMIT ?", (n,))]
    err = None
    try:
        conn.execute("SELECT klevdb_commit('events', 'billing', ?)", ((rows[-1] + 1) if rows else 0,))
    except sqlite3.Error as e:
        err = str(e)
    conn.execute("COMMIT")
    (pos,) = conn.execute("SELECT position FROM klevdb_consumers('events') WHERE name = 'billing'"
                          ).fetchone() or (None,)
    print(json.dumps({"offsets": rows, "position": pos, "error": err}))


def run_child(db, store, n):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "child", extcheck.MODULE, db,
                          store, str(n)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return {"error": out.stderr}
    return json.loads(out.stdout)


def test_two_databases(work):
    store, db1, db2 = work + "/store", work + "/one.db", work + "/two.db"
    a = connect(db1)
    a.execute("CREATE VIRTUAL TABLE events USING klevdb(dir=%s)" % q(store))
    a.execute("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9) "
              "INSERT INTO events(value) SELECT 'm' || i FROM n")
    got = [r[0] for r in a.execute("SELECT offset FROM events WHERE consumer = 'billing' LIMIT 3")]
    a.execute("SELECT klevdb_commit('events', 'billing', 3)")
    check(got == [0, 1, 2], "one.db: billing reads 0..2", repr(got))
    r = run_child(db2, store, 5)
    check(r.get("offsets") == [0, 1, 2, 3, 4] and r.get("position") == 5 and not r.get("error"),
          "two.db (another process): billing starts at the oldest, commits 5", repr(r))
    got = [r[0] for r in a.execute("SELECT offset FROM events WHERE consumer = 'billing' LIMIT 2")]
    check(got == [3, 4], "one.db: billing still at 3", repr(got))
    # This process holds a transaction writing the store: the other reads
    # only committed messages, and cannot commit past them.
    a.execute("BEGIN")
    a.execute("INSERT INTO events(value) VALUES ('pending')")
    r = run_child(db2, store, 100)
    check(r.get("offsets") == [5, 6, 7, 8, 9] and r.get("position") == 10 and not r.get("error"),
          "two.db: reads on to the committed end while one.db writes", repr(r))
    a.execute("SELECT klevdb_commit('events', 'billing', 11)")   # counts its own row
    a.execute("COMMIT")
    r = run_child(db2, store, 100)
    check(r.get("offsets") == [10] and r.get("position") == 11, "two.db: sees the row once committed",
          repr(r))
    pos = a.execute("SELECT name, position, lag FROM klevdb_consumers('events')").fetchall()
    check(pos == [("billing", 11, 0)], "one.db: its own position, 11", repr(pos))
    a.close()
    b = connect(db2)
    pos = b.execute("SELECT position FROM events_consumers").fetchall()
    check(pos == [(11,)], "two.db: its own row", repr(pos))
    b.close()


def test_two_connections(work):
    store, db = work + "/store", work + "/one.db"
    a = connect(db)
    a.execute("PRAGMA journal_mode = WAL")
    a.execute("CREATE VIRTUAL TABLE events USING klevdb(dir=%s)" % q(store))
    a.execute("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9) "
              "INSERT INTO events(value) SELECT 'm' || i FROM n")
    b = connect(db)
    b.execute("PRAGMA busy_timeout = 0")
    # b reads in a snapshot taken before a commits.
    b.execute("BEGIN")
    got_b = [r[0] for r in b.execute("SELECT offset FROM events WHERE consumer = 'w' LIMIT 2")]
    a.execute("BEGIN IMMEDIATE")
    got_a = [r[0] for r in a.execute("SELECT offset FROM events WHERE consumer = 'w' LIMIT 4")]
    a.execute("SELECT klevdb_commit('events', 'w', 4)")
    a.execute("COMMIT")
    check(got_a == [0, 1, 2, 3] and got_b == [0, 1], "both read from 0", repr((got_a, got_b)))
    try:
        b.execute("SELECT klevdb_commit('events', 'w', 2)")
        check(False, "a commit from an older snapshot fails")
    except sqlite3.Error as e:
        check(getattr(e, "sqlite_errorname", "").startswith("SQLITE_BUSY"),
              "a commit from an older snapshot fails with BUSY", str(e))
    b.execute("ROLLBACK")
    try:
        b.execute("SELECT klevdb_commit('events', 'w', 2)")
        check(False, "retried, its position is backwards")
    except sqlite3.Error as e:
        check(str(e).startswith("klevdb: klevdb_commit: consumer 'w' is at 4: 2 would move it "
                                "backwards"), "retried in a new transaction: refused as backwards",
              str(e))
    b.execute("BEGIN IMMEDIATE")
    got_b = [r[0] for r in b.execute("SELECT offset FROM events WHERE consumer = 'w' LIMIT 2")]
    b.execute("SELECT klevdb_commit('events', 'w', 6)")
    b.execute("COMMIT")
    check(got_b == [4, 5], "with BEGIN IMMEDIATE it reads on from the other's position",
          repr(got_b))
    pos = a.execute("SELECT position FROM klevdb_consumers('events')").fetchall()
    check(pos == [(6,)], "one position, 6", repr(pos))
    a.close()
    b.close()


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        sys.exit(0)
    sys.exit(extcheck.main("test_consumers", __doc__, sys.argv,
                           [test_two_databases, test_two_connections]))
