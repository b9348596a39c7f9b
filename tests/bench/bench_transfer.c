/*
 * bench_transfer: transfers delivered end to end per second between two
 * real gateways on this machine (Norfolk -> Suffolk, quickstart setup), and
 * the latency from POST /v1/transfers to "delivered" on the sender.
 *
 * Every transfer is durable on both sides before it counts: the sender
 * answers 202 only after the outbox row and its transfer-out entry are
 * fsynced; the receiver answers with a receipt only after the record, its
 * transfer-in entry and the inbound row are; the sender marks it delivered
 * only after verifying that receipt and fsyncing it with a receipt entry.
 * After the timed run every receipt is fetched and verified again here
 * against the national root.
 *
 * Closed loop: SLOTS clients each POST a transfer, poll GET
 * /v1/transfers/{id} every POLL_MS until it is delivered, then start the
 * next.  Latency is from sending the POST to the answer that says
 * "delivered" (so it includes up to POLL_MS of polling granularity);
 * throughput is transfers delivered per second over the run.  Output:
 * RESULT lines (SPEC section 12).
 *
 *   bench_transfer [SECONDS]     load phase length, default 10
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/https_client.h"
#include "crypto/tls_trust.h"
#include "gateway/transfer_proto.h"
#include "tests/support/gwtest.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"

/* Every transfer moves a different person: once a record has moved, the
 * receiver manages it and refuses the same record from the old area. */
#define RECORDS 4000
#define SLOTS 16
#define POLL_MS 10
#define MAX_TRANSFERS 200000

typedef struct {
	char tid[TRANSFER_ID_LEN + 1];
	long long posted_ms;	/* when the POST was sent */
	long long delivered_ms;	/* when an answer said "delivered" */
} xfer_t;

typedef struct bench bench_t;

/* One client of the closed loop: POST, then GET until delivered. */
typedef struct {
	bench_t *b;
	xfer_t cur;
	char get_url[160];
} slot_t;

