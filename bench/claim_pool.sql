-- bench/claim_pool.sql: before every run of the claim benchmark (bench/run.sh), before
-- bench/between_runs.sql (with keep_outbox=1): every row of item_claim changed
-- locally, so that one entry per row waits for crm in sync_resolve.outbox, and the same
-- entries in plain_queue (bench/setup_claim.sql).
SET client_min_messages = warning;
TRUNCATE sync_resolve.outbox, plain_queue;
UPDATE item_claim SET qty = qty + 1;
INSERT INTO plain_queue OVERRIDING SYSTEM VALUE SELECT * FROM sync_resolve.outbox;
