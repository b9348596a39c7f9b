/*
 * store readers: one read-only SQLite connection per reader (one per
 * thread), statements prepared once and cached.  Every length read from the
 * database is bounded before use.
 */
#include "gateway/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "crypto/aead.h"
#include "crypto/merkle.h"
#include "gateway/store_cache.h"
#include "gateway/store_ids.h"
#include "gateway/store_int.h"
#include "util/json.h"
#include "util/rfc3339.h"

enum {
	R_RECORD, R_HISTORY, R_ERASURES, R_VERSION, R_IDEM, R_TRANSFER, R_DUE, R_DUE_FOR, R_EXPIRED_FOR, R_STATS, R_INBOUND,
	R_SENT_TO,
	R_CKPT, R_LEAF, R_ENTRIES, R_TIME, R_WIT_GET, R_WIT_LIST, R_NSTMT
};

/* A transfer is due only once every transfer of the same record to the
 * same peer queued before it has left the queue: they reach the peer in
 * the order they were asked for.  Delivered each on its own backoff, an
 * update could overtake an earlier transfer waiting for its retry, and
 * that one, delivered after it, would replace the update at the peer
 * with older content.  Insertion order is the rowid's (outbox rows are
 * never deleted); the outbox_record index serves the lookup. */
#define OUTBOX_NO_EARLIER \
	" AND NOT EXISTS (SELECT 1 FROM outbox AS o2" \
	" WHERE o2.record_id = outbox.record_id" \
	" AND o2.to_area = outbox.to_area AND o2.status = 'queued'" \
	" AND o2.rowid < outbox.rowid)"

static const char *const reader_sql[R_NSTMT] = {
	[R_RECORD] = "SELECT r.version, r.category, r.level, r.managing_area,"
	    " r.erased, v.content FROM records r LEFT JOIN record_versions v"
	    " ON v.id = r.id AND v.version = r.version WHERE r.id = ?1",
	/* Newest first, so a page reads only its own rows (each row's page
	 * of the table holds its sealed content too). */
	[R_HISTORY] = "SELECT version, time, actor, op, changed"
	    " FROM record_versions WHERE id = ?1 AND version < ?2"
	    " ORDER BY version DESC LIMIT ?3",
	[R_ERASURES] = "SELECT version FROM record_versions"
	    " WHERE id = ?1 AND op = 'erase' ORDER BY version",
	[R_VERSION] = "SELECT content FROM record_versions"
	    " WHERE id = ?1 AND version = ?2",
	[R_IDEM] = "SELECT req_hash, status, body, record FROM idempotency"
	    " WHERE scope = ?1 AND key = ?2",
	[R_TRANSFER] = "SELECT transfer_id, record_id, to_area, purpose,"
	    " initiator, status, attempts, next_attempt_ms, deadline_ms,"
	    " created_ms, receipt, payload FROM outbox WHERE transfer_id = ?1",
	[R_DUE] = "SELECT transfer_id, record_id, to_area, purpose,"
	    " initiator, status, attempts, next_attempt_ms, deadline_ms,"
	    " created_ms, receipt, payload FROM outbox"
	    " WHERE status = 'queued' AND next_attempt_ms <= ?1"
	    OUTBOX_NO_EARLIER
	    " ORDER BY next_attempt_ms, created_ms LIMIT ?2",
	[R_DUE_FOR] = "SELECT transfer_id, record_id, to_area, purpose,"
	    " initiator, status, attempts, next_attempt_ms, deadline_ms,"
	    " created_ms, receipt, payload FROM outbox"
	    " WHERE status = 'queued' AND to_area = ?3"
	    " AND (next_attempt_ms <= ?1 OR next_attempt_ms > ?4)"
	    OUTBOX_NO_EARLIER
	    " ORDER BY next_attempt_ms, created_ms LIMIT ?2",
	[R_EXPIRED_FOR] = "SELECT transfer_id, record_id, to_area, purpose,"
	    " initiator, status, attempts, next_attempt_ms, deadline_ms,"
	    " created_ms, receipt, payload FROM outbox"
	    " WHERE status = 'queued' AND deadline_ms <= ?1 AND to_area = ?3"
	    " ORDER BY deadline_ms, created_ms LIMIT ?2",
	[R_STATS] = "SELECT to_area, count(*), min(created_ms) FROM outbox"
	    " WHERE status = 'queued' GROUP BY to_area ORDER BY to_area",
	[R_SENT_TO] = "SELECT 1 FROM outbox WHERE record_id = ?1 AND to_area = ?2"
	    " AND status = 'delivered' LIMIT 1",
	[R_INBOUND] = "SELECT digest, received_at, audit_index, receipt"
	    " FROM inbound WHERE from_area = ?1 AND transfer_id = ?2",
	[R_CKPT] = "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1",
	[R_WIT_GET] = "SELECT size, root, note, time FROM witnessed WHERE area = ?1",
	[R_WIT_LIST] = "SELECT area, size, note, time, refused_note, refused_time"
	    " FROM witnessed ORDER BY area",
	[R_LEAF] = "SELECT data FROM audit_leaves WHERE idx = ?1",
	[R_ENTRIES] = "SELECT idx, data FROM audit_leaves"
	    " WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
	[R_TIME] = "SELECT time FROM audit_leaves WHERE idx = ?1",
};

