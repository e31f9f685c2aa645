-- A partitioned table is tracked as one table: apply() writes through the
-- parent, and a local write to any partition (through the parent or
-- directly, whatever the partition's column order) is recorded against the
-- parent, so that later conflicts see it.
\set ECHO none
\i sql/include/setup.psql
\set ECHO all

CREATE TABLE orders (id int, region text, total numeric, note text, PRIMARY KEY (id, region))
	PARTITION BY LIST (region);
CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN ('eu');
-- a partition with its columns in another order
CREATE TABLE orders_us (note text, total numeric, region text NOT NULL, id int NOT NULL);
ALTER TABLE orders ATTACH PARTITION orders_us FOR VALUES IN ('us');
SELECT sync_resolve.track('orders', ARRAY['crm'], 'latest');
SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname = 'sync_resolve_after' ORDER BY c.relname;

SELECT outcome FROM sync_resolve.apply('orders', 'crm', '{"id": 1, "region": "eu", "total": 10, "note": "a"}', '2000-01-01');
SELECT outcome FROM sync_resolve.apply('orders', 'crm', '{"id": 2, "region": "us", "total": 20, "note": "b"}', '2000-01-01');
SELECT tableoid::regclass, * FROM orders ORDER BY id;

-- local edits, through the parent and on the partition itself
UPDATE orders SET total = 11 WHERE id = 1;
UPDATE orders_us SET total = 21 WHERE id = 2;
SELECT system, (SELECT jsonb_object_agg(k, v -> 'by') FROM jsonb_each(changes) AS e(k, v)) AS writers
FROM sync_resolve.shadow('orders', '{"id": 2, "region": "us"}');

-- crm's older changes lose to them (latest)
SELECT outcome, kept FROM sync_resolve.apply('orders', 'crm', '{"id": 1, "region": "eu", "total": 15}', '2000-01-02');
SELECT outcome, kept FROM sync_resolve.apply('orders', 'crm', '{"id": 2, "region": "us", "total": 25}', '2000-01-02');
-- and a one-sided change still lands in the right partition
SELECT outcome, applied FROM sync_resolve.apply('orders', 'crm', '{"id": 2, "region": "us", "note": "rush"}', '2000-01-03');
SELECT tableoid::regclass, * FROM orders ORDER BY id;

-- a delete on a partition leaves the parent's tombstone
DELETE FROM orders_eu WHERE id = 1;
SELECT deleted_at IS NOT NULL AS deleted, deleted_by FROM sync_resolve.shadow('orders', '{"id": 1, "region": "eu"}')
WHERE system = 'local';
-- a partition attached later is tracked at once
CREATE TABLE orders_apac PARTITION OF orders FOR VALUES IN ('apac');
INSERT INTO orders VALUES (3, 'apac', 30, 'c');
SELECT system, (SELECT jsonb_object_agg(k, v -> 'by') FROM jsonb_each(changes) AS e(k, v)) AS writers
FROM sync_resolve.shadow('orders', '{"id": 3, "region": "apac"}');

-- ALTER TABLE ... ENABLE TRIGGER ALL on a partition (a data-only restore
-- with --disable-triggers runs it) left sync_resolve's triggers there
-- origin-only, so that they did not fire in a logical replication apply
-- worker: they are made ALWAYS again
ALTER TABLE orders_apac DISABLE TRIGGER ALL;
ALTER TABLE orders_apac ENABLE TRIGGER ALL;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'orders_apac'::regclass ORDER BY tgname;

-- a table attached with a BEFORE row trigger of its own that fires after
-- sync_resolve_before is named, as track() names one (before, only a
-- trigger created or renamed on a tracked table was)
CREATE TABLE orders_mena (id int, region text, total numeric, note text, PRIMARY KEY (id, region));
CREATE FUNCTION orders_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.note := 'set by trigger';
	RETURN NEW;
END
$$;
CREATE TRIGGER zz_note BEFORE INSERT ON orders_mena FOR EACH ROW EXECUTE FUNCTION orders_note();
ALTER TABLE orders ATTACH PARTITION orders_mena FOR VALUES IN ('mena');
-- sync_resolve's own triggers, renamed, are not named as a user's; the
-- user's are checked against the new name (zz_note still fires after it)
ALTER TRIGGER sync_resolve_before ON orders RENAME TO sync_resolve_before_2;
SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgfoid = 'sync_resolve._source_write()'::regprocedure AND c.relname LIKE 'orders%' ORDER BY c.relname;
ALTER TRIGGER sync_resolve_before_2 ON orders RENAME TO sync_resolve_before;

-- a table with inheritance children: apply() finds the row where a query
-- of the parent does, in a child (the parent's primary key does not cover
-- it), and updates it there rather than add a second row to the parent.
-- A child has none of the parent's triggers, so its local writes are not
-- recorded: track() says so for each child, and so does CREATE TABLE of
-- one later (before, nothing did)
CREATE TABLE ledger (id int PRIMARY KEY, v text);
CREATE TABLE ledger_archive () INHERITS (ledger);
SELECT sync_resolve.track('ledger', ARRAY['crm'], 'latest');
CREATE TABLE ledger_2030 (note text) INHERITS (ledger);
-- at any depth, and by ALTER TABLE ... INHERIT too
CREATE TABLE ledger_2030_q1 () INHERITS (ledger_2030);
CREATE TABLE ledger_old (id int NOT NULL, v text);
ALTER TABLE ledger_old INHERIT ledger;
-- once, by the command that makes the child: a later ALTER TABLE of it
-- says nothing (before, each one warned again)
ALTER TABLE ledger_old ADD COLUMN checked boolean, ALTER COLUMN v SET DEFAULT 'n/a';
ALTER TABLE ledger_2030 RENAME COLUMN note TO remark;
-- a table that has children of its own brings them along: each is named
CREATE TABLE ledger_mid (id int NOT NULL, v text);
CREATE TABLE ledger_mid_1 () INHERITS (ledger_mid);
CREATE TABLE ledger_mid_2 () INHERITS (ledger_mid);
ALTER TABLE ledger_mid ADD COLUMN extra int, INHERIT ledger;
CREATE FOREIGN DATA WRAPPER ledger_fdw;
CREATE SERVER ledger_srv FOREIGN DATA WRAPPER ledger_fdw;
CREATE FOREIGN TABLE ledger_remote () INHERITS (ledger) SERVER ledger_srv;
DROP SERVER ledger_srv CASCADE;
DROP FOREIGN DATA WRAPPER ledger_fdw;
-- not a child tracked itself: it records its own writes
CREATE TABLE ledger_own (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('ledger_own', ARRAY['crm']);
ALTER TABLE ledger_own INHERIT ledger;
ALTER TABLE ledger_own NO INHERIT ledger;
SELECT sync_resolve.untrack('ledger_own');
DROP TABLE ledger_own;
INSERT INTO ledger_archive VALUES (5, 'archived');
SELECT outcome FROM sync_resolve.apply('ledger', 'crm', '{"id": 5, "v": "from crm"}', '2030-01-01');
SELECT tableoid::regclass AS stored_in, * FROM ledger;
DROP TABLE ledger CASCADE;

-- A partitioned table is tracked with all its partitions: a partition of
-- a tracked table cannot be tracked too, nor a table with a tracked
-- partition, nor can a tracked table be attached under another (before,
-- track() took them, and untrack() or DETACH then failed or left a table
-- tracked without triggers)
\set VERBOSITY terse
-- must fail
SELECT sync_resolve.track('orders_eu', ARRAY['crm']);
CREATE TABLE shelf (id int, zone text, PRIMARY KEY (id, zone)) PARTITION BY LIST (zone);
CREATE TABLE shelf_a PARTITION OF shelf FOR VALUES IN ('a');
SELECT sync_resolve.track('shelf_a', ARRAY['crm']);
-- must fail
SELECT sync_resolve.track('shelf', ARRAY['crm']);
-- must fail: also under session_replication_role = replica, where an
-- ordinary trigger does not fire (before, track() there made no shadow and
-- no trigger, and checked nothing)
SET session_replication_role = replica;
SELECT sync_resolve.track('shelf', ARRAY['crm']);
RESET session_replication_role;
CREATE TABLE orders_b (id int, region text, total numeric, note text, PRIMARY KEY (id, region));
SELECT sync_resolve.track('orders_b', ARRAY['crm']);
-- must fail
ALTER TABLE orders ATTACH PARTITION orders_b FOR VALUES IN ('b');
-- must fail: also with its triggers renamed, which PostgreSQL's own
-- refusal went by (before, the attach went through and each write to
-- orders_b was recorded twice, against orders_b, and never against orders)
ALTER TRIGGER sync_resolve_before ON orders_b RENAME TO orders_b_before;
ALTER TRIGGER sync_resolve_after ON orders_b RENAME TO orders_b_after;
ALTER TABLE orders ATTACH PARTITION orders_b FOR VALUES IN ('b');
\set VERBOSITY default
SELECT relid FROM sync_resolve.tracked WHERE relid::text ~ '^(shelf|orders_)' ORDER BY relid::text;
SELECT count(*) AS orders_partitions FROM pg_partition_tree('orders');
DROP TABLE shelf, orders_b;
