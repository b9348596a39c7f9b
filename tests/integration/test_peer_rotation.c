/*
 * A peer area rotates its CA (docs/OPERATIONS.md, 6.3, on "every gateway
 * that trusts" the area): transfers from Norfolk keep reaching Suffolk
 * through the overlap, Suffolk's switch to a certificate of the new CA,
 * and the removal of the old CA, with SIGHUP only.
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

#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/fileio.h"
#include "util/json.h"

static gwt_env_t env;
static gwt_gw_t norfolk, suffolk;

static void
visorctl(const char *const *args)
{
	const char *argv[16];
	buf_t e = BUF_INIT;
	size_t i;

	argv[0] = gwt_prog(&env, "visorctl");
	for (i = 0; args[i] != NULL && i < 14; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	if (gwt_run(argv, NULL, 0, NULL, &e) != 0)
		fail_msg("visorctl %s: %s", args[0], e.data ? e.data : "");
	buf_free(&e);
}

static cJSON *
config_load(const gwt_gw_t *gw)
{
	char *text = NULL, err[128];
	size_t len;
	cJSON *c;

	assert_int_equal(file_read_all(gw->config, 1 << 20, &text, &len), 0);
	c = json_parse_strict(text, len, 16, err, sizeof(err));
	free(text);
	assert_non_null(c);
	return c;
}

static void
config_save(const gwt_gw_t *gw, cJSON *c)
{
	char *text = cJSON_Print(c);

	assert_non_null(text);
	assert_int_equal(file_write_atomic(gw->config, text, strlen(text), 0644), 0);
	cJSON_free(text);
	cJSON_Delete(c);
}

/* Add (add = 1) or remove a file in tls.<key>. */
static void
tls_list(const gwt_gw_t *gw, const char *key, const char *rel, int add)
{
	cJSON *c = config_load(gw), *it;
	cJSON *a = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(c, "tls"), key);
	const char *want = gwt_path(&env, rel);
	int i = 0, found = -1;

	assert_non_null(a);
	if (add) {
		cJSON_AddItemToArray(a, cJSON_CreateString(want));
	} else {
		cJSON_ArrayForEach(it, a) {
			if (strcmp(it->valuestring, want) == 0)
				found = i;
			i++;
		}
		assert_int_not_equal(found, -1);
		cJSON_DeleteItemFromArray(a, found);
	}
	config_save(gw, c);
}

static void
set_tls(const gwt_gw_t *gw, const char *key, const char *rel)
{
	cJSON *c = config_load(gw);

	cJSON_ReplaceItemInObjectCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(c, "tls"), key,
	    cJSON_CreateString(gwt_path(&env, rel)));
	config_save(gw, c);
}

/* Norfolk police transfer a new record to Suffolk; wait until delivered. */
static void
transfer_delivered(const char *id)
{
	const char *rec_hdrs[] = { "X-Visor-Actor: PC-0001",
	    "X-Visor-Purpose: risk-management",
	    "Content-Type: application/json", NULL };
	const char *xfer_hdrs[] = { "X-Visor-Actor: PC-0001",
	    "X-Visor-Purpose: offender-move",
	    "X-Visor-Justification: synthetic move",
	    "Content-Type: application/json", NULL };
	char body[400], path[160], err[256], tid[80];
	gwt_resp_t r;
	cJSON *j;
	int i, n;

	n = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"managing_area\":"
	    "\"norfolk\",\"category\":1,\"level\":1,\"person\":{\"surname\":"
	    "\"EXAMPLE\",\"forenames\":\"Synthetic\",\"dob\":\"1980-01-02\"}}", id);
	snprintf(path, sizeof(path), "/v1/records/%s", id);
	assert_int_equal(gwt_request(&env, &norfolk, "norfolk", "agency-police",
	    "PUT", path, rec_hdrs, body, (size_t)n, &r, err, sizeof(err)), 0);
	assert_int_equal(r.status, 201);
	gwt_resp_free(&r);
	n = snprintf(body, sizeof(body), "{\"record_id\":\"%s\",\"to_area\":"
	    "\"suffolk\",\"purpose\":\"offender-move\",\"justification\":"
	    "\"synthetic move\"}", id);
	assert_int_equal(gwt_request(&env, &norfolk, "norfolk", "agency-police",
	    "POST", "/v1/transfers", xfer_hdrs, body, (size_t)n, &r, err,
	    sizeof(err)), 0);
	assert_int_equal(r.status, 202);
	j = json_parse_strict(r.body.data, r.body.len, 4, err, sizeof(err));
	assert_non_null(j);
	snprintf(tid, sizeof(tid), "%s", json_get_str(j, "transfer_id"));
	cJSON_Delete(j);
	gwt_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/transfers/%s", tid);
	for (i = 0; i < 600; i++) {
		assert_int_equal(gwt_request(&env, &norfolk, "norfolk",
		    "agency-police", "GET", path, xfer_hdrs, NULL, 0, &r, err,
		    sizeof(err)), 0);
		if (strstr(r.body.data, "\"delivered\"") != NULL) {
			gwt_resp_free(&r);
			return;
		}
		gwt_resp_free(&r);
		sleep_ms(50);
	}
	fail_msg("transfer %s of %s not delivered", tid, id);
}

