#!/usr/bin/env bash
# test_transfer.sh -- ownership transfer with real dynkvd processes: a 4th
# node joins 3 that hold data, under load.  Its transfers are throttled,
# shown by dynkv-admin transfers, paused and resumed, interrupted by a
# kill -9 and resumed from their cursors; reads never miss a key written
# before the join, no write acknowledged during it is lost.  Then one of
# the four leaves under load and exits by itself, and the new node alone
# serves every key.  Every wait is bounded.
. "${top_srcdir:-.}/tests/integration/lib.sh"

# Frames of 96 KiB: a transfer batch is half of one, so a partition of
# ~190 KB (3000 keys of 4 KiB over 64 partitions) takes a few batches from
# each source (a cursor in the middle).
opts=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s
      --push-pull-interval 1s --request-timeout 3s --ring-size 64
      --max-value-size 16k --max-frame 96k)
BENCH=$top_builddir/src/dynkv-bench
NKEYS=${TRANSFER_KEYS:-3000}

xfer() {      # xfer NODE FIELD...: fields of dynkv-admin --json transfers
	local n=$1
	shift
	adm "$n" --json transfers | python3 -c '
import json, sys
r = json.load(sys.stdin)
a = r["active"]
out = []
for f in sys.argv[1:]:
    if f == "nactive": out.append(len(a))
    elif f == "bytes": out.append(sum(x["bytes"] for x in a))
    elif f == "fields": out.append(",".join(sorted(a[0])) if a else "-")
    else: out.append(r[f])
print(*out)' "$@"
}

start_cluster3 "${opts[@]}"
ok "3 nodes settled on one ring epoch"

# Data: NKEYS keys of 4 KiB by the bench (every key put once, W=all), and
# 100 keys of known values.
out=$(timeout 120 "$BENCH" --host "127.0.0.1:$port_n1,127.0.0.1:$port_n2,127.0.0.1:$port_n3" \
	--workload get --requests 1 --keys "$NKEYS" --clients 8 --pipeline 4 \
	--value-size 4096 -w all --timeout 10 --json 2>"$tmp/bench.err")
check "$NKEYS keys of 4 KiB preloaded with W=all" test "$(python3 -c '
import json, sys
print(json.load(sys.stdin)["errors"])' <<<"$out")" = 0
fails=0
for ((k = 0; k < 100; k++)); do
	dkv "n$((k % 3 + 1))" -q -w all put "known-$k" "value-$k" 2>/dev/null || fails=$((fails + 1))
done
check "100 known keys written with W=all" test $fails = 0

# The join, throttled to 256 KiB/s (until the restart below lifts it).
start_node n4 "${opts[@]}" --seeds "127.0.0.1:$port_n1" --transfer-rate 256k --transfer-limit 2 ||
	bail "n4 did not start"
wait_for '[[ $(xfer n4 nactive) -gt 0 ]]' 20 || bail "n4 started no transfer"
ok "n4 receives its partitions (dynkv-admin transfers)"
wait_for 'adm n4 transfers >"$tmp/transfers.txt" && grep -q "^ *[0-9]" "$tmp/transfers.txt"' 10
sed 's/^/# /' "$tmp/transfers.txt" | head -5
check "the text shows partition, source, bytes of the total and time left" \
	grep -q "PART .*FROM .*BYTES .*OF .*ETA_S" "$tmp/transfers.txt"
check "the JSON has the fields the manual lists" test "$(xfer n4 fields)" = \
	"bytes,error,eta_s,from,keys,partition,rate,source,sources,to,total_bytes"
