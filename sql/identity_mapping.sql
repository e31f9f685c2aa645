-- External systems in their own words (DESIGN 4, issue 4):
--   * identity: a CRM record id finds its row; a record created in the CRM
--     and here with the same email becomes one row (match_on), logged
--     'linked', its id recorded; a new record gets the key's default;
--   * a new row that clashes with another row's unique value goes to
--     review, not to a unique-violation error: from apply() and from a
--     source's INSERT through the trigger, for unique keys on columns, on
--     expressions, partial and deferrable;
--   * field_map: the CRM's field names, a conversion function per field
--     (two systems sending dates as MM/DD/YYYY and DD/MM/YYYY land on the
--     same date), an unknown field is an error unless the system ignores
--     unknown fields;
--   * the outbox speaks the target's words: claim_outbound returns its
--     field names, values and record id.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE person (
	id serial PRIMARY KEY,
	email text UNIQUE,
	full_name text,
	born date,
	stage text
);
INSERT INTO person (email, full_name) VALUES ('ada@example.com', 'Ada Lovelace');
SELECT sync_resolve.track('person', ARRAY['crm', 'billing'], 'latest', match_on => ARRAY['email']::name[]);

-- the CRM calls things its own way: Id is its record id, Email, Name, DOB
CREATE FUNCTION us_date(v jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
	AS $$ SELECT to_jsonb(to_date(v #>> '{}', 'MM/DD/YYYY')) $$;
CREATE FUNCTION us_date_out(v jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
	AS $$ SELECT to_jsonb(to_char((v #>> '{}')::date, 'MM/DD/YYYY')) $$;
CREATE FUNCTION eu_date(v jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
	AS $$ SELECT to_jsonb(to_date(v #>> '{}', 'DD/MM/YYYY')) $$;
INSERT INTO sync_resolve.field_map (relid, system, external_field, column_name, inbound_fn, outbound_fn) VALUES
	('person', 'crm', 'Id', '$external_id', NULL, NULL),
	('person', 'crm', 'Email', 'email', NULL, NULL),
	('person', 'crm', 'Name', 'full_name', NULL, NULL),
	('person', 'crm', 'DOB', 'born', 'us_date(jsonb)', 'us_date_out(jsonb)'),
	('person', 'billing', 'customer_ref', '$external_id', NULL, NULL),
	('person', 'billing', 'birth_date', 'born', 'eu_date(jsonb)', NULL);

-- the CRM creates Ada too, under its id 0031: linked to the existing row
SELECT outcome, key, applied FROM sync_resolve.apply('person', 'crm',
	'{"Id": "0031", "Email": "ada@example.com", "Name": "Ada King", "DOB": "12/10/1815"}');
SELECT id, email, full_name, born FROM person ORDER BY id;
SELECT system, external_id, key FROM sync_resolve.identity ORDER BY system, external_id;
SELECT kind, rule FROM sync_resolve.event WHERE relid = 'person'::regclass AND kind = 'linked';

-- its next update finds the row by the record id alone
SELECT outcome, key, applied FROM sync_resolve.apply('person', 'crm', '{"Id": "0031", "Name": "Ada, Countess of Lovelace"}');
SELECT full_name FROM person WHERE id = 1;

-- billing knows her as C-9 and sends her birth date the European way: the same date
SELECT outcome, key, applied FROM sync_resolve.apply('person', 'billing',
	'{"customer_ref": "C-9", "email": "ada@example.com", "birth_date": "10/12/1815"}');
SELECT born FROM person WHERE id = 1;

-- a record nobody has here: a new row, its key from the column default
SELECT outcome, key FROM sync_resolve.apply('person', 'crm', '{"Id": "0032", "Email": "alan@example.com", "Name": "Alan Turing"}');
SELECT id, email, full_name FROM person ORDER BY id;
SELECT external_id, key FROM sync_resolve.identity WHERE system = 'crm' ORDER BY external_id;
-- sent twice (a retried webhook): still one row
SELECT outcome, key FROM sync_resolve.apply('person', 'crm', '{"Id": "0032", "Email": "alan@example.com", "Name": "Alan Turing"}');
SELECT count(*) FROM person;
-- and twice in one batch: the second finds the row the first made
SELECT outcome, key FROM sync_resolve.apply_batch('person', 'crm',
	'[{"data": {"Id": "0033", "Name": "Kathleen Booth"}},
	  {"data": {"Id": "0033", "Name": "Kathleen Britten"}}]');
SELECT full_name FROM person WHERE full_name LIKE 'Kathleen%';
-- a row inserted here with a key the sequence has not given yet: the next
-- new record's key from the default is that row's.  That row is another
-- person's, and the record is not written over it (it was: Hedy became
-- Barbara, and 0034 was linked to her row)
INSERT INTO person (id, email, full_name) VALUES (4, 'hedy@example.com', 'Hedy Lamarr');
\set VERBOSITY terse
-- must fail
SELECT outcome, key FROM sync_resolve.apply('person', 'crm', '{"Id": "0034", "Email": "barbara@example.com", "Name": "Barbara Liskov"}');
\set VERBOSITY default
SELECT id, email, full_name FROM person WHERE id = 4;
SELECT count(*) FROM sync_resolve.identity WHERE external_id = '0034';
-- sent again, it gets the sequence's next key
SELECT outcome, key FROM sync_resolve.apply('person', 'crm', '{"Id": "0034", "Email": "barbara@example.com", "Name": "Barbara Liskov"}');

-- a new row whose email another row has, under another key: review, not an error
SELECT outcome, queued, array_length(review_ids, 1) AS reviews FROM sync_resolve.apply('person', 'billing',
	'{"id": 50, "email": "alan@example.com", "full_name": "A. Turing"}');
SELECT count(*) FROM person WHERE id = 50;
SELECT kind, column_name, columns, incoming_value FROM sync_resolve.review WHERE status = 'open';
-- the person fixes the email and takes it: the row is inserted
SELECT status FROM sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE status = 'open'),
	'set_value', '{"email": "a.turing@example.com", "full_name": "A. Turing"}');
SELECT id, email, full_name FROM person WHERE id = 50;

-- the same through the trigger: billing writes with plain SQL, sync_resolve.source
-- set.  A new row clashing on the email inserts nothing and waits in review ...
SET sync_resolve.source = 'billing';
INSERT INTO person (id, email, full_name) VALUES (51, 'alan@example.com', 'Alan T.') RETURNING id;
-- ... one that clashes with nothing is inserted as usual, RETURNING and all
INSERT INTO person (id, email, full_name) VALUES (52, 'grace@example.com', 'Grace Hopper') RETURNING id, email;
RESET sync_resolve.source;
SELECT id, email FROM person WHERE id IN (51, 52) ORDER BY id;
SELECT kind, key, columns, incoming_value FROM sync_resolve.review WHERE status = 'open';
-- take_incoming cannot write it while Alan has the email: the item stays open
SELECT sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE status = 'open'), 'take_incoming');
SELECT status FROM sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE status = 'open'),
	'set_value', '{"email": "alan.t@example.com", "full_name": "Alan T."}');
SELECT id, email FROM person WHERE id = 51;

-- a column sent twice, by its name and by the field mapped to it, is an
-- error (one of the two was taken before, by the order of the keys)
\set VERBOSITY terse
-- must fail
SELECT sync_resolve.apply('person', 'crm', '{"Id": "0031", "Name": "Ada A.", "full_name": "Ada B."}');
\set VERBOSITY default
SELECT full_name FROM person WHERE id = 1;
-- unknown fields are errors naming the field ...
SELECT sync_resolve.apply('person', 'crm', '{"Id": "0031", "Shoe_Size": 42}');
-- ... unless the system says it sends more than the table holds
UPDATE sync_resolve.system SET ignore_unknown_fields = true WHERE name = 'crm';
SELECT outcome FROM sync_resolve.apply('person', 'crm', '{"Id": "0031", "Shoe_Size": 42}');
UPDATE sync_resolve.system SET ignore_unknown_fields = false WHERE name = 'crm';

-- no key, no record id and no match: a clear error
SELECT sync_resolve.apply('person', 'crm', '{"Name": "Nobody"}');
-- a conversion function that cannot read the value names the column
SELECT sync_resolve.apply('person', 'crm', '{"Id": "0031", "DOB": "not a date"}');

-- outgoing: a local change reaches the CRM in its own words, with its record id
UPDATE person SET full_name = 'Ada Lovelace', born = '1815-12-10' WHERE id = 1;
SELECT target, external_id, payload FROM sync_resolve.claim_outbound('crm') ORDER BY id;
SELECT target, external_id, payload FROM sync_resolve.claim_outbound('billing') ORDER BY id;

-- match_on names a natural key: two rows with the same value cannot be linked
ALTER TABLE person DROP CONSTRAINT person_email_key;
INSERT INTO person (id, email) VALUES (100, 'twice@example.com'), (101, 'twice@example.com');
SELECT sync_resolve.apply('person', 'crm', '{"Id": "0099", "Email": "twice@example.com"}');

-- the maps are checked when written
INSERT INTO sync_resolve.field_map (relid, system, external_field, column_name) VALUES ('person', 'erp', 'x', 'email');
INSERT INTO sync_resolve.field_map (relid, system, external_field, column_name) VALUES ('person', 'crm', 'x', 'no_such_column');
INSERT INTO sync_resolve.field_map (relid, system, external_field, column_name, inbound_fn)
	VALUES ('person', 'crm', 'x', 'stage', 'lower(text)');

DROP TABLE person;

-- every kind of unique constraint: on an expression, partial, deferrable
CREATE TABLE handle (
	id int PRIMARY KEY,
	nick text,
	team text,
	active boolean DEFAULT true,
	CONSTRAINT handle_team_key UNIQUE (team) DEFERRABLE INITIALLY IMMEDIATE
);
CREATE UNIQUE INDEX handle_nick_idx ON handle (lower(nick)) WHERE active;
INSERT INTO handle VALUES (1, 'Ada', 'red');
SELECT sync_resolve.track('handle', ARRAY['crm'], 'latest');
-- apply(): a new row goes in (a deferrable constraint is no obstacle) ...
SELECT outcome, key FROM sync_resolve.apply('handle', 'crm', '{"id": 2, "nick": "alan", "team": "blue"}');
-- ... a clash on the deferrable constraint goes to review ...
SELECT outcome, key, queued FROM sync_resolve.apply('handle', 'crm', '{"id": 3, "nick": "grace", "team": "red"}');
-- ... and so does one on lower(nick), but only where the index's predicate holds
SELECT outcome, key FROM sync_resolve.apply('handle', 'crm', '{"id": 4, "nick": "ADA", "active": false}');
SELECT outcome, key, queued FROM sync_resolve.apply('handle', 'crm', '{"id": 5, "nick": "ADA"}');
-- through the trigger the same for lower(nick) ...
SET sync_resolve.source = 'crm';
INSERT INTO handle (id, nick) VALUES (6, 'Alan') RETURNING id;
INSERT INTO handle (id, nick, active) VALUES (7, 'alan', false) RETURNING id;
-- ... while a deferrable constraint is the table's to check when it says:
-- deferred, the transaction may fix the clash before commit
BEGIN;
SET CONSTRAINTS handle_team_key DEFERRED;
INSERT INTO handle (id, nick, team) VALUES (8, 'bob', 'blue');
UPDATE handle SET team = 'green' WHERE id = 8;
COMMIT;
RESET sync_resolve.source;
SELECT id, nick, team, active FROM handle ORDER BY id;
SELECT key, kind, columns, incoming_value FROM sync_resolve.review WHERE relid = 'handle'::regclass ORDER BY id;
DROP TABLE handle;
DROP FUNCTION us_date(jsonb), us_date_out(jsonb), eu_date(jsonb);
