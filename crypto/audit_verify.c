/*
 * audit_verify: checks of what an auditor is sent (see audit_verify.h).
 * Everything here treats its input as hostile: lengths are bounded before
 * use and any shape the contract does not allow is an error.
 */
#include "crypto/audit_verify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto/proof_json.h"
#include "util/b64.h"
#include "util/errmsg.h"
#include "util/json.h"
#include "util/rfc3339.h"

#define LEAF_B64_MAX (B64_ENCODED_SIZE(AUDIT_VERIFY_MAX_LEAF) - 1)
#define BUNDLE_DEPTH 4
#define SEARCH_DEPTH 4



static void
root_b64(const merkle_hash_t root, char out[B64_ENCODED_SIZE(MERKLE_HASH_LEN)])
{
	b64_encode(root, MERKLE_HASH_LEN, out);
}

int
audit_verify_checkpoint(const note_verifier_t *v, const char *note,
    size_t len, audit_checkpoint_t *out, char *err, size_t errlen)
{
	const char *name = note_verifier_name(v);
	char why[AUDIT_VERIFY_ERR];
	size_t body_len;

	memset(out, 0, sizeof(*out));
	if (note == NULL || len == 0 || len > NOTE_MAX_SIZE) {
		errmsg_set(err, errlen, "checkpoint: empty or larger than %d bytes",
		    NOTE_MAX_SIZE);
		return -1;
	}
	if (note_open(v, note, len, &body_len, why, sizeof(why)) < 0) {
		errmsg_set(err, errlen, "checkpoint signature: %s", why);
		return -1;
	}
	if (checkpoint_parse(note, body_len, name, &out->size, out->root, why,
	    sizeof(why)) < 0) {
		errmsg_set(err, errlen, "checkpoint (origin must be %s): %s", name,
		    why);
		return -1;
	}
	if (strlen(name) >= sizeof(out->origin)) {
		errmsg_set(err, errlen, "checkpoint: origin too long");
		return -1;
	}
	memcpy(out->origin, name, strlen(name) + 1);
	return 0;
}

/* audit_verify_leaf; with when non-NULL also the entry's time in the
 * canonical form, or "" when it has none that reads as one. */
static int
check_leaf(const uint8_t *leaf, size_t len, uint64_t index,
    char when[AUDIT_TIME_MAX], char *err, size_t errlen)
{
	char why[128];
	const char *t;
	cJSON *j;
	int64_t seq;
	int rc;

	if (leaf == NULL || len == 0 || len > AUDIT_VERIFY_MAX_LEAF) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": empty or longer than "
		    "%d bytes", index, AUDIT_VERIFY_MAX_LEAF);
		return -1;
	}
	if ((j = json_parse_strict((const char *)leaf, len,
	    JSON_DEFAULT_MAX_DEPTH, why, sizeof(why))) == NULL) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": not valid JSON (%s)",
		    index, why);
		return -1;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		errmsg_set(err, errlen, "entry %" PRIu64 ": not a JSON object",
		    index);
		return -1;
	}
	rc = json_get_int(j, "seq", 0, (int64_t)PROOF_JSON_MAX_INT, &seq);
	if (when != NULL && ((t = json_get_str(j, "time")) == NULL ||
	    rfc3339_canonical(t, when) < 0))
		when[0] = '\0';
	cJSON_Delete(j);
	if (rc != 0) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": no valid \"seq\"", index);
		return -1;
	}
	if ((uint64_t)seq != index) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": carries seq %" PRId64
		    " (entries removed, replaced or reordered)", index, seq);
		return -1;
	}
	/* And written as every gateway writes it, first and in plain
	 * decimal (audit_entry_assemble; the gateway's start-up check asks
	 * the same): 1.0, 1e0 or -0 parse as numbers equal to the index,
	 * but a reader taking the text at its word would see another seq. */
	{
		char want[40];
		int n = snprintf(want, sizeof(want), "{\"seq\":%" PRIu64, index);

		if (n <= 0 || (size_t)n >= len || memcmp(leaf, want, (size_t)n) != 0 ||
		    (leaf[n] != ',' && leaf[n] != '}')) {
			errmsg_set(err, errlen, "entry %" PRIu64 ": does not begin "
			    "%s (seq first, in plain decimal)", index, want);
			return -1;
		}
	}
	return 0;
}

