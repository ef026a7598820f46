#!/usr/bin/env bash
# tests/bench/cluster-vs-redis.sh -- a three-node dynkvd cluster (N=3, R=2,
# W=2) beside one dynkvd node and Redis: same load, same generator
# (dynkv-bench), same machine, same run.
#
#   tests/bench/cluster-vs-redis.sh [BUILD_DIR]     (default: ./build)
#
# Redis:   appendonly yes, appendfsync everysec, no RDB snapshots, its AOF in
#          $BENCH_DIR.
# single:  one dynkvd, n_val 1, sync = interval (1 s), data in $BENCH_DIR.
# cluster: three dynkvd on 127.0.0.1 (nodes 2 and 3 seeded with node 1),
#          n_val 3, sync = interval; the run starts once every node sees
#          three members up and a ring of three owners (at most
#          $CLUSTER_WAIT seconds).  dynkv-bench is given all three nodes
#          (client i talks to node i mod 3) and asks for -r 2 -w 2.
# Load:    1 KiB values, 100k keys (uniform), 50 clients, pipeline 1; for
#          each system a put phase then a get phase (gets preload nothing:
#          the put phase wrote the keys, and --no-preload keeps the run the
#          same for all).  Each phase runs $BENCH_SECONDS seconds (default
#          20).  The systems run one after the other, each alone on the
#          machine: its servers start before its phases and stop after.
# Prints one line per phase, the CPU each process used in the middle of the
# phase (percent of one core, from /proc/PID/stat; phases of 5 s or more),
# and the ratios cluster/redis and cluster/single; writes the JSON of every
# phase to $BENCH_DIR/*.json and the servers' pids to $BENCH_DIR/*.pid (for
# perf or pidstat while it runs).  Not a test: nothing here passes or fails.
#
# Environment: BENCH_DIR (default /var/tmp/dkv-bench-cluster; must be a real
# disk, not tmpfs), BENCH_SECONDS, BENCH_CLIENTS (50), BENCH_KEYS (100000),
# BENCH_VALUE (1024), BENCH_PIPELINE (1), DYNKV_PORT (7391), REDIS_PORT
# (7392), CLUSTER_PORT (7393: the nodes listen on it and the next two),
# CLUSTER_WAIT (30).
set -Eeuo pipefail

build=${1:-build}
bench_dir=${BENCH_DIR:-/var/tmp/dkv-bench-cluster}
secs=${BENCH_SECONDS:-20}
clients=${BENCH_CLIENTS:-50}
keys=${BENCH_KEYS:-100000}
value=${BENCH_VALUE:-1024}
pipeline=${BENCH_PIPELINE:-1}
dport=${DYNKV_PORT:-7391}
rport=${REDIS_PORT:-7392}
cport=${CLUSTER_PORT:-7393}
cwait=${CLUSTER_WAIT:-30}

command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 1; }
[[ -x $build/src/dynkvd && -x $build/src/dynkv-bench && -x $build/src/dynkv-admin ]] ||
	{ echo "build $build first" >&2; exit 1; }

rm -rf "$bench_dir"
mkdir -p "$bench_dir/redis" "$bench_dir/single" "$bench_dir/node1" "$bench_dir/node2" "$bench_dir/node3"
pids=()          # every server started, for cleanup
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

