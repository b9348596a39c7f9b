#include "gateway/witness.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "client/https_client.h"
#include "crypto/merkle.h"
#include "crypto/note.h"
#include "gateway/gen.h"
#include "gateway/metrics.h"
#include "gateway/outbox.h"
#include "gateway/request.h"
#include "gateway/store.h"
#include "util/b64.h"
#include "util/json.h"
#include "util/log.h"
#include "util/monotime.h"

#define WITNESS_TICK_MS 1000		/* how often the checkpoint is looked at */
#define WITNESS_TIMEOUT_MS 10000	/* one send, whole */
#define WITNESS_CONNECT_MS 3000		/* TCP and TLS */
#define WITNESS_BACKOFF_MAX_MS (5 * 60 * 1000)	/* a peer that is down */
/* A peer that refuses our checkpoints for another reason than their
 * consistency (no key for our log there, not its peer) is asked again this
 * seldom: each refusal is an entry in its audit log. */
#define WITNESS_NOT_WITNESSED_MS (3600 * 1000)
#define WITNESS_ANSWER_MAX (16u << 10)

typedef struct {
	char area[40];
	char url[400];
	https_client_t *client;
	https_batch_t *batch;
	gw_gen_t *gen;		/* the generation client was made from */
	int64_t acked;		/* the size the peer said it holds; -1 unknown */
	int done;		/* the checkpoint below had its final answer */
	uint64_t done_size;
	merkle_hash_t done_root;
	long long next_ms;	/* gw_mono_ms(): no send before */
	unsigned failures;	/* sends in a row with no answer */
	char last_refusal[64];	/* logged once until it changes */
} wpeer_t;

struct witness {
	gateway_t *gw;
	wpeer_t *peers;
	size_t n;
	long long interval_ms;	/* 0: off */
	pthread_t thread;
	int started;
	atomic_int stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	store_reader_t *rd;
};

/* The answer of one send. */
typedef struct {
	int rc;
	long status;
	buf_t body;
	char err[200];
} answer_t;

static void
answer_done(void *arg, const https_result_t *res)
{
	answer_t *a = arg;

	a->rc = res->rc;
	if (res->rc == 0) {
		a->status = res->resp->status;
		(void)buf_append(&a->body, res->resp->body.data,
		    res->resp->body.len);
	} else {
		snprintf(a->err, sizeof(a->err), "%s", res->stopped ?
		    "stopping" : res->err);
	}
}

/* The peer's answer's error code ("" if none). */
static void
answer_code(const answer_t *a, char *out, size_t outlen)
{
	char err[64];
	cJSON *o;
	const char *code = NULL;

	out[0] = '\0';
	o = json_parse_strict(a->body.data, a->body.len, 4, err, sizeof(err));
	if (o != NULL && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o,
	    "error")))
		code = json_get_str(cJSON_GetObjectItemCaseSensitive(o, "error"),
		    "code");
	if (code != NULL && strlen(code) < outlen && strspn(code,
	    "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(code))
		memcpy(out, code, strlen(code) + 1);
	cJSON_Delete(o);
}

/* The size of our log (area: ours) a 200 says the peer holds, or -1. */
static int64_t
answer_size(const answer_t *a, const char *area)
{
	char err[64];
	cJSON *o;
	const char *got;
	int64_t size = -1;

	if ((o = json_parse_strict(a->body.data, a->body.len, 4, err,
	    sizeof(err))) == NULL)
		return -1;
	got = json_get_str(o, "area");
	if (got == NULL || strcmp(got, area) != 0 ||
	    json_get_int(o, "size", 0, INT64_MAX, &size) != 0)
		size = -1;
	cJSON_Delete(o);
	return size;
}

/* Wait ms on the monotonic clock, or until the witness stops. */
static void
witness_wait(witness_t *w, long ms)
{
	struct timespec ts;

	monotime_after(&ts, ms);
	pthread_mutex_lock(&w->lock);
	while (!atomic_load(&w->stopping))
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&w->lock);
}

static void
peer_drop_client(wpeer_t *p)
{
	https_batch_free(p->batch);
	https_client_free(p->client);
	gw_gen_unref(p->gen);
	p->batch = NULL;
	p->client = NULL;
	p->gen = NULL;
}

