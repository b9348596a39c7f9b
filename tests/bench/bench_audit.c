/*
 * bench_audit: audit log appends through the store with group commit,
 * against one-row-per-commit SQLite (WAL, synchronous=FULL) in the same run
 * and the same folder; then proof generation at 1,000,000 leaves.
 *
 *   bench_audit [seconds]      (default 5)
 *   bench_audit records        only the start-up check of 100,000 records
 *
 * Prints `# ...` notes, `RESULT <name> <value> <unit>` and `RATIO <name> <x>`.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/merkle.h"
#include "gateway/audit_entry.h"
#include "gateway/store.h"
#include "util/buf.h"
#include "tests/support/tmpdir.h"

#define THREADS 8
#define WINDOW 128		/* jobs in flight per thread */
#define BIG_LEAVES 1000000
#define BIG_PER_JOB 1000
#define BIG_WINDOW 8		/* about 8,000 entries per commit */
#define PROOFS 2000

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A typical entry: about 400 bytes of leaf (a disclosure with its digest,
 * fields and rules; no certificate hash). */
static const char *const fields[] = { "person", "addresses", "risk" };
static const char *const withheld[] = { "health" };
static const char *const rules[] = { "police-read" };

static audit_entry_t
typical_entry(void)
{
	audit_entry_t e;

	memset(&e, 0, sizeof(e));
	e.op = "disclose";
	e.request_id = "0f9c2a7e5b1d4c3a";
	e.actor_id = "urn:visor:norfolk:agency:police";
	e.actor_person = "PC-4711";
	e.record = "NFK-000123";
	e.version = 3;
	e.purpose = "risk-management";
	e.justification = "review";
	e.fields = fields;
	e.n_fields = 3;
	e.withheld = withheld;
	e.n_withheld = 1;
	e.policy = "9a8b7c6d";
	e.rules = rules;
	e.n_rules = 1;
	e.result = "ok";
	e.digest = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
	return e;
}

typedef struct {
	store_t *s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int inflight;
	uint64_t done, failed;
	double stop_at;
	size_t per_job;
	int window;		/* jobs in flight in all */
} load_t;

