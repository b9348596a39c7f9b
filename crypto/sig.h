/*
 * sig: signatures over bytes with certificate keys (X-Visor-Signature on
 * transfer bodies, transfer receipts).  ECDSA P-256 with SHA-256 (DER
 * signature) or Ed25519; the signature travels base64-encoded.
 */
#ifndef CRYPTO_SIG_H
#define CRYPTO_SIG_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "util/buf.h"

/* Sign data with key and append base64(signature) to out.  0 or -1. */
int sig_sign(EVP_PKEY *key, const void *data, size_t len, buf_t *out);

/* Verify base64 signature b64 (b64len bytes) over data with the public key
 * of cert.  0 if valid, -1 otherwise (including malformed base64). */
int sig_verify_cert(X509 *cert, const void *data, size_t len, const char *b64,
    size_t b64len);

/* Verify base64 signature b64 (b64len bytes), made as sig_sign makes it,
 * over bytes known only by their SHA-256 (digest, 32 bytes), with the
 * public key of cert: for evidence kept without the bytes (an audit
 * entry).  ECDSA P-256 only: an Ed25519 signature covers the bytes
 * themselves and cannot be checked from their digest.  0 if valid, -1
 * otherwise (including malformed base64 and an Ed25519 key). */
int sig_verify_digest_cert(X509 *cert, const unsigned char digest[32],
    const char *b64, size_t b64len);

#endif
