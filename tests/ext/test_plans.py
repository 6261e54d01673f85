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
      delete the rows the plain table deletes;
  (e) transactions and savepoints (with and without BEGIN, ROLLBACK TO and
      RELEASE at every depth) around inserts and deletes, mirrored into the
      plain table, compared after every step (a fixed pseudo-random walk);
  (d) for the text, integer and blob codecs against a plain column of the
      type the codec reads back: key =, +key =, key IN and key = with
      another term, with operands of every type (5, '5', 5.0, ' 5', x'35',
      NULL, 'k1', COLLATE NOCASE), committed and pending.
The clauses are a fixed list crossed with each other (no randomness), so a
failure names its query. Prints "test_plans: N checks, M failed".
"""
import itertools
import os
import random
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
# Terms the table leaves to SQLite: LIMIT and OFFSET must then be SQLite's.
OTHER_TERMS = ["value = 'v3'", "key = 'k1' OR key = 'k2'", "length(value) > 2", "key LIKE 'k%'",
               "key IS NULL", "key IS NOT NULL", '"offset" IS 3', '"offset" != 3', 'NOT "offset" >= 3',
               "\"offset\" BETWEEN 2 AND 5 OR key = 'k3'", "rowid = 3", "rowid >= -1", "time < 1672531205000000",
               "key > 'k1'", "key = value"]
TAILS = ['', 'ORDER BY "offset"', 'ORDER BY "offset" DESC', 'ORDER BY "offset" LIMIT 3',
         'ORDER BY "offset" DESC LIMIT 2 OFFSET 1', 'ORDER BY "offset" LIMIT -1 OFFSET 2',
         'ORDER BY "offset" DESC LIMIT 1']


def clauses():
    singles = OFFSET_TERMS + KEY_TERMS + TIME_TERMS + OTHER_TERMS
    yield ""
    for t in singles:
        yield "WHERE " + t
    for a, b in itertools.product(OTHER_TERMS, OFFSET_TERMS[:9] + KEY_TERMS[:3]):
        yield "WHERE %s AND %s" % (a, b)
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
            q = 'SELECT "offset", key, value, time FROM @ %s %s' % (where, tail)
            got, want = rows(conn, q.replace("@", "ev")), rows(conn, q.replace("@", "p"))
            if "ORDER BY" not in tail and isinstance(got, list) and isinstance(want, list):
                got, want = sorted(got, key=repr), sorted(want, key=repr)
            n += 1
            if got != want:
                bad += 1
                if bad <= 5:
                    check(False, "%s: %s" % (what, q.replace("@", "ev")), "got %r, want %r" % (got, want))
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


TYPED = {
    # codec: (declared type of the plain column, keys to store)
    "text": ("TEXT", ["5", "05", " 5", "5.0", "k1", "K1", "x", None]),
    "integer": ("INTEGER", [5, -1, 0, 12, 5, 9223372036854775807, None]),
    "blob": ("BLOB", [b"5", b"k1", b"\x00", b"K1", None]),
}
OPERANDS = ["5", "'5'", "5.0", "' 5'", "'05'", "x'35'", "NULL", "'k1'", "'K1'", "-1", "'-1'", "1.5",
            "x'6b31'", "9223372036854775807", "'9223372036854775807'", "9.3e18", "''", "x''",
            # right sides with a type of their own (SQLite then compares differently)
            "CAST('5' AS INTEGER)", "CAST(5 AS REAL)", "CAST(5 AS TEXT)", "CAST('k1' AS BLOB)",
            "(SELECT n FROM nums LIMIT 1)", "(SELECT t FROM txt LIMIT 1)"]
# Whole WHERE clauses with subqueries and joins (the other table first).
EXTRA = ["key IN (SELECT n FROM nums)", "key IN (SELECT t FROM txt)", "key IN (SELECT b FROM bl)",
         "key IN (SELECT n FROM nums UNION ALL SELECT t FROM txt)"]
JOINS = ["nums JOIN @ ON key = n", "txt JOIN @ ON key = t", "bl JOIN @ ON key = b",
         "nums CROSS JOIN @ ON key = n", "txt CROSS JOIN @ ON key = t"]


def test_types(d):
    conn = connect()
    conn.execute("CREATE TABLE nums(n INTEGER)")
    conn.execute("INSERT INTO nums VALUES (5), (12), (-1)")
    conn.execute("CREATE TABLE txt(t TEXT)")
    conn.execute("INSERT INTO txt VALUES ('5'), ('k1'), ('12')")
    conn.execute("CREATE TABLE bl(b BLOB)")
    conn.execute("INSERT INTO bl VALUES (x'35'), (x'6b31'), (5)")
    bad = n = 0
    for codec, (decl, keys) in TYPED.items():
        conn.execute("CREATE VIRTUAL TABLE ev_%s USING klevdb(dir='%s', key='%s', value='text')"
                     % (codec, os.path.join(d, codec + ".d"), codec))
        conn.execute('CREATE TABLE p_%s("offset" INTEGER PRIMARY KEY, key %s, value TEXT)' % (codec, decl))
        for i, k in enumerate(keys):
            conn.execute("INSERT INTO ev_%s(key, value) VALUES (?, ?)" % codec, (k, "v%d" % i))
            conn.execute('INSERT INTO p_%s("offset", key, value) VALUES (?, ?, ?)' % codec, (i, k, "v%d" % i))
        for pending in (False, True):
            if pending:
                conn.execute("BEGIN")
                for i, k in enumerate(keys[:3]):
                    o = len(keys) + i
                    conn.execute("INSERT INTO ev_%s(key, value) VALUES (?, ?)" % codec, (k, "p%d" % i))
                    conn.execute('INSERT INTO p_%s("offset", key, value) VALUES (?, ?, ?)' % codec, (o, k, "p%d" % i))
            wheres = []
            for a in OPERANDS:
                wheres += ["key = %s" % a, "+key = %s" % a, "key = %s AND value IS NOT NULL" % a,
                           "key IN (%s, 'x')" % a, "key = %s COLLATE NOCASE" % a, "%s = key" % a,
                           "key = %s AND \"offset\" >= 0" % a]
            wheres += EXTRA
            for j in JOINS:
                for tail in ('ORDER BY "offset"', 'ORDER BY "offset" DESC'):
                    q = 'SELECT "offset", key, value FROM %s %s' % (j, tail)
                    got, want = rows(conn, q.replace("@", "ev_" + codec)), rows(conn, q.replace("@", "p_" + codec))
                    n += 1
                    if got != want:
                        bad += 1
                        if bad <= 8:
                            check(False, "%s%s: %s" % (codec, " pending" if pending else "", q.replace("@", "ev_" + codec)),
                                  "got %r, want %r" % (got, want))
            for w in wheres:
                for tail in ('ORDER BY "offset"', 'ORDER BY "offset" DESC LIMIT 1'):
                    q = 'SELECT "offset", key, value FROM %%s WHERE %s %s' % (w, tail)
                    got, want = rows(conn, q % ("ev_" + codec)), rows(conn, q % ("p_" + codec))
                    n += 1
                    if got != want:
                        bad += 1
                        if bad <= 8:
                            check(False, "%s%s: %s" % (codec, " pending" if pending else "", q % ("ev_" + codec)),
                                  "got %r, want %r" % (got, want))
            if pending:
                conn.execute("ROLLBACK")
    check(bad == 0, "types: %d queries like a plain column of the codec's type" % n, "%d differ" % bad)


def test_savepoints(d):
    conn = setup(d)
    rnd = random.Random(11)
    depth = 0          # savepoints open
    bad = steps = 0
    for step in range(1500):
        r = rnd.random()
        sql = None
        if r < 0.10 and not conn.in_transaction:
            sql = "BEGIN"
        elif r < 0.25 and depth < 6:
            sql = "SAVEPOINT s%d" % depth
            depth += 1
        elif r < 0.33 and depth:
            k = rnd.randrange(depth)
            sql = "ROLLBACK TO s%d" % k
            depth = k + 1
        elif r < 0.40 and depth:
            k = rnd.randrange(depth)
            sql = "RELEASE s%d" % k   # of the savepoint that opened the transaction: commits
            depth = k
        elif r < 0.44 and conn.in_transaction:
            sql = rnd.choice(["COMMIT", "ROLLBACK"])
            depth = 0
        elif r < 0.80:
            k, v = "k%d" % rnd.randrange(5), "v%d" % step
            for _ in range(rnd.randrange(1, 4)):
                conn.execute("INSERT INTO ev(key, value, time) VALUES (?, ?, 0)", (k, v))
                o = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
                conn.execute('INSERT INTO p("offset", key, value, time) VALUES (?, ?, ?, 0)', (o, k, v))
        else:
            w = rnd.choice(['"offset" = %d' % rnd.randrange(-2, 80), "key = 'k%d'" % rnd.randrange(5),
                            '"offset" BETWEEN %d AND %d' % (rnd.randrange(60), rnd.randrange(60, 90)),
                            '"offset" IN (%d, %d) AND key IN (\'k1\', \'k2\')' % (rnd.randrange(80), rnd.randrange(80))])
            conn.execute("DELETE FROM ev WHERE " + w)
            conn.execute("DELETE FROM p WHERE " + w)
        if sql:
            conn.execute(sql)
        if not conn.in_transaction:
            depth = 0
        steps += 1
        got = rows(conn, 'SELECT "offset", key, value FROM ev ORDER BY "offset"')
        want = rows(conn, 'SELECT "offset", key, value FROM p ORDER BY "offset"')
        if got != want:
            bad += 1
            if bad <= 3:
                check(False, "savepoints: after step %d (%s)" % (step, sql), "got %d rows, want %d" % (len(got), len(want)))
    if conn.in_transaction:
        conn.execute("COMMIT")
    stored = rows(conn, "SELECT \"offset\", CAST(key AS TEXT), CAST(value AS TEXT) FROM klevdb_scan('%s')"
                  % os.path.join(d, "ev.d"))
    want = rows(conn, 'SELECT "offset", key, value FROM p ORDER BY "offset"')
    check(bad == 0, "savepoints: %d steps like the plain table" % steps, "%d differ" % bad)
    check(stored == want, "savepoints: the store holds the plain table's rows (%d)" % len(want))


if __name__ == "__main__":
    sys.exit(extcheck.main("test_plans", __doc__, sys.argv,
                           [test_committed, test_pending, test_delete, test_types, test_savepoints]))
