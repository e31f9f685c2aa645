#!/usr/bin/env bash
#
# test/scripts/dump_restore.sh: pg_dump keeps what the DBA set up and the
# history.  A database with a tracked table, policies, a review item and
# history, and a tracked partitioned table, is dumped and restored into a new
# database with plain psql; the restore runs without an error, the policies,
# history and review queue are there, and the tables work at once: a shadow
# (a member of the extension, so not in the dump) is made again at first use,
# and each partition keeps its TRUNCATE trigger.
#
# Run by test/run.sh with SR_TEST_LIB pointing at test/lib.sh; exits 0 when
# every check holds.

set -euo pipefail
# shellcheck source=test/lib.sh
. "${SR_TEST_LIB:-$(dirname "$0")/../lib.sh}"
sr_install_traps

sr_cluster_start dump 55442 "${SR_TEST_SETTINGS[@]}"
sr_psql dump -q -c 'CREATE DATABASE origin' -c 'CREATE DATABASE copy'

sr_psql dump -q -d origin <<'SQL' >/dev/null
CREATE EXTENSION sync_resolve;
SELECT sync_resolve.add_system('crm', 50);
CREATE TABLE stock (id int PRIMARY KEY, name text, qty int);
SELECT sync_resolve.track('stock', ARRAY['crm'], 'latest');
SELECT sync_resolve.set_policy('stock', 'qty', 'sum_delta');
SELECT sync_resolve.set_policy('stock', 'name', 'review');
SELECT sync_resolve.apply('stock', 'crm', '{"id": 1, "name": "bolt", "qty": 10}');
UPDATE stock SET name = 'Bolt M6';
SELECT sync_resolve.apply('stock', 'crm', '{"id": 1, "name": "bolt m6"}');
-- a partitioned table, partitions two levels deep: each carries its own
-- TRUNCATE trigger, which the dump restores as it is
CREATE TABLE bin (id int PRIMARY KEY, label text) PARTITION BY RANGE (id);
CREATE TABLE bin_low PARTITION OF bin FOR VALUES FROM (0) TO (10);
CREATE TABLE bin_high PARTITION OF bin FOR VALUES FROM (10) TO (20) PARTITION BY RANGE (id);
CREATE TABLE bin_high_a PARTITION OF bin_high FOR VALUES FROM (10) TO (20);
SELECT sync_resolve.track('bin', ARRAY['crm'], 'latest');
SELECT sync_resolve.apply('bin', 'crm', '{"id": 1, "label": "low"}');
SELECT sync_resolve.apply('bin', 'crm', '{"id": 11, "label": "high"}');
SQL

dump=$(sr_cluster_dir dump)/origin.sql
sr_with_cluster dump pg_dump -d origin -f "$dump"
errors=$(sr_psql dump -q -d copy -f "$dump" 2>&1 >/dev/null | grep -c 'ERROR' || true)

fail=0
q() { sr_psql dump -qAt -d copy -c "$1"; }

sr_check "the restore ran without an error" "$errors" 0
sr_check "systems restored" "$(q "SELECT string_agg(name || ':' || priority, ',' ORDER BY name) FROM sync_resolve.system")" "crm:50,local:100"
sr_check "tracked tables restored" "$(q "SELECT string_agg(relid::text || ' ' || array_to_string(systems, ','), '; ' ORDER BY relid::text) FROM sync_resolve.tracked")" "bin crm; stock crm"
sr_check "policies restored" "$(q "SELECT string_agg(column_name || '=' || strategy, ',' ORDER BY column_name) FROM sync_resolve.column_policy")" "name=review,qty=sum_delta"
sr_check "history restored" "$(q "SELECT string_agg(kind, ',' ORDER BY id) FROM sync_resolve.event WHERE relid = 'stock'::regclass")" "inserted,conflict,review_opened"
sr_check "open review restored" "$(q "SELECT column_name || ' ' || status FROM sync_resolve.review")" "name open"
sr_check "local-write trigger restored" "$(q "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'stock'::regclass AND tgname = 'sync_resolve_after'")" 1
# the first use of a restored table is a local write: it makes the shadow
# (before, it tried to ALTER the table it was writing, and failed).  Even
# after ENABLE TRIGGER ALL, as a data-only restore with --disable-triggers
# runs it, left its triggers origin-only: the write goes through, with a
# WARNING, and the next ALTER TABLE makes them ALWAYS again
sr_check "before its first use, a restored table's shadow holds nothing" \
	"$(q "SELECT count(*) FROM sync_resolve.shadow('stock', '{\"id\": 1}')")" 0
q "ALTER TABLE stock DISABLE TRIGGER ALL" >/dev/null
q "ALTER TABLE stock ENABLE TRIGGER ALL" >/dev/null
sr_check "a local write is the first use" "$(q "INSERT INTO stock VALUES (3, 'washer', 7) RETURNING id" 2>/dev/null)" 3
q "ALTER TABLE stock ENABLE TRIGGER ALL" >/dev/null
sr_check "the next ALTER TABLE enables its triggers ALWAYS" \
	"$(q "SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'stock'::regclass AND tgname LIKE 'sync_resolve%'")" \
	"sync_resolve_after:A,sync_resolve_before:A,sync_resolve_truncate:A"
# a partition made before the table's first use gets its TRUNCATE trigger
q "CREATE TABLE bin_mid PARTITION OF bin FOR VALUES FROM (20) TO (30)" >/dev/null
sr_check "a partition made after the restore takes writes" "$(q "INSERT INTO bin VALUES (21, 'mid') RETURNING id")" 21
sr_check "the table works at once" "$(q "SELECT outcome FROM sync_resolve.apply('stock', 'crm', '{\"id\": 2, \"name\": \"nut\", \"qty\": 5}')")" "inserted"
sr_check "its shadow was made again" "$(q "SELECT count(*) FROM sync_resolve.shadow('stock', '{\"id\": 2}')")" 2
sr_check "new ids follow the restored ones" "$(q "SELECT count(DISTINCT id) = count(*) FROM sync_resolve.event")" t
sr_check "the review can be decided" "$(q "SELECT status FROM sync_resolve.resolve(1, 'keep_local')")" "resolved"
sr_check "every partition has its TRUNCATE trigger, once" \
	"$(q "SELECT string_agg(c.relname || ':' || t.tgenabled::text, ',' ORDER BY c.relname) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname = 'sync_resolve_truncate' AND c.relname LIKE 'bin%'")" \
	"bin:A,bin_high:A,bin_high_a:A,bin_low:A,bin_mid:A"
q "TRUNCATE bin_high_a" >/dev/null
sr_check "a partition's TRUNCATE is recorded after the restore" \
	"$(q "SELECT string_agg(k || ':' || coalesce(s.deleted_by, 'kept'), ',' ORDER BY k) FROM unnest(ARRAY[1, 11]) k, sync_resolve.shadow('bin', jsonb_build_object('id', k)) s WHERE s.system = 'local'")" \
	"11:local"

exit "$fail"