stop() {         # stop PID...: SIGTERM, and wait for each to exit
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

wait_port() {    # wait_port PORT: until it accepts a TCP connection (10 s at most)
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on 127.0.0.1:$1 after 10 s" >&2
	exit 1
}

ticks() {        # ticks PID: its user + system CPU time so far, in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# run NAME TARGET HOSTS WORKLOAD [EXTRA...]; the servers to watch are in
# the array watch (name=pid ...).
run() {
	local name=$1 target=$2 hosts=$3 workload=$4 bpid t0 t1 w0 w1 cpu="" i
	shift 4
	local -a before=() after=() wpids=() wnames=()
	for w in "${watch[@]}"; do wnames+=("${w%%=*}"); wpids+=("${w#*=}"); done
	"$build/src/dynkv-bench" --target "$target" --host "$hosts" --workload "$workload" \
		--clients "$clients" --pipeline "$pipeline" --duration "$secs" --keys "$keys" \
		--value-size "$value" --no-preload --json "$@" >"$bench_dir/$name.json" &
	bpid=$!
	wnames+=(bench); wpids+=("$bpid")
	if ((secs >= 5)); then
		sleep 1.5
		w0=$(date +%s.%N); for p in "${wpids[@]}"; do before+=("$(ticks "$p")"); done
		sleep "$((secs - 3))"
		w1=$(date +%s.%N); for p in "${wpids[@]}"; do after+=("$(ticks "$p")"); done
		for i in "${!wpids[@]}"; do
			cpu+=" ${wnames[$i]} $(awk -v a="${before[$i]}" -v b="${after[$i]}" \
				-v t0="$w0" -v t1="$w1" -v hz="$(getconf CLK_TCK)" \
				'BEGIN { printf "%.0f", 100 * (b - a) / hz / (t1 - t0) }')"
		done
	fi
	wait "$bpid"
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print("%-14s %10.0f ops/s  errors %-4d p50 %7.0f us  p99 %7.0f us  p99.9 %7.0f us  max %8.0f us" %
      (sys.argv[2], d["ops_per_sec"], d["errors"], d["p50_us"], d["p99_us"], d["p999_us"], d["max_us"]))' \
		"$bench_dir/$name.json" "$name"
	[[ -z $cpu ]] || echo "    cpu % of one core:$cpu"
}

echo "# $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# $clients clients x pipeline $pipeline, $keys keys, $value-byte values, $secs s per phase"
echo "# data in $bench_dir ($(df -T "$bench_dir" | awk 'NR==2 {print $2}'))"
echo "# $("$build/src/dynkvd" --version), $(redis-server --version | cut -d' ' -f1-3)"

# (a) Redis.
redis-server --port "$rport" --bind 127.0.0.1 --dir "$bench_dir/redis" --save '' \
	--appendonly yes --appendfsync everysec --daemonize no --logfile "$bench_dir/redis.log" &
rpid=$!; pids+=("$rpid"); echo "$rpid" >"$bench_dir/redis.pid"
wait_port "$rport"
watch=("redis=$rpid")
run redis-put redis "127.0.0.1:$rport" put
run redis-get redis "127.0.0.1:$rport" get
stop "$rpid"

# (b) One dynkvd, n_val 1.
"$build/src/dynkvd" --data-dir "$bench_dir/single" --listen "127.0.0.1:$dport" --n-val 1 \
	--sync interval --log-file "$bench_dir/single.log" &
spid=$!; pids+=("$spid"); echo "$spid" >"$bench_dir/single.pid"
wait_port "$dport"
watch=("single=$spid")
run single-put dynkv "127.0.0.1:$dport" put
run single-get dynkv "127.0.0.1:$dport" get
stop "$spid"

# (c) Three dynkvd, n_val 3, R = W = 2.
hosts=""
cpids=()
for n in 1 2 3; do
	port=$((cport + n - 1))
	seeds=()
	((n == 1)) || seeds=(--seeds "127.0.0.1:$cport")
	"$build/src/dynkvd" --data-dir "$bench_dir/node$n" --listen "127.0.0.1:$port" --n-val 3 \
		--sync interval --log-file "$bench_dir/node$n.log" "${seeds[@]}" &
	cpids+=($!); pids+=($!); echo "$!" >"$bench_dir/node$n.pid"
	hosts+="${hosts:+,}127.0.0.1:$port"
	wait_port "$port"
done
converged() {    # every node sees 3 members, valid and up, and 3 owners in the ring
	local port
	for n in 1 2 3; do
		port=$((cport + n - 1))
		{ "$build/src/dynkv-admin" --host "127.0.0.1:$port" --timeout 2000 --json members &&
		  "$build/src/dynkv-admin" --host "127.0.0.1:$port" --timeout 2000 --json ring; } 2>/dev/null |
		python3 -c 'import json,sys
m, r = (json.loads(l) for l in sys.stdin.read().splitlines() if l.strip())
ok = (len(m["members"]) == 3 and
      all(x["status"] == "valid" and x["liveness"] == "up" for x in m["members"]) and
      r["n_val"] == 3 and len(r["ownership"]) == 3)
sys.exit(0 if ok else 1)' || return 1
	done
}
for ((t = 0; ; t++)); do
	converged && break
	if ((t >= cwait * 2)); then
		echo "the cluster did not converge in $cwait s:" >&2
		"$build/src/dynkv-admin" --host "127.0.0.1:$cport" members >&2 || true
		exit 1
	fi
	sleep 0.5
done
echo "# cluster $hosts: 3 members up on every node after about $((t / 2)) s"
watch=("node1=${cpids[0]}" "node2=${cpids[1]}" "node3=${cpids[2]}")
run cluster-put dynkv "$hosts" put -r 2 -w 2
run cluster-get dynkv "$hosts" get -r 2 -w 2
stop "${cpids[@]}"

python3 - "$bench_dir" <<'EOF'
import json, sys
d = sys.argv[1]
j = {f"{s}-{op}": json.load(open(f"{d}/{s}-{op}.json"))
     for s in ("redis", "single", "cluster") for op in ("put", "get")}
for op in ("put", "get"):
    c, r, s = j[f"cluster-{op}"], j[f"redis-{op}"], j[f"single-{op}"]
    x = c["ops_per_sec"] / r["ops_per_sec"]
    print(f"{op}: cluster/redis ops/s {x:.2f}x, cluster/single {c['ops_per_sec'] / s['ops_per_sec']:.2f}x; "
          f"p99 {c['p99_us']:.0f} (cluster) {s['p99_us']:.0f} (single) {r['p99_us']:.0f} (redis) us; "
          f"goal cluster >= 0.5x redis: {'met' if x >= 0.5 else 'missed'}")
EOF
