/*
 * metrics: the Prometheus text of metrics_render, in particular the
 * per-file expiry gauges and the escaping of file names in label values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "gateway/metrics.h"
#include "util/buf.h"

static void
outbox_lines(void *ctx, buf_t *out)
{
	assert_string_equal((const char *)ctx, "ctx");
	buf_puts(out, "visor_outbox_depth{peer=\"suffolk\"} 2\n");
}

static void
test_render_gauges_and_expiry(void **state)
{
	const metrics_expiry_t ex[] = {
		{ "gateway", "/etc/visor-gw/pki/gateway.crt", 364.5 },
		{ "ca", "/etc/odd \"name\"\\x\nnl.crt", 12.25 },
		{ "crl", "/etc/visor-gw/pki/norfolk-crl.pem", -1.5 },
	};
	metrics_gauges_t g;
	const unsigned conns[2] = { 3, 4 };
	buf_t b = BUF_INIT;

	(void)state;
	memset(&g, 0, sizeof(g));
	g.audit_size = 10;
	g.checkpoint_size = 8;
	g.checkpoint_age_s = 2.5;
	g.uptime_s = 60;
	g.cert_expiry_s = 86400;
	g.crl_expiry_s = 3600;
	g.expiry = ex;
	g.n_expiry = 3;
	g.outbox = outbox_lines;
	g.outbox_ctx = "ctx";
	g.worker_conns = conns;
	g.n_workers = 2;
	metrics_request("status", 200, 700);
	metrics_request("records", 599, 3000000);	/* status "other", +Inf */
	metrics_handshake_failure("revoked");
	metrics_policy_denial("default-deny");
	metrics_delivery_failure("suffolk");
	assert_int_equal(metrics_render(&g, &b), 0);
	assert_non_null(b.data);
	assert_non_null(strstr(b.data, "visor_requests_total{route=\"status\",status=\"200\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_requests_total{route=\"records\",status=\"other\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_request_duration_seconds_bucket{route=\"status\",le=\"0.001\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_request_duration_seconds_bucket{route=\"records\",le=\"2.5\"} 0\n"));
	assert_non_null(strstr(b.data, "visor_request_duration_seconds_bucket{route=\"records\",le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_handshake_failures_total{reason=\"revoked\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_policy_denials_total{rule=\"default-deny\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_delivery_failures_total{peer=\"suffolk\"} 1\n"));
	assert_non_null(strstr(b.data, "visor_worker_connections{worker=\"0\"} 3\n"
	    "visor_worker_connections{worker=\"1\"} 4\n"));
	assert_non_null(strstr(b.data, "\nvisor_audit_log_size 10\n"));
	assert_non_null(strstr(b.data, "\nvisor_audit_checkpoint_size 8\n"));
	assert_non_null(strstr(b.data, "\nvisor_audit_checkpoint_age_seconds 2.5\n"));
	assert_non_null(strstr(b.data,
	    "visor_certificate_expiry_days{role=\"gateway\",file=\"/etc/visor-gw/pki/gateway.crt\"} 364.500\n"));
	/* Quote, backslash and newline escaped: the line stays one sample. */
	assert_non_null(strstr(b.data,
	    "visor_certificate_expiry_days{role=\"ca\",file=\"/etc/odd \\\"name\\\"\\\\x\\nnl.crt\"} 12.250\n"));
	assert_non_null(strstr(b.data,
	    "visor_crl_expiry_days{file=\"/etc/visor-gw/pki/norfolk-crl.pem\"} -1.500\n"));
	/* A CRL is not listed as a certificate, nor the reverse. */
	assert_null(strstr(b.data, "visor_certificate_expiry_days{role=\"crl\""));
	assert_null(strstr(b.data, "visor_crl_expiry_days{file=\"/etc/visor-gw/pki/gateway.crt\""));
	assert_non_null(strstr(b.data, "visor_outbox_depth{peer=\"suffolk\"} 2\n"));
	buf_free(&b);

	/* No gauges: only the counters. */
	assert_int_equal(metrics_render(NULL, &b), 0);
	assert_null(strstr(b.data, "visor_audit_log_size"));
	assert_null(strstr(b.data, "visor_worker_connections"));
	assert_null(strstr(b.data, "visor_certificate_expiry_days"));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_gauges_and_expiry),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
