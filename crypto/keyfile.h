/*
 * keyfile: private key files on disk.  Every private file is mode 0600 and a
 * file readable by group or others is refused when loaded.
 */
#ifndef CRYPTO_KEYFILE_H
#define CRYPTO_KEYFILE_H

#include <stddef.h>

#include <openssl/evp.h>

#define KEYFILE_AEAD_KEY_LEN 32

/* Create a new random 32-byte data key at path (mode 0600, atomic).  Fails if
 * the file exists.  Returns 0 or -1. */
int keyfile_create_aead(const char *path);

/* Load a 32-byte data key; refuses a file of another size or a mode wider
 * than 0600.  Returns 0 or -1 with a reason in err.  Wipe out after use. */
int keyfile_load_aead(const char *path, unsigned char out[KEYFILE_AEAD_KEY_LEN],
    char *err, size_t errlen);

/* Write a private key as unencrypted PKCS#8 PEM, mode 0600, atomically,
 * replacing what is at path.  Returns 0 or -1. */
int keyfile_write_private(const char *path, EVP_PKEY *key);

/* As keyfile_write_private, but only if nothing is at path: the final
 * placement is exclusive (file_create_new), so a file that appears after
 * a caller's own check is never written over.  Returns 0, or -1 with
 * errno (EEXIST when something is there). */
int keyfile_create_private(const char *path, EVP_PKEY *key);

/* Load a PEM private key, refusing a mode wider than 0600.  Returns the key
 * (caller frees with EVP_PKEY_free) or NULL with a reason in err. */
EVP_PKEY *keyfile_load_private(const char *path, char *err, size_t errlen);

/* Generate a new key: "ec" (ECDSA P-256) or "ed25519".  NULL on failure. */
EVP_PKEY *keyfile_generate(const char *alg);

#endif
