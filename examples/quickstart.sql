-- quickstart.sql: klevdb from the sqlite3 shell. scripts/demo.sh runs it in a
-- fresh folder; by hand (from the top of the source tree, after building):
--
--   sqlite3 -cmd '.load build/ext/klevdb' quickstart.db < examples/quickstart.sql
--
-- A klevdb table is an append-only log: every INSERT gets the next offset,
-- reads go through the offset, key and time indexes, and the files in
-- quickstart.d/ are those Go klevdb writes and reads.
.mode box

.print
.print == Create a table: its store is the folder quickstart.d
CREATE VIRTUAL TABLE events USING klevdb(dir='quickstart.d', key='text', value='text');

.print
.print == Publish: INSERT appends, the log assigns offsets (time: INTEGER microseconds or ISO-8601)
INSERT INTO events(key, value, time) VALUES
  ('user:1', '{"action":"click","page":"/home"}',          '2024-05-01T09:00:00Z'),
  ('user:2', '{"action":"click","page":"/pricing"}',       '2024-05-01T09:00:05Z'),
  ('user:1', '{"action":"order","item":"book","qty":1}',   '2024-05-01T09:01:10Z'),
  ('user:3', '{"action":"click","page":"/home"}',          '2024-05-01T09:02:00Z'),
  ('user:2', '{"action":"order","item":"pen","qty":3}',    '2024-05-01T09:03:30Z'),
  ('user:1', '{"action":"click","page":"/orders"}',        '2024-05-01T09:05:00Z');
SELECT "offset", time, key, value FROM events;

.print
.print == Consume: a consumer remembers the next offset and reads a batch from there
SELECT "offset", datetime(time / 1000000, 'unixepoch') AS at, key, value
  FROM events WHERE "offset" >= 2 LIMIT 3;

.print
.print == Latest by key: the newest event of user:1 (key index)
SELECT "offset", key, value
  FROM events WHERE key = 'user:1' ORDER BY "offset" DESC LIMIT 1;

.print
.print == Since a time: events from 09:02 on (time index; klevdb_time turns ISO-8601 into microseconds)
SELECT "offset", datetime(time / 1000000, 'unixepoch') AS at, key,
       json_extract(value, '$.action') AS action
  FROM events WHERE time >= klevdb_time('2024-05-01T09:02:00Z');

.print
.print == Orders per user: the rest of SQL works as usual
SELECT key, count(*) AS orders, sum(json_extract(value, '$.qty')) AS items
  FROM events WHERE json_extract(value, '$.action') = 'order'
  GROUP BY key ORDER BY key;

.print
.print == Stat: the store as JSON
SELECT key AS stat, value FROM json_each(klevdb_stat('events'));

.print
.print == Retention: delete what is older than 09:01, then keep only the newest 3
DELETE FROM events WHERE time < klevdb_time('2024-05-01T09:01:00Z');
SELECT changes() AS deleted;
SELECT klevdb_trim('events', 'count', 3) AS trimmed;
SELECT "offset", datetime(time / 1000000, 'unixepoch') AS at, key, value FROM events;

.print
.print == Publish again: offsets keep growing, never reused
INSERT INTO events(key, value) VALUES ('user:3', '{"action":"order","item":"mug","qty":2}');
SELECT last_insert_rowid() AS new_offset;
SELECT "offset", key, value FROM events;

.print
.print == Wait for news: wait = ms blocks until a message at or after the offset exists
.print (here one does, so it returns at once; an INSERT elsewhere would wake it)
SELECT "offset", key FROM events WHERE "offset" >= 6 AND wait = 2000;
