-- Deletes from a source: an unchanged row is deleted; a delete crossing a
-- local edit follows on_delete_conflict (delete, keep, review); an update
-- from a source crossing a local delete is a conflict too.  Then
-- apply_batch: a JSON array of upserts and deletes, raising on the first
-- bad element or setting bad elements aside in sync_resolve.rejected.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE ticket (id int PRIMARY KEY, title text, state text);
SELECT sync_resolve.track('ticket', ARRAY['crm', 'billing'], 'latest', on_delete_conflict => 'review');
SELECT outcome FROM sync_resolve.apply('ticket', 'crm', '{"id": 1, "title": "printer", "state": "open"}', '2030-01-01');
SELECT outcome FROM sync_resolve.apply('ticket', 'crm', '{"id": 2, "title": "network", "state": "open"}', '2030-01-01');

-- crm deletes ticket 1, which nobody changed here: deleted
SELECT outcome FROM sync_resolve.apply_delete('ticket', 'crm', '{"id": 1}', '2030-01-02');
-- crm deletes ticket 2, which was edited here since crm last saw it: review
UPDATE ticket SET state = 'in progress' WHERE id = 2;
SELECT outcome, queued, array_length(review_ids, 1) FROM sync_resolve.apply_delete('ticket', 'crm', '{"id": 2}', '2030-01-02');
SELECT * FROM ticket ORDER BY id;
SELECT id AS delete_review, kind, column_name, local_value, reason FROM sync_resolve.review WHERE status = 'open' \gset
SELECT :delete_review, :'kind', :'local_value', :'reason';
-- the person agrees with crm: the row goes
SELECT status FROM sync_resolve.resolve(:delete_review, 'take_incoming');
SELECT count(*) FROM ticket WHERE id = 2;
-- and if crm creates it again, it comes back whole: the review released it
SELECT outcome, applied FROM sync_resolve.apply('ticket', 'crm', '{"id": 2, "title": "network", "state": "reopened"}', '2030-01-04');
SELECT * FROM ticket WHERE id = 2;

-- keep_local releases the row too: crm's later one-sided change is taken
SELECT outcome FROM sync_resolve.apply('ticket', 'crm', '{"id": 6, "title": "fan", "state": "open"}', '2030-01-01');
UPDATE ticket SET state = 'noisy' WHERE id = 6;
SELECT outcome FROM sync_resolve.apply_delete('ticket', 'crm', '{"id": 6}', '2030-01-02');
SELECT status FROM sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE key = '{"id": 6}' AND status = 'open'), 'keep_local');
SELECT outcome, applied, queued FROM sync_resolve.apply('ticket', 'crm', '{"id": 6, "title": "fan (new)"}', '2030-01-03');

-- on_delete_conflict = keep: the edited row stays
UPDATE sync_resolve.tracked SET on_delete_conflict = 'keep' WHERE relid = 'ticket'::regclass;
SELECT outcome FROM sync_resolve.apply('ticket', 'crm', '{"id": 3, "title": "disk", "state": "open"}', '2030-01-01');
UPDATE ticket SET state = 'waiting' WHERE id = 3;
SELECT outcome, kept FROM sync_resolve.apply_delete('ticket', 'crm', '{"id": 3}', '2030-01-02');
SELECT * FROM ticket WHERE id = 3;
-- on_delete_conflict = delete: the edit is lost, on purpose
UPDATE sync_resolve.tracked SET on_delete_conflict = 'delete' WHERE relid = 'ticket'::regclass;
SELECT outcome FROM sync_resolve.apply_delete('ticket', 'crm', '{"id": 3}', '2030-01-03');
SELECT count(*) FROM ticket WHERE id = 3;
SELECT kind, detail FROM sync_resolve.explain('ticket', '{"id": 3}') WHERE kind IN ('conflict', 'deleted');

-- a row that existed before tracking and that crm never sent: a delete
-- cannot tell local edits apart, so it is a conflict (here: delete)
INSERT INTO ticket VALUES (4, 'old', 'closed');
SELECT outcome FROM sync_resolve.apply_delete('ticket', 'crm', '{"id": 4}');
SELECT rule FROM sync_resolve.event WHERE relid = 'ticket'::regclass AND key = '{"id": 4}' AND kind = 'conflict';

