-- bench/check.sql: before measuring, make sure each tracked benchmark takes the path it
-- claims to (no conflict, five conflicts, a source write taken, a batch applied), and
-- that the PL/pgSQL reference (bench/reference.sql) writes what apply() writes: for the
-- benchmarked image the same result, row, base, local metadata, history and outbox
-- entry, and for a conflict the same decision; and that the floor's statement
-- (bench/floor.sql) writes what apply() writes for the benchmarked image.
-- Everything happens in a transaction that is rolled back: the tables stay as set up.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;
DO $$
DECLARE
	r sync_resolve.apply_result;
	n bigint;
	kinds text[];
BEGIN
	r := sync_resolve.apply('item_apply', 'crm', '{"id": 1, "qty": 424242}', now());
	IF r.outcome <> 'updated' OR r.applied <> '{qty}' OR r.kept <> '{}' THEN
		RAISE EXCEPTION 'apply without conflict: unexpected result %', r;
	END IF;

	-- tracked for crm alone: the row, the shadow, one 'applied' event, nothing queued
	r := sync_resolve.apply('item_solo', 'crm', '{"id": 1, "qty": 424242}', now());
	IF r.outcome <> 'updated' OR r.applied <> '{qty}' OR r.kept <> '{}' THEN
		RAISE EXCEPTION 'apply for crm alone: unexpected result %', r;
	END IF;
	kinds := (SELECT array_agg(kind ORDER BY id) FROM sync_resolve.event
			  WHERE relid = 'item_solo'::regclass AND key = '{"id": 1}' AND at >= now());
	SELECT count(*) INTO n FROM sync_resolve.outbox WHERE relid = 'item_solo'::regclass;
	IF kinds IS DISTINCT FROM '{applied}' OR n <> 0 THEN
		RAISE EXCEPTION 'apply for crm alone: events %, % outbox entries', kinds, n;
	END IF;

	r := sync_resolve.apply('item_conflict', 'crm',
		'{"id": 1, "name": "crm 7", "qty": 7, "price": 0.07, "note": "note 7", "tags": ["c7"]}', '2000-01-01');
	IF r.outcome <> 'unchanged' OR r.kept <> '{name,qty,price,note,tags}' THEN
		RAISE EXCEPTION 'apply with conflicts: unexpected result %', r;
	END IF;
	SELECT count(*) INTO n FROM sync_resolve.event
	WHERE relid = 'item_conflict'::regclass AND key = '{"id": 1}' AND kind = 'conflict';
	IF n <> 5 THEN
		RAISE EXCEPTION 'apply with conflicts: % conflict events, not 5', n;
	END IF;

	SET LOCAL sync_resolve.source = 'crm';
	UPDATE item_src SET qty = 424242 WHERE id = 1;
	SET LOCAL sync_resolve.source = '';
	IF (SELECT qty FROM item_src WHERE id = 1) <> 424242 OR EXISTS (
		SELECT FROM sync_resolve.event WHERE relid = 'item_src'::regclass AND kind = 'conflict') THEN
		RAISE EXCEPTION 'write from crm: not taken as a one-sided change';
	END IF;

	SELECT count(*) INTO n
	FROM sync_resolve.apply_batch('item_batch', 'crm',
		(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'data', jsonb_build_object('id', g, 'qty', 424242 + g),
											 'changed_at', now()))
		 FROM generate_series(1, 1000) g)) b
	WHERE b.outcome = 'updated' AND b.applied = '{qty}';
	IF n <> 1000 THEN
		RAISE EXCEPTION 'apply_batch: % of 1000 rows updated without conflict', n;
	END IF;
END;
$$;

DO $$
DECLARE
	r sync_resolve.apply_result;
	q sync_resolve.apply_result;
	got jsonb;
	want jsonb;
