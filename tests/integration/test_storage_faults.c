/*
 * Storage faults on every write path of two real gateways (issue 8 item
 * 3), injected with the fault VFS (gateway/store_faultvfs.c: each gateway
 * is started with VISOR_TEST_FAULT_VFS naming its data directory and is
 * driven through <data_dir>/faults.ctl while it runs), with a real SQLite
 * lock held by the sqlite3 program, and with an unwritable data directory
 * for checkpoint.last.
 *
 * Fault kinds: EIO on write, EIO on fsync, a full disk, a short write, and
 * busy (the writer's lock refused).  Paths: PUT (collect), PATCH with an
 * idempotency key (alter), DELETE (erase), GET (consult), GET of a
 * transfer, a refusal by policy (deny), a refusal by the router (404
 * logged), POST /v1/transfers (outbox row and transfer-out), the delivery
 * worker's outcome (delivered and receipt entry), the inbound side (the
 * peer answers 503, the sender retries), the inbound receipt, checkpoint
 * signing (its database row and checkpoint.last), configuration reloads
 * and refused handshakes (audited later), and start-up.
 *
 * Each case: the request answers 503 with the SPEC error body (or the
 * transfer stays queued and is retried); the signed checkpoints never
 * exceed the durable log; when the fault clears the gateway serves again
 * without a restart.  At the end both gateways restart (the start-up log
 * check passes), both logs verify with visorctl audit verify, every
 * acknowledged write is read back and has exactly one audit entry, no
 * refused write has one, and every transfer answered 202 was delivered
 * exactly once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/https_client.h"
#include "crypto/merkle.h"
#include "crypto/note.h"
#include "crypto/proof_json.h"
#include "gateway/store_faultvfs.h"
#include "gateway/transfer_proto.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"

#define NKINDS 5
#define MAX_IDS 256
#define MAX_TIDS 64

static const struct {
	const char *name, *spec;
} kinds[NKINDS] = {
	{ "eio-write", "op=write err=eio" },
	{ "eio-sync", "op=sync err=eio file=wal" },
	{ "disk-full", "op=write,truncate err=full" },
	{ "short-write", "op=write err=short" },
	{ "busy", "op=lock err=busy" },
};

static gwt_env_t env;
static gwt_gw_t nfk, sfk;
static char nfk_data[512], sfk_data[512];
static int fault_id;

/* What the logs must hold at the end. */
static struct {
	char id[48];
	int collects, alters, erases;	/* acknowledged writes */
	int reads;			/* GETs answered 200 or 404 */
	int denies;			/* refusals answered 403/404 */
	int erased;
} ids[MAX_IDS];
static size_t n_ids;
static char tids[MAX_TIDS][TRANSFER_ID_LEN + 1];
static size_t n_tids;

static const char *const hdrs[] = { "X-Visor-Actor: T1",
    "X-Visor-Purpose: risk-management", "X-Visor-Justification: fault test",
    "Content-Type: application/json", NULL };
static const char *const move_hdrs[] = { "X-Visor-Actor: T1",
    "X-Visor-Purpose: offender-move", "X-Visor-Justification: fault test",
    "Content-Type: application/json", NULL };

static int
id_slot(const char *id)
{
	size_t i;

	for (i = 0; i < n_ids; i++)
		if (strcmp(ids[i].id, id) == 0)
			return (int)i;
	assert_true(n_ids < MAX_IDS);
	snprintf(ids[n_ids].id, sizeof(ids[n_ids].id), "%s", id);
	return (int)n_ids++;
}

/* ------------------------------------------------------------ faults */

static const char *
data_of(const gwt_gw_t *gw)
{
	return strcmp(gw->area, "norfolk") == 0 ? nfk_data : sfk_data;
}

static void
fault(const gwt_gw_t *gw, const char *spec)
{
	char path[600], text[200];

	snprintf(path, sizeof(path), "%s/%s", data_of(gw), STORE_FAULTVFS_CTL);
	snprintf(text, sizeof(text), "%s id=%d\n", spec, ++fault_id);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0644), 0);
}

static void
clear(const gwt_gw_t *gw)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", data_of(gw), STORE_FAULTVFS_CTL);
	assert_int_equal(file_write_atomic(path, "", 0, 0644), 0);
}

static void clients_drop(const char *area);

static int
start_gw(const char *area, gwt_gw_t *gw)
{
	const char *data = strcmp(area, "norfolk") == 0 ? nfk_data : sfk_data;
	int rc;

	clients_drop(area);
	setenv(STORE_FAULTVFS_ENV, data, 1);
	rc = gwt_gw_start(&env, area, gw);
	unsetenv(STORE_FAULTVFS_ENV);
	return rc;
}

/* ------------------------------------------------------------ HTTP */

/* Keep-alive clients per gateway and certificate (a new TLS session per
 * request made the suite twice as slow); dropped when a gateway stops. */
#define MAX_CLIENTS 8
static struct {
	char key[96];
	https_client_t *c;
} clients[MAX_CLIENTS];

static void
clients_drop(const char *area)
{
	size_t i, n = strlen(area);

	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].c != NULL && strncmp(clients[i].key, area, n) == 0 &&
		    clients[i].key[n] == '/') {
			https_client_free(clients[i].c);
			memset(&clients[i], 0, sizeof(clients[i]));
		}
}

