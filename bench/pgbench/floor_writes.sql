-- the writes apply() makes for the image of apply_tracked.sql, by hand in one SQL
-- statement with no logic (bench/floor.sql): the row, crm's base, the local metadata,
-- the change queued for billing and the two history rows
-- (rows: the table's size, given by bench/run.sh with pgbench -D rows=N)
\set id random(1, :rows)
\set qty random(1, 1000000)
WITH old AS (
	SELECT i.qty FROM item_floor i WHERE i.id = :id::int FOR NO KEY UPDATE
), row_write AS (
	UPDATE item_floor i SET qty = :qty::int WHERE i.id = :id::int
), base AS (
	UPDATE floor_shadow s SET c3 = :qty::int, changed_at = now(), received_at = clock_timestamp()
	WHERE s.c1 = :id::int AND s.system = 'crm'
), metadata AS (
	INSERT INTO floor_shadow AS s (c1, system, received_at, col_changed_at, col_writer)
	VALUES (:id::int, 'local', clock_timestamp(),
			ARRAY[NULL, NULL, now(), NULL, NULL, NULL]::timestamptz[], ARRAY[NULL, NULL, 'crm', NULL, NULL, NULL])
	ON CONFLICT (c1, system) DO UPDATE
	SET received_at = excluded.received_at, col_changed_at[3] = now(), col_writer[3] = 'crm'
), queued AS (
	INSERT INTO floor_outbox AS o (relid, key, target, op, payload, cause)
	VALUES ('item_floor'::regclass, jsonb_build_object('id', :id::int), 'billing', 'upsert',
			jsonb_build_object('qty', :qty::int), 'crm')
	ON CONFLICT (relid, jsonb_hash_extended(key, 0), key, target) WHERE status IN ('pending', 'failed') DO UPDATE
	SET payload = coalesce(o.payload, '{}') || excluded.payload, cause = excluded.cause, updated_at = now()
	RETURNING o.id
)
INSERT INTO floor_event (relid, key, kind, source, old_value, new_value, source_changed_at, received_at, rule, actor)
SELECT 'item_floor'::regclass, jsonb_build_object('id', :id::int), e.kind, 'crm', e.old_value,
	   jsonb_build_object('qty', :qty::int), now(), clock_timestamp(), e.rule, current_user
FROM old, queued,
	 LATERAL (VALUES ('applied', jsonb_build_object('qty', old.qty), 'changed by crm'),
					 ('outbound_queued', NULL, 'queued for billing (outbox #' || queued.id || ')'))
	 AS e(kind, old_value, rule);
