#!/bin/bash
# transfer-load.sh -- issue 12: what ownership transfer costs the requests
# being served, and a leave under load.
#   1. 3 nodes, KEYS (default 1M) keys of 1 KiB preloaded at W=all;
#   2. IDLE: an open-loop mixed 90/10 load at RATE ops/s (default 2000)
#      for SECS (default 20) s: ops/s, p50, p99;
#   3. JOIN: node 4 joins with --transfer-rate XRATE (default 16M, a
#      throttled transfer) and the same load runs while it receives;
#   4. Redis (appendonly everysec) under the same load, for reference;
#   5. LEAVE (unless LEAVE=0): once the ring settled, node 4 leaves while the same load
#      runs: time until its process exits, its status, the load's errors,
#      and the keys the 3 others hold once they dropped what they no
#      longer own (3 x KEYS when none is lost).
# Run in an empty directory on a disk (data in n1..n4, ports 17301-17304,
# Redis on 17399); every process it starts is killed on exit.  Not part
# of the suite.
set -u
B=${B:-$(cd "$(dirname "$0")/../.." && pwd)/build/src}
KEYS=${KEYS:-1000000}
RATE=${RATE:-2000}
SECS=${SECS:-20}
XRATE=${XRATE:-16M}
N4OPTS=${N4OPTS:-}           # more options for node 4
LEAVE=${LEAVE:-1}            # 0: stop after the Redis run
SETTLE_S=${SETTLE_S:-1200}   # the longest wait for the join to settle
O="--ring-size 512 --log-level info"
H3=127.0.0.1:17301,127.0.0.1:17302,127.0.0.1:17303
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
settled() {   # settled N: node 1 sees N members and one ring epoch
	local r
	r=$($B/dynkv-admin --host 127.0.0.1:17301 --json ring 2>/dev/null) || return 1
	[[ $r == *'"settled":true'* && $(grep -o '"replicas"' <<<"$r" | wc -l) == "$1" ]]
}
load() {      # load NAME HOSTS [TARGET]: the open-loop load, a summary line
	$B/dynkv-bench --host "$2" --target "${3:-dynkv}" --workload mixed:90/10 --no-preload \
		--keys "$KEYS" --clients 16 --rate "$RATE" --duration "$SECS" --interval 2 \
		--json >"$1.json" 2>"$1.err"
	python3 - "$1" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1] + ".json"))
def ms(o, k): return "%.2f" % (o[k] / 1000.0)
print("%-10s ops/s %7.0f errors %d misses %d | all p50 %s p99 %s | get p99 %s | put p99 %s ms" % (
    sys.argv[1], j["ops_per_sec"], j["errors"], j["misses"], ms(j, "p50_us"), ms(j, "p99_us"),
    ms(j["get"], "p99_us"), ms(j["put"], "p99_us")))
EOF
}
start() {     # start I [OPTIONS]
	local i=$1
	shift
	$B/dynkvd --data-dir "n$i" --listen "127.0.0.1:1730$i" $O "$@" >"n$i.log" 2>&1 &
	pids+=($!)
}

start 1
sleep 0.5
start 2 --seeds 127.0.0.1:17301
start 3 --seeds 127.0.0.1:17301
for i in $(seq 1 300); do settled 3 && break; sleep 0.2; done
t=$(now)
$B/dynkv-bench --host $H3 --workload get --requests 1 --keys "$KEYS" --clients 16 --pipeline 8 \
	--value-size 1024 -w all --json >preload.json 2>preload.err
echo "preload of $KEYS keys: $(since "$t") s"
load idle $H3

# shellcheck disable=SC2086
start 4 --seeds 127.0.0.1:17301 --transfer-rate "$XRATE" $N4OPTS
n4=${pids[-1]}
t=$(now)
load join $H3
$B/dynkv-admin --host 127.0.0.1:17304 transfers | head -4
for ((i = 0; i < SETTLE_S * 5; i++)); do settled 4 && break; sleep 0.2; done
echo "join with transfer_rate $XRATE settled after $(since "$t") s"

redis-server --port 17399 --save '' --appendonly yes --appendfsync everysec \
	--dir "$PWD" --daemonize no >redis.log 2>&1 &
pids+=($!)
sleep 1
$B/dynkv-bench --target redis --host 127.0.0.1:17399 --workload put --requests "$KEYS" \
	--keys "$KEYS" --clients 16 --pipeline 8 --json >/dev/null 2>&1
load redis 127.0.0.1:17399 redis
((LEAVE)) || exit 0

SECS=$((SECS * 6)) load leave-load $H3 &
lp=$!
sleep 2
t=$(now)
$B/dynkv-admin --host 127.0.0.1:17304 leave
wait "$n4"
st=$?
echo "leave: node 4 exited with status $st after $(since "$t") s"
wait "$lp"
for i in $(seq 1 600); do settled 3 && break; sleep 0.2; done
sleep 6   # the old owners drop what they no longer hold (every 5 s)
total=0
for i in 1 2 3; do
	k=$($B/dynkv-admin --host "127.0.0.1:1730$i" --json status | grep -o '"keys":[0-9]*' | cut -d: -f2)
	echo "node $i holds $k keys"
	total=$((total + k))
done
echo "keys held in all: $total (3 x $KEYS = $((3 * KEYS)): $((3 * KEYS - total)) missing)"
