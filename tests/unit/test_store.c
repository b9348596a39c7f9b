/* Unit tests for gateway/store: records, idempotency, audit sequencing and
 * proofs, checkpoints, encryption at rest, tamper detection at start, group
 * commit, failed commits, outbox and inbound transfers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The test reaches into the database as an attacker with file access would,
 * through its own connection. */
#include <sqlite3.h>

#include "crypto/aead.h"
#include "crypto/keyfile.h"
#include "crypto/merkle.h"
#include "crypto/note.h"
#include "gateway/audit_entry.h"
#include "gateway/store.h"
#include "tests/support/storewait.h"
#include "tests/support/tmpdir.h"
#include "gateway/store_int.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/rfc3339.h"

#define AREA "norfolk"
#define SURNAME "Quillfeatherstonehaugh"

static char *
new_dir(void)
{
	char tmpl[] = "/tmp/test_store.XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static char *vkey_line;		/* of the last keys made */

static size_t cache_bytes;	/* 0: the default; STORE_CACHE_NONE: off */

/* Opens the store in dir; outbox_max and audit_index_lag as in
 * store_options_t (0: the defaults). */
static store_t *
open_store_with(const char *dir, size_t outbox_max, unsigned lag)
{
	store_options_t o;
	char err[256];
	store_t *s;

	memset(&o, 0, sizeof(o));
	o.record_cache_bytes = cache_bytes;
	o.data_dir = dir;
	o.area = AREA;
	o.checkpoint_interval_ms = 20;
	o.outbox_max = outbox_max;
	o.audit_index_lag = lag;
	s = store_open(&o, err, sizeof(err));
	if (s == NULL)
		fprintf(stderr, "store_open: %s\n", err);
	assert_non_null(s);
	return s;
}

static store_t *
open_store(const char *dir, size_t outbox_max)
{
	return open_store_with(dir, outbox_max, 0);
}

static store_t *
new_store(char **dir, size_t outbox_max)
{
	buf_t vk = BUF_INIT;
	char err[256];

	*dir = new_dir();
	assert_int_equal(store_init_keys(*dir, AREA, &vk, err, sizeof(err)), 0);
	free(vkey_line);
	vkey_line = buf_steal(&vk, NULL);
	return open_store(*dir, outbox_max);
}

static int
open_fails(const char *dir, char *err, size_t errlen)
{
	store_options_t o;
	store_t *s;

	memset(&o, 0, sizeof(o));
	o.data_dir = dir;
	o.area = AREA;
	s = store_open(&o, err, errlen);
	if (s != NULL) {
		store_close(s);
		return 0;
	}
	return 1;
}

static audit_entry_t
entry(const char *op, const char *record, uint64_t version)
{
	static const char *const f[] = { "person.surname" };
	audit_entry_t e;

	memset(&e, 0, sizeof(e));
	e.op = op;
	e.request_id = "req";
	e.actor_id = "urn:visor:norfolk:agency:police";
	e.actor_person = "PC-1";
	e.record = record;
	e.version = version;
	e.purpose = "risk-management";
	e.fields = f;
	e.n_fields = 1;
	e.result = "ok";
	return e;
}

static store_result_t
put(store_t *s, const char *id, uint64_t expect, const char *json)
{
	store_job_t *j = store_job_new();
	audit_entry_t e = entry("collect", id, AUDIT_VERSION_ASSIGNED);

	assert_non_null(j);
	assert_int_equal(store_job_put_record(j, id, expect, 2, 1, AREA, json,
	    strlen(json), "urn:visor:norfolk:agency:police",
	    "[\"person.surname\"]"), 0);
	assert_int_equal(store_job_audit(j, &e), 0);
	return store_submit_wait(s, j);
}

static store_result_t
audit_only(store_t *s, const char *op, const char *record)
{
	store_job_t *j = store_job_new();
	audit_entry_t e = entry(op, record, AUDIT_VERSION_NONE);

	assert_int_equal(store_job_audit(j, &e), 0);
	return store_submit_wait(s, j);
}

/* ---- records */

static void
test_records(void **state)
{
	char *dir;
	store_t *s = new_store(&dir, 0);
	store_reader_t *r;
	store_record_t rec;
	store_result_t res;
	store_job_t *j;
	buf_t h = BUF_INIT;
	char err[128];

	(void)state;
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(store_record_get(r, "NFK-1", &rec), 1);
	assert_int_equal(store_record_history_page(r, "NFK-1", 0, 0, &h), 1);

	res = put(s, "NFK-1", STORE_VERSION_ABSENT, "{\"v\":1}");
	assert_int_equal(res.status, STORE_OK);
	assert_int_equal(res.version, 1);
	assert_int_equal(res.audit_index, 0);
	assert_int_equal(res.audit_size, 1);
	assert_int_equal(store_record_get(r, "NFK-1", &rec), 0);
	assert_int_equal(rec.version, 1);
	assert_int_equal(rec.category, 2);
	assert_int_equal(rec.level, 1);
	assert_string_equal(rec.managing_area, AREA);
	assert_int_equal(rec.erased, 0);
	assert_string_equal(rec.json.data, "{\"v\":1}");
	buf_free(&rec.json);
	/* ...but neither is in the clear in the database. */
	{
		char p[512];
		sqlite3 *db;
		sqlite3_stmt *st;

		snprintf(p, sizeof(p), "%s/store.db", dir);
		assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL),
		    SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT category, level FROM"
		    " records WHERE id = 'NFK-1'", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 0);
		assert_int_equal(sqlite3_column_int(st, 1), 0);
		sqlite3_finalize(st);
		sqlite3_close(db);
	}

	/* Create-only on a live record; stale and right versions. */
	assert_int_equal(put(s, "NFK-1", STORE_VERSION_ABSENT, "{}").status,
	    STORE_EXISTS);
	res = put(s, "NFK-1", 1, "{\"v\":2}");
	assert_int_equal(res.status, STORE_OK);
	assert_int_equal(res.version, 2);
	assert_int_equal(put(s, "NFK-1", 1, "{\"v\":3}").status, STORE_CONFLICT);
	assert_int_equal(put(s, "NFK-9", 4, "{}").status, STORE_NOT_FOUND);
	res = put(s, "NFK-1", STORE_VERSION_ANY, "{\"v\":3}");
	assert_int_equal(res.version, 3);
	/* Failed jobs left no audit entries behind. */
	assert_int_equal(store_audit_size(s), 3);

	/* Erase: content gone, history kept, versions continue. */
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-1", 2, "urn:a"), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_CONFLICT);
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-1", STORE_VERSION_ANY,
	    "urn:a"), 0);
	res = store_submit_wait(s, j);
	assert_int_equal(res.status, STORE_OK);
	assert_int_equal(res.version, 4);
	assert_int_equal(store_record_get(r, "NFK-1", &rec), 0);
	assert_int_equal(rec.erased, 1);
	assert_int_equal(rec.version, 4);
	assert_int_equal(rec.json.len, 0);
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-1", STORE_VERSION_ANY,
	    "urn:a"), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_NOT_FOUND);
	assert_int_equal(put(s, "NFK-1", 4, "{}").status, STORE_NOT_FOUND);
	assert_int_equal(store_record_history_page(r, "NFK-1", 0, 0, &h), 0);
	assert_non_null(strstr(h.data, "\"version\":4"));
	assert_non_null(strstr(h.data, "\"op\":\"erase\""));
	assert_non_null(strstr(h.data, "\"changed\":[\"person.surname\"]"));
	assert_null(strstr(h.data, "\"v\""));
	buf_reset(&h);
	res = put(s, "NFK-1", STORE_VERSION_ABSENT, "{\"v\":5}");
	assert_int_equal(res.status, STORE_OK);
	assert_int_equal(res.version, 5);

	/* Bad builder input: the call fails and the job cannot succeed. */
	j = store_job_new();
	assert_int_equal(store_job_put_record(j, NULL, STORE_VERSION_ANY, 1, 1,
	    AREA, "{}", 2, "urn:a", NULL), -1);
	assert_int_equal(store_job_put_record(j, "X", STORE_VERSION_ANY, 1, 1,
	    AREA, "{}", 2, "urn:a", "not json"), -1);
	assert_int_equal(store_job_erase_record(j, "X", STORE_VERSION_ABSENT,
	    "urn:a"), -1);
	assert_int_equal(store_submit_wait(s, j).status, STORE_FAILED);
	/* An assigned version without a record write fails the job. */
	j = store_job_new();
	{
		audit_entry_t e = entry("alter", "X", AUDIT_VERSION_ASSIGNED);

		assert_int_equal(store_job_audit(j, &e), 0);
	}
	assert_int_equal(store_submit_wait(s, j).status, STORE_FAILED);
	assert_int_equal(store_record_get(r, NULL, &rec), -1);
	store_job_free(NULL);

	buf_free(&h);
	store_reader_free(r);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- jobs in one batch fail alone */

#define MIXED 24

