-- Writes from a source through the table itself: with sync_resolve.source
-- set, an INSERT, UPDATE or DELETE is an incoming image from that system,
-- resolved as apply() resolves one: NEW is rewritten column by column or
-- the write skipped, an INSERT of an existing key updates that row instead
-- of failing, and a write that changes nothing writes nothing.  An unknown
-- source is refused; with enforce_ownership, a local write to another
-- system's column is refused.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE deal (id int PRIMARY KEY, title text, amount numeric DEFAULT 0, stage text DEFAULT 'new',
	updated_by text);
SELECT sync_resolve.track('deal', ARRAY['crm', 'billing'], 'latest');
SELECT sync_resolve.set_policy('deal', 'stage', 'owner', owner => 'crm');
SELECT sync_resolve.set_policy('deal', 'amount', 'owner', owner => 'billing');
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'deal'::regclass ORDER BY tgname;

-- an ETL job writes for crm
BEGIN;
SET LOCAL sync_resolve.source = 'crm';
INSERT INTO deal (id, title, stage) VALUES (1, 'Big deal', 'proposal');
-- crm may not write amount: the new row gets the column's default instead
INSERT INTO deal (id, title, amount) VALUES (2, 'Small deal', 99);
COMMIT;
SELECT * FROM deal ORDER BY id;
SELECT kind, column_name, detail FROM sync_resolve.explain('deal', '{"id": 2}') ORDER BY at;
-- the writes are crm's, not local's
SELECT system, (SELECT jsonb_object_agg(k, v -> 'by') FROM jsonb_each(changes) AS e(k, v)) AS writers
FROM sync_resolve.shadow('deal', '{"id": 1}') WHERE system = 'local';
-- and go to billing, not back to crm
SELECT target, payload FROM sync_resolve.outbox ORDER BY id;

-- a local edit, then crm's UPDATE of the same column: latest wins (crm's
-- write is received now, after the local edit)
UPDATE deal SET title = 'Big deal (local)' WHERE id = 1;
BEGIN;
SET LOCAL sync_resolve.source = 'crm';
UPDATE deal SET title = 'Big deal (crm)', stage = 'won' WHERE id = 1;
COMMIT;
SELECT id, title, stage FROM deal WHERE id = 1;

-- crm's UPDATE of a column it may not write is refused: NEW keeps the
-- local value
BEGIN;
SET LOCAL sync_resolve.source = 'crm';
UPDATE deal SET amount = 5000 WHERE id = 1;
COMMIT;
SELECT id, amount FROM deal WHERE id = 1;
SELECT kind, column_name, detail FROM sync_resolve.explain('deal', '{"id": 1}') WHERE kind = 'unauthorized';

-- billing's INSERT of a key the table has: an image of that row, no
-- duplicate-key error
BEGIN;
SET LOCAL sync_resolve.source = 'billing';
INSERT INTO deal (id, title, amount) VALUES (1, 'Big deal (crm)', 4200);
COMMIT;
SELECT id, title, amount, stage FROM deal WHERE id = 1;

-- a write that changes nothing is skipped: no new row version, no history
SELECT xmin AS before_xmin FROM deal WHERE id = 1 \gset
SELECT count(*) AS events_before FROM sync_resolve.event \gset
BEGIN;
SET LOCAL sync_resolve.source = 'billing';
UPDATE deal SET amount = 4200 WHERE id = 1;
COMMIT;
SELECT xmin = :'before_xmin' AS same_row_version FROM deal WHERE id = 1;
SELECT count(*) - :events_before AS new_events FROM sync_resolve.event;

-- a DELETE from crm of a row nobody changed since crm wrote it goes ahead
BEGIN;
SET LOCAL sync_resolve.source = 'crm';
INSERT INTO deal (id, title) VALUES (4, 'Tiny deal');
DELETE FROM deal WHERE id = 4;
COMMIT;
SELECT count(*) FROM deal WHERE id = 4;
-- row 2 differs from what crm sent (its amount was refused): crm's delete
-- of it crosses that, and goes to review like a local edit
BEGIN;
SET LOCAL sync_resolve.source = 'crm';
DELETE FROM deal WHERE id = 2;
COMMIT;
SELECT count(*) FROM deal WHERE id = 2;
-- a DELETE from crm crossing a local edit follows on_delete_conflict
-- (review here): the row stays
UPDATE deal SET title = 'edited here' WHERE id = 1;
BEGIN;
SET LOCAL sync_resolve.source = 'crm';
DELETE FROM deal WHERE id = 1;
COMMIT;
SELECT id, title FROM deal WHERE id = 1;
SELECT key, kind, status FROM sync_resolve.review WHERE relid = 'deal'::regclass ORDER BY id;

