-- The outbox carries local changes out: one waiting entry per (row,
-- target) with later changes merged in; a change applied from one system
-- goes to the others and never back to it; a source whose change was
-- refused or lost hears the row's value; claim, ack and fail with leases,
-- backoff and dead entries; ack advances the target's base and keeps its
-- record id; echoes of what was sent write nothing.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE lead (id int PRIMARY KEY, name text, score int, stage text);
SELECT sync_resolve.track('lead', ARRAY['crm', 'billing'], 'latest');
SELECT sync_resolve.set_policy('lead', 'stage', 'owner', owner => 'crm');

-- a local insert: every system gets the row
INSERT INTO lead VALUES (1, 'Ada', 10, NULL);
SELECT target, op, payload, status, attempts FROM sync_resolve.outbox ORDER BY id;
-- a later local change merges into the waiting entries; never handed out,
-- they keep their idempotency keys
CREATE TEMP TABLE old_key AS SELECT target, idempotency_key FROM sync_resolve.outbox;
UPDATE lead SET score = 11 WHERE id = 1;
SELECT o.target, o.payload, o.idempotency_key <> k.idempotency_key AS new_key
FROM sync_resolve.outbox o JOIN old_key k USING (target) ORDER BY o.id;
DROP TABLE old_key;

-- crm claims its entry: in flight, leased, counted as an attempt
SELECT id AS crm_entry, target, op, status, attempts, lease_until > now() AS leased
FROM sync_resolve.claim_outbound('crm') \gset
SELECT :crm_entry > 0 AS claimed, :'status', :attempts, :'leased';
-- a change made while it is in flight waits in a new entry
UPDATE lead SET name = 'Ada L.' WHERE id = 1;
SELECT target, payload, status FROM sync_resolve.outbox WHERE target = 'crm' ORDER BY id;
-- crm confirms, with its own record id: crm's base now holds what was sent
SELECT status, external_id FROM sync_resolve.ack_outbound(:crm_entry, external_id => 'CRM-1');
SELECT system, base FROM sync_resolve.shadow('lead', '{"id": 1}') WHERE system = 'crm';
SELECT system, external_id, key FROM sync_resolve.identity;
-- acking again changes nothing
SELECT status FROM sync_resolve.ack_outbound(:crm_entry);

-- crm reports back what it was sent: an echo, nothing written or queued
SELECT outcome, applied FROM sync_resolve.apply('lead', 'crm', '{"id": 1, "name": "Ada", "score": 11}');
-- the next entry, claimed and reported back before it is confirmed: also
-- an echo, which confirms it
SELECT id AS crm_entry2 FROM sync_resolve.claim_outbound('crm') \gset
SELECT outcome FROM sync_resolve.apply('lead', 'crm', '{"id": 1, "name": "Ada Byron"}');
SELECT status FROM sync_resolve.outbox WHERE id = :crm_entry2;
-- an entry's idempotency key as the delivery id marks an echo too
UPDATE lead SET score = 12 WHERE id = 1;
SELECT id AS crm_entry3, idempotency_key AS crm_key3 FROM sync_resolve.claim_outbound('crm') \gset
SELECT outcome FROM sync_resolve.apply('lead', 'crm', '{"id": 1, "score": 12}', event_id => :'crm_key3');
SELECT status FROM sync_resolve.outbox WHERE id = :crm_entry3;
SELECT kind, detail FROM sync_resolve.explain('lead', '{"id": 1}') WHERE kind IN ('echo', 'outbound_sent') ORDER BY at;

-- a change applied from crm goes to billing, never back to crm
SELECT outcome FROM sync_resolve.apply('lead', 'crm', '{"id": 1, "stage": "qualified"}');
SELECT target, payload, status FROM sync_resolve.outbox WHERE status = 'pending' ORDER BY id;

-- billing tries to change stage (crm owns it): refused, and billing is told
-- the row's value
SELECT outcome, rejected FROM sync_resolve.apply('lead', 'billing', '{"id": 1, "stage": "lost"}');
SELECT target, payload FROM sync_resolve.outbox WHERE status = 'pending' AND target = 'billing';
-- when billing sends its own value for a column, the waiting entry no
-- longer carries the older one
SELECT outcome, applied FROM sync_resolve.apply('lead', 'billing', '{"id": 1, "name": "Ada King"}', '2999-01-01');
SELECT target, payload FROM sync_resolve.outbox WHERE status = 'pending' ORDER BY id;

