/*
 * Witnessing of the peers' audit logs, the receiving side (an addition to
 * SPEC; docs/SPEC-NOTES.md, docs/AUDIT.md):
 *
 *   POST /v1/peer/checkpoints   a configured peer gateway sends its latest
 *                               signed checkpoint with a consistency proof
 *                               from the size it believes this gateway
 *                               holds (gateway/witness.h, the sender)
 *   GET /v1/audit/witnessed     the checkpoints held, for auditors
 *
 * The checkpoint held for a peer only ever moves forward along one log:
 * a smaller size (the peer's store and checkpoint.last rolled back), the
 * same size with another root, or a proof that does not verify (a fork)
 * is refused with 409 peer-log-inconsistent, logged at error level,
 * counted and written to this gateway's own audit log, and the held
 * checkpoint stays.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto/merkle.h"
#include "crypto/note.h"
#include "crypto/sha256.h"
#include "gateway/gateway.h"
#include "gateway/gen.h"
#include "gateway/metrics.h"
#include "gateway/reqctx.h"
#include "gateway/routes.h"
#include "gateway/store.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"

/* What a send carries (gateway/witness.c builds it). */
typedef struct {
	const char *note;
	size_t note_len;
	uint64_t from;
	merkle_hash_t proof[MERKLE_MAX_PROOF];
	size_t n;
} witness_body_t;

/* Per-request state across the store job. */
typedef struct {
	char area[40];
	uint64_t size;
} witness_state_t;

/*
 * {"checkpoint":"<signed note>","from":M,"proof":["<base64 hash>",...]}:
 * exactly these members; the note at most NOTE_MAX_SIZE bytes, from a
 * whole number, at most MERKLE_MAX_PROOF hashes of 32 bytes each.  The
 * note points into root.  0, or -1 with a reason.
 */
static int
witness_body_parse(const cJSON *root, witness_body_t *b, char *err,
    size_t errlen)
{
	const cJSON *it, *proof;
	int64_t from;
	size_t members = 0;

	memset(b, 0, sizeof(*b));
	if (!cJSON_IsObject(root)) {
		snprintf(err, errlen, "the body must be a JSON object");
		return -1;
	}
	for (it = root->child; it != NULL; it = it->next)
		members++;
	if ((b->note = json_get_str(root, "checkpoint")) == NULL ||
	    json_get_int(root, "from", 0, INT64_MAX, &from) != 0 ||
	    !cJSON_IsArray(proof = cJSON_GetObjectItemCaseSensitive(root,
	    "proof")) || members != 3) {
		snprintf(err, errlen, "the body holds exactly checkpoint "
		    "(string), from (integer >= 0) and proof (array)");
		return -1;
	}
	b->note_len = strlen(b->note);
	if (b->note_len == 0 || b->note_len > NOTE_MAX_SIZE) {
		snprintf(err, errlen, "checkpoint must be 1 to %d bytes",
		    NOTE_MAX_SIZE);
		return -1;
	}
	b->from = (uint64_t)from;
	cJSON_ArrayForEach(it, proof) {
		if (b->n == MERKLE_MAX_PROOF || !cJSON_IsString(it) ||
		    b64_decode(it->valuestring, strlen(it->valuestring),
		    b->proof[b->n], MERKLE_HASH_LEN) != MERKLE_HASH_LEN) {
			snprintf(err, errlen, "proof holds at most %d base64 "
			    "hashes of %d bytes", MERKLE_MAX_PROOF,
			    MERKLE_HASH_LEN);
			return -1;
		}
		b->n++;
	}
	return 0;
}

static void
reply_held(gw_request_t *r, const char *area, uint64_t size)
{
	char body[128];
	int n;

	n = snprintf(body, sizeof(body), "{\"area\":\"%s\",\"size\":%" PRIu64
	    "}", area, size);
	gw_reply(r, 200, NULL, body, (size_t)n);
}

/* The alarm: logged at error level every time, counted, audited in this
 * gateway's own log (op deny: a peer's request refused), answered 409. */
static void
refused_kept(void *arg, const store_result_t *res)
{
	(void)arg;
	if (res->status != STORE_OK)
		log_event(LOG_ERROR, "peer-checkpoint-evidence-lost", "error",
		    res->err[0] != '\0' ? res->err : "not stored", NULL);
}

