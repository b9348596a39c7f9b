/*
 * policy: who may do what with which fields of a nominal record (SPEC
 * section 7).  The file format is described in docs/POLICY.md.
 *
 * Pure: no I/O, no clock, no global state.  A loaded policy is immutable and
 * may be shared by any number of threads; each decision is independent.
 *
 * Semantics, in one paragraph: a rule applies to a request when its op list
 * holds the request's operation and every condition in its "when" holds.
 * Default deny: a field or an operation that no applicable permit names does
 * not pass.  An applicable forbid always wins over any permit (a forbid with
 * no "fields" refuses the whole operation).  Results never depend on the
 * order of the rules.  For read, transfer and ingress the core fields (id,
 * version, managing_area, category, level) pass to every permitted caller.
 * Whatever the file says, a category 4 record is read only by a caller
 * holding clearance "ct" and transferred only to a gateway holding it
 * (SPEC 7): refused whole otherwise, the decision naming the built-in rule
 * "builtin:category4-needs-ct" when no forbid of the file refused first.
 */
#ifndef POLICY_POLICY_H
#define POLICY_POLICY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "crypto/identity.h"

#define POLICY_FILE_MAX (1024 * 1024)	/* largest policy file accepted */
#define POLICY_RULES_MAX 1000
#define POLICY_HASH_HEX_LEN 64

typedef enum {
	POLICY_OP_READ,		/* an agency reads a record */
	POLICY_OP_WRITE,	/* an agency creates or changes fields */
	POLICY_OP_ERASE,	/* an agency erases a record */
	POLICY_OP_TRANSFER,	/* what a RECEIVING gateway gets in a transfer */
	POLICY_OP_INGRESS,	/* what we accept from a SENDING gateway */
	POLICY_OP_INITIATE_TRANSFER	/* an agency asks for a transfer */
} policy_op_t;

/* "read", "write", "erase", "transfer", "ingress", "initiate-transfer". */
const char *policy_op_name(policy_op_t op);

/* The op with that name, or -1. */
int policy_op_from_name(const char *name);

/* The purposes of SPEC section 5 (X-Visor-Purpose), NULL-terminated. */
extern const char *const policy_purposes[];

/* 1 if s is one of policy_purposes. */
int policy_purpose_valid(const char *s);

typedef struct {
	policy_op_t op;
	/* read, write, erase, initiate-transfer: the agency; transfer: the
	 * RECEIVING gateway; ingress: the SENDING gateway. */
	const identity_t *caller;
	const char *const *clearances;	/* of that identity, from configuration */
	size_t n_clearances;
	const char *purpose;		/* one of policy_purposes */
	const char *local_area;		/* this gateway's area ("@local") */
	const char *today;		/* "YYYY-MM-DD", for valid_until */
	int no_explanation;		/* 1: leave policy_decision_explanation
					   empty (the gateway's hot path needs
					   the decision, paths and rules only) */
} policy_request_t;

typedef struct policy policy_t;
typedef struct policy_decision policy_decision_t;

/* Parse and validate a policy file (len bytes, at most POLICY_FILE_MAX; no
 * NUL needed).  Returns the policy (free with policy_free) or NULL with a
 * message in err naming the rule id (or rules[i] when it has none) and the
 * bad key or path, e.g.
 *   rule "read-housing": fields[2]: unknown field or group "person.dobb". */
policy_t *policy_load(const char *json, size_t len, char *err, size_t errlen);

/* Free a policy; NULL is a no-op. */
void policy_free(policy_t *p);

/* SHA-256 of the exact file bytes, 64 lowercase hex digits (owned by p). */
const char *policy_hash_hex(const policy_t *p);

/* Number of rules; the policy's "name" (owned by p, "" when absent). */
size_t policy_rule_count(const policy_t *p);
const char *policy_name(const policy_t *p);

/*
 * The decisions.  Each returns 0 and sets *out to a new decision (allowed or
 * denied; free with policy_decision_free), or -1 with *out NULL for a bad
 * request (NULL argument, wrong op for the function, today not a date, record
 * not an object with valid core fields) or when memory is short.
 *
 * The record must be schema-valid (record_validate) except that filtering
 * tolerates the output of an earlier filtering (dates reduced to a year,
 * postcodes to a district), so that filtering is idempotent.
 */