static void
test_mixed_batch(void **state)
{
	char *dir;
	store_t *s = new_store(&dir, 0);
	store_waiter_t w[MIXED];
	store_result_t r;
	uint8_t seen[MIXED];
	int k, ok_puts = 0, audits = 0;

	(void)state;
	memset(seen, 0, sizeof(seen));
	for (k = 0; k < MIXED; k++) {
		store_job_t *j = store_job_new();
		audit_entry_t e = entry("collect", "NFK-M",
		    k % 2 ? AUDIT_VERSION_NONE : AUDIT_VERSION_ASSIGNED);

		/* Even jobs race to create the same record: one wins, the rest
		 * are refused with their audit entries undone; odd jobs are
		 * audit-only and always land. */
		if (k % 2 == 0)
			assert_int_equal(store_job_put_record(j, "NFK-M",
			    STORE_VERSION_ABSENT, 1, 1, AREA, "{}", 2, "urn:a",
			    NULL), 0);
		assert_int_equal(store_job_audit(j, &e), 0);
		store_submit_waiter(s, j, &w[k]);
	}
	for (k = 0; k < MIXED; k++) {
		r = store_waiter_wait(&w[k]);
		if (k % 2 == 0 && r.status == STORE_OK)
			ok_puts++;
		else if (k % 2 == 0)
			assert_int_equal(r.status, STORE_EXISTS);
		else
			assert_int_equal(r.status, STORE_OK);
		if (r.status == STORE_OK) {
			assert_true(r.audit_index < MIXED);
			assert_int_equal(seen[r.audit_index], 0);
			seen[r.audit_index] = 1;
			audits++;
		}
	}
	assert_int_equal(ok_puts, 1);
	assert_int_equal(audits, MIXED / 2 + 1);
	assert_int_equal(store_audit_size(s), MIXED / 2 + 1);
	for (k = 0; k < audits; k++)
		assert_int_equal(seen[k], 1);
	store_close(s);
	/* The log on disk is exactly what was acknowledged. */
	s = open_store(dir, 0);
	assert_int_equal(store_audit_size(s), MIXED / 2 + 1);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- idempotency */

static void
test_idempotency(void **state)
{
	char *dir, err[128];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	uint8_t hash[32], got[32];
	store_job_t *j;
	store_result_t res;
	store_record_t rec;
	buf_t body = BUF_INIT;
	audit_entry_t e = entry("collect", "NFK-2", AUDIT_VERSION_ASSIGNED);
	const char *answer = "{\"id\":\"NFK-2\",\"version\":1}";
	int status;
	int k;

	(void)state;
	memset(hash, 0xab, sizeof(hash));
	for (k = 0; k < 2; k++) {
		j = store_job_new();
		assert_int_equal(store_job_idempotency(j, "urn:visor:norfolk:"
		    "agency:police", "key-1", hash, 201, answer,
		    strlen(answer), 0), 0);
		assert_int_equal(store_job_put_record(j, "NFK-2",
		    STORE_VERSION_ANY, 1, 1, AREA, "{\"a\":1}", 7, "urn:a",
		    NULL), 0);
		assert_int_equal(store_job_audit(j, &e), 0);
		res = store_submit_wait(s, j);
		assert_int_equal(res.status, k == 0 ? STORE_OK : STORE_IDEM_EXISTS);
	}
	/* The replay changed nothing. */
	assert_int_equal(store_audit_size(s), 1);
	assert_int_equal(store_record_get(r, "NFK-2", &rec), 0);
	assert_int_equal(rec.version, 1);
	buf_free(&rec.json);
	assert_int_equal(store_idem_get(r, "urn:visor:norfolk:agency:police",
	    "key-1", got, &status, &body), 0);
	assert_memory_equal(got, hash, 32);
	assert_int_equal(status, 201);
	assert_string_equal(body.data, "{\"id\":\"NFK-2\",\"version\":1}");
	assert_int_equal(store_idem_get(r, "urn:other", "key-1", got, &status,
	    &body), 1);
	/* The request hash and the status are clear columns: edited at rest
	 * (no key needed), the answer no longer opens, so a replay cannot
	 * be made to answer another request, or with another status. */
	{
		static const char *const edits[] = {
			"UPDATE idempotency SET status = 200",
			"UPDATE idempotency SET req_hash = zeroblob(32)",
		};
		static const char *const undo[] = {
			"UPDATE idempotency SET status = 201",
			"UPDATE idempotency SET req_hash = X'"
			    "ABABABABABABABABABABABABABABABAB"
			    "ABABABABABABABABABABABABABABABAB'",
		};
		unsigned char key[KEYFILE_AEAD_KEY_LEN];
		char p[600], aad[64];
		size_t aadlen;
		buf_t sealed = BUF_INIT;
		sqlite3 *db;
		sqlite3_stmt *st;
		size_t i;

		snprintf(p, sizeof(p), "%s/store.db", dir);
		assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
		sqlite3_busy_timeout(db, 5000);
		for (i = 0; i < 2; i++) {
			assert_int_equal(sqlite3_exec(db, edits[i], NULL, NULL,
			    NULL), SQLITE_OK);
			buf_reset(&body);
			assert_int_equal(store_idem_get(r, "urn:visor:norfolk:"
			    "agency:police", "key-1", got, &status, &body), -1);
			assert_int_equal(sqlite3_exec(db, undo[i], NULL, NULL,
			    NULL), SQLITE_OK);
			buf_reset(&body);
			assert_int_equal(store_idem_get(r, "urn:visor:norfolk:"
			    "agency:police", "key-1", got, &status, &body), 0);
		}
		/* A row an earlier version wrote (only scope and key bound)
		 * still replays. */
		snprintf(p, sizeof(p), "%s/store.key", dir);
		assert_int_equal(keyfile_load_aead(p, key, err, sizeof(err)), 0);
		aadlen = store_int_label_aad("idem", "urn:a", "old-key", aad,
		    sizeof(aad));
		assert_true(aadlen > 0);
		assert_int_equal(aead_seal(key, aad, aadlen, answer,
		    strlen(answer), &sealed), 0);
		assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO idempotency"
		    " VALUES ('urn:a', 'old-key', ?1, 200, ?2, 'x', NULL)", -1, &st,
		    NULL), SQLITE_OK);
		sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, sealed.data, (int)sealed.len,
		    SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
		buf_reset(&body);
		assert_int_equal(store_idem_get(r, "urn:a", "old-key", got,
		    &status, &body), 0);
		assert_int_equal(status, 200);
		assert_string_equal(body.data, answer);
		memset(key, 0, sizeof(key));
		buf_free(&sealed);
		sqlite3_close(db);
	}
	/* A stale answer (the record moved on) is replaced by the same
	 * request's new one; another request's answer under the key is not,
	 * and a job refused after the replacement leaves the old one. */
	{
		const char *answer2 = "{\"id\":\"NFK-2\",\"version\":3}";
		uint8_t other[32];

		memset(other, 0xcd, sizeof(other));
		/* Another write: the key's answer (version 1) is stale. */
		assert_int_equal(put(s, "NFK-2", STORE_VERSION_ANY,
		    "{\"a\":9}").status, STORE_OK);
		j = store_job_new();
		assert_int_equal(store_job_idempotency(j, "urn:visor:norfolk:"
		    "agency:police", "key-1", other, 201, answer2,
		    strlen(answer2), 1), 0);
		assert_int_equal(store_submit_wait(s, j).status,
		    STORE_IDEM_EXISTS);
		j = store_job_new();
		assert_int_equal(store_job_idempotency(j, "urn:visor:norfolk:"
		    "agency:police", "key-1", hash, 201, answer2,
		    strlen(answer2), 1), 0);
		assert_int_equal(store_job_put_record(j, "NFK-2", 7, 1, 1, AREA,
		    "{\"a\":2}", 7, "urn:a", NULL), 0);
		assert_int_equal(store_submit_wait(s, j).status, STORE_CONFLICT);
		buf_reset(&body);
		assert_int_equal(store_idem_get(r, "urn:visor:norfolk:agency:"
		    "police", "key-1", got, &status, &body), 0);
		assert_string_equal(body.data, answer);
		j = store_job_new();
		assert_int_equal(store_job_idempotency(j, "urn:visor:norfolk:"
		    "agency:police", "key-1", hash, 200, answer2,
		    strlen(answer2), 1), 0);
		assert_int_equal(store_job_put_record(j, "NFK-2",
		    STORE_VERSION_ANY, 1, 1, AREA, "{\"a\":2}", 7, "urn:a",
		    NULL), 0);
		assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
		buf_reset(&body);
		assert_int_equal(store_idem_get(r, "urn:visor:norfolk:agency:"
		    "police", "key-1", got, &status, &body), 0);
		assert_memory_equal(got, hash, 32);
		assert_int_equal(status, 200);
		assert_string_equal(body.data, answer2);
	}
	/* Two retries of one request, both found stale on the route's
	 * read (another write moved the record to 4 before either came to
	 * the writer): the first replaces the answer with a current one
	 * (version 5), and the second must then meet that answer as it
	 * would any raced key, not delete it and write again. */
	{
		const char *answer4 = "{\"id\":\"NFK-2\",\"version\":5}";
		const char *answer5 = "{\"id\":\"NFK-2\",\"version\":6}";

		assert_int_equal(put(s, "NFK-2", STORE_VERSION_ANY,
		    "{\"a\":3}").status, STORE_OK);
		j = store_job_new();
		assert_int_equal(store_job_idempotency(j, "urn:visor:norfolk:"
		    "agency:police", "key-1", hash, 200, answer4,
		    strlen(answer4), 1), 0);
		assert_int_equal(store_job_put_record(j, "NFK-2",
		    STORE_VERSION_ANY, 1, 1, AREA, "{\"a\":2}", 7, "urn:a",
		    NULL), 0);
		assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
		j = store_job_new();
		assert_int_equal(store_job_idempotency(j, "urn:visor:norfolk:"
		    "agency:police", "key-1", hash, 200, answer5,
		    strlen(answer5), 1), 0);
		assert_int_equal(store_job_put_record(j, "NFK-2",
		    STORE_VERSION_ANY, 1, 1, AREA, "{\"a\":2}", 7, "urn:a",
		    NULL), 0);
		assert_int_equal(store_submit_wait(s, j).status,
		    STORE_IDEM_EXISTS);
		assert_int_equal(store_record_get(r, "NFK-2", &rec), 0);
		assert_int_equal(rec.version, 5);
		buf_free(&rec.json);
		buf_reset(&body);
		assert_int_equal(store_idem_get(r, "urn:visor:norfolk:agency:"
		    "police", "key-1", got, &status, &body), 0);
		assert_string_equal(body.data, answer4);
	}
	/* Idempotency must be the first operation. */
	j = store_job_new();
	assert_int_equal(store_job_audit(j, &e), 0);
	assert_int_equal(store_job_idempotency(j, "u", "k", hash, 200, "", 0,
	    0), -1);
	store_job_free(j);
	j = store_job_new();
	assert_int_equal(store_job_idempotency(j, "u", "k", hash, 42, "", 0,
	    0), -1);
	store_job_free(j);

	buf_free(&body);
	store_reader_free(r);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* Idempotency keys are kept for their retries, not for ever: once older
 * than the store keeps them (here 1 s) a sweep in a later group commit
 * drops them, and a newer one stays.  Before, the table only grew. */
static void
test_idempotency_retention(void **state)
{
	char *dir = new_dir(), err[256];
	buf_t vk = BUF_INIT, body = BUF_INIT;
	store_options_t o;
	store_t *s;
	store_reader_t *r;
	store_job_t *j;
	audit_entry_t e = entry("consult", "NFK-9", 1);
	uint8_t hash[32], got[32];
	int status, i;

	(void)state;
	assert_int_equal(store_init_keys(dir, AREA, &vk, err, sizeof(err)), 0);
	buf_free(&vk);
	memset(&o, 0, sizeof(o));
	o.data_dir = dir;
	o.area = AREA;
	o.checkpoint_interval_ms = 20;
	o.idem_keep_ms = 1000;
	s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	memset(hash, 0x11, sizeof(hash));
	j = store_job_new();
	assert_int_equal(store_job_idempotency(j, "urn:a", "old", hash, 202,
	    "{}", 2, 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	usleep(1300000);
	j = store_job_new();
	assert_int_equal(store_job_idempotency(j, "urn:a", "new", hash, 202,
	    "{}", 2, 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	/* That commit swept (the last sweep, at the first, is over 1 s
	 * old); should another have come between, a few more commits. */
	for (i = 0; i < 20 && store_idem_get(r, "urn:a", "old", got,
	    &status, &body) == 0; i++) {
		buf_reset(&body);
		usleep(20000);
		j = store_job_new();
		assert_int_equal(store_job_audit(j, &e), 0);
		assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	}
	buf_reset(&body);
	assert_int_equal(store_idem_get(r, "urn:a", "old", got, &status,
	    &body), 1);
	buf_reset(&body);
	assert_int_equal(store_idem_get(r, "urn:a", "new", got, &status,
	    &body), 0);
	assert_int_equal(status, 202);
	store_reader_free(r);
	store_close(s);

	/* A backlog (a table from before the sweep, or a burst of keyed
	 * writes beyond its share) is not left for a share a minute: a
	 * sweep that took a full share sweeps again at the next commit. */
	{
		char p[1024];
		sqlite3 *db;
		sqlite3_stmt *st;
		int n = -1;

		snprintf(p, sizeof(p), "%s/store.db", dir);
		assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "WITH RECURSIVE c(i) AS "
		    "(SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2500) "
		    "INSERT INTO idempotency(scope, key, req_hash, status, body,"
		    " time) SELECT 'urn:a', 'k' || i, zeroblob(32), 200, x'00',"
		    " '2001-01-01T00:00:00.000Z' FROM c", NULL, NULL, NULL),
		    SQLITE_OK);
		sqlite3_close(db);
		o.idem_keep_ms = 3600 * 1000;	/* swept once a minute */
		s = store_open(&o, err, sizeof(err));
		assert_non_null(s);
		for (i = 0; i < 4; i++) {
			j = store_job_new();
			assert_int_equal(store_job_audit(j, &e), 0);
			assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
		}
		assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM "
		    "idempotency WHERE time < '2002'", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		sqlite3_close(db);
		assert_int_equal(n, 0);
		store_close(s);
	}
	buf_free(&body);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- audit log, proofs and checkpoints */

/* Wait (bounded) until the latest checkpoint covers want leaves; returns the
 * verified size and root. */
static void
latest_checkpoint(store_reader_t *r, uint64_t want, uint64_t *size,
    merkle_hash_t root)
{
	note_verifier_t *v;
	buf_t note = BUF_INIT;
	size_t body_len;
	char err[160];
	int tries;

	v = note_verifier_parse(vkey_line, strlen(vkey_line), err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(note_verifier_name(v), "visor." AREA "/audit");
	for (tries = 0; tries < 500; tries++) {
		buf_reset(&note);
		if (store_checkpoint_latest(r, &note) == 0) {
			assert_int_equal(note_open(v, note.data, note.len,
			    &body_len, err, sizeof(err)), 0);
			assert_int_equal(checkpoint_parse(note.data, body_len,
			    "visor." AREA "/audit", size, root, err,
			    sizeof(err)), 0);
			if (*size >= want)
				break;
		}
		usleep(10000);
	}
	assert_true(*size >= want);
	buf_free(&note);
	note_verifier_free(v);
}

typedef struct {
	uint64_t next;
	int count;
	buf_t first;
} collect_t;

static int
collect_leaf(void *ctx, uint64_t index, const void *leaf, size_t len)
{
	collect_t *c = ctx;

	assert_int_equal(index, c->next);
	c->next++;
	c->count++;
	if (c->first.len == 0)
		buf_append(&c->first, leaf, len);
	return 0;
}

static int
count_hits(void *ctx, uint64_t index, const void *leaf, size_t len)
{
	(void)index;
	(void)leaf;
	(void)len;
	(*(int *)ctx)++;
	return 0;
}

/* The index of each hit, for paging. */
static int
last_hit(void *ctx, uint64_t index, const void *leaf, size_t len)
{
	uint64_t *last = ctx;

	(void)leaf;
	(void)len;
	if (last[1] > 0 && index <= last[0])
		return -1;	/* out of order */
	last[0] = index;
	last[1]++;
	return 0;
}

static void
test_audit_log(void **state)
{
	char *dir, err[160];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	store_result_t res;
	store_job_t *j;
	buf_t leaf = BUF_INIT, want = BUF_INIT;
	merkle_hash_t root, proof[MERKLE_MAX_PROOF], lh, root_m;
	uint64_t size, i, m;
	size_t n;
	audit_entry_t e;
	cJSON *parsed;
	store_audit_query_t q;
	collect_t c;
	int hits, k;

	(void)state;
	assert_string_equal(store_origin(s), "visor." AREA "/audit");
	/* Two entries in one job: consecutive seqs, the version resolved. */
	j = store_job_new();
	e = entry("collect", "NFK-3", AUDIT_VERSION_ASSIGNED);
	assert_int_equal(store_job_put_record(j, "NFK-3", STORE_VERSION_ABSENT,
	    1, 1, AREA, "{}", 2, "urn:a", NULL), 0);
	assert_int_equal(store_job_audit(j, &e), 0);
	e.op = "disclose";
	assert_int_equal(store_job_audit(j, &e), 0);
	res = store_submit_wait(s, j);
	assert_int_equal(res.status, STORE_OK);
	assert_int_equal(res.audit_index, 0);
	assert_int_equal(res.audit_size, 2);

	/* Leaf bytes are exactly the encoding with the assigned seq/time. */
	assert_int_equal(store_audit_leaf(r, 1, &leaf), 0);
	parsed = json_parse_strict(leaf.data, leaf.len, 8, err, sizeof(err));
	assert_non_null(parsed);
	e.op = "disclose";
	assert_int_equal(audit_entry_encode(&e, 1, json_get_str(parsed, "time"),
	    1, &want), 0);
	assert_int_equal(leaf.len, want.len);
	assert_memory_equal(leaf.data, want.data, want.len);
	cJSON_Delete(parsed);
	assert_int_equal(store_audit_leaf(r, 2, &leaf), 1);

	for (k = 0; k < 40; k++) {
		res = audit_only(s, k % 2 ? "consult" : "deny",
		    k % 3 ? "NFK-4" : "NFK-5");
		assert_int_equal(res.status, STORE_OK);
		assert_int_equal(res.audit_index, 2 + (uint64_t)k);
	}
	assert_int_equal(store_audit_size(s), 42);

	/* A checkpoint covering everything comes within the interval. */
	latest_checkpoint(r, 42, &size, root);
	assert_int_equal(size, 42);
	assert_true(store_checkpoint_age_ms(s) >= 0);
	for (i = 0; i < size; i++) {
		buf_reset(&leaf);
		assert_int_equal(store_audit_leaf(r, i, &leaf), 0);
		merkle_leaf_hash(leaf.data, leaf.len, lh);
		assert_int_equal(store_audit_inclusion(r, i, size, proof, &n), 0);
		assert_int_equal(merkle_verify_inclusion(i, size, lh, proof, n,
		    root), 0);
		/* A wrong leaf fails. */
		lh[0] ^= 1;
		assert_int_equal(merkle_verify_inclusion(i, size, lh, proof, n,
		    root), -1);
	}
	for (m = 1; m <= size; m++) {
		assert_int_equal(store_audit_inclusion(r, 0, m, proof, &n), 0);
		/* Root at m from the frontier of the first m leaf hashes. */
		{
			merkle_frontier_t f;

			merkle_frontier_init(&f);
			for (i = 0; i < m; i++) {
				buf_reset(&leaf);
				assert_int_equal(store_audit_leaf(r, i, &leaf), 0);
				merkle_leaf_hash(leaf.data, leaf.len, lh);
				assert_int_equal(merkle_frontier_append(&f, lh,
				    NULL, NULL), 0);
			}
			merkle_frontier_root(&f, root_m);
		}
		assert_int_equal(store_audit_consistency(r, m, size, proof, &n),
		    0);
		assert_int_equal(merkle_verify_consistency(m, size, root_m, root,
		    proof, n), 0);
	}
	/* Out of range proofs are refused. */
	assert_int_equal(store_audit_inclusion(r, 42, 42, proof, &n), -1);
	assert_int_equal(store_audit_inclusion(r, 0, 43, proof, &n), -1);
	assert_int_equal(store_audit_consistency(r, 0, 42, proof, &n), -1);
	assert_int_equal(store_audit_consistency(r, 5, 43, proof, &n), -1);

	/* Entries and search. */
	memset(&c, 0, sizeof(c));
	c.next = 40;
	assert_int_equal(store_audit_entries(r, 40, 100, collect_leaf, &c), 0);
	assert_int_equal(c.count, 2);
	buf_free(&c.first);
	memset(&q, 0, sizeof(q));
	q.record = "NFK-5";
	hits = 0;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	assert_int_equal(hits, 14);
	/* The same in pages of 5, each from past the last hit: 14 in all,
	 * in order, whether in the record index or past its mark. */
	{
		uint64_t last[2] = { 0, 0 }, seen = 0;
		int pages = 0;

		q.limit = 5;
		q.from = 0;
		do {
			last[1] = 0;
			assert_int_equal(store_audit_search(r, &q, last_hit,
			    last), 0);
			seen += last[1];
			q.from = last[0] + 1;
			pages++;
		} while (last[1] == 5 && pages < 10);
		assert_int_equal(seen, 14);
		assert_int_equal(pages, 3);
		q.limit = 0;
		q.from = 0;
	}
	q.op = "deny";
	hits = 0;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	assert_int_equal(hits, 7);
	memset(&q, 0, sizeof(q));
	q.actor = "urn:visor:norfolk:agency:police";
	q.limit = 5;
	hits = 0;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	assert_int_equal(hits, 5);
	memset(&q, 0, sizeof(q));
	q.since = "2000-01-01";
	q.until = "2999-01-01T00:00:00Z";
	hits = 0;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	assert_int_equal(hits, 42);
	/* Bounded by the size the answer names: nothing at or past it,
	 * with or without a record (the record index's own range too). */
	q.bounded = 1;
	q.below = 30;
	hits = 0;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	assert_int_equal(hits, 30);
	q.record = "NFK-5";
	{
		uint64_t last[2] = { 0, 0 };

		assert_int_equal(store_audit_search(r, &q, last_hit, last), 0);
		assert_true(last[1] > 0 && last[1] < 14);
		assert_true(last[0] < 30);
	}
	q.record = NULL;
	q.bounded = 0;
	q.until = "2000-01-02T00:00:00.5Z";
	hits = 0;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	assert_int_equal(hits, 0);
	q.until = "yesterday";
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), STORE_BAD_QUERY);
	q.until = "2026-02-30";
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), STORE_BAD_QUERY);
	q.until = "2026-02-03T10:00:00+01:00";
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), STORE_BAD_QUERY);
	q.until = NULL;
	q.op = "an-op-name-longer-than-any-op-there-is";
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), STORE_BAD_QUERY);
	q.op = NULL;

	buf_free(&leaf);
	buf_free(&want);
	store_reader_free(r);
	store_close(s);

	/* Reopening passes the start-up check and continues the sequence. */
	s = open_store(dir, 0);
	assert_int_equal(store_audit_size(s), 42);
	assert_int_equal(audit_only(s, "consult", "NFK-4").audit_index, 42);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- start: the data key must be the store's */

