/*
 * Integration: the mTLS front door of a real gateway (issue 2 item 6).
 *
 * One quickstart (norfolk, suffolk) and one running Norfolk gateway for the
 * whole group.  Every certificate a gateway must refuse is minted with
 * certs/pki.h and presented with the project's own client and with the curl
 * binary; each refusal must end the handshake, leave an
 * `event=handshake-refused reason=<reason>` line in the gateway's log, an
 * auth-fail entry in its audit log and a count in /metrics, and must not
 * disturb the gateway.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rsa.h>
#include <openssl/ssl.h>

#include <cjson/cJSON.h>

#include "certs/pki.h"
#include "crypto/keyfile.h"
#include "crypto/tls_trust.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/fileio.h"

typedef struct {
	gwt_env_t env;
	gwt_gw_t gw;
	int metrics_port;
	char bad[300];		/* folder of the certificates minted here */
} tls_fixture_t;

static tls_fixture_t fx;

/* ---------------------------------------------------------------- helpers */

static size_t
count_in_file(const char *path, const char *needle)
{
	char *text = NULL;
	const char *p;
	size_t len, n = 0;

	if (file_read_all(path, 256 << 20, &text, &len) < 0)
		return 0;
	for (p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(text);
	return n;
}

static void
refusal_line(const char *reason, char *out, size_t outlen)
{
	snprintf(out, outlen, "event=handshake-refused reason=%s ", reason);
}

/* Wait (up to 5 s) until the log holds more than before lines of needle. */
static int
wait_log_count(const char *needle, size_t before)
{
	int i;

	for (i = 0; i < 500; i++) {
		if (count_in_file(fx.gw.log, needle) > before)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

static const char *
bad_path(const char *name, const char *ext)
{
	static char p[4][600];
	static int next;
	char *s = p[next++ % 4];

	snprintf(s, 600, "%s/%s%s", fx.bad, name, ext);
	return s;
}

static long
health_status_files(const char *cert, const char *key, char *err, size_t errlen)
{
	const char *hdrs[] = { NULL };
	gwt_resp_t resp;
	long status;

	if (gwt_request_files(&fx.env, &fx.gw, cert, key, "GET", "/v1/health",
	    hdrs, NULL, 0, &resp, err, errlen) < 0)
		return -1;
	status = resp.status;
	gwt_resp_free(&resp);
	return status;
}

static long
health_status(const char *area, const char *name)
{
	char cert[600], key[600], err[256];

	snprintf(cert, sizeof(cert), "%s/pki/%s/%s.crt", fx.env.dir, area, name);
	snprintf(key, sizeof(key), "%s/pki/%s/%s.key", fx.env.dir, area, name);
	return health_status_files(cert, key, err, sizeof(err));
}

/* curl's exit status for /v1/health; the HTTP code in code. */
static int
curl_health(const char *cert, const char *key, const char *extra, char *code,
    size_t codelen)
{
	char url[100];
	buf_t out = BUF_INIT;
	const char *argv[24];
	int n = 0, rc;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/health", fx.gw.port);
	argv[n++] = "curl";
	argv[n++] = "-sS";
	argv[n++] = "--max-time";
	argv[n++] = "15";
	argv[n++] = "-o";
	argv[n++] = "/dev/null";
	argv[n++] = "-w";
	argv[n++] = "%{http_code}";
	argv[n++] = "--cacert";
	argv[n++] = gwt_path(&fx.env, "pki/root.crt");
	if (cert != NULL) {
		argv[n++] = "--cert";
		argv[n++] = cert;
		argv[n++] = "--key";
		argv[n++] = key;
	}
	if (extra != NULL)
		argv[n++] = extra;
	if (extra != NULL && strcmp(extra, "--tls-max") == 0)
		argv[n++] = "1.2";
	argv[n++] = url;
	argv[n] = NULL;
	rc = gwt_run(argv, NULL, 0, &out, NULL);
	snprintf(code, codelen, "%s", out.data ? out.data : "");
	buf_free(&out);
	return rc;
}

/* The auth-fail entries of the audit log with this reason, fetched as the
 * auditor through /v1/audit/search and decoded from base64. */
static int
audit_auth_fails(const char *reason, const char *cert)
{
	const char *hdrs[] = { NULL };
	gwt_resp_t resp;
	char err[256];
	cJSON *doc, *entries, *it, *leaf;
	const cJSON *op, *why, *fp, *pol;
	unsigned char *raw;
	long n;
	int count = 0;

	if (gwt_request(&fx.env, &fx.gw, "norfolk", "auditor", "GET",
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
		leaf = n > 0 ? cJSON_ParseWithLength((const char *)raw, (size_t)n) : NULL;
		free(raw);
		op = cJSON_GetObjectItemCaseSensitive(leaf, "op");
		why = cJSON_GetObjectItemCaseSensitive(leaf, "reason");
		fp = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(leaf, "actor"), "cert");
		pol = cJSON_GetObjectItemCaseSensitive(leaf, "policy");
		/* SPEC 7: every entry names the policy in force, a refusal's
		 * too. */
		if (cJSON_IsString(op) && strcmp(op->valuestring, "auth-fail") == 0 &&
		    cJSON_IsString(pol) && strlen(pol->valuestring) == 64 &&
		    cJSON_IsString(why) && strcmp(why->valuestring, reason) == 0 &&
		    (cert == NULL || (cJSON_IsString(fp) &&
		    strcmp(fp->valuestring, cert) == 0)))
			count++;
		cJSON_Delete(leaf);
	}
	cJSON_Delete(doc);
	return count;
}

static int
wait_audit_count(const char *reason, const char *cert, int before)
{
	int i, n;

	for (i = 0; i < 300; i++) {
		n = audit_auth_fails(reason, cert);
		if (n > before)
			return n;
		sleep_ms(10);
	}
	return -1;
}

/*
 * Present cert/key with our client and with curl: both must fail, each
 * refusal logged with reason and audited as auth-fail, and the gateway must
 * keep serving a valid agency.
 */
static void
expect_refused(const char *cert_in, const char *key_in, const char *reason)
{
	char needle[200], err[256], code[16], fp[65], cert[600], key[600];
	size_t before;
	int audited, rc;
	X509 *x;

	/* The callers may pass gwt_path() buffers, which later calls reuse. */
	snprintf(cert, sizeof(cert), "%s", cert_in);
	snprintf(key, sizeof(key), "%s", key_in);

	/* The refusal names the presented certificate by its SHA-256. */
	x = pki_load_cert(cert, err, sizeof(err));
	if (x == NULL)
		fail_msg("%s: %s", cert, err);
	tls_trust_cert_sha256(x, fp);
	X509_free(x);
	snprintf(needle, sizeof(needle), "event=handshake-refused reason=%s "
	    "peer=127.0.0.1:", reason);
	audited = audit_auth_fails(reason, fp);
	assert_true(audited >= 0);

	before = count_in_file(fx.gw.log, needle);
	err[0] = '\0';
	assert_int_equal(health_status_files(cert, key, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	if (!wait_log_count(needle, before))
		fail_msg("own client: no '%s' line in %s", needle, fx.gw.log);
	assert_true(wait_audit_count(reason, fp, audited) > audited);

	before = count_in_file(fx.gw.log, needle);
	audited = audit_auth_fails(reason, fp);
	rc = curl_health(cert, key, NULL, code, sizeof(code));
	assert_int_not_equal(rc, 0);
	assert_string_not_equal(code, "200");
	if (!wait_log_count(needle, before))
		fail_msg("curl: no '%s' line in %s", needle, fx.gw.log);
	assert_true(wait_audit_count(reason, fp, audited) > audited);
	snprintf(needle, sizeof(needle), " cert=%s", fp);
	if (count_in_file(fx.gw.log, needle) < 2)
		fail_msg("the refusals do not name certificate %s", fp);

	assert_true(gwt_gw_alive(&fx.gw));
	assert_int_equal(health_status("norfolk", "agency-police"), 200);
}

/* Mint bad/<name>.crt/.key with the CA of ca_area. */
static void
mint(const char *ca_area, const char *identity, const char *name,
    const pki_leaf_opts_t *opts)
{
	char cadir[600], prefix[600], err[256];

	snprintf(cadir, sizeof(cadir), "%s/pki/%s", fx.env.dir, ca_area);
	snprintf(prefix, sizeof(prefix), "%s/%s", fx.bad, name);
	if (pki_issue(cadir, identity, prefix, opts, err, sizeof(err)) < 0)
		fail_msg("pki_issue %s: %s", name, err);
}

static void
expect_minted_refused(const char *name, const char *reason)
{
	char cert[600], key[600];

	snprintf(cert, sizeof(cert), "%s", bad_path(name, ".crt"));
	snprintf(key, sizeof(key), "%s", bad_path(name, ".key"));
	expect_refused(cert, key, reason);
}


/* ------------------------------------------------------- raw TLS client */

typedef struct {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
} raw_t;

/* A TCP connection to the gateway, accepted before any TLS byte is sent
 * (the handshake comes later, raw_handshake). */
static void
raw_connect(raw_t *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = gwt_tcp_connect(fx.gw.port);
	assert_true(r->fd >= 0);
	r->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(r->ctx);
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
	assert_int_equal(SSL_CTX_load_verify_locations(r->ctx,
	    gwt_path(&fx.env, "pki/root.crt"), NULL), 1);
}

/* The TLS handshake on r as cert/key (NULL: no certificate).  0 if the
 * client side completed (in TLS 1.3 a refused client certificate shows
 * only on the first read). */
static int
raw_handshake(raw_t *r, const char *cert, const char *key)
{
	if (cert != NULL &&
	    (SSL_CTX_use_certificate_chain_file(r->ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(r->ctx, key, SSL_FILETYPE_PEM) != 1))
		fail_msg("cannot load %s", cert);
	r->ssl = SSL_new(r->ctx);
	assert_non_null(r->ssl);
	SSL_set_fd(r->ssl, r->fd);
	return SSL_connect(r->ssl) == 1 ? 0 : -1;
}

static void
raw_close(raw_t *r)
{
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

/* GET /v1/health on the open connection, keep-alive: the status, or -1 if
 * the connection failed.  The whole answer in body (may be NULL). */
static long
raw_health(raw_t *r, buf_t *body)
{
	static const char req[] = "GET /v1/health HTTP/1.1\r\nHost: gw\r\n\r\n";
	char tmp[4096];
	buf_t in = BUF_INIT;
	const char *end, *cl;
	long status = -1;
	int n;

	if (SSL_write(r->ssl, req, (int)sizeof(req) - 1) != (int)sizeof(req) - 1)
		return -1;
	while ((n = SSL_read(r->ssl, tmp, sizeof(tmp))) > 0) {
		assert_int_equal(buf_append(&in, tmp, (size_t)n), 0);
		if ((end = strstr(in.data, "\r\n\r\n")) != NULL &&
		    (cl = strcasestr(in.data, "Content-Length:")) != NULL &&
		    cl < end && (long)(in.len - (size_t)(end + 4 - in.data)) >=
		    strtol(cl + 15, NULL, 10))
			break;
	}
	if (in.data != NULL && strncmp(in.data, "HTTP/1.1 ", 9) == 0)
		status = strtol(in.data + 9, NULL, 10);
	if (body != NULL)
		buf_append(body, in.data ? in.data : "", in.len);
	buf_free(&in);
	return status;
}

/* ---------------------------------------------------------- group setup */

static int group_teardown(void **state);

static int
group_setup(void **state)
{
	char *cfg = NULL;
	const char *m;
	size_t len;

	(void)state;
	memset(&fx, 0, sizeof(fx));
	if (gwt_env_setup(&fx.env, "norfolk,suffolk") < 0)
		goto fail;
	snprintf(fx.bad, sizeof(fx.bad), "%s/bad", fx.env.dir);
	if (mkdir(fx.bad, 0700) < 0)
		goto fail;
	if (file_read_all(gwt_path(&fx.env, "norfolk/gateway.json"), 1 << 20, &cfg,
	    &len) < 0)
		goto fail;
	m = strstr(cfg, "\"metrics_listen\"");
	m = m ? strstr(m, "127.0.0.1:") : NULL;
	fx.metrics_port = m ? (int)strtol(m + 10, NULL, 10) : 0;
	free(cfg);
	if (fx.metrics_port <= 0)
		goto fail;
	if (gwt_gw_start(&fx.env, "norfolk", &fx.gw) < 0)
		goto fail;
	return 0;
fail:
	group_teardown(state);
	return -1;
}

static int
group_teardown(void **state)
{
	int rc;

	(void)state;
	/* A clean exit (no leak report under the sanitizers or memcheck) and
	 * no sanitizer report in the gateway's log are part of the test. */
	rc = gwt_gw_stop_clean(&fx.gw);
	gwt_env_cleanup(&fx.env);
	memset(&fx, 0, sizeof(fx));
	return rc;
}

/* ------------------------------------------------------------------ tests */

static void
test_valid_agency_own_client(void **state)
{
	const char *hdrs[] = { NULL };
	gwt_resp_t resp;
	char err[256];
	cJSON *j;

	(void)state;
	assert_int_equal(gwt_request(&fx.env, &fx.gw, "norfolk", "agency-police",
	    "GET", "/v1/health", hdrs, NULL, 0, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.status, 200);
	j = cJSON_ParseWithLength(resp.body.data, resp.body.len);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "ok");
	assert_string_equal(cJSON_GetObjectItem(j, "area")->valuestring, "norfolk");
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "audit_size")));
	cJSON_Delete(j);
	gwt_resp_free(&resp);
	/* Every agency type of the quickstart, the auditor and a peer
	 * gateway of another area are verified identities. */
	assert_int_equal(health_status("norfolk", "agency-housing"), 200);
	assert_int_equal(health_status("norfolk", "agency-ems"), 200);
	assert_int_equal(health_status("norfolk", "auditor"), 200);
	assert_int_equal(health_status("suffolk", "agency-probation"), 200);
	assert_int_equal(health_status("suffolk", "gateway"), 200);
}

static void
test_valid_agency_curl(void **state)
{
	char code[16];

	(void)state;
	assert_int_equal(curl_health(gwt_path(&fx.env, "pki/norfolk/agency-police.crt"),
	    gwt_path(&fx.env, "pki/norfolk/agency-police.key"), NULL, code,
	    sizeof(code)), 0);
	assert_string_equal(code, "200");
}

static void
test_no_client_certificate(void **state)
{
	char needle[100], code[16];
	size_t before;
	int audited;

	(void)state;
	refusal_line("no-certificate", needle, sizeof(needle));
	audited = audit_auth_fails("no-certificate", NULL);
	before = count_in_file(fx.gw.log, needle);
	assert_int_not_equal(curl_health(NULL, NULL, NULL, code, sizeof(code)), 0);
	assert_string_not_equal(code, "200");
	assert_true(wait_log_count(needle, before));
	assert_true(wait_audit_count("no-certificate", NULL, audited) > audited);
	assert_int_equal(health_status("norfolk", "agency-police"), 200);
}

static void
test_tls12_client(void **state)
{
	char needle[100], code[16];
	size_t before;
	int audited;

	(void)state;
	refusal_line("protocol-version", needle, sizeof(needle));
	audited = audit_auth_fails("protocol-version", NULL);
	before = count_in_file(fx.gw.log, needle);
	assert_int_not_equal(curl_health(gwt_path(&fx.env,
	    "pki/norfolk/agency-police.crt"), gwt_path(&fx.env,
	    "pki/norfolk/agency-police.key"), "--tls-max", code, sizeof(code)), 0);
	assert_string_not_equal(code, "200");
	assert_true(wait_log_count(needle, before));
	assert_true(wait_audit_count("protocol-version", NULL, audited) > audited);
	assert_int_equal(health_status("norfolk", "agency-police"), 200);
}

static void
test_other_root(void **state)
{
	char root[600], ca[600], prefix[600], err[256];

	(void)state;
	/* A complete second hierarchy with its own "norfolk" CA: the names
	 * match ours, the trust anchor does not. */
	snprintf(root, sizeof(root), "%s/other-root", fx.bad);
	snprintf(ca, sizeof(ca), "%s/other-norfolk", fx.bad);
	snprintf(prefix, sizeof(prefix), "%s/other-police", fx.bad);
	assert_int_equal(pki_root_create(root, 0, err, sizeof(err)), 0);
	assert_int_equal(pki_area_ca_create(root, "norfolk", ca, 0, err,
	    sizeof(err)), 0);
	assert_int_equal(pki_issue(ca, "urn:visor:norfolk:agency:police", prefix,
	    NULL, err, sizeof(err)), 0);
	expect_minted_refused("other-police", "unknown-ca");
}

static void
test_expired(void **state)
{
	pki_leaf_opts_t o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.expired = 1;
	mint("norfolk", "urn:visor:norfolk:agency:police", "expired", &o);
	expect_minted_refused("expired", "expired");
}

static void
test_not_yet_valid(void **state)
{
	pki_leaf_opts_t o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.not_yet_valid = 1;
	mint("norfolk", "urn:visor:norfolk:agency:police", "future", &o);
	expect_minted_refused("future", "not-yet-valid");
}

static void
test_server_auth_only(void **state)
{
	pki_leaf_opts_t o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.eku = PKI_EKU_SERVER;
	mint("norfolk", "urn:visor:norfolk:agency:police", "server-only", &o);
	expect_minted_refused("server-only", "bad-eku");
}

static void
test_no_eku(void **state)
{
	pki_leaf_opts_t o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.eku = PKI_EKU_OMIT;
	mint("norfolk", "urn:visor:norfolk:agency:police", "no-eku", &o);
	expect_minted_refused("no-eku", "bad-eku");
}

static void
test_no_uri(void **state)
{
	pki_leaf_opts_t o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.no_uri = 1;
	mint("norfolk", "urn:visor:norfolk:agency:police", "no-uri", &o);
	expect_minted_refused("no-uri", "no-uri");
}

static void
test_two_uris(void **state)
{
	pki_leaf_opts_t o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.second_uri = "urn:visor:norfolk:agency:probation";
	mint("norfolk", "urn:visor:norfolk:agency:police", "two-uris", &o);
	expect_minted_refused("two-uris", "multiple-uris");
}

static void
test_malformed_uri(void **state)
{
	static const char *const bad[] = {
		"urn:visor:norfolk:agency:wizard",	/* unknown agency type */
		"urn:visor:Norfolk:agency:police",	/* upper case area */
		"urn:visor:norfolk:agency:police:",	/* empty unit */
		"https://norfolk.example/police",	/* not a visor URN */
	};
	pki_leaf_opts_t o;
	char name[32];
	size_t i;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.unchecked = 1;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(name, sizeof(name), "malformed-%zu", i);
		mint("norfolk", bad[i], name, &o);
		expect_minted_refused(name, "malformed-uri");
	}
}

static void
test_norfolk_identity_from_suffolk_ca(void **state)
{
	pki_leaf_opts_t o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.unchecked = 1;
	mint("suffolk", "urn:visor:norfolk:agency:police", "cross-area", &o);
	expect_minted_refused("cross-area", "area-mismatch");
}

static void
test_ca_certificate_as_client(void **state)
{
	pki_leaf_opts_t o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.ca = 1;
	mint("norfolk", "urn:visor:norfolk:agency:police", "ca-leaf", &o);
	expect_minted_refused("ca-leaf", "not-an-end-entity");
}

static void
test_area_ca_key_as_client(void **state)
{
	(void)state;
	/* The area CA's own certificate and key: a CA, and no client EKU. */
	expect_refused(gwt_path(&fx.env, "pki/norfolk/ca.crt"),
	    gwt_path(&fx.env, "pki/norfolk/ca.key"), "bad-eku");
}

static void
test_revoked_after_hup(void **state)
{
	char cert[600], key[600], needle[100];
	buf_t out = BUF_INIT, errout = BUF_INIT;
	size_t before;
	int rc;

	(void)state;
	mint("norfolk", "urn:visor:norfolk:agency:probation:revoke-me", "revoke-me",
	    NULL);
	snprintf(cert, sizeof(cert), "%s", bad_path("revoke-me", ".crt"));
	snprintf(key, sizeof(key), "%s", bad_path("revoke-me", ".key"));
	{
		char e[256];
		assert_int_equal(health_status_files(cert, key, e, sizeof(e)), 200);
	}
	{
		const char *argv[] = { gwt_prog(&fx.env, "visorctl"), "certs",
		    "revoke", "--ca-dir", gwt_path(&fx.env, "pki/norfolk"), cert,
		    "--reason", "key-compromise", NULL };
		rc = gwt_run(argv, NULL, 0, &out, &errout);
	}
	if (rc != 0)
		fail_msg("visorctl certs revoke: %d: %s", rc,
		    errout.data ? errout.data : "");
	buf_free(&out);
	buf_free(&errout);
	/* Not yet applied: the gateway reads CRLs at start and on SIGHUP. */
	{
		char e[256];
		assert_int_equal(health_status_files(cert, key, e, sizeof(e)), 200);
	}
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	assert_true(gwt_gw_alive(&fx.gw));
	expect_refused(cert, key, "revoked");
	/* Still refused on every new connection, and others still served,
	 * by the same process. */
	refusal_line("revoked", needle, sizeof(needle));
	before = count_in_file(fx.gw.log, needle);
	{
		char e[512];
		assert_int_equal(health_status_files(cert, key, e, sizeof(e)), -1);
		/* The client says its certificate was refused, by the
		 * alert when it reads it first, else from the reset that
		 * overtook it; never libcurl's getpeername() note. */
		if (strstr(e, "refuses this client certificate") == NULL &&
		    strstr(e, "refused this client certificate") == NULL)
			fail_msg("the refusal is not named: %s", e);
		assert_null(strstr(e, "getpeername"));
	}
	assert_true(wait_log_count(needle, before));
	assert_int_equal(health_status("norfolk", "agency-probation"), 200);
	assert_true(gwt_gw_alive(&fx.gw));
}

/* Audit entries of op with result (search as the auditor, leaves decoded). */
static int
audit_count(const char *op, const char *result)
{
	const char *hdrs[] = { NULL };
	char path[100], err[256];
	gwt_resp_t resp;
	cJSON *doc, *it, *leaf;
	unsigned char *raw;
	long n;
	int count = 0;

	snprintf(path, sizeof(path), "/v1/audit/search?op=%s", op);
	if (gwt_request(&fx.env, &fx.gw, "norfolk", "auditor", "GET", path, hdrs,
	    NULL, 0, &resp, err, sizeof(err)) < 0 || resp.status != 200) {
		gwt_resp_free(&resp);
		return -1;
	}
	doc = cJSON_ParseWithLength(resp.body.data, resp.body.len);
	gwt_resp_free(&resp);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "entries")) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "data"), *o, *r;
		size_t dl;

		if (!cJSON_IsString(d))
			continue;
		dl = strlen(d->valuestring);
		if ((raw = malloc(dl + 1)) == NULL)
			break;
		n = b64_decode(d->valuestring, dl, raw, dl + 1);
		leaf = n > 0 ? cJSON_ParseWithLength((char *)raw, (size_t)n) : NULL;
		free(raw);
		o = cJSON_GetObjectItemCaseSensitive(leaf, "op");
		r = cJSON_GetObjectItemCaseSensitive(leaf, "result");
		count += cJSON_IsString(o) && strcmp(o->valuestring, op) == 0 &&
		    cJSON_IsString(r) && strcmp(r->valuestring, result) == 0;
		cJSON_Delete(leaf);
	}
	cJSON_Delete(doc);
	return count;
}

