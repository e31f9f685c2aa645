-- crm changes one column of a random row: apply(), no conflict
-- (rows: the table's size, given by bench/run.sh with pgbench -D rows=N)
\set id random(1, :rows)
\set qty random(1, 1000000)
SELECT (sync_resolve.apply('item_apply', 'crm', jsonb_build_object('id', :id::int, 'qty', :qty::int), now())).outcome;
