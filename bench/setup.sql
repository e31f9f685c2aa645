-- bench/setup.sql: the tables bench/run.sh measures (run once, in a fresh database).
--
-- Every benchmark has a tracked table (systems crm and billing, default strategy
-- 'latest') and an untracked copy *_plain holding the same 10,000 rows:
--
--   item_local      local UPDATEs through the trigger (metadata, outbox for crm and billing)
--   item_apply      apply() from crm, no conflict: crm's base holds every row as it is
--   item_solo       the same, tracked for crm alone: nothing to queue for another system
--   item_conflict   apply() from crm where every column conflicts: crm's base is an
--                   image of 2000-01-01, every column was then changed locally (now)
--   item_src        UPDATEs made with SET sync_resolve.source = 'crm' (the before trigger)
--   item_batch      apply_batch() of 1,000 rows from crm, no conflict
--
-- and item_ref, the same 10,000 rows for the PL/pgSQL reference (bench/reference.sql),
-- untracked, with the reference's own shadow, history and outbox; crm's base there holds
-- every row as it is, as for item_apply; and item_floor with copies of item_apply's
-- shadow, the history and the outbox, for the floor (bench/floor.sql).
SET client_min_messages = warning;
CREATE EXTENSION sync_resolve;
SELECT sync_resolve.add_system('crm', 50);
SELECT sync_resolve.add_system('billing', 60);

\set items item_template
\set rows 10000
\ir items.sql

-- the storage options (the fillfactor) of original, given to copy: CREATE TABLE ... LIKE
-- does not copy them.  For the copies of sync_resolve's tables the reference and the
-- floor write to (bench/reference.sql, bench/floor.sql), before they are filled.
CREATE FUNCTION pg_temp.copy_storage(copy regclass, original regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	options text[] := (SELECT c.reloptions FROM pg_class c WHERE c.oid = original);
BEGIN
	IF options IS NOT NULL THEN
		EXECUTE format('ALTER TABLE %s SET (%s)', copy, array_to_string(options, ', '));
	END IF;
END;
$$;

CREATE FUNCTION pg_temp.make_pair(name text, crm_base_at timestamptz,
								   systems text[] DEFAULT ARRAY['crm', 'billing']) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TABLE %I (LIKE item_template INCLUDING ALL)', name);
	EXECUTE format('INSERT INTO %I SELECT * FROM item_template', name);
	EXECUTE format('CREATE TABLE %I (LIKE item_template INCLUDING ALL)', name || '_plain');
	EXECUTE format('INSERT INTO %I SELECT * FROM item_template', name || '_plain');
	PERFORM sync_resolve.track(name::regclass, systems, 'latest');
	IF crm_base_at IS NOT NULL THEN
		-- crm sends every row as it is: its base holds the row, nothing changes
		PERFORM count(*) FROM sync_resolve.apply_batch(name::regclass, 'crm',
			(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'data', to_jsonb(t), 'changed_at', crm_base_at))
			 FROM item_template t));
	END IF;
END;
$$;

SELECT pg_temp.make_pair('item_local', NULL);
SELECT pg_temp.make_pair('item_apply', '2000-01-01');
SELECT pg_temp.make_pair('item_solo', '2000-01-01', ARRAY['crm']);
SELECT pg_temp.make_pair('item_conflict', '2000-01-01');
SELECT pg_temp.make_pair('item_src', '2000-01-01');
SELECT pg_temp.make_pair('item_batch', '2000-01-01');

-- every column of item_conflict changed locally since crm's base; crm's images
-- (changed_at 2000-01-01) then conflict in every column, and 'latest' keeps the local value
UPDATE item_conflict SET name = name || ' L', qty = qty + 1000, price = price + 1,
	note = note || ' L', tags = tags || 'L'::text;
UPDATE item_conflict_plain SET name = name || ' L', qty = qty + 1000, price = price + 1,
	note = note || ' L', tags = tags || 'L'::text;

-- every row of item_local was changed locally once, so that its shadow holds the local
-- metadata of every row (the steady state) before the first run: the benchmark does not
-- measure a shadow growing from empty
UPDATE item_local SET qty = qty + 1;
UPDATE item_local_plain SET qty = qty + 1;

-- the PL/pgSQL reference: crm sends every row as it is, through the reference itself
\ir reference.sql
INSERT INTO item_ref SELECT * FROM item_template;
SELECT count(*) FROM item_template t, LATERAL ref_apply('crm', to_jsonb(t), '2000-01-01') r;

-- the floor: apply()'s writes for the "apply" image made by hand (bench/floor.sql), on
-- copies of item_apply, its shadow, the history and the outbox
\ir floor.sql

DROP TABLE item_template;