/* A client of generation g (taking the reference) for p.  0 or -1. */
static int
peer_ensure_client(witness_t *w, wpeer_t *p, gw_gen_t *g)
{
	char err[256];

	if (p->client != NULL && p->gen == g) {
		gw_gen_unref(g);
		return 0;
	}
	peer_drop_client(p);
	if ((p->client = outbox_peer_client(g, p->area, WITNESS_TIMEOUT_MS,
	    WITNESS_CONNECT_MS, err, sizeof(err))) == NULL ||
	    (p->batch = https_batch_new(p->client, 1, err, sizeof(err))) == NULL) {
		log_event(LOG_ERROR, "witness-client-failed", "peer", p->area,
		    "error", err, NULL);
		https_client_free(p->client);
		p->client = NULL;
		gw_gen_unref(g);
		return -1;
	}
	p->gen = g;
	https_batch_stop_when(p->batch, &w->stopping);
	return 0;
}

/* POST the note with a consistency proof from from (0: none).  0 with
 * *a filled (a->rc says whether an answer came), -1 if nothing was sent
 * (the proof or the body could not be made). */
static int
post_checkpoint(witness_t *w, wpeer_t *p, const buf_t *note, uint64_t from,
    uint64_t size, answer_t *a)
{
	merkle_hash_t proof[MERKLE_MAX_PROOF];
	char b64[B64_ENCODED_SIZE(MERKLE_HASH_LEN)], url[440];
	const char *hdrs[] = { "Content-Type: application/json", NULL };
	https_request_t req;
	buf_t body = BUF_INIT;
	size_t n = 0, i;
	int ret = -1;

	if (from > 0 && from < size &&
	    store_audit_consistency(w->rd, from, size, proof, &n) < 0) {
		log_event(LOG_ERROR, "witness-proof-failed", "peer", p->area,
		    NULL);
		return -1;
	}
	if (from >= size)
		from = 0;
	if (buf_puts(&body, "{\"checkpoint\":") < 0 ||
	    json_append_string(&body, note->data) < 0 ||
	    buf_printf(&body, ",\"from\":%" PRIu64 ",\"proof\":[", from) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		b64_encode(proof[i], MERKLE_HASH_LEN, b64);
		if (buf_printf(&body, "%s\"%s\"", i ? "," : "", b64) < 0)
			goto out;
	}
	if (buf_puts(&body, "]}") < 0)
		goto out;
	snprintf(url, sizeof(url), "%s/v1/peer/checkpoints", p->url);
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = url;
	req.headers = hdrs;
	req.body = body.data;
	req.len = body.len;
	memset(a, 0, sizeof(*a));
	buf_init(&a->body, WITNESS_ANSWER_MAX);
	a->rc = -1;
	snprintf(a->err, sizeof(a->err), "not sent");
	if (https_batch_add(p->batch, &req, 0, answer_done, a) < 0) {
		buf_free(&a->body);
		goto out;
	}
	(void)https_batch_run(p->batch);
	ret = 0;
out:
	buf_free(&body);
	return ret;
}

/* No answer: back off (doubling from the interval, to at most 5 min). */
static void
peer_unavailable(witness_t *w, wpeer_t *p, const char *why)
{
	long long wait = w->interval_ms;
	unsigned i;

	metrics_witness_send_failure(p->area);
	if (p->failures == 0)
		log_event(LOG_WARN, "witness-peer-unavailable", "peer", p->area,
		    "error", why, NULL);
	if (p->failures < 16)
		p->failures++;
	for (i = 1; i < p->failures && wait < WITNESS_BACKOFF_MAX_MS; i++)
		wait *= 2;
	if (wait > WITNESS_BACKOFF_MAX_MS)
		wait = WITNESS_BACKOFF_MAX_MS;
	p->next_ms = gw_mono_ms() + wait;
}

/* The peer refused this checkpoint (4xx): it is not sent again, only the
 * next one.  409 says the peer holds one of ours that this one is not
 * consistent with: this gateway's log was rolled back or forked (logged at
 * error level here too; the peer raised its alarm). */