-- a source cannot change a primary key
\set VERBOSITY terse
BEGIN;
SET LOCAL sync_resolve.source = 'crm';
-- must fail
UPDATE deal SET id = 10 WHERE id = 1;
ROLLBACK;
-- an unknown source is refused
-- must fail
SET sync_resolve.source = 'no such system!';
BEGIN;
SET LOCAL sync_resolve.source = 'nosuch';
-- must fail
UPDATE deal SET title = 'x' WHERE id = 1;
ROLLBACK;
-- a system with a member_role can be acted as only by its members
CREATE ROLE regress_sr_etl;
CREATE ROLE regress_sr_billing_team;
GRANT ALL ON deal TO regress_sr_etl;
UPDATE sync_resolve.system SET member_role = 'regress_sr_billing_team' WHERE name = 'billing';
SET ROLE regress_sr_etl;
BEGIN;
SET LOCAL sync_resolve.source = 'billing';
-- must fail
UPDATE deal SET amount = 1 WHERE id = 1;
ROLLBACK;
RESET ROLE;
\set VERBOSITY default
UPDATE sync_resolve.system SET member_role = NULL WHERE name = 'billing';
REVOKE ALL ON deal FROM regress_sr_etl;
DROP ROLE regress_sr_etl;
DROP ROLE regress_sr_billing_team;

-- enforce_ownership: the application may not write a column another
-- system owns
SET sync_resolve.enforce_ownership = on;
-- must fail
UPDATE deal SET amount = 1 WHERE id = 1;
-- must fail
INSERT INTO deal (id, title, stage) VALUES (3, 'local deal', 'won');
-- its own columns are fine, and so is leaving others' columns alone
UPDATE deal SET title = 'fine' WHERE id = 1;
INSERT INTO deal (id, title) VALUES (3, 'local deal');
RESET sync_resolve.enforce_ownership;
SELECT id, title, amount, stage FROM deal ORDER BY id;

-- Row triggers fire in the order of their names: a BEFORE row trigger of
-- the user's that sorts after sync_resolve_before runs once a write from a
-- source is decided and recorded, so a change it makes to NEW is one the
-- base, the history and the outbox know nothing of.  Creating or renaming
-- one on a tracked table (or tracking a table that has one, even disabled)
-- warns; one that sorts first, an AFTER trigger, or one on an untracked
-- table does not.
CREATE FUNCTION deal_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.updated_by := 'trigger';
	RETURN NEW;
END
$$;
CREATE TRIGGER zz_touch BEFORE UPDATE ON deal FOR EACH ROW EXECUTE FUNCTION deal_touch();
ALTER TRIGGER zz_touch ON deal RENAME TO a_touch;
CREATE TRIGGER zz_audit AFTER UPDATE ON deal FOR EACH ROW EXECUTE FUNCTION deal_touch();
ALTER TRIGGER a_touch ON deal RENAME TO touch_late;
CREATE TABLE deal_archive (id int PRIMARY KEY, title text);
CREATE TRIGGER zz_touch BEFORE INSERT ON deal_archive FOR EACH ROW EXECUTE FUNCTION deal_touch();
-- disabled, it is named too: enabling it later says nothing
ALTER TABLE deal_archive DISABLE TRIGGER zz_touch;
SELECT sync_resolve.track('deal_archive', ARRAY['crm']);
DROP TABLE deal_archive;
-- with sync_resolve's own BEFORE trigger renamed, the order is checked
-- against its new name: "b touch" fires after "A sr" (before, the check
-- still compared with sync_resolve_before and said nothing)
ALTER TRIGGER sync_resolve_before ON deal RENAME TO "A sr";
CREATE TRIGGER "b touch" BEFORE UPDATE ON deal FOR EACH ROW EXECUTE FUNCTION deal_touch();
DROP TRIGGER "b touch" ON deal;
ALTER TRIGGER "A sr" ON deal RENAME TO sync_resolve_before;
DROP TRIGGER touch_late ON deal;
DROP TRIGGER zz_audit ON deal;
DROP FUNCTION deal_touch;

-- ALTER TABLE ... ENABLE TRIGGER ALL (a data-only restore with
-- --disable-triggers runs it) leaves triggers origin-only, and
-- sync_resolve's would then not fire in a logical replication apply
-- worker: they are made ALWAYS again.  One disabled on purpose stays so.
ALTER TABLE deal DISABLE TRIGGER ALL;
ALTER TABLE deal ENABLE TRIGGER ALL;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'deal'::regclass ORDER BY tgname;
ALTER TABLE deal DISABLE TRIGGER sync_resolve_after;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'deal'::regclass ORDER BY tgname;
ALTER TABLE deal ENABLE ALWAYS TRIGGER sync_resolve_after;
