-- bench/memory.sql: the memory one backend needs to apply 10,000 rows in one call, for
-- bench/run.sh.  Run it in a fresh connection, on the same host as the server (it reads
-- /proc/PID/status of its own backend, through psql's \!):
--
--   psql -v tracked=1 -f bench/memory.sql     apply_batch() of 10,000 rows of item_batch
--                                             from crm, one column changed in each
--   psql -v tracked=0 -f bench/memory.sql     the same rows, from the same JSON array, as
--                                             one plain INSERT ... ON CONFLICT DO UPDATE
--                                             into item_batch_plain (the baseline)
--
-- Prints "before NAME: kB" and "after NAME: kB" lines for VmHWM (the backend's peak
-- resident memory so far), VmRSS, RssAnon, RssFile and RssShmem (the shared buffers it
-- has touched count as resident too: VmHWM is not its private memory), "peak RssAnon:
-- kB", the largest private (anonymous) resident memory seen during the call, sampled
-- every 5 ms by a shell loop, and "contexts: bytes", the memory contexts the backend
-- still holds once the call returned, before the transaction ends.  Everything is
-- rolled back: the tables stay as set up.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT pg_backend_pid() AS pid \gset
\setenv SR_BENCH_PID :pid
\! awk '/^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem):/ { print "before", $1, $2 }' /proc/$SR_BENCH_PID/status
-- the sampler: keeps the largest RssAnon in a file until told to stop
\! rm -f /tmp/sr_bench_mem.$SR_BENCH_PID.*; (peak=0; while [ ! -e /tmp/sr_bench_mem.$SR_BENCH_PID.stop ] && [ -r /proc/$SR_BENCH_PID/status ]; do while read -r k v u; do [ "$k" != RssAnon: ] || [ "$v" -le "$peak" ] || peak=$v; done </proc/$SR_BENCH_PID/status; sleep 0.005; done; echo "$peak" >/tmp/sr_bench_mem.$SR_BENCH_PID.peak) &
BEGIN;
\if :tracked
SELECT count(*) FROM sync_resolve.apply_batch('item_batch', 'crm',
	(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'data', jsonb_build_object('id', g, 'qty', 424242 + g),
										 'changed_at', now()))
	 FROM generate_series(1, 10000) g)) b
WHERE b.outcome = 'updated' \gset
\else
WITH u AS (
	INSERT INTO item_batch_plain (id, qty)
	SELECT (e -> 'data' ->> 'id')::int, (e -> 'data' ->> 'qty')::int
	FROM jsonb_array_elements(
		(SELECT jsonb_agg(jsonb_build_object('op', 'upsert', 'data', jsonb_build_object('id', g, 'qty', 424242 + g),
											 'changed_at', now()))
		 FROM generate_series(1, 10000) g)) e
	ON CONFLICT (id) DO UPDATE SET qty = excluded.qty
	RETURNING 1)
SELECT count(*) FROM u \gset
\endif
\echo rows: :count
\! touch /tmp/sr_bench_mem.$SR_BENCH_PID.stop; while [ ! -s /tmp/sr_bench_mem.$SR_BENCH_PID.peak ]; do sleep 0.01; done; echo "peak RssAnon: $(cat /tmp/sr_bench_mem.$SR_BENCH_PID.peak)"; rm -f /tmp/sr_bench_mem.$SR_BENCH_PID.*
\! awk '/^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem):/ { print "after", $1, $2 }' /proc/$SR_BENCH_PID/status
SELECT 'contexts: ' || sum(total_bytes) AS contexts FROM pg_backend_memory_contexts \gset
\echo :contexts
ROLLBACK;
