"""What the differential fuzzers (fuzz_query.py, fuzz_tx.py) share: a klevdb
table and a plain SQLite table kept with the same rows in one database, the
random SQL they are both given, the comparison of the answers, and the
shrinking of a failing case to a short repro.

The plain table is the yardstick: whatever the plan, the klevdb table must
answer as it does. The only places where the two legitimately differ are
the functions under "The model" below; everything else must be equal.
"""
import json
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
CODECS = ["blob", "text", "integer", "json", "string", "stringopt"]
STATEMENT_SECONDS = 20     # a statement running longer is a failure (a hang)


# ---- The model: where a klevdb table legitimately differs from a plain one ----
#
# 1. Values of each codec's own type (POOLS) read back as the functions
#    below say. Other values (CROSS) are converted as a plain column of the
#    declared type converts them, or the INSERT is refused with a klevdb:
#    error (then the plain table does not get the rows); an INSERT of the
#    codec's own values is never refused. So is a time of INT64_MIN (the
#    store's "unset"): refused, or stored as given, never as "now".
# 2. An empty string or blob is stored absent and reads back NULL; the
#    string codec reads absent (and NULL) back as ''; stringopt keeps ''.
# 3. The json codec stores a number as its text (SQLite's own %!.15g).
# 4. The plain table's columns get the types the klevdb table declares
#    (PRAGMA table_info), so that SQLite applies the same affinities.
# 5. Offsets come from the store: the plain table takes them from a
#    one-row table "seq" (next offset) that INSERTs advance in the same
#    transaction, so ROLLBACK and ROLLBACK TO give offsets back exactly as
#    the store does. Deletes never lower it.
# 6. Times are always given (NULL would be "now", read at different
#    moments by the two tables).
# 7. Comparing time with a TEXT that is no number (time >= 'abc') is an
#    error of the klevdb table when its time index takes the constraint
#    (README: compare time with klevdb_time(...)); a plain table answers
#    no row. That error is accepted, and counted, for such SQL only.
# 8. The plain table's DELETE selects its rows first (DELETE ... WHERE
#    "offset" IN (SELECT "offset" ... WHERE w)): SQLite 3.40 itself deletes
#    more rows than SELECT ... WHERE w gives when w ORs a test with a
#    scalar subquery over the same table: on rows (0, 7) and (1, -5),
#    WHERE value IN (7) OR "offset" = (SELECT min("offset") FROM pl)
#    selects row 0 and deletes both.

def stored(codec, v):
    """What a column of this codec reads back after v was inserted."""
    if codec == "string":
        return "" if v in (None, "", b"") else v
    if v is None:
        return None
    if codec == "stringopt":
        return v
    if v in ("", b""):
        return None
    if codec == "integer":
        return int(v)
    if codec == "json" and not isinstance(v, str):
        return repr(v) if isinstance(v, float) else str(v)   # as %!.15g for the pool's 2.5
    return v


TIME_TEXT_ERROR = "compare it with klevdb_time"


def time_text_refusal(err, sql):
    return TIME_TEXT_ERROR in err and "time" in sql


# Values the fuzzers insert, per codec; duplicates are wanted (several rows
# per key) and so are absent ones.
POOLS = {
    "blob": [None, b"", b"a", b"b", b"ab", b"A", b"\x00", b"\xff\x00", b"a%", b"_", b"k0", b"3", b"L" * 300],
    "text": [None, "", "a", "b", "ab", "A", "a%", "_b", "\u00e9", "10", "-1", "1.5", "k0", "3", "L" * 300],
    "integer": [None, 0, 1, -1, 5, 3, 10, INT64_MAX, INT64_MIN, (1 << 53) + 1, -(1 << 40), "5", "-7"],
    "json": [None, "1", "-1", "1.5", '"a"', '{"a":1}', "[1,2]", "null", "true", "3", 7, -2, 2.5],
    "string": [None, "", "a", "b", "ab", "\u00e9", "3", "a b", "L" * 300],
    "stringopt": [None, "", "a", "b", "a\"b", "\\", "\u00e9", "3", "L" * 300],
}
# Values of other types, inserted now and then into every codec (no empty
# ones: how empties read back is the pools' business).
CROSS = [5, -3, 1.5, 3.0, 1e20, "x", "7", " 7 ", b"x", b"7", '{"a":1}', "[1]", "\u00e9"]


def natural(codec, v):
    """v is one of the codec's own values (type and all)."""
    return any(type(v) is type(p) and v == p for p in POOLS[codec])


def plain_value(codec, v):
    """What the plain table is given for v inserted into the klevdb table."""
    return stored(codec, v) if natural(codec, v) else v


TIMES = [0, 1, -1, 2, 1000, 1000, -1000, 1700000000000000, 1700000000000001, 1699999999999999,
         INT64_MAX, INT64_MIN + 1, -(1 << 53), 1 << 53, 5, 5, 7]


# ---- SQL text ----

def lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        return r if ("e" in r or "." in r) else r + ".0"
    if len(v) > 40 and len(set(v)) == 1 and (v[:1] if isinstance(v, str) else chr(v[0])).isalnum():
        # A long run of one character, short to read in a repro.
        t = "printf('%%.%dc', %s)" % (len(v), lit(v[:1] if isinstance(v, str) else chr(v[0])))
        return "CAST(%s AS BLOB)" % t if isinstance(v, bytes) else t
    if isinstance(v, bytes):
        return "x'" + v.hex() + "'"
    return "'" + v.replace("'", "''") + "'"


def as_text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


