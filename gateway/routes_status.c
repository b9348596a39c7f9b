/*
 * routes_status: GET /v1/status, the operator's summary of a running
 * gateway (docs/SPEC-NOTES.md): version, uptime, audit log size and
 * checkpoint age, certificate and CRL expiry, and per peer the outbox and
 * the outcome of the last delivery attempt.  It reveals no record data;
 * callers are the gateway's own auditors and police agencies.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "gateway/audit_entry.h"
#include "gateway/gateway.h"
#include "gateway/gen.h"
#include "gateway/outbox.h"
#include "gateway/reqctx.h"
#include "gateway/routes.h"
#include "gateway/store.h"
#include "gateway/version.h"
#include "util/json.h"

typedef struct {
	const char *area;
	uint64_t depth;
	int64_t oldest_ms;
	int found;
} depth_ctx_t;

static void
depth_cb(void *ctx, const char *area, uint64_t depth, int64_t oldest_ms)
{
	depth_ctx_t *d = ctx;

	if (strcmp(area, d->area) != 0)
		return;
	d->depth = depth;
	d->oldest_ms = oldest_ms;
	d->found = 1;
}

static const char *
state_name(int state)
{
	switch (state) {
	case OUTBOX_PEER_DELIVERED: return "delivered";
	case OUTBOX_PEER_REJECTED: return "rejected";
	case OUTBOX_PEER_ERROR: return "error";
	default: return "none";
	}
}

/* Whole days, rounded down (an expiry 11.9 days away is "11 days"). */
static double
days_until(long not_after, time_t now)
{
	return (double)((not_after - (long)now) / 86400);
}

static int
add_peers(gw_request_t *r, cJSON *root, const config_t *cfg)
{
	gateway_t *gw = gw_req_gateway(r);
	outbox_peer_state_t st[CONFIG_MAX_PEERS];
	size_t n = outbox_peer_states(gw->outbox, st, CONFIG_MAX_PEERS), i, k;
	cJSON *arr, *p;
	depth_ctx_t d;
	long long now = gw_mono_ms();	/* the outbox's times are monotonic */

	if ((arr = cJSON_AddArrayToObject(root, "peers")) == NULL)
		return -1;
	for (i = 0; i < cfg->n_peers; i++) {
		const outbox_peer_state_t *ps = NULL;

		for (k = 0; k < n; k++)
			if (strcmp(st[k].area, cfg->peers[i].area) == 0)
				ps = &st[k];
		memset(&d, 0, sizeof(d));
		d.area = cfg->peers[i].area;
		if (store_outbox_stats(gw_req_reader(r), depth_cb, &d) < 0)
			return -1;
		if ((p = cJSON_CreateObject()) == NULL ||
		    !cJSON_AddItemToArray(arr, p) ||
		    cJSON_AddStringToObject(p, "area", cfg->peers[i].area) == NULL ||
		    cJSON_AddStringToObject(p, "url", cfg->peers[i].url) == NULL ||
		    cJSON_AddNumberToObject(p, "outbox_depth", (double)d.depth) == NULL ||
		    cJSON_AddNumberToObject(p, "oldest_s",
		    d.found ? (double)(d.oldest_ms / 1000) : 0) == NULL)
			return -1;
		if (ps == NULL || ps->state == OUTBOX_PEER_UNKNOWN) {
			if (cJSON_AddNullToObject(p, "last_delivery_ok") == NULL ||
			    cJSON_AddStringToObject(p, "last_delivery", "none") == NULL)
				return -1;
			continue;
		}
		if (cJSON_AddBoolToObject(p, "last_delivery_ok",
		    ps->state == OUTBOX_PEER_DELIVERED) == NULL ||
		    cJSON_AddStringToObject(p, "last_delivery",
		    state_name(ps->state)) == NULL ||
		    cJSON_AddNumberToObject(p, "last_attempt_s",
		    (double)((now - ps->last_ms) / 1000)) == NULL ||
		    (ps->error[0] != '\0' &&
		    cJSON_AddStringToObject(p, "last_error", ps->error) == NULL))
			return -1;
		/* Down, with transfers waiting: one is tried at this time. */
		if (ps->probe_ms > 0 && d.depth > 0 &&
		    cJSON_AddNumberToObject(p, "next_probe_s",
		    ps->probe_ms > now ? (double)((ps->probe_ms - now + 999) /
		    1000) : 0) == NULL)
			return -1;
	}
	return 0;
}

