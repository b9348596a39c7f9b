/*
 * /v1/records/{id}: collect (PUT), alter (PUT, PATCH), consult (GET),
 * history, erase (DELETE).  Each is decided by the policy engine (history
 * also needs the record's managing area; an erased record, whose content
 * is gone, has its history read by that area's police only) and answered
 * only once its audit entry is durable; an idempotent replay answers the
 * first answer again, with no new entry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sha256.h"
#include "gateway/gateway.h"
#include "gateway/gen.h"
#include "gateway/reqctx.h"
#include "gateway/routes.h"
#include "gateway/store.h"
#include "policy/policy.h"
#include "policy/record_schema.h"
#include "util/json.h"
#include "util/log.h"

#define WRITE_ATTEMPTS 4

typedef struct {
	char id[80];
	int attempts;
	int created;
	int had_if_match;
	reqctx_idem_t idem;
} write_state_t;

static void route_write(gw_request_t *r, const char *id, write_state_t *ws);

/* ----------------------------------------------------------- helpers */

static void
record_free(store_record_t *rec)
{
	buf_free(&rec->json);
}

static int
parse_if_match(const char *h, uint64_t *out)
{
	char *end;
	unsigned long long v;
	const char *p = h;
	size_t n = strlen(h);

	if (n >= 2 && h[0] == '"' && h[n - 1] == '"') {
		p = h + 1;
		n -= 2;
	}
	if (n == 0 || n > 20 || p[0] < '0' || p[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno != 0 || (size_t)(end - p) != n || v == 0)
		return -1;
	*out = v;
	return 0;
}

static void
audit_paths(const record_paths_t *p, audit_entry_t *e)
{
	e->fields = p ? (const char *const *)p->items : NULL;
	e->n_fields = p ? p->count : 0;
}

static void
decision_into_entry(const policy_decision_t *d, audit_entry_t *e)
{
	e->fields = policy_decision_disclosed(d, &e->n_fields);
	e->withheld = policy_decision_withheld(d, &e->n_withheld);
	e->transformed = policy_decision_transformed(d, &e->n_transformed);
	e->rules = policy_decision_rules(d, &e->n_rules);
}

/* Refuse with 403 as decision d says, audited as a deny entry with
 * op_reason.  hidden, when not NULL, is the read decision that made the
 * record absent for the caller: the entry names its rules, the truth the
 * answer leaves out. */
static void
deny_with_decision(gw_request_t *r, const reqctx_t *c, const char *id,
    const policy_decision_t *d, const policy_decision_t *hidden,
    const char *op_reason)
{
	audit_entry_t e;
	char msg[256];

	reqctx_audit_base(r, c, &e);
	e.op = "deny";
	e.record = id;
	e.result = "denied";
	e.reason = op_reason;
	decision_into_entry(d, &e);
	if (hidden != NULL)
		e.rules = policy_decision_rules(hidden, &e.n_rules);
	snprintf(msg, sizeof(msg), "not permitted by policy: %s",
	    policy_decision_reason(d));
	reqctx_audit_then_error(r, &e, 403, "policy-denied", msg);
}

/* Refuse a request about record id: a deny entry with reason, and with
 * d's rules when d is not NULL (SPEC 8: every refusal is logged), then the
 * answer status, code, message once it is durable. */
static void
refuse(gw_request_t *r, const reqctx_t *c, const char *id,
    const policy_decision_t *d, const char *reason, int status,
    const char *code, const char *message)
{
	audit_entry_t e;

	reqctx_audit_base(r, c, &e);
	e.op = "deny";
	e.record = id;
	e.result = "denied";
	e.reason = reason;
	if (d != NULL)
		decision_into_entry(d, &e);
	reqctx_audit_then_error(r, &e, status, code, message);
}

/* A record the caller may not read is not there for it: the answer is
 * the 404 a missing record gets, word for word (message: the missing
 * record's), so that the status tells nothing.  A 403 would tell the
 * caller that the record exists, and, where only category 4 is refused,
 * that it is a terrorism case (SPEC 7: visible only to holders of ct).
 * The log keeps the truth: a deny entry with the rules, found by the
 * answer's request_id. */
static void
hide_record(gw_request_t *r, const reqctx_t *c, const char *id,
    const policy_decision_t *d, const char *reason, const char *message)
{
	refuse(r, c, id, d, reason, 404, "not-found", message);
}

/* ------------------------------------------------------------- GET */

static void
route_get_scoped(gw_request_t *r, const char *id)
{
	reqctx_t c;
	store_record_t rec;
	policy_decision_t *d = NULL;
	cJSON *doc = NULL;
	char *body = NULL, digest[65], etag[32];
	audit_entry_t e;
	int rc;

	if (reqctx_begin(r, &c, POLICY_OP_READ, 1) < 0)
		return;
	memset(&rec, 0, sizeof(rec));
	rc = store_record_get(gw_req_reader(r), id, &rec);
	if (rc < 0) {
		record_free(&rec);
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
		return;
	}
	if (rc == 1 || rec.erased) {
		record_free(&rec);
		reqctx_audit_base(r, &c, &e);
		e.op = "consult";
		e.record = id;
		e.result = "not-found";
		reqctx_audit_then_error(r, &e, 404, "not-found", "no such record");
		return;
	}
	if ((doc = reqctx_parse_stored(&rec)) == NULL) {
		record_free(&rec);
		gw_reply_error(r, 503, "store-unavailable", "stored record unreadable");
		return;
	}
	if (policy_filter(gw_req_gen(r)->policy, &c.preq, doc, &d) < 0) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		goto out;
	}
	if (!policy_decision_allowed(d)) {
		hide_record(r, &c, id, d, "read-denied", "no such record");
		goto out;
	}
	if ((body = json_print(policy_decision_record(d))) == NULL) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		goto out;
	}
	sha256_hex(body, strlen(body), digest);
	reqctx_audit_base(r, &c, &e);
	/* A reader of another area receives a disclosure; our own agencies
	 * consult. */
	e.op = strcmp(gw_req_identity(r)->area, gw_req_gateway(r)->cfg->area) == 0 ?
	    "consult" : "disclose";
	e.record = id;
	e.version = rec.version;
	e.recipient = gw_req_identity(r)->uri;
	e.result = "ok";
	e.digest = digest;
	decision_into_entry(d, &e);
	snprintf(etag, sizeof(etag), "\"%llu\"", (unsigned long long)rec.version);
	gw_reply_header(r, "ETag", etag);
	reqctx_audit_then_reply(r, &e, 200, body, strlen(body));
out:
	if (body != NULL) {
		explicit_bzero(body, strlen(body));
		free(body);
	}
	policy_decision_free(d);
	cJSON_Delete(doc);
	record_free(&rec);
}

/* Every tree of a read is made and freed within the request's turn: in
 * the JSON arena (util/json.h).  Only malloc'd copies (the printed body,
 * the audit job) outlive it. */