/* Search variants: one cached statement per combination of filters. */
#define Q_RECORD 1
#define Q_ACTOR 2
#define Q_OP 4
#define Q_SINCE 8
#define Q_UNTIL 16
#define Q_OP_RARE 32	/* op is not consult: the partial op index serves */
#define Q_NVARIANTS 64

struct store_reader {
	store_t *s;
	sqlite3 *db;
	sqlite3_stmt *st[R_NSTMT];
	sqlite3_stmt *search[Q_NVARIANTS];
	sqlite3_stmt *leaf_hash, *node_hash;
	int time_indexed;	/* a schema-1 log whose clock once went back */
};

store_reader_t *
store_reader_new(store_t *s, char *err, size_t errlen)
{
	store_reader_t *r;

	if (s == NULL || (r = calloc(1, sizeof(*r))) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "store reader: out of memory");
		return NULL;
	}
	r->s = s;
	r->db = store_int_connect(store_int_db_path(s), SQLITE_OPEN_READONLY,
	    NULL, err, errlen);
	if (r->db == NULL) {
		free(r);
		return NULL;
	}
	{
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM sqlite_master"
		    " WHERE type = 'index' AND name = 'audit_by_time'", -1, &st,
		    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			r->time_indexed = 1;
		sqlite3_finalize(st);
	}
	/* No mmap: in WAL mode a reader drops its whole mapping whenever the
	 * database changed since its last transaction, and every request
	 * commits an audit entry, so each read paid a munmap of the file and
	 * page faults to bring it back (a fifth of the gateway's CPU under a
	 * read load, by perf).  Records are read from the record cache
	 * (store_cache.h); what still comes here is rarer and reads a few
	 * pages with pread(2). */
	return r;
}

void
store_reader_free(store_reader_t *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < R_NSTMT; i++)
		sqlite3_finalize(r->st[i]);
	for (i = 0; i < Q_NVARIANTS; i++)
		sqlite3_finalize(r->search[i]);
	sqlite3_finalize(r->leaf_hash);
	sqlite3_finalize(r->node_hash);
	sqlite3_close(r->db);
	free(r);
}

static sqlite3_stmt *
stmt(store_reader_t *r, int which)
{
	if (store_int_prepare(r->db, &r->st[which], reader_sql[which], NULL,
	    0) < 0)
		return NULL;
	return r->st[which];
}

/* Bounded text column copy into a fixed field: -1 if absent or too long. */
static int
col_text(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (t == NULL || n < 0 || (size_t)n >= outlen)
		return -1;
	memcpy(out, t, (size_t)n);
	out[n] = '\0';
	return 0;
}

static int
col_blob(sqlite3_stmt *st, int col, buf_t *out)
{
	const void *p;
	int n;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return 0;
	p = sqlite3_column_blob(st, col);
	n = sqlite3_column_bytes(st, col);
	if (n < 0 || (size_t)n > STORE_MAX_VALUE || (n > 0 && p == NULL))
		return -1;
	return buf_append(out, p, (size_t)n);
}

static int
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) == SQLITE_OK ?
	    0 : -1;
}

/* Decrypt a record's sealed content (category, level, JSON) into out. */
static int
open_record(store_reader_t *r, const char *id, const void *ct, size_t n,
    store_record_t *out)
{
	char aad[STORE_MAX_ID + 24];
	size_t aadlen;
	buf_t *j = &out->json;

	/* Opened in place: the category and level bytes, then the JSON,
	 * moved down over them (one copy of the plaintext, not three). */
	aadlen = store_int_record_aad(id, out->version, aad, sizeof(aad));
	if (ct != NULL && n > 0 && n <= STORE_MAX_VALUE && aadlen != 0 &&
	    j->len == 0 &&
	    aead_open(store_int_data_key(r->s), aad, aadlen, ct, n, j) == 0 &&
	    j->len >= 2) {
		out->category = (unsigned char)j->data[0];
		out->level = (unsigned char)j->data[1];
		memmove(j->data, j->data + 2, j->len - 2);
		j->len -= 2;
		/* The two bytes left past the end repeat the last two of the
		 * JSON; buf_free wipes the whole buffer. */
		j->data[j->len] = '\0';
		return 0;
	}
	buf_free(j);
	return -1;
}

/* The clear columns of an R_RECORD row into out (version, managing_area,
 * erased; category and level 0, sealed with the content) and its sealed
 * content into *ct, *n (NULL, 0 for an erased record).  0 or -1. */