static void
on_done(void *arg, const store_result_t *r)
{
	load_t *l = arg;

	pthread_mutex_lock(&l->mu);
	l->inflight--;
	if (r->status == STORE_OK)
		l->done += l->per_job;
	else
		l->failed++;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

static int
submit_one(load_t *l, const audit_entry_t *e)
{
	store_job_t *j = store_job_new();
	size_t k;

	if (j == NULL)
		return -1;
	for (k = 0; k < l->per_job; k++)
		if (store_job_audit(j, e) < 0) {
			store_job_free(j);
			return -1;
		}
	pthread_mutex_lock(&l->mu);
	while (l->inflight >= l->window)
		pthread_cond_wait(&l->cv, &l->mu);
	l->inflight++;
	pthread_mutex_unlock(&l->mu);
	store_submit(l->s, j, on_done, l);
	return 0;
}

static void *
appender(void *arg)
{
	load_t *l = arg;
	audit_entry_t e = typical_entry();

	while (now_s() < l->stop_at)
		if (submit_one(l, &e) < 0)
			break;
	return NULL;
}

static void
drain(load_t *l)
{
	pthread_mutex_lock(&l->mu);
	while (l->inflight > 0)
		pthread_cond_wait(&l->cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
}

static store_t *
open_store(const char *dir, char *err, size_t errlen)
{
	store_options_t o;
	buf_t vk = BUF_INIT;

	if (store_init_keys(dir, "bench", &vk, err, errlen) < 0)
		return NULL;
	buf_free(&vk);
	memset(&o, 0, sizeof(o));
	o.data_dir = dir;
	o.area = "bench";
	o.max_batch = 1024;
	return store_open(&o, err, errlen);
}

/* A store of RECORDS records, each collected and altered once and read
 * once (three entries each), then its start-up check, which reads every
 * write from the log and compares the records table with it. */
#define RECORDS 100000
#define RECORDS_WINDOW 256

static int
bench_records_open(void)
{
	char tmpl[] = "/tmp/bench_audit.XXXXXX", *dir, err[256], id[32];
	const char *keep = getenv("BENCH_RECORDS_KEEP");
	const char *again = getenv("BENCH_RECORDS_DIR");
	store_options_t o;
	audit_entry_t e = typical_entry();
	store_job_t *j;
	load_t l;
	double t0;
	int i, pass;

	/* BENCH_RECORDS_DIR=DIR times the open of a store kept before (to
	 * compare builds on the same store). */
	if (again != NULL) {
		memset(&o, 0, sizeof(o));
		o.data_dir = again;
		o.area = "bench";
		t0 = now_s();
		if ((l.s = store_open(&o, err, sizeof(err))) == NULL) {
			fprintf(stderr, "open: %s\n", err);
			return 1;
		}
		printf("RESULT store_open_verify_100k_records %.2f s\n",
		    now_s() - t0);
		store_close(l.s);
		return 0;
	}
	if ((dir = mkdtemp(tmpl)) == NULL)
		return 1;
	memset(&l, 0, sizeof(l));
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.cv, NULL);
	l.per_job = 1;
	l.window = RECORDS_WINDOW;
	if ((l.s = open_store(dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "store: %s\n", err);
		return 1;
	}
	t0 = now_s();
	for (pass = 0; pass < 3; pass++) {
		for (i = 0; i < RECORDS; i++) {
			snprintf(id, sizeof(id), "NFK-%06d", i);
			if ((j = store_job_new()) == NULL)
				return 1;
			e.record = id;
			e.op = pass == 0 ? "collect" : pass == 1 ? "alter" :
			    "consult";
			e.version = pass < 2 ? AUDIT_VERSION_ASSIGNED : 2;
			if ((pass < 2 && store_job_put_record(j, id,
			    pass == 0 ? STORE_VERSION_ABSENT : 1, 2, 1, "bench",
			    "{}", 2, "urn:visor:bench:agency:police",
			    "[]") < 0) || store_job_audit(j, &e) < 0)
				return 1;
			pthread_mutex_lock(&l.mu);
			while (l.inflight >= l.window)
				pthread_cond_wait(&l.cv, &l.mu);
			l.inflight++;
			pthread_mutex_unlock(&l.mu);
			store_submit(l.s, j, on_done, &l);
		}
		drain(&l);
	}
	printf("# built %d records, %" PRIu64 " leaves in %.1f s, %" PRIu64
	    " failed\n", RECORDS, store_audit_size(l.s), now_s() - t0,
	    l.failed);
	store_close(l.s);
	if (l.failed)
		return 1;
	memset(&o, 0, sizeof(o));
	o.data_dir = dir;
	o.area = "bench";
	t0 = now_s();
	if ((l.s = store_open(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "reopen: %s\n", err);
		return 1;
	}
	printf("RESULT store_open_verify_100k_records %.2f s\n", now_s() - t0);
	store_close(l.s);
	/* BENCH_RECORDS_KEEP=1 leaves the store for comparisons. */
	if (keep != NULL && *keep == '1')
		printf("# kept %s\n", dir);
	else
		tmpdir_remove(dir);
	return 0;
}

int
main(int argc, char **argv)
{
	char tmpl[] = "/tmp/bench_audit.XXXXXX", tmpl2[] = "/tmp/bench_audit.XXXXXX";
	char *dir, *dir2, err[256];
	double secs = 5, t0, el, ref = 0, build_s;
	pthread_t th[THREADS];
	store_stats_t st;
	store_reader_t *r;
	merkle_hash_t proof[MERKLE_MAX_PROOF];
	audit_entry_t e = typical_entry();
	buf_t leaf = BUF_INIT;
	load_t l;
	size_t n;
	uint64_t size, i, seed = 88172645463325252ULL;
	int k;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "records") == 0)
		return bench_records_open();
	if (argc > 1 && (secs = strtod(argv[1], NULL)) <= 0)
		secs = 5;
	if ((dir = mkdtemp(tmpl)) == NULL || (dir2 = mkdtemp(tmpl2)) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	printf("# cores %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
	if (audit_entry_encode(&e, 123456, "2026-11-24T08:00:00.000Z", 3,
	    &leaf) == 0)
		printf("# entry size %zu bytes, %d threads, %d jobs in flight "
		    "each, one entry per job\n", leaf.len, THREADS, WINDOW);
	buf_free(&leaf);

	/* 1. Appends with group commit. */
	memset(&l, 0, sizeof(l));
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.cv, NULL);
	if ((l.s = open_store(dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "store: %s\n", err);
		return 1;
	}
	l.per_job = 1;
	l.window = WINDOW * THREADS;
	t0 = now_s();
	l.stop_at = t0 + secs;
	for (k = 0; k < THREADS; k++)
		pthread_create(&th[k], NULL, appender, &l);
	for (k = 0; k < THREADS; k++)
		pthread_join(th[k], NULL);
	drain(&l);
	el = now_s() - t0;
	store_stats(l.s, &st);
	printf("# %" PRIu64 " entries in %.2f s, %" PRIu64 " commits (%.1f "
	    "entries per commit), %" PRIu64 " failed, %" PRIu64
	    " checkpoints signed\n", l.done, el, st.commits,
	    st.commits ? (double)l.done / (double)st.commits : 0.0, l.failed,
	    st.checkpoints);
	printf("RESULT audit_append %.0f entries/s\n", (double)l.done / el);
	store_close(l.s);

	/* 2. The reference in the same folder. */
	if (store_bench_reference_commits(dir, secs < 3 ? secs : 3, 400,
	    &ref) < 0) {
		fprintf(stderr, "reference loop failed\n");
		return 1;
	}
	printf("RESULT sqlite_one_row_fsync_commit %.0f commits/s\n", ref);
	printf("RATIO audit_append_vs_single_commit %.1f\n",
	    ref > 0 ? ((double)l.done / el) / ref : 0.0);
	tmpdir_remove(dir);

	/* 3. A store of 1,000,000 leaves, built in big jobs. */
	memset(&l, 0, sizeof(l));
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.cv, NULL);
	if ((l.s = open_store(dir2, err, sizeof(err))) == NULL) {
		fprintf(stderr, "store: %s\n", err);
		return 1;
	}
	l.per_job = BIG_PER_JOB;
	l.window = BIG_WINDOW;
	t0 = now_s();
	for (i = 0; i < BIG_LEAVES / BIG_PER_JOB; i++)
		if (submit_one(&l, &e) < 0)
			return 1;
	drain(&l);
	build_s = now_s() - t0;
	size = store_audit_size(l.s);
	printf("# built %" PRIu64 " leaves in %.1f s (%.0f entries/s in jobs "
	    "of %d)\n", size, build_s, (double)size / build_s, BIG_PER_JOB);
	if (size != BIG_LEAVES || l.failed) {
		fprintf(stderr, "build failed\n");
		return 1;
	}
	if ((r = store_reader_new(l.s, err, sizeof(err))) == NULL) {
		fprintf(stderr, "reader: %s\n", err);
		return 1;
	}
	t0 = now_s();
	for (k = 0; k < PROOFS; k++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		if (store_audit_inclusion(r, seed % size, size, proof, &n) < 0) {
			fprintf(stderr, "inclusion proof failed\n");
			return 1;
		}
	}
	printf("RESULT store_inclusion_proof_1m %.1f us\n",
	    (now_s() - t0) * 1e6 / PROOFS);
	t0 = now_s();
	for (k = 0; k < PROOFS; k++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		if (store_audit_consistency(r, 1 + seed % (size - 1), size, proof,
		    &n) < 0) {
			fprintf(stderr, "consistency proof failed\n");
			return 1;
		}
	}
	printf("RESULT store_consistency_proof_1m %.1f us\n",
	    (now_s() - t0) * 1e6 / PROOFS);
	store_reader_free(r);
	store_close(l.s);
	/* Start-up check: recompute the tree from every leaf, compare the
	 * stored nodes and the signed checkpoint. */
	{
		store_options_t o;

		memset(&o, 0, sizeof(o));
		o.data_dir = dir2;
		o.area = "bench";
		t0 = now_s();
		if ((l.s = store_open(&o, err, sizeof(err))) == NULL) {
			fprintf(stderr, "reopen: %s\n", err);
			return 1;
		}
		printf("RESULT store_open_verify_1m %.2f s\n", now_s() - t0);
		store_close(l.s);
	}
	tmpdir_remove(dir2);
	return bench_records_open();
}
