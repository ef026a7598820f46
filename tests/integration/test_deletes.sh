#!/usr/bin/env bash
# test_deletes.sh -- deletes with real dynkvd processes: 4 nodes, N=3.
# Deletes made while a replica is down stay deleted after it returns (its
# hints delivered), after anti-entropy, after every node restarts, and
# after the tombstones are reaped (every node's key count drops to the
# live keys' replicas); then after another restart of every node; and
# once the stores are merged, no deleted key is left in any file.
# Every wait is bounded.
. "${top_srcdir:-.}/tests/integration/lib.sh"

# Probes patient enough that a node slowed by ASan on a busy machine is
# not taken for dead (a second node down makes W=3 impossible).
opts=(--probe-interval 500ms --probe-timeout 300ms --suspect-timeout 3s
      --push-pull-interval 1s --request-timeout 3s --ring-size 64 --sync always
      --aae-interval 100ms --tombstone-grace 2)
NKEYS=${DELETE_KEYS:-100}
nodes=(n1 n2 n3 n4)

json_field() {   # NAME COMMAND FIELD
	adm "$1" --json "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$3"
}
total_keys() {
	local n sum=0
	for n in "${nodes[@]}"; do sum=$((sum + $(json_field "$n" status keys))); done
	echo "$sum"
}
no_hints() {
	local n
	for n in "${nodes[@]}"; do [[ $(json_field "$n" hints pending) == 0 ]] || return 1; done
}
all_up() {   # every node sees all four members, each of them up, settled
	local n
	ring_settled "${nodes[@]}" || return 1
	for n in "${nodes[@]}"; do
		adm "$n" --json members | python3 -c '
import json, sys
ms = json.load(sys.stdin)["members"]
sys.exit(0 if len(ms) == 4 and all(m["liveness"] == "up" for m in ms) else 1)' || return 1
	done
}
# Key k's name: all of one length, so that no key's bytes begin another's
# (the disk scan at the end looks for them in binary files).
key() { printf 'key-%04d' "$1"; }

# Every deleted key reads as not found, every other as its value, with
# R=3 through every node.
check_keys() {
	local bad=0 k n v
	for ((k = 0; k < NKEYS; k++)); do
		n=${nodes[k % 4]}
		v=$(dkv "$n" -q -r 3 get "$(key "$k")" 2>/dev/null) || v="(not found)"
		if ((k % 2 == 0)); then
			[[ $v == "(not found)" || -z $v ]] || bad=$((bad + 1))
		else
			[[ $v == "value-$k" ]] || bad=$((bad + 1))
		fi
	done
	echo "$bad"
}
restart_all() {
	local n
	for n in "${nodes[@]}"; do stop_node "$n"; done
	for n in "${nodes[@]}"; do restart_node "$n" "${opts[@]}" || bail "$n did not restart"; done
	wait_for all_up 30 || bail "not all up after the restart"
}

start_node n1 "${opts[@]}" || bail "n1 did not start"
for n in n2 n3 n4; do
	start_node "$n" "${opts[@]}" --seeds "127.0.0.1:$port_n1" || bail "$n did not start"
done
wait_for all_up 30 || bail "the 4 nodes did not converge"
fails=0
for ((k = 0; k < NKEYS; k++)); do
	dkv "${nodes[k % 4]}" -q -w 3 put "$(key "$k")" "value-$k" 2>/dev/null || fails=$((fails + 1))
done
check "$NKEYS W=3 puts ($fails failed)" test "$fails" -eq 0
check "every node stores its replicas ($(total_keys) = 3 x $NKEYS)" test "$(total_keys)" -eq $((3 * NKEYS))

kill_node n4
sees_n4_down() {
	local n
	for n in n1 n2 n3; do
		adm "$n" --json members | python3 -c '
import json, sys
sys.exit(0 if any(m["addr"] == sys.argv[1] and m["liveness"] == "down"
                  for m in json.load(sys.stdin)["members"]) else 1)' "127.0.0.1:$port_n4" || return 1
	done
}
wait_for sees_n4_down 30 || bail "n4 not seen down by every other node"
fails=0
for ((k = 0; k < NKEYS; k += 2)); do
	if ! dkv "${nodes[k % 3]}" -q -w 3 del "$(key "$k")" 2>"$tmp/del.err"; then
		fails=$((fails + 1))
		sed 's/^/# /' "$tmp/del.err"
	fi
done
check "W=3 deletes with n4 down succeed ($fails failed)" test "$fails" -eq 0
restart_node n4 "${opts[@]}" || bail "n4 did not restart"
wait_for all_up 30 || bail "n4 not up again"
wait_for no_hints 60
check "n4's hints delivered" no_hints
check "deleted keys stay deleted after n4 returns ($(check_keys) wrong)" test "$(check_keys)" -eq 0
sleep 3
check "... after anti-entropy ($(check_keys) wrong)" test "$(check_keys)" -eq 0
restart_all
check "... after every node restarts ($(check_keys) wrong)" test "$(check_keys)" -eq 0
want=$((3 * NKEYS / 2))
t0=$(date +%s%N)
wait_for '[[ $(total_keys) -eq $want ]]' 120
check "tombstones reaped: $(total_keys) replicas left = 3 x $((NKEYS / 2)) live keys ($(( ($(date +%s%N) - t0) / 1000000 )) ms)" \
	test "$(total_keys)" -eq "$want"
check "... and the deleted keys stay deleted ($(check_keys) wrong)" test "$(check_keys)" -eq 0
sleep 3
restart_all
sleep 3
check "... after another restart and anti-entropy ($(check_keys) wrong, $(total_keys) replicas)" \
	eval 'test "$(check_keys)" -eq 0 && test "$(total_keys)" -eq "$want"'

# Merge then drops them from disk.  Every node stopped, each of its stores
# merged as a node's own merges do once a store holds enough dead data
# (tests/unit/bitcask_merge_dir), and then no file of any node holds a
# deleted key's bytes, while every live key is found on three nodes.
for n in "${nodes[@]}"; do stop_node "$n"; done
merged=0
for n in "${nodes[@]}"; do
	"$top_builddir/tests/unit/bitcask_merge_dir" "$tmp/$n" >/dev/null && merged=$((merged + 1))
done
check "every node's stores merged ($merged of 4)" test "$merged" -eq 4
read -r dead live < <(python3 - "$NKEYS" "$tmp/n1" "$tmp/n2" "$tmp/n3" "$tmp/n4" <<'EOF'
import os, re, sys
nkeys, dirs = int(sys.argv[1]), sys.argv[2:]
blobs = []
for d in dirs:
    parts = []
    for root, _, files in os.walk(d):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                parts.append(fh.read())
    blobs.append(b"\0".join(parts))
dead = live = 0
for k in range(nkeys):
    name = b"key-%04d" % k
    copies = sum(1 for b in blobs if name in b)
    if k % 2 == 0:
        dead += copies
    elif copies >= 3:
        live += 1
print(dead, live)
EOF
)
check "no record of a reaped key is left on disk once merged ($dead copies of $((NKEYS / 2)) deleted keys)" \
	test "$dead" -eq 0
check "... while every live key is on 3 nodes' disks ($live of $((NKEYS / 2)))" test "$live" -eq $((NKEYS / 2))
finish
