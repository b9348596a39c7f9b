/*
 * SIGTERM drains (SPEC section 2): a request in flight when the gateway is
 * told to stop still gets its answer, durable, while new connections are
 * refused; then the gateway exits cleanly.  The request is held in flight
 * for real: the sqlite3 program holds the store's write lock (BEGIN
 * IMMEDIATE), so the PUT's group commit waits for it (up to
 * limits.store_busy_timeout_ms, 5 s by default), and the lock is let go
 * half a second after the SIGTERM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "client/https_client.h"
#include "tests/support/gwtest.h"
#include "util/buf.h"

#define AREA "norfolk"

static const char *const write_hdrs[] = { "X-Visor-Actor: PC-4711",
    "X-Visor-Purpose: risk-management", NULL };
static const char *const read_hdrs[] = { "X-Visor-Actor: PC-4711",
    "X-Visor-Purpose: risk-management",
    "X-Visor-Justification: drain test", NULL };

typedef struct {
	gwt_env_t env;
	gwt_gw_t gw;
	https_client_t *c;
	long put_status;
	int refused;		/* a new connection after SIGTERM failed */
	int lock_fd;		/* sqlite3's standard input */
	pid_t lock_pid;
} fx_t;

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void *
put_thread(void *arg)
{
	fx_t *f = arg;
	https_response_t r;
	char url[128], err[256];
	const char *body = "{\"id\":\"NFK-DRAIN-0001\",\"managing_area\":\""
	    AREA "\",\"category\":1,\"level\":1}";

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/records/"
	    "NFK-DRAIN-0001", f->gw.port);
	f->put_status = https_client_call(f->c, "PUT", url, write_hdrs, body,
	    strlen(body), &r, err, sizeof(err)) == 0 ? r.status : -1;
	if (f->put_status < 0)
		fprintf(stderr, "  (PUT: %s)\n", err);
	https_response_free(&r);
	return NULL;
}

/* After the SIGTERM: a new connection must be refused; then the lock goes. */
static void *
release_thread(void *arg)
{
	fx_t *f = arg;
	int fd;

	sleep_ms(500);
	fd = gwt_tcp_connect(f->gw.port);
	f->refused = fd < 0;
	if (fd >= 0)
		close(fd);
	gwt_sqlite_release(f->lock_pid, f->lock_fd);
	return NULL;
}

static void
test_sigterm_drains(void **state)
{
	fx_t *f = calloc(1, sizeof(*f));
	char db[600], err[256], url[128];
	https_response_t r;
	pthread_t put, rel;

	(void)state;
	assert_non_null(f);
	assert_int_equal(gwt_env_setup(&f->env, AREA), 0);
	assert_int_equal(gwt_gw_start(&f->env, AREA, &f->gw), 0);
	f->c = gwt_client(&f->env, AREA, "agency-police", 20000);
	assert_non_null(f->c);

	/* sqlite3 takes the write lock on the live store. */
	snprintf(db, sizeof(db), "%s/" AREA "/data/store.db", f->env.dir);
	f->lock_pid = gwt_sqlite_hold_lock(db, &f->lock_fd);
	assert_true(f->lock_pid > 0);
	sleep_ms(300);

	/* The PUT waits for the lock: in flight when the SIGTERM comes. */
	assert_int_equal(pthread_create(&put, NULL, put_thread, f), 0);
	sleep_ms(500);
	assert_int_equal(pthread_create(&rel, NULL, release_thread, f), 0);
	assert_int_equal(gwt_gw_stop_clean(&f->gw), 0);
	pthread_join(rel, NULL);
	pthread_join(put, NULL);
	assert_int_equal(f->put_status, 201);
	assert_true(f->refused);
	assert_true(gwt_log_contains(&f->gw, "event=draining"));

	/* What was answered 201 is there after a restart. */
	https_client_free(f->c);
	f->c = gwt_client(&f->env, AREA, "agency-police", 20000);
	assert_non_null(f->c);
	assert_int_equal(gwt_gw_start(&f->env, AREA, &f->gw), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/records/"
	    "NFK-DRAIN-0001", f->gw.port);
	assert_int_equal(https_client_call(f->c, "GET", url, read_hdrs, NULL, 0,
	    &r, err, sizeof(err)), 0);
	assert_int_equal(r.status, 200);
	https_response_free(&r);
	https_client_free(f->c);
	assert_int_equal(gwt_gw_stop_clean(&f->gw), 0);
	gwt_env_cleanup(&f->env);
	free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigterm_drains),
	};

	signal(SIGPIPE, SIG_IGN);
	if (https_global_init() < 0)
		return 1;
	return gwt_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