class Gen:
    """Random SQL over a table named {T} (the klevdb table "ev" or the plain
    table "pl"), given the rows' value pools."""

    def __init__(self, rng, kcodec, vcodec):
        self.r = rng
        self.kc, self.vc = kcodec, vcodec
        self.nrows = 8

    # -- operands --
    def number(self):
        r = self.r
        k = r.randrange(-3, self.nrows + 4)
        return r.choice([
            lambda: str(k), lambda: str(k), lambda: str(-k - 1),
            lambda: str(r.choice([INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, -1, -2, 1 << 53])),
            lambda: lit(k + 0.5), lambda: lit(float(k)), lambda: lit(-0.5),
            lambda: r.choice(["1e300", "-1e300", "9.2e18", "9.3e18", "-9.3e18", "1e19", "-1e19",
                              "9.223372036854776e+18", "-9.223372036854776e+18", "9007199254740993.0"]),
        ])()

    def other(self):
        r = self.r
        return r.choice(["NULL", "'3'", "'-1'", "'abc'", "''", "'2.5'", "'a'", "'k0'", "' 3'",
                         "x''", "x'61'", "x'00'", "x'33'", "x'6b30'", "'9223372036854775807'",
                         "'-9223372036854775808'", "'9223372036854775808'", "'1e3'", "'0x10'"])

    def data(self, codec):
        """A stored value, sometimes in another SQL type than it reads back."""
        v = self.r.choice(POOLS[codec])
        s = stored(codec, v)
        if s is None or self.r.random() < 0.6:
            return lit(s)
        if isinstance(s, bytes):
            return lit(as_text(s)) if self.r.random() < 0.5 and b"\0" not in s else lit(s)
        if isinstance(s, int):
            return lit(str(s)) if self.r.random() < 0.5 else lit(float(s))
        return lit(s.encode()) if self.r.random() < 0.5 else lit(s)

    def operand(self, col):
        x = self.r.random()
        if col in ("key", "value") and x < 0.55:
            return self.data(self.kc if col == "key" else self.vc)
        if col == "time" and x < 0.5:
            return str(self.r.choice(TIMES) + self.r.choice([0, 0, 0, 1, -1]))
        return self.number() if x < 0.8 else self.other()

    # -- expressions --
    COLS = ['"offset"', "rowid", "time", "key", "value"]

    def col(self):
        c = self.r.choice(self.COLS + ['"offset"', "key"])
        name = "offset" if c in ('"offset"', "rowid") else c
        form = self.r.random()
        if form < 0.12:
            return "+" + c, name
        if form < 0.15:
            return "_rowid_" if name == "offset" else c, name
        return c, name

    def leaf(self, depth=0):
        r = self.r
        c, name = self.col()
        op = lambda: self.operand(name)
        kind = r.randrange(16)
        if name == "time" and kind < 8 and r.random() < 0.4:
            return "%s %s %s" % (c, r.choice([">=", ">", ">=", "<", "="]), op())
        if kind < 5:
            o = r.choice(["=", "==", "<", "<=", ">", ">=", "!=", "<>", "IS", "IS NOT"])
            return "%s %s %s" % (c, o, op()) if r.random() < 0.8 else "%s %s %s" % (op(), o, c)
        if kind < 8:
            items = ", ".join(op() for _ in range(r.randrange(0, 6)))
            return "%s %sIN (%s)" % (c, "NOT " if r.random() < 0.2 else "", items)
        if kind == 8:
            return "%s %sBETWEEN %s AND %s" % (c, "NOT " if r.random() < 0.2 else "", op(), op())
        if kind == 9:
            return r.choice(["%s IS NULL", "%s IS NOT NULL", "%s NOTNULL", "%s ISNULL"]) % c
        if kind == 10 and name in ("key", "value"):
            pat = r.choice(["'a%'", "'%b'", "'_'", "'%'", "'A%'", "'%\u00e9%'", "'1%'", "'a_'", "x'61'", "'\"%'"])
            o = r.choice(["LIKE", "NOT LIKE", "GLOB", "NOT GLOB"])
            if "GLOB" in o:
                pat = pat.replace("%", "*").replace("_", "?")
            return "%s %s %s" % (c, o, pat)
        if kind == 11 and depth < 2:
            return '%s IN (SELECT %s FROM {T} WHERE %s)' % (c, name if name != "offset" else '"offset"',
                                                        self.where(depth + 1))
        if kind == 12 and depth < 2:
            agg = r.choice(["max", "min", "count"])
            return '%s %s (SELECT %s(%s) FROM {T} WHERE %s)' % (
                c, r.choice(["=", "<", ">=", "!="]), agg, name if name != "offset" else '"offset"',
                self.where(depth + 1))
        if kind == 13 and depth < 2:
            return ('EXISTS (SELECT 1 FROM {T} AS s WHERE s.key IS {T}.key AND s."offset" %s {T}."offset")'
                    % r.choice(["<", ">", "!="]))
        if kind == 14:
            return r.choice(["1", "0", "NULL", "%s + 0 = %s" % (c, op()), "%s %% 3 = 1" % c,
                             "CAST(%s AS TEXT) = %s" % (c, op()),
                             # two columns: SQLite may keep such a term from the table
                             "%s %s %s" % (c, r.choice(["=", "<", ">=", "IS", "!="]), self.col()[0])])
        return "%s %s %s" % (c, r.choice(["=", ">=", ">", "<", "<="]), op())

    def where_tree(self, depth=0):
        r = self.r
        x = r.random()
        if depth == 0 and x < 0.5:
            # Shapes the table's indexes take: one test or a few ANDed.
            t = ("leaf", self.leaf(depth))
            for _ in range(r.choice([0, 1, 1, 2])):
                t = ("and", t, ("leaf", self.leaf(depth)))
            return t
        if depth >= 3 or x < 0.45:
            return ("leaf", self.leaf(depth))
        if x < 0.55:
            return ("not", self.where_tree(depth + 1))
        return ("and" if x < 0.8 else "or", self.where_tree(depth + 1), self.where_tree(depth + 1))

    def where(self, depth=0):
        return render(self.where_tree(depth + 1))

    def order_by(self):
        r = self.r
        n = r.choice([0, 0, 1, 1, 1, 2, 3])
        terms = []
        for _ in range(n):
            c = r.choice(['"offset"', '"offset"', "rowid", "time", "key", "value", "+\"offset\"", "-\"offset\""])
            terms.append(c + r.choice(["", " ASC", " DESC", " DESC", " NULLS FIRST", " DESC NULLS LAST"]))
        return terms

    def limit(self):
        r = self.r
        if r.random() < 0.45:
            return None
        lim = r.choice(["-1", "-5", "0", "1", "1", "2", "3", "3", "10", "100", str(INT64_MAX), "NULL", "2.0",
                        "'2'"])
        off = r.choice([None, None, "0", "1", "2", "-1", "5", "100", str(INT64_MAX)])
        return lim, off