static void
peer_refused(witness_t *w, wpeer_t *p, const answer_t *a, uint64_t size,
    const merkle_hash_t root)
{
	char code[64], status[16], sz[24];

	answer_code(a, code, sizeof(code));
	snprintf(status, sizeof(status), "%ld", a->status);
	snprintf(sz, sizeof(sz), "%" PRIu64, size);
	metrics_witness_send_failure(p->area);
	if (a->status == 409)
		log_event(LOG_ERROR, "witness-refused", "peer", p->area,
		    "status", status, "code", code, "size", sz, "error",
		    "the peer holds a checkpoint of this gateway's log that "
		    "this one is not consistent with: the log was rolled back "
		    "or forked", NULL);
	else if (strcmp(code, p->last_refusal) != 0)
		log_event(LOG_WARN, "witness-refused", "peer", p->area,
		    "status", status, "code", code, "size", sz, NULL);
	snprintf(p->last_refusal, sizeof(p->last_refusal), "%s", code);
	p->acked = -1;
	p->done = 1;
	p->done_size = size;
	memcpy(p->done_root, root, MERKLE_HASH_LEN);
	p->failures = 0;
	/* 409 is the peer's alarm, raised again for each new checkpoint.
	 * Any other refusal (no key for our log here, we are not its peer,
	 * a peer that does not know the route) would say the same to each
	 * one, and each is an entry in its audit log: asked again hourly. */
	if (a->status == 409)
		p->next_ms = gw_mono_ms() + w->interval_ms;
	else
		p->next_ms = gw_mono_ms() + WITNESS_NOT_WITNESSED_MS;
}

/* Send the checkpoint (note: size, root) to p, once more with a proof from
 * the size the peer says it holds if that is not what p->acked said. */
static void
send_to_peer(witness_t *w, wpeer_t *p, const buf_t *note, uint64_t size,
    const merkle_hash_t root)
{
	answer_t a;
	uint64_t from;
	int64_t held;
	int round;

	for (round = 0; round < 2; round++) {
		from = p->acked > 0 ? (uint64_t)p->acked : 0;
		if (post_checkpoint(w, p, note, from, size, &a) < 0) {
			p->next_ms = gw_mono_ms() + w->interval_ms;
			return;
		}
		if (atomic_load(&w->stopping)) {
			buf_free(&a.body);
			return;
		}
		if (a.rc != 0 || a.status >= 500 || a.status == 408 ||
		    a.status == 429) {
			if (a.rc == 0)
				snprintf(a.err, sizeof(a.err), "status %ld",
				    a.status);
			peer_unavailable(w, p, a.err);
			buf_free(&a.body);
			return;
		}
		if (p->failures > 0)
			log_event(LOG_INFO, "witness-peer-available", "peer",
			    p->area, NULL);
		p->failures = 0;
		if (a.status != 200) {
			peer_refused(w, p, &a, size, root);
			buf_free(&a.body);
			return;
		}
		held = answer_size(&a, w->gw->cfg->area);
		buf_free(&a.body);
		if (held == (int64_t)size) {
			p->acked = held;
			p->done = 1;
			p->done_size = size;
			memcpy(p->done_root, root, MERKLE_HASH_LEN);
			p->last_refusal[0] = '\0';
			p->next_ms = gw_mono_ms() + w->interval_ms;
			return;
		}
		/* The peer holds another size than assumed (either side
		 * restarted): the proof goes again, from that size. */
		if (held >= 0 && (uint64_t)held < size && (uint64_t)held != from) {
			p->acked = held;
			continue;
		}
		break;
	}
	log_event(LOG_WARN, "witness-answer-unexpected", "peer", p->area,
	    "error", "the peer's answer names no size this checkpoint can be "
	    "proved from", NULL);
	metrics_witness_send_failure(p->area);
	p->acked = -1;
	p->next_ms = gw_mono_ms() + w->interval_ms;
}

