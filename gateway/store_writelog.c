/*
 * store_writelog: the start-up check that the records table holds what the
 * audit log says was written (store_int.h).  Part of the store module.
 *
 * A record's sealed content binds only its id and version, and the records
 * table's version and erased columns are in the clear: whoever can write
 * store.db without store.key could point a record back at an older sealed
 * version, or clear "erased" and put back a version an old copy of the file
 * still holds, and the gateway would serve it and later sign a second,
 * different write of the same version.  The log is what cannot be changed
 * unseen, and every write of a record has its entry there, committed in the
 * same transaction as the write (store.c, run_ops), naming the record and
 * the version:
 *
 *   collect, alter, transfer-in   result "ok", "version":V: the record is
 *                                 now V, live (op_put)
 *   erase                         result "ok", "version":V, the version
 *                                 erased: the record is now V + 1, erased
 *                                 (op_erase); store.h also lets an erase
 *                                 entry name the erasure's own version
 *                                 (AUDIT_VERSION_ASSIGNED), so V + 1 or V
 *                                 is taken: an erased record is served to
 *                                 no one either way
 *
 * Every other entry that names a record (consult, disclose, transfer-out,
 * receipt, deny, and these ops with any other result) read it, was refused,
 * or moved a copy elsewhere: it changes nothing here.  So the table must
 * hold, for each record, exactly the state the log's last write of it left,
 * and no record the log never wrote.
 *
 * Leaves past the signed checkpoint are only as good as the file (anyone
 * who can write store.db can append one): there a write must also move its
 * record forward, so that a made-up "alter R version 1" cannot vouch for a
 * rolled-back row.  Signed leaves are the gateway's own word and are taken
 * as they are.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/store_int.h"
#include "util/errmsg.h"
#include "util/json.h"

/* A leaf is compact JSON with at most actor{} and arrays nested. */
#define WRITELOG_DEPTH 4

typedef struct {
	char *id;		/* NULL: a free slot */
	uint64_t version;	/* the state the last write left */
	uint64_t idx;		/* that write's leaf index */
	unsigned char erased;
	unsigned char known;	/* the write carried a usable version;
				   if not, the record is not checked */
	unsigned char seen;	/* found in the records table */
} wl_rec_t;

struct store_writelog {
	wl_rec_t *slot;
	size_t cap, n;		/* cap a power of two, n <= cap / 2 */
	uint64_t signed_size;
	int bad;		/* a write past the checkpoint went backwards */
	char why[320];
};

static uint64_t
id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *id != '\0'; id++) {
		h ^= (unsigned char)*id;
		h *= 1099511628211ULL;
	}
	return h;
}

static wl_rec_t *
find_slot(wl_rec_t *slot, size_t cap, const char *id)
{
	size_t i = (size_t)id_hash(id) & (cap - 1);

	while (slot[i].id != NULL && strcmp(slot[i].id, id) != 0)
		i = (i + 1) & (cap - 1);
	return &slot[i];
}

static int
grow(store_writelog_t *w)
{
	size_t cap = w->cap ? w->cap * 2 : 1024, i;
	wl_rec_t *ns;

	if (cap < w->cap || (ns = calloc(cap, sizeof(*ns))) == NULL)
		return -1;
	for (i = 0; i < w->cap; i++)
		if (w->slot[i].id != NULL)
			*find_slot(ns, cap, w->slot[i].id) = w->slot[i];
	free(w->slot);
	w->slot = ns;
	w->cap = cap;
	return 0;
}

store_writelog_t *
store_writelog_new(uint64_t signed_size)
{
	store_writelog_t *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->signed_size = signed_size;
	if (grow(w) < 0) {
		free(w);
		return NULL;
	}
	return w;
}

void
store_writelog_free(store_writelog_t *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->cap; i++)
		free(w->slot[i].id);
	free(w->slot);
	free(w);
}

/* Could the leaf be a write?  Every write's leaf holds "op":"<its op>",
 * so this never passes one over; the parse decides.  It keeps the parse
 * off the reads and refusals, most of a log. */
static int
maybe_write(const char *p, size_t len)
{
	static const char key[] = "\"op\":\"";
	static const char *const ops[] = { "collect\"", "alter\"", "erase\"",
	    "transfer-in\"" };
	const char *end = p + len, *q;
	size_t i, n;

	while ((q = memmem(p, (size_t)(end - p), key, sizeof(key) - 1)) !=
	    NULL) {
		q += sizeof(key) - 1;
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			n = strlen(ops[i]);
			if ((size_t)(end - q) >= n && memcmp(q, ops[i], n) == 0)
				return 1;
		}
		p = q;
	}
	return 0;
}

/* The newest version r's state may hold content of: a write must go
 * past it, an erasure may erase it.  An erased record is at V + 1 (or V,
 * above) after erasing V. */
static uint64_t
floor_of(const wl_rec_t *r)
{
	return r->erased && r->version > 0 ? r->version - 1 : r->version;
}

