/*
 * visorctl policy (SPEC section 7): check, explain and test, run as an
 * operator would, on the default policy and on the repository's cases and
 * synthetic record.  What must be refused as carefully as what must work:
 * a policy naming a field the schema does not have, a case file expecting
 * a wrong outcome, an operation the caller may not make.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/gwtest.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"

typedef struct {
	gwt_env_t env;
	char policy[700], src[600];
} fx_t;

static int
setup(void **state)
{
	fx_t *f = calloc(1, sizeof(*f));
	const char *src = getenv("VISOR_SRC");

	assert_non_null(f);
	assert_int_equal(gwt_env_setup(&f->env, "norfolk"), 0);
	snprintf(f->src, sizeof(f->src), "%s", src ? src : ".");
	snprintf(f->policy, sizeof(f->policy), "%s/norfolk/policy.json",
	    f->env.dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx_t *f = *state;

	gwt_env_cleanup(&f->env);
	free(f);
	return 0;
}

/* visorctl policy <args...>; its exit status, stdout and stderr. */
static int
policy_cli(fx_t *f, const char *const *args, buf_t *out, buf_t *err)
{
	const char *argv[16];
	size_t n = 0, i;

	argv[n++] = gwt_prog(&f->env, "visorctl");
	argv[n++] = "policy";
	for (i = 0; args[i] != NULL && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	buf_init(out, 0);
	buf_init(err, 0);
	return gwt_run(argv, NULL, 0, out, err);
}

static void
test_check(void **state)
{
	fx_t *f = *state;
	char bad[760];
	const char *a1[] = { "check", f->policy, NULL };
	const char *a2[] = { "check", bad, NULL };
	const char *a3[] = { "check", "/nonexistent/policy.json", NULL };
	cJSON *p, *rule, *fields;
	char *text, e[128];
	size_t len;
	buf_t out, err;

	assert_int_equal(policy_cli(f, a1, &out, &err), 0);
	assert_non_null(strstr(out.data, ": ok: 22 rules, sha256 "));
	/* The default policy has no rule that can never apply. */
	assert_true(err.len == 0 || strstr(err.data, "warning") == NULL);
	buf_free(&out);
	buf_free(&err);
	/* A transfer forbid on the caller's agency type loads, but its caller
	 * is always a peer gateway: it never applies, and check says so. */
	snprintf(bad, sizeof(bad), "%s/lint-policy.json", f->env.dir);
	assert_int_equal(file_read_all(f->policy, 1 << 20, &text, &len), 0);
	p = json_parse_strict(text, len, 64, e, sizeof(e));
	free(text);
	assert_non_null(p);
	rule = cJSON_Parse("{\"id\":\"no-cat2-by-police\",\"effect\":"
	    "\"forbid\",\"ops\":[\"transfer\"],\"when\":{\"agency_type\":"
	    "[\"police\"],\"category\":[2]}}");
	assert_non_null(rule);
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(p, "rules"), rule);
	text = cJSON_Print(p);
	assert_int_equal(file_write_atomic(bad, text, strlen(text), 0600), 0);
	free(text);
	cJSON_Delete(p);
	assert_int_equal(policy_cli(f, a2, &out, &err), 0);
	assert_non_null(strstr(out.data, ": ok: 23 rules"));
	assert_non_null(strstr(err.data, "warning: rule no-cat2-by-police: its "
	    "ops are transfer or ingress"));
	buf_free(&out);
	buf_free(&err);
	/* A rule naming a field the record schema does not have: refused,
	 * naming the rule and the field. */
	snprintf(bad, sizeof(bad), "%s/bad-policy.json", f->env.dir);
	assert_int_equal(file_read_all(f->policy, 1 << 20, &text, &len), 0);
	p = json_parse_strict(text, len, 64, e, sizeof(e));
	free(text);
	assert_non_null(p);
	rule = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p, "rules"),
	    0);
	fields = cJSON_GetObjectItemCaseSensitive(rule, "fields");
	assert_true(cJSON_IsArray(fields));
	cJSON_ReplaceItemInArray(fields, 0, cJSON_CreateString("no.such.field"));
	text = cJSON_Print(p);
	assert_int_equal(file_write_atomic(bad, text, strlen(text), 0600), 0);
	free(text);
	cJSON_Delete(p);
	assert_int_equal(policy_cli(f, a2, &out, &err), 1);
	assert_non_null(strstr(err.data, "rule \"read-police\""));
	assert_non_null(strstr(err.data, "no.such.field"));
	buf_free(&out);
	buf_free(&err);
	assert_int_equal(policy_cli(f, a3, &out, &err), 1);
	buf_free(&out);
	buf_free(&err);
}

