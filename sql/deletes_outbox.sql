-- What waits in the outbox after a delete crosses a change, or a row comes
-- back after a delete, must agree with the row: no system is sent a delete
-- for a row that is here again, nor an upsert for a row it deleted itself.
-- Then TRUNCATE of a tracked table, which is recorded as a DELETE of every
-- row, and a row that row security hides from the caller of apply().
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

-- what waits for each system, in a form that reads well
CREATE FUNCTION dx_waiting(tbl regclass)
	RETURNS TABLE (key jsonb, target text, op text, payload jsonb)
	LANGUAGE sql AS $$
	SELECT o.key, o.target, o.op::text, o.payload FROM sync_resolve.outbox o
	WHERE o.relid = tbl AND o.status IN ('pending', 'failed') ORDER BY o.key::text, o.target
$$;

CREATE TABLE dx_note (id int PRIMARY KEY, body text, tag text);
SELECT sync_resolve.track('dx_note', ARRAY['crm', 'billing'], 'latest');
SELECT outcome FROM sync_resolve.apply('dx_note', 'crm', '{"id": 1, "body": "a", "tag": "x"}');
SELECT outcome FROM sync_resolve.apply('dx_note', 'billing', '{"id": 1, "body": "a", "tag": "x"}');

-- 1. Deleted here, then inserted again with the very values both systems
-- hold: the deletes queued to them are replaced by the whole row (before,
-- nothing differed from their bases, and the deletes were sent).
DELETE FROM dx_note WHERE id = 1;
SELECT * FROM dx_waiting('dx_note');
INSERT INTO dx_note VALUES (1, 'a', 'x');
SELECT * FROM dx_waiting('dx_note');
DELETE FROM sync_resolve.outbox;

-- 2. crm changes a row deleted here: a person decides.  billing then sends
-- a change too; the item is now billing's, and its reason says so.
DELETE FROM dx_note WHERE id = 1;
SELECT outcome FROM sync_resolve.apply('dx_note', 'crm', '{"id": 1, "body": "from crm"}');
SELECT outcome FROM sync_resolve.apply('dx_note', 'billing', '{"id": 1, "body": "from billing"}');
SELECT id AS item, source, reason ~ '^billing changed a row that local deleted' AS reason_is_billings
FROM sync_resolve.review WHERE status = 'open' \gset
SELECT :item > 0, :'source', :'reason_is_billings';
-- take_incoming brings the row back as billing sent it: billing holds it,
-- so the delete waiting for it is withdrawn; crm hears the row instead of
-- its delete
SELECT status FROM sync_resolve.resolve(:item, 'take_incoming');
SELECT * FROM dx_note;
SELECT * FROM dx_waiting('dx_note');
SELECT kind, detail FROM sync_resolve.explain('dx_note', '{"id": 1}') WHERE kind = 'outbound_withdrawn';
DELETE FROM sync_resolve.outbox;

-- 3. The same with set_value equal to what crm sent: crm's delete becomes
-- the whole row, though no value differs from crm's base
DELETE FROM dx_note WHERE id = 1;
SELECT outcome FROM sync_resolve.apply('dx_note', 'crm', '{"id": 1, "body": "again", "tag": "y"}');
SELECT status FROM sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE status = 'open'),
										'set_value', '{"body": "again", "tag": "y"}');
SELECT * FROM dx_waiting('dx_note');
DELETE FROM sync_resolve.outbox;

-- 4. keep_local on the same: the row stays deleted, crm hears the delete
DELETE FROM dx_note WHERE id = 1;
SELECT outcome FROM sync_resolve.apply('dx_note', 'crm', '{"id": 1, "body": "once more"}');
SELECT status FROM sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE status = 'open'), 'keep_local');
SELECT count(*) FROM dx_note;
SELECT * FROM dx_waiting('dx_note');
DELETE FROM sync_resolve.outbox;

-- 5. Deleted here and by crm at once: the delete waiting for crm is
-- withdrawn (crm deleted it itself); billing's stays
INSERT INTO dx_note VALUES (2, 'two', 't');
SELECT outcome FROM sync_resolve.apply('dx_note', 'crm', '{"id": 2, "body": "two", "tag": "t"}');
DELETE FROM sync_resolve.outbox;
DELETE FROM dx_note WHERE id = 2;
SELECT * FROM dx_waiting('dx_note');
SELECT outcome FROM sync_resolve.apply_delete('dx_note', 'crm', '{"id": 2}');
SELECT * FROM dx_waiting('dx_note');
DELETE FROM sync_resolve.outbox;

