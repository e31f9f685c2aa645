-- apply() writes the tracked row itself, without an UPDATE statement, where
-- nothing such a statement does besides storing the values applies: the
-- table's only triggers are sync_resolve's own, it has no row security,
-- rules, inheritance children or generated columns, no column has a typmod
-- to coerce to or a domain to check, and the caller may update and read the
-- whole table.  What the table enforces holds on that path too (NOT NULL,
-- CHECK and unique constraints refuse the write with the UPDATE's errors),
-- values go from NULL and back and are TOASTed, and a row whose new version
-- leaves its page is indexed anew.  Where a condition fails, the UPDATE
-- statement runs: a trigger of the table fires, what it changes besides is
-- recorded as the table's own doing, and where it skips the write the row
-- stays as it was and the history says so.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE gadget (id int PRIMARY KEY, name text NOT NULL, qty int CHECK (qty >= 0),
					 sku text UNIQUE, note text);
INSERT INTO gadget SELECT g, 'gadget ' || g, g, 'S-' || g, NULL FROM generate_series(1, 20) g;
SELECT sync_resolve.track('gadget', ARRAY['crm', 'billing'], 'latest');

-- a change, and a column from a value to NULL and back
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 1, "qty": 7, "note": "seven"}', '2030-01-01')).outcome;
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 1, "note": null}', '2030-01-02')).outcome;
SELECT id, name, qty, sku, note FROM gadget WHERE id = 1;
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 1, "note": "back"}', '2030-01-03')).outcome;
SELECT id, name, qty, sku, note FROM gadget WHERE id = 1;

-- a large value: stored out of line, read back whole
SELECT (sync_resolve.apply('gadget', 'crm', jsonb_build_object('id', 2, 'note', repeat('toast ', 20000)),
						   '2030-01-01')).outcome;
SELECT length(note) AS length, note = repeat('toast ', 20000) AS same,
	   pg_column_size(note) < length(note) AS compressed
FROM gadget WHERE id = 2;

-- the table's constraints refuse a change of an existing row with the
-- errors of the UPDATE statement, and nothing of the apply() stays: not the
-- row, not its history
-- must fail: CHECK (written directly, the error has no UPDATE statement as
-- its context, as it has where the statement runs)
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 3, "qty": -1}', '2030-01-01')).outcome;
\set VERBOSITY terse
-- must fail: NOT NULL
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 4, "name": null}', '2030-01-01')).outcome;
-- must fail: another row holds the sku
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 5, "sku": "S-6"}', '2030-01-01')).outcome;
\set VERBOSITY default
SELECT id, name, qty, sku FROM gadget WHERE id IN (3, 4, 5) ORDER BY id;
SELECT count(*) AS events FROM sync_resolve.event
WHERE relid = 'gadget'::regclass AND key IN ('{"id": 3}', '{"id": 4}', '{"id": 5}');

-- a new sku is a new index entry: found through the index, and the index
-- holds an entry for every row version the table holds
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 6, "sku": "S-600"}', '2030-01-01')).outcome;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT id FROM gadget WHERE sku = 'S-600';
SELECT count(*) AS old_sku FROM gadget WHERE sku = 'S-6';
RESET enable_bitmapscan;
RESET enable_seqscan;
SELECT c.relname AS index_checked
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid,
	 LATERAL bt_index_check(c.oid, true)
WHERE i.indrelid = 'gadget'::regclass
ORDER BY 1;

-- a trigger of the table's own: apply() goes through the UPDATE statement,
-- and the trigger fires
CREATE FUNCTION gadget_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.note := 'stamped';
	RETURN NEW;
