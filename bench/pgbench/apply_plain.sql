-- the same change as a plain upsert into the untracked copy
-- (rows: the table's size, given by bench/run.sh with pgbench -D rows=N)
\set id random(1, :rows)
\set qty random(1, 1000000)
INSERT INTO item_apply_plain (id, qty) VALUES (:id::int, :qty::int)
	ON CONFLICT (id) DO UPDATE SET qty = excluded.qty;