int
store_writelog_add(store_writelog_t *w, uint64_t idx, const void *leaf,
    size_t len)
{
	cJSON *j;
	const char *op, *result, *id;
	int64_t v;
	int erase, known;
	uint64_t next;
	wl_rec_t *r;
	char why[8];

	if (!maybe_write(leaf, len))
		return 0;
	/* Not JSON: the log check names a damaged leaf; a signed one the
	 * gateway wrote is always JSON. */
	if ((j = json_parse_strict(leaf, len, WRITELOG_DEPTH, why,
	    sizeof(why))) == NULL)
		return 0;
	op = json_get_str(j, "op");
	result = json_get_str(j, "result");
	id = json_get_str(j, "record");
	if (op == NULL || result == NULL || id == NULL ||
	    strcmp(result, "ok") != 0 || (strcmp(op, "collect") != 0 &&
	    strcmp(op, "alter") != 0 && strcmp(op, "transfer-in") != 0 &&
	    strcmp(op, "erase") != 0)) {
		cJSON_Delete(j);
		return 0;
	}
	erase = strcmp(op, "erase") == 0;
	/* The gateway writes none without a version, but one the log signed
	 * is its word all the same: the record goes unchecked until its next
	 * write that has one (refusing to start on it would refuse a store
	 * the gateway made).  Past the checkpoint it counts for nothing, or
	 * anyone could add one to switch the check off. */
	known = json_get_int(j, "version", 1, INT64_MAX - 1, &v) == 0;
	if (!known && idx >= w->signed_size) {
		cJSON_Delete(j);
		return 0;
	}
	next = known ? (uint64_t)v + (erase ? 1 : 0) : 0;
	if (w->n + 1 > w->cap / 2 && grow(w) < 0)
		goto oom;
	r = find_slot(w->slot, w->cap, id);
	if (r->id == NULL) {
		if ((r->id = strdup(id)) == NULL)
			goto oom;
		w->n++;
	} else if (idx >= w->signed_size && !w->bad && known && r->known &&
	    (erase ? (uint64_t)v < floor_of(r) : (uint64_t)v <= floor_of(r))) {
		w->bad = 1;
		snprintf(w->why, sizeof(w->why), "audit log altered at index %"
		    PRIu64 ", past the signed checkpoint: it %s record %s "
		    "as version %" PRIu64 " after index %" PRIu64 " left it at "
		    "version %" PRIu64 "%s (a record's versions only go "
		    "forward)", idx, erase ? "erases" : "writes", id,
		    (uint64_t)v, r->idx, r->version, r->erased ? ", erased" :
		    "");
	}
	r->version = next;
	r->idx = idx;
	r->erased = (unsigned char)erase;
	r->known = (unsigned char)known;
	cJSON_Delete(j);
	return 0;
oom:
	cJSON_Delete(j);
	return -1;
}

/* "version V, live" as the last write left r. */
static void
state_text(const wl_rec_t *r, char *out, size_t outlen)
{
	snprintf(out, outlen, "version %" PRIu64 ", %s", r->version,
	    r->erased ? "erased" : "live");
}

int
store_writelog_check(store_writelog_t *w, sqlite3 *db, const char *db_path,
    char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *id;
	sqlite3_int64 v;
	int erased, rc, n, ret = -1;
	wl_rec_t *r;
	size_t i;
	char left[64];

	if (w->bad) {
		errmsg_set(err, errlen, "%s", w->why);
		return -1;
	}
	if (sqlite3_prepare_v2(db, "SELECT id, version, erased FROM records",
	    -1, &st, NULL) != SQLITE_OK)
		goto db_err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(st, 0);
		n = sqlite3_column_bytes(st, 0);
		/* Read as the readers read them (store_read.c). */
		v = sqlite3_column_int64(st, 1);
		erased = sqlite3_column_int(st, 2) != 0;
		if (id == NULL || n <= 0 || strlen(id) != (size_t)n) {
			errmsg_set(err, errlen, "%s: records table altered: a "
			    "record id that no audit entry can name", db_path);
			goto out;
		}
		r = find_slot(w->slot, w->cap, id);
		if (r->id == NULL) {
			errmsg_set(err, errlen, "%s: records table altered: "
			    "record %s is there (version %lld%s) but the audit "
			    "log never wrote it", db_path, id, (long long)v,
			    erased ? ", erased" : "");
			goto out;
		}
		r->seen = 1;
		if (r->known && (v <= 0 || erased != r->erased ||
		    ((uint64_t)v != r->version &&
		    !(r->erased && (uint64_t)v + 1 == r->version)))) {
			state_text(r, left, sizeof(left));
			errmsg_set(err, errlen, "%s: records table altered: "
			    "record %s is at version %lld%s, but the audit log's "
			    "last write of it (index %" PRIu64 ") left %s: the "
			    "record was rolled back or altered", db_path, id,
			    (long long)v, erased ? ", erased" : ", live", r->idx,
			    left);
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		goto db_err;
	for (i = 0; i < w->cap; i++) {
		r = &w->slot[i];
		if (r->id != NULL && !r->seen && r->known) {
			state_text(r, left, sizeof(left));
			errmsg_set(err, errlen, "%s: records table altered: "
			    "record %s is missing, but the audit log's last write "
			    "of it (index %" PRIu64 ") left %s", db_path, r->id,
			    r->idx, left);
			goto out;
		}
	}
	ret = 0;
	goto out;
db_err:
	errmsg_set(err, errlen, "%s: records: %s", db_path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	return ret;
}
