/*
 * /v1/audit/...: the auditor API of SPEC section 5.  This area's auditors
 * may read everything here; peer gateways may fetch the checkpoint and
 * consistency proofs (to watch each other's logs); a peer area's
 * auditors may fetch the checkpoint of their own area's log this gateway
 * witnesses (witnessed, routes_witness.c); everyone else gets 403.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/proof_json.h"
#include "gateway/gateway.h"
#include "gateway/gen.h"
#include "gateway/reqctx.h"
#include "gateway/routes.h"
#include "gateway/store.h"
#include "util/b64.h"
#include "util/buf.h"

#define ENTRIES_MAX 1000

/* A page of ENTRIES_MAX entries of the largest size (64 KiB each, about
 * 83 MiB in base64) is answered whole: the answer buffer takes what the
 * auditors' tools read (PROOF_JSON_MAX_BODY), not buf_t's default 64 MiB,
 * past which such a page failed as 503 every time and the log could not
 * be verified past it. */
_Static_assert(ENTRIES_MAX == PROOF_JSON_MAX_ENTRIES,
    "a page is what visorctl reads");

/*
 * Each endpoint's parameters, each at most once, the filters not empty:
 * otherwise one of two values would be taken silently, a misspelt filter
 * ignored (an unfiltered answer) and an empty one match nothing.  0 or -1;
 * an unknown endpoint is left to the 404 below.
 */
