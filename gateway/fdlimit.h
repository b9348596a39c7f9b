/*
 * fdlimit: the gateway's file descriptors against RLIMIT_NOFILE.  Each
 * client connection holds one descriptor; the gateway itself needs a
 * reserve besides (its event loops and listening sockets, the store's
 * SQLite files, checkpoint files, the files a reload reads, the metrics
 * listener, the outbox's connections to peers).  A soft limit below
 * limits.max_connections plus that reserve made accept(2) fail with
 * EMFILE once the clients took the descriptors, and the store, the
 * checkpointer and reloads fail with them: the start refuses that
 * instead.
 */
#ifndef GATEWAY_FDLIMIT_H
#define GATEWAY_FDLIMIT_H

#include <stddef.h>

#include "gateway/config.h"

typedef struct {
	unsigned long conns;	/* client connections: the workers' caps */
	unsigned long reserve;	/* the gateway's own descriptors */
	unsigned long need;	/* conns + reserve */
	unsigned long soft, hard;	/* RLIMIT_NOFILE as found */
	int raised;		/* 1: the soft limit was raised to hard */
} fdlimit_t;

/*
 * The descriptors cfg needs: conns is limits.max_connections rounded up
 * to a whole share per worker thread (each worker holds up to
 * ceil(max_connections / threads)); reserve is 64 for the process (the
 * standard streams, the main loop and its signals, the metrics listener
 * and its clients' requests, the store's writer and checkpointer with
 * their WAL, shared memory and lock files, checkpoint, reload and SQLite
 * temporary files), 8 per worker thread (its loop, its copy of the
 * listening socket, its store reader) and 2 * max_in_flight_per_peer + 8
 * per peer (the outbox's connections and their resolver).  Fills conns,
 * reserve and need of *out.
 */
void fdlimit_need(const config_t *cfg, fdlimit_t *out);

/*
 * fdlimit_need, then compare with RLIMIT_NOFILE: a soft limit below need
 * is raised to the hard limit when that covers need and apply is 1 (a
 * --check-config passes 0: the check only says whether a start could).
 * Returns 0 with *out filled (out->raised set when raised), or -1 with
 * err naming both numbers and the fix (raise LimitNOFILE= or ulimit -n,
 * or lower limits.max_connections to what the limit allows).
 */
int fdlimit_ensure(const config_t *cfg, int apply, fdlimit_t *out, char *err,
    size_t errlen);

#endif
