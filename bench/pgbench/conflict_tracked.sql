-- crm sends every column of a random row, each changed on both sides: five
-- conflicts, decided by 'latest' for the local value (changed after crm's 2000-01-01)
\set id random(1, 10000)
\set n random(1, 1000000)
SELECT (sync_resolve.apply('item_conflict', 'crm',
	jsonb_build_object('id', :id::int, 'name', 'crm ' || :n::int, 'qty', :n::int, 'price', :n::int / 100.0,
					   'note', 'note ' || :n::int, 'tags', jsonb_build_array('c' || :n::int)),
	'2000-01-01')).outcome;
