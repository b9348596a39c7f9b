/* Unit tests for policy/record_schema: validation errors with field paths,
 * RFC 7396 merge patch (the examples of its appendix A), changed paths and
 * patch paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/record_schema.h"
#include "util/json.h"

static cJSON *
parse(const char *s)
{
	char err[128];
	cJSON *j = json_parse_strict(s, strlen(s), 32, err, sizeof(err));

	if (j == NULL)
		fail_msg("bad test JSON (%s): %s", err, s);
	return j;
}

#define BASE "\"id\":\"NFK-1\",\"managing_area\":\"norfolk\",\"category\":1,\"level\":1"

/* Validate BASE plus extra members; return 0/-1 and the message. */
static int
check(const char *extra, char *err, size_t errlen)
{
	char text[8192];
	cJSON *j;
	int rc;

	snprintf(text, sizeof(text), "{" BASE "%s%s}", extra[0] ? "," : "", extra);
	j = parse(text);
	rc = record_validate(j, err, errlen);
	cJSON_Delete(j);
	return rc;
}

static void
expect_error(const char *extra, const char *msg)
{
	char err[256];

	if (check(extra, err, sizeof(err)) != -1)
		fail_msg("accepted: %s", extra);
	if (strcmp(err, msg) != 0)
		fail_msg("for %s: got \"%s\", want \"%s\"", extra, err, msg);
}

static void
expect_ok(const char *extra)
{
	char err[256];

	if (check(extra, err, sizeof(err)) != 0)
		fail_msg("rejected %s: %s", extra, err);
}

