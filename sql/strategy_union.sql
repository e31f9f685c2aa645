-- Strategy union: array columns (tags, roles) are merged as sets, 3-way:
-- elements either side added are kept, elements either side removed are
-- dropped.  A NULL array counts as an empty set.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE tagged (id int PRIMARY KEY, v text[]);
SELECT sync_resolve.track('tagged', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('tagged', 'v', 'union');
-- base {vip, new}; local removed new and added gold; crm added eu
SELECT * FROM pg_temp.conflict_matrix('tagged', '["vip", "new"]', '["vip", "gold"]', '["vip", "new", "eu"]',
	'1999-01-01', '2000-01-01') ORDER BY n;
SELECT detail FROM sync_resolve.explain('tagged', '{"id": 1}') WHERE kind = 'conflict';

-- removed on one side, kept on the other: removed
SELECT pg_temp.conflict_case('tagged', 20, '["a", "b", "c"]', '["a", "b", "c", "d"]', '["a", "c"]', '1999-01-01', '2000-01-01');
-- both add the same element: it appears once
SELECT pg_temp.conflict_case('tagged', 21, '["a"]', '["a", "x"]', '["x", "a"]', '1999-01-01', '2000-01-01');
-- elements compare by the element type's equality: integers
CREATE TABLE int_tags (id int PRIMARY KEY, v int[]);
SELECT sync_resolve.track('int_tags', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('int_tags', 'v', 'union');
SELECT pg_temp.conflict_case('int_tags', 1, '[1, 2]', '[1, 2, 3]', '[2, 4]', '1999-01-01', '2000-01-01');

\set VERBOSITY terse
CREATE TABLE union_text (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('union_text', ARRAY['crm']);
-- must fail: union needs an array
SELECT sync_resolve.set_policy('union_text', 'v', 'union');
\set VERBOSITY default
