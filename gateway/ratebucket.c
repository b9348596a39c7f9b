#include "gateway/ratebucket.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"

/* Tokens are counted in thousandths: rate tokens a second is rate
 * thousandths a millisecond, exact in integers at every rate. */
#define MILLI 1000LL

struct bucket {
	char uri[IDENTITY_URI_MAX];
	long long tokens;	/* thousandths of a token */
	long long updated_ms;	/* tokens are as of this time */
	long long reported_ms;	/* the last report, if reported */
	int reported;
	unsigned long pending;	/* refusals since the last report */
	struct bucket *next;	/* in its chain, or in the free list */
};

struct report {
	char uri[IDENTITY_URI_MAX];
	unsigned long refused;
};

struct ratebucket {
	pthread_mutex_t mu;
	struct bucket **chains;
	size_t mask;		/* chains - 1, a power of two less one */
	struct bucket *pool;	/* max buckets */
	struct bucket *free;	/* forgotten buckets, to be used again */
	size_t fresh;		/* pool[fresh..max) never used yet: left
				   untouched, so not resident until needed */
	size_t max, used;
	struct bucket overflow;
	pthread_mutex_t flush_mu;	/* one flush at a time: reports */
	struct report *reports;	/* max + 1 */
};

static size_t
hash_uri(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

ratebucket_t *
ratebucket_new(size_t max_identities)
{
	ratebucket_t *rl;
	size_t n = 16;

	if (max_identities == 0 || max_identities > (1u << 20))
		return NULL;
	while (n < max_identities)
		n <<= 1;
	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		goto err0;
	if ((rl->chains = calloc(n, sizeof(*rl->chains))) == NULL)
		goto err1;
	if ((rl->pool = calloc(max_identities, sizeof(*rl->pool))) == NULL)
		goto err2;
	if ((rl->reports = calloc(max_identities + 1,
	    sizeof(*rl->reports))) == NULL)
		goto err3;
	if (pthread_mutex_init(&rl->mu, NULL) != 0)
		goto err4;
	if (pthread_mutex_init(&rl->flush_mu, NULL) != 0)
		goto err5;
	rl->mask = n - 1;
	rl->max = max_identities;
	snprintf(rl->overflow.uri, sizeof(rl->overflow.uri), "%s",
	    RATEBUCKET_OVERFLOW_ID);
	rl->overflow.updated_ms = -1;	/* filled on first use */
	return rl;
err5:
	pthread_mutex_destroy(&rl->mu);
err4:
	free(rl->reports);
err3:
	free(rl->pool);
err2:
	free(rl->chains);
err1:
	free(rl);
err0:
	return NULL;
}

void
ratebucket_free(ratebucket_t *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->flush_mu);
	pthread_mutex_destroy(&rl->mu);
	free(rl->reports);
	free(rl->pool);
	free(rl->chains);
	free(rl);
}

/* Bring b's tokens to now_ms under rate and burst (rate > 0). */
static void
refill(struct bucket *b, unsigned rate, unsigned burst, long long now_ms)
{
	long long full = (long long)burst * MILLI, elapsed;

	if (b->updated_ms < 0) {
		b->tokens = full;
		b->updated_ms = now_ms;
		return;
	}
	/* now_ms was read before the lock: another thread may have moved
	 * the bucket past it.  Time never runs back for a bucket. */
	if (now_ms > b->updated_ms) {
		elapsed = now_ms - b->updated_ms;
		/* elapsed * rate must not overflow: past a whole refill, the
		 * bucket is full whatever the product. */
		if (elapsed >= full / (long long)rate + 1)
			b->tokens = full;
		else
			b->tokens += elapsed * (long long)rate;
		b->updated_ms = now_ms;
	}
	/* A reload may have lowered the burst. */
	if (b->tokens > full)
		b->tokens = full;
}

