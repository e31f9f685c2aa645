-- the same row as a plain upsert of every column into the untracked copy
\set id random(1, 10000)
\set n random(1, 1000000)
INSERT INTO item_conflict_plain (id, name, qty, price, note, tags)
	VALUES (:id::int, 'crm ' || :n::int, :n::int, :n::int / 100.0, 'note ' || :n::int, ARRAY['c' || :n::int])
	ON CONFLICT (id) DO UPDATE SET name = excluded.name, qty = excluded.qty, price = excluded.price,
		note = excluded.note, tags = excluded.tags;
