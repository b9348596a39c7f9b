#include "crypto/keyfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "util/fileio.h"

int
keyfile_create_aead(const char *path)
{
	unsigned char key[KEYFILE_AEAD_KEY_LEN];
	int rc;

	if (RAND_priv_bytes(key, sizeof(key)) != 1)
		return -1;
	/* Never over a key that exists, even one made at the same moment:
	 * the records it sealed would be lost. */
	rc = file_create_new(path, key, sizeof(key), 0600);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

static int
check_private(const char *path, char *err, size_t errlen)
{
	if (file_check_private(path) < 0) {
		snprintf(err, errlen, "%s: %s", path, file_refusal(errno,
		    FILE_REFUSAL_KEY));
		return -1;
	}
	return 0;
}

int
keyfile_load_aead(const char *path, unsigned char out[KEYFILE_AEAD_KEY_LEN],
    char *err, size_t errlen)
{
	char *data = NULL;
	size_t len = 0;

	if (check_private(path, err, errlen) < 0)
		return -1;
	/* Checked again on the open file: the path may have changed since. */
	if (file_read_private(path, 4096, &data, &len) < 0) {
		snprintf(err, errlen, "%s: %s", path, file_refusal(errno,
		    FILE_REFUSAL_KEY));
		return -1;
	}
	if (len != KEYFILE_AEAD_KEY_LEN) {
		snprintf(err, errlen, "%s: data key must be exactly %d bytes", path,
		    KEYFILE_AEAD_KEY_LEN);
		OPENSSL_cleanse(data, len);
		free(data);
		return -1;
	}
	memcpy(out, data, KEYFILE_AEAD_KEY_LEN);
	OPENSSL_cleanse(data, len);
	free(data);
	return 0;
}

static int
write_private(const char *path, EVP_PKEY *key, int exclusive)
{
	BIO *mem;
	char *p = NULL;
	long n;
	int rc = -1, saved;

	if ((mem = BIO_new(BIO_s_secmem())) == NULL)
		return -1;
	if (PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	n = BIO_get_mem_data(mem, &p);
	if (n <= 0)
		goto out;
	rc = exclusive ? file_create_new(path, p, (size_t)n, 0600) :
	    file_write_atomic(path, p, (size_t)n, 0600);
out:
	saved = errno;
	/* A secure-heap BIO: freeing it wipes the PEM text. */
	BIO_free(mem);
	errno = saved;
	return rc;
}

int
keyfile_write_private(const char *path, EVP_PKEY *key)
{
	return write_private(path, key, 0);
}

int
keyfile_create_private(const char *path, EVP_PKEY *key)
{
	return write_private(path, key, 1);
}

EVP_PKEY *
keyfile_load_private(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	char *data = NULL;
	size_t len = 0;
	BIO *mem;

	if (check_private(path, err, errlen) < 0)
		return NULL;
	if (file_read_private(path, 65536, &data, &len) < 0) {
		snprintf(err, errlen, "%s: %s", path, file_refusal(errno,
		    FILE_REFUSAL_KEY));
		return NULL;
	}
	if ((mem = BIO_new_mem_buf(data, (int)len)) != NULL) {
		key = PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL);
		BIO_free(mem);
	}
	OPENSSL_cleanse(data, len);
	free(data);
	if (key == NULL)
		snprintf(err, errlen, "%s: not a PEM private key", path);
	return key;
}

EVP_PKEY *
keyfile_generate(const char *alg)
{
	if (strcmp(alg, "ec") == 0)
		return EVP_EC_gen("P-256");
	if (strcmp(alg, "ed25519") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return NULL;
}
