/*
 * The wall clock stepped under a running gateway (an operator's `date -s`,
 * NTP correcting a clock that was wrong).  The gateway runs under
 * libfaketime (package faketime): the shift is read from a file at every
 * clock read, so the test moves the gateway's wall clock while it runs,
 * and leaves its monotonic clock alone
 * (FAKETIME_DONT_FAKE_MONOTONIC), as a real step does.  The steps stay
 * within the five minutes quickstart's certificates and CRLs are
 * back-dated by, so that TLS still accepts every party and what is seen
 * is the gateway's own use of the clock.
 *
 * Not part of make test (its name is not test_*): libfaketime 0.9.10
 * returns at once from a timed wait on a condition variable made for
 * CLOCK_MONOTONIC, so the gateway's waiting threads spin under it, which
 * is too heavy for a shared CI machine and could make the suite flaky.
 * Run it by hand (apt-get install faketime):
 *   make build/tests/faketime_clock
 *   VISOR_BIN=$PWD/build/bin VISOR_SRC=$PWD ./build/tests/faketime_clock
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cmocka.h>

#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/buf.h"
#include "util/json.h"

static const char *const faketime_libs[] = {
	"/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
	"/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
	"/usr/lib/faketime/libfaketimeMT.so.1",
};

typedef struct {
	gwt_env_t env;
	gwt_gw_t nfk, sfk;
	char shift[600];	/* norfolk's clock shift, read by libfaketime */
} fx_t;

static const char *const read_hdrs[] = { "X-Visor-Actor: T100",
    "X-Visor-Purpose: risk-management", "X-Visor-Justification: clock test",
    NULL };
static const char *const move_hdrs[] = { "X-Visor-Actor: T100",
    "X-Visor-Purpose: offender-move", "X-Visor-Justification: clock test",
    NULL };

static const char *
faketime_lib(void)
{
	size_t i;

	for (i = 0; i < sizeof(faketime_libs) / sizeof(faketime_libs[0]); i++)
		if (access(faketime_libs[i], R_OK) == 0)
			return faketime_libs[i];
	return NULL;
}

/* Norfolk's wall clock is now shifted by `shift` (libfaketime's syntax:
 * "+0", "-4m"), replaced whole so that no clock read sees half a file. */
static void
clock_shift(fx_t *f, const char *shift)
{
	char tmp[620];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s.new", f->shift);
	assert_non_null(fp = fopen(tmp, "w"));
	fprintf(fp, "%s\n", shift);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(tmp, 0644), 0);
	assert_int_equal(rename(tmp, f->shift), 0);
}

/* Start norfolk under libfaketime, its clock not shifted yet. */
static void
start_faked(fx_t *f)
{
	const char *lib = faketime_lib();
	const char *asan = getenv("ASAN_OPTIONS");
	char *saved = asan ? strdup(asan) : NULL;
	buf_t opts = BUF_INIT;
	int rc;

	if (lib == NULL)
		fail_msg("libfaketime not found: install the faketime package");
	snprintf(f->shift, sizeof(f->shift), "%s/norfolk-clock-shift",
	    f->env.dir);
	clock_shift(f, "+0");
	/* A sanitizer build wants its runtime first; libfaketime only wraps
	 * the clock calls, which the sanitizers do not. */
	buf_printf(&opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
	    asan ? ":" : "");
	setenv("ASAN_OPTIONS", opts.data, 1);
	setenv("LD_PRELOAD", lib, 1);
	setenv("FAKETIME_TIMESTAMP_FILE", f->shift, 1);
	setenv("FAKETIME_NO_CACHE", "1", 1);
	setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
	rc = gwt_gw_start(&f->env, "norfolk", &f->nfk);
	unsetenv("LD_PRELOAD");
	unsetenv("FAKETIME_TIMESTAMP_FILE");
	unsetenv("FAKETIME_NO_CACHE");
	unsetenv("FAKETIME_DONT_FAKE_MONOTONIC");
	if (saved != NULL)
		setenv("ASAN_OPTIONS", saved, 1);
	else
		unsetenv("ASAN_OPTIONS");
	free(saved);
	buf_free(&opts);
	assert_int_equal(rc, 0);
}

static long
request(fx_t *f, const char *cert, const char *method, const char *path,
    const char *const *hdrs, const char *body, buf_t *out)
{
	gwt_resp_t resp;
	char err[256];
	long status;

	if (gwt_request(&f->env, &f->nfk, "norfolk", cert, method, path, hdrs,
	    body, body ? strlen(body) : 0, &resp, err, sizeof(err)) < 0)
		fail_msg("%s %s: %s", method, path, err);
	status = resp.status;
	if (out != NULL && resp.body.data != NULL)
		buf_puts(out, resp.body.data);
	gwt_resp_free(&resp);
	return status;
}

