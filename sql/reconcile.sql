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
-- crm never gets what was queued for it: each entry waiting for crm fails
-- its one attempt (dead), so that nothing is settling; how many there were
CREATE FUNCTION crm_lost() RETURNS bigint LANGUAGE sql AS $$
	SELECT set_config('sync_resolve.max_attempts', '1', true);
	SELECT count(sync_resolve.fail_outbound(id, 'lost')) FROM sync_resolve.claim_outbound('crm');
$$;

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
-- note of 3 waits for a person, and so does row 5, which crm held but no
-- longer has: an item as for a delete from crm crossing a change here
SELECT key, kind, column_name, local_value, incoming_value, strategy FROM sync_resolve.review
WHERE status = 'open' ORDER BY id;
SELECT key, column_name, decision, untimed(rule) AS rule FROM sync_resolve.event
WHERE kind = 'reconciled' ORDER BY id;
SELECT kind, untimed(detail) AS detail FROM sync_resolve.explain('article', '{"id": 1}')
WHERE kind = 'reconciled';
-- the person keeps row 5: crm gets it back
SELECT (sync_resolve.resolve(id, 'keep_local')).status FROM sync_resolve.review
WHERE status = 'open' AND key = '{"id": 5}';
SELECT key, op, cause FROM sync_resolve.outbox
WHERE target = 'crm' AND status = 'pending' AND key = '{"id": 5}';
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

-- Records found by match_on, a serial key, values apply() sets aside and a
-- merge strategy: rc_gadget is keyed by a sequence, crm's records carry no key
-- and are found by sku; status has a value map whose unknown values go to
-- review, qty takes the larger value, name has a check.
CREATE TABLE rc_gadget (id serial PRIMARY KEY, sku text UNIQUE, status text, qty int, name text);
SELECT sync_resolve.track('rc_gadget', ARRAY['crm'], 'latest', match_on => ARRAY['sku']);
SELECT sync_resolve.set_policy('rc_gadget', 'status', 'latest', unmapped => 'review');
SELECT sync_resolve.set_policy('rc_gadget', 'qty', 'max');
SELECT sync_resolve.set_policy('rc_gadget', 'name', 'latest', check_expr => 'length(name) < 10');
INSERT INTO sync_resolve.value_map (relid, column_name, system, external_value, local_value)
VALUES ('rc_gadget', 'status', 'crm', 'A', 'active');
SELECT count(*) FROM sync_resolve.apply_batch('rc_gadget', 'crm',
	(SELECT jsonb_agg(jsonb_build_object('changed_at', '2000-01-01', 'data',
		jsonb_build_object('sku', 'g' || g, 'status', 'A', 'qty', 5, 'name', 'gadget ' || g)))
	 FROM generate_series(1, 2) g));
-- qty of g1 rises to 10 here; crm never hears of it
UPDATE rc_gadget SET qty = 10 WHERE sku = 'g1';
SELECT crm_lost();
-- crm's records: g1 with qty 7 (both changed it: max keeps 10), a status
-- it has no mapping for and a name failing the check; g3 new
CREATE TABLE rc_gadget_snap (sku text, status text, qty int, name text);
INSERT INTO rc_gadget_snap VALUES
	('g1', 'ZZZ', 7, 'a name far too long'),
	('g2', 'A', 5, 'gadget 2'),
	('g3', 'A', 1, 'gadget 3');
SELECT last_value AS seq_before FROM rc_gadget_id_seq \gset
-- reading takes no key from the sequence (a new record has none yet) and
-- locks no row: it runs in a read-only transaction
BEGIN READ ONLY;
SELECT key, column_name, local_value, external_value, action, reason
FROM sync_resolve.reconcile('rc_gadget', 'crm', 'rc_gadget_snap', settle => '0 seconds')
ORDER BY key->>'id' NULLS LAST, column_name;
COMMIT;
SELECT last_value = :seq_before AS sequence_untouched FROM rc_gadget_id_seq;
-- repaired: g1 keeps qty 10 and its name, and crm hears both; ZZZ waits
-- for a person (status stays as it is); g3 comes in as a new row
SELECT key, column_name, action
FROM sync_resolve.reconcile('rc_gadget', 'crm', 'rc_gadget_snap', settle => '0 seconds', repair => true)
ORDER BY key->>'id' NULLS LAST, column_name;
SELECT sku, status, qty, name FROM rc_gadget ORDER BY sku;
SELECT key->>'id' AS id, column_name, kind, incoming_value FROM sync_resolve.review
WHERE relid = 'rc_gadget'::regclass AND status = 'open' ORDER BY id;
SELECT key->>'id' AS id, payload FROM sync_resolve.outbox
WHERE relid = 'rc_gadget'::regclass AND status = 'pending' ORDER BY id;

