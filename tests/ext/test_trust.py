#!/usr/bin/python3
"""Who may make a klevdb table write: a database file prepared by someone
else, triggers the application wants on purpose, and other processes (Go
writers and readers) while a table only reads.

usage: test_trust.py MODULE WORKDIR

  (a) a hostile database file: its schema names a store of the user's and a
      folder of its own, with triggers and a view on them; the user's
      statements on ordinary tables must be refused, the store left as it
      was, and opening the schema must create no folder;
  (b) triggers on purpose: triggers=1 in the schema counts only for a store
      the application allowed with klevdb_allow_triggers(dir), which a
      schema cannot call itself;
  (c) a table that only reads takes no lock: a Go reader (shared flock) and
      a Go writer (exclusive flock) can open the store, another process can
      write it; the table writes once that process is gone, and holds the
      store from its first write until it closes.

Prints "test_trust: N checks, M failed" and exits 1 if any failed.
"""
import fcntl
import hashlib
import os
import sqlite3
import subprocess
import sys

import extcheck
from extcheck import check, connect


def q(s):
    return "'" + s.replace("'", "''") + "'"


def err(conn, sql):
    """The error message of sql, or None if it succeeded."""
    try:
        conn.execute(sql).fetchall()
        return None
    except sqlite3.Error as e:
        return str(e)


def tree_digest(d):
    """Names, sizes and contents of every file under d."""
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(d)):
        for f in sorted(files):
            p = os.path.join(root, f)
            h.update(p.encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def make_store(d, n):
    c = connect()
    c.execute("CREATE VIRTUAL TABLE s USING klevdb(dir=%s)" % q(d))
    c.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
              "INSERT INTO s(key, value) SELECT 'k' || i, 'v' || i FROM n" % n)
    c.close()


def count(d):
    c = connect()
    n = c.execute("SELECT count(*) FROM klevdb_scan(%s)" % q(d)).fetchone()[0]
    c.close()
    return n


def hostile_file(path, schema_sql):
    """Writes a database file the way an attacker would: plain SQLite, no
    extension loaded, the virtual tables put into the schema as text."""
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA writable_schema = ON")
    for name, sql in schema_sql:
        c.execute("INSERT INTO sqlite_master(type, name, tbl_name, rootpage, sql) "
                  "VALUES ('table', ?, ?, 0, ?)", (name, name, sql))
    c.execute("PRAGMA writable_schema = OFF")
    c.close()


def test_hostile_file(work):
    victim = os.path.join(work, "victim.d")
    loot = os.path.join(work, "loot", "d")
    make_store(victim, 1000)
    before = tree_digest(victim)
    evil = os.path.join(work, "evil.db")
    c = sqlite3.connect(evil, isolation_level=None)
    c.executescript("CREATE TABLE t(a); CREATE TABLE t2(a); CREATE TABLE t3(a); "
                    "CREATE TABLE mine(secret);"
                    "INSERT INTO mine VALUES ('password');")
    c.close()
    # (triggers=1 in a schema alone grants nothing either: see
    # test_triggers_on_purpose.)
    hostile_file(evil, [
        ("x", "CREATE VIRTUAL TABLE x USING klevdb(dir=%s)" % q(victim)),
        ("y", "CREATE VIRTUAL TABLE y USING klevdb(dir=%s)" % q(loot)),
    ])
    c = sqlite3.connect(evil, isolation_level=None)
    c.executescript("CREATE TRIGGER wipe AFTER INSERT ON t BEGIN DELETE FROM x; END;"
                    "CREATE TRIGGER copy AFTER INSERT ON t2 BEGIN "
                    "  INSERT INTO y(value) SELECT secret FROM mine; END;"
                    "CREATE TRIGGER plant AFTER INSERT ON t3 BEGIN "
                    "  INSERT INTO x(key, value) SELECT 'planted', secret FROM mine; END;"
                    "CREATE VIEW peek AS SELECT count(*) FROM x;")
    c.close()

    user = connect(evil)
    e = err(user, "INSERT INTO t VALUES (1)")
    check(e is not None and 'unsafe use of virtual table "x"' in e,
          "a trigger of the file that deletes from a klevdb table is refused", str(e))
    e = err(user, "INSERT INTO t2 VALUES (1)")
    check(e is not None and ("unsafe use" in e or "no store directory" in e),
          "a trigger of the file that copies rows into a folder of its choosing is refused", str(e))
    e = err(user, "INSERT INTO t3 VALUES (1)")
    check(e is not None and 'unsafe use of virtual table "x"' in e,
          "a trigger of the file that inserts into the user's store is refused", str(e))
    e = err(user, "SELECT * FROM peek")
    check(e is not None and 'unsafe use of virtual table "x"' in e,
          "a view of the file on a klevdb table is refused", str(e))
    check(user.execute("SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM t2) + "
                       "(SELECT count(*) FROM t3)").fetchone()[0] == 0,
          "the refused statements changed nothing in the file")
    e = err(user, "SELECT count(*) FROM y")
    check(e is not None and e.startswith("klevdb: table y: no store directory"),
          "a table of the schema whose folder is missing is an error, not a new store", str(e))
    check(not os.path.exists(os.path.dirname(loot)),
          "connecting the schema's tables created no folder", loot)
    # The user's own statement on the table is theirs to make.
    check(user.execute("SELECT count(*) FROM x").fetchone()[0] == 1000,
          "the user's own query of the table works")
    user.close()
    check(count(victim) == 1000 and tree_digest(victim) == before,
          "the store the file pointed at is untouched (1000 messages, same files)")


