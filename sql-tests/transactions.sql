-- transactions.sql: the writes of a transaction are pending until COMMIT:
-- queries of the same table see them (scan, key =, offset =, DESC,
-- count(*), newest by key, time >=), last_insert_rowid() gives the offsets
-- handed out, ROLLBACK drops them (the next insert reuses the offsets),
-- COMMIT publishes them at those offsets; SAVEPOINT / ROLLBACK TO / RELEASE
-- nest with inserts and deletes at each level; a failed statement inside a
-- transaction is undone alone; a second table on the same store sees only
-- what is committed. (Two real connections: two_connections.py.)
-- Times: 1672531200000000 is 2023-01-01T00:00:00Z in microseconds.

CREATE VIRTUAL TABLE t USING klevdb(dir='t.d', key='text', value='text');
INSERT INTO t(key, value, time) VALUES ('a', 'v0', 1672531200000000), ('b', 'v1', 1672531201000000), ('a', 'v2', 1672531202000000);
SELECT last_insert_rowid();
.print == committed: 0, 1, 2
SELECT * FROM t;

.print ======== BEGIN, INSERT: pending rows are visible
BEGIN;
INSERT INTO t(key, value, time) VALUES ('c', 'v3', 1672531203000000);
SELECT last_insert_rowid();
INSERT INTO t(key, value, time) VALUES ('a', 'v4', 1672531204000000), ('d', 'v5', 1672531205000000);
SELECT last_insert_rowid();
.print == scan (0 to 5)
SELECT "offset", key, value FROM t;
.print == key = a (0, 2, 4)
SELECT "offset", value FROM t WHERE key = 'a';
.print == key IN (c, d) (3, 5)
SELECT "offset", value FROM t WHERE key IN ('c', 'd');
.print == newest by key a (4, pending)
SELECT "offset", value FROM t WHERE key = 'a' ORDER BY "offset" DESC LIMIT 1;
.print == key = a AND offset >= 3 (4)
SELECT "offset", value FROM t WHERE key = 'a' AND "offset" >= 3;
.print == offset = 4, offset = 6 (none), offset IN (1, 5, 6)
SELECT "offset", key, value FROM t WHERE "offset" = 4;
SELECT "offset", key, value FROM t WHERE "offset" = 6;
SELECT "offset", key, value FROM t WHERE "offset" IN (1, 5, 6);
.print == offset BETWEEN 2 AND 4 (committed and pending)
SELECT "offset", value FROM t WHERE "offset" BETWEEN 2 AND 4;
.print == ORDER BY offset DESC (5 to 0)
SELECT "offset", value FROM t ORDER BY "offset" DESC;
.print == ORDER BY offset DESC LIMIT 2 OFFSET 1 (4, 3)
SELECT "offset", value FROM t ORDER BY "offset" DESC LIMIT 2 OFFSET 1;
.print == LIMIT 2 OFFSET 2 (2, 3)
SELECT "offset", value FROM t LIMIT 2 OFFSET 2;
.print == count(*) (6)
SELECT count(*) FROM t;
.print == time >= 00:00:03.5 (4, 5: pending rows past every committed time)
SELECT "offset", value FROM t WHERE time >= klevdb_time('2023-01-01T00:00:03.5Z');
.print == time >= 00:00:01.5 (2 to 5)
SELECT "offset", value FROM t WHERE time >= klevdb_time('2023-01-01T00:00:01.5Z');
.print == the store itself has only 0 to 2 (klevdb_scan reads it directly)
SELECT group_concat("offset", ' ') FROM klevdb_scan('t.d');
ROLLBACK;
.print == after ROLLBACK: 0 to 2
SELECT "offset", key, value FROM t;
SELECT count(*) FROM t;
SELECT "offset", value FROM t WHERE key = 'a' ORDER BY "offset" DESC LIMIT 1;
.print == the next insert reuses offset 3
INSERT INTO t(key, value, time) VALUES ('e', 'v3e', 1672531203000000);
SELECT last_insert_rowid();
SELECT "offset", key, value FROM t;

