-- edges.sql: SQL semantics at the edges, each answer the one a plain table
-- holding the same rows gives: a SAVEPOINT that opens the transaction
-- (SQLite rolls back to it as savepoint -1), negative offset bounds,
-- ORDER BY "offset" DESC down to offset 0, negative LIMIT and OFFSET.

CREATE VIRTUAL TABLE ev USING klevdb(dir='ev.d', key='text', value='text');
INSERT INTO ev(key, value, time) VALUES ('a', '1', 1672531200000000), ('b', '2', 1672531201000000), ('c', '3', 1672531202000000);

.print ======== SAVEPOINT without BEGIN, ROLLBACK TO it
SAVEPOINT s1;
INSERT INTO ev(key, value, time) VALUES ('k', 'v', 1672531203000000);
ROLLBACK TO s1;
.print == the insert is gone, the transaction goes on (3 rows, then 3 again)
SELECT count(*) FROM ev;
INSERT INTO ev(key, value, time) VALUES ('k2', 'v2', 1672531204000000);
SELECT last_insert_rowid();
RELEASE s1;
SELECT group_concat("offset" || ':' || key, ' ') FROM klevdb_scan('ev.d');

.print ======== nested savepoints, then ROLLBACK TO the one that began it all
SAVEPOINT s1;
INSERT INTO ev(key, value, time) VALUES ('x1', 'v', 1672531205000000);
SAVEPOINT s2;
INSERT INTO ev(key, value, time) VALUES ('x2', 'v', 1672531206000000);
DELETE FROM ev WHERE "offset" = 0;
RELEASE s2;
SAVEPOINT s3;
DELETE FROM ev WHERE "offset" = 1;
ROLLBACK TO s1;
.print == nothing pending: 0-3
SELECT group_concat("offset", ' ') FROM ev;
INSERT INTO ev(key, value, time) VALUES ('y', 'v', 1672531207000000);
SAVEPOINT s4;
INSERT INTO ev(key, value, time) VALUES ('z', 'v', 1672531208000000);
RELEASE s4;
RELEASE s1;
.print == published: 4 y, 5 z, and 0 and 1 are still there
SELECT group_concat("offset" || ':' || key, ' ') FROM klevdb_scan('ev.d');

.print ======== the table's first write comes two savepoints deep (SQLite marks both levels at once)
BEGIN;
SAVEPOINT a;
SAVEPOINT b;
INSERT INTO ev(key, value, time) VALUES ('deep', 'v', 1672531209000000);
SAVEPOINT c;
INSERT INTO ev(key, value, time) VALUES ('deeper', 'v', 1672531209000000);
ROLLBACK TO b;
.print == back to b: no new row (6)
SELECT count(*) FROM ev;
INSERT INTO ev(key, value, time) VALUES ('again', 'v', 1672531209000000);
ROLLBACK TO a;
.print == back to a: still 6, then one row kept at offset 6
SELECT count(*) FROM ev;
INSERT INTO ev(key, value, time) VALUES ('kept', 'v', 1672531209000000);
COMMIT;
SELECT "offset", key FROM ev WHERE "offset" >= 6;
DELETE FROM ev WHERE "offset" = 6;

.print ======== negative offset bounds are ordinary numbers
.print == >= -1, > -2, >= -5 AND <= -1, = -1, IN (-1, -2, 1): 6 6 0 none 1
SELECT count(*) FROM ev WHERE "offset" >= -1;
SELECT count(*) FROM ev WHERE "offset" > -2;
SELECT count(*) FROM ev WHERE "offset" >= -5 AND "offset" <= -1;
SELECT "offset" FROM ev WHERE "offset" = -1;
SELECT "offset" FROM ev WHERE "offset" IN (-1, -2, 1);
.print == with key =, key IN, and DESC: 1; 5 4; 3 2 1 0 (-1 and -2 are no offsets)
SELECT "offset" FROM ev WHERE "offset" > -2 AND key = 'b';
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev WHERE key IN ('y', 'z') AND "offset" >= -1 ORDER BY "offset" DESC);
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev WHERE "offset" >= -1 AND "offset" < 4 ORDER BY "offset" DESC);
.print == the DESC scan ends at offset 0: 6 rows
SELECT count(*) FROM (SELECT "offset" FROM ev WHERE "offset" >= -1 ORDER BY "offset" DESC);
SELECT count(*) FROM (SELECT "offset" FROM ev ORDER BY "offset" DESC);

