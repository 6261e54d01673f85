#!/usr/bin/env python3
"""A consumer that neither loses nor repeats work across crashes.

It reads orders from a klevdb store and keeps running totals per customer
in an ordinary SQLite database. The offset to read from next lives in that
same database and is written in the same transaction as the totals, so
after a crash (or kill -9) the consumer restarts exactly where its last
committed batch ended: the totals and the offset always agree.

usage:
  exactly_once.py MODULE                      self-test (below)
  exactly_once.py MODULE consume STORE DB [--crash-after N]
  exactly_once.py MODULE produce STORE N

Self-test: a producer process publishes 2,000 orders in small batches
while consumers run against it and are killed (os._exit inside an open
transaction) after 150, 400, 700 ... messages; a last consumer catches up
and waits 300 ms for more (wait = 300) before it stops. Then the totals
must equal sums computed straight from the store.

MODULE is the loadable extension (build/ext/klevdb.so). Needs a Python
whose sqlite3 module can load extensions, such as Debian's /usr/bin/python3.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

BATCH = 100       # messages per transaction
IDLE_MS = 300     # a consumer stops once a wait this long brings nothing


def connect(module, path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(module)
    conn.enable_load_extension(False)
    return conn


def sql_string(s):
    return "'" + s.replace("'", "''") + "'"


def consume(module, store, db, crash_after=None):
    conn = connect(module, db)
    conn.execute("CREATE TABLE IF NOT EXISTS progress(consumer TEXT PRIMARY KEY, next INTEGER NOT NULL)")
    conn.execute("CREATE TABLE IF NOT EXISTS totals(customer TEXT PRIMARY KEY, orders INTEGER, amount INTEGER)")
    conn.execute("INSERT OR IGNORE INTO progress VALUES ('totals', 0)")
    # The store is only read here (the producer is its writer), so the
    # table is read-only and lives in temp: the database file keeps no path.
    conn.execute("CREATE VIRTUAL TABLE temp.orders USING klevdb(dir=%s, readonly=1, value='json')"
                 % sql_string(store))
    done = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        (next_offset,) = conn.execute("SELECT next FROM progress WHERE consumer = 'totals'").fetchone()
        # Blocks up to IDLE_MS for a message at or after next_offset.
        rows = conn.execute(
            "SELECT offset, value ->> '$.customer', value ->> '$.amount' FROM orders"
            " WHERE offset >= ? AND wait = ? ORDER BY offset LIMIT ?",
            (next_offset, IDLE_MS, BATCH)).fetchall()
        if not rows:
            conn.execute("ROLLBACK")
            break
        for offset, customer, amount in rows:
            conn.execute("INSERT INTO totals VALUES (?, 1, ?) ON CONFLICT(customer) DO UPDATE"
                         " SET orders = orders + 1, amount = amount + excluded.amount",
                         (customer, amount))
            done += 1
            if crash_after is not None and done == crash_after:
                os._exit(9)   # a crash in the middle of the transaction
        conn.execute("UPDATE progress SET next = ? WHERE consumer = 'totals'", (rows[-1][0] + 1,))
        conn.execute("COMMIT")
    conn.close()
    return done


def produce(module, store, n):
    conn = connect(module, ":memory:")
    conn.execute("CREATE VIRTUAL TABLE orders USING klevdb(dir=%s, create_dirs=1, value='json')"
                 % sql_string(store))
    for start in range(0, n, 25):
        conn.execute("BEGIN")
        for i in range(start, min(n, start + 25)):
            conn.execute("INSERT INTO orders(key, value) VALUES (?, json_object('customer', ?, 'amount', ?))",
                         ("order-%d" % i, "customer-%d" % (i % 7), i % 50 + 1))
        conn.execute("COMMIT")
    conn.close()


def selftest(module):
    tmp = tempfile.mkdtemp(prefix="klevdb-exactly-once.")
    try:
        store, db = tmp + "/orders", tmp + "/consumer.db"
        me = [sys.executable, os.path.abspath(__file__), module]
        produce(module, store, 1)   # the store exists before consumers follow it
        producer = subprocess.Popen(me + ["produce", store, "1999"])
        crashes = 0
        for after in (150, 400, 700, 250):
            rc = subprocess.call(me + ["consume", store, db, "--crash-after", str(after)])
            crashes += rc == 9
        if producer.wait() != 0:
            print("exactly_once.py: the producer failed", file=sys.stderr)
            return 1
        last = consume(module, store, db)
        conn = connect(module, db)
        conn.execute("CREATE VIRTUAL TABLE temp.orders USING klevdb(dir=%s, readonly=1, value='json')"
                     % sql_string(store))
        want = conn.execute("SELECT value ->> '$.customer', count(*), sum(value ->> '$.amount')"
                            " FROM orders GROUP BY 1 ORDER BY 1").fetchall()
        got = conn.execute("SELECT customer, orders, amount FROM totals ORDER BY 1").fetchall()
        (next_offset,) = conn.execute("SELECT next FROM progress").fetchone()
        conn.close()
        print("%d consumers killed mid-transaction, the last one processed %d messages" % (crashes, last))
        print("next offset %d; totals per customer:" % next_offset)
        for customer, orders, amount in got:
            print("  %-11s %4d orders  %6d" % (customer, orders, amount))
        if crashes != 4 or next_offset != 2000 or got != want:
            print("exactly_once.py: totals and store disagree: %r != %r" % (got, want), file=sys.stderr)
            return 1
        print("totals match the store: nothing lost, nothing counted twice")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    if len(argv) == 2:
        return selftest(argv[1])
    if len(argv) >= 5 and argv[2] == "consume":
        crash = int(argv[6]) if len(argv) == 7 and argv[5] == "--crash-after" else None
        print("consumed %d messages" % consume(argv[1], argv[3], argv[4], crash))
        return 0
    if len(argv) == 5 and argv[2] == "produce":
        produce(argv[1], argv[3], int(argv[4]))
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
