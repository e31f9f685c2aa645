-- Policies are cached per backend; every change to them, and DDL on a
-- tracked table, reaches the cache.  The shadow follows ALTER TABLE: a new
-- column is synced at once, a renamed column keeps its policy, a dropped
-- one is forgotten, a type change is followed.  DROP TABLE untracks; the
-- shadow of a tracked table cannot be dropped by hand; untrack keeps the
-- history.  Local writes record who changed which column.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE item (id int PRIMARY KEY, name text, price numeric);
SELECT sync_resolve.track('item', ARRAY['crm', 'billing'], 'keep_local');
SELECT outcome FROM sync_resolve.apply('item', 'crm', '{"id": 1, "name": "pen", "price": 2}');
UPDATE item SET price = 3;
-- keep_local: crm's price loses
SELECT outcome, kept FROM sync_resolve.apply('item', 'crm', '{"id": 1, "price": 4}');
-- the policy changes in this same session: the next call sees it
SELECT sync_resolve.set_policy('item', 'price', 'max');
UPDATE item SET price = 3.5;
SELECT outcome, applied FROM sync_resolve.apply('item', 'crm', '{"id": 1, "price": 5}');
-- a DBA edits the policy table directly: seen as well
UPDATE sync_resolve.column_policy SET strategy = 'min' WHERE relid = 'item'::regclass AND column_name = 'price';
UPDATE item SET price = 6;
SELECT outcome, kept FROM sync_resolve.apply('item', 'crm', '{"id": 1, "price": 7}');
SELECT price FROM item;
-- and so is a change of priority or of the systems of the table
UPDATE sync_resolve.tracked SET systems = ARRAY['crm'] WHERE relid = 'item'::regclass;
\set VERBOSITY terse
-- must fail: billing no longer syncs item
SELECT sync_resolve.apply('item', 'billing', '{"id": 1, "name": "x"}');
\set VERBOSITY default
UPDATE sync_resolve.tracked SET systems = ARRAY['crm', 'billing'] WHERE relid = 'item'::regclass;

-- a new column is synced at once: crm's value is decided like any other
-- (keep_local keeps the local NULL) and lands in crm's base
ALTER TABLE item ADD COLUMN colour text;
SELECT outcome, kept FROM sync_resolve.apply('item', 'crm', '{"id": 1, "colour": "blue"}');
-- a renamed column keeps its policy (min)
ALTER TABLE item RENAME COLUMN price TO unit_price;
SELECT column_name, strategy FROM sync_resolve.column_policy WHERE relid = 'item'::regclass;
UPDATE item SET unit_price = 8;
SELECT outcome, kept, applied FROM sync_resolve.apply('item', 'crm', '{"id": 1, "unit_price": 9}');
-- a changed type is followed by the shadow
ALTER TABLE item ALTER COLUMN unit_price TYPE integer;
SELECT outcome FROM sync_resolve.apply('item', 'crm', '{"id": 1, "unit_price": 9}');
SELECT system, base FROM sync_resolve.shadow('item', '{"id": 1}');
-- a dropped column is forgotten, and its policy with it
ALTER TABLE item DROP COLUMN unit_price;
SELECT count(*) FROM sync_resolve.column_policy WHERE relid = 'item'::regclass;
\set VERBOSITY terse
-- must fail
SELECT sync_resolve.apply('item', 'crm', '{"id": 1, "unit_price": 10}');
\set VERBOSITY default
SELECT outcome, applied FROM sync_resolve.apply('item', 'crm', '{"id": 1, "name": "pencil"}');
-- a changed primary key cannot be followed
\set VERBOSITY terse
-- must fail
ALTER TABLE item DROP CONSTRAINT item_pkey, ADD PRIMARY KEY (name);
\set VERBOSITY default

-- the shadow of a tracked table cannot be dropped by hand (its name holds
-- an OID, so only the SQLSTATE is shown)
SELECT shadow AS item_shadow FROM sync_resolve.tracked WHERE relid = 'item'::regclass \gset
\set VERBOSITY sqlstate
-- must fail
DROP TABLE :item_shadow;
\set VERBOSITY default

