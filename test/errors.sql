-- test/errors.sql: bad input gets a clean ERROR, and nothing is half-written (DESIGN 13, 14).
--
-- Proves, for every error of DESIGN section 14 and every input check of the API
-- (sections 3, 4, 8, 9, 10, 13):
--   * the SQLSTATE (throws_ok);
--   * where DESIGN asks for it, that the message names the table, column, system and
--     value (pg_temp.error_mentions);
--   * that the failing call wrote nothing: the tracked table, its shadow, the history,
--     the review queue, the delivery ids, the rejected elements, the policy tables and
--     the catalog are exactly as before (pg_temp.unchanged compares with the state
--     saved by pg_temp.remember);
--   * that apply_batch(..., on_error => 'reject') sets the bad elements aside, with
--     their SQLSTATE, and applies the rest;
--   * that the transaction stays usable after a savepoint rollback.
--
-- Runs in the test database, which already has the extension: the extension is
-- re-created inside the transaction, and everything is rolled back at the end.

BEGIN;
SELECT plan(188);

SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sync_resolve CASCADE;
CREATE EXTENSION sync_resolve;
RESET client_min_messages;

-- ==== fixtures ====

CREATE SCHEMA sr_err;
CREATE DOMAIN sr_err.positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE sr_err.item (
	id integer PRIMARY KEY,
	name text,
	qty integer CHECK (qty < 1000),
	born date,
	score sr_err.positive_int,
	tags text[],
	doc jsonb,
	spot point,
	street text,
	city text,
	sku text UNIQUE,
	double_qty integer GENERATED ALWAYS AS (qty * 2) STORED
);
CREATE TABLE sr_err.plain (id integer PRIMARY KEY, note text);		-- never tracked
CREATE TABLE sr_err.nokey (a integer, b text);						-- no primary key
CREATE TABLE sr_err.latekey (a integer PRIMARY KEY DEFERRABLE, b text);	-- a key checked at commit
CREATE VIEW sr_err.item_view AS SELECT id, name FROM sr_err.item;
CREATE FUNCTION sr_err.wrong_signature(integer) RETURNS jsonb
	LANGUAGE sql AS 'SELECT NULL::jsonb';

CREATE ROLE sr_err_integrators NOLOGIN;
CREATE ROLE sr_err_member NOLOGIN IN ROLE sr_err_integrators;
CREATE ROLE sr_err_outsider NOLOGIN;
CREATE ROLE sr_err_reader NOLOGIN;
GRANT USAGE ON SCHEMA sr_err TO sr_err_member, sr_err_outsider, sr_err_reader;
GRANT SELECT ON sr_err.item TO sr_err_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON sr_err.item TO sr_err_member, sr_err_outsider;

DO $$
BEGIN
	PERFORM sync_resolve.add_system('crm');
	PERFORM sync_resolve.add_system('erp');
	PERFORM sync_resolve.add_system('billing');		-- registered, but does not sync sr_err.item
	PERFORM sync_resolve.add_system('secure', member_role => 'sr_err_integrators');
	PERFORM sync_resolve.track('sr_err.item', ARRAY['crm', 'erp', 'secure']);
	PERFORM sync_resolve.apply('sr_err.item', 'crm',
							   '{"id": 1, "name": "first", "qty": 5, "sku": "A-1"}', event_id => 'crm-1');
END
$$;

-- ==== helpers ====

-- Everything a call could write, as one jsonb value: counts and checksums of the
-- tracked table, its shadow, the history, the review queue, the delivery ids, the
-- rejected elements, the policy tables, sync_resolve's relations and the triggers
-- on the test schema's tables.
CREATE FUNCTION pg_temp.state(tbl regclass) RETURNS jsonb
	LANGUAGE plpgsql AS $fn$
DECLARE
	sh regclass;
	n bigint;
	h text;
	result jsonb;
BEGIN
	result := jsonb_build_object(
		'events', (SELECT count(*) FROM sync_resolve.event),
		'reviews', (SELECT md5(coalesce(string_agg(r::text, ',' ORDER BY r.id), '')) FROM sync_resolve.review r),
		'deliveries', (SELECT count(*) FROM sync_resolve.delivery),
		'rejected', (SELECT count(*) FROM sync_resolve.rejected),
		'systems', (SELECT md5(coalesce(string_agg(s::text, ',' ORDER BY s.name), '')) FROM sync_resolve.system s),
		'tracked', (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t.relid::oid), '')) FROM sync_resolve.tracked t),
		'policies', (SELECT md5(coalesce(string_agg(p::text, ',' ORDER BY p.relid::oid, p.column_name), ''))
					 FROM sync_resolve.column_policy p),
		'sync_resolve_relations', (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'sync_resolve'::regnamespace),
		'triggers', (SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
					 WHERE c.relnamespace = 'sr_err'::regnamespace));
	EXECUTE format('SELECT count(*), md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %s x',
				   ',', '', tbl) INTO n, h;
	result := result || jsonb_build_object('rows', n, 'rows_md5', h);
	SELECT t.shadow INTO sh FROM sync_resolve.tracked t WHERE t.relid = tbl;
	IF sh IS NOT NULL THEN
		EXECUTE format('SELECT count(*), md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %s x',
					   ',', '', sh) INTO n, h;
		result := result || jsonb_build_object('shadow_rows', n, 'shadow_md5', h);
	END IF;
	RETURN result;