BEGIN
	-- the benchmarked image: one column changed by crm, no conflict
	r := sync_resolve.apply('item_apply', 'crm', '{"id": 2, "qty": 424242}', now());
	q := ref_apply('crm', '{"id": 2, "qty": 424242}', now());
	IF r IS DISTINCT FROM q OR r.outcome <> 'updated' THEN
		RAISE EXCEPTION 'reference: result % where apply() returned %', q, r;
	END IF;
	want := (SELECT to_jsonb(i) FROM item_apply i WHERE i.id = 2);
	got := (SELECT to_jsonb(i) FROM item_ref i WHERE i.id = 2);
	IF got IS DISTINCT FROM want OR want IS NULL THEN
		RAISE EXCEPTION 'reference: row % where apply() wrote %', got, want;
	END IF;
	want := (SELECT jsonb_agg(jsonb_build_array(s.system, s.base, s.changed_at, s.changes) ORDER BY s.system)
			 FROM sync_resolve.shadow('item_apply', '{"id": 2}') s);
	got := (SELECT jsonb_agg(jsonb_build_array(h.system, h.base, h.changed_at,
						(SELECT jsonb_object_agg(c, jsonb_build_object('at', h.col_changed_at -> c, 'by', h.col_writer -> c))
						 FROM jsonb_object_keys(h.col_writer) c)) ORDER BY h.system)
			FROM ref_shadow h WHERE h.id = 2);
	IF got IS DISTINCT FROM want OR want IS NULL THEN
		RAISE EXCEPTION 'reference: shadow % where apply() wrote %', got, want;
	END IF;
	want := (SELECT jsonb_agg(jsonb_build_array(e.kind, e.column_name, e.source, e.old_value, e.incoming_value,
												e.base_value, e.new_value, e.source_changed_at, e.decision,
												regexp_replace(e.rule, '#[0-9]+', '#N')) ORDER BY e.id)
			 FROM sync_resolve.event e
			 WHERE e.relid = 'item_apply'::regclass AND e.key = '{"id": 2}' AND e.at >= now());
	got := (SELECT jsonb_agg(jsonb_build_array(e.kind, e.column_name, e.source, e.old_value, e.incoming_value,
											   e.base_value, e.new_value, e.source_changed_at, e.decision,
											   regexp_replace(e.rule, '#[0-9]+', '#N')) ORDER BY e.id)
			FROM ref_event e WHERE e.key = '{"id": 2}' AND e.at >= now());
	IF got IS DISTINCT FROM want OR jsonb_array_length(want) <> 2 THEN
		RAISE EXCEPTION 'reference: history % where apply() wrote %', got, want;
	END IF;
	want := (SELECT jsonb_agg(jsonb_build_array(o.target, o.op, o.payload, o.status, o.cause) ORDER BY o.target)
			 FROM sync_resolve.outbox o WHERE o.relid = 'item_apply'::regclass AND o.key = '{"id": 2}');
	got := (SELECT jsonb_agg(jsonb_build_array(o.target, o.op, o.payload, o.status, o.cause) ORDER BY o.target)
			FROM ref_outbox o WHERE o.key = '{"id": 2}');
	IF got IS DISTINCT FROM want OR want IS NULL THEN
		RAISE EXCEPTION 'reference: outbox % where apply() queued %', got, want;
	END IF;

	-- a conflict: qty changed here since crm's base, crm's change is older ('latest': kept)
	UPDATE item_apply SET qty = 7 WHERE id = 3;
	UPDATE item_ref SET qty = 7 WHERE id = 3;
	r := sync_resolve.apply('item_apply', 'crm', '{"id": 3, "qty": 8}', '2000-01-02');
	q := ref_apply('crm', '{"id": 3, "qty": 8}', '2000-01-02');
	IF r IS DISTINCT FROM q OR r.kept <> '{qty}' THEN
		RAISE EXCEPTION 'reference: conflict result % where apply() returned %', q, r;
	END IF;
	want := (SELECT jsonb_agg(jsonb_build_array(e.kind, e.column_name, e.old_value, e.incoming_value,
												e.base_value, e.new_value, e.decision) ORDER BY e.id)
			 FROM sync_resolve.event e
			 WHERE e.relid = 'item_apply'::regclass AND e.key = '{"id": 3}' AND e.at >= now()
			   AND e.kind = 'conflict');
	got := (SELECT jsonb_agg(jsonb_build_array(e.kind, e.column_name, e.old_value, e.incoming_value,
											   e.base_value, e.new_value, e.decision) ORDER BY e.id)
			FROM ref_event e WHERE e.key = '{"id": 3}' AND e.at >= now() AND e.kind = 'conflict');
	IF got IS DISTINCT FROM want OR want IS NULL THEN
		RAISE EXCEPTION 'reference: conflict history % where apply() wrote %', got, want;
	END IF;
