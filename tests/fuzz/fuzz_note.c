/*
 * Fuzz target for crypto/note: note_open, note_verifier_parse and
 * checkpoint_parse on arbitrary bytes, and a sign/open roundtrip on the input
 * as a body (whatever note_sign accepts must open to the same body).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto/note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ORIGIN "visor.fuzz/audit"

static note_signer_t *signer;
static note_verifier_t *verifier;

/* A fixed Ed25519 key from a constant seed: runs are reproducible. */
static void
init(void)
{
	static const uint8_t seed[32] = { 0x42, 0x42, 0x42, 0x42, 0x17 };
	EVP_PKEY *key;
	buf_t vk = BUF_INIT;
	char err[128];

	key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
	    sizeof(seed));
	if (key == NULL || (signer = note_signer_new(ORIGIN, key)) == NULL ||
	    note_signer_vkey(signer, &vk) != 0 ||
	    (verifier = note_verifier_parse(vk.data, vk.len, err,
	    sizeof(err))) == NULL)
		abort();
	EVP_PKEY_free(key);
	buf_free(&vk);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	note_verifier_t *v;
	merkle_hash_t root;
	uint64_t tsize;
	size_t blen;
	buf_t out = BUF_INIT;
	char err[128];

	if (signer == NULL)
		init();
	if (note_open(verifier, s, size, &blen, err, sizeof(err)) == 0) {
		if (blen == 0 || blen >= size)
			abort();
		(void)checkpoint_parse(s, blen, ORIGIN, &tsize, root, err,
		    sizeof(err));
	}
	(void)checkpoint_parse(s, size, NULL, &tsize, root, err, sizeof(err));
	(void)checkpoint_parse(s, size, ORIGIN, &tsize, root, err, sizeof(err));
	if ((v = note_verifier_parse(s, size, err, sizeof(err))) != NULL) {
		if (note_verifier_name(v)[0] == '\0')
			abort();
		note_verifier_free(v);
	}
	if (note_sign(signer, s, size, &out) == 0) {
		if (note_open(verifier, out.data, out.len, &blen, err,
		    sizeof(err)) != 0 || blen != size ||
		    memcmp(out.data, s, size) != 0)
			abort();
	}
	buf_free(&out);
	return 0;
}
