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
 * store, policy, the signal handlers, and the sockets of "listen" and
 * "metrics_listen", bound but not listening yet (a client is refused
 * until server_run).  NULL with err on failure. */
server_t *server_new(const char *config_path, config_t *cfg, char *err,
    size_t errlen);

/* Listen on both sockets, then run until SIGTERM/SIGINT, drain in-flight
 * requests and stop.  Returns 0 on a clean stop; -1 if the start failed
 * or the main loop did (the workers are stopped and joined either way:
 * server_free may follow). */
int server_run(server_t *s);

void server_free(server_t *s);

/*
 * For tests and fuzzing only (tests/fuzz/fuzz_http.c): main.c calls none of
 * these.
 *
 * server_new_plain: like server_new, but without TLS, listeners of its
 * own, metrics, signal handlers, delivery threads or the drop of
 * privileges: one worker whose HTTP server accepts plain TCP connections on
 * listen_fd (a listening socket the caller keeps and closes) and treats
 * each as if its TLS handshake had verified the identity set with
 * server_plain_identity (until one is set, every request gets 403).  The
 * store and its writer thread are real.  Nothing runs until the caller
 * calls server_plain_run_once.  At most one such server at a time; free it
 * with server_free.  NULL with err on failure (cfg is consumed either way).
 *
 * server_plain_identity: the identity (a visor URI) and certificate (may be
 * NULL; the server takes its own reference) that requests from now on run
 * as; uri NULL: none (403).  0, or -1 with err (a malformed URI).
 *
 * server_plain_run_once: one turn of the worker's event loop: if wait_ms
 * is 0, handle what is ready and return; else wait up to wait_ms for
 * something to happen first.  Fills st (may be NULL) with the count of
 * requests started so far and of those still waiting for the store, the
 * request memory the connections hold, the open connections and the
 * identities that hold request memory (all three 0 once every connection
 * is closed and seen closed).  0, or -1 if s is not a plain server.
 */
typedef struct {
	unsigned long long requests;	/* requests handed to the routes */
	int inflight;			/* not yet answered */
	size_t request_memory;		/* bytes the connections hold,
					   counted (limits.max_request_memory_mib) */
	unsigned conns;			/* open connections */
	unsigned holders;		/* identities holding request memory */
} server_plain_stats_t;

struct x509_st;

server_t *server_new_plain(const char *config_path, config_t *cfg,
    int listen_fd, char *err, size_t errlen);
int server_plain_identity(server_t *s, const char *uri, struct x509_st *cert,
    char *err, size_t errlen);
int server_plain_run_once(server_t *s, unsigned wait_ms,
    server_plain_stats_t *st);

#endif