END
$fn$;

CREATE TEMP TABLE remembered (state jsonb);

-- Save the state of sr_err.item and everything around it.
CREATE PROCEDURE pg_temp.remember()
	LANGUAGE sql AS $fn$
	DELETE FROM remembered;
	INSERT INTO remembered SELECT pg_temp.state('sr_err.item');
$fn$;

-- The state is still the saved one: the failing calls since wrote nothing.
CREATE FUNCTION pg_temp.unchanged(description text) RETURNS text
	LANGUAGE sql AS $fn$
	SELECT is(pg_temp.state('sr_err.item'), (SELECT state FROM remembered), description);
$fn$;

-- Raises a distinct error, so that a statement list that should have failed and did
-- not is rolled back all the same (and shows up as "caught: SR001").
CREATE FUNCTION pg_temp.went_through() RETURNS void
	LANGUAGE plpgsql AS $fn$
BEGIN
	RAISE EXCEPTION 'the statement went through without an error' USING ERRCODE = 'SR001';
END
$fn$;

-- The statement fails, and its message names each of in_message; each of
-- in_message_or_detail is in the message or in the detail.  The statement is
-- always rolled back.
CREATE FUNCTION pg_temp.error_mentions(sql text, in_message text[], in_message_or_detail text[],
									   description text) RETURNS text
	LANGUAGE plpgsql AS $fn$
DECLARE
	st text;
	msg text;
	det text;
	missing text[];
BEGIN
	BEGIN
		EXECUTE sql;
		PERFORM pg_temp.went_through();
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	END;
	IF st = 'SR001' THEN
		RETURN ok(false, description) || E'\n' || diag('    no error was raised');
	END IF;
	SELECT array_agg(w) INTO missing
	FROM (SELECT u.w FROM unnest(in_message) AS u(w) WHERE strpos(msg, u.w) = 0
		  UNION ALL
		  SELECT u.w FROM unnest(coalesce(in_message_or_detail, '{}')) AS u(w)
		  WHERE strpos(msg || E'\n' || coalesce(det, ''), u.w) = 0) m;
	IF missing IS NULL THEN
		RETURN ok(true, description);
	END IF;
	RETURN ok(false, description) || E'\n' ||
		diag(format(E'    error:   %s %s\n    detail:  %s\n    missing: %s',
					st, msg, coalesce(det, '(none)'), array_to_string(missing, ', ')));
END
$fn$;

CALL pg_temp.remember();

-- ==== the source system (DESIGN 4, 14: unknown system 22023) ====

SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'nosuch', '{"id": 2, "name": "x"}')$$,
	'22023', NULL, 'apply: an unknown system is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'nosuch', '{"id": 1}')$$,
	'22023', NULL, 'apply_delete: an unknown system is refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'nosuch', '[{"data": {"id": 2}}]')$$,
	'22023', NULL, 'apply_batch: an unknown system is refused (22023)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'nosuch', '{"id": 2}')$$,
	ARRAY['"nosuch"', 'sr_err.item'], NULL,
	'apply: the unknown-system error names the system and the table');

SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'billing', '{"id": 2, "name": "x"}')$$,
	'22023', NULL, 'apply: a system that exists but does not sync the table is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'billing', '{"id": 1}')$$,
	'22023', NULL, 'apply_delete: a system that does not sync the table is refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'billing', '[{"data": {"id": 2}}]')$$,
	'22023', NULL, 'apply_batch: a system that does not sync the table is refused (22023)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'billing', '{"id": 2}')$$,
	ARRAY['"billing"', 'sr_err.item'], NULL,
	'apply: the does-not-sync error names the system and the table');

SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'local', '{"id": 2, "name": "x"}')$$,
	'22023', NULL, 'apply: ''local'' as a source is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'local', '{"id": 1}')$$,
	'22023', NULL, 'apply_delete: ''local'' as a source is refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'local', '[{"data": {"id": 2}}]')$$,
	'22023', NULL, 'apply_batch: ''local'' as a source is refused (22023)');

SELECT pg_temp.unchanged('refused sources wrote nothing: table, shadow, history, reviews, deliveries');

-- ==== untracked tables, and tables that cannot be tracked (55000, 42809) ====

SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.plain', 'crm', '{"id": 1, "note": "x"}')$$,
	'55000', NULL, 'apply: an untracked table is refused (55000)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.plain', 'crm', '{"id": 1}')$$,
	'55000', NULL, 'apply_delete: an untracked table is refused (55000)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.plain', 'crm', '[{"data": {"id": 1}}]')$$,
	'55000', NULL, 'apply_batch: an untracked table is refused (55000)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.plain', 'crm', '{"id": 1}')$$,
	ARRAY['plain'], NULL, 'apply: the untracked-table error names the table');
SELECT is((SELECT count(*) FROM sr_err.plain), 0::bigint, 'the untracked table got no row');

SELECT throws_ok($$SELECT sync_resolve.track('sr_err.nokey', ARRAY['crm'])$$,
	'55000', NULL, 'track: a table without a primary key is refused (55000)');
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.latekey', ARRAY['crm'])$$,
	'55000', 'the primary key of table sr_err.latekey is deferrable',
	'track: a deferrable primary key is refused (55000), where every write then failed');
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.item_view', ARRAY['crm'])$$,
	'42809', NULL, 'track: a view is refused (42809)');
