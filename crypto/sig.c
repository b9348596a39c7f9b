#include "crypto/sig.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/b64.h"
#include "util/guard.h"

/* DER ECDSA P-256 signatures are at most 72 bytes, Ed25519 64. */
#define SIG_MAX 80
#define SIG_B64_MAX (B64_ENCODED_SIZE(SIG_MAX) - 1)

/* The digest to use with key, through *md; -1 for unsupported key types. */
static int
sig_md(EVP_PKEY *key, const EVP_MD **md)
{
	switch (EVP_PKEY_get_id(key)) {
	case EVP_PKEY_ED25519:
		*md = NULL;	/* Ed25519 signs the message itself */
		return 0;
	case EVP_PKEY_EC: {
		char group[64];
		size_t glen = 0;

		/* P-256 only: other 256-bit curves are not part of the PKI. */
		if (EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) != 1 ||
		    strcmp(group, "prime256v1") != 0)
			return -1;
		*md = EVP_sha256();
		return 0;
	}
	default:
		return -1;
	}
}

int
sig_sign(EVP_PKEY *key, const void *data, size_t len, buf_t *out)
{
	unsigned char sig[SIG_MAX];
	char b64[B64_ENCODED_SIZE(SIG_MAX)];
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md;
	size_t siglen = 0;
	int ret = -1;

	ENSURE(key != NULL && (data != NULL || len == 0), err);
	GUARD(sig_md(key, &md), err);
	GUARD_PTR(ctx = EVP_MD_CTX_new(), err);
	ENSURE(EVP_DigestSignInit(ctx, NULL, md, NULL, key) == 1, err);
	ENSURE(EVP_DigestSign(ctx, NULL, &siglen, data, len) == 1, err);
	ENSURE(siglen > 0 && siglen <= sizeof(sig), err);
	ENSURE(EVP_DigestSign(ctx, sig, &siglen, data, len) == 1, err);
	b64_encode(sig, siglen, b64);
	GUARD(buf_puts(out, b64), err);
	ret = 0;
err:
	EVP_MD_CTX_free(ctx);
	return ret;
}

int
sig_verify_cert(X509 *cert, const void *data, size_t len, const char *b64,
    size_t b64len)
{
	unsigned char sig[SIG_MAX];
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md;
	EVP_PKEY *key;
	long siglen;
	int ret = -1;

	ENSURE(cert != NULL && b64 != NULL && (data != NULL || len == 0), err);
	ENSURE(b64len > 0 && b64len <= SIG_B64_MAX, err);
	siglen = b64_decode(b64, b64len, sig, sizeof(sig));
	ENSURE(siglen > 0, err);
	GUARD_PTR(key = X509_get0_pubkey(cert), err);
	GUARD(sig_md(key, &md), err);
	GUARD_PTR(ctx = EVP_MD_CTX_new(), err);
	ENSURE(EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1, err);
	/* libcrypto rejects non-canonical DER for ECDSA (it re-encodes and
	 * compares), so one signature has one accepted form. */
	ENSURE(EVP_DigestVerify(ctx, sig, (size_t)siglen, data, len) == 1, err);
	ret = 0;
err:
	EVP_MD_CTX_free(ctx);
	return ret;
}

int
sig_verify_digest_cert(X509 *cert, const unsigned char digest[32],
    const char *b64, size_t b64len)
{
	unsigned char sig[SIG_MAX];
	EVP_PKEY_CTX *ctx = NULL;
	const EVP_MD *md = NULL;
	EVP_PKEY *key;
	long siglen;
	int ret = -1;

	ENSURE(cert != NULL && digest != NULL && b64 != NULL, err);
	ENSURE(b64len > 0 && b64len <= SIG_B64_MAX, err);
	siglen = b64_decode(b64, b64len, sig, sizeof(sig));
	ENSURE(siglen > 0, err);
	GUARD_PTR(key = X509_get0_pubkey(cert), err);
	GUARD(sig_md(key, &md), err);
	ENSURE(md != NULL && EVP_MD_get_size(md) == 32, err);
	GUARD_PTR(ctx = EVP_PKEY_CTX_new(key, NULL), err);
	ENSURE(EVP_PKEY_verify_init(ctx) == 1, err);
	ENSURE(EVP_PKEY_CTX_set_signature_md(ctx, md) == 1, err);
	ENSURE(EVP_PKEY_verify(ctx, sig, (size_t)siglen, digest, 32) == 1,
	    err);
	ret = 0;
err:
	EVP_PKEY_CTX_free(ctx);
	return ret;
}
