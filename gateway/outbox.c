#include "gateway/outbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "client/https_client.h"
#include "crypto/sha256.h"
#include "crypto/sig.h"
#include "gateway/gen.h"
#include "gateway/metrics.h"
#include "gateway/reqctx.h"
#include "gateway/request.h"
#include "gateway/store.h"
#include "gateway/transfer_proto.h"
#include "gateway/witness.h"
#include "util/json.h"
#include "util/log.h"
#include "util/monotime.h"

#define DUE_BATCH 64
#define IDLE_WAIT_MS 500
/* Past the latest a retry can be set for (retry_max_ms from when it was
 * set), the margin after which a retry time says the clock went back. */
#define RETRY_SLACK_MS 1000
/* The most of a peer's answer that is read: a signed receipt (its text,
 * signature and the receiver's certificate) or an error body is a few
 * KiB.  A refusal's body is kept in the outbox: with the client's 16 MiB
 * default a hostile peer could fill this gateway's disk, and so stop its
 * audit log, with a few hundred refused transfers.  A larger answer is
 * no answer (retried until the deadline). */
#define PEER_ANSWER_MAX (64u << 10)

typedef struct peer_worker peer_worker_t;

struct outbox {
	gateway_t *gw;
	peer_worker_t *peers;
	size_t n_peers;		/* the configured peers, then unconfigured */
	size_t n_configured;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_int stopping;
	unsigned kicks;
	store_reader_t *stats_reader;
	pthread_mutex_t stats_lock;
	witness_t *witness;	/* sends our checkpoints to the peers */
};

struct peer_worker {
	outbox_t *o;
	char area[40];
	char url[300];
	pthread_t thread;
	int started;
	/* Not a configured peer (any more): transfers to it were queued
	 * before a restart that took it out of the configuration.  Nothing
	 * is sent; each still fails at its deadline (SPEC 9). */
	int unconfigured;
	uint64_t unconfigured_depth;	/* queued when the gateway started */
	/* Outcomes handed to the store and not yet durable: the next due
	 * query waits for them, or it would see those transfers again. */
	pthread_mutex_t out_lock;
	pthread_cond_t out_cond;
	unsigned out_pending;
	unsigned out_failed;	/* outcomes the store could not record */
	/* Outcome of the last delivery attempt, for /v1/status (under o->lock). */
	int last_state;		/* OUTBOX_PEER_* */
	long long last_ms;
	char last_error[160];
	/* The peer as a whole (peer thread only, but probe_ms under o->lock):
	 * down counts rounds in a row in which the peer answered nothing
	 * (connect, TLS, timeout, 5xx, 408, 425, 429).  While it is down, one due
	 * transfer is tried (the probe) every backoff_ms(down), instead of
	 * every queued transfer on its own backoff: a long outage would
	 * otherwise cost a signature, a connection attempt, a store write
	 * and a log line per queued transfer each minute.  Transfers past
	 * their deadline are still failed on time (expire_overdue). */
	unsigned down;
	long long probe_ms;	/* gw_mono_ms() of the next probe; 0: not down */
	int round_reached;	/* in this round, the peer answered */
	int round_unavailable;	/* in this round, an attempt got no answer */
};

/* One outcome on its way to the store. */
typedef struct {
	peer_worker_t *pw;
	char transfer_id[80];
	char status[16];
	char reason[48];	/* of a failure */
} outcome_t;

/* One delivery in flight. */
typedef struct {
	peer_worker_t *pw;
	store_transfer_t t;
	buf_t sig;
	char digest[65];
	const char *hdrs[4];
	char sig_hdr[256];
} delivery_t;

static void
outcome_done(void *arg, const store_result_t *r)
{
	outcome_t *oc = arg;
	peer_worker_t *pw = oc->pw;

	if (r->status == STORE_NOT_FOUND) {
		/* Cancelled by the record's erasure while in flight: it is
		 * not queued again (store.c W_OUT_UPD), and not a disk fault
		 * to back off from. */
		log_event(LOG_INFO, "transfer-cancelled", "transfer",
		    oc->transfer_id, "reason", "record-erased", NULL);
	} else if (r->status != STORE_OK) {
		log_event(LOG_ERROR, "outbox-update-failed", "transfer",
		    oc->transfer_id, "status", oc->status, NULL);
		pthread_mutex_lock(&pw->out_lock);
		pw->out_failed++;
		pthread_mutex_unlock(&pw->out_lock);
	} else if (strcmp(oc->status, "delivered") == 0) {
		/* Logged once durable: "delivered" means the receipt is kept. */
		log_event(LOG_INFO, "transfer-delivered", "transfer",
		    oc->transfer_id, "peer", pw->area, NULL);
	} else if (strcmp(oc->status, "failed") == 0) {
		log_event(LOG_WARN, "transfer-failed", "transfer",
		    oc->transfer_id, "peer", pw->area, "reason", oc->reason,
		    NULL);
	}
	free(oc);
	pthread_mutex_lock(&pw->out_lock);
	pw->out_pending--;
	pthread_cond_broadcast(&pw->out_cond);
	pthread_mutex_unlock(&pw->out_lock);
}

