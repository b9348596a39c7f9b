/*
 * libFuzzer target: strict JSON parse, record_validate, and for a valid
 * record: filtering against the default MAPPA policy for several callers
 * and operations (with the filter-twice property checked), changed paths,
 * a write check, and merge patch both ways with a fixed record.
 *
 * A record of the right shape whose leaf values need not pass today's
 * rules (a record stored under older ones: record_validate_patched with
 * itself as the prior) is filtered too: the engine must still decide it,
 * withholding what it cannot reduce, and filtering twice must equal
 * filtering once.
 *
 * An input with a NUL byte is a stored record (before the NUL) and a
 * PATCH body (after it): the merged record is checked with
 * record_validate_patched against the stored one, as routes_records does.
 * The prior can only let more pass, never less, and only what the stored
 * record already held: if the merge passes with the prior and not without,
 * the stored record must fail today's rules too.  Every refusal says why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "policy/mappa_default.h"
#include "policy/policy.h"
#include "policy/record_schema.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_text[] =
    "{\"id\":\"FZ-1\",\"managing_area\":\"norfolk\",\"category\":2,\"level\":1,"
    "\"person\":{\"surname\":\"S\",\"dob\":\"1990-02-03\"},\"risk\":{\"rosh\":\"low\"}}";

static policy_t *policy;

/* must_decide: the record is one the store could hold, so the engine
 * must decide it; otherwise it may refuse to (-1), but must not crash. */
static void
filter_as(const cJSON *rec, policy_op_t op, const char *uri, const char *purpose,
    int must_decide)
{
	static const char *const clear[] = { "ct", "level3" };
	policy_decision_t *d = NULL, *d2 = NULL;
	policy_request_t req;
	identity_t id;
	char err[128];

	if (identity_parse(uri, strlen(uri), &id, err, sizeof(err)) < 0)
		abort();
	memset(&req, 0, sizeof(req));
	req.op = op;
	req.caller = &id;
	req.clearances = clear;
	req.n_clearances = 2;
	req.purpose = purpose;
	req.local_area = "norfolk";
	req.today = "2026-11-24";
	/* a schema-valid record must always be decidable */
	if (policy_filter(policy, &req, rec, &d) < 0) {
		if (must_decide)
			abort();
		return;
	}
	if (policy_decision_allowed(d) && op != POLICY_OP_INGRESS) {
		if (policy_filter(policy, &req, policy_decision_record(d), &d2) < 0 ||
		    !policy_decision_allowed(d2) ||
		    !cJSON_Compare(policy_decision_record(d), policy_decision_record(d2), 1))
			abort();	/* filtering twice must equal filtering once */
	}
	policy_decision_free(d2);
	policy_decision_free(d);
}

/* 1 if rec's id, managing_area, category and level pass today's rules
 * (what the store's own columns hold): the policy reads them. */
static int
core_valid(const cJSON *rec)
{
	static const char *const core[] = { "id", "managing_area", "category",
	    "level" };
	cJSON *o, *v;
	char err[128];
	size_t i;
	int ok;

	if ((o = cJSON_CreateObject()) == NULL)
		return 0;
	for (i = 0; i < sizeof(core) / sizeof(core[0]); i++) {
		v = cJSON_GetObjectItemCaseSensitive(rec, core[i]);
		if (v != NULL && (v = cJSON_Duplicate(v, 1)) != NULL)
			cJSON_AddItemToObject(o, core[i], v);
	}
	ok = record_validate(o, err, sizeof(err)) == 0;
	cJSON_Delete(o);
	return ok;
}

