/*
 * Fuzz target for the start-up check of the store's clear columns against
 * the audit log (gateway/store_writelog.c).
 *
 * Input byte 0 chooses the mode:
 *   even: the rest is leaves, one per line, as anyone who can write
 *         store.db could make them, read against fixed records and outbox
 *         tables with the signed size from byte 1.  Nothing may crash or
 *         leak, whatever the check decides.
 *   odd:  the rest drives a model of the gateway over 4 records and 4
 *         transfers, making only the steps the gateway makes (a write, an
 *         erasure, a transfer queued, delivered, failed or rejected, and
 *         refusals naming them).  The check must pass on the tables the
 *         model leaves, signed or not.  If the last byte asks, one row is
 *         then changed to a state the log never left: the check must fail.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "gateway/store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N 4

static const char *const t_status[] = { "none", "queued", "delivered",
    "failed", "rejected" };

static sqlite3 *
db_new(void)
{
	sqlite3 *db;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db, "CREATE TABLE records(id TEXT PRIMARY KEY,"
	    " version INTEGER, category INTEGER, level INTEGER,"
	    " managing_area TEXT, erased INTEGER);"
	    "CREATE TABLE outbox(transfer_id TEXT PRIMARY KEY, status TEXT);",
	    NULL, NULL, NULL) != SQLITE_OK)
		abort();
	return db;
}

static void
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		abort();
}

static void
raw(const uint8_t *data, size_t size)
{
	store_writelog_t *w;
	sqlite3 *db = db_new();
	const uint8_t *p, *end = data + size, *nl;
	uint64_t idx = 0, signed_size = size > 0 ? data[0] : 0;
	char err[400];

	if (size > 0) {
		data++;
		size--;
	}
	if ((w = store_writelog_new(signed_size)) == NULL)
		abort();
	exec(db, "INSERT INTO records VALUES('R0', 1, 1, 1, 'norfolk', 0);"
	    "INSERT INTO records VALUES('R1', 3, 1, 1, 'norfolk', 1);"
	    "INSERT INTO outbox VALUES('T0', 'queued');"
	    "INSERT INTO outbox VALUES('T1', 'delivered');");
	for (p = data; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (store_writelog_add(w, idx++, p, (size_t)(nl - p)) < 0)
			abort();
	}
	(void)store_writelog_check(w, db, "store.db", err, sizeof(err));
	store_writelog_free(w);
	sqlite3_close(db);
}

typedef struct {
	uint64_t version;	/* 0: never written */
	int erased;
} rec_t;

/* One leaf as the gateway writes it (the members the check reads). */
static void
leaf(store_writelog_t *w, uint64_t idx, const char *op, const char *record,
    uint64_t version, const char *transfer, const char *result)
{
	char b[400], v[40] = "";
	int n;

	if (version != 0)
		snprintf(v, sizeof(v), ",\"version\":%llu",
		    (unsigned long long)version);
	n = snprintf(b, sizeof(b), "{\"seq\":%llu,\"time\":"
	    "\"2026-12-07T00:00:00.000Z\",\"op\":\"%s\",\"actor\":{\"id\":"
	    "\"urn:visor:norfolk:agency:police\"},\"record\":\"%s\"%s%s%s%s"
	    ",\"result\":\"%s\"}", (unsigned long long)idx, op, record, v,
	    transfer ? ",\"transfer\":\"" : "", transfer ? transfer : "",
	    transfer ? "\"" : "", result);
	if (n < 0 || (size_t)n >= sizeof(b) ||
	    store_writelog_add(w, idx, b, (size_t)n) < 0)
		abort();
}