static void
test_peer_rotates_its_ca(void **state)
{
	(void)state;
	transfer_delivered("PR-0001");

	/* Suffolk's new CA, and Suffolk's gateway certificate from it. */
	{
		const char *a[] = { "certs", "new-area-ca", "--root-dir",
		    gwt_path(&env, "pki"), "--area", "suffolk", "--out",
		    gwt_path(&env, "pki/suffolk-ca2"), NULL };
		visorctl(a);
	}
	{
		const char *a[] = { "certs", "issue", "--ca-dir",
		    gwt_path(&env, "pki/suffolk-ca2"), "--identity",
		    "urn:visor:suffolk:gateway", "--out",
		    gwt_path(&env, "pki/suffolk-ca2/gateway"), "--ip", "127.0.0.1",
		    NULL };
		visorctl(a);
	}
	/* As an operator would: the folder readable by both gateways'
	 * account, Suffolk's new key given to it (a no-op unless root). */
	assert_int_equal(gwt_give_to_gateway(&env, "suffolk",
	    "pki/suffolk-ca2/gateway.key"), 0);
	/* Overlap on both gateways. */
	tls_list(&norfolk, "cas", "pki/suffolk-ca2/ca.crt", 1);
	tls_list(&norfolk, "crls", "pki/suffolk-ca2/crl.pem", 1);
	tls_list(&suffolk, "cas", "pki/suffolk-ca2/ca.crt", 1);
	tls_list(&suffolk, "crls", "pki/suffolk-ca2/crl.pem", 1);
	assert_int_equal(gwt_gw_hup(&norfolk), 0);
	assert_int_equal(gwt_gw_hup(&suffolk), 0);
	transfer_delivered("PR-0002");

	/* Suffolk switches to its new certificate: Norfolk's delivery client
	 * (rebuilt at the reload) accepts it and its receipts. */
	set_tls(&suffolk, "cert", "pki/suffolk-ca2/gateway.crt");
	set_tls(&suffolk, "key", "pki/suffolk-ca2/gateway.key");
	assert_int_equal(gwt_gw_hup(&suffolk), 0);
	transfer_delivered("PR-0003");

	/* The old Suffolk CA goes from both. */
	tls_list(&norfolk, "cas", "pki/suffolk/ca.crt", 0);
	tls_list(&norfolk, "crls", "pki/suffolk/crl.pem", 0);
	tls_list(&suffolk, "cas", "pki/suffolk/ca.crt", 0);
	tls_list(&suffolk, "crls", "pki/suffolk/crl.pem", 0);
	assert_int_equal(gwt_gw_hup(&norfolk), 0);
	assert_int_equal(gwt_gw_hup(&suffolk), 0);
	transfer_delivered("PR-0004");
	assert_true(gwt_gw_alive(&norfolk));
	assert_true(gwt_gw_alive(&suffolk));
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
	int rc = 0;

	(void)state;
	if (gwt_gw_stop_clean(&norfolk) < 0)
		rc = -1;
	if (gwt_gw_stop_clean(&suffolk) < 0)
		rc = -1;
	gwt_env_cleanup(&env);
	return rc;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_rotates_its_ca),
	};

	return gwt_exit(cmocka_run_group_tests_name("peer_rotation", tests, setup,
	    teardown));
}
