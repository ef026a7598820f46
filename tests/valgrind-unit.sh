#!/usr/bin/env bash
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
# Suites run VALGRIND_JOBS at a time (default: one per CPU): valgrind runs
# a program's threads one at a time, so one suite keeps one CPU busy.
jobs=${VALGRIND_JOBS:-$(nproc 2>/dev/null || echo 1)}

# One suite; its verdict ("ok", or the failure's details) in its log dir.
run_one() {
	local t=$1 name rc bad start
	name=$(basename "$t")
	start=$SECONDS
	# (the dynkv and dynkv-admin programs that test_cli_programs runs are
	# not traced: ~100 s of the stage; the sanitizer build checks them)
	DKV_VALGRIND=1 valgrind --trace-children=yes \
		--trace-children-skip='/usr/bin/*,/bin/*,*/src/dynkv,*/src/dynkv-admin' \
		--leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --track-fds=no \
		--log-file="$logs/$name/vg.%p" "$t" -j1 >"$logs/$name/out" 2>&1
	rc=$?
	bad=$(grep -l -E 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]|indirectly lost: [1-9]' \
		"$logs/$name"/vg.* 2>/dev/null)
	if [ $rc -ne 0 ] || [ -n "$bad" ]; then
		{
			echo "valgrind: $name ... FAILED (exit $rc, $((SECONDS - start)) s)"
			tail -5 "$logs/$name/out"
			for f in $bad; do sed -n '1,60p' "$f"; done
		} >"$logs/$name/verdict"
		return 1
	fi
	echo "valgrind: $name ... ok ($((SECONDS - start)) s)" >"$logs/$name/verdict"
}

# The longest suites first (their times under valgrind on a 2-CPU machine,
# most first): started last, one of them would run alone at the end while
# the other CPU idles.  Any suite not named keeps its place after them.
heavy="test_cli_programs test_dkv_config test_proto test_client test_bitcask_fault
	test_object test_keydir test_mpr test_record"
order=()
for h in $heavy; do
	for t in "$@"; do
		[ "$(basename "$t")" = "$h" ] && order+=("$t")
	done
done
for t in "$@"; do
	case " $(echo $heavy) " in
	*" $(basename "$t") "*) ;;
	*) order+=("$t") ;;
	esac
done

status=0
running=0
for t in "${order[@]}"; do
	mkdir -p "$logs/$(basename "$t")"
	if [ "$running" -ge "$jobs" ]; then
		wait -n || status=1
		running=$((running - 1))
	fi
	run_one "$t" &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	wait -n || status=1
	running=$((running - 1))
done
for t in "$@"; do
	cat "$logs/$(basename "$t")/verdict"
done
if [ $status -eq 0 ]; then
	rm -rf "$logs"
else
	echo "valgrind-unit: logs kept in $logs" >&2
fi
exit $status