/* SPEC 3: resumption must not skip the checks.  The gateway issues no
 * session ticket and keeps no session cache, so a client has nothing to
 * resume: every connection runs the full verification. */
static void
test_no_session_resumption(void **state)
{
	static const char req[] = "GET /v1/health HTTP/1.1\r\nHost: gw\r\n"
	    "Connection: close\r\n\r\n";
	char connect[64], sess[600];
	buf_t out = BUF_INIT;
	struct stat st;

	(void)state;
	snprintf(connect, sizeof(connect), "127.0.0.1:%d", fx.gw.port);
	snprintf(sess, sizeof(sess), "%s/session.pem", fx.bad);
	{
		char cert[600], key[600], root[600];
		snprintf(cert, sizeof(cert), "%s", gwt_path(&fx.env,
		    "pki/norfolk/agency-police.crt"));
		snprintf(key, sizeof(key), "%s", gwt_path(&fx.env,
		    "pki/norfolk/agency-police.key"));
		snprintf(root, sizeof(root), "%s", gwt_path(&fx.env, "pki/root.crt"));
		{
			const char *argv[] = { "openssl", "s_client", "-connect",
			    connect, "-cert", cert, "-key", key, "-CAfile", root,
			    "-sess_out", sess, "-ign_eof", NULL };
			gwt_run(argv, req, sizeof(req) - 1, &out, NULL);
		}
	}
	if (out.data == NULL || strstr(out.data, "HTTP/1.1 200") == NULL)
		fail_msg("openssl s_client got no answer: %s", out.data ? out.data : "");
	assert_non_null(strstr(out.data, "New, TLSv1.3"));
	/* No ticket arrived: there is no session to save. */
	assert_int_equal(stat(sess, &st), -1);
	buf_free(&out);
}

