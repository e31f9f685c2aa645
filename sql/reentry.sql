-- User code that sync_resolve runs -- an outbound or inbound function, a
-- custom strategy -- may change policies and call sync_resolve again, and
-- functions it runs may be replaced while a session keeps them: what the
-- outer call is still reading stays valid, and a replaced function is
-- called as it now is.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE reentry_item (id int PRIMARY KEY, name text, price numeric, qty int);
SELECT sync_resolve.track('reentry_item', ARRAY['crm', 'billing'], 'latest');

-- 1. claim_outbound() puts each entry in the target's words with the
-- table's cached policies.  An outbound function that changes a policy and
-- calls sync_resolve twice made the second call free the policies the claim
-- was still reading (the server crashed: SIGSEGV).
CREATE FUNCTION meddler(v jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	UPDATE sync_resolve.tracked SET alert_per_hour = alert_per_hour;
	PERFORM sync_resolve.canonical_key('reentry_item', '{"id": 1}');
	PERFORM sync_resolve.canonical_key('reentry_item', '{"id": 1}');
	RETURN v;
END $$;
INSERT INTO sync_resolve.field_map (relid, system, external_field, column_name, outbound_fn)
VALUES ('reentry_item', 'billing', 'Name', 'name', 'meddler(jsonb)'),
	   ('reentry_item', 'billing', 'Price', 'price', 'meddler(jsonb)'),
	   ('reentry_item', 'billing', 'Qty', 'qty', 'meddler(jsonb)');
INSERT INTO reentry_item VALUES (1, 'n1', 1, 1);
SELECT target, payload FROM sync_resolve.claim_outbound('billing');
DELETE FROM sync_resolve.field_map;
DROP FUNCTION meddler(jsonb);

-- 2. A custom strategy replaced while the session keeps the table's
-- policies: the next conflict is decided by the new body.  The session kept
-- the function as it first looked it up: a SQL body replaced in the same
-- session was ignored, and one replaced by PL/pgSQL in another session
-- failed every later call ("syntax error ... during startup").
CREATE TABLE reentry_note (id int PRIMARY KEY, body text);
SELECT sync_resolve.track('reentry_note', ARRAY['crm', 'billing'], 'latest');
CREATE FUNCTION pick(c sync_resolve.conflict) RETURNS jsonb LANGUAGE sql
	AS $$ SELECT c.incoming_value $$;
SELECT sync_resolve.set_policy('reentry_note', 'body', 'custom', custom_fn => 'pick(sync_resolve.conflict)');
SELECT outcome FROM sync_resolve.apply('reentry_note', 'crm', '{"id": 1, "body": "a"}');
UPDATE reentry_note SET body = 'local 1';
SELECT outcome, applied FROM sync_resolve.apply('reentry_note', 'crm', '{"id": 1, "body": "crm 1"}');
CREATE OR REPLACE FUNCTION pick(c sync_resolve.conflict) RETURNS jsonb LANGUAGE sql
	AS $$ SELECT '"decided by the new body"'::jsonb $$;
UPDATE reentry_note SET body = 'local 2';
SELECT outcome, applied FROM sync_resolve.apply('reentry_note', 'crm', '{"id": 1, "body": "crm 2"}');
SELECT body FROM reentry_note;
CREATE OR REPLACE FUNCTION pick(c sync_resolve.conflict) RETURNS jsonb LANGUAGE plpgsql
	AS $$ BEGIN RETURN '"decided in PL/pgSQL"'::jsonb; END $$;
UPDATE reentry_note SET body = 'local 3';
SELECT outcome, applied FROM sync_resolve.apply('reentry_note', 'crm', '{"id": 1, "body": "crm 3"}');
SELECT body FROM reentry_note;

-- 3. A function made SECURITY INVOKER runs as the caller from then on (the
-- kept handle went on running it as its owner)
CREATE FUNCTION whoami(c sync_resolve.conflict) RETURNS jsonb LANGUAGE sql SECURITY DEFINER
	AS $$ SELECT to_jsonb(current_user::text) $$;
SELECT sync_resolve.set_policy('reentry_note', 'body', 'custom', custom_fn => 'whoami(sync_resolve.conflict)');
CREATE ROLE reentry_app;
GRANT ALL ON reentry_note TO reentry_app;
UPDATE reentry_note SET body = 'local 4';
SET ROLE reentry_app;
SELECT outcome FROM sync_resolve.apply('reentry_note', 'crm', '{"id": 1, "body": "crm 4"}');
RESET ROLE;
SELECT body = current_user AS "run as its owner" FROM reentry_note;
ALTER FUNCTION whoami(sync_resolve.conflict) SECURITY INVOKER;
UPDATE reentry_note SET body = 'local 5';
SET ROLE reentry_app;
SELECT outcome FROM sync_resolve.apply('reentry_note', 'crm', '{"id": 1, "body": "crm 5"}');
RESET ROLE;
SELECT body AS "run as the caller" FROM reentry_note;
SELECT sync_resolve.untrack('reentry_note');
DROP TABLE reentry_note;
DROP FUNCTION pick(sync_resolve.conflict), whoami(sync_resolve.conflict);
DROP OWNED BY reentry_app;
DROP ROLE reentry_app;
