-- retention.sql: retention declared on the table (max_count, max_bytes,
-- max_age) drops whole sealed segments with each commit that writes the
-- table, never the head, recorded in klevdb_stat; keep_unconsumed=1 spares
-- what the table's consumers have not read (retention and klevdb_trim);
-- a read-only table never applies it; bad arguments are refused.
-- With rollover=150 and these messages a segment holds 4 (offsets 0-3,
-- 4-7, 8-11, ...). Times: 1672531200000000 is 2023-01-01T00:00:00Z.

.print ======== max_count=5: a segment goes once 5 newer messages are there
CREATE VIRTUAL TABLE c USING klevdb(dir='c.d', rollover=150, max_count=5);
INSERT INTO c(key, value, time) VALUES ('k', 'v00', 1672531200000000);
INSERT INTO c(key, value, time) VALUES ('k', 'v01', 1672531201000000);
INSERT INTO c(key, value, time) VALUES ('k', 'v02', 1672531202000000);
INSERT INTO c(key, value, time) VALUES ('k', 'v03', 1672531203000000);
INSERT INTO c(key, value, time) VALUES ('k', 'v04', 1672531204000000);
INSERT INTO c(key, value, time) VALUES ('k', 'v05', 1672531205000000);
INSERT INTO c(key, value, time) VALUES ('k', 'v06', 1672531206000000);
INSERT INTO c(key, value, time) VALUES ('k', 'v07', 1672531207000000);
.print == 8 messages, 2 segments, nothing removed (4 newer than segment 0 are not 5)
SELECT json_extract(s, '$.segments'), json_extract(s, '$.messages'), json_extract(s, '$.oldest_offset'), json_extract(s, '$.retention.removed_messages') FROM (SELECT klevdb_stat('c') AS s);
INSERT INTO c(key, value, time) VALUES ('k', 'v08', 1672531208000000);
.print == the 9th commit drops segment 0 with it: 4..8 left, 4 removed in 1 segment
.print == last_insert_rowid() is still the 9th message (8): retention's record is no insert of the caller
SELECT last_insert_rowid();
SELECT json_extract(s, '$.segments'), json_extract(s, '$.messages'), json_extract(s, '$.oldest_offset'), json_extract(s, '$.retention.removed_messages'), json_extract(s, '$.retention.removed_segments') FROM (SELECT klevdb_stat('c') AS s);
SELECT min("offset"), max("offset"), count(*) FROM c;
SELECT json_extract(s, '$.retention.last_removed_messages'), json_extract(s, '$.retention.last_removed_segments'), json_extract(s, '$.retention.last_removed_at') > 1672531200000000 FROM (SELECT klevdb_stat('c') AS s);
.print == the record is in the shadow table (ids 2: totals, 3: last)
SELECT id, base, count FROM c_klevdb WHERE id IN (2, 3) ORDER BY id;
.print == a ROLLBACK removes nothing; retention is part of the COMMIT
INSERT INTO c(key, value, time) VALUES ('k', 'v09', 1672531209000000);
INSERT INTO c(key, value, time) VALUES ('k', 'v10', 1672531210000000);
INSERT INTO c(key, value, time) VALUES ('k', 'v11', 1672531211000000);
BEGIN;
INSERT INTO c(key, value, time) VALUES ('k', 'v12', 1672531212000000);
SELECT min("offset"), count(*) FROM c;
ROLLBACK;
SELECT min("offset"), count(*) FROM c;
.print == with another table in the transaction (the prepared commit): 8..12 left
CREATE TABLE log(x);
BEGIN;
INSERT INTO c(key, value, time) VALUES ('k', 'v12', 1672531212000000);
INSERT INTO log VALUES (1);
SELECT min("offset"), count(*) FROM c;
COMMIT;
SELECT min("offset"), count(*) FROM c;
SELECT json_extract(s, '$.retention.removed_messages'), json_extract(s, '$.retention.removed_segments') FROM (SELECT klevdb_stat('c') AS s);
.print == a transaction that does not write the table applies nothing
SELECT klevdb_commit('c', 'x', 13);
SELECT min("offset"), count(*) FROM c;
.print == a read-only table on the store never removes (max_count=1)
CREATE VIRTUAL TABLE c_ro USING klevdb(dir='c.d', readonly=1, max_count=1);
SELECT count(*) FROM c_ro;
SELECT json_extract(s, '$.retention.max_count'), json_extract(s, '$.retention.removed_messages') FROM (SELECT klevdb_stat('c_ro') AS s);

