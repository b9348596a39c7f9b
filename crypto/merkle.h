/*
 * merkle: RFC 9162 (RFC 6962) Merkle tree hashing and proofs, SHA-256.
 *
 *   leaf hash  = SHA-256(0x00 || leaf)
 *   node hash  = SHA-256(0x01 || left || right)
 *   empty tree = SHA-256("")
 *
 * Proof generation does not own storage: it asks a callback for the hash of
 * complete, aligned subtrees (start a multiple of 2^level, 2^level leaves),
 * which a store keeps; incomplete right-edge subtrees are built from those.
 * Every generator makes O(log n) callback calls.
 */
#ifndef CRYPTO_MERKLE_H
#define CRYPTO_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32
#define MERKLE_MAX_PROOF 64	/* hashes in any proof for sizes < 2^63 */

typedef uint8_t merkle_hash_t[MERKLE_HASH_LEN];

/* SHA-256(0x00 || leaf). */
void merkle_leaf_hash(const void *leaf, size_t len, merkle_hash_t out);

/* SHA-256(0x01 || left || right). */
void merkle_node_hash(const merkle_hash_t left, const merkle_hash_t right,
    merkle_hash_t out);

/* SHA-256 of nothing: the root of the empty tree. */
void merkle_empty_root(merkle_hash_t out);

/* Hash of the complete subtree at (level, index): leaves
 * [index << level, (index + 1) << level).  Level 0 is a leaf hash.  Returns 0,
 * or -1 if the store cannot answer. */
typedef int (*merkle_node_fn)(void *ctx, unsigned level, uint64_t index,
    merkle_hash_t out);

/* Root of the tree of the first size leaves.  0 or -1. */
int merkle_root(uint64_t size, merkle_node_fn fn, void *ctx, merkle_hash_t out);

/* Inclusion proof of leaf index in the tree of size leaves (index < size),
 * written to proof (room for MERKLE_MAX_PROOF), count in *n.  0 or -1. */
int merkle_inclusion_proof(uint64_t index, uint64_t size, merkle_node_fn fn,
    void *ctx, merkle_hash_t *proof, size_t *n);

/* Consistency proof from size m to size n (0 < m <= n).  0 or -1. */
int merkle_consistency_proof(uint64_t m, uint64_t n, merkle_node_fn fn,
    void *ctx, merkle_hash_t *proof, size_t *count);

/* Verify an inclusion proof (RFC 9162 2.1.3.2), checking its exact length.
 * Returns 0 if leaf_hash at index is in the tree of size with root, else -1. */
int merkle_verify_inclusion(uint64_t index, uint64_t size,
    const merkle_hash_t leaf_hash, const merkle_hash_t *proof, size_t n,
    const merkle_hash_t root);

/* Verify a consistency proof (RFC 9162 2.1.4.2) with the edge rules of the
 * conformance vectors: size1 == 0 is always rejected; equal sizes need an
 * empty proof and equal roots.  0 if consistent, else -1. */
int merkle_verify_consistency(uint64_t size1, uint64_t size2,
    const merkle_hash_t root1, const merkle_hash_t root2,
    const merkle_hash_t *proof, size_t n);

/*
 * Incremental building: the frontier is the list of roots of the complete
 * subtrees on the right edge (at most 64).  Appending a leaf hash completes
 * zero or more subtrees; each completed node (level >= 1) is reported to
 * emit so that a store can keep it.  The root is computed from the frontier.
 */
typedef struct {
	uint64_t size;
	merkle_hash_t node[64];		/* node[k] valid when bit k of size is set */
} merkle_frontier_t;

/* Reported for every completed node of level >= 1. 0 or -1 (stops append). */
typedef int (*merkle_emit_fn)(void *ctx, unsigned level, uint64_t index,
    const merkle_hash_t hash);

/* Empty frontier. */
void merkle_frontier_init(merkle_frontier_t *f);

/* Append one leaf hash; emit may be NULL.  0 or -1 (emit failed; f unchanged). */
int merkle_frontier_append(merkle_frontier_t *f, const merkle_hash_t leaf_hash,
    merkle_emit_fn emit, void *ctx);

/* Root of the tree the frontier describes. */
void merkle_frontier_root(const merkle_frontier_t *f, merkle_hash_t out);

/* Rebuild a frontier for size leaves from stored complete nodes. 0 or -1. */
int merkle_frontier_load(merkle_frontier_t *f, uint64_t size, merkle_node_fn fn,
    void *ctx);

#endif
