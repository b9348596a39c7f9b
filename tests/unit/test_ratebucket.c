/*
 * gateway/ratebucket: a burst then the sustained rate per identity, other
 * identities untouched, refusals reported at most once a second with an
 * exact count, rate 0 lets everything through, a lowered burst takes
 * effect, a full table shares one overflow bucket and frees the buckets
 * that refilled, two threads share one bucket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gateway/ratebucket.h"

#define POLICE "urn:visor:norfolk:agency:police"
#define PROBATION "urn:visor:norfolk:agency:probation"

static int
take(ratebucket_t *rl, const char *uri, unsigned rate, unsigned burst,
    long long now, unsigned long *report)
{
	unsigned long r;
	int shared;

	return ratebucket_take(rl, uri, rate, burst, now, report ? report : &r,
	    &shared);
}

static void
test_burst_then_rate(void **state)
{
	ratebucket_t *rl = ratebucket_new(16);
	unsigned long report;
	int i, ok;

	(void)state;
	assert_non_null(rl);
	/* 10 at once, the 11th refused (reported at once: the first). */
	for (i = 0; i < 10; i++)
		assert_int_equal(take(rl, POLICE, 5, 10, 1000, NULL), 1);
	assert_int_equal(take(rl, POLICE, 5, 10, 1000, &report), 0);
	assert_int_equal(report, 1);
	/* Another identity has its own bucket. */
	for (i = 0; i < 10; i++)
		assert_int_equal(take(rl, PROBATION, 5, 10, 1000, NULL), 1);
	/* 5 a second: one token every 200 ms, no more. */
	assert_int_equal(take(rl, POLICE, 5, 10, 1199, &report), 0);
	assert_int_equal(report, 0);	/* within the second: counted */
	assert_int_equal(take(rl, POLICE, 5, 10, 1200, NULL), 1);
	assert_int_equal(take(rl, POLICE, 5, 10, 1200, NULL), 0);
	/* Ten seconds idle: full again, never more than the burst. */
	for (i = 0, ok = 0; i < 20; i++)
		ok += take(rl, POLICE, 5, 10, 11200, NULL);
	assert_int_equal(ok, 10);
	ratebucket_free(rl);
}

static unsigned long reported_n;
static char reported_uri[200];
static size_t reports;

static void
on_report(const char *uri, unsigned long refused, void *arg)
{
	(void)arg;
	snprintf(reported_uri, sizeof(reported_uri), "%s", uri);
	reported_n += refused;
	reports++;
}

static void
test_reports_once_a_second(void **state)
{
	ratebucket_t *rl = ratebucket_new(16);
	unsigned long report, total = 0;
	int i;

	(void)state;
	assert_non_null(rl);
	assert_int_equal(take(rl, POLICE, 1, 1, 0, NULL), 1);
	/* 1,000 refusals in 900 ms: one report now, the rest held. */
	for (i = 0; i < 1000; i++) {
		assert_int_equal(take(rl, POLICE, 1, 1, 100 + i * 9 / 10,
		    &report), 0);
		total += report;
	}
	assert_int_equal(total, 1);
	/* Nothing due before a second has passed since that report. */
	reported_n = 0;
	reports = 0;
	assert_int_equal(ratebucket_flush(rl, 1, 1, 1099, on_report, NULL), 0);
	/* Then the other 999, once. */
	assert_int_equal(ratebucket_flush(rl, 1, 1, 1100, on_report, NULL), 1);
	assert_int_equal(reported_n, 999);
	assert_string_equal(reported_uri, POLICE);
	assert_int_equal(ratebucket_flush(rl, 1, 1, 2100, on_report, NULL), 0);
	/* A refusal a second after the last report is reported at once. */
	assert_int_equal(take(rl, POLICE, 1, 1, 2100, NULL), 1);
	assert_int_equal(take(rl, POLICE, 1, 1, 2100, &report), 0);
	assert_int_equal(report, 1);
	ratebucket_free(rl);
}