static int
record_row(sqlite3_stmt *st, store_record_t *out, const void **ct, int *n)
{
	sqlite3_int64 v = sqlite3_column_int64(st, 0);

	if (v <= 0 || col_text(st, 3, out->managing_area,
	    sizeof(out->managing_area)) < 0)
		return -1;
	out->version = (uint64_t)v;
	out->category = 0;
	out->level = 0;
	out->erased = sqlite3_column_int(st, 4) != 0;
	*ct = NULL;
	*n = 0;
	if (!out->erased) {
		*ct = sqlite3_column_blob(st, 5);
		*n = sqlite3_column_bytes(st, 5);
		if (*ct == NULL || *n <= 0 || (size_t)*n > STORE_MAX_VALUE)
			return -1;
	}
	return 0;
}

int
store_record_get(store_reader_t *r, const char *id, store_record_t *out)
{
	store_cache_t *cache = store_int_cache(r->s);
	store_cache_meta_t meta;
	buf_t sealed = BUF_INIT;
	sqlite3_stmt *st = NULL;
	const void *ct;
	uint64_t ticket = 0;
	int rc, n, fill, ret = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&out->json, 0);
	if (id == NULL || strlen(id) > STORE_MAX_ID)
		return -1;
	rc = store_cache_get(cache, id, &meta, &sealed, &ticket);
	if (rc == 1) {
		if (meta.state == STORE_CACHE_ABSENT)
			return 1;
		out->version = meta.version;
		memcpy(out->managing_area, meta.managing_area,
		    sizeof(out->managing_area));
		out->erased = meta.state == STORE_CACHE_ERASED;
		ret = out->erased ? 0 :
		    open_record(r, id, sealed.data, sealed.len, out);
		buf_free(&sealed);
		return ret;
	}
	buf_free(&sealed);
	/* A new id (every PUT that creates a record asks first): no need to
	 * go to SQLite to learn that it is not there. */
	if (!store_ids_maybe(store_int_ids(r->s), id))
		return 1;
	fill = rc == 0;
	if ((st = stmt(r, R_RECORD)) == NULL || bind_text(st, 1, id) < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		if (fill) {
			memset(&meta, 0, sizeof(meta));
			meta.state = STORE_CACHE_ABSENT;
			store_cache_fill(cache, ticket, id, &meta, NULL, 0);
		}
		ret = 1;
		goto out;
	}
	if (rc != SQLITE_ROW || record_row(st, out, &ct, &n) < 0 ||
	    (!out->erased && open_record(r, id, ct, (size_t)n, out) < 0))
		goto out;
	if (fill) {
		memset(&meta, 0, sizeof(meta));
		meta.state = out->erased ? STORE_CACHE_ERASED : STORE_CACHE_LIVE;
		meta.version = out->version;
		memcpy(meta.managing_area, out->managing_area,
		    sizeof(meta.managing_area));
		store_cache_fill(cache, ticket, id, &meta, ct, (size_t)n);
	}
	ret = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

int
store_record_get_clear(store_reader_t *r, const char *id, store_record_t *out,
    int *opens)
{
	sqlite3_stmt *st = NULL;
	const void *ct;
	int rc, n, ret = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&out->json, 0);
	*opens = 0;
	if (id == NULL || strlen(id) > STORE_MAX_ID)
		return -1;
	if ((st = stmt(r, R_RECORD)) == NULL || bind_text(st, 1, id) < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 1;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto out;
	/* A row whose content is missing or too long does not open. */
	if (record_row(st, out, &ct, &n) < 0) {
		if (out->version == 0)
			goto out;
	} else if (!out->erased) {
		*opens = open_record(r, id, ct, (size_t)n, out) == 0;
	}
	ret = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

int
store_record_history_page(store_reader_t *r, const char *id, uint64_t before,
    unsigned limit, buf_t *out)
{
	sqlite3_stmt *st;
	cJSON *arr = NULL, *item, *changed;
	const char *txt;
	char *printed = NULL;
	int rc, rows = 0, ret = -1;

	if (id == NULL || strlen(id) > STORE_MAX_ID || before > INT64_MAX)
		return -1;
	if ((st = stmt(r, R_HISTORY)) == NULL || bind_text(st, 1, id) < 0 ||
	    sqlite3_bind_int64(st, 2, before == 0 ? INT64_MAX :
	    (sqlite3_int64)before) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, limit == 0 ? -1 :
	    (sqlite3_int64)limit) != SQLITE_OK ||
	    (arr = cJSON_CreateArray()) == NULL)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((item = cJSON_CreateObject()) == NULL)
			goto out;
		/* Rows come newest first; the array is oldest first. */
		if (!cJSON_InsertItemInArray(arr, 0, item)) {
			cJSON_Delete(item);
			goto out;
		}
		if (cJSON_AddNumberToObject(item, "version",
		    (double)sqlite3_column_int64(st, 0)) == NULL ||
		    cJSON_AddStringToObject(item, "time",
		    (const char *)sqlite3_column_text(st, 1)) == NULL ||
		    cJSON_AddStringToObject(item, "actor",
		    (const char *)sqlite3_column_text(st, 2)) == NULL ||
		    cJSON_AddStringToObject(item, "op",
		    (const char *)sqlite3_column_text(st, 3)) == NULL)
			goto out;
		txt = (const char *)sqlite3_column_text(st, 4);
		if (txt != NULL) {
			changed = json_parse_strict(txt,
			    (size_t)sqlite3_column_bytes(st, 4), 4, NULL, 0);
			if (changed == NULL)
				goto out;
		} else if ((changed = cJSON_CreateArray()) == NULL) {
			goto out;
		}
		cJSON_AddItemToObject(item, "changed", changed);
		rows++;
	}
	if (rc != SQLITE_DONE)
		goto out;
	if (rows == 0) {
		ret = 1;
		goto out;
	}
	if ((printed = json_print(arr)) == NULL || buf_puts(out, printed) < 0)
		goto out;
	ret = 0;