-- an update from crm crossing a delete made here
UPDATE sync_resolve.tracked SET on_delete_conflict = 'review' WHERE relid = 'ticket'::regclass;
SELECT outcome FROM sync_resolve.apply('ticket', 'crm', '{"id": 5, "title": "mouse", "state": "open"}', '2030-01-01');
DELETE FROM ticket WHERE id = 5;
-- crm re-sends what it had: no change since the delete, nothing to do
SELECT outcome FROM sync_resolve.apply('ticket', 'crm', '{"id": 5, "title": "mouse", "state": "open"}', '2030-01-02');
-- crm changed the ticket: review, the row stays deleted until decided
SELECT outcome, queued FROM sync_resolve.apply('ticket', 'crm', '{"id": 5, "title": "mouse", "state": "urgent"}', '2030-01-03');
SELECT count(*) FROM ticket WHERE id = 5;
SELECT id AS undelete_review, kind, incoming_value FROM sync_resolve.review WHERE status = 'open' \gset
SELECT :'kind', :'incoming_value';
SELECT status FROM sync_resolve.resolve(:undelete_review, 'take_incoming');
SELECT * FROM ticket WHERE id = 5;
-- with keep, the row comes back at once, as crm holds it (its image over its base)
UPDATE sync_resolve.tracked SET on_delete_conflict = 'keep' WHERE relid = 'ticket'::regclass;
DELETE FROM ticket WHERE id = 5;
SELECT outcome, applied FROM sync_resolve.apply('ticket', 'crm', '{"id": 5, "state": "closed"}', '2030-01-04');
SELECT * FROM ticket WHERE id = 5;
-- with delete, it stays deleted
UPDATE sync_resolve.tracked SET on_delete_conflict = 'delete' WHERE relid = 'ticket'::regclass;
DELETE FROM ticket WHERE id = 5;
SELECT outcome FROM sync_resolve.apply('ticket', 'crm', '{"id": 5, "state": "reopened"}', '2030-01-05');
SELECT count(*) FROM ticket WHERE id = 5;

-- apply_batch: upserts and deletes in one call, one result per element
SELECT * FROM sync_resolve.apply_batch('ticket', 'billing', '[
	{"op": "upsert", "data": {"id": 10, "title": "a", "state": "open"}, "changed_at": "2030-02-01T00:00:00Z", "event_id": "b-1"},
	{"data": {"id": 11, "title": "b", "state": "open"}, "version": "{billing:1}"},
	{"op": "upsert", "data": {"id": 10, "state": "closed"}, "changed_at": "2030-02-02T00:00:00Z", "version": {"billing": 2}},
	{"op": "delete", "data": {"id": 11}},
	{"op": "upsert", "data": {"id": 10, "state": "stale"}, "changed_at": "2030-01-01T00:00:00Z"},
	{"op": "upsert", "data": {"id": 10, "state": "dup"}, "event_id": "b-1"}
]');
SELECT * FROM ticket WHERE id >= 10 ORDER BY id;

-- raise (the default): the first bad element fails the call, and nothing
-- of the batch is written
\set VERBOSITY default
-- must fail
SELECT * FROM sync_resolve.apply_batch('ticket', 'billing', '[
	{"data": {"id": 12, "title": "c"}},
	{"data": {"id": 13, "title": "d", "priority": "high"}}
]');
SELECT count(*) FROM ticket WHERE id IN (12, 13);

-- reject: bad elements go to sync_resolve.rejected with their error, the
-- rest apply
SELECT outcome, key, applied FROM sync_resolve.apply_batch('ticket', 'billing', '[
	{"data": {"id": 12, "title": "c"}},
	{"data": {"id": 13, "title": "d", "priority": "high"}},
	{"data": {"title": "no key"}},
	{"op": "merge", "data": {"id": 14}},
	"not an object",
	{"data": {"id": 15, "title": "e"}, "version": "{billing:}"},
	{"data": {"id": 16, "title": "f"}}
]', on_error => 'reject');
SELECT id, title FROM ticket WHERE id BETWEEN 12 AND 16 ORDER BY id;
SELECT position, source, element, sqlstate, message FROM sync_resolve.rejected ORDER BY id;