-- 6. A change waits for billing when billing deletes the row, which
-- on_delete_conflict = 'delete' lets go: nothing is sent to billing any
-- more (before, the upsert was, and billing would have re-created the row)
CREATE TABLE dx_doc (id int PRIMARY KEY, body text, tag text);
SELECT sync_resolve.track('dx_doc', ARRAY['crm', 'billing'], 'latest', on_delete_conflict => 'delete');
SELECT outcome FROM sync_resolve.apply('dx_doc', 'billing', '{"id": 1, "body": "b", "tag": "x"}');
UPDATE dx_doc SET tag = 'changed here' WHERE id = 1;
SELECT * FROM dx_waiting('dx_doc');
SELECT outcome FROM sync_resolve.apply_delete('dx_doc', 'billing', '{"id": 1}');
SELECT * FROM dx_waiting('dx_doc');
-- with 'review', the same once a person takes the delete
CREATE TABLE dx_doc2 (id int PRIMARY KEY, body text, tag text);
SELECT sync_resolve.track('dx_doc2', ARRAY['crm', 'billing'], 'latest');
SELECT outcome FROM sync_resolve.apply('dx_doc2', 'billing', '{"id": 1, "body": "b", "tag": "x"}');
UPDATE dx_doc2 SET tag = 'changed here' WHERE id = 1;
SELECT outcome FROM sync_resolve.apply_delete('dx_doc2', 'billing', '{"id": 1}');
SELECT * FROM dx_waiting('dx_doc2');
SELECT status FROM sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE status = 'open'), 'take_incoming');
SELECT count(*) FROM dx_doc2;
SELECT * FROM dx_waiting('dx_doc2');

-- 7. on_delete_conflict = 'keep': crm's change brings back a row deleted
-- here.  crm holds it (its delete goes); billing gets the whole row.
CREATE TABLE dx_card (id int PRIMARY KEY, body text, tag text);
SELECT sync_resolve.track('dx_card', ARRAY['crm', 'billing'], 'latest', on_delete_conflict => 'keep');
SELECT outcome FROM sync_resolve.apply('dx_card', 'crm', '{"id": 1, "body": "c", "tag": "x"}');
SELECT outcome FROM sync_resolve.apply('dx_card', 'billing', '{"id": 1, "body": "c", "tag": "x"}');
DELETE FROM dx_card WHERE id = 1;
SELECT outcome FROM sync_resolve.apply('dx_card', 'crm', '{"id": 1, "body": "c2"}');
SELECT * FROM dx_card;
SELECT * FROM dx_waiting('dx_card');

-- 8. A row-level review is open ("crm changed a row deleted here") when
-- the row is inserted here again: the question is answered, the item is
-- dismissed and its columns released, and crm's next change is decided by
-- the column's strategy (before, the item stayed open, a column item was
-- opened beside it, and keep_local then said "the row stays deleted"
-- while the row was there)
DELETE FROM sync_resolve.review;
DELETE FROM dx_note;
SELECT outcome FROM sync_resolve.apply('dx_note', 'crm', '{"id": 3, "body": "from crm"}');
DELETE FROM dx_note WHERE id = 3;
SELECT outcome FROM sync_resolve.apply('dx_note', 'crm', '{"id": 3, "body": "crm changed it"}');
SELECT status, kind FROM sync_resolve.review;
INSERT INTO dx_note VALUES (3, 'made here', 'h');
SELECT status, note FROM sync_resolve.review;
-- the row's history tells where the item went (before, it did not)
SELECT source, kind, detail FROM sync_resolve.explain('dx_note', '{"id": 3}')
WHERE kind = 'review_resolved';
SELECT held FROM sync_resolve.shadow('dx_note', '{"id": 3}') WHERE system = 'local';
SELECT outcome, applied, queued FROM sync_resolve.apply('dx_note', 'crm', '{"id": 3, "body": "crm again"}');
SELECT count(*) AS open_items FROM sync_resolve.review WHERE status = 'open';

