/*
 * bench_policy: the cost of policy filtering against the cost of parsing and
 * printing the same record with cJSON (the work any JSON endpoint does).
 *
 * Record: tests/data/record-full.json (synthetic, about 2 KB compact).
 * Filter: the default MAPPA policy, each of the ten agency types reading the
 * record in turn (police pass almost everything, education almost nothing),
 * building the filtered copy, path lists and explanation.  Single thread.
 * Prints `RESULT` and `RATIO` lines (SPEC section 12); runs a few seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "policy/mappa_default.h"
#include "policy/policy.h"
#include "util/fileio.h"
#include "util/json.h"

int main(void);

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int
main(void)
{
	const char *src = getenv("VISOR_SRC");
	char path[1024], err[256];
	identity_t ids[10];
	policy_request_t reqs[10];
	policy_decision_t *d;
	policy_t *p;
	cJSON *rec;
	char *text, *compact;
	size_t len, clen, i;
	long n, iters;
	double t0, parse_us, filter_us;
	const char *pt = policy_mappa_default_json();

	snprintf(path, sizeof(path), "%s/tests/data/record-full.json", src ? src : ".");
	if (file_read_all(path, 1 << 20, &text, &len) < 0) {
		fprintf(stderr, "bench_policy: cannot read %s\n", path);
		return 1;
	}
	rec = json_parse_strict(text, len, 32, err, sizeof(err));
	free(text);
	if (rec == NULL || (compact = json_print(rec)) == NULL) {
		fprintf(stderr, "bench_policy: bad record\n");
		return 1;
	}
	clen = strlen(compact);
	if ((p = policy_load(pt, strlen(pt), err, sizeof(err))) == NULL) {
		fprintf(stderr, "bench_policy: %s\n", err);
		return 1;
	}
	for (i = 0; i < 10; i++) {
		char uri[128];

		snprintf(uri, sizeof(uri), "urn:visor:norfolk:agency:%s", identity_agency_types[i]);
		if (identity_parse(uri, strlen(uri), &ids[i], err, sizeof(err)) < 0)
			return 1;
		memset(&reqs[i], 0, sizeof(reqs[i]));
		reqs[i].op = POLICY_OP_READ;
		reqs[i].caller = &ids[i];
		reqs[i].purpose = "risk-management";
		reqs[i].local_area = "norfolk";
		reqs[i].today = "2026-11-24";
	}
	printf("# cores %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
	printf("# record %zu bytes compact, default MAPPA policy (%zu rules), "
	    "10 agency types in turn, 1 thread\n", clen, policy_rule_count(p));

	/* calibrate to about 1.5 s per measurement */
	iters = 1000;
	for (;;) {
		t0 = now_us();
		for (n = 0; n < iters; n++) {
			cJSON *j = cJSON_Parse(compact);
			char *o = cJSON_PrintUnformatted(j);

			free(o);
			cJSON_Delete(j);
		}
		parse_us = now_us() - t0;
		if (parse_us > 200000.0 || iters > 100000000L)
			break;
		iters *= 4;
	}
	iters = (long)((double)iters * 1.5e6 / parse_us) + 1;

	t0 = now_us();
	for (n = 0; n < iters; n++) {
		cJSON *j = cJSON_Parse(compact);
		char *o = cJSON_PrintUnformatted(j);

		free(o);
		cJSON_Delete(j);
	}
	parse_us = (now_us() - t0) / (double)iters;

	t0 = now_us();
	for (n = 0; n < iters; n++) {
		if (policy_filter(p, &reqs[n % 10], rec, &d) < 0) {
			fprintf(stderr, "bench_policy: filter failed\n");
			return 1;
		}
		policy_decision_free(d);
	}
	filter_us = (now_us() - t0) / (double)iters;

	printf("RESULT policy_filter_us %.2f us\n", filter_us);
	printf("RESULT cjson_parse_print_us %.2f us\n", parse_us);
	printf("RATIO policy_filter_vs_parse_print %.2f\n", filter_us / parse_us);
	policy_free(p);
	cJSON_Delete(rec);
	free(compact);
	return 0;
}
