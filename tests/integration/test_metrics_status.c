/*
 * What an operator watches: /metrics (Prometheus text) and GET /v1/status
 * with visorctl status, on a gateway whose peer is down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/buf.h"

static gwt_env_t env;
static gwt_gw_t norfolk;

static long
request(const char *cert, const char *method, const char *path,
    const char *const *hdrs, const char *body, buf_t *out)
{
	gwt_resp_t resp;
	char err[256];
	long status;

	if (gwt_request(&env, &norfolk, "norfolk", cert, method, path, hdrs,
	    body, body ? strlen(body) : 0, &resp, err, sizeof(err)) < 0)
		fail_msg("%s %s: %s", method, path, err);
	status = resp.status;
	if (out != NULL && resp.body.data != NULL)
		buf_puts(out, resp.body.data);
	gwt_resp_free(&resp);
	return status;
}

static void
metrics(buf_t *out)
{
	char url[64];
	const char *argv[] = { "curl", "-s", "--max-time", "10", url, NULL };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics",
	    norfolk.port + 1000);
	assert_int_equal(gwt_run(argv, NULL, 0, out, NULL), 0);
	assert_non_null(out->data);
}

static int
status_cmd(const char *cert, const char *extra, buf_t *out, buf_t *errout)
{
	char url[64], certpath[600];
	const char *argv[] = { gwt_prog(&env, "visorctl"), "status", "--gateway",
	    url, "--cert", certpath, extra, NULL };

	snprintf(url, sizeof(url), "https://127.0.0.1:%d", norfolk.port);
	snprintf(certpath, sizeof(certpath), "%s",
	    gwt_path(&env, cert));
	return gwt_run(argv, NULL, 0, out, errout);
}

/* Wait until a delivery to the stopped peer has been attempted. */
static void
wait_delivery_attempt(void)
{
	buf_t m = BUF_INIT;
	int i;

	for (i = 0; i < 200; i++) {
		buf_free(&m);
		metrics(&m);
		if (strstr(m.data, "visor_delivery_failures_total{peer=\"suffolk\"}"))
			break;
		sleep_ms(50);
	}
	buf_free(&m);
}

