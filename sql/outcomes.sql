-- Every outcome of apply() and apply_delete(), and what each one leaves
-- behind: the row, the source's base, the history.  Also partial payloads
-- (an absent field is untouched, JSON null sets NULL), convergent changes,
-- and versions: a version that covers every local change means no conflict.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE contact (id int PRIMARY KEY, name text, phone text, city text);
SELECT sync_resolve.track('contact', ARRAY['crm', 'billing'], default_strategy => 'review');

-- inserted: a row the table does not have yet (a sync gap, not a conflict)
SELECT * FROM sync_resolve.apply('contact', 'crm', '{"id": 1, "name": "Ada", "phone": "555-0100"}', '2030-01-01');
SELECT * FROM contact ORDER BY id;

-- updated: crm changed the phone; nobody else touched it
SELECT * FROM sync_resolve.apply('contact', 'crm', '{"id": 1, "phone": "555-0101"}', '2030-01-02');
SELECT * FROM contact ORDER BY id;

-- partial payload: name was not sent and stays; JSON null sets city to NULL
UPDATE contact SET city = 'Paris' WHERE id = 1;
SELECT outcome, applied FROM sync_resolve.apply('contact', 'billing', '{"id": 1, "name": "Ada", "phone": "555-0101"}', '2030-01-02');
SELECT outcome, applied, queued FROM sync_resolve.apply('contact', 'billing', '{"id": 1, "city": null}', '2030-01-03');
SELECT * FROM contact ORDER BY id;
-- the conflict above (billing had no base for city, local set it) went to review
SELECT column_name, local_value, incoming_value, base_value FROM sync_resolve.review ORDER BY id;

-- unchanged: crm sends what it sent before
SELECT * FROM sync_resolve.apply('contact', 'crm', '{"id": 1, "name": "Ada", "phone": "555-0101"}', '2030-01-04');

-- unchanged, convergent: both sides changed name to the same value
UPDATE contact SET name = 'Ada Lovelace' WHERE id = 1;
SELECT outcome, applied, kept FROM sync_resolve.apply('contact', 'crm', '{"id": 1, "name": "Ada Lovelace"}', '2030-01-05');

-- stale by the source's own clock: older than the last change seen from crm
SELECT * FROM sync_resolve.apply('contact', 'crm', '{"id": 1, "phone": "555-0000"}', '2029-12-31');
SELECT phone FROM contact WHERE id = 1;

-- stale by version: crm's revision 7 arrives after revision 8
SELECT outcome FROM sync_resolve.apply('contact', 'crm', '{"id": 2, "name": "Bob"}', version => '{crm:8}');
SELECT outcome FROM sync_resolve.apply('contact', 'crm', '{"id": 2, "name": "Bobby"}', version => '{crm:7}');
SELECT outcome FROM sync_resolve.apply('contact', 'crm', '{"id": 2, "name": "Bob again"}', version => '{crm:8}');
SELECT name FROM contact WHERE id = 2;

-- duplicate: the same delivery id again, even with other content
SELECT outcome FROM sync_resolve.apply('contact', 'crm', '{"id": 3, "name": "Cy"}', event_id => 'hook-42');
SELECT * FROM sync_resolve.apply('contact', 'crm', '{"id": 3, "name": "Cyrus"}', event_id => 'hook-42');
SELECT name FROM contact WHERE id = 3;
-- the same delivery id from another system is another delivery
SELECT outcome FROM sync_resolve.apply('contact', 'billing', '{"id": 3, "name": "Cy"}', event_id => 'hook-42');

-- held: every change went to review
UPDATE contact SET name = 'Cyril' WHERE id = 3;
SELECT outcome, queued, array_length(review_ids, 1) AS reviews FROM sync_resolve.apply('contact', 'crm', '{"id": 3, "name": "Cyrus"}');

-- rejected: every change was refused (billing may not write phone)
SELECT sync_resolve.set_policy('contact', 'phone', 'owner', owner => 'crm');
SELECT outcome, rejected FROM sync_resolve.apply('contact', 'billing', '{"id": 1, "phone": "555-9999"}');
SELECT phone FROM contact WHERE id = 1;

-- a version that covers every local change: no conflict, the change is
-- taken (with the default review strategy it would otherwise be held)
SELECT outcome FROM sync_resolve.apply('contact', 'crm', '{"id": 4, "city": "Oslo"}', version => '{crm:1}');
UPDATE contact SET city = 'Bergen' WHERE id = 4;
SELECT system, version FROM sync_resolve.shadow('contact', '{"id": 4}');
SELECT outcome, applied, queued FROM sync_resolve.apply('contact', 'crm', '{"id": 4, "city": "Trondheim"}', version => '{crm:2,local:1}');
SELECT city FROM contact WHERE id = 4;
-- a concurrent version (crm never saw the local change): the conflict stands
UPDATE contact SET city = 'Tromso' WHERE id = 4;
SELECT outcome, applied, queued FROM sync_resolve.apply('contact', 'crm', '{"id": 4, "city": "Narvik"}', version => '{crm:3,local:1}');
SELECT city FROM contact WHERE id = 4;

-- deleted: crm deletes a row nobody changed since crm last saw it
SELECT outcome FROM sync_resolve.apply('contact', 'crm', '{"id": 5, "name": "Eve"}', '2030-01-01');
SELECT * FROM sync_resolve.apply_delete('contact', 'crm', '{"id": 5}', '2030-01-02');
SELECT count(*) FROM contact WHERE id = 5;
-- stale after a delete: an update crm made before the delete arrives late
SELECT * FROM sync_resolve.apply('contact', 'crm', '{"id": 5, "name": "Eve (late)"}', '2030-01-01 12:00');
SELECT count(*) FROM contact WHERE id = 5;
-- unchanged: deleting a row that is already gone
SELECT outcome FROM sync_resolve.apply_delete('contact', 'crm', '{"id": 5}', '2030-01-03');

-- the story of row 1, in words
SELECT source, kind, column_name, detail FROM sync_resolve.explain('contact', '{"id": 1}');
-- a key given as a string finds the same story
SELECT count(*) FROM sync_resolve.explain('contact', '{"id": "1"}');

-- what the shadow knows of row 1: each system's base, and who last wrote
-- each local column (the times are the clock's, not shown)
SELECT system, base, changed_at, deleted_at, held,
	(SELECT jsonb_object_agg(k, v -> 'by') FROM jsonb_each(changes) AS e(k, v)) AS writers
FROM sync_resolve.shadow('contact', '{"id": 1}');
SELECT system, base, deleted_at IS NOT NULL AS deleted, deleted_by FROM sync_resolve.shadow('contact', '{"id": 5}');
