#!/usr/bin/env bash
# tests/bench/healing.sh -- how a dynkv cluster heals (issue 11): sloppy
# quorum availability, hinted handoff drain, anti-entropy.  Not a test:
# nothing here passes or fails; it prints figures (and JSON lines starting
# with "RESULT ") for tests/bench/RESULTS.md.
#
#   tests/bench/healing.sh avail [BUILD_DIR]   # 4 nodes, 1 down; 5 nodes, 2 down
#   tests/bench/healing.sh drain [BUILD_DIR]   # 100k hinted 1 KiB writes delivered
#   tests/bench/healing.sh aae   [BUILD_DIR]   # 2 nodes, N=2: d differences among K keys
#
# avail:  N=3, ring 512, fast failure detection (probe 200ms, suspect 1s).
#         AVAIL_KEYS (20000) keys preloaded at W=3 with everyone up; then
#         one of four nodes (and, on a new cluster, two of five) is killed
#         (SIGKILL) and, once every live node sees it down, dynkv-bench runs
#         for BENCH_SECONDS (10) each, closed loop, 16 clients spread over
#         the live nodes: put W=2, put W=3, put W=2 PW=2, get R=2,
#         get R=2 PR=2.  With two of five down, the share of keys whose
#         three primaries include both dead nodes (one live primary: PW=2
#         and PR=2 cannot be met) is computed from the ring and printed
#         beside the errors.
# drain:  4 nodes, N=3, ring 512, AAE nearly off (aae_interval 1h, its maximum) so that only
#         handoff heals.  First the closed-loop maximum of the foreground
#         load (mixed:50/50, R=2 W=2, 1 KiB, 16 clients over nodes 1-3),
#         then DRAIN_RUNS (3) pairs, interleaved:
#           idle:    the foreground at DRAIN_RATE (half the maximum,
#                    --rate, open loop) for as long as the last drain took
#                    (DRAIN_IDLE_SECS for the first), no handoff running;
#           restart: node 4 killed, seen down and restarted with nothing
#                    to hand off, the foreground at the same rate from 1 s
#                    before the restart for as long again (the restart
#                    alone, which the handoff run includes);
#           handoff: node 4 killed and seen down, DRAIN_KEYS (100000) fresh
#                    keys written at W=2 through nodes 1-3 (the fallbacks
#                    take hints), node 4 restarted and, from its start, the
#                    foreground at the same rate until `dynkv-admin hints`
#                    says 0 pending on nodes 1-3 (the foreground is then
#                    stopped with SIGINT: its report covers the drain).
#         DRAIN_CONTROL=1 adds, before each handoff run, a control:
#         DRAIN_KEYS fresh keys written at W=2 with node 4 up (no hint),
#         then node 4 killed, seen down and restarted under the same
#         foreground for as long as the idle run -- everything the
#         handoff run does but the drain.
#         The handoff run polls for the drain's end every 0.5 s (three
#         dynkv-admin calls and bash, no python3: poll_once); the same polls
#         run through the idle, restart and control runs, so that their cost
#         is in every run and not counted against the drain.
#         CPU: the four nodes' processes (every thread, /proc/PID/stat)
#         and the machine's busy share over each idle and handoff run, and
#         the drain's own cost: the handoff run's node CPU less the idle
#         run's rate over as long, per MB delivered.
#         Default handoff_rate (32M) and handoff_concurrency (2) unless
#         HANDOFF_OPTS says otherwise.  Each foreground run leaves a line
#         every DRAIN_INTERVAL (0.25 s) in $BENCH_DIR/drain-*.err
#         (dynkv-bench --interval): where in a run its p99 comes from.
# aae:    2 nodes, --n-val 2 (each holds every partition; no fallback),
#         ring AAE_RING (64), aae_interval AAE_INTERVAL (100ms; exchanges
#         start on the 250 ms tick anyway), aae_rate AAE_RATE (8M).
#         AAE_KEYS (1000000) 1 KiB keys written at W=2; once both have
#         every tree ready and the roots agree, an idle period (AAE_IDLE,
#         20 s) gives the cost of equal-root exchanges.  Then, for each d
#         in AAE_DIFFS (1 1000 100000): node B stopped, d fresh keys put at
#         W=1 through A (B misses them), B restarted; timed until B has
#         every tree ready and until every partition's root is the same on
#         A and B; the bytes are the growth of both nodes' totals.bytes.
#         Then the emptied replica: B stopped, B/partitions removed (NODE,
#         DOTS, MEMBERS kept), B restarted, timed until it holds every key
#         again.  Memory: RssAnon of B (/proc/PID/status) at its start and
#         when its trees are ready, in the d = AAE_DIFFS[0] step.
#
# Environment: BENCH_DIR (default /var/tmp/dkv-bench-healing, a real disk),
# BASE_PORT (7460; the nodes listen on it and the next four), and the
# variables above.  Every process this script starts is killed on exit.
set -Eeuo pipefail

