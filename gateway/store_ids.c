/* store_ids: a Bloom filter of the record ids that may exist.  See
 * store_ids.h. */
#include "gateway/store_ids.h"

#include <stdlib.h>
#include <string.h>

#define IDS_MIN_BITS ((uint64_t)1 << 23)
#define IDS_MAX_BITS ((uint64_t)1 << 36)	/* 8 GiB: never reached */
#define IDS_BITS_PER_ID 10
#define IDS_PROBES 7		/* near optimal at 10 bits per id: ~1% */

struct store_ids {
	uint64_t *words;
	uint64_t mask;		/* bits - 1; bits is a power of two */
	uint64_t absent;	/* store_ids_maybe answers of 0 (atomic) */
};

store_ids_t *
store_ids_new(uint64_t expected)
{
	store_ids_t *f;
	uint64_t bits = IDS_MIN_BITS;

	while (bits < IDS_MAX_BITS && expected > bits / IDS_BITS_PER_ID / 2)
		bits <<= 1;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	if ((f->words = calloc((size_t)(bits / 64), sizeof(uint64_t))) == NULL) {
		free(f);
		return NULL;
	}
	f->mask = bits - 1;
	return f;
}

void
store_ids_free(store_ids_t *f)
{
	if (f == NULL)
		return;
	free(f->words);
	free(f);
}

/* Two independent 64-bit hashes of id (FNV-1a, then a splitmix64 finish of
 * it for the second); the probes are h1 + i * h2 (double hashing).  Not
 * keyed: ids that collide on purpose only make look-ups go to SQLite. */
static void
hash_id(const char *id, uint64_t *h1, uint64_t *h2)
{
	uint64_t h = 0xcbf29ce484222325ULL, z;
	const unsigned char *p;

	for (p = (const unsigned char *)id; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	z = h + 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	*h1 = h;
	*h2 = z | 1;
}

void
store_ids_add(store_ids_t *f, const char *id)
{
	uint64_t h1, h2, b;
	int i;

	if (f == NULL || id == NULL)
		return;
	hash_id(id, &h1, &h2);
	for (i = 0; i < IDS_PROBES; i++) {
		b = (h1 + (uint64_t)i * h2) & f->mask;
		__atomic_fetch_or(&f->words[b >> 6], (uint64_t)1 << (b & 63),
		    __ATOMIC_RELEASE);
	}
}

int
store_ids_maybe(store_ids_t *f, const char *id)
{
	uint64_t h1, h2, b;
	int i;

	if (f == NULL || id == NULL)
		return 1;
	hash_id(id, &h1, &h2);
	for (i = 0; i < IDS_PROBES; i++) {
		b = (h1 + (uint64_t)i * h2) & f->mask;
		if ((__atomic_load_n(&f->words[b >> 6], __ATOMIC_ACQUIRE) &
		    ((uint64_t)1 << (b & 63))) == 0) {
			__atomic_fetch_add(&f->absent, 1, __ATOMIC_RELAXED);
			return 0;
		}
	}
	return 1;
}

uint64_t
store_ids_absent(const store_ids_t *f)
{
	return f == NULL ? 0 : __atomic_load_n(&f->absent, __ATOMIC_RELAXED);
}
