#!/usr/bin/env bash
# tests/integration/test_admin.sh -- the command-line programs against a
# real dynkvd and against ports that are not dynkv nodes: dynkv-admin's
# preflist and members tables from a real node's maps, the shared exit
# statuses, and what dynkv says when the peer is an HTTP server or a
# listener that never answers.  TAP.
. "${top_srcdir:-.}/tests/integration/lib.sh"

# A listener on a free port that runs python code CODE for each connection
# (conn is the socket); sets fake_port and fake_pid.
fake_listener() {
	local ready=$tmp/fake.$RANDOM
	python3 -c '
import socket, sys, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(8)
open(sys.argv[2], "w").write(str(s.getsockname()[1]))
code = sys.argv[1]
def serve(conn):
    exec(code)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$1" "$ready" &
	fake_pid=$!
	node_pids[fake$fake_pid]=$fake_pid      # killed on exit by lib.sh
	for _ in $(seq 1 100); do [[ -s $ready ]] && break; sleep 0.05; done
	fake_port=$(cat "$ready")
}

start_node a --n-val 1 || bail "dynkvd did not start"

# --- preflist -----------------------------------------------------------------
out=$(adm a preflist greeting)
st=$?
check "preflist KEY exits 0" test $st -eq 0
check "... and prints the partition and n" grep -Eq '^partition [0-9]+, n 1$' <<<"$out"
check "... then a table of the preference list" \
	grep -Eq "^  1  127\.0\.0\.1:$port_a  127\.0\.0\.1:$port_a  primary  up$" <<<"$out"
check "... under its header" grep -q '^POS  ID  *ADDR  *ROLE     LIVENESS$' <<<"$out"
out=$(adm a --json preflist greeting)
check "preflist --json is the node's map" \
	python3 -c 'import json,sys; m=json.load(sys.stdin); sys.exit(not (m["n"] == 1 and m["preflist"][0]["primary"]))' <<<"$out"
adm a preflist >/dev/null 2>"$tmp/preflist.err"
st=$?
check "preflist without a KEY is a usage error (exit 2)" test $st -eq 2
check "... saying it takes one KEY" grep -q 'preflist takes one KEY' "$tmp/preflist.err"
check "a KEY that begins with '-' is a key" eval 'adm a preflist -dash >/dev/null'

# --- members --------------------------------------------------------------------
dkv a -q put k1 v && dkv a -q put k2 v
out=$(adm a members)
check "members has a KEYS column, then the epochs" grep -Eq '^ID  *ADDR  *STATUS  LIVENESS  KEYS  EPOCHS A/S/R$' <<<"$out"
check "... with the node's own count, and its progress" grep -Eq "^127\.0\.0\.1:$port_a .* valid  *up  *2  1/1/1$" <<<"$out"
check "... and the chain: one epoch, of one member" grep -Eq '^epochs: 1 \(1 member\)$' <<<"$out"

# --- plan -----------------------------------------------------------------------
# one node (n_val 1, ring 512): a second would take the partitions it outscores
out=$(adm a plan join 127.0.0.1:1)
check "plan join says what would move" grep -Eq '^join 127\.0\.0\.1:1: 1 members -> 2; [0-9]+ of 512 replicas move, about [0-9]+ keys? ' <<<"$out"
moves=$(sed -En 's/^join .*; ([0-9]+) of 512 replicas move.*/\1/p' <<<"$out")
check "... one row per move, each from the node to the newcomer" test "$(grep -Ec "^ +[0-9]+  127\.0\.0\.1:$port_a  127\.0\.0\.1:1 " <<<"$out")" -eq "${moves:-0}"
check "... about half of them" test "${moves:-0}" -gt 200 -a "${moves:-0}" -lt 312
check "... and the balance after: the newcomer holds what moves" grep -Eq "^127\.0\.0\.1:1 +$moves +$moves +[0-9.]+%$" <<<"$out"
out=$(adm a --json plan join 127.0.0.1:1)
check "plan --json has the summary and the moves" grep -q '"change":"join","node":"127.0.0.1:1","members_before":1,"members_after":2,"replicas":512' <<<"$out"
adm a plan leave 127.0.0.1:1 >"$tmp/plan.out" 2>"$tmp/plan.err"
st=$?
check "plan of a change that cannot be made exits 1" test $st -eq 1
check "... saying why" grep -q 'plan: 127.0.0.1:1 is not a member of the ring' "$tmp/plan.err"
adm a plan join >/dev/null 2>&1
check "plan without its node is a usage error (exit 2)" test $? -eq 2
adm a transfers bogus >/dev/null 2>"$tmp/xfer.err"
check "transfers with neither pause nor resume is a usage error (exit 2)" test $? -eq 2
check "... that says so" grep -q 'transfers: "bogus" is neither pause nor resume' "$tmp/xfer.err"
adm a remove 127.0.0.1:1 --forse >/dev/null 2>"$tmp/rm.err"
check "remove NODE with a misspelt --force is a usage error (exit 2)" test $? -eq 2
check "... that says so" grep -q 'remove: "--forse" after the node is not --force' "$tmp/rm.err"
check "nothing changed: still one member" test "$(adm a --json members | grep -o '"id"' | wc -l)" -eq 1

# --- exit statuses ------------------------------------------------------------
adm a frob >/dev/null 2>&1
st=$?
check "an error from the node exits 1" test $st -eq 1
adm a --bogus members >/dev/null 2>&1
st=$?
check "a usage error of dynkv-admin exits 2, as dynkv's" test $st -eq 2

# --- not dynkv nodes --------------------------------------------------------------
fake_listener 'conn.recv(4096); conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"); conn.close()'
out=$(timeout 30 "$DYNKV" --host "127.0.0.1:$fake_port" get k 2>&1)
st=$?
check "dynkv against an HTTP server exits 1" test $st -eq 1
check "... saying it is not a dynkv node" \
	grep -qF "dynkv: get: the peer at 127.0.0.1:$fake_port is not a dynkv node (it answered like an HTTP server: \"HTTP/1.1 400 Bad Request\")" <<<"$out"
out=$(timeout 30 "$ADMIN" --host "127.0.0.1:$fake_port" status 2>&1)
st=$?
check "dynkv-admin too (exit 1)" test $st -eq 1
check "... with the same message" grep -q 'is not a dynkv node (it answered like an HTTP server' <<<"$out"

fake_listener 'time.sleep(60)'
t0=$(date +%s%N)
out=$(timeout 30 "$DYNKV" --host "127.0.0.1:$fake_port" ping 2>&1)
st=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "ping to a listener that never answers exits 3" test $st -eq 3
check "... after its 5 s default, not 30 s ($ms ms)" test $ms -ge 4900 -a $ms -lt 10000
check "... saying the node did not answer within it" \
	grep -qx 'dynkv: ping: the node did not answer within 5000 ms (--timeout MS to wait longer)' <<<"$out"

finish