cmd=${1:?usage: healing.sh avail|drain|aae [BUILD_DIR]}
build=${2:-build}
bench_dir=${BENCH_DIR:-/var/tmp/dkv-bench-healing}
base_port=${BASE_PORT:-7460}
secs=${BENCH_SECONDS:-10}
DYNKVD=$build/src/dynkvd
# python3 may be a pyenv shim: a bash script that forks readlink, pyenv and
# more, ~150 ms of CPU a call against ~25 ms.  Resolve it once; every
# python3 below is then the interpreter itself.  The drain's polls are the
# harness's only CPU while a handoff's foreground is measured: with the
# shim they took 0.27 of the two cores (perf sched), the idle runs none.
PYTHON3=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || PYTHON3=python3
python3() { "$PYTHON3" "$@"; }
ADMIN=$build/src/dynkv-admin
BENCH=$build/src/dynkv-bench
[[ -x $DYNKVD && -x $ADMIN && -x $BENCH ]] || { echo "build $build first" >&2; exit 1; }
build=$(cd "$build" && pwd); DYNKVD=$build/src/dynkvd; ADMIN=$build/src/dynkv-admin; BENCH=$build/src/dynkv-bench
mkdir -p "$bench_dir"; bench_dir=$(cd "$bench_dir" && pwd)
ulimit -c unlimited 2>/dev/null || true   # a node that crashes leaves a core in its data dir

probe=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s
       --push-pull-interval 1s --request-timeout 5s)

declare -A pid=()     # node number -> pid of its dynkvd
bg_pids=()            # other processes started in the background
cleanup() {
	local p
	for p in "${pid[@]}" "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
port_of() { echo $((base_port + $1 - 1)); }
addr_of() { echo "127.0.0.1:$(port_of "$1")"; }
log() { echo "# $(date +%T) $*"; }
result() { echo "RESULT $*"; }
# CPU accounting, in clock ticks: cpu_nodes N...: user + system time of
# the running nodes' processes (every thread; a node not running counts
# 0); cpu_machine: "busy total" of the whole machine (/proc/stat: busy =
# user + nice + system + irq + softirq + steal).
cpu_nodes() {
	local n s=0 t
	for n in "$@"; do
		[[ -n ${pid[$n]:-} && -r /proc/${pid[$n]}/stat ]] || continue
		t=$(sed 's/.*) //' "/proc/${pid[$n]}/stat" | awk '{print $12 + $13}') || t=0
		s=$((s + ${t:-0}))
	done
	echo "$s"
}
cpu_machine() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# cpu_line NAME SECONDS NODE_TICKS0 NODE_TICKS1 "BUSY0 TOTAL0" "BUSY1 TOTAL1":
# the nodes' CPU in cores and the machine's busy share over a window.
cpu_line() {
	local hz; hz=$(getconf CLK_TCK)
	python3 -c "
import sys
name, secs, n0, n1, hz = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[7])
b0, t0 = map(int, sys.argv[5].split()); b1, t1 = map(int, sys.argv[6].split())
cores = (n1 - n0) / hz / secs
print('RESULT cpu %-18s dynkvd %.2f cores, machine %.0f%% busy over %.1f s' % (name, cores, 100.0 * (b1 - b0) / max(1, t1 - t0), secs))
print('CPU %s %.4f' % (name, cores))" "$@" "$hz"
}

