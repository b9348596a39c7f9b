/*
 * libFuzzer target: policy_load on arbitrary bytes; a policy that loads is
 * then used to filter a fixed synthetic record and check a write, so that
 * compiled selectors, transforms and conditions are exercised too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crypto/identity.h"
#include "policy/policy.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char record_text[] =
    "{\"id\":\"FZ-1\",\"version\":1,\"managing_area\":\"norfolk\",\"category\":4,\"level\":3,"
    "\"person\":{\"surname\":\"S\",\"dob\":\"1990-02-03\",\"aliases\":[{\"surname\":\"A\"}]},"
    "\"addresses\":[{\"type\":\"home\",\"postcode\":\"NR1 9ZZ\",\"to\":\"2020-01-01\"},{\"postcode\":\"IP229ZZ\"}],"
    "\"risk\":{\"rosh\":\"high\",\"factors\":[\"f\"]},\"orders\":[{\"type\":\"SHPO\",\"prohibitions\":[\"p\"]}],"
    "\"notification\":{\"until\":\"indefinite\"},\"health\":{\"notes\":[\"h\"]},"
    "\"intelligence\":[{\"handling\":\"shareable\",\"text\":\"a\"},{\"handling\":\"police-only\",\"text\":\"b\"}],"
    "\"vehicles\":[{\"vrm\":\"X\"}]}";

static void
exercise(const policy_t *p, const cJSON *rec, policy_op_t op, const char *uri)
{
	static const char *const clear[] = { "ct", "level3" };
	static const char *const paths[] = { "addresses", "person.surname", "health", "nothing" };
	policy_decision_t *d = NULL;
	policy_request_t req;
	identity_t id;
	char err[128];
	size_t n;

	if (identity_parse(uri, strlen(uri), &id, err, sizeof(err)) < 0)
		return;
	memset(&req, 0, sizeof(req));
	req.op = op;
	req.caller = &id;
	req.clearances = clear;
	req.n_clearances = op == POLICY_OP_READ ? 1 : 2;
	req.purpose = op == POLICY_OP_READ ? "review" : "offender-move";
	req.local_area = "norfolk";
	req.today = "2026-11-24";
	if (op == POLICY_OP_WRITE)
		(void)policy_check_write(p, &req, rec, paths, 4, &d);
	else if (op == POLICY_OP_ERASE)
		(void)policy_check_erase(p, &req, rec, &d);
	else
		(void)policy_filter(p, &req, rec, &d);
	if (d != NULL) {
		(void)policy_decision_withheld(d, &n);
		(void)policy_decision_explanation(d, &n);
		(void)policy_decision_reason(d);
	}
	policy_decision_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	policy_t *p;
	cJSON *rec;

	p = policy_load((const char *)data, size, err, sizeof(err));
	if (p == NULL)
		return 0;
	(void)policy_hash_hex(p);
	rec = json_parse_strict(record_text, sizeof(record_text) - 1, 32, err, sizeof(err));
	if (rec != NULL) {
		exercise(p, rec, POLICY_OP_READ, "urn:visor:norfolk:agency:housing");
		exercise(p, rec, POLICY_OP_READ, "urn:visor:bedfordshire:agency:police:unit");
		exercise(p, rec, POLICY_OP_TRANSFER, "urn:visor:suffolk:gateway");
		exercise(p, rec, POLICY_OP_INGRESS, "urn:visor:suffolk:gateway");
		exercise(p, rec, POLICY_OP_WRITE, "urn:visor:norfolk:agency:police");
		exercise(p, rec, POLICY_OP_ERASE, "urn:visor:norfolk:agency:police");
		cJSON_Delete(rec);
	}
	policy_free(p);
	return 0;
}
