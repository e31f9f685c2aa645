#!/usr/bin/env bash
#
# bench/run.sh: what `make bench` runs.  Measures sync_resolve against plain PostgreSQL
# doing the same work, on this machine, in one run (DESIGN §15):
#
#   local     a local UPDATE of one random row (10,000 rows) of a tracked table, vs the
#             same UPDATE of an untracked copy
#   apply     apply() from crm changing one column of a random row, no conflict, vs a
#             plain INSERT ... ON CONFLICT DO UPDATE of the same row into an untracked copy
#   conflict  apply() from crm where all five columns conflict ('latest' keeps the local
#             value and crm is told it through the outbox), vs the same plain upsert
#   source    UPDATE of one random row with SET sync_resolve.source = 'crm' (the before
#             trigger resolves it as apply() would), vs the same statements untracked
#   batch     apply_batch() of 1,000 rows from crm, vs one multi-row plain upsert of the
#             same rows built from the same JSON array
#
# Each side runs pgbench with one client (-n -c 1 -M prepared -T SECONDS) for the same
# number of seconds, RUNS times, alternating which side goes first; bench/between_runs.sql
# runs before every run (outbox truncated, history pruned, VACUUM ANALYZE, CHECKPOINT),
# so the outbox and the history do not grow from run to run.  The median tps of each
# side and their ratios are printed as a markdown table and written, with the machine
# and the commands, to bench/RESULTS.md.  pgbench logs go to bench/out/.
#
# Steps: the Debian packages (installed when root), make PG_CFLAGS=-Werror && make
# install (test/lib.sh), a throwaway cluster on port 55460 (or the next free one) with
# the test settings and synchronous_commit=off, bench/setup.sql, bench/check.sql (each
# tracked benchmark takes the path it claims to), then the runs.
#
# Environment:
#   SR_BENCH_SECONDS=N    seconds per run (default 15)
#   SR_BENCH_RUNS=N       runs per side and benchmark (default 3)
#   SR_BENCH_ONLY="a b"   only these benchmarks (default: local apply conflict source batch)
#   SR_BENCH_SKIP_BUILD=1 use the installed build as it is (no make, no make install)
#   SR_BENCH_PORT=N       cluster port (default 55460)
#   SR_KEEP_CLUSTER=1     leave the cluster running and print how to connect to it

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
sr_install_traps

secs=${SR_BENCH_SECONDS:-15}
runs=${SR_BENCH_RUNS:-3}
port=${SR_BENCH_PORT:-55460}
read -r -a benches <<<"${SR_BENCH_ONLY:-local apply conflict source batch}"
out=bench/out
results=bench/RESULTS.md
db=sr_bench

for v in "$secs" "$runs"; do
	if ! [[ $v =~ ^[1-9][0-9]*$ ]]; then
		echo "error: SR_BENCH_SECONDS and SR_BENCH_RUNS must be positive integers" >&2
		exit 2
	fi
done

declare -A title=(
	[local]="local UPDATE of 1 random row"
	[apply]="apply(), 1 column of 1 row, no conflict"
	[conflict]="apply(), 5 columns of 1 row, all conflicting (latest)"
	[source]="UPDATE of 1 row from a source (SET sync_resolve.source)"
	[batch]="apply_batch() of 1,000 rows, no conflict"
)
declare -A plain_title=(
	[local]="same UPDATE, untracked"
	[apply]="INSERT ... ON CONFLICT DO UPDATE, untracked"
	[conflict]="INSERT ... ON CONFLICT DO UPDATE of 5 columns, untracked"
	[source]="same SET + UPDATE, untracked"
	[batch]="one 1,000-row INSERT ... ON CONFLICT DO UPDATE from the same JSON, untracked"
)
# DESIGN §15: "at most 2x the time" (local), "at least half the throughput" (apply)
declare -A target=([local]="time <= 2x" [apply]="throughput >= 0.5x")
for b in "${benches[@]}"; do
	if [ -z "${title[$b]:-}" ]; then
		echo "error: unknown benchmark '$b' (known: ${!title[*]})" >&2
		exit 2
	fi
