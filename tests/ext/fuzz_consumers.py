#!/usr/bin/python3
"""Stateful differential fuzzer of named consumers and declared retention:
random programs of INSERTs, DELETEs, reads through the hidden consumer
column, klevdb_commit, klevdb_reset, klevdb_consumer_drop and klevdb_trim,
inside and outside transactions and savepoints at every depth (ROLLBACK
TO, RELEASE, ROLLBACK, a reopen that rolls back), on a klevdb table "ev"
that declares retention (max_count, max_bytes, max_age, keep_unconsumed,
with a small rollover so that segments are many) or none.

The model lives in the same database, so that it commits and rolls back
with the table: a plain table "pl" of the messages (as fuzz_tx.py keeps
it), "seq" (the next offset), "sizes" (what each message costs on disk:
klevdb_size, from its key and value as read back), "positions(name, next)"
(what klevdb_commit, klevdb_reset and klevdb_consumer_drop mean) and
"pend" (rows deleted in the open transaction). Outside transactions the
fuzzer also keeps the committed messages, which is what the store holds.

After every step it compares:
  - the rows of ev and pl;
  - klevdb_consumers('ev'): position (the transaction's), lag (committed
    messages at or after it), lag_bytes (klevdb_size of those in the
    position's segment, later segments whole: their log and index), the
    time of the oldest unconsumed one, committed_at (between the clock
    before and after the call that wrote it);
  - klevdb_stat('ev'): segments, messages, bytes, next and oldest offset,
    its consumers and its retention record;
and each read and call against the model: the rows of
"WHERE consumer = X AND ..." against "WHERE "offset" >= (X's next, 0 if
none) AND ..." on pl (X NULL matches nothing; any other X that is not a
non-empty TEXT is an error), the value or the error of each call.

Retention is modelled at each commit that writes the table: the segments
are listed from the store's directory before it, their messages and bytes
come from the committed messages, and the oldest segments that lie
entirely past a limit (counting the transaction's rows as the newest),
never the head, and with keep_unconsumed=1 none that reaches the smallest
position, must be gone after it, and recorded in klevdb_stat. The fuzzer
also checks, from the state after the commit, that keep_unconsumed kept
every message at or after the smallest position and that the messages
newer than the oldest segment left are fewer than max_count (unless
keep_unconsumed held it or it was the head).

usage: fuzz_consumers.py MODULE WORKDIR [STEPS [SEED]]

On a difference it prints the seed, a shrunk repro and exits 1.
"--episode SEED" reruns one episode, as printed.
"""
import bisect
import datetime
import json
import os
import pickle
import random
import re
import shutil
import sys
import tempfile
import time

import fuzzlib
from fuzzlib import Gen, Query, lit, run, show, connect, compare_query, INT64_MAX, INT64_MIN
from fuzz_query import random_rows
from fuzz_tx import TxState, tx_statement

CODECS = ["text", "blob"]    # whose stored bytes are what reads back (sizes)
NAMES = ["c1", "c1", "c2", "c2", "c3", "C1", "o'k", "\u00e9"]
BAD_NAMES = [None, "", 5, -1, b"c1", 2.5]
TABLES = ["ev"] * 12 + ["EV", "main.ev", '"ev"', "nope", None, 5, b"ev"]
WORDS = ["oldest", "end", "END", "Oldest", "newest", "abc", "5", "", " end", "2023-02-30"]
REC_HDR, REC_TRAILER, FILE_HDR = 28, 8, 8
SEG_RE = re.compile(r"^(\d{20})\.log$")
EPOCH = datetime.datetime(1970, 1, 1)
SQLITE_TX_ERRORS = fuzzlib.SQLITE_TX_ERRORS
STATEMENT_SECONDS = fuzzlib.STATEMENT_SECONDS


def now_us():
    return time.time_ns() // 1000


def iso(t, style):
    """(text, the microseconds it means) for time t written in one of the
    ISO-8601 forms klevdb_reset takes, or None out of range."""
    try:
        dt = EPOCH + datetime.timedelta(microseconds=t)
    except OverflowError:
        return None
    day = "%04d-%02d-%02d" % (dt.year, dt.month, dt.day)
    hms = "%02d:%02d:%02d" % (dt.hour, dt.minute, dt.second)
    whole = t - dt.microsecond
    if style == 0:
        return "%sT%s.%06dZ" % (day, hms, dt.microsecond), t
    if style == 1:
        return day, whole - (dt.hour * 3600 + dt.minute * 60 + dt.second) * 1000000
    if style == 2:
        h = dt + datetime.timedelta(hours=1)
        if h.year > 9999:
            return None
        return "%04d-%02d-%02dT%02d:%02d:%02d,%06d+01:00" % (
            h.year, h.month, h.day, h.hour, h.minute, h.second, h.microsecond), t
    return "%s %s" % (day, hms), whole


# ---- generating episodes ----

def create_args(r):
    kc, vc = r.choice(CODECS), r.choice(CODECS)
    c = dict(kc=kc, vc=vc, rollover=r.choice(["150", "256", "400", "1KB"]),
             key_index=int(r.random() < 0.85), time_index=int(r.random() < 0.85),
             fmt="v1" if r.random() < 0.15 else "v2", ro=r.random() < 0.3)
    if r.random() < 0.7:
        limits = r.sample(["max_count", "max_bytes", "max_age"], r.choice([1, 1, 2]))
        if "max_count" in limits:
            c["max_count"] = r.choice([1, 2, 3, 5, 10, 20])
        if "max_bytes" in limits:
            c["max_bytes"] = r.choice(["200", "500", "1KB", "4KB"])
        if "max_age" in limits:
            c["max_age"] = r.choice(["1d", "1h"])
            c["time_index"] = 1
    c["keep_unconsumed"] = int(r.random() < 0.5)
    return c


