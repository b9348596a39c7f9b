/*
 * Unit tests for crypto/merkle: the transparency-dev conformance vectors,
 * known answers, generated proofs against an independent naive tree, and the
 * frontier.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "crypto/merkle.h"
#include "util/b64.h"
#include "util/fileio.h"
#include "util/json.h"

#define MAXN 300

/* ---- an independent reference: RFC 9162 MTH by recursion ---- */

static merkle_hash_t leaves[MAXN];	/* leaf hashes */

static void
ref_leaf(const void *d, size_t len, merkle_hash_t out)
{
	unsigned char buf[600];

	buf[0] = 0;
	memcpy(buf + 1, d, len);
	SHA256(buf, len + 1, out);
}

static void
ref_node(const merkle_hash_t l, const merkle_hash_t r, merkle_hash_t out)
{
	unsigned char buf[65];

	buf[0] = 1;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	SHA256(buf, 65, out);
}

static void
mth(size_t lo, size_t hi, merkle_hash_t out)
{
	merkle_hash_t l, r;
	size_t n = hi - lo, k = 1;

	if (n == 0) {
		SHA256((const unsigned char *)"", 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[lo], 32);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	mth(lo, lo + k, l);
	mth(lo + k, hi, r);
	ref_node(l, r, out);
}

static void
make_leaves(size_t n)
{
	char d[64];
	size_t i;
	int len;

	for (i = 0; i < n; i++) {
		len = snprintf(d, sizeof(d), "synthetic leaf %zu", i);
		ref_leaf(d, (size_t)len, leaves[i]);
	}
}

/* Node callback over the naive tree; refuses nodes outside limit leaves and
 * counts calls. */
typedef struct {
	uint64_t limit;
	unsigned calls;
	int fail_at;	/* fail on this call (1-based); 0 never */
} naive_ctx_t;

static int
naive_node(void *vctx, unsigned level, uint64_t index, merkle_hash_t out)
{
	naive_ctx_t *c = vctx;
	uint64_t lo, hi;

	c->calls++;
	if (c->fail_at != 0 && c->calls == (unsigned)c->fail_at)
		return -1;
	if (level >= 16)
		return -1;
	lo = index << level;
	hi = (index + 1) << level;
	if (hi > c->limit)
		return -1;
	mth(lo, hi, out);
	return 0;
}

static unsigned
ceil_log2(uint64_t n)
{
	unsigned r = 0;

	while (((uint64_t)1 << r) < n)
		r++;
	return r;
}

/* ---- conformance vectors ---- */

static int
dir_exists(const char *p)
{
	DIR *d = opendir(p);

	if (d == NULL)
		return 0;
	closedir(d);
	return 1;
}

static void
vectors_dir(char *out, size_t outlen)
{
	const char *src = getenv("VISOR_SRC");

	if (src != NULL) {
		snprintf(out, outlen, "%s/../shared/testdata/merkle", src);
		if (dir_exists(out))
			return;
	}
	snprintf(out, outlen, "../shared/testdata/merkle");
}

/* Exact unsigned value of a numeric member, read from the text: cJSON holds
 * numbers as doubles, and the vectors use 2^64 - 1. */
static int
raw_u64(const char *text, const char *key, uint64_t *out)
{
	char pat[64];
	const char *p;
	char *end;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if ((p = strstr(text, pat)) == NULL)
		return -1;
	p += strlen(pat);
	while (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	*out = strtoull(p, &end, 10);
	return end == p ? -1 : 0;
}

/* A vector hash decoded; len may be other than 32 (some vectors use short
 * garbage).  The array is zero-padded. */
typedef struct {
	merkle_hash_t h;
	long len;
} vhash_t;

static int
get_hash(const cJSON *obj, const char *key, vhash_t *out)
{
	const char *s = json_get_str(obj, key);
	unsigned char tmp[64];

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return -1;
	out->len = b64_decode(s, strlen(s), tmp, sizeof(tmp));
	if (out->len < 0 || out->len > 32)
		return -1;
	memcpy(out->h, tmp, (size_t)out->len);
	return 0;
}

/* Proof array (null is empty).  Any hash that is not 32 bytes makes the proof
 * unusable, as the API's JSON reader would reject it: -1. */
static int
get_proof(const cJSON *obj, merkle_hash_t *proof, size_t *n)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "proof");
	const cJSON *e;

	*n = 0;
	if (a == NULL || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsArray(a))
		return -1;
	cJSON_ArrayForEach(e, a) {
		if (!cJSON_IsString(e) || *n == MERKLE_MAX_PROOF)
			return -1;
		if (b64_decode(e->valuestring, strlen(e->valuestring),
		    proof[*n], 32) != 32)
			return -1;
		(*n)++;
	}
	return 0;
}

