-- sync_resolve writes its own tables (the outbox, the shadows, the history)
-- with the executor's tuple routines, and opens a table's indexes only when
-- a write needs them: an update that stays on its page (HOT) writes no index
-- entry, and most do.  One that does not stay, its page being full, must
-- index the new row version in every index of the table, partial ones by
-- their predicates.  Here the outbox entries and the shadow rows of a table
-- outgrow their pages, until their updates move; then every index is
-- checked against its table (amcheck, heapallindexed: each row version the
-- table holds has its entry) and the entries are read back through them.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE crate (id int PRIMARY KEY, label text, qty int);
INSERT INTO crate SELECT g, 'crate ' || g, 0 FROM generate_series(1, 40) g;
SELECT sync_resolve.track('crate', ARRAY['crm', 'billing'], 'latest');

-- twenty rounds of local changes to every row, in one transaction (nothing
-- can be pruned), each label longer than the last: the entries waiting for
-- crm and billing merge each change and grow with it, the local metadata in
-- the shadow is rewritten each time, and their new versions soon no longer
-- fit on their pages
BEGIN;
SELECT coalesce(sum(s.n_tup_upd - s.n_tup_hot_upd) FILTER (WHERE s.relid = 'sync_resolve.outbox'::regclass), 0) AS outbox0,
	   coalesce(sum(s.n_tup_upd - s.n_tup_hot_upd) FILTER (WHERE s.relid <> 'sync_resolve.outbox'::regclass), 0) AS shadow0
FROM pg_stat_xact_all_tables s
WHERE s.relid IN ('sync_resolve.outbox'::regclass,
				  (SELECT t.shadow::regclass FROM sync_resolve.tracked t WHERE t.relid = 'crate'::regclass)) \gset
DO $$
BEGIN
	FOR r IN 1..20 LOOP
		UPDATE crate SET label = repeat('x', r * 40), qty = r;
	END LOOP;
END
$$;
-- updates that left their page: outbox entries and shadow rows indexed anew
SELECT coalesce(sum(s.n_tup_upd - s.n_tup_hot_upd) FILTER (WHERE s.relid = 'sync_resolve.outbox'::regclass), 0) - :outbox0 > 0 AS outbox_moved,
	   coalesce(sum(s.n_tup_upd - s.n_tup_hot_upd) FILTER (WHERE s.relid <> 'sync_resolve.outbox'::regclass), 0) - :shadow0 > 0 AS shadow_moved
FROM pg_stat_xact_all_tables s
WHERE s.relid IN ('sync_resolve.outbox'::regclass,
				  (SELECT t.shadow::regclass FROM sync_resolve.tracked t WHERE t.relid = 'crate'::regclass));
COMMIT;
-- and three rounds of changes from crm: history entries, each indexed by its
-- key's hash (an expression index, written by the same routines)
SELECT count(*) AS applied
FROM generate_series(1, 40) g, generate_series(1, 3) r,
	 LATERAL sync_resolve.apply('crate', 'crm', jsonb_build_object('id', g, 'qty', 100 * r + g),
								now() + r * interval '1 second') a
WHERE a.outcome = 'updated';

-- every index of the outbox, the shadow and the history holds an entry for
-- each row version its table holds
SELECT regexp_replace(c.relname, '[0-9]+', 'N') AS index_checked
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid,
	 LATERAL bt_index_check(c.oid, true)
WHERE i.indrelid IN ('sync_resolve.outbox'::regclass, 'sync_resolve.event'::regclass,
					 (SELECT t.shadow::regclass FROM sync_resolve.tracked t WHERE t.relid = 'crate'::regclass))
ORDER BY 1;

