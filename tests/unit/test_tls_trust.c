/*
 * Unit tests for crypto/tls_trust: every refusal reason of SPEC section 3,
 * with certificates minted here (certs/pki) into a mkdtemp folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "certs/pki.h"
#include "crypto/tls_trust.h"
#include "util/fileio.h"

struct fixture {
	char dir[64];
	char root_dir[128], other_dir[128];
	char nf_dir[160], sf_dir[160], other_nf_dir[160];
	char root_crt[192], nf_ca[192], sf_ca[192], nf_crl[192], sf_crl[192];
	char other_ca[192], other_crl[192];
	pki_ca_t nf, sf, other_nf, root;
	EVP_PKEY *key;		/* one leaf key serves every test certificate */
	tls_trust_t *trust;	/* root, both CAs, both CRLs */
};

static struct fixture F;

/* OpenSSL's allocations, counted, and the one numbered fail_at (from 1)
 * refused: installed before OpenSSL allocates anything (main), so that a
 * test can fail each allocation of a call in turn and see what it leaves. */
static struct {
	long live;		/* blocks handed out and not yet freed */
	long calls;		/* allocations asked for since the count began */
	long fail_at;		/* 0: none refused */
} A;

static void *
counted_malloc(size_t n, const char *file, int line)
{
	void *p;

	(void)file;
	(void)line;
	if (A.fail_at != 0 && ++A.calls == A.fail_at)
		return NULL;
	if ((p = malloc(n)) != NULL)
		A.live++;
	return p;
}

static void *
counted_realloc(void *old, size_t n, const char *file, int line)
{
	void *p;

	if (old == NULL)
		return counted_malloc(n, file, line);
	if (n == 0) {
		free(old);
		A.live--;
		return NULL;
	}
	if (A.fail_at != 0 && ++A.calls == A.fail_at)
		return NULL;
	p = realloc(old, n);
	return p;
}

static void
counted_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p != NULL)
		A.live--;
	free(p);
}

static void
path(char *out, size_t outlen, const char *dir, const char *name)
{
	assert_int_equal(file_join(out, outlen, dir, name), 0);
}

static tls_trust_t *
load_trust(int with_sf_crl)
{
	const char *cas[] = { F.nf_ca, F.sf_ca };
	const char *crls[] = { F.nf_crl, F.sf_crl };
	char err[256];
	tls_trust_t *t;

	t = tls_trust_load(F.root_crt, cas, 2, crls, with_sf_crl ? 2 : 1, err,
	    sizeof(err));
	if (t == NULL)
		print_error("tls_trust_load: %s\n", err);
	return t;
}

static int
setup(void **state)
{
	char err[256];

	(void)state;
	snprintf(F.dir, sizeof(F.dir), "/tmp/visor-trust-XXXXXX");
	if (mkdtemp(F.dir) == NULL)
		return -1;
	path(F.root_dir, sizeof(F.root_dir), F.dir, "root");
	path(F.other_dir, sizeof(F.other_dir), F.dir, "other");
	path(F.nf_dir, sizeof(F.nf_dir), F.root_dir, "norfolk");
	path(F.sf_dir, sizeof(F.sf_dir), F.root_dir, "suffolk");
	path(F.other_nf_dir, sizeof(F.other_nf_dir), F.other_dir, "norfolk");
	path(F.root_crt, sizeof(F.root_crt), F.root_dir, "root.crt");
	path(F.nf_ca, sizeof(F.nf_ca), F.nf_dir, "ca.crt");
	path(F.sf_ca, sizeof(F.sf_ca), F.sf_dir, "ca.crt");
	path(F.nf_crl, sizeof(F.nf_crl), F.nf_dir, "crl.pem");
	path(F.sf_crl, sizeof(F.sf_crl), F.sf_dir, "crl.pem");
	path(F.other_ca, sizeof(F.other_ca), F.other_nf_dir, "ca.crt");
	path(F.other_crl, sizeof(F.other_crl), F.other_nf_dir, "crl.pem");
	if (pki_root_create(F.root_dir, 0, err, sizeof(err)) < 0 ||
	    pki_area_ca_create(F.root_dir, "norfolk", F.nf_dir, 0, err, sizeof(err)) < 0 ||
	    pki_area_ca_create(F.root_dir, "suffolk", F.sf_dir, 0, err, sizeof(err)) < 0 ||
	    pki_root_create(F.other_dir, 0, err, sizeof(err)) < 0 ||
	    pki_area_ca_create(F.other_dir, "norfolk", F.other_nf_dir, 0, err,
	        sizeof(err)) < 0 ||
	    pki_ca_load(F.root_dir, "root", &F.root, err, sizeof(err)) < 0 ||
	    pki_ca_load(F.nf_dir, "ca", &F.nf, err, sizeof(err)) < 0 ||
	    pki_ca_load(F.sf_dir, "ca", &F.sf, err, sizeof(err)) < 0 ||
	    pki_ca_load(F.other_nf_dir, "ca", &F.other_nf, err, sizeof(err)) < 0) {
		print_error("setup: %s\n", err);
		return -1;
	}
	if ((F.key = pki_new_key(err, sizeof(err))) == NULL)
		return -1;
	if ((F.trust = load_trust(1)) == NULL)
		return -1;
	return 0;
}

