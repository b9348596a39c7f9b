/*
 * audit_entry: one audit log entry (SPEC section 8) and its leaf encoding.
 *
 * The leaf is compact JSON with the members in this fixed order, absent
 * (NULL / zero-count) members omitted except seq, time, op, actor, result:
 *   seq, time, request_id, op, actor{id,cert,person}, record, version, purpose,
 *   justification, recipient, fields[], withheld[], transformed[], policy,
 *   rules[], result, reason, digest, transfer
 * Entries never carry record values: only paths, hashes and identifiers.
 */
#ifndef GATEWAY_AUDIT_ENTRY_H
#define GATEWAY_AUDIT_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AUDIT_VERSION_NONE 0
/* For an entry in a store job: take the version the job's record write got. */
#define AUDIT_VERSION_ASSIGNED UINT64_MAX

/* Longest head plus tail (below): the writer adds "seq", "time" and
 * "version" (audit_entry_assemble), at most about 95 bytes, and a leaf
 * longer than the auditors' tools read would leave the log unverifiable
 * for good. */
#define AUDIT_ENTRY_MAX_PARTS (65536 - 128)	/* AUDIT_VERIFY_MAX_LEAF - 128 */

typedef struct {
	const char *op;		/* collect, alter, consult, disclose, transfer-out,
				   transfer-in, receipt, erase, deny, auth-fail, config */
	const char *request_id;
	const char *actor_id;	/* identity URI (or "-" for a refused handshake) */
	const char *actor_cert;	/* SHA-256 hex of the certificate, or NULL */
	const char *actor_person; /* X-Visor-Actor, or NULL */
	const char *record;	/* record id, or NULL */
	uint64_t version;	/* AUDIT_VERSION_NONE, a version, or _ASSIGNED */
	const char *purpose;
	const char *justification;
	const char *recipient;	/* identity URI of who receives the data */
	const char *const *fields; size_t n_fields;
	const char *const *withheld; size_t n_withheld;
	/* of fields, those that went out reduced (a dob as its year) */
	const char *const *transformed; size_t n_transformed;
	const char *policy;	/* policy hash, hex */
	const char *const *rules; size_t n_rules;
	const char *result;	/* "ok", "denied", "refused", "conflict", "error", ... */
	const char *reason;	/* short machine reason, or NULL */
	const char *digest;	/* SHA-256 hex of the bytes disclosed or stored */
	const char *transfer;	/* transfer id, or NULL */
	/* Of a transfer received: the sender's X-Visor-Signature (base64, as
	 * verified) over the bytes whose SHA-256 is digest, so that an
	 * auditor can show who sent them (visorctl audit prove
	 * --sender-cert).  NULL otherwise. */
	const char *signature;
} audit_entry_t;

/* Append the leaf bytes for e with the given seq and time (RFC 3339 UTC with
 * milliseconds) and resolved version to out.  0 or -1. */
int audit_entry_encode(const audit_entry_t *e, uint64_t seq, const char *time,
    uint64_t version, buf_t *out);

/*
 * The same leaf in two steps, for a writer that sequences entries (the
 * store): encode_parts appends to head the members between time and version
 * (request_id .. record) and to tail the members after version through the
 * closing brace.  When the two would pass AUDIT_ENTRY_MAX_PARTS, "fields",
 * "withheld" and "transformed" are written as distinct schema paths ("intelligence[]"
 * for "intelligence[3]", "intelligence[7]", ...).  assemble then appends
 *   {"seq":<seq>,"time":<time> head [,"version":<version>] tail
 * (version omitted when AUDIT_VERSION_NONE), byte for byte what
 * audit_entry_encode gives.  Both 0 or -1 (buffers left as they were).
 */
int audit_entry_encode_parts(const audit_entry_t *e, buf_t *head, buf_t *tail);
int audit_entry_assemble(uint64_t seq, const char *time, const char *head,
    size_t head_len, uint64_t version, const char *tail, size_t tail_len,
    buf_t *out);

#endif
