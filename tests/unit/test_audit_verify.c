/*
 * Unit tests for crypto/audit_verify: good logs and bundles verify; every
 * forgery (altered, removed, swapped leaves, wrong signature or key,
 * truncated bundle, forged proofs and entries pages) is rejected with the
 * index or the reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "crypto/audit_verify.h"
#include "util/b64.h"

#define NLEAVES 13
#define ORIGIN "visor.testarea/audit"

typedef struct {
	note_signer_t *signer;
	note_verifier_t *verifier;
	buf_t vkey;
	buf_t leaves[NLEAVES];
	merkle_hash_t hashes[NLEAVES];
	buf_t note;		/* signed checkpoint over all leaves */
	merkle_hash_t root;
} fixture_t;

static int
node_fn(void *ctx, unsigned level, uint64_t index, merkle_hash_t out)
{
	fixture_t *fx = ctx;
	uint64_t start = index << level, half;
	merkle_hash_t l, r;

	if (level == 0) {
		if (index >= NLEAVES)
			return -1;
		memcpy(out, fx->hashes[index], MERKLE_HASH_LEN);
		return 0;
	}
	half = (uint64_t)1 << (level - 1);
	if (start + 2 * half > NLEAVES)
		return -1;
	if (node_fn(ctx, level - 1, 2 * index, l) < 0 ||
	    node_fn(ctx, level - 1, 2 * index + 1, r) < 0)
		return -1;
	merkle_node_hash(l, r, out);
	return 0;
}

static note_signer_t *
make_signer(const char *name, note_verifier_t **v, buf_t *vkey)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	note_signer_t *s;
	char err[128];

	assert_non_null(k);
	s = note_signer_new(name, k);
	EVP_PKEY_free(k);
	assert_non_null(s);
	buf_init(vkey, 0);
	assert_int_equal(note_signer_vkey(s, vkey), 0);
	*v = note_verifier_parse(vkey->data, vkey->len, err, sizeof(err));
	assert_non_null(*v);
	return s;
}

static void
sign_size(fixture_t *fx, note_signer_t *s, uint64_t size, buf_t *out)
{
	buf_t body = BUF_INIT;
	merkle_hash_t root;

	if (size == 0)
		merkle_empty_root(root);
	else
		assert_int_equal(merkle_root(size, node_fn, fx, root), 0);
	assert_int_equal(checkpoint_format(ORIGIN, size, root, &body), 0);
	buf_init(out, 0);
	assert_int_equal(note_sign(s, body.data, body.len, out), 0);
	buf_free(&body);
}

static int
setup(void **state)
{
	fixture_t *fx = calloc(1, sizeof(*fx));
	size_t i;

	assert_non_null(fx);
	fx->signer = make_signer(ORIGIN, &fx->verifier, &fx->vkey);
	for (i = 0; i < NLEAVES; i++) {
		buf_init(&fx->leaves[i], 0);
		assert_int_equal(buf_printf(&fx->leaves[i],
		    "{\"seq\":%zu,\"time\":\"2026-11-24T08:00:00.%03zuZ\","
		    "\"op\":\"collect\",\"actor\":{\"id\":\"urn:visor:testarea:"
		    "agency:police\"},\"record\":\"R-%zu\",\"result\":\"ok\"}",
		    i, i, i), 0);
		merkle_leaf_hash(fx->leaves[i].data, fx->leaves[i].len,
		    fx->hashes[i]);
	}
	assert_int_equal(merkle_root(NLEAVES, node_fn, fx, fx->root), 0);
	sign_size(fx, fx->signer, NLEAVES, &fx->note);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	fixture_t *fx = *state;
	size_t i;

	for (i = 0; i < NLEAVES; i++)
		buf_free(&fx->leaves[i]);
	buf_free(&fx->note);
	buf_free(&fx->vkey);
	note_verifier_free(fx->verifier);
	note_signer_free(fx->signer);
	free(fx);
	return 0;
}

/* A bundle over the leaves in order, with leaf `skip` left out (or none),
 * leaves a and b swapped (a == b: none), and byte `flip` of leaf `flipleaf`
 * XORed with 0x01 (flip < 0: none). */
static void
make_bundle(fixture_t *fx, const buf_t *note, buf_t *out, int skip, int a,
    int b, int flipleaf, int flip)
{
	uint8_t leaf[1024];
	uint64_t idx = 0;
	int i, src;

	buf_init(out, 0);
	assert_int_equal(audit_bundle_begin(out, fx->vkey.data, note->data,
	    note->len), 0);
	for (i = 0; i < NLEAVES; i++) {
		if (i == skip)
			continue;
		src = i == a ? b : i == b ? a : i;
		assert_true(fx->leaves[src].len <= sizeof(leaf));
		memcpy(leaf, fx->leaves[src].data, fx->leaves[src].len);
		if (i == flipleaf && flip >= 0)
			leaf[flip] ^= 0x01;
		assert_int_equal(audit_bundle_add(out, idx++, leaf,
		    fx->leaves[src].len), 0);
	}
	assert_int_equal(audit_bundle_end(out), 0);
}