/* Replace path's contents, returning the old ones (caller frees). */
static char *
swap_file(const char *path, const char *text)
{
	char *old = NULL;
	size_t len;

	if (file_read_all(path, 1 << 20, &old, &len) < 0)
		return NULL;
	if (file_write_atomic(path, text, strlen(text), 0644) < 0) {
		free(old);
		return NULL;
	}
	return old;
}

static void
test_hup_broken_config_keeps_old(void **state)
{
	char cfgpath[600], *old, *broken;
	int refused0, ok0;
	cJSON *j;

	(void)state;
	/* gwt_path's buffers are reused: keep a copy. */
	snprintf(cfgpath, sizeof(cfgpath), "%s", gwt_path(&fx.env,
	    "norfolk/gateway.json"));
	refused0 = audit_count("config", "refused");
	ok0 = audit_count("config", "ok");
	/* An unknown key makes the whole new set invalid. */
	assert_int_equal(file_read_all(cfgpath, 1 << 20, &old, &(size_t){0}), 0);
	j = cJSON_Parse(old);
	free(old);
	assert_non_null(j);
	cJSON_AddStringToObject(j, "bogus_key", "x");
	broken = cJSON_Print(j);
	cJSON_Delete(j);
	old = swap_file(cfgpath, broken);
	free(broken);
	assert_non_null(old);
	assert_int_equal(gwt_gw_hup(&fx.gw), 1);
	assert_true(gwt_gw_alive(&fx.gw));
	assert_int_equal(health_status("norfolk", "agency-police"), 200);

	/* Not JSON at all. */
	assert_int_equal(file_write_atomic(cfgpath, "{\"area\":", 8, 0644), 0);
	assert_int_equal(gwt_gw_hup(&fx.gw), 1);
	assert_int_equal(health_status("norfolk", "agency-police"), 200);

	assert_int_equal(file_write_atomic(cfgpath, old, strlen(old), 0644), 0);
	free(old);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	assert_int_equal(health_status("norfolk", "agency-police"), 200);
	/* Each reload attempt is in the audit log with its outcome. */
	{
		int i;
		for (i = 0; i < 300 && (audit_count("config", "refused") < refused0 + 2 ||
		    audit_count("config", "ok") < ok0 + 1); i++)
			sleep_ms(10);
	}
	assert_int_equal(audit_count("config", "refused"), refused0 + 2);
	assert_int_equal(audit_count("config", "ok"), ok0 + 1);
}