static int
rm_rf(const char *dir)
{
	char cmd[256];

	/* The folder is ours (mkdtemp) and its name has no shell characters. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static int
teardown(void **state)
{
	(void)state;
	tls_trust_free(F.trust);
	EVP_PKEY_free(F.key);
	pki_ca_clear(&F.nf);
	pki_ca_clear(&F.sf);
	pki_ca_clear(&F.other_nf);
	pki_ca_clear(&F.root);
	return rm_rf(F.dir) == 0 ? 0 : -1;
}

static X509 *
mint(const pki_ca_t *ca, const char *identity, const pki_leaf_opts_t *opts)
{
	char err[256];
	X509 *x = pki_make_leaf(ca, F.key, identity, opts, err, sizeof(err));

	if (x == NULL)
		print_error("pki_make_leaf: %s\n", err);
	assert_non_null(x);
	return x;
}

/* Verify x (with extra as the untrusted chain) and return the reason, or
 * "ok" with *id filled. */
static const char *
verify_as(const tls_trust_t *t, X509 *x, X509 *extra, tls_role_t role,
    identity_t *id)
{
	static char reason[64];
	STACK_OF(X509) *sk = NULL;
	int rc;

	if (extra != NULL) {
		sk = sk_X509_new_null();
		assert_non_null(sk);
		assert_true(sk_X509_push(sk, extra) > 0);
	}
	reason[0] = '\0';
	rc = tls_trust_verify(t, x, sk, role, id, reason, sizeof(reason));
	sk_X509_free(sk);
	if (rc == 0) {
		assert_string_equal(reason, "");
		snprintf(reason, sizeof(reason), "ok");
	} else {
		assert_int_equal(rc, -1);
		assert_true(reason[0] != '\0');
	}
	return reason;
}

/* Mint with opts, verify as role, free; the reason. */
static const char *
mint_verify(const pki_ca_t *ca, const char *identity, const pki_leaf_opts_t *opts,
    tls_role_t role)
{
	identity_t id;
	X509 *x = mint(ca, identity, opts);
	const char *r = verify_as(F.trust, x, NULL, role, &id);

	X509_free(x);
	return r;
}

static void
test_valid_agency(void **state)
{
	identity_t id;
	X509 *x;

	(void)state;
	x = mint(&F.nf, "urn:visor:norfolk:agency:police", NULL);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id), "ok");
	assert_int_equal(id.kind, IDENTITY_AGENCY);
	assert_string_equal(id.area, "norfolk");
	assert_string_equal(id.type, "police");
	assert_string_equal(id.uri, "urn:visor:norfolk:agency:police");
	/* An agency certificate cannot act as a server. */
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_SERVER, &id), "bad-eku");
	X509_free(x);

	x = mint(&F.sf, "urn:visor:suffolk:agency:housing:st-martins", NULL);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id), "ok");
	assert_string_equal(id.type, "housing");
	assert_string_equal(id.unit, "st-martins");
	X509_free(x);
}

static void
test_valid_gateway_both_roles(void **state)
{
	identity_t id;
	X509 *x;

	(void)state;
	x = mint(&F.sf, "urn:visor:suffolk:gateway", NULL);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_SERVER, &id), "ok");
	assert_int_equal(id.kind, IDENTITY_GATEWAY);
	assert_string_equal(id.area, "suffolk");
	memset(&id, 0, sizeof(id));
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id), "ok");
	assert_string_equal(id.uri, "urn:visor:suffolk:gateway");
	X509_free(x);
}

static void
test_valid_auditor(void **state)
{
	identity_t id;
	X509 *x;

	(void)state;
	x = mint(&F.nf, "urn:visor:norfolk:auditor:lay-adviser-1", NULL);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id), "ok");
	assert_int_equal(id.kind, IDENTITY_AUDITOR);
	assert_string_equal(id.unit, "lay-adviser-1");
	X509_free(x);
}

static void
test_other_root_unknown_ca(void **state)
{
	identity_t id;
	X509 *x;

	(void)state;
	x = mint(&F.other_nf, "urn:visor:norfolk:agency:police", NULL);
	/* With and without the foreign CA offered as part of the chain. */
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id),
	    "unknown-ca");
	assert_string_equal(verify_as(F.trust, x, F.other_nf.cert, TLS_ROLE_CLIENT, &id),
	    "unknown-ca");
	X509_free(x);
}

static void
test_leaf_signed_by_root_refused(void **state)
{
	pki_leaf_opts_t o = { .unchecked = 1 };
	identity_t id;
	X509 *x;

	(void)state;
	/* Not under an area CA: the chain is two long. */
	x = mint(&F.root, "urn:visor:norfolk:agency:police", &o);
	assert_string_not_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id), "ok");
	X509_free(x);
}

static void
test_validity(void **state)
{
	pki_leaf_opts_t expired = { .expired = 1 }, early = { .not_yet_valid = 1 };

	(void)state;
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:agency:police",
	    &expired, TLS_ROLE_CLIENT), "expired");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:agency:police",
	    &early, TLS_ROLE_CLIENT), "not-yet-valid");
}

static void
test_eku(void **state)
{
	pki_leaf_opts_t server_only = { .eku = PKI_EKU_SERVER };
	pki_leaf_opts_t none = { .eku = PKI_EKU_OMIT };
	pki_leaf_opts_t client_only = { .eku = PKI_EKU_CLIENT };
	pki_leaf_opts_t no_ds = { .key_usage = "critical,keyEncipherment" };

	(void)state;
	/* Its key signs the handshake: keyUsage must allow that, for a
	 * server too (libssl's server purpose alone takes keyEncipherment). */
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:gateway",
	    &no_ds, TLS_ROLE_SERVER), "bad-eku");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:gateway",
	    &no_ds, TLS_ROLE_CLIENT), "bad-eku");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:agency:police",
	    &server_only, TLS_ROLE_CLIENT), "bad-eku");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:gateway",
	    &server_only, TLS_ROLE_SERVER), "ok");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:agency:police",
	    &none, TLS_ROLE_CLIENT), "bad-eku");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:gateway",
	    &client_only, TLS_ROLE_SERVER), "bad-eku");
}