/* Hand job to the store without waiting: many outcomes then share one
 * group commit instead of one fsync each on the delivery thread. */
static int
submit_outcome(peer_worker_t *pw, store_job_t *job, const char *transfer_id,
    const char *status, const char *reason)
{
	outcome_t *oc = calloc(1, sizeof(*oc));

	if (oc == NULL)
		return -1;
	oc->pw = pw;
	snprintf(oc->transfer_id, sizeof(oc->transfer_id), "%s", transfer_id);
	snprintf(oc->status, sizeof(oc->status), "%s", status);
	snprintf(oc->reason, sizeof(oc->reason), "%s", reason ? reason : "");
	pthread_mutex_lock(&pw->out_lock);
	pw->out_pending++;
	pthread_mutex_unlock(&pw->out_lock);
	store_submit(pw->o->gw->store, job, outcome_done, oc);
	return 0;
}

/* Wait until every submitted outcome is durable (or failed).  Returns how
 * many of them failed. */
static unsigned
outcomes_wait(peer_worker_t *pw)
{
	unsigned failed;

	pthread_mutex_lock(&pw->out_lock);
	while (pw->out_pending > 0)
		pthread_cond_wait(&pw->out_cond, &pw->out_lock);
	failed = pw->out_failed;
	pw->out_failed = 0;
	pthread_mutex_unlock(&pw->out_lock);
	return failed;
}

static long long
backoff_ms(const config_t *cfg, unsigned attempts)
{
	unsigned long long d = cfg->retry_base_ms;
	unsigned i;
	uint32_t r = 0;

	for (i = 1; i < attempts && d < cfg->retry_max_ms; i++)
		d *= 2;
	if (d > cfg->retry_max_ms)
		d = cfg->retry_max_ms;
	/* Full jitter on the upper half: peers recovering from an outage are
	 * not hit by every sender at once. */
	RAND_bytes((unsigned char *)&r, sizeof(r));
	return (long long)(d / 2 + r % (d / 2 + 1));
}

/* Hand a delivery's outcome to the store.  0, or -1 when the job could
 * not even be built or handed on (logged): the caller counts it lost. */
static int
record_outcome(peer_worker_t *pw, delivery_t *dv, const char *status,
    const char *op, const char *result, const char *reason,
    const char *receipt, size_t receipt_len, unsigned attempts,
    long long next_ms)
{
	outbox_t *o = pw->o;
	char recipient[IDENTITY_URI_MAX], from[IDENTITY_URI_MAX];
	audit_entry_t e;
	store_job_t *job;
	gw_gen_t *g = gw_gen_current();

	snprintf(recipient, sizeof(recipient), "urn:visor:%s:gateway", pw->area);
	snprintf(from, sizeof(from), "urn:visor:%s:gateway", o->gw->cfg->area);
	if ((job = store_job_new()) == NULL)
		goto fail;
	if (store_job_outbox_update(job, dv->t.transfer_id, status, attempts,
	    next_ms, receipt, receipt_len) < 0)
		goto fail;
	if (op != NULL) {
		memset(&e, 0, sizeof(e));
		e.op = op;
		e.actor_id = from;
		e.record = dv->t.record_id;
		e.purpose = dv->t.purpose;
		e.recipient = recipient;
		e.result = result;
		e.reason = reason;
		e.digest = dv->digest[0] != '\0' ? dv->digest : NULL;
		e.transfer = dv->t.transfer_id;
		e.policy = g ? g->policy_hash : NULL;
		if (store_job_audit(job, &e) < 0)
			goto fail;
	}
	gw_gen_unref(g);
	if (submit_outcome(pw, job, dv->t.transfer_id, status, reason) < 0) {
		store_job_free(job);
		log_event(LOG_ERROR, "outbox-update-failed", "transfer",
		    dv->t.transfer_id, "status", status, NULL);
		return -1;
	}
	return 0;
fail:
	gw_gen_unref(g);
	store_job_free(job);
	log_event(LOG_ERROR, "outbox-update-failed", "transfer", dv->t.transfer_id,
	    NULL);
	return -1;
}

static void
note_attempt(peer_worker_t *pw, int state, const char *error)
{
	pthread_mutex_lock(&pw->o->lock);
	pw->last_state = state;
	pw->last_ms = gw_mono_ms();
	snprintf(pw->last_error, sizeof(pw->last_error), "%.*s",
	    (int)sizeof(pw->last_error) - 1, error ? error : "");
	pthread_mutex_unlock(&pw->o->lock);
}

static void
delivery_free(delivery_t *dv)
{
	buf_free(&dv->t.payload);
	buf_free(&dv->t.receipt);
	buf_free(&dv->sig);
	free(dv);
}

/* A delivery for a row the store handed out, taking its buffers (freed
 * here if it cannot be made), with the digest of its payload when the
 * payload opened.  NULL out of memory. */
