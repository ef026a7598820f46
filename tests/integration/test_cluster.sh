#!/usr/bin/env bash
# test_cluster.sh -- five real dynkvd processes on 127.0.0.1 form one
# cluster: the same ring everywhere, any node serves any key, quorum reads
# and writes, read repair, siblings, failure detection, quorum errors.
# Every wait is bounded.
. "${top_srcdir:-.}/tests/integration/lib.sh"

# Fast failure detection, so the test is quick.
probe=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s
       --push-pull-interval 1s --request-timeout 3s)

# A member's liveness ("up", "suspect", "down") in NAME's view.
liveness_of() {
	local name=$1 addr=$2
	adm "$name" --json members | python3 -c '
import json, sys
addr = sys.argv[1]
for m in json.load(sys.stdin)["members"]:
    if m["addr"] == addr:
        print(m["liveness"])' "$addr"
}

# Wait (up to $3 seconds) until NAME sees ADDR with liveness WANT.
wait_liveness() {
	local name=$1 addr=$2 want=$3 limit=$4 i
	for ((i = 0; i < limit * 10; i++)); do
		[[ $(liveness_of "$name" "$addr") == "$want" ]] && return 0
		sleep 0.1
	done
	return 1
}

nodes=(n1 n2 n3 n4 n5)
start_node n1 "${probe[@]}" || bail "n1 did not start"
for n in n2 n3 n4 n5; do
	start_node "$n" "${probe[@]}" --seeds "127.0.0.1:$port_n1" || bail "$n did not start"
done

# --- the ring ----------------------------------------------------------------
rings_agree() {
	local first="" r n
	for n in "${nodes[@]}"; do
		r=$(adm "$n" --json ring) || return 1
		[[ $(python3 -c 'import json,sys; r = json.load(sys.stdin); print(len(r["ownership"]), r["settled"])' <<<"$r") == "5 True" ]] ||
			return 1
		[[ -z $first ]] && first=$r
		[[ $r == "$first" ]] || return 1
	done
}
converged=0
t0=$(date +%s%N)
for ((i = 0; i < 150; i++)); do
	if rings_agree; then converged=1; break; fi
	sleep 0.2
done
t1=$(date +%s%N)
check "five nodes agree on one ring of five members" test $converged = 1
echo "# ring converged in $(((t1 - t0) / 1000000)) ms after the last start"
adm n1 ring >"$tmp/ring1.txt"
adm n4 ring >"$tmp/ring4.txt"
check "every node prints the same ring (table)" cmp -s "$tmp/ring1.txt" "$tmp/ring4.txt"
check "the ring table shows ring size and n_val" grep -q 'ring size 512, n_val 3' "$tmp/ring1.txt"
check "members: five, all valid and up" test "$(adm n3 --json members | python3 -c '
import json, sys
ms = json.load(sys.stdin)["members"]
print(sum(1 for m in ms if m["status"] == "valid" and m["liveness"] == "up"))')" = 5

# --- any node serves any key; W=2 is read by R=2 through every other node -----
ok_all=1
for k in $(seq 1 20); do
	w=${nodes[$((k % 5))]}
	dkv "$w" -q -w 2 put "key-$k" "value-$k" || { ok_all=0; echo "# put key-$k via $w failed"; }
done
check "20 W=2 writes through all five nodes are acknowledged" test $ok_all = 1
ok_all=1
for k in $(seq 1 20); do
	for n in "${nodes[@]}"; do
		got=$(dkv "$n" -q -r 2 get "key-$k") || ok_all=0
		[[ $got == "value-$k" ]] || { ok_all=0; echo "# $n: key-$k = '$got'"; }
	done
done
check "each is read with R=2 through every node" test $ok_all = 1

# --- load: thousands of replicated requests on the same peer connections -------
BENCH=$top_builddir/src/dynkv-bench
out=$(timeout 120 "$BENCH" --host "127.0.0.1:$port_n1,127.0.0.1:$port_n2,127.0.0.1:$port_n3" \
	--workload mixed:50/50 --requests 8000 --clients 8 --pipeline 4 --keys 2000 \
	--value-size 100 -r 2 -w 2 --timeout 10 --json 2>"$tmp/bench.err")
