# tests/integration/lib.sh -- helpers for integration tests that run real
# dynkvd processes.  Sourced by the tests; speaks TAP.
#
#   start_node NAME [DYNKVD OPTIONS...]  start a node on a free 127.0.0.1 port
#                                        with data in $tmp/NAME; sets
#                                        port_NAME and pid_NAME; waits until
#                                        it answers
#   start_cluster3 [DYNKVD OPTIONS...]   n1, then n2 and n3 seeded by it;
#                                        waits until they settle on one ring
#   stop_node NAME                       SIGTERM, wait; sets status_NAME
#   kill_node NAME                       SIGKILL, wait
#   dkv NAME ARGS...                     the dynkv command against NAME
#   check DESCRIPTION COMMAND...         one TAP line from COMMAND's status
#   finish                               the plan; exit status
# Everything started is killed on exit; $tmp is removed unless a test failed
# (then its logs are shown).

set -u
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
DYNKVD=$top_builddir/src/dynkvd
DYNKV=$top_builddir/src/dynkv
ADMIN=$top_builddir/src/dynkv-admin
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dkv-it.XXXXXX")
# python3 may be a pyenv shim: a bash script that forks readlink, pyenv and
# more, ~150 ms of CPU a call against ~25 ms.  Resolve it once and put the
# interpreter itself first in PATH (a link, not a function: `python3 ... &`
# must leave $! the interpreter's own pid, for the kill that stops it).
if py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) && [[ -x $py ]]; then
	mkdir -p "$tmp/bin" && ln -sf "$py" "$tmp/bin/python3" && PATH=$tmp/bin:$PATH
fi
tap_n=0
tap_failed=0
declare -A node_pids=()

cleanup() {
	local name
	for name in "${!node_pids[@]}"; do
		kill -9 "${node_pids[$name]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	release_ports
	if ((tap_failed == 0)); then
		rm -rf "$tmp"
	else
		for f in "$tmp"/*.log; do
			[[ -f $f ]] || continue
			echo "# --- $f (last 20 lines)"
			tail -n 20 "$f" | sed 's/^/# /'
		done
		echo "# (kept $tmp)"
	fi
}
trap cleanup EXIT

ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
finish() {
	echo "1..$tap_n"
	((tap_failed == 0))
}
bail() {
	tap_failed=$((tap_failed + 1))
	echo "Bail out! $*"
	exit 1
}

# A port nobody listens on now, and no other test script has used while
# it runs (a race with other processes is possible, and start_node
# retries).  The claim matters: a node another script killed is still a
# member of its cluster, and a new node on its port was taken for it --
# the two clusters merged (seen with make -j2: test_cluster and test_aae).
# Claims are directories under $port_claims holding the claimer's pid;
# cleanup releases ours, and one whose process is gone is taken over.
port_claims=${TMPDIR:-/tmp}/dkv-it-ports
free_port() {
	local p owner
	mkdir -p "$port_claims"
	while :; do
		p=$((20000 + RANDOM % 12000))   # below the ephemeral range (32768-)
		if ! mkdir "$port_claims/$p" 2>/dev/null; then
			owner=$(cat "$port_claims/$p/pid" 2>/dev/null) || owner=
			[[ -n $owner ]] && kill -0 "$owner" 2>/dev/null && continue
			rm -rf "$port_claims/$p"
			mkdir "$port_claims/$p" 2>/dev/null || continue
		fi
		echo $$ >"$port_claims/$p/pid"
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# Release the ports this script claimed.
release_ports() {
	local d
	for d in "$port_claims"/*/; do
		[[ $(cat "$d/pid" 2>/dev/null) == "$$" ]] && rm -rf "$d"
	done
	return 0
}

# Wait until NAME answers a get (a missing key is fine), up to 10 s.
wait_ready() {
	local name=$1 port=$2 i
	for ((i = 0; i < 200; i++)); do
		kill -0 "${node_pids[$name]}" 2>/dev/null || return 1
		"$DYNKV" --host "127.0.0.1:$port" --connect-timeout 500 ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

start_node() {
	local name=$1 try port
	shift
	for try in 1 2 3 4 5; do
		port=$(free_port)
		"$DYNKVD" --data-dir "$tmp/$name" --listen "127.0.0.1:$port" "$@" \
			>>"$tmp/$name.log" 2>&1 </dev/null &
		node_pids[$name]=$!
		printf -v "port_$name" %s "$port"
		printf -v "pid_$name" %s "${node_pids[$name]}"
		wait_ready "$name" "$port" && return 0
		if grep -q 'Address already in use' "$tmp/$name.log"; then
			wait "${node_pids[$name]}" 2>/dev/null
			continue
		fi
		return 1
	done
	return 1
}

# n1, n2 and n3 with OPTIONS, n2 and n3 joining n1, settled on one ring
# within 30 s, or bail out: start_cluster3 [DYNKVD OPTIONS...]
start_cluster3() {
	local n
	start_node n1 "$@" || bail "n1 did not start"
	for n in n2 n3; do
		start_node "$n" "$@" --seeds "127.0.0.1:$port_n1" || bail "$n did not start"
	done
	wait_for "ring_settled n1 n2 n3" 30 || bail "the 3 nodes did not settle"
}

# Restart NAME on its old port with new options.
restart_node() {
	local name=$1 port_var="port_$1"
	shift
	local port=${!port_var}
	"$DYNKVD" --data-dir "$tmp/$name" --listen "127.0.0.1:$port" "$@" \
		>>"$tmp/$name.log" 2>&1 </dev/null &
	node_pids[$name]=$!
	printf -v "pid_$name" %s "${node_pids[$name]}"
	wait_ready "$name" "$port"
}

stop_node() {
	local name=$1 pid=${node_pids[$1]} st=0
	kill -TERM "$pid" 2>/dev/null || true
	timeout 20 tail --pid="$pid" -f /dev/null || true
	wait "$pid" || st=$?
	printf -v "status_$name" %s "$st"
	unset "node_pids[$name]"
}

kill_node() {
	local name=$1 pid=${node_pids[$1]}
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "node_pids[$name]"
}

dkv() {
	local port_var="port_$1"
	shift
	timeout 30 "$DYNKV" --host "127.0.0.1:${!port_var}" "$@"
}

# dynkv-admin against node NAME: adm NAME [OPTIONS] COMMAND [ARGS].
adm() {
	local port_var="port_$1"
	shift
	timeout 30 "$ADMIN" --host "127.0.0.1:${!port_var}" "$@"
}

# True when every node named sees a ring of as many members, settled (one
# ring epoch: every change's data moved): ring_settled NAME...
ring_settled() {
	local n
	for n in "$@"; do
		[[ $(adm "$n" --json ring 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(len(r["ownership"]), r["settled"])' 2>/dev/null) == "$# True" ]] || return 1
	done
}

# Wait up to LIMIT seconds for the shell condition COND to hold:
# wait_for COND LIMIT.
wait_for() {
	local cond=$1 limit=$2 i
	for ((i = 0; i < limit * 10; i++)); do
		eval "$cond" && return 0
		sleep 0.1
	done
	return 1
}
