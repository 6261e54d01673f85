#!/usr/bin/python3
"""Blocking reads in SQL: the hidden column wait (milliseconds).

usage: test_wait.py MODULE WORKDIR

  (a) rows already there: the query returns them at once;
  (b) nothing there: it returns no rows once the wait has run out;
  (c) another connection of this process publishes while we wait: the
      row arrives without waiting the wait out;
  (d) another process publishes (we follow it read-only): the row arrives
      within 100 ms of that process's commit;
  (e) sqlite3_interrupt (Connection.interrupt) ends a long wait promptly;
  (f) the waiting table is in a database file (rollback journal) that the
      other process also uses: its INSERT is not blocked by our wait;
  (g) with a key: messages of other keys do not end the wait;
  (h) wrong uses: wait < 0, text, a test other than =, writing wait.

Times are taken with time.monotonic(), which is CLOCK_MONOTONIC and so
comparable between processes. Prints "test_wait: N checks, M failed".
"""
import sqlite3
import subprocess
import sys
import threading
import time

import extcheck
from extcheck import check, connect


def timed(conn, sql, *args):
    """(rows, seconds) or (error message, seconds)."""
    t0 = time.monotonic()
    try:
        rows = conn.execute(sql, args).fetchall()
    except sqlite3.Error as e:
        return str(e), time.monotonic() - t0
    return rows, time.monotonic() - t0


def later(seconds, fn):
    t = threading.Timer(seconds, fn)
    t.start()
    return t


# A second process: the store's writer. It creates the table, publishes
# one row, says "ready", then publishes one row per line it reads and
# answers with the monotonic time right after the commit.
WRITER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[2], isolation_level=None)
conn.enable_load_extension(True)
conn.load_extension(sys.argv[1])
conn.execute("CREATE VIRTUAL TABLE %s USING klevdb(dir='%s', create_dirs=1, key='text', value='text')"
             % (sys.argv[4], sys.argv[3]))
conn.execute("INSERT INTO %s(key, value) VALUES ('k0', 'first')" % sys.argv[4])
print("ready", flush=True)
for line in sys.stdin:
    key, value = line.split()
    conn.execute("INSERT INTO %s(key, value) VALUES (?, ?)" % sys.argv[4], (key, value))
    print("%.6f" % time.monotonic(), flush=True)