static void
route_get(gw_request_t *r, const char *id)
{
	json_arena_begin();
	route_get_scoped(r, id);
	json_arena_end();
}

/* ------------------------------------------------------- PUT / PATCH */

static void
write_state_free(void *p)
{
	free(p);
}

static void
write_done(gw_request_t *r, const store_result_t *res)
{
	write_state_t *ws = gw_req_state(r);
	char body[160];
	int n;

	switch (res->status) {
	case STORE_OK:
		n = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"version\":%llu}",
		    ws->id, (unsigned long long)res->version);
		gw_reply(r, ws->created ? 201 : 200, NULL, body, (size_t)n);
		return;
	case STORE_IDEM_EXISTS:
		reqctx_idem_raced(r, &ws->idem);
		return;
	case STORE_CONFLICT:
	case STORE_EXISTS:
	case STORE_NOT_FOUND:
		if (!ws->had_if_match && ++ws->attempts < WRITE_ATTEMPTS) {
			/* Someone wrote between our read and our write: run the
			 * whole check again on the new version. */
			route_write(r, ws->id, ws);
			return;
		}
		gw_reply_error(r, 409, "version-conflict",
		    "the record changed; read it again and retry with If-Match");
		return;
	default:
		gw_reply_error(r, 503, "audit-unavailable",
		    "cannot record the write durably; nothing was changed");
		return;
	}
}

/* Validate and build the new record for PUT (whole) or PATCH (merge). */
static cJSON *
build_new_record(gw_request_t *r, const char *id, const cJSON *current,
    int is_patch, record_paths_t **touched)
{
	gateway_t *gw = gw_req_gateway(r);
	const char *body;
	size_t len;
	char err[256];
	cJSON *in, *out = NULL;
	const cJSON *bid;

	*touched = NULL;
	body = gw_req_body(r, &len);
	if (!routes_content_type_is(r, is_patch ? "application/merge-patch+json" :
	    "application/json")) {
		gw_reply_error(r, 415, "unsupported-media-type",
		    is_patch ? "PATCH takes application/merge-patch+json" :
		    "PUT takes application/json");
		return NULL;
	}
	in = json_parse_strict(body, len, gw->cfg->max_json_depth, err,
	    sizeof(err));
	if (in == NULL) {
		gw_reply_error(r, 400, "malformed-json", "%s", err);
		return NULL;
	}
	if (!cJSON_IsObject(in)) {
		cJSON_Delete(in);
		gw_reply_error(r, 400, "malformed-json", "the body must be a JSON object");
		return NULL;
	}
	/* The gateway assigns versions: one in the body is ignored, for a
	 * PATCH too, where it would otherwise count as a field the caller
	 * writes. */
	cJSON_DeleteItemFromObjectCaseSensitive(in, "version");
	if (is_patch) {
		if ((*touched = record_patch_paths(in, err, sizeof(err))) == NULL) {
			cJSON_Delete(in);
			gw_reply_error(r, 422, "schema", "%s", err);
			return NULL;
		}
		out = record_merge_patch(current, in);
		cJSON_Delete(in);
		if (out == NULL) {
			gw_reply_error(r, 503, "unavailable", "out of memory");
			return NULL;
		}
	} else {
		out = in;
	}
	bid = cJSON_GetObjectItemCaseSensitive(out, "id");
	if (bid == NULL && !is_patch)
		cJSON_AddStringToObject(out, "id", id);
	else if (!cJSON_IsString(bid) || strcmp(bid->valuestring, id) != 0) {
		cJSON_Delete(out);
		gw_reply_error(r, 422, "schema", "id: must equal the id in the path (%s)", id);
		return NULL;
	}
	/* The gateway assigns versions. */
	cJSON_DeleteItemFromObjectCaseSensitive(out, "version");
	/* A PATCH is checked against the record as stored: a value stored
	 * under older rules (an old-style postcode) that it leaves as it is
	 * does not refuse it, also for callers that never read it; every
	 * value it brings is checked in full.  A PUT sends the whole record,
	 * all of it new input. */
	if (record_validate_patched(out, is_patch ? current : NULL, err,
	    sizeof(err)) < 0) {
		cJSON_Delete(out);
		gw_reply_error(r, 422, "schema", "%s", err);
		return NULL;
	}
	return out;
}

/*
 * A PUT over a stored record replaces what the caller reads whole; the
 * rest is kept as stored.  Which fields a write changes is found by
 * comparing it with the stored record, so a PUT that could carry a field
 * the caller may not read (withheld, or read reduced, as housing reads a
 * date of birth as its year) would tell it what the record holds: a guess
 * equal to the stored value changes nothing and passes.  Such a PUT is
 * refused, naming the fields it sent; fields of the stored record that
 * the caller does not read whole are copied into the new record, so that
 * what it does not send is kept, not removed.  Which fields those are
 * follows from the policy and the record's area, category and level
 * (policy_read_map), never from what else the record holds.
 */
#define PUT_PATH_MAX 160

/* Refuse a request about record id with 403, audited as a deny entry
 * with reason. */
static void
deny_record(gw_request_t *r, const reqctx_t *c, const char *id,
    const char *reason, const char *code, const char *msg)
{
	refuse(r, c, id, NULL, reason, 403, code, msg);
}

/* The schema index of member m under prefix (its path into path), or -1
 * when the caller reads it whole (or it is not in the schema). */
static int
unread_member(const char *prefix, const cJSON *m, const unsigned char *whole,
    char *path, size_t pathlen)
{
	int i;

	snprintf(path, pathlen, "%s%s%s", prefix, *prefix ? "." : "", m->string);
	if ((i = record_field_find(path)) < 0 || whole[i] == POLICY_READ_WHOLE)
		return -1;
	return i;
}

static void
put_unread_sent(const cJSON *obj, const char *prefix, const unsigned char *whole,
    const char **bad, size_t *nbad, size_t max)
{
	const record_field_t *fields;
	const cJSON *m;
	char path[PUT_PATH_MAX];
	size_t nf;
	int i;

	fields = record_fields(&nf);
	cJSON_ArrayForEach(m, obj) {
		if ((i = unread_member(prefix, m, whole, path,
		    sizeof(path))) < 0)
			continue;
		if (fields[i].type == RECORD_T_OBJECT)
			put_unread_sent(m, path, whole, bad, nbad, max);
		else if (*nbad < max)
			bad[(*nbad)++] = fields[i].path;
	}
}

/* Copy into dst what of cur the caller does not read whole.  -1 if memory
 * is short. */