-- a key of a nondeterministic collation: 'ABC' and 'abc' were one row with two keys in
-- the history and the outbox
CREATE COLLATION sr_err.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE sr_err.ci_key (code text COLLATE sr_err.nocase PRIMARY KEY, note text);
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.ci_key', ARRAY['crm'])$$,
	'0A000', 'the primary key of table sr_err.ci_key uses a nondeterministic collation',
	'track: a primary key of a nondeterministic collation is refused (0A000)');
-- a temporary table goes at its session's end without a trigger seeing it go: its
-- tracking and shadow stayed, and claim_outbound() of its systems failed for every table
CREATE TEMP TABLE short_lived (id integer PRIMARY KEY, note text);
SELECT throws_ok($$SELECT sync_resolve.track('short_lived', ARRAY['crm'])$$,
	'42809', NULL, 'track: a temporary table is refused (42809)');
-- sync_resolve's own tables: a tracked outbox queued entries for its own writes forever,
-- and apply() to sync_resolve.system added systems
SELECT throws_ok($$SELECT sync_resolve.track('sync_resolve.outbox', ARRAY['crm'])$$,
	'42809', 'table sync_resolve.outbox is sync_resolve''s own', 'track: the outbox is refused (42809)');
SELECT throws_ok($$SELECT sync_resolve.track('sync_resolve.system', ARRAY['crm'])$$,
	'42809', NULL, 'track: sync_resolve.system is refused (42809)');

-- the policy checks' snapshot helper reads past privileges: only sync_resolve.tracked and
-- sync_resolve.system (given a partitioned table or a view it crashed the server, and
-- told any role whether rows of any table changed)
CREATE TABLE sr_err.parted (id integer PRIMARY KEY) PARTITION BY RANGE (id);
SELECT throws_ok($$SELECT sync_resolve._unchanged_since_snapshot('sr_err.parted', NULL::integer)$$,
	'22004', NULL, 'the snapshot helper refuses a NULL key (22004)');
SELECT throws_ok($$SELECT sync_resolve._unchanged_since_snapshot('sr_err.parted', 1)$$,
	'22023', NULL, 'the snapshot helper refuses any table but sync_resolve''s tracked and system (22023)');
SELECT throws_ok($$SELECT sync_resolve._shadow_type(0, -1)$$,
	'42704', NULL, 'an internal helper given no type says so (42704), not an internal error (XX000)');
SELECT pg_temp.unchanged('refused track calls created no shadow, trigger or tracked row');

-- ==== the payload (DESIGN 4, 14) ====

SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"name": "no key"}')$$,
	'22023', NULL, 'a payload without the key column is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": null, "name": "x"}')$$,
	'23502', NULL, 'a payload whose key column is null is refused (23502)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": null}')$$,
	ARRAY['"id"', 'sr_err.item', '"crm"'], NULL,
	'the null-key error names the column, the table and the system');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '[{"id": 2}]')$$,
	'22023', NULL, 'a JSON array as payload is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '"id=2"')$$,
	'22023', NULL, 'a JSON scalar as payload is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "nope": 1}')$$,
	'42703', NULL, 'a field that names no column is refused, not dropped (42703)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "nope": 1}')$$,
	ARRAY['"nope"', 'sr_err.item', '"crm"'], NULL,
	'the unknown-field error names the field, the table and the system');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 1, "double_qty": 10}')$$,
	'42703', NULL, 'a field that names a generated column is refused (42703)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 1, "Name": "x"}')$$,
	'42703', NULL, 'field names match columns exactly, case included (42703)');

SELECT pg_temp.unchanged('refused payloads wrote nothing');

-- ==== values that do not fit the column (DESIGN 14: 22P02 with the column named) ====

SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "qty": "abc"}')$$,
	'22P02', NULL, 'a value that does not cast to the column type is refused (22P02)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "qty": "abc"}')$$,
	ARRAY['"qty"', 'sr_err.item', '"crm"'], ARRAY['abc'],
	'the cast error names the column, the table, the system and the value');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 1, "qty": "abc"}', event_id => 'crm-retry')$$,
	'22P02', NULL, 'a bad value for an existing row is refused too (22P02)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "qty": 99999999999}')$$,
	'22003', NULL, 'a number out of range for an integer column is refused (22003)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "qty": 99999999999}')$$,
	ARRAY['"qty"', 'sr_err.item', '"crm"'], ARRAY['99999999999'],
	'the out-of-range error names the column, the table, the system and the value');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "born": "2024-13-45"}')$$,
	'22008', NULL, 'a date with fields out of range is refused (22008)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "born": "not a date"}')$$,
	'22007', NULL, 'a date in a bad format is refused (22007)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "score": -1}')$$,
	'23514', NULL, 'a value violating a domain CHECK is refused (23514)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "score": -1}')$$,
	ARRAY['"score"', 'sr_err.item', '"crm"'], ARRAY['-1'],
	'the domain error names the column, the table, the system and the value');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "tags": "not an array"}')$$,
	'22P02', NULL, 'a string for an array column is refused (22P02)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "tags": [[[[[[["x"]]]]]]]}')$$,
	'22P02', NULL, 'a JSON array nested deeper than an array column can hold is refused (22P02)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "tags": [[[[[[["x"]]]]]]]}')$$,
	ARRAY['"tags"', 'sr_err.item', '"crm"'], NULL,
	'the too-deep-array error names the column, the table and the system');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": "two", "name": "x"}')$$,
	'22P02', NULL, 'a key value that does not cast is refused (22P02)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 1, "qty": 5000}')$$,
	'23514', NULL, 'a value violating the table''s CHECK constraint is refused (23514)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2}', changed_at => 'infinity')$$,
	'22008', NULL, 'an infinite changed_at is refused (22008)');

