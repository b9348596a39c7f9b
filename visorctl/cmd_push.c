/*
 * visorctl push: send records from JSON lines or CSV (with a column mapping)
 * to an area gateway: PUT /v1/records/{id}, or PATCH with a JSON merge
 * patch, several at once over keep-alive connections, retrying network
 * errors, 429 and 5xx with exponential backoff and jitter.
 *
 * Each request carries an Idempotency-Key derived from the method, id and
 * body bytes, so running the same input again changes nothing: the gateway
 * answers a repeated key with its first answer.  A key derived from the
 * content comes back whenever the content does, so each request also asks
 * (X-Visor-Replay: if-current) for that answer only while the record is
 * still at the version it made: pushing A, then B, then A writes A again.
 * Such an answer, marked by the gateway's response header
 * "Idempotent-Replay: true" (also accepted: "Idempotent-Replayed: true"),
 * counts as "unchanged".  After a network error the retry's replay may
 * answer for the lost attempt's own write: the gateway replays the stored
 * answer ({"id","version"} and its status) whoever made it, and keeps
 * nothing that would tell this run's write from an earlier run's.  So a
 * replay counts as "unchanged" only when no earlier attempt of the line
 * can have reached the gateway (each failed before a byte of the request
 * went out: https_result_t.sends); after one that may have, it counts
 * apart, as "sent or unchanged", rather than as either (visorctl.1).
 *
 * Lines of one record go out one at a time, in input order: a line whose
 * id has a request queued, in flight or waiting for a retry is held (and
 * the input with it) until that request is finished, so that the record
 * ends with its last line's content.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "adapters/csv.h"
#include "adapters/jsonl.h"
#include "adapters/mapping.h"
#include "client/https_client.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"
#include "visorctl/cli_client.h"
#include "visorctl/commands.h"

#define PUSH_INPUT_MAX (512u << 20)
#define PUSH_GROUPS_MAX 64
#define PUSH_EXAMPLES 3
#define BACKOFF_BASE_MS 250L
#define BACKOFF_CAP_MS 30000L

struct group {
	long status;		/* 0: no response (network) */
	char code[64];
	size_t count;
	char example[PUSH_EXAMPLES][512];
};

struct push;

struct item {
	struct item *next;	/* in push.active */
	struct push *p;
	size_t line;
	char id[MAPPING_ID_MAX];
	int patch;
	char *body;
	size_t len;
	char idem[80];
	int attempts;
	int maybe_applied;	/* an attempt's request went out, no answer */
	cJSON *shifts;		/* CSV: arrays renumbered (mapping.h) */
};

struct push {
	cli_client_opts_t o;
	https_client_t *c;
	https_batch_t *b;
	int force_patch;
	size_t concurrency;
	int retries;
	/* input */
	csv_reader_t *csv;
	mapping_t *map;
	jsonl_reader_t *jsonl;
	int input_done;
	struct item *active;	/* sent, not yet finished */
	struct item *held;	/* read, waiting for its id to be free */
	size_t estimate;	/* lines in the input, for the progress bar */
	char base[1024];
	char h_actor[160];
	char h_purpose[64];
	uint64_t rng;
	/* results */
	size_t created, replaced, unchanged, bad, done;
	size_t unsure;		/* replayed after a lost answer */
	size_t refused;
	int failed;		/* input not read to its end */
	struct group groups[PUSH_GROUPS_MAX];
	size_t n_groups;
	int tty;
	long long last_draw;
};

