-- test/api.sql: the public SQL surface is where DESIGN puts it.
--
-- Proves that CREATE EXTENSION sync_resolve creates:
--   * the schema and the tables of DESIGN (system, tracked, column_policy, event, review,
--     rejected, delivery) with the columns that DESIGN names;
--   * every API function of DESIGN sections 3, 4, 8, 9 and 10 with its argument types,
--     its argument names and defaults (callers use named arguments) and its result type;
--   * the types vclock, apply_result and conflict, the fields of the composite types in
--     DESIGN's order, and vclock's operators and jsonb casts (section 10);
--   * the system 'local';
--   * the registration of the policy tables with pg_extension_config_dump, so pg_dump
--     keeps them (and leaves out 'local', which CREATE EXTENSION makes);
--   * the privileges of section 13: PUBLIC cannot change policies, systems or reviews,
--     and can read the history but not change it.
--
-- Runs in the test database, which already has the extension: the extension is
-- re-created inside the transaction, and everything is rolled back at the end.

BEGIN;
SELECT plan(93);

SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sync_resolve CASCADE;
CREATE EXTENSION sync_resolve;
RESET client_min_messages;

-- ==== schema and tables ====

SELECT has_schema('sync_resolve', 'schema sync_resolve exists');
SELECT has_table('sync_resolve', 'system', 'table sync_resolve.system exists');
SELECT has_table('sync_resolve', 'tracked', 'table sync_resolve.tracked exists');
SELECT has_table('sync_resolve', 'column_policy', 'table sync_resolve.column_policy exists');
SELECT has_table('sync_resolve', 'event', 'table sync_resolve.event exists');
SELECT has_table('sync_resolve', 'review', 'table sync_resolve.review exists');
SELECT has_table('sync_resolve', 'rejected', 'table sync_resolve.rejected exists');
SELECT has_table('sync_resolve', 'delivery', 'table sync_resolve.delivery exists');

-- the columns a DBA edits with plain DML (DESIGN 3), the review queue's (DESIGN 8)
SELECT ok(NOT EXISTS (
		SELECT c FROM unnest(ARRAY['name', 'priority', 'member_role', 'replication_origin']) AS c
		WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
						  WHERE a.attrelid = 'sync_resolve.system'::regclass AND a.attname = c
						    AND a.attnum > 0 AND NOT a.attisdropped)),
	'sync_resolve.system has the columns of add_system()');
SELECT ok(NOT EXISTS (
		SELECT c FROM unnest(ARRAY['relid', 'systems', 'default_strategy', 'match_on', 'on_delete_conflict',
								   'alert_per_hour']) AS c
		WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
						  WHERE a.attrelid = 'sync_resolve.tracked'::regclass AND a.attname = c
						    AND a.attnum > 0 AND NOT a.attisdropped)),
	'sync_resolve.tracked has the columns of track() and alert_per_hour');
SELECT ok(NOT EXISTS (
		SELECT c FROM unnest(ARRAY['relid', 'column_name', 'strategy', 'owner', 'writers', 'col_group',
								   'custom_fn', 'on_unauthorized']) AS c
		WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
						  WHERE a.attrelid = 'sync_resolve.column_policy'::regclass AND a.attname = c
						    AND a.attnum > 0 AND NOT a.attisdropped)),
	'sync_resolve.column_policy has the columns of set_policy()');
SELECT ok(NOT EXISTS (
		SELECT c FROM unnest(ARRAY['id', 'relid', 'key', 'column_name', 'source', 'local_value', 'incoming_value',
								   'base_value', 'strategy', 'reason', 'status', 'created_at', 'updated_at',
								   'resolved_at', 'resolved_by', 'decision', 'note']) AS c
		WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
						  WHERE a.attrelid = 'sync_resolve.review'::regclass AND a.attname = c
						    AND a.attnum > 0 AND NOT a.attisdropped)),
	'sync_resolve.review has the columns of DESIGN 8');
