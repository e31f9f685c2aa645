-- apply() reads, locks and writes the tracked table with the caller's
-- privileges (DESIGN 13): the row is found and locked without SQL only
-- when the caller holds SELECT and UPDATE on the whole table and no row
-- security applies; otherwise through SQL, which checks column privileges
-- and row security and gives their errors.  The shadow, history and
-- outbox are the extension's, reached only through it.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE acct (id int PRIMARY KEY, email text, plan text);
SELECT sync_resolve.track('acct', ARRAY['crm'], 'latest');
INSERT INTO acct VALUES (1, 'a@example.com', 'free'), (2, 'b@example.com', 'free');
CREATE ROLE regress_sr_sync;
GRANT USAGE ON SCHEMA sync_resolve TO regress_sr_sync;

-- the table's privileges
GRANT SELECT, INSERT, UPDATE ON acct TO regress_sr_sync;
SET ROLE regress_sr_sync;
SELECT outcome, applied FROM sync_resolve.apply('acct', 'crm', '{"id": 1, "plan": "pro"}', '2030-01-01');
RESET ROLE;

-- SELECT only: no lock, no update
REVOKE INSERT, UPDATE ON acct FROM regress_sr_sync;
SET ROLE regress_sr_sync;
\set VERBOSITY terse
-- must fail
SELECT outcome FROM sync_resolve.apply('acct', 'crm', '{"id": 1, "plan": "team"}', '2030-01-02');
\set VERBOSITY default
RESET ROLE;

-- UPDATE of some columns only is not enough: sync_resolve may write any
GRANT UPDATE (plan) ON acct TO regress_sr_sync;
SET ROLE regress_sr_sync;
\set VERBOSITY terse
-- must fail
SELECT outcome, applied FROM sync_resolve.apply('acct', 'crm', '{"id": 1, "plan": "team"}', '2030-01-03');
\set VERBOSITY default
RESET ROLE;
REVOKE UPDATE (plan) ON acct FROM regress_sr_sync;

-- row security: a row the policy hides is not there for the caller
GRANT INSERT, UPDATE ON acct TO regress_sr_sync;
ALTER TABLE acct ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_one ON acct TO regress_sr_sync USING (id = 1);
SET ROLE regress_sr_sync;
SELECT outcome, applied FROM sync_resolve.apply('acct', 'crm', '{"id": 1, "plan": "max"}', '2030-01-05');
\set VERBOSITY terse
-- must fail: row 2 is hidden from the role, and is not taken for absent (a new row)
SELECT outcome FROM sync_resolve.apply('acct', 'crm', '{"id": 2, "plan": "max"}', '2030-01-05');
\set VERBOSITY default
RESET ROLE;
SELECT * FROM acct ORDER BY id;

-- a DBA role that keeps policies: set_policy() and the policy tables, and
-- nothing more of sync_resolve's tables (the checks that make a policy and a
-- change of the table's systems wait for each other take no row lock, which
-- would need UPDATE of sync_resolve.tracked)
CREATE ROLE regress_sr_dba;
GRANT USAGE ON SCHEMA sync_resolve TO regress_sr_dba;
GRANT EXECUTE ON FUNCTION sync_resolve.set_policy(regclass, name, text, text, text[], text, regprocedure,
												  text, text, text, text, text[]) TO regress_sr_dba;
GRANT SELECT, INSERT, UPDATE ON sync_resolve.column_policy TO regress_sr_dba;
GRANT SELECT ON sync_resolve.tracked, sync_resolve.system TO regress_sr_dba;
SET ROLE regress_sr_dba;
SELECT sync_resolve.set_policy('acct', 'plan', 'owner', owner => 'crm');
RESET ROLE;
SELECT column_name, strategy, owner FROM sync_resolve.column_policy WHERE relid = 'acct'::regclass;
REVOKE ALL ON sync_resolve.column_policy, sync_resolve.tracked, sync_resolve.system FROM regress_sr_dba;
REVOKE ALL ON FUNCTION sync_resolve.set_policy(regclass, name, text, text, text[], text, regprocedure,
											   text, text, text, text, text[]) FROM regress_sr_dba;
REVOKE USAGE ON SCHEMA sync_resolve FROM regress_sr_dba;
DROP ROLE regress_sr_dba;

DROP TABLE acct;
REVOKE USAGE ON SCHEMA sync_resolve FROM regress_sr_sync;
DROP ROLE regress_sr_sync;
