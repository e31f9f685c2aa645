#!/usr/bin/env bash
#
# demo/run.sh: what `make demo` runs.  Installs what is missing, builds and installs the
# extension, starts a throwaway cluster (port 55435 or the next free one), creates an
# empty database sr_demo and plays demo/demo.sql in it with psql, showing the output as
# it comes.  The cluster is removed at the end, also after an error or Ctrl-C.
#
# Environment:
#   SR_DEMO_PORT=N     port of the cluster (default 55435)
#   SR_KEEP_CLUSTER=1  leave the cluster running afterwards, to look around with psql

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
sr_install_traps

if [ ! -f demo/demo.sql ]; then
	echo "error: demo/demo.sql does not exist yet" >&2
	exit 1
fi

sr_ensure_packages
sr_build_install
sr_cluster_start demo "${SR_DEMO_PORT:-55435}" "${SR_TEST_SETTINGS[@]}"
sr_psql demo -q -c 'CREATE DATABASE sr_demo'
echo

# Formatting is left to demo.sql; the pager is off so that nothing waits for a key.
if ! sr_psql demo -d sr_demo -q -P pager=off -f demo/demo.sql; then
	echo "error: the demo stopped at an error (see above)" >&2
	exit 1
fi
