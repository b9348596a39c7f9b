/*
 * loadgen: a closed-loop HTTP load generator on libcurl's multi interface,
 * for the benchmarks (tests/bench/bench_http.c).  N connections, each a
 * persistent easy handle with a client certificate; each sends its next
 * request as soon as its previous response arrives, for a fixed duration.
 * Keep-alive by default; with new_connection every request makes a fresh
 * connection with a full TLS handshake (no session reuse).  The client
 * certificate file may hold the chain after the leaf; it is sent.
 *
 * Part of the client layer: client/ is the only folder that includes
 * curl/curl.h.
 */
#ifndef CLIENT_LOADGEN_H
#define CLIENT_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

/* Builds request k (k counts from 0 across all connections): fills the
 * method, path (appended to base_url), body and headers.  Strings must stay
 * valid until the next call for the same connection slot. */
typedef struct {
	const char *method;
	const char *path;
	const char *body;
	size_t body_len;
	const char *const *headers;	/* NULL-terminated "Name: value" */
} loadgen_req_t;

typedef void (*loadgen_next_fn)(void *ctx, unsigned slot, uint64_t k,
    loadgen_req_t *out);

typedef struct {
	const char *base_url;	/* "https://127.0.0.1:8441" */
	const char *cert, *key, *cacert;
	unsigned connections;
	double duration_s;
	int new_connection;	/* full handshake per request */
	loadgen_next_fn next;
	void *ctx;
	double idle_hold_s;	/* > 0: open the connections with one request
				   each, then hold them idle this long */
	void (*on_idle)(void *ctx);	/* called once while connections are held */
	double late_s;		/* a request unanswered this long after the
				   end fails and the run ends (0: 10 s) */
	unsigned threads;	/* event loops, each with its share of the
				   connections (0: 1; idle mode: 1); next()
				   is then called from several threads at
				   once, each only with its own slots */
	long expect_status;	/* 0: any 2xx answer is served; else only
				   this status is, and every other one is
				   an HTTP error */
} loadgen_opts_t;

typedef struct {
	uint64_t ok;		/* 2xx, or expect_status */
	uint64_t http_errors;	/* other statuses */
	uint64_t failures;	/* transport errors */
	double elapsed_s;
	double rps;
	double p50_ms, p99_ms, max_ms;
	double cpu_s;		/* this process's CPU time during the run */
	long first_error_status;
	char first_error[256];
} loadgen_result_t;

/* Run; 0 or -1 (setup failed, err set). */
int loadgen_run(const loadgen_opts_t *o, loadgen_result_t *res, char *err,
    size_t errlen);

#endif
