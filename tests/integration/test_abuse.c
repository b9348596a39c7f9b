/*
 * An authenticated client that abuses its access: one agency certificate
 * opening many connections that each hold a large body half sent.  The
 * memory such requests hold is bounded (limits.max_request_memory_mib),
 * and one identity may take half of it: past either, a connection that
 * holds a large request is cut off and logged, while small requests, of
 * the flooding identity or another, are still answered, and what answered
 * requests held is given back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/ssl.h>

#include "client/https_client.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/buf.h"

#define FLOOD_CONNS 12
#define FLOOD_HELD 170000	/* bytes of body each flood connection sends */
#define FLOOD_LENGTH 200000	/* the Content-Length it announces */
#define LARGE_BODY 100000	/* a large request that gets its answer */

static gwt_env_t env;
static gwt_gw_t gw;

static const char *const agency_hdrs[] = { "X-Visor-Actor: T1",
    "X-Visor-Purpose: risk-management", "Content-Type: application/json",
    NULL };

/* A limit of 1 MiB, so that a dozen connections exceed it. */
static int
setup(void **state)
{
	char path[600];
	cJSON *c, *l;
	int rc;

	(void)state;
	if (gwt_env_setup(&env, "norfolk") < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/norfolk/gateway.json", env.dir);
	if ((c = gwt_json_load(path)) == NULL)
		return -1;
	l = cJSON_GetObjectItemCaseSensitive(c, "limits");
	rc = l != NULL &&
	    cJSON_AddNumberToObject(l, "max_request_memory_mib", 1) != NULL &&
	    gwt_json_save(path, c) == 0 ? 0 : -1;
	cJSON_Delete(c);
	if (rc < 0 || gwt_gw_start(&env, "norfolk", &gw) < 0)
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

/* The status of a PUT of body as norfolk's cert_name, or -1 if the
 * connection failed (cut off) before an answer. */
static long
put_status(const char *cert_name, const char *id, const char *body,
    size_t len)
{
	gwt_resp_t resp;
	char path[128], err[256];
	long status;

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	if (gwt_request(&env, &gw, "norfolk", cert_name, "PUT", path,
	    agency_hdrs, body, len, &resp, err, sizeof(err)) < 0)
		return -1;
	status = resp.status;
	gwt_resp_free(&resp);
	return status;
}

/* A body of len bytes the schema refuses (an unknown member), so that it
 * is answered without being stored. */
static char *
large_body(size_t len)
{
	static const char head[] = "{\"id\":\"ABUSE-0009\",\"pad\":\"";
	char *b = malloc(len);

	assert_non_null(b);
	assert_true(len > sizeof(head) + 2);
	memset(b, 'x', len);
	memcpy(b, head, sizeof(head) - 1);
	memcpy(b + len - 2, "\"}", 2);
	return b;
}

static int
raw_send(gwt_raw_t *r, const char *data, size_t len)
{
	size_t off = 0;
	int n;

	while (off < len) {
		n = SSL_write(r->ssl, data + off,
		    (int)(len - off > 16384 ? 16384 : len - off));
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* 1 if the gateway closed r within ms, 0 if it is still open. */
static int
raw_closed_within(gwt_raw_t *r, long ms)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN };
	char c;
	int n;

	if (poll(&p, 1, (int)gwt_ms(ms)) <= 0)
		return 0;
	n = SSL_read(r->ssl, &c, 1);
	return n <= 0;
}

/* Open FLOOD_CONNS connections as norfolk's cert_name, each sending the
 * head of a PUT and FLOOD_HELD bytes of its body; returns how many the
 * gateway cut off, after checking that each cut is logged with the
 * identity. */
static int
flood_open(const char *cert_name, gwt_raw_t *flood, const char *held)
{
	char cert[600], key[600], head[512], needle[128];
	int gone[FLOOD_CONNS] = { 0 };
	size_t before;
	int i, n, cut = 0, logged = 0;

	snprintf(cert, sizeof(cert), "%s/pki/norfolk/%s.crt", env.dir, cert_name);
	snprintf(key, sizeof(key), "%s/pki/norfolk/%s.key", env.dir, cert_name);
	snprintf(needle, sizeof(needle), "event=request-memory-full "
	    "identity=urn:visor:norfolk:agency:%s ",
	    cert_name + strlen("agency-"));
	before = gwt_log_count(&gw, needle);
	n = snprintf(head, sizeof(head), "PUT /v1/records/ABUSE-0002 HTTP/1.1\r\n"
	    "Host: x\r\nX-Visor-Actor: T1\r\nX-Visor-Purpose: risk-management\r\n"
	    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
	    FLOOD_LENGTH);
	for (i = 0; i < FLOOD_CONNS; i++) {
		assert_int_equal(gwt_raw_open(&env, gw.port, cert, key, 0, 0,
		    &flood[i]), 0);
		gone[i] = raw_send(&flood[i], head, (size_t)n) < 0 ||
		    raw_send(&flood[i], held, FLOOD_HELD) < 0;
	}
	for (i = 0; i < FLOOD_CONNS; i++)
		cut += gone[i] || raw_closed_within(&flood[i], 300);
	/* The workers write their log a tenth of a second at a time. */
	for (i = 0; i < 30; i++) {
		logged = (int)(gwt_log_count(&gw, needle) - before);
		if (logged >= cut)
			break;
		sleep_ms(100);
	}
	assert_int_equal(cut, logged);
	return cut;
}

static void
test_request_memory_bounded(void **state)
{
	static const char small[] =
	    "{\"id\":\"ABUSE-0001\",\"managing_area\":\"norfolk\",\"category\":1,"
	    "\"level\":1,\"person\":{\"surname\":\"Abuse\",\"forenames\":\"Test\","
	    "\"dob\":\"1980-01-01\"}}";
	gwt_raw_t police[FLOOD_CONNS], housing[FLOOD_CONNS];
	char *body = large_body(LARGE_BODY), *held = malloc(FLOOD_HELD);
	int i, cut;

	(void)state;
	assert_non_null(held);
	memset(held, ' ', FLOOD_HELD);
	/* What an answered request held is given back: more large requests
	 * one after the other than the limit holds at once, each answered. */
	for (i = 0; i < 15; i++)
		assert_int_equal(put_status("agency-police", "ABUSE-0009", body,
		    LARGE_BODY), 422);
	assert_int_equal(gwt_log_count(&gw, "event=request-memory-full"), 0);

	/* One identity may hold half of the 1 MiB: three of its bodies fit,
	 * the rest are cut off, each logged with the identity. */
	cut = flood_open("agency-police", police, held);
	assert_int_equal(cut, FLOOD_CONNS - 3);
	/* The other half is for the others: a large request of another
	 * agency is answered. */
	assert_int_equal(put_status("agency-probation", "ABUSE-0009", body,
	    LARGE_BODY), 422);

	/* A second identity takes the other half: the memory is full. */
	cut = flood_open("agency-housing", housing, held);
	assert_int_equal(cut, FLOOD_CONNS - 3);
	/* A large request of a third is cut off now (the cost of the bound),
	 * and said in the log... */
	assert_int_equal(put_status("agency-probation", "ABUSE-0009", body,
	    LARGE_BODY), -1);
	assert_true(gwt_log_wait(&gw, "event=request-memory-full "
	    "identity=urn:visor:norfolk:agency:probation ", 5000));
	/* ...but small writes, of any identity, are answered and stored. */
	assert_int_equal(put_status("agency-probation", "ABUSE-0001", small,
	    sizeof(small) - 1), 201);
	assert_int_equal(put_status("agency-police", "ABUSE-0001", small,
	    sizeof(small) - 1), 200);

	/* Once the floods go, their memory is given back. */
	for (i = 0; i < FLOOD_CONNS; i++) {
		gwt_raw_close(&police[i]);
		gwt_raw_close(&housing[i]);
	}
	for (i = 0; i < 50 && put_status("agency-probation", "ABUSE-0009",
	    body, LARGE_BODY) != 422; i++)
		sleep_ms(100);
	assert_true(i < 50);
	for (i = 0; i < 15; i++)
		assert_int_equal(put_status("agency-police", "ABUSE-0009", body,
		    LARGE_BODY), 422);
	free(held);
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_memory_bounded),
	};

	signal(SIGPIPE, SIG_IGN);
	if (https_global_init() < 0)
		return 1;
	return gwt_exit(cmocka_run_group_tests(tests, setup, teardown));
}