/* Peers are read once, at start (one delivery thread each): a reload
 * that adds one, or moves one, is refused, so that no transfer is taken
 * for a peer nothing would deliver to. */
static void
test_hup_peer_change_refused(void **state)
{
	char cfgpath[600], *old;
	const char *moves[] = { "add", "move" };
	cJSON *j, *peers, *p;
	size_t i;

	(void)state;
	snprintf(cfgpath, sizeof(cfgpath), "%s", gwt_path(&fx.env,
	    "norfolk/gateway.json"));
	assert_int_equal(file_read_all(cfgpath, 1 << 20, &old, &(size_t){0}), 0);
	for (i = 0; i < 2; i++) {
		j = cJSON_Parse(old);
		assert_non_null(j);
		peers = cJSON_GetObjectItemCaseSensitive(j, "peers");
		assert_true(cJSON_IsArray(peers) && cJSON_GetArraySize(peers) > 0);
		if (strcmp(moves[i], "add") == 0) {
			p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "area", "cambs");
			cJSON_AddStringToObject(p, "url", "https://127.0.0.1:9");
			cJSON_AddItemToArray(peers, p);
		} else {
			p = cJSON_GetArrayItem(peers, 0);
			cJSON_ReplaceItemInObjectCaseSensitive(p, "url",
			    cJSON_CreateString("https://127.0.0.1:9"));
		}
		assert_int_equal(gwt_json_save(cfgpath, j), 0);
		cJSON_Delete(j);
		assert_int_equal(gwt_gw_hup(&fx.gw), 1);
		assert_int_equal(gwt_log_wait(&fx.gw, "peers cannot change", 2000), 1);
		assert_true(gwt_gw_alive(&fx.gw));
		assert_int_equal(health_status("norfolk", "agency-police"), 200);
	}
	assert_int_equal(file_write_atomic(cfgpath, old, strlen(old), 0644), 0);
	free(old);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
}

