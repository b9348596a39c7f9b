/*
 * Transfers between two real gateways while one of their disks stalls
 * (the fault VFS's err=stall, gateway/store_faultvfs.h):
 *
 * - the sender's disk: POST /v1/transfers is answered 202 only once the
 *   transfer is durable (then it is delivered, once), or 503 unwritten
 *   after the store wait bound (then nothing of it is queued, logged or
 *   ever delivered);
 * - the receiver's disk while a peer delivers: the receiver answers 503
 *   unwritten, the sender retries (the transfer stays queued, neither
 *   failed nor rejected), and once the disk is back it is delivered once.
 *
 * Both audit logs are read whole, as each area's auditor, and checked by
 * visorctl audit verify.  The bound is limits.store_wait_max_ms, set
 * short here; its range is checked, and a reload may not change it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "crypto/proof_json.h"
#include "gateway/store_faultvfs.h"
#include "gateway/transfer_proto.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"

/* The gateways' store wait bound (limits.store_wait_max_ms), short so
 * that the stalls here last seconds; test_store_stall keeps the default
 * (10 s). */
#define WAIT_MS 2000

static gwt_env_t env;
static gwt_gw_t nfk, sfk;
static char nfk_data[512], sfk_data[512];
static int fault_id;

static const char *const read_hdrs[] = { "X-Visor-Actor: T100",
    "X-Visor-Purpose: risk-management",
    "X-Visor-Justification: stall test", "Content-Type: application/json",
    NULL };
static const char *const move_hdrs[] = { "X-Visor-Actor: T100",
    "X-Visor-Purpose: offender-move", "X-Visor-Justification: stall test",
    "Content-Type: application/json", NULL };

static void
fault(const char *data_dir, const char *spec)
{
	char path[600], text[200];

	snprintf(path, sizeof(path), "%s/%s", data_dir, STORE_FAULTVFS_CTL);
	if (spec[0] == '\0')
		text[0] = '\0';
	else
		snprintf(text, sizeof(text), "%s id=%d\n", spec, ++fault_id);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0644), 0);
}

/* One request; the status (-1: no answer), the body in out (may be
 * NULL). */
static long
call(gwt_gw_t *gw, const char *who, const char *method, const char *path,
    const char *const *hdrs, const char *body, buf_t *out)
{
	gwt_resp_t resp;
	char err[256];
	long st;

	if (gwt_request(&env, gw, gw->area, who, method, path, hdrs, body,
	    body ? strlen(body) : 0, &resp, err, sizeof(err)) < 0) {
		if (out != NULL)
			buf_puts(out, err);
		return -1;
	}
	st = resp.status;
	if (out != NULL && resp.body.data != NULL)
		buf_puts(out, resp.body.data);
	gwt_resp_free(&resp);
	return st;
}

static void
put_record(gwt_gw_t *gw, const char *id)
{
	char body[512], path[96];
	long st;

	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"managing_area\":\"%s\","
	    "\"category\":1,\"level\":2,\"person\":{\"surname\":\"Stall\","
	    "\"forenames\":\"Synthetic\",\"dob\":\"1980-01-01\"}}", id,
	    gw->area);
	snprintf(path, sizeof(path), "/v1/records/%s", id);
	st = call(gw, "agency-probation", "PUT", path, read_hdrs, body, NULL);
	if (st != 201 && st != 200)
		fail_msg("PUT %s at %s: %ld", id, gw->area, st);
}

/* A transfer's status at Norfolk ("queued", "delivered"...). */
static char *
transfer_status(const char *tid)
{
	char path[96], err[128];
	buf_t out = BUF_INIT;
	cJSON *j;
	char *s;

	snprintf(path, sizeof(path), "/v1/transfers/%s", tid);
	if (call(&nfk, "agency-police", "GET", path, move_hdrs, NULL, &out) !=
	    200)
		fail_msg("GET %s: %s", path, out.data ? out.data : "");
	j = json_parse_strict(out.data, out.len, 16, err, sizeof(err));
	assert_non_null(j);
	s = strdup(json_get_str(j, "status"));
	cJSON_Delete(j);
	buf_free(&out);
	return s;
}