/* Returns 0 if the case verifies, -1 if rejected (for any reason). */
static int
run_inclusion_case(const char *text, const cJSON *j)
{
	merkle_hash_t proof[MERKLE_MAX_PROOF];
	vhash_t root, leaf;
	uint64_t idx, size;
	size_t n;

	assert_int_equal(raw_u64(text, "leafIdx", &idx), 0);
	assert_int_equal(raw_u64(text, "treeSize", &size), 0);
	if (get_hash(j, "root", &root) != 0 || root.len != 32 ||
	    get_hash(j, "leafHash", &leaf) != 0 || leaf.len != 32 ||
	    get_proof(j, proof, &n) != 0)
		return -1;
	return merkle_verify_inclusion(idx, size, leaf.h, proof, n, root.h);
}

static int
run_consistency_case(const char *text, const cJSON *j)
{
	merkle_hash_t proof[MERKLE_MAX_PROOF];
	vhash_t r1, r2;
	uint64_t s1, s2;
	size_t n;

	assert_int_equal(raw_u64(text, "size1", &s1), 0);
	assert_int_equal(raw_u64(text, "size2", &s2), 0);
	if (get_hash(j, "root1", &r1) != 0 || get_hash(j, "root2", &r2) != 0 ||
	    get_proof(j, proof, &n) != 0)
		return -1;
	/* The vectors compare equal-size roots byte for byte whatever their
	 * length; otherwise roots must be 32 bytes.  The API takes 32-byte
	 * roots, so short ones are passed zero-padded with equal lengths. */
	if (r1.len != r2.len)
		return -1;
	if (r1.len != 32 && !(s1 == s2 && s1 != 0))
		return -1;
	return merkle_verify_consistency(s1, s2, r1.h, r2.h, proof, n);
}

/* Run every *.json case below dir (the folders nest: additional/0/...). */
static void
walk_dir(const char *dir, int inclusion, int *cases, int *accepted)
{
	char path[2048];
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name), len;
		char err[128], *text;
		cJSON *j, *want;
		DIR *sub;
		int got;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((sub = opendir(path)) != NULL) {
			closedir(sub);
			walk_dir(path, inclusion, cases, accepted);
			continue;
		}
		if (nl < 5 || strcmp(de->d_name + nl - 5, ".json") != 0)
			continue;
		assert_int_equal(file_read_all(path, 1 << 20, &text, &len), 0);
		j = json_parse_strict(text, len, 8, err, sizeof(err));
		if (j == NULL)
			fail_msg("%s: %s", path, err);
		want = cJSON_GetObjectItemCaseSensitive(j, "wantErr");
		assert_true(cJSON_IsBool(want));
		got = inclusion ? run_inclusion_case(text, j) :
		    run_consistency_case(text, j);
		if (cJSON_IsTrue(want) ? got == 0 : got != 0)
			fail_msg("%s: wantErr %s but verify returned %d", path,
			    cJSON_IsTrue(want) ? "true" : "false", got);
		if (got == 0)
			(*accepted)++;
		(*cases)++;
		cJSON_Delete(j);
		free(text);
	}
	closedir(d);
}

static void
walk(const char *base, const char *kind, int *cases, int *accepted)
{
	char dir[1100];

	snprintf(dir, sizeof(dir), "%s/%s", base, kind);
	walk_dir(dir, strcmp(kind, "inclusion") == 0, cases, accepted);
}

static void
test_conformance_vectors(void **state)
{
	char base[1024];
	int inc = 0, con = 0, acc_i = 0, acc_c = 0;

	(void)state;
	vectors_dir(base, sizeof(base));
	if (!dir_exists(base))
		fail_msg("merkle test vectors not found at %s", base);
	walk(base, "inclusion", &inc, &acc_i);
	walk(base, "consistency", &con, &acc_c);
	print_message("merkle vectors: %d inclusion (%d valid), %d consistency "
	    "(%d valid)\n", inc, acc_i, con, acc_c);
	assert_true(inc > 0);
	assert_true(con > 0);
	assert_true(acc_i > 0);
	assert_true(acc_c > 0);
}

/* ---- known answers ---- */