def render(t):
    if t[0] == "leaf":
        return t[1]
    if t[0] == "not":
        return "NOT (%s)" % render(t[1])
    return "(%s) %s (%s)" % (render(t[1]), t[0].upper(), render(t[2]))


def subtrees(t):
    """Smaller trees to try in place of t when shrinking."""
    if t[0] == "leaf":
        return []
    if t[0] == "not":
        return [t[1]] + [("not", s) for s in subtrees(t[1])]
    out = [t[1], t[2]]
    out += [(t[0], s, t[2]) for s in subtrees(t[1])]
    out += [(t[0], t[1], s) for s in subtrees(t[2])]
    return out


UNIQUE_TERMS = ('"offset"', "rowid", '+"offset"', '-"offset"', "_rowid_")


class Query:
    """SELECT <cols> FROM {T} [WHERE] [ORDER BY] [LIMIT], optionally inside
    an outer SELECT (count(*) of it, or the same rows). A join names its
    FROM clause (src) and whether its ORDER BY fixes the order."""
    src = "{T}"
    fixed = False

    def __init__(self, cols, where, order, limit, outer=None, group=False, src=None, fixed=False):
        self.cols, self.where, self.order, self.limit = cols, where, order, limit
        self.outer, self.group = outer, group
        if src:
            self.src, self.fixed = src, fixed

    def copy(self, **kw):
        q = Query(self.cols, self.where, self.order, self.limit, self.outer, self.group, self.src, self.fixed)
        q.__dict__.update(kw)
        return q

    def sql(self, table, with_limit=True):
        s = "SELECT %s FROM %s" % (self.cols, self.src)
        if self.where is not None:
            s += " WHERE " + render(self.where)
        if self.group:
            s += " GROUP BY key"
        if self.order:
            s += " ORDER BY " + ", ".join(self.order)
        if self.limit and with_limit:
            s += " LIMIT " + self.limit[0]
            if self.limit[1] is not None:
                s += " OFFSET " + self.limit[1]
        if self.outer:
            s = self.outer % s
        return s.replace("{T}", table)

    def total_order(self):
        """True if the rows' order is fixed: some ORDER BY term is unique."""
        if self.group or "DISTINCT" in self.cols:
            return False
        if self.src != "{T}":
            return self.fixed and bool(self.order)
        return any(t.split(" ")[0] in UNIQUE_TERMS for t in self.order)

    def kind(self):
        """'ordered', 'multiset', or 'subset' (a LIMIT over rows of no fixed
        order: any rows of the unlimited answer, as many as the plain table
        gives)."""
        if self.cols.startswith(("count(", "min(")) or (self.outer and "count(*)" in self.outer):
            return "ordered"          # one row
        if self.limit and not self.total_order():
            return "subset"
        if self.outer or not self.total_order():
            return "multiset"         # an outer SELECT without ORDER BY keeps no order
        return "ordered"

    def shrinks(self):
        out = []
        if self.outer:
            out.append(self.copy(outer=None))
        if self.limit:
            out.append(self.copy(limit=None))
            if self.limit[1] is not None:
                out.append(self.copy(limit=(self.limit[0], None)))
        if self.order and self.src == "{T}":
            for i in range(len(self.order)):
                out.append(self.copy(order=self.order[:i] + self.order[i + 1:]))
        if self.where is not None:
            out.append(self.copy(where=None))
            for s in subtrees(self.where):
                out.append(self.copy(where=s))
        if self.cols != "*" and not self.group and self.src == "{T}":
            out.append(self.copy(cols="*"))
        return out


def random_query(g):
    r = g.r
    where = g.where_tree() if r.random() < 0.9 else None
    x = r.random()
    if x < 0.08:
        return Query(r.choice(["count(*)", "count(*), min(\"offset\"), max(\"offset\")",
                               "min(key), max(key), count(key), count(value)",
                               "count(*), total(length(key)), max(time)"]), where, [], None)
    if x < 0.14:
        return Query("key, count(*)", where, [], None, group=True)
    if x < 0.35:
        return shaped_query(g)
    cols = r.choice(["*", "*", '"offset", key', "rowid, *", "key, value", '"offset"', "time",
                     "typeof(key), key, typeof(value)", '"offset", time', "DISTINCT key"])
    q = Query(cols, where, g.order_by(), g.limit())
    if x < 0.45:
        q.outer = "SELECT count(*) FROM (%s)"
    elif x < 0.48:
        q.outer = "SELECT * FROM (%s)"
    return q


