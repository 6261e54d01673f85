#!/usr/bin/env python3
"""Named consumers: exactly-once processing with no progress table.

Two named consumers of one orders store keep their results in an ordinary
SQLite database: 'totals' sums orders per customer, 'largest' keeps each
customer's largest order. Each one reads from its own position
(WHERE consumer = 'totals') and moves it with klevdb_commit() in the same
transaction as its results, so after a crash (or kill -9) it restarts
exactly where its last committed batch ended. The positions live in the
table's shadow table orders_consumers; the consumer creates no table for
them.

usage:
  consumer_group.py MODULE                        self-test (below)
  consumer_group.py MODULE consume STORE DB NAME [--crash-after N]
  consumer_group.py MODULE produce STORE N

Self-test: a producer process publishes 2,000 orders in small batches
while consumers run against it and are killed (os._exit inside an open
transaction) after 150, 400, 700 ... messages, both names in turn; a last
run of each catches up and waits 300 ms for more before it stops. Then
the results must equal what is computed straight from the store, and
klevdb_consumers() must show both at the end with no lag.

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


def open_orders(conn, store):
    # In main, not temp: the positions are kept beside the table, in this
    # database file, where the results are. The table only reads the store
    # (the producer is its writer); it would become a writer at an INSERT.
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS orders USING klevdb(dir=%s, value='json')"
                 % sql_string(store))


APPLY = {
    "totals": "INSERT INTO totals VALUES (?, 1, ?) ON CONFLICT(customer) DO UPDATE"
              " SET orders = orders + 1, amount = amount + excluded.amount",
    "largest": "INSERT INTO largest VALUES (?, ?) ON CONFLICT(customer) DO UPDATE"
               " SET amount = max(amount, excluded.amount)",
}


def consume(module, store, db, name, crash_after=None):
    conn = connect(module, db)
    conn.execute("CREATE TABLE IF NOT EXISTS totals(customer TEXT PRIMARY KEY, orders INTEGER, amount INTEGER)")
    conn.execute("CREATE TABLE IF NOT EXISTS largest(customer TEXT PRIMARY KEY, amount INTEGER)")
    open_orders(conn, store)
    done = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        # From the consumer's position; blocks up to IDLE_MS for news.
        rows = conn.execute(
            "SELECT offset, value ->> '$.customer', value ->> '$.amount' FROM orders"
            " WHERE consumer = ? AND wait = ? LIMIT ?", (name, IDLE_MS, BATCH)).fetchall()
        if not rows:
            conn.execute("ROLLBACK")
            break
        for offset, customer, amount in rows:
            conn.execute(APPLY[name], (customer, amount))
            done += 1
            if crash_after is not None and done == crash_after:
                os._exit(9)   # a crash in the middle of the transaction
        conn.execute("SELECT klevdb_commit('orders', ?, ?)", (name, rows[-1][0] + 1))
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
                         ("order-%d" % i, "customer-%d" % (i % 7), (i * 37) % (50 + 7 * (i % 7)) + 1))
        conn.execute("COMMIT")
    conn.close()


def selftest(module):
    tmp = tempfile.mkdtemp(prefix="klevdb-consumer-group.")
    try:
        store, db = tmp + "/orders", tmp + "/consumer.db"
        me = [sys.executable, os.path.abspath(__file__), module]
        produce(module, store, 1)   # the store exists before consumers follow it
        producer = subprocess.Popen(me + ["produce", store, "1999"])
        crashes = 0
        for after, name in ((150, "totals"), (120, "largest"), (400, "totals"), (700, "largest"),
                            (700, "totals"), (250, "largest")):
            rc = subprocess.call(me + ["consume", store, db, name, "--crash-after", str(after)])
            crashes += rc == 9
        if producer.wait() != 0:
            print("consumer_group.py: the producer failed", file=sys.stderr)
            return 1
        last = consume(module, store, db, "totals") + consume(module, store, db, "largest")
        conn = connect(module, db)
        open_orders(conn, store)
        want_totals = conn.execute("SELECT value ->> '$.customer', count(*), sum(value ->> '$.amount')"
                                   " FROM orders GROUP BY 1 ORDER BY 1").fetchall()
        want_largest = conn.execute("SELECT value ->> '$.customer', max(value ->> '$.amount')"
                                    " FROM orders GROUP BY 1 ORDER BY 1").fetchall()
        got_totals = conn.execute("SELECT customer, orders, amount FROM totals ORDER BY 1").fetchall()
        got_largest = conn.execute("SELECT customer, amount FROM largest ORDER BY 1").fetchall()
        lag = conn.execute("SELECT name, position, lag FROM klevdb_consumers('orders')").fetchall()
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1").fetchall()
        conn.close()
        print("%d consumers killed mid-transaction, the last runs processed %d messages" % (crashes, last))
        print("consumers (name, position, lag): %r" % lag)
        for customer, orders, amount in got_totals:
            print("  %-11s %4d orders  %6d" % (customer, orders, amount))
        ok = (crashes == 6 and got_totals == want_totals and got_largest == want_largest and
              sum(o for _, o, _ in got_totals) == 2000 and
              lag == [("largest", 2000, 0), ("totals", 2000, 0)] and
              tables == [("largest",), ("orders",), ("orders_consumers",), ("orders_klevdb",), ("totals",)])
        if not ok:
            print("consumer_group.py: results and store disagree: %r %r %r %r" %
                  (got_totals, want_totals, got_largest, tables), file=sys.stderr)
            return 1
        print("results match the store: nothing lost, nothing counted twice, no progress table")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    if len(argv) == 2:
        return selftest(argv[1])
    if len(argv) >= 6 and argv[2] == "consume":
        crash = int(argv[7]) if len(argv) == 8 and argv[6] == "--crash-after" else None
        print("consumed %d messages" % consume(argv[1], argv[3], argv[4], argv[5], crash))
        return 0
    if len(argv) == 5 and argv[2] == "produce":
        produce(argv[1], argv[3], int(argv[4]))
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
