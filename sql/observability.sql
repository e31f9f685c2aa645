-- Observability (DESIGN 12).  sync_resolve.health sums up each tracked
-- table: open reviews and the oldest, the outbox by status, conflicts and
-- rejections in the last hour, the alert threshold and the last alert.
-- sync_resolve.conflict_stats counts the history's conflicts by table,
-- column, source, the rule that decided them and the outcome.  Shown here:
-- every count moves with what it counts and nothing else; conflicts older
-- than an hour leave the hour's counts but stay in the totals; the views
-- read indexes, not the whole history or outbox; conflict_stats is as
-- public as the history, health is granted by the DBA; the alert threshold
-- is checked, and its state goes with the table.  The NOTIFY itself is
-- specs/conflict_alert.spec.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE acct (id int PRIMARY KEY, name text, plan text, credit int, state text, tier text);
CREATE TABLE quiet (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('acct', ARRAY['crm', 'billing'], 'latest');
SELECT sync_resolve.track('quiet', ARRAY['crm']);
SELECT sync_resolve.set_policy('acct', 'name', 'latest', check_expr => 'length(name) < 20');
SELECT sync_resolve.set_policy('acct', 'plan', 'priority');
SELECT sync_resolve.set_policy('acct', 'credit', 'review');
SELECT sync_resolve.set_policy('acct', 'state', 'latest', writers => ARRAY['billing']);
-- crm may not write tier either, but its changes are taken all the same
SELECT sync_resolve.set_policy('acct', 'tier', 'latest', writers => ARRAY['billing'],
							   on_unauthorized => 'accept');
UPDATE sync_resolve.tracked SET on_delete_conflict = 'keep' WHERE relid = 'acct'::regclass;

CREATE VIEW h AS
SELECT relid, open_reviews, oldest_open_review IS NOT NULL AS oldest_review,
	   outbox_pending AS pending, outbox_in_flight AS in_flight, outbox_failed AS failed,
	   outbox_dead AS dead, oldest_pending_at IS NOT NULL AS oldest_pending,
	   conflicts_last_hour AS conflicts, rejections_last_hour AS rejections,
	   alert_per_hour, last_alert_at IS NOT NULL AS alerted
FROM sync_resolve.health;

-- nothing has happened: every table is listed, every count is zero
SELECT relid, systems FROM sync_resolve.health ORDER BY relid::text;
SELECT * FROM h ORDER BY relid::text;
SELECT count(*) FROM sync_resolve.conflict_stats;

-- crm creates row 1
SELECT outcome FROM sync_resolve.apply('acct', 'crm',
	'{"id": 1, "name": "Ada", "plan": "free", "credit": 10}', '2000-01-01');
-- local changes three columns, then crm sends older changes of its own to
-- the same three: conflicts on name (latest: kept local), plan (priority:
-- crm's 50 ranks before local's 100) and credit (held for review)
UPDATE acct SET name = 'Ada L', plan = 'pro', credit = 20 WHERE id = 1;
SELECT outcome, kept, queued FROM sync_resolve.apply('acct', 'crm',
	'{"id": 1, "name": "Ada B", "plan": "team", "credit": 30}', '2000-01-02');
SELECT * FROM h WHERE relid = 'acct'::regclass;
SELECT relid, column_name, source, rule, outcome, conflicts, last_hour, last_day,
	   first_at <= last_at AS ordered
FROM sync_resolve.conflict_stats ORDER BY column_name, outcome;

-- rejections: crm may not write state (unauthorized), a name failing its
-- check (invalid), and a batch element set aside (sync_resolve.rejected);
-- not crm's tier, which is accepted
SELECT outcome, rejected FROM sync_resolve.apply('acct', 'crm', '{"id": 1, "state": "paid"}', '2000-01-03');
SELECT outcome, applied FROM sync_resolve.apply('acct', 'crm', '{"id": 1, "tier": "gold"}', '2000-01-03');
SELECT outcome, rejected FROM sync_resolve.apply('acct', 'crm',
	'{"id": 1, "name": "a name far too long for its check"}', '2000-01-03');
SELECT outcome FROM sync_resolve.apply_batch('acct', 'crm',
	'[{"data": {"id": 2, "credit": "lots"}}]', on_error => 'reject');
SELECT conflicts, rejections FROM h WHERE relid = 'acct'::regclass;
-- none of them is a conflict
SELECT sum(conflicts) FROM sync_resolve.conflict_stats;

-- crm's later change of name wins this time: a conflict with another outcome
UPDATE acct SET name = 'Ada M' WHERE id = 1;
SELECT outcome, applied FROM sync_resolve.apply('acct', 'crm', '{"id": 1, "name": "Ada C"}', '2999-01-01');
SELECT column_name, rule, outcome, conflicts FROM sync_resolve.conflict_stats
WHERE column_name = 'name' ORDER BY outcome;

-- a delete crossing a local change: a conflict on the whole row (column
-- NULL), decided by on_delete_conflict
UPDATE acct SET plan = 'max' WHERE id = 1;
SELECT outcome FROM sync_resolve.apply_delete('acct', 'crm', '{"id": 1}');
SELECT column_name, rule, outcome, conflicts FROM sync_resolve.conflict_stats
WHERE column_name IS NULL;
-- a change crossing a delete held for review counts too
CREATE TABLE held (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('held', ARRAY['crm']);
SELECT outcome FROM sync_resolve.apply('held', 'crm', '{"id": 1, "v": "a"}', '2000-01-01');
DELETE FROM held WHERE id = 1;
SELECT outcome FROM sync_resolve.apply('held', 'crm', '{"id": 1, "v": "b"}', '2999-01-01');
SELECT relid, column_name, rule, outcome, conflicts FROM sync_resolve.conflict_stats
WHERE relid = 'held'::regclass;
SELECT open_reviews, conflicts FROM h WHERE relid = 'held'::regclass;

-- events written through SQL, where the history's shape changed so that
-- the direct write would not honour it, carry the rule too
ALTER TABLE sync_resolve.event ADD COLUMN note text DEFAULT 'noted';
UPDATE acct SET name = 'Ada N' WHERE id = 1;
SELECT outcome, kept FROM sync_resolve.apply('acct', 'billing', '{"id": 1, "name": "Ada O"}', '2000-01-05');
SELECT column_name, source, rule, outcome, conflicts FROM sync_resolve.conflict_stats
WHERE source = 'billing';
ALTER TABLE sync_resolve.event DROP COLUMN note;

-- the outbox by status: billing's entry for row 1 claimed (in flight)
-- while a new row waits for both systems; the claimed entry fails and
-- waits again, then fails its last attempt (dead)
SELECT count(*) AS claimed FROM sync_resolve.claim_outbound('billing');
INSERT INTO acct VALUES (3, 'Bo', 'free', 0, 'trial');
SELECT pending, in_flight, failed, dead, oldest_pending FROM h WHERE relid = 'acct'::regclass;
SET sync_resolve.max_attempts = 2;
SELECT status FROM sync_resolve.fail_outbound(
	(SELECT id FROM sync_resolve.outbox WHERE status = 'in_flight'), 'HTTP 503', retry_in => '0 seconds');
SELECT pending, in_flight, failed, dead FROM h WHERE relid = 'acct'::regclass;
SELECT count(*) AS claimed FROM sync_resolve.claim_outbound('billing');
SELECT status FROM sync_resolve.fail_outbound(
	(SELECT id FROM sync_resolve.outbox WHERE status = 'in_flight' ORDER BY id LIMIT 1), 'HTTP 500');
SELECT pending, in_flight, failed, dead FROM h WHERE relid = 'acct'::regclass;
RESET sync_resolve.max_attempts;
-- sent entries are not counted
SELECT (sync_resolve.ack_outbound(id)).status FROM sync_resolve.outbox WHERE status = 'in_flight';
SELECT pending, in_flight, failed, dead FROM h WHERE relid = 'acct'::regclass;

-- a conflict from two hours ago stays in the totals, not in the hour's
-- counts (written by hand: the history is append-only, not back-dated)
SELECT conflicts AS before FROM h WHERE relid = 'acct'::regclass \gset
INSERT INTO sync_resolve.event (at, relid, key, kind, column_name, source, strategy, decision)
VALUES (now() - interval '2 hours', 'acct', '{"id": 1}', 'conflict', 'plan', 'crm', 'priority', 'kept local');
SELECT conflicts = :before AS hour_unchanged FROM h WHERE relid = 'acct'::regclass;
SELECT outcome, conflicts, last_hour, last_day FROM sync_resolve.conflict_stats
WHERE column_name = 'plan' ORDER BY outcome;

-- each count reads an index: with sequential scans off, no plan of either
-- view scans a whole table but the small ones
CREATE FUNCTION plan_of(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
		RETURN NEXT line;
	END LOOP;
END
$$;
SET enable_seqscan = off;
SELECT v AS view, count(*) FILTER (WHERE p ~ 'Seq Scan on (event|outbox|review|rejected)') AS whole_table_scans
FROM unnest(ARRAY['sync_resolve.health', 'sync_resolve.conflict_stats']) v,
	 LATERAL plan_of('SELECT * FROM ' || v) p
GROUP BY v ORDER BY v;
RESET enable_seqscan;
DROP FUNCTION plan_of(text);

-- the threshold: a number of conflicts, not negative
\set VERBOSITY terse
-- must fail
UPDATE sync_resolve.tracked SET alert_per_hour = -1 WHERE relid = 'acct'::regclass;
\set VERBOSITY default
UPDATE sync_resolve.tracked SET alert_per_hour = 0 WHERE relid = 'quiet'::regclass;
SELECT relid, alert_per_hour, alerted FROM h WHERE relid = 'quiet'::regclass;
-- over 0: the first conflict alerts (no one listens here), once
SELECT outcome FROM sync_resolve.apply('quiet', 'crm', '{"id": 1, "v": "a"}', '2000-01-01');
UPDATE quiet SET v = 'b';
SELECT outcome, kept FROM sync_resolve.apply('quiet', 'crm', '{"id": 1, "v": "c"}', '2000-01-02');
SELECT relid, conflicts FROM sync_resolve.alert;
SELECT alerted FROM h WHERE relid = 'quiet'::regclass;
-- an alert sent in a subtransaction that rolls back was not sent: the next
-- conflict in the transaction sends it (a run of apply_batch() that an
-- element failed rolls back so)
DELETE FROM sync_resolve.alert;
SELECT outcome FROM sync_resolve.apply('quiet', 'crm', '{"id": 2, "v": "a"}', '2000-01-01');
BEGIN;
SAVEPOINT s;
UPDATE quiet SET v = 'b' WHERE id = 2;
SELECT outcome FROM sync_resolve.apply('quiet', 'crm', '{"id": 2, "v": "c"}', '2000-01-02');
SELECT count(*) AS alert_in_savepoint FROM sync_resolve.alert;
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS alert_rolled_back FROM sync_resolve.alert;
UPDATE quiet SET v = 'd' WHERE id = 2;
SELECT outcome FROM sync_resolve.apply('quiet', 'crm', '{"id": 2, "v": "e"}', '2000-01-03');
COMMIT;
SELECT relid, conflicts FROM sync_resolve.alert;
-- untracking the table takes its alert along
SELECT sync_resolve.untrack('quiet');
SELECT count(*) FROM sync_resolve.alert;
SELECT relid FROM sync_resolve.health ORDER BY relid::text;

-- conflict_stats is as public as the history; health is granted
CREATE ROLE sr_watcher;
SET ROLE sr_watcher;
SELECT count(*) > 0 AS readable FROM sync_resolve.conflict_stats;
\set VERBOSITY terse
-- must fail
SELECT count(*) FROM sync_resolve.health;
\set VERBOSITY default
RESET ROLE;
GRANT SELECT ON sync_resolve.health TO sr_watcher;
SET ROLE sr_watcher;
SELECT count(*) AS tables FROM sync_resolve.health;
RESET ROLE;
REVOKE SELECT ON sync_resolve.health FROM sr_watcher;
DROP ROLE sr_watcher;

DROP VIEW h;
DROP TABLE acct, quiet, held;
