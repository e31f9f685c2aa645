# shellcheck shell=bash
# shellcheck disable=SC2034 # fail and REP_WAL_* are read by the scripts that source this
#
# test/scripts/replication.bash: helpers shared by the logical-replication scripts
# (replication_two_nodes.sh, replication_three_nodes.sh).  Not a test itself: run.sh
# runs only test/scripts/*.sh.  Source it after test/lib.sh.
#
#   rep_start_node NAME PORT     a cluster with the extension, pg_walinspect and the
#                                table item (id int PRIMARY KEY, note text, qty int)
#   rep_setup_mesh               every node tracks item with each other node as a
#                                system (node_X, replication_origin sub_from_X), publishes
#                                item and subscribes to every other node
#   q NODE SQL                   one value (psql -qAt)
#   wait_until WHAT NODE SQL [TIMEOUT]
#                                polls until SQL on NODE returns t (default 30 s)
#   wait_same_tables WHAT [TIMEOUT]
#                                polls until item is the same on every node
#   set_subscriptions enable|disable
#                                on every node, and waits until the apply workers
#                                run again / have stopped
#   wait_wal_quiet WHAT [TIMEOUT]
#                                polls until no node writes WAL (see wal_quiet)
#   check_wal_quiet WHAT         the check that no node writes WAL any more
#   check_workers WHAT, check_no_apply_errors WHAT
#   check_tables_same WHAT
#   rep_diagnose ID...           history and shadow of rows, on every node
#
# Every node is in REP_NODES; fail is 1 once a check failed.

REP_NODES=()
fail=0

# The settings of a node: what logical replication needs (SR_TEST_SETTINGS); commit
# timestamps, by which sync_resolve knows its own changes when a peer sends them back
# (README, "PostgreSQL nodes"); and no background writer of table data (autovacuum),
# so that WAL moves only when a session or a replication worker writes.
REP_SETTINGS=("${SR_TEST_SETTINGS[@]}" track_commit_timestamp=on autovacuum=off
	checkpoint_timeout=1h max_logical_replication_workers=8 max_worker_processes=16)

q()
{
	sr_psql "$1" -qAt -c "$2"
}


# rep_start_node NAME PORT
rep_start_node()
{
	local name=$1 port=$2
	sr_cluster_start "$name" "$port" "${REP_SETTINGS[@]}"
	REP_NODES+=("$name")
	sr_psql "$name" -q <<'SQL' >/dev/null
CREATE EXTENSION sync_resolve;
CREATE EXTENSION pg_walinspect;
CREATE TABLE item (id int PRIMARY KEY, note text, qty int);
CREATE PUBLICATION pub_item FOR TABLE item WITH (publish = 'insert, update, delete');
SQL
}

# rep_setup_mesh: systems, tracking and subscriptions between every pair of nodes.
rep_setup_mesh()
{
	local node peer systems
	for node in "${REP_NODES[@]}"; do
		systems=
		for peer in "${REP_NODES[@]}"; do
			[ "$peer" != "$node" ] || continue
			q "$node" "SELECT sync_resolve.add_system('node_$peer', replication_origin => 'sub_from_$peer')" >/dev/null
			systems+="${systems:+,}'node_$peer'"
		done
		sr_psql "$node" -q >/dev/null <<SQL
SELECT sync_resolve.track('item', ARRAY[$systems]);
SELECT sync_resolve.set_policy('item', 'note', 'latest');
SELECT sync_resolve.set_policy('item', 'qty', 'sum_delta');
SQL
	done
	for node in "${REP_NODES[@]}"; do
		for peer in "${REP_NODES[@]}"; do
			[ "$peer" != "$node" ] || continue
			# one slot per subscriber on the peer: name it after both ends
			q "$node" "CREATE SUBSCRIPTION sub_from_$peer
				CONNECTION '$(sr_cluster_connstr "$peer") dbname=postgres'
				PUBLICATION pub_item
				WITH (copy_data = false, slot_name = '${node}_from_${peer}')" 2>&1 |
				grep -v '^NOTICE:' || true
		done
	done
	wait_workers "every apply worker started"
}

# wait_until WHAT NODE SQL [TIMEOUT]: true once SQL on NODE returns t; after TIMEOUT
# seconds, a not ok line and false.
wait_until()
{
	local what=$1 node=$2 sql=$3 timeout=${4:-30} deadline got
	deadline=$((SECONDS + timeout))
	while :; do
		got=$(q "$node" "$sql" 2>&1) || true
		[ "$got" != t ] || return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "not ok - $what: not true on $node after ${timeout}s: $sql (last answer: '$got')"
			fail=1
			return 1
		fi
		sleep 0.2
	done
}

# The table as one line: id|note|qty;...
rows()
{
	q "$1" "SELECT coalesce(string_agg(format('%s|%s|%s', id, note, qty), ';' ORDER BY id), '') FROM item"
}