static void
test_valid_records(void **state)
{
	char err[256];
	char *data;
	size_t len;
	cJSON *j;
	FILE *f;

	(void)state;
	expect_ok("");
	expect_ok("\"version\":7");
	expect_ok("\"person\":{\"dob\":\"2000-02-29\"}");
	expect_ok("\"notification\":{\"until\":\"indefinite\",\"required\":false}");
	expect_ok("\"addresses\":[]");
	f = fopen("tests/data/record-full.json", "rb");
	if (f == NULL) {
		const char *src = getenv("VISOR_SRC");
		char path[1024];

		snprintf(path, sizeof(path), "%s/tests/data/record-full.json",
		    src ? src : ".");
		f = fopen(path, "rb");
	}
	assert_non_null(f);
	data = calloc(1, 16384);
	assert_non_null(data);
	len = fread(data, 1, 16383, f);
	fclose(f);
	j = json_parse_strict(data, len, 32, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(record_validate(j, err, sizeof(err)), 0);
	cJSON_Delete(j);
	free(data);
}

static void
test_top_level_errors(void **state)
{
	char err[256];
	cJSON *j;

	(void)state;
	j = parse("[1]");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "record: not an object");
	cJSON_Delete(j);
	assert_int_equal(record_validate(NULL, err, sizeof(err)), -1);
	j = parse("{\"managing_area\":\"norfolk\",\"category\":1,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "id: missing");
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"category\":1,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "managing_area: missing");
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"managing_area\":\"x\",\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "category: missing");
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"managing_area\":\"x\",\"category\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "level: missing");
	cJSON_Delete(j);
	/* a zero-length err buffer is allowed */
	j = parse("{}");
	assert_int_equal(record_validate(j, err, 0), -1);
	cJSON_Delete(j);

	expect_error("\"nickname\":\"x\"", "nickname: unknown field");
	expect_error("\"person\":{\"shoe_size\":9}", "person.shoe_size: unknown field");
	expect_error("\"addresses\":[{\"town\":\"A\"},{\"town\":\"B\",\"flat\":\"2\"}]",
	    "addresses[1].flat: unknown field");
}

static void
test_core_errors(void **state)
{
	char err[256];
	cJSON *j;

	(void)state;
	j = parse("{\"id\":\"ab-1\",\"managing_area\":\"norfolk\",\"category\":1,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "id: does not match [A-Z0-9-]{3,64}");
	cJSON_Delete(j);
	j = parse("{\"id\":\"AB\",\"managing_area\":\"norfolk\",\"category\":1,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	cJSON_Delete(j);
	j = parse("{\"id\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
	    "\"managing_area\":\"norfolk\",\"category\":1,\"level\":1}");	/* 65 */
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	cJSON_Delete(j);
	j = parse("{\"id\":7,\"managing_area\":\"norfolk\",\"category\":1,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "id: not a string");
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"managing_area\":\"Norfolk\",\"category\":1,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "managing_area: does not match [a-z0-9-]{1,32}");
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"managing_area\":1,\"category\":1,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "managing_area: not a string");
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"managing_area\":\"n\",\"category\":5,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "category: out of range 1..4");
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"managing_area\":\"n\",\"category\":0,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"managing_area\":\"n\",\"category\":2.5,\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "category: not an integer");
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"managing_area\":\"n\",\"category\":\"2\",\"level\":1}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "category: not a number");
	cJSON_Delete(j);
	j = parse("{\"id\":\"ABC\",\"managing_area\":\"n\",\"category\":1,\"level\":4}");
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "level: out of range 1..3");
	cJSON_Delete(j);
	expect_error("\"version\":0", "version: out of range 1..9007199254740992");
	expect_error("\"version\":-3", "version: out of range 1..9007199254740992");
	expect_error("\"version\":1.5", "version: not an integer");
	expect_error("\"version\":\"3\"", "version: not a number");
	expect_error("\"version\":1e300", "version: not an integer");
}

static void
test_field_errors(void **state)
{
	char big[5000];

	(void)state;
	expect_error("\"person\":[]", "person: not an object");
	expect_error("\"person\":{\"surname\":5}", "person.surname: not a string");
	expect_error("\"person\":{\"surname\":\"\"}", "person.surname: empty string");
	snprintf(big, sizeof(big), "\"person\":{\"surname\":\"%0101d\"}", 0);
	expect_error(big, "person.surname: longer than 100 bytes");
	expect_error("\"person\":{\"dob\":\"2023-02-29\"}", "person.dob: not a date (YYYY-MM-DD)");
	expect_error("\"person\":{\"dob\":\"1900-02-29\"}", "person.dob: not a date (YYYY-MM-DD)");
	expect_error("\"person\":{\"dob\":\"2023-13-01\"}", "person.dob: not a date (YYYY-MM-DD)");
	expect_error("\"person\":{\"dob\":\"2023-04-31\"}", "person.dob: not a date (YYYY-MM-DD)");
	expect_error("\"person\":{\"dob\":\"1799-01-01\"}", "person.dob: not a date (YYYY-MM-DD)");
	expect_error("\"person\":{\"dob\":\"2023-1-01\"}", "person.dob: not a date (YYYY-MM-DD)");
	expect_error("\"person\":{\"dob\":\"2023/01/01\"}", "person.dob: not a date (YYYY-MM-DD)");
	expect_error("\"person\":{\"dob\":\"2023-01-00\"}", "person.dob: not a date (YYYY-MM-DD)");
	expect_error("\"person\":{\"dob\":19800101}", "person.dob: not a string");
	expect_error("\"person\":{\"aliases\":{}}", "person.aliases: not an array");
	expect_error("\"person\":{\"aliases\":[\"x\"]}", "person.aliases[0]: not an object");
	expect_error("\"person\":{\"aliases\":[{\"surname\":\"A\"},{\"surname\":1}]}",
	    "person.aliases[1].surname: not a string");
	expect_error("\"addresses\":[{\"postcode\":\"NR1 1AA\"},{\"postcode\":\"NR1 1AA\"},{\"postcode\":5}]",
	    "addresses[2].postcode: not a string");
	expect_error("\"addresses\":[{\"postcode\":\"nr1 1aa\"}]",
	    "addresses[0].postcode: not a UK postcode (outward code, one optional space, inward code: NR1 1AA)");
	expect_error("\"addresses\":[{\"postcode\":\"NR1  1AA\"}]",
	    "addresses[0].postcode: not a UK postcode (outward code, one optional space, inward code: NR1 1AA)");
	expect_error("\"addresses\":[{\"postcode\":\"NR1\"}]",
	    "addresses[0].postcode: not a UK postcode (outward code, one optional space, inward code: NR1 1AA)");
	/* The whole shape is checked: postcode-to-district keeps what is
	 * before the inward code, so any other shape (capitals and digits
	 * were enough) could let more than the district out. */
	{
		static const char *const bad[] = { "NR21AAXYZ", "ABCDEFGH",
		    "NR1 AAA", "1R1 1AA", "NR1 1A1", "NR123 1AA", "N 1AA",
		    "NRR1 1AA", "NR1A1 1AA", "NR 1AA", "NR1 1AAB", "NR1 11A",
		    "NR1AA 1AA", "N1AA 1AA" };
		static const char *const good[] = { "NR1 1AA", "NR11AA",
		    "IP22 9ZZ", "IP229ZZ", "W1A 1AA", "EC1A 1BB", "M1 1AE",
		    "B33 8TH", "CR2 6XH", "DN55 1PT", "M11AE" };
		char extra[120], want[160];
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(extra, sizeof(extra),
			    "\"addresses\":[{\"postcode\":\"%s\"}]", bad[i]);
			snprintf(want, sizeof(want), "addresses[0].postcode: not a "
			    "UK postcode (outward code, one optional space, "
			    "inward code: NR1 1AA)");
			expect_error(extra, want);
		}
		for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			snprintf(extra, sizeof(extra),
			    "\"addresses\":[{\"postcode\":\"%s\"}]", good[i]);
			expect_ok(extra);
		}
	}
	expect_error("\"addresses\":[{\"type\":\"castle\"}]",
	    "addresses[0].type: not one of the allowed values");
	expect_error("\"addresses\":[{\"type\":1}]", "addresses[0].type: not a string");
	expect_error("\"risk\":{\"rosh\":\"extreme\"}", "risk.rosh: not one of the allowed values");
	expect_error("\"risk\":{\"tool\":\"oasys\"}", "risk.tool: not one of the allowed values");
	expect_error("\"risk\":{\"factors\":\"one\"}", "risk.factors: not an array");
	expect_error("\"risk\":{\"factors\":[\"a\",2]}", "risk.factors[1]: not a string");
	expect_error("\"risk\":{\"factors\":[\"\"]}", "risk.factors[0]: empty string");
	expect_error("\"orders\":[{\"type\":\"ASBO\"}]", "orders[0].type: not one of the allowed values");
	expect_error("\"orders\":[{\"prohibitions\":[null]}]", "orders[0].prohibitions[0]: not a string");
	expect_error("\"notification\":{\"required\":\"yes\"}", "notification.required: not a boolean");
	expect_error("\"notification\":{\"until\":\"forever\"}",
	    "notification.until: not a date (YYYY-MM-DD) or \"indefinite\"");
	expect_error("\"notification\":{\"until\":3}", "notification.until: not a string");
	expect_error("\"em\":{\"type\":\"gps\"}", "em.type: not one of the allowed values");
	expect_error("\"em\":{\"active\":1}", "em.active: not a boolean");
	expect_error("\"intelligence\":[{\"handling\":\"secret\"}]",
	    "intelligence[0].handling: not one of the allowed values");
	expect_error("\"health\":{\"notes\":[1]}", "health.notes[0]: not a string");
	expect_error("\"vehicles\":[{\"colour\":\"blue\",\"wheels\":4}]", "vehicles[0].wheels: unknown field");
}

static void
test_size_limits(void **state)
{
	char *text, *p;
	char err[256];
	cJSON *j;
	int i;

	(void)state;
	/* 51 addresses: one too many */
	text = malloc(65536);
	assert_non_null(text);
	p = text + snprintf(text, 65536, "{" BASE ",\"addresses\":[");
	for (i = 0; i < 51; i++)
		p += snprintf(p, 64, "%s{\"town\":\"T\"}", i ? "," : "");
	snprintf(p, 8, "]}");
	j = parse(text);
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "addresses: more than 50 elements");
	cJSON_Delete(j);
	/* a text item of RECORD_TEXT_ITEM_MAX + 1 bytes */
	p = text + snprintf(text, 65536, "{" BASE ",\"associates\":[\"");
	memset(p, 'x', RECORD_TEXT_ITEM_MAX + 1);
	snprintf(p + RECORD_TEXT_ITEM_MAX + 1, 8, "\"]}");
	j = parse(text);
	assert_int_equal(record_validate(j, err, sizeof(err)), -1);
	assert_string_equal(err, "associates[0]: longer than 2000 bytes");
	cJSON_Delete(j);
	free(text);
}

