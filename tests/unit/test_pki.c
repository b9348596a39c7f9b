/*
 * Unit tests for certs/pki: the hierarchy on disk, file modes, the chain
 * verifying through tls_trust, revocation, CRL numbers, renewal, refusals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs/pki.h"
#include "crypto/keyfile.h"
#include "crypto/tls_trust.h"
#include "util/buf.h"
#include "util/fileio.h"

static char dir[64];
static char root_dir[128], nf_dir[160], sf_dir[160];

static void
path(char *out, size_t outlen, const char *d, const char *name)
{
	assert_int_equal(file_join(out, outlen, d, name), 0);
}

static int
setup(void **state)
{
	char err[256];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/visor-pki-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(root_dir, sizeof(root_dir), "%s/pki", dir);
	snprintf(nf_dir, sizeof(nf_dir), "%s/pki/norfolk", dir);
	snprintf(sf_dir, sizeof(sf_dir), "%s/pki/suffolk", dir);
	if (pki_root_create(root_dir, 0, err, sizeof(err)) < 0 ||
	    pki_area_ca_create(root_dir, "norfolk", nf_dir, 0, err, sizeof(err)) < 0 ||
	    pki_area_ca_create(root_dir, "suffolk", sf_dir, 0, err, sizeof(err)) < 0) {
		print_error("setup: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static mode_t
mode_of(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	return st.st_mode & 07777;
}

static tls_trust_t *
trust(void)
{
	char root[192], ca1[192], ca2[192], crl1[192], crl2[192], err[256];
	const char *cas[2], *crls[2];
	tls_trust_t *t;

	path(root, sizeof(root), root_dir, "root.crt");
	path(ca1, sizeof(ca1), nf_dir, "ca.crt");
	path(ca2, sizeof(ca2), sf_dir, "ca.crt");
	path(crl1, sizeof(crl1), nf_dir, "crl.pem");
	path(crl2, sizeof(crl2), sf_dir, "crl.pem");
	cas[0] = ca1;
	cas[1] = ca2;
	crls[0] = crl1;
	crls[1] = crl2;
	t = tls_trust_load(root, cas, 2, crls, 2, err, sizeof(err));
	if (t == NULL)
		print_error("tls_trust_load: %s\n", err);
	assert_non_null(t);
	return t;
}

/* Verify the leaf of a chain file as role; the reason or "ok". */
static const char *
verify_file(const char *crt, tls_role_t role, identity_t *id)
{
	static char reason[64];
	char err[256];
	tls_trust_t *t = trust();
	X509 *x = pki_load_cert(crt, err, sizeof(err));

	assert_non_null(x);
	if (tls_trust_verify(t, x, NULL, role, id, reason, sizeof(reason)) == 0)
		snprintf(reason, sizeof(reason), "ok");
	X509_free(x);
	tls_trust_free(t);
	return reason;
}

static long
crl_number(const char *ca_dir)
{
	char p[192], err[256];
	X509_CRL *crl;
	long n;

	path(p, sizeof(p), ca_dir, "crl.pem");
	crl = pki_load_crl(p, err, sizeof(err));
	assert_non_null(crl);
	n = pki_crl_number(crl);
	X509_CRL_free(crl);
	return n;
}

