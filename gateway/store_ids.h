/*
 * store_ids: which record ids may exist, as a Bloom filter over every id of
 * the records table.  Internal to the store (store.c fills it, store_read.c
 * asks it); not for other modules.
 *
 * Why: every PUT of a new record first looks its id up (create or alter,
 * If-Match), and the record cache cannot answer for an id it has never
 * seen, so each such PUT cost a SQLite look-up that finds nothing.  The
 * filter answers "certainly absent" for those without touching SQLite; "may
 * exist" sends the reader to the cache and the database as before.
 *
 * Never a false "absent": store_open adds every id in the table before the
 * writer starts, and the writer adds each id it writes after the commit and
 * before any request that wrote it is answered.  A reader racing with the
 * commit that creates an id may still be told "absent", as it would have
 * been had it read a moment earlier.  Ids are never removed (an erased
 * record keeps its row).
 *
 * Size: fixed at creation for the ids expected, 10 bits per id at twice the
 * count at open and at least 2^23 bits (1 MiB, ~840,000 ids at a 1% false
 * positive rate).  A store that grows well past that while running answers
 * "may exist" more often, and so goes to SQLite more often; it is sized
 * again at the next start.
 *
 * Threads: one writer adds, any number of readers ask; bits are set and
 * read with atomic operations, without locks.
 */
#ifndef GATEWAY_STORE_IDS_H
#define GATEWAY_STORE_IDS_H

#include <stdint.h>

typedef struct store_ids store_ids_t;

/* A filter sized for expected ids.  NULL if memory is short. */
store_ids_t *store_ids_new(uint64_t expected);

/* NULL does nothing. */
void store_ids_free(store_ids_t *f);

/* id may exist from now on. */
void store_ids_add(store_ids_t *f, const char *id);

/* 0: id certainly does not exist (counted, see store_ids_absent);
 * 1: it may. */
int store_ids_maybe(store_ids_t *f, const char *id);

/* How many store_ids_maybe calls answered 0. */
uint64_t store_ids_absent(const store_ids_t *f);

#endif
