/*
 * bench_http: drives one HTTP benchmark with client/loadgen and prints
 * RESULT lines (SPEC section 12).  scripts/bench.sh runs it against nginx
 * and visor-gw in the same run.
 *
 *   bench_http --name NAME --url URL --cert C --key K --cacert R
 *              --mode static|get|absent|put|patch|transfer|mix|idle [--path P]
 *              [--mix get=N,put=N,patch=N,transfer=N] [--connections N]
 *              [--duration S] [--ids N] [--new-connection] [--pid PID]
 *              [--threads N]
 *   bench_http --print-record      (the 2 KB synthetic record, for nginx)
 *
 * static: GET --path; get: GET /v1/records/BENCH-xxxxxx (policy-filtered,
 * audited); absent: GET /v1/records/ABSENT-xxxxxx, ids no store holds, so
 * each answer is a 404 whose consult entry is durable first: the audited
 * path without the record's read, filter and print (only 404 counts as
 * served); put: PUT /v1/records/BENCH-xxxxxx with a 2 KB record (durable,
 * audited); patch: PATCH the same records with a small merge patch
 * (application/merge-patch+json: the write policy on the touched fields, a
 * new version, an alter entry); transfer: POST /v1/transfers of those
 * records to suffolk (policy, a durable outbox entry and its audit entry;
 * the answer is 202 once queued, delivery is bench_transfer's figure); mix:
 * requests of those four kinds in the proportions of --mix (default
 * get=70,put=10,patch=10,transfer=10), interleaved on every connection;
 * idle: open N connections, hold them idle and report the server's
 * resident memory.  --pid: the server process, whose CPU time per
 * request is reported beside the load generator's own.  --threads: event
 * loops sharing the connections (default 1); NAME_loadgen_cores is the
 * generator's CPU time over the run's length, so a figure whose generator
 * used a whole core per thread was bounded by the generator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/loadgen.h"
#include "util/buf.h"

int main(int argc, char **argv);

/* A synthetic 2 KB record (category 2, level 2); __ID__ is replaced. */
static const char record_template[] =
    "{\"id\":\"__ID__\",\"managing_area\":\"norfolk\",\"category\":2,\"level\":2,"
    "\"person\":{\"surname\":\"Example\",\"forenames\":\"Alex Jordan\",\"dob\":\"1979-03-14\","
    "\"gender\":\"male\",\"aliases\":[{\"surname\":\"Sample\",\"forenames\":\"Al\"}],"
    "\"pnc_id\":\"79/123456X\",\"photo_ref\":\"img-000123\"},"
    "\"addresses\":[{\"type\":\"home\",\"line1\":\"12 Synthetic Row\",\"town\":\"Norwich\","
    "\"postcode\":\"NR1 1AA\",\"from\":\"2021-06-01\"},{\"type\":\"approved-premises\","
    "\"line1\":\"3 Test Lane\",\"town\":\"Kings Lynn\",\"postcode\":\"PE30 1AA\","
    "\"from\":\"2020-01-10\",\"to\":\"2021-05-31\"}],"
    "\"risk\":{\"rosh\":\"high\",\"tool\":\"OASys\",\"assessed\":\"2022-02-01\","
    "\"factors\":[\"substance misuse\",\"unstable accommodation\",\"previous breaches\"],"
    "\"people_at_risk\":[\"known adults\",\"staff\"]},"
    "\"rmp\":{\"summary\":\"Weekly reporting, curfew and exclusion zone; review after any breach.\","
    "\"actions\":[\"weekly reporting\",\"home visits\",\"liaise with housing\"],\"next_review\":\"2022-08-01\"},"
    "\"convictions\":[{\"offence\":\"wounding with intent\",\"date\":\"2015-04-02\","
    "\"court\":\"Norwich Crown Court\",\"sentence\":\"8 years\"}],"
    "\"orders\":[{\"type\":\"SRO\",\"made\":\"2021-05-20\",\"expires\":\"2026-05-20\","
    "\"prohibitions\":[\"no contact with named victims\",\"no entry to exclusion zone\"]}],"
    "\"licence\":{\"end\":\"2023-04-02\",\"conditions\":[\"reside at approved address\","
    "\"curfew 19:00-07:00\",\"no contact with victims\"]},"
    "\"em\":{\"active\":true,\"type\":\"curfew\",\"provider\":\"Synthetic EM Ltd\","
    "\"last_alert\":\"2022-01-15\"},"
    "\"health\":{\"notes\":[\"synthetic note one\",\"synthetic note two\"]},"
    "\"intelligence\":[{\"grade\":\"B2\",\"handling\":\"shareable\",\"date\":\"2022-01-03\","
    "\"text\":\"Seen with known associates near the exclusion zone.\"},"
    "{\"grade\":\"C3\",\"handling\":\"police-only\",\"date\":\"2022-02-11\","
    "\"text\":\"Unverified report of a second vehicle.\"}],"
    "\"associates\":[\"associate one\",\"associate two\"],"
    "\"vehicles\":[{\"vrm\":\"AB12CDE\",\"make\":\"Ford\",\"colour\":\"blue\"}],"
    "\"financial\":[\"no concerns recorded\"]}";

