-- Reconciliation (DESIGN 11): a tracked table against a source's own
-- records of it, read from a snapshot table as apply() would read them.
-- reconcile_summary() counts and checksums both sides; reconcile() lists
-- each difference with what normal sync does with it: a change only the
-- source made is taken (update_local), one only this side made goes out
-- (update_external), a conflict goes by the column's strategy (here a
-- person decides: manual_review), rows only one side has are inserted
-- on the other side, a row deleted here is to be deleted there, and a row
-- the source held but no longer has is left to a person.  Differences that
-- sync may still be carrying (an outbox entry waiting or in flight, a
-- change after captured_at - settle) are settling.  Equal values are not
-- listed; nothing is written without repair.  repair => true carries the
-- actions out through the apply engine and the outbox and logs each one.
-- Also: field maps and the column types apply to the snapshot, the
-- checksums agree with the types' equality, and bad arguments fail cleanly.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

-- times in reasons vary from run to run
CREATE FUNCTION untimed(t text) RETURNS text LANGUAGE sql
	RETURN regexp_replace(t, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d', '<time>', 'g');

CREATE TABLE article (id int PRIMARY KEY, name text, qty int, price numeric, note text);
SELECT sync_resolve.track('article', ARRAY['crm', 'billing'], 'latest');
SELECT sync_resolve.set_policy('article', 'name', 'owner', owner => 'crm');
SELECT sync_resolve.set_policy('article', 'note', 'review');

-- crm sent six records long ago; billing received them too (acked)
SELECT count(*) FROM sync_resolve.apply_batch('article', 'crm',
	(SELECT jsonb_agg(jsonb_build_object('changed_at', '2000-01-01', 'data',
		jsonb_build_object('id', g, 'name', 'article ' || g, 'qty', g, 'price', 1.50, 'note', 'n')))
	 FROM generate_series(1, 6) g));
SELECT count(sync_resolve.ack_outbound(id)) FROM sync_resolve.claim_outbound('billing');

-- local changes: qty of 2, note of 3, row 7 added, row 6 deleted.  crm
-- never got them: each entry for crm failed its one attempt (dead)
UPDATE article SET qty = 20 WHERE id = 2;
UPDATE article SET note = 'local note' WHERE id = 3;
INSERT INTO article VALUES (7, 'article 7', 7, 1.50, 'n');
DELETE FROM article WHERE id = 6;
SET sync_resolve.max_attempts = 1;
SELECT status, count(*) FROM (
	SELECT (sync_resolve.fail_outbound(id, 'HTTP 500')).status
	FROM sync_resolve.claim_outbound('crm')) f
GROUP BY status;
RESET sync_resolve.max_attempts;

-- crm's records as crm holds them: it renamed 1 and wrote its own note on 3,
-- still has 6, has a new 8, no longer has 5; its prices print 1.5, not 1.50
CREATE TABLE crm_snap (id int, name text, qty int, price numeric, note text);
INSERT INTO crm_snap VALUES
	(1, 'renamed by crm', 1, 1.5, 'n'),
	(2, 'article 2', 2, 1.5, 'n'),
	(3, 'article 3', 3, 1.5, 'crm note'),
	(4, 'article 4', 4, 1.5, 'n'),
	(6, 'article 6', 6, 1.5, 'n'),
	(8, 'article 8', 8, 1.5, 'new');

-- the checksums differ; a snapshot of the table as it is matches it
SELECT local_rows, external_rows, local_hash <> external_hash AS differ, matches
FROM sync_resolve.reconcile_summary('article', 'crm', 'crm_snap');
CREATE TABLE same_snap AS SELECT id, name, qty, price::numeric(10, 4) AS price, note FROM article;
SELECT local_rows, external_rows, local_hash = external_hash AS same, matches
FROM sync_resolve.reconcile_summary('article', 'crm', 'same_snap');
-- a snapshot of some columns is compared on those
CREATE TABLE qty_snap AS SELECT id, qty FROM article;
UPDATE qty_snap SET qty = 0 WHERE id = 4;
SELECT local_rows, external_rows, matches FROM sync_resolve.reconcile_summary('article', 'crm', 'qty_snap');

-- each difference, and what sync does with it (settle 0: nothing recent)
SELECT key, column_name, local_value, external_value, owner, action, untimed(reason) AS reason
FROM sync_resolve.reconcile('article', 'crm', 'crm_snap', settle => '0 seconds')
ORDER BY (key->>'id')::int, column_name;
-- reading wrote nothing
SELECT count(*) AS reconciled_events FROM sync_resolve.event WHERE kind = 'reconciled';
SELECT name FROM article WHERE id = 1;

-- settling: changes within the settle time before captured_at, and a row
-- whose entry for crm waits, are not acted on
SELECT key, column_name, action, reason ~ 'after the snapshot''s settle time' AS recent
FROM sync_resolve.reconcile('article', 'crm', 'crm_snap', settle => '1 hour')
WHERE key->>'id' IN ('2', '7') ORDER BY (key->>'id')::int, column_name;
-- and so is a snapshot taken before crm's last change known here
SELECT key, column_name, action, untimed(reason) AS reason
FROM sync_resolve.reconcile('article', 'crm', 'crm_snap', captured_at => '1999-12-31 UTC',
							settle => '0 seconds')
WHERE key->>'id' = '1';
UPDATE article SET price = 2 WHERE id = 4;
SELECT key, column_name, action, reason
FROM sync_resolve.reconcile('article', 'crm', 'crm_snap', settle => '0 seconds')
WHERE key->>'id' = '4';
-- crm receives it
SELECT count(sync_resolve.ack_outbound(id)) FROM sync_resolve.claim_outbound('crm');
UPDATE crm_snap SET price = 2 WHERE id = 4;

-- repair: crm's side through the apply engine, this side through the outbox
SELECT key, column_name, action
FROM sync_resolve.reconcile('article', 'crm', 'crm_snap', settle => '0 seconds', repair => true)
ORDER BY (key->>'id')::int, column_name;
SELECT * FROM article ORDER BY id;
-- crm is to learn qty of 2, the delete of 6, row 7
SELECT key, op, payload, cause FROM sync_resolve.outbox
WHERE target = 'crm' AND status = 'pending' ORDER BY (key->>'id')::int;
-- note of 3 waits for a person
SELECT key, column_name, local_value, incoming_value, strategy FROM sync_resolve.review
WHERE status = 'open';
SELECT key, column_name, decision, untimed(rule) AS rule FROM sync_resolve.event
WHERE kind = 'reconciled' ORDER BY id;
SELECT kind, untimed(detail) AS detail FROM sync_resolve.explain('article', '{"id": 1}')
WHERE kind = 'reconciled';
-- once crm has what was queued, only what is left to a person remains
SELECT count(sync_resolve.ack_outbound(id)) FROM sync_resolve.claim_outbound('crm');
CREATE TABLE crm_after AS SELECT * FROM crm_snap WHERE id <> 6;
UPDATE crm_after SET qty = 20 WHERE id = 2;
INSERT INTO crm_after VALUES (7, 'article 7', 7, 1.5, 'n');
SELECT key, column_name, action
FROM sync_resolve.reconcile('article', 'crm', 'crm_after', settle => '0 seconds')
ORDER BY (key->>'id')::int, column_name;

-- a snapshot in crm's own field names and values, with its text for numbers
CREATE TABLE crm_fields (id text, title text, qty text);
INSERT INTO crm_fields SELECT id::text, name, qty::text FROM article;
INSERT INTO sync_resolve.field_map (relid, system, external_field, column_name)
VALUES ('article', 'crm', 'title', 'name');
SELECT matches FROM sync_resolve.reconcile_summary('article', 'crm', 'crm_fields');
UPDATE crm_fields SET title = 'other' WHERE id = '8';
SELECT key, column_name, local_value, external_value, owner, action
FROM sync_resolve.reconcile('article', 'crm', 'crm_fields', settle => '0 seconds');

-- bad arguments
\set VERBOSITY terse
-- must fail: a system the table does not sync with
SELECT * FROM sync_resolve.reconcile_summary('article', 'erp', 'crm_snap');
-- must fail: a table not tracked
SELECT * FROM sync_resolve.reconcile('crm_snap', 'crm', 'crm_snap');
-- must fail: a field that names no column
CREATE TABLE odd_snap (id int, colour text);
INSERT INTO odd_snap VALUES (1, 'red');
SELECT * FROM sync_resolve.reconcile('article', 'crm', 'odd_snap');
-- must fail: nulls
SELECT * FROM sync_resolve.reconcile('article', 'crm', 'crm_snap', captured_at => NULL);
-- must fail: an infinite capture time
SELECT * FROM sync_resolve.reconcile('article', 'crm', 'crm_snap', captured_at => 'infinity');
-- must fail: reading the table, the snapshot, and repairing need their privileges
CREATE ROLE sr_reader;
GRANT SELECT ON article TO sr_reader;
SET ROLE sr_reader;
SELECT * FROM sync_resolve.reconcile('article', 'crm', 'crm_snap');
RESET ROLE;
GRANT SELECT ON crm_snap TO sr_reader;
SET ROLE sr_reader;
SELECT count(*) FROM sync_resolve.reconcile('article', 'crm', 'crm_snap');
SELECT * FROM sync_resolve.reconcile('article', 'crm', 'crm_snap', repair => true);
RESET ROLE;
\set VERBOSITY default
REVOKE ALL ON article, crm_snap FROM sr_reader;
DROP ROLE sr_reader;

DROP TABLE article, crm_snap, same_snap, qty_snap, crm_after, crm_fields, odd_snap;
DROP FUNCTION untimed(text);
