/*
 * Fuzz target for the bundle reader of crypto/audit_verify
 * (audit_bundle_verify, with a trusted key and with the bundle's own key)
 * and the search answer reader (audit_search_answer), on arbitrary bytes.
 * The seed corpus holds bundles signed with the fixed key below, so that
 * mutations reach the entry walk and not only the signature check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto/audit_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ORIGIN "visor.fuzz/audit"

static note_verifier_t *verifier;

/* The verifier of a fixed Ed25519 key (seed 0x42 0x42 0x42 0x42 0x17 0...),
 * the key tests/fuzz/corpus/audit_bundle/ was signed with. */
static void
init(void)
{
	static const uint8_t seed[32] = { 0x42, 0x42, 0x42, 0x42, 0x17 };
	note_signer_t *signer;
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
	note_signer_free(signer);
	EVP_PKEY_free(key);
	buf_free(&vk);
}

static int
hit(void *ctx, uint64_t index, const uint8_t *leaf, size_t len)
{
	uint64_t *last = ctx;

	if (len == 0 || leaf == NULL || (*last != UINT64_MAX && index <= *last))
		abort();
	*last = index;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	audit_bundle_result_t res;
	char err[AUDIT_VERIFY_ERR];
	uint64_t last = UINT64_MAX, ssize, next;
	size_t n;

	if (verifier == NULL)
		init();
	if (audit_bundle_verify(s, size, verifier, &res, err, sizeof(err)) == 0) {
		/* A verified bundle has no bad entry and carries our key. */
		if (res.bad_index != AUDIT_INDEX_NONE || res.key_from_bundle ||
		    strcmp(res.key_name, ORIGIN) != 0)
			abort();
	} else if (err[0] == '\0') {
		abort();	/* every refusal says why */
	}
	(void)audit_bundle_verify(s, size, NULL, &res, err, sizeof(err));
	if (audit_search_answer(s, size, hit, &last, &ssize, &n, err,
	    sizeof(err)) == 0 && n > 0 && last >= ssize)
		abort();
	/* A page: its next lies past its last hit and within the size, or
	 * paging would not end. */
	last = UINT64_MAX;
	if (audit_search_page(s, size, hit, &last, &ssize, &n, &next, err,
	    sizeof(err)) == 0 && ((n > 0 && last >= ssize) || (next != 0 &&
	    (n == 0 || next <= last || next > ssize))))
		abort();
	return 0;
}
