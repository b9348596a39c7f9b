/*
 * log: one line per event on stderr, as key=value pairs
 *   ts=2026-11-24T08:00:00.123Z level=info event=request status=200 ...
 * Values with spaces, quotes or control characters are quoted and escaped, so
 * a line can always be split back into its pairs.  Never pass secrets.
 */
#ifndef UTIL_LOG_H
#define UTIL_LOG_H

#include <stdarg.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Set the least level written (default LOG_INFO). */
void log_set_level(log_level_t level);

/* Write one line: event name, then alternating key, value (const char *)
 * pairs, ended by a NULL key.  Thread-safe: the line is written whole. */
void log_event(log_level_t level, const char *event, ...);

/* printf-style message, written as event=<event> msg="...". */
void log_msg(log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Per-thread batching, for threads that log a line per request (the
 * gateway's workers): after log_thread_batch(1), this thread's lines at
 * info and below collect in a buffer that is written, whole lines only, by
 * log_thread_flush(), when it holds 32 KiB, or at the next warn or error
 * line (which is written at once, after the lines before it).  The caller
 * flushes on a short timer; log_thread_batch(0) flushes and stops.  A crash
 * loses at most the lines since the last flush; the audit log, not this
 * one, is the durable record.
 */
void log_thread_batch(int on);
void log_thread_flush(void);

/* Current UTC time as RFC 3339 with milliseconds, "2026-11-24T08:00:00.123Z";
 * out must hold 25 bytes. */
void log_time_rfc3339(char out[25]);

#endif