.print ======== LIMIT and OFFSET as SQLite takes them: negative LIMIT is none, negative OFFSET is 0
.print == LIMIT -1: 6; LIMIT -1 OFFSET 1: 1-5; LIMIT 2 OFFSET -5: 0 1; DESC LIMIT -7 OFFSET 1: 4-0
SELECT count(*) FROM (SELECT * FROM ev LIMIT -1);
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev LIMIT -1 OFFSET 1);
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev LIMIT 2 OFFSET -5);
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev ORDER BY "offset" DESC LIMIT -7 OFFSET 1);
.print == LIMIT '2' OFFSET 1.0: 1 2; LIMIT 9223372036854775807 OFFSET 9223372036854775807: none
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev LIMIT '2' OFFSET 1.0);
SELECT count(*) FROM (SELECT "offset" FROM ev LIMIT 9223372036854775807 OFFSET 9223372036854775807);
.print == LIMIT NULL and LIMIT 'x' are SQLite's own errors
SELECT "offset" FROM ev LIMIT NULL;
SELECT "offset" FROM ev LIMIT 'x';
.print == the same inside a transaction with pending rows (7, 8; 6 is deleted)
BEGIN;
INSERT INTO ev(key, value, time) VALUES ('p', 'v', 1672531209000000), ('q', 'v', 1672531210000000);
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev WHERE "offset" >= -1 ORDER BY "offset" DESC LIMIT -1 OFFSET 1);
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev WHERE "offset" > -3 LIMIT -1 OFFSET -1);
COMMIT;
.print == DELETE WHERE "offset" >= -1 deletes all 8
DELETE FROM ev WHERE "offset" >= -1;
SELECT count(*) FROM ev;

.print ======== a time is stored as given or refused, never taken for "now"
CREATE VIRTUAL TABLE tm USING klevdb(dir='tm.d', key='text', value='text');
INSERT INTO tm(key, value, time) VALUES ('min', 'v', -9223372036854775808);
INSERT INTO tm(key, value, time) VALUES ('min+1', 'v', -9223372036854775807), ('go zero', 'v', '0001-01-01T00:00:00Z'), ('max', 'v', 9223372036854775807);
SELECT "offset", key, time FROM tm;

.print ======== DROP TABLE inside a transaction that wrote to the table is refused
BEGIN;
INSERT INTO tm(key, value, time) VALUES ('kept', 'v', 1672531200000000);
DROP TABLE tm;
SELECT count(*) FROM tm;
COMMIT;
BEGIN;
DELETE FROM tm WHERE "offset" = 0;
DROP TABLE tm;
ROLLBACK;
.print == after COMMIT / ROLLBACK it goes, and the store keeps every message: 0-3
DROP TABLE tm;
SELECT group_concat("offset" || ':' || key, ' ') FROM klevdb_scan('tm.d');

.print ======== time is an INTEGER column: whole numbers in TEXT or REAL are taken as such (0, 1, 2); 1.5 is refused
CREATE VIRTUAL TABLE tn USING klevdb(dir='tn.d');
INSERT INTO tn(key, time) VALUES ('real', 1.6725312e15), ('text', ' 1672531200000001 '), ('exp', '1e3');
INSERT INTO tn(key, time) VALUES ('half', 1.5);
SELECT "offset", key, time FROM tn;

.print ======== ROLLBACK TO the transaction's own savepoint while a big transaction is being written to segment files
CREATE VIRTUAL TABLE bg USING klevdb(dir='bg.d', rollover='4KB');
SAVEPOINT s;
INSERT INTO bg(key, value, time)
  WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 1999)
  SELECT 'k', printf('dropped %d', i), 1672531200000000 + i FROM c;
SELECT count(*) FROM bg;
ROLLBACK TO s;
INSERT INTO bg(key, value, time) VALUES ('k', 'kept', 1672531300000000);
RELEASE s;
.print == one message at offset 0 in one segment
SELECT "offset", value FROM bg;
SELECT json_extract(klevdb_stat('bg'), '$.segments'), json_extract(klevdb_stat('bg'), '$.messages');
SELECT group_concat("offset" || ':' || CAST(value AS TEXT)) FROM klevdb_scan('bg.d');
