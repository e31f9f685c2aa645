-- crm changes one column of a random row of a table tracked for crm alone: apply(), no
-- conflict, and no other system to queue the change for (no outbox entry)
-- (rows: the table's size, given by bench/run.sh with pgbench -D rows=N)
\set id random(1, :rows)
\set qty random(1, 1000000)
SELECT (sync_resolve.apply('item_solo', 'crm', jsonb_build_object('id', :id::int, 'qty', :qty::int), now())).outcome;
