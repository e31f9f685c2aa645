-- Strategies keep_local and take_incoming: a conflict always keeps the
-- local value, or always takes the incoming one.  One-sided changes are
-- taken either way.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE keep_t (id int PRIMARY KEY, v date);
SELECT sync_resolve.track('keep_t', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('keep_t', 'v', 'keep_local');
SELECT * FROM pg_temp.conflict_matrix('keep_t', '"2020-01-01"', '"2020-02-02"', '"2020-03-03"',
	'1999-01-01', '2999-01-01') ORDER BY n;
SELECT detail FROM sync_resolve.explain('keep_t', '{"id": 1}') WHERE kind = 'conflict';

CREATE TABLE take_t (id int PRIMARY KEY, v date);
SELECT sync_resolve.track('take_t', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('take_t', 'v', 'take_incoming');
SELECT * FROM pg_temp.conflict_matrix('take_t', '"2020-01-01"', '"2020-02-02"', '"2020-03-03"',
	'1999-01-01', '2000-01-01') ORDER BY n;
SELECT detail FROM sync_resolve.explain('take_t', '{"id": 1}') WHERE kind = 'conflict';
