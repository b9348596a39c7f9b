/* Unit tests for policy/policy, policy/mappa_default and policy/policy_cases:
 * every load error, every rule feature, the default MAPPA policy against
 * SPEC section 7's table, ingress, transfer, write and erase, properties,
 * and the default policy's CASES.json through the `visorctl policy test`
 * code path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "policy/mappa_default.h"
#include "policy/policy.h"
#include "policy/policy_cases.h"
#include "policy/record_schema.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"

#define TODAY "2026-11-24"

static cJSON *
parse(const char *s)
{
	char err[128];
	cJSON *j = json_parse_strict(s, strlen(s), 32, err, sizeof(err));

	if (j == NULL)
		fail_msg("bad test JSON (%s): %s", err, s);
	return j;
}

static policy_t *
load(const char *text)
{
	char err[512];
	policy_t *p = policy_load(text, strlen(text), err, sizeof(err));

	if (p == NULL)
		fail_msg("policy rejected: %s", err);
	return p;
}

/* A synthetic record with every group present. */
static cJSON *
full_record(int category, int level)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "{\"id\":\"TST-0001\",\"version\":2,\"managing_area\":\"norfolk\","
	    "\"category\":%d,\"level\":%d,"
	    "\"person\":{\"surname\":\"TESTER\",\"forenames\":\"Syn\",\"dob\":\"1984-07-19\","
	    "\"gender\":\"female\",\"aliases\":[{\"surname\":\"ALT\"}],\"pnc_id\":\"99/1X\","
	    "\"photo_ref\":\"p1\"},"
	    "\"addresses\":[{\"type\":\"home\",\"line1\":\"1 Test St\",\"town\":\"Norwich\","
	    "\"postcode\":\"NR1 9ZZ\",\"from\":\"2025-01-01\"},{\"type\":\"temporary\","
	    "\"town\":\"Diss\",\"postcode\":\"IP229ZZ\"}],"
	    "\"risk\":{\"rosh\":\"high\",\"tool\":\"ARMS\",\"assessed\":\"2026-01-01\","
	    "\"factors\":[\"f1\"],\"people_at_risk\":[\"p1\"]},"
	    "\"rmp\":{\"summary\":\"s\",\"actions\":[\"a\"],\"next_review\":\"2027-01-01\"},"
	    "\"convictions\":[{\"offence\":\"o\",\"date\":\"2010-01-01\"}],"
	    "\"orders\":[{\"type\":\"SHPO\",\"made\":\"2020-01-01\",\"prohibitions\":[\"x\",\"y\"]},"
	    "{\"type\":\"NO\",\"prohibitions\":[\"z\"]}],"
	    "\"notification\":{\"required\":true,\"until\":\"indefinite\"},"
	    "\"licence\":{\"end\":\"2027-01-01\",\"conditions\":[\"c1\"]},"
	    "\"em\":{\"active\":true,\"type\":\"curfew\"},"
	    "\"health\":{\"notes\":[\"h1\"]},"
	    "\"intelligence\":[{\"grade\":\"B2\",\"handling\":\"shareable\",\"text\":\"i1\"},"
	    "{\"grade\":\"C3\",\"handling\":\"police-only\",\"text\":\"i2\"},"
	    "{\"grade\":\"A1\",\"handling\":\"shareable\",\"text\":\"i3\"}],"
	    "\"associates\":[\"as1\"],\"vehicles\":[{\"vrm\":\"AB12CDE\"}],"
	    "\"financial\":[\"fi1\"]}", category, level);
	return parse(text);
}

typedef struct {
	identity_t id;
	const char *clear[4];
	policy_request_t req;
} caller_t;

static policy_request_t *
caller(caller_t *c, policy_op_t op, const char *uri, const char *purpose,
    const char *c1, const char *c2)
{
	char err[128];

	memset(c, 0, sizeof(*c));
	if (identity_parse(uri, strlen(uri), &c->id, err, sizeof(err)) < 0)
		fail_msg("bad uri %s: %s", uri, err);
	if (c1)
		c->clear[c->req.n_clearances++] = c1;
	if (c2)
		c->clear[c->req.n_clearances++] = c2;
	c->req.op = op;
	c->req.caller = &c->id;
	c->req.clearances = c->clear;
	c->req.purpose = purpose;
	c->req.local_area = "norfolk";
	c->req.today = TODAY;
	return &c->req;
}

static int
in(const char *const *l, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(l[i], s) == 0)
			return 1;
	return 0;
}

static int
present(const policy_decision_t *d, const char *path)
{
	return policy_cases_count_path(policy_decision_record(d), path) > 0;
}

/* ---- loading ---- */

static void
expect_load_error(const char *rules, const char *want)
{
	char text[8192], err[512];
	policy_t *p;

	snprintf(text, sizeof(text), "{\"format\":\"visor-policy/1\",\"rules\":[%s]}",
	    rules);
	p = policy_load(text, strlen(text), err, sizeof(err));
	if (p != NULL)
		fail_msg("accepted: %s", rules);
	if (strcmp(err, want) != 0)
		fail_msg("for %s:\n got \"%s\"\nwant \"%s\"", rules, err, want);
}

#define R(body) "{\"id\":\"r1\",\"effect\":\"permit\",\"ops\":[\"read\"]," body "}"

static void
test_load_errors_file(void **state)
{
	char err[512];
	const char *t;
	char *big;

	(void)state;
	t = "{\"format\":";
	assert_null(policy_load(t, strlen(t), err, sizeof(err)));
	assert_non_null(strstr(err, "not valid JSON"));
	t = "[]";
	assert_null(policy_load(t, strlen(t), err, sizeof(err)));
	assert_string_equal(err, "policy: not a JSON object");
	t = "{\"format\":\"visor-policy/1\",\"rules\":[],\"extra\":1}";
	assert_null(policy_load(t, strlen(t), err, sizeof(err)));
	assert_string_equal(err, "extra: unknown key (expected format, name, description, rules)");
	t = "{\"rules\":[]}";
	assert_null(policy_load(t, strlen(t), err, sizeof(err)));
	assert_string_equal(err, "format: must be \"visor-policy/1\"");
	t = "{\"format\":\"visor-policy/2\",\"rules\":[]}";
	assert_null(policy_load(t, strlen(t), err, sizeof(err)));
	t = "{\"format\":\"visor-policy/1\",\"name\":1,\"rules\":[]}";
	assert_null(policy_load(t, strlen(t), err, sizeof(err)));
	assert_non_null(strstr(err, "name: not a string"));
	t = "{\"format\":\"visor-policy/1\",\"description\":[],\"rules\":[]}";
	assert_null(policy_load(t, strlen(t), err, sizeof(err)));
	assert_non_null(strstr(err, "description: not a string"));
	t = "{\"format\":\"visor-policy/1\"}";
	assert_null(policy_load(t, strlen(t), err, sizeof(err)));
	assert_string_equal(err, "rules: missing or not an array");
	t = "{\"format\":\"visor-policy/1\",\"rules\":[],\"rules\":[]}";
	assert_null(policy_load(t, strlen(t), err, sizeof(err)));	/* duplicate key */
	assert_null(policy_load(NULL, 0, err, sizeof(err)));
	assert_null(policy_load(NULL, 0, NULL, 0));
	{
		buf_t b;
		int i;

		/* more than POLICY_RULES_MAX rules */
		buf_init(&b, 0);
		assert_int_equal(buf_puts(&b, "{\"format\":\"visor-policy/1\",\"rules\":["), 0);
		for (i = 0; i <= POLICY_RULES_MAX; i++)
			assert_int_equal(buf_printf(&b, "%s{\"id\":\"r%d\",\"effect\":\"forbid\","
			    "\"ops\":[\"erase\"]}", i ? "," : "", i), 0);
		assert_int_equal(buf_puts(&b, "]}"), 0);
		assert_null(policy_load(b.data, b.len, err, sizeof(err)));
		assert_string_equal(err, "rules: more than 1000 rules");
		/* more than 64 field selectors in one rule (groups expand) */
		buf_reset(&b);
		assert_int_equal(buf_puts(&b, "{\"format\":\"visor-policy/1\",\"rules\":[{\"id\":\"big\","
		    "\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":["), 0);
		for (i = 0; i < 65; i++)
			assert_int_equal(buf_printf(&b, "%s\"health\"", i ? "," : ""), 0);
		assert_int_equal(buf_puts(&b, "]}]}"), 0);
		assert_null(policy_load(b.data, b.len, err, sizeof(err)));
		assert_string_equal(err, "rule \"big\": fields[64]: more than 64 field selectors");
		/* a name longer than 2000 bytes */
		buf_reset(&b);
		assert_int_equal(buf_puts(&b, "{\"format\":\"visor-policy/1\",\"rules\":[],\"name\":\""), 0);
		for (i = 0; i < 2001; i++)
			assert_int_equal(buf_puts(&b, "n"), 0);
		assert_int_equal(buf_puts(&b, "\"}"), 0);
		assert_null(policy_load(b.data, b.len, err, sizeof(err)));
		assert_string_equal(err, "name: not a string of at most 2000 bytes");
		buf_free(&b);
	}
	big = calloc(1, POLICY_FILE_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', POLICY_FILE_MAX + 1);
	assert_null(policy_load(big, POLICY_FILE_MAX + 1, err, sizeof(err)));
	assert_non_null(strstr(err, "larger than"));
	free(big);
}

static void
test_load_errors_rule(void **state)
{
	(void)state;
	expect_load_error("1", "rules[0]: not an object");
	expect_load_error("{\"effect\":\"permit\"}", "rules[0]: missing \"id\"");
	expect_load_error("{\"id\":\"bad id!\"}",
	    "rules[0]: id: not 1-64 letters, digits, '-', '_' or '.'");
	expect_load_error(R("\"fields\":[\"health\"]") "," R("\"fields\":[\"risk\"]"),
	    "rule \"r1\": id: used by another rule too");
	expect_load_error(R("\"fields\":[\"health\"],\"colour\":1"),
	    "rule \"r1\": colour: unknown key (expected id, description, effect, ops, "
	    "when, fields, transform)");
	expect_load_error(R("\"fields\":[\"health\"],\"description\":5"),
	    "rule \"r1\": description: not a string of at most 2000 bytes");
	expect_load_error("{\"id\":\"r1\",\"ops\":[\"read\"]}", "rule \"r1\": missing \"effect\"");
	expect_load_error("{\"id\":\"r1\",\"effect\":\"allow\",\"ops\":[\"read\"]}",
	    "rule \"r1\": effect: not \"permit\" or \"forbid\"");
	expect_load_error("{\"id\":\"r1\",\"effect\":\"permit\"}", "rule \"r1\": missing \"ops\"");
	expect_load_error("{\"id\":\"r1\",\"effect\":\"permit\",\"ops\":[]}",
	    "rule \"r1\": ops: not a non-empty array");
	expect_load_error("{\"id\":\"r1\",\"effect\":\"permit\",\"ops\":[\"print\"]}",
	    "rule \"r1\": ops[0]: not one of read, write, erase, transfer, ingress, "
	    "initiate-transfer");
	expect_load_error("{\"id\":\"r1\",\"effect\":\"permit\",\"ops\":[\"read\",\"read\"]}",
	    "rule \"r1\": ops[1]: \"read\" listed twice");
	expect_load_error("{\"id\":\"r1\",\"effect\":\"permit\",\"ops\":[\"read\",\"erase\"]}",
	    "rule \"r1\": ops: erase and initiate-transfer apply to whole records and "
	    "cannot share a rule with field operations");
	expect_load_error("{\"id\":\"r1\",\"effect\":\"permit\",\"ops\":[\"erase\"],\"fields\":[\"health\"]}",
	    "rule \"r1\": fields: erase and initiate-transfer rules apply to whole "
	    "records and take no fields");
	expect_load_error(R("\"when\":{}"),
	    "rule \"r1\": missing \"fields\" (a permit must name what it permits)");
}

static void
test_load_errors_when(void **state)
{
	(void)state;
	expect_load_error(R("\"fields\":[\"health\"],\"when\":[]"), "rule \"r1\": when: not an object");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"moon\":[\"full\"]}"),
	    "rule \"r1\": when.moon: unknown condition");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"caller_kind\":[\"ca\"]}"),
	    "rule \"r1\": when.caller_kind[0]: \"ca\" is not agency, gateway or auditor");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"agency_type\":[\"fire\"]}"),
	    "rule \"r1\": when.agency_type[0]: \"fire\" is not an agency type of SPEC section 3");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"agency_type\":\"police\"}"),
	    "rule \"r1\": when.agency_type: not an array");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"agency_type\":[]}"),
	    "rule \"r1\": when.agency_type: empty list (leave the key out to mean any)");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"agency_type\":[\"police\",\"police\"]}"),
	    "rule \"r1\": when.agency_type[1]: \"police\" listed twice");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"agency_type\":[1]}"),
	    "rule \"r1\": when.agency_type[0]: not a string");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"caller_area\":[\"Norfolk\"]}"),
	    "rule \"r1\": when.caller_area[0]: \"Norfolk\" is not an area name or \"@local\"");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"managing_area\":[\"@here\"]}"),
	    "rule \"r1\": when.managing_area[0]: \"@here\" is not an area name or \"@local\"");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"category\":[5]}"),
	    "rule \"r1\": when.category[0]: not an integer 1..4");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"category\":[1,1]}"),
	    "rule \"r1\": when.category[1]: 1 listed twice");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"category\":[]}"),
	    "rule \"r1\": when.category: empty list (leave the key out to mean any)");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"category\":4}"),
	    "rule \"r1\": when.category: not an array");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"level\":[0]}"),
	    "rule \"r1\": when.level[0]: not an integer 1..3");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"level\":[1.5]}"),
	    "rule \"r1\": when.level[0]: not an integer 1..3");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"purpose\":[\"curiosity\"]}"),
	    "rule \"r1\": when.purpose[0]: \"curiosity\" is not a purpose of SPEC section 5");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"clearance\":[\"CT\"]}"),
	    "rule \"r1\": when.clearance[0]: \"CT\" is not a clearance name ([a-z0-9-]{1,32})");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"unless_clearance\":[\"\"]}"),
	    "rule \"r1\": when.unless_clearance[0]: \"\" is not a clearance name ([a-z0-9-]{1,32})");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"valid_until\":\"2026-02-30\"}"),
	    "rule \"r1\": when.valid_until: not a date (YYYY-MM-DD)");
	expect_load_error(R("\"fields\":[\"health\"],\"when\":{\"valid_until\":20260101}"),
	    "rule \"r1\": when.valid_until: not a date (YYYY-MM-DD)");
}