/* A reload that changes what was used at start (the listener, limits,
 * the store's settings) is refused whole, naming the keys.  Before, it
 * was logged "reloaded" and audited "config ok" while the old port, the
 * old body limit and the old connection cap stayed in force.  What is
 * read per request (here transfer.deadline_s) still reloads. */
static void
test_hup_restart_only_refused(void **state)
{
	char cfgpath[600], *old;
	cJSON *j, *sec;

	(void)state;
	snprintf(cfgpath, sizeof(cfgpath), "%s", gwt_path(&fx.env,
	    "norfolk/gateway.json"));
	assert_int_equal(file_read_all(cfgpath, 1 << 20, &old, &(size_t){0}), 0);
	j = gwt_json_load(cfgpath);
	assert_non_null(j);
	if ((sec = cJSON_GetObjectItemCaseSensitive(j, "limits")) == NULL)
		sec = cJSON_AddObjectToObject(j, "limits");
	cJSON_DeleteItemFromObjectCaseSensitive(sec, "max_body_bytes");
	cJSON_AddNumberToObject(sec, "max_body_bytes", 1024);
	cJSON_DeleteItemFromObjectCaseSensitive(j, "threads");
	cJSON_AddNumberToObject(j, "threads", 3);
	assert_int_equal(gwt_json_save(cfgpath, j), 0);
	cJSON_Delete(j);
	assert_int_equal(gwt_gw_hup(&fx.gw), 1);
	assert_int_equal(gwt_log_wait(&fx.gw, "limits.max_body_bytes, threads "
	    "cannot change without a restart (nothing was reloaded)", 2000), 1);
	assert_true(gwt_gw_alive(&fx.gw));
	assert_int_equal(health_status("norfolk", "agency-police"), 200);

	assert_int_equal(file_write_atomic(cfgpath, old, strlen(old), 0644), 0);
	j = gwt_json_load(cfgpath);
	assert_non_null(j);
	if ((sec = cJSON_GetObjectItemCaseSensitive(j, "transfer")) == NULL)
		sec = cJSON_AddObjectToObject(j, "transfer");
	cJSON_DeleteItemFromObjectCaseSensitive(sec, "deadline_s");
	cJSON_AddNumberToObject(sec, "deadline_s", 7200);
	assert_int_equal(gwt_json_save(cfgpath, j), 0);
	cJSON_Delete(j);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	assert_int_equal(file_write_atomic(cfgpath, old, strlen(old), 0644), 0);
	free(old);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
}

static void
test_hup_broken_policy_keeps_old(void **state)
{
	char pol[600];
	const char *hdrs[] = { "X-Visor-Actor: T100", "X-Visor-Purpose: review",
	    "X-Visor-Justification: tls test", NULL };
	const char *rec = "{\"id\":\"TLS-HUP-1\",\"managing_area\":\"norfolk\","
	    "\"category\":1,\"level\":1,\"person\":{\"surname\":\"HUPTEST\"}}";
	gwt_resp_t resp;
	char err[256], *old;

	(void)state;
	snprintf(pol, sizeof(pol), "%s", gwt_path(&fx.env, "norfolk/policy.json"));
	assert_int_equal(gwt_request(&fx.env, &fx.gw, "norfolk", "agency-police",
	    "PUT", "/v1/records/TLS-HUP-1", hdrs, rec, strlen(rec), &resp, err,
	    sizeof(err)), 0);
	assert_true(resp.status == 201 || resp.status == 200);
	gwt_resp_free(&resp);

	/* A rule with an unknown effect: the policy does not load. */
	old = swap_file(pol, "{\"format\":\"visor-policy/1\",\"rules\":[{\"id\":\"x\","
	    "\"effect\":\"allow-everything\",\"ops\":[\"read\"]}]}");
	assert_non_null(old);
	assert_int_equal(gwt_gw_hup(&fx.gw), 1);
	assert_true(gwt_gw_alive(&fx.gw));
	/* The old policy still decides: police still read the record. */
	assert_int_equal(gwt_request(&fx.env, &fx.gw, "norfolk", "agency-police",
	    "GET", "/v1/records/TLS-HUP-1", hdrs, NULL, 0, &resp, err,
	    sizeof(err)), 0);
	assert_int_equal(resp.status, 200);
	assert_non_null(strstr(resp.body.data, "HUPTEST"));
	gwt_resp_free(&resp);

	assert_int_equal(file_write_atomic(pol, old, strlen(old), 0644), 0);
	free(old);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	assert_int_equal(health_status("norfolk", "agency-police"), 200);
}

/* Run visor-gw --check-config on a variant of the Norfolk configuration
 * built by edit; expect exit status want and want_text on stderr/stdout. */
static void
check_config_case(void (*edit)(cJSON *), int want, const char *want_text)
{
	char path[600], *src = NULL, *text;
	size_t len;
	cJSON *j;
	buf_t out = BUF_INIT, errout = BUF_INIT;
	int rc;

	assert_int_equal(file_read_all(gwt_path(&fx.env, "norfolk/gateway.json"),
	    1 << 20, &src, &len), 0);
	j = cJSON_ParseWithLength(src, len);
	free(src);
	assert_non_null(j);
	if (edit != NULL)
		edit(j);
	text = cJSON_Print(j);
	cJSON_Delete(j);
	snprintf(path, sizeof(path), "%s/check.json", fx.bad);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0644), 0);
	free(text);
	{
		const char *argv[] = { gwt_prog(&fx.env, "visor-gw"), "--config", path,
		    "--check-config", NULL };
		rc = gwt_run(argv, NULL, 0, &out, &errout);
	}
	if (rc != want || (want_text != NULL &&
	    (errout.data == NULL || strstr(errout.data, want_text) == NULL) &&
	    (out.data == NULL || strstr(out.data, want_text) == NULL)))
		fail_msg("check-config: exit %d (want %d), stdout '%s', stderr '%s', "
		    "want '%s'", rc, want, out.data ? out.data : "",
		    errout.data ? errout.data : "", want_text ? want_text : "");
	buf_free(&out);
	buf_free(&errout);
}

static void
edit_unknown_key(cJSON *j)
{
	cJSON_AddNumberToObject(cJSON_GetObjectItem(j, "limits"), "max_bodee", 5);
}

static void
edit_missing_file(cJSON *j)
{
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "tls"), "cert",
	    cJSON_CreateString("/nonexistent/visor/gateway.crt"));
}

static void
edit_key_0644(cJSON *j)
{
	char key[600], *pem = NULL;
	size_t len;

	snprintf(key, sizeof(key), "%s/gateway-0644.key", fx.bad);
	if (file_read_all(gwt_path(&fx.env, "pki/norfolk/gateway.key"), 1 << 16,
	    &pem, &len) == 0) {
		file_write_atomic(key, pem, len, 0644);
		chmod(key, 0644);
		free(pem);
	}
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "tls"), "key",
	    cJSON_CreateString(key));
}

static void
edit_bad_port(cJSON *j)
{
	cJSON_ReplaceItemInObject(j, "listen", cJSON_CreateString("127.0.0.1:99999"));
}

static void
edit_bad_limit(cJSON *j)
{
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "limits"),
	    "max_connections", cJSON_CreateNumber(0));
}

/* A gateway certificate for serverAuth only: the outbox could never
 * deliver with it, since peers take it as a client's. */
