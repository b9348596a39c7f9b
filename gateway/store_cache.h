/*
 * store_cache: the current version of recently used records, kept in memory
 * so that a read does not have to go to SQLite.  Internal to the store
 * (store.c writes it, store_read.c reads it); not for other modules.
 *
 * What is cached is what the database holds: the sealed content
 * (AES-256-GCM ciphertext), the version, the managing area and whether the
 * record is erased or absent.  Plaintext never enters the cache; a reader
 * decrypts each time, as it would after a database read.
 *
 * Consistency: the writer publishes every committed put and erasure
 * (store_cache_put) after the commit is durable and before the writing
 * request is answered.  A reader that misses and reads the database fills
 * the cache only if nothing was published or evicted in that record's
 * shard since its miss (the ticket), so a slow reader can never put back a
 * version older than one the writer published.  Every operation takes one
 * shard lock; shards are independent.
 *
 * Memory: entries are evicted least recently used first once the bytes
 * held pass the limit given at creation (spread evenly over the shards).
 */
#ifndef GATEWAY_STORE_CACHE_H
#define GATEWAY_STORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef struct store_cache store_cache_t;

/* A cached record state.  state: STORE_CACHE_LIVE (sealed filled),
 * STORE_CACHE_ERASED or STORE_CACHE_ABSENT (no such record). */
enum { STORE_CACHE_LIVE = 0, STORE_CACHE_ERASED, STORE_CACHE_ABSENT };

typedef struct {
	int state;
	uint64_t version;
	char managing_area[40];
} store_cache_meta_t;

/* A cache holding at most max_bytes (0: no cache; every lookup misses and
 * fills do nothing).  NULL if memory is short. */
store_cache_t *store_cache_new(size_t max_bytes);

/* Free every entry.  NULL does nothing. */
void store_cache_free(store_cache_t *c);

/* Look id up.  1 hit: meta filled, sealed content appended to sealed (for
 * LIVE).  0 miss: *ticket set for a later store_cache_fill.  -1: memory
 * short while copying (treat as a miss with no fill). */
int store_cache_get(store_cache_t *c, const char *id, store_cache_meta_t *meta,
    buf_t *sealed, uint64_t *ticket);

/* After a miss and a database read: cache what was read, unless the
 * record's shard changed since the ticket was issued.  sealed may be NULL
 * (for ERASED and ABSENT). */
void store_cache_fill(store_cache_t *c, uint64_t ticket, const char *id,
    const store_cache_meta_t *meta, const void *sealed, size_t len);

/* The writer, after a durable commit: id is now meta (and sealed).  Always
 * replaces what is cached.  If memory is short the entry is dropped (a
 * later read goes to the database); never leaves an older version. */
void store_cache_put(store_cache_t *c, const char *id,
    const store_cache_meta_t *meta, const void *sealed, size_t len);

typedef struct {
	uint64_t hits, misses, fills, evictions;
	size_t bytes, entries;
} store_cache_stats_t;

void store_cache_stats(store_cache_t *c, store_cache_stats_t *out);

#endif
