/* Unit tests for crypto/aead: AES-256-GCM sealing of data at rest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/evp.h>

#include "crypto/aead.h"

static const uint8_t key1[AEAD_KEY_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
};
static const uint8_t key2[AEAD_KEY_LEN] = { 0xff };

static const char aad[] = "record-123\0version-4";
static const char msg[] = "{\"name\":\"Synthetic Person\",\"risk\":\"high\"}";

static void
test_roundtrip(void **state)
{
	buf_t sealed = BUF_INIT, opened = BUF_INIT;

	(void)state;
	assert_int_equal(aead_seal(key1, aad, sizeof(aad), msg, strlen(msg),
	    &sealed), 0);
	assert_int_equal(sealed.len, strlen(msg) + AEAD_OVERHEAD);
	/* The plaintext does not appear in the sealed form. */
	assert_null(memmem(sealed.data, sealed.len, "Synthetic", 9));
	assert_int_equal(aead_open(key1, aad, sizeof(aad), sealed.data,
	    sealed.len, &opened), 0);
	assert_int_equal(opened.len, strlen(msg));
	assert_memory_equal(opened.data, msg, strlen(msg));
	buf_free(&sealed);
	buf_free(&opened);
}

static void
test_empty_and_appending(void **state)
{
	buf_t sealed = BUF_INIT, opened = BUF_INIT;

	(void)state;
	/* Empty plaintext and no associated data. */
	assert_int_equal(aead_seal(key1, NULL, 0, "", 0, &sealed), 0);
	assert_int_equal(sealed.len, AEAD_OVERHEAD);
	assert_int_equal(buf_puts(&opened, "prefix:"), 0);
	assert_int_equal(aead_open(key1, NULL, 0, sealed.data, sealed.len,
	    &opened), 0);
	assert_string_equal(opened.data, "prefix:");	/* appended nothing */
	/* Sealing appends after what the buffer holds. */
	assert_int_equal(aead_seal(key1, NULL, 0, "abc", 3, &sealed), 0);
	assert_int_equal(sealed.len, 2 * AEAD_OVERHEAD + 3);
	assert_int_equal(aead_open(key1, NULL, 0, sealed.data + AEAD_OVERHEAD,
	    AEAD_OVERHEAD + 3, &opened), 0);
	assert_string_equal(opened.data, "prefix:abc");
	buf_free(&sealed);
	buf_free(&opened);
}

static void
test_nonce_is_fresh(void **state)
{
	buf_t a = BUF_INIT, b = BUF_INIT;

	(void)state;
	assert_int_equal(aead_seal(key1, aad, sizeof(aad), msg, strlen(msg), &a), 0);
	assert_int_equal(aead_seal(key1, aad, sizeof(aad), msg, strlen(msg), &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_not_equal(a.data, b.data, 12);
	assert_memory_not_equal(a.data, b.data, a.len);
	buf_free(&a);
	buf_free(&b);
}

/* The layout nonce || ciphertext || tag, built here with plain EVP calls
 * (a fixed nonce), opens with aead_open. */
static void
test_layout_interop(void **state)
{
	static const uint8_t nonce[12] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2 };
	uint8_t sealed[12 + 64 + 16];
	buf_t opened = BUF_INIT;
	EVP_CIPHER_CTX *c;
	size_t n = strlen(msg);
	int len, fin;

	(void)state;
	assert_true(n <= 64);
	c = EVP_CIPHER_CTX_new();
	assert_non_null(c);
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key1, nonce), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &len, (const uint8_t *)aad,
	    (int)sizeof(aad)), 1);
	assert_int_equal(EVP_EncryptUpdate(c, sealed + 12, &len,
	    (const uint8_t *)msg, (int)n), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, sealed + 12 + len, &fin), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16,
	    sealed + 12 + n), 1);
	EVP_CIPHER_CTX_free(c);
	memcpy(sealed, nonce, 12);
	assert_int_equal(aead_open(key1, aad, sizeof(aad), sealed, n + 28,
	    &opened), 0);
	assert_int_equal(opened.len, n);
	assert_memory_equal(opened.data, msg, n);
	buf_free(&opened);
}

static void
test_rejections(void **state)
{
	buf_t sealed = BUF_INIT, opened = BUF_INIT;
	size_t i;

	(void)state;
	assert_int_equal(aead_seal(key1, aad, sizeof(aad), msg, strlen(msg),
	    &sealed), 0);
	/* wrong key */
	assert_int_equal(aead_open(key2, aad, sizeof(aad), sealed.data,
	    sealed.len, &opened), -1);
	/* other associated data, or none */
	assert_int_equal(aead_open(key1, "record-124", 10, sealed.data,
	    sealed.len, &opened), -1);
	assert_int_equal(aead_open(key1, NULL, 0, sealed.data, sealed.len,
	    &opened), -1);
	/* A failed open appends nothing, and the plaintext it decrypted
	 * before the tag failed is not left in the buffer's spare room. */
	assert_int_equal(buf_puts(&opened, "prefix:"), 0);
	sealed.data[sealed.len - 1] ^= 0x01;
	assert_int_equal(aead_open(key1, aad, sizeof(aad), sealed.data,
	    sealed.len, &opened), -1);
	sealed.data[sealed.len - 1] ^= 0x01;
	assert_int_equal(opened.len, 7);
	assert_string_equal(opened.data, "prefix:");
	assert_true(opened.cap > 7 + strlen(msg));
	assert_null(memmem(opened.data, opened.cap, "Synthetic", 9));
	buf_reset(&opened);
	/* every byte altered in turn: nonce, ciphertext, tag */
	for (i = 0; i < sealed.len; i++) {
		sealed.data[i] ^= 0x01;
		assert_int_equal(aead_open(key1, aad, sizeof(aad), sealed.data,
		    sealed.len, &opened), -1);
		sealed.data[i] ^= 0x01;
	}
	/* truncated, including below the overhead */
	for (i = 0; i < sealed.len; i++)
		assert_int_equal(aead_open(key1, aad, sizeof(aad), sealed.data,
		    i, &opened), -1);
	/* nothing was appended by any failure */
	assert_int_equal(opened.len, 0);
	assert_int_equal(aead_open(key1, aad, sizeof(aad), sealed.data,
	    sealed.len, &opened), 0);
	buf_free(&sealed);
	buf_free(&opened);
}

static void
test_output_limit(void **state)
{
	buf_t small, opened;
	buf_t sealed = BUF_INIT;

	(void)state;
	buf_init(&small, 16);
	assert_int_equal(aead_seal(key1, NULL, 0, msg, strlen(msg), &small), -1);
	assert_int_equal(small.len, 0);
	assert_int_equal(aead_seal(key1, NULL, 0, msg, strlen(msg), &sealed), 0);
	buf_init(&opened, 8);
	assert_int_equal(aead_open(key1, NULL, 0, sealed.data, sealed.len,
	    &opened), -1);
	assert_int_equal(opened.len, 0);
	buf_free(&small);
	buf_free(&sealed);
	buf_free(&opened);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_empty_and_appending),
		cmocka_unit_test(test_nonce_is_fresh),
		cmocka_unit_test(test_layout_interop),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_output_limit),
	};

	return cmocka_run_group_tests_name("aead", tests, NULL, NULL);
}
