-- sync_resolve: column-level conflict resolution for tables written by several systems.
-- The one source of the install script; the Makefile builds sync_resolve--<version>.sql from it.
\echo Use "CREATE EXTENSION sync_resolve" to load this file. \quit

-- ==== vclock: version vectors (DESIGN 10) ====
-- A version vector such as {crm:6,local:11}: a counter per system.
-- Happened-before is a partial order, so the type has no btree operator
-- class (nor a hash one): values are compared with the operators below and
-- are neither sorted nor indexed.

CREATE TYPE sync_resolve.vclock;

CREATE FUNCTION sync_resolve.vclock_in(cstring)
	RETURNS sync_resolve.vclock
	AS 'MODULE_PATHNAME', 'vclock_in'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_out(sync_resolve.vclock)
	RETURNS cstring
	AS 'MODULE_PATHNAME', 'vclock_out'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_recv(internal)
	RETURNS sync_resolve.vclock
	AS 'MODULE_PATHNAME', 'vclock_recv'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_send(sync_resolve.vclock)
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'vclock_send'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE sync_resolve.vclock (
	INPUT = sync_resolve.vclock_in,
	OUTPUT = sync_resolve.vclock_out,
	RECEIVE = sync_resolve.vclock_recv,
	SEND = sync_resolve.vclock_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = extended
);

COMMENT ON TYPE sync_resolve.vclock IS
	'version vector: a counter per system, such as {crm:6,local:11}, partially ordered by happened-before';

-- comparison
CREATE FUNCTION sync_resolve.vclock_eq(sync_resolve.vclock, sync_resolve.vclock)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_eq'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_ne(sync_resolve.vclock, sync_resolve.vclock)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_ne'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_lt(sync_resolve.vclock, sync_resolve.vclock)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_lt'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_le(sync_resolve.vclock, sync_resolve.vclock)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_le'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_gt(sync_resolve.vclock, sync_resolve.vclock)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_gt'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_ge(sync_resolve.vclock, sync_resolve.vclock)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_ge'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_concurrent(sync_resolve.vclock, sync_resolve.vclock)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_concurrent'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.vclock_compare(a sync_resolve.vclock, b sync_resolve.vclock)
	RETURNS text
	AS 'MODULE_PATHNAME', 'vclock_compare'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION sync_resolve.vclock_compare(sync_resolve.vclock, sync_resolve.vclock) IS
	'how a stands to b: before (a happened before b), after, equal or concurrent';

-- a = b: the same counter for every system
CREATE OPERATOR sync_resolve.= (
	LEFTARG = sync_resolve.vclock,
	RIGHTARG = sync_resolve.vclock,
	FUNCTION = sync_resolve.vclock_eq,
	COMMUTATOR = OPERATOR(sync_resolve.=),
	NEGATOR = OPERATOR(sync_resolve.<>),
	RESTRICT = eqsel,
	JOIN = eqjoinsel
);

CREATE OPERATOR sync_resolve.<> (
	LEFTARG = sync_resolve.vclock,
	RIGHTARG = sync_resolve.vclock,
	FUNCTION = sync_resolve.vclock_ne,
	COMMUTATOR = OPERATOR(sync_resolve.<>),
	NEGATOR = OPERATOR(sync_resolve.=),
	RESTRICT = neqsel,
	JOIN = neqjoinsel
);

-- a < b: a happened before b.  In a partial order "not a < b" does not
-- mean a >= b (the two may be concurrent), so the inequalities have
-- commutators but no negators.
CREATE OPERATOR sync_resolve.< (
	LEFTARG = sync_resolve.vclock,
	RIGHTARG = sync_resolve.vclock,
	FUNCTION = sync_resolve.vclock_lt,
	COMMUTATOR = OPERATOR(sync_resolve.>),
	RESTRICT = scalarltsel,
	JOIN = scalarltjoinsel
);

-- a <= b: every counter of a is at most b's
CREATE OPERATOR sync_resolve.<= (
	LEFTARG = sync_resolve.vclock,
	RIGHTARG = sync_resolve.vclock,
	FUNCTION = sync_resolve.vclock_le,
	COMMUTATOR = OPERATOR(sync_resolve.>=),
	RESTRICT = scalarlesel,
	JOIN = scalarlejoinsel
);

CREATE OPERATOR sync_resolve.> (
	LEFTARG = sync_resolve.vclock,
	RIGHTARG = sync_resolve.vclock,
	FUNCTION = sync_resolve.vclock_gt,
	COMMUTATOR = OPERATOR(sync_resolve.<),
	RESTRICT = scalargtsel,
	JOIN = scalargtjoinsel
);

CREATE OPERATOR sync_resolve.>= (
	LEFTARG = sync_resolve.vclock,
	RIGHTARG = sync_resolve.vclock,
	FUNCTION = sync_resolve.vclock_ge,
	COMMUTATOR = OPERATOR(sync_resolve.<=),
	RESTRICT = scalargesel,
	JOIN = scalargejoinsel
);

-- a || b: concurrent, neither <= the other.  Symmetric, so its own
-- commutator.  No estimator models concurrency; the planner's default
-- selectivity applies.
CREATE OPERATOR sync_resolve.|| (
	LEFTARG = sync_resolve.vclock,
	RIGHTARG = sync_resolve.vclock,
	FUNCTION = sync_resolve.vclock_concurrent,
	COMMUTATOR = OPERATOR(sync_resolve.||)
);

-- building vectors
CREATE FUNCTION sync_resolve.vclock_merge(a sync_resolve.vclock, b sync_resolve.vclock)
	RETURNS sync_resolve.vclock
	AS 'MODULE_PATHNAME', 'vclock_merge'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION sync_resolve.vclock_merge(sync_resolve.vclock, sync_resolve.vclock) IS
	'pointwise maximum of a and b: the smallest vector that is >= both; NULL when either is NULL';

CREATE FUNCTION sync_resolve.vclock_tick(v sync_resolve.vclock, system text)
	RETURNS sync_resolve.vclock
	AS 'MODULE_PATHNAME', 'vclock_tick'
	LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;

COMMENT ON FUNCTION sync_resolve.vclock_tick(sync_resolve.vclock, text) IS
	'v with the counter of system advanced by one; a NULL v counts as {}';

CREATE FUNCTION sync_resolve.vclock_get(v sync_resolve.vclock, system text)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'vclock_get'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION sync_resolve.vclock_get(sync_resolve.vclock, text) IS
	'the counter of system in v, 0 when v does not hold it';

-- jsonb: {"crm": 6, "local": 11}
CREATE FUNCTION sync_resolve.vclock_to_jsonb(sync_resolve.vclock)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'vclock_to_jsonb'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION sync_resolve.jsonb_to_vclock(jsonb)
	RETURNS sync_resolve.vclock
	AS 'MODULE_PATHNAME', 'jsonb_to_vclock'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (sync_resolve.vclock AS jsonb)
	WITH FUNCTION sync_resolve.vclock_to_jsonb(sync_resolve.vclock);

CREATE CAST (jsonb AS sync_resolve.vclock)
	WITH FUNCTION sync_resolve.jsonb_to_vclock(jsonb);
-- ==== end vclock ====

-- ==== systems and policies (DESIGN 3) ====

