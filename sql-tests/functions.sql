-- functions.sql: the SQL functions (maintenance of a table named by a
-- string, directory-level check/recover/migrate, the codec helpers) and the
-- klevdb_scan table-valued function over the Go fixtures.
-- Times: 1672531200000000 is 2023-01-01T00:00:00Z in microseconds.

.print == klevdb_varint / klevdb_unvarint: the zig-zag varints of Go
SELECT hex(klevdb_varint(0)), hex(klevdb_varint(-1)), hex(klevdb_varint(1)),
       hex(klevdb_varint(63)), hex(klevdb_varint(-64)), hex(klevdb_varint(64)),
       hex(klevdb_varint(-65));
SELECT hex(klevdb_varint(9223372036854775807)), hex(klevdb_varint(-9223372036854775808));
SELECT x, klevdb_unvarint(klevdb_varint(x)) = x FROM (
  SELECT 0 AS x UNION ALL SELECT 1 UNION ALL SELECT -1 UNION ALL SELECT 300
  UNION ALL SELECT -123456789 UNION ALL SELECT 1672531200000000
  UNION ALL SELECT 9223372036854775807 UNION ALL SELECT -9223372036854775808);
SELECT klevdb_unvarint(x'8101'), klevdb_unvarint(x'7f'), klevdb_unvarint(x'feffffffffffffffff01');
.print -- NULL in, NULL out; zero bytes are an absent value
SELECT klevdb_varint(NULL), klevdb_unvarint(NULL), klevdb_unvarint(x'');
.print -- deterministic and innocuous: usable in a view
CREATE VIEW v_varint AS SELECT hex(klevdb_varint(150)) AS h;
SELECT * FROM v_varint;
.print -- errors
SELECT klevdb_unvarint(x'80');
SELECT klevdb_unvarint(x'ffffffffffffffffff7f');
SELECT klevdb_unvarint(x'ffffffffffffffffffff01');
SELECT klevdb_unvarint(x'0101');
SELECT klevdb_unvarint('01');
SELECT klevdb_varint('1');
SELECT klevdb_varint(1.5);
SELECT klevdb_varint();

.print == klevdb_scan: any store, read-only, without CREATE
SELECT count(*), min("offset"), max("offset"), min(time), max(time)
  FROM klevdb_scan('fixtures/v2-basic/store');
.print -- msg 3: empty value (absent), msg 5: absent key, msg 7: bytes 0..255
SELECT "offset", time, typeof(key), CAST(key AS TEXT), typeof(value), length(value),
       hex(substr(value, 1, 3))
  FROM klevdb_scan('fixtures/v2-basic/store');
.print -- rowid is the offset; start offset; hidden columns
SELECT rowid, "offset" FROM klevdb_scan('fixtures/v2-basic/store') WHERE rowid > 7;
SELECT dir, start, "offset" FROM klevdb_scan('fixtures/v2-basic/store', 8);
SELECT count(*) FROM klevdb_scan WHERE dir = 'fixtures/v2-basic/store' AND start = 3;
SELECT "offset" FROM klevdb_scan('fixtures/v2-basic/store', 7) ORDER BY "offset";
SELECT "offset" FROM klevdb_scan('fixtures/v2-basic/store', 7) ORDER BY "offset" DESC;
.print -- V1 store (no file headers), many segments
SELECT count(*), sum("offset"), min(time), max(time) FROM klevdb_scan('fixtures/v1-basic/store');
SELECT "offset", time, CAST(key AS TEXT), CAST(substr(value, 1, 14) AS TEXT)
  FROM klevdb_scan('fixtures/v1-basic/store') LIMIT 3;
SELECT "offset", CAST(key AS TEXT) FROM klevdb_scan('fixtures/v1-basic/store', 997);
.print -- 13 segments, more than one batch each; time goes back at 3000
SELECT count(*), sum("offset") FROM klevdb_scan('fixtures/v2-multiseg/store');
SELECT count(*), min("offset") FROM klevdb_scan('fixtures/v2-multiseg/store', 4321);
SELECT "offset", time - 1672531200000000 FROM klevdb_scan('fixtures/v2-multiseg/store', 2999) LIMIT 3;
.print -- at or past the end: no rows
SELECT count(*) FROM klevdb_scan('fixtures/v1-basic/store', 1000);
SELECT count(*) FROM klevdb_scan('fixtures/v1-basic/store', 5000);
.print -- a directory without segments is an empty store; NULL arguments match nothing
SELECT count(*) FROM klevdb_scan('fixtures/v2-basic');
SELECT count(*) FROM klevdb_scan(NULL);
SELECT count(*) FROM klevdb_scan('fixtures/v2-basic/store', NULL);
.print -- the directory may come from another table (a join)
SELECT d.name, count(s."offset")
  FROM (SELECT 'v2-basic' AS name UNION ALL SELECT 'v1-basic' UNION ALL SELECT 'v2-multiseg') AS d,
       klevdb_scan('fixtures/' || d.name || '/store') AS s
  GROUP BY d.name ORDER BY d.name;