END;
$$;

-- the floor (bench/floor.sql): the statement of bench/pgbench/floor_writes.sql itself, for
-- row 4, writes what apply() writes for the same image
DO $$
DECLARE
	r sync_resolve.apply_result;
BEGIN
	r := sync_resolve.apply('item_apply', 'crm', '{"id": 4, "qty": 424242}', now());
	IF r.outcome <> 'updated' OR r.applied <> '{qty}' OR r.kept <> '{}' THEN
		RAISE EXCEPTION 'floor: apply() of the benchmarked image returned %', r;
	END IF;
END;
$$;
\set floor_statement `grep -v -e '^--' -e '^.set ' bench/pgbench/floor_writes.sql | sed -e 's/:id::int/4/g' -e 's/:qty::int/424242/g'`
:floor_statement
DO $$
DECLARE
	got jsonb;
	want jsonb;
	shadow CONSTANT text := (SELECT t.shadow FROM sync_resolve.tracked t WHERE t.relid = 'item_apply'::regclass);
BEGIN
	want := (SELECT to_jsonb(i) FROM item_apply i WHERE i.id = 4);
	got := (SELECT to_jsonb(i) FROM item_floor i WHERE i.id = 4);
	IF got IS DISTINCT FROM want OR want IS NULL THEN
		RAISE EXCEPTION 'floor: row % where apply() wrote %', got, want;
	END IF;
	-- every column of the shadow but received_at (the clock when each was written)
	EXECUTE format('SELECT jsonb_agg(to_jsonb(s) - ''received_at'' ORDER BY s.system) FROM %s s WHERE s.c1 = 4', shadow)
		INTO want;
	got := (SELECT jsonb_agg(to_jsonb(s) - 'received_at' ORDER BY s.system) FROM floor_shadow s WHERE s.c1 = 4);
	IF got IS DISTINCT FROM want OR jsonb_array_length(want) <> 2 THEN
		RAISE EXCEPTION 'floor: shadow % where apply() wrote %', got, want;
	END IF;
	want := (SELECT jsonb_agg(to_jsonb(e) - '{id,at,relid,received_at}'::text[]
							  || jsonb_build_object('rule', regexp_replace(e.rule, '#[0-9]+', '#N')) ORDER BY e.id)
			 FROM sync_resolve.event e
			 WHERE e.relid = 'item_apply'::regclass AND e.key = '{"id": 4}' AND e.at >= now());
	got := (SELECT jsonb_agg(to_jsonb(e) - '{id,at,relid,received_at}'::text[]
							 || jsonb_build_object('rule', regexp_replace(e.rule, '#[0-9]+', '#N')) ORDER BY e.id)
			FROM floor_event e WHERE e.key = '{"id": 4}');
	IF got IS DISTINCT FROM want OR jsonb_array_length(want) <> 2 THEN
		RAISE EXCEPTION 'floor: history % where apply() wrote %', got, want;
	END IF;
	want := (SELECT jsonb_agg(jsonb_build_array(o.target, o.op, o.payload, o.status, o.attempts, o.cause) ORDER BY o.target)
			 FROM sync_resolve.outbox o WHERE o.relid = 'item_apply'::regclass AND o.key = '{"id": 4}');
	got := (SELECT jsonb_agg(jsonb_build_array(o.target, o.op, o.payload, o.status, o.attempts, o.cause) ORDER BY o.target)
			FROM floor_outbox o WHERE o.key = '{"id": 4}');
	IF got IS DISTINCT FROM want OR want IS NULL THEN
		RAISE EXCEPTION 'floor: outbox % where apply() queued %', got, want;
	END IF;
END;
$$;
ROLLBACK;
