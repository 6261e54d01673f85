-- codecs.sql: the key/value codecs (blob; text, the default; integer, Go
-- zig-zag varint; json; string, Go StringCodec; stringopt, Go
-- StringOptCodec): what each stores (hex of the raw bytes through
-- klevdb_scan), what it reads back (typeof), NULL and '' (absent), the
-- type errors with their messages, and lookups by key with each codec.
-- Each column is declared with the type its codec reads back (BLOB, TEXT,
-- INTEGER): a value is converted as for a plain column of that type and
-- refused if it would not read back as it went in; key = finds, through
-- the index or not (+key), what it finds in a plain table.

.print ======== blob: bytes as they are, read back as BLOB
CREATE VIRTUAL TABLE cb USING klevdb(dir='cb.d', key='blob', value='blob');
SELECT name, type FROM pragma_table_info('cb');
INSERT INTO cb(key, value, time) VALUES (x'00ff', CAST('text in blob' AS BLOB), 1672531200000000), (NULL, x'', 1672531201000000), (x'', NULL, 1672531202000000), (x'6b', x'0102', 1672531203000000);
SELECT "offset", typeof(key), hex(key), typeof(value), hex(value) FROM cb;
.print == stored (NULL, empty TEXT and empty BLOB are all absent)
SELECT "offset", hex(key), hex(value) FROM klevdb_scan('cb.d');
.print == key = x00ff (0), key = x6b (3), key IS NULL (1, 2)
EXPLAIN QUERY PLAN SELECT "offset" FROM cb WHERE key = x'00ff';
SELECT "offset" FROM cb WHERE key = x'00ff';
SELECT "offset" FROM cb WHERE key = x'6b';
SELECT "offset" FROM cb WHERE key IS NULL;
.print == key = empty BLOB: none (the absent keys read back NULL, and NULL = an empty BLOB is never true)
SELECT "offset" FROM cb WHERE key = x'';
SELECT count(*) FROM cb WHERE +key = x'';
.print == type errors: TEXT key, INTEGER key, REAL value (they would read back as BLOBs)
INSERT INTO cb(key, value, time) VALUES ('k', x'01', 1672531209000000);
INSERT INTO cb(key, value, time) VALUES (42, x'01', 1672531209000000);
INSERT INTO cb(key, value, time) VALUES (x'01', 1.5, 1672531209000000);
SELECT count(*) FROM cb;
.print == a key of another type equals none, with the index or without: none x5
SELECT "offset" FROM cb WHERE key = 42;
SELECT "offset" FROM cb WHERE key = 'k';
SELECT "offset" FROM cb WHERE +key = 'k';
SELECT "offset" FROM cb WHERE key = 'k' AND value = x'0102';
SELECT "offset" FROM cb WHERE key IN ('k', 107);

.print ======== text: bytes as they are, read back as TEXT
CREATE VIRTUAL TABLE ct USING klevdb(dir='ct.d', key='text', value='text');
SELECT name, type FROM pragma_table_info('ct');
INSERT INTO ct(key, value, time) VALUES ('k', 'hi', 1672531200000000), ('é', '', 1672531201000000), (NULL, 'v', 1672531202000000);
SELECT "offset", typeof(key), quote(key), typeof(value), quote(value) FROM ct;
SELECT "offset", hex(key), hex(value) FROM klevdb_scan('ct.d');
.print == key = k (0), key = é (1)
SELECT "offset", value FROM ct WHERE key = 'k';
SELECT "offset", value FROM ct WHERE key = 'é';
.print == key = empty TEXT: none (row 2 has the absent key, NULL)
SELECT "offset" FROM ct WHERE key = '';
.print == numbers are stored as their text, as in a TEXT column (3: TEXT 1 and 2.5)
INSERT INTO ct(key, value, time) VALUES (1, 2.5, 1672531203000000);
SELECT "offset", quote(key), quote(value) FROM ct WHERE key = '1';
.print == key = 1 is key = TEXT 1 with the index and without (3, 3); +key = 1 compares TEXT with INTEGER: none
SELECT "offset" FROM ct WHERE key = 1;
SELECT "offset" FROM ct WHERE key = 1 AND value = '2.5';
SELECT "offset" FROM ct WHERE +key = 1;
.print == a BLOB equals no TEXT: key = x'6b' finds none, with the index or without
SELECT "offset" FROM ct WHERE key = x'6b';
SELECT "offset" FROM ct WHERE +key = x'6b';
.print == another collation is SQLite's to apply: key = K COLLATE NOCASE (0)
SELECT "offset" FROM ct WHERE key = 'K' COLLATE NOCASE;
.print == type errors: BLOB key, BLOB value
INSERT INTO ct(key, value, time) VALUES (x'6b', 'x', 1672531209000000);
INSERT INTO ct(key, value, time) VALUES ('k', x'6869', 1672531209000000);
.print == CAST says what is meant (4)
INSERT INTO ct(key, value, time) VALUES (CAST(x'6b32' AS TEXT), CAST(x'6869' AS TEXT), 1672531204000000);
SELECT "offset", quote(key), quote(value) FROM ct WHERE key = 'k2';

