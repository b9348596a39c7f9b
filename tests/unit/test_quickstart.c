/*
 * Unit tests for visorctl quickstart and visorctl certs: the commands run
 * into a mkdtemp folder, then the layout, modes and configuration are
 * checked and every issued certificate is verified with tls_trust.
 *
 * visorctl's objects are not in the test libraries, so the two command
 * files are compiled in here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "visorctl/cmd_certs.c"
#include "visorctl/cmd_quickstart.c"

#include "crypto/tls_trust.h"

static char tmp[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/visor-qs-XXXXXX");
	return mkdtemp(tmp) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

#define RUN(fn, ...) run(fn, (char *[]){ __VA_ARGS__, NULL })

static int
run(int (*fn)(int, char **), char **argv)
{
	int argc = 0;

	while (argv[argc] != NULL)
		argc++;
	return fn(argc, argv);
}

static mode_t
mode_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static mode_t
mode_of(const char *fmt, ...)
{
	char p[1024];
	struct stat st;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	if (stat(p, &st) < 0) {
		print_error("missing: %s\n", p);
		fail();
	}
	return st.st_mode & 07777;
}

static cJSON *
load_json(const char *p)
{
	char *text = NULL, err[256];
	size_t len = 0;
	cJSON *v;

	assert_int_equal(file_read_all(p, 1 << 20, &text, &len), 0);
	assert_true(len > 0 && text[len - 1] == '\n');
	v = json_parse_strict(text, len, 32, err, sizeof(err));
	free(text);
	assert_non_null(v);
	return v;
}

static const char *
str_at(const cJSON *o, const char *key)
{
	const char *s = json_get_str(o, key);

	assert_non_null(s);
	return s;
}

/* Verify dir/pki/<area>/<name>.crt against t; the identity must be uri. */
static void
verify_cert(const tls_trust_t *t, const char *dir, const char *area,
    const char *name, tls_role_t role, const char *uri)
{
	char p[1024], err[256], reason[64] = "";
	identity_t id;
	X509 *x;

	snprintf(p, sizeof(p), "%s/pki/%s/%s.crt", dir, area, name);
	x = pki_load_cert(p, err, sizeof(err));
	assert_non_null(x);
	if (tls_trust_verify(t, x, NULL, role, &id, reason, sizeof(reason)) != 0)
		print_error("%s: %s\n", p, reason);
	assert_string_equal(reason, "");
	assert_string_equal(id.uri, uri);
	X509_free(x);
	assert_int_equal(mode_of("%s/pki/%s/%s.key", dir, area, name), 0600);
	assert_int_equal(mode_of("%s/pki/%s/%s.crt", dir, area, name), 0644);
}

/* The trust set named by a gateway.json, as the gateway would load it. */
static tls_trust_t *
trust_from_config(const cJSON *cfg)
{
	const cJSON *tls = cJSON_GetObjectItemCaseSensitive(cfg, "tls");
	const cJSON *cas = cJSON_GetObjectItemCaseSensitive(tls, "cas");
	const cJSON *crls = cJSON_GetObjectItemCaseSensitive(tls, "crls");
	const char *ca_files[QS_AREAS_MAX], *crl_files[QS_AREAS_MAX];
	char err[256];
	size_t n = 0, m = 0;
	const cJSON *e;
	tls_trust_t *t;

	cJSON_ArrayForEach(e, cas) {
		assert_true(cJSON_IsString(e) && e->valuestring[0] == '/');
		ca_files[n++] = e->valuestring;
	}
	cJSON_ArrayForEach(e, crls) {
		assert_true(cJSON_IsString(e) && e->valuestring[0] == '/');
		crl_files[m++] = e->valuestring;
	}
	t = tls_trust_load(str_at(tls, "root"), ca_files, n, crl_files, m, err,
	    sizeof(err));
	if (t == NULL)
		print_error("%s\n", err);
	assert_non_null(t);
	return t;
}

