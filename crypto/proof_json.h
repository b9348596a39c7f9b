/*
 * proof_json: strict readers for the auditor API's JSON answers (SPEC
 * section 5), on top of json_parse_strict:
 *
 *   GET /v1/audit/proof/inclusion    {"index":I,"size":N,"proof":[h...]}
 *   GET /v1/audit/proof/consistency  {"from":M,"to":N,"proof":[h...]}
 *   GET /v1/audit/entries            {"entries":[{"index":i,"data":"<b64>"}]}
 *
 * Each h is standard base64 of exactly 32 bytes.  Objects must hold exactly
 * the members shown (a missing, repeated or unknown member is an error), of
 * the types shown.  Integers must be whole numbers in [0, 2^53 - 1] (what a
 * JSON number carries exactly); a proof holds at most MERKLE_MAX_PROOF
 * hashes.  The readers check shape only: proofs still go to merkle_verify_*.
 */
#ifndef CRYPTO_PROOF_JSON_H
#define CRYPTO_PROOF_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/merkle.h"

#define PROOF_JSON_MAX_INT 9007199254740991ULL	/* 2^53 - 1 */
/* Bytes of one answer: a full page of the largest leaves, base64, fits
 * (1000 x 87,384 bytes, about 83.4 MiB, with each item's index and
 * members; proof_json.c checks it). */
#define PROOF_JSON_MAX_BODY (96u << 20)
#define PROOF_JSON_MAX_ENTRIES 1000		/* per entries answer */
#define PROOF_JSON_MAX_LEAF 65536		/* bytes of one decoded leaf */

typedef struct {
	uint64_t index;		/* < size */
	uint64_t size;
	size_t n;		/* hashes in proof */
	merkle_hash_t proof[MERKLE_MAX_PROOF];
} proof_json_inclusion_t;

typedef struct {
	uint64_t from;		/* 1 <= from <= to */
	uint64_t to;
	size_t n;
	merkle_hash_t proof[MERKLE_MAX_PROOF];
} proof_json_consistency_t;

/* Read an inclusion proof answer of len bytes into *out.  Also requires
 * index < size.  0, or -1 with a reason in err (NUL-terminated). */
int proof_json_inclusion(const char *json, size_t len,
    proof_json_inclusion_t *out, char *err, size_t errlen);

/* Read a consistency proof answer into *out.  Also requires
 * 1 <= from <= to.  0, or -1 with a reason in err. */
int proof_json_consistency(const char *json, size_t len,
    proof_json_consistency_t *out, char *err, size_t errlen);

/* Called once per entry, in order, with the decoded leaf bytes (valid only
 * during the call).  Return 0 to go on, -1 to stop (the reader then fails
 * with "entry rejected by caller"). */
typedef int (*proof_json_entry_fn)(void *ctx, uint64_t index,
    const uint8_t *leaf, size_t len);

/* Read an entries answer.  The entries must carry the consecutive indices
 * start, start + 1, ... (at most max of them, max <= PROOF_JSON_MAX_ENTRIES;
 * an empty list is allowed), each leaf non-empty base64 of at most
 * PROOF_JSON_MAX_LEAF bytes.  The whole answer is checked before the first
 * call to fn.  Sets *count to the number of entries and returns 0, or -1
 * with a reason in err. */
int proof_json_entries(const char *json, size_t len, uint64_t start,
    size_t max, proof_json_entry_fn fn, void *ctx, size_t *count, char *err,
    size_t errlen);

#endif
