/*
 * Security review regressions against a real gateway: a certificate
 * revoked while its connection stays open; who may read the audit API
 * (this area's auditors; gateways of this area or configured peers for
 * the checkpoint and consistency proofs only); a write may not carry a
 * record out of the rule that protects it (the default policy plus a rule
 * keeping category 4 writes to clearance ct, which only police hold).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "certs/pki.h"
#include "tests/support/gwtest.h"
#include "util/buf.h"
#include "util/fileio.h"

static gwt_env_t env;
static gwt_gw_t gw;

/* ------------------------------------------------------- raw TLS client */

static int
raw_open(gwt_raw_t *r, const char *cert, const char *key)
{
	return gwt_raw_open(&env, gw.port, cert, key, 0, 0, r);
}

/* One keep-alive GET on r; the status, or 0 if the connection ended
 * without one. */
static int
raw_get(gwt_raw_t *r, const char *path)
{
	char req[256], tmp[8192];
	buf_t out = BUF_INIT;
	long deadline = gwt_now_ms() + 5000;
	const char *hdr_end, *cl;
	struct pollfd p;
	int n, status = 0;

	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	if (SSL_write(r->ssl, req, n) != n)
		return 0;
	for (;;) {
		if (SSL_pending(r->ssl) == 0) {
			p.fd = r->fd;
			p.events = POLLIN;
			if (poll(&p, 1, (int)(deadline - gwt_now_ms())) <= 0)
				break;
		}
		if ((n = SSL_read(r->ssl, tmp, sizeof(tmp))) <= 0)
			break;
		buf_append(&out, tmp, (size_t)n);
		if ((hdr_end = strstr(out.data, "\r\n\r\n")) != NULL &&
		    (cl = strcasestr(out.data, "Content-Length:")) != NULL &&
		    cl < hdr_end && (long)(out.len - (size_t)(hdr_end + 4 -
		    out.data)) >= strtol(cl + 15, NULL, 10))
			break;
		if (gwt_now_ms() > deadline)
			break;
	}
	if (out.len > 12 && strncmp(out.data, "HTTP/1.1 ", 9) == 0)
		status = (int)strtol(out.data + 9, NULL, 10);
	buf_free(&out);
	return status;
}

static long
get_as(const char *area, const char *who, const char *path)
{
	const char *hdrs[] = { NULL };
	gwt_resp_t r;
	char err[256];
	long status = -1;

	memset(&r, 0, sizeof(r));
	if (gwt_request(&env, &gw, area, who, "GET", path, hdrs, NULL, 0, &r,
	    err, sizeof(err)) == 0)
		status = r.status;
	gwt_resp_free(&r);
	return status;
}

/* ------------------------------------------------------------------ tests */

static void
test_revoked_while_connected(void **state)
{
	char dir[600], cert[700], key[700], err[256];
	gwt_raw_t r;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/review", env.dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(cert, sizeof(cert), "%s/held.crt", dir);
	snprintf(key, sizeof(key), "%s/held.key", dir);
	{
		char prefix[700];

		snprintf(prefix, sizeof(prefix), "%s/held", dir);
		if (pki_issue(gwt_path(&env, "pki/norfolk"),
		    "urn:visor:norfolk:agency:police:held", prefix, NULL, err,
		    sizeof(err)) < 0)
			fail_msg("pki_issue: %s", err);
	}
	assert_int_equal(raw_open(&r, cert, key), 0);
	assert_int_equal(raw_get(&r, "/v1/health"), 200);
	/* The key is reported stolen: revoke it and reload, while the holder
	 * keeps its connection open. */
	if (pki_revoke(gwt_path(&env, "pki/norfolk"), cert,
	    PKI_REASON_KEY_COMPROMISE, err, sizeof(err)) < 0)
		fail_msg("pki_revoke: %s", err);
	assert_int_equal(gwt_gw_hup(&gw), 0);
	assert_int_not_equal(raw_get(&r, "/v1/health"), 200);
	gwt_raw_close(&r);
	/* Others, on connections old and new, are still served. */
	assert_int_equal(raw_open(&r, gwt_path(&env, "pki/norfolk/agency-police.crt"),
	    gwt_path(&env, "pki/norfolk/agency-police.key")), 0);
	assert_int_equal(raw_get(&r, "/v1/health"), 200);
	assert_int_equal(gwt_gw_hup(&gw), 0);
	assert_int_equal(raw_get(&r, "/v1/health"), 200);
	assert_int_equal(raw_get(&r, "/v1/health"), 200);
	gwt_raw_close(&r);
	assert_true(gwt_gw_alive(&gw));
}