.print ======== BEGIN, INSERT, COMMIT: published at the offsets handed out
BEGIN;
INSERT INTO t(key, value, time) VALUES ('f', 'v4f', 1672531204000000);
SELECT last_insert_rowid();
INSERT INTO t(key, value, time) VALUES ('a', 'v5a', 1672531205000000), ('g', 'v6g', 1672531206000000);
SELECT last_insert_rowid();
COMMIT;
.print == last_insert_rowid() is still 6 after COMMIT (the table's own record of it is no insert of the caller)
SELECT last_insert_rowid();
SELECT "offset", key, value, time FROM t WHERE "offset" >= 3;
SELECT "offset", key, value FROM klevdb_scan('t.d', 3);
SELECT "offset", value FROM t WHERE key = 'a' ORDER BY "offset" DESC LIMIT 1;

.print ======== DELETE of committed rows inside a transaction
BEGIN;
DELETE FROM t WHERE "offset" IN (1, 5);
SELECT changes();
.print == gone inside the transaction (0, 2, 3, 4, 6)
SELECT group_concat("offset", ' ') FROM t;
SELECT count(*) FROM t;
SELECT "offset" FROM t WHERE "offset" = 5;
SELECT "offset" FROM t WHERE "offset" IN (1, 2, 5);
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM t ORDER BY "offset" DESC);
.print == newest by key a: 5 is deleted, so 2
SELECT "offset", value FROM t WHERE key = 'a' ORDER BY "offset" DESC LIMIT 1;
.print == key = a (0, 2)
SELECT "offset", value FROM t WHERE key = 'a';
.print == still in the store
SELECT group_concat("offset", ' ') FROM klevdb_scan('t.d');
ROLLBACK;
.print == undone by ROLLBACK (0 to 6)
SELECT group_concat("offset", ' ') FROM t;
SELECT "offset", value FROM t WHERE key = 'a' ORDER BY "offset" DESC LIMIT 1;

.print ======== DELETE of a pending row
BEGIN;
INSERT INTO t(key, value, time) VALUES ('h', 'v7h', 1672531207000000), ('h', 'v8h', 1672531208000000), ('i', 'v9i', 1672531209000000);
DELETE FROM t WHERE "offset" = 8;
SELECT changes();
SELECT "offset", key, value FROM t WHERE "offset" >= 6;
.print == newest by key h: 8 is deleted, so 7
SELECT "offset", value FROM t WHERE key = 'h' ORDER BY "offset" DESC LIMIT 1;
SELECT "offset", value FROM t WHERE key = 'h';
SELECT "offset" FROM t WHERE "offset" = 8;
SELECT count(*) FROM t;
.print == the next insert still gets 10
INSERT INTO t(key, value, time) VALUES ('j', 'v10j', 1672531210000000);
SELECT last_insert_rowid();
COMMIT;
.print == committed: 8 was published and deleted (7, 9, 10)
SELECT "offset", key, value FROM t WHERE "offset" >= 6;
SELECT group_concat("offset", ' ') FROM klevdb_scan('t.d');
SELECT "offset", value FROM t WHERE key = 'h' ORDER BY "offset" DESC LIMIT 1;

.print ======== a failed statement inside a transaction is undone alone
BEGIN;
INSERT INTO t(key, value, time) VALUES ('k', 'v11k', 1672531211000000);
.print == the second row has a BLOB key (the key is text): the whole statement fails
INSERT INTO t(key, value, time) VALUES ('k', 'bad', 1672531212000000), (x'12', 'bad', 1672531212000000);
.print == UPDATE is refused
UPDATE t SET value = 'x' WHERE "offset" = 11;
.print == 11 stays, nothing of the failed statement (next is 12)
SELECT "offset", key, value FROM t WHERE "offset" >= 11;
INSERT INTO t(key, value, time) VALUES ('l', 'v12l', 1672531212000000);
SELECT last_insert_rowid();
COMMIT;
SELECT "offset", key, value FROM t WHERE "offset" >= 11;
.print == in autocommit mode a failed statement publishes nothing
INSERT INTO t(key, value, time) VALUES ('m', 'bad', 1672531213000000), ('m', 'bad', 'not a time');
SELECT "offset", key, value FROM t WHERE "offset" >= 12;
SELECT count(*) FROM klevdb_scan('t.d');

