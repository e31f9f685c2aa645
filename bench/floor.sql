-- bench/floor.sql: the floor under apply() for bench/run.sh's "floor" and "logic"
-- benchmarks.  Loaded by bench/setup.sql once item_apply is tracked and crm's base holds
-- every row.
--
-- For the "apply" benchmark's image (crm changes qty of one row, no conflict) apply()
-- writes six things: the row, crm's base and the row's local metadata in the shadow, two
-- history rows ('applied', 'outbound_queued') and the change queued for billing.  DESIGN
-- asks for all six (§4 the row and the shadow, §7 the outbox, §9 the history).
-- bench/pgbench/floor_writes.sql makes the same six writes by hand in one SQL statement,
-- with no logic at all: it knows the image changes qty, that crm's base exists, that
-- nothing conflicts and that billing is the one system to tell.  Its tables are copies of
-- what apply() writes to, with the same columns, defaults, indexes and fillfactors:
--
--   item_floor     the rows of item_apply, untracked
--   floor_shadow   a copy of item_apply's shadow (crm's base of every row)
--   floor_event    a copy of sync_resolve.event (its append-only trigger left out: it
--                  fires on UPDATE and DELETE only)
--   floor_outbox   a copy of sync_resolve.outbox
--
-- "floor" compares that statement with the plain upsert of "apply": what the contract's
-- writes cost PostgreSQL itself.  "logic" compares apply() with it: what sync_resolve's
-- own work (reading the shadow, deciding, building the values) adds to those writes.
-- bench/check.sql makes sure that for the benchmarked image both write the same.

CREATE TABLE item_floor (LIKE item_apply INCLUDING ALL);
INSERT INTO item_floor SELECT * FROM item_apply;

-- the shadow's copy takes the shadow's storage options (which LIKE does not copy,
-- bench/setup.sql) before it is filled, as the shadow had them when it was filled
DO $$
DECLARE
	shadow CONSTANT regclass := (SELECT t.shadow FROM sync_resolve.tracked t WHERE t.relid = 'item_apply'::regclass);
BEGIN
	EXECUTE format('CREATE TABLE floor_shadow (LIKE %s INCLUDING ALL)', shadow);
	PERFORM pg_temp.copy_storage('floor_shadow', shadow);
	EXECUTE format('INSERT INTO floor_shadow SELECT * FROM %s', shadow);
END;
$$;

CREATE TABLE floor_event (LIKE sync_resolve.event INCLUDING ALL);
CREATE TABLE floor_outbox (LIKE sync_resolve.outbox INCLUDING ALL);
SELECT pg_temp.copy_storage('floor_event', 'sync_resolve.event'),
	   pg_temp.copy_storage('floor_outbox', 'sync_resolve.outbox');
ANALYZE item_floor, floor_shadow, floor_event, floor_outbox;
