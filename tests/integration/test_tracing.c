/*
 * Following one request (docs/OPERATIONS.md, Follow a request): the request
 * id is in the answer's X-Request-Id, the error body, the gateway's log
 * line and the audit entry; a transfer is followed across gateways by its
 * transfer id, in both gateways' logs and audit logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "client/https_client.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/b64.h"
#include "util/json.h"

static gwt_env_t env;
static gwt_gw_t norfolk, suffolk;

static long
call(gwt_gw_t *gw, const char *area, const char *cert, const char *method,
    const char *path, const char *const *hdrs, const char *body, buf_t *out,
    char *reqid, size_t reqidlen)
{
	https_response_t hr;
	gwt_resp_t resp;
	char err[256];
	long status;

	if (gwt_request(&env, gw, area, cert, method, path, hdrs, body,
	    body ? strlen(body) : 0, &resp, err, sizeof(err)) < 0)
		fail_msg("%s %s: %s", method, path, err);
	status = resp.status;
	if (out != NULL && resp.body.data != NULL)
		buf_puts(out, resp.body.data);
	if (reqid != NULL) {
		memset(&hr, 0, sizeof(hr));
		hr.headers = resp.headers;
		assert_int_equal(https_response_header(&hr, "X-Request-Id", reqid,
		    reqidlen), 0);
	}
	gwt_resp_free(&resp);
	return status;
}

/* The audit entries of record id on gw, decoded, concatenated into out. */
static void
audit_entries(gwt_gw_t *gw, const char *area, const char *record, buf_t *out)
{
	char path[128], err[128];
	buf_t b = BUF_INIT;
	cJSON *root, *entries, *it;

	snprintf(path, sizeof(path), "/v1/audit/search?record=%s", record);
	assert_int_equal(call(gw, area, "auditor", "GET", path, NULL, NULL, &b,
	    NULL, 0), 200);
	root = json_parse_strict(b.data, b.len, 8, err, sizeof(err));
	assert_non_null(root);
	entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
	assert_non_null(entries);
	cJSON_ArrayForEach(it, entries) {
		const char *d = json_get_str(it, "data");
		unsigned char leaf[8192];
		long n;

		assert_non_null(d);
		n = b64_decode(d, strlen(d), leaf, sizeof(leaf) - 1);
		assert_true(n > 0);
		buf_append(out, leaf, (size_t)n);
		buf_puts(out, "\n");
	}
	cJSON_Delete(root);
	buf_free(&b);
}