def name_arg(r, bad=0.08):
    return r.choice(BAD_NAMES) if r.random() < bad else r.choice(NAMES)


def offset_spec(r):
    """An offset given relative to the state it meets (so that a shrunk
    program still means something), or a literal of any type."""
    x = r.random()
    if x < 0.45:
        return ("pos", r.choice([0, 1, 1, 2, 3, 5, 8, -1, -2]))
    if x < 0.65:
        return ("end", r.choice([0, 0, -1, 1]))
    if x < 0.8:
        return ("oldest", r.choice([0, 0, -1, 1]))
    return ("lit", r.choice([None, 2.5, 5.0, "5", b"\x05", -1, INT64_MAX, 0, 3, "x"]))


def reset_spec(r):
    x = r.random()
    if x < 0.25:
        return ("word", r.choice(WORDS))
    if x < 0.5:
        return ("time", r.randrange(1 << 30), r.choice([0, 0, 1, 1, 1, 0, 0, -1]), r.randrange(4))
    if x < 0.6:
        return ("tlit", r.choice(fuzzlib.TIMES) + r.choice([0, 1, -1]), r.randrange(4))
    return offset_spec(r)


def extra_leaf(g):
    r = g.r
    x = r.randrange(12)
    o = lambda: g.operand("offset")
    if x == 0:
        return "key = " + g.operand("key")
    if x == 1:
        return "key IN (%s, %s, %s)" % (g.operand("key"), g.operand("key"), g.operand("key"))
    if x in (2, 3):
        return "time %s %s" % (r.choice([">=", ">", "<", "<=", "="]), g.operand("time"))
    if x in (4, 5, 6):
        return '"offset" %s %s' % (r.choice([">=", ">", "<", "<=", "=", "!="]), o())
    if x == 7:
        return '"offset" IN (%s, %s, %s)' % (o(), o(), o())
    if x == 8:
        return '"offset" BETWEEN %s AND %s' % (o(), o())
    if x == 9:
        return "{WAIT0}"
    if x == 10:
        return "value IS NOT NULL"
    return '"offset" %% 2 = %d' % r.randrange(2)


def read_step(g, ro):
    r = g.r
    name = name_arg(r, 0.15) if r.random() < 0.95 else None
    where = ("leaf", "{CONS}")
    for _ in range(r.choice([0, 1, 1, 1, 2, 2, 3])):
        where = ("and", where, ("leaf", extra_leaf(g))) if r.random() < 0.7 else \
            ("and", ("leaf", extra_leaf(g)), where)
    cols = r.choice(["*", "*", '"offset"', '"offset", key', "count(*)", '"offset", {CCOL}',
                     'max("offset"), min("offset")', "time, value"])
    order = r.choice([[], ['"offset"'], ['"offset"'], ['"offset" DESC'], ['"offset" DESC'],
                      ["time", '"offset"']])
    if cols.startswith(("count", "max")):
        order = []
    limit = g.limit() if r.random() < 0.7 else (r.choice(["1", "2", "5", "100"]), None)
    table = "evro" if ro and r.random() < 0.05 else "ev"
    return ("read", table, name, cols, where, order, limit)


def episode_case(eseed, nsteps):
    r = random.Random(eseed)
    create = create_args(r)
    g = Gen(r, create["kc"], create["vc"])
    g.nrows = 0
    st = TxState()
    steps = []
    for _ in range(nsteps):
        x = r.random()
        if x < 0.20:
            s = ("sql", tx_statement(r, st))
            st.apply(s[1])
        elif x < 0.42:
            n = r.choice([1, 1, 1, 2, 3, 5, 8, 12, 30])
            s = ("insert", random_rows(r, g.kc, g.vc, n))
            g.nrows += n
        elif x < 0.47:
            s = ("delete", g.where_tree())
        elif x < 0.65:
            s = read_step(g, create["ro"])
        elif x < 0.79:
            s = ("commit", r.choice(TABLES + ["evro"] if create["ro"] else TABLES), name_arg(r), offset_spec(r))
        elif x < 0.88:
            s = ("reset", r.choice(TABLES), name_arg(r), reset_spec(r))
        elif x < 0.92:
            s = ("drop", r.choice(TABLES), name_arg(r))
        elif x < 0.95 and not st.in_tx:
            s = ("trim", r.choice(["offset", "count"]), r.choice([("pos", 0), ("end", -3), ("oldest", 1),
                                                                  ("lit", 2), ("lit", 0), ("lit", -1)]))
        elif x < 0.97:
            s = ("reopen",)
            st = TxState()
        else:
            s = ("stat",)
        steps.append(s)
    return create, steps


# ---- running a program against the model ----

class Failure(Exception):
    pass