/* store.key replaced by another key: the store refuses to start, naming
 * the key file, rather than serve records and transfers that do not open.
 * A store made before the check (no key_check row) is checked against a
 * stored record, and gets its row on the first start with the right key. */
static void
test_wrong_data_key(void **state)
{
	char *dir, key[512], good[512], p[512], err[512];
	store_t *s = new_store(&dir, 0);
	sqlite3 *db;

	(void)state;
	assert_int_equal(put(s, "NFK-K1", STORE_VERSION_ABSENT,
	    "{\"id\":\"NFK-K1\"}").status, STORE_OK);
	store_close(s);
	snprintf(key, sizeof(key), "%s/store.key", dir);
	snprintf(good, sizeof(good), "%s/store.key.good", dir);
	snprintf(p, sizeof(p), "%s/store.db", dir);
	assert_int_equal(rename(key, good), 0);
	assert_int_equal(keyfile_create_aead(key), 0);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "store.key does not open this store"));
	/* Without the key_check row, the stored record tells. */
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM key_check", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "store.key does not open this store"));
	/* The right key back: it opens, and the row is there again. */
	assert_int_equal(rename(good, key), 0);
	s = open_store(dir, 0);
	store_close(s);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	{
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM"
		    " key_check", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 1);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- start: the log is made durable before anything is signed over it */

/* A reader elsewhere (an operator's sqlite3) holding an older snapshot
 * while the gateway starts: the WAL frames past its snapshot cannot be
 * copied back, so they are not synced either, and the store refuses to
 * start rather than sign over them.  Once the reader is gone, it starts. */
static void
test_start_with_pinned_reader(void **state)
{
	char *dir, p[512], err[256];
	store_t *s = new_store(&dir, 0);
	store_options_t o;
	sqlite3 *db;
	sqlite3_stmt *st;

	(void)state;
	assert_int_equal(put(s, "NFK-P1", STORE_VERSION_ABSENT, "{}").status,
	    STORE_OK);
	snprintf(p, sizeof(p), "%s/store.db", dir);
	assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM"
	    " audit_leaves", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(put(s, "NFK-P2", STORE_VERSION_ABSENT, "{}").status,
	    STORE_OK);
	store_close(s);
	memset(&o, 0, sizeof(o));
	o.data_dir = dir;
	o.area = AREA;
	o.busy_timeout_ms = 200;
	s = store_open(&o, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "nothing else has the store open"));
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	s = store_open(&o, err, sizeof(err));
	if (s == NULL)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_audit_size(s), 2);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- an entry the auditors' tools could not read is never written:
 * made shorter with schema paths, or refused */

static void
test_audit_entry_size(void **state)
{
	char *dir;
	store_t *s = new_store(&dir, 0);
	static char names[4000][32];
	const char *f[4000];
	audit_entry_t e = entry("consult", "NFK-BIG", 1);
	store_job_t *j;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < 4000; i++) {
		snprintf(names[i], sizeof(names[i]), "intelligence[%zu].text", i);
		f[i] = names[i];
	}
	/* About 40 KB of withheld paths: written, and read back whole. */
	e.withheld = f;
	e.n_withheld = 1600;
	j = store_job_new();
	assert_int_equal(store_job_audit(j, &e), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(store_audit_size(s), 1);
	/* About 100 KB: over what verify, export and search read (64 KiB),
	 * so written with the schema path instead. */
	e.n_withheld = 4000;
	j = store_job_new();
	assert_int_equal(store_job_audit(j, &e), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(store_audit_size(s), 2);
	{
		store_reader_t *r = store_reader_new(s, err, sizeof(err));
		buf_t leaf = BUF_INIT;

		assert_non_null(r);
		assert_int_equal(store_audit_leaf(r, 1, &leaf), 0);
		assert_true(leaf.len < 1024);
		assert_non_null(strstr(leaf.data,
		    "\"withheld\":[\"intelligence[].text\"]"));
		buf_free(&leaf);
		store_reader_free(r);
	}
	/* 4000 distinct paths that no schema path covers: still over, so
	 * refused when the job is built, and nothing reaches the log. */
	for (i = 0; i < 4000; i++)
		snprintf(names[i], sizeof(names[i]), "field%04zu.text", i);
	j = store_job_new();
	assert_int_equal(store_job_audit(j, &e), -1);
	assert_int_equal(store_submit_wait(s, j).status, STORE_FAILED);
	assert_int_equal(store_audit_size(s), 2);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- encryption at rest */

/* Does any file of dir hold needle (n bytes)?  With must_read every file
 * must be readable; otherwise files that vanish are skipped.  *files (if
 * not NULL) gets how many were read. */
static int
dir_holds(const char *dir, const unsigned char *needle, size_t n,
    int must_read, int *files)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512], *data;
	size_t len;
	int found = 0, nread = 0, rc;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		rc = file_read_all(p, 256 << 20, &data, &len);
		if (must_read)
			assert_int_equal(rc, 0);
		if (rc < 0)
			continue;
		found |= memmem(data, len, needle, n) != NULL;
		free(data);
		nread++;
	}
	closedir(d);
	if (files != NULL)
		*files = nread;
	return found;
}

static void
assert_absent_everywhere(const char *dir, const char *needle)
{
	int files;

	assert_false(dir_holds(dir, (const unsigned char *)needle,
	    strlen(needle), 1, &files));
	assert_true(files >= 3);
}