check "8000 replicated requests over three coordinators all succeed" test "$(python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["ops"], r["errors"])' <<<"$out")" = "8000 0"
# --rate: an open loop keeps to its schedule (400 requests at 400/s: the
# last is due 0.9975 s in, so the run cannot end sooner; only that bound is
# checked, never how late a loaded machine makes it).
out=$(timeout 120 "$BENCH" --host "127.0.0.1:$port_n1,127.0.0.1:$port_n2,127.0.0.1:$port_n3" \
	--workload mixed:50/50 --requests 400 --rate 400 --clients 8 --keys 2000 \
	--value-size 100 -r 2 -w 2 --timeout 10 --json 2>"$tmp/bench.err")
check "400 requests paced at 400/s all succeed and take at least 0.99 s" test "$(python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["ops"], r["errors"], r["rate"], r["seconds"] >= 0.99)' <<<"$out")" = "400 0 400 True"
# --interval: a line on stderr per 0.25 s of the run; their ops add up to
# the run's, and there are as many lines as quarter seconds (give or take
# the last, partial one).
out=$(timeout 120 "$BENCH" --host "127.0.0.1:$port_n1,127.0.0.1:$port_n2,127.0.0.1:$port_n3" \
	--workload mixed:50/50 --requests 400 --rate 400 --clients 8 --keys 2000 --interval 0.25 \
	--value-size 100 -r 2 -w 2 --timeout 10 --json 2>"$tmp/bench.err")
check "--interval lines add up to the run's 400 requests, one line per 0.25 s" test "$(python3 -c '
import json, re, sys
r = json.load(open(sys.argv[1]))
lines = [l for l in open(sys.argv[2]) if l.startswith("interval ")]
ops = sum(int(re.search(r"s: +(\d+) ops", l).group(1)) for l in lines)
want = r["seconds"] / 0.25
print(r["ops"], ops, abs(len(lines) - want) <= 1.5)' <(echo "$out") "$tmp/bench.err")" = "400 400 True"

# --- preference lists --------------------------------------------------------
# The primaries of a key, as "name" words of this test.
name_of_port() {
	local n p
	for n in "${nodes[@]}"; do
		p="port_$n"
		[[ "127.0.0.1:${!p}" == "$1" ]] && { echo "$n"; return; }
	done
}
primaries_of() {
	adm n1 --json preflist "$1" | python3 -c '
import json, sys
print(" ".join(m["addr"] for m in json.load(sys.stdin)["preflist"] if m["primary"]))'
}
pl=$(primaries_of repair-key)
read -r -a paddr <<<"$pl"
check "a key has three primaries" test "${#paddr[@]}" = 3
p1=$(name_of_port "${paddr[0]}")
p2=$(name_of_port "${paddr[1]}")
p3=$(name_of_port "${paddr[2]}")
check "preflist is the same through another node" test "$(adm n5 --json preflist repair-key |
	python3 -c 'import json,sys; print(" ".join(m["addr"] for m in json.load(sys.stdin)["preflist"] if m["primary"]))')" = "$pl"