static void
expect_delivered(const char *tid, long ms)
{
	long long until = gwt_now_ms() + gwt_ms(ms);
	char *s;

	for (;;) {
		s = transfer_status(tid);
		if (strcmp(s, "queued") != 0 || gwt_now_ms() > until)
			break;
		free(s);
		sleep_ms(100);
	}
	if (strcmp(s, "delivered") != 0)
		fail_msg("transfer %s: %s", tid, s);
	free(s);
}

/* ------------------------------------------------------------ audit */

typedef struct {
	cJSON **e;
	size_t n, cap;
} entries_t;

static int
entry_cb(void *arg, uint64_t index, const uint8_t *leaf, size_t len)
{
	entries_t *c = arg;
	char err[128];

	(void)index;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		if ((c->e = realloc(c->e, c->cap * sizeof(*c->e))) == NULL)
			return -1;
	}
	c->e[c->n] = json_parse_strict((const char *)leaf, len, 16, err,
	    sizeof(err));
	return c->e[c->n++] == NULL ? -1 : 0;
}

/* gw's whole log as its auditor, once visorctl audit verify (signature
 * of the checkpoint, the entries against its root) passes on it. */
static void
entries_fetch(gwt_gw_t *gw, entries_t *c)
{
	char url[64], cert[600], path[96], err[256];
	const char *argv[] = { gwt_prog(&env, "visorctl"), "audit", "verify",
	    "--no-state", "--gateway", url, "--cert", cert, NULL };
	buf_t out = BUF_INIT, se = BUF_INIT;
	unsigned long long size, start;
	size_t count;
	long long until = gwt_now_ms() + gwt_ms(20000);
	int rc;

	memset(c, 0, sizeof(*c));
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", gw->port);
	snprintf(cert, sizeof(cert), "%s/pki/%s/auditor.crt", env.dir, gw->area);
	/* The checkpoint is signed at most an interval after the last
	 * entry: verify until it covers everything. */
	while ((rc = gwt_run(argv, NULL, 0, &out, &se)) != 0 &&
	    gwt_now_ms() < until) {
		buf_reset(&out);
		buf_reset(&se);
		sleep_ms(300);
	}
	if (rc != 0)
		fail_msg("%s: audit verify: %s%s", gw->area, out.data ? out.data :
		    "", se.data ? se.data : "");
	assert_int_equal(gwt_audit_size(&env, gw, &size), 0);
	for (start = 0; start < size; start += count) {
		unsigned long long end = start + 1000 < size ? start + 1000 : size;

		snprintf(path, sizeof(path), "/v1/audit/entries?start=%llu&end=%llu",
		    start, end);
		buf_reset(&out);
		assert_int_equal(call(gw, "auditor", "GET", path, NULL, NULL, &out),
		    200);
		if (proof_json_entries(out.data, out.len, start, 1000, entry_cb, c,
		    &count, err, sizeof(err)) < 0)
			fail_msg("%s entries: %s", gw->area, err);
		assert_true(count > 0);
	}
	buf_free(&out);
	buf_free(&se);
}

static void
entries_free(entries_t *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		cJSON_Delete(c->e[i]);
	free(c->e);
	memset(c, 0, sizeof(*c));
}

/* Entries with op (and field = value unless field is NULL). */
static size_t
entries_count(const entries_t *c, const char *op, const char *field,
    const char *value)
{
	size_t i, n = 0;
	const char *s;

	for (i = 0; i < c->n; i++) {
		s = json_get_str(c->e[i], "op");
		if (s == NULL || strcmp(s, op) != 0)
			continue;
		if (field != NULL && ((s = json_get_str(c->e[i], field)) == NULL ||
		    strcmp(s, value) != 0))
			continue;
		n++;
	}
	return n;
}

/* ------------------------------------------------------------ tests */

#define NXFER 6

typedef struct {
	int n;
	long status;
	long long ms;
	char tid[TRANSFER_ID_LEN + 1];
	char body[256];
} xfer_t;

static void
xfer_record(char *out, size_t len, int n)
{
	snprintf(out, len, "NFK-STX-%d", n);
}

