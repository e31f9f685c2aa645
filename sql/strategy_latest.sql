-- Strategy latest: in a conflict the change made later wins, comparing the
-- source's changed_at with the time of the local change; within
-- sync_resolve.clock_skew it is a tie, broken by priority, then by name.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE latest_t (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('latest_t', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('latest_t', 'v', 'latest');

-- crm's change is later than every local change: crm wins each conflict
SELECT * FROM pg_temp.conflict_matrix('latest_t', '"a"', '"b"', '"c"',
	'1999-01-01', '2999-01-01') ORDER BY n;

-- crm's change is older than every local change: local wins each conflict
SELECT * FROM pg_temp.conflict_matrix('latest_t', '"a"', '"b"', '"c"',
	'1999-01-01', '2000-01-01', 10) ORDER BY n;

-- the rule behind a decision names both times
SELECT pg_temp.masked(detail) FROM sync_resolve.explain('latest_t', '{"id": 11}') WHERE kind = 'conflict';

-- a change without changed_at counts at the time it was received, which is
-- after the local edit
SELECT outcome, applied FROM sync_resolve.apply('latest_t', 'crm', '{"id": 20, "v": "a"}', '2000-01-01');
UPDATE latest_t SET v = 'local edit' WHERE id = 20;
SELECT outcome, applied, kept FROM sync_resolve.apply('latest_t', 'crm', '{"id": 20, "v": "crm edit"}');
SELECT v FROM latest_t WHERE id = 20;

-- ties within the clock skew go by priority: billing (60) loses to crm (50),
-- whose value the row holds, whatever the times.  billing's first image
-- already conflicts (it has no base yet) and loses the tie.
SET sync_resolve.clock_skew = '1h';
SELECT outcome FROM sync_resolve.apply('latest_t', 'crm', '{"id": 30, "v": "crm"}', '2030-01-01 12:00');
SELECT outcome FROM sync_resolve.apply('latest_t', 'billing', '{"id": 30, "v": "base"}', '2030-01-01 11:00');
SELECT outcome, kept FROM sync_resolve.apply('latest_t', 'billing', '{"id": 30, "v": "billing"}', '2030-01-01 12:30');
SELECT v FROM latest_t WHERE id = 30;
SELECT rule FROM sync_resolve.event WHERE key = '{"id": 30}' AND kind = 'conflict' ORDER BY id;
-- outside the skew the later change wins
SELECT outcome, applied FROM sync_resolve.apply('latest_t', 'billing', '{"id": 30, "v": "billing later"}', '2030-01-01 14:00');
SELECT v FROM latest_t WHERE id = 30;
RESET sync_resolve.clock_skew;
