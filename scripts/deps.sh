#!/bin/sh
# Install what visor-gw needs on Debian 12, only when it is missing.
#   deps.sh build   -dev libraries (checked with pkg-config) and curl
#   deps.sh test    programs the tests call: curl, openssl, sqlite3, mandoc,
#                   python3 with cryptography (tests/indep/verify_bundle.py)
#   deps.sh bench   nginx, for the benchmark reference
#   deps.sh fuzz    clang with libFuzzer and the sanitizer runtimes
set -u
mode=${1:-build}
need=""
case "$mode" in
build)
	for pair in openssl:libssl-dev libcurl:libcurl4-openssl-dev libcjson:libcjson-dev \
	    cmocka:libcmocka-dev sqlite3:libsqlite3-dev libevent:libevent-dev \
	    libevent_openssl:libevent-dev libevent_pthreads:libevent-dev; do
		pc=${pair%%:*}; pkg=${pair#*:}
		pkg-config --exists "$pc" 2>/dev/null || need="$need $pkg"
	done
	command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
	command -v curl >/dev/null 2>&1 || need="$need curl"
	;;
test)
	command -v curl >/dev/null 2>&1 || need="$need curl"
	command -v openssl >/dev/null 2>&1 || need="$need openssl"
	command -v sqlite3 >/dev/null 2>&1 || need="$need sqlite3"
	command -v mandoc >/dev/null 2>&1 || need="$need mandoc"
	# tests/indep/verify_bundle.py (test_indep_verify): Ed25519 in Python
	python3 -c 'import cryptography.hazmat.primitives.asymmetric.ed25519' \
	    >/dev/null 2>&1 || need="$need python3-cryptography"
	;;
bench)
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need="nginx-light"
	;;
fuzz)
	command -v clang >/dev/null 2>&1 || need="clang"
	ls /usr/lib/llvm-14/lib/clang/14*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need="$need libclang-rt-14-dev"
	;;
valgrind)
	command -v valgrind >/dev/null 2>&1 || need="valgrind"
	;;
lint)
	command -v mandoc >/dev/null 2>&1 || need="mandoc"
	;;
*)
	echo "deps.sh: unknown mode $mode" >&2; exit 2 ;;
esac
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$need (run as root, or: apt-get install$need)" >&2
	exit 1
fi
echo "deps.sh: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 && apt-get install -y -qq $need >&2
