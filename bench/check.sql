-- bench/check.sql: before measuring, make sure each tracked benchmark takes the path it
-- claims to (no conflict, five conflicts, a source write taken, a batch applied).
-- Everything happens in a transaction that is rolled back: the tables stay as set up.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;
DO $$
DECLARE
	r sync_resolve.apply_result;
	n bigint;
BEGIN
	r := sync_resolve.apply('item_apply', 'crm', '{"id": 1, "qty": 424242}', now());
	IF r.outcome <> 'updated' OR r.applied <> '{qty}' OR r.kept <> '{}' THEN
		RAISE EXCEPTION 'apply without conflict: unexpected result %', r;
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
ROLLBACK;