static void
test_operator_view(void **state)
{
	const char *rec_hdrs[] = { "X-Visor-Actor: PC-0001",
	    "X-Visor-Purpose: risk-management",
	    "Content-Type: application/json", NULL };
	const char *xfer_hdrs[] = { "X-Visor-Actor: PC-0001",
	    "X-Visor-Purpose: offender-move",
	    "X-Visor-Justification: synthetic test move",
	    "Content-Type: application/json", NULL };
	const char *record = "{\"id\":\"MS-0001\",\"managing_area\":\"norfolk\","
	    "\"category\":1,\"level\":1,\"person\":{\"surname\":\"EXAMPLE\","
	    "\"forenames\":\"Synthetic\",\"dob\":\"1980-01-02\"}}";
	const char *xfer = "{\"record_id\":\"MS-0001\",\"to_area\":\"suffolk\","
	    "\"purpose\":\"offender-move\",\"justification\":\"synthetic test move\"}";
	buf_t b = BUF_INIT, e = BUF_INIT;
	char url[64];
	int rc;

	(void)state;
	/* Traffic: a write, a transfer to a peer that is down, a denied
	 * status call, and a handshake without a client certificate. */
	assert_int_equal(request("agency-police", "PUT", "/v1/records/MS-0001",
	    rec_hdrs, record, NULL), 201);
	assert_int_equal(request("agency-police", "POST", "/v1/transfers",
	    xfer_hdrs, xfer, NULL), 202);
	assert_int_equal(request("agency-housing", "GET", "/v1/status", NULL,
	    NULL, &b), 403);
	assert_non_null(strstr(b.data, "\"request_id\""));
	buf_free(&b);
	{
		const char *argv[] = { "curl", "-s", "-o", "/dev/null", "--cacert",
		    gwt_path(&env, "pki/root.crt"), url, NULL };

		snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/health",
		    norfolk.port);
		rc = gwt_run(argv, NULL, 0, NULL, NULL);
		assert_int_not_equal(rc, 0);
	}
	wait_delivery_attempt();
	sleep_ms(1200);		/* a checkpoint covers the entries */

	/* /metrics: every family an operator alerts on. */
	metrics(&b);
	assert_non_null(strstr(b.data,
	    "visor_requests_total{route=\"records\",status=\"201\"} 1\n"));
	assert_non_null(strstr(b.data,
	    "visor_requests_total{route=\"transfers\",status=\"202\"} 1\n"));
	assert_non_null(strstr(b.data,
	    "visor_requests_total{route=\"status\",status=\"403\"} 1\n"));
	assert_non_null(strstr(b.data, "# TYPE visor_request_duration_seconds histogram"));
	assert_non_null(strstr(b.data,
	    "visor_request_duration_seconds_bucket{route=\"records\",le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_request_duration_seconds_count{route=\"records\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_handshake_failures_total{reason=\"no-certificate\"}"));
	assert_non_null(strstr(b.data, "visor_policy_denials_total"));
	assert_non_null(strstr(b.data, "visor_delivery_failures_total{peer=\"suffolk\"}"));
	assert_non_null(strstr(b.data, "visor_outbox_depth{peer=\"suffolk\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_outbox_oldest_seconds{peer=\"suffolk\"}"));
	assert_non_null(strstr(b.data, "visor_audit_log_size "));
	assert_null(strstr(b.data, "visor_audit_log_size 0\n"));
	assert_non_null(strstr(b.data, "visor_audit_checkpoint_age_seconds "));
	{
		/* Every entry is covered by a signed checkpoint by now. */
		const char *a = strstr(b.data, "\nvisor_audit_log_size ");
		const char *c = strstr(b.data, "\nvisor_audit_checkpoint_size ");

		assert_non_null(a);
		assert_non_null(c);
		assert_int_equal(strtoull(a + 22, NULL, 10),
		    strtoull(c + 29, NULL, 10));
	}
	assert_null(strstr(b.data, "visor_audit_checkpoint_age_seconds -1\n"));
	{
		char want[800];

		snprintf(want, sizeof(want), "visor_certificate_expiry_days{role="
		    "\"gateway\",file=\"%s\"} 36", gwt_path(&env,
		    "pki/norfolk/gateway.crt"));
		assert_non_null(strstr(b.data, want));
		snprintf(want, sizeof(want), "visor_certificate_expiry_days{role="
		    "\"ca\",file=\"%s\"} 18", gwt_path(&env, "pki/suffolk/ca.crt"));
		assert_non_null(strstr(b.data, want));
		snprintf(want, sizeof(want), "visor_crl_expiry_days{file=\"%s\"} ",
		    gwt_path(&env, "pki/norfolk/crl.pem"));
		assert_non_null(strstr(b.data, want));
		assert_non_null(strstr(b.data, "visor_certificate_expiry_days{role=\"root\""));
	}
	buf_free(&b);

	/* GET /v1/status as the area's auditor. */
	assert_int_equal(request("auditor", "GET", "/v1/status", NULL, NULL, &b),
	    200);
	assert_non_null(strstr(b.data, "\"area\":\"norfolk\""));
	assert_non_null(strstr(b.data, "\"certificate_expiry_days\":364"));
	assert_non_null(strstr(b.data, "\"crl_expiry_days\":29"));
	assert_non_null(strstr(b.data, "\"outbox_depth\":1"));
	assert_non_null(strstr(b.data, "\"last_delivery_ok\":false"));
	/* The peer is down: when the outbox tries it next. */
	assert_non_null(strstr(b.data, "\"next_probe_s\""));
	assert_non_null(strstr(b.data, "\"uptime_s\""));
	assert_non_null(strstr(b.data, "\"checkpoint_age_s\""));
	assert_non_null(strstr(b.data, "\"audit_size\""));
	buf_free(&b);
	/* ... and as police; not as probation or another area's auditor. */
	assert_int_equal(request("agency-police", "GET", "/v1/status", NULL,
	    NULL, NULL), 200);
	assert_int_equal(request("agency-probation", "GET", "/v1/status", NULL,
	    NULL, NULL), 403);
	{
		gwt_resp_t resp;
		char err[256];

		assert_int_equal(gwt_request(&env, &norfolk, "suffolk", "auditor",
		    "GET", "/v1/status", NULL, NULL, 0, &resp, err, sizeof(err)), 0);
		assert_int_equal(resp.status, 403);
		gwt_resp_free(&resp);
	}
	assert_int_equal(request("auditor", "POST", "/v1/status", NULL, "{}",
	    NULL), 405);

	/* visorctl status: plain words, exit 1 on warnings. */
	rc = status_cmd("pki/norfolk/auditor.crt", NULL, &b, &e);
	if (rc != 1)
		fail_msg("status exit %d: %s %s", rc, b.data ? b.data : "",
		    e.data ? e.data : "");
	assert_non_null(strstr(b.data, "peer suffolk unreachable"));
	assert_non_null(strstr(b.data, "norfolk, version "));
	assert_null(strstr(b.data, "certificate expires"));
	buf_free(&b);
	buf_free(&e);
	rc = status_cmd("pki/norfolk/auditor.crt", "--json", &b, &e);
	assert_int_equal(rc, 0);
	assert_true(b.data[0] == '{');
	buf_free(&b);
	buf_free(&e);
	/* An early warning window shows the certificate expiry. */
	{
		char url2[64], cert[600];
		const char *argv[] = { gwt_prog(&env, "visorctl"), "status",
		    "--gateway", url2, "--cert", cert, "--warn-days", "400", NULL };

		snprintf(url2, sizeof(url2), "https://127.0.0.1:%d/", norfolk.port);
		snprintf(cert, sizeof(cert), "%s",
		    gwt_path(&env, "pki/norfolk/agency-police.crt"));
		assert_int_equal(gwt_run(argv, NULL, 0, &b, &e), 1);
		assert_non_null(strstr(b.data,
		    "the gateway certificate expires in 364 days"));
		buf_free(&b);
		buf_free(&e);
	}
	/* Refused caller and bad usage. */
	rc = status_cmd("pki/norfolk/agency-housing.crt", NULL, &b, &e);
	assert_int_equal(rc, 3);
	assert_non_null(strstr(e.data, "403"));
	buf_free(&b);
	buf_free(&e);
	/* Status comes from the certificate's own area's gateway only: with
	 * Suffolk's auditor, Norfolk's gateway is not the one expected. */
	rc = status_cmd("pki/suffolk/auditor.crt", NULL, &b, &e);
	assert_int_equal(rc, 3);
	assert_non_null(strstr(e.data, "not the expected urn:visor:suffolk:gateway"));
	buf_free(&b);
	buf_free(&e);
	rc = status_cmd("pki/norfolk/auditor.crt", "--warn-days", &b, &e);
	assert_int_equal(rc, 2);
	buf_free(&b);
	buf_free(&e);
	/* Another area's gateway is checked against that area's CRL, in its
	 * folder beside the certificate's (the quickstart layout): found,
	 * the connection is made (and Norfolk's gateway is not Suffolk's);
	 * gone, the command refuses to connect and names the file.  Before,
	 * with --gateway-id no CRL was taken at all. */
	{
		char url2[64], cert[600], crl[600], moved[600];
		const char *argv[] = { gwt_prog(&env, "visorctl"), "get",
		    "NFK-000001", "--gateway", url2, "--cert", cert, "--actor",
		    "P1", "--purpose", "risk-management", "--gateway-id",
		    "urn:visor:suffolk:gateway", NULL };

		snprintf(url2, sizeof(url2), "https://127.0.0.1:%d", norfolk.port);
		snprintf(cert, sizeof(cert), "%s",
		    gwt_path(&env, "pki/norfolk/agency-police.crt"));
		snprintf(crl, sizeof(crl), "%s",
		    gwt_path(&env, "pki/suffolk/crl.pem"));
		snprintf(moved, sizeof(moved), "%s.away", crl);
		assert_int_equal(gwt_run(argv, NULL, 0, &b, &e), 1);
		assert_non_null(strstr(e.data,
		    "not the expected urn:visor:suffolk:gateway"));
		buf_free(&b);
		buf_free(&e);
		assert_int_equal(rename(crl, moved), 0);
		rc = gwt_run(argv, NULL, 0, &b, &e);
		assert_int_equal(rename(moved, crl), 0);
		assert_int_equal(rc, 2);
		assert_non_null(strstr(e.data, "no CRL to check "
		    "urn:visor:suffolk:gateway against"));
		assert_non_null(strstr(e.data, "/pki/norfolk/../suffolk/crl.pem"));
		buf_free(&b);
		buf_free(&e);
	}
}

