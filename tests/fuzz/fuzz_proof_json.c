/*
 * Fuzz target for crypto/proof_json: the three auditor answer readers on
 * arbitrary bytes.  Whatever is accepted must satisfy the documented bounds.
 */
#include <stdint.h>
#include <stdlib.h>

#include "crypto/proof_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
entry(void *ctx, uint64_t index, const uint8_t *leaf, size_t len)
{
	uint64_t *next = ctx;
	volatile uint8_t sink;

	if (index != *next || len == 0 || len > PROOF_JSON_MAX_LEAF)
		abort();
	sink = leaf[0];
	sink = leaf[len - 1];
	(void)sink;
	(*next)++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	proof_json_inclusion_t ip;
	proof_json_consistency_t cp;
	uint64_t next = 0;
	size_t count;
	char err[128];

	if (proof_json_inclusion(s, size, &ip, err, sizeof(err)) == 0 &&
	    (ip.index >= ip.size || ip.n > MERKLE_MAX_PROOF))
		abort();
	if (proof_json_consistency(s, size, &cp, err, sizeof(err)) == 0 &&
	    (cp.from == 0 || cp.from > cp.to || cp.n > MERKLE_MAX_PROOF))
		abort();
	if (proof_json_entries(s, size, 0, PROOF_JSON_MAX_ENTRIES, entry, &next,
	    &count, err, sizeof(err)) == 0 && count != next)
		abort();
	return 0;
}
