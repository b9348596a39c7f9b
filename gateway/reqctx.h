/*
 * reqctx: what every record, transfer and audit route checks first (the
 * X-Visor-* headers of SPEC section 5, the caller's kind), the policy
 * request it implies, and the audit-then-answer step that makes an answer
 * wait for its audit entry to be durable.
 */
#ifndef GATEWAY_REQCTX_H
#define GATEWAY_REQCTX_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/audit_entry.h"
#include "gateway/request.h"
#include "policy/policy.h"
#include "util/buf.h"

#define REQCTX_ACTOR_MAX 128
#define REQCTX_JUSTIFICATION_MAX 512
#define REQCTX_IDEM_KEY_MAX 128

typedef struct {
	const char *actor;		/* X-Visor-Actor */
	const char *purpose;		/* X-Visor-Purpose */
	const char *justification;	/* X-Visor-Justification or NULL */
	char today[11];
	policy_request_t preq;		/* caller = the request's identity */
} reqctx_t;

/* Check the headers for a record or transfer call: actor and purpose always,
 * justification when need_justification.  The caller must be an agency.  On
 * failure the request has been answered (400/403, audited) and -1 returned. */
int reqctx_begin(gw_request_t *r, reqctx_t *c, policy_op_t op,
    int need_justification);

/* Fill the actor and request fields of an audit entry from r and c. */
void reqctx_audit_base(gw_request_t *r, const reqctx_t *c, audit_entry_t *e);

/* Append the entry to the log, then answer with status/body once it is
 * durable; 503 if it cannot be recorded.  Takes a copy of body. */
void reqctx_audit_then_reply(gw_request_t *r, const audit_entry_t *e,
    int status, const char *body, size_t len);

/* Answer an error after logging e (op usually "deny") with result/reason. */
void reqctx_audit_then_error(gw_request_t *r, const audit_entry_t *e,
    int status, const char *code, const char *message);

/* May c's caller read stored record rec at all, for c's purpose (SPEC 7:
 * a category 4 record without ct)?  A record it may read nothing of is
 * absent for it, on every route.  1 if not (*d: the refusal, for the
 * entry), 0 if it may (*d NULL), -1 once r is answered (503). */
int reqctx_unreadable(gw_request_t *r, const reqctx_t *c, const cJSON *rec,
    policy_decision_t **d);

/* Idempotency-Key (SPEC section 5, PUT, PATCH and POST): the key, and the
 * SHA-256 of the request it covers (method, path and body). */
typedef struct {
	char key[REQCTX_IDEM_KEY_MAX + 1];	/* "" when the request has none */
	uint8_t hash[32];
	int stale;	/* its first answer names a version since gone */
	int gone;	/* its record is one the caller may no longer read:
			   the request runs anew (reqctx_idem_replay) */
} reqctx_idem_t;

/* Read r's Idempotency-Key into k.  0 (key or none), or -1 once r has been
 * answered (400 for a bad key, 503). */
int reqctx_idem_begin(gw_request_t *r, reqctx_idem_t *k);

/* The key was used before by this identity: answer the first answer again
 * (header Idempotent-Replay: true), 409 if it covered another request, 503
 * if the store cannot be read.  1 when r has been answered, 0 when the key
 * is new or there is none.
 *
 * With c (may be NULL): a key whose record c's caller may no longer read
 * at all (or that is erased or absent) is not replayed; the request runs
 * as a new one (0), which finds no record (logged as
 * event=idempotency-record-gone; a PUT by a caller that may create the
 * record replays it then, routes_records.c).  An erasure deletes its record's keys,
 * so a retry after it runs anew: one replayed here would tell the caller
 * that the record it may not see lives on. */
int reqctx_idem_replay(gw_request_t *r, const reqctx_idem_t *k,
    const reqctx_t *c);

/* As reqctx_idem_replay (setting k->gone when it runs the request anew
 * for that reason), and for a PUT or PATCH of record id (not NULL) that
 * asks for it (X-Visor-Replay: if-current, as visorctl push does, whose
 * keys derive from the content): the first answer names the version it made, and is
 * replayed only until another write moves the record on.  After that,
 * saying "done" again would tell the client its content is in place when
 * it is not (pushing A, then B, then A again left B), so the request runs
 * as a new one (k->stale set: its job replaces the key's row, if the
 * writer still finds it stale; logged as event=idempotency-stale).  A
 * record c's caller may no longer read runs anew as reqctx_idem_replay
 * says. */
int reqctx_idem_replay_record(gw_request_t *r, reqctx_idem_t *k,
    const reqctx_t *c, const char *id);

/* The store found the key when it came to write (STORE_IDEM_EXISTS): a
 * request with the same key got there first, though it was not stored
 * when this one was checked.  Logged (event=idempotency-race), then
 * answered as reqctx_idem_replay would, or 409 if the first is gone. */
void reqctx_idem_raced(gw_request_t *r, const reqctx_idem_t *k);

/* Parse a stored record (trusted JSON from our store) and put its version
 * back in: the store keeps the version outside the sealed content.  A new
 * tree (caller frees with cJSON_Delete), or NULL if unreadable. */
cJSON *reqctx_parse_stored(const store_record_t *rec);

/* Today's date (UTC) as YYYY-MM-DD: 0, or -1 (logged, out "") if the
 * clock cannot be formatted; the caller then refuses, as a policy
 * refuses a request without a date. */
int reqctx_today(char out[11]);

/* The clearances the configuration grants uri. */
size_t reqctx_clearances(gw_request_t *r, const char *uri,
    const char *const **out);

#endif