SELECT ok(NOT EXISTS (
		SELECT c FROM unnest(ARRAY['relid', 'source', 'position', 'element', 'sqlstate', 'message']) AS c
		WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
						  WHERE a.attrelid = 'sync_resolve.rejected'::regclass AND a.attname = c
						    AND a.attnum > 0 AND NOT a.attisdropped)),
	'sync_resolve.rejected records the table, source, element, its position and the error');

-- ==== types (DESIGN 4, 5, 10) ====

SELECT has_type('sync_resolve', 'vclock', 'type sync_resolve.vclock exists');
SELECT has_type('sync_resolve', 'apply_result', 'type sync_resolve.apply_result exists');
SELECT has_type('sync_resolve', 'conflict', 'type sync_resolve.conflict exists');
SELECT has_composite('sync_resolve', 'apply_result', 'sync_resolve.apply_result is a composite type');
SELECT has_composite('sync_resolve', 'conflict', 'sync_resolve.conflict is a composite type');

SELECT results_eq(
	$$SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod)
	  FROM pg_attribute a
	  WHERE a.attrelid = (SELECT typrelid FROM pg_type WHERE oid = 'sync_resolve.apply_result'::regtype)
		AND a.attnum > 0 AND NOT a.attisdropped
	  ORDER BY a.attnum$$,
	$$VALUES ('outcome', 'text'), ('key', 'jsonb'), ('applied', 'text[]'), ('kept', 'text[]'),
			 ('queued', 'text[]'), ('rejected', 'text[]'), ('review_ids', 'bigint[]')$$,
	'apply_result is (outcome text, key jsonb, applied text[], kept text[], queued text[], rejected text[], review_ids bigint[])');
SELECT results_eq(
	$$SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod)
	  FROM pg_attribute a
	  WHERE a.attrelid = (SELECT typrelid FROM pg_type WHERE oid = 'sync_resolve.conflict'::regtype)
		AND a.attnum > 0 AND NOT a.attisdropped
	  ORDER BY a.attnum$$,
	$$VALUES ('relid', 'regclass'), ('key', 'jsonb'), ('column_name', 'text'), ('source', 'text'),
			 ('local_value', 'jsonb'), ('incoming_value', 'jsonb'), ('base_value', 'jsonb'),
			 ('local_changed_at', 'timestamp with time zone'), ('incoming_changed_at', 'timestamp with time zone'),
			 ('local_writer', 'text')$$,
	'conflict has the fields of DESIGN 5, in order, with their types');

-- vclock: comparison operators and casts to and from jsonb
SELECT has_operator('sync_resolve.vclock', 'sync_resolve', '=', 'sync_resolve.vclock', 'boolean',
	'operator vclock = vclock exists');
SELECT has_operator('sync_resolve.vclock', 'sync_resolve', '<', 'sync_resolve.vclock', 'boolean',
	'operator vclock < vclock (happened before) exists');
SELECT has_operator('sync_resolve.vclock', 'sync_resolve', '<=', 'sync_resolve.vclock', 'boolean',
	'operator vclock <= vclock exists');
SELECT has_operator('sync_resolve.vclock', 'sync_resolve', '>', 'sync_resolve.vclock', 'boolean',
	'operator vclock > vclock exists');
SELECT has_operator('sync_resolve.vclock', 'sync_resolve', '>=', 'sync_resolve.vclock', 'boolean',
	'operator vclock >= vclock exists');
SELECT has_operator('sync_resolve.vclock', 'sync_resolve', '||', 'sync_resolve.vclock', 'boolean',
	'operator vclock || vclock (concurrent) exists');
SELECT has_cast('sync_resolve.vclock', 'jsonb', 'cast from vclock to jsonb exists');
SELECT has_cast('jsonb', 'sync_resolve.vclock', 'cast from jsonb to vclock exists');

-- ==== functions: argument types (DESIGN 3, 4, 8, 9, 10) ====