static int
put_copy_unread(cJSON *dst, const cJSON *cur, const char *prefix,
    const unsigned char *whole)
{
	const record_field_t *fields;
	const cJSON *m;
	cJSON *sub, *dup;
	char path[PUT_PATH_MAX];
	size_t nf;
	int i, made;

	fields = record_fields(&nf);
	cJSON_ArrayForEach(m, cur) {
		if ((i = unread_member(prefix, m, whole, path,
		    sizeof(path))) < 0)
			continue;
		if (fields[i].type == RECORD_T_OBJECT) {
			sub = cJSON_GetObjectItemCaseSensitive(dst, m->string);
			made = sub == NULL;
			if (made && (sub = cJSON_CreateObject()) == NULL)
				return -1;
			if (put_copy_unread(sub, m, path, whole) < 0) {
				if (made)
					cJSON_Delete(sub);
				return -1;
			}
			if (made && cJSON_GetArraySize(sub) == 0)
				cJSON_Delete(sub);
			else if (made && !cJSON_AddItemToObject(dst, m->string, sub)) {
				cJSON_Delete(sub);
				return -1;
			}
			continue;
		}
		/* put_unread_sent refused a dst holding it. */
		if ((dup = cJSON_Duplicate(m, 1)) == NULL ||
		    !cJSON_AddItemToObject(dst, m->string, dup)) {
			cJSON_Delete(dup);
			return -1;
		}
	}
	return 0;
}

/* The new record of a PUT over current: next (taken) with what the caller
 * does not read whole copied from current, or NULL once r is answered. */
static cJSON *
put_keep_unread(gw_request_t *r, const reqctx_t *c, const char *id,
    const cJSON *current, cJSON *next)
{
	policy_request_t rq = c->preq;
	unsigned char whole[256];
	const char *bad[64];
	size_t nbad = 0, nf;
	audit_entry_t e;
	char err[256], msg[512];
	buf_t list = BUF_INIT;

	/* The caller reads current (route_write_scoped asked). */
	record_fields(&nf);
	rq.op = POLICY_OP_READ;
	if (nf > sizeof(whole) || policy_read_map(gw_req_gen(r)->policy,
	    &rq, current, whole, sizeof(whole)) < 0) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		goto fail;
	}
	put_unread_sent(next, "", whole, bad, &nbad, sizeof(bad) / sizeof(bad[0]));
	if (nbad > 0) {
		reqctx_audit_base(r, c, &e);
		e.op = "deny";
		e.record = id;
		e.result = "denied";
		e.reason = "write-denied";
		e.withheld = bad;
		e.n_withheld = nbad;
		if (json_append_string_array(&list, bad, nbad) < 0)
			buf_free(&list);
		snprintf(msg, sizeof(msg), "a PUT over a stored record may send "
		    "only fields this caller reads whole; it sent %s",
		    list.data != NULL ? list.data : "others");
		reqctx_audit_then_error(r, &e, 403, "policy-denied", msg);
		buf_free(&list);
		goto fail;
	}
	if (put_copy_unread(next, current, "", whole) < 0) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		goto fail;
	}
	if (record_validate(next, err, sizeof(err)) < 0) {
		gw_reply_error(r, 422, "schema", "%s", err);
		goto fail;
	}
	return next;
fail:
	cJSON_Delete(next);
	return NULL;
}

