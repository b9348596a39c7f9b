/*
 * Storage faults against a real gateway (issue 8 item 3): the data
 * directory sits on a small tmpfs that fills up.  While the disk is full
 * every write and every read (a read must be audited) answers 503 and
 * changes nothing; nothing acknowledged before is lost; when the disk grows
 * again the gateway recovers without a restart, and the audit log verifies
 * (no checkpoint was signed over entries that were not durable).
 *
 * Needs root to mount tmpfs (CI runs as root); skipped otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/gwtest.h"
#include "util/buf.h"
#include "util/fileio.h"

static gwt_env_t env;
static gwt_gw_t gw;
static char mnt[600];
static int mounted;

static const char *const hdrs[] = { "X-Visor-Actor: T1",
    "X-Visor-Purpose: risk-management", "X-Visor-Justification: test",
    "Content-Type: application/json", NULL };

#define MAX_OK 20000
static int ok_ids[MAX_OK];
static int n_ok;

static int
put_record(int i, long *status)
{
	char body[1400], path[64], pad[900];
	gwt_resp_t resp;
	char err[256];
	int rc;

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"id\":\"FULL-%06d\",\"managing_area\":"
	    "\"norfolk\",\"category\":1,\"level\":1,\"person\":{\"surname\":"
	    "\"Full\",\"forenames\":\"Disk\",\"dob\":\"1980-01-01\"},"
	    "\"risk\":{\"factors\":[\"%s\"]}}", i, pad);
	snprintf(path, sizeof(path), "/v1/records/FULL-%06d", i);
	rc = gwt_request(&env, &gw, "norfolk", "agency-police", "PUT", path, hdrs,
	    body, strlen(body), &resp, err, sizeof(err));
	*status = rc == 0 ? resp.status : -1;
	gwt_resp_free(&resp);
	return rc;
}

static long
get_status(int i)
{
	char path[64], err[256];
	gwt_resp_t resp;
	long st;

	snprintf(path, sizeof(path), "/v1/records/FULL-%06d", i);
	if (gwt_request(&env, &gw, "norfolk", "agency-police", "GET", path, hdrs,
	    NULL, 0, &resp, err, sizeof(err)) < 0)
		return -1;
	st = resp.status;
	gwt_resp_free(&resp);
	return st;
}

static int
run_cmd(const char *const *argv)
{
	return gwt_run(argv, NULL, 0, NULL, NULL);
}

static int
setup(void **state)
{
	char data[600], moved[700];

	(void)state;
	if (geteuid() != 0)
		return 0;	/* the test skips itself */
	if (gwt_env_setup(&env, "norfolk") < 0)
		return -1;
	/* Put the data directory (with its keys) on a 4 MiB tmpfs. */
	snprintf(data, sizeof(data), "%s/norfolk/data", env.dir);
	snprintf(moved, sizeof(moved), "%s/norfolk/data.orig", env.dir);
	snprintf(mnt, sizeof(mnt), "%s", data);
	if (rename(data, moved) < 0 || mkdir(data, 0700) < 0)
		return -1;
	if (mount("tmpfs", data, "tmpfs", 0, "size=4m,mode=0700") < 0) {
		fprintf(stderr, "test_faults: cannot mount tmpfs: %s\n", strerror(errno));
		rmdir(data);
		rename(moved, data);
		return 0;	/* skip: not permitted here */
	}
	mounted = 1;
	{
		char src[800];
		snprintf(src, sizeof(src), "%s/.", moved);
		const char *argv[] = { "cp", "-a", src, data, NULL };
		if (run_cmd(argv) != 0)
			return -1;
	}
	return gwt_gw_start(&env, "norfolk", &gw);
}

static int
teardown(void **state)
{
	int rc;

	(void)state;
	rc = gwt_gw_stop_clean(&gw);
	if (mounted)
		umount2(mnt, MNT_DETACH);
	gwt_env_cleanup(&env);
	return rc;
}

static void
test_full_disk(void **state)
{
	long st;
	int i, full_at = -1, refused = 0;
	char vkey[700], state_file[700];
	buf_t out = BUF_INIT, errout = BUF_INIT;

	(void)state;
	if (!mounted) {
		skip();
		return;
	}
	/* Fill the disk: every 2xx is remembered. */
	for (i = 0; i < MAX_OK; i++) {
		assert_int_equal(put_record(i, &st), 0);
		if (st == 201) {
			ok_ids[n_ok++] = i;
			continue;
		}
		assert_int_equal(st, 503);
		full_at = i;
		break;
	}
	assert_true(full_at > 0);
	/* While full: writes and audited reads fail closed, and keep failing
	 * the same way. */
	for (i = 0; i < 5; i++) {
		assert_int_equal(put_record(full_at + 1 + i, &st), 0);
		if (st == 503)
			refused++;
		else
			assert_int_equal(st, 201);	/* a freed page may take one */
	}
	assert_true(refused >= 3);
	st = get_status(ok_ids[0]);
	assert_true(st == 503 || st == 200);
	assert_true(gwt_gw_alive(&gw));
	/* The disk grows: the gateway recovers without a restart. */
	{
		assert_int_equal(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT,
		    "size=64m,mode=0700"), 0);
	}
	for (i = 0; i < 50; i++) {
		assert_int_equal(put_record(full_at + 100 + i, &st), 0);
		if (st == 201)
			break;
	}
	assert_int_equal(st, 201);
	/* Nothing acknowledged was lost. */
	for (i = 0; i < n_ok; i++)
		assert_int_equal(get_status(ok_ids[i]), 200);
	/* Restart: the store passes its start-up check against the last
	 * signed checkpoint, and the whole log verifies. */
	assert_int_equal(gwt_gw_stop_clean(&gw), 0);
	assert_int_equal(gwt_gw_start(&env, "norfolk", &gw), 0);
	assert_int_equal(get_status(ok_ids[n_ok - 1]), 200);
	{
		struct timespec ts = { 1, 300000000 };
		nanosleep(&ts, NULL);	/* a checkpoint over the newest entries */
	}
	snprintf(vkey, sizeof(vkey), "%s/pki/norfolk/audit.vkey", env.dir);
	snprintf(state_file, sizeof(state_file), "%s/audit.state", env.dir);
	{
		char url[64];
		snprintf(url, sizeof(url), "https://127.0.0.1:%d", gw.port);
		const char *argv[] = { gwt_prog(&env, "visorctl"), "audit", "verify",
		    "--gateway", url, "--cert", gwt_path(&env, "pki/norfolk/auditor.crt"),
		    "--vkey", vkey, "--state", state_file, NULL };
		int rc = gwt_run(argv, NULL, 0, &out, &errout);
		if (rc != 0)
			fprintf(stderr, "audit verify: %s%s\n", out.data ? out.data : "",
			    errout.data ? errout.data : "");
		assert_int_equal(rc, 0);
	}
	/* The refusals were logged with their code. */
	assert_true(gwt_log_wait(&gw, "status=503", 2000));
	buf_free(&out);
	buf_free(&errout);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_disk),
	};

	return gwt_exit(cmocka_run_group_tests_name("faults", tests, setup,
	    teardown));
}
