-- bench/reference.sql: what sync_resolve.apply() does for an incoming image, written by
-- hand in PL/pgSQL, for bench/run.sh's "reference" benchmark (DESIGN §15: "against the
-- same logic written in PL/pgSQL: several times faster").  Loaded by bench/setup.sql.
--
-- ref_apply(source, payload, changed_at) resolves crm's or billing's image of one row of
-- item_ref (the bench tables' columns, untracked) the way apply() resolves it for a table
-- tracked with systems crm and billing and default strategy 'latest' (DESIGN §5):
--
--   lock the row (FOR NO KEY UPDATE); read the source's base, the other systems' bases
--   and the row's per-column change metadata from its own shadow, ref_shadow; a stale
--   image (older than the source's last change) is logged and dropped; an absent row is
--   inserted; otherwise per column sent: Δremote = no base, or incoming IS DISTINCT FROM
--   base; Δlocal = local IS DISTINCT FROM base (no base: the local value differs and did
--   not come from this source); equal to the local value: convergent, nothing to write;
--   one-sided: taken; both: a conflict, 'latest' (change times compared, a tie within
--   sync_resolve.clock_skew broken by priority, then by system name).  Then it writes
--   the row (one UPDATE), the source's base and the local metadata (two upserts), the
--   outbox entries (the change to the other systems, the local value back to the source
--   where it kept it) and the history: one ref_event row per decision, with the same
--   kinds and values apply() writes to sync_resolve.event ('conflict' per column,
--   'applied', 'received', 'stale', 'inserted', 'outbound_queued').
--
-- It is written to be fast, not slow on purpose: static SQL for this one table (no
-- dynamic SQL, no catalog lookups), one read of the shadow, values compared as jsonb
-- once cast to the columns' types (jsonb_populate_record, as apply() casts them), the
-- outbox and history tables copied from sync_resolve's (LIKE ... INCLUDING ALL: same
-- columns, defaults and indexes, so that both pay the same for the same writes).  It leaves out what the bench does
-- not reach and apply() must still check on every call: delivery ids, versions, echoes,
-- column groups, owners and writers, value mapping, reviews, other strategies.
-- bench/check.sql makes sure that for the benchmarked image it writes what apply() writes.

CREATE TABLE item_ref (id int PRIMARY KEY, name text, qty int, price numeric, note text, tags text[]);

-- the shadow: per (row, external system) its base, the columns it is known to hold, as
-- one jsonb object; per (row, 'local') when and by whom each column was last written
CREATE TABLE ref_shadow (
	id int NOT NULL,
	system text NOT NULL,
	base jsonb,						-- external system: {column: value} it holds
	changed_at timestamptz,			-- external system: its last change time
	received_at timestamptz,
	col_changed_at jsonb,			-- local: {column: time}
	col_writer jsonb,				-- local: {column: system}
	PRIMARY KEY (id, system)
);
CREATE TABLE ref_event (LIKE sync_resolve.event INCLUDING ALL);
CREATE TABLE ref_outbox (LIKE sync_resolve.outbox INCLUDING ALL);
-- the storage options of the tables they stand for (the fillfactors that keep a shadow
-- update or an outbox merge on its page), which LIKE does not copy (bench/setup.sql)
SELECT pg_temp.copy_storage('ref_shadow',
							(SELECT t.shadow FROM sync_resolve.tracked t WHERE t.relid = 'item_apply'::regclass)::regclass),
	   pg_temp.copy_storage('ref_event', 'sync_resolve.event'),
	   pg_temp.copy_storage('ref_outbox', 'sync_resolve.outbox');
-- when item_ref was "tracked": the change time of a local value with no metadata
CREATE TABLE ref_tracked (tracked_at timestamptz NOT NULL);
INSERT INTO ref_tracked VALUES (now());

CREATE FUNCTION ref_apply(source text, payload jsonb, changed_at timestamptz DEFAULT NULL)
	RETURNS sync_resolve.apply_result
	LANGUAGE plpgsql
AS $$
DECLARE
	cols CONSTANT text[] := ARRAY['name', 'qty', 'price', 'note', 'tags'];
	systems CONSTANT text[] := ARRAY['crm', 'billing'];
	rel CONSTANT regclass := 'item_ref'::regclass;
	received timestamptz := clock_timestamp();
	tin timestamptz := coalesce(changed_at, received);
	k int := (payload ->> 'id')::int;
	rowkey jsonb;
	l item_ref;
	lj jsonb;					-- the local row
	ij jsonb;					-- the incoming image, typed, over the local row
	sent jsonb := '{}';			-- the columns it sent, typed
	s ref_shadow;
	base ref_shadow;			-- the source's
	meta ref_shadow;			-- local
	others jsonb := '{}';		-- {system: base} of the other systems
	c text;
	iv jsonb;
	lv jsonb;
	bv jsonb;
	known boolean;
	d_local boolean;
	take boolean;
	tl timestamptz;
	skew interval;
	rule text;
	p_in int;
	p_l int;
	writer text;
	old_j jsonb := '{}';		-- taken columns: local values
	new_j jsonb := '{}';		-- taken columns: new values
	col_at jsonb;
	col_by jsonb;
	meta_dirty boolean := false;
	res sync_resolve.apply_result;
	t text;
	out_j jsonb;
	ob_id bigint;
	r item_ref;
BEGIN
	IF k IS NULL THEN
		RAISE EXCEPTION 'payload for table item_ref from system "%" has no key column "id"', source
			USING ERRCODE = '22023';
	END IF;
	rowkey := jsonb_build_object('id', k);
	res := ROW(NULL, rowkey, '{}', '{}', '{}', '{}', '{}');

	SELECT * INTO l FROM item_ref i WHERE i.id = k FOR NO KEY UPDATE;
	FOR s IN SELECT * FROM ref_shadow h WHERE h.id = k LOOP
		IF s.system = source THEN
			base := s;
		ELSIF s.system = 'local' THEN
			meta := s;
		ELSE
			others := others || jsonb_build_object(s.system, s.base);
		END IF;
	END LOOP;
	col_at := coalesce(meta.col_changed_at, '{}');
	col_by := coalesce(meta.col_writer, '{}');

	-- stale: older than the source's last change already seen
	IF changed_at < base.changed_at THEN
		INSERT INTO ref_event (relid, key, kind, source, incoming_value, source_changed_at, received_at, rule, actor)
		VALUES (rel, rowkey, 'stale', source, payload, changed_at, received,
				format('%s changed it at %s, before %s, its last change already seen', source, changed_at, base.changed_at),
				current_user);
		res.outcome := 'stale';
		RETURN res;
	END IF;

	IF l.id IS NULL THEN
		-- a sync gap: the row as the source sent it
		r := jsonb_populate_record(NULL::item_ref, payload);
		INSERT INTO item_ref VALUES (r.*);
		ij := to_jsonb(r);
		FOREACH c IN ARRAY cols LOOP
			-- columns it left out have their defaults: the source's too
			col_at := col_at || jsonb_build_object(c, tin);
			col_by := col_by || jsonb_build_object(c, source);
			IF payload ? c THEN
				sent := sent || jsonb_build_object(c, ij -> c);
				new_j := new_j || jsonb_build_object(c, ij -> c);
				res.applied := res.applied || c;
			END IF;
		END LOOP;
		meta_dirty := true;
		INSERT INTO ref_event (relid, key, kind, source, new_value, source_changed_at, received_at, rule, actor)
		VALUES (rel, rowkey, 'inserted', source, new_j, changed_at, received, format('new row from %s', source),
				current_user);
		res.outcome := 'inserted';
	ELSE
		lj := to_jsonb(l);
		ij := to_jsonb(jsonb_populate_record(l, payload));
		FOREACH c IN ARRAY cols LOOP
			CONTINUE WHEN NOT payload ? c;
			iv := ij -> c;
			sent := sent || jsonb_build_object(c, iv);
			known := coalesce(base.base ? c, false);
			bv := base.base -> c;
			-- not changed by the source since the base: nothing to take
			CONTINUE WHEN known AND iv IS NOT DISTINCT FROM bv;
			lv := lj -> c;
			-- the row already holds it: convergent
			CONTINUE WHEN iv IS NOT DISTINCT FROM lv;
			IF known THEN
				d_local := lv IS DISTINCT FROM bv;
			ELSE
				d_local := (col_by ->> c) IS DISTINCT FROM source;
			END IF;
			IF NOT d_local THEN
				take := true;
			ELSE
				-- a conflict: 'latest'
				tl := coalesce((col_at ->> c)::timestamptz, (SELECT rt.tracked_at FROM ref_tracked rt));
				writer := coalesce(col_by ->> c, 'local');
				skew := current_setting('sync_resolve.clock_skew')::interval;
				IF tin > tl + skew OR tin < tl - skew THEN
					take := tin > tl;
					rule := format('latest change wins: %s changed %s at %s, %s at %s', source, c, tin, writer, tl);
				ELSE
					SELECT y.priority INTO p_in FROM sync_resolve.system y WHERE y.name = source;
					SELECT y.priority INTO p_l FROM sync_resolve.system y WHERE y.name = writer;
					take := CASE WHEN p_in <> p_l THEN p_in < p_l ELSE source <= writer END;
					rule := format('latest change wins, but %s changed %s at %s and %s at %s: a tie, broken by priority, then name',
								   source, c, tin, writer, tl);
				END IF;
				INSERT INTO ref_event (relid, key, kind, column_name, source, old_value, incoming_value, base_value,
									   new_value, source_changed_at, received_at, rule, decision, actor)
				VALUES (rel, rowkey, 'conflict', c, source, lv, iv, bv, CASE WHEN take THEN iv ELSE lv END,
						changed_at, received, rule, CASE WHEN take THEN 'took ' || source ELSE 'kept local' END,
						current_user);
			END IF;
			IF take THEN
				old_j := old_j || jsonb_build_object(c, lv);
				new_j := new_j || jsonb_build_object(c, iv);
				col_at := col_at || jsonb_build_object(c, tin);
				col_by := col_by || jsonb_build_object(c, source);
				res.applied := res.applied || c;
				meta_dirty := true;
			ELSE
				res.kept := res.kept || c;
			END IF;
		END LOOP;

		IF new_j <> '{}' THEN
			r := jsonb_populate_record(l, new_j);
			UPDATE item_ref i SET name = r.name, qty = r.qty, price = r.price, note = r.note, tags = r.tags
			WHERE i.id = k;
			INSERT INTO ref_event (relid, key, kind, source, old_value, new_value, source_changed_at, received_at,
								   rule, actor)
			VALUES (rel, rowkey, 'applied', source, old_j, new_j, changed_at, received,
					format('changed by %s', source), current_user);
			res.outcome := 'updated';
		ELSE
			IF res.kept = '{}' THEN
				INSERT INTO ref_event (relid, key, kind, source, source_changed_at, received_at, rule, actor)
				VALUES (rel, rowkey, 'received', source, changed_at, received,
						format('%s sent nothing new: local already agrees', source), current_user);
			END IF;
			res.outcome := 'unchanged';
		END IF;
	END IF;

	-- the outbox: the change to every other system whose base does not hold it
	IF new_j <> '{}' THEN
		FOREACH t IN ARRAY systems LOOP
			CONTINUE WHEN t = source;
			SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') INTO out_j
			FROM jsonb_each(new_j) e
			WHERE (others -> t -> e.key) IS DISTINCT FROM e.value;
			CONTINUE WHEN out_j = '{}';
			INSERT INTO ref_outbox AS o (relid, key, target, op, payload, cause)
			VALUES (rel, rowkey, t, 'upsert', out_j, source)
			ON CONFLICT (relid, jsonb_hash_extended(key, 0), key, target) WHERE status IN ('pending', 'failed')
			DO UPDATE SET payload = coalesce(o.payload, '{}') || excluded.payload, cause = excluded.cause,
				idempotency_key = CASE WHEN o.attempts > 0 THEN gen_random_uuid()::text ELSE o.idempotency_key END,
				updated_at = now()
			RETURNING o.id INTO ob_id;
			INSERT INTO ref_event (relid, key, kind, source, new_value, source_changed_at, received_at, rule, actor)
			VALUES (rel, rowkey, 'outbound_queued', source, out_j, changed_at, received,
					format('queued for %s (outbox #%s)', t, ob_id), current_user);
		END LOOP;
	END IF;
	IF l.id IS NOT NULL THEN
		-- what the source just sent replaces older local values waiting for it
		WITH f AS (
			UPDATE ref_outbox o SET payload = o.payload - array(SELECT jsonb_object_keys(sent)),
				idempotency_key = CASE WHEN o.attempts > 0 THEN gen_random_uuid()::text ELSE o.idempotency_key END,
				updated_at = now()
			WHERE o.relid = rel AND o.key = rowkey AND o.target = source
			  AND jsonb_hash_extended(o.key, 0) = jsonb_hash_extended(rowkey, 0)
			  AND o.status IN ('pending', 'failed') AND o.op = 'upsert'
			  AND o.payload ?| array(SELECT jsonb_object_keys(sent))
			RETURNING o.id, o.payload)
		DELETE FROM ref_outbox d USING f WHERE d.id = f.id AND f.payload = '{}';
		-- the source hears the local values it sent something else for
		IF res.kept <> '{}' THEN
			SELECT jsonb_object_agg(c2, lj -> c2) INTO out_j FROM unnest(res.kept) c2;
			INSERT INTO ref_outbox AS o (relid, key, target, op, payload, cause)
			VALUES (rel, rowkey, source, 'upsert', out_j, source)
			ON CONFLICT (relid, jsonb_hash_extended(key, 0), key, target) WHERE status IN ('pending', 'failed')
			DO UPDATE SET payload = coalesce(o.payload, '{}') || excluded.payload, cause = excluded.cause,
				idempotency_key = CASE WHEN o.attempts > 0 THEN gen_random_uuid()::text ELSE o.idempotency_key END,
				updated_at = now()
			RETURNING o.id INTO ob_id;
			INSERT INTO ref_event (relid, key, kind, source, new_value, source_changed_at, received_at, rule, actor)
			VALUES (rel, rowkey, 'outbound_queued', source, out_j, changed_at, received,
					format('queued for %s, which holds other values (outbox #%s)', source, ob_id), current_user);
		END IF;
	END IF;

	-- the shadow: the source's base is its image over the old base; the local metadata
	INSERT INTO ref_shadow AS h (id, system, base, changed_at, received_at)
	VALUES (k, source, coalesce(base.base, '{}') || sent, greatest(base.changed_at, changed_at), received)
	ON CONFLICT (id, system) DO UPDATE
		SET base = excluded.base, changed_at = excluded.changed_at, received_at = excluded.received_at;
	IF meta_dirty THEN
		INSERT INTO ref_shadow AS h (id, system, col_changed_at, col_writer, received_at)
		VALUES (k, 'local', col_at, col_by, received)
		ON CONFLICT (id, system) DO UPDATE
			SET col_changed_at = excluded.col_changed_at, col_writer = excluded.col_writer,
				received_at = excluded.received_at;
	END IF;
	RETURN res;
END
$$;