static void
edit_gateway_server_only(cJSON *j)
{
	pki_leaf_opts_t o;
	struct stat st;

	memset(&o, 0, sizeof(o));
	o.eku = PKI_EKU_SERVER;
	mint("norfolk", "urn:visor:norfolk:gateway", "gw-server-only", &o);
	/* Owned as quickstart left the real key: the gateway's account. */
	assert_int_equal(stat(gwt_path(&fx.env, "pki/norfolk/gateway.key"),
	    &st), 0);
	assert_int_equal(chown(bad_path("gw-server-only", ".key"), st.st_uid,
	    st.st_gid), 0);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "tls"), "cert",
	    cJSON_CreateString(bad_path("gw-server-only", ".crt")));
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "tls"), "key",
	    cJSON_CreateString(bad_path("gw-server-only", ".key")));
}

/* A data directory others may write: they could swap the store or its
 * keys, whatever the files' own modes.  Owned as quickstart left the
 * real one (the gateway's account), so that only its mode is wrong. */
static void
edit_data_dir_mode(cJSON *j, mode_t mode)
{
	char dir[600];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/data-open", fx.bad);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", dir, strerror(errno));
	assert_int_equal(stat(gwt_path(&fx.env, "norfolk/data"), &st), 0);
	assert_int_equal(chown(dir, st.st_uid, st.st_gid), 0);
	assert_int_equal(chmod(dir, mode), 0);
	cJSON_ReplaceItemInObject(j, "data_dir", cJSON_CreateString(dir));
}

static void
edit_data_dir_open(cJSON *j)
{
	edit_data_dir_mode(j, 0777);
}

static void
edit_data_dir_group(cJSON *j)
{
	edit_data_dir_mode(j, 0770);
}

/* Keys are not read through links: the refusal says so, not ELOOP's
 * "Too many levels of symbolic links". */
static void
edit_key_link(cJSON *j)
{
	char key[600];

	snprintf(key, sizeof(key), "%s/gateway-link.key", fx.bad);
	if (symlink(gwt_path(&fx.env, "pki/norfolk/gateway.key"), key) < 0 &&
	    errno != EEXIST)
		fail_msg("symlink %s: %s", key, strerror(errno));
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "tls"), "key",
	    cJSON_CreateString(key));
}

/* A key with a second name is refused by --check-config, saying why. */
static void
edit_key_hardlink(cJSON *j)
{
	char key[600], copy[600], *data = NULL;
	size_t len = 0;

	snprintf(key, sizeof(key), "%s/gateway-hardlink.key", fx.bad);
	snprintf(copy, sizeof(copy), "%s/gateway-hardlink-2.key", fx.bad);
	if (file_read_all(gwt_path(&fx.env, "pki/norfolk/gateway.key"), 65536,
	    &data, &len) < 0 || file_write_atomic(key, data, len, 0600) < 0 ||
	    (link(key, copy) < 0 && errno != EEXIST))
		fail_msg("hard link %s: %s", copy, strerror(errno));
	free(data);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "tls"), "key",
	    cJSON_CreateString(key));
}

static void
edit_policy_dir(cJSON *j)
{
	cJSON_ReplaceItemInObject(j, "policy",
	    cJSON_CreateString(gwt_path(&fx.env, "norfolk")));
}

/* Would fail only at the bind of a start that --check-config passed. */
static void
edit_metrics_on_listen(cJSON *j)
{
	cJSON_ReplaceItemInObject(j, "metrics_listen", cJSON_CreateString(
	    cJSON_GetStringValue(cJSON_GetObjectItem(j, "listen"))));
}

static void
edit_data_dir_file(cJSON *j)
{
	cJSON_ReplaceItemInObject(j, "data_dir",
	    cJSON_CreateString(gwt_path(&fx.env, "norfolk/policy.json")));
}

static void
test_check_config(void **state)
{
	(void)state;
	check_config_case(NULL, 0, "configuration valid");
	check_config_case(edit_unknown_key, 1, "limits.max_bodee");
	check_config_case(edit_missing_file, 1, "tls.cert");
	check_config_case(edit_key_0644, 1, "tls.key");
	check_config_case(edit_bad_port, 1, "listen");
	check_config_case(edit_bad_limit, 1, "limits.max_connections");
	check_config_case(edit_data_dir_open, 1,
	    "data-open (mode 0777) is writable by group or others");
	check_config_case(edit_data_dir_group, 1,
	    "data-open (mode 0770) is writable by group or others");
	check_config_case(edit_key_link, 1,
	    "gateway-link.key: a symbolic link: name the key file itself");
	check_config_case(edit_key_hardlink, 1,
	    "gateway-hardlink.key: has another name (a hard link)");
	check_config_case(edit_policy_dir, 1, "norfolk: not a regular file");
	check_config_case(edit_metrics_on_listen, 1,
	    "metrics_listen: is the address and port of listen");
	check_config_case(edit_data_dir_file, 1,
	    "norfolk/policy.json is not a directory");
	check_config_case(edit_gateway_server_only, 1,
	    "deliveries to them it is refused: bad-eku");
	{
		const char *argv[] = { gwt_prog(&fx.env, "visor-gw"), "--config",
		    "/nonexistent/visor/gw.json", "--check-config", NULL };
		assert_int_equal(gwt_run(argv, NULL, 0, NULL, NULL), 1);
	}
}

/* Every refusal above is in the audit log as an auth-fail entry, read the
 * way an auditor reads the log: /v1/audit/entries, leaves in base64. */
static void
test_auth_fail_entries(void **state)
{
	static const char *const reasons[] = { "no-certificate",
	    "protocol-version", "unknown-ca", "expired", "not-yet-valid",
	    "bad-eku", "no-uri", "multiple-uris", "malformed-uri",
	    "area-mismatch", "not-an-end-entity", "revoked" };
	int seen[sizeof(reasons) / sizeof(reasons[0])];
	const char *none[] = { NULL };
	char path[100], err[256];
	gwt_resp_t r;
	cJSON *doc, *it, *leaf;
	long size = -1, start, end, len;
	unsigned char *raw;
	size_t i;
	int auth_fails = 0;

	(void)state;
	memset(seen, 0, sizeof(seen));
	assert_int_equal(gwt_request(&fx.env, &fx.gw, "norfolk", "auditor", "GET",
	    "/v1/health", none, NULL, 0, &r, err, sizeof(err)), 0);
	doc = cJSON_ParseWithLength(r.body.data, r.body.len);
	gwt_resp_free(&r);
	assert_non_null(doc);
	size = (long)cJSON_GetObjectItem(doc, "audit_size")->valuedouble;
	cJSON_Delete(doc);
	assert_true(size > 0);
	for (start = 0; start < size; start = end) {
		end = start + 1000 < size ? start + 1000 : size;
		snprintf(path, sizeof(path), "/v1/audit/entries?start=%ld&end=%ld",
		    start, end);
		assert_int_equal(gwt_request(&fx.env, &fx.gw, "norfolk", "auditor",
		    "GET", path, none, NULL, 0, &r, err, sizeof(err)), 0);
		assert_int_equal(r.status, 200);
		doc = cJSON_ParseWithLength(r.body.data, r.body.len);
		gwt_resp_free(&r);
		assert_non_null(doc);
		assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc,
		    "entries")), end - start);
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "entries")) {
			const cJSON *d = cJSON_GetObjectItem(it, "data"), *op, *why;
			size_t dl;

			assert_true(cJSON_IsString(d));
			dl = strlen(d->valuestring);
			raw = malloc(dl + 1);
			assert_non_null(raw);
			len = b64_decode(d->valuestring, dl, raw, dl + 1);
			assert_true(len > 0);
			leaf = cJSON_ParseWithLength((char *)raw, (size_t)len);
			free(raw);
			assert_non_null(leaf);
			op = cJSON_GetObjectItem(leaf, "op");
			if (cJSON_IsString(op) && strcmp(op->valuestring, "auth-fail") == 0) {
				auth_fails++;
				assert_string_equal(cJSON_GetObjectItem(leaf,
				    "result")->valuestring, "refused");
				assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(
				    leaf, "actor"), "id")->valuestring, "-");
				why = cJSON_GetObjectItem(leaf, "reason");
				assert_true(cJSON_IsString(why));
				for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
					if (strcmp(why->valuestring, reasons[i]) == 0)
						seen[i]++;
			}
			cJSON_Delete(leaf);
		}
		cJSON_Delete(doc);
	}
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (seen[i] == 0)
			fail_msg("no auth-fail entry with reason %s", reasons[i]);
	/* One entry per refused handshake, no more: the log lines agree. */
	assert_int_equal((size_t)auth_fails,
	    count_in_file(fx.gw.log, "event=handshake-refused "));
}

