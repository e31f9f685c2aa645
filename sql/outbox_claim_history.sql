-- Sent entries stay in the outbox, and the oldest ids are theirs.  A claim
-- reads what may be taken -- the target's entries not sent or dead yet, in
-- the order of ids, through outbox_claim_idx -- not the history before
-- them: taking one entry reads a handful of index entries however many
-- were sent.  It takes the oldest due entries first, steps over those in
-- flight, and an entry whose lease ran out after its last allowed attempt
-- is retired ('dead', "lease expired") on the way, without costing the
-- caller one of the entries it asked for.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE parcel (id int PRIMARY KEY, weight int);
INSERT INTO parcel SELECT g, 0 FROM generate_series(1, 200) g;
SELECT sync_resolve.track('parcel', ARRAY['crm', 'billing'], 'latest');

-- This session's first claim, while the outbox is empty and analyzed so:
-- its plan is made now and kept.  It must still take no more than it is
-- asked for once the outbox fills (a plan made now joins the whole outbox
-- to the entries chosen, and must not choose them again for each).
ANALYZE sync_resolve.outbox;
SELECT count(*) AS taken FROM sync_resolve.claim_outbound('crm', 1);
UPDATE parcel SET weight = weight + 1;
SELECT count(*) AS taken FROM sync_resolve.claim_outbound('crm', 1);
SELECT count(*) AS taken FROM sync_resolve.claim_outbound('crm', 3);
SELECT status, count(*) FROM sync_resolve.outbox WHERE target = 'crm' GROUP BY 1 ORDER BY 1;
SELECT count(sync_resolve.ack_outbound(id)) AS acked FROM sync_resolve.outbox WHERE status = 'in_flight';

-- four rounds of local changes to every row, each round's entries claimed
-- and acknowledged by crm: 800 sent entries for crm more, at the oldest ids
-- (billing's entries wait, merging each change)
DO $$
BEGIN
	FOR r IN 1..4 LOOP
		UPDATE parcel SET weight = weight + 1;
		PERFORM sync_resolve.ack_outbound(c.id) FROM sync_resolve.claim_outbound('crm', 1000) c;
	END LOOP;
END
$$;
-- then five rows change once more: five entries wait for crm.  The outbox
-- is vacuumed, as autovacuum keeps it: the row versions each sent entry left
-- behind on its way (pending, in flight) are gone, and their index entries
VACUUM ANALYZE sync_resolve.outbox;
UPDATE parcel SET weight = weight + 1 WHERE id <= 5;
SELECT target, status, count(*) FROM sync_resolve.outbox GROUP BY 1, 2 ORDER BY 1, 2;

-- one entry taken: the oldest waiting, found through outbox_claim_idx, with
-- no scan of the table and a few entries read from the primary key (read in
-- the order of ids, it would pass the 804 sent ones; the claimed entry is
-- read by its id).  How many entries the claim index hands back is not
-- counted: dead versions keep theirs until a vacuum can remove them.
SELECT min(id) AS oldest FROM sync_resolve.outbox WHERE target = 'crm' AND status = 'pending' \gset
BEGIN;
SELECT pg_stat_get_xact_tuples_returned('sync_resolve.outbox_pkey'::regclass) AS pkey0,
	   pg_stat_get_xact_tuples_returned('sync_resolve.outbox_claim_idx'::regclass) AS claim0,
	   pg_stat_get_xact_numscans('sync_resolve.outbox'::regclass) AS scans0 \gset
SELECT key, status, attempts, id = :oldest AS oldest FROM sync_resolve.claim_outbound('crm', 1);
SELECT pg_stat_get_xact_tuples_returned('sync_resolve.outbox_pkey'::regclass) - :pkey0 <= 5 AS few_from_pkey,
	   pg_stat_get_xact_tuples_returned('sync_resolve.outbox_claim_idx'::regclass) - :claim0 >= 1 AS through_claim_idx,
	   pg_stat_get_xact_numscans('sync_resolve.outbox'::regclass) = :scans0 AS no_scan_of_the_table;
COMMIT;

-- the next two: in the order of ids, past the one in flight
SELECT key, status, attempts FROM sync_resolve.claim_outbound('crm', 2) ORDER BY id;

-- the one in flight first had only its attempt, and its lease runs out:
-- with one attempt allowed, the next claim retires it, and still takes the
-- two entries it asks for
SET sync_resolve.max_attempts = 1;
UPDATE sync_resolve.outbox SET lease_until = now() - interval '1 second'
WHERE target = 'crm' AND status = 'in_flight' AND key = '{"id": 1}';
SELECT key, status, attempts FROM sync_resolve.claim_outbound('crm', 2) ORDER BY id;
SELECT key, status, attempts, last_error FROM sync_resolve.outbox
WHERE target = 'crm' AND status <> 'sent' ORDER BY id;
RESET sync_resolve.max_attempts;

-- nothing left to take, and the history stays as it was
SELECT count(*) AS taken FROM sync_resolve.claim_outbound('crm', 10);
SELECT count(*) FILTER (WHERE status = 'sent') AS sent FROM sync_resolve.outbox WHERE target = 'crm';

-- A long history and a backlog: 30,000 more entries sent to crm long ago,
-- then 100,000 waiting for it (crm was away), and the outbox analyzed with
-- them, which plans the claim again.  The plan, made for any max (it takes
-- a tenth of the backlog), still reads the entry it takes by its id:
-- merged with the primary key read in the order of ids, it would pass
-- every entry before it, the 30,804 sent ones first.
INSERT INTO sync_resolve.outbox (relid, key, target, op, payload, status, attempts, sent_at, cause)
SELECT 'parcel'::regclass, jsonb_build_object('id', 1000 + g), 'crm', 'upsert', '{"weight": 0}',
	   CASE WHEN g <= 30000 THEN 'sent' ELSE 'pending' END, (g <= 30000)::int,
	   CASE WHEN g <= 30000 THEN now() - interval '1 day' END, 'local'
FROM generate_series(1, 130000) g;
VACUUM ANALYZE sync_resolve.outbox;
SELECT min(id) AS oldest FROM sync_resolve.outbox WHERE target = 'crm' AND status = 'pending' \gset
BEGIN;
SELECT pg_stat_get_xact_tuples_returned('sync_resolve.outbox_pkey'::regclass) AS pkey0,
	   pg_stat_get_xact_numscans('sync_resolve.outbox'::regclass) AS scans0 \gset
SELECT key, status, id = :oldest AS oldest FROM sync_resolve.claim_outbound('crm', 1);
SELECT pg_stat_get_xact_tuples_returned('sync_resolve.outbox_pkey'::regclass) - :pkey0 AS read_from_pkey,
	   pg_stat_get_xact_numscans('sync_resolve.outbox'::regclass) = :scans0 AS no_scan_of_the_table;
COMMIT;

DROP TABLE parcel;