static int
add_files(cJSON *root, const gw_gen_t *g, time_t now)
{
	const tls_expiry_t *te;
	size_t n = tls_context_expiries(g->tls, &te), i;
	cJSON *arr, *f;

	if ((arr = cJSON_AddArrayToObject(root, "files")) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if ((f = cJSON_CreateObject()) == NULL ||
		    !cJSON_AddItemToArray(arr, f) ||
		    cJSON_AddStringToObject(f, "role", te[i].role) == NULL ||
		    cJSON_AddStringToObject(f, "file", te[i].file) == NULL)
			return -1;
		if (te[i].not_after < 0) {
			if (cJSON_AddNullToObject(f, "expiry_days") == NULL)
				return -1;
		} else if (cJSON_AddNumberToObject(f, "expiry_days",
		    days_until(te[i].not_after, now)) == NULL) {
			return -1;
		}
	}
	return 0;
}

void
route_status(gw_request_t *r)
{
	const identity_t *id = gw_req_identity(r);
	gateway_t *gw = gw_req_gateway(r);
	gw_gen_t *g = gw_req_gen(r);
	time_t now = time(NULL);
	int64_t age = store_checkpoint_age_ms(gw->store);
	long cert_s = tls_context_cert_expiry_s(g->tls);
	long crl_s = tls_context_crl_expiry_s(g->tls);
	audit_entry_t e;
	cJSON *root;
	char *text;

	if (strcmp(id->area, g->cfg->area) != 0 ||
	    !(id->kind == IDENTITY_AUDITOR ||
	    (id->kind == IDENTITY_AGENCY && strcmp(id->type, "police") == 0))) {
		reqctx_audit_base(r, NULL, &e);
		e.op = "deny";
		e.result = "denied";
		e.reason = "not-an-operator";
		reqctx_audit_then_error(r, &e, 403, "forbidden",
		    "status is for this area's auditors and police");
		return;
	}
	if ((root = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(root, "version", visor_version()) == NULL ||
	    cJSON_AddStringToObject(root, "area", g->cfg->area) == NULL ||
	    cJSON_AddNumberToObject(root, "uptime_s",
	    (double)((gw_mono_ms() - gw->started_ms) / 1000)) == NULL ||
	    cJSON_AddNumberToObject(root, "audit_size",
	    (double)store_audit_size(gw->store)) == NULL ||
	    cJSON_AddNumberToObject(root, "checkpoint_size",
	    (double)store_checkpoint_size(gw->store)) == NULL ||
	    (age < 0 ? cJSON_AddNullToObject(root, "checkpoint_age_s") :
	    cJSON_AddNumberToObject(root, "checkpoint_age_s",
	    (double)(age / 1000))) == NULL ||
	    (cert_s < 0 ? cJSON_AddNullToObject(root, "certificate_expiry_days") :
	    cJSON_AddNumberToObject(root, "certificate_expiry_days",
	    (double)(cert_s / 86400))) == NULL ||
	    (crl_s < 0 ? cJSON_AddNullToObject(root, "crl_expiry_days") :
	    cJSON_AddNumberToObject(root, "crl_expiry_days",
	    (double)(crl_s / 86400))) == NULL ||
	    add_files(root, g, now) < 0 || add_peers(r, root, g->cfg) < 0 ||
	    (text = json_print(root)) == NULL) {
		cJSON_Delete(root);
		gw_reply_error(r, 503, "unavailable", "cannot build the status");
		return;
	}
	cJSON_Delete(root);
	gw_reply(r, 200, NULL, text, strlen(text));
	cJSON_free(text);
}
