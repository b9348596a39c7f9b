/*
 * request: what a route handler sees of one HTTP request, without libevent.
 * Every request is answered exactly once, with gw_reply or gw_reply_error,
 * either at once or from a continuation after a store job (gw_submit).
 */
#ifndef GATEWAY_REQUEST_H
#define GATEWAY_REQUEST_H

#include <stddef.h>

#include "crypto/identity.h"
#include "gateway/store.h"

typedef struct gw_request gw_request_t;
typedef struct gateway gateway_t;

const char *gw_req_method(const gw_request_t *r);	/* "GET", "PUT", ... */
const char *gw_req_path(const gw_request_t *r);	/* path without the query */
/* Query parameter value (decoded), or NULL if absent. */
const char *gw_req_query(const gw_request_t *r, const char *key);
/* 0 if every query parameter is one of keys (NULL-ended) and none is
 * given twice; -1 otherwise. */
int gw_req_query_only(const gw_request_t *r, const char *const *keys);
/* Header value, or NULL. */
const char *gw_req_header(const gw_request_t *r, const char *name);
/* The body (NUL-terminated copy; len excludes the NUL). */
const char *gw_req_body(const gw_request_t *r, size_t *len);
const identity_t *gw_req_identity(const gw_request_t *r);
const char *gw_req_cert_hash(const gw_request_t *r);
/* The client certificate of the connection (owned by the connection). */
struct x509_st *gw_req_peer_cert(const gw_request_t *r);
const char *gw_req_id(const gw_request_t *r);
gateway_t *gw_req_gateway(const gw_request_t *r);
/* The configuration/TLS/policy generation this request runs under. */
struct gw_gen *gw_req_gen(const gw_request_t *r);
/* Milliseconds since the epoch, for the transfer deadlines (kept in the
 * store, so across restarts). */
long long gw_now_ms(void);
/* Milliseconds on the monotonic clock, for waits and ages inside one run
 * of the gateway: a step of the wall clock (NTP, an operator) moves
 * neither. */
long long gw_mono_ms(void);
/* The store reader of the worker thread running this request. */
store_reader_t *gw_req_reader(const gw_request_t *r);

/* Per-request state for continuations; freed with free_fn when the request
 * is answered. */
void gw_req_set_state(gw_request_t *r, void *state, void (*free_fn)(void *));
void *gw_req_state(const gw_request_t *r);

/* Add a response header (before the reply). */
void gw_reply_header(gw_request_t *r, const char *name, const char *value);

/* Answer with status and body (content type "application/json" if NULL). */
void gw_reply(gw_request_t *r, int status, const char *content_type,
    const char *body, size_t len);

/* Answer with the SPEC error body
 * {"error":{"code":...,"message":...,"request_id":...}}. */
void gw_reply_error(gw_request_t *r, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Hand job to the store; when it is durable (or failed) cont runs on this
 * request's worker thread with the result.  The request stays open. */
void gw_submit(gw_request_t *r, store_job_t *job,
    void (*cont)(gw_request_t *r, const store_result_t *res));

/* Every refusal (4xx) of this request is written to the audit log before
 * it is answered (SPEC 8: failed requests are logged too), with record as
 * the entry's record (may be NULL).  Routes that change or reveal data call
 * this first. */
void gw_req_audit_failures(gw_request_t *r, const char *record);
/* The record named by gw_req_audit_failures, or NULL. */
const char *gw_req_audit_record(const gw_request_t *r);

/* This request's outcome has its own audit entry: no second one for a
 * refusal. */
void gw_req_mark_audited(gw_request_t *r);

/* Name of the matched route for metrics and logs ("records", ...). */
void gw_req_set_route(gw_request_t *r, const char *route);

#endif