static void
check_area(const char *dir, const char *const *areas, size_t n_areas, size_t k,
    unsigned base)
{
	const char *area = areas[k];
	char p[1024], want[256], uri[160], *text = NULL;
	const cJSON *tls, *peers, *cl, *limits, *e;
	tls_trust_t *t;
	cJSON *cfg;
	size_t i, len = 0;
	int64_t v;

	/* PKI files and modes. */
	assert_int_equal(mode_of("%s/pki/%s/ca.key", dir, area), 0600);
	assert_int_equal(mode_of("%s/pki/%s/ca.crt", dir, area), 0644);
	assert_int_equal(mode_of("%s/pki/%s/crl.pem", dir, area), 0644);
	assert_int_equal(mode_of("%s/pki/%s/audit.vkey", dir, area), 0644);
	assert_int_equal(mode_of("%s/%s/data", dir, area), 0700);
	assert_int_equal(mode_of("%s/%s/data/store.key", dir, area), 0600);
	assert_int_equal(mode_of("%s/%s/data/audit.key", dir, area), 0600);

	/* audit.vkey: one line "visor.<area>/audit+<8 hex>+<base64>". */
	snprintf(p, sizeof(p), "%s/pki/%s/audit.vkey", dir, area);
	assert_int_equal(file_read_all(p, 4096, &text, &len), 0);
	snprintf(want, sizeof(want), "visor.%s/audit+", area);
	assert_memory_equal(text, want, strlen(want));
	assert_true(text[len - 1] == '\n');
	assert_null(memchr(text, '\n', len - 1));
	free(text);

	/* policy.json is the default MAPPA policy. */
	snprintf(p, sizeof(p), "%s/%s/policy.json", dir, area);
	assert_int_equal(file_read_all(p, 1 << 20, &text, &len), 0);
	assert_string_equal(text, policy_mappa_default_json());
	free(text);

	/* gateway.json. */
	snprintf(p, sizeof(p), "%s/%s/gateway.json", dir, area);
	cfg = load_json(p);
	assert_string_equal(str_at(cfg, "area"), area);
	snprintf(want, sizeof(want), "127.0.0.1:%u", base + (unsigned)k);
	assert_string_equal(str_at(cfg, "listen"), want);
	snprintf(want, sizeof(want), "127.0.0.1:%u", base + (unsigned)k + 1000);
	assert_string_equal(str_at(cfg, "metrics_listen"), want);
	tls = cJSON_GetObjectItemCaseSensitive(cfg, "tls");
	snprintf(want, sizeof(want), "%s/pki/%s/gateway.crt", dir, area);
	assert_string_equal(str_at(tls, "cert"), want);
	snprintf(want, sizeof(want), "%s/pki/%s/gateway.key", dir, area);
	assert_string_equal(str_at(tls, "key"), want);
	snprintf(want, sizeof(want), "%s/pki/root.crt", dir);
	assert_string_equal(str_at(tls, "root"), want);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tls, "cas")),
	    (int)n_areas);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tls, "crls")),
	    (int)n_areas);
	snprintf(want, sizeof(want), "%s/%s/policy.json", dir, area);
	assert_string_equal(str_at(cfg, "policy"), want);
	snprintf(want, sizeof(want), "%s/%s/data", dir, area);
	assert_string_equal(str_at(cfg, "data_dir"), want);

	peers = cJSON_GetObjectItemCaseSensitive(cfg, "peers");
	assert_int_equal(cJSON_GetArraySize(peers), (int)n_areas - 1);
	cl = cJSON_GetObjectItemCaseSensitive(cfg, "clearances");
	snprintf(want, sizeof(want), "urn:visor:%s:agency:police", area);
	e = cJSON_GetObjectItemCaseSensitive(cl, want);
	assert_int_equal(cJSON_GetArraySize(e), 1);
	assert_string_equal(cJSON_GetArrayItem(e, 0)->valuestring, "ct");
	assert_int_equal(cJSON_GetArraySize(cl), (int)n_areas);
	for (i = 0; i < n_areas; i++) {
		const cJSON *peer;
		int found = 0;
		if (i == k)
			continue;
		snprintf(want, sizeof(want), "https://127.0.0.1:%u", base + (unsigned)i);
		cJSON_ArrayForEach(peer, peers)
			if (strcmp(str_at(peer, "area"), areas[i]) == 0) {
				assert_string_equal(str_at(peer, "url"), want);
				found = 1;
			}
		assert_true(found);
		snprintf(want, sizeof(want), "urn:visor:%s:gateway", areas[i]);
		e = cJSON_GetObjectItemCaseSensitive(cl, want);
		assert_int_equal(cJSON_GetArraySize(e), 2);
		assert_string_equal(cJSON_GetArrayItem(e, 0)->valuestring, "ct");
		assert_string_equal(cJSON_GetArrayItem(e, 1)->valuestring, "level3");
	}
	limits = cJSON_GetObjectItemCaseSensitive(cfg, "limits");
	assert_int_equal(json_get_int(limits, "max_body_bytes", 0, INT64_MAX, &v), 0);
	assert_int_equal(v, 262144);
	assert_int_equal(json_get_int(cJSON_GetObjectItemCaseSensitive(cfg, "audit"),
	    "checkpoint_interval_ms", 0, INT64_MAX, &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(json_get_int(cJSON_GetObjectItemCaseSensitive(cfg, "transfer"),
	    "outbox_max", 0, INT64_MAX, &v), 0);
	assert_int_equal(v, 100000);
	assert_int_equal(json_get_int(cfg, "threads", 1, 64, &v), 0);

	/* Every certificate of the area verifies with the gateway's trust set. */
	t = trust_from_config(cfg);
	snprintf(uri, sizeof(uri), "urn:visor:%s:gateway", area);
	verify_cert(t, dir, area, "gateway", TLS_ROLE_SERVER, uri);
	verify_cert(t, dir, area, "gateway", TLS_ROLE_CLIENT, uri);
	for (i = 0; identity_agency_types[i] != NULL; i++) {
		char name[64];
		snprintf(name, sizeof(name), "agency-%s", identity_agency_types[i]);
		snprintf(uri, sizeof(uri), "urn:visor:%s:agency:%s", area,
		    identity_agency_types[i]);
		verify_cert(t, dir, area, name, TLS_ROLE_CLIENT, uri);
	}
	snprintf(uri, sizeof(uri), "urn:visor:%s:auditor:lay-adviser-1", area);
	verify_cert(t, dir, area, "auditor", TLS_ROLE_CLIENT, uri);
	/* Every other area's gateway is accepted as a server too. */
	for (i = 0; i < n_areas; i++) {
		snprintf(uri, sizeof(uri), "urn:visor:%s:gateway", areas[i]);
		verify_cert(t, dir, areas[i], "gateway", TLS_ROLE_SERVER, uri);
	}
	tls_trust_free(t);
	cJSON_Delete(cfg);
}

static void
test_quickstart_layout(void **state)
{
	static const char *const areas[] = { "norfolk", "suffolk", "essex" };
	char dir[128];
	size_t k;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/q", tmp);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "--areas",
	    "norfolk,suffolk,essex", "--base-port", "18441"), 0);
	assert_int_equal(mode_of("%s/pki/root.key", dir), 0600);
	assert_int_equal(mode_of("%s/pki/root.crt", dir), 0644);
	for (k = 0; k < 3; k++)
		check_area(dir, areas, 3, k, 18441);
	/* Never over an existing setup. */
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir), 1);
	assert_int_equal(mode_of("%s/pki/root.key", dir), 0600);
}