/* The latest signed checkpoint: note, size and root.  0, 1 none, -1. */
static int
latest_checkpoint(witness_t *w, buf_t *note, uint64_t *size,
    merkle_hash_t root)
{
	const char *end;
	char err[128];
	int rc;

	buf_reset(note);
	if ((rc = store_checkpoint_latest(w->rd, note)) != 0)
		return rc;
	/* Our own note, from our store: the body ends at the blank line. */
	if (note->len == 0 || (end = memmem(note->data, note->len, "\n\n",
	    2)) == NULL || checkpoint_parse(note->data,
	    (size_t)(end - note->data) + 1, store_origin(w->gw->store), size,
	    root, err, sizeof(err)) < 0 || buf_append(note, "", 1) < 0) {
		log_event(LOG_ERROR, "witness-checkpoint-unreadable", "error",
		    err, NULL);
		return -1;
	}
	note->len--;	/* NUL-terminated for json_append_string */
	return 0;
}

static void *
witness_main(void *arg)
{
	witness_t *w = arg;
	buf_t note = BUF_INIT;
	merkle_hash_t root;
	uint64_t size;
	gw_gen_t *g;
	size_t i;
	wpeer_t *p;

	(void)pthread_setname_np(pthread_self(), "gw-witness");
	while (!atomic_load(&w->stopping)) {
		if (latest_checkpoint(w, &note, &size, root) != 0) {
			witness_wait(w, WITNESS_TICK_MS);
			continue;
		}
		for (i = 0; i < w->n && !atomic_load(&w->stopping); i++) {
			p = &w->peers[i];
			if (gw_mono_ms() < p->next_ms)
				continue;
			if (p->done && p->done_size == size &&
			    CRYPTO_memcmp(p->done_root, root,
			    MERKLE_HASH_LEN) == 0)
				continue;
			if ((g = gw_gen_current()) == NULL ||
			    peer_ensure_client(w, p, g) < 0) {
				p->next_ms = gw_mono_ms() + w->interval_ms;
				continue;
			}
			send_to_peer(w, p, &note, size, root);
		}
		witness_wait(w, WITNESS_TICK_MS);
	}
	buf_free(&note);
	return NULL;
}

witness_t *
witness_new(gateway_t *gw, char *err, size_t errlen)
{
	const config_t *cfg = gw->cfg;
	witness_t *w;
	pthread_condattr_t ca;
	size_t i;

	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (cfg->n_peers > 0 && (w->peers = calloc(cfg->n_peers,
	    sizeof(*w->peers))) == NULL)) {
		free(w);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->gw = gw;
	w->n = cfg->n_peers;
	w->interval_ms = (long long)cfg->witness_interval_s * 1000;
	atomic_init(&w->stopping, 0);
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < w->n; i++) {
		snprintf(w->peers[i].area, sizeof(w->peers[i].area), "%s",
		    cfg->peers[i].area);
		snprintf(w->peers[i].url, sizeof(w->peers[i].url),
		    "https://%s:%d", cfg->peers[i].host, cfg->peers[i].port);
		w->peers[i].acked = -1;
		if (cfg->peers[i].audit_vkey[0] == '\0')
			log_event(LOG_WARN, "peer-not-witnessed", "peer",
			    cfg->peers[i].area, "error", "no audit_vkey for "
			    "this peer: its checkpoints are not witnessed here",
			    NULL);
	}
	if (w->n > 0 && w->interval_ms == 0)
		log_event(LOG_WARN, "witness-off", "error", "audit."
		    "witness_interval_s is 0: this gateway's checkpoints are "
		    "not sent to its peers", NULL);
	if (w->n > 0 && w->interval_ms > 0 &&
	    (w->rd = store_reader_new(gw->store, err, errlen)) == NULL) {
		witness_free(w);
		return NULL;
	}
	return w;
}

int
witness_start(witness_t *w)
{
	if (w == NULL || w->rd == NULL)
		return 0;
	if (pthread_create(&w->thread, NULL, witness_main, w) != 0)
		return -1;
	w->started = 1;
	return 0;
}

void
witness_free(witness_t *w)
{
	size_t i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->stopping, 1);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->started)
		pthread_join(w->thread, NULL);
	for (i = 0; i < w->n; i++)
		peer_drop_client(&w->peers[i]);
	store_reader_free(w->rd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->peers);
	free(w);
}
