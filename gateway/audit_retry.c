#include "gateway/audit_retry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define RETRY_OPS 4

typedef struct kept {
	char op[24], actor_id[160], cert[72], result[32], reason[96], policy[72];
	unsigned char has_cert, has_result, has_reason, has_policy;
	struct kept *next;
} kept_t;

static struct {
	pthread_mutex_t mu;
	kept_t *head, *tail;
	size_t n;
	int in_flight;
	char over_op[RETRY_OPS][24];
	unsigned long over[RETRY_OPS];
} ar = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, 0, {{0}}, {0} };

static int
copy_field(char *dst, size_t max, const char *src, unsigned char *has)
{
	size_t n;

	if (has != NULL)
		*has = src != NULL;
	if (src == NULL) {
		dst[0] = '\0';
		return 0;
	}
	if ((n = strlen(src)) >= max)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

static kept_t *
kept_new(const audit_entry_t *e)
{
	kept_t *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	if (e->op == NULL || e->actor_id == NULL ||
	    copy_field(k->op, sizeof(k->op), e->op, NULL) < 0 ||
	    copy_field(k->actor_id, sizeof(k->actor_id), e->actor_id, NULL) < 0 ||
	    copy_field(k->cert, sizeof(k->cert), e->actor_cert, &k->has_cert) < 0 ||
	    copy_field(k->result, sizeof(k->result), e->result,
	    &k->has_result) < 0 ||
	    copy_field(k->reason, sizeof(k->reason), e->reason,
	    &k->has_reason) < 0 ||
	    copy_field(k->policy, sizeof(k->policy), e->policy,
	    &k->has_policy) < 0) {
		free(k);
		return NULL;
	}
	return k;
}

static void
kept_entry(const kept_t *k, audit_entry_t *e)
{
	memset(e, 0, sizeof(*e));
	e->op = k->op;
	e->actor_id = k->actor_id;
	e->actor_cert = k->has_cert ? k->cert : NULL;
	e->result = k->has_result ? k->result : NULL;
	e->reason = k->has_reason ? k->reason : NULL;
	e->policy = k->has_policy ? k->policy : NULL;
}

/* Count one entry of op that could not be kept.  With ar.mu held. */
static void
overflow_locked(const char *op, unsigned long n)
{
	size_t i;

	for (i = 0; i < RETRY_OPS - 1 && ar.over_op[i][0] &&
	    strcmp(ar.over_op[i], op) != 0; i++)
		;
	if (ar.over_op[i][0] == '\0')
		snprintf(ar.over_op[i], sizeof(ar.over_op[i]), "%s", op);
	ar.over[i] += n;
}

/* Keep a list of entries (in order) ahead of those kept already. */
static void
keep_front(kept_t *list)
{
	kept_t *k, *next, *first = NULL, *last = NULL;

	pthread_mutex_lock(&ar.mu);
	for (k = list; k != NULL; k = next) {
		next = k->next;
		k->next = NULL;
		if (ar.n >= AUDIT_RETRY_MAX) {
			overflow_locked(k->op, 1);
			free(k);
			continue;
		}
		ar.n++;
		if (last != NULL)
			last->next = k;
		else
			first = k;
		last = k;
	}
	if (last != NULL) {
		last->next = ar.head;
		ar.head = first;
		if (ar.tail == NULL)
			ar.tail = last;
	}
	pthread_mutex_unlock(&ar.mu);
}

static void
one_done(void *arg, const store_result_t *r)
{
	kept_t *k = arg;

	if (r->status == STORE_OK) {
		free(k);
		return;
	}
	log_event(LOG_ERROR, "audit-write-failed", "op", k->op, "error", r->err,
	    "action", "kept, written again when the store records", NULL);
	pthread_mutex_lock(&ar.mu);
	if (ar.n >= AUDIT_RETRY_MAX) {
		overflow_locked(k->op, 1);
		free(k);
	} else {
		if (ar.tail != NULL)
			ar.tail->next = k;
		else
			ar.head = k;
		ar.tail = k;
		ar.n++;
	}
	pthread_mutex_unlock(&ar.mu);
}

static void
once_done(void *arg, const store_result_t *r)
{
	(void)arg;
	if (r->status != STORE_OK)
		log_event(LOG_ERROR, "audit-write-failed", "error", r->err,
		    "action", "lost: the entry could not be kept", NULL);
}

void
audit_retry_submit(store_t *s, const audit_entry_t *e)
{
	store_job_t *job;
	audit_entry_t c;
	kept_t *k;

	if ((k = kept_new(e)) == NULL) {
		/* Fields too long to keep: one try, without a retry. */
		if ((job = store_job_new()) != NULL && store_job_audit(job, e) == 0) {
			store_submit(s, job, once_done, NULL);
			return;
		}
		store_job_free(job);
		log_event(LOG_ERROR, "audit-write-failed", "op",
		    e->op ? e->op : "-", "error", "cannot build the job", NULL);
		return;
	}
	kept_entry(k, &c);
	if ((job = store_job_new()) == NULL || store_job_audit(job, &c) < 0) {
		store_job_free(job);
		log_event(LOG_ERROR, "audit-write-failed", "op", k->op, "error",
		    "cannot build the job", NULL);
		free(k);
		return;
	}
	store_submit(s, job, one_done, k);
}

typedef struct {
	kept_t *list;
	char over_op[RETRY_OPS][24];
	unsigned long over[RETRY_OPS];
} retry_batch_t;

static void
retry_done(void *arg, const store_result_t *r)
{
	retry_batch_t *b = arg;
	kept_t *k, *next;
	size_t i;

	if (r->status == STORE_OK) {
		for (k = b->list; k != NULL; k = next) {
			next = k->next;
			free(k);
		}
		log_event(LOG_INFO, "audit-retry-recorded", NULL);
	} else {
		keep_front(b->list);
		pthread_mutex_lock(&ar.mu);
		for (i = 0; i < RETRY_OPS && b->over_op[i][0]; i++)
			if (b->over[i] > 0)
				overflow_locked(b->over_op[i], b->over[i]);
		pthread_mutex_unlock(&ar.mu);
	}
	pthread_mutex_lock(&ar.mu);
	ar.in_flight = 0;
	pthread_mutex_unlock(&ar.mu);
	free(b);
}

void
audit_retry_tick(store_t *s)
{
	retry_batch_t *b;
	store_job_t *job;
	audit_entry_t e;
	kept_t *k;
	char reason[32];
	size_t i;
	int any = 0;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return;
	pthread_mutex_lock(&ar.mu);
	if (ar.in_flight || (ar.head == NULL && ar.over[0] == 0 &&
	    ar.over[1] == 0 && ar.over[2] == 0 && ar.over[3] == 0)) {
		pthread_mutex_unlock(&ar.mu);
		free(b);
		return;
	}
	b->list = ar.head;
	ar.head = ar.tail = NULL;
	ar.n = 0;
	memcpy(b->over_op, ar.over_op, sizeof(b->over_op));
	memcpy(b->over, ar.over, sizeof(b->over));
	memset(ar.over, 0, sizeof(ar.over));
	ar.in_flight = 1;
	pthread_mutex_unlock(&ar.mu);
	if ((job = store_job_new()) == NULL)
		goto fail;
	for (k = b->list; k != NULL; k = k->next) {
		kept_entry(k, &e);
		if (store_job_audit(job, &e) < 0)
			goto fail;
		any = 1;
	}
	for (i = 0; i < RETRY_OPS && b->over_op[i][0]; i++) {
		if (b->over[i] == 0)
			continue;
		snprintf(reason, sizeof(reason), "%lu", b->over[i]);
		memset(&e, 0, sizeof(e));
		e.op = b->over_op[i];
		e.actor_id = "-";
		e.result = "unrecorded";
		e.reason = reason;
		if (store_job_audit(job, &e) < 0)
			goto fail;
		any = 1;
	}
	if (!any)
		goto fail;
	store_submit(s, job, retry_done, b);
	return;
fail:
	store_job_free(job);
	{
		store_result_t r;

		memset(&r, 0, sizeof(r));
		r.status = STORE_FAILED;
		retry_done(b, &r);
	}
}

size_t
audit_retry_pending(void)
{
	size_t n;

	pthread_mutex_lock(&ar.mu);
	n = ar.n;
	pthread_mutex_unlock(&ar.mu);
	return n;
}

void
audit_retry_reset(void)
{
	kept_t *k, *next;
	unsigned long lost;
	char n[32];
	size_t i;

	pthread_mutex_lock(&ar.mu);
	lost = ar.n;
	for (i = 0; i < RETRY_OPS; i++)
		lost += ar.over[i];
	for (k = ar.head; k != NULL; k = next) {
		next = k->next;
		free(k);
	}
	ar.head = ar.tail = NULL;
	ar.n = 0;
	memset(ar.over, 0, sizeof(ar.over));
	memset(ar.over_op, 0, sizeof(ar.over_op));
	pthread_mutex_unlock(&ar.mu);
	if (lost > 0) {
		snprintf(n, sizeof(n), "%lu", lost);
		log_event(LOG_ERROR, "audit-unrecorded", "count", n, NULL);
	}
}