static long
metrics_count(const char *reason)
{
	char url[100], needle[120];
	buf_t out = BUF_INIT;
	const char *p;
	long v = -1;
	int rc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", fx.metrics_port);
	{
		const char *argv[] = { "curl", "-sS", "--max-time", "10", url, NULL };
		rc = gwt_run(argv, NULL, 0, &out, NULL);
	}
	if (rc != 0 || out.data == NULL) {
		buf_free(&out);
		return -2;
	}
	snprintf(needle, sizeof(needle),
	    "visor_handshake_failures_total{reason=\"%s\"} ", reason);
	if ((p = strstr(out.data, needle)) != NULL)
		v = strtol(p + strlen(needle), NULL, 10);
	else if (strstr(out.data, "# TYPE visor_handshake_failures_total counter") != NULL)
		v = 0;
	buf_free(&out);
	return v;
}

static void
test_metrics_by_reason(void **state)
{
	pki_leaf_opts_t o;
	long nocert, expired;
	char code[16];

	(void)state;
	nocert = metrics_count("no-certificate");
	expired = metrics_count("expired");
	assert_true(nocert >= 0);
	assert_true(expired >= 0);
	assert_int_not_equal(curl_health(NULL, NULL, NULL, code, sizeof(code)), 0);
	memset(&o, 0, sizeof(o));
	o.expired = 1;
	mint("norfolk", "urn:visor:norfolk:agency:housing", "expired-metrics", &o);
	assert_int_not_equal(curl_health(bad_path("expired-metrics", ".crt"),
	    bad_path("expired-metrics", ".key"), NULL, code, sizeof(code)), 0);
	{
		int i;
		for (i = 0; i < 300 && (metrics_count("no-certificate") <= nocert ||
		    metrics_count("expired") <= expired); i++)
			sleep_ms(10);
	}
	assert_int_equal(metrics_count("no-certificate"), nocert + 1);
	assert_int_equal(metrics_count("expired"), expired + 1);
}


/* A handshake on a connection accepted before a reload, refused after it
 * (once the old configuration is gone), is logged and audited like any
 * other.  The refusal used to be reported through the old TLS context,
 * which the reload had freed: nothing was logged or audited. */
static void
test_refused_across_reload_logged(void **state)
{
	char needle[100];
	size_t before;
	int audited;
	raw_t r;

	(void)state;
	refusal_line("no-certificate", needle, sizeof(needle));
	before = count_in_file(fx.gw.log, needle);
	audited = audit_auth_fails("no-certificate", NULL);
	assert_true(audited >= 0);
	/* Not the first configuration, which lives as long as the server. */
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	raw_connect(&r);
	/* Let the gateway accept it under the configuration in force. */
	sleep_ms(gwt_ms(300));
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	/* The outbox lets go of the old configuration within 500 ms. */
	sleep_ms(gwt_ms(1500));
	(void)raw_handshake(&r, NULL, NULL);
	assert_int_equal(raw_health(&r, NULL), -1);
	raw_close(&r);
	if (!wait_log_count(needle, before))
		fail_msg("no '%s' line for a refusal after a reload", needle);
	assert_true(wait_audit_count("no-certificate", NULL, audited) > audited);
	assert_true(gwt_gw_alive(&fx.gw));
}

/* Mint bad/<name>.crt/.key, an agency of norfolk whose certificate ends
 * secs seconds from now. */
static void
mint_short_lived(const char *name, long secs)
{
	char err[256], cert[600], key[600];
	pki_ca_t ca;
	EVP_PKEY *k;
	X509 *x;
	time_t now = time(NULL);

	snprintf(cert, sizeof(cert), "%s", bad_path(name, ".crt"));
	snprintf(key, sizeof(key), "%s", bad_path(name, ".key"));
	if (pki_ca_load(gwt_path(&fx.env, "pki/norfolk"), "ca", &ca, err,
	    sizeof(err)) < 0)
		fail_msg("pki_ca_load: %s", err);
	k = pki_new_key(err, sizeof(err));
	assert_non_null(k);
	x = pki_make_leaf(&ca, k, "urn:visor:norfolk:agency:probation:short",
	    NULL, err, sizeof(err));
	assert_non_null(x);
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 0, secs, &now));
	assert_true(X509_sign(x, ca.key, EVP_sha256()) > 0);
	assert_int_equal(pki_write_cert(cert, x, ca.cert, err, sizeof(err)), 0);
	assert_int_equal(keyfile_write_private(key, k), 0);
	X509_free(x);
	EVP_PKEY_free(k);
	pki_ca_clear(&ca);
}

/* SPEC 3: a peer is accepted only within its certificate's validity.  A
 * keep-alive connection made while the certificate was valid is refused
 * at its first request after the certificate expires, as a connection
 * kept across a revocation is (tls_context_recheck). */
static void
test_expired_during_connection(void **state)
{
	char needle[100];
	buf_t body = BUF_INIT;
	size_t before;
	long life = gwt_ms(3000) / 1000;
	time_t end;
	raw_t r;

	(void)state;
	mint_short_lived("short-lived", life);
	end = time(NULL) + life;
	refusal_line("expired", needle, sizeof(needle));
	before = count_in_file(fx.gw.log, needle);
	raw_connect(&r);
	assert_int_equal(raw_handshake(&r, bad_path("short-lived", ".crt"),
	    bad_path("short-lived", ".key")), 0);
	assert_int_equal(raw_health(&r, NULL), 200);
	while (time(NULL) <= end + 1)
		sleep_ms(200);
	assert_int_equal(raw_health(&r, &body), 403);
	assert_non_null(strstr(body.data, "certificate-refused"));
	buf_free(&body);
	raw_close(&r);
	if (!wait_log_count(needle, before))
		fail_msg("no '%s' line for the expired connection", needle);
	assert_true(gwt_gw_alive(&fx.gw));
}

/* An RSA 1024 key signed by the area CA is refused in the handshake as
 * weak-key (security level 2, whatever the OpenSSL build's default),
 * logged and audited.  The client lowers its own level to send it. */