static void
test_quickstart_defaults_and_empty_dir(void **state)
{
	static const char *const areas[] = { "norfolk", "suffolk" };
	char dir[128];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/empty", tmp);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir), 0);
	check_area(dir, areas, 2, 0, 8441);
	check_area(dir, areas, 2, 1, 8441);
}

/* A folder someone else can change is refused, before anything is written
 * in it: its owner (or anyone who may write it, or a non-sticky folder
 * above it) could swap gateway.json, policy.json or the PKI folder for
 * their own after quickstart, and the gateways would load them. */
static void
test_quickstart_unsafe_dir(void **state)
{
	char dir[128], open_dir[128];

	(void)state;
	/* An empty folder writable by others (a pre-made /tmp/q). */
	snprintf(dir, sizeof(dir), "%s/shared", tmp);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir), 1);
	snprintf(dir, sizeof(dir), "%s/shared/pki", tmp);
	assert_int_equal(access(dir, F_OK), -1);
	/* A new folder under a folder anyone may write, without the sticky
	 * bit: not even created. */
	snprintf(open_dir, sizeof(open_dir), "%s/open", tmp);
	assert_int_equal(mkdir(open_dir, 0755), 0);
	assert_int_equal(chmod(open_dir, 0777), 0);
	snprintf(dir, sizeof(dir), "%s/open/q", tmp);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir), 1);
	assert_int_equal(access(dir, F_OK), -1);
	/* An empty folder owned by another user (root only can make one). */
	if (geteuid() == 0) {
		snprintf(dir, sizeof(dir), "%s/theirs", tmp);
		assert_int_equal(mkdir(dir, 0755), 0);
		assert_int_equal(chown(dir, 65534, 65534), 0);
		assert_int_equal(RUN(cmd_quickstart, "quickstart", dir), 1);
		snprintf(dir, sizeof(dir), "%s/theirs/pki", tmp);
		assert_int_equal(access(dir, F_OK), -1);
	}
}