done

sr_ensure_packages
if [ "${SR_BENCH_SKIP_BUILD:-0}" = 1 ]; then
	echo "SR_BENCH_SKIP_BUILD=1: using the installed sync_resolve as it is"
else
	sr_build_install
fi
sr_cluster_start bench "$port" "${SR_TEST_SETTINGS[@]}" synchronous_commit=off
# the build measured: a make install during the run would mix two builds
so_file=$("$PG_CONFIG" --pkglibdir)/sync_resolve.so
so_sum()
{
	sha256sum "$so_file" | cut -c1-16
}
so_at_start=$(so_sum)
commit=$(git -C "$SR_ROOT" describe --always --dirty 2>/dev/null || echo unknown)
mkdir -p "$out"
# one make bench at a time: two would share the CPUs and each other's logs
exec 9>"$out/.lock"
if ! flock -n 9; then
	echo "error: another make bench is running (it holds $out/.lock)" >&2
	exit 1
fi
rm -f "$out"/*.log "$out"/*.tps

psql_db()
{
	sr_psql bench -q -d "$db" "$@"
}

echo "setting up database $db (5 pairs of tables, 10,000 rows each)"
sr_psql bench -q -c "CREATE DATABASE $db"
psql_db -f bench/setup.sql >"$out/setup.log"
psql_db -f bench/check.sql >>"$out/setup.log"

# median: the median of the numbers on standard input, one per line.
median()
{
	sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# measure BENCH SIDE RUN: one pgbench run; appends its tps to $out/BENCH_SIDE.tps.
measure()
{
	local b=$1 side=$2 r=$3 log tps failed
	log=$out/${b}_${side}_$r.log
	psql_db -f bench/between_runs.sql >/dev/null
	sr_with_cluster bench "$SR_PG_BINDIR/pgbench" -n -c 1 -M prepared -T "$secs" \
		-f "bench/pgbench/${b}_${side}.sql" "$db" >"$log" 2>&1 || {
		cat "$log" >&2
		echo "error: pgbench failed for $b ($side), run $r" >&2
		return 1
	}
	tps=$(awk '/^tps = / { print $3; exit }' "$log")
	failed=$(awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$log")
	if [ -z "$tps" ] || [ "${failed:-0}" != 0 ]; then
		cat "$log" >&2
		echo "error: no tps, or failed transactions, for $b ($side), run $r" >&2
		return 1
	fi
	if [ "$side" = tracked ]; then
		# what the run did, from the history it wrote (pruned before the next run)
		psql_db -At -c "SELECT kind || ': ' || count(*) FROM sync_resolve.event GROUP BY kind ORDER BY kind" \
			>>"$log"
	fi
	echo "$tps" >>"$out/${b}_${side}.tps"
	printf '  %-9s %-8s run %d: %10.1f tps\n' "$b" "$side" "$r" "$tps"
}

started=$(date +%s)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
echo "measuring: ${benches[*]}; $runs runs of ${secs}s per side, one client"
for b in "${benches[@]}"; do
	for ((r = 1; r <= runs; r++)); do
		# alternate which side goes first
		if ((r % 2)); then
			measure "$b" tracked "$r"
			measure "$b" plain "$r"
		else
			measure "$b" plain "$r"
			measure "$b" tracked "$r"
		fi
	done
done
elapsed=$(($(date +%s) - started))
load_at_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
so_note="sync_resolve.so sha256 $so_at_start (installed build; working tree $commit)"
if [ "$(so_sum)" != "$so_at_start" ]; then
	echo "warning: $so_file changed during the run: the results mix two builds" >&2
	so_note="$so_note — WARNING: it changed during the run (now $(so_sum)): the results mix two builds"
fi

# ---- the table ---------------------------------------------------------------------
table=$(
	echo "| benchmark (tracked vs plain) | tracked tps | plain tps | throughput tracked/plain | time per op tracked/plain | DESIGN §15 target |"
	echo "|---|---:|---:|---:|---:|---|"
	for b in "${benches[@]}"; do
		t=$(median <"$out/${b}_tracked.tps")
		p=$(median <"$out/${b}_plain.tps")
		awk -v name="${title[$b]} vs ${plain_title[$b]}" -v t="$t" -v p="$p" -v b="$b" \
			-v goal="${target[$b]:-}" '
			BEGIN {
				thr = t / p; tim = p / t; verdict = "—"
				if (goal ~ /^time/) verdict = goal ": " (tim <= 2 ? "met" : "NOT met")
				if (goal ~ /^throughput/) verdict = goal ": " (thr >= 0.5 ? "met" : "NOT met")
				if (b == "batch")
					printf "| %s | %.2f (%.0f rows/s) | %.2f (%.0f rows/s) | %.3f | %.1fx | %s |\n", name, t, t * 1000, p, p * 1000, thr, tim, verdict
				else
					printf "| %s | %.1f | %.1f | %.3f | %.1fx | %s |\n", name, t, p, thr, tim, verdict
			}'
	done
)
runs_table=$(
	echo "| benchmark | side | tps of each run |"
	echo "|---|---|---|"
	for b in "${benches[@]}"; do
		for side in tracked plain; do
			echo "| $b | $side | $(awk -v b="$b" '{ printf "%s" (b == "batch" ? "%.2f" : "%.1f"), (NR > 1 ? ", " : ""), $1 }' "$out/${b}_${side}.tps") |"
		done
	done
)

pg_version=$(psql_db -At -c 'SELECT version()')
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)

{
	echo "# sync_resolve benchmarks"
	echo
	echo "Written by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'); measuring took ${elapsed}s."
	echo
	echo "## Machine"
	echo
	echo "- CPU: ${cpu:-unknown}, \`nproc\` = $(nproc)"
	echo "- memory: ${mem:-unknown}"
	echo "- kernel: \`uname -r\` = $(uname -r)"
	echo "- PostgreSQL: $pg_version"
	echo "- cluster: throwaway (test/lib.sh), settings: ${SR_TEST_SETTINGS[*]} synchronous_commit=off fsync=off, the rest default"
	echo "- build: $so_note"
	echo "- load average (1, 5, 15 min) before measuring: $load_at_start; after: $load_at_end"
	echo "  (pgbench and its backend keep up to two CPUs busy: anything else running skews the numbers)"
	echo
	echo "## Results (median of $runs runs of ${secs}s per side, one client)"
	echo
	echo "$table"
	echo
	echo "Throughput tracked/plain: the tracked side's tps over the plain side's (1 = as fast)."
	echo "Time per op tracked/plain: the inverse, how many times longer one operation takes."
	echo "For the batch, one transaction applies 1,000 rows on each side, so the per-row ratio"
	echo "is the tps ratio."
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
	echo "## Notes"
	echo
	echo "- The outbox is emptied after VACUUM ANALYZE, not before (bench/between_runs.sql):"
	echo "  sync_resolve keeps its SPI plans for the life of a session, and a plan made while"
	echo "  the outbox (or a shadow) is empty *and analyzed* seq-scans it on every call however"
	echo "  large it grows, until an ANALYZE of that table replans it.  That state is measured"
	echo "  here only as a known problem, not as the steady state."
	echo "- Nothing claims the outbox during a run: later changes of a row merge into its"
	echo "  waiting entry (at most one per row and target)."
	echo
	echo "## Commands"
	echo
	echo '```sh'
	echo "make bench    # SR_BENCH_SECONDS=$secs SR_BENCH_RUNS=$runs"
	echo "# once: bench/setup.sql, then bench/check.sql, in database $db"
	echo "# before every run:  psql -d $db -f bench/between_runs.sql"
	for b in "${benches[@]}"; do
		for side in tracked plain; do
			echo "pgbench -n -c 1 -M prepared -T $secs -f bench/pgbench/${b}_${side}.sql $db"
		done
	done
	echo '```'
	echo
	echo "Runs alternate: odd runs start with the tracked side, even runs with the plain one."
	echo "The pgbench logs (with the history each tracked run wrote) are in bench/out/."
} >"$results"

echo
echo "$table"
echo
echo "written to $results"
