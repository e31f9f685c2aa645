-- bench/setup_scale.sql: a database for the scaling benchmarks of bench/run.sh (run
-- once, in a fresh database):  psql -v rows=N -v history=H -f bench/setup_scale.sql
--
-- item_apply is tracked as in bench/setup.sql (systems crm and billing, default strategy
-- 'latest') and holds N rows built as bench/setup.sql builds its 10,000; crm's base
-- holds every row as it is and every row has its local metadata, so that the
-- benchmark's apply() from crm is a one-sided change of one column, no conflict, that
-- updates the row's shadow rows, as in the 10,000-row database.  item_apply_plain is an
-- untracked copy of the same rows, for the plain upsert at N rows.
--
-- The shadow is filled by apply_batch() itself, 20,000 rows a call, one transaction
-- each: it then holds exactly what apply() leaves (nothing is copied into it by hand).
-- The history and the outbox of the fill are emptied by bench/between_runs.sql before
-- the first run, as any other.
--
-- With H > 0 the database is the history benchmark's: the events of that fill (written
-- by apply_batch()) are copied, shifted back in time a minute a copy, until the history
-- holds H events, as if crm had kept sending every row.  Only the history differs from a
-- database of N rows set up without one: the rows and the shadow are the same.
-- bench/run.sh runs bench/between_runs.sql with keep_history=1 there, so that the runs
-- start from H events (and what earlier runs added).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION sync_resolve;
SELECT sync_resolve.add_system('crm', 50);
SELECT sync_resolve.add_system('billing', 60);

\set items item_apply
\ir items.sql
CREATE TABLE item_apply_plain (LIKE item_apply INCLUDING ALL);
INSERT INTO item_apply_plain SELECT * FROM item_apply;
SELECT sync_resolve.track('item_apply', ARRAY['crm', 'billing'], 'latest');

-- crm sends every row, in two rounds, as a table that has been in sync for a while has
-- it: first as it is (its base holds the row, nothing changes), then with qty changed
-- (the row takes it, and its local metadata says crm wrote qty: every row has the local
-- metadata a benchmarked apply() updates, as at 10,000 rows once the first run has
-- touched them all, instead of writing it for the first time).  The plain copy takes
-- the same change, by one UPDATE.
-- (the shadow is analyzed after every call: sync_resolve keeps its plans for the session,
-- and one made while the shadow was empty would scan all of it on every later call)
CREATE PROCEDURE pg_temp.crm_sends(lo int, hi int, at timestamptz, qty_change int, expect text)
LANGUAGE plpgsql AS $$
DECLARE
	chunk CONSTANT int := 20000;
	shadow CONSTANT text := (SELECT t.shadow FROM sync_resolve.tracked t WHERE t.relid = 'item_apply'::regclass);
	n bigint;
BEGIN
	FOR s IN lo..hi BY chunk LOOP
		SELECT count(*) INTO n
		FROM sync_resolve.apply_batch('item_apply', 'crm',
			(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'changed_at', at, 'data',
											 CASE WHEN qty_change = 0 THEN to_jsonb(t)
												  ELSE jsonb_build_object('id', t.id, 'qty', t.qty + qty_change) END))
			 FROM item_apply t WHERE t.id BETWEEN s AND least(s + chunk - 1, hi))) r
		WHERE r.outcome = expect;
		IF n <> least(s + chunk - 1, hi) - s + 1 THEN
			RAISE EXCEPTION 'apply_batch: % of rows % to % %', n, s, least(s + chunk - 1, hi), expect;
		END IF;
		COMMIT;
		EXECUTE 'ANALYZE ' || shadow;
	END LOOP;
END;
$$;
CALL pg_temp.crm_sends(1, :rows, '2000-01-01', 0, 'unchanged');
CALL pg_temp.crm_sends(1, :rows, '2000-01-02', 1, 'updated');
UPDATE item_apply_plain SET qty = qty + 1;

-- the history benchmark: the events of that fill, copied back in time
SELECT :history > 0 AS fill_history \gset
\if :fill_history
INSERT INTO sync_resolve.event (at, relid, key, kind, column_name, source, old_value, incoming_value,
								base_value, new_value, version, source_changed_at, received_at, rule,
								decision, event_id, review_id, actor)
SELECT e.at - g * interval '1 minute', e.relid, e.key, e.kind, e.column_name, e.source, e.old_value,
	   e.incoming_value, e.base_value, e.new_value, e.version, e.source_changed_at, e.received_at, e.rule,
	   e.decision, e.event_id, e.review_id, e.actor
FROM generate_series(1, (:history - 1) / (SELECT count(*) FROM sync_resolve.event)) g,
	 sync_resolve.event e
LIMIT greatest(:history - (SELECT count(*) FROM sync_resolve.event), 0);
\endif

VACUUM (ANALYZE);
CHECKPOINT;

-- what was built: the rows and their plain copy alike, one crm base and one local
-- metadata row per row, the history; and the benchmarked call takes the path it takes at
-- 10,000 rows (in a transaction rolled back)
BEGIN;
DO $$
DECLARE
	r sync_resolve.apply_result;
	n_rows bigint := (SELECT count(*) FROM item_apply);
	-- a row on one side only differs too
	n_differ bigint := (SELECT count(*) FROM item_apply a FULL JOIN item_apply_plain p USING (id)
						WHERE (a.*) IS DISTINCT FROM (p.*));
	n_bases bigint;
	n_locals bigint;
BEGIN
	EXECUTE format('SELECT count(*) FILTER (WHERE system = %L), count(*) FILTER (WHERE system = %L) FROM %s',
				   'crm', 'local', (SELECT shadow FROM sync_resolve.tracked WHERE relid = 'item_apply'::regclass))
	INTO n_bases, n_locals;
	IF n_differ <> 0 OR n_bases <> n_rows OR n_locals <> n_rows THEN
		RAISE EXCEPTION 'scale setup: % rows, % differ from the plain copy, % crm bases, % local metadata rows',
			n_rows, n_differ, n_bases, n_locals;
	END IF;
	r := sync_resolve.apply('item_apply', 'crm', jsonb_build_object('id', n_rows, 'qty', 424242), now());
	IF r.outcome <> 'updated' OR r.applied <> '{qty}' OR r.kept <> '{}' THEN
		RAISE EXCEPTION 'scale setup: apply without conflict: unexpected result %', r;
	END IF;
END;
$$;
ROLLBACK;
SELECT count(*) AS rows, (SELECT count(*) FROM sync_resolve.event) AS events FROM item_apply;