static void
test_quickstart_bad_usage(void **state)
{
	char dir[128];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/never", tmp);
	assert_int_equal(RUN(cmd_quickstart, "quickstart"), 2);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", "--help"), 0);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "--areas", "Norfolk"), 2);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "--areas", "a,,b"), 2);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "--areas",
	    "norfolk,norfolk"), 2);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "--base-port", "0"), 2);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "--base-port", "65000"), 2);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "--base-port", "84x"), 2);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "--areas"), 2);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "--frob"), 2);
	assert_int_equal(RUN(cmd_quickstart, "quickstart", dir, "other"), 2);
	/* Nothing was created by any refusal. */
	assert_int_equal(access(dir, F_OK), -1);
}

static void
test_certs_commands(void **state)
{
	char root[128], ca[128], leaf[128], crt[140], other[128], ocrt[140];
	tls_trust_t *t;
	const char *cas[1], *crls[1];
	char rootcrt[160], cacrt[160], crl[160], err[256];

	(void)state;
	snprintf(root, sizeof(root), "%s/c/root", tmp);
	snprintf(ca, sizeof(ca), "%s/c/kent", tmp);
	snprintf(leaf, sizeof(leaf), "%s/c/kent-police", tmp);
	snprintf(other, sizeof(other), "%s/c/kent-gw", tmp);
	snprintf(crt, sizeof(crt), "%s.crt", leaf);
	snprintf(ocrt, sizeof(ocrt), "%s.crt", other);

	assert_int_equal(RUN(cmd_certs, "certs"), 2);
	assert_int_equal(RUN(cmd_certs, "certs", "--help"), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "issue", "--help"), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "frob"), 2);
	assert_int_equal(RUN(cmd_certs, "certs", "new-root"), 2);
	assert_int_equal(RUN(cmd_certs, "certs", "new-root", root, "--days", "0"), 2);
	assert_int_equal(RUN(cmd_certs, "certs", "new-root", root, "--days", "3650"), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "new-root", root), 1);
	assert_int_equal(RUN(cmd_certs, "certs", "new-area-ca", "--root-dir", root,
	    "--area", "kent"), 2);
	assert_int_equal(RUN(cmd_certs, "certs", "new-area-ca", "--root-dir", root,
	    "--area", "Kent!", "--out", ca), 1);
	assert_int_equal(RUN(cmd_certs, "certs", "new-area-ca", "--root-dir", root,
	    "--area", "kent", "--out", ca), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "issue", "--ca-dir", ca, "--identity",
	    "urn:visor:kent:agency:police", "--out", leaf, "--days", "30"), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "issue", "--ca-dir", ca, "--identity",
	    "urn:visor:kent:gateway", "--out", other, "--dns", "gw.kent.example",
	    "--ip", "127.0.0.1"), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "issue", "--ca-dir", ca, "--identity",
	    "urn:visor:essex:gateway", "--out", other), 1);
	assert_int_equal(RUN(cmd_certs, "certs", "issue", "--ca-dir", ca, "--identity",
	    "urn:visor:kent:gateway", "--out", other, "--ip", "nope"), 1);
	assert_int_equal(RUN(cmd_certs, "certs", "issue", "--ca-dir", ca, "--identity",
	    "urn:visor:kent:gateway", "--out"), 2);
	assert_int_equal(RUN(cmd_certs, "certs", "issue", "--ca-dir", ca, "--ident",
	    "urn:visor:kent:gateway", "--out", other), 2);
	assert_int_equal(RUN(cmd_certs, "certs", "show", crt), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "show", ca), 1);
	assert_int_equal(RUN(cmd_certs, "certs", "show"), 2);
	assert_int_equal(RUN(cmd_certs, "certs", "renew", "--ca-dir", ca, crt), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "renew", "--ca-dir", ca, crt,
	    "--new-key", "--days", "10"), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "revoke", "--ca-dir", ca, crt,
	    "--reason", "because"), 2);
	assert_int_equal(RUN(cmd_certs, "certs", "revoke", "--ca-dir", ca, crt,
	    "--reason", "key-compromise"), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "revoke", "--ca-dir", ca, crt), 1);
	assert_int_equal(RUN(cmd_certs, "certs", "crl", "--ca-dir", ca, "--days", "7"), 0);
	assert_int_equal(RUN(cmd_certs, "certs", "crl"), 2);

	/* The result: the revoked agency refused, the gateway accepted. */
	snprintf(rootcrt, sizeof(rootcrt), "%s/root.crt", root);
	snprintf(cacrt, sizeof(cacrt), "%s/ca.crt", ca);
	snprintf(crl, sizeof(crl), "%s/crl.pem", ca);
	cas[0] = cacrt;
	crls[0] = crl;
	t = tls_trust_load(rootcrt, cas, 1, crls, 1, err, sizeof(err));
	assert_non_null(t);
	{
		char reason[64] = "";
		identity_t id;
		X509 *x = pki_load_cert(crt, err, sizeof(err));
		assert_int_equal(tls_trust_verify(t, x, NULL, TLS_ROLE_CLIENT, &id, reason,
		    sizeof(reason)), -1);
		assert_string_equal(reason, "revoked");
		X509_free(x);
		x = pki_load_cert(ocrt, err, sizeof(err));
		assert_int_equal(tls_trust_verify(t, x, NULL, TLS_ROLE_SERVER, &id, reason,
		    sizeof(reason)), 0);
		assert_string_equal(id.uri, "urn:visor:kent:gateway");
		X509_free(x);
	}
	tls_trust_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quickstart_layout),
		cmocka_unit_test(test_quickstart_defaults_and_empty_dir),
		cmocka_unit_test(test_quickstart_unsafe_dir),
		cmocka_unit_test(test_quickstart_bad_usage),
		cmocka_unit_test(test_certs_commands),
	};

	return cmocka_run_group_tests_name("quickstart", tests, setup, teardown);
}