SELECT count(sync_resolve.ack_outbound(id)) AS crm_has_it FROM sync_resolve.claim_outbound('crm');

-- Rows deleted here that crm still has, as apply() decides them: m1 crm
-- never changed since (crm is to delete it); m2 crm changed since
-- (on_delete_conflict decides: review, then keep); m3 crm deleted itself
-- and has again (a new record, taken)
CREATE TABLE rc_memo (id int PRIMARY KEY, body text);
SELECT sync_resolve.track('rc_memo', ARRAY['crm'], 'latest');
SELECT count(*) FROM sync_resolve.apply_batch('rc_memo', 'crm',
	'[{"data": {"id": 1, "body": "one"}, "changed_at": "2000-01-01"},
	  {"data": {"id": 2, "body": "two"}, "changed_at": "2000-01-01"},
	  {"data": {"id": 3, "body": "three"}, "changed_at": "2000-01-01"}]');
DELETE FROM rc_memo WHERE id IN (1, 2);
SELECT crm_lost();
SELECT outcome FROM sync_resolve.apply_delete('rc_memo', 'crm', '{"id": 3}', '2000-01-02');
CREATE TABLE rc_memo_snap (id int, body text);
INSERT INTO rc_memo_snap VALUES (1, 'one'), (2, 'two, edited'), (3, 'three again');
SELECT key, action, untimed(reason) AS reason
FROM sync_resolve.reconcile('rc_memo', 'crm', 'rc_memo_snap', settle => '0 seconds') ORDER BY key->>'id';
UPDATE sync_resolve.tracked SET on_delete_conflict = 'keep' WHERE relid = 'rc_memo'::regclass;
SELECT key, action FROM sync_resolve.reconcile('rc_memo', 'crm', 'rc_memo_snap', settle => '0 seconds')
WHERE key->>'id' = '2';
UPDATE sync_resolve.tracked SET on_delete_conflict = 'review' WHERE relid = 'rc_memo'::regclass;
SELECT key, action FROM sync_resolve.reconcile('rc_memo', 'crm', 'rc_memo_snap', settle => '0 seconds',
											   repair => true) ORDER BY key->>'id';
SELECT * FROM rc_memo ORDER BY id;
SELECT key, kind, status FROM sync_resolve.review WHERE relid = 'rc_memo'::regclass;
SELECT key, op FROM sync_resolve.outbox WHERE relid = 'rc_memo'::regclass AND status = 'pending';

-- The rows a snapshot has no record of are found by sorting the keys of its
-- records (on disk beyond work_mem) and walking them beside the table's rows
-- read in key order: a key of text, ordered by its collation (ICU's, not
-- byte order), and int; 24,000
-- rows from before tracking; duplicate records, and one of a row not here.
-- Exactly the rows without a record are missing (n = 7, 1007, 2007, 3007 of
-- each region).
CREATE TABLE rc_many (region text COLLATE "und-x-icu", n int, qty int, PRIMARY KEY (region, n));
INSERT INTO rc_many SELECT r, n, 0
FROM unnest(ARRAY['a', 'B', 'b', 'Ä', 'z ', 'z']) r, generate_series(1, 4000) n;
SELECT sync_resolve.track('rc_many', ARRAY['crm'], 'latest');
CREATE TABLE rc_many_snap AS SELECT * FROM rc_many WHERE n % 1000 <> 7 ORDER BY random();
INSERT INTO rc_many_snap SELECT * FROM rc_many WHERE n < 50 AND n <> 7;
INSERT INTO rc_many_snap VALUES ('c', 1, 0);
SET work_mem = '64kB';
CREATE TABLE rc_many_out AS
SELECT * FROM sync_resolve.reconcile('rc_many', 'crm', 'rc_many_snap', settle => '0 seconds');
RESET work_mem;
SELECT action, count(*) FROM rc_many_out GROUP BY action ORDER BY action;
SELECT count(*) AS missing_as_expected FROM rc_many_out o JOIN rc_many m
	ON o.key = jsonb_build_object('region', m.region, 'n', m.n)
