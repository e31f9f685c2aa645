-- Strategy sum_delta: for counts and amounts, a conflict keeps both
-- sides' increments: local + (incoming - base).  Without a number on all
-- three sides the delta is unknown and the column goes to review.
\set ECHO none
\i sql/include/conflict_matrix.psql
\set ECHO all

CREATE TABLE stock (id int PRIMARY KEY, v integer);
SELECT sync_resolve.track('stock', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('stock', 'v', 'sum_delta');
-- 10 in stock; 3 sold here (7), 2 sold by the shop (8): 5 left
SELECT * FROM pg_temp.conflict_matrix('stock', '10', '7', '8', '1999-01-01', '2000-01-01') ORDER BY n;
SELECT detail FROM sync_resolve.explain('stock', '{"id": 1}') WHERE kind = 'conflict';
SELECT column_name, reason FROM sync_resolve.review ORDER BY id;

-- numeric keeps its scale; float and bigint work too
CREATE TABLE amounts (id int PRIMARY KEY, v numeric(10,2));
SELECT sync_resolve.track('amounts', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('amounts', 'v', 'sum_delta');
SELECT pg_temp.conflict_case('amounts', 1, '100.00', '90.50', '120', '1999-01-01', '2000-01-01');
CREATE TABLE floats (id int PRIMARY KEY, v float8);
SELECT sync_resolve.track('floats', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('floats', 'v', 'sum_delta');
SELECT pg_temp.conflict_case('floats', 1, '1.5', '2.5', '0.5', '1999-01-01', '2000-01-01');
CREATE TABLE bigs (id int PRIMARY KEY, v bigint);
SELECT sync_resolve.track('bigs', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('bigs', 'v', 'sum_delta');
SELECT pg_temp.conflict_case('bigs', 1, '5000000000', '5000000001', '4999999999', '1999-01-01', '2000-01-01');

-- a result out of the type's range is not written: it goes to review
CREATE TABLE small (id int PRIMARY KEY, v smallint);
SELECT sync_resolve.track('small', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('small', 'v', 'sum_delta');
-- 30000 here, +20000 there: 50000 does not fit a smallint
SELECT pg_temp.conflict_case('small', 1, '0', '30000', '20000', '1999-01-01', '2000-01-01');
SELECT reason FROM sync_resolve.review WHERE relid = 'small'::regclass;
-- nor one with more digits than the column's numeric(precision, scale) holds
-- (it failed the call with a bare 22003 naming neither column nor system)
CREATE TABLE narrow (id int PRIMARY KEY, v numeric(5,2));
SELECT sync_resolve.track('narrow', ARRAY['crm', 'billing']);
SELECT sync_resolve.set_policy('narrow', 'v', 'sum_delta');
-- 900 here, +499 there: 1399.00 has four digits before the point
SELECT pg_temp.conflict_case('narrow', 1, '500', '900', '999', '1999-01-01', '2000-01-01');
SELECT reason FROM sync_resolve.review WHERE relid = 'narrow'::regclass;
-- within them, the result is rounded to the column's scale, as the column would
SELECT pg_temp.conflict_case('narrow', 2, '1.001', '2.5', '3.0049', '1999-01-01', '2000-01-01');

-- sum_delta does not fit a text column
\set VERBOSITY terse
CREATE TABLE sum_text (id int PRIMARY KEY, v text);
SELECT sync_resolve.track('sum_text', ARRAY['crm']);
-- must fail
SELECT sync_resolve.set_policy('sum_text', 'v', 'sum_delta');
\set VERBOSITY default