static struct bucket *
lookup(ratebucket_t *rl, const char *uri, size_t h)
{
	struct bucket *b;

	for (b = rl->chains[h & rl->mask]; b != NULL; b = b->next)
		if (strcmp(b->uri, uri) == 0)
			return b;
	return NULL;
}

int
ratebucket_take(ratebucket_t *rl, const char *uri, unsigned rate,
    unsigned burst, long long now_ms, unsigned long *report, int *shared)
{
	char key[IDENTITY_URI_MAX];
	struct bucket *b;
	size_t h;
	int ok;

	*report = 0;
	*shared = 0;
	if (rate == 0)
		return 1;
	if (burst == 0)
		burst = 1;
	snprintf(key, sizeof(key), "%s", uri);
	h = hash_uri(key);
	pthread_mutex_lock(&rl->mu);
	if ((b = lookup(rl, key, h)) == NULL) {
		if ((b = rl->free) != NULL)
			rl->free = b->next;
		else if (rl->fresh < rl->max)
			b = &rl->pool[rl->fresh++];
		if (b != NULL) {
			rl->used++;
			memcpy(b->uri, key, sizeof(b->uri));
			b->updated_ms = -1;
			b->reported = 0;
			b->pending = 0;
			b->next = rl->chains[h & rl->mask];
			rl->chains[h & rl->mask] = b;
		} else {
			b = &rl->overflow;
			*shared = 1;
		}
	}
	refill(b, rate, burst, now_ms);
	if ((ok = b->tokens >= MILLI))
		b->tokens -= MILLI;
	else {
		b->pending++;
		if (!b->reported || now_ms - b->reported_ms >= 1000) {
			*report = b->pending;
			b->pending = 0;
			b->reported = 1;
			b->reported_ms = now_ms;
		}
	}
	pthread_mutex_unlock(&rl->mu);
	return ok;
}

/* Take b's pending refusals into reports[*n] if a second has passed since
 * its last report.  Under rl->mu. */
static void
collect(ratebucket_t *rl, struct bucket *b, long long now_ms, size_t *n)
{
	if (b->pending == 0 || (b->reported && now_ms - b->reported_ms < 1000))
		return;
	memcpy(rl->reports[*n].uri, b->uri, sizeof(b->uri));
	rl->reports[*n].refused = b->pending;
	(*n)++;
	b->pending = 0;
	b->reported = 1;
	b->reported_ms = now_ms;
}

size_t
ratebucket_flush(ratebucket_t *rl, unsigned rate, unsigned burst,
    long long now_ms, void (*report)(const char *uri, unsigned long refused,
    void *arg), void *arg)
{
	struct bucket **pp, *b;
	size_t i, n = 0;

	if (burst == 0)
		burst = 1;
	pthread_mutex_lock(&rl->flush_mu);
	pthread_mutex_lock(&rl->mu);
	for (i = 0; i <= rl->mask; i++) {
		pp = &rl->chains[i];
		while ((b = *pp) != NULL) {
			collect(rl, b, now_ms, &n);
			if (rate > 0)
				refill(b, rate, burst, now_ms);
			/* rate 0 (no limit any more): nothing to keep. */
			if (b->pending == 0 && (rate == 0 ||
			    b->tokens >= (long long)burst * MILLI) &&
			    (!b->reported || now_ms - b->reported_ms >= 1000)) {
				*pp = b->next;
				b->next = rl->free;
				rl->free = b;
				rl->used--;
				continue;
			}
			pp = &b->next;
		}
	}
	collect(rl, &rl->overflow, now_ms, &n);
	pthread_mutex_unlock(&rl->mu);
	for (i = 0; i < n; i++)
		report(rl->reports[i].uri, rl->reports[i].refused, arg);
	pthread_mutex_unlock(&rl->flush_mu);
	return n;
}

size_t
ratebucket_size(ratebucket_t *rl)
{
	size_t n;

	pthread_mutex_lock(&rl->mu);
	n = rl->used;
	pthread_mutex_unlock(&rl->mu);
	return n;
}
