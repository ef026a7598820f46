#!/usr/bin/env bash
# test_aae.sh -- anti-entropy with real dynkvd processes: 3 nodes, N=3;
# one is stopped, its partitions wiped (a lost data disk: NODE, DOTS and
# MEMBERS kept, so it is the same member), and restarted.  With no read of
# any key, anti-entropy alone gives it back every key; the other two
# stopped, it serves them all.  Every wait is bounded.
. "${top_srcdir:-.}/tests/integration/lib.sh"

opts=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s
      --push-pull-interval 1s --request-timeout 3s --ring-size 64 --aae-interval 100ms)
NKEYS=${AAE_KEYS:-300}

keys_of() {
	adm "$1" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"])'
}

start_node n1 "${opts[@]}" || bail "n1 did not start"
for n in n2 n3; do
	start_node "$n" "${opts[@]}" --seeds "127.0.0.1:$port_n1" || bail "$n did not start"
done
for ((i = 0; i < 300; i++)); do
	[[ $(adm n3 --json ring | python3 -c 'import json,sys; r = json.load(sys.stdin); print(len(r["ownership"]), r["settled"])') == "3 True" ]] && break
	sleep 0.1
done
fails=0
for ((k = 0; k < NKEYS; k++)); do
	dkv n1 -q -w 3 put "key-$k" "value-$k" 2>/dev/null || fails=$((fails + 1))
done
check "$NKEYS W=3 puts ($fails failed)" test "$fails" -eq 0
check "n3 holds them" test "$(keys_of n3)" -eq "$NKEYS"

stop_node n3
rm -rf "$tmp/n3/partitions"
restart_node n3 "${opts[@]}" || bail "n3 did not restart"
check "n3 restarted empty" test "$(keys_of n3)" -eq 0
t0=$(date +%s%N)
back=0
for ((i = 0; i < 600; i++)); do
	[[ $(keys_of n3) -eq $NKEYS ]] && { back=1; break; }
	sleep 0.1
done
check "anti-entropy alone gave n3 back all $NKEYS keys ($(( ($(date +%s%N) - t0) / 1000000 )) ms)" test $back = 1
for n in n1 n2 n3; do adm "$n" --json aae >"$tmp/aae-$n.json"; done
# The repairs may be counted by either end of an exchange: n3 asks for
# what it lacks in the exchanges it starts, the others send it in theirs.
check "dynkv-admin aae reports exchanges that repaired the $NKEYS keys" python3 -c '
import json, sys
n = int(sys.argv[1])
tot = [json.load(open(f))["totals"] for f in sys.argv[2:]]
a3 = json.load(open(sys.argv[4]))
assert sum(t["repaired"] for t in tot) >= n, tot
assert tot[2]["exchanges"] > 0 and tot[2]["trees_ready"] == len(a3["partitions"]) > 0, tot[2]
assert all(p["state"] == "ready" for p in a3["partitions"])
print("# totals n1, n2, n3:", tot)' "$NKEYS" "$tmp/aae-n1.json" "$tmp/aae-n2.json" "$tmp/aae-n3.json"
for n in n1 n2; do stop_node "$n"; done
missing=0
for ((k = 0; k < NKEYS; k++)); do
	v=$(dkv n3 -q -r 1 get "key-$k" 2>/dev/null) || { missing=$((missing + 1)); continue; }
	[[ $v == "value-$k" ]] || missing=$((missing + 1))
done
check "n3 alone serves every key ($missing missing)" test "$missing" -eq 0
finish
