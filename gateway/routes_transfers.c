/*
 * Transfers (SPEC section 9): POST /v1/transfers queues a filtered record
 * for a peer in the durable outbox; GET /v1/transfers/{id} follows it;
 * POST /v1/peer/transfers receives one from a peer gateway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sha256.h"
#include "crypto/sig.h"
#include "gateway/gateway.h"
#include "gateway/gen.h"
#include "gateway/outbox.h"
#include "gateway/reqctx.h"
#include "gateway/routes.h"
#include "gateway/store.h"
#include "gateway/transfer_proto.h"
#include "policy/record_schema.h"
#include "util/json.h"
#include "util/log.h"
#include "util/rfc3339.h"

typedef struct {
	char transfer_id[TRANSFER_ID_LEN + 1];
	char from_area[40];
	char digest[65];
	char received_at[32];
	char record_id[80];
	reqctx_idem_t idem;	/* POST /v1/transfers */
} xfer_state_t;

static void
xfer_state_free(void *p)
{
	free(p);
}

/* ---------------------------------------------------- POST /v1/transfers */

static void
transfer_queued(gw_request_t *r, const store_result_t *res)
{
	xfer_state_t *st = gw_req_state(r);
	char body[128];
	int n;

	if (res->status == STORE_IDEM_EXISTS) {
		/* The same key raced this request in: its first answer. */
		reqctx_idem_raced(r, &st->idem);
		return;
	}
	if (res->status == STORE_FULL) {
		gw_reply_error(r, 429, "outbox-full",
		    "the outbox is full; try again later");
		return;
	}
	if (res->status == STORE_NOT_FOUND) {
		gw_reply_error(r, 404, "not-found",
		    "the record was erased; nothing was sent");
		return;
	}
	if (res->status != STORE_OK) {
		gw_reply_error(r, 503, "audit-unavailable",
		    "cannot queue the transfer durably; nothing was sent");
		return;
	}
	outbox_kick(gw_req_gateway(r)->outbox);
	/* The transfer id ties this request to the delivery lines (outbox)
	 * and to the receiving gateway's log. */
	log_event(LOG_INFO, "transfer-queued", "request_id", gw_req_id(r),
	    "transfer", st->transfer_id, NULL);
	n = snprintf(body, sizeof(body),
	    "{\"transfer_id\":\"%s\",\"status\":\"queued\"}", st->transfer_id);
	gw_reply(r, 202, NULL, body, (size_t)n);
}

/* Refuse a caller that may not start this transfer (status and code, 403
 * policy-denied, or the 404 of a missing record for one that may not read
 * the record), audited as a deny of record rid for the body's purpose and
 * justification (the decision was on those, not the headers'). */
static void
deny_initiator(gw_request_t *r, const reqctx_t *c, const char *rid,
    const char *purpose, const char *just, const policy_decision_t *d,
    int status, const char *code, const char *reason, const char *message)
{
	audit_entry_t e;

	reqctx_audit_base(r, c, &e);
	e.op = "deny";
	e.record = rid;
	e.result = "denied";
	e.reason = reason;
	e.purpose = purpose;
	e.justification = just;
	e.rules = policy_decision_rules(d, &e.n_rules);
	reqctx_audit_then_error(r, &e, status, code, message);
}

