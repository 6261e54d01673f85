#!/usr/bin/env python3
"""The outbox: an application's own rows and the messages that announce
them, written in one SQLite transaction.

An order goes into the ordinary table `orders` and its event into the
klevdb table `events` (a message log other services consume) in the same
transaction. The promise: the event is published if and only if the
transaction commits. A kill -9 at any moment, a COMMIT that fails (a full
disk, SQLITE_BUSY, a commit hook's veto) or a ROLLBACK never leaves an
order without its event or an event without its order; after a crash the
table's next use settles a transaction the crash caught in the middle of
its COMMIT, as the database decided. (With power loss too, given
synchronous=FULL and the table's auto_sync=1.)

usage:
  outbox.py MODULE                          self-test (below)
  outbox.py MODULE produce DB N [--crash-after K]
  outbox.py MODULE check DB

Self-test: producers are killed in the middle of their transactions,
some by themselves (after K orders, between the order's row and its event
or between the event and COMMIT), some by kill -9 at random moments; a
last producer completes 300 orders. Then every order must have exactly
one event and every event its order.

MODULE is the loadable extension (build/ext/klevdb.so). Needs a Python
whose sqlite3 module can load extensions, such as Debian's /usr/bin/python3.
"""
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time


def connect(module, path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(module)
    conn.enable_load_extension(False)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, item TEXT, qty INTEGER)")
    # The store lives next to the database file, in events.d/.
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS events USING klevdb(dir='events.d', value='json')")
    return conn


def place_order(conn, order_id, item, qty, crash=None):
    """One order and its event: both or neither."""
    conn.execute("BEGIN")
    conn.execute("INSERT INTO orders(id, item, qty) VALUES (?, ?, ?)", (order_id, item, qty))
    if crash == "before-event":
        os.kill(os.getpid(), signal.SIGKILL)
    cur = conn.execute("INSERT INTO events(key, value) VALUES (?, json_object('id', ?, 'item', ?, 'qty', ?))",
                       ("order:%d" % order_id, order_id, item, qty))
    offset = cur.lastrowid   # the event's offset, once COMMIT returns
    if crash == "before-commit":
        os.kill(os.getpid(), signal.SIGKILL)
    conn.execute("COMMIT")
    return offset


def produce(module, db, n, crash_after=None):
    conn = connect(module, db)
    (next_id,) = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()
    for order_id in range(next_id, n + 1):
        crash = None
        if crash_after is not None and order_id - next_id == crash_after:
            crash = "before-event" if order_id % 2 else "before-commit"
        place_order(conn, order_id, "item-%d" % (order_id % 13), order_id % 5 + 1, crash)
    conn.close()


def check(module, db):
    """Returns a list of what is wrong (empty: the outbox holds)."""
    conn = connect(module, db)
    orders = {r[0]: r for r in conn.execute("SELECT id, item, qty FROM orders")}
    events = conn.execute("SELECT key, value FROM events ORDER BY offset").fetchall()
    conn.close()
    wrong = []
    seen = set()
    for key, value in events:
        v = json.loads(value)
        if key in seen:
            wrong.append("%s published twice" % key)
        seen.add(key)
        if orders.get(v["id"]) != (v["id"], v["item"], v["qty"]) or key != "order:%d" % v["id"]:
            wrong.append("event %s without its order" % key)
    for order_id in orders:
        if "order:%d" % order_id not in seen:
            wrong.append("order %d without its event" % order_id)
    return wrong, len(orders)


def selftest(module):
    tmp = tempfile.mkdtemp(prefix="klevdb-outbox.")
    try:
        db = os.path.join(tmp, "shop.db")
        me = [sys.executable, os.path.abspath(__file__), module]
        rnd = random.Random(12)
        killed = 0
        for k, after in enumerate((5, 20, 8, 31)):
            # Killed by itself in the middle of a transaction.
            rc = subprocess.call(me + ["produce", db, "100000", "--crash-after", str(after)])
            killed += rc == -signal.SIGKILL
            # Killed from outside at a random moment, in COMMIT or not.
            p = subprocess.Popen(me + ["produce", db, "100000"])
            time.sleep(0.3 + rnd.uniform(0, 0.2) + 0.1 * k)
            p.kill()
            killed += p.wait() == -signal.SIGKILL
            wrong, count = check(module, db)
            print("after %d kills: %d orders, %s" % (killed, count, "; ".join(wrong) or "each with its event"))
            if wrong:
                return 1
        (_, before) = check(module, db)
        produce(module, db, before + 300)
        wrong, count = check(module, db)
        print("a last producer placed 300 more: %d orders, %s" % (count, "; ".join(wrong) or "each with its event"))
        if wrong or killed != 8 or count != before + 300:
            print("outbox.py: the outbox does not hold (%d kills)" % killed, file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    if len(argv) == 2:
        return selftest(argv[1])
    if len(argv) in (5, 7) and argv[2] == "produce":
        crash = int(argv[6]) if len(argv) == 7 and argv[5] == "--crash-after" else None
        produce(argv[1], argv[3], int(argv[4]), crash)
        return 0
    if len(argv) == 4 and argv[2] == "check":
        wrong, count = check(argv[1], argv[3])
        print("%d orders, %s" % (count, "; ".join(wrong) or "each with its event"))
        return 1 if wrong else 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
