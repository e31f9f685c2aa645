-- the same UPDATE on the untracked copy
\set id random(1, 10000)
UPDATE item_local_plain SET qty = qty + 1 WHERE id = :id;
