#!/usr/bin/env bash
# make demo: the end-to-end demonstration of SPEC section 11.  Two areas
# (Norfolk and Suffolk) on this machine, a few hundred synthetic records,
# what two agencies see of one record, a transfer with its signed receipt,
# and the audit logs checked.  Everything it starts is stopped on exit.
# All data is synthetic (visorctl gen).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${BUILD:-build}}
bin="$top/$build/bin"
run="$top/demo-run"
visorctl="$bin/visorctl"
started=$(date +%s)
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

n=0
step() {
	n=$((n + 1))
	printf '\n\033[1m%d. %s\033[0m\n' "$n" "$1"
}
say() {
	printf '   %s\n' "$*"
}
die() {
	printf '\ndemo: %s\n' "$*" >&2
	exit 1
}
pretty() {
	if command -v jq >/dev/null 2>&1; then
		jq .
	elif command -v python3 >/dev/null 2>&1; then
		python3 -m json.tool
	else
		cat
		echo
	fi
}
indent() {
	sed 's/^/     /'
}

# A base port with base..base+1 and their metrics ports (+1000) free, all
# below the kernel's ephemeral range (32768-60999): a port in that range can
# be the local end of some outgoing connection, which nothing listens on but
# which still makes the gateway's bind fail ("cannot bind"), as a demo after
# make test once did.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
free_base_port() {
	local try p
	for try in $(seq 1 100); do
		p=$((20000 + RANDOM % 10000))
		if ! port_in_use "$p" && ! port_in_use $((p + 1)) &&
		    ! port_in_use $((p + 1000)) && ! port_in_use $((p + 1001)); then
			echo "$p"
			return 0
		fi
	done
	return 1
}

wait_listening() {
	local log=$1 i
	for i in $(seq 1 200); do
		grep -q 'event=listening' "$log" 2>/dev/null && return 0
		grep -q 'event=start-failed' "$log" 2>/dev/null && break
		sleep 0.05
	done
	die "the gateway did not start; its log: $log"
}

[ -x "$visorctl" ] && [ -x "$bin/visor-gw" ] || die "build first: make"

printf '\033[1mvisor-gw demonstration\033[0m: two areas share a nominal record under the\n'
printf 'MAPPA policy, transfer it when the person moves, and prove it in the audit logs.\n'

step "Create a local PKI and two gateway configurations (visorctl quickstart)"
rm -rf "$run"
mkdir -p "$run"
base=$(free_base_port) || die "no free ports"
"$visorctl" quickstart "$run" --areas norfolk,suffolk --base-port "$base" |
    indent
nfk="https://127.0.0.1:$base"
sfk="https://127.0.0.1:$((base + 1))"
pki="$run/pki"

step "Start the Norfolk and Suffolk gateways (logs in demo-run/*.log)"
"$bin/visor-gw" --config "$run/norfolk/gateway.json" 2>"$run/norfolk.log" &
pids+=($!)
"$bin/visor-gw" --config "$run/suffolk/gateway.json" 2>"$run/suffolk.log" &
pids+=($!)
wait_listening "$run/norfolk.log"
wait_listening "$run/suffolk.log"
say "Norfolk at $nfk, Suffolk at $sfk (mutual TLS 1.3, every party has a certificate)"

step "Norfolk probation pushes 300 synthetic records (visorctl gen | visorctl push)"
"$visorctl" gen --count 300 --area norfolk --seed 7 >"$run/records.jsonl"
"$visorctl" push --gateway "$nfk" --cert "$pki/norfolk/agency-probation.crt" \
    --actor PRB-0042 --purpose risk-management --jsonl "$run/records.jsonl" 2>&1 |
    tail -n 3 | indent
# The first level 3 record of the generated set (id is the first member).
rec=$(grep -m1 '"level":3,' "$run/records.jsonl" |
    sed 's/^{"id":"\([A-Z0-9-]*\)".*/\1/')
[ -n "$rec" ] || die "no level 3 record in the generated set"
say "every write is in Norfolk's signed audit log; record $rec is a MAPPA level 3 case"

step "Norfolk police read $rec (purpose risk-management)"
"$visorctl" get "$rec" --gateway "$nfk" --cert "$pki/norfolk/agency-police.crt" \
    --actor PC-1234 --purpose risk-management \
    --justification "MAPPA level 3 review" >"$run/police.json"
pretty <"$run/police.json" | indent
say "Police see every group except health."

step "Norfolk housing read the same record (purpose accommodation)"
"$visorctl" get "$rec" --gateway "$nfk" --cert "$pki/norfolk/agency-housing.crt" \
    --actor HSG-77 --purpose accommodation \
    --justification "approved premises placement" >"$run/housing.json"
