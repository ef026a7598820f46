#!/bin/sh
# Lint every manual page under man/ with mandoc and report in TAP, one test
# per page.  Any output from 'mandoc -T lint -W warning' fails that page; a
# missing mandoc fails every page (a tool that is not there is not a skip).
# top_srcdir comes from the test environment (tests/Makefile.inc); run by
# hand, the script finds the tree from its own location.
top_srcdir=${top_srcdir:-$(dirname "$0")/..}
cd "$top_srcdir" || { echo "1..1"; echo "not ok 1 - cannot cd to $top_srcdir"; exit 0; }

pages=
n=0
for p in man/*.[1-8]; do
	[ -f "$p" ] || continue
	pages="$pages $p"
	n=$((n + 1))
done

if [ "$n" -eq 0 ]; then
	echo "1..1"
	echo "not ok 1 - no manual pages found under $top_srcdir/man"
	exit 0
fi

echo "1..$n"
have_mandoc=yes
command -v mandoc >/dev/null 2>&1 || have_mandoc=no
i=0
for p in $pages; do
	i=$((i + 1))
	if [ "$have_mandoc" = no ]; then
		echo "not ok $i - $p mandoc not installed (apt-get install mandoc)"
		continue
	fi
	out=$(mandoc -T lint -W warning "$p" 2>&1)
	if [ -z "$out" ]; then
		echo "ok $i - $p"
	else
		echo "not ok $i - $p mandoc -T lint reports problems"
		printf '%s\n' "$out" | sed 's/^/# /'
	fi
done
exit 0
