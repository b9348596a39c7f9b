/*
 * Fuzz target: the small decoders that see outside bytes and had no target
 * of their own.  Every input goes through all of them:
 *
 *   identity_parse (crypto/identity.c): the URI in a peer certificate's
 *     subjectAltName, in configuration and in policy.  Whatever is accepted
 *     must be exactly the input (no byte ignored, no NUL inside), with an
 *     area that is a valid label, and must parse again to the same identity;
 *   b64_decode (util/b64.c): signatures, proofs, note signatures, audit
 *     leaves.  Decoding is strict, so whatever decodes must encode back to
 *     the very input; and any bytes must encode and decode back to themselves;
 *   rfc3339_canonical (util/rfc3339.c): the since/until bounds of
 *     GET /v1/audit/search.  What it accepts it writes as a 24-character
 *     canonical time that it accepts again unchanged;
 *   rfc3339_epoch_ms (util/rfc3339.c): a peer transfer's sent_at.  It
 *     takes every time (not a date alone) rfc3339_canonical takes, and
 *     gives the canonical form the same instant, the one the C library's
 *     timegm gives (a :60 leap second as the next second).  What it takes
 *     beyond those (an offset, a fraction past milliseconds) is a time to
 *     the second rfc3339_canonical takes, then those, and lies within a
 *     day of that time read as UTC.
 *
 * The If-Match and audit range parsers are static in the routes: fuzz_http
 * reaches them through real requests.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/identity.h"
#include "gateway/store_int.h"
#include "util/rfc3339.h"
#include "util/b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 4096

static void
check_identity(const uint8_t *data, size_t size)
{
	identity_t id, again;
	char err[128];

	if (identity_parse((const char *)data, size, &id, err, sizeof(err)) < 0)
		return;
	if (strlen(id.uri) != size || memcmp(id.uri, data, size) != 0 ||
	    !identity_valid_label(id.area, strlen(id.area)))
		abort();
	if (id.kind == IDENTITY_AGENCY && !identity_is_agency_type(id.type))
		abort();
	if (identity_parse(id.uri, strlen(id.uri), &again, err, sizeof(err)) < 0 ||
	    again.kind != id.kind || strcmp(again.area, id.area) != 0 ||
	    strcmp(again.type, id.type) != 0 || strcmp(again.unit, id.unit) != 0 ||
	    strcmp(again.uri, id.uri) != 0)
		abort();
}

static void
check_b64(const uint8_t *data, size_t size)
{
	static unsigned char dec[MAX_INPUT];
	static char enc[B64_ENCODED_SIZE(MAX_INPUT)];
	long n;

	n = b64_decode((const char *)data, size, dec, sizeof(dec));
	if (n >= 0) {
		if ((size_t)n > sizeof(dec) ||
		    b64_encode(dec, (size_t)n, enc) != size ||
		    memcmp(enc, data, size) != 0)
			abort();
	}
	/* The other way round: any bytes survive a round trip. */
	if (b64_encode(data, size, enc) != B64_ENCODED_SIZE(size) - 1 ||
	    (n = b64_decode(enc, strlen(enc), dec, sizeof(dec))) < 0 ||
	    (size_t)n != size || memcmp(dec, data, size) != 0)
		abort();
}

/* The n digits at s (a canonical time's fields are digits). */
static int
num(const char *s, int n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

/* What the C library makes of a canonical time: ms since the epoch. */
static long long
libc_epoch_ms(const char *c)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = num(c, 4) - 1900;
	tm.tm_mon = num(c + 5, 2) - 1;
	tm.tm_mday = num(c + 8, 2);
	tm.tm_hour = num(c + 11, 2);
	tm.tm_min = num(c + 14, 2);
	tm.tm_sec = num(c + 17, 2);	/* 60 normalises to the next minute */
	return (long long)timegm(&tm) * 1000LL + num(c + 20, 3);
}

static void
check_time(const uint8_t *data, size_t size)
{
	char in[64], out[25], again[25];
	long long ms, ms2;
	int canon, epoch;

	if (size >= sizeof(in))
		return;
	memcpy(in, data, size);
	in[size] = '\0';
	canon = rfc3339_canonical(in, out) == 0;
	epoch = rfc3339_epoch_ms(in, &ms) == 0;
	/* sent_at: a time, never a date alone; NUL ends the string */
	if (canon && strlen(in) > 10 && !epoch)
		abort();
	if (epoch && !canon) {
		char base[21];

		/* the date and time to the second, then a fraction of more
		 * than three digits or an offset of at most 23:59 */
		if (strlen(in) < 20)
			abort();
		memcpy(base, in, 19);
		memcpy(base + 19, "Z", 2);
		if (rfc3339_canonical(base, out) < 0 ||
		    (in[19] != '.' && in[19] != '+' && in[19] != '-') ||
		    llabs(ms - libc_epoch_ms(out)) >= 86400000LL)
			abort();
		return;
	}
	if (epoch != (canon && strlen(in) > 10))
		abort();
	if (!canon)
		return;
	if (strlen(out) != 24 || out[10] != 'T' || out[23] != 'Z' ||
	    rfc3339_canonical(out, again) < 0 ||
	    memcmp(out, again, sizeof(out)) != 0)
		abort();
	if (rfc3339_epoch_ms(out, &ms2) < 0 || (epoch && ms2 != ms) ||
	    ms2 != libc_epoch_ms(out))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MAX_INPUT)
		return 0;
	check_identity(data, size);
	check_b64(data, size);
	check_time(data, size);
	return 0;
}
