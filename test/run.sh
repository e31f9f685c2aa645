#!/usr/bin/env bash
#
# test/run.sh: what `make test` runs.  Sets everything up, then runs every test:
#
#   1. the Debian packages (installed when root), make PG_CFLAGS=-Werror, make install;
#   2. a throwaway cluster on port 55434 (or the next free one), removed at the end;
#   3. make installcheck: pg_regress on sql/ + expected/, then pg_isolation_regress on
#      specs/ (run as two make calls, so that a failing regression test does not hide
#      the isolation results);
#   4. pgTAP: every test/*.sql with pg_prove, in a database sr_tap holding the
#      extensions pgtap and sync_resolve;
#   5. every executable test/scripts/*.sh, which starts its own clusters with the
#      helpers of the file named by SR_TEST_LIB (test/lib.sh);
#   6. the server log: a server process that died on a signal is a failure.
#
# Each pg_regress test, isolation spec, pgTAP assertion and script counts as
# one test, and a step that could not run at all counts as one failure.  The last line
# printed is "N passed, N failed"; the exit status is 0 only when nothing failed.
#
# Environment:
#   SR_TEST_PORT=N     port of the cluster (default 55434)
#   SR_KEEP_CLUSTER=1  leave the clusters running and print how to connect to them

set -euo pipefail
shopt -s nullglob
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
sr_install_traps

passed=0
failed=0

# finish: prints the totals as the very last line and exits 0 only if nothing failed.
finish()
{
	if [ "${SR_KEEP_CLUSTER:-0}" = 1 ] && sr_cluster_host main >/dev/null 2>&1; then
		echo
		sr_cluster_info main
		echo "  databases: contrib_regression, isolation_regression, sr_tap"
		sr_cluster_forget main
	fi
	echo
	echo "$passed passed, $failed failed"
	if [ "$failed" -ne 0 ]; then
		exit 1
	fi
	exit 0
}

# setup_failed WHAT: nothing can be tested; one failure.
setup_failed()
{
	echo "error: $1, so no test could run" >&2
	failed=$((failed + 1))
	finish
}

# regress_counts FILE: "PASSED FAILED" from pg_regress / pg_isolation_regress output
# (PostgreSQL 15), whose result lines look like
#   test vclock                       ... ok           12 ms
#   test apply                        ... FAILED       34 ms
#   test crash                        ... FAILED (test process exited with exit code 2)     1221 ms
#        parallel_member              ... ok           10 ms     (in a parallel group)
#   test flaky                        ... failed (ignored)   8 ms
# A failure that pg_regress was told to ignore still counts as failed here.  When other
# output lands between "... " and the result, the result is taken from a later line.
regress_counts()
{
	awk '
		function judge(s)
		{
			if (s ~ /^ok( |$)/) { pass++; return 1 }
			if (s ~ /^(FAILED|failed \(ignored\))/) { fail++; return 1 }
			return 0
		}
		/^(test |     )[^ ]+ +\.\.\.( |$)/ {
			s = $0
			sub(/^(test |     )[^ ]+ +\.\.\. */, "", s)
			pending = !judge(s)
			next
		}
		pending && judge($0) { pending = 0 }
		END { if (pending) fail++; print pass + 0, fail + 0 }
	' "$1"
}

# run_installcheck LABEL DIFFS [make variable=value ...]: make installcheck against the
# cluster, counted; on failure shows the file of differences.
run_installcheck()
{
	local label=$1 diffs=$2 out rc p f
	shift 2
	out=$(mktemp)
	echo
	echo "== $label"
	if sr_with_cluster main make -s --no-print-directory installcheck "$@" 2>&1 | tee "$out"; then
		rc=0
	else
		rc=$?
	fi
	read -r p f < <(regress_counts "$out")
	rm -f "$out"
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$rc" -ne 0 ]; then
		if [ -s "$diffs" ]; then
			echo "---- $diffs ----"
			cat "$diffs"
			echo "----"
		fi
		if [ "$f" -eq 0 ]; then
			echo "error: $label stopped (exit status $rc) without reporting a failed test" >&2
			failed=$((failed + 1))
		fi
	fi
}

# run_tap_file FILE: pg_prove on one pgTAP file; counts its assertions.  A "not ok" marked
# TODO passes; every planned assertion that never ran (the file died) fails.
run_tap_file()
{
	local file=$1 out rc p f
	if out=$(sr_with_cluster main pg_prove --verbose --nocolor -b "$SR_PG_BINDIR/psql" \
		-d sr_tap "$file" 2>&1); then
		rc=0
	else
		rc=$?
	fi
	read -r p f < <(awk '
		/^1\.\.[0-9]+/ { plan = substr($0, 4) + 0 }
		/^ok [0-9]+/ { ok++ }
		/^not ok [0-9]+/ { if (tolower($0) ~ /# todo/) ok++; else nok++ }
		END {
			missing = plan - ok - nok
			print ok + 0, nok + (missing > 0 ? missing : 0)
		}' <<<"$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -eq 0 ]; then
		echo "$file .. ok ($p assertions)"
	else
		echo "$out"
		echo "$file .. FAILED ($p passed, $f failed)"
	fi
}

echo "== setup"
sr_ensure_packages || setup_failed "required packages are missing"
sr_build_install || setup_failed "building or installing failed"
sr_cluster_start main "${SR_TEST_PORT:-55434}" "${SR_TEST_SETTINGS[@]}" ||
	setup_failed "the test cluster did not start"

# Results of an earlier run must not be mistaken for this one's.
rm -rf results output_iso regression.diffs regression.out

# --- pg_regress and isolation -----------------------------------------------------------
regress_files=(sql/*.sql)
isolation_files=(specs/*.spec)
if [ ${#regress_files[@]} -gt 0 ]; then
	run_installcheck "pg_regress (sql/)" regression.diffs ISOLATION=
else
	echo "(no pg_regress tests in sql/)"
fi
if [ ${#isolation_files[@]} -gt 0 ]; then
	run_installcheck "isolation (specs/)" output_iso/regression.diffs REGRESS=
else
	echo "(no isolation specs in specs/)"
fi

# --- pgTAP -------------------------------------------------------------------------------
tap_files=(test/*.sql)
if [ ${#tap_files[@]} -gt 0 ]; then
	echo
	echo "== pgTAP (test/*.sql)"
	if sr_psql main -q -c 'CREATE DATABASE sr_tap' &&
		sr_psql main -d sr_tap -q -c 'CREATE EXTENSION pgtap' \
			-c 'CREATE EXTENSION sync_resolve'; then
		for file in "${tap_files[@]}"; do
			run_tap_file "$file"
		done
	else
		echo "error: could not prepare database sr_tap for pgTAP" >&2
		failed=$((failed + 1))
	fi
fi

# --- scripts that start their own clusters -----------------------------------------------
if [ -d test/scripts ]; then
	for script in test/scripts/*.sh; do
		if [ ! -x "$script" ]; then
			echo "note: $script is not executable, so it is not run" >&2
			continue
		fi
		echo
		echo "== script: $script"
		if SR_TEST_LIB="$SR_ROOT/test/lib.sh" "$script"; then
			echo "$script .. ok"
			passed=$((passed + 1))
		else
			echo "$script .. FAILED (exit status $?)"
			failed=$((failed + 1))
		fi
	done
fi

# --- crashes -----------------------------------------------------------------------------
if sr_cluster_crashed main; then
	echo "error: a server process crashed during the tests (see the log above)" >&2
	failed=$((failed + 1))
fi

finish