static void
test_hierarchy_files(void **state)
{
	char p[192], err[256], uri[160];
	X509 *x;

	(void)state;
	path(p, sizeof(p), root_dir, "root.key");
	assert_int_equal(mode_of(p), 0600);
	path(p, sizeof(p), root_dir, "root.crt");
	assert_int_equal(mode_of(p), 0644);
	x = pki_load_cert(p, err, sizeof(err));
	assert_non_null(x);
	assert_int_equal(X509_check_ca(x), 1);
	assert_int_equal(pki_cert_uri(x, uri, sizeof(uri)), 0);
	assert_string_equal(uri, PKI_ROOT_URI);
	X509_free(x);
	path(p, sizeof(p), nf_dir, "ca.key");
	assert_int_equal(mode_of(p), 0600);
	path(p, sizeof(p), nf_dir, "ca.crt");
	x = pki_load_cert(p, err, sizeof(err));
	assert_non_null(x);
	assert_int_equal(pki_cert_uri(x, uri, sizeof(uri)), 0);
	assert_string_equal(uri, "urn:visor:norfolk:ca");
	assert_int_equal(X509_get_pathlen(x), 0);
	X509_free(x);
	assert_int_equal(crl_number(nf_dir), 1);
	/* The directory holding keys is private. */
	assert_int_equal(mode_of(nf_dir) & 077, 0);
}

static void
test_issue_and_verify(void **state)
{
	char prefix[192], crt[200], key[200], err[256], uri[160];
	pki_leaf_opts_t o = { .days = 30 };
	identity_t id;
	EVP_PKEY *k;
	X509 *x;
	char *pem = NULL, *first;
	size_t pemlen = 0;

	(void)state;
	path(prefix, sizeof(prefix), dir, "police");
	assert_int_equal(pki_issue(nf_dir, "urn:visor:norfolk:agency:police", prefix,
	    &o, err, sizeof(err)), 0);
	snprintf(crt, sizeof(crt), "%s.crt", prefix);
	snprintf(key, sizeof(key), "%s.key", prefix);
	assert_int_equal(mode_of(key), 0600);
	assert_int_equal(mode_of(crt), 0644);
	assert_string_equal(verify_file(crt, TLS_ROLE_CLIENT, &id), "ok");
	assert_string_equal(id.uri, "urn:visor:norfolk:agency:police");
	/* The key matches, the file holds the chain (leaf then CA). */
	x = pki_load_cert(crt, err, sizeof(err));
	k = keyfile_load_private(key, err, sizeof(err));
	assert_non_null(k);
	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(k), 256);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	assert_int_equal(ASN1_STRING_length(X509_get0_serialNumber(x)), 16);
	assert_int_equal(pki_cert_uri(x, uri, sizeof(uri)), 0);
	assert_int_equal(X509_cmp_time(X509_get0_notAfter(x), NULL), 1);
	assert_int_equal(file_read_all(crt, 65536, &pem, &pemlen), 0);
	first = strstr(pem, "BEGIN CERTIFICATE");
	assert_non_null(first);
	assert_non_null(strstr(first + 1, "BEGIN CERTIFICATE"));
	free(pem);
	X509_free(x);
	EVP_PKEY_free(k);
	/* No overwrite. */
	assert_int_equal(pki_issue(nf_dir, "urn:visor:norfolk:agency:police", prefix,
	    NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "refusing to overwrite"));
}

static void
test_gateway_names(void **state)
{
	static const char *const dns[] = { "localhost" };
	static const char *const ips[] = { "127.0.0.1" };
	pki_leaf_opts_t o = { .dns = dns, .n_dns = 1, .ips = ips, .n_ips = 1 };
	char prefix[192], crt[200], err[256];
	identity_t id;
	buf_t b = BUF_INIT;
	X509 *x;

	(void)state;
	path(prefix, sizeof(prefix), dir, "gw");
	assert_int_equal(pki_issue(sf_dir, "urn:visor:suffolk:gateway", prefix, &o,
	    err, sizeof(err)), 0);
	snprintf(crt, sizeof(crt), "%s.crt", prefix);
	assert_string_equal(verify_file(crt, TLS_ROLE_SERVER, &id), "ok");
	assert_string_equal(verify_file(crt, TLS_ROLE_CLIENT, &id), "ok");
	x = pki_load_cert(crt, err, sizeof(err));
	assert_non_null(x);
	assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_equal(pki_describe(x, &b), 0);
	assert_non_null(strstr(b.data, "identity: urn:visor:suffolk:gateway\n"));
	assert_non_null(strstr(b.data, "eku: serverAuth,clientAuth\n"));
	assert_non_null(strstr(b.data, "ip: 127.0.0.1\n"));
	assert_non_null(strstr(b.data, "dns: localhost\n"));
	assert_non_null(strstr(b.data, "sha256: "));
	assert_non_null(strstr(b.data, "ca: no\n"));
	buf_free(&b);
	X509_free(x);
}