int
audit_verify_leaf(const uint8_t *leaf, size_t len, uint64_t index, char *err,
    size_t errlen)
{
	return check_leaf(leaf, len, index, NULL, err, errlen);
}

/* ------------------------------------------------------------ walking */

void
audit_walk_init(audit_walk_t *w)
{
	merkle_frontier_init(&w->f);
	w->bad_index = AUDIT_INDEX_NONE;
	w->latest_time[0] = '\0';
	w->times_back = 0;
	w->first_back = AUDIT_INDEX_NONE;
}

int
audit_walk_add(audit_walk_t *w, uint64_t index, const uint8_t *leaf,
    size_t len, char *err, size_t errlen)
{
	merkle_hash_t h;
	char when[AUDIT_TIME_MAX];

	if (w->bad_index != AUDIT_INDEX_NONE) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": the walk already "
		    "failed at entry %" PRIu64, index, w->bad_index);
		return -1;
	}
	if (index != w->f.size) {
		w->bad_index = w->f.size;
		errmsg_set(err, errlen, "entry %" PRIu64 ": expected entry %"
		    PRIu64 " here", index, w->f.size);
		return -1;
	}
	if (check_leaf(leaf, len, index, when, err, errlen) < 0) {
		w->bad_index = index;
		return -1;
	}
	if (when[0] != '\0') {
		if (strcmp(when, w->latest_time) < 0) {
			if (w->times_back++ == 0)
				w->first_back = index;
		} else {
			memcpy(w->latest_time, when, sizeof(w->latest_time));
		}
	}
	merkle_leaf_hash(leaf, len, h);
	if (merkle_frontier_append(&w->f, h, NULL, NULL) < 0) {
		w->bad_index = index;
		errmsg_set(err, errlen, "entry %" PRIu64 ": tree full", index);
		return -1;
	}
	return 0;
}

typedef struct {
	audit_walk_t *w;
	char *err;
	size_t errlen;
	int failed;
} page_ctx_t;

static int
page_entry(void *ctx, uint64_t index, const uint8_t *leaf, size_t len)
{
	page_ctx_t *pc = ctx;

	if (audit_walk_add(pc->w, index, leaf, len, pc->err, pc->errlen) < 0) {
		pc->failed = 1;
		return -1;
	}
	return 0;
}

int
audit_walk_page(audit_walk_t *w, const char *json, size_t len,
    uint64_t start, size_t max, size_t *count, char *err, size_t errlen)
{
	page_ctx_t pc = { w, err, errlen, 0 };
	char why[AUDIT_VERIFY_ERR];

	*count = 0;
	if (start != w->f.size || w->bad_index != AUDIT_INDEX_NONE) {
		errmsg_set(err, errlen, "entries page at %" PRIu64 ": the walk is at %"
		    PRIu64, start, w->f.size);
		return -1;
	}
	if (proof_json_entries(json, len, start, max, page_entry, &pc, count,
	    why, sizeof(why)) < 0) {
		if (!pc.failed)
			errmsg_set(err, errlen, "entries from %" PRIu64 ": %s",
			    start, why);
		return -1;
	}
	return 0;
}

