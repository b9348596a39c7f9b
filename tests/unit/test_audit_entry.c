/* Unit tests for gateway/audit_entry: the exact leaf bytes, escaping,
 * omission of absent members, refusals, deep copies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <string.h>

#include "gateway/audit_entry.h"
#include "util/buf.h"
#include "util/json.h"

static const char *const fields[] = { "person.surname", "addresses[0].town" };
static const char *const withheld[] = { "health" };
static const char *const rules[] = { "r-police-read", "r-default" };

static audit_entry_t
full_entry(void)
{
	audit_entry_t e;

	memset(&e, 0, sizeof(e));
	e.op = "disclose";
	e.request_id = "req-1";
	e.actor_id = "urn:visor:norfolk:agency:police";
	e.actor_cert = "ab01";
	e.actor_person = "PC 123";
	e.record = "NFK-0001";
	e.version = 3;
	e.purpose = "risk-management";
	e.justification = "MAPPA level 2 meeting";
	e.recipient = "urn:visor:norfolk:agency:police";
	e.fields = fields;
	e.n_fields = 2;
	e.withheld = withheld;
	e.n_withheld = 1;
	e.policy = "cafe";
	e.rules = rules;
	e.n_rules = 2;
	e.result = "ok";
	e.reason = "permitted";
	e.digest = "00ff";
	e.transfer = "T-1";
	e.signature = "MEUCIQ+/=";
	return e;
}

static void
test_known_answer(void **state)
{
	audit_entry_t e = full_entry();
	buf_t b = BUF_INIT;
	const char *want =
	    "{\"seq\":7,\"time\":\"2026-11-24T08:00:00.123Z\","
	    "\"request_id\":\"req-1\",\"op\":\"disclose\","
	    "\"actor\":{\"id\":\"urn:visor:norfolk:agency:police\","
	    "\"cert\":\"ab01\",\"person\":\"PC 123\"},"
	    "\"record\":\"NFK-0001\",\"version\":3,"
	    "\"purpose\":\"risk-management\","
	    "\"justification\":\"MAPPA level 2 meeting\","
	    "\"recipient\":\"urn:visor:norfolk:agency:police\","
	    "\"fields\":[\"person.surname\",\"addresses[0].town\"],"
	    "\"withheld\":[\"health\"],\"policy\":\"cafe\","
	    "\"rules\":[\"r-police-read\",\"r-default\"],\"result\":\"ok\","
	    "\"reason\":\"permitted\",\"digest\":\"00ff\",\"transfer\":\"T-1\","
	    "\"signature\":\"MEUCIQ+/=\"}";

	(void)state;
	assert_int_equal(audit_entry_encode(&e, 7, "2026-11-24T08:00:00.123Z",
	    3, &b), 0);
	assert_string_equal(b.data, want);
	assert_int_equal(b.len, strlen(want));
	buf_free(&b);
}

static void
test_minimal_and_deterministic(void **state)
{
	audit_entry_t e;
	buf_t a = BUF_INIT, b = BUF_INIT;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.op = "auth-fail";
	e.actor_id = "-";
	e.result = "refused";
	assert_int_equal(audit_entry_encode(&e, 0, "2026-01-01T00:00:00.000Z",
	    AUDIT_VERSION_NONE, &a), 0);
	assert_string_equal(a.data, "{\"seq\":0,\"time\":\"2026-01-01T00:00:"
	    "00.000Z\",\"op\":\"auth-fail\",\"actor\":{\"id\":\"-\"},"
	    "\"result\":\"refused\"}");
	assert_int_equal(audit_entry_encode(&e, 0, "2026-01-01T00:00:00.000Z",
	    AUDIT_VERSION_NONE, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	buf_free(&a);
	buf_free(&b);
}

static void
test_escaping(void **state)
{
	audit_entry_t e;
	buf_t b = BUF_INIT;
	cJSON *j;
	char err[100];

	(void)state;
	memset(&e, 0, sizeof(e));
	e.op = "consult";
	e.actor_id = "urn:x";
	e.justification = "a\"b\\c\n\x01\x1f\xc3\xa9/";
	e.result = "ok";
	assert_int_equal(audit_entry_encode(&e, 1, "t", 0, &b), 0);
	assert_non_null(strstr(b.data, "\"justification\":\"a\\\"b\\\\c"
	    "\\u000a\\u0001\\u001f\xc3\xa9/\""));
	/* And it is valid JSON that decodes back to the same text. */
	j = json_parse_strict(b.data, b.len, 8, err, sizeof(err));
	assert_non_null(j);
	assert_string_equal(json_get_str(j, "justification"), e.justification);
	cJSON_Delete(j);
	buf_free(&b);
}

