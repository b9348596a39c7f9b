#!/bin/sh
# Run every test binary, print each one's cmocka summary, and fail if any failed.
#
# Under make valgrind, VALGRIND holds the memcheck command: each binary runs
# under it, and (VISOR_VALGRIND, tests/support/gwtest.c) so does every
# visor-gw its tests start, with its report in
# BUILD/valgrind/<binary>/gw-<pid>.log and one line per gateway process in
# BUILD/valgrind/<binary>/gateways.tally.  A binary fails on a test failure,
# on a memcheck error or leak in itself (exit 99), on a gateway that exited
# 99, and on any gateway report that is not empty (that also catches a
# gateway killed with -9 after memcheck had reported an error).  One line per
# binary at the end, then the totals and the wall time.
build=$1; shift
failed=0; ran=0
# glibc fills new allocations with the complement of this byte and freed
# ones with it: a read of memory nobody wrote (such as a buffer's missing
# NUL) then shows up as a failure instead of passing on zeroed pages.
# Gateways the tests start inherit it.  memcheck and ASan have their own.
export MALLOC_PERTURB_="${MALLOC_PERTURB_:-165}"

if [ -z "${VALGRIND:-}" ]; then
	for t in "$@"; do
		ran=$((ran + 1))
		echo "== $t"
		if ! "$t"; then
			echo "!! FAILED: $t"
			failed=$((failed + 1))
		fi
	done
	echo "test binaries: $((ran - failed)) passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
fi

mkdir -p "$build/valgrind" || exit 2
vgroot=$(cd "$build/valgrind" && pwd) || exit 2
rm -rf "$vgroot"/*
summary=$vgroot/summary.txt
: >"$summary"
start=$(date +%s)
gw_total=0; gw_stopped=0; gw_killed=0; gw_other=0; ctl_total=0
for t in "$@"; do
	ran=$((ran + 1))
	name=$(basename "$t")
	dir=$vgroot/$name
	mkdir -p "$dir"
	echo "== $t (memcheck)"
	t0=$(date +%s)
	VISOR_VALGRIND=1 VISOR_VALGRIND_DIR=$dir $VALGRIND "$t"
	rc=$?
	secs=$(($(date +%s) - t0))
	tally=$dir/gateways.tally
	[ -f "$tally" ] || : >"$tally"
	ctl=$(awk '$3 == "visorctl"' "$tally" | wc -l)
	n=$(($(wc -l <"$tally") - ctl))
	stopped=$(awk '$3 == "stop"' "$tally" | wc -l)
	killed=$(awk '$3 == "kill9"' "$tally" | wc -l)
	other=$((n - stopped - killed))
	exit99=$(awk '$4 == 99' "$tally" | wc -l)
	reports=$(find "$dir" -name '*-*.log' -size +0 | wc -l)
	why=""
	if [ "$rc" -eq 99 ]; then
		why="$why memcheck errors in the test binary;"
	elif [ "$rc" -ne 0 ]; then
		why="$why tests failed (exit $rc);"
	fi
	[ "$exit99" -gt 0 ] && why="$why $exit99 program(s) under memcheck exited 99;"
	[ "$reports" -gt 0 ] && why="$why $reports memcheck report(s) in $dir;"
	if [ -n "$why" ]; then
		verdict="FAILED:${why%;}"
		failed=$((failed + 1))
	else
		verdict="clean"
	fi
	line=$(printf '%-24s %5ss  gateways %3s (stopped %s, killed %s, other %s)%s  %s' \
	    "$name" "$secs" "$n" "$stopped" "$killed" "$other" \
	    "$([ "$ctl" -gt 0 ] && echo ", visorctl $ctl")" "$verdict")
	echo "valgrind: $line"
	echo "$line" >>"$summary"
	gw_total=$((gw_total + n)); gw_stopped=$((gw_stopped + stopped))
	gw_killed=$((gw_killed + killed)); gw_other=$((gw_other + other))
	ctl_total=$((ctl_total + ctl))
done
wall=$(($(date +%s) - start))
echo
echo "== make valgrind summary (one line per binary; gateways: stopped = SIGTERM"
echo "   and leak-checked at exit, killed = kill -9, checked for errors only,"
echo "   other = refused starts and --check-config runs, leak-checked at exit)"
cat "$summary"
printf 'valgrind: %d binaries, %d clean, %d failed; %d gateway processes (%d stopped, %d killed, %d other)%s; wall time %dm%02ds\n' \
    "$ran" "$((ran - failed))" "$failed" "$gw_total" "$gw_stopped" "$gw_killed" \
    "$gw_other" "$([ "$ctl_total" -gt 0 ] && echo "; $ctl_total visorctl runs")" \
    "$((wall / 60))" "$((wall % 60))" | tee -a "$summary"
[ "$failed" -eq 0 ]