void
route_transfers_post(gw_request_t *r)
{
	gateway_t *gw = gw_req_gateway(r);
	struct gw_gen *gen = gw_req_gen(r);
	reqctx_t c;
	const char *body, *rid, *to, *purpose, *just;
	size_t len;
	char err[256], recipient[IDENTITY_URI_MAX], digest[65], ts[25];
	cJSON *in = NULL, *doc = NULL;
	store_record_t rec;
	policy_decision_t *d = NULL, *di = NULL, *dr = NULL;
	policy_request_t pr;
	identity_t rid_gw;
	transfer_body_t tb;
	buf_t payload = BUF_INIT;
	audit_entry_t e;
	store_job_t *job = NULL;
	xfer_state_t *st;
	reqctx_idem_t idem;
	char idem_body[128];
	int rc, n;

	memset(&rec, 0, sizeof(rec));
	/* SPEC section 5: X-Visor-Justification is required for transfers. */
	if (reqctx_begin(r, &c, POLICY_OP_INITIATE_TRANSFER, 1) < 0)
		return;
	/* A client that retries after a timeout must not send the record
	 * twice: with the same key it gets the first transfer's answer. */
	if (reqctx_idem_begin(r, &idem) < 0 || reqctx_idem_replay(r, &idem, &c))
		return;
	if (!routes_content_type_is(r, "application/json")) {
		gw_reply_error(r, 415, "unsupported-media-type",
		    "POST /v1/transfers takes application/json");
		return;
	}
	body = gw_req_body(r, &len);
	if ((in = json_parse_strict(body, len, 4, err, sizeof(err))) == NULL ||
	    !cJSON_IsObject(in)) {
		gw_reply_error(r, 400, "malformed-json", "%s", in ? "body must be an object" : err);
		goto out;
	}
	rid = json_get_str(in, "record_id");
	to = json_get_str(in, "to_area");
	purpose = json_get_str(in, "purpose");
	just = json_get_str(in, "justification");
	if (rid == NULL || to == NULL || purpose == NULL || just == NULL ||
	    cJSON_GetArraySize(in) != 4) {
		gw_reply_error(r, 400, "bad-transfer",
		    "body must be {\"record_id\",\"to_area\",\"purpose\",\"justification\"}");
		goto out;
	}
	if (!routes_valid_id(rid, strlen(rid), 0)) {
		gw_reply_error(r, 400, "bad-id", "record_id must match [A-Z0-9-]{3,64}");
		goto out;
	}
	if (!policy_purpose_valid(purpose) || strlen(just) == 0 || strlen(just) > 512 ||
	    strchr(just, '\n') != NULL) {
		gw_reply_error(r, 400, "bad-transfer",
		    "purpose must be a SPEC purpose and justification 1-512 bytes on one line");
		goto out;
	}
	/* The policy decides on one purpose: the declared one. */
	if (strcmp(purpose, c.purpose) != 0) {
		gw_reply_error(r, 400, "purpose-mismatch",
		    "the body's purpose must be the X-Visor-Purpose header's");
		goto out;
	}
	/* The same for the reason (DPA 2018 s.62): the entries and the
	 * receiving area get the body's, so it must be the one declared. */
	if (strcmp(just, c.justification) != 0) {
		gw_reply_error(r, 400, "justification-mismatch",
		    "the body's justification must be the X-Visor-Justification header's");
		goto out;
	}
	/* An area name first: the error below echoes it, and a long one
	 * escaped into the answer could outgrow the error body. */
	if (!identity_valid_label(to, strlen(to))) {
		gw_reply_error(r, 400, "bad-transfer",
		    "to_area must be an area name ([a-z0-9-]{1,32})");
		goto out;
	}
	if (config_peer(gen->cfg, to) == NULL) {
		gw_reply_error(r, 400, "unknown-peer", "no configured peer gateway for area %s", to);
		goto out;
	}
	rc = store_record_get(gw_req_reader(r), rid, &rec);
	if (rc < 0) {
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
		goto out;
	}
	if (rc == 1 || rec.erased) {
		gw_reply_error(r, 404, "not-found", "no such record");
		goto out;
	}
	if ((doc = reqctx_parse_stored(&rec)) == NULL) {
		gw_reply_error(r, 503, "store-unavailable", "stored record unreadable");
		goto out;
	}
	/* May the caller read the record?  Sending a record elsewhere is a
	 * use of it: probation, which may start transfers but holds no ct,
	 * could send a category 4 record it may not see (SPEC 7: visible
	 * only to ct holders), and learn from the peer's refusal what it
	 * holds.  Asked first, so that such a caller learns nothing from the
	 * initiate rules' refusal either (it names its rule), and answered as
	 * a missing record is: a 403 would tell it the record exists, and
	 * that it is one it may not see (routes_records.c, hide_record). */
	c.preq.purpose = purpose;
	switch (reqctx_unreadable(r, &c, doc, &dr)) {
	case -1:
		goto out;
	case 1:
		deny_initiator(r, &c, rid, purpose, just, dr, 404, "not-found",
		    "initiate-transfer-unreadable", "no such record");
		goto out;
	}
	/* May this agency start a transfer of this record? */
	if (policy_check_initiate_transfer(gen->policy, &c.preq, doc, &di) < 0) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		goto out;
	}
	if (!policy_decision_allowed(di)) {
		deny_initiator(r, &c, rid, purpose, just, di, 403,
		    "policy-denied", "initiate-transfer-denied",
		    policy_decision_reason(di));
		goto out;
	}
	/* What may the receiving gateway get? */
	snprintf(recipient, sizeof(recipient), "urn:visor:%s:gateway", to);
	if (identity_parse(recipient, strlen(recipient), &rid_gw, err, sizeof(err)) < 0) {
		gw_reply_error(r, 400, "unknown-peer", "bad peer area");
		goto out;
	}
	memset(&pr, 0, sizeof(pr));
	pr.op = POLICY_OP_TRANSFER;
	pr.caller = &rid_gw;
	pr.n_clearances = reqctx_clearances(r, recipient, &pr.clearances);
	pr.purpose = purpose;
	pr.local_area = gw->cfg->area;
	pr.today = c.today;
	if (policy_filter(gen->policy, &pr, doc, &d) < 0) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		goto out;
	}
	reqctx_audit_base(r, &c, &e);
	e.record = rid;
	e.version = rec.version;
	e.purpose = purpose;
	e.justification = just;
	e.recipient = recipient;
	e.fields = policy_decision_disclosed(d, &e.n_fields);
	e.withheld = policy_decision_withheld(d, &e.n_withheld);
	e.transformed = policy_decision_transformed(d, &e.n_transformed);
	e.rules = policy_decision_rules(d, &e.n_rules);
	if (!policy_decision_allowed(d)) {
		e.op = "deny";
		e.result = "denied";
		e.reason = "transfer-denied";
		reqctx_audit_then_error(r, &e, 403, "policy-denied",
		    policy_decision_reason(d));
		goto out;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		goto out;
	}
	gw_req_set_state(r, st, xfer_state_free);
	st->idem = idem;
	memset(&tb, 0, sizeof(tb));
	if (transfer_new_id(st->transfer_id) < 0) {
		gw_reply_error(r, 503, "unavailable", "no randomness");
		goto out;
	}
	log_time_rfc3339(ts);
	snprintf(tb.transfer_id, sizeof(tb.transfer_id), "%s", st->transfer_id);
	snprintf(tb.from_area, sizeof(tb.from_area), "%s", gw->cfg->area);
	snprintf(tb.to_area, sizeof(tb.to_area), "%s", to);
	snprintf(tb.purpose, sizeof(tb.purpose), "%s", purpose);
	snprintf(tb.justification, sizeof(tb.justification), "%s", just);
	snprintf(tb.sent_at, sizeof(tb.sent_at), "%s", ts);
	if (transfer_body_build(&tb, policy_decision_record(d), &payload) < 0) {
		gw_reply_error(r, 503, "unavailable", "cannot build the transfer");
		goto out;
	}
	/* The digest of the exact bytes that will be sent (and retried). */
	sha256_hex(payload.data, payload.len, digest);
	e.op = "transfer-out";
	e.result = "queued";
	e.digest = digest;
	e.transfer = st->transfer_id;
	n = snprintf(idem_body, sizeof(idem_body),
	    "{\"transfer_id\":\"%s\",\"status\":\"queued\"}", st->transfer_id);
	if ((job = store_job_new()) == NULL ||
	    (idem.key[0] != '\0' && store_job_idempotency(job,
	    gw_req_identity(r)->uri, idem.key, idem.hash, 202, idem_body,
	    (size_t)n, 0) < 0) ||
	    store_job_outbox_add(job, st->transfer_id, rid, to, purpose,
	    gw_req_identity(r)->uri, payload.data, payload.len,
	    gw_now_ms() + (long long)gen->cfg->transfer_deadline_s * 1000) < 0 ||
	    store_job_audit(job, &e) < 0) {
		store_job_free(job);
		gw_reply_error(r, 503, "unavailable", "cannot queue the transfer");
		goto out;
	}
	gw_submit(r, job, transfer_queued);