static void
test_schema_table(void **state)
{
	const record_field_t *f;
	size_t n, i;
	int a, d;

	(void)state;
	f = record_fields(&n);
	assert_true(n > 60);
	for (i = 0; i < n; i++)
		assert_true(f[i].parent < (int)i);
	assert_int_equal(record_group_from_name("health"), RECORD_GROUP_HEALTH);
	assert_int_equal(record_group_from_name("nonsense"), -1);
	assert_int_equal(record_group_from_name(NULL), -1);
	assert_string_equal(record_group_name(RECORD_GROUP_INTELLIGENCE), "intelligence");
	assert_null(record_group_name(RECORD_GROUP_COUNT));
	a = record_field_find("orders");
	d = record_field_find("orders[].prohibitions");
	assert_true(a >= 0 && d >= 0);
	assert_true(record_field_covers((size_t)a, (size_t)d));
	assert_false(record_field_covers((size_t)d, (size_t)a));
	assert_false(record_field_is_leaf((size_t)a));
	assert_true(record_field_is_leaf((size_t)d));
	assert_int_equal(f[d].group, RECORD_GROUP_LEGAL);
	assert_int_equal(record_field_find("orders[].nothing"), -1);
	assert_int_equal(record_field_find(NULL), -1);
	/* Every path finds its own field, and nothing near it does. */
	for (i = 0; i < n; i++) {
		char p[96];

		assert_int_equal(record_field_find(f[i].path), (int)i);
		snprintf(p, sizeof(p), "%s.", f[i].path);
		assert_int_equal(record_field_find(p), -1);
		snprintf(p, sizeof(p), "%.*s", (int)strlen(f[i].path) - 1,
		    f[i].path);
		assert_true(record_field_find(p) == -1 ||
		    strcmp(f[record_field_find(p)].path, p) == 0);
	}
	assert_int_equal(record_field_find(""), -1);
	assert_int_equal(record_field_find("zzz"), -1);
	/* A field's subtree is the range right after it: exactly the fields
	 * it covers (the write check walks the range instead of the table). */
	for (i = 0; i < n; i++) {
		size_t j, end = record_field_subtree_end(i);

		assert_true(end > i && end <= n);
		for (j = 0; j < n; j++)
			assert_int_equal(record_field_covers(i, j),
			    j >= i && j < end);
	}
	assert_int_equal(record_field_subtree_end(n), 0);
	assert_int_equal(record_field_subtree_end((size_t)a),
	    (size_t)record_field_find("orders[].prohibitions") + 1);
	assert_true(record_date_valid("2024-02-29"));
	assert_true(record_date_valid("2000-02-29"));
	assert_false(record_date_valid("2100-02-29"));
	assert_false(record_date_valid(NULL));
}

