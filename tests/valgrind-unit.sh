#!/bin/sh
# tests/valgrind-unit.sh -- run unit suites under valgrind's memcheck and fail
# on any memory error or leak.  Used by 'make check-valgrind'.
#
# Criterion runs every test in a forked child and reports a child's exit
# status as its own verdict, so valgrind's --error-exitcode cannot reach us:
# each process writes its own log instead, and this script reads them all.
# Criterion re-executes itself for its workers, hence --trace-children.
#
# DKV_VALGRIND=1 tells suites to repeat statistical and coverage loops fewer
# times (tests/unit/testutil.h, test_reps): memory errors show at once.
#
# usage: tests/valgrind-unit.sh TEST-PROGRAM...
set -u
command -v valgrind >/dev/null 2>&1 || {
	echo "valgrind-unit: valgrind not found (apt-get install valgrind)" >&2
	exit 1
}
logs=$(mktemp -d "${TMPDIR:-/tmp}/dynkv-vg.XXXXXX") || exit 1
status=0
for t in "$@"; do
	name=$(basename "$t")
	mkdir -p "$logs/$name"
	printf 'valgrind: %s ... ' "$name"
	DKV_VALGRIND=1 valgrind --trace-children=yes --trace-children-skip='/usr/bin/*,/bin/*' --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --track-fds=no \
		--log-file="$logs/$name/vg.%p" "$t" -j1 >"$logs/$name/out" 2>&1
	rc=$?
	bad=$(grep -l -E 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]|indirectly lost: [1-9]' \
		"$logs/$name"/vg.* 2>/dev/null)
	if [ $rc -ne 0 ] || [ -n "$bad" ]; then
		echo "FAILED (exit $rc)"
		tail -5 "$logs/$name/out"
		for f in $bad; do sed -n '1,60p' "$f"; done
		status=1
	else
		echo ok
	fi
done
if [ $status -eq 0 ]; then
	rm -rf "$logs"
else
	echo "valgrind-unit: logs kept in $logs" >&2
fi
exit $status