out:
	buf_free(&payload);
	policy_decision_free(d);
	policy_decision_free(di);
	policy_decision_free(dr);
	cJSON_Delete(doc);
	cJSON_Delete(in);
	buf_free(&rec.json);
}

/* ------------------------------------------------ GET /v1/transfers/{id} */

/*
 * May the caller follow transfer t?  Its status names the record and the
 * area the person went to, so it is for those who may read the record,
 * for the request's purpose, as it is now: a record the caller may not
 * read is absent for it (routes_records.c, hide_record), and so are its
 * transfers.  An erased record's transfers are for their initiator only,
 * who named the record and the area itself.  0 yes, 1 no (*d: the read's
 * refusal, for the entry, or NULL), -1 once r is answered (503).
 */
static int
transfer_unreadable(gw_request_t *r, const reqctx_t *c,
    const store_transfer_t *t, policy_decision_t **d)
{
	store_record_t rec;
	cJSON *doc = NULL;
	int rc, ret = -1;

	*d = NULL;
	memset(&rec, 0, sizeof(rec));
	rc = store_record_get(gw_req_reader(r), t->record_id, &rec);
	if (rc < 0) {
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
		goto out;
	}
	if (rc == 1 || rec.erased) {
		ret = strcmp(gw_req_identity(r)->uri, t->initiator) != 0;
		goto out;
	}
	if ((doc = reqctx_parse_stored(&rec)) == NULL) {
		gw_reply_error(r, 503, "store-unavailable", "stored record unreadable");
		goto out;
	}
	ret = reqctx_unreadable(r, c, doc, d);
out:
	cJSON_Delete(doc);
	buf_free(&rec.json);
	return ret;
}

