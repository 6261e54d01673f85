#!/usr/bin/env python3
"""test_outbox_kill.py - kill -9 of an outbox writer at random moments.

A writer process loops over transactions of the outbox shape

  BEGIN; INSERT INTO orders ...; INSERT INTO events ...; UPDATE orders
  SET ev = <the event's offset> ...; COMMIT;

(one to three orders each, values of 10 to 3,000 bytes, ids increasing),
printing every offset last_insert_rowid() reports before COMMIT and every
order id once COMMIT has returned. The parent kills it with SIGKILL at a
random moment, checks the outbox in a fresh process and starts it again.
After every kill:
- the order ids are exactly the event keys, each once, each event at the
  offset its order recorded and that the writer was told;
- every order acknowledged (COMMIT returned) is there;
- the events' offsets are 0, 1, 2, ... with no gap (a batch the crash
  left undecided was settled, not left holding offsets).
After the last kill of a mode, one more transaction gets the next offset
and, the store closed by its writer, `klevdb check` passes (a killed
writer's head index lacks its newest items until a writer opens the store,
which check reports).
Modes: journal_mode DELETE and WAL, each with synchronous FULL and NORMAL;
the kills are shared out among them.

usage: test_outbox_kill.py MODULE KLEVDB_CLI WORKDIR KILLS [SEED]
(no SEED: a new one, printed; give it to run the same moments again)
"""
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

MODES = [("delete", "full"), ("delete", "normal"), ("wal", "full"), ("wal", "normal")]


def connect(module, path, journal, sync):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(module)
    conn.enable_load_extension(False)
    conn.execute("PRAGMA journal_mode=%s" % journal)
    conn.execute("PRAGMA synchronous=%s" % sync)
    return conn


def writer(module, path, journal, sync, seed):
    rnd = random.Random(seed)
    conn = connect(module, os.path.join(path, "app.db"), journal, sync)
    conn.execute("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, item TEXT, ev INTEGER)")
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS events USING klevdb(dir='events.d', rollover='64KB')")
    (oid,) = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()
    while True:
        conn.execute("BEGIN")
        ids = list(range(oid, oid + rnd.randint(1, 3)))
        for i in ids:
            conn.execute("INSERT INTO orders(id, item) VALUES (?, ?)", (i, "item %d" % i))
            cur = conn.execute("INSERT INTO events(key, value) VALUES (?, ?)",
                               ("order:%d" % i, "x" * rnd.randint(10, 3000)))
            conn.execute("UPDATE orders SET ev = ? WHERE id = ?", (cur.lastrowid, i))
            print("off %d %d" % (i, cur.lastrowid), flush=True)
        conn.execute("COMMIT")
        print("ok %s" % " ".join(map(str, ids)), flush=True)
        oid = ids[-1] + 1