/* op READ, TRANSFER or INGRESS.
 * read/transfer: allowed when no fieldless forbid applies, a permit rule
 * applies, and at least one field beyond the core passes or the record holds
 * nothing beyond the core; the decision's record is the filtered copy.
 * ingress: allowed only when nothing would be withheld or transformed, an
 * empty object, array or element counting as the field it is (the gateway
 * stores the record as it came); on refusal the withheld list holds the
 * offending paths. */
int policy_filter(const policy_t *p, const policy_request_t *req,
    const cJSON *record, policy_decision_t **out);

/* op READ: how the caller reads each schema field in a record of this
 * one's managing area, category and level.  map[i] (i indexing
 * record_fields(), n at least its count) is POLICY_READ_WHOLE when every
 * leaf of field i passes unreduced (no forbid covers it, a permit names it
 * without transform and without element conditions; core fields always),
 * POLICY_READ_PART when some leaf may pass in some form (reduced, or only
 * some elements), POLICY_READ_NONE otherwise (also for the core fields
 * when the read is refused whole).  Only the record's core
 * fields are looked at, so the map says nothing about what else the record
 * holds.  0, or -1 on a bad request. */
enum { POLICY_READ_NONE = 0, POLICY_READ_PART = 1, POLICY_READ_WHOLE = 2 };
int policy_read_map(const policy_t *p, const policy_request_t *req,
    const cJSON *record, unsigned char *map, size_t n);

/* op WRITE.  record is the record as it would be after the write (for the
 * category, level and managing_area conditions); paths are schema paths
 * (record_changed_paths, record_patch_paths; containers mean every field
 * inside).  Allowed only when every path is writable; otherwise the reason
 * names the first forbidden path and the withheld list holds all of them.
 * The disclosed list holds the permitted paths (for the audit "fields"). */
int policy_check_write(const policy_t *p, const policy_request_t *req,
    const cJSON *record, const char *const *paths, size_t n,
    policy_decision_t **out);

/* op ERASE: allowed when an applicable permit names the op and no
 * applicable forbid does. */
int policy_check_erase(const policy_t *p, const policy_request_t *req,
    const cJSON *record, policy_decision_t **out);

/* op INITIATE_TRANSFER (the requesting agency); same rule as erase.  The
 * content then goes through policy_filter with op TRANSFER and the
 * receiving gateway as caller. */
int policy_check_initiate_transfer(const policy_t *p,
    const policy_request_t *req, const cJSON *record, policy_decision_t **out);

/* 1 if allowed, 0 if denied (or d is NULL). */
int policy_decision_allowed(const policy_decision_t *d);

/* The filtered record (read, transfer, ingress when allowed); NULL
 * otherwise.  Owned by the decision. */
const cJSON *policy_decision_record(const policy_decision_t *d);

/* One-line reason ("permitted", "forbidden by rule cat4-needs-ct", ...).
 * Owned by the decision. */
const char *policy_decision_reason(const policy_decision_t *d);

/* Lists owned by the decision; *n gets the count.  Paths are schema paths
 * (`orders[].prohibitions`), whole groups of fields collapsed to their
 * top-level field (`health`), and `intelligence[2]` / `addresses[1].town`
 * (the index in the input record) where only some elements are affected.
 *   disclosed:   paths passed (read/transfer/ingress) or writable (write)
 *   withheld:    paths present in the record that did not pass
 *   transformed: paths passed in a reduced form (also in disclosed)
 *   rules:       ids of the rules that decided, sorted
 *   explanation: human text, one line per field or rule */
const char *const *policy_decision_disclosed(const policy_decision_t *d, size_t *n);
const char *const *policy_decision_withheld(const policy_decision_t *d, size_t *n);
const char *const *policy_decision_transformed(const policy_decision_t *d, size_t *n);
const char *const *policy_decision_rules(const policy_decision_t *d, size_t *n);
const char *const *policy_decision_explanation(const policy_decision_t *d, size_t *n);

/* Rules that load but do not do what they read as: a rule for transfer or
 * ingress only (whose caller is always a peer gateway) with an agency_type
 * condition, or a caller_kind that leaves out gateways (it never applies);
 * a permit with unless_clearance (it grants to callers lacking the
 * clearance); a forbid with valid_until (it lapses, opening what it
 * refused).  Calls warn once per finding with the rule id and a sentence;
 * returns how many. */
size_t policy_lint(const policy_t *p, void (*warn)(void *arg, const char *id,
    const char *why), void *arg);

/* Free a decision; NULL is a no-op. */
void policy_decision_free(policy_decision_t *d);

#endif