SELECT pg_temp.unchanged('refused values wrote nothing');

-- a new row clashing with another row on a unique key is no error: a person decides
SAVEPOINT clash;
SELECT is((SELECT outcome FROM sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "sku": "A-1"}')),
	'held', 'a new row clashing with another row on a unique key is held for review, not an error');
SELECT is((SELECT kind || ' ' || array_to_string(columns, ',') FROM sync_resolve.review
		   WHERE relid = 'sr_err.item'::regclass AND key = '{"id": 2}' AND status = 'open'),
	'refused sku', 'the unique clash opens one review item with the columns the row would have had');
ROLLBACK TO SAVEPOINT clash;
SELECT is((SELECT outcome FROM sync_resolve.apply('sr_err.item', 'crm', '{"id": 1, "qty": 6}', event_id => 'crm-retry')),
	'updated', 'the event_id of a refused delivery is not remembered: its retry is applied, not a duplicate');
CALL pg_temp.remember();

-- ==== malformed versions (DESIGN 10, 14: 22P02) ====

SELECT throws_ok($$SELECT '{crm:}'::sync_resolve.vclock$$,
	'22P02', NULL, 'vclock: a system without a counter is refused (22P02)');
SELECT throws_ok($$SELECT '{crm:1,crm:2}'::sync_resolve.vclock$$,
	'22P02', NULL, 'vclock: a system named twice is refused (22P02)');
SELECT throws_ok($$SELECT '{crm:-1}'::sync_resolve.vclock$$,
	'22P02', NULL, 'vclock: a negative counter is refused (22P02)');
SELECT throws_ok($$SELECT 'crm:1'::sync_resolve.vclock$$,
	'22P02', NULL, 'vclock: a vector without braces is refused (22P02)');
SELECT throws_ok($$SELECT '{"crm": "x"}'::jsonb::sync_resolve.vclock$$,
	'22P02', NULL, 'vclock: a jsonb counter that is not a number is refused (22P02)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 2, "name": "x"}', version => '{crm:}')$$,
	'22P02', NULL, 'apply: a malformed version is refused (22P02)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '[{"data": {"id": 2}, "version": "{crm:}"}]')$$,
	'22P02', NULL, 'apply_batch: a malformed version string in an element is refused (22P02)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '[{"data": {"id": 2}, "version": {"crm": -1}}]')$$,
	'22P02', NULL, 'apply_batch: a malformed version object in an element is refused (22P02)');

SELECT pg_temp.unchanged('malformed versions wrote nothing');

-- ==== NULL arguments (22004) ====

SELECT throws_ok($$SELECT sync_resolve.apply(NULL, 'crm', '{"id": 2}')$$,
	'22004', NULL, 'apply: a NULL tbl is refused (22004)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', NULL, '{"id": 2}')$$,
	'22004', NULL, 'apply: a NULL source is refused (22004)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', NULL)$$,
	'22004', NULL, 'apply: a NULL payload is refused (22004)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'crm', NULL)$$,
	ARRAY['payload'], NULL, 'apply: the NULL-argument error names the argument');
SELECT throws_ok($$SELECT sync_resolve.apply_delete(NULL, 'crm', '{"id": 1}')$$,
	'22004', NULL, 'apply_delete: a NULL tbl is refused (22004)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', NULL, '{"id": 1}')$$,
	'22004', NULL, 'apply_delete: a NULL source is refused (22004)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'crm', NULL)$$,
	'22004', NULL, 'apply_delete: a NULL key is refused (22004)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch(NULL, 'crm', '[]')$$,
	'22004', NULL, 'apply_batch: a NULL tbl is refused (22004)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', NULL, '[]')$$,
	'22004', NULL, 'apply_batch: a NULL source is refused (22004)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', NULL)$$,
	'22004', NULL, 'apply_batch: NULL changes are refused (22004)');

-- ==== the key of apply_delete ====

SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'crm', '{"name": "first"}')$$,
	'22023', NULL, 'apply_delete: a key without the key column is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'crm', '{"id": null}')$$,
	'23502', NULL, 'apply_delete: a null key column is refused (23502)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'crm', '[1]')$$,
	'22023', NULL, 'apply_delete: a key that is not an object is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'crm', '{"id": "one"}')$$,
	'22P02', NULL, 'apply_delete: a key value that does not cast is refused (22P02)');

SELECT pg_temp.unchanged('NULL arguments and bad delete keys wrote nothing');

-- ==== apply_batch input (DESIGN 4) ====

SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '{"data": {"id": 2}}')$$,
	'22023', NULL, 'apply_batch: changes that are an object, not an array, are refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '"[]"')$$,
	'22023', NULL, 'apply_batch: changes that are a scalar are refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '[{"op": "upsert"}]')$$,
	'22023', NULL, 'apply_batch: an element without "data" is refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '[{"data": [2]}]')$$,
	'22023', NULL, 'apply_batch: an element whose "data" is not an object is refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '[2]')$$,
	'22023', NULL, 'apply_batch: an element that is not an object is refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '[{"op": "merge", "data": {"id": 2}}]')$$,
	'22023', NULL, 'apply_batch: an unknown op is refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '[{"data": {"id": 2}}]', on_error => 'ignore')$$,
	'22023', NULL, 'apply_batch: an invalid on_error is refused (22023)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '[{"data": {"id": 2}, "changed_at": "yesterday-ish"}]')$$,
	'22007', NULL, 'apply_batch: a changed_at that is no timestamp is refused (22007)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm', '[{"data": {"id": 2}, "changed_at": 17}]')$$,
	'22007', NULL, 'apply_batch: a changed_at that is not a string is refused (22007)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'crm',
		'[{"data": {"id": 2, "name": "good"}}, {"data": {"id": 3, "qty": "bad"}}]')$$,
	'22P02', NULL, 'apply_batch, on_error raise: a bad second element fails the call (22P02)');

SELECT pg_temp.unchanged('refused batches wrote nothing, not even their good first elements');

-- ==== apply_batch(..., on_error => 'reject') ====

CREATE TEMP TABLE batch_result AS
SELECT r.n, r.outcome, r.key
FROM sync_resolve.apply_batch('sr_err.item', 'crm', $$[
		{"data": {"id": 10, "name": "ten"}, "event_id": "b-1"},
		{"data": {"id": 11, "qty": "eleven"}, "event_id": "b-2"},
		{"op": "frobnicate", "data": {"id": 12}},
		{"data": {"id": 13, "nope": 1}},
		{"data": {"id": 14, "name": "fourteen"}}
	]$$, on_error => 'reject')
	WITH ORDINALITY AS r(outcome, key, applied, kept, queued, rejected, review_ids, n);

SELECT is((SELECT array_agg(outcome ORDER BY n) FROM batch_result),
	ARRAY['inserted', 'rejected', 'rejected', 'rejected', 'inserted'],
	'reject: one result per element, in order; the bad ones are rejected');
SELECT results_eq(
	$$SELECT position, sqlstate FROM sync_resolve.rejected ORDER BY position$$,
	$$VALUES (2, '22P02'), (3, '22023'), (4, '42703')$$,
	'reject: each bad element is in sync_resolve.rejected with its position and SQLSTATE');
SELECT is((SELECT element FROM sync_resolve.rejected WHERE position = 2),
	'{"data": {"id": 11, "qty": "eleven"}, "event_id": "b-2"}'::jsonb,
	'reject: the rejected element is kept as it was sent');
SELECT ok((SELECT message LIKE '%"qty"%sr_err.item%' AND relid = 'sr_err.item'::regclass AND source = 'crm'
		   FROM sync_resolve.rejected WHERE position = 2),
	'reject: the rejected row records the table, the source and the message naming the column');
SELECT is((SELECT array_agg(id ORDER BY id) FROM sr_err.item WHERE id BETWEEN 10 AND 14),
	ARRAY[10, 14], 'reject: the good elements are applied, the bad ones are not');
SELECT is((SELECT count(*) FROM sync_resolve.event WHERE relid = 'sr_err.item'::regclass
		   AND key->>'id' IN ('11', '12', '13')),
	0::bigint, 'reject: no event was written for a rejected element');
SELECT ok((SELECT count(DISTINCT key->>'id') FROM sync_resolve.event WHERE relid = 'sr_err.item'::regclass
		   AND key->>'id' IN ('10', '14')) = 2,
	'reject: the applied elements are in the history');
SELECT is((SELECT count(*) FROM sync_resolve.shadow('sr_err.item', '{"id": 11}'))
		+ (SELECT count(*) FROM sync_resolve.shadow('sr_err.item', '{"id": 12}'))
		+ (SELECT count(*) FROM sync_resolve.shadow('sr_err.item', '{"id": 13}')),
	0::bigint, 'reject: no base was written for a rejected element');
SELECT is((SELECT array_agg(event_id ORDER BY event_id) FROM sync_resolve.delivery WHERE event_id LIKE 'b-%'),
	ARRAY['b-1'], 'reject: only the applied element''s event_id is remembered');
SELECT is((SELECT outcome FROM sync_resolve.apply('sr_err.item', 'crm', '{"id": 11, "qty": 11}', event_id => 'b-2')),
	'inserted', 'reject: the corrected element sent again with its event_id is applied, not a duplicate');
CALL pg_temp.remember();

-- ==== policy validation (DESIGN 3) ====

SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'bogus')$$,
	'22023', NULL, 'set_policy: an unknown strategy is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'sum_delta')$$,
	'42804', NULL, 'set_policy: sum_delta on a text column is refused (42804)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'sum_delta')$$,
	ARRAY['sum_delta', '"name"', 'sr_err.item'], NULL,
	'set_policy: the type-mismatch error names the strategy, the column and the table');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'qty', 'union')$$,
	'42804', NULL, 'set_policy: union on a non-array column is refused (42804)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'merge_json')$$,
	'42804', NULL, 'set_policy: merge_json on a text column is refused (42804)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'spot', 'max')$$,
	'42804', NULL, 'set_policy: max on a type without ordering (point) is refused (42804)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'spot', 'min')$$,
	'42804', NULL, 'set_policy: min on a type without ordering (point) is refused (42804)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'owner', owner => 'crm', writers => ARRAY['erp'])$$,
	'22023', NULL, 'set_policy: an owner that is not among writers is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'owner', owner => 'billing')$$,
	'22023', NULL, 'set_policy: an owner that is not a system of the table is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'owner', owner => 'nosuch')$$,
	'22023', NULL, 'set_policy: an owner that is no system at all is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'latest', writers => ARRAY['crm', 'billing'])$$,
	'22023', NULL, 'set_policy: a writer that is not a system of the table is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'owner')$$,
	'22023', NULL, 'set_policy: strategy owner without an owner is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'custom')$$,
	'22023', NULL, 'set_policy: strategy custom without a function is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'custom', custom_fn => 'sr_err.wrong_signature(integer)')$$,
	'42883', NULL, 'set_policy: a custom_fn of the wrong signature is refused (42883)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'latest', custom_fn => 'sr_err.wrong_signature(integer)')$$,
	'22023', NULL, 'set_policy: a custom_fn with another strategy is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'id', 'latest')$$,
	'22023', NULL, 'set_policy: a policy on a primary-key column is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'nosuch', 'latest')$$,
	'42703', NULL, 'set_policy: a policy on a missing column is refused (42703)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'double_qty', 'latest')$$,
	'22023', NULL, 'set_policy: a policy on a generated column is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.plain', 'note', 'latest')$$,
	'55000', NULL, 'set_policy: a policy on an untracked table is refused (55000)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'name', 'latest', on_unauthorized => 'ignore')$$,
	'22023', NULL, 'set_policy: an invalid on_unauthorized is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.set_policy('sr_err.item', 'qty', 'sum_delta', col_group => 'stock')$$,
	'22023', NULL, 'set_policy: a column group under sum_delta, which computes values, is refused (22023)');
SELECT throws_ok($$INSERT INTO sync_resolve.column_policy (relid, column_name, strategy)
		VALUES ('sr_err.item', 'name', 'bogus')$$,
	'22023', NULL, 'column_policy: plain DML is validated too (22023)');

SELECT pg_temp.unchanged('refused policies wrote nothing');

-- Columns of a group must agree; checked at commit by a deferred constraint
-- trigger, fired here with SET CONSTRAINTS ALL IMMEDIATE inside throws_ok's savepoint.
SELECT throws_ok($$
		SELECT sync_resolve.set_policy('sr_err.item', 'street', 'latest', col_group => 'address');
		SELECT sync_resolve.set_policy('sr_err.item', 'city', 'priority', col_group => 'address');
		SET CONSTRAINTS ALL IMMEDIATE$$,
	'22023', NULL, 'set_policy: columns of one group disagreeing on the strategy are refused at commit (22023)');
SELECT throws_ok($$
		SELECT sync_resolve.set_policy('sr_err.item', 'street', 'owner', owner => 'crm', col_group => 'address');
		SELECT sync_resolve.set_policy('sr_err.item', 'city', 'owner', owner => 'erp', col_group => 'address');
		SET CONSTRAINTS ALL IMMEDIATE$$,
	'22023', NULL, 'set_policy: columns of one group disagreeing on the owner are refused at commit (22023)');
SELECT throws_ok($$
		SELECT sync_resolve.set_policy('sr_err.item', 'street', 'latest', col_group => 'address');
		SELECT sync_resolve.set_policy('sr_err.item', 'city', 'latest', col_group => 'address');
		SET CONSTRAINTS ALL IMMEDIATE;
		SELECT pg_temp.went_through()$$,
	'SR001', NULL, 'set_policy: columns of one group that agree pass the commit-time check');

SELECT pg_temp.unchanged('the group checks left no policy behind');

-- ==== systems (DESIGN 3) ====

SELECT throws_ok($$SELECT sync_resolve.add_system('crm')$$,
	'42710', NULL, 'add_system: a duplicate name is refused (42710)');
SELECT throws_ok($$SELECT sync_resolve.add_system('local')$$,
	'42710', NULL, 'add_system: ''local'' cannot be added again (42710)');
SELECT throws_ok($$SELECT sync_resolve.add_system('a b')$$,
	'22023', NULL, 'add_system: a name with a space is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.add_system('')$$,
	'22023', NULL, 'add_system: an empty name is refused (22023)');
SELECT throws_ok($$DELETE FROM sync_resolve.system WHERE name = 'local'$$,
	'55000', NULL, 'system ''local'' cannot be deleted (55000)');
SELECT throws_ok($$DELETE FROM sync_resolve.system WHERE name = 'crm'$$,
	'2BP01', NULL, 'a system still used by a tracked table cannot be deleted (2BP01)');
SELECT pg_temp.error_mentions($$DELETE FROM sync_resolve.system WHERE name = 'crm'$$,
	ARRAY['"crm"'], ARRAY['sr_err.item'],
	'the still-used error names the system and the tables that use it');
SELECT throws_ok($$UPDATE sync_resolve.system SET name = 'crm2' WHERE name = 'crm'$$,
	'0A000', NULL, 'a system cannot be renamed (0A000)');
SELECT throws_ok($$TRUNCATE sync_resolve.system; SELECT pg_temp.went_through()$$,
	'55000', NULL, 'TRUNCATE of sync_resolve.system is refused like deleting ''local'' (55000)');

SELECT pg_temp.unchanged('refused system changes wrote nothing');

-- ==== track and untrack (DESIGN 3) ====