CREATE TABLE sync_resolve.system (
	name text PRIMARY KEY,
	priority integer NOT NULL DEFAULT 100,
	member_role regrole,
	replication_origin text UNIQUE,
	ignore_unknown_fields boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sync_resolve.system IS
	'Participants that hold a copy of the data; ''local'' is this database''s own users';

CREATE TABLE sync_resolve.tracked (
	relid regclass PRIMARY KEY,
	systems text[] NOT NULL,
	default_strategy text NOT NULL DEFAULT 'review',
	match_on name[],
	on_delete_conflict text NOT NULL DEFAULT 'review',
	shadow text,
	alert_per_hour integer CHECK (alert_per_hour >= 0),
	tracked_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sync_resolve.tracked IS
	'Tables whose rows sync_resolve keeps in agreement with external systems';

CREATE TABLE sync_resolve.column_policy (
	relid regclass NOT NULL REFERENCES sync_resolve.tracked ON DELETE CASCADE,
	column_name name NOT NULL,
	strategy text NOT NULL,
	owner text,
	writers text[],
	col_group text,
	custom_fn regprocedure,
	on_unauthorized text NOT NULL DEFAULT 'reject',
	unmapped text NOT NULL DEFAULT 'pass',
	check_expr text,
	on_invalid text NOT NULL DEFAULT 'reject',
	normalization text[],
	attnum smallint,
	PRIMARY KEY (relid, column_name)
);
COMMENT ON TABLE sync_resolve.column_policy IS
	'How a conflict on one column is decided; columns without a row use tracked.default_strategy';
COMMENT ON COLUMN sync_resolve.column_policy.attnum IS
	'Maintained by sync_resolve: follows the column through a rename';
COMMENT ON COLUMN sync_resolve.column_policy.unmapped IS
	'A value value_map does not know: pass, null, default, review or reject';
COMMENT ON COLUMN sync_resolve.column_policy.check_expr IS
	'A boolean SQL expression over the column (by its name) that an incoming value must pass';
COMMENT ON COLUMN sync_resolve.column_policy.on_invalid IS
	'An incoming value failing check_expr or sync_resolve.transition: reject or review';
COMMENT ON COLUMN sync_resolve.column_policy.normalization IS
	'Differences compare ignores: trim (surrounding white space), case (letter case)';

CREATE TABLE sync_resolve.field_map (
	relid regclass NOT NULL REFERENCES sync_resolve.tracked ON DELETE CASCADE,
	system text NOT NULL,
	external_field text NOT NULL,
	column_name name NOT NULL,
	inbound_fn regprocedure,
	outbound_fn regprocedure,
	attnum smallint,
	PRIMARY KEY (relid, system, external_field),
	UNIQUE (relid, system, column_name)
);
COMMENT ON TABLE sync_resolve.field_map IS
	'A system''s own field names for a table''s columns; column $external_id names its record id field';

CREATE TABLE sync_resolve.value_map (
	relid regclass NOT NULL REFERENCES sync_resolve.tracked ON DELETE CASCADE,
	column_name name NOT NULL,
	system text NOT NULL,
	external_value text NOT NULL,
	local_value text NOT NULL,
	attnum smallint,
	PRIMARY KEY (relid, column_name, system, external_value)
);
COMMENT ON TABLE sync_resolve.value_map IS
	'A system''s own values for a column''s values, both ways (the first external value by name goes out)';

CREATE TABLE sync_resolve.transition (
	relid regclass NOT NULL REFERENCES sync_resolve.tracked ON DELETE CASCADE,
	column_name name NOT NULL,
	from_value text,
	to_value text NOT NULL,
	attnum smallint,
	UNIQUE NULLS NOT DISTINCT (relid, column_name, from_value, to_value)
);
COMMENT ON TABLE sync_resolve.transition IS
	'Allowed changes of a column from a source (from_value NULL: from no value); a column with none takes any';

-- ==== history, deliveries, review queue (DESIGN 8, 9) ====

CREATE TABLE sync_resolve.event (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	relid regclass NOT NULL,
	key jsonb,
	kind text NOT NULL,
	column_name text,
	source text,
	old_value jsonb,
	incoming_value jsonb,
	base_value jsonb,
	new_value jsonb,
	version sync_resolve.vclock,
	source_changed_at timestamptz,
	received_at timestamptz,
	rule text,
	decision text,
	event_id text,
	review_id bigint,
	actor text,
	strategy text
);
COMMENT ON COLUMN sync_resolve.event.strategy IS
	'A conflict''s: what decided it -- the column''s strategy, on_delete_conflict, or constraint';
-- a row's history, found by its key's hash: each entry is small, and the
-- index is searched by comparing integers, not jsonb values -- every apply()
-- inserts one or two entries.  A lookup adds key = ... for equal hashes.
CREATE INDEX event_row_idx ON sync_resolve.event
	(relid, (pg_catalog.jsonb_hash_extended(key, 0)));
COMMENT ON TABLE sync_resolve.event IS
	'Append-only history: every decision sync_resolve made, with the rule behind it';
-- conflicts and refusals by table and time, for health, conflict_stats and
-- the alert (DESIGN 12); the events of a write without either skip it
CREATE INDEX event_conflict_idx ON sync_resolve.event (relid, kind, at)
	WHERE kind IN ('conflict', 'unauthorized', 'invalid', 'unmapped');

CREATE TABLE sync_resolve.delivery (
	system text NOT NULL,
	event_id text NOT NULL,
	relid regclass NOT NULL,
	key jsonb,
	received_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (system, event_id)
);
COMMENT ON TABLE sync_resolve.delivery IS
	'Delivery ids already received, per system, for de-duplication';

CREATE TABLE sync_resolve.review (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	relid regclass NOT NULL,
	key jsonb NOT NULL,
	column_name text,
	columns text[] NOT NULL,
	kind text NOT NULL DEFAULT 'conflict',
	source text NOT NULL,
	local_value jsonb,
	incoming_value jsonb,
	base_value jsonb,
	strategy text,
	reason text,
	status text NOT NULL DEFAULT 'open'
		CHECK (status IN ('open', 'resolved', 'dismissed')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	resolved_at timestamptz,
	resolved_by name,
	decision text,
	note text
);
CREATE UNIQUE INDEX review_open_idx ON sync_resolve.review
	(relid, key, (coalesce(column_name, ''))) WHERE status = 'open';
COMMENT ON TABLE sync_resolve.review IS
	'Conflicts a person decides; one open item per held (row, column or group)';

CREATE TABLE sync_resolve.rejected (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT now(),
	relid regclass NOT NULL,
	source text NOT NULL,
	position integer NOT NULL,
	element jsonb,
	sqlstate text NOT NULL,
	message text NOT NULL,
	detail text,
	hint text,
	actor text
);
CREATE INDEX rejected_at_idx ON sync_resolve.rejected (relid, at);
COMMENT ON TABLE sync_resolve.rejected IS
	'Elements of apply_batch(..., on_error => ''reject'') that failed, with the error';

-- ==== outbox and identities (DESIGN 7) ====

-- op and status are text, kept to their values by domains: a table's CHECK
-- constraints are parsed and planned again by every statement that writes it
CREATE DOMAIN sync_resolve.outbox_op AS text
	CHECK (VALUE IN ('upsert', 'delete'));
CREATE DOMAIN sync_resolve.outbox_status AS text
	CHECK (VALUE IN ('pending', 'in_flight', 'sent', 'failed', 'dead'));
CREATE TABLE sync_resolve.outbox (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	relid regclass NOT NULL,
	key jsonb NOT NULL,
	target text NOT NULL,
	op sync_resolve.outbox_op NOT NULL,
	payload jsonb,
	external_id text,
	idempotency_key text NOT NULL DEFAULT pg_catalog.gen_random_uuid()::text,
	status sync_resolve.outbox_status NOT NULL DEFAULT 'pending',
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	lease_until timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	sent_at timestamptz,
	last_error text,
	version sync_resolve.vclock,
	cause text
) WITH (fillfactor = 70);	-- room on the page: a change merging into a waiting entry is a HOT update
-- Queueing writes three indexes; the other two only list entries handed
-- out, which a pending one (never handed out) is not.
-- at most one entry per (row, target) waits to be sent; later changes merge into it
-- (the key's hash first: see event_row_idx; the key makes it unique)
CREATE UNIQUE INDEX outbox_waiting_idx ON sync_resolve.outbox
	(relid, (pg_catalog.jsonb_hash_extended(key, 0)), key, target)
	WHERE status IN ('pending', 'failed');
-- what a claim may take, in the order it takes it: the target's entries not
-- sent or dead yet, by id -- sent entries stay in the outbox, and a claim that
-- walked the primary key would step over every one of them first
CREATE INDEX outbox_claim_idx ON sync_resolve.outbox (target, id)
	WHERE status IN ('pending', 'failed', 'in_flight');
-- an echo names an entry handed out by its idempotency key, or repeats its values
CREATE INDEX outbox_idempotency_idx ON sync_resolve.outbox (idempotency_key)
	WHERE status <> 'pending';
-- (the key's hash alone: the lookup checks the key of what it finds)
CREATE INDEX outbox_handed_out_idx ON sync_resolve.outbox
	(relid, (pg_catalog.jsonb_hash_extended(key, 0)), target)
	WHERE status IN ('in_flight', 'failed');
-- entries given up on, for sync_resolve.health (few, and never written again)
CREATE INDEX outbox_dead_idx ON sync_resolve.outbox (relid) WHERE status = 'dead';
COMMENT ON TABLE sync_resolve.outbox IS
	'Local changes waiting to be carried to each external system';

CREATE TABLE sync_resolve.identity (
	relid regclass NOT NULL,
	system text NOT NULL,
	external_id text NOT NULL,
	key jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (relid, system, external_id),
	UNIQUE (relid, system, key)
);
COMMENT ON TABLE sync_resolve.identity IS
	'The record id each external system gave a row';

-- ==== composite types ====

CREATE TYPE sync_resolve.apply_result AS (
	outcome text,
	key jsonb,
	applied text[],
	kept text[],
	queued text[],
	rejected text[],
	review_ids bigint[]
);

CREATE TYPE sync_resolve.conflict AS (
	relid regclass,
	key jsonb,
	column_name text,
	source text,
	local_value jsonb,
	incoming_value jsonb,
	base_value jsonb,
	local_changed_at timestamptz,
	incoming_changed_at timestamptz,
	local_writer text
);

-- ==== C entry points (DESIGN 4, 8) ====

CREATE FUNCTION sync_resolve.apply(tbl regclass, source text, payload jsonb,
		changed_at timestamptz DEFAULT NULL,
		version sync_resolve.vclock DEFAULT NULL,
		event_id text DEFAULT NULL)
	RETURNS sync_resolve.apply_result
	AS 'MODULE_PATHNAME', 'apply' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve.apply(regclass, text, jsonb, timestamptz, sync_resolve.vclock, text) IS
	'Resolve an incoming image of one row from a source system against the local row and the source''s base';

CREATE FUNCTION sync_resolve.apply_delete(tbl regclass, source text, key jsonb,
		changed_at timestamptz DEFAULT NULL,
		version sync_resolve.vclock DEFAULT NULL,
		event_id text DEFAULT NULL)
	RETURNS sync_resolve.apply_result
	AS 'MODULE_PATHNAME', 'apply_delete' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve.apply_delete(regclass, text, jsonb, timestamptz, sync_resolve.vclock, text) IS
	'Resolve a delete reported by a source system';

CREATE FUNCTION sync_resolve.apply_batch(tbl regclass, source text, changes jsonb,
		on_error text DEFAULT 'raise')
	RETURNS SETOF sync_resolve.apply_result
	AS 'MODULE_PATHNAME', 'apply_batch' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve.apply_batch(regclass, text, jsonb, text) IS
	'Apply a JSON array of upserts and deletes from one source; on_error => ''reject'' sets bad elements aside';

CREATE FUNCTION sync_resolve.resolve(review_id bigint, decision text,
		value jsonb DEFAULT NULL, note text DEFAULT NULL)
	RETURNS sync_resolve.review
	AS 'MODULE_PATHNAME', 'resolve_review' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve.resolve(bigint, text, jsonb, text) IS
	'Decide an open review item: keep_local, take_incoming or set_value';

CREATE FUNCTION sync_resolve.claim_outbound(target text, max integer DEFAULT 100,
		lease interval DEFAULT '5 minutes')
	RETURNS SETOF sync_resolve.outbox
	AS 'MODULE_PATHNAME', 'claim_outbound' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve.claim_outbound(text, integer, interval) IS
	'Take up to max entries for a target (FOR UPDATE SKIP LOCKED), leased for the given time';

CREATE FUNCTION sync_resolve.ack_outbound(id bigint, external_id text DEFAULT NULL,
		version sync_resolve.vclock DEFAULT NULL, changed_at timestamptz DEFAULT NULL)
	RETURNS sync_resolve.outbox
	AS 'MODULE_PATHNAME', 'ack_outbound' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve.ack_outbound(bigint, text, sync_resolve.vclock, timestamptz) IS
	'The target holds what the entry carried: its base advances, its record id is kept';

CREATE FUNCTION sync_resolve.fail_outbound(id bigint, error text, retry_in interval DEFAULT NULL)
	RETURNS sync_resolve.outbox
	AS 'MODULE_PATHNAME', 'fail_outbound' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve.fail_outbound(bigint, text, interval) IS
	'Sending the entry failed: retried with exponential backoff, dead after sync_resolve.max_attempts';

CREATE FUNCTION sync_resolve.prune_events(older_than interval)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'prune_events' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION sync_resolve.prune_events(interval) IS
	'Delete history and delivery ids older than the given age; returns the number of events deleted';

-- prune_tombstones is defined with the setup API below (it reads tracked).

-- DESIGN 11: a tracked table against a source's own records (reconcile.c)
CREATE FUNCTION sync_resolve.reconcile_summary(tbl regclass, source text, snapshot regclass)
	RETURNS TABLE (local_rows bigint, external_rows bigint, local_hash text,
				   external_hash text, matches boolean)
	AS 'MODULE_PATHNAME', 'reconcile_summary' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve.reconcile_summary(regclass, text, regclass) IS
	'Row counts and checksums of a tracked table and of a source''s records of it, over the columns the records hold';
CREATE FUNCTION sync_resolve.reconcile(tbl regclass, source text, snapshot regclass,
		captured_at timestamptz DEFAULT now(), settle interval DEFAULT '5 minutes',
		repair boolean DEFAULT false)
	RETURNS TABLE (key jsonb, column_name text, local_value jsonb, external_value jsonb,
				   owner text, action text, reason text)
	AS 'MODULE_PATHNAME', 'reconcile' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_resolve.reconcile(regclass, text, regclass, timestamptz, interval, boolean) IS
	'Each difference between a tracked table and a source''s records of it, and what sync does with it; repair => true does it';

CREATE FUNCTION sync_resolve.canonical_key(tbl regclass, key jsonb)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'canonical_key' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION sync_resolve.canonical_key(regclass, jsonb) IS
	'The key of a tracked row as sync_resolve records it: primary-key columns, values in their column types';

-- internal helpers: not part of the API
CREATE FUNCTION sync_resolve._strategy_problem(tbl regclass, attnum smallint, strategy text)
	RETURNS text
	AS 'MODULE_PATHNAME', 'strategy_problem' LANGUAGE C STABLE STRICT;

CREATE FUNCTION sync_resolve._check_not_in_use(tbl regclass)
	RETURNS void
	AS 'MODULE_PATHNAME', 'check_not_in_use' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION sync_resolve._ddl_makes_inheritance(cmd pg_catalog.pg_ddl_command)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'ddl_makes_inheritance' LANGUAGE C STABLE STRICT;
CREATE FUNCTION sync_resolve._unchanged_since_snapshot(tbl regclass, key anyelement)
	RETURNS void
	AS 'MODULE_PATHNAME', 'unchanged_since_snapshot' LANGUAGE C VOLATILE;
CREATE FUNCTION sync_resolve._ddl_renamed_column(cmd pg_catalog.pg_ddl_command)
	RETURNS text[]
	AS 'MODULE_PATHNAME', 'ddl_renamed_column' LANGUAGE C STABLE STRICT;
CREATE FUNCTION sync_resolve._shadow_type(typ oid, typmod integer)
	RETURNS text
	AS 'MODULE_PATHNAME', 'shadow_type' LANGUAGE C STABLE STRICT;

CREATE FUNCTION sync_resolve._local_write()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'local_write_trigger' LANGUAGE C;

CREATE FUNCTION sync_resolve._source_write()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'source_write_trigger' LANGUAGE C;

-- A logical-replication apply worker's writes are decided at commit, when
-- PostgreSQL 15 tells the origin's commit time (src/replication.c): the
-- first such write of a transaction inserts a row here, and its deferred
-- trigger does the work as the transaction commits.  Unlogged: never
-- published, never replicated; the trigger deletes the row it fired for.
CREATE UNLOGGED TABLE sync_resolve._at_commit ();
COMMENT ON TABLE sync_resolve._at_commit IS
	'Internal: a row per transaction with apply-worker writes to decide at commit';

CREATE FUNCTION sync_resolve._at_commit_run()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_commit_trigger' LANGUAGE C;

CREATE FUNCTION sync_resolve._truncate()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'truncate_trigger' LANGUAGE C;

CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON sync_resolve._at_commit
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._at_commit_run();
-- it must fire in apply workers, where session_replication_role = replica
ALTER TABLE sync_resolve._at_commit ENABLE ALWAYS TRIGGER at_commit;

CREATE FUNCTION sync_resolve._policy_changed()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'policy_changed_trigger' LANGUAGE C;

CREATE FUNCTION sync_resolve._append_only()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'append_only_trigger' LANGUAGE C;


-- ==== validation of the policy tables (DESIGN 3) ====

CREATE FUNCTION sync_resolve._check_system()
	RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		-- waits for the tables being given this system (_check_tracked), then
		-- reads them as committed
		PERFORM pg_catalog.pg_advisory_xact_lock(21333, pg_catalog.hashtext(OLD.name));
		PERFORM sync_resolve._unchanged_since_snapshot('sync_resolve.tracked', OLD.name::pg_catalog.text);
		IF OLD.name = 'local' THEN
			RAISE EXCEPTION 'system "local" cannot be removed'
				USING ERRCODE = '55000',
					  DETAIL = 'local stands for this database''s own users and application.',
					  HINT = 'Remove the other systems instead.';
		END IF;
		IF EXISTS (SELECT 1 FROM sync_resolve.tracked t
				   WHERE OLD.name OPERATOR(pg_catalog.=) ANY (t.systems)) THEN
			RAISE EXCEPTION 'system "%" is still used by tracked tables', OLD.name
				USING ERRCODE = '2BP01',
					  DETAIL = pg_catalog.format('Tables syncing with it: %s.',
						(SELECT pg_catalog.string_agg(t.relid::text, ', ' ORDER BY t.relid::text)
						 FROM sync_resolve.tracked t
						 WHERE OLD.name OPERATOR(pg_catalog.=) ANY (t.systems))),
					  HINT = 'Untrack those tables, or take the system out of their systems list, first.';
		END IF;
		RETURN OLD;
	END IF;

	IF NEW.name IS NULL
		OR NEW.name !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]*$'
		OR pg_catalog.length(NEW.name) > 63 THEN
		RAISE EXCEPTION 'invalid system name "%"', NEW.name
			USING ERRCODE = '22023',
				  DETAIL = 'A system name is 1 to 63 letters, digits, underscores, dots or hyphens, not starting with a dot or hyphen.',
				  HINT = 'Choose a name such as crm or billing_v2.';
	END IF;
	IF NEW.priority IS NULL THEN
		RAISE EXCEPTION 'system "%" needs a priority', NEW.name
			USING ERRCODE = '23502',
				  HINT = 'Lower numbers win under the priority strategy; local is 100.';
	END IF;
	IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM sync_resolve.system s
									WHERE s.name OPERATOR(pg_catalog.=) NEW.name) THEN
		RAISE EXCEPTION 'system "%" already exists', NEW.name
			USING ERRCODE = '42710',
				  HINT = 'Change it with UPDATE sync_resolve.system, or choose another name.';
	END IF;
	IF TG_OP = 'UPDATE' AND NEW.name OPERATOR(pg_catalog.<>) OLD.name THEN
		RAISE EXCEPTION 'system "%" cannot be renamed', OLD.name
			USING ERRCODE = '0A000',
				  DETAIL = 'Shadow tables, versions and the history refer to systems by name.',
				  HINT = 'Add a system with the new name instead.';
	END IF;
	RETURN NEW;
END
$$;

CREATE FUNCTION sync_resolve._check_tracked()
	RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s text;
	c name;
	rel record;
	used text;
BEGIN
	-- A row that arrives with a shadow name comes from pg_dump (track()
	-- leaves it NULL, and shadows, members of the extension, are not
	-- dumped).  The systems and the table's primary key may not be restored
	-- yet: take the row as it is; _ensure_shadow() checks it and makes the
	-- shadow at first use.
	IF TG_OP = 'INSERT' AND NEW.shadow IS NOT NULL THEN
		NEW.shadow := NULL;
		RETURN NEW;
	END IF;
	IF TG_OP = 'UPDATE' AND (NEW.relid OPERATOR(pg_catalog.<>) OLD.relid
							 OR (OLD.shadow IS NOT NULL AND NEW.shadow IS DISTINCT FROM OLD.shadow)) THEN
		RAISE EXCEPTION 'the table and shadow of tracked table % cannot be changed', OLD.relid
			USING ERRCODE = '0A000',
				  HINT = 'Untrack the table and track it again.';
	END IF;

	SELECT c.relkind, c.relpersistence, c.relnamespace INTO rel FROM pg_catalog.pg_class c WHERE c.oid = NEW.relid;
	IF NOT FOUND OR rel.relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', NEW.relid
			USING ERRCODE = '42809',
				  HINT = 'Only ordinary and partitioned tables can be tracked.';
	END IF;
	-- a temporary table goes at its session's end without any trigger
	-- seeing it go: its tracking, shadow and outbox entries would stay,
	-- pointing at a table no one can open
	IF TG_OP = 'INSERT' AND rel.relpersistence = 't' THEN
		RAISE EXCEPTION 'table % is temporary', NEW.relid
			USING ERRCODE = '42809',
				  DETAIL = 'A temporary table is dropped at the end of its session, and its history, shadow and outbox entries would outlive it.',
				  HINT = 'Track a permanent or unlogged table.';
	END IF;
	-- sync_resolve's own tables: a write to the outbox queuing outbox
	-- entries, or apply() writing the policies, is nothing anyone wants
	IF TG_OP = 'INSERT' AND rel.relnamespace = (SELECT e.extnamespace FROM pg_catalog.pg_extension e
												 WHERE e.extname = 'sync_resolve') THEN
		RAISE EXCEPTION 'table % is sync_resolve''s own', NEW.relid
			USING ERRCODE = '42809',
				  HINT = 'Track the application''s tables; sync_resolve''s own are kept by the extension.';
	END IF;
	IF TG_OP = 'INSERT' THEN
		-- Wait for a change to the table's columns still in flight (ALTER
		-- TABLE holds ACCESS EXCLUSIVE until it commits), and keep the next
		-- one out until tracking commits, when DDL on the table finds it
		-- tracked: the shadow is made from the columns as they are.
		EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS SHARE MODE', NEW.relid);
	END IF;
	-- for another track() of it (the second finds it tracked), and for a
	-- set_policy() of it, which takes the same lock (21332: 'ST'): a change
	-- of the table's systems and a policy naming one of them wait for each
	-- other, and the second checks against what the first committed
	PERFORM pg_catalog.pg_advisory_xact_lock(21332, NEW.relid::pg_catalog.oid::pg_catalog.int4);
	IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM sync_resolve.tracked t WHERE t.relid = NEW.relid) THEN
		RAISE EXCEPTION 'table % is already tracked', NEW.relid
			USING ERRCODE = '42710',
				  HINT = 'Change its systems and defaults with UPDATE sync_resolve.tracked, or untrack it first.';
	END IF;
	IF TG_OP = 'INSERT' THEN
		PERFORM sync_resolve._refuse_nested(NEW.relid);
	END IF;
	IF TG_OP = 'INSERT' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
										WHERE i.indrelid = NEW.relid AND i.indisprimary) THEN
		RAISE EXCEPTION 'table % has no primary key', NEW.relid
			USING ERRCODE = '55000',
				  DETAIL = 'sync_resolve identifies rows across systems by the primary key.',
				  HINT = 'Add a primary key, then track the table.';
	END IF;
	-- a key compared by a nondeterministic collation: 'ABC' and 'abc' are
	-- one row, but two keys in the history, the outbox and the identities
	IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i,
										   LATERAL pg_catalog.unnest(i.indcollation::pg_catalog.oid[]) AS k(coll)
										   JOIN pg_catalog.pg_collation c ON c.oid = k.coll
									WHERE i.indrelid = NEW.relid AND i.indisprimary
									  AND NOT c.collisdeterministic) THEN
		RAISE EXCEPTION 'the primary key of table % uses a nondeterministic collation', NEW.relid
			USING ERRCODE = '0A000',
				  DETAIL = 'Keys that the collation takes for equal are one row here, but sync_resolve keys history, outbox entries and record ids by the key''s value.',
				  HINT = 'Give the key columns a deterministic collation (such as "C" or "default"), then track the table.';
	END IF;
	IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i
									WHERE i.indrelid = NEW.relid AND i.indisprimary
									  AND NOT i.indimmediate) THEN
		RAISE EXCEPTION 'the primary key of table % is deferrable', NEW.relid
			USING ERRCODE = '55000',
				  DETAIL = 'sync_resolve finds and locks a row by its primary key as each change arrives, which needs the key checked at once.',
				  HINT = 'Make the primary key NOT DEFERRABLE, then track the table.';
	END IF;

	IF NEW.systems IS NULL THEN
		RAISE EXCEPTION 'tracked table % needs a list of systems', NEW.relid
			USING ERRCODE = '22004',
				  HINT = 'Pass the external systems that sync this table, for example ARRAY[''crm'', ''billing''].';
	END IF;
	FOREACH s IN ARRAY NEW.systems LOOP
		-- the system's lock (21333: 'SU', shared) to this transaction's end:
		-- a concurrent delete of the system (exclusive) waits, then finds the
		-- table using it; one that came first is waited for, and the system
		-- is then gone here.  An advisory lock: no privilege to lock its row.
		IF s IS NOT NULL THEN
			PERFORM pg_catalog.pg_advisory_xact_lock_shared(21333, pg_catalog.hashtext(s));
			PERFORM sync_resolve._unchanged_since_snapshot('sync_resolve.system', s);
		END IF;
		IF s IS NULL OR NOT EXISTS (SELECT 1 FROM sync_resolve.system y
									WHERE y.name OPERATOR(pg_catalog.=) s) THEN
			RAISE EXCEPTION 'unknown system "%" for table %', s, NEW.relid
				USING ERRCODE = '22023',
					  HINT = 'Register it first with sync_resolve.add_system().';
		END IF;
		IF s OPERATOR(pg_catalog.=) 'local' THEN
			RAISE EXCEPTION 'system "local" is always part of a tracked table'
				USING ERRCODE = '22023',
					  HINT = 'List only the external systems.';
		END IF;
	END LOOP;
	NEW.systems := ARRAY(SELECT DISTINCT ON (u.s) u.s
						 FROM pg_catalog.unnest(NEW.systems) WITH ORDINALITY AS u(s, n)
						 ORDER BY u.s, u.n);

	IF NEW.default_strategy IS NULL OR NEW.default_strategy NOT IN
		('keep_local', 'take_incoming', 'latest', 'earliest', 'priority', 'review') THEN
		RAISE EXCEPTION 'invalid default strategy "%" for table %', NEW.default_strategy, NEW.relid
			USING ERRCODE = '22023',
				  DETAIL = 'A default must fit every column: keep_local, take_incoming, latest, earliest, priority or review.',
				  HINT = 'Set type-specific strategies per column with sync_resolve.set_policy().';
	END IF;
	IF NEW.on_delete_conflict IS NULL OR NEW.on_delete_conflict NOT IN ('delete', 'keep', 'review') THEN
		RAISE EXCEPTION 'invalid on_delete_conflict "%" for table %', NEW.on_delete_conflict, NEW.relid
			USING ERRCODE = '22023',
				  HINT = 'Use delete, keep or review.';
	END IF;
	IF NEW.match_on IS NOT NULL THEN
		FOREACH c IN ARRAY NEW.match_on LOOP
			IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
						   WHERE a.attrelid = NEW.relid AND a.attname OPERATOR(pg_catalog.=) c
							 AND a.attnum > 0 AND NOT a.attisdropped) THEN
				RAISE EXCEPTION 'match_on column "%" of table % does not exist', c, NEW.relid
					USING ERRCODE = '42703',
						  HINT = 'match_on names the columns of a natural key, such as email.';
			END IF;
		END LOOP;
	END IF;

	IF TG_OP = 'UPDATE' THEN
		SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s)', p.column_name, x.s), ', ' ORDER BY p.column_name)
		INTO used
		FROM sync_resolve.column_policy p,
			 LATERAL pg_catalog.unnest(p.owner OPERATOR(pg_catalog.||) coalesce(p.writers, '{}')) AS x(s)
		WHERE p.relid = NEW.relid AND x.s OPERATOR(pg_catalog.<>) 'local'
		  AND NOT x.s OPERATOR(pg_catalog.=) ANY (NEW.systems);
		IF used IS NOT NULL THEN
			RAISE EXCEPTION 'column policies of table % still name systems removed from it', NEW.relid
				USING ERRCODE = '2BP01',
					  DETAIL = pg_catalog.format('Columns (system): %s.', used),
					  HINT = 'Change those policies first.';
		END IF;
	END IF;

	IF TG_OP = 'INSERT' THEN
		NEW.shadow := sync_resolve._create_shadow(NEW.relid);
		PERFORM sync_resolve._install_trigger(NEW.relid);
	END IF;
	RETURN NEW;
