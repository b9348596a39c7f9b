/*
 * audit_verify: the auditor's side of the audit log (SPEC section 8), as
 * pure functions over bytes: no network, no files.  `visorctl audit` feeds
 * it what the gateway answers; `verify-bundle` feeds it a bundle file; the
 * unit tests feed it forgeries.  Nothing the server sends is trusted: every
 * leaf, proof and checkpoint must verify against the auditor's verifier key.
 *
 * Errors name what failed and, for a leaf, its index ("entry 41: ...").
 *
 * Bundle format (docs/AUDIT.md): one JSON object, exactly these members:
 *   {"format":"visor-audit-bundle/1",
 *    "vkey":"<verifier key line>",
 *    "checkpoint":"<the signed note, text>",
 *    "entries":[{"index":0,"data":"<base64 leaf>"}, ...]}
 * with entries 0..size-1 of the checkpoint's size, in order.
 */
#ifndef CRYPTO_AUDIT_VERIFY_H
#define CRYPTO_AUDIT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/merkle.h"
#include "crypto/note.h"
#include "util/buf.h"

#define AUDIT_BUNDLE_FORMAT "visor-audit-bundle/1"
#define AUDIT_BUNDLE_MAX (1024u << 20)	/* bytes of a bundle file */
#define AUDIT_VERIFY_MAX_LEAF 65536	/* bytes of one leaf */
#define AUDIT_VERIFY_ERR 256		/* suggested err buffer size */
#define AUDIT_INDEX_NONE UINT64_MAX
#define AUDIT_TIME_MAX 25		/* YYYY-MM-DDTHH:MM:SS.mmmZ and NUL */

/* A verified checkpoint. */
typedef struct {
	char origin[128];		/* = the verifier key's name */
	uint64_t size;
	merkle_hash_t root;
} audit_checkpoint_t;

/* Open a signed checkpoint note (len bytes) with v: the signature by v must
 * verify and the origin must equal v's key name (SPEC section 8).  Fills
 * *out.  0, or -1 with a reason in err. */
int audit_verify_checkpoint(const note_verifier_t *v, const char *note,
    size_t len, audit_checkpoint_t *out, char *err, size_t errlen);

/* Check that leaf (len bytes) is the leaf at index: a strict JSON object
 * (at most AUDIT_VERIFY_MAX_LEAF bytes) whose "seq" is index.  0, or -1
 * with a reason (naming the index) in err. */
int audit_verify_leaf(const uint8_t *leaf, size_t len, uint64_t index,
    char *err, size_t errlen);

/*
 * Recomputing the root from every leaf, in order, in O(log n) memory.
 */
typedef struct {
	merkle_frontier_t f;
	uint64_t bad_index;		/* first rejected index, or NONE */
	/* Entry times (the "time" member, RFC 3339 UTC) going back: entries
	 * whose time is earlier than one before them, and the first such
	 * index (NONE if none).  Not an error: a gateway before store
	 * schema 2 wrote its clock's time even when the clock had been set
	 * back; since then times never decrease.  A search by time assumes
	 * they do, and can miss entries past the first. */
	char latest_time[AUDIT_TIME_MAX];
	uint64_t times_back, first_back;
} audit_walk_t;

/* Start a walk at index 0. */
void audit_walk_init(audit_walk_t *w);

/* Add the leaf at index: index must be the next one (w->f.size) and the
 * leaf must pass audit_verify_leaf.  On failure records bad_index and
 * returns -1 with err; the walk then refuses further leaves. */
int audit_walk_add(audit_walk_t *w, uint64_t index, const uint8_t *leaf,
    size_t len, char *err, size_t errlen);

/* Check an entries answer (SPEC section 5) for [start, start + count) and
 * add its leaves to w; start must be w's next index, at most max entries.
 * Sets *count.  0, or -1 with err (the index when a leaf is at fault). */
int audit_walk_page(audit_walk_t *w, const char *json, size_t len,
    uint64_t start, size_t max, size_t *count, char *err, size_t errlen);

/* Check that the walk covered exactly cp->size leaves and that they hash to
 * cp->root.  0, or -1 with err. */
int audit_walk_finish(const audit_walk_t *w, const audit_checkpoint_t *cp,
    char *err, size_t errlen);

/*
 * Proof answers from the server, checked against what was asked and what
 * is signed.
 */

/* The root that leaf_hash at index and an inclusion proof imply for a tree
 * of size leaves (RFC 9162 2.1.3.2).  0, or -1 if the proof has the wrong
 * length for (index, size). */
int audit_inclusion_root(uint64_t index, uint64_t size,
    const merkle_hash_t leaf_hash, const merkle_hash_t *proof, size_t n,
    merkle_hash_t root_out);

