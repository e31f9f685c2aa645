-- the same change through the hand-written PL/pgSQL reference (bench/reference.sql)
-- on its own copy of the rows, item_ref, with its own shadow, history and outbox
\set id random(1, 10000)
\set qty random(1, 1000000)
SELECT (ref_apply('crm', jsonb_build_object('id', :id::int, 'qty', :qty::int), now())).outcome;
