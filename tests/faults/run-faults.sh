#!/usr/bin/env bash
# run-faults.sh -- the fault suite on real processes (tests/faults/README).
#
# Five dynkvd on their own loopback addresses (127.77.X.1-7, port 7070),
# N=3, under faultload's gets, puts and deletes through random nodes,
# while a seeded nemesis applies faults one after another and two at a
# time: kill -9 and restart; SIGSTOP past the suspicion timeout, then
# SIGCONT; iptables partitions (one node cut off, a minority of two, one
# way only); a fallback killed while it holds hints; a data directory
# wiped (the node removed, a new one joining in its place); joins and
# leaves.  Then every fault is healed, the cluster waits until it has
# converged (one settled ring, no hints, no transfers, equal anti-entropy
# roots), the nodes stop, and faultcheck reads every primary's copy of
# every key.  TAP; every wait is bounded; the iptables chain is removed on
# every exit.  Needs root (iptables): without it the suite fails.
#
# Environment: FAULT_SECONDS (of load and faults; default 30, 12 under the
# sanitizers; 0: not run, as in make distcheck), FAULT_SEED (default: drawn and printed), FAULT_KEYS (200),
# FAULT_THREADS (6), FAULT_KEEP (a directory to copy the run's files and
# logs to).  `make check-faults` runs 600 s.
. "${top_srcdir:-.}/tests/integration/lib.sh"

if [[ -n ${DKV_SANITIZERS:-} ]]; then
	FAULT_SECONDS=${FAULT_SECONDS:-12}
else
	FAULT_SECONDS=${FAULT_SECONDS:-30}
fi
FAULT_SEED=${FAULT_SEED:-$(( $(date +%s%N) / 1000 % 1000000 ))}
FAULT_KEYS=${FAULT_KEYS:-200}
FAULT_THREADS=${FAULT_THREADS:-6}
for v in FAULT_SECONDS FAULT_SEED FAULT_KEYS FAULT_THREADS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || bail "$v=${!v}: not a number (seconds, a seed, keys, threads)"
done
if ((FAULT_SECONDS == 0)); then
	# make distcheck's configure says so: fault runs are for the plain
	# and sanitizer builds, not the tarball's check
	echo "1..0 # SKIP FAULT_SECONDS=0: the fault suite is not run in this build"
	exit 0
fi
((FAULT_SECONDS >= 10)) || bail "FAULT_SECONDS=$FAULT_SECONDS: at least 10 (the nemesis stops 3 s before the load)"
LOAD=$top_builddir/tests/faults/faultload
CHECKER=$top_builddir/tests/faults/faultcheck
RING_SIZE=64
NSLOTS=7
net="127.77.$(( $$ % 250 + 1 ))"        # this run's addresses: $net.1 .. $net.7
chain="dkvf$$"
echo "# seed $FAULT_SEED, $FAULT_SECONDS s, addresses $net.1-$NSLOTS (repeat: FAULT_SEED=$FAULT_SEED FAULT_SECONDS=$FAULT_SECONDS)"
RANDOM=$FAULT_SEED

opts=(--probe-interval 200ms --probe-timeout 100ms --suspect-timeout 1s
      --push-pull-interval 1s --request-timeout 2s --ring-size "$RING_SIZE"
      --aae-interval 200ms --tombstone-grace 10)

now_ms() { date +%s%3N; }

# --- iptables -------------------------------------------------------------------
# Our rules live in one chain, jumped to from INPUT; chains of runs whose
# process is gone are removed first.
ipt_remove_chain() {
	iptables -D INPUT -j "$1" 2>/dev/null
	iptables -F "$1" 2>/dev/null
	iptables -X "$1" 2>/dev/null
	return 0
}
faults_cleanup() {
	ipt_remove_chain "$chain"
	if [[ -n ${FAULT_KEEP:-} ]]; then
		cp -r "$tmp" "$FAULT_KEEP" && echo "# (a copy of $tmp is in $FAULT_KEEP)"
	fi
	cleanup
}
trap faults_cleanup EXIT