def shaped_query(g):
    """The shapes the table has fast paths for (latest by key, consume from
    an offset, since a time, counts by offset range) and self-joins, whose
    inner side gets its constraints from the outer row."""
    r = g.r
    k = lambda: g.operand("key")
    o = lambda: g.operand("offset")
    t = lambda: g.operand("time")
    lim = lambda: r.choice(["1", "1", "2", "5", "-1", "100"])
    x = r.randrange(9)
    if x == 0:
        return Query("*", ("leaf", "key = " + k()), ['"offset" DESC'], (lim(), None))
    if x == 1:
        return Query("*", ("and", ("leaf", "key = " + k()), ("leaf", '"offset" %s %s' % (r.choice(["<", "<=", ">="]), o()))),
                     ['"offset" DESC'], (lim(), None))
    if x == 2:
        return Query("*", ("leaf", '"offset" %s %s' % (r.choice([">=", ">"]), o())), ['"offset"'],
                     (lim(), r.choice([None, "1", "3"])))
    if x == 3:
        return Query('"offset", time', ("leaf", "time %s %s" % (r.choice([">=", ">"]), t())),
                     [r.choice(['"offset"', '"offset" DESC'])], r.choice([None, (lim(), None)]))
    if x == 4:
        return Query("count(*)", ("leaf", '"offset" BETWEEN %s AND %s' % (o(), o())), [], None)
    if x == 5:
        return Query("*", ("leaf", "key IN (%s, %s, %s)" % (k(), k(), k())),
                     [r.choice(['"offset"', '"offset" DESC'])], r.choice([None, (lim(), None)]))
    if x == 6:
        return Query('a."offset", b."offset"', None, ['a."offset"', 'b."offset"'], None,
                     src='{T} AS a JOIN {T} AS b ON b.key = a.key AND b."offset" %s a."offset"'
                     % r.choice([">", "<", "!=", ">="]), fixed=True)
    if x == 7:
        return Query('a."offset", b.time', None, ['a."offset"'], None,
                     src='{T} AS a JOIN {T} AS b ON b."offset" = a."offset" %s' % r.choice(["+ 1", "- 1", "* 2"]),
                     fixed=True)
    return Query('a."offset", (SELECT count(*) FROM {T} AS b WHERE b.key = a.key AND b."offset" <= a."offset")',
                 ("leaf", 'a."offset" %s %s' % (r.choice(["<", ">="]), o())), ['a."offset"'], None,
                 src="{T} AS a", fixed=True)


# ---- running SQL against both tables ----

def norm(v):
    """Results compared by type and value (a TEXT 'a' is not a BLOB x'61')."""
    if isinstance(v, Text):
        return ("T", bytes(v))
    if isinstance(v, bytes):
        return ("B", v)
    if isinstance(v, float):
        return ("R", v)
    if isinstance(v, int):
        return ("I", v)
    return ("N", None)


class Text(bytes):
    """A TEXT value as its bytes (possibly not UTF-8)."""


def show(rows, limit=12):
    def one(v):
        if v[0] == "T":
            return lit(v[1].decode("utf-8", "replace"))
        if v[0] == "B":
            return lit(v[1])
        return lit(v[1])
    s = ["(" + ", ".join(one(v) for v in row) + ")" for row in rows[:limit]]
    more = " ... %d rows" % len(rows) if len(rows) > limit else ""
    return "[" + ", ".join(s) + "]" + more


class Deadline:
    """Interrupts a statement that runs past STATEMENT_SECONDS (a scan that
    never ends still steps the VM); a watchdog thread ends the process if a
    statement is stuck where SQLite cannot interrupt it."""

    def __init__(self, conn, what):
        self.conn, self.what = conn, what
        self.timed_out = False

    def __enter__(self):
        self.end = time.monotonic() + STATEMENT_SECONDS

        def progress():
            if time.monotonic() > self.end:
                self.timed_out = True
                return 1
            return 0
        self.conn.set_progress_handler(progress, 1000)
        self.done = threading.Event()

        def watchdog():
            if not self.done.wait(STATEMENT_SECONDS * 6):
                print("statement stuck for %d s, not interruptible:\n%s" %
                      (STATEMENT_SECONDS * 6, self.what()), flush=True)
                os._exit(3)
        threading.Thread(target=watchdog, daemon=True).start()
        return self

    def __exit__(self, *a):
        self.done.set()
        self.conn.set_progress_handler(None, 0)


def run(conn, sql, cap=None, what=None):
    """("ok", [normalised rows]) or ("error", message). cap: at most this
    many rows are fetched (a scan that never ends)."""
    with Deadline(conn, what or (lambda: sql)) as d:
        try:
            cur = conn.execute(sql)
            rows = []
            while True:
                chunk = cur.fetchmany(256)
                if not chunk:
                    break
                rows.extend(chunk)
                if cap is not None and len(rows) > cap:
                    cur.close()
                    break
            return ("ok", [tuple(norm(v) for v in row) for row in rows])
        except sqlite3.Error as e:
            if d.timed_out:
                return ("error", "timeout: ran over %d s" % STATEMENT_SECONDS)
            return ("error", str(e))


def connect(module, path):
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.text_factory = Text
    conn.enable_load_extension(True)
    conn.load_extension(module)
    conn.enable_load_extension(False)
    return conn


def msort(rows):
    return sorted(rows, key=repr)


