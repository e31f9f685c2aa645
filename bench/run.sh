#!/usr/bin/env bash
#
# bench/run.sh: what `make bench` runs.  Measures sync_resolve on this machine, in one
# run, against plain PostgreSQL doing the same work, against the same logic written in
# PL/pgSQL, and against itself on larger tables and a longer history (DESIGN §15).
# Each benchmark compares a measured side with a baseline:
#
#   local      a local UPDATE of one random row (10,000 rows) of a tracked table, vs the
#              same UPDATE of an untracked copy
#   apply      apply() from crm changing one column of a random row, no conflict, vs a
#              plain INSERT ... ON CONFLICT DO UPDATE of the same row into an untracked copy
#   solo       the same apply() on a table tracked for crm alone: the row, the shadow and
#              the history, with no change to queue for billing, vs the same plain upsert
#   floor      apply()'s writes for the image of "apply" -- the row, crm's base, the local
#              metadata, two history rows, the change queued for billing -- made by hand in
#              one SQL statement with no logic, on copies of its tables (bench/floor.sql), vs
#              the plain upsert of "apply": what the writes DESIGN asks for cost by themselves
#   logic      apply() as in "apply", vs that statement: what sync_resolve adds to its writes
#   conflict   apply() from crm where all five columns conflict ('latest' keeps the local
#              value and crm is told it through the outbox), vs the same plain upsert
#   source     UPDATE of one random row with SET sync_resolve.source = 'crm' (the before
#              trigger resolves it as apply() would), vs the same statements untracked
#   batch      apply_batch() of 1,000 rows from crm, vs one multi-row plain upsert of the
#              same rows built from the same JSON array
#   reference  apply() as in "apply", vs ref_apply(), the same resolution written by hand
#              in PL/pgSQL (bench/reference.sql) with its own shadow, history and outbox,
#              on its own copy of the rows; bench/check.sql makes sure both write the same
#   rows100k   apply() as in "apply" on a table of 100,000 rows (its shadow holding crm's
#              base and the local metadata of every row), vs the same on 10,000 rows
#   rows1m     the same with 1,000,000 rows
#   plain1m    the plain upsert of "apply" on 1,000,000 rows vs on 10,000: what the
#              table's size costs PostgreSQL itself, to read rows100k and rows1m by
#   rows1m_cache, plain1m_cache
#              rows1m and plain1m again, last, after a restart of the cluster with
#              shared_buffers = SR_BENCH_CACHE (default 4GB) and every relation of their
#              two databases loaded into it (pg_prewarm): with a cache sized for the data,
#              as a server holding a table of 1,000,000 rows would have, what is left of
#              the size's cost is not PostgreSQL reading pages it had to evict.  The cache
#              is in huge pages where the machine gives them (SR_BENCH_HUGEPAGES), as
#              PostgreSQL's documentation advises for a shared_buffers this large
#   history    apply() on 10,000 rows with 1,000,000 events in sync_resolve.event, vs
#              apply() on 10,000 rows whose history is emptied before every run
#   claim      a worker carrying the outbox to crm: claim_outbound() of one entry, then
#              ack_outbound() of it (two transactions), from a pool of waiting entries
#              (bench/claim_pool.sql, before every run), vs the same claim and
#              acknowledgement by hand, in the statement claim_outbound() runs, on a copy
#              of the outbox holding the same entries (bench/pgbench/claim_plain.sql)
#   memory     not timed: the peak memory of one fresh backend running apply_batch() of
#              10,000 rows, vs the same rows as one plain upsert (bench/memory.sql)
#
# rows100k, rows1m, plain1m and history run in databases of their own, built alike by
# bench/setup_scale.sql (the bases and the history by apply_batch() itself), and so does
# their baseline, sr_bench_rows10k: only the size of the table or of the history
# differs.  Their sizes are multiplied by SR_BENCH_SCALE.  claim runs in a database of
# its own, sr_bench_claim (bench/setup_claim.sql), whose pool holds 10,000 entries per
# second of a run.
#
# Each side runs pgbench with one client (-n -c 1 -M prepared -T SECONDS) for the same
# number of seconds, RUNS times, alternating which side goes first; bench/between_runs.sql
# runs before every run (outbox truncated, history pruned -- not in the history
# benchmark's database --, VACUUM ANALYZE, CHECKPOINT), so the outbox and the history do
# not grow from run to run.  The median tps of each side and their ratios are printed as
# a markdown table and written, with what a transaction of each side wrote to the WAL and
# how many buffers it found or read (counted around every run: the tps of this machine
# swing by a quarter from run to run, these counts do not), the CPU time of its backend,
# the peak memory, the machine and the commands, to bench/RESULTS.md.  pgbench logs go to bench/out/.
#
# Steps: the Debian packages (installed when root), make PG_CFLAGS=-Werror && make
# install (test/lib.sh), a throwaway cluster on port 55460 (or the next free one) with
# the test settings, synchronous_commit=off and room for a run's WAL between two
# checkpoints, bench/setup.sql and bench/check.sql
# (each tracked benchmark takes the path it claims to), bench/setup_scale.sql for each
# scaling database, then the runs, then the memory.  At the default settings the whole
# takes about 35 minutes: setting up about 3 (most of it filling the 1,000,000-row
# shadow), measuring 15 benchmarks x 3 runs x 2 sides x 15 s, bench/between_runs.sql
# before each run.
#
# Environment:
#   SR_BENCH_SECONDS=N    seconds per run (default 15)
#   SR_BENCH_RUNS=N       runs per side and benchmark (default 3)
#   SR_BENCH_ONLY="a b"   only these benchmarks (default: local apply solo floor logic
#                         conflict source batch reference rows100k rows1m plain1m history
#                         claim memory rows1m_cache plain1m_cache)
#   SR_BENCH_CACHE=SIZE   shared_buffers of rows1m_cache and plain1m_cache (default 4GB;
#                         everything else runs at the default, 128MB)
#   SR_BENCH_HUGEPAGES=0|1
#                         1 (the default when root): before that restart, reserve the
#                         huge pages the larger cache needs (vm.nr_hugepages), and give
#                         the reservation back when the cached benchmarks are done or the
#                         run ends; 0: leave vm.nr_hugepages as it is (the server still
#                         takes huge pages the machine has reserved: huge_pages = try)
#   SR_BENCH_SCALE=F      multiplies the sizes of rows100k, rows1m, plain1m and history
#                         (default 1; 0.1 for a quick run: 10,000 and 100,000 rows,
#                         100,000 events)
#   SR_BENCH_SKIP_BUILD=1 use the installed build as it is (no make, no make install)
#   SR_BENCH_PORT=N       cluster port (default 55460)
#   SR_KEEP_CLUSTER=1     leave the cluster running and print how to connect to it

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
sr_install_traps

