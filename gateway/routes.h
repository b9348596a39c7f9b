/*
 * routes: the HTTP API of SPEC section 5, dispatched by method and path.
 * Handlers live in routes_*.c; each answers its request exactly once.
 */
#ifndef GATEWAY_ROUTES_H
#define GATEWAY_ROUTES_H

#include <stdint.h>

#include "gateway/request.h"

/* Route r to its handler, or answer 404/405. */
void routes_dispatch(gw_request_t *r);

/* 1 if s is a record or transfer id ([A-Z0-9-]{3,64}; also lowercase hex
 * and '-' for transfer ids when allow_lower). */
int routes_valid_id(const char *s, size_t len, int allow_lower);

/* Query parameter key as a decimal integer: 0 read, 1 absent (and not
 * required), -1 malformed, or absent when required. */
int routes_query_u64(gw_request_t *r, const char *key, uint64_t *out,
    int required);

/* 1 if r's Content-Type is want (parameters such as charset allowed). */
int routes_content_type_is(gw_request_t *r, const char *want);

/* Handlers (routes_records.c, routes_audit.c, routes_transfers.c). */
void route_record(gw_request_t *r, const char *id);
void route_record_history(gw_request_t *r, const char *id);
void route_transfers_post(gw_request_t *r);
void route_transfer_get(gw_request_t *r, const char *id);
void route_peer_transfers(gw_request_t *r);
void route_audit(gw_request_t *r, const char *what);

/* Witnessing (routes_witness.c): POST /v1/peer/checkpoints, and GET
 * /v1/audit/witnessed once route_audit has let the caller in (an auditor;
 * own_auditor: of this area, who sees every peer's checkpoint; else of a
 * peer area, who sees that area's only). */
void route_peer_checkpoints(gw_request_t *r);
void route_audit_witnessed(gw_request_t *r, int own_auditor);
/* GET /v1/status (routes_status.c). */
void route_status(gw_request_t *r);

#endif
