/*
 * limits.identity_requests_per_second and identity_request_burst on a real
 * gateway: a flood from one client identity gets 429 rate-limited with
 * Retry-After: 1 (each refusal counted in /metrics, the counts logged as
 * event=rate-limited at most once a second and written to the audit log as
 * refused-summary entries, never one by one), while another identity at the
 * same time is served, and /v1/health of the flooding identity too; after
 * a second the flooder is served again; the audit log still verifies;
 * visorctl push of more records than the limit allows gets them all stored
 * through its retries; a reload changes the limit, and one with a value
 * out of range is refused; clients that leave while their refusal is held
 * break nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/ssl.h>

#include "client/https_client.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/buf.h"
#include "util/fileio.h"

#define RATE 10
#define BURST 10
#define FLOOD 300
#define IN_FLIGHT 60
#define PUSHED 40
#define POLICE "urn:visor:norfolk:agency:police"

static gwt_env_t env;
static gwt_gw_t gw;

static const char *const read_hdrs[] = { "X-Visor-Actor: T1",
    "X-Visor-Purpose: risk-management", "X-Visor-Justification: test",
    NULL };

static int
set_limits(long rate, long burst)
{
	char path[600];
	cJSON *c, *l;
	int rc;

	snprintf(path, sizeof(path), "%s/norfolk/gateway.json", env.dir);
	if ((c = gwt_json_load(path)) == NULL)
		return -1;
	l = cJSON_GetObjectItemCaseSensitive(c, "limits");
	cJSON_DeleteItemFromObjectCaseSensitive(l, "identity_requests_per_second");
	cJSON_DeleteItemFromObjectCaseSensitive(l, "identity_request_burst");
	rc = l != NULL &&
	    cJSON_AddNumberToObject(l, "identity_requests_per_second",
	    (double)rate) != NULL &&
	    cJSON_AddNumberToObject(l, "identity_request_burst",
	    (double)burst) != NULL &&
	    gwt_json_save(path, c) == 0 ? 0 : -1;
	cJSON_Delete(c);
	return rc;
}

static int
setup(void **state)
{
	(void)state;
	if (gwt_env_setup(&env, "norfolk") < 0 || set_limits(RATE, BURST) < 0 ||
	    gwt_gw_start(&env, "norfolk", &gw) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int rc;

	(void)state;
	rc = gwt_gw_stop_clean(&gw);
	gwt_env_cleanup(&env);
	return rc;
}

/* The value of a counter line "name value" in /metrics, or -1. */
static long long
metric(const char *name)
{
	double v;

	return gwt_metric(&gw, name, &v) == 0 ? (long long)v : -1;
}

/* The refusals event=rate-limited lines of the log give for identity uri
 * (their refused= summed), and how many lines; -1 if unreadable. */
static long
logged_refusals(const char *uri, long *lines)
{
	char needle[200], *data = NULL, *p;
	size_t len;
	long sum = 0;

	*lines = 0;
	if (file_read_all(gw.log, 64u << 20, &data, &len) < 0)
		return -1;
	snprintf(needle, sizeof(needle),
	    "event=rate-limited identity=%s refused=", uri);
	for (p = data; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
		sum += strtol(p + strlen(needle), NULL, 10);
		(*lines)++;
	}
	free(data);
	return sum;
}

/* One GET of path as norfolk's cert on client c: its status; *retry_after
 * set to 1 if a 429 carried "Retry-After: 1" and the rate-limited code. */
static long
get(struct https_client *c, const char *path, int *retry_after)
{
	https_response_t resp;
	char url[160], err[256], v[16];
	long status;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", gw.port, path);
	if (https_client_call(c, "GET", url, read_hdrs, NULL, 0, &resp, err,
	    sizeof(err)) < 0) {
		https_response_free(&resp);
		fprintf(stderr, "  GET %s: %s\n", path, err);
		return -1;
	}
	status = resp.status;
	if (retry_after != NULL)
		*retry_after = status == 429 &&
		    https_response_header(&resp, "Retry-After", v, sizeof(v)) == 0 &&
		    strcmp(v, "1") == 0 && resp.body.data != NULL &&
		    strstr(resp.body.data, "\"code\":\"rate-limited\"") != NULL;
	https_response_free(&resp);
	return status;
}