END
$$;
CREATE TRIGGER gadget_stamp BEFORE UPDATE ON gadget FOR EACH ROW EXECUTE FUNCTION gadget_stamp();
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 7, "qty": 70}', '2030-01-01')).outcome;
SELECT id, qty, note FROM gadget WHERE id = 7;
-- what the trigger wrote besides is recorded with crm's change, as the
-- table's own doing
SELECT old_value, new_value FROM sync_resolve.event
WHERE relid = 'gadget'::regclass AND key = '{"id": 7}' AND kind = 'applied';
SELECT system, changes -> 'note' ->> 'by' AS note_by, changes -> 'qty' ->> 'by' AS qty_by
FROM sync_resolve.shadow('gadget', '{"id": 7}') WHERE system = 'local';
-- a trigger that skips the write: nothing changes, and the history says why
CREATE FUNCTION gadget_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RETURN NULL;
END
$$;
CREATE TRIGGER gadget_refuse BEFORE UPDATE ON gadget FOR EACH ROW EXECUTE FUNCTION gadget_refuse();
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 10, "qty": 100}', '2030-01-01')).outcome;
SELECT id, qty FROM gadget WHERE id = 10;
SELECT kind, old_value, new_value, CASE WHEN kind = 'received' THEN rule END AS why
FROM sync_resolve.event
WHERE relid = 'gadget'::regclass AND key = '{"id": 10}' ORDER BY id;
DROP TRIGGER gadget_refuse ON gadget;
-- the same for a new row: a BEFORE INSERT trigger that changes a value it
-- sent makes that value the table's own.  billing gets the row as it was
-- written, and crm, which holds what it sent, hears the trigger's value
-- (both were told crm's: the row and the other systems disagreed for good)
CREATE FUNCTION gadget_upper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.name := upper(NEW.name);
	RETURN NEW;
END
$$;
CREATE TRIGGER gadget_upper BEFORE INSERT ON gadget FOR EACH ROW EXECUTE FUNCTION gadget_upper();
TRUNCATE sync_resolve.outbox;
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 30, "name": "new gadget", "qty": 3}', '2030-01-01')).outcome;
SELECT id, name, qty FROM gadget WHERE id = 30;
SELECT target, payload FROM sync_resolve.outbox WHERE key = '{"id": 30}' ORDER BY target;
SELECT system, changes -> 'name' ->> 'by' AS name_by, changes -> 'qty' ->> 'by' AS qty_by
FROM sync_resolve.shadow('gadget', '{"id": 30}') WHERE system = 'local';
SELECT kind, new_value FROM sync_resolve.event
WHERE relid = 'gadget'::regclass AND key = '{"id": 30}' AND kind = 'inserted';
DROP TRIGGER gadget_upper ON gadget;
-- a trigger that skips a new row: nothing is inserted, and the history says
-- why (it was taken for a clash with another row's unique value, which this
-- table, with no unique key but its primary key, cannot have, and went to
-- review)
CREATE TABLE gizmo (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('gizmo', ARRAY['crm', 'billing'], 'latest');
CREATE TRIGGER gizmo_refuse BEFORE INSERT ON gizmo FOR EACH ROW EXECUTE FUNCTION gadget_refuse();
SELECT outcome, applied, queued, review_ids FROM sync_resolve.apply('gizmo', 'crm', '{"id": 1, "v": "new"}', '2030-01-01');
SELECT count(*) AS rows, (SELECT count(*) FROM sync_resolve.review WHERE relid = 'gizmo'::regclass) AS reviews
FROM gizmo;
SELECT kind, incoming_value, rule FROM sync_resolve.event WHERE relid = 'gizmo'::regclass ORDER BY id;
SELECT sync_resolve.untrack('gizmo');
DROP TABLE gizmo;
-- a trigger of the table that writes the row again while apply() writes it:
-- that second write is the table's own, a local write like any other, and
-- goes out to both systems (it was taken for apply()'s own write and never
-- recorded: the row held 42, the systems never heard of it)
CREATE TABLE widget (id int PRIMARY KEY, price numeric, qty int);
SELECT sync_resolve.track('widget', ARRAY['crm', 'billing'], 'latest');
SELECT outcome FROM sync_resolve.apply('widget', 'crm', '{"id": 1, "price": 1, "qty": 1}', '2030-01-01');
CREATE FUNCTION widget_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.qty IS DISTINCT FROM 42 THEN
		UPDATE widget SET qty = 42 WHERE id = NEW.id;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER widget_bump AFTER UPDATE ON widget FOR EACH ROW EXECUTE FUNCTION widget_bump();
TRUNCATE sync_resolve.outbox;
SELECT outcome, applied FROM sync_resolve.apply('widget', 'crm', '{"id": 1, "price": 5}', '2030-01-02');
SELECT id, price, qty FROM widget;
SELECT changes -> 'price' ->> 'by' AS price_by, changes -> 'qty' ->> 'by' AS qty_by
FROM sync_resolve.shadow('widget', '{"id": 1}') WHERE system = 'local';
SELECT target, payload FROM sync_resolve.outbox WHERE relid = 'widget'::regclass ORDER BY target;
SELECT sync_resolve.untrack('widget');
DROP TABLE widget;
DROP FUNCTION widget_bump();
-- a trigger that applies another system's image to the row apply() is
-- inserting: that later write stands -- the row, billing's base and what
-- crm is told are billing's value, and billing is not sent crm's (it was:
-- the outer call sent billing the value it had itself just replaced)
CREATE TABLE relay (id int PRIMARY KEY, name text);
SELECT sync_resolve.track('relay', ARRAY['crm', 'billing'], 'latest');
CREATE FUNCTION relay_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.name <> 'relayed' THEN
		PERFORM sync_resolve.apply('relay', 'billing', jsonb_build_object('id', NEW.id, 'name', 'relayed'));
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER relay_it AFTER INSERT OR UPDATE ON relay FOR EACH ROW EXECUTE FUNCTION relay_it();
TRUNCATE sync_resolve.outbox;
SELECT outcome FROM sync_resolve.apply('relay', 'crm', '{"id": 50, "name": "g"}');
SELECT id, name FROM relay;
SELECT system, base FROM sync_resolve.shadow('relay', '{"id": 50}') ORDER BY system;
SELECT target, payload FROM sync_resolve.outbox WHERE relid = 'relay'::regclass AND status = 'pending' ORDER BY target;
SELECT sync_resolve.untrack('relay');
DROP TABLE relay;
DROP FUNCTION relay_it();
-- a trigger that deletes the row apply() is writing, or moves it to another
-- key: that later write stands -- the row's tombstone is kept and its delete
-- goes out, with no upsert of the row after it (the delete was taken for
-- apply()'s own write: nothing recorded, and the systems were sent the row)
CREATE TABLE doomed (id int PRIMARY KEY, a text, b text);
SELECT sync_resolve.track('doomed', ARRAY['crm', 'billing'], 'latest');
SELECT outcome FROM sync_resolve.apply('doomed', 'crm', '{"id": 1, "a": "a0", "b": "b0"}', '2030-01-01');
SELECT outcome FROM sync_resolve.apply('doomed', 'crm', '{"id": 2, "a": "a0", "b": "b0"}', '2030-01-01');
CREATE FUNCTION doom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.a = 'gone' THEN
		DELETE FROM doomed WHERE id = NEW.id;
	ELSIF NEW.a = 'move' AND NEW.id < 100 THEN
		UPDATE doomed SET id = id + 100 WHERE id = NEW.id;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER doom AFTER UPDATE ON doomed FOR EACH ROW EXECUTE FUNCTION doom();
TRUNCATE sync_resolve.outbox;
SELECT outcome FROM sync_resolve.apply('doomed', 'crm', '{"id": 1, "a": "gone"}', '2030-01-02');
SELECT outcome FROM sync_resolve.apply('doomed', 'crm', '{"id": 2, "a": "move"}', '2030-01-02');
SELECT id, a, b FROM doomed ORDER BY id;
SELECT k.key, s.deleted_at IS NOT NULL AS tombstone, s.deleted_by
FROM (VALUES ('{"id": 1}'::jsonb), ('{"id": 2}')) k(key), sync_resolve.shadow('doomed', k.key) s
WHERE s.system = 'local' ORDER BY k.key::text;
SELECT key, target, op, payload FROM sync_resolve.outbox WHERE relid = 'doomed'::regclass ORDER BY key::text, target;
SELECT sync_resolve.untrack('doomed');
DROP TABLE doomed;
DROP FUNCTION doom();
-- a trigger that puts a row back as apply_delete() deletes it: that write
-- stands -- the row's shadow is as the trigger's write left it, no delete
-- goes out, and the write's upserts stay queued (the delete was recorded
-- over it, and every system was told to delete a row that is there)
CREATE TABLE revenant (id int PRIMARY KEY, a text);
SELECT sync_resolve.track('revenant', ARRAY['crm', 'billing'], 'latest');
SELECT outcome FROM sync_resolve.apply('revenant', 'crm', '{"id": 2, "a": "x"}', '2030-01-01');
CREATE FUNCTION revenant_back() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.a <> 'ghost' THEN
		EXECUTE format('INSERT INTO %I VALUES ($1, ''ghost'')', TG_TABLE_NAME) USING OLD.id;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER revenant_back AFTER DELETE ON revenant FOR EACH ROW EXECUTE FUNCTION revenant_back();
TRUNCATE sync_resolve.outbox;
SELECT outcome FROM sync_resolve.apply_delete('revenant', 'crm', '{"id": 2}', '2030-01-05');
SELECT id, a FROM revenant;
SELECT system, deleted_by, changes -> 'a' ->> 'by' AS a_by FROM sync_resolve.shadow('revenant', '{"id": 2}') ORDER BY system;
SELECT target, op, payload FROM sync_resolve.outbox WHERE relid = 'revenant'::regclass ORDER BY target;
SELECT kind, rule FROM sync_resolve.event
WHERE relid = 'revenant'::regclass AND at > now() - interval '1 hour' AND kind IN ('deleted', 'received') ORDER BY id;
SELECT sync_resolve.untrack('revenant');
DROP TABLE revenant;
-- the same when a person takes a source's delete from the review queue
CREATE TABLE revenant2 (id int PRIMARY KEY, a text);
SELECT sync_resolve.track('revenant2', ARRAY['crm', 'billing'], 'latest', on_delete_conflict => 'review');
SELECT outcome FROM sync_resolve.apply('revenant2', 'crm', '{"id": 3, "a": "x"}', '2030-01-01');
UPDATE revenant2 SET a = 'edited here';
SELECT outcome FROM sync_resolve.apply_delete('revenant2', 'crm', '{"id": 3}', '2030-01-05');
CREATE TRIGGER revenant_back AFTER DELETE ON revenant2 FOR EACH ROW EXECUTE FUNCTION revenant_back();
TRUNCATE sync_resolve.outbox;
SELECT status, decision FROM sync_resolve.resolve(
	(SELECT id FROM sync_resolve.review WHERE relid = 'revenant2'::regclass AND status = 'open'), 'take_incoming');
SELECT id, a FROM revenant2;
SELECT system, deleted_by FROM sync_resolve.shadow('revenant2', '{"id": 3}') WHERE system = 'local';
SELECT target, op, payload FROM sync_resolve.outbox WHERE relid = 'revenant2'::regclass ORDER BY target;
SELECT sync_resolve.untrack('revenant2');
DROP TABLE revenant2;
DROP FUNCTION revenant_back();
-- dropped: written directly again
DROP TRIGGER gadget_stamp ON gadget;
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 8, "qty": 80}', '2030-01-01')).outcome;
SELECT id, qty, note FROM gadget WHERE id = 8;