static void
push_usage(FILE *f)
{
	fprintf(f,
	    "usage: visorctl push --gateway URL --cert FILE --actor STAFF --purpose P\n"
	    "                     [--csv FILE --mapping FILE | --jsonl FILE]\n"
	    "                     [--patch] [--concurrency N] [--retries N]\n"
	    "                     [--key FILE] [--cacert FILE]\n"
	    "                     [--crl FILE... | --no-crl]\n"
	    "\n"
	    "Sends records to the gateway: one JSON object per line (--jsonl, or\n"
	    "stdin when no input is named) or CSV rows turned into records by a\n"
	    "mapping file (see adapters/examples/).  PUT /v1/records/{id}, or\n"
	    "PATCH with a JSON merge patch (--patch, or \"method\": \"PATCH\" in\n"
	    "the mapping; the \"id\" member of a JSON line, or the id column,\n"
	    "names the record and is not part of the patch).  A bad input line\n"
	    "(or CSV record) is reported with its number and skipped.  Lines of\n"
	    "one id are sent one after the other, in input order.  Exit status:\n"
	    "0 all sent or unchanged, 1 any refused, failed or bad, 2 bad usage\n"
	    "or an unreadable input or mapping.\n"
	    "%s"
	    "  --csv FILE          CSV export (RFC 4180, header row first)\n"
	    "  --mapping FILE      column mapping for --csv\n"
	    "  --jsonl FILE        JSON lines ('-' for stdin)\n"
	    "  --patch             send merge patches instead of whole records\n"
	    "  --concurrency N     requests in flight, 1..64 (default 8)\n"
	    "  --retries N         retries on network errors, 429, 5xx (default 5)\n",
	    cli_client_usage);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Exponential backoff with jitter: uniform in [d/2, d], d doubling from
 * 250 ms to a 30 s cap. */
static long
backoff_ms(struct push *p, int attempt)
{
	long d = BACKOFF_BASE_MS;
	int i;

	for (i = 1; i < attempt && d < BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	return d / 2 + (long)(next_rand(&p->rng) % (uint64_t)(d / 2 + 1));
}

/* The idempotency key: SHA-256 over the method, id and body bytes. */
static int
idem_key(const char *method, const char *id, const char *body, size_t len,
    char out[80])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int ok;
	size_t i;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, "visor-push/1", 13) == 1 &&
	    EVP_DigestUpdate(ctx, method, strlen(method) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, id, strlen(id) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, body, len) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	memcpy(out, "vp1-", 4);
	for (i = 0; i < 32; i++) {
		out[4 + 2 * i] = hex[md[i] >> 4];
		out[5 + 2 * i] = hex[md[i] & 15];
	}
	out[68] = '\0';
	return 0;
}

