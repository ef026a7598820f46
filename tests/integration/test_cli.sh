#!/usr/bin/env bash
# tests/integration/test_cli.sh -- a real dynkvd driven through the dynkv
# command: binary round trips and size limits, siblings and their resolution,
# quorum errors and exit statuses, persistence across a clean restart and
# across kill -9 with sync = always, identity conflicts, the data directory
# lock, and SIGTERM.  TAP.
. "${top_srcdir:-.}/tests/integration/lib.sh"

json_field() {   # json_field FIELD < json  (a string or a literal)
	python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(v if isinstance(v,str) else json.dumps(v))' "$1"
}

start_node a --n-val 1 --max-value-size 65536 --sync always || bail "dynkvd did not start"

# --- round trips -------------------------------------------------------------
dkv a put greeting 'hello, world'
check "put with a value on the command line" test $? -eq 0
check "get prints exactly the value" test "$(dkv a -q get greeting)" = 'hello, world'

head -c 65536 /dev/urandom >"$tmp/max"
dkv a put binmax <"$tmp/max"
check "a value of exactly max_value_size (65536 random bytes) from stdin is stored" test $? -eq 0
dkv a -q get binmax >"$tmp/max.out"
check "... and comes back byte for byte" cmp -s "$tmp/max" "$tmp/max.out"

head -c 65537 /dev/urandom >"$tmp/over"
out=$(dkv a put over <"$tmp/over" 2>&1)
st=$?
check "max_value_size + 1 is refused with exit status 1" test $st -eq 1
check "... with the documented message" grep -q 'value too large: 65537 > max_value_size 65536' <<<"$out"
out=$(dkv a --json get over)
check "... and nothing was stored" test "$(json_field found <<<"$out")" = false

: >"$tmp/empty"
dkv a put empty <"$tmp/empty"
check "a 0-byte value is stored" test $? -eq 0
out=$(dkv a --json get empty)
check "... and found, empty" test "$(json_field found <<<"$out")/$(json_field values <<<"$out")" = 'true/[""]'
printf '\0' >"$tmp/one"
dkv a put one <"$tmp/one" && dkv a -q get one >"$tmp/one.out"
check "a 1-byte value (NUL) round-trips" cmp -s "$tmp/one" "$tmp/one.out"
key=$'k\x01\x7f\xff\xfe end'
printf 'v\xff\x00w' >"$tmp/bink"
dkv a put "$key" <"$tmp/bink" && dkv a -q get "$key" >"$tmp/bink.out"
check "a binary key and value round-trip" cmp -s "$tmp/bink" "$tmp/bink.out"
out=$(dkv a --json get "$key")
check "--json shows a non-UTF-8 value in its documented encoding" \
	test "$(json_field encodings <<<"$out")" = '["base64"]'

out=$(dkv a --json get no-such-key)
st=$?
check "get of a missing key exits 4, with --json too" test $st -eq 4
check "... and says found: false" test "$(json_field found <<<"$out")" = false

# a missing key and an empty value: the same (empty) stdout, told apart by $?
dkv a -q get empty >"$tmp/empty.out"
st=$?
check "get of an empty value exits 0" test $st -eq 0
check "... with nothing on stdout" test "$(od -An -c "$tmp/empty.out")" = ""
dkv a get no-such-key >"$tmp/missing.out" 2>"$tmp/missing.err"
st=$?
check "plain get of a missing key exits 4" test $st -eq 4
check "... with nothing on stdout" test "$(od -An -c "$tmp/missing.out")" = ""
check "... and 'not found' on stderr" grep -qx 'not found' "$tmp/missing.err"
dkv a put gone v && ctx=$(dkv a --json get gone | json_field context) &&
	dkv a -q --context "$ctx" del gone
dkv a -q get gone >"$tmp/gone.out"
st=$?
check "a key whose only sibling is a tombstone exits 4" test $st -eq 4
check "... with nothing on stdout" test ! -s "$tmp/gone.out"

# --- siblings ---------------------------------------------------------------
dkv a --sibling put s first && dkv a --sibling put s second 2>"$tmp/sib.err"
out=$(dkv a --json get s)
check "two blind writes (--sibling) are kept as two siblings" \
	test "$(json_field values <<<"$out")" = '["first", "second"]'
check "... and the second says so" \
	grep -qx 'note: s now has 2 siblings (concurrent writes); get it and put with --context to resolve' \
	"$tmp/sib.err"