# start N [OPTION...]: start node N (data in $bench_dir/nodeN), wait until it
# answers (30 s at most).
start() {
	local n=$1 i
	shift
	mkdir -p "$bench_dir/node$n"
	(cd "$bench_dir/node$n" && exec "$DYNKVD" --data-dir "$bench_dir/node$n" --listen "$(addr_of "$n")" \
		--log-file "$bench_dir/node$n.log" "$@" </dev/null) &
	pid[$n]=$!
	for ((i = 0; i < 300; i++)); do
		timeout 5 "$ADMIN" --host "$(addr_of "$n")" --timeout 2000 --json status \
			>/dev/null 2>&1 && return 0
		kill -0 "${pid[$n]}" 2>/dev/null || { echo "node $n exited; see $bench_dir/node$n.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "node $n does not answer after 30 s" >&2
	exit 1
}
stop() {      # stop N: SIGTERM, wait (60 s at most, then SIGKILL)
	local n=$1
	kill -TERM "${pid[$n]}" 2>/dev/null || true
	timeout 60 tail --pid="${pid[$n]}" -f /dev/null || kill -KILL "${pid[$n]}" 2>/dev/null || true
	wait "${pid[$n]}" 2>/dev/null || true
	unset "pid[$n]"
}
crash() {     # crash N: SIGKILL
	local n=$1
	kill -KILL "${pid[$n]}" 2>/dev/null || true
	wait "${pid[$n]}" 2>/dev/null || true
	unset "pid[$n]"
}
adm() {       # adm N ARGS...
	local n=$1
	shift
	timeout 60 "$ADMIN" --host "$(addr_of "$n")" --timeout 30000 "$@"
}
jq_() {       # jq_ PYTHON-EXPR: evaluate on the JSON of stdin as d
	python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}
# wait_for SECONDS COMMAND...: until COMMAND succeeds, every 0.2 s.
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 5; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}
# ring_ok COUNT NODE...: every NODE sees COUNT owners and COUNT members up.
ring_ok() {
	local count=$1 n
	shift
	for n in "$@"; do
		[[ $(adm "$n" --json ring 2>/dev/null | jq_ 'len(d["ownership"])') == "$count" ]] || return 1
		[[ $(adm "$n" --json members 2>/dev/null |
			jq_ 'sum(m["liveness"] == "up" for m in d["members"])') == "$count" ]] || return 1
	done
}
# liveness_is STATE ADDR NODE...: every NODE sees ADDR in STATE.
liveness_is() {
	local state=$1 addr=$2 n
	shift 2
	for n in "$@"; do
		[[ $(adm "$n" --json members 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin)["members"]:
    if m["addr"] == sys.argv[1]:
        print(m["liveness"])' "$addr") == "$state" ]] || return 1
	done
}
hosts_of() {  # hosts_of NODE...: a --host list
	local n h=""
	for n in "$@"; do h+="${h:+,}$(addr_of "$n")"; done
	echo "$h"
}
# bench NAME ARGS...: dynkv-bench --json into $bench_dir/NAME.json, and a line.
bench() {
	local name=$1
	shift
	timeout $((secs + 600)) "$BENCH" --json "$@" >"$bench_dir/$name.json" 2>"$bench_dir/$name.err" || true
	summary "$name"
}
summary() {   # summary NAME: one line from $bench_dir/NAME.json
	python3 - "$bench_dir/$1.json" "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print("RESULT %-24s ops %8d errors %6d %-34s ops/s %8.0f p50 %8.0f us p99 %8.0f us rate %g late %d" % (
    sys.argv[2], d["ops"], d["errors"], json.dumps(d["error_kinds"], separators=(",", ":")),
    d["ops_per_sec"], d["p50_us"], d["p99_us"], d["rate"], d["late"]))
if d["preload"]:
    print("RESULT %-24s preload %d keys in %.1f s (%.0f puts/s), %d errors" % (
        sys.argv[2], d["keys"], d["preload_seconds"], d["keys"] / max(d["preload_seconds"], 1e-9),
        d["preload_errors"]))
EOF
}

header() {
	mkdir -p "$bench_dir"
	echo "# $(uname -srm), $(nproc) CPUs, $(lscpu | grep -m1 'Model name' | sed 's/  */ /g')"
	echo "# $(free -g | awk 'NR==2 {print "memory " $2 " GiB"}'), data in $bench_dir ($(df -T "$bench_dir" | awk 'NR==2 {print $2}'))"
	echo "# $("$DYNKVD" --version), commit $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ)"
}

# --------------------------------------------------------------- avail

