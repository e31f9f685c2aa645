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
\if :has_reference
TRUNCATE ref_outbox;
\endif
\if :has_floor
TRUNCATE floor_outbox;
\endif
CHECKPOINT;