/* Check an inclusion answer (json, len) for leaf (its bytes) at index in
 * the tree of size leaves whose root is root: the answer must be for
 * exactly (index, size) and the proof must verify.  0, or -1 with err. */
int audit_verify_inclusion_answer(const char *json, size_t len,
    uint64_t index, uint64_t size, const uint8_t *leaf, size_t leaf_len,
    const merkle_hash_t root, char *err, size_t errlen);

/* The same when the signed tree is larger than size: the inclusion answer
 * for (index, size) gives the root of the first size leaves, which the
 * consistency answer (size -> cp->size) must prove to be a prefix of the
 * signed tree.  cons_json may be NULL when size == cp->size.  0 or -1. */
int audit_verify_inclusion_at(const char *incl_json, size_t incl_len,
    const char *cons_json, size_t cons_len, uint64_t index, uint64_t size,
    const uint8_t *leaf, size_t leaf_len, const audit_checkpoint_t *cp,
    char *err, size_t errlen);

/* Check a consistency answer proving that old (an earlier verified
 * checkpoint) is a prefix of new: the answer must be for exactly
 * (old->size, new->size).  A smaller new size is refused (rolled back);
 * an old size of 0 needs no proof (json may be NULL); equal sizes need
 * equal roots.  0, or -1 with err. */
int audit_verify_consistency_answer(const char *json, size_t len,
    const audit_checkpoint_t *old_cp, const audit_checkpoint_t *new_cp,
    char *err, size_t errlen);

/* Called for each hit of a search answer, in order. 0 to go on, -1 stops. */
typedef int (*audit_hit_fn)(void *ctx, uint64_t index, const uint8_t *leaf,
    size_t len);

/* Read a search answer {"size":N,"entries":[{"index":i,"data":"<b64>"}]}:
 * indices strictly increasing, each below size, each leaf passing
 * audit_verify_leaf.  The whole answer is checked before fn is called.
 * Sets *size and *count.  0, or -1 with err. */
int audit_search_answer(const char *json, size_t len, audit_hit_fn fn,
    void *ctx, uint64_t *size, size_t *count, char *err, size_t errlen);

/* The same for one page of a search that may go on: the answer may also
 * carry "next" (the index the next page starts at, when this one was cut
 * at the gateway's bound), which must lie past the page's last hit and
 * within size.  *next gets it, or 0 when the search is complete. */
int audit_search_page(const char *json, size_t len, audit_hit_fn fn,
    void *ctx, uint64_t *size, size_t *count, uint64_t *next, char *err,
    size_t errlen);

/*
 * Offline bundles.
 */

/* Start a bundle in out: the verifier key line (no newline) and the signed
 * checkpoint note.  0 or -1. */
int audit_bundle_begin(buf_t *out, const char *vkey_line, const char *note,
    size_t note_len);

/* Append the entry at index (call for 0, 1, ... in order).  0 or -1. */
int audit_bundle_add(buf_t *out, uint64_t index, const uint8_t *leaf,
    size_t len);

/* Close the bundle.  0 or -1. */
int audit_bundle_end(buf_t *out);

typedef struct {
	audit_checkpoint_t cp;		/* the verified checkpoint */
	uint64_t times_back, first_back;	/* as in audit_walk_t */
	char key_name[128];		/* the key that signed it */
	int key_from_bundle;		/* 1: no trusted key given, the
					 * bundle's own key was used */
	uint64_t bad_index;		/* first bad entry, or NONE */
} audit_bundle_result_t;

/* Verify a bundle (len bytes, at most AUDIT_BUNDLE_MAX) offline.  With
 * trusted non-NULL the checkpoint must verify with it and the bundle's
 * vkey line must name the same key (name and key id); with trusted NULL
 * the bundle's own key is used (res->key_from_bundle = 1: the caller must
 * say so).  Then every leaf is checked and the root recomputed.  0, or -1 with err naming the
 * first bad index (also in res->bad_index) or the failed check. */
int audit_bundle_verify(const char *json, size_t len,
    const note_verifier_t *trusted, audit_bundle_result_t *res, char *err,
    size_t errlen);

/* audit_bundle_verify, and on success the root of the bundle's first
 * at_size entries into at_root, *have_at set to 1, when 0 < at_size <=
 * its size (*have_at 0 otherwise): to hold a bundle against a checkpoint
 * verified before. */
int audit_bundle_verify_at(const char *json, size_t len,
    const note_verifier_t *trusted, uint64_t at_size, merkle_hash_t at_root,
    int *have_at, audit_bundle_result_t *res, char *err, size_t errlen);

#endif