# --- a W=1 write reaches all N replicas through read repair -------------------
kill_node "$p3"
check "the coordinator sees the killed replica down" wait_liveness "$p1" "${paddr[2]}" down 20
check "a W=1 write with one replica dead is acknowledged" dkv "$p1" -q -w 1 put repair-key repaired
# A fallback took the dead replica's copy with a hint (sloppy quorum); stop
# it, so that the replica comes back without it and read repair must act.
holder=""
for n in "${nodes[@]}"; do
	[[ $n == "$p3" ]] && continue
	h=$(adm "$n" --json hints | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending"])')
	[[ $h -gt 0 ]] && holder=$n
done
check "a fallback holds the dead replica's write as a hint" test -n "$holder"
[[ -n $holder ]] && kill_node "$holder"
restart_node "$p3" "${probe[@]}" || bail "$p3 did not restart"
check "the restarted replica is up again for the other two" \
	eval 'wait_liveness "$p1" "${paddr[2]}" up 20 && wait_liveness "$p2" "${paddr[2]}" up 20'
# R=1 at the stale replica: its own copy answers first
found=$(dkv "$p3" --json -r 1 get repair-key 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["found"])')
check "the restarted replica missed it (R=1 at that replica: not found)" test "$found" = False
repaired=0
for ((i = 0; i < 50; i++)); do
	[[ $(dkv "$p3" -q -r 1 get repair-key) == repaired ]] && { repaired=1; break; }
	sleep 0.1
done
check "read repair gave the stale replica the value (R=1 at that replica)" test $repaired = 1
check "a read with R=3 through another node returns it" \
	test "$(dkv "$p2" -q -r 3 get repair-key)" = repaired
check "the stale replica's own read counted the repair it made" test "$(adm "$p3" --json status |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["read_repairs"] > 0)')" = True
[[ -n $holder ]] && { restart_node "$holder" "${probe[@]}" || bail "$holder did not restart"; }

# --- siblings and their resolution -------------------------------------------
dkv n1 -q -w 3 --sibling put sib-key from-n1 || true
dkv n4 -q -w 3 --sibling put sib-key from-n4 || true
out=$(dkv n2 --json -r 3 get sib-key 2>/dev/null)
nvals=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["values"]))' <<<"$out")
check "two blind writes through different nodes are siblings" test "$nvals" = 2
ctx=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["context"])' <<<"$out")
check "a write with the merged context is acknowledged" dkv n3 -q -w 3 --context "$ctx" put sib-key resolved
ok_all=1
for n in "${nodes[@]}"; do
	[[ $(dkv "$n" -q -r 3 get sib-key) == resolved ]] || ok_all=0
done
check "... and resolves them on every node" test $ok_all = 1

# --- failure detection -------------------------------------------------------
kill_node n5
t0=$(date +%s%N)
ok_all=1
for n in n1 n2 n3 n4; do
	wait_liveness "$n" "127.0.0.1:$port_n5" down 30 || { ok_all=0; echo "# $n: n5 not down"; }
done
t1=$(date +%s%N)
check "a killed node is reported down by every other node" test $ok_all = 1
echo "# every node saw the killed node down after $(((t1 - t0) / 1000000)) ms (probe 200ms, suspect 1s)"
adm n2 members >"$tmp/members.txt"
check "the members table shows it down" grep -q "127.0.0.1:$port_n5 .*valid *down" "$tmp/members.txt"
check "liveness does not change the ring" test "$(adm n2 --json ring |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ownership"]))')" = 5
restart_node n5 --log-level info || bail "n5 did not restart"
t0=$(date +%s%N)
ok_all=1
for n in n1 n2 n3 n4; do
	wait_liveness "$n" "127.0.0.1:$port_n5" up 30 || { ok_all=0; echo "# $n: n5 not up"; }
done
t1=$(date +%s%N)
check "after a restart (only --data-dir and --listen) it is up again everywhere" test $ok_all = 1
echo "# up again everywhere $(((t1 - t0) / 1000000)) ms after the restart"

# --- a paused node refutes when it resumes -----------------------------------
kill -STOP "$pid_n5"
gone=0
for ((i = 0; i < 100; i++)); do
	[[ $(liveness_of n1 "127.0.0.1:$port_n5") != up ]] && { gone=1; break; }
	sleep 0.1
done
check "a paused node (SIGSTOP) is suspected" test $gone = 1
sleep 1.5
kill -CONT "$pid_n5"
t0=$(date +%s%N)
ok_all=1
for n in n1 n2 n3 n4; do
	wait_liveness "$n" "127.0.0.1:$port_n5" up 30 || { ok_all=0; echo "# $n: n5 not up"; }
done
t1=$(date +%s%N)
check "after SIGCONT it refutes and is up again everywhere" test $ok_all = 1
echo "# up again everywhere $(((t1 - t0) / 1000000)) ms after SIGCONT"

