-- the same statements on the untracked copy (the SET changes nothing there; it is
-- kept so that both sides send the same two statements per transaction)
\set id random(1, 10000)
\set qty random(1, 1000000)
SET sync_resolve.source = 'crm';
UPDATE item_src_plain SET qty = :qty::int WHERE id = :id::int;
