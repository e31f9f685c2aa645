-- bench/between_runs.sql: run before every measured run, tracked or plain alike, so
-- that each starts from the same state: no history, vacuumed and analyzed tables, an
-- empty outbox, a fresh checkpoint (none falls inside a run).
--
-- The outbox is truncated after VACUUM ANALYZE, not before: TRUNCATE leaves it with
-- unknown statistics (reltuples -1), as a table that was never analyzed.  Analyzed while
-- empty (reltuples 0), it makes sync_resolve's kept SPI plans seq-scan the outbox for
-- the rest of the run, however large it grows, until autovacuum analyzes it again (see
-- bench/RESULTS.md).  A production outbox is never empty: sent entries stay.
SET client_min_messages = warning;
SELECT sync_resolve.prune_events('0 seconds') IS NOT NULL AS pruned;
VACUUM (ANALYZE);
TRUNCATE sync_resolve.outbox;
CHECKPOINT;