.print -- errors
SELECT * FROM klevdb_scan;
SELECT * FROM klevdb_scan WHERE start = 1;
SELECT * FROM klevdb_scan('fixtures/nope');
SELECT * FROM klevdb_scan('fixtures/v2-basic/meta.json');
SELECT * FROM klevdb_scan('');
SELECT * FROM klevdb_scan(42);
SELECT * FROM klevdb_scan('fixtures/v2-basic/store', -1);
SELECT * FROM klevdb_scan('fixtures/v2-basic/store', '1');
SELECT * FROM klevdb_scan('fixtures/v2-basic/store', 1, 2);
INSERT INTO klevdb_scan("offset") VALUES (1);
CREATE VIRTUAL TABLE s USING klevdb_scan('fixtures/v2-basic/store');
CREATE VIEW v_scan AS SELECT count(*) FROM klevdb_scan('fixtures/v2-basic/store');
SELECT * FROM v_scan;

.print == klevdb_check / klevdb_recover / klevdb_migrate on directories
SELECT klevdb_check('fixtures/v2-basic/store'), klevdb_check('fixtures/v1-basic/store'),
       klevdb_check('fixtures/v2-multiseg/store');
.print -- the indexes are read from the store unless named
SELECT klevdb_check('fixtures/v2-basic/store', 'keys,times');
SELECT klevdb_check('fixtures/v2-basic/store', ' times , keys ');
SELECT klevdb_check('fixtures/v2-basic/store', 'keys');
SELECT klevdb_check('fixtures/v2-basic/store', '');
SELECT klevdb_check('fixtures/v2-basic/store', 'keys,');
SELECT klevdb_check('fixtures/v2-basic/store', 'key');
.print -- a missing directory is an empty store (as in Go)
SELECT klevdb_check('fixtures/nope');
.print -- the torn store: check fails, recover drops the torn message
SELECT klevdb_check('fixtures/v2-torn/store');
SELECT klevdb_recover('fixtures/v2-torn/store');
SELECT klevdb_check('fixtures/v2-torn/store');
SELECT count(*), max("offset") FROM klevdb_scan('fixtures/v2-torn/store');
SELECT klevdb_recover('fixtures/v2-torn/store');
.print -- migrate V1 -> V2 -> V1: same messages each way
SELECT klevdb_migrate('fixtures/v1-basic/store', 'v2');
SELECT klevdb_check('fixtures/v1-basic/store', 'keys,times');
SELECT count(*), sum("offset"), sum(length(key) + length(value)) FROM klevdb_scan('fixtures/v1-basic/store');
SELECT "offset", time, CAST(key AS TEXT) FROM klevdb_scan('fixtures/v1-basic/store', 998);
SELECT klevdb_migrate('fixtures/v1-basic/store', 'V1');
SELECT klevdb_check('fixtures/v1-basic/store');
SELECT count(*), sum("offset"), sum(length(key) + length(value)) FROM klevdb_scan('fixtures/v1-basic/store');
SELECT klevdb_migrate('fixtures/v2-basic/store', 'v2', 'keys,times');
SELECT count(*) FROM klevdb_scan('fixtures/v2-basic/store');
.print -- errors
SELECT klevdb_migrate('fixtures/v2-basic/store', 'v3');
SELECT klevdb_migrate('fixtures/v2-basic/store', 2);
SELECT klevdb_check(NULL);
SELECT klevdb_check('');
SELECT klevdb_check(1);
SELECT klevdb_recover();
.print -- re-indexing: migrate with other indexes (a V1 store does not record
.print -- them: name them, the default is both)
SELECT klevdb_migrate('fixtures/v2-basic/store', 'v1', 'times');
SELECT klevdb_check('fixtures/v2-basic/store', 'times');
SELECT klevdb_check('fixtures/v2-basic/store');
SELECT count(*) FROM klevdb_scan('fixtures/v2-basic/store');
SELECT klevdb_migrate('fixtures/v2-basic/store', 'v2', 'keys,times');
SELECT klevdb_check('fixtures/v2-basic/store');
SELECT count(*), sum(length(key)), sum(length(value)) FROM klevdb_scan('fixtures/v2-basic/store');
.print -- a store open for writing is not recovered or migrated under its writer
CREATE VIRTUAL TABLE multi USING klevdb(dir='fixtures/v2-multiseg/store');
.print -- (a table that only reads leaves the store to others: recover works)
SELECT klevdb_recover('fixtures/v2-multiseg/store');
.print -- (its first write, even one rolled back, makes it the writer until it closes)
BEGIN;
INSERT INTO multi(value) VALUES ('x');
ROLLBACK;
SELECT klevdb_recover('fixtures/v2-multiseg/store');
SELECT klevdb_migrate('fixtures/v2-multiseg/store', 'v1');
SELECT klevdb_check('fixtures/v2-multiseg/store');
SELECT count(*) FROM multi;
.print -- not in views or triggers of the schema (side effects)
CREATE VIEW v_check AS SELECT klevdb_check('fixtures/v2-basic/store');
SELECT * FROM v_check;