static https_client_t *
client_for(const gwt_gw_t *gw, const char *cert)
{
	https_client_options_t opt;
	char key[96], crt[600], pem[600], expect[100], err[256];
	size_t i, free_slot = MAX_CLIENTS;

	snprintf(key, sizeof(key), "%s/%s", gw->area, cert);
	for (i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i].c != NULL && strcmp(clients[i].key, key) == 0)
			return clients[i].c;
		if (clients[i].c == NULL && free_slot == MAX_CLIENTS)
			free_slot = i;
	}
	assert_true(free_slot < MAX_CLIENTS);
	snprintf(crt, sizeof(crt), "%s/pki/%s/%s.crt", env.dir, gw->area, cert);
	snprintf(pem, sizeof(pem), "%s/pki/%s/%s.key", env.dir, gw->area, cert);
	snprintf(expect, sizeof(expect), "urn:visor:%s:gateway", gw->area);
	memset(&opt, 0, sizeof(opt));
	opt.cert = crt;
	opt.key = pem;
	opt.root = gwt_path(&env, "pki/root.crt");
	opt.expect_identity = expect;
	opt.timeout_ms = 20000;
	if ((clients[free_slot].c = https_client_new(&opt, err,
	    sizeof(err))) == NULL)
		fail_msg("client %s: %s", key, err);
	snprintf(clients[free_slot].key, sizeof(clients[free_slot].key), "%s",
	    key);
	return clients[free_slot].c;
}

/* The header lines of the last answer http() got. */
static buf_t last_headers = BUF_INIT;

static long
http(const gwt_gw_t *gw, const char *cert, const char *method,
    const char *path, const char *const *h, const char *body, buf_t *out)
{
	https_response_t r;
	char url[300], err[256];
	long st;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", gw->port, path);
	memset(&r, 0, sizeof(r));
	if (https_client_call(client_for(gw, cert), method, url, h, body,
	    body ? strlen(body) : 0, &r, err, sizeof(err)) < 0)
		fail_msg("%s %s: %s", method, path, err);
	st = r.status;
	buf_reset(&last_headers);
	if (r.headers.len > 0)
		buf_append(&last_headers, r.headers.data, r.headers.len);
	if (out != NULL) {
		buf_reset(out);
		if (r.body.len > 0)
			buf_append(out, r.body.data, r.body.len);
	}
	https_response_free(&r);
	return st;
}

static int
stop_gw(gwt_gw_t *gw)
{
	clients_drop(gw->area);
	return gwt_gw_stop(gw);
}

/* A 503 with the SPEC error body, naming no record version (nothing
 * was served). */
static void
assert_503(long st, const buf_t *out, const char *what)
{
	cJSON *j, *e;
	char err[128];

	if (st != 503)
		fail_msg("%s: %ld, wanted 503: %s", what, st,
		    out->data ? out->data : "");
	if (last_headers.data != NULL &&
	    (strncasecmp(last_headers.data, "etag:", 5) == 0 ||
	    strcasestr(last_headers.data, "\netag:") != NULL))
		fail_msg("%s: a 503 carries an ETag", what);
	j = json_parse_strict(out->data, out->len, 8, err, sizeof(err));
	assert_non_null(j);
	e = cJSON_GetObjectItemCaseSensitive(j, "error");
	assert_non_null(e);
	assert_non_null(json_get_str(e, "code"));
	assert_non_null(json_get_str(e, "message"));
	assert_non_null(json_get_str(e, "request_id"));
	cJSON_Delete(j);
}

static void
record_body(buf_t *b, const char *id)
{
	buf_reset(b);
	buf_printf(b, "{\"id\":\"%s\",\"managing_area\":\"norfolk\","
	    "\"category\":1,\"level\":1,\"person\":{\"surname\":\"Fault\","
	    "\"forenames\":\"Synthetic\",\"dob\":\"1980-01-01\"},"
	    "\"risk\":{\"rosh\":\"medium\",\"factors\":[\"synthetic\"]}}", id);
}

static long
put_record(const gwt_gw_t *gw, const char *id, buf_t *out)
{
	buf_t b = BUF_INIT;
	char path[96];
	long st;

	record_body(&b, id);
	snprintf(path, sizeof(path), "/v1/records/%s", id);
	st = http(gw, "agency-police", "PUT", path, hdrs, b.data, out);
	buf_free(&b);
	if (st == 201 || st == 200)
		ids[id_slot(id)].collects += st == 201;
	return st;
}

static void
put_ok(const gwt_gw_t *gw, const char *id)
{
	buf_t out = BUF_INIT;
	long st = put_record(gw, id, &out);

	if (st != 201)
		fail_msg("PUT %s: %ld %s", id, st, out.data ? out.data : "");
	buf_free(&out);
}

static long
get_record(const gwt_gw_t *gw, const char *id, buf_t *out)
{
	char path[96];
	long st;

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	st = http(gw, "agency-police", "GET", path, hdrs, NULL, out);
	if (st == 200 || st == 404)
		ids[id_slot(id)].reads++;
	return st;
}

static long
patch_record(const gwt_gw_t *gw, const char *id, const char *key, buf_t *out)
{
	const char *h[] = { "X-Visor-Actor: T1",
	    "X-Visor-Purpose: risk-management",
	    "Content-Type: application/merge-patch+json", NULL, NULL };
	char idem[96], path[96];
	long st;

	snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
	h[3] = idem;
	snprintf(path, sizeof(path), "/v1/records/%s", id);
	st = http(gw, "agency-police", "PATCH", path, h,
	    "{\"risk\":{\"rosh\":\"high\"}}", out);
	if (st == 200)
		ids[id_slot(id)].alters++;
	return st;
}

