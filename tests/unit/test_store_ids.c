/*
 * gateway/store_ids: never "absent" for an id that was added, also while
 * another thread adds; "absent" for most ids never added (the filter is
 * worth asking); sized up for a large store; NULL answers "may exist".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gateway/store_ids.h"

#define ADDED 200000
#define PROBED 100000

static void
id_of(char *id, size_t len, const char *prefix, unsigned k)
{
	snprintf(id, len, "%s-%06u", prefix, k);
}

static void
test_no_false_absent(void **state)
{
	store_ids_t *f = store_ids_new(0);
	char id[32];
	unsigned k, absent = 0;

	(void)state;
	assert_non_null(f);
	for (k = 0; k < ADDED; k++) {
		id_of(id, sizeof(id), "NFK", k);
		store_ids_add(f, id);
	}
	for (k = 0; k < ADDED; k++) {
		id_of(id, sizeof(id), "NFK", k);
		assert_int_equal(store_ids_maybe(f, id), 1);
	}
	assert_int_equal(store_ids_absent(f), 0);
	/* Ids never added: at 200,000 ids in the smallest filter (2^23
	 * bits), the false positive rate is about 0.02%; allow 1%. */
	for (k = 0; k < PROBED; k++) {
		id_of(id, sizeof(id), "SFK", k);
		if (!store_ids_maybe(f, id))
			absent++;
	}
	assert_true(absent > PROBED - PROBED / 100);
	assert_int_equal(store_ids_absent(f), absent);
	store_ids_free(f);
}

static void
test_sized_for_expected(void **state)
{
	/* Sized for 1,500,000 ids at open, twice that added: still nearly
	 * always "absent" for the rest.  A filter kept at the smallest size
	 * would be nearly full and answer "may exist" for about half. */
	store_ids_t *f = store_ids_new(1500000), *small = store_ids_new(0);
	char id[32];
	unsigned k, absent = 0, small_absent = 0;

	(void)state;
	assert_non_null(f);
	assert_non_null(small);
	for (k = 0; k < 3000000; k++) {
		id_of(id, sizeof(id), "NFK", k);
		store_ids_add(f, id);
		store_ids_add(small, id);
	}
	for (k = 0; k < PROBED; k++) {
		id_of(id, sizeof(id), "SFK", k);
		absent += !store_ids_maybe(f, id);
		small_absent += !store_ids_maybe(small, id);
	}
	assert_true(absent > PROBED * 98 / 100);
	assert_true(absent > small_absent + PROBED / 4);
	store_ids_free(f);
	store_ids_free(small);
}

static void
test_null(void **state)
{
	(void)state;
	assert_int_equal(store_ids_maybe(NULL, "NFK-1"), 1);
	assert_int_equal(store_ids_absent(NULL), 0);
	store_ids_add(NULL, "NFK-1");
	store_ids_free(NULL);
}

/* One thread adds ids in order and publishes how far it got; readers check
 * that every id up to what was published reads "may exist". */
typedef struct {
	store_ids_t *f;
	unsigned published;	/* atomic */
	int failed;		/* atomic */
} race_t;

static void *
adder(void *arg)
{
	race_t *r = arg;
	char id[32];
	unsigned k;

	for (k = 1; k <= ADDED; k++) {
		id_of(id, sizeof(id), "NFK", k);
		store_ids_add(r->f, id);
		__atomic_store_n(&r->published, k, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void *
reader(void *arg)
{
	race_t *r = arg;
	char id[32];
	unsigned k, upto;

	do {
		upto = __atomic_load_n(&r->published, __ATOMIC_ACQUIRE);
		for (k = upto; k > 0 && k + 64 > upto; k--) {
			id_of(id, sizeof(id), "NFK", k);
			if (!store_ids_maybe(r->f, id))
				__atomic_store_n(&r->failed, 1, __ATOMIC_RELAXED);
		}
	} while (upto < ADDED);
	return NULL;
}

static void
test_threads(void **state)
{
	race_t r;
	pthread_t a, b[2];
	int i;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.f = store_ids_new(0);
	assert_non_null(r.f);
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&b[i], NULL, reader, &r), 0);
	assert_int_equal(pthread_create(&a, NULL, adder, &r), 0);
	pthread_join(a, NULL);
	for (i = 0; i < 2; i++)
		pthread_join(b[i], NULL);
	assert_int_equal(r.failed, 0);
	store_ids_free(r.f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_false_absent),
		cmocka_unit_test(test_sized_for_expected),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
