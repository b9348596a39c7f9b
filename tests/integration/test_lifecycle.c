/*
 * Certificate lifecycle without downtime (docs/OPERATIONS.md, Rotate):
 * renew the gateway certificate, revoke an agency, rotate the area CA, each
 * with SIGHUP only, while a client keeps working across the change.  The
 * client is a keep-alive connection opened before each change; the
 * gateway's connection counter shows it is the same connection after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "client/https_client.h"
#include "tests/support/gwtest.h"
#include "util/fileio.h"
#include "util/json.h"

static gwt_env_t env;
static gwt_gw_t gw;
static https_client_t *police;	/* the long-lived client: old-CA police */

static https_client_t *
client(const char *cert_rel, const char *key_rel)
{
	https_client_options_t o;
	https_client_t *c;
	char cert[700], key[700], root[700], err[256];

	snprintf(cert, sizeof(cert), "%s", gwt_path(&env, cert_rel));
	snprintf(key, sizeof(key), "%s", gwt_path(&env, key_rel));
	snprintf(root, sizeof(root), "%s", gwt_path(&env, "pki/root.crt"));
	memset(&o, 0, sizeof(o));
	o.cert = cert;
	o.key = key;
	o.root = root;
	o.expect_identity = "urn:visor:norfolk:gateway";
	o.timeout_ms = 20000;
	if ((c = https_client_new(&o, err, sizeof(err))) == NULL)
		fail_msg("client %s: %s", cert_rel, err);
	return c;
}

/* GET /v1/health on c: the status, or -1 if no answer (handshake refused). */
static long
health(https_client_t *c)
{
	https_response_t r;
	char url[80], err[256];
	long status = -1;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/health", gw.port);
	memset(&r, 0, sizeof(r));
	if (https_client_call(c, "GET", url, NULL, NULL, 0, &r, err,
	    sizeof(err)) == 0)
		status = r.status;
	https_response_free(&r);
	return status;
}

/* One fresh connection with the certificate: status or -1. */
static long
fresh_health(const char *cert_rel, const char *key_rel)
{
	https_client_t *c = client(cert_rel, key_rel);
	long s = health(c);

	https_client_free(c);
	return s;
}

static unsigned long long
connections_total(void)
{
	double n;

	assert_int_equal(gwt_metric(&gw, "visor_connections_total", &n), 0);
	return (unsigned long long)n;
}

/* The notAfter line of the certificate the gateway serves now. */
static void
served_enddate(char *out, size_t outlen)
{
	char cmd[2200];
	buf_t b = BUF_INIT;
	const char *argv[] = { "sh", "-c", cmd, NULL };

	snprintf(cmd, sizeof(cmd), "openssl s_client -connect 127.0.0.1:%d "
	    "-cert '%s' -key '%s' </dev/null 2>/dev/null | openssl x509 -noout "
	    "-enddate", gw.port, gwt_path(&env, "pki/norfolk/auditor.crt"),
	    gwt_path(&env, "pki/norfolk/auditor.key"));
	assert_int_equal(gwt_run(argv, NULL, 0, &b, NULL), 0);
	assert_non_null(b.data);
	assert_non_null(strstr(b.data, "notAfter="));
	snprintf(out, outlen, "%s", b.data);
	buf_free(&b);
}

static void
visorctl(const char *const *args)
{
	const char *argv[16];
	buf_t e = BUF_INIT;
	size_t i;
	int rc;

	argv[0] = gwt_prog(&env, "visorctl");
	for (i = 0; args[i] != NULL && i < 14; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	rc = gwt_run(argv, NULL, 0, NULL, &e);
	if (rc != 0)
		fail_msg("visorctl %s: %s", args[0], e.data ? e.data : "");
	buf_free(&e);
}

/* Edit gateway.json (plain JSON) the way an operator would. */
static cJSON *
config_load(void)
{
	char *text = NULL, err[128];
	size_t len;
	cJSON *c;

	assert_int_equal(file_read_all(gw.config, 1 << 20, &text, &len), 0);
	c = json_parse_strict(text, len, 16, err, sizeof(err));
	free(text);
	assert_non_null(c);
	return c;
}

static void
config_save(cJSON *c)
{
	char *text = cJSON_Print(c);

	assert_non_null(text);
	assert_int_equal(file_write_atomic(gw.config, text, strlen(text), 0644), 0);
	cJSON_free(text);
	cJSON_Delete(c);
}

static cJSON *
tls_section(cJSON *c)
{
	cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "tls");

	assert_non_null(t);
	return t;
}

