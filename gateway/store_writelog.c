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
 *
 * The outbox's status column is in the clear too: a queued transfer marked
 * "delivered" or "failed" there would never be sent, and nobody told.  Each
 * change of status has its entry, committed with it (routes_transfers.c,
 * outbox.c, store.c op_erase), naming the transfer:
 *
 *   transfer-out  "queued"     queued (the transfer's first entry)
 *   transfer-out  "failed"     failed (deadline, policy changed, erased)
 *   transfer-out  "rejected"   rejected (the peer refused it)
 *   receipt       "ok"         delivered (also after "failed": a delivery
 *                              in flight when its record was erased)
 *
 * Other transfer-out results (a refused request naming a transfer id) change
 * nothing.  So each outbox row must have the status its transfer's last such
 * entry left, and every transfer the log queued must have its row.  Past the
 * checkpoint an entry must also be a step the gateway makes: queued first
 * and once, and then only from queued (or failed, to delivered).
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
	unsigned char state;	/* transfers: the status the last entry left */
} wl_rec_t;

typedef struct {
	wl_rec_t *slot;
	size_t cap, n;		/* cap a power of two, n <= cap / 2 */
} wl_table_t;

/* A transfer's status as the outbox names it. */
enum { T_NONE, T_QUEUED, T_DELIVERED, T_FAILED, T_REJECTED };
static const char *const t_status[] = { "not queued", "queued", "delivered",
    "failed", "rejected" };

