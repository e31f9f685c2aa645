# shellcheck shell=bash
#
# test/lib.sh: helpers shared by test/run.sh, demo/run.sh and test/scripts/*.sh.
#
# Source it from a bash script (set -euo pipefail is fine), then for example:
#
#   . "${SR_TEST_LIB:-$(dirname "$0")/lib.sh}"
#   sr_install_traps                            # clusters go away on exit, Ctrl-C or kill
#   sr_ensure_packages                          # Debian packages (installed when root)
#   sr_build_install                            # make PG_CFLAGS=-Werror && make install
#   sr_cluster_start a 55436 "${SR_TEST_SETTINGS[@]}" max_connections=50
#                                               # NAME PORT [setting=value ...]
#   sr_psql a -c 'SELECT 1'
#   sr_with_cluster a make installcheck         # any client with PGHOST/PGPORT/PGUSER set
#   sr_cluster_stop a                           # or leave it to the trap
#
# Also: sr_cluster_host/_port/_dir/_datadir/_log/_connstr NAME (where NAME is; the port
# may differ from the one asked for), sr_cluster_crashed NAME (a process died on a
# signal?), sr_cluster_info NAME, sr_cluster_restart NAME, sr_cluster_forget NAME,
# sr_cluster_stop_all, sr_on_cleanup COMMAND, sr_cleanup, and SR_TEST_SETTINGS (the server settings used by make test and make demo).
#
# A cluster is throwaway: initdb into a fresh temporary directory, a Unix socket in that
# directory only (no TCP), fsync off, its own port.  It never touches the clusters of the
# system's postgresql package.  When the caller is root the server runs as the "postgres"
# OS user; clients always run as the caller and connect as database user "postgres"
# (trust authentication).  Several named clusters may run at once.
#
# Functions print why they fail and return non-zero; they never exit the caller's shell
# (except sr_cleanup, when given an exit status).  Under set -e an unchecked failure
# therefore stops the script, and the trap still removes the clusters.
#
# Environment:
#   SR_PG_MAJOR       PostgreSQL major version (default 15)
#   PG_CONFIG         pg_config to use (default /usr/lib/postgresql/$SR_PG_MAJOR/bin/pg_config)
#   SR_KEEP_CLUSTER   1: sr_cleanup leaves the clusters running and says how to reach them

# Sourced twice in one shell: keep the registry of running clusters.
if [ -n "${SR__LIB_LOADED:-}" ]; then
	return 0
fi
SR__LIB_LOADED=1

SR_PG_MAJOR=${SR_PG_MAJOR:-15}
SR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Connection settings a developer may have in the environment must not redirect clients.
unset PGDATABASE PGSERVICE PGHOSTADDR

# Server settings for test and demo clusters: what the extension, prepared transactions
# and logical replication between clusters need, and a log that shows only what matters
# (a crashed process is logged at LOG, which log_min_messages=warning still writes).
# shellcheck disable=SC2034 # used by the scripts that source this file
SR_TEST_SETTINGS=(
	max_prepared_transactions=10
	wal_level=logical
	max_wal_senders=10
	max_replication_slots=10
	log_min_messages=warning
)

# The registry of clusters started by this shell, by NAME.
declare -gA SR__DIR=()         # temporary directory: data/, sock/, server.log
declare -gA SR__PORT=()        # the port actually used
declare -gA SR__CRASH_SHOWN=() # a crash in its log was already reported

# --------------------------------------------------------------------------------------
# PostgreSQL binaries

# Sets PG_CONFIG (exported, so make uses the same one) and SR_PG_BINDIR.
sr__init_pg()
{
	if [ -z "${PG_CONFIG:-}" ]; then
		if [ -x "/usr/lib/postgresql/$SR_PG_MAJOR/bin/pg_config" ]; then
			PG_CONFIG=/usr/lib/postgresql/$SR_PG_MAJOR/bin/pg_config
		else
			PG_CONFIG=$(command -v pg_config) || {
				echo "error: pg_config not found (is postgresql-server-dev-$SR_PG_MAJOR installed?)" >&2
				return 1
			}
		fi
	fi
	export PG_CONFIG
	SR_PG_BINDIR=$("$PG_CONFIG" --bindir) || {
		echo "error: $PG_CONFIG --bindir failed" >&2
		return 1
	}
}