SELECT throws_ok($$SELECT sync_resolve.track('sr_err.plain', ARRAY['nosuch'])$$,
	'22023', NULL, 'track: an unknown system is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.plain', ARRAY['local'])$$,
	'22023', NULL, 'track: ''local'' in the list of systems is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.plain', ARRAY['crm', 'local'])$$,
	'22023', NULL, 'track: ''local'' among other systems is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.plain', NULL)$$,
	'22004', NULL, 'track: a NULL list of systems is refused (22004)');
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.plain', ARRAY['crm'], 'sum_delta')$$,
	'22023', NULL, 'track: a default strategy that does not fit every column (sum_delta) is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.plain', ARRAY['crm'], 'bogus')$$,
	'22023', NULL, 'track: an unknown default strategy is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.plain', ARRAY['crm'], on_delete_conflict => 'explode')$$,
	'22023', NULL, 'track: an invalid on_delete_conflict is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.track('sr_err.plain', ARRAY['crm'], match_on => ARRAY['nope']::name[])$$,
	'42703', NULL, 'track: a match_on column that does not exist is refused (42703)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.track('sr_err.item', ARRAY['crm'])$$,
	ARRAY['sr_err.item'], NULL,
	'track: tracking a table again is refused with a message naming the table');
SELECT throws_ok($$SELECT sync_resolve.untrack('sr_err.plain')$$,
	'55000', NULL, 'untrack: an untracked table is refused (55000)');

SELECT pg_temp.unchanged('refused track and untrack calls left no shadow, trigger or tracked row');

-- ==== the history is append-only (DESIGN 9) ====

SELECT throws_ok($$UPDATE sync_resolve.event SET kind = 'rewritten'$$,
	'42501', NULL, 'UPDATE of sync_resolve.event is refused (42501)');
SELECT throws_ok($$DELETE FROM sync_resolve.event$$,
	'42501', NULL, 'DELETE from sync_resolve.event is refused (42501)');
SELECT throws_ok($$TRUNCATE sync_resolve.event$$,
	'42501', NULL, 'TRUNCATE of sync_resolve.event is refused (42501)');
SELECT pg_temp.unchanged('the history is unchanged after the refused writes');

INSERT INTO sync_resolve.event (at, relid, kind, rule)
VALUES (now() - interval '2 days', 'sr_err.item', 'received', 'an old event for prune_events');
SELECT throws_ok($$SELECT sync_resolve.prune_events('-1 day')$$,
	'22023', 'prune_events: older_than -1 days is negative',
	'prune_events: a negative age is refused (22023): it deleted the whole history and every delivery id');
SELECT is(sync_resolve.prune_events('100000000 years'), 0::bigint,
	'prune_events: an age reaching back before the first timestamp deletes nothing (was a bare 22008)');
SELECT is(sync_resolve.prune_events('1 day'), 1::bigint,
	'prune_events deletes the events older than the given age');
SELECT pg_temp.unchanged('prune_events kept every newer event');

-- ==== resolve() (DESIGN 8) ====

UPDATE sr_err.item SET qty = 7 WHERE id = 1;
CREATE TEMP TABLE opened AS
SELECT (r).review_ids[1] AS id
FROM (SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 1, "qty": 8}') AS r) s;
SELECT isnt((SELECT id FROM opened), NULL, 'setup: a conflict on qty opened a review item');
CALL pg_temp.remember();

SELECT throws_ok($$SELECT sync_resolve.resolve(987654321, 'keep_local')$$,
	'42704', NULL, 'resolve: an unknown review id is refused (42704)');
SELECT throws_ok(format($$SELECT sync_resolve.resolve(%s, 'frobnicate')$$, (SELECT id FROM opened)),
	'22023', NULL, 'resolve: an unknown decision is refused (22023)');
SELECT throws_ok(format($$SELECT sync_resolve.resolve(%s, 'set_value')$$, (SELECT id FROM opened)),
	'22004', NULL, 'resolve: set_value without a value is refused (22004)');
SELECT throws_ok(format($$SELECT sync_resolve.resolve(%s, 'keep_local', '9')$$, (SELECT id FROM opened)),
	'22023', NULL, 'resolve: a value with keep_local is refused (22023)');
SELECT throws_ok(format($$SELECT sync_resolve.resolve(%s, 'take_incoming', '9')$$, (SELECT id FROM opened)),
	'22023', NULL, 'resolve: a value with take_incoming is refused (22023)');
SELECT throws_ok($$SELECT sync_resolve.resolve(NULL, 'keep_local')$$,
	'22004', NULL, 'resolve: a NULL review id is refused (22004)');
SELECT throws_ok(format($$SELECT sync_resolve.resolve(%s, NULL)$$, (SELECT id FROM opened)),
	'22004', NULL, 'resolve: a NULL decision is refused (22004)');
SELECT throws_ok(format($$SELECT sync_resolve.resolve(%s, 'set_value', '"nine"')$$, (SELECT id FROM opened)),
	'22P02', NULL, 'resolve: a set_value that does not cast to the column is refused (22P02)');
SELECT pg_temp.error_mentions(format($$SELECT sync_resolve.resolve(%s, 'set_value', '"nine"')$$, (SELECT id FROM opened)),
	ARRAY['"qty"', 'sr_err.item'], ARRAY['nine'],
	'resolve: the cast error names the column, the table and the value');

