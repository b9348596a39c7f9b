/*
 * util/json: duplicate keys are refused in objects of every size (large
 * objects take the sorted path of json_parse_strict); json_print gives
 * plain malloc memory; the request-scoped arena (trees made in a scope are
 * usable until its end, frees in it are no-ops, memory from outside is
 * still freed, nested scopes, an arena pointer freed after its scope
 * aborts).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

static const char sample[] = "{\"id\":\"A-1\",\"person\":{\"surname\":"
    "\"Example\",\"aliases\":[{\"surname\":\"X\"},{\"surname\":\"Y\"}]},"
    "\"n\":[1,2,3.5,-4],\"t\":true,\"z\":null}";

static void
test_print_is_malloc_memory(void **state)
{
	cJSON *j;
	char *p;
	size_t i;
	buf_t big = BUF_INIT;

	(void)state;
	j = cJSON_Parse(sample);
	assert_non_null(j);
	p = json_print(j);
	assert_non_null(p);
	assert_string_equal(p, sample);
	free(p);		/* plain free, not cJSON_free */
	cJSON_Delete(j);
	/* Larger than the first try (4 KiB): the retry path. */
	buf_puts(&big, "[");
	for (i = 0; i < 3000; i++)
		buf_printf(&big, "%s\"item-%zu\"", i ? "," : "", i);
	buf_puts(&big, "]");
	j = cJSON_Parse(big.data);
	assert_non_null(j);
	p = json_print(j);
	assert_non_null(p);
	assert_string_equal(p, big.data);
	free(p);
	cJSON_Delete(j);
	buf_free(&big);
}

static void
test_arena_scopes(void **state)
{
	cJSON *outside, *in1, *in2, *dup;
	char *p;
	int round;

	(void)state;
	json_arena_init();
	outside = cJSON_Parse(sample);	/* malloc: outlives the scopes */
	assert_non_null(outside);
	for (round = 0; round < 200; round++) {
		json_arena_begin();
		in1 = json_parse_strict(sample, strlen(sample), 8, NULL, 0);
		assert_non_null(in1);
		json_arena_begin();	/* nested: still the same scope */
		dup = cJSON_Duplicate(in1, 1);
		assert_non_null(dup);
		json_arena_end();
		/* The inner end must not have reset anything. */
		p = json_print(dup);
		assert_non_null(p);
		assert_string_equal(p, sample);
		free(p);
		cJSON_Delete(dup);
		cJSON_Delete(in1);
		/* A tree from before the scope is freed for real inside it. */
		if (round == 100) {
			cJSON_Delete(outside);
			outside = NULL;
		}
		/* Large values go to malloc and are freed normally. */
		in2 = cJSON_CreateString("x");
		assert_non_null(in2);
		{
			char big[6000];

			memset(big, 'a', sizeof(big) - 1);
			big[sizeof(big) - 1] = '\0';
			assert_non_null(cJSON_SetValuestring(in2, big));
		}
		cJSON_Delete(in2);
		json_arena_end();
	}
	assert_null(outside);
	json_arena_release();
}

static void
test_arena_escape_aborts(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cJSON *leaked;

		json_arena_init();
		json_arena_begin();
		leaked = cJSON_Parse(sample);
		json_arena_end();
		/* Freeing it now is the programmer error the arena refuses. */
		cJSON_Delete(leaked);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	/* abort() in a normal build; in an AddressSanitizer build the read
	 * of the poisoned tree is reported first (a report on stderr and a
	 * failing exit, or SIGABRT with abort_on_error). */
	assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (WIFSIGNALED(st))
		assert_int_equal(WTERMSIG(st), SIGABRT);
}

/* json_append_displayable makes want of in, the same JSON value. */
static void
expect_displayable(const char *in, const char *want)
{
	buf_t out = BUF_INIT;
	cJSON *a, *b;
	char why[128];

	assert_int_equal(json_append_displayable(&out, in, strlen(in)), 0);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	a = json_parse_strict(in, strlen(in), 8, why, sizeof(why));
	b = json_parse_strict(out.data, out.len, 8, why, sizeof(why));
	assert_non_null(a);
	assert_non_null(b);
	assert_true(cJSON_Compare(a, b, 1));
	cJSON_Delete(a);
	cJSON_Delete(b);
	buf_free(&out);
}

/* JSON text from elsewhere, shown to a reader: DEL and the C1 controls,
 * which a JSON string may hold raw, become \u escapes (a terminal could
 * take U+009B for the start of a control sequence); other UTF-8, such as
 * U+00A0 (c2 a0) and U+00E9, is kept, and the result parses to the same
 * value. */