END
$$;

-- The triggers of a tracked table, enabled ALWAYS so that they fire under
-- logical replication's apply worker too: sync_resolve_before takes writes
-- from a source, sync_resolve_after records local writes,
-- sync_resolve_truncate drops what an apply worker held for the table's rows.
-- Runs as the caller: creating a trigger needs the table's TRIGGER privilege.
CREATE FUNCTION sync_resolve._install_trigger(tbl regclass)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM sync_resolve._own_triggers(tbl) o WHERE o.fn = '_source_write') THEN
		EXECUTE pg_catalog.format('CREATE TRIGGER sync_resolve_before BEFORE INSERT OR UPDATE OR DELETE ON %s '
								  'FOR EACH ROW EXECUTE FUNCTION sync_resolve._source_write()', tbl);
	END IF;
	IF NOT EXISTS (SELECT 1 FROM sync_resolve._own_triggers(tbl) o WHERE o.fn = '_local_write') THEN
		EXECUTE pg_catalog.format('CREATE TRIGGER sync_resolve_after AFTER INSERT OR UPDATE OR DELETE ON %s '
								  'FOR EACH ROW EXECUTE FUNCTION sync_resolve._local_write()', tbl);
	END IF;
	PERFORM sync_resolve._install_truncate_triggers(tbl);
	PERFORM sync_resolve._enable_always(tbl, true);
	PERFORM sync_resolve._check_trigger_order(tbl);
	PERFORM sync_resolve._warn_inheritance_children(tbl);
END
$$;

-- The inheritance descendants (INHERITS, at any depth; not partitions) of
-- tbl, or with tbl NULL of every tracked table, each with the table it
-- descends from.
CREATE FUNCTION sync_resolve._inheritance_descendants(tbl regclass)
	RETURNS TABLE (relid regclass, tracked regclass)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE down(relid, tracked) AS (
		SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i
		WHERE CASE WHEN tbl IS NULL THEN i.inhparent IN (SELECT k.relid FROM sync_resolve.tracked k)
				   ELSE i.inhparent OPERATOR(pg_catalog.=) tbl END
		UNION
		SELECT i.inhrelid, d.tracked FROM down d JOIN pg_catalog.pg_inherits i ON i.inhparent = d.relid
	)
	SELECT d.relid::pg_catalog.regclass, d.tracked::pg_catalog.regclass
	FROM down d JOIN pg_catalog.pg_class r ON r.oid = d.relid
	WHERE NOT r.relispartition
	  -- one tracked itself records its own writes
	  AND NOT EXISTS (SELECT 1 FROM sync_resolve.tracked k WHERE k.relid OPERATOR(pg_catalog.=) d.relid)
$$;

