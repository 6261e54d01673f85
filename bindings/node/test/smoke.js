// Drives sqlite-klevdb as a user would, from a project that installed the
// packed tarball beside better-sqlite3 (run.sh sets that up): load, INSERT,
// SELECT by key, DELETE by time, and read a store Go klevdb wrote.
//   node smoke.js   (in the project folder; go-store/ is tests/fixtures/v2-basic/store)
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const Database = require('better-sqlite3');
const klevdb = require('sqlite-klevdb');

const where = klevdb.getLoadablePath();
assert.ok(path.isAbsolute(where) && fs.existsSync(where), where);
assert.match(where, /node_modules\/sqlite-klevdb\/lib\/linux-x64\/klevdb\.so$/);

const db = new Database('app.db');
assert.throws(() => db.exec("CREATE VIRTUAL TABLE t USING klevdb(dir='x.d')"), /no such module: klevdb/);
klevdb.load(db);

db.exec("CREATE VIRTUAL TABLE events USING klevdb(dir='events.d', key='text', value='text')");
const ins = db.prepare('INSERT INTO events(key, value, time) VALUES (?, ?, ?)');
assert.strictEqual(ins.run('user:1', 'click', '2024-05-01T09:00:00Z').lastInsertRowid, 0);
assert.strictEqual(ins.run('user:2', 'view', '2024-05-01T09:00:01Z').lastInsertRowid, 1);
assert.strictEqual(ins.run('user:1', 'buy', '2024-05-01T09:00:02Z').lastInsertRowid, 2);
assert.ok(fs.existsSync(path.join('events.d', '00000000000000000000.log')));

assert.deepStrictEqual(db.prepare('SELECT "offset", value FROM events WHERE key = ?').all('user:1'),
                       [{ offset: 0, value: 'click' }, { offset: 2, value: 'buy' }]);
assert.deepStrictEqual(
  db.prepare('SELECT "offset", value FROM events WHERE key = ? ORDER BY "offset" DESC LIMIT 1').get('user:1'),
  { offset: 2, value: 'buy' });
assert.strictEqual(db.prepare("SELECT time FROM events WHERE \"offset\" = 1").pluck().get(),
                   1714554001000000);

db.prepare("DELETE FROM events WHERE time < klevdb_time('2024-05-01T09:00:01Z')").run();
assert.deepStrictEqual(db.prepare('SELECT "offset", key FROM events').all(),
                       [{ offset: 1, key: 'user:2' }, { offset: 2, key: 'user:1' }]);

// The store Go klevdb wrote: 10 messages, keys key-00..key-09 (msg 5
// without one), value bytes.
db.exec("CREATE VIRTUAL TABLE go USING klevdb(dir='go-store', key='text', value='blob')");
assert.deepStrictEqual(db.prepare('SELECT count(*) n, min("offset") lo, max("offset") hi, sum(length(value)) b FROM go').get(),
                       { n: 10, lo: 0, hi: 9, b: 320 });
const m = db.prepare("SELECT \"offset\", time, value FROM go WHERE key = 'key-04'").get();
assert.deepStrictEqual(m, { offset: 4, time: 1672531204000000, value: Buffer.from('value-04') });
assert.strictEqual(db.prepare('SELECT key FROM go WHERE "offset" = 5').pluck().get(), null);
db.close();
console.log('ok: sqlite-klevdb with better-sqlite3');
