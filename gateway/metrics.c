#include "gateway/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static const char *const routes[] = {
	"health", "records", "records_history", "transfers", "peer_transfers",
	"peer_checkpoints", "audit", "status", "not_found", "other"
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

static const int statuses[] = {
	200, 201, 202, 204, 400, 403, 404, 405, 409, 413, 415, 422, 425, 429, 500,
	503
};
#define N_STATUS (sizeof(statuses) / sizeof(statuses[0]) + 1)	/* + other */

/* Latency buckets in microseconds. */
static const uint64_t buckets[] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	500000, 1000000, 2500000
};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static atomic_ullong req_count[N_ROUTES][N_STATUS];
static atomic_ullong lat_bucket[N_ROUTES][N_BUCKETS + 1];
static atomic_ullong lat_sum_us[N_ROUTES];
static atomic_ullong lat_count[N_ROUTES];
static atomic_llong conn_current;
static atomic_ullong conn_total;
static atomic_ullong closed_before_hello;
static atomic_ullong rate_limited_total;

/* Labelled counters with names known only at run time (reasons, rule ids,
 * peer areas): a small fixed table, appended under a lock, counted with
 * atomics. */
#define LABEL_MAX 64
typedef struct {
	pthread_mutex_t lock;
	atomic_size_t n;
	char name[LABEL_MAX][64];
	atomic_ullong count[LABEL_MAX];
} labelled_t;

static labelled_t hs_fail = { PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, {0} };
static labelled_t pol_deny = { PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, {0} };
static labelled_t deliv_fail = { PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, {0} };
static labelled_t peer_incons = { PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, {0} };
static labelled_t witness_fail = { PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, {0} };

static void
labelled_inc(labelled_t *l, const char *name)
{
	size_t i, n = atomic_load(&l->n);

	for (i = 0; i < n && i < LABEL_MAX; i++)
		if (strcmp(l->name[i], name) == 0) {
			atomic_fetch_add(&l->count[i], 1);
			return;
		}
	pthread_mutex_lock(&l->lock);
	n = atomic_load(&l->n);
	for (i = 0; i < n; i++)
		if (strcmp(l->name[i], name) == 0)
			break;
	if (i == n) {
		/* A full table folds new names into the last slot. */
		if (n == LABEL_MAX)
			i = LABEL_MAX - 1;
		else {
			snprintf(l->name[i], sizeof(l->name[i]), "%s", name);
			atomic_store(&l->n, n + 1);
		}
	}
	atomic_fetch_add(&l->count[i], 1);
	pthread_mutex_unlock(&l->lock);
}

static size_t
route_index(const char *route)
{
	size_t i;

	for (i = 0; route != NULL && i < N_ROUTES; i++)
		if (strcmp(route, routes[i]) == 0)
			return i;
	return N_ROUTES - 1;
}

void
metrics_request(const char *route, int status, uint64_t usec)
{
	size_t r = route_index(route), s, b;

	for (s = 0; s < N_STATUS - 1; s++)
		if (statuses[s] == status)
			break;
	atomic_fetch_add(&req_count[r][s], 1);
	for (b = 0; b < N_BUCKETS; b++)
		if (usec <= buckets[b])
			break;
	atomic_fetch_add(&lat_bucket[r][b], 1);
	atomic_fetch_add(&lat_sum_us[r], usec);
	atomic_fetch_add(&lat_count[r], 1);
}

void
metrics_handshake_failure(const char *reason)
{
	labelled_inc(&hs_fail, reason);
}

void
metrics_closed_before_hello(void)
{
	atomic_fetch_add(&closed_before_hello, 1);
}

void
metrics_policy_denial(const char *rule)
{
	labelled_inc(&pol_deny, rule);
}

void
metrics_delivery_failure(const char *area)
{
	labelled_inc(&deliv_fail, area);
}

void
metrics_peer_log_inconsistent(const char *area)
{
	labelled_inc(&peer_incons, area);
}

void
metrics_witness_send_failure(const char *area)
{
	labelled_inc(&witness_fail, area);
}

void
metrics_connection(int delta)
{
	atomic_fetch_add(&conn_current, delta);
	if (delta > 0)
		atomic_fetch_add(&conn_total, 1);
}

static void
render_labelled(buf_t *out, labelled_t *l, const char *metric,
    const char *label, const char *help)
{
	size_t i;

	buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", metric, help, metric);
	pthread_mutex_lock(&l->lock);
	for (i = 0; i < atomic_load(&l->n); i++)
		buf_printf(out, "%s{%s=\"%s\"} %llu\n", metric, label, l->name[i],
		    (unsigned long long)atomic_load(&l->count[i]));
	pthread_mutex_unlock(&l->lock);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void
label_value(buf_t *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			buf_puts(out, "\\n");
		else
			buf_append(out, v, 1);
	}
}

