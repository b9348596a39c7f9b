/*
 * A disk that stalls (a write or fdatasync that does not return for
 * seconds) under load, with the fault VFS's err=stall
 * (gateway/store_faultvfs.h): the writer is held in one commit while
 * clients keep sending.  A request whose job waited 10 s for the writer is
 * answered 503 with nothing of it written, rather than holding its client
 * until the client gives up; the batch the writer holds is answered once
 * the disk is back; /v1/health, /metrics and visorctl status answer
 * meanwhile, and the metrics show the queue; afterwards every
 * acknowledged request has its audit entry and no refused one has any.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "crypto/proof_json.h"
#include "gateway/store_faultvfs.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"

static gwt_env_t env;
static gwt_gw_t nfk;
static char nfk_data[512];
static int fault_id;

static const char *const hdrs[] = { "X-Visor-Actor: T1",
    "X-Visor-Purpose: risk-management", "X-Visor-Justification: stall test",
    "Content-Type: application/json", NULL };

static void
fault(const char *spec)
{
	char path[600], text[200];

	snprintf(path, sizeof(path), "%s/%s", nfk_data, STORE_FAULTVFS_CTL);
	if (spec[0] == '\0')
		text[0] = '\0';
	else
		snprintf(text, sizeof(text), "%s id=%d\n", spec, ++fault_id);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0644), 0);
}

#define NREQ 24
#define WAIT_MAX_MS 10000	/* limits.store_wait_max_ms, default */

/* The disk comes back after this: 14 s natively, 4 s after the gateway's
 * 10 s wait; under memcheck (make valgrind) the 24 handshakes and requests
 * take far longer to reach the queue, so the time after the 10 s scales. */
static long long
stall_ms(void)
{
	return WAIT_MAX_MS + gwt_ms(4000);
}

typedef struct {
	int n;
	long status;
	long long ms;
	char body[256];
} req_t;

static void
record_body(char *out, size_t len, int n)
{
	snprintf(out, len, "{\"id\":\"STL-%d\",\"managing_area\":\"norfolk\","
	    "\"category\":1,\"level\":1,\"person\":{\"surname\":\"Stall\","
	    "\"forenames\":\"Synthetic\",\"dob\":\"1980-01-01\"}}", n);
}

/* Odd n: GET STL-0; even n: PUT STL-n. */
static void *
send_one(void *arg)
{
	req_t *q = arg;
	gwt_resp_t resp;
	char err[256], path[96], body[512];
	long long t0 = gwt_now_ms();
	int get = q->n % 2;

	snprintf(path, sizeof(path), "/v1/records/STL-%d", get ? 0 : q->n);
	record_body(body, sizeof(body), q->n);
	if (gwt_request(&env, &nfk, "norfolk", "agency-police",
	    get ? "GET" : "PUT", path, hdrs, get ? NULL : body,
	    get ? 0 : strlen(body), &resp, err, sizeof(err)) < 0) {
		q->status = -1;
		snprintf(q->body, sizeof(q->body), "%s", err);
	} else {
		q->status = resp.status;
		snprintf(q->body, sizeof(q->body), "%s",
		    resp.body.data ? resp.body.data : "");
		gwt_resp_free(&resp);
	}
	q->ms = gwt_now_ms() - t0;
	return NULL;
}

static long
http(const char *method, const char *path, const char *body, buf_t *out)
{
	gwt_resp_t resp;
	char err[256];
	long st;

	if (gwt_request(&env, &nfk, "norfolk", "agency-police", method, path,
	    hdrs, body, body ? strlen(body) : 0, &resp, err, sizeof(err)) < 0)
		fail_msg("%s %s: %s", method, path, err);
	st = resp.status;
	if (out != NULL && resp.body.data != NULL)
		buf_puts(out, resp.body.data);
	gwt_resp_free(&resp);
	return st;
}

static unsigned long long
audit_size(void)
{
	unsigned long long n;

	assert_int_equal(gwt_audit_size(&env, &nfk, &n), 0);
	return n;
}

static double
metric(const char *name)
{
	double v;

	if (gwt_metric(&nfk, name, &v) != 0)
		fail_msg("no %s in /metrics", name);
	return v;
}