pretty <"$run/housing.json" | indent
grep -m1 "\"id\":\"$rec\"" "$run/records.jsonl" >"$run/record-full.json"
withheld=$("$visorctl" policy explain "$run/norfolk/policy.json" \
    --as urn:visor:norfolk:agency:housing --purpose accommodation \
    "$run/record-full.json" 2>&1 | sed -n 's/^withheld: //p')
say "Housing got names, year of birth, addresses, risk level, people at risk,"
say "licence conditions and order prohibitions. Withheld by policy rule read-housing:"
echo "$withheld" | fold -s -w 72 | indent

step "The person moves: Norfolk police transfer $rec to Suffolk"
"$visorctl" transfer "$rec" --to suffolk --gateway "$nfk" \
    --cert "$pki/norfolk/agency-police.crt" --actor PC-1234 \
    --justification "offender moved to Ipswich; MAPPA level 3" --wait 30 \
    >"$run/transfer.txt" || { cat "$run/transfer.txt"; die "the transfer was not delivered"; }
tid=$(head -n 1 "$run/transfer.txt")
tail -n +2 "$run/transfer.txt" | indent
say "Suffolk signed the receipt with its gateway key; Norfolk and visorctl both checked it."

step "What Suffolk now holds (Suffolk police read $rec)"
"$visorctl" get "$rec" --gateway "$sfk" --cert "$pki/suffolk/agency-police.crt" \
    --actor SPC-501 --purpose risk-management \
    --justification "new MAPPA level 3 case" >"$run/suffolk.json"
grep -q '"managing_area":"suffolk"' "$run/suffolk.json" ||
    die "Suffolk's copy is not managed by Suffolk"
if grep -q '"health"' "$run/suffolk.json"; then
	die "health reached Suffolk"
fi
if grep -q '"police-only"' "$run/suffolk.json"; then
	die "police-only intelligence reached Suffolk"
fi
say "managing_area is now suffolk; health and police-only intelligence never left Norfolk:"
say "$(tr ',' '\n' <"$run/suffolk.json" | grep -c '"handling":"shareable"') shareable intelligence item(s) arrived, 0 police-only, no health."

step "Auditors check both audit logs against the areas' verifier keys"
# Each gateway signs a checkpoint within 1 s of new entries; wait for it so
# the check covers everything above.
sleep 1.2
if "$visorctl" --help | grep -q '^  audit '; then
	for area in norfolk suffolk; do
		url=$nfk
		[ "$area" = suffolk ] && url=$sfk
		say "$area:"
		"$visorctl" audit verify --gateway "$url" \
		    --cert "$pki/$area/auditor.crt" \
		    --state "$run/$area-audit.checkpoint" 2>&1 | indent ||
		    die "the $area audit log does not verify"
	done
	# Suffolk's entry for the transfer keeps Norfolk's signature over the
	# bytes it received: with Norfolk's gateway certificate, Suffolk's
	# auditor can show who sent them.
	idx=$("$visorctl" audit search --op transfer-in --gateway "$sfk" \
	    --cert "$pki/suffolk/auditor.crt" \
	    --state "$run/suffolk-audit.checkpoint" 2>/dev/null |
	    awk -F '\t' 'NR == 1 {print $1}')
	[ -n "$idx" ] || die "Suffolk's log holds no transfer-in entry"
	say "suffolk, the transfer received (entry $idx), against Norfolk's certificate:"
	if "$visorctl" audit prove --index "$idx" --gateway "$sfk" \
	    --cert "$pki/suffolk/auditor.crt" \
	    --state "$run/suffolk-audit.checkpoint" \
	    --sender-cert "$pki/norfolk/gateway.crt" >"$run/prove.json" \
	    2>"$run/prove.txt"; then
		indent <"$run/prove.txt"
	else
		cat "$run/prove.txt"
		die "Norfolk's signature in Suffolk's entry does not verify"
	fi
elif ! command -v curl >/dev/null 2>&1; then
	say "(visorctl audit is not in this build and curl is missing: skipped)"
else
	say "(visorctl audit is not in this build: showing the signed checkpoints)"
	for area in norfolk suffolk; do
		url=$nfk
		[ "$area" = suffolk ] && url=$sfk
		curl -sS --cacert "$pki/root.crt" --cert "$pki/$area/auditor.crt" \
		    --key "$pki/$area/auditor.key" "$url/v1/audit/checkpoint" |
		    indent
	done
fi

step "Summary"
elapsed=$(($(date +%s) - started))
say "300 synthetic records pushed to Norfolk; police and housing saw what policy allows."
say "Record $rec (MAPPA level 3) transferred to Suffolk as transfer $tid,"
say "delivered exactly once with a receipt signed by urn:visor:suffolk:gateway;"
say "Suffolk's audit log keeps Norfolk's signature of what it received."
say "Both audit logs are signed Merkle trees; every collection, read and transfer is in them."
say "Files: demo-run/ (PKI, configs, logs). Took ${elapsed} s. Stopping the gateways."