out:
	free(printed);
	cJSON_Delete(arr);
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

int
store_record_erasures(store_reader_t *r, const char *id, int64_t **vers,
    size_t *n)
{
	sqlite3_stmt *st;
	int64_t *v = NULL, *nv;
	size_t cap = 0;
	int rc, ret = -1;

	*vers = NULL;
	*n = 0;
	if (id == NULL || strlen(id) > STORE_MAX_ID)
		return -1;
	if ((st = stmt(r, R_ERASURES)) == NULL || bind_text(st, 1, id) < 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				goto out;
			v = nv;
		}
		v[(*n)++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE)
		goto out;
	*vers = v;
	v = NULL;
	ret = 0;
out:
	free(v);
	if (ret < 0)
		*n = 0;
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

int
store_record_version_get(store_reader_t *r, const char *id, uint64_t version,
    store_record_t *out)
{
	sqlite3_stmt *st;
	const void *ct;
	int rc, n, ret = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&out->json, 0);
	if (id == NULL || strlen(id) > STORE_MAX_ID || version == 0 ||
	    version > INT64_MAX)
		return -1;
	if ((st = stmt(r, R_VERSION)) == NULL || bind_text(st, 1, id) < 0 ||
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)version) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 1;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto out;
	out->version = version;
	/* An erasure's version, and every version of an erased record,
	 * keep no content. */
	if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
		ret = 1;
		goto out;
	}
	ct = sqlite3_column_blob(st, 0);
	n = sqlite3_column_bytes(st, 0);
	if (ct == NULL || n <= 0 || (size_t)n > STORE_MAX_VALUE ||
	    open_record(r, id, ct, (size_t)n, out) < 0)
		goto out;
	ret = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

int
store_idem_get(store_reader_t *r, const char *scope, const char *key,
    uint8_t req_hash[32], int *http_status, buf_t *body)
{
	char record[STORE_MAX_ID + 1];

	return store_idem_get_record(r, scope, key, req_hash, http_status,
	    body, record, sizeof(record));
}