.print ======== integer: Go zig-zag varint, read back as INTEGER
CREATE VIRTUAL TABLE ci USING klevdb(dir='ci.d', key='integer', value='integer');
SELECT name, type FROM pragma_table_info('ci');
INSERT INTO ci(key, value, time) VALUES (150, -1, 1672531200000000), (0, 9223372036854775807, 1672531201000000), ('-64', NULL, 1672531202000000), (64, -9223372036854775808, 1672531203000000);
SELECT "offset", typeof(key), key, typeof(value), value FROM ci;
.print == stored: 150 = AC02, -1 = 01, 0 = 00, -64 = 7F, 64 = 8001
SELECT "offset", hex(key), hex(value) FROM klevdb_scan('ci.d');
SELECT hex(klevdb_varint(150)), hex(klevdb_varint(-64));
.print == key = 150 uses the index (0)
EXPLAIN QUERY PLAN SELECT "offset" FROM ci WHERE key = 150;
SELECT "offset", key, value FROM ci WHERE key = 150;
.print == key = -64 (2), key = 0 (1), key IN (64, 0, 7) (1, 3), key = 7 (none)
SELECT "offset" FROM ci WHERE key = -64;
SELECT "offset" FROM ci WHERE key = 0;
SELECT "offset" FROM ci WHERE key IN (64, 0, 7);
SELECT "offset" FROM ci WHERE key = 7;
.print == newest by key = 150 after another 150
INSERT INTO ci(key, value, time) VALUES (150, 2, 1672531204000000);
SELECT "offset", value FROM ci WHERE key = 150 ORDER BY "offset" DESC LIMIT 1;
.print == key = 150.0 (SQLite: 150 = 150.0 is true, so 0 and 4)
SELECT "offset" FROM ci WHERE key = 150.0;
.print == key = TEXT 150 is key = 150 with the index and without (0 4, 0 4); +key = TEXT 150 compares INTEGER with TEXT: none
SELECT "offset" FROM ci WHERE key = '150';
SELECT "offset" FROM ci WHERE key = '150' AND value IS NOT NULL;
SELECT "offset" FROM ci WHERE +key = '150';
.print == TEXT and REAL that are whole numbers are stored as INTEGER, as in an INTEGER column (5, 6)
INSERT INTO ci(key, value, time) VALUES (' 12', '1e3', 1672531205000000), (12.0, '-7.0', 1672531206000000);
SELECT "offset", key, typeof(key), value, typeof(value) FROM ci WHERE "offset" >= 5;
.print == type errors: TEXT that is no integer (abc, 12abc, 0x10), REAL, BLOB, empty TEXT
INSERT INTO ci(key, value, time) VALUES ('abc', 1, 1672531209000000);
INSERT INTO ci(key, value, time) VALUES ('0x10', 1, 1672531209000000);
INSERT INTO ci(key, value, time) VALUES ('12abc', 1, 1672531209000000);
INSERT INTO ci(key, value, time) VALUES (1.5, 1, 1672531209000000);
INSERT INTO ci(key, value, time) VALUES (x'01', 1, 1672531209000000);
INSERT INTO ci(key, value, time) VALUES (1, '', 1672531209000000);
SELECT count(*) FROM ci;