def compare_query(conn, q, counters=None, ev="ev", pl="pl"):
    """Runs q on both tables. None if they agree, else a description."""
    sp = q.sql(pl)
    sv = q.sql(ev)
    plain = run(conn, sp)
    kind = q.kind()
    full = None
    if plain[0] == "ok" and kind == "subset":
        full = run(conn, q.sql(pl, with_limit=False))
        if full[0] != "ok":
            kind = "ordered"   # no unlimited answer to pick from: compare as is
            full = None
    if full:
        cap = len(full[1]) + 1
    else:
        cap = len(plain[1]) + 1 if plain[0] == "ok" else 100000
    ours = run(conn, sv, cap=cap)
    if plain[0] == "error" and ours[0] == "error":
        if counters is not None:
            counters["both_errors"] = counters.get("both_errors", 0) + 1
        return None
    if plain[0] == "ok" and ours[0] == "error" and time_text_refusal(ours[1], sv):
        if counters is not None:
            counters["time_text"] = counters.get("time_text", 0) + 1
        return None
    if plain[0] != ours[0]:
        return "plain table: %s\nklevdb table: %s" % (
            plain[1] if plain[0] == "error" else "%d rows %s" % (len(plain[1]), show(plain[1])),
            ours[1] if ours[0] == "error" else "%d rows %s" % (len(ours[1]), show(ours[1])))
    p, o = plain[1], ours[1]
    if kind == "ordered":
        ok = p == o
    elif kind == "multiset":
        ok = msort(p) == msort(o)
    else:
        ok = len(o) == len(p) and not multiset_minus(o, full[1])
    if ok:
        return None
    what = ("rows in order" if kind == "ordered" else "rows (any order)" if kind == "multiset"
            else "%d rows of the %d without LIMIT (no fixed order)" % (len(p), len(full[1])))
    return "expected %s: %d rows %s\nklevdb table: %d rows %s" % (what, len(p), show(p), len(o), show(o))


def multiset_minus(a, b):
    left = {}
    for row in b:
        left[repr(row)] = left.get(repr(row), 0) + 1
    extra = []
    for row in a:
        k = repr(row)
        if left.get(k, 0) > 0:
            left[k] -= 1
        else:
            extra.append(row)
    return extra


# ---- the two tables ----

