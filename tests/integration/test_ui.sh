#!/usr/bin/env bash
# test_ui.sh -- the page for people (GET /ui, dynkv-http(7) PAGE) of a real
# 3-node cluster: with curl, / sends to /ui, the page is src/ui/index.html
# byte for byte with its headers (Content-Security-Policy among them), and
# names no other site; then in a real browser (Debian's chromium, headless,
# through chromium-driver and python3-selenium: ui_browser.py), the ring it
# draws and the members it lists are those of dynkv-admin ring and members,
# the request rate rises with requests, a node killed shows down within the
# detection time, and a stopped serving node shows unreachable; the browser
# console stays free of errors.  It leaves a screenshot in the build tree,
# tests/integration/ui-screenshot.png.  Installs nothing: a missing browser
# is a failure, naming the package.  Every wait is bounded, and the browser
# is killed on every exit.
. "${top_srcdir:-.}/tests/integration/lib.sh"

if [[ ${UI_TEST:-} == 0 ]]; then
	# make distcheck's configure says so: the browser run is the plain build's
	echo "1..0 # SKIP UI_TEST=0: the page is not tested in a browser in this build"
	exit 0
fi

command -v curl >/dev/null || bail "curl is needed (apt-get install curl)"
chromium=$(command -v chromium) || bail "chromium is needed (apt-get install chromium)"
chromedriver=$(command -v chromedriver) ||
	bail "chromedriver is needed (apt-get install chromium-driver)"
selpy=
for py in python3 /usr/bin/python3; do   # python3 may be another than Debian's
	if "$py" -c 'import selenium' 2>/dev/null; then
		selpy=$py
		break
	fi
done
[[ -n $selpy ]] || bail "python3-selenium is needed (apt-get install python3-selenium)"

opts=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s --ring-size 64)
start_cluster3 "${opts[@]}"
h1=127.0.0.1:$((port_n1 + 1000))

# --- the page over HTTP ----------------------------------------------------------
req() {   # curl ...: the status; the body in $tmp/body, the headers in $tmp/head
	curl -s -o "$tmp/body" -D "$tmp/head" -w '%{http_code}' --max-time 10 "$@"
}
header() { grep -i "^$1:" "$tmp/head" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
check "GET /: 302" test "$(req "http://$h1/")" = 302
check "... Location: /ui" test "$(header Location)" = /ui
check "GET /ui: 200" test "$(req "http://$h1/ui")" = 200
check "... the page of src/ui/index.html, byte for byte" \
	cmp -s "$tmp/body" "$top_srcdir/src/ui/index.html"
check "... Content-Type: text/html; charset=utf-8" \
	test "$(header Content-Type)" = "text/html; charset=utf-8"
check "... Cache-Control: no-cache" test "$(header Cache-Control)" = no-cache
check "... a Content-Security-Policy: this node, and the page's inline script and style" \
	test "$(header Content-Security-Policy)" = "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline' 'self'; connect-src 'self'; img-src 'self' data:"
check "... under 40 KB ($(wc -c <"$tmp/body") bytes)" test "$(wc -c <"$tmp/body")" -lt 40960
check "... naming no other site (no http:// or https://)" \
	test -z "$(grep -Eio 'https?://[^ ]*' "$tmp/body")"
check "HEAD /ui: 200, no body" test "$(curl -s -I -o /dev/null -w '%{http_code} %{size_download}' \
	--max-time 10 "http://$h1/ui")" = "200 0"
check "POST /ui: 405" test "$(req -X POST -d x "http://$h1/ui")" = 405
check "... Allow: GET, HEAD" test "$(header Allow)" = "GET, HEAD"
req "http://$h1/nothing" >/dev/null
check "an unknown path's 404 lists /ui" grep -q "/metrics, /ui, /health" "$tmp/body"

# --- the page in a browser -----------------------------------------------------------
# timeout(1) runs the browser in a process group of its own, $!: killed
# whole, chromedriver and chromium with it, however this script ends.
browser=
stop_browser() {
	[[ -n $browser ]] && kill -9 -- "-$browser" 2>/dev/null
	browser=
	return 0
}
trap 'stop_browser; cleanup' EXIT
shot=$top_builddir/tests/integration/ui-screenshot.png
mkdir -p "$top_builddir/tests/integration" && rm -f "$shot"
timeout 50 "$selpy" "$top_srcdir/tests/integration/ui_browser.py" \
	--url "http://$h1" --admin "$ADMIN" --host "127.0.0.1:$port_n1" \
	--chromium "$chromium" --chromedriver "$chromedriver" \
	--kill-pid "$pid_n3" --kill-id "127.0.0.1:$port_n3" --stop-pid "$pid_n1" \
	--screenshot "$shot" >"$tmp/browser.out" 2>"$tmp/browser.log" </dev/null &
browser=$!
wait "$browser" 2>/dev/null   # 2>: bash's "Killed" for n3 is no news
st=$?
stop_browser
kill -CONT "$pid_n1" 2>/dev/null   # should the run have ended with n1 stopped
kill_node n3   # killed by the browser's run: reaped here
while IFS=$'\t' read -r verdict desc; do
	case $verdict in
	ok) ok "$desc" ;;
	"not ok") not_ok "$desc" ;;
	*) printf '%s\n' "$verdict" ;;
	esac
done <"$tmp/browser.out"
check "the browser's run ended by itself within 50 s (exit status $st)" test "$st" = 0
check "n1 serves on after SIGSTOP and SIGCONT" test "$(req "http://$h1/health")" = 200
finish
