#include "crypto/proof_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/b64.h"
#include "util/errmsg.h"
#include "util/json.h"

/* A gateway's full entries or search page of the largest leaves: each
 * item {"index":<16 digits>,"data":"<base64>"}, with its comma, then the
 * answer's own members.  Smaller, and one such page could never be read. */
_Static_assert((unsigned long long)PROOF_JSON_MAX_ENTRIES *
    (B64_ENCODED_SIZE(PROOF_JSON_MAX_LEAF) + 64) + 4096 <=
    PROOF_JSON_MAX_BODY, "a full page of the largest leaves fits an answer");

/* Objects nest at most two deep: answer, entries array, entry. */
#define MAX_DEPTH 4



/* obj is an object whose members are exactly names[0..n). */
static int
exact_members(const cJSON *obj, const char *what, const char *const *names,
    size_t n, char *err, size_t errlen)
{
	const cJSON *m;
	size_t i, seen = 0;

	if (!cJSON_IsObject(obj)) {
		errmsg_set(err, errlen, "%s is not a JSON object", what);
		return -1;
	}
	cJSON_ArrayForEach(m, obj) {
		for (i = 0; i < n; i++)
			if (strcmp(m->string, names[i]) == 0)
				break;
		if (i == n) {
			errmsg_set(err, errlen, "unexpected member \"%.40s\"", m->string);
			return -1;
		}
		seen++;	/* json_parse_strict has refused duplicates */
	}
	if (seen != n) {
		errmsg_set(err, errlen, "%s lacks a required member", what);
		return -1;
	}
	return 0;
}

static int
get_u53(const cJSON *obj, const char *key, uint64_t *out, char *err,
    size_t errlen)
{
	int64_t v;

	if (json_get_int(obj, key, 0, (int64_t)PROOF_JSON_MAX_INT, &v) != 0) {
		errmsg_set(err, errlen, "\"%s\" is not a whole number in range", key);
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

static int
get_proof(const cJSON *obj, merkle_hash_t *proof, size_t *n, char *err,
    size_t errlen)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "proof"), *h;
	unsigned char tmp[MERKLE_HASH_LEN];

	*n = 0;
	if (!cJSON_IsArray(a)) {
		errmsg_set(err, errlen, "\"%s\" is not an array", "proof");
		return -1;
	}
	cJSON_ArrayForEach(h, a) {
		if (*n == MERKLE_MAX_PROOF) {
			errmsg_set(err, errlen, "%s has more than 64 hashes", "proof");
			return -1;
		}
		if (!cJSON_IsString(h) ||
		    b64_decode(h->valuestring, strlen(h->valuestring), tmp,
		    sizeof(tmp)) != MERKLE_HASH_LEN) {
			errmsg_set(err, errlen, "%s hash is not base64 of 32 bytes",
			    "proof");
			return -1;
		}
		memcpy(proof[*n], tmp, MERKLE_HASH_LEN);
		(*n)++;
	}
	return 0;
}

static cJSON *
parse(const char *json, size_t len, char *err, size_t errlen)
{
	char why[128];
	cJSON *root;

	if (json == NULL || len > PROOF_JSON_MAX_BODY) {
		errmsg_set(err, errlen, "%s missing or too large", "answer");
		return NULL;
	}
	if ((root = json_parse_strict(json, len, MAX_DEPTH, why,
	    sizeof(why))) == NULL)
		errmsg_set(err, errlen, "malformed JSON: %s", why);
	return root;
}

int
proof_json_inclusion(const char *json, size_t len,
    proof_json_inclusion_t *out, char *err, size_t errlen)
{
	static const char *const names[] = { "index", "size", "proof" };
	cJSON *root;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if ((root = parse(json, len, err, errlen)) == NULL)
		return -1;
	if (exact_members(root, "answer", names, 3, err, errlen) != 0 ||
	    get_u53(root, "index", &out->index, err, errlen) != 0 ||
	    get_u53(root, "size", &out->size, err, errlen) != 0 ||
	    get_proof(root, out->proof, &out->n, err, errlen) != 0)
		goto done;
	if (out->index >= out->size) {
		errmsg_set(err, errlen, "%s: index is not below size", "inclusion proof");
		goto done;
	}
	ret = 0;
done:
	if (ret != 0)
		memset(out, 0, sizeof(*out));
	cJSON_Delete(root);
	return ret;
}

