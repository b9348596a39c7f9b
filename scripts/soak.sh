#!/usr/bin/env bash
# scripts/soak.sh [SECONDS]: the soak test (issue 8, not part of make test).
#
# Two quickstart areas (norfolk, suffolk) in soak-run/, both gateways
# running, and for SECONDS (default 300):
#   - mixed load: batches of synthetic records (visorctl gen | visorctl
#     push, as probation) to both gateways; short bursts of policy-filtered,
#     audited GETs (bench_http --mode get) on norfolk; transfers of pushed
#     records norfolk -> suffolk (visorctl transfer, as police);
#   - SIGHUP to both gateways every 10 s; a SIGTERM restart of the peer
#     (suffolk) every 45 s; one kill -9 of norfolk at mid-time, restarted;
#   - the resident memory (VmRSS) of both sampled every 5 s into
#     soak-run/rss.txt.
# Then it checks that every acknowledged push is in its gateway's audit log
# exactly once (one collect per record id) and can be read back; that every
# transfer answered 202 is delivered, with exactly one transfer-in at
# suffolk; that `visorctl audit verify` passes on both logs; that every
# SIGHUP reloaded and every SIGTERM stop exited 0; and that RSS stayed flat
# after warm-up (the first third of the run): per gateway, the peak of the
# last third at most 1.5x the peak of the middle third, and the
# longest-lived process's last sample at most 1.5x its first after its own
# warm-up.  The check is on the anonymous RSS; VmRSS, which also counts
# file-backed pages (the program and its libraries), is reported beside it.  It prints a summary (also soak-run/summary.txt) and exits 1 on
# any failed check.
#
# Run as root, the gateways drop to the quickstart account (visor-gw) as in
# a real deployment.  Needs python3 for the audit-log checks.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
bin="$top/$build/bin"
bench="$top/$build/bench/bench_http"
run="$top/soak-run"
visorctl="$bin/visorctl"
duration=${1:-300}
# The warm-up of one process, for the check of the longest-lived one: the
# store's writer has a 64 MiB SQLite page cache (cache_size=-65536) and a
# record cache of up to 32 MiB (limits.record_cache_mib), which fill as the
# log and the records grow.  For the whole run, the first third is warm-up.
warmup=${SOAK_WARMUP:-90}
batch_size=25

case "$duration" in
'' | *[!0-9]*) echo "usage: scripts/soak.sh [SECONDS]" >&2; exit 2 ;;
esac
[ "$duration" -ge 60 ] || { echo "soak: at least 60 seconds" >&2; exit 2; }
command -v python3 >/dev/null || { echo "soak: needs python3" >&2; exit 2; }
if [ ! -x "$visorctl" ] || [ ! -x "$bin/visor-gw" ] || [ ! -x "$bench" ]; then
	make -s -C "$top" all "$build/bench/bench_http" >/dev/null ||
	    { echo "soak: build failed" >&2; exit 2; }
fi

declare -A gwpid=()
workers=()