class Runner:
    def __init__(self, module, d, create, log):
        self.module, self.create, self.log = module, create, log
        self.db = os.path.join(d, "db.sqlite")
        self.store = os.path.join(d, "r.d")
        self.kc, self.vc = create["kc"], create["vc"]
        self.v2 = create["fmt"] == "v2"
        self.isz = 16 + 8 * create["key_index"] + 8 * create["time_index"]
        self.hdr = 2 * FILE_HDR if self.v2 else 0
        self.max_count = create.get("max_count", 0)
        self.max_bytes = {"200": 200, "500": 500, "1KB": 1024, "4KB": 4096}.get(create.get("max_bytes"), 0)
        self.max_age = {"1d": 86400 * 10**6, "1h": 3600 * 10**6}.get(create.get("max_age"), 0)
        self.keep = create["keep_unconsumed"]
        self.retention = bool(self.max_count or self.max_bytes or self.max_age)
        self.removed = [0, 0]           # messages, segments
        self.last = None                # (clock before, after, messages, segments)
        self.conn = connect(module, self.db)
        args = "dir='r.d', key=%s, value=%s, rollover=%s, key_index=%d, time_index=%d, format=%s" % (
            lit(self.kc), lit(self.vc), lit(create["rollover"]), create["key_index"],
            create["time_index"], lit(create["fmt"]))
        for k in ("max_count", "max_bytes", "max_age"):
            if k in create:
                args += ", %s=%s" % (k, lit(create[k]))
        args += ", keep_unconsumed=%d" % self.keep
        self.args = args
        self.ev("CREATE VIRTUAL TABLE ev USING klevdb(%s)" % args.replace("'r.d'", lit(self.store)), must=True)
        if create.get("ro"):
            # The indexes named: a V1 store does not record them.
            self.ev("CREATE VIRTUAL TABLE evro USING klevdb(dir=%s, readonly=1, key=%s, value=%s, "
                    "key_index=%d, time_index=%d)" % (lit(self.store), lit(self.kc), lit(self.vc),
                                                      create["key_index"], create["time_index"]), must=True)
        types = {bytes(r[1]).decode(): bytes(r[2]).decode() for r in self.conn.execute("PRAGMA table_info(ev)")}
        for sql in ('CREATE TABLE pl("offset" INTEGER PRIMARY KEY, time %s, key %s, value %s)' % (
                        types["time"], types["key"], types["value"]),
                    "CREATE TABLE seq(n INTEGER)", "INSERT INTO seq VALUES (0)",
                    'CREATE TABLE sizes("offset" INTEGER PRIMARY KEY, size INTEGER)',
                    "CREATE TABLE positions(name TEXT PRIMARY KEY, next INTEGER, at_lo INTEGER, at_hi INTEGER)",
                    "CREATE TABLE pend(dels INTEGER)", "INSERT INTO pend VALUES (0)"):
            self.model(sql)
        self.snapshot()

    # -- SQL on the table (logged) and on the model (not: the repro is the table's) --
    def ev(self, sql, must=False):
        self.log.append(sql.replace(lit(self.store), "'r.d'"))
        r = run(self.conn, sql)
        if must and r[0] == "error":
            raise Failure("%s failed: %s" % (sql, r[1]))
        return r

    def model(self, sql, args=()):
        try:
            return self.conn.execute(sql, args).fetchall()
        except Exception as e:
            raise Failure("the model's %s failed: %s" % (sql, e))

    def one(self, sql, args=()):
        return self.model(sql, args)[0][0]

    def note(self, text):
        self.log.append("-- " + text.replace("\n", "\n-- "))

    # -- the model's state --
    def snapshot(self):
        """The committed messages: outside a transaction, what pl holds."""
        rows = self.model('SELECT p."offset", p.time, s.size FROM pl p JOIN sizes s USING ("offset") '
                          'ORDER BY p."offset"')
        self.c_off = [r[0] for r in rows]
        self.c_time = {r[0]: r[1] for r in rows}
        self.c_size = {r[0]: r[2] for r in rows}
        self.c_next = self.one("SELECT n FROM seq")

    def end(self):
        return self.one("SELECT n FROM seq")

    def oldest(self):
        """The oldest message the transaction sees; the end if none."""
        o = self.one('SELECT min("offset") FROM pl')
        return self.end() if o is None else o

    def position(self, name):
        r = self.model("SELECT next FROM positions WHERE name = ?", (name,)) if isinstance(name, str) else []
        return r[0][0] if r else None

    def consumers_min(self):
        lo, n = self.model("SELECT min(next), count(*) FROM positions")[0]
        return lo, n > 0

    def bases(self):
        return sorted(int(m.group(1)) for m in map(SEG_RE.match, os.listdir(self.store)) if m)

    def msize(self, klen, vlen):
        return REC_HDR + klen + vlen + (REC_TRAILER if self.v2 else 0) + self.isz

    def segments(self, bases):
        """[base, messages, bytes] of each committed segment."""
        out = []
        for i, b in enumerate(bases):
            hi = bases[i + 1] if i + 1 < len(bases) else INT64_MAX
            a, z = bisect.bisect_left(self.c_off, b), bisect.bisect_left(self.c_off, hi)
            out.append([b, z - a, self.hdr + sum(self.c_size[o] for o in self.c_off[a:z])])
        return out

    # -- retention --
    def pre_commit(self, in_tx):
        p = dict(bases=self.bases(), off=list(self.c_off), t0=now_us())
        p["segs"] = self.segments(p["bases"])
        if in_tx:
            e = self.end()
            p["n"] = e - self.c_next
            p["bytes"] = self.one('SELECT coalesce(sum(size), 0) FROM sizes WHERE "offset" >= ?', (self.c_next,))
            p["dels"] = self.one("SELECT dels FROM pend") > 0
        p["min"], p["any"] = self.consumers_min()
        return p

    def plan(self, p):
        """(first offset kept, segments dropped before keep_unconsumed held
        any back, after): retention's rule."""
        sg, drop = p["segs"], 0
        if len(sg) < 2:
            return None, 0, 0
        later_m, later_b = p["n"] + sum(s[1] for s in sg), p["bytes"] + sum(s[2] for s in sg)
        floor = None
        if self.max_age:
            cut = now_us() - self.max_age
            newer = [o for o in p["off"] if self.c_time[o] >= cut]
            floor = newer[0] if newer else self.c_next
        for i in range(len(sg) - 1):
            later_m -= sg[i][1]
            later_b -= sg[i][2]
            if ((self.max_count and later_m >= self.max_count) or
                    (self.max_bytes and later_b >= self.max_bytes) or
                    (self.max_age and sg[i + 1][0] <= floor)):
                drop = i + 1
        free = drop
        if drop and self.keep and p["any"]:
            while drop and sg[drop][0] > p["min"]:
                drop -= 1
        return sg[drop][0], free, drop

    def after_commit(self, p, what):
        """The transaction that p was taken before has committed: what
        retention must have dropped goes from the model too."""
        t1 = now_us()
        kept_from, free, drop = (None, 0, 0)
        ran = self.retention and (p["n"] or p["dels"])
        if ran:
            kept_from, free, drop = self.plan(p)
        if drop:
            msgs = sum(s[1] for s in p["segs"][:drop])
            segs = sum(1 for s in p["segs"][:drop] if s[1])
            if msgs:
                self.removed[0] += msgs
                self.removed[1] += segs
                self.last = (p["t0"], t1, msgs, segs)
                if self.keep and p["any"] and kept_from > p["min"]:
                    raise Failure("the model would drop up to %d past the smallest position %d" % (
                        kept_from, p["min"]))
                self.note("%s: retention drops offsets below %d (%d messages in %d segments)" % (
                    what, kept_from, msgs, segs))
                self.model('DELETE FROM pl WHERE "offset" < ?', (kept_from,))
        self.model("UPDATE pend SET dels = 0")
        self.snapshot()
        self.bounds_after(p, ran, free, drop)

    def bounds_after(self, p, ran, free, drop):
        """From the state after the commit: keep_unconsumed kept what it
        must, and max_count holds for the oldest segment left."""
        bases = self.bases()
        lo, anyc = self.consumers_min()
        if self.keep and anyc:
            want = self.one('SELECT count(*) FROM pl WHERE "offset" >= ?', (lo,))
            have = self.ev_count('"offset" >= %d' % lo)
            if have != want:
                raise Failure("keep_unconsumed: %d messages at or after the smallest position %d, "
                              "the model has %d" % (have, lo, want))
        if not ran or not self.max_count or len(bases) < 2 or free != drop:
            return
        pre = p["bases"]
        j = bisect.bisect_right(pre, bases[0]) - 1
        if j < 0 or j + 1 >= len(pre):
            return        # a new segment, or the head then: retention leaves it
        newer = self.ev_count('"offset" >= %d' % bases[1])
        if newer >= self.max_count:
            raise Failure("max_count=%d: after the commit %d messages are newer than the oldest "
                          "segment left (%d), which was not the head" % (self.max_count, newer, bases[0]))

    def ev_count(self, where):
        r = run(self.conn, "SELECT count(*) FROM ev WHERE " + where)
        if r[0] == "error":
            raise Failure("SELECT count(*) FROM ev failed: %s" % r[1])
        return r[1][0][0][1]

    # -- the steps --
    def step(self, s):
        k = s[0]
        in_tx = self.conn.in_transaction
        if k == "insert":
            return self.insert(s[1], in_tx)
        if k == "delete":
            return self.delete(fuzzlib.render(s[1]), in_tx)
        if k == "sql":
            w = s[1].split()[0]
            p = self.pre_commit(True) if in_tx and w in ("COMMIT", "END", "RELEASE") else None
            r = self.ev(s[1])
            if r[0] == "error" and not r[1].startswith(SQLITE_TX_ERRORS):
                raise Failure("%s failed: %s" % (s[1], r[1]))
            if p and not self.conn.in_transaction:
                self.after_commit(p, s[1])
            elif in_tx and not self.conn.in_transaction:
                self.snapshot()     # rolled back: the committed state stays
            return
        if k == "reopen":
            self.note("close the connection and open it again")
            self.conn.close()
            self.conn = connect(self.module, self.db)
            return
        if k == "read":
            return self.read(*s[1:])
        if k == "commit":
            return self.call_commit(*s[1:])
        if k == "reset":
            return self.call_reset(*s[1:])
        if k == "drop":
            return self.call_drop(*s[1:])
        if k == "trim":
            return self.trim(*s[1:])
        if k == "stat":
            return
        raise ValueError(s)

    def insert(self, rows, in_tx):
        vals = ", ".join("(%s, %s, %s)" % (lit(t), lit(k), lit(v)) for t, k, v in rows)
        p = None if in_tx else self.pre_commit(False)
        first = self.end()
        r = self.ev("INSERT INTO ev(time, key, value) VALUES " + vals)
        if r[0] == "error":
            if r[1].startswith("klevdb: ") and not all(
                    fuzzlib.natural(self.kc, k) and fuzzlib.natural(self.vc, v) and t != INT64_MIN
                    for t, k, v in rows):
                return
            raise Failure("INSERT failed: %s" % r[1])
        got = self.one("SELECT last_insert_rowid()")
        if got != first + len(rows) - 1:
            raise Failure("last_insert_rowid() is %d, the offsets handed out end at %d" % (got, first + len(rows) - 1))
        sizes = run(self.conn, 'SELECT "offset", length(CAST(key AS BLOB)), length(CAST(value AS BLOB)) FROM ev '
                    'WHERE "offset" >= %d ORDER BY "offset"' % first)
        if sizes[0] == "error" or [x[0][1] for x in sizes[1]] != list(range(first, first + len(rows))):
            raise Failure("the rows just inserted (from %d) read back as %s" % (first, sizes[1]))
        sz = [self.msize(x[1][1] or 0, x[2][1] or 0) for x in sizes[1]]
        self.model('INSERT INTO pl("offset", time, key, value) VALUES ' + ", ".join(
            "(%d, %s, %s, %s)" % (first + i, lit(t), lit(fuzzlib.plain_value(self.kc, k)),
                                  lit(fuzzlib.plain_value(self.vc, v))) for i, (t, k, v) in enumerate(rows)))
        self.model('INSERT INTO sizes VALUES ' + ", ".join("(%d, %d)" % (first + i, z) for i, z in enumerate(sz)))
        self.model("UPDATE seq SET n = n + %d" % len(rows))
        if p:
            p.update(n=len(rows), bytes=sum(sz), dels=False)
            self.after_commit(p, "INSERT")

    def delete(self, where, in_tx):
        p = None if in_tx else self.pre_commit(False)
        r2 = self.ev("DELETE FROM ev WHERE " + where.replace("{T}", "ev"))
        n2 = self.one("SELECT changes()")
        if r2[0] == "error" and fuzzlib.time_text_refusal(r2[1], where):
            return
        r1 = run(self.conn, 'DELETE FROM pl WHERE "offset" IN (SELECT "offset" FROM pl WHERE %s)'
                 % where.replace("{T}", "pl"))
        n1 = self.one("SELECT changes()")
        if r1[0] != r2[0]:
            raise Failure("DELETE: plain table %s, klevdb table %s" % (r1[1] if r1[0] == "error" else "ok",
                                                                       r2[1] if r2[0] == "error" else "ok"))
        if r1[0] == "error":
            return
        if n1 != n2:
            raise Failure("DELETE: the plain table deleted %d rows, the klevdb table %d" % (n1, n2))
        if in_tx:
            self.model("UPDATE pend SET dels = dels + ?", (n2,))
        else:
            p.update(n=0, bytes=0, dels=n2 > 0)
            self.after_commit(p, "DELETE")

    def read(self, table, name, cols, where, order, limit):
        q = CQuery(name, table, cols, where, order, limit)
        good = isinstance(name, str) and name != ""
        if name is None or (good and table == "ev"):
            self.log.append(q.sql(table))
            f = compare_query(self.conn, q, None, table, "pl")
            if f:
                raise Failure(f)
            return
        # Not a name, or a read-only table: an error, or no rows where SQLite
        # never asks (LIMIT 0, key = NULL): never the rows of a consumer.
        what = "consumer must be a non-empty TEXT name" if not good else "table is read-only"
        sv = q.sql(table)
        self.log.append(sv)
        ours = run(self.conn, sv)
        empty = run(self.conn, q.copy(name=None).sql("pl"))
        if ours[0] == "error" and ((what in ours[1] and ours[1].startswith("klevdb: ")) or
                                   fuzzlib.time_text_refusal(ours[1], sv)):
            return
        if empty[0] == "error" and ours[0] == "error":
            return
        if ours == empty:
            return
        raise Failure("consumer = %s on %s: expected the error \"%s\", got %s" % (
            lit(name), table, what, ours[1] if ours[0] == "error" else show(ours[1])))

    # -- the functions: each call's value or error, from the model --
    def table_error(self, fn, table):
        """The error a table argument gets, or None (ro: the read-only one)."""
        if not isinstance(table, str):
            return "klevdb: %s: table must be a TEXT table name" % fn
        if table == "nope":
            return "klevdb: %s: no table named 'nope'" % fn
        return None

    def resolve(self, spec, name):
        k = spec[0]
        if k == "pos":
            p = self.position(name)
            return (p or 0) + spec[1]
        if k == "end":
            return self.end() + spec[1]
        if k == "oldest":
            return self.oldest() + spec[1]
        return spec[1]

    def call(self, fn, args, expect, what):
        """Runs fn(args); expect is ("ok", value) or ("error", text in it).
        Returns True if it succeeded (as expected)."""
        sql = "SELECT %s(%s)" % (fn, ", ".join(lit(a) for a in args))
        self.log.append(sql)
        self.note("expected: %s" % (expect[1] if expect[0] == "ok" else "error: " + expect[1]))
        r = run(self.conn, sql)
        if expect[0] == "ok":
            if r[0] == "error" or r[1] != [(("I", expect[1]),)]:
                raise Failure("%s (%s): expected %d, got %s" % (sql, what, expect[1],
                                                                r[1] if r[0] == "error" else show(r[1])))
            return True
        if r[0] != "error" or expect[1] not in r[1] or not r[1].startswith("klevdb: "):
            raise Failure("%s (%s): expected the error \"%s\", got %s" % (
                sql, what, expect[1], r[1] if r[0] == "error" else show(r[1])))
        return False

    def common_error(self, fn, table, name):
        e = self.table_error(fn, table)
        if e:
            return e
        if not (isinstance(name, str) and name):
            return "klevdb: %s: consumer must be a non-empty TEXT name" % fn
        if table == "evro":
            return "klevdb: %s: table evro is read-only" % fn
        return None

    def set_position(self, name, pos, t0):
        self.model("INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?)", (name, pos, t0, now_us()))

    def call_commit(self, table, name, spec):
        nxt = self.resolve(spec, name)
        fn = "klevdb_commit"
        e = self.common_error(fn, table, name)
        cur = self.position(name) or 0
        if e:
            expect = ("error", e)
        elif type(nxt) is not int:
            expect = ("error", "next must be an INTEGER offset")
        elif nxt < 0:
            expect = ("error", "next must be >= 0")
        elif nxt > self.end():
            expect = ("error", "%d is past the end of ev (its next offset is %d)" % (nxt, self.end()))
        elif nxt < cur:
            expect = ("error", "is at %d: %d would move it backwards" % (cur, nxt))
        else:
            expect = ("ok", nxt)
        t0 = now_us()
        if self.call(fn, (table, name, nxt), expect, "position %d, end %d" % (cur, self.end())):
            self.set_position(name, nxt, t0)

    def call_reset(self, table, name, spec):
        fn = "klevdb_reset"
        k = spec[0]
        if k == "word":
            to = spec[1]
        elif k in ("time", "tlit"):
            if k == "time":
                ts = self.model('SELECT time FROM pl ORDER BY "offset"')
                t = ts[spec[1] % len(ts)][0] + spec[2] if ts else 0
                x = iso(t, spec[3])
            else:
                x = iso(spec[1], spec[2])
            to = x[0] if x else "oldest"
        else:
            to = self.resolve(spec, name)
        e = self.common_error(fn, table, name)
        end, oldest = self.end(), self.oldest()
        bad_to = "to must be an INTEGER offset, 'oldest', 'end' or an ISO-8601 time"
        if e:
            expect = ("error", e)
        elif type(to) is int:
            expect = ("ok", to) if oldest <= to <= end else \
                ("error", "offset %d is outside ev (from its oldest message, %d, to its end, %d)" % (to, oldest, end))
        elif isinstance(to, str) and to.lower() == "oldest":
            expect = ("ok", oldest)
        elif isinstance(to, str) and to.lower() == "end":
            expect = ("ok", end)
        elif isinstance(to, str) and k in ("time", "tlit") and to != "oldest":
            t = (iso(t, spec[3]) if k == "time" else iso(spec[1], spec[2]))[1]
            r = self.model('SELECT min("offset") FROM pl WHERE time >= ?', (t,))[0][0]
            expect = ("ok", end if r is None else r)
        else:
            expect = ("error", bad_to)
        t0 = now_us()
        if self.call(fn, (table, name, to), expect, "oldest %d, end %d" % (oldest, end)):
            self.set_position(name, expect[1], t0)

    def call_drop(self, table, name):
        fn = "klevdb_consumer_drop"
        e = self.common_error(fn, table, name)
        cur = self.position(name)
        if e:
            expect = ("error", e)
        elif cur is None:
            expect = ("error", "table ev has no consumer '%s'" % name)
        else:
            expect = ("ok", cur)
        if self.call(fn, (table, name), expect, "drop"):
            self.model("DELETE FROM positions WHERE name = ?", (name,))

    def trim(self, kind, spec):
        """klevdb_trim outside transactions (inside one it is not undone by
        ROLLBACK, which a plain table cannot mirror)."""
        if self.conn.in_transaction:
            return
        arg = self.resolve(spec, "c1")
        off = self.c_off
        if arg < 0:
            return self.call("klevdb_trim", ("ev", kind, arg), ("error", "%s must be >= 0" % kind), "trim")
        if kind == "offset":
            gone = [o for o in off if o < arg]
        else:
            gone = off[:max(0, len(off) - arg)]
        lo, anyc = self.consumers_min()
        if self.keep and anyc:
            gone = [o for o in gone if o < lo]
        self.call("klevdb_trim", ("ev", kind, arg), ("ok", len(gone)), "trim")
        if gone:
            self.model('DELETE FROM pl WHERE "offset" IN (%s)' % ", ".join(map(str, gone)))
        self.snapshot()

    # -- the comparisons after each step --
    def check(self):
        if not self.conn.in_transaction:
            self.snapshot()
        p = run(self.conn, 'SELECT "offset", time, key, value FROM pl ORDER BY "offset"')
        o = run(self.conn, 'SELECT "offset", time, key, value FROM ev ORDER BY "offset"')
        if p != o:
            raise Failure("contents differ:\nplain table: %s\nklevdb table: %s\nonly in the plain table: %s\n"
                          "only in the klevdb table: %s" % (
                              p[1] if p[0] == "error" else show(p[1]), o[1] if o[0] == "error" else show(o[1]),
                              show(fuzzlib.multiset_minus(p[1], o[1])) if p[0] == o[0] == "ok" else "",
                              show(fuzzlib.multiset_minus(o[1], p[1])) if p[0] == o[0] == "ok" else ""))
        bases = self.bases()
        segs = self.segments(bases)
        want = []
        for name, pos, lo, hi in self.model("SELECT name, next, at_lo, at_hi FROM positions ORDER BY name"):
            i = bisect.bisect_left(self.c_off, pos)
            lag = len(self.c_off) - i
            k = bisect.bisect_right(bases, pos) - 1
            if k < 0:
                nbytes = sum(s[2] for s in segs)
            else:
                hi_k = bases[k + 1] if k + 1 < len(bases) else INT64_MAX
                z = bisect.bisect_left(self.c_off, hi_k)
                nbytes = sum(s[2] for s in segs[k + 1:]) + sum(self.c_size[x] for x in self.c_off[i:z])
            oldest = self.c_time[self.c_off[i]] if i < len(self.c_off) else None
            want.append((bytes(name).decode(), pos, lag, nbytes, oldest, lo, hi))
        got = run(self.conn, "SELECT name, position, lag, lag_bytes, oldest_unconsumed_time, committed_at "
                  "FROM klevdb_consumers('ev') ORDER BY name")
        if got[0] == "error":
            raise Failure("klevdb_consumers('ev') failed: %s" % got[1])
        have = [(r[0][1].decode(),) + tuple(v[1] for v in r[1:]) for r in got[1]]
        if [w[:5] for w in want] != [h[:5] for h in have] or any(
                not (w[5] <= h[5] <= w[6]) for w, h in zip(want, have)):
            raise Failure("klevdb_consumers('ev') (name, position, lag, lag_bytes, oldest_unconsumed_time, "
                          "committed_at):\nexpected %s\ngot      %s" % (
                              [w[:5] + ("%d..%d" % w[5:],) for w in want], have))
        self.check_stat(bases, segs, want)

    def check_stat(self, bases, segs, cons):
        r = run(self.conn, "SELECT klevdb_stat('ev')")
        if r[0] == "error":
            raise Failure("klevdb_stat('ev') failed: %s" % r[1])
        st = json.loads(bytes(r[1][0][0][1]).decode())
        want = {"segments": len(bases), "messages": len(self.c_off), "bytes": sum(s[2] for s in segs),
                "next_offset": self.c_next, "oldest_offset": self.c_off[0] if self.c_off else None,
                "newest_offset": self.c_off[-1] if self.c_off else None}
        if cons:
            want["consumers"] = [dict(name=c[0], position=c[1], lag=c[2], lag_bytes=c[3]) for c in cons]
        if self.retention or self.keep:
            ret = {}
            if self.max_age:
                ret["max_age_us"] = self.max_age
            if self.max_bytes:
                ret["max_bytes"] = self.max_bytes
            if self.max_count:
                ret["max_count"] = self.max_count
            if self.keep:
                lo, anyc = self.consumers_min()
                ret["keep_unconsumed"] = "from offset %d" % lo if anyc else "no consumers"
            ret["removed_messages"], ret["removed_segments"] = self.removed
            ret["last_removed_at"] = None
            if self.last:
                ret["last_removed_messages"], ret["last_removed_segments"] = self.last[2:]
                at = st.get("retention", {}).get("last_removed_at")
                ret["last_removed_at"] = at if isinstance(at, int) and self.last[0] <= at <= self.last[1] else \
                    "between %d and %d" % self.last[:2]
            want["retention"] = ret
        have = {k: st.get(k) for k in want}
        if have != want:
            diff = {k: (want[k], have[k]) for k in want if want[k] != have[k]}
            raise Failure("klevdb_stat('ev'), (expected, got): %s" % diff)
        # The sealed segments' files are what the model counts for them.
        for b, s in zip(bases[:-1], segs[:-1]):
            f = os.path.join(self.store, "%020d" % b)
            size = os.path.getsize(f + ".log") + os.path.getsize(f + ".index")
            if size != s[2]:
                raise Failure("segment %d: its files hold %d bytes, the model's %d messages %d" % (b, size, s[1], s[2]))


