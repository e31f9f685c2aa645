#!/usr/bin/env bash
#
# test/scripts/replication_two_nodes.sh: two PostgreSQL 15 nodes replicating one
# table both ways with built-in logical replication, sync_resolve on each deciding
# what the other node's apply worker writes (DESIGN sections 5-7).  PostgreSQL 15
# has no origin filter, so every change comes back to the node that made it; this
# proves that sync_resolve stops the loop and that the nodes converge:
#   - rows inserted on either node reach the other; the tables end identical;
#   - conflicting updates made while both subscriptions are disabled (A: note and
#     qty - 1; B, later: note and qty - 2; and on another row B first, A later)
#     converge once they are re-enabled: the later note (latest, by the commit time
#     on the node that made it) and both decrements (sum_delta);
#   - three changes on A and one on B, all in flight at once: each counts once,
#     although B sends each of A's back merged with its own;
#   - once quiet, neither node writes WAL any more: no replication loop;
#   - a DELETE on A reaches B and does not come back as a re-insert;
#   - one-sided updates of a row, first on A then on B, reach the other node
#     exactly, and leave no loop behind;
#   - one way only (A to B, table member with a UNIQUE email), transactions that
#     are valid as a whole but not statement by statement: an email moved to a
#     new row reaches B; two emails swapped wait in B's review queue; an UPDATE
#     followed by TRUNCATE in one transaction leaves nothing behind but a
#     tombstone per row, naming A.  None of
#     these stops the stream;
#   - every apply worker still runs, and no server logged an ERROR.
# When a check fails, the history and shadow of the rows involved are printed.
#
# Run by test/run.sh with SR_TEST_LIB pointing at test/lib.sh; exits 0 when
# every check holds.

set -euo pipefail
# shellcheck source=test/lib.sh
. "${SR_TEST_LIB:-$(dirname "$0")/../lib.sh}"
# shellcheck source=test/scripts/replication.bash
. "$(dirname "$0")/replication.bash"
sr_install_traps

rep_start_node a 55443
rep_start_node b 55444
rep_setup_mesh
check_workers "both subscriptions have an apply worker"

# --- inserts travel both ways -----------------------------------------------------------
q a "INSERT INTO item VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 30)"
q b "INSERT INTO item VALUES (11, 'eleven', 110), (12, 'twelve', 120)"
wait_until "rows inserted on A reach B" b "SELECT count(*) = 3 FROM item WHERE id < 10" &&
	echo "ok - rows inserted on A reach B"
wait_until "rows inserted on B reach A" a "SELECT count(*) = 2 FROM item WHERE id > 10" &&
	echo "ok - rows inserted on B reach A"
if wait_same_tables "the inserts converge"; then
	wait_wal_quiet "quiet after the inserts" || true
fi
sr_check "A holds every row" "$(rows a)" "1|one|10;2|two|20;3|three|30;11|eleven|110;12|twelve|120"
check_tables_same "both nodes hold the same rows after the inserts"

# --- concurrent updates of one row, made while the nodes cannot see each other ----------
# Row 1: A first, B over a second later.  Row 11: B first, A later.  Whichever node
# wrote last wins the note on both nodes (the time of a change is its commit time on
# the node that made it, not when it arrived); every decrement counts once.
set_subscriptions disable
q a "UPDATE item SET note = 'from A', qty = qty - 1 WHERE id = 1"
sleep 1.2 # the latest-wins winner must be clear: over a second apart
q b "UPDATE item SET note = 'from B', qty = qty - 2 WHERE id = 1"
q b "UPDATE item SET note = 'eleven from B', qty = qty - 3 WHERE id = 11"
sleep 1.2
q a "UPDATE item SET note = 'eleven from A', qty = qty - 5 WHERE id = 11"
set_subscriptions enable
if wait_same_tables "the conflicting updates converge"; then
	wait_wal_quiet "quiet after the conflict" || true
fi
sr_check "conflict on A: the later note, both decrements" "$(q a "SELECT note || '|' || qty FROM item WHERE id = 1")" "from B|7"
sr_check "conflict on B: the later note, both decrements" "$(q b "SELECT note || '|' || qty FROM item WHERE id = 1")" "from B|7"
sr_check "A wrote row 11 last: its note wins on A, both decrements" "$(q a "SELECT note || '|' || qty FROM item WHERE id = 11")" "eleven from A|102"
sr_check "A wrote row 11 last: its note wins on B, both decrements" "$(q b "SELECT note || '|' || qty FROM item WHERE id = 11")" "eleven from A|102"
check_tables_same "both nodes hold the same rows after the conflict"

# --- several changes in flight at once ---------------------------------------------------
# A makes three separate changes to row 12 and B one, before either sees the other's.
# B's copy of each of A's changes comes back to A (PostgreSQL 15 sends everything on),
# after B merged them with its own; A must know them for its own, or it counts them
# again.  120 - 1 - 2 - 4 - 8 = 105 on both nodes.
set_subscriptions disable
q a "UPDATE item SET qty = qty - 1 WHERE id = 12"
q a "UPDATE item SET qty = qty - 2 WHERE id = 12"
q a "UPDATE item SET qty = qty - 4 WHERE id = 12"
q b "UPDATE item SET qty = qty - 8 WHERE id = 12"
set_subscriptions enable
if wait_same_tables "the changes in flight converge"; then
	wait_wal_quiet "quiet after the changes in flight" || true
fi
sr_check "changes in flight on A: each decrement once" "$(q a "SELECT qty FROM item WHERE id = 12")" 105
sr_check "changes in flight on B: each decrement once" "$(q b "SELECT qty FROM item WHERE id = 12")" 105
check_tables_same "both nodes hold the same rows after the changes in flight"