enum { K_GET, K_PUT, K_PATCH, K_TRANSFER, K_STATIC, K_ABSENT, K_N };

typedef struct {
	const char *mode, *path;
	unsigned weight[K_N];	/* mix: out of weight_sum */
	unsigned weight_sum;
	unsigned ids;
	char **bodies;		/* per slot */
	size_t *body_len;
	char (*paths)[128];	/* per slot */
	long pid;		/* first of pids: RSS */
	long pids[8];
	size_t n_pids;
	double rss_mib, anon_mib;
} ctx_t;

static const char *const get_headers[] = { "X-Visor-Actor: BENCH1",
    "X-Visor-Purpose: risk-management", "X-Visor-Justification: benchmark",
    NULL };
static const char *const put_headers[] = { "X-Visor-Actor: BENCH1",
    "X-Visor-Purpose: risk-management", "Content-Type: application/json",
    NULL };
static const char *const patch_headers[] = { "X-Visor-Actor: BENCH1",
    "X-Visor-Purpose: risk-management",
    "Content-Type: application/merge-patch+json", NULL };
static const char *const transfer_headers[] = { "X-Visor-Actor: BENCH1",
    "X-Visor-Purpose: offender-move",
    "X-Visor-Justification: benchmark move", "Content-Type: application/json",
    NULL };
static const char *const no_headers[] = { NULL };

/* The kind of request k: the mode's, or for mix a deterministic
 * interleaving in the --mix proportions (k spread over 100 slots by a
 * multiplicative step, so that kinds alternate on every connection). */
static int
kind_of(const ctx_t *c, uint64_t k)
{
	unsigned pos, i, acc = 0;

	if (strcmp(c->mode, "get") == 0)
		return K_GET;
	if (strcmp(c->mode, "put") == 0)
		return K_PUT;
	if (strcmp(c->mode, "patch") == 0)
		return K_PATCH;
	if (strcmp(c->mode, "transfer") == 0)
		return K_TRANSFER;
	if (strcmp(c->mode, "absent") == 0)
		return K_ABSENT;
	if (strcmp(c->mode, "mix") != 0)
		return K_STATIC;
	pos = (unsigned)((k * 37) % c->weight_sum);
	for (i = 0; i < K_STATIC; i++) {
		acc += c->weight[i];
		if (pos < acc)
			return (int)i;
	}
	return K_GET;
}

/* "get=70,put=10,patch=10,transfer=10" into c->weight.  0 or -1. */
static int
parse_mix(ctx_t *c, const char *v)
{
	static const char *const names[] = { "get", "put", "patch", "transfer" };
	const char *p = v;
	char *end;
	unsigned i;
	size_t n;

	memset(c->weight, 0, sizeof(c->weight));
	while (*p != '\0') {
		for (i = 0; i < K_STATIC; i++) {
			n = strlen(names[i]);
			if (strncmp(p, names[i], n) == 0 && p[n] == '=')
				break;
		}
		if (i == K_STATIC)
			return -1;
		c->weight[i] = (unsigned)strtoul(p + n + 1, &end, 10);
		if (end == p + n + 1 || (*end != ',' && *end != '\0'))
			return -1;
		p = *end == ',' ? end + 1 : end;
	}
	c->weight_sum = 0;
	for (i = 0; i < K_STATIC; i++)
		c->weight_sum += c->weight[i];
	return c->weight_sum > 0 ? 0 : -1;
}

/* The record with id; without_health drops the health group (police, who
 * run the PUT benchmark, may write every group but health). */