static void
test_uris(void **state)
{
	pki_leaf_opts_t none = { .no_uri = 1 };
	pki_leaf_opts_t two = { .second_uri = "urn:visor:norfolk:agency:probation" };
	pki_leaf_opts_t raw = { .unchecked = 1 };
	static const char *const dns[] = { "localhost" };
	pki_leaf_opts_t dns_only = { .no_uri = 1, .dns = dns, .n_dns = 1 };

	(void)state;
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:agency:police",
	    &none, TLS_ROLE_CLIENT), "no-uri");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:agency:police",
	    &dns_only, TLS_ROLE_CLIENT), "no-uri");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:agency:police",
	    &two, TLS_ROLE_CLIENT), "multiple-uris");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:Norfolk:agency:police",
	    &raw, TLS_ROLE_CLIENT), "malformed-uri");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:agency:plumber",
	    &raw, TLS_ROLE_CLIENT), "malformed-uri");
	assert_string_equal(mint_verify(&F.nf, "https://norfolk.example/gateway",
	    &raw, TLS_ROLE_CLIENT), "malformed-uri");
}

static void
test_extra_names_allowed(void **state)
{
	static const char *const dns[] = { "localhost" };
	static const char *const ips[] = { "127.0.0.1", "::1" };
	pki_leaf_opts_t o = { .dns = dns, .n_dns = 1, .ips = ips, .n_ips = 2 };

	(void)state;
	/* DNS and IP names beside the one URI (for curl's host check). */
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:gateway", &o,
	    TLS_ROLE_SERVER), "ok");
}

static void
test_area_mismatch(void **state)
{
	pki_leaf_opts_t raw = { .unchecked = 1 };

	(void)state;
	/* A Suffolk CA cannot mint a Norfolk identity. */
	assert_string_equal(mint_verify(&F.sf, "urn:visor:norfolk:agency:police",
	    &raw, TLS_ROLE_CLIENT), "area-mismatch");
	assert_string_equal(mint_verify(&F.sf, "urn:visor:norfolk:gateway",
	    &raw, TLS_ROLE_SERVER), "area-mismatch");
}

static void
test_ca_as_leaf(void **state)
{
	pki_leaf_opts_t ca_flag = { .ca = 1 };
	pki_leaf_opts_t raw = { .unchecked = 1 };
	identity_t id;

	(void)state;
	assert_string_equal(verify_as(F.trust, F.nf.cert, NULL, TLS_ROLE_CLIENT, &id),
	    "not-an-end-entity");
	assert_string_equal(verify_as(F.trust, F.root.cert, NULL, TLS_ROLE_SERVER, &id),
	    "not-an-end-entity");
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:agency:police",
	    &ca_flag, TLS_ROLE_CLIENT), "not-an-end-entity");
	/* A non-CA certificate carrying a CA identity. */
	assert_string_equal(mint_verify(&F.nf, "urn:visor:norfolk:ca", &raw,
	    TLS_ROLE_CLIENT), "not-an-end-entity");
}

static void
test_crl_missing(void **state)
{
	tls_trust_t *t;
	identity_t id;
	X509 *x;

	(void)state;
	t = load_trust(0);	/* the Suffolk CRL left out */
	assert_non_null(t);
	x = mint(&F.sf, "urn:visor:suffolk:agency:police", NULL);
	assert_string_equal(verify_as(t, x, NULL, TLS_ROLE_CLIENT, &id), "crl-missing");
	X509_free(x);
	x = mint(&F.nf, "urn:visor:norfolk:agency:police", NULL);
	assert_string_equal(verify_as(t, x, NULL, TLS_ROLE_CLIENT, &id), "ok");
	X509_free(x);
	tls_trust_free(t);
}

static void
test_revoked(void **state)
{
	char crt[192], err[256];
	tls_trust_t *t;
	identity_t id;
	X509 *x, *other;

	(void)state;
	path(crt, sizeof(crt), F.dir, "revoke-me.crt");
	x = mint(&F.nf, "urn:visor:norfolk:agency:dwp", NULL);
	other = mint(&F.nf, "urn:visor:norfolk:agency:dwp", NULL);
	assert_int_equal(pki_write_cert(crt, x, F.nf.cert, err, sizeof(err)), 0);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id), "ok");
	assert_int_equal(pki_revoke(F.nf_dir, crt, PKI_REASON_KEY_COMPROMISE, err,
	    sizeof(err)), 0);
	/* The loaded set is immutable: the old one still accepts. */
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id), "ok");
	t = load_trust(1);
	assert_non_null(t);
	assert_string_equal(verify_as(t, x, NULL, TLS_ROLE_CLIENT, &id), "revoked");
	/* Same identity, other serial: unaffected. */
	assert_string_equal(verify_as(t, other, NULL, TLS_ROLE_CLIENT, &id), "ok");
	tls_trust_free(t);
	X509_free(x);
	X509_free(other);
}

static void
test_bad_signature(void **state)
{
	identity_t id;
	X509 *x;
	EVP_PKEY *wrong;
	char err[128];

	(void)state;
	/* Issuer name and key ids of the Norfolk CA, signed with another key. */
	wrong = pki_new_key(err, sizeof(err));
	assert_non_null(wrong);
	x = mint(&F.nf, "urn:visor:norfolk:agency:police", NULL);
	assert_true(X509_sign(x, wrong, EVP_sha256()) > 0);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id),
	    "bad-signature");
	X509_free(x);
	EVP_PKEY_free(wrong);
}

