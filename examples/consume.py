#!/usr/bin/env python3
"""klevdb from Python's standard sqlite3 module: publish, then consume in
batches from an offset, as a Kafka-style consumer does.

usage: consume.py MODULE [DIR]

MODULE is the loadable extension (build/ext/klevdb.so; the suffix may be left
out). The database and its store go to DIR (default: a new temporary folder,
removed at the end). Needs a Python whose sqlite3 module can load extensions,
such as Debian's /usr/bin/python3.
"""
import shutil
import sqlite3
import sys
import tempfile

BATCH = 4


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    module = argv[1]
    tmp = None if len(argv) > 2 else tempfile.mkdtemp(prefix="klevdb-consume.")
    folder = argv[2] if len(argv) > 2 else tmp
    try:
        return run(module, folder)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def run(module, folder):
    conn = sqlite3.connect(folder + "/consume.db")
    if not hasattr(conn, "enable_load_extension"):
        sys.exit("consume.py: this Python's sqlite3 cannot load extensions (try /usr/bin/python3)")
    conn.enable_load_extension(True)
    conn.load_extension(module)
    conn.enable_load_extension(False)

    conn.execute("CREATE VIRTUAL TABLE orders USING klevdb(key='text', value='json')")

    # Publish: one transaction (the sqlite3 module opens it before the
    # INSERT; commit() publishes every row at once).
    base = 1714554000000000  # 2024-05-01T09:00:00Z in microseconds
    rows = [("customer:%d" % (i % 3), '{"order": %d, "total": %d.%02d}' % (i, 10 + i, i), base + i * 1000000)
            for i in range(10)]
    conn.executemany("INSERT INTO orders(key, value, time) VALUES (?, ?, ?)", rows)
    conn.commit()
    print("published %d orders" % len(rows))

    # Consume: remember the next offset, read a batch from there, repeat.
    next_offset, seen = 3, 0
    print("consuming from offset %d, %d at a time" % (next_offset, BATCH))
    while True:
        batch = conn.execute(
            'SELECT "offset", key, value FROM orders WHERE "offset" >= ? LIMIT ?',
            (next_offset, BATCH)).fetchall()
        if not batch:
            break
        print("batch of %d:" % len(batch))
        for offset, key, value in batch:
            print("  %3d  %-11s %s" % (offset, key, value))
        next_offset = batch[-1][0] + 1
        seen += len(batch)
    print("caught up: next offset %d" % next_offset)

    latest = conn.execute(
        'SELECT "offset", value FROM orders WHERE key = ? ORDER BY "offset" DESC LIMIT 1',
        ("customer:1",)).fetchone()
    print("latest order of customer:1: offset %d %s" % latest)
    print("stat:", conn.execute("SELECT klevdb_stat('orders')").fetchone()[0])
    conn.close()

    if seen != 7 or next_offset != 10 or latest[0] != 7:
        print("consume.py: unexpected results", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