int
store_idem_get_record(store_reader_t *r, const char *scope, const char *key,
    uint8_t req_hash[32], int *http_status, buf_t *body, char *record,
    size_t record_len)
{
	sqlite3_stmt *st;
	const void *p;
	int rc, n, ret = -1;

	if (scope == NULL || key == NULL || strlen(scope) > STORE_MAX_KEY ||
	    strlen(key) > STORE_MAX_KEY || record == NULL || record_len == 0)
		return -1;
	record[0] = '\0';
	if ((st = stmt(r, R_IDEM)) == NULL || bind_text(st, 1, scope) < 0 ||
	    bind_text(st, 2, key) < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 1;
		goto out;
	}
	if (rc != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 32)
		goto out;
	memcpy(req_hash, sqlite3_column_blob(st, 0), 32);
	*http_status = sqlite3_column_int(st, 1);
	p = sqlite3_column_blob(st, 2);
	n = sqlite3_column_bytes(st, 2);
	/* The request hash and status are clear columns, bound to the
	 * answer by its AAD: edited at rest, the answer does not open. */
	if (n <= 0 || store_int_idem_open(r->s, scope, key, req_hash,
	    *http_status, p, (size_t)n, body) < 0)
		goto out;
	if (sqlite3_column_type(st, 3) == SQLITE_TEXT) {
		n = sqlite3_column_bytes(st, 3);
		if (n <= 0 || (size_t)n >= record_len)
			goto out;
		memcpy(record, sqlite3_column_text(st, 3), (size_t)n);
		record[n] = '\0';
	}
	ret = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

/*
 * The sealed payload binds only its transfer id; the row's other columns
 * (where it goes, which record, for what) are in the clear.  The worker
 * sends the payload to the peer the row names, so a row edited at rest
 * could send a record filtered for one area to another.  The payload says
 * the same things under its seal: they must agree, or the transfer is
 * treated as damaged (not sent; it fails at its deadline).
 */
static int
payload_matches_row(const store_transfer_t *t)
{
	cJSON *j;
	const char *tid, *to, *purpose, *rid;
	int ok;

	if ((j = json_parse_strict(t->payload.data, t->payload.len, 64, NULL,
	    0)) == NULL)
		return 0;
	tid = json_get_str(j, "transfer_id");
	to = json_get_str(j, "to_area");
	purpose = json_get_str(j, "purpose");
	rid = json_get_str(cJSON_GetObjectItemCaseSensitive(j, "record"), "id");
	ok = tid != NULL && to != NULL && purpose != NULL && rid != NULL &&
	    strcmp(tid, t->transfer_id) == 0 && strcmp(to, t->to_area) == 0 &&
	    strcmp(purpose, t->purpose) == 0 && strcmp(rid, t->record_id) == 0;
	cJSON_Delete(j);
	return ok;
}

/* Fill t from a row of R_TRANSFER / R_DUE; with_payload decrypts it. */
static int
transfer_row(store_reader_t *r, sqlite3_stmt *st, store_transfer_t *t,
    int with_payload)
{
	char aad[STORE_MAX_ID + 16];
	size_t aadlen;
	const void *p;
	int n;
	sqlite3_int64 attempts;

	memset(t, 0, sizeof(*t));
	buf_init(&t->payload, 0);
	buf_init(&t->receipt, 0);
	if (col_text(st, 0, t->transfer_id, sizeof(t->transfer_id)) < 0 ||
	    col_text(st, 1, t->record_id, sizeof(t->record_id)) < 0 ||
	    col_text(st, 2, t->to_area, sizeof(t->to_area)) < 0 ||
	    col_text(st, 3, t->purpose, sizeof(t->purpose)) < 0 ||
	    col_text(st, 4, t->initiator, sizeof(t->initiator)) < 0 ||
	    col_text(st, 5, t->status, sizeof(t->status)) < 0)
		return -1;
	attempts = sqlite3_column_int64(st, 6);
	if (attempts < 0 || attempts > UINT32_MAX)
		return -1;
	t->attempts = (unsigned)attempts;
	t->next_attempt_ms = sqlite3_column_int64(st, 7);
	t->deadline_ms = sqlite3_column_int64(st, 8);
	t->created_ms = sqlite3_column_int64(st, 9);
	if (col_blob(st, 10, &t->receipt) < 0)
		goto err;
	if (with_payload) {
		p = sqlite3_column_blob(st, 11);
		n = sqlite3_column_bytes(st, 11);
		aadlen = store_int_label_aad("outbox", t->transfer_id, NULL,
		    aad, sizeof(aad));
		/* A damaged payload is that transfer's failure, not the
		 * query's: one bad row must not stop its peer's queue. */
		if (p == NULL || n <= 0 || (size_t)n > STORE_MAX_VALUE ||
		    aadlen == 0 || aead_open(store_int_data_key(r->s), aad,
		    aadlen, p, (size_t)n, &t->payload) < 0 ||
		    !payload_matches_row(t)) {
			buf_reset(&t->payload);
			t->unreadable = 1;
		}
	}
	return 0;
err:
	buf_free(&t->payload);
	buf_free(&t->receipt);
	return -1;
}

int
store_transfer_get(store_reader_t *r, const char *transfer_id,
    store_transfer_t *out)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	memset(out, 0, sizeof(*out));
	if (transfer_id == NULL || strlen(transfer_id) > STORE_MAX_ID)
		return -1;
	if ((st = stmt(r, R_TRANSFER)) == NULL ||
	    bind_text(st, 1, transfer_id) < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		ret = 1;
	else if (rc == SQLITE_ROW && transfer_row(r, st, out, 0) == 0)
		ret = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

/* latest_ms: for R_DUE_FOR only (store_outbox_due_for). */
static int
outbox_select(store_reader_t *r, int which, const char *area, int64_t now_ms,
    int64_t latest_ms, store_transfer_t *out, size_t max, size_t *n)
{
	sqlite3_stmt *st;
	size_t i, got = 0;
	int rc = SQLITE_DONE, ret = -1;

	*n = 0;
	if (max == 0)
		return 0;
	if (max > INT32_MAX)
		max = INT32_MAX;
	if ((st = stmt(r, which)) == NULL ||
	    sqlite3_bind_int64(st, 1, now_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)max) != SQLITE_OK ||
	    (area != NULL && sqlite3_bind_text(st, 3, area, -1,
	    SQLITE_STATIC) != SQLITE_OK) ||
	    (which == R_DUE_FOR && sqlite3_bind_int64(st, 4, latest_ms) !=
	    SQLITE_OK))
		goto out;
	while (got < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (transfer_row(r, st, &out[got], 1) < 0)
			goto out;
		got++;
	}
	if (got < max && rc != SQLITE_DONE)
		goto out;
	*n = got;
	ret = 0;
out:
	if (ret < 0)
		for (i = 0; i < got; i++) {
			buf_free(&out[i].payload);
			buf_free(&out[i].receipt);
		}
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

int
store_outbox_due(store_reader_t *r, int64_t now_ms, store_transfer_t *out,
    size_t max, size_t *n)
{
	return outbox_select(r, R_DUE, NULL, now_ms, 0, out, max, n);
}

int
store_outbox_due_for(store_reader_t *r, const char *area, int64_t now_ms,
    int64_t latest_ms, store_transfer_t *out, size_t max, size_t *n)
{
	return outbox_select(r, R_DUE_FOR, area, now_ms, latest_ms, out, max, n);
}

int
store_outbox_expired_for(store_reader_t *r, const char *area, int64_t now_ms,
    store_transfer_t *out, size_t max, size_t *n)
{
	return outbox_select(r, R_EXPIRED_FOR, area, now_ms, 0, out, max, n);
}

int
store_outbox_stats(store_reader_t *r,
    void (*fn)(void *ctx, const char *area, uint64_t depth, int64_t oldest_ms),
    void *ctx)
{
	sqlite3_stmt *st;
	struct timespec ts;
	int64_t now;
	char area[STORE_MAX_AREA + 1];
	int rc, ret = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if ((st = stmt(r, R_STATS)) == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 depth = sqlite3_column_int64(st, 1);
		sqlite3_int64 oldest = sqlite3_column_int64(st, 2);

		if (col_text(st, 0, area, sizeof(area)) < 0 || depth < 0)
			goto out;
		fn(ctx, area, (uint64_t)depth, now > oldest ? now - oldest : 0);
	}
	if (rc == SQLITE_DONE)
		ret = 0;
out:
	sqlite3_reset(st);
	return ret;
}

int
store_inbound_get(store_reader_t *r, const char *from_area,
    const char *transfer_id, char digest[65], char received_at[32],
    uint64_t *audit_index, buf_t *receipt)
{
	sqlite3_stmt *st;
	sqlite3_int64 idx;
	int rc, ret = -1;

	if (from_area == NULL || transfer_id == NULL ||
	    strlen(from_area) > STORE_MAX_AREA ||
	    strlen(transfer_id) > STORE_MAX_ID)
		return -1;
	if ((st = stmt(r, R_INBOUND)) == NULL ||
	    bind_text(st, 1, from_area) < 0 || bind_text(st, 2, transfer_id) < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 1;
		goto out;
	}
	if (rc != SQLITE_ROW || col_text(st, 0, digest, 65) < 0 ||
	    col_text(st, 1, received_at, 32) < 0)
		goto out;
	idx = sqlite3_column_int64(st, 2);
	if (idx < 0 || col_blob(st, 3, receipt) < 0)
		goto out;
	*audit_index = (uint64_t)idx;
	ret = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

int
store_record_sent_to(store_reader_t *r, const char *record_id,
    const char *area)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	if (record_id == NULL || area == NULL ||
	    strlen(record_id) > STORE_MAX_ID || strlen(area) > STORE_MAX_AREA)
		return -1;
	if ((st = stmt(r, R_SENT_TO)) == NULL ||
	    bind_text(st, 1, record_id) < 0 || bind_text(st, 2, area) < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = 1;
	else if (rc == SQLITE_DONE)
		ret = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

int
store_checkpoint_latest(store_reader_t *r, buf_t *out)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	if ((st = stmt(r, R_CKPT)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		ret = 1;
	else if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0 &&
	    sqlite3_column_bytes(st, 0) <= 65536 && col_blob(st, 0, out) == 0)
		ret = 0;
	sqlite3_reset(st);
	return ret;
}

int
store_witness_get(store_reader_t *r, const char *area, uint64_t *size,
    merkle_hash_t root, buf_t *note, char time[32])
{
	sqlite3_stmt *st;
	const char *t;
	int rc, ret = -1;

	if ((st = stmt(r, R_WIT_GET)) == NULL ||
	    sqlite3_bind_text(st, 1, area, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 1;
		goto out;
	}
	/* Bounded as store_job_witness_put wrote them. */
	if (rc != SQLITE_ROW || sqlite3_column_int64(st, 0) < 0 ||
	    sqlite3_column_bytes(st, 1) != MERKLE_HASH_LEN ||
	    sqlite3_column_bytes(st, 2) <= 0 ||
	    sqlite3_column_bytes(st, 2) > 65536)
		goto out;
	*size = (uint64_t)sqlite3_column_int64(st, 0);
	memcpy(root, sqlite3_column_blob(st, 1), MERKLE_HASH_LEN);
	if (note != NULL && col_blob(st, 2, note) < 0)
		goto out;
	if (time != NULL) {
		t = (const char *)sqlite3_column_text(st, 3);
		snprintf(time, 32, "%s", t != NULL ? t : "");
	}
	ret = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

int
store_witness_list(store_reader_t *r,
    int (*fn)(void *ctx, const store_witnessed_t *w), void *ctx)
{
	sqlite3_stmt *st;
	store_witnessed_t w;
	const char *t;
	int rc, ret = -1, n, m;

	if ((st = stmt(r, R_WIT_LIST)) == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&w, 0, sizeof(w));
		w.area = (const char *)sqlite3_column_text(st, 0);
		w.note = sqlite3_column_blob(st, 2);
		n = sqlite3_column_bytes(st, 2);
		t = (const char *)sqlite3_column_text(st, 3);
		w.time = t != NULL ? t : "";
		w.refused = sqlite3_column_blob(st, 4);
		m = sqlite3_column_bytes(st, 4);
		t = (const char *)sqlite3_column_text(st, 5);
		w.refused_time = t != NULL ? t : "";
		/* Bounded as the writer wrote them. */
		if (w.area == NULL || w.note == NULL || n <= 0 || n > 65536 ||
		    m < 0 || m > 65536 || sqlite3_column_int64(st, 1) < 0)
			goto out;
		w.size = (uint64_t)sqlite3_column_int64(st, 1);
		w.note_len = (size_t)n;
		if (m == 0)
			w.refused = NULL;
		w.refused_len = (size_t)m;
		if (fn(ctx, &w) < 0)
			goto out;
	}
	if (rc == SQLITE_DONE)
		ret = 0;
out:
	sqlite3_reset(st);
	return ret;
}

int
store_audit_leaf(store_reader_t *r, uint64_t index, buf_t *out)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	if (index >= store_audit_size(r->s))
		return 1;
	if ((st = stmt(r, R_LEAF)) == NULL ||
	    sqlite3_bind_int64(st, 1, (sqlite3_int64)index) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0 &&
	    col_blob(st, 0, out) == 0)
		ret = 0;
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

/* Run a leaf query: rows of (idx, data); fn per row; stops on fn < 0. */
static int
leaf_rows(sqlite3_stmt *st,
    int (*fn)(void *ctx, uint64_t index, const void *leaf, size_t len),
    void *ctx)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 idx = sqlite3_column_int64(st, 0);
		const void *p = sqlite3_column_blob(st, 1);
		int n = sqlite3_column_bytes(st, 1);

		if (idx < 0 || p == NULL || n <= 0 ||
		    (size_t)n > STORE_MAX_VALUE)
			return -1;
		if (fn(ctx, (uint64_t)idx, p, (size_t)n) < 0)
			return 0;
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_audit_entries(store_reader_t *r, uint64_t start, uint64_t end,
    int (*fn)(void *ctx, uint64_t index, const void *leaf, size_t len),
    void *ctx)
{
	sqlite3_stmt *st;
	uint64_t size = store_audit_size(r->s);
	int ret = -1;

	if (end > size)
		end = size;
	if (start >= end)
		return 0;
	if ((st = stmt(r, R_ENTRIES)) == NULL ||
	    sqlite3_bind_int64(st, 1, (sqlite3_int64)start) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)end) != SQLITE_OK)
		goto out;
	ret = leaf_rows(st, fn, ctx);
out:
	if (st != NULL)
		sqlite3_reset(st);
	return ret;
}

static struct store_node_reader
node_reader(store_reader_t *r)
{
	struct store_node_reader nr;

	nr.db = r->db;
	nr.leaf_hash = &r->leaf_hash;
	nr.node_hash = &r->node_hash;
	return nr;
}

int
store_audit_inclusion(store_reader_t *r, uint64_t index, uint64_t size,
    merkle_hash_t *proof, size_t *n)
{
	struct store_node_reader nr = node_reader(r);

	if (index >= size || size > store_audit_size(r->s))
		return -1;
	return merkle_inclusion_proof(index, size, store_int_node, &nr, proof,
	    n);
}

int
store_audit_consistency(store_reader_t *r, uint64_t m, uint64_t n,
    merkle_hash_t *proof, size_t *count)
{
	struct store_node_reader nr = node_reader(r);

	if (m == 0 || m > n || n > store_audit_size(r->s))
		return -1;
	return merkle_consistency_proof(m, n, store_int_node, &nr, proof,
	    count);
}

/* The first index in [0, size) whose entry time is >= t, or size: times
 * never decrease with idx (store.c run_batch).  0 or -1. */
static int
time_lower_bound(store_reader_t *r, const char *t, uint64_t size,
    uint64_t *out)
{
	sqlite3_stmt *st = stmt(r, R_TIME);
	uint64_t lo = 0, hi = size, mid;
	const unsigned char *v;
	int less;

	if (st == NULL)
		return -1;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (sqlite3_bind_int64(st, 1, (sqlite3_int64)mid) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_ROW ||
		    (v = sqlite3_column_text(st, 0)) == NULL) {
			sqlite3_reset(st);
			return -1;
		}
		less = strcmp((const char *)v, t) < 0;
		sqlite3_reset(st);
		if (less)
			lo = mid + 1;
		else
			hi = mid;
	}
	*out = lo;
	return 0;
}

int
store_audit_search(store_reader_t *r, const store_audit_query_t *q,
    int (*fn)(void *ctx, uint64_t index, const void *leaf, size_t len),
    void *ctx)
{
	buf_t sql = BUF_INIT;
	char since[25], until[25];
	unsigned mask = 0;
	sqlite3_stmt *st;
	uint64_t size, lo = 0, hi;
	size_t limit;
	int by_idx, ret = -1;

	if (q == NULL || fn == NULL)
		return -1;
	if ((q->record && strlen(q->record) > STORE_MAX_ID) ||
	    (q->actor && strlen(q->actor) > STORE_MAX_KEY) ||
	    (q->op && strlen(q->op) > 32))
		return STORE_BAD_QUERY;
	if ((q->since && rfc3339_canonical(q->since, since) < 0) ||
	    (q->until && rfc3339_canonical(q->until, until) < 0))
		return STORE_BAD_QUERY;
	mask = (q->record ? Q_RECORD : 0) | (q->actor ? Q_ACTOR : 0) |
	    (q->op ? Q_OP : 0) | (q->since ? Q_SINCE : 0) |
	    (q->until ? Q_UNTIL : 0) |
	    (q->op && strcmp(q->op, "consult") != 0 ? Q_OP_RARE : 0);
	limit = q->limit ? q->limit : 1000;
	if (limit > INT32_MAX)
		limit = INT32_MAX;
	size = store_audit_size(r->s);
	/* The caller names a size in its answer: entries committed since it
	 * read it are past that size and not answered (a hit at or past the
	 * size it names is a wrong answer to visorctl). */
	if (q->bounded && q->below < size)
		size = q->below;
	hi = size;
	/* Without a time index, a time range is an index range. */
	by_idx = !r->time_indexed && (mask & (Q_SINCE | Q_UNTIL));
	if (by_idx && (((mask & Q_SINCE) &&
	    time_lower_bound(r, since, size, &lo) < 0) ||
	    ((mask & Q_UNTIL) && time_lower_bound(r, until, size, &hi) < 0)))
		return -1;
	if (r->search[mask] == NULL) {
		/* Only the filters given appear, so each variant can use its
		 * index; ?6 keeps answers within the durable size.  A record's
		 * entries are those in its index and those past the index's
		 * mark (store.c, STORE_AUDIT_INDEX_LAG); with a record given,
		 * the other columns are only checked ("+": no index), since a
		 * record has far fewer entries than an actor or an op. */
		const char *nx = (mask & Q_RECORD) ? "+" : "";

		if (buf_puts(&sql, "SELECT idx, data FROM audit_leaves"
		    " WHERE idx < ?6 AND idx >= ?8") < 0 ||
		    /* The page's range inside the subquery too, so that
		     * a page of a busy record reads only its own hits. */
		    ((mask & Q_RECORD) && buf_puts(&sql, " AND idx IN ("
		    "SELECT idx FROM audit_records WHERE record = ?1"
		    " AND idx >= ?8 AND idx < ?6"
		    " UNION ALL SELECT idx FROM audit_leaves WHERE idx >="
		    " max(?8, (SELECT n FROM counters WHERE name ="
		    " 'audit_indexed')) AND idx < ?6 AND record = ?1)") < 0) ||
		    ((mask & Q_ACTOR) &&
		    buf_printf(&sql, " AND %sactor = ?2", nx) < 0) ||
		    ((mask & Q_OP) && buf_printf(&sql, " AND %sop = ?3", nx) < 0) ||
		    ((mask & Q_OP_RARE) && buf_printf(&sql,
		    " AND %sop <> 'consult'", nx) < 0) ||
		    ((mask & Q_SINCE) && (r->time_indexed ?
		    buf_printf(&sql, " AND %stime >= ?4", nx) :
		    buf_puts(&sql, " AND idx >= ?4")) < 0) ||
		    ((mask & Q_UNTIL) && (r->time_indexed ?
		    buf_printf(&sql, " AND %stime < ?5", nx) :
		    buf_puts(&sql, " AND idx < ?5")) < 0) ||
		    buf_puts(&sql, " ORDER BY idx LIMIT ?7") < 0 ||
		    store_int_prepare(r->db, &r->search[mask], sql.data, NULL,
		    0) < 0) {
			buf_free(&sql);
			return -1;
		}
		buf_free(&sql);
	}
	st = r->search[mask];
	sqlite3_reset(st);
	if (((mask & Q_RECORD) && bind_text(st, 1, q->record) < 0) ||
	    ((mask & Q_ACTOR) && bind_text(st, 2, q->actor) < 0) ||
	    ((mask & Q_OP) && bind_text(st, 3, q->op) < 0) ||
	    ((mask & Q_SINCE) && (by_idx ?
	    sqlite3_bind_int64(st, 4, (sqlite3_int64)lo) != SQLITE_OK :
	    bind_text(st, 4, since) < 0)) ||
	    ((mask & Q_UNTIL) && (by_idx ?
	    sqlite3_bind_int64(st, 5, (sqlite3_int64)hi) != SQLITE_OK :
	    bind_text(st, 5, until) < 0)) ||
	    sqlite3_bind_int64(st, 6, (sqlite3_int64)size) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 7, (sqlite3_int64)limit) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 8, (sqlite3_int64)(q->from < size ?
	    q->from : size)) != SQLITE_OK)
		goto out;
	ret = leaf_rows(st, fn, ctx);
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}
