#!/usr/bin/env python3
"""Two SQLite connections on one database file, each with its own klevdb
table on one store (the extension loaded into each):

  - B sees what A committed at its next query, never what A has pending;
  - B's read does not wait for A's write transaction;
  - on one database file SQLite's own lock comes first: B's INSERT while A
    writes fails at once with "database is locked" (no busy timeout), or
    with PRAGMA busy_timeout waits and goes through after A's COMMIT (at
    the offset after A's rows) or ROLLBACK (at the offset A gave back);
  - on two database files with tables on one store, klevdb's writer lock:
    B's INSERT waits (WRITER_WAIT_MS, 5 s in ext/vtab_write.c) and then fails
    with SQLITE_BUSY and "klevdb: ... another connection is writing ...",
    or goes through as soon as A commits or rolls back.

usage: two_connections.py MODULE      (MODULE: build/ext/klevdb.so)

Python's own sqlite3 module on Debian cannot load extensions
(no enable_load_extension), and the sqlite3 shell's .load takes a path the
script does not know, so this drives the system libsqlite3 through ctypes.
Exits 77 (meson: skipped) when the module cannot be loaded into the system
SQLite (a sanitizer build), 1 on a failed check, 0 when all pass.
"""
import ctypes
import ctypes.util
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import pycheck  # noqa: E402  (the one check harness, tests/pycheck.py)

SQLITE_OK, SQLITE_BUSY, SQLITE_ROW, SQLITE_DONE = 0, 5, 100, 101
SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL = 1, 2, 3, 4, 5
OPEN_RW_CREATE_FULLMUTEX = 0x2 | 0x4 | 0x10000

lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
P = ctypes.c_void_p
lib.sqlite3_open_v2.argtypes = [ctypes.c_char_p, ctypes.POINTER(P), ctypes.c_int, ctypes.c_char_p]
lib.sqlite3_close_v2.argtypes = [P]
lib.sqlite3_errmsg.argtypes = [P]
lib.sqlite3_errmsg.restype = ctypes.c_char_p
lib.sqlite3_enable_load_extension.argtypes = [P, ctypes.c_int]
lib.sqlite3_load_extension.argtypes = [P, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
lib.sqlite3_prepare_v2.argtypes = [P, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(P), ctypes.POINTER(ctypes.c_char_p)]
lib.sqlite3_step.argtypes = [P]
lib.sqlite3_finalize.argtypes = [P]
lib.sqlite3_column_count.argtypes = [P]
lib.sqlite3_column_type.argtypes = [P, ctypes.c_int]
lib.sqlite3_column_int64.argtypes = [P, ctypes.c_int]
lib.sqlite3_column_int64.restype = ctypes.c_int64
lib.sqlite3_column_text.argtypes = [P, ctypes.c_int]
lib.sqlite3_column_text.restype = ctypes.c_char_p
lib.sqlite3_extended_errcode.argtypes = [P]


class SQLError(Exception):
    def __init__(self, rc, msg):
        super().__init__("%s (rc %d)" % (msg, rc))
        self.rc, self.msg = rc, msg


class Conn:
    def __init__(self, path, module):
        self.db = P()
        rc = lib.sqlite3_open_v2(path.encode(), ctypes.byref(self.db), OPEN_RW_CREATE_FULLMUTEX, None)
        if rc != SQLITE_OK:
            raise SQLError(rc, "open %s" % path)
        lib.sqlite3_enable_load_extension(self.db, 1)
        err = ctypes.c_char_p()
        rc = lib.sqlite3_load_extension(self.db, module.encode(), None, ctypes.byref(err))
        if rc != SQLITE_OK:
            raise SQLError(rc, "load %s: %s" % (module, err.value.decode() if err.value else "?"))

    def run(self, sql):
        """Runs every statement of sql; returns the rows of the last one."""
        data = sql.encode()
        buf = ctypes.create_string_buffer(data)
        tail = ctypes.c_char_p(ctypes.addressof(buf))
        rows = []
        while True:
            st = P()
            rc = lib.sqlite3_prepare_v2(self.db, tail, -1, ctypes.byref(st), ctypes.byref(tail))
            if rc != SQLITE_OK:
                raise SQLError(rc, lib.sqlite3_errmsg(self.db).decode())
            if not st.value:  # only whitespace or comments left
                return rows
            rows = []
            while True:
                rc = lib.sqlite3_step(st)
                if rc == SQLITE_ROW:
                    row = []
                    for i in range(lib.sqlite3_column_count(st)):
                        t = lib.sqlite3_column_type(st, i)
                        if t == SQLITE_NULL:
                            row.append(None)
                        elif t == SQLITE_INTEGER:
                            row.append(lib.sqlite3_column_int64(st, i))
                        else:
                            row.append(lib.sqlite3_column_text(st, i).decode())
                    rows.append(tuple(row))
                    continue
                break
            if rc != SQLITE_DONE:
                msg = lib.sqlite3_errmsg(self.db).decode()
                lib.sqlite3_finalize(st)
                raise SQLError(rc, msg)
            lib.sqlite3_finalize(st)

    def close(self):
        lib.sqlite3_close_v2(self.db)


def check(what, got, want):
    pycheck.eq(got, want, what)


def expect_error(what, conn, sql, rc, text):
    t0 = time.monotonic()
    try:
        conn.run(sql)
    except SQLError as e:
        elapsed = time.monotonic() - t0
        if e.rc & 0xff == rc and text in e.msg:
            pycheck.check(True, what, "%.1f s: %s" % (elapsed, e.msg))
            return elapsed
        pycheck.check(False, what, "want rc %d and %r, got rc %d: %s" % (rc, text, e.rc, e.msg))
        return elapsed
    pycheck.check(False, what, "no error")
    return time.monotonic() - t0


T0 = 1672531200000000  # 2023-01-01T00:00:00Z


def ins(key, value, sec):
    return "INSERT INTO ev(key, value, time) VALUES ('%s', '%s', %d);" % (key, value, T0 + sec * 1000000)


def writer_waits(a, b, label):
    """A holds an open write transaction; B's writes wait for it."""
    result = {}

    def b_insert():
        try:
            b.run(ins("e", "v", 50))
            result["rows"] = b.run("SELECT last_insert_rowid();")
        except SQLError as e:
            result["error"] = str(e)

    def during(start_a, end_a):
        result.clear()
        a.run(start_a)
        th = threading.Thread(target=b_insert)
        t0 = time.monotonic()
        th.start()
        time.sleep(0.5)
        a.run(end_a)
        th.join()
        return time.monotonic() - t0

    n = a.run('SELECT max("offset") FROM ev;')[0][0]
    took = during("BEGIN;" + ins("d", "v", 40) + ins("d", "v", 41), "COMMIT;")
    check("%s: B's INSERT that waited for A's COMMIT gets the offset after A's rows" % label,
          result, {"rows": [(n + 3,)]})
    check("%s: ... once A committed (well under 5 s)" % label, took < 4.0, True)
    check("%s: A sees B's row" % label, a.run('SELECT "offset", key FROM ev WHERE "offset" > %d;' % n),
          [(n + 1, "d"), (n + 2, "d"), (n + 3, "e")])
    took = during("BEGIN;" + ins("f", "dropped", 60), "ROLLBACK;")
    check("%s: B's INSERT that waited for A's ROLLBACK gets the offset A gave back" % label,
          result, {"rows": [(n + 4,)]})
    check("%s: ... well under 5 s" % label, took < 4.0, True)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    module = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="klevdb-two-connections.")
    try:
        dbfile = os.path.join(tmp, "test.db")
        try:
            a = Conn(dbfile, module)
        except SQLError as e:
            if "undefined symbol" in str(e) and "san" in str(e):
                print("skip: %s" % e)
                return 77
            raise
        b = Conn(dbfile, module)

        print("# one database file, two connections")
        a.run("CREATE VIRTUAL TABLE ev USING klevdb(dir='ev.d', key='text', value='text');")
        check("store beside the database file", os.path.isdir(os.path.join(tmp, "ev.d")), True)
        a.run(ins("a", "v0", 0) + ins("b", "v1", 1))
        check("B sees the table A created and A's rows",
              b.run('SELECT "offset", key, value FROM ev;'), [(0, "a", "v0"), (1, "b", "v1")])
        a.run("BEGIN;" + ins("c", "v2", 2))
        check("A sees its pending row", a.run('SELECT "offset", value FROM ev WHERE "offset" >= 1;'),
              [(1, "v1"), (2, "v2")])
        check("B does not see A's pending row", b.run('SELECT count(*), max("offset") FROM ev;'), [(2, 1)])
        t0 = time.monotonic()
        check("B reads without waiting", b.run("SELECT value FROM ev WHERE key = 'b';"), [("v1",)])
        check("... in under a second", time.monotonic() - t0 < 1.0, True)
        # An INSERT into a virtual table takes SQLite's RESERVED lock on the
        # database file (sqlite3BeginWriteOperation), so without a busy
        # timeout SQLite itself refuses B's write at once.
        took = expect_error("B's INSERT while A writes: SQLite's own lock, SQLITE_BUSY at once", b,
                            ins("x", "blocked", 3), SQLITE_BUSY, "database is locked")
        check("... without waiting", took < 1.0, True)
        a.run("COMMIT;")
        check("B sees A's commit at its next query",
              b.run('SELECT "offset", key, value FROM ev WHERE "offset" >= 1;'), [(1, "b", "v1"), (2, "c", "v2")])
        check("B's newest by key after A's commit",
              b.run("SELECT \"offset\" FROM ev WHERE key = 'c' ORDER BY \"offset\" DESC LIMIT 1;"), [(2,)])
        b.run("PRAGMA busy_timeout = 10000;")
        writer_waits(a, b, "same file, busy_timeout")
        a.run('BEGIN; DELETE FROM ev WHERE "offset" = 0;')
        check("B still sees offset 0 while A's DELETE is pending",
              b.run('SELECT count(*) FROM ev WHERE "offset" = 0;'), [(1,)])
        a.run("COMMIT;")
        check("A's DELETE seen by B", b.run('SELECT min("offset") FROM ev;'), [(1,)])
        a.close()
        b.close()

        print("# two database files, one store: klevdb's own writer lock")
        store = os.path.join(tmp, "shared.d")
        a = Conn(os.path.join(tmp, "a.db"), module)
        b = Conn(os.path.join(tmp, "b.db"), module)
        for c in (a, b):
            c.run("CREATE VIRTUAL TABLE ev USING klevdb(dir='%s', key='text', value='text');" % store)
        a.run(ins("a", "v0", 0))
        check("B sees A's row", b.run('SELECT "offset", key FROM ev;'), [(0, "a")])
        a.run("BEGIN;" + ins("c", "v1", 1))
        check("B does not see A's pending row", b.run("SELECT count(*) FROM ev;"), [(1,)])
        waited = expect_error("B's INSERT while A writes waits, then fails with SQLITE_BUSY", b,
                              ins("x", "blocked", 3), SQLITE_BUSY, "another connection is writing")
        check("... after about 5 s (WRITER_WAIT_MS)", 4.0 <= waited < 30, True)
        check("... and left nothing pending in B", b.run("SELECT count(*) FROM ev;"), [(1,)])
        a.run("COMMIT;")
        check("B sees A's commit at its next query", b.run('SELECT "offset", key FROM ev;'), [(0, "a"), (1, "c")])
        writer_waits(a, b, "two files")
        a.close()
        b.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return pycheck.summary("two_connections")


if __name__ == "__main__":
    sys.exit(main())