WHERE o.action = 'insert_external' AND m.n % 1000 = 7;
SELECT key FROM rc_many_out WHERE action = 'insert_local';
-- repair applies the records in runs, each in one subtransaction, as
-- apply_batch(on_error => 'reject') does: 300 rows crm changed, 24 rows to
-- send it and one new row take a few transaction ids, not one each (325)
UPDATE rc_many_snap SET qty = 1 WHERE n BETWEEN 100 AND 149;
BEGIN;
SELECT pg_current_xact_id() AS repair_xid \gset
SELECT action, count(*)
FROM sync_resolve.reconcile('rc_many', 'crm', 'rc_many_snap', settle => '0 seconds', repair => true)
GROUP BY action ORDER BY action;
COMMIT;
SELECT pg_current_xact_id()::text::bigint - :'repair_xid'::text::bigint < 40 AS few_transaction_ids;
SELECT count(*) AS taken FROM rc_many WHERE qty = 1;
SELECT count(*) AS queued_for_crm FROM sync_resolve.outbox WHERE relid = 'rc_many'::regclass;

-- A column group is listed column by column but decided as one, as apply()
-- decides it.  crm held the old address; here the customer moved (street,
-- city, zip); crm's snapshot, captured later, has the old street and zip and
-- a corrected city.  The city conflicts, so the group conflicts, and crm's
-- later address wins whole: street and zip, changed only here, are taken
-- from crm with the city, not sent to it (no address of two halves).
CREATE TABLE rc_account (id int PRIMARY KEY, street text, city text, zip text);
SELECT sync_resolve.track('rc_account', ARRAY['crm'], 'latest');
SELECT count(*) FROM (
	SELECT sync_resolve.set_policy('rc_account', c, 'latest', col_group => 'address')
	FROM unnest(ARRAY['street', 'city', 'zip']) c) p;
SELECT outcome FROM sync_resolve.apply('rc_account', 'crm',
	'{"id": 1, "street": "1 Old Rd", "city": "Lyon", "zip": "69001"}', '2000-01-01');
UPDATE rc_account SET street = '9 New St', city = 'Paris', zip = '75001' WHERE id = 1;
-- crm never got the move: its entries failed (dead), so nothing is settling
SELECT crm_lost();
CREATE TABLE rc_account_snap (id int, street text, city text, zip text);
INSERT INTO rc_account_snap VALUES (1, '1 Old Rd', 'Lyon 1er', '69001');
SELECT column_name, local_value, external_value, action, untimed(reason) AS reason
FROM sync_resolve.reconcile('rc_account', 'crm', 'rc_account_snap', captured_at => '2999-01-01',
							settle => '0 seconds')
ORDER BY column_name;
SELECT column_name, action FROM sync_resolve.reconcile('rc_account', 'crm', 'rc_account_snap',
	captured_at => '2999-01-01', settle => '0 seconds', repair => true)
ORDER BY column_name;
-- repaired: the row holds crm's address, and nothing half of it goes to crm
SELECT street, city, zip FROM rc_account;
SELECT payload FROM sync_resolve.outbox
WHERE relid = 'rc_account'::regclass AND status = 'pending';
-- the engine gets every member the snapshot has, as apply() gets the whole
-- record: crm learnt the move of row 2 but typed the city its own way; the
-- street and zip it holds are the row's, and stay (given only the city,
-- the engine would have put back crm's base: 1 Old Rd, 69001)
SELECT outcome FROM sync_resolve.apply('rc_account', 'crm',
	'{"id": 2, "street": "1 Old Rd", "city": "Lyon", "zip": "69001"}', '2000-01-01');
UPDATE rc_account SET street = '9 New St', city = 'Paris', zip = '75001' WHERE id = 2;
SELECT crm_lost();
TRUNCATE rc_account_snap;
INSERT INTO rc_account_snap VALUES (2, '9 New St', 'PARIS', '75001');
SELECT key, column_name, action FROM sync_resolve.reconcile('rc_account', 'crm', 'rc_account_snap',
	captured_at => '2999-01-01', settle => '0 seconds', repair => true)
