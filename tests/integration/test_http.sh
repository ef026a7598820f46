#!/usr/bin/env bash
# test_http.sh -- the HTTP face (dynkv-http(7)) of three real dynkvd
# processes, through curl and raw sockets: binary keys and values, R/W
# parameters, contexts and siblings (300 multipart/mixed), not found with a
# tombstone's context, 503 with the CLI's message when a quorum cannot be
# met, 413, 400, 404, 405; the admin answers as dynkv-admin --json gives
# them; /health and /ping; garbage, truncated, oversized and slow requests,
# and a client that goes away while its request waits, the node serving
# its other clients meanwhile.  Every wait is bounded.
. "${top_srcdir:-.}/tests/integration/lib.sh"

command -v curl >/dev/null || bail "curl is needed (apt-get install curl)"
opts=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s --ring-size 64
      --max-value-size 16k --http-timeout 1s)
start_cluster3 "${opts[@]}"
h1=127.0.0.1:$((port_n1 + 1000))
h2=127.0.0.1:$((port_n2 + 1000))
check "each node serves HTTP on its port + 1000 (the default)" \
	grep -q "http: listening on $h1" "$tmp/n1.log"

# curl -s -o BODY -D HEADERS -w '%{http_code}' ...: the status
req() {
	curl -s -o "$tmp/body" -D "$tmp/head" -w '%{http_code}' --max-time 10 "$@"
}
header() { grep -i "^$1:" "$tmp/head" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# --- keys and values -----------------------------------------------------
head -c 3000 /dev/urandom >"$tmp/value"
key='%00bin%2Fary%20key%FF'
check "PUT of a binary value under a binary key: 204" \
	test "$(req -X PUT --data-binary @"$tmp/value" "http://$h1/kv/$key")" = 204
check "... with a context" test -n "$(header X-Dynkv-Context)"
check "GET through another node: 200 and the same bytes" \
	test "$(req "http://$h2/kv/$key")" = 200
check "... byte for byte" cmp -s "$tmp/body" "$tmp/value"
check "... as application/octet-stream" test "$(header Content-Type)" = application/octet-stream
printf 'plain' | curl -s -o /dev/null -X PUT --data-binary @- "http://$h1/kv/plain?w=all"
check "the dynkv command reads what HTTP wrote (one coordinator)" \
	test "$(dkv n3 get plain 2>/dev/null)" = plain
dkv n2 put from-cli "written by dynkv" >/dev/null 2>&1
check "HTTP reads what the dynkv command wrote" \
	test "$(curl -s "http://$h1/kv/from-cli?r=all")" = 'written by dynkv'
check "HEAD: 200, no body" test "$(req -I "http://$h1/kv/plain")" = 200

# --- parameters ------------------------------------------------------------
check "r=abc: 400 naming r" test "$(req "http://$h1/kv/plain?r=abc")" = 400
check "... saying what is allowed" grep -q 'parameter r: "abc" is not 1..16, one, quorum, all or default' "$tmp/body"
check "w=17: 400 naming w" test "$(req -X PUT -d x "http://$h1/kv/plain?w=17")" = 400
check "... naming w" grep -q 'parameter w' "$tmp/body"
check "w on a GET: 400 saying a read takes r and pr" \
	test "$(req "http://$h1/kv/plain?w=2")" = 400 -a \
	"$(cat "$tmp/body")" = "parameter w: a read takes r and pr; w and pw are for PUT and DELETE"
check "an unknown parameter: 400 naming it" test "$(req "http://$h1/kv/plain?q=1")" = 400
check "... naming it" grep -q '"q"\|parameter q\| q' "$tmp/body"
check "pr=quorum&pw=one&timeout=2000 are taken" \
	test "$(req "http://$h1/kv/plain?r=quorum&pr=quorum&timeout=2000")" = 200
check "a bad percent escape in the key: 400" test "$(req "http://$h1/kv/%zz")" = 400
check "an empty key: 400" test "$(req "http://$h1/kv/")" = 400
check "a context that is not base64: 400" \
	test "$(req -X PUT -H 'X-Dynkv-Context: !!' -d x "http://$h1/kv/plain")" = 400

# --- siblings ----------------------------------------------------------------
req -X PUT -d first "http://$h1/kv/sib" >/dev/null
ctx=$(header X-Dynkv-Context)
req -X PUT -H "X-Dynkv-Context: $ctx" -d left "http://$h1/kv/sib" >/dev/null
req -X PUT -H "X-Dynkv-Context: $ctx" -d right "http://$h2/kv/sib" >/dev/null
check "two writes from the same context: the second says 2 siblings" \
	test "$(header X-Dynkv-Siblings)" = 2
check "GET of siblings: 300 Multiple Choices" test "$(req "http://$h1/kv/sib")" = 300
check "... multipart/mixed with a boundary" grep -qi '^Content-Type: multipart/mixed; boundary=' "$tmp/head"
check "... one part per sibling, each value whole" python3 - "$tmp/head" "$tmp/body" <<'EOF'
import email.parser, sys
head = open(sys.argv[1], "rb").read()
body = open(sys.argv[2], "rb").read()
ctype = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"content-type:")][0]
msg = email.parser.BytesParser().parsebytes(b"Content-Type: " + ctype + b"\r\n\r\n" + body)
parts = sorted(p.get_payload(decode=True) for p in msg.get_payload())
sys.exit(parts != [b"left", b"right"])
EOF
sctx=$(header X-Dynkv-Context)
check "a PUT with the 300's context resolves them: 204, 1 sibling" \
	test "$(req -X PUT -H "X-Dynkv-Context: $sctx" -d merged "http://$h1/kv/sib")" = 204