static void
test_weak_key_refused(void **state)
{
	char err[256], cert[600], key[600], needle[100], fp[65];
	pki_ca_t ca;
	EVP_PKEY *k;
	X509 *x;
	size_t before;
	int audited;
	raw_t r;

	(void)state;
	snprintf(cert, sizeof(cert), "%s", bad_path("rsa1024", ".crt"));
	snprintf(key, sizeof(key), "%s", bad_path("rsa1024", ".key"));
	if (pki_ca_load(gwt_path(&fx.env, "pki/norfolk"), "ca", &ca, err,
	    sizeof(err)) < 0)
		fail_msg("pki_ca_load: %s", err);
	k = EVP_RSA_gen(1024);
	assert_non_null(k);
	x = pki_make_leaf(&ca, k, "urn:visor:norfolk:agency:police", NULL, err,
	    sizeof(err));
	assert_non_null(x);
	assert_int_equal(pki_write_cert(cert, x, ca.cert, err, sizeof(err)), 0);
	assert_int_equal(keyfile_write_private(key, k), 0);
	tls_trust_cert_sha256(x, fp);
	X509_free(x);
	EVP_PKEY_free(k);
	pki_ca_clear(&ca);

	refusal_line("weak-key", needle, sizeof(needle));
	before = count_in_file(fx.gw.log, needle);
	audited = audit_auth_fails("weak-key", fp);
	assert_true(audited >= 0);
	raw_connect(&r);
	SSL_CTX_set_security_level(r.ctx, 0);
	(void)raw_handshake(&r, cert, key);
	assert_int_equal(raw_health(&r, NULL), -1);
	raw_close(&r);
	if (!wait_log_count(needle, before))
		fail_msg("no '%s' line in %s", needle, fx.gw.log);
	assert_true(wait_audit_count("weak-key", fp, audited) > audited);
	assert_int_equal(health_status("norfolk", "agency-police"), 200);
}

/* Two CRLs of Norfolk's CA in tls.crls, made in the same second, the
 * newer revoking a certificate: the handshake refuses it as revoked,
 * whichever file is listed first (OpenSSL reads one CRL per issuer, and
 * of two of equal lastUpdate keeps one of its choosing). */
static void
test_two_crls_same_second(void **state)
{
	char cfgpath[600], crlpath[600], oldcrl[600], err[256], needle[100];
	char fp[65], *cfg_saved, *crl_saved;
	X509_CRL *prev, *c1, *c2;
	pki_ca_t ca;
	X509 *x;
	cJSON *j, *crls;
	size_t before;
	int order;

	(void)state;
	snprintf(cfgpath, sizeof(cfgpath), "%s", gwt_path(&fx.env,
	    "norfolk/gateway.json"));
	snprintf(crlpath, sizeof(crlpath), "%s", gwt_path(&fx.env,
	    "pki/norfolk/crl.pem"));
	/* Beside crl.pem, where the gateway's account reads (bad/ is 0700). */
	snprintf(oldcrl, sizeof(oldcrl), "%s", gwt_path(&fx.env,
	    "pki/norfolk/crl-old.pem"));
	assert_int_equal(file_read_all(cfgpath, 1 << 20, &cfg_saved,
	    &(size_t){0}), 0);
	assert_int_equal(file_read_all(crlpath, 16 << 20, &crl_saved,
	    &(size_t){0}), 0);
	mint("norfolk", "urn:visor:norfolk:agency:health:two-crls", "two-crls",
	    NULL);
	x = pki_load_cert(bad_path("two-crls", ".crt"), err, sizeof(err));
	assert_non_null(x);
	tls_trust_cert_sha256(x, fp);
	if (pki_ca_load(gwt_path(&fx.env, "pki/norfolk"), "ca", &ca, err,
	    sizeof(err)) < 0)
		fail_msg("pki_ca_load: %s", err);
	prev = pki_load_crl(crlpath, err, sizeof(err));
	assert_non_null(prev);
	c1 = pki_make_crl(&ca, prev, NULL, 0, 0, err, sizeof(err));
	assert_non_null(c1);
	c2 = pki_make_crl(&ca, c1, X509_get0_serialNumber(x),
	    PKI_REASON_KEY_COMPROMISE, 0, err, sizeof(err));
	assert_non_null(c2);
	assert_int_equal(pki_write_crl(oldcrl, c1, err, sizeof(err)), 0);
	assert_int_equal(pki_write_crl(crlpath, c2, err, sizeof(err)), 0);
	for (order = 0; order < 2; order++) {
		j = cJSON_Parse(cfg_saved);
		assert_non_null(j);
		crls = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(j, "tls"), "crls");
		assert_true(cJSON_IsArray(crls));
		if (order == 0)
			assert_true(cJSON_InsertItemInArray(crls, 0,
			    cJSON_CreateString(oldcrl)));
		else
			assert_true(cJSON_AddItemToArray(crls,
			    cJSON_CreateString(oldcrl)));
		assert_int_equal(gwt_json_save(cfgpath, j), 0);
		cJSON_Delete(j);
		assert_int_equal(gwt_gw_hup(&fx.gw), 0);
		refusal_line("revoked", needle, sizeof(needle));
		before = count_in_file(fx.gw.log, needle);
		assert_int_equal(health_status_files(bad_path("two-crls", ".crt"),
		    bad_path("two-crls", ".key"), err, sizeof(err)), -1);
		if (!wait_log_count(needle, before))
			fail_msg("order %d: no '%s' line", order, needle);
		assert_int_equal(health_status("norfolk", "agency-police"), 200);
	}
	assert_int_equal(file_write_atomic(crlpath, crl_saved,
	    strlen(crl_saved), 0644), 0);
	assert_int_equal(file_write_atomic(cfgpath, cfg_saved,
	    strlen(cfg_saved), 0644), 0);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	assert_int_equal(unlink(oldcrl), 0);
	free(cfg_saved);
	free(crl_saved);
	X509_CRL_free(prev);
	X509_CRL_free(c1);
	X509_CRL_free(c2);
	X509_free(x);
	pki_ca_clear(&ca);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_agency_own_client),
		cmocka_unit_test(test_valid_agency_curl),
		cmocka_unit_test(test_no_client_certificate),
		cmocka_unit_test(test_tls12_client),
		cmocka_unit_test(test_other_root),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_not_yet_valid),
		cmocka_unit_test(test_server_auth_only),
		cmocka_unit_test(test_no_eku),
		cmocka_unit_test(test_no_uri),
		cmocka_unit_test(test_two_uris),
		cmocka_unit_test(test_malformed_uri),
		cmocka_unit_test(test_norfolk_identity_from_suffolk_ca),
		cmocka_unit_test(test_ca_certificate_as_client),
		cmocka_unit_test(test_area_ca_key_as_client),
		cmocka_unit_test(test_revoked_after_hup),
		cmocka_unit_test(test_no_session_resumption),
		cmocka_unit_test(test_hup_broken_config_keeps_old),
		cmocka_unit_test(test_hup_peer_change_refused),
		cmocka_unit_test(test_hup_restart_only_refused),
		cmocka_unit_test(test_hup_broken_policy_keeps_old),
		cmocka_unit_test(test_check_config),
		cmocka_unit_test(test_auth_fail_entries),
		cmocka_unit_test(test_metrics_by_reason),
		cmocka_unit_test(test_refused_across_reload_logged),
		cmocka_unit_test(test_expired_during_connection),
		cmocka_unit_test(test_weak_key_refused),
		cmocka_unit_test(test_two_crls_same_second),
	};

	return gwt_exit(cmocka_run_group_tests_name("tls", tests,
	    group_setup, group_teardown));
}
