/*
 * metrics: counters and histograms for /metrics (Prometheus text format).
 * Updates are lock-free atomics; rendering reads them without stopping
 * anyone.
 */
#ifndef GATEWAY_METRICS_H
#define GATEWAY_METRICS_H

#include <stdint.h>

#include "util/buf.h"

/* Count a finished request: route name (from a fixed set; others count as
 * "other"), HTTP status, and its duration in microseconds. */
void metrics_request(const char *route, int status, uint64_t usec);

/* Count a refused handshake by reason code. */
void metrics_handshake_failure(const char *reason);

/* Count a connection closed before it sent a byte. */
void metrics_closed_before_hello(void);

/* Count a policy denial by deciding rule id (or "default-deny"). */
void metrics_policy_denial(const char *rule);

/* Count a delivery failure to a peer area. */
void metrics_delivery_failure(const char *area);

/* Count a request refused 429 for its identity's rate. */
void metrics_rate_limited(void);
/* Count a peer's checkpoint refused as inconsistent with the one held
 * (event=peer-log-inconsistent). */
void metrics_peer_log_inconsistent(const char *area);

/* Count a send of this gateway's checkpoint to a peer that failed (no
 * answer, or a refusal). */
void metrics_witness_send_failure(const char *area);

/* Connections: +1 when accepted, -1 when closed. */
void metrics_connection(int delta);

/* Days until one loaded certificate or CRL expires (negative: expired;
 * NAN-free: a file that could not be read is left out by the caller). */
typedef struct {
	const char *role;	/* "gateway", "root", "ca" or "crl" */
	const char *file;	/* the configured path (a label value) */
	double days;
} metrics_expiry_t;

/* Gauges supplied when rendering. */
typedef struct {
	uint64_t audit_size;
	uint64_t checkpoint_size;	/* leaves the latest signed checkpoint covers */
	uint64_t store_jobs, store_commits, store_failed_commits;
	uint64_t store_queued;		/* jobs waiting for the writer now */
	double store_oldest_wait_s;	/* how long the oldest has waited */
	uint64_t store_wait_expired;	/* jobs failed for waiting too long */
	double checkpoint_age_s;	/* < 0: none yet */
	double uptime_s;
	long cert_expiry_s, crl_expiry_s;	/* < 0: unknown */
	void (*outbox)(void *ctx, buf_t *out);	/* appends outbox gauges */
	void *outbox_ctx;
	const metrics_expiry_t *expiry;	/* per certificate and CRL file */
	size_t n_expiry;
	const unsigned *worker_conns;	/* open connections per worker */
	size_t n_workers;
} metrics_gauges_t;

/* Append the whole exposition to out.  0 or -1. */
int metrics_render(const metrics_gauges_t *g, buf_t *out);

#endif
