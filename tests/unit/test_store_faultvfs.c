/*
 * The fault-injecting VFS (gateway/store_faultvfs.c) under the store: EIO
 * on write and on fsync, a full disk, short writes and a busy lock each
 * fail the batch whole (nothing of it visible, the next batch reuses the
 * sequence), nothing committed before is lost, the store recovers when
 * the fault clears, nothing is signed over what failed, a broken disk
 * does not make the writer spin, a store that cannot be written is
 * refused at start, and a stalled disk (err=stall) holds the writer in
 * its commit until the control file changes, then fails nothing.
 */
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gateway/audit_entry.h"
#include "gateway/store.h"
#include "tests/support/sleep.h"
#include "tests/support/storewait.h"
#include "gateway/store_faultvfs.h"
#include "util/buf.h"
#include "util/fileio.h"

#define AREA "norfolk"

static char dir[64];
static char ctl[128];

static void
faults(const char *spec)
{
	assert_int_equal(file_write_atomic(ctl, spec, strlen(spec), 0644), 0);
}

static store_t *
open_store_opts(unsigned interval_ms, unsigned busy_ms, char *err,
    size_t errlen)
{
	store_options_t o;

	memset(&o, 0, sizeof(o));
	o.data_dir = dir;
	o.area = AREA;
	o.checkpoint_interval_ms = interval_ms;
	o.busy_timeout_ms = busy_ms;
	return store_open(&o, err, errlen);
}

static store_t *
open_store(unsigned interval_ms)
{
	char err[256];
	store_t *s = open_store_opts(interval_ms, 100, err, sizeof(err));

	if (s == NULL)
		fail_msg("store_open: %s", err);
	return s;
}

static store_job_t *
put_job(const char *id)
{
	store_job_t *j = store_job_new();
	audit_entry_t e;
	const char *json = "{\"x\":1}";

	memset(&e, 0, sizeof(e));
	e.op = "collect";
	e.actor_id = "urn:visor:norfolk:agency:police";
	e.record = id;
	e.version = AUDIT_VERSION_ASSIGNED;
	e.result = "ok";
	assert_int_equal(store_job_put_record(j, id, STORE_VERSION_ABSENT, 2, 1,
	    AREA, json, strlen(json), "urn:visor:norfolk:agency:police", NULL),
	    0);
	assert_int_equal(store_job_audit(j, &e), 0);
	return j;
}

static store_result_t
put(store_t *s, const char *id)
{
	return store_submit_wait(s, put_job(id));
}

static int
waiter_done(store_waiter_t *w)
{
	int d;

	pthread_mutex_lock(&w->mu);
	d = w->done;
	pthread_mutex_unlock(&w->mu);
	return d;
}

/* Size of the latest signed checkpoint in the database (0: none). */
static uint64_t
signed_size(store_t *s)
{
	return store_checkpoint_size(s);
}

static int
setup(void **state)
{
	buf_t vk = BUF_INIT;
	char tmpl[] = "/tmp/test_faultvfs.XXXXXX", err[256];

	(void)state;
	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s", tmpl);
	snprintf(ctl, sizeof(ctl), "%s/%s", dir, STORE_FAULTVFS_CTL);
	if (store_init_keys(dir, AREA, &vk, err, sizeof(err)) < 0)
		return -1;
	buf_free(&vk);
	return 0;
}

/* Each test starts without faults, whatever the one before left. */
static int
clear_faults(void **state)
{
	(void)state;
	return file_write_atomic(ctl, "", 0, 0644);
}