-- A tracked table's inheritance descendants (INHERITS, not partitions)
-- carry none of its triggers -- PostgreSQL clones row triggers to
-- partitions only -- so their local writes and TRUNCATEs are not recorded:
-- a WARNING for each (child: just that one), from track() and from
-- sync_resolve_ddl on a table made or altered while one (CREATE TABLE ...
-- INHERITS, ALTER TABLE ... INHERIT).  apply() finds and updates their rows.
CREATE FUNCTION sync_resolve._warn_inheritance_children(tbl regclass, child regclass DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c regclass;
BEGIN
	FOR c IN SELECT i.relid FROM sync_resolve._inheritance_descendants(tbl) i
			 WHERE child IS NULL OR i.relid OPERATOR(pg_catalog.=) child
			 ORDER BY 1 LOOP
		RAISE WARNING 'local writes to table % are not recorded: it inherits from tracked table %', c, tbl
			USING DETAIL = 'sync_resolve records the writes of a tracked table and of its partitions. An inheritance '
						   'child has none of its triggers: apply() finds and updates its rows, but a local INSERT, '
						   'UPDATE, DELETE or TRUNCATE of them is neither recorded nor queued for the other systems.',
				  HINT = 'Make it a partition of a partitioned table (CREATE TABLE ... PARTITION OF), or keep '
						 'local writes to the parent table''s own rows.';
	END LOOP;
END
$$;

-- sync_resolve's own triggers on a table, known by the function each runs
-- (fn: its name), not by their names: one renamed is still one of them, to
-- enable, to drop at untrack, and not to make a second of (which would
-- record every write twice).  The clones of a partitioned table's row
-- triggers on its partitions go with their parent's and are left out, but
-- with clones (each can be enabled on its own).
CREATE FUNCTION sync_resolve._own_triggers(tbl regclass, clones boolean DEFAULT false)
	RETURNS TABLE (tgname name, fn name, tgenabled "char")
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT g.tgname, p.proname, g.tgenabled
	FROM pg_catalog.pg_trigger g
	JOIN pg_catalog.pg_proc p ON p.oid = g.tgfoid
	WHERE g.tgrelid = tbl AND (clones OR g.tgparentid OPERATOR(pg_catalog.=) 0)
	  AND p.pronamespace = 'sync_resolve'::pg_catalog.regnamespace
	  AND p.proname IN ('_source_write', '_local_write', '_truncate')
$$;

-- sync_resolve's triggers on the table enabled ALWAYS, so that they fire in
-- a logical replication apply worker too, where they are not yet (with
-- disabled: also those disabled).  Only those: a dump restores them ALWAYS,
-- and ALTER TABLE ... ENABLE TRIGGER ALL (a data-only restore with
-- --disable-triggers runs it) leaves them origin-only.  The first write to
-- a restored table makes its shadow (_ensure_shadow()) and cannot ALTER the
-- table it writes: a WARNING says what to run instead.
CREATE FUNCTION sync_resolve._enable_always(tbl regclass, disabled boolean)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine record;
BEGIN
	FOR mine IN SELECT o.tgname FROM sync_resolve._own_triggers(tbl, true) o
			 WHERE o.tgenabled OPERATOR(pg_catalog.<>) 'A'
			   AND (disabled OR o.tgenabled OPERATOR(pg_catalog.<>) 'D') LOOP
		BEGIN
			EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', tbl, mine.tgname);
		EXCEPTION WHEN object_in_use THEN
			RAISE WARNING 'trigger "%" on tracked table % does not fire under session_replication_role = replica',
				mine.tgname, tbl
				USING DETAIL = 'It should be enabled ALWAYS, but the statement writing the table cannot change it.',
					  HINT = pg_catalog.format('Run ALTER TABLE %s ENABLE ALWAYS TRIGGER %I.', tbl, mine.tgname);
		END;
	END LOOP;
END
$$;

-- sync_resolve_truncate on the table and on each of its partitions that has
-- none yet.  PostgreSQL clones row triggers to partitions, not statement
-- triggers, and fires BEFORE TRUNCATE only for the tables a TRUNCATE takes:
-- without its own, a TRUNCATE of one partition would go unseen.  Called by
-- track() and, for partitions created or attached later, by sync_resolve_ddl
-- (which ALTER TABLE ... ENABLE fires again: the triggers are all made
-- before any is enabled, so that it finds nothing left to make).  Returns
-- the tables it made one on: those new to the tracked tree.
CREATE FUNCTION sync_resolve._install_truncate_triggers(tbl regclass)
	RETURNS regclass[]
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	made regclass[];
	p regclass;
BEGIN
	SELECT pg_catalog.array_agg(t.relid) INTO made
	FROM sync_resolve._table_and_partitions(tbl) t
	WHERE NOT EXISTS (SELECT 1 FROM sync_resolve._own_triggers(t.relid) o WHERE o.fn = '_truncate');
	FOREACH p IN ARRAY coalesce(made, '{}') LOOP
		EXECUTE pg_catalog.format('CREATE TRIGGER sync_resolve_truncate BEFORE TRUNCATE ON %s '
								  'FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._truncate()', p);
	END LOOP;
	FOREACH p IN ARRAY coalesce(made, '{}') LOOP
		EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER sync_resolve_truncate', p);
	END LOOP;
	RETURN coalesce(made, '{}');
END
$$;

-- A table and every partition under it, at any depth (pg_partition_tree()
-- has no row for a table that is neither partitioned nor a partition).
CREATE FUNCTION sync_resolve._table_and_partitions(tbl regclass)
	RETURNS TABLE (relid regclass)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT tbl UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(tbl) t
$$;

-- The tracked tables whose rows rel's are: rel itself, and every table it is
-- a partition of, at any depth (pg_partition_ancestors() has no row for a
-- table that is neither partitioned nor a partition).  sr_tracked_relid()
-- in C takes the nearest of them.
CREATE FUNCTION sync_resolve._tracked_at_or_above(rel regclass)
	RETURNS SETOF sync_resolve.tracked
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT k.* FROM sync_resolve.tracked k
	WHERE k.relid OPERATOR(pg_catalog.=) rel
	   OR k.relid IN (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(rel) a)
$$;

-- A partitioned table is tracked as one table, its partitions with it: a
-- partition of a tracked table, or a table with a tracked partition, cannot
-- be tracked too (the two would share triggers and record each write twice
-- or not at all).  From track(), and from sync_resolve_ddl for ATTACH
-- PARTITION of one tracked table under another (which PostgreSQL refuses by
-- itself on their row triggers' names, unless those were renamed).
CREATE FUNCTION sync_resolve._refuse_nested(tbl regclass)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	other regclass;
BEGIN
	SELECT k.relid INTO other FROM sync_resolve._tracked_at_or_above(tbl) k
	WHERE k.relid OPERATOR(pg_catalog.<>) tbl
	ORDER BY k.relid LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'table % is a partition of tracked table %', tbl, other
			USING ERRCODE = '0A000',
				  HINT = pg_catalog.format('%s is tracked with its partitions: its writes are already recorded.', other);
	END IF;
	SELECT k.relid INTO other FROM sync_resolve.tracked k
	WHERE k.relid OPERATOR(pg_catalog.<>) tbl
	  AND k.relid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree(tbl) t)
	ORDER BY k.relid LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'table % has a tracked partition, %', tbl, other
			USING ERRCODE = '0A000',
				  HINT = pg_catalog.format('A partitioned table is tracked with all its partitions: untrack %s first.', other);
	END IF;
END
$$;

-- Row triggers fire in the order of their names.  A user's BEFORE row trigger
-- of a tracked table (or of one of its partitions) named to sort after
-- sync_resolve_before fires once a write from a source has been decided and
-- recorded -- its base, its history, what is queued for the other systems:
-- if it changes NEW or skips the row, the table and those records disagree.
-- A WARNING for each (trig: just that one; on_tables: just those on these
-- tables), from track() and from sync_resolve_ddl on CREATE TRIGGER, ALTER
-- TRIGGER and on a partition created or attached; a disabled one too, since
-- enabling it later is an ALTER TABLE that says nothing.
CREATE FUNCTION sync_resolve._check_trigger_order(tbl regclass, trig oid DEFAULT NULL,
												  on_tables regclass[] DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
BEGIN
	-- each table's own BEFORE trigger by its name now (renamed, perhaps)
	FOR t IN SELECT g.tgname, g.tgrelid::pg_catalog.regclass AS rel, mine.tgname AS before_name
			 FROM sync_resolve._table_and_partitions(tbl) r
			 JOIN pg_catalog.pg_trigger g ON g.tgrelid = r.relid
			 JOIN LATERAL (SELECT o.tgname FROM sync_resolve._own_triggers(r.relid, true) o
						   WHERE o.fn = '_source_write' LIMIT 1) mine ON true
			 WHERE (trig IS NULL OR g.oid OPERATOR(pg_catalog.=) trig)
			   AND (on_tables IS NULL OR r.relid OPERATOR(pg_catalog.=) ANY (on_tables))
			   AND NOT g.tgisinternal AND g.tgparentid OPERATOR(pg_catalog.=) 0
			   AND NOT EXISTS (SELECT 1 FROM sync_resolve._own_triggers(g.tgrelid) o
							   WHERE o.tgname OPERATOR(pg_catalog.=) g.tgname)
			   -- ROW (1) and BEFORE (2), for INSERT (4), DELETE (8) or UPDATE (16)
			   AND (g.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 3) OPERATOR(pg_catalog.=) 3
			   AND (g.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 28) OPERATOR(pg_catalog.<>) 0
			   AND g.tgname OPERATOR(pg_catalog.>) mine.tgname
			 ORDER BY g.tgname, 2 LOOP
		RAISE WARNING 'trigger "%" on tracked table % fires after %', t.tgname, t.rel,
			pg_catalog.quote_ident(t.before_name)
			USING DETAIL = pg_catalog.format('Row triggers fire in the order of their names. %I decides a write '
						   'from a source and records it (the source''s base, the history, the outbox) before '
						   'this trigger runs: if it changes NEW or skips the row, the table and those records disagree.',
						   t.before_name),
				  HINT = pg_catalog.format('If it may change or skip rows, rename it to sort before %I, '
										   'e.g. ALTER TRIGGER %I ON %s RENAME TO %I.',
										   t.before_name, t.tgname, t.rel,
										   CASE WHEN ('a_' OPERATOR(pg_catalog.||) t.tgname)::pg_catalog.name
													 OPERATOR(pg_catalog.<) t.before_name
												THEN 'a_' ELSE '0_' END OPERATOR(pg_catalog.||) t.tgname);
	END LOOP;
END
$$;

-- A tracked table without its shadow (restored from a dump): check what
-- track() would have checked, make the shadow and the trigger.  Called by
-- the C code the first time it needs the table.
CREATE FUNCTION sync_resolve._ensure_shadow(tbl regclass)
	RETURNS void
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
BEGIN
	SELECT * INTO t FROM sync_resolve.tracked k WHERE k.relid = tbl FOR UPDATE;
	IF NOT FOUND OR (t.shadow IS NOT NULL AND pg_catalog.to_regclass(t.shadow) IS NOT NULL) THEN
		RETURN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = tbl AND i.indisprimary) THEN
		RAISE EXCEPTION 'tracked table % has no primary key', tbl
			USING ERRCODE = '55000',
				  HINT = 'Add the primary key it was tracked with, or untrack it.';
	END IF;
	-- the UPDATE runs the checks of sync_resolve.tracked (systems, policies)
	UPDATE sync_resolve.tracked k SET shadow = sync_resolve._create_shadow(tbl), systems = k.systems
	 WHERE k.relid = tbl;
	PERFORM sync_resolve._install_trigger(tbl);
END
$$;

-- The shadow of a tracked table: one row per (row, system).  Columns are
-- named c<attnum> after the tracked table's columns, in their base types, so
-- that no column name of the tracked table can clash or need quoting.
--   system 'local': the row's version and per-column change metadata;
--   an external system: its base (what it is known to hold) with the
--   columns the base knows, its own last changed_at and version.
-- Every apply() and local write updates shadow rows: a tenth of each page is
-- left free for their new versions, so that an update stays on its page (a
-- HOT update, no index entry written) also where a first full sync wrote
-- every row's shadow and filled the pages up.
CREATE FUNCTION sync_resolve._create_shadow(tbl regclass)
	RETURNS text
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cols text;
	keys text;
	name text := 'shadow_' OPERATOR(pg_catalog.||) tbl::oid;
BEGIN
	SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', 'c' OPERATOR(pg_catalog.||) a.attnum,
							sync_resolve._shadow_type(a.atttypid, a.atttypmod))
						 OPERATOR(pg_catalog.||)
						 CASE WHEN a.attcollation OPERATOR(pg_catalog.<>) 0 THEN
							  (SELECT pg_catalog.format(' COLLATE %I.%I', n.nspname, l.collname)
							   FROM pg_catalog.pg_collation l
							   JOIN pg_catalog.pg_namespace n ON n.oid = l.collnamespace
							   WHERE l.oid = a.attcollation)
						 ELSE '' END,
						 ', ' ORDER BY a.attnum)
	INTO cols
	FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';

	SELECT pg_catalog.string_agg(pg_catalog.format('%I', 'c' OPERATOR(pg_catalog.||) k.attnum), ', ' ORDER BY k.n)
	INTO keys
	FROM pg_catalog.pg_index i,
		 LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
	WHERE i.indrelid = tbl AND i.indisprimary;

	EXECUTE pg_catalog.format(
		'CREATE TABLE sync_resolve.%I (%s, system text NOT NULL, known boolean[], '
		'changed_at timestamptz, version sync_resolve.vclock, received_at timestamptz, '
		'deleted_at timestamptz, deleted_by text, col_changed_at timestamptz[], col_writer text[], held boolean[], '
		'sent boolean[], own_xids xid8[], seen_at timestamptz[], '
		'PRIMARY KEY (%s, system)) WITH (fillfactor = 90)', name, cols, keys);
	EXECUTE pg_catalog.format('COMMENT ON TABLE sync_resolve.%I IS %L', name,
							  'sync_resolve shadow of ' OPERATOR(pg_catalog.||) tbl::text);
	-- a member of the extension: DROP EXTENSION takes it along
	EXECUTE pg_catalog.format('ALTER EXTENSION sync_resolve ADD TABLE sync_resolve.%I', name);
	RETURN pg_catalog.format('sync_resolve.%I', name);
END
$$;

CREATE FUNCTION sync_resolve._after_untrack()
	RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine record;
BEGIN
	PERFORM sync_resolve._check_not_in_use(t.relid) FROM sync_resolve._table_and_partitions(OLD.relid) t;
	-- sync_resolve's triggers on the table and on its partitions, but for
	-- those a table above them still needs (a partition of a tracked table)
	FOR mine IN SELECT t.relid, o.tgname
				FROM sync_resolve._table_and_partitions(OLD.relid) t,
					 LATERAL sync_resolve._own_triggers(t.relid) o
				WHERE NOT EXISTS (SELECT 1 FROM sync_resolve._tracked_at_or_above(t.relid) k
								  WHERE k.relid OPERATOR(pg_catalog.<>) OLD.relid) LOOP
		EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', mine.tgname, mine.relid);
	END LOOP;
	PERFORM sync_resolve._drop_shadow(OLD.shadow);
	-- its open reviews are dismissed, each in its row's history (which stays)
	WITH d AS (
		UPDATE sync_resolve.review r
		   SET status = 'dismissed', resolved_at = pg_catalog.now(), resolved_by = CURRENT_USER,
			   note = 'table untracked', updated_at = pg_catalog.now()
		 WHERE r.relid = OLD.relid AND r.status = 'open'
		RETURNING r.id, r.key, r.column_name)
	INSERT INTO sync_resolve.event (relid, key, kind, column_name, source, received_at, rule,
									decision, review_id, actor)
	SELECT OLD.relid, d.key, 'review_resolved', d.column_name, 'local', pg_catalog.now(),
		   'table untracked', 'dismissed', d.id, CURRENT_USER
	FROM d ORDER BY d.id;
	RETURN OLD;
END
$$;

CREATE FUNCTION sync_resolve._drop_shadow(shadow text)
	RETURNS void
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sh regclass := pg_catalog.to_regclass(shadow);
BEGIN
	IF sh IS NULL OR pg_catalog.to_regclass(pg_catalog.format('sync_resolve.%I',
			(SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = sh))) IS DISTINCT FROM sh THEN
		RETURN;					-- gone, or not one of ours
	END IF;
	EXECUTE pg_catalog.format('ALTER EXTENSION sync_resolve DROP TABLE %s', sh);
	EXECUTE pg_catalog.format('DROP TABLE %s', sh);
END
$$;

CREATE FUNCTION sync_resolve._check_policy()
	RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	a record;
	w text;
	problem text;
	fn record;
