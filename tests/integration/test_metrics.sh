#!/usr/bin/env bash
# test_metrics.sh -- the Prometheus metrics of real dynkvd processes
# (GET /metrics, dynkv-admin metrics; dynkv-http(7) lists them): promtool
# check metrics finds nothing to say about a live node's output; the
# request counters count exactly what was asked, by operation and result;
# the latency histograms count the same requests; and Debian's prometheus
# server, scraping a 3-node cluster, gives a request counter back through
# its query API.  Every wait is bounded.
. "${top_srcdir:-.}/tests/integration/lib.sh"

command -v curl >/dev/null || bail "curl is needed (apt-get install curl)"
command -v promtool >/dev/null || bail "promtool is needed (apt-get install prometheus)"
command -v prometheus >/dev/null || bail "prometheus is needed (apt-get install prometheus)"
opts=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s --ring-size 64)
start_cluster3 "${opts[@]}"
h1=127.0.0.1:$((port_n1 + 1000))

metric() {   # metric NAME{LABELS}: its value on n1 now (0 when absent)
	curl -s "http://$h1/metrics" | awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}

# --- the format -------------------------------------------------------------
code=$(curl -s -o "$tmp/m.txt" -D "$tmp/m.head" -w '%{http_code}' "http://$h1/metrics")
check "GET /metrics: 200" test "$code" = 200
check "... Content-Type: text/plain; version=0.0.4" \
	grep -qi '^Content-Type: text/plain; version=0.0.4' "$tmp/m.head"
promtool check metrics <"$tmp/m.txt" >"$tmp/promtool.out" 2>&1
st=$?
check "promtool check metrics: exit 0 ($st)" test "$st" = 0
check "... and nothing to say" test ! -s "$tmp/promtool.out"
"$ADMIN" --host "127.0.0.1:$port_n1" metrics >"$tmp/admin.txt"
check "dynkv-admin metrics prints the same families" \
	test "$(grep '^# TYPE' "$tmp/admin.txt")" = "$(grep '^# TYPE' "$tmp/m.txt")"
check "dynkv_build_info names the version" \
	grep -q "^dynkv_build_info{version=\"$("$DYNKVD" --version | awk '{print $NF}')\"} 1$" "$tmp/m.txt"
check "three members up" test "$(metric 'dynkv_members{liveness="up"}')" = 3

# --- the counters count what was asked ------------------------------------------
p0=$(metric 'dynkv_requests_total{op="put",result="ok"}')
g0=$(metric 'dynkv_requests_total{op="get",result="ok"}')
nf0=$(metric 'dynkv_requests_total{op="get",result="not_found"}')
d0=$(metric 'dynkv_requests_total{op="delete",result="ok"}')
c0=$(metric 'dynkv_request_duration_seconds_count{op="get"}')
for i in 1 2 3 4 5 6 7; do
	curl -s -o /dev/null -X PUT -d "v$i" "http://$h1/kv/m$i"
done
for i in 1 2 3 4 5; do curl -s -o /dev/null "http://$h1/kv/m$i"; done
for i in 1 2; do curl -s -o /dev/null "http://$h1/kv/never$i"; done
curl -s -o /dev/null -X DELETE "http://$h1/kv/m1"
check "7 puts: put/ok +7" test $(($(metric 'dynkv_requests_total{op="put",result="ok"}') - p0)) = 7
check "5 gets of written keys: get/ok +5" \
	test $(($(metric 'dynkv_requests_total{op="get",result="ok"}') - g0)) = 5
check "2 gets of keys never written: get/not_found +2" \
	test $(($(metric 'dynkv_requests_total{op="get",result="not_found"}') - nf0)) = 2
check "1 delete: delete/ok +1" \
	test $(($(metric 'dynkv_requests_total{op="delete",result="ok"}') - d0)) = 1
check "the get latency histogram counted the 7 gets" \
	test $(($(metric 'dynkv_request_duration_seconds_count{op="get"}') - c0)) = 7
check "... and its +Inf bucket equals its count" \
	test "$(metric 'dynkv_request_duration_seconds_bucket{op="get",le="+Inf"}')" = \
	     "$(metric 'dynkv_request_duration_seconds_count{op="get"}')"
check "the replicas' RPUT latency counts on n2" test "$(curl -s "http://127.0.0.1:$((port_n2 + 1000))/metrics" |
	awk '$1 == "dynkv_replica_request_duration_seconds_count{op=\"put\"}" { print $2 }')" -gt 0
check "the store holds the keys" test "$(metric dynkv_store_keys)" -ge 6
check "fsyncs are timed (at the next sync_interval tick)" \
	wait_for '[[ $(metric dynkv_fsync_duration_seconds_count) -gt 0 ]]' 10
kill -STOP "$pid_n2" "$pid_n3"
q0=$(metric 'dynkv_requests_total{op="get",result="timeout"}')
curl -s -o /dev/null "http://$h1/kv/m2?r=all&timeout=500"
q1=$(metric 'dynkv_requests_total{op="get",result="timeout"}')
kill -CONT "$pid_n2" "$pid_n3"
check "a get that times out: get/timeout +1" test $((q1 - q0)) = 1

# --- a real Prometheus scrapes the cluster ----------------------------------------
pport=$(free_port)
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: dynkv
    static_configs:
      - targets: ['127.0.0.1:$((port_n1 + 1000))', '127.0.0.1:$((port_n2 + 1000))', '127.0.0.1:$((port_n3 + 1000))']
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$pport" >"$tmp/prometheus.log" 2>&1 </dev/null &
prom=$!
node_pids[prometheus]=$prom   # killed on exit with the nodes
query() {   # query PROMQL: the first result's value, or nothing
	curl -s --max-time 2 "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
		python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'
}
check "prometheus sees the 3 nodes up" \
	wait_for '[[ $(query "sum(up{job=\"dynkv\"})") == 3 ]]' 60
want=$(metric 'dynkv_requests_total{op="put",result="ok"}')
check "its query API gives n1's put counter back ($want)" \
	wait_for '[[ $(query "dynkv_requests_total{op=\"put\",result=\"ok\",instance=\"$h1\"}") == "$want" ]]' 30
check "and the cluster's members by liveness (3 nodes x 3 up)" \
	wait_for '[[ $(query "sum(dynkv_members{liveness=\"up\"})") == 9 ]]' 30
kill "$prom" 2>/dev/null
wait "$prom" 2>/dev/null
unset 'node_pids[prometheus]'
finish
