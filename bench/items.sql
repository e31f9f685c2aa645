-- bench/items.sql: the rows every benchmark's table holds, built alike by each setup
-- (bench/setup.sql, bench/setup_scale.sql, bench/setup_claim.sql): a table named by the
-- psql variable items, of rows rows.
CREATE TABLE :"items" (id int PRIMARY KEY, name text, qty int, price numeric, note text, tags text[]);
INSERT INTO :"items"
SELECT g, 'item ' || g, g % 100, round((g % 1000) / 10.0, 2), 'note ' || g,
	   ARRAY['t' || (g % 7), 't' || (g % 11)]
FROM generate_series(1, :rows) g;
