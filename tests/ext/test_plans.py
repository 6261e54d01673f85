#!/usr/bin/python3
"""Every plan the table offers gives the answer of a plain table.

usage: test_plans.py MODULE WORKDIR

A klevdb table and a plain SQLite table hold the same rows. WHERE clauses
built from every kind of constraint the table takes itself (offset =, IN,
>=, >, <=, <, key =, key IN, time >=, ORDER BY "offset", LIMIT, OFFSET),
alone and two or three together, with negative numbers, NULL, REAL and
TEXT operands, run against both and must return the same rows:
  (a) on committed rows;
  (b) inside a transaction that has inserted rows (pending) and deleted
      committed ones;
  (c) DELETE with the same clauses, in a transaction rolled back, must
      delete the rows the plain table deletes.
The clauses are a fixed list crossed with each other (no randomness), so a
failure names its query. Prints "test_plans: N checks, M failed".
"""
import itertools
import os
import sys

import extcheck
from extcheck import check, connect

ROWS = [("k%d" % (i % 4) if i % 7 else None, "v%d" % i, 1672531200000000 + i * 1000000 - (i % 3) * 1500000)
        for i in range(24)]

OFFSET_TERMS = [
    '"offset" = 3', '"offset" = -1', '"offset" = 2.0', '"offset" = 2.5', "\"offset\" = '4'",
    '"offset" IN (1, 5, 22, -1, -2)', '"offset" IN (25, 26, 3)',
    '"offset" >= 20', '"offset" >= -1', '"offset" > -2', '"offset" > 22', '"offset" >= 2.5',
    '"offset" <= 2', '"offset" < 0', '"offset" < -5', '"offset" <= 23.5', '"offset" < 25',
    '"offset" BETWEEN -3 AND 2', '"offset" >= NULL', "\"offset\" >= '21'",
]
KEY_TERMS = [
    "key = 'k1'", "key = 'none'", "key IN ('k2', 'k3', 'zz')", "key IN ('x', 'y')", "key = NULL",
]
TIME_TERMS = ["time >= 1672531205000000", "time > 1672531218000000"]
TAILS = ['', 'ORDER BY "offset"', 'ORDER BY "offset" DESC', 'ORDER BY "offset" LIMIT 3',
         'ORDER BY "offset" DESC LIMIT 2 OFFSET 1', 'ORDER BY "offset" LIMIT -1 OFFSET 2',
         'ORDER BY "offset" DESC LIMIT 1']


def clauses():
    singles = OFFSET_TERMS + KEY_TERMS + TIME_TERMS
    yield ""
    for t in singles:
        yield "WHERE " + t
    for a, b in itertools.product(OFFSET_TERMS, KEY_TERMS + TIME_TERMS + OFFSET_TERMS[7:]):
        if a != b:
            yield "WHERE %s AND %s" % (a, b)
            yield "WHERE %s AND %s" % (b, a)
    for a, b, c in itertools.product(OFFSET_TERMS[:7], OFFSET_TERMS[7:14], KEY_TERMS[:3]):
        yield "WHERE %s AND %s AND %s" % (a, b, c)


def setup(dirpath):
    conn = connect()
    conn.execute("CREATE VIRTUAL TABLE ev USING klevdb(dir='%s', key='text', value='text')"
                 % os.path.join(dirpath, "ev.d"))
    conn.execute('CREATE TABLE p("offset" INTEGER PRIMARY KEY, time INTEGER, key TEXT, value TEXT)')
    conn.execute("CREATE INDEX p_key ON p(key)")
    conn.execute("BEGIN")
    for i, (k, v, t) in enumerate(ROWS):
        conn.execute("INSERT INTO ev(key, value, time) VALUES (?, ?, ?)", (k, v, t))
        conn.execute('INSERT INTO p("offset", key, value, time) VALUES (?, ?, ?, ?)', (i, k, v, t))
    conn.execute("COMMIT")
    return conn


def rows(conn, sql):
    try:
        return conn.execute(sql).fetchall()
    except Exception as e:  # an error must be the same error on both sides
        return "error: %s" % e


def compare(conn, what, tails):
    bad = 0
    n = 0
    for where in clauses():
        for tail in tails:
            q = 'SELECT "offset", key, value, time FROM %%s %s %s' % (where, tail)
            got, want = rows(conn, q % "ev"), rows(conn, q % "p")
            if "ORDER BY" not in tail and isinstance(got, list) and isinstance(want, list):
                got, want = sorted(got, key=repr), sorted(want, key=repr)
            n += 1
            if got != want:
                bad += 1
                if bad <= 5:
                    check(False, "%s: %s" % (what, q % "ev"), "got %r, want %r" % (got, want))
    check(bad == 0, "%s: %d queries like the plain table" % (what, n), "%d differ" % bad)


def test_committed(d):
    conn = setup(d)
    compare(conn, "committed", TAILS)


def test_pending(d):
    conn = setup(d)
    conn.execute("BEGIN")
    for i, (k, v, t) in enumerate(ROWS[:6]):
        o = len(ROWS) + i
        conn.execute("INSERT INTO ev(key, value, time) VALUES (?, ?, ?)", (k, v + "p", t + 30000000))
        conn.execute('INSERT INTO p("offset", key, value, time) VALUES (?, ?, ?, ?)', (o, k, v + "p", t + 30000000))
    for o in (1, 2, 9, 25):
        conn.execute('DELETE FROM ev WHERE "offset" = ?', (o,))
        conn.execute('DELETE FROM p WHERE "offset" = ?', (o,))
    compare(conn, "pending", TAILS)
    conn.execute("ROLLBACK")


def test_delete(d):
    conn = setup(d)
    bad = n = 0
    for where in clauses():
        if not where:
            continue
        conn.execute("BEGIN")
        try:
            a = conn.execute("DELETE FROM ev %s" % where).rowcount
            b = conn.execute("DELETE FROM p %s" % where).rowcount
            left = (rows(conn, 'SELECT "offset" FROM ev ORDER BY 1'),
                    rows(conn, 'SELECT "offset" FROM p ORDER BY 1'))
        finally:
            conn.execute("ROLLBACK")
        n += 1
        if a != b or left[0] != left[1]:
            bad += 1
            if bad <= 5:
                check(False, "DELETE FROM ev %s" % where, "deleted %d, want %d; left %r, want %r"
                      % (a, b, left[0], left[1]))
    check(bad == 0, "delete: %d statements like the plain table" % n, "%d differ" % bad)


if __name__ == "__main__":
    sys.exit(extcheck.main("test_plans", __doc__, sys.argv, [test_committed, test_pending, test_delete]))