static void
test_encryption_at_rest(void **state)
{
	char *dir, err[128], json[256];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	store_record_t rec;
	store_job_t *j;
	uint8_t hash[32] = { 0 };
	struct stat sb;
	char p[512];

	(void)state;
	snprintf(json, sizeof(json), "{\"person\":{\"surname\":\"%s\"}}",
	    SURNAME);
	j = store_job_new();
	assert_int_equal(store_job_idempotency(j, "urn:a", "k", hash, 200,
	    json, strlen(json), 0), 0);
	assert_int_equal(store_job_put_record(j, "NFK-6", STORE_VERSION_ABSENT,
	    1, 1, AREA, json, strlen(json), "urn:a", NULL), 0);
	assert_int_equal(store_job_outbox_add(j, "T-6", "NFK-6", "suffolk",
	    "offender-move", "urn:a", json, strlen(json), 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(store_record_get(r, "NFK-6", &rec), 0);
	assert_non_null(strstr(rec.json.data, SURNAME));
	buf_free(&rec.json);
	/* While open (WAL and shared memory present) and after closing. */
	assert_absent_everywhere(dir, SURNAME);
	store_reader_free(r);
	store_close(s);
	assert_absent_everywhere(dir, SURNAME);
	/* The database is private. */
	snprintf(p, sizeof(p), "%s/store.db", dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- erasure leaves no ciphertext behind */

static void
test_erase_destroys_ciphertext(void **state)
{
	char *dir, p[512], *data;
	store_t *s = new_store(&dir, 0);
	store_job_t *j;
	sqlite3 *db;
	sqlite3_stmt *st;
	unsigned char ct[2][48], pt[2][48];
	uint64_t size0;
	char big[6000];
	size_t len;
	int v;

	(void)state;
	/* One small version and one that spills to an overflow page. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "{\"x\":\"", 6);
	memcpy(big + sizeof(big) - 3, "\"}", 3);
	assert_int_equal(put(s, "NFK-E", STORE_VERSION_ABSENT, "{\"x\":\"a "
	    "small record of about a hundred bytes of JSON text for the "
	    "erasure test\"}").status, STORE_OK);
	assert_int_equal(put(s, "NFK-E", 1, big).status, STORE_OK);
	snprintf(p, sizeof(p), "%s/store.db", dir);
	assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	for (v = 1; v <= 2; v++) {
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT content FROM"
		    " record_versions WHERE id = 'NFK-E' AND version = ?1", -1,
		    &st, NULL), SQLITE_OK);
		sqlite3_bind_int(st, 1, v);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_true(sqlite3_column_bytes(st, 0) > 48 + 16);
		/* A stretch of ciphertext from after the nonce. */
		memcpy(ct[v - 1], (const unsigned char *)
		    sqlite3_column_blob(st, 0) + 16, 48);
		sqlite3_finalize(st);
	}
	/* Two transfers of it: one delivered, one still queued.  Each keeps
	 * the sealed record as its payload. */
	j = store_job_new();
	assert_int_equal(store_job_outbox_add(j, "T-E1", "NFK-E", "suffolk",
	    "offender-move", "urn:a", big, sizeof(big) - 1, 0), 0);
	assert_int_equal(store_job_outbox_add(j, "T-E2", "NFK-E", "suffolk",
	    "offender-move", "urn:a", big, sizeof(big) - 1, 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	j = store_job_new();
	assert_int_equal(store_job_outbox_update(j, "T-E2", "delivered", 1, 0,
	    "{}", 2), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	for (v = 1; v <= 2; v++) {
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT payload FROM"
		    " outbox WHERE transfer_id = ?1", -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_text(st, 1, v == 1 ? "T-E1" : "T-E2", -1,
		    SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_true(sqlite3_column_bytes(st, 0) > 48 + 16);
		memcpy(pt[v - 1], (const unsigned char *)
		    sqlite3_column_blob(st, 0) + 16, 48);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	size0 = store_audit_size(s);
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-E", STORE_VERSION_ANY,
	    "urn:a"), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	/* The cancelled transfer's course ends in the log: one transfer-out
	 * entry, failed for the erasure, by who erased (the job itself had
	 * no entry of its own here). */
	assert_int_equal(store_audit_size(s), size0 + 1);
	{
		store_reader_t *r = store_reader_new(s, NULL, 0);
		store_transfer_t t;
		buf_t l = BUF_INIT;
		size_t n = 9;

		assert_non_null(r);
		assert_int_equal(store_audit_leaf(r, size0, &l), 0);
		assert_non_null(strstr(l.data, "\"op\":\"transfer-out\""));
		assert_non_null(strstr(l.data, "\"transfer\":\"T-E1\""));
		assert_non_null(strstr(l.data, "\"reason\":\"record-erased\""));
		assert_non_null(strstr(l.data, "\"id\":\"urn:a\""));
		buf_free(&l);
		/* The queued transfer is cancelled, the delivered one stays
		 * so; a delivery in flight cannot queue it again, and the
		 * erased record cannot be queued anew. */
		assert_int_equal(store_transfer_get(r, "T-E1", &t), 0);
		assert_string_equal(t.status, "failed");
		buf_free(&t.payload);
		buf_free(&t.receipt);
		assert_int_equal(store_transfer_get(r, "T-E2", &t), 0);
		assert_string_equal(t.status, "delivered");
		buf_free(&t.payload);
		buf_free(&t.receipt);
		j = store_job_new();
		assert_int_equal(store_job_outbox_update(j, "T-E1", "queued", 1,
		    0, NULL, 0), 0);
		assert_int_equal(store_submit_wait(s, j).status, STORE_NOT_FOUND);
		/* Nor end it a second time (a deadline sweep that read it
		 * before the erasure): the outcome and its entry roll back. */
		j = store_job_new();
		assert_int_equal(store_job_outbox_update(j, "T-E1", "failed", 1,
		    0, NULL, 0), 0);
		{
			audit_entry_t fe = entry("transfer-out", "NFK-E", 1);

			fe.transfer = "T-E1";
			assert_int_equal(store_job_audit(j, &fe), 0);
		}
		assert_int_equal(store_submit_wait(s, j).status, STORE_NOT_FOUND);
		assert_int_equal(store_audit_size(s), size0 + 1);
		j = store_job_new();
		assert_int_equal(store_job_outbox_add(j, "T-E3", "NFK-E",
		    "suffolk", "offender-move", "urn:a", big, sizeof(big) - 1,
		    0), 0);
		assert_int_equal(store_submit_wait(s, j).status, STORE_NOT_FOUND);
		assert_int_equal(store_outbox_due(r, INT64_MAX, &t, 1, &n), 0);
		assert_int_equal(n, 0);
		store_reader_free(r);
	}
	store_close(s);		/* folds the WAL into the database */
	assert_int_equal(file_read_all(p, 256 << 20, &data, &len), 0);
	assert_null(memmem(data, len, ct[0], sizeof(ct[0])));
	assert_null(memmem(data, len, ct[1], sizeof(ct[1])));
	assert_null(memmem(data, len, pt[0], sizeof(pt[0])));
	assert_null(memmem(data, len, pt[1], sizeof(pt[1])));
	free(data);
	tmpdir_remove(dir);
	free(dir);
}

/* A stretch of the ciphertext of version v of record id (after the
 * nonce), read as someone with the file would. */
static void
sealed_stretch(const char *dir, const char *id, int v, unsigned char out[48])
{
	char p[512];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(p, sizeof(p), "%s/store.db", dir);
	assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT content FROM"
	    " record_versions WHERE id = ?1 AND version = ?2", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, v);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true(sqlite3_column_bytes(st, 0) > 48 + 16);
	memcpy(out, (const unsigned char *)sqlite3_column_blob(st, 0) + 16, 48);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Erasure is done when it is answered, not when the WAL next fills: no
 * file of the data directory of the running store (the WAL, and the
 * database file the WAL has not yet been copied back to) holds the
 * erased record's ciphertext. */
static void
test_erase_wipes_wal_while_open(void **state)
{
	char *dir, p[512], *data, json[3000];
	store_t *s = new_store(&dir, 0);
	store_job_t *j;
	unsigned char ct[3][48];
	const char *const files[] = { "store.db", "store.db-wal" };
	size_t len, f;
	int v, k;

	(void)state;
	/* Other records around it, so that its pages are shared and split. */
	for (k = 0; k < 40; k++) {
		char id[16];

		snprintf(id, sizeof(id), "NFK-O%d", k);
		snprintf(json, sizeof(json), "{\"x\":\"%0*d\"}",
		    100 + (k * 97) % 2500, k);
		assert_int_equal(put(s, id, STORE_VERSION_ABSENT, json).status,
		    STORE_OK);
		if (k == 20)
			for (v = 1; v <= 3; v++) {
				snprintf(json, sizeof(json),
				    "{\"x\":\"%0*d\"}", v == 2 ? 2500 : 60,
				    v);
				assert_int_equal(put(s, "NFK-W", v == 1 ?
				    STORE_VERSION_ABSENT : (uint64_t)(v - 1),
				    json).status, STORE_OK);
			}
	}
	for (v = 1; v <= 3; v++)
		sealed_stretch(dir, "NFK-W", v, ct[v - 1]);
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-W", STORE_VERSION_ANY,
	    "urn:a"), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[f]);
		if (file_read_all(p, 256 << 20, &data, &len) < 0) {
			assert_int_equal(errno, ENOENT);
			continue;
		}
		for (v = 0; v < 3; v++)
			if (memmem(data, len, ct[v], sizeof(ct[v])) != NULL)
				fail_msg("%s holds version %d of the erased "
				    "record", files[f], v + 1);
		free(data);
	}
	/* The record lives on for others, and the store goes on. */
	assert_int_equal(put(s, "NFK-O1", 1, "{\"x\":\"after\"}").status,
	    STORE_OK);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* A reader that holds an old snapshot (a backup being copied) keeps the
 * WAL from being emptied: the erasure is still answered, and its old
 * frames go once the reader is done, without another write. */
static void
test_erase_wipes_wal_after_reader(void **state)
{
	char *dir, p[512];
	store_t *s = new_store(&dir, 0);
	store_job_t *j;
	sqlite3 *db;
	sqlite3_stmt *st;
	unsigned char ct[48];
	int k;

	(void)state;
	assert_int_equal(put(s, "NFK-R1", STORE_VERSION_ABSENT, "{\"x\":\"a "
	    "record whose ciphertext a reader's snapshot keeps in the WAL "
	    "for a while\"}").status, STORE_OK);
	sealed_stretch(dir, "NFK-R1", 1, ct);
	snprintf(p, sizeof(p), "%s/store.db", dir);
	assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM records",
	    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	sqlite3_finalize(st);
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-R1", STORE_VERSION_ANY,
	    "urn:a"), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_true(dir_holds(dir, ct, sizeof(ct), 0, NULL));
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	for (k = 0; k < 100 && dir_holds(dir, ct, sizeof(ct), 0, NULL); k++)
		usleep(50 * 1000);
	assert_false(dir_holds(dir, ct, sizeof(ct), 0, NULL));
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- tampering is caught at start */

static char *
store_with_entries(int n)
{
	char *dir;
	store_t *s = new_store(&dir, 0);
	int k;

	for (k = 0; k < n; k++)
		assert_int_equal(audit_only(s, "consult", "NFK-7").status,
		    STORE_OK);
	store_close(s);		/* signs the final checkpoint */
	return dir;
}

static sqlite3 *
attacker(const char *dir)
{
	char p[512];
	sqlite3 *db;

	snprintf(p, sizeof(p), "%s/store.db", dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	return db;
}

static void
exec_ok(sqlite3 *db, const char *sql)
{
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* ---- search by time: an index range found by binary search */

#define TS_N 24

/* The time column of every entry, read as an auditor would not: straight
 * from the table, to check search against. */
static void
entry_times(const char *dir, char t[][25], int n)
{
	sqlite3 *db = attacker(dir);
	sqlite3_stmt *st;
	int i = 0;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT time FROM audit_leaves"
	    " ORDER BY idx", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW && i < n) {
		snprintf(t[i], 25, "%s", (const char *)sqlite3_column_text(st, 0));
		i++;
	}
	assert_int_equal(i, n);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Every since/until pair drawn from the entries' own times (and one
 * before and after all of them) gives exactly the entries a scan gives. */
static void
check_time_ranges(const char *dir, char t[][25], int n)
{
	store_t *s = open_store(dir, 0);
	store_reader_t *r;
	store_audit_query_t q;
	const char *bounds[TS_N + 2];
	int a, b, i, hits, want;

	assert_non_null(r = store_reader_new(s, NULL, 0));
	bounds[0] = "2000-01-01";
	for (i = 0; i < n; i++)
		bounds[i + 1] = t[i];
	bounds[n + 1] = "2999-01-01";
	for (a = 0; a < n + 2; a++)
		for (b = 0; b < n + 2; b++) {
			memset(&q, 0, sizeof(q));
			q.since = bounds[a];
			q.until = bounds[b];
			want = 0;
			for (i = 0; i < n; i++) {
				char lo[25], hi[25];

				assert_int_equal(rfc3339_canonical(q.since,
				    lo), 0);
				assert_int_equal(rfc3339_canonical(q.until,
				    hi), 0);
				want += strcmp(t[i], lo) >= 0 && strcmp(t[i], hi) < 0;
			}
			hits = 0;
			assert_int_equal(store_audit_search(r, &q, count_hits,
			    &hits), 0);
			assert_int_equal(hits, want);
		}
	/* A time bound with another filter. */
	memset(&q, 0, sizeof(q));
	q.record = "NFK-8";
	q.since = t[n / 2];
	hits = 0;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	want = 0;
	for (i = 0; i < n; i++)
		want += i % 2 == 0 && strcmp(t[i], t[n / 2]) >= 0;
	assert_int_equal(hits, want);
	store_reader_free(r);
	store_close(s);
}

static char *
store_with_timed_entries(char t[][25])
{
	char *dir;
	store_t *s = new_store(&dir, 0);
	int k;

	/* Batches a few milliseconds apart: distinct times, some shared. */
	for (k = 0; k < TS_N; k++) {
		assert_int_equal(audit_only(s, k % 3 == 0 ? "collect" : "consult",
		    k % 2 == 0 ? "NFK-8" : "NFK-9").status, STORE_OK);
		if (k % 2 == 1)
			usleep(3000);
	}
	store_close(s);
	entry_times(dir, t, TS_N);
	return dir;
}

static void
test_search_by_time(void **state)
{
	char t[TS_N][25], *dir;
	store_t *s;
	store_reader_t *r;
	store_audit_query_t q;
	int i, hits;

	(void)state;
	dir = store_with_timed_entries(t);
	for (i = 1; i < TS_N; i++)
		assert_true(strcmp(t[i - 1], t[i]) <= 0);
	check_time_ranges(dir, t, TS_N);
	/* op searches: the index leaves consult entries out; both work. */
	s = open_store(dir, 0);
	assert_non_null(r = store_reader_new(s, NULL, 0));
	memset(&q, 0, sizeof(q));
	q.op = "collect";
	hits = 0;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	assert_int_equal(hits, TS_N / 3);
	q.op = "consult";
	hits = 0;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	assert_int_equal(hits, TS_N - TS_N / 3);
	store_reader_free(r);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* The clock set back: new entries carry the newest time so far, never an
 * earlier one (here the newest entry's time is moved into the future, as
 * if the clock had been there when it was written). */
static void
test_time_never_decreases(void **state)
{
	char t[TS_N + 2][25], *dir;
	store_t *s;
	sqlite3 *db;
	int i;

	(void)state;
	dir = store_with_entries(3);
	db = attacker(dir);
	exec_ok(db, "UPDATE audit_leaves SET time = '2999-01-01T00:00:00.000Z'"
	    " WHERE idx = 2");
	sqlite3_close(db);
	s = open_store(dir, 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(audit_only(s, "consult", "NFK-1").status, STORE_OK);
	store_close(s);
	entry_times(dir, t, 6);
	for (i = 3; i < 6; i++)
		assert_string_equal(t[i], "2999-01-01T00:00:00.000Z");
	tmpdir_remove(dir);
	free(dir);
}

/* A schema-1 store (full op index, time index) is migrated on open: the
 * op index becomes the partial one and the time index goes, unless the
 * log's times once went back, in which case it stays and search uses it. */
static int
has_index(const char *dir, const char *name)
{
	sqlite3 *db = attacker(dir);
	sqlite3_stmt *st;
	int found;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master"
	    " WHERE type = 'index' AND name = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return found;
}

static void
make_schema_1(const char *dir)
{
	sqlite3 *db = attacker(dir);

	exec_ok(db, "DROP INDEX audit_by_op_rare;"
	    "CREATE INDEX audit_by_op ON audit_leaves(op);"
	    "CREATE INDEX audit_by_time ON audit_leaves(time);"
	    "PRAGMA user_version=1;");
	sqlite3_close(db);
}

static void
test_migrate_schema_1(void **state)
{
	char t[TS_N][25], *dir;
	store_t *s;
	sqlite3 *db;

	(void)state;
	dir = store_with_timed_entries(t);
	make_schema_1(dir);
	s = open_store(dir, 0);
	store_close(s);
	assert_false(has_index(dir, "audit_by_time"));
	assert_false(has_index(dir, "audit_by_op"));
	assert_true(has_index(dir, "audit_by_op_rare"));
	check_time_ranges(dir, t, TS_N);
	tmpdir_remove(dir);
	free(dir);

	/* Times that went back once: the time index stays, and search by
	 * time follows the column, as before. */
	dir = store_with_timed_entries(t);
	db = attacker(dir);
	exec_ok(db, "UPDATE audit_leaves SET time = '2001-01-01T00:00:00.000Z'"
	    " WHERE idx = 5");
	sqlite3_close(db);
	make_schema_1(dir);
	entry_times(dir, t, TS_N);
	s = open_store(dir, 0);
	store_close(s);
	assert_true(has_index(dir, "audit_by_time"));
	assert_true(has_index(dir, "audit_by_op_rare"));
	{
		store_reader_t *r;
		store_audit_query_t q;
		int hits = 0;

		s = open_store(dir, 0);
		assert_non_null(r = store_reader_new(s, NULL, 0));
		memset(&q, 0, sizeof(q));
		q.until = "2002-01-01";
		assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
		assert_int_equal(hits, 1);
		store_reader_free(r);
		store_close(s);
	}
	tmpdir_remove(dir);
	free(dir);
}

/* ---- the record index of the log: filled in bulk, never missing one */

static int
record_hits(store_t *s, const char *record, const char *op)
{
	store_reader_t *r = store_reader_new(s, NULL, 0);
	store_audit_query_t q;
	int hits = 0;

	assert_non_null(r);
	memset(&q, 0, sizeof(q));
	q.record = record;
	q.op = op;
	assert_int_equal(store_audit_search(r, &q, count_hits, &hits), 0);
	store_reader_free(r);
	return hits;
}

static sqlite3_int64
sql_int(const char *dir, const char *sql)
{
	sqlite3 *db = attacker(dir);
	sqlite3_stmt *st;
	sqlite3_int64 v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Search by record finds every entry whether the bulk fill has taken it
 * into the index yet or not, before and after each fill and across a
 * restart; the index holds exactly the entries below its mark. */
static void
test_record_index_lag(void **state)
{
	char *dir;
	store_t *s = new_store(&dir, 0);
	store_stats_t st;
	int i, a = 0, b = 0, alter = 0;

	(void)state;
	store_close(s);
	s = open_store_with(dir, 0, 5);
	for (i = 0; i < 23; i++) {
		const char *rec = i % 3 == 0 ? "NFK-A" : "NFK-B";

		assert_int_equal(audit_only(s, i == 7 ? "alter" : "consult",
		    rec).status, STORE_OK);
		if (i % 3 == 0)
			a++;
		else
			b++;
		alter += i == 7;
		assert_int_equal(record_hits(s, "NFK-A", NULL), a);
		assert_int_equal(record_hits(s, "NFK-B", NULL), b);
		assert_int_equal(record_hits(s, "NFK-C", NULL), 0);
		assert_int_equal(record_hits(s, "NFK-B", "alter"), alter);
	}
	assert_int_equal(audit_only(s, "consult", NULL).status, STORE_OK);
	store_stats(s, &st);
	assert_int_equal(st.index_fills, 4);	/* at 5, 10, 15, 20 entries */
	store_close(s);
	assert_int_equal(sql_int(dir, "SELECT n FROM counters"
	    " WHERE name = 'audit_indexed'"), 20);
	assert_int_equal(sql_int(dir, "SELECT count(*) FROM audit_records"), 20);
	assert_int_equal(sql_int(dir, "SELECT count(*) FROM audit_records r"
	    " JOIN audit_leaves l USING(idx) WHERE l.record = r.record"), 20);
	/* The entries past the mark are found after a restart too, and the
	 * next fill takes them (the one without a record stays out). */
	s = open_store_with(dir, 0, 2);
	assert_int_equal(record_hits(s, "NFK-A", NULL), a);
	assert_int_equal(record_hits(s, "NFK-B", NULL), b);
	assert_int_equal(audit_only(s, "consult", "NFK-A").status, STORE_OK);
	assert_int_equal(record_hits(s, "NFK-A", NULL), a + 1);
	assert_int_equal(record_hits(s, "NFK-B", NULL), b);
	store_close(s);
	assert_int_equal(sql_int(dir, "SELECT n FROM counters"
	    " WHERE name = 'audit_indexed'"), 25);
	assert_int_equal(sql_int(dir, "SELECT count(*) FROM audit_records"), 24);
	tmpdir_remove(dir);
	free(dir);
}

/* A schema-2 store (record index on the leaves) is migrated on open: the
 * index table is filled from the leaves, complete to the end of the log,
 * and the old index goes. */
static void
test_migrate_schema_2(void **state)
{
	char *dir = store_with_entries(9);
	store_t *s;
	sqlite3 *db;

	(void)state;
	db = attacker(dir);
	/* A schema-2 store's idempotency table has no record column (schema
	 * 4's, added before schema_sql indexes it). */
	exec_ok(db, "DROP TABLE audit_records;"
	    "DELETE FROM counters WHERE name = 'audit_indexed';"
	    "CREATE INDEX audit_by_record ON audit_leaves(record)"
	    " WHERE record IS NOT NULL;"
	    "DROP INDEX idempotency_record;"
	    "ALTER TABLE idempotency DROP COLUMN record;"
	    "PRAGMA user_version=2;");
	sqlite3_close(db);
	s = open_store(dir, 0);
	assert_int_equal(record_hits(s, "NFK-7", NULL), 9);
	assert_int_equal(audit_only(s, "consult", "NFK-7").status, STORE_OK);
	assert_int_equal(record_hits(s, "NFK-7", NULL), 10);
	store_close(s);
	assert_false(has_index(dir, "audit_by_record"));
	assert_int_equal(sql_int(dir, "PRAGMA user_version"), 5);
	assert_int_equal(sql_int(dir, "SELECT n FROM counters"
	    " WHERE name = 'audit_indexed'"), 9);
	assert_int_equal(sql_int(dir, "SELECT count(*) FROM audit_records"), 9);
	assert_int_equal(sql_int(dir, "SELECT count(*) FROM"
	    " pragma_table_info('idempotency') WHERE name = 'record'"), 1);
	assert_true(has_index(dir, "idempotency_record"));
	tmpdir_remove(dir);
	free(dir);
}

static const char *outbox_payload(const char *id);

/* A keyed write of id (expect as in put), answered by the writer. */
static store_result_t
keyed_put(store_t *s, const char *scope, const char *key, const char *id,
    uint64_t expect)
{
	store_job_t *j = store_job_new();
	audit_entry_t e = entry("collect", id, AUDIT_VERSION_ASSIGNED);
	uint8_t hash[32];

	memset(hash, key[0], sizeof(hash));
	assert_int_equal(store_job_idempotency_write(j, scope, key, hash, 201,
	    0), 0);
	assert_int_equal(store_job_put_record(j, id, expect, 1, 1, AREA,
	    "{}", 2, "urn:a", NULL), 0);
	assert_int_equal(store_job_audit(j, &e), 0);
	return store_submit_wait(s, j);
}

/* The answer kept for (scope, key), or "" if none. */
static void
idem_answer(store_reader_t *r, const char *scope, const char *key,
    char *out, size_t len, char *record, size_t rlen)
{
	uint8_t got[32];
	buf_t body = BUF_INIT;
	int status, rc;

	out[0] = '\0';
	rc = store_idem_get_record(r, scope, key, got, &status, &body, record,
	    rlen);
	assert_true(rc == 0 || rc == 1);
	if (rc == 0)
		snprintf(out, len, "%.*s", (int)body.len, body.data);
	buf_free(&body);
}

/*
 * A keyed write's answer names the version the write got when it ran.
 * The route used to put the version it foresaw on its read snapshot in
 * the answer (an absent record: 1); a create and an erasure of the id
 * committed before its job (here, before the job is even built) moved
 * the write to version 3, and a replay said 1.
 */
static void
test_idempotency_names_write_version(void **state)
{
	char *dir, err[128], ans[128], rec[80];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	store_job_t *j;
	uint8_t hash[32];

	(void)state;
	assert_non_null(r);
	assert_int_equal(put(s, "NFK-IV", STORE_VERSION_ABSENT, "{}").status,
	    STORE_OK);
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-IV", STORE_VERSION_ANY,
	    "urn:a"), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(keyed_put(s, "urn:a", "k-iv", "NFK-IV",
	    STORE_VERSION_ABSENT).version, 3);
	idem_answer(r, "urn:a", "k-iv", ans, sizeof(ans), rec, sizeof(rec));
	assert_string_equal(ans, "{\"id\":\"NFK-IV\",\"version\":3}");
	assert_string_equal(rec, "NFK-IV");
	/* A job that writes no record cannot name its version. */
	memset(hash, 1, sizeof(hash));
	j = store_job_new();
	assert_int_equal(store_job_idempotency_write(j, "urn:a", "k-none",
	    hash, 201, 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_FAILED);
	idem_answer(r, "urn:a", "k-none", ans, sizeof(ans), rec, sizeof(rec));
	assert_string_equal(ans, "");
	store_reader_free(r);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* An erasure deletes the keys of its record's writes and transfers, of
 * every caller, in its own commit; other records' keys stay. */
static void
test_erase_drops_idempotency(void **state)
{
	char *dir, err[128], ans[128], rec[80];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	store_job_t *j;
	audit_entry_t e = entry("transfer-out", "NFK-11", 1);
	const char *p = outbox_payload("T-ERA");
	uint8_t hash[32];

	(void)state;
	assert_non_null(r);
	assert_int_equal(keyed_put(s, "urn:a", "k-a", "NFK-11",
	    STORE_VERSION_ABSENT).status, STORE_OK);
	assert_int_equal(keyed_put(s, "urn:b", "k-b", "NFK-11",
	    STORE_VERSION_ANY).status, STORE_OK);
	assert_int_equal(keyed_put(s, "urn:a", "k-other", "NFK-12",
	    STORE_VERSION_ABSENT).status, STORE_OK);
	memset(hash, 7, sizeof(hash));
	j = store_job_new();
	e.transfer = "T-ERA";
	e.result = "queued";
	assert_int_equal(store_job_idempotency(j, "urn:a", "k-move", hash, 202,
	    "{}", 2, 0), 0);
	assert_int_equal(store_job_outbox_add(j, "T-ERA", "NFK-11", "suffolk",
	    "offender-move", "urn:a", p, strlen(p), 4102444800000LL), 0);
	assert_int_equal(store_job_audit(j, &e), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	idem_answer(r, "urn:a", "k-move", ans, sizeof(ans), rec, sizeof(rec));
	assert_string_equal(rec, "NFK-11");
	assert_int_equal(sql_int(dir, "SELECT count(*) FROM idempotency"), 4);

	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-11", STORE_VERSION_ANY,
	    "urn:a"), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(sql_int(dir, "SELECT count(*) FROM idempotency"
	    " WHERE record = 'NFK-11'"), 0);
	assert_int_equal(sql_int(dir, "SELECT count(*) FROM idempotency"), 1);
	idem_answer(r, "urn:a", "k-a", ans, sizeof(ans), rec, sizeof(rec));
	assert_string_equal(ans, "");
	idem_answer(r, "urn:a", "k-other", ans, sizeof(ans), rec, sizeof(rec));
	assert_string_equal(ans, "{\"id\":\"NFK-12\",\"version\":1}");
	/* The key is free again: a new write under it is a new request. */
	assert_int_equal(keyed_put(s, "urn:a", "k-a", "NFK-11",
	    STORE_VERSION_ABSENT).version, 4);
	store_reader_free(r);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* The store in dir as schema 3 left it: idempotency rows without
 * their record. */
static void
as_schema_3(const char *dir)
{
	sqlite3 *db = attacker(dir);

	exec_ok(db, "DROP INDEX idempotency_record;"
	    "ALTER TABLE idempotency DROP COLUMN record;"
	    "PRAGMA user_version=3;");
	sqlite3_close(db);
}

/* A schema-3 store (idempotency rows without their record) is migrated
 * on open: each row gets the record its answer names, or that of the
 * transfer it names; a row whose answer does not open keeps none. */
static void
test_migrate_schema_3(void **state)
{
	char *dir, err[128], ans[128], rec[80];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r;
	store_job_t *j;
	audit_entry_t e = entry("transfer-out", "NFK-11", 1);
	const char *p = outbox_payload("T-MIG");
	const char *moved = "{\"transfer_id\":\"T-MIG\",\"status\":\"queued\"}";
	uint8_t hash[32];
	sqlite3 *db;

	(void)state;
	assert_int_equal(keyed_put(s, "urn:a", "k-put", "NFK-M1",
	    STORE_VERSION_ABSENT).status, STORE_OK);
	assert_int_equal(put(s, "NFK-11", STORE_VERSION_ABSENT, "{}").status,
	    STORE_OK);
	memset(hash, 7, sizeof(hash));
	j = store_job_new();
	e.transfer = "T-MIG";
	e.result = "queued";
	assert_int_equal(store_job_idempotency(j, "urn:a", "k-move", hash, 202,
	    moved, strlen(moved), 0), 0);
	assert_int_equal(store_job_outbox_add(j, "T-MIG", "NFK-11", "suffolk",
	    "offender-move", "urn:a", p, strlen(p), 4102444800000LL), 0);
	assert_int_equal(store_job_audit(j, &e), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(keyed_put(s, "urn:a", "k-bad", "NFK-M2",
	    STORE_VERSION_ABSENT).status, STORE_OK);
	store_close(s);
	db = attacker(dir);
	exec_ok(db, "UPDATE idempotency SET body = zeroblob(40)"
	    " WHERE key = 'k-bad';");
	sqlite3_close(db);
	as_schema_3(dir);

	s = open_store(dir, 0);
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	idem_answer(r, "urn:a", "k-put", ans, sizeof(ans), rec, sizeof(rec));
	assert_string_equal(rec, "NFK-M1");
	idem_answer(r, "urn:a", "k-move", ans, sizeof(ans), rec, sizeof(rec));
	assert_string_equal(rec, "NFK-11");
	store_reader_free(r);
	store_close(s);
	assert_int_equal(sql_int(dir, "PRAGMA user_version"), 5);
	assert_int_equal(sql_int(dir, "SELECT count(*) FROM idempotency"
	    " WHERE key = 'k-bad' AND record IS NULL"), 1);
	assert_true(has_index(dir, "idempotency_record"));
	tmpdir_remove(dir);
	free(dir);
}

/* ---- witnessed checkpoints (schema 5) */

static store_result_t
witness_put(store_t *s, int64_t held, uint64_t size, const char *note)
{
	store_job_t *j = store_job_new();
	merkle_hash_t root;

	memset(root, (int)size, sizeof(root));
	(void)store_job_witness_put(j, "suffolk", held, size, root, note,
	    strlen(note));
	return store_submit_wait(s, j);
}

static int
count_witnessed(void *ctx, const store_witnessed_t *w)
{
	int *n = ctx;

	assert_string_equal(w->area, "suffolk");
	n[0]++;
	if (w->refused != NULL) {
		assert_int_equal(w->refused_len, 3);
		assert_memory_equal(w->refused, "bad", 3);
		n[1]++;
	}
	return 0;
}

/* A peer's checkpoint is held only in place of the one the caller checked
 * against: a first one once, then only a larger one replacing the size
 * held; a store of schema 4 gets the table on open. */
static void
test_witnessed_held(void **state)
{
	char *dir, err[256];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r;
	merkle_hash_t root;
	buf_t note = BUF_INIT;
	uint64_t size = 0;
	int n[2] = { 0, 0 };
	store_job_t *j;

	(void)state;
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(store_witness_get(r, "suffolk", &size, root, NULL,
	    NULL), 1);
	assert_int_equal(witness_put(s, -1, 5, "n5").status, STORE_OK);
	/* A second first one, or one replacing a size not held: refused. */
	assert_int_equal(witness_put(s, -1, 7, "n7").status, STORE_CONFLICT);
	assert_int_equal(witness_put(s, 3, 8, "n8").status, STORE_CONFLICT);
	/* Not larger than the one it replaces: refused by the builder. */
	assert_int_equal(witness_put(s, 5, 5, "n5b").status, STORE_FAILED);
	assert_int_equal(witness_put(s, 5, 4, "n4").status, STORE_FAILED);
	assert_int_equal(store_witness_get(r, "suffolk", &size, root, &note,
	    NULL), 0);
	assert_int_equal(size, 5);
	assert_int_equal(note.len, 2);
	assert_int_equal(witness_put(s, 5, 9, "n9").status, STORE_OK);
	buf_reset(&note);
	assert_int_equal(store_witness_get(r, "suffolk", &size, root, &note,
	    NULL), 0);
	assert_int_equal(size, 9);
	assert_memory_equal(note.data, "n9", 2);
	assert_int_equal(root[0], 9);
	assert_int_equal(store_witness_list(r, count_witnessed, n), 0);
	assert_int_equal(n[0], 1);
	assert_int_equal(n[1], 0);
	/* A refused note is kept beside it (nothing held: not found). */
	j = store_job_new();
	assert_int_equal(store_job_witness_refused(j, "suffolk", "bad", 3), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	j = store_job_new();
	assert_int_equal(store_job_witness_refused(j, "essex", "bad", 3), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_NOT_FOUND);
	n[0] = n[1] = 0;
	assert_int_equal(store_witness_list(r, count_witnessed, n), 0);
	assert_int_equal(n[0], 1);
	assert_int_equal(n[1], 1);
	store_reader_free(r);
	store_close(s);

	/* Schema 4: no table, which the open makes. */
	{
		sqlite3 *db = attacker(dir);

		exec_ok(db, "DROP TABLE witnessed; PRAGMA user_version=4;");
		sqlite3_close(db);
	}
	s = open_store(dir, 0);
	assert_int_equal(sql_int(dir, "PRAGMA user_version"), 5);
	assert_int_equal(witness_put(s, -1, 2, "n2").status, STORE_OK);
	store_close(s);
	buf_free(&note);
	tmpdir_remove(dir);
	free(dir);
}

/* A schema-3 store opened first with another store.key (a key file
 * replaced, or restored beside other data): the start is refused, and
 * the store stays at schema 3, so that the start with the right key fills
 * every row's record.  Before, the migration committed schema 4 with no
 * answer opened (every row without its record), and the key check
 * refused the start only after it: with the right key back, the rows
 * were never filled, and an erasure of their records left them. */
static void
test_migrate_schema_3_wrong_key(void **state)
{
	char *dir, err[512], key[512], good[512], ans[128], rec[80];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r;

	(void)state;
	assert_int_equal(keyed_put(s, "urn:a", "k-put", "NFK-W1",
	    STORE_VERSION_ABSENT).status, STORE_OK);
	store_close(s);
	as_schema_3(dir);
	snprintf(key, sizeof(key), "%s/store.key", dir);
	snprintf(good, sizeof(good), "%s/store.key.good", dir);
	assert_int_equal(rename(key, good), 0);
	assert_int_equal(keyfile_create_aead(key), 0);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "store.key does not open this store"));
	assert_int_equal(sql_int(dir, "PRAGMA user_version"), 3);

	assert_int_equal(rename(good, key), 0);
	s = open_store(dir, 0);
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	idem_answer(r, "urn:a", "k-put", ans, sizeof(ans), rec, sizeof(rec));
	assert_string_equal(rec, "NFK-W1");
	store_reader_free(r);
	store_close(s);
	assert_int_equal(sql_int(dir, "PRAGMA user_version"), 5);
	tmpdir_remove(dir);
	free(dir);
}

static void
test_tamper_flip_byte(void **state)
{
	char *dir = store_with_entries(10), err[256];
	sqlite3 *db = attacker(dir);

	(void)state;
	/* Change one byte of leaf 3's data ('c' of "consult" to 'd'). */
	exec_ok(db, "UPDATE audit_leaves SET data = CAST(replace(CAST(data AS"
	    " TEXT), 'consult', 'donsult') AS BLOB) WHERE idx = 3");
	sqlite3_close(db);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "altered at index 3"));
	/* Rewriting the stored hash too does not help: the root differs. */
	db = attacker(dir);
	exec_ok(db, "UPDATE audit_leaves SET hash = zeroblob(32) WHERE idx = 3");
	sqlite3_close(db);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "index 3"));
	tmpdir_remove(dir);
	free(dir);
}

/* Rewrite leaf idx's op and its stored hash, as an attacker with write
 * access to the file would, so the leaf matches its own hash. */
static void
rehash_leaf(const char *dir, int idx)
{
	char p[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	buf_t leaf = BUF_INIT;
	merkle_hash_t h;

	snprintf(p, sizeof(p), "%s/store.db", dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT data FROM audit_leaves"
	    " WHERE idx = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int(st, 1, idx);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	buf_append(&leaf, sqlite3_column_blob(st, 0),
	    (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
	((char *)memmem(leaf.data, leaf.len, "consult", 7))[0] = 'k';
	merkle_leaf_hash(leaf.data, leaf.len, h);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE audit_leaves SET data"
	    " = ?1, hash = ?2 WHERE idx = ?3", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, leaf.data, (int)leaf.len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, h, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, idx);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_free(&leaf);
}

static void
test_tamper_rehashed_leaf(void **state)
{
	char *dir, err[256];

	(void)state;
	/* An attacker who also rewrites the leaf hash: the stored tree nodes
	 * give it away, at the range of 16 leaves that holds it... */
	dir = store_with_entries(40);
	rehash_leaf(dir, 20);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "altered in leaves 16-31"));
	assert_non_null(strstr(err, "(level 4, index 1)"));
	tmpdir_remove(dir);
	free(dir);
	/* ...and in a log too small for a stored node, the signed root does. */
	dir = store_with_entries(10);
	rehash_leaf(dir, 4);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "do not hash to the root signed"));
	tmpdir_remove(dir);
	free(dir);
}

static void
test_tamper_node(void **state)
{
	char *dir = store_with_entries(40), err[256];
	sqlite3 *db = attacker(dir);

	(void)state;
	/* A forged interior node would make the store serve bad proofs.
	 * Nodes are stored from level 4 (16 leaves) up. */
	exec_ok(db, "UPDATE merkle_nodes SET hash = zeroblob(32)"
	    " WHERE level = 4 AND idx = 1");
	sqlite3_close(db);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "(level 4, index 1)"));
	assert_non_null(strstr(err, "altered in leaves 16-31"));
	db = attacker(dir);
	exec_ok(db, "DELETE FROM merkle_nodes WHERE level = 4 AND idx = 0");
	sqlite3_close(db);
	assert_true(open_fails(dir, err, sizeof(err)));
	tmpdir_remove(dir);
	free(dir);
}

static void
test_tamper_delete_last(void **state)
{
	char *dir = store_with_entries(10), err[256];
	sqlite3 *db = attacker(dir);

	(void)state;
	exec_ok(db, "DELETE FROM audit_leaves WHERE idx = 9");
	sqlite3_close(db);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "truncated"));
	assert_non_null(strstr(err, "index 9"));
	tmpdir_remove(dir);
	free(dir);
}

static void
test_tamper_delete_middle(void **state)
{
	char *dir = store_with_entries(10), err[256];
	sqlite3 *db = attacker(dir);

	(void)state;
	exec_ok(db, "DELETE FROM audit_leaves WHERE idx = 5");
	sqlite3_close(db);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "leaf 5 is missing"));
	tmpdir_remove(dir);
	free(dir);
}