static void
render_expiry(buf_t *out, const metrics_gauges_t *g)
{
	size_t i;

	buf_puts(out, "# HELP visor_certificate_expiry_days Days until each loaded "
	    "certificate expires (negative: expired).\n"
	    "# TYPE visor_certificate_expiry_days gauge\n");
	for (i = 0; i < g->n_expiry; i++) {
		if (strcmp(g->expiry[i].role, "crl") == 0)
			continue;
		buf_puts(out, "visor_certificate_expiry_days{role=\"");
		label_value(out, g->expiry[i].role);
		buf_puts(out, "\",file=\"");
		label_value(out, g->expiry[i].file);
		buf_printf(out, "\"} %.3f\n", g->expiry[i].days);
	}
	buf_puts(out, "# HELP visor_crl_expiry_days Days until each loaded CRL "
	    "passes its nextUpdate (negative: stale; clients of that CA are "
	    "then refused).\n# TYPE visor_crl_expiry_days gauge\n");
	for (i = 0; i < g->n_expiry; i++) {
		if (strcmp(g->expiry[i].role, "crl") != 0)
			continue;
		buf_puts(out, "visor_crl_expiry_days{file=\"");
		label_value(out, g->expiry[i].file);
		buf_printf(out, "\"} %.3f\n", g->expiry[i].days);
	}
}

void
metrics_rate_limited(void)
{
	atomic_fetch_add(&rate_limited_total, 1);
}