static void
test_check_identity_direct(void **state)
{
	char reason[64];
	identity_t id;
	X509 *x;

	(void)state;
	x = mint(&F.nf, "urn:visor:norfolk:agency:probation", NULL);
	assert_int_equal(tls_trust_check_identity(x, F.nf.cert, TLS_ROLE_CLIENT, &id,
	    reason, sizeof(reason)), 0);
	assert_string_equal(id.type, "probation");
	assert_int_equal(tls_trust_check_identity(x, F.sf.cert, TLS_ROLE_CLIENT, &id,
	    reason, sizeof(reason)), -1);
	assert_string_equal(reason, "area-mismatch");
	/* The issuer must itself carry an area CA identity. */
	assert_int_equal(tls_trust_check_identity(x, F.root.cert, TLS_ROLE_CLIENT, &id,
	    reason, sizeof(reason)), -1);
	assert_string_equal(reason, "unknown-ca");
	assert_int_equal(tls_trust_check_identity(x, NULL, TLS_ROLE_CLIENT, &id,
	    reason, sizeof(reason)), -1);
	assert_string_equal(reason, "verify-failed");
	assert_int_equal(tls_trust_verify(F.trust, NULL, NULL, TLS_ROLE_CLIENT, &id,
	    reason, sizeof(reason)), -1);
	X509_free(x);
}

/* An area CA rotation: the old and the new norfolk CA share a name; each
 * CRL loads against the CA that signed it, and leaves of both verify (and
 * a revocation on either CRL applies to that CA's leaves only). */
static void
test_ca_rotation_overlap(void **state)
{
	char err[256], nf2_dir[192], nf2_ca[224], nf2_crl[224];
	const char *cas[] = { F.nf_ca, F.sf_ca, NULL };
	const char *crls[] = { F.nf_crl, F.sf_crl, NULL };
	pki_ca_t nf2;
	X509_CRL *crl;
	identity_t id;
	tls_trust_t *t;
	X509 *old_leaf, *new_leaf;

	(void)state;
	memset(&nf2, 0, sizeof(nf2));
	path(nf2_dir, sizeof(nf2_dir), F.root_dir, "norfolk-2");
	path(nf2_ca, sizeof(nf2_ca), nf2_dir, "ca.crt");
	path(nf2_crl, sizeof(nf2_crl), nf2_dir, "crl.pem");
	assert_int_equal(pki_area_ca_create(F.root_dir, "norfolk", nf2_dir, 0,
	    err, sizeof(err)), 0);
	assert_int_equal(pki_ca_load(nf2_dir, "ca", &nf2, err, sizeof(err)), 0);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(nf2.cert),
	    X509_get_subject_name(F.nf.cert)), 0);
	cas[2] = nf2_ca;
	crls[2] = nf2_crl;
	t = tls_trust_load(F.root_crt, cas, 3, crls, 3, err, sizeof(err));
	if (t == NULL)
		fail_msg("overlap set refused: %s", err);
	old_leaf = mint(&F.nf, "urn:visor:norfolk:agency:police", NULL);
	new_leaf = mint(&nf2, "urn:visor:norfolk:agency:police", NULL);
	assert_string_equal(verify_as(t, old_leaf, NULL, TLS_ROLE_CLIENT, &id), "ok");
	assert_string_equal(verify_as(t, new_leaf, NULL, TLS_ROLE_CLIENT, &id), "ok");
	tls_trust_free(t);
	/* Revoke the new leaf on the new CA's CRL: only it is refused. */
	crl = pki_make_crl(&nf2, NULL, X509_get0_serialNumber(new_leaf),
	    PKI_REASON_SUPERSEDED, 0, err, sizeof(err));
	assert_non_null(crl);
	assert_int_equal(pki_write_crl(nf2_crl, crl, err, sizeof(err)), 0);
	X509_CRL_free(crl);
	t = tls_trust_load(F.root_crt, cas, 3, crls, 3, err, sizeof(err));
	assert_non_null(t);
	assert_string_equal(verify_as(t, new_leaf, NULL, TLS_ROLE_CLIENT, &id),
	    "revoked");
	assert_string_equal(verify_as(t, old_leaf, NULL, TLS_ROLE_CLIENT, &id), "ok");
	tls_trust_free(t);
	/* A CRL signed by neither same-named CA is still refused. */
	crl = pki_make_crl(&F.other_nf, NULL, NULL, 0, 0, err, sizeof(err));
	assert_non_null(crl);
	assert_int_equal(pki_write_crl(nf2_crl, crl, err, sizeof(err)), 0);
	X509_CRL_free(crl);
	assert_null(tls_trust_load(F.root_crt, cas, 3, crls, 3, err, sizeof(err)));
	assert_non_null(strstr(err, "CRL signature does not verify"));
	X509_free(old_leaf);
	X509_free(new_leaf);
	pki_ca_clear(&nf2);
}

static void
test_store_and_intermediates(void **state)
{
	STACK_OF(X509) *cas;

	(void)state;
	assert_non_null(tls_trust_store(F.trust));
	cas = tls_trust_intermediates(F.trust);
	assert_non_null(cas);
	assert_int_equal(sk_X509_num(cas), 2);
	assert_int_equal(X509_cmp(sk_X509_value(cas, 0), F.nf.cert), 0);
}