static long
delete_record(const gwt_gw_t *gw, const char *id, buf_t *out)
{
	char path[96];
	long st;

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	st = http(gw, "agency-police", "DELETE", path, hdrs, NULL, out);
	if (st == 200) {
		ids[id_slot(id)].erases++;
		ids[id_slot(id)].erased = 1;
	}
	return st;
}

/* POST /v1/transfers of id to suffolk: the status; tid on 202. */
static long
transfer(const char *id, char tid[TRANSFER_ID_LEN + 1], buf_t *out)
{
	char body[256], err[128];
	cJSON *j;
	long st;

	snprintf(body, sizeof(body), "{\"record_id\":\"%s\",\"to_area\":"
	    "\"suffolk\",\"purpose\":\"offender-move\",\"justification\":"
	    "\"fault test\"}", id);
	st = http(&nfk, "agency-police", "POST", "/v1/transfers", move_hdrs,
	    body, out);
	if (st == 202) {
		j = json_parse_strict(out->data, out->len, 4, err, sizeof(err));
		assert_non_null(j);
		assert_non_null(json_get_str(j, "transfer_id"));
		snprintf(tid, TRANSFER_ID_LEN + 1, "%s",
		    json_get_str(j, "transfer_id"));
		cJSON_Delete(j);
		assert_true(n_tids < MAX_TIDS);
		memcpy(tids[n_tids++], tid, TRANSFER_ID_LEN + 1);
	}
	return st;
}

/* The transfer's status as its initiating area sees it (NULL: 503). */
static char *
transfer_status(const char *tid, long *st)
{
	buf_t out = BUF_INIT;
	char path[96], err[128], *s = NULL;
	cJSON *j;

	snprintf(path, sizeof(path), "/v1/transfers/%s", tid);
	*st = http(&nfk, "agency-police", "GET", path, hdrs, NULL, &out);
	if (*st == 200) {
		j = json_parse_strict(out.data, out.len, 16, err, sizeof(err));
		assert_non_null(j);
		s = strdup(json_get_str(j, "status"));
		cJSON_Delete(j);
	}
	buf_free(&out);
	return s;
}

/* Wait until gw's log has a line with event and transfer tid. */
static void
wait_log(const gwt_gw_t *gw, const char *event, const char *tid)
{
	long long until = gwt_now_ms() + 10000;
	char *text, *p, *eol;
	size_t len;
	char ev[64], tr[64];

	snprintf(ev, sizeof(ev), "event=%s ", event);
	snprintf(tr, sizeof(tr), "transfer=%s", tid);
	for (;;) {
		text = NULL;
		assert_int_equal(file_read_all(gw->log, 64 << 20, &text, &len), 0);
		for (p = text; (p = strstr(p, ev)) != NULL; p = eol) {
			if ((eol = strchr(p, '\n')) == NULL)
				eol = p + strlen(p);
			*eol = '\0';
			if (strstr(p, tr) != NULL) {
				free(text);
				return;
			}
			eol++;
			if (eol > text + len)
				break;
		}
		free(text);
		if (gwt_now_ms() > until)
			fail_msg("%s: no %s for %s", gw->area, event, tid);
		sleep_ms(50);
	}
}

static void
wait_delivered(const char *tid, long timeout_ms)
{
	long long until = gwt_now_ms() + timeout_ms;
	char *s;
	long st;

	for (;;) {
		s = transfer_status(tid, &st);
		if (s != NULL && strcmp(s, "delivered") == 0) {
			free(s);
			return;
		}
		if (s != NULL && strcmp(s, "queued") != 0)
			fail_msg("transfer %s: %s", tid, s);
		free(s);
		if (gwt_now_ms() > until)
			fail_msg("transfer %s not delivered in %ld ms", tid,
			    timeout_ms);
		sleep_ms(100);
	}
}

/* ------------------------------------------------- durable vs signed */

static uint64_t
durable_size(const gwt_gw_t *gw)
{
	unsigned long long n;

	assert_int_equal(gwt_audit_size(&env, gw, &n), 0);
	return n;
}

/* Size in a signed note "<origin>\n<size>\n...". */
static uint64_t
note_size(const char *text)
{
	const char *nl = strchr(text, '\n');

	assert_non_null(nl);
	return strtoull(nl + 1, NULL, 10);
}

static uint64_t
file_signed_size(const gwt_gw_t *gw)
{
	char path[600], *text = NULL;
	size_t len;
	uint64_t n;

	snprintf(path, sizeof(path), "%s/checkpoint.last", data_of(gw));
	assert_int_equal(file_read_all(path, 1 << 16, &text, &len), 0);
	n = note_size(text);
	free(text);
	return n;
}

static uint64_t
api_signed_size(const gwt_gw_t *gw)
{
	buf_t out = BUF_INIT;
	uint64_t n = 0;
	long st;

	st = http(gw, "auditor", "GET", "/v1/audit/checkpoint", NULL, NULL, &out);
	if (st == 200)
		n = note_size(out.data);
	else
		assert_int_equal(st, 404);
	buf_free(&out);
	return n;
}

/* No checkpoint, in the file or the database, covers more than the
 * durable log. */
static void
assert_signed_durable(const gwt_gw_t *gw)
{
	uint64_t file = file_signed_size(gw), api = api_signed_size(gw);
	uint64_t durable = durable_size(gw);

	if (file > durable || api > durable)
		fail_msg("%s: signed %llu (file) %llu (db) beyond the durable "
		    "log %llu", gw->area, (unsigned long long)file,
		    (unsigned long long)api, (unsigned long long)durable);
}