static void
route_write_scoped(gw_request_t *r, const char *id, write_state_t *ws)
{
	int is_patch = strcmp(gw_req_method(r), "PATCH") == 0, rc;
	reqctx_t c;
	store_record_t rec;
	cJSON *current = NULL, *next = NULL;
	record_paths_t *touched = NULL, *changed = NULL;
	policy_decision_t *d = NULL, *hidden = NULL;
	const char *h;
	char *text = NULL, digest[65], msg[160];
	uint64_t if_match = 0, expect;
	audit_entry_t e;
	store_job_t *job = NULL;
	const cJSON *cat, *lvl, *area;
	buf_t paths = BUF_INIT;

	memset(&rec, 0, sizeof(rec));
	if (reqctx_begin(r, &c, POLICY_OP_WRITE, 0) < 0)
		goto out_free_ws;
	if (ws == NULL) {
		if ((ws = calloc(1, sizeof(*ws))) == NULL) {
			gw_reply_error(r, 503, "unavailable", "out of memory");
			return;
		}
		snprintf(ws->id, sizeof(ws->id), "%s", id);
		if (reqctx_idem_begin(r, &ws->idem) < 0) {
			free(ws);
			return;
		}
		gw_req_set_state(r, ws, write_state_free);
		h = gw_req_header(r, "X-Visor-Replay");
		if (h != NULL && strcmp(h, "if-current") != 0) {
			gw_reply_error(r, 400, "bad-replay",
			    "X-Visor-Replay takes if-current");
			return;
		}
		if (reqctx_idem_replay_record(r, &ws->idem, &c,
		    h != NULL ? id : NULL))
			return;
	}
	h = gw_req_header(r, "If-Match");
	if (h != NULL && parse_if_match(h, &if_match) < 0) {
		gw_reply_error(r, 400, "bad-if-match", "If-Match must be \"<version>\"");
		return;
	}
	ws->had_if_match = h != NULL;
	rc = store_record_get(gw_req_reader(r), id, &rec);
	if (rc < 0) {
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
		goto out;
	}
	if (rc == 0 && !rec.erased && (current = reqctx_parse_stored(&rec)) == NULL) {
		gw_reply_error(r, 503, "store-unavailable", "stored record unreadable");
		goto out;
	}
	if (is_patch && current == NULL) {
		gw_reply_error(r, 404, "not-found", "no such record to patch");
		goto out;
	}
	/* A stored record the caller may not read at all (category 4
	 * without clearance ct) it may not write either, and learns nothing
	 * of it first, not even its version (If-Match below).  A PATCH finds
	 * no record (hide_record).  A PUT, which would otherwise create one,
	 * can only be refused; it is answered as a PUT of an id nobody holds
	 * (hidden) up to the point where that one would create the record:
	 * If-Match, the body and the write policy as for a creation.  So a
	 * caller that may not create this record (housing, education, another
	 * area's agencies) gets the answer an unused id gets, and only one
	 * that may (police, probation, prison of this area) learns that the
	 * id is taken.  Before, every PUT over such a record got its own
	 * refusal, which told housing that the id was a record it may not
	 * see: where only category 4 is refused, a terrorism case.  Before
	 * that, housing, which writes addresses, could change those of a
	 * category 4 record it could not read, and a PATCH of its core could
	 * move it to where the caller reads it. */
	if (current != NULL) {
		switch (reqctx_unreadable(r, &c, current, &d)) {
		case -1:
			goto out;
		case 1:
			if (is_patch) {
				hide_record(r, &c, id, d, "write-denied",
				    "no such record to patch");
				goto out;
			}
			hidden = d;
			d = NULL;
			cJSON_Delete(current);
			current = NULL;
			break;
		}
	}
	if (ws->had_if_match && (current == NULL || rec.version != if_match)) {
		snprintf(msg, sizeof(msg), "If-Match %llu does not match the "
		    "current version %llu", (unsigned long long)if_match,
		    (unsigned long long)(current ? rec.version : 0));
		if (hidden != NULL)
			refuse(r, &c, id, hidden, "write-denied", 409,
			    "version-conflict", msg);
		else
			gw_reply_error(r, 409, "version-conflict", "%s", msg);
		goto out;
	}
	if ((next = build_new_record(r, id, current, is_patch, &touched)) == NULL)
		goto out;
	if (!is_patch && current != NULL &&
	    (next = put_keep_unread(r, &c, id, current, next)) == NULL)
		goto out;
	/* What the write changes is found leaf by leaf, and an empty object
	 * ("health": {}) has no leaf: kept, it would be a change to a group
	 * the policy never saw and the entry's fields never name (housing,
	 * which writes addresses, added an empty health group).  It holds
	 * nothing, so it is not stored. */
	record_drop_empty_objects(next);
	if (current != NULL)
		cJSON_DeleteItemFromObjectCaseSensitive(current, "version");
	if ((changed = record_changed_paths(current, next)) == NULL) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		goto out;
	}
	if (policy_check_write(gw_req_gen(r)->policy, &c.preq, next,
	    is_patch ? touched->items : changed->items,
	    is_patch ? touched->count : changed->count, &d) < 0) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		goto out;
	}
	if (!policy_decision_allowed(d)) {
		deny_with_decision(r, &c, id, d, hidden, "write-denied");
		goto out;
	}
	if (hidden != NULL) {
		/* Only a caller that may create the record comes here, and
		 * it learns that the id is taken either way: a retry of its
		 * keyed write gets the first answer, as before the record
		 * became one it may not read (probation pushing the category
		 * 4 records it made again).  Any other caller was answered
		 * above as for an id nobody holds, as after an erasure. */
		if (ws->idem.gone && reqctx_idem_replay(r, &ws->idem, NULL))
			goto out;
		refuse(r, &c, id, hidden, "write-denied", 403, "policy-denied",
		    "policy does not let this caller read the record: a PUT "
		    "over it is refused");
		goto out;
	}
	/* The rules' conditions (category, level, managing area) must admit
	 * the write on the record as it stands too, or a write could carry a
	 * record out of the rule that protects it (category 4 rewritten as 1
	 * past a rule that keeps category 4 writes to clearance ct). */
	if (current != NULL) {
		policy_decision_t *dc = NULL;

		if (policy_check_write(gw_req_gen(r)->policy, &c.preq, current,
		    is_patch ? touched->items : changed->items,
		    is_patch ? touched->count : changed->count, &dc) < 0) {
			gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
			goto out;
		}
		if (!policy_decision_allowed(dc)) {
			deny_with_decision(r, &c, id, dc, NULL, "write-denied");
			policy_decision_free(dc);
			goto out;
		}
		policy_decision_free(dc);
	}
	if ((text = json_print(next)) == NULL) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		goto out;
	}
	sha256_hex(text, strlen(text), digest);
	cat = cJSON_GetObjectItemCaseSensitive(next, "category");
	lvl = cJSON_GetObjectItemCaseSensitive(next, "level");
	area = cJSON_GetObjectItemCaseSensitive(next, "managing_area");
	ws->created = current == NULL;
	expect = current != NULL ? rec.version : STORE_VERSION_ABSENT;
	/* History keeps the changed paths (no values). */
	if (json_append_string_array(&paths, changed->items, changed->count) < 0 ||
	    (job = store_job_new()) == NULL)
		goto oom;
	/* The answer to replay names the version the write gets when it
	 * runs (rec.version + 1 here could be overtaken by an erasure and a
	 * new write committed before it). */
	if (ws->idem.key[0] != '\0' && store_job_idempotency_write(job,
	    gw_req_identity(r)->uri, ws->idem.key, ws->idem.hash,
	    ws->created ? 201 : 200, ws->idem.stale) < 0)
		goto oom;
	if (store_job_put_record(job, id, expect, cat->valueint, lvl->valueint,
	    cJSON_IsString(area) ? area->valuestring : gw_req_gateway(r)->cfg->area,
	    text, strlen(text), gw_req_identity(r)->uri, paths.data) < 0)
		goto oom;
	reqctx_audit_base(r, &c, &e);
	e.op = ws->created ? "collect" : "alter";
	e.record = id;
	e.version = AUDIT_VERSION_ASSIGNED;
	e.result = "ok";
	e.digest = digest;
	audit_paths(changed, &e);
	e.rules = policy_decision_rules(d, &e.n_rules);
	if (store_job_audit(job, &e) < 0)
		goto oom;
	gw_submit(r, job, write_done);
	job = NULL;
	goto out;
oom:
	store_job_free(job);
	gw_reply_error(r, 503, "unavailable", "cannot queue the write");
out:
	if (text != NULL) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	buf_free(&paths);
	record_paths_free(touched);
	record_paths_free(changed);
	policy_decision_free(d);
	policy_decision_free(hidden);
	cJSON_Delete(current);
	cJSON_Delete(next);
	record_free(&rec);
	return;
out_free_ws:
	/* ws is owned by the request state once set; nothing to free here. */
	return;
}

/* As route_get: the trees of a write live within the arena scope; the job
 * holds copies. */
static void
route_write(gw_request_t *r, const char *id, write_state_t *ws)
{
	json_arena_begin();
	route_write_scoped(r, id, ws);
	json_arena_end();
}

/* ------------------------------------------------------------ DELETE */

static void
erase_done(gw_request_t *r, const store_result_t *res)
{
	write_state_t *ws = gw_req_state(r);
	char body[160];
	int n;

	if (res->status == STORE_OK) {
		n = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"erased\":true}",
		    ws->id);
		gw_reply(r, 200, NULL, body, (size_t)n);
	} else if (res->status == STORE_CONFLICT) {
		gw_reply_error(r, 409, "version-conflict", "the record changed");
	} else if (res->status == STORE_NOT_FOUND) {
		gw_reply_error(r, 404, "not-found", "no such record");
	} else {
		gw_reply_error(r, 503, "audit-unavailable",
		    "cannot record the erasure durably; nothing was changed");
	}
}

/* Queue the erasure of version of record id, keeping category and level
 * as its core, with an erase entry naming d's rules (and reason, if not
 * NULL); r is answered by erase_done. */
static void
erase_submit(gw_request_t *r, const reqctx_t *c, const char *id,
    uint64_t version, int category, int level, const policy_decision_t *d,
    const char *reason)
{
	write_state_t *ws;
	audit_entry_t e;
	store_job_t *job;

	if ((ws = calloc(1, sizeof(*ws))) == NULL) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		return;
	}
	snprintf(ws->id, sizeof(ws->id), "%s", id);
	gw_req_set_state(r, ws, write_state_free);
	reqctx_audit_base(r, c, &e);
	e.op = "erase";
	e.record = id;
	e.version = version;
	e.result = "ok";
	e.reason = reason;
	e.rules = policy_decision_rules(d, &e.n_rules);
	if ((job = store_job_new()) == NULL ||
	    store_job_erase_record_core(job, id, version,
	    gw_req_identity(r)->uri, category, level) < 0 ||
	    store_job_audit(job, &e) < 0) {
		store_job_free(job);
		gw_reply_error(r, 503, "unavailable", "cannot queue the erasure");
		return;
	}
	gw_submit(r, job, erase_done);
}

