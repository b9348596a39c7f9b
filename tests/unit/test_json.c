/*
 * util/json: duplicate keys are refused in objects of every size (large
 * objects take the sorted path of json_parse_strict).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"

/* {"k0":0,...,"k<n-1>":0}, with key dup_of repeated as the last member when
 * dup_of >= 0; nested inside {"x":...} when nested. */
static void
make_object(buf_t *b, int n, int dup_of, int nested)
{
	int i;

	buf_reset(b);
	if (nested)
		buf_puts(b, "{\"x\":");
	buf_puts(b, "{");
	for (i = 0; i < n; i++)
		buf_printf(b, "%s\"k%d\":0", i ? "," : "", i);
	if (dup_of >= 0)
		buf_printf(b, ",\"k%d\":1", dup_of);
	buf_puts(b, "}");
	if (nested)
		buf_puts(b, "}");
}

static void
expect(int n, int dup_of, int nested)
{
	buf_t b = BUF_INIT;
	char err[128];
	cJSON *j;

	make_object(&b, n, dup_of, nested);
	j = json_parse_strict(b.data, b.len, 8, err, sizeof(err));
	if (dup_of < 0) {
		assert_non_null(j);
		assert_int_equal(cJSON_GetArraySize(nested ?
		    cJSON_GetObjectItemCaseSensitive(j, "x") : j), n);
	} else {
		char want[64];

		assert_null(j);
		snprintf(want, sizeof(want), "duplicate key \"k%d\"", dup_of);
		assert_string_equal(err, want);
	}
	cJSON_Delete(j);
	buf_free(&b);
}

static void
test_small_objects(void **state)
{
	(void)state;
	expect(1, -1, 0);
	expect(1, 0, 0);
	expect(31, -1, 0);
	expect(31, 0, 0);
	expect(31, 30, 1);
}

static void
test_large_objects(void **state)
{
	(void)state;
	expect(33, -1, 0);
	expect(33, 0, 0);
	expect(20000, -1, 0);
	expect(20000, 0, 0);
	expect(20000, 12345, 0);
	expect(20000, 19999, 1);
}

static void
test_dup_keys_differing_late(void **state)
{
	static const char *const body =
	    "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,"
	    "\"i\":9,\"j\":10,\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,"
	    "\"p\":16,\"q\":17,\"r\":18,\"s\":19,\"t\":20,\"u\":21,\"v\":22,"
	    "\"w\":23,\"x\":24,\"y\":25,\"z\":26,\"aa\":27,\"ab\":28,\"ac\":29,"
	    "\"ad\":30,\"ae\":31,\"af\":32,\"ag\":33,\"abc\":34,\"abd\":35}";
	char err[128];
	cJSON *j;

	(void)state;
	/* Keys sharing prefixes are distinct. */
	j = json_parse_strict(body, strlen(body), 4, err, sizeof(err));
	assert_non_null(j);
	cJSON_Delete(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_objects),
		cmocka_unit_test(test_large_objects),
		cmocka_unit_test(test_dup_keys_differing_late),
	};

	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
