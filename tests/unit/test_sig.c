/* Unit tests for crypto/sig: signatures with certificate keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/sha256.h"
#include "crypto/sig.h"
#include "util/b64.h"

static const char body[] = "{\"record_id\":\"synthetic-1\",\"to_area\":\"north\"}";

/* A self-signed certificate for key (enough to carry the public key). */
static X509 *
make_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	const EVP_MD *md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ?
	    NULL : EVP_sha256();

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x),
	    "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_true(X509_sign(x, key, md) > 0);
	return x;
}

static void
roundtrip(EVP_PKEY *key, EVP_PKEY *other)
{
	X509 *cert = make_cert(key), *ocert = make_cert(other);
	buf_t s = BUF_INIT;
	unsigned char raw[128];
	char enc[256];
	long n;
	size_t i;

	assert_int_equal(sig_sign(key, body, strlen(body), &s), 0);
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), s.data, s.len), 0);
	/* other data, other key */
	assert_int_equal(sig_verify_cert(cert, body, strlen(body) - 1, s.data,
	    s.len), -1);
	assert_int_equal(sig_verify_cert(ocert, body, strlen(body), s.data,
	    s.len), -1);
	/* every signature byte altered */
	n = b64_decode(s.data, s.len, raw, sizeof(raw));
	assert_true(n > 0);
	for (i = 0; i < (size_t)n; i++) {
		raw[i] ^= 0x04;
		b64_encode(raw, (size_t)n, enc);
		assert_int_equal(sig_verify_cert(cert, body, strlen(body), enc,
		    strlen(enc)), -1);
		raw[i] ^= 0x04;
	}
	/* truncated, and with a byte appended */
	for (i = 1; i < (size_t)n; i++) {
		b64_encode(raw, i, enc);
		assert_int_equal(sig_verify_cert(cert, body, strlen(body), enc,
		    strlen(enc)), -1);
	}
	raw[n] = 0;
	b64_encode(raw, (size_t)n + 1, enc);
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), enc,
	    strlen(enc)), -1);
	/* signing appends */
	assert_int_equal(sig_sign(key, "", 0, &s), 0);
	assert_true(s.len > 0);
	buf_free(&s);
	X509_free(cert);
	X509_free(ocert);
}

static void
test_ecdsa(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *o = EVP_EC_gen("P-256");
	buf_t a = BUF_INIT, b = BUF_INIT;
	unsigned char raw[128];

	(void)state;
	assert_non_null(k);
	assert_non_null(o);
	roundtrip(k, o);
	/* DER: SEQUENCE of two INTEGERs. */
	assert_int_equal(sig_sign(k, body, strlen(body), &a), 0);
	assert_true(b64_decode(a.data, a.len, raw, sizeof(raw)) >= 8);
	assert_int_equal(raw[0], 0x30);
	/* ECDSA is randomized: two signatures differ, both verify. */
	assert_int_equal(sig_sign(k, body, strlen(body), &b), 0);
	assert_true(a.len != b.len || memcmp(a.data, b.data, a.len) != 0);
	buf_free(&a);
	buf_free(&b);
	EVP_PKEY_free(k);
	EVP_PKEY_free(o);
}

/* A signature kept without the bytes it covers (a transfer-in audit
 * entry keeps only their SHA-256) verifies from that digest: for ECDSA
 * P-256 keys only.  Another digest, another key, an altered signature,
 * and an Ed25519 key (which signs the bytes, not a digest) are refused. */
static void
test_verify_digest(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *o = EVP_EC_gen("P-256");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *cert, *ocert, *edcert;
	buf_t s = BUF_INIT, es = BUF_INIT;
	unsigned char d[32], raw[128];
	char enc[256];
	long n;

	(void)state;
	assert_non_null(k);
	assert_non_null(o);
	assert_non_null(ed);
	cert = make_cert(k);
	ocert = make_cert(o);
	edcert = make_cert(ed);
	sha256(body, strlen(body), d);
	assert_int_equal(sig_sign(k, body, strlen(body), &s), 0);
	assert_int_equal(sig_verify_digest_cert(cert, d, s.data, s.len), 0);
	assert_int_equal(sig_verify_digest_cert(ocert, d, s.data, s.len), -1);
	d[31] ^= 1;
	assert_int_equal(sig_verify_digest_cert(cert, d, s.data, s.len), -1);
	d[31] ^= 1;
	n = b64_decode(s.data, s.len, raw, sizeof(raw));
	assert_true(n > 8);
	raw[n - 1] ^= 0x10;
	b64_encode(raw, (size_t)n, enc);
	assert_int_equal(sig_verify_digest_cert(cert, d, enc, strlen(enc)), -1);
	assert_int_equal(sig_verify_digest_cert(cert, d, "!!!!", 4), -1);
	assert_int_equal(sig_verify_digest_cert(cert, d, s.data, 0), -1);
	assert_int_equal(sig_sign(ed, body, strlen(body), &es), 0);
	assert_int_equal(sig_verify_cert(edcert, body, strlen(body), es.data,
	    es.len), 0);
	assert_int_equal(sig_verify_digest_cert(edcert, d, es.data, es.len),
	    -1);
	buf_free(&s);
	buf_free(&es);
	X509_free(cert);
	X509_free(ocert);
	X509_free(edcert);
	EVP_PKEY_free(k);
	EVP_PKEY_free(o);
	EVP_PKEY_free(ed);
}