static int
query_strict(gw_request_t *r, const char *what)
{
	static const struct {
		const char *what;
		const char *keys[7];
	} params[] = {
		{ "checkpoint", { NULL } },
		{ "entries", { "start", "end", NULL } },
		{ "proof/inclusion", { "index", "size", NULL } },
		{ "proof/consistency", { "from", "to", NULL } },
		{ "search", { "record", "actor", "op", "since", "until",
		    "start", NULL } },
	};
	static const char *const filters[] = { "record", "actor", "op" };
	const char *v;
	size_t i;

	for (i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		if (strcmp(what, params[i].what) == 0)
			break;
	if (i == sizeof(params) / sizeof(params[0]))
		return 0;
	if (gw_req_query_only(r, params[i].keys) < 0)
		return -1;
	for (i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		if ((v = gw_req_query(r, filters[i])) != NULL && v[0] == '\0')
			return -1;
	return 0;
}

typedef struct {
	buf_t *out;
	size_t n;
	uint64_t last;		/* index of the last entry appended */
	int failed;
} entries_ctx_t;

static int
append_entry(void *ctx, uint64_t index, const void *leaf, size_t len)
{
	entries_ctx_t *c = ctx;
	char *b64;

	if ((b64 = malloc(B64_ENCODED_SIZE(len))) == NULL) {
		c->failed = 1;
		return -1;
	}
	b64_encode(leaf, len, b64);
	if (buf_printf(c->out, "%s{\"index\":%llu,\"data\":\"%s\"}",
	    c->n ? "," : "", (unsigned long long)index, b64) < 0)
		c->failed = 1;
	free(b64);
	c->n++;
	c->last = index;
	return c->failed ? -1 : 0;
}

static void
reply_proof(gw_request_t *r, const char *k1, uint64_t v1, const char *k2,
    uint64_t v2, const merkle_hash_t *proof, size_t n)
{
	buf_t out = BUF_INIT;
	char b64[B64_ENCODED_SIZE(MERKLE_HASH_LEN)];
	size_t i;

	buf_printf(&out, "{\"%s\":%llu,\"%s\":%llu,\"proof\":[", k1,
	    (unsigned long long)v1, k2, (unsigned long long)v2);
	for (i = 0; i < n; i++) {
		b64_encode(proof[i], MERKLE_HASH_LEN, b64);
		buf_printf(&out, "%s\"%s\"", i ? "," : "", b64);
	}
	buf_puts(&out, "]}");
	gw_reply(r, 200, NULL, out.data, out.len);
	buf_free(&out);
}

void
route_audit(gw_request_t *r, const char *what)
{
	const identity_t *id = gw_req_identity(r);
	store_reader_t *rd = gw_req_reader(r);
	gateway_t *gw = gw_req_gateway(r);
	uint64_t size = store_audit_size(gw->store), a = 0, b = 0;
	merkle_hash_t proof[MERKLE_MAX_PROOF];
	size_t n = 0;
	buf_t out = BUF_INIT;
	entries_ctx_t ec;
	store_audit_query_t q;
	int peer_ok = strcmp(what, "checkpoint") == 0 ||
	    strcmp(what, "proof/consistency") == 0;
	audit_entry_t e;
	int rc;

	/* Auditors of this area (another area's auditors audit their own
	 * gateway); gateways only as this area's or a configured peer. */
	int own_area = strcmp(id->area, gw->cfg->area) == 0;
	/* The checkpoints this gateway witnesses for its peers: a peer
	 * area's auditors may fetch their own area's (visorctl audit verify
	 * --witness), which is what that area's gateway signed and sent. */
	int witness_ok = strcmp(what, "witnessed") == 0 &&
	    id->kind == IDENTITY_AUDITOR && !own_area &&
	    config_peer(gw_req_gen(r)->cfg, id->area) != NULL;

	if (!(id->kind == IDENTITY_AUDITOR && own_area) && !witness_ok &&
	    !(peer_ok && id->kind == IDENTITY_GATEWAY &&
	    (own_area || config_peer(gw_req_gen(r)->cfg, id->area) != NULL))) {
		reqctx_audit_base(r, NULL, &e);
		e.op = "deny";
		e.result = "denied";
		e.reason = "not-an-auditor";
		reqctx_audit_then_error(r, &e, 403, "forbidden",
		    "the audit API is for auditor identities");
		return;
	}
	if (strcmp(what, "witnessed") == 0) {
		route_audit_witnessed(r, own_area);
		return;
	}
	buf_init(&out, PROOF_JSON_MAX_BODY);
	if (query_strict(r, what) < 0) {
		gw_reply_error(r, 400, "bad-query", "a query parameter is "
		    "repeated, empty or not one this endpoint takes");
	} else if (strcmp(what, "checkpoint") == 0) {
		rc = store_checkpoint_latest(rd, &out);
		if (rc == 0)
			gw_reply(r, 200, "text/plain; charset=utf-8", out.data, out.len);
		else if (rc == 1)
			gw_reply_error(r, 404, "no-checkpoint", "no checkpoint signed yet");
		else
			gw_reply_error(r, 503, "store-unavailable", "cannot read the log");
	} else if (strcmp(what, "entries") == 0) {
		if (routes_query_u64(r, "start", &a, 1) < 0 || routes_query_u64(r, "end", &b, 1) < 0 ||
		    a >= b || b - a > ENTRIES_MAX) {
			gw_reply_error(r, 400, "bad-range",
			    "start and end are required, start < end, at most %d entries",
			    ENTRIES_MAX);
		} else if (b > size) {
			gw_reply_error(r, 400, "bad-range",
			    "end %llu is beyond the log size %llu",
			    (unsigned long long)b, (unsigned long long)size);
		} else {
			memset(&ec, 0, sizeof(ec));
			ec.out = &out;
			buf_puts(&out, "{\"entries\":[");
			if (store_audit_entries(rd, a, b, append_entry, &ec) < 0 || ec.failed) {
				gw_reply_error(r, 503, "store-unavailable", "cannot read the log");
			} else {
				buf_puts(&out, "]}");
				gw_reply(r, 200, NULL, out.data, out.len);
			}
		}
	} else if (strcmp(what, "proof/inclusion") == 0) {
		if (routes_query_u64(r, "index", &a, 1) < 0 || routes_query_u64(r, "size", &b, 1) < 0 ||
		    a >= b || b > size)
			gw_reply_error(r, 400, "bad-range",
			    "index < size <= the log size (%llu) are required",
			    (unsigned long long)size);
		else if (store_audit_inclusion(rd, a, b, proof, &n) < 0)
			gw_reply_error(r, 503, "store-unavailable", "cannot build the proof");
		else
			reply_proof(r, "index", a, "size", b, proof, n);
	} else if (strcmp(what, "proof/consistency") == 0) {
		if (routes_query_u64(r, "from", &a, 1) < 0 || routes_query_u64(r, "to", &b, 1) < 0 ||
		    a == 0 || a > b || b > size)
			gw_reply_error(r, 400, "bad-range",
			    "0 < from <= to <= the log size (%llu) are required",
			    (unsigned long long)size);
		else if (store_audit_consistency(rd, a, b, proof, &n) < 0)
			gw_reply_error(r, 503, "store-unavailable", "cannot build the proof");
		else
			reply_proof(r, "from", a, "to", b, proof, n);
	} else if (strcmp(what, "search") == 0) {
		memset(&q, 0, sizeof(q));
		q.record = gw_req_query(r, "record");
		q.actor = gw_req_query(r, "actor");
		q.op = gw_req_query(r, "op");
		q.since = gw_req_query(r, "since");
		q.until = gw_req_query(r, "until");
		q.limit = ENTRIES_MAX;
		q.below = size;		/* the size this answer names */
		q.bounded = 1;
		memset(&ec, 0, sizeof(ec));
		ec.out = &out;
		buf_printf(&out, "{\"size\":%llu,\"entries\":[", (unsigned long long)size);
		/* Paging: start is the first index to look at; an answer cut
		 * at ENTRIES_MAX says where the next page starts ("next"). */
		rc = routes_query_u64(r, "start", &q.from, 0) < 0 ? STORE_BAD_QUERY :
		    store_audit_search(rd, &q, append_entry, &ec);
		if (rc == STORE_BAD_QUERY) {
			gw_reply_error(r, 400, "bad-query", "since and until are "
			    "UTC dates or times (YYYY-MM-DD, YYYY-MM-DDThh:mm:ss[.mmm]Z); "
			    "record, actor and op are bounded; start is an index");
		} else if (rc < 0 || ec.failed) {
			gw_reply_error(r, 503, "store-unavailable", "cannot search the log");
		} else {
			buf_puts(&out, "]");
			if (ec.n == ENTRIES_MAX)
				buf_printf(&out, ",\"next\":%llu",
				    (unsigned long long)ec.last + 1);
			buf_puts(&out, "}");
			gw_reply(r, 200, NULL, out.data, out.len);
		}
	} else {
		gw_reply_error(r, 404, "not-found", "no such audit resource");
	}
	buf_free(&out);
}