BEGIN
	-- an untrack() or a change of the table's systems under way is waited
	-- for (the lock _check_tracked() takes), then read as done
	PERFORM pg_catalog.pg_advisory_xact_lock(21332, NEW.relid::pg_catalog.oid::pg_catalog.int4);
	PERFORM sync_resolve._unchanged_since_snapshot('sync_resolve.tracked', NEW.relid::pg_catalog.oid);
	SELECT * INTO t FROM sync_resolve.tracked k WHERE k.relid = NEW.relid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not tracked', NEW.relid
			USING ERRCODE = '55000',
				  HINT = 'Track it first with sync_resolve.track().';
	END IF;
	SELECT x.attnum, x.attgenerated, x.atttypid, x.atttypmod INTO a FROM pg_catalog.pg_attribute x
	WHERE x.attrelid = NEW.relid AND x.attname OPERATOR(pg_catalog.=) NEW.column_name
	  AND x.attnum > 0 AND NOT x.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', NEW.column_name, NEW.relid
			USING ERRCODE = '42703',
				  HINT = 'Column names are case-sensitive here: write them exactly as the table has them.';
	END IF;
	IF a.attgenerated OPERATOR(pg_catalog.<>) '' THEN
		RAISE EXCEPTION 'column "%" of table % is generated', NEW.column_name, NEW.relid
			USING ERRCODE = '22023',
				  DETAIL = 'Generated columns are computed locally and never synced.',
				  HINT = 'Set policies on the columns it is computed from.';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_index i
			   WHERE i.indrelid = NEW.relid AND i.indisprimary AND a.attnum = ANY (i.indkey)) THEN
		RAISE EXCEPTION 'column "%" is part of the primary key of table %', NEW.column_name, NEW.relid
			USING ERRCODE = '22023',
				  DETAIL = 'Key columns identify the row; they are never resolved.',
				  HINT = 'Set policies on the other columns.';
	END IF;
	NEW.attnum := a.attnum;

	IF NEW.strategy IS NULL OR NEW.strategy NOT IN
		('owner', 'keep_local', 'take_incoming', 'latest', 'earliest', 'priority',
		 'max', 'min', 'sum_delta', 'union', 'merge_json', 'review', 'custom') THEN
		RAISE EXCEPTION 'unknown strategy "%" for column "%" of table %', NEW.strategy, NEW.column_name, NEW.relid
			USING ERRCODE = '22023',
				  HINT = 'Use owner, keep_local, take_incoming, latest, earliest, priority, max, min, sum_delta, union, merge_json, review or custom.';
	END IF;
	IF NEW.on_unauthorized IS NULL OR NEW.on_unauthorized NOT IN ('reject', 'review', 'accept') THEN
		RAISE EXCEPTION 'invalid on_unauthorized "%" for column "%" of table %', NEW.on_unauthorized, NEW.column_name, NEW.relid
			USING ERRCODE = '22023',
				  HINT = 'Use reject, review or accept.';
	END IF;

	IF NEW.owner IS NOT NULL AND NEW.owner OPERATOR(pg_catalog.<>) 'local'
		AND NOT NEW.owner OPERATOR(pg_catalog.=) ANY (t.systems) THEN
		RAISE EXCEPTION 'owner "%" of column "%" is not a system of table %', NEW.owner, NEW.column_name, NEW.relid
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('Table %s syncs with local and %s.', NEW.relid, pg_catalog.array_to_string(t.systems, ', ')),
				  HINT = 'Name one of those systems, or add the system to the table with UPDATE sync_resolve.tracked.';
	END IF;
	IF NEW.strategy = 'owner' AND NEW.owner IS NULL THEN
		RAISE EXCEPTION 'strategy "owner" for column "%" of table % needs an owner', NEW.column_name, NEW.relid
			USING ERRCODE = '22023',
				  HINT = 'Pass owner => ''<system>''.';
	END IF;
	IF NEW.writers IS NOT NULL THEN
		FOREACH w IN ARRAY NEW.writers LOOP
			IF w IS NULL OR (w OPERATOR(pg_catalog.<>) 'local' AND NOT w OPERATOR(pg_catalog.=) ANY (t.systems)) THEN
				RAISE EXCEPTION 'writer "%" of column "%" is not a system of table %', w, NEW.column_name, NEW.relid
					USING ERRCODE = '22023',
						  DETAIL = pg_catalog.format('Table %s syncs with local and %s.', NEW.relid, pg_catalog.array_to_string(t.systems, ', ')),
						  HINT = 'List only systems that sync this table.';
			END IF;
		END LOOP;
		IF NEW.owner IS NOT NULL AND NOT NEW.owner OPERATOR(pg_catalog.=) ANY (NEW.writers) THEN
			RAISE EXCEPTION 'owner "%" of column "%" of table % is not among its writers', NEW.owner, NEW.column_name, NEW.relid
				USING ERRCODE = '22023',
					  DETAIL = pg_catalog.format('Writers: %s.', pg_catalog.array_to_string(NEW.writers, ', ')),
					  HINT = 'Add the owner to writers, or leave writers NULL.';
		END IF;
	END IF;

	IF NEW.strategy = 'custom' THEN
		IF NEW.custom_fn IS NULL THEN
			RAISE EXCEPTION 'strategy "custom" for column "%" of table % needs a function', NEW.column_name, NEW.relid
				USING ERRCODE = '22023',
					  HINT = 'Pass custom_fn => ''my_fn(sync_resolve.conflict)''::regprocedure.';
		END IF;
		SELECT p.pronargs, p.proargtypes, p.prorettype, p.proretset, p.prokind INTO fn
		FROM pg_catalog.pg_proc p WHERE p.oid = NEW.custom_fn;
		IF NOT FOUND OR fn.pronargs OPERATOR(pg_catalog.<>) 1
			OR fn.proargtypes[0] OPERATOR(pg_catalog.<>) 'sync_resolve.conflict'::pg_catalog.regtype
			OR fn.prorettype OPERATOR(pg_catalog.<>) 'pg_catalog.jsonb'::pg_catalog.regtype
			OR fn.proretset OR fn.prokind OPERATOR(pg_catalog.<>) 'f' THEN
			RAISE EXCEPTION 'function % cannot decide conflicts on column "%" of table %', NEW.custom_fn, NEW.column_name, NEW.relid
				USING ERRCODE = '42883',
					  DETAIL = 'A custom strategy function takes one sync_resolve.conflict and returns jsonb (SQL NULL sends the conflict to review).',
					  HINT = 'CREATE FUNCTION my_fn(c sync_resolve.conflict) RETURNS jsonb ...';
		END IF;
	ELSIF NEW.custom_fn IS NOT NULL THEN
		RAISE EXCEPTION 'custom_fn is set but the strategy of column "%" of table % is "%"', NEW.column_name, NEW.relid, NEW.strategy
			USING ERRCODE = '22023',
				  HINT = 'Use strategy => ''custom'', or leave custom_fn NULL.';
	END IF;

	IF NEW.unmapped IS NULL OR NEW.unmapped NOT IN ('pass', 'null', 'default', 'review', 'reject') THEN
		RAISE EXCEPTION 'invalid unmapped "%" for column "%" of table %', NEW.unmapped, NEW.column_name, NEW.relid
			USING ERRCODE = '22023',
				  HINT = 'Use pass, null, default, review or reject.';
	END IF;
	IF NEW.on_invalid IS NULL OR NEW.on_invalid NOT IN ('reject', 'review') THEN
		RAISE EXCEPTION 'invalid on_invalid "%" for column "%" of table %', NEW.on_invalid, NEW.column_name, NEW.relid
			USING ERRCODE = '22023',
				  HINT = 'Use reject or review.';
	END IF;
	IF NEW.normalization IS NOT NULL AND (array_position(NEW.normalization, NULL) IS NOT NULL
		OR NOT NEW.normalization <@ ARRAY['trim', 'case']) THEN
		RAISE EXCEPTION 'invalid normalization % for column "%" of table %', NEW.normalization, NEW.column_name, NEW.relid
			USING ERRCODE = '22023',
				  HINT = 'List trim, case, or both.';
	END IF;
	IF NEW.check_expr IS NOT NULL THEN
		BEGIN
			EXECUTE pg_catalog.format('SELECT (%s)::pg_catalog.bool FROM (SELECT NULL::%s AS %I) AS v LIMIT 0',
				NEW.check_expr, pg_catalog.format_type(a.atttypid, a.atttypmod), NEW.column_name);
			-- one value per value: no set-returning, aggregate or window
			-- function, which WHERE refuses
			EXECUTE pg_catalog.format('SELECT FROM (SELECT NULL::%s AS %I) AS v WHERE (%s)::pg_catalog.bool LIMIT 0',
				pg_catalog.format_type(a.atttypid, a.atttypmod), NEW.column_name, NEW.check_expr);
		EXCEPTION WHEN OTHERS THEN
			RAISE EXCEPTION 'check_expr of column "%" of table % is not a valid condition: %', NEW.column_name, NEW.relid, SQLERRM
				USING ERRCODE = '42601',
					  DETAIL = pg_catalog.format('The expression was: %s', NEW.check_expr),
					  HINT = pg_catalog.format('Write a boolean SQL expression naming the column, such as %I >= 0.', NEW.column_name);
		END;
	END IF;

	problem := sync_resolve._strategy_problem(NEW.relid, a.attnum, NEW.strategy);
	IF problem IS NOT NULL THEN
		RAISE EXCEPTION 'strategy "%" does not fit column "%" of table %', NEW.strategy, NEW.column_name, NEW.relid
			USING ERRCODE = '42804',
				  DETAIL = problem,
				  HINT = 'Choose a strategy for the column''s type, such as latest, priority or review.';
	END IF;

	IF NEW.col_group IS NOT NULL THEN
		IF NEW.col_group = '' THEN
			RAISE EXCEPTION 'empty col_group for column "%" of table %', NEW.column_name, NEW.relid
				USING ERRCODE = '22023', HINT = 'Name the group, for example address.';
		END IF;
		IF NEW.strategy IN ('max', 'min', 'sum_delta', 'union', 'merge_json') THEN
			RAISE EXCEPTION 'strategy "%" cannot decide column group "%" of table %', NEW.strategy, NEW.col_group, NEW.relid
				USING ERRCODE = '22023',
					  DETAIL = 'A group takes every value from one winning side; this strategy computes values column by column.',
					  HINT = 'Use owner, keep_local, take_incoming, latest, earliest, priority, review or custom for a group.';
		END IF;
	END IF;
	RETURN NEW;
END
$$;

-- Columns of one group are decided together, so they must agree on how.
-- Checked at commit, so that a group can be changed one column at a time.
CREATE FUNCTION sync_resolve._check_policy_group()
	RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
BEGIN
	IF NEW.col_group IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT pg_catalog.count(DISTINCT ROW(p.strategy, p.owner, p.writers, p.custom_fn::oid, p.on_unauthorized))
	INTO n
	FROM sync_resolve.column_policy p
	WHERE p.relid = NEW.relid AND p.col_group = NEW.col_group;
	IF n > 1 THEN
		RAISE EXCEPTION 'columns of group "%" of table % disagree on their policy', NEW.col_group, NEW.relid
			USING ERRCODE = '22023',
				  DETAIL = 'Every column of a group needs the same strategy, owner, writers, custom_fn and on_unauthorized.',
				  HINT = 'Change every column of the group in one transaction.';
	END IF;
	RETURN NULL;
END
$$;

-- field_map, value_map and transition: a system of the table, a column it
-- has (or $external_id), functions that take and return jsonb, values of
-- the column's type.
CREATE FUNCTION sync_resolve._check_mapping()
	RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	a record;
	fn record;
	f regprocedure;
	v text;
	vals text[];
	typ text;
	sys text;
BEGIN
	SELECT * INTO t FROM sync_resolve.tracked k WHERE k.relid = NEW.relid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not tracked', NEW.relid
			USING ERRCODE = '55000', HINT = 'Track it first with sync_resolve.track().';
	END IF;
	IF TG_TABLE_NAME <> 'transition' THEN
		sys := NEW.system;
		IF sys IS NULL OR NOT sys OPERATOR(pg_catalog.=) ANY (t.systems) THEN
			RAISE EXCEPTION '% of table %: "%" is not a system of the table', TG_TABLE_NAME, NEW.relid, sys
				USING ERRCODE = '22023',
					  DETAIL = pg_catalog.format('Table %s syncs with %s.', NEW.relid, pg_catalog.array_to_string(t.systems, ', ')),
					  HINT = 'Name one of those systems.';
		END IF;
	END IF;
	IF TG_TABLE_NAME = 'field_map' AND NEW.column_name = '$external_id' THEN
		NEW.attnum := NULL;
		IF NEW.inbound_fn IS NOT NULL OR NEW.outbound_fn IS NOT NULL THEN
			RAISE EXCEPTION 'field_map of table %: the record id field "%" of "%" takes no functions', NEW.relid, NEW.external_field, sys
				USING ERRCODE = '22023', HINT = 'Record ids are kept as the text the system sends.';
		END IF;
		RETURN NEW;
	END IF;
	SELECT x.attnum, x.atttypid, x.atttypmod, x.attgenerated INTO a FROM pg_catalog.pg_attribute x
	WHERE x.attrelid = NEW.relid AND x.attname OPERATOR(pg_catalog.=) NEW.column_name
	  AND x.attnum > 0 AND NOT x.attisdropped;
	IF NOT FOUND OR a.attgenerated <> '' THEN
		RAISE EXCEPTION '% of table %: column "%" does not exist', TG_TABLE_NAME, NEW.relid, NEW.column_name
			USING ERRCODE = '42703',
				  HINT = CASE WHEN TG_TABLE_NAME = 'field_map'
						 THEN 'Name a column of the table exactly, or $external_id for the system''s record id.'
						 ELSE 'Name a column of the table exactly (generated columns are never synced).' END;
	END IF;
	NEW.attnum := a.attnum;
	typ := pg_catalog.format_type(a.atttypid, a.atttypmod);

	IF TG_TABLE_NAME = 'field_map' THEN
		FOREACH f IN ARRAY ARRAY[NEW.inbound_fn, NEW.outbound_fn] LOOP
			CONTINUE WHEN f IS NULL;
			SELECT p.pronargs, p.proargtypes, p.prorettype, p.proretset, p.prokind INTO fn
			FROM pg_catalog.pg_proc p WHERE p.oid = f;
			IF NOT FOUND OR fn.pronargs <> 1 OR fn.proargtypes[0] <> 'pg_catalog.jsonb'::pg_catalog.regtype
				OR fn.prorettype <> 'pg_catalog.jsonb'::pg_catalog.regtype OR fn.proretset OR fn.prokind <> 'f' THEN
				RAISE EXCEPTION 'function % cannot convert field "%" of "%" for column "%" of table %', f, NEW.external_field, sys, NEW.column_name, NEW.relid
					USING ERRCODE = '42883',
						  DETAIL = 'A field conversion function takes the value as jsonb and returns it as jsonb.',
						  HINT = 'CREATE FUNCTION my_fn(v jsonb) RETURNS jsonb ...';
			END IF;
		END LOOP;
		RETURN NEW;
	END IF;

	-- local values, and transitions, must be values of the column
	IF TG_TABLE_NAME = 'value_map' THEN
		vals := ARRAY[NEW.local_value];
	ELSE
		vals := ARRAY[NEW.from_value, NEW.to_value];
	END IF;
	FOREACH v IN ARRAY vals LOOP
		CONTINUE WHEN v IS NULL;
		BEGIN
			EXECUTE pg_catalog.format('SELECT %L::%s', v, typ);
		EXCEPTION WHEN OTHERS THEN
			RAISE EXCEPTION '% of table %: "%" is not a value of column "%" (%)', TG_TABLE_NAME, NEW.relid, v, NEW.column_name, typ
				USING ERRCODE = '22P02', DETAIL = SQLERRM,
					  HINT = 'Write the value as the column''s type reads it.';
		END;
	END LOOP;
	RETURN NEW;
END
$$;

CREATE TRIGGER check_mapping BEFORE INSERT OR UPDATE ON sync_resolve.field_map
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._check_mapping();
CREATE TRIGGER check_mapping BEFORE INSERT OR UPDATE ON sync_resolve.value_map
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._check_mapping();
CREATE TRIGGER check_mapping BEFORE INSERT OR UPDATE ON sync_resolve.transition
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._check_mapping();

CREATE TRIGGER check_system BEFORE INSERT OR UPDATE OR DELETE ON sync_resolve.system
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._check_system();
CREATE TRIGGER check_tracked BEFORE INSERT OR UPDATE ON sync_resolve.tracked
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._check_tracked();
CREATE TRIGGER after_untrack AFTER DELETE ON sync_resolve.tracked
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._after_untrack();
CREATE TRIGGER check_policy BEFORE INSERT OR UPDATE ON sync_resolve.column_policy
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._check_policy();
CREATE CONSTRAINT TRIGGER check_policy_group AFTER INSERT OR UPDATE ON sync_resolve.column_policy
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._check_policy_group();

