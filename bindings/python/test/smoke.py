"""Drives sqlite-klevdb, installed into a fresh virtual environment, with
the standard library's sqlite3: load, INSERT, SELECT by key, DELETE by time,
and read a store Go klevdb wrote (run.sh copies tests/fixtures/v2-basic/store
to go-store/ in the current folder)."""
import os
import sqlite3
import sys

import sqlite_klevdb

path = sqlite_klevdb.loadable_path()
assert os.path.isabs(path) and os.path.isfile(path), path
assert path.startswith(sys.prefix + os.sep), (path, sys.prefix)   # the installed copy

db = sqlite3.connect("app.db")
try:
    db.execute("CREATE VIRTUAL TABLE t USING klevdb(dir='x.d')")
    raise AssertionError("the module was there before load()")
except sqlite3.OperationalError as e:
    assert str(e) == "no such module: klevdb", e
sqlite_klevdb.load(db)
try:   # load() leaves extension loading off
    db.execute("SELECT load_extension('nothing')")
    raise AssertionError("load_extension() still allowed")
except sqlite3.OperationalError as e:
    assert str(e) == "not authorized", e

db.execute("CREATE VIRTUAL TABLE events USING klevdb(dir='events.d', key='text', value='text')")
cur = db.cursor()
offsets = []
for key, value, time in [("user:1", "click", "2024-05-01T09:00:00Z"),
                         ("user:2", "view", "2024-05-01T09:00:01Z"),
                         ("user:1", "buy", "2024-05-01T09:00:02Z")]:
    cur.execute("INSERT INTO events(key, value, time) VALUES (?, ?, ?)", (key, value, time))
    offsets.append(cur.lastrowid)
db.commit()
assert offsets == [0, 1, 2], offsets
assert os.path.isfile(os.path.join("events.d", "00000000000000000000.log"))

rows = db.execute('SELECT "offset", value FROM events WHERE key = ?', ("user:1",)).fetchall()
assert rows == [(0, "click"), (2, "buy")], rows
row = db.execute('SELECT "offset", value FROM events WHERE key = ? ORDER BY "offset" DESC LIMIT 1',
                 ("user:1",)).fetchone()
assert row == (2, "buy"), row
assert db.execute('SELECT time FROM events WHERE "offset" = 1').fetchone() == (1714554001000000,)

db.execute("DELETE FROM events WHERE time < klevdb_time('2024-05-01T09:00:01Z')")
db.commit()
rows = db.execute('SELECT "offset", key FROM events').fetchall()
assert rows == [(1, "user:2"), (2, "user:1")], rows

# The store Go klevdb wrote: 10 messages, keys key-00..key-09 (msg 5
# without one), value bytes.
db.execute("CREATE VIRTUAL TABLE go USING klevdb(dir='go-store', key='text', value='blob')")
row = db.execute('SELECT count(*), min("offset"), max("offset"), sum(length(value)) FROM go').fetchone()
assert row == (10, 0, 9, 320), row
row = db.execute("SELECT \"offset\", time, value FROM go WHERE key = 'key-04'").fetchone()
assert row == (4, 1672531204000000, b"value-04"), row
assert db.execute('SELECT key FROM go WHERE "offset" = 5').fetchone() == (None,)
db.close()
print("ok: sqlite-klevdb with Python %s, SQLite %s" % (sys.version.split()[0], sqlite3.sqlite_version))