static void
refuse_inconsistent(gw_request_t *r, const char *area, uint64_t held,
    uint64_t got, const char *what, const char *note, size_t note_len)
{
	char hs[24], gs[24], reason[96], digest[65], msg[200];
	store_job_t *job;
	audit_entry_t e;

	snprintf(hs, sizeof(hs), "%" PRIu64, held);
	snprintf(gs, sizeof(gs), "%" PRIu64, got);
	sha256_hex(note, note_len, digest);
	log_event(LOG_ERROR, "peer-log-inconsistent", "peer", area, "held", hs,
	    "got", gs, "kind", what, "digest", digest, "request_id",
	    gw_req_id(r), NULL);
	metrics_peer_log_inconsistent(area);
	/* The refused note itself, beside the held one: the two, signed by
	 * the peer's key, are the evidence (GET /v1/audit/witnessed).  Not
	 * waited for: the alarm above and the audit entry below do not
	 * depend on it. */
	if ((job = store_job_new()) != NULL &&
	    store_job_witness_refused(job, area, note, note_len) == 0)
		store_submit(gw_req_gateway(r)->store, job, refused_kept, NULL);
	else
		store_job_free(job);
	snprintf(reason, sizeof(reason), "peer-log-inconsistent %s held=%s "
	    "got=%s", what, hs, gs);
	snprintf(msg, sizeof(msg), "this gateway holds a checkpoint of size %s "
	    "of %s's log and the one sent (size %s) is not consistent with it "
	    "(%s): the log was rolled back or forked", hs, area, gs, what);
	reqctx_audit_base(r, NULL, &e);
	e.op = "deny";
	e.result = "denied";
	e.reason = reason;
	e.digest = digest;	/* of the refused signed note, as received */
	reqctx_audit_then_error(r, &e, 409, "peer-log-inconsistent", msg);
}

/* A note that is not a checkpoint of the peer's log signed by its key. */
static void
refuse_note(gw_request_t *r, const char *area, const char *reason,
    const char *why)
{
	audit_entry_t e;
	char msg[300];

	log_event(LOG_ERROR, "peer-checkpoint-refused", "peer", area, "reason",
	    reason, "error", why, "request_id", gw_req_id(r), NULL);
	snprintf(msg, sizeof(msg), "the checkpoint is not one of %s's audit "
	    "log signed with its configured key: %s", area, why);
	reqctx_audit_base(r, NULL, &e);
	e.op = "deny";
	e.result = "denied";
	e.reason = reason;
	reqctx_audit_then_error(r, &e, 403, reason, msg);
}

static void
put_done(gw_request_t *r, const store_result_t *res)
{
	witness_state_t *st = gw_req_state(r);
	char size[24];

	if (res->status == STORE_OK) {
		snprintf(size, sizeof(size), "%" PRIu64, st->size);
		log_event(LOG_INFO, "peer-checkpoint-witnessed", "peer",
		    st->area, "size", size, NULL);
		reply_held(r, st->area, st->size);
	} else if (res->status == STORE_CONFLICT) {
		/* Another send of the same peer moved the held checkpoint
		 * between the check and the write: the sender tries again. */
		gw_reply_error(r, 503, "witness-busy", "another checkpoint of "
		    "this peer was being stored: send again");
	} else {
		gw_reply_error(r, 503, "store-unavailable", "cannot store the "
		    "checkpoint");
	}
}

void
route_peer_checkpoints(gw_request_t *r)
{
	struct gw_gen *gen = gw_req_gen(r);
	const identity_t *peer = gw_req_identity(r);
	const config_peer_t *cp = NULL;
	note_verifier_t *v = NULL;
	witness_body_t b;
	witness_state_t *st;
	store_job_t *job;
	audit_entry_t e;
	cJSON *root = NULL;
	const char *body;
	char err[200], origin[64];
	merkle_hash_t got_root, held_root;
	uint64_t got, held = 0;
	size_t len, body_len;
	int has_held;

	if (peer->kind == IDENTITY_GATEWAY)
		cp = config_peer(gen->cfg, peer->area);
	if (cp == NULL) {
		reqctx_audit_base(r, NULL, &e);
		e.op = "deny";
		e.result = "denied";
		e.reason = "not-a-peer-gateway";
		reqctx_audit_then_error(r, &e, 403, "forbidden",
		    "only configured peer gateways may send checkpoints");
		return;
	}
	if (cp->audit_vkey[0] == '\0') {
		gw_reply_error(r, 403, "not-witnessed", "this gateway has no "
		    "audit verifier key for %s (peers[].audit_vkey): its "
		    "checkpoints are not witnessed here", peer->area);
		return;
	}
	if (!routes_content_type_is(r, "application/json")) {
		gw_reply_error(r, 415, "unsupported-media-type",
		    "POST /v1/peer/checkpoints takes application/json");
		return;
	}
	body = gw_req_body(r, &len);
	if ((root = json_parse_strict(body, len, 4, err, sizeof(err))) == NULL ||
	    witness_body_parse(root, &b, err, sizeof(err)) < 0) {
		gw_reply_error(r, 400, "bad-checkpoint-body", "%s", err);
		goto out;
	}
	snprintf(origin, sizeof(origin), "visor.%s/audit", peer->area);
	/* config_load checked the line and its name. */
	if ((v = note_verifier_parse(cp->audit_vkey, strlen(cp->audit_vkey),
	    err, sizeof(err))) == NULL) {
		gw_reply_error(r, 503, "unavailable", "the peer's verifier key "
		    "does not load");
		goto out;
	}
	if (note_open(v, b.note, b.note_len, &body_len, err, sizeof(err)) < 0) {
		refuse_note(r, peer->area, "bad-checkpoint-signature", err);
		goto out;
	}
	if (checkpoint_parse(b.note, body_len, origin, &got, got_root, err,
	    sizeof(err)) < 0 || got > (uint64_t)INT64_MAX) {
		refuse_note(r, peer->area, "bad-checkpoint", err);
		goto out;
	}
	switch (store_witness_get(gw_req_reader(r), peer->area, &held,
	    held_root, NULL, NULL)) {
	case 0:
		has_held = 1;
		break;
	case 1:
		has_held = 0;
		break;
	default:
		gw_reply_error(r, 503, "store-unavailable", "cannot read the "
		    "witnessed checkpoints");
		goto out;
	}
	if (has_held) {
		if (got < held) {
			refuse_inconsistent(r, peer->area, held, got,
			    "rolled-back", b.note, b.note_len);
			goto out;
		}
		if (got == held) {
			if (CRYPTO_memcmp(got_root, held_root,
			    MERKLE_HASH_LEN) != 0)
				refuse_inconsistent(r, peer->area, held, got,
				    "forked", b.note, b.note_len);
			else
				reply_held(r, peer->area, held);
			goto out;
		}
		/* Larger: only with a proof from the size held.  A proof
		 * from another size (the sender restarted and does not know
		 * what is held here) is answered with the size held, to
		 * send again from. */
		if (held > 0 && b.from != held) {
			reply_held(r, peer->area, held);
			goto out;
		}
		if (held > 0 && merkle_verify_consistency(held, got, held_root,
		    got_root, (const merkle_hash_t *)b.proof, b.n) < 0) {
			refuse_inconsistent(r, peer->area, held, got, "forked",
			    b.note, b.note_len);
			goto out;
		}
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		goto out;
	}
	gw_req_set_state(r, st, free);
	snprintf(st->area, sizeof(st->area), "%s", peer->area);
	st->size = got;
	/* First of this peer: trusted on first sight (docs/AUDIT.md). */
	job = store_job_new();
	if (store_job_witness_put(job, peer->area, has_held ? (int64_t)held : -1,
	    got, got_root, b.note, b.note_len) < 0) {
		store_job_free(job);
		gw_reply_error(r, 503, "unavailable", "cannot store the "
		    "checkpoint");
		goto out;
	}
	gw_submit(r, job, put_done);
out:
	note_verifier_free(v);
	cJSON_Delete(root);
}

