/*
 * sha256: SHA-256 with the algorithm fetched from libcrypto once.  OpenSSL
 * 3's SHA256() and EVP_sha256() look the algorithm up on every call (a
 * shared lock and a table lookup: about 0.2 us, more than hashing 64 bytes,
 * and the gateway's workers contend on the lock).  SHA-256 fails only when
 * libcrypto or memory is broken; a wrong digest in an audit entry, a leaf
 * hash or an idempotency check would be worse than stopping, so that case
 * ends the process.
 */
#ifndef CRYPTO_SHA256_H
#define CRYPTO_SHA256_H

#include <stddef.h>

#include <openssl/evp.h>

#define SHA256_LEN 32

/* The fetched algorithm, for digests built with EVP_DigestInit_ex2. */
const EVP_MD *sha256_md(void);

/* out = SHA-256(data[0..len)); data may be NULL when len is 0. */
void sha256(const void *data, size_t len, unsigned char out[SHA256_LEN]);

/* The digest as 64 lowercase hex digits and a NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);

/* Stop the process: SHA-256 failed in libcrypto (see above). */
void sha256_failed(void) __attribute__((noreturn));

#endif
