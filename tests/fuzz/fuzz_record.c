/*
 * libFuzzer target: strict JSON parse, record_validate, and for a valid
 * record: filtering against the default MAPPA policy for several callers
 * and operations (with the filter-twice property checked), changed paths,
 * a write check, and merge patch both ways with a fixed record.
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

static void
filter_as(const cJSON *rec, policy_op_t op, const char *uri, const char *purpose)
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
	if (policy_filter(policy, &req, rec, &d) < 0)
		abort();
	if (policy_decision_allowed(d) && op != POLICY_OP_INGRESS) {
		if (policy_filter(policy, &req, policy_decision_record(d), &d2) < 0 ||
		    !policy_decision_allowed(d2) ||
		    !cJSON_Compare(policy_decision_record(d), policy_decision_record(d2), 1))
			abort();	/* filtering twice must equal filtering once */
	}
	policy_decision_free(d2);
	policy_decision_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
	rec = json_parse_strict((const char *)data, size, JSON_DEFAULT_MAX_DEPTH, err, sizeof(err));
	if (rec == NULL)
		return 0;
	base = json_parse_strict(base_text, sizeof(base_text) - 1, 32, err, sizeof(err));
	/* merge patch both ways; patch paths */
	merged = record_merge_patch(base, rec);
	if (merged != NULL && record_validate(merged, err, sizeof(err)) == 0) {
		paths = record_changed_paths(base, merged);
		record_paths_free(paths);
	}
	cJSON_Delete(merged);
	merged = record_merge_patch(rec, base);
	cJSON_Delete(merged);
	paths = record_patch_paths(rec, err, sizeof(err));
	record_paths_free(paths);

	if (record_validate(rec, err, sizeof(err)) == 0) {
		filter_as(rec, POLICY_OP_READ, "urn:visor:norfolk:agency:police", "review");
		filter_as(rec, POLICY_OP_READ, "urn:visor:norfolk:agency:housing", "accommodation");
		filter_as(rec, POLICY_OP_READ, "urn:visor:norfolk:agency:education", "review");
		filter_as(rec, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway", "offender-move");
		filter_as(rec, POLICY_OP_INGRESS, "urn:visor:suffolk:gateway", "offender-move");
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