static void
test_follow_a_transfer(void **state)
{
	const char *rec_hdrs[] = { "X-Visor-Actor: PC-0001",
	    "X-Visor-Purpose: risk-management",
	    "Content-Type: application/json", NULL };
	const char *xfer_hdrs[] = { "X-Visor-Actor: PC-0001",
	    "X-Visor-Purpose: offender-move",
	    "X-Visor-Justification: synthetic move",
	    "Content-Type: application/json", NULL };
	const char *record = "{\"id\":\"TR-0001\",\"managing_area\":\"norfolk\","
	    "\"category\":1,\"level\":1,\"person\":{\"surname\":\"EXAMPLE\","
	    "\"forenames\":\"Synthetic\",\"dob\":\"1980-01-02\"}}";
	const char *xfer = "{\"record_id\":\"TR-0001\",\"to_area\":\"suffolk\","
	    "\"purpose\":\"offender-move\",\"justification\":\"synthetic move\"}";
	char reqid[64], want[200], tid[80], path[160], err[128];
	buf_t b = BUF_INIT;
	cJSON *j;
	int i;

	(void)state;
	assert_int_equal(call(&norfolk, "norfolk", "agency-police", "PUT",
	    "/v1/records/TR-0001", rec_hdrs, record, NULL, NULL, 0), 201);
	assert_int_equal(call(&norfolk, "norfolk", "agency-police", "POST",
	    "/v1/transfers", xfer_hdrs, xfer, &b, reqid, sizeof(reqid)), 202);
	j = json_parse_strict(b.data, b.len, 4, err, sizeof(err));
	assert_non_null(j);
	snprintf(tid, sizeof(tid), "%s", json_get_str(j, "transfer_id"));
	cJSON_Delete(j);
	buf_free(&b);

	/* Sender: the request line and the queued line share the request id;
	 * the queued line names the transfer. */
	snprintf(want, sizeof(want), "event=request request_id=%s ", reqid);
	assert_true(gwt_log_wait(&norfolk, want, 2000));
	snprintf(want, sizeof(want), "event=transfer-queued request_id=%s "
	    "transfer=%s", reqid, tid);
	assert_true(gwt_log_wait(&norfolk, want, 2000));

	/* Delivered: both sides log the transfer id. */
	snprintf(path, sizeof(path), "/v1/transfers/%s", tid);
	for (i = 0; i < 400; i++) {
		assert_int_equal(call(&norfolk, "norfolk", "agency-police", "GET",
		    path, xfer_hdrs, NULL, &b, NULL, 0), 200);
		if (strstr(b.data, "\"delivered\"") != NULL)
			break;
		buf_free(&b);
		sleep_ms(50);
	}
	assert_non_null(strstr(b.data, "\"delivered\""));
	buf_free(&b);
	snprintf(want, sizeof(want), "event=transfer-delivered transfer=%s", tid);
	assert_true(gwt_log_wait(&norfolk, want, 2000));
	snprintf(want, sizeof(want), "transfer=%s from=norfolk", tid);
	assert_true(gwt_log_wait(&suffolk, want, 2000));
	assert_true(gwt_log_wait(&suffolk, "event=transfer-received", 2000));

	/* Audit logs: the sender's transfer-out entry has the request id and
	 * the transfer id; the receiver's transfer-in has the transfer id. */
	sleep_ms(1200);
	audit_entries(&norfolk, "norfolk", "TR-0001", &b);
	snprintf(want, sizeof(want), "\"request_id\":\"%s\"", reqid);
	assert_non_null(strstr(b.data, want));
	snprintf(want, sizeof(want), "\"transfer\":\"%s\"", tid);
	assert_non_null(strstr(b.data, want));
	assert_non_null(strstr(b.data, "\"op\":\"transfer-out\""));
	assert_non_null(strstr(b.data, "\"op\":\"receipt\""));
	buf_free(&b);
	audit_entries(&suffolk, "suffolk", "TR-0001", &b);
	assert_non_null(strstr(b.data, want));
	assert_non_null(strstr(b.data, "\"op\":\"transfer-in\""));
	buf_free(&b);
}

static void
test_error_carries_request_id(void **state)
{
	const char *hdrs[] = { "X-Visor-Actor: PC-0001",
	    "X-Visor-Purpose: risk-management", NULL };
	char reqid[64], want[200];
	buf_t b = BUF_INIT;

	(void)state;
	/* A read without X-Visor-Justification: 400. */
	assert_int_equal(call(&norfolk, "norfolk", "agency-housing", "GET",
	    "/v1/records/TR-0404", hdrs, NULL, &b, reqid, sizeof(reqid)), 400);
	snprintf(want, sizeof(want), "\"request_id\":\"%s\"", reqid);
	assert_non_null(strstr(b.data, want));
	snprintf(want, sizeof(want), "event=request-error request_id=%s ", reqid);
	assert_true(gwt_log_wait(&norfolk, want, 2000));
	buf_free(&b);
}

static int
setup(void **state)
{
	(void)state;
	if (gwt_env_setup(&env, "norfolk,suffolk") < 0 ||
	    gwt_gw_start(&env, "suffolk", &suffolk) < 0 ||
	    gwt_gw_start(&env, "norfolk", &norfolk) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	gwt_gw_stop(&norfolk);
	gwt_gw_stop(&suffolk);
	gwt_env_cleanup(&env);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_follow_a_transfer),
		cmocka_unit_test(test_error_carries_request_id),
	};

	return cmocka_run_group_tests_name("tracing", tests, setup, teardown);
}
