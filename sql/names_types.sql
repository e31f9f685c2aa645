-- Awkward identifiers and types: table and column names with quotes,
-- spaces, capitals, keywords and non-ASCII; composite keys; values compared
-- by their type's equality (numeric scale, time zones, jsonb key order and
-- whitespace are no change); domains, enums, arrays; values over 2 kB that
-- PostgreSQL TOASTs; rows that existed before tracking; composite types
-- (key and columns, in arrays too) carried out and taken back as JSON.
\set ECHO none
\i sql/include/setup.psql
\i sql/include/masked.psql
\set ECHO all

CREATE SCHEMA "Sales ""EU""";
CREATE TABLE "Sales ""EU"""."Order Lines" (
	"Order" int,
	"línea" int,
	"select" text,
	"Qty ""units""" numeric(12,3),
	"größe" text,
	PRIMARY KEY ("Order", "línea")
);
SELECT sync_resolve.track('"Sales ""EU"""."Order Lines"', ARRAY['crm', 'billing'], 'latest');
SELECT sync_resolve.set_policy('"Sales ""EU"""."Order Lines"', 'Qty "units"', 'sum_delta');
SELECT sync_resolve.set_policy('"Sales ""EU"""."Order Lines"', 'größe', 'owner', owner => 'crm');

SELECT * FROM sync_resolve.apply('"Sales ""EU"""."Order Lines"', 'crm',
	'{"Order": 1, "línea": 1, "select": "yes", "Qty \"units\"": 10, "größe": "L"}', '2030-01-01');
UPDATE "Sales ""EU"""."Order Lines" SET "Qty ""units""" = 7;
SELECT outcome, applied FROM sync_resolve.apply('"Sales ""EU"""."Order Lines"', 'crm',
	'{"Order": 1, "línea": 1, "Qty \"units\"": 12.5, "größe": "XL"}', '2030-01-02');
SELECT * FROM "Sales ""EU"""."Order Lines";
SELECT kind, column_name, detail FROM sync_resolve.explain('"Sales ""EU"""."Order Lines"', '{"línea": 1, "Order": 1}');
-- a field with the wrong case is not a column
\set VERBOSITY terse
-- must fail
SELECT sync_resolve.apply('"Sales ""EU"""."Order Lines"', 'crm', '{"order": 1, "línea": 1}');
-- must fail: the key needs every primary-key column
SELECT sync_resolve.apply('"Sales ""EU"""."Order Lines"', 'crm', '{"Order": 1}');
\set VERBOSITY default

-- representation is not change: numeric scale, time zones, jsonb layout
CREATE TABLE measure (id int PRIMARY KEY, amount numeric, at timestamptz, doc jsonb, raw json, tags text[]);
SELECT sync_resolve.track('measure', ARRAY['crm', 'billing'], 'review');
SELECT outcome FROM sync_resolve.apply('measure', 'crm',
	'{"id": 1, "amount": 1.0, "at": "2030-01-01T12:00:00+00:00", "doc": {"a": 1, "b": [1, 2]}, "raw": {"x": 1, "y": 2}, "tags": ["a", "b"]}');
SELECT outcome, applied, queued FROM sync_resolve.apply('measure', 'crm',
	'{"id": 1, "amount": 1.00, "at": "2030-01-01T13:00:00+01:00", "doc": {"b": [1,2], "a": 1}, "raw": {"y": 2,   "x": 1}, "tags": ["a", "b"]}');
-- a local UPDATE that writes the same values records no change either
UPDATE measure SET amount = 1.000, at = '2030-01-01 07:00:00-05', doc = '{"b": [1, 2], "a": 1}';
SELECT (SELECT jsonb_object_agg(k, v -> 'by') FROM jsonb_each(changes) AS e(k, v)) AS writers
FROM sync_resolve.shadow('measure', '{"id": 1}') WHERE system = 'local';
-- but a real change is one
SELECT outcome, applied FROM sync_resolve.apply('measure', 'crm', '{"id": 1, "amount": 1.01}');

-- domains check their constraints; enums and arrays convert from JSON
CREATE DOMAIN percent AS integer CHECK (VALUE BETWEEN 0 AND 100);
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE survey (id uuid PRIMARY KEY, score percent, feeling mood, grid int[][], happened date);
SELECT sync_resolve.track('survey', ARRAY['crm']);
SELECT sync_resolve.set_policy('survey', 'score', 'max');
SELECT outcome FROM sync_resolve.apply('survey', 'crm',
	'{"id": "6f1c4f1e-7b2a-4c3e-9a55-2a8f4f0c9d11", "score": 40, "feeling": "ok", "grid": [[1, 2], [3, 4]], "happened": "2030-05-17"}');
