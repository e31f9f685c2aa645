#!/usr/bin/env bash
#
# bench/instructions.sh [SCENARIO ...]: how many CPU instructions one statement of each
# scenario costs the backend, counted by valgrind (callgrind).  Not part of make bench.
#
# Time on this kind of machine (virtual, shared) swings by a quarter from run to run, so
# that a change that saves a tenth of a path's work hides in the noise of bench/run.sh.
# An instruction count does not swing: run this before and after a change to the C code
# (git stash; bench/instructions.sh >before; git stash pop; bench/instructions.sh >after)
# to see what the change saved on each path.  It counts work, not time: a cache miss or
# a system call costs far more than its instructions, which is what make bench measures.
#
# Sets bench/setup.sql up in a throwaway cluster, stops the cluster, and runs each
# scenario's statements in a single-user backend (postgres --single: each statement its
# own transaction) under callgrind twice, with 100 and with 100 + N statements: the
# difference over N is one statement's cost, without the backend's start and the cache
# loading of the first statements.  Statements are sent as text, not prepared: each pays
# its own parse and plan, the plain baselines as well.  Every run starts from the same
# freshly set up database and draws the same rows and values (fixed seeds), so that two
# runs of the same build count the same to within a fraction of a percent.
#
# Scenarios (default: all, in this order; each changes the database for the next):
#   local_plain  UPDATE of one random row of item_local_plain (untracked), 10,000 rows
#   local        the same UPDATE of item_local (tracked: trigger, metadata, outbox), over
#                200 rows, so that each change merges into the entries waiting for it
#   local_new    the same over 10,000 rows, the outbox emptied first: new entries queued
#   apply_plain  INSERT ... ON CONFLICT DO UPDATE of qty of one row of item_apply_plain
#   apply        apply() of crm's qty of one of 200 rows of item_apply: no conflict, the
#                change merged into billing's waiting entry
#   apply_new    the same over 10,000 rows, the outbox emptied first: a new entry queued
#
# Needs valgrind (apt-get install valgrind).  Environment: SR_INSTR_N (default 1000),
# SR_BENCH_SKIP_BUILD=1 (use the installed build, as for bench/run.sh).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
sr_install_traps

all=(local_plain local local_new apply_plain apply apply_new)
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=("${all[@]}")
n=${SR_INSTR_N:-1000}
db=sr_bench
if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -eq 0 ]; then
	echo "error: SR_INSTR_N must be a positive number" >&2
	exit 2
fi
for s in "${scenarios[@]}"; do
	[[ " ${all[*]} " == *" $s "* ]] || { echo "error: no scenario $s (${all[*]})" >&2; exit 2; }
done
command -v valgrind >/dev/null 2>&1 || { echo "error: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

sr_ensure_packages
if [ "${SR_BENCH_SKIP_BUILD:-0}" != 1 ]; then
	sr_build_install
fi
sr_cluster_start instr 55462 "${SR_TEST_SETTINGS[@]}" synchronous_commit=off
sr_psql instr -q -c "CREATE DATABASE $db"
sr_psql instr -q -d "$db" -f bench/setup.sql >/dev/null
sr_psql instr -q -d "$db" -f bench/between_runs.sql >/dev/null
dir=$(sr_cluster_dir instr)
sr__as_server "$dir" "$SR_PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null

# statements SCENARIO COUNT SEED: the scenario's statements, one per line.
statements()
{
	local rows=10000 first=
	case $1 in
	local | apply) rows=200 ;;
	esac
	case $1 in
	local_new | apply_new) first="TRUNCATE sync_resolve.outbox;" ;;
	esac
	awk -v n="$2" -v seed="$3" -v rows="$rows" -v first="$first" -v what="$1" 'BEGIN {
		q = sprintf("%c", 39)
		srand(seed)
		if (first != "")
			print first
		for (i = 0; i < n; i++) {
			id = 1 + int(rand() * rows)
			v = 1 + int(rand() * 1000000)
			if (what == "local_plain")
				printf "UPDATE item_local_plain SET qty = qty + 1 WHERE id = %d;\n", id
			else if (what ~ /^local/)
				printf "UPDATE item_local SET qty = qty + 1 WHERE id = %d;\n", id
			else if (what == "apply_plain")
				printf "INSERT INTO item_apply_plain (id, qty) VALUES (%d, %d) ON CONFLICT (id) DO UPDATE SET qty = excluded.qty;\n", id, v
			else
				printf "SELECT (sync_resolve.apply(%sitem_apply%s, %scrm%s, jsonb_build_object(%sid%s, %d, %sqty%s, %d), now())).outcome;\n", q, q, q, q, q, q, id, q, q, v
		}
	}'
}

# count SCENARIO COUNT SEED: the instructions a single-user backend runs for them.
count()
{
	local input=$dir/input.sql err=$dir/callgrind.err
	statements "$1" "$2" "$3" >"$input"
	chmod 644 "$input"
	if ! sr__as_server "$dir" valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
		"$SR_PG_BINDIR/postgres" --single -D "$dir/data" "$db" <"$input" >"$dir/single.out" 2>"$err"; then
		cat "$err" >&2
		echo "error: the single-user backend failed for $1" >&2
		exit 1
	fi
	if grep -q "ERROR" "$dir/single.out"; then
		grep -m 3 "ERROR" "$dir/single.out" >&2
		echo "error: statements of $1 failed" >&2
		exit 1
	fi
	awk '/Collected :/ { print $NF }' "$err"
}

declare -A per
echo "| scenario | instructions per statement |"
echo "|---|---:|"
for s in "${scenarios[@]}"; do
	a=$(count "$s" 100 1)
	b=$(count "$s" $((100 + n)) 2)
	per[$s]=$(((b - a) / n))
	echo "| $s | ${per[$s]} |"
done
for pair in local:local_plain local_new:local_plain apply:apply_plain apply_new:apply_plain; do
	m=${pair%%:*} p=${pair#*:}
	if [ -n "${per[$m]:-}" ] && [ -n "${per[$p]:-}" ] && [ "${per[$p]}" -gt 0 ]; then
		echo "$m / $p: $(awk -v a="${per[$m]}" -v b="${per[$p]}" 'BEGIN { printf "%.2f", a / b }')x"
	fi
done
echo "(N = $n statements per scenario; installed build: sync_resolve.so sha256 $(sha256sum "$("$PG_CONFIG" --pkglibdir)/sync_resolve.so" | cut -c1-16); this working tree $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' with changes to src/'))"
