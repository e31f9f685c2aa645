-- bench/between_runs.sql: run before every measured run, tracked or plain alike, so
-- that each starts from the same state: no history, vacuumed and analyzed tables, an
-- empty outbox, a fresh checkpoint (none falls inside a run).  The PL/pgSQL reference's
-- own history and outbox (bench/reference.sql) and the floor's (bench/floor.sql), where
-- the database has them, are emptied the same way.
--
-- With -v keep_history=1 (the history benchmark's database, bench/setup_scale.sql) the
-- history is kept: the runs there start from the history it was filled with, plus what
-- earlier runs added.  With -v keep_outbox=1 (the claim benchmark's database,
-- bench/setup_claim.sql) the outbox is kept: bench/claim_pool.sql has just filled it with
-- the entries the run claims.
--
-- With -v fill_outbox=1 (the scaling benchmarks' apply() sides, bench/setup_scale.sql's
-- databases) the emptied outbox is filled with one entry waiting for billing per row of
-- item_apply, the entry apply() from crm queues at a row's first change: every apply()
-- of a run then merges its change into the row's waiting entry, at 10,000 rows as at
-- 1,000,000.  Left empty, at 10,000 rows most changes of a 15-s run merge (each row
-- comes round about nine times) while at 1,000,000 almost every one queues a new entry,
-- a tenth more work (bench/instructions.sh: apply against apply_new): the two sizes
-- would not be doing the same thing.
--
-- The outbox is truncated after VACUUM ANALYZE, not before: TRUNCATE leaves it with
-- unknown statistics (reltuples -1), as a table that was never analyzed.  Analyzed while
-- empty (reltuples 0), it makes sync_resolve's kept SPI plans seq-scan the outbox for
-- the rest of the run, however large it grows, until autovacuum analyzes it again (see
-- bench/RESULTS.md).  A production outbox is never empty: sent entries stay.
SET client_min_messages = warning;
SELECT to_regclass('ref_event') IS NOT NULL AS has_reference,
	   to_regclass('floor_event') IS NOT NULL AS has_floor \gset
\if :{?keep_history}
\else
SELECT sync_resolve.prune_events('0 seconds') IS NOT NULL AS pruned;
\if :has_reference
TRUNCATE ref_event;
\endif
\if :has_floor
TRUNCATE floor_event;
\endif
\endif
VACUUM (ANALYZE);
\if :{?keep_outbox}
\else
TRUNCATE sync_resolve.outbox;
\endif
\if :{?fill_outbox}
INSERT INTO sync_resolve.outbox (relid, key, target, op, payload, cause)
SELECT 'item_apply'::regclass, jsonb_build_object('id', i.id), 'billing', 'upsert',
	   jsonb_build_object('qty', i.qty), 'crm'
FROM item_apply i;
VACUUM (ANALYZE) sync_resolve.outbox;
\endif
\if :has_reference
TRUNCATE ref_outbox;
\endif
\if :has_floor
TRUNCATE floor_outbox;
\endif
CHECKPOINT;