static void
test_displayable(void **state)
{
	static const char in[] = "{\"a\":\"x\x7fy\xc2\x9b" "2J\xc2\x80\xc2\x9f"
	    "\xc2\xa0\xc3\xa9\"}";
	static const char want[] = "{\"a\":\"x\\u007fy\\u009b2J\\u0080\\u009f"
	    "\xc2\xa0\xc3\xa9\"}";
	buf_t out = BUF_INIT;

	(void)state;
	expect_displayable(in, want);
	/* Nothing to escape: the same bytes. */
	assert_int_equal(json_append_displayable(&out, "{\"b\":1}", 7), 0);
	assert_int_equal(out.len, 7);
	assert_memory_equal(out.data, "{\"b\":1}", 7);
	buf_free(&out);
}

/* JSON lets tab, CR and LF stand raw as white space between tokens (never
 * in a string): an audit entry whose bytes hold a CR would move the
 * terminal's cursor back over what was printed before it, and hide it;
 * an LF would make one entry look like two lines.  Shown as spaces: the
 * same JSON value, one line. */
static void
test_displayable_whitespace(void **state)
{
	static const char in[] = "{\"seq\":5,\"op\":\"erase\",\r"
	    "\"pad\":\"              \"\n,\t\"a\":\"\\r\"}";
	static const char want[] = "{\"seq\":5,\"op\":\"erase\", "
	    "\"pad\":\"              \" , \"a\":\"\\r\"}";
	buf_t out = BUF_INIT;
	cJSON *a, *b;
	char why[128];

	(void)state;
	a = json_parse_strict(in, strlen(in), 8, why, sizeof(why));
	assert_non_null(a);
	assert_int_equal(json_append_displayable(&out, in, strlen(in)), 0);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	assert_null(memchr(out.data, '\r', out.len));
	assert_null(memchr(out.data, '\n', out.len));
	b = json_parse_strict(out.data, out.len, 8, why, sizeof(why));
	assert_non_null(b);
	assert_true(cJSON_Compare(a, b, 1));
	cJSON_Delete(a);
	cJSON_Delete(b);
	buf_free(&out);
}

/* Bidirectional controls and the line and paragraph separators, which a
 * JSON string may hold raw, are shown as \u escapes: raw, U+202E would
 * have a terminal show "\"deifirev\"" as "\"verified\"" and U+2028 can
 * break a line.  Characters beside them in the same blocks (U+2027,
 * U+202F, U+2065, U+206A, U+061B) are kept, and so is a truncated
 * sequence at the end. */
static void
test_displayable_bidi(void **state)
{
	static const char in[] = "{\"a\":\"\xe2\x80\xae" "deifirev\","
	    "\"b\":\"\xe2\x81\xa6x\xe2\x81\xa9\xd8\x9c\xe2\x80\x8e"
	    "\xe2\x80\x8f\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaa\","
	    "\"c\":\"\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa"
	    "\xd8\x9b\"}";
	static const char want[] = "{\"a\":\"\\u202edeifirev\","
	    "\"b\":\"\\u2066x\\u2069\\u061c\\u200e\\u200f\\u2028\\u2029"
	    "\\u202a\",\"c\":\"\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5"
	    "\xe2\x81\xaa\xd8\x9b\"}";
	buf_t out = BUF_INIT;
	unsigned cp = 0;

	(void)state;
	expect_displayable(in, want);
	assert_int_equal(json_utf8_hidden((const unsigned char *)
	    "\xe2\x80\xae", 2, &cp), 0);
	assert_int_equal(json_utf8_hidden((const unsigned char *)
	    "\xe2\x81\xa9", 3, &cp), 3);
	assert_int_equal(cp, 0x2069);
	assert_int_equal(json_append_displayable(&out, "\"\xe2\x80", 3), 0);
	assert_int_equal(out.len, 3);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_displayable),
		cmocka_unit_test(test_displayable_whitespace),
		cmocka_unit_test(test_displayable_bidi),
		cmocka_unit_test(test_small_objects),
		cmocka_unit_test(test_print_is_malloc_memory),
		cmocka_unit_test(test_arena_scopes),
		cmocka_unit_test(test_arena_escape_aborts),
		cmocka_unit_test(test_large_objects),
		cmocka_unit_test(test_dup_keys_differing_late),
	};

	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