.print == maintenance of a table named by a string
CREATE VIRTUAL TABLE events USING klevdb(dir='ev', key='text', value='text');
INSERT INTO events(time, key, value) VALUES
  (1672531200000000, 'a', 'a0'),
  (1672531201000000, 'b', 'b0'),
  (1672531202000000, 'a', 'a1'),
  (1672531203000000, 'c', 'c0'),
  (1672531204000000, 'b', NULL),
  (1672531205000000, 'a', 'a2'),
  (1672531206000000, 'd', 'd0'),
  (1672531207000000, 'c', 'c1'),
  (1672531208000000, 'e', 'e0'),
  (1672531209123456, 'd', NULL);
.print -- klevdb_stat: JSON
SELECT klevdb_stat('events');
SELECT json_extract(klevdb_stat('EVENTS'), '$.messages', '$.next_offset', '$.newest_time');
.print -- klevdb_sync: the next offset; klevdb_gc: 0
SELECT klevdb_sync('events');
SELECT klevdb_gc('events', 0), klevdb_gc('events', 60), klevdb_gc('events', 0.5);
.print -- klevdb_backup: the backup directory, a store of its own
SELECT klevdb_backup('events', 'ev-backup');
SELECT count(*), group_concat(CAST(key AS TEXT), '') FROM klevdb_scan('ev-backup');
SELECT klevdb_check('ev-backup');
.print -- klevdb_compact updates: the older messages of each key, among those at or before the time
SELECT klevdb_compact('events', 'updates', '2023-01-01T00:00:05Z');
SELECT "offset", key, value FROM events;
.print -- klevdb_compact deletes: tombstones that are the oldest message of their key
SELECT klevdb_compact('events', 'deletes', 1672531209123456);
SELECT "offset", key, value FROM events;
SELECT klevdb_compact('events', 'deletes', 1672531209123456);
.print -- klevdb_trim offset: the messages before an offset
SELECT klevdb_trim('events', 'offset', 6);
SELECT group_concat("offset") FROM events;
.print -- klevdb_trim age: the messages at or before a time
SELECT klevdb_trim('events', 'age', '2023-01-01T00:00:06Z');
SELECT group_concat("offset") FROM events;
.print -- klevdb_trim size: keep the newest messages that fit in the size
SELECT json_extract(klevdb_stat('events'), '$.messages', '$.bytes');
SELECT klevdb_trim('events', 'size', 1000000);
SELECT klevdb_trim('events', 'size', 150);
SELECT group_concat("offset") FROM events;
.print -- klevdb_trim count: keep the newest N
INSERT INTO events(time, key, value) VALUES (1672531210000000, 'f', 'f0'), (1672531211000000, 'g', 'g0');
SELECT klevdb_trim('events', 'count', 5);
SELECT klevdb_trim('events', 'count', 1);
SELECT "offset", key, value FROM events;
SELECT klevdb_trim('events', 'count', 0);
SELECT klevdb_stat('events');
.print -- offsets go on after everything was trimmed
INSERT INTO events(time, key, value) VALUES (1672531212000000, 'h', 'h0');
SELECT "offset", key, value FROM events;
SELECT klevdb_stat('events');
.print -- the backup was not touched
SELECT count(*) FROM klevdb_scan('ev-backup');