static void
list_add(const char *key, const char *rel)
{
	cJSON *c = config_load();
	cJSON *a = cJSON_GetObjectItemCaseSensitive(tls_section(c), key);

	assert_non_null(a);
	cJSON_AddItemToArray(a, cJSON_CreateString(gwt_path(&env, rel)));
	config_save(c);
}

static void
list_remove(const char *key, const char *rel)
{
	cJSON *c = config_load();
	cJSON *a = cJSON_GetObjectItemCaseSensitive(tls_section(c), key), *it;
	const char *want = gwt_path(&env, rel);
	int i = 0, found = -1;

	cJSON_ArrayForEach(it, a) {
		if (cJSON_IsString(it) && strcmp(it->valuestring, want) == 0)
			found = i;
		i++;
	}
	assert_int_not_equal(found, -1);
	cJSON_DeleteItemFromArray(a, found);
	config_save(c);
}

static void
set_tls(const char *key, const char *rel)
{
	cJSON *c = config_load();

	cJSON_ReplaceItemInObjectCaseSensitive(tls_section(c), key,
	    cJSON_CreateString(gwt_path(&env, rel)));
	config_save(c);
}

static void
test_renew_gateway_certificate(void **state)
{
	char before[256], after[256];
	unsigned long long conns;

	(void)state;
	assert_int_equal(health(police), 200);
	served_enddate(before, sizeof(before));
	conns = connections_total();
	{
		const char *a[] = { "certs", "renew", "--ca-dir",
		    gwt_path(&env, "pki/norfolk"),
		    gwt_path(&env, "pki/norfolk/gateway.crt"), "--new-key",
		    "--days", "400", NULL };
		visorctl(a);
	}
	assert_int_equal(gwt_gw_hup(&gw), 0);
	/* The open connection goes on, on the same TCP connection. */
	assert_int_equal(health(police), 200);
	assert_int_equal(connections_total(), conns);
	/* New connections get the new certificate. */
	served_enddate(after, sizeof(after));
	assert_string_not_equal(before, after);
	assert_int_equal(fresh_health("pki/norfolk/agency-probation.crt",
	    "pki/norfolk/agency-probation.key"), 200);
	{
		char series[800];
		double days;

		snprintf(series, sizeof(series), "visor_certificate_expiry_days{role="
		    "\"gateway\",file=\"%s\"}", gwt_path(&env,
		    "pki/norfolk/gateway.crt"));
		assert_int_equal(gwt_metric(&gw, series, &days), 0);
		/* Renewed for 400 days (the old look matched any "4..."). */
		assert_true(days > 399 && days <= 400);
	}
}

static void
test_revoke_agency(void **state)
{
	https_client_t *housing = client("pki/norfolk/agency-housing.crt",
	    "pki/norfolk/agency-housing.key");
	double revoked;

	(void)state;
	assert_int_equal(health(housing), 200);
	assert_int_equal(health(police), 200);
	{
		const char *a[] = { "certs", "revoke", "--ca-dir",
		    gwt_path(&env, "pki/norfolk"),
		    gwt_path(&env, "pki/norfolk/agency-housing.crt"), "--reason",
		    "key-compromise", NULL };
		visorctl(a);
	}
	assert_int_equal(gwt_gw_hup(&gw), 0);
	/* The revoked agency: its open connection is refused at its next
	 * request, a new one at the handshake. */
	assert_int_equal(health(housing), 403);
	assert_int_equal(fresh_health("pki/norfolk/agency-housing.crt",
	    "pki/norfolk/agency-housing.key"), -1);
	/* Everyone else is fine, on old and new connections. */
	assert_int_equal(health(police), 200);
	assert_int_equal(fresh_health("pki/norfolk/agency-police.crt",
	    "pki/norfolk/agency-police.key"), 200);
	assert_int_equal(gwt_metric(&gw,
	    "visor_handshake_failures_total{reason=\"revoked\"}", &revoked), 0);
	assert_true(revoked == 2);
	assert_true(gwt_log_wait(&gw, "event=handshake-refused reason=revoked",
	    2000));
	https_client_free(housing);
}

