-- a worker carrying the outbox to crm, one entry at a time: claim the oldest waiting
-- entry, then acknowledge it in a transaction of its own (README: commit the claim
-- before sending); bench/claim_pool.sql fills the pool before every run
SELECT id FROM sync_resolve.claim_outbound('crm', max => 1, lease => '2 minutes') \gset
SELECT (sync_resolve.ack_outbound(:id)).status;