.print ======== max_bytes=400: a segment goes once 400 newer bytes are there
-- A sealed segment of 4 is 304 bytes (log and index, as klevdb_stat counts).
CREATE VIRTUAL TABLE b USING klevdb(dir='b.d', rollover=150, max_bytes=400);
INSERT INTO b(key, value, time) VALUES ('k', 'v00', 1672531200000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v01', 1672531201000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v02', 1672531202000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v03', 1672531203000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v04', 1672531204000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v05', 1672531205000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v06', 1672531206000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v07', 1672531207000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v08', 1672531208000000);
.print == 9 messages: segment 0 stays (newer: 304 bytes of 4..7 and the pending 8)
SELECT json_extract(s, '$.segments'), json_extract(s, '$.messages'), json_extract(s, '$.bytes'), json_extract(s, '$.retention.removed_messages') FROM (SELECT klevdb_stat('b') AS s);
INSERT INTO b(key, value, time) VALUES ('k', 'v09', 1672531209000000);
.print == the 10th: segment 0 goes (4 removed), 4..9 left
SELECT json_extract(s, '$.segments'), json_extract(s, '$.messages'), json_extract(s, '$.bytes'), json_extract(s, '$.retention.removed_messages') FROM (SELECT klevdb_stat('b') AS s);
SELECT min("offset"), count(*) FROM b;
INSERT INTO b(key, value, time) VALUES ('k', 'v10', 1672531210000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v11', 1672531211000000);
INSERT INTO b(key, value, time) VALUES ('k', 'v12', 1672531212000000);
.print == 4..12: the newer of segment 4 (8..12) are 5 messages, under 400 bytes
SELECT min("offset"), count(*), json_extract(klevdb_stat('b'), '$.bytes') FROM b;
INSERT INTO b(key, value, time) VALUES ('k', 'v13', 1672531213000000);
.print == the 6th newer one tips it: 8..13 left, 8 removed in all
SELECT min("offset"), count(*), json_extract(klevdb_stat('b'), '$.retention.removed_messages') FROM b;

.print ======== max_age=1d: messages of 2023 are past it; the head stays
CREATE VIRTUAL TABLE a USING klevdb(dir='a.d', rollover=150, max_age='1d');
INSERT INTO a(key, value, time) VALUES ('k', 'v00', 1672531200000000);
INSERT INTO a(key, value, time) VALUES ('k', 'v01', 1672531201000000);
INSERT INTO a(key, value, time) VALUES ('k', 'v02', 1672531202000000);
INSERT INTO a(key, value, time) VALUES ('k', 'v03', 1672531203000000);
INSERT INTO a(key, value, time) VALUES ('k', 'v04', 1672531204000000);
.print == 0..4: segment 0 was the head at the last commit: nothing removed
SELECT min("offset"), count(*) FROM a;
INSERT INTO a(key, value, time) VALUES ('k', 'now', NULL);
.print == the next commit drops it: 4, 5 left
SELECT min("offset"), count(*) FROM a;
SELECT json_extract(s, '$.retention.max_age_us'), json_extract(s, '$.retention.removed_messages'), json_extract(s, '$.retention.removed_segments') FROM (SELECT klevdb_stat('a') AS s);
.print == a segment with a young message stays (4 old, 5..7 young): 4..10 left
INSERT INTO a(key, value) VALUES ('k', 'n1');
INSERT INTO a(key, value) VALUES ('k', 'n2');
INSERT INTO a(key, value) VALUES ('k', 'n3');
INSERT INTO a(key, value) VALUES ('k', 'n4');
INSERT INTO a(key, value) VALUES ('k', 'n5');
SELECT min("offset"), count(*) FROM a;

.print ======== max_age after a young message went: the old segments still go
-- The index clamps each time to the largest before it (docs/format.md),
-- so the new head after the DELETE carries 2100 in its index: retention
-- reads the messages' own times.
CREATE VIRTUAL TABLE y USING klevdb(dir='y.d', rollover=150, max_age='1d');
INSERT INTO y(key, value, time) VALUES ('k', 'v00', 4102444800000000);
DELETE FROM y;
INSERT INTO y(key, value, time) VALUES ('k', 'v01', 1672531201000000);
INSERT INTO y(key, value, time) VALUES ('k', 'v02', 1672531202000000);
INSERT INTO y(key, value, time) VALUES ('k', 'v03', 1672531203000000);
INSERT INTO y(key, value, time) VALUES ('k', 'v04', 1672531204000000);
INSERT INTO y(key, value, time) VALUES ('k', 'v05', 1672531205000000);
INSERT INTO y(key, value, time) VALUES ('k', 'v06', 1672531206000000);
.print == 1..4 went with the commit of 6 (2023, all old); 5, 6 left
SELECT min("offset"), count(*) FROM y;
.print == a young one (7) keeps its segment (5..8) and those after it: 5..10 left
INSERT INTO y(key, value, time) VALUES ('k', 'v07', 4102444800000000);
INSERT INTO y(key, value, time) VALUES ('k', 'v08', 1672531208000000);
INSERT INTO y(key, value, time) VALUES ('k', 'v09', 1672531209000000);
INSERT INTO y(key, value, time) VALUES ('k', 'v10', 1672531210000000);
SELECT min("offset"), count(*) FROM y;

.print ======== keep_unconsumed=1, max_count=2
CREATE VIRTUAL TABLE k USING klevdb(dir='k.d', rollover=150, max_count=2, keep_unconsumed=1);
.print == no consumers: stat says so, and retention works as without it
SELECT json_extract(s, '$.retention.keep_unconsumed') FROM (SELECT klevdb_stat('k') AS s);
INSERT INTO k(key, value, time) VALUES ('k', 'v00', 1672531200000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v01', 1672531201000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v02', 1672531202000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v03', 1672531203000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v04', 1672531204000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v05', 1672531205000000);
SELECT min("offset"), count(*) FROM k;
.print == a consumer at 4 (the oldest) holds everything from 4 on
SELECT klevdb_reset('k', 'slow', 'oldest');
SELECT json_extract(s, '$.retention.keep_unconsumed') FROM (SELECT klevdb_stat('k') AS s);
INSERT INTO k(key, value, time) VALUES ('k', 'v06', 1672531206000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v07', 1672531207000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v08', 1672531208000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v09', 1672531209000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v10', 1672531210000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v11', 1672531211000000);
INSERT INTO k(key, value, time) VALUES ('k', 'v12', 1672531212000000);
SELECT min("offset"), count(*) FROM k;
.print == its lag shows it holding back 9 messages
SELECT name, position, lag FROM klevdb_consumers('k');
.print == it moves to 9: segment 4..7 goes at the next commit, 8..11 stays (9 is in it)
SELECT klevdb_commit('k', 'slow', 9);
INSERT INTO k(key, value, time) VALUES ('k', 'v13', 1672531213000000);
SELECT min("offset"), count(*) FROM k;
.print == klevdb_trim keeps from 9 on too (removes 8 alone)
SELECT klevdb_trim('k', 'count', 0);
SELECT min("offset"), count(*) FROM k;
SELECT klevdb_trim('k', 'offset', 100);
SELECT min("offset"), count(*) FROM k;
.print == a second consumer further back holds from its position
SELECT klevdb_reset('k', 'slower', 9);
SELECT klevdb_commit('k', 'slow', 14);
SELECT json_extract(s, '$.retention.keep_unconsumed') FROM (SELECT klevdb_stat('k') AS s);
.print == the abandoned one dropped: trim removes up to the other one's position
SELECT klevdb_consumer_drop('k', 'slower');
SELECT klevdb_trim('k', 'offset', 100);
SELECT min("offset"), count(*) FROM k;
.print == without keep_unconsumed a consumer holds nothing back
SELECT klevdb_reset('c', 'slow', 'oldest');
SELECT klevdb_trim('c', 'count', 1);
SELECT min("offset"), count(*) FROM c;

.print ======== arguments that do not parse
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', max_age='7 weeks');
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', max_age=0);
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', max_age='-1h');
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', max_bytes='lots');
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', max_bytes=0);
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', max_count=0);
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', max_count='2.5');
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', max_count=1, max_count=2);
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', keep_unconsumed='sometimes');
CREATE VIRTUAL TABLE x USING klevdb(dir='x.d', max_age='1d', time_index=0);
SELECT count(*) FROM sqlite_master WHERE name = 'x';