/*
 * Erase a record whose sealed content does not open (damaged at rest, or
 * sealed under another store.key): its category and level travel only
 * inside it, so the decision is made for every category (1-4) and level
 * (1-3) it could have, with its clear managing area, and the erasure goes
 * ahead only if the caller may read and erase each (fail closed: the
 * caller must be one who could erase it whatever it is).  A caller that
 * may not read one of them finds no record, as for a record it may not
 * read.  The erasure keeps category 4, level 3 as the core (so its
 * history is for those who may read that), and its entry says
 * "content-unreadable".
 */
static void
erase_unopened(gw_request_t *r, const reqctx_t *c, const char *id,
    const store_record_t *rec, int has_if_match, uint64_t if_match)
{
	policy_decision_t *d = NULL, *worst = NULL;
	cJSON *core[4][3];
	int cat, lvl, pass;

	memset(core, 0, sizeof(core));
	for (cat = 0; cat < 4; cat++)
		for (lvl = 0; lvl < 3; lvl++)
			if ((core[cat][lvl] = cJSON_CreateObject()) == NULL ||
			    cJSON_AddStringToObject(core[cat][lvl], "id",
			    id) == NULL ||
			    cJSON_AddStringToObject(core[cat][lvl],
			    "managing_area", rec->managing_area) == NULL ||
			    cJSON_AddNumberToObject(core[cat][lvl], "category",
			    cat + 1) == NULL ||
			    cJSON_AddNumberToObject(core[cat][lvl], "level",
			    lvl + 1) == NULL) {
				gw_reply_error(r, 503, "unavailable",
				    "out of memory");
				goto out;
			}
	/* As route_erase: what the caller may not read is not there for
	 * it, before If-Match would tell it the version; then the erase
	 * policy. */
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1 && has_if_match && rec->version != if_match) {
			gw_reply_error(r, 409, "version-conflict",
			    "If-Match does not match the current version");
			goto out;
		}
		for (cat = 0; cat < 4; cat++)
			for (lvl = 0; lvl < 3; lvl++) {
				const cJSON *k = core[cat][lvl];

				policy_decision_free(d);
				d = NULL;
				if (pass == 0) {
					switch (reqctx_unreadable(r, c, k, &d)) {
					case -1:
						goto out;
					case 1:
						hide_record(r, c, id, d,
						    "erase-denied",
						    "no such record");
						goto out;
					}
					continue;
				}
				if (policy_check_erase(gw_req_gen(r)->policy,
				    &c->preq, k, &d) < 0) {
					gw_reply_error(r, 503, "policy-error",
					    "policy evaluation failed");
					goto out;
				}
				if (!policy_decision_allowed(d)) {
					deny_with_decision(r, c, id, d, NULL,
					    "erase-denied");
					goto out;
				}
				if (cat == 3 && lvl == 2) {
					worst = d;
					d = NULL;
				}
			}
	}
	log_event(LOG_WARN, "erase-unreadable", "request_id", gw_req_id(r),
	    "record", id, NULL);
	erase_submit(r, c, id, rec->version, 4, 3, worst,
	    "content-unreadable");
out:
	policy_decision_free(d);
	policy_decision_free(worst);
	for (cat = 0; cat < 4; cat++)
		for (lvl = 0; lvl < 3; lvl++)
			cJSON_Delete(core[cat][lvl]);
}

static void
route_erase(gw_request_t *r, const char *id)
{
	reqctx_t c;
	store_record_t rec;
	cJSON *current = NULL;
	policy_decision_t *d = NULL;
	uint64_t if_match = 0;
	const char *h;
	int rc, opens;

	memset(&rec, 0, sizeof(rec));
	if (reqctx_begin(r, &c, POLICY_OP_ERASE, 0) < 0)
		return;
	h = gw_req_header(r, "If-Match");
	if (h != NULL && parse_if_match(h, &if_match) < 0) {
		gw_reply_error(r, 400, "bad-if-match", "If-Match must be \"<version>\"");
		return;
	}
	rc = store_record_get(gw_req_reader(r), id, &rec);
	if (rc < 0) {
		/* A record whose content does not open can still be erased
		 * (erase_unopened); any other failure is the store's. */
		record_free(&rec);
		rc = store_record_get_clear(gw_req_reader(r), id, &rec, &opens);
		if (rc == 0 && !rec.erased && !opens) {
			erase_unopened(r, &c, id, &rec, h != NULL, if_match);
			goto out;
		}
		if (rc < 0 || (rc == 0 && !rec.erased)) {
			gw_reply_error(r, 503, "store-unavailable",
			    "cannot read the store");
			goto out;
		}
	}
	if (rc == 1 || rec.erased) {
		gw_reply_error(r, 404, "not-found", "no such record");
		goto out;
	}
	if ((current = reqctx_parse_stored(&rec)) == NULL) {
		gw_reply_error(r, 503, "store-unavailable", "stored record unreadable");
		goto out;
	}
	/* What the caller may not read is not there for it (hide_record),
	 * before If-Match would tell it the version. */
	switch (reqctx_unreadable(r, &c, current, &d)) {
	case -1:
		goto out;
	case 1:
		hide_record(r, &c, id, d, "erase-denied", "no such record");
		goto out;
	}
	if (h != NULL && rec.version != if_match) {
		gw_reply_error(r, 409, "version-conflict",
		    "If-Match does not match the current version");
		goto out;
	}
	if (policy_check_erase(gw_req_gen(r)->policy, &c.preq, current, &d) < 0) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		goto out;
	}
	if (!policy_decision_allowed(d)) {
		deny_with_decision(r, &c, id, d, NULL, "erase-denied");
		goto out;
	}
	erase_submit(r, &c, id, rec.version, rec.category, rec.level, d, NULL);
out:
	policy_decision_free(d);
	cJSON_Delete(current);
	record_free(&rec);
}

/* ----------------------------------------------------------- history */

/*
 * What the erasure at version ever of record id kept of the record it
 * erased: its core (id, managing area, category, level), sealed in the
 * erasure's version; an erasure that kept none (from before the core was
 * kept) is taken as category 4, level 3 in area.  NULL once r is answered.
 */