-- and the entries are found through the indexes: for each row one entry
-- waiting for each system, carrying the last label
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS rows,
	   count(*) FILTER (WHERE (SELECT count(*) FROM sync_resolve.outbox o
							   WHERE o.relid = 'crate'::regclass AND o.key = jsonb_build_object('id', c.id)
							   AND o.target = 'crm' AND o.status IN ('pending', 'failed')
							   AND length(o.payload ->> 'label') = 800) = 1) AS waiting_for_crm,
	   count(*) FILTER (WHERE (SELECT count(*) FROM sync_resolve.outbox o
							   WHERE o.relid = 'crate'::regclass AND o.key = jsonb_build_object('id', c.id)
							   AND o.target = 'billing' AND o.status IN ('pending', 'failed')
							   AND length(o.payload ->> 'label') = 800) = 1) AS waiting_for_billing
FROM crate c;
RESET enable_bitmapscan;
RESET enable_seqscan;
-- the claim goes through outbox_claim_idx, a partial index
SELECT count(*) AS claimed, count(DISTINCT key) AS rows, min(length(payload ->> 'label')) AS label_length
FROM sync_resolve.claim_outbound('crm', 100);
-- and each row's local metadata, through the shadow's primary key
SELECT t.shadow AS shadow FROM sync_resolve.tracked t WHERE t.relid = 'crate'::regclass \gset
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS rows_with_metadata
FROM crate c
WHERE EXISTS (SELECT 1 FROM :shadow s WHERE s.c1 = c.id AND s.system = 'local' AND s.col_writer[2] = 'local');
RESET enable_bitmapscan;
RESET enable_seqscan;

-- A row's history is found through event_row_idx, which indexes the key's
-- hash, not the key: explain() asks it for the hash and checks the key of
-- each entry it returns.  The index hands back only this row's entries --
-- as many as the row has events -- not every entry of the table's.
SELECT count(*) AS crate_7_events FROM sync_resolve.event
WHERE relid = 'crate'::regclass AND key = '{"id": 7}' \gset
SELECT count(*) AS crate_events FROM sync_resolve.event WHERE relid = 'crate'::regclass \gset
SELECT :crate_7_events > 0 AS has_history, :crate_events > :crate_7_events AS others_have_too;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET track_functions = 'all';
BEGIN;
SELECT pg_stat_get_xact_numscans('sync_resolve.event_row_idx'::regclass) AS scans0,
	   pg_stat_get_xact_tuples_returned('sync_resolve.event_row_idx'::regclass) AS returned0 \gset
SELECT count(*) = :crate_7_events AS the_whole_story FROM sync_resolve.explain('crate', '{"id": 7}');
SELECT pg_stat_get_xact_numscans('sync_resolve.event_row_idx'::regclass) - :scans0 AS index_scans,
	   pg_stat_get_xact_tuples_returned('sync_resolve.event_row_idx'::regclass) - :returned0
		 = :crate_7_events AS only_this_rows_entries;
-- and the key it looks for is made canonical twice (once for its hash),
-- not once per event
SELECT calls AS canonical_key_calls FROM pg_stat_xact_user_functions
WHERE schemaname = 'sync_resolve' AND funcname = 'canonical_key';
COMMIT;
RESET track_functions;
RESET enable_bitmapscan;
RESET enable_seqscan;

-- The C library reads outbox_waiting_idx by the layout it knows (relid, key
-- hash, key, target).  An index of another layout -- an install older than
-- the library -- is not read with values of the wrong types: sync_resolve
-- writes the outbox through SQL, which says that the index does not match.
BEGIN;
DROP INDEX sync_resolve.outbox_waiting_idx;
CREATE UNIQUE INDEX outbox_waiting_idx ON sync_resolve.outbox (relid, key, target)
	WHERE status IN ('pending', 'failed');
SAVEPOINT s;
\set VERBOSITY terse
-- must fail: no index matches the outbox upsert
UPDATE crate SET qty = 99 WHERE id = 1;
\set VERBOSITY default
ROLLBACK TO s;
ROLLBACK;
-- and with the index as the extension made it, as before
UPDATE crate SET qty = 99 WHERE id = 1;
SELECT count(*) AS waiting_with_qty_99 FROM sync_resolve.outbox
WHERE relid = 'crate'::regclass AND key = '{"id": 1}' AND payload ->> 'qty' = '99';