/* certs show prints a certificate's names as text an operator reads: the
 * bytes of a hostile URI (control characters, a line break forging an
 * "identity:" line, terminal escapes) come out as \xNN escapes. */
static void
test_describe_escapes(void **state)
{
	pki_leaf_opts_t o = { .unchecked = 1,
	    .second_uri = "x\nidentity: urn:visor:norfolk:gateway\x1b[2J\x7f" };
	char err[256];
	buf_t b = BUF_INIT;
	pki_ca_t ca;
	EVP_PKEY *k;
	X509 *x;

	(void)state;
	assert_int_equal(pki_ca_load(nf_dir, "ca", &ca, err, sizeof(err)), 0);
	k = pki_new_key(err, sizeof(err));
	assert_non_null(k);
	x = pki_make_leaf(&ca, k, "urn:visor:norfolk:agency:police", &o, err,
	    sizeof(err));
	assert_non_null(x);
	assert_int_equal(pki_describe(x, &b), 0);
	assert_non_null(strstr(b.data, "identity: (none, or more than one URI)\n"));
	assert_non_null(strstr(b.data, "uri: urn:visor:norfolk:agency:police\n"));
	assert_non_null(strstr(b.data,
	    "uri: x\\x0aidentity: urn:visor:norfolk:gateway\\x1b[2J\\x7f\n"));
	assert_null(strstr(b.data, "\nidentity: urn:visor:norfolk:gateway"));
	assert_null(memchr(b.data, 0x1b, b.len));
	buf_free(&b);
	X509_free(x);

	/* The subject: its common name is the identity as given, here with
	 * U+009B, the one-byte CSI of C1, in UTF-8. */
	x = pki_make_leaf(&ca, k, "urn:visor:norfolk:agency:police\xc2\x9b" "31m",
	    &o, err, sizeof(err));
	assert_non_null(x);
	assert_int_equal(pki_describe(x, &b), 0);
	assert_null(strstr(b.data, "\xc2\x9b"));
	assert_non_null(strstr(b.data, "police\\C2\\9B31m"));
	buf_free(&b);
	X509_free(x);
	EVP_PKEY_free(k);
	pki_ca_clear(&ca);
}