ctx=$(json_field context <<<"$out")
dkv a --context "$ctx" put s resolved
out=$(dkv a --json get s)
check "a write with the read's context resolves them" \
	test "$(json_field values <<<"$out")" = '["resolved"]'
ctx=$(json_field context <<<"$out")
dkv a --context "$ctx" del s
out=$(dkv a --json get s)
check "a delete with the context makes the key not found" test "$(json_field found <<<"$out")" = false
check "... and still returns a context" test -n "$(json_field context <<<"$out")"
dkv a -q --sibling put s3 x && dkv a -q --sibling put s3 y
out=$(dkv a --json --sibling put s3 z)
check "--json gives the count of siblings a write left" test "$(json_field siblings <<<"$out")" = 3
check "-q leaves the note out" test -z "$(dkv a -q --sibling put s3 w 2>&1)"

# --- replace mode: what put and del do without --context ------------------
done_puts=0
for i in $(seq 1 50); do
	dkv a -q put counter "$i" || break
	done_puts=$i
done
check "50 puts of one key are acknowledged" test "$done_puts" -eq 50
check "... and a get prints the last value alone" test "$(dkv a get counter 2>/dev/null)" = 50
out=$(dkv a --json put counter 51)
check "a put without --context reports one sibling" test "$(json_field siblings <<<"$out")" = 1
dkv a put s3 replaced 2>"$tmp/replace.err"
check "a put replaces siblings it did not read itself" \
	test "$(dkv a --json get s3 | json_field values)" = '["replaced"]'
check "... without a siblings note" test "$(grep -c '^note:' "$tmp/replace.err")" = 0
dkv a --sibling put d one && dkv a --sibling put d two
dkv a del d
check "del without --context exits 0" test $? -eq 0
dkv a get d >/dev/null 2>&1
st=$?
check "... and deletes what was there: a get exits 4" test $st -eq 4
out=$(dkv a --json del d)
check "del --json reports no value left" test "$(json_field siblings <<<"$out")" = 0
dkv a -r 1 --pr 1 put rk v && dkv a -r one del rk
check "-r and --pr are the R and PR of a replace-mode put or del" test $? -eq 0
for args in "--sibling --context kgGSkgEB put k v" "-r 1 --sibling put k v" \
	"-r 1 --context kgGSkgEB put k v" "--pr 1 --context kgGSkgEB del k" "--sibling del k" \
	"--sibling get k"; do
	# shellcheck disable=SC2086
	dkv a $args >/dev/null 2>&1
	st=$?
	[[ $st -eq 2 ]] || break
done
check "--sibling with --context, -r/--pr with either, --sibling but on put: usage errors" \
	test $st -eq 2
start_node big --n-val 1 || bail "a node with the default max_value_size did not start"
head -c 1048576 /dev/urandom >"$tmp/mib"
done_puts=0
for i in $(seq 1 8); do
	dkv big -q put big <"$tmp/mib" || break
	done_puts=$i
done
check "eight 1 MiB puts to one key succeed" test "$done_puts" -eq 8
dkv big -q get big >"$tmp/mib.out"
check "... and the key holds one of them" cmp -s "$tmp/mib" "$tmp/mib.out"
done_puts=0
for i in $(seq 1 8); do
	out=$(dkv big -q --sibling put bigsib <"$tmp/mib" 2>&1) || break
	done_puts=$i
done
check "eight blind (--sibling) 1 MiB puts do not fit one object: the 8th fails" \
	test "$done_puts" -eq 7
check "... saying why" grep -q 'object too large' <<<"$out"
stop_node big

# --- quorums and usage ------------------------------------------------------
out=$(dkv a -w 2 put q v 2>&1)
st=$?
check "w=2 with n_val 1 is refused (exit 1, not a quorum failure)" test $st -eq 1
check "... saying why" grep -q 'w=2 exceeds n_val=1' <<<"$out"
dkv a get 2>/dev/null
check "a usage error exits 2" test $? -eq 2

start_node q --n-val 3 || bail "second node did not start"
out=$(dkv q --sibling -w 2 put k v 2>&1)
st=$?
check "a quorum that cannot be met exits 3" test $st -eq 3
check "... with the documented message" grep -q 'quorum not met: 1 of w=2 replicas answered' <<<"$out"
out=$(dkv q -w one put k v 2>&1)
st=$?
check "a replace-mode put whose read cannot meet R exits 3" test $st -eq 3
check "... and says that nothing was written" \
	grep -q 'quorum not met: 1 of r=2 replicas answered.*nothing was written' <<<"$out"
