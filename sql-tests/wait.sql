-- wait.sql: the hidden column wait (milliseconds) in one connection: rows
-- already there come at once, an empty wait ends with no rows, and the
-- wrong uses are refused. Waking by other writers and interrupts are in
-- tests/ext/test_wait.py (they need threads or processes).

CREATE VIRTUAL TABLE events USING klevdb(dir='wait.d', key='text', value='text');
INSERT INTO events(key, value, time) VALUES
  ('a', 'one', 1672531200000000), ('b', 'two', 1672531201000000), ('a', 'three', 1672531202000000);

.print == rows there: returned, wait reads back its value
SELECT offset, key, value, wait FROM events WHERE offset >= 1 AND wait = 10000;
.print == by key and by time, with a wait
SELECT offset, value FROM events WHERE key = 'a' AND offset >= 1 AND wait = 10000;
SELECT offset, value FROM events WHERE time >= klevdb_time('2023-01-01T00:00:01Z') AND wait = 10000;
SELECT offset, value FROM events WHERE time >= '2023-01-01T00:00:01Z';
.print == nothing there: the wait runs out (50 ms), no rows
SELECT count(*) FROM events WHERE offset >= 3 AND wait = 50;
SELECT offset FROM events WHERE key = 'b' AND offset >= 2 AND wait = 50;
.print == hidden: not in SELECT *, NULL when not given
SELECT * FROM events WHERE offset = 0;
SELECT wait FROM events WHERE offset = 0;
.print == the plan shows it
EXPLAIN QUERY PLAN SELECT * FROM events WHERE offset >= 3 AND wait = 100;
.print == wrong uses
SELECT * FROM events WHERE wait = -5;
SELECT * FROM events WHERE wait = 'later';
SELECT * FROM events WHERE wait < 100;
SELECT * FROM events WHERE wait IN (10, 20);
INSERT INTO events(value, wait) VALUES ('x', 1);
SELECT count(*) FROM events;