/* Wait until a signed checkpoint covers the whole durable log. */
static void
wait_signed(const gwt_gw_t *gw)
{
	long long until = gwt_now_ms() + 10000;

	while (api_signed_size(gw) < durable_size(gw) ||
	    file_signed_size(gw) < durable_size(gw)) {
		if (gwt_now_ms() > until)
			fail_msg("%s: no checkpoint over the durable log",
			    gw->area);
		sleep_ms(50);
	}
}

/* ------------------------------------------------------------- logs */

typedef struct {
	merkle_frontier_t f;
	cJSON **leaves;
	size_t n, cap;
} log_t;

static int
log_leaf(void *arg, uint64_t index, const uint8_t *leaf, size_t len)
{
	log_t *c = arg;
	merkle_hash_t h;
	char err[128];

	if (index != c->n)
		return -1;
	merkle_leaf_hash(leaf, len, h);
	if (merkle_frontier_append(&c->f, h, NULL, NULL) < 0)
		return -1;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		if ((c->leaves = realloc(c->leaves, c->cap *
		    sizeof(*c->leaves))) == NULL)
			return -1;
	}
	if ((c->leaves[c->n] = json_parse_strict((const char *)leaf, len, 16,
	    err, sizeof(err))) == NULL)
		return -1;
	c->n++;
	return 0;
}

static void
log_free(log_t *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		cJSON_Delete(c->leaves[i]);
	free(c->leaves);
	memset(c, 0, sizeof(*c));
}

/* Every entry of gw's log, which must hash to the signed root. */
static void
log_fetch(const gwt_gw_t *gw, log_t *c)
{
	buf_t out = BUF_INIT;
	char rel[128], err[256], origin[80], path[128], *vkey = NULL;
	size_t vlen, body_len, count;
	note_verifier_t *v;
	merkle_hash_t root, mine;
	uint64_t size, start;

	memset(c, 0, sizeof(*c));
	merkle_frontier_init(&c->f);
	wait_signed(gw);
	snprintf(rel, sizeof(rel), "pki/%s/audit.vkey", gw->area);
	assert_int_equal(file_read_all(gwt_path(&env, rel), 4096, &vkey, &vlen),
	    0);
	v = note_verifier_parse(vkey, vlen, err, sizeof(err));
	assert_non_null(v);
	snprintf(origin, sizeof(origin), "visor.%s/audit", gw->area);
	assert_int_equal(http(gw, "auditor", "GET", "/v1/audit/checkpoint", NULL,
	    NULL, &out), 200);
	if (note_open(v, out.data, out.len, &body_len, err, sizeof(err)) < 0 ||
	    checkpoint_parse(out.data, body_len, origin, &size, root, err,
	    sizeof(err)) < 0)
		fail_msg("%s checkpoint: %s", gw->area, err);
	for (start = 0; start < size; start += count) {
		uint64_t end = start + 1000 < size ? start + 1000 : size;

		snprintf(path, sizeof(path), "/v1/audit/entries?start=%llu&end="
		    "%llu", (unsigned long long)start, (unsigned long long)end);
		assert_int_equal(http(gw, "auditor", "GET", path, NULL, NULL,
		    &out), 200);
		if (proof_json_entries(out.data, out.len, start, 1000, log_leaf,
		    c, &count, err, sizeof(err)) < 0)
			fail_msg("%s entries: %s", gw->area, err);
		assert_true(count > 0);
	}
	merkle_frontier_root(&c->f, mine);
	assert_memory_equal(mine, root, MERKLE_HASH_LEN);
	note_verifier_free(v);
	free(vkey);
	buf_free(&out);
}

/* Entries with op (and record or transfer, when given; result when
 * given). */
static size_t
log_count(const log_t *c, const char *op, const char *record,
    const char *tid, const char *result)
{
	size_t i, n = 0;
	const char *s;

	for (i = 0; i < c->n; i++) {
		s = json_get_str(c->leaves[i], "op");
		if (s == NULL || strcmp(s, op) != 0)
			continue;
		if (record != NULL && ((s = json_get_str(c->leaves[i],
		    "record")) == NULL || strcmp(s, record) != 0))
			continue;
		if (tid != NULL && ((s = json_get_str(c->leaves[i],
		    "transfer")) == NULL || strcmp(s, tid) != 0))
			continue;
		if (result != NULL && ((s = json_get_str(c->leaves[i],
		    "result")) == NULL || strcmp(s, result) != 0))
			continue;
		n++;
	}
	return n;
}

/* Consultations of the record itself (not of a transfer's status). */
static size_t
record_reads(const log_t *c, const char *record)
{
	size_t i, n = 0;
	const char *s;

	for (i = 0; i < c->n; i++) {
		s = json_get_str(c->leaves[i], "op");
		if (s == NULL || strcmp(s, "consult") != 0 ||
		    cJSON_GetObjectItemCaseSensitive(c->leaves[i], "transfer"))
			continue;
		if ((s = json_get_str(c->leaves[i], "record")) != NULL &&
		    strcmp(s, record) == 0)
			n++;
	}
	return n;
}

static size_t
count_op(const gwt_gw_t *gw, const char *op)
{
	log_t l;
	size_t n;

	log_fetch(gw, &l);
	n = log_count(&l, op, NULL, NULL, NULL);
	log_free(&l);
	return n;
}

