-- The sync_resolve demo: one customer, three writers.
--
-- Our application, a CRM and a billing provider all keep a copy of the
-- customer table and all change it.  Run by `make demo` in a throwaway
-- database; every step prints what happened and why.

\set QUIET on
\pset footer off
\pset null '(null)'
SET client_min_messages = warning;
CREATE EXTENSION sync_resolve;

\echo
\echo '=== Setting up: who may write what ==='
\echo
\echo 'The application (local), a CRM and a billing provider share one customer table.'
\echo 'The DBA writes down, per column, what to believe when they disagree:'
\echo '  email            owned by the application (local)'
\echo '  phone            latest change wins'
\echo '  lifecycle_stage  owned by the CRM'
\echo '  billing_status   owned by the billing provider'
\echo '  tags             merged as a set: everyone''s additions and removals survive'
\echo '  credit_limit     too important to guess: a person decides'
\echo

CREATE TABLE customer (
	id integer PRIMARY KEY,
	name text NOT NULL,
	email text,
	phone text,
	lifecycle_stage text,
	billing_status text,
	tags text[],
	credit_limit numeric(12,2)
);

SELECT sync_resolve.add_system('crm', priority => 50);
SELECT sync_resolve.add_system('billing', priority => 60);
SELECT sync_resolve.track('customer', ARRAY['crm', 'billing'], default_strategy => 'latest');
SELECT sync_resolve.set_policy('customer', 'email', 'owner', owner => 'local');
SELECT sync_resolve.set_policy('customer', 'phone', 'latest');
SELECT sync_resolve.set_policy('customer', 'lifecycle_stage', 'owner', owner => 'crm');
SELECT sync_resolve.set_policy('customer', 'billing_status', 'owner', owner => 'billing');
SELECT sync_resolve.set_policy('customer', 'tags', 'union');
SELECT sync_resolve.set_policy('customer', 'credit_limit', 'review');

SELECT column_name AS "column", strategy, coalesce(owner, '') AS owner
FROM sync_resolve.column_policy WHERE relid = 'customer'::regclass ORDER BY attnum;

\echo
\echo '=== 1. Acme signs up in the application ==='
INSERT INTO customer VALUES (42, 'Acme Ltd', 'ops@acme.example', '+1 555 0100', 'lead', NULL, '{newsletter}', 5000);
\echo 'The CRM and billing pick it up and send back the record as they now hold it.'
SELECT outcome, applied, kept FROM sync_resolve.apply('customer', 'crm',
	'{"id": 42, "name": "Acme Ltd", "email": "ops@acme.example", "phone": "+1 555 0100",
	  "lifecycle_stage": "lead", "tags": ["newsletter"], "credit_limit": 5000}',
	changed_at => '2026-03-01 09:00+00', version => '{crm:1}', event_id => 'crm-evt-1001');
SELECT outcome, applied, kept FROM sync_resolve.apply('customer', 'billing',
	'{"id": 42, "billing_status": "trial", "credit_limit": 5000}',
	changed_at => '2026-03-01 09:05+00', version => '{billing:1}');
SELECT * FROM customer;

\echo
\echo '=== 2. Different fields change on different sides: both changes are kept ==='
\echo 'A sales rep adds the tag "vip" in the application; meanwhile the CRM moves'
\echo 'Acme to "customer" and tags it "emea".'
UPDATE customer SET tags = array_append(tags, 'vip') WHERE id = 42;
SELECT outcome, applied, kept FROM sync_resolve.apply('customer', 'crm',
	'{"id": 42, "lifecycle_stage": "customer", "tags": ["newsletter", "emea"]}',
	changed_at => '2026-03-02 10:00+00', version => '{crm:2}', event_id => 'crm-evt-1002');
SELECT id, lifecycle_stage, tags FROM customer;

\echo
\echo '=== 3. A write the CRM is not allowed to make ==='
\echo 'A CRM workflow tries to mark the account "suspended". Billing owns that field.'
SELECT outcome, applied, rejected FROM sync_resolve.apply('customer', 'crm',
	'{"id": 42, "billing_status": "suspended"}',
	changed_at => '2026-03-03 08:00+00', version => '{crm:3}', event_id => 'crm-evt-1003');
