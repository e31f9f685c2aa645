-- A shadow keeps room on its pages: a first full sync fills it with one
-- insert per row, and every later change updates those rows.  With a tenth
-- of each page left free (fillfactor 90) those updates stay on their pages,
-- HOT updates that write no index entry, instead of moving every changed
-- row's base to a new page and indexing it again.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE part (id int PRIMARY KEY, name text, qty int, note text);
INSERT INTO part SELECT g, 'part ' || g, g % 100, repeat('n', 40) FROM generate_series(1, 3000) g;
SELECT sync_resolve.track('part', ARRAY['crm', 'billing'], 'latest');

-- the shadow is created with the fillfactor
SELECT c.reloptions
FROM sync_resolve.tracked t JOIN pg_class c ON c.oid = t.shadow::regclass
WHERE t.relid = 'part'::regclass;

-- the first full sync: crm sends every row as it is, one base inserted per row
SELECT outcome, count(*)
FROM sync_resolve.apply_batch('part', 'crm',
	(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'data', to_jsonb(p), 'changed_at', '2030-01-01'))
	 FROM part p))
GROUP BY outcome;

-- then crm changes qty of 30 rows, a hundred rows apart (each on a page of its own):
-- each base is updated in place, each row gets its local metadata (an insert)
-- (the counts are read before and after, in the transaction: pg_stat_xact_all_tables
-- also shows what earlier transactions of the session have not reported yet)
BEGIN;
SELECT s.n_tup_ins AS ins0, s.n_tup_upd AS upd0, s.n_tup_hot_upd AS hot0
FROM sync_resolve.tracked t JOIN pg_stat_xact_all_tables s ON s.relid = t.shadow::regclass
WHERE t.relid = 'part'::regclass \gset
SELECT outcome, count(*)
FROM sync_resolve.apply_batch('part', 'crm',
	(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'data', jsonb_build_object('id', g, 'qty', -g),
										 'changed_at', '2030-01-02'))
	 FROM generate_series(1, 3000, 100) g))
GROUP BY outcome;
SELECT s.n_tup_ins - :ins0 AS inserted, s.n_tup_upd - :upd0 AS updated,
	   s.n_tup_hot_upd - :hot0 AS hot_updated
FROM sync_resolve.tracked t JOIN pg_stat_xact_all_tables s ON s.relid = t.shadow::regclass
WHERE t.relid = 'part'::regclass;
COMMIT;
SELECT count(*) FILTER (WHERE qty < 0) AS changed, count(*) AS rows FROM part;
