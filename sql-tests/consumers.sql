-- consumers.sql: named consumers. The hidden column consumer reads from a
-- consumer's position (with key =, time >=, offset >=, wait =, LIMIT),
-- klevdb_commit / klevdb_reset / klevdb_consumer_drop move it inside the
-- caller's transaction (ROLLBACK, ROLLBACK TO undo them), klevdb_consumers
-- shows lag, klevdb_stat lists consumers; every wrong use is refused with
-- a klevdb: error and moves nothing.
-- Times: 1672531200000000 is 2023-01-01T00:00:00Z in microseconds.

CREATE VIRTUAL TABLE events USING klevdb(dir='ev.d', key='text', value='text');
INSERT INTO events(key, value, time) VALUES
  ('a', 'v0', 1672531200000000), ('b', 'v1', 1672531201000000), ('a', 'v2', 1672531202000000),
  ('c', 'v3', 1672531203000000), ('a', 'v4', 1672531204000000);
.print == the shadow table exists from CREATE, empty
SELECT name FROM sqlite_master WHERE name LIKE 'events_%' ORDER BY name;
SELECT count(*) FROM events_consumers;

.print == a new consumer starts at the oldest message; consumer reads back as given
SELECT "offset", key, value, consumer FROM events WHERE consumer = 'billing' LIMIT 2;
.print == hidden: not in SELECT *, NULL when not given
SELECT * FROM events WHERE "offset" = 4;
SELECT consumer IS NULL FROM events WHERE "offset" = 4;
.print == commit 2: returns it; the next read starts there
SELECT klevdb_commit('events', 'billing', 2);
SELECT "offset", value FROM events WHERE consumer = 'billing' LIMIT 2;
.print == the same position again is allowed (a retried batch)
SELECT klevdb_commit('events', 'billing', 2);
.print == with key =: only a's at or after 2 (2, 4)
SELECT "offset", value FROM events WHERE consumer = 'billing' AND key = 'a';
.print == with offset >=: the later start wins (3, 4 then 2, 3, 4)
SELECT "offset" FROM events WHERE consumer = 'billing' AND "offset" >= 3;
SELECT "offset" FROM events WHERE consumer = 'billing' AND "offset" >= 0;
.print == with time >=: the later start wins (4 then 2..4)
SELECT "offset" FROM events WHERE consumer = 'billing' AND time >= klevdb_time('2023-01-01T00:00:04Z');
SELECT "offset" FROM events WHERE consumer = 'billing' AND time >= klevdb_time('2023-01-01T00:00:00Z');
.print == with wait: rows there come at once; at the end the wait runs out (0 rows)
SELECT "offset" FROM events WHERE consumer = 'billing' AND wait = 10000 LIMIT 1;
SELECT klevdb_commit('events', 'billing', 5);
SELECT count(*) FROM events WHERE consumer = 'billing' AND wait = 50;
.print == DESC from the position: newest first down to it
SELECT klevdb_reset('events', 'billing', 3);
SELECT "offset" FROM events WHERE consumer = 'billing' ORDER BY "offset" DESC;
.print == the plan shows consumer=?
EXPLAIN QUERY PLAN SELECT * FROM events WHERE consumer = 'billing' AND key = 'a' LIMIT 10;
.print == consumer = NULL matches nothing, like any = NULL
SELECT count(*) FROM events WHERE consumer = NULL;
.print == a consumer never committed reads from the start and is not created by reading
SELECT count(*) FROM events WHERE consumer = 'nobody';
SELECT count(*) FROM events_consumers WHERE name = 'nobody';

.print ======== transactions: positions commit and roll back with the caller
BEGIN;
SELECT klevdb_commit('events', 'billing', 4);
SELECT "offset" FROM events WHERE consumer = 'billing';
ROLLBACK;
SELECT position FROM events_consumers WHERE name = 'billing';
BEGIN;
SELECT klevdb_commit('events', 'billing', 4);
SAVEPOINT s1;
SELECT klevdb_commit('events', 'billing', 5);
ROLLBACK TO s1;
RELEASE s1;
COMMIT;
.print == 4 after ROLLBACK TO the savepoint
SELECT position FROM events_consumers WHERE name = 'billing';
.print == commit counts this transaction's own rows: 6 is the end while 5 is pending
BEGIN;
INSERT INTO events(key, value, time) VALUES ('d', 'v5', 1672531205000000);
SELECT klevdb_commit('events', 'billing', 6);
SELECT klevdb_commit('events', 'billing', 7);
ROLLBACK;
SELECT position FROM events_consumers WHERE name = 'billing';
.print == a new consumer created in a rolled back transaction is gone
BEGIN;
SELECT klevdb_reset('events', 'temp', 'end');
ROLLBACK;
SELECT count(*) FROM events_consumers WHERE name = 'temp';

