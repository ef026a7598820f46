#!/usr/bin/env bash
# test_identity.sh -- a node records nothing until it has bound its
# address, and a node is its data directory: a second directory that
# claims a member's node id is refused, and dynkvd exits non-zero saying so.
# Every wait is bounded.
. "${top_srcdir:-.}/tests/integration/lib.sh"

probe=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s
       --push-pull-interval 1s)

# The ids in NAME's members view, one a line.
member_ids() {
	adm "$1" --json members | python3 -c '
import json, sys
for m in json.load(sys.stdin)["members"]:
    print(m["id"])'
}

start_node busy "${probe[@]}" --n-val 1 || bail "the first node did not start"

# --- a node that cannot bind records nothing -----------------------------------
st=0
timeout 20 "$DYNKVD" --data-dir "$tmp/second" --listen "127.0.0.1:$port_busy" --n-val 1 \
	>>"$tmp/second.log" 2>&1 </dev/null || st=$?
check "a node on a busy port exits with status 1 (was $st)" test "$st" = 1
check "it says the address is in use" grep -q 'Address already in use' "$tmp/second.log"
check "it left no NODE" test ! -e "$tmp/second/NODE"
check "it left no MEMBERS" test ! -e "$tmp/second/MEMBERS"

start_node second "${probe[@]}" --n-val 1 || bail "the second node did not start"
check "started on a free port, its node id is that address" \
	test "$(member_ids second)" = "127.0.0.1:$port_second"
check "NODE records that address" grep -qx "node_id = 127.0.0.1:$port_second" "$tmp/second/NODE"

# --- seeds given at a restart to a node alone and empty are used ---------------
stop_node second
restart_node second "${probe[@]}" --seeds "127.0.0.1:$port_busy" || bail "second did not restart"
joined=0
for ((i = 0; i < 100; i++)); do
	[[ $(member_ids busy | sort | tr '\n' ' ') == *"127.0.0.1:$port_second"* ]] && { joined=1; break; }
	sleep 0.1
done
check "a node started once alone uses its seeds at the next start" test $joined = 1

# --- another data directory with a member's id is refused ----------------------
twin_port=$(free_port)
st=0
timeout 30 "$DYNKVD" --data-dir "$tmp/twin" --listen "127.0.0.1:$twin_port" --n-val 1 \
	--node-id "127.0.0.1:$port_busy" --seeds "127.0.0.1:$port_busy" "${probe[@]}" \
	>>"$tmp/twin.log" 2>&1 </dev/null || st=$?
check "a node whose id is taken exits with status 1 (was $st)" test "$st" = 1
check "its log names the id and both addresses" \
	grep -q "node id 127.0.0.1:$port_busy is taken by another node in the cluster (actor [0-9a-f]* at 127.0.0.1:$port_busy); this node (actor [0-9a-f]* at 127.0.0.1:$twin_port)" \
	"$tmp/twin.log"
check "the member's record is untouched" \
	test "$(adm busy --json members | python3 -c '
import json, sys
print([m["addr"] for m in json.load(sys.stdin)["members"] if m["id"] == sys.argv[1]][0])' \
		"127.0.0.1:$port_busy")" = "127.0.0.1:$port_busy"
check "the member whose id it claimed logged the rival once" \
	test "$(grep -c "another node claims this node's id 127.0.0.1:$port_busy: actor [0-9a-f]* at 127.0.0.1:$twin_port" "$tmp/busy.log")" = 1

stop_node second
stop_node busy
check "both stop cleanly" test "$status_second$status_busy" = 00
finish
