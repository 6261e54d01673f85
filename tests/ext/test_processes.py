#!/usr/bin/python3
"""Wrong uses of the SQLite extension that take more than one process or
file system tricks, which a SQL script cannot do alone.

usage: test_processes.py MODULE WORKDIR

MODULE is the loadable module (build/ext/klevdb.so); WORKDIR a directory
for the stores (created; a fresh subdirectory is used for each run). Python
standard library only; run it with /usr/bin/python3, whose sqlite3 module can
load extensions.

  (a) a second writer process: A keeps a table on X open with a row written;
      B's writes to X fail with "klevdb: ... locked by another process"
      (SQLITE_BUSY), B still reads A's rows through a readonly=1 table, and
      once A has exited B can write.
  (b) an unwritable directory: a path through a regular file (ENOTDIR, which
      holds for root too), and a chmod 0500 parent when not running as root.
  (c) a full disk: not simulated (needs root tricks); skipped.
  (d) the directory removed while tables are open on it: reads and writes
      give an error or still work, never crash (run in a child process).
  (e) a reader's files rewritten under it (klevdb_backup of another store
      into its directory): the reader must not crash.
  (f) another process's writes seen at the next query: a readonly=1 table
      asks for the newest message of a key (and the first at a time) right
      after another process published one, again and again, across
      rollovers; each query must give what was just published (the store's
      own gets look only every few ms; a query looks first).

Prints "test_processes: N checks, M failed" and exits 1 if any failed.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import extcheck
from extcheck import check, connect


def run(conn, sql, *args):
    """Returns ("ok", rows) or ("error", message, sqlite error name)."""
    try:
        return ("ok", conn.execute(sql, args).fetchall())
    except sqlite3.Error as e:
        return ("error", str(e), getattr(e, "sqlite_errorname", "?"))


def is_error(r, *words, code=None):
    """True if r is an error whose message starts with "klevdb: ", contains
    every word (case-insensitive) and, if given, has that error name."""
    if r[0] != "error" or not r[1].startswith("klevdb: "):
        return False
    if code and r[2] != code:
        return False
    return all(w.lower() in r[1].lower() for w in words)


def q(s):
    return "'" + s.replace("'", "''") + "'"


# A child process that runs SQL statements given one per line on stdin,
# each answered by one JSON line on stdout; it stays alive until stdin
# closes, so its tables (and the store's lock) stay open meanwhile.
CHILD = r"""
import json, sqlite3, sys
conn = sqlite3.connect(":memory:", isolation_level=None)
conn.enable_load_extension(True)
conn.load_extension(sys.argv[1])
for line in sys.stdin:
    try:
        rows = conn.execute(line).fetchall()
        out = {"ok": [list(r) for r in rows]}
    except sqlite3.Error as e:
        out = {"error": str(e), "code": getattr(e, "sqlite_errorname", "?")}
    print(json.dumps(out), flush=True)