-- What the first write to open the outbox's indexes learnt of them serves
-- later writes, until the table's index list changes: an index created
-- since (also concurrently, and a partial one) gets the entries of every
-- write after it, and one dropped is no longer opened.
CREATE INDEX outbox_by_cause ON sync_resolve.outbox (cause, id);
CREATE INDEX CONCURRENTLY outbox_failing ON sync_resolve.outbox (attempts) WHERE attempts > 0;
TRUNCATE sync_resolve.outbox;
UPDATE crate SET qty = qty + 1 WHERE id <= 10;
UPDATE crate SET label = 'relabelled ' || id WHERE id <= 10;
SELECT count(*) AS entries, count(*) FILTER (WHERE payload ? 'label' AND payload ? 'qty') AS merged
FROM sync_resolve.outbox;
SELECT regexp_replace(c.relname, '[0-9]+', 'N') AS index_checked
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid,
	 LATERAL bt_index_check(c.oid, true)
WHERE i.indrelid = 'sync_resolve.outbox'::regclass
ORDER BY 1;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS found_by_cause FROM sync_resolve.outbox WHERE cause = 'local' AND id > 0;
RESET enable_bitmapscan;
RESET enable_seqscan;
DROP INDEX sync_resolve.outbox_by_cause;
DROP INDEX sync_resolve.outbox_failing;
UPDATE crate SET qty = qty + 1 WHERE id BETWEEN 11 AND 20;
SELECT count(*) AS entries FROM sync_resolve.outbox;
SELECT regexp_replace(c.relname, '[0-9]+', 'N') AS index_checked
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid,
	 LATERAL bt_index_check(c.oid, true)
WHERE i.indrelid = 'sync_resolve.outbox'::regclass
ORDER BY 1;

-- The expressions of the outbox's defaults and indexes are compiled once,
-- by the first write that needs them, and serve later writes -- but not an
-- expression over the whole row: its first evaluation keeps the row's
-- descriptor in the memory of that write, so each write compiles its own.
-- Five writes in a row through an index on a function of the whole entry,
-- each entry indexed as amcheck recomputes it.
CREATE FUNCTION entry_tag(o sync_resolve.outbox) RETURNS text IMMUTABLE
	LANGUAGE plpgsql AS $$BEGIN RETURN o.target || ':' || o.op; END$$;
CREATE INDEX outbox_by_tag ON sync_resolve.outbox (entry_tag(outbox));
TRUNCATE sync_resolve.outbox;
\c -
INSERT INTO crate VALUES (41, 'new crate 41', 1);
INSERT INTO crate VALUES (42, 'new crate 42', 1);
INSERT INTO crate VALUES (43, 'new crate 43', 1);
INSERT INTO crate VALUES (44, 'new crate 44', 1);
INSERT INTO crate VALUES (45, 'new crate 45', 1);
SELECT entry_tag(o) AS tag, count(*) FROM sync_resolve.outbox o GROUP BY 1 ORDER BY 1;
SELECT bt_index_check('sync_resolve.outbox_by_tag'::regclass, true) IS NOT NULL AS by_tag_checked;
DROP INDEX sync_resolve.outbox_by_tag;
DROP FUNCTION entry_tag(sync_resolve.outbox);

-- A change to any function drops the compiled expressions (they may call
-- it as it was), not the rest of what sync_resolve knows of its tables:
-- fifty functions created in one transaction, each followed by a write,
-- leave one layout per table written, not one per change.
BEGIN;
DO $$
BEGIN
	FOR r IN 1..50 LOOP
		EXECUTE format('CREATE FUNCTION pg_temp.f%s() RETURNS int LANGUAGE sql RETURN %s', r, r);
		UPDATE crate SET qty = qty + 1 WHERE id = 26;
	END LOOP;
END
$$;
SELECT count(*) FILTER (WHERE name = 'sync_resolve direct layout') <= 4 AS layouts_kept,
	   count(*) FILTER (WHERE name = 'sync_resolve direct states') <= 4 AS states_kept
FROM pg_backend_memory_contexts;
COMMIT;