"""


def start_writer(work, db, store, table):
    p = subprocess.Popen([sys.executable, "-c", WRITER, extcheck.MODULE, db, store, table],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=work)
    check(p.stdout.readline().strip() == "ready", "writer process started")
    return p


def publish(p, key, value):
    p.stdin.write("%s %s\n" % (key, value))
    p.stdin.flush()
    return float(p.stdout.readline())


def test_local(work):
    conn = connect()
    conn.execute("CREATE VIRTUAL TABLE temp.ev USING klevdb(dir='%s/s', create_dirs=1, value='text')" % work)
    conn.execute("INSERT INTO ev(value) VALUES ('a'), ('b')")

    rows, dt = timed(conn, "SELECT offset, value, wait FROM ev WHERE offset >= 1 AND wait = 5000")
    check(rows == [(1, "b", 5000)], "(a) rows there: returned", repr(rows))
    check(dt < 0.1, "(a) rows there: at once", "%.3f s" % dt)

    rows, dt = timed(conn, "SELECT offset FROM ev WHERE offset >= 2 AND wait = 300")
    check(rows == [], "(b) nothing: no rows", repr(rows))
    check(0.29 <= dt < 0.6, "(b) nothing: returns after the wait", "%.3f s" % dt)

    rows, dt = timed(conn, "SELECT offset FROM ev WHERE offset >= 2 AND wait = 0")
    check(rows == [] and dt < 0.05, "(b) wait = 0 does not block", "%r %.3f s" % (rows, dt))
    rows, dt = timed(conn, "SELECT offset FROM ev WHERE offset >= 2 AND wait = NULL")
    check(rows == [] and dt < 0.05, "(b) wait = NULL does not block", "%r %.3f s" % (rows, dt))

    # (c) a second connection of this process publishes after 200 ms.
    other = connect()
    other.execute("CREATE VIRTUAL TABLE temp.ev USING klevdb(dir='%s/s', value='text')" % work)
    t = later(0.2, lambda: other.execute("INSERT INTO ev(value) VALUES ('c'), ('d')"))
    rows, dt = timed(conn, "SELECT offset, value FROM ev WHERE offset >= 2 AND wait = 5000")
    t.join()
    check(rows == [(2, "c"), (3, "d")], "(c) other connection's publish: both rows", repr(rows))
    check(0.15 <= dt < 0.5, "(c) ... well before the wait ran out", "%.3f s" % dt)

    # A start past the next offset waits for that offset, not any publish.
    t = later(0.1, lambda: other.execute("INSERT INTO ev(value) VALUES ('e')"))
    t2 = later(0.3, lambda: other.execute("INSERT INTO ev(value) VALUES ('f')"))
    rows, dt = timed(conn, "SELECT offset, value FROM ev WHERE offset >= 5 AND wait = 5000")
    t.join()
    t2.join()
    check(rows == [(5, "f")], "(c) start beyond the end: waits for that offset", repr(rows))
    check(0.25 <= dt < 0.7, "(c) ... and returns when it comes", "%.3f s" % dt)

    # LIMIT with a wait: the first publish ends it.
    t = later(0.1, lambda: other.execute("INSERT INTO ev(value) VALUES ('g')"))
    rows, dt = timed(conn, "SELECT offset FROM ev WHERE offset >= 6 AND wait = 5000 ORDER BY offset LIMIT 10")
    t.join()
    check(rows == [(6,)] and dt < 0.5, "(c) ORDER BY ... LIMIT with wait", "%r %.3f s" % (rows, dt))

    # (e) interrupt from another thread.
    t = later(0.15, conn.interrupt)
    rows, dt = timed(conn, "SELECT offset FROM ev WHERE offset >= 100 AND wait = 20000")
    t.join()
    check(rows == "interrupted", "(e) interrupt: the statement fails with 'interrupted'", repr(rows))
    check(dt < 0.4, "(e) ... promptly", "%.3f s" % dt)
    rows, dt = timed(conn, "SELECT count(*) FROM ev")
    check(rows == [(7,)], "(e) the connection works after the interrupt", repr(rows))

    # (h) wrong uses, each with a klevdb: message.
    for sql, want in [
        ("SELECT * FROM ev WHERE wait = -1", "klevdb: ev: wait must be a whole number of milliseconds >= 0"),
        ("SELECT * FROM ev WHERE wait = 'soon'", "klevdb: ev: wait must be a whole number of milliseconds >= 0"),
        ("SELECT * FROM ev WHERE wait = 1.5", "klevdb: ev: wait must be a whole number of milliseconds >= 0"),
        ("SELECT * FROM ev WHERE wait > 10", 'klevdb: ev: wait takes only "wait = milliseconds"'),
        ("SELECT * FROM ev WHERE wait IN (1, 2)", 'klevdb: ev: wait takes only "wait = milliseconds"'),
        ("INSERT INTO ev(value, wait) VALUES ('x', 10)",
         "klevdb: wait is for reading (SELECT ... WHERE wait = ms), not stored"),
    ]:
        rows, dt = timed(conn, sql)
        check(rows == want, "(h) %s" % sql, repr(rows))
    rows, _ = timed(conn, "SELECT count(*) FROM ev")
    check(rows == [(7,)], "(h) nothing was written by the wrong uses", repr(rows))
    rows, _ = timed(conn, "SELECT offset, wait FROM ev WHERE offset = 0")
    check(rows == [(0, None)], "(h) wait reads NULL when not given", repr(rows))
    other.close()
    conn.close()


def test_other_process(work):
    # (d) and (g): the writer is another process; we follow read-only.
    p = start_writer(work, ":memory:", work + "/s", "ev")
    try:
        conn = connect()
        conn.execute("CREATE VIRTUAL TABLE temp.ev USING klevdb(dir='%s/s', readonly=1, key='text', value='text')"
                     % work)
        done = {}

        def pub():
            done["t"] = publish(p, "k1", "second")
        t = later(0.2, pub)
        rows, _ = timed(conn, "SELECT offset, value FROM ev WHERE offset >= 1 AND wait = 5000")
        back = time.monotonic()
        t.join()
        check(rows == [(1, "second")], "(d) other process's publish arrives", repr(rows))
        lag = back - done["t"]
        check(lag < 0.1, "(d) ... within 100 ms of its commit", "%.1f ms" % (lag * 1000))

        # (g) a key: a message of another key comes first, then ours.
        def pub2():
            publish(p, "other", "x")
            time.sleep(0.15)
            done["t2"] = publish(p, "k1", "third")
        t = later(0.1, pub2)
        rows, dt = timed(conn, "SELECT offset, value FROM ev WHERE key = 'k1' AND offset >= 2 AND wait = 5000")
        t.join()
        check(rows == [(3, "third")], "(g) key: other keys do not end the wait", repr(rows))
        check(0.2 <= dt < 1.0, "(g) ... the key's message does", "%.3f s" % dt)
        conn.close()
    finally:
        p.stdin.close()
        p.wait()


def test_shared_file(work):
    # (f) both processes use one database file in rollback-journal mode.
    db = work + "/shared.db"
    p = start_writer(work, db, work + "/s", "ev")
    try:
        conn = connect(db)
        conn.execute("PRAGMA journal_mode")  # rollback journal: the default
        done = {}

        def pub():
            done["t"] = publish(p, "k1", "later")
        t = later(0.2, pub)
        rows, dt = timed(conn, "SELECT offset, value FROM ev WHERE offset >= 1 AND wait = 3000")
        t.join()
        check(rows == [(1, "later")], "(f) shared database file: the writer's INSERT went through", repr(rows))
        check(dt < 1.0, "(f) ... while we waited", "%.3f s" % dt)
        conn.close()
    finally:
        p.stdin.close()
        p.wait()


if __name__ == "__main__":
    sys.exit(extcheck.main("test_wait", __doc__, sys.argv,
                           (test_local, test_other_process, test_shared_file)))