static void *
start_one(void *arg)
{
	xfer_t *x = arg;
	char body[300], id[32], err[128];
	buf_t out = BUF_INIT;
	long long t0 = gwt_now_ms();
	cJSON *j;

	xfer_record(id, sizeof(id), x->n);
	snprintf(body, sizeof(body), "{\"record_id\":\"%s\",\"to_area\":"
	    "\"suffolk\",\"purpose\":\"offender-move\",\"justification\":"
	    "\"stall test\"}", id);
	x->status = call(&nfk, "agency-police", "POST", "/v1/transfers",
	    move_hdrs, body, &out);
	x->ms = gwt_now_ms() - t0;
	snprintf(x->body, sizeof(x->body), "%s", out.data ? out.data : "");
	if (x->status == 202 && (j = json_parse_strict(out.data, out.len, 4,
	    err, sizeof(err))) != NULL) {
		if (json_get_str(j, "transfer_id") != NULL)
			snprintf(x->tid, sizeof(x->tid), "%s",
			    json_get_str(j, "transfer_id"));
		cJSON_Delete(j);
	}
	buf_free(&out);
	return NULL;
}

/* Norfolk's disk stalls while transfers are asked for: each 202 is
 * durable and delivered once; each 503 came before the disk was back,
 * unwritten, and is never delivered. */
static void
test_sender_stalled(void **state)
{
	static xfer_t x[NXFER];
	pthread_t th[NXFER];
	const long stall_ms = WAIT_MS + 4000;
	char id[32], path[96];
	entries_t ln, ls;
	long long t0;
	int i, acked = 0, refused = 0;

	(void)state;
	for (i = 0; i < NXFER; i++) {
		xfer_record(id, sizeof(id), i);
		put_record(&nfk, id);
	}
	/* Everything so far signed, so that the first transfer's own
	 * commit, not a checkpoint's, is what the disk holds. */
	sleep_ms(1500);
	fault(nfk_data, "op=write,sync err=stall");
	t0 = gwt_now_ms();
	for (i = 0; i < NXFER; i++) {
		x[i].n = i;
		assert_int_equal(pthread_create(&th[i], NULL, start_one, &x[i]), 0);
		if (i == 0)
			sleep_ms(300);	/* the held batch: this one alone */
	}
	sleep_ms(stall_ms - (gwt_now_ms() - t0));
	fault(nfk_data, "");
	for (i = 0; i < NXFER; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < NXFER; i++) {
		if (x[i].status == 202) {
			if (x[i].ms < stall_ms - 1000 || strlen(x[i].tid) !=
			    TRANSFER_ID_LEN)
				fail_msg("transfer %d: 202 after %lld ms, before "
				    "the disk came back: %s", i, x[i].ms, x[i].body);
			acked++;
		} else if (x[i].status == 503) {
			if (x[i].ms < WAIT_MS - 500 || x[i].ms >= stall_ms - 1000 ||
			    strstr(x[i].body, "unavailable\"") == NULL)
				fail_msg("transfer %d: 503 after %lld ms: %s", i,
				    x[i].ms, x[i].body);
			refused++;
		} else {
			fail_msg("transfer %d: %ld after %lld ms: %s", i,
			    x[i].status, x[i].ms, x[i].body);
		}
	}
	fprintf(stderr, "sender stalled: %d accepted (202), %d refused (503)\n",
	    acked, refused);
	assert_true(acked > 0);
	assert_true(refused > 0);
	for (i = 0; i < NXFER; i++)
		if (x[i].status == 202)
			expect_delivered(x[i].tid, 30000);
	/* A refused one is not delivered later either. */
	sleep_ms(2000);
	entries_fetch(&nfk, &ln);
	entries_fetch(&sfk, &ls);
	for (i = 0; i < NXFER; i++) {
		xfer_record(id, sizeof(id), i);
		snprintf(path, sizeof(path), "/v1/records/%s", id);
		if (x[i].status == 202) {
			assert_int_equal(entries_count(&ln, "transfer-out", "transfer",
			    x[i].tid), 1);
			assert_int_equal(entries_count(&ln, "receipt", "transfer",
			    x[i].tid), 1);
			assert_int_equal(entries_count(&ls, "transfer-in", "transfer",
			    x[i].tid), 1);
			assert_int_equal(call(&sfk, "agency-police", "GET", path,
			    read_hdrs, NULL, NULL), 200);
		} else {
			assert_int_equal(entries_count(&ln, "transfer-out", "record",
			    id), 0);
			assert_int_equal(entries_count(&ls, "transfer-in", "record",
			    id), 0);
			assert_int_equal(call(&sfk, "agency-police", "GET", path,
			    read_hdrs, NULL, NULL), 404);
		}
	}
	assert_int_equal(entries_count(&ln, "transfer-out", NULL, NULL),
	    (size_t)acked);
	assert_int_equal(entries_count(&ls, "transfer-in", NULL, NULL),
	    (size_t)acked);
	entries_free(&ln);
	entries_free(&ls);
}

