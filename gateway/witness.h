/*
 * witness: peer witnessing of the audit log, the sending side (an addition
 * to SPEC 8; docs/AUDIT.md, docs/SPEC-NOTES.md).
 *
 * A gateway refuses to start on a store behind its own checkpoint.last,
 * but whoever holds root on its host can roll both back together.  So
 * each gateway sends its latest signed checkpoint to every peer, which
 * keeps the latest one it verified (gateway/routes_witness.c) and refuses
 * one that is not consistent with it (RFC 9162 consistency proofs, as C2SP
 * tlog-witness does): a rollback or fork is then seen off the host.
 *
 * One thread, beside the delivery workers and sharing nothing with them
 * but the store's readers: a peer that is down costs this thread a
 * connect timeout, never a transfer or a request.  For each peer, when
 * the signed checkpoint has grown since the last send, and at most every
 * audit.witness_interval_s: POST /v1/peer/checkpoints with the note and a
 * consistency proof from the size the peer last said it holds (none known
 * after a start: the first answer says, and the proof follows at once).
 * A peer that does not answer is tried again after a backoff.
 */
#ifndef GATEWAY_WITNESS_H
#define GATEWAY_WITNESS_H

#include <stddef.h>

#include "gateway/gateway.h"

typedef struct witness witness_t;

/* Prepare for gw's configured peers (no thread yet); says once in the log
 * which peers this gateway does not witness (no audit_vkey configured),
 * and that sending is off when audit.witness_interval_s is 0.  NULL with
 * err. */
witness_t *witness_new(gateway_t *gw, char *err, size_t errlen);

/* Start the sending thread (none when sending is off or there is no
 * peer).  0 or -1. */
int witness_start(witness_t *w);

/* Stop the thread (a send in flight is cut off) and free.  NULL does
 * nothing. */
void witness_free(witness_t *w);

#endif
