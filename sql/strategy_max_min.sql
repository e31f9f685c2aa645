-- Strategies max and min: a conflict keeps the larger (smaller) value by
-- the type's default ordering; NULL loses to any value, as in the max()
-- and min() aggregates.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE max_t (id int PRIMARY KEY, v numeric);
SELECT sync_resolve.track('max_t', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('max_t', 'v', 'max');
-- incoming larger than local
SELECT * FROM pg_temp.conflict_matrix('max_t', '1', '2', '3', '1999-01-01', '2000-01-01') ORDER BY n;
-- incoming smaller than local
SELECT * FROM pg_temp.conflict_matrix('max_t', '1', '3', '2', '1999-01-01', '2000-01-01', 10) ORDER BY n;

CREATE TABLE min_t (id int PRIMARY KEY, v timestamptz);
SELECT sync_resolve.track('min_t', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('min_t', 'v', 'min');
SELECT * FROM pg_temp.conflict_matrix('min_t', '"2020-01-01T00:00:00Z"', '"2020-02-01T00:00:00Z"',
	'"2020-01-15T00:00:00Z"', '1999-01-01', '2000-01-01') ORDER BY n;

-- the type's own ordering, not the text's: 10 > 9 as numbers, and a
-- collation-aware text column follows its collation
SELECT pg_temp.conflict_case('max_t', 30, '1', '9', '10', '1999-01-01', '2000-01-01');
CREATE TABLE max_text (id int PRIMARY KEY, v text COLLATE "C");
SELECT sync_resolve.track('max_text', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('max_text', 'v', 'max');
SELECT pg_temp.conflict_case('max_text', 1, '"a"', '"Z"', '"b"', '1999-01-01', '2000-01-01');
SELECT detail FROM sync_resolve.explain('max_text', '{"id": 1}') WHERE kind = 'conflict';