SELECT has_function('sync_resolve', 'apply',
	ARRAY['regclass', 'text', 'jsonb', 'timestamptz', 'sync_resolve.vclock', 'text'],
	'apply(regclass, text, jsonb, timestamptz, vclock, text) exists');
SELECT has_function('sync_resolve', 'apply_delete',
	ARRAY['regclass', 'text', 'jsonb', 'timestamptz', 'sync_resolve.vclock', 'text'],
	'apply_delete(regclass, text, jsonb, timestamptz, vclock, text) exists');
SELECT has_function('sync_resolve', 'apply_batch', ARRAY['regclass', 'text', 'jsonb', 'text'],
	'apply_batch(regclass, text, jsonb, text) exists');
SELECT has_function('sync_resolve', 'add_system', ARRAY['text', 'integer', 'regrole', 'text', 'boolean'],
	'add_system(text, integer, regrole, text, boolean) exists');
SELECT has_function('sync_resolve', 'track', ARRAY['regclass', 'text[]', 'text', 'name[]', 'text'],
	'track(regclass, text[], text, name[], text) exists');
SELECT has_function('sync_resolve', 'untrack', ARRAY['regclass'],
	'untrack(regclass) exists');
SELECT has_function('sync_resolve', 'set_policy',
	ARRAY['regclass', 'name', 'text', 'text', 'text[]', 'text', 'regprocedure', 'text', 'text', 'text', 'text', 'text[]'],
	'set_policy(regclass, name, text, text, text[], text, regprocedure, text, text, text, text, text[]) exists');
SELECT has_function('sync_resolve', 'resolve', ARRAY['bigint', 'text', 'jsonb', 'text'],
	'resolve(bigint, text, jsonb, text) exists');
SELECT has_function('sync_resolve', 'explain', ARRAY['regclass', 'jsonb'],
	'explain(regclass, jsonb) exists');
SELECT has_function('sync_resolve', 'prune_events', ARRAY['interval'],
	'prune_events(interval) exists');
SELECT has_function('sync_resolve', 'vclock_compare', ARRAY['sync_resolve.vclock', 'sync_resolve.vclock'],
	'vclock_compare(vclock, vclock) exists');
SELECT has_function('sync_resolve', 'vclock_merge', ARRAY['sync_resolve.vclock', 'sync_resolve.vclock'],
	'vclock_merge(vclock, vclock) exists');
SELECT has_function('sync_resolve', 'vclock_tick', ARRAY['sync_resolve.vclock', 'text'],
	'vclock_tick(vclock, text) exists');

-- ==== functions: argument names and defaults, as DESIGN writes them ====

SELECT is(pg_get_function_arguments('sync_resolve.apply(regclass, text, jsonb, timestamptz, sync_resolve.vclock, text)'::regprocedure),
	'tbl regclass, source text, payload jsonb, changed_at timestamp with time zone DEFAULT NULL::timestamp with time zone, version sync_resolve.vclock DEFAULT NULL::sync_resolve.vclock, event_id text DEFAULT NULL::text',
	'apply: argument names and defaults');
SELECT is(pg_get_function_arguments('sync_resolve.apply_delete(regclass, text, jsonb, timestamptz, sync_resolve.vclock, text)'::regprocedure),
	'tbl regclass, source text, key jsonb, changed_at timestamp with time zone DEFAULT NULL::timestamp with time zone, version sync_resolve.vclock DEFAULT NULL::sync_resolve.vclock, event_id text DEFAULT NULL::text',
	'apply_delete: argument names and defaults');
SELECT is(pg_get_function_arguments('sync_resolve.apply_batch(regclass, text, jsonb, text)'::regprocedure),
	'tbl regclass, source text, changes jsonb, on_error text DEFAULT ''raise''::text',
	'apply_batch: argument names and defaults (on_error => ''raise'')');
SELECT is(pg_get_function_arguments('sync_resolve.add_system(text, integer, regrole, text, boolean)'::regprocedure),
	'name text, priority integer DEFAULT 100, member_role regrole DEFAULT NULL::regrole, replication_origin text DEFAULT NULL::text, ignore_unknown_fields boolean DEFAULT false',
	'add_system: argument names and defaults (priority => 100)');
