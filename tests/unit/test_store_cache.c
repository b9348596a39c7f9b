/*
 * gateway/store_cache: hits return what was put; a fill after a miss is
 * refused once the shard changed (a put or an eviction), so a slow reader
 * can never put back an older version; entries are evicted least recently
 * used first within the budget; and, with threads, no reader ever sees a
 * version older than one whose publication had finished before its lookup.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "gateway/store_cache.h"
#include "util/buf.h"

static store_cache_meta_t
meta_of(int state, uint64_t version)
{
	store_cache_meta_t m;

	memset(&m, 0, sizeof(m));
	m.state = state;
	m.version = version;
	snprintf(m.managing_area, sizeof(m.managing_area), "norfolk");
	return m;
}

static void
test_put_get(void **state)
{
	store_cache_t *c = store_cache_new(1 << 20);
	store_cache_meta_t m = meta_of(STORE_CACHE_LIVE, 3), got;
	buf_t b = BUF_INIT;
	uint64_t t;

	(void)state;
	assert_non_null(c);
	assert_int_equal(store_cache_get(c, "REC-1", &got, &b, &t), 0);
	store_cache_put(c, "REC-1", &m, "sealed-bytes", 12);
	assert_int_equal(store_cache_get(c, "REC-1", &got, &b, &t), 1);
	assert_int_equal(got.state, STORE_CACHE_LIVE);
	assert_int_equal(got.version, 3);
	assert_string_equal(got.managing_area, "norfolk");
	assert_int_equal(b.len, 12);
	assert_memory_equal(b.data, "sealed-bytes", 12);
	buf_free(&b);
	/* Replaced by a later put; an erasure carries no content. */
	m = meta_of(STORE_CACHE_ERASED, 4);
	store_cache_put(c, "REC-1", &m, NULL, 0);
	assert_int_equal(store_cache_get(c, "REC-1", &got, &b, &t), 1);
	assert_int_equal(got.state, STORE_CACHE_ERASED);
	assert_int_equal(got.version, 4);
	assert_int_equal(b.len, 0);
	/* Ids the cache cannot hold are misses, never errors. */
	{
		char longid[200];

		memset(longid, 'A', sizeof(longid) - 1);
		longid[sizeof(longid) - 1] = '\0';
		store_cache_put(c, longid, &m, NULL, 0);
		assert_int_equal(store_cache_get(c, longid, &got, &b, &t), 0);
	}
	store_cache_free(c);
	store_cache_free(NULL);
}

static void
test_fill_after_put_refused(void **state)
{
	store_cache_t *c = store_cache_new(1 << 20);
	store_cache_meta_t v1 = meta_of(STORE_CACHE_LIVE, 1);
	store_cache_meta_t v2 = meta_of(STORE_CACHE_LIVE, 2), got;
	store_cache_meta_t absent = meta_of(STORE_CACHE_ABSENT, 0);
	buf_t b = BUF_INIT;
	uint64_t t, t2;

	(void)state;
	/* A reader misses, reads v1 from the database; meanwhile the writer
	 * commits and publishes v2, which the cache then evicts or not: the
	 * late fill of v1 must not land. */
	assert_int_equal(store_cache_get(c, "R", &got, &b, &t), 0);
	store_cache_put(c, "R", &v2, "two", 3);
	store_cache_fill(c, t, "R", &v1, "one", 3);
	assert_int_equal(store_cache_get(c, "R", &got, &b, &t2), 1);
	assert_int_equal(got.version, 2);
	buf_free(&b);
	/* With nothing in between, a fill lands (absent records too). */
	assert_int_equal(store_cache_get(c, "S", &got, &b, &t), 0);
	store_cache_fill(c, t, "S", &absent, NULL, 0);
	assert_int_equal(store_cache_get(c, "S", &got, &b, &t), 1);
	assert_int_equal(got.state, STORE_CACHE_ABSENT);
	store_cache_free(c);
	/* No cache (0 bytes): everything misses, nothing breaks. */
	c = store_cache_new(0);
	assert_non_null(c);
	store_cache_put(c, "R", &v2, "two", 3);
	assert_int_equal(store_cache_get(c, "R", &got, &b, &t), 0);
	store_cache_fill(c, t, "R", &v2, "two", 3);
	assert_int_equal(store_cache_get(c, "R", &got, &b, &t), 0);
	store_cache_free(c);
}

