/*
 * libFuzzer target: policy_load on arbitrary bytes; a policy that loads is
 * then used to filter a fixed synthetic record and check a write, so that
 * compiled selectors, transforms and conditions are exercised too.
 *
 * An input with a NUL byte is a policy (before it) and a record (after
 * it), any JSON: the transforms then see values of every shape, as the
 * engine may meet in records stored under older rules.  Whatever the
 * policy says, a category 4 record is never read or transferred, not even
 * in part, by a caller without clearance ct (SPEC 7; the built-in rule),
 * and its read map (policy_read_map) promises that caller no field.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "policy/policy.h"
#include "policy/record_schema.h"
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

/* 1 if rec is a category 4 record as the engine reads the category. */
static int
category4(const cJSON *rec)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(rec, "category");

	return cJSON_IsNumber(c) && c->valuedouble == 4.0;
}

/* A read or a transfer by a caller with no clearance at all. */
static void
no_clearance(const policy_t *p, const cJSON *rec, policy_op_t op,
    const char *uri)
{
	policy_decision_t *d = NULL;
	policy_request_t req;
	identity_t id;
	unsigned char map[512];
	char err[128];
	size_t i, n;

	if (identity_parse(uri, strlen(uri), &id, err, sizeof(err)) < 0)
		abort();
	memset(&req, 0, sizeof(req));
	req.op = op;
	req.caller = &id;
	req.purpose = op == POLICY_OP_READ ? "review" : "offender-move";
	req.local_area = "norfolk";
	req.today = "2026-11-24";
	if (policy_filter(p, &req, rec, &d) == 0 && category4(rec) &&
	    (policy_decision_allowed(d) || policy_decision_record(d) != NULL))
		abort();
	policy_decision_free(d);
	/* nor does the read map promise any field of it */
	if (op == POLICY_OP_READ && category4(rec) &&
	    policy_read_map(p, &req, rec, map, sizeof(map)) == 0) {
		(void)record_fields(&n);
		for (i = 0; i < n && i < sizeof(map); i++)
			if (map[i] != POLICY_READ_NONE)
				abort();
	}
}

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
	const char *nul;
	size_t plen = size;
	policy_t *p;
	cJSON *rec;

	if ((nul = memchr(data, '\0', size)) != NULL)
		plen = (size_t)(nul - (const char *)data);
	p = policy_load((const char *)data, plen, err, sizeof(err));
	if (p == NULL)
		return 0;
	(void)policy_hash_hex(p);
	if (nul != NULL)
		rec = json_parse_strict(nul + 1, size - plen - 1,
		    JSON_DEFAULT_MAX_DEPTH, err, sizeof(err));
	else
		rec = json_parse_strict(record_text, sizeof(record_text) - 1,
		    32, err, sizeof(err));
	if (rec != NULL) {
		no_clearance(p, rec, POLICY_OP_READ,
		    "urn:visor:norfolk:agency:housing");
		no_clearance(p, rec, POLICY_OP_TRANSFER,
		    "urn:visor:suffolk:gateway");
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