SELECT id, billing_status FROM customer;

\echo
\echo '=== 4. A delayed webhook carrying an old revision ==='
\echo 'The customer changes their phone in the CRM (revision 4)...'
SELECT outcome, applied FROM sync_resolve.apply('customer', 'crm',
	'{"id": 42, "phone": "+1 555 0199"}',
	changed_at => '2026-03-04 12:00+00', version => '{crm:4}', event_id => 'crm-evt-1004');
\echo '...and then an old webhook from revision 2, stuck in a retry queue, finally arrives'
\echo 'with the old stage and the old phone number:'
SELECT outcome, applied FROM sync_resolve.apply('customer', 'crm',
	'{"id": 42, "phone": "+1 555 0100", "lifecycle_stage": "lead"}',
	changed_at => '2026-03-02 10:00+00', version => '{crm:2}', event_id => 'crm-evt-1002-retry');
\echo 'The same delivery twice is recognised too:'
SELECT outcome FROM sync_resolve.apply('customer', 'crm',
	'{"id": 42, "phone": "+1 555 0199"}',
	changed_at => '2026-03-04 12:00+00', version => '{crm:4}', event_id => 'crm-evt-1004');
SELECT id, phone, lifecycle_stage FROM customer;

\echo
\echo '=== 5. A real conflict, decided by a person ==='
\echo 'Finance raises the credit limit in the application to 20000; at the same time'
\echo 'billing''s risk engine lowers it to 2000.'
UPDATE customer SET credit_limit = 20000 WHERE id = 42;
SELECT outcome, applied, queued, review_ids FROM sync_resolve.apply('customer', 'billing',
	'{"id": 42, "credit_limit": 2000, "billing_status": "active"}',
	changed_at => '2026-03-05 16:00+00', version => '{billing:2}');
\echo 'billing_status (billing owns it) went through; credit_limit is held for review.'
\echo 'The review queue:'
SELECT id, column_name AS "column", source, local_value AS "local", incoming_value AS incoming,
	base_value AS base, status
FROM sync_resolve.review ORDER BY id;

\echo
\echo 'A credit manager calls the customer and settles on 8000:'
SELECT r.id AS review_id FROM sync_resolve.review r WHERE status = 'open' \gset
SELECT id, status, decision, resolved_by, note
FROM sync_resolve.resolve(:review_id, 'set_value', value => '8000',
	note => 'agreed with Acme''s CFO by phone');

\echo
\echo '=== 6. Carrying the changes out: the outbox ==='
\echo 'Every change the other systems do not hold yet waits in the outbox, one entry per'
\echo 'row and system, later changes merged in:'
SELECT id, target, op, payload, status FROM sync_resolve.outbox ORDER BY id;
\echo
\echo 'The CRM integration worker claims its entries, sends them, and confirms with the'
\echo 'record id the CRM gave:'
SELECT id, target, status, attempts FROM sync_resolve.claim_outbound('crm', max => 10);
SELECT o.id AS crm_entry, o.idempotency_key AS crm_key FROM sync_resolve.outbox o WHERE target = 'crm' \gset
SELECT id, status FROM sync_resolve.ack_outbound(:crm_entry, external_id => 'CRM-0042');
\echo 'The CRM then fires a webhook carrying the same values, with our idempotency key as'
\echo 'its delivery id. It is recognised as an echo of our own write: nothing changes,'
\echo 'and nothing is sent back.'
SELECT outcome, applied FROM sync_resolve.apply('customer', 'crm',
	'{"id": 42, "billing_status": "active", "credit_limit": 8000}',
	changed_at => '2026-03-06 09:00+00', version => '{crm:5}', event_id => :'crm_key');

\echo
\echo '=== The customer now ==='
SELECT * FROM customer;

\echo
\echo '=== The review queue ==='
SELECT id, column_name AS "column", source, local_value AS "local", incoming_value AS incoming,
	status, decision, note
FROM sync_resolve.review ORDER BY id;

\echo
\echo '=== Why does customer 42 look like this?  sync_resolve.explain() ==='
SELECT to_char(at, 'HH24:MI:SS.MS') AS at, source, kind, coalesce(column_name, '') AS "column", detail
FROM sync_resolve.explain('customer', '{"id": 42}');
