/*
 * audit_retry: audit entries that no request waits for (refused
 * handshakes, configuration reloads).  There is nobody to answer 503, so
 * an entry the store cannot record (a broken or full disk) is kept in
 * memory and submitted again by audit_retry_tick, once a second, until it
 * is durable: the log gets it late rather than never.  At most
 * AUDIT_RETRY_MAX entries are kept; past that, the overflow is counted per
 * op and written, once the store records again, as one entry per op with
 * result "unrecorded" and reason the count, so the log still says how
 * many events it misses.  Entries that are still pending when the
 * gateway stops are counted in its log (event=audit-unrecorded).
 *
 * Only op, actor_id, actor_cert, result, reason and policy are kept: the
 * fields these entries use.
 */
#ifndef GATEWAY_AUDIT_RETRY_H
#define GATEWAY_AUDIT_RETRY_H

#include <stddef.h>

#include "gateway/audit_entry.h"
#include "gateway/store.h"

#define AUDIT_RETRY_MAX 4096

/* Submit e to s without waiting; if it fails it is kept for the ticks. */
void audit_retry_submit(store_t *s, const audit_entry_t *e);

/* Submit every kept entry again (one job), unless the previous retry is
 * still in flight.  Call about once a second. */
void audit_retry_tick(store_t *s);

/* Entries kept and not yet recorded (for tests and metrics). */
size_t audit_retry_pending(void);

/* Drop what is kept, logging how many (after store_close). */
void audit_retry_reset(void);

#endif