static void
test_audit_api_other_area(void **state)
{
	static const char *const all[] = {
		"/v1/audit/entries?start=0&end=1",
		"/v1/audit/proof/inclusion?index=0&size=1",
		"/v1/audit/search?op=collect",
		"/v1/audit/checkpoint",
		"/v1/audit/proof/consistency?from=1&to=1",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		/* Suffolk's auditor audits Suffolk's gateway, not Norfolk's. */
		assert_int_equal(get_as("suffolk", "auditor", all[i]), 403);
		/* Suffolk's gateway is a configured peer: it may watch the
		 * log (checkpoint, consistency), nothing else. */
		if (i < 3)
			assert_int_equal(get_as("suffolk", "gateway", all[i]), 403);
		else
			assert_int_not_equal(get_as("suffolk", "gateway", all[i]),
			    403);
	}
	assert_int_not_equal(get_as("norfolk", "auditor", all[0]), 403);
}

static long
write_as(const char *who, const char *method, const char *id,
    const char *body)
{
	const char *put_hdrs[] = { "X-Visor-Actor: R1",
	    "X-Visor-Purpose: risk-management", "Content-Type: application/json",
	    NULL };
	const char *patch_hdrs[] = { "X-Visor-Actor: R1",
	    "X-Visor-Purpose: risk-management",
	    "Content-Type: application/merge-patch+json", NULL };
	char path[128], err[256];
	gwt_resp_t r;
	long status = -1;

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	memset(&r, 0, sizeof(r));
	if (gwt_request(&env, &gw, "norfolk", who, method, path,
	    strcmp(method, "PATCH") == 0 ? patch_hdrs : put_hdrs, body,
	    strlen(body), &r, err, sizeof(err)) == 0)
		status = r.status;
	gwt_resp_free(&r);
	return status;
}

static void
record_json(char *out, size_t len, const char *id, int category)
{
	snprintf(out, len, "{\"id\":\"%s\",\"managing_area\":\"norfolk\","
	    "\"category\":%d,\"level\":1,\"person\":{\"surname\":\"Review\","
	    "\"forenames\":\"Test\",\"dob\":\"1980-01-01\"}}", id, category);
}

static void
test_write_cannot_downgrade_protected_record(void **state)
{
	char body[512];

	(void)state;
	/* Police (clearance ct) create a category 4 record. */
	record_json(body, sizeof(body), "REV-CAT4", 4);
	assert_int_equal(write_as("agency-police", "PUT", "REV-CAT4", body), 201);
	/* Probation lacks ct: rewriting it as category 1, whole or by patch,
	 * would take it out of the category 4 rule. */
	record_json(body, sizeof(body), "REV-CAT4", 1);
	assert_int_equal(write_as("agency-probation", "PUT", "REV-CAT4", body),
	    403);
	/* A PATCH finds no record: probation may not read it. */
	assert_int_equal(write_as("agency-probation", "PATCH", "REV-CAT4",
	    "{\"category\":1}"), 404);
	/* Nor may it make a record category 4 (the new record's category). */
	record_json(body, sizeof(body), "REV-CAT1", 1);
	assert_int_equal(write_as("agency-probation", "PUT", "REV-CAT1", body),
	    201);
	assert_int_equal(write_as("agency-probation", "PATCH", "REV-CAT1",
	    "{\"category\":4}"), 403);
	/* Writes the rules allow on both sides still pass. */
	assert_int_equal(write_as("agency-probation", "PATCH", "REV-CAT1",
	    "{\"category\":2}"), 200);
	assert_int_equal(write_as("agency-police", "PATCH", "REV-CAT4",
	    "{\"category\":3}"), 200);
}

/* The default policy, plus: category 4 records are written only by
 * callers holding ct. */
static int
add_policy_rule(void)
{
	static const char rule[] =
	    "{\"id\":\"write-category4-needs-ct\",\"effect\":\"forbid\","
	    "\"ops\":[\"write\"],\"when\":{\"category\":[4],"
	    "\"unless_clearance\":[\"ct\"]}},";
	const char *path = gwt_path(&env, "norfolk/policy.json");
	char *text = NULL, *at;
	size_t len;
	buf_t b = BUF_INIT;
	int rc;

	if (file_read_all(path, 1 << 20, &text, &len) < 0 ||
	    (at = strstr(text, "\"rules\": [")) == NULL) {
		free(text);
		return -1;
	}
	at += strlen("\"rules\": [");
	buf_append(&b, text, (size_t)(at - text));
	buf_puts(&b, rule);
	buf_append(&b, at, len - (size_t)(at - text));
	rc = file_write_atomic(path, b.data, b.len, 0644);
	buf_free(&b);
	free(text);
	return rc;
}

static int
group_setup(void **state)
{
	(void)state;
	if (gwt_env_setup(&env, "norfolk,suffolk") < 0 || add_policy_rule() < 0)
		return -1;
	return gwt_gw_start(&env, "norfolk", &gw);
}

static int
group_teardown(void **state)
{
	int rc;

	(void)state;
	rc = gwt_gw_stop_clean(&gw);
	gwt_env_cleanup(&env);
	return rc;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revoked_while_connected),
		cmocka_unit_test(test_audit_api_other_area),
		cmocka_unit_test(test_write_cannot_downgrade_protected_record),
	};

	return gwt_exit(cmocka_run_group_tests_name("review", tests,
	    group_setup, group_teardown));
}