static void
model(const uint8_t *data, size_t size)
{
	rec_t rec[N];
	int xfer[N];	/* index into t_status */
	char rid[N][8], tid[N][8], sql[200], err[400];
	store_writelog_t *w;
	sqlite3 *db;
	uint64_t idx = 0, signed_size;
	size_t i;
	int r, t, tamper, rc;

	memset(rec, 0, sizeof(rec));
	memset(xfer, 0, sizeof(xfer));
	for (i = 0; i < N; i++) {
		snprintf(rid[i], sizeof(rid[i]), "R%zu", i);
		snprintf(tid[i], sizeof(tid[i]), "T%zu", i);
	}
	signed_size = size > 0 ? data[0] : 0;
	tamper = size > 1 ? data[size - 1] : 0;
	if ((w = store_writelog_new(signed_size)) == NULL)
		abort();
	for (i = 1; i + 1 < size; i++) {
		r = (data[i] >> 3) % N;
		t = r;
		switch (data[i] % 8) {
		case 0:		/* collect or alter */
			rec[r].version++;
			rec[r].erased = 0;
			leaf(w, idx++, rec[r].version == 1 ? "collect" : "alter",
			    rid[r], rec[r].version, NULL, "ok");
			break;
		case 1:		/* erase the live version */
			if (rec[r].version == 0 || rec[r].erased)
				break;
			leaf(w, idx++, "erase", rid[r], rec[r].version, NULL,
			    "ok");
			rec[r].version++;
			rec[r].erased = 1;
			break;
		case 2:		/* a read or a refusal: changes nothing */
			leaf(w, idx++, data[i] & 0x80 ? "consult" : "deny",
			    rid[r], rec[r].version ? rec[r].version : 1,
			    data[i] & 0x40 ? tid[t] : NULL, data[i] & 0x80 ?
			    "ok" : "denied");
			break;
		case 3:		/* queued */
			if (xfer[t] != 0)
				break;
			leaf(w, idx++, "transfer-out", rid[r], 0, tid[t],
			    "queued");
			xfer[t] = 1;
			break;
		case 4:		/* delivered (also after an erasure's failed) */
			if (xfer[t] != 1 && xfer[t] != 3)
				break;
			leaf(w, idx++, "receipt", rid[r], 0, tid[t], "ok");
			xfer[t] = 2;
			break;
		case 5:		/* failed */
			if (xfer[t] != 1)
				break;
			leaf(w, idx++, "transfer-out", rid[r], 0, tid[t],
			    "failed");
			xfer[t] = 3;
			break;
		case 6:		/* rejected */
			if (xfer[t] != 1)
				break;
			leaf(w, idx++, "transfer-out", rid[r], 0, tid[t],
			    "rejected");
			xfer[t] = 4;
			break;
		default:	/* a refused request naming the transfer */
			leaf(w, idx++, "transfer-out", rid[r], 0, tid[t],
			    "denied");
			break;
		}
	}
	db = db_new();
	for (i = 0; i < N; i++) {
		if (rec[i].version != 0) {
			snprintf(sql, sizeof(sql), "INSERT INTO records VALUES("
			    "'%s', %llu, 1, 1, 'norfolk', %d)", rid[i],
			    (unsigned long long)rec[i].version, rec[i].erased);
			exec(db, sql);
		}
		if (xfer[i] != 0) {
			snprintf(sql, sizeof(sql), "INSERT INTO outbox VALUES("
			    "'%s', '%s')", tid[i], t_status[xfer[i]]);
			exec(db, sql);
		}
	}
	rc = store_writelog_check(w, db, "store.db", err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "fuzz_writelog: the gateway's own steps refused: "
		    "%s\n", err);
		abort();
	}
	/* One row the log never left: a transfer in another status, or a
	 * record at a version its last write did not leave. */
	if (tamper & 1) {
		i = (size_t)(tamper >> 1) % N;
		if (xfer[i] != 0) {
			snprintf(sql, sizeof(sql), "UPDATE outbox SET status = '%s'"
			    " WHERE transfer_id = '%s'",
			    t_status[1 + (xfer[i] - 1 + 1 + (tamper >> 3) % 3) % 4],
			    tid[i]);
			exec(db, sql);
		} else if (rec[i].version != 0) {
			snprintf(sql, sizeof(sql), "UPDATE records SET version ="
			    " version + 2 WHERE id = '%s'", rid[i]);
			exec(db, sql);
		} else {
			snprintf(sql, sizeof(sql), "INSERT INTO outbox VALUES("
			    "'%s', 'delivered')", tid[i]);
			exec(db, sql);
		}
		if (store_writelog_check(w, db, "store.db", err,
		    sizeof(err)) == 0) {
			fprintf(stderr, "fuzz_writelog: a changed row passed\n");
			abort();
		}
	}
	store_writelog_free(w);
	sqlite3_close(db);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		model(data + 1, size - 1);
	else
		raw(data + 1, size - 1);
	return 0;
}