static void
test_load_errors_fields(void **state)
{
	(void)state;
	expect_load_error(R("\"fields\":[]"), "rule \"r1\": fields: not a non-empty array");
	expect_load_error(R("\"fields\":\"health\""), "rule \"r1\": fields: not a non-empty array");
	expect_load_error(R("\"fields\":[\"health\",\"person.dobb\"]"),
	    "rule \"r1\": fields[1]: unknown field or group \"person.dobb\"");
	expect_load_error(R("\"fields\":[\"wealth\"]"),
	    "rule \"r1\": fields[0]: unknown field or group \"wealth\"");
	expect_load_error(R("\"fields\":[\"addresses.town\"]"),
	    "rule \"r1\": fields[0]: unknown field or group \"addresses.town\"");
	expect_load_error(R("\"fields\":[\"person[]\"]"),
	    "rule \"r1\": fields[0]: unknown field or group \"person[]\"");
	expect_load_error(R("\"fields\":[7]"),
	    "rule \"r1\": fields[0]: not a field path, group or {\"path\",\"where\"} object");
	expect_load_error(R("\"fields\":[{\"where\":{}}]"),
	    "rule \"r1\": fields[0]: missing \"path\"");
	expect_load_error(R("\"fields\":[{\"path\":\"intelligence\",\"if\":1}]"),
	    "rule \"r1\": fields[0].if: unknown key (expected path, where)");
	expect_load_error(R("\"fields\":[{\"path\":\"identity\",\"where\":{\"x\":\"y\"}}]"),
	    "rule \"r1\": fields[0]: \"where\" needs a field path, not the group \"identity\"");
	expect_load_error(R("\"fields\":[{\"path\":\"person\",\"where\":{\"surname\":\"X\"}}]"),
	    "rule \"r1\": fields[0].where: \"person\" is not inside an array of objects");
	expect_load_error(R("\"fields\":[{\"path\":\"intelligence\",\"where\":{\"colour\":\"x\"}}]"),
	    "rule \"r1\": fields[0].where.colour: \"intelligence[].colour\" is not a text "
	    "field of the elements of intelligence");
	expect_load_error(R("\"fields\":[{\"path\":\"intelligence[].text\",\"where\":{\"handling\":\"shareable\"}}]"),
	    "rule \"r1\": fields[0].where.handling: the field tested must be selected too "
	    "(select intelligence, not intelligence[].text)");
	expect_load_error(R("\"fields\":[{\"path\":\"intelligence\",\"where\":[]}]"),
	    "rule \"r1\": fields[0].where: not a non-empty object");
	expect_load_error(R("\"fields\":[{\"path\":\"intelligence\",\"where\":{\"handling\":[1]}}]"),
	    "rule \"r1\": fields[0].where.handling[0]: not a string");
	/* A value the field cannot hold would match nothing: a misspelt
	 * handling mark in a forbid would forbid nothing. */
	expect_load_error("{\"id\":\"f\",\"effect\":\"forbid\",\"ops\":[\"read\"],\"fields\":"
	    "[{\"path\":\"intelligence\",\"where\":{\"handling\":[\"police_only\"]}}]}",
	    "rule \"f\": fields[0].where.handling[0]: \"police_only\" is not a value "
	    "intelligence[].handling can hold");
	expect_load_error(R("\"fields\":[{\"path\":\"intelligence\",\"where\":{\"handling\":\"sharable\"}}]"),
	    "rule \"r1\": fields[0].where.handling: \"sharable\" is not a value "
	    "intelligence[].handling can hold");
	expect_load_error(R("\"fields\":[{\"path\":\"orders\",\"where\":{\"type\":[\"SHPO\",\"shpo\"]}}]"),
	    "rule \"r1\": fields[0].where.type[1]: \"shpo\" is not a value "
	    "orders[].type can hold");
	expect_load_error(R("\"fields\":[{\"path\":\"intelligence\",\"where\":{\"date\":\"2026-13-01\"}}]"),
	    "rule \"r1\": fields[0].where.date: \"2026-13-01\" is not a value "
	    "intelligence[].date can hold");
	expect_load_error("{\"id\":\"w\",\"effect\":\"permit\",\"ops\":[\"write\"],\"fields\":"
	    "[{\"path\":\"intelligence\",\"where\":{\"handling\":\"shareable\"}}]}",
	    "rule \"w\": fields: \"where\" applies to read, transfer and ingress only");
	expect_load_error("{\"id\":\"f\",\"effect\":\"forbid\",\"ops\":[\"read\"],\"fields\":[\"category\"]}",
	    "rule \"f\": fields: core fields always pass to a permitted reader; forbid "
	    "the whole operation (no \"fields\") instead");
}

static void
test_load_errors_transform(void **state)
{
	(void)state;
	expect_load_error(R("\"fields\":[\"identity\"],\"transform\":[]"),
	    "rule \"r1\": transform: not an object of field path to transform");
	expect_load_error(R("\"fields\":[\"identity\"],\"transform\":{\"person.shoe\":\"drop\"}"),
	    "rule \"r1\": transform.person.shoe: unknown field");
	expect_load_error(R("\"fields\":[\"identity\"],\"transform\":{\"person.dob\":\"blur\"}"),
	    "rule \"r1\": transform.person.dob: not one of drop, date-to-year, postcode-to-district");
	expect_load_error(R("\"fields\":[\"identity\"],\"transform\":{\"person.surname\":\"date-to-year\"}"),
	    "rule \"r1\": transform.person.surname: date-to-year needs a date field");
	expect_load_error(R("\"fields\":[\"location\"],\"transform\":{\"addresses[].town\":\"postcode-to-district\"}"),
	    "rule \"r1\": transform.addresses[].town: postcode-to-district needs a postcode field");
	expect_load_error(R("\"fields\":[\"location\"],\"transform\":{\"person.dob\":\"date-to-year\"}"),
	    "rule \"r1\": transform.person.dob: not among the rule's fields");
	/* Core fields pass whole to every permitted reader: a transform of
	 * one would load and do nothing. */
	expect_load_error(R("\"fields\":[\"core\",\"identity\"],\"transform\":{\"category\":\"drop\"}"),
	    "rule \"r1\": transform.category: core fields always pass whole to a "
	    "permitted reader");
	expect_load_error("{\"id\":\"f\",\"effect\":\"forbid\",\"ops\":[\"read\"],\"fields\":[\"identity\"],"
	    "\"transform\":{\"person.dob\":\"drop\"}}",
	    "rule \"f\": transform: only a permit can transform");
	expect_load_error("{\"id\":\"w\",\"effect\":\"permit\",\"ops\":[\"write\"],\"fields\":[\"identity\"],"
	    "\"transform\":{\"person.dob\":\"drop\"}}",
	    "rule \"w\": transform: applies to read, transfer and ingress only");
}

static void
test_hash_and_accessors(void **state)
{
	const char *t = "{\"format\":\"visor-policy/1\",\"rules\":[]}";
	policy_t *p;

	(void)state;
	p = load(t);
	assert_string_equal(policy_hash_hex(p),
	    "602a1e4f7323ceba53a631ffbfe84e148b3c4cbcf20f43f50f1ffc53079b5482");
	assert_int_equal(policy_rule_count(p), 0);
	assert_string_equal(policy_name(p), "");
	policy_free(p);
	policy_free(NULL);
	policy_decision_free(NULL);
	assert_int_equal(policy_decision_allowed(NULL), 0);
	assert_null(policy_decision_record(NULL));
	assert_string_equal(policy_op_name(POLICY_OP_INITIATE_TRANSFER), "initiate-transfer");
	assert_int_equal(policy_op_from_name("ingress"), POLICY_OP_INGRESS);
	assert_int_equal(policy_op_from_name("nope"), -1);
	assert_true(policy_purpose_valid("review"));
	assert_false(policy_purpose_valid("fun"));
	assert_false(policy_purpose_valid(NULL));
}

/* ---- rule features ---- */

#define POLICY(rules) "{\"format\":\"visor-policy/1\",\"rules\":[" rules "]}"

static policy_decision_t *
read_as(const policy_t *p, const char *uri, const char *purpose, const char *clear,
    const cJSON *rec)
{
	policy_decision_t *d = NULL;
	caller_t c;

	assert_int_equal(policy_filter(p, caller(&c, POLICY_OP_READ, uri, purpose,
	    clear, NULL), rec, &d), 0);
	return d;
}

static int
allowed_read(const policy_t *p, const char *uri, const char *purpose,
    const char *clear, const cJSON *rec)
{
	policy_decision_t *d = read_as(p, uri, purpose, clear, rec);
	int a = policy_decision_allowed(d);

	policy_decision_free(d);
	return a;
}

#define POL "urn:visor:norfolk:agency:police"
#define HOU "urn:visor:norfolk:agency:housing"