-- untrack drops the shadow and the trigger, dismisses open reviews (each
-- in its row's history too), and keeps the history
UPDATE item SET name = 'marker';
SELECT sync_resolve.set_policy('item', 'name', 'review');
SELECT outcome FROM sync_resolve.apply('item', 'crm', '{"id": 1, "name": "crayon"}');
SELECT sync_resolve.untrack('item');
SELECT to_regclass(:'item_shadow') AS shadow;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'item'::regclass AND NOT tgisinternal;
SELECT status, note FROM sync_resolve.review WHERE relid = 'item'::regclass;
SELECT key, column_name, source, decision, rule FROM sync_resolve.event
WHERE relid = 'item'::regclass AND kind = 'review_resolved';
SELECT count(*) > 0 AS history_kept FROM sync_resolve.event WHERE relid = 'item'::regclass;
\set VERBOSITY terse
-- must fail
SELECT sync_resolve.apply('item', 'crm', '{"id": 1, "name": "x"}');
-- must fail
SELECT sync_resolve.untrack('item');
\set VERBOSITY default

-- DROP TABLE untracks by itself
CREATE TABLE gone (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('gone', ARRAY['crm']);
SELECT shadow AS gone_shadow FROM sync_resolve.tracked WHERE relid = 'gone'::regclass \gset
DROP TABLE gone;
SELECT count(*) FROM sync_resolve.tracked;
SELECT to_regclass(:'gone_shadow');

-- local writes: the trigger records, per column, that local changed it,
-- and ticks the row's version; a write that changes nothing records nothing
CREATE TABLE note (id int PRIMARY KEY, body text, pinned boolean);
SELECT sync_resolve.track('note', ARRAY['crm'], 'latest');
INSERT INTO note VALUES (1, 'hello', false);
SELECT version, (SELECT jsonb_object_agg(k, v -> 'by') FROM jsonb_each(changes) AS e(k, v)) AS writers
FROM sync_resolve.shadow('note', '{"id": 1}');
UPDATE note SET body = 'hello';
SELECT version FROM sync_resolve.shadow('note', '{"id": 1}');
UPDATE note SET pinned = true;
SELECT version FROM sync_resolve.shadow('note', '{"id": 1}');
-- writes made by apply are crm's, not local's
SELECT outcome FROM sync_resolve.apply('note', 'crm', '{"id": 1, "body": "hi"}', '2999-01-01', version => '{crm:1}');
SELECT version, (SELECT jsonb_object_agg(k, v -> 'by') FROM jsonb_each(changes) AS e(k, v)) AS writers
FROM sync_resolve.shadow('note', '{"id": 1}') WHERE system = 'local';
-- a local delete leaves a tombstone; a new insert with the key clears it
DELETE FROM note WHERE id = 1;
SELECT deleted_at IS NOT NULL AS deleted, deleted_by, version FROM sync_resolve.shadow('note', '{"id": 1}') WHERE system = 'local';
INSERT INTO note VALUES (1, 'again', false);
SELECT deleted_at IS NOT NULL AS deleted, version FROM sync_resolve.shadow('note', '{"id": 1}') WHERE system = 'local';
-- a changed key is a delete of the old row and an insert of the new one
UPDATE note SET id = 2 WHERE id = 1;
SELECT (SELECT deleted_at IS NOT NULL FROM sync_resolve.shadow('note', '{"id": 1}') WHERE system = 'local') AS old_deleted,
	(SELECT deleted_at IS NULL FROM sync_resolve.shadow('note', '{"id": 2}') WHERE system = 'local') AS new_live;

-- a type change the column's strategy no longer fits is refused
CREATE TABLE typed (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('typed', ARRAY['crm'], 'latest');
SELECT sync_resolve.set_policy('typed', 'v', 'max');
\set VERBOSITY terse
-- must fail
ALTER TABLE typed ALTER COLUMN v TYPE json USING v::json;
\set VERBOSITY default
-- any other type change goes through with the table's own USING; the
-- shadow forgets crm's base for the column rather than convert it
SELECT outcome FROM sync_resolve.apply('typed', 'crm', '{"id": 1, "v": "hello"}');
ALTER TABLE typed ALTER COLUMN v TYPE integer USING length(v);
SELECT * FROM typed;
SELECT system, base FROM sync_resolve.shadow('typed', '{"id": 1}') WHERE system = 'crm';

-- a role that is no superuser may still alter and drop its own tables,
-- tracked or not: the DDL event triggers read the policy tables as the
-- extension's owner
CREATE ROLE regress_sr_ddl_owner;
GRANT CREATE ON SCHEMA public TO regress_sr_ddl_owner;
SET ROLE regress_sr_ddl_owner;
CREATE TABLE owned (id int PRIMARY KEY);
ALTER TABLE owned ADD COLUMN v text;
DROP TABLE owned;
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_sr_ddl_owner;
DROP ROLE regress_sr_ddl_owner;

-- The shadow is read and written straight through its primary key, not by
-- SQL statements, but as the table is: a trigger on the shadow makes
-- sync_resolve read and write it through SQL, so that the trigger fires;
-- dropped, nothing fires and the shadow is written directly again.
CREATE TABLE shadowed (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('shadowed', ARRAY['crm'], 'latest');
SELECT shadow AS shadow_name FROM sync_resolve.tracked WHERE relid = 'shadowed'::regclass \gset
CREATE TABLE shadow_seen (op text, system text);
CREATE FUNCTION shadow_seen() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.shadow_seen VALUES (TG_OP, NEW.system); RETURN NEW; END$$;
CREATE TRIGGER shadow_seen AFTER INSERT OR UPDATE ON :shadow_name
	FOR EACH ROW EXECUTE FUNCTION shadow_seen();
SELECT outcome FROM sync_resolve.apply('shadowed', 'crm', '{"id": 1, "v": "a"}', '2030-01-01');
UPDATE shadowed SET v = 'b';
SELECT outcome, applied FROM sync_resolve.apply('shadowed', 'crm', '{"id": 1, "v": "c"}', '2030-01-02');
SELECT op, system, count(*) FROM shadow_seen GROUP BY op, system ORDER BY op, system;
DROP TRIGGER shadow_seen ON :shadow_name;
UPDATE shadowed SET v = 'd';
SELECT outcome, applied FROM sync_resolve.apply('shadowed', 'crm', '{"id": 1, "v": "e"}', '2030-01-03');
SELECT count(*) AS fired FROM shadow_seen;
-- what both ways wrote reads back alike
SELECT v FROM shadowed;
SELECT system, base FROM sync_resolve.shadow('shadowed', '{"id": 1}') ORDER BY system;
DROP TABLE shadowed;
DROP TABLE shadow_seen;
DROP FUNCTION shadow_seen();

-- User code that a call runs cannot change the table under it: apply() has
-- read the table's layout and parsed the payload into it, then a custom
-- function (or a check) altered a column's type, and the write of the old
-- layout into the new one crashed the server.  While any call works on a
-- table it holds it open, as a statement does, and ALTER TABLE is refused.
CREATE TABLE reshaped (id int PRIMARY KEY, a text, b int);
SELECT sync_resolve.track('reshaped', ARRAY['crm'], 'take_incoming');
CREATE FUNCTION reshape(c sync_resolve.conflict) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE 'ALTER TABLE reshaped ALTER COLUMN b TYPE text';
	RETURN c.incoming_value;
END
$$;
SELECT sync_resolve.set_policy('reshaped', 'a', 'custom', custom_fn => 'reshape(sync_resolve.conflict)');
SELECT outcome FROM sync_resolve.apply('reshaped', 'crm', '{"id": 1, "a": "base", "b": 1}');
UPDATE reshaped SET a = 'here', b = 2;
\set VERBOSITY terse
-- must fail: the conflict on a calls reshape()
SELECT outcome FROM sync_resolve.apply('reshaped', 'crm', '{"id": 1, "a": "crm", "b": 7}');
-- must fail: the same in a batch, whatever on_error says
SELECT outcome FROM sync_resolve.apply_batch('reshaped', 'crm', '[{"data": {"id": 1, "a": "crm", "b": 7}}]',
											 on_error => 'reject');
-- must fail: reconcile calls it to say what sync would do
CREATE TABLE reshaped_snap (id int, a text, b int);
INSERT INTO reshaped_snap VALUES (1, 'crm', 7);
SELECT action FROM sync_resolve.reconcile('reshaped', 'crm', 'reshaped_snap');
\set VERBOSITY default
-- the table is as it was, and keeps working
SELECT id, a, b, pg_typeof(b) FROM reshaped;
SELECT sync_resolve.set_policy('reshaped', 'a', 'take_incoming');
SELECT outcome, applied FROM sync_resolve.apply('reshaped', 'crm', '{"id": 1, "a": "crm", "b": 7}');
DROP TABLE reshaped, reshaped_snap;
DROP FUNCTION reshape(sync_resolve.conflict);

-- The key's type may widen: its values are cast in the shadow too, and the
-- row keeps its bases (crm's next image of it is no conflict).  A change
-- that would change the key's JSON is refused, with the way out.
CREATE TABLE widened (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('widened', ARRAY['crm'], 'latest');
SELECT outcome FROM sync_resolve.apply('widened', 'crm', '{"id": 1, "v": "a"}', '2030-01-01');
ALTER TABLE widened ALTER COLUMN id TYPE bigint;
SELECT system, base FROM sync_resolve.shadow('widened', '{"id": 1}') ORDER BY system;
SELECT outcome, applied FROM sync_resolve.apply('widened', 'crm', '{"id": 1, "v": "b"}', '2030-01-02');
SELECT count(*) AS conflicts FROM sync_resolve.event WHERE relid = 'widened'::regclass AND kind = 'conflict';
-- must fail
ALTER TABLE widened ALTER COLUMN id TYPE text;
SELECT pg_typeof(id) FROM widened;
DROP TABLE widened;

-- A renamed column is followed wherever sync_resolve keeps its name outside
-- the catalog: a change to it waiting in the outbox goes out under its new
-- name (claim_outbound() dropped it: the change was never sent), an open
-- review item on it is resolved into it (resolve() wrote nothing, and the
-- next change opened a second item on the same column), and match_on
-- finds rows by it.  The history keeps the names it was written with.
CREATE TABLE renamed_gadget (id int PRIMARY KEY, name text, price numeric, email text);
SELECT sync_resolve.track('renamed_gadget', ARRAY['crm', 'billing'], 'latest', match_on => ARRAY['email']::name[]);
SELECT sync_resolve.set_policy('renamed_gadget', 'price', 'review');
SELECT outcome FROM sync_resolve.apply('renamed_gadget', 'crm', '{"id": 1, "name": "a", "price": 1, "email": "g@example.com"}');
TRUNCATE sync_resolve.outbox;
UPDATE renamed_gadget SET name = 'q', price = 2;
SELECT outcome, queued FROM sync_resolve.apply('renamed_gadget', 'crm', '{"id": 1, "price": 3}');
-- a new row from billing that clashes with row 1 on a unique name: its item
-- holds every column, and its values are keyed by column
ALTER TABLE renamed_gadget ADD CONSTRAINT renamed_gadget_name_key UNIQUE (name);
SELECT outcome, queued FROM sync_resolve.apply('renamed_gadget', 'billing', '{"id": 2, "name": "q", "price": 7, "email": "h@example.com"}');
ALTER TABLE renamed_gadget RENAME COLUMN name TO title;
ALTER TABLE renamed_gadget RENAME COLUMN price TO cost;
ALTER TABLE renamed_gadget RENAME COLUMN email TO mail;
SELECT target, payload FROM sync_resolve.outbox WHERE relid = 'renamed_gadget'::regclass ORDER BY target;
SELECT kind, column_name, columns, local_value, incoming_value FROM sync_resolve.review
WHERE relid = 'renamed_gadget'::regclass ORDER BY id;
SELECT match_on FROM sync_resolve.tracked WHERE relid = 'renamed_gadget'::regclass;
-- the decision lands in the renamed column, and releases it
SELECT status, decision FROM sync_resolve.resolve(
	(SELECT id FROM sync_resolve.review WHERE relid = 'renamed_gadget'::regclass AND column_name = 'cost'), 'take_incoming');
SELECT id, title, cost, mail FROM renamed_gadget ORDER BY id;
SELECT outcome, applied FROM sync_resolve.apply('renamed_gadget', 'crm', '{"id": 1, "cost": 4}');
SELECT count(*) AS open_items FROM sync_resolve.review WHERE relid = 'renamed_gadget'::regclass AND status = 'open';
-- a record sent without its key is found by the renamed match_on column
SELECT outcome, key FROM sync_resolve.apply('renamed_gadget', 'crm', '{"mail": "g@example.com", "title": "r"}');
SELECT target, payload FROM sync_resolve.claim_outbound('billing');
SELECT sync_resolve.untrack('renamed_gadget');
DROP TABLE renamed_gadget;

-- A column's new type must still read the values its value map and its
-- transitions name: the change is refused (it was accepted, and then every
-- write to the table failed, the application's own too, with a bare 22P02).
CREATE TABLE retyped_ticket (id int PRIMARY KEY, prio text, other text);
SELECT sync_resolve.track('retyped_ticket', ARRAY['crm'], 'latest');
INSERT INTO sync_resolve.value_map (relid, column_name, system, external_value, local_value)
VALUES ('retyped_ticket', 'prio', 'crm', 'A', 'a');
\set VERBOSITY terse
-- must fail
ALTER TABLE retyped_ticket ALTER COLUMN prio TYPE int USING 0;
\set VERBOSITY default
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'retyped_ticket'::regclass AND attname = 'prio';
SELECT outcome FROM sync_resolve.apply('retyped_ticket', 'crm', '{"id": 1, "prio": "A", "other": "x"}');
SELECT prio FROM retyped_ticket;
-- without the map, the type changes
DELETE FROM sync_resolve.value_map WHERE relid = 'retyped_ticket'::regclass;
ALTER TABLE retyped_ticket ALTER COLUMN prio TYPE int USING 0;
SELECT outcome FROM sync_resolve.apply('retyped_ticket', 'crm', '{"id": 1, "prio": 5}');
INSERT INTO retyped_ticket VALUES (2, 1, 'local write');
SELECT id, prio, other FROM retyped_ticket ORDER BY id;
SELECT sync_resolve.untrack('retyped_ticket');
DROP TABLE retyped_ticket;

-- An event trigger of the user's that fires before sync_resolve_ddl (names
-- sort so) and writes the table while ALTER TABLE ... ADD COLUMN is under
-- way: the new column has no shadow column yet, and is left out until
-- sync_resolve_ddl adds it (the write failed, and the ALTER with it, on a
-- shadow column that did not exist yet)
CREATE TABLE painted (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('painted', ARRAY['crm'], 'latest');
SELECT outcome FROM sync_resolve.apply('painted', 'crm', '{"id": 1, "v": "a"}');
CREATE FUNCTION paint_on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'public.painted') THEN
		UPDATE public.painted SET v = 'painted';
	END IF;
END
$$;
CREATE EVENT TRIGGER a_paint_on_ddl ON ddl_command_end EXECUTE FUNCTION paint_on_ddl();
ALTER TABLE painted ADD COLUMN colour text;
DROP EVENT TRIGGER a_paint_on_ddl;
DROP FUNCTION paint_on_ddl();
SELECT id, v, colour FROM painted;
SELECT changes -> 'v' ->> 'by' AS v_by FROM sync_resolve.shadow('painted', '{"id": 1}') WHERE system = 'local';
-- and the column is tracked from then on
SELECT outcome, applied FROM sync_resolve.apply('painted', 'crm', '{"id": 1, "colour": "blue"}');
SELECT sync_resolve.untrack('painted');
DROP TABLE painted;

-- A key column renamed: the rows' keys in open review items, in outbox
-- entries not yet sent and in record ids name it anew (resolve() and
-- ack_outbound() refused them: "has no key column"), and a column may not
-- take a column group's name (the rename failed on a bare unique violation
-- of the review queue)
CREATE TABLE rekeyed (id int PRIMARY KEY, v text, street text, city text);
SELECT sync_resolve.track('rekeyed', ARRAY['crm', 'billing'], 'latest');
SELECT sync_resolve.set_policy('rekeyed', 'v', 'review');
SELECT sync_resolve.set_policy('rekeyed', 'street', 'review', col_group => 'addr');
SELECT sync_resolve.set_policy('rekeyed', 'city', 'review', col_group => 'addr');
SELECT outcome FROM sync_resolve.apply('rekeyed', 'crm', '{"id": 1, "v": "a", "street": "s", "city": "c"}');
UPDATE rekeyed SET v = 'local';
SELECT outcome, queued FROM sync_resolve.apply('rekeyed', 'crm', '{"id": 1, "v": "crm"}');
SELECT id AS rekeyed_entry FROM sync_resolve.claim_outbound('billing') WHERE key = '{"id": 1}' \gset
ALTER TABLE rekeyed RENAME COLUMN id TO rid;
SELECT key, column_name FROM sync_resolve.review WHERE relid = 'rekeyed'::regclass AND status = 'open';
SELECT key, target, status FROM sync_resolve.outbox WHERE relid = 'rekeyed'::regclass ORDER BY target, id;
SELECT status FROM sync_resolve.resolve(
	(SELECT id FROM sync_resolve.review WHERE relid = 'rekeyed'::regclass AND status = 'open'), 'take_incoming');
SELECT status FROM sync_resolve.ack_outbound(:rekeyed_entry, external_id => 'B-1');
SELECT system, external_id, key FROM sync_resolve.identity WHERE relid = 'rekeyed'::regclass;
SELECT rid, v FROM rekeyed;
\set VERBOSITY terse
-- must fail: addr names a column group of the table
ALTER TABLE rekeyed RENAME COLUMN v TO addr;
\set VERBOSITY default
SELECT sync_resolve.untrack('rekeyed');
DROP TABLE rekeyed;
