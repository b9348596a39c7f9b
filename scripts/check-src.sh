#!/bin/sh
# Reject the banned C functions (STYLE.md, after curl's checksrc): unbounded
# or unchecked string and number handling.
cd "$(dirname "$0")/.." || exit 2
hits=$(grep -nE '(^|[^_a-zA-Z0-9.>])(sprintf|vsprintf|strcpy|strcat|gets|strncpy|strncat|atoi|atol|atoll|strtok)[[:space:]]*\(' \
	$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.c' -o -name '*.h') 2>/dev/null | grep -v 'check-src: allow')
if [ -n "$hits" ]; then
	echo "check-src: banned functions used:" >&2
	echo "$hits" >&2
	exit 1
fi
echo "check-src: no banned functions"