struct store_writelog {
	wl_table_t rec, xfer;	/* records; outbound transfers */
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
grow(wl_table_t *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024, i;
	wl_rec_t *ns;

	if (cap < t->cap || (ns = calloc(cap, sizeof(*ns))) == NULL)
		return -1;
	for (i = 0; i < t->cap; i++)
		if (t->slot[i].id != NULL)
			*find_slot(ns, cap, t->slot[i].id) = t->slot[i];
	free(t->slot);
	t->slot = ns;
	t->cap = cap;
	return 0;
}

/* The entry for id in t, made (zeroed) if new: NULL if memory is short. */
static wl_rec_t *
table_get(wl_table_t *t, const char *id)
{
	wl_rec_t *r;

	if (t->n + 1 > t->cap / 2 && grow(t) < 0)
		return NULL;
	r = find_slot(t->slot, t->cap, id);
	if (r->id == NULL) {
		if ((r->id = strdup(id)) == NULL)
			return NULL;
		t->n++;
	}
	return r;
}

static void
table_free(wl_table_t *t)
{
	size_t i;

	for (i = 0; i < t->cap; i++)
		free(t->slot[i].id);
	free(t->slot);
}

store_writelog_t *
store_writelog_new(uint64_t signed_size)
{
	store_writelog_t *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->signed_size = signed_size;
	if (grow(&w->rec) < 0 || grow(&w->xfer) < 0) {
		store_writelog_free(w);
		return NULL;
	}
	return w;
}

void
store_writelog_free(store_writelog_t *w)
{
	if (w == NULL)
		return;
	table_free(&w->rec);
	table_free(&w->xfer);
	free(w);
}

/* Could the leaf be a write, or a transfer's change of status?  Every such
 * leaf holds "op":"<its op>", so this never passes one over; the parse
 * decides.  It keeps the parse off the reads and refusals, most of a log. */
static int
maybe_write(const char *p, size_t len)
{
	static const char key[] = "\"op\":\"";
	static const char *const ops[] = { "collect\"", "alter\"", "erase\"",
	    "transfer-in\"", "transfer-out\"", "receipt\"" };
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

/* May a transfer go from status from to status to in one entry? */
static int
transfer_step_ok(int from, int to)
{
	switch (to) {
	case T_QUEUED:
		return from == T_NONE;
	case T_DELIVERED:
		return from == T_QUEUED || from == T_FAILED;
	case T_FAILED:
	case T_REJECTED:
		return from == T_QUEUED;
	default:
		return 0;
	}
}

/* A transfer-out or receipt entry at idx: note the status it leaves.
 * 0, or -1 if memory is short. */
static int
transfer_entry(store_writelog_t *w, uint64_t idx, const char *op,
    const char *result, const char *transfer)
{
	wl_rec_t *t;
	int to;

	if (transfer == NULL)
		return 0;
	if (strcmp(op, "receipt") == 0)
		to = strcmp(result, "ok") == 0 ? T_DELIVERED : T_NONE;
	else if (strcmp(result, "queued") == 0)
		to = T_QUEUED;
	else if (strcmp(result, "failed") == 0)
		to = T_FAILED;
	else if (strcmp(result, "rejected") == 0)
		to = T_REJECTED;
	else
		to = T_NONE;
	if (to == T_NONE)
		return 0;
	if ((t = table_get(&w->xfer, transfer)) == NULL)
		return -1;
	if (idx >= w->signed_size && !w->bad &&
	    !transfer_step_ok(t->state, to)) {
		w->bad = 1;
		snprintf(w->why, sizeof(w->why), "audit log altered at index %"
		    PRIu64 ", past the signed checkpoint: it marks transfer %s "
		    "%s when it was %s (a transfer is queued once, then "
		    "delivered, failed or rejected)", idx, transfer,
		    t_status[to], t_status[t->state]);
	}
	t->state = (unsigned char)to;
	t->idx = idx;
	return 0;
}

int
store_writelog_add(store_writelog_t *w, uint64_t idx, const void *leaf,
    size_t len)
{
	cJSON *j;
	const char *op, *result, *id;
	int64_t v;
	int erase, known, rc;
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
	if (op != NULL && result != NULL && (strcmp(op, "transfer-out") == 0 ||
	    strcmp(op, "receipt") == 0)) {
		rc = transfer_entry(w, idx, op, result, json_get_str(j,
		    "transfer"));
		cJSON_Delete(j);
		return rc;
	}
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
	if ((r = table_get(&w->rec, id)) == NULL)
		goto oom;
	/* A new entry is not known yet: nothing to go back from. */
	if (idx >= w->signed_size && !w->bad && known && r->known &&
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

/* Every outbox row has the status its transfer's last entry left, and
 * every transfer the log queued has its row.  0, or -1 with err set. */
static int
check_outbox(store_writelog_t *w, sqlite3 *db, const char *db_path,
    char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *id, *status;
	int rc, n, ret = -1;
	wl_rec_t *t;
	size_t i;

	if (sqlite3_prepare_v2(db, "SELECT transfer_id, status FROM outbox",
	    -1, &st, NULL) != SQLITE_OK)
		goto db_err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = (const char *)sqlite3_column_text(st, 0);
		n = sqlite3_column_bytes(st, 0);
		status = (const char *)sqlite3_column_text(st, 1);
		if (id == NULL || n <= 0 || strlen(id) != (size_t)n) {
			errmsg_set(err, errlen, "%s: outbox altered: a transfer "
			    "id that no audit entry can name", db_path);
			goto out;
		}
		t = find_slot(w->xfer.slot, w->xfer.cap, id);
		if (t->id == NULL || t->state == T_NONE) {
			errmsg_set(err, errlen, "%s: outbox altered: transfer %s "
			    "is there (%s) but the audit log never queued it",
			    db_path, id, status ? status : "no status");
			goto out;
		}
		t->seen = 1;
		if (status == NULL || strcmp(status, t_status[t->state]) != 0) {
			errmsg_set(err, errlen, "%s: outbox altered: transfer %s "
			    "is %s, but the audit log's last entry for it (index %"
			    PRIu64 ") left it %s", db_path, id,
			    status ? status : "without a status", t->idx,
			    t_status[t->state]);
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		goto db_err;
	for (i = 0; i < w->xfer.cap; i++) {
		t = &w->xfer.slot[i];
		if (t->id != NULL && !t->seen && t->state != T_NONE) {
			errmsg_set(err, errlen, "%s: outbox altered: transfer %s "
			    "is missing, but the audit log's last entry for it "
			    "(index %" PRIu64 ") left it %s", db_path, t->id,
			    t->idx, t_status[t->state]);
			goto out;
		}
	}
	ret = 0;
	goto out;
db_err:
	errmsg_set(err, errlen, "%s: outbox: %s", db_path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	return ret;
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
		r = find_slot(w->rec.slot, w->rec.cap, id);
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
	for (i = 0; i < w->rec.cap; i++) {
		r = &w->rec.slot[i];
		if (r->id != NULL && !r->seen && r->known) {
			state_text(r, left, sizeof(left));
			errmsg_set(err, errlen, "%s: records table altered: "
			    "record %s is missing, but the audit log's last write "
			    "of it (index %" PRIu64 ") left %s", db_path, r->id,
			    r->idx, left);
			goto out;
		}
	}
	ret = check_outbox(w, db, db_path, err, errlen);
	goto out;
db_err:
	errmsg_set(err, errlen, "%s: records: %s", db_path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	return ret;
}