.print == inside a transaction
BEGIN;
INSERT INTO events(time, key, value) VALUES (1672531213000000, 'i', 'i0');
SELECT klevdb_trim('events', 'count', 0);
SELECT klevdb_compact('events', 'updates', 1672531213000000);
.print -- the others see the committed store
SELECT json_extract(klevdb_stat('events'), '$.messages', '$.next_offset');
SELECT klevdb_sync('events');
ROLLBACK;
BEGIN;
DELETE FROM events WHERE "offset" = 12;
SELECT klevdb_trim('events', 'offset', 100);
ROLLBACK;
BEGIN;
SELECT count(*) FROM events;
SELECT klevdb_trim('events', 'offset', 13);
COMMIT;
SELECT count(*), json_extract(klevdb_stat('events'), '$.next_offset') FROM events;

.print == table names resolved as SQL resolves them
CREATE VIRTUAL TABLE nm USING klevdb(dir='nm-main.d');
ATTACH 'nm-b.db' AS b;
CREATE VIRTUAL TABLE b.nm USING klevdb(dir='nm-b.d');
INSERT INTO main.nm(value) VALUES ('m1'), ('m2');
INSERT INTO b.nm(value) VALUES ('b1'), ('b2'), ('b3');
.print -- a bare name is main's table (no temp one yet), not the attached one
SELECT klevdb_trim('nm', 'count', 0);
SELECT (SELECT count(*) FROM main.nm), (SELECT count(*) FROM b.nm);
.print -- schema.name, quoted or not
SELECT json_extract(klevdb_stat('b.nm'), '$.messages');
SELECT json_extract(klevdb_stat('"b"."nm"'), '$.messages');
SELECT json_extract(klevdb_stat('[B].`NM`'), '$.messages');
SELECT json_extract(klevdb_stat('main.nm'), '$.messages');
SELECT klevdb_trim('b.nm', 'count', 1);
SELECT klevdb_sync('b.nm'), klevdb_gc('b.nm', 0);
SELECT klevdb_compact('main.nm', 'updates', 0);
SELECT (SELECT count(*) FROM main.nm), (SELECT count(*) FROM b.nm);
.print -- temp comes first, as in SELECT
CREATE VIRTUAL TABLE temp.nm USING klevdb(dir='nm-temp.d');
INSERT INTO nm(value) VALUES ('t1'), ('t2'), ('t3'), ('t4');
SELECT json_extract(klevdb_stat('nm'), '$.messages'), (SELECT count(*) FROM nm);
SELECT klevdb_trim('nm', 'count', 2);
SELECT (SELECT count(*) FROM temp.nm), (SELECT count(*) FROM main.nm), (SELECT count(*) FROM b.nm);
.print -- a name with a dot in it is quoted
CREATE VIRTUAL TABLE "a.b" USING klevdb(dir='nm-dot.d');
SELECT json_extract(klevdb_stat('"a.b"'), '$.messages');
SELECT klevdb_stat('a.b');
.print -- wrong names
SELECT klevdb_stat('nosuch.nm');
SELECT klevdb_stat('nm.');
SELECT klevdb_stat('.nm');
SELECT klevdb_stat('b.nm.x');
SELECT klevdb_stat('"nm');
SELECT klevdb_stat('');
CREATE TABLE plain(x);
SELECT klevdb_stat('plain');
.print -- an ordinary temp table hides main's klevdb table of that name, as in SQL
CREATE VIRTUAL TABLE shadowed USING klevdb(dir='nm-shadowed.d');
SELECT json_extract(klevdb_stat('SHADOWED'), '$.messages');
CREATE TEMP TABLE shadowed(x);
SELECT klevdb_stat('shadowed');
SELECT json_extract(klevdb_stat('main.shadowed'), '$.messages');
.print -- ... and main's again once it is gone
DROP TABLE temp.shadowed;
SELECT json_extract(klevdb_stat('shadowed'), '$.messages');
CREATE TEMP VIEW shadowed AS SELECT 1;
SELECT klevdb_stat('Shadowed');
DROP VIEW temp.shadowed;
DETACH b;