int
audit_walk_finish(const audit_walk_t *w, const audit_checkpoint_t *cp,
    char *err, size_t errlen)
{
	merkle_hash_t root;
	char want[B64_ENCODED_SIZE(MERKLE_HASH_LEN)];
	char got[B64_ENCODED_SIZE(MERKLE_HASH_LEN)];

	if (w->bad_index != AUDIT_INDEX_NONE) {
		errmsg_set(err, errlen, "entry %" PRIu64 " failed", w->bad_index);
		return -1;
	}
	if (w->f.size != cp->size) {
		errmsg_set(err, errlen, "%" PRIu64 " entries checked but the "
		    "checkpoint signs %" PRIu64 " (entry %" PRIu64 " missing)",
		    w->f.size, cp->size, w->f.size < cp->size ? w->f.size :
		    cp->size);
		return -1;
	}
	merkle_frontier_root(&w->f, root);
	if (CRYPTO_memcmp(root, cp->root, MERKLE_HASH_LEN) != 0) {
		root_b64(root, got);
		root_b64(cp->root, want);
		errmsg_set(err, errlen, "the %" PRIu64 " entries hash to %s, not to "
		    "the signed root %s: an entry was altered", cp->size, got,
		    want);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ proofs */

int
audit_inclusion_root(uint64_t index, uint64_t size,
    const merkle_hash_t leaf_hash, const merkle_hash_t *proof, size_t n,
    merkle_hash_t root_out)
{
	uint64_t fn = index, sn;
	merkle_hash_t r, t;
	size_t i;

	if (index >= size || n > MERKLE_MAX_PROOF)
		return -1;
	sn = size - 1;
	memcpy(r, leaf_hash, MERKLE_HASH_LEN);
	for (i = 0; i < n; i++) {
		if (sn == 0)
			return -1;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof[i], r, t);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_node_hash(r, proof[i], t);
		}
		memcpy(r, t, MERKLE_HASH_LEN);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return -1;
	memcpy(root_out, r, MERKLE_HASH_LEN);
	return 0;
}

static int
read_inclusion(const char *json, size_t len, uint64_t index, uint64_t size,
    proof_json_inclusion_t *p, char *err, size_t errlen)
{
	char why[AUDIT_VERIFY_ERR];

	if (json == NULL || proof_json_inclusion(json, len, p, why,
	    sizeof(why)) < 0) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": inclusion proof "
		    "unreadable: %s", index, json ? why : "missing");
		return -1;
	}
	if (p->index != index || p->size != size) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": inclusion proof is for "
		    "index %" PRIu64 " in size %" PRIu64 ", not size %" PRIu64,
		    index, p->index, p->size, size);
		return -1;
	}
	return 0;
}

int
audit_verify_inclusion_answer(const char *json, size_t len, uint64_t index,
    uint64_t size, const uint8_t *leaf, size_t leaf_len,
    const merkle_hash_t root, char *err, size_t errlen)
{
	proof_json_inclusion_t p;
	merkle_hash_t lh;

	if (audit_verify_leaf(leaf, leaf_len, index, err, errlen) < 0 ||
	    read_inclusion(json, len, index, size, &p, err, errlen) < 0)
		return -1;
	merkle_leaf_hash(leaf, leaf_len, lh);
	if (merkle_verify_inclusion(index, size, lh, p.proof, p.n, root) < 0) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": inclusion proof in the "
		    "tree of %" PRIu64 " does not verify against the root",
		    index, size);
		return -1;
	}
	return 0;
}

int
audit_verify_inclusion_at(const char *incl_json, size_t incl_len,
    const char *cons_json, size_t cons_len, uint64_t index, uint64_t size,
    const uint8_t *leaf, size_t leaf_len, const audit_checkpoint_t *cp,
    char *err, size_t errlen)
{
	proof_json_inclusion_t p;
	audit_checkpoint_t at;
	merkle_hash_t lh;
	char why[AUDIT_VERIFY_ERR];

	if (size > cp->size || size == 0) {
		errmsg_set(err, errlen, "size %" PRIu64 " is not in 1..%" PRIu64
		    " (the signed size)", size, cp->size);
		return -1;
	}
	if (size == cp->size)
		return audit_verify_inclusion_answer(incl_json, incl_len, index,
		    size, leaf, leaf_len, cp->root, err, errlen);
	if (audit_verify_leaf(leaf, leaf_len, index, err, errlen) < 0 ||
	    read_inclusion(incl_json, incl_len, index, size, &p, err,
	    errlen) < 0)
		return -1;
	merkle_leaf_hash(leaf, leaf_len, lh);
	memcpy(&at, cp, sizeof(at));
	at.size = size;
	if (audit_inclusion_root(index, size, lh, p.proof, p.n, at.root) < 0) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": inclusion proof has the "
		    "wrong length for size %" PRIu64, index, size);
		return -1;
	}
	if (audit_verify_consistency_answer(cons_json, cons_len, &at, cp, why,
	    sizeof(why)) < 0) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": the tree of %" PRIu64
		    " is not proved a prefix of the signed tree: %s", index,
		    size, why);
		return -1;
	}
	return 0;
}