.print ======== SAVEPOINT, ROLLBACK TO, RELEASE
-- committed now: 0 to 7, 9 to 12 (12 rows)
SAVEPOINT s1;
INSERT INTO t(key, value, time) VALUES ('s1', 'r13', 1672531213000000);
DELETE FROM t WHERE "offset" = 0;
SAVEPOINT s2;
INSERT INTO t(key, value, time) VALUES ('s2', 'r14', 1672531214000000);
DELETE FROM t WHERE "offset" = 1;
DELETE FROM t WHERE "offset" = 13;
SAVEPOINT s3;
INSERT INTO t(key, value, time) VALUES ('s3', 'r15', 1672531215000000);
DELETE FROM t WHERE "offset" = 2;
.print == in s3: 0, 1, 2, 13 deleted; 14, 15 pending
SELECT group_concat("offset", ' ') FROM t;
SELECT count(*) FROM t;
ROLLBACK TO s3;
.print == ROLLBACK TO s3: 15 gone, 2 back
SELECT group_concat("offset", ' ') FROM t;
.print == s3 still exists: insert again (15), ROLLBACK TO s3 again
INSERT INTO t(key, value, time) VALUES ('s3', 'r15b', 1672531215000000);
SELECT last_insert_rowid();
SELECT "offset", key, value FROM t WHERE "offset" >= 13;
ROLLBACK TO s3;
SELECT group_concat("offset", ' ') FROM t;
ROLLBACK TO s2;
.print == ROLLBACK TO s2: 14 gone, 1 and 13 back
SELECT group_concat("offset", ' ') FROM t;
SELECT "offset", key, value FROM t WHERE "offset" >= 13;
.print == insert at s2 (14), delete 3 and 4 (adjacent to nothing pending), RELEASE s2
INSERT INTO t(key, value, time) VALUES ('s2b', 'r14b', 1672531214000000);
DELETE FROM t WHERE "offset" = 3;
DELETE FROM t WHERE "offset" = 4;
RELEASE s2;
SELECT group_concat("offset", ' ') FROM t;
.print == a new savepoint s4: delete 5 (next to the range 3-4 of before), then ROLLBACK TO s4
SAVEPOINT s4;
DELETE FROM t WHERE "offset" = 5;
SELECT group_concat("offset", ' ') FROM t;
ROLLBACK TO s4;
.print == 5 is back, 3 and 4 stay deleted
SELECT group_concat("offset", ' ') FROM t;
RELEASE s4;
.print == the store is untouched so far (12 rows)
SELECT count(*) FROM klevdb_scan('t.d');
RELEASE s1;
.print == RELEASE s1 commits: 13 (s1), 14 (s2b); 0, 3, 4 deleted
SELECT group_concat("offset", ' ') FROM t;
SELECT "offset", key, value FROM t WHERE "offset" >= 12;
SELECT group_concat("offset", ' ') FROM klevdb_scan('t.d');

.print ======== ROLLBACK TO the outermost savepoint, then ROLLBACK
BEGIN;
SAVEPOINT a;
INSERT INTO t(key, value, time) VALUES ('x', 'r15', 1672531215000000);
DELETE FROM t WHERE "offset" = 14;
ROLLBACK TO a;
SELECT group_concat("offset", ' ') FROM t;
INSERT INTO t(key, value, time) VALUES ('y', 'r15y', 1672531215000000);
SELECT last_insert_rowid();
ROLLBACK;
SELECT group_concat("offset", ' ') FROM t;
.print == nothing pending is left behind: next is 15
INSERT INTO t(key, value, time) VALUES ('z', 'r15z', 1672531215000000);
SELECT last_insert_rowid();
SELECT "offset", key, value FROM t WHERE "offset" >= 14;

.print ======== two tables on one store in one connection: the other sees commits only
CREATE VIRTUAL TABLE t2 USING klevdb(dir='t.d', key='text', value='text');
SELECT count(*), max("offset") FROM t2;
INSERT INTO t(key, value, time) VALUES ('w', 'r16', 1672531216000000);
SELECT "offset", key, value FROM t2 WHERE "offset" >= 16;
BEGIN;
INSERT INTO t(key, value, time) VALUES ('w', 'r17', 1672531217000000);
.print == t sees 17 pending, t2 does not
SELECT "offset", value FROM t WHERE key = 'w';
SELECT "offset", value FROM t2 WHERE key = 'w';
COMMIT;
.print == after COMMIT t2 sees 17
SELECT "offset", value FROM t2 WHERE key = 'w';
SELECT "offset", value FROM t2 WHERE key = 'w' ORDER BY "offset" DESC LIMIT 1;
.print == t2 deletes 16, t sees it gone
DELETE FROM t2 WHERE "offset" = 16;
SELECT "offset", value FROM t WHERE key = 'w';

