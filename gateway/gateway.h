/*
 * gateway: the running gateway's shared state, handed to every route.
 */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include <stdint.h>
#include <time.h>

#include "gateway/config.h"
#include "gateway/store.h"

typedef struct gw_policy gw_policy_t;
struct outbox;

struct gateway {
	config_t *cfg;		/* current configuration (swapped on reload) */
	store_t *store;
	long long started_ms;	/* gw_mono_ms() at start: the uptime
				 * survives a step of the wall clock */
	struct outbox *outbox;	/* transfer delivery worker, may be NULL */
};

typedef struct gateway gateway_t;

#endif