static void
test_load_refusals(void **state)
{
	char err[256], garbage[192], missing[192];
	const char *cas[] = { F.nf_ca };
	const char *other_cas[] = { F.other_ca };
	const char *crls_other[] = { F.other_crl };
	const char *bad[] = { garbage };
	const char *gone[] = { missing };
	const char *root_as_ca[] = { F.root_crt };
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nnot base64\n"
	    "-----END CERTIFICATE-----\n";

	(void)state;
	path(garbage, sizeof(garbage), F.dir, "garbage.pem");
	path(missing, sizeof(missing), F.dir, "missing.pem");
	assert_int_equal(file_write_atomic(garbage, junk, sizeof(junk) - 1, 0644), 0);

	assert_null(tls_trust_load(missing, cas, 1, NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "missing.pem"));
	assert_null(tls_trust_load(garbage, cas, 1, NULL, 0, err, sizeof(err)));
	/* An area CA is not a root. */
	assert_null(tls_trust_load(F.nf_ca, cas, 1, NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "root"));
	/* A CA of another hierarchy. */
	assert_null(tls_trust_load(F.root_crt, other_cas, 1, NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "not issued by the root"));
	/* The root is not an area CA. */
	assert_null(tls_trust_load(F.root_crt, root_as_ca, 1, NULL, 0, err, sizeof(err)));
	assert_null(tls_trust_load(F.root_crt, bad, 1, NULL, 0, err, sizeof(err)));
	assert_null(tls_trust_load(F.root_crt, gone, 1, NULL, 0, err, sizeof(err)));
	/* A CRL none of the CAs signed. */
	assert_null(tls_trust_load(F.root_crt, cas, 1, crls_other, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "CRL"));
	assert_null(tls_trust_load(F.root_crt, cas, 1, bad, 1, err, sizeof(err)));
	/* A certificate where a CRL belongs. */
	assert_null(tls_trust_load(F.root_crt, cas, 1, cas, 1, err, sizeof(err)));
	tls_trust_free(NULL);
}

/* Every allocation of a load refused in turn: each failure is reported and
 * leaves nothing allocated behind (a CA certificate's reference was kept
 * when adding it to the list of CAs failed). */
static void
test_load_allocation_failures(void **state)
{
	const char *cas[] = { F.nf_ca, F.sf_ca };
	const char *crls[] = { F.nf_crl, F.sf_crl };
	char err[256];
	tls_trust_t *t;
	long n, before;

	(void)state;
	/* Once through first: OpenSSL's lazily built tables stay. */
	t = tls_trust_load(F.root_crt, cas, 2, crls, 2, err, sizeof(err));
	assert_non_null(t);
	tls_trust_free(t);
	for (n = 1; n < 100000; n++) {
		/* The thread's error queue keeps the text of an error for the
		 * next one: its state is dropped before each count. */
		OPENSSL_thread_stop();
		before = A.live;
		A.calls = 0;
		A.fail_at = n;
		t = tls_trust_load(F.root_crt, cas, 2, crls, 2, err, sizeof(err));
		A.fail_at = 0;
		OPENSSL_thread_stop();
		if (t != NULL) {
			tls_trust_free(t);
			assert_int_equal(A.live, before);
			/* No allocation left to refuse: done. */
			if (A.calls < n)
				break;
			continue;
		}
		if (A.live != before)
			fail_msg("allocation %ld refused: %ld blocks left (%s)", n,
			    A.live - before, err);
	}
	assert_true(n > 1 && n < 100000);
}

/* The PEM text of each CRL, one after another, into the file at p. */
static void
write_crls(const char *p, X509_CRL *const *crls, size_t n, const char *tail)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;
	long len;
	size_t i;

	assert_non_null(mem);
	for (i = 0; i < n; i++)
		assert_int_equal(PEM_write_bio_X509_CRL(mem, crls[i]), 1);
	if (tail != NULL)
		assert_true(BIO_puts(mem, tail) > 0);
	len = BIO_get_mem_data(mem, &data);
	assert_true(len > 0);
	assert_int_equal(file_write_atomic(p, data, (size_t)len, 0644), 0);
	BIO_free(mem);
}

/* A CRL file holding several CRLs: every one counts (only the first was
 * read: the second area's clients were refused as crl-missing, and a CA's
 * new CRL after its old one was never consulted).  A second CRL that
 * would be refused alone refuses the file. */
