-- Strategy earliest: in a conflict the change made first wins (the first
-- booking of a seat, the first claim on a lead); ties as for latest.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE earliest_t (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('earliest_t', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('earliest_t', 'v', 'earliest');

-- crm changed it before every local change: crm wins each conflict
SELECT * FROM pg_temp.conflict_matrix('earliest_t', '"a"', '"b"', '"c"',
	'1999-01-01', '2000-01-01') ORDER BY n;

-- crm changed it after the local change: local wins each conflict
SELECT * FROM pg_temp.conflict_matrix('earliest_t', '"a"', '"b"', '"c"',
	'1999-01-01', '2999-01-01', 10) ORDER BY n;

SELECT pg_temp.masked(detail) FROM sync_resolve.explain('earliest_t', '{"id": 1}') WHERE kind = 'conflict';

-- crm's change at the start of this transaction and the local edit a
-- moment later are a tie within a clock skew of a minute: priority
-- decides, crm (50) over local (100)
SET sync_resolve.clock_skew = '1min';
SELECT pg_temp.conflict_case('earliest_t', 40, '"a"', '"b"', '"c"', '1999-01-01', now());
SELECT pg_temp.masked(rule) FROM sync_resolve.event
WHERE relid = 'earliest_t'::regclass AND key = '{"id": 40}' AND kind = 'conflict';
RESET sync_resolve.clock_skew;