static void
test_eviction_lru_and_budget(void **state)
{
	/* 64 shards of 4 KiB: a handful of 1 KiB entries per shard. */
	store_cache_t *c = store_cache_new(64 * 4096);
	store_cache_meta_t m = meta_of(STORE_CACHE_LIVE, 1), got;
	store_cache_stats_t st;
	char blob[1000], id[32];
	buf_t b = BUF_INIT;
	uint64_t t, t_old;
	int i, hits = 0;

	(void)state;
	memset(blob, 'x', sizeof(blob));
	/* A miss on an id, then enough puts to evict in every shard: the
	 * eviction changed the shard, so the old ticket's fill is refused. */
	assert_int_equal(store_cache_get(c, "LATE", &got, &b, &t_old), 0);
	for (i = 0; i < 4000; i++) {
		snprintf(id, sizeof(id), "ID-%d", i);
		store_cache_put(c, id, &m, blob, sizeof(blob));
		/* Keep ID-0 recently used. */
		assert_int_equal(store_cache_get(c, "ID-0", &got, &b, &t), 1);
		buf_reset(&b);
	}
	store_cache_fill(c, t_old, "LATE", &m, blob, sizeof(blob));
	assert_int_equal(store_cache_get(c, "LATE", &got, &b, &t), 0);
	store_cache_stats(c, &st);
	assert_true(st.bytes <= 64 * 4096);
	assert_true(st.evictions > 3000);
	assert_true(st.entries > 0);
	for (i = 3990; i < 4000; i++) {
		snprintf(id, sizeof(id), "ID-%d", i);
		hits += store_cache_get(c, id, &got, &b, &t) == 1;
		buf_reset(&b);
	}
	assert_true(hits >= 5);		/* the newest mostly stay */
	assert_int_equal(store_cache_get(c, "ID-0", &got, &b, &t), 1);
	buf_free(&b);
	store_cache_free(c);
}

/* Threads: a writer publishes increasing versions of a few ids (the
 * "database" first, then the cache, as the store's writer does); readers
 * look up, fill from the database on a miss, and check that they never
 * see a version older than one published before their lookup. */
#define NIDS 16
#define VERSIONS 4000

static store_cache_t *tc;
static atomic_ullong committed[NIDS], published[NIDS];
static atomic_int done_writing;
static atomic_int stale;

static void *
writer(void *arg)
{
	uint64_t v;
	int k;
	char id[16];

	(void)arg;
	for (v = 1; v <= VERSIONS; v++)
		for (k = 0; k < NIDS; k++) {
			store_cache_meta_t m = meta_of(STORE_CACHE_LIVE, v);

			snprintf(id, sizeof(id), "T-%d", k);
			atomic_store(&committed[k], v);
			store_cache_put(tc, id, &m, &v, sizeof(v));
			atomic_store(&published[k], v);
		}
	atomic_store(&done_writing, 1);
	return NULL;
}

static void *
reader(void *arg)
{
	store_cache_meta_t m;
	buf_t b = BUF_INIT;
	uint64_t t, floor, v;
	unsigned k = (unsigned)(uintptr_t)arg;
	char id[16];

	while (!atomic_load(&done_writing)) {
		k = (k * 1103515245u + 12345u) % NIDS;
		snprintf(id, sizeof(id), "T-%u", k);
		floor = atomic_load(&published[k]);
		buf_reset(&b);
		if (store_cache_get(tc, id, &m, &b, &t) == 1) {
			if (m.version < floor)
				atomic_store(&stale, 1);
			continue;
		}
		/* The database read: at least what was committed. */
		v = atomic_load(&committed[k]);
		if (v < floor)
			atomic_store(&stale, 1);
		m = meta_of(STORE_CACHE_LIVE, v);
		store_cache_fill(tc, t, id, &m, &v, sizeof(v));
	}
	buf_free(&b);
	return NULL;
}

static void
test_threads_never_stale(void **state)
{
	pthread_t w, r[3];
	int i;

	(void)state;
	/* A small budget, so evictions race with fills too. */
	tc = store_cache_new(64 * 600);
	assert_non_null(tc);
	assert_int_equal(pthread_create(&w, NULL, writer, NULL), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&r[i], NULL, reader,
		    (void *)(uintptr_t)(i + 1)), 0);
	pthread_join(w, NULL);
	for (i = 0; i < 3; i++)
		pthread_join(r[i], NULL);
	assert_int_equal(atomic_load(&stale), 0);
	store_cache_free(tc);
}

int main(void);

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_fill_after_put_refused),
		cmocka_unit_test(test_eviction_lru_and_budget),
		cmocka_unit_test(test_threads_never_stale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
