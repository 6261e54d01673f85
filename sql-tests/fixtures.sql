-- fixtures.sql: the stores Go klevdb wrote (tests/fixtures, copied by the
-- runner to fixtures/<name>/store) read through CREATE VIRTUAL TABLE with
-- their real options: counts, sums, first and last rows, every row against
-- its formula, newest by key, time lookups where times go backwards, the
-- odd messages of v2-basic, the torn store, a mismatched key_index, and an
-- INSERT into a copy of v2-basic read back with klevdb_scan.
-- BASE = 1672531200000000 (2023-01-01T00:00:00Z); key10(n) = printf('%10d', n);
-- val128(i) = printf('%010d', i) || '-' || 117 letters 'a' + (i + j) % 26.

.print ======== v2-basic: a mismatched key_index or time_index is refused, naming the option to change
CREATE VIRTUAL TABLE bad USING klevdb(dir='fixtures/v2-basic/store', key_index=0);
CREATE VIRTUAL TABLE bad2 USING klevdb(dir='fixtures/v2-basic/store', time_index=0);

.print ======== v2-basic (keys, times, 1 MiB, V2): 10 messages
CREATE VIRTUAL TABLE b USING klevdb(dir='fixtures/v2-basic/store', key='text', value='blob');
SELECT count(*), min("offset"), max("offset"), sum(length(value)) FROM b;
SELECT "offset", time, key, typeof(value), CASE WHEN "offset" = 7 THEN length(value) ELSE CAST(value AS TEXT) END FROM b;
.print == msg 3: empty value reads NULL; msg 5: absent key reads NULL
SELECT "offset", key, value IS NULL FROM b WHERE "offset" = 3;
SELECT "offset", key IS NULL, CAST(value AS TEXT) FROM b WHERE "offset" = 5;
.print == msg 7: the bytes 0..255
SELECT hex(value) FROM b WHERE "offset" = 7;
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 255)
SELECT hex(value) = (SELECT group_concat(printf('%02X', i), '') FROM c) FROM b WHERE "offset" = 7;
.print == key = key-04 (4), newest key-09 (9), key IS NULL (5)
SELECT "offset" FROM b WHERE key = 'key-04';
SELECT "offset" FROM b WHERE key = 'key-09' ORDER BY "offset" DESC LIMIT 1;
SELECT "offset" FROM b WHERE key IS NULL;
.print == time >= 00:00:05 (5), > 00:00:05 (6), >= 00:00:09.000001 (none), as Go gettime
SELECT "offset" FROM b WHERE time >= klevdb_time('2023-01-01T00:00:05Z') LIMIT 1;
SELECT "offset" FROM b WHERE time > klevdb_time('2023-01-01T00:00:05Z') LIMIT 1;
SELECT "offset" FROM b WHERE time >= klevdb_time('2023-01-01T00:00:09.000001Z');
.print == INSERT: offset 10, then read back raw with klevdb_scan
INSERT INTO b(key, value, time) VALUES ('key-10', CAST('value-10' AS BLOB), '2023-01-01T00:00:10Z');
SELECT last_insert_rowid();
SELECT "offset", time, CAST(key AS TEXT), CAST(value AS TEXT), typeof(key) FROM klevdb_scan('fixtures/v2-basic/store', 8);
SELECT count(*), json_extract(klevdb_stat('b'), '$.segments') FROM b;
SELECT "offset" FROM b WHERE key = 'key-10';
SELECT "offset" FROM b WHERE time >= klevdb_time('2023-01-01T00:00:09.5Z');
DROP TABLE b;
.print == reopened: still 11
CREATE VIRTUAL TABLE b USING klevdb(dir='fixtures/v2-basic/store', key='text', value='text');
SELECT count(*), max("offset") FROM b;
SELECT "offset", key, value FROM b WHERE key = 'key-10';

