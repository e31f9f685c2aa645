-- Column groups are decided together (no address made of two halves), and
-- writers / on_unauthorized decide who may change a column at all.
\set ECHO none
\i sql/include/setup.psql
\i sql/include/masked.psql
\set ECHO all

CREATE TABLE account (id int PRIMARY KEY, street text, city text, zip text, note text);
SELECT sync_resolve.track('account', ARRAY['crm', 'billing'], default_strategy => 'latest');
SELECT sync_resolve.set_policy('account', c, 'latest', col_group => 'address')
FROM unnest(ARRAY['street', 'city', 'zip']) AS c;

-- crm knows the old address
SELECT outcome FROM sync_resolve.apply('account', 'crm',
	'{"id": 1, "street": "1 Old Rd", "city": "Lyon", "zip": "69001"}', '2030-01-01');
-- the customer moves: local changes street and zip
UPDATE account SET street = '9 New St', zip = '75001', city = 'Paris' WHERE id = 1;
-- crm, later, corrects only the city (a typo fix it made after the move
-- was reported to it): city conflicts, so the whole group is decided as one,
-- and crm's later change wins it: street and zip are crm's too (its base)
SELECT outcome, applied, kept FROM sync_resolve.apply('account', 'crm', '{"id": 1, "city": "Lyon 1er"}', '2999-01-01');
SELECT street, city, zip FROM account WHERE id = 1;
SELECT column_name, old_value, incoming_value, new_value, decision FROM sync_resolve.event
WHERE kind = 'conflict' AND relid = 'account'::regclass ORDER BY id;

-- the same with the local side winning (crm's fix is older than the
-- local move): the local address stays whole
SELECT outcome FROM sync_resolve.apply('account', 'crm',
	'{"id": 2, "street": "1 Old Rd", "city": "Lyon", "zip": "69001"}', '2000-01-01');
UPDATE account SET street = '9 New St', zip = '75001', city = 'Paris' WHERE id = 2;
SELECT outcome, applied, kept FROM sync_resolve.apply('account', 'crm', '{"id": 2, "city": "Lyon 1er"}', '2000-01-02');
SELECT street, city, zip FROM account WHERE id = 2;

-- a column outside the group is decided on its own: crm created the row
-- without a note, so the empty note is crm's own, and its first note is
-- taken without a conflict
SELECT outcome, applied FROM sync_resolve.apply('account', 'crm', '{"id": 2, "note": "vip"}', '2000-01-03');
SELECT pg_temp.masked(detail) FROM sync_resolve.explain('account', '{"id": 2}') WHERE kind = 'conflict';

-- a group that goes to review is one item, decided as one
SELECT sync_resolve.set_policy('account', c, 'review', col_group => 'address')
FROM unnest(ARRAY['street', 'city', 'zip']) AS c;
SELECT outcome FROM sync_resolve.apply('account', 'crm',
	'{"id": 3, "street": "1 Old Rd", "city": "Lyon", "zip": "69001"}', '2030-01-01');
UPDATE account SET city = 'Paris' WHERE id = 3;
SELECT outcome, queued FROM sync_resolve.apply('account', 'crm', '{"id": 3, "street": "2 Old Rd", "city": "Nice"}', '2030-01-02');
SELECT id AS group_review, column_name, columns, local_value, incoming_value FROM sync_resolve.review WHERE status = 'open' \gset
SELECT :group_review, :'column_name', :'columns', :'local_value', :'incoming_value';
SELECT status FROM sync_resolve.resolve(:group_review, 'set_value',
	'{"street": "2 Old Rd", "city": "Nice", "zip": "06000"}');
SELECT street, city, zip FROM account WHERE id = 3;

-- a group's columns must agree on their policy (checked at commit)
\set VERBOSITY terse
-- must fail
SELECT sync_resolve.set_policy('account', 'zip', 'latest', col_group => 'address');
-- must fail: a group takes whole values from one side; sum_delta cannot
CREATE TABLE counted (id int PRIMARY KEY, a int, b int);
SELECT sync_resolve.track('counted', ARRAY['crm']);
SELECT sync_resolve.set_policy('counted', 'a', 'sum_delta', col_group => 'g');
\set VERBOSITY default

-- writers: billing owns the billing status; crm may not change it
CREATE TABLE customer (id int PRIMARY KEY, status text, plan text, vip boolean);
SELECT sync_resolve.track('customer', ARRAY['crm', 'billing'], default_strategy => 'latest');
SELECT sync_resolve.set_policy('customer', 'status', 'owner', owner => 'billing');
SELECT sync_resolve.set_policy('customer', 'plan', 'latest', writers => ARRAY['billing', 'local'],
	on_unauthorized => 'review');
SELECT sync_resolve.set_policy('customer', 'vip', 'latest', writers => ARRAY['local'],
	on_unauthorized => 'accept');
INSERT INTO customer VALUES (1, 'active', 'basic', false);

-- reject: refused, logged, the rest of the image still applies
SELECT outcome, applied, rejected FROM sync_resolve.apply('customer', 'crm', '{"id": 1, "status": "churned"}');
SELECT outcome, applied, rejected FROM sync_resolve.apply('customer', 'billing', '{"id": 1, "status": "past_due"}');
-- sending the value the row already holds is no change, so nothing to refuse
SELECT outcome, applied, rejected FROM sync_resolve.apply('customer', 'crm', '{"id": 1, "status": "past_due"}');
-- review: a person decides whether crm may change the plan this time
SELECT outcome, queued FROM sync_resolve.apply('customer', 'crm', '{"id": 1, "plan": "pro"}');
SELECT kind, column_name, source, incoming_value, reason FROM sync_resolve.review
WHERE relid = 'customer'::regclass ORDER BY id;
-- accept: taken, but logged as unauthorized
SELECT outcome, applied FROM sync_resolve.apply('customer', 'crm', '{"id": 1, "vip": true}');
SELECT * FROM customer;
SELECT kind, column_name, decision, rule FROM sync_resolve.event
WHERE relid = 'customer'::regclass AND kind IN ('unauthorized', 'review_opened') ORDER BY id;

-- an insert from a system that may not write a column leaves that column out
SELECT outcome, applied, rejected FROM sync_resolve.apply('customer', 'crm', '{"id": 2, "status": "active", "vip": true}');
SELECT * FROM customer WHERE id = 2;
