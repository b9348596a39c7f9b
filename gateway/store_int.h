/*
 * store_int: what the store's own files (store.c: lifecycle, writer and
 * checkpoints; store_read.c: readers; store_writelog.c: the records check
 * at start) share.  Not for other modules.
 */
#ifndef GATEWAY_STORE_INT_H
#define GATEWAY_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "crypto/aead.h"
#include "gateway/store.h"

#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_MAX_ID 79		/* record and transfer ids */
#define STORE_MAX_AREA 39
#define STORE_MAX_PURPOSE 39
#define STORE_MAX_ACTOR 159
#define STORE_MAX_KEY 255		/* idempotency scope and key */
#define STORE_MAX_VALUE ((size_t)16 << 20)	/* any stored blob */
#define STORE_NODE_MIN_LEVEL 4	/* merkle_nodes holds levels >= this */

/* Path of store.db. */
const char *store_int_db_path(const store_t *s);

/* The record cache (store_cache.h) readers consult first. */
struct store_cache *store_int_cache(const store_t *s);

/* The filter of record ids that may exist (store_ids.h), or NULL (a store
 * opened by store_check). */
struct store_ids *store_int_ids(const store_t *s);

/* The data key (for readers' decryption). */
const uint8_t *store_int_data_key(const store_t *s);

/* Build the record content associated data id || 0x00 || decimal version into
 * aad (room for STORE_MAX_ID + 22 bytes).  Returns its length, 0 if the id
 * is too long. */
size_t store_int_record_aad(const char *id, uint64_t version, char *aad,
    size_t aadlen);

/* Build "<label>" 0x00 <a> [0x00 <b>] into aad; length or 0 if too long. */
size_t store_int_label_aad(const char *label, const char *a, const char *b,
    char *aad, size_t aadlen);

/* The AAD of an idempotent answer: "idem2" 0x00 scope 0x00 key 0x00, then
 * the request hash and the HTTP status (4 bytes, big-endian), so that the
 * clear columns the replay decides on are bound to the sealed answer.
 * (Rows written before had "idem" 0x00 scope 0x00 key.)  Its length, or 0
 * if aadlen is too small. */
#define STORE_IDEM_AAD_MAX (2 * STORE_MAX_KEY + 48)
size_t store_int_idem_aad(const char *scope, const char *key,
    const uint8_t hash[32], int status, char *aad, size_t aadlen);

/* Append to body the idempotent answer sealed in p (n bytes) of the row
 * (scope, key) with that request hash and status: bound to all four, or,
 * for a row written before they were bound, to scope and key alone.  0, or
 * -1 if it does not open (the row edited at rest, or damaged), body as it
 * was. */
int store_int_idem_open(const store_t *s, const char *scope, const char *key,
    const uint8_t hash[32], int status, const void *p, size_t n, buf_t *body);

/* Open a connection to path with flags and the store's usual settings (busy
 * timeout), through the VFS named vfs (NULL: the default).  NULL with err. */
sqlite3 *store_int_connect(const char *path, int flags, const char *vfs,
    char *err, size_t errlen);

/* Prepare sql into *cache if not done yet.  0 or -1 (message in err). */
int store_int_prepare(sqlite3 *db, sqlite3_stmt **cache, const char *sql,
    char *err, size_t errlen);

/* Hash of the complete subtree (level, index) from the tables (level 0 from
 * the leaves).  ctx is a struct store_node_reader.  A merkle_node_fn. */
struct store_node_reader {
	sqlite3 *db;
	sqlite3_stmt **leaf_hash;	/* cached statements */
	sqlite3_stmt **node_hash;
};
int store_int_node(void *ctx, unsigned level, uint64_t index,
    merkle_hash_t out);

/*
 * The start-up check that the records table agrees with the audit log
 * (store_writelog.c): every record's version and erased state must be
 * those its last write in the log left, and every record the log wrote
 * must be there, and no other.
 *
 * new: signed_size is how many leaves a verified checkpoint covers; writes
 * past it must also move their record forward.  NULL if memory is short.
 * add: feed every leaf, in index order, once its hash is checked.  0, or -1
 * if memory is short; a write that goes backwards is kept for check.
 * check: compare with db's records table (db_path names it in messages).
 * 0 if they agree, else -1 with a message naming the record, the version
 * in the table and the version the log says.
 * free: NULL does nothing.
 */
typedef struct store_writelog store_writelog_t;

store_writelog_t *store_writelog_new(uint64_t signed_size);
int store_writelog_add(store_writelog_t *w, uint64_t idx, const void *leaf,
    size_t len);
int store_writelog_check(store_writelog_t *w, sqlite3 *db,
    const char *db_path, char *err, size_t errlen);
void store_writelog_free(store_writelog_t *w);

#endif