static void
test_crl_file_several(void **state)
{
	const char *cas[] = { F.nf_ca, F.sf_ca };
	const char *crls[1];
	char bundle[192], err[256];
	X509_CRL *nf_empty, *sf_empty, *sf_rev, *nf_rev, *other, *two[2];
	STACK_OF(X509_CRL) *sk;
	tls_trust_t *t;
	identity_t id;
	X509 *sf_leaf, *nf_leaf;
	static const char damaged[] = "-----BEGIN X509 CRL-----\nnot base64\n"
	    "-----END X509 CRL-----\n";
	static const char truncated_der[] = "-----BEGIN X509 CRL-----\nMAA=\n"
	    "-----END X509 CRL-----\n";
	static const char not_crl[] = "-----BEGIN CERTIFICATE-----\nMAA=\n"
	    "-----END CERTIFICATE-----\n";

	(void)state;
	path(bundle, sizeof(bundle), F.dir, "bundle-crl.pem");
	crls[0] = bundle;
	sf_leaf = mint(&F.sf, "urn:visor:suffolk:agency:police", NULL);
	nf_leaf = mint(&F.nf, "urn:visor:norfolk:agency:police", NULL);
	nf_empty = pki_make_crl(&F.nf, NULL, NULL, 0, 0, err, sizeof(err));
	sf_empty = pki_make_crl(&F.sf, NULL, NULL, 0, 0, err, sizeof(err));
	sf_rev = pki_make_crl(&F.sf, NULL, X509_get0_serialNumber(sf_leaf),
	    PKI_REASON_KEY_COMPROMISE, 0, err, sizeof(err));
	nf_rev = pki_make_crl(&F.nf, nf_empty, X509_get0_serialNumber(nf_leaf),
	    PKI_REASON_KEY_COMPROMISE, 0, err, sizeof(err));
	other = pki_make_crl(&F.other_nf, NULL, NULL, 0, 0, err, sizeof(err));
	assert_true(nf_empty && sf_empty && sf_rev && nf_rev && other);

	/* Norfolk's CRL, then Suffolk's: a Suffolk client has its CRL. */
	two[0] = nf_empty;
	two[1] = sf_empty;
	write_crls(bundle, two, 2, NULL);
	t = tls_trust_load(F.root_crt, cas, 2, crls, 1, err, sizeof(err));
	if (t == NULL)
		fail_msg("tls_trust_load: %s", err);
	assert_string_equal(verify_as(t, sf_leaf, NULL, TLS_ROLE_CLIENT, &id), "ok");
	assert_string_equal(verify_as(t, nf_leaf, NULL, TLS_ROLE_CLIENT, &id), "ok");
	tls_trust_free(t);

	/* The second CRL revokes the peer. */
	two[1] = sf_rev;
	write_crls(bundle, two, 2, NULL);
	t = tls_trust_load(F.root_crt, cas, 2, crls, 1, err, sizeof(err));
	assert_non_null(t);
	assert_string_equal(verify_as(t, sf_leaf, NULL, TLS_ROLE_CLIENT, &id),
	    "revoked");
	assert_string_equal(verify_as(t, nf_leaf, NULL, TLS_ROLE_CLIENT, &id), "ok");
	tls_trust_free(t);

	/* A CA's old CRL, then its new one revoking the peer. */
	two[1] = nf_rev;
	write_crls(bundle, two, 2, NULL);
	t = tls_trust_load(F.root_crt, cas, 2, crls, 1, err, sizeof(err));
	assert_non_null(t);
	assert_string_equal(verify_as(t, nf_leaf, NULL, TLS_ROLE_CLIENT, &id),
	    "revoked");
	tls_trust_free(t);

	/* A second CRL from a CA not in the set (another hierarchy's
	 * Norfolk CA): refused, as that CRL alone is, saying which. */
	two[1] = other;
	write_crls(bundle, two, 2, NULL);
	assert_null(tls_trust_load(F.root_crt, cas, 2, crls, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "(CRL 2): CRL signature does not verify"));

	/* Garbage after a good CRL: a damaged block, a block whose DER is
	 * not a CRL, a block of another type. */
	write_crls(bundle, two, 1, damaged);
	assert_null(tls_trust_load(F.root_crt, cas, 2, crls, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "PEM block 2 is damaged"));
	write_crls(bundle, two, 1, truncated_der);
	assert_null(tls_trust_load(F.root_crt, cas, 2, crls, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "CRL 2 is damaged"));
	write_crls(bundle, two, 1, not_crl);
	assert_null(tls_trust_load(F.root_crt, cas, 2, crls, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "not a PEM CRL (PEM block 2)"));

	/* The reader itself: every CRL, in order; text outside blocks is
	 * skipped; no CRL at all is refused. */
	write_crls(bundle, two, 2, "trailing words\n");
	sk = tls_trust_read_crls(bundle, TLS_TRUST_CRL_FILE_MAX, err, sizeof(err));
	assert_non_null(sk);
	assert_int_equal(sk_X509_CRL_num(sk), 2);
	assert_int_equal(X509_CRL_cmp(sk_X509_CRL_value(sk, 1), other), 0);
	sk_X509_CRL_pop_free(sk, X509_CRL_free);
	write_crls(bundle, two, 0, "no PEM here\n");
	assert_null(tls_trust_read_crls(bundle, TLS_TRUST_CRL_FILE_MAX, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "not a PEM CRL"));
	write_crls(bundle, two, 2, NULL);
	assert_null(tls_trust_read_crls(bundle, 100, err, sizeof(err)));

	X509_CRL_free(nf_empty);
	X509_CRL_free(sf_empty);
	X509_CRL_free(sf_rev);
	X509_CRL_free(nf_rev);
	X509_CRL_free(other);
	X509_free(sf_leaf);
	X509_free(nf_leaf);
}

static void
test_crl_forged(void **state)
{
	char err[256], forged[192];
	const char *cas[] = { F.nf_ca };
	const char *crls[] = { forged };
	pki_ca_t fake;
	X509_CRL *crl;

	(void)state;
	/* A CRL naming the Norfolk CA but signed with another key. */
	fake.cert = F.nf.cert;
	fake.key = F.other_nf.key;
	crl = pki_make_crl(&fake, NULL, NULL, 0, 0, err, sizeof(err));
	assert_non_null(crl);
	path(forged, sizeof(forged), F.dir, "forged-crl.pem");
	assert_int_equal(pki_write_crl(forged, crl, err, sizeof(err)), 0);
	X509_CRL_free(crl);
	assert_null(tls_trust_load(F.root_crt, cas, 1, crls, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "signature"));
}

/* A trust set loaded while its CRLs were current, used at another time:
 * a clock stepped back behind the CRL's lastUpdate (a clock behind the
 * CA's), or run past its nextUpdate.  Each is refused, with a reason of
 * its own rather than "crl-missing" (which sent an operator looking for a
 * file that is there).  The store's verification time stands in for the
 * clock; the CRL is checked before the certificates' validity, as in the
 * handshake, so the CRL's reason is the one given. */