static void
audit_verify(const gwt_gw_t *gw)
{
	char url[64], rel[64], vkey[600], state[600];
	buf_t out = BUF_INIT, errout = BUF_INIT;
	int rc;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d", gw->port);
	snprintf(rel, sizeof(rel), "pki/%s/audit.vkey", gw->area);
	snprintf(vkey, sizeof(vkey), "%s", gwt_path(&env, rel));
	snprintf(state, sizeof(state), "%s/%s.audit-state", env.dir, gw->area);
	snprintf(rel, sizeof(rel), "pki/%s/auditor.crt", gw->area);
	{
		const char *argv[] = { gwt_prog(&env, "visorctl"), "audit",
		    "verify", "--gateway", url, "--cert", gwt_path(&env, rel),
		    "--vkey", vkey, "--state", state, NULL };

		rc = gwt_run(argv, NULL, 0, &out, &errout);
	}
	if (rc != 0)
		fail_msg("audit verify %s: %s%s", gw->area,
		    out.data ? out.data : "", errout.data ? errout.data : "");
	buf_free(&out);
	buf_free(&errout);
}

/* ------------------------------------------------------------ setup */

static void
config_edit(const char *area)
{
	char rel[64], *text = NULL, err[128];
	const char *path;
	size_t len;
	cJSON *j, *o;

	snprintf(rel, sizeof(rel), "%s/gateway.json", area);
	path = gwt_path(&env, rel);
	assert_int_equal(file_read_all(path, 1 << 20, &text, &len), 0);
	j = json_parse_strict(text, len, 16, err, sizeof(err));
	free(text);
	assert_non_null(j);
	o = cJSON_GetObjectItemCaseSensitive(j, "transfer");
	cJSON_ReplaceItemInObjectCaseSensitive(o, "retry_base_ms",
	    cJSON_CreateNumber(50));
	cJSON_ReplaceItemInObjectCaseSensitive(o, "retry_max_ms",
	    cJSON_CreateNumber(400));
	o = cJSON_GetObjectItemCaseSensitive(j, "audit");
	cJSON_ReplaceItemInObjectCaseSensitive(o, "checkpoint_interval_ms",
	    cJSON_CreateNumber(100));
	o = cJSON_GetObjectItemCaseSensitive(j, "limits");
	cJSON_AddNumberToObject(o, "store_busy_timeout_ms", 200);
	snprintf(strcmp(area, "norfolk") == 0 ? nfk_data : sfk_data, 512, "%s",
	    json_get_str(j, "data_dir"));
	text = cJSON_Print(j);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0644), 0);
	free(text);
	cJSON_Delete(j);
}

static int
setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (https_global_init() < 0)
		return -1;
	if (gwt_env_setup(&env, "norfolk,suffolk") < 0)
		return -1;
	config_edit("norfolk");
	config_edit("suffolk");
	{
		gwt_gw_t a;

		memset(&a, 0, sizeof(a));
		snprintf(a.area, sizeof(a.area), "norfolk");
		clear(&a);
		snprintf(a.area, sizeof(a.area), "suffolk");
		clear(&a);
	}
	if (start_gw("norfolk", &nfk) < 0 || start_gw("suffolk", &sfk) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (nfk.pid > 0)
		stop_gw(&nfk);
	if (sfk.pid > 0)
		stop_gw(&sfk);
	clients_drop("norfolk");
	clients_drop("suffolk");
	gwt_env_cleanup(&env);
	buf_free(&last_headers);
	return 0;
}

/* ------------------------------------------------- requests under faults */

/*
 * Every request path of the record and transfer API, under each fault
 * kind: 503 with the SPEC body while the fault lasts, nothing of it
 * stored, served again (no restart) once it clears.
 */