# rows_differ: empty when every node holds the same rows, else one line per node.
rows_differ()
{
	local node first='' r out='' same=1
	for node in "${REP_NODES[@]}"; do
		r=$(rows "$node")
		out+="    $node: $r"$'\n'
		if [ -z "$first" ]; then
			first=x$r
		elif [ "$first" != "x$r" ]; then
			same=0
		fi
	done
	[ "$same" = 1 ] || printf '%s' "$out"
}

wait_same_tables()
{
	local what=$1 timeout=${2:-30} deadline diff
	deadline=$((SECONDS + timeout))
	while :; do
		diff=$(rows_differ)
		[ -n "$diff" ] || return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "not ok - $what: the nodes still differ after ${timeout}s:"
			printf '%s\n' "$diff"
			fail=1
			return 1
		fi
		sleep 0.2
	done
}

check_tables_same()
{
	local what=$1 diff
	diff=$(rows_differ)
	if [ -z "$diff" ]; then
		echo "ok - $what"
	else
		echo "not ok - $what:"
		printf '%s\n' "$diff"
		fail=1
	fi
}

# Subscriptions of a node, and how many have a running apply worker.
workers_sql="SELECT (SELECT count(*) FROM pg_subscription) || '/' ||
	(SELECT count(*) FROM pg_stat_subscription WHERE relid IS NULL AND pid IS NOT NULL)"

# wait_workers WHAT [running|stopped]
wait_workers()
{
	local what=$1 want=${2:-running} node n cond
	for node in "${REP_NODES[@]}"; do
		n=$(q "$node" "SELECT count(*) FROM pg_subscription")
		if [ "$want" = running ]; then
			cond="count(*) = $n"
		else
			cond="count(*) = 0"
		fi
		wait_until "$what" "$node" "SELECT $cond FROM pg_stat_subscription
			WHERE relid IS NULL AND pid IS NOT NULL" || return 1
	done
}

set_subscriptions()
{
	local action=$1 node sub
	for node in "${REP_NODES[@]}"; do
		for sub in $(q "$node" "SELECT subname FROM pg_subscription ORDER BY 1"); do
			q "$node" "ALTER SUBSCRIPTION $sub ${action^^}"
		done
	done
	if [ "$action" = enable ]; then
		wait_workers "the apply workers start again" running || true
	else
		wait_workers "the apply workers stop" stopped || true
	fi
}

check_workers()
{
	local what=$1 node got
	for node in "${REP_NODES[@]}"; do
		got=$(q "$node" "$workers_sql")
		sr_check "$what ($node: subscriptions/running workers)" "$got" "${got%/*}/${got%/*}"
	done
}

# Errors logged by the servers (an apply worker that failed logs ERROR, then exits).
check_no_apply_errors()
{
	local what=$1 node log found
	for node in "${REP_NODES[@]}"; do
		log=$(sr_cluster_log "$node")
		found=$(grep -E 'ERROR:|exited with exit code|terminated by signal' "$log" || true)
		if [ -z "$found" ]; then
			echo "ok - $what ($node)"
		else
			echo "not ok - $what ($node): its server log says:"
			grep -E -B 2 -A 3 'ERROR:|exited with exit code|terminated by signal' "$log" |
				head -n 40 | sed 's/^/    /'
			fail=1
		fi
	done
}

# wal_lsns: the current WAL position of every node, space separated.
wal_lsns()
{
	local node out=()
	for node in "${REP_NODES[@]}"; do
		out+=("$(q "$node" 'SELECT pg_current_wal_lsn()')")
	done
	echo "${out[*]}"
}