class CQuery(Query):
    """A read by consumer: {CONS} is "consumer = X" on the klevdb table and
    "offset >= X's position" on the plain one; {CCOL} the consumer column
    (X on the plain table); {WAIT0} "wait = 0" (1)."""

    def __init__(self, name, table, cols, where, order, limit):
        Query.__init__(self, cols, where, order, limit)
        self.name, self.table = name, table

    def copy(self, **kw):
        q = CQuery(self.name, self.table, self.cols, self.where, self.order, self.limit)
        q.__dict__.update(kw)
        return q

    def sql(self, table, with_limit=True):
        s = Query.sql(self, table, with_limit)
        n = lit(self.name)
        if table != "pl":
            return s.replace("{CONS}", "consumer = " + n).replace("{CCOL}", "consumer").replace("{WAIT0}", "wait = 0")
        cons = "0" if self.name is None else \
            '"offset" >= coalesce((SELECT next FROM positions WHERE name = %s), 0)' % n
        return s.replace("{CONS}", cons).replace("{CCOL}", n).replace("{WAIT0}", "1")


# ---- replaying in a child process (a crash or a hang is a failure too) ----

def replay(module, base, create, steps):
    r, why, index, log = fuzzlib.run_case(os.path.abspath(__file__), module, base,
                                          (create, steps), len(steps), 30)
    if r is None:
        return why, index, log, {}
    return r["failure"], r["index"], r["log"], r["counters"]