static void
test_request_paths(void **state)
{
	buf_t out = BUF_INIT;
	char a[48], b[48], c[48], t[48], nx[48], key[64];
	char tid[TRANSFER_ID_LEN + 1], *s;
	size_t k;
	long st;

	(void)state;
	for (k = 0; k < NKINDS; k++) {
		snprintf(a, sizeof(a), "FLT-%zu-A", k);
		snprintf(b, sizeof(b), "FLT-%zu-B", k);
		snprintf(c, sizeof(c), "FLT-%zu-C", k);
		snprintf(t, sizeof(t), "FLT-%zu-T", k);
		snprintf(nx, sizeof(nx), "FLT-%zu-NEW", k);
		snprintf(key, sizeof(key), "fault-patch-%zu", k);
		put_ok(&nfk, a);
		put_ok(&nfk, b);
		put_ok(&nfk, c);
		put_ok(&nfk, t);
		assert_int_equal(transfer(t, tid, &out), 202);

		fault(&nfk, kinds[k].spec);
		/* collect */
		assert_503(put_record(&nfk, nx, &out), &out, kinds[k].name);
		/* alter, with an idempotency key */
		assert_503(patch_record(&nfk, a, key, &out), &out, kinds[k].name);
		/* erase */
		assert_503(delete_record(&nfk, b, &out), &out, kinds[k].name);
		/* consult */
		assert_503(get_record(&nfk, c, &out), &out, kinds[k].name);
		/* consult of a transfer's status */
		s = transfer_status(tid, &st);
		assert_null(s);
		assert_int_equal(st, 503);
		/* deny: education may not write records */
		{
			buf_t body = BUF_INIT;
			char path[96];

			record_body(&body, a);
			snprintf(path, sizeof(path), "/v1/records/%s", a);
			st = http(&nfk, "agency-education", "PUT", path, hdrs,
			    body.data, &out);
			buf_free(&body);
			assert_503(st, &out, kinds[k].name);
		}
		/* a refusal logged by the router: PATCH of no record */
		assert_503(patch_record(&nfk, "FLT-NONE", "fault-none", &out),
		    &out, kinds[k].name);
		/* transfer-out with its outbox row */
		{
			size_t before = n_tids;
			char tid2[TRANSFER_ID_LEN + 1];

			assert_503(transfer(c, tid2, &out), &out, kinds[k].name);
			assert_int_equal(n_tids, before);
		}
		assert_signed_durable(&nfk);
		assert_true(gwt_gw_alive(&nfk));
		clear(&nfk);

		/* Nothing of it was stored; everything is served again. */
		assert_int_equal(get_record(&nfk, nx, &out), 404);
		assert_int_equal(put_record(&nfk, nx, &out), 201);
		assert_int_equal(get_record(&nfk, a, &out), 200);
		assert_non_null(strstr(out.data, "\"medium\""));
		assert_int_equal(patch_record(&nfk, a, key, &out), 200);
		assert_int_equal(get_record(&nfk, b, &out), 200);
		assert_int_equal(delete_record(&nfk, b, &out), 200);
		assert_int_equal(get_record(&nfk, c, &out), 200);
		s = transfer_status(tid, &st);
		assert_non_null(s);
		free(s);
		{
			buf_t body = BUF_INIT;
			char path[96];

			record_body(&body, a);
			snprintf(path, sizeof(path), "/v1/records/%s", a);
			assert_int_equal(http(&nfk, "agency-education", "PUT",
			    path, hdrs, body.data, &out), 403);
			ids[id_slot(a)].denies++;
			buf_free(&body);
		}
		assert_int_equal(patch_record(&nfk, "FLT-NONE", "fault-none",
		    &out), 404);
		ids[id_slot("FLT-NONE")].denies++;
		assert_int_equal(transfer(c, tid, &out), 202);
		assert_signed_durable(&nfk);
	}
	buf_free(&out);
}

/*
 * The delivery worker's outcome (outbox row delivered, receipt entry) when
 * the sender's disk fails after the receiver stored the transfer: the
 * transfer stays queued and is delivered again later (the receiver
 * answers with the same receipt), at a bounded pace, and ends delivered
 * exactly once.  Before that, the receiver's own faults (the inbound
 * side): it answers 503 and the sender retries.
 */
static void
test_delivery_and_inbound(void **state)
{
	buf_t out = BUF_INIT;
	char id[48], tid[TRANSFER_ID_LEN + 1], needle[80], *s;
	size_t k;
	long st;

	(void)state;
	for (k = 0; k < NKINDS; k++) {
		snprintf(id, sizeof(id), "DLV-%zu", k);
		put_ok(&nfk, id);
		/* The receiver's disk fails: its answers are 503 and the
		 * transfer stays queued at the sender. */
		fault(&sfk, kinds[k].spec);
		assert_int_equal(transfer(id, tid, &out), 202);
		sleep_ms(250);
		s = transfer_status(tid, &st);
		assert_non_null(s);
		assert_string_equal(s, "queued");
		free(s);
		snprintf(needle, sizeof(needle), "transfer=%s", tid);
		assert_true(gwt_log_wait(&sfk, needle, 2000));
		assert_signed_durable(&sfk);
		/* Now the sender's disk fails instead: the receiver stores
		 * it, the sender cannot record the receipt. */
		fault(&nfk, kinds[k].spec);
		clear(&sfk);
		wait_log(&sfk, "transfer-received", tid);
		sleep_ms(300);
		s = transfer_status(tid, &st);
		assert_null(s);	/* the sender cannot audit the read */
		assert_signed_durable(&sfk);
		clear(&nfk);
		wait_delivered(tid, 10000);
		assert_signed_durable(&nfk);
	}
	/* Delivered again at a bounded pace while the sender's disk was
	 * failing: a hot loop sent hundreds of repeats a second. */
	{
		char *text = NULL;
		size_t len, n = 0;
		const char *p;

		assert_int_equal(file_read_all(sfk.log, 64 << 20, &text, &len), 0);
		for (p = text; (p = strstr(p, "event=transfer-in ")) != NULL; p++)
			n++;
		free(text);
		if (n > 200)
			fail_msg("%zu inbound deliveries at suffolk: the sender "
			    "retried without a pause", n);
	}
	buf_free(&out);
}

/*
 * The receiver stored the transfer (record, transfer-in, inbound row) but
 * fails to store its signed receipt: it answers 503, the sender retries,
 * and the receiver signs and stores the receipt then, storing nothing
 * twice.
 */
static void
test_inbound_receipt(void **state)
{
	buf_t out = BUF_INIT;
	char tid[TRANSFER_ID_LEN + 1];
	static const char *const specs[] = {
		"op=sync err=eio file=wal after=2 count=1",
		"op=sync err=full file=wal after=2 count=1",
	};
	size_t k;
	char id[48];

	(void)state;
	for (k = 0; k < 2; k++) {
		snprintf(id, sizeof(id), "RCPT-%zu", k);
		put_ok(&nfk, id);
		/* The receiver idle past its checkpoint interval: its fsyncs
		 * are then transfer-in, the checkpoint over it, the receipt. */
		sleep_ms(500);
		fault(&sfk, specs[k]);
		assert_int_equal(transfer(id, tid, &out), 202);
		wait_delivered(tid, 10000);
		clear(&sfk);
	}
	assert_true(gwt_log_wait(&sfk, "cannot store the receipt", 2000));
	assert_signed_durable(&sfk);
	buf_free(&out);
}