def verify(module, path, journal, sync, out_file, finish=False):
    """The invariant after a kill; returns (orders, True if a batch was in
    doubt before this check) or raises AssertionError. finish: then one
    more order, which must get the next offset."""
    reported, acked = {}, set()
    with open(out_file) as f:
        for line in f:
            w = line.split()
            if not line.endswith("\n"):
                break   # cut by the kill
            if len(w) == 3 and w[0] == "off":
                reported[int(w[1])] = int(w[2])
            elif w and w[0] == "ok":
                acked.update(int(x) for x in w[1:])
    prep = os.path.join(path, "events.d", ".prepared")
    doubt = os.path.exists(prep) and open(prep, "rb").read(8) == b"KLEVPREP"
    conn = connect(module, os.path.join(path, "app.db"), journal, sync)
    conn.execute("SELECT count(*) FROM events").fetchone()
    orders = dict(conn.execute("SELECT id, ev FROM orders"))
    rows = conn.execute("SELECT offset, key FROM events ORDER BY offset").fetchall()
    if finish:
        i = max(orders, default=0) + 1
        conn.execute("BEGIN")
        conn.execute("INSERT INTO orders(id, item) VALUES (?, 'last')", (i,))
        cur = conn.execute("INSERT INTO events(key, value) VALUES (?, 'last')", ("order:%d" % i,))
        conn.execute("UPDATE orders SET ev = ? WHERE id = ?", (cur.lastrowid, i))
        conn.execute("COMMIT")
        assert cur.lastrowid == len(rows), "the next order at offset %d, expected %d" % (cur.lastrowid, len(rows))
        orders[i] = cur.lastrowid
        rows.append((cur.lastrowid, "order:%d" % i))
    conn.close()
    keys = [k for _, k in rows]
    assert len(keys) == len(set(keys)), "a key twice"
    want = {"order:%d" % i for i in orders}
    assert set(keys) == want, "orders and events differ: %r" % sorted(set(keys) ^ want)[:10]
    assert [o for o, _ in rows] == list(range(len(rows))), "offsets with a gap"
    at = dict(rows)
    for i, ev in orders.items():
        assert at.get(ev) == "order:%d" % i, "order %d: offset %r holds %r" % (i, ev, at.get(ev))
        if i in reported:
            assert ev == reported[i], "order %d at offset %d, reported %d" % (i, ev, reported[i])
    lost = sorted(acked - set(orders))
    assert not lost, "acknowledged orders lost: %r" % lost[:10]
    return len(orders), doubt


def main(argv):
    if len(argv) == 7 and argv[1] == "writer":
        writer(argv[2], argv[3], argv[4], argv[5], int(argv[6]))
        return 0
    if len(argv) not in (5, 6):
        sys.exit(__doc__)
    module, cli, work = (os.path.abspath(a) for a in argv[1:4])
    kills = int(argv[4])
    seed = int(argv[5]) if len(argv) == 6 else random.SystemRandom().randrange(1, 1 << 31)
    print("seed %d" % seed, flush=True)
    rnd = random.Random(seed)
    shutil.rmtree(work, ignore_errors=True)
    me = [sys.executable, os.path.abspath(__file__)]
    mismatches = 0
    for k, (journal, sync) in enumerate(MODES):
        path = os.path.join(work, "%s-%s" % (journal, sync))
        os.makedirs(path)
        n = kills // len(MODES) + (k < kills % len(MODES))
        doubts = 0
        orders = 0
        for run in range(n):
            out_file = os.path.join(path, "writer.out")
            with open(out_file, "w") as out:
                p = subprocess.Popen(me + ["writer", module, path, journal, sync, str(rnd.randrange(1 << 30))],
                                     stdout=out)
            # From its first commit on, then a random moment later.
            deadline = time.monotonic() + 30
            while os.path.getsize(out_file) == 0 and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rnd.uniform(0, 0.25))
            if p.poll() is not None:
                print("FAIL %s/%s run %d: the writer exited with %d" % (journal, sync, run, p.returncode))
                return 1
            p.send_signal(signal.SIGKILL)
            p.wait()
            try:
                orders, doubt = verify(module, path, journal, sync, out_file, run == n - 1)
                doubts += doubt
            except AssertionError as e:
                print("FAIL %s/%s after kill %d: %s" % (journal, sync, run + 1, e))
                mismatches += 1
                break
        c = subprocess.run([cli, "check", os.path.join(path, "events.d")], capture_output=True, text=True)
        if c.returncode != 0:
            print("FAIL %s/%s: klevdb check: %s%s" % (journal, sync, c.stdout, c.stderr))
            mismatches += 1
        print("journal_mode=%-6s synchronous=%-6s %3d kills, %5d orders committed, %3d kills left a batch "
              "in doubt" % (journal, sync, n, orders, doubts), flush=True)
    print("test_outbox_kill.py: %d kills, %d mismatches (seed %d)" % (kills, mismatches, seed))
    if mismatches == 0:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