-- reject applies the elements in runs, each in one subtransaction, not
-- each element in one: once a transaction holds more than 64 subtransaction
-- ids, every snapshot taken in the cluster overflows until it ends.  300
-- elements, the 5th and the 200th bad: the others apply, those two are set
-- aside, and the transaction takes a few transaction ids (15), where one
-- subtransaction per element took 299 (one for each that wrote).
BEGIN;
SELECT pg_current_xact_id() AS batch_xid \gset
SELECT outcome, count(*) FROM sync_resolve.apply_batch('ticket', 'billing',
	(SELECT jsonb_agg(CASE WHEN g IN (5, 200) THEN to_jsonb('bad element ' || g)
		ELSE jsonb_build_object('data', jsonb_build_object('id', 1000 + g, 'title', 't' || g)) END
		ORDER BY g)
	 FROM generate_series(1, 300) g), on_error => 'reject')
GROUP BY outcome ORDER BY outcome;
COMMIT;
SELECT pg_current_xact_id()::text::bigint - :'batch_xid'::text::bigint < 40 AS few_transaction_ids;
SELECT position, element FROM sync_resolve.rejected
WHERE element::text LIKE '"bad element%' ORDER BY position;
SELECT count(*), min(id), max(id) FROM ticket WHERE id > 1000;
SELECT count(*) AS applied_events FROM sync_resolve.event
WHERE relid = 'ticket'::regclass AND kind = 'inserted' AND (key->>'id')::int > 1000;

-- must fail
SELECT * FROM sync_resolve.apply_batch('ticket', 'billing', '{"data": {}}');
-- must fail
SELECT * FROM sync_resolve.apply_batch('ticket', 'billing', '[]', on_error => 'ignore');
-- an empty batch is no work
SELECT count(*) FROM sync_resolve.apply_batch('ticket', 'billing', '[]');

-- reject sets aside bad elements, not a cancel: a statement timeout in the
-- middle of a batch still ends the call
CREATE FUNCTION slow(c sync_resolve.conflict) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT pg_sleep(1); SELECT c.incoming_value $$;
SELECT sync_resolve.set_policy('ticket', 'title', 'custom', custom_fn => 'slow(sync_resolve.conflict)');
UPDATE ticket SET title = 'local title' WHERE id = 16;
SELECT count(*) AS rejected_before FROM sync_resolve.rejected \gset
SET statement_timeout = '200ms';
-- must fail
SELECT * FROM sync_resolve.apply_batch('ticket', 'billing', '[{"data": {"id": 16, "title": "g"}}]', on_error => 'reject');
RESET statement_timeout;
SELECT count(*) - :rejected_before AS rejected_since FROM sync_resolve.rejected;

-- A delete that the table turns into nothing (a rule, here) fails, and
-- leaves nothing half-written: before, apply_delete() said 'deleted', marked
-- crm's base deleted and queued the delete for billing, and the row stayed.
CREATE TABLE kept_by_rule (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('kept_by_rule', ARRAY['crm', 'billing'], 'latest', on_delete_conflict => 'delete');
SELECT outcome FROM sync_resolve.apply('kept_by_rule', 'crm', '{"id": 3, "v": "three"}');
CREATE RULE keep3 AS ON DELETE TO kept_by_rule WHERE OLD.id = 3 DO INSTEAD NOTHING;
-- must fail
SELECT outcome FROM sync_resolve.apply_delete('kept_by_rule', 'crm', '{"id": 3}');
SELECT * FROM kept_by_rule;
SELECT system, deleted_at IS NOT NULL AS deleted FROM sync_resolve.shadow('kept_by_rule', '{"id": 3}')
ORDER BY system;
SELECT target, op FROM sync_resolve.outbox WHERE relid = 'kept_by_rule'::regclass AND status = 'pending';
DROP TABLE kept_by_rule;