/* The stored record p, the PATCH body q. */
static void
patched(const char *p, size_t n, const char *q, size_t m)
{
	cJSON *prior, *patch, *merged = NULL;
	char err[256], err2[256];
	int rp, rv;

	prior = json_parse_strict(p, n, JSON_DEFAULT_MAX_DEPTH, err, sizeof(err));
	patch = json_parse_strict(q, m, JSON_DEFAULT_MAX_DEPTH, err, sizeof(err));
	if (prior != NULL && patch != NULL)
		merged = record_merge_patch(prior, patch);
	if (merged != NULL) {
		rp = record_validate_patched(merged, prior, err, sizeof(err));
		rv = record_validate(merged, err2, sizeof(err2));
		if ((rp < 0 && err[0] == '\0') || (rv < 0 && err2[0] == '\0'))
			abort();
		if (rv == 0 && rp < 0)
			abort();	/* the prior refused what passes alone */
		if (rp == 0 && rv < 0 &&
		    record_validate(prior, err, sizeof(err)) == 0)
			abort();	/* a value passed that the prior did not hold */
	}
	cJSON_Delete(merged);
	cJSON_Delete(patch);
	cJSON_Delete(prior);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul;
	char err[256];
	record_paths_t *paths;
	policy_decision_t *d = NULL;
	policy_request_t req;
	identity_t id;
	cJSON *rec, *base, *merged;

	if (policy == NULL) {
		const char *t = policy_mappa_default_json();

		policy = policy_load(t, strlen(t), err, sizeof(err));
		if (policy == NULL)
			abort();
	}
	if ((nul = memchr(data, '\0', size)) != NULL) {
		patched((const char *)data, (size_t)(nul - (const char *)data),
		    nul + 1, size - (size_t)(nul - (const char *)data) - 1);
		return 0;
	}
	rec = json_parse_strict((const char *)data, size, JSON_DEFAULT_MAX_DEPTH, err, sizeof(err));
	if (rec == NULL)
		return 0;
	base = json_parse_strict(base_text, sizeof(base_text) - 1, 32, err, sizeof(err));
	/* merge patch both ways; patch paths.  base passes today's rules, so
	 * as a prior it changes nothing. */
	merged = record_merge_patch(base, rec);
	if (merged != NULL && (record_validate(merged, err, sizeof(err)) == 0) !=
	    (record_validate_patched(merged, base, err, sizeof(err)) == 0))
		abort();
	if (merged != NULL && record_validate(merged, err, sizeof(err)) == 0) {
		paths = record_changed_paths(base, merged);
		record_paths_free(paths);
	}
	cJSON_Delete(merged);
	merged = record_merge_patch(rec, base);
	cJSON_Delete(merged);
	paths = record_patch_paths(rec, err, sizeof(err));
	record_paths_free(paths);

	if (record_validate(rec, err, sizeof(err)) < 0 &&
	    record_validate_patched(rec, rec, err, sizeof(err)) == 0) {
		/* stored under older rules: every leaf value as it is */
		filter_as(rec, POLICY_OP_READ, "urn:visor:norfolk:agency:police",
		    "review", core_valid(rec));
		filter_as(rec, POLICY_OP_READ, "urn:visor:norfolk:agency:housing",
		    "accommodation", core_valid(rec));
		filter_as(rec, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway",
		    "offender-move", core_valid(rec));
	}
	if (record_validate(rec, err, sizeof(err)) == 0) {
		filter_as(rec, POLICY_OP_READ, "urn:visor:norfolk:agency:police", "review", 1);
		filter_as(rec, POLICY_OP_READ, "urn:visor:norfolk:agency:housing", "accommodation", 1);
		filter_as(rec, POLICY_OP_READ, "urn:visor:norfolk:agency:education", "review", 1);
		filter_as(rec, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway", "offender-move", 1);
		filter_as(rec, POLICY_OP_INGRESS, "urn:visor:suffolk:gateway", "offender-move", 1);
		paths = record_changed_paths(NULL, rec);
		if (paths != NULL &&
		    identity_parse("urn:visor:norfolk:agency:probation", 34, &id, err, sizeof(err)) == 0) {
			memset(&req, 0, sizeof(req));
			req.op = POLICY_OP_WRITE;
			req.caller = &id;
			req.purpose = "risk-management";
			req.local_area = "norfolk";
			req.today = "2026-11-24";
			if (policy_check_write(policy, &req, rec, paths->items, paths->count, &d) < 0)
				abort();
			policy_decision_free(d);
		}
		record_paths_free(paths);
	}
	cJSON_Delete(base);
	cJSON_Delete(rec);
	return 0;
}