static int
teardown(void **state)
{
	const char *argv[] = { "rm", "-rf", dir, NULL };
	pid_t pid;

	(void)state;
	if ((pid = fork()) == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return 0;
}

/* The environment turns the VFS on only for the directory it names. */
static void
test_env_gate(void **state)
{
	char err[128];

	(void)state;
	unsetenv(STORE_FAULTVFS_ENV);
	assert_int_equal(store_faultvfs_setup(dir, err, sizeof(err)), 0);
	assert_null(sqlite3_vfs_find("visor-faults"));
	setenv(STORE_FAULTVFS_ENV, "/tmp", 1);
	assert_int_equal(store_faultvfs_setup(dir, err, sizeof(err)), 0);
	assert_null(sqlite3_vfs_find("visor-faults"));
	setenv(STORE_FAULTVFS_ENV, dir, 1);
	assert_int_equal(store_faultvfs_setup(dir, err, sizeof(err)), 0);
	assert_non_null(sqlite3_vfs_find("visor-faults"));
	assert_ptr_equal(sqlite3_vfs_find(NULL), sqlite3_vfs_find("visor-faults"));
	unsetenv(STORE_FAULTVFS_ENV);
	/* A malformed control file is no fault. */
	faults("op=everything");
	{
		store_t *s = open_store(50);

		assert_int_equal(put(s, "ENV-1").status, STORE_OK);
		store_close(s);
	}
	faults("");
}

/* One kind of fault on the batch commit: the batch fails whole, then the
 * store recovers and the next batch takes the same sequence. */
static void
one_fault(const char *spec, const char *id)
{
	store_t *s = open_store(20);
	store_reader_t *r;
	store_record_t rec;
	store_result_t res;
	uint64_t size0;
	unsigned long fired0;
	char err[128], fresh[64];

	res = put(s, id);
	assert_int_equal(res.status, STORE_OK);
	size0 = store_audit_size(s);
	fired0 = store_faultvfs_fired();
	faults(spec);
	snprintf(fresh, sizeof(fresh), "%s-F", id);
	res = put(s, fresh);
	assert_int_equal(res.status, STORE_FAILED);
	assert_true(store_faultvfs_fired() > fired0);
	assert_int_equal(store_audit_size(s), size0);
	res = put(s, fresh);
	assert_int_equal(res.status, STORE_FAILED);
	/* Nothing of it is visible, nothing signed over it. */
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(store_record_get(r, fresh, &rec), 1);
	sleep_ms(60);
	assert_true(signed_size(s) <= size0);
	faults("");
	res = put(s, fresh);
	assert_int_equal(res.status, STORE_OK);
	assert_int_equal(res.audit_index, size0);
	assert_int_equal(store_record_get(r, fresh, &rec), 0);
	buf_free(&rec.json);
	assert_int_equal(store_record_get(r, id, &rec), 0);
	buf_free(&rec.json);
	store_reader_free(r);
	store_close(s);
	/* It starts again: the log matches its signed checkpoint. */
	s = open_store(20);
	assert_int_equal(store_audit_size(s), size0 + 1);
	assert_int_equal(signed_size(s), size0 + 1);
	store_close(s);
}

static void
test_write_eio(void **state)
{
	(void)state;
	one_fault("op=write err=eio file=wal", "WEIO-1");
}

static void
test_sync_eio(void **state)
{
	(void)state;
	one_fault("op=sync err=eio file=wal", "SEIO-1");
}

/*
 * A commit whose fsync failed, then the writer's reconnection while the
 * disk still fails, with no reader open: the failed commit's frames must
 * not come back.  Before the store kept a connection of its own open
 * (keep_wal_index), the writer's close was the last, left the WAL behind,
 * and its new connection rebuilt the WAL index from the file, failed
 * frames included: the record answered as failed was there (STORE_EXISTS
 * on the retry), with an audit leaf the writer's tree did not hold.
 * one_fault met it only when its record's commit, not a checkpoint's,
 * was the first to fail, which the signing interval here rules out.
 */
static void
test_failed_commit_stays_gone(void **state)
{
	store_t *s = open_store(3600 * 1000);
	store_result_t res;
	uint64_t size0;
	int i;

	(void)state;
	res = put(s, "GONE-1");
	assert_int_equal(res.status, STORE_OK);
	for (i = 0; i < 500 && signed_size(s) < store_audit_size(s); i++)
		sleep_ms(10);
	assert_int_equal(signed_size(s), store_audit_size(s));
	size0 = store_audit_size(s);
	faults("op=sync err=eio file=wal");
	res = put(s, "GONE-2");
	assert_int_equal(res.status, STORE_FAILED);
	assert_non_null(strstr(res.err, "commit"));
	/* The writer reconnects for this one, the disk still failing. */
	res = put(s, "GONE-2");
	assert_int_equal(res.status, STORE_FAILED);
	faults("");
	res = put(s, "GONE-2");
	if (res.status != STORE_OK)
		fail_msg("after the disk came back: status %d (%s)", res.status,
		    res.err);
	assert_int_equal(res.audit_index, size0);
	assert_int_equal(store_audit_size(s), size0 + 1);
	store_close(s);
	/* And again after a restart: one leaf past the first, no more. */
	s = open_store(20);
	assert_int_equal(store_audit_size(s), size0 + 1);
	store_close(s);
}

static void
test_disk_full(void **state)
{
	(void)state;
	one_fault("op=write,truncate err=full", "FULL-1");
}

static void
test_short_write(void **state)
{
	(void)state;
	one_fault("op=write err=short", "SHRT-1");
}

static void
test_busy(void **state)
{
	store_t *s;
	store_result_t res;
	struct timespec a, b;
	long ms;

	store_reader_t *r;
	char err[128];

	(void)state;
	s = open_store(20);
	/* The gateway always has readers, which keep the shared memory (and
	 * its valid WAL index) alive: so does this test, or a reopened writer
	 * would need the write lock to rebuild the index. */
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	{
		buf_t leaf = BUF_INIT;

		assert_true(store_audit_leaf(r, 0, &leaf) >= 0);
		buf_free(&leaf);
	}
	/* Three refusals, then the lock comes free: the busy handler waits. */
	faults("op=lock err=busy count=3 id=1");
	assert_int_equal(put(s, "BUSY-1").status, STORE_OK);
	/* Held for good: the batch fails after the busy timeout (100 ms). */
	faults("err=busy id=2");	/* op=lock implied */
	clock_gettime(CLOCK_MONOTONIC, &a);
	res = put(s, "BUSY-2");
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(res.status, STORE_FAILED);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 80 && ms < 3000);
	faults("");
	assert_int_equal(put(s, "BUSY-2").status, STORE_OK);
	store_reader_free(r);
	store_close(s);
}

