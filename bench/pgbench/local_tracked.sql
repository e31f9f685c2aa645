-- a local UPDATE of one random row of a tracked table
\set id random(1, 10000)
UPDATE item_local SET qty = qty + 1 WHERE id = :id;