-- 8b. The same when crm, which deleted the row, sends it again while
-- billing's change of it waits for a person: crm's row comes back whole,
-- the item is dismissed, billing gets the row instead of its delete
-- (before, the held columns were left out: a row of NULLs, the delete
-- still queued for billing)
DELETE FROM sync_resolve.outbox;
DELETE FROM sync_resolve.review;
SELECT outcome FROM sync_resolve.apply('dx_note', 'billing', '{"id": 4, "body": "b", "tag": "x"}');
SELECT outcome FROM sync_resolve.apply('dx_note', 'crm', '{"id": 4, "body": "b", "tag": "x"}');
SELECT outcome FROM sync_resolve.apply_delete('dx_note', 'crm', '{"id": 4}');
SELECT outcome FROM sync_resolve.apply('dx_note', 'billing', '{"id": 4, "body": "billing"}');
SELECT outcome, applied, queued FROM sync_resolve.apply('dx_note', 'crm', '{"id": 4, "body": "crm", "tag": "z"}');
SELECT * FROM dx_note WHERE id = 4;
SELECT status, note FROM sync_resolve.review;
SELECT source, kind, detail FROM sync_resolve.explain('dx_note', '{"id": 4}')
WHERE kind = 'review_resolved';
SELECT * FROM dx_waiting('dx_note');

-- 9. TRUNCATE is recorded as a DELETE of every row: tombstones, the
-- deletes queued (replacing what waited), the rows' open reviews dismissed
DELETE FROM sync_resolve.outbox;
DELETE FROM dx_note;
SELECT outcome FROM sync_resolve.apply('dx_note', 'crm', '{"id": 10, "body": "ten"}');
INSERT INTO dx_note VALUES (11, 'eleven');
UPDATE dx_note SET body = 'ten, changed' WHERE id = 10;
SELECT outcome FROM sync_resolve.apply_delete('dx_note', 'crm', '{"id": 10}');
SELECT count(*) AS open_items FROM sync_resolve.review WHERE status = 'open';
SELECT * FROM dx_waiting('dx_note');
TRUNCATE dx_note;
SELECT * FROM dx_waiting('dx_note');
SELECT k, s.system, s.deleted_by FROM generate_series(10, 11) k,
	sync_resolve.shadow('dx_note', jsonb_build_object('id', k)) s WHERE s.system = 'local' ORDER BY k;
SELECT count(*) AS open_items FROM sync_resolve.review WHERE status = 'open';
-- under sync_resolve.source it is refused, and nothing is removed
INSERT INTO dx_note VALUES (12, 'twelve');
BEGIN;
SET LOCAL sync_resolve.source = 'crm';
TRUNCATE dx_note;
ROLLBACK;
SELECT count(*) FROM dx_note;
-- a partitioned table: every partition's rows, in the table's own layout
CREATE TABLE dx_part (id int PRIMARY KEY, body text) PARTITION BY RANGE (id);
CREATE TABLE dx_part_low PARTITION OF dx_part FOR VALUES FROM (0) TO (10);
CREATE TABLE dx_part_high (body text, id int NOT NULL);
ALTER TABLE dx_part ATTACH PARTITION dx_part_high FOR VALUES FROM (10) TO (20);
SELECT sync_resolve.track('dx_part', ARRAY['crm'], 'latest');
SELECT outcome FROM sync_resolve.apply('dx_part', 'crm', '{"id": 1, "body": "low"}');
SELECT outcome FROM sync_resolve.apply('dx_part', 'crm', '{"id": 11, "body": "high"}');
TRUNCATE dx_part;
SELECT * FROM dx_waiting('dx_part');
-- 9b. A TRUNCATE of one partition is seen too.  PostgreSQL fires a TRUNCATE
-- trigger only for the tables the statement takes and does not copy it to
-- partitions: each partition carries its own, also one created or attached
-- after track(), at any depth (before, a partition's TRUNCATE went unseen:
-- no tombstone, no delete queued, and crm kept the row)
DELETE FROM sync_resolve.outbox;
CREATE TABLE dx_part_mid (id int NOT NULL, body text) PARTITION BY RANGE (id);
CREATE TABLE dx_part_mid_a PARTITION OF dx_part_mid FOR VALUES FROM (20) TO (25);
ALTER TABLE dx_part ATTACH PARTITION dx_part_mid FOR VALUES FROM (20) TO (30);
CREATE TABLE dx_part_mid_b PARTITION OF dx_part_mid FOR VALUES FROM (25) TO (30);
SELECT c.relname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname = 'sync_resolve_truncate' AND c.relname LIKE 'dx_part%' ORDER BY c.relname;
SELECT k, (sync_resolve.apply('dx_part', 'crm', jsonb_build_object('id', k, 'body', 'row ' || k))).outcome
FROM unnest(ARRAY[2, 12, 22, 27]) k;
TRUNCATE dx_part_mid_b;
TRUNCATE dx_part_high;
SELECT * FROM dx_part ORDER BY id;
SELECT * FROM dx_waiting('dx_part');
SELECT k, s.deleted_by, s.version FROM unnest(ARRAY[2, 12, 22, 27]) k,
	sync_resolve.shadow('dx_part', jsonb_build_object('id', k)) s WHERE s.system = 'local' ORDER BY k;