int
metrics_render(const metrics_gauges_t *g, buf_t *out)
{
	size_t r, s, b;
	unsigned long long v, cum;

	buf_printf(out, "# HELP visor_connections Open client connections.\n"
	    "# TYPE visor_connections gauge\nvisor_connections %lld\n",
	    (long long)atomic_load(&conn_current));
	buf_printf(out, "# HELP visor_connections_total Accepted connections.\n"
	    "# TYPE visor_connections_total counter\nvisor_connections_total %llu\n",
	    (unsigned long long)atomic_load(&conn_total));
	buf_printf(out, "# HELP visor_connections_closed_before_hello_total Connections closed before sending a byte (port checks, connect scans); not audited.\n"
	    "# TYPE visor_connections_closed_before_hello_total counter\n"
	    "visor_connections_closed_before_hello_total %llu\n",
	    (unsigned long long)atomic_load(&closed_before_hello));
	buf_printf(out, "# HELP visor_requests_rate_limited_total Requests "
	    "refused 429 for their identity's rate "
	    "(limits.identity_requests_per_second).\n"
	    "# TYPE visor_requests_rate_limited_total counter\n"
	    "visor_requests_rate_limited_total %llu\n",
	    (unsigned long long)atomic_load(&rate_limited_total));
	if (g != NULL && g->n_workers > 0)
		buf_puts(out, "# HELP visor_worker_connections Open client "
		    "connections per worker thread.\n"
		    "# TYPE visor_worker_connections gauge\n");
	for (r = 0; g != NULL && r < g->n_workers; r++)
		buf_printf(out, "visor_worker_connections{worker=\"%zu\"} %u\n", r,
		    g->worker_conns[r]);
	buf_printf(out, "# HELP visor_requests_total Requests by route and status.\n"
	    "# TYPE visor_requests_total counter\n");
	for (r = 0; r < N_ROUTES; r++)
		for (s = 0; s < N_STATUS; s++) {
			v = atomic_load(&req_count[r][s]);
			if (v == 0)
				continue;
			if (s < N_STATUS - 1)
				buf_printf(out, "visor_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
				    routes[r], statuses[s], v);
			else
				buf_printf(out, "visor_requests_total{route=\"%s\",status=\"other\"} %llu\n",
				    routes[r], v);
		}
	buf_printf(out, "# HELP visor_request_duration_seconds Request latency.\n"
	    "# TYPE visor_request_duration_seconds histogram\n");
	for (r = 0; r < N_ROUTES; r++) {
		if (atomic_load(&lat_count[r]) == 0)
			continue;
		cum = 0;
		for (b = 0; b < N_BUCKETS; b++) {
			cum += atomic_load(&lat_bucket[r][b]);
			buf_printf(out, "visor_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
			    routes[r], (double)buckets[b] / 1e6, cum);
		}
		cum += atomic_load(&lat_bucket[r][N_BUCKETS]);
		buf_printf(out, "visor_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
		    routes[r], cum);
		buf_printf(out, "visor_request_duration_seconds_sum{route=\"%s\"} %g\n",
		    routes[r], (double)atomic_load(&lat_sum_us[r]) / 1e6);
		buf_printf(out, "visor_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    routes[r], (unsigned long long)atomic_load(&lat_count[r]));
	}
	render_labelled(out, &hs_fail, "visor_handshake_failures_total", "reason",
	    "Refused TLS handshakes by reason.");
	render_labelled(out, &pol_deny, "visor_policy_denials_total", "rule",
	    "Requests denied by policy, by deciding rule.");
	render_labelled(out, &deliv_fail, "visor_delivery_failures_total", "peer",
	    "Failed transfer delivery attempts by peer area.");
	render_labelled(out, &peer_incons, "visor_peer_log_inconsistent_total",
	    "peer", "Checkpoints of a peer's audit log refused as inconsistent "
	    "with the one held (rolled back or forked).");
	render_labelled(out, &witness_fail, "visor_witness_send_failures_total",
	    "peer", "Sends of this gateway's checkpoint to a peer that did not "
	    "end with the peer holding it.");
	if (g != NULL) {
		buf_printf(out, "# HELP visor_audit_log_size Leaves in the audit log.\n"
		    "# TYPE visor_audit_log_size gauge\nvisor_audit_log_size %llu\n",
		    (unsigned long long)g->audit_size);
		buf_printf(out, "# HELP visor_audit_checkpoint_size Leaves the latest signed checkpoint covers (the rest wait for the next).\n"
		    "# TYPE visor_audit_checkpoint_size gauge\nvisor_audit_checkpoint_size %llu\n",
		    (unsigned long long)g->checkpoint_size);
		buf_printf(out, "# HELP visor_audit_checkpoint_age_seconds Seconds since the last signed checkpoint.\n"
		    "# TYPE visor_audit_checkpoint_age_seconds gauge\n"
		    "visor_audit_checkpoint_age_seconds %g\n", g->checkpoint_age_s);
		buf_printf(out, "# HELP visor_store_jobs_total Store jobs (writes with their audit entries) finished.\n"
		    "# TYPE visor_store_jobs_total counter\nvisor_store_jobs_total %llu\n",
		    (unsigned long long)g->store_jobs);
		buf_printf(out, "# HELP visor_store_commits_total Group commits (one fsync each).\n"
		    "# TYPE visor_store_commits_total counter\nvisor_store_commits_total %llu\n",
		    (unsigned long long)g->store_commits);
		buf_printf(out, "# HELP visor_store_failed_commits_total Group commits that failed (storage errors).\n"
		    "# TYPE visor_store_failed_commits_total counter\nvisor_store_failed_commits_total %llu\n",
		    (unsigned long long)g->store_failed_commits);
		buf_printf(out, "# HELP visor_store_queued_jobs Store jobs waiting for the writer (it is in one commit meanwhile).\n"
		    "# TYPE visor_store_queued_jobs gauge\nvisor_store_queued_jobs %llu\n",
		    (unsigned long long)g->store_queued);
		buf_printf(out, "# HELP visor_store_oldest_wait_seconds How long the oldest queued store job has waited (0: none waits); past 10 s it is answered 503.\n"
		    "# TYPE visor_store_oldest_wait_seconds gauge\nvisor_store_oldest_wait_seconds %g\n",
		    g->store_oldest_wait_s);
		buf_printf(out, "# HELP visor_store_wait_expired_total Store jobs answered 503 unwritten after waiting limits.store_wait_max_ms for the writer (a stalled disk).\n"
		    "# TYPE visor_store_wait_expired_total counter\nvisor_store_wait_expired_total %llu\n",
		    (unsigned long long)g->store_wait_expired);
		buf_printf(out, "# HELP visor_uptime_seconds Seconds since start.\n"
		    "# TYPE visor_uptime_seconds gauge\nvisor_uptime_seconds %g\n",
		    g->uptime_s);
		buf_printf(out, "# HELP visor_certificate_expiry_seconds Seconds until the gateway certificate expires.\n"
		    "# TYPE visor_certificate_expiry_seconds gauge\n"
		    "visor_certificate_expiry_seconds %ld\n", g->cert_expiry_s);
		buf_printf(out, "# HELP visor_crl_expiry_seconds Seconds until the earliest CRL nextUpdate.\n"
		    "# TYPE visor_crl_expiry_seconds gauge\n"
		    "visor_crl_expiry_seconds %ld\n", g->crl_expiry_s);
		render_expiry(out, g);
		if (g->outbox != NULL)
			g->outbox(g->outbox_ctx, out);
	}
	return 0;
}