static void
test_rate_zero_and_reload(void **state)
{
	ratebucket_t *rl = ratebucket_new(16);
	int i;

	(void)state;
	assert_non_null(rl);
	for (i = 0; i < 100000; i++)
		assert_int_equal(take(rl, POLICE, 0, 1, 0, NULL), 1);
	assert_int_equal(ratebucket_size(rl), 0);
	/* A full bucket of 100; a reload lowers the burst to 3. */
	assert_int_equal(take(rl, POLICE, 10, 100, 0, NULL), 1);
	for (i = 0; i < 3; i++)
		assert_int_equal(take(rl, POLICE, 10, 3, 0, NULL), 1);
	assert_int_equal(take(rl, POLICE, 10, 3, 0, NULL), 0);
	/* No limit any more: the table is emptied by the next flush. */
	assert_int_equal(take(rl, POLICE, 0, 3, 0, NULL), 1);
	(void)ratebucket_flush(rl, 0, 3, 5000, on_report, NULL);
	assert_int_equal(ratebucket_size(rl), 0);
	ratebucket_free(rl);
}

static void
test_full_table_shares_overflow(void **state)
{
	ratebucket_t *rl = ratebucket_new(4);
	unsigned long report;
	char uri[64];
	int i, shared;

	(void)state;
	assert_non_null(rl);
	for (i = 0; i < 4; i++) {
		snprintf(uri, sizeof(uri), "urn:visor:norfolk:agency:police:u%d", i);
		assert_int_equal(ratebucket_take(rl, uri, 1, 2, 0, &report,
		    &shared), 1);
		assert_int_equal(shared, 0);
	}
	assert_int_equal(ratebucket_size(rl), 4);
	/* Two newcomers share one bucket of 2. */
	assert_int_equal(ratebucket_take(rl, "urn:visor:norfolk:agency:x", 1, 2,
	    0, &report, &shared), 1);
	assert_int_equal(shared, 1);
	assert_int_equal(ratebucket_take(rl, "urn:visor:norfolk:agency:y", 1, 2,
	    0, &report, &shared), 1);
	assert_int_equal(ratebucket_take(rl, "urn:visor:norfolk:agency:x", 1, 2,
	    0, &report, &shared), 0);
	assert_int_equal(shared, 1);
	assert_int_equal(report, 1);
	/* Half a second on, nothing has refilled: nothing is freed. */
	reports = 0;
	(void)ratebucket_flush(rl, 1, 2, 500, on_report, NULL);
	assert_int_equal(ratebucket_size(rl), 4);
	/* Two seconds on, the four have refilled and are forgotten. */
	reported_n = 0;
	(void)ratebucket_flush(rl, 1, 2, 2000, on_report, NULL);
	assert_int_equal(ratebucket_size(rl), 0);
	assert_int_equal(ratebucket_take(rl, "urn:visor:norfolk:agency:x", 1, 2,
	    2000, &report, &shared), 1);
	assert_int_equal(shared, 0);
	/* A refusal in the overflow bucket is reported under its name. */
	for (i = 0; i < 3; i++) {
		snprintf(uri, sizeof(uri), "urn:visor:norfolk:agency:police:v%d", i);
		(void)ratebucket_take(rl, uri, 1, 2, 2000, &report, &shared);
	}
	/* Two pass, the third is reported at once, two more held. */
	for (i = 0; i < 5; i++)
		(void)ratebucket_take(rl, "urn:visor:norfolk:agency:z", 1, 2,
		    2000, &report, &shared);
	assert_int_equal(shared, 1);
	reported_n = 0;
	reports = 0;
	(void)ratebucket_flush(rl, 1, 2, 3100, on_report, NULL);
	assert_int_equal(reports, 1);
	assert_int_equal(reported_n, 2);
	assert_string_equal(reported_uri, RATEBUCKET_OVERFLOW_ID);
	ratebucket_free(rl);
}

struct worker {
	ratebucket_t *rl;
	int ok;
};

static void *
hammer(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < 50000; i++)
		w->ok += take(w->rl, POLICE, 1, 1000, 0, NULL);
	return NULL;
}

static void
test_threads_share_one_bucket(void **state)
{
	struct worker w[2];
	pthread_t t[2];
	ratebucket_t *rl = ratebucket_new(16);
	int i;

	(void)state;
	assert_non_null(rl);
	for (i = 0; i < 2; i++) {
		w[i].rl = rl;
		w[i].ok = 0;
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
	}
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(w[0].ok + w[1].ok, 1000);
	ratebucket_free(rl);
}

static void
test_bad_sizes(void **state)
{
	(void)state;
	assert_null(ratebucket_new(0));
	ratebucket_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_reports_once_a_second),
		cmocka_unit_test(test_rate_zero_and_reload),
		cmocka_unit_test(test_full_table_shares_overflow),
		cmocka_unit_test(test_threads_share_one_bucket),
		cmocka_unit_test(test_bad_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