.print ======== a transaction of many segments' worth is written while it runs
-- rollover 4 KB: past 32 KB of rows (about 400 here) the rows go to segment
-- files as they come; savepoints cut them back. ref gets the same final
-- rows in one plain INSERT: both must hold the same messages in the same
-- segments.
CREATE VIRTUAL TABLE big USING klevdb(dir='big.d', rollover='4KB', key='text', value='text');
CREATE VIRTUAL TABLE ref USING klevdb(dir='ref.d', rollover='4KB', key='text', value='text');
BEGIN;
INSERT INTO big(key, value, time)
  WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 1999)
  SELECT 'k' || (i % 10), printf('value %d', i), 1672531200000000 + i FROM c;
SAVEPOINT a;
INSERT INTO big(key, value, time)
  WITH RECURSIVE c(i) AS (SELECT 2000 UNION ALL SELECT i + 1 FROM c WHERE i < 2999)
  SELECT 'k' || (i % 10), printf('dropped %d', i), 1672531200000000 + i FROM c;
.print == 3000 rows visible inside the transaction, none outside
SELECT count(*), max("offset") FROM big;
SELECT json_extract(klevdb_stat('ref'), '$.messages');
ROLLBACK TO a;
.print == back to 2000 after ROLLBACK TO (inside a written segment)
SELECT count(*), max("offset") FROM big;
INSERT INTO big(key, value, time)
  WITH RECURSIVE c(i) AS (SELECT 2000 UNION ALL SELECT i + 1 FROM c WHERE i < 2499)
  SELECT 'k' || (i % 10), printf('kept %d', i), 1672531200000000 + i FROM c;
RELEASE a;
SAVEPOINT b;
INSERT INTO big(key, value, time) VALUES ('k0', 'dropped too', 1672531300000000);
ROLLBACK TO b;
RELEASE b;
COMMIT;
BEGIN;
INSERT INTO ref(key, value, time)
  WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 2499)
  SELECT 'k' || (i % 10), printf(CASE WHEN i < 2000 THEN 'value %d' ELSE 'kept %d' END, i),
         1672531200000000 + i FROM c;
COMMIT;
.print == both: 2500 messages, offsets 0-2499, the same segments and bytes
SELECT count(*), min("offset"), max("offset") FROM big;
SELECT json_extract(klevdb_stat('big'), '$.segments') = json_extract(klevdb_stat('ref'), '$.segments'),
       json_extract(klevdb_stat('big'), '$.bytes') = json_extract(klevdb_stat('ref'), '$.bytes'),
       json_extract(klevdb_stat('big'), '$.segments') > 20;
SELECT count(*) FROM (SELECT * FROM big EXCEPT SELECT * FROM ref);
SELECT "offset", key, value FROM big WHERE "offset" IN (0, 1999, 2000, 2499);
SELECT count(*) FROM big WHERE value LIKE 'dropped%';
.print == a big transaction rolled back leaves nothing; the next offset is 2500
BEGIN;
INSERT INTO big(key, value)
  WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 1999)
  SELECT 'k', printf('gone %d', i) FROM c;
ROLLBACK;
SELECT count(*), max("offset") FROM big;
INSERT INTO big(key, value, time) VALUES ('k', 'after', 1672531400000000);
SELECT last_insert_rowid();

.print ======== a failed CREATE inside a write transaction (SQLite reconnects the table)
CREATE VIRTUAL TABLE re USING klevdb(dir='re.d', key='text', value='text');
BEGIN;
INSERT INTO re(key, value, time) VALUES ('a', 'before', 1672531200000000);
SAVEPOINT s;
INSERT INTO re(key, value, time) VALUES ('a', 'in savepoint', 1672531201000000);
CREATE VIRTUAL TABLE broken USING klevdb(no_such_argument=1);
.print == the table still sees its own rows and takes more at once
SELECT "offset", value FROM re;
INSERT INTO re(key, value, time) VALUES ('b', 'after', 1672531202000000);
SELECT last_insert_rowid();
ROLLBACK TO s;
INSERT INTO re(key, value, time) VALUES ('c', 'last', 1672531203000000);
COMMIT;
.print == published once: 0 before, 1 last
SELECT "offset", key, value FROM re;
SELECT json_extract(klevdb_stat('re'), '$.messages');