static void
test_tamper_swap(void **state)
{
	char *dir = store_with_entries(10), err[256];
	sqlite3 *db = attacker(dir);

	(void)state;
	exec_ok(db, "UPDATE audit_leaves SET idx = 100 WHERE idx = 2;"
	    "UPDATE audit_leaves SET idx = 2 WHERE idx = 6;"
	    "UPDATE audit_leaves SET idx = 6 WHERE idx = 100;");
	sqlite3_close(db);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "altered at index 2"));
	tmpdir_remove(dir);
	free(dir);
}

static void
copy_file(const char *from, const char *to)
{
	char *data;
	size_t len;

	if (file_read_all(from, 256 << 20, &data, &len) < 0) {
		assert_int_equal(errno, ENOENT);
		unlink(to);
		return;
	}
	assert_int_equal(file_write_atomic(to, data, len, 0600), 0);
	free(data);
}

static void
db_files(const char *dir, const char *suffix, const char *to_dir,
    const char *to_suffix)
{
	static const char *const names[] = { "store.db", "store.db-wal",
	    "store.db-shm" };
	char a[512], b[512];
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "%s/%s%s", dir, names[i], suffix);
		snprintf(b, sizeof(b), "%s/%s%s", to_dir, names[i], to_suffix);
		copy_file(a, b);
	}
}