/* f's policy with rule (JSON) added, written to the policy file the
 * gateway's configuration names. */
static void
policy_add_rule(fx_t *f, const char *rule_json)
{
	cJSON *p, *rule;
	char *text, e[128];
	size_t len;

	assert_int_equal(file_read_all(f->policy, 1 << 20, &text, &len), 0);
	p = json_parse_strict(text, len, 64, e, sizeof(e));
	free(text);
	assert_non_null(p);
	assert_non_null(rule = cJSON_Parse(rule_json));
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(p, "rules"), rule);
	text = cJSON_Print(p);
	assert_int_equal(file_write_atomic(f->policy, text, strlen(text), 0644),
	    0);
	free(text);
	cJSON_Delete(p);
}

/* The gateway says what visorctl policy check says of a policy that loads
 * but does not do what it reads as: one warn line per finding, at start
 * and at each reload that brings a new policy (not at one that leaves it
 * as it was), the policy in force all the same; --check-config prints
 * them and still passes the configuration. */
static void
test_gateway_warns(void **state)
{
	fx_t *f = *state;
	gwt_gw_t gw;
	buf_t out, err;
	const char *forbid = "level=warn event=policy-lint "
	    "rule=cat2-forbid-ends";
	const char *permit = "level=warn event=policy-lint "
	    "rule=cat1-unless-ct";
	const char *check[] = { NULL, "--config", NULL, "--check-config",
	    NULL };

	policy_add_rule(f, "{\"id\":\"cat2-forbid-ends\",\"effect\":"
	    "\"forbid\",\"ops\":[\"read\"],\"when\":{\"category\":[2],"
	    "\"valid_until\":\"2030-01-01\"}}");
	memset(&gw, 0, sizeof(gw));
	assert_int_equal(gwt_gw_start(&f->env, "norfolk", &gw), 0);
	assert_int_equal(gwt_log_count(&gw, forbid), 1);
	assert_true(gwt_log_contains(&gw, "warning=\"it is a forbid with "
	    "valid_until"));
	assert_int_equal(gwt_log_count(&gw, "event=policy-lint"), 1);
	/* A reload that leaves the policy as it is says nothing again. */
	assert_int_equal(gwt_gw_hup(&gw), 0);
	assert_int_equal(gwt_log_count(&gw, "event=policy-lint"), 1);
	/* A new policy: every finding of it, the old one too. */
	policy_add_rule(f, "{\"id\":\"cat1-unless-ct\",\"effect\":"
	    "\"permit\",\"ops\":[\"read\"],\"fields\":[\"location\"],\"when\":"
	    "{\"category\":[1],\"unless_clearance\":[\"ct\"]}}");
	assert_int_equal(gwt_gw_hup(&gw), 0);
	assert_int_equal(gwt_log_count(&gw, forbid), 2);
	assert_int_equal(gwt_log_count(&gw, permit), 1);
	assert_int_equal(gwt_log_count(&gw, "event=policy-lint"), 3);
	assert_true(gwt_gw_alive(&gw));
	check[0] = gwt_prog(&f->env, "visor-gw");
	check[2] = gw.config;
	buf_init(&out, 0);
	buf_init(&err, 0);
	assert_int_equal(gwt_run(check, NULL, 0, &out, &err), 0);
	assert_non_null(strstr(out.data, "configuration valid"));
	assert_non_null(strstr(err.data, "warning: rule cat2-forbid-ends: it "
	    "is a forbid with valid_until"));
	assert_non_null(strstr(err.data, "warning: rule cat1-unless-ct: it is "
	    "a permit with unless_clearance"));
	buf_free(&out);
	buf_free(&err);
	assert_int_equal(gwt_gw_stop_clean(&gw), 0);
}