void
route_transfer_get(gw_request_t *r, const char *id)
{
	const identity_t *me = gw_req_identity(r);
	store_transfer_t t;
	policy_decision_t *d = NULL;
	audit_entry_t e;
	reqctx_t c;
	cJSON *o = NULL, *w;
	char *s = NULL, err[128];
	int rc;

	memset(&t, 0, sizeof(t));
	/* A transfer call (SPEC section 5): the actor and the purpose are
	 * required, and go into the consult entry below.  The op is only
	 * for the policy request, which a status read does not make. */
	if (reqctx_begin(r, &c, POLICY_OP_READ, 0) < 0)
		return;
	/* SPEC 5: the initiating area's agencies (not its auditors, nor a
	 * gateway). */
	if (me->kind != IDENTITY_AGENCY ||
	    strcmp(me->area, gw_req_gateway(r)->cfg->area) != 0) {
		gw_reply_error(r, 403, "forbidden",
		    "transfers are visible to the initiating area's agencies");
		return;
	}
	rc = store_transfer_get(gw_req_reader(r), id, &t);
	if (rc < 0) {
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
		goto out;
	}
	if (rc == 1) {
		gw_reply_error(r, 404, "not-found", "no such transfer");
		goto out;
	}
	/* Answered as an unknown id is, and the truth kept in the log. */
	switch (transfer_unreadable(r, &c, &t, &d)) {
	case -1:
		goto out;
	case 1:
		reqctx_audit_base(r, &c, &e);
		e.op = "deny";
		e.record = t.record_id;
		e.transfer = t.transfer_id;
		e.result = "denied";
		e.reason = "transfer-unreadable";
		if (d != NULL)
			e.rules = policy_decision_rules(d, &e.n_rules);
		reqctx_audit_then_error(r, &e, 404, "not-found", "no such transfer");
		goto out;
	}
	if ((o = cJSON_CreateObject()) == NULL)
		goto oom;
	cJSON_AddStringToObject(o, "transfer_id", t.transfer_id);
	cJSON_AddStringToObject(o, "record_id", t.record_id);
	cJSON_AddStringToObject(o, "to_area", t.to_area);
	cJSON_AddStringToObject(o, "status", t.status);
	cJSON_AddNumberToObject(o, "attempts", t.attempts);
	/* Delivered: the receipt wrapper.  Rejected: the outbox keeps the
	 * receiver's error answer instead, shown as "error" (it is no
	 * receipt). */
	w = NULL;
	if (t.receipt.len > 0)
		w = json_parse_strict(t.receipt.data, t.receipt.len, 8, err,
		    sizeof(err));
	if (w != NULL && strcmp(t.status, "delivered") != 0) {
		cJSON *pe = cJSON_DetachItemFromObjectCaseSensitive(w, "error");

		cJSON_Delete(w);
		w = NULL;
		if (pe != NULL)
			cJSON_AddItemToObject(o, "error", pe);
	}
	if (w != NULL)
		cJSON_AddItemToObject(o, "receipt", w);
	else
		cJSON_AddNullToObject(o, "receipt");
	if ((s = cJSON_PrintUnformatted(o)) == NULL)
		goto oom;
	/* Who followed which transfer is itself a consultation. */
	{
		static const char *const fields[] = { "transfer-status" };

		reqctx_audit_base(r, &c, &e);
		e.op = "consult";
		e.record = t.record_id;
		e.transfer = t.transfer_id;
		e.fields = fields;
		e.n_fields = 1;
		e.result = "ok";
		reqctx_audit_then_reply(r, &e, 200, s, strlen(s));
	}
	goto out;
oom:
	gw_reply_error(r, 503, "unavailable", "out of memory");
out:
	policy_decision_free(d);
	free(s);
	cJSON_Delete(o);
	buf_free(&t.payload);
	buf_free(&t.receipt);
}

