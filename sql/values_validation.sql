-- What an incoming value must be (DESIGN 4-5, issue 4):
--   * value_map both ways: ServiceNow's "Critical" is Jira's "Blocker" is
--     our 'critical'; a value with no mapping follows the column's
--     unmapped action: pass, null, default, review, reject;
--   * allowed transitions and a check expression: an invalid change is
--     refused or held for review (on_invalid) and logged 'invalid'; under
--     'latest' the latest *valid* change wins;
--   * no false conflicts: numeric scale, time zones, jsonb key order are
--     compared by the type; normalization (trim, case) by the policy;
--   * tombstones: a delayed update of a deleted row is stale, until
--     prune_tombstones forgets the delete.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE issue (
	id int PRIMARY KEY,
	priority text DEFAULT 'normal',
	state text,
	amount numeric,
	due timestamptz,
	extra jsonb,
	owner_email text
);
SELECT sync_resolve.track('issue', ARRAY['crm', 'billing'], 'latest');
INSERT INTO sync_resolve.value_map (relid, column_name, system, external_value, local_value) VALUES
	('issue', 'priority', 'crm', 'Critical', 'critical'),
	('issue', 'priority', 'crm', 'P1', 'critical'),
	('issue', 'priority', 'crm', 'Low', 'low'),
	('issue', 'priority', 'billing', 'Blocker', 'critical'),
	('issue', 'priority', 'billing', 'Minor', 'low');

-- mapped values, both ways
SELECT outcome, applied FROM sync_resolve.apply('issue', 'crm', '{"id": 1, "priority": "Critical"}', '2030-01-01');
SELECT outcome, applied FROM sync_resolve.apply('issue', 'billing', '{"id": 2, "priority": "Blocker"}', '2030-01-01');
SELECT outcome, applied FROM sync_resolve.apply('issue', 'crm', '{"id": 3, "priority": "P1"}', '2030-01-01');
SELECT id, priority FROM issue ORDER BY id;
-- issue 1 reaches billing as "Blocker"; going out, crm's first name for critical is "Critical"
UPDATE issue SET priority = 'low' WHERE id = 2;
SELECT target, payload FROM sync_resolve.claim_outbound('billing') ORDER BY id;
SELECT target, payload FROM sync_resolve.claim_outbound('crm') ORDER BY id;

-- a custom tier nobody mapped, under each unmapped action
SELECT sync_resolve.set_policy('issue', 'priority', 'latest', unmapped => 'pass');
SELECT outcome, applied, rejected FROM sync_resolve.apply('issue', 'crm', '{"id": 1, "priority": "Tier 9"}', '2030-01-02');
SELECT sync_resolve.set_policy('issue', 'priority', 'latest', unmapped => 'null');
SELECT outcome, applied, rejected FROM sync_resolve.apply('issue', 'crm', '{"id": 1, "priority": "Tier 8"}', '2030-01-03');
SELECT sync_resolve.set_policy('issue', 'priority', 'latest', unmapped => 'default');
SELECT outcome, applied, rejected FROM sync_resolve.apply('issue', 'crm', '{"id": 1, "priority": "Tier 7"}', '2030-01-04');
SELECT priority FROM issue WHERE id = 1;
SELECT sync_resolve.set_policy('issue', 'priority', 'latest', unmapped => 'reject');
SELECT outcome, applied, rejected FROM sync_resolve.apply('issue', 'crm', '{"id": 1, "priority": "Tier 6", "state": "new"}', '2030-01-05');
SELECT priority, state FROM issue WHERE id = 1;
SELECT kind, column_name, incoming_value, decision, rule FROM sync_resolve.event
WHERE relid = 'issue'::regclass AND kind = 'unmapped';
SELECT sync_resolve.set_policy('issue', 'priority', 'latest', unmapped => 'review');
SELECT outcome, queued FROM sync_resolve.apply('issue', 'crm', '{"id": 1, "priority": "Tier 5"}', '2030-01-06');
SELECT kind, column_name, incoming_value FROM sync_resolve.review WHERE status = 'open';
SELECT status FROM sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE status = 'open'), 'set_value', '"low"');
SELECT priority FROM issue WHERE id = 1;
-- a local value must be a value of the column
INSERT INTO sync_resolve.value_map VALUES ('issue', 'amount', 'crm', 'lots', 'many');

