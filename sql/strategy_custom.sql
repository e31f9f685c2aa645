-- Strategy custom: a function of the DBA's decides; it receives a
-- sync_resolve.conflict and returns the value as jsonb, or SQL NULL to
-- send the conflict to review.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

-- the longer text wins; a tie goes to review
CREATE FUNCTION longer_wins(c sync_resolve.conflict) RETURNS jsonb
	LANGUAGE sql
AS $$
	SELECT CASE
		WHEN coalesce(length(c.local_value #>> '{}'), 0) > coalesce(length(c.incoming_value #>> '{}'), 0) THEN c.local_value
		WHEN coalesce(length(c.local_value #>> '{}'), 0) < coalesce(length(c.incoming_value #>> '{}'), 0) THEN c.incoming_value
		ELSE NULL
	END
$$;

CREATE TABLE custom_t (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('custom_t', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('custom_t', 'v', 'custom', custom_fn => 'longer_wins(sync_resolve.conflict)');
SELECT * FROM pg_temp.conflict_matrix('custom_t', '"a"', '"bb"', '"ccc"', '1999-01-01', '2000-01-01') ORDER BY n;
SELECT * FROM pg_temp.conflict_matrix('custom_t', '"a"', '"bbb"', '"cc"', '1999-01-01', '2000-01-01', 10) ORDER BY n;
SELECT pg_temp.conflict_case('custom_t', 20, '"a"', '"bb"', '"cc"', '1999-01-01', '2000-01-01');
SELECT reason FROM sync_resolve.review WHERE key = '{"id": 20}';
SELECT detail FROM sync_resolve.explain('custom_t', '{"id": 1}') WHERE kind = 'conflict';

-- the function sees every field of the conflict
CREATE TABLE seen (c sync_resolve.conflict);
CREATE FUNCTION record_it(c sync_resolve.conflict) RETURNS jsonb
	LANGUAGE plpgsql
AS $$
BEGIN
	INSERT INTO seen VALUES (c);
	RETURN c.incoming_value;
END
$$;
SELECT sync_resolve.set_policy('custom_t', 'v', 'custom', custom_fn => 'record_it(sync_resolve.conflict)');
SELECT pg_temp.conflict_case('custom_t', 30, '"a"', '"b"', '"c"', '1999-01-01', '2000-01-01');
SELECT (c).relid, (c).key, (c).column_name, (c).source, (c).local_value, (c).incoming_value,
	(c).base_value, (c).local_changed_at IS NOT NULL AS local_time_known, (c).incoming_changed_at,
	(c).local_writer
FROM seen;

-- a returned value that does not fit the column is an error naming it
CREATE TABLE custom_int (id int PRIMARY KEY, n integer);
SELECT sync_resolve.track('custom_int', ARRAY['crm']);
CREATE FUNCTION say_many(c sync_resolve.conflict) RETURNS jsonb LANGUAGE sql RETURN '"many"'::jsonb;
SELECT sync_resolve.set_policy('custom_int', 'n', 'custom', custom_fn => 'say_many(sync_resolve.conflict)');
INSERT INTO custom_int VALUES (1, 1);
-- must fail
SELECT sync_resolve.apply('custom_int', 'crm', '{"id": 1, "n": 2}');

\set VERBOSITY terse
-- must fail: the function must take a sync_resolve.conflict and return jsonb
CREATE FUNCTION wrong_sig(n integer) RETURNS jsonb LANGUAGE sql RETURN NULL::jsonb;
SELECT sync_resolve.set_policy('custom_t', 'v', 'custom', custom_fn => 'wrong_sig(integer)');
-- must fail: custom needs a function
SELECT sync_resolve.set_policy('custom_t', 'v', 'custom');
\set VERBOSITY default

-- a function a policy decides with cannot be dropped; once no policy uses
-- it, it can
\set VERBOSITY terse
-- must fail
DROP FUNCTION record_it(sync_resolve.conflict);
\set VERBOSITY default
SELECT sync_resolve.set_policy('custom_t', 'v', 'latest');
DROP FUNCTION record_it(sync_resolve.conflict);

-- untrack() from inside a write of the table -- a custom function deciding
-- one of its conflicts, or a trigger of the statement writing it -- is
-- refused as ALTER TABLE is (55006); before, it dropped the shadow under
-- the write, which failed on a relation that no longer existed
CREATE TABLE custom_gone (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('custom_gone', ARRAY['crm']);
CREATE FUNCTION untrack_mine(c sync_resolve.conflict) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	PERFORM sync_resolve.untrack(c.relid);
	RETURN c.incoming_value;
END
$$;
SELECT sync_resolve.set_policy('custom_gone', 'v', 'custom', custom_fn => 'untrack_mine(sync_resolve.conflict)');
SELECT outcome FROM sync_resolve.apply('custom_gone', 'crm', '{"id": 1, "v": "a"}', '2000-01-01');
UPDATE custom_gone SET v = 'here';
-- must fail
SELECT outcome FROM sync_resolve.apply('custom_gone', 'crm', '{"id": 1, "v": "crm"}', '2000-01-02');
\set VERBOSITY terse
CREATE FUNCTION untrack_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM sync_resolve.untrack(TG_RELID::regclass);
	RETURN NULL;
END
$$;
CREATE TRIGGER untrack_on_update AFTER UPDATE ON custom_gone FOR EACH ROW EXECUTE FUNCTION untrack_on_update();
-- must fail
UPDATE custom_gone SET v = 'again';
\set VERBOSITY default
SELECT relid FROM sync_resolve.tracked WHERE relid = 'custom_gone'::regclass;
SELECT * FROM custom_gone;
DROP TRIGGER untrack_on_update ON custom_gone;
SELECT sync_resolve.untrack('custom_gone');
-- not refused: a deferred constraint's check waiting on the table, which
-- none of sync_resolve's triggers is
CREATE TABLE custom_ref_parent (id int PRIMARY KEY);
CREATE TABLE custom_ref (id int PRIMARY KEY, p int REFERENCES custom_ref_parent DEFERRABLE INITIALLY DEFERRED);
INSERT INTO custom_ref_parent VALUES (1);
SELECT sync_resolve.track('custom_ref', ARRAY['crm']);
BEGIN;
INSERT INTO custom_ref VALUES (1, 1);
SELECT sync_resolve.untrack('custom_ref');
COMMIT;
DROP TABLE custom_ref, custom_ref_parent;
DROP TABLE custom_gone;
DROP FUNCTION untrack_mine, untrack_on_update;