# The huge pages the larger cache asked for (reserve_hugepages, SR_BENCH_HUGEPAGES=1):
# vm.nr_hugepages as it was before, given back after the cached benchmarks, and on any
# way out (sr_cleanup, after the cluster).
hugepages_before=
give_back_hugepages()
{
	[ -n "$hugepages_before" ] || return 0
	echo "$hugepages_before" >/proc/sys/vm/nr_hugepages 2>/dev/null ||
		echo "warning: could not set vm.nr_hugepages back to $hugepages_before" >&2
	hugepages_before=
}
sr_on_cleanup give_back_hugepages

secs=${SR_BENCH_SECONDS:-15}
runs=${SR_BENCH_RUNS:-3}
port=${SR_BENCH_PORT:-55460}
scale=${SR_BENCH_SCALE:-1}
cache=${SR_BENCH_CACHE:-4GB}
hugepages=${SR_BENCH_HUGEPAGES:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}
read -r -a benches <<<"${SR_BENCH_ONLY:-local apply solo floor logic conflict source batch reference rows100k rows1m plain1m history claim memory rows1m_cache plain1m_cache}"
out=bench/out
results=bench/RESULTS.md
db=sr_bench

for v in "$secs" "$runs"; do
	if ! [[ $v =~ ^[1-9][0-9]*$ ]]; then
		echo "error: SR_BENCH_SECONDS and SR_BENCH_RUNS must be positive integers" >&2
		exit 2
	fi