static void
test_conditions(void **state)
{
	policy_t *p;
	cJSON *rec = full_record(2, 2), *rec4 = full_record(4, 3);

	(void)state;
	p = load(POLICY(
	    "{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"],"
	    "\"when\":{\"agency_type\":[\"police\"]}}"));
	assert_true(allowed_read(p, POL, "review", NULL, rec));
	assert_false(allowed_read(p, HOU, "review", NULL, rec));
	assert_false(allowed_read(p, "urn:visor:norfolk:gateway", "review", NULL, rec));
	policy_free(p);

	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"],"
	    "\"when\":{\"caller_kind\":[\"gateway\"]}}"));
	assert_true(allowed_read(p, "urn:visor:suffolk:gateway", "review", NULL, rec));
	assert_false(allowed_read(p, POL, "review", NULL, rec));
	assert_false(allowed_read(p, "urn:visor:norfolk:auditor:a1", "review", NULL, rec));
	policy_free(p);

	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"],"
	    "\"when\":{\"caller_area\":[\"@local\",\"bedfordshire\"]}}"));
	assert_true(allowed_read(p, POL, "review", NULL, rec));
	assert_true(allowed_read(p, "urn:visor:bedfordshire:agency:police", "review", NULL, rec));
	assert_false(allowed_read(p, "urn:visor:suffolk:agency:police", "review", NULL, rec));
	policy_free(p);

	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"],"
	    "\"when\":{\"managing_area\":[\"suffolk\"]}}"));
	assert_false(allowed_read(p, POL, "review", NULL, rec));
	policy_free(p);
	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"],"
	    "\"when\":{\"managing_area\":[\"@local\"]}}"));
	assert_true(allowed_read(p, POL, "review", NULL, rec));
	policy_free(p);

	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"],"
	    "\"when\":{\"category\":[4],\"level\":[3]}}"));
	assert_false(allowed_read(p, POL, "review", NULL, rec));
	/* (category 4 needs ct whatever the policy says) */
	assert_true(allowed_read(p, POL, "review", "ct", rec4));
	assert_false(allowed_read(p, POL, "review", NULL, rec4));
	policy_free(p);

	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"],"
	    "\"when\":{\"purpose\":[\"review\",\"mappa-meeting\"]}}"));
	assert_true(allowed_read(p, POL, "review", NULL, rec));
	assert_true(allowed_read(p, POL, "mappa-meeting", NULL, rec));
	assert_false(allowed_read(p, POL, "notification", NULL, rec));
	assert_false(allowed_read(p, POL, NULL, NULL, rec));
	policy_free(p);

	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"],"
	    "\"when\":{\"clearance\":[\"ct\"]}}"));
	assert_true(allowed_read(p, POL, "review", "ct", rec));
	assert_false(allowed_read(p, POL, "review", "level3", rec));
	assert_false(allowed_read(p, POL, "review", NULL, rec));
	policy_free(p);

	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"]},"
	    "{\"id\":\"b\",\"effect\":\"forbid\",\"ops\":[\"read\"],\"when\":{\"unless_clearance\":[\"ct\"]}}"));
	assert_true(allowed_read(p, POL, "review", "ct", rec));
	assert_false(allowed_read(p, POL, "review", NULL, rec));
	policy_free(p);

	/* valid_until: the grant holds through the named day, not after */
	{
		policy_decision_t *d = NULL;
		caller_t c;

		p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"],"
		    "\"when\":{\"valid_until\":\"2026-11-24\"}}"));
		assert_true(allowed_read(p, POL, "review", NULL, rec));
		caller(&c, POLICY_OP_READ, POL, "review", NULL, NULL);
		c.req.today = "2026-11-25";
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_false(policy_decision_allowed(d));
		policy_decision_free(d);
		c.req.today = "not-a-date";
		assert_int_equal(policy_filter(p, &c.req, rec, &d), -1);
		assert_null(d);
		policy_free(p);
	}
	cJSON_Delete(rec);
	cJSON_Delete(rec4);
}

static void
test_selectors_and_transforms(void **state)
{
	policy_decision_t *d;
	const cJSON *v;
	size_t n;
	const char *const *l;
	policy_t *p;
	cJSON *rec = full_record(2, 2);

	(void)state;
	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],"
	    "\"fields\":[\"orders[].prohibitions\",\"person.dob\",\"location\",\"intelligence[]\"],"
	    "\"transform\":{\"person.dob\":\"date-to-year\",\"addresses[].postcode\":\"postcode-to-district\","
	    "\"addresses[].line1\":\"drop\"}}"));
	d = read_as(p, POL, "review", NULL, rec);
	assert_true(policy_decision_allowed(d));
	v = policy_decision_record(d);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "person"), "dob")->valuestring, "1984");
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "person"), "surname"));
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(v, "addresses"), 0)->child->valuestring, "home");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(v, "addresses"), 0),
	    "postcode")->valuestring, "NR1");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(v, "addresses"), 1),
	    "postcode")->valuestring, "IP22");
	/* A value of another shape (stored before the schema checked the
	 * whole postcode) keeps only its area: it kept all but its last
	 * three characters (NR21AA).  A district alone stays itself. */
	{
		cJSON *odd = cJSON_Duplicate(rec, 1), *a;
		policy_decision_t *d2;
		const cJSON *v2;

		a = cJSON_GetObjectItem(odd, "addresses");
		cJSON_ReplaceItemInObject(cJSON_GetArrayItem(a, 0), "postcode",
		    cJSON_CreateString("NR21AAXYZ"));
		cJSON_ReplaceItemInObject(cJSON_GetArrayItem(a, 1), "postcode",
		    cJSON_CreateString("IP22"));
		d2 = read_as(p, POL, "review", NULL, odd);
		assert_true(policy_decision_allowed(d2));
		v2 = policy_decision_record(d2);
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(
		    cJSON_GetObjectItem(v2, "addresses"), 0), "postcode")->valuestring,
		    "NR");
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(
		    cJSON_GetObjectItem(v2, "addresses"), 1), "postcode")->valuestring,
		    "IP22");
		policy_decision_free(d2);
		cJSON_Delete(odd);
	}
	assert_false(present(d, "addresses[].line1"));
	assert_true(present(d, "addresses[].town"));
	assert_int_equal(policy_cases_count_path(v, "orders[].prohibitions"), 2);
	assert_false(present(d, "orders[].type"));
	assert_true(present(d, "intelligence"));	/* "intelligence[]": the field only */
	assert_false(present(d, "associates"));
	l = policy_decision_transformed(d, &n);
	assert_int_equal(n, 2);
	assert_true(in(l, n, "person.dob"));
	assert_true(in(l, n, "addresses[].postcode"));
	l = policy_decision_withheld(d, &n);
	assert_true(in(l, n, "addresses[].line1"));
	assert_true(in(l, n, "orders[].type"));
	assert_true(in(l, n, "person.surname"));
	assert_true(in(l, n, "health"));
	l = policy_decision_explanation(d, &n);
	assert_true(in(l, n, "addresses[].line1: withheld: dropped by rule a"));
	assert_true(in(l, n, "person.dob: date-to-year by rule a"));
	assert_true(in(l, n, "health: withheld: no rule permits it"));
	policy_decision_free(d);
	policy_free(p);

	/* where: only matching elements; the element index is reported */
	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],"
	    "\"fields\":[{\"path\":\"intelligence\",\"where\":{\"handling\":\"shareable\"}}]}"));
	d = read_as(p, POL, "review", NULL, rec);
	assert_true(policy_decision_allowed(d));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(policy_decision_record(d),
	    "intelligence")), 2);
	l = policy_decision_withheld(d, &n);
	assert_true(in(l, n, "intelligence[1]"));
	assert_false(in(l, n, "intelligence[0]"));
	policy_decision_free(d);
	policy_free(p);

	/* some fields of some elements only */
	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],"
	    "\"fields\":[\"intelligence[].grade\",{\"path\":\"intelligence\",\"where\":{\"handling\":[\"shareable\"]}}]}"));
	d = read_as(p, POL, "review", NULL, rec);
	assert_int_equal(policy_cases_count_path(policy_decision_record(d), "intelligence[].grade"), 3);
	assert_int_equal(policy_cases_count_path(policy_decision_record(d), "intelligence[].text"), 2);
	l = policy_decision_withheld(d, &n);
	assert_true(in(l, n, "intelligence[1].text"));
	assert_true(in(l, n, "intelligence[1].handling"));
	assert_false(in(l, n, "intelligence[1]"));
	policy_decision_free(d);
	policy_free(p);
	cJSON_Delete(rec);
}

/* The filtered record of an allowed decision d on input value in_json. */
static const cJSON *
allowed_record(const policy_decision_t *d, const char *in_json)
{
	if (!policy_decision_allowed(d))
		fail_msg("%s: refused: %s", in_json, policy_decision_reason(d));
	return policy_decision_record(d);
}

/* v, what reached the reader of input in_json, is want (NULL: nothing,
 * and wpath among the withheld). */
static void
expect_reduced(const policy_decision_t *d, const cJSON *v, const char *in_json,
    const char *want, const char *wpath)
{
	const char *const *l;
	size_t n;

	if (want == NULL) {
		if (v != NULL)
			fail_msg("%s: passed as %s", in_json,
			    cJSON_IsString(v) ? v->valuestring : "a non-string");
		l = policy_decision_withheld(d, &n);
		if (!in(l, n, wpath))
			fail_msg("%s: %s not among the withheld", in_json, wpath);
	} else if (!cJSON_IsString(v) || strcmp(v->valuestring, want) != 0) {
		fail_msg("%s: not passed as %s", in_json, want);
	}
}

/*
 * A transform passes the reduced value or nothing.  The engine filters
 * what the store holds, which the schema checked when it was written, but
 * a value of another shape (stored before a check, or a bug elsewhere)
 * must not pass whole or cut blindly: date-to-year kept the first four
 * bytes of any string ("19-07-1984" gave "19-0", a day and part of a
 * month) and passed a shorter one whole ("84"), and a value that is not a
 * string failed the whole evaluation (a 503 for every read of the
 * record).  A postcode with no leading capital letter gave an empty
 * string.  Each is now withheld, naming the rule; the reduced forms
 * (a year, a district, an area) still reduce to themselves.
 */
static void
test_transform_odd_values(void **state)
{
	static const struct {
		const char *dob;	/* JSON value */
		const char *want;	/* NULL: withheld */
	} dobs[] = {
		{ "\"1984-07-19\"", "1984" },
		{ "\"1984\"", "1984" },
		{ "\"19-07-1984\"", NULL },
		{ "\"07/19/1984\"", NULL },
		{ "\"84\"", NULL },
		{ "\"X\"", NULL },
		{ "\"1984-13-01\"", NULL },
		{ "\"0042\"", NULL },
		{ "\"19840719\"", NULL },
		{ "19840719", NULL },
		{ "[\"1984-07-19\"]", NULL },
		{ "{\"y\":\"1984\"}", NULL },
		{ "true", NULL },
	};
	static const struct {
		const char *pc;
		const char *want;
	} pcs[] = {
		{ "\"NR1 9ZZ\"", "NR1" },
		{ "\"NR1\"", "NR1" },
		{ "\"NR\"", "NR" },
		{ "\"nr1 9zz\"", NULL },
		{ "\"1NR 9ZZ\"", NULL },
		{ "\"\"", NULL },
		{ "12345", NULL },
		{ "[\"NR1 9ZZ\"]", NULL },
	};
	policy_t *p = load(policy_mappa_default_json());
	policy_t *pp = load(POLICY("{\"id\":\"pc\",\"effect\":\"permit\","
	    "\"ops\":[\"read\"],\"fields\":[\"addresses\"],\"transform\":"
	    "{\"addresses[].postcode\":\"postcode-to-district\"}}"));
	policy_decision_t *d;
	const cJSON *v;
	const char *const *l;
	char text[512];
	size_t i, n;
	cJSON *rec;

	(void)state;
	for (i = 0; i < sizeof(dobs) / sizeof(dobs[0]); i++) {
		snprintf(text, sizeof(text), "{\"id\":\"TST-0003\",\"managing_area\":"
		    "\"norfolk\",\"category\":1,\"level\":1,\"person\":"
		    "{\"surname\":\"TESTER\",\"dob\":%s}}", dobs[i].dob);
		rec = parse(text);
		d = read_as(p, HOU, "accommodation", NULL, rec);
		v = cJSON_GetObjectItem(cJSON_GetObjectItem(allowed_record(d,
		    dobs[i].dob), "person"), "dob");
		expect_reduced(d, v, dobs[i].dob, dobs[i].want, "person.dob");
		if (dobs[i].want == NULL) {
			l = policy_decision_explanation(d, &n);
			if (!in(l, n, "person.dob: withheld: not a value its "
			    "transform reduces, withheld by rule read-housing"))
				fail_msg("dob %s: no explanation", dobs[i].dob);
			l = policy_decision_rules(d, &n);
			assert_true(in(l, n, "read-housing"));
		} else {
			l = policy_decision_transformed(d, &n);
			assert_true(in(l, n, "person.dob"));
		}
		/* the surname passes either way */
		assert_true(present(d, "person.surname"));
		policy_decision_free(d);
		cJSON_Delete(rec);
	}
	/* "indefinite" (notification.until) is no more than itself */
	{
		policy_t *pu = load(POLICY("{\"id\":\"u\",\"effect\":\"permit\","
		    "\"ops\":[\"read\"],\"fields\":[\"notification\"],\"transform\":"
		    "{\"notification.until\":\"date-to-year\"}}"));

		rec = parse("{\"id\":\"TST-0003\",\"managing_area\":\"norfolk\","
		    "\"category\":1,\"level\":1,\"notification\":{\"until\":"
		    "\"indefinite\",\"required\":true}}");
		d = read_as(pu, POL, "review", NULL, rec);
		assert_true(policy_decision_allowed(d));
		v = cJSON_GetObjectItem(cJSON_GetObjectItem(policy_decision_record(d),
		    "notification"), "until");
		assert_true(cJSON_IsString(v));
		assert_string_equal(v->valuestring, "indefinite");
		policy_decision_free(d);
		cJSON_Delete(rec);
		policy_free(pu);
	}
	for (i = 0; i < sizeof(pcs) / sizeof(pcs[0]); i++) {
		snprintf(text, sizeof(text), "{\"id\":\"TST-0003\",\"managing_area\":"
		    "\"norfolk\",\"category\":1,\"level\":1,\"addresses\":["
		    "{\"town\":\"Diss\"},{\"town\":\"Norwich\",\"postcode\":%s}]}",
		    pcs[i].pc);
		rec = parse(text);
		d = read_as(pp, POL, "review", NULL, rec);
		v = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(
		    allowed_record(d, pcs[i].pc), "addresses"), 1), "postcode");
		/* (every postcode there is: named without an index) */
		expect_reduced(d, v, pcs[i].pc, pcs[i].want, "addresses[].postcode");
		/* the rest of the element passes either way */
		assert_int_equal(policy_cases_count_path(policy_decision_record(d),
		    "addresses[].town"), 2);
		policy_decision_free(d);
		cJSON_Delete(rec);
	}
	policy_free(pp);
	policy_free(p);
}