.print ======== json: JSON text, validated on write, read back as TEXT
CREATE VIRTUAL TABLE cj USING klevdb(dir='cj.d', key='json', value='json');
SELECT name, type FROM pragma_table_info('cj');
INSERT INTO cj(key, value, time) VALUES ('{"a":1}', '[1, 2]', 1672531200000000), (7, 1.5, 1672531201000000), ('"s"', 'null', 1672531202000000), (NULL, NULL, 1672531203000000);
SELECT "offset", typeof(key), key, typeof(value), value FROM cj;
SELECT "offset", hex(key), hex(value) FROM klevdb_scan('cj.d');
.print == key = the object (0), key = 7 (1: an INTEGER is its JSON text)
SELECT "offset" FROM cj WHERE key = '{"a":1}';
SELECT "offset" FROM cj WHERE key = 7;
.print == validation errors: {a:1}, [1, (value), empty TEXT; type error: BLOB
INSERT INTO cj(key, value, time) VALUES ('{a:1}', '1', 1672531209000000);
INSERT INTO cj(key, value, time) VALUES ('1', '[1,', 1672531209000000);
INSERT INTO cj(key, value, time) VALUES ('', '1', 1672531209000000);
INSERT INTO cj(key, value, time) VALUES (x'31', '1', 1672531209000000);
SELECT count(*) FROM cj;

.print ======== string: Go StringCodec, absent reads back as an empty TEXT
CREATE VIRTUAL TABLE cs USING klevdb(dir='cs.d', key='string', value='string');
SELECT name, type FROM pragma_table_info('cs');
INSERT INTO cs(key, value, time) VALUES ('k', '', 1672531200000000), (NULL, NULL, 1672531201000000), ('hi', 'v', 1672531202000000);
SELECT "offset", typeof(key), quote(key), typeof(value), quote(value) FROM cs;
SELECT "offset", hex(key), hex(value) FROM klevdb_scan('cs.d');
.print == key = k (0), key = hi (2), key = empty (1: the absent key), key IS NULL (none)
SELECT "offset" FROM cs WHERE key = 'k';
SELECT "offset" FROM cs WHERE key = 'hi';
SELECT "offset" FROM cs WHERE key = '';
SELECT "offset" FROM cs WHERE key IS NULL;
.print == a number is its text (3), a BLOB is refused
INSERT INTO cs(key, value, time) VALUES (5, 'v', 1672531203000000);
SELECT "offset", quote(key) FROM cs WHERE key = 5;
INSERT INTO cs(key, value, time) VALUES (x'6869', 'v', 1672531209000000);

.print ======== stringopt: Go StringOptCodec, a JSON string on disk
CREATE VIRTUAL TABLE co USING klevdb(dir='co.d', key='stringopt', value='stringopt');
SELECT name, type FROM pragma_table_info('co');
INSERT INTO co(key, value, time) VALUES ('<a&b>', '', 1672531200000000), (NULL, NULL, 1672531201000000), ('é"\', CAST(x'ff' AS TEXT), 1672531202000000);
SELECT "offset", typeof(key), quote(key), typeof(value), quote(value) FROM co;
.print == stored as Go writes it: in quotes, with u003c u0026 u003e escapes, two quotes for empty, absent for NULL, ufffd for bad UTF-8
SELECT "offset", hex(key), hex(value), CAST(key AS TEXT), CAST(value AS TEXT) FROM klevdb_scan('co.d');
.print == key = <a&b> (0), key = the second one (2)
SELECT "offset" FROM co WHERE key = '<a&b>';
SELECT "offset" FROM co WHERE key = 'é"\';
.print == a number is its text (3), a BLOB is refused
INSERT INTO co(key, value, time) VALUES (1, 'x', 1672531203000000);
SELECT "offset", quote(key) FROM co WHERE key = '1';
INSERT INTO co(key, value, time) VALUES (x'01', 'x', 1672531209000000);

.print ======== reading with the wrong codec is an error, not NULL
INSERT INTO cb(key, value, time) VALUES (x'ff', CAST('not json' AS BLOB), 1672531204000000);
CREATE VIRTUAL TABLE wrong USING klevdb(dir='cb.d', key='integer', value='stringopt');
SELECT "offset", key FROM wrong WHERE "offset" = 4;
SELECT "offset", value FROM wrong WHERE "offset" = 4;
.print == a varint with trailing bytes reads as its varint (as in Go): x00ff is 0
SELECT "offset", key FROM wrong WHERE "offset" = 0;

.print ======== codec names
CREATE VIRTUAL TABLE bad USING klevdb(dir='bad.d', key='int');