/*
 * Checkpoint signing: the checkpoints row fails (each fault kind), and
 * checkpoint.last cannot be written (the data directory made read-only).
 * No signed size ever exceeds the durable log; signing resumes when the
 * fault clears.
 */
static void
test_checkpoint_signing(void **state)
{
	char id[48];
	uint64_t api0, file0;
	size_t k;

	(void)state;
	for (k = 0; k < NKINDS; k++) {
		snprintf(id, sizeof(id), "CKP-%zu-1", k);
		put_ok(&nfk, id);
		snprintf(id, sizeof(id), "CKP-%zu-2", k);
		put_ok(&nfk, id);	/* the next signature waits for the interval */
		fault(&nfk, kinds[k].spec);
		sleep_ms(300);
		assert_signed_durable(&nfk);
		clear(&nfk);
		wait_signed(&nfk);
		assert_int_equal(api_signed_size(&nfk), durable_size(&nfk));
	}
	/* checkpoint.last cannot be replaced (the data directory read-only
	 * for the gateway's account: run as root, quickstart makes it drop
	 * to one): nothing is signed, in the file or the database. */
	sleep_ms(300);
	api0 = api_signed_size(&nfk);
	file0 = file_signed_size(&nfk);
	assert_int_equal(chmod(nfk_data, 0500), 0);
	put_ok(&nfk, "CKP-FILE-1");
	put_ok(&nfk, "CKP-FILE-2");
	sleep_ms(600);
	assert_int_equal(file_signed_size(&nfk), file0);
	assert_int_equal(api_signed_size(&nfk), api0);
	assert_true(durable_size(&nfk) > file0);
	assert_true(gwt_log_wait(&nfk, "checkpoint.last: Permission denied", 2000));
	assert_int_equal(chmod(nfk_data, 0700), 0);
	wait_signed(&nfk);
}

/*
 * Entries nobody waits for: a configuration reload and a refused
 * handshake while the disk fails are written once it works again.
 */
static void
test_config_and_authfail(void **state)
{
	size_t k, config0, auth0;

	(void)state;
	config0 = count_op(&nfk, "config");
	auth0 = count_op(&nfk, "auth-fail");
	for (k = 0; k < NKINDS; k++) {
		fault(&nfk, kinds[k].spec);
		assert_int_equal(gwt_gw_hup(&nfk), 0);
		{
			/* A handshake without a client certificate. */
			const char *argv[] = { "curl", "-s", "-k", "-o", "/dev/null",
			    "--max-time", "5", NULL, NULL };
			char url[64];

			snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/health",
			    nfk.port);
			argv[7] = url;
			(void)gwt_run(argv, NULL, 0, NULL, NULL);
		}
		/* The first time long enough for a retry to fail too. */
		sleep_ms(k == 0 ? 1300 : 100);
		assert_signed_durable(&nfk);
		clear(&nfk);
	}
	/* Written once the disk works (a retry a second). */
	{
		long long until = gwt_now_ms() + 8000;

		while (count_op(&nfk, "config") < config0 + NKINDS ||
		    count_op(&nfk, "auth-fail") < auth0 + NKINDS) {
			if (gwt_now_ms() > until)
				fail_msg("config %zu (want %zu), auth-fail %zu "
				    "(want %zu)", count_op(&nfk, "config"),
				    config0 + NKINDS, count_op(&nfk, "auth-fail"),
				    auth0 + NKINDS);
			sleep_ms(200);
		}
	}
	assert_int_equal(count_op(&nfk, "config"), config0 + NKINDS);
	assert_int_equal(count_op(&nfk, "auth-fail"), auth0 + NKINDS);
}

/*
 * SQLite busy for real: the sqlite3 program holds the write lock
 * (BEGIN IMMEDIATE) on the live store.db.  Writes and audited reads wait
 * limits.store_busy_timeout_ms, then answer 503; once the lock is
 * released the gateway serves again.
 */
static void
test_busy_for_real(void **state)
{
	buf_t out = BUF_INIT;
	char db[600], id[48];
	int lock_fd, i;
	pid_t pid;
	long long t0;
	long st;

	(void)state;
	snprintf(db, sizeof(db), "%s/store.db", nfk_data);
	/* sqlite3 waits for the gateway's own transactions to end. */
	pid = gwt_sqlite_hold_lock(db, &lock_fd);
	assert_true(pid > 0);
	/* Until sqlite3 holds the lock, writes go through. */
	t0 = gwt_now_ms();
	for (i = 0;; i++) {
		snprintf(id, sizeof(id), "BUSY-REAL-%d", i);
		if ((st = put_record(&nfk, id, &out)) == 503)
			break;
		assert_int_equal(st, 201);
		assert_true(gwt_now_ms() - t0 < 5000);
		sleep_ms(50);
	}
	assert_503(st, &out, "busy");
	t0 = gwt_now_ms();
	assert_503(get_record(&nfk, "FLT-0-A", &out), &out, "busy read");
	assert_true(gwt_now_ms() - t0 < 3000);
	assert_signed_durable(&nfk);
	gwt_sqlite_release(pid, lock_fd);
	assert_int_equal(put_record(&nfk, id, &out), 201);
	assert_int_equal(get_record(&nfk, "FLT-0-A", &out), 200);
	buf_free(&out);
}

/* Start-up on a store that cannot be written: refused with a message,
 * then started once the fault clears. */