typedef struct {
	const char *id;
	long status;
} hold_t;

static void *
hold_put(void *arg)
{
	hold_t *h = arg;
	char body[512], path[96];

	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"managing_area\":"
	    "\"suffolk\",\"category\":1,\"level\":2,\"person\":{\"surname\":"
	    "\"Hold\",\"forenames\":\"Synthetic\",\"dob\":\"1980-01-01\"}}",
	    h->id);
	snprintf(path, sizeof(path), "/v1/records/%s", h->id);
	h->status = call(&sfk, "agency-probation", "PUT", path, read_hdrs, body,
	    NULL);
	return NULL;
}

/* Suffolk's disk stalls while Norfolk delivers: Suffolk answers 503
 * unwritten once the delivery has waited the bound, Norfolk keeps the
 * transfer queued and retries, and when the disk is back it is delivered
 * once: one transfer-in at Suffolk, one receipt at Norfolk, nothing
 * failed or rejected. */
static void
test_receiver_stalled(void **state)
{
	const long stall_ms = WAIT_MS + 6000;
	char tid[TRANSFER_ID_LEN + 1], *st;
	static xfer_t x;
	hold_t h = { "SFK-HOLD-1", 0 };
	pthread_t th;
	entries_t ln, ls;
	size_t retries0;
	long long t0;

	(void)state;
	put_record(&nfk, "NFK-STX-100");
	sleep_ms(1500);
	retries0 = gwt_log_count(&nfk, "peer-503");
	fault(sfk_data, "op=write,sync err=stall");
	t0 = gwt_now_ms();
	/* Suffolk's writer is held in this PUT's commit. */
	assert_int_equal(pthread_create(&th, NULL, hold_put, &h), 0);
	sleep_ms(300);
	x.n = 100;
	start_one(&x);
	if (x.status != 202)
		fail_msg("POST /v1/transfers: %ld %s", x.status, x.body);
	memcpy(tid, x.tid, sizeof(tid));
	/* Past the bound: Suffolk answered the delivery 503, Norfolk
	 * retries, the transfer is still queued. */
	assert_int_equal(gwt_log_wait(&sfk, "event=store-stalled",
	    WAIT_MS + 3000), 1);
	assert_int_equal(gwt_log_wait(&nfk, "peer-503", 3000), 1);
	assert_true(gwt_log_count(&nfk, "peer-503") > retries0);
	st = transfer_status(tid);
	assert_string_equal(st, "queued");
	free(st);
	assert_true(gwt_now_ms() - t0 < stall_ms - 500);
	sleep_ms(stall_ms - (gwt_now_ms() - t0));
	fault(sfk_data, "");
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(h.status, 201);
	expect_delivered(tid, 30000);
	assert_false(gwt_log_contains(&nfk, "event=transfer-rejected"));
	assert_false(gwt_log_contains(&nfk, "event=transfer-failed"));
	entries_fetch(&nfk, &ln);
	entries_fetch(&sfk, &ls);
	assert_int_equal(entries_count(&ln, "transfer-out", "transfer", tid), 1);
	assert_int_equal(entries_count(&ln, "receipt", "transfer", tid), 1);
	assert_int_equal(entries_count(&ls, "transfer-in", "transfer", tid), 1);
	assert_int_equal(call(&sfk, "agency-police", "GET",
	    "/v1/records/NFK-STX-100", read_hdrs, NULL, NULL), 200);
	entries_free(&ln);
	entries_free(&ls);
}

/* limits.store_wait_max_ms: 1000 to 600000, or the start is refused
 * with the key named; a reload that changes it is refused whole (the
 * workers read it from the settings fixed at start). */
