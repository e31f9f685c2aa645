--
-- vclock: the sync_resolve.vclock version-vector type (DESIGN 10).
--
-- Proves that the text form is read in any order, spacing and quoting and
-- written back in one canonical form; that =, <>, <, <=, >, >= and ||
-- (concurrent) and vclock_compare agree on equal, before, after and
-- concurrent pairs, happened-before being a partial order; that
-- vclock_merge is the pointwise maximum; that vclock_tick advances one
-- counter and takes a NULL vector for {}; that vclock_get reads a counter;
-- that the jsonb casts go both ways; that the binary form survives a COPY
-- (FORMAT binary) round trip; and that every malformed input, text, jsonb
-- or binary, is a clean error.
--
SET search_path = sync_resolve, public;

--
-- Text form: canonical output
--
SELECT id, input, input::vclock AS canonical,
       input::vclock::text::vclock = input::vclock AS round_trip
FROM (VALUES
    (1, '{}'),
    (2, E' {\t} '),
    (3, '{crm:6,local:11}'),
    (4, '{local:11,crm:6}'),
    (5, E'{\n  local : 11 ,\tcrm:6\n}'),
    (6, '{crm:0,local:11}'),
    (7, '{a:0,b:0}'),
    (8, '{crm:006}'),
    (9, '{"crm":6}'),
    (10, '{"two words":1,"a:b":2,"say \"hi\"":3,"back\\slash":4}'),
    (11, '{"ü":5,",":6,"{}":7}'),
    (12, '{b:1,B:2,a.b:3,a-b:4,a_b:5,9:6}'),
    (13, '{a:9223372036854775807}')
) AS t(id, input)
ORDER BY id;

-- equal vectors are equal whatever their spelling
SELECT '{b:1,a:2}'::vclock = '{ "a" : 2, b:1, c:0 }'::vclock AS same;

-- a 63-byte name is the longest allowed
SELECT length(('{' || repeat('n', 63) || ':1}')::vclock::text) AS len;

--
-- Comparison: every operator on every kind of pair
--
CREATE TEMP TABLE pairs (id int, a vclock, b vclock, what text);
INSERT INTO pairs VALUES
    (1, '{crm:6,local:11}', '{crm:6,local:11}', 'same counters'),
    (2, '{}', '{}', 'both empty'),
    (3, '{crm:6,local:11}', '{crm:7,local:11}', 'b saw one more crm change'),
    (4, '{crm:6}', '{crm:6,local:1}', 'b saw a system a never saw'),
    (5, '{}', '{crm:1}', 'empty before anything'),
    (6, '{crm:7,local:11}', '{crm:6,local:11}', 'a saw one more crm change'),
    (7, '{crm:9,erp:2,local:11}', '{crm:9,local:11}', 'a saw a system b never saw'),
    (8, '{crm:7,local:10}', '{crm:6,local:11}', 'each saw a change the other missed'),
    (9, '{crm:1}', '{local:1}', 'disjoint systems');

SELECT id, a, b, vclock_compare(a, b) AS compare,
       a = b AS eq, a <> b AS ne, a < b AS lt, a <= b AS le,
       a > b AS gt, a >= b AS ge, a || b AS conc
FROM pairs
ORDER BY id;

-- swapping the arguments swaps before and after and keeps the rest
SELECT id, vclock_compare(b, a) AS reversed,
       (a < b) = (b > a) AND (a <= b) = (b >= a) AS commutes,
       (a || b) = (b || a) AS conc_symmetric
FROM pairs
ORDER BY id;

-- the operators can be named schema-qualified, as code must when
-- sync_resolve is not on its search_path
SELECT '{a:1}'::sync_resolve.vclock OPERATOR(sync_resolve.<)
       '{a:2}'::sync_resolve.vclock AS qualified_lt;

-- NULL in, NULL out
SELECT '{a:1}'::vclock = NULL AS eq_null,
       vclock_compare('{a:1}', NULL) AS compare_null;

--
-- Merge: the pointwise maximum
--
SELECT id, a, b, vclock_merge(a, b) AS merged,
       vclock_merge(b, a) = vclock_merge(a, b) AS symmetric,
       a <= vclock_merge(a, b) AND b <= vclock_merge(a, b) AS upper_bound
FROM pairs
ORDER BY id;

-- strict: a NULL argument gives NULL
SELECT vclock_merge('{a:1}', NULL) IS NULL AS merge_null;

