#!/usr/bin/env bash
# tests/bench/resp-vs-redis.sh -- redis-benchmark, unchanged, against a
# dynkvd node's Redis protocol face and against redis-server, same machine,
# same run.
#
#   tests/bench/resp-vs-redis.sh [BUILD_DIR]     (default: ./build)
#
# dynkvd: one node, n_val 1, sync = interval, data under $BENCH_DIR (so
#         that the figures show the face and the node, not replication; a
#         3-node cluster's request path is in RESULTS.md, issue 5).
# Redis:  appendonly yes, appendfsync everysec, no RDB snapshots.
# Load:   redis-benchmark -t ping,set,get,mset -c 50 -d 100, pipeline 1 and
#         16, keys drawn from 100,000 (-r) -- and, for SET, the one key
#         redis-benchmark uses without -r (50 clients on one key: dynkv
#         runs one connection's writes to a key one after the other).
# Prints redis-benchmark's CSV lines and the dynkv/Redis ratios.  Not a
# test: nothing here passes or fails.
#
# Environment: BENCH_DIR (default /var/tmp/dkv-resp-bench), BENCH_N
# (requests per test, default 100000), DYNKV_PORT (7491; RESP on +2000),
# REDIS_PORT (7492).
set -Eeuo pipefail

build=${1:-build}
bench_dir=${BENCH_DIR:-/var/tmp/dkv-resp-bench}
n=${BENCH_N:-100000}
dport=${DYNKV_PORT:-7491}
rport=${REDIS_PORT:-7492}
resp=$((dport + 2000))

for t in redis-server redis-benchmark; do
	command -v "$t" >/dev/null || { echo "needs $t (apt-get install redis-server)" >&2; exit 1; }
done
[[ -x $build/src/dynkvd ]] || { echo "build $build first" >&2; exit 1; }

rm -rf "$bench_dir"
mkdir -p "$bench_dir/dynkv" "$bench_dir/redis"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

"$build/src/dynkvd" --data-dir "$bench_dir/dynkv" --listen "127.0.0.1:$dport" --n-val 1 \
	--sync interval --log-file "$bench_dir/dynkvd.log" &
pids+=($!)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$bench_dir/redis" --save '' \
	--appendonly yes --appendfsync everysec --daemonize no --logfile "$bench_dir/redis.log" &
pids+=($!)
sleep 1.5

# bench NAME PORT ARGS...: redis-benchmark's CSV, each line prefixed NAME
bench() {
	local name=$1 port=$2
	shift 2
	redis-benchmark -p "$port" -c 50 -d 100 -n "$n" --csv "$@" 2>/dev/null |
		grep -v '^"test"' | sed "s/^/$name,/"
}

{
	for p in 1 16; do
		for target in dynkv:$resp redis:$rport; do
			bench "${target%%:*},P$p,random" "${target#*:}" -t ping,set,get,mset -r 100000 -P "$p"
			bench "${target%%:*},P$p,onekey" "${target#*:}" -t set -P "$p"
		done
	done
} | tee "$bench_dir/results.csv"

echo
echo "dynkv / Redis, requests per second (same run):"
python3 - "$bench_dir/results.csv" <<'PY'
import csv, sys
rows = {}
for r in csv.reader(open(sys.argv[1])):
    name, p, keys, test, rps = r[0], r[1], r[2], r[3], float(r[4])
    rows[(name, p, keys, test)] = (rps, r[5:])   # avg, min, p50, p95, p99, max (ms)
for (name, p, keys, test), (rps, rest) in sorted(rows.items()):
    if name != "dynkv":
        continue
    red = rows.get(("redis", p, keys, test))
    if red:
        print("%-4s %-7s %-16s dynkv %9.0f/s p50 %6s ms p99 %6s ms | redis %9.0f/s p99 %6s ms | %.2f" %
              (p, keys, test, rps, rest[2], rest[4], red[0], red[1][4], rps / red[0]))
PY