static void
hex(const merkle_hash_t h, char out[65])
{
	static const char d[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = d[h[i] >> 4];
		out[2 * i + 1] = d[h[i] & 15];
	}
	out[64] = 0;
}

static int
kat_node(void *ctx, unsigned level, uint64_t index, merkle_hash_t out)
{
	merkle_hash_t *lv = ctx, l, r;

	if (level == 0) {
		if (index >= 8)
			return -1;
		memcpy(out, lv[index], 32);
		return 0;
	}
	if (kat_node(ctx, level - 1, index * 2, l) != 0 ||
	    kat_node(ctx, level - 1, index * 2 + 1, r) != 0)
		return -1;
	merkle_node_hash(l, r, out);
	return 0;
}

static void
test_known_answers(void **state)
{
	static const struct { const char *d; size_t n; } in[8] = {
		{ "", 0 }, { "\x00", 1 }, { "\x10", 1 }, { "\x20\x21", 2 },
		{ "\x30\x31", 2 }, { "\x40\x41\x42\x43", 4 },
		{ "\x50\x51\x52\x53\x54\x55\x56\x57", 8 },
		{ "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16 },
	};
	merkle_hash_t lv[8], h;
	merkle_frontier_t f;
	char x[65];
	int i;

	(void)state;
	merkle_empty_root(h);
	hex(h, x);
	assert_string_equal(x, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	merkle_leaf_hash("", 0, h);
	hex(h, x);
	assert_string_equal(x, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
	merkle_frontier_init(&f);
	for (i = 0; i < 8; i++) {
		merkle_leaf_hash(in[i].d, in[i].n, lv[i]);
		assert_int_equal(merkle_frontier_append(&f, lv[i], NULL, NULL), 0);
	}
	merkle_frontier_root(&f, h);
	hex(h, x);
	assert_string_equal(x, "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
	assert_int_equal(merkle_root(8, kat_node, lv, h), 0);
	hex(h, x);
	assert_string_equal(x, "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
}

static void
test_leaf_hash_long(void **state)
{
	static unsigned char big[5000];
	merkle_hash_t a, b;
	unsigned char *cat;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 31);
	/* Both code paths (short one-shot, long streamed) agree with a plain
	 * SHA-256 over 0x00 || leaf. */
	cat = malloc(sizeof(big) + 1);
	assert_non_null(cat);
	cat[0] = 0;
	memcpy(cat + 1, big, sizeof(big));
	for (i = 500; i < 520; i++) {
		merkle_leaf_hash(big, i, a);
		SHA256(cat, i + 1, b);
		assert_memory_equal(a, b, 32);
	}
	merkle_leaf_hash(big, sizeof(big), a);
	SHA256(cat, sizeof(big) + 1, b);
	assert_memory_equal(a, b, 32);
	free(cat);
}

/* ---- generated proofs against the naive tree ---- */

/* Bits of proof hash j flipped: all 256 for small trees, else one that moves
 * with the inputs so that every position gets covered across the run. */
static unsigned
flips_for(uint64_t n, unsigned salt, unsigned *first)
{
	if (n <= 16) {
		*first = 0;
		return 256;
	}
	*first = salt % 256;
	return 1;
}

static void
test_inclusion_property(void **state)
{
	merkle_hash_t proof[MERKLE_MAX_PROOF], root, bad;
	uint64_t n, i;
	size_t np, j;
	unsigned b, nb, first;

	(void)state;
	make_leaves(128);
	for (n = 1; n <= 128; n++) {
		mth(0, n, root);
		for (i = 0; i < n; i++) {
			naive_ctx_t c = { n, 0, 0 };

			assert_int_equal(merkle_inclusion_proof(i, n, naive_node,
			    &c, proof, &np), 0);
			assert_true(np <= ceil_log2(n));
			assert_true(c.calls <= 3 * ceil_log2(n) + 1);
			assert_int_equal(merkle_verify_inclusion(i, n, leaves[i],
			    proof, np, root), 0);
			/* wrong index, leaf, root (a wrong size alone can
			 * keep the same path shape: the vectors cover it) */
			if (n > 1)
				assert_int_equal(merkle_verify_inclusion((i + 1) % n,
				    n, leaves[i], proof, np, root), -1);
			memcpy(bad, root, 32);
			bad[i % 32] ^= 1;
			assert_int_equal(merkle_verify_inclusion(i, n, leaves[i],
			    proof, np, bad), -1);
			memcpy(bad, leaves[i], 32);
			bad[31] ^= 0x80;
			assert_int_equal(merkle_verify_inclusion(i, n, bad,
			    proof, np, root), -1);
			/* truncated and padded proofs */
			if (np > 0)
				assert_int_equal(merkle_verify_inclusion(i, n,
				    leaves[i], proof, np - 1, root), -1);
			memcpy(proof[np], root, 32);
			assert_int_equal(merkle_verify_inclusion(i, n, leaves[i],
			    proof, np + 1, root), -1);
			for (j = 0; j < np; j++) {
				nb = flips_for(n, (unsigned)(i * 7 + j * 13 + n), &first);
				for (b = first; b < first + nb; b++) {
					proof[j][b / 8] ^= (uint8_t)(1u << (b % 8));
					assert_int_equal(merkle_verify_inclusion(i,
					    n, leaves[i], proof, np, root), -1);
					proof[j][b / 8] ^= (uint8_t)(1u << (b % 8));
				}
			}
		}
	}
}

static void
test_consistency_property(void **state)
{
	merkle_hash_t proof[MERKLE_MAX_PROOF], r1, r2;
	uint64_t m, n;
	size_t np, j;
	unsigned b, nb, first;

	(void)state;
	make_leaves(128);
	for (n = 1; n <= 128; n++) {
		mth(0, n, r2);
		for (m = 1; m <= n; m++) {
			naive_ctx_t c = { n, 0, 0 };

			mth(0, m, r1);
			assert_int_equal(merkle_consistency_proof(m, n, naive_node,
			    &c, proof, &np), 0);
			assert_true(np <= ceil_log2(n) + 1);
			assert_true(c.calls <= 3 * ceil_log2(n) + 2);
			if (m == n)
				assert_int_equal(np, 0);
			assert_int_equal(merkle_verify_consistency(m, n, r1, r2,
			    proof, np), 0);
			/* swapped or wrong roots, short proof */
			if (m != n) {
				assert_int_equal(merkle_verify_consistency(m, n,
				    r2, r1, proof, np), -1);
				assert_int_equal(merkle_verify_consistency(m, n,
				    r1, r1, proof, np), -1);
				assert_int_equal(merkle_verify_consistency(m, n,
				    r2, r2, proof, np), -1);
				assert_int_equal(merkle_verify_consistency(m, n,
				    r1, r2, proof, np - 1), -1);
			}
			memcpy(proof[np], r1, 32);
			assert_int_equal(merkle_verify_consistency(m, n, r1, r2,
			    proof, np + 1), -1);
			for (j = 0; j < np; j++) {
				nb = flips_for(n, (unsigned)(m * 5 + j * 11 + n), &first);
				for (b = first; b < first + nb; b++) {
					proof[j][b / 8] ^= (uint8_t)(1u << (b % 8));
					assert_int_equal(merkle_verify_consistency(m,
					    n, r1, r2, proof, np), -1);
					proof[j][b / 8] ^= (uint8_t)(1u << (b % 8));
				}
			}
		}
	}
}

static void
test_proof_errors(void **state)
{
	merkle_hash_t proof[MERKLE_MAX_PROOF], root, leaf;
	naive_ctx_t c = { 128, 0, 0 };
	size_t np;
	int call;

	(void)state;
	make_leaves(128);
	assert_int_equal(merkle_inclusion_proof(5, 5, naive_node, &c, proof, &np), -1);
	assert_int_equal(merkle_inclusion_proof(0, 0, naive_node, &c, proof, &np), -1);
	assert_int_equal(merkle_consistency_proof(0, 5, naive_node, &c, proof, &np), -1);
	assert_int_equal(merkle_consistency_proof(6, 5, naive_node, &c, proof, &np), -1);
	/* Every callback failure is passed on. */
	for (call = 1; call <= 12; call++) {
		naive_ctx_t f = { 128, 0, call };
		int r1, r2, r3;

		r1 = merkle_inclusion_proof(37, 101, naive_node, &f, proof, &np);
		f.calls = 0;
		r2 = merkle_consistency_proof(37, 101, naive_node, &f, proof, &np);
		f.calls = 0;
		r3 = merkle_root(101, naive_node, &f, root);
		if (call <= 4) {	/* each makes at least 4 calls here */
			assert_int_equal(r1, -1);
			assert_int_equal(r2, -1);
		}
		if (call <= 4)	/* popcount(101) == 4 */
			assert_int_equal(r3, -1);
		else
			assert_int_equal(r3, 0);
	}
	/* The store cannot answer beyond its size. */
	c.limit = 50;
	assert_int_equal(merkle_inclusion_proof(3, 101, naive_node, &c, proof, &np), -1);
	/* Verifier argument checks (on defined bytes: valgrind). */
	memset(leaf, 0, sizeof(leaf));
	memset(root, 0, sizeof(root));
	memset(proof, 0, sizeof(proof));
	assert_int_equal(merkle_verify_inclusion(0, 0, leaf, proof, 0, root), -1);
	assert_int_equal(merkle_verify_inclusion(3, 2, leaf, proof, 1, root), -1);
	assert_int_equal(merkle_verify_inclusion(0, 2, leaf, proof, 65, root), -1);
	assert_int_equal(merkle_verify_consistency(0, 0, root, root, proof, 0), -1);
	assert_int_equal(merkle_verify_consistency(3, 2, root, root, proof, 0), -1);
	assert_int_equal(merkle_verify_consistency(1, 1, root, root, proof, 0), 0);
	assert_int_equal(merkle_verify_consistency(1, 1, root, root, proof, 1), -1);
	assert_int_equal(merkle_verify_consistency(1, 2, root, root, proof, 0), -1);
	assert_int_equal(merkle_verify_consistency(1, 2, root, root, proof, 65), -1);
	/* Huge sizes: rejected by length, never overflow. */
	assert_int_equal(merkle_verify_inclusion(UINT64_MAX - 1, UINT64_MAX,
	    leaf, proof, 64, root), -1);
	assert_int_equal(merkle_verify_consistency(UINT64_MAX - 1, UINT64_MAX,
	    root, root, proof, 64), -1);
}

/* ---- huge trees: every leaf the same, so a complete subtree's hash depends
 * only on its level and any size up to 2^63 - 1 can be answered ---- */

static merkle_hash_t uniform[64];

static int
uniform_node(void *ctx, unsigned level, uint64_t index, merkle_hash_t out)
{
	uint64_t limit = *(const uint64_t *)ctx;

	if (level >= 64 || index > (limit >> level) ||
	    ((index + 1) << level) > limit || ((index + 1) << level) == 0)
		return -1;
	memcpy(out, uniform[level], 32);
	return 0;
}

static void
test_huge_sizes(void **state)
{
	static const uint64_t sizes[] = {
		((uint64_t)1 << 32) + 1, ((uint64_t)1 << 40) - 1,
		((uint64_t)1 << 62) + ((uint64_t)1 << 31) + 7,
		((uint64_t)1 << 63) - 1, (uint64_t)1 << 63,
	};
	merkle_hash_t proof[MERKLE_MAX_PROOF], root, r1;
	merkle_frontier_t f;
	uint64_t n, idx, m;
	size_t i, j, np;
	int k;

	(void)state;
	merkle_leaf_hash("same", 4, uniform[0]);
	for (k = 1; k < 64; k++)
		merkle_node_hash(uniform[k - 1], uniform[k - 1], uniform[k]);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		n = sizes[i];
		assert_int_equal(merkle_root(n, uniform_node, &n, root), 0);
		/* the frontier loaded from the store gives the same root */
		assert_int_equal(merkle_frontier_load(&f, n, uniform_node, &n), 0);
		merkle_frontier_root(&f, r1);
		assert_memory_equal(r1, root, 32);
		for (j = 0; j < 4; j++) {
			idx = j == 0 ? 0 : j == 1 ? n - 1 : j == 2 ? n / 3 : n / 2 + 1;
			assert_int_equal(merkle_inclusion_proof(idx, n, uniform_node,
			    &n, proof, &np), 0);
			assert_int_equal(merkle_verify_inclusion(idx, n, uniform[0],
			    proof, np, root), 0);
			proof[np / 2][7] ^= 0x10;
			assert_int_equal(merkle_verify_inclusion(idx, n, uniform[0],
			    proof, np, root), -1);
			m = j == 0 ? 1 : j == 1 ? n - 1 : j == 2 ? n / 3 : n / 2 + 1;
			assert_int_equal(merkle_root(m, uniform_node, &n, r1), 0);
			assert_int_equal(merkle_consistency_proof(m, n, uniform_node,
			    &n, proof, &np), 0);
			assert_int_equal(merkle_verify_consistency(m, n, r1, root,
			    proof, np), 0);
			proof[0][0] ^= 1;
			assert_int_equal(merkle_verify_consistency(m, n, r1, root,
			    proof, np), -1);
		}
	}
	/* 2^64 - 1 leaves: an inclusion proof has 64 hashes and still fits. */
	n = UINT64_MAX;
	assert_int_equal(merkle_root(n, uniform_node, &n, root), 0);
	assert_int_equal(merkle_inclusion_proof(n - 1, n, uniform_node, &n, proof,
	    &np), 0);
	assert_int_equal(merkle_verify_inclusion(n - 1, n, uniform[0], proof, np,
	    root), 0);
}

/* ---- frontier ---- */

typedef struct {
	merkle_hash_t node[10][MAXN];	/* [level][index], emitted nodes */
	uint8_t have[10][MAXN];
	unsigned emitted;
	int fail;
} table_t;

static int
table_emit(void *vctx, unsigned level, uint64_t index, const merkle_hash_t h)
{
	table_t *t = vctx;
	merkle_hash_t want;

	if (t->fail)
		return -1;
	assert_true(level >= 1 && level < 10);
	assert_true(((index + 1) << level) <= MAXN);
	assert_false(t->have[level][index]);	/* each node emitted once */
	mth(index << level, (index + 1) << level, want);
	assert_memory_equal(h, want, 32);
	memcpy(t->node[level][index], h, 32);
	t->have[level][index] = 1;
	t->emitted++;
	return 0;
}

static int
table_node(void *vctx, unsigned level, uint64_t index, merkle_hash_t out)
{
	table_t *t = vctx;

	if (level >= 10 || index >= MAXN)
		return -1;
	if (level == 0) {
		memcpy(out, leaves[index], 32);
		return 0;
	}
	if (!t->have[level][index])
		return -1;
	memcpy(out, t->node[level][index], 32);
	return 0;
}

static void
test_frontier(void **state)
{
	table_t *t = calloc(1, sizeof(*t));
	merkle_frontier_t f, g, before;
	merkle_hash_t got, want;
	uint64_t n;
	int k;

	(void)state;
	assert_non_null(t);
	make_leaves(MAXN);
	merkle_frontier_init(&f);
	merkle_frontier_root(&f, got);
	mth(0, 0, want);
	assert_memory_equal(got, want, 32);
	assert_int_equal(merkle_frontier_load(&g, 0, table_node, t), 0);
	assert_int_equal(g.size, 0);
	for (n = 1; n <= MAXN; n++) {
		assert_int_equal(merkle_frontier_append(&f, leaves[n - 1],
		    table_emit, t), 0);
		assert_int_equal(f.size, n);
		merkle_frontier_root(&f, got);
		mth(0, n, want);
		assert_memory_equal(got, want, 32);
		/* A store holding only the emitted nodes answers root queries and
		 * reloads the same frontier. */
		assert_int_equal(merkle_root(n, table_node, t, got), 0);
		assert_memory_equal(got, want, 32);
		assert_int_equal(merkle_frontier_load(&g, n, table_node, t), 0);
		assert_int_equal(g.size, n);
		for (k = 0; k < 64; k++)
			if ((n >> k) & 1)
				assert_memory_equal(g.node[k], f.node[k], 32);
		merkle_frontier_root(&g, got);
		assert_memory_equal(got, want, 32);
	}
	assert_int_equal(t->emitted, MAXN - __builtin_popcountll(MAXN));

	/* A failing emit leaves the frontier as it was (size 300 has a low
	 * bit clear: append 300 -> 301 emits nothing, 301 -> 302 emits). */
	assert_int_equal(merkle_frontier_append(&f, leaves[0], NULL, NULL), 0);
	before = f;
	t->fail = 1;
	assert_int_equal(merkle_frontier_append(&f, leaves[1], table_emit, t), -1);
	assert_memory_equal(&f, &before, sizeof(f));
	/* Loading fails when the store lacks a node, leaving f alone. */
	assert_int_equal(merkle_frontier_load(&f, 1024, table_node, t), -1);
	assert_memory_equal(&f, &before, sizeof(f));
	/* No append past 2^64 - 1 leaves. */
	f.size = UINT64_MAX;
	assert_int_equal(merkle_frontier_append(&f, leaves[0], NULL, NULL), -1);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conformance_vectors),
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_leaf_hash_long),
		cmocka_unit_test(test_inclusion_property),
		cmocka_unit_test(test_consistency_property),
		cmocka_unit_test(test_proof_errors),
		cmocka_unit_test(test_huge_sizes),
		cmocka_unit_test(test_frontier),
	};

	return cmocka_run_group_tests_name("merkle", tests, NULL, NULL);
}