.print ======== klevdb_reset
SELECT klevdb_reset('events', 'billing', 'oldest');
SELECT klevdb_reset('events', 'billing', 'END');
SELECT klevdb_reset('events', 'billing', 1);
SELECT klevdb_reset('events', 'billing', 5);
.print == to a time: the first message at or after it (3), the end if none (5)
SELECT klevdb_reset('events', 'billing', '2023-01-01T00:00:02.5Z');
SELECT klevdb_reset('events', 'billing', '2030-01-01T00:00:00Z');
SELECT klevdb_reset('events', 'billing', '2000-01-01T00:00:00Z');
.print == a new consumer told where to start
SELECT klevdb_reset('events', 'audit', 'end');
SELECT count(*) FROM events WHERE consumer = 'audit';
INSERT INTO events(key, value, time) VALUES ('d', 'v5', 1672531205000000);
SELECT "offset", value FROM events WHERE consumer = 'audit';

.print == to a time before 1970, which the index clamps to 0: still the first message at or after it
CREATE VIRTUAL TABLE t70 USING klevdb(dir='t70.d');
INSERT INTO t70(value, time) VALUES ('a', -2000), ('b', -1000), ('c', 5);
.print 2 (not 0), then 1
SELECT klevdb_reset('t70', 'c', '1970-01-01');
SELECT klevdb_reset('t70', 'c', '1969-12-31T23:59:59.999Z');
.print == nor a message that this transaction deleted: the end (3), then 4 (3 was deleted too)
BEGIN;
DELETE FROM t70 WHERE "offset" = 2;
SELECT klevdb_reset('t70', 'c', '1970-01-01');
INSERT INTO t70(value, time) VALUES ('d', 1), ('e', 7);
DELETE FROM t70 WHERE "offset" = 3;
SELECT klevdb_reset('t70', 'c', '1970-01-01');
ROLLBACK;
.print == oldest, and the offsets a reset takes, start at the oldest message this transaction sees: 1 (0 refused), then 4 (1..3 deleted)
BEGIN;
DELETE FROM t70 WHERE "offset" = 0;
SELECT klevdb_reset('t70', 'c', 'oldest');
SELECT klevdb_reset('t70', 'c', 0);
INSERT INTO t70(value, time) VALUES ('d', 1), ('e', 7);
DELETE FROM t70 WHERE "offset" IN (1, 2, 3);
SELECT klevdb_reset('t70', 'c', 'oldest');
ROLLBACK;
DROP TABLE t70;
.print == a table without the time index reads from the oldest message: 1, then the end (3)
CREATE VIRTUAL TABLE nt USING klevdb(dir='nt.d', time_index=0);
INSERT INTO nt(value, time) VALUES ('a', 1672531200000000), ('b', 1672531202000000), ('c', 1672531201000000);
SELECT klevdb_reset('nt', 'c', '2023-01-01T00:00:01.5Z');
SELECT klevdb_reset('nt', 'c', '2024-01-01');
DROP TABLE nt;

.print ======== klevdb_consumers: lag, bytes, oldest unconsumed time
SELECT klevdb_commit('events', 'billing', 4);
SELECT name, position, lag, lag_bytes, oldest_unconsumed_time,
       committed_at > 1672531200000000 AND committed_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000000 + 60000000
  FROM klevdb_consumers('events');
.print == lag_bytes: klevdb_size of each message (71 bytes here), 2 of them
.print == caught up: lag 0, no oldest unconsumed time
SELECT klevdb_commit('events', 'billing', 6);
SELECT name, lag, lag_bytes, oldest_unconsumed_time IS NULL FROM klevdb_consumers('events') WHERE name = 'billing';
.print == hidden table_name column, other spellings of the table
SELECT count(*) FROM klevdb_consumers WHERE table_name = 'main.events';
SELECT count(*) FROM klevdb_consumers('"events"');
.print == klevdb_stat lists them
SELECT json_extract(klevdb_stat('events'), '$.consumers');

.print ======== klevdb_consumer_drop
SELECT klevdb_consumer_drop('events', 'audit');
SELECT name FROM klevdb_consumers('events');