static void
test_tamper_rollback(void **state)
{
	char *dir = store_with_entries(5), err[256], p[512], *note;
	size_t note_len;
	store_t *s;
	int k;

	(void)state;
	db_files(dir, "", dir, ".old");
	s = open_store(dir, 0);
	for (k = 0; k < 5; k++)
		assert_int_equal(audit_only(s, "consult", "NFK-8").status,
		    STORE_OK);
	store_close(s);
	db_files(dir, ".old", dir, "");
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "rolled back"));
	/* Deleting checkpoint.last as well is noticed too. */
	snprintf(p, sizeof(p), "%s/checkpoint.last", dir);
	assert_int_equal(file_read_all(p, 65536, &note, &note_len), 0);
	unlink(p);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "checkpoint.last is missing"));
	assert_int_equal(file_write_atomic(p, note, note_len, 0600), 0);
	free(note);
	/* So is a database deleted outright (a fresh one would be empty). */
	snprintf(p, sizeof(p), "%s/store.db", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/store.db-wal", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/store.db-shm", dir);
	unlink(p);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "rolled back"));
	/* And the whole log wiped (database and checkpoint.last): refused,
	 * not taken for a new, empty log. */
	snprintf(p, sizeof(p), "%s/checkpoint.last", dir);
	unlink(p);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "checkpoint.last is missing"));
	tmpdir_remove(dir);
	free(dir);
}

static void
test_tamper_checkpoint(void **state)
{
	char *dir = store_with_entries(3), err[256], p[512], *data;
	size_t len;

	(void)state;
	snprintf(p, sizeof(p), "%s/checkpoint.last", dir);
	assert_int_equal(file_read_all(p, 65536, &data, &len), 0);
	/* "visor.norfolk/audit\n3\n..." -> claim size 4. */
	data[strlen("visor." AREA "/audit\n")] = '4';
	assert_int_equal(file_write_atomic(p, data, len, 0600), 0);
	free(data);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "signature does not verify"));
	tmpdir_remove(dir);
	free(dir);
}

/* ---- keys */

static void
test_keys(void **state)
{
	char *dir = new_dir(), err[256], p[512];
	buf_t vk = BUF_INIT;

	(void)state;
	assert_int_equal(store_init_keys(dir, AREA, &vk, err, sizeof(err)), 0);
	assert_non_null(strstr(vk.data, "visor." AREA "/audit+"));
	assert_int_equal(store_init_keys(dir, AREA, &vk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "refusing to overwrite"));
	assert_int_equal(store_init_keys(dir, "Bad Area", &vk, err,
	    sizeof(err)), -1);
	snprintf(p, sizeof(p), "%s/store.key", dir);
	assert_int_equal(chmod(p, 0644), 0);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "store.key"));
	assert_int_equal(chmod(p, 0600), 0);
	snprintf(p, sizeof(p), "%s/audit.key", dir);
	unlink(p);
	assert_true(open_fails(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "audit.key"));
	buf_free(&vk);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- group commit */

#define GC_THREADS 8
#define GC_JOBS 200

typedef struct {
	store_t *s;
	uint64_t seqs[GC_JOBS];
	int ok;
} gc_thread_t;

static void *
gc_main(void *arg)
{
	gc_thread_t *t = arg;
	int k;

	for (k = 0; k < GC_JOBS; k++) {
		store_job_t *j = store_job_new();
		audit_entry_t e = entry("consult", "NFK-9", AUDIT_VERSION_NONE);
		store_result_t r;

		if (store_job_audit(j, &e) < 0)
			return NULL;
		r = store_submit_wait(t->s, j);
		if (r.status != STORE_OK)
			return NULL;
		t->seqs[k] = r.audit_index;
		t->ok++;
	}
	return NULL;
}

