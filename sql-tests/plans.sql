-- plans.sql: every access path of the klevdb table's xBestIndex/xFilter,
-- each with its EXPLAIN QUERY PLAN and its rows: offset =, IN, ranges,
-- DESC, key =, key IN, newest by key, consume by key, time >= (the time
-- index gives the start; stored times that go backwards), LIMIT/OFFSET
-- (always SQLite's), ORDER BY, count(*), joins on offset and on key.
-- The data spans several segments (rollover 1KB, published in batches of
-- 5: one INSERT is one batch and a batch never straddles segments; the
-- segments start at offsets 0, 30 and 55). Then
-- the same paths again after DELETEs leave gaps.
-- Times: 1672531200000000 is 2023-01-01T00:00:00Z; row i has time
-- 2023-01-01T00:00:<i>Z, key 'k' || (i % 7), value 'v' || i.

CREATE VIRTUAL TABLE ev USING klevdb(dir='ev.d', key='text', value='text', rollover='1KB');
CREATE TABLE n(i INTEGER);
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < 59) INSERT INTO n SELECT i FROM c;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 0;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 1;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 2;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 3;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 4;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 5;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 6;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 7;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 8;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 9;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 10;
INSERT INTO ev(key, value, time) SELECT 'k' || (i % 7), 'v' || i, 1672531200000000 + i * 1000000 FROM n WHERE i / 5 = 11;
.print == 60 rows in 3 segments
SELECT json_extract(klevdb_stat('ev'), '$.segments'), count(*), min("offset"), max("offset") FROM ev;
.print == every row matches its formula (0 mismatches)
SELECT count(*) FROM ev JOIN n ON n.i = ev."offset"
  WHERE ev.key IS NOT 'k' || (n.i % 7) OR ev.value IS NOT 'v' || n.i
     OR ev.time IS NOT 1672531200000000 + n.i * 1000000;

.print == offset = 33
EXPLAIN QUERY PLAN SELECT * FROM ev WHERE "offset" = 33;
SELECT * FROM ev WHERE "offset" = 33;
.print == offset = 60 (past the end: none)
SELECT * FROM ev WHERE "offset" = 60;
.print == offset IN (41, 3, 99, 3, 27, -1) (sorted, no duplicates, missing ones skipped)
EXPLAIN QUERY PLAN SELECT "offset", key, value FROM ev WHERE "offset" IN (41, 3, 99, 3, 27, -1);
SELECT "offset", key, value FROM ev WHERE "offset" IN (41, 3, 99, 3, 27, -1);
.print == offset > 55
EXPLAIN QUERY PLAN SELECT "offset", key, value FROM ev WHERE "offset" > 55;
SELECT "offset", key, value FROM ev WHERE "offset" > 55;
.print == offset >= 55
EXPLAIN QUERY PLAN SELECT "offset", key, value FROM ev WHERE "offset" >= 55;
SELECT "offset", key, value FROM ev WHERE "offset" >= 55;
.print == offset < 3
EXPLAIN QUERY PLAN SELECT "offset", key, value FROM ev WHERE "offset" < 3;
SELECT "offset", key, value FROM ev WHERE "offset" < 3;
.print == offset <= 3
EXPLAIN QUERY PLAN SELECT "offset", key, value FROM ev WHERE "offset" <= 3;
SELECT "offset", key, value FROM ev WHERE "offset" <= 3;
.print == offset BETWEEN 18 AND 32 (crosses segments)
EXPLAIN QUERY PLAN SELECT "offset", value FROM ev WHERE "offset" BETWEEN 18 AND 32;
SELECT "offset", value FROM ev WHERE "offset" BETWEEN 18 AND 32;
.print == offset > 18 AND offset < 32 ORDER BY offset DESC
EXPLAIN QUERY PLAN SELECT "offset", value FROM ev WHERE "offset" > 18 AND "offset" < 32 ORDER BY "offset" DESC;
SELECT "offset", value FROM ev WHERE "offset" > 18 AND "offset" < 32 ORDER BY "offset" DESC;

