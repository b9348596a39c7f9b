/*
 * store_cache: see store_cache.h.  Sharded hash tables, each shard with
 * its own lock, least-recently-used list and byte budget.  Record ids are
 * chosen by clients, so the hash is seeded from the random generator at
 * creation: nobody can aim ids at one chain.
 */
#include "gateway/store_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#define SHARDS 64
#define ID_MAX 80
#define MIN_BUCKETS 64

typedef struct entry entry_t;
struct entry {
	entry_t *chain;		/* next in the bucket */
	entry_t *prev, *next;	/* LRU: head is the most recent */
	uint64_t hash;
	store_cache_meta_t meta;
	size_t cost, len;
	char id[ID_MAX];
	unsigned char sealed[];
};

typedef struct {
	pthread_mutex_t mu;
	uint64_t gen;		/* bumped by every put and eviction */
	entry_t **buckets;
	size_t nbuckets, count, bytes, budget;
	entry_t lru;		/* sentinel */
	uint64_t hits, misses, fills, evictions;
} shard_t;

struct store_cache {
	uint64_t seed;
	shard_t shard[SHARDS];
};

static uint64_t
hash_id(const store_cache_t *c, const char *id)
{
	uint64_t h = c->seed ^ 0xcbf29ce484222325ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	/* Final avalanche (splitmix64), so both the shard (high bits) and the
	 * bucket (low bits) depend on every byte. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static shard_t *
shard_of(store_cache_t *c, uint64_t h)
{
	return &c->shard[h >> 58];
}

static void
lru_unlink(entry_t *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void
lru_push_front(shard_t *s, entry_t *e)
{
	e->next = s->lru.next;
	e->prev = &s->lru;
	s->lru.next->prev = e;
	s->lru.next = e;
}

static entry_t **
find_slot(shard_t *s, uint64_t h, const char *id)
{
	entry_t **pp = &s->buckets[h & (s->nbuckets - 1)];

	while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->id, id) != 0))
		pp = &(*pp)->chain;
	return pp;
}

/* Remove e (found at *pp) from the shard and free it. */
static void
remove_at(shard_t *s, entry_t **pp)
{
	entry_t *e = *pp;

	*pp = e->chain;
	lru_unlink(e);
	s->count--;
	s->bytes -= e->cost;
	free(e);
}

static void
grow(shard_t *s)
{
	size_t n = s->nbuckets * 2, i;
	entry_t **nb, *e, *next;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < s->nbuckets; i++)
		for (e = s->buckets[i]; e != NULL; e = next) {
			next = e->chain;
			e->chain = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
}

static void
evict(shard_t *s)
{
	entry_t *e;

	while (s->bytes > s->budget && s->lru.prev != &s->lru) {
		e = s->lru.prev;
		remove_at(s, find_slot(s, e->hash, e->id));
		s->evictions++;
		s->gen++;
	}
}

store_cache_t *
store_cache_new(size_t max_bytes)
{
	store_cache_t *c;
	size_t i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1)
		c->seed = (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < SHARDS; i++) {
		shard_t *s = &c->shard[i];

		pthread_mutex_init(&s->mu, NULL);
		s->lru.next = s->lru.prev = &s->lru;
		s->budget = max_bytes / SHARDS;
		s->nbuckets = MIN_BUCKETS;
		if ((s->buckets = calloc(s->nbuckets, sizeof(*s->buckets))) ==
		    NULL) {
			store_cache_free(c);
			return NULL;
		}
	}
	return c;
}

void
store_cache_free(store_cache_t *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < SHARDS; i++) {
		shard_t *s = &c->shard[i];

		while (s->buckets != NULL && s->lru.next != &s->lru) {
			entry_t *e = s->lru.next;

			remove_at(s, find_slot(s, e->hash, e->id));
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->mu);
	}
	free(c);
}

int
store_cache_get(store_cache_t *c, const char *id, store_cache_meta_t *meta,
    buf_t *sealed, uint64_t *ticket)
{
	uint64_t h;
	shard_t *s;
	entry_t *e;
	int ret = 0;

	*ticket = 0;
	if (c == NULL || strlen(id) >= ID_MAX)
		return 0;
	h = hash_id(c, id);
	s = shard_of(c, h);
	pthread_mutex_lock(&s->mu);
	e = *find_slot(s, h, id);
	if (e == NULL) {
		s->misses++;
		*ticket = s->gen;
	} else {
		s->hits++;
		lru_unlink(e);
		lru_push_front(s, e);
		*meta = e->meta;
		ret = 1;
		if (e->len > 0 && buf_append(sealed, e->sealed, e->len) < 0)
			ret = -1;
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* Insert or replace id in s (locked).  On allocation failure any older
 * entry is removed, so the cache never answers with a stale version. */
static void
insert_locked(shard_t *s, uint64_t h, const char *id,
    const store_cache_meta_t *meta, const void *sealed, size_t len)
{
	entry_t **pp = find_slot(s, h, id), *e;
	size_t cost = sizeof(*e) + len;

	if (*pp != NULL)
		remove_at(s, pp);
	if (s->budget == 0 || cost > s->budget ||
	    (e = malloc(cost)) == NULL)
		return;
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->meta = *meta;
	e->cost = cost;
	e->len = len;
	memcpy(e->id, id, strlen(id) + 1);
	if (len > 0)
		memcpy(e->sealed, sealed, len);
	pp = &s->buckets[h & (s->nbuckets - 1)];
	e->chain = *pp;
	*pp = e;
	lru_push_front(s, e);
	s->count++;
	s->bytes += cost;
	evict(s);
	if (s->count > s->nbuckets)
		grow(s);
}

void
store_cache_fill(store_cache_t *c, uint64_t ticket, const char *id,
    const store_cache_meta_t *meta, const void *sealed, size_t len)
{
	uint64_t h;
	shard_t *s;

	if (c == NULL || strlen(id) >= ID_MAX)
		return;
	h = hash_id(c, id);
	s = shard_of(c, h);
	pthread_mutex_lock(&s->mu);
	/* Anything published or evicted here since the miss may be newer
	 * than what this reader saw: keep out. */
	if (s->gen == ticket && *find_slot(s, h, id) == NULL) {
		insert_locked(s, h, id, meta, sealed, len);
		s->fills++;
	}
	pthread_mutex_unlock(&s->mu);
}

void
store_cache_put(store_cache_t *c, const char *id,
    const store_cache_meta_t *meta, const void *sealed, size_t len)
{
	uint64_t h;
	shard_t *s;

	if (c == NULL || strlen(id) >= ID_MAX)
		return;
	h = hash_id(c, id);
	s = shard_of(c, h);
	pthread_mutex_lock(&s->mu);
	s->gen++;
	insert_locked(s, h, id, meta, sealed, len);
	pthread_mutex_unlock(&s->mu);
}

void
store_cache_stats(store_cache_t *c, store_cache_stats_t *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return;
	for (i = 0; i < SHARDS; i++) {
		shard_t *s = &c->shard[i];

		pthread_mutex_lock(&s->mu);
		out->hits += s->hits;
		out->misses += s->misses;
		out->fills += s->fills;
		out->evictions += s->evictions;
		out->bytes += s->bytes;
		out->entries += s->count;
		pthread_mutex_unlock(&s->mu);
	}
}
