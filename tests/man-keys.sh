#!/bin/sh
# Every setting dynkvd knows is documented: one TAP line per key, checking
# that dynkv.conf(5) has an entry ".It Cm KEY" and dynkvd(8) names its
# option.  The keys come from the daemon itself (dynkvd --check), so a new
# key without documentation fails here.
top_srcdir=${top_srcdir:-$(dirname "$0")/..}
top_builddir=${top_builddir:-.}
keys=$("$top_builddir/src/dynkvd" --check 2>/dev/null |
	sed -n 's/^\(# \)\{0,1\}\([a-z_]*\) =.*/\2/p')
n=0
fail=0
if [ -z "$keys" ]; then
	echo "1..1"
	echo "not ok 1 - dynkvd --check listed no settings"
	exit 0
fi
for k in $keys; do
	opt=--$(echo "$k" | tr _ -)
	n=$((n + 1))
	if grep -q "^\.It Cm $k\( \|$\)" "$top_srcdir/man/dynkv.conf.5" &&
	   grep -q -- "\\\\-$(echo "$opt" | cut -c2-)\b\|Fl \\\\-$(echo "$opt" | cut -c3-)\b" "$top_srcdir/man/dynkvd.8"; then
		echo "ok $n - $k is in dynkv.conf.5 and $opt in dynkvd.8"
	else
		echo "not ok $n - $k: missing from dynkv.conf.5 or $opt from dynkvd.8"
		fail=1
	fi
done
echo "1..$n"