check "... X-Dynkv-Siblings: 1" test "$(header X-Dynkv-Siblings)" = 1
check "... and a GET is 200 merged" test "$(curl -s "http://$h2/kv/sib")" = merged

# --- delete and not found ------------------------------------------------------
check "DELETE: 204" test "$(req -X DELETE "http://$h1/kv/sib")" = 204
check "GET after it: 404" test "$(req "http://$h1/kv/sib?r=all")" = 404
check "... with the tombstone's context" test -n "$(header X-Dynkv-Context)"
check "a key never written: 404" test "$(req "http://$h1/kv/never")" = 404

# --- limits and errors -----------------------------------------------------------
head -c 20000 /dev/zero >"$tmp/big"
check "a value past max_value_size (16k): 413" \
	test "$(req -X PUT --data-binary @"$tmp/big" "http://$h1/kv/big")" = 413
check "an unknown path: 404" test "$(req "http://$h1/nothing")" = 404
check "POST /kv/k: 405 with Allow" test "$(req -X POST -d x "http://$h1/kv/k")" = 405
check "... Allow: GET, HEAD, PUT, DELETE" test "$(header Allow)" = "GET, HEAD, PUT, DELETE"
check "PUT /members: 405" test "$(req -X PUT -d x "http://$h1/members")" = 405

# --- admin answers -----------------------------------------------------------------
same_json() {   # same_json PATH COMMAND FIELD...: those fields agree
	curl -s "http://$h1/$1" >"$tmp/http.json" &&
		"$ADMIN" --host "127.0.0.1:$port_n1" --json "$2" >"$tmp/admin.json" &&
		python3 - "$tmp/http.json" "$tmp/admin.json" "${@:3}" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
sys.exit(any(a.get(f) != b.get(f) for f in sys.argv[3:]) or set(a) != set(b))
EOF
}
check "/members: the JSON of dynkv-admin --json members" same_json members members removed
check "/ring: the JSON of dynkv-admin --json ring" same_json ring ring ring_size n_val settled
check "/status: the JSON of dynkv-admin --json status" same_json status status id ring_size
for p in hints aae transfers; do
	check "/$p: 200 application/json" test "$(req "http://$h1/$p")" = 200
	check "... as dynkv-admin --json $p has it" same_json "$p" "$p"
