#!/usr/bin/env bash
# tests/integration/test_resp.sh -- the Redis protocol face (resp.c) on
# real nodes, with the real tools: redis-cli (one-shot, RESP3, and
# interactive through a pty), redis-benchmark (unchanged, zero errors) and
# the python3-redis library (resp_checks.py: data, pipelines, siblings,
# the connection's commands, bad input, slow and vanishing clients,
# resp_max_connections).
. "${top_srcdir:-.}/tests/integration/lib.sh"

for tool in redis-cli redis-benchmark; do
	command -v "$tool" >/dev/null || bail "$tool not found (apt-get install redis-tools)"
done
/usr/bin/python3 -c 'import redis' 2>/dev/null ||
	bail "python3-redis not found (apt-get install python3-redis)"

declare -A rport=()
for n in n1 n2 n3 n4; do rport[$n]=$(free_port); done
start_node n1 --resp-listen "127.0.0.1:${rport[n1]}" || bail "n1 did not start"
start_node n2 --seeds "127.0.0.1:$port_n1" --resp-listen "127.0.0.1:${rport[n2]}" ||
	bail "n2 did not start"
start_node n3 --seeds "127.0.0.1:$port_n1" --resp-listen "127.0.0.1:${rport[n3]}" \
	--resp-siblings newest || bail "n3 did not start"
start_node n4 --seeds "127.0.0.1:$port_n1" --resp-listen "127.0.0.1:${rport[n4]}" \
	--resp-max-connections 4 || bail "n4 did not start"
wait_for "ring_settled n1 n2 n3 n4" 30 || bail "the 4 nodes did not settle"

rc() { local n=$1; shift; timeout 20 redis-cli -p "${rport[$n]}" "$@"; }

check "redis-cli SET through n1: OK" test "$(rc n1 set greeting hello)" = OK
check "redis-cli GET through n2: the value" test "$(rc n2 get greeting)" = hello
check "the dynkv command reads what RESP wrote" \
	test "$(dkv n3 get greeting 2>/dev/null)" = hello
dkv n1 put from-cli "cli value" >/dev/null 2>&1
check "RESP reads what the dynkv command wrote" test "$(rc n2 get from-cli)" = "cli value"
check "an unknown command: Redis's text" \
	test "$(rc n1 nosuch a b)" = "ERR unknown command 'nosuch', with args beginning with: 'a' 'b' "
check "redis-cli -3: HELLO's map says proto 3" \
	bash -c "timeout 20 redis-cli -3 -p ${rport[n1]} hello 3 | grep -qx 'proto 3'"
check "redis-cli -3: a missing key is (nil)" \
	test "$(timeout 20 redis-cli -3 -p "${rport[n1]}" get no-such-key)" = ""

# Interactive redis-cli: it asks COMMAND DOCS first, then reads lines.
interactive() {
	/usr/bin/python3 - "${rport[n2]}" <<'PY'
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "dumb"   # no line editing: no cursor queries
    os.execvp("redis-cli", ["redis-cli", "-p", sys.argv[1]])
out = b""
def read_for(t):
    global out
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                return
for line in (b"set inter 'via a pty'\r", b"get inter\r", b"dynkv.quorum all all\r",
             b"get inter\r", b"quit\r"):
    read_for(0.4)
    os.write(fd, line)
read_for(1.5)
os.waitpid(pid, 0)
text = out.decode("utf-8", "replace")
ok = text.count('"via a pty"') == 2 and "OK" in text and "ERR" not in text
print(text if not ok else "", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
check "interactive redis-cli through a pty: set, get, dynkv.quorum, quit" interactive

bench() {
	local out
	out=$(timeout 120 redis-benchmark -p "${rport[n1]}" -t ping,set,get,mset -n 3000 -c 20 "$@" \
		-q 2>&1) || { echo "$out" | tail -5; return 1; }
	out=$(echo "$out" | tr '\r' '\n' | grep 'requests per second')
	[[ $(echo "$out" | wc -l) -eq 5 ]] || { echo "# $out"; return 1; }   # 2 pings, set, get, mset
	echo "$out" | sed 's/^/# /'
}
check "redis-benchmark -t ping,set,get,mset runs unchanged, zero errors" bench
check "... and with -P 16" bench -P 16
check "... its SETs on one key left one value" \
	test "$(rc n2 dynkv.get key:__rand_int__ | sed -n 2p)" != "" -a \
	"$(rc n2 dynkv.get key:__rand_int__ | sed -n '2,/^context$/p' | grep -vc '^\(values\|context\)$')" = 1

while read -r verdict what; do
	case $verdict in
	PASS) ok "$what" ;;
	FAIL) not_ok "$what" ;;
	*) echo "# $verdict $what" ;;
	esac
done < <(timeout 300 /usr/bin/python3 "$top_srcdir/tests/integration/resp_checks.py" \
	"${rport[n1]}" "${rport[n2]}" "${rport[n3]}" "${rport[n4]}" 2>&1)

check "every node still answers after all that" \
	bash -c "for p in ${rport[n1]} ${rport[n2]} ${rport[n3]} ${rport[n4]}; do
		[[ \$(timeout 5 redis-cli -p \$p ping) == PONG ]] || exit 1; done"
for n in n1 n2 n3 n4; do
	stop_node "$n"
	st=status_$n
	check "$n stops cleanly (status ${!st})" test "${!st}" = 0
done
finish