.print == bounds of other types: REAL, TEXT (SQLite compares 4 = 4.0 and 4 = text 4 as equal)
.print offset = 4.0 (4)
SELECT "offset" FROM ev WHERE "offset" = 4.0;
.print rowid = 4.0 (4)
SELECT "offset" FROM ev WHERE rowid = 4.0;
.print offset = text 4 (4)
SELECT "offset" FROM ev WHERE "offset" = '4';
.print offset = 4.5 (none)
SELECT "offset" FROM ev WHERE "offset" = 4.5;
.print offset IN (3, 4.0, text 5) (3, 4, 5)
SELECT "offset" FROM ev WHERE "offset" IN (3, 4.0, '5');
.print offset >= 57.5 (58, 59)
SELECT "offset" FROM ev WHERE "offset" >= 57.5;
.print offset < 2.5 (0, 1, 2)
SELECT "offset" FROM ev WHERE "offset" < 2.5;
.print offset > text 57 (58, 59)
SELECT "offset" FROM ev WHERE "offset" > '57';
.print offset = 4 AND offset = 5 (none)
SELECT "offset" FROM ev WHERE "offset" = 4 AND "offset" = 5;
.print offset >= 10 AND offset >= 57, both orders (57, 58, 59)
SELECT "offset" FROM ev WHERE "offset" >= 10 AND "offset" >= 57;
SELECT "offset" FROM ev WHERE "offset" >= 57 AND "offset" >= 10;
.print offset = NULL, offset >= NULL (none)
SELECT "offset" FROM ev WHERE "offset" = NULL;
SELECT "offset" FROM ev WHERE "offset" >= NULL;
.print key = k3 AND key = k4 (none)
SELECT "offset" FROM ev WHERE key = 'k3' AND key = 'k4';
.print offset IN (subquery) (4, 5)
SELECT "offset" FROM ev WHERE "offset" IN (SELECT 5 UNION SELECT 4);

.print == key = k3
EXPLAIN QUERY PLAN SELECT "offset", key, value FROM ev WHERE key = 'k3';
SELECT "offset", key, value FROM ev WHERE key = 'k3';
.print == key = nope (none)
SELECT "offset" FROM ev WHERE key = 'nope';
.print == key IN (k6, nope, k1, k6) (offset order, no duplicates)
EXPLAIN QUERY PLAN SELECT "offset", key FROM ev WHERE key IN ('k6', 'nope', 'k1', 'k6');
SELECT "offset", key FROM ev WHERE key IN ('k6', 'nope', 'k1', 'k6');
.print == newest by key: key = k3 ORDER BY offset DESC LIMIT 1
EXPLAIN QUERY PLAN SELECT "offset", key, value FROM ev WHERE key = 'k3' ORDER BY "offset" DESC LIMIT 1;
SELECT "offset", key, value FROM ev WHERE key = 'k3' ORDER BY "offset" DESC LIMIT 1;
.print == key = k3 ORDER BY offset DESC LIMIT 3
SELECT "offset", key, value FROM ev WHERE key = 'k3' ORDER BY "offset" DESC LIMIT 3;
.print == consume by key: key = k3 AND offset >= 20
EXPLAIN QUERY PLAN SELECT "offset", key, value FROM ev WHERE key = 'k3' AND "offset" >= 20;
SELECT "offset", key, value FROM ev WHERE key = 'k3' AND "offset" >= 20;
.print == key = k3 AND offset >= 20 LIMIT 2 (the next batch of a consumer)
EXPLAIN QUERY PLAN SELECT "offset", key, value FROM ev WHERE key = 'k3' AND "offset" >= 20 LIMIT 2;
SELECT "offset", key, value FROM ev WHERE key = 'k3' AND "offset" >= 20 LIMIT 2;
.print == key = k3 AND offset BETWEEN 10 AND 40 ORDER BY offset DESC
SELECT "offset", key FROM ev WHERE key = 'k3' AND "offset" BETWEEN 10 AND 40 ORDER BY "offset" DESC;

