/*
 * aead: AES-256-GCM for data at rest.  A sealed value is
 *   nonce (12 random bytes) || ciphertext || tag (16 bytes)
 * and the associated data (for records: id and version) is bound in.
 */
#ifndef CRYPTO_AEAD_H
#define CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AEAD_KEY_LEN 32
#define AEAD_OVERHEAD 28

/* Append the sealed form of pt to out.  0 or -1. */
int aead_seal(const uint8_t key[AEAD_KEY_LEN], const void *aad, size_t aadlen,
    const void *pt, size_t ptlen, buf_t *out);

/* Append the plaintext of a sealed value to out.  -1 if it is too short, the
 * tag does not verify (wrong key, altered bytes or other associated data),
 * with out as it was.  It decrypts into out's own memory, which may move:
 * in must not point into out. */
int aead_open(const uint8_t key[AEAD_KEY_LEN], const void *aad, size_t aadlen,
    const void *in, size_t inlen, buf_t *out);

#endif