SELECT is(pg_get_function_arguments('sync_resolve.track(regclass, text[], text, name[], text)'::regprocedure),
	'tbl regclass, systems text[], default_strategy text DEFAULT ''review''::text, match_on name[] DEFAULT NULL::name[], on_delete_conflict text DEFAULT ''review''::text',
	'track: argument names and defaults (review, review)');
SELECT is(pg_get_function_arguments('sync_resolve.untrack(regclass)'::regprocedure),
	'tbl regclass', 'untrack: argument name');
SELECT is(pg_get_function_arguments('sync_resolve.set_policy(regclass, name, text, text, text[], text, regprocedure, text, text, text, text, text[])'::regprocedure),
	'tbl regclass, col name, strategy text, owner text DEFAULT NULL::text, writers text[] DEFAULT NULL::text[], col_group text DEFAULT NULL::text, custom_fn regprocedure DEFAULT NULL::regprocedure, on_unauthorized text DEFAULT ''reject''::text, unmapped text DEFAULT ''pass''::text, check_expr text DEFAULT NULL::text, on_invalid text DEFAULT ''reject''::text, normalization text[] DEFAULT NULL::text[]',
	'set_policy: argument names and defaults (on_unauthorized => ''reject'')');
SELECT is(pg_get_function_arguments('sync_resolve.resolve(bigint, text, jsonb, text)'::regprocedure),
	'review_id bigint, decision text, value jsonb DEFAULT NULL::jsonb, note text DEFAULT NULL::text',
	'resolve: argument names and defaults');
SELECT is(pg_get_function_arguments('sync_resolve.explain(regclass, jsonb)'::regprocedure),
	'tbl regclass, key jsonb', 'explain: argument names');
SELECT is(pg_get_function_arguments('sync_resolve.prune_events(interval)'::regprocedure),
	'older_than interval', 'prune_events: argument name');

-- ==== functions: results ====
-- (function_returns matches argument types by their canonical names)

SELECT function_returns('sync_resolve', 'apply',
	ARRAY['regclass', 'text', 'jsonb', 'timestamp with time zone', 'sync_resolve.vclock', 'text'],
	'sync_resolve.apply_result', 'apply returns sync_resolve.apply_result');
SELECT function_returns('sync_resolve', 'apply_delete',
	ARRAY['regclass', 'text', 'jsonb', 'timestamp with time zone', 'sync_resolve.vclock', 'text'],
	'sync_resolve.apply_result', 'apply_delete returns sync_resolve.apply_result');
SELECT function_returns('sync_resolve', 'apply_batch', ARRAY['regclass', 'text', 'jsonb', 'text'],
	'setof sync_resolve.apply_result', 'apply_batch returns SETOF sync_resolve.apply_result');
SELECT is(pg_get_function_result('sync_resolve.explain(regclass, jsonb)'::regprocedure),
	'TABLE(at timestamp with time zone, source text, kind text, column_name text, detail text)',
	'explain returns TABLE(at, source, kind, column_name, detail)');
SELECT function_returns('sync_resolve', 'prune_events', ARRAY['interval'], 'bigint',
	'prune_events returns the number of events deleted (bigint)');
SELECT function_returns('sync_resolve', 'vclock_compare', ARRAY['sync_resolve.vclock', 'sync_resolve.vclock'],
	'text', 'vclock_compare returns text');
SELECT function_returns('sync_resolve', 'vclock_merge', ARRAY['sync_resolve.vclock', 'sync_resolve.vclock'],
	'sync_resolve.vclock', 'vclock_merge returns sync_resolve.vclock');
SELECT function_returns('sync_resolve', 'vclock_tick', ARRAY['sync_resolve.vclock', 'text'],
	'sync_resolve.vclock', 'vclock_tick returns sync_resolve.vclock');