.print == time >= klevdb_time(2023-01-01T00:00:57Z)
EXPLAIN QUERY PLAN SELECT "offset", time FROM ev WHERE time >= klevdb_time('2023-01-01T00:00:57Z');
SELECT "offset", time FROM ev WHERE time >= klevdb_time('2023-01-01T00:00:57Z');
.print == time > klevdb_time(2023-01-01T00:00:57Z)
EXPLAIN QUERY PLAN SELECT "offset", time FROM ev WHERE time > klevdb_time('2023-01-01T00:00:57Z');
SELECT "offset", time FROM ev WHERE time > klevdb_time('2023-01-01T00:00:57Z');
.print == time >= 00:00:56.5 (between two rows)
SELECT "offset", time FROM ev WHERE time >= klevdb_time('2023-01-01T00:00:56.5Z');
.print == time >= 00:00:20 AND time < 00:00:23 (SQLite checks the upper bound)
SELECT "offset", time FROM ev WHERE time >= klevdb_time('2023-01-01T00:00:20Z') AND time < klevdb_time('2023-01-01T00:00:23Z');
.print == time >= 2023-01-02 (after the newest: none)
SELECT "offset" FROM ev WHERE time >= klevdb_time('2023-01-02');
.print == time >= 2022-12-31 (before the oldest: all 60)
SELECT count(*), min("offset") FROM ev WHERE time >= klevdb_time('2022-12-31');
.print == time >= text: SQLite would rank TEXT above every INTEGER and match nothing, so it is refused
SELECT count(*) FROM ev WHERE time >= '2023-01-01T00:00:57Z';

.print == times that go backwards (table tb, one segment per INSERT)
-- Stored times by offset (seconds after 00:00:00): 0: 0, 1: 10, 2: 20,
-- 3: 5 (new segment), 4: 30, 5: 15 (new segment), 6: 2, 7: 40.
-- The time index keeps a running maximum, so the start it gives is exact
-- (no row with time >= t comes before it) and SQLite drops the older rows
-- after it.
CREATE VIRTUAL TABLE tb USING klevdb(dir='tb.d', key='text', value='text', rollover='64B');
INSERT INTO tb(key, value, time) VALUES ('a', 't0', '2023-01-01T00:00:00Z'), ('b', 't10', '2023-01-01T00:00:10Z'), ('c', 't20', '2023-01-01T00:00:20Z');
INSERT INTO tb(key, value, time) VALUES ('d', 't5', '2023-01-01T00:00:05Z'), ('e', 't30', '2023-01-01T00:00:30Z');
INSERT INTO tb(key, value, time) VALUES ('f', 't15', '2023-01-01T00:00:15Z'), ('g', 't2', '2023-01-01T00:00:02Z'), ('h', 't40', '2023-01-01T00:00:40Z');
SELECT json_extract(klevdb_stat('tb'), '$.segments');
SELECT "offset", time, value FROM tb;
.print == tb: time >= 00:00:12 (2, 4, 5, 7; not 3 or 6)
EXPLAIN QUERY PLAN SELECT "offset", value FROM tb WHERE time >= klevdb_time('2023-01-01T00:00:12Z');
SELECT "offset", value FROM tb WHERE time >= klevdb_time('2023-01-01T00:00:12Z');
.print == tb: time >= 00:00:05 (1, 2, 3, 4, 5, 7; not 0 or 6)
SELECT "offset", value FROM tb WHERE time >= klevdb_time('2023-01-01T00:00:05Z');
.print == tb: time > 00:00:05 (1, 2, 4, 5, 7)
SELECT "offset", value FROM tb WHERE time > klevdb_time('2023-01-01T00:00:05Z');
.print == tb: time >= 00:00:25 (4, 7)
SELECT "offset", value FROM tb WHERE time >= klevdb_time('2023-01-01T00:00:25Z');
.print == tb: time >= 00:00:01 (all but 0)
SELECT "offset", value FROM tb WHERE time >= klevdb_time('2023-01-01T00:00:01Z');
.print == tb: time >= 00:00:12 LIMIT 2 (LIMIT is not pushed: time is checked by SQLite)
EXPLAIN QUERY PLAN SELECT "offset", value FROM tb WHERE time >= klevdb_time('2023-01-01T00:00:12Z') LIMIT 2;
SELECT "offset", value FROM tb WHERE time >= klevdb_time('2023-01-01T00:00:12Z') LIMIT 2;
.print == tb: ORDER BY time (sorted by SQLite)
EXPLAIN QUERY PLAN SELECT "offset", time FROM tb ORDER BY time;
SELECT "offset", time FROM tb ORDER BY time;
.print == tb: ORDER BY time DESC LIMIT 3
SELECT "offset", value FROM tb ORDER BY time DESC LIMIT 3;