static void
test_rotate_area_ca(void **state)
{
	https_client_t *police2;

	(void)state;
	/* 1. A new area CA for norfolk, signed by the root. */
	{
		const char *a[] = { "certs", "new-area-ca", "--root-dir",
		    gwt_path(&env, "pki"), "--area", "norfolk", "--out",
		    gwt_path(&env, "pki/norfolk-ca2"), NULL };
		visorctl(a);
	}
	{
		const char *a[] = { "certs", "issue", "--ca-dir",
		    gwt_path(&env, "pki/norfolk-ca2"), "--identity",
		    "urn:visor:norfolk:agency:police", "--out",
		    gwt_path(&env, "pki/norfolk-ca2/agency-police"), NULL };
		visorctl(a);
	}
	/* The new CA's folder must be readable by the gateway's account. */
	assert_int_equal(chmod(gwt_path(&env, "pki/norfolk-ca2"), 0755), 0);
	/* Not trusted yet. */
	assert_int_equal(fresh_health("pki/norfolk-ca2/agency-police.crt",
	    "pki/norfolk-ca2/agency-police.key"), -1);
	/* 2. Overlap: both CAs and both CRLs trusted. */
	list_add("cas", "pki/norfolk-ca2/ca.crt");
	list_add("crls", "pki/norfolk-ca2/crl.pem");
	assert_int_equal(gwt_gw_hup(&gw), 0);
	police2 = client("pki/norfolk-ca2/agency-police.crt",
	    "pki/norfolk-ca2/agency-police.key");
	assert_int_equal(health(police2), 200);
	assert_int_equal(health(police), 200);
	assert_int_equal(fresh_health("pki/norfolk/agency-police.crt",
	    "pki/norfolk/agency-police.key"), 200);
	/* 3. The gateway's own certificate from the new CA. */
	{
		const char *a[] = { "certs", "issue", "--ca-dir",
		    gwt_path(&env, "pki/norfolk-ca2"), "--identity",
		    "urn:visor:norfolk:gateway", "--out",
		    gwt_path(&env, "pki/norfolk-ca2/gateway"), NULL };
		visorctl(a);
	}
	/* The gateway re-reads its key on SIGHUP as the account it runs as. */
	assert_int_equal(gwt_give_to_gateway(&env, "norfolk",
	    "pki/norfolk-ca2/gateway.key"), 0);
	set_tls("cert", "pki/norfolk-ca2/gateway.crt");
	set_tls("key", "pki/norfolk-ca2/gateway.key");
	assert_int_equal(gwt_gw_hup(&gw), 0);
	assert_int_equal(health(police2), 200);
	assert_int_equal(health(police), 200);
	assert_int_equal(fresh_health("pki/norfolk/agency-police.crt",
	    "pki/norfolk/agency-police.key"), 200);
	assert_int_equal(fresh_health("pki/norfolk-ca2/agency-police.crt",
	    "pki/norfolk-ca2/agency-police.key"), 200);
	/* 4. Every agency moved: the old CA goes. */
	list_remove("cas", "pki/norfolk/ca.crt");
	list_remove("crls", "pki/norfolk/crl.pem");
	{
		const char *check[] = { gwt_prog(&env, "visor-gw"), "--config",
		    gw.config, "--check-config", NULL };
		assert_int_equal(gwt_run(check, NULL, 0, NULL, NULL), 0);
	}
	assert_int_equal(gwt_gw_hup(&gw), 0);
	/* The new-CA client kept working throughout; old-CA certificates are
	 * refused on new and on open connections. */
	assert_int_equal(health(police2), 200);
	assert_int_equal(fresh_health("pki/norfolk-ca2/agency-police.crt",
	    "pki/norfolk-ca2/agency-police.key"), 200);
	assert_int_equal(fresh_health("pki/norfolk/agency-police.crt",
	    "pki/norfolk/agency-police.key"), -1);
	assert_int_equal(health(police), 403);
	https_client_free(police2);
	/* A bad set is refused and the working one kept. */
	set_tls("cert", "pki/norfolk/agency-police.crt");
	assert_int_equal(gwt_gw_hup(&gw), 1);
	assert_int_equal(fresh_health("pki/norfolk-ca2/agency-police.crt",
	    "pki/norfolk-ca2/agency-police.key"), 200);
	assert_true(gwt_gw_alive(&gw));
}

static int
setup(void **state)
{
	(void)state;
	if (gwt_env_setup(&env, "norfolk") < 0 ||
	    gwt_gw_start(&env, "norfolk", &gw) < 0)
		return -1;
	police = client("pki/norfolk/agency-police.crt",
	    "pki/norfolk/agency-police.key");
	return 0;
}

static int
teardown(void **state)
{
	int rc;

	(void)state;
	https_client_free(police);
	rc = gwt_gw_stop_clean(&gw);
	gwt_env_cleanup(&env);
	return rc;
}

int
main(void)
{
	/* In order: each step starts from the state the previous one left. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_renew_gateway_certificate),
		cmocka_unit_test(test_revoke_agency),
		cmocka_unit_test(test_rotate_area_ca),
	};

	return gwt_exit(cmocka_run_group_tests_name("lifecycle", tests, setup,
	    teardown));
}