.print ======== v2-multiseg (keys, times, 64 KiB, V2): 5000 messages, 13 segments
CREATE VIRTUAL TABLE m USING klevdb(dir='fixtures/v2-multiseg/store', rollover=65536, key='text', value='text');
SELECT count(*), min("offset"), max("offset"), sum(length(value)), json_extract(klevdb_stat('m'), '$.segments') FROM m;
.print == first and last rows
SELECT "offset", time, quote(key), substr(value, 1, 20), length(value) FROM m WHERE "offset" IN (0, 4999);
.print == every row against its formula (0 mismatches)
SELECT count(*) FROM m
 WHERE key IS NOT printf('%10d', "offset" % 700)
    OR value IS NOT printf('%010d', "offset") || '-' ||
         substr('abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz', "offset" % 26 + 1, 117)
    OR time IS NOT 1672531200000000 + 1000 * CASE
         WHEN "offset" IN (1001, 1002) THEN 1000
         WHEN "offset" BETWEEN 2201 AND 2203 THEN 2200
         WHEN "offset" = 3000 THEN 2500
         ELSE "offset" END;
.print == key = key10(123): 123, 823, ..., 4323; newest 4323
SELECT group_concat("offset", ' ') FROM m WHERE key = '       123';
SELECT "offset", substr(value, 1, 11) FROM m WHERE key = '       123' ORDER BY "offset" DESC LIMIT 1;
.print == consume by key10(123) from 2000, 2 at a time (2223, 2923)
SELECT "offset" FROM m WHERE key = '       123' AND "offset" >= 2000 LIMIT 2;
.print == key10(123) without the padding finds nothing
SELECT count(*) FROM m WHERE key = '123';
-- Time lookups. Stored times: msg i at BASE + i ms, except msgs 1001-1002
-- (= msg 1000's), 2201-2203 (= msg 2200's) and msg 3000 (BASE + 2.5 s,
-- back in time). Go's gettime answers from the time index, which keeps
-- the running maximum (3000 is indexed at 2.999 s). SQL answers "the rows
-- whose real time is >= t": the table starts at the index's answer (never
-- past a matching row, because of the running maximum) and SQLite checks
-- every row's real time. So the FIRST row of `time >= t ORDER BY offset
-- LIMIT 1` equals Go's gettime, which is what is asserted below, but the
-- rows after it skip msg 3000 when t > 2.5 s (Go's consume from gettime's
-- offset would return it).
.print == time >= 2.5 s (Go gettime BASE+2500000: 2500)
SELECT "offset", time FROM m WHERE time >= klevdb_time('2023-01-01T00:00:02.5Z') ORDER BY "offset" LIMIT 1;
.print == time >= 2.5 s holds 2500 rows, msg 3000 (exactly 2.5 s) among them
SELECT count(*), sum("offset" = 3000) FROM m WHERE time >= klevdb_time('2023-01-01T00:00:02.5Z');
.print == time >= 2.500001 s (Go: 2501)
SELECT "offset" FROM m WHERE time >= klevdb_time('2023-01-01T00:00:02.500001Z') ORDER BY "offset" LIMIT 1;
.print == time >= 2.999001 s (Go gettime BASE+2999001: 3001, msg 3000 is older)
SELECT "offset", time FROM m WHERE time >= klevdb_time('2023-01-01T00:00:02.999001Z') ORDER BY "offset" LIMIT 1;
.print == time >= 2.999 s (Go: 2999), the next rows skip msg 3000
SELECT "offset", time FROM m WHERE time >= klevdb_time('2023-01-01T00:00:02.999Z') ORDER BY "offset" LIMIT 3;
.print == time >= 2.6 s: 2399 rows, not msg 3000 (Go gettime gives 2600; a consume from there would include 3000)
SELECT count(*), sum("offset" = 3000), min("offset") FROM m WHERE time >= klevdb_time('2023-01-01T00:00:02.6Z');
.print == time >= 3 s (Go: 3001)
SELECT "offset" FROM m WHERE time >= klevdb_time('2023-01-01T00:00:03Z') ORDER BY "offset" LIMIT 1;
.print == equal times: >= 1 s (1000, 1001, 1002, 1003), > 1 s and >= 1.000001 s (Go: 1003)
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM m WHERE time >= klevdb_time('2023-01-01T00:00:01Z') LIMIT 4);
SELECT "offset" FROM m WHERE time > klevdb_time('2023-01-01T00:00:01Z') LIMIT 1;
SELECT "offset" FROM m WHERE time >= klevdb_time('2023-01-01T00:00:01.000001Z') LIMIT 1;
.print == >= 2.2 s (Go: 2200), and 2200 to 2203 share the time
SELECT group_concat("offset", ' ') FROM m WHERE time = klevdb_time('2023-01-01T00:00:02.2Z');
SELECT "offset" FROM m WHERE time >= klevdb_time('2023-01-01T00:00:02.2Z') LIMIT 1;
.print == >= 4.999 s (Go: 4999), >= 4.999001 s (Go: not found, SQL: no rows)
SELECT "offset" FROM m WHERE time >= klevdb_time('2023-01-01T00:00:04.999Z');
SELECT count(*) FROM m WHERE time >= klevdb_time('2023-01-01T00:00:04.999001Z');
.print == before the oldest (Go gettime 0: 0)
SELECT "offset" FROM m WHERE time >= 0 LIMIT 1;
.print == offsets across segment boundaries: 398 to 402, DESC 2402 to 2398
SELECT group_concat("offset", ' ') FROM m WHERE "offset" BETWEEN 398 AND 402;
SELECT group_concat("offset", ' ') FROM (SELECT "offset" FROM m WHERE "offset" BETWEEN 2398 AND 2402 ORDER BY "offset" DESC);

.print ======== v1-basic (keys, times, 16 KiB, V1, one publish per message): 1000 messages
CREATE VIRTUAL TABLE v1 USING klevdb(dir='fixtures/v1-basic/store', rollover='16KB', format='v1', key='text', value='text');
SELECT count(*), min("offset"), max("offset"), sum(length(value)), json_extract(klevdb_stat('v1'), '$.segments') FROM v1;
SELECT "offset", time, quote(key), substr(value, 1, 20) FROM v1 WHERE "offset" IN (0, 999);
.print == every row against its formula (0 mismatches)
SELECT count(*) FROM v1
 WHERE key IS NOT printf('%10d', "offset")
    OR value IS NOT printf('%010d', "offset") || '-' ||
         substr('abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz', "offset" % 26 + 1, 117)
    OR time IS NOT 1672531200000000 + 1000 * "offset";
.print == key = key10(500) (500); time >= 0.5 s (500), > 0.5 s (501), >= 0.999001 s (none)
SELECT "offset" FROM v1 WHERE key = '       500';
SELECT "offset" FROM v1 WHERE time >= klevdb_time('2023-01-01T00:00:00.5Z') LIMIT 1;
SELECT "offset" FROM v1 WHERE time > klevdb_time('2023-01-01T00:00:00.5Z') LIMIT 1;
SELECT count(*) FROM v1 WHERE time >= klevdb_time('2023-01-01T00:00:00.999001Z');
.print == segment boundaries (98, 99, 100 and 989 to 991)
SELECT group_concat("offset", ' ') FROM v1 WHERE "offset" IN (98, 99, 100) OR "offset" BETWEEN 989 AND 991;

.print ======== v2-torn (keys, times, 16 KiB, V2; the last log cut by 10 bytes): 299 messages
.print == read-only: the torn message 299 is not served
CREATE VIRTUAL TABLE tr USING klevdb(dir='fixtures/v2-torn/store', rollover='16KB', key='text', value='text', readonly=1);
SELECT count(*), min("offset"), max("offset"), sum(length(value)) FROM tr;
SELECT "offset", time, quote(key), substr(value, 1, 20) FROM tr ORDER BY "offset" DESC LIMIT 1;
SELECT count(*) FROM tr WHERE "offset" = 299;
SELECT count(*) FROM tr WHERE key = '       299';
.print == read-only refuses INSERT
INSERT INTO tr(key, value, time) VALUES ('x', 'y', 1672531200300000);
DROP TABLE tr;
.print == read-write: the torn tail is cut at open; still 299, and the next offset is 299
CREATE VIRTUAL TABLE tw USING klevdb(dir='fixtures/v2-torn/store', rollover='16KB', key='text', value='text');
SELECT count(*), max("offset") FROM tw;
INSERT INTO tw(key, value, time) VALUES ('       299', 'again', 1672531200299000);
SELECT last_insert_rowid();
SELECT "offset", quote(key), value FROM tw WHERE "offset" >= 298;
SELECT "offset", value FROM tw WHERE key = '       299';
SELECT count(*) FROM klevdb_scan('fixtures/v2-torn/store');