static void
test_stall_answers_503_unwritten(void **state)
{
	static req_t q[NREQ];
	pthread_t th[NREQ];
	char body[512], url[64], certpath[600], prog[600];
	const char *argv[] = { prog, "status", "--gateway", url, "--cert",
	    certpath, NULL };
	buf_t out = BUF_INIT;
	unsigned long long before, acked = 0, refused = 0;
	long long t0, t;
	int i;

	(void)state;
	record_body(body, sizeof(body), 0);
	assert_int_equal(http("PUT", "/v1/records/STL-0", body, NULL), 201);
	before = audit_size();
	fault("op=write,sync err=stall");
	t0 = gwt_now_ms();
	for (i = 0; i < NREQ; i++) {
		q[i].n = i + 1;
		assert_int_equal(pthread_create(&th[i], NULL, send_one, &q[i]), 0);
	}
	sleep_ms(3000);
	/* Stalled: the metrics show the wait.  Under memcheck the requests'
	 * handshakes take a while to bring their jobs to the queue, where
	 * each waits 10 s at most: look until one is seen waiting. */
	for (i = 0; gwt_valgrind() && i < 600; i++) {
		if (metric("visor_store_queued_jobs") >= 1 &&
		    metric("visor_store_oldest_wait_seconds") >= 1)
			break;
		sleep_ms(100);
	}
	assert_true(metric("visor_store_queued_jobs") >= 1);
	assert_true(metric("visor_store_oldest_wait_seconds") >= 1);
	/* And the operator's views still answer (well within the stall:
	 * 2 s natively, under memcheck a TLS handshake alone takes
	 * seconds). */
	t = gwt_now_ms();
	assert_int_equal(audit_size(), before);
	assert_true(gwt_now_ms() - t < gwt_ms(2000));
	snprintf(prog, sizeof(prog), "%s", gwt_prog(&env, "visorctl"));
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", nfk.port);
	snprintf(certpath, sizeof(certpath), "%s",
	    gwt_path(&env, "pki/norfolk/agency-police.crt"));
	assert_int_equal(gwt_run(argv, NULL, 0, &out, NULL), 0);
	buf_free(&out);
	sleep_ms(stall_ms() - (gwt_now_ms() - t0));
	fault("");
	for (i = 0; i < NREQ; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < NREQ; i++) {
		if (q[i].status == 503) {
			/* Answered while the disk still stalled, unwritten. */
			if (q[i].ms >= stall_ms() - 1000 ||
			    strstr(q[i].body, "-unavailable\"") == NULL)
				fail_msg("request %d: 503 after %lld ms: %s", q[i].n,
				    q[i].ms, q[i].body);
			refused++;
		} else if (q[i].status == 200 || q[i].status == 201) {
			/* In the batch the writer held: once the disk is back. */
			if (q[i].ms < stall_ms() - 1000)
				fail_msg("request %d: %ld after %lld ms, before "
				    "the disk came back", q[i].n, q[i].status,
				    q[i].ms);
			acked++;
		} else {
			fail_msg("request %d: %ld after %lld ms: %s", q[i].n,
			    q[i].status, q[i].ms, q[i].body);
		}
	}
	fprintf(stderr, "stall: %llu answered 503 unwritten, %llu once the "
	    "disk was back\n", refused, acked);
	assert_true(refused > 0);
	assert_true(acked > 0);
	assert_int_equal(metric("visor_store_wait_expired_total"), (double)refused);
	assert_int_equal(metric("visor_store_queued_jobs"), 0);
	/* One entry per acknowledged request, none for a refused one. */
	assert_int_equal(audit_size(), before + acked);
	for (i = 0; i < NREQ; i++) {
		char path[64];

		if (q[i].n % 2)
			continue;
		snprintf(path, sizeof(path), "/v1/records/STL-%d", q[i].n);
		assert_int_equal(http("GET", path, NULL, NULL),
		    q[i].status == 201 ? 200 : 404);
	}
	/* Served again without a restart. */
	record_body(body, sizeof(body), 1000);
	assert_int_equal(http("PUT", "/v1/records/STL-1000", body, NULL), 201);
}

/* Entries in [start, end) of the log with op and reason, as the auditor
 * reads them. */