def test_triggers_on_purpose(work):
    db = os.path.join(work, "app.db")
    c = connect(db)
    c.executescript("CREATE VIRTUAL TABLE outbox USING klevdb(dir='outbox.d', triggers=1, "
                    "  key='text', value='text');"
                    "CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT);"
                    "CREATE TRIGGER publish AFTER INSERT ON orders BEGIN "
                    "  INSERT INTO outbox(key, value) VALUES ('order:' || new.id, new.item); END;")
    c.close()
    outbox = os.path.join(work, "outbox.d")

    c = connect(db)
    e = err(c, "INSERT INTO orders(item) VALUES ('refused')")
    check(e is not None and 'unsafe use of virtual table "outbox"' in e,
          "triggers=1 alone (the schema's say-so) does not let a trigger write", str(e))
    c.close()

    c = connect(db)
    c.execute("SELECT klevdb_allow_triggers('other.d')")
    e = err(c, "INSERT INTO orders(item) VALUES ('refused too')")
    check(e is not None and "unsafe use" in e, "allowing another store does not count", str(e))
    c.close()

    c = connect(db)
    r = c.execute("SELECT klevdb_allow_triggers('outbox.d')").fetchone()[0]
    check(r == outbox, "klevdb_allow_triggers returns the resolved folder", r)
    e = err(c, "INSERT INTO orders(item) VALUES ('book')")
    check(e is None, "with the store allowed, the trigger publishes", str(e))
    rows = c.execute("SELECT key, value FROM outbox").fetchall()
    check(rows == [("order:1", "book")], "the outbox has the order", str(rows))
    c.execute("PRAGMA trusted_schema = OFF")
    e = err(c, "INSERT INTO orders(item) VALUES ('pen')")
    check(e is None, "an allowed store stays usable with trusted_schema=OFF", str(e))
    c.close()

    c = connect(db)
    c.execute("SELECT count(*) FROM outbox").fetchall()
    e = err(c, "SELECT klevdb_allow_triggers('outbox.d')")
    check(e is not None and e.startswith("klevdb: klevdb_allow_triggers: table main.outbox") and
          "before the table is first used" in e,
          "allowing a store whose table is in use already says so", str(e))
    c.close()

    # A schema cannot call the function itself.
    c = connect(db)
    c.execute("CREATE VIEW grant_it AS SELECT klevdb_allow_triggers('outbox.d')")
    c.close()
    c = connect(db)
    e = err(c, "SELECT * FROM grant_it")
    check(e is not None and "unsafe use of klevdb_allow_triggers()" in e,
          "a view cannot call klevdb_allow_triggers", str(e))
    e = err(c, "INSERT INTO orders(item) VALUES ('still refused')")
    check(e is not None and "unsafe use" in e, "... and the trigger stays refused", str(e))
    c.close()


def try_flock(path, how):
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


# Another process writing the store through the extension (a writer's
# klevdb_open, as Go's writer does): it holds the store until stdin closes.
WRITER = r"""
import sqlite3, sys
c = sqlite3.connect(":memory:", isolation_level=None)
c.enable_load_extension(True)
c.load_extension(sys.argv[1])
c.execute("CREATE VIRTUAL TABLE w USING klevdb(dir=?1)".replace("?1", "'" + sys.argv[2].replace("'", "''") + "'"))
try:
    c.execute("INSERT INTO w(key, value) VALUES ('other', 'process')")
    print("wrote", flush=True)
except sqlite3.Error as e:
    print("error " + str(e), flush=True)
sys.stdin.read()
"""


def test_reader_takes_no_lock(work):
    d = os.path.join(work, "s.d")
    make_store(d, 10)
    lock = os.path.join(d, ".lock")
    c = connect()
    c.execute("CREATE VIRTUAL TABLE s USING klevdb(dir=%s)" % q(d))
    check(c.execute("SELECT count(*), max(value) FROM s").fetchone() == (10, "v9"),
          "the table reads the store")
    check(try_flock(lock, fcntl.LOCK_SH), "a Go reader (shared flock) opens the store meanwhile")
    check(try_flock(lock, fcntl.LOCK_EX), "a Go writer (exclusive flock) opens the store meanwhile")

    p = subprocess.Popen([sys.executable, "-c", WRITER, extcheck.MODULE, d],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    check(line == "wrote", "another process writes the store while the table is connected", line)
    check(c.execute("SELECT count(*) FROM s").fetchone()[0] == 11,
          "the table sees the other process's message")
    e = err(c, "INSERT INTO s(value) VALUES ('mine')")
    check(e is not None and e.startswith("klevdb: table s: another process is writing"),
          "the table's write while the other process holds the store is refused", str(e))
    p.stdin.close()
    check(p.wait(timeout=30) == 0, "the other process ends")

    e = err(c, "INSERT INTO s(value) VALUES ('mine')")
    check(e is None, "the table writes once the other process is gone", str(e))
    check(c.execute("SELECT count(*), max(\"offset\") FROM s").fetchone() == (12, 11),
          "its message follows the other process's")
    check(not try_flock(lock, fcntl.LOCK_EX),
          "from its first write the table holds the store (until it closes)")
    c.close()
    check(try_flock(lock, fcntl.LOCK_EX), "closing the connection lets the store go")
    check(count(d) == 12, "12 messages in the store")


if __name__ == "__main__":
    sys.exit(extcheck.main("test_trust", __doc__, sys.argv,
                           (test_hostile_file, test_triggers_on_purpose,
                            test_reader_takes_no_lock)))