static void
test_ed25519(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *o = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	buf_t a = BUF_INIT;
	unsigned char raw[128];

	(void)state;
	assert_non_null(k);
	assert_non_null(o);
	roundtrip(k, o);
	assert_int_equal(sig_sign(k, body, strlen(body), &a), 0);
	assert_int_equal(b64_decode(a.data, a.len, raw, sizeof(raw)), 64);
	buf_free(&a);
	EVP_PKEY_free(k);
	EVP_PKEY_free(o);
}

static void
test_cross_algorithm(void **state)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *eccert = make_cert(ec), *edcert = make_cert(ed);
	buf_t s = BUF_INIT;

	(void)state;
	assert_int_equal(sig_sign(ed, body, strlen(body), &s), 0);
	assert_int_equal(sig_verify_cert(eccert, body, strlen(body), s.data,
	    s.len), -1);
	buf_reset(&s);
	assert_int_equal(sig_sign(ec, body, strlen(body), &s), 0);
	assert_int_equal(sig_verify_cert(edcert, body, strlen(body), s.data,
	    s.len), -1);
	buf_free(&s);
	X509_free(eccert);
	X509_free(edcert);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
}

static void
test_bad_base64(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *cert = make_cert(k);
	buf_t s = BUF_INIT, t = BUF_INIT;
	char longs[400];

	(void)state;
	assert_int_equal(sig_sign(k, body, strlen(body), &s), 0);
	/* empty, unpadded, whitespace, stray characters, URL alphabet */
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), "", 0), -1);
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), s.data,
	    s.len - 2), -1);
	assert_int_equal(buf_append(&t, s.data, s.len), 0);
	assert_int_equal(buf_puts(&t, "\n"), 0);
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), t.data,
	    t.len), -1);
	buf_reset(&t);
	assert_int_equal(buf_puts(&t, " "), 0);
	assert_int_equal(buf_append(&t, s.data, s.len), 0);
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), t.data,
	    t.len), -1);
	buf_reset(&t);
	assert_int_equal(buf_append(&t, s.data, s.len), 0);
	t.data[3] = '*';
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), t.data,
	    t.len), -1);
	t.data[3] = '-';
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), t.data,
	    t.len), -1);
	/* too long to be a signature */
	memset(longs, 'A', sizeof(longs));
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), longs,
	    sizeof(longs)), -1);
	/* NULL arguments */
	assert_int_equal(sig_verify_cert(NULL, body, strlen(body), s.data,
	    s.len), -1);
	assert_int_equal(sig_verify_cert(cert, body, strlen(body), NULL, 0), -1);
	buf_free(&s);
	buf_free(&t);
	X509_free(cert);
	EVP_PKEY_free(k);
}

static void
test_unsupported_keys(void **state)
{
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *rsa = EVP_RSA_gen(2048);
	buf_t s = BUF_INIT;

	(void)state;
	assert_int_equal(sig_sign(p384, body, strlen(body), &s), -1);
	assert_int_equal(sig_sign(rsa, body, strlen(body), &s), -1);
	assert_int_equal(sig_sign(NULL, body, strlen(body), &s), -1);
	assert_int_equal(s.len, 0);
	/* A valid secp256k1 signature (same size as P-256) made with plain
	 * EVP: the certificate's curve is not accepted. */
	{
		EVP_PKEY *k1 = EVP_EC_gen("secp256k1");
		X509 *ck1;
		unsigned char raw[128];
		char enc[B64_ENCODED_SIZE(128)];
		size_t n = sizeof(raw);
		EVP_MD_CTX *c = EVP_MD_CTX_new();

		assert_non_null(k1);
		ck1 = make_cert(k1);
		assert_non_null(c);
		assert_int_equal(sig_sign(k1, body, strlen(body), &s), -1);
		assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL,
		    k1), 1);
		assert_int_equal(EVP_DigestSign(c, raw, &n,
		    (const unsigned char *)body, strlen(body)), 1);
		EVP_MD_CTX_free(c);
		assert_true(n <= 80);
		b64_encode(raw, n, enc);
		assert_int_equal(sig_verify_cert(ck1, body, strlen(body), enc,
		    strlen(enc)), -1);
		X509_free(ck1);
		EVP_PKEY_free(k1);
	}
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa);
}

static void
test_sha256_hex(void **state)
{
	char out[65];

	(void)state;
	sha256_hex("abc", 3, out);
	assert_string_equal(out,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex(NULL, 0, out);
	assert_string_equal(out,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ecdsa),
		cmocka_unit_test(test_ed25519),
		cmocka_unit_test(test_verify_digest),
		cmocka_unit_test(test_cross_algorithm),
		cmocka_unit_test(test_bad_base64),
		cmocka_unit_test(test_unsupported_keys),
		cmocka_unit_test(test_sha256_hex),
	};

	return cmocka_run_group_tests_name("sig", tests, NULL, NULL);
}