/*
 * SPEC 7: category 4 is visible only to callers holding ct "whatever the
 * table says", and goes only to a gateway holding ct.  The default policy
 * says it with forbids, but a policy file that left them out, narrowed
 * them (to a purpose, until a date) or granted category 4 by name opened
 * terrorism cases to any reader it permitted.  Built into the engine now;
 * the default policy's own forbid still decides first and is named.
 */
static void
test_category4_needs_ct_builtin(void **state)
{
	/* read and transfer identity and risk, any category */
#define CAT4_PERMITS "{\"id\":\"r\",\"effect\":\"permit\",\"ops\":[\"read\"]," \
	"\"fields\":[\"identity\",\"risk\"]},{\"id\":\"t\",\"effect\":\"permit\"," \
	"\"ops\":[\"transfer\"],\"fields\":[\"identity\",\"risk\"]}"
	/* the default policy's forbid, with one condition more */
#define CAT4_FORBID(cond) ",{\"id\":\"f\",\"effect\":\"forbid\"," \
	"\"ops\":[\"read\",\"transfer\"],\"when\":{\"category\":[4]," \
	"\"unless_clearance\":[\"ct\"]," cond "}}"
	static const char *const policies[] = {
		/* no forbid at all */
		POLICY(CAT4_PERMITS),
		/* the forbid narrowed to one purpose */
		POLICY(CAT4_PERMITS CAT4_FORBID("\"purpose\":[\"review\"]")),
		/* the forbid lapsed */
		POLICY(CAT4_PERMITS CAT4_FORBID("\"valid_until\":\"2020-01-01\"")),
		/* category 4 granted by name, without ct */
		POLICY("{\"id\":\"r\",\"effect\":\"permit\",\"ops\":[\"read\"],"
		    "\"when\":{\"category\":[4]},\"fields\":[\"identity\",\"risk\"]},"
		    "{\"id\":\"t\",\"effect\":\"permit\",\"ops\":[\"transfer\"],"
		    "\"when\":{\"category\":[4]},\"fields\":[\"identity\",\"risk\"]},"
		    "{\"id\":\"w\",\"effect\":\"permit\",\"ops\":[\"write\"],"
		    "\"fields\":[\"core\",\"identity\"]},"
		    "{\"id\":\"e\",\"effect\":\"permit\",\"ops\":[\"erase\"]}"),
	};
	cJSON *cat4 = full_record(4, 2), *cat3 = full_record(3, 2);
	policy_decision_t *d;
	const char *const *l;
	unsigned char map[256];
	const char *path = "person.surname";
	policy_t *p;
	caller_t c;
	size_t i, f, n, nf;

	(void)state;
	record_fields(&nf);
	for (i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		p = load(policies[i]);
		/* read without ct: refused whole, naming the built-in rule */
		d = read_as(p, POL, "risk-management", "level3", cat4);
		if (policy_decision_allowed(d) || policy_decision_record(d) != NULL)
			fail_msg("policy %zu: category 4 read without ct", i);
		l = policy_decision_rules(d, &n);
		assert_int_equal(n, 1);
		assert_string_equal(l[0], "builtin:category4-needs-ct");
		assert_non_null(strstr(policy_decision_reason(d), "category 4"));
		l = policy_decision_withheld(d, &n);
		assert_true(in(l, n, "person"));
		policy_decision_free(d);
		/* what history and PUT go by: nothing, not even the core */
		caller(&c, POLICY_OP_READ, POL, "risk-management", NULL, NULL);
		assert_int_equal(policy_read_map(p, &c.req, cat4, map, sizeof(map)), 0);
		for (f = 0; f < nf; f++)
			if (map[f] != POLICY_READ_NONE)
				fail_msg("policy %zu: read map of field %zu is %d",
				    i, f, map[f]);
		/* with ct, and for another category, the policy decides */
		d = read_as(p, POL, "risk-management", "ct", cat4);
		assert_true(policy_decision_allowed(d));
		assert_true(present(d, "person.surname"));
		policy_decision_free(d);
		d = read_as(p, POL, "risk-management", NULL, cat3);
		assert_int_equal(policy_decision_allowed(d), i != 3);
		policy_decision_free(d);
		/* a transfer to a gateway without ct: refused */
		caller(&c, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway",
		    "offender-move", "level3", NULL);
		assert_int_equal(policy_filter(p, &c.req, cat4, &d), 0);
		if (policy_decision_allowed(d))
			fail_msg("policy %zu: category 4 sent to a gateway without ct", i);
		l = policy_decision_rules(d, &n);
		assert_int_equal(n, 1);
		assert_string_equal(l[0], "builtin:category4-needs-ct");
		policy_decision_free(d);
		caller(&c, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway",
		    "offender-move", "ct", NULL);
		assert_int_equal(policy_filter(p, &c.req, cat4, &d), 0);
		assert_true(policy_decision_allowed(d));
		policy_decision_free(d);
		policy_free(p);
	}
	/* Writes and erasures are as the policy says (the gateway answers
	 * them as for a missing record when the caller may not read it). */
	p = load(policies[3]);
	caller(&c, POLICY_OP_WRITE, POL, "risk-management", NULL, NULL);
	assert_int_equal(policy_check_write(p, &c.req, cat4, &path, 1, &d), 0);
	assert_true(policy_decision_allowed(d));
	policy_decision_free(d);
	caller(&c, POLICY_OP_ERASE, POL, "risk-management", NULL, NULL);
	assert_int_equal(policy_check_erase(p, &c.req, cat4, &d), 0);
	assert_true(policy_decision_allowed(d));
	policy_decision_free(d);
	policy_free(p);
	/* The default policy's own forbid decides first, and is named. */
	p = load(policy_mappa_default_json());
	d = read_as(p, POL, "risk-management", NULL, cat4);
	assert_false(policy_decision_allowed(d));
	l = policy_decision_rules(d, &n);
	assert_int_equal(n, 1);
	assert_string_equal(l[0], "read-category4-needs-ct");
	policy_decision_free(d);
	policy_free(p);
	cJSON_Delete(cat4);
	cJSON_Delete(cat3);
}

/* policy_lint: one finding per rule that does not do what it reads as. */
typedef struct {
	char ids[8][64];
	char why[8][300];
	size_t n;
} lint_t;

static void
lint_collect(void *arg, const char *id, const char *why)
{
	lint_t *l = arg;

	if (l->n < 8) {
		snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", id);
		snprintf(l->why[l->n], sizeof(l->why[0]), "%s", why);
	}
	l->n++;
}

/*
 * An operator's mistakes that open rather than close: a permit with
 * unless_clearance reads like "only the cleared" and grants to every
 * caller lacking the clearance; a forbid with valid_until lapses, and what
 * it refused is then open to every permit.  Both load (each has a use),
 * and `visorctl policy check` now names them, as it names rules that can
 * never apply.  The default policy has none of them.
 */
static void
test_lint_opening_rules(void **state)
{
	policy_t *p;
	lint_t l;
	cJSON *rec = full_record(2, 2);

	(void)state;
	p = load(POLICY("{\"id\":\"grant-x\",\"effect\":\"permit\",\"ops\":[\"read\"],"
	    "\"fields\":[\"health\",\"identity\"],\"when\":{\"unless_clearance\":[\"ct\"]}},"
	    "{\"id\":\"no-health-yet\",\"effect\":\"forbid\",\"ops\":[\"read\"],"
	    "\"fields\":[\"health\"],\"when\":{\"valid_until\":\"2026-12-31\"}},"
	    "{\"id\":\"ok-forbid\",\"effect\":\"forbid\",\"ops\":[\"read\"],"
	    "\"when\":{\"category\":[3],\"unless_clearance\":[\"ct\"]}},"
	    "{\"id\":\"ok-grant\",\"effect\":\"permit\",\"ops\":[\"read\"],"
	    "\"fields\":[\"identity\"],\"when\":{\"clearance\":[\"ct\"],"
	    "\"valid_until\":\"2027-06-30\"}}"));
	/* what the warnings are about: the permit grants the uncleared */
	assert_true(allowed_read(p, POL, "review", NULL, rec));
	memset(&l, 0, sizeof(l));
	assert_int_equal(policy_lint(p, lint_collect, &l), 2);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.ids[0], "grant-x");
	assert_non_null(strstr(l.why[0], "grants to callers that lack the clearance"));
	assert_string_equal(l.ids[1], "no-health-yet");
	assert_non_null(strstr(l.why[1], "no longer applies"));
	policy_free(p);
	/* the default policy and the Bedfordshire grant: nothing to say */
	p = load(policy_mappa_default_json());
	memset(&l, 0, sizeof(l));
	assert_int_equal(policy_lint(p, lint_collect, &l), 0);
	policy_free(p);
	cJSON_Delete(rec);
}

/*
 * A forbid that picks elements by a member's value also takes the
 * elements that lack the member: an item with no handling mark cannot be
 * shown not to be police-only.  A permit by value still passes only the
 * elements shown to match it.
 */
