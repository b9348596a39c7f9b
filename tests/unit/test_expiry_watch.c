/*
 * expiry_watch: which expiry lines are due, and when (the lines
 * themselves go to stderr; the count written is checked here, and the
 * text by tests/integration/test_validity.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/expiry_watch.h"

#define NOW 2000000000L
#define DAY 86400L

static tls_expiry_t te[4];

static void
entry(size_t i, const char *role, long not_after)
{
	te[i].not_before = NOW - 300;
	snprintf(te[i].role, sizeof(te[i].role), "%s", role);
	snprintf(te[i].file, sizeof(te[i].file), "/etc/visor-gw/%s.pem", role);
	te[i].not_after = not_after;
}

/* Far from expiry: nothing.  Within the window: one warning, not repeated
 * until a day has passed; expired: one error at once. */
static void
test_states(void **state)
{
	expiry_watch_t w;
	long long mono = 1000;

	(void)state;
	memset(&w, 0, sizeof(w));
	entry(0, "gateway", NOW + 31 * DAY);
	entry(1, "crl", NOW + 8 * DAY);
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW, mono), 0);
	/* 30 days for a certificate, 7 for a CRL. */
	entry(0, "gateway", NOW + 30 * DAY);
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW, mono), 1);
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW + 60, mono + 60000), 0);
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW + DAY,
	    mono + EXPIRY_REPEAT_MS - 1), 1);	/* the CRL: 7 days left */
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW + DAY,
	    mono + EXPIRY_REPEAT_MS), 1);	/* the certificate, a day on */
	/* Its notAfter reached: expired at once, then daily. */
	assert_int_equal(expiry_watch_check(&w, 1, te, 1, NOW + 30 * DAY,
	    mono + EXPIRY_REPEAT_MS + 1), 1);
	assert_int_equal(expiry_watch_check(&w, 1, te, 1, NOW + 30 * DAY + 5,
	    mono + EXPIRY_REPEAT_MS + 5000), 0);
}

/* A new generation (a reload) says everything due again, at once. */
static void
test_reload(void **state)
{
	expiry_watch_t w;

	(void)state;
	memset(&w, 0, sizeof(w));
	entry(0, "gateway", NOW + 10);
	entry(1, "ca", NOW + 3 * DAY);
	entry(2, "crl", NOW - 1);
	entry(3, "root", -1);	/* unreadable: no date, no line */
	assert_int_equal(expiry_watch_check(&w, 1, te, 4, NOW, 5), 3);
	assert_int_equal(expiry_watch_check(&w, 1, te, 4, NOW, 6), 0);
	assert_int_equal(expiry_watch_check(&w, 2, te, 4, NOW, 7), 3);
	/* Renewed in the new generation: quiet. */
	entry(0, "gateway", NOW + 365 * DAY);
	entry(1, "ca", NOW + 365 * DAY);
	entry(2, "crl", NOW + 30 * DAY);
	assert_int_equal(expiry_watch_check(&w, 3, te, 4, NOW, 8), 0);
}

/* The clock set back behind a loaded CRL's lastUpdate (or a certificate's
 * notBefore): said at once, once a day after, and again when it is
 * forward again past it and the file is in another state. */
static void
test_clock_behind(void **state)
{
	expiry_watch_t w;

	(void)state;
	memset(&w, 0, sizeof(w));
	entry(0, "crl", NOW + 30 * DAY);
	entry(1, "gateway", NOW + 365 * DAY);
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW, 1), 0);
	/* An hour back: both before their start. */
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW - 3600, 2), 2);
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW - 3599, 3), 0);
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW - 3000,
	    3 + EXPIRY_REPEAT_MS), 2);
	/* Forward again: quiet (current). */
	assert_int_equal(expiry_watch_check(&w, 1, te, 2, NOW, 4 + EXPIRY_REPEAT_MS), 0);
	/* No start date known: no such line. */
	te[0].not_before = -1;
	assert_int_equal(expiry_watch_check(&w, 2, te, 1, NOW - 3600, 5), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_clock_behind),
	};

	return cmocka_run_group_tests_name("expiry_watch", tests, NULL, NULL);
}
