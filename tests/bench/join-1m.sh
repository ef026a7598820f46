#!/bin/bash
# join-1m.sh -- issue 12: a 4th node joins 3 that hold KEYS (default 1M) keys of
# 1 KiB, transfers unthrottled (--transfer-rate 1G); prints the load time,
# the join time until every node has one ring epoch, and the new node's
# transfer report.  Run in an empty directory on a disk (data in n1..n4,
# ports 17301-17304); it leaves the nodes running: kill them after.
# Not part of the suite.
B=${B:-$(cd "$(dirname "$0")/../.." && pwd)/build/src}
O="--ring-size 512 --log-level info"
$B/dynkvd --data-dir n1 --listen 127.0.0.1:17301 $O > n1.log 2>&1 &
sleep 0.5
$B/dynkvd --data-dir n2 --listen 127.0.0.1:17302 --seeds 127.0.0.1:17301 $O > n2.log 2>&1 &
$B/dynkvd --data-dir n3 --listen 127.0.0.1:17303 --seeds 127.0.0.1:17301 $O > n3.log 2>&1 &
for i in $(seq 1 100); do $B/dynkv-admin --host 127.0.0.1:17301 --json ring 2>/dev/null | grep -q '"settled":true' && $B/dynkv-admin --host 127.0.0.1:17301 --json ring | grep -o '"replicas"' | wc -l | grep -q 3 && break; sleep 0.2; done
t0=$(date +%s.%N)
$B/dynkv-bench --host 127.0.0.1:17301,127.0.0.1:17302,127.0.0.1:17303 --workload get --requests 1 --keys ${KEYS:-1000000} --clients 16 --pipeline 8 --value-size 1024 -w all --json > load.json 2>load.err
t1=$(date +%s.%N)
echo "load: $(echo "$t1 - $t0" | bc) s"; cat load.json | head -c 300; echo
du -sh n1 n2 n3
$B/dynkvd --data-dir n4 --listen 127.0.0.1:17304 --seeds 127.0.0.1:17301 $O --transfer-rate 1G > n4.log 2>&1 &
t2=$(date +%s.%N)
for i in $(seq 1 3000); do $B/dynkv-admin --host 127.0.0.1:17301 --json ring 2>/dev/null | grep -q '"settled":true' && [[ $($B/dynkv-admin --host 127.0.0.1:17301 --json ring | grep -o '"replicas"' | wc -l) == 4 ]] && break; sleep 0.2; done
t3=$(date +%s.%N)
echo "join settled after $(echo "$t3 - $t2" | bc) s"
$B/dynkv-admin --host 127.0.0.1:17304 --json transfers
$B/dynkv-admin --host 127.0.0.1:17304 --json status | grep -o '"keys":[0-9]*'