SELECT * FROM survey;
\set VERBOSITY terse
-- must fail: the domain's check
SELECT sync_resolve.apply('survey', 'crm', '{"id": "6f1c4f1e-7b2a-4c3e-9a55-2a8f4f0c9d11", "score": 140}');
-- must fail: not a value of the enum
SELECT sync_resolve.apply('survey', 'crm', '{"id": "6f1c4f1e-7b2a-4c3e-9a55-2a8f4f0c9d11", "feeling": "furious"}');
\set VERBOSITY default
-- and the failed calls wrote nothing
SELECT count(*) FROM sync_resolve.event WHERE relid = 'survey'::regclass;

-- values over 2 kB are TOASTed in the table, the shadow and the history;
-- they compare by value, and explain() shortens them
CREATE TABLE doc (id int PRIMARY KEY, body text, meta jsonb);
SELECT sync_resolve.track('doc', ARRAY['crm', 'billing'], 'latest');
SELECT outcome FROM sync_resolve.apply('doc', 'crm',
	jsonb_build_object('id', 1, 'body', repeat('lorem ipsum ', 5000), 'meta', jsonb_build_object('pages', repeat('x', 3000))),
	'2030-01-01');
SELECT length(body), pg_column_size(body) < length(body) AS compressed FROM doc;
-- the same large values again: no change
SELECT outcome FROM sync_resolve.apply('doc', 'crm',
	jsonb_build_object('id', 1, 'body', repeat('lorem ipsum ', 5000), 'meta', jsonb_build_object('pages', repeat('x', 3000))),
	'2030-01-02');
-- a local edit at the end of the large value, and crm's edit at the start: latest wins
UPDATE doc SET body = body || 'local tail';
SELECT outcome, applied FROM sync_resolve.apply('doc', 'crm',
	jsonb_build_object('id', 1, 'body', 'crm head ' || repeat('lorem ipsum ', 5000)), '2999-01-01');
SELECT left(body, 20), length(body) FROM doc;
SELECT kind, pg_temp.masked(detail) FROM sync_resolve.explain('doc', '{"id": 1}') WHERE kind = 'conflict';

-- rows that existed before tracking have no base: the first image from a
-- system compares with the local row directly
CREATE TABLE legacy (id int PRIMARY KEY, name text, city text);
INSERT INTO legacy VALUES (1, 'Ann', 'Rome'), (2, 'Ben', 'Oslo');
SELECT sync_resolve.track('legacy', ARRAY['crm'], 'review');
SELECT system FROM sync_resolve.shadow('legacy', '{"id": 1}');
-- crm agrees on everything for Ann: unchanged, and now there is a base
SELECT outcome, applied, queued FROM sync_resolve.apply('legacy', 'crm', '{"id": 1, "name": "Ann", "city": "Rome"}');
SELECT system, base FROM sync_resolve.shadow('legacy', '{"id": 1}');
-- crm says Ben lives in Bergen: without a base that is a conflict
SELECT outcome, applied, queued FROM sync_resolve.apply('legacy', 'crm', '{"id": 2, "name": "Ben", "city": "Bergen"}');
SELECT column_name, local_value, incoming_value, base_value FROM sync_resolve.review WHERE relid = 'legacy'::regclass;

-- sync_resolve's own statements do not follow the caller's search_path: an
-- operator of the caller's schema named like a built-in one is not used
CREATE SCHEMA evil;
CREATE FUNCTION evil.always(text, text) RETURNS boolean LANGUAGE sql RETURN true;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.always);
UPDATE legacy SET name = 'Benny' WHERE id = 2;
SET search_path = evil, pg_catalog, public;
-- a conflict on name opens a second review item for the row (ON CONFLICT
-- on the open items' index would not match with evil's operator)
SELECT outcome, queued FROM sync_resolve.apply('legacy', 'crm', '{"id": 2, "name": "Benjamin"}');
SELECT column_name, status FROM sync_resolve.review WHERE relid = 'legacy'::regclass ORDER BY id;
SELECT kind, column_name FROM sync_resolve.explain('legacy', '{"id": 2}');
RESET search_path;

