-- the same claim and acknowledgement by hand, on plain_queue (a copy of the outbox
-- holding the same entries), in the statement claim_outbound() runs: the oldest entries
-- crm may take (waiting and due, or in flight with their lease run out) chosen once,
-- FOR UPDATE SKIP LOCKED through the same index, and leased (an expired one that used
-- its last attempt, of sync_resolve.max_attempts = 10, marked dead); then marked sent
WITH c AS MATERIALIZED (SELECT id FROM plain_queue
	WHERE target = ANY (ARRAY['crm']) AND status IN ('pending', 'failed', 'in_flight')
	  AND ((status IN ('pending', 'failed') AND next_attempt_at <= now())
		   OR (status = 'in_flight' AND lease_until < now()))
	ORDER BY target, id LIMIT 1 FOR UPDATE SKIP LOCKED)
UPDATE plain_queue o SET
	status = CASE WHEN o.status = 'in_flight' AND o.attempts >= 10 THEN 'dead' ELSE 'in_flight' END,
	attempts = CASE WHEN o.status = 'in_flight' AND o.attempts >= 10 THEN o.attempts ELSE o.attempts + 1 END,
	lease_until = CASE WHEN o.status = 'in_flight' AND o.attempts >= 10 THEN o.lease_until
				  ELSE now() + interval '2 minutes' END,
	updated_at = now()
WHERE o.id = ANY (ARRAY(SELECT id FROM c))
RETURNING o.id \gset
UPDATE plain_queue SET status = 'sent', sent_at = now(), lease_until = NULL, updated_at = now()
WHERE id = :id;
