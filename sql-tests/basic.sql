-- basic.sql: everyday use of a klevdb table: create, publish, read with each
-- kind of constraint, delete, transactions, what is refused, drop.
-- Times: 1672531200000000 is 2023-01-01T00:00:00Z in microseconds.

.print == create: in-memory databases need dir=
CREATE VIRTUAL TABLE nodir USING klevdb;
CREATE VIRTUAL TABLE events USING klevdb(dir='basic.d', key='text', value='text');
SELECT count(*) FROM events;
SELECT * FROM events;

.print == insert one row, INTEGER time
INSERT INTO events(key, value, time) VALUES ('alice', 'click', 1672531200000000);
SELECT last_insert_rowid();
.print == insert one row, ISO-8601 time
INSERT INTO events(key, value, time) VALUES ('bob', 'view', '2023-01-01T00:00:01Z');
SELECT last_insert_rowid();
.print == insert several rows (fraction, zone, NULL key, NULL value)
INSERT INTO events(key, value, time) VALUES
  ('alice', 'order', '2023-01-01T00:00:02.5Z'),
  ('carol', 'click', 1672531203000000),
  ('bob', 'order', '2023-01-01T01:00:04+01:00'),
  (NULL, 'heartbeat', 1672531205000000),
  ('alice', NULL, 1672531206000000);
SELECT last_insert_rowid(), changes();

.print == SELECT *
SELECT * FROM events;
.print == rowid is the offset
SELECT rowid, "offset", key FROM events WHERE rowid = 4;

.print == insert without a time: now
INSERT INTO events(key, value) VALUES ('dave', 'signup');
SELECT "offset", key, value, abs(time / 1000000 - unixepoch()) < 600 FROM events WHERE "offset" = 7;
.print == insert with a NULL time: now
INSERT INTO events(key, value, time) VALUES ('erin', 'signup', NULL);
SELECT "offset", key, value, time > 1672531206000000 FROM events WHERE "offset" = 8;

.print == offset = 3
SELECT * FROM events WHERE "offset" = 3;
.print == offset = 99 (none)
SELECT * FROM events WHERE "offset" = 99;
.print == offset >= 5
SELECT "offset", key, value FROM events WHERE "offset" >= 5;
.print == offset > 5
SELECT "offset", key, value FROM events WHERE "offset" > 5;
.print == offset BETWEEN 2 AND 4
SELECT "offset", key, value FROM events WHERE "offset" BETWEEN 2 AND 4;
.print == offset > 1 AND offset < 4
SELECT "offset", key, value FROM events WHERE "offset" > 1 AND "offset" < 4;
.print == offset IN (1, 3, 6, 99)
SELECT "offset", key, value FROM events WHERE "offset" IN (1, 3, 6, 99);
.print == key = alice
SELECT "offset", key, value, time FROM events WHERE key = 'alice';
.print == key = nobody (none)
SELECT "offset" FROM events WHERE key = 'nobody';
.print == key IN (bob, carol)
SELECT "offset", key, value FROM events WHERE key IN ('bob', 'carol') ORDER BY "offset";
.print == key IS NULL
SELECT "offset", key, value FROM events WHERE key IS NULL;
.print == latest by key
SELECT "offset", key, value FROM events WHERE key = 'bob' ORDER BY "offset" DESC LIMIT 1;
.print == time >= 1672531203000000 (and offset < 7)
SELECT "offset", key, time FROM events WHERE time >= 1672531203000000 AND "offset" < 7;
.print == time from unixepoch(2023-01-01 00:00:02) * 1000000 to before ...04
SELECT "offset", key, time FROM events
  WHERE time >= unixepoch('2023-01-01 00:00:02') * 1000000
    AND time < unixepoch('2023-01-01 00:00:04') * 1000000;
