/*
 * outbox: the delivery worker of SPEC section 9.  One thread per peer
 * gateway takes that peer's due transfers from the durable outbox and posts
 * them over mTLS with libcurl (keep-alive, at most max_in_flight_per_peer at
 * once), signs each body, verifies the receipt, records it (and a receipt
 * audit entry) and marks the transfer delivered.  Network errors and 5xx
 * are retried with exponential backoff and jitter until the transfer's
 * deadline (then failed, logged); a 4xx is final (rejected, logged).  All
 * state is in the store, so retries survive restarts.
 */
#ifndef GATEWAY_OUTBOX_H
#define GATEWAY_OUTBOX_H

#include "client/https_client.h"
#include "gateway/gateway.h"
#include "gateway/gen.h"
#include "util/buf.h"

typedef struct outbox outbox_t;

/* Prepare (no threads yet).  NULL with err. */
outbox_t *outbox_new(gateway_t *gw, char *err, size_t errlen);

/* Start one delivery thread per configured peer, and one per area that
 * has transfers queued but is no longer a configured peer (taken out with
 * a restart), which sends nothing and fails each of them at its deadline
 * (event=peer-unconfigured at start).  0 or -1. */
int outbox_start(outbox_t *o);

/* An mTLS client to peer area's gateway with generation g's certificate,
 * key, root and CRLs (as g loaded them, not the files again), requiring
 * the server to be urn:visor:<area>:gateway; the delivery workers' and
 * the witness sender's (gateway/witness.h).  NULL with err. */
https_client_t *outbox_peer_client(const gw_gen_t *g, const char *area,
    long timeout_ms, long connect_timeout_ms, char *err, size_t errlen);

/* Wake the delivery threads (a transfer was queued). */
void outbox_kick(outbox_t *o);

/* Start also starts the witness sender (gateway/witness.h), and free
 * stops it. */

/* Stop the threads (in-flight requests finish or time out) and free. */
void outbox_free(outbox_t *o);

/* Append the outbox gauges (depth and oldest age per peer) for /metrics. */
void outbox_metrics(void *o, buf_t *out);

/* The outcome of the last delivery attempt to each peer (for /v1/status):
 * that is the gateway's view of a peer's reachability, over the real mTLS
 * path with every identity check, and it costs no extra traffic.  A peer
 * no transfer went to since start is OUTBOX_PEER_UNKNOWN. */
enum {
	OUTBOX_PEER_UNKNOWN = 0,	/* no attempt since start */
	OUTBOX_PEER_DELIVERED,		/* a receipt came back and verified */
	OUTBOX_PEER_REJECTED,		/* the peer answered 4xx (reachable) */
	OUTBOX_PEER_ERROR		/* connect, TLS, 5xx or a bad receipt */
};

typedef struct {
	char area[40];
	char url[300];
	int state;		/* OUTBOX_PEER_* */
	long long last_ms;	/* gw_mono_ms() of that attempt; 0 if none */
	char error[160];	/* for REJECTED and ERROR: what happened */
	long long probe_ms;	/* the peer is down: gw_mono_ms() of the next
				 * probe; 0 when it is not */
} outbox_peer_state_t;

/* Copy up to max peers' states into out (configuration order).  Returns
 * the count; 0 for a NULL outbox. */
size_t outbox_peer_states(outbox_t *o, outbox_peer_state_t *out, size_t max);

#endif