-- a TRUNCATE of the table records each row once, whichever trigger reads
-- it: the table's reads the partitions without one of their own (here one
-- whose trigger was dropped by hand)
DROP TRIGGER sync_resolve_truncate ON dx_part_low;
TRUNCATE dx_part;
SELECT * FROM dx_waiting('dx_part');
SELECT k, s.deleted_by, s.version FROM unnest(ARRAY[2, 12, 22, 27]) k,
	sync_resolve.shadow('dx_part', jsonb_build_object('id', k)) s WHERE s.system = 'local' ORDER BY k;
-- the same for a TRUNCATE of a partition that has partitions of its own,
-- one of which lost its trigger, and for a partition whose trigger does not
-- fire in this session_replication_role: their rows are read by the
-- trigger above them that fires (each row once again: version local:3,
-- one tick for the INSERT, one for the TRUNCATE)
DELETE FROM sync_resolve.outbox;
INSERT INTO dx_part SELECT k, 'again ' || k FROM unnest(ARRAY[2, 12, 22, 27]) k;
DROP TRIGGER sync_resolve_truncate ON dx_part_mid_a;
TRUNCATE dx_part_mid;
SELECT * FROM dx_waiting('dx_part');
ALTER TABLE dx_part_high ENABLE REPLICA TRIGGER sync_resolve_truncate;
TRUNCATE dx_part;
SELECT * FROM dx_waiting('dx_part');
SELECT k, s.deleted_by, s.version FROM unnest(ARRAY[2, 12, 22, 27]) k,
	sync_resolve.shadow('dx_part', jsonb_build_object('id', k)) s WHERE s.system = 'local' ORDER BY k;
-- sync_resolve's triggers are known by the function they run, not by
-- their names: one renamed is not made a second time by the next ALTER
-- TABLE (before, it was, and a TRUNCATE of the partition then recorded
-- each of its rows twice: two ticks of the version)
ALTER TABLE dx_part_high ENABLE ALWAYS TRIGGER sync_resolve_truncate;
ALTER TRIGGER sync_resolve_truncate ON dx_part_high RENAME TO dx_high_truncate;
-- a partition detached keeps no trigger of sync_resolve's (its
-- sub-partitions neither), and the ALTER TABLE puts back the one dropped
-- by hand; untrack() takes them all along, the renamed one too
ALTER TABLE dx_part DETACH PARTITION dx_part_mid;
SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgfoid = 'sync_resolve._truncate()'::regprocedure AND c.relname LIKE 'dx_part%' ORDER BY c.relname;
INSERT INTO dx_part VALUES (12, 'once more');
TRUNCATE dx_part_high;
SELECT s.deleted_by, s.version FROM sync_resolve.shadow('dx_part', '{"id": 12}') s WHERE s.system = 'local';
SELECT sync_resolve.untrack('dx_part');
SELECT count(*) AS triggers_left FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE p.pronamespace = 'sync_resolve'::regnamespace AND c.relname LIKE 'dx_part%';