def replay_child(module, base, case):
    with open(case, "rb") as f:
        create, steps = pickle.load(f)
    sink = open(case + ".log", "w", encoding="utf-8")
    log = fuzzlib._Sink(sink)
    d = fuzzlib.fresh_dir(base, "replay")
    counters = {}
    failure, index = None, len(steps)
    try:
        m = Runner(module, d, create, log)
    except Failure as e:
        m, failure, index = None, str(e), 0
    for i, s in enumerate(steps if m else []):
        sink.write("\x00%d\n" % i)
        sink.flush()
        try:
            m.step(s)
            m.check()
        except Failure as e:
            failure, index = str(e), i
            break
        counters[s[0]] = counters.get(s[0], 0) + 1
        if m.conn.in_transaction:
            counters["in_tx"] = counters.get("in_tx", 0) + 1
    if m:
        counters["removed"] = m.removed[0]
        m.conn.close()
    print(json.dumps({"failure": failure, "index": index, "log": list(log), "counters": counters}))
    return 0


def shrink(module, base, create, steps, budget_s=90):
    end = time.monotonic() + budget_s
    f, i, log, _ = replay(module, base, create, steps)
    if not f:
        return steps, None
    steps = steps[:i + 1]

    def fails(cand):
        if time.monotonic() > end:
            return False
        return replay(module, base, create, cand + [steps[-1]])[0] is not None
    head = fuzzlib.ddmin(steps[:-1], fails)
    steps = head + [steps[-1]]
    f, i, log, _ = replay(module, base, create, steps)
    return (steps[:i + 1], (f, log)) if f else (steps, None)