static void
progress(struct push *p, int final)
{
	long long t;
	size_t total, pct;
	int w, i;

	if (!p->tty)
		return;
	t = now_ms();
	if (!final && t - p->last_draw < 100)
		return;
	p->last_draw = t;
	total = p->estimate > p->done ? p->estimate : p->done;
	pct = total ? p->done * 100 / total : 100;
	if (p->input_done && https_batch_pending(p->b) == 0)
		pct = 100;
	w = (int)(pct * 30 / 100);
	fprintf(stderr, "\r[");
	for (i = 0; i < 30; i++)
		fputc(i < w ? '#' : '.', stderr);
	fprintf(stderr, "] %3zu%%  %zu done: %zu sent, %zu unchanged, ", pct,
	    p->done, p->created + p->replaced, p->unchanged);
	if (p->unsure > 0)
		fprintf(stderr, "%zu sent or unchanged, ", p->unsure);
	fprintf(stderr, "%zu refused, %zu bad ", p->refused, p->bad);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

/* Print above the progress bar. */
static void
report(struct push *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
report(struct push *p, const char *fmt, ...)
{
	va_list ap;
	char line[1024], shown[4096];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cli_displayable(line, shown, sizeof(shown));
	if (p->tty)
		fprintf(stderr, "\r\033[K");
	fprintf(stderr, "visorctl push: %s\n", shown);
}

static void
refuse(struct push *p, const struct item *it, long status, const char *code,
    const char *msg)
{
	struct group *g = NULL;
	char shown[64], line[512], unshifted[256];
	size_t i;

	p->refused++;
	cli_displayable(code, shown, sizeof(shown));
	code = shown;
	for (i = 0; i < p->n_groups; i++)
		if (p->groups[i].status == status &&
		    strcmp(p->groups[i].code, code) == 0)
			g = &p->groups[i];
	if (g == NULL) {
		/* the last group collects the rest if there are too many */
		i = p->n_groups < PUSH_GROUPS_MAX ? p->n_groups++ :
		    PUSH_GROUPS_MAX - 1;
		g = &p->groups[i];
		if (g->count == 0) {
			g->status = status;
			snprintf(g->code, sizeof(g->code), "%s", code);
		}
	}
	if (g->count < PUSH_EXAMPLES) {
		/* The gateway numbers array elements as sent, which for a
		 * CSV record is after its empty elements were left out: say
		 * what of the row it means, as the mapping numbers it. */
		if (it->shifts != NULL && mapping_unshift(it->shifts, msg,
		    unshifted, sizeof(unshifted)) == 1) {
			snprintf(line, sizeof(line), "line %zu %s: %s (array "
			    "indices as in the mapping; empty elements were "
			    "not sent)", it->line, it->id, unshifted);
		} else
			snprintf(line, sizeof(line), "line %zu %s: %s",
			    it->line, it->id, msg);
		cli_displayable(line, g->example[g->count], sizeof(g->example[0]));
	}
	g->count++;
}

static void item_free(struct item *it);
static void active_remove(struct push *p, struct item *it);
static void feed(struct push *p);
static void on_done(void *arg, const https_result_t *res);

static int
send_item(struct push *p, struct item *it, long delay_ms)
{
	https_request_t req;
	const char *hdrs[6];
	char h_idem[100];
	char url[1200];

	snprintf(url, sizeof(url), "%s/v1/records/%s", p->base, it->id);
	snprintf(h_idem, sizeof(h_idem), "Idempotency-Key: %s", it->idem);
	hdrs[0] = p->h_actor;
	hdrs[1] = p->h_purpose;
	hdrs[2] = h_idem;
	hdrs[3] = it->patch ? "Content-Type: application/merge-patch+json" :
	    "Content-Type: application/json";
	/* The key derives from the content: its answer only counts while
	 * nothing else has been written (see the top of this file). */
	hdrs[4] = "X-Visor-Replay: if-current";
	hdrs[5] = NULL;
	req.method = it->patch ? "PATCH" : "PUT";
	req.url = url;
	req.headers = hdrs;
	req.body = it->body;
	req.len = it->len;
	it->attempts++;
	return https_batch_add(p->b, &req, delay_ms, on_done, it);
}

/* Seconds of a Retry-After header (delta-seconds form only), or -1. */
static long
retry_after_ms(const https_response_t *r)
{
	char v[32], *end;
	long s;

	if (https_response_header(r, "Retry-After", v, sizeof(v)) < 0)
		return -1;
	errno = 0;
	s = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || s < 0)
		return -1;
	return s > 60 ? 60000 : s * 1000;
}

static void
error_of(const https_response_t *r, char *code, size_t codelen, char *msg,
    size_t msglen)
{
	cJSON *j;
	const char *c, *m, *rid;

	j = cli_error_fields(r, &c, &m, &rid);
	snprintf(code, codelen, "%s", c ? c : "-");
	if (m != NULL)
		snprintf(msg, msglen, "%s", m);
	else
		snprintf(msg, msglen, "HTTP %ld%s%.120s", r->status,
		    r->body.len ? ": " : "", r->body.len ? r->body.data : "");
	cJSON_Delete(j);
}

static void
on_done(void *arg, const https_result_t *res)
{
	struct item *it = arg;
	struct push *p = it->p;
	long status = res->rc == 0 ? res->resp->status : 0;
	long delay;
	char v[16], code[64], msg[200];
	int retry;

	/* The gateway answers an error only when it changed nothing; a
	 * request that went out and got no answer may have been applied. */
	if (res->sends > (res->rc == 0 ? 1 : 0))
		it->maybe_applied = 1;
	retry = (res->rc < 0 && res->retryable) ||
	    (res->rc == 0 && (status == 429 || status >= 500));
	if (retry && it->attempts <= p->retries) {
		delay = backoff_ms(p, it->attempts);
		if (res->rc == 0) {
			long ra = retry_after_ms(res->resp);

			if (ra > delay)
				delay = ra;
		}
		if (send_item(p, it, delay) == 0)
			return;
		refuse(p, it, 0, "local", "out of memory queueing a retry");
		goto finished;
	}
	if (res->rc < 0) {
		char why[200];

		/* the record may hold the line all the same: say so */
		snprintf(why, sizeof(why), "%s%s", res->err, it->maybe_applied ?
		    " (a request went out unanswered: it may have been "
		    "written)" : "");
		refuse(p, it, 0, res->retryable ? "network" : "tls", why);
		goto finished;
	}
	if (status >= 200 && status < 300) {
		if ((https_response_header(res->resp, "Idempotent-Replay", v,
		    sizeof(v)) == 0 && strcmp(v, "true") == 0) ||
		    (https_response_header(res->resp, "Idempotent-Replayed", v,
		    sizeof(v)) == 0 && strcmp(v, "true") == 0)) {
			/* whose write is replayed: see the top */
			if (it->maybe_applied)
				p->unsure++;
			else
				p->unchanged++;
		} else if (status == 201)
			p->created++;
		else
			p->replaced++;
		goto finished;
	}
	error_of(res->resp, code, sizeof(code), msg, sizeof(msg));
	refuse(p, it, status, code, msg);
finished:
	p->done++;
	active_remove(p, it);
	item_free(it);
	feed(p);
	progress(p, 0);
}

static void
item_free(struct item *it)
{
	if (it == NULL)
		return;
	cJSON_Delete(it->shifts);
	free(it->body);
	free(it);
}

/* The next item from JSON lines.  1 item, 0 end, -1 bad line (reported). */
static int
next_jsonl(struct push *p, struct item *it)
{
	cJSON *j, *idv;
	char err[256];
	int r;

	r = jsonl_next(p->jsonl, &j, &it->line, NULL, NULL, err, sizeof(err));
	if (r <= 0) {
		if (r < 0)
			report(p, "%s", err);
		return r;
	}
	idv = cJSON_GetObjectItemCaseSensitive(j, "id");
	if (!cJSON_IsString(idv) || strlen(idv->valuestring) >= MAPPING_ID_MAX ||
	    !mapping_valid_id(idv->valuestring)) {
		report(p, "line %zu: \"id\" missing or not [A-Z0-9-]{3,64}",
		    it->line);
		cJSON_Delete(j);
		return -1;
	}
	snprintf(it->id, sizeof(it->id), "%s", idv->valuestring);
	it->patch = p->force_patch;
	if (it->patch)
		cJSON_DeleteItemFromObjectCaseSensitive(j, "id");
	it->body = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	if (it->body == NULL) {
		report(p, "line %zu: out of memory", it->line);
		return -1;
	}
	it->len = strlen(it->body);
	return 1;
}

static int
next_csv(struct push *p, struct item *it)
{
	csv_row_t row;
	cJSON *rec;
	char err[320];
	int r;

	r = csv_next(p->csv, &row, err, sizeof(err));
	if (r <= 0) {
		if (r < 0)
			report(p, "%s", err);
		return r;
	}
	it->line = row.line;
	if (mapping_apply_indexed(p->map, row.fields, row.n, &rec, &it->shifts,
	    it->id, err, sizeof(err)) < 0) {
		report(p, "line %zu: %s", row.line, err);
		return -1;
	}
	it->patch = p->force_patch || strcmp(mapping_method(p->map), "PATCH") == 0;
	/* a PUT mapping sent with --patch: the id names the record and is
	 * not part of the patch (as with JSON lines) */
	if (it->patch)
		cJSON_DeleteItemFromObjectCaseSensitive(rec, "id");
	it->body = cJSON_PrintUnformatted(rec);
	cJSON_Delete(rec);
	if (it->body == NULL) {
		report(p, "line %zu: out of memory", it->line);
		return -1;
	}
	it->len = strlen(it->body);
	return 1;
}

static int
id_active(const struct push *p, const char *id)
{
	const struct item *a;

	for (a = p->active; a != NULL; a = a->next)
		if (strcmp(a->id, id) == 0)
			return 1;
	return 0;
}

static void
active_remove(struct push *p, struct item *it)
{
	struct item **pp;

	for (pp = &p->active; *pp != NULL; pp = &(*pp)->next)
		if (*pp == it) {
			*pp = it->next;
			it->next = NULL;
			return;
		}
}

/* Queue an item's first request; on failure it is refused and freed. */
static void
start_item(struct push *p, struct item *it)
{
	if (idem_key(it->patch ? "PATCH" : "PUT", it->id, it->body, it->len,
	    it->idem) < 0 || send_item(p, it, 0) < 0) {
		refuse(p, it, 0, "local", "could not queue the request");
		p->done++;
		item_free(it);
		return;
	}
	it->next = p->active;
	p->active = it;
}

/* Keep the batch fed: about two requests per connection queued.  An item
 * whose id is active waits (and the input with it): see the top. */
static void
feed(struct push *p)
{
	struct item *it;
	int r;

	while (https_batch_pending(p->b) < 2 * p->concurrency) {
		if ((it = p->held) != NULL) {
			if (id_active(p, it->id))
				return;
			p->held = NULL;
			start_item(p, it);
			continue;
		}
		if (p->input_done)
			return;
		if ((it = calloc(1, sizeof(*it))) == NULL) {
			report(p, "out of memory: the rest of the input is not "
			    "sent");
			p->input_done = 1;
			p->failed = 1;
			return;
		}
		it->p = p;
		r = p->csv != NULL ? next_csv(p, it) : next_jsonl(p, it);
		if (r == 0) {
			p->input_done = 1;
			item_free(it);
			return;
		}
		if (r < 0) {
			p->bad++;
			p->done++;
			item_free(it);
			continue;
		}
		if (id_active(p, it->id)) {
			p->held = it;
			return;
		}
		start_item(p, it);
	}
}

static int
read_input(const char *path, char **data, size_t *len)
{
	buf_t b;
	char chunk[65536];
	size_t n;

	if (path != NULL && strcmp(path, "-") != 0)
		return file_read_all(path, PUSH_INPUT_MAX, data, len);
	buf_init(&b, PUSH_INPUT_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (buf_append(&b, chunk, n) < 0) {
			buf_free(&b);
			errno = EFBIG;
			return -1;
		}
	if (ferror(stdin)) {
		buf_free(&b);
		errno = EIO;
		return -1;
	}
	*data = buf_steal(&b, len);
	if (*data == NULL) {
		*data = calloc(1, 1);
		*len = 0;
	}
	return *data != NULL ? 0 : -1;
}

static int
parse_count(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static void
summary(struct push *p)
{
	size_t i, k;

	printf("push: %zu records: %zu sent (%zu created, %zu replaced or "
	    "patched), %zu unchanged, ", p->done, p->created + p->replaced,
	    p->created, p->replaced, p->unchanged);
	/* only when it happened: the line keeps its form otherwise */
	if (p->unsure > 0)
		printf("%zu sent or unchanged (an answer lost, its retry "
		    "answered as a replay), ", p->unsure);
	printf("%zu refused, %zu bad input\n", p->refused, p->bad);
	for (i = 0; i < p->n_groups; i++) {
		if (p->groups[i].status != 0)
			printf("  refused %ld %s: %zu\n", p->groups[i].status,
			    p->groups[i].code, p->groups[i].count);
		else
			printf("  failed (%s): %zu\n", p->groups[i].code,
			    p->groups[i].count);
		for (k = 0; k < p->groups[i].count && k < PUSH_EXAMPLES; k++)
			printf("    %s\n", p->groups[i].example[k]);
	}
	fflush(stdout);
}

int
cmd_push(int argc, char **argv)
{
	static struct push P;
	struct push *p = &P;
	const char *csv = NULL, *mapfile = NULL, *jsonl = NULL;
	char *data = NULL, *mdata = NULL, err[320];
	size_t len = 0, mlen, i;
	long n;
	int k, rc = 2;
	csv_row_t header;

	memset(p, 0, sizeof(*p));
	cli_client_init(&p->o);
	p->concurrency = 8;
	p->retries = 5;
	for (k = 1; k < argc; k++) {
		const char *a = argv[k];
		int r;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			push_usage(stdout);
			return 0;
		}
		r = cli_client_option(&p->o, argc, argv, &k, "visorctl push");
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		if (strcmp(a, "--patch") == 0) {
			p->force_patch = 1;
			continue;
		}
		if (k + 1 >= argc)
			goto usage;
		if (strcmp(a, "--csv") == 0)
			csv = argv[++k];
		else if (strcmp(a, "--mapping") == 0)
			mapfile = argv[++k];
		else if (strcmp(a, "--jsonl") == 0)
			jsonl = argv[++k];
		else if (strcmp(a, "--concurrency") == 0) {
			if (parse_count(argv[++k], 1, 64, &n) < 0) {
				fprintf(stderr, "visorctl push: --concurrency "
				    "must be 1..64\n");
				return 2;
			}
			p->concurrency = (size_t)n;
		} else if (strcmp(a, "--retries") == 0) {
			if (parse_count(argv[++k], 0, 20, &n) < 0) {
				fprintf(stderr, "visorctl push: --retries must "
				    "be 0..20\n");
				return 2;
			}
			p->retries = (int)n;
		} else
			goto usage;
	}
	if ((csv != NULL) != (mapfile != NULL) || (csv != NULL && jsonl != NULL)) {
		fprintf(stderr, "visorctl push: give --csv with --mapping, or "
		    "--jsonl, or JSON lines on stdin\n");
		return 2;
	}
	if (cli_client_finish(&p->o, "visorctl push") < 0)
		return 2;
	n = (long)strlen(p->o.gateway);
	while (n > 0 && p->o.gateway[n - 1] == '/')
		n--;
	if ((size_t)n >= sizeof(p->base)) {
		fprintf(stderr, "visorctl push: --gateway too long\n");
		return 2;
	}
	memcpy(p->base, p->o.gateway, (size_t)n);
	p->base[n] = '\0';
	snprintf(p->h_actor, sizeof(p->h_actor), "X-Visor-Actor: %s", p->o.actor);
	snprintf(p->h_purpose, sizeof(p->h_purpose), "X-Visor-Purpose: %s",
	    p->o.purpose);

	if (read_input(csv != NULL ? csv : jsonl, &data, &len) < 0) {
		fprintf(stderr, "visorctl push: %s: %s\n", csv ? csv : jsonl ?
		    jsonl : "stdin", strerror(errno));
		return 2;
	}
	for (i = 0; i < len; i++)
		if (data[i] == '\n')
			p->estimate++;
	if (csv != NULL) {
		if (file_read_all(mapfile, MAPPING_FILE_MAX, &mdata, &mlen) < 0) {
			fprintf(stderr, "visorctl push: %s: %s\n", mapfile,
			    strerror(errno));
			goto out;
		}
		if ((p->map = mapping_load(mdata, mlen, err, sizeof(err))) == NULL) {
			fprintf(stderr, "visorctl push: %s: %s\n", mapfile, err);
			goto out;
		}
		if ((p->csv = csv_reader_new(data, len, NULL)) == NULL)
			goto out;
		err[0] = '\0';	/* csv_next says nothing of an empty file */
		if (csv_next(p->csv, &header, err, sizeof(err)) != 1) {
			fprintf(stderr, "visorctl push: %s: no header row%s%s\n",
			    csv, err[0] ? ": " : "", err);
			goto out;
		}
		if (mapping_bind(p->map, header.fields, header.n, err,
		    sizeof(err)) < 0) {
			fprintf(stderr, "visorctl push: %s: %s\n", csv, err);
			goto out;
		}
		if (p->estimate > 0)
			p->estimate--;
	} else if ((p->jsonl = jsonl_reader_new(data, len, 0, 0)) == NULL)
		goto out;

	p->o.count_sends = 1;	/* a replay's count (on_done) */
	if ((p->c = cli_client_new(&p->o, "visorctl push")) == NULL)
		goto out;
	if ((p->b = https_batch_new(p->c, p->concurrency, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "visorctl push: %s\n", err);
		goto out;
	}
	p->tty = isatty(STDERR_FILENO);
	p->rng = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
	feed(p);
	if (https_batch_run(p->b) < 0)
		report(p, "transfer engine failed");
	if (p->held != NULL || !p->input_done) {
		/* not expected: every completion feeds the next */
		report(p, "stopped before the end of the input");
		p->failed = 1;
	}
	progress(p, 1);
	summary(p);
	rc = p->refused == 0 && p->bad == 0 && !p->failed ? 0 : 1;
out:
	item_free(p->held);
	https_batch_free(p->b);
	https_client_free(p->c);
	csv_reader_free(p->csv);
	jsonl_reader_free(p->jsonl);
	mapping_free(p->map);
	free(mdata);
	free(data);
	return rc;
usage:
	push_usage(stderr);
	return 2;
}