check "at most transfer_limit (2) at once" test "$(xfer n4 nactive)" -le 2
check "the text shows the pace the node receives at" grep -q "^pace: [0-9.]* MB/s received now (loop delay [0-9]* us, the last source's [0-9]* us; slowed in [0-9]* of [0-9]* windows)" "$tmp/transfers.txt"
pace=$(adm n4 --json transfers | python3 -c '
import json, sys
p = json.load(sys.stdin)["pace"]
print(p["rate"], p["windows"])')
check "the pace allows between 64K (its floor) and transfer_rate (256K) a second ($pace)" \
	python3 -c 'import sys; r, w = map(int, sys.argv[1:]); sys.exit(not (65536 <= r <= 262144 and w > 0))' $pace

# Reads of the known keys through every node, R=1, while it moves: never
# a miss (reads count in the old epoch until the new node holds its part).
missing=0
for ((k = 0; k < 100; k++)); do
	v=$(dkv "n$((k % 4 + 1))" -q -r 1 get "known-$k" 2>/dev/null) || { missing=$((missing + 1)); continue; }
	[[ $v == "value-$k" ]] || missing=$((missing + 1))
done
check "no read with R=1 misses a key during the transfer ($missing missed)" test $missing = 0

# Pause: nothing more arrives; resume: it goes on.
check "transfers pause" adm n4 transfers pause
b0=$(xfer n4 bytes)
sleep 1.5
b1=$(xfer n4 bytes)
check "paused: no byte merged in 1.5 s ($b0 -> $b1)" test "$b0" = "$b1"
check "paused shows in the report" test "$(xfer n4 paused)" = True
check "transfers resume" adm n4 transfers resume
wait_for '[[ $(xfer n4 bytes) -gt $b1 ]]' 10
check "resumed: bytes arrive again" test "$(xfer n4 bytes)" -gt "$b1"

# kill -9 in the middle, restart (no longer throttled): it resumes from its
# cursors (TRANSFERS), and the log says so.  Killed once the file holds an
# active transfer past its start (state 2, a source or a cursor not 0).
mid_cursor() {
	awk 'NR > 1 && $2 == 2 && ($7 != 0 || $8 != "0") { found = 1 } END { exit !found }' \
		"$tmp/n4/TRANSFERS" 2>/dev/null
}
wait_for mid_cursor 30
check "TRANSFERS keeps the cursor of a transfer in the middle" mid_cursor
kill_node n4
restart_node n4 "${opts[@]}" --transfer-rate 64M || bail "n4 did not restart"
wait_for 'grep -q "(resumed)" "$tmp/n4.log"' 20
check "after kill -9 a transfer resumes from its cursor" grep -q "(resumed)" "$tmp/n4.log"

# Load during the rest of the change: every request succeeds.
out=$(timeout 120 "$BENCH" --host "127.0.0.1:$port_n1,127.0.0.1:$port_n2,127.0.0.1:$port_n3,127.0.0.1:$port_n4" \
	--workload mixed:50/50 --requests 4000 --clients 8 --keys "$NKEYS" --no-preload \
	--key-prefix "load:" --value-size 512 -r 2 -w 2 --timeout 10 --json 2>"$tmp/bench.err")
check "4000 requests through all 4 nodes during the change all succeed" test "$(python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["ops"], r["errors"])' <<<"$out")" = "4000 0"

wait_for "ring_settled n1 n2 n3 n4" 60 || { adm n4 transfers | sed 's/^/# /'; }
check "the 4 nodes settle on one ring epoch" ring_settled n1 n2 n3 n4
keys4=$(adm n4 --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"])')
check "n4 holds about its share of the keys ($keys4)" test "$keys4" -gt $((NKEYS * 3 / 4 / 2))
adm n4 transfers | sed 's/^/# /'

# A leave under load: n2 hands its partitions over while the bench runs
# through the other three, then exits by itself with status 0.
timeout 120 "$BENCH" --host "127.0.0.1:$port_n1,127.0.0.1:$port_n3,127.0.0.1:$port_n4" \
	--workload mixed:50/50 --duration 6 --clients 4 --keys "$NKEYS" --no-preload \
	--key-prefix "leave:" --value-size 512 -r 2 -w 2 --timeout 10 --json \
	>"$tmp/leave-bench.json" 2>"$tmp/bench.err" &
bench_pid=$!
sleep 1
t0=$(date +%s%N)
check "n2 leaves while holding data" adm n2 leave
st=0
timeout 60 tail --pid="${node_pids[n2]}" -f /dev/null || true
wait "${node_pids[n2]}" || st=$?
unset "node_pids[n2]"
t1=$(date +%s%N)
check "... and its dynkvd exits with status 0 once its partitions moved ($(((t1 - t0) / 1000000)) ms)" test $st = 0
wait "$bench_pid"
check "every request of the bench during the leave succeeds" test "$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["errors"], r["ops"] > 0)' "$tmp/leave-bench.json")" = "0 True"
wait_for "ring_settled n1 n3 n4" 60
check "the 3 others settle on one ring epoch" ring_settled n1 n3 n4
missing=0
for ((k = 0; k < 100; k++)); do
	v=$(dkv n1 -q -r all get "known-$k" 2>/dev/null) || { missing=$((missing + 1)); continue; }
	[[ $v == "value-$k" ]] || missing=$((missing + 1))
done
check "every known key reads back with R=all after the leave ($missing missed)" test $missing = 0

# Once settled (3 nodes, N=3: n4 is a primary of every key), n4 alone
# serves every known key: with the others stopped, a get through n4 with
# R=1 is answered by its own copy.
for n in n1 n3; do stop_node "$n"; done
missing=0
for ((k = 0; k < 100; k++)); do
	v=$(dkv n4 -q -r 1 get "known-$k" 2>/dev/null) || { missing=$((missing + 1)); continue; }
	[[ $v == "value-$k" ]] || missing=$((missing + 1))
done
check "n4 alone holds all 100 known keys ($missing missing)" test $missing = 0
finish