static void
test_crl_out_of_time(void **state)
{
	X509_VERIFY_PARAM *param;
	pki_leaf_opts_t o;
	identity_t id;
	tls_trust_t *t;
	X509 *x;
	time_t now = time(NULL);

	(void)state;
	t = load_trust(1);
	assert_non_null(t);
	memset(&o, 0, sizeof(o));
	o.days = 90;	/* outlives the 30-day CRL */
	x = mint(&F.nf, "urn:visor:norfolk:agency:police", &o);
	assert_string_equal(verify_as(t, x, NULL, TLS_ROLE_CLIENT, &id), "ok");
	param = X509_STORE_get0_param(tls_trust_store(t));
	/* An hour back: before lastUpdate (five minutes back at issue). */
	X509_VERIFY_PARAM_set_time(param, now - 3600);
	assert_string_equal(verify_as(t, x, NULL, TLS_ROLE_CLIENT, &id),
	    "crl-not-yet-valid");
	/* 31 days on: the leaf is valid, its CRL is stale. */
	X509_VERIFY_PARAM_set_time(param, now + 31L * 86400);
	assert_string_equal(verify_as(t, x, NULL, TLS_ROLE_CLIENT, &id),
	    "crl-expired");
	/* A CA without a CRL loaded is still "crl-missing" (test_crl_missing). */
	X509_free(x);
	tls_trust_free(t);
}

static void
test_reason_mapping(void **state)
{
	(void)state;
	assert_string_equal(tls_trust_reason(X509_V_ERR_CERT_HAS_EXPIRED), "expired");
	assert_string_equal(tls_trust_reason(X509_V_ERR_CERT_NOT_YET_VALID), "not-yet-valid");
	assert_string_equal(tls_trust_reason(X509_V_ERR_CERT_REVOKED), "revoked");
	assert_string_equal(tls_trust_reason(X509_V_ERR_UNABLE_TO_GET_CRL), "crl-missing");
	assert_string_equal(tls_trust_reason(X509_V_ERR_CRL_HAS_EXPIRED), "crl-expired");
	assert_string_equal(tls_trust_reason(X509_V_ERR_CRL_NOT_YET_VALID),
	    "crl-not-yet-valid");
	assert_string_equal(tls_trust_reason(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
	    "unknown-ca");
	assert_string_equal(tls_trust_reason(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
	    "unknown-ca");
	assert_string_equal(tls_trust_reason(X509_V_ERR_CERT_SIGNATURE_FAILURE),
	    "bad-signature");
	assert_string_equal(tls_trust_reason(X509_V_ERR_INVALID_PURPOSE), "bad-eku");
	assert_string_equal(tls_trust_reason(X509_V_ERR_EE_KEY_TOO_SMALL), "weak-key");
	assert_string_equal(tls_trust_reason(X509_V_ERR_CA_KEY_TOO_SMALL), "weak-key");
	assert_string_equal(tls_trust_reason(X509_V_ERR_CA_MD_TOO_WEAK), "weak-key");
	assert_string_equal(tls_trust_reason(X509_V_ERR_OUT_OF_MEM), "verify-failed");
	assert_string_equal(tls_trust_reason(X509_V_OK), "verify-failed");
	assert_string_equal(tls_trust_reason(-12345), "verify-failed");
}

static void
test_cert_sha256(void **state)
{
	unsigned char md[32];
	unsigned int n = 0, i;
	char fp[65], want[65];

	(void)state;
	tls_trust_cert_sha256(F.nf.cert, fp);
	assert_int_equal(X509_digest(F.nf.cert, EVP_sha256(), md, &n), 1);
	for (i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(fp, want);
	tls_trust_cert_sha256(NULL, fp);
	assert_int_equal(strlen(fp), 64);
}

static long
as_time_t(const ASN1_TIME *a)
{
	struct tm tm;

	assert_int_equal(ASN1_TIME_to_tm(a, &tm), 1);
	return (long)timegm(&tm);
}

/* How long a verdict holds: the earliest of the chain's notAfter and the
 * nextUpdate of the leaf's CRL (tls_context_recheck takes it again then). */
static void
test_verify_until(void **state)
{
	char crlp[192], err[256], reason[64];
	pki_leaf_opts_t o;
	X509_CRL *crl;
	identity_t id;
	long until = 0, crl_next;
	tls_trust_t *t;
	X509 *x;

	(void)state;
	/* Loaded now, from the CRL read below (an earlier test rewrote it). */
	t = load_trust(1);
	assert_non_null(t);
	path(crlp, sizeof(crlp), F.nf_dir, "crl.pem");
	crl = pki_load_crl(crlp, err, sizeof(err));
	assert_non_null(crl);
	crl_next = as_time_t(X509_CRL_get0_nextUpdate(crl));
	X509_CRL_free(crl);

	/* A year's leaf: the 30-day CRL runs out first. */
	x = mint(&F.nf, "urn:visor:norfolk:agency:police", NULL);
	assert_int_equal(tls_trust_verify_until(t, x, NULL, TLS_ROLE_CLIENT,
	    &id, &until, reason, sizeof(reason)), 0);
	assert_int_equal(until, crl_next);
	X509_free(x);

	/* A one-day leaf runs out before its CRL. */
	memset(&o, 0, sizeof(o));
	o.days = 1;
	x = mint(&F.nf, "urn:visor:norfolk:agency:police", &o);
	assert_int_equal(tls_trust_verify_until(t, x, NULL, TLS_ROLE_CLIENT,
	    &id, &until, reason, sizeof(reason)), 0);
	assert_int_equal(until, as_time_t(X509_get0_notAfter(x)));
	assert_true(until < crl_next);

	/* Refused: until is left alone. */
	until = 7;
	assert_int_equal(tls_trust_verify_until(t, x, NULL, TLS_ROLE_SERVER,
	    &id, &until, reason, sizeof(reason)), -1);
	assert_string_equal(reason, "bad-eku");
	assert_int_equal(until, 7);
	X509_free(x);
	tls_trust_free(t);
}

/* Weak keys and digests are refused whatever the platform's OpenSSL
 * default security level: a leaf of an RSA key under 2048 bits or an EC
 * curve under 224 bits, or signed with SHA-1, by an area CA. */
static void
test_weak_keys(void **state)
{
	static const char *const who = "urn:visor:norfolk:agency:police";
	char err[256];
	EVP_PKEY *rsa1024, *rsa2048, *p192;
	identity_t id;
	X509 *x;

	(void)state;
	rsa1024 = EVP_RSA_gen(1024);
	rsa2048 = EVP_RSA_gen(2048);
	p192 = EVP_EC_gen("prime192v1");
	assert_non_null(rsa1024);
	assert_non_null(rsa2048);
	assert_non_null(p192);

	x = pki_make_leaf(&F.nf, rsa1024, who, NULL, err, sizeof(err));
	assert_non_null(x);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id),
	    "weak-key");
	X509_free(x);

	x = pki_make_leaf(&F.nf, p192, who, NULL, err, sizeof(err));
	assert_non_null(x);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id),
	    "weak-key");
	X509_free(x);

	/* A good key, signed by the area CA with SHA-1. */
	x = mint(&F.nf, who, NULL);
	assert_true(X509_sign(x, F.nf.key, EVP_sha1()) > 0);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id),
	    "weak-key");
	X509_free(x);

	/* Not every key that is not P-256: RSA 2048 passes. */
	x = pki_make_leaf(&F.nf, rsa2048, who, NULL, err, sizeof(err));
	assert_non_null(x);
	assert_string_equal(verify_as(F.trust, x, NULL, TLS_ROLE_CLIENT, &id),
	    "ok");
	X509_free(x);

	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(p192);
}