# wal_records NODE FROM TO: the WAL records of NODE between two positions, one line each
# (resource manager, record type, description), as pg_walinspect shows them.  It reads
# only WAL flushed to disk, and TO (an insert position) may not be flushed yet: with
# synchronous_commit off, a record waits for the WAL writer (wal_writer_delay), so it
# waits up to 5 s for that first.  pg_walinspect cannot always read a range that starts
# where a WAL page starts ("could not find a valid record after ..."): that ERROR is not
# logged by the server (the checks of its log would count it), and comes back as a line
# "unreadable: ...", which wal_quiet takes as a window to try again.  (Catching it in a
# function instead would write the function to the catalog: WAL of its own.)
wal_records()
{
	local i
	for i in $(seq 50); do
		[ "$(q "$1" "SELECT pg_current_wal_flush_lsn() >= '$3'::pg_lsn")" = t ] && break
		sleep 0.1
	done
	{ q "$1" "SET log_min_messages = fatal;
		SELECT resource_manager || ' ' || record_type || ' ' || coalesce(description, '')
		FROM pg_get_wal_records_info('$2', least('$3'::pg_lsn, pg_current_wal_flush_lsn()))
		ORDER BY start_lsn" 2>&1 || true; } | sed -E 's/^.*ERROR: +/unreadable: /'
}

# wal_quiet SECONDS: true when, over SECONDS, no node's WAL moved, or it moved only by
# the server's own bookkeeping: the background writer logs a snapshot of running
# transactions (Standby RUNNING_XACTS) up to 15 s after the last activity, and any
# read of a heap page holding dead row versions may prune it (Heap2 PRUNE: a background
# process reading the catalog, say; it removes versions, it changes no row).  A loop
# writes rows and commits, which stay noise.  Otherwise REP_WAL_NOISE lists what was
# written.  REP_WAL_MOVED is 1 when some WAL moved, REP_WAL_UNREAD 1 when some of it
# could not be read, and REP_WAL_BOOKKEEPING names the bookkeeping records read.
wal_quiet()
{
	local secs=$1 before after i node noisy=0 recs
	read -r -a before <<<"$(wal_lsns)"
	sleep "$secs"
	read -r -a after <<<"$(wal_lsns)"
	REP_WAL_NOISE=
	REP_WAL_MOVED=0
	REP_WAL_UNREAD=0
	REP_WAL_BOOKKEEPING=
	for i in "${!REP_NODES[@]}"; do
		node=${REP_NODES[$i]}
		[ "${before[$i]}" != "${after[$i]}" ] || continue
		REP_WAL_MOVED=1
		recs=$(wal_records "$node" "${before[$i]}" "${after[$i]}")
		# not known: like a window of bookkeeping only, tried again
		if grep -q '^unreadable: ' <<<"$recs"; then
			REP_WAL_UNREAD=1
			continue
		fi
		REP_WAL_BOOKKEEPING+=" $node:$(awk '{ print $1 "_" $2 }' <<<"$recs" | sort | uniq -c |
			awk '{ printf " %s x%s", $2, $1 }')"
		if grep -qvE '^(Standby RUNNING_XACTS|XLOG CHECKPOINT_ONLINE|XLOG SWITCH|Heap2 PRUNE) ' <<<"$recs"; then
			noisy=1
			REP_WAL_NOISE+="    $node: ${before[$i]} -> ${after[$i]}:"$'\n'
			REP_WAL_NOISE+=$(head -n 20 <<<"$recs" | sed 's/^/        /')$'\n'
		fi
	done
	return "$noisy"
}

wait_wal_quiet()
{
	local what=$1 timeout=${2:-30} deadline
	deadline=$((SECONDS + timeout))
	while ! wal_quiet 2; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "not ok - $what: WAL still moving after ${timeout}s:"
			printf '%s' "$REP_WAL_NOISE"
			fail=1
			return 1
		fi
	done
}

# check_wal_quiet WHAT: over 5 s, no node writes WAL but bookkeeping (see wal_quiet):
# a loop writes rows, history and commits.  A window with WAL that could not be read
# is tried again (3 times).  Like every check_* function, it records a failure in
# fail and returns 0, so that the script goes on (set -e) to the checks that follow.
check_wal_quiet()
{
	local what=$1 try
	for try in 1 2 3 4; do
		[ "$try" = 1 ] || echo "# some WAL could not be read: window $try"
		if wal_quiet 5; then
			[ "$REP_WAL_UNREAD" = 0 ] || continue
			[ "$REP_WAL_MOVED" = 0 ] || echo "# bookkeeping only:$REP_WAL_BOOKKEEPING"
			echo "ok - $what"
			return 0
		fi
		echo "not ok - $what: WAL written while nothing was changed:"
		printf '%s' "$REP_WAL_NOISE"
		fail=1
		return 0
	done
	echo "not ok - $what: some WAL could not be read in every window"
	fail=1
}

# rep_diagnose ID...: for each node, the history (first 30 events) and the shadow of
# the rows with these ids: what each node computed, and from which base.
rep_diagnose()
{
	local node id
	for node in "${REP_NODES[@]}"; do
		for id in "$@"; do
			echo "---- $node: sync_resolve.event for id $id (first 30) ----"
			sr_psql "$node" -q -P pager=off -c "SELECT id, kind, source, column_name AS col,
					old_value AS local, incoming_value AS incoming, base_value AS base,
					new_value AS new, source_changed_at, rule
				FROM sync_resolve.event WHERE key = '{\"id\": $id}' ORDER BY id LIMIT 30" 2>&1 || true
			echo "---- $node: sync_resolve.shadow('item', '{\"id\": $id}') ----"
			sr_psql "$node" -q -P pager=off -c "SELECT system, base, changed_at, changes
				FROM sync_resolve.shadow('item', '{\"id\": $id}') ORDER BY system" 2>&1 || true
		done
	done
}
