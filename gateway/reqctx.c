#include "gateway/reqctx.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/sha256.h"
#include "gateway/gateway.h"
#include "gateway/gen.h"
#include "gateway/metrics.h"
#include "gateway/store.h"
#include "util/json.h"
#include "util/log.h"

typedef struct {
	int status;
	char *body;
	size_t len;
	char code[48];
	char message[256];
	int is_error;
} pending_t;

static void
pending_free(void *p)
{
	pending_t *pd = p;

	if (pd == NULL)
		return;
	if (pd->body != NULL) {
		explicit_bzero(pd->body, pd->len);
		free(pd->body);
	}
	free(pd);
}

cJSON *
reqctx_parse_stored(const store_record_t *rec)
{
	const char *area;
	cJSON *j;

	/* Not the strict reader: these bytes passed it (and the schema) on
	 * their way in, and AES-GCM authenticated them on the way out of the
	 * store, so its checks would only repeat themselves on every read. */
	j = cJSON_ParseWithLength(rec->json.data, rec->json.len);
	if (j == NULL || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	/* The managing area decides who owns a record and whether a peer may
	 * replace it, and the store also keeps it in a clear column (for its
	 * queries) that anyone with the file could edit without the key: the
	 * sealed one must agree, or the record is not served. */
	area = json_get_str(j, "managing_area");
	if (area == NULL || strcmp(area, rec->managing_area) != 0) {
		log_event(LOG_ERROR, "store-mismatch", "record",
		    json_get_str(j, "id") ? json_get_str(j, "id") : "?",
		    "column", "managing_area", NULL);
		cJSON_Delete(j);
		return NULL;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(j, "version");
	if (cJSON_AddNumberToObject(j, "version", (double)rec->version) == NULL) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

int
reqctx_today(char out[11])
{
	time_t now = time(NULL);
	struct tm tm;

	/* No stand-in date: any date opens something (an early one every
	 * valid_until grant, a late one what every valid_until forbid
	 * refused). */
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(out, 11, "%Y-%m-%d", &tm) != 10) {
		out[0] = '\0';
		log_event(LOG_ERROR, "clock-unreadable", "error",
		    "cannot format today's date (UTC)", NULL);
		return -1;
	}
	return 0;
}

size_t
reqctx_clearances(gw_request_t *r, const char *uri, const char *const **out)
{
	struct gw_gen *g = gw_req_gen(r);

	return config_clearances_for(g->cfg, uri, out);
}

/* Printable ASCII without controls: staff numbers. */
static int
header_printable(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* Free text: valid UTF-8 without control characters. */
static int
header_text(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max ||
	    !json_utf8_valid((const unsigned char *)s, n))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return 0;
	return 1;
}

void
reqctx_audit_base(gw_request_t *r, const reqctx_t *c, audit_entry_t *e)
{
	memset(e, 0, sizeof(*e));
	e->request_id = gw_req_id(r);
	e->actor_id = gw_req_identity(r)->uri;
	e->actor_cert = gw_req_cert_hash(r);
	e->actor_person = c ? c->actor : NULL;
	e->purpose = c ? c->purpose : NULL;
	e->justification = c ? c->justification : NULL;
	e->policy = gw_req_gen(r)->policy_hash;
}

int
reqctx_begin(gw_request_t *r, reqctx_t *c, policy_op_t op,
    int need_justification)
{
	const identity_t *id = gw_req_identity(r);
	audit_entry_t e;

	memset(c, 0, sizeof(*c));
	c->actor = gw_req_header(r, "X-Visor-Actor");
	c->purpose = gw_req_header(r, "X-Visor-Purpose");
	c->justification = gw_req_header(r, "X-Visor-Justification");
	if (reqctx_today(c->today) < 0) {
		gw_reply_error(r, 503, "clock-error",
		    "the gateway cannot read today's date");
		return -1;
	}
	if (id->kind != IDENTITY_AGENCY) {
		reqctx_audit_base(r, NULL, &e);
		e.op = "deny";
		/* So that a search by record finds the refusal too. */
		e.record = gw_req_audit_record(r);
		e.result = "denied";
		e.reason = "not-an-agency";
		reqctx_audit_then_error(r, &e, 403, "forbidden",
		    "only agency identities may use this endpoint");
		return -1;
	}
	if (c->actor == NULL || !header_printable(c->actor, REQCTX_ACTOR_MAX)) {
		gw_reply_error(r, 400, "bad-actor",
		    "X-Visor-Actor is required: printable ASCII, at most %d bytes",
		    REQCTX_ACTOR_MAX);
		return -1;
	}
	if (c->purpose == NULL || !policy_purpose_valid(c->purpose)) {
		gw_reply_error(r, 400, "bad-purpose",
		    "X-Visor-Purpose is required and must be one of the purposes of SPEC section 5");
		return -1;
	}
	if (c->justification != NULL &&
	    !header_text(c->justification, REQCTX_JUSTIFICATION_MAX)) {
		gw_reply_error(r, 400, "bad-justification",
		    "X-Visor-Justification must be UTF-8 text of at most %d bytes",
		    REQCTX_JUSTIFICATION_MAX);
		return -1;
	}
	if (need_justification && c->justification == NULL) {
		gw_reply_error(r, 400, "justification-required",
		    "X-Visor-Justification is required for reads and transfers");
		return -1;
	}
	c->preq.op = op;
	c->preq.caller = id;
	c->preq.n_clearances = reqctx_clearances(r, id->uri, &c->preq.clearances);
	c->preq.purpose = c->purpose;
	c->preq.local_area = gw_req_gateway(r)->cfg->area;
	c->preq.today = c->today;
	/* The gateway logs paths and rule ids; it never shows the prose. */
	c->preq.no_explanation = 1;
	return 0;
}

static void
audit_reply_cont(gw_request_t *r, const store_result_t *res)
{
	pending_t *pd = gw_req_state(r);

	if (res->status != STORE_OK) {
		gw_reply_error(r, 503, "audit-unavailable",
		    "the audit log cannot record this request; nothing was served or changed");
		return;
	}
	if (pd->is_error)
		gw_reply_error(r, pd->status, pd->code, "%s", pd->message);
	else
		gw_reply(r, pd->status, NULL, pd->body, pd->len);
}

static void
submit_pending(gw_request_t *r, const audit_entry_t *e, pending_t *pd)
{
	store_job_t *job;
	int ok;

	gw_req_mark_audited(r);
	/* Copy the entry into the job before the request's state is
	 * replaced: e may point into the state the route set (the transfer
	 * routes' record id and digest), which gw_req_set_state frees. */
	ok = (job = store_job_new()) != NULL && store_job_audit(job, e) == 0;
	gw_req_set_state(r, pd, pending_free);
	if (!ok) {
		store_job_free(job);
		gw_reply_error(r, 503, "audit-unavailable",
		    "the audit log cannot record this request");
		return;
	}
	gw_submit(r, job, audit_reply_cont);
}

void
reqctx_audit_then_reply(gw_request_t *r, const audit_entry_t *e, int status,
    const char *body, size_t len)
{
	pending_t *pd = calloc(1, sizeof(*pd));

	if (pd == NULL || (len > 0 && (pd->body = malloc(len)) == NULL)) {
		free(pd);
		gw_reply_error(r, 503, "unavailable", "out of memory");
		return;
	}
	if (len > 0)
		memcpy(pd->body, body, len);
	pd->len = len;
	pd->status = status;
	submit_pending(r, e, pd);
}

void
reqctx_audit_then_error(gw_request_t *r, const audit_entry_t *e, int status,
    const char *code, const char *message)
{
	pending_t *pd = calloc(1, sizeof(*pd));
	int deny;

	if (pd == NULL) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		return;
	}
	/* A refusal answered as a missing record (a record the caller may
	 * not read: routes_records.c, hide_record) is a denial too.  The
	 * caller is not told; the operator's count still is. */
	deny = status == 403 || (status == 404 && e->op != NULL &&
	    strcmp(e->op, "deny") == 0);
	if (deny && e->rules != NULL && e->n_rules > 0)
		metrics_policy_denial(e->rules[0]);
	else if (deny)
		metrics_policy_denial(e->reason ? e->reason : "default-deny");
	pd->is_error = 1;
	pd->status = status;
	snprintf(pd->code, sizeof(pd->code), "%s", code);
	snprintf(pd->message, sizeof(pd->message), "%s", message);
	submit_pending(r, e, pd);
}

int
reqctx_idem_begin(gw_request_t *r, reqctx_idem_t *k)
{
	const char *h = gw_req_header(r, "Idempotency-Key"), *body;
	buf_t hb = BUF_INIT;
	size_t len;

	memset(k, 0, sizeof(*k));
	if (h == NULL)
		return 0;
	if (strlen(h) == 0 || strlen(h) > REQCTX_IDEM_KEY_MAX) {
		gw_reply_error(r, 400, "bad-idempotency-key",
		    "Idempotency-Key must be 1-%d bytes", REQCTX_IDEM_KEY_MAX);
		return -1;
	}
	/* The key covers method, path and body: a hash of part of it would
	 * let another body replay this key's answer. */
	body = gw_req_body(r, &len);
	if (buf_printf(&hb, "%s %s\n", gw_req_method(r), gw_req_path(r)) < 0 ||
	    buf_append(&hb, body, len) < 0) {
		buf_free(&hb);
		gw_reply_error(r, 503, "unavailable", "out of memory");
		return -1;
	}
	sha256(hb.data, hb.len, k->hash);
	buf_free(&hb);
	snprintf(k->key, sizeof(k->key), "%s", h);
	return 0;
}

void
reqctx_idem_raced(gw_request_t *r, const reqctx_idem_t *k)
{
	log_event(LOG_INFO, "idempotency-race", "request_id", gw_req_id(r),
	    NULL);
	/* The request's own run found its record readable. */
	if (!reqctx_idem_replay(r, k, NULL))
		gw_reply_error(r, 409, "idempotency-key-reused",
		    "this Idempotency-Key is in use");
}

/* Has record id moved on from the version the answer body (a record
 * write's {"id","version"}) names?  1 if it is live at another version, 0
 * if not (still at it; or erased since: the write is not made again over
 * an erasure; or the answer names none), -1 store error.
 *
 * A record the caller (c) may no longer read at all counts as erased: it
 * is absent for that caller (routes_records.c, hide_record).  Run again,
 * the write would find no record (404) where an erased one is replayed
 * (200): housing, retrying a write to a record since made category 4,
 * would learn that it still exists and is one it may not see. */
static int
idem_answer_stale(gw_request_t *r, const reqctx_t *c, const char *id,
    const buf_t *body)
{
	store_record_t rec;
	policy_request_t rq = c->preq;
	policy_decision_t *d = NULL;
	int64_t v;
	cJSON *j;
	int rc, ret;

	j = cJSON_ParseWithLength(body->data, body->len);
	rc = j != NULL ? json_get_int(j, "version", 1, INT64_MAX, &v) : -1;
	cJSON_Delete(j);
	if (rc != 0)
		return 0;
	memset(&rec, 0, sizeof(rec));
	rc = store_record_get(gw_req_reader(r), id, &rec);
	if (rc < 0) {
		buf_free(&rec.json);
		return -1;
	}
	ret = rc == 0 && !rec.erased && rec.version != (uint64_t)v;
	if (ret) {
		rq.op = POLICY_OP_READ;
		if ((j = reqctx_parse_stored(&rec)) == NULL ||
		    policy_filter(gw_req_gen(r)->policy, &rq, j, &d) < 0)
			ret = -1;
		else if (!policy_decision_allowed(d))
			ret = 0;
		policy_decision_free(d);
		cJSON_Delete(j);
	}
	buf_free(&rec.json);
	return ret;
}

/* Is record id gone for c's caller: absent, erased, or one it may read
 * nothing of (reqctx_unreadable)?  1 gone, 0 not, -1 once r has been
 * answered (503: the store or the policy failed). */
static int
idem_record_gone(gw_request_t *r, const reqctx_t *c, const char *id)
{
	store_record_t rec;
	policy_decision_t *d = NULL;
	cJSON *j = NULL;
	int rc;

	memset(&rec, 0, sizeof(rec));
	rc = store_record_get(gw_req_reader(r), id, &rec);
	if (rc == 0 && !rec.erased && (j = reqctx_parse_stored(&rec)) != NULL)
		rc = reqctx_unreadable(r, c, j, &d);
	else if (rc == 1 || (rc == 0 && rec.erased))
		rc = 1;
	else {
		gw_reply_error(r, 503, "store-unavailable",
		    "cannot read the store");
		rc = -1;
	}
	policy_decision_free(d);
	cJSON_Delete(j);
	buf_free(&rec.json);
	return rc;
}

/* reqctx_idem_replay, and for a record write asking for it (id not NULL,
 * by the caller c) the check that its answer is not stale. */
static int
idem_replay(gw_request_t *r, reqctx_idem_t *k, const reqctx_t *c,
    const char *id)
{
	uint8_t hash[32];
	int status = 0, rc, handled = 1;
	char record[80];
	buf_t body = BUF_INIT;

	if (k->key[0] == '\0')
		return 0;
	rc = store_idem_get_record(gw_req_reader(r), gw_req_identity(r)->uri,
	    k->key, hash, &status, &body, record, sizeof(record));
	if (rc < 0)
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
	else if (rc == 1)
		handled = 0;
	else if (CRYPTO_memcmp(hash, k->hash, 32) != 0)
		gw_reply_error(r, 409, "idempotency-key-reused",
		    "this Idempotency-Key was used with a different request");
	else if (c != NULL && record[0] != '\0' &&
	    (rc = idem_record_gone(r, c, record)) != 0) {
		if (rc > 0) {
			log_event(LOG_INFO, "idempotency-record-gone",
			    "request_id", gw_req_id(r), "record", record, NULL);
			k->gone = 1;
			handled = 0;
		}
	} else if (id != NULL && (rc = idem_answer_stale(r, c, id, &body)) != 0) {
		if (rc < 0) {
			gw_reply_error(r, 503, "store-unavailable",
			    "cannot read the store");
		} else {
			log_event(LOG_INFO, "idempotency-stale", "request_id",
			    gw_req_id(r), "record", id, NULL);
			k->stale = 1;
			handled = 0;
		}
	} else {
		gw_reply_header(r, "Idempotent-Replay", "true");
		gw_reply(r, status, NULL, body.data, body.len);
	}
	buf_free(&body);
	return handled;
}

int
reqctx_idem_replay(gw_request_t *r, const reqctx_idem_t *k,
    const reqctx_t *c)
{
	reqctx_idem_t copy = *k;

	return idem_replay(r, &copy, c, NULL);
}

int
reqctx_idem_replay_record(gw_request_t *r, reqctx_idem_t *k,
    const reqctx_t *c, const char *id)
{
	return idem_replay(r, k, c, id);
}

int
reqctx_unreadable(gw_request_t *r, const reqctx_t *c, const cJSON *rec,
    policy_decision_t **d)
{
	policy_request_t rq = c->preq;

	*d = NULL;
	rq.op = POLICY_OP_READ;
	if (policy_filter(gw_req_gen(r)->policy, &rq, rec, d) < 0) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		return -1;
	}
	if (policy_decision_allowed(*d)) {
		policy_decision_free(*d);
		*d = NULL;
		return 0;
	}
	return 1;
}