static void
test_forbid_where_unmarked(void **state)
{
	policy_decision_t *d;
	policy_t *p;
	const char *const *l;
	size_t n;
	cJSON *rec = full_record(2, 2), *items, *third;

	(void)state;
	items = cJSON_GetObjectItem(rec, "intelligence");
	third = cJSON_GetArrayItem(items, 2);
	cJSON_DeleteItemFromObject(third, "handling");
	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],"
	    "\"fields\":[\"intelligence\"]},"
	    "{\"id\":\"f\",\"effect\":\"forbid\",\"ops\":[\"read\"],"
	    "\"fields\":[{\"path\":\"intelligence\",\"where\":{\"handling\":\"police-only\"}}]}"));
	d = read_as(p, POL, "review", NULL, rec);
	assert_true(policy_decision_allowed(d));
	assert_int_equal(policy_cases_count_path(policy_decision_record(d),
	    "intelligence[].text"), 1);
	l = policy_decision_withheld(d, &n);
	assert_true(in(l, n, "intelligence[1]"));
	assert_true(in(l, n, "intelligence[2]"));
	assert_false(in(l, n, "intelligence[0]"));
	policy_decision_free(d);
	policy_free(p);

	/* The permit by value passes the marked shareable item only. */
	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],"
	    "\"fields\":[{\"path\":\"intelligence\",\"where\":{\"handling\":\"shareable\"}}]}"));
	d = read_as(p, POL, "review", NULL, rec);
	assert_int_equal(policy_cases_count_path(policy_decision_record(d),
	    "intelligence[].text"), 1);
	l = policy_decision_withheld(d, &n);
	assert_true(in(l, n, "intelligence[2]"));
	policy_decision_free(d);
	policy_free(p);
	cJSON_Delete(rec);
}

static void
test_forbid_overrides_and_order(void **state)
{
	static const char *const fwd = POLICY(
	    "{\"id\":\"p1\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"identity\",\"risk\"]},"
	    "{\"id\":\"p2\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"person.dob\"],"
	    "\"transform\":{\"person.dob\":\"date-to-year\"}},"
	    "{\"id\":\"f1\",\"effect\":\"forbid\",\"ops\":[\"read\"],\"fields\":[\"person.pnc_id\",\"rmp\"]}");
	static const char *const rev = POLICY(
	    "{\"id\":\"f1\",\"effect\":\"forbid\",\"ops\":[\"read\"],\"fields\":[\"person.pnc_id\",\"rmp\"]},"
	    "{\"id\":\"p2\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"person.dob\"],"
	    "\"transform\":{\"person.dob\":\"date-to-year\"}},"
	    "{\"id\":\"p1\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"identity\",\"risk\"]}");
	policy_decision_t *a, *b;
	policy_t *pa, *pb;
	const char *const *la, *const *lb;
	size_t na, nb, i;
	cJSON *rec = full_record(1, 1);

	(void)state;
	pa = load(fwd);
	pb = load(rev);
	assert_string_not_equal(policy_hash_hex(pa), policy_hash_hex(pb));
	a = read_as(pa, POL, "review", NULL, rec);
	b = read_as(pb, POL, "review", NULL, rec);
	assert_true(policy_decision_allowed(a));
	/* forbid wins over p1; p1's whole dob wins over p2's year */
	assert_false(present(a, "person.pnc_id"));
	assert_false(present(a, "rmp"));
	assert_true(present(a, "risk.rosh"));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(policy_decision_record(a),
	    "person"), "dob")->valuestring, "1984-07-19");
	assert_true(cJSON_Compare(policy_decision_record(a), policy_decision_record(b), 1));
	la = policy_decision_withheld(a, &na);
	lb = policy_decision_withheld(b, &nb);
	assert_int_equal(na, nb);
	for (i = 0; i < na; i++)
		assert_string_equal(la[i], lb[i]);
	la = policy_decision_rules(a, &na);
	lb = policy_decision_rules(b, &nb);
	assert_int_equal(na, nb);
	for (i = 0; i < na; i++)
		assert_string_equal(la[i], lb[i]);
	assert_true(in(la, na, "f1"));
	assert_true(in(la, na, "p1"));
	la = policy_decision_explanation(a, &na);
	assert_true(in(la, na, "person.pnc_id: withheld: forbidden by rule f1"));
	policy_decision_free(a);
	policy_decision_free(b);
	policy_free(pa);
	policy_free(pb);
	cJSON_Delete(rec);
}

static void
test_default_deny_and_core_only(void **state)
{
	policy_decision_t *d;
	policy_t *p;
	caller_t c;
	size_t n;
	const char *const *l;
	const char *paths[] = { "health" };
	cJSON *rec = full_record(1, 1);
	int op;

	(void)state;
	p = load(POLICY(""));
	for (op = POLICY_OP_READ; op <= POLICY_OP_INITIATE_TRANSFER; op++) {
		d = NULL;
		caller(&c, (policy_op_t)op, POL, "review", "ct", NULL);
		if (op == POLICY_OP_WRITE)
			assert_int_equal(policy_check_write(p, &c.req, rec, paths, 1, &d), 0);
		else if (op == POLICY_OP_ERASE)
			assert_int_equal(policy_check_erase(p, &c.req, rec, &d), 0);
		else if (op == POLICY_OP_INITIATE_TRANSFER)
			assert_int_equal(policy_check_initiate_transfer(p, &c.req, rec, &d), 0);
		else
			assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_false(policy_decision_allowed(d));
		assert_null(policy_decision_record(d));
		l = policy_decision_disclosed(d, &n);
		assert_int_equal(n, 0);
		policy_decision_free(d);
	}
	policy_free(p);

	/* a permit for a field the record lacks: only core would pass: deny */
	p = load(POLICY("{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"health\"]}"));
	cJSON_DeleteItemFromObject(rec, "health");
	d = read_as(p, POL, "review", NULL, rec);
	assert_false(policy_decision_allowed(d));
	assert_string_equal(policy_decision_reason(d), "no field beyond the core is permitted");
	l = policy_decision_withheld(d, &n);
	assert_true(in(l, n, "person"));
	assert_false(in(l, n, "id"));
	policy_decision_free(d);
	policy_free(p);
	cJSON_Delete(rec);
}

static void
test_bad_requests(void **state)
{
	policy_decision_t *d = (policy_decision_t *)1;
	policy_t *p = load(policy_mappa_default_json());
	cJSON *rec = full_record(1, 1), *bad;
	const char *paths[] = { "health" };
	caller_t c;

	(void)state;
	caller(&c, POLICY_OP_WRITE, POL, "review", NULL, NULL);
	assert_int_equal(policy_filter(p, &c.req, rec, &d), -1);	/* wrong op */
	assert_null(d);
	assert_int_equal(policy_check_erase(p, &c.req, rec, &d), -1);
	assert_int_equal(policy_check_initiate_transfer(p, &c.req, rec, &d), -1);
	caller(&c, POLICY_OP_READ, POL, "review", NULL, NULL);
	assert_int_equal(policy_check_write(p, &c.req, rec, paths, 1, &d), -1);
	assert_int_equal(policy_filter(NULL, &c.req, rec, &d), -1);
	assert_int_equal(policy_filter(p, NULL, rec, &d), -1);
	assert_int_equal(policy_filter(p, &c.req, NULL, &d), -1);
	assert_int_equal(policy_filter(p, &c.req, rec, NULL), -1);
	bad = parse("{\"id\":\"X-1\",\"managing_area\":\"norfolk\",\"category\":9,\"level\":1}");
	assert_int_equal(policy_filter(p, &c.req, bad, &d), -1);
	cJSON_Delete(bad);
	bad = parse("{\"id\":\"X-1\",\"managing_area\":\"norfolk\",\"category\":1,\"level\":1,\"pets\":[]}");
	assert_int_equal(policy_filter(p, &c.req, bad, &d), -1);
	cJSON_Delete(bad);
	bad = parse("{\"id\":\"X-1\",\"managing_area\":\"norfolk\",\"category\":1,\"level\":1,\"person\":[]}");
	assert_int_equal(policy_filter(p, &c.req, bad, &d), -1);
	cJSON_Delete(bad);
	cJSON_Delete(rec);
	policy_free(p);
}

/* ---- the default policy against SPEC section 7 ---- */

/* Group order: identity location risk legal monitoring health intelligence */
struct row {
	const char *type;
	const char *groups;	/* R whole, - none, P part (checked below) */
};

static const struct row table[] = {
	{ "police",        "RRRRR-R" },
	{ "probation",     "RRRRRRP" },
	{ "prison",        "R-RR-R-" },
	{ "youth-justice", "RRRR---" },
	{ "health",        "R-P--R-" },
	{ "social-care",   "RRRP---" },
	{ "housing",       "PRPP---" },
	{ "education",     "P-PP---" },
	{ "dwp",           "RR-----" },
	{ "ems",           "RR-PR--" },
};

static const char *const group_fields[7][5] = {
	{ "person", NULL },
	{ "addresses", NULL },
	{ "risk", "rmp", NULL },
	{ "convictions", "orders", "notification", "licence", NULL },
	{ "em", NULL },
	{ "health", NULL },
	{ "intelligence", "associates", "vehicles", "financial", NULL },
};

static void
expect_paths(const policy_decision_t *d, const char *who, const char *const *yes,
    const char *const *no)
{
	for (; yes && *yes; yes++)
		if (!present(d, *yes))
			fail_msg("%s: %s should be present", who, *yes);
	for (; no && *no; no++)
		if (present(d, *no))
			fail_msg("%s: %s should be absent", who, *no);
}

static void
check_partial(const policy_decision_t *d, const char *type, int g)
{
	static const char *const health_risk_yes[] = { "risk.rosh", "risk.people_at_risk", NULL };
	static const char *const health_risk_no[] = { "risk.tool", "risk.assessed", "risk.factors", "rmp", NULL };
	static const char *const names_yes[] = { "person.surname", "person.forenames", NULL };
	static const char *const names_no[] = { "person.gender", "person.aliases", "person.pnc_id",
	    "person.photo_ref", NULL };
	static const char *const edu_risk_no[] = { "risk.tool", "risk.assessed", "risk.factors",
	    "risk.people_at_risk", "rmp", NULL };
	static const char *const rosh[] = { "risk.rosh", NULL };
	static const char *const prohib[] = { "orders[].prohibitions", NULL };
	static const char *const legal_prohib_no[] = { "orders[].type", "orders[].made", "convictions",
	    "notification", "licence", NULL };
	static const char *const housing_legal_yes[] = { "orders[].prohibitions", "licence.conditions", NULL };
	static const char *const housing_legal_no[] = { "orders[].type", "orders[].made", "convictions",
	    "notification", "licence.end", NULL };
	static const char *const lic[] = { "licence.conditions", NULL };
	static const char *const ems_legal_no[] = { "licence.end", "orders", "convictions", "notification", NULL };
	static const char *const sc_legal_no[] = { "convictions", "notification", "licence", NULL };
	static const char *const veh[] = { "vehicles", NULL };
	static const char *const intel_no[] = { "intelligence", "associates", "financial", NULL };
	const cJSON *r = policy_decision_record(d);
	const cJSON *dob;

	if (strcmp(type, "probation") == 0 && g == 6) {
		expect_paths(d, type, veh, intel_no);
	} else if (strcmp(type, "health") == 0 && g == 2) {
		expect_paths(d, type, health_risk_yes, health_risk_no);
	} else if (strcmp(type, "social-care") == 0 && g == 3) {
		static const char *const ord[] = { "orders[].type", "orders[].made", "orders[].prohibitions", NULL };

		expect_paths(d, type, ord, sc_legal_no);
	} else if (strcmp(type, "housing") == 0 && g == 0) {
		expect_paths(d, type, names_yes, names_no);
		dob = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "person"), "dob");
		assert_non_null(dob);
		assert_string_equal(dob->valuestring, "1984");
	} else if (strcmp(type, "housing") == 0 && g == 2) {
		expect_paths(d, type, health_risk_yes, health_risk_no);
	} else if (strcmp(type, "housing") == 0 && g == 3) {
		expect_paths(d, type, housing_legal_yes, housing_legal_no);
	} else if (strcmp(type, "education") == 0 && g == 0) {
		static const char *const dobno[] = { "person.dob", NULL };

		expect_paths(d, type, names_yes, names_no);
		expect_paths(d, type, NULL, dobno);
	} else if (strcmp(type, "education") == 0 && g == 2) {
		expect_paths(d, type, rosh, edu_risk_no);
	} else if (strcmp(type, "education") == 0 && g == 3) {
		expect_paths(d, type, prohib, legal_prohib_no);
	} else if (strcmp(type, "ems") == 0 && g == 3) {
		expect_paths(d, type, lic, ems_legal_no);
	} else {
		fail_msg("no partial rule for %s group %d", type, g);
	}
}

