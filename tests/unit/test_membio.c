/* Unit tests for crypto/membio: a memory BIO's text as the caller's copy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>

#include "crypto/membio.h"

/* The bytes written, NUL-terminated, the length without the NUL; the copy
 * outlives the BIO.  From a secure-memory BIO too (a key's PEM). */
static void
test_membio_text_copies(void **state)
{
	static const char text[] = "-----BEGIN X-----\nAAAA\n-----END X-----\n";
	BIO *bio;
	char *out = NULL;
	size_t len = 0, i;

	(void)state;
	for (i = 0; i < 2; i++) {
		bio = BIO_new(i == 0 ? BIO_s_mem() : BIO_s_secmem());
		assert_non_null(bio);
		assert_int_equal(BIO_write(bio, text, (int)strlen(text)),
		    (int)strlen(text));
		assert_int_equal(membio_text(bio, &out, &len), 0);
		BIO_free(bio);
		assert_int_equal(len, strlen(text));
		assert_memory_equal(out, text, len);
		assert_int_equal(out[len], '\0');
		free(out);
		out = NULL;
	}
}

/* A BIO that holds nothing is an error (no PEM was written), and the
 * caller's pointers are left as they were. */
static void
test_membio_text_empty(void **state)
{
	BIO *bio;
	char *out = (char *)"untouched";
	size_t len = 7;

	(void)state;
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_int_equal(membio_text(bio, &out, &len), -1);
	assert_string_equal(out, "untouched");
	assert_int_equal(len, 7);
	BIO_free(bio);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_membio_text_copies),
		cmocka_unit_test(test_membio_text_empty),
	};

	return cmocka_run_group_tests_name("membio", tests, NULL, NULL);
}