static int
config_leaf(void *arg, uint64_t index, const uint8_t *leaf, size_t len)
{
	size_t *n = arg;
	char err[128];
	cJSON *j;
	const char *op, *reason;

	(void)index;
	if ((j = json_parse_strict((const char *)leaf, len, 16, err,
	    sizeof(err))) == NULL)
		return -1;
	op = json_get_str(j, "op");
	reason = json_get_str(j, "reason");
	if (op != NULL && strcmp(op, "config") == 0 && reason != NULL &&
	    strcmp(reason, "reload") == 0)
		(*n)++;
	cJSON_Delete(j);
	return 0;
}

static size_t
reload_entries(unsigned long long start, unsigned long long end)
{
	gwt_resp_t resp;
	char path[96], err[256];
	size_t n = 0, count;

	if (end <= start)
		return 0;
	snprintf(path, sizeof(path), "/v1/audit/entries?start=%llu&end=%llu",
	    start, end);
	if (gwt_request(&env, &nfk, "norfolk", "auditor", "GET", path, NULL,
	    NULL, 0, &resp, err, sizeof(err)) < 0)
		fail_msg("%s: %s", path, err);
	assert_int_equal(resp.status, 200);
	if (proof_json_entries(resp.body.data, resp.body.len, start, 1000,
	    config_leaf, &n, &count, err, sizeof(err)) < 0)
		fail_msg("%s: %s", path, err);
	gwt_resp_free(&resp);
	return n;
}

static void
wait_log_count(const char *needle, size_t want, long ms)
{
	long long until = gwt_now_ms() + gwt_ms(ms);

	while (gwt_log_count(&nfk, needle) < want && gwt_now_ms() < until)
		sleep_ms(20);
	if (gwt_log_count(&nfk, needle) < want)
		fail_msg("%zu of %zu \"%s\" after %ld ms",
		    gwt_log_count(&nfk, needle), want, needle, ms);
}

/* A reload (SIGHUP) while the disk stalls: it takes effect at once (its
 * config audit entry is queued, not waited for), the main loop goes on
 * (a second reload, health and metrics answer), and the entries are
 * written once the disk is back: one per reload, none lost, none twice,
 * though each waited past the bound (answered unwritten, kept by
 * audit_retry and submitted again). */
static void
test_sighup_during_stall(void **state)
{
	static req_t q;
	pthread_t th;
	unsigned long long before, size;
	size_t reloads0, failed0;
	long long t, t0, until;

	(void)state;
	before = audit_size();
	reloads0 = gwt_log_count(&nfk, "event=reloaded");
	failed0 = gwt_log_count(&nfk, "event=audit-write-failed op=config");
	fault("op=write,sync err=stall");
	t0 = gwt_now_ms();
	q.n = 3000;
	assert_int_equal(pthread_create(&th, NULL, send_one, &q), 0);
	sleep_ms(500);
	t = gwt_now_ms();
	assert_int_equal(kill(nfk.pid, SIGHUP), 0);
	wait_log_count("event=reloaded", reloads0 + 1, 2000);
	assert_int_equal(kill(nfk.pid, SIGHUP), 0);
	wait_log_count("event=reloaded", reloads0 + 2, 2000);
	assert_true(gwt_now_ms() - t < 3000);
	t = gwt_now_ms();
	assert_int_equal(audit_size(), before);
	assert_true(metric("visor_store_queued_jobs") >= 2);
	assert_true(gwt_now_ms() - t < 2000);
	/* Past the bound both entries were answered unwritten and kept. */
	wait_log_count("event=audit-write-failed op=config", failed0 + 2,
	    stall_ms());
	assert_true(gwt_now_ms() - t0 < stall_ms() - 500);
	assert_int_equal(kill(nfk.pid, SIGHUP), 0);
	wait_log_count("event=reloaded", reloads0 + 3, 2000);
	sleep_ms(stall_ms() - (gwt_now_ms() - t0));
	fault("");
	assert_int_equal(pthread_join(th, NULL), 0);
	/* In the held batch, or behind a checkpoint's held write. */
	if (q.status != 201 && q.status != 503)
		fail_msg("PUT during the stall: %ld %s", q.status, q.body);
	/* audit_retry writes the kept ones within about a second. */
	for (until = gwt_now_ms() + gwt_ms(10000); gwt_now_ms() < until;) {
		size = audit_size();
		if (reload_entries(before, size) >= 3)
			break;
		sleep_ms(200);
	}
	sleep_ms(2500);
	size = audit_size();
	assert_int_equal(reload_entries(before, size), 3);
	/* The three reloads and the PUT if it was acknowledged, nothing
	 * else. */
	assert_int_equal(size, before + 3 + (q.status == 201));
	assert_true(gwt_gw_alive(&nfk));
}