-- A value carried as JSON (in the outbox, the history, keys) is what
-- to_jsonb() makes of it: numbers as numbers with their scale, integers at
-- their limits, numerics that are no JSON number (NaN, Infinity) as
-- strings, text with quotes, escapes and non-ASCII, booleans, jsonb as it
-- is, domains as their base type, and the types without a shortcut of
-- their own (float, timestamptz, arrays, char(n)) through to_jsonb() itself.
CREATE DOMAIN small_count AS smallint CHECK (VALUE >= 0);
CREATE TABLE carried (
	id bigint PRIMARY KEY,
	i2 smallint, i4 int, cnt small_count, n numeric, t text, v varchar(20),
	b boolean, j jsonb, f float8, ts timestamptz, a int[], ch char(4)
);
SELECT sync_resolve.track('carried', ARRAY['crm'], 'latest');
-- new rows, each queued for crm whole
INSERT INTO carried VALUES
	(-9223372036854775808, -32768, -2147483648, 0, 1.50, 'say "hi"\', 'tab	here', true,
	 '{"b": [1, 2.50], "a": null}', 1.5, '2030-01-01 12:00+02', '{1,NULL,3}', 'ab'),
	(9223372036854775807, 32767, 2147483647, 32767, 'NaN', E'line\nbreak \u00e9\u4e2d', '', false,
	 '"just a string"', 'Infinity', '-infinity', '{}', ''),
	(0, 0, 0, 1, '-Infinity', '', 'ünïcode', NULL, 'null', -0.0, NULL, NULL, NULL),
	(1, NULL, NULL, NULL, 0.000000000000000000001, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(2, 1, 1, 1, 'Infinity', repeat('long ', 1000), 'x', true, '[]', 1e300, '2030-06-01 00:00:00.123456+00', '{{1,2},{3,4}}', 'abcd'),
	(3, 1, 1, 1, 123456789012345678901234567890.123456789, 'x', 'x', true, '{}', 0.1, '1999-12-31 23:59:59+00', '{7}', 'x');
-- each entry's payload against to_jsonb() of the row: same JSON text, also
-- for the key; and every column is in the payload
SELECT count(*) AS entries,
	   count(*) FILTER (WHERE o.payload::text = (to_jsonb(c) - 'id')::text) AS payload_as_to_jsonb,
	   count(*) FILTER (WHERE o.key::text = jsonb_build_object('id', c.id)::text) AS key_as_to_jsonb
FROM sync_resolve.outbox o JOIN carried c ON o.key = jsonb_build_object('id', c.id)
WHERE o.relid = 'carried'::regclass;
SELECT o.key, o.payload - 't' AS payload FROM sync_resolve.outbox o
WHERE o.relid = 'carried'::regclass ORDER BY (o.key ->> 'id')::numeric;

-- Composite types go out as to_jsonb() writes them, JSON objects, and come
-- back the same way: a composite key, a composite column with an array in
-- it, an array of composites, quotes and backslashes and commas in text
-- (before, apply() took only the record literal '(1,x)' and refused the
-- object it had itself sent)
CREATE TYPE place_ref AS (region int, code text);
CREATE TYPE address AS (street text, zip int, tags text[]);
CREATE TABLE site (id place_ref PRIMARY KEY, addr address, past address[]);
SELECT sync_resolve.track('site', ARRAY['crm'], 'latest');
INSERT INTO site VALUES (ROW(1, 'a "b", c\'), ROW('1 "Main", St\', 75, ARRAY['x,y', 'NULL', NULL]),
	ARRAY[ROW('old', 1, NULL)::address, NULL]);
SELECT key, payload FROM sync_resolve.outbox WHERE relid = 'site'::regclass \gset sent_
SELECT :'sent_key' AS key, :'sent_payload' AS payload;
-- crm changes the street and sends back the key and payload it was given
UPDATE site SET addr = NULL, past = NULL;
SELECT outcome, applied FROM sync_resolve.apply('site', 'crm',
	:'sent_key'::jsonb || jsonb_set(:'sent_payload'::jsonb, '{addr,street}', '"2 Side St"'));
SELECT id, addr, past FROM site;
SELECT (addr).tags[2] = 'NULL' AS text_null_kept, (addr).tags[3] IS NULL AS null_kept,
	   (id).code = 'a "b", c\' AS key_text_kept FROM site;
-- a field of the wrong type names the column; a field the type lacks is
-- left out, as jsonb_populate_record() leaves it
SELECT sync_resolve.apply('site', 'crm', '{"id": {"region": 2, "code": "z"}, "addr": {"zip": "ten"}}');
SELECT outcome FROM sync_resolve.apply('site', 'crm', '{"id": {"region": 2, "code": "z"}, "addr": {"zip": 10, "floor": 3}}');
SELECT addr FROM site WHERE (id).region = 2;
-- json and jsonb inside a composite, a json column and a domain over jsonb
-- take a JSON string as a JSON string
CREATE TYPE tagged AS (label text, meta jsonb);
CREATE DOMAIN doc_json AS jsonb CHECK (VALUE IS NOT NULL);
CREATE TABLE labelled (id int PRIMARY KEY, t tagged, j json, d doc_json);
SELECT sync_resolve.track('labelled', ARRAY['crm'], 'latest');
SELECT outcome FROM sync_resolve.apply('labelled', 'crm',
	'{"id": 1, "t": {"label": "a", "meta": "just text"}, "j": "hello", "d": "there"}');
SELECT t, j, d, (t).meta = '"just text"'::jsonb AS meta_is_string FROM labelled;
DROP TABLE site, labelled;
DROP TYPE address, place_ref, tagged;
DROP DOMAIN doc_json;
