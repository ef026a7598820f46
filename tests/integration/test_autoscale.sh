#!/usr/bin/env bash
# test_autoscale.sh -- dynkv-admin capacity and contrib/dynkv-autoscale with
# real dynkvd processes: 3 nodes and 2 standbys, test thresholds (a 3 s
# window; grow above 300 requests a second a node, shrink under 50).  Load
# makes the cluster grow to 4 from the pool; once the load is gone it
# shrinks back to 3 (the standby leaves and exits 0), and no key is lost.
# On one machine a 4th node adds no capacity: this shows the mechanism.
# Every wait is bounded; the autoscaler stops by itself (--for).
. "${top_srcdir:-.}/tests/integration/lib.sh"

opts=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s
      --push-pull-interval 1s --request-timeout 3s --ring-size 64
      --capacity-window 3s --capacity-grow-ops 300 --capacity-shrink-ops 50
      --capacity-grow-p99 2s)
BENCH=$top_builddir/src/dynkv-bench
AUTOSCALE=$top_srcdir/contrib/dynkv-autoscale

start_node n1 "${opts[@]}" || bail "n1 did not start"
for n in n2 n3; do
	start_node "$n" "${opts[@]}" --seeds "127.0.0.1:$port_n1" || bail "$n did not start"
done
for n in s1 s2; do   # standbys: running, alone, not members
	start_node "$n" "${opts[@]}" || bail "$n did not start"
done
wait_for "ring_settled n1 n2 n3" 30 || bail "the 3 nodes did not settle"
ok "3 nodes settled; 2 standbys run alone"

valid_members() {
	adm n1 --json members | python3 -c '
import json, sys
print(sum(1 for m in json.load(sys.stdin)["members"] if m["status"] == "valid"))'
}
verdict() {
	adm n1 --json capacity | python3 -c 'import json,sys; print(json.load(sys.stdin)["verdict"])'
}

# capacity, idle: every member could take more, but 3 is n_val: hold.
adm n1 capacity >"$tmp/capacity.txt"
sed 's/^/# /' "$tmp/capacity.txt"
check "capacity lists every member" test "$(grep -c '^127.0.0.1:' "$tmp/capacity.txt")" = 3
check "idle with n_val members: hold, saying why" grep -q "^cluster: hold (every member could take more, but 3 members is n_val" "$tmp/capacity.txt"
check "the JSON has the fields the manual lists" test "$(adm n1 --json capacity | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(sorted(r), sorted(r["nodes"][0]))')" = "['nodes', 'reason', 'unreachable', 'verdict'] ['addr', 'disk_bytes', 'id', 'keydir_bytes', 'keys', 'members', 'n_val', 'ops', 'ops_per_s', 'p99_us', 'reason', 'verdict', 'window_s']"

fails=0
for ((k = 0; k < 100; k++)); do
	dkv "n$((k % 3 + 1))" -q -w all put "known-$k" "value-$k" 2>/dev/null || fails=$((fails + 1))
done
check "100 known keys written with W=all" test $fails = 0

"$AUTOSCALE" --seed "127.0.0.1:$port_n1" --standby "127.0.0.1:$port_s1,127.0.0.1:$port_s2" \
	--interval 0.5 --cooldown 12 --for 90 --admin "$ADMIN" >"$tmp/autoscale.log" 2>&1 &
scaler=$!

# Load: 1200 requests a second through the 3 nodes, 9 s (400 a node).
t0=$(date +%s%N)
timeout 60 "$BENCH" --host "127.0.0.1:$port_n1,127.0.0.1:$port_n2,127.0.0.1:$port_n3" \
	--workload mixed:80/20 --rate 1200 --duration 9 --clients 6 --keys 500 --value-size 256 \
	-r 2 -w 2 --timeout 10 --json >"$tmp/load.json" 2>"$tmp/bench.err" &
load=$!
wait_for '[[ $(valid_members) == 4 ]]' 30
t_grow=$(( ($(date +%s%N) - t0) / 1000000 ))
check "under load it grows to 4 members from the pool ($t_grow ms)" test "$(valid_members)" = 4
wait "$load"
check "the load's requests all succeed" test "$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["errors"], r["ops"] > 0)' "$tmp/load.json")" = "0 True"
wait_for '[[ $(valid_members) == 3 ]] && ring_settled n1 n2 n3' 60
t_shrink=$(( ($(date +%s%N) - t0) / 1000000 ))
check "without load it shrinks back to 3 ($t_shrink ms)" test "$(valid_members)" = 3
left=
for n in s1 s2; do
	kill -0 "${node_pids[$n]}" 2>/dev/null || left=$n
done
check "the standby that left exited by itself" test -n "$left"
if [[ -n $left ]]; then
	st=0
	wait "${node_pids[$left]}" || st=$?
	unset "node_pids[$left]"
	check "... with status 0" test $st = 0
fi
kill "$scaler" 2>/dev/null
wait "$scaler" 2>/dev/null
sed 's/^/# /' "$tmp/autoscale.log"
check "the autoscaler logged the grow with its reason" grep -q "decision grow (.*capacity_grow_ops.*joins" "$tmp/autoscale.log"
check "... and the shrink" grep -q "decision shrink (every one of the 4 members.*leaves" "$tmp/autoscale.log"

missing=0
for ((k = 0; k < 100; k++)); do
	v=$(dkv n1 -q -r all get "known-$k" 2>/dev/null) || { missing=$((missing + 1)); continue; }
	[[ $v == "value-$k" ]] || missing=$((missing + 1))
done
check "no key lost: all 100 read back with R=all ($missing missed)" test $missing = 0
finish