static cJSON *
erasure_core(gw_request_t *r, const char *id, uint64_t ever, const char *area)
{
	store_record_t tomb;
	cJSON *core = NULL;
	int rc;

	rc = store_record_version_get(gw_req_reader(r), id, ever, &tomb);
	if (rc < 0) {
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
		return NULL;
	}
	if (rc == 0)
		core = cJSON_ParseWithLength(tomb.json.data, tomb.json.len);
	else if ((core = cJSON_CreateObject()) != NULL &&
	    (cJSON_AddStringToObject(core, "id", id) == NULL ||
	    cJSON_AddStringToObject(core, "managing_area", area) == NULL ||
	    cJSON_AddNumberToObject(core, "category", 4) == NULL ||
	    cJSON_AddNumberToObject(core, "level", 3) == NULL)) {
		cJSON_Delete(core);
		core = NULL;
	}
	record_free(&tomb);
	if (core == NULL)
		gw_reply_error(r, 503, "store-unavailable",
		    "stored record unreadable");
	return core;
}

/*
 * How the caller could read version ver of record id, as the policy reads
 * that version's own core (category, level, managing area), into vmap (nf
 * entries).  A version whose content is gone was wiped by the erasure
 * that followed it (erase_ver, ver itself for an erasure): it is read as
 * that erasure kept the erased record's core (erasure_core), never as the
 * record is now, which may be another record made under the same id.
 * Without such an erasure (none can be), as the record is now (now).
 * *doc gets the version's content when it still has one (the caller
 * frees it), else NULL.  0, or -1 once r is answered.
 */
static int
version_read_map(gw_request_t *r, const policy_request_t *rq, const char *id,
    int64_t ver, int64_t erase_ver, const char *area,
    const unsigned char *now, unsigned char *vmap, size_t nf, cJSON **doc)
{
	store_record_t rec;
	cJSON *j;
	int rc;

	*doc = NULL;
	rc = store_record_version_get(gw_req_reader(r), id, (uint64_t)ver, &rec);
	if (rc == 1 && erase_ver <= 0) {
		memcpy(vmap, now, nf);
		return 0;
	}
	if (rc < 0) {
		gw_reply_error(r, 503, "store-unavailable",
		    "cannot read the history");
		return -1;
	}
	if (rc == 1) {
		if ((j = erasure_core(r, id, (uint64_t)erase_ver, area)) == NULL)
			return -1;
	} else {
		j = cJSON_ParseWithLength(rec.json.data, rec.json.len);
		record_free(&rec);
	}
	if (j == NULL || policy_read_map(gw_req_gen(r)->policy, rq, j, vmap,
	    nf) < 0) {
		cJSON_Delete(j);
		gw_reply_error(r, 503, "policy-error",
		    "policy evaluation failed");
		return -1;
	}
	/* The version as it was, for comparing views; not the core an
	 * erasure kept in place of a wiped one. */
	if (rc == 1)
		cJSON_Delete(j);
	else
		*doc = j;
	return 0;
}

/* The member at a changed path ("person.dob", "orders") of a filtered
 * record, or NULL if it has none there.  *ok is 0 for a path this cannot
 * follow (one through array elements). */
static const cJSON *
view_at(const cJSON *view, const char *path, int *ok)
{
	char part[128];
	const char *p = path, *dot;
	size_t n;

	*ok = strchr(path, '[') == NULL;
	while (*ok && view != NULL) {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n >= sizeof(part)) {
			*ok = 0;
			break;
		}
		memcpy(part, p, n);
		part[n] = '\0';
		view = cJSON_GetObjectItemCaseSensitive(view, part);
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return view;
}

/*
 * A path the caller reads only in part (a date as its year) changed in
 * this version: does the caller's view of it differ from the version
 * before's?  If not, the change was to what it does not see (a day of the
 * same year) and is not shown.  The views are made on demand, once per
 * version (*dv, *dp: the decisions, kept by the caller).  1 differs (or
 * cannot tell: shown), 0 the same, -1 once r is answered.
 */
static int
view_changed(gw_request_t *r, const policy_request_t *rq, const char *path,
    const cJSON *doc, const cJSON *pdoc, policy_decision_t **dv,
    policy_decision_t **dp)
{
	const cJSON *a, *b;
	int oka, okb;

	if (doc == NULL || pdoc == NULL)
		return 1;
	if ((*dv == NULL && policy_filter(gw_req_gen(r)->policy, rq, doc,
	    dv) < 0) || (*dp == NULL && policy_filter(gw_req_gen(r)->policy,
	    rq, pdoc, dp) < 0)) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		return -1;
	}
	if (policy_decision_record(*dv) == NULL ||
	    policy_decision_record(*dp) == NULL)
		return 1;
	a = view_at(policy_decision_record(*dv), path, &oka);
	b = view_at(policy_decision_record(*dp), path, &okb);
	if (!oka || !okb)
		return 1;
	if (a == NULL || b == NULL)
		return a != b;
	return !cJSON_Compare(a, b, 1);
}

/*
 * A history is answered a page at a time, newest pages first: at most
 * limit versions, those numbered below before (all when before is 0),
 * oldest first within the page, and next_before the number to ask below
 * for the page before (0 when none).  The page is the versions the whole
 * history would show that fall in it, never more: the version before the
 * page is read too, for what its changes are measured against.  The
 * cursor says only that older versions exist, as the record's version
 * number does, and not whether the caller could see any of them.  Only
 * the page's rows are read, so a record with many versions costs a page.
 */
#define HISTORY_PAGE_MAX 1000

typedef struct {
	uint64_t before;	/* 0: from the newest */
	uint64_t limit;
	int64_t next_before;	/* set by history_load */
} history_page_t;

typedef struct {
	cJSON *all;		/* the page, after the version before it */
	int from;		/* position of the page's first version */
	int n;
	int64_t *ev;		/* for each of all, the erasure at or after
				   it (0 if none): the erasure that wiped its
				   content, whose kept core says what record
				   it was */
	int64_t last_erase;	/* the record's newest erasure, 0 if none */
} history_rows_t;

static void
history_rows_free(history_rows_t *h)
{
	cJSON_Delete(h->all);
	free(h->ev);
}