-- a column with a typmod (written through the UPDATE statement, whose
-- assignment would coerce a value): 2.005 is rounded as numeric(6,2) reads it
CREATE TABLE priced (id int PRIMARY KEY, price numeric(6,2));
INSERT INTO priced VALUES (1, 1.00);
SELECT sync_resolve.track('priced', ARRAY['crm', 'billing'], 'latest');
SELECT (sync_resolve.apply('priced', 'crm', '{"id": 1, "price": 2.005}', '2030-01-01')).outcome;
SELECT price FROM priced;

-- a column dropped from the table: the row's other columns still change
ALTER TABLE gadget DROP COLUMN note;
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 9, "qty": 90}', '2030-01-01')).outcome;
SELECT * FROM gadget WHERE id = 9;

-- a tracked partition: the UPDATE statement checks its partition constraint
CREATE TABLE sale (id int, region text, qty int) PARTITION BY LIST (region);
CREATE TABLE sale_eu PARTITION OF sale (PRIMARY KEY (id)) FOR VALUES IN ('eu');
INSERT INTO sale VALUES (1, 'eu', 1);
SELECT sync_resolve.track('sale_eu', ARRAY['crm', 'billing'], 'latest');
\set VERBOSITY terse
-- must fail: the row would belong to another partition
SELECT (sync_resolve.apply('sale_eu', 'crm', '{"id": 1, "region": "us"}', '2030-01-01')).outcome;
\set VERBOSITY default
SELECT (sync_resolve.apply('sale_eu', 'crm', '{"id": 1, "qty": 2}', '2030-01-01')).outcome;
SELECT * FROM sale;

-- a read-only transaction: sync_resolve writes nothing in one
BEGIN READ ONLY;
\set VERBOSITY terse
-- must fail
SELECT (sync_resolve.apply('gadget', 'crm', '{"id": 10, "qty": 100}', '2030-01-01')).outcome;
\set VERBOSITY default
ROLLBACK;
BEGIN READ ONLY;
\set VERBOSITY terse
-- must fail
SELECT count(*) FROM sync_resolve.claim_outbound('crm', 10);
\set VERBOSITY default
ROLLBACK;
SELECT qty FROM gadget WHERE id = 10;