avail_cluster() {   # avail_cluster NODES DEAD...
	local nodes=$1 n live=() dead
	shift
	local -a deads=("$@")
	rm -rf "$bench_dir"; mkdir -p "$bench_dir"
	start 1 "${probe[@]}" --n-val 3
	for ((n = 2; n <= nodes; n++)); do start "$n" "${probe[@]}" --n-val 3 --seeds "$(addr_of 1)"; done
	wait_for 60 ring_ok "$nodes" $(seq "$nodes") || { echo "no convergence" >&2; exit 1; }
	log "$nodes nodes up"
	local all
	all=$(hosts_of $(seq "$nodes"))
	bench "avail$nodes-preload" --host "$all" --workload get --requests 1 --keys "${AVAIL_KEYS:-20000}" -w 3 -r 3 --clients 16
	bench "avail$nodes-allup-put-w2" --host "$all" --workload put --duration "$secs" --keys "${AVAIL_KEYS:-20000}" --key-prefix "up:" -w 2 --clients 16
	bench "avail$nodes-allup-get-r2" --host "$all" --workload get --no-preload --duration "$secs" --keys "${AVAIL_KEYS:-20000}" -r 2 --clients 16
	for dead in "${deads[@]}"; do crash "$dead"; done
	for ((n = 1; n <= nodes; n++)); do [[ -n ${pid[$n]:-} ]] && live+=("$n"); done
	for dead in "${deads[@]}"; do
		wait_for 30 liveness_is down "$(addr_of "$dead")" "${live[@]}" || { echo "node $dead not seen down" >&2; exit 1; }
	done
	log "nodes ${deads[*]} killed and seen down by ${live[*]}"
	# The share of partitions whose primaries are all dead but one.
	adm 1 --json ring | python3 -c '
import json, sys
r = json.load(sys.stdin); dead = set(sys.argv[1:])
one = sum(len([a for a in p["preflist"] if a not in dead]) < 2 for p in r["partitions"])
print("RESULT partitions with fewer than two live primaries: %d of %d (%.2f%%)" % (one, r["ring_size"], 100.0 * one / r["ring_size"]))' \
		$(for dead in "${deads[@]}"; do adm 1 --json members | python3 -c '
import json, sys
print([m["id"] for m in json.load(sys.stdin)["members"] if m["addr"] == sys.argv[1]][0])' "$(addr_of "$dead")"; done)
	local h k=${AVAIL_KEYS:-20000}
	h=$(hosts_of "${live[@]}")
	bench "avail$nodes-put-w2" --host "$h" --workload put --duration "$secs" --keys "$k" -w 2 --clients 16
	bench "avail$nodes-put-w3" --host "$h" --workload put --duration "$secs" --keys "$k" -w 3 --clients 16
	bench "avail$nodes-put-w2-pw2" --host "$h" --workload put --duration "$secs" --keys "$k" -w 2 --pw 2 --clients 16
	bench "avail$nodes-get-r2" --host "$h" --workload get --no-preload --duration "$secs" --keys "$k" -r 2 --clients 16
	bench "avail$nodes-get-r2-pr2" --host "$h" --workload get --no-preload --duration "$secs" --keys "$k" -r 2 --pr 2 --clients 16
	for n in "${live[@]}"; do stop "$n"; done
}

do_avail() {
	header
	log "four nodes, one down"
	avail_cluster 4 4
	log "five nodes, two down"
	avail_cluster 5 4 5
}

# --------------------------------------------------------------- drain