static void
test_default_read_table(void **state)
{
	static const char *const core[] = { "id", "version", "managing_area", "category", "level", NULL };
	policy_t *p = load(policy_mappa_default_json());
	char uri[128];
	size_t t, g, k, pu;
	int cat, withct;

	(void)state;
	for (t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
		snprintf(uri, sizeof(uri), "urn:visor:norfolk:agency:%s:unit-1", table[t].type);
		for (pu = 0; policy_purposes[pu] != NULL; pu++)
		for (cat = 1; cat <= 4; cat++)
		for (withct = 0; withct <= 1; withct++) {
			cJSON *rec = full_record(cat, 2);
			policy_decision_t *d = read_as(p, uri, policy_purposes[pu],
			    withct ? "ct" : NULL, rec);

			if (cat == 4 && !withct) {
				size_t n;
				const char *const *rl = policy_decision_rules(d, &n);

				if (policy_decision_allowed(d))
					fail_msg("%s read category 4 without ct", table[t].type);
				assert_true(in(rl, n, "read-category4-needs-ct"));
				policy_decision_free(d);
				cJSON_Delete(rec);
				continue;
			}
			if (!policy_decision_allowed(d))
				fail_msg("%s %s cat %d denied: %s", table[t].type,
				    policy_purposes[pu], cat, policy_decision_reason(d));
			expect_paths(d, table[t].type, core, NULL);
			for (g = 0; g < 7; g++) {
				char m = table[t].groups[g];

				for (k = 0; group_fields[g][k] != NULL; k++) {
					const char *f = group_fields[g][k];
					const cJSON *got = cJSON_GetObjectItem(policy_decision_record(d), f);

					if (m == 'R' && !cJSON_Compare(got, cJSON_GetObjectItem(rec, f), 1))
						fail_msg("%s: %s should pass whole", table[t].type, f);
					if (m == '-' && got != NULL)
						fail_msg("%s: %s should be absent", table[t].type, f);
				}
				if (m == 'P')
					check_partial(d, table[t].type, (int)g);
			}
			policy_decision_free(d);
			cJSON_Delete(rec);
		}
		/* another area's agency of the same type gets nothing */
		snprintf(uri, sizeof(uri), "urn:visor:suffolk:agency:%s", table[t].type);
		{
			cJSON *rec = full_record(1, 1);

			assert_false(allowed_read(p, uri, "review", "ct", rec));
			cJSON_Delete(rec);
		}
	}
	policy_free(p);
}

static void
test_default_transfer_and_ingress(void **state)
{
	policy_t *p = load(policy_mappa_default_json());
	policy_decision_t *d, *in_d;
	caller_t c;
	size_t n;
	const char *const *l;
	cJSON *rec;
	int cat, level;

	(void)state;
	for (cat = 1; cat <= 4; cat++)
	for (level = 1; level <= 3; level++) {
		rec = full_record(cat, level);
		/* with both clearances the receiving gateway always gets the record */
		caller(&c, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway", "offender-move",
		    "ct", "level3");
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_true(policy_decision_allowed(d));
		assert_false(present(d, "health"));
		assert_false(present(d, "associates"));
		assert_false(present(d, "vehicles"));
		assert_false(present(d, "financial"));
		assert_true(present(d, "person"));
		assert_true(present(d, "addresses"));
		assert_true(present(d, "rmp"));
		assert_true(present(d, "licence"));
		assert_true(present(d, "em"));
		assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(policy_decision_record(d),
		    "intelligence")), 2);
		l = policy_decision_withheld(d, &n);
		assert_true(in(l, n, "intelligence[1]"));
		assert_true(in(l, n, "health"));
		/* what was sent is accepted whole by the receiver's ingress */
		caller(&c, POLICY_OP_INGRESS, "urn:visor:norfolk:gateway", "offender-move", NULL, NULL);
		c.req.local_area = "suffolk";
		assert_int_equal(policy_filter(p, &c.req, policy_decision_record(d), &in_d), 0);
		assert_true(policy_decision_allowed(in_d));
		assert_true(cJSON_Compare(policy_decision_record(in_d), policy_decision_record(d), 1));
		policy_decision_free(in_d);
		policy_decision_free(d);

		/* without clearances: level 3 and category 4 are refused */
		caller(&c, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway", "offender-move",
		    NULL, NULL);
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_int_equal(policy_decision_allowed(d), cat != 4 && level != 3);
		policy_decision_free(d);
		caller(&c, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway", "offender-move",
		    "level3", NULL);
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_int_equal(policy_decision_allowed(d), cat != 4);
		policy_decision_free(d);
		caller(&c, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway", "offender-move",
		    "ct", NULL);
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_int_equal(policy_decision_allowed(d), level != 3);
		policy_decision_free(d);
		/* another purpose, or an agency as the recipient: nothing */
		caller(&c, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway", "review", "ct", "level3");
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_false(policy_decision_allowed(d));
		policy_decision_free(d);
		caller(&c, POLICY_OP_TRANSFER, "urn:visor:suffolk:agency:police", "offender-move",
		    "ct", "level3");
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_false(policy_decision_allowed(d));
		policy_decision_free(d);

		/* ingress of the full record (health, police-only intelligence):
		 * refused whole, naming the offending paths */
		caller(&c, POLICY_OP_INGRESS, "urn:visor:suffolk:gateway", "offender-move", NULL, NULL);
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_false(policy_decision_allowed(d));
		assert_null(policy_decision_record(d));
		l = policy_decision_withheld(d, &n);
		assert_true(in(l, n, "health"));
		assert_true(in(l, n, "intelligence[1]"));
		assert_true(in(l, n, "vehicles"));
		assert_false(in(l, n, "person"));
		assert_non_null(strstr(policy_decision_reason(d), "ingress refused"));
		policy_decision_free(d);
		/* ingress from an agency or for another purpose: refused */
		caller(&c, POLICY_OP_INGRESS, "urn:visor:suffolk:agency:police", "offender-move", NULL, NULL);
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		assert_false(policy_decision_allowed(d));
		policy_decision_free(d);
		cJSON_Delete(rec);
	}
	/* ingress of a record with only what transfers carry */
	rec = parse("{\"id\":\"T-1\",\"managing_area\":\"suffolk\",\"category\":1,\"level\":1,"
	    "\"person\":{\"surname\":\"X\"},\"intelligence\":[{\"handling\":\"shareable\",\"text\":\"t\"}]}");
	caller(&c, POLICY_OP_INGRESS, "urn:visor:suffolk:gateway", "offender-move", NULL, NULL);
	assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
	assert_true(policy_decision_allowed(d));
	l = policy_decision_withheld(d, &n);
	assert_int_equal(n, 0);
	policy_decision_free(d);
	cJSON_Delete(rec);
	policy_free(p);
}

/* An empty object or array is still the field it is: a peer's record
 * carrying "health": {} carries health, which the receiver does not take
 * from a peer, and the gateway stores what it accepts as it came.  Empty
 * intelligence items are items with no handling, so not shareable (and
 * their number is itself something the sender's filter would not tell).
 * An empty field the receiver does take changes nothing. */
static void
test_ingress_empty_fields(void **state)
{
	static const struct {
		const char *fields;
		const char *withheld;	/* NULL: accepted */
	} cases[] = {
		{ "\"health\":{}", "health" },
		{ "\"vehicles\":[{}]", "vehicles" },
		{ "\"vehicles\":[]", "vehicles" },
		{ "\"associates\":[]", "associates" },
		{ "\"intelligence\":[{\"handling\":\"shareable\",\"text\":\"t\"},{}]",
		    "intelligence[1]" },
		{ "\"intelligence\":[{},{}]", "intelligence" },
		{ "\"person\":{}", NULL },
		{ "\"person\":{\"aliases\":[]}", NULL },
		{ "\"addresses\":[{}]", NULL },
	};
	policy_t *p = load(policy_mappa_default_json());
	policy_decision_t *d;
	const char *const *l;
	char text[512];
	caller_t c;
	cJSON *rec;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "{\"id\":\"T-1\",\"managing_area\":\"suffolk\","
		    "\"category\":1,\"level\":1,\"em\":{\"active\":true},%s}", cases[i].fields);
		rec = parse(text);
		caller(&c, POLICY_OP_INGRESS, "urn:visor:suffolk:gateway", "offender-move",
		    NULL, NULL);
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		l = policy_decision_withheld(d, &n);
		if (cases[i].withheld == NULL) {
			if (!policy_decision_allowed(d))
				fail_msg("%s: refused: %s", text, policy_decision_reason(d));
		} else if (policy_decision_allowed(d) || !in(l, n, cases[i].withheld)) {
			fail_msg("%s: %s, expected refused naming %s", text,
			    policy_decision_reason(d), cases[i].withheld);
		}
		policy_decision_free(d);
		cJSON_Delete(rec);
	}
	policy_free(p);
}

static int
write_ok(const policy_t *p, const char *type, const char *path, const cJSON *rec)
{
	policy_decision_t *d = NULL;
	char uri[128];
	caller_t c;
	int a;

	snprintf(uri, sizeof(uri), "urn:visor:norfolk:agency:%s", type);
	caller(&c, POLICY_OP_WRITE, uri, "risk-management", NULL, NULL);
	assert_int_equal(policy_check_write(p, &c.req, rec, &path, 1, &d), 0);
	a = policy_decision_allowed(d);
	policy_decision_free(d);
	return a;
}

static void
test_default_write_erase_initiate(void **state)
{
	static const char *const groups[] = { "person.surname", "addresses", "risk.rosh",
	    "orders", "em.active", "health.notes", "intelligence", "category" };
	/* expected writability, per type, per path above */
	static const struct { const char *type; const char *w; } rows[] = {
		{ "police",        "YYYYY-YY" },
		{ "probation",     "YYYYYYYY" },
		{ "prison",        "YYYYYYYY" },
		{ "housing",       "-Y------" },
		{ "ems",           "----Y---" },
		{ "health",        "-----Y--" },
		{ "youth-justice", "--------" },
		{ "social-care",   "--------" },
		{ "education",     "--------" },
		{ "dwp",           "--------" },
	};
	policy_t *p = load(policy_mappa_default_json());
	policy_decision_t *d;
	cJSON *rec = full_record(2, 2);
	record_paths_t *all;
	const char *const *l;
	const char *mixed[] = { "addresses", "person.surname", "health" };
	caller_t c;
	size_t i, k, n;
	char uri[128];

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		for (k = 0; k < sizeof(groups) / sizeof(groups[0]); k++)
			if (write_ok(p, rows[i].type, groups[k], rec) != (rows[i].w[k] == 'Y'))
				fail_msg("%s writing %s", rows[i].type, groups[k]);
	/* a write naming several paths: the first forbidden one is named */
	caller(&c, POLICY_OP_WRITE, HOU, "accommodation", NULL, NULL);
	assert_int_equal(policy_check_write(p, &c.req, rec, mixed, 3, &d), 0);
	assert_false(policy_decision_allowed(d));
	assert_string_equal(policy_decision_reason(d), "person.surname is not writable by this caller");
	l = policy_decision_withheld(d, &n);
	assert_int_equal(n, 2);
	l = policy_decision_disclosed(d, &n);
	assert_int_equal(n, 1);
	assert_string_equal(l[0], "addresses");
	policy_decision_free(d);
	/* an unknown path is never writable */
	mixed[0] = "shoe_size";
	assert_int_equal(policy_check_write(p, &c.req, rec, mixed, 1, &d), 0);
	assert_false(policy_decision_allowed(d));
	policy_decision_free(d);
	/* creating a whole record */
	all = record_changed_paths(NULL, rec);
	assert_non_null(all);
	caller(&c, POLICY_OP_WRITE, "urn:visor:norfolk:agency:probation", "risk-management", NULL, NULL);
	assert_int_equal(policy_check_write(p, &c.req, rec, all->items, all->count, &d), 0);
	assert_true(policy_decision_allowed(d));
	policy_decision_free(d);
	caller(&c, POLICY_OP_WRITE, POL, "risk-management", NULL, NULL);
	assert_int_equal(policy_check_write(p, &c.req, rec, all->items, all->count, &d), 0);
	assert_false(policy_decision_allowed(d));	/* the record carries health */
	assert_string_equal(policy_decision_reason(d), "health.notes is not writable by this caller");
	policy_decision_free(d);
	record_paths_free(all);
	/* another area's police writes nothing */
	caller(&c, POLICY_OP_WRITE, "urn:visor:suffolk:agency:police", "risk-management", NULL, NULL);
	mixed[0] = "addresses";
	assert_int_equal(policy_check_write(p, &c.req, rec, mixed, 1, &d), 0);
	assert_false(policy_decision_allowed(d));
	policy_decision_free(d);

	for (i = 0; identity_agency_types[i] != NULL; i++) {
		int is_police = strcmp(identity_agency_types[i], "police") == 0;
		int may_transfer = is_police || strcmp(identity_agency_types[i], "probation") == 0;

		snprintf(uri, sizeof(uri), "urn:visor:norfolk:agency:%s", identity_agency_types[i]);
		caller(&c, POLICY_OP_ERASE, uri, "risk-management", "ct", NULL);
		assert_int_equal(policy_check_erase(p, &c.req, rec, &d), 0);
		assert_int_equal(policy_decision_allowed(d), is_police);
		policy_decision_free(d);
		caller(&c, POLICY_OP_INITIATE_TRANSFER, uri, "offender-move", NULL, NULL);
		assert_int_equal(policy_check_initiate_transfer(p, &c.req, rec, &d), 0);
		assert_int_equal(policy_decision_allowed(d), may_transfer);
		policy_decision_free(d);
	}
	caller(&c, POLICY_OP_ERASE, "urn:visor:suffolk:agency:police", "risk-management", NULL, NULL);
	assert_int_equal(policy_check_erase(p, &c.req, rec, &d), 0);
	assert_false(policy_decision_allowed(d));
	policy_decision_free(d);
	cJSON_Delete(rec);
	policy_free(p);
}