-- fail: retried later, with exponential backoff; dead after max_attempts
SET sync_resolve.max_attempts = 3;
SELECT id AS bill_entry FROM sync_resolve.claim_outbound('billing') \gset
SELECT status, attempts, last_error, next_attempt_at > now() + interval '9 seconds' AS backed_off
FROM sync_resolve.fail_outbound(:bill_entry, 'HTTP 503');
-- nothing to claim while it waits
SELECT count(*) FROM sync_resolve.claim_outbound('billing');
-- a change merging into an entry handed out before gets a new idempotency
-- key: billing may have seen the old one, with other content
SELECT idempotency_key AS bill_key FROM sync_resolve.outbox WHERE id = :bill_entry \gset
UPDATE lead SET score = 13 WHERE id = 1;
SELECT status, payload->'score' AS score, idempotency_key <> :'bill_key' AS new_key
FROM sync_resolve.outbox WHERE id = :bill_entry;
-- retry_in overrides the backoff
SELECT next_attempt_at <= now() AS due FROM sync_resolve.fail_outbound(:bill_entry, 'HTTP 503', retry_in => '0 seconds');
SELECT attempts FROM sync_resolve.claim_outbound('billing');
SELECT status, next_attempt_at > now() + interval '19 seconds' AS longer FROM sync_resolve.fail_outbound(:bill_entry, 'HTTP 500');
UPDATE sync_resolve.outbox SET next_attempt_at = now() WHERE id = :bill_entry;
SELECT attempts FROM sync_resolve.claim_outbound('billing');
SELECT status, attempts FROM sync_resolve.fail_outbound(:bill_entry, 'HTTP 500');
SELECT kind, detail FROM sync_resolve.explain('lead', '{"id": 1}') WHERE kind = 'outbound_failed' ORDER BY at;
\set VERBOSITY terse
-- must fail: a dead entry cannot fail again
SELECT sync_resolve.fail_outbound(:bill_entry, 'again');
-- must fail
SELECT sync_resolve.ack_outbound(999999);
-- must fail: as apply() refuses it, an acknowledgement changed at infinity
-- (crm's base would be later than any change crm could send)
SELECT sync_resolve.ack_outbound(:bill_entry, changed_at => 'infinity');
-- must fail
SELECT * FROM sync_resolve.claim_outbound('nosuch');
-- must fail
SELECT * FROM sync_resolve.claim_outbound('crm', 0);
-- must fail: a lease that is no time at all, taken as a whole
SELECT * FROM sync_resolve.claim_outbound('crm', lease => '1 day -25 hours');
\set VERBOSITY default
-- a lease of days or months is a positive lease (it was refused: only the
-- interval's hours were looked at)
BEGIN;
SELECT count(*) >= 0 AS taken FROM sync_resolve.claim_outbound('crm', lease => '1 day');
SELECT count(*) >= 0 AS taken FROM sync_resolve.claim_outbound('billing', lease => '1 mon');
ROLLBACK;
RESET sync_resolve.max_attempts;

-- an expired lease is claimable again
UPDATE lead SET score = 20 WHERE id = 1;
SELECT count(*) FROM sync_resolve.claim_outbound('crm', lease => '1 millisecond');
SELECT pg_sleep(0.01);
SELECT status, attempts FROM sync_resolve.claim_outbound('crm');

-- deletes go out as deletes; a new row after the delete as an upsert
TRUNCATE sync_resolve.outbox;
DELETE FROM lead WHERE id = 1;
SELECT target, op, payload FROM sync_resolve.outbox ORDER BY id;
INSERT INTO lead VALUES (1, 'Ada again', 1, NULL);
SELECT target, op, payload FROM sync_resolve.outbox ORDER BY id;

-- a system PostgreSQL itself replicates gets no entries
SELECT sync_resolve.add_system('replica', replication_origin => 'sub_replica');
UPDATE sync_resolve.tracked SET systems = systems || '{replica}' WHERE relid = 'lead'::regclass;
TRUNCATE sync_resolve.outbox;
UPDATE lead SET score = 2 WHERE id = 1;
SELECT target FROM sync_resolve.outbox ORDER BY id;

-- only members of a system's role may carry its outbox
CREATE ROLE regress_sr_worker;
CREATE ROLE regress_sr_crm_team;
UPDATE sync_resolve.system SET member_role = 'regress_sr_crm_team' WHERE name = 'crm';
GRANT USAGE ON SCHEMA sync_resolve TO regress_sr_worker;
GRANT EXECUTE ON FUNCTION sync_resolve.claim_outbound(text, integer, interval) TO regress_sr_worker;
SET ROLE regress_sr_worker;
\set VERBOSITY terse
-- must fail
SELECT * FROM sync_resolve.claim_outbound('crm');
\set VERBOSITY default
RESET ROLE;
GRANT regress_sr_crm_team TO regress_sr_worker;
SET ROLE regress_sr_worker;
SELECT target, status FROM sync_resolve.claim_outbound('crm');
RESET ROLE;
UPDATE sync_resolve.system SET member_role = NULL WHERE name = 'crm';
DROP OWNED BY regress_sr_worker;
DROP ROLE regress_sr_worker;
DROP ROLE regress_sr_crm_team;

-- A failure reported while a later change to the row already waits for
-- the same target: only one entry may wait, so the failed one hands its
-- changes to the waiting one (the later values win) and is retired.
TRUNCATE sync_resolve.outbox;
UPDATE lead SET name = 'Ada F.', score = 12 WHERE id = 1;
SELECT id AS flying FROM sync_resolve.claim_outbound('crm') \gset
UPDATE lead SET score = 13 WHERE id = 1;
SELECT status, regexp_replace(last_error, '#\d+', '#N') AS last_error
FROM sync_resolve.fail_outbound(:flying, 'HTTP 502');
SELECT target, status, payload, attempts FROM sync_resolve.outbox ORDER BY id;
SELECT decision, rule ~ 'now carries this one''s too' AS explained
FROM sync_resolve.event WHERE kind = 'outbound_failed' ORDER BY id DESC LIMIT 1;

-- The outbox and the history are written straight into their tables, not
-- by SQL statements, but as the tables are: a trigger on writing the
-- outbox makes sync_resolve queue through SQL, so that the trigger fires;
-- once it is dropped, nothing fires.
CREATE TABLE outbox_seen (op text, target text);
CREATE FUNCTION outbox_seen() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.outbox_seen VALUES (TG_OP, NEW.target); RETURN NEW; END$$;
CREATE TRIGGER outbox_seen AFTER INSERT OR UPDATE ON sync_resolve.outbox
	FOR EACH ROW EXECUTE FUNCTION outbox_seen();
TRUNCATE sync_resolve.outbox;
UPDATE lead SET score = 5 WHERE id = 1;
UPDATE lead SET score = 6 WHERE id = 1;
SELECT op, target FROM outbox_seen ORDER BY op, target;
DROP TRIGGER outbox_seen ON sync_resolve.outbox;
UPDATE lead SET score = 7 WHERE id = 1;
SELECT count(*) AS fired FROM outbox_seen;
SELECT target, payload FROM sync_resolve.outbox WHERE status = 'pending' ORDER BY id;
-- a column's default is the table's own, changed or not
ALTER TABLE sync_resolve.outbox ALTER next_attempt_at SET DEFAULT now() + interval '1 hour';
TRUNCATE sync_resolve.outbox;
UPDATE lead SET score = 8 WHERE id = 1;
SELECT target, next_attempt_at > now() + interval '59 minutes' AS later FROM sync_resolve.outbox ORDER BY id;
ALTER TABLE sync_resolve.outbox ALTER next_attempt_at SET DEFAULT now();
TRUNCATE sync_resolve.outbox;
UPDATE lead SET score = 9 WHERE id = 1;
SELECT target, next_attempt_at > now() AS later FROM sync_resolve.outbox ORDER BY id;
-- a default that calls a SQL function is run as a statement would run it:
-- within one transaction, a write after the function's table was replaced
-- reads the new one (a SQL function keeps its plans for the transaction)
CREATE TABLE retry_delay (delay interval);
INSERT INTO retry_delay VALUES ('1 hour');
CREATE FUNCTION next_try() RETURNS timestamptz STABLE LANGUAGE sql
	AS 'SELECT now() + delay FROM public.retry_delay';
ALTER TABLE sync_resolve.outbox ALTER next_attempt_at SET DEFAULT next_try();
BEGIN;
TRUNCATE sync_resolve.outbox;
UPDATE lead SET score = 10 WHERE id = 1;
ALTER TABLE retry_delay RENAME TO retry_delay_old;
CREATE TABLE retry_delay AS SELECT interval '5 hours' AS delay;
INSERT INTO lead VALUES (2, 'Grace', 1, NULL);
SELECT key, target, round(extract(epoch FROM next_attempt_at - now()) / 3600) AS hours
FROM sync_resolve.outbox ORDER BY id;
ROLLBACK;
ALTER TABLE sync_resolve.outbox ALTER next_attempt_at SET DEFAULT now();
DROP FUNCTION next_try();
DROP TABLE retry_delay;
-- and a default of a domain type is checked against the domain's
-- constraints as they are now, not as the first write of this session
-- found them: an entry's status 'pending' that a new constraint of
-- outbox_status refuses is refused -- also when the domain had no
-- constraints when the outbox's defaults were last read (planned, the
-- default would then be a plain text value)
BEGIN;
ALTER DOMAIN sync_resolve.outbox_status ADD CONSTRAINT not_pending CHECK (VALUE <> 'pending') NOT VALID;
SAVEPOINT s;
\set VERBOSITY terse
-- must fail: the new row's entries would be 'pending'
INSERT INTO lead VALUES (2, 'Grace', 1, NULL);
ROLLBACK TO s;
ALTER DOMAIN sync_resolve.outbox_status DROP CONSTRAINT not_pending;
ALTER DOMAIN sync_resolve.outbox_status DROP CONSTRAINT outbox_status_check;
ALTER TABLE sync_resolve.outbox ALTER status SET DEFAULT 'pending';
INSERT INTO lead VALUES (2, 'Grace', 1, NULL);
ALTER DOMAIN sync_resolve.outbox_status ADD CONSTRAINT not_pending CHECK (VALUE <> 'pending') NOT VALID;
-- must fail: the new row's entries would be 'pending'
INSERT INTO lead VALUES (3, 'Edsger', 1, NULL);
\set VERBOSITY default
ROLLBACK;
-- a column added to the history gets its default (through SQL); once it
-- is dropped again, events are written as before
ALTER TABLE sync_resolve.event ADD COLUMN note text DEFAULT 'noted';
SELECT outcome FROM sync_resolve.apply('lead', 'crm', '{"id": 1, "name": "Ada Byron"}', now());
SELECT kind, source, note FROM sync_resolve.event ORDER BY id DESC LIMIT 1;
ALTER TABLE sync_resolve.event DROP COLUMN note;
SELECT outcome FROM sync_resolve.apply('lead', 'crm', '{"id": 1, "name": "Ada King"}', now());
SELECT kind, source, column_name, new_value FROM sync_resolve.event
WHERE id > (SELECT max(id) - 3 FROM sync_resolve.event) ORDER BY id;
DROP TABLE outbox_seen;
DROP FUNCTION outbox_seen();

-- a record id names one row: crm acknowledging another row's entry with
-- CRM-1 is refused by name (it was identity_pkey's bare unique violation,
-- with sync_resolve's internal statement as context)
BEGIN;
INSERT INTO lead VALUES (9, 'Grace', 1, NULL);
SELECT id AS grace_entry FROM sync_resolve.claim_outbound('crm', 10) WHERE key = '{"id": 9}' \gset
\set VERBOSITY terse
-- must fail
SELECT status FROM sync_resolve.ack_outbound(:grace_entry, external_id => 'CRM-1');
\set VERBOSITY default
ROLLBACK;