# --------------------------------------------------------------------------------------
# Packages and build

# Installs what is missing among the Debian packages needed to build and test (as root),
# or prints the command to run and returns 1 (as any other user).  Silent when all are there.
sr_ensure_packages()
{
	local pkgs=(build-essential make gcc
		"postgresql-$SR_PG_MAJOR" "postgresql-server-dev-$SR_PG_MAJOR"
		"postgresql-$SR_PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl)
	local missing=() p status

	if ! command -v dpkg-query >/dev/null 2>&1; then
		# Not Debian: check for the programs instead and let the user find the packages.
		for p in make gcc pg_config pg_prove; do
			command -v "$p" >/dev/null 2>&1 || missing+=("$p")
		done
		if [ ${#missing[@]} -gt 0 ]; then
			echo "error: not found: ${missing[*]}" >&2
			echo "Install the equivalents of the Debian packages ${pkgs[*]}." >&2
			return 1
		fi
		return 0
	fi

	for p in "${pkgs[@]}"; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=
		[ "$status" = "install ok installed" ] || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0

	if [ "$(id -u)" -ne 0 ]; then
		echo "error: missing Debian packages: ${missing[*]}" >&2
		echo "Install them with:" >&2
		echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
		return 1
	fi
	echo "installing ${missing[*]}"
	apt-get update -q || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}" || return 1
}

# Builds warning-free (make PG_CFLAGS=-Werror) and installs into the PostgreSQL of
# PG_CONFIG.  A user who cannot write there gets sudo, unless the installed files are
# already the same as the built ones.  Quiet when it works; shows make's output when not.
sr_build_install()
{
	local log sudo=() jobs
	sr__init_pg || return 1
	log=$(mktemp) || return 1
	jobs=$(nproc 2>/dev/null) || jobs=2

	echo "building sync_resolve (make PG_CFLAGS=-Werror)"
	if ! make -C "$SR_ROOT" --no-print-directory -j"$jobs" PG_CONFIG="$PG_CONFIG" \
		PG_CFLAGS=-Werror >"$log" 2>&1; then
		cat "$log"
		echo "error: build failed" >&2
		rm -f "$log"
		return 1
	fi

	if [ "$(id -u)" -ne 0 ] &&
		! { [ -w "$("$PG_CONFIG" --pkglibdir)" ] &&
			[ -w "$("$PG_CONFIG" --sharedir)/extension" ]; }; then
		# Installing needs root: not needed at all if nothing changed since the last
		# install; otherwise sudo, if it can work here (no password, or one can be typed).
		if sr__installed_up_to_date; then
			echo "sync_resolve is already installed and up to date"
			rm -f "$log"
			return 0
		fi
		if command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
			sudo=(sudo)
		else
			echo "error: installing sync_resolve into $("$PG_CONFIG" --pkglibdir) needs root," >&2
			echo "and sudo is not available here.  Run 'make install' as root, then run this again." >&2
			rm -f "$log"
			return 1
		fi
	fi
	echo "installing sync_resolve into $("$PG_CONFIG" --pkglibdir)"
	if ! "${sudo[@]}" make -C "$SR_ROOT" --no-print-directory PG_CONFIG="$PG_CONFIG" \
		install >"$log" 2>&1; then
		cat "$log"
		echo "error: make install failed" >&2
		rm -f "$log"
		return 1
	fi
	rm -f "$log"
}

# sr__installed_up_to_date: true when every file that make install would install is
# already installed with the same content (lets a user without sudo test after a root
# "make install").
sr__installed_up_to_date()
{
	local stage file ok=0
	stage=$(mktemp -d) || return 1
	if make -C "$SR_ROOT" --no-print-directory PG_CONFIG="$PG_CONFIG" DESTDIR="$stage" \
		install >/dev/null 2>&1; then
		while IFS= read -r -d '' file; do
			if ! cmp -s "$stage/$file" "/$file"; then
				ok=1
				break
			fi
		done < <(cd "$stage" && find . -type f -print0)
	else
		ok=1
	fi
	rm -rf "$stage"
	return "$ok"
}

# --------------------------------------------------------------------------------------
# Throwaway clusters

# sr__as_server DIR COMMAND...: runs a server-side program (initdb, pg_ctl) from DIR, as
# the postgres OS user when we are root.
sr__as_server()
{
	local dir=$1
	shift
	if [ "$(id -u)" -eq 0 ]; then
		(cd "$dir" && exec runuser -u postgres -- "$@")
	else
		(cd "$dir" && exec "$@")
	fi
}

# sr__port_busy PORT: true when PORT is taken by one of our clusters, by a server whose
# socket or lock file is in a standard place, by another throwaway cluster (its postmaster
# runs with --port=PORT), or by anything listening on TCP.
sr__port_busy()
{
	local port=$1 name d
	for name in "${!SR__PORT[@]}"; do
		[ "${SR__PORT[$name]}" != "$port" ] || return 0
	done
	for d in /tmp /run/postgresql /var/run/postgresql "${TMPDIR:-/tmp}"; do
		if [ -e "$d/.s.PGSQL.$port" ] || [ -e "$d/.s.PGSQL.$port.lock" ]; then
			return 0
		fi
	done
	# Each argument is a NUL-terminated record.  The brackets keep grep from finding
	# "--port=PORT" in its own command line.
	if grep -qsxzE -- "--port=${port:0:${#port}-1}[${port: -1}]" /proc/[0-9]*/cmdline; then
		return 0
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		return 0
	fi
	return 1
}

# sr__need NAME: fails, with a message, unless NAME is a cluster started by this shell.
sr__need()
{
	if [ -z "${1:-}" ] || [ -z "${SR__DIR[$1]:-}" ]; then
		echo "error: no cluster named '${1:-}' was started by this script" >&2
		return 1
	fi
}

# sr_cluster_start NAME PORT [setting=value ...]
# Creates and starts cluster NAME on PORT, or on the next free port if PORT is taken
# (sr_cluster_port NAME tells which).  Each setting is a postgres -c option, written to
# postgresql.conf; values need no quoting.  Waits until the server accepts connections.
sr_cluster_start()
{
	local name=${1:-} port=${2:-} dir locale locales s key value tries=0
	if [ $# -lt 2 ] || ! [[ $name =~ ^[A-Za-z0-9_]+$ ]] || ! [[ $port =~ ^[0-9]+$ ]]; then
		echo "usage: sr_cluster_start NAME PORT [setting=value ...]  (NAME: letters, digits, _)" >&2
		return 1
	fi
	shift 2
	for s in "$@"; do
		if ! [[ $s =~ ^[A-Za-z_][A-Za-z0-9_.]*= ]]; then
			echo "error: server setting '$s' is not of the form name=value" >&2
			return 1
		fi
	done
	if [ -n "${SR__DIR[$name]:-}" ]; then
		echo "error: cluster $name is already running" >&2
		return 1
	fi
	sr__init_pg || return 1
	if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
		echo "error: running as root needs the OS user 'postgres' to run the server" >&2
		return 1
	fi

	while sr__port_busy "$port"; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ] || [ "$port" -ge 65535 ]; then
			echo "error: no free port found from $2 on" >&2
			return 1
		fi
		port=$((port + 1))
	done

	dir=$(mktemp -d "${TMPDIR:-/tmp}/sr-$name.XXXXXX") || return 1
	# Registered at once, so that the trap removes it whatever happens next.
	SR__DIR[$name]=$dir
	SR__PORT[$name]=$port
	mkdir "$dir/sock" || { sr_cluster_stop "$name"; return 1; }
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres: "$dir" || { sr_cluster_stop "$name"; return 1; }
	fi

	locale=C
	locales=$(locale -a 2>/dev/null) || locales=
	if grep -qixE 'c\.utf-?8' <<<"$locales"; then
		locale=C.UTF-8
	fi
	if ! sr__as_server "$dir" "$SR_PG_BINDIR/initdb" -D "$dir/data" -A trust -U postgres \
		-E UTF8 --locale="$locale" --no-sync --no-instructions >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		echo "error: initdb for cluster $name failed" >&2
		sr_cluster_stop "$name"
		return 1
	fi

	{
		echo
		echo "# throwaway test cluster $name (test/lib.sh)"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$dir/sock'"
		echo "fsync = off"
		for s in "$@"; do
			key=${s%%=*}
			value=${s#*=}
			if ! [[ $value =~ ^\'.*\'$ ]]; then
				value="'${value//\'/\'\'}'"
			fi
			echo "$key = $value"
		done
	} >>"$dir/data/postgresql.conf" || { sr_cluster_stop "$name"; return 1; }

	# The port goes on the command line so that sr__port_busy sees it in other scripts.
	if ! sr__pg_ctl "$name" "$port" start; then
		sr_cluster_stop "$name"
		return 1
	fi
	echo "cluster $name: port $port, socket directory $dir/sock"
}

# sr__pg_ctl NAME PORT VERB [PG_CTL_ARG...]: pg_ctl VERB (start, restart) of cluster
# NAME's server on PORT, waiting up to 60 s; when it fails, prints what pg_ctl said and
# the end of the server's log.
sr__pg_ctl()
{
	local name=$1 port=$2 verb=$3 dir=${SR__DIR[$1]}
	shift 3
	sr__as_server "$dir" "$SR_PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
		-o "--port=$port" "$@" -w -t 60 "$verb" >"$dir/pg_ctl.log" 2>&1 && return 0
	cat "$dir/pg_ctl.log" >&2
	echo "---- server log of cluster $name ----" >&2
	tail -n 200 "$dir/server.log" >&2 2>/dev/null || true
	echo "error: cluster $name did not $verb" >&2
	return 1
}

# sr_cluster_restart NAME: restarts cluster NAME (fast shutdown), on the same port, so
# that settings that need a restart (ALTER SYSTEM SET shared_buffers) take effect.
sr_cluster_restart()
{
	local name=${1:-}
	sr__need "$name" || return 1
	sr__pg_ctl "$name" "${SR__PORT[$name]}" restart -m fast
}

# sr_cluster_stop NAME: stops cluster NAME (fast, then immediate, then SIGKILL) and
# removes its directory.  Nothing to do for a NAME that is not running.
sr_cluster_stop()
{
	local name=${1:-} dir pid i
	dir=${SR__DIR[$name]:-}
	[ -n "$dir" ] || return 0
	if [ -f "$dir/data/postmaster.pid" ]; then
		if ! sr__as_server "$dir" "$SR_PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 30 \
			stop >/dev/null 2>&1 &&
			! sr__as_server "$dir" "$SR_PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate \
				-w -t 30 stop >/dev/null 2>&1; then
			pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null) || pid=
			if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
				kill -KILL "$pid" 2>/dev/null || true
				for ((i = 0; i < 50; i++)); do
					kill -0 "$pid" 2>/dev/null || break
					sleep 0.1
				done
			fi
		fi
	fi
	rm -rf -- "$dir"
	unset "SR__DIR[$name]" "SR__PORT[$name]" "SR__CRASH_SHOWN[$name]"
}

# sr_cluster_stop_all: stops and removes every cluster this shell started.
sr_cluster_stop_all()
{
	local name
	for name in "${!SR__DIR[@]}"; do
		sr_cluster_stop "$name"
	done
}

# sr_cluster_forget NAME: leaves NAME running but no longer tracks it (nothing stops it).
sr_cluster_forget()
{
	sr__need "${1:-}" || return 1
	unset "SR__DIR[$1]" "SR__PORT[$1]" "SR__CRASH_SHOWN[$1]"
}

# Where cluster NAME is: socket directory (PGHOST), port, base directory, data
# directory, server log, and a libpq connection string (append dbname=...).
sr_cluster_host()
{
	sr__need "${1:-}" && echo "${SR__DIR[$1]}/sock"
}
sr_cluster_port()
{
	sr__need "${1:-}" && echo "${SR__PORT[$1]}"
}
sr_cluster_dir()
{
	sr__need "${1:-}" && echo "${SR__DIR[$1]}"
}
sr_cluster_datadir()
{
	sr__need "${1:-}" && echo "${SR__DIR[$1]}/data"
}
sr_cluster_log()
{
	sr__need "${1:-}" && echo "${SR__DIR[$1]}/server.log"
}
sr_cluster_connstr()
{
	sr__need "${1:-}" && echo "host=${SR__DIR[$1]}/sock port=${SR__PORT[$1]} user=postgres"
}

# sr_check WHAT GOT WANT: a TAP line, "ok - WHAT" when GOT is WANT, else "not ok -
# WHAT: got ..., want ..." and fail=1 (the script's exit status, by convention).
sr_check()
{
	local what=$1 got=$2 want=$3
	if [ "$got" = "$want" ]; then
		echo "ok - $what"
	else
		echo "not ok - $what: got '$got', want '$want'"
		# shellcheck disable=SC2034 # read by the script that sources this file
		fail=1
	fi
}

# sr_with_cluster NAME COMMAND...: runs COMMAND with PGHOST, PGPORT and PGUSER set for NAME.
sr_with_cluster()
{
	local name=${1:-}
	sr__need "$name" || return 1
	shift
	PGHOST="${SR__DIR[$name]}/sock" PGPORT="${SR__PORT[$name]}" PGUSER=postgres "$@"
}

# sr_psql NAME [psql args...]: psql -X -v ON_ERROR_STOP=1 on cluster NAME (database
# postgres unless the arguments name one).
sr_psql()
{
	local name=${1:-}
	sr__need "$name" || return 1
	shift
	sr__init_pg || return 1
	sr_with_cluster "$name" "$SR_PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 "$@"
}

# sr_cluster_info NAME: prints how to connect to NAME and how to remove it.
sr_cluster_info()
{
	local name=${1:-} dir as=""
	sr__need "$name" || return 1
	dir=${SR__DIR[$name]}
	[ "$(id -u)" -ne 0 ] || as="runuser -u postgres -- "
	echo "cluster $name is still running:"
	echo "  connect: PGHOST=$dir/sock PGPORT=${SR__PORT[$name]} PGUSER=postgres $SR_PG_BINDIR/psql"
	echo "  log:     $dir/server.log"
	echo "  remove:  ${as}$SR_PG_BINDIR/pg_ctl -D $dir/data -m fast stop && rm -rf $dir"
}

# sr_cluster_crashed NAME: true when NAME's server log shows a process that died on a
# signal or a PANIC; prints the log around it (once per cluster).
sr_cluster_crashed()
{
	local name=${1:-} log
	sr__need "$name" || return 1
	log=${SR__DIR[$name]}/server.log
	grep -qE 'terminated by signal|PANIC:' "$log" 2>/dev/null || return 1
	if [ -z "${SR__CRASH_SHOWN[$name]:-}" ]; then
		SR__CRASH_SHOWN[$name]=1
		echo "---- cluster $name: a server process crashed; server log excerpt ----"
		grep -E -B 15 -A 3 'terminated by signal|PANIC:' "$log" | head -n 80 || true
		echo "----"
	fi
	return 0
}

# --------------------------------------------------------------------------------------
# Clean-up

# sr_on_cleanup COMMAND: sr_cleanup also runs COMMAND, after the clusters (commands in
# the order given): for what a script changed on the machine besides its clusters.
SR__CLEANUP=()
sr_on_cleanup()
{
	SR__CLEANUP+=("$1")
}

# sr_cleanup [EXIT_STATUS]: stops and removes every cluster this shell started (or, with
# SR_KEEP_CLUSTER=1, says how to reach them), runs the sr_on_cleanup commands, then exits
# with EXIT_STATUS if one is given.  A crash in a cluster's log is reported, and turns a
# successful exit into exit status 1.
sr_cleanup()
{
	local status=$? name crashed=0 hook
	local -
	set +e
	[ -z "${1:-}" ] || status=$1
	for name in "${!SR__DIR[@]}"; do
		if sr_cluster_crashed "$name"; then
			crashed=1
		fi
		if [ "${SR_KEEP_CLUSTER:-0}" = 1 ]; then
			sr_cluster_info "$name"
			sr_cluster_forget "$name"
		else
			sr_cluster_stop "$name"
		fi
	done
	for hook in "${SR__CLEANUP[@]}"; do
		"$hook"
	done
	if [ "$crashed" = 1 ] && [ "$status" -eq 0 ]; then
		status=1
		exit "$status"
	fi
	if [ -n "${1:-}" ]; then
		exit "$status"
	fi
}

# sr_install_traps: sr_cleanup on exit, on Ctrl-C (exit 130) and on SIGTERM (exit 143).
sr_install_traps()
{
	trap 'sr_cleanup' EXIT
	trap 'sr_cleanup 130' INT
	trap 'sr_cleanup 143' TERM
}
