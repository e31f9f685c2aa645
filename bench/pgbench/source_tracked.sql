-- a write from crm through the table: the before trigger resolves it as apply() would
\set id random(1, 10000)
\set qty random(1, 1000000)
SET sync_resolve.source = 'crm';
UPDATE item_src SET qty = :qty::int WHERE id = :id::int;