static int
verify_bundle(const buf_t *b, const note_verifier_t *v,
    audit_bundle_result_t *res, char *err, size_t errlen)
{
	return audit_bundle_verify(b->data, b->len, v, res, err, errlen);
}

static void
test_good_bundle(void **state)
{
	fixture_t *fx = *state;
	audit_bundle_result_t res;
	char err[AUDIT_VERIFY_ERR];
	buf_t b;

	make_bundle(fx, &fx->note, &b, -1, 0, 0, -1, -1);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), 0);
	assert_int_equal(res.cp.size, NLEAVES);
	assert_memory_equal(res.cp.root, fx->root, MERKLE_HASH_LEN);
	assert_string_equal(res.key_name, ORIGIN);
	assert_int_equal(res.key_from_bundle, 0);
	/* Times never went back. */
	assert_int_equal(res.times_back, 0);
	assert_true(res.first_back == AUDIT_INDEX_NONE);
	/* Without a trusted key the bundle's own is used, and said so. */
	assert_int_equal(verify_bundle(&b, NULL, &res, err, sizeof(err)), 0);
	assert_int_equal(res.key_from_bundle, 1);
	buf_free(&b);
}

/* Leaf i again with another time member (NULL: none), and the tree and
 * its signed checkpoint made again over it. */
static void
retime(fixture_t *fx, size_t i, const char *when)
{
	buf_free(&fx->leaves[i]);
	buf_init(&fx->leaves[i], 0);
	if (when != NULL)
		assert_int_equal(buf_printf(&fx->leaves[i], "{\"seq\":%zu,"
		    "\"time\":\"%s\",\"op\":\"consult\"}", i, when), 0);
	else
		assert_int_equal(buf_printf(&fx->leaves[i], "{\"seq\":%zu,"
		    "\"op\":\"consult\"}", i), 0);
	merkle_leaf_hash(fx->leaves[i].data, fx->leaves[i].len, fx->hashes[i]);
	assert_int_equal(merkle_root(NLEAVES, node_fn, fx, fx->root), 0);
	buf_free(&fx->note);
	sign_size(fx, fx->signer, NLEAVES, &fx->note);
}

/* Entry times that go back are counted, with the first such index: the
 * log still verifies (stores before schema 2 may hold such times), and
 * visorctl says a search by time can miss them. */
static void
test_times_back(void **state)
{
	fixture_t *fx = *state;
	audit_bundle_result_t res;
	audit_walk_t w;
	char err[AUDIT_VERIFY_ERR];
	size_t i;
	buf_t b;

	/* Fixture times are 08:00:00.000 + i ms. */
	retime(fx, 3, "2026-11-24T07:59:59.000Z");	/* before 2: back */
	retime(fx, 4, "2026-11-24T08:00:00.002Z");	/* equals 2: not */
	retime(fx, 6, "2026-11-24T08:00:00.001Z");	/* before 5: back */
	retime(fx, 7, NULL);				/* none: not compared */
	retime(fx, 8, "2026-11-24T08:00:00.008Z");
	retime(fx, 9, "2026-11-24T08:00:00.0081Z");	/* not a time: skipped */
	make_bundle(fx, &fx->note, &b, -1, 0, 0, -1, -1);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), 0);
	assert_int_equal(res.times_back, 2);
	assert_int_equal(res.first_back, 3);
	buf_free(&b);

	/* The same through a walk.  A time in another accepted form is
	 * compared in the canonical one: 08:00:00Z is 08:00:00.000Z, before
	 * .008 (as text, "00Z" sorts after "00.008Z"). */
	retime(fx, 9, "2026-11-24T08:00:00Z");
	audit_walk_init(&w);
	for (i = 0; i < NLEAVES; i++)
		assert_int_equal(audit_walk_add(&w, i,
		    (const uint8_t *)fx->leaves[i].data, fx->leaves[i].len, err,
		    sizeof(err)), 0);
	assert_int_equal(w.times_back, 3);
	assert_int_equal(w.first_back, 3);
	/* The mark is the latest time seen: leaf 12's. */
	assert_string_equal(w.latest_time, "2026-11-24T08:00:00.012Z");
}