static void
test_refusals(void **state)
{
	audit_entry_t e = full_entry();
	buf_t b = BUF_INIT;
	const char *bad_list[] = { "ok", NULL };

	(void)state;
	buf_puts(&b, "keep");
	/* Unresolved version. */
	assert_int_equal(audit_entry_encode(&e, 1, "t", AUDIT_VERSION_ASSIGNED,
	    &b), -1);
	assert_string_equal(b.data, "keep");
	/* Invalid UTF-8 in a string member. */
	e.reason = "\xff\xfe";
	assert_int_equal(audit_entry_encode(&e, 1, "t", 1, &b), -1);
	assert_string_equal(b.data, "keep");
	e = full_entry();
	/* Missing required members. */
	e.op = NULL;
	assert_int_equal(audit_entry_encode(&e, 1, "t", 1, &b), -1);
	e = full_entry();
	e.actor_id = NULL;
	assert_int_equal(audit_entry_encode(&e, 1, "t", 1, &b), -1);
	e = full_entry();
	e.result = NULL;
	assert_int_equal(audit_entry_encode(&e, 1, "t", 1, &b), -1);
	assert_int_equal(audit_entry_encode(NULL, 1, "t", 1, &b), -1);
	e = full_entry();
	assert_int_equal(audit_entry_encode(&e, 1, NULL, 1, &b), -1);
	/* A NULL inside a list, and a count without a list. */
	e.fields = bad_list;
	e.n_fields = 2;
	assert_int_equal(audit_entry_encode(&e, 1, "t", 1, &b), -1);
	e.fields = NULL;
	assert_int_equal(audit_entry_encode(&e, 1, "t", 1, &b), -1);
	assert_string_equal(b.data, "keep");
	/* A full buffer. */
	buf_free(&b);
	buf_init(&b, 20);
	e = full_entry();
	assert_int_equal(audit_entry_encode(&e, 1, "t", 1, &b), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void
test_parts(void **state)
{
	audit_entry_t e = full_entry();
	buf_t head = BUF_INIT, tail = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
	uint64_t versions[] = { AUDIT_VERSION_NONE, 1, UINT64_MAX - 1 };
	size_t i;

	(void)state;
	assert_int_equal(audit_entry_encode_parts(&e, &head, &tail), 0);
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		buf_reset(&a);
		buf_reset(&b);
		assert_int_equal(audit_entry_encode(&e, UINT64_MAX, "T",
		    versions[i], &a), 0);
		assert_int_equal(audit_entry_assemble(UINT64_MAX, "T", head.data,
		    head.len, versions[i], tail.data, tail.len, &b), 0);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
	}
	assert_non_null(strstr(a.data, "\"seq\":18446744073709551615,"));
	assert_non_null(strstr(a.data, "\"version\":18446744073709551614,"));
	/* The writer must resolve the version first. */
	assert_int_equal(audit_entry_assemble(1, "T", head.data, head.len,
	    AUDIT_VERSION_ASSIGNED, tail.data, tail.len, &b), -1);
	assert_int_equal(audit_entry_assemble(1, NULL, head.data, head.len, 1,
	    tail.data, tail.len, &b), -1);
	/* A bad entry leaves both parts as they were. */
	{
		size_t hl = head.len, tl = tail.len;

		e.purpose = "\xc0\x80";	/* overlong encoding */
		assert_int_equal(audit_entry_encode_parts(&e, &head, &tail),
		    -1);
		assert_int_equal(head.len, hl);
		assert_int_equal(tail.len, tl);
	}
	buf_free(&head);
	buf_free(&tail);
	buf_free(&a);
	buf_free(&b);
}

/* An entry whose element paths would not fit in a leaf lists schema paths
 * instead; one that fits keeps its element paths. */
static void
test_schema_paths(void **state)
{
	static char names[4001][40];
	const char *w[4001];
	const char *f[] = { "addresses[1].town", "a[x]", "a[]", "b[1][22]",
	    "c[3", "d[0]" };
	audit_entry_t e = full_entry();
	buf_t out = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < 4000; i++) {
		snprintf(names[i], sizeof(names[i]), "intelligence[%zu].text", i);
		w[i] = names[i];
	}
	snprintf(names[4000], sizeof(names[4000]), "health");
	w[4000] = names[4000];
	e.fields = f;
	e.n_fields = 6;
	e.withheld = w;
	/* Small: element paths kept. */
	e.n_withheld = 3;
	assert_int_equal(audit_entry_encode(&e, 1, "T", 3, &out), 0);
	assert_non_null(strstr(out.data, "\"withheld\":[\"intelligence[0].text\","
	    "\"intelligence[1].text\",\"intelligence[2].text\"]"));
	assert_non_null(strstr(out.data, "\"fields\":[\"addresses[1].town\","));
	assert_null(strstr(out.data, "\"paths\""));
	/* About 100 KB of element paths (over the list bound too): schema
	 * paths, distinct, in order of first appearance, in both lists. */
	buf_reset(&out);
	e.withheld = w + 1;
	e.n_withheld = 4000;
	assert_int_equal(audit_entry_encode(&e, 1, "T", 3, &out), 0);
	assert_non_null(strstr(out.data, "\"withheld\":[\"intelligence[].text\","
	    "\"health\"],\"paths\":\"schema\","));
	assert_non_null(strstr(out.data, "\"fields\":[\"addresses[].town\","
	    "\"a[x]\",\"a[]\",\"b[][]\",\"c[3\",\"d[]\"]"));
	assert_true(out.len < 1024);
	/* Just over the bound (and under the list bound): schema paths. */
	buf_reset(&out);
	e.withheld = w;
	e.n_withheld = 2600;
	assert_int_equal(audit_entry_encode(&e, 1, "T", 3, &out), 0);
	assert_non_null(strstr(out.data, "\"withheld\":[\"intelligence[].text\"]"));
	/* Just under it: element paths. */
	buf_reset(&out);
	e.n_withheld = 2400;
	assert_int_equal(audit_entry_encode(&e, 1, "T", 3, &out), 0);
	assert_non_null(strstr(out.data, "\"intelligence[2399].text\"]"));
	assert_true(out.len <= AUDIT_ENTRY_MAX_PARTS + 128);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_minimal_and_deterministic),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_schema_paths),
	};

	return cmocka_run_group_tests_name("audit_entry", tests, NULL, NULL);
}