-- transitions: new -> open -> closed, and a row may start as new
INSERT INTO sync_resolve.transition (relid, column_name, from_value, to_value) VALUES
	('issue', 'state', NULL, 'new'), ('issue', 'state', 'new', 'open'), ('issue', 'state', 'open', 'closed');
SELECT sync_resolve.set_policy('issue', 'state', 'latest', on_invalid => 'reject');
SELECT outcome, applied, rejected FROM sync_resolve.apply('issue', 'crm', '{"id": 10, "state": "closed"}', '2030-01-01');
SELECT outcome, applied FROM sync_resolve.apply('issue', 'crm', '{"id": 10, "state": "new"}', '2030-01-01');
SELECT outcome, applied, rejected FROM sync_resolve.apply('issue', 'crm', '{"id": 10, "state": "closed"}', '2030-01-02');
SELECT kind, column_name, decision, rule FROM sync_resolve.event WHERE relid = 'issue'::regclass AND key = '{"id": 10}' AND kind = 'invalid';
-- latest is the latest valid change: billing's later but invalid change loses to crm's earlier valid one
SELECT outcome, applied FROM sync_resolve.apply('issue', 'crm', '{"id": 10, "state": "open"}', '2030-01-03');
SELECT outcome, applied, rejected FROM sync_resolve.apply('issue', 'billing', '{"id": 10, "state": "new"}', '2030-01-04');
SELECT state FROM issue WHERE id = 10;
-- on_invalid = review: held for a person
SELECT sync_resolve.set_policy('issue', 'state', 'latest', on_invalid => 'review');
SELECT outcome, queued FROM sync_resolve.apply('issue', 'billing', '{"id": 10, "state": "reopened"}', '2030-01-05');
SELECT kind, column_name, incoming_value, reason FROM sync_resolve.review WHERE status = 'open';
-- a transition's values must be values of the column
INSERT INTO sync_resolve.transition VALUES ('issue', 'amount', '1', 'x');

-- a check: amounts are not negative
SELECT sync_resolve.set_policy('issue', 'amount', 'latest', check_expr => 'amount >= 0');
SELECT outcome, applied, rejected FROM sync_resolve.apply('issue', 'billing', '{"id": 20, "amount": -5}', '2030-01-01');
SELECT outcome, applied FROM sync_resolve.apply('issue', 'billing', '{"id": 20, "amount": 5}', '2030-01-02');
SELECT amount FROM issue WHERE id = 20;
-- a check that is not a condition is refused when set
SELECT sync_resolve.set_policy('issue', 'amount', 'latest', check_expr => 'amount +');
-- and so is one that is a set of values, not one (it was taken, and the
-- first value it gave none for failed with an internal error, XX000)
SELECT sync_resolve.set_policy('issue', 'amount', 'latest', check_expr => 'generate_series(1, amount) > 0');
SELECT sync_resolve.set_policy('issue', 'amount', 'latest', check_expr => 'count(amount) > 0');
SELECT sync_resolve.set_policy('issue', 'amount', 'latest', unmapped => 'sometimes');

-- no false conflicts: 5 = 5.00, the same instant in two time zones, jsonb in any key order
SELECT sync_resolve.set_policy('issue', 'amount', 'review');
SELECT sync_resolve.set_policy('issue', 'due', 'review');
SELECT sync_resolve.set_policy('issue', 'extra', 'review');
SELECT outcome FROM sync_resolve.apply('issue', 'crm', '{"id": 21, "amount": 5, "due": "2030-01-01 12:00+00", "extra": {"a": 1, "b": 2}}', '2030-01-03');
UPDATE issue SET amount = 5.00, due = '2030-01-01 13:00+01', extra = '{"b": 2,   "a": 1}' WHERE id = 21;
SELECT outcome, applied, kept, queued FROM sync_resolve.apply('issue', 'crm', '{"id": 21, "amount": 5.0, "due": "2030-01-01 07:00-05", "extra": {"b": 2, "a": 1}}', '2030-01-04');
SELECT count(*) AS open_reviews FROM sync_resolve.review WHERE status = 'open' AND key = '{"id": 21}';

