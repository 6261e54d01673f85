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
