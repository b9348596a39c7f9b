/*
 * Integration: time passing under running gateways, without moving the
 * clock (libfaketime makes the gateway's monotonic condition waits spin:
 * tests/integration/faketime_clock.c is run by hand only).  Certificates
 * and CRLs are made by our own PKI code to run out a few seconds after the
 * gateway starts (gwt_cert_until, gwt_crl_until), and the test waits:
 *
 *   - the CRL of the clients' CA passes its nextUpdate: a kept-alive
 *     connection's next request and every new handshake are refused as
 *     crl-expired (logged, counted, audited), the log says crl-expiring
 *     before and crl-expired when it happens, a reload of the stale CRL is
 *     refused, and a re-signed CRL and a reload bring everyone back;
 *   - the gateway's own certificate passes its notAfter: the log says
 *     cert-expiring from the start and cert-expired when it happens,
 *     /metrics counts the seconds down, clients refuse the gateway with a
 *     reason that says so, and a renewal and a reload bring it back;
 *   - an area CA certificate whose notBefore is ahead of the clock: its
 *     clients are refused as not-yet-valid, and the log says the clock
 *     is behind (clock-behind role=ca).
 *
 * A CRL whose lastUpdate is ahead of the clock cannot be loaded (the load
 * refuses it as not yet valid); a clock stepped back after the load gives
 * crl-not-yet-valid, tested through OpenSSL with a verification time in
 * tests/unit/test_tls_trust.c (test_crl_out_of_time).  A peer's
 * certificate or CRL running out under the outbox is
 * test_transfers.c's test_expired_receiver_not_reused and
 * test_stale_crl_receiver_not_reused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include <cjson/cJSON.h>

#include "certs/pki.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/fileio.h"

static gwt_env_t env;

static int
group_setup(void **state)
{
	(void)state;
	return gwt_env_setup(&env, "norfolk,suffolk");
}

static int
group_teardown(void **state)
{
	(void)state;
	gwt_env_cleanup(&env);
	return 0;
}

/* How long the short-lived material lasts: long enough for a gateway to
 * start and answer once on a loaded machine, short enough to wait for. */
static long
lifetime_s(void)
{
	return gwt_ms(6000) / 1000;
}

/* Wait until time(NULL) has passed when by a second. */
static void
wait_past(long when)
{
	while ((long)time(NULL) <= when + 1)
		sleep_ms(200);
}

/* GET path on an open raw connection: the status, the body into body (may
 * be NULL); -1 if the connection failed or closed before an answer. */
static long
raw_get(gwt_raw_t *r, const char *path, buf_t *body)
{
	char req[256], buf[4096];
	buf_t in = BUF_INIT;
	const char *end, *cl;
	long status = -1;
	size_t want;
	int n;

	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: gw\r\n\r\n",
	    path);
	if (SSL_write(r->ssl, req, n) != n)
		return -1;
	for (;;) {
		if ((n = SSL_read(r->ssl, buf, sizeof(buf))) <= 0)
			break;
		if (buf_append(&in, buf, (size_t)n) < 0)
			break;
		if (buf_append(&in, "", 1) < 0)	/* NUL for strstr */
			break;
		in.len--;
		if ((end = strstr(in.data, "\r\n\r\n")) == NULL)
			continue;
		cl = strstr(in.data, "Content-Length: ");
		want = cl != NULL && cl < end ?
		    (size_t)strtoul(cl + 16, NULL, 10) : 0;
		if (in.len < (size_t)(end + 4 - in.data) + want)
			continue;
		if (sscanf(in.data, "HTTP/1.1 %ld", &status) != 1)
			status = -1;
		if (body != NULL)
			(void)buf_append(body, end + 4, want);
		break;
	}
	buf_free(&in);
	return status;
}

/* /v1/health as the holder of pki/<area>/<name> on a new connection, by
 * hand (no check of the server's chain on the client side); the status,
 * or -1 if the handshake or the request was refused. */