static void
test_flipped_byte(void **state)
{
	fixture_t *fx = *state;
	audit_bundle_result_t res;
	char err[AUDIT_VERIFY_ERR];
	buf_t b;
	int leaf;

	/* A flip inside a value keeps the JSON valid: only the root says. */
	for (leaf = 0; leaf < NLEAVES; leaf++) {
		const char *p = strstr(fx->leaves[leaf].data, "R-");

		make_bundle(fx, &fx->note, &b, -1, 0, 0, leaf,
		    (int)(p - fx->leaves[leaf].data));
		assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "altered"));
		buf_free(&b);
	}
	/* A flip in the seq digit names the entry. */
	make_bundle(fx, &fx->note, &b, -1, 0, 0, 4, 7);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), -1);
	assert_int_equal(res.bad_index, 4);
	assert_non_null(strstr(err, "entry 4"));
	buf_free(&b);
	/* A flip of the structure names it too. */
	make_bundle(fx, &fx->note, &b, -1, 0, 0, 9, 0);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), -1);
	assert_int_equal(res.bad_index, 9);
	assert_non_null(strstr(err, "entry 9"));
	buf_free(&b);
}

static void
test_removed_leaf(void **state)
{
	fixture_t *fx = *state;
	audit_bundle_result_t res;
	char err[AUDIT_VERIFY_ERR];
	buf_t b;

	make_bundle(fx, &fx->note, &b, 5, 0, 0, -1, -1);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), -1);
	assert_int_equal(res.bad_index, 5);
	assert_non_null(strstr(err, "entry 5"));
	buf_free(&b);
	/* The last one removed: the count no longer matches the signature. */
	make_bundle(fx, &fx->note, &b, NLEAVES - 1, 0, 0, -1, -1);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), -1);
	assert_int_equal(res.bad_index, NLEAVES - 1);
	assert_non_null(strstr(err, "missing"));
	buf_free(&b);
}

static void
test_swapped_leaves(void **state)
{
	fixture_t *fx = *state;
	audit_bundle_result_t res;
	char err[AUDIT_VERIFY_ERR];
	buf_t b;

	make_bundle(fx, &fx->note, &b, -1, 3, 8, -1, -1);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), -1);
	assert_int_equal(res.bad_index, 3);
	assert_non_null(strstr(err, "entry 3"));
	buf_free(&b);
}

static void
test_wrong_signature(void **state)
{
	fixture_t *fx = *state;
	audit_bundle_result_t res;
	char err[AUDIT_VERIFY_ERR];
	buf_t note = BUF_INIT, b;
	char *dash;

	/* Change the signed size in the body: the signature no longer fits. */
	buf_init(&note, 0);
	assert_int_equal(buf_append(&note, fx->note.data, fx->note.len), 0);
	dash = strstr(note.data, "\n13\n");
	assert_non_null(dash);
	dash[2] = '2';
	make_bundle(fx, &note, &b, NLEAVES - 1, 0, 0, -1, -1);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "signature"));
	buf_free(&b);
	/* A flipped signature byte. */
	buf_reset(&note);
	assert_int_equal(buf_append(&note, fx->note.data, fx->note.len), 0);
	note.data[note.len - 5] ^= 0x01;
	if (note.data[note.len - 5] == '=' || note.data[note.len - 5] == '\n')
		note.data[note.len - 5] = 'A';
	make_bundle(fx, &note, &b, -1, 0, 0, -1, -1);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "signature"));
	buf_free(&b);
	buf_free(&note);
}