static char *
make_record(const char *id, int with_health, size_t *len)
{
	buf_t b = BUF_INIT;
	const char *t = record_template, *p;
	const char *h = strstr(record_template, ",\"health\":");
	const char *hend = h ? strstr(h, "]}") : NULL;

	while ((p = strstr(t, "__ID__")) != NULL) {
		buf_append(&b, t, (size_t)(p - t));
		buf_puts(&b, id);
		t = p + 6;
	}
	if (!with_health && h != NULL && hend != NULL && h > t) {
		buf_append(&b, t, (size_t)(h - t));
		t = hend + 2;
	}
	buf_puts(&b, t);
	return buf_steal(&b, len);
}

static void
next_req(void *arg, unsigned slot, uint64_t k, loadgen_req_t *r)
{
	ctx_t *c = arg;
	char id[32];

	snprintf(id, sizeof(id), "BENCH-%06u", (unsigned)(k % c->ids));
	switch (kind_of(c, k)) {
	case K_ABSENT:
		snprintf(c->paths[slot], sizeof(c->paths[slot]),
		    "/v1/records/ABSENT-%06u", (unsigned)(k % c->ids));
		r->method = "GET";
		r->path = c->paths[slot];
		r->headers = get_headers;
		break;
	case K_GET:
		snprintf(c->paths[slot], sizeof(c->paths[slot]), "/v1/records/%s", id);
		r->method = "GET";
		r->path = c->paths[slot];
		r->headers = get_headers;
		break;
	case K_PATCH:
	case K_TRANSFER: {
		buf_t b = BUF_INIT;
		int patch = kind_of(c, k) == K_PATCH;

		free(c->bodies[slot]);
		if (patch)
			buf_printf(&b, "{\"risk\":{\"rosh\":\"%s\"},\"rmp\":{\"next_review\":"
			    "\"2022-%02u-01\"}}", k % 2 ? "high" : "very-high",
			    (unsigned)(k % 12) + 1);
		else
			buf_printf(&b, "{\"record_id\":\"%s\",\"to_area\":\"suffolk\","
			    "\"purpose\":\"offender-move\",\"justification\":"
			    "\"benchmark move\"}", id);
		c->bodies[slot] = buf_steal(&b, &c->body_len[slot]);
		if (patch)
			snprintf(c->paths[slot], sizeof(c->paths[slot]),
			    "/v1/records/%s", id);
		else
			snprintf(c->paths[slot], sizeof(c->paths[slot]), "/v1/transfers");
		r->method = patch ? "PATCH" : "POST";
		r->path = c->paths[slot];
		r->body = c->bodies[slot];
		r->body_len = c->body_len[slot];
		r->headers = patch ? patch_headers : transfer_headers;
		break;
	}
	case K_PUT:
		free(c->bodies[slot]);
		c->bodies[slot] = make_record(id, 0, &c->body_len[slot]);
		snprintf(c->paths[slot], sizeof(c->paths[slot]), "/v1/records/%s", id);
		r->method = "PUT";
		r->path = c->paths[slot];
		r->body = c->bodies[slot];
		r->body_len = c->body_len[slot];
		r->headers = put_headers;
		break;
	default:
		r->method = "GET";
		r->path = c->path;
		r->headers = strcmp(c->path, "/v1/health") == 0 ? get_headers : no_headers;
		break;
	}
}

