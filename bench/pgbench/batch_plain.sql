-- the same 1,000 rows, built as the same JSON array, as one multi-row plain upsert
\set start random(1, 9001)
\set v random(1, 1000000)
INSERT INTO item_batch_plain (id, qty)
SELECT (e -> 'data' ->> 'id')::int, (e -> 'data' ->> 'qty')::int
FROM jsonb_array_elements(
	(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'data', jsonb_build_object('id', g, 'qty', :v::int + g),
										 'changed_at', now()))
	 FROM generate_series(:start::int, :start::int + 999) g)) e
ON CONFLICT (id) DO UPDATE SET qty = excluded.qty;
