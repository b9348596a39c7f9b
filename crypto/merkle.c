#include "crypto/merkle.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto/sha256.h"

/*
 * The hash functions return void by contract: SHA-256 fails only when
 * libcrypto or memory is broken, and crypto/sha256 then stops the process
 * (an audit log that carried a wrong hash would be worse).
 */
static void
digest(const void *in, size_t len, merkle_hash_t out)
{
	sha256(in, len, out);
}

void
merkle_leaf_hash(const void *leaf, size_t len, merkle_hash_t out)
{
	static const uint8_t prefix = 0x00;
	uint8_t small[1 + 512];
	EVP_MD_CTX *ctx;
	int ok;

	/* Short leaves: one contiguous one-shot digest, cheaper than a context. */
	if (len < sizeof(small)) {
		small[0] = prefix;
		if (len > 0)
			memcpy(small + 1, leaf, len);
		digest(small, len + 1, out);
		return;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		sha256_failed();
	ok = EVP_DigestInit_ex2(ctx, sha256_md(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, &prefix, 1) == 1 &&
	    EVP_DigestUpdate(ctx, leaf, len) == 1 &&
	    EVP_DigestFinal_ex(ctx, out, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		sha256_failed();
}

void
merkle_node_hash(const merkle_hash_t left, const merkle_hash_t right,
    merkle_hash_t out)
{
	uint8_t in[1 + 2 * MERKLE_HASH_LEN];

	in[0] = 0x01;
	memcpy(in + 1, left, MERKLE_HASH_LEN);
	memcpy(in + 1 + MERKLE_HASH_LEN, right, MERKLE_HASH_LEN);
	digest(in, sizeof(in), out);
}

void
merkle_empty_root(merkle_hash_t out)
{
	digest("", 0, out);
}

/* Largest power of two strictly less than n (n >= 2). */
static uint64_t
split_point(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/*
 * Hash of leaves [start, start + count), count >= 1, where start is a multiple
 * of the largest power of two not above count (true of every range the proof
 * algorithms ask for: they split at powers of two).  The range is a run of
 * complete aligned subtrees, largest first; RFC 9162 hashes it as
 * H(c1, H(c2, ... H(ck-1, ck))).  popcount(count) callback calls.
 */
static int
range_hash(uint64_t start, uint64_t count, merkle_node_fn fn, void *ctx,
    merkle_hash_t out)
{
	merkle_hash_t part[64];
	uint64_t pos = start;
	int k, n = 0;

	if (count == 0)
		return -1;
	for (k = 63; k >= 0; k--) {
		uint64_t width = (uint64_t)1 << k;

		if ((count & width) == 0)
			continue;
		if ((pos & (width - 1)) != 0)
			return -1;	/* not aligned: caller's bug */
		if (fn(ctx, (unsigned)k, pos >> k, part[n]) != 0)
			return -1;
		n++;
		pos += width;
	}
	memcpy(out, part[n - 1], MERKLE_HASH_LEN);
	while (--n > 0)
		merkle_node_hash(part[n - 1], out, out);
	return 0;
}

int
merkle_root(uint64_t size, merkle_node_fn fn, void *ctx, merkle_hash_t out)
{
	if (size == 0) {
		merkle_empty_root(out);
		return 0;
	}
	return range_hash(0, size, fn, ctx, out);
}

/* Reverse proof[0..n): the generators walk top-down, proofs list bottom-up. */
static void
reverse(merkle_hash_t *proof, size_t n)
{
	merkle_hash_t t;
	size_t i;

	for (i = 0; i < n / 2; i++) {
		memcpy(t, proof[i], MERKLE_HASH_LEN);
		memcpy(proof[i], proof[n - 1 - i], MERKLE_HASH_LEN);
		memcpy(proof[n - 1 - i], t, MERKLE_HASH_LEN);
	}
}

/*
 * RFC 9162 2.1.3.1 PATH(m, D[start:start+n]) without recursion: at each
 * split k the sibling is one side, and the walk continues into the other.
 * Only a right sibling taken before the walk turns left can be incomplete,
 * so the whole proof costs O(log n) callback calls.
 */
int
merkle_inclusion_proof(uint64_t index, uint64_t size, merkle_node_fn fn,
    void *ctx, merkle_hash_t *proof, size_t *n)
{
	uint64_t start = 0, m = index, len = size;
	size_t count = 0;

	*n = 0;
	if (index >= size)
		return -1;
	while (len > 1) {
		uint64_t k = split_point(len);

		if (count == MERKLE_MAX_PROOF)
			return -1;
		if (m < k) {
			if (range_hash(start + k, len - k, fn, ctx, proof[count]) != 0)
				return -1;
			len = k;
		} else {
			if (range_hash(start, k, fn, ctx, proof[count]) != 0)
				return -1;
			start += k;
			m -= k;
			len -= k;
		}
		count++;
	}
	reverse(proof, count);
	*n = count;
	return 0;
}

/* RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b), iteratively as above. */
int
merkle_consistency_proof(uint64_t m, uint64_t n, merkle_node_fn fn,
    void *ctx, merkle_hash_t *proof, size_t *count)
{
	uint64_t start = 0, mm = m, len = n;
	size_t c = 0;
	int whole = 1;	/* b: the m-leaf subtree is the old tree itself */

	*count = 0;
	if (m == 0 || m > n)
		return -1;
	while (mm != len) {
		uint64_t k = split_point(len);

		if (c == MERKLE_MAX_PROOF)
			return -1;
		if (mm <= k) {
			if (range_hash(start + k, len - k, fn, ctx, proof[c]) != 0)
				return -1;
			len = k;
		} else {
			if (range_hash(start, k, fn, ctx, proof[c]) != 0)
				return -1;
			start += k;
			mm -= k;
			len -= k;
			whole = 0;
		}
		c++;
	}
	if (!whole) {
		if (c == MERKLE_MAX_PROOF)
			return -1;
		if (range_hash(start, len, fn, ctx, proof[c]) != 0)
			return -1;
		c++;
	}
	reverse(proof, c);
	*count = c;
	return 0;
}

int
merkle_verify_inclusion(uint64_t index, uint64_t size,
    const merkle_hash_t leaf_hash, const merkle_hash_t *proof, size_t n,
    const merkle_hash_t root)
{
	merkle_hash_t r;
	uint64_t fn, sn;
	size_t i;

	if (index >= size || n > MERKLE_MAX_PROOF)
		return -1;
	fn = index;
	sn = size - 1;
	memcpy(r, leaf_hash, MERKLE_HASH_LEN);
	for (i = 0; i < n; i++) {
		if (sn == 0)
			return -1;	/* proof too long */
		if ((fn & 1) != 0 || fn == sn) {
			merkle_node_hash(proof[i], r, r);
			if ((fn & 1) == 0)
				while ((fn & 1) == 0 && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_node_hash(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return -1;	/* proof too short */
	return CRYPTO_memcmp(r, root, MERKLE_HASH_LEN) == 0 ? 0 : -1;
}

int
merkle_verify_consistency(uint64_t size1, uint64_t size2,
    const merkle_hash_t root1, const merkle_hash_t root2,
    const merkle_hash_t *proof, size_t n)
{
	merkle_hash_t fr, sr;
	uint64_t fn, sn;
	size_t i;

	if (size1 == 0 || size1 > size2 || n > MERKLE_MAX_PROOF)
		return -1;
	if (size1 == size2) {
		if (n != 0)
			return -1;
		return CRYPTO_memcmp(root1, root2, MERKLE_HASH_LEN) == 0 ? 0 : -1;
	}
	if (n == 0)
		return -1;
	/* A power-of-two old tree is a node of the new one: its root is the
	 * implicit first element of the path (RFC 9162 2.1.4.2 step 2). */
	i = 0;
	if ((size1 & (size1 - 1)) == 0) {
		memcpy(fr, root1, MERKLE_HASH_LEN);
	} else {
		memcpy(fr, proof[0], MERKLE_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, MERKLE_HASH_LEN);
	fn = size1 - 1;
	sn = size2 - 1;
	while ((fn & 1) != 0) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < n; i++) {
		if (sn == 0)
			return -1;	/* proof too long */
		if ((fn & 1) != 0 || fn == sn) {
			merkle_node_hash(proof[i], fr, fr);
			merkle_node_hash(proof[i], sr, sr);
			if ((fn & 1) == 0)
				while ((fn & 1) == 0 && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_node_hash(sr, proof[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return -1;	/* proof too short */
	if (CRYPTO_memcmp(fr, root1, MERKLE_HASH_LEN) != 0)
		return -1;
	return CRYPTO_memcmp(sr, root2, MERKLE_HASH_LEN) == 0 ? 0 : -1;
}

void
merkle_frontier_init(merkle_frontier_t *f)
{
	memset(f, 0, sizeof(*f));
}

int
merkle_frontier_append(merkle_frontier_t *f, const merkle_hash_t leaf_hash,
    merkle_emit_fn emit, void *ctx)
{
	merkle_hash_t h;
	unsigned level = 0;

	if (f->size == UINT64_MAX)
		return -1;
	memcpy(h, leaf_hash, MERKLE_HASH_LEN);
	/* Each set low bit of size is a left sibling waiting for this leaf's
	 * subtree: merge until a clear bit.  f is written only at the end so a
	 * failing emit leaves it as it was. */
	while ((f->size >> level) & 1) {
		merkle_node_hash(f->node[level], h, h);
		level++;
		if (emit != NULL && emit(ctx, level, f->size >> level, h) != 0)
			return -1;
	}
	memcpy(f->node[level], h, MERKLE_HASH_LEN);
	f->size++;
	return 0;
}

void
merkle_frontier_root(const merkle_frontier_t *f, merkle_hash_t out)
{
	merkle_hash_t h;
	int k, have = 0;

	if (f->size == 0) {
		merkle_empty_root(out);
		return;
	}
	for (k = 0; k < 64; k++) {
		if (((f->size >> k) & 1) == 0)
			continue;
		if (!have) {
			memcpy(h, f->node[k], MERKLE_HASH_LEN);
			have = 1;
		} else {
			merkle_node_hash(f->node[k], h, h);
		}
	}
	memcpy(out, h, MERKLE_HASH_LEN);
}

int
merkle_frontier_load(merkle_frontier_t *f, uint64_t size, merkle_node_fn fn,
    void *ctx)
{
	merkle_frontier_t t;
	int k;

	merkle_frontier_init(&t);
	t.size = size;
	/* The complete subtree for set bit k ends where the prefix of size
	 * above bit k ends; its index at level k is therefore (size >> k) - 1. */
	for (k = 0; k < 64; k++) {
		if (((size >> k) & 1) == 0)
			continue;
		if (fn(ctx, (unsigned)k, (size >> k) - 1, t.node[k]) != 0)
			return -1;
	}
	*f = t;
	return 0;
}
