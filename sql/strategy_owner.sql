-- Strategy owner: the owner's value wins a conflict, and no other system
-- may change the column at all (unless listed among its writers).
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE owner_t (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('owner_t', ARRAY['crm', 'billing']);

-- crm owns the column: crm's changes win every conflict
SELECT sync_resolve.set_policy('owner_t', 'v', 'owner', owner => 'crm');
SELECT * FROM pg_temp.conflict_matrix('owner_t', '"a"', '"b"', '"c"',
	'1999-01-01', '2000-01-01') ORDER BY n;

-- billing may not write it at all: refused, even without a conflict
SELECT outcome, rejected FROM sync_resolve.apply('owner_t', 'billing', '{"id": 8, "v": "billing"}');
SELECT v FROM owner_t WHERE id = 8;

-- local owns it, and crm may write it too: crm's one-sided changes are
-- taken, but a conflict keeps local's value
SELECT sync_resolve.set_policy('owner_t', 'v', 'owner', owner => 'local', writers => ARRAY['local', 'crm']);
SELECT * FROM pg_temp.conflict_matrix('owner_t', '"a"', '"b"', '"c"',
	'1999-01-01', '2000-01-01', 10) ORDER BY n;
SELECT detail FROM sync_resolve.explain('owner_t', '{"id": 11}') WHERE kind = 'conflict';