.print == LIMIT 3 OFFSET 28 (crosses a segment)
EXPLAIN QUERY PLAN SELECT "offset", value FROM ev LIMIT 3 OFFSET 28;
SELECT "offset", value FROM ev LIMIT 3 OFFSET 28;
.print == offset >= 50 LIMIT 2 OFFSET 3
EXPLAIN QUERY PLAN SELECT "offset", value FROM ev WHERE "offset" >= 50 LIMIT 2 OFFSET 3;
SELECT "offset", value FROM ev WHERE "offset" >= 50 LIMIT 2 OFFSET 3;
.print == ORDER BY offset DESC LIMIT 2 OFFSET 1
EXPLAIN QUERY PLAN SELECT "offset", value FROM ev ORDER BY "offset" DESC LIMIT 2 OFFSET 1;
SELECT "offset", value FROM ev ORDER BY "offset" DESC LIMIT 2 OFFSET 1;
.print == LIMIT 0 (none)
SELECT "offset" FROM ev LIMIT 0;
.print == OFFSET past the end (none)
SELECT "offset" FROM ev LIMIT 5 OFFSET 100;
.print == value LIKE v1% LIMIT 2: not pushed (SQLite checks the LIKE)
EXPLAIN QUERY PLAN SELECT "offset", value FROM ev WHERE value LIKE 'v1%' LIMIT 2;
SELECT "offset", value FROM ev WHERE value LIKE 'v1%' LIMIT 2;
.print == value LIKE v1% LIMIT 2 OFFSET 3
SELECT "offset", value FROM ev WHERE value LIKE 'v1%' LIMIT 2 OFFSET 3;
.print == offset >= 40 AND value LIKE v5% LIMIT 3
EXPLAIN QUERY PLAN SELECT "offset", value FROM ev WHERE "offset" >= 40 AND value LIKE 'v5%' LIMIT 3;
SELECT "offset", value FROM ev WHERE "offset" >= 40 AND value LIKE 'v5%' LIMIT 3;
.print == key = value and value > key with LIMIT (SQLite 3.40 hides such terms from a table that takes LIMIT, then drops them): none, 3 rows
SELECT "offset" FROM ev WHERE key = value LIMIT 3;
SELECT "offset" FROM ev WHERE value > key ORDER BY "offset" LIMIT 3 OFFSET 1;
.print == ORDER BY key LIMIT 3: SQLite sorts first
EXPLAIN QUERY PLAN SELECT "offset", key FROM ev ORDER BY key, "offset" LIMIT 3;
SELECT "offset", key FROM ev ORDER BY key, "offset" LIMIT 3;

.print == ORDER BY offset DESC (all 60, newest first)
EXPLAIN QUERY PLAN SELECT "offset" FROM ev ORDER BY "offset" DESC;
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev ORDER BY "offset" DESC);
.print == ORDER BY time DESC (sorted by SQLite)
EXPLAIN QUERY PLAN SELECT "offset", time FROM ev ORDER BY time DESC;
SELECT group_concat("offset", ' ') FROM (SELECT "offset", time FROM ev ORDER BY time DESC);
.print == count(*) reads only offsets
EXPLAIN QUERY PLAN SELECT count(*) FROM ev;
SELECT count(*) FROM ev;
EXPLAIN QUERY PLAN SELECT count(*) FROM ev WHERE "offset" >= 30;
SELECT count(*) FROM ev WHERE "offset" >= 30;

.print == join on offset: ids JOIN ev ON ev.offset = ids.x
CREATE TABLE ids(x INTEGER);
INSERT INTO ids VALUES (31), (3), (99), (29), (3);
EXPLAIN QUERY PLAN SELECT ids.x, ev.key, ev.value FROM ids JOIN ev ON ev."offset" = ids.x;
SELECT ids.x, ev.key, ev.value FROM ids JOIN ev ON ev."offset" = ids.x;
.print == join on key: ks JOIN ev ON ev.key = ks.k
CREATE TABLE ks(k TEXT);
INSERT INTO ks VALUES ('k5'), ('nope'), ('k0');
EXPLAIN QUERY PLAN SELECT ks.k, ev."offset" FROM ks JOIN ev ON ev.key = ks.k;
SELECT ks.k, group_concat(ev."offset", ' ') FROM ks JOIN ev ON ev.key = ks.k GROUP BY ks.k ORDER BY ks.k;
.print == left join on offset (missing offsets give NULL)
SELECT ids.x, ev.value FROM ids LEFT JOIN ev ON ev."offset" = ids.x;

