#!/usr/bin/env bash
#
# test/scripts/replication_three_nodes.sh: three PostgreSQL 15 nodes in a full mesh
# of built-in logical replication (each subscribes to the other two), sync_resolve
# on each deciding what the apply workers write (DESIGN sections 5-7).  PostgreSQL
# 15 has no origin filter, so every change also comes back, and reaches each node
# a second time through the third one.  This proves that the three nodes converge
# and that nothing loops:
#   - rows inserted on each node reach the other two; the tables end identical;
#   - conflicting updates of a row made on all three while every subscription is
#     disabled (notes made over a second apart, qty - 1, - 2 and - 4; on another
#     row in another order) converge once they are re-enabled: the latest note,
#     and qty less all three decrements;
#   - five changes to one row in flight on the three nodes at once: each counts
#     once, although each reaches every node by two ways and comes back twice;
#   - once quiet, no node writes WAL any more: no replication loop;
#   - a DELETE on B reaches A and C and does not come back as a re-insert;
#   - every apply worker still runs, and no server logged an ERROR.
# When a check fails, the history and shadow of the row involved are printed.
#
# Run by test/run.sh with SR_TEST_LIB pointing at test/lib.sh; exits 0 when
# every check holds.

set -euo pipefail
# shellcheck source=test/lib.sh
. "${SR_TEST_LIB:-$(dirname "$0")/../lib.sh}"
# shellcheck source=test/scripts/replication.bash
. "$(dirname "$0")/replication.bash"
sr_install_traps

rep_start_node a 55445
rep_start_node b 55446
rep_start_node c 55447
rep_setup_mesh
check_workers "every node has an apply worker for each of its two subscriptions"

# --- inserts travel everywhere -----------------------------------------------------------
q a "INSERT INTO item VALUES (1, 'one', 10), (2, 'two', 20)"
q b "INSERT INTO item VALUES (11, 'eleven', 110), (12, 'twelve', 120)"
q c "INSERT INTO item VALUES (21, 'twenty-one', 210)"
for node in a b c; do
	wait_until "every row reaches $node" "$node" "SELECT count(*) = 5 FROM item" &&
		echo "ok - the rows inserted on the three nodes reach $node"
done
if wait_same_tables "the inserts converge"; then
	wait_wal_quiet "quiet after the inserts" || true
fi
sr_check "A holds every row" "$(rows a)" \
	"1|one|10;2|two|20;11|eleven|110;12|twelve|120;21|twenty-one|210"
check_tables_same "the three nodes hold the same rows after the inserts"

# --- concurrent updates of one row on all three nodes ------------------------------------
# Row 1 is changed on A, then B, then C; row 11 on C, then A, then B.  Row 12 gets
# several changes in flight on every node at once: A - 1 and - 2, B - 4, C - 8 and
# - 16.  Each change reaches a node directly and again through the third node, and
# comes back to the node that made it from both others.
set_subscriptions disable
q a "UPDATE item SET note = 'from A', qty = qty - 1 WHERE id = 1"
q c "UPDATE item SET note = 'eleven from C', qty = qty - 1 WHERE id = 11"
sleep 1.2 # the latest-wins order must be clear: over a second apart
q b "UPDATE item SET note = 'from B', qty = qty - 2 WHERE id = 1"
q a "UPDATE item SET note = 'eleven from A', qty = qty - 2 WHERE id = 11"
sleep 1.2
q c "UPDATE item SET note = 'from C', qty = qty - 4 WHERE id = 1"
q b "UPDATE item SET note = 'eleven from B', qty = qty - 4 WHERE id = 11"
q a "UPDATE item SET qty = qty - 1 WHERE id = 12"
q a "UPDATE item SET qty = qty - 2 WHERE id = 12"
q b "UPDATE item SET qty = qty - 4 WHERE id = 12"
q c "UPDATE item SET qty = qty - 8 WHERE id = 12"
q c "UPDATE item SET qty = qty - 16 WHERE id = 12"
set_subscriptions enable
if wait_same_tables "the conflicting updates converge"; then
	wait_wal_quiet "quiet after the conflict" || true
fi
for node in a b c; do
	sr_check "row 1 on $node: C's note (the latest), all three decrements" \
		"$(q "$node" "SELECT note || '|' || qty FROM item WHERE id = 1")" "from C|3"
	sr_check "row 11 on $node: B's note (the latest), all three decrements" \
		"$(q "$node" "SELECT note || '|' || qty FROM item WHERE id = 11")" "eleven from B|103"
	sr_check "row 12 on $node: five changes in flight, each counted once" \
		"$(q "$node" "SELECT qty FROM item WHERE id = 12")" 89
done
check_tables_same "the three nodes hold the same rows after the conflict"

# --- no loop -----------------------------------------------------------------------------
check_wal_quiet "no replication loop: the WAL of the three nodes stays put once quiet"

# --- a delete reaches everyone and stays deleted -----------------------------------------
q b "DELETE FROM item WHERE id = 2"
for node in a c; do
	wait_until "a DELETE on B reaches $node" "$node" "SELECT NOT EXISTS (SELECT FROM item WHERE id = 2)" &&
		echo "ok - a DELETE on B reaches $node"
done
wait_wal_quiet "quiet after the delete" || true
for node in a b c; do
	sr_check "the deleted row does not come back on $node" "$(q "$node" "SELECT count(*) FROM item WHERE id = 2")" 0
done
check_tables_same "the three nodes hold the same rows after the delete"
check_wal_quiet "no replication loop after the delete"

# --- the workers survived ----------------------------------------------------------------
check_workers "every apply worker still runs"
check_no_apply_errors "no ERROR in the server log"

[ "$fail" = 0 ] || rep_diagnose 1 11 12
exit "$fail"