class Pair:
    """A klevdb table "ev" on a store in dir and a plain table "pl" with the
    same rows, in one database (a file, so that it can be reopened). A
    second pair in the same database (n = "2": ev2, pl2 on r2.d) shares its
    connection and log."""

    def __init__(self, module, workdir, kc, vc, rollover="1KB", key_index=1, time_index=1,
                 fmt="v2", n="", conn=None, log=None):
        self.module, self.kc, self.vc = module, kc, vc
        self.ev, self.pl, self.seq = "ev" + n, "pl" + n, "seq" + n
        self.db = os.path.join(workdir, "db.sqlite")
        self.store = os.path.join(workdir, "r%s.d" % n)
        self.create_args = "key=%s, value=%s, rollover=%s, key_index=%d, time_index=%d, format=%s" % (
            lit(kc), lit(vc), lit(rollover), key_index, time_index, lit(fmt))
        self.log = [] if log is None else log   # the statements run, as a sqlite3 shell script
        self.conn = conn or connect(module, self.db)
        self.exec_both("CREATE VIRTUAL TABLE %s USING klevdb(dir=%s, %s)" % (self.ev, lit(self.store), self.create_args))
        types = {bytes(r[1]).decode(): bytes(r[2]).decode()
                 for r in self.conn.execute("PRAGMA table_info(%s)" % self.ev)}
        self.conn.execute('CREATE TABLE %s("offset" INTEGER PRIMARY KEY, time %s, key %s, value %s)'
                          % (self.pl, types["time"], types["key"], types["value"]))
        self.conn.execute("CREATE TABLE %s(n INTEGER)" % self.seq)
        self.conn.execute("INSERT INTO %s VALUES (0)" % self.seq)
        self.types = types
        self.follower = None  # a readonly=1 table on the same store (see follow())
        self.refused = 0     # INSERTs of other types' values refused (model 1)
        self.time_text = 0   # DELETEs refused for time vs TEXT (model 7)

    def exec_both(self, sql):
        """A statement on the connection (both tables see it); logged."""
        self.log.append(sql.replace(lit(self.store), lit(os.path.basename(self.store))))
        return run(self.conn, sql)

    def reopen(self):
        self.log.append("-- close the connection and open it again")
        self.conn.close()
        self.conn = connect(self.module, self.db)

    def follow(self):
        """A readonly=1 table on the store too: outside transactions it must
        hold what the plain table holds (it sees commits, not pending rows)."""
        self.follower = self.ev + "_ro"
        # The indexes named: a V1 store does not record them.
        r = self.exec_both("CREATE VIRTUAL TABLE %s USING klevdb(dir=%s, readonly=1, %s)"
                           % (self.follower, lit(self.store), self.create_args))
        return "CREATE VIRTUAL TABLE ... readonly=1 failed: %s" % r[1] if r[0] == "error" else None

    def recreate(self):
        """DROP TABLE and CREATE again on the same store (its rows stay)."""
        r = self.exec_both("DROP TABLE " + self.ev)
        if r[0] == "error":
            return "DROP TABLE failed: %s" % r[1]
        r = self.exec_both("CREATE VIRTUAL TABLE %s USING klevdb(dir=%s, %s)" % (self.ev, lit(self.store), self.create_args))
        return "CREATE VIRTUAL TABLE on the store again failed: %s" % r[1] if r[0] == "error" else None

    def insert(self, rows):
        """rows: [(time, key, value)] as inserted. Returns a failure text or None."""
        vals = ", ".join("(%s, %s, %s)" % (lit(t), lit(k), lit(v)) for t, k, v in rows)
        sv = "INSERT INTO %s(time, key, value) VALUES %s" % (self.ev, vals)
        self.log.append(sv)
        before = self.conn.total_changes
        ours = run(self.conn, sv)
        if ours[0] == "error":
            if ours[1].startswith("klevdb: ") and not all(
                    natural(self.kc, k) and natural(self.vc, v) and t != INT64_MIN for t, k, v in rows):
                self.refused += 1
                return None
            return "INSERT failed on the klevdb table: %s" % ours[1]
        got = self.conn.execute("SELECT last_insert_rowid(), (SELECT n FROM %s)" % self.seq).fetchone()
        pv = ", ".join("((SELECT n FROM %s) + %d, %s, %s, %s)" % (
            self.seq, i, lit(t), lit(plain_value(self.kc, k)), lit(plain_value(self.vc, v)))
            for i, (t, k, v) in enumerate(rows))
        plain = run(self.conn, 'INSERT INTO %s("offset", time, key, value) VALUES %s' % (self.pl, pv))
        if plain[0] == "error":
            return "INSERT failed on the plain table: %s" % plain[1]
        run(self.conn, "UPDATE %s SET n = n + %d" % (self.seq, len(rows)))
        if self.conn.total_changes - before != 2 * len(rows) + 1:
            return "INSERT of %d rows changed %d rows of the klevdb table" % (
                len(rows), self.conn.total_changes - before - len(rows) - 1)
        if got[0] != got[1] + len(rows) - 1:
            return "last_insert_rowid() is %d, the offsets handed out should end at %d" % (
                got[0], got[1] + len(rows) - 1)
        return None

    def copy(self, where):
        """INSERT INTO the table SELECT its own rows (WHERE where) on both:
        a read of the table, its pending rows too, while it is written."""
        w = lambda t: where.replace("{T}", t)
        sv = 'INSERT INTO %s(time, key, value) SELECT time, key, value FROM %s WHERE %s ORDER BY "offset"' % (
            self.ev, self.ev, w(self.ev))
        self.log.append(sv)
        r2 = run(self.conn, sv)
        n2 = self.conn.execute("SELECT changes()").fetchone()[0]
        if r2[0] == "error" and time_text_refusal(r2[1], sv):
            self.time_text += 1
            return None
        got = self.conn.execute("SELECT last_insert_rowid(), (SELECT n FROM %s)" % self.seq).fetchone()
        # The plain rows get the offsets the store hands out, in offset order.
        r1 = run(self.conn, 'INSERT INTO %s("offset", time, key, value) SELECT (SELECT n FROM %s) - 1 + '
                 'row_number() OVER (ORDER BY "offset"), time, key, value FROM %s WHERE %s ORDER BY "offset"'
                 % (self.pl, self.seq, self.pl, w(self.pl)))
        n1 = self.conn.execute("SELECT changes()").fetchone()[0]
        if r1[0] != r2[0]:
            return "INSERT ... SELECT: plain table %s, klevdb table %s" % (
                r1[1] if r1[0] == "error" else "ok", r2[1] if r2[0] == "error" else "ok")
        if r1[0] == "error":
            return None
        run(self.conn, "UPDATE %s SET n = n + %d" % (self.seq, n1))
        if n1 != n2:
            return "INSERT ... SELECT: the plain table copied %d rows, the klevdb table %d" % (n1, n2)
        if n2 and got[0] != got[1] + n2 - 1:
            return "INSERT ... SELECT: last_insert_rowid() is %d, the offsets handed out should end at %d" % (
                got[0], got[1] + n2 - 1)
        return None

    def delete(self, where):
        """DELETE ... WHERE on both; the count of rows deleted must agree."""
        sv = "DELETE FROM %s WHERE %s" % (self.ev, where.replace("{T}", self.ev))
        self.log.append(sv)
        sp = 'DELETE FROM %s WHERE "offset" IN (SELECT "offset" FROM %s WHERE %s)' % (
            self.pl, self.pl, where.replace("{T}", self.pl))     # model 8
        plain = run(self.conn, "SELECT count(*) FROM %s WHERE %s" % (self.pl, where.replace("{T}", self.pl)))
        r2 = run(self.conn, sv)
        n2 = self.conn.execute("SELECT changes()").fetchone()[0]
        if r2[0] == "error" and time_text_refusal(r2[1], sv):
            self.time_text += 1
            return None      # refused (model 7): the plain table keeps its rows too
        r1 = run(self.conn, sp)
        n1 = self.conn.execute("SELECT changes()").fetchone()[0]
        if r1[0] != r2[0]:
            return "DELETE: plain table %s, klevdb table %s" % (r1[1] if r1[0] == "error" else "ok",
                                                                 r2[1] if r2[0] == "error" else "ok")
        if r1[0] == "ok" and r2[0] == "ok" and n1 != n2:
            return "DELETE: the plain table deleted %d rows, the klevdb table %d (count before: %s)" % (
                n1, n2, plain[1])
        return None

    def contents(self, table=None):
        """None if both tables hold the same rows, else a description."""
        p = run(self.conn, 'SELECT "offset", time, key, value FROM %s ORDER BY "offset"' % self.pl)
        o = run(self.conn, 'SELECT "offset", time, key, value FROM %s ORDER BY "offset"' % (table or self.ev),
                cap=len(p[1]) + 1 if p[0] == "ok" else None)
        if p == o:
            return None
        diff = ""
        if p[0] == o[0] == "ok":
            diff = "\nonly in the plain table: %s\nonly in the klevdb table: %s" % (
                show(multiset_minus(p[1], o[1])), show(multiset_minus(o[1], p[1])))
        return "contents of %s differ:\nplain table: %s\nklevdb table: %s%s" % (
            table or self.ev, p[1] if p[0] == "error" else show(p[1]), o[1] if o[0] == "error" else show(o[1]), diff)

    def close(self):
        try:
            self.conn.close()
        except sqlite3.Error:
            pass


