-- Strategy merge_json: jsonb objects are merged key by key, 3-way: a key
-- changed on one side takes that side's value; a key changed on both sides
-- to different values sends the column to review.  Key order and
-- whitespace never make a conflict.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE prefs (id int PRIMARY KEY, v jsonb);
SELECT sync_resolve.track('prefs', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('prefs', 'v', 'merge_json');
-- base {lang, tz}; local changed tz and added theme; crm changed lang
SELECT * FROM pg_temp.conflict_matrix('prefs', '{"lang": "en", "tz": "UTC"}',
	'{"lang": "en", "tz": "CET", "theme": "dark"}', '{"lang": "fr", "tz": "UTC"}',
	'1999-01-01', '2000-01-01') ORDER BY n;
SELECT detail FROM sync_resolve.explain('prefs', '{"id": 1}') WHERE kind = 'conflict';

-- both sides changed the same key: review
SELECT pg_temp.conflict_case('prefs', 20, '{"tz": "UTC"}', '{"tz": "CET"}', '{"tz": "EST"}', '1999-01-01', '2000-01-01');
SELECT column_name, reason FROM sync_resolve.review WHERE key = '{"id": 20}';
-- a key removed on one side and unchanged on the other is removed
SELECT pg_temp.conflict_case('prefs', 21, '{"a": 1, "b": 2}', '{"a": 1, "b": 2, "c": 3}', '{"a": 1}', '1999-01-01', '2000-01-01');
-- nested values are compared whole
SELECT pg_temp.conflict_case('prefs', 22, '{"n": {"x": 1}}', '{"n": {"x": 1}, "m": 1}', '{"n": {"x": 2}}', '1999-01-01', '2000-01-01');
-- not an object on one side: review
SELECT pg_temp.conflict_case('prefs', 23, '{"a": 1}', '[1, 2]', '{"a": 2}', '1999-01-01', '2000-01-01');
SELECT reason FROM sync_resolve.review WHERE key = '{"id": 23}';

-- the same object in another key order or spacing is no change at all
SELECT outcome FROM sync_resolve.apply('prefs', 'crm', '{"id": 30, "v": {"a": 1, "b": [1, 2]}}');
SELECT outcome FROM sync_resolve.apply('prefs', 'crm', '{"id": 30, "v": {"b": [1,   2], "a": 1}}');
SELECT kind FROM sync_resolve.event WHERE relid = 'prefs'::regclass AND key = '{"id": 30}' ORDER BY id;

\set VERBOSITY terse
CREATE TABLE json_text (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('json_text', ARRAY['crm']);
-- must fail: merge_json needs jsonb
SELECT sync_resolve.set_policy('json_text', 'v', 'merge_json');
\set VERBOSITY default