--
-- Tick: advance one system's counter
--
SELECT vclock_tick(NULL, 'crm') AS from_null,
       vclock_tick('{}', 'crm') AS from_empty,
       vclock_tick('{crm:6,local:11}', 'local') AS existing,
       vclock_tick('{crm:6,local:11}', 'erp') AS new_in_middle,
       vclock_tick('{crm:6,local:11}', 'zendesk') AS new_at_end,
       vclock_tick('{crm:6,local:11}', 'billing') AS new_at_start;
SELECT vclock_tick('{a:127}', 'a') AS a128,
       vclock_tick('{crm:6}', 'two words') AS quoted,
       vclock_tick('{crm:6}', 'crm') > '{crm:6}' AS advances,
       vclock_tick('{a:9223372036854775806}', 'a') AS largest;

--
-- Get: one system's counter, 0 when absent
--
SELECT vclock_get('{crm:6,local:11}', 'crm') AS crm,
       vclock_get('{crm:6,local:11}', 'local') AS local,
       vclock_get('{crm:6,local:11}', 'erp') AS erp,
       vclock_get('{}', 'crm') AS empty,
       vclock_get('{"two words":3}', 'two words') AS quoted,
       vclock_get('{crm:6}', NULL) IS NULL AS null_system;

--
-- jsonb casts
--
SELECT '{crm:6,local:11}'::vclock::jsonb AS obj,
       '{}'::vclock::jsonb AS empty,
       '{"two words":1,"say \"hi\"":2}'::vclock::jsonb AS quoted;
SELECT '{"crm": 6, "local": 11}'::jsonb::vclock AS plain,
       '{}'::jsonb::vclock AS empty,
       '{"crm": 0, "erp": 2.0, "two words": 1, "big": 9223372036854775807}'::jsonb::vclock AS mixed,
       NULL::jsonb::vclock AS null_in;
SELECT id, a::jsonb::vclock = a AND b::jsonb::vclock = b AS round_trip
FROM pairs
ORDER BY id;

--
-- A large vector is stored compressed and read back whole
--
CREATE TEMP TABLE big (v vclock);
INSERT INTO big
SELECT ('{' || string_agg('s' || i || ':' || i, ',') || '}')::vclock
FROM generate_series(1, 5000) AS i;
SELECT vclock_get(v, 's1') AS s1, vclock_get(v, 's4999') AS s4999,
       (SELECT count(*) FROM jsonb_object_keys(v::jsonb)) AS entries,
       v = v::text::vclock AS round_trip,
       vclock_tick(v, 's5001') > v AS tick
FROM big;

--
-- Binary form: int4 count, then per entry int4 length, name, int8 counter
--
SELECT vclock_send('{}') AS empty,
       vclock_send('{crm:6,local:11}') AS two;

-- round trip through COPY (FORMAT binary) and a server-side file
SELECT '/tmp/sync_resolve_vclock_' || pg_backend_pid() || '.copy' AS binfile \gset
CREATE TEMP TABLE bin (id int, v vclock);
COPY (SELECT id, a FROM pairs
      UNION ALL
      SELECT 100, '{"two words":1,"say \"hi\"":2,"ü":3}'
      UNION ALL
      SELECT 101, '{a:9223372036854775807}')
    TO :'binfile' (FORMAT binary);
COPY bin FROM :'binfile' (FORMAT binary);
SELECT b.id, b.v, b.v = coalesce(p.a, s.v::vclock) AS same
FROM bin AS b
LEFT JOIN pairs AS p USING (id)
LEFT JOIN (VALUES (100, '{"two words":1,"say \"hi\"":2,"ü":3}'),
                  (101, '{a:9223372036854775807}')) AS s(id, v) USING (id)
ORDER BY b.id;

-- hand-made binary data: a one-column COPY file whose field holds the bytes
-- of a bytea, read back as a vclock
CREATE TEMP TABLE bin1 (v vclock);
-- entries out of order and a zero counter: stored canonical
COPY (SELECT '\x00000003000000016200000000000000020000000163000000000000000000000001610000000000000001'::bytea)
    TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
SELECT v FROM bin1;

\set VERBOSITY terse
-- must fail: negative entry count
COPY (SELECT '\xffffffff'::bytea) TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
-- must fail: more entries than the data holds
COPY (SELECT '\x00000005'::bytea) TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
-- must fail: the same system twice
COPY (SELECT '\x000000020000000161000000000000000100000001610000000000000002'::bytea)
    TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