static void
test_group_commit(void **state)
{
	char *dir;
	store_t *s = new_store(&dir, 0);
	gc_thread_t *t = calloc(GC_THREADS, sizeof(*t));
	pthread_t th[GC_THREADS];
	uint8_t *seen = calloc(GC_THREADS * GC_JOBS, 1);
	store_stats_t st;
	int i, k;

	(void)state;
	for (i = 0; i < GC_THREADS; i++) {
		t[i].s = s;
		assert_int_equal(pthread_create(&th[i], NULL, gc_main, &t[i]), 0);
	}
	for (i = 0; i < GC_THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < GC_THREADS; i++) {
		assert_int_equal(t[i].ok, GC_JOBS);
		for (k = 0; k < GC_JOBS; k++) {
			assert_true(t[i].seqs[k] < GC_THREADS * GC_JOBS);
			assert_int_equal(seen[t[i].seqs[k]], 0);
			seen[t[i].seqs[k]] = 1;
			/* Each thread's own jobs are sequenced in order. */
			if (k > 0)
				assert_true(t[i].seqs[k] > t[i].seqs[k - 1]);
		}
	}
	assert_int_equal(store_audit_size(s), GC_THREADS * GC_JOBS);
	store_stats(s, &st);
	assert_int_equal(st.jobs, GC_THREADS * GC_JOBS);
	assert_true(st.commits < st.jobs);
	assert_int_equal(st.failed_commits, 0);
	free(seen);
	free(t);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- a failed commit */

static void
test_failed_commit(void **state)
{
	char *dir, err[128];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	store_result_t res;
	store_record_t rec;
	store_stats_t st;
	merkle_hash_t root, proof[MERKLE_MAX_PROOF], lh;
	uint64_t size;
	size_t n;
	buf_t leaf = BUF_INIT;

	(void)state;
	assert_int_equal(audit_only(s, "consult", "A").status, STORE_OK);
	assert_int_equal(audit_only(s, "consult", "A").status, STORE_OK);
	latest_checkpoint(r, 2, &size, root);
	store_fault_inject(s, 1);
	res = put(s, "NFK-10", STORE_VERSION_ABSENT, "{\"x\":1}");
	assert_int_equal(res.status, STORE_FAILED);
	assert_true(strlen(res.err) > 0);
	assert_int_equal(res.audit_size, 2);
	assert_int_equal(store_audit_size(s), 2);
	assert_int_equal(store_record_get(r, "NFK-10", &rec), 1);
	assert_int_equal(store_audit_leaf(r, 2, &leaf), 1);
	store_stats(s, &st);
	assert_int_equal(st.failed_commits, 1);
	/* Nothing was signed over the failed batch. */
	usleep(100000);
	latest_checkpoint(r, 2, &size, root);
	assert_int_equal(size, 2);
	/* The next job reuses the sequence and the log stays provable. */
	res = put(s, "NFK-10", STORE_VERSION_ABSENT, "{\"x\":2}");
	assert_int_equal(res.status, STORE_OK);
	assert_int_equal(res.audit_index, 2);
	assert_int_equal(res.version, 1);
	latest_checkpoint(r, 3, &size, root);
	assert_int_equal(size, 3);
	assert_int_equal(store_audit_leaf(r, 2, &leaf), 0);
	merkle_leaf_hash(leaf.data, leaf.len, lh);
	assert_int_equal(store_audit_inclusion(r, 2, 3, proof, &n), 0);
	assert_int_equal(merkle_verify_inclusion(2, 3, lh, proof, n, root), 0);
	/* A failed update of a record readers have cached leaves them the
	 * version that is durable. */
	assert_int_equal(store_record_get(r, "NFK-10", &rec), 0);
	buf_free(&rec.json);
	store_fault_inject(s, 1);
	assert_int_equal(put(s, "NFK-10", 1, "{\"x\":3}").status, STORE_FAILED);
	assert_int_equal(store_record_get(r, "NFK-10", &rec), 0);
	assert_int_equal(rec.version, 1);
	assert_string_equal(rec.json.data, "{\"x\":2}");
	buf_free(&rec.json);
	buf_free(&leaf);
	store_reader_free(r);
	store_close(s);
	/* And it starts again cleanly. */
	s = open_store(dir, 0);
	assert_int_equal(store_audit_size(s), 3);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- outbox */

typedef struct {
	int areas;
	uint64_t depth;
} stats_ctx_t;

static void
stats_fn(void *ctx, const char *area, uint64_t depth, int64_t oldest_ms)
{
	stats_ctx_t *c = ctx;

	assert_string_equal(area, "suffolk");
	assert_true(oldest_ms >= 0);
	c->areas++;
	c->depth = depth;
}

/* The sealed payload names what its row does (payload_matches_row). */
static const char *
outbox_payload(const char *id)
{
	static char p[200];

	snprintf(p, sizeof(p), "{\"transfer_id\":\"%s\",\"to_area\":"
	    "\"suffolk\",\"purpose\":\"offender-move\",\"record\":"
	    "{\"id\":\"NFK-11\"}}", id);
	return p;
}

static store_result_t
outbox_add(store_t *s, const char *id)
{
	store_job_t *j = store_job_new();
	audit_entry_t e = entry("transfer-out", "NFK-11", 1);
	const char *p = outbox_payload(id);

	e.transfer = id;
	assert_int_equal(store_job_outbox_add(j, id, "NFK-11", "suffolk",
	    "offender-move", "urn:visor:norfolk:agency:police",
	    p, strlen(p), 4102444800000LL), 0);
	assert_int_equal(store_job_audit(j, &e), 0);
	return store_submit_wait(s, j);
}

/* A retry time further ahead than the caller's latest was set before
 * the wall clock went back (an hour, a day): due now, not when the clock
 * catches up; one within it waits.  Before, the transfer waited out the
 * step with its peer up. */
static void
test_outbox_due_after_clock_back(void **state)
{
	char *dir, err[128];
	store_t *s = new_store(&dir, 4);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	const int64_t now = 1796000000000LL;	/* late 2026 */
	store_transfer_t due[2];
	store_job_t *j;
	size_t n;

	(void)state;
	assert_non_null(r);
	assert_int_equal(outbox_add(s, "T-1").status, STORE_OK);
	/* Set for a retry 30 s on, then the clock went back a day. */
	j = store_job_new();
	assert_int_equal(store_job_outbox_update(j, "T-1", "queued", 1,
	    now + 86400000LL + 30000, NULL, 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(store_outbox_due_for(r, "suffolk", now, now + 61000,
	    due, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].transfer_id, "T-1");
	buf_free(&due[0].payload);
	buf_free(&due[0].receipt);
	/* Not another area's. */
	assert_int_equal(store_outbox_due_for(r, "essex", now, now + 61000,
	    due, 2, &n), 0);
	assert_int_equal(n, 0);
	/* A retry within the bound waits for its time. */
	j = store_job_new();
	assert_int_equal(store_job_outbox_update(j, "T-1", "queued", 2,
	    now + 30000, NULL, 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(store_outbox_due_for(r, "suffolk", now, now + 61000,
	    due, 2, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_due_for(r, "suffolk", now + 30000,
	    now + 91000, due, 2, &n), 0);
	assert_int_equal(n, 1);
	buf_free(&due[0].payload);
	buf_free(&due[0].receipt);
	store_reader_free(r);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

static void
test_outbox(void **state)
{
	char *dir, err[128];
	store_t *s = new_store(&dir, 2);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	store_transfer_t due[4], t;
	stats_ctx_t sc;
	store_job_t *j;
	size_t n, i;

	(void)state;
	assert_int_equal(outbox_add(s, "T-1").status, STORE_OK);
	assert_int_equal(outbox_add(s, "T-1").status, STORE_EXISTS);
	assert_int_equal(outbox_add(s, "T-2").status, STORE_OK);
	assert_int_equal(outbox_add(s, "T-3").status, STORE_FULL);
	/* The refused jobs left no audit entries. */
	assert_int_equal(store_audit_size(s), 2);
	/* Both move NFK-11 to suffolk: T-2 waits until T-1 has left the
	 * queue, so that the peer gets them in order. */
	assert_int_equal(store_outbox_due(r, INT64_MAX, due, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].transfer_id, "T-1");
	for (i = 0; i < n; i++) {
		assert_false(due[i].unreadable);
		assert_string_equal(due[i].payload.data,
		    outbox_payload(due[i].transfer_id));
		assert_string_equal(due[i].status, "queued");
		assert_string_equal(due[i].to_area, "suffolk");
		buf_free(&due[i].payload);
		buf_free(&due[i].receipt);
	}
	assert_int_equal(store_outbox_due(r, 0, due, 4, &n), 0);
	assert_int_equal(n, 0);
	memset(&sc, 0, sizeof(sc));
	assert_int_equal(store_outbox_stats(r, stats_fn, &sc), 0);
	assert_int_equal(sc.areas, 1);
	assert_int_equal(sc.depth, 2);

	/* A retry later: T-2 still waits for T-1 (it would overtake it);
	 * then delivery with a receipt, and T-2 is due. */
	j = store_job_new();
	assert_int_equal(store_job_outbox_update(j, "T-1", "queued", 1,
	    INT64_MAX - 1, NULL, 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(store_outbox_due(r, 4102444800000LL, due, 4, &n), 0);
	assert_int_equal(n, 0);
	j = store_job_new();
	assert_int_equal(store_job_outbox_update(j, "T-1", "delivered", 2, 0,
	    "{\"receipt\":1}", 13), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(store_outbox_due(r, 4102444800000LL, due, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].transfer_id, "T-2");
	buf_free(&due[0].payload);
	buf_free(&due[0].receipt);
	assert_int_equal(store_transfer_get(r, "T-1", &t), 0);
	assert_string_equal(t.status, "delivered");
	assert_int_equal(t.attempts, 2);
	assert_string_equal(t.receipt.data, "{\"receipt\":1}");
	assert_string_equal(t.initiator, "urn:visor:norfolk:agency:police");
	assert_int_equal(t.payload.len, 0);
	buf_free(&t.receipt);
	assert_int_equal(store_transfer_get(r, "T-404", &t), 1);
	/* Room again. */
	assert_int_equal(outbox_add(s, "T-3").status, STORE_OK);
	j = store_job_new();
	assert_int_equal(store_job_outbox_update(j, "T-404", "failed", 1, 0,
	    NULL, 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_NOT_FOUND);
	j = store_job_new();
	assert_int_equal(store_job_outbox_update(j, "T-1", "lost", 1, 0, NULL,
	    0), -1);
	store_job_free(j);

	store_reader_free(r);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- inbound */

static void
test_inbound(void **state)
{
	char *dir, err[128], digest[65], at[32];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	store_job_t *j;
	store_result_t res;
	uint64_t idx;
	buf_t rc = BUF_INIT;
	audit_entry_t e;
	int k;

	(void)state;
	assert_int_equal(audit_only(s, "consult", "A").status, STORE_OK);
	for (k = 0; k < 2; k++) {
		j = store_job_new();
		e = entry("transfer-in", "SFK-1", AUDIT_VERSION_ASSIGNED);
		assert_int_equal(store_job_put_record(j, "SFK-1",
		    STORE_VERSION_ANY, 3, 3, "suffolk", "{}", 2,
		    "urn:visor:suffolk:gateway", NULL), 0);
		assert_int_equal(store_job_inbound_add(j, "suffolk", "T-9",
		    "ab12", "2026-11-24T08:00:00.000Z"), 0);
		assert_int_equal(store_job_audit(j, &e), 0);
		res = store_submit_wait(s, j);
		assert_int_equal(res.status, k == 0 ? STORE_OK : STORE_EXISTS);
	}
	assert_int_equal(store_inbound_get(r, "suffolk", "T-9", digest, at,
	    &idx, &rc), 0);
	assert_string_equal(digest, "ab12");
	assert_string_equal(at, "2026-11-24T08:00:00.000Z");
	assert_int_equal(idx, 1);
	assert_int_equal(rc.len, 0);
	j = store_job_new();
	assert_int_equal(store_job_inbound_receipt(j, "suffolk", "T-9",
	    "{\"signed\":1}", 12), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	assert_int_equal(store_inbound_get(r, "suffolk", "T-9", digest, at,
	    &idx, &rc), 0);
	assert_string_equal(rc.data, "{\"signed\":1}");
	j = store_job_new();
	assert_int_equal(store_job_inbound_receipt(j, "suffolk", "T-0",
	    "{}", 2), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_NOT_FOUND);
	assert_int_equal(store_inbound_get(r, "suffolk", "T-0", digest, at,
	    &idx, &rc), 1);
	buf_free(&rc);
	store_reader_free(r);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- a refused job leaves nothing behind */

/* Every row of every table, as text, through a connection of our own. */
static void
db_dump(const char *dir, buf_t *out)
{
	char p[512];
	sqlite3 *db;
	sqlite3_stmt *tabs, *rows;
	int i;

	buf_reset(out);
	snprintf(p, sizeof(p), "%s/store.db", dir);
	assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_schema"
	    " WHERE type = 'table' ORDER BY name", -1, &tabs, NULL), SQLITE_OK);
	while (sqlite3_step(tabs) == SQLITE_ROW) {
		buf_printf(out, "[%s]\n", sqlite3_column_text(tabs, 0));
		snprintf(p, sizeof(p), "SELECT * FROM \"%s\"",
		    sqlite3_column_text(tabs, 0));
		assert_int_equal(sqlite3_prepare_v2(db, p, -1, &rows, NULL),
		    SQLITE_OK);
		while (sqlite3_step(rows) == SQLITE_ROW) {
			for (i = 0; i < sqlite3_column_count(rows); i++) {
				buf_printf(out, "%d:", sqlite3_column_type(rows, i));
				buf_append(out, sqlite3_column_blob(rows, i),
				    (size_t)sqlite3_column_bytes(rows, i));
				buf_puts(out, "|");
			}
			buf_puts(out, "\n");
		}
		sqlite3_finalize(rows);
	}
	sqlite3_finalize(tabs);
	sqlite3_close(db);
}

/* Submit j (refused with want) and check the database did not change. */
static void
refused_alone(store_t *s, const char *dir, store_job_t *j, int want)
{
	audit_entry_t e = entry("alter", "NFK-R", AUDIT_VERSION_NONE);
	buf_t before = BUF_INIT, after = BUF_INIT;
	uint64_t size = store_audit_size(s);

	/* Each refusable op also carries an audit entry, which must go with
	 * it. */
	assert_int_equal(store_job_audit(j, &e), 0);
	db_dump(dir, &before);
	assert_int_equal(store_submit_wait(s, j).status, want);
	db_dump(dir, &after);
	assert_int_equal(store_audit_size(s), size);
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.data, before.data, before.len);
	buf_free(&before);
	buf_free(&after);
}

/* Jobs with one op besides their audit entries run without a savepoint
 * (store.c, run_job): this holds only if every refusal of every op leaves
 * nothing written.  Each refusal here is checked against a dump of the
 * whole database. */
static void
test_refusal_leaves_nothing(void **state)
{
	char *dir, err[128];
	store_t *s = new_store(&dir, 2);
	store_reader_t *r = store_reader_new(s, err, sizeof(err));
	uint8_t hash[32];
	store_job_t *j;
	merkle_hash_t root;
	uint64_t size;

	(void)state;
	memset(hash, 0xcd, sizeof(hash));
	assert_int_equal(put(s, "NFK-R", STORE_VERSION_ABSENT, "{}").status,
	    STORE_OK);
	assert_int_equal(outbox_add(s, "T-R").status, STORE_OK);
	j = store_job_new();
	assert_int_equal(store_job_inbound_add(j, "suffolk", "T-IN", "ab",
	    "2026-11-24T08:00:00.000Z"), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	j = store_job_new();
	assert_int_equal(store_job_idempotency(j, "urn:a", "key-R", hash, 201,
	    "{}", 2, 0), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	/* No signing while the refusals run: the log is signed up to here. */
	latest_checkpoint(r, store_audit_size(s), &size, root);

	j = store_job_new();
	assert_int_equal(store_job_put_record(j, "NFK-R", STORE_VERSION_ABSENT,
	    1, 1, AREA, "{}", 2, "urn:a", NULL), 0);
	refused_alone(s, dir, j, STORE_EXISTS);
	j = store_job_new();
	assert_int_equal(store_job_put_record(j, "NFK-R", 7, 1, 1, AREA, "{}",
	    2, "urn:a", NULL), 0);
	refused_alone(s, dir, j, STORE_CONFLICT);
	j = store_job_new();
	assert_int_equal(store_job_put_record(j, "NFK-NONE", 1, 1, 1, AREA,
	    "{}", 2, "urn:a", NULL), 0);
	refused_alone(s, dir, j, STORE_NOT_FOUND);
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-R", 7, "urn:a"), 0);
	refused_alone(s, dir, j, STORE_CONFLICT);
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-NONE",
	    STORE_VERSION_ANY, "urn:a"), 0);
	refused_alone(s, dir, j, STORE_NOT_FOUND);
	j = store_job_new();
	assert_int_equal(store_job_outbox_add(j, "T-R", "NFK-R", "suffolk",
	    "offender-move", "urn:a", "{}", 2, 4102444800000LL), 0);
	refused_alone(s, dir, j, STORE_EXISTS);
	j = store_job_new();
	assert_int_equal(store_job_outbox_update(j, "T-NONE", "failed", 1, 0,
	    NULL, 0), 0);
	refused_alone(s, dir, j, STORE_NOT_FOUND);
	j = store_job_new();
	assert_int_equal(store_job_inbound_add(j, "suffolk", "T-IN", "ab",
	    "2026-11-24T08:00:00.000Z"), 0);
	refused_alone(s, dir, j, STORE_EXISTS);
	j = store_job_new();
	assert_int_equal(store_job_inbound_receipt(j, "suffolk", "T-NONE",
	    "{}", 2), 0);
	refused_alone(s, dir, j, STORE_NOT_FOUND);
	j = store_job_new();
	assert_int_equal(store_job_idempotency(j, "urn:a", "key-R", hash, 201,
	    "{}", 2, 0), 0);
	refused_alone(s, dir, j, STORE_IDEM_EXISTS);
	/* The outbox at its limit (2). */
	assert_int_equal(outbox_add(s, "T-R2").status, STORE_OK);
	latest_checkpoint(r, store_audit_size(s), &size, root);
	j = store_job_new();
	assert_int_equal(store_job_outbox_add(j, "T-R3", "NFK-R", "suffolk",
	    "offender-move", "urn:a", "{}", 2, 4102444800000LL), 0);
	refused_alone(s, dir, j, STORE_FULL);

	store_reader_free(r);
	store_close(s);
	tmpdir_remove(dir);
	free(dir);
}

/* ---- kill -9 during a stream of writes */

static void
crash_child(const char *dir, int fd)
{
	store_t *s = open_store(dir, 0);
	uint64_t k;

	/* Report each acknowledged entry; the parent kills us mid-stream. */
	for (k = 0;; k++) {
		store_result_t r = put(s, k % 2 ? "NFK-C1" : "NFK-C2",
		    STORE_VERSION_ANY, "{\"n\":1}");

		if (r.status != STORE_OK)
			_exit(3);
		if (write(fd, &r.audit_index, sizeof(r.audit_index)) !=
		    (ssize_t)sizeof(r.audit_index))
			_exit(4);
	}
}

static void
test_crash(void **state)
{
	char *dir, err[256];
	store_t *s = new_store(&dir, 0);
	store_reader_t *r;
	uint64_t idx, max_acked = 0, acked = 0;
	int fds[2], round, status;
	pid_t pid;
	buf_t leaf = BUF_INIT;

	(void)state;
	store_close(s);
	for (round = 0; round < 3; round++) {
		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(dir, fds[1]);
		}
		close(fds[1]);
		/* Let it acknowledge a few hundred writes, then kill it. */
		while (acked < 300u * (round + 1) &&
		    read(fds[0], &idx, sizeof(idx)) == (ssize_t)sizeof(idx)) {
			acked++;
			if (idx > max_acked)
				max_acked = idx;
		}
		kill(pid, SIGKILL);
		while (read(fds[0], &idx, sizeof(idx)) == (ssize_t)sizeof(idx))
			if (idx > max_acked)
				max_acked = idx;
		close(fds[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		/* It starts: the log verifies, and every answered write has
		 * its entry. */
		s = open_store(dir, 0);
		assert_true(store_audit_size(s) > max_acked);
		r = store_reader_new(s, err, sizeof(err));
		assert_non_null(r);
		buf_reset(&leaf);
		assert_int_equal(store_audit_leaf(r, max_acked, &leaf), 0);
		store_reader_free(r);
		store_close(s);
	}
	buf_free(&leaf);
	tmpdir_remove(dir);
	free(dir);
}

static void
test_closed_submit(void **state)
{
	store_options_t o;
	char err[128];

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_null(store_open(&o, err, sizeof(err)));
	o.data_dir = "/nonexistent/visor";
	o.area = AREA;
	assert_null(store_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "store.key"));
	store_close(NULL);
	store_reader_free(NULL);
}

/* A second gateway on the same data directory is refused while the first
 * runs (two writers would fork the log), and can start once it stopped. */
static void
test_one_gateway_per_dir(void **state)
{
	char *dir, err[256];
	store_t *s, *again;

	(void)state;
	s = new_store(&dir, 0);
	assert_int_equal(open_fails(dir, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "another gateway is running"));
	store_close(s);
	again = open_store(dir, 0);
	store_close(again);
	tmpdir_remove(dir);
	free(dir);
}

/* The WAL is copied back into the database by the checkpointer thread
 * once it passes 8,192 pages (the writer itself would wait for four times
 * that): after some 36 MiB of writes store.db (86 KiB before) grows to
 * hold most of them without anything else asking for a checkpoint, and
 * everything reads back after a reopen. */
static void
test_wal_checkpointed(void **state)
{
	enum { N = 360, BIG = 100 * 1024 };
	char *dir, *json, id[32], path[600], err[256];
	store_t *s;
	store_reader_t *r;
	store_record_t rec;
	store_stats_t st;
	struct stat sb;
	int i, tries;

	(void)state;
	s = new_store(&dir, 0);
	json = malloc(BIG + 16);
	assert_non_null(json);
	memcpy(json, "{\"x\":\"", 6);
	memset(json + 6, 'a', BIG);
	memcpy(json + 6 + BIG, "\"}", 3);
	for (i = 0; i < N; i++) {
		json[6 + i % BIG] = (char)('b' + i % 20);
		snprintf(id, sizeof(id), "WAL-%04d", i);
		assert_int_equal(put(s, id, 0, json).status, STORE_OK);
	}
	/* Counted when the checkpoint is done, after it wrote store.db. */
	snprintf(path, sizeof(path), "%s/store.db", dir);
	for (tries = 0; tries < 400; tries++) {
		store_stats(s, &st);
		if (st.wal_checkpoints >= 1)
			break;
		usleep(50000);
	}
	/* It was the checkpointer's doing, not the writer's ... */
	assert_true(st.wal_checkpoints >= 1);
	/* ... and store.db holds most of what was written (the rest, after
	 * the checkpoint, is still in the WAL). */
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size > 16 * 1024 * 1024);
	store_close(s);
	s = open_store(dir, 0);
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(store_record_get(r, "WAL-0359", &rec), 0);
	assert_int_equal(rec.version, 1);
	assert_int_equal(rec.json.len, BIG + 8);
	buf_free(&rec.json);
	store_reader_free(r);
	store_close(s);
	free(json);
	tmpdir_remove(dir);
	free(dir);
}

/* The same record answers with the record cache turned off (every read
 * from the database) and with one too small to hold anything. */
/* The id filter (store_ids.h) answers "no such record" for new ids without
 * SQLite, and never for an id that was written: neither after the write
 * (the writer adds it) nor after a restart (store_open reads them all).
 * Without the record cache, every read here goes through the filter. */
static void
test_record_ids_filter(void **state)
{
	char *dir, err[128];
	store_t *s;
	store_reader_t *r;
	store_record_t rec;
	store_stats_t st;
	store_job_t *j;
	int k;

	(void)state;
	cache_bytes = STORE_CACHE_NONE;
	s = new_store(&dir, 0);
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	assert_int_equal(store_record_get(r, "NFK-NEW", &rec), 1);
	store_stats(s, &st);
	assert_int_equal(st.ids_absent, 1);
	for (k = 0; k < 50; k++) {
		char id[32];

		snprintf(id, sizeof(id), "NFK-F%d", k);
		assert_int_equal(put(s, id, STORE_VERSION_ABSENT, "{}").status,
		    STORE_OK);
		assert_int_equal(store_record_get(r, id, &rec), 0);
		assert_int_equal(rec.version, 1);
		buf_free(&rec.json);
	}
	store_stats(s, &st);
	assert_int_equal(st.ids_absent, 1);
	/* Erased records keep their row: found, as erased.  With its entry,
	 * naming the version erased as the route's does: the store checks
	 * its records against the log when it opens. */
	j = store_job_new();
	assert_int_equal(store_job_erase_record(j, "NFK-F7", STORE_VERSION_ANY,
	    "urn:a"), 0);
	{
		audit_entry_t e = entry("erase", "NFK-F7", 1);

		assert_int_equal(store_job_audit(j, &e), 0);
	}
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	store_reader_free(r);
	store_close(s);

	s = open_store(dir, 0);
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	for (k = 0; k < 50; k++) {
		char id[32];

		snprintf(id, sizeof(id), "NFK-F%d", k);
		assert_int_equal(store_record_get(r, id, &rec), 0);
		assert_int_equal(rec.erased, k == 7);
		buf_free(&rec.json);
	}
	assert_int_equal(store_record_get(r, "NFK-NEW", &rec), 1);
	store_stats(s, &st);
	assert_int_equal(st.ids_absent, 1);
	store_reader_free(r);
	store_close(s);
	cache_bytes = 0;
	tmpdir_remove(dir);
	free(dir);
}

static void
test_records_without_cache(void **state)
{
	cache_bytes = STORE_CACHE_NONE;
	test_records(state);
	test_failed_commit(state);
	cache_bytes = 64;
	test_records(state);
	cache_bytes = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_mixed_batch),
		cmocka_unit_test(test_idempotency),
		cmocka_unit_test(test_idempotency_retention),
		cmocka_unit_test(test_audit_log),
		cmocka_unit_test(test_audit_entry_size),
		cmocka_unit_test(test_start_with_pinned_reader),
		cmocka_unit_test(test_wrong_data_key),
		cmocka_unit_test(test_search_by_time),
		cmocka_unit_test(test_time_never_decreases),
		cmocka_unit_test(test_migrate_schema_1),
		cmocka_unit_test(test_migrate_schema_2),
		cmocka_unit_test(test_migrate_schema_3),
		cmocka_unit_test(test_migrate_schema_3_wrong_key),
		cmocka_unit_test(test_witnessed_held),
		cmocka_unit_test(test_idempotency_names_write_version),
		cmocka_unit_test(test_erase_drops_idempotency),
		cmocka_unit_test(test_record_index_lag),
		cmocka_unit_test(test_encryption_at_rest),
		cmocka_unit_test(test_erase_destroys_ciphertext),
		cmocka_unit_test(test_erase_wipes_wal_while_open),
		cmocka_unit_test(test_erase_wipes_wal_after_reader),
		cmocka_unit_test(test_tamper_flip_byte),
		cmocka_unit_test(test_tamper_rehashed_leaf),
		cmocka_unit_test(test_tamper_node),
		cmocka_unit_test(test_tamper_delete_last),
		cmocka_unit_test(test_tamper_delete_middle),
		cmocka_unit_test(test_tamper_swap),
		cmocka_unit_test(test_tamper_rollback),
		cmocka_unit_test(test_tamper_checkpoint),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_failed_commit),
		cmocka_unit_test(test_outbox),
		cmocka_unit_test(test_outbox_due_after_clock_back),
		cmocka_unit_test(test_inbound),
		cmocka_unit_test(test_refusal_leaves_nothing),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_closed_submit),
		cmocka_unit_test(test_one_gateway_per_dir),
		cmocka_unit_test(test_records_without_cache),
		cmocka_unit_test(test_record_ids_filter),
		cmocka_unit_test(test_wal_checkpointed),
	};
	int rc;

	rc = cmocka_run_group_tests_name("store", tests, NULL, NULL);
	free(vkey_line);
	return rc;
}