static long
raw_health_as(const gwt_gw_t *gw, const char *area, const char *name)
{
	char cert[600], key[600];
	gwt_raw_t r;
	long status = -1;

	snprintf(cert, sizeof(cert), "%s/pki/%s/%s.crt", env.dir, area, name);
	snprintf(key, sizeof(key), "%s/pki/%s/%s.key", env.dir, area, name);
	if (gwt_raw_open(&env, gw->port, cert, key, 0, 0, &r) == 0)
		status = raw_get(&r, "/v1/health", NULL);
	gwt_raw_close(&r);
	return status;
}

static long
raw_health(const gwt_gw_t *gw, const char *name)
{
	return raw_health_as(gw, "norfolk", name);
}

/* The value of a metric line "name value" in gw's /metrics. */
static double
metric(const gwt_gw_t *gw, const char *name)
{
	double v;

	if (gwt_metric(gw, name, &v) != 0)
		fail_msg("no '%s' in /metrics", name);
	return v;
}

/* How many auth-fail entries of gw's audit log carry reason, read as
 * Norfolk's auditor; -1 if the log could not be read. */
static int
audit_auth_fails(const gwt_gw_t *gw, const char *reason)
{
	const char *hdrs[] = { NULL };
	gwt_resp_t resp;
	char err[256];
	cJSON *doc, *entries, *it, *leaf;
	const cJSON *why;
	unsigned char *raw;
	long n;
	int count = 0;

	if (gwt_request(&env, gw, "norfolk", "auditor", "GET",
	    "/v1/audit/search?op=auth-fail", hdrs, NULL, 0, &resp, err,
	    sizeof(err)) < 0 || resp.status != 200) {
		gwt_resp_free(&resp);
		return -1;
	}
	doc = cJSON_ParseWithLength(resp.body.data, resp.body.len);
	gwt_resp_free(&resp);
	entries = cJSON_GetObjectItemCaseSensitive(doc, "entries");
	if (!cJSON_IsArray(entries)) {
		cJSON_Delete(doc);
		return -1;
	}
	cJSON_ArrayForEach(it, entries) {
		const cJSON *data = cJSON_GetObjectItemCaseSensitive(it, "data");
		size_t dlen;

		if (!cJSON_IsString(data))
			continue;
		dlen = strlen(data->valuestring);
		if ((raw = malloc(dlen + 1)) == NULL)
			break;
		n = b64_decode(data->valuestring, dlen, raw, dlen + 1);
		leaf = n > 0 ? cJSON_ParseWithLength((const char *)raw,
		    (size_t)n) : NULL;
		free(raw);
		why = cJSON_GetObjectItemCaseSensitive(leaf, "reason");
		/* One by one ("crl-expired") or in a summary
		 * ("crl-expired:3"). */
		if (cJSON_IsString(why) && strncmp(why->valuestring, reason,
		    strlen(reason)) == 0)
			count++;
		cJSON_Delete(leaf);
	}
	cJSON_Delete(doc);
	return count;
}

/* SPEC 3: a peer is accepted only while its area CA's CRL is current.
 * Norfolk's CRL runs out while the gateway is up: it said so ahead
 * (crl-expiring), says so when it happens (crl-expired, with what to do);
 * the next request on a connection kept alive from before, and every new
 * handshake, are refused as crl-expired (not crl-missing: the file is
 * there, it is stale), logged, counted and audited; a reload of the stale
 * CRL is refused and the old set kept; a re-signed CRL and a reload bring
 * Norfolk's clients back. */