static delivery_t *
delivery_new(peer_worker_t *pw, store_transfer_t *t)
{
	delivery_t *dv;

	if ((dv = calloc(1, sizeof(*dv))) == NULL) {
		buf_free(&t->payload);
		buf_free(&t->receipt);
		return NULL;
	}
	dv->pw = pw;
	dv->t = *t;
	if (!dv->t.unreadable)
		sha256_hex(dv->t.payload.data, dv->t.payload.len, dv->digest);
	return dv;
}

/* "peer-<status>:<error code>" for the audit reason of a rejection, from
 * the receiver's SPEC error body when it has one. */
static void
peer_error_code(const https_response_t *resp, char *out, size_t outlen)
{
	char err[64];
	cJSON *o;
	const char *code = NULL;

	o = json_parse_strict(resp->body.data, resp->body.len, 4, err,
	    sizeof(err));
	if (o != NULL && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o,
	    "error")))
		code = json_get_str(cJSON_GetObjectItemCaseSensitive(o, "error"),
		    "code");
	if (code != NULL && strlen(code) <= 48 && strspn(code,
	    "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(code))
		snprintf(out, outlen, "peer-%ld:%s", resp->status, code);
	else
		snprintf(out, outlen, "peer-%ld", resp->status);
	cJSON_Delete(o);
}

/* Past its deadline: the transfer fails, audited (and logged once durable,
 * outcome_done). */
static int
fail_deadline(peer_worker_t *pw, delivery_t *dv, unsigned attempts)
{
	return record_outcome(pw, dv, "failed", "transfer-out", "failed",
	    "deadline", NULL, 0, attempts, 0);
}

/*
 * Policy again at delivery.  The payload was filtered for this peer when
 * the transfer was queued (SPEC 9, step 2); the policy or the peer's
 * clearances may have changed since (clearance ct withdrawn on a SIGHUP
 * while a category 4 transfer waits for the peer).  A payload the current
 * policy would not pass to this peer as it is is not sent: 1 send, 0 not,
 * -1 if it could not be decided.
 */
static int
still_permitted(peer_worker_t *pw, const gw_gen_t *g, const delivery_t *dv)
{
	transfer_body_t tb;
	policy_request_t pr;
	policy_decision_t *d = NULL;
	identity_t peer;
	char uri[IDENTITY_URI_MAX], today[11], err[128];
	size_t nw = 0;
	int ok = -1;

	memset(&tb, 0, sizeof(tb));
	snprintf(uri, sizeof(uri), "urn:visor:%s:gateway", pw->area);
	if (identity_parse(uri, strlen(uri), &peer, err, sizeof(err)) < 0 ||
	    transfer_body_parse(dv->t.payload.data, dv->t.payload.len,
	    g->cfg->max_json_depth, &tb, err, sizeof(err)) < 0 ||
	    reqctx_today(today) < 0)
		goto out;
	memset(&pr, 0, sizeof(pr));
	pr.op = POLICY_OP_TRANSFER;
	pr.caller = &peer;
	pr.n_clearances = config_clearances_for(g->cfg, uri, &pr.clearances);
	pr.purpose = tb.purpose;
	pr.local_area = g->cfg->area;
	pr.today = today;
	pr.no_explanation = 1;
	if (policy_filter(g->policy, &pr, tb.record, &d) < 0)
		goto out;
	(void)policy_decision_withheld(d, &nw);
	/* Filtering is idempotent: what passed before passes unchanged. */
	ok = policy_decision_allowed(d) && nw == 0 &&
	    cJSON_Compare(policy_decision_record(d), tb.record, 1);
out:
	policy_decision_free(d);
	transfer_body_free(&tb);
	return ok;
}

/* The policy no longer lets this peer have the payload: the transfer
 * fails, audited (and logged once durable, outcome_done), never sent. */
static int
fail_policy_changed(peer_worker_t *pw, delivery_t *dv)
{
	return record_outcome(pw, dv, "failed", "transfer-out", "failed",
	    "policy-changed", NULL, 0, dv->t.attempts, 0);
}

/* Its payload did not open: damaged at rest, or the data key is not the
 * one it was sealed with (store.key replaced or restored wrongly).  The
 * second can be put right, so nothing is failed or lost: the transfer is
 * not sent, goes to the back of the queue for retry_max_ms, so that it
 * cannot hold up the others, and fails only at its deadline, like any
 * transfer that cannot be delivered. */
static int
defer_unreadable(peer_worker_t *pw, delivery_t *dv)
{
	log_event(LOG_ERROR, "transfer-unreadable", "transfer",
	    dv->t.transfer_id, "peer", pw->area, "error",
	    "the stored payload does not open (damaged, or store.key is not "
	    "the store's): not sent, tried again later", NULL);
	return record_outcome(pw, dv, "queued", NULL, NULL, NULL, NULL, 0,
	    dv->t.attempts, gw_now_ms() + (long long)pw->o->gw->cfg->retry_max_ms);
}

/*
 * Is a peer's answer with this status retried (until the deadline) rather
 * than final?  5xx as SPEC 9 says, and three 4xx that say "not now"
 * rather than "not this transfer" (a departure from SPEC 9, whose 4xx are
 * final; docs/SPEC-NOTES.md): 408 (the server timed the request out), 429
 * (overloaded, SPEC 5), 425 (too early: sent_at ahead of the receiver's
 * clock, as a receiver of the first build with the check answered; ours
 * now answers 503, transfer_proto.h).  Each
 * counts as the peer answering nothing (peer_round_done).
 */
static int
peer_status_retried(long status)
{
	return status >= 500 || status == 408 || status == 425 ||
	    status == 429;
}

static void
delivery_done(void *arg, const https_result_t *res)
{
	delivery_t *dv = arg;
	peer_worker_t *pw = dv->pw;
	const config_t *cfg = pw->o->gw->cfg;
	unsigned attempts = dv->t.attempts + 1;
	long long now = gw_now_ms();
	char why[300], expect[IDENTITY_URI_MAX], code[80];
	transfer_receipt_t rc;
	gw_gen_t *g;

	if (res->stopped) {
		/* Cut off by the gateway's stop (outbox_free), not failed:
		 * no attempt is counted and nothing is recorded, so the
		 * transfer stays due and goes out after the restart (a peer
		 * that had it answers the repeat with the same receipt). */
		log_event(LOG_INFO, "delivery-interrupted", "transfer",
		    dv->t.transfer_id, "peer", pw->area, "reason", "stopping",
		    NULL);
		delivery_free(dv);
		return;
	}
	snprintf(expect, sizeof(expect), "urn:visor:%s:gateway", pw->area);
	if (res->rc != 0 || peer_status_retried(res->resp->status))
		pw->round_unavailable = 1;
	else
		pw->round_reached = 1;
	if (res->rc == 0 && res->resp->status == 200) {
		g = gw_gen_current();
		if (g != NULL && transfer_receipt_verify(res->resp->body.data,
		    res->resp->body.len, tls_context_trust(g->tls), expect,
		    dv->t.transfer_id, dv->digest, &rc, why, sizeof(why)) == 0) {
			gw_gen_unref(g);
			note_attempt(pw, OUTBOX_PEER_DELIVERED, NULL);
			record_outcome(pw, dv, "delivered", "receipt", "ok", NULL,
			    res->resp->body.data, res->resp->body.len, attempts, 0);
			delivery_free(dv);
			return;
		}
		gw_gen_unref(g);
		note_attempt(pw, OUTBOX_PEER_ERROR, "the receipt did not verify");
		/* A bad receipt is not proof of delivery: retry. */
		log_event(LOG_WARN, "receipt-refused", "transfer", dv->t.transfer_id,
		    "peer", pw->area, "error", why, NULL);
	} else if (res->rc == 0 && res->resp->status >= 400 &&
	    !peer_status_retried(res->resp->status)) {
		peer_error_code(res->resp, code, sizeof(code));
		note_attempt(pw, OUTBOX_PEER_REJECTED, code);
		metrics_delivery_failure(pw->area);
		record_outcome(pw, dv, "rejected", "transfer-out", "rejected", code,
		    res->resp->body.data, res->resp->body.len, attempts, 0);
		log_event(LOG_WARN, "transfer-rejected", "transfer", dv->t.transfer_id,
		    "peer", pw->area, "status", code, NULL);
		delivery_free(dv);
		return;
	} else {
		/* An answer says which ("peer-503:sent-at-ahead"), for the
		 * log and /v1/status. */
		if (res->rc == 0)
			peer_error_code(res->resp, why, sizeof(why));
		note_attempt(pw, OUTBOX_PEER_ERROR, res->rc == 0 ? why : res->err);
		log_event(LOG_INFO, "delivery-retry", "transfer", dv->t.transfer_id,
		    "peer", pw->area, "error", res->rc == 0 ? why : res->err,
		    NULL);
	}
	metrics_delivery_failure(pw->area);
	if (now >= dv->t.deadline_ms) {
		fail_deadline(pw, dv, attempts);
	} else {
		record_outcome(pw, dv, "queued", NULL, NULL, NULL, NULL, 0, attempts,
		    now + backoff_ms(cfg, attempts));
	}
	delivery_free(dv);
}

/* A client with generation g's certificate, key, root and CRLs, all as g
 * loaded them, not the files again.  The certificate and key: a rotation
 * on disk since g was loaded, whole or half done, would otherwise pair one
 * generation's key with another's certificate, and a body signed with g's
 * key under another certificate is refused by the peer as bad-signature
 * (403, final).  The root and CRLs: those of g's TLS context, so that one
 * SIGHUP moves inbound connections and deliveries together, a CRL replaced
 * on disk is in force for neither until then, and a damaged one (refused
 * by the reload) stops neither. */
https_client_t *
outbox_peer_client(const gw_gen_t *g, const char *area, long timeout_ms,
    long connect_timeout_ms, char *err, size_t errlen)
{
	https_client_options_t opt;
	https_client_t *c = NULL;
	char expect[IDENTITY_URI_MAX], *key_pem = NULL;
	char *root_pem = NULL, *crls_pem = NULL;
	size_t key_len = 0, root_len = 0, crls_len = 0;

	if (g == NULL) {
		snprintf(err, errlen, "no configuration");
		return NULL;
	}
	if (gw_gen_key_pem(g, &key_pem, &key_len) < 0) {
		snprintf(err, errlen, "cannot encode the gateway key");
		return NULL;
	}
	if (tls_trust_pem(tls_context_trust(g->tls), &root_pem, &root_len,
	    &crls_pem, &crls_len) < 0) {
		snprintf(err, errlen, "cannot encode the root and CRLs");
		goto out;
	}
	snprintf(expect, sizeof(expect), "urn:visor:%s:gateway", area);
	memset(&opt, 0, sizeof(opt));
	opt.cert_pem = g->cert_pem;
	opt.cert_pem_len = strlen(g->cert_pem);
	opt.key_pem = key_pem;
	opt.key_pem_len = key_len;
	opt.root_pem = root_pem;
	opt.root_pem_len = root_len;
	opt.crls_pem = crls_pem;
	opt.crls_pem_len = crls_len;
	opt.expect_identity = expect;
	opt.timeout_ms = timeout_ms;
	opt.connect_timeout_ms = connect_timeout_ms;
	opt.max_response = PEER_ANSWER_MAX;
	c = https_client_new(&opt, err, errlen);
out:
	OPENSSL_cleanse(key_pem, key_len);
	free(key_pem);
	free(root_pem);
	free(crls_pem);
	return c;
}

/* Wait ms, or until the outbox stops; with seen, also until a transfer is
 * queued (a kick).  Without it kicks are ignored: a peer that is down is
 * probed at its own pace, not at the pace requests arrive.  On the
 * monotonic clock (o->cond is made for it): a wall clock set back a day
 * would otherwise stretch the wait by a day. */
static void
wait_kick(outbox_t *o, unsigned *seen, long ms)
{
	struct timespec ts;

	monotime_after(&ts, ms);
	pthread_mutex_lock(&o->lock);
	while ((seen == NULL || o->kicks == *seen) &&
	    !atomic_load(&o->stopping))
		if (pthread_cond_timedwait(&o->cond, &o->lock, &ts) == ETIMEDOUT)
			break;
	if (seen != NULL)
		*seen = o->kicks;
	pthread_mutex_unlock(&o->lock);
}

/* Every transfer past its deadline is failed without being tried, however many there are, each batch durable before the next
 * query (or it would see them again).  Returns how many outcomes the store
 * could not record (then the caller backs off). */
static unsigned
expire_overdue(peer_worker_t *pw, store_reader_t *rd)
{
	store_transfer_t t[DUE_BATCH];
	delivery_t *dv;
	size_t n, i, handed;
	unsigned lost;

	do {
		n = handed = 0;
		memset(t, 0, sizeof(t));
		if (store_outbox_expired_for(rd, pw->area, gw_now_ms(), t,
		    DUE_BATCH, &n) < 0) {
			log_event(LOG_ERROR, "outbox-read-failed", "peer",
			    pw->area, NULL);
			return 1;
		}
		for (i = 0; i < n; i++) {
			if ((dv = delivery_new(pw, &t[i])) == NULL)
				continue;
			/* Past its deadline, readable or not: failed (an
			 * unreadable one's entry has no digest). */
			if (fail_deadline(pw, dv, dv->t.attempts) == 0)
				handed++;
			delivery_free(dv);
		}
		if ((lost = outcomes_wait(pw)) > 0)
			return lost;
		/* Some could not be handed to the store: back off rather
		 * than read the same rows again at once. */
		if (handed < n)
			return (unsigned)(n - handed);
	} while (n == DUE_BATCH && !atomic_load(&pw->o->stopping));
	return 0;
}

/* After a round of deliveries: is the peer down, or back? */
static void
peer_round_done(peer_worker_t *pw)
{
	const config_t *cfg = pw->o->gw->cfg;
	long long probe = 0, wait;
	char ms[24];

	if (pw->round_reached) {
		if (pw->down > 0)
			log_event(LOG_INFO, "peer-available", "peer", pw->area,
			    NULL);
		pw->down = 0;
	} else if (pw->round_unavailable) {
		if (pw->down < 16)
			pw->down++;
		wait = backoff_ms(cfg, pw->down);
		probe = gw_mono_ms() + wait;
		if (pw->down == 1) {
			snprintf(ms, sizeof(ms), "%lld", wait);
			log_event(LOG_WARN, "peer-unavailable", "peer", pw->area,
			    "next_probe_ms", ms, NULL);
		}
	} else {
		return;
	}
	pthread_mutex_lock(&pw->o->lock);
	pw->probe_ms = probe;
	pthread_mutex_unlock(&pw->o->lock);
}

/* The store could not record outcomes: wait, longer for each such failure
 * in a row (*failures), and with seen also until a transfer is queued. */
static void
store_backoff(outbox_t *o, unsigned *failures, unsigned *seen)
{
	if (*failures < 16)
		(*failures)++;
	wait_kick(o, seen, (long)backoff_ms(o->gw->cfg, *failures));
}

/* A down peer's next probe is due in this many ms (<= 0: now). */
static long long
probe_in(peer_worker_t *pw)
{
	long long w;

	pthread_mutex_lock(&pw->o->lock);
	w = pw->probe_ms - gw_mono_ms();
	pthread_mutex_unlock(&pw->o->lock);
	return w;
}

/* The worker of an area no longer configured as a peer: its queued
 * transfers cannot be sent (there is no URL, and the operator took the
 * peer out), but they are not left queued for ever either: each fails at
 * its deadline, audited, as one to a peer that is down does.  Were the
 * peer configured again before then, they would go after that restart. */
static void *
unconfigured_main(void *arg)
{
	peer_worker_t *pw = arg;
	outbox_t *o = pw->o;
	store_reader_t *rd;
	unsigned store_failures = 0;
	char err[256], depth[24];

	(void)pthread_setname_np(pthread_self(), "gw-outbox");
	snprintf(depth, sizeof(depth), "%llu",
	    (unsigned long long)pw->unconfigured_depth);
	log_event(LOG_WARN, "peer-unconfigured", "peer", pw->area, "queued",
	    depth, "error", "transfers are queued for an area that is not a "
	    "configured peer: not sent, each fails at its deadline", NULL);
	if ((rd = store_reader_new(o->gw->store, err, sizeof(err))) == NULL) {
		log_event(LOG_ERROR, "outbox-start-failed", "peer", pw->area,
		    "error", err, NULL);
		return NULL;
	}
	while (!atomic_load(&o->stopping)) {
		if (expire_overdue(pw, rd) > 0) {
			store_backoff(o, &store_failures, NULL);
			continue;
		}
		store_failures = 0;
		wait_kick(o, NULL, IDLE_WAIT_MS);
	}
	store_reader_free(rd);
	return NULL;
}

static void *
peer_main(void *arg)
{
	peer_worker_t *pw = arg;
	outbox_t *o = pw->o;
	store_transfer_t due[DUE_BATCH];
	https_client_t *client = NULL;
	https_batch_t *batch = NULL;
	gw_gen_t *client_gen = NULL;	/* the generation client was built from */
	store_reader_t *rd;
	https_request_t req;
	char err[256], url[400];
	unsigned seen = 0, store_failures = 0;
	size_t n, i, queued, unreadable;
	long long now;
	gw_gen_t *g;
	delivery_t *dv;

	(void)pthread_setname_np(pthread_self(), "gw-outbox");
	if ((rd = store_reader_new(o->gw->store, err, sizeof(err))) == NULL) {
		log_event(LOG_ERROR, "outbox-start-failed", "peer", pw->area, "error",
		    err, NULL);
		return NULL;
	}
	snprintf(url, sizeof(url), "%s/v1/peer/transfers", pw->url);
	while (!atomic_load(&o->stopping)) {
		/* After a reload (SIGHUP: renewed certificate, new CRLs) the
		 * connections made with the old files are dropped, so that a
		 * revoked receiver is refused from then on. */
		g = gw_gen_current();
		if (client != NULL && g != client_gen) {
			https_batch_free(batch);
			https_client_free(client);
			gw_gen_unref(client_gen);
			batch = NULL;
			client = NULL;
			client_gen = NULL;
		}
		if (client == NULL) {
			if ((client = outbox_peer_client(g, pw->area, 30000, 5000,
			    err, sizeof(err))) == NULL ||
			    (batch = https_batch_new(client,
			    o->gw->cfg->max_in_flight_per_peer, err, sizeof(err))) == NULL) {
				log_event(LOG_ERROR, "outbox-client-failed", "peer",
				    pw->area, "error", err, NULL);
				note_attempt(pw, OUTBOX_PEER_ERROR, err);
				https_client_free(client);
				client = NULL;
				gw_gen_unref(g);
				wait_kick(o, &seen, 5000);
				continue;
			}
			client_gen = g;
			g = NULL;
			/* A stop does not wait for a peer that does not
			 * answer (up to the client's 30 s timeout). */
			https_batch_stop_when(batch, &o->stopping);
		}
		gw_gen_unref(g);
		/* Deadlines are kept at least every idle wait, the peer up or
		 * down: a transfer waiting for its retry, one whose payload
		 * does not open (it makes no attempt whose failure would see
		 * the deadline) and one waiting for an earlier transfer of its
		 * record all fail on time. */
		if (expire_overdue(pw, rd) > 0) {
			store_backoff(o, &store_failures, NULL);
			continue;
		}
		/* Down: one transfer goes when the probe is due; new
		 * transfers (kicks) do not change that. */
		if (pw->down > 0) {
			long long w;

			store_failures = 0;
			if ((w = probe_in(pw)) > 0) {
				wait_kick(o, NULL, w < IDLE_WAIT_MS ? (long)w :
				    IDLE_WAIT_MS);
				continue;
			}
		}
		n = 0;
		memset(due, 0, sizeof(due));
		now = gw_now_ms();
		/* No retry is set further ahead than retry_max_ms (backoff_ms,
		 * defer_unreadable): one that is, was set before the wall
		 * clock went back, and is due now rather than when the clock
		 * catches up again (an hour or a day on). */
		if (store_outbox_due_for(rd, pw->area, now, now +
		    (long long)o->gw->cfg->retry_max_ms + RETRY_SLACK_MS, due,
		    pw->down > 0 ? 1 : DUE_BATCH, &n) < 0) {
			wait_kick(o, &seen, IDLE_WAIT_MS);
			continue;
		}
		g = gw_gen_current();
		queued = unreadable = 0;
		for (i = 0; i < n; i++) {
			if (g == NULL) {
				buf_free(&due[i].payload);
				buf_free(&due[i].receipt);
				continue;
			}
			if ((dv = delivery_new(pw, &due[i])) == NULL)
				continue;
			if (dv->t.unreadable) {
				(void)defer_unreadable(pw, dv);
				delivery_free(dv);
				unreadable++;
				continue;
			}
			switch (still_permitted(pw, g, dv)) {
			case 0:
				(void)fail_policy_changed(pw, dv);
				delivery_free(dv);
				unreadable++;	/* an outcome to wait for */
				continue;
			case -1:
				/* Not decided (a payload that opened but does not
				 * parse, or memory): not sent now, tried later,
				 * failed at its deadline. */
				log_event(LOG_ERROR, "transfer-undecided",
				    "transfer", dv->t.transfer_id, "peer", pw->area,
				    NULL);
				(void)record_outcome(pw, dv, "queued", NULL, NULL,
				    NULL, NULL, 0, dv->t.attempts, gw_now_ms() +
				    (long long)pw->o->gw->cfg->retry_max_ms);
				delivery_free(dv);
				unreadable++;
				continue;
			}
			/* With the key of the certificate the client presents:
			 * the peer checks the signature against the TLS
			 * certificate, and g may be newer than client_gen (a
			 * reload since the top of the loop that renewed the
			 * certificate); signed with g's key the body would be
			 * refused as bad-signature, a 403, final. */
			if (sig_sign(client_gen->sign_key, dv->t.payload.data,
			    dv->t.payload.len, &dv->sig) < 0) {
				delivery_free(dv);
				continue;
			}
			snprintf(dv->sig_hdr, sizeof(dv->sig_hdr), "X-Visor-Signature: %s",
			    dv->sig.data);
			dv->hdrs[0] = "Content-Type: application/json";
			dv->hdrs[1] = dv->sig_hdr;
			dv->hdrs[2] = NULL;
			memset(&req, 0, sizeof(req));
			req.method = "POST";
			req.url = url;
			req.headers = dv->hdrs;
			req.body = dv->t.payload.data;
			req.len = dv->t.payload.len;
			if (https_batch_add(batch, &req, 0, delivery_done, dv) < 0) {
				delivery_free(dv);
				continue;
			}
			queued++;
		}
		gw_gen_unref(g);
		/* Failed without a round: durable before the next query. */
		if (queued == 0 && unreadable > 0 && outcomes_wait(pw) > 0) {
			store_backoff(o, &store_failures, NULL);
			continue;
		}
		if (queued > 0) {
			pw->round_reached = pw->round_unavailable = 0;
			https_batch_run(batch);
			peer_round_done(pw);
			/* An outcome the store could not record leaves its
			 * transfer due at once: without a pause the worker would
			 * deliver it again and again (the peer answers each
			 * repeat with the same receipt) as fast as the network
			 * goes, for as long as the disk is broken.  Back off as
			 * for a failed delivery; a kick (a transfer queued, so
			 * the store writes again) ends the wait. */
			if (outcomes_wait(pw) > 0) {
				store_backoff(o, &store_failures,
				    pw->down > 0 ? NULL : &seen);
			} else {
				store_failures = 0;
			}
			continue;
		}
		wait_kick(o, pw->down > 0 ? NULL : &seen, IDLE_WAIT_MS);
	}
	https_batch_free(batch);
	https_client_free(client);
	gw_gen_unref(client_gen);
	store_reader_free(rd);
	return NULL;
}

/* Collects the areas with queued transfers that are not configured peers
 * (store_outbox_stats callback). */
typedef struct {
	outbox_t *o;
	int failed;
} unconfigured_scan_t;

static void
unconfigured_cb(void *ctx, const char *area, uint64_t depth, int64_t oldest_ms)
{
	unconfigured_scan_t *sc = ctx;
	outbox_t *o = sc->o;
	peer_worker_t *p;
	size_t i;

	(void)oldest_ms;
	for (i = 0; i < o->n_configured; i++)
		if (strcmp(o->peers[i].area, area) == 0)
			return;
	if (sc->failed || (p = realloc(o->peers, (o->n_peers + 1) *
	    sizeof(*o->peers))) == NULL) {
		sc->failed = 1;
		return;
	}
	o->peers = p;
	p = &o->peers[o->n_peers];
	memset(p, 0, sizeof(*p));
	p->o = o;
	p->unconfigured = 1;
	p->unconfigured_depth = depth;
	snprintf(p->area, sizeof(p->area), "%s", area);
	o->n_peers++;
}

outbox_t *
outbox_new(gateway_t *gw, char *err, size_t errlen)
{
	outbox_t *o;
	unconfigured_scan_t sc;
	size_t i;

	if (https_global_init() < 0) {
		snprintf(err, errlen, "libcurl initialisation failed");
		return NULL;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->gw = gw;
	pthread_mutex_init(&o->lock, NULL);
	{
		pthread_condattr_t ca;

		/* wait_kick's deadlines are monotonic. */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&o->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_mutex_init(&o->stats_lock, NULL);
	atomic_init(&o->stopping, 0);
	o->n_peers = o->n_configured = gw->cfg->n_peers;
	if (o->n_peers > 0 &&
	    (o->peers = calloc(o->n_peers, sizeof(*o->peers))) == NULL) {
		free(o);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < o->n_peers; i++) {
		o->peers[i].o = o;
		snprintf(o->peers[i].area, sizeof(o->peers[i].area), "%s",
		    gw->cfg->peers[i].area);
		snprintf(o->peers[i].url, sizeof(o->peers[i].url), "https://%s:%d",
		    gw->cfg->peers[i].host, gw->cfg->peers[i].port);
	}
	if ((o->stats_reader = store_reader_new(gw->store, err, errlen)) == NULL) {
		free(o->peers);
		free(o);
		return NULL;
	}
	/* Peers change only with a restart; transfers queued for one taken
	 * out get a worker that fails them at their deadline.  The array may
	 * move (realloc): its locks are made once it is complete. */
	sc.o = o;
	sc.failed = 0;
	if (store_outbox_stats(o->stats_reader, unconfigured_cb, &sc) < 0 ||
	    sc.failed) {
		snprintf(err, errlen, "cannot read the outbox's peers");
		o->n_peers = 0;		/* no peer locks made yet, no thread */
		outbox_free(o);
		return NULL;
	}
	for (i = 0; i < o->n_peers; i++) {
		pthread_mutex_init(&o->peers[i].out_lock, NULL);
		pthread_cond_init(&o->peers[i].out_cond, NULL);
	}
	if ((o->witness = witness_new(gw, err, errlen)) == NULL) {
		outbox_free(o);
		return NULL;
	}
	return o;
}

int
outbox_start(outbox_t *o)
{
	size_t i;

	for (i = 0; i < o->n_peers; i++) {
		if (pthread_create(&o->peers[i].thread, NULL,
		    o->peers[i].unconfigured ? unconfigured_main : peer_main,
		    &o->peers[i]) != 0)
			return -1;
		o->peers[i].started = 1;
	}
	return witness_start(o->witness);
}

void
outbox_kick(outbox_t *o)
{
	if (o == NULL)
		return;
	pthread_mutex_lock(&o->lock);
	o->kicks++;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

void
outbox_free(outbox_t *o)
{
	size_t i;

	if (o == NULL)
		return;
	atomic_store(&o->stopping, 1);
	outbox_kick(o);
	witness_free(o->witness);
	for (i = 0; i < o->n_peers; i++) {
		if (o->peers[i].started)
			pthread_join(o->peers[i].thread, NULL);
		pthread_mutex_destroy(&o->peers[i].out_lock);
		pthread_cond_destroy(&o->peers[i].out_cond);
	}
	store_reader_free(o->stats_reader);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->stats_lock);
	free(o->peers);
	free(o);
}

static void
stats_cb(void *ctx, const char *area, uint64_t depth, int64_t oldest_age_ms)
{
	buf_t *out = ctx;

	buf_printf(out, "visor_outbox_depth{peer=\"%s\"} %llu\n", area,
	    (unsigned long long)depth);
	buf_printf(out, "visor_outbox_oldest_seconds{peer=\"%s\"} %g\n", area,
	    oldest_age_ms < 0 ? 0.0 : (double)oldest_age_ms / 1000.0);
}

void
outbox_metrics(void *arg, buf_t *out)
{
	outbox_t *o = arg;

	buf_puts(out, "# HELP visor_outbox_depth Transfers queued per peer.\n"
	    "# TYPE visor_outbox_depth gauge\n"
	    "# HELP visor_outbox_oldest_seconds Age of the oldest queued transfer per peer.\n"
	    "# TYPE visor_outbox_oldest_seconds gauge\n");
	pthread_mutex_lock(&o->stats_lock);
	store_outbox_stats(o->stats_reader, stats_cb, out);
	pthread_mutex_unlock(&o->stats_lock);
}

size_t
outbox_peer_states(outbox_t *o, outbox_peer_state_t *out, size_t max)
{
	size_t i;

	if (o == NULL)
		return 0;
	pthread_mutex_lock(&o->lock);
	for (i = 0; i < o->n_configured && i < max; i++) {
		memcpy(out[i].area, o->peers[i].area, sizeof(out[i].area));
		memcpy(out[i].url, o->peers[i].url, sizeof(out[i].url));
		out[i].state = o->peers[i].last_state;
		out[i].probe_ms = o->peers[i].probe_ms;
		out[i].last_ms = o->peers[i].last_ms;
		memcpy(out[i].error, o->peers[i].last_error, sizeof(out[i].error));
	}
	pthread_mutex_unlock(&o->lock);
	return i;
}