SELECT is(sync_resolve.vclock_compare('{crm:1}', '{crm:2}'), 'before',
	'vclock_compare answers in DESIGN''s words (before)');
SELECT is(sync_resolve.vclock_compare('{crm:2,local:1}', '{crm:1,local:2}'), 'concurrent',
	'vclock_compare answers in DESIGN''s words (concurrent)');

-- ==== CREATE EXTENSION registers 'local' ====

SELECT results_eq($$SELECT name, priority FROM sync_resolve.system$$,
	$$VALUES ('local'::text, 100)$$,
	'CREATE EXTENSION registers system ''local'' with priority 100, and nothing else');
SELECT is((SELECT member_role FROM sync_resolve.system WHERE name = 'local'), NULL,
	'''local'' has no member_role');
SELECT is((SELECT count(*) FROM sync_resolve.tracked), 0::bigint, 'no table is tracked after CREATE EXTENSION');

-- ==== pg_dump keeps the policy tables (DESIGN 3) ====

SELECT ok((SELECT 'sync_resolve.system'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'sync_resolve'),
	'sync_resolve.system is registered with pg_extension_config_dump');
SELECT ok((SELECT 'sync_resolve.tracked'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'sync_resolve'),
	'sync_resolve.tracked is registered with pg_extension_config_dump');
SELECT ok((SELECT 'sync_resolve.column_policy'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'sync_resolve'),
	'sync_resolve.column_policy is registered with pg_extension_config_dump');
SELECT ok((SELECT 'sync_resolve.event'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'sync_resolve'),
	'sync_resolve.event (the history) is registered with pg_extension_config_dump');
SELECT ok((SELECT 'sync_resolve.review'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'sync_resolve'),
	'sync_resolve.review is registered with pg_extension_config_dump');

-- pg_dump must leave out the row CREATE EXTENSION makes, or a restore would fail on it
CREATE FUNCTION pg_temp.dumped_rows(tbl regclass) RETURNS bigint
	LANGUAGE plpgsql AS $fn$
DECLARE
	cond text;
	n bigint;
BEGIN
	SELECT e.extcondition[array_position(e.extconfig, tbl::oid)] INTO cond
	FROM pg_extension e WHERE e.extname = 'sync_resolve';
	EXECUTE format('SELECT count(*) FROM %s %s', tbl, coalesce(cond, '')) INTO n;
	RETURN n;
END
$fn$;
SELECT is(pg_temp.dumped_rows('sync_resolve.system'), 0::bigint,
	'the dump filter of sync_resolve.system leaves out ''local''');
DO $$ BEGIN PERFORM sync_resolve.add_system('crm'); END $$;
SELECT is(pg_temp.dumped_rows('sync_resolve.system'), 1::bigint,
	'the dump filter of sync_resolve.system keeps the systems a DBA added');

-- ==== privileges (DESIGN 13) ====

SELECT ok(NOT has_function_privilege('public', 'sync_resolve.track(regclass, text[], text, name[], text)', 'EXECUTE'),
	'PUBLIC cannot EXECUTE track');
SELECT ok(NOT has_function_privilege('public', 'sync_resolve.untrack(regclass)', 'EXECUTE'),
	'PUBLIC cannot EXECUTE untrack');
SELECT ok(NOT has_function_privilege('public', 'sync_resolve.set_policy(regclass, name, text, text, text[], text, regprocedure, text, text, text, text, text[])', 'EXECUTE'),
	'PUBLIC cannot EXECUTE set_policy');
SELECT ok(NOT has_function_privilege('public', 'sync_resolve.add_system(text, integer, regrole, text, boolean)', 'EXECUTE'),
	'PUBLIC cannot EXECUTE add_system');
SELECT ok(NOT has_function_privilege('public', 'sync_resolve.resolve(bigint, text, jsonb, text)', 'EXECUTE'),
	'PUBLIC cannot EXECUTE resolve');