cleanup() {
	local p
	touch "$run/stop" 2>/dev/null
	for p in "${workers[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${gwpid[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
die() { echo "soak: $*" >&2; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_base_port() {
	local try p
	for try in $(seq 1 100); do
		p=$((20000 + RANDOM % 20000))
		if ! port_in_use "$p" && ! port_in_use $((p + 1)) &&
		    ! port_in_use $((p + 1000)) && ! port_in_use $((p + 1001)); then
			echo "$p"
			return 0
		fi
	done
	return 1
}

rm -rf "$run"
mkdir -p "$run"
base=$(free_base_port) || die "no free ports"
"$visorctl" quickstart "$run/q" --areas norfolk,suffolk --base-port "$base" \
    >"$run/quickstart.txt" || die "quickstart failed"
# The GET bursts of one identity go far past
# limits.identity_requests_per_second's default (500): a limit they never
# meet keeps the check on every request without refusing any (this soaks
# the gateway, not its limits).
"$(dirname "$0")"/unlimit-rate.py "$run"/q/*/gateway.json
pki="$run/q/pki"
declare -A url=([norfolk]="https://127.0.0.1:$base" [suffolk]="https://127.0.0.1:$((base + 1))")

# Start the gateway of an area and wait until it listens (the start-up
# check of a growing log takes longer at each restart).
start_gw() {
	local a=$1 n0 i
	n0=$(grep -c 'event=listening' "$run/$a.log" 2>/dev/null)
	"$bin/visor-gw" --config "$run/q/$a/gateway.json" 2>>"$run/$a.log" &
	gwpid[$a]=$!
	echo "${gwpid[$a]}" >"$run/$a.pid"
	echo "$a ${gwpid[$a]} $(( $(date +%s) - t0 ))" >>"$run/pids.txt"
	for i in $(seq 1 1200); do
		[ "$(grep -c 'event=listening' "$run/$a.log")" -gt "${n0:-0}" ] && return 0
		kill -0 "${gwpid[$a]}" 2>/dev/null || break
		sleep 0.05
	done
	tail -5 "$run/$a.log" >&2
	die "$a did not start"
}

# SIGTERM, and the exit status must be 0 (drained, last checkpoint signed).
stop_gw() {
	local a=$1 rc
	kill -TERM "${gwpid[$a]}"
	wait "${gwpid[$a]}"
	rc=$?
	echo "$a sigterm rc=$rc" >>"$run/stops.txt"
	[ "$rc" -eq 0 ] || log "FAIL: $a exited $rc after SIGTERM"
}

kill9_gw() {
	local a=$1
	kill -KILL "${gwpid[$a]}"
	wait "${gwpid[$a]}" 2>/dev/null
}

# ---------------------------------------------------------------- workers

stopping() { [ -e "$run/stop" ]; }

# Batches of records to both gateways.  A batch is acknowledged when
# visorctl push exits 0 (every record answered 200/201); a batch that
# fails (its gateway restarting) is pushed again, same bodies, same
# idempotency keys, until it is acknowledged or the run ends.
push_worker() {
	local b=0 a area_up tries rc
	while ! stopping; do
		b=$((b + 1))
		if [ $((b % 3)) -eq 0 ]; then a=suffolk; else a=norfolk; fi
		area_up=$(echo "$a" | tr a-z A-Z | cut -c1-3)
		"$visorctl" gen --count "$batch_size" --area "$a" --seed "$b" |
		    sed "s/^{\"id\":\"[A-Z]*-/{\"id\":\"SOAK-$area_up-B$b-/" \
		    >"$run/batches/$b.jsonl"
		tries=0
		while :; do
			tries=$((tries + 1))
			"$visorctl" push --gateway "${url[$a]}" \
			    --cert "$pki/$a/agency-probation.crt" --actor PRB-SOAK \
			    --purpose risk-management --concurrency 4 --retries 3 \
			    --timeout 10 --jsonl "$run/batches/$b.jsonl" \
			    >>"$run/push.out" 2>&1
			rc=$?
			[ "$rc" -eq 0 ] && break
			echo "batch $b ($a) try $tries: exit $rc" >>"$run/push-retries.txt"
			if stopping || [ "$tries" -ge 20 ]; then
				echo "$a $b" >>"$run/unacked-batches.txt"
				continue 2
			fi
			sleep 1
		done
		sed 's/^{"id":"\([^"]*\)".*/\1/' "$run/batches/$b.jsonl" \
		    >>"$run/acked-$a.txt"
	done
}

# Short bursts of audited, policy-filtered GETs on norfolk.
get_worker() {
	local n=0
	while ! stopping; do
		n=$((n + 1))
		"$bench" --name get --url "${url[norfolk]}" \
		    --cert "$pki/norfolk/agency-probation.crt" \
		    --key "$pki/norfolk/agency-probation.key" --cacert "$pki/root.crt" \
		    --mode get --ids 200 --connections 4 --duration 2 \
		    >>"$run/get.out" 2>&1
		sleep 1
	done
}

# Transfers of acknowledged norfolk records to suffolk, one every ~0.5 s.
# A transfer is counted when the gateway answered 202 (visorctl prints the
# transfer id and exits 0).
transfer_worker() {
	local next=1 id out
	while ! stopping; do
		id=$(sed -n "${next}p" "$run/acked-norfolk.txt" 2>/dev/null)
		if [ -z "$id" ]; then
			sleep 0.5
			continue
		fi
		next=$((next + 1))
		if out=$("$visorctl" transfer "$id" --to suffolk \
		    --gateway "${url[norfolk]}" --cert "$pki/norfolk/agency-police.crt" \
		    --actor PC-SOAK --justification "soak test: offender moves" \
		    --timeout 10 2>>"$run/transfer.err"); then
			echo "$(echo "$out" | tail -1) $id" >>"$run/transfers.txt"
		else
			echo "$id" >>"$run/transfers-refused.txt"
		fi
		sleep 0.5
	done
}

rss_worker() {
	local a p rss
	while ! stopping; do
		for a in norfolk suffolk; do
			p=$(cat "$run/$a.pid" 2>/dev/null)
			# VmRSS, RssAnon (heap: where a leak shows), RssFile
			# (file-backed pages: the program and its libraries).
			rss=$(awk '/^VmRSS:/ {v=$2} /^RssAnon:/ {a=$2}
			    /^RssFile:/ {f=$2} END {if (v) print v, a, f}' \
			    "/proc/$p/status" 2>/dev/null)
			[ -n "$rss" ] && echo "$(( $(date +%s) - t0 )) $a $p $rss" >>"$run/rss.txt"
		done
		sleep 5
	done
}

# ------------------------------------------------------------------- run

t0=$(date +%s)
mkdir -p "$run/batches"
: >"$run/acked-norfolk.txt"
: >"$run/acked-suffolk.txt"
: >"$run/transfers.txt"
: >"$run/stops.txt"
start_gw norfolk
start_gw suffolk
log "gateways up: norfolk ${url[norfolk]} (pid ${gwpid[norfolk]}), suffolk ${url[suffolk]} (pid ${gwpid[suffolk]})"
grep -h 'event=privileges-dropped' "$run/norfolk.log" | head -1 | sed 's/^/        /'
# The records the GET bursts read (BENCH-000000..199).
"$bench" --name preload --url "${url[norfolk]}" \
    --cert "$pki/norfolk/agency-probation.crt" \
    --key "$pki/norfolk/agency-probation.key" --cacert "$pki/root.crt" \
    --mode put --ids 200 --connections 4 --duration 2 >"$run/preload.out" 2>&1

push_worker & workers+=($!)
get_worker & workers+=($!)
transfer_worker & workers+=($!)
rss_worker & workers+=($!)

mid=$((duration / 2))
next_hup=10
next_restart=45
killed=0
hups=0
restarts=0
while :; do
	sleep 1
	now=$(( $(date +%s) - t0 ))
	[ "$now" -ge "$duration" ] && break
	if [ "$now" -ge "$next_restart" ]; then
		log "SIGTERM restart of suffolk"
		stop_gw suffolk
		start_gw suffolk
		restarts=$((restarts + 1))
		next_restart=$((next_restart + 45))
	fi
	if [ "$killed" -eq 0 ] && [ "$now" -ge "$mid" ]; then
		log "kill -9 norfolk"
		kill9_gw norfolk
		start_gw norfolk
		killed=1
		log "norfolk restarted (pid ${gwpid[norfolk]})"
	fi
	# After the restarts, so that no SIGHUP goes to a process about to be
	# stopped before it could log its reload.
	if [ "$now" -ge "$next_hup" ]; then
		for a in norfolk suffolk; do
			kill -HUP "${gwpid[$a]}" 2>/dev/null && hups=$((hups + 1))
		done
		next_hup=$((next_hup + 10))
	fi
done
log "load stops"
touch "$run/stop"
for p in "${workers[@]}"; do wait "$p" 2>/dev/null; done
workers=()
sleep 5	# the HUPs sent last are logged

# ----------------------------------------------------------------- checks

fail=0
check() {	# check NAME OK(0/1) DETAIL
	if [ "$2" -eq 0 ]; then
		printf '  ok    %-34s %s\n' "$1" "$3"
	else
		printf '  FAIL  %-34s %s\n' "$1" "$3"
		fail=1
	fi
}

# Every transfer answered 202 reaches "delivered" (suffolk was restarted
# every 45 s: allow the delivery backoff to run out).
log "waiting for the transfers to be delivered"
awk '{print $1}' "$run/transfers.txt" >"$run/pending.txt"
deadline=$(( $(date +%s) + 240 ))
while [ -s "$run/pending.txt" ] && [ "$(date +%s)" -lt "$deadline" ]; do
	: >"$run/pending.next"
	while read -r tid; do
		if ! "$visorctl" transfer --status "$tid" --gateway "${url[norfolk]}" \
		    --cert "$pki/norfolk/agency-police.crt" 2>/dev/null |
		    grep -q '^status *delivered'; then
			echo "$tid" >>"$run/pending.next"
		fi
	done <"$run/pending.txt"
	mv "$run/pending.next" "$run/pending.txt"
	[ -s "$run/pending.txt" ] && sleep 3
done
undelivered=$(wc -l <"$run/pending.txt")
sleep 2	# a checkpoint covers the last entries

for a in norfolk suffolk; do
	"$visorctl" audit verify --gateway "${url[$a]}" --cert "$pki/$a/auditor.crt" \
	    --state "$run/$a-audit.checkpoint" >"$run/verify-$a.txt" 2>&1
	echo $? >"$run/verify-$a.rc"
	"$visorctl" audit export "$run/bundle-$a.json" --gateway "${url[$a]}" \
	    --cert "$pki/$a/auditor.crt" >"$run/export-$a.txt" 2>&1
	echo $? >"$run/export-$a.rc"
done

# Read back a sample of the acknowledged records through the policy.
readback_fail=0
readback_n=0
for a in norfolk suffolk; do
	for id in $(shuf -n 20 "$run/acked-$a.txt" 2>/dev/null); do
		readback_n=$((readback_n + 1))
		"$visorctl" get "$id" --gateway "${url[$a]}" \
		    --cert "$pki/$a/agency-police.crt" --actor PC-SOAK \
		    --purpose risk-management --justification "soak read-back" \
		    >/dev/null 2>>"$run/readback.err" || readback_fail=$((readback_fail + 1))
	done
done

stop_gw norfolk
stop_gw suffolk
gwpid=()

python3 - "$run" "$warmup" >"$run/checks.txt" <<'PY'
import base64, collections, json, sys
run, warmup = sys.argv[1], int(sys.argv[2])

def entries(area):
    with open(f"{run}/bundle-{area}.json") as f:
        b = json.load(f)
    return [json.loads(base64.b64decode(e["data"])) for e in b["entries"]]

def lines(path):
    try:
        with open(path) as f:
            return [l.split() for l in f if l.strip()]
    except FileNotFoundError:
        return []

out = {}
for area in ("norfolk", "suffolk"):
    es = entries(area)
    ops = collections.Counter(e.get("op") for e in es)
    collects = collections.Counter(e.get("record") for e in es
                                   if e.get("op") == "collect")
    writes = collections.Counter(e.get("record") for e in es
                                 if e.get("op") in ("collect", "alter"))
    acked = [l[0] for l in lines(f"{run}/acked-{area}.txt")]
    missing = [i for i in acked if writes[i] == 0]
    dup = [i for i in acked if collects[i] > 1]
    out[area] = dict(entries=len(es), ops=dict(ops), acked=len(acked),
                     missing=missing[:10], n_missing=len(missing),
                     dup=dup[:10], n_dup=len(dup))
    if area == "suffolk":
        tin = collections.Counter(e.get("transfer") for e in es
                                  if e.get("op") == "transfer-in")
        tids = [l[0] for l in lines(f"{run}/transfers.txt")]
        out["transfers"] = dict(
            accepted=len(tids),
            not_once=[t for t in tids if tin[t] != 1][:10],
            n_not_once=sum(1 for t in tids if tin[t] != 1),
            transfer_in=sum(tin.values()))

# RSS, on RssAnon (column 4; VmRSS, column 3, is reported beside it).  The
# first third of the run is the warm-up: the writer's 64 MiB page cache and
# the record cache fill as the log grows, and the peer, restarted every 45 s, refills it at
# each start.  "first" is the peak of the middle third, "last" the peak of
# the last third: peaks, because a sample taken just after a restart is low
# by nature.  The longest-lived process of each gateway is also checked on
# its own: its last sample against its first after its own warm-up.
rss = collections.defaultdict(list)
for t, area, pid, vm, anon, fil in lines(f"{run}/rss.txt"):
    rss[area].append((int(t), int(pid), int(anon), int(vm), int(fil)))
end = max((x[0] for s in rss.values() for x in s), default=0)
for area, s in rss.items():
    w1 = [x for x in s if end / 3 <= x[0] < 2 * end / 3] or s
    w2 = [x for x in s if x[0] >= 2 * end / 3] or s
    inst = collections.defaultdict(list)
    for x in s:
        inst[x[1]].append(x)
    peaks = [max(x[2] for x in xs) for _, xs in
             sorted(inst.items(), key=lambda kv: kv[1][0][0])]
    pid, xs = max(inst.items(), key=lambda kv: kv[1][-1][0] - kv[1][0][0])
    life = xs[-1][0] - xs[0][0]
    w = [x for x in xs if x[0] - xs[0][0] >= warmup] or xs
    out["rss_" + area] = dict(
        samples=len(s), instances=len(inst),
        first_kb=max(x[2] for x in w1), last_kb=max(x[2] for x in w2),
        max_kb=max(x[2] for x in s), start_kb=s[0][2], end_kb=s[-1][2],
        vm_first_kb=max(x[3] for x in w1), vm_last_kb=max(x[3] for x in w2),
        vm_max_kb=max(x[3] for x in s), file_max_kb=max(x[4] for x in s),
        peaks=peaks,
        longest=dict(pid=pid, seconds=life, first_kb=w[0][2],
                     last_kb=w[-1][2], max_kb=max(x[2] for x in xs),
                     # meaningful only for a process that outlived two
                     # warm-ups (the peer restarted every 45 s does not)
                     checked=life >= 2 * warmup,
                     ok=life < 2 * warmup or w[-1][2] <= 1.5 * w[0][2]))
json.dump(out, sys.stdout, indent=1)
PY
[ $? -eq 0 ] || { cat "$run/checks.txt"; die "the audit-log checks did not run"; }
J() { python3 -c "import json,sys; d=json.load(open('$run/checks.txt')); print(eval(sys.argv[1]))" "$1"; }

hup_ok=$(cat "$run/norfolk.log" "$run/suffolk.log" | grep -c 'event=reloaded')
hup_bad=$(cat "$run/norfolk.log" "$run/suffolk.log" | grep -c 'event=reload-refused')
stops_bad=$(grep -vc 'rc=0$' "$run/stops.txt")
stops_n=$(wc -l <"$run/stops.txt")
batches_acked=$(( ( $(wc -l <"$run/acked-norfolk.txt") + $(wc -l <"$run/acked-suffolk.txt") ) / batch_size ))
batches_unacked=$(cat "$run/unacked-batches.txt" 2>/dev/null | wc -l)
push_retries=$(cat "$run/push-retries.txt" 2>/dev/null | wc -l)
transfers_refused=$(cat "$run/transfers-refused.txt" 2>/dev/null | wc -l)
gets=$(awk '$1=="RESULT" && $2=="get" {n += $3 * 2} END {printf "%d", n}' "$run/get.out")
get_errors=$(awk '$1=="RESULT" && $2=="get_errors" {n += $3} END {printf "%d", n}' "$run/get.out")
get_bursts=$(grep -c '^RESULT get ' "$run/get.out")

{
echo
echo "soak: ${duration} s, two gateways ($(grep -h 'event=privileges-dropped' "$run/norfolk.log" | head -1 | sed 's/.*user=\([^ ]*\).*/running as \1/'))"
echo "  load: $batches_acked push batches of $batch_size acknowledged ($push_retries push retries while a gateway was down, $batches_unacked batches never acknowledged),"
echo "        ~$gets GETs in $get_bursts bursts ($get_errors errors, mostly during restarts), $(J "d['transfers']['accepted']") transfers accepted (202), $transfers_refused refused while norfolk was down"
echo "  faults: $hups SIGHUPs sent, $restarts SIGTERM restarts of suffolk, 1 kill -9 of norfolk"
echo "  audit: norfolk $(J "d['norfolk']['entries']") entries $(J "d['norfolk']['ops']"), suffolk $(J "d['suffolk']['entries']") entries $(J "d['suffolk']['ops']")"
for a in norfolk suffolk; do
	echo "  rss $a ($(J "d['rss_$a']['samples']") samples, $(J "d['rss_$a']['instances']") processes): anonymous $(J "d['rss_$a']['start_kb']") KiB at start, peak of the middle third $(J "d['rss_$a']['first_kb']"), of the last third $(J "d['rss_$a']['last_kb']"), max $(J "d['rss_$a']['max_kb']"), last sample $(J "d['rss_$a']['end_kb']");"
	echo "        VmRSS peak of the middle third $(J "d['rss_$a']['vm_first_kb']") KiB, of the last third $(J "d['rss_$a']['vm_last_kb']"), max $(J "d['rss_$a']['vm_max_kb']") (of which file-backed at most $(J "d['rss_$a']['file_max_kb']"));"
	echo "        peak per process, in start order: $(J "' '.join(str(k) for k in d['rss_$a']['peaks'])") KiB;"
	echo "        longest-lived process: $(J "d['rss_$a']['longest']['seconds']") s, anonymous $(J "d['rss_$a']['longest']['first_kb']") -> $(J "d['rss_$a']['longest']['last_kb']") KiB after its warm-up of ${warmup} s (max $(J "d['rss_$a']['longest']['max_kb']"))$(J "'' if d['rss_$a']['longest']['checked'] else ': too short to check'")"
done
echo
for a in norfolk suffolk; do
	check "acknowledged pushes in $a's log" "$([ "$(J "d['$a']['n_missing']")" -eq 0 ] && echo 0 || echo 1)" \
	    "$(J "d['$a']['acked']") records, $(J "d['$a']['n_missing']") missing $(J "d['$a']['missing']")"
	check "each collected exactly once ($a)" "$([ "$(J "d['$a']['n_dup']")" -eq 0 ] && echo 0 || echo 1)" \
	    "$(J "d['$a']['n_dup']") with more than one collect $(J "d['$a']['dup']")"
done
check "acknowledged records read back" "$([ "$readback_fail" -eq 0 ] && echo 0 || echo 1)" \
    "$((readback_n - readback_fail))/$readback_n sampled GETs answered"
check "every 202 transfer delivered" "$([ "$undelivered" -eq 0 ] && echo 0 || echo 1)" \
    "$undelivered of $(J "d['transfers']['accepted']") not delivered"
check "exactly one transfer-in per transfer" "$([ "$(J "d['transfers']['n_not_once']")" -eq 0 ] && echo 0 || echo 1)" \
    "$(J "d['transfers']['transfer_in']") transfer-in entries; $(J "d['transfers']['n_not_once']") transfers not exactly once $(J "d['transfers']['not_once']")"
for a in norfolk suffolk; do
	check "audit verify $a" "$([ "$(cat "$run/verify-$a.rc")" -eq 0 ] && [ "$(cat "$run/export-$a.rc")" -eq 0 ] && echo 0 || echo 1)" \
	    "$(tail -1 "$run/verify-$a.txt" | tr -d '\r' | cut -c1-90)"
done
check "every SIGHUP reloaded" "$([ "$hup_bad" -eq 0 ] && [ "$hup_ok" -ge "$hups" ] && echo 0 || echo 1)" \
    "$hup_ok reloaded, $hup_bad refused, $hups sent"
check "every SIGTERM stop exited 0" "$([ "$stops_bad" -eq 0 ] && echo 0 || echo 1)" \
    "$stops_n stops, $stops_bad failed"
for a in norfolk suffolk; do
	check "rss flat ($a)" "$(python3 -c "import json; d=json.load(open('$run/checks.txt'))['rss_$a']; print(0 if d['last_kb'] <= 1.5 * d['first_kb'] and d['longest']['ok'] else 1)")" \
	    "anonymous RSS: last third <= 1.5 x middle third; longest process likewise"
done
echo
if [ "$fail" -eq 0 ]; then echo "soak: PASSED"; else echo "soak: FAILED"; fi
} | tee "$run/summary.txt"
grep -q '^soak: PASSED' "$run/summary.txt"
