#!/bin/sh
# Run every test binary, print each one's cmocka summary, and fail if any failed.
build=$1; shift
failed=0; ran=0
for t in "$@"; do
	ran=$((ran + 1))
	echo "== $t"
	# VALGRIND (make valgrind) wraps each test binary.
	if ! ${VALGRIND:-} "$t"; then
		echo "!! FAILED: $t"
		failed=$((failed + 1))
	fi
done
echo "test binaries: $((ran - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