/* ------------------------------------------- POST /v1/peer/transfers */

static void
reply_receipt(gw_request_t *r, xfer_state_t *st, uint64_t audit_index);

static void
receipt_stored(gw_request_t *r, const store_result_t *res)
{
	xfer_state_t *st = gw_req_state(r);
	char digest[65], received_at[32];
	uint64_t idx;
	buf_t receipt = BUF_INIT;

	/* STORE_NOT_FOUND: a racing delivery of the same transfer stored its
	 * receipt first (the store keeps the first one); answer with that. */
	if (res->status != STORE_OK && res->status != STORE_NOT_FOUND) {
		gw_reply_error(r, 503, "unavailable", "cannot store the receipt");
		return;
	}
	/* Answer with the receipt as stored, so a repeat gets the same bytes. */
	if (store_inbound_get(gw_req_reader(r), st->from_area, st->transfer_id,
	    digest, received_at, &idx, &receipt) != 0 || receipt.len == 0) {
		buf_free(&receipt);
		gw_reply_error(r, 503, "unavailable", "receipt not readable");
		return;
	}
	log_event(LOG_INFO, "transfer-received", "request_id", gw_req_id(r),
	    "transfer", st->transfer_id, "from", st->from_area, NULL);
	gw_reply(r, 200, NULL, receipt.data, receipt.len);
	buf_free(&receipt);
}

static void
reply_receipt(gw_request_t *r, xfer_state_t *st, uint64_t audit_index)
{
	struct gw_gen *gen = gw_req_gen(r);
	char receiver[IDENTITY_URI_MAX];
	buf_t w = BUF_INIT;
	store_job_t *job;

	snprintf(receiver, sizeof(receiver), "urn:visor:%s:gateway",
	    gw_req_gateway(r)->cfg->area);
	if (transfer_receipt_build(st->transfer_id, st->digest, st->received_at,
	    receiver, audit_index, gen->sign_key, gen->cert_pem, &w) < 0) {
		buf_free(&w);
		gw_reply_error(r, 503, "unavailable", "cannot sign the receipt");
		return;
	}
	if ((job = store_job_new()) == NULL ||
	    store_job_inbound_receipt(job, st->from_area, st->transfer_id, w.data,
	    w.len) < 0) {
		store_job_free(job);
		buf_free(&w);
		gw_reply_error(r, 503, "unavailable", "cannot store the receipt");
		return;
	}
	buf_free(&w);
	gw_submit(r, job, receipt_stored);
}

static int answer_repeat(gw_request_t *r, xfer_state_t *st, audit_entry_t *e);

/*
 * A record this area manages may be replaced by a peer's transfer only if
 * its current version came from that same peer (an update of what it sent,
 * untouched here since), or if this gateway once delivered the record to
 * that peer (the person is moving back).  1 yes, 0 no, -1 error.
 */
static int
peer_may_replace(gw_request_t *r, const char *record_id, const identity_t *peer)
{
	buf_t hist = BUF_INIT;
	cJSON *h = NULL;
	const cJSON *last;
	const char *actor;
	char err[128];
	int rc;

	if ((rc = store_record_sent_to(gw_req_reader(r), record_id,
	    peer->area)) != 0)
		return rc;
	if (store_record_history_page(gw_req_reader(r), record_id, 0, 1,
	    &hist) != 0 ||
	    (h = json_parse_strict(hist.data, hist.len, 8, err, sizeof(err))) == NULL ||
	    !cJSON_IsArray(h)) {
		buf_free(&hist);
		cJSON_Delete(h);
		return -1;
	}
	last = cJSON_GetArrayItem(h, cJSON_GetArraySize(h) - 1);
	actor = last ? json_get_str(last, "actor") : NULL;
	rc = actor != NULL && strcmp(actor, peer->uri) == 0;
	cJSON_Delete(h);
	buf_free(&hist);
	return rc;
}

static void
transfer_stored(gw_request_t *r, const store_result_t *res)
{
	xfer_state_t *st = gw_req_state(r);

	/* Two deliveries of one transfer raced (the sender timed out and
	 * retried while we were storing): the inbound key refused the second
	 * job whole, so nothing was stored twice.  Answer as a repeat. */
	if (res->status == STORE_EXISTS) {
		if (!answer_repeat(r, st, NULL))
			gw_reply_error(r, 503, "unavailable",
			    "transfer state not readable; retry later");
		return;
	}
	if (res->status != STORE_OK) {
		gw_reply_error(r, 503, "audit-unavailable",
		    "cannot store the transfer durably; retry later");
		return;
	}
	reply_receipt(r, st, res->audit_index);
}

