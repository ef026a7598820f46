#!/usr/bin/env bash
# tests/integration/test_libdynkv_example.sh -- the program in EXAMPLES of
# man/libdynkv.3 compiles against the built libdynkv with the project's
# warnings as errors, runs against a real dynkvd, and prints exactly what
# the page says it prints.  TAP.
#
# How the example is found: man/libdynkv.3 marks it with roff comment lines,
# which the rendered page does not show:
#   .\" libdynkv-example: program   the .Bd -literal block that follows, up
#                                   to its .Ed, is the C program;
#   .\" libdynkv-example: output    the .Bd -literal block that follows is
#                                   what the program prints on stdout.
# (".\" libdynkv-example: end" after each block is for the reader.)  The
# marker line must be followed at once by .Bd -literal.  The block's lines
# are taken as they are, with the few roff escapes undone that literal text
# needs: \e is a backslash, \& nothing, \- a minus, \(aq an apostrophe.  Any
# other escape, and a line that begins with "." or "'" (a roff request,
# which the page would not show), fail the extraction: the page must show
# the program compiled here, character for character.
#
# The compiler and its flags are the build tree's (CC, CFLAGS, WARN_CFLAGS,
# SAN_CFLAGS from $top_builddir/Makefile), with -std=c11 -Wall -Werror; the
# program includes the source tree's src/client/dynkv.h and links the build
# tree's src/client/.libs/libdynkv.  It runs under valgrind, and must not
# leak; in a sanitizer build ASan and LeakSanitizer check it instead (no
# test is skipped: without valgrind a plain build fails that check).
. "${top_srcdir:-.}/tests/integration/lib.sh"

page=$top_srcdir/man/libdynkv.3
libs=$top_builddir/src/client/.libs

# The value of VAR in the build tree's Makefile (empty if it has none).
makevar() {
	sed -n "s/^$1 = //p" "$top_builddir/Makefile" 2>/dev/null | head -n 1
}

# The marked block MARK (program, output) of the page, unescaped, on stdout.
extract() {
	awk -v mark="$1" '
		function unescape(s,   out, i, c, n) {
			out = ""
			for (i = 1; i <= length(s); i++) {
				c = substr(s, i, 1)
				n = substr(s, i + 1, 1)
				if (c != "\\")
					out = out c
				else if (n == "e") {
					out = out "\\"; i++
				} else if (n == "&")
					i++
				else if (n == "-") {
					out = out "-"; i++
				} else if (substr(s, i + 1, 3) == "(aq") {
					out = out "\047"; i += 3
				} else {
					bad = bad sprintf("line %d: unknown escape \\%s\n", NR, n)
					i++
				}
			}
			return out
		}
		state == 0 && $0 == ".\\\" libdynkv-example: " mark { state = 1; next }
		state == 1 && /^\.Bd -literal/ { state = 2; next }
		state == 1 { bad = bad sprintf("line %d: no .Bd -literal after the marker\n", NR); exit }
		state == 2 && $0 == ".Ed" { state = 3; exit }
		state == 2 && /^[.\047]/ { bad = bad sprintf("line %d: a roff request in the block\n", NR) }
		state == 2 { print unescape($0) }
		END {
			if (state != 3 && bad == "")
				bad = sprintf("no block marked \"libdynkv-example: %s\"\n", mark)
			printf "%s", bad > "/dev/stderr"
			exit bad != ""
		}
	' "$page"
}

[[ -f $libs/libdynkv.a || -f $libs/libdynkv.so ]] ||
	bail "no libdynkv in $libs: build the tree first"
libs=$(cd "$libs" && pwd)

extract program >"$tmp/example.c" 2>"$tmp/extract.err"
st=$?
check "the page marks an example program, with no unknown roff escape" \
	test $st -eq 0 -a -s "$tmp/example.c"
sed 's/^/# /' "$tmp/extract.err"
check "... which is a C program with a main" grep -q '^main(int argc, char \*argv\[\])$' "$tmp/example.c"
extract output >"$tmp/expected" 2>"$tmp/extract.err"
st=$?
check "the page marks the output of the example" test $st -eq 0 -a -s "$tmp/expected"
sed 's/^/# /' "$tmp/extract.err"

cc=$(makevar CC)
# shellcheck disable=SC2046,SC2086
${cc:-cc} -std=c11 $(makevar CFLAGS) $(makevar WARN_CFLAGS) $(makevar SAN_CFLAGS) -Wall -Werror \
	-I"$top_srcdir/src/client" -o "$tmp/example" "$tmp/example.c" \
	-L"$libs" -Wl,-rpath,"$libs" -ldynkv $(makevar MSGPACK_LIBS) $(makevar SAN_LDFLAGS) \
	>"$tmp/cc.log" 2>&1
st=$?
check "it compiles against libdynkv with -Wall -Werror and the project's warnings" test $st -eq 0
sed 's/^/# /' "$tmp/cc.log"
[[ -x $tmp/example ]] || { finish; exit 1; }

timeout 10 "$tmp/example" >"$tmp/usage.out" 2>"$tmp/usage.err"
st=$?
check "without an address it exits 2 with its usage" test $st -eq 2 -a -s "$tmp/usage.err"
port=$(free_port)
timeout 30 "$tmp/example" "127.0.0.1:$port" >"$tmp/refused.out" 2>"$tmp/refused.err"
st=$?
check "against a port where nothing listens it exits 1" test $st -eq 1
check "... saying why on stderr, from dynkv_connect()'s err" \
	grep -q "^connect: 127.0.0.1:$port: connect: " "$tmp/refused.err"

start_node a --n-val 1 || bail "dynkvd did not start"

run=()
if [[ -z $(makevar SAN_CFLAGS) ]] && command -v valgrind >/dev/null 2>&1; then
	run=(valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all
		--error-exitcode=99 --log-file="$tmp/valgrind.log")
fi
# shellcheck disable=SC2154  # port_a: set by start_node (lib.sh)
timeout 60 "${run[@]}" "$tmp/example" "127.0.0.1:$port_a" >"$tmp/out" 2>"$tmp/err"
st=$?
check "against a node it exits 0" test $st -eq 0
sed 's/^/# stderr: /' "$tmp/err"
if ((${#run[@]} > 0)); then
	check "... and valgrind finds no memory error and no leak" test ! -s "$tmp/valgrind.log" -a $st -ne 99
	sed 's/^/# /' "$tmp/valgrind.log"
elif [[ -n $(makevar SAN_CFLAGS) ]]; then
	# built with the sanitizers: ASan and LeakSanitizer check it instead
	check "... and the sanitizers find no memory error and no leak" \
		bash -c '! grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$1"' _ "$tmp/err"
else
	not_ok "... and valgrind finds no memory error and no leak: valgrind is needed (apt-get install valgrind)"
fi
check "it prints what the page says it prints" cmp -s "$tmp/expected" "$tmp/out"
diff "$tmp/expected" "$tmp/out" | sed 's/^/# /'
check "... and nothing on stderr" test ! -s "$tmp/err"

# What the example did is on the node: the key it resolved and deleted.
dkv a -q get greeting >/dev/null 2>&1
check "the node has the example's key deleted (dynkv get exits 4)" test $? -eq 4

finish