/* The status of GET path as norfolk's cert_name on a new client. */
static long
get_status_as(const char *cert_name, const char *path)
{
	struct https_client *c = gwt_client(&env, "norfolk", cert_name, 10000);
	long st;

	assert_non_null(c);
	st = get(c, path, NULL);
	https_client_free(c);
	return st;
}

static int
run_audit(const char *sub, const char *const *extra, buf_t *out)
{
	const char *argv[24];
	char url[64], cert[600];
	size_t n = 0, i;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d", gw.port);
	snprintf(cert, sizeof(cert), "%s/pki/norfolk/auditor.crt", env.dir);
	argv[n++] = gwt_prog(&env, "visorctl");
	argv[n++] = "audit";
	argv[n++] = sub;
	argv[n++] = "--gateway";
	argv[n++] = url;
	argv[n++] = "--cert";
	argv[n++] = cert;
	for (i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	buf_init(out, 0);
	return gwt_run(argv, NULL, 0, out, NULL);
}

/* The flood: FLOOD reads of absent ids as police, IN_FLIGHT at once. */
struct flood {
	struct https_client *c;
	long n404, n429, other;
	int all_retry_after;
	atomic_int done;
	long long elapsed_ms;
};

static void
flood_done(void *arg, const https_result_t *res)
{
	struct flood *f = arg;
	char v[16];

	if (res->rc < 0 || (res->resp->status != 404 &&
	    res->resp->status != 429)) {
		f->other++;
		return;
	}
	if (res->resp->status == 404) {
		f->n404++;
		return;
	}
	f->n429++;
	if (https_response_header(res->resp, "Retry-After", v, sizeof(v)) < 0 ||
	    strcmp(v, "1") != 0 || res->resp->body.data == NULL ||
	    strstr(res->resp->body.data, "\"code\":\"rate-limited\"") == NULL)
		f->all_retry_after = 0;
}

static void *
flood_run(void *arg)
{
	struct flood *f = arg;
	https_batch_t *b;
	https_request_t req;
	char url[160], err[256];
	long long t0 = gwt_now_ms();
	long i;

	b = https_batch_new(f->c, IN_FLIGHT, err, sizeof(err));
	for (i = 0; b != NULL && i < FLOOD; i++) {
		snprintf(url, sizeof(url),
		    "https://127.0.0.1:%d/v1/records/ABSENT-%04ld", gw.port, i);
		memset(&req, 0, sizeof(req));
		req.method = "GET";
		req.url = url;
		req.headers = read_hdrs;
		if (https_batch_add(b, &req, 0, flood_done, f) < 0)
			f->other++;
	}
	if (b == NULL || https_batch_run(b) < 0)
		f->other++;
	https_batch_free(b);
	f->elapsed_ms = gwt_now_ms() - t0;
	atomic_store(&f->done, 1);
	return NULL;
}

static void
test_flood_refused_others_served(void **state)
{
	struct https_client *probation, *police_health;
	struct flood f;
	pthread_t t;
	unsigned long long size0, size1, want;
	long long refused_metric;
	long nprob = 0, logged, lines, i;
	char path[64];
	const char *search[] = { "--actor", POLICE, "--op", "deny", NULL };
	buf_t out;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.all_retry_after = 1;
	f.c = gwt_client(&env, "norfolk", "agency-police", 30000);
	probation = gwt_client(&env, "norfolk", "agency-probation", 10000);
	police_health = gwt_client(&env, "norfolk", "agency-police", 10000);
	assert_non_null(f.c);
	assert_non_null(probation);
	assert_non_null(police_health);
	assert_int_equal(gwt_audit_size(&env, &gw, &size0), 0);
	assert_int_equal(pthread_create(&t, NULL, flood_run, &f), 0);
	/* Meanwhile another agency, on its own bucket, is never refused
	 * (it stays under the rate), and the flooder's health checks are
	 * not counted. */
	for (i = 0; !atomic_load(&f.done); i++) {
		sleep_ms(150);
		snprintf(path, sizeof(path), "/v1/records/ABSENT-P%03ld", i);
		assert_int_equal(get(probation, path, NULL), 404);
		nprob++;
		assert_int_equal(get(police_health, "/v1/health", NULL), 200);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(nprob > 0);
	assert_int_equal(f.other, 0);
	/* At most the burst and the rate over the time taken (and one for
	 * a millisecond's rounding), and the rest refused with Retry-After,
	 * each held a second: the flood took that long at least. */
	assert_true(f.n429 > 0);
	assert_true(f.n404 <= BURST + RATE * (f.elapsed_ms / 1000 + 1));
	assert_true(f.all_retry_after);
	assert_true(f.elapsed_ms >= 1000);
	/* Served again once the bucket has refilled. */
	sleep_ms(1100);
	assert_int_equal(get(f.c, "/v1/records/ABSENT-9999", NULL), 404);
	f.n404++;
	/* Every refusal counted; the log's summaries (the last one within
	 * a second or two, from the gateway's tick) add up to them. */
	refused_metric = metric("visor_requests_rate_limited_total");
	assert_int_equal(refused_metric, f.n429);
	for (i = 0; i < 40 && logged_refusals(POLICE, &lines) < f.n429; i++)
		sleep_ms(100);
	logged = logged_refusals(POLICE, &lines);
	assert_int_equal(logged, f.n429);
	/* At most once a second (and once more for the first refusal). */
	assert_true(lines >= 1);
	assert_true(lines <= f.elapsed_ms / 1000 + 3);
	assert_false(gwt_log_contains(&gw, "identity=urn:visor:norfolk:agency:"
	    "probation refused="));
	/* The audit log got each 404 (probation's too), one entry per
	 * summary, and nothing for each refusal. */
	want = size0 + (unsigned long long)(f.n404 + nprob + lines);
	for (i = 0; i < 30; i++) {
		assert_int_equal(gwt_audit_size(&env, &gw, &size1), 0);
		if (size1 >= want)
			break;
		sleep_ms(100);
	}
	assert_int_equal(size1, want);
	assert_int_equal(run_audit("search", search, &out), 0);
	assert_non_null(out.data);
	assert_non_null(strstr(out.data, "\"result\":\"refused-summary\""));
	assert_non_null(strstr(out.data, "\"reason\":\"rate-limited:"));
	buf_free(&out);
	assert_int_equal(run_audit("verify", NULL, &out), 0);
	buf_free(&out);
	https_client_free(f.c);
	https_client_free(probation);
	https_client_free(police_health);
}

/* visorctl push of more records than the burst, faster than the rate:
 * the 429s are retried (Retry-After: 1) and every record is stored. */
static void
test_push_through_retries(void **state)
{
	char url[64], cert[600], key[600], in[600];
	const char *gen[] = { gwt_prog(&env, "visorctl"), "gen", "--count",
	    "40", "--area", "norfolk", "--seed", "3", NULL };
	const char *push[] = { gwt_prog(&env, "visorctl"), "push", "--gateway",
	    url, "--cert", cert, "--key", key, "--actor", "PRB-1",
	    "--purpose", "risk-management", "--jsonl", in, NULL };
	buf_t recs = BUF_INIT, out = BUF_INIT, err = BUF_INIT;
	long long before = metric("visor_requests_rate_limited_total");
	char expect[128];

	(void)state;
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", gw.port);
	snprintf(cert, sizeof(cert), "%s/pki/norfolk/agency-probation.crt",
	    env.dir);
	snprintf(key, sizeof(key), "%s/pki/norfolk/agency-probation.key",
	    env.dir);
	snprintf(in, sizeof(in), "%s/push.jsonl", env.dir);
	assert_int_equal(gwt_run(gen, NULL, 0, &recs, NULL), 0);
	assert_int_equal(file_write_atomic(in, recs.data, recs.len, 0644), 0);
	assert_int_equal(gwt_run(push, NULL, 0, &out, &err), 0);
	snprintf(expect, sizeof(expect), "%d records: %d sent (%d created",
	    PUSHED, PUSHED, PUSHED);
	if (out.data == NULL || strstr(out.data, expect) == NULL)
		fail_msg("push: %s %s", out.data ? out.data : "",
		    err.data ? err.data : "");
	/* It did meet the limit. */
	assert_true(metric("visor_requests_rate_limited_total") > before);
	buf_free(&recs);
	buf_free(&out);
	buf_free(&err);
}

/* A reload changes the limit of requests already arriving; one with a
 * value out of range is refused and the limit in force stays. */
static void
test_reload_changes_limit(void **state)
{
	struct https_client *police;
	char path[64];
	long i, n429 = 0;

	(void)state;
	police = gwt_client(&env, "norfolk", "agency-police", 10000);
	assert_non_null(police);
	assert_int_equal(set_limits(100000, 100000), 0);
	assert_int_equal(gwt_gw_hup(&gw), 0);
	for (i = 0; i < FLOOD; i++) {
		snprintf(path, sizeof(path), "/v1/records/ABSENT-%04ld", i);
		n429 += get(police, path, NULL) == 429;
	}
	assert_int_equal(n429, 0);
	assert_int_equal(set_limits(1, 0), 0);
	assert_int_equal(gwt_gw_hup(&gw), 1);
	assert_true(gwt_log_contains(&gw, "limits.identity_request_burst: "
	    "must be an integer from 1 to 1000000"));
	for (i = 0; i < FLOOD; i++)
		n429 += get(police, "/v1/records/ABSENT-0001", NULL) == 429;
	assert_int_equal(n429, 0);
	/* One a second, one at a time: the second of two at once is
	 * refused. */
	assert_int_equal(set_limits(1, 1), 0);
	assert_int_equal(gwt_gw_hup(&gw), 0);
	for (i = 0; i < 3; i++)
		n429 += get(police, "/v1/records/ABSENT-0002", NULL) == 429;
	assert_true(n429 >= 1);
	https_client_free(police);
}

/* Clients that leave while their refusal is held: the answer goes
 * nowhere, nothing breaks (teardown checks the gateway stops cleanly,
 * with no sanitizer report), and others are served meanwhile. */
static void
test_client_leaves_while_held(void **state)
{
	static const char req[] = "GET /v1/records/ABSENT-0003 HTTP/1.1\r\n"
	    "Host: x\r\nX-Visor-Actor: T1\r\nX-Visor-Purpose: "
	    "risk-management\r\nX-Visor-Justification: test\r\n\r\n";
	gwt_raw_t raw[8];
	char cert[600], key[600];
	long long held0 = metric("visor_requests_rate_limited_total");
	int i;

	(void)state;
	assert_int_equal(set_limits(1, 1), 0);
	assert_int_equal(gwt_gw_hup(&gw), 0);
	snprintf(cert, sizeof(cert), "%s/pki/norfolk/agency-police.crt", env.dir);
	snprintf(key, sizeof(key), "%s/pki/norfolk/agency-police.key", env.dir);
	for (i = 0; i < 8; i++) {
		assert_int_equal(gwt_raw_open(&env, gw.port, cert, key, 0, 0,
		    &raw[i]), 0);
		assert_int_equal(SSL_write(raw[i].ssl, req, (int)sizeof(req) - 1),
		    (int)sizeof(req) - 1);
	}
	/* Refused (all but at most one), then gone before the answer. */
	for (i = 0; i < 50 && metric("visor_requests_rate_limited_total") <
	    held0 + 7; i++)
		sleep_ms(20);
	assert_true(metric("visor_requests_rate_limited_total") >= held0 + 7);
	for (i = 0; i < 8; i++)
		gwt_raw_close(&raw[i]);
	assert_int_equal(get_status_as("agency-probation", "/v1/health"), 200);
	sleep_ms(1500);
	assert_true(gwt_gw_alive(&gw));
	assert_int_equal(get_status_as("agency-probation", "/v1/health"), 200);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flood_refused_others_served),
		cmocka_unit_test(test_push_through_retries),
		cmocka_unit_test(test_reload_changes_limit),
		cmocka_unit_test(test_client_leaves_while_held),
	};
	return gwt_exit(cmocka_run_group_tests(tests, setup, teardown));
}