int
audit_verify_consistency_answer(const char *json, size_t len,
    const audit_checkpoint_t *old_cp, const audit_checkpoint_t *new_cp,
    char *err, size_t errlen)
{
	proof_json_consistency_t p;
	char why[AUDIT_VERIFY_ERR];

	if (new_cp->size < old_cp->size) {
		errmsg_set(err, errlen, "the log shrank from %" PRIu64 " to %" PRIu64
		    " entries (rolled back or truncated)", old_cp->size,
		    new_cp->size);
		return -1;
	}
	if (old_cp->size == 0)
		return 0;
	if (json == NULL || proof_json_consistency(json, len, &p, why,
	    sizeof(why)) < 0) {
		errmsg_set(err, errlen, "consistency proof %" PRIu64 " -> %" PRIu64
		    " unreadable: %s", old_cp->size, new_cp->size,
		    json ? why : "missing");
		return -1;
	}
	if (p.from != old_cp->size || p.to != new_cp->size) {
		errmsg_set(err, errlen, "consistency proof is for %" PRIu64 " -> %"
		    PRIu64 ", not %" PRIu64 " -> %" PRIu64, p.from, p.to,
		    old_cp->size, new_cp->size);
		return -1;
	}
	if (merkle_verify_consistency(old_cp->size, new_cp->size, old_cp->root,
	    new_cp->root, p.proof, p.n) < 0) {
		errmsg_set(err, errlen, "consistency proof %" PRIu64 " -> %" PRIu64
		    " does not verify: the log was rewritten", old_cp->size,
		    new_cp->size);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ arrays of
 * {"index":i,"data":"<b64>"} (search answers and bundles) */

/* An object with exactly the members index and data; decodes data into
 * leaf (capacity AUDIT_VERIFY_MAX_LEAF).  0 or -1 with err. */
static int
read_indexed_leaf(const cJSON *item, size_t pos, uint64_t *index,
    uint8_t *leaf, size_t *len, char *err, size_t errlen)
{
	const cJSON *m;
	int64_t ix;
	long n;
	size_t members = 0, dlen;

	if (!cJSON_IsObject(item)) {
		errmsg_set(err, errlen, "item %zu: not an object", pos);
		return -1;
	}
	cJSON_ArrayForEach(m, item) {
		if (m->string == NULL || (strcmp(m->string, "index") != 0 &&
		    strcmp(m->string, "data") != 0)) {
			errmsg_set(err, errlen, "item %zu: unknown member", pos);
			return -1;
		}
		members++;
	}
	if (members != 2 || json_get_int(item, "index", 0,
	    (int64_t)PROOF_JSON_MAX_INT, &ix) != 0) {
		errmsg_set(err, errlen, "item %zu: needs \"index\" (whole number) "
		    "and \"data\"", pos);
		return -1;
	}
	*index = (uint64_t)ix;
	m = cJSON_GetObjectItemCaseSensitive(item, "data");
	if (!cJSON_IsString(m) || m->valuestring == NULL ||
	    (dlen = strlen(m->valuestring)) == 0 || dlen > LEAF_B64_MAX ||
	    (n = b64_decode(m->valuestring, dlen, leaf,
	    AUDIT_VERIFY_MAX_LEAF)) <= 0) {
		errmsg_set(err, errlen, "entry %" PRIu64 ": \"data\" is not "
		    "non-empty base64 of at most %d bytes", *index,
		    AUDIT_VERIFY_MAX_LEAF);
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

static int
exact_members(const cJSON *obj, const char *const *names, size_t n)
{
	const cJSON *m;
	size_t seen = 0, i;

	if (!cJSON_IsObject(obj))
		return -1;
	cJSON_ArrayForEach(m, obj) {
		for (i = 0; i < n; i++)
			if (m->string != NULL && strcmp(m->string, names[i]) == 0)
				break;
		if (i == n)
			return -1;
		seen++;
	}
	return seen == n ? 0 : -1;
}

int
audit_search_answer(const char *json, size_t len, audit_hit_fn fn, void *ctx,
    uint64_t *size, size_t *count, char *err, size_t errlen)
{
	return audit_search_page(json, len, fn, ctx, size, count, NULL, err,
	    errlen);
}

int
audit_search_page(const char *json, size_t len, audit_hit_fn fn, void *ctx,
    uint64_t *size, size_t *count, uint64_t *next, char *err, size_t errlen)
{
	static const char *const members[] = { "size", "entries", "next" };
	const cJSON *arr, *item;
	uint8_t *leaf = NULL;
	cJSON *j = NULL;
	char why[128];
	uint64_t index, prev = 0;
	int64_t sz, nx = 0;
	size_t n = 0, llen;
	int pass, ret = -1, has_next;

	*count = 0;
	*size = 0;
	if (next != NULL)
		*next = 0;
	if (len > PROOF_JSON_MAX_BODY) {
		errmsg_set(err, errlen, "search answer too large");
		return -1;
	}
	if ((j = json_parse_strict(json, len, SEARCH_DEPTH, why,
	    sizeof(why))) == NULL) {
		errmsg_set(err, errlen, "search answer: %s", why);
		return -1;
	}
	has_next = next != NULL &&
	    cJSON_GetObjectItemCaseSensitive(j, "next") != NULL;
	if (exact_members(j, members, has_next ? 3 : 2) < 0 ||
	    json_get_int(j, "size", 0, (int64_t)PROOF_JSON_MAX_INT, &sz) != 0 ||
	    !cJSON_IsArray(arr = cJSON_GetObjectItemCaseSensitive(j,
	    "entries")) ||
	    (has_next && json_get_int(j, "next", 1, sz, &nx) != 0)) {
		errmsg_set(err, errlen, "search answer: needs exactly \"size\" and "
		    "\"entries\"%s", next != NULL ? " (and \"next\", an index "
		    "within size)" : "");
		goto out;
	}
	if ((leaf = malloc(AUDIT_VERIFY_MAX_LEAF)) == NULL) {
		errmsg_set(err, errlen, "out of memory");
		goto out;
	}
	/* Pass 0 checks everything, pass 1 reports: no hit is handed on from
	 * an answer that is bad further down. */
	for (pass = 0; pass < 2; pass++) {
		n = 0;
		cJSON_ArrayForEach(item, arr) {
			if (read_indexed_leaf(item, n, &index, leaf, &llen, err,
			    errlen) < 0)
				goto out;
			if (pass == 0) {
				if ((n > 0 && index <= prev) ||
				    index >= (uint64_t)sz) {
					errmsg_set(err, errlen, "search hit %zu: "
					    "index %" PRIu64 " out of order or "
					    "beyond size %" PRId64, n, index, sz);
					goto out;
				}
				if (audit_verify_leaf(leaf, llen, index, err,
				    errlen) < 0)
					goto out;
				prev = index;
			} else if (fn != NULL && fn(ctx, index, leaf, llen) < 0) {
				errmsg_set(err, errlen, "entry %" PRIu64
				    ": rejected", index);
				goto out;
			}
			n++;
		}
		/* A next page starts past this one: paging always ends. */
		if (pass == 0 && has_next && (n == 0 || (uint64_t)nx <= prev)) {
			errmsg_set(err, errlen, "search answer: \"next\" %" PRId64
			    " is not past the page's last hit", nx);
			goto out;
		}
	}
	*size = (uint64_t)sz;
	*count = n;
	if (next != NULL)
		*next = (uint64_t)nx;
	ret = 0;
out:
	free(leaf);
	cJSON_Delete(j);
	return ret;
}

/* ------------------------------------------------------------ bundles */

static int
append_json_string(buf_t *out, const char *s, size_t len)
{
	cJSON *str;
	char *tmp, *p;
	int rc;

	if ((tmp = malloc(len + 1)) == NULL)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	str = cJSON_CreateString(tmp);
	free(tmp);
	if (str == NULL)
		return -1;
	p = cJSON_PrintUnformatted(str);
	cJSON_Delete(str);
	if (p == NULL)
		return -1;
	rc = buf_puts(out, p);
	cJSON_free(p);
	return rc;
}

int
audit_bundle_begin(buf_t *out, const char *vkey_line, const char *note,
    size_t note_len)
{
	size_t vlen = strlen(vkey_line);

	while (vlen > 0 && (vkey_line[vlen - 1] == '\n' ||
	    vkey_line[vlen - 1] == ' ' || vkey_line[vlen - 1] == '\r'))
		vlen--;
	if (memchr(note, '\0', note_len) != NULL)
		return -1;
	if (buf_puts(out, "{\"format\":\"" AUDIT_BUNDLE_FORMAT "\",\n"
	    "\"vkey\":") < 0 || append_json_string(out, vkey_line, vlen) < 0 ||
	    buf_puts(out, ",\n\"checkpoint\":") < 0 ||
	    append_json_string(out, note, note_len) < 0 ||
	    buf_puts(out, ",\n\"entries\":[") < 0)
		return -1;
	return 0;
}

int
audit_bundle_add(buf_t *out, uint64_t index, const uint8_t *leaf, size_t len)
{
	char *b64;
	int rc;

	if (len == 0 || len > AUDIT_VERIFY_MAX_LEAF)
		return -1;
	if ((b64 = malloc(B64_ENCODED_SIZE(len))) == NULL)
		return -1;
	b64_encode(leaf, len, b64);
	rc = buf_printf(out, "%s\n{\"index\":%" PRIu64 ",\"data\":\"%s\"}",
	    index ? "," : "", index, b64);
	free(b64);
	return rc;
}

int
audit_bundle_end(buf_t *out)
{
	return buf_puts(out, "\n]}\n");
}

int
audit_bundle_verify(const char *json, size_t len,
    const note_verifier_t *trusted, audit_bundle_result_t *res, char *err,
    size_t errlen)
{
	merkle_hash_t unused;
	int have;

	return audit_bundle_verify_at(json, len, trusted, 0, unused, &have, res,
	    err, errlen);
}

int
audit_bundle_verify_at(const char *json, size_t len,
    const note_verifier_t *trusted, uint64_t at_size, merkle_hash_t at_root,
    int *have_at, audit_bundle_result_t *res, char *err, size_t errlen)
{
	static const char *const members[] = { "format", "vkey", "checkpoint",
	    "entries" };
	note_verifier_t *own = NULL;
	const note_verifier_t *v;
	const cJSON *fmt, *vk, *ck, *arr, *item;
	audit_walk_t w;
	uint8_t *leaf = NULL;
	cJSON *j = NULL;
	char why[AUDIT_VERIFY_ERR];
	uint64_t index;
	size_t pos = 0, llen;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	res->bad_index = AUDIT_INDEX_NONE;
	*have_at = 0;
	if (json == NULL || len == 0 || len > AUDIT_BUNDLE_MAX) {
		errmsg_set(err, errlen, "bundle: empty or larger than %u bytes",
		    AUDIT_BUNDLE_MAX);
		return -1;
	}
	if ((j = json_parse_strict(json, len, BUNDLE_DEPTH, why,
	    sizeof(why))) == NULL) {
		errmsg_set(err, errlen, "bundle is not valid JSON (truncated?): %s",
		    why);
		return -1;
	}
	if (exact_members(j, members, 4) < 0 ||
	    !cJSON_IsString(fmt = cJSON_GetObjectItemCaseSensitive(j,
	    "format")) ||
	    !cJSON_IsString(vk = cJSON_GetObjectItemCaseSensitive(j, "vkey")) ||
	    !cJSON_IsString(ck = cJSON_GetObjectItemCaseSensitive(j,
	    "checkpoint")) ||
	    !cJSON_IsArray(arr = cJSON_GetObjectItemCaseSensitive(j,
	    "entries"))) {
		errmsg_set(err, errlen, "bundle: needs exactly the string members "
		    "format, vkey, checkpoint and the array entries");
		goto out;
	}
	if (strcmp(fmt->valuestring, AUDIT_BUNDLE_FORMAT) != 0) {
		errmsg_set(err, errlen, "bundle: format is not %s",
		    AUDIT_BUNDLE_FORMAT);
		goto out;
	}
	if ((own = note_verifier_parse(vk->valuestring,
	    strlen(vk->valuestring), why, sizeof(why))) == NULL) {
		errmsg_set(err, errlen, "bundle: bad vkey line: %s", why);
		goto out;
	}
	if (trusted != NULL) {
		char tid[9], oid[9];

		/* Name and key id: a vkey line of another key under the same
		 * name is not the key the bundle says signed it. */
		note_verifier_key_id(trusted, tid);
		note_verifier_key_id(own, oid);
		if (strcmp(note_verifier_name(trusted),
		    note_verifier_name(own)) != 0 || strcmp(tid, oid) != 0) {
			errmsg_set(err, errlen, "bundle: its key %s+%s is not the "
			    "trusted key %s+%s", note_verifier_name(own), oid,
			    note_verifier_name(trusted), tid);
			goto out;
		}
	}
	v = trusted != NULL ? trusted : own;
	res->key_from_bundle = trusted == NULL;
	snprintf(res->key_name, sizeof(res->key_name), "%s",
	    note_verifier_name(v));
	if (audit_verify_checkpoint(v, ck->valuestring,
	    strlen(ck->valuestring), &res->cp, err, errlen) < 0)
		goto out;
	if ((leaf = malloc(AUDIT_VERIFY_MAX_LEAF)) == NULL) {
		errmsg_set(err, errlen, "out of memory");
		goto out;
	}
	audit_walk_init(&w);
	cJSON_ArrayForEach(item, arr) {
		if (pos >= res->cp.size) {
			res->bad_index = pos;
			errmsg_set(err, errlen, "entry %zu: beyond the signed size "
			    "%" PRIu64, pos, res->cp.size);
			goto out;
		}
		if (read_indexed_leaf(item, pos, &index, leaf, &llen, err,
		    errlen) < 0) {
			res->bad_index = pos;
			goto out;
		}
		if (audit_walk_add(&w, index, leaf, llen, err, errlen) < 0) {
			res->bad_index = w.bad_index;
			goto out;
		}
		pos++;
		if (at_size > 0 && pos == at_size) {
			merkle_frontier_root(&w.f, at_root);
			*have_at = 1;
		}
	}
	if (pos < res->cp.size)
		res->bad_index = pos;
	if (audit_walk_finish(&w, &res->cp, err, errlen) < 0)
		goto out;
	res->times_back = w.times_back;
	res->first_back = w.first_back;
	ret = 0;
out:
	if (ret < 0)
		*have_at = 0;
	free(leaf);
	note_verifier_free(own);
	cJSON_Delete(j);
	return ret;
}
