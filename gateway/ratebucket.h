/*
 * ratebucket: a token bucket per client identity (the URI of its
 * certificate), shared by every worker thread, on the monotonic clock.
 *
 * A bucket holds at most burst tokens and gains rate tokens a second; a
 * request takes one or is refused.  The table holds at most max_identities
 * buckets; an identity that finds it full (every bucket taken by an
 * identity seen within the last burst / rate seconds) shares one overflow
 * bucket with every other such identity: refused together, never let
 * through unbounded.  A bucket that has refilled and has nothing left to
 * report is forgotten by ratebucket_flush (forgetting it changes nothing: a
 * new bucket starts full), so the table holds only recent identities.
 *
 * Refusals are reported for each bucket at most once a second: to the
 * caller of the refusal that finds the previous report a second old or
 * more, else to ratebucket_flush.  No I/O here; the caller logs and audits.
 */
#ifndef GATEWAY_RATEBUCKET_H
#define GATEWAY_RATEBUCKET_H

#include <stddef.h>

typedef struct ratebucket ratebucket_t;

/* The identity a report of the overflow bucket names (ratebucket_flush). */
#define RATEBUCKET_OVERFLOW_ID "*"

/* A table for max_identities identities (at least 1), or NULL (out of
 * memory).  Free with ratebucket_free. */
ratebucket_t *ratebucket_new(size_t max_identities);

/* Free rl and its buckets; NULL does nothing. */
void ratebucket_free(ratebucket_t *rl);

/* One request of identity uri (NUL-terminated; longer names are cut to
 * the table's key length) at now_ms on the monotonic clock, under rate
 * tokens a second and at most burst tokens.  rate 0 lets every request
 * through and records nothing.  Returns 1 if the request may go on, 0 if
 * it is refused.  *report is set to the refusals of its bucket to report
 * now (this one included) when this refusal finds the bucket's previous
 * report a second old or more, else to 0; *shared to 1 if uri is counted
 * in the overflow bucket (the table was full), else 0.  Thread-safe. */
int ratebucket_take(ratebucket_t *rl, const char *uri, unsigned rate,
    unsigned burst, long long now_ms, unsigned long *report, int *shared);

/* For every bucket with refusals not yet reported whose previous report is
 * a second old or more at now_ms: report(uri, refusals, arg), outside the
 * table's lock (uri is RATEBUCKET_OVERFLOW_ID for the overflow bucket).
 * Then forget the buckets that have refilled (under rate and burst) and
 * have nothing to report.  Call it about once a second, so that a flood
 * that stopped still gets its last count reported.  Returns how many
 * reports were made.  Thread-safe. */
size_t ratebucket_flush(ratebucket_t *rl, unsigned rate, unsigned burst,
    long long now_ms, void (*report)(const char *uri, unsigned long refused,
    void *arg), void *arg);

/* Buckets in the table now (the overflow bucket not counted). */
size_t ratebucket_size(ratebucket_t *rl);

#endif