typedef struct {
	buf_t *out;
	const char *only;	/* NULL: every area */
	size_t n;
	int failed;
} list_ctx_t;

/* Append len bytes of a note as a JSON string.  0 or -1. */
static int
append_note(buf_t *out, const char *note, size_t len)
{
	char *text;
	int rc;

	if ((text = malloc(len + 1)) == NULL)
		return -1;
	memcpy(text, note, len);
	text[len] = '\0';
	rc = json_append_string(out, text);
	free(text);
	return rc;
}

static int
list_one(void *ctx, const store_witnessed_t *w)
{
	list_ctx_t *c = ctx;

	if (c->only != NULL && strcmp(w->area, c->only) != 0)
		return 0;
	if (buf_printf(c->out, "%s{\"area\":", c->n ? "," : "") < 0 ||
	    json_append_string(c->out, w->area) < 0 ||
	    buf_printf(c->out, ",\"size\":%" PRIu64 ",\"received_at\":",
	    w->size) < 0 || json_append_string(c->out, w->time) < 0 ||
	    buf_puts(c->out, ",\"checkpoint\":") < 0 ||
	    append_note(c->out, w->note, w->note_len) < 0)
		c->failed = 1;
	/* The evidence of the alarm: refused, and signed by the same key. */
	if (!c->failed && w->refused != NULL &&
	    (buf_puts(c->out, ",\"refused\":{\"received_at\":") < 0 ||
	    json_append_string(c->out, w->refused_time) < 0 ||
	    buf_puts(c->out, ",\"checkpoint\":") < 0 ||
	    append_note(c->out, w->refused, w->refused_len) < 0 ||
	    buf_puts(c->out, "}") < 0))
		c->failed = 1;
	if (!c->failed && buf_puts(c->out, "}") < 0)
		c->failed = 1;
	c->n++;
	return c->failed ? -1 : 0;
}

void
route_audit_witnessed(gw_request_t *r, int own_auditor)
{
	const identity_t *id = gw_req_identity(r);
	static const char *const keys[] = { NULL };
	buf_t out = BUF_INIT;
	list_ctx_t c;

	if (gw_req_query_only(r, keys) < 0) {
		gw_reply_error(r, 400, "bad-query", "witnessed takes no query "
		    "parameters");
		return;
	}
	memset(&c, 0, sizeof(c));
	c.out = &out;
	/* Another area's auditor sees its own area's checkpoint only. */
	c.only = own_auditor ? NULL : id->area;
	buf_puts(&out, "{\"witnessed\":[");
	if (store_witness_list(gw_req_reader(r), list_one, &c) < 0 || c.failed) {
		gw_reply_error(r, 503, "store-unavailable", "cannot read the "
		    "witnessed checkpoints");
	} else {
		buf_puts(&out, "]}");
		gw_reply(r, 200, NULL, out.data, out.len);
	}
	buf_free(&out);
}