-- TRUNCATE would bypass the row triggers: remove 'local', or leave shadows
-- and triggers behind.
CREATE FUNCTION sync_resolve._no_truncate()
	RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'cannot truncate %', TG_TABLE_NAME
		USING ERRCODE = '55000',
			  DETAIL = 'Rows of this table own shadows, triggers or the system local.',
			  HINT = CASE TG_TABLE_NAME WHEN 'tracked' THEN 'Untrack tables with sync_resolve.untrack().'
					 ELSE 'Delete the systems you no longer need with DELETE.' END;
END
$$;
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON sync_resolve.system
	FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._no_truncate();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON sync_resolve.tracked
	FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._no_truncate();

-- Any write to a policy table invalidates the cached policies of every backend.
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sync_resolve.system
	FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._policy_changed();
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sync_resolve.tracked
	FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._policy_changed();
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sync_resolve.column_policy
	FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._policy_changed();
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sync_resolve.field_map
	FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._policy_changed();
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sync_resolve.value_map
	FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._policy_changed();
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sync_resolve.transition
	FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._policy_changed();

-- The history is append-only.
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON sync_resolve.event
	FOR EACH ROW EXECUTE FUNCTION sync_resolve._append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON sync_resolve.event
	FOR EACH STATEMENT EXECUTE FUNCTION sync_resolve._append_only();

-- These checks, the work of track() and untrack() and the invalidation of
-- the caches hold under session_replication_role = replica too: there an
-- ordinary trigger does not fire, and track() made no shadow, no trigger
-- and none of its checks.
ALTER TABLE sync_resolve.field_map ENABLE ALWAYS TRIGGER check_mapping;
ALTER TABLE sync_resolve.value_map ENABLE ALWAYS TRIGGER check_mapping;
ALTER TABLE sync_resolve.transition ENABLE ALWAYS TRIGGER check_mapping;
ALTER TABLE sync_resolve.system ENABLE ALWAYS TRIGGER check_system;
ALTER TABLE sync_resolve.tracked ENABLE ALWAYS TRIGGER check_tracked;
ALTER TABLE sync_resolve.tracked ENABLE ALWAYS TRIGGER after_untrack;
ALTER TABLE sync_resolve.column_policy ENABLE ALWAYS TRIGGER check_policy;
ALTER TABLE sync_resolve.column_policy ENABLE ALWAYS TRIGGER check_policy_group;
ALTER TABLE sync_resolve.system ENABLE ALWAYS TRIGGER no_truncate;
ALTER TABLE sync_resolve.tracked ENABLE ALWAYS TRIGGER no_truncate;
ALTER TABLE sync_resolve.system ENABLE ALWAYS TRIGGER policy_changed;
ALTER TABLE sync_resolve.tracked ENABLE ALWAYS TRIGGER policy_changed;
ALTER TABLE sync_resolve.column_policy ENABLE ALWAYS TRIGGER policy_changed;
ALTER TABLE sync_resolve.field_map ENABLE ALWAYS TRIGGER policy_changed;
ALTER TABLE sync_resolve.value_map ENABLE ALWAYS TRIGGER policy_changed;
ALTER TABLE sync_resolve.transition ENABLE ALWAYS TRIGGER policy_changed;
ALTER TABLE sync_resolve.event ENABLE ALWAYS TRIGGER append_only;
ALTER TABLE sync_resolve.event ENABLE ALWAYS TRIGGER append_only_truncate;

-- ==== keeping shadows in step with DDL on tracked tables ====

-- After ALTER TABLE: new columns get a shadow column, dropped ones lose it,
-- a changed type is followed, and a policy follows its column through a rename.
CREATE FUNCTION sync_resolve._sync_shadow(tbl regclass)
	RETURNS void
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sh regclass;
	a record;
	want text;
	have text;
	have_type oid;
	table_key smallint[];
	shadow_key text[];
	ints oid[] := ARRAY['int2', 'int4', 'int8']::regtype[]::oid[];
	texts oid[] := ARRAY['text', 'varchar']::regtype[]::oid[];