int
proof_json_consistency(const char *json, size_t len,
    proof_json_consistency_t *out, char *err, size_t errlen)
{
	static const char *const names[] = { "from", "to", "proof" };
	cJSON *root;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if ((root = parse(json, len, err, errlen)) == NULL)
		return -1;
	if (exact_members(root, "answer", names, 3, err, errlen) != 0 ||
	    get_u53(root, "from", &out->from, err, errlen) != 0 ||
	    get_u53(root, "to", &out->to, err, errlen) != 0 ||
	    get_proof(root, out->proof, &out->n, err, errlen) != 0)
		goto done;
	if (out->from == 0 || out->from > out->to) {
		errmsg_set(err, errlen, "%s: sizes are not 1 <= from <= to",
		    "consistency proof");
		goto done;
	}
	ret = 0;
done:
	if (ret != 0)
		memset(out, 0, sizeof(*out));
	cJSON_Delete(root);
	return ret;
}

/* Check every entry (leaf == NULL) or decode each and hand it to fn. */
static int
walk_entries(const cJSON *arr, uint64_t start, proof_json_entry_fn fn,
    void *ctx, uint8_t *leaf, char *err, size_t errlen)
{
	static const char *const names[] = { "index", "data" };
	const cJSON *e;
	uint64_t want = start;

	cJSON_ArrayForEach(e, arr) {
		const char *data;
		uint64_t idx;
		size_t dlen;
		long n;

		if (exact_members(e, "entry", names, 2, err, errlen) != 0 ||
		    get_u53(e, "index", &idx, err, errlen) != 0)
			return -1;
		if (idx != want) {
			errmsg_set(err, errlen, "%s: indices are not consecutive from start",
			    "entries");
			return -1;
		}
		if ((data = json_get_str(e, "data")) == NULL) {
			errmsg_set(err, errlen, "%s: \"data\" is not a string", "entries");
			return -1;
		}
		dlen = strlen(data);
		if (dlen == 0 || dlen > B64_ENCODED_SIZE(PROOF_JSON_MAX_LEAF) - 1 ||
		    (n = b64_decode(data, dlen, leaf, PROOF_JSON_MAX_LEAF)) <= 0) {
			errmsg_set(err, errlen, "%s: \"data\" is not base64 of 1 to 65536 bytes",
			    "entries");
			return -1;
		}
		if (fn != NULL && fn(ctx, idx, leaf, (size_t)n) != 0) {
			errmsg_set(err, errlen, "%s: entry rejected by caller", "entries");
			return -1;
		}
		want++;
	}
	return 0;
}

int
proof_json_entries(const char *json, size_t len, uint64_t start,
    size_t max, proof_json_entry_fn fn, void *ctx, size_t *count, char *err,
    size_t errlen)
{
	static const char *const names[] = { "entries" };
	const cJSON *arr;
	uint8_t *leaf = NULL;
	cJSON *root;
	int n, ret = -1;

	*count = 0;
	if (max > PROOF_JSON_MAX_ENTRIES)
		max = PROOF_JSON_MAX_ENTRIES;
	if (start > PROOF_JSON_MAX_INT) {
		errmsg_set(err, errlen, "%s: start out of range", "entries");
		return -1;
	}
	if ((root = parse(json, len, err, errlen)) == NULL)
		return -1;
	if (exact_members(root, "answer", names, 1, err, errlen) != 0)
		goto done;
	arr = cJSON_GetObjectItemCaseSensitive(root, "entries");
	if (!cJSON_IsArray(arr)) {
		errmsg_set(err, errlen, "\"%s\" is not an array", "entries");
		goto done;
	}
	n = cJSON_GetArraySize(arr);
	if (n < 0 || (size_t)n > max) {
		errmsg_set(err, errlen, "%s: more entries than asked for", "entries");
		goto done;
	}
	if ((leaf = malloc(PROOF_JSON_MAX_LEAF)) == NULL) {
		errmsg_set(err, errlen, "%s: out of memory", "entries");
		goto done;
	}
	/* Check all, then deliver: the caller never sees part of a bad answer. */
	if (walk_entries(arr, start, NULL, NULL, leaf, err, errlen) != 0 ||
	    walk_entries(arr, start, fn, ctx, leaf, err, errlen) != 0)
		goto done;
	*count = (size_t)n;
	ret = 0;
done:
	free(leaf);
	cJSON_Delete(root);
	return ret;
}