static void
test_explain(void **state)
{
	fx_t *f = *state;
	char rec[700];
	const char *hou[] = { "explain", f->policy, "--as",
	    "urn:visor:norfolk:agency:housing", "--purpose", "accommodation",
	    "--today", "2026-11-24", rec, NULL };
	const char *erase[] = { "explain", f->policy, "--as",
	    "urn:visor:norfolk:agency:housing", "--purpose", "accommodation",
	    "--op", "erase", rec, NULL };
	const char *nopurpose[] = { "explain", f->policy, "--as",
	    "urn:visor:norfolk:agency:housing", rec, NULL };
	cJSON *j, *person;
	char e[128];
	buf_t out, err;

	snprintf(rec, sizeof(rec), "%s/tests/data/record-full.json", f->src);
	/* stdout: exactly the record housing would get; stderr: why. */
	assert_int_equal(policy_cli(f, hou, &out, &err), 0);
	j = json_parse_strict(out.data, out.len, 32, e, sizeof(e));
	if (j == NULL)
		fail_msg("explain printed no JSON record: %s", e);
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "health"));
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "intelligence"));
	assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "addresses"));
	person = cJSON_GetObjectItemCaseSensitive(j, "person");
	/* Housing: date of birth as the year only. */
	assert_string_equal(json_get_str(person, "dob"), "1984");
	cJSON_Delete(j);
	assert_non_null(strstr(err.data, "allowed"));
	assert_non_null(strstr(err.data, "withheld"));
	buf_free(&out);
	buf_free(&err);
	/* Housing may not erase: exit 1, nothing printed as sent. */
	assert_int_equal(policy_cli(f, erase, &out, &err), 1);
	assert_true(out.len == 0);
	buf_free(&out);
	buf_free(&err);
	assert_int_equal(policy_cli(f, nopurpose, &out, &err), 2);
	buf_free(&out);
	buf_free(&err);
}

static void
test_cases(void **state)
{
	fx_t *f = *state;
	char cases[700], wrong[760];
	const char *good[] = { "test", f->policy, cases, NULL };
	const char *bad[] = { "test", f->policy, wrong, NULL };
	char *text, *p;
	size_t len;
	buf_t out, err;

	snprintf(cases, sizeof(cases), "%s/tests/data/policy-default-cases.json",
	    f->src);
	assert_int_equal(policy_cli(f, good, &out, &err), 0);
	assert_non_null(strstr(out.data, "45 passed, 0 failed"));
	buf_free(&out);
	buf_free(&err);
	/* The same cases, one denial expected to be allowed: the mismatch
	 * is reported and fails the run. */
	assert_int_equal(file_read_all(cases, 1 << 20, &text, &len), 0);
	p = strstr(text, "\"expect\": \"deny\"");
	assert_non_null(p);
	buf_init(&out, 0);
	buf_append(&out, text, (size_t)(p - text));
	buf_puts(&out, "\"expect\": \"allow\"");
	buf_puts(&out, p + strlen("\"expect\": \"deny\""));
	snprintf(wrong, sizeof(wrong), "%s/wrong-cases.json", f->env.dir);
	assert_int_equal(file_write_atomic(wrong, out.data, out.len, 0600), 0);
	buf_free(&out);
	free(text);
	assert_int_equal(policy_cli(f, bad, &out, &err), 1);
	assert_non_null(strstr(out.data, "44 passed, 1 failed"));
	buf_free(&out);
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_warns, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_explain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cases, setup, teardown),
	};

	return gwt_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
