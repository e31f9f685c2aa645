-- Strategy priority: in a conflict the system with the lower priority
-- number wins, the source against the system that last wrote the local
-- value; equal priorities go by system name.  crm is 50, billing 60, local 100.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE priority_t (id int PRIMARY KEY, v integer);
SELECT sync_resolve.track('priority_t', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('priority_t', 'v', 'priority');

-- crm (50) against local (100): crm wins every conflict
SELECT * FROM pg_temp.conflict_matrix('priority_t', '1', '2', '3',
	'1999-01-01', '2000-01-01') ORDER BY n;
SELECT detail FROM sync_resolve.explain('priority_t', '{"id": 1}') WHERE kind = 'conflict';

-- billing (60) against a value crm wrote (50): billing last saw 3, crm
-- then wrote 5, billing now sends 4; the value crm wrote stays
SELECT outcome FROM sync_resolve.apply('priority_t', 'billing', '{"id": 1, "v": 3}');
SELECT outcome FROM sync_resolve.apply('priority_t', 'crm', '{"id": 1, "v": 5}');
SELECT outcome, kept FROM sync_resolve.apply('priority_t', 'billing', '{"id": 1, "v": 4}');
SELECT v FROM priority_t WHERE id = 1;
SELECT detail FROM sync_resolve.explain('priority_t', '{"id": 1}') WHERE source = 'billing' AND kind = 'conflict';

-- local raised to priority 10: now local wins against crm
UPDATE sync_resolve.system SET priority = 10 WHERE name = 'local';
SELECT * FROM pg_temp.conflict_matrix('priority_t', '1', '2', '3',
	'1999-01-01', '2000-01-01', 10) ORDER BY n;

-- equal priorities: the system name decides (billing before crm)
UPDATE sync_resolve.system SET priority = 50 WHERE name IN ('billing', 'crm');
SELECT outcome FROM sync_resolve.apply('priority_t', 'crm', '{"id": 20, "v": 1}');
SELECT outcome FROM sync_resolve.apply('priority_t', 'billing', '{"id": 20, "v": 1}');
SELECT outcome, applied FROM sync_resolve.apply('priority_t', 'crm', '{"id": 20, "v": 2}');
SELECT outcome, applied, kept FROM sync_resolve.apply('priority_t', 'billing', '{"id": 20, "v": 3}');
SELECT v FROM priority_t WHERE id = 20;
SELECT rule FROM sync_resolve.event WHERE relid = 'priority_t'::regclass AND key = '{"id": 20}' AND kind = 'conflict';