/* Read pg's page of id's history into h.  0, or -1 once r is answered. */
static int
history_load(gw_request_t *r, const char *id, history_page_t *pg,
    history_rows_t *h)
{
	buf_t raw = BUF_INIT;
	const cJSON *v;
	int64_t *er = NULL, ver;
	size_t ne = 0, e = 0;
	int k = 0;

	memset(h, 0, sizeof(*h));
	pg->next_before = 0;
	if (store_record_history_page(gw_req_reader(r), id, pg->before,
	    (unsigned)pg->limit + 1, &raw) < 0 ||
	    (raw.len > 0 && ((h->all = cJSON_ParseWithLength(raw.data,
	    raw.len)) == NULL || !cJSON_IsArray(h->all))) ||
	    store_record_erasures(gw_req_reader(r), id, &er, &ne) < 0)
		goto unreadable;
	if (h->all == NULL && (h->all = cJSON_CreateArray()) == NULL)
		goto oom;
	h->n = cJSON_GetArraySize(h->all);
	if ((uint64_t)h->n > pg->limit) {
		h->from = 1;
		if (json_get_int(h->all->child->next, "version", 1, INT64_MAX,
		    &pg->next_before) != 0)
			goto unreadable;
	}
	if ((h->ev = calloc((size_t)(h->n > 0 ? h->n : 1),
	    sizeof(*h->ev))) == NULL)
		goto oom;
	cJSON_ArrayForEach(v, h->all) {
		if (json_get_int(v, "version", 1, INT64_MAX, &ver) != 0)
			goto unreadable;
		while (e < ne && er[e] < ver)
			e++;
		h->ev[k++] = e < ne ? er[e] : 0;
	}
	h->last_erase = ne > 0 ? er[ne - 1] : 0;
	free(er);
	buf_free(&raw);
	return 0;
unreadable:
	gw_reply_error(r, 503, "store-unavailable", "cannot read the history");
	goto fail;
oom:
	gw_reply_error(r, 503, "unavailable", "out of memory");
fail:
	free(er);
	buf_free(&raw);
	history_rows_free(h);
	memset(h, 0, sizeof(*h));
	return -1;
}

/*
 * The history of a live record as the caller may see it.  A record erased
 * and then made again under its id keeps the erased one's versions: they
 * are for the area's police only (as the erased record's history is), so
 * other callers see the versions after the last erasure.
 *
 * A change to a path says something of the value before it and of the
 * value after, so a version's changed path is shown only if the caller
 * reads it in some form in the record as it is now, in that version, and
 * in the version before it, each as the policy reads that version's own
 * core fields.  A record that was category 4 and is now category 1 thus
 * shows housing nothing of its category 4 versions, not even the change
 * that lowered it.  A version left with no changed path (it changed only
 * what the caller could not read, or nothing at all) is left out, and so
 * is any version the caller could not read at all: its time and actor
 * would say that, and
 * who, e.g. health, wrote.  Appends the versions array to out; -1 once r
 * is answered.
 */
static int
history_for_caller(gw_request_t *r, const reqctx_t *c, const char *id,
    const cJSON *current, history_page_t *pg, buf_t *out)
{
	policy_request_t rq = c->preq;
	unsigned char now[256], vmap[256], prev[256];
	history_rows_t h = { NULL, 0, 0, NULL, 0 };
	cJSON *keep = NULL, *v, *next, *changed, *p, *pn;
	cJSON *doc = NULL, *pdoc = NULL;
	policy_decision_t *dv = NULL, *dp = NULL;
	int police = strcmp(gw_req_identity(r)->type, "police") == 0;
	int i, had, id_field, rc, ret = -1;
	int64_t ver;
	const char *op;
	char *text = NULL;
	const char *area = json_get_str(current, "managing_area");
	int k;
	size_t nf;

	record_fields(&nf);
	rq.op = POLICY_OP_READ;
	id_field = record_field_find("id");
	if (nf > sizeof(now) || id_field < 0 ||
	    policy_read_map(gw_req_gen(r)->policy, &rq, current, now,
	    sizeof(now)) < 0) {
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		goto out;
	}
	if (history_load(r, id, pg, &h) < 0)
		goto out;
	if ((keep = cJSON_CreateArray()) == NULL)
		goto oom;
	memset(prev, POLICY_READ_WHOLE, nf);	/* no version before the first */
	for (v = h.all->child, k = 0; v != NULL; v = next, k++) {
		next = v->next;
		if (json_get_int(v, "version", 1, INT64_MAX, &ver) != 0) {
			gw_reply_error(r, 503, "store-unavailable",
			    "cannot read the history");
			goto out;
		}
		/* Callers other than police see nothing before an erasure,
		 * nor the erasure: what is up to the last one is not read,
		 * and the version after it is measured against nothing. */
		if (!police && ver <= h.last_erase)
			continue;
		op = json_get_str(v, "op");
		if (version_read_map(r, &rq, id, ver, h.ev[k],
		    area != NULL ? area : "", now, vmap, nf, &doc) < 0)
			goto out;
		changed = cJSON_GetObjectItemCaseSensitive(v, "changed");
		had = cJSON_GetArraySize(changed) > 0;
		for (p = changed != NULL ? changed->child : NULL; p != NULL; p = pn) {
			pn = p->next;
			if (!cJSON_IsString(p) ||
			    (i = record_field_find(p->valuestring)) < 0 ||
			    now[i] == POLICY_READ_NONE ||
			    vmap[i] == POLICY_READ_NONE ||
			    prev[i] == POLICY_READ_NONE) {
				cJSON_Delete(cJSON_DetachItemViaPointer(changed, p));
				continue;
			}
			if (now[i] == POLICY_READ_WHOLE &&
			    vmap[i] == POLICY_READ_WHOLE &&
			    prev[i] == POLICY_READ_WHOLE)
				continue;
			if ((rc = view_changed(r, &rq, p->valuestring, doc, pdoc,
			    &dv, &dp)) < 0)
				goto out;
			if (rc == 0)
				cJSON_Delete(cJSON_DetachItemViaPointer(changed, p));
		}
		memcpy(prev, vmap, nf);
		cJSON_Delete(pdoc);
		pdoc = doc;
		doc = NULL;
		policy_decision_free(dp);
		dp = dv;
		dv = NULL;
		/* Nothing is before an erasure's next version (a record made
		 * again under the id): its paths say nothing of the erased. */
		if (op != NULL && strcmp(op, "erase") == 0) {
			memset(prev, POLICY_READ_WHOLE, nf);
			cJSON_Delete(pdoc);
			pdoc = NULL;
			policy_decision_free(dp);
			dp = NULL;
		}
		/* A write left with no changed path is left out, whether it
		 * changed only what the caller does not read or nothing at
		 * all.  Shown when it changed nothing, it would answer a
		 * guess: a caller that may write a field but not read it
		 * (prison and em, probation and associates) writes its guess
		 * and sees the version if, and only if, the guess was the
		 * value stored. */
		if (k < h.from || vmap[id_field] == POLICY_READ_NONE ||
		    ((had || op == NULL || strcmp(op, "erase") != 0) &&
		    cJSON_GetArraySize(changed) == 0))
			continue;
		cJSON_AddItemToArray(keep, cJSON_DetachItemViaPointer(h.all, v));
	}
	if ((text = json_print(keep)) == NULL || buf_puts(out, text) < 0)
		goto oom;
	ret = 0;
	goto out;
oom:
	gw_reply_error(r, 503, "unavailable", "out of memory");
out:
	history_rows_free(&h);
	free(text);
	cJSON_Delete(keep);
	cJSON_Delete(doc);
	cJSON_Delete(pdoc);
	policy_decision_free(dv);
	policy_decision_free(dp);
	return ret;
}

