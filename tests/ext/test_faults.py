#!/usr/bin/env python3
"""test_faults.py - a crash at every step of the table's commit protocol.

An outbox transaction (orders rows and the events that announce them) runs
in a child process that loads the test module klevdb_faults, built with
-DKLEVDB_FAULTS: its commit protocol counts the crash points it passes
(core/src/fault.h) and kills itself (SIGKILL) at point KLEVDB_FAULT_AT=N.
For N = 1, 2, 3, ... a fresh copy of the same database and stores gets the
same transaction, until a run passes every point and completes. After each
kill a fresh process with the normal module touches the tables (which
settles a batch left in doubt) and checks the outbox invariant:

- the order ids in `orders` are exactly the keys of `events` (and of
  `audit`, the second klevdb table), each key once, each event at the
  offset its order row recorded;
- the transaction is all there or not at all (its new orders, its events,
  its deletes), and all there if COMMIT had returned;
- a new order's event is at the offset last_insert_rowid() reported in
  the child before COMMIT;
- the next transaction gets the next offset (nothing skipped, nothing
  taken twice), and `klevdb check` passes on every store.

Shapes: INSERT only, DELETE only, INSERT with DELETE, a big transaction
(more than eight rollover sizes: published as segments of its own) and two
klevdb tables in one transaction. Each shape must pass a minimum number of
points (a module without the hook would pass none) and see both outcomes.

usage: test_faults.py FAULTS_MODULE MODULE KLEVDB_CLI WORKDIR
(also run as its own child: ... child FAULTS_MODULE SHAPE DIR, and
verifier: ... verify MODULE SHAPE DIR)
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys

ROLLOVER = 4096
FIRST = 40          # orders 1..40 exist before, their events at offsets 0..39
VALUE = 150         # bytes of an event's value

# name: (new order ids, delete orders with id <= this (0: none), two tables)
SHAPES = {
    "insert": (list(range(41, 44)), 0, False),
    "delete": ([], 25, False),
    "mixed": (list(range(41, 44)), 10, False),
    "big": (list(range(41, 341)), 0, False),   # 300 * ~190 bytes > 8 * 4096
    "two": (list(range(41, 43)), 5, True),
}
# Fewest crash points each shape must pass.
MIN_POINTS = {"insert": 10, "delete": 10, "mixed": 12, "big": 30, "two": 20}


def value_of(oid):
    return ("order %d " % oid).ljust(VALUE, "x")


def connect(path, module, entry=None):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.enable_load_extension(True)
    if entry:
        # The test module keeps the extension's entry point name.
        conn.execute("SELECT load_extension(?, ?)", (module, entry))
    else:
        conn.load_extension(module)
    conn.enable_load_extension(False)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def tables(two):
    return ["events", "audit"] if two else ["events"]


def make_template(module, path, two):
    """The database and stores every run of a shape starts from."""
    os.makedirs(path)
    conn = connect(os.path.join(path, "app.db"), module)
    conn.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT, ev INTEGER, ev2 INTEGER)")
    for t in tables(two):
        conn.execute("CREATE VIRTUAL TABLE %s USING klevdb(dir='%s.d', rollover=%d)" % (t, t, ROLLOVER))
    for start in range(1, FIRST + 1, 10):
        conn.execute("BEGIN")
        for oid in range(start, start + 10):
            publish_order(conn, oid, two)
        conn.execute("COMMIT")
    conn.close()


def publish_order(conn, oid, two):
    """One order and its event(s): what an outbox writer does."""
    conn.execute("INSERT INTO orders(id, item) VALUES (?, ?)", (oid, "item %d" % oid))
    offs = []
    for t, col in zip(tables(two), ("ev", "ev2")):
        cur = conn.execute("INSERT INTO %s(key, value) VALUES (?, ?)" % t, ("order:%d" % oid, value_of(oid)))
        offs.append(cur.lastrowid)
        conn.execute("UPDATE orders SET %s = ? WHERE id = ?" % col, (cur.lastrowid, oid))
    return offs


def child(module, shape, path):
    new, upto, two = SHAPES[shape]
    conn = connect(os.path.join(path, "app.db"), module, "sqlite3_klevdb_init")
    conn.execute("BEGIN")
    if upto:
        conn.execute("DELETE FROM orders WHERE id <= ?", (upto,))
        for t in tables(two):
            conn.execute("DELETE FROM %s WHERE offset < ?" % t, (upto,))
    for oid in new:
        offs = publish_order(conn, oid, two)
        print("off %d %s" % (oid, " ".join(map(str, offs))), flush=True)
    print("commit", flush=True)
    conn.execute("COMMIT")
    print("done", flush=True)
    conn.close()


def verify(module, shape, path, reported, returned):
    """The invariant, in a process of its own; returns whether the
    transaction committed. Raises AssertionError on a violation."""
    new, upto, two = SHAPES[shape]
    conn = connect(os.path.join(path, "app.db"), module)
    for t in tables(two):
        conn.execute("SELECT count(*) FROM %s" % t).fetchone()   # settles a batch in doubt
    orders = {oid: (ev, ev2) for oid, ev, ev2 in conn.execute("SELECT id, ev, ev2 FROM orders")}

    def check_table(t, col):
        rows = conn.execute("SELECT offset, key FROM %s ORDER BY offset" % t).fetchall()
        keys = [k for _, k in rows]
        assert len(keys) == len(set(keys)), "%s: a key twice: %r" % (t, keys)
        want = {"order:%d" % oid for oid in orders}
        assert set(keys) == want, "%s: keys %r != orders %r" % (t, sorted(set(keys) ^ want), sorted(orders))
        at = dict(rows)
        for oid, evs in orders.items():
            assert at.get(evs[col]) == "order:%d" % oid, \
                "%s: order %d recorded offset %r, which holds %r" % (t, oid, evs[col], at.get(evs[col]))
        return rows

    for col, t in enumerate(tables(two)):
        check_table(t, col)
    got_new = [oid for oid in new if oid in orders]
    assert not got_new or got_new == new, "half the new orders: %r" % got_new
    gone = [oid for oid in range(1, upto + 1) if oid not in orders]
    assert not gone or len(gone) == upto, "half the deletes: %r" % gone
    committed = bool(got_new) if new else bool(gone)
    if new and upto:
        assert bool(gone) == committed, "inserts %s but deletes %s" % (bool(got_new), bool(gone))
    if returned:
        assert committed, "COMMIT returned but the transaction is not there"
    if committed:
        for oid in new:
            assert list(orders[oid][: len(tables(two))]) == reported.get(oid), \
                "order %d: offsets %r, reported %r" % (oid, orders[oid], reported.get(oid))
    # Publishing goes on at the next offset.
    want_next = FIRST + (len(new) if committed else 0)
    conn.execute("BEGIN")
    offs = publish_order(conn, 100000, two)
    conn.execute("COMMIT")
    assert offs == [want_next] * len(offs), "next offsets %r, expected %d" % (offs, want_next)
    orders[100000] = tuple(offs) + (None,) * (2 - len(offs))
    for col, t in enumerate(tables(two)):
        check_table(t, col)
    conn.close()
    for t in tables(two):
        with open(os.path.join(path, t + ".d", ".prepared"), "rb") as f:
            assert f.read(8) != b"KLEVPREP", "%s: a batch still in doubt" % t
    return committed


def parse(out):
    reported, returned = {}, False
    for line in out.splitlines():
        w = line.split()
        if w and w[0] == "off":
            reported[int(w[1])] = [int(x) for x in w[2:]]
        elif w == ["done"]:
            returned = True
    return reported, returned


def run_shape(me, faults, module, cli, work, shape):
    new, upto, two = SHAPES[shape]
    template = os.path.join(work, shape + ".template")
    make_template(module, template, two)
    run_dir = os.path.join(work, shape)
    outcomes = {True: 0, False: 0}
    n = 0
    while True:
        n += 1
        if n > 1000:
            raise AssertionError("%s: still killed at point %d" % (shape, n))
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.copytree(template, run_dir)
        env = dict(os.environ, KLEVDB_FAULT_AT=str(n))
        p = subprocess.run(me + ["child", faults, shape, run_dir], env=env, capture_output=True,
                           text=True, timeout=120)
        killed = p.returncode == -signal.SIGKILL
        if not killed and p.returncode != 0:
            raise AssertionError("%s, point %d: the child failed (%d): %s" % (shape, n, p.returncode, p.stderr))
        reported, returned = parse(p.stdout)
        if killed and returned:
            raise AssertionError("%s, point %d: killed after COMMIT returned" % (shape, n))
        if not killed and sorted(reported) != new:
            raise AssertionError("%s: the child reported %r" % (shape, reported))
        v = subprocess.run(me + ["verify", module, shape, run_dir, json.dumps([reported, returned])],
                           capture_output=True, text=True, timeout=120)
        if v.returncode != 0:
            raise AssertionError("%s, point %d (%s): %s%s" % (shape, n, "killed" if killed else "completed",
                                                               v.stdout, v.stderr))
        committed = json.loads(v.stdout)
        outcomes[committed] += 1
        for t in tables(two):
            c = subprocess.run([cli, "check", os.path.join(run_dir, t + ".d")], capture_output=True, text=True)
            if c.returncode != 0:
                raise AssertionError("%s, point %d: klevdb check %s: %s%s" % (shape, n, t, c.stdout, c.stderr))
        if not killed:
            if not committed:
                raise AssertionError("%s: completed without a kill, not committed" % shape)
            points = n - 1
            print("%-7s %3d crash points passed; after a kill: %d committed, %d rolled back"
                  % (shape, points, outcomes[True] - 1, outcomes[False]), flush=True)
            if points < MIN_POINTS[shape]:
                raise AssertionError("%s: %d crash points, at least %d expected (is the hook built in?)"
                                     % (shape, points, MIN_POINTS[shape]))
            if outcomes[True] < 2 or outcomes[False] < 1:
                raise AssertionError("%s: kills gave only one outcome: %r" % (shape, outcomes))
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(template, ignore_errors=True)
            return points


def main(argv):
    if len(argv) == 5 and argv[1] == "child":
        child(argv[2], argv[3], argv[4])
        return 0
    if len(argv) == 6 and argv[1] == "verify":
        reported, returned = json.loads(argv[5])
        reported = {int(k): v for k, v in reported.items()}
        try:
            committed = verify(argv[2], argv[3], argv[4], reported, returned)
        except AssertionError as e:
            print("invariant broken: %s" % e)
            return 1
        print(json.dumps(committed))
        return 0
    if len(argv) != 5:
        sys.exit(__doc__)
    faults, module, cli, work = (os.path.abspath(a) for a in argv[1:])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    me = [sys.executable, os.path.abspath(__file__)]
    total = 0
    try:
        for shape in SHAPES:
            total += run_shape(me, faults, module, cli, work, shape)
    except AssertionError as e:
        print("test_faults.py: FAIL: %s" % e, file=sys.stderr)
        return 1
    print("test_faults.py: %d kills over %d shapes, the invariant held after each" % (total, len(SHAPES)))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