static void
test_issue_refusals(void **state)
{
	static const char *const bad_ip[] = { "not-an-ip" };
	static const char *const bad_dns[] = { "a,URI:urn:visor:x:gateway" };
	pki_leaf_opts_t ip = { .ips = bad_ip, .n_ips = 1 };
	pki_leaf_opts_t dn = { .dns = bad_dns, .n_dns = 1 };
	pki_leaf_opts_t days = { .days = -1 };
	char prefix[192], err[256], p[200];

	(void)state;
	path(prefix, sizeof(prefix), dir, "refused");
	/* Suffolk identity from the Norfolk CA. */
	assert_int_equal(pki_issue(nf_dir, "urn:visor:suffolk:agency:police", prefix,
	    NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not of area"));
	assert_int_equal(pki_issue(nf_dir, "urn:visor:norfolk:ca", prefix, NULL, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "CA identity"));
	assert_int_equal(pki_issue(nf_dir, "urn:visor:norfolk:agency:plumber", prefix,
	    NULL, err, sizeof(err)), -1);
	assert_int_equal(pki_issue(nf_dir, "urn:visor:norfolk:gateway", prefix, &ip,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad IP"));
	assert_int_equal(pki_issue(nf_dir, "urn:visor:norfolk:gateway", prefix, &dn,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad DNS"));
	assert_int_equal(pki_issue(nf_dir, "urn:visor:norfolk:gateway", prefix, &days,
	    err, sizeof(err)), -1);
	assert_int_equal(pki_issue(dir, "urn:visor:norfolk:gateway", prefix, NULL,
	    err, sizeof(err)), -1);	/* no CA there */
	/* Nothing was left behind by the refusals. */
	snprintf(p, sizeof(p), "%s.key", prefix);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s.crt", prefix);
	assert_int_equal(access(p, F_OK), -1);
}

/* No certificate claims a validity its issuer does not have: it would
 * stop working with its CA while certs show, and its holder's expiry
 * alerts, said it had months left. */
/* Plants a key file at key as soon as pki_issue opens the CA certificate,
 * that is after pki_issue looked for an existing key and before it places
 * its own. */
typedef struct {
	int ifd;
	char key[200];
	int planted;
} planter_t;

static void *
plant_on_open(void *arg)
{
	planter_t *p = arg;
	char ev[4096] __attribute__((aligned(8)));

	if (read(p->ifd, ev, sizeof(ev)) > 0)
		p->planted = file_create_new(p->key, "planted\n", 8, 0600) == 0;
	return NULL;
}

/* A key file that appears between pki_issue's check and its placement of
 * the new key is not written over: the placement is exclusive.  Before,
 * the rename replaced it.  The planter may lose the race (pki_issue
 * placed its key first): then try again, until it wins at least once. */
static void
test_issue_exclusive(void **state)
{
	char prefix[192], crt[200], cacrt[192], err[256], *data;
	planter_t p;
	pthread_t t;
	size_t len;
	int i, rc, won = 0;

	(void)state;
	path(cacrt, sizeof(cacrt), nf_dir, "ca.crt");
	for (i = 0; i < 20 && won < 3; i++) {
		snprintf(prefix, sizeof(prefix), "%s/raced-%d", dir, i);
		snprintf(crt, sizeof(crt), "%s.crt", prefix);
		memset(&p, 0, sizeof(p));
		snprintf(p.key, sizeof(p.key), "%s.key", prefix);
		assert_true((p.ifd = inotify_init1(IN_CLOEXEC)) >= 0);
		assert_true(inotify_add_watch(p.ifd, cacrt, IN_OPEN) >= 0);
		assert_int_equal(pthread_create(&t, NULL, plant_on_open, &p), 0);
		rc = pki_issue(nf_dir, "urn:visor:norfolk:agency:prison", prefix,
		    NULL, err, sizeof(err));
		assert_int_equal(pthread_join(t, NULL), 0);
		close(p.ifd);
		if (!p.planted) {
			assert_int_equal(rc, 0);	/* pki_issue was first */
			continue;
		}
		won++;
		if (rc == 0)
			fail_msg("the key planted at %s was written over", p.key);
		assert_non_null(strstr(err, "refusing to overwrite"));
		assert_int_equal(file_read_all(p.key, 4096, &data, &len), 0);
		assert_string_equal(data, "planted\n");
		free(data);
		assert_int_equal(access(crt, F_OK), -1);
	}
	assert_true(won > 0);
}

static void
test_validity_within_issuer(void **state)
{
	char kent[160], prefix[192], crt[200], old[300], err[512], p[200];
	pki_leaf_opts_t fit = { .days = 20 };
	X509 *x;

	(void)state;
	path(kent, sizeof(kent), root_dir, "kent");
	/* An area CA beyond the root (3650 days by default). */
	assert_int_equal(pki_area_ca_create(root_dir, "kent", kent, 36500, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "would end after the issuing CA's own"));
	path(p, sizeof(p), kent, "ca.crt");
	assert_int_equal(access(p, F_OK), -1);
	/* A CA with 30 days left: a default (365-day) leaf is refused... */
	assert_int_equal(pki_area_ca_create(root_dir, "kent", kent, 30, err,
	    sizeof(err)), 0);
	path(prefix, sizeof(prefix), dir, "kent-police");
	assert_int_equal(pki_issue(kent, "urn:visor:kent:agency:police", prefix,
	    NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "would end after the issuing CA's own"));
	/* 30 days, or 29 and some hours if a second passed since. */
	assert_true(strstr(err, "--days 30 or less") != NULL ||
	    strstr(err, "--days 29 or less") != NULL);
	snprintf(p, sizeof(p), "%s.key", prefix);
	assert_int_equal(access(p, F_OK), -1);
	/* ...one that fits is issued... */
	if (pki_issue(kent, "urn:visor:kent:agency:police", prefix, &fit, err,
	    sizeof(err)) < 0)
		fail_msg("issue: %s", err);
	/* ...and renewed only within the CA, with nothing written before. */
	snprintf(crt, sizeof(crt), "%s.crt", prefix);
	assert_int_equal(pki_renew(kent, crt, 0, 0, old, sizeof(old), err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "would end after the issuing CA's own"));
	if (pki_renew(kent, crt, 1, 25, old, sizeof(old), err, sizeof(err)) < 0)
		fail_msg("renew: %s", err);
	assert_non_null(x = pki_load_cert(crt, err, sizeof(err)));
	assert_true(X509_cmp_time(X509_get0_notAfter(x), NULL) > 0);
	X509_free(x);
}

static void
test_ca_refusals(void **state)
{
	char err[256], p[192], key[192];

	(void)state;
	assert_int_equal(pki_root_create(root_dir, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "refusing to overwrite"));
	assert_int_equal(pki_area_ca_create(root_dir, "norfolk", nf_dir, 0, err,
	    sizeof(err)), -1);
	path(p, sizeof(p), dir, "bad-area");
	assert_int_equal(pki_area_ca_create(root_dir, "Bad_Area", p, 0, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "area"));
	assert_int_equal(access(p, F_OK), -1);
	/* A root key readable by others is refused. */
	path(key, sizeof(key), root_dir, "root.key");
	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(pki_area_ca_create(root_dir, "essex", p, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "0600"));
	assert_int_equal(chmod(key, 0600), 0);
}

static void
test_revoke_and_crl_number(void **state)
{
	char prefix[192], crt[200], other[192], ocrt[200], err[256];
	identity_t id;
	long n0;

	(void)state;
	path(prefix, sizeof(prefix), dir, "probation");
	path(other, sizeof(other), dir, "suffolk-police");
	assert_int_equal(pki_issue(nf_dir, "urn:visor:norfolk:agency:probation", prefix,
	    NULL, err, sizeof(err)), 0);
	assert_int_equal(pki_issue(sf_dir, "urn:visor:suffolk:agency:police", other,
	    NULL, err, sizeof(err)), 0);
	snprintf(crt, sizeof(crt), "%s.crt", prefix);
	snprintf(ocrt, sizeof(ocrt), "%s.crt", other);
	assert_string_equal(verify_file(crt, TLS_ROLE_CLIENT, &id), "ok");
	n0 = crl_number(nf_dir);
	assert_int_equal(pki_revoke(nf_dir, crt, PKI_REASON_KEY_COMPROMISE, err,
	    sizeof(err)), 0);
	assert_int_equal(crl_number(nf_dir), n0 + 1);
	assert_string_equal(verify_file(crt, TLS_ROLE_CLIENT, &id), "revoked");
	/* Twice is refused and changes nothing. */
	assert_int_equal(pki_revoke(nf_dir, crt, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "already revoked"));
	assert_int_equal(crl_number(nf_dir), n0 + 1);
	/* A certificate of another CA. */
	assert_int_equal(pki_revoke(nf_dir, ocrt, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not issued by this CA"));
	assert_string_equal(verify_file(ocrt, TLS_ROLE_CLIENT, &id), "ok");
	assert_int_equal(pki_revoke(nf_dir, crt, 99, err, sizeof(err)), -1);
	/* Refresh keeps the entries and bumps the number. */
	assert_int_equal(pki_crl_refresh(nf_dir, 7, err, sizeof(err)), 0);
	assert_int_equal(crl_number(nf_dir), n0 + 2);
	assert_string_equal(verify_file(crt, TLS_ROLE_CLIENT, &id), "revoked");
}

static void
test_renew(void **state)
{
	char prefix[192], crt[200], key[200], err[256], old[300];
	ASN1_INTEGER *serial0;
	EVP_PKEY *k0, *k1;
	X509 *x0, *x1;
	identity_t id;

	(void)state;
	path(prefix, sizeof(prefix), dir, "auditor");
	assert_int_equal(pki_issue(nf_dir, "urn:visor:norfolk:auditor:lay-adviser-1",
	    prefix, NULL, err, sizeof(err)), 0);
	snprintf(crt, sizeof(crt), "%s.crt", prefix);
	snprintf(key, sizeof(key), "%s.key", prefix);
	x0 = pki_load_cert(crt, err, sizeof(err));
	k0 = keyfile_load_private(key, err, sizeof(err));
	assert_non_null(x0);
	assert_non_null(k0);
	serial0 = ASN1_INTEGER_dup(X509_get0_serialNumber(x0));

	/* Same key. */
	assert_int_equal(pki_renew(nf_dir, crt, 0, 90, old, sizeof(old), err, sizeof(err)), 0);
	x1 = pki_load_cert(crt, err, sizeof(err));
	assert_non_null(x1);
	assert_int_not_equal(ASN1_INTEGER_cmp(serial0, X509_get0_serialNumber(x1)), 0);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x0),
	    X509_get_subject_name(x1)), 0);
	assert_int_equal(X509_check_private_key(x1, k0), 1);
	assert_string_equal(verify_file(crt, TLS_ROLE_CLIENT, &id), "ok");
	assert_string_equal(id.uri, "urn:visor:norfolk:auditor:lay-adviser-1");
	assert_int_equal(mode_of(key), 0600);
	/* The certificate renewed away is kept under its serial. */
	{
		X509 *xo = pki_load_cert(old, err, sizeof(err));

		assert_non_null(strstr(old, "auditor.old-"));
		assert_non_null(xo);
		assert_int_equal(X509_cmp(xo, x0), 0);
		X509_free(xo);
	}
	X509_free(x1);

	/* New key. */
	assert_int_equal(pki_renew(nf_dir, crt, 1, 0, old, sizeof(old), err, sizeof(err)), 0);
	x1 = pki_load_cert(crt, err, sizeof(err));
	k1 = keyfile_load_private(key, err, sizeof(err));
	assert_non_null(k1);
	assert_int_equal(X509_check_private_key(x1, k1), 1);
	assert_int_not_equal(EVP_PKEY_eq(k0, k1), 1);
	assert_int_equal(mode_of(key), 0600);
	assert_string_equal(verify_file(crt, TLS_ROLE_CLIENT, &id), "ok");
	assert_string_equal(id.uri, "urn:visor:norfolk:auditor:lay-adviser-1");
	/* Its key may be compromised: revoking the kept file revokes the old
	 * certificate, not the new one.  Before, the only file left was the
	 * renewed one, and revoking it revoked the new certificate. */
	assert_int_equal(pki_revoke(nf_dir, old, PKI_REASON_KEY_COMPROMISE, err,
	    sizeof(err)), 0);
	assert_string_equal(verify_file(old, TLS_ROLE_CLIENT, &id), "revoked");
	assert_string_equal(verify_file(crt, TLS_ROLE_CLIENT, &id), "ok");

	/* Refusals: wrong CA, not .crt, key mismatch. */
	assert_int_equal(pki_renew(sf_dir, crt, 0, 0, old, sizeof(old), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not issued by this CA"));
	assert_int_equal(pki_renew(nf_dir, key, 0, 0, old, sizeof(old), err, sizeof(err)), -1);
	assert_int_equal(keyfile_write_private(key, k0), 0);
	assert_int_equal(pki_renew(nf_dir, crt, 0, 0, old, sizeof(old), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not match"));
	/* A revoked certificate is not renewed, with its key or a new one:
	 * that would undo the revocation. */
	assert_int_equal(keyfile_write_private(key, k1), 0);
	assert_int_equal(pki_revoke(nf_dir, crt, PKI_REASON_KEY_COMPROMISE, err,
	    sizeof(err)), 0);
	assert_int_equal(pki_renew(nf_dir, crt, 0, 0, old, sizeof(old), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is revoked"));
	assert_int_equal(pki_renew(nf_dir, crt, 1, 0, old, sizeof(old), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is revoked"));

	X509_free(x0);
	X509_free(x1);
	EVP_PKEY_free(k0);
	EVP_PKEY_free(k1);
	ASN1_INTEGER_free(serial0);
}

static void
test_crl_in_memory(void **state)
{
	char err[256];
	pki_ca_t ca;
	X509_CRL *c1, *c2, *c3;
	ASN1_INTEGER *s;

	(void)state;
	assert_int_equal(pki_ca_load(nf_dir, "ca", &ca, err, sizeof(err)), 0);
	s = ASN1_INTEGER_new();
	assert_int_equal(ASN1_INTEGER_set(s, 4242), 1);
	c1 = pki_make_crl(&ca, NULL, NULL, 0, 0, err, sizeof(err));
	assert_non_null(c1);
	assert_int_equal(pki_crl_number(c1), 1);
	assert_int_equal(pki_crl_lists(c1, s), 0);
	c2 = pki_make_crl(&ca, c1, s, PKI_REASON_SUPERSEDED, 0, err, sizeof(err));
	assert_non_null(c2);
	assert_int_equal(pki_crl_number(c2), 2);
	assert_int_equal(pki_crl_lists(c2, s), 1);
	c3 = pki_make_crl(&ca, c2, s, 0, 0, err, sizeof(err));
	assert_null(c3);
	c3 = pki_make_crl(&ca, c2, NULL, 0, PKI_DAYS_MAX + 1, err, sizeof(err));
	assert_null(c3);
	/* The longest allowed reaches past 2049, which a UTCTime cannot
	 * hold: it failed before ("cannot build the CRL"). */
	c3 = pki_make_crl(&ca, c2, NULL, 0, PKI_DAYS_MAX, err, sizeof(err));
	assert_non_null(c3);
	{
		struct tm tm;

		assert_int_equal(ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(c3),
		    &tm), 1);
		assert_true(tm.tm_year + 1900 > 2100);
	}
	X509_CRL_free(c3);
	X509_CRL_free(c1);
	X509_CRL_free(c2);
	ASN1_INTEGER_free(s);
	pki_ca_clear(&ca);
	pki_ca_clear(NULL);
}

/* A CRL made now is usable on a host whose clock is a few minutes behind
 * the CA's, as a certificate is (its notBefore is five minutes back): its
 * lastUpdate is five minutes back too.  It was the second it was made, so
 * a gateway a second behind refused the CRL, and with it the revocation,
 * as "not yet valid" at its reload. */
static void
test_crl_clock_skew(void **state)
{
	char err[256];
	pki_ca_t ca;
	X509_CRL *crl;
	X509 *x;
	EVP_PKEY *k;
	ASN1_INTEGER *s;
	int days, secs;

	(void)state;
	assert_int_equal(pki_ca_load(nf_dir, "ca", &ca, err, sizeof(err)), 0);
	s = ASN1_INTEGER_new();
	assert_int_equal(ASN1_INTEGER_set(s, 77), 1);
	crl = pki_make_crl(&ca, NULL, s, PKI_REASON_KEY_COMPROMISE, 0, err,
	    sizeof(err));
	assert_non_null(crl);
	/* From lastUpdate to now: at least the certificates' 300 s. */
	assert_int_equal(ASN1_TIME_diff(&days, &secs,
	    X509_CRL_get0_lastUpdate(crl), NULL), 1);
	assert_true(days * 86400 + secs >= 300);
	assert_true(days * 86400 + secs < 400);
	/* As for a certificate issued now. */
	k = pki_new_key(err, sizeof(err));
	assert_non_null(k);
	x = pki_make_leaf(&ca, k, "urn:visor:norfolk:agency:police", NULL, err,
	    sizeof(err));
	assert_non_null(x);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
	    NULL), 1);
	assert_true(days * 86400 + secs >= 300);
	X509_free(x);
	EVP_PKEY_free(k);
	X509_CRL_free(crl);
	ASN1_INTEGER_free(s);
	pki_ca_clear(&ca);
}

static void
test_reason_names(void **state)
{
	(void)state;
	assert_string_equal(pki_reason_name(PKI_REASON_KEY_COMPROMISE), "key-compromise");
	assert_int_equal(pki_reason_from_name("superseded"), PKI_REASON_SUPERSEDED);
	assert_int_equal(pki_reason_from_name("cessation-of-operation"),
	    PKI_REASON_CESSATION);
	assert_int_equal(pki_reason_from_name("because"), -1);
	assert_null(pki_reason_name(2));
}

static void
test_load_errors(void **state)
{
	char err[256], p[192];
	pki_ca_t ca;

	(void)state;
	path(p, sizeof(p), dir, "nothing.crt");
	assert_null(pki_load_cert(p, err, sizeof(err)));
	assert_non_null(strstr(err, "nothing.crt"));
	assert_null(pki_load_crl(p, err, sizeof(err)));
	path(p, sizeof(p), nf_dir, "ca.key");
	assert_null(pki_load_cert(p, err, sizeof(err)));
	assert_non_null(strstr(err, "not a PEM certificate"));
	path(p, sizeof(p), nf_dir, "ca.crt");
	assert_null(pki_load_crl(p, err, sizeof(err)));
	/* Two CRLs where a CA keeps one: the second is not dropped unseen. */
	{
		char two[192], *data, *both;
		size_t len;

		path(p, sizeof(p), nf_dir, "crl.pem");
		assert_int_equal(file_read_all(p, 1u << 20, &data, &len), 0);
		both = malloc(2 * len);
		assert_non_null(both);
		memcpy(both, data, len);
		memcpy(both + len, data, len);
		path(two, sizeof(two), dir, "two-crls.pem");
		assert_int_equal(file_write_atomic(two, both, 2 * len, 0644), 0);
		free(both);
		free(data);
		assert_null(pki_load_crl(two, err, sizeof(err)));
		assert_non_null(strstr(err, "holds 2 CRLs"));
	}
	assert_int_equal(pki_ca_load(dir, "ca", &ca, err, sizeof(err)), -1);
	assert_null(ca.cert);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hierarchy_files),
		cmocka_unit_test(test_issue_and_verify),
		cmocka_unit_test(test_gateway_names),
		cmocka_unit_test(test_describe_escapes),
		cmocka_unit_test(test_issue_refusals),
		cmocka_unit_test(test_issue_exclusive),
		cmocka_unit_test(test_ca_refusals),
		cmocka_unit_test(test_validity_within_issuer),
		cmocka_unit_test(test_revoke_and_crl_number),
		cmocka_unit_test(test_renew),
		cmocka_unit_test(test_crl_in_memory),
		cmocka_unit_test(test_crl_clock_skew),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_load_errors),
	};

	return cmocka_run_group_tests_name("pki", tests, setup, teardown);
}
