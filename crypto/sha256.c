#include "crypto/sha256.h"

#include <stdlib.h>

#include <openssl/crypto.h>

#include "util/log.h"

static CRYPTO_ONCE md_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *md;

static void
md_fetch(void)
{
	md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
sha256_failed(void)
{
	log_msg(LOG_ERROR, "sha256", "SHA-256 failed in libcrypto; stopping");
	abort();
}

const EVP_MD *
sha256_md(void)
{
	if (!CRYPTO_THREAD_run_once(&md_once, md_fetch) || md == NULL)
		sha256_failed();
	return md;
}

void
sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(len > 0 ? data : (const void *)"", len, out, &n,
	    sha256_md(), NULL) != 1 || n != SHA256_LEN)
		sha256_failed();
}

void
sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hexdig[] = "0123456789abcdef";
	unsigned char h[SHA256_LEN];
	size_t i;

	sha256(data, len, h);
	for (i = 0; i < sizeof(h); i++) {
		out[2 * i] = hexdig[h[i] >> 4];
		out[2 * i + 1] = hexdig[h[i] & 15];
	}
	out[64] = '\0';
}