static void
test_crl_runs_out(void **state)
{
	char cert[600], key[600];
	buf_t body = BUF_INIT;
	gwt_gw_t gw;
	gwt_raw_t kept;
	long until;
	int audited;

	(void)state;
	until = (long)time(NULL) + lifetime_s();
	assert_int_equal(gwt_crl_until(&env, "norfolk", until), 0);
	assert_int_equal(gwt_gw_start(&env, "norfolk", &gw), 0);
	assert_int_equal(gwt_log_wait(&gw, "event=crl-expiring file=", 5000), 1);
	assert_true(gwt_log_contains(&gw, "pki/norfolk/crl.pem"));
	assert_true(metric(&gw, "visor_crl_expiry_seconds") <= (double)lifetime_s());

	snprintf(cert, sizeof(cert), "%s/pki/norfolk/agency-police.crt", env.dir);
	snprintf(key, sizeof(key), "%s/pki/norfolk/agency-police.key", env.dir);
	assert_int_equal(gwt_raw_open(&env, gw.port, cert, key, 0, 0, &kept), 0);
	assert_int_equal(raw_get(&kept, "/v1/health", NULL), 200);
	if ((long)time(NULL) >= until)
		fail_msg("too slow: the CRL ran out before the first request");

	wait_past(until);
	/* The connection made while the CRL was current. */
	assert_int_equal(raw_get(&kept, "/v1/health", &body), 403);
	assert_non_null(strstr(body.data, "certificate-refused"));
	assert_non_null(strstr(body.data, "crl-expired"));
	buf_free(&body);
	gwt_raw_close(&kept);
	/* A new one. */
	assert_int_equal(raw_health(&gw, "agency-police"), -1);
	assert_int_equal(gwt_log_wait(&gw,
	    "event=handshake-refused reason=crl-expired", 5000), 1);
	assert_int_equal(gwt_log_wait(&gw, "event=crl-expired file=", 5000), 1);
	assert_false(gwt_log_contains(&gw, "reason=crl-missing"));
	assert_true(metric(&gw,
	    "visor_handshake_failures_total{reason=\"crl-expired\"}") >= 2);

	/* Reloading the stale CRL is refused; the clients stay out. */
	assert_int_equal(gwt_gw_hup(&gw), 1);
	assert_true(gwt_log_contains(&gw, "CRL has expired (nextUpdate passed)"));
	assert_int_equal(raw_health(&gw, "agency-police"), -1);

	/* Re-signed (visorctl certs crl) and reloaded: back, and the
	 * refusals are in the audit log under their reason. */
	{
		char err[256];

		assert_int_equal(pki_crl_refresh(gwt_path(&env, "pki/norfolk"),
		    0, err, sizeof(err)), 0);
	}
	assert_int_equal(gwt_gw_hup(&gw), 0);
	assert_int_equal(raw_health(&gw, "agency-police"), 200);
	audited = audit_auth_fails(&gw, "crl-expired");
	assert_true(audited >= 2);
	assert_int_equal(gwt_gw_stop_clean(&gw), 0);
}

/* The gateway's own certificate runs out while it is up.  It says so in
 * the log from the start (cert-expiring, seconds left) and when it
 * happens (cert-expired, with what breaks and what to do), /metrics
 * counts it down; afterwards clients refuse the gateway, saying the
 * server certificate has expired; renewed and reloaded, it serves again,
 * without a restart. */