-- normalization: crm trims and upper-cases emails; that is no change here
SELECT sync_resolve.set_policy('issue', 'owner_email', 'review', normalization => ARRAY['trim', 'case']);
SELECT outcome FROM sync_resolve.apply('issue', 'crm', '{"id": 30, "owner_email": "ann@example.com"}', '2030-01-01');
UPDATE issue SET owner_email = 'Ann@Example.com' WHERE id = 30;
SELECT outcome, queued FROM sync_resolve.apply('issue', 'crm', '{"id": 30, "owner_email": " ANN@EXAMPLE.COM "}', '2030-01-02');
SELECT count(*) AS open_reviews FROM sync_resolve.review WHERE status = 'open' AND key = '{"id": 30}';
SELECT sync_resolve.set_policy('issue', 'owner_email', 'review', normalization => ARRAY['upper']);

-- tombstones: crm deletes issue 40; billing's update, made before, arrives late: stale
SELECT outcome FROM sync_resolve.apply('issue', 'crm', '{"id": 40, "state": "new"}', '2020-01-01');
SELECT outcome FROM sync_resolve.apply_delete('issue', 'crm', '{"id": 40}', '2020-01-03');
SELECT outcome FROM sync_resolve.apply('issue', 'billing', '{"id": 40, "amount": 2}', '2020-01-02');
SELECT count(*) FROM issue WHERE id = 40;
-- a tombstone younger than the age is kept; pruned, the delete is forgotten
SELECT sync_resolve.prune_tombstones('100 years');
SELECT count(*) AS shadow_rows FROM sync_resolve.shadow('issue', '{"id": 40}');
SELECT sync_resolve.prune_tombstones('1 day');
SELECT count(*) AS shadow_rows FROM sync_resolve.shadow('issue', '{"id": 40}');
SELECT outcome FROM sync_resolve.apply('issue', 'billing', '{"id": 40, "amount": 2}', '2020-01-02');
SELECT sync_resolve.prune_tombstones('-1 day');

-- a version whose local counter (2^62 or more) no change here can have
-- given: refused, from apply(), a batch element and an acknowledgement,
-- and nothing is written (before, apply() took it, and every later local
-- change of the row failed: local's counter could not pass the largest int8)
\set VERBOSITY terse
-- must fail
SELECT outcome FROM sync_resolve.apply('issue', 'crm', '{"id": 41, "state": "new"}', NULL,
	'{crm:1,local:9223372036854775807}');
-- must fail
SELECT outcome FROM sync_resolve.apply_batch('issue', 'crm',
	'[{"op": "upsert", "data": {"id": 41, "state": "new"}, "version": {"crm": 1, "local": 4611686018427387904}}]');
\set VERBOSITY default
SELECT count(*) AS rows_41 FROM issue WHERE id = 41;
-- a large one that leaves room is taken, and the row stays writable here
SELECT outcome FROM sync_resolve.apply('issue', 'crm', '{"id": 41, "state": "new"}', NULL,
	'{crm:1,local:4611686018427387903}');
UPDATE issue SET owner_email = 'here@example.com' WHERE id = 41;
SELECT version FROM sync_resolve.shadow('issue', '{"id": 41}') WHERE system = 'local';
-- a counter the row has reached itself comes back as crm was given it
SELECT outcome FROM sync_resolve.apply('issue', 'crm', '{"id": 41, "state": "new", "amount": 3}', NULL,
	'{crm:2,local:4611686018427387904}');
INSERT INTO issue (id, owner_email) VALUES (42, 'here@example.com');
SELECT id AS entry FROM sync_resolve.claim_outbound('crm') WHERE key = '{"id": 42}' \gset
\set VERBOSITY terse
-- must fail
SELECT status FROM sync_resolve.ack_outbound(:entry, version => '{crm:1,local:9223372036854775807}');
\set VERBOSITY default
SELECT status FROM sync_resolve.outbox WHERE id = :entry;

DROP TABLE issue;
