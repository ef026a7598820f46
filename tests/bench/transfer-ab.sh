#!/bin/bash
# transfer-ab.sh -- issue 12's goal, measured so that the machine's noise
# cancels: foreground p99 while a throttled transfer runs, against windows
# without one, interleaved in the same minutes.
#   1. 3 nodes, KEYS (default 1M) keys of 1 KiB preloaded at W=all;
#   2. ROUNDS (default 4) IDLE windows: the open-loop mixed 90/10 load at
#      RATE ops/s (default 2000) for WIN s (default 10), 3 members;
#   3. node 4 joins with --transfer-rate XRATE (default 16M); after SKIP s
#      (default 5: the change itself, node 4 opening its stores), ROUNDS
#      pairs of windows: RUN (the transfers running) then PAUSED (dynkv-admin
#      transfers pause on node 4, the same load; resume after);
#   4. each window's p99; per kind the median and the largest of its
#      windows' p99; each RUN window's p99 over the PAUSED window's right
#      after it, and the median of those ratios (the machine's noise moves
#      slowly: neighbouring windows share it); and the pace line of
#      dynkv-admin transfers after each RUN window.
# A RUN window that ends with nothing left to transfer ends the rounds (the
# figures say how many there were).  Run in an empty directory on a disk
# (n1..n4, ports 17301-17304); every process it starts is killed on exit.
# Not part of the suite.
set -u
B=${B:-$(cd "$(dirname "$0")/../.." && pwd)/build/src}
KEYS=${KEYS:-1000000}
RATE=${RATE:-2000}
WIN=${WIN:-10}
ROUNDS=${ROUNDS:-4}
SKIP=${SKIP:-5}
XRATE=${XRATE:-16M}
N4OPTS=${N4OPTS:-}
O="--ring-size 512 --log-level info"
H3=127.0.0.1:17301,127.0.0.1:17302,127.0.0.1:17303
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
for k in KEYS RATE WIN ROUNDS SKIP; do
	[[ ${!k} =~ ^[0-9]+$ ]] || { echo "$k=${!k}: not a number" >&2; exit 2; }
done
settled() {   # settled N: node 1 sees N members and one ring epoch
	local r
	r=$($B/dynkv-admin --host 127.0.0.1:17301 --json ring 2>/dev/null) || return 1
	[[ $r == *'"settled":true'* && $(grep -o '"replicas"' <<<"$r" | wc -l) == "$1" ]]
}
load() {      # load NAME: one window of the open-loop load; its p99 in us
	$B/dynkv-bench --host "$H3" --workload mixed:90/10 --no-preload --keys "$KEYS" \
		--clients 16 --rate "$RATE" --duration "$WIN" --json >"$1.json" 2>"$1.err"
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1] + ".json"))
print(j["p99_us"], j["errors"], j["ops_per_sec"])' "$1"
}
start() {     # start I [OPTIONS]
	local i=$1
	shift
	$B/dynkvd --data-dir "n$i" --listen "127.0.0.1:1730$i" $O "$@" >"n$i.log" 2>&1 &
	pids+=($!)
}
left() {      # bytes node 4 still has to receive (0 when nothing is active or waiting)
	$B/dynkv-admin --host 127.0.0.1:17304 --json transfers 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(len(r["active"]) + r["pending"])'
}

start 1
sleep 0.5
start 2 --seeds 127.0.0.1:17301
start 3 --seeds 127.0.0.1:17301
for i in $(seq 1 300); do settled 3 && break; sleep 0.2; done
$B/dynkv-bench --host $H3 --workload get --requests 1 --keys "$KEYS" --clients 16 --pipeline 8 \
	--value-size 1024 -w all --json >preload.json 2>preload.err
echo "preloaded $KEYS keys"
sync   # the preload's dirty pages, written back now, not in the first windows
sleep 5
: >windows.txt
for ((r = 1; r <= ROUNDS; r++)); do
	echo "idle $(load "idle-$r")" | tee -a windows.txt
done
# shellcheck disable=SC2086
start 4 --seeds 127.0.0.1:17301 --transfer-rate "$XRATE" $N4OPTS
sleep "$SKIP"
for ((r = 1; r <= ROUNDS; r++)); do
	echo "run $(load "run-$r")" | tee -a windows.txt
	$B/dynkv-admin --host 127.0.0.1:17304 transfers | tail -1
	if [[ $(left) == 0 ]]; then
		echo "(nothing left to transfer after $r run windows)"
		break
	fi
	$B/dynkv-admin --host 127.0.0.1:17304 transfers pause >/dev/null
	sleep 1   # the batches in flight land
	echo "paused $(load "paused-$r")" | tee -a windows.txt
	$B/dynkv-admin --host 127.0.0.1:17304 transfers resume >/dev/null
done
python3 - <<'EOF'
import statistics
w = {}
for line in open("windows.txt"):
    kind, p99, errors, ops = line.split()
    w.setdefault(kind, []).append((float(p99), int(errors), float(ops)))
idle = statistics.median(p for p, _, _ in w.get("idle", [(0, 0, 0)]))
for kind in ("idle", "run", "paused"):
    v = w.get(kind, [])
    if not v:
        continue
    p = [x[0] for x in v]
    med = statistics.median(p)
    print("%-7s %d windows: p99 median %.2f ms (%.2fx idle), each %s ms, largest %.2f, errors %d"
          % (kind, len(v), med / 1000, med / idle if idle else 0,
             " ".join("%.2f" % (x / 1000) for x in p), max(p) / 1000, sum(x[1] for x in v)))
# each RUN window against the PAUSED one right after it (the same minute's
# noise): the median of the ratios
pairs = list(zip(w.get("run", []), w.get("paused", [])))
if pairs:
    r = [a[0] / b[0] for a, b in pairs]
    print("run/paused, round by round: %s; median %.2f"
          % (" ".join("%.2f" % x for x in r), statistics.median(r)))
EOF