static void
test_other_key(void **state)
{
	fixture_t *fx = *state;
	audit_bundle_result_t res;
	note_verifier_t *v2, *v3;
	note_signer_t *s2, *s3;
	char err[AUDIT_VERIFY_ERR];
	buf_t vk2, vk3, note, b;

	/* Same name, other key: the trusted key has no signature on it. */
	s2 = make_signer(ORIGIN, &v2, &vk2);
	sign_size(fx, s2, NLEAVES, &note);
	make_bundle(fx, &note, &b, -1, 0, 0, -1, -1);
	assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "signature"));
	buf_free(&b);
	buf_free(&note);
	/* The trusted key's checkpoint, but the vkey line of another key of
	 * the same name: the bundle names a key that did not sign it. */
	{
		buf_t keep = fx->vkey;

		fx->vkey = vk2;
		make_bundle(fx, &fx->note, &b, -1, 0, 0, -1, -1);
		fx->vkey = keep;
		assert_int_equal(verify_bundle(&b, fx->verifier, &res, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "not the trusted key"));
		buf_free(&b);
	}
	/* Another name altogether: refused before any signature check. */
	s3 = make_signer("visor.elsewhere/audit", &v3, &vk3);
	make_bundle(fx, &fx->note, &b, -1, 0, 0, -1, -1);
	assert_int_equal(verify_bundle(&b, v3, &res, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not the trusted key"));
	buf_free(&b);
	/* A checkpoint whose origin is not the key name. */
	sign_size(fx, s3, NLEAVES, &note);
	assert_int_equal(audit_verify_checkpoint(v3, note.data, note.len,
	    &res.cp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "origin"));
	buf_free(&note);
	note_signer_free(s2);
	note_signer_free(s3);
	note_verifier_free(v2);
	note_verifier_free(v3);
	buf_free(&vk2);
	buf_free(&vk3);
}

static void
test_truncated_bundle(void **state)
{
	fixture_t *fx = *state;
	audit_bundle_result_t res;
	char err[AUDIT_VERIFY_ERR];
	buf_t b;
	size_t cut;

	make_bundle(fx, &fx->note, &b, -1, 0, 0, -1, -1);
	for (cut = 0; cut < b.len - 1; cut += 7)
		assert_int_equal(audit_bundle_verify(b.data, cut, fx->verifier,
		    &res, err, sizeof(err)), -1);
	assert_int_equal(audit_bundle_verify(b.data, b.len / 2, fx->verifier,
	    &res, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));
	buf_free(&b);
}

static void
test_bundle_shape(void **state)
{
	fixture_t *fx = *state;
	audit_bundle_result_t res;
	char err[AUDIT_VERIFY_ERR];
	static const char *const bad[] = {
		"[]",
		"{}",
		"{\"format\":\"visor-audit-bundle/2\",\"vkey\":\"x\","
		    "\"checkpoint\":\"x\",\"entries\":[]}",
		"{\"format\":\"visor-audit-bundle/1\",\"vkey\":\"x\","
		    "\"checkpoint\":\"x\",\"entries\":[],\"extra\":1}",
		"{\"format\":\"visor-audit-bundle/1\",\"vkey\":\"x+1+2\","
		    "\"checkpoint\":\"x\",\"entries\":[]}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(audit_bundle_verify(bad[i], strlen(bad[i]),
		    fx->verifier, &res, err, sizeof(err)), -1);
	assert_int_equal(audit_bundle_verify(NULL, 0, fx->verifier, &res, err,
	    sizeof(err)), -1);
}

static void
test_leaf_checks(void **state)
{
	char err[AUDIT_VERIFY_ERR];
	static const char *const bad[] = {
		"", "[]", "{\"seq\":\"1\"}", "{\"seq\":1.5}", "{\"seq\":-1}",
		"{\"op\":\"x\"}", "{\"seq\":1,\"seq\":1}", "{\"seq\":1} x",
		"{\"seq\":2}",
		/* Equal to 1 as numbers, but not as every gateway writes seq
		 * (first, plain decimal): a reader of the text would see
		 * another seq. */
		"{\"seq\":1.0,\"op\":\"x\"}", "{\"seq\":1e0,\"op\":\"x\"}",
		"{\"seq\":1.00000000000000001}", "{\"op\":\"x\",\"seq\":1}",
		"{ \"seq\":1}", "{\"seq\": 1}",
	};
	size_t i;

	(void)state;
	assert_int_equal(audit_verify_leaf((const uint8_t *)"{\"seq\":1}", 9, 1,
	    err, sizeof(err)), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(audit_verify_leaf((const uint8_t *)bad[i],
		    strlen(bad[i]), 1, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "entry 1"));
	}
}

/* ---- the live client's checks against a forging server ---- */

static void
inclusion_json(fixture_t *fx, uint64_t index, uint64_t size, buf_t *out)
{
	merkle_hash_t proof[MERKLE_MAX_PROOF];
	char b64[B64_ENCODED_SIZE(MERKLE_HASH_LEN)];
	size_t n, i;

	assert_int_equal(merkle_inclusion_proof(index, size, node_fn, fx,
	    proof, &n), 0);
	buf_init(out, 0);
	buf_printf(out, "{\"index\":%llu,\"size\":%llu,\"proof\":[",
	    (unsigned long long)index, (unsigned long long)size);
	for (i = 0; i < n; i++) {
		b64_encode(proof[i], MERKLE_HASH_LEN, b64);
		buf_printf(out, "%s\"%s\"", i ? "," : "", b64);
	}
	buf_puts(out, "]}");
}

static void
consistency_json(fixture_t *fx, uint64_t m, uint64_t n, buf_t *out)
{
	merkle_hash_t proof[MERKLE_MAX_PROOF];
	char b64[B64_ENCODED_SIZE(MERKLE_HASH_LEN)];
	size_t c, i;

	assert_int_equal(merkle_consistency_proof(m, n, node_fn, fx, proof,
	    &c), 0);
	buf_init(out, 0);
	buf_printf(out, "{\"from\":%llu,\"to\":%llu,\"proof\":[",
	    (unsigned long long)m, (unsigned long long)n);
	for (i = 0; i < c; i++) {
		b64_encode(proof[i], MERKLE_HASH_LEN, b64);
		buf_printf(out, "%s\"%s\"", i ? "," : "", b64);
	}
	buf_puts(out, "]}");
}

