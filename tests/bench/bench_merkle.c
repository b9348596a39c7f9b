/*
 * Micro-benchmark of crypto/merkle, in memory, one thread:
 *   leaf hashing rate (300-byte leaves),
 *   inclusion and consistency proof generation + verification at 1,000,000
 *   leaves (node hashes in an array table per level, as a store keeps them),
 *   recomputing the root of 1,000,000 leaves of 300 bytes from scratch.
 * Prints "RESULT <name> <value> <unit>" lines; never fails on speed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/merkle.h"

#define N 1000000u
#define LEAF_LEN 300
#define LEVELS 21		/* 2^20 > N */
#define SAMPLES 20000

int main(void);

typedef struct {
	merkle_hash_t *level[LEVELS];	/* level[k][i]: node (k, i) */
	uint64_t count[LEVELS];
} table_t;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A synthetic audit-entry-sized leaf whose bytes depend on i. */
static void
make_leaf(uint64_t i, unsigned char leaf[LEAF_LEN])
{
	int n;

	memset(leaf, 'x', LEAF_LEN);
	n = snprintf((char *)leaf, LEAF_LEN, "{\"seq\":%llu,\"op\":\"consult\","
	    "\"actor\":{\"id\":\"visor:agency:police:bench\"},\"purpose\":"
	    "\"review\",\"record\":\"synthetic-%llu\"", (unsigned long long)i,
	    (unsigned long long)i);
	leaf[n] = ',';
	leaf[LEAF_LEN - 1] = '}';
}

static int
table_emit(void *ctx, unsigned level, uint64_t index, const merkle_hash_t h)
{
	table_t *t = ctx;

	if (level >= LEVELS || index >= t->count[level])
		return -1;
	memcpy(t->level[level][index], h, MERKLE_HASH_LEN);
	return 0;
}

static int
table_node(void *ctx, unsigned level, uint64_t index, merkle_hash_t out)
{
	table_t *t = ctx;

	if (level >= LEVELS || index >= t->count[level])
		return -1;
	memcpy(out, t->level[level][index], MERKLE_HASH_LEN);
	return 0;
}

static uint64_t
rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int
main(void)
{
	static unsigned char leaf[LEAF_LEN];
	static merkle_hash_t proof[MERKLE_MAX_PROOF];
	merkle_hash_t root, r1;
	merkle_frontier_t f;
	table_t t;
	uint64_t i, seed = 0x9e3779b97f4a7c15ULL, *idx;
	merkle_hash_t *roots;
	size_t n;
	double t0, el;
	unsigned k;
	int bad = 0;

	printf("# cores %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
	printf("# merkle: %u leaves of %d bytes, SHA-256 (OpenSSL), one thread, "
	    "node table in memory\n", N, LEAF_LEN);

	/* Leaf hashing rate. */
	t0 = now();
	for (i = 0; i < N; i++) {
		make_leaf(i, leaf);
		merkle_leaf_hash(leaf, LEAF_LEN, proof[0]);
	}
	el = now() - t0;
	printf("RESULT merkle_leaf_hash %.0f hashes/s\n", (double)N / el);

	/* Recompute the root of N leaves from scratch, as an auditor does. */
	merkle_frontier_init(&f);
	t0 = now();
	for (i = 0; i < N; i++) {
		make_leaf(i, leaf);
		merkle_leaf_hash(leaf, LEAF_LEN, proof[0]);
		if (merkle_frontier_append(&f, proof[0], NULL, NULL) != 0)
			return 1;
	}
	merkle_frontier_root(&f, root);
	el = now() - t0;
	printf("RESULT merkle_verify_1m_entries %.3f s\n", el);

	/* Build the node table (what the store keeps) with the emit hook. */
	for (k = 0; k < LEVELS; k++) {
		t.count[k] = N >> k;
		t.level[k] = malloc((t.count[k] + 1) * sizeof(merkle_hash_t));
		if (t.level[k] == NULL)
			return 1;
	}
	merkle_frontier_init(&f);
	for (i = 0; i < N; i++) {
		make_leaf(i, leaf);
		merkle_leaf_hash(leaf, LEAF_LEN, t.level[0][i]);
		if (merkle_frontier_append(&f, t.level[0][i], table_emit, &t) != 0)
			return 1;
	}
	if (merkle_root(N, table_node, &t, r1) != 0 ||
	    memcmp(r1, root, MERKLE_HASH_LEN) != 0) {
		fprintf(stderr, "bench_merkle: table root differs\n");
		return 1;
	}

	/* Inclusion: generate and verify at random indices. */
	idx = malloc(SAMPLES * sizeof(*idx));
	roots = malloc(SAMPLES * sizeof(*roots));
	if (idx == NULL || roots == NULL)
		return 1;
	for (i = 0; i < SAMPLES; i++)
		idx[i] = rng(&seed) % N;
	t0 = now();
	for (i = 0; i < SAMPLES; i++) {
		if (merkle_inclusion_proof(idx[i], N, table_node, &t, proof, &n) != 0 ||
		    merkle_verify_inclusion(idx[i], N, t.level[0][idx[i]], proof, n,
		    root) != 0)
			bad++;
	}
	el = now() - t0;
	printf("RESULT merkle_inclusion_proof_1m %.2f us\n", el * 1e6 / SAMPLES);

	/* Consistency: from random sizes m (roots computed beforehand) to N. */
	for (i = 0; i < SAMPLES; i++) {
		idx[i] = 1 + rng(&seed) % N;
		if (merkle_root(idx[i], table_node, &t, roots[i]) != 0)
			return 1;
	}
	t0 = now();
	for (i = 0; i < SAMPLES; i++) {
		if (merkle_consistency_proof(idx[i], N, table_node, &t, proof,
		    &n) != 0 ||
		    merkle_verify_consistency(idx[i], N, roots[i], root, proof,
		    n) != 0)
			bad++;
	}
	el = now() - t0;
	printf("RESULT merkle_consistency_proof_1m %.2f us\n", el * 1e6 / SAMPLES);

	for (k = 0; k < LEVELS; k++)
		free(t.level[k]);
	free(idx);
	free(roots);
	if (bad) {
		fprintf(stderr, "bench_merkle: %d proofs failed to verify\n", bad);
		return 1;
	}
	return 0;
}