# --- no loop -----------------------------------------------------------------------------
check_wal_quiet "no replication loop: the WAL of both nodes stays put once quiet"

# --- a delete reaches B and stays deleted ------------------------------------------------
q a "DELETE FROM item WHERE id = 2"
if wait_until "a DELETE on A reaches B" b "SELECT NOT EXISTS (SELECT FROM item WHERE id = 2)"; then
	echo "ok - a DELETE on A reaches B"
	wait_wal_quiet "quiet after the delete" || true
fi
sr_check "the deleted row does not come back on A" "$(q a "SELECT count(*) FROM item WHERE id = 2")" 0
sr_check "the deleted row does not come back on B" "$(q b "SELECT count(*) FROM item WHERE id = 2")" 0
check_tables_same "both nodes hold the same rows after the delete"
check_wal_quiet "no replication loop after the delete"

# --- one-sided updates, one node after the other -----------------------------------------
# No conflict at all: A changes row 3, B takes it; then B changes it, A takes it.  Each
# node's base for the other must follow what the other holds, including the change
# that came back unchanged from it: otherwise B's change looks like a conflict to A.
q a "UPDATE item SET note = 'three from A', qty = qty - 4 WHERE id = 3"
if wait_until "A's update of row 3 reaches B" b "SELECT qty = 26 FROM item WHERE id = 3"; then
	wait_wal_quiet "quiet after A's update of row 3" || true
fi
q b "UPDATE item SET note = 'three from B', qty = qty - 6 WHERE id = 3"
if wait_until "B's update of row 3 reaches A" a "SELECT qty <> 26 FROM item WHERE id = 3" &&
	wait_same_tables "row 3 converges"; then
	wait_wal_quiet "quiet after B's update of row 3" || true
fi
sr_check "row 3 on A after A's then B's update" "$(q a "SELECT note || '|' || qty FROM item WHERE id = 3")" "three from B|20"
sr_check "row 3 on B after A's then B's update" "$(q b "SELECT note || '|' || qty FROM item WHERE id = 3")" "three from B|20"
check_tables_same "both nodes hold the same rows after the one-sided updates"
check_wal_quiet "no replication loop after the one-sided updates"

# --- one transaction, valid only as a whole ---------------------------------------------
# member flows from A to B only (TRUNCATE would loop between two PostgreSQL 15 nodes:
# README, "PostgreSQL nodes").  B's worker holds each image until commit and writes
# them there in order, retrying one that hit a unique key after the others.
member_rows()
{
	q "$1" "SELECT coalesce(string_agg(id || '|' || email, ';' ORDER BY id), '') FROM member"
}
for node in a b; do
	q "$node" "CREATE TABLE member (id int PRIMARY KEY, email text NOT NULL UNIQUE)"
done
q a "CREATE PUBLICATION pub_member FOR TABLE member"
q b "SELECT sync_resolve.track('member', ARRAY['node_a'])" >/dev/null
q b "ALTER SUBSCRIPTION sub_from_a SET PUBLICATION pub_item, pub_member"
q a "INSERT INTO member VALUES (1, 'old@example.com')"
wait_until "member 1 reaches B" b "SELECT count(*) = 1 FROM member" || true
q a "BEGIN; UPDATE member SET email = 'new@example.com' WHERE id = 1;
	INSERT INTO member VALUES (2, 'old@example.com'); COMMIT"
wait_until "an email moved to a new row reaches B" b "SELECT count(*) = 2 FROM member" || true
sr_check "an email moved to a new row in one transaction: B as A" "$(member_rows b)" "$(member_rows a)"
# A swap: no order of whole rows writes it (each row's final email is the other's
# until both moved; A's intermediate value is merged away), so B holds both for a
# person instead of stopping the stream.
q a "BEGIN; UPDATE member SET email = 'swap' WHERE id = 1;
	UPDATE member SET email = 'new@example.com' WHERE id = 2;
	UPDATE member SET email = 'old@example.com' WHERE id = 1; COMMIT"
wait_until "a swap of two emails is held for review on B" b "SELECT count(*) = 2 FROM sync_resolve.review" || true
sr_check "a swap of two emails: B keeps its rows until a person decides" "$(member_rows b)" "1|new@example.com;2|old@example.com"
sr_check "a swap of two emails: both rows wait in review, the whole change each" \
	"$(q b "SELECT string_agg(format('%s %s %s', key, coalesce(column_name, 'row'), incoming_value), '; ' ORDER BY key::text) FROM sync_resolve.review")" \
	'{"id": 1} row {"email": "old@example.com"}; {"id": 2} row {"email": "new@example.com"}'
q a "BEGIN; UPDATE member SET email = 'gone@example.com' WHERE id = 2; TRUNCATE member; COMMIT"
q a "INSERT INTO member VALUES (3, 'after@example.com')"
wait_until "the TRUNCATE and the row after it reach B" b "SELECT count(*) = 1 FROM member" || true
sr_check "an UPDATE then TRUNCATE in one transaction: the held image dies with the rows" \
	"$(member_rows b)" "3|after@example.com"
sr_check "the TRUNCATE from A leaves on B a tombstone per row, naming node_a" \
	"$(q b "SELECT string_agg(k || ':' || coalesce(s.deleted_by, 'none'), ',' ORDER BY k)
		FROM generate_series(1, 2) k, sync_resolve.shadow('member', jsonb_build_object('id', k)) s
		WHERE s.system = 'local'")" "1:node_a,2:node_a"

# --- the workers survived ----------------------------------------------------------------
check_workers "every apply worker still runs"
check_no_apply_errors "no ERROR in the server log"

[ "$fail" = 0 ] || rep_diagnose 1 3 11 12
exit "$fail"