/* A transfer we already hold: answer with its receipt, signing it first if
 * a crash came between storing and signing.  The same id with other bytes
 * is refused, with e (the request's entry so far; NULL: none, after a
 * store race) as its deny entry. */
static int
answer_repeat(gw_request_t *r, xfer_state_t *st, audit_entry_t *e)
{
	char digest[65], received_at[32];
	uint64_t idx;
	buf_t receipt = BUF_INIT;
	int rc;

	rc = store_inbound_get(gw_req_reader(r), st->from_area, st->transfer_id,
	    digest, received_at, &idx, &receipt);
	if (rc < 0) {
		buf_free(&receipt);
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
		return 1;
	}
	if (rc == 1) {
		buf_free(&receipt);
		return 0;
	}
	/* The same transfer id with other bytes is not a repeat: refuse it
	 * rather than hand out a receipt for content we never received. */
	if (CRYPTO_memcmp(digest, st->digest, 64) != 0 && e == NULL) {
		gw_reply_error(r, 409, "transfer-id-reused",
		    "this transfer was already received with different content");
	} else if (CRYPTO_memcmp(digest, st->digest, 64) != 0) {
		/* The entry names the transfer and the bytes refused. */
		e->op = "deny";
		e->result = "rejected";
		e->reason = "transfer-id-reused";
		e->transfer = st->transfer_id;
		e->digest = st->digest;
		reqctx_audit_then_error(r, e, 409, "transfer-id-reused",
		    "this transfer was already received with different content");
	} else if (receipt.len > 0)
		gw_reply(r, 200, NULL, receipt.data, receipt.len);
	else {
		snprintf(st->digest, sizeof(st->digest), "%s", digest);
		snprintf(st->received_at, sizeof(st->received_at), "%s", received_at);
		reply_receipt(r, st, idx);
	}
	buf_free(&receipt);
	return 1;
}