SELECT ok(NOT has_function_privilege('public', 'sync_resolve.prune_events(interval)', 'EXECUTE'),
	'PUBLIC cannot EXECUTE prune_events');
SELECT ok(has_function_privilege('public', 'sync_resolve.apply(regclass, text, jsonb, timestamptz, sync_resolve.vclock, text)', 'EXECUTE')
	  AND has_function_privilege('public', 'sync_resolve.apply_delete(regclass, text, jsonb, timestamptz, sync_resolve.vclock, text)', 'EXECUTE')
	  AND has_function_privilege('public', 'sync_resolve.apply_batch(regclass, text, jsonb, text)', 'EXECUTE'),
	'PUBLIC can EXECUTE apply, apply_delete and apply_batch (the tracked table''s own privileges decide)');
SELECT ok(has_schema_privilege('public', 'sync_resolve', 'USAGE'), 'PUBLIC has USAGE on schema sync_resolve');
SELECT ok(has_table_privilege('public', 'sync_resolve.event', 'SELECT'), 'PUBLIC can SELECT sync_resolve.event');
SELECT ok(NOT has_table_privilege('public', 'sync_resolve.event', 'INSERT')
	  AND NOT has_table_privilege('public', 'sync_resolve.event', 'UPDATE')
	  AND NOT has_table_privilege('public', 'sync_resolve.event', 'DELETE')
	  AND NOT has_table_privilege('public', 'sync_resolve.event', 'TRUNCATE'),
	'PUBLIC cannot INSERT, UPDATE, DELETE or TRUNCATE sync_resolve.event');
SELECT ok(NOT has_table_privilege('public', 'sync_resolve.system', 'INSERT, UPDATE, DELETE, TRUNCATE'),
	'PUBLIC cannot write sync_resolve.system');
SELECT ok(NOT has_table_privilege('public', 'sync_resolve.tracked', 'INSERT, UPDATE, DELETE, TRUNCATE'),
	'PUBLIC cannot write sync_resolve.tracked');
SELECT ok(NOT has_table_privilege('public', 'sync_resolve.column_policy', 'INSERT, UPDATE, DELETE, TRUNCATE'),
	'PUBLIC cannot write sync_resolve.column_policy');
SELECT ok(NOT has_table_privilege('public', 'sync_resolve.review', 'INSERT, UPDATE, DELETE, TRUNCATE'),
	'PUBLIC cannot write sync_resolve.review (decisions go through resolve)');
SELECT ok(NOT has_table_privilege('public', 'sync_resolve.delivery', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'),
	'PUBLIC cannot reach sync_resolve.delivery');
SELECT ok(NOT has_table_privilege('public', 'sync_resolve.rejected', 'INSERT, UPDATE, DELETE, TRUNCATE'),
	'PUBLIC cannot write sync_resolve.rejected');
SELECT is((SELECT count(*) FROM pg_proc p
		   WHERE p.pronamespace = 'sync_resolve'::regnamespace AND p.prosecdef
			 AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=%')),
	0::bigint, 'every SECURITY DEFINER function of sync_resolve pins its search_path');

-- ==== the triggers that guard the policy tables and the history ====

SELECT has_trigger('sync_resolve', 'system', 'check_system', 'sync_resolve.system is validated by a trigger');
SELECT has_trigger('sync_resolve', 'tracked', 'check_tracked', 'sync_resolve.tracked is validated by a trigger');
SELECT has_trigger('sync_resolve', 'column_policy', 'check_policy', 'sync_resolve.column_policy is validated by a trigger');
SELECT has_trigger('sync_resolve', 'event', 'append_only', 'sync_resolve.event refuses UPDATE and DELETE by a trigger');
SELECT ok((SELECT count(*) FROM pg_trigger
		   WHERE tgrelid = 'sync_resolve.event'::regclass AND NOT tgisinternal
			 AND tgtype & 32 <> 0) >= 1,
	'sync_resolve.event refuses TRUNCATE by a trigger');

SELECT * FROM finish();
ROLLBACK;
