#!/usr/bin/env bash
#
# bench/profile.sh [BENCH [SIDE]]: profile one benchmark of bench/run.sh with perf.
# Not part of make bench.  Starts a throwaway cluster (port 55461 or the next free
# one), sets it up as bench/run.sh does, runs pgbench with bench/pgbench/BENCH_SIDE.sql
# (default: local tracked), and samples the backend serving pgbench with
# `perf record -g -p PID` for SR_PROFILE_SECONDS (default 15).  Writes the top symbols
# (self time, and with children) to bench/out/perf_BENCH_SIDE.txt and prints them.
#
# Needs perf (linux-perf) and permission to sample the backend (root, or
# kernel.perf_event_paranoid <= 1 for the server's user).  The Debian postgres binary is
# stripped: only its exported functions have names; static ones show as addresses.
#
# The apply scripts are run on their 10,000-row tables (pgbench -D rows=10000).
#
# Environment: SR_PROFILE_SECONDS=N, SR_BENCH_SKIP_BUILD=1 (as for bench/run.sh),
# SR_PROFILE_CALLGRAPH=dwarf for call graphs through functions built without frame
# pointers, the postgres binary's included (default fp: perf record -g).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
sr_install_traps

bench=${1:-local}
side=${2:-tracked}
secs=${SR_PROFILE_SECONDS:-15}
script=bench/pgbench/${bench}_${side}.sql
out=bench/out
db=sr_bench
[ -f "$script" ] || { echo "error: no $script" >&2; exit 2; }
command -v perf >/dev/null 2>&1 || { echo "error: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }

sr_ensure_packages
if [ "${SR_BENCH_SKIP_BUILD:-0}" != 1 ]; then
	sr_build_install
fi
sr_cluster_start prof 55461 "${SR_TEST_SETTINGS[@]}" synchronous_commit=off
mkdir -p "$out"
sr_psql prof -q -c "CREATE DATABASE $db"
sr_psql prof -q -d "$db" -f bench/setup.sql >/dev/null
sr_psql prof -q -d "$db" -f bench/between_runs.sql >/dev/null

sr_with_cluster prof "$SR_PG_BINDIR/pgbench" -n -c 1 -M prepared -T $((secs + 10)) -D rows=10000 \
	-f "$script" "$db" >"$out/perf_pgbench.log" 2>&1 &
pgbench_pid=$!
pid=
for _ in $(seq 50); do
	sleep 0.2
	pid=$(sr_psql prof -At -d "$db" -c \
		"SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' AND pid <> pg_backend_pid() LIMIT 1")
	[ -z "$pid" ] || break
done
if [ -z "$pid" ]; then
	echo "error: no pgbench backend found" >&2
	exit 1
fi
sleep 2 # past the start
data=$out/perf_${bench}_${side}.data
perf record -q --call-graph "${SR_PROFILE_CALLGRAPH:-fp}" -o "$data" -p "$pid" -- sleep "$secs" 2>"$out/perf_record.log" || {
	cat "$out/perf_record.log" >&2
	echo "error: perf could not sample backend $pid" >&2
	exit 1
}
wait "$pgbench_pid" || true

report=$out/perf_${bench}_${side}.txt
{
	echo "# perf, $script, backend $pid, ${secs}s; $(awk '/^tps = / { print $1, $2, $3 }' "$out/perf_pgbench.log")"
	echo
	echo "## self time, top 40 symbols"
	perf report -i "$data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | awk '!/^#/ && /%/ && ++n <= 40'
	echo
	echo "## with children, top 60 (call graphs need frame pointers: partial for postgres)"
	perf report -i "$data" --children --sort dso,sym --stdio -g none 2>/dev/null | awk '!/^#/ && /%/ && ++n <= 60'
} >"$report"
cat "$report"