static void
expect_patch(const char *target, const char *patch, const char *result)
{
	cJSON *t = target ? parse(target) : NULL, *p = parse(patch), *r, *want;

	r = record_merge_patch(t, p);
	want = parse(result);
	if (!cJSON_Compare(r, want, 1)) {
		char *got = cJSON_PrintUnformatted(r);

		fail_msg("%s + %s = %s, want %s", target, patch, got, result);
	}
	/* the inputs are not modified */
	if (target) {
		cJSON *again = parse(target);

		assert_true(cJSON_Compare(again, t, 1));
		cJSON_Delete(again);
	}
	cJSON_Delete(t);
	cJSON_Delete(p);
	cJSON_Delete(r);
	cJSON_Delete(want);
}

static void
test_merge_patch_rfc7396(void **state)
{
	(void)state;
	/* RFC 7396 appendix A */
	expect_patch("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	expect_patch("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
	expect_patch("{\"a\":\"b\"}", "{\"a\":null}", "{}");
	expect_patch("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
	expect_patch("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	expect_patch("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
	expect_patch("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
	    "{\"a\":{\"b\":\"d\"}}");
	expect_patch("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
	expect_patch("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
	expect_patch("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
	expect_patch("{\"a\":\"foo\"}", "null", "null");
	expect_patch("{\"a\":\"foo\"}", "\"bar\"", "\"bar\"");
	expect_patch("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
	expect_patch("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
	expect_patch("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
	/* absent target */
	expect_patch(NULL, "{\"a\":{\"b\":null,\"c\":1}}", "{\"a\":{\"c\":1}}");
}

static int
has(const record_paths_t *p, const char *path)
{
	size_t i;

	for (i = 0; i < p->count; i++)
		if (strcmp(p->items[i], path) == 0)
			return 1;
	return 0;
}

static void
test_changed_paths(void **state)
{
	cJSON *a, *b;
	record_paths_t *p;

	(void)state;
	a = parse("{" BASE ",\"version\":1,\"person\":{\"surname\":\"A\",\"dob\":\"1990-01-01\"},"
	    "\"addresses\":[{\"town\":\"X\"},{\"town\":\"Y\"}],\"rmp\":{\"summary\":\"s\"}}");
	b = parse("{" BASE ",\"version\":2,\"person\":{\"surname\":\"B\",\"dob\":\"1990-01-01\"},"
	    "\"addresses\":[{\"town\":\"X\"},{\"town\":\"Z\"}],\"health\":{\"notes\":[\"n\"]}}");
	p = record_changed_paths(a, b);
	assert_non_null(p);
	assert_int_equal(p->count, 4);
	assert_true(has(p, "person.surname"));
	assert_true(has(p, "addresses"));	/* arrays whole */
	assert_true(has(p, "rmp.summary"));	/* removed */
	assert_true(has(p, "health.notes"));	/* added */
	assert_false(has(p, "version"));	/* gateway-assigned */
	record_paths_free(p);

	p = record_changed_paths(a, a);
	assert_non_null(p);
	assert_int_equal(p->count, 0);
	record_paths_free(p);

	p = record_changed_paths(NULL, a);	/* creation */
	assert_non_null(p);
	assert_true(has(p, "id"));
	assert_true(has(p, "category"));
	assert_true(has(p, "person.dob"));
	assert_true(has(p, "addresses"));
	assert_false(has(p, "version"));
	assert_int_equal(p->count, 8);
	record_paths_free(p);
	record_paths_free(NULL);
	cJSON_Delete(a);
	cJSON_Delete(b);
}

static void
test_patch_paths(void **state)
{
	char err[256];
	record_paths_t *p;
	cJSON *j;

	(void)state;
	j = parse("{\"person\":{\"surname\":\"X\",\"aliases\":null},\"addresses\":[],"
	    "\"rmp\":null,\"em\":{\"active\":true}}");
	p = record_patch_paths(j, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(p->count, 5);
	assert_true(has(p, "person.surname"));
	assert_true(has(p, "person.aliases"));
	assert_true(has(p, "addresses"));
	assert_true(has(p, "rmp"));
	assert_true(has(p, "em.active"));
	record_paths_free(p);
	cJSON_Delete(j);

	j = parse("{\"person\":{\"surname\":\"X\",\"foo\":1}}");
	assert_null(record_patch_paths(j, err, sizeof(err)));
	assert_string_equal(err, "person.foo: unknown field");
	cJSON_Delete(j);
	j = parse("{\"bar\":1}");
	assert_null(record_patch_paths(j, err, sizeof(err)));
	assert_string_equal(err, "bar: unknown field");
	cJSON_Delete(j);
	j = parse("[1]");
	assert_null(record_patch_paths(j, err, sizeof(err)));
	assert_string_equal(err, "patch: not an object");
	assert_null(record_patch_paths(j, NULL, 0));
	cJSON_Delete(j);
}

/* Empty object fields go, at any depth; empty arrays, members not in the
 * schema and the rest stay. */
static void
test_drop_empty_objects(void **state)
{
	cJSON *j, *want;

	(void)state;
	j = parse("{" BASE ",\"health\":{},\"em\":{\"active\":true},"
	    "\"risk\":{},\"addresses\":[],\"person\":{\"aliases\":[{}]},"
	    "\"shoe\":{}}");
	want = parse("{" BASE ",\"em\":{\"active\":true},\"addresses\":[],"
	    "\"person\":{\"aliases\":[{}]},\"shoe\":{}}");
	record_drop_empty_objects(j);
	assert_true(cJSON_Compare(j, want, 1));
	record_drop_empty_objects(NULL);
	cJSON_Delete(j);
	cJSON_Delete(want);
}

/* rec validated against prior (record_validate_patched); the message. */
static int
check_patched(const char *rec, const char *prior, char *err, size_t errlen)
{
	char a[2048], b[2048];
	cJSON *r, *p;
	int rc;

	snprintf(a, sizeof(a), "{" BASE "%s%s}", rec[0] ? "," : "", rec);
	snprintf(b, sizeof(b), "{" BASE "%s%s}", prior[0] ? "," : "", prior);
	r = parse(a);
	p = parse(b);
	rc = record_validate_patched(r, p, err, errlen);
	cJSON_Delete(r);
	cJSON_Delete(p);
	return rc;
}

/*
 * A value stored under older rules (an old-style postcode) that a patch
 * leaves where it is passes; the same value anywhere it was not, a new
 * one, or one of another field does not, and neither does the shape.
 */
static void
test_validate_patched(void **state)
{
	static const char *const old_pc = "\"addresses\":[{\"type\":\"home\","
	    "\"postcode\":\"NR21AAXYZ\"},{\"type\":\"temporary\","
	    "\"postcode\":\"NR2 1AA\"}]";
	char rec[1024], err[256];

	(void)state;
	/* Without a prior record, strict. */
	assert_int_equal(check(old_pc, err, sizeof(err)), -1);
	assert_string_equal(err, "addresses[0].postcode: not a UK postcode "
	    "(outward code, one optional space, inward code: NR1 1AA)");
	/* Left as stored, by a patch of another group. */
	snprintf(rec, sizeof(rec), "%s,\"risk\":{\"rosh\":\"low\"}", old_pc);
	assert_int_equal(check_patched(rec, old_pc, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	/* A new bad value is refused, also beside the stored one. */
	assert_int_equal(check_patched("\"addresses\":[{\"type\":\"home\","
	    "\"postcode\":\"NR21AAXYZ\"},{\"type\":\"temporary\","
	    "\"postcode\":\"IP11AAQQ\"}]", old_pc, err, sizeof(err)), -1);
	assert_string_equal(err, "addresses[1].postcode: not a UK postcode "
	    "(outward code, one optional space, inward code: NR1 1AA)");
	/* The stored value moved to another index is new input there. */
	assert_int_equal(check_patched("\"addresses\":[{\"type\":\"temporary\","
	    "\"postcode\":\"NR2 1AA\"},{\"type\":\"home\","
	    "\"postcode\":\"NR21AAXYZ\"}]", old_pc, err, sizeof(err)), -1);
	assert_string_equal(err, "addresses[1].postcode: not a UK postcode "
	    "(outward code, one optional space, inward code: NR1 1AA)");
	/* Nor does it pass in another field. */
	assert_int_equal(check_patched("\"addresses\":[{\"type\":\"home\","
	    "\"postcode\":\"NR21AAXYZ\",\"town\":\"\"}]",
	    "\"addresses\":[{\"type\":\"home\",\"postcode\":\"NR21AAXYZ\","
	    "\"town\":\"Diss\"}]", err, sizeof(err)), -1);
	assert_string_equal(err, "addresses[0].town: empty string");
	/* The shape is checked whatever the prior record holds. */
	assert_int_equal(check_patched("\"addresses\":[{\"type\":\"home\","
	    "\"zip\":\"NR21AAXYZ\"}]", "\"addresses\":[{\"type\":\"home\","
	    "\"zip\":\"NR21AAXYZ\"}]", err, sizeof(err)), -1);
	assert_string_equal(err, "addresses[0].zip: unknown field");
	/* A good record passes either way. */
	assert_int_equal(check_patched("\"addresses\":[{\"type\":\"home\","
	    "\"postcode\":\"NR2 1AA\"}]", old_pc, err, sizeof(err)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_records),
		cmocka_unit_test(test_top_level_errors),
		cmocka_unit_test(test_core_errors),
		cmocka_unit_test(test_field_errors),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_schema_table),
		cmocka_unit_test(test_merge_patch_rfc7396),
		cmocka_unit_test(test_changed_paths),
		cmocka_unit_test(test_patch_paths),
		cmocka_unit_test(test_drop_empty_objects),
		cmocka_unit_test(test_validate_patched),
	};

	return cmocka_run_group_tests_name("record_schema", tests, NULL, NULL);
}