void
route_peer_transfers(gw_request_t *r)
{
	gateway_t *gw = gw_req_gateway(r);
	struct gw_gen *gen = gw_req_gen(r);
	const identity_t *peer = gw_req_identity(r);
	const char *body, *sig;
	size_t len;
	char err[256], ts[25];
	transfer_body_t tb;
	xfer_state_t *st;
	policy_request_t pr;
	policy_decision_t *d = NULL;
	record_paths_t *paths = NULL;
	audit_entry_t e;
	store_job_t *job = NULL;
	cJSON *rec = NULL;
	const cJSON *cat, *lvl;
	char *text = NULL;
	char today[11];
	buf_t plist = BUF_INIT;
	store_record_t local;
	uint64_t expect;
	long long sent_ms;
	size_t i;
	int rc;

	memset(&tb, 0, sizeof(tb));
	memset(&local, 0, sizeof(local));
	memset(&e, 0, sizeof(e));
	reqctx_audit_base(r, NULL, &e);
	if (peer->kind != IDENTITY_GATEWAY || config_peer(gen->cfg, peer->area) == NULL) {
		e.op = "deny";
		e.result = "denied";
		e.reason = "not-a-peer-gateway";
		reqctx_audit_then_error(r, &e, 403, "forbidden",
		    "only configured peer gateways may deliver transfers");
		return;
	}
	if (!routes_content_type_is(r, "application/json")) {
		gw_reply_error(r, 415, "unsupported-media-type",
		    "POST /v1/peer/transfers takes application/json");
		return;
	}
	body = gw_req_body(r, &len);
	sig = gw_req_header(r, "X-Visor-Signature");
	if (sig == NULL || sig_verify_cert(gw_req_peer_cert(r), body, len, sig,
	    strlen(sig)) < 0) {
		e.op = "deny";
		e.result = "denied";
		e.reason = "bad-signature";
		reqctx_audit_then_error(r, &e, 403, "bad-signature",
		    "X-Visor-Signature is missing or does not verify with the peer's certificate");
		return;
	}
	if (transfer_body_parse(body, len, gw->cfg->max_json_depth, &tb, err,
	    sizeof(err)) < 0) {
		gw_reply_error(r, 400, "bad-transfer", "%s", err);
		return;
	}
	if (strcmp(tb.from_area, peer->area) != 0 ||
	    strcmp(tb.to_area, gw->cfg->area) != 0) {
		e.op = "deny";
		e.result = "denied";
		e.reason = "wrong-area";
		e.transfer = tb.transfer_id;
		reqctx_audit_then_error(r, &e, 403, "wrong-area",
		    "from_area must be the sending gateway's area and to_area ours");
		goto out;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		goto out;
	}
	gw_req_set_state(r, st, xfer_state_free);
	/* transfer_body_parse checked: 32 hex digits, area labels <= 32. */
	memcpy(st->transfer_id, tb.transfer_id, TRANSFER_ID_LEN + 1);
	memcpy(st->from_area, tb.from_area, strlen(tb.from_area) + 1);
	/* Before any check, so a refusal can be followed by the transfer id
	 * too (the request line and the error carry this request_id). */
	log_event(LOG_INFO, "transfer-in", "request_id", gw_req_id(r),
	    "transfer", st->transfer_id, "from", st->from_area, NULL);
	sha256_hex(body, len, st->digest);
	/* Every entry from here names the bytes by their digest, and keeps
	 * the signature over them that was verified above: the evidence of
	 * who sent them, for anyone holding the sender's certificate. */
	e.signature = sig;
	if (answer_repeat(r, st, &e))
		goto out;
	e.purpose = tb.purpose;
	e.justification = tb.justification;
	e.transfer = tb.transfer_id;
	e.digest = st->digest;
	e.recipient = NULL;
	/* sent_at (transfer_proto.h): a time, not ahead of ours by more
	 * than the skew.  Its age is not checked: a transfer held up by an
	 * outage is still due, and a replay gets the first receipt above. */
	if (rfc3339_epoch_ms(tb.sent_at, &sent_ms) < 0) {
		e.op = "deny";
		e.result = "rejected";
		e.reason = "bad-sent-at";
		reqctx_audit_then_error(r, &e, 400, "bad-sent-at",
		    "sent_at must be an RFC 3339 date-time, "
		    "YYYY-MM-DDTHH:MM:SS[.fff]Z or with an offset (+HH:MM)");
		goto out;
	}
	if (sent_ms > gw_now_ms() + TRANSFER_SENT_AT_SKEW_S * 1000LL) {
		e.op = "deny";
		e.result = "rejected";
		e.reason = "sent-at-ahead";
		snprintf(err, sizeof(err), "sent_at is more than %d s ahead of "
		    "this gateway's clock: one of the two clocks is wrong; "
		    "retry later", TRANSFER_SENT_AT_SKEW_S);
		/* 503, not a 4xx: SPEC 9 makes every 4xx final, and a
		 * sender of the previous version (or of another make) would
		 * lose the transfer to a clock that is wrong for a while;
		 * every sender retries a 5xx. */
		reqctx_audit_then_error(r, &e, 503, "sent-at-ahead", err);
		goto out;
	}
	if (!policy_purpose_valid(tb.purpose)) {
		e.op = "deny";
		e.result = "rejected";
		e.reason = "bad-purpose";
		e.purpose = NULL;
		reqctx_audit_then_error(r, &e, 422, "bad-purpose", "unknown purpose");
		goto out;
	}
	if (record_validate(tb.record, err, sizeof(err)) < 0) {
		e.op = "deny";
		e.result = "rejected";
		e.reason = "schema";
		reqctx_audit_then_error(r, &e, 422, "schema", err);
		goto out;
	}
	snprintf(st->record_id, sizeof(st->record_id), "%s",
	    json_get_str(tb.record, "id"));
	e.record = st->record_id;
	if (reqctx_today(today) < 0) {
		gw_reply_error(r, 503, "clock-error",
		    "the gateway cannot read today's date");
		goto out;
	}
	memset(&pr, 0, sizeof(pr));
	pr.op = POLICY_OP_INGRESS;
	pr.caller = peer;
	pr.n_clearances = reqctx_clearances(r, peer->uri, &pr.clearances);
	pr.purpose = tb.purpose;
	pr.local_area = gw->cfg->area;
	pr.today = today;
	if (policy_filter(gen->policy, &pr, tb.record, &d) < 0) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		goto out;
	}
	e.fields = policy_decision_disclosed(d, &e.n_fields);
	e.withheld = policy_decision_withheld(d, &e.n_withheld);
	e.transformed = policy_decision_transformed(d, &e.n_transformed);
	e.rules = policy_decision_rules(d, &e.n_rules);
	if (!policy_decision_allowed(d)) {
		/* Rejected whole, naming what we may not accept. */
		buf_puts(&plist, "the record carries fields this gateway may not accept from ");
		buf_puts(&plist, peer->uri);
		buf_puts(&plist, ":");
		for (i = 0; i < e.n_withheld; i++)
			buf_printf(&plist, " %s", e.withheld[i]);
		e.op = "deny";
		e.result = "rejected";
		e.reason = "ingress-policy";
		reqctx_audit_then_error(r, &e, 403, "ingress-denied", plist.data);
		goto out;
	}
	/* A peer may not overwrite a record this area manages, unless we sent
	 * that record to this peer before (the person is moving back). */
	memset(&local, 0, sizeof(local));
	rc = store_record_get(gw_req_reader(r), st->record_id, &local);
	if (rc < 0) {
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
		goto out;
	}
	expect = STORE_VERSION_ABSENT;
	if (rc == 0 && !local.erased) {
		cJSON *ldoc;

		/* The managing area as sealed, not as the clear column says
		 * (reqctx_parse_stored refuses a record where they differ). */
		if ((ldoc = reqctx_parse_stored(&local)) == NULL) {
			gw_reply_error(r, 503, "store-unavailable",
			    "stored record unreadable");
			goto out;
		}
		cJSON_Delete(ldoc);
		expect = local.version;
		if (strcmp(local.managing_area, gw->cfg->area) == 0 &&
		    (rc = peer_may_replace(r, st->record_id, peer)) != 1) {
			if (rc < 0) {
				gw_reply_error(r, 503, "store-unavailable",
				    "cannot read the store");
				goto out;
			}
			e.op = "deny";
			e.result = "rejected";
			e.reason = "record-managed-here";
			reqctx_audit_then_error(r, &e, 409, "record-managed-here",
			    "this area manages that record: it was not sent here by "
			    "that peer, or has changed here since");
			goto out;
		}
		/* Held here but managed by a third area: only that area may
		 * replace it, not any peer. */
		if (strcmp(local.managing_area, gw->cfg->area) != 0 &&
		    strcmp(local.managing_area, peer->area) != 0) {
			e.op = "deny";
			e.result = "rejected";
			e.reason = "record-managed-elsewhere";
			reqctx_audit_then_error(r, &e, 409,
			    "record-managed-elsewhere", "another area manages "
			    "that record: only it may send it here");
			goto out;
		}
	}
	/* The person now lives here: this area manages the record. */
	rec = cJSON_Duplicate(tb.record, 1);
	if (rec == NULL)
		goto oom;
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "version");
	if (strcmp(tb.purpose, "offender-move") == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(rec, "managing_area");
		cJSON_AddStringToObject(rec, "managing_area", gw->cfg->area);
	}
	if ((text = cJSON_PrintUnformatted(rec)) == NULL ||
	    (paths = record_changed_paths(NULL, rec)) == NULL)
		goto oom;
	buf_reset(&plist);
	if (json_append_string_array(&plist, paths->items, paths->count) < 0)
		goto oom;
	log_time_rfc3339(ts);
	snprintf(st->received_at, sizeof(st->received_at), "%s", ts);
	cat = cJSON_GetObjectItemCaseSensitive(rec, "category");
	lvl = cJSON_GetObjectItemCaseSensitive(rec, "level");
	e.op = "transfer-in";
	e.result = "ok";
	e.version = AUDIT_VERSION_ASSIGNED;
	e.reason = NULL;
	/* The inbound row first: a second delivery of this transfer racing
	 * the first is then refused by its key (STORE_EXISTS, answered as a
	 * repeat) before its record write could fail on the version the
	 * first one just took (STORE_CONFLICT, a 503). */
	if ((job = store_job_new()) == NULL ||
	    store_job_inbound_add(job, st->from_area, st->transfer_id, st->digest,
	    st->received_at) < 0 ||
	    store_job_put_record(job, st->record_id, expect,
	    cat->valueint, lvl->valueint, json_get_str(rec, "managing_area"),
	    text, strlen(text), peer->uri, plist.data) < 0 ||
	    store_job_audit(job, &e) < 0)
		goto oom;
	gw_submit(r, job, transfer_stored);
	job = NULL;
	goto out;
oom:
	store_job_free(job);
	gw_reply_error(r, 503, "unavailable", "cannot store the transfer");
out:
	if (text != NULL) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	buf_free(&plist);
	record_paths_free(paths);
	policy_decision_free(d);
	cJSON_Delete(rec);
	buf_free(&local.json);
	transfer_body_free(&tb);
}