/*
 * Entries committed but not yet signed, then a fault that breaks the
 * connection: the writer must not spin reopening the database to sign
 * (it did, in a tight loop, until the disk came back).
 */
static void
test_no_spin_on_broken_disk(void **state)
{
	store_t *s;
	unsigned long f0, f1;
	uint64_t size;

	(void)state;
	s = open_store(300);
	assert_int_equal(put(s, "SPIN-1").status, STORE_OK);	/* signed now */
	assert_int_equal(put(s, "SPIN-2").status, STORE_OK);	/* waits 300 ms */
	size = store_audit_size(s);
	faults("op=write,sync");
	assert_int_equal(put(s, "SPIN-3").status, STORE_FAILED);
	f0 = store_faultvfs_fired();
	sleep_ms(700);
	f1 = store_faultvfs_fired();
	/* About one reopen per interval, not thousands. */
	if (f1 - f0 >= 20)
		fail_msg("%lu faults in 700 ms: the writer spins", f1 - f0);
	assert_true(signed_size(s) < size);
	faults("");
	sleep_ms(700);
	assert_int_equal(signed_size(s), size);
	store_close(s);
}

/* A store that cannot be written is refused at start, with a message; it
 * starts once the disk is back. */
static void
test_start_refused(void **state)
{
	char err[256];
	store_t *s;

	(void)state;
	faults("op=write,sync");
	s = open_store_opts(20, 100, err, sizeof(err));
	assert_null(s);
	assert_true(strlen(err) > 0);
	/* Only the database file's fsync failing: the start-up checkpoint
	 * that makes the log durable is what refuses. */
	faults("");
	s = open_store(20);
	assert_int_equal(put(s, "START-1").status, STORE_OK);
	store_close(s);		/* one store per data directory at a time */
	/* A crash leaves the WAL behind. */
	{
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			store_t *c = open_store(20);

			(void)put(c, "START-2");
			raise(SIGKILL);
			_exit(1);
		}
		waitpid(pid, NULL, 0);
	}
	faults("op=sync file=db");
	s = open_store_opts(20, 100, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "durable"));
	faults("");
	s = open_store(20);
	store_close(s);
}

/*
 * fsync fails (the frames stay in the page cache), then the process dies
 * before any other commit: the start that follows finds the failed batch
 * again (WAL recovery).  It must make it durable before signing over it,
 * and the log must verify.
 */
static void
test_sync_fail_then_crash(void **state)
{
	store_t *s;
	pid_t pid;
	int fds[2];
	uint64_t before = 0, sz;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		store_t *c = open_store(20);
		uint64_t n;

		close(fds[0]);
		(void)put(c, "CRASH-1");
		sleep_ms(60);
		n = store_audit_size(c);
		faults("op=sync file=wal");
		if (put(c, "CRASH-2").status != STORE_FAILED)
			n = 0;
		if (write(fds[1], &n, sizeof(n)) != (ssize_t)sizeof(n))
			_exit(1);
		raise(SIGKILL);
		_exit(1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &before, sizeof(before)),
	    (ssize_t)sizeof(before));
	close(fds[0]);
	waitpid(pid, NULL, 0);
	assert_true(before > 0);
	faults("");
	s = open_store(20);
	sz = store_audit_size(s);
	/* Usually the failed batch comes back whole (its frames were all
	 * written, only the fsync failed), though it had been answered as
	 * failed: a 503 after a failed fsync means "not known to be done",
	 * like a timeout.  Never half of it; and it is made durable before
	 * anything is signed over it. */
	assert_true(sz == before || sz == before + 1);
	sleep_ms(100);
	assert_int_equal(signed_size(s), sz);
	store_close(s);
	s = open_store(20);
	assert_int_equal(store_audit_size(s), sz);
	store_close(s);
}

