/*
 * monotime: deadlines on CLOCK_MONOTONIC for pthread_cond_timedwait on a
 * condition variable made with pthread_condattr_setclock(CLOCK_MONOTONIC),
 * so that a step of the wall clock neither stretches nor cuts a wait.
 */
#ifndef UTIL_MONOTIME_H
#define UTIL_MONOTIME_H

#include <time.h>

/* *ts = now on CLOCK_MONOTONIC plus ms (ms >= 0), normalised. */
void monotime_after(struct timespec *ts, long ms);

#endif