static void
test_startup(void **state)
{
	size_t k;

	(void)state;
	assert_int_equal(stop_gw(&nfk), 0);
	/* Busy comes from sqlite3 itself (below): the VFS's refusal of the
	 * write lock would also refuse the lock that rebuilds the WAL index
	 * of a store nobody has open, which a real holder keeps open. */
	for (k = 0; k < NKINDS; k++) {
		if (strcmp(kinds[k].name, "busy") == 0)
			continue;
		fault(&nfk, kinds[k].spec);
		if (start_gw("norfolk", &nfk) == 0)
			fail_msg("norfolk started on a failing disk (%s)",
			    kinds[k].name);
		clear(&nfk);
	}
	{
		char db[600];
		int in[2];
		pid_t pid;

		snprintf(db, sizeof(db), "%s/store.db", nfk_data);
		assert_int_equal(pipe(in), 0);
		if ((pid = fork()) == 0) {
			dup2(in[0], 0);
			close(in[1]);
			execlp("sqlite3", "sqlite3", db, (char *)NULL);
			_exit(127);
		}
		close(in[0]);
		assert_true(write(in[1], ".timeout 5000\nBEGIN IMMEDIATE;\n",
		    31) == 31);
		sleep_ms(300);
		if (start_gw("norfolk", &nfk) == 0)
			fail_msg("norfolk started while sqlite3 held the lock");
		assert_true(write(in[1], "ROLLBACK;\n.quit\n", 16) == 16);
		close(in[1]);
		waitpid(pid, NULL, 0);
	}
	assert_true(gwt_log_wait(&nfk, "database is locked", 2000));
	assert_true(gwt_log_wait(&nfk, "disk I/O error", 2000));
	assert_int_equal(start_gw("norfolk", &nfk), 0);
}

/*
 * After everything: both gateways restart (the start-up check of the log
 * passes), both logs verify, every acknowledged write is there with
 * exactly one entry, no refused write has one, and every transfer
 * answered 202 was delivered exactly once.
 */
static void
test_final(void **state)
{
	buf_t out = BUF_INIT;
	log_t ln, ls;
	size_t i;
	long st;

	(void)state;
	for (i = 0; i < n_tids; i++)
		wait_delivered(tids[i], 15000);
	assert_int_equal(stop_gw(&nfk), 0);
	assert_int_equal(stop_gw(&sfk), 0);
	assert_int_equal(start_gw("norfolk", &nfk), 0);
	assert_int_equal(start_gw("suffolk", &sfk), 0);
	audit_verify(&nfk);
	audit_verify(&sfk);
	for (i = 0; i < n_ids; i++) {
		if (strcmp(ids[i].id, "FLT-NONE") == 0)
			continue;
		st = get_record(&nfk, ids[i].id, &out);
		if (ids[i].erased)
			assert_int_equal(st, 404);
		else if (ids[i].collects > 0)
			assert_int_equal(st, 200);
	}
	log_fetch(&nfk, &ln);
	log_fetch(&sfk, &ls);
	for (i = 0; i < n_ids; i++) {
		const char *id = ids[i].id;

		if ((size_t)ids[i].collects != log_count(&ln, "collect", id, NULL,
		    NULL) ||
		    (size_t)ids[i].alters != log_count(&ln, "alter", id, NULL,
		    NULL) ||
		    (size_t)ids[i].erases != log_count(&ln, "erase", id, NULL,
		    NULL))
			fail_msg("%s: collect %zu/%d alter %zu/%d erase %zu/%d",
			    id, log_count(&ln, "collect", id, NULL, NULL),
			    ids[i].collects, log_count(&ln, "alter", id, NULL,
			    NULL), ids[i].alters, log_count(&ln, "erase", id,
			    NULL, NULL), ids[i].erases);
		if ((size_t)ids[i].reads != record_reads(&ln, id))
			fail_msg("%s: %d reads answered, %zu consult entries", id,
			    ids[i].reads, record_reads(&ln, id));
		if ((size_t)ids[i].denies != log_count(&ln, "deny", id, NULL,
		    NULL))
			fail_msg("%s: %d refusals answered, %zu deny entries", id,
			    ids[i].denies, log_count(&ln, "deny", id, NULL, NULL));
	}
	/* Exactly the transfers answered 202: once out, once in, one
	 * receipt. */
	assert_int_equal(log_count(&ln, "transfer-out", NULL, NULL, "queued"),
	    n_tids);
	assert_int_equal(log_count(&ls, "transfer-in", NULL, NULL, NULL), n_tids);
	assert_int_equal(log_count(&ln, "receipt", NULL, NULL, NULL), n_tids);
	for (i = 0; i < n_tids; i++) {
		assert_int_equal(log_count(&ln, "transfer-out", NULL, tids[i],
		    NULL), 1);
		assert_int_equal(log_count(&ls, "transfer-in", NULL, tids[i],
		    NULL), 1);
		assert_int_equal(log_count(&ln, "receipt", NULL, tids[i], NULL),
		    1);
	}
	log_free(&ln);
	log_free(&ls);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_paths),
		cmocka_unit_test(test_delivery_and_inbound),
		cmocka_unit_test(test_inbound_receipt),
		cmocka_unit_test(test_checkpoint_signing),
		cmocka_unit_test(test_config_and_authfail),
		cmocka_unit_test(test_busy_for_real),
		cmocka_unit_test(test_startup),
		cmocka_unit_test(test_final),
	};

	return cmocka_run_group_tests_name("storage_faults", tests, setup,
	    teardown);
}