static void
test_store_wait_max_checked(void **state)
{
	const char *path = gwt_path(&env, "norfolk/gateway.json");
	const char *check[] = { gwt_prog(&env, "visor-gw"), "--config", path,
	    "--check-config", NULL };
	static const int bad[] = { 999, 600001, -1 };
	buf_t out = BUF_INIT, se = BUF_INIT;
	cJSON *j, *o;
	char *orig;
	size_t len, i;

	(void)state;
	assert_int_equal(file_read_all(path, 1 << 20, &orig, &len), 0);
	assert_int_equal(gwt_run(check, NULL, 0, NULL, NULL), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = gwt_json_load(path);
		o = cJSON_GetObjectItemCaseSensitive(j, "limits");
		cJSON_ReplaceItemInObjectCaseSensitive(o, "store_wait_max_ms",
		    cJSON_CreateNumber(bad[i]));
		assert_int_equal(gwt_json_save(path, j), 0);
		cJSON_Delete(j);
		buf_reset(&out);
		buf_reset(&se);
		assert_true(gwt_run(check, NULL, 0, &out, &se) != 0);
		if (se.data == NULL || strstr(se.data,
		    "limits.store_wait_max_ms") == NULL)
			fail_msg("--check-config with %d: %s", bad[i],
			    se.data ? se.data : "");
	}
	j = gwt_json_load(path);
	o = cJSON_GetObjectItemCaseSensitive(j, "limits");
	cJSON_ReplaceItemInObjectCaseSensitive(o, "store_wait_max_ms",
	    cJSON_CreateNumber(WAIT_MS + 1000));
	assert_int_equal(gwt_json_save(path, j), 0);
	cJSON_Delete(j);
	assert_int_equal(gwt_run(check, NULL, 0, NULL, NULL), 0);
	assert_int_equal(gwt_gw_hup(&nfk), 1);
	assert_true(gwt_log_contains(&nfk, "limits.store_wait_max_ms cannot "
	    "change without a restart"));
	assert_int_equal(file_write_atomic(path, orig, len, 0644), 0);
	free(orig);
	buf_free(&out);
	buf_free(&se);
}

/* ------------------------------------------------------------ fixture */

/* Read area's data_dir, and set the settings these tests need. */
static int
configure(const char *area, char *data_dir, size_t len)
{
	char rel[64];
	const char *path;
	cJSON *j, *o;

	snprintf(rel, sizeof(rel), "%s/gateway.json", area);
	path = gwt_path(&env, rel);
	if ((j = gwt_json_load(path)) == NULL)
		return -1;
	snprintf(data_dir, len, "%s", json_get_str(j, "data_dir"));
	o = cJSON_GetObjectItemCaseSensitive(j, "limits");
	if (o == NULL)
		o = cJSON_AddObjectToObject(j, "limits");
	cJSON_DeleteItemFromObjectCaseSensitive(o, "store_wait_max_ms");
	cJSON_AddNumberToObject(o, "store_wait_max_ms", WAIT_MS);
	/* Fast retries: a delivery refused 503 goes again within 0.5 s. */
	o = cJSON_GetObjectItemCaseSensitive(j, "transfer");
	cJSON_ReplaceItemInObjectCaseSensitive(o, "retry_base_ms",
	    cJSON_CreateNumber(100));
	cJSON_ReplaceItemInObjectCaseSensitive(o, "retry_max_ms",
	    cJSON_CreateNumber(500));
	if (gwt_json_save(path, j) < 0) {
		cJSON_Delete(j);
		return -1;
	}
	cJSON_Delete(j);
	return 0;
}

static int
start(const char *area, const char *data_dir, gwt_gw_t *gw)
{
	int rc;

	setenv(STORE_FAULTVFS_ENV, data_dir, 1);
	rc = gwt_gw_start(&env, area, gw);
	unsetenv(STORE_FAULTVFS_ENV);
	return rc;
}

static int
setup(void **state)
{
	(void)state;
	if (gwt_env_setup(&env, "norfolk,suffolk") < 0 ||
	    configure("norfolk", nfk_data, sizeof(nfk_data)) < 0 ||
	    configure("suffolk", sfk_data, sizeof(sfk_data)) < 0 ||
	    start("norfolk", nfk_data, &nfk) < 0 ||
	    start("suffolk", sfk_data, &sfk) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int rc = 0;

	(void)state;
	fault(nfk_data, "");
	fault(sfk_data, "");
	if (gwt_gw_stop_clean(&nfk) < 0)
		rc = -1;
	if (gwt_gw_stop_clean(&sfk) < 0)
		rc = -1;
	gwt_env_cleanup(&env);
	return rc;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sender_stalled),
		cmocka_unit_test(test_receiver_stalled),
		cmocka_unit_test(test_store_wait_max_checked),
	};

	return gwt_exit(cmocka_run_group_tests(tests, setup, teardown));
}