/*
 * err=stall: the commit's write or sync does not return while the control
 * text stays the same (the writer is held, the job is not answered, the
 * log does not grow), other threads' calls into the VFS are not held by
 * it (store_faultvfs_fired takes the same lock), a job queued behind it can
 * be expired unwritten (store_expire_waiting), and when the text changes
 * the held call is made: the held job succeeds with nothing lost, and
 * after a restart the log holds exactly what was answered STORE_OK.
 */
static void
test_stall(void **state)
{
	store_t *s;
	store_waiter_t w1, w2;
	store_result_t r1, r2;
	store_stats_t st;
	store_reader_t *r;
	store_record_t rec;
	uint64_t size0;
	unsigned long fired0;
	char err[128];
	int i;

	(void)state;
	/* No signing interval inside the test: only our commits write. */
	s = open_store(3600 * 1000);
	assert_int_equal(put(s, "STALL-0").status, STORE_OK);
	/* The first checkpoint is signed after the first batch: let it be
	 * written before the disk stalls. */
	for (i = 0; i < 500 && signed_size(s) < store_audit_size(s); i++)
		sleep_ms(10);
	assert_int_equal(signed_size(s), store_audit_size(s));
	size0 = store_audit_size(s);
	fired0 = store_faultvfs_fired();
	faults("op=write,sync err=stall id=1");
	store_submit_waiter(s, put_job("STALL-1"), &w1);
	for (i = 0; i < 200 && store_faultvfs_fired() == fired0; i++)
		sleep_ms(10);
	assert_true(store_faultvfs_fired() > fired0);
	sleep_ms(300);
	/* Held: not answered, nothing in the log. */
	assert_int_equal(waiter_done(&w1), 0);
	assert_int_equal(store_audit_size(s), size0);
	/* A job behind it waits in the queue, and can be failed unwritten;
	 * the held one cannot. */
	store_submit_waiter(s, put_job("STALL-2"), &w2);
	sleep_ms(200);
	store_stats(s, &st);
	assert_int_equal(st.queued, 1);
	assert_true(st.oldest_wait_ms >= 150);
	assert_int_equal(store_expire_waiting(s, 100), 1);
	r2 = store_waiter_wait(&w2);
	assert_int_equal(r2.status, STORE_FAILED);
	assert_non_null(strstr(r2.err, "nothing of it was written"));
	assert_int_equal(waiter_done(&w1), 0);
	/* Still held after more time: a stall has no timeout of its own. */
	sleep_ms(300);
	assert_int_equal(waiter_done(&w1), 0);
	/* The disk comes back: the held call is made, nothing fails. */
	faults("");
	r1 = store_waiter_wait(&w1);
	assert_int_equal(r1.status, STORE_OK);
	assert_int_equal(r1.audit_index, size0);
	assert_int_equal(store_audit_size(s), size0 + 1);
	r = store_reader_new(s, err, sizeof(err));
	assert_non_null(r);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(store_record_get(r, "STALL-1", &rec), 0);
	buf_free(&rec.json);
	assert_int_equal(store_record_get(r, "STALL-2", &rec), 1);
	store_reader_free(r);
	/* The expired job was never begun: it is written now, once. */
	r2 = put(s, "STALL-2");
	assert_int_equal(r2.status, STORE_OK);
	assert_int_equal(r2.audit_index, size0 + 1);
	store_close(s);
	s = open_store(20);
	assert_int_equal(store_audit_size(s), size0 + 2);
	store_close(s);
}

/*
 * store_expire_waiting while the writer is held by a stalled disk, called
 * from several threads at once (every worker's tick does) while more jobs
 * arrive: every job that waited is failed exactly once, unwritten; the
 * job the writer holds is never touched and is stored once the disk is
 * back; the count returned, the stats and the failures agree.
 */
#define STX_JOBS 40
#define STX_EXPIRERS 4

typedef struct {
	atomic_int calls;
	int status;
	char err[160];
} stx_done_t;

static stx_done_t stx[STX_JOBS + 1];
static atomic_int stx_stop;
static atomic_size_t stx_expired;
static store_t *stx_store;

static void
stx_cb(void *arg, const store_result_t *r)
{
	stx_done_t *d = arg;

	d->status = r->status;
	snprintf(d->err, sizeof(d->err), "%s", r->err);
	atomic_fetch_add(&d->calls, 1);
}