# Differences the fuzzer found, run first in every run (a regression test
# each; the fixes have their sql-tests too).
def _case(**kw):
    c = dict(kc="text", vc="text", rollover="150", key_index=1, time_index=1, fmt="v2", keep_unconsumed=0)
    c.update(kw)
    return c


_OLD = 1672531200000000          # 2023-01-01, older than any max_age
_YOUNG = 4102444800000000        # 2100-01-01
REGRESSIONS = [
    # A BLOB name read as the TEXT it spells (x'6331' was consumer 'c1').
    (_case(), [("insert", [(1, "a", "b"), (2, "c", "d")]), ("commit", "ev", "c1", ("lit", 1)),
               ("read", "ev", b"c1", "*", ("leaf", "{CONS}"), ['"offset"'], None),
               ("commit", "ev", b"c1", ("lit", 1)), ("reset", "ev", b"c1", ("lit", 0)), ("drop", "ev", b"c1")]),
    # klevdb_reset(t, c, '5'): microseconds, not an error.
    (_case(), [("insert", [(1, "a", "b"), (9, "c", "d")]), ("reset", "ev", "c1", ("word", "5"))]),
    # A reset to a time at or before 1970 (the index clamps to 0), and to
    # 'oldest' or a time in a transaction that deleted the answer.
    (_case(), [("insert", [(-2000, "a", "b"), (-1000, "c", "d"), (5, "e", "f")]),
               ("reset", "ev", "c1", ("tlit", 0, 1)), ("reset", "ev", "c1", ("tlit", -1000, 0)),
               ("sql", "BEGIN"), ("delete", ("leaf", '"offset" IN (0, 2)')),
               ("reset", "ev", "c1", ("word", "oldest")), ("reset", "ev", "c1", ("tlit", 0, 1)),
               ("reset", "ev", "c1", ("lit", 0)), ("sql", "ROLLBACK")]),
    # A reset to a time without the time index.
    (_case(time_index=0), [("insert", [(_OLD, "a", "b"), (_OLD + 2, "c", "d"), (_OLD + 1, "e", "f")]),
                           ("reset", "ev", "c1", ("tlit", _OLD + 1, 0))]),
    # klevdb_trim(t, 'offset', -1) removed everything.
    (_case(), [("insert", [(1, "a", "b"), (2, "c", "d")]), ("trim", "offset", ("lit", -1))]),
    # last_insert_rowid() after an INSERT whose commit ran retention.
    (_case(max_count=2), [("insert", [(i, "k", "v%02d" % i)]) for i in range(12)]),
    # max_age after a young message was deleted: the index kept its time.
    (_case(max_age="1d"), [("insert", [(_YOUNG, "k", "v")]), ("delete", ("leaf", "1"))] +
     [("insert", [(_OLD + i, "k", "v%02d" % i)]) for i in range(10)]),
]