# --- a quorum that cannot be met ----------------------------------------------
pl=$(primaries_of quorum-key)
read -r -a qaddr <<<"$pl"
q1=$(name_of_port "${qaddr[0]}")
q1port=${qaddr[0]##*:}
q2=$(name_of_port "${qaddr[1]}")
q3=$(name_of_port "${qaddr[2]}")
kill_node "$q2"
kill_node "$q3"
wait_liveness "$q1" "${qaddr[1]}" down 20 || true
wait_liveness "$q1" "${qaddr[2]}" down 20 || true
check "W=2 with two of three replicas dead succeeds through fallbacks (sloppy quorum)" \
	dkv "$q1" -q -w 2 --sibling put quorum-key v0
st=0
dkv "$q1" -w 2 --pw 2 --sibling put quorum-key v 2>"$tmp/quorum.err" || st=$?
check "PW=2 with two of three primaries dead fails with exit status 3" test $st = 3
check "... saying how many answered" \
	grep -q 'quorum not met: 1 of pw=2 primary replicas answered (3 of n_val=3 replicas reachable)' "$tmp/quorum.err"
st=0
dkv "$q1" -r 2 --pr 2 get quorum-key 2>"$tmp/quorum-r.err" || st=$?
check "PR=2 likewise" test $st = 3
check "... with its message" grep -q 'quorum not met: 1 of pr=2 primary replicas answered' "$tmp/quorum-r.err"
check "W=1 still succeeds (the write is available)" dkv "$q1" -q -w 1 --sibling put quorum-key v1

# --- admin guards --------------------------------------------------------------
live=()
for n in n1 n2 n3 n4 n5; do [[ $n == "$q2" || $n == "$q3" ]] || live+=("$n"); done
other_port_var="port_${live[1]}"
st=0
adm "${live[0]}" remove "127.0.0.1:${!other_port_var}" >"$tmp/remove.out" 2>&1 || st=$?
check "remove of a member that is up is refused (exit 1)" test $st = 1
check "... with a message that says to ask it to leave" grep -q 'is up; remove is for a node that is gone for good' "$tmp/remove.out"
sed 's/^/# /' "$tmp/remove.out"
st=0
adm "$q1" remove nosuchnode >/dev/null 2>&1 || st=$?
check "remove of an unknown member fails (exit 1)" test $st = 1

# --- remove of the two dead members ---------------------------------------------
# Every member takes part in a change, so the join and leave below need
# the two killed members out: they are down, and the others hold every
# partition they held, so remove needs no --force.
check "remove of a dead member" adm "$q1" remove "${qaddr[1]}"
check "... and of another" adm "$q1" remove "${qaddr[2]}"
wait_for "ring_settled ${live[*]}" 60
check "the 3 live nodes settle without them (their partitions rebuilt from the others)" \
	ring_settled "${live[@]}"

# --- join and leave of a running node ------------------------------------------
start_node n6 "${probe[@]}" --n-val 3 || bail "n6 did not start"
st=0
adm n6 join "127.0.0.1:$q1port" >"$tmp/join.out" 2>&1 || st=$?
check "dynkv-admin join SEED makes a running node a member" test $st = 0
sed 's/^/# /' "$tmp/join.out"
joined=0
for ((i = 0; i < 100; i++)); do
	[[ $(adm "$q1" --json members | python3 -c '
import json, sys
print(sum(1 for m in json.load(sys.stdin)["members"] if m["status"] == "valid"))') == 4 ]] &&
		{ joined=1; break; }
	sleep 0.1
done
check "... and every member learns of it" test $joined = 1
check "a node may leave" adm n6 leave
left=0
for ((i = 0; i < 600; i++)); do
	[[ $(adm "$q1" --json members | python3 -c '
import json, sys
print([m["status"] for m in json.load(sys.stdin)["members"] if m["id"].endswith(sys.argv[1])][0])' \
		":$port_n6") == removed ]] && { left=1; break; }
	sleep 0.1
done
check "... and is then removed everywhere" test $left = 1
st=0
timeout 30 tail --pid="${node_pids[n6]}" -f /dev/null || true
wait "${node_pids[n6]}" || st=$?
unset "node_pids[n6]"
check "... and its dynkvd exits by itself, with status 0" test $st = 0
check "... saying so in its log" grep -q 'left the cluster: stopping (exit status 0)' "$tmp/n6.log"

finish