/* Two CRLs of one area CA in the trust set (a new one added beside the
 * old), made in the same second: OpenSSL keeps the first of equal
 * lastUpdate, in an order of its own, and accepted the certificate the
 * newer one revokes.  A revocation in any CRL of the issuer refuses it,
 * whatever the order. */
static void
test_two_crls_same_ca(void **state)
{
	const char *cas[] = { F.nf_ca, F.sf_ca };
	const char *crls[3];
	char c1p[192], c2p[192], err[256];
	X509_CRL *c1, *c2;
	tls_trust_t *t;
	identity_t id;
	X509 *x, *other;
	int order;

	(void)state;
	path(c1p, sizeof(c1p), F.dir, "two-1.pem");
	path(c2p, sizeof(c2p), F.dir, "two-2.pem");
	x = mint(&F.nf, "urn:visor:norfolk:agency:ems", NULL);
	other = mint(&F.nf, "urn:visor:norfolk:agency:ems", NULL);
	c1 = pki_make_crl(&F.nf, NULL, NULL, 0, 0, err, sizeof(err));
	assert_non_null(c1);
	c2 = pki_make_crl(&F.nf, c1, X509_get0_serialNumber(x),
	    PKI_REASON_KEY_COMPROMISE, 0, err, sizeof(err));
	assert_non_null(c2);
	assert_int_equal(pki_write_crl(c1p, c1, err, sizeof(err)), 0);
	assert_int_equal(pki_write_crl(c2p, c2, err, sizeof(err)), 0);
	for (order = 0; order < 2; order++) {
		crls[0] = order ? c2p : c1p;
		crls[1] = order ? c1p : c2p;
		crls[2] = F.sf_crl;
		t = tls_trust_load(F.root_crt, cas, 2, crls, 3, err, sizeof(err));
		if (t == NULL)
			fail_msg("tls_trust_load: %s", err);
		assert_string_equal(verify_as(t, x, NULL, TLS_ROLE_CLIENT, &id),
		    "revoked");
		assert_string_equal(verify_as(t, other, NULL, TLS_ROLE_CLIENT,
		    &id), "ok");
		/* As the handshake's verify callback asks it. */
		{
			STACK_OF(X509) *chain = sk_X509_new_null();

			assert_non_null(chain);
			assert_true(sk_X509_push(chain, x) > 0);
			assert_true(sk_X509_push(chain, F.nf.cert) > 0);
			assert_true(sk_X509_push(chain, F.root.cert) > 0);
			assert_int_equal(tls_trust_chain_revoked(t, chain), 1);
			assert_true(sk_X509_set(chain, 0, other) == other);
			assert_int_equal(tls_trust_chain_revoked(t, chain), 0);
			sk_X509_free(chain);
		}
		tls_trust_free(t);
	}
	X509_CRL_free(c1);
	X509_CRL_free(c2);
	X509_free(x);
	X509_free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_agency),
		cmocka_unit_test(test_valid_gateway_both_roles),
		cmocka_unit_test(test_valid_auditor),
		cmocka_unit_test(test_other_root_unknown_ca),
		cmocka_unit_test(test_leaf_signed_by_root_refused),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_eku),
		cmocka_unit_test(test_uris),
		cmocka_unit_test(test_extra_names_allowed),
		cmocka_unit_test(test_area_mismatch),
		cmocka_unit_test(test_ca_as_leaf),
		cmocka_unit_test(test_crl_missing),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_check_identity_direct),
		cmocka_unit_test(test_ca_rotation_overlap),
		cmocka_unit_test(test_store_and_intermediates),
		cmocka_unit_test(test_load_refusals),
		cmocka_unit_test(test_load_allocation_failures),
		cmocka_unit_test(test_crl_file_several),
		cmocka_unit_test(test_crl_forged),
		cmocka_unit_test(test_reason_mapping),
		cmocka_unit_test(test_crl_out_of_time),
		cmocka_unit_test(test_cert_sha256),
		cmocka_unit_test(test_verify_until),
		cmocka_unit_test(test_weak_keys),
		cmocka_unit_test(test_two_crls_same_ca),
	};

	if (CRYPTO_set_mem_functions(counted_malloc, counted_realloc,
	    counted_free) != 1) {
		fprintf(stderr, "OpenSSL allocated before main\n");
		return 1;
	}
	return cmocka_run_group_tests_name("tls_trust", tests, setup, teardown);
}