WHERE key = '{"id": 2}';
SELECT street, city, zip FROM rc_account WHERE id = 2;
-- a group's custom function decides the group once, as in apply(), not
-- each member on its own (it returns an object of the group's columns)
CREATE TABLE rc_calls (member text);
CREATE FUNCTION rc_addr(c sync_resolve.conflict) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO rc_calls VALUES (c.column_name);
	RETURN jsonb_build_object('city', c.incoming_value->'city', 'zip', c.local_value->'zip');
END
$$;
CREATE TABLE rc_place (id int PRIMARY KEY, city text, zip int);
SELECT sync_resolve.track('rc_place', ARRAY['crm'], 'latest');
SELECT count(*) FROM (
	SELECT sync_resolve.set_policy('rc_place', c, 'custom', col_group => 'addr',
								   custom_fn => 'rc_addr(sync_resolve.conflict)')
	FROM unnest(ARRAY['city', 'zip']) c) p;
SELECT outcome FROM sync_resolve.apply('rc_place', 'crm', '{"id": 1, "city": "Lyon", "zip": 69001}', '2000-01-01');
UPDATE rc_place SET city = 'Paris', zip = 75001;
SELECT crm_lost();
CREATE TABLE rc_place_snap (id int, city text, zip int);
INSERT INTO rc_place_snap VALUES (1, 'Lille', 59000);
SELECT column_name, action, reason
FROM sync_resolve.reconcile('rc_place', 'crm', 'rc_place_snap', settle => '0 seconds')
ORDER BY column_name;
SELECT member, count(*) AS calls FROM rc_calls GROUP BY member;

-- bad arguments
\set VERBOSITY terse
-- must fail: a system the table does not sync with
SELECT * FROM sync_resolve.reconcile_summary('article', 'erp', 'crm_snap');
-- must fail: a table not tracked
SELECT * FROM sync_resolve.reconcile('crm_snap', 'crm', 'crm_snap');
-- a record that cannot be taken (a value not of its column's type, a field
-- that names no column) is left to a person, under its key when its key can
-- be read alone, and the others are compared; it counts in the summary, and
-- matches nothing
CREATE TABLE odd_snap (id int, qty text);
INSERT INTO odd_snap VALUES (1, 'lots'), (2, '21');
SELECT key, column_name, external_value, action, untimed(reason) AS reason
FROM sync_resolve.reconcile('article', 'crm', 'odd_snap', settle => '0 seconds')
WHERE key IS NULL OR key->>'id' IN ('1', '2') ORDER BY key->>'id' NULLS FIRST;
CREATE TABLE odd_snap2 (id int, colour text);
INSERT INTO odd_snap2 VALUES (1, 'red');
SELECT key, external_value, action, reason
FROM sync_resolve.reconcile('article', 'crm', 'odd_snap2') WHERE external_value ? 'colour';
SELECT external_rows, matches FROM sync_resolve.reconcile_summary('article', 'crm', 'odd_snap');
-- the row of such a record is not also missing from the snapshot: for a row
-- crm never sent (here, rows from before tracking), that would have repair
-- send crm a second copy of a record it holds.  Row 2 crm has no record of.
CREATE TABLE rc_pad (id int PRIMARY KEY, qty int);
INSERT INTO rc_pad VALUES (1, 1), (2, 2);
SELECT sync_resolve.track('rc_pad', ARRAY['crm'], 'latest');
CREATE TABLE rc_pad_snap (id int, qty text);
INSERT INTO rc_pad_snap VALUES (1, 'lots');
SELECT key, external_value, action, untimed(reason) AS reason
FROM sync_resolve.reconcile('rc_pad', 'crm', 'rc_pad_snap', settle => '0 seconds', repair => true)
ORDER BY key->>'id';
SELECT key, op FROM sync_resolve.outbox WHERE relid = 'rc_pad'::regclass ORDER BY id;
-- a key found by match_on: g2's record, its qty not a number, names g2's
-- row; g9 names none (a new record's key would come from the sequence)
CREATE TABLE rc_gadget_odd (sku text, qty text);
INSERT INTO rc_gadget_odd VALUES ('g2', 'some'), ('g9', 'some');
SELECT key = (SELECT jsonb_build_object('id', id) FROM rc_gadget WHERE sku = 'g2') AS g2_row,
	external_value, action
FROM sync_resolve.reconcile('rc_gadget', 'crm', 'rc_gadget_odd', settle => '0 seconds')
WHERE action = 'manual_review' AND external_value IS NOT NULL ORDER BY external_value->>'sku';
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

DROP TABLE article, crm_snap, same_snap, qty_snap, crm_after, crm_fields, odd_snap, odd_snap2,
	rc_gadget, rc_gadget_snap, rc_memo, rc_memo_snap;
DROP FUNCTION untimed(text);
