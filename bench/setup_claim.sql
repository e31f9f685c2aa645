-- bench/setup_claim.sql: the database of the claim benchmark of bench/run.sh (run once,
-- in a fresh database):  psql -v rows=N -f bench/setup_claim.sql
--
-- item_claim holds N rows, tracked for crm alone; crm's base holds every row as it is
-- (crm sent each, as apply_batch() of the fill of bench/setup_scale.sql does), so that
-- acknowledging an entry advances a base that is there.  bench/claim_pool.sql changes
-- every row locally before every run: one entry per row waits for crm, the pool the
-- run claims from (N must exceed what a run takes).  plain_queue is a copy of
-- sync_resolve.outbox (the same columns, defaults, indexes and fillfactor) holding the
-- same entries, for the same claims made by hand.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION sync_resolve;
SELECT sync_resolve.add_system('crm', 50);

\set items item_claim
\ir items.sql
SELECT sync_resolve.track('item_claim', ARRAY['crm'], 'latest');
CREATE PROCEDURE pg_temp.crm_sends(lo int, hi int)
LANGUAGE plpgsql AS $$
DECLARE
	chunk CONSTANT int := 20000;
	shadow CONSTANT text := (SELECT t.shadow FROM sync_resolve.tracked t WHERE t.relid = 'item_claim'::regclass);
BEGIN
	FOR s IN lo..hi BY chunk LOOP
		PERFORM count(*) FROM sync_resolve.apply_batch('item_claim', 'crm',
			(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'changed_at', '2000-01-01'::timestamptz, 'data', to_jsonb(t)))
			 FROM item_claim t WHERE t.id BETWEEN s AND least(s + chunk - 1, hi)));
		COMMIT;
		EXECUTE 'ANALYZE ' || shadow;
	END LOOP;
END;
$$;
CALL pg_temp.crm_sends(1, :rows);

CREATE TABLE plain_queue (LIKE sync_resolve.outbox INCLUDING ALL);
DO $$
BEGIN
	EXECUTE format('ALTER TABLE plain_queue SET (%s)',
				   array_to_string((SELECT c.reloptions FROM pg_class c WHERE c.oid = 'sync_resolve.outbox'::regclass), ', '));
END
$$;

-- both sides take what they claim to: one entry, the oldest, in flight, then sent
\ir claim_pool.sql
SELECT id AS tracked_id FROM sync_resolve.claim_outbound('crm', max => 1, lease => '2 minutes') \gset
SELECT (sync_resolve.ack_outbound(:tracked_id)).status = 'sent' AS tracked_sent,
	   :tracked_id = (SELECT min(id) FROM sync_resolve.outbox) AS tracked_oldest;
\ir pgbench/claim_plain.sql
SELECT status = 'sent' AND id = (SELECT min(q.id) FROM plain_queue q) AS plain_sent_oldest
FROM plain_queue WHERE id = :id;
SELECT count(*) FILTER (WHERE status = 'pending') AS waiting, count(*) FILTER (WHERE status = 'sent') AS sent
FROM plain_queue;
