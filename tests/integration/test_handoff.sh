#!/usr/bin/env bash
# test_handoff.sh -- sloppy quorum and hinted handoff with real dynkvd
# processes: 4 nodes, N=3, one killed.  Every W=3 put succeeds through a
# fallback, PW=3 is refused for the keys the dead node owns, R=3 gets
# succeed; after its restart its hints are delivered (dynkv-admin hints
# drains to 0) and it alone, the others stopped, serves every key it owns.
# Every wait is bounded.
. "${top_srcdir:-.}/tests/integration/lib.sh"

probe=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s
       --push-pull-interval 1s --request-timeout 3s --sync always --ring-size 64)
NKEYS=${HANDOFF_KEYS:-120}

sees_down() {   # NAME ADDR
	[[ $(adm "$1" --json members | python3 -c '
import json, sys
for m in json.load(sys.stdin)["members"]:
    if m["addr"] == sys.argv[1]:
        print(m["liveness"])' "$2") == down ]]
}

pending_of() {
	adm "$1" --json hints | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending"])'
}

nodes=(n1 n2 n3 n4)
start_node n1 "${probe[@]}" || bail "n1 did not start"
for n in n2 n3 n4; do
	start_node "$n" "${probe[@]}" --seeds "127.0.0.1:$port_n1" || bail "$n did not start"
done
members_all() {
	local n
	for n in "${nodes[@]}"; do
		[[ $(adm "$n" --json ring | python3 -c 'import json,sys; r = json.load(sys.stdin); print(len(r["ownership"]), r["settled"])') == "4 True" ]] || return 1
	done
}
wait_for members_all 30 || bail "the 4 nodes did not converge"
ok "4 nodes converged"

# Which keys n4 owns (a primary of), from the preference lists.
owner_addr="127.0.0.1:$port_n4"
owned=()
for ((k = 0; k < NKEYS; k++)); do
	if adm n1 --json preflist "key-$k" | python3 -c '
import json, sys
pl = json.load(sys.stdin)
sys.exit(0 if any(e["addr"] == sys.argv[1] and e["primary"] for e in pl["preflist"]) else 1)' "$owner_addr"
	then
		owned+=("$k")
	fi
done
check "n4 owns some of the $NKEYS keys (${#owned[@]})" test "${#owned[@]}" -gt 0

kill_node n4
wait_for 'sees_down n1 $owner_addr && sees_down n2 $owner_addr && sees_down n3 $owner_addr' 30 ||
	bail "n4 not seen down"
ok "n4 killed and seen down"

fails=0
for ((k = 0; k < NKEYS; k++)); do
	at=${nodes[k % 3]}
	dkv "$at" -w 3 put "key-$k" "value-$k" >/dev/null 2>>"$tmp/err" || fails=$((fails + 1))
done
check "every W=3 put succeeds with one of four nodes down ($fails failed)" test "$fails" -eq 0

refused=0
for k in "${owned[@]}"; do
	st=0
	dkv n1 --pw 3 put "key-$k" "value-$k" >/dev/null 2>"$tmp/pw.err" || st=$?
	[[ $st -eq 3 ]] && grep -q 'primary' "$tmp/pw.err" && refused=$((refused + 1))
done
check "PW=3 is refused for every key n4 owns (${refused} of ${#owned[@]})" test "$refused" -eq "${#owned[@]}"

bad=0
for ((k = 0; k < NKEYS; k++)); do
	v=$(dkv "${nodes[k % 3]}" -q -r 3 get "key-$k" 2>/dev/null) || { bad=$((bad + 1)); continue; }
	[[ $v == "value-$k" ]] || bad=$((bad + 1))
done
check "every R=3 get succeeds and reads the value ($bad bad)" test "$bad" -eq 0

held=$(( $(pending_of n1) + $(pending_of n2) + $(pending_of n3) ))
check "the fallbacks hold hints for n4 ($held keys)" test "$held" -gt 0
adm n1 hints >"$tmp/hints.txt" 2>&1
check "dynkv-admin hints prints a table naming n4" grep -q "$owner_addr" "$tmp/hints.txt"

restart_node n4 "${probe[@]}" || bail "n4 did not restart"
drained() {
	local n
	for n in n1 n2 n3; do
		[[ $(pending_of "$n") == 0 ]] || return 1
	done
}
t0=$(date +%s%N)
if wait_for drained 60; then
	ok "hints delivered to n4 in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
else
	not_ok "hints still held 60 s after n4 came back"
	for n in n1 n2 n3; do adm "$n" hints; done
fi

# Each delivery's rate yields to requests (pace.h): every fallback reports
# its pace, between 1/32 of handoff_rate (32M) and handoff_rate, and logs
# what it did at the delivery's end.
paced=0
for n in n1 n2 n3; do
	r=$(adm "$n" --json hints | python3 -c '
import json, sys
p = json.load(sys.stdin)["pace"]
ok = {"rate", "delay_us", "owner_delay_us", "slowdowns"} <= p.keys() and 1048576 <= p["rate"] <= 33554432
print(1 if ok else 0)') || r=0
	paced=$((paced + r))
done
check "every fallback reports its delivery's pace ($paced of 3)" test "$paced" -eq 3
check "the fallbacks log each delivery's pace" \
	grep -q "keys delivered (pace: slowed in [0-9]* of [0-9]* windows, now [0-9]* KiB/s)" "$tmp"/n[123].log

for n in n1 n2 n3; do stop_node "$n"; done
missing=0
for k in "${owned[@]}"; do
	v=$(dkv n4 -q -r 1 get "key-$k" 2>/dev/null) || { missing=$((missing + 1)); continue; }
	[[ $v == "value-$k" ]] || missing=$((missing + 1))
done
check "n4 alone serves every key it owns (${missing} of ${#owned[@]} missing)" test "$missing" -eq 0
finish
