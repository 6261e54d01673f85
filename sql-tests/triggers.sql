-- triggers.sql: no trigger of the schema writes a klevdb table that is not
-- allowed to triggers. SQLite 3.40 and newer refuse such a trigger when the
-- statement that fires it is prepared; before 3.40 (tests/sqlite-versions)
-- the table refuses its writes itself while a trigger of its schema names
-- it (written in other case and quoting here), and so refuses the
-- application's own writes too until the trigger is dropped.

CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT);
CREATE TABLE seen(n INTEGER);
CREATE VIRTUAL TABLE "out""box" USING klevdb(dir='ob.d', key='text', value='text');
INSERT INTO "out""box"(key, value) VALUES ('a', 'one');

.print == a trigger on an ordinary table that names no klevdb table changes nothing
CREATE TRIGGER upper_item AFTER INSERT ON orders BEGIN
  UPDATE orders SET item = upper(new.item) WHERE id = new.id;
END;
INSERT INTO "out""box"(key, value) VALUES ('b', 'two');
INSERT INTO orders(item) VALUES ('pen');
SELECT item FROM orders;

.print == a trigger that deletes from it: its statement fails, nothing is deleted
CREATE TRIGGER purge AFTER INSERT ON orders BEGIN
  DELETE FROM [OUT"BOX];
END;
INSERT INTO orders(item) VALUES ('ink');
SELECT count(*) FROM orders;
SELECT key FROM "out""box";
.print == the application's own write meanwhile (refused before 3.40)
INSERT INTO "out""box"(key, value) VALUES ('x', 'direct');
SELECT key FROM "out""box";

.print == a TEMP trigger is the application's own: it may read the table
CREATE TEMP TRIGGER count_box AFTER INSERT ON seen BEGIN
  INSERT INTO seen SELECT count(*) + 100 FROM main."out""box" WHERE new.n < 100;
END;
INSERT INTO seen VALUES (1);
SELECT n FROM seen ORDER BY n;

.print == once the trigger is dropped, the application writes again
DROP TRIGGER purge;
INSERT INTO "out""box"(key, value) VALUES ('c', 'three');
DELETE FROM "out""box" WHERE key = 'a';
SELECT key FROM "out""box";