if ((EUID != 0)); then
	bail "the fault suite needs root, for iptables partitions (it never skips)"
fi
if ! command -v iptables >/dev/null; then
	bail "iptables is not installed (apt-get install iptables)"
fi
for c in $(iptables -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^dkvf[0-9]+$/ { print $2 }'); do
	kill -0 "${c#dkvf}" 2>/dev/null || ipt_remove_chain "$c"
done
iptables -N "$chain" && iptables -I INPUT -j "$chain" ||
	bail "cannot create the iptables chain $chain"

# Drop packets from address A to address B (one direction).
cut() { iptables -A "$chain" -s "$1" -d "$2" -j DROP; }
uncut() { iptables -D "$chain" -s "$1" -d "$2" -j DROP 2>/dev/null || true; }

# --- nodes in slots -------------------------------------------------------------
# A slot is an address; the node in it is f<slot>g<generation>: a wiped or
# departed node's slot gets a new generation, a new identity.
declare -A st=() gen=() busy=()
for ((s = 1; s <= NSLOTS; s++)); do st[$s]=spare; gen[$s]=1; busy[$s]=0; done
ip_of() { echo "$net.$1"; }
addr_of() { echo "$net.$1:7070"; }
id_of() { echo "f$1g${gen[$1]}"; }

start_slot() {
	local s=$1 i
	shift
	"$DYNKVD" --data-dir "$tmp/f$s" --listen "$(addr_of "$s")" --node-id "$(id_of "$s")" \
		"${opts[@]}" "$@" >>"$tmp/f$s.log" 2>&1 </dev/null &
	node_pids[f$s]=$!
	for ((i = 0; i < 200; i++)); do
		kill -0 "${node_pids[f$s]}" 2>/dev/null || return 1
		"$DYNKV" --host "$(addr_of "$s")" --connect-timeout 500 ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}
running() { [[ -n ${node_pids[f$1]:-} ]]; }
adm_slot() {
	local s=$1
	shift
	timeout 10 "$ADMIN" --host "$(addr_of "$s")" "$@"
}
members() {   # member slots (leaving ones too), one line
	local s out=()
	for ((s = 1; s <= NSLOTS; s++)); do [[ ${st[$s]} != spare ]] && out+=("$s"); done
	echo "${out[@]}"
}
nmembers() { local m; m=($(members)); echo "${#m[@]}"; }
# A member slot that is running, in no fault and not leaving, drawn at
# random (none: empty); arguments are slots to avoid.
pick_member() {
	local s c=()
	for s in $(members); do
		[[ ${st[$s]} == member && ${busy[$s]} == 0 ]] && running "$s" && [[ " $* " != *" $s "* ]] &&
			c+=("$s")
	done
	((${#c[@]})) && echo "${c[RANDOM % ${#c[@]}]}"
	return 0
}
write_targets() {
	local s
	for s in $(members); do running "$s" && addr_of "$s"; done >"$tmp/targets.new"
	mv "$tmp/targets.new" "$tmp/targets"
}

# --- the schedule -------------------------------------------------------------
# steps: "due_ms command..." run by the loop when due; a fault's record is
# written to the faults file when it ends.
steps=()
nfault=0
at() { steps+=("$(( $(now_ms) + $1 )) ${*:2}"); }
declare -A f_cls=() f_start=() f_nodes=() f_slots=() f_rules=()
fault_begin() {   # fault_begin CLASS SLOTS...: sets $fid
	fid=$((++nfault))
	f_cls[$fid]=$1
	f_start[$fid]=$(now_ms)
	f_slots[$fid]="${*:2}"
	f_nodes[$fid]=""
	local s
	for s in "${@:2}"; do busy[$s]=1; f_nodes[$fid]+="$(id_of "$s") "; done
	f_rules[$fid]=""
	echo "# $(( $(now_ms) - t0 )) ms: ${f_cls[$fid]} ${f_nodes[$fid]}"
}
fault_end() {
	local id=$1 s
	for s in ${f_slots[$id]}; do busy[$s]=0; done
	echo "${f_cls[$id]} ${f_start[$id]} $(now_ms) ${f_nodes[$id]}" >>"$tmp/faults"
	echo "# $(( $(now_ms) - t0 )) ms: healed ${f_cls[$id]} ${f_nodes[$id]}"
}
rules_add() {     # rules_add FID FROM-SLOT TO-SLOT
	cut "$(ip_of "$2")" "$(ip_of "$3")"
	f_rules[$1]+="$2:$3 "
}
heal_rules() {
	local id=$1 r
	for r in ${f_rules[$id]}; do uncut "$(ip_of "${r%:*}")" "$(ip_of "${r#*:}")"; done
	f_rules[$id]=""
}
others_of() {     # every slot but the ones given
	local s
	for ((s = 1; s <= NSLOTS; s++)); do [[ " $* " != *" $s "* ]] && echo "$s"; done
}
duration() { echo $((1500 + RANDOM % 3500)); }
failed_changes=0
change_active=0

# kill -9, restart later
f_kill() {
	local s
	s=$(pick_member) && [[ -n $s ]] || return 1
	fault_begin kill "$s"
	kill_node "f$s"
	write_targets
	at "$(duration)" end_kill "$fid" "$s"
}
end_kill() {
	start_slot "$2" || { not_ok "$(id_of "$2") restarted after kill -9"; failed_changes=$((failed_changes + 1)); }
	write_targets
	fault_end "$1"
}

# SIGSTOP past suspect_timeout (1 s), then SIGCONT
f_pause() {
	local s
	s=$(pick_member) && [[ -n $s ]] || return 1
	fault_begin pause "$s"
	kill -STOP "${node_pids[f$s]}"
	at "$(duration)" end_pause "$fid" "$s"
}
end_pause() { kill -CONT "${node_pids[f$2]}" 2>/dev/null; fault_end "$1"; }

# partitions
f_part_one() {
	local s o
	s=$(pick_member) && [[ -n $s ]] || return 1
	fault_begin part-one "$s"
	for o in $(others_of "$s"); do rules_add "$fid" "$s" "$o"; rules_add "$fid" "$o" "$s"; done
	at "$(duration)" end_part "$fid"
}
f_part_minority() {
	local a b o
	a=$(pick_member) && [[ -n $a ]] || return 1
	b=$(pick_member "$a") && [[ -n $b ]] || return 1
	fault_begin part-minority "$a" "$b"
	for o in $(others_of "$a" "$b"); do
		rules_add "$fid" "$a" "$o"; rules_add "$fid" "$o" "$a"
		rules_add "$fid" "$b" "$o"; rules_add "$fid" "$o" "$b"
	done
	at "$(duration)" end_part "$fid"
}
f_part_oneway() {
	local s o
	s=$(pick_member) && [[ -n $s ]] || return 1
	fault_begin part-oneway "$s"
	for o in $(others_of "$s"); do rules_add "$fid" "$s" "$o"; done
	at "$(duration)" end_part "$fid"
}
end_part() { heal_rules "$1"; fault_end "$1"; }

# a fallback killed while it holds hints: cut a node off so that others
# take hints for it, kill one that holds some, restart it, then heal
f_fallback_kill() {
	local s o
	s=$(pick_member) && [[ -n $s ]] || return 1
	fault_begin fallback-kill "$s"
	for o in $(others_of "$s"); do rules_add "$fid" "$s" "$o"; rules_add "$fid" "$o" "$s"; done
	at 2000 fk_kill "$fid" "$s"
}
fk_kill() {
	local id=$1 s=$2 f n
	for f in $(members); do
		[[ $f == "$s" || ${busy[$f]} == 1 || ${st[$f]} != member ]] && continue
		running "$f" || continue
		n=$(adm_slot "$f" --json hints 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending"])' 2>/dev/null)
		if [[ ${n:-0} -gt 0 ]]; then
			busy[$f]=1
			f_slots[$id]+=" $f"
			f_nodes[$id]+="$(id_of "$f")(hints=$n) "
			echo "# $(( $(now_ms) - t0 )) ms: fallback $(id_of "$f") holds $n hints: kill -9"
			kill_node "f$f"
			write_targets
			at 1500 fk_restart "$id" "$f"
			return
		fi
	done
	f_nodes[$id]+="(no fallback held hints) "
	at 0 end_part "$id"
}
fk_restart() {
	start_slot "$2" || { not_ok "fallback $(id_of "$2") restarted"; failed_changes=$((failed_changes + 1)); }
	write_targets
	at 1000 end_part "$1"
}

# a data directory wiped: the node is gone for good; remove it, and a new
# node (a new identity) joins at its address
f_wipe() {
	local s
	((change_active == 0)) || return 1
	s=$(pick_member) && [[ -n $s ]] || return 1
	change_active=1
	fault_begin wipe "$s"
	kill_node "f$s"
	rm -rf "${tmp:?}/f$s"
	write_targets
	at 500 wipe_remove "$fid" "$s" $(( $(now_ms) + 30000 ))
}
wipe_remove() {
	local id=$1 s=$2 deadline=$3 m out
	m=$(pick_member "$s")
	if [[ -n $m ]] && out=$(adm_slot "$m" remove "$(id_of "$s")" 2>&1); then
		echo "# $(( $(now_ms) - t0 )) ms: removed $(id_of "$s") through $(id_of "$m")"
		gen[$s]=$((gen[$s] + 1))
		if start_slot "$s" --seeds "$(addr_of "$m")"; then
			echo "# $(( $(now_ms) - t0 )) ms: $(id_of "$s") joins in its place"
		else
			not_ok "$(id_of "$s") started in place of a wiped node"
			failed_changes=$((failed_changes + 1))
		fi
		write_targets
		fault_end "$id"
		change_active=0
	elif (( $(now_ms) > deadline )); then
		not_ok "remove of wiped $(id_of "$s") accepted within 30 s: ${out:-no member to ask}"
		failed_changes=$((failed_changes + 1))
		st[$s]=spare
		fault_end "$id"
		change_active=0
	else
		at 500 wipe_remove "$id" "$s" "$deadline"
	fi
}

# a standby joins
f_join() {
	local s c=() m
	((change_active == 0)) && (($(nmembers) < 6)) || return 1
	for ((s = 1; s <= NSLOTS; s++)); do [[ ${st[$s]} == spare && ${busy[$s]} == 0 ]] && c+=("$s"); done
	((${#c[@]})) || return 1
	s=${c[RANDOM % ${#c[@]}]}
	m=$(pick_member) && [[ -n $m ]] || return 1
	change_active=1
	fault_begin join "$s"
	rm -rf "${tmp:?}/f$s"
	if start_slot "$s" --seeds "$(addr_of "$m")"; then
		st[$s]=member
	else
		not_ok "$(id_of "$s") started to join"
		failed_changes=$((failed_changes + 1))
	fi
	write_targets
	at 1000 end_join "$fid"
}
end_join() { fault_end "$1"; change_active=0; }

# The node in slot s is gone: the slot is a standby with a new identity.
slot_gone() {
	st[$2]=spare
	gen[$2]=$((gen[$2] + 1))
	write_targets
	fault_end "$1"
	change_active=0
}

# a member leaves: it hands its data over, then exits 0 by itself
f_leave() {
	local s
	((change_active == 0)) && (($(nmembers) > 4)) || return 1
	s=$(pick_member) && [[ -n $s ]] || return 1
	adm_slot "$s" leave >/dev/null 2>&1 || return 1
	change_active=1
	fault_begin leave "$s"
	st[$s]=leaving
	at 200 leave_poll "$fid" "$s" $(( $(now_ms) + 90000 ))
}
leave_poll() {
	local id=$1 s=$2 deadline=$3 pid=${node_pids[f$2]} rc=0
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" || rc=$?
		unset "node_pids[f$s]"
		if ((rc != 0)); then
			not_ok "$(id_of "$s") left and exited with status 0 (was $rc)"
			failed_changes=$((failed_changes + 1))
		fi
		echo "# $(( $(now_ms) - t0 )) ms: $(id_of "$s") left (status $rc)"
		slot_gone "$id" "$s"
	elif (( $(now_ms) > deadline )); then
		not_ok "$(id_of "$s") finished leaving within 90 s"
		failed_changes=$((failed_changes + 1))
		kill_node "f$s"
		slot_gone "$id" "$s"
	else
		at 200 leave_poll "$id" "$s" "$deadline"
	fi
}

classes=(kill pause part_one part_minority part_oneway fallback_kill wipe join leave)
# The classes are drawn from a bag, shuffled each time it empties, so that
# a short run applies every class; one that cannot start now (a node
# busy, a membership change under way) stays in the bag.
bag=()
draw_fault() {
	local i j t tried=0
	if ((${#bag[@]} == 0)); then
		bag=("${classes[@]}")
		for ((i = ${#bag[@]} - 1; i > 0; i--)); do
			j=$((RANDOM % (i + 1))); t=${bag[i]}; bag[i]=${bag[j]}; bag[j]=$t
		done
	fi
	for i in "${!bag[@]}"; do
		if "f_${bag[$i]}"; then
			unset "bag[$i]"
			bag=("${bag[@]}")
			return 0
		fi
		tried=$((tried + 1))
		((tried < 4)) || return 1
	done
	return 1
}

# Run the steps that are due, in due order.
run_steps() {
	local now i best due
	while :; do
		now=$(now_ms)
		best=-1
		for i in "${!steps[@]}"; do
			due=${steps[$i]%% *}
			if ((due <= now)) && { ((best < 0)) || ((due < ${steps[$best]%% *})); }; then
				best=$i
			fi
		done
		((best >= 0)) || return 0
		local cmd=${steps[$best]#* }
		unset "steps[$best]"
		steps=("${steps[@]}")
		# shellcheck disable=SC2086
		$cmd
	done
}

# --- the cluster ------------------------------------------------------------------
start_slot 1 || bail "f1g1 did not start"
st[1]=member
for s in 2 3 4 5; do
	start_slot "$s" --seeds "$(addr_of 1)" || bail "$(id_of "$s") did not start"
	st[$s]=member
done
settled_all() {
	local s n
	n=$(nmembers)
	for s in $(members); do
		[[ $(adm_slot "$s" --json ring 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(len(r["ownership"]), r["settled"])' 2>/dev/null) == "$n True" ]] || return 1
	done
}
until_ms() {   # until_ms COND MS: COND holds within MS milliseconds of now
	local t=$(( $(now_ms) + $2 ))
	while (( $(now_ms) < t )); do
		eval "$1" && return 0
		sleep 0.2
	done
	return 1
}
until_ms settled_all 60000 || bail "the 5 nodes did not settle"
ok "5 nodes formed one settled ring"
: >"$tmp/faults"
write_targets

# --- load and faults ----------------------------------------------------------------
t0=$(now_ms)
"$LOAD" --targets "$tmp/targets" --log "$tmp/ops.log" --seconds "$FAULT_SECONDS" \
	--threads "$FAULT_THREADS" --keys "$FAULT_KEYS" --seed "$FAULT_SEED" \
	>"$tmp/load.out" 2>&1 &
load_pid=$!
t_stop=$(( t0 + (FAULT_SECONDS - 3) * 1000 ))
next=$(( t0 + 1000 ))
while (( $(now_ms) < t_stop )); do
	run_steps
	active=0
	for ((s = 1; s <= NSLOTS; s++)); do ((busy[$s])) && active=$((active + 1)); done
	if (( $(now_ms) >= next && active < 2 )); then
		draw_fault || true
		next=$(( $(now_ms) + 300 + RANDOM % 2000 ))
	fi
	sleep 0.1
done
# heal: every step due now; what they schedule (a restart after a
# fallback's kill, a leave still handing over) runs as it comes due
for i in "${!steps[@]}"; do steps[$i]="0 ${steps[$i]#* }"; done
run_steps
# a change still in progress (a leave) finishes by itself: wait for it
while ((${#steps[@]})); do run_steps; sleep 0.2; done
wait "$load_pid"
load_rc=$?
sed 's/^/# /' "$tmp/load.out"
check "the workload ran and reached the nodes (exit $load_rc)" test "$load_rc" = 0
check "the nemesis applied faults ($(wc -l <"$tmp/faults"))" test "$(wc -l <"$tmp/faults")" -gt 0
check "every membership change completed ($failed_changes did not)" test "$failed_changes" = 0
r=$(iptables -S "$chain" | grep -c -- '-j DROP')
check "every partition was healed ($r rules left)" test "$r" = 0

# --- healing ---------------------------------------------------------------------------
# Converged: every member sees the same settled ring of every member, holds
# no hint, transfers nothing, and every partition's replicas have equal
# anti-entropy roots.
converged() {
	local s
	rm -rf "$tmp/heal" && mkdir -p "$tmp/heal"
	settled_all || return 1
	for s in $(members); do
		adm_slot "$s" --json hints >"$tmp/heal/hints-$s" 2>/dev/null || return 1
		adm_slot "$s" --json transfers >"$tmp/heal/transfers-$s" 2>/dev/null || return 1
		adm_slot "$s" --json aae >"$tmp/heal/aae-$s" 2>/dev/null || return 1
	done
	python3 - "$tmp/heal" <<'EOF'
import glob, json, os, sys
d = sys.argv[1]
roots = {}
for f in glob.glob(os.path.join(d, "*")):
    j = json.load(open(f))
    name = os.path.basename(f)
    if name.startswith("hints-") and j["pending"] != 0:
        sys.exit(1)
    if name.startswith("transfers-") and (j["active"] or j["pending"]):
        sys.exit(1)
    if name.startswith("aae-"):
        for p in j["partitions"]:
            if p["state"] != "ready":
                sys.exit(1)
            roots.setdefault(p["partition"], set()).add(p["root"])
sys.exit(0 if all(len(r) == 1 for r in roots.values()) else 1)
EOF
}
h0=$(now_ms)
until_ms converged 180000
healed=$?
check "the cluster converged after healing ($(( $(now_ms) - h0 )) ms)" test "$healed" = 0

# --- stop and check ---------------------------------------------------------------------
final=()
for s in $(members); do
	stop_node "f$s"
	v="status_f$s"
	check "$(id_of "$s") stopped cleanly (status ${!v})" test "${!v}" = 0
	final+=("$(id_of "$s")=$tmp/f$s")
done
echo "# faults applied:"
sed 's/^/#   /' "$tmp/faults"
"$CHECKER" --log "$tmp/ops.log" --faults "$tmp/faults" --keys "$FAULT_KEYS" \
	--ring-size "$RING_SIZE" --n-val 3 "${final[@]}" >"$tmp/check.out" 2>&1
check_rc=$?
sed 's/^/# /' "$tmp/check.out"
check "faultcheck: no acknowledged write lost, no delete undone, no unknown value, replicas equal" \
	test "$check_rc" = 0
ipt_remove_chain "$chain"
check "the iptables chain is gone" bash -c "! iptables -S $chain >/dev/null 2>&1"
finish