-- 9c. crm deletes a row while an upsert of it is out to crm (claimed, not
-- acknowledged yet): the two crossed.  The acknowledgement says crm took
-- the upsert, so crm may hold the row again: a delete is queued for it, and
-- the history says why (before, crm's base went back to holding the row,
-- and nothing ever told crm that the row is gone)
CREATE TABLE dx_flight (id int PRIMARY KEY, body text);
SELECT sync_resolve.track('dx_flight', ARRAY['crm', 'billing'], 'latest', on_delete_conflict => 'delete');
SELECT outcome FROM sync_resolve.apply('dx_flight', 'crm', '{"id": 1, "body": "from crm"}');
SELECT outcome FROM sync_resolve.apply('dx_flight', 'crm', '{"id": 2, "body": "from crm"}');
DELETE FROM sync_resolve.outbox;
UPDATE dx_flight SET body = 'changed here';
SELECT key, op, payload FROM sync_resolve.claim_outbound('crm') ORDER BY key::text;
SELECT id AS entry FROM sync_resolve.outbox
WHERE relid = 'dx_flight'::regclass AND key = '{"id": 1}' AND target = 'crm' \gset
SELECT outcome FROM sync_resolve.apply_delete('dx_flight', 'crm', '{"id": 1}');
SELECT status FROM sync_resolve.ack_outbound(:entry);
SELECT * FROM dx_waiting('dx_flight');
SELECT kind, detail FROM sync_resolve.explain('dx_flight', '{"id": 1}')
WHERE kind LIKE 'outbound%' ORDER BY kind, detail;
-- the delete acknowledged, crm's base is deleted again
SELECT id AS entry FROM sync_resolve.claim_outbound('crm') WHERE key = '{"id": 1}' \gset
SELECT status FROM sync_resolve.ack_outbound(:entry);
SELECT system, deleted_at IS NOT NULL AS deleted FROM sync_resolve.shadow('dx_flight', '{"id": 1}') ORDER BY system;
-- the delete already out to crm when the upsert before it is acknowledged:
-- nothing says in which order crm ran the two, so the delete is queued
-- again (a second delete does no harm; a missing one leaves the row at crm)
INSERT INTO dx_flight VALUES (3, 'made here');
SELECT id AS up FROM sync_resolve.claim_outbound('crm') WHERE key = '{"id": 3}' \gset
DELETE FROM dx_flight WHERE id = 3;
SELECT id AS del FROM sync_resolve.claim_outbound('crm') WHERE key = '{"id": 3}' \gset
SELECT status FROM sync_resolve.ack_outbound(:up);
SELECT status FROM sync_resolve.ack_outbound(:del);
SELECT op, status FROM sync_resolve.outbox
WHERE relid = 'dx_flight'::regclass AND key = '{"id": 3}' AND target = 'crm' ORDER BY id;
-- the other row, acknowledged while it is still here, queues nothing
SELECT id AS entry FROM sync_resolve.outbox
WHERE relid = 'dx_flight'::regclass AND key = '{"id": 2}' AND target = 'crm' \gset
SELECT status FROM sync_resolve.ack_outbound(:entry);
SELECT * FROM dx_waiting('dx_flight');

-- 10. Row security hides a row from the caller of apply(): it is not taken
-- for absent (before, apply_delete() said 'unchanged' and marked crm's
-- base deleted while the row stayed; apply() failed on the primary key)
CREATE TABLE dx_secret (id int PRIMARY KEY, body text);
SELECT sync_resolve.track('dx_secret', ARRAY['crm'], 'latest');
SELECT outcome FROM sync_resolve.apply('dx_secret', 'crm', '{"id": 1, "body": "open"}');
SELECT outcome FROM sync_resolve.apply('dx_secret', 'crm', '{"id": 2, "body": "hidden"}');
CREATE ROLE sr_rls_user;
GRANT USAGE ON SCHEMA sync_resolve TO sr_rls_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON dx_secret TO sr_rls_user;
ALTER TABLE dx_secret ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_one ON dx_secret USING (id = 1);
SET ROLE sr_rls_user;
SELECT outcome FROM sync_resolve.apply_delete('dx_secret', 'crm', '{"id": 2}');
SELECT outcome FROM sync_resolve.apply('dx_secret', 'crm', '{"id": 2, "body": "new"}');
SELECT outcome FROM sync_resolve.apply('dx_secret', 'crm', '{"id": 1, "body": "seen"}');
RESET ROLE;
SELECT * FROM dx_secret ORDER BY id;
SELECT system, deleted_at IS NULL AS not_deleted FROM sync_resolve.shadow('dx_secret', '{"id": 2}') ORDER BY system;
DROP TABLE dx_secret, dx_note, dx_doc, dx_doc2, dx_card, dx_part, dx_part_mid, dx_flight;
DROP FUNCTION dx_waiting;
DROP OWNED BY sr_rls_user;
DROP ROLE sr_rls_user;
