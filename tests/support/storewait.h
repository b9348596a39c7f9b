/*
 * storewait: submit store jobs and wait for their group commits, for the
 * tests that drive the store directly.
 */
#ifndef TESTS_SUPPORT_STOREWAIT_H
#define TESTS_SUPPORT_STOREWAIT_H

#include <pthread.h>

#include "gateway/store.h"

/* One job's completion. */
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	store_result_t r;
} store_waiter_t;

/* Submit j to s; store_waiter_wait(w) then blocks until it is finished. */
void store_submit_waiter(store_t *s, store_job_t *j, store_waiter_t *w);

/* Wait for the job submitted with w, release w, and return its result. */
store_result_t store_waiter_wait(store_waiter_t *w);

/* Submit j to s and block until the writer has finished it; its result. */
store_result_t store_submit_wait(store_t *s, store_job_t *j);

#endif