pending_all() {     # pending_all NODE...: sum of pending hints, and of their bytes ("? ?" if a node did not answer)
	local n
	for n in "$@"; do adm "$n" --json hints || echo '{}'; done | python3 -c '
import json, sys
p = b = 0
for line in sys.stdin:
    if line.strip():
        d = json.loads(line)
        if "pending" not in d:
            print("? ?"); sys.exit(0)
        p += d["pending"]; b += sum(t["bytes"] for t in d["targets"])
print(p, b)'
}
# The drain's polls run while the foreground is measured, so they must
# cost next to nothing: no python3 (a pyenv python3 costs ~85 ms of CPU a
# start, and two a poll took ~0.2 of the two cores -- more than the drain
# itself), only dynkv-admin (~1.5 ms) and bash's own regex.  The same
# polls run during every other measured run too (poll_shadow), so that
# what they cost is not counted against the drain.
pending_keys() {    # pending_keys NODE...: sum of pending hints ("?" if a node did not answer)
	local n s p=0
	for n in "$@"; do
		s=$(adm "$n" --json hints 2>/dev/null) && [[ $s =~ \"pending\":\ *([0-9]+) ]] ||
			{ echo "?"; return 0; }
		p=$((p + BASH_REMATCH[1]))
	done
	echo "$p"
}
sees_up() {         # sees_up ADDR NODE: NODE's SWIM says ADDR is up
	local s
	s=$(adm "$2" --json members 2>/dev/null) || return 1
	[[ $s =~ \"addr\":\ *\"$1\",\ *\"status\":\ *\"[a-z]+\",\ *\"liveness\":\ *\"up\" ]]
}
poll_once() {       # what one drain poll asks: pending on 1-3, and whether 1 sees 4 up
	POLLED=$(pending_keys 1 2 3)
	sees_up "$(addr_of 4)" 1 || true
}
poll_shadow() {     # poll_shadow SECONDS: the drain's polls, in the background, for a run without a drain
	local end=$(( $(date +%s) + $1 ))
	( while (( $(date +%s) < end )); do poll_once; sleep 0.5; done ) &
	bg_pids+=("$!")
	SHADOW=$!
}

alive() {           # alive NODE...: every NODE's process runs, or say which does not
	local n
	for n in "$@"; do
		kill -0 "${pid[$n]}" 2>/dev/null || { echo "BUG: node $n (pid ${pid[$n]}) has exited; see $bench_dir/node$n.log and any core in $bench_dir/node$n" >&2; return 1; }
	done
}

do_drain() {
	local opts=("${probe[@]}" --n-val 3 --aae-interval 1h ${HANDOFF_OPTS:-}) n i
	local keys=${DRAIN_KEYS:-100000} runs=${DRAIN_RUNS:-3} fg fgk=20000 rate idle=${DRAIN_IDLE_SECS:-10} fpid
	header
	rm -rf "$bench_dir"; mkdir -p "$bench_dir"
	start 1 "${opts[@]}"
	for n in 2 3 4; do start "$n" "${opts[@]}" --seeds "$(addr_of 1)"; done
	wait_for 60 ring_ok 4 1 2 3 4 || { echo "no convergence" >&2; exit 1; }
	fg=$(hosts_of 1 2 3)
	bench drain-fg-preload --host "$fg" --workload get --requests 1 --keys "$fgk" --key-prefix fg: -w 3 --clients 16
	bench drain-fg-max --host "$fg" --workload mixed:50/50 --no-preload --duration "$secs" --keys "$fgk" --key-prefix fg: -r 2 -w 2 --clients 16
	rate=${DRAIN_RATE:-$(jq_ 'int(d["ops_per_sec"] / 2)' <"$bench_dir/drain-fg-max.json")}
	log "foreground: mixed:50/50 R=2 W=2 at $rate ops/s (--rate), 16 clients, 64 x pipeline headroom"
	local fgopts=(--host "$fg" --workload mixed:50/50 --no-preload --keys "$fgk" --key-prefix fg:
		      -r 2 -w 2 --clients 16 --pipeline 8 --rate "$rate" --interval "${DRAIN_INTERVAL:-0.25}")
	local c0 c1 m0 m1 w0 w1 idle_cores=() hand_cores restart_cs
	for ((i = 1; i <= runs; i++)); do
		c0=$(cpu_nodes 1 2 3 4); m0=$(cpu_machine); w0=$(now)
		poll_shadow "$idle"
		bench "drain-idle$i" "${fgopts[@]}" --duration "$idle"
		wait "$SHADOW" || true
		c1=$(cpu_nodes 1 2 3 4); m1=$(cpu_machine); w1=$(now)
		cpu_line "drain-idle$i" "$(python3 -c "print($w1 - $w0)")" "$c0" "$c1" "$m0" "$m1" | tee "$bench_dir/cpu-idle$i" | grep -v '^CPU'
		idle_cores[i]=$(awk '/^CPU/ {print $3}' "$bench_dir/cpu-idle$i")
		# the same restart of node 4 with nothing to hand off: what the
		# restart alone costs the foreground
		crash 4
		wait_for 30 liveness_is down "$(addr_of 4)" 1 2 3 || { echo "node 4 not seen down" >&2; exit 1; }
		"$BENCH" --json "${fgopts[@]}" --duration "$((idle + 1))" >"$bench_dir/drain-restart$i.json" 2>"$bench_dir/drain-restart$i.err" &
		fpid=$!; bg_pids+=("$fpid")
		poll_shadow "$((idle + 1))"
		sleep 1
		c0=$(cpu_nodes 1 2 3 4); m0=$(cpu_machine); w0=$(now)   # (node 4 is down: 0)
		start 4 "${opts[@]}"
		wait "$fpid" || true
		wait "$SHADOW" || true
		c1=$(cpu_nodes 1 2 3 4); m1=$(cpu_machine); w1=$(now)
		summary "drain-restart$i"
		cpu_line "drain-restart$i" "$(python3 -c "print($w1 - $w0)")" "$c0" "$c1" "$m0" "$m1" | tee "$bench_dir/cpu-restart$i" | grep -v '^CPU'
		restart_cs=$(python3 -c "print(($(awk '/^CPU/ {print $3}' "$bench_dir/cpu-restart$i") - ${idle_cores[i]}) * ($w1 - $w0))")
		result "cpu restart run $i: $(printf %.2f "$restart_cs") core-seconds above the idle run (node 4's start)"
		if [[ -n ${DRAIN_CONTROL:-} ]]; then
			# the control: the same writes with node 4 up (no hint),
			# then its restart with nothing to hand off -- the handoff
			# run without its drain
			bench "drain-cwrite$i" --host "$fg" --workload get --requests 1 --keys "$keys" --key-prefix "c$i:" -w 2 --clients 16
			sleep 2   # the third replicas land
			crash 4
			wait_for 30 liveness_is down "$(addr_of 4)" 1 2 3 || { echo "node 4 not seen down" >&2; exit 1; }
			"$BENCH" --json "${fgopts[@]}" --duration "$((idle + 1))" >"$bench_dir/drain-control$i.json" 2>"$bench_dir/drain-control$i.err" &
			fpid=$!; bg_pids+=("$fpid")
			poll_shadow "$((idle + 1))"
			sleep 1
			start 4 "${opts[@]}"
			wait "$fpid" || true
			wait "$SHADOW" || true
			summary "drain-control$i"
		fi
		crash 4
		wait_for 30 liveness_is down "$(addr_of 4)" 1 2 3 || { echo "node 4 not seen down" >&2; exit 1; }
		bench "drain-write$i" --host "$fg" --workload get --requests 1 --keys "$keys" --key-prefix "h$i:" -w 2 --clients 16
		read -r p0 b0 < <(pending_all 1 2 3)
		log "run $i: $p0 hints pending ($b0 bytes) on nodes 1-3"
		local t0 t_up="" t1
		"$BENCH" --json "${fgopts[@]}" --duration 3600 >"$bench_dir/drain-fg$i.json" 2>"$bench_dir/drain-fg$i.err" &
		fpid=$!; bg_pids+=("$fpid")
		sleep 1
		c0=$(cpu_nodes 1 2 3 4); m0=$(cpu_machine)   # (node 4 is down: 0)
		t0=$(now)
		start 4 "${opts[@]}"
		# Polled every 0.5 s, cheaply (poll_once: no python3, and the
		# same polls ran in the runs it is compared with); the drain's
		# end is then read from the fallbacks' "handoff ... done" lines.
		local polls=0 p
		while :; do
			POLLED=$(pending_keys 1 2 3); p=$POLLED
			if sees_up "$(addr_of 4)" 1 && [[ -z $t_up ]]; then t_up=$(now); fi
			alive 1 2 3 4 || exit 1
			[[ $p == 0 ]] && break
			((++polls < 1200)) || { echo "hints not drained after 10 min: $p pending" >&2; exit 1; }
			sleep 0.5
		done
		c1=$(cpu_nodes 1 2 3 4); m1=$(cpu_machine); w1=$(now)
		kill -INT "$fpid"
		t1=$(python3 - "$t0" "$(addr_of 4)" "$bench_dir"/node{1,2,3}.log <<'EOF'
import datetime, sys
t0, addr, last = float(sys.argv[1]), sys.argv[2], None
for f in sys.argv[3:]:
    for line in open(f):
        if ("handoff to %s done" % addr) in line:
            t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
            if t >= t0 and (last is None or t > last):
                last = t
print(last if last is not None else "")
EOF
)
		[[ -n $t1 ]] || t1=$(now)
		wait "$fpid" || true
		summary "drain-fg$i"
		idle=$(python3 -c "print(max(5, round($t1 - $t0)))")
		python3 -c "
t0, tu, t1, b = $t0, ${t_up:-$t0}, $t1, $b0
print('RESULT drain run $i: %d keys, %.1f MB in %.1f s from restart (%.1f s after seen up) = %.1f MB/s' % ($p0, b / 1e6, t1 - t0, t1 - tu, b / 1e6 / (t1 - t0)))"
		# the drain's own CPU: the nodes' CPU over the handoff run less
		# what the idle run before it took over as long (node 4's start
		# is counted: the restart run shows what it costs alone)
		cpu_line "drain-handoff$i" "$(python3 -c "print($w1 - $t0)")" "$c0" "$c1" "$m0" "$m1" | tee "$bench_dir/cpu-handoff$i" | grep -v '^CPU'
		hand_cores=$(awk '/^CPU/ {print $3}' "$bench_dir/cpu-handoff$i")
		python3 -c "
secs, hc, ic, mb = $w1 - $t0, $hand_cores, ${idle_cores[i]}, $b0 / 1e6
cs = (hc - ic) * secs
print('RESULT cpu drain run $i: %.2f core-seconds above the idle run for %.1f MB = %.0f core-ms per MB; less the restart run\'s %.2f: %.0f core-ms per MB' % (cs, mb, cs * 1000 / mb, $restart_cs, (cs - $restart_cs) * 1000 / mb))"
	done
	for n in 1 2 3 4; do stop "$n"; done
}

# --------------------------------------------------------------- aae

aae_json() { adm "$1" --json aae; }
# roots_agree: every partition has a ready tree on A and B with the same root.
roots_agree() {
	python3 - <(aae_json 1) <(aae_json 2) <<'EOF'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
ra = {p["partition"]: p["root"] for p in a["partitions"] if p["state"] == "ready"}
rb = {p["partition"]: p["root"] for p in b["partitions"] if p["state"] == "ready"}
ok = len(ra) == len(a["partitions"]) and len(rb) == len(b["partitions"]) and ra == rb
sys.exit(0 if ok else 1)
EOF
}
trees_ready() {     # trees_ready N: every tree of node N ready
	aae_json "$1" | jq_ 'd["totals"]["trees_ready"] == len(d["partitions"]) and len(d["partitions"]) > 0' | grep -q True
}
totals() { aae_json "$1" | jq_ '" ".join(str(d["totals"][k]) for k in ("exchanges","equal","failed","repaired","bytes","builds","build_ms"))'; }
keys_of() { adm "$1" --json status | jq_ 'd["keys"]'; }
rss_anon() { awk '/^RssAnon/ {print $2}' "/proc/${pid[$1]}/status"; }

do_aae() {
	local ring=${AAE_RING:-64} K=${AAE_KEYS:-1000000} d
	local opts=("${probe[@]}" --n-val 2 --ring-size "$ring" --aae-interval "${AAE_INTERVAL:-100ms}"
		    --aae-rate "${AAE_RATE:-8M}")
	header
	log "2 nodes, n_val 2, ring $ring, aae_interval ${AAE_INTERVAL:-100ms}, aae_rate ${AAE_RATE:-8M}, $K keys"
	rm -rf "$bench_dir"; mkdir -p "$bench_dir"
	start 1 "${opts[@]}"
	start 2 "${opts[@]}" --seeds "$(addr_of 1)"
	wait_for 60 ring_ok 2 1 2 || { echo "no convergence" >&2; exit 1; }
	local t0=$(now)
	bench aae-load --host "$(hosts_of 1 2)" --workload get --requests 1 --keys "$K" --key-prefix k: -w 2 --clients 16 --pipeline 4
	python3 -c "import json; d=json.load(open('$bench_dir/aae-load.json')); print('RESULT load: %d keys in %.0f s (%.0f puts/s), %d errors' % ($K, d['preload_seconds'], $K / d['preload_seconds'], d['preload_errors']))"
	wait_for 600 roots_agree || { echo "BUG? roots do not agree 10 min after the load" >&2; }
	log "roots agree ($(python3 -c "print(round($(now) - $t0))") s after the load started); A: $(keys_of 1) keys, B: $(keys_of 2)"
	# Idle: equal-root exchanges only.
	local a0 b0 a1 b1
	a0=($(totals 1)); b0=($(totals 2))
	sleep "${AAE_IDLE:-20}"
	a1=($(totals 1)); b1=($(totals 2))
	result "idle ${AAE_IDLE:-20} s: exchanges A $((a1[0] - a0[0])) B $((b1[0] - b0[0])), equal A $((a1[1] - a0[1])) B $((b1[1] - b0[1])), bytes A $((a1[4] - a0[4])) B $((b1[4] - b0[4]))"
	result "build: A $((a1[5])) builds $((a1[6])) ms, B $((b1[5])) builds $((b1[6])) ms, keys A $(keys_of 1)"
	# Foreground p99 while idle (AAE only comparing equal roots) and while
	# exchanges repair (from B's trees ready): gets through A, R=1, at a
	# fixed rate (writes would make differences of their own).
	local fgopts=(--host "$(hosts_of 1)" --workload get --no-preload --duration "$secs" --keys "$K"
		      --key-prefix k: -r 1 --clients 16 --pipeline 8 --rate "${AAE_FG_RATE:-4000}")
	bench aae-fg-idle "${fgopts[@]}"
	local first=1
	for d in ${AAE_DIFFS:-1 1000 100000}; do
		stop 2
		bench "aae-diff$d" --host "$(hosts_of 1)" --workload get --requests 1 --keys "$d" --key-prefix "d$d:" -w 1 --clients 16 --pipeline 4
		a0=($(totals 1))
		local ka=$(keys_of 1) t_start t_ready t_eq r0 r1
		t_start=$(now)
		start 2 "${opts[@]}"
		r0=$(rss_anon 2)
		b0=($(totals 2))
		local fgpid=""
		wait_for 900 trees_ready 2 || echo "BUG? B's trees not ready after 15 min" >&2
		t_ready=$(now); r1=$(rss_anon 2)
		if ((d == ${AAE_FG_DIFF:-100000})); then
			"$BENCH" --json "${fgopts[@]}" >"$bench_dir/aae-fg-busy.json" 2>"$bench_dir/aae-fg-busy.err" &
			fgpid=$!; bg_pids+=("$fgpid")
		fi
		wait_for 900 roots_agree || echo "BUG? roots do not agree 15 min after B's restart" >&2
		t_eq=$(now)
		a1=($(totals 1)); b1=($(totals 2))
		[[ -n $fgpid ]] && { wait "$fgpid" || true; summary aae-fg-busy; }
		result "d=$d: A $ka keys, B $(keys_of 2) keys; trees ready $(python3 -c "print('%.1f' % ($t_ready - $t_start))") s after restart, roots agree $(python3 -c "print('%.1f' % ($t_eq - $t_start))") s after restart ($(python3 -c "print('%.1f' % ($t_eq - $t_ready))") s after trees ready); exchanges A $((a1[0] - a0[0])) B $((b1[0] - b0[0])) (equal A $((a1[1] - a0[1])) B $((b1[1] - b0[1])), failed A $((a1[2] - a0[2])) B $((b1[2] - b0[2]))), repaired A $((a1[3] - a0[3])) B $((b1[3] - b0[3])), bytes A $((a1[4] - a0[4])) B $((b1[4] - b0[4])) total $((a1[4] - a0[4] + b1[4] - b0[4]))"
		if ((first)); then
			result "B RssAnon at start ${r0} KiB, trees ready ${r1} KiB: $(python3 -c "print('%.1f' % (($r1 - $r0) * 1024 / $(keys_of 2)))") bytes a key; B build_ms ${b1[6]} for ${b1[5]} builds"
			first=0
		fi
	done
	# Emptied replica.
	stop 2
	rm -rf "$bench_dir/node2/partitions"
	local ka=$(keys_of 1) t_start t_full
	a0=($(totals 1))
	t_start=$(now)
	start 2 "${opts[@]}"
	wait_for 1800 eval '[[ $(keys_of 2) -ge '"$ka"' ]]' || echo "BUG? B not refilled after 30 min: $(keys_of 2) of $ka" >&2
	t_full=$(now)
	a1=($(totals 1)); b1=($(totals 2))
	wait_for 300 roots_agree || echo "BUG? roots do not agree after the refill" >&2
	result "emptied: B refilled to $(keys_of 2) of $ka keys in $(python3 -c "print('%.1f' % ($t_full - $t_start))") s after restart; bytes A $((a1[4] - a0[4])) B ${b1[4]} = $(python3 -c "print('%.1f MB/s, %.0f bytes a key' % (($((a1[4] - a0[4])) + ${b1[4]}) / 1e6 / ($t_full - $t_start), ($((a1[4] - a0[4])) + ${b1[4]}) / $ka))"); roots agree $(python3 -c "print('%.1f' % ($(now) - $t_start))") s after restart"
	result "bytes on disk: A $(adm 1 --json status | jq_ 'd["bytes"]') for $(keys_of 1) keys"
	stop 1; stop 2
}

case $cmd in
avail) do_avail ;;
drain) do_drain ;;
aae) do_aae ;;
*) echo "usage: healing.sh avail|drain|aae [BUILD_DIR]" >&2; exit 2 ;;
esac