SELECT pg_temp.unchanged('refused decisions wrote nothing: the item is still open, the row untouched');
SELECT is((SELECT status FROM sync_resolve.resolve((SELECT id FROM opened), 'keep_local')),
	'resolved', 'resolve: keep_local closes the item');
SELECT throws_ok(format($$SELECT sync_resolve.resolve(%s, 'keep_local')$$, (SELECT id FROM opened)),
	'55000', NULL, 'resolve: an item already resolved is refused (55000)');

-- ==== privileges and member_role (DESIGN 13: 42501) ====

CALL pg_temp.remember();

-- the caller needs the ordinary privileges on the tracked table
SET ROLE sr_err_reader;
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 60, "name": "x"}')$$,
	'42501', NULL, 'privileges: a role that may only read the table cannot insert through apply (42501)');
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'crm', '{"id": 1, "name": "renamed"}')$$,
	'42501', NULL, 'privileges: a role that may only read the table cannot update through apply (42501)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'crm', '{"id": 1}')$$,
	'42501', NULL, 'privileges: a role that may only read the table cannot delete through apply_delete (42501)');
RESET ROLE;
SELECT pg_temp.unchanged('privileges: the refused calls wrote nothing');

-- a system with member_role can be acted as only by members of the role
SET ROLE sr_err_outsider;
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.item', 'secure', '{"id": 70, "name": "x"}')$$,
	'42501', NULL, 'member_role: a non-member cannot apply as the system (42501)');
SELECT throws_ok($$SELECT sync_resolve.apply_delete('sr_err.item', 'secure', '{"id": 1}')$$,
	'42501', NULL, 'member_role: a non-member cannot apply_delete as the system (42501)');
SELECT throws_ok($$SELECT * FROM sync_resolve.apply_batch('sr_err.item', 'secure', '[{"data": {"id": 70}}]')$$,
	'42501', NULL, 'member_role: a non-member cannot apply_batch as the system (42501)');
SELECT throws_ok($$SET LOCAL sync_resolve.source = 'secure';
		INSERT INTO sr_err.item (id, name) VALUES (71, 'through the trigger')$$,
	'42501', NULL, 'member_role: a non-member cannot write as the system with SET sync_resolve.source (42501)');
SELECT pg_temp.error_mentions($$SELECT sync_resolve.apply('sr_err.item', 'secure', '{"id": 70}')$$,
	ARRAY['sr_err_outsider', '"secure"'], NULL,
	'member_role: the error names the role and the system');
SELECT is((SELECT outcome FROM sync_resolve.apply('sr_err.item', 'crm', '{"id": 72, "name": "by the outsider"}')),
	'inserted', 'member_role: the same role may act as a system without member_role (its table privileges suffice)');
RESET ROLE;
SELECT is((SELECT count(*) FROM sr_err.item WHERE id IN (70, 71)), 0::bigint,
	'member_role: the refused calls wrote no row');

SET ROLE sr_err_member;
SELECT is((SELECT outcome FROM sync_resolve.apply('sr_err.item', 'secure', '{"id": 73, "name": "by a member"}')),
	'inserted', 'member_role: a member of the role may act as the system');
RESET ROLE;

-- a column the table numbers itself (GENERATED ALWAYS AS IDENTITY) is not a source's to
-- write: its field is refused by name (it was the UPDATE's bare 428C9, with
-- sync_resolve's internal statement as context)
CREATE TABLE sr_err.numbered (id integer PRIMARY KEY, v text, seq integer GENERATED ALWAYS AS IDENTITY);
SELECT sync_resolve.track('sr_err.numbered', ARRAY['crm']);
SELECT throws_ok($$SELECT sync_resolve.apply('sr_err.numbered', 'crm', '{"id": 1, "v": "a", "seq": 7}')$$,
	'428C9', 'field "seq" from system "crm" sets column "seq" of table sr_err.numbered, an identity column GENERATED ALWAYS',
	'apply: a value for an identity column GENERATED ALWAYS is refused by name (428C9)');
SELECT is((SELECT outcome FROM sync_resolve.apply('sr_err.numbered', 'crm', '{"id": 1, "v": "a"}')), 'inserted',
	'apply: the same row without it is taken, numbered by the table');

-- ==== the transaction stays usable after a savepoint rollback (DESIGN 14) ====

CREATE TEMP TABLE caught (sqlstate text);
DO $$
BEGIN
	-- fails while writing the tracked row: the table's CHECK constraint
	PERFORM sync_resolve.apply('sr_err.item', 'crm', '{"id": 11, "qty": 5000}');
EXCEPTION WHEN OTHERS THEN
	INSERT INTO caught VALUES (SQLSTATE);
END
$$;
SELECT is((SELECT sqlstate FROM caught), '23514', 'a failing apply was rolled back to a savepoint');
SELECT is((SELECT outcome FROM sync_resolve.apply('sr_err.item', 'crm', '{"id": 90, "name": "after the error"}')),
	'inserted', 'after the savepoint rollback, the next apply works');
UPDATE sr_err.item SET name = 'changed here' WHERE id = 90;
SELECT is((SELECT changes->'name'->>'by' FROM sync_resolve.shadow('sr_err.item', '{"id": 90}') WHERE system = 'local'),
	'local', 'after the savepoint rollback, a local write is still recorded as local');

SELECT * FROM finish();
ROLLBACK;