/* A number member of norfolk's GET /v1/status as the police see it. */
static double
status_number(fx_t *f, const char *peer, const char *name)
{
	buf_t out = BUF_INIT;
	cJSON *j, *o, *p;
	char err[128];
	double v;

	assert_int_equal(request(f, "agency-police", "GET", "/v1/status", NULL,
	    NULL, &out), 200);
	assert_non_null(j = json_parse_strict(out.data, out.len, 16, err,
	    sizeof(err)));
	o = j;
	if (peer != NULL) {
		o = NULL;
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "peers"))
			if (strcmp(json_get_str(p, "area"), peer) == 0)
				o = p;
		assert_non_null(o);
	}
	o = cJSON_GetObjectItemCaseSensitive(o, name);
	if (!cJSON_IsNumber(o))
		fail_msg("status has no number %s: %s", name, out.data);
	v = o->valuedouble;
	cJSON_Delete(j);
	buf_free(&out);
	return v;
}

static void
config_fast_retry(fx_t *f)
{
	const char *path = gwt_path(&f->env, "norfolk/gateway.json");
	cJSON *j = gwt_json_load(path), *t;

	assert_non_null(j);
	t = cJSON_GetObjectItemCaseSensitive(j, "transfer");
	cJSON_ReplaceItemInObjectCaseSensitive(t, "retry_base_ms",
	    cJSON_CreateNumber(50));
	cJSON_ReplaceItemInObjectCaseSensitive(t, "retry_max_ms",
	    cJSON_CreateNumber(400));
	assert_int_equal(gwt_json_save(path, j), 0);
	cJSON_Delete(j);
}

static int
setup(void **state)
{
	fx_t *f = calloc(1, sizeof(*f));

	if (f == NULL || gwt_env_setup(&f->env, "norfolk,suffolk") < 0) {
		free(f);
		return -1;
	}
	f->nfk.pid = f->sfk.pid = 0;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx_t *f = *state;
	int rc = 0;

	if (f->nfk.pid > 0 && gwt_gw_stop_clean(&f->nfk) < 0)
		rc = -1;
	if (f->sfk.pid > 0 && gwt_gw_stop_clean(&f->sfk) < 0)
		rc = -1;
	gwt_env_cleanup(&f->env);
	free(f);
	return rc;
}

/*
 * A transfer waiting for a peer that is down, and the sender's clock set
 * back four minutes: once the peer is back it is delivered within
 * seconds.  The probe of a down peer and the retry time kept in the outbox
 * were wall-clock times, so the transfer waited the four minutes (a day
 * for a clock set back a day) with the peer up; /v1/status said the last
 * attempt was minus four minutes ago.
 */
static void
test_transfer_after_clock_back(void **state)
{
	fx_t *f = *state;
	buf_t out = BUF_INIT;
	const char *rec = "{\"id\":\"NFK-CLOCK-1\",\"managing_area\":\"norfolk\","
	    "\"category\":1,\"level\":2,\"person\":{\"surname\":\"EXAMPLE\","
	    "\"forenames\":\"Synthetic\",\"dob\":\"1980-01-02\","
	    "\"gender\":\"male\"}}";
	const char *xfer = "{\"record_id\":\"NFK-CLOCK-1\",\"to_area\":"
	    "\"suffolk\",\"purpose\":\"offender-move\",\"justification\":"
	    "\"clock test\"}";
	char path[128], err[128];
	const char *tid, *st = "";
	long long until;
	cJSON *j;

	config_fast_retry(f);
	start_faked(f);
	assert_int_equal(request(f, "agency-probation", "PUT",
	    "/v1/records/NFK-CLOCK-1", read_hdrs, rec, NULL), 201);
	assert_int_equal(request(f, "agency-police", "POST", "/v1/transfers",
	    move_hdrs, xfer, &out), 202);
	assert_non_null(j = json_parse_strict(out.data, out.len, 4, err,
	    sizeof(err)));
	assert_non_null(tid = json_get_str(j, "transfer_id"));
	snprintf(path, sizeof(path), "/v1/transfers/%s", tid);
	cJSON_Delete(j);
	assert_true(gwt_log_wait(&f->nfk, "event=peer-unavailable", 10000));
	sleep_ms(300);
	clock_shift(f, "-4m");
	sleep_ms(200);
	assert_true(status_number(f, "suffolk", "last_attempt_s") >= 0);
	assert_true(status_number(f, NULL, "uptime_s") >= 0);
	assert_true(status_number(f, "suffolk", "next_probe_s") <= 1);
	assert_int_equal(gwt_gw_start(&f->env, "suffolk", &f->sfk), 0);
	until = gwt_now_ms() + gwt_ms(20000);
	while (gwt_now_ms() < until) {
		buf_reset(&out);
		assert_int_equal(request(f, "agency-police", "GET", path,
		    move_hdrs, NULL, &out), 200);
		assert_non_null(j = json_parse_strict(out.data, out.len, 8, err,
		    sizeof(err)));
		st = strcmp(json_get_str(j, "status"), "delivered") == 0 ?
		    "delivered" : "";
		cJSON_Delete(j);
		if (st[0] != '\0')
			break;
		sleep_ms(100);
	}
	if (st[0] == '\0')
		fail_msg("not delivered 20 s after the peer came back: %s",
		    out.data);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transfer_after_clock_back,
		    setup, teardown),
	};

	return gwt_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