static void
test_own_certificate_runs_out(void **state)
{
	const char *hdrs[] = { NULL };
	char err[256], old[600];
	gwt_resp_t resp;
	gwt_gw_t gw;
	long until;

	(void)state;
	until = (long)time(NULL) + lifetime_s();
	assert_int_equal(gwt_cert_until(&env, "norfolk", "gateway", until), 0);
	assert_int_equal(gwt_gw_start(&env, "norfolk", &gw), 0);
	assert_int_equal(gwt_log_wait(&gw,
	    "event=cert-expiring role=gateway file=", 5000), 1);
	assert_true(metric(&gw, "visor_certificate_expiry_seconds") <=
	    (double)lifetime_s());
	assert_false(gwt_log_contains(&gw, "event=cert-expired"));

	wait_past(until);
	assert_int_equal(gwt_log_wait(&gw,
	    "event=cert-expired role=gateway file=", 5000), 1);
	assert_true(gwt_log_contains(&gw, "visorctl certs renew"));
	assert_true(metric(&gw, "visor_certificate_expiry_seconds") < 0);
	/* What a client sees. */
	assert_int_equal(gwt_request(&env, &gw, "norfolk", "agency-police",
	    "GET", "/v1/health", hdrs, NULL, 0, &resp, err, sizeof(err)), -1);
	gwt_resp_free(&resp);
	if (strstr(err, "expired") == NULL)
		fail_msg("a client's error does not say expired: %s", err);

	/* Renewed (visorctl certs renew) and reloaded. */
	assert_int_equal(pki_renew(gwt_path(&env, "pki/norfolk"),
	    gwt_path(&env, "pki/norfolk/gateway.crt"), 0, 0, old, sizeof(old),
	    err, sizeof(err)), 0);
	assert_int_equal(gwt_gw_hup(&gw), 0);
	assert_int_equal(gwt_request(&env, &gw, "norfolk", "agency-police",
	    "GET", "/v1/health", hdrs, NULL, 0, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.status, 200);
	gwt_resp_free(&resp);
	assert_int_equal(gwt_gw_stop_clean(&gw), 0);
}

/* Suffolk's CA certificate, re-signed by the root with its notBefore an
 * hour ahead (the CA's clock ahead of this one by more than the five
 * minutes the PKI code back-dates).  The load takes it (a CA certificate's
 * dates are not checked there), and every Suffolk client is refused as
 * not-yet-valid: the log says why at start (event=clock-behind role=ca),
 * rather than leaving the operator with refusals alone.  Norfolk's clients
 * are served. */
static void
test_ca_ahead_of_clock(void **state)
{
	char err[256], *saved = NULL;
	const char *ca_path = gwt_path(&env, "pki/suffolk/ca.crt");
	char path[600];
	size_t len = 0;
	pki_ca_t root;
	X509 *ca;
	time_t ahead = time(NULL) + 3600;
	gwt_gw_t gw;

	(void)state;
	snprintf(path, sizeof(path), "%s", ca_path);
	assert_int_equal(file_read_all(path, 1 << 20, &saved, &len), 0);
	memset(&root, 0, sizeof(root));
	if (pki_ca_load(gwt_path(&env, "pki"), "root", &root, err,
	    sizeof(err)) < 0)
		fail_msg("root: %s", err);
	ca = pki_load_cert(path, err, sizeof(err));
	assert_non_null(ca);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(ca), 0, 0, &ahead));
	assert_true(X509_sign(ca, root.key, EVP_sha256()) > 0);
	assert_int_equal(pki_write_cert(path, ca, NULL, err, sizeof(err)), 0);
	X509_free(ca);
	pki_ca_clear(&root);

	assert_int_equal(gwt_gw_start(&env, "norfolk", &gw), 0);
	assert_int_equal(gwt_log_wait(&gw, "event=clock-behind role=ca file=",
	    5000), 1);
	assert_true(gwt_log_contains(&gw, "pki/suffolk/ca.crt"));
	assert_int_equal(raw_health_as(&gw, "suffolk", "agency-police"), -1);
	assert_int_equal(gwt_log_wait(&gw,
	    "event=handshake-refused reason=not-yet-valid", 5000), 1);
	assert_int_equal(raw_health(&gw, "agency-police"), 200);
	assert_int_equal(gwt_gw_stop_clean(&gw), 0);
	assert_int_equal(file_write_atomic(path, saved, len, 0644), 0);
	free(saved);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crl_runs_out),
		cmocka_unit_test(test_own_certificate_runs_out),
		cmocka_unit_test(test_ca_ahead_of_clock),
	};

	return gwt_exit(cmocka_run_group_tests_name("validity", tests,
	    group_setup, group_teardown));
}
