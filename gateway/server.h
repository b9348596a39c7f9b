/*
 * server: the HTTPS front of the gateway on libevent (evhttp over
 * bufferevent_openssl), one event loop per worker thread sharing one
 * listening socket, plus the plain loopback metrics listener and the signal
 * handling (SIGHUP reload, SIGTERM drain).  The only module that includes
 * libevent headers.
 */
#ifndef GATEWAY_SERVER_H
#define GATEWAY_SERVER_H

#include "gateway/config.h"

typedef struct server server_t;

/* Set up everything from the configuration file at config_path (already
 * validated into cfg, whose ownership passes to the server): TLS context,
 * store, policy, listeners.  NULL with err on failure. */
server_t *server_new(const char *config_path, config_t *cfg, char *err,
    size_t errlen);

/* Run until SIGTERM/SIGINT, then drain in-flight requests and stop.
 * Returns 0 on a clean stop. */
int server_run(server_t *s);

void server_free(server_t *s);

#endif