static void
test_bedfordshire_grant(void **state)
{
	const char *src = getenv("VISOR_SRC");
	char path[1024];
	char *text;
	size_t len;
	policy_t *p;
	policy_decision_t *d;
	caller_t c;
	cJSON *rec4 = full_record(4, 2), *rec2 = full_record(2, 2);
	char err[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/docs/examples/policy-bedfordshire-grant.json",
	    src ? src : ".");
	assert_int_equal(file_read_all(path, POLICY_FILE_MAX, &text, &len), 0);
	p = policy_load(text, len, err, sizeof(err));
	free(text);
	if (p == NULL)
		fail_msg("%s: %s", path, err);
	caller(&c, POLICY_OP_READ, "urn:visor:bedfordshire:agency:police", "review", "ct", NULL);
	assert_int_equal(policy_filter(p, &c.req, rec4, &d), 0);
	assert_true(policy_decision_allowed(d));
	assert_true(present(d, "person"));
	assert_false(present(d, "health"));
	assert_false(present(d, "intelligence"));
	policy_decision_free(d);
	/* not category 4, wrong purpose, no ct, another type, expired: denied */
	assert_int_equal(policy_filter(p, &c.req, rec2, &d), 0);
	assert_false(policy_decision_allowed(d));
	policy_decision_free(d);
	c.req.purpose = "mappa-meeting";
	assert_int_equal(policy_filter(p, &c.req, rec4, &d), 0);
	assert_false(policy_decision_allowed(d));
	policy_decision_free(d);
	caller(&c, POLICY_OP_READ, "urn:visor:bedfordshire:agency:police", "review", NULL, NULL);
	assert_int_equal(policy_filter(p, &c.req, rec4, &d), 0);
	assert_false(policy_decision_allowed(d));
	policy_decision_free(d);
	caller(&c, POLICY_OP_READ, "urn:visor:bedfordshire:agency:probation", "review", "ct", NULL);
	assert_int_equal(policy_filter(p, &c.req, rec4, &d), 0);
	assert_false(policy_decision_allowed(d));
	policy_decision_free(d);
	caller(&c, POLICY_OP_READ, "urn:visor:bedfordshire:agency:police", "review", "ct", NULL);
	c.req.today = "2027-07-01";
	assert_int_equal(policy_filter(p, &c.req, rec4, &d), 0);
	assert_false(policy_decision_allowed(d));
	policy_decision_free(d);
	policy_free(p);
	cJSON_Delete(rec4);
	cJSON_Delete(rec2);
}

/* ---- properties ---- */

static uint32_t rng_state = 12345;

static uint32_t
rnd(uint32_t n)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (rng_state >> 16) % n;
}

/* A random schema-valid record: each optional member present at random. */
static cJSON *
random_record(void)
{
	cJSON *rec = full_record((int)rnd(4) + 1, (int)rnd(3) + 1);
	cJSON *m, *next;

	for (m = rec->child; m != NULL; m = next) {
		next = m->next;
		if (strcmp(m->string, "id") == 0 || strcmp(m->string, "managing_area") == 0 ||
		    strcmp(m->string, "category") == 0 || strcmp(m->string, "level") == 0)
			continue;
		if (rnd(3) == 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(rec, m));
		else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) > 1 && rnd(2) == 0)
			cJSON_DeleteItemFromArray(m, 0);
	}
	return rec;
}

/* A path like "intelligence[2]" or "x[1].y": the original element must not
 * be in the filtered array (whole-element form only). */
static void
check_withheld_absent(const cJSON *orig, const cJSON *filtered, const char *w)
{
	const char *br = strchr(w, '[');
	char name[64];
	const cJSON *fa, *oe, *e;
	long idx;

	if (br == NULL || br[1] == ']') {
		assert_true(policy_cases_count_path(orig, w) > 0);
		if (policy_cases_count_path(filtered, w) != 0)
			fail_msg("withheld %s is present", w);
		return;
	}
	if (strchr(br, '.') != NULL)
		return;	/* one field of one element: covered by the count below */
	snprintf(name, sizeof(name), "%.*s", (int)(br - w), w);
	idx = strtol(br + 1, NULL, 10);
	oe = cJSON_GetArrayItem(cJSON_GetObjectItem(orig, name), (int)idx);
	assert_non_null(oe);
	fa = cJSON_GetObjectItem(filtered, name);
	cJSON_ArrayForEach(e, fa)
		if (cJSON_Compare(e, oe, 1))
			fail_msg("withheld element %s is present", w);
}

/* A deep copy of v with the members of every object in reverse order. */
static cJSON *
reversed_copy(const cJSON *v)
{
	cJSON *out, *c;
	const cJSON *m;

	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return cJSON_Duplicate(v, 1);
	out = cJSON_IsObject(v) ? cJSON_CreateObject() : cJSON_CreateArray();
	assert_non_null(out);
	cJSON_ArrayForEach(m, v) {
		assert_non_null(c = reversed_copy(m));
		if (cJSON_IsObject(v)) {
			/* cJSON_Duplicate copies the key of a leaf; an object or
			 * array made above has none yet */
			if (c->string == NULL)
				assert_non_null(c->string = strdup(m->string));
			/* prepend: reverses the order */
			assert_true(cJSON_InsertItemInArray(out, 0, c));
		} else {
			assert_true(cJSON_AddItemToArray(out, c));
		}
	}
	return out;
}

static void
test_properties(void **state)
{
	static const char *const callers[] = {
		"urn:visor:norfolk:agency:police", "urn:visor:norfolk:agency:probation",
		"urn:visor:norfolk:agency:prison", "urn:visor:norfolk:agency:youth-justice",
		"urn:visor:norfolk:agency:health", "urn:visor:norfolk:agency:social-care",
		"urn:visor:norfolk:agency:housing", "urn:visor:norfolk:agency:education",
		"urn:visor:norfolk:agency:dwp", "urn:visor:norfolk:agency:ems",
		"urn:visor:suffolk:gateway", "urn:visor:suffolk:agency:police",
	};
	static const char *const extra = POLICY(
	    "{\"id\":\"x1\",\"effect\":\"permit\",\"ops\":[\"read\"],\"fields\":[\"location\",\"person.dob\","
	    "{\"path\":\"intelligence\",\"where\":{\"handling\":\"shareable\"}}],"
	    "\"transform\":{\"addresses[].postcode\":\"postcode-to-district\",\"person.dob\":\"date-to-year\","
	    "\"addresses[].line1\":\"drop\"}},"
	    "{\"id\":\"x2\",\"effect\":\"forbid\",\"ops\":[\"read\"],\"fields\":[\"addresses[].town\"]}");
	policy_t *pols[2];
	policy_decision_t *d, *d2;
	caller_t c;
	const char *const *l;
	size_t n, i;
	int iter, k;

	(void)state;
	pols[0] = load(policy_mappa_default_json());
	pols[1] = load(extra);
	for (iter = 0; iter < 600; iter++) {
		cJSON *rec = random_record();
		const policy_t *p = pols[rnd(2)];
		policy_op_t op = rnd(4) == 0 ? POLICY_OP_TRANSFER : POLICY_OP_READ;

		k = (int)rnd(sizeof(callers) / sizeof(callers[0]));
		caller(&c, op, callers[k], op == POLICY_OP_TRANSFER ? "offender-move" :
		    policy_purposes[rnd(8)], rnd(2) ? "ct" : NULL, rnd(2) ? "level3" : NULL);
		assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
		if (!policy_decision_allowed(d)) {
			assert_null(policy_decision_record(d));
			policy_decision_free(d);
			cJSON_Delete(rec);
			continue;
		}
		/* a filtered record never contains a withheld path */
		l = policy_decision_withheld(d, &n);
		for (i = 0; i < n; i++) {
			check_withheld_absent(rec, policy_decision_record(d), l[i]);
		}
		/* every disclosed path is there */
		l = policy_decision_disclosed(d, &n);
		for (i = 0; i < n; i++)
			if (policy_cases_count_path(policy_decision_record(d), l[i]) <= 0)
				fail_msg("disclosed %s is absent", l[i]);
		/* filtering twice equals filtering once */
		assert_int_equal(policy_filter(p, &c.req, policy_decision_record(d), &d2), 0);
		assert_true(policy_decision_allowed(d2));
		assert_true(cJSON_Compare(policy_decision_record(d), policy_decision_record(d2), 1));
		policy_decision_free(d2);
		/* the order of the members does not matter (the filter tries
		 * the schema's order first), and the filtered record does not
		 * borrow from the input: it outlives it */
		{
			cJSON *rev = reversed_copy(rec);
			char *a, *b;

			assert_int_equal(policy_filter(p, &c.req, rev, &d2), 0);
			cJSON_Delete(rev);
			cJSON_Delete(rec);
			rec = NULL;
			assert_true(policy_decision_allowed(d2));
			assert_true(cJSON_Compare(policy_decision_record(d), policy_decision_record(d2), 1));
			assert_non_null(a = cJSON_PrintUnformatted(policy_decision_record(d2)));
			assert_non_null(b = cJSON_PrintUnformatted(policy_decision_record(d)));
			assert_int_equal(strlen(a), strlen(b));
			free(a);
			free(b);
			policy_decision_free(d2);
		}
		policy_decision_free(d);
		cJSON_Delete(rec);
	}
	policy_free(pols[0]);
	policy_free(pols[1]);
}

/* ---- CASES.json ---- */

static char *
read_src(const char *rel, size_t *len)
{
	const char *src = getenv("VISOR_SRC");
	char path[1024];
	char *text;

	snprintf(path, sizeof(path), "%s/%s", src ? src : ".", rel);
	if (file_read_all(path, 16 << 20, &text, len) < 0)
		fail_msg("cannot read %s", path);
	return text;
}

static void
test_default_cases_file(void **state)
{
	policy_t *p = load(policy_mappa_default_json());
	buf_t report;
	char err[512];
	size_t len, passed, failed;
	char *text = read_src("tests/data/policy-default-cases.json", &len);

	(void)state;
	buf_init(&report, 0);
	assert_int_equal(policy_cases_run(p, text, len, &report, &passed, &failed,
	    err, sizeof(err)), 0);
	if (failed != 0)
		fail_msg("%s", report.data);
	assert_true(passed >= 20);
	assert_non_null(strstr(report.data, " passed, 0 failed\n"));
	buf_free(&report);
	free(text);
	policy_free(p);
}