-- must fail: a negative counter
COPY (SELECT '\x000000010000000161ffffffffffffffff'::bytea) TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
-- must fail: an empty name
COPY (SELECT '\x00000001000000000000000000000001'::bytea) TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
-- must fail: a control character in a name
COPY (SELECT '\x0000000100000001070000000000000001'::bytea) TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
-- must fail: a 64-byte name
COPY (SELECT '\x0000000100000040'::bytea || decode(repeat('6e', 64), 'hex')
             || '\x0000000000000001'::bytea)
    TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
-- must fail: a name longer than the data left
COPY (SELECT '\x00000001000000106162636465666768696a6b6c'::bytea) TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
-- must fail: bytes left over after the last entry
COPY (SELECT '\x00000000ff'::bytea) TO :'binfile' (FORMAT binary);
COPY bin1 FROM :'binfile' (FORMAT binary);
\set VERBOSITY default

-- remove the file (the server wrote it, so the server removes it)
\set rmcmd 'rm -f ' :binfile
COPY (SELECT 1 WHERE false) TO PROGRAM :'rmcmd';

--
-- Errors
--

-- must fail: empty input
SELECT ''::vclock;
-- must fail: no braces
SELECT 'crm:6'::vclock;
-- must fail: unterminated vector
SELECT '{'::vclock;
-- must fail: unterminated after an entry
SELECT '{crm:6'::vclock;
-- must fail: missing counter
SELECT '{crm:}'::vclock;
-- must fail: missing colon
SELECT '{crm 6}'::vclock;
-- must fail: missing name
SELECT '{:6}'::vclock;
-- must fail: trailing comma
SELECT '{crm:6,}'::vclock;
-- must fail: missing comma
SELECT '{crm:6 local:11}'::vclock;
-- must fail: negative counter
SELECT '{crm:-1}'::vclock;
-- must fail: signed counter
SELECT '{crm:+1}'::vclock;
-- must fail: fractional counter
SELECT '{crm:1.5}'::vclock;
SELECT '{crm:1e3}'::vclock;
-- must fail: counter beyond bigint
SELECT '{crm:9223372036854775808}'::vclock;
SELECT '{crm:99999999999999999999}'::vclock;
-- must fail: the same system twice
SELECT '{crm:1,local:2,crm:3}'::vclock;
SELECT '{crm:1,"crm":0}'::vclock;
-- must fail: characters that need quotes
SELECT '{two words:1}'::vclock;
SELECT '{ü:1}'::vclock;
-- must fail: unterminated quoted name
SELECT '{"unterminated'::vclock;
SELECT '{"crm\"'::vclock;
-- must fail: unknown escape
SELECT '{"a\n":1}'::vclock;
-- must fail: control character in a quoted name
SELECT E'{"a\tb":1}'::vclock;
-- must fail: empty quoted name
SELECT '{"":1}'::vclock;
-- must fail: a 64-byte name, bare and quoted
SELECT ('{' || repeat('n', 64) || ':1}')::vclock;
SELECT ('{"' || repeat('n', 64) || '":1}')::vclock;
-- must fail: anything after the closing brace
SELECT '{crm:6} x'::vclock;
SELECT '{}{}'::vclock;

-- must fail: tick of a NULL system
SELECT vclock_tick('{crm:6}', NULL);
-- must fail: tick of an empty name
SELECT vclock_tick('{crm:6}', '');
-- must fail: tick of a name that is too long
SELECT vclock_tick('{crm:6}', repeat('n', 64));
-- must fail: tick of a name with a control character
SELECT vclock_tick('{crm:6}', E'a\nb');
-- must fail: tick past the largest counter
SELECT vclock_tick('{a:9223372036854775807}', 'a');

-- must fail: jsonb that is not an object
SELECT '[1, 2]'::jsonb::vclock;
SELECT '"{crm:6}"'::jsonb::vclock;
SELECT '6'::jsonb::vclock;
SELECT 'null'::jsonb::vclock;
-- must fail: jsonb counters that are not non-negative integers
SELECT '{"crm": -1}'::jsonb::vclock;
SELECT '{"crm": 1.5}'::jsonb::vclock;
SELECT '{"crm": "6"}'::jsonb::vclock;
SELECT '{"crm": null}'::jsonb::vclock;
SELECT '{"crm": true}'::jsonb::vclock;
SELECT '{"crm": {"n": 6}}'::jsonb::vclock;
SELECT '{"crm": 9223372036854775808}'::jsonb::vclock;
-- must fail: jsonb keys that are not system names
SELECT '{"": 1}'::jsonb::vclock;
SELECT jsonb_build_object(repeat('n', 64), 1)::vclock;
