-- apply_batch() of 1,000 consecutive rows from crm, one column changed in each, no conflict
\set start random(1, 9001)
\set v random(1, 1000000)
SELECT count(*) FROM sync_resolve.apply_batch('item_batch', 'crm',
	(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'data', jsonb_build_object('id', g, 'qty', :v::int + g),
										 'changed_at', now()))
	 FROM generate_series(:start::int, :start::int + 999) g));