/* A stop during a stall: the drain runs its course, then the gateway says
 * that it waits for the disk (before, it waited without a word after
 * logging that it had stopped), and once the disk is back it exits 0 with
 * the write it held stored. */
static void
test_sigterm_during_stall(void **state)
{
	static req_t q;
	pthread_t th;
	long long until;
	size_t stalled;
	long st;

	(void)state;
	stalled = gwt_log_count(&nfk, "event=fault-injected");
	fault("op=write,sync err=stall");
	q.n = 2000;
	assert_int_equal(pthread_create(&th, NULL, send_one, &q), 0);
	sleep_ms(500);
	/* The writer is held (the PUT or a checkpoint reached the disk):
	 * under memcheck the PUT's handshake alone takes longer than the
	 * 500 ms, and a store with nothing to write closes at once. */
	for (until = gwt_now_ms() + gwt_ms(5000); gwt_now_ms() < until &&
	    gwt_log_count(&nfk, "event=fault-injected") == stalled;)
		sleep_ms(20);
	assert_int_equal(kill(nfk.pid, SIGTERM), 0);
	/* The drain's 10 s, then STORE_CLOSE_QUIET_MS. */
	assert_int_equal(gwt_log_wait(&nfk, "event=store-closing", 30000), 1);
	assert_true(gwt_gw_alive(&nfk));
	assert_int_equal(gwt_log_count(&nfk, "event=store-closed"), 0);
	fault("");
	assert_int_equal(pthread_join(th, NULL), 0);
	for (until = gwt_now_ms() + gwt_ms(30000);
	    gwt_gw_alive(&nfk) && gwt_now_ms() < until;)
		sleep_ms(20);
	assert_false(gwt_gw_alive(&nfk));
	assert_int_equal(nfk.exit_status, 0);
	assert_int_equal(gwt_log_count(&nfk, "event=store-closed"), 1);
	/* The restart's check proves the log against its checkpoint.  The
	 * PUT was in the held batch (stored before the exit) or queued
	 * behind a checkpoint's stalled write (answered 503 unwritten once
	 * it had waited 10 s): what its client was told holds. */
	setenv(STORE_FAULTVFS_ENV, nfk_data, 1);
	assert_int_equal(gwt_gw_start(&env, "norfolk", &nfk), 0);
	unsetenv(STORE_FAULTVFS_ENV);
	st = http("GET", "/v1/records/STL-2000", NULL, NULL);
	if (q.status == 201)
		assert_int_equal(st, 200);
	else if (q.status == 503)
		assert_int_equal(st, 404);
	else if (st != 200 && st != 404)
		fail_msg("PUT cut off (%s), then GET %ld", q.body, st);
}

static int
setup(void **state)
{
	char path[600], *text;
	size_t len;
	cJSON *j, *o;
	char err[200];

	(void)state;
	if (gwt_env_setup(&env, "norfolk") < 0)
		return -1;
	snprintf(path, sizeof(path), "%s", gwt_path(&env, "norfolk/gateway.json"));
	if (file_read_all(path, 1 << 20, &text, &len) < 0)
		return -1;
	j = json_parse_strict(text, len, 16, err, sizeof(err));
	free(text);
	snprintf(nfk_data, sizeof(nfk_data), "%s", json_get_str(j, "data_dir"));
	o = cJSON_GetObjectItemCaseSensitive(j, "audit");
	cJSON_ReplaceItemInObjectCaseSensitive(o, "checkpoint_interval_ms",
	    cJSON_CreateNumber(100));
	text = cJSON_Print(j);
	file_write_atomic(path, text, strlen(text), 0644);
	free(text);
	cJSON_Delete(j);
	setenv(STORE_FAULTVFS_ENV, nfk_data, 1);
	if (gwt_gw_start(&env, "norfolk", &nfk) < 0)
		return -1;
	unsetenv(STORE_FAULTVFS_ENV);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (gwt_gw_stop_clean(&nfk) < 0)
		return -1;
	gwt_env_cleanup(&env);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stall_answers_503_unwritten),
		cmocka_unit_test(test_sighup_during_stall),
		cmocka_unit_test(test_sigterm_during_stall),
	};

	return gwt_exit(cmocka_run_group_tests(tests, setup, teardown));
}
