-- Strategy review: a conflict keeps the local value, holds the column and
-- opens an item in sync_resolve.review for a person; later values for a
-- held column update the open item.  resolve() decides it.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE review_t (id int PRIMARY KEY, v text, other text);
SELECT sync_resolve.track('review_t', ARRAY['crm', 'billing'], default_strategy => 'latest');
SELECT sync_resolve.set_policy('review_t', 'v', 'review');
SELECT * FROM pg_temp.conflict_matrix('review_t', '"a"', '"b"', '"c"', '1999-01-01', '2000-01-01') ORDER BY n;
SELECT key, column_name, columns, kind, source, local_value, incoming_value, base_value, strategy, status
FROM sync_resolve.review ORDER BY id;

-- while held, a new value from crm updates the open item, and does not
-- touch the row; a column that is not held is decided as usual (latest)
SELECT outcome, applied, queued, review_ids FROM sync_resolve.apply('review_t', 'crm', '{"id": 1, "v": "c2", "other": "x"}');
SELECT v, other FROM review_t WHERE id = 1;
SELECT id, incoming_value, status FROM sync_resolve.review WHERE key = '{"id": 1}';
-- billing's value for the held column goes to the same item
SELECT outcome, queued FROM sync_resolve.apply('review_t', 'billing', '{"id": 1, "v": "from billing"}');
SELECT id, source, incoming_value FROM sync_resolve.review WHERE key = '{"id": 1}' AND status = 'open';

-- a person decides: take the incoming value; the column is released
SELECT id, status, decision, resolved_by FROM sync_resolve.resolve(1, 'take_incoming', note => 'billing is right');
SELECT v FROM review_t WHERE id = 1;
-- crm confirms the decided value, then changes it: taken, not held
SELECT outcome FROM sync_resolve.apply('review_t', 'crm', '{"id": 1, "v": "from billing"}');
SELECT outcome, applied FROM sync_resolve.apply('review_t', 'crm', '{"id": 1, "v": "free again"}');
SELECT v FROM review_t WHERE id = 1;

-- keep_local and set_value
SELECT r.id AS keep_id FROM sync_resolve.review r WHERE key = '{"id": 2}' AND status = 'open' \gset
SELECT status, decision FROM sync_resolve.resolve(:keep_id, 'keep_local');
SELECT v FROM review_t WHERE id = 2;
SELECT r.id AS set_id FROM sync_resolve.review r WHERE key = '{"id": 3}' AND status = 'open' \gset
SELECT status, decision, note FROM sync_resolve.resolve(:set_id, 'set_value', '"agreed on the phone"', 'called the customer');
SELECT v FROM review_t WHERE id = 3;
SELECT kind, column_name, detail FROM sync_resolve.explain('review_t', '{"id": 3}') ORDER BY at;

-- a resolved item cannot be resolved again; unknown items and decisions fail
\set VERBOSITY terse
-- must fail
SELECT sync_resolve.resolve(:set_id, 'keep_local');
-- must fail
SELECT sync_resolve.resolve(999999, 'keep_local');
-- must fail
SELECT sync_resolve.resolve(:keep_id, 'flip_a_coin');
-- must fail: set_value needs a value
SELECT sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE key = '{"id": 4}' AND status = 'open'), 'set_value');
-- must fail: the value must fit the column's type
CREATE TABLE review_int (id int PRIMARY KEY, n integer);
SELECT sync_resolve.track('review_int', ARRAY['crm'], 'review');
INSERT INTO review_int VALUES (1, 1);
SELECT outcome FROM sync_resolve.apply('review_int', 'crm', '{"id": 1, "n": 2}');
SELECT sync_resolve.resolve((SELECT id FROM sync_resolve.review WHERE relid = 'review_int'::regclass), 'set_value', '"many"');
\set VERBOSITY default