static void *
stx_expirer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stx_stop)) {
		atomic_fetch_add(&stx_expired, store_expire_waiting(stx_store, 0));
		sleep_ms(1);
	}
	return NULL;
}

static void
test_stall_expiry(void **state)
{
	pthread_t th[STX_EXPIRERS];
	store_stats_t st;
	store_reader_t *r;
	store_record_t rec;
	uint64_t size0;
	char id[32], err[128];
	int i, failed = 0;

	(void)state;
	memset(stx, 0, sizeof(stx));
	atomic_store(&stx_stop, 0);
	atomic_store(&stx_expired, 0);
	/* No checkpoint while stalled: the held batch is the record's. */
	stx_store = open_store(600000);
	assert_int_equal(put(stx_store, "STX-0").status, STORE_OK);
	size0 = store_audit_size(stx_store);
	/* The first checkpoint is signed at once after the first batch: let
	 * it be written first, or it is what the writer stalls in (then the
	 * job below waits in the queue and is failed with the others). */
	for (i = 0; i < 500 && signed_size(stx_store) < size0; i++)
		sleep_ms(10);
	assert_int_equal(signed_size(stx_store), size0);
	faults("op=write,sync err=stall id=1");
	/* The writer takes job 0 and stalls in its commit. */
	store_submit(stx_store, put_job("STX-H"), stx_cb, &stx[0]);
	sleep_ms(300);
	assert_int_equal(atomic_load(&stx[0].calls), 0);
	for (i = 0; i < STX_EXPIRERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, stx_expirer, NULL),
		    0);
	for (i = 1; i <= STX_JOBS; i++) {
		snprintf(id, sizeof(id), "STX-%d", i);
		store_submit(stx_store, put_job(id), stx_cb, &stx[i]);
		if (i % 8 == 0)
			sleep_ms(5);
	}
	sleep_ms(200);
	atomic_store(&stx_stop, 1);
	for (i = 0; i < STX_EXPIRERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	/* Every waiting job failed once, unwritten; the held one waits. */
	if (atomic_load(&stx[0].calls) != 0)
		fail_msg("the held job was answered during the stall: "
		    "status %d, %s", stx[0].status, stx[0].err);
	for (i = 1; i <= STX_JOBS; i++) {
		assert_int_equal(atomic_load(&stx[i].calls), 1);
		assert_int_equal(stx[i].status, STORE_FAILED);
		assert_non_null(strstr(stx[i].err, "nothing of it was written"));
		failed++;
	}
	assert_int_equal(atomic_load(&stx_expired), (size_t)failed);
	store_stats(stx_store, &st);
	assert_int_equal(st.wait_expired, (uint64_t)failed);
	assert_int_equal(st.queued, 0);
	/* The disk comes back: the held job is stored, once. */
	faults("");
	for (i = 0; i < 500 && atomic_load(&stx[0].calls) == 0; i++)
		sleep_ms(10);
	assert_int_equal(atomic_load(&stx[0].calls), 1);
	assert_int_equal(stx[0].status, STORE_OK);
	assert_int_equal(put(stx_store, "STX-Z").status, STORE_OK);
	assert_int_equal(store_audit_size(stx_store), size0 + 2);
	r = store_reader_new(stx_store, err, sizeof(err));
	assert_non_null(r);
	for (i = 1; i <= STX_JOBS; i++) {
		snprintf(id, sizeof(id), "STX-%d", i);
		memset(&rec, 0, sizeof(rec));
		assert_int_equal(store_record_get(r, id, &rec), 1);
	}
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(store_record_get(r, "STX-H", &rec), 0);
	buf_free(&rec.json);
	store_reader_free(r);
	store_close(stx_store);
	stx_store = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_env_gate, clear_faults),
		cmocka_unit_test_setup(test_write_eio, clear_faults),
		cmocka_unit_test_setup(test_sync_eio, clear_faults),
		cmocka_unit_test_setup(test_failed_commit_stays_gone, clear_faults),
		cmocka_unit_test_setup(test_disk_full, clear_faults),
		cmocka_unit_test_setup(test_short_write, clear_faults),
		cmocka_unit_test_setup(test_busy, clear_faults),
		cmocka_unit_test_setup(test_no_spin_on_broken_disk, clear_faults),
		cmocka_unit_test_setup(test_start_refused, clear_faults),
		cmocka_unit_test_setup(test_sync_fail_then_crash, clear_faults),
		cmocka_unit_test_setup(test_stall, clear_faults),
		cmocka_unit_test_setup(test_stall_expiry, clear_faults),
	};

	return cmocka_run_group_tests_name("store_faultvfs", tests, setup,
	    teardown);
}