.print == ORDER BY offset DESC LIMIT 3
SELECT "offset", key, value FROM events ORDER BY "offset" DESC LIMIT 3;
.print == ORDER BY offset DESC
SELECT "offset" FROM events ORDER BY "offset" DESC;
.print == offset >= 4 ORDER BY offset DESC
SELECT "offset", key FROM events WHERE "offset" >= 4 ORDER BY "offset" DESC;
.print == offset <= 2 ORDER BY offset DESC
SELECT "offset", key FROM events WHERE "offset" <= 2 ORDER BY "offset" DESC;
.print == LIMIT 2 OFFSET 3
SELECT "offset", key FROM events LIMIT 2 OFFSET 3;
.print == ORDER BY key, offset (sorted by SQLite)
SELECT "offset", key FROM events WHERE "offset" < 7 ORDER BY key, "offset";
.print == aggregates
SELECT count(*), min("offset"), max("offset"), count(key), count(value) FROM events;
SELECT key, count(*) FROM events WHERE "offset" < 7 GROUP BY key ORDER BY key;

.print == DELETE WHERE offset < 2
DELETE FROM events WHERE "offset" < 2;
SELECT changes();
SELECT "offset", key, value FROM events;
.print == DELETE WHERE offset = 4
DELETE FROM events WHERE "offset" = 4;
SELECT "offset" FROM events;
SELECT count(*) FROM events;

.print == transaction rolled back: pending rows are visible, then gone
BEGIN;
INSERT INTO events(key, value, time) VALUES ('frank', 'click', 1672531210000000);
SELECT last_insert_rowid();
SELECT "offset", key, value FROM events WHERE "offset" >= 8;
SELECT "offset", key FROM events WHERE key = 'frank';
ROLLBACK;
SELECT "offset", key, value FROM events WHERE "offset" >= 8;
.print == transaction committed
BEGIN;
INSERT INTO events(key, value, time) VALUES ('frank', 'click', 1672531210000000);
INSERT INTO events(key, value, time) VALUES ('grace', 'order', 1672531211000000);
SELECT "offset", key, value FROM events ORDER BY "offset" DESC LIMIT 2;
COMMIT;
SELECT "offset", key, value, time FROM events WHERE "offset" >= 9;

.print == UPDATE is refused
UPDATE events SET value = 'changed' WHERE "offset" = 3;
SELECT value FROM events WHERE "offset" = 3;
.print == INSERT with an offset is refused
INSERT INTO events("offset", key, value) VALUES (100, 'k', 'v');
INSERT INTO events(rowid, key, value) VALUES (100, 'k', 'v');
.print == bad time
INSERT INTO events(key, value, time) VALUES ('k', 'v', 'yesterday');
SELECT count(*) FROM events;

.print == query plans
EXPLAIN QUERY PLAN SELECT * FROM events WHERE "offset" = 3;
EXPLAIN QUERY PLAN SELECT * FROM events WHERE "offset" >= 3;
EXPLAIN QUERY PLAN SELECT * FROM events WHERE "offset" BETWEEN 2 AND 4;
EXPLAIN QUERY PLAN SELECT * FROM events WHERE "offset" IN (1, 3);
EXPLAIN QUERY PLAN SELECT * FROM events WHERE key = 'alice';
EXPLAIN QUERY PLAN SELECT * FROM events WHERE key = 'bob' ORDER BY "offset" DESC LIMIT 1;
EXPLAIN QUERY PLAN SELECT * FROM events WHERE time >= 1672531203000000;
EXPLAIN QUERY PLAN SELECT * FROM events ORDER BY "offset" DESC LIMIT 3;
EXPLAIN QUERY PLAN SELECT count(*) FROM events;
EXPLAIN QUERY PLAN SELECT * FROM events WHERE value = 'click';

.print == DROP TABLE keeps the store
DROP TABLE events;
SELECT count(*) FROM events;
SELECT "offset", CASE WHEN "offset" IN (7, 8) THEN 'now' ELSE time END,
       CAST(key AS TEXT), CAST(value AS TEXT)
  FROM klevdb_scan('basic.d');
.print == the same store under a new table
CREATE VIRTUAL TABLE again USING klevdb(dir='basic.d', key='text', value='text');
SELECT "offset", key, value FROM again WHERE "offset" >= 9;
INSERT INTO again(key, value, time) VALUES ('heidi', 'view', 1672531212000000);
SELECT last_insert_rowid();
SELECT count(*) FROM again;