def fresh_dir(base, name):
    d = os.path.join(base, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def repro(module_hint, script):
    lines = [".load %s" % module_hint]
    lines += [line if line.startswith("--") else line + ";" for line in script]
    return "\n".join(lines)


class Tables(list):
    """The pairs of a case (one or two), on one connection and one log."""

    def __init__(self, module, d, create, log=None):
        super().__init__()
        for i, c in enumerate(create if isinstance(create, list) else [create]):
            if not self:
                self.append(Pair(module, d, log=log, **c))
            else:
                self.append(Pair(module, d, n=str(i + 1), conn=self.conn, log=self.log, **c))

    conn = property(lambda self: self[0].conn)
    log = property(lambda self: self[0].log)

    def exec_both(self, sql):
        return self[0].exec_both(sql)

    def reopen(self):
        self[0].reopen()
        for p in self[1:]:
            p.conn = self[0].conn

    def contents(self):
        for p in self:
            f = p.contents()
            if not f and p.follower and not self.conn.in_transaction:
                f = p.contents(p.follower)
            if f:
                return f
        return None

    def close(self):
        self[0].close()


def ddmin(items, fails):
    """The classic delta debugging minimisation: a smaller list for which
    fails() still holds."""
    n = 2
    while len(items) >= 2:
        chunk = max(1, len(items) // n)
        reduced = False
        for i in range(0, len(items), chunk):
            cand = items[:i] + items[i + chunk:]
            if fails(cand):
                items = cand
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            if n >= len(items):
                break
            n = min(len(items), n * 2)
    if len(items) == 1 and fails([]):
        return []
    return items




# ---- steps, replay and shrinking ----
#
# A case is the table's creation arguments and a list of steps:
#   ("insert", [(time, key, value), ...])   one INSERT statement
#   ("delete", tree)                        DELETE ... WHERE on both tables
#   ("copy", tree)                          INSERT INTO t SELECT ... FROM t WHERE
#   ("sql", text)                           one statement for the connection
#                                           (BEGIN, SAVEPOINT ...); its errors
#                                           are the same for both tables
#   ("reopen",)                             close the connection, open again
#   ("recreate",)                           DROP TABLE ev, CREATE it again
#   ("follow",)                             a readonly=1 table on ev's store,
#                                           compared outside transactions
#   ("query", Query)                        a SELECT compared on both
#   ("contents",)                           the full contents compared

SQLITE_TX_ERRORS = ("cannot start a transaction within a transaction",
                    "cannot commit - no transaction is active",
                    "cannot rollback - no transaction is active", "no such savepoint")


def apply_step(tables, step, counters=None):
    """Runs one step; a failure text or None. Steps that name a table end
    with its index in tables (0 if left out)."""
    k = step[0]
    pair = tables[step[-1] if k in ("insert", "delete", "copy", "query", "recreate", "follow") and isinstance(step[-1], int) else 0]
    if k == "insert":
        return pair.insert(step[1])
    if k == "delete":
        return pair.delete(render(step[1]))
    if k == "copy":
        return pair.copy(render(step[1]))
    if k == "sql":
        r = tables.exec_both(step[1])
        if r[0] == "error":
            # SQLite's own refusals (no transaction, no such savepoint) are
            # the same for both tables; any other error is the klevdb table's.
            if not r[1].startswith(SQLITE_TX_ERRORS):
                return "%s failed: %s" % (step[1], r[1])
            if counters is not None:
                counters["sql_errors"] = counters.get("sql_errors", 0) + 1
        return None
    if k == "reopen":
        tables.reopen()
        return None
    if k == "recreate":
        return pair.recreate()
    if k == "follow":
        return pair.follow()
    if k == "query":
        pair.log.append(step[1].sql(pair.ev))
        return compare_query(pair.conn, step[1], counters, pair.ev, pair.pl)
    if k == "contents":
        return tables.contents()
    raise ValueError(step)


def run_case(script, module, base, payload, nsteps, slack):
    """Runs `script --replay MODULE BASE CASE` in a child process on the
    pickled payload, whose steps the child logs to CASE.log as it goes.
    Returns (the child's JSON result, None, None, None) when it finished,
    else (None, what went wrong with what it printed, the index of the step
    it died at, the log so far): a crash or a hang is a failure too."""
    case = os.path.join(base, "case.pickle")
    with open(case, "wb") as f:
        pickle.dump(payload, f)
    try:
        p = subprocess.run([sys.executable, script, "--replay", module, base, case],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=STATEMENT_SECONDS * 6 + slack + 2 * nsteps)
        out, rc = p.stdout.decode("utf-8", "replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode("utf-8", "replace"), "timeout"
    last = out.strip().split("\n")[-1] if out.strip() else ""
    if rc == 0 and last.startswith("{"):
        return json.loads(last), None, None, None
    # Died: the log written so far says where.
    log, index = [], 0
    with open(case + ".log", encoding="utf-8", errors="replace") as f:
        for line in f.read().split("\n")[:-1]:
            if line.startswith("\x00"):
                index = int(line[1:])
            else:
                log.append(line.replace("\\n", "\n"))
    if rc == "timeout":
        why = "the process hung (no answer in its time limit)"
    elif isinstance(rc, int) and rc < 0:
        why = "the process died of signal %d (%s)" % (-rc, signal.Signals(-rc).name)
    else:
        why = "the process failed (exit code %s)" % rc
    lines = out.strip().split("\n")
    first = [i for i, l in enumerate(lines) if any(w in l for w in (
        "runtime error", "ERROR: AddressSanitizer", "statement stuck", "Traceback"))]
    tail = "\n".join(lines[first[0]:first[0] + 8] if first else lines[-8:])
    return None, "%s at this step%s" % (why, ("; it printed:\n" + tail) if tail else ""), index, log


def replay(module, base, create, steps, check_each=False, counters=None):
    """(failure text or None, index of the failing step, the log) of the
    steps run on a new pair in a fresh folder, in a child process (a crash
    or a hang is a failure too); check_each: the contents are compared
    after every step. counters: updated with the child's counts."""
    r, why, index, log = run_case(os.path.abspath(__file__), module, base,
                                  (create, steps, check_each), len(steps), 10)
    if r is None:
        return why, index, log
    if counters is not None:
        for k, v in r["counters"].items():
            counters[k] = counters.get(k, 0) + v
    return r["failure"], r["index"], r["log"]


class _Sink(list):
    """A log that also goes to a file as it grows, so that it survives a crash."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def append(self, line):
        super().append(line)
        self.f.write(line.replace("\n", "\\n") + "\n")
        self.f.flush()


def _replay_child(module, base, case):
    with open(case, "rb") as f:
        create, steps, check_each = pickle.load(f)
    counters = {}
    sink = open(case + ".log", "w", encoding="utf-8")
    d = fresh_dir(base, "replay")
    log = _Sink(sink)        # from the first CREATE on, in case it crashes
    pair = Tables(module, d, create, log)
    failure, index = None, len(steps)
    for i, s in enumerate(steps):
        sink.write("\x00%d\n" % i)
        sink.flush()
        f = apply_step(pair, s, counters)
        if not f and check_each:
            f = pair.contents()
        counters["steps"] = counters.get("steps", 0) + 1
        counters[s[0]] = counters.get(s[0], 0) + 1
        if pair.conn.in_transaction:
            counters["in_tx"] = counters.get("in_tx", 0) + 1
        if f:
            failure, index = f, i
            break
    counters["refused"] = sum(p.refused for p in pair)
    counters["time_text"] = counters.get("time_text", 0) + sum(p.time_text for p in pair)
    pair.close()
    print(json.dumps({"failure": failure, "index": index, "log": list(log), "counters": counters}))
    return 0


def shrink(module, base, create, steps, budget_s=90, check_each=False):
    """A short list of steps that still fails (any difference), ending at
    the first failing step. Bounded in time: what is left is still a repro."""
    end = time.monotonic() + budget_s
    f, i, _ = replay(module, base, create, steps, check_each)
    if not f:
        return steps, None
    steps = steps[:i + 1]

    def fails(cand):
        if time.monotonic() > end:
            return False
        ff, _, _ = replay(module, base, create, cand + [steps[-1]], check_each)
        return ff is not None
    head = ddmin(steps[:-1], fails)
    # Then one row per INSERT, and again.
    alt = []
    for s in head:
        alt += [("insert", [row]) + s[2:] for row in s[1]] if s[0] == "insert" else [s]
    if len(alt) > len(head) and fails(alt):
        head = ddmin(alt, fails)
    last = steps[-1]
    if last[0] in ("query", "delete", "copy"):
        changed = True
        while changed and time.monotonic() < end:
            changed = False
            cands = ([("query", q) + last[2:] for q in last[1].shrinks()] if last[0] == "query"
                     else [(last[0], t) + last[2:] for t in subtrees(last[1])])
            for cand in cands:
                ff, _, _ = replay(module, base, create, head + [cand], check_each)
                if ff:
                    last, changed = cand, True
                    break
    steps = head + [last]
    f, i, log = replay(module, base, create, steps, check_each)
    if not f:
        return steps, None
    return steps[:i + 1], (f, log)


def report(name, seed_text, steps, result, module_hint="build/ext/klevdb"):
    f, log = result
    print("FAIL - %s %s: %s" % (name, seed_text, f.replace("\n", "\n    ")))
    print("repro (%d steps; run in the sqlite3 shell, and the same on a plain table of the same rows):"
          % len(steps))
    print(repro(module_hint, log))
    sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--replay":
        import fuzzlib   # one module for the pickled steps' classes and ours
        sys.exit(fuzzlib._replay_child(*sys.argv[2:]))
    sys.exit("usage: fuzzlib.py --replay MODULE WORKDIR CASE (used by fuzz_query.py, fuzz_tx.py)")


def fuzz_args(argv, name, flag, default_total, doc):
    """The command line every fuzzer takes: MODULE WORKDIR [STEPS [SEED]]
    [FLAG N] (replay round or episode N alone). Returns (module, work dir
    made for this run, total, seed, only)."""
    args = [a for a in argv[1:] if not a.startswith("--")]
    only = None
    if flag in argv:
        k = argv.index(flag)
        only = int(argv[k + 1])
        args = [a for a in args if a != argv[k + 1]]
    if len(args) < 2:
        sys.exit(doc)
    module = os.path.abspath(args[0])
    if not os.path.exists(module):
        sys.exit("%s: %s does not exist (build first)" % (name, module))
    total = int(args[2]) if len(args) > 2 else default_total
    seed = int(args[3]) if len(args) > 3 else int(time.time())
    os.makedirs(args[1], exist_ok=True)
    work = tempfile.mkdtemp(prefix=name + ".", dir=os.path.abspath(args[1]))
    return module, work, total, seed, only