def main(argv):
    module, work, total, seed, only = fuzzlib.fuzz_args(argv, "fuzz_consumers", "--episode", 1500, __doc__)
    master = random.Random(seed)
    counters = {}
    start = time.monotonic()
    episodes = done = 0
    try:
        for i, (create, steps) in enumerate(REGRESSIONS if only is None else []):
            f, _, log, _ = replay(module, work, create, steps)
            if f:
                fuzzlib.report("fuzz_consumers", "regression case %d" % i, steps, (f, log))
                return 1
        while done < total:
            eseed = master.randrange(1 << 62) if only is None else only
            per = min(250, total - done)
            create, steps = episode_case(eseed, per)
            f, i, log, c = replay(module, work, create, steps)
            episodes += 1
            done += per
            for k, v in c.items():
                counters[k] = counters.get(k, 0) + v
            if f:
                print("difference found: %s" % f.split("\n")[0], flush=True)
                small, result = shrink(module, work, create, steps[:i + 1])
                if result is None:
                    result = (f, ["-- (did not happen again; the whole episode follows)"] + log)
                print("create: %s" % create)
                fuzzlib.report("fuzz_consumers", "seed %d episode %d (--episode %d)" % (seed, episodes, eseed),
                               small, result)
                return 1
            if only is not None:
                break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("fuzz_consumers: seed %d, %d episodes, %d steps, no difference (%.1f s; %s)" % (
        seed, episodes, done, time.monotonic() - start,
        ", ".join("%s %d" % kv for kv in sorted(counters.items()))))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--replay":
        sys.exit(replay_child(*sys.argv[2:]))
    sys.exit(main(sys.argv))