static double
proc_cpu_s(long pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	int i;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL) {
		fclose(f);
		return 0;
	}
	fclose(f);
	/* After the command name in parentheses: state is field 3, utime 14. */
	p = strrchr(buf, ')');
	for (i = 0; p != NULL && i < 12; i++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A field of /proc/<pid>/status in MiB ("VmRSS", "RssAnon"), or -1. */
static double
proc_status_mib(long pid, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			kb = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb < 0 ? -1 : (double)kb / 1024.0;
}

static void
on_idle(void *arg)
{
	ctx_t *c = arg;
	struct timespec ts = { 1, 0 };

	nanosleep(&ts, NULL);
	c->rss_mib = proc_status_mib(c->pid, "VmRSS");
	c->anon_mib = proc_status_mib(c->pid, "RssAnon");
}

int
main(int argc, char **argv)
{
	loadgen_opts_t o;
	loadgen_result_t res;
	ctx_t c;
	const char *name = "bench";
	char err[256];
	double s0, s1;
	int i, print_record = 0;
	unsigned k;

	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	o.connections = 32;
	o.duration_s = 8;
	c.mode = "static";
	c.path = "/";
	c.ids = 1000;
	(void)parse_mix(&c, "get=70,put=10,patch=10,transfer=10");
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--new-connection") == 0) {
			o.new_connection = 1;
			continue;
		}
		if (strcmp(a, "--print-record") == 0) {
			print_record = 1;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "bench_http: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--name") == 0) name = v;
		else if (strcmp(a, "--url") == 0) o.base_url = v;
		else if (strcmp(a, "--cert") == 0) o.cert = v;
		else if (strcmp(a, "--key") == 0) o.key = v;
		else if (strcmp(a, "--cacert") == 0) o.cacert = v;
		else if (strcmp(a, "--mode") == 0) c.mode = v;
		else if (strcmp(a, "--path") == 0) c.path = v;
		else if (strcmp(a, "--mix") == 0) {
			if (parse_mix(&c, v) < 0) {
				fprintf(stderr, "bench_http: --mix: want get=N,put=N,"
				    "patch=N,transfer=N with a total above 0\n");
				return 2;
			}
		}
		else if (strcmp(a, "--connections") == 0) o.connections = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--duration") == 0) o.duration_s = strtod(v, NULL);
		else if (strcmp(a, "--threads") == 0) o.threads = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--ids") == 0) c.ids = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--pid") == 0) {
			/* One or more server processes, comma-separated. */
			char *end;
			const char *q = v;
			while (*q && c.n_pids < 8) {
				c.pids[c.n_pids++] = strtol(q, &end, 10);
				q = *end == ',' ? end + 1 : end + strlen(end);
			}
			c.pid = c.n_pids ? c.pids[0] : 0;
		}
		else {
			fprintf(stderr, "bench_http: unknown option %s\n", a);
			return 2;
		}
	}
	if (print_record) {
		size_t len;
		char *r = make_record("BENCH-000000", 0, &len);
		fwrite(r, 1, len, stdout);
		free(r);
		return 0;
	}
	if (o.base_url == NULL || o.cert == NULL || o.key == NULL ||
	    o.cacert == NULL || o.connections == 0 || c.ids == 0) {
		fprintf(stderr, "bench_http: --url, --cert, --key, --cacert needed\n");
		return 2;
	}
	c.bodies = calloc(o.connections, sizeof(*c.bodies));
	c.body_len = calloc(o.connections, sizeof(*c.body_len));
	c.paths = calloc(o.connections, sizeof(*c.paths));
	if (c.bodies == NULL || c.body_len == NULL || c.paths == NULL)
		return 1;
	o.next = next_req;
	o.ctx = &c;
	if (strcmp(c.mode, "absent") == 0)
		o.expect_status = 404;
	if (strcmp(c.mode, "idle") == 0) {
		o.idle_hold_s = 1;
		o.on_idle = on_idle;
	}
	for (k = 0, s0 = 0; k < c.n_pids; k++)
		s0 += proc_cpu_s(c.pids[k]);
	if (loadgen_run(&o, &res, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_http: %s\n", err);
		return 1;
	}
	for (k = 0, s1 = 0; k < c.n_pids; k++)
		s1 += proc_cpu_s(c.pids[k]);
	if (strcmp(c.mode, "idle") == 0) {
		printf("RESULT %s_rss %.1f MiB\n", name, c.rss_mib);
		printf("RESULT %s_rss_anon %.1f MiB\n", name, c.anon_mib);
		printf("RESULT %s_connections %llu connections\n", name,
		    (unsigned long long)res.ok);
	} else {
		printf("RESULT %s %.0f requests/s\n", name, res.rps);
		printf("RESULT %s_p50 %.2f ms\n", name, res.p50_ms);
		printf("RESULT %s_p99 %.2f ms\n", name, res.p99_ms);
		printf("RESULT %s_errors %llu requests\n", name,
		    (unsigned long long)(res.http_errors + res.failures));
		if (res.ok > 0) {
			printf("RESULT %s_loadgen_cpu %.1f us/request\n", name,
			    res.cpu_s * 1e6 / (double)res.ok);
			if (res.elapsed_s > 0)
				printf("RESULT %s_loadgen_cores %.2f cores\n", name,
				    res.cpu_s / res.elapsed_s);
			if (c.pid > 0)
				printf("RESULT %s_server_cpu %.1f us/request\n", name,
				    (s1 - s0) * 1e6 / (double)res.ok);
		}
	}
	if (res.http_errors + res.failures > 0)
		fprintf(stderr, "bench_http: %s: first error: status %ld %s\n", name,
		    res.first_error_status, res.first_error);
	for (k = 0; k < o.connections; k++)
		free(c.bodies[k]);
	free(c.bodies);
	free(c.body_len);
	free(c.paths);
	/* A run with no successful request measured nothing. */
	return res.ok > 0 ? 0 : 1;
}