.print ======== after DELETE offset < 10 and offset IN (20, 21, 35)
DELETE FROM ev WHERE "offset" < 10;
SELECT changes();
DELETE FROM ev WHERE "offset" IN (20, 21, 35);
SELECT changes();
.print == count, min, max
SELECT count(*), min("offset"), max("offset") FROM ev;
.print == all offsets
SELECT group_concat("offset", ' ') FROM ev;
.print == offset = 5, 20, 35 (deleted: none), 36
SELECT "offset", value FROM ev WHERE "offset" = 5;
SELECT "offset", value FROM ev WHERE "offset" = 20;
SELECT "offset", value FROM ev WHERE "offset" = 35;
SELECT "offset", value FROM ev WHERE "offset" = 36;
.print == offset IN (35, 2, 22, 21, 9, 10)
SELECT "offset", value FROM ev WHERE "offset" IN (35, 2, 22, 21, 9, 10);
.print == offset > 5 LIMIT 3
SELECT "offset", value FROM ev WHERE "offset" > 5 LIMIT 3;
.print == offset >= 19 AND offset <= 23
SELECT "offset", value FROM ev WHERE "offset" >= 19 AND "offset" <= 23;
.print == offset < 12
SELECT "offset", value FROM ev WHERE "offset" < 12;
.print == offset BETWEEN 33 AND 37 ORDER BY offset DESC
SELECT "offset", value FROM ev WHERE "offset" BETWEEN 33 AND 37 ORDER BY "offset" DESC;
.print == ORDER BY offset DESC (all 47)
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM ev ORDER BY "offset" DESC);
.print == key = k0 (0 and 7 deleted; 21 and 35 deleted)
SELECT "offset", key, value FROM ev WHERE key = 'k0';
.print == key IN (k0, k6)
SELECT "offset", key FROM ev WHERE key IN ('k0', 'k6');
.print == newest by key k0 (56) and k6 (55)
SELECT "offset", value FROM ev WHERE key = 'k0' ORDER BY "offset" DESC LIMIT 1;
SELECT "offset", value FROM ev WHERE key = 'k6' ORDER BY "offset" DESC LIMIT 1;
.print == key = k0 AND offset BETWEEN 0 AND 35 ORDER BY offset DESC (14, 28)
SELECT "offset", value FROM ev WHERE key = 'k0' AND "offset" BETWEEN 0 AND 35 ORDER BY "offset" DESC;
.print == consume by key: key = k0 AND offset >= 0 LIMIT 2
SELECT "offset", value FROM ev WHERE key = 'k0' AND "offset" >= 0 LIMIT 2;
.print == time >= 00:00:03 (deleted rows skipped; starts at 10)
SELECT "offset", value FROM ev WHERE time >= klevdb_time('2023-01-01T00:00:03Z') LIMIT 3;
.print == time >= 00:00:19.5 AND time < 00:00:23 (20 and 21 gone)
SELECT "offset", value FROM ev WHERE time >= klevdb_time('2023-01-01T00:00:19.5Z') AND time < klevdb_time('2023-01-01T00:00:23Z');
.print == LIMIT 3 OFFSET 9 (the 10th to 12th remaining rows)
SELECT "offset", value FROM ev LIMIT 3 OFFSET 9;
.print == value LIKE v2% LIMIT 3
SELECT "offset", value FROM ev WHERE value LIKE 'v2%' LIMIT 3;
.print == count(*) and count(*) WHERE offset >= 30
SELECT count(*) FROM ev;
SELECT count(*) FROM ev WHERE "offset" >= 30;
.print == join on offset (3 is gone)
SELECT ids.x, ev.key, ev.value FROM ids JOIN ev ON ev."offset" = ids.x;
.print == join on key
SELECT ks.k, group_concat(ev."offset", ' ') FROM ks JOIN ev ON ev.key = ks.k GROUP BY ks.k ORDER BY ks.k;
.print == newest by key after its newest row is deleted (k3: 59 gone, 52)
DELETE FROM ev WHERE "offset" = 59;
SELECT "offset", value FROM ev WHERE key = 'k3' ORDER BY "offset" DESC LIMIT 1;
SELECT "offset", value FROM ev ORDER BY "offset" DESC LIMIT 1;
.print == the raw store agrees
SELECT count(*), min("offset"), max("offset") FROM klevdb_scan('ev.d');