done
check "/health: 200" test "$(req "http://$h1/health")" = 200
check "the sole value with a concurrent delete: 200 with X-Dynkv-Tombstones" bash -c '
	ctx=$(curl -s -D - -o /dev/null -X PUT -d one "http://$1/kv/tomb" | grep -i x-dynkv-context | cut -d" " -f2 | tr -d "\r")
	curl -s -o /dev/null -X PUT -H "X-Dynkv-Context: $ctx" -d two "http://$1/kv/tomb"
	curl -s -o /dev/null -X DELETE -H "X-Dynkv-Context: $ctx" "http://$1/kv/tomb"
	curl -s -D - -o /dev/null "http://$1/kv/tomb" | grep -qi "^X-Dynkv-Tombstones: 1"' _ "$h1"
check "/ping: 200 OK" test "$(curl -s "http://$h1/ping")" = OK

# --- quorum not met -------------------------------------------------------------------
# (the two at once: the same state of the cluster, the same message)
kill -STOP "$pid_n2" "$pid_n3"
dkv n1 -r all --timeout 800 get plain 2>"$tmp/cli.err" >/dev/null &
code=$(req "http://$h1/kv/plain?r=all&timeout=800")
wait $!
msg=$(cat "$tmp/body")
cli=$(cat "$tmp/cli.err")
kill -CONT "$pid_n2" "$pid_n3"
check "r=all with two nodes stopped: 503" test "$code" = 503
check "... with the message the CLI prints ($msg)" test "dynkv: get: $msg" = "$cli"

# --- bad input and faults ---------------------------------------------------------------
raw() {   # raw BYTES [WAIT]: send BYTES to n1's HTTP port, print what comes back
	python3 - "$((port_n1 + 1000))" "$1" "${2:-2}" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
s.settimeout(float(sys.argv[3]))
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except socket.timeout:
    pass
sys.stdout.write(out.split(b"\r\n", 1)[0].decode("latin-1"))
EOF
}
check "garbage: 400" test "$(raw '\x00\x01\x02 garbage \xff\r\n\r\n')" = "HTTP/1.1 400 Bad Request"
check "a request line of another protocol: 400" test "$(raw 'GET / SPDY/9\r\n\r\n')" = "HTTP/1.1 400 Bad Request"
big=$(python3 -c 'print("a" * 40000)')
check "headers past the limit: 400" \
	test "$(raw "GET /ping HTTP/1.1\r\nX-Big: $big\r\n\r\n")" = "HTTP/1.1 400 Bad Request"
check "a truncated request (closed mid-headers) harms nothing" \
	test "$(raw 'GET /kv/plain HTTP/1.1\r\nHost: x' 0.2; curl -s "http://$h1/ping")" = OK
# a slow client: headers trickle; another client is served meanwhile, and
# the slow one is cut off after http_timeout (1 s)
python3 - "$((port_n1 + 1000))" >"$tmp/slow.out" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /kv/plain HTTP/1.1\r\n")
t0 = time.time()
s.settimeout(8)
try:
    closed = s.recv(100) is not None
except socket.timeout:
    closed = False
print("cut" if closed and time.time() - t0 < 5 else "not cut")
EOF
slow=$!
sleep 0.2
t0=$(date +%s%N)
curl -s "http://$h1/kv/plain" >/dev/null
t1=$(date +%s%N)
check "another client is served while a slow one trickles ($(((t1 - t0) / 1000000)) ms)" \
	test $(((t1 - t0) / 1000000)) -lt 500
wait "$slow"
check "the slow client is cut off after http_timeout" test "$(cat "$tmp/slow.out")" = cut
# a client that goes away while its request waits for the replicas: the
# node answers into the void later, and goes on serving
kill -STOP "$pid_n2" "$pid_n3"
curl -s --max-time 0.3 "http://$h1/kv/plain?r=all&timeout=1500" >/dev/null
st=$?
sleep 2
kill -CONT "$pid_n2" "$pid_n3"
check "a client that gave up (curl exit $st) ..." test "$st" = 28
check "... leaves n1 running and serving (once the two are back)" \
	wait_for '[[ $(curl -s "http://$h1/kv/plain") == plain ]]' 10
check "n1 is still alive" kill -0 "$pid_n1"