done
if ! [[ $scale =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || ! awk -v f="$scale" 'BEGIN { exit !(f * 1000000 >= 1000) }'; then
	echo "error: SR_BENCH_SCALE must be a number of at least 0.001" >&2
	exit 2
fi
if ! [[ $hugepages =~ ^[01]$ ]]; then
	echo "error: SR_BENCH_HUGEPAGES must be 0 or 1" >&2
	exit 2
fi
if ! [[ $cache =~ ^([1-9][0-9]*)(kB|MB|GB)$ ]]; then
	echo "error: SR_BENCH_CACHE must be a size such as 4GB, 512MB" >&2
	exit 2
fi
# the restart for the cached benchmarks comes last: a cache the machine cannot give would
# end the run there, without RESULTS.md -- ask for half as much again free, now
declare -A unit_kb=([kB]=1 [MB]=1024 [GB]=1048576)
cache_kb=$((BASH_REMATCH[1] * unit_kb[${BASH_REMATCH[2]}]))
avail_kb=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
if [[ " ${SR_BENCH_ONLY:-rows1m_cache} " == *_cache\ * ]] && ((avail_kb < cache_kb * 3 / 2)); then
	echo "error: SR_BENCH_CACHE=$cache needs $((cache_kb * 3 / 2 / 1024)) MB free, $((avail_kb / 1024)) MB are;" \
		"set a smaller SR_BENCH_CACHE, or leave rows1m_cache and plain1m_cache out of SR_BENCH_ONLY" >&2
	exit 2
fi
# the sizes of the scaling benchmarks
scaled()
{
	awk -v n="$1" -v f="$scale" 'BEGIN { printf "%d", n * f + 0.5 }'
}
rows_m=$(scaled 100000)
rows_l=$(scaled 1000000)
history=$(scaled 1000000)
# the claim benchmark's pool: more than a run takes (about 4,000 a second here)
claim_rows=$((secs * 10000))
# 1234567 -> 1,234,567
commas()
{
	echo "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'
}

declare -A title=(
	[local]="local UPDATE of 1 random row"
	[apply]="apply(), 1 column of 1 row, no conflict"
	[solo]="apply(), 1 column of 1 row, no conflict, table tracked for crm alone (no outbox entry)"
	[floor]="apply()'s six writes for the image of \"apply\", by hand in one SQL statement, untracked (bench/floor.sql)"
	[logic]="apply(), 1 column of 1 row, no conflict"
	[conflict]="apply(), 5 columns of 1 row, all conflicting (latest)"
	[source]="UPDATE of 1 row from a source (SET sync_resolve.source)"
	[batch]="apply_batch() of 1,000 rows, no conflict"
	[reference]="apply(), 1 column of 1 row, no conflict"
	[rows100k]="apply(), 1 column of 1 row, no conflict, table of $(commas "$rows_m") rows"
	[rows1m]="apply(), 1 column of 1 row, no conflict, table of $(commas "$rows_l") rows"
	[plain1m]="INSERT ... ON CONFLICT DO UPDATE of 1 row, untracked, table of $(commas "$rows_l") rows"
	[rows1m_cache]="apply(), 1 column of 1 row, no conflict, table of $(commas "$rows_l") rows, shared_buffers $cache"
	[plain1m_cache]="INSERT ... ON CONFLICT DO UPDATE of 1 row, untracked, table of $(commas "$rows_l") rows, shared_buffers $cache"
	[history]="apply(), 1 column of 1 row, no conflict, 10,000 rows, $(commas "$history") events in the history"
	[claim]="claim_outbound() of 1 entry for crm, then ack_outbound() of it"
)
declare -A base_title=(
	[local]="same UPDATE, untracked"
	[apply]="INSERT ... ON CONFLICT DO UPDATE, untracked"
	[solo]="INSERT ... ON CONFLICT DO UPDATE, untracked"
	[floor]="INSERT ... ON CONFLICT DO UPDATE, untracked"
	[logic]="the same six writes by hand in one SQL statement (bench/floor.sql)"
	[conflict]="INSERT ... ON CONFLICT DO UPDATE of 5 columns, untracked"
	[source]="same SET + UPDATE, untracked"
	[batch]="one 1,000-row INSERT ... ON CONFLICT DO UPDATE from the same JSON, untracked"
	[reference]="the same logic in PL/pgSQL (bench/reference.sql)"
	[rows100k]="the same, table of 10,000 rows"
	[rows1m]="the same, table of 10,000 rows"
	[plain1m]="the same, table of 10,000 rows"
	[rows1m_cache]="the same, table of 10,000 rows, shared_buffers $cache"
	[plain1m_cache]="the same, table of 10,000 rows, shared_buffers $cache"
	[history]="the same, no history"
	[claim]="the same claim and acknowledgement by hand, on a copy of the outbox"
)
# DESIGN §15: "at most 2x the time" (local), "at least half the throughput" (apply),
# "several times faster" than PL/pgSQL (reference: 3x), "per-row cost flat" as the table
# and the history grow (within 20%)
declare -A target=(
	[local]="time <= 2x"
	[apply]="throughput >= 0.5x"
	[solo]="throughput >= 0.5x"
	[reference]="throughput >= 3x"
	[rows100k]="time <= 1.2x"
	[rows1m]="time <= 1.2x"
	[rows1m_cache]="time <= 1.2x"
	[history]="time <= 1.2x"
)

# What each side of a benchmark runs: SIDE_SCRIPT, SIDE_DB and SIDE_ROWS (pgbench -D
# rows=N, the table's size for the apply scripts), by "bench.side"; sides are measured
# and baseline.
declare -A side_script=() side_db=() side_rows=()
set_side()
{
	side_script[$1.$2]=bench/pgbench/$3.sql
	side_db[$1.$2]=$4
	side_rows[$1.$2]=${5:-10000}
}
for b in local apply conflict source batch; do
	set_side "$b" measured "${b}_tracked" "$db"
	set_side "$b" baseline "${b}_plain" "$db"
done
set_side solo measured solo_tracked "$db"
set_side solo baseline apply_plain "$db"
set_side floor measured floor_writes "$db"
set_side floor baseline apply_plain "$db"
set_side logic measured apply_tracked "$db"
set_side logic baseline floor_writes "$db"
set_side reference measured apply_tracked "$db"
set_side reference baseline reference_plain "$db"
set_side rows100k measured apply_tracked sr_bench_rows100k "$rows_m"
set_side rows100k baseline apply_tracked sr_bench_rows10k
set_side rows1m measured apply_tracked sr_bench_rows1m "$rows_l"
set_side rows1m baseline apply_tracked sr_bench_rows10k
set_side plain1m measured apply_plain sr_bench_rows1m "$rows_l"
set_side plain1m baseline apply_plain sr_bench_rows10k
for b in rows1m plain1m; do
	for side in measured baseline; do
		side_script[${b}_cache.$side]=${side_script[$b.$side]}
		side_db[${b}_cache.$side]=${side_db[$b.$side]}
		side_rows[${b}_cache.$side]=${side_rows[$b.$side]}
	done
done
set_side history measured apply_tracked sr_bench_history
set_side history baseline apply_tracked sr_bench_rows10k
set_side claim measured claim_tracked sr_bench_claim "$claim_rows"
set_side claim baseline claim_plain sr_bench_claim "$claim_rows"

# timed: the benchmarks of the tables, in the order given; of those, cached run last,
# after the restart with the larger cache
timed=()
cached=()
memory=0
for b in "${benches[@]}"; do
	if [ "$b" = memory ]; then
		memory=1
	elif [ -n "${title[$b]:-}" ]; then
		timed+=("$b")
		[[ $b != *_cache ]] || cached+=("$b")
	else
		echo "error: unknown benchmark '$b' (known: ${!title[*]} memory)" >&2
		exit 2
	fi
done

sr_ensure_packages
if [ "${SR_BENCH_SKIP_BUILD:-0}" = 1 ]; then
	echo "SR_BENCH_SKIP_BUILD=1: using the installed sync_resolve as it is"
else
	sr_build_install
fi
# No checkpoint may fall inside a measured run (bench/between_runs.sql takes one just
# before each): at the default max_wal_size (1GB) the WAL of a run over 1,000,000 rows --
# most of its changes the first of their page since that checkpoint, so full-page images
# -- asked for one every 15 s or so, and each asked for more full-page images; a run
# that had one measured the checkpoint, not the work.  measure() counts them.
# (RESULTS.md lists these settings; sr_cluster_start adds fsync=off.)
bench_settings=(synchronous_commit=off max_wal_size=4GB checkpoint_timeout=30min)
sr_cluster_start bench "$port" "${SR_TEST_SETTINGS[@]}" "${bench_settings[@]}"
# the build measured: a make install during the run would mix two builds
so_file=$("$PG_CONFIG" --pkglibdir)/sync_resolve.so
so_sum()
{
	sha256sum "$so_file" | cut -c1-16
}
so_at_start=$(so_sum)
# the cache of every benchmark but the cached ones
shared_buffers=$(sr_psql bench -At -c 'SHOW shared_buffers')
commit=$(git -C "$SR_ROOT" describe --always --dirty 2>/dev/null || echo unknown)
mkdir -p "$out"
# one make bench at a time: two would share the CPUs and each other's logs
exec 9>"$out/.lock"
if ! flock -n 9; then
	echo "error: another make bench is running (it holds $out/.lock)" >&2
	exit 1
fi
rm -f "$out"/*.log "$out"/*.tps "$out"/*.work "$out"/checkpoints

psql_db()
{
	sr_psql bench -q -d "$db" "$@"
}
# psql_in DB [psql args...]
psql_in()
{
	local d=$1
	shift
	sr_psql bench -q -d "$d" "$@"
}
# the databases the selected benchmarks need, but sr_bench
scale_dbs=()
for b in "${timed[@]}"; do
	for side in measured baseline; do
		d=${side_db[$b.$side]}
		if [ "$d" != "$db" ] && [[ " ${scale_dbs[*]} " != *" $d "* ]]; then
			scale_dbs+=("$d")
		fi
	done
done

setup_started=$(date +%s)
echo "setting up database $db (5 pairs of tables, the reference's and the floor's copies, 10,000 rows each)"
sr_psql bench -q -c "CREATE DATABASE $db"
psql_db -f bench/setup.sql >"$out/setup.log"
psql_db -f bench/check.sql >>"$out/setup.log"
for d in "${scale_dbs[@]}"; do
	if [ "$d" = sr_bench_claim ]; then
		echo "setting up database $d ($(commas "$claim_rows") rows, an entry of each to claim)"
		sr_psql bench -q -c "CREATE DATABASE $d"
		psql_in "$d" -v rows="$claim_rows" -f bench/setup_claim.sql >>"$out/setup.log"
		continue
	fi
	case $d in
	sr_bench_rows10k) n=10000 h=0 ;;
	sr_bench_rows100k) n=$rows_m h=0 ;;
	sr_bench_rows1m) n=$rows_l h=0 ;;
	sr_bench_history) n=10000 h=$history ;;
	esac
	echo "setting up database $d ($(commas "$n") rows, $(commas "$h") events of history)"
	sr_psql bench -q -c "CREATE DATABASE $d"
	psql_in "$d" -v rows="$n" -v history="$h" -f bench/setup_scale.sql >>"$out/setup.log"
done
setup_secs=$(($(date +%s) - setup_started))

# median: the median of the numbers on standard input, one per line.
median()
{
	sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# counters DB: what the cluster has written to the WAL (records, full-page images,
# bytes) and how many buffers DB has found in shared buffers and read, so far.
counters()
{
	psql_in "$1" -At -F' ' -c "SELECT w.wal_records, w.wal_fpi, w.wal_bytes, d.blks_hit, d.blks_read
		FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()"
}

# checkpoints DB: how many checkpoints the cluster has started so far, timed or asked for.
checkpoints()
{
	psql_in "$1" -At -c "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
}

# pgbench_backend DB: the pid of pgbench's backend in DB (any client but this query's
# own), or nothing when there is none.
pgbench_backend()
{
	psql_in "$1" -At -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
		AND backend_type = 'client backend' AND pid <> pg_backend_pid() LIMIT 1"
}

# settle DB: wait until pgbench's backend has gone; a backend reports the last of its
# statistics on its way out, before it leaves pg_stat_activity.
settle()
{
	local i
	for ((i = 0; i < 100; i++)); do
		[ -n "$(pgbench_backend "$1")" ] || return 0
		sleep 0.1
	done
	echo "error: pgbench's backend in $1 did not go away" >&2
	return 1
}

# backend_cpu DB: the CPU time (user + system, in clock ticks) of pgbench's backend in DB
# from when it is first seen until it has gone, read from /proc/PID/stat every 0.2 s; empty
# when it cannot be read.  The time up to its first reading and after its last one is
# missed: at most 0.2 s of each side's runs alike.
backend_cpu()
{
	local i pid= stat first= last=
	for ((i = 0; i < 100; i++)); do
		pid=$(pgbench_backend "$1")
		[ -z "$pid" ] || break
		sleep 0.05
	done
	[ -n "$pid" ] || return 0
	# fields 14 and 15 of /proc/PID/stat: utime and stime (a backend's name has no spaces)
	while read -r -a stat 2>/dev/null <"/proc/$pid/stat"; do
		last=$((stat[13] + stat[14]))
		first=${first:-$last}
		sleep 0.2
	done
	[ -z "$first" ] || echo $((last - first))
}

# measure BENCH SIDE RUN: one pgbench run; appends its tps to $out/BENCH_SIDE.tps and
# what it cost to $out/BENCH_SIDE.work: transactions, the counters before and after, and
# the CPU time of pgbench's backend (clock ticks).
measure()
{
	local b=$1 side=$2 r=$3 log tps failed keep=() mark history before after txns cpu cpu_pid ckpts
	local d=${side_db[$b.$side]} script=${side_script[$b.$side]} rows=${side_rows[$b.$side]}
	log=$out/${b}_${side}_$r.log
	[ "$d" != sr_bench_history ] || keep=(-v keep_history=1)
	# the scaling benchmarks' apply() sides: every change merges into a waiting entry
	case $d:$script in
	sr_bench_rows*:bench/pgbench/apply_tracked.sql | sr_bench_history:*) keep+=(-v fill_outbox=1) ;;
	esac
	if [ "$d" = sr_bench_claim ]; then
		# the pool the run claims from, in the outbox and in its copy
		psql_in "$d" -f bench/claim_pool.sql >/dev/null
		keep=(-v keep_outbox=1)
	fi
	psql_in "$d" "${keep[@]}" -f bench/between_runs.sql >/dev/null
	mark=$(psql_in "$d" -At -c "SELECT coalesce(max(id), 0) FROM sync_resolve.event")
	{
		echo "# database $d; $(psql_in "$d" -At -c "SELECT count(*) FROM sync_resolve.event") events in the history"
		echo "pgbench -n -c 1 -M prepared -T $secs -D rows=$rows -f $script $d"
	} >"$log"
	before=$(counters "$d")
	ckpts=$(checkpoints "$d")
	backend_cpu "$d" >"$out/cpu.tmp" &
	cpu_pid=$!
	sr_with_cluster bench "$SR_PG_BINDIR/pgbench" -n -c 1 -M prepared -T "$secs" -D rows="$rows" \
		-f "$script" "$d" >>"$log" 2>&1 || {
		cat "$log" >&2
		echo "error: pgbench failed for $b ($side), run $r" >&2
		return 1
	}
	settle "$d"
	after=$(counters "$d")
	wait "$cpu_pid" || true
	cpu=$(cat "$out/cpu.tmp")
	rm -f "$out/cpu.tmp"
	tps=$(awk '/^tps = / { print $3; exit }' "$log")
	txns=$(awk -F': ' '/^number of transactions actually processed/ { print $2 + 0; exit }' "$log")
	failed=$(awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$log")
	if [ -z "$tps" ] || [ "${failed:-0}" != 0 ]; then
		cat "$log" >&2
		echo "error: no tps, or failed transactions, for $b ($side), run $r" >&2
		return 1
	fi
	# what the run did, from the history it wrote (the events after the mark)
	psql_in "$d" -At -c "SELECT 'sync_resolve.event ' || kind || ': ' || count(*) FROM sync_resolve.event
		WHERE id > $mark GROUP BY kind ORDER BY kind" \
		-c "SELECT 'sync_resolve.outbox entries after the run: ' || count(*) FROM sync_resolve.outbox" >>"$log"
	# and from the history of its own the reference or the floor keeps
	case $script in
	bench/pgbench/reference_plain.sql) history=ref_event ;;
	bench/pgbench/floor_writes.sql) history=floor_event ;;
	*) history= ;;
	esac
	if [ -n "$history" ]; then
		psql_in "$d" -At -c "SELECT '$history ' || kind || ': ' || count(*) FROM $history GROUP BY kind ORDER BY kind" \
			>>"$log"
	fi
	ckpts=$(($(checkpoints "$d") - ckpts))
	if ((ckpts > 0)); then
		echo "$b $side run $r: $ckpts" >>"$out/checkpoints"
		echo "warning: $ckpts checkpoint(s) fell inside run $r of $b ($side)" >&2
	fi
	echo "$tps" >>"$out/${b}_${side}.tps"
	echo "${txns:-0} $before $after $cpu" >>"$out/${b}_${side}.work"
	printf '  %-9s %-8s run %d: %10.1f tps\n' "$b" "$side" "$r" "$tps"
}

# memory SIDE: peak memory of a fresh backend applying 10,000 rows (bench/memory.sql);
# writes its lines to $out/memory_SIDE.txt.
measure_memory()
{
	local side=$1 flag=1
	[ "$side" = tracked ] || flag=0
	psql_db -f bench/between_runs.sql >/dev/null
	psql_db -At -v tracked=$flag -f bench/memory.sql >"$out/memory_$side.txt" 2>&1 || {
		cat "$out/memory_$side.txt" >&2
		echo "error: bench/memory.sql failed ($side)" >&2
		return 1
	}
	printf '  memory    %-8s peak RSS %s kB -> %s kB\n' "$side" \
		"$(awk '$1 == "before" && $2 == "VmHWM:" { print $3 }' "$out/memory_$side.txt")" \
		"$(awk '$1 == "after" && $2 == "VmHWM:" { print $3 }' "$out/memory_$side.txt")"
}

# measure_all BENCH: all runs of BENCH, alternating which side goes first.
measure_all()
{
	local b=$1 r
	for ((r = 1; r <= runs; r++)); do
		# alternate which side goes first
		if ((r % 2)); then
			measure "$b" measured "$r"
			measure "$b" baseline "$r"
		else
			measure "$b" baseline "$r"
			measure "$b" measured "$r"
		fi
	done
}

# reserve_hugepages: makes vm.nr_hugepages large enough for a server with shared_buffers =
# $cache (its shared memory is shared_buffers and a few percent more: WAL buffers, locks),
# saving what it was for give_back_hugepages.  The kernel may give fewer pages than asked
# when memory is fragmented; the server then falls back to ordinary pages (huge_pages =
# try, the default), and hugepages_used says so.
reserve_hugepages()
{
	local page_kb need have
	page_kb=$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo 2>/dev/null)
	have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null) || have=
	if [ -z "$page_kb" ] || [ -z "$have" ]; then
		echo "no huge pages on this machine: the cache is in ordinary pages"
		return 0
	fi
	need=$(((cache_kb + cache_kb / 16 + 256 * 1024) / page_kb))
	((have < need)) || return 0
	if ! echo "$need" 2>/dev/null >/proc/sys/vm/nr_hugepages; then
		echo "could not reserve $need huge pages (vm.nr_hugepages): the cache is in ordinary pages"
		return 0
	fi
	hugepages_before=$have
	echo "reserved $(cat /proc/sys/vm/nr_hugepages) huge pages of $page_kb kB (vm.nr_hugepages was $have)"
}

# hugepages_used: sets hugepage_note to how much of the server's shared memory is in huge
# pages, from the postmaster's memory map.
hugepage_note="ordinary pages"
hugepages_used()
{
	local pid huge_kb
	pid=$(head -n 1 "$(sr_cluster_datadir bench)/postmaster.pid" 2>/dev/null) || pid=
	huge_kb=$(awk '/^Size:/ { size = $2 } /^KernelPageSize:/ && $2 > 4 { sum += size } END { print sum + 0 }' \
		"/proc/$pid/smaps" 2>/dev/null) || huge_kb=0
	if ((huge_kb > 0)); then
		hugepage_note="$((huge_kb / 1024)) MB of the server's shared memory in huge pages"
	else
		hugepage_note="the server's shared memory in ordinary pages: no huge pages, or too few, reserved"
	fi
}

# cache_restart: restarts the cluster with shared_buffers = $cache and loads every
# relation of the cached benchmarks' databases into it, so that their first run does not
# fill the cache for the others.
cache_restart()
{
	local d dbs=() b side
	for b in "${cached[@]}"; do
		for side in measured baseline; do
			[[ " ${dbs[*]} " == *" ${side_db[$b.$side]} "* ]] || dbs+=("${side_db[$b.$side]}")
		done
	done
	psql_db -c "ALTER SYSTEM SET shared_buffers = '$cache'"
	[ "$hugepages" = 0 ] || reserve_hugepages
	sr_cluster_restart bench
	hugepages_used
	echo "restarted with shared_buffers = $(psql_db -At -c 'SHOW shared_buffers') ($hugepage_note), loading ${dbs[*]} into it"
	for d in "${dbs[@]}"; do
		psql_in "$d" -At -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
			-c "SELECT count(*) || ' relations, ' || pg_size_pretty(sum(pg_prewarm(c.oid)) * current_setting('block_size')::bigint)
				|| ' loaded into shared buffers in ' || current_database()
				FROM pg_class c WHERE c.relkind IN ('r', 'i', 't', 'm') AND c.relpersistence = 'p'"
	done
}

started=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
echo "measuring: ${benches[*]}; $runs runs of ${secs}s per side, one client"
for b in "${timed[@]}"; do
	[[ $b == *_cache ]] || measure_all "$b"
done
if [ "$memory" = 1 ]; then
	measure_memory tracked
	measure_memory plain
fi
if [ ${#cached[@]} -gt 0 ]; then
	cache_restart
	for b in "${cached[@]}"; do
		measure_all "$b"
	done
	give_back_hugepages
fi
elapsed=$(($(date +%s) - started))
load_at_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
so_note="sync_resolve.so sha256 $so_at_start (installed build; working tree $commit)"
if [ "$(so_sum)" != "$so_at_start" ]; then
	echo "warning: $so_file changed during the run: the results mix two builds" >&2
	so_note="$so_note — WARNING: it changed during the run (now $(so_sum)): the results mix two builds"
fi

# ---- the tables ----------------------------------------------------------------------
table=$(
	echo "| benchmark: measured vs baseline | measured tps | baseline tps | throughput measured/baseline | time per op measured/baseline | DESIGN §15 target |"
	echo "|---|---:|---:|---:|---:|---|"
	for b in "${timed[@]}"; do
		t=$(median <"$out/${b}_measured.tps")
		p=$(median <"$out/${b}_baseline.tps")
		awk -v name="${title[$b]} vs ${base_title[$b]}" -v t="$t" -v p="$p" -v b="$b" \
			-v goal="${target[$b]:-}" '
			BEGIN {
				thr = t / p; tim = p / t; verdict = "—"
				if (goal != "") {
					split(goal, g, " ")
					limit = g[3] + 0
					if (g[1] == "time") met = (tim <= limit)
					else met = (thr >= limit)
					verdict = goal ": " (met ? "met" : "NOT met")
				}
				if (b == "batch")
					printf "| %s | %.2f (%.0f rows/s) | %.2f (%.0f rows/s) | %.3f | %.2fx | %s |\n", name, t, t * 1000, p, p * 1000, thr, tim, verdict
				else
					printf "| %s | %.1f | %.1f | %.3f | %.2fx | %s |\n", name, t, p, thr, tim, verdict
			}'
	done
)
runs_table=$(
	echo "| benchmark | side | tps of each run |"
	echo "|---|---|---|"
	for b in "${timed[@]}"; do
		for side in measured baseline; do
			echo "| $b | $side | $(awk -v b="$b" '{ printf "%s" (b == "batch" ? "%.2f" : "%.1f"), (NR > 1 ? ", " : ""), $1 }' "$out/${b}_${side}.tps") |"
		done
	done
)
# work BENCH SIDE: per transaction, over all its runs: WAL records, full-page images,
# WAL bytes, buffers found in shared buffers, buffers read, and microseconds of CPU of
# pgbench's backend ("-" when /proc could not tell) -- from $out/BENCH_SIDE.work:
# transactions, the counters before (2-6) and after (7-11), CPU clock ticks (12).
clock_ticks=$(getconf CLK_TCK 2>/dev/null || echo 100)
work()
{
	awk -v hz="$clock_ticks" '{ n += $1; rec += $7 - $2; fpi += $8 - $3; bytes += $9 - $4
			hit += $10 - $5; rd += $11 - $6; if (NF >= 12) { cn += $1; cpu += $12 } }
		END { if (n > 0) printf "%.2f %.3f %.0f %.1f %.2f %s\n", rec / n, fpi / n, bytes / n, hit / n, rd / n,
			(cn > 0 ? sprintf("%.0f", cpu * 1000000 / hz / cn) : "-") }' \
		"$out/${1}_$2.work"
}
work_table=$(
	echo "| benchmark (each cell: measured / baseline) | WAL records per transaction | full-page images per transaction | WAL bytes per transaction | buffers found in shared buffers per transaction | buffers read per transaction | CPU of the backend, µs per transaction | WAL bytes measured/baseline | buffers measured/baseline | CPU measured/baseline |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for b in "${timed[@]}"; do
		read -r mr mf mb mh md mc <<<"$(work "$b" measured)"
		read -r br bf bb bh bd bc <<<"$(work "$b" baseline)"
		awk -v b="$b" -v mr="$mr" -v mf="$mf" -v mb="$mb" -v mh="$mh" -v md="$md" -v mc="$mc" \
			-v br="$br" -v bf="$bf" -v bb="$bb" -v bh="$bh" -v bd="$bd" -v bc="$bc" 'BEGIN {
			printf "| %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %.2fx | %.2fx | %s |\n",
				b, mr, br, mf, bf, mb, bb, mh, bh, md, bd, mc, bc, (bb > 0 ? mb / bb : 0),
				(bh + bd > 0 ? (mh + md) / (bh + bd) : 0),
				(mc != "-" && bc != "-" && bc > 0 ? sprintf("%.2fx", mc / bc) : "-") }'
	done
)
memory_table=
if [ "$memory" = 1 ]; then
	memory_table=$(
		echo "| one fresh backend, 10,000 rows in one call | private memory (RssAnon) before | peak private memory during the call | growth | peak RSS (VmHWM) before -> after | shared buffers touched (RssShmem) after | memory contexts held after the call |"
		echo "|---|---:|---:|---:|---:|---:|---:|"
		for side in tracked plain; do
			awk -v side="$side" '
				$1 == "before" && $2 == "VmHWM:" { hwm0 = $3 }
				$1 == "before" && $2 == "RssAnon:" { anon0 = $3 }
				$1 == "after" && $2 == "VmHWM:" { hwm1 = $3 }
				$1 == "after" && $2 == "RssShmem:" { shm = $3 }
				$1 == "peak" && $2 == "RssAnon:" { peak = $3 }
				$1 == "contexts:" { ctx = $2 }
				END {
					name = side == "tracked" ? "apply_batch() from crm, 1 column changed per row" \
						: "the same rows from the same JSON as one plain INSERT ... ON CONFLICT DO UPDATE"
					if (hwm1 == "" || peak == 0) { printf "| %s | unknown (no /proc/PID/status) | | | | | |\n", name; exit }
					printf "| %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f -> %.1f MiB | %.1f MiB | %.1f MiB |\n", name,
						anon0 / 1024, peak / 1024, (peak - anon0) / 1024, hwm0 / 1024, hwm1 / 1024, shm / 1024,
						ctx / 1048576
				}' "$out/memory_$side.txt"
		done
	)
fi

if [ -s "$out/checkpoints" ]; then
	ckpt_note="WARNING, checkpoints fell inside these runs, which measured them too: $(paste -sd ';' "$out/checkpoints" | sed 's/;/; /g')"
else
	ckpt_note="none fell inside any"
fi
pg_version=$(psql_db -At -c 'SELECT version()')
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
cache_note=
if [ ${#cached[@]} -gt 0 ]; then
	cache_note="; ${cached[*]}: shared_buffers = $cache, after a restart, their databases loaded into it, $hugepage_note"
fi

{
	echo "# sync_resolve benchmarks"
	echo
	echo "Written by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'); setting up took ${setup_secs}s, measuring ${elapsed}s."
	echo
	echo "## Machine"
	echo
	echo "- CPU: ${cpu:-unknown}, \`nproc\` = $(nproc)"
	echo "- memory: ${mem:-unknown}"
	echo "- kernel: \`uname -r\` = $(uname -r)"
	echo "- PostgreSQL: $pg_version"
	echo "- cluster: throwaway (test/lib.sh), settings: ${SR_TEST_SETTINGS[*]} ${bench_settings[*]} fsync=off, the rest default (shared_buffers = $shared_buffers$cache_note)"
	echo "- build: $so_note"
	echo "- load average (1, 5, 15 min) before measuring: $load_at_start; after: $load_at_end"
	echo "  (pgbench and its backend keep up to two CPUs busy: anything else running skews the numbers)"
	echo
	if [ ${#timed[@]} -gt 0 ]; then
		echo "## Results (median of $runs runs of ${secs}s per side, one client)"
		echo
		echo "$table"
		echo
		echo "Throughput measured/baseline: the measured side's tps over the baseline's (1 = as fast)."
		echo "Time per op measured/baseline: the inverse, how many times longer one operation takes."
		echo "For the batch, one transaction applies 1,000 rows on each side, so the per-row ratio"
		echo "is the tps ratio."
		echo
		echo "- local, apply, conflict, source, batch: sync_resolve (measured) against plain"
		echo "  PostgreSQL doing the same write to an untracked copy of the table (baseline)."
		echo "- solo: the apply() of \"apply\" on item_solo, the same rows tracked for crm alone,"
		echo "  against the same plain upsert as \"apply\".  DESIGN §15 states the apply() target with"
		echo "  \"shadow and history included\": solo makes exactly those writes (the row, crm's base,"
		echo "  the local metadata, one 'applied' event).  \"apply\" also queues the change for"
		echo "  billing (an outbox entry and an 'outbound_queued' event), as a hub tracking two"
		echo "  systems must; both carry the target."
		echo "- floor: for the image of \"apply\" (crm changes qty of one row, no conflict), apply()"
		echo "  makes six writes: the row, crm's base and the row's local metadata in the shadow, two"
		echo "  history rows ('applied', 'outbound_queued') and the change queued for billing"
		echo "  (DESIGN §4, §7, §9).  bench/pgbench/floor_writes.sql makes the same six writes by"
		echo "  hand in one SQL statement (data-modifying CTEs) with no logic at all, on copies of"
		echo "  item_apply, its shadow, the history and the outbox with the same columns, defaults,"
		echo "  indexes and fillfactors (bench/floor.sql); bench/check.sql makes sure it writes what"
		echo "  apply() writes.  Against the plain upsert it measures what those writes cost"
		echo "  PostgreSQL by themselves: the floor under \"apply\" for any implementation in SQL."
		echo "- logic: apply() against that statement: what sync_resolve's own work (finding and"
		echo "  locking the row, reading the shadow, deciding, building the values and the history)"
		echo "  adds to its writes.  Above 1, apply() is faster than its writes made by SQL."
		echo "- reference: apply() against ref_apply(), the same resolution written by hand in"
		echo "  PL/pgSQL (bench/reference.sql): the same reads, decisions and writes -- the row, the"
		echo "  source's base and the local metadata in its own shadow, one history row per decision"
		echo "  in a copy of sync_resolve.event, the change queued for billing in a copy of the outbox."
		echo "  bench/check.sql makes sure that for the benchmarked image both write the same row,"
		echo "  base, metadata, history and outbox entry, and decide a conflict alike.  The reference"
		echo "  is static SQL for this one table and leaves out every check the benchmark does not"
		echo "  reach (delivery ids, versions, echoes, groups, writers, mapping, reviews): if anything"
		echo "  it flatters PL/pgSQL."
		echo "- rows100k, rows1m, history: the apply() of \"apply\" against the same on a table of"
		echo "  10,000 rows with no history, in the same run, alternating.  Each side runs in a"
		echo "  database of its own, built alike by bench/setup_scale.sql: item_apply with the same"
		echo "  columns and rows built the same way, crm's base and the local metadata of every row"
		echo "  in the shadow, filled by apply_batch() itself (crm sends every row as it is, then with"
		echo "  qty changed); only the number of rows, or the history, differs.  The history"
		echo "  database holds $(commas "$history") events in sync_resolve.event (its fill's own events,"
		echo "  copied back in time) and is not emptied between runs: each run starts from that plus"
		echo "  what earlier runs added (the count heads each log).  Every other database's history is"
		echo "  emptied before every run.  At every size apply() updates the row's shadow rows in"
		echo "  place, and merges the change into the entry waiting for billing that"
		echo "  bench/between_runs.sql (-v fill_outbox=1) put in the outbox for every row before the"
		echo "  run: with the outbox left empty, nothing claiming it during a run, at 10,000 rows"
		echo "  most changes would merge into the entry an earlier change of the same row left, while"
		echo "  at $(commas "$rows_l") rows almost every one would queue a new entry -- a tenth more work"
		echo "  (bench/instructions.sh, apply against apply_new), and not the same operation.  Each"
		echo "  log ends with the outbox's size after the run: the number of rows when every change"
		echo "  merged."
		echo "- plain1m: the plain upsert of \"apply\" at $(commas "$rows_l") rows against 10,000 (the same"
		echo "  databases): how much of rows1m's cost is PostgreSQL's own, once table and indexes"
		echo "  outgrow shared_buffers ($shared_buffers here) and the CPU caches."
		echo "- rows1m_cache, plain1m_cache: rows1m and plain1m again, measured last, after the"
		echo "  cluster was restarted with shared_buffers = $cache and every relation of their"
		echo "  databases was loaded into it (pg_prewarm), as a server sized for a table of"
		echo "  $(commas "$rows_l") rows would hold it ($hugepage_note: a cache of gigabytes in"
		echo "  pages of 4 kB costs a miss of the CPU's address translation cache on nearly every"
		echo "  buffer a backend touches, which PostgreSQL's documentation advises huge pages"
		echo "  against).  At $shared_buffers, a run over $(commas "$rows_l") rows keeps"
		echo "  evicting pages it needs again (the buffers read per transaction, below); with the"
		echo "  data in the cache, what the size still costs is the number of pages: each run starts"
		echo "  at a checkpoint, and the first change of a page after it writes the whole page to"
		echo "  the WAL (full-page images, below), which a run over many pages does far more often."
		echo "- claim: every change sync_resolve queues is claimed and acknowledged once by the"
		echo "  integration code.  One pgbench transaction is a worker's turn: claim_outbound('crm',"
		echo "  max => 1) commits, then ack_outbound() of the entry (as the README asks: the claim"
		echo "  committed before sending).  The pool: bench/claim_pool.sql changes each of the"
		echo "  $(commas "$claim_rows") rows of item_claim (tracked for crm alone, crm's base holding"
		echo "  every row) locally before every run, so that one entry per row waits, oldest first,"
		echo "  and copies the entries into plain_queue, a copy of the outbox with its columns,"
		echo "  defaults, indexes and fillfactor.  The baseline makes the same two state changes by"
		echo "  hand in the statement claim_outbound() runs (bench/pgbench/claim_plain.sql); the"
		echo "  acknowledgement also advances crm's base in the shadow and writes an"
		echo "  'outbound_sent' event, which the baseline does not.  Entries acknowledged stay"
		echo "  in the outbox as sent, at the oldest ids, as in production."
		echo
		echo "Every run of the same benchmark lasts the same ${secs}s on both sides, starting from"
		echo "the same state (bench/between_runs.sql: outbox truncated, history pruned, VACUUM"
		echo "ANALYZE, CHECKPOINT); within a run the tracked side's outbox and history grow with"
		echo "the work it does, which is part of what it costs.  bench/setup.sql changes every row"
		echo "of item_local once before the first run, so that the local UPDATE is measured with"
		echo "the shadow holding every row's metadata (the steady state), not while it fills up."
		echo
		echo "$runs_table"
		echo
		echo "## What one transaction costs, counted"
		echo
		echo "$work_table"
		echo
		echo "Counted, not timed, over all runs of a side: the cluster's WAL (pg_stat_wal: records,"
		echo "full-page images, bytes) and the buffers the benchmark's database found in shared"
		echo "buffers or read into them (pg_stat_database: blks_hit, blks_read), from just"
		echo "before pgbench starts to just after its backend has gone, over the transactions"
		echo "pgbench ran.  These do not depend on how busy the machine is: where the tps ratios"
		echo "above swing from run to run, this says what each side does.  The CPU column is timed,"
		echo "but only the server's side of it: the user and system time of pgbench's backend"
		echo "(/proc/PID/stat, read every 0.2 s while it runs), without pgbench's own time and the"
		echo "round trips, which each transaction pays alike on both sides and which make the tps"
		echo "ratios above look closer to 1 than the server's cost is.  Every run starts right after a CHECKPOINT"
		echo "(bench/between_runs.sql), so the first change of each page in a run writes a"
		echo "full-page image: a run over a large table, whose changes are spread over many pages,"
		echo "writes far more of them than a run over a small one.  No other checkpoint may fall"
		echo "inside a run (max_wal_size and checkpoint_timeout are set for that); counted from"
		echo "pg_stat_bgwriter around every run: $ckpt_note.  For the batch, a transaction"
		echo "is 1,000 rows."
		echo
	fi
	if [ "$memory" = 1 ]; then
		echo "## Peak memory of one backend"
		echo
		echo "$memory_table"
		echo
		echo "bench/memory.sql, in a fresh connection each, inside a transaction that is rolled back:"
		echo "the backend's /proc/PID/status before and after the call, and its private (anonymous)"
		echo "resident memory, RssAnon, sampled every 5 ms during the call: the peak is the largest"
		echo "sample.  VmHWM, the kernel's own peak, also counts every shared buffer the backend"
		echo "touched (RssShmem), so it grows with the pages the call reads and writes, not only with"
		echo "what it allocates.  Memory contexts: what the backend still holds when the call has"
		echo "returned, before the transaction ends (pg_backend_memory_contexts), caches included."
		echo
	fi
	echo "## Notes"
	echo
	echo "- The outbox is emptied after VACUUM ANALYZE, not before (bench/between_runs.sql):"
	echo "  sync_resolve keeps its SPI plans for the life of a session, and a plan made while"
	echo "  the outbox (or a shadow) is empty *and analyzed* seq-scans it on every call however"
	echo "  large it grows, until an ANALYZE of that table replans it.  That state is measured"
	echo "  here only as a known problem, not as the steady state.  bench/setup_scale.sql"
	echo "  analyzes the shadow after every apply_batch() of its fill for the same reason."
	echo "- Outside the claim benchmark nothing claims the outbox during a run: later changes"
	echo "  of a row merge into its waiting entry (at most one per row and target)."
	echo
	echo "## Commands"
	echo
	echo '```sh'
	echo "make bench    # SR_BENCH_SECONDS=$secs SR_BENCH_RUNS=$runs SR_BENCH_SCALE=$scale SR_BENCH_ONLY=\"${benches[*]}\""
	echo "# once: bench/setup.sql, then bench/check.sql, in database $db"
	for d in "${scale_dbs[@]}"; do
		case $d in
		sr_bench_rows10k) echo "# once: psql -d $d -v rows=10000 -v history=0 -f bench/setup_scale.sql" ;;
		sr_bench_rows100k) echo "# once: psql -d $d -v rows=$rows_m -v history=0 -f bench/setup_scale.sql" ;;
		sr_bench_rows1m) echo "# once: psql -d $d -v rows=$rows_l -v history=0 -f bench/setup_scale.sql" ;;
		sr_bench_history) echo "# once: psql -d $d -v rows=10000 -v history=$history -f bench/setup_scale.sql" ;;
		sr_bench_claim) echo "# once: psql -d $d -v rows=$claim_rows -f bench/setup_claim.sql" ;;
		esac
	done
	echo "# before every run:  psql -d DATABASE -f bench/between_runs.sql  (-v keep_history=1 in sr_bench_history; -v fill_outbox=1 before the apply() runs of sr_bench_rows* and sr_bench_history)"
	if [[ " ${scale_dbs[*]} " == *" sr_bench_claim "* ]]; then
		echo "#   in sr_bench_claim first psql -d sr_bench_claim -f bench/claim_pool.sql, then between_runs.sql with -v keep_outbox=1"
	fi
	pgbench_lines()
	{
		local b side
		for b in "$@"; do
			for side in measured baseline; do
				echo "pgbench -n -c 1 -M prepared -T $secs -D rows=${side_rows[$b.$side]} -f ${side_script[$b.$side]} ${side_db[$b.$side]}    # $b, $side"
			done
		done
	}
	for b in "${timed[@]}"; do
		[[ $b == *_cache ]] || pgbench_lines "$b"
	done
	if [ "$memory" = 1 ]; then
		echo "psql -d $db -v tracked=1 -f bench/memory.sql; psql -d $db -v tracked=0 -f bench/memory.sql"
	fi
	if [ ${#cached[@]} -gt 0 ]; then
		echo "# ALTER SYSTEM SET shared_buffers = '$cache', restart, then in each of their databases"
		echo "# SELECT pg_prewarm(oid) FROM pg_class WHERE relkind IN ('r', 'i', 't', 'm') AND relpersistence = 'p'"
		pgbench_lines "${cached[@]}"
	fi
	echo '```'
	echo
	echo "Runs alternate: odd runs start with the measured side, even runs with the baseline."
	echo "The pgbench logs (with the history each run wrote) are in bench/out/."
} >"$results"

if [ ${#timed[@]} -gt 0 ]; then
	echo
	echo "$table"
fi
if [ "$memory" = 1 ]; then
	echo
	echo "$memory_table"
fi
echo
echo "written to $results"