/* Change one base64 character of the first proof hash (keeps it valid
 * base64 of 32 bytes). */
static void
forge_first_hash(buf_t *j)
{
	char *p = strstr(j->data, "[\"");

	assert_non_null(p);
	p[2] = p[2] == 'A' ? 'B' : 'A';
}

static void
cp_at(fixture_t *fx, uint64_t size, audit_checkpoint_t *cp)
{
	memset(cp, 0, sizeof(*cp));
	cp->size = size;
	assert_int_equal(merkle_root(size, node_fn, fx, cp->root), 0);
}

static void
test_forged_inclusion(void **state)
{
	fixture_t *fx = *state;
	audit_checkpoint_t cp;
	char err[AUDIT_VERIFY_ERR];
	const buf_t *l = &fx->leaves[6];
	buf_t j, c, other;

	assert_int_equal(audit_verify_checkpoint(fx->verifier, fx->note.data,
	    fx->note.len, &cp, err, sizeof(err)), 0);
	inclusion_json(fx, 6, NLEAVES, &j);
	assert_int_equal(audit_verify_inclusion_answer(j.data, j.len, 6,
	    NLEAVES, (const uint8_t *)l->data, l->len, cp.root, err,
	    sizeof(err)), 0);
	/* Another leaf with the genuine proof. */
	assert_int_equal(audit_verify_inclusion_answer(j.data, j.len, 6,
	    NLEAVES, (const uint8_t *)fx->leaves[7].data, fx->leaves[7].len,
	    cp.root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "entry 6"));
	/* One byte of the proof changed. */
	forge_first_hash(&j);
	assert_int_equal(audit_verify_inclusion_answer(j.data, j.len, 6,
	    NLEAVES, (const uint8_t *)l->data, l->len, cp.root, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "entry 6"));
	assert_non_null(strstr(err, "does not verify"));
	buf_free(&j);
	/* A valid proof for another size. */
	inclusion_json(fx, 6, NLEAVES - 2, &other);
	assert_int_equal(audit_verify_inclusion_answer(other.data, other.len,
	    6, NLEAVES, (const uint8_t *)l->data, l->len, cp.root, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not size"));
	/* The same proof is good for the smaller tree when a consistency
	 * proof ties that tree to the signed one... */
	consistency_json(fx, NLEAVES - 2, NLEAVES, &c);
	assert_int_equal(audit_verify_inclusion_at(other.data, other.len,
	    c.data, c.len, 6, NLEAVES - 2, (const uint8_t *)l->data, l->len,
	    &cp, err, sizeof(err)), 0);
	/* ...and not with a forged one, nor with a lie about the leaf. */
	forge_first_hash(&c);
	assert_int_equal(audit_verify_inclusion_at(other.data, other.len,
	    c.data, c.len, 6, NLEAVES - 2, (const uint8_t *)l->data, l->len,
	    &cp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "entry 6"));
	buf_free(&c);
	consistency_json(fx, NLEAVES - 2, NLEAVES, &c);
	assert_int_equal(audit_verify_inclusion_at(other.data, other.len,
	    c.data, c.len, 6, NLEAVES - 2, (const uint8_t *)fx->leaves[5].data,
	    fx->leaves[5].len, &cp, err, sizeof(err)), -1);
	assert_int_equal(audit_verify_inclusion_at(other.data, other.len,
	    c.data, c.len, 6, NLEAVES + 1, (const uint8_t *)l->data, l->len,
	    &cp, err, sizeof(err)), -1);
	assert_int_equal(audit_verify_inclusion_answer("{}", 2, 6, NLEAVES,
	    (const uint8_t *)l->data, l->len, cp.root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unreadable"));
	buf_free(&c);
	buf_free(&other);
}

static void
test_inclusion_root(void **state)
{
	fixture_t *fx = *state;
	merkle_hash_t proof[MERKLE_MAX_PROOF], root, want;
	uint64_t size, i;
	size_t n;

	for (size = 1; size <= NLEAVES; size++) {
		assert_int_equal(merkle_root(size, node_fn, fx, want), 0);
		for (i = 0; i < size; i++) {
			assert_int_equal(merkle_inclusion_proof(i, size, node_fn,
			    fx, proof, &n), 0);
			assert_int_equal(audit_inclusion_root(i, size,
			    fx->hashes[i], proof, n, root), 0);
			assert_memory_equal(root, want, MERKLE_HASH_LEN);
			if (n > 0)
				assert_int_equal(audit_inclusion_root(i, size,
				    fx->hashes[i], proof, n - 1, root), -1);
			assert_int_equal(audit_inclusion_root(i, size,
			    fx->hashes[i], proof, n + 1, root), -1);
		}
	}
	assert_int_equal(audit_inclusion_root(3, 3, fx->hashes[0], proof, 0,
	    root), -1);
}

static void
test_forged_consistency(void **state)
{
	fixture_t *fx = *state;
	audit_checkpoint_t old_cp, new_cp, zero;
	char err[AUDIT_VERIFY_ERR];
	buf_t j, other;

	cp_at(fx, 5, &old_cp);
	cp_at(fx, NLEAVES, &new_cp);
	memset(&zero, 0, sizeof(zero));
	consistency_json(fx, 5, NLEAVES, &j);
	assert_int_equal(audit_verify_consistency_answer(j.data, j.len,
	    &old_cp, &new_cp, err, sizeof(err)), 0);
	/* The log shrank. */
	assert_int_equal(audit_verify_consistency_answer(j.data, j.len,
	    &new_cp, &old_cp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "shrank"));
	/* A different old root (the log was rewritten). */
	old_cp.root[0] ^= 1;
	assert_int_equal(audit_verify_consistency_answer(j.data, j.len,
	    &old_cp, &new_cp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not verify"));
	old_cp.root[0] ^= 1;
	/* One byte of the proof changed. */
	forge_first_hash(&j);
	assert_int_equal(audit_verify_consistency_answer(j.data, j.len,
	    &old_cp, &new_cp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not verify"));
	buf_free(&j);
	/* A valid proof for other sizes. */
	consistency_json(fx, 4, NLEAVES, &other);
	assert_int_equal(audit_verify_consistency_answer(other.data, other.len,
	    &old_cp, &new_cp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not 5 -> 13"));
	buf_free(&other);
	/* From the empty log nothing is needed; else a proof is. */
	assert_int_equal(audit_verify_consistency_answer(NULL, 0, &zero,
	    &new_cp, err, sizeof(err)), 0);
	assert_int_equal(audit_verify_consistency_answer(NULL, 0, &old_cp,
	    &new_cp, err, sizeof(err)), -1);
	/* Equal sizes: roots must be equal. */
	consistency_json(fx, NLEAVES, NLEAVES, &j);
	assert_int_equal(audit_verify_consistency_answer(j.data, j.len,
	    &new_cp, &new_cp, err, sizeof(err)), 0);
	old_cp = new_cp;
	old_cp.root[31] ^= 0x80;
	assert_int_equal(audit_verify_consistency_answer(j.data, j.len,
	    &old_cp, &new_cp, err, sizeof(err)), -1);
	buf_free(&j);
}

static void
entries_page(fixture_t *fx, uint64_t start, uint64_t end, int alter,
    buf_t *out)
{
	char b64[2048];
	uint8_t leaf[1024];
	uint64_t i;

	buf_init(out, 0);
	buf_puts(out, "{\"entries\":[");
	for (i = start; i < end; i++) {
		memcpy(leaf, fx->leaves[i].data, fx->leaves[i].len);
		if ((int)i == alter)
			leaf[fx->leaves[i].len - 3] ^= 0x02;	/* "ok" -> "om" */
		b64_encode(leaf, fx->leaves[i].len, b64);
		buf_printf(out, "%s{\"index\":%llu,\"data\":\"%s\"}",
		    i > start ? "," : "", (unsigned long long)i, b64);
	}
	buf_puts(out, "]}");
}

static void
test_walk_pages(void **state)
{
	fixture_t *fx = *state;
	audit_checkpoint_t cp;
	audit_walk_t w;
	char err[AUDIT_VERIFY_ERR];
	size_t n;
	buf_t p1, p2;

	cp_at(fx, NLEAVES, &cp);
	entries_page(fx, 0, 5, -1, &p1);
	entries_page(fx, 5, NLEAVES, -1, &p2);
	audit_walk_init(&w);
	assert_int_equal(audit_walk_page(&w, p1.data, p1.len, 0, 1000, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 5);
	/* Not yet all: refused. */
	assert_int_equal(audit_walk_finish(&w, &cp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "entry 5 missing"));
	/* A page for the wrong place. */
	assert_int_equal(audit_walk_page(&w, p1.data, p1.len, 0, 1000, &n, err,
	    sizeof(err)), -1);
	assert_int_equal(audit_walk_page(&w, p2.data, p2.len, 5, 1000, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(audit_walk_finish(&w, &cp, err, sizeof(err)), 0);
	buf_free(&p2);

	/* A forged page: entry 8's bytes altered, still valid JSON. */
	entries_page(fx, 5, NLEAVES, 8, &p2);
	audit_walk_init(&w);
	assert_int_equal(audit_walk_page(&w, p1.data, p1.len, 0, 1000, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(audit_walk_page(&w, p2.data, p2.len, 5, 1000, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(audit_walk_finish(&w, &cp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "altered"));
	buf_free(&p2);

	/* A page whose entry 7 carries leaf 8: named. */
	entries_page(fx, 5, NLEAVES, -1, &p2);
	{
		char *q = strstr(p2.data, "\"index\":8");
		char *r = strstr(p2.data, "\"index\":7");
		char tmp[2048];
		size_t l7, l8;
		char *e7, *e8;

		assert_non_null(q);
		assert_non_null(r);
		e7 = strchr(r, '}');
		e8 = strchr(q, '}');
		l7 = (size_t)(e7 - r);
		l8 = (size_t)(e8 - q);
		/* Put 8's data under index 7 (same length: one digit). */
		assert_int_equal(l7, l8);
		memcpy(tmp, q + 10, l8 - 10);
		memcpy(r + 10, tmp, l8 - 10);
	}
	audit_walk_init(&w);
	assert_int_equal(audit_walk_page(&w, p1.data, p1.len, 0, 1000, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(audit_walk_page(&w, p2.data, p2.len, 5, 1000, &n, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "entry 7"));
	assert_int_equal(w.bad_index, 7);
	/* After a failure the walk refuses everything. */
	assert_int_equal(audit_walk_add(&w, 5, (const uint8_t *)"{\"seq\":5}", 9,
	    err, sizeof(err)), -1);
	assert_int_equal(audit_walk_finish(&w, &cp, err, sizeof(err)), -1);
	buf_free(&p2);
	/* Shape errors. */
	audit_walk_init(&w);
	assert_int_equal(audit_walk_page(&w, "{\"entries\":[{}]}", 16, 0, 1000,
	    &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "entries from 0"));
	buf_free(&p1);
}

static int
count_hit(void *ctx, uint64_t index, const uint8_t *leaf, size_t len)
{
	uint64_t *sum = ctx;

	(void)leaf;
	(void)len;
	*sum += index;
	return 0;
}

/* A search page of 1000 hits, each a valid entry of the largest size the
 * gateway writes (64 KiB), with "next": in bounds for the reader. */
static void
test_search_page_full(void **state)
{
	enum { HITS = 1000 };
	char *leaf, *enc, err[AUDIT_VERIFY_ERR];
	uint64_t size, next, sum = 0, base = 9000000000000000ULL;
	size_t i, n, head;
	buf_t j;

	(void)state;
	leaf = malloc(AUDIT_VERIFY_MAX_LEAF + 1);
	enc = malloc(B64_ENCODED_SIZE(AUDIT_VERIFY_MAX_LEAF));
	assert_non_null(leaf);
	assert_non_null(enc);
	buf_init(&j, 128u << 20);
	assert_int_equal(buf_printf(&j, "{\"size\":%llu,\"entries\":[",
	    (unsigned long long)(base + 2 * HITS)), 0);
	for (i = 0; i < HITS; i++) {
		head = (size_t)snprintf(leaf, AUDIT_VERIFY_MAX_LEAF,
		    "{\"seq\":%llu,\"op\":\"consult\",\"pad\":\"",
		    (unsigned long long)(base + 2 * i));
		memset(leaf + head, 'a', AUDIT_VERIFY_MAX_LEAF - head - 2);
		memcpy(leaf + AUDIT_VERIFY_MAX_LEAF - 2, "\"}", 2);
		b64_encode((const uint8_t *)leaf, AUDIT_VERIFY_MAX_LEAF, enc);
		assert_int_equal(buf_printf(&j, "%s{\"index\":%llu,\"data\":"
		    "\"%s\"}", i ? "," : "", (unsigned long long)(base + 2 * i),
		    enc), 0);
	}
	assert_int_equal(buf_printf(&j, "],\"next\":%llu}",
	    (unsigned long long)(base + 2 * HITS - 1)), 0);
	assert_int_equal(audit_search_page(j.data, j.len, count_hit, &sum,
	    &size, &n, &next, err, sizeof(err)), 0);
	assert_int_equal(n, HITS);
	assert_int_equal(next, base + 2 * HITS - 1);
	buf_free(&j);
	free(leaf);
	free(enc);
}

static void
test_search_answer(void **state)
{
	fixture_t *fx = *state;
	char b64a[2048], b64b[2048], err[AUDIT_VERIFY_ERR];
	uint64_t size, sum = 0;
	size_t n;
	buf_t j;

	b64_encode((const uint8_t *)fx->leaves[2].data, fx->leaves[2].len, b64a);
	b64_encode((const uint8_t *)fx->leaves[9].data, fx->leaves[9].len, b64b);
	buf_init(&j, 0);
	buf_printf(&j, "{\"size\":13,\"entries\":[{\"index\":2,\"data\":\"%s\"},"
	    "{\"index\":9,\"data\":\"%s\"}]}", b64a, b64b);
	assert_int_equal(audit_search_answer(j.data, j.len, count_hit, &sum,
	    &size, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(size, 13);
	assert_int_equal(sum, 11);
	buf_reset(&j);
	/* A hit that is not the leaf at its index. */
	buf_printf(&j, "{\"size\":13,\"entries\":[{\"index\":3,\"data\":\"%s\"}]}",
	    b64a);
	sum = 0;
	assert_int_equal(audit_search_answer(j.data, j.len, count_hit, &sum,
	    &size, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "entry 3"));
	assert_int_equal(sum, 0);
	buf_reset(&j);
	/* Beyond the size, out of order, shapes. */
	buf_printf(&j, "{\"size\":9,\"entries\":[{\"index\":9,\"data\":\"%s\"}]}",
	    b64b);
	assert_int_equal(audit_search_answer(j.data, j.len, count_hit, &sum,
	    &size, &n, err, sizeof(err)), -1);
	buf_reset(&j);
	buf_printf(&j, "{\"size\":13,\"entries\":[{\"index\":9,\"data\":\"%s\"},"
	    "{\"index\":2,\"data\":\"%s\"}]}", b64b, b64a);
	assert_int_equal(audit_search_answer(j.data, j.len, count_hit, &sum,
	    &size, &n, err, sizeof(err)), -1);
	assert_int_equal(audit_search_answer("{\"entries\":[]}", 14, count_hit,
	    &sum, &size, &n, err, sizeof(err)), -1);
	assert_int_equal(audit_search_answer("{\"size\":1,\"entries\":[]}", 23,
	    count_hit, &sum, &size, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(audit_search_answer("{\"size\":1,\"entries\":[{\"index\""
	    ":0,\"data\":\"!!\"}]}", 42, count_hit, &sum, &size, &n, err,
	    sizeof(err)), -1);
	assert_int_equal(sum, 0);
	/* A page: "next" past its last hit and within size; only the page
	 * reader takes it. */
	{
		uint64_t next = 7;

		buf_reset(&j);
		buf_printf(&j, "{\"size\":13,\"entries\":[{\"index\":2,\"data\":"
		    "\"%s\"}],\"next\":3}", b64a);
		assert_int_equal(audit_search_page(j.data, j.len, count_hit, &sum,
		    &size, &n, &next, err, sizeof(err)), 0);
		assert_int_equal(next, 3);
		assert_int_equal(n, 1);
		assert_int_equal(audit_search_answer(j.data, j.len, count_hit,
		    &sum, &size, &n, err, sizeof(err)), -1);
		/* Without "next": complete. */
		assert_int_equal(audit_search_page("{\"size\":1,\"entries\":[]}",
		    23, count_hit, &sum, &size, &n, &next, err, sizeof(err)), 0);
		assert_int_equal(next, 0);
		/* Not past the last hit (paging would not end), beyond the
		 * size, on an empty page, not a number. */
		sum = 0;
		buf_reset(&j);
		buf_printf(&j, "{\"size\":13,\"entries\":[{\"index\":2,\"data\":"
		    "\"%s\"}],\"next\":2}", b64a);
		assert_int_equal(audit_search_page(j.data, j.len, count_hit, &sum,
		    &size, &n, &next, err, sizeof(err)), -1);
		assert_int_equal(sum, 0);
		buf_reset(&j);
		buf_printf(&j, "{\"size\":13,\"entries\":[{\"index\":2,\"data\":"
		    "\"%s\"}],\"next\":14}", b64a);
		assert_int_equal(audit_search_page(j.data, j.len, count_hit, &sum,
		    &size, &n, &next, err, sizeof(err)), -1);
		{
			const char *e = "{\"size\":9,\"entries\":[],\"next\":5}";

			assert_int_equal(audit_search_page(e, strlen(e), count_hit,
			    &sum, &size, &n, &next, err, sizeof(err)), -1);
			assert_non_null(strstr(err, "not past"));
		}
		buf_reset(&j);
		buf_printf(&j, "{\"size\":13,\"entries\":[{\"index\":2,\"data\":"
		    "\"%s\"}],\"next\":\"3\"}", b64a);
		assert_int_equal(audit_search_page(j.data, j.len, count_hit, &sum,
		    &size, &n, &next, err, sizeof(err)), -1);
		assert_int_equal(sum, 0);
	}
	buf_free(&j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_bundle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_times_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_leaf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swapped_leaves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_bundle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bundle_shape, setup, teardown),
		cmocka_unit_test(test_leaf_checks),
		cmocka_unit_test_setup_teardown(test_forged_inclusion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inclusion_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_consistency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_answer, setup, teardown),
		cmocka_unit_test(test_search_page_full),
	};

	return cmocka_run_group_tests_name("audit_verify", tests, NULL, NULL);
}