static void
test_cases_mismatch_and_errors(void **state)
{
	static const char *const failing =
	    "{\"defaults\":{\"today\":\"2026-11-24\"},"
	    "\"records\":{\"r\":{\"id\":\"T-1\",\"managing_area\":\"norfolk\",\"category\":1,\"level\":1,"
	    "\"health\":{\"notes\":[\"n\"]},\"person\":{\"surname\":\"S\"}}},"
	    "\"cases\":["
	    "{\"name\":\"wrong outcome\",\"as\":\"urn:visor:norfolk:agency:dwp\",\"purpose\":\"review\","
	    "\"record\":\"r\",\"expect\":\"deny\"},"
	    "{\"name\":\"wrong presence\",\"as\":\"urn:visor:norfolk:agency:dwp\",\"purpose\":\"review\","
	    "\"record\":\"r\",\"expect\":\"allow\",\"present\":[\"health\"],\"absent\":[\"person.surname\"],"
	    "\"equals\":{\"person.surname\":\"T\"},\"withheld\":[\"person\"],\"rules\":[\"read-police\"]},"
	    "{\"name\":\"right\",\"as\":\"urn:visor:norfolk:agency:dwp\",\"purpose\":\"review\","
	    "\"record\":\"r\",\"expect\":\"allow\",\"present\":[\"person.surname\"],\"absent\":[\"health\"],"
	    "\"equals\":{\"person.surname\":\"S\"},\"withheld\":[\"health\"],\"rules\":[\"read-dwp\"]}]}";
	static const struct { const char *text; const char *err; } bad[] = {
		{ "[]", "cases: not a JSON object" },
		{ "{\"cases\":[],\"x\":1}", "x: unknown key (expected description, defaults, records, cases)" },
		{ "{\"cases\":{}}", "cases: missing, not an array or more than 10000" },
		{ "{\"cases\":[1]}", "cases[0]: not an object" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"nobody\"}]}",
		  "case \"a\": as: missing or not an identity URI" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"urn:visor:x:gateway\",\"expect\":\"maybe\"}]}",
		  "case \"a\": expect: not \"allow\" or \"deny\"" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"urn:visor:x:gateway\",\"op\":\"peek\"}]}",
		  "case \"a\": op: unknown \"peek\"" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"urn:visor:x:gateway\",\"expect\":\"deny\",\"record\":\"r\"}]}",
		  "case \"a\": record: missing, or not a record or the name of one in \"records\"" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"urn:visor:x:gateway\",\"expect\":\"deny\","
		  "\"record\":{\"id\":\"x\"}}]}", "case \"a\": record: managing_area: missing" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"urn:visor:x:gateway\",\"expect\":\"deny\","
		  "\"record\":{\"id\":\"XX-1\",\"managing_area\":\"x\",\"category\":1,\"level\":1}}]}",
		  "case \"a\": today: missing or not a date (set it in the case or in \"defaults\")" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"urn:visor:x:gateway\",\"expect\":\"deny\",\"today\":\"2026-01-01\","
		  "\"record\":{\"id\":\"XX-1\",\"managing_area\":\"x\",\"category\":1,\"level\":1}}]}",
		  "case \"a\": purpose: missing or not a purpose of SPEC section 5" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"urn:visor:x:gateway\",\"expect\":\"deny\",\"today\":\"2026-01-01\","
		  "\"purpose\":\"review\",\"present\":[\"a..b\"],"
		  "\"record\":{\"id\":\"XX-1\",\"managing_area\":\"x\",\"category\":1,\"level\":1}}]}",
		  "case \"a\": present: bad path \"a..b\"" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"urn:visor:x:gateway\",\"expect\":\"deny\",\"bogus\":1}]}",
		  "case \"a\": bogus: unknown key" },
		{ "{\"cases\":[{\"name\":\"a\",\"as\":\"urn:visor:x:gateway\",\"expect\":\"deny\",\"today\":\"2026-01-01\","
		  "\"purpose\":\"review\",\"clearances\":\"ct\","
		  "\"record\":{\"id\":\"XX-1\",\"managing_area\":\"x\",\"category\":1,\"level\":1}}]}",
		  "case \"a\": clearances: not an array" },
	};
	policy_t *p = load(policy_mappa_default_json());
	buf_t report;
	char err[512];
	size_t passed, failed, i;

	(void)state;
	buf_init(&report, 0);
	assert_int_equal(policy_cases_run(p, failing, strlen(failing), &report, &passed,
	    &failed, err, sizeof(err)), 0);
	assert_int_equal(passed, 1);
	assert_int_equal(failed, 2);
	assert_non_null(strstr(report.data, "FAIL wrong outcome: expected deny, got allow"));
	assert_non_null(strstr(report.data, "FAIL wrong presence: health expected present, is absent"));
	assert_non_null(strstr(report.data, "FAIL wrong presence: person.surname expected absent, is present"));
	assert_non_null(strstr(report.data, "FAIL wrong presence: person.surname expected a value, got \"S\""));
	assert_non_null(strstr(report.data, "FAIL wrong presence: person expected among the withheld paths"));
	assert_non_null(strstr(report.data, "FAIL wrong presence: rule read-police expected among the deciding rules"));
	assert_non_null(strstr(report.data, "1 passed, 2 failed\n"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&report);
		if (policy_cases_run(p, bad[i].text, strlen(bad[i].text), &report, &passed,
		    &failed, err, sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i].text);
		if (strcmp(err, bad[i].err) != 0)
			fail_msg("for %s\n got %s\nwant %s", bad[i].text, err, bad[i].err);
	}
	assert_int_equal(policy_cases_count_path(NULL, ""), -1);
	assert_int_equal(policy_cases_count_path(NULL, "a[x]"), -1);
	buf_free(&report);
	policy_free(p);
}

/* How a caller reads each field follows from the policy and the
 * record's core only: the same map for a record with every group and one
 * with the core alone. */
static void
test_read_whole_map(void **state)
{
	policy_t *p = load(policy_mappa_default_json());
	unsigned char w[256], w2[256];
	cJSON *rec = full_record(2, 2), *core = parse("{\"id\":\"TST-0002\","
	    "\"managing_area\":\"norfolk\",\"category\":2,\"level\":2}");
	cJSON *cat4 = full_record(4, 2);
	caller_t c;
	size_t nf;

	(void)state;
	record_fields(&nf);
	assert_true(nf <= sizeof(w));
	/* Police: every group but health. */
	caller(&c, POLICY_OP_READ, "urn:visor:norfolk:agency:police",
	    "risk-management", NULL, NULL);
	assert_int_equal(policy_read_map(p, &c.req, rec, w, sizeof(w)), 0);
	assert_int_equal(policy_read_map(p, &c.req, core, w2, sizeof(w2)), 0);
	assert_memory_equal(w, w2, nf);
	assert_int_equal(w[record_field_find("id")], POLICY_READ_WHOLE);
	assert_int_equal(w[record_field_find("person")], POLICY_READ_WHOLE);
	assert_int_equal(w[record_field_find("intelligence")], POLICY_READ_WHOLE);
	assert_int_equal(w[record_field_find("health")], POLICY_READ_NONE);
	assert_int_equal(w[record_field_find("health.notes")], POLICY_READ_NONE);
	/* Housing: the date of birth is read reduced; person is not whole,
	 * its surname is; orders only in part. */
	caller(&c, POLICY_OP_READ, "urn:visor:norfolk:agency:housing",
	    "risk-management", NULL, NULL);
	assert_int_equal(policy_read_map(p, &c.req, rec, w, sizeof(w)), 0);
	assert_int_equal(w[record_field_find("person.surname")], POLICY_READ_WHOLE);
	assert_int_equal(w[record_field_find("person.dob")], POLICY_READ_PART);
	assert_int_equal(w[record_field_find("person.gender")], POLICY_READ_NONE);
	assert_int_equal(w[record_field_find("health")], POLICY_READ_NONE);
	assert_int_equal(w[record_field_find("person")], POLICY_READ_PART);
	assert_int_equal(w[record_field_find("orders[].prohibitions")], POLICY_READ_WHOLE);
	assert_int_equal(w[record_field_find("orders")], POLICY_READ_PART);
	assert_int_equal(w[record_field_find("category")], POLICY_READ_WHOLE);
	/* Category 4 without clearance ct: the core alone. */
	caller(&c, POLICY_OP_READ, "urn:visor:norfolk:agency:police",
	    "risk-management", NULL, NULL);
	assert_int_equal(policy_read_map(p, &c.req, cat4, w, sizeof(w)), 0);
	/* Not even the core: a PUT of the core alone would test guesses at
	 * the level of a record the caller may not read. */
	assert_int_equal(w[record_field_find("level")], POLICY_READ_NONE);
	assert_int_equal(w[record_field_find("id")], POLICY_READ_NONE);
	assert_int_equal(w[record_field_find("person.surname")], POLICY_READ_NONE);
	assert_int_equal(w[record_field_find("person")], POLICY_READ_NONE);
	caller(&c, POLICY_OP_READ, "urn:visor:norfolk:agency:police",
	    "risk-management", "ct", NULL);
	assert_int_equal(policy_read_map(p, &c.req, cat4, w, sizeof(w)), 0);
	assert_int_equal(w[record_field_find("person.surname")], POLICY_READ_WHOLE);
	/* A field forbidden outright is not read at all, even where a
	 * permit names it. */
	{
		policy_t *pf = load("{\"format\":\"visor-policy/1\",\"rules\":["
		    "{\"id\":\"r\",\"effect\":\"permit\",\"ops\":[\"read\"],"
		    "\"fields\":[\"identity\",\"health\"]},"
		    "{\"id\":\"f\",\"effect\":\"forbid\",\"ops\":[\"read\"],"
		    "\"fields\":[\"health\"]}]}");

		caller(&c, POLICY_OP_READ, "urn:visor:norfolk:agency:probation",
		    "risk-management", NULL, NULL);
		assert_int_equal(policy_read_map(pf, &c.req, rec, w, sizeof(w)), 0);
		assert_int_equal(w[record_field_find("health.notes")],
		    POLICY_READ_NONE);
		assert_int_equal(w[record_field_find("health")], POLICY_READ_NONE);
		assert_int_equal(w[record_field_find("person.surname")],
		    POLICY_READ_WHOLE);
		policy_free(pf);
	}
	/* Bad requests. */
	assert_int_equal(policy_read_map(p, &c.req, rec, w, nf - 1), -1);
	c.req.op = POLICY_OP_WRITE;
	assert_int_equal(policy_read_map(p, &c.req, rec, w, sizeof(w)), -1);
	cJSON_Delete(rec);
	cJSON_Delete(core);
	cJSON_Delete(cat4);
	policy_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_errors_file),
		cmocka_unit_test(test_load_errors_rule),
		cmocka_unit_test(test_load_errors_when),
		cmocka_unit_test(test_load_errors_fields),
		cmocka_unit_test(test_load_errors_transform),
		cmocka_unit_test(test_hash_and_accessors),
		cmocka_unit_test(test_conditions),
		cmocka_unit_test(test_selectors_and_transforms),
		cmocka_unit_test(test_transform_odd_values),
		cmocka_unit_test(test_category4_needs_ct_builtin),
		cmocka_unit_test(test_lint_opening_rules),
		cmocka_unit_test(test_forbid_overrides_and_order),
		cmocka_unit_test(test_forbid_where_unmarked),
		cmocka_unit_test(test_default_deny_and_core_only),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_default_read_table),
		cmocka_unit_test(test_default_transfer_and_ingress),
		cmocka_unit_test(test_ingress_empty_fields),
		cmocka_unit_test(test_default_write_erase_initiate),
		cmocka_unit_test(test_bedfordshire_grant),
		cmocka_unit_test(test_properties),
		cmocka_unit_test(test_default_cases_file),
		cmocka_unit_test(test_cases_mismatch_and_errors),
		cmocka_unit_test(test_read_whole_map),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