/*
 * May the caller (police of the managing area) read the history of the
 * record the erasure at version ever erased?  Its content is gone, but the
 * policy still decides on what the record was: a category 4 record's
 * history is for ct holders, as the record was (SPEC 7).  The erasure's
 * version keeps the record's core, sealed (erasure_core).  1 yes, 0 no
 * (*d the decision either way, to be freed by the caller), -1 once r is
 * answered.
 */
static int
erased_readable(gw_request_t *r, const reqctx_t *c, const char *id,
    uint64_t ever, const char *area, policy_decision_t **d)
{
	cJSON *core;

	*d = NULL;
	if ((core = erasure_core(r, id, ever, area)) == NULL)
		return -1;
	if (policy_filter(gw_req_gen(r)->policy, &c->preq, core, d) < 0) {
		cJSON_Delete(core);
		gw_reply_error(r, 503, "policy-error", "policy evaluation failed");
		return -1;
	}
	cJSON_Delete(core);
	return policy_decision_allowed(*d) ? 1 : 0;
}

/*
 * The history of an erased record for police that may read what it was
 * (erased_readable): all of it, but for the versions of an earlier record
 * under the same id (erased, the id used again) that the caller could not
 * read, as the erasure that ended it kept its core.  Appends the versions
 * array to out; -1 once r is answered.
 */
static int
erased_history(gw_request_t *r, const reqctx_t *c, const char *id,
    const char *area, history_page_t *pg, buf_t *out)
{
	history_rows_t h;
	cJSON *v, *next;
	policy_decision_t *d;
	int64_t decided = 0;
	int k = 0, allowed = 1, ret = -1;
	char *text = NULL;

	if (history_load(r, id, pg, &h) < 0)
		return -1;
	for (v = h.all->child; v != NULL; v = next, k++) {
		next = v->next;
		if (k < h.from) {
			cJSON_Delete(cJSON_DetachItemViaPointer(h.all, v));
			continue;
		}
		if (h.ev[k] <= 0)
			continue;
		if (h.ev[k] != decided) {
			allowed = erased_readable(r, c, id, (uint64_t)h.ev[k],
			    area, &d);
			policy_decision_free(d);
			if (allowed < 0)
				goto out;
			decided = h.ev[k];
		}
		if (!allowed)
			cJSON_Delete(cJSON_DetachItemViaPointer(h.all, v));
	}
	if ((text = json_print(h.all)) == NULL || buf_puts(out, text) < 0) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		goto out;
	}
	ret = 0;
out:
	free(text);
	history_rows_free(&h);
	return ret;
}

void
route_record_history(gw_request_t *r, const char *id)
{
	reqctx_t c;
	store_record_t rec;
	cJSON *current = NULL;
	policy_decision_t *d = NULL;
	buf_t out = BUF_INIT;
	audit_entry_t e;
	static const char *const fields[] = { "history" };
	static const char *const params[] = { "before", "limit", NULL };
	history_page_t pg = { 0, HISTORY_PAGE_MAX, 0 };
	int rc;

	memset(&rec, 0, sizeof(rec));
	if (gw_req_query_only(r, params) < 0 ||
	    routes_query_u64(r, "before", &pg.before, 0) < 0 ||
	    routes_query_u64(r, "limit", &pg.limit, 0) < 0 ||
	    (gw_req_query(r, "before") != NULL && pg.before == 0) ||
	    pg.limit == 0 || pg.limit > HISTORY_PAGE_MAX) {
		gw_reply_error(r, 400, "bad-query", "history takes before "
		    "(a version, at least 1) and limit (1 to %d), each at most "
		    "once", HISTORY_PAGE_MAX);
		return;
	}
	if (reqctx_begin(r, &c, POLICY_OP_READ, 1) < 0)
		return;
	rc = store_record_get(gw_req_reader(r), id, &rec);
	if (rc < 0) {
		gw_reply_error(r, 503, "store-unavailable", "cannot read the store");
		goto out;
	}
	if (rc == 1) {
		gw_reply_error(r, 404, "not-found", "no such record");
		goto out;
	}
	/* The managing area as sealed (reqctx_parse_stored checks the clear
	 * column against it); an erased record keeps only the column. */
	if (!rec.erased && (current = reqctx_parse_stored(&rec)) == NULL) {
		gw_reply_error(r, 503, "store-unavailable", "stored record unreadable");
		goto out;
	}
	/* Record owners: agencies of the managing area that may read it.  An
	 * erased record's history is for its managing area's police only.
	 * Whoever may not read it finds no record (hide_record), as GET
	 * answers them; only a caller that may is told it is not an owner. */
	if (!rec.erased) {
		if (policy_filter(gw_req_gen(r)->policy, &c.preq, current, &d) < 0) {
			gw_reply_error(r, 503, "store-unavailable", "cannot evaluate");
			goto out;
		}
		if (!policy_decision_allowed(d)) {
			hide_record(r, &c, id, d, "history-denied",
			    "no such record");
			goto out;
		}
	} else if (strcmp(gw_req_identity(r)->type, "police") != 0) {
		hide_record(r, &c, id, NULL, "history-erased", "no such record");
		goto out;
	} else if ((rc = erased_readable(r, &c, id, rec.version,
	    rec.managing_area, &d)) <= 0) {
		if (rc == 0)
			hide_record(r, &c, id, d, "history-denied",
			    "no such record");
		goto out;
	}
	if (strcmp(gw_req_identity(r)->area, rec.managing_area) != 0) {
		deny_record(r, &c, id, "history-not-owner", "forbidden",
		    "history is for the record's managing area");
		goto out;
	}
	buf_printf(&out, "{\"id\":\"%s\",\"versions\":", id);
	if (current == NULL) {
		/* Erased: the area's police see what they could read. */
		if (erased_history(r, &c, id, rec.managing_area, &pg, &out) < 0)
			goto out;
	} else if (history_for_caller(r, &c, id, current, &pg, &out) < 0)
		goto out;
	if (pg.next_before > 0)
		buf_printf(&out, ",\"next_before\":%lld",
		    (long long)pg.next_before);
	buf_puts(&out, "}");
	reqctx_audit_base(r, &c, &e);
	e.op = "consult";
	e.record = id;
	e.version = rec.version;
	e.result = "ok";
	e.fields = fields;
	e.n_fields = 1;
	reqctx_audit_then_reply(r, &e, 200, out.data, out.len);
out:
	buf_free(&out);
	policy_decision_free(d);
	cJSON_Delete(current);
	record_free(&rec);
}

void
route_record(gw_request_t *r, const char *id)
{
	const char *m = gw_req_method(r);

	if (strcmp(m, "GET") == 0)
		route_get(r, id);
	else if (strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0)
		route_write(r, id, NULL);
	else if (strcmp(m, "DELETE") == 0)
		route_erase(r, id);
	else {
		gw_reply_header(r, "Allow", "GET, PUT, PATCH, DELETE");
		gw_reply_error(r, 405, "method-not-allowed", "%s is not allowed here", m);
	}
}