struct bench {
	https_batch_t *batch;
	int port;
	char post_url[128];
	xfer_t *x;
	size_t n, refused, failed, bad, next_record;
	long long stop_ms;
	slot_t slots[SLOTS];
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *const hdrs_move[] = { "X-Visor-Actor: BENCH-1",
    "X-Visor-Purpose: offender-move", "X-Visor-Justification: benchmark",
    NULL };
static const char *const hdrs_write[] = { "X-Visor-Actor: BENCH-1",
    "X-Visor-Purpose: risk-management", NULL };

static void slot_post(slot_t *sl);

static void
slot_get(slot_t *sl, long delay_ms);

static void
get_done(void *arg, const https_result_t *res)
{
	slot_t *sl = arg;
	bench_t *b = sl->b;
	const char *st;
	cJSON *j;
	char err[64];

	if (res->rc != 0 || res->resp->status != 200 ||
	    (j = json_parse_strict(res->resp->body.data, res->resp->body.len,
	    16, err, sizeof(err))) == NULL) {
		b->failed++;
		slot_get(sl, POLL_MS);
		return;
	}
	st = json_get_str(j, "status");
	if (st != NULL && strcmp(st, "delivered") == 0) {
		sl->cur.delivered_ms = mono_ms();
		if (b->n < MAX_TRANSFERS)
			b->x[b->n++] = sl->cur;
		if (mono_ms() < b->stop_ms)
			slot_post(sl);
	} else if (st != NULL && strcmp(st, "queued") == 0)
		slot_get(sl, POLL_MS);
	else {
		b->bad++;
		if (mono_ms() < b->stop_ms)
			slot_post(sl);
	}
	cJSON_Delete(j);
}

static void
slot_get(slot_t *sl, long delay_ms)
{
	https_request_t req;

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = sl->get_url;
	req.headers = hdrs_move;
	https_batch_add(sl->b->batch, &req, delay_ms, get_done, sl);
}

static void
post_done(void *arg, const https_result_t *res)
{
	slot_t *sl = arg;
	bench_t *b = sl->b;
	const char *tid;
	cJSON *j;
	char err[64];

	if (res->rc != 0 || res->resp->status != 202) {
		if (res->rc != 0)
			b->failed++;
		else
			b->refused++;
		if (mono_ms() < b->stop_ms)
			slot_post(sl);
		return;
	}
	j = json_parse_strict(res->resp->body.data, res->resp->body.len, 4, err,
	    sizeof(err));
	tid = j != NULL ? json_get_str(j, "transfer_id") : NULL;
	if (tid == NULL || strlen(tid) != TRANSFER_ID_LEN) {
		b->bad++;
		cJSON_Delete(j);
		return;
	}
	memcpy(sl->cur.tid, tid, TRANSFER_ID_LEN + 1);
	snprintf(sl->get_url, sizeof(sl->get_url),
	    "https://127.0.0.1:%d/v1/transfers/%s", b->port, tid);
	cJSON_Delete(j);
	slot_get(sl, POLL_MS);
}

static void
slot_post(slot_t *sl)
{
	bench_t *b = sl->b;
	https_request_t req;
	char body[256];
	int len;

	if (b->next_record >= RECORDS)
		return;		/* every preloaded record has moved */
	len = snprintf(body, sizeof(body), "{\"record_id\":\"NFK-BENCH-%04zu\","
	    "\"to_area\":\"suffolk\",\"purpose\":\"offender-move\","
	    "\"justification\":\"benchmark\"}", b->next_record++);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = b->post_url;
	req.headers = hdrs_move;
	req.body = body;
	req.len = (size_t)len;
	memset(&sl->cur, 0, sizeof(sl->cur));
	sl->cur.posted_ms = mono_ms();
	https_batch_add(b->batch, &req, 0, post_done, sl);
}

/* The police client posts ~500 transfers a second and polls each every
 * POLL_MS, and Suffolk receives ~500 deliveries a second from Norfolk:
 * both past limits.identity_requests_per_second's default.  A limit
 * never met keeps the check on every request without refusing one. */
static int
limits_unreached(const gwt_env_t *e, const char *area)
{
	char path[600];
	cJSON *c, *l;
	int rc;

	snprintf(path, sizeof(path), "%s/%s/gateway.json", e->dir, area);
	if ((c = gwt_json_load(path)) == NULL)
		return -1;
	l = cJSON_GetObjectItemCaseSensitive(c, "limits");
	rc = l != NULL &&
	    cJSON_AddNumberToObject(l, "identity_requests_per_second",
	    1000000) != NULL &&
	    cJSON_AddNumberToObject(l, "identity_request_burst", 1000000) !=
	    NULL && gwt_json_save(path, c) == 0 ? 0 : -1;
	cJSON_Delete(c);
	return rc;
}

static https_client_t *
client_for(const gwt_env_t *e, const char *area, const char *name,
    const char *gw_area)
{
	https_client_options_t o;
	char cert[600], key[600], expect[80], err[256];
	https_client_t *c;

	snprintf(cert, sizeof(cert), "%s/pki/%s/%s.crt", e->dir, area, name);
	snprintf(key, sizeof(key), "%s/pki/%s/%s.key", e->dir, area, name);
	snprintf(expect, sizeof(expect), "urn:visor:%s:gateway", gw_area);
	memset(&o, 0, sizeof(o));
	o.cert = cert;
	o.key = key;
	o.root = gwt_path(e, "pki/root.crt");
	o.expect_identity = expect;
	if ((c = https_client_new(&o, err, sizeof(err))) == NULL)
		fprintf(stderr, "bench_transfer: %s\n", err);
	return c;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Fetch every transfer's receipt from the sender and verify it. */
static size_t
verify_receipts(const gwt_env_t *e, int port, https_client_t *c, xfer_t *x,
    size_t n)
{
	const char *cas[2], *crls[2];
	char ca1[600], ca2[600], crl1[600], crl2[600], url[200], err[256];
	tls_trust_t *trust;
	https_response_t r;
	transfer_receipt_t rc;
	size_t i, ok = 0;
	cJSON *j, *w;
	char *text;

	snprintf(ca1, sizeof(ca1), "%s/pki/norfolk/ca.crt", e->dir);
	snprintf(ca2, sizeof(ca2), "%s/pki/suffolk/ca.crt", e->dir);
	snprintf(crl1, sizeof(crl1), "%s/pki/norfolk/crl.pem", e->dir);
	snprintf(crl2, sizeof(crl2), "%s/pki/suffolk/crl.pem", e->dir);
	cas[0] = ca1;
	cas[1] = ca2;
	crls[0] = crl1;
	crls[1] = crl2;
	if ((trust = tls_trust_load(gwt_path(e, "pki/root.crt"), cas, 2, crls,
	    2, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bench_transfer: trust: %s\n", err);
		return 0;
	}
	for (i = 0; i < n; i++) {
		snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/transfers/%s",
		    port, x[i].tid);
		if (https_client_call(c, "GET", url, hdrs_move, NULL, 0, &r, err,
		    sizeof(err)) == 0 && r.status == 200 &&
		    (j = json_parse_strict(r.body.data, r.body.len, 16, err,
		    sizeof(err))) != NULL) {
			w = cJSON_GetObjectItemCaseSensitive(j, "receipt");
			if (cJSON_IsObject(w) &&
			    (text = cJSON_PrintUnformatted(w)) != NULL) {
				if (transfer_receipt_verify(text, strlen(text), trust,
				    "urn:visor:suffolk:gateway", x[i].tid, NULL, &rc,
				    err, sizeof(err)) == 0)
					ok++;
				free(text);
			}
			cJSON_Delete(j);
		}
		https_response_free(&r);
	}
	tls_trust_free(trust);
	return ok;
}

int
main(int argc, char **argv)
{
	gwt_env_t env;
	gwt_gw_t nfk, sfk;
	bench_t b;
	https_client_t *pc = NULL, *wc = NULL;
	char err[256], url[200], body[1024];
	https_response_t r;
	long long first_ms, last_ms, *lat = NULL;
	double secs = 10, el, rate;
	size_t i, verified, k;
	int rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && ((secs = strtod(argv[1], NULL)) <= 0 || secs > 50))
		secs = 10;
	memset(&b, 0, sizeof(b));
	memset(&nfk, 0, sizeof(nfk));
	memset(&sfk, 0, sizeof(sfk));
	if (https_global_init() < 0 || gwt_env_setup(&env, "norfolk,suffolk") < 0) {
		fprintf(stderr, "bench_transfer: quickstart failed\n");
		return 1;
	}
	if (limits_unreached(&env, "norfolk") < 0 ||
	    limits_unreached(&env, "suffolk") < 0 ||
	    gwt_gw_start(&env, "norfolk", &nfk) < 0 ||
	    gwt_gw_start(&env, "suffolk", &sfk) < 0) {
		fprintf(stderr, "bench_transfer: gateways did not start (%s)\n",
		    env.dir);
		goto out;
	}
	if ((wc = client_for(&env, "norfolk", "agency-probation", "norfolk")) == NULL ||
	    (pc = client_for(&env, "norfolk", "agency-police", "norfolk")) == NULL)
		goto out;
	for (i = 0; i < RECORDS; i++) {
		int len = snprintf(body, sizeof(body),
		    "{\"id\":\"NFK-BENCH-%04zu\",\"managing_area\":\"norfolk\","
		    "\"category\":2,\"level\":2,\"person\":{\"surname\":\"EXAMPLE\","
		    "\"forenames\":\"Synthetic\",\"dob\":\"1980-01-02\"},"
		    "\"addresses\":[{\"type\":\"home\",\"line1\":\"1 Test Street\","
		    "\"town\":\"Norwich\",\"postcode\":\"NR1 9ZZ\"}],"
		    "\"risk\":{\"rosh\":\"high\",\"people_at_risk\":[\"synthetic\"]},"
		    "\"health\":{\"notes\":[\"synthetic\"]},"
		    "\"intelligence\":[{\"grade\":\"B2\",\"handling\":\"shareable\","
		    "\"date\":\"2026-04-01\",\"text\":\"synthetic\"},{\"grade\":\"C3\","
		    "\"handling\":\"police-only\",\"date\":\"2026-05-01\","
		    "\"text\":\"synthetic\"}]}", i);

		snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/records/"
		    "NFK-BENCH-%04zu", nfk.port, i);
		if (https_client_call(wc, "PUT", url, hdrs_write, body,
		    (size_t)len, &r, err, sizeof(err)) < 0 || r.status != 201) {
			fprintf(stderr, "bench_transfer: PUT: %ld %s\n", r.status,
			    r.body.data ? r.body.data : err);
			https_response_free(&r);
			goto out;
		}
		https_response_free(&r);
	}
	printf("# cores %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
	printf("# transfers norfolk -> suffolk on loopback: closed loop of %d "
	    "clients (libcurl multi, keep-alive), each POST then GET every %d ms "
	    "until delivered; %.0f s; record of %zu bytes before filtering (sent: "
	    "no health, shareable intelligence only); durable (fsync) on both "
	    "sides, receipts verified by the sender and again here\n", SLOTS,
	    POLL_MS, secs, strlen(body));

	if ((b.x = calloc(MAX_TRANSFERS, sizeof(*b.x))) == NULL ||
	    (b.batch = https_batch_new(pc, SLOTS * 2, err, sizeof(err))) == NULL)
		goto out;
	b.port = nfk.port;
	snprintf(b.post_url, sizeof(b.post_url),
	    "https://127.0.0.1:%d/v1/transfers", nfk.port);
	first_ms = mono_ms();
	b.stop_ms = first_ms + (long long)(secs * 1000);
	for (i = 0; i < SLOTS; i++) {
		b.slots[i].b = &b;
		slot_post(&b.slots[i]);
	}
	if (https_batch_run(b.batch) < 0 || b.n == 0) {
		fprintf(stderr, "bench_transfer: no transfer delivered (%zu "
		    "refused, %zu failed)\n", b.refused, b.failed);
		goto out;
	}
	if ((lat = calloc(b.n, sizeof(*lat))) == NULL)
		goto out;
	last_ms = first_ms;
	for (i = 0; i < b.n; i++) {
		lat[i] = b.x[i].delivered_ms - b.x[i].posted_ms;
		if (b.x[i].delivered_ms > last_ms)
			last_ms = b.x[i].delivered_ms;
	}
	qsort(lat, b.n, sizeof(*lat), cmp_ll);
	el = (double)(last_ms - first_ms) / 1000.0;
	rate = el > 0 ? (double)b.n / el : 0;
	verified = verify_receipts(&env, nfk.port, pc, b.x, b.n);
	printf("# %zu transfers delivered in %.2f s (%zu refused, %zu transport "
	    "failures, %zu not delivered); %zu receipts re-verified against the "
	    "national root\n", b.n, el, b.refused, b.failed, b.bad, verified);
	if (verified != b.n) {
		fprintf(stderr, "bench_transfer: %zu receipts do not verify\n",
		    b.n - verified);
		goto out;
	}
	k = (b.n * 99) / 100;
	printf("RESULT transfers_delivered %.1f transfers/s\n", rate);
	printf("RESULT transfer_latency_p50 %lld ms\n", lat[b.n / 2]);
	printf("RESULT transfer_latency_p99 %lld ms\n", lat[k < b.n ? k : b.n - 1]);
	rc = 0;
out:
	free(lat);
	https_batch_free(b.batch);
	free(b.x);
	https_client_free(pc);
	https_client_free(wc);
	if (nfk.pid > 0)
		gwt_gw_stop(&nfk);
	if (sfk.pid > 0)
		gwt_gw_stop(&sfk);
	if (rc == 0)
		gwt_env_cleanup(&env);
	else
		fprintf(stderr, "bench_transfer: files kept in %s\n", env.dir);
	return rc;
}