out=$(dkv q --json -r all get k)
st=$?
check "r=all on a lone n_val 3 node exits 3 too" test $st -eq 3
check "... and --json reports the error" grep -q '"error"' <<<"$out"
check "w=one still works there" dkv q -w one --sibling put k v
check "... and with -r one in replace mode" dkv q -w one -r one put k v2
# A time to live: found until it passes, then not found (exit 4).
dkv a put ttlkey soon --ttl 1 >/dev/null 2>&1
check "put --ttl 1, then get: the value" test "$(dkv a get ttlkey 2>/dev/null)" = soon
sleep 1.3
dkv a get ttlkey >/dev/null 2>&1
st=$?
check "... and after the second: not found, exit 4 (got $st)" test $st -eq 4
dkv a get ttlkey --ttl 5 >/dev/null 2>"$tmp/ttl.err"
st=$?
check "--ttl on a get is a usage error (exit $st)" test $st -eq 2 -a \
	"$(grep -c -- '--ttl is for put, not get' "$tmp/ttl.err")" = 1
dkv a put ttlkey v --ttl 0 >/dev/null 2>"$tmp/ttl.err"
st=$?
check "--ttl 0 is a usage error (exit $st)" test $st -eq 2 -a \
	"$(grep -c 'is not a number of seconds 1..3153600000' "$tmp/ttl.err")" = 1

stop_node q

# --- persistence ------------------------------------------------------------
for i in $(seq 1 200); do
	dkv a put "p$i" "value $i" || break
done
check "200 acknowledged writes (sync = always)" test "$i" -eq 200
kill_node a
restart_node a --max-value-size 65536 || bail "restart after kill -9 failed"
missing=0
for i in $(seq 1 200); do
	[[ $(dkv a -q get "p$i") == "value $i" ]] || missing=$((missing + 1))
done
check "after kill -9 every acknowledged write is there ($missing missing)" test $missing -eq 0
dkv a -q get binmax >"$tmp/max.out2"
check "... including the largest value" cmp -s "$tmp/max" "$tmp/max.out2"

stop_node a
check "SIGTERM stops the node with status 0" test "$status_a" -eq 0
check "... after logging the shutdown" grep -q 'shutting down' "$tmp/a.log"
restart_node a || bail "restart with only --data-dir failed"
check "a restart needs nothing but --data-dir and --listen" \
	test "$(dkv a -q get p17)" = 'value 17'

# --- SIGHUP reopens the log file ---------------------------------------------
stop_node a
restart_node a --log-file "$tmp/a-file.log" || bail "restart with --log-file failed"
mv "$tmp/a-file.log" "$tmp/a-file.log.1"
kill -HUP "$pid_a"
for _ in $(seq 1 50); do [[ -s $tmp/a-file.log ]] && break; sleep 0.1; done
check "SIGHUP reopens log_file under its name (log rotation)" grep -q 'log reopened' "$tmp/a-file.log"
check "... and the node keeps serving" test "$(dkv a -q get p17)" = 'value 17'

# --- identity and the lock --------------------------------------------------
# the same configuration started twice: the lock, not the busy port, answers
"$DYNKVD" --data-dir "$tmp/a" --listen "127.0.0.1:$port_a" >"$tmp/second.log" 2>&1 </dev/null
st=$?
check "a second dynkvd on the same data directory exits 1" test $st -eq 1
check "... naming the holder" grep -q "in use by another dynkvd (pid $pid_a)" "$tmp/second.log"
stop_node a
for _ in 1 2 3 4 5; do
	"$DYNKVD" --data-dir "$tmp/a" --listen "127.0.0.1:$(free_port)" --ring-size 128 \
		>"$tmp/conflict.log" 2>&1 </dev/null
	st=$?
	grep -q 'Address already in use' "$tmp/conflict.log" || break
done
check "a restart with a conflicting --ring-size exits 2" test $st -eq 2
check "... and says why" grep -q 'ring_size 128 conflicts with ring_size 512 recorded in' "$tmp/conflict.log"
"$DYNKVD" --no-such-option 1 >"$tmp/usage.log" 2>&1
check "an unknown option exits 2" test $? -eq 2
"$DYNKVD" --version | grep -q '^dynkvd (dynkv) '
check "dynkvd --version" test $? -eq 0
"$DYNKVD" --check --n-val 1 | grep -q '^n_val = 1$'
check "dynkvd --check prints the effective settings" test $? -eq 0

finish
