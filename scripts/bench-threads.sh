#!/bin/sh
# Where a gateway's CPU goes, by thread: a fresh quickstart gateway under one
# load of build/bench/bench_http (32 connections, or BENCH_CONNECTIONS, on
# two generator threads),
# and the CPU each of its threads (workers, store writer, checkpointer,
# outbox) spent per request, read from /proc/<pid>/task/*/stat before and
# after; with the store's jobs and group commits from /metrics.
#
#   scripts/bench-threads.sh [MODE] [SECONDS]
#
# MODE: get (filtered, audited GETs of 1,000 preloaded records), absent
# (GETs of ids nobody holds: the audited 404), health, put (new records),
# put-over (PUTs over the preloaded records).  Not part of make bench: a
# diagnostic for docs/PERFORMANCE.md, one run per call.
set -eu
mode=${1:-absent}
secs=${2:-5}
conns=${BENCH_CONNECTIONS:-32}
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/bin"
bench="$top/build/bench"
run=$(mktemp -d /tmp/bench-threads.XXXXXX)
# Run as root, the gateway drops to its own account, which must reach the
# files (quickstart warns otherwise).
chmod 755 "$run"
gwpid=""
cleanup() {
	[ -n "$gwpid" ] && kill "$gwpid" 2>/dev/null && wait "$gwpid" 2>/dev/null
	rm -rf "$run"
}
trap cleanup EXIT INT TERM

base=$(python3 -c 'import random; print(random.randrange(20000, 30000, 2))')
"$bin/visorctl" quickstart "$run/q" --areas norfolk,suffolk --base-port "$base" >/dev/null
# One client identity makes ~15,000 requests a second here, far past
# limits.identity_requests_per_second's default (500): a limit it never
# meets keeps the check on every measured request without refusing any.
"$(dirname "$0")"/unlimit-rate.py "$run"/q/*/gateway.json
pki="$run/q/pki"
url="https://127.0.0.1:$base"
metrics="http://127.0.0.1:$((base + 1000))/metrics"
hb() {
	"$bench/bench_http" --cert "$pki/norfolk/agency-police.crt" \
	    --key "$pki/norfolk/agency-police.key" --cacert "$pki/root.crt" \
	    --threads 2 "$@"
}
"$bin/visor-gw" --config "$run/q/norfolk/gateway.json" 2> "$run/gw.log" &
gwpid=$!
i=0
until hb --name probe --url "$url" --mode static --path /v1/health \
    --connections 1 --duration 0.1 >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "visor-gw did not start" >&2; cat "$run/gw.log" >&2; exit 1; }
	sleep 0.1
done
hb --name preload --url "$url" --mode put --ids 1000 --connections 32 \
    --duration 3 >/dev/null

# CPU ticks per thread name, summed over threads of one name.
snap() {
	for t in /proc/"$gwpid"/task/*; do
		printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
	done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}
counter() {
	curl -s "$metrics" | awk -v n="$1" '$1 == n {print $2}'
}
case $mode in
get) args="--mode get --ids 1000" ;;
absent) args="--mode absent --ids 1000" ;;
health) args="--mode static --path /v1/health" ;;
put) args="--mode put --ids 1000000" ;;
put-over) args="--mode put --ids 1000" ;;
*) echo "usage: $0 [get|absent|health|put|put-over] [seconds]" >&2; exit 2 ;;
esac
snap > "$run/t0"
j0=$(counter visor_store_jobs_total); c0=$(counter visor_store_commits_total)
# shellcheck disable=SC2086
hb --name run --url "$url" $args --connections "$conns" --duration "$secs" \
    --pid "$gwpid" > "$run/out"
snap > "$run/t1"
j1=$(counter visor_store_jobs_total); c1=$(counter visor_store_commits_total)
grep -E '^RESULT run(_p50|_p99|_server_cpu|_loadgen_cpu)? ' "$run/out"
n=$(awk '$2 == "run" {print $3}' "$run/out")
hz=$(getconf CLK_TCK)
join "$run/t0" "$run/t1" | awk -v n="$n" -v s="$secs" -v hz="$hz" \
    '{printf "THREAD %s %.1f us/request\n", $1, ($3 - $2) * 1e6 / hz / (n * s)}'
awk -v j="$((j1 - j0))" -v c="$((c1 - c0))" \
    'BEGIN {if (c > 0) printf "STORE %d jobs in %d group commits, %.1f per commit\n", j, c, j / c}'