"""


class Child:
    def __init__(self, cwd):
        self.p = subprocess.Popen([sys.executable, "-c", CHILD, extcheck.MODULE], cwd=cwd,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)

    def sql(self, stmt):
        self.p.stdin.write(stmt.replace("\n", " ") + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            return {"error": "child died (exit status %r)" % self.p.wait()}
        return json.loads(line)

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            return self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def test_second_writer(work):
    print("# (a) second writer process")
    x = os.path.join(work, "x.d")
    a = Child(work)
    try:
        r = a.sql("CREATE VIRTUAL TABLE t USING klevdb(dir=%s)" % q(x))
        check("ok" in r, "A: CREATE on X", str(r))
        r = a.sql("INSERT INTO t(key, value) VALUES ('a1', 'from A'), ('a2', 'from A'), "
                  "('a3', 'from A')")
        check("ok" in r, "A: INSERT 3 rows", str(r))

        b = connect()
        w_open = True
        # B opens X for writing: the extension may refuse at CREATE or at
        # the first write; either way with a clear "locked" error.
        r = run(b, "CREATE VIRTUAL TABLE w USING klevdb(dir=%s)" % q(x))
        if r[0] == "ok":
            check(True, "B: CREATE on X succeeds (the lock is taken at the first write)")
            r = run(b, "INSERT INTO w(key, value) VALUES ('b', 'from B')")
            check(is_error(r, "another process", code="SQLITE_BUSY"),
                  "B: INSERT while A holds X fails: klevdb: ... another process is writing "
                  "... (SQLITE_BUSY)", str(r))
            r = run(b, "DELETE FROM w WHERE \"offset\" = 0")
            check(is_error(r, "another process", code="SQLITE_BUSY"),
                  "B: DELETE while A holds X fails the same way", str(r))
            r = run(b, "SELECT klevdb_trim('w', 'count', 1)")
            check(is_error(r, "another process", code="SQLITE_BUSY"),
                  "B: klevdb_trim while A holds X fails the same way (SQLITE_BUSY, "
                  "naming the other process)", str(r))
            r = run(b, "SELECT klevdb_compact('w', 'updates', 0)")
            check(is_error(r, "another process", code="SQLITE_BUSY"),
                  "B: klevdb_compact while A holds X fails the same way", str(r))
            r = run(b, "SELECT count(*) FROM w")
            check(r == ("ok", [(3,)]), "B: the refused table still reads A's rows", str(r))
        else:
            w_open = False
            check(is_error(r, "another process", code="SQLITE_BUSY"),
                  "B: CREATE on X while A holds it fails: klevdb: ... another process "
                  "(SQLITE_BUSY)", str(r))
        r = run(b, "SELECT klevdb_recover(%s)" % q(x))
        check(is_error(r, code="SQLITE_BUSY") and ("open for writing" in r[1] or "locked" in r[1]),
              "B: klevdb_recover while A holds X is refused (SQLITE_BUSY)", str(r))

        r = run(b, "CREATE VIRTUAL TABLE rx USING klevdb(dir=%s, readonly=1)" % q(x))
        check(r[0] == "ok", "B: readonly=1 CREATE on X while A holds it", str(r))
        r = run(b, "SELECT count(*), group_concat(CAST(key AS TEXT)) FROM rx")
        check(r == ("ok", [(3, "a1,a2,a3")]), "B: readonly table sees A's 3 rows", str(r))
        r = a.sql("INSERT INTO t(key, value) VALUES ('a4', 'from A')")
        check("ok" in r, "A: writes on while B reads", str(r))
        r = run(b, "SELECT count(*) FROM rx")
        check(r == ("ok", [(4,)]), "B: readonly table follows A's new row", str(r))
        r = run(b, "SELECT count(*) FROM klevdb_scan(%s)" % q(x))
        check(r == ("ok", [(4,)]), "B: klevdb_scan reads X while A holds it", str(r))
    finally:
        status = a.close()
    check(status == 0, "A exits cleanly", "exit status %r" % status)

    if w_open:
        r = run(b, "INSERT INTO w(key, value) VALUES ('b0', 'from B, first table')")
        print("#   B: INSERT into the table made while A held X, after A exited -> %r" % (r,))
        if r[0] == "ok":
            check(run(b, "SELECT count(*) FROM w") == ("ok", [(5,)]), "B: ... and it is stored")
        b.execute("DROP TABLE w")
    n = run(b, "SELECT count(*) FROM rx")[1][0][0]   # 4, or 5 with b0
    r = run(b, "CREATE VIRTUAL TABLE w2 USING klevdb(dir=%s)" % q(x))
    check(r[0] == "ok", "B: CREATE on X after A exited", str(r))
    r = run(b, "INSERT INTO w2(key, value) VALUES ('b', 'from B')")
    check(r[0] == "ok", "B: INSERT after A exited", str(r))
    r = run(b, "SELECT count(*), max(\"offset\") FROM w2")
    check(r == ("ok", [(n + 1, n)]), "B: X holds A's 4 rows and B's", str(r))
    r = run(b, "SELECT count(*) FROM rx")
    check(r == ("ok", [(n + 1,)]), "B: the readonly table sees B's row too", str(r))
    b.close()


def test_unwritable(work):
    print("# (b) unwritable directory")
    afile = os.path.join(work, "afile")
    with open(afile, "w") as f:
        f.write("not a directory\n")
    c = connect()
    sub = os.path.join(afile, "sub")
    r = run(c, "CREATE VIRTUAL TABLE u USING klevdb(dir=%s)" % q(sub))
    check(is_error(r, "not a directory"), "CREATE with dir under a regular file fails", str(r))
    r = run(c, "CREATE VIRTUAL TABLE u USING klevdb(dir=%s, create_dirs=0)" % q(sub))
    check(is_error(r), "... and with create_dirs=0", str(r))
    r = run(c, "CREATE VIRTUAL TABLE u USING klevdb(dir=%s, readonly=1)" % q(sub))
    check(is_error(r), "... and with readonly=1", str(r))
    with open(afile) as f:
        check(f.read() == "not a directory\n", "the file is unchanged")
    r = run(c, "SELECT count(*) FROM sqlite_schema")
    check(r == ("ok", [(0,)]), "no table was created", str(r))

    if os.geteuid() == 0:
        print("# skip: chmod 0500 (root ignores permissions)")
    else:
        ro = os.path.join(work, "ro-parent")
        os.mkdir(ro)
        os.chmod(ro, 0o500)
        try:
            r = run(c, "CREATE VIRTUAL TABLE u USING klevdb(dir=%s)" % q(os.path.join(ro, "s")))
            check(is_error(r, "permission denied"),
                  "CREATE with dir in a directory without write permission fails", str(r))
            check(os.listdir(ro) == [], "nothing was created there")
        finally:
            os.chmod(ro, 0o700)
    print("# skip: (c) full disk (cannot be simulated without root tricks)")
    c.close()


def test_removed_dir(work):
    print("# (d) directory removed while tables are open on it")
    d = os.path.join(work, "gone.d")
    child = Child(work)
    try:
        r = child.sql("CREATE VIRTUAL TABLE t USING klevdb(dir=%s)" % q(d))
        check("ok" in r, "CREATE", str(r))
        r = child.sql("INSERT INTO t(key, value) VALUES ('k1', 'v1'), ('k2', 'v2')")
        check("ok" in r, "INSERT 2 rows", str(r))
        r = child.sql("CREATE VIRTUAL TABLE r USING klevdb(dir=%s, readonly=1)" % q(d))
        check("ok" in r, "readonly CREATE", str(r))
        shutil.rmtree(d)
        for what, stmt in [
            ("SELECT from the writer's table", "SELECT count(*) FROM t"),
            ("SELECT values from the writer's table", "SELECT group_concat(CAST(value AS TEXT)) FROM t"),
            ("SELECT from the readonly table", "SELECT count(*) FROM r"),
            ("INSERT", "INSERT INTO t(key, value) VALUES ('k3', 'v3')"),
            ("klevdb_sync", "SELECT klevdb_sync('t')"),
            ("klevdb_stat", "SELECT klevdb_stat('t') IS NOT NULL"),
            ("klevdb_trim", "SELECT klevdb_trim('t', 'count', 1)"),
            ("klevdb_scan", "SELECT count(*) FROM klevdb_scan(%s)" % q(d)),
            ("klevdb_check", "SELECT klevdb_check(%s)" % q(d)),
        ]:
            r = child.sql(stmt)
            died = "error" in r and r["error"].startswith("child died")
            ok = not died and ("ok" in r or r["error"].startswith("klevdb: "))
            check(ok, "after removal: %s gives rows or a klevdb: error (no crash)" % what, str(r))
            if died:
                break
            print("#   %s -> %s" % (what, json.dumps(r)))
        # The writes since the removal cannot be kept: a sync says so.
        r = child.sql("SELECT klevdb_sync('t')")
        check("error" in r and "were removed while it was open" in r["error"]
              and r["error"].startswith("klevdb: "),
              "after removal: klevdb_sync reports the lost writes", str(r))
    finally:
        status = child.close()
    check(status == 0, "the process survives and exits cleanly", "exit status %r" % status)
    check(not os.path.exists(d) or os.path.isdir(d), "no stray file where the directory was")


def test_rewritten_under_reader(work):
    print("# (e) a reader's files rewritten under it")
    big, small = os.path.join(work, "big.d"), os.path.join(work, "small.d")
    child = Child(work)
    try:
        r = child.sql("CREATE VIRTUAL TABLE b USING klevdb(dir=%s, rollover='64KB', value='blob')" % q(big))
        check("ok" in r, "CREATE big", str(r))
        r = child.sql("INSERT INTO b(key, value) SELECT 'k' || value, zeroblob(20) "
                      "FROM generate_series(1, 5000)")
        if "error" in r:  # the shell's generate_series may be missing: a CTE instead
            r = child.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                          "WHERE i < 5000) INSERT INTO b(key, value) "
                          "SELECT 'k' || i, zeroblob(20) FROM n")
        check("ok" in r, "INSERT 5000 rows of 20 bytes (several segments, indexes over a page)", str(r))
        r = child.sql("DROP TABLE b")
        check("ok" in r, "close big", str(r))
        r = child.sql("CREATE VIRTUAL TABLE s USING klevdb(dir=%s)" % q(small))
        r2 = child.sql("INSERT INTO s(key, value) VALUES ('s', 'small')")
        check("ok" in r and "ok" in r2, "CREATE small with one row", str((r, r2)))
        r = child.sql("CREATE VIRTUAL TABLE rb USING klevdb(dir=%s, readonly=1)" % q(big))
        r2 = child.sql("SELECT count(*), max(\"offset\") FROM rb")
        check(r2.get("ok") == [[5000, 4999]], "readonly reader of big reads 5000 offsets", str(r2))
        r = child.sql("SELECT klevdb_backup('s', %s)" % q(big))
        print("#   klevdb_backup of small into big's directory -> %s" % json.dumps(r))
        for what, stmt in [("offsets only (the index)", "SELECT count(*), max(\"offset\") FROM rb"),
                           ("values (the log)", "SELECT count(*), sum(length(value)) FROM rb")]:
            r = child.sql(stmt)
            print("#   the reader then reads %s -> %s" % (what, json.dumps(r)))
            died = "error" in r and r["error"].startswith("child died")
            check(not died and ("ok" in r or r["error"].startswith("klevdb: ")),
                  "the reader reading %s gives rows or a klevdb: error after its files "
                  "were rewritten (no crash)" % what, str(r))
            if died:
                break
    finally:
        status = child.close()
    check(status == 0, "the reader's process exits cleanly", "exit status %r" % status)


def test_next_query_sees(work):
    print("# (f) another process's publish is seen by the next query")
    x = os.path.join(work, "f.d")
    a = Child(work)
    try:
        r = a.sql("CREATE VIRTUAL TABLE t USING klevdb(dir=%s, key_index=1, time_index=1, "
                  "rollover=2000)" % q(x))
        check("ok" in r, "A: CREATE on X", str(r))
        r = a.sql("INSERT INTO t(time, key, value) VALUES (1000, 'k', 'v0')")
        check("ok" in r, "A: first INSERT", str(r))
        b = connect(":memory:")
        b.execute("CREATE VIRTUAL TABLE r USING klevdb(dir=%s, key_index=1, time_index=1, "
                  "readonly=1)" % q(x))
        stale_key = stale_time = 0
        for i in range(1, 120):
            r = a.sql("INSERT INTO t(time, key, value) VALUES (%d, 'k', 'v%d')" % (1000 + i, i))
            if "ok" not in r:
                check(False, "A: INSERT %d" % i, str(r))
                break
            got = b.execute("SELECT value FROM r WHERE key = 'k' ORDER BY \"offset\" DESC LIMIT 1").fetchall()
            stale_key += got != [("v%d" % i,)]
            got = b.execute("SELECT value FROM r WHERE time >= ? ORDER BY \"offset\" LIMIT 1",
                            (1000 + i,)).fetchall()
            stale_time += got != [("v%d" % i,)]
        check(stale_key == 0, "B: the newest message of a key is the one just published, 119 times",
              "%d stale answers" % stale_key)
        check(stale_time == 0, "B: the first message at a time is the one just published, 119 times",
              "%d stale answers" % stale_time)
        b.close()
    finally:
        status = a.close()
    check(status == 0, "A exits cleanly", "exit status %r" % status)


if __name__ == "__main__":
    sys.exit(extcheck.main("test_processes", __doc__, sys.argv,
                           (test_second_writer, test_unwritable, test_removed_dir,
                            test_rewritten_under_reader, test_next_query_sees)))