# --- the connection limit ------------------------------------------------------------------
start_node lim --n-val 1 --http-max-connections 2 || bail "a node with http_max_connections 2 did not start"
check "http_max_connections: two kept-alive connections are served, a third is refused, a closed one frees its place, and 40 more come and go" \
	python3 - "$((port_lim + 1000))" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=5)
def ask(s):
    """GET /ping on s: the status line and the body."""
    s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    out = b""
    while b"\r\n\r\n" not in out:
        b = s.recv(4096)
        if not b:
            return "", b""
        out += b
    head, body = out.split(b"\r\n\r\n", 1)
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < n:
        body += s.recv(4096)
    return head.split(b"\r\n")[0].decode(), body
def served_on_a_new_connection():
    for _ in range(50):       # the node hears of a close a moment after it
        d = conn()
        line, _ = ask(d)
        if line == "HTTP/1.1 200 OK":
            return d
        d.close()
        time.sleep(0.05)
    raise AssertionError("no new connection served")
a, b = conn(), conn()
assert ask(a)[0] == "HTTP/1.1 200 OK", "first"
assert ask(b)[0] == "HTTP/1.1 200 OK", "second"
c = conn()
line, body = ask(c)
assert line == "HTTP/1.1 503 Service Unavailable", line
assert b"2 HTTP connections are open already (http_max_connections)" in body, body
c.close()
a.close()
for _ in range(40):           # each counted, then uncounted at its close
    served_on_a_new_connection().close()
assert ask(b)[0] == "HTTP/1.1 200 OK", "the kept one"
EOF
stop_node lim

# --- the address -------------------------------------------------------------------------
"$DYNKVD" --data-dir "$tmp/wide" --listen "127.0.0.1:$(free_port)" --http-listen 0.0.0.0:8999 \
	>"$tmp/wide.log" 2>&1 </dev/null
st=$?
check "http_listen on a non-loopback address is refused (exit $st)" test "$st" = 2
check "... saying why" grep -q 'not a loopback address; the HTTP face has no authentication yet' "$tmp/wide.log"
check "... and --check refuses it too" \
	bash -c '! "$1" --check --http-listen 10.0.0.1:80 >/dev/null 2>&1' _ "$DYNKVD"
"$DYNKVD" --data-dir "$tmp/name" --listen "127.0.0.1:$(free_port)" --http-listen example.invalid:8999 \
	>"$tmp/name.log" 2>&1 </dev/null
check "a name that does not resolve is refused at start (exit $?)" grep -q 'http_listen example.invalid:8999' "$tmp/name.log"
start_node off --n-val 1 --http-listen off || bail "a node with http_listen off did not start"
check "http_listen = off: no HTTP face" grep -q 'HTTP on nothing: http_listen is off' "$tmp/off.log"
check "... and the node serves" test "$(dkv off put k v >/dev/null 2>&1; dkv off get k 2>/dev/null)" = v
check "... nothing listens on its port + 1000" \
	bash -c '! curl -s --max-time 2 "http://127.0.0.1:$1/ping"' _ "$((port_off + 1000))"
check "--check refuses an http_listen that is not HOST:PORT" \
	bash -c '! "$1" --check --http-listen nonsense >/dev/null 2>&1' _ "$DYNKVD"

# --- a time to live ------------------------------------------------------------
check "PUT ?ttl=1: 204" test "$(req -X PUT --data-binary soon "http://$h1/kv/ttl-key?ttl=1")" = 204
check "... readable at once" test "$(req "http://$h1/kv/ttl-key")" = 200
sleep 1.3
check "... and 404 once the second has passed" test "$(req "http://$h1/kv/ttl-key")" = 404
check "ttl on a GET: 400 saying it is for a PUT" \
	test "$(req "http://$h1/kv/ttl-key?ttl=5")" = 400 -a \
	"$(cat "$tmp/body")" = "parameter ttl: only a PUT writes a value that can expire"
check "ttl=0: 400" test "$(req -X PUT -d x "http://$h1/kv/ttl-key?ttl=0")" = 400

stop_node n1
check "n1 stops cleanly with the HTTP face (status $status_n1)" test "$status_n1" = 0
finish
