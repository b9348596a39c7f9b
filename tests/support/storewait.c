#include "tests/support/storewait.h"

#include <string.h>

static void
on_done(void *arg, const store_result_t *r)
{
	store_waiter_t *w = arg;

	pthread_mutex_lock(&w->mu);
	w->r = *r;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
store_submit_waiter(store_t *s, store_job_t *j, store_waiter_t *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	store_submit(s, j, on_done, w);
}

store_result_t
store_waiter_wait(store_waiter_t *w)
{
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	return w->r;
}

store_result_t
store_submit_wait(store_t *s, store_job_t *j)
{
	store_waiter_t w;

	store_submit_waiter(s, j, &w);
	return store_waiter_wait(&w);
}
