/*
 * membio: the text an OpenSSL memory BIO holds (a PEM written into it),
 * handed on as a buffer of the caller's.
 */
#ifndef CRYPTO_MEMBIO_H
#define CRYPTO_MEMBIO_H

#include <stddef.h>

#include <openssl/bio.h>

/* A new NUL-terminated copy of what the memory BIO bio holds (a
 * BIO_s_mem or BIO_s_secmem): *out (the caller frees it, and wipes it
 * with OPENSSL_cleanse first if it holds a secret: only the BIO's own
 * buffer is wiped with a secure-memory BIO) and *len, without the NUL.
 * 0, or -1 if bio holds nothing or memory runs out (*out and *len then
 * untouched). */
int membio_text(BIO *bio, char **out, size_t *len);

#endif
