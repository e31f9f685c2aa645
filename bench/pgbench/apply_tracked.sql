-- crm changes one column of a random row: apply(), no conflict
\set id random(1, 10000)
\set qty random(1, 1000000)
SELECT (sync_resolve.apply('item_apply', 'crm', jsonb_build_object('id', :id::int, 'qty', :qty::int), now())).outcome;
