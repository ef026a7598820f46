#!/usr/bin/env bash
# tests/bench/node-vs-redis.sh -- one dynkvd node against Redis, same load,
# same generator (dynkv-bench), same machine, same run.
#
#   tests/bench/node-vs-redis.sh [BUILD_DIR]     (default: ./build)
#
# dynkvd: n_val 1, sync = interval (1 s), data on disk under $BENCH_DIR.
# Redis:  appendonly yes, appendfsync everysec, no RDB snapshots, its AOF in
#         $BENCH_DIR too.
# Load:   1 KiB values, 100k keys (uniform), 50 clients, pipeline 1; for each
#         server a put phase then a get phase (gets preload nothing: the put
#         phase wrote the keys, and --no-preload keeps the run the same for
#         both).  Each phase runs $BENCH_SECONDS seconds (default 20).
# Prints one line per phase and the ratios, and writes the JSON of every run
# to $BENCH_DIR/*.json.  Not a test: nothing here passes or fails.
#
# Environment: BENCH_DIR (default /var/tmp/dkv-bench; must be a real disk,
# not tmpfs), BENCH_SECONDS, BENCH_CLIENTS (50), BENCH_KEYS (100000),
# BENCH_VALUE (1024), BENCH_PIPELINE (1), DYNKV_PORT (7391), REDIS_PORT (7392).
set -Eeuo pipefail

build=${1:-build}
bench_dir=${BENCH_DIR:-/var/tmp/dkv-bench}
secs=${BENCH_SECONDS:-20}
clients=${BENCH_CLIENTS:-50}
keys=${BENCH_KEYS:-100000}
value=${BENCH_VALUE:-1024}
dport=${DYNKV_PORT:-7391}
rport=${REDIS_PORT:-7392}
pipeline=${BENCH_PIPELINE:-1}

command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 1; }
[[ -x $build/src/dynkvd && -x $build/src/dynkv-bench ]] || { echo "build $build first" >&2; exit 1; }

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
sleep 1

run() {   # run NAME TARGET PORT WORKLOAD
	"$build/src/dynkv-bench" --target "$2" --host "127.0.0.1:$3" --workload "$4" \
		--clients "$clients" --pipeline "$pipeline" --duration "$secs" --keys "$keys" \
		--value-size "$value" --no-preload --json >"$bench_dir/$1.json"
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print("%-14s %10.0f ops/s  errors %-4d p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us  max %8.0f us" %
      (sys.argv[2], d["ops_per_sec"], d["errors"], d["p50_us"], d["p99_us"], d["p999_us"], d["max_us"]))' \
		"$bench_dir/$1.json" "$1"
}

echo "# $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# $clients clients x pipeline $pipeline, $keys keys, $value-byte values, $secs s per phase"
echo "# data in $bench_dir ($(df -T "$bench_dir" | awk 'NR==2 {print $2}'))"
echo "# $("$build/src/dynkvd" --version), $(redis-server --version | cut -d' ' -f1-3)"
run dynkv-put dynkv "$dport" put
run redis-put redis "$rport" put
run dynkv-get dynkv "$dport" get
run redis-get redis "$rport" get
python3 - "$bench_dir" <<'EOF'
import json, sys
d = sys.argv[1]
j = {n: json.load(open(f"{d}/{n}.json")) for n in ("dynkv-put", "redis-put", "dynkv-get", "redis-get")}
for op in ("put", "get"):
    a, b = j[f"dynkv-{op}"], j[f"redis-{op}"]
    print(f"{op}: dynkv/redis ops/s {a['ops_per_sec'] / b['ops_per_sec']:.2f}x, "
          f"p99 {a['p99_us']:.0f} vs {b['p99_us']:.0f} us")
EOF