.print ======== bad input: each refused, no position moves
SELECT klevdb_consumer_drop('events', 'audit');
SELECT klevdb_commit('events', 'billing', 5);
SELECT klevdb_commit('events', 'billing', 7);
SELECT klevdb_commit('events', 'billing', -1);
SELECT klevdb_commit('events', 'billing', NULL);
SELECT klevdb_commit('events', 'billing', 6.5);
SELECT klevdb_commit('events', 'billing', '6');
SELECT klevdb_commit('events', NULL, 6);
SELECT klevdb_commit('events', '', 6);
SELECT klevdb_commit('events', 7, 6);
SELECT klevdb_commit('nosuch', 'billing', 6);
SELECT klevdb_commit(NULL, 'billing', 6);
SELECT klevdb_reset('events', 'billing', 7);
SELECT klevdb_reset('events', 'billing', -1);
SELECT klevdb_reset('events', 'billing', NULL);
SELECT klevdb_reset('events', 'billing', 'newest');
SELECT klevdb_reset('events', 'billing', 2.0);
-- a number in TEXT is no offset, nor microseconds: only ISO-8601 times are TEXT
SELECT klevdb_reset('events', 'billing', '0');
SELECT klevdb_reset('events', 'billing', '2023-02-30');
SELECT klevdb_consumer_drop('events', NULL);
SELECT * FROM klevdb_consumers('nosuch');
SELECT * FROM klevdb_consumers;
SELECT * FROM events WHERE consumer > 'a';
SELECT * FROM events WHERE consumer IN ('a', 'b');
SELECT * FROM events WHERE consumer LIKE 'b%';
SELECT * FROM events WHERE consumer = 5;
SELECT * FROM events WHERE consumer = '';
-- 'billing' as a BLOB is no name (it must not reach billing's position)
SELECT klevdb_commit('events', x'62696c6c696e67', 6);
SELECT klevdb_reset('events', x'62696c6c696e67', 0);
SELECT klevdb_consumer_drop('events', x'62696c6c696e67');
SELECT "offset" FROM events WHERE consumer = x'62696c6c696e67';
INSERT INTO events(value, consumer) VALUES ('x', 'billing');
.print == still where it was: billing 6, nothing else
SELECT name, position FROM events_consumers;

.print ======== a read-only table has no consumers
CREATE VIRTUAL TABLE ro USING klevdb(dir='ev.d', readonly=1);
SELECT count(*) FROM ro;
SELECT "offset" FROM ro WHERE consumer = 'billing';
SELECT klevdb_commit('ro', 'billing', 1);
SELECT klevdb_reset('ro', 'billing', 'oldest');
SELECT klevdb_consumer_drop('ro', 'billing');

.print ======== a table made before consumers: its shadow table comes with the first commit
CREATE VIRTUAL TABLE old USING klevdb(dir='old.d');
DROP TABLE old_consumers;
INSERT INTO old(value) VALUES ('x'), ('y');
SELECT "offset", value FROM old WHERE consumer = 'c1';
SELECT * FROM klevdb_consumers('old');
SELECT json_extract(klevdb_stat('old'), '$.consumers') IS NULL;
SELECT klevdb_commit('old', 'c1', 1);
SELECT "offset", value FROM old WHERE consumer = 'c1';
SELECT name, position, lag FROM klevdb_consumers('old');

.print ======== RENAME and DROP take the consumers along
ALTER TABLE old RENAME TO newer;
SELECT name FROM sqlite_master WHERE name LIKE 'newer_%' OR name LIKE 'old_%' ORDER BY name;
SELECT "offset", value FROM newer WHERE consumer = 'c1';
DROP TABLE newer;
SELECT count(*) FROM sqlite_master WHERE name LIKE 'newer%';

.print ======== another database keeps its own positions on the same store
ATTACH ':memory:' AS other;
CREATE VIRTUAL TABLE other.events USING klevdb(dir='ev.d');
SELECT klevdb_commit('other.events', 'billing', 1);
SELECT 'main', position FROM main.events_consumers WHERE name = 'billing';
SELECT 'other', position FROM other.events_consumers WHERE name = 'billing';
SELECT "offset" FROM other.events WHERE consumer = 'billing' LIMIT 1;

.print ======== the shadow tables are the table's own: a defensive connection may not write them
.dbconfig defensive on
UPDATE events_consumers SET position = 0 WHERE name = 'billing';
DELETE FROM events_klevdb;
INSERT INTO events_consumers VALUES ('sneaky', 0, 0);
SELECT klevdb_commit('events', 'billing', (SELECT position FROM events_consumers WHERE name = 'billing'));
SELECT name, position FROM events_consumers ORDER BY name;
.dbconfig defensive off
