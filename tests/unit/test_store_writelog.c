/*
 * The start-up check of the store's clear columns against the audit log
 * (gateway/store_writelog.c), here for the outbox: each row must have the
 * status its transfer's last entry left; past the signed checkpoint an
 * entry must also be a step the gateway makes.  The integration test
 * (test_transfers, test_outbox_status_tampered) edits a real gateway's
 * store; this one feeds the check leaves the gateway never writes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "gateway/store_int.h"

#define TID "T0000000000000000000000000000001"

static sqlite3 *
db_with_outbox(const char *status)
{
	sqlite3 *db;
	char sql[512];

	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
	    "CREATE TABLE records(id TEXT PRIMARY KEY, version INTEGER,"
	    " category INTEGER, level INTEGER, managing_area TEXT,"
	    " erased INTEGER);"
	    "CREATE TABLE outbox(transfer_id TEXT PRIMARY KEY, status TEXT);"
	    "INSERT INTO outbox VALUES('" TID "', '%s');", status);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	return db;
}

/* Feed the leaves "op result" (index 0 on) to a check signed up to
 * signed_size, and run it against an outbox with one row of status.
 * 0 or -1, err set. */
static int
run_check(uint64_t signed_size, const char *const *steps, const char *status,
    char *err, size_t errlen)
{
	store_writelog_t *w = store_writelog_new(signed_size);
	sqlite3 *db = db_with_outbox(status);
	char leaf[300], op[32], result[32];
	uint64_t i;
	int n, rc;

	assert_non_null(w);
	for (i = 0; steps[i] != NULL; i++) {
		assert_int_equal(sscanf(steps[i], "%31s %31s", op, result), 2);
		n = snprintf(leaf, sizeof(leaf), "{\"seq\":%llu,\"time\":"
		    "\"2026-12-07T00:00:00.000Z\",\"op\":\"%s\",\"actor\":"
		    "{\"id\":\"urn:visor:norfolk:gateway\"},\"record\":"
		    "\"NFK-0001\",\"transfer\":\"" TID "\",\"result\":\"%s\"}",
		    (unsigned long long)i, op, result);
		assert_true(n > 0 && (size_t)n < sizeof(leaf));
		assert_int_equal(store_writelog_add(w, i, leaf, (size_t)n), 0);
	}
	err[0] = '\0';
	rc = store_writelog_check(w, db, "store.db", err, errlen);
	store_writelog_free(w);
	sqlite3_close(db);
	return rc;
}

/* What the gateway writes: queued, a refusal naming the transfer (no
 * change), failed when its record was erased, then the receipt of the
 * delivery that was in flight. */
static void
test_gateway_steps(void **state)
{
	static const char *const steps[] = { "transfer-out queued",
	    "transfer-out denied", "transfer-out failed", "receipt ok", NULL };
	static const char *const rejected[] = { "transfer-out queued",
	    "transfer-out rejected", NULL };
	char err[400];

	(void)state;
	/* Signed, and past the checkpoint. */
	assert_int_equal(run_check(10, steps, "delivered", err, sizeof(err)), 0);
	assert_int_equal(run_check(0, steps, "delivered", err, sizeof(err)), 0);
	assert_int_equal(run_check(0, rejected, "rejected", err, sizeof(err)),
	    0);
	/* The row must say what the last entry left. */
	assert_int_equal(run_check(10, steps, "failed", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "outbox altered: transfer " TID " is "
	    "failed, but the audit log's last entry for it (index 3) left it "
	    "delivered"));
	assert_int_equal(run_check(0, rejected, "queued", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "left it rejected"));
}

/* Past the checkpoint a leaf is only as good as the file: a made-up one
 * may not move a transfer in a way the gateway never does.  Signed, the
 * same leaves are the gateway's word and taken as they are. */
static void
test_forged_steps(void **state)
{
	static const char *const requeued[] = { "transfer-out queued",
	    "transfer-out failed", "transfer-out queued", NULL };
	static const char *const unrejected[] = { "transfer-out queued",
	    "transfer-out rejected", "receipt ok", NULL };
	static const char *const unqueued[] = { "receipt ok", NULL };
	char err[400];

	(void)state;
	assert_int_equal(run_check(2, requeued, "queued", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "audit log altered at index 2, past the "
	    "signed checkpoint: it marks transfer " TID " queued when it was "
	    "failed"));
	assert_int_equal(run_check(3, requeued, "queued", err, sizeof(err)), 0);
	assert_int_equal(run_check(2, unrejected, "delivered", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "delivered when it was rejected"));
	assert_int_equal(run_check(0, unqueued, "delivered", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "delivered when it was not queued"));
}

/* A row the log never queued; a transfer the log queued without its row. */
static void
test_rows_added_removed(void **state)
{
	static const char *const none[] = { NULL };
	static const char *const denied[] = { "transfer-out denied", NULL };
	static const char *const queued[] = { "transfer-out queued", NULL };
	store_writelog_t *w;
	sqlite3 *db;
	char err[400];

	(void)state;
	assert_int_equal(run_check(10, none, "queued", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "transfer " TID " is there (queued) but "
	    "the audit log never queued it"));
	/* A refusal naming the id does not vouch for a row. */
	assert_int_equal(run_check(10, denied, "queued", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "never queued it"));
	assert_int_equal(run_check(10, queued, "queued", err, sizeof(err)), 0);

	w = store_writelog_new(10);
	assert_non_null(w);
	assert_int_equal(store_writelog_add(w, 0, "{\"seq\":0,\"op\":"
	    "\"transfer-out\",\"transfer\":\"" TID "\",\"result\":\"queued\"}",
	    strlen("{\"seq\":0,\"op\":\"transfer-out\",\"transfer\":\"" TID
	    "\",\"result\":\"queued\"}")), 0);
	db = db_with_outbox("queued");
	assert_int_equal(sqlite3_exec(db, "DELETE FROM outbox", NULL, NULL,
	    NULL), SQLITE_OK);
	assert_int_equal(store_writelog_check(w, db, "store.db", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "transfer " TID " is missing, but the "
	    "audit log's last entry for it (index 0) left it queued"));
	store_writelog_free(w);
	sqlite3_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gateway_steps),
		cmocka_unit_test(test_forged_steps),
		cmocka_unit_test(test_rows_added_removed),
	};

	return cmocka_run_group_tests_name("store_writelog", tests, NULL, NULL);
}