.print == triggers and views: only with triggers=1 and the store allowed
ATTACH 'trig.db' AS tg;
CREATE TABLE tg.orders(id INTEGER PRIMARY KEY, item TEXT);
CREATE VIRTUAL TABLE tg.outbox USING klevdb(dir='trig-outbox.d', triggers=1, key='text', value='text');
CREATE VIRTUAL TABLE tg.plain_box USING klevdb(dir='trig-plain.d', key='text', value='text');
CREATE TRIGGER tg.pub AFTER INSERT ON orders BEGIN
  INSERT INTO outbox(key, value) VALUES ('order:' || new.id, new.item);
END;
CREATE VIEW tg.boxed AS SELECT count(*) FROM plain_box;
INSERT INTO tg.orders(item) VALUES ('refused: not allowed');
SELECT klevdb_allow_triggers('trig-outbox.d');
DETACH tg;
SELECT klevdb_allow_triggers('trig-outbox.d');
SELECT klevdb_allow_triggers('trig-plain.d');
ATTACH 'trig.db' AS tg;
INSERT INTO tg.orders(item) VALUES ('book');
SELECT key, value FROM tg.outbox;
SELECT count(*) FROM tg.orders;
.print -- allowed, but the schema did not say triggers=1
SELECT * FROM tg.boxed;
SELECT klevdb_allow_triggers(NULL);
SELECT klevdb_allow_triggers('');
DETACH tg;

.print == an empty table; times before 1970 and with microseconds
CREATE VIRTUAL TABLE empty USING klevdb(dir='empty.d', key='blob', value='blob');
SELECT klevdb_stat('empty');
SELECT klevdb_sync('empty'), klevdb_trim('empty', 'count', 0), klevdb_compact('empty', 'updates', 0);
INSERT INTO empty(time, key, value) VALUES (-1, x'01', x'02'), (1672531200000001, x'01', x'03');
SELECT klevdb_stat('empty');

.print == a read-only table
CREATE VIRTUAL TABLE ro USING klevdb(dir='fixtures/v2-basic/store', readonly=1);
SELECT klevdb_stat('ro');
SELECT klevdb_trim('ro', 'count', 1);
SELECT klevdb_compact('ro', 'deletes', 1672531300000000);
SELECT klevdb_backup('ro', 'ro-backup');
SELECT count(*) FROM klevdb_scan('ro-backup');
SELECT count(*) FROM ro;

.print == errors
SELECT klevdb_stat('nope');
SELECT klevdb_trim('nope', 'count', 1);
SELECT klevdb_stat(1);
SELECT klevdb_stat(NULL);
SELECT klevdb_stat();
SELECT klevdb_trim('events', 'bogus', 1);
SELECT klevdb_trim('events', NULL, 1);
SELECT klevdb_trim('events', 'count', '1');
SELECT klevdb_trim('events', 'count', -1);
SELECT klevdb_trim('events', 'size', 1.5);
SELECT klevdb_trim('events', 'offset', NULL);
SELECT klevdb_trim('events', 'age', 'yesterday');
SELECT klevdb_trim('events', 'age', 1.5);
SELECT klevdb_trim('events', 'count');
SELECT klevdb_compact('events', 'everything', 0);
SELECT klevdb_compact('events', 'updates', 'soon');
SELECT klevdb_gc('events', -1);
SELECT klevdb_gc('events', '1');
SELECT klevdb_backup('events', NULL);
SELECT klevdb_backup('events', '');
CREATE VIEW v_stat AS SELECT klevdb_stat('events');
SELECT * FROM v_stat;
.print == times and sizes have one parser in the library: a comma before the fraction, a blank before the unit
SELECT klevdb_time('2024-05-01T09:00:00,5Z'), klevdb_time('2024-05-01T09:00:00,5Z') = klevdb_time('2024-05-01T09:00:00.5Z');
CREATE VIRTUAL TABLE sz USING klevdb(dir='sz.d', rollover='64 KB', value='text');
INSERT INTO sz(value) WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 99)
  SELECT printf('%01000d', i) FROM c;
INSERT INTO sz(value) VALUES ('past 64 KB: the next insert starts a segment');
SELECT json_extract(klevdb_stat('sz'), '$.segments'), json_extract(klevdb_stat('sz'), '$.messages');
DROP TABLE sz;
.print == the version of the libklevdb in the module
SELECT klevdb_version();