BEGIN
	SELECT pg_catalog.to_regclass(t.shadow) INTO sh FROM sync_resolve.tracked t WHERE t.relid = tbl;
	IF sh IS NULL THEN
		RETURN;
	END IF;

	SELECT pg_catalog.array_agg(k.attnum ORDER BY k.n) INTO table_key
	FROM pg_catalog.pg_index i, LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
	WHERE i.indrelid = tbl AND i.indisprimary;
	SELECT pg_catalog.array_agg(x.attname::text ORDER BY k.n) INTO shadow_key
	FROM pg_catalog.pg_index i, LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, n),
		 pg_catalog.pg_attribute x
	WHERE i.indrelid = sh AND i.indisprimary AND x.attrelid = i.indrelid AND x.attnum = k.attnum
	  AND x.attname OPERATOR(pg_catalog.<>) 'system';
	IF table_key IS NULL OR shadow_key IS DISTINCT FROM
		ARRAY(SELECT 'c' OPERATOR(pg_catalog.||) u FROM pg_catalog.unnest(table_key) AS u) THEN
		RAISE EXCEPTION 'the primary key of tracked table % changed', tbl
			USING ERRCODE = '0A000',
				  DETAIL = 'Bases and history are kept per primary key.',
				  HINT = 'Untrack the table with sync_resolve.untrack() before changing its primary key, then track it again.';
	END IF;

	FOR a IN SELECT x.attnum, x.attname, x.atttypid, x.atttypmod FROM pg_catalog.pg_attribute x
			 WHERE x.attrelid = tbl AND x.attnum > 0 AND NOT x.attisdropped AND x.attgenerated = ''
			 ORDER BY x.attnum LOOP
		want := sync_resolve._shadow_type(a.atttypid, a.atttypmod);
		SELECT pg_catalog.format_type(s.atttypid, s.atttypmod), s.atttypid INTO have, have_type
		FROM pg_catalog.pg_attribute s
		WHERE s.attrelid = sh AND s.attname OPERATOR(pg_catalog.=) ('c' OPERATOR(pg_catalog.||) a.attnum) AND NOT s.attisdropped;
		IF have IS NULL THEN
			EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s', sh, 'c' OPERATOR(pg_catalog.||) a.attnum, want);
		ELSIF have OPERATOR(pg_catalog.<>) want AND a.attnum OPERATOR(pg_catalog.=) ANY (table_key) THEN
			-- A key column's values are the rows' identities, in the shadow and
			-- as JSON in the history, the outbox and the review queue.  They
			-- are cast, by PostgreSQL's own casts, where their JSON stays the
			-- same: between integer types, or between text and varchar.
			IF NOT ((have_type OPERATOR(pg_catalog.=) ANY (ints) AND a.atttypid OPERATOR(pg_catalog.=) ANY (ints))
					OR (have_type OPERATOR(pg_catalog.=) ANY (texts) AND a.atttypid OPERATOR(pg_catalog.=) ANY (texts))) THEN
				RAISE EXCEPTION 'the type of key column % of tracked table % changed from % to %',
					a.attname, tbl, have, pg_catalog.format_type(a.atttypid, a.atttypmod)
					USING ERRCODE = '0A000',
						  DETAIL = 'Bases and history are kept per key value; only integer types, or text and varchar, change into one another keeping them.',
						  HINT = 'Untrack the table with sync_resolve.untrack() before changing the type of its key, then track it again.';
			END IF;
			EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %I::%s', sh,
									  'c' OPERATOR(pg_catalog.||) a.attnum, want,
									  'c' OPERATOR(pg_catalog.||) a.attnum, want);
		ELSIF have OPERATOR(pg_catalog.<>) want THEN
			-- The bases of a re-typed column are forgotten rather than cast:
			-- a cast could run the table owner's functions as the extension
			-- owner.  The next image from each system is compared without a
			-- base for this column.
			EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING NULL', sh,
									  'c' OPERATOR(pg_catalog.||) a.attnum, want);
			EXECUTE pg_catalog.format('UPDATE %s SET known[%s] = NULL WHERE known[%s]', sh, a.attnum, a.attnum);
		END IF;
	END LOOP;

	FOR a IN SELECT s.attname FROM pg_catalog.pg_attribute s
			 WHERE s.attrelid = sh AND s.attnum > 0 AND NOT s.attisdropped AND s.attname ~ '^c[0-9]+$'
			   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute x
							   WHERE x.attrelid = tbl AND NOT x.attisdropped AND x.attgenerated = ''
								 AND ('c' OPERATOR(pg_catalog.||) x.attnum) OPERATOR(pg_catalog.=) s.attname) LOOP
		EXECUTE pg_catalog.format('ALTER TABLE %s DROP COLUMN %I', sh, a.attname);
	END LOOP;

	-- policies, field and value maps and transitions follow their column
	FOREACH want IN ARRAY ARRAY['column_policy', 'field_map', 'value_map', 'transition'] LOOP
		EXECUTE pg_catalog.format('DELETE FROM sync_resolve.%I p WHERE p.relid = $1 AND p.attnum IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute x
							WHERE x.attrelid = $1 AND x.attnum = p.attnum AND NOT x.attisdropped AND x.attgenerated = '''')',
			want) USING tbl;
		EXECUTE pg_catalog.format('UPDATE sync_resolve.%I p SET column_name = x.attname
			FROM pg_catalog.pg_attribute x
			WHERE p.relid = $1 AND x.attrelid = $1 AND x.attnum = p.attnum
			  AND x.attname OPERATOR(pg_catalog.<>) p.column_name', want) USING tbl;
	END LOOP;
	-- a changed type must still fit its column's strategy: check them again
	UPDATE sync_resolve.column_policy p SET strategy = p.strategy
	WHERE p.relid = tbl
	  AND sync_resolve._strategy_problem(tbl, p.attnum, p.strategy) IS NOT NULL;
	-- and the values its maps and transitions name must still be values of
	-- it: check_mapping refuses the change (a map of 'a' to a column made
	-- integer failed every later write to the table, the application's too)
	UPDATE sync_resolve.value_map m SET local_value = m.local_value WHERE m.relid = tbl;
	UPDATE sync_resolve.transition m SET to_value = m.to_value WHERE m.relid = tbl;
END
$$;

-- After ALTER TABLE ... RENAME COLUMN of a tracked table: what names its
-- columns outside the catalog follows the column -- match_on, the open
-- review items (their column, the columns they hold and, for a group or a
-- row, the values keyed by column), and the changes waiting in the outbox,
-- which are kept by column name until claim_outbound() puts them in the
-- target's words; a key column, in the rows' keys of the open items, the
-- outbox entries not yet sent and the record ids.  Without it a decision
-- on a renamed column wrote nothing and a waiting change to it was never
-- sent.  The history keeps the names it was written with.
CREATE FUNCTION sync_resolve._follow_rename(tbl regclass, old_name text, new_name text)
	RETURNS void
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- an open item of a column group and one of the column would share a name
	IF EXISTS (SELECT 1 FROM sync_resolve.column_policy p
			   WHERE p.relid = tbl AND p.col_group OPERATOR(pg_catalog.=) new_name) THEN
		RAISE EXCEPTION 'column "%" of table % cannot be renamed to "%", the name of one of its column groups',
			old_name, tbl, new_name
			USING ERRCODE = '42710',
				  DETAIL = 'Review items name the column or the group they hold.',
				  HINT = 'Choose another name, or rename the group first (sync_resolve.set_policy(..., col_group => ...)).';
	END IF;
	-- a key column: the rows' keys, as JSON objects, name it
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_index i, pg_catalog.pg_attribute a
			   WHERE i.indrelid = tbl AND i.indisprimary AND a.attrelid = tbl
				 AND a.attname OPERATOR(pg_catalog.=) new_name AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey)) THEN
		UPDATE sync_resolve.review r SET key = sync_resolve._rename_key(r.key, NULL, old_name, new_name)
		WHERE r.relid = tbl AND r.status OPERATOR(pg_catalog.=) 'open';
		UPDATE sync_resolve.outbox o SET key = sync_resolve._rename_key(o.key, NULL, old_name, new_name)
		WHERE o.relid = tbl AND o.status IN ('pending', 'failed', 'in_flight');
		UPDATE sync_resolve.identity d SET key = sync_resolve._rename_key(d.key, NULL, old_name, new_name)
		WHERE d.relid = tbl;
	END IF;
	UPDATE sync_resolve.tracked t
	SET match_on = pg_catalog.array_replace(t.match_on, old_name::pg_catalog.name, new_name::pg_catalog.name)
	WHERE t.relid = tbl AND old_name::pg_catalog.name OPERATOR(pg_catalog.=) ANY (t.match_on);
	UPDATE sync_resolve.review r
	SET column_name = CASE WHEN r.column_name OPERATOR(pg_catalog.=) old_name THEN new_name ELSE r.column_name END,
		columns = pg_catalog.array_replace(r.columns, old_name, new_name),
		local_value = sync_resolve._rename_key(r.local_value, r.column_name, old_name, new_name),
		incoming_value = sync_resolve._rename_key(r.incoming_value, r.column_name, old_name, new_name),
		base_value = sync_resolve._rename_key(r.base_value, r.column_name, old_name, new_name)
	WHERE r.relid = tbl AND r.status OPERATOR(pg_catalog.=) 'open'
	  AND old_name OPERATOR(pg_catalog.=) ANY (r.columns);
	UPDATE sync_resolve.outbox o
	SET payload = sync_resolve._rename_key(o.payload, NULL, old_name, new_name)
	WHERE o.relid = tbl AND o.status IN ('pending', 'failed', 'in_flight')
	  AND o.payload OPERATOR(pg_catalog.?) old_name;
END
$$;

-- A value with key old_name renamed: an outbox payload (item_column NULL),
-- or a review item's value where the item is about a group of columns or a
-- row (its values are objects keyed by column); one column's own value is
-- left as it is, whatever its type.
CREATE FUNCTION sync_resolve._rename_key(v jsonb, item_column text, old_name text, new_name text)
	RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE
		WHEN item_column IS DISTINCT FROM old_name AND pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'object'
			 AND v OPERATOR(pg_catalog.?) old_name
		THEN (v OPERATOR(pg_catalog.-) old_name)
			 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(new_name, v OPERATOR(pg_catalog.->) old_name)
		ELSE v
	END
$$;

CREATE FUNCTION sync_resolve._on_ddl()
	RETURNS event_trigger
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c record;
	partitioned boolean := false;	-- the command touched a tracked table's partitions
	made regclass[];
BEGIN
	FOR c IN SELECT DISTINCT d.objid FROM pg_catalog.pg_event_trigger_ddl_commands() d
			 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
			   AND EXISTS (SELECT 1 FROM sync_resolve.tracked t WHERE t.relid = d.objid) LOOP
		PERFORM sync_resolve._sync_shadow(c.objid::pg_catalog.regclass);
	END LOOP;
	FOR c IN SELECT d.objid, sync_resolve._ddl_renamed_column(d.command) AS names
			 FROM pg_catalog.pg_event_trigger_ddl_commands() d
			 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
			   AND d.command_tag = 'ALTER TABLE'
			   AND EXISTS (SELECT 1 FROM sync_resolve.tracked t WHERE t.relid = d.objid) LOOP
		CONTINUE WHEN c.names IS NULL;
		PERFORM sync_resolve._follow_rename(c.objid::pg_catalog.regclass, c.names[1], c.names[2]);
	END LOOP;
	-- a tracked table, or one of its partitions
	FOR c IN SELECT DISTINCT d.objid, k.relid, k.shadow IS NOT NULL AS used
			 FROM pg_catalog.pg_event_trigger_ddl_commands() d,
				  LATERAL sync_resolve._tracked_at_or_above(d.objid) k
			 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass LOOP
		-- a tracked table attached under another: PostgreSQL refuses it on
		-- their row triggers' names, unless one's were renamed (also in a
		-- restored database, before the tables' first use)
		PERFORM sync_resolve._refuse_nested(c.relid);
		-- ENABLE TRIGGER ALL made sync_resolve's origin-only (not those
		-- disabled on purpose)
		IF c.used THEN
			PERFORM sync_resolve._enable_always(c.objid::pg_catalog.regclass, false);
		END IF;
	END LOOP;
	-- a partition created or attached under a tracked table gets its
	-- TRUNCATE trigger; one detached from it loses it.  (Not while a dump is
	-- restored: a tracked table without its shadow yet gets its triggers from
	-- the dump, which creates its partitions before its rows of
	-- sync_resolve.tracked; _ensure_shadow() makes what is missing at first
	-- use.  A partition created after the restore gets its own.)
	FOR c IN SELECT DISTINCT CASE WHEN k.shadow IS NOT NULL THEN k.relid ELSE d.objid END AS objid
			 FROM pg_catalog.pg_event_trigger_ddl_commands() d,
				  LATERAL pg_catalog.pg_partition_ancestors(d.objid) a
				  JOIN sync_resolve.tracked k ON k.relid = a.relid
			 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
			   AND (k.shadow IS NOT NULL
					-- a new partition of one: not the dump's (it makes them first)
					OR (d.command_tag = 'CREATE TABLE' AND d.objid OPERATOR(pg_catalog.<>) k.relid)) LOOP
		made := pg_catalog.array_remove(sync_resolve._install_truncate_triggers(c.objid::pg_catalog.regclass),
										c.objid::pg_catalog.regclass);
		-- a table attached with BEFORE triggers of its own: what track() checks
		IF made OPERATOR(pg_catalog.<>) '{}' THEN
			PERFORM sync_resolve._check_trigger_order(c.objid::pg_catalog.regclass, NULL, made);
		END IF;
		partitioned := true;
	END LOOP;
	-- a table made an inheritance descendant of a tracked table: CREATE
	-- TABLE ... INHERITS, ALTER TABLE ... INHERIT, a foreign table alike;
	-- with it, the children it already had.  Only by the command that makes
	-- it one (_ddl_makes_inheritance()), not again at every later ALTER
	-- TABLE of it.  The descendants of every tracked table are looked up
	-- only when a command makes a child at all.
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() d
			   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
				 AND sync_resolve._ddl_makes_inheritance(d.command)) THEN
		FOR c IN SELECT DISTINCT i.relid AS objid, k.relid
				 FROM pg_catalog.pg_event_trigger_ddl_commands() d
				 JOIN sync_resolve._inheritance_descendants(NULL) i
				   ON i.relid = d.objid
					  OR i.relid IN (SELECT x.relid FROM sync_resolve._inheritance_descendants(d.objid::pg_catalog.regclass) x)
				 JOIN sync_resolve.tracked k ON k.relid = i.tracked
				 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
				   AND sync_resolve._ddl_makes_inheritance(d.command)
				   AND k.shadow IS NOT NULL
				 ORDER BY 1, 2 LOOP
			PERFORM sync_resolve._warn_inheritance_children(c.relid, c.objid::pg_catalog.regclass);
		END LOOP;
	END IF;
	-- a trigger made or renamed on a tracked table, or on one of its
	-- partitions (sync_resolve's own BEFORE trigger renamed: all of the
	-- table's are checked against its new name)
	FOR c IN SELECT g.oid AS objid, k.relid,
					g.tgfoid = 'sync_resolve._source_write()'::pg_catalog.regprocedure AS mine
			 FROM pg_catalog.pg_event_trigger_ddl_commands() d
			 JOIN pg_catalog.pg_trigger g ON g.oid = d.objid,
				  LATERAL sync_resolve._tracked_at_or_above(g.tgrelid) k
			 WHERE d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
			   AND k.shadow IS NOT NULL LOOP
		PERFORM sync_resolve._check_trigger_order(c.relid, CASE WHEN c.mine THEN NULL ELSE c.objid END);
	END LOOP;
	IF partitioned THEN
		FOR c IN SELECT g.tgrelid AS objid, g.tgname FROM pg_catalog.pg_trigger g
				 WHERE g.tgfoid = 'sync_resolve._truncate()'::pg_catalog.regprocedure
				   AND g.tgparentid OPERATOR(pg_catalog.=) 0
				   AND NOT EXISTS (SELECT 1 FROM sync_resolve._tracked_at_or_above(g.tgrelid)) LOOP
			EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', c.tgname, c.objid::pg_catalog.regclass);
		END LOOP;
	END IF;
END
$$;

CREATE FUNCTION sync_resolve._on_drop()
	RETURNS event_trigger
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o record;
	used text;
BEGIN
	FOR o IN SELECT d.objid, d.object_identity FROM pg_catalog.pg_event_trigger_dropped_objects() d
			 WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass LOOP
		SELECT pg_catalog.string_agg(pg_catalog.format('%s.%I', p.relid, p.column_name), ', ')
		INTO used
		FROM sync_resolve.column_policy p WHERE p.custom_fn::oid = o.objid;
		IF used IS NOT NULL THEN
			RAISE EXCEPTION 'cannot drop function %: column policies use it', o.object_identity
				USING ERRCODE = '2BP01',
					  DETAIL = pg_catalog.format('Columns deciding conflicts with it: %s.', used),
					  HINT = 'Set other policies for those columns first.';
		END IF;
	END LOOP;
	FOR o IN SELECT d.objid, d.object_identity FROM pg_catalog.pg_event_trigger_dropped_objects() d
			 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0 LOOP
		IF EXISTS (SELECT 1 FROM sync_resolve.tracked t WHERE t.shadow OPERATOR(pg_catalog.=) o.object_identity) THEN
			RAISE EXCEPTION 'cannot drop %: it is the shadow of a tracked table', o.object_identity
				USING ERRCODE = '2BP01',
					  HINT = 'Untrack the table with sync_resolve.untrack() instead.';
		END IF;
		DELETE FROM sync_resolve.tracked t WHERE t.relid = o.objid;
	END LOOP;
END
$$;

CREATE EVENT TRIGGER sync_resolve_ddl ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER',
				 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE')
	EXECUTE FUNCTION sync_resolve._on_ddl();
CREATE EVENT TRIGGER sync_resolve_drop ON sql_drop
	EXECUTE FUNCTION sync_resolve._on_drop();
-- as the tables' own triggers: DDL under session_replication_role = replica
-- (a partition created there, a tracked table dropped) is seen as well
ALTER EVENT TRIGGER sync_resolve_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER sync_resolve_drop ENABLE ALWAYS;

-- ==== setup API (DESIGN 3) ====

CREATE FUNCTION sync_resolve.add_system(name text, priority integer DEFAULT 100,
		member_role regrole DEFAULT NULL, replication_origin text DEFAULT NULL,
		ignore_unknown_fields boolean DEFAULT false)
	RETURNS void
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO sync_resolve.system (name, priority, member_role, replication_origin, ignore_unknown_fields)
	VALUES ($1, $2, $3, $4, $5);
END;
COMMENT ON FUNCTION sync_resolve.add_system(text, integer, regrole, text, boolean) IS
	'Register a system that holds a copy of the data';

CREATE FUNCTION sync_resolve.track(tbl regclass, systems text[],
		default_strategy text DEFAULT 'review', match_on name[] DEFAULT NULL,
		on_delete_conflict text DEFAULT 'review')
	RETURNS void
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO sync_resolve.tracked (relid, systems, default_strategy, match_on, on_delete_conflict)
	VALUES ($1, $2, $3, $4, $5);
END;
COMMENT ON FUNCTION sync_resolve.track(regclass, text[], text, name[], text) IS
	'Start tracking a table: creates its shadow and its triggers';

CREATE FUNCTION sync_resolve.untrack(tbl regclass)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- the lock track() takes: a set_policy() meanwhile waits, then finds the table untracked
	PERFORM pg_catalog.pg_advisory_xact_lock(21332, tbl::pg_catalog.oid::pg_catalog.int4);
	DELETE FROM sync_resolve.tracked t WHERE t.relid = tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not tracked', tbl
			USING ERRCODE = '55000',
				  HINT = 'sync_resolve.tracked lists the tracked tables.';
	END IF;
END
$$;
COMMENT ON FUNCTION sync_resolve.untrack(regclass) IS
	'Stop tracking a table: drops its shadow and triggers, dismisses its open reviews; the history is kept';

CREATE FUNCTION sync_resolve.set_policy(tbl regclass, col name, strategy text,
		owner text DEFAULT NULL, writers text[] DEFAULT NULL, col_group text DEFAULT NULL,
		custom_fn regprocedure DEFAULT NULL, on_unauthorized text DEFAULT 'reject',
		unmapped text DEFAULT 'pass', check_expr text DEFAULT NULL,
		on_invalid text DEFAULT 'reject', normalization text[] DEFAULT NULL)
	RETURNS void
	LANGUAGE sql
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO sync_resolve.column_policy AS p
		(relid, column_name, strategy, owner, writers, col_group, custom_fn, on_unauthorized,
		 unmapped, check_expr, on_invalid, normalization)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
	ON CONFLICT (relid, column_name) DO UPDATE
		SET strategy = excluded.strategy, owner = excluded.owner, writers = excluded.writers,
			col_group = excluded.col_group, custom_fn = excluded.custom_fn,
			on_unauthorized = excluded.on_unauthorized, unmapped = excluded.unmapped,
			check_expr = excluded.check_expr, on_invalid = excluded.on_invalid,
			normalization = excluded.normalization;
END;
COMMENT ON FUNCTION sync_resolve.set_policy(regclass, name, text, text, text[], text, regprocedure, text,
		text, text, text, text[]) IS
	'Set how conflicts on one column are decided, who may write it, and what an incoming value must be';

-- A deleted row keeps a tombstone in its shadow (deleted_at) so that a
-- delayed update cannot bring it back.  Past the given age, forget it: every
-- shadow row of the key goes, and a later image of it is a new row.
CREATE FUNCTION sync_resolve.prune_tombstones(older_than interval)
	RETURNS bigint
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	keys text;
	n bigint;
	total bigint := 0;
	cutoff timestamptz := pg_catalog.now() OPERATOR(pg_catalog.-) older_than;
BEGIN
	IF older_than OPERATOR(pg_catalog.<) '0'::interval THEN
		RAISE EXCEPTION 'prune_tombstones: older_than % is negative', older_than
			USING ERRCODE = '22023', HINT = 'Pass an age such as ''90 days''.';
	END IF;
	FOR t IN SELECT k.relid, pg_catalog.to_regclass(k.shadow) AS sh FROM sync_resolve.tracked k LOOP
		CONTINUE WHEN t.sh IS NULL;
		SELECT pg_catalog.string_agg(pg_catalog.format('s.%1$I = d.%1$I', 'c' OPERATOR(pg_catalog.||) k.attnum), ' AND ')
		INTO keys
		FROM pg_catalog.pg_index i, LATERAL pg_catalog.unnest(i.indkey) AS k(attnum)
		WHERE i.indrelid = t.relid AND i.indisprimary;
		CONTINUE WHEN keys IS NULL;
		-- the tombstones counted: rows of a deleted key, and a system's own
		-- delete of a row that is here again
		EXECUTE pg_catalog.format(
			'WITH d AS (SELECT * FROM %1$s WHERE system = ''local'' AND deleted_at < $1),
				  gone AS (DELETE FROM %1$s s USING d WHERE %2$s RETURNING s.deleted_at),
				  old AS (DELETE FROM %1$s s WHERE s.system <> ''local'' AND s.deleted_at < $1
						  RETURNING s.deleted_at)
			 SELECT (SELECT pg_catalog.count(*) FROM gone WHERE deleted_at IS NOT NULL)
					OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM old)', t.sh, keys)
		INTO n USING cutoff;
		total := total OPERATOR(pg_catalog.+) n;
	END LOOP;
	RETURN total;
END
$$;
COMMENT ON FUNCTION sync_resolve.prune_tombstones(interval) IS
	'Forget deletes older than the given age (a later image of such a row is a new row); returns the number of tombstones removed';

-- ==== explanation (DESIGN 9) ====

-- A value as explain() shows it: strings quoted, SQL NULL as NULL, long values cut.
CREATE FUNCTION sync_resolve._show(v jsonb)
	RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
RETURN CASE
	WHEN v IS NULL THEN '(unknown)'
	WHEN pg_catalog.jsonb_typeof(v) = 'null' THEN 'NULL'
	WHEN pg_catalog.jsonb_typeof(v) = 'string' AND pg_catalog.length(v #>> '{}') > 60 THEN
		pg_catalog.quote_literal(pg_catalog.left(v #>> '{}', 40)) OPERATOR(pg_catalog.||)
		pg_catalog.format('... (%s characters)', pg_catalog.length(v #>> '{}'))
	WHEN pg_catalog.jsonb_typeof(v) = 'string' THEN pg_catalog.quote_literal(v #>> '{}')
	WHEN pg_catalog.length(v::text) > 60 THEN
		pg_catalog.left(v::text, 40) OPERATOR(pg_catalog.||)
		pg_catalog.format('... (%s characters)', pg_catalog.length(v::text))
	ELSE v::text
END;

-- "phone '1' -> '2', stage 'lead' -> 'customer'" from two objects keyed by column.
CREATE FUNCTION sync_resolve._show_changes(old_value jsonb, new_value jsonb)
	RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
RETURN (SELECT pg_catalog.string_agg(
			CASE WHEN old_value IS NULL OR NOT old_value ? n.k
				 THEN pg_catalog.format('%s %s', n.k, sync_resolve._show(n.v))
				 ELSE pg_catalog.format('%s %s -> %s', n.k, sync_resolve._show(old_value -> n.k), sync_resolve._show(n.v))
			END, ', ' ORDER BY n.k)
		FROM pg_catalog.jsonb_each(new_value) AS n(k, v));

CREATE FUNCTION sync_resolve.explain(tbl regclass, key jsonb)
	RETURNS TABLE (at timestamptz, source text, kind text, column_name text, detail text)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT e.at, e.source, e.kind, e.column_name,
		CASE e.kind
			WHEN 'inserted' THEN
				pg_catalog.format('%s created the row: %s', e.source, sync_resolve._show_changes(NULL, e.new_value))
			WHEN 'applied' THEN
				pg_catalog.format('%s changed %s', e.source, sync_resolve._show_changes(e.old_value, e.new_value))
			WHEN 'conflict' THEN
				CASE WHEN e.column_name IS NULL THEN pg_catalog.format('%s: %s', e.rule, e.decision) ELSE
				pg_catalog.format('conflict on %s: local %s vs %s %s (%s) — %s: %s',
					coalesce(e.column_name, 'the row'), sync_resolve._show(e.old_value), e.source,
					sync_resolve._show(e.incoming_value),
					CASE WHEN e.base_value IS NULL THEN 'no base yet'
						 ELSE 'base ' OPERATOR(pg_catalog.||) sync_resolve._show(e.base_value) END,
					e.rule, e.decision) END
			WHEN 'unauthorized' THEN
				pg_catalog.format('%s tried to change %s from %s to %s — %s: %s',
					e.source, e.column_name, sync_resolve._show(e.old_value), sync_resolve._show(e.incoming_value),
					e.rule, e.decision)
			WHEN 'review_opened' THEN
				pg_catalog.format('review #%s opened for %s: local %s vs %s %s — %s',
					e.review_id, coalesce(e.column_name, 'the row'), sync_resolve._show(e.old_value), e.source,
					sync_resolve._show(e.incoming_value), e.rule)
			WHEN 'review_updated' THEN
				pg_catalog.format('review #%s on %s now holds %s %s',
					e.review_id, coalesce(e.column_name, 'the row'), e.source, sync_resolve._show(e.incoming_value))
			WHEN 'review_resolved' THEN
				CASE WHEN e.decision OPERATOR(pg_catalog.=) 'dismissed' THEN
					pg_catalog.format('review #%s on %s dismissed: %s',
						e.review_id, coalesce(e.column_name, 'the row'), e.rule)
				ELSE pg_catalog.format('review #%s on %s resolved by %s with %s: %s',
					e.review_id, coalesce(e.column_name, 'the row'), e.actor, e.decision, e.rule) END
			WHEN 'deleted' THEN e.rule
			WHEN 'stale' THEN
				pg_catalog.format('stale delivery from %s ignored — %s', e.source, e.rule)
			WHEN 'duplicate' THEN
				pg_catalog.format('duplicate delivery %s from %s ignored', e.event_id, e.source)
			WHEN 'received' THEN e.rule
			WHEN 'echo' THEN e.rule
			WHEN 'outbound_queued' THEN e.rule OPERATOR(pg_catalog.||)
				CASE WHEN e.new_value IS NULL THEN ''
					 ELSE ': ' OPERATOR(pg_catalog.||) sync_resolve._show_changes(NULL, e.new_value) END
			WHEN 'outbound_sent' THEN e.rule
			WHEN 'outbound_withdrawn' THEN e.rule
			WHEN 'outbound_failed' THEN e.rule
			WHEN 'reconciled' THEN
				pg_catalog.format('reconciled with the records of %s: %s here %s vs %s %s — %s (%s)',
					e.source, coalesce(e.column_name, 'the row'), sync_resolve._show(e.old_value), e.source,
					sync_resolve._show(e.incoming_value), e.rule, e.decision)
			ELSE
				pg_catalog.format('%s: %s', e.kind, coalesce(e.rule, ''))
		END
	FROM sync_resolve.event e
	-- event_row_idx keys the hash; each sub-select is evaluated once, not per event
	WHERE e.relid = $1
	  AND pg_catalog.jsonb_hash_extended(e.key, 0) OPERATOR(pg_catalog.=)
		  (SELECT pg_catalog.jsonb_hash_extended(sync_resolve.canonical_key($1, $2), 0))
	  AND e.key OPERATOR(pg_catalog.=) (SELECT sync_resolve.canonical_key($1, $2))
	ORDER BY e.id
$$;
COMMENT ON FUNCTION sync_resolve.explain(regclass, jsonb) IS
	'The story of one row: every decision sync_resolve made about it, in plain words';

-- What the shadow holds for one row: per external system its base (the
-- columns it is known to hold), and for local the per-column change
-- metadata and the columns held by an open review.
CREATE FUNCTION sync_resolve.shadow(tbl regclass, key jsonb)
	RETURNS TABLE (system text, base jsonb, changed_at timestamptz, version sync_resolve.vclock,
				   received_at timestamptz, deleted_at timestamptz, deleted_by text,
				   changes jsonb, held text[])
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sh regclass;
	cols text;
	keymatch text;
	ck jsonb;
BEGIN
	SELECT pg_catalog.to_regclass(t.shadow) INTO sh FROM sync_resolve.tracked t WHERE t.relid = tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table % is not tracked by sync_resolve', tbl
			USING ERRCODE = '55000',
				  HINT = 'Track it first with sync_resolve.track().';
	END IF;
	IF sh IS NULL THEN
		-- restored from a dump and not used since: its shadow, made at first
		-- use, holds nothing yet
		RETURN;
	END IF;
	ck := sync_resolve.canonical_key(tbl, key);

	-- {name: value} pairs, and {name: {at, by}} pairs, by attnum
	SELECT pg_catalog.string_agg(pg_catalog.format('(%L, pg_catalog.to_jsonb(s.%I), %s)', a.attname,
												   'c' OPERATOR(pg_catalog.||) a.attnum, a.attnum), ', ' ORDER BY a.attnum)
	INTO cols
	FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
	  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
					  WHERE i.indrelid = tbl AND i.indisprimary AND a.attnum = ANY (i.indkey));
	SELECT pg_catalog.string_agg(pg_catalog.format('s.%I OPERATOR(pg_catalog.=) (pg_catalog.jsonb_populate_record(NULL::%s, $1)).%I',
												   'c' OPERATOR(pg_catalog.||) a.attnum, tbl, a.attname), ' AND ')
	INTO keymatch
	FROM pg_catalog.pg_index i, LATERAL pg_catalog.unnest(i.indkey) AS k(attnum)
	JOIN pg_catalog.pg_attribute a ON a.attrelid = tbl AND a.attnum = k.attnum
	WHERE i.indrelid = tbl AND i.indisprimary;

	RETURN QUERY EXECUTE pg_catalog.format($q$
		SELECT s.system,
			   CASE WHEN s.system OPERATOR(pg_catalog.=) 'local' THEN NULL ELSE
				 (SELECT pg_catalog.jsonb_object_agg(c.name, c.value)
				  FROM (VALUES %s) AS c(name, value, attnum)
				  WHERE s.known[c.attnum]) END,
			   s.changed_at, s.version, s.received_at, s.deleted_at, s.deleted_by,
			   CASE WHEN s.system OPERATOR(pg_catalog.=) 'local' THEN
				 (SELECT pg_catalog.jsonb_object_agg(c.name,
						 pg_catalog.jsonb_build_object('at', s.col_changed_at[c.attnum], 'by', s.col_writer[c.attnum]))
				  FROM (VALUES %s) AS c(name, value, attnum)
				  WHERE s.col_writer[c.attnum] IS NOT NULL) END,
			   CASE WHEN s.system OPERATOR(pg_catalog.=) 'local' THEN
				 ARRAY(SELECT c.name FROM (VALUES %s) AS c(name, value, attnum)
					   WHERE s.held[c.attnum] ORDER BY c.attnum) END
		FROM %s s WHERE %s
		ORDER BY s.system OPERATOR(pg_catalog.<>) 'local', s.system$q$,
		cols, cols, cols, sh, keymatch)
	USING ck;
END
$$;
COMMENT ON FUNCTION sync_resolve.shadow(regclass, jsonb) IS
	'What sync_resolve knows of one row: each system''s base, and the local per-column change metadata';

-- ==== observability (DESIGN 12) ====

-- when each table last sent NOTIFY sync_resolve_alert (events.c), and for
-- how many conflicts in the hour before
CREATE TABLE sync_resolve.alert (
	relid regclass PRIMARY KEY REFERENCES sync_resolve.tracked ON DELETE CASCADE,
	alerted_at timestamptz NOT NULL,
	conflicts bigint NOT NULL
);
COMMENT ON TABLE sync_resolve.alert IS
	'The last NOTIFY sync_resolve_alert of each table: sent at most once an hour';

-- Each count reads an index of its own: the outbox's history of sent
-- entries and the history of events are never scanned whole.
CREATE VIEW sync_resolve.health AS
SELECT t.relid,
	   t.systems,
	   r.open_reviews,
	   r.oldest_open_review,
	   w.pending AS outbox_pending,
	   f.in_flight AS outbox_in_flight,
	   w.failed AS outbox_failed,
	   d.dead AS outbox_dead,
	   w.oldest_pending AS oldest_pending_at,
	   e.conflicts AS conflicts_last_hour,
	   e.refused OPERATOR(pg_catalog.+) j.rejected AS rejections_last_hour,
	   t.alert_per_hour,
	   a.alerted_at AS last_alert_at
FROM sync_resolve.tracked t
CROSS JOIN LATERAL (
	SELECT pg_catalog.count(*) AS open_reviews, pg_catalog.min(v.created_at) AS oldest_open_review
	FROM sync_resolve.review v
	WHERE v.relid OPERATOR(pg_catalog.=) t.relid AND v.status OPERATOR(pg_catalog.=) 'open') r
CROSS JOIN LATERAL (
	SELECT pg_catalog.count(*) FILTER (WHERE o.status OPERATOR(pg_catalog.=) 'pending') AS pending,
		   pg_catalog.count(*) FILTER (WHERE o.status OPERATOR(pg_catalog.=) 'failed') AS failed,
		   pg_catalog.min(o.created_at) FILTER (WHERE o.status OPERATOR(pg_catalog.=) 'pending') AS oldest_pending
	FROM sync_resolve.outbox o
	WHERE o.relid OPERATOR(pg_catalog.=) t.relid AND o.status IN ('pending', 'failed')) w
CROSS JOIN LATERAL (
	SELECT pg_catalog.count(*) AS in_flight
	FROM sync_resolve.outbox o
	WHERE o.relid OPERATOR(pg_catalog.=) t.relid AND o.status OPERATOR(pg_catalog.=) 'in_flight') f
CROSS JOIN LATERAL (
	SELECT pg_catalog.count(*) AS dead
	FROM sync_resolve.outbox o
	WHERE o.relid OPERATOR(pg_catalog.=) t.relid AND o.status OPERATOR(pg_catalog.=) 'dead') d
CROSS JOIN LATERAL (
	SELECT pg_catalog.count(*) FILTER (WHERE v.kind OPERATOR(pg_catalog.=) 'conflict') AS conflicts,
		   pg_catalog.count(*) FILTER (WHERE v.kind OPERATOR(pg_catalog.<>) 'conflict'
									   AND v.decision OPERATOR(pg_catalog.=) 'refused') AS refused
	FROM sync_resolve.event v
	WHERE v.relid OPERATOR(pg_catalog.=) t.relid
	  AND v.kind IN ('conflict', 'unauthorized', 'invalid', 'unmapped')
	  AND v.at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour')) e
CROSS JOIN LATERAL (
	SELECT pg_catalog.count(*) AS rejected
	FROM sync_resolve.rejected x
	WHERE x.relid OPERATOR(pg_catalog.=) t.relid
	  AND x.at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour')) j
LEFT JOIN sync_resolve.alert a ON a.relid OPERATOR(pg_catalog.=) t.relid;
COMMENT ON VIEW sync_resolve.health IS
	'Per tracked table: open reviews, the outbox by status, conflicts and rejections in the last hour';

CREATE VIEW sync_resolve.conflict_stats AS
SELECT e.relid,
	   e.column_name,
	   e.source,
	   e.strategy AS rule,
	   e.decision AS outcome,
	   pg_catalog.count(*) AS conflicts,
	   pg_catalog.count(*) FILTER (WHERE e.at OPERATOR(pg_catalog.>)
								   (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour')) AS last_hour,
	   pg_catalog.count(*) FILTER (WHERE e.at OPERATOR(pg_catalog.>)
								   (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 day')) AS last_day,
	   pg_catalog.min(e.at) AS first_at,
	   pg_catalog.max(e.at) AS last_at
FROM sync_resolve.event e
WHERE e.kind OPERATOR(pg_catalog.=) 'conflict'
GROUP BY e.relid, e.column_name, e.source, e.strategy, e.decision;
COMMENT ON VIEW sync_resolve.conflict_stats IS
	'Conflicts in the history, per table, column (NULL: the whole row), source, rule that decided and outcome';

-- ==== privileges and dumps (DESIGN 13) ====

INSERT INTO sync_resolve.system (name, priority) VALUES ('local', 100);

REVOKE ALL ON ALL TABLES IN SCHEMA sync_resolve FROM PUBLIC;
GRANT USAGE ON SCHEMA sync_resolve TO PUBLIC;
GRANT SELECT ON sync_resolve.event TO PUBLIC;
-- counts of the public history; health counts reviews and the outbox too,
-- and is granted by the DBA (to a monitoring role, say)
GRANT SELECT ON sync_resolve.conflict_stats TO PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve.add_system(text, integer, regrole, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve.track(regclass, text[], text, name[], text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve.untrack(regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve.set_policy(regclass, name, text, text, text[], text, regprocedure, text, text, text, text, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve.prune_tombstones(interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve.resolve(bigint, text, jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve.prune_events(interval) FROM PUBLIC;
-- run as the extension owner on behalf of the tracked table's triggers
REVOKE EXECUTE ON FUNCTION sync_resolve._create_shadow(regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve._drop_shadow(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve._check_not_in_use(regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve._ddl_makes_inheritance(pg_catalog.pg_ddl_command) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve._ddl_renamed_column(pg_catalog.pg_ddl_command) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve._follow_rename(regclass, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve._rename_key(jsonb, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve._ensure_shadow(regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_resolve._sync_shadow(regclass) FROM PUBLIC;
-- fires on sync_resolve._at_commit only; nobody else attaches it anywhere
REVOKE EXECUTE ON FUNCTION sync_resolve._at_commit_run() FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('sync_resolve.system', 'WHERE name <> ''local''');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.tracked', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.column_policy', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.event', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.delivery', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.review', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.rejected', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.identity', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.field_map', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.value_map', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.transition', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.review_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sync_resolve.rejected_id_seq', '');