static int
setup(void **state)
{
	(void)state;
	if (gwt_env_setup(&env, "norfolk,suffolk") < 0)
		return -1;
	return gwt_gw_start(&env, "norfolk", &norfolk);
}

/* The open connections of worker w in a /metrics text, -1 if absent. */
static long
worker_conns(const char *text, int w)
{
	char needle[64];
	const char *p;

	snprintf(needle, sizeof(needle), "visor_worker_connections{worker=\"%d\"} ",
	    w);
	p = strstr(text, needle);
	return p == NULL ? -1 : strtol(p + strlen(needle), NULL, 10);
}

/* A burst of connections is spread over both workers (threads: 2), not
 * left on whichever worker woke first, and the gauges go back to zero. */
static void
test_connections_spread_over_workers(void **state)
{
	enum { N = 8 };
	int fd[N], i, tries;
	long w0 = -1, w1 = -1;
	buf_t m = BUF_INIT;

	(void)state;
	for (i = 0; i < N; i++) {
		fd[i] = gwt_tcp_connect(norfolk.port);
		assert_true(fd[i] >= 0);
	}
	for (tries = 0; tries < 200; tries++) {
		buf_free(&m);
		metrics(&m);
		w0 = worker_conns(m.data, 0);
		w1 = worker_conns(m.data, 1);
		if (w0 + w1 >= N)
			break;
		sleep_ms(50);
	}
	assert_int_equal(w0 + w1, N);
	assert_null(strstr(m.data, "visor_worker_connections{worker=\"2\"}"));
	/* Within BALANCE_SLACK + 1 of each other. */
	assert_true(w0 >= N / 2 - 1 && w1 >= N / 2 - 1);
	for (i = 0; i < N; i++)
		close(fd[i]);
	for (tries = 0; tries < 200; tries++) {
		buf_free(&m);
		metrics(&m);
		if (worker_conns(m.data, 0) == 0 && worker_conns(m.data, 1) == 0)
			break;
		sleep_ms(50);
	}
	assert_int_equal(worker_conns(m.data, 0), 0);
	assert_int_equal(worker_conns(m.data, 1), 0);
	buf_free(&m);
	/* Still serving. */
	assert_int_equal(request("agency-police", "GET", "/v1/health", NULL, NULL,
	    NULL), 200);
}

static int
teardown(void **state)
{
	int rc;

	(void)state;
	rc = gwt_gw_stop_clean(&norfolk);
	gwt_env_cleanup(&env);
	return rc;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operator_view),
		cmocka_unit_test(test_connections_spread_over_workers),
	};

	return gwt_exit(cmocka_run_group_tests_name("metrics_status", tests,
	    setup, teardown));
}
