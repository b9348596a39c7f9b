/*
 * Integration: /v1/records on a real gateway (issue 4 item 6).
 *
 * One quickstart (norfolk, suffolk) and one running Norfolk gateway for the
 * group.  Covers every endpoint, status code and header rule of SPEC
 * section 5, what each agency type of SPEC section 7's table receives,
 * category 4 clearance, concurrent writers, idempotent retries, encryption
 * at rest, and that every answer waits for its audit entry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
/* The erasure test reads the store as someone with the files would. */
#include <sqlite3.h>

#include "client/https_client.h"
#include "gateway/audit_entry.h"
#include "gateway/store.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "tests/support/storewait.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"

#define MAX_BODY (256 * 1024)

typedef struct {
	gwt_env_t env;
	gwt_gw_t gw;
	cJSON *rich;		/* the category 2 record with every group */
} rec_fixture_t;

static rec_fixture_t fx;

/* ---------------------------------------------------------------- helpers */

/* Standard headers for a record call; extra (NULL-terminated, may be NULL)
 * are added after them.  The array is static per slot: tests are serial. */
static const char *const *
hdrs_std(const char *justification, const char *const *extra)
{
	static const char *h[16];
	static char just[600];
	size_t n = 0;

	h[n++] = "X-Visor-Actor: STAFF-4711";
	h[n++] = "X-Visor-Purpose: risk-management";
	if (justification != NULL) {
		snprintf(just, sizeof(just), "X-Visor-Justification: %s", justification);
		h[n++] = just;
	}
	while (extra != NULL && *extra != NULL && n < 15)
		h[n++] = *extra++;
	h[n] = NULL;
	return h;
}

/* One request as pki/norfolk/<who>.crt; fails the test on a transport
 * error. */
static void
call(const char *who, const char *method, const char *path,
    const char *const *headers, const char *body, gwt_resp_t *resp)
{
	char err[256];

	if (gwt_request(&fx.env, &fx.gw, "norfolk", who, method, path, headers,
	    body, body ? strlen(body) : 0, resp, err, sizeof(err)) < 0)
		fail_msg("%s %s as %s: %s", method, path, who, err);
}

static long
status_of(const char *who, const char *method, const char *path,
    const char *const *headers, const char *body)
{
	gwt_resp_t r;
	long s;

	call(who, method, path, headers, body, &r);
	s = r.status;
	gwt_resp_free(&r);
	return s;
}

static const char *const READ[] = { NULL };

static long
get_status(const char *who, const char *id)
{
	char path[120];

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	return status_of(who, "GET", path, hdrs_std("integration test", READ), NULL);
}

/* GET as who; returns the parsed record (caller frees) or NULL if not 200. */
static cJSON *
get_record(const char *who, const char *id)
{
	char path[120];
	gwt_resp_t r;
	cJSON *j = NULL;

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	call(who, "GET", path, hdrs_std("integration test", NULL), NULL, &r);
	if (r.status == 200)
		j = cJSON_ParseWithLength(r.body.data, r.body.len);
	gwt_resp_free(&r);
	return j;
}

static long
version_of(const char *id)
{
	cJSON *j = get_record("agency-police", id);
	const cJSON *v;
	long ver = -1;

	if (j != NULL && cJSON_IsNumber(v = cJSON_GetObjectItem(j, "version")))
		ver = (long)v->valuedouble;
	cJSON_Delete(j);
	return ver;
}

static long
put_json(const char *who, const char *id, const char *body)
{
	char path[120];

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	return status_of(who, "PUT", path, hdrs_std(NULL, NULL), body);
}

static long
patch_json(const char *who, const char *id, const char *body)
{
	static const char *const ct[] = {
		"Content-Type: application/merge-patch+json", NULL };
	char path[120];

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	return status_of(who, "PATCH", path, hdrs_std(NULL, ct), body);
}

/* The rich record under another id and category; caller frees. */
static char *
rich_as(const char *id, int category, int level)
{
	cJSON *j = cJSON_Duplicate(fx.rich, 1);
	char *s;

	cJSON_ReplaceItemInObject(j, "id", cJSON_CreateString(id));
	cJSON_ReplaceItemInObject(j, "category", cJSON_CreateNumber(category));
	cJSON_ReplaceItemInObject(j, "level", cJSON_CreateNumber(level));
	s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

static const char *
minimal(const char *id, const char *surname)
{
	static char b[512];

	snprintf(b, sizeof(b), "{\"id\":\"%s\",\"managing_area\":\"norfolk\","
	    "\"category\":1,\"level\":1,\"person\":{\"surname\":\"%s\","
	    "\"forenames\":\"Test\",\"dob\":\"1990-01-02\",\"gender\":\"x\"}}",
	    id, surname);
	return b;
}

/* Assert an error answer: status, the SPEC body shape, a code, a message
 * containing want_msg (if not NULL), and request_id == X-Request-Id. */
static void
assert_error(const gwt_resp_t *r, long status, const char *want_msg)
{
	cJSON *j, *e;
	const cJSON *code, *msg, *rid;
	char hdr_rid[80];
	https_response_t hr;

	if (r->status != status)
		fail_msg("status %ld, want %ld: %s", r->status, status,
		    r->body.data ? r->body.data : "");
	j = cJSON_ParseWithLength(r->body.data, r->body.len);
	assert_non_null(j);
	e = cJSON_GetObjectItemCaseSensitive(j, "error");
	assert_true(cJSON_IsObject(e));
	assert_int_equal(cJSON_GetArraySize(j), 1);
	assert_int_equal(cJSON_GetArraySize(e), 3);
	code = cJSON_GetObjectItemCaseSensitive(e, "code");
	msg = cJSON_GetObjectItemCaseSensitive(e, "message");
	rid = cJSON_GetObjectItemCaseSensitive(e, "request_id");
	assert_true(cJSON_IsString(code) && code->valuestring[0] != '\0');
	assert_true(cJSON_IsString(msg) && msg->valuestring[0] != '\0');
	assert_true(cJSON_IsString(rid) && rid->valuestring[0] != '\0');
	if (want_msg != NULL && strstr(msg->valuestring, want_msg) == NULL)
		fail_msg("message '%s' does not name '%s'", msg->valuestring, want_msg);
	memset(&hr, 0, sizeof(hr));
	hr.headers = r->headers;
	assert_int_equal(https_response_header(&hr, "X-Request-Id", hdr_rid,
	    sizeof(hdr_rid)), 0);
	assert_string_equal(hdr_rid, rid->valuestring);
	cJSON_Delete(j);
}

static void
header_of(const gwt_resp_t *r, const char *name, char *out, size_t outlen)
{
	https_response_t hr;

	memset(&hr, 0, sizeof(hr));
	hr.headers = r->headers;
	if (https_response_header(&hr, name, out, outlen) < 0)
		out[0] = '\0';
}

/* ------------------------------------------------------------ audit reads */

typedef struct {
	char op[24];
	long version;
	char actor[128];
	char result[24];
	char digest[80];
	char reason[64];
	char fields[512];	/* comma-joined */
	char withheld[512];
	char transformed[512];
	char rules[512];
} leaf_t;

static void
join_strings(const cJSON *arr, char *out, size_t outlen)
{
	const cJSON *it;
	size_t n = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(it, arr) {
		if (cJSON_IsString(it) && n < outlen)
			n += (size_t)snprintf(out + n, outlen - n, "%s%s",
			    n ? "," : "", it->valuestring);
	}
}

static void
copy_str(const cJSON *o, const char *key, char *out, size_t outlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	snprintf(out, outlen, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

/* The audit entries for record id (as the auditor), decoded; returns the
 * count (up to max) or -1. */
static int
audit_for(const char *id, leaf_t *out, int max)
{
	const char *const none[] = { NULL };
	char path[160], err[256];
	gwt_resp_t r;
	cJSON *doc, *it, *leaf;
	unsigned char *raw;
	int n = 0;
	long len;

	snprintf(path, sizeof(path), "/v1/audit/search?record=%s", id);
	if (gwt_request(&fx.env, &fx.gw, "norfolk", "auditor", "GET", path, none,
	    NULL, 0, &r, err, sizeof(err)) < 0 || r.status != 200) {
		gwt_resp_free(&r);
		return -1;
	}
	doc = cJSON_ParseWithLength(r.body.data, r.body.len);
	gwt_resp_free(&r);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "entries")) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "data");
		const cJSON *v, *a;
		size_t dl;

		if (!cJSON_IsString(d) || n >= max)
			continue;
		dl = strlen(d->valuestring);
		if ((raw = malloc(dl + 1)) == NULL)
			break;
		len = b64_decode(d->valuestring, dl, raw, dl + 1);
		leaf = len > 0 ? cJSON_ParseWithLength((char *)raw, (size_t)len) : NULL;
		free(raw);
		if (leaf == NULL)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		copy_str(leaf, "op", out[n].op, sizeof(out[n].op));
		copy_str(leaf, "result", out[n].result, sizeof(out[n].result));
		copy_str(leaf, "digest", out[n].digest, sizeof(out[n].digest));
		copy_str(leaf, "reason", out[n].reason, sizeof(out[n].reason));
		v = cJSON_GetObjectItemCaseSensitive(leaf, "version");
		out[n].version = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
		a = cJSON_GetObjectItemCaseSensitive(leaf, "actor");
		copy_str(a, "id", out[n].actor, sizeof(out[n].actor));
		join_strings(cJSON_GetObjectItemCaseSensitive(leaf, "fields"),
		    out[n].fields, sizeof(out[n].fields));
		join_strings(cJSON_GetObjectItemCaseSensitive(leaf, "withheld"),
		    out[n].withheld, sizeof(out[n].withheld));
		join_strings(cJSON_GetObjectItemCaseSensitive(leaf,
		    "transformed"), out[n].transformed,
		    sizeof(out[n].transformed));
		join_strings(cJSON_GetObjectItemCaseSensitive(leaf, "rules"),
		    out[n].rules, sizeof(out[n].rules));
		cJSON_Delete(leaf);
		n++;
	}
	cJSON_Delete(doc);
	return n;
}

static int
audit_count_op(const char *id, const char *op)
{
	static leaf_t l[512];
	int n = audit_for(id, l, 512), i, c = 0;

	for (i = 0; i < n; i++)
		c += strcmp(l[i].op, op) == 0;
	return n < 0 ? -1 : c;
}

/* ------------------------------------------------------------ group setup */

static int group_teardown(void **state);

static int
group_setup(void **state)
{
	char path[1024], *text = NULL;
	const char *src = getenv("VISOR_SRC");
	size_t len;

	(void)state;
	memset(&fx, 0, sizeof(fx));
	if (https_global_init() < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/tests/data/record-full.json",
	    src ? src : ".");
	if (file_read_all(path, 1 << 20, &text, &len) < 0) {
		fprintf(stderr, "test_records: cannot read %s (set VISOR_SRC)\n", path);
		goto fail;
	}
	fx.rich = cJSON_ParseWithLength(text, len);
	free(text);
	if (fx.rich == NULL)
		goto fail;
	/* The gateway assigns versions. */
	cJSON_DeleteItemFromObject(fx.rich, "version");
	if (gwt_env_setup(&fx.env, "norfolk,suffolk") < 0)
		goto fail;
	if (gwt_gw_start(&fx.env, "norfolk", &fx.gw) < 0)
		goto fail;
	return 0;
fail:
	group_teardown(state);
	return -1;
}

static int
group_teardown(void **state)
{
	int rc;

	(void)state;
	/* A clean exit (no leak report under the sanitizers or memcheck) and
	 * no sanitizer report in the gateway's log are part of the test. */
	rc = gwt_gw_stop_clean(&fx.gw);
	gwt_env_cleanup(&fx.env);
	cJSON_Delete(fx.rich);
	memset(&fx, 0, sizeof(fx));
	return rc;
}

/* ------------------------------------------------------------------ tests */

static void
test_put_create_then_replace(void **state)
{
	gwt_resp_t r;
	cJSON *j;
	char rid[80], etag[40];

	(void)state;
	call("agency-police", "PUT", "/v1/records/REC-PUT-1", hdrs_std(NULL, NULL),
	    minimal("REC-PUT-1", "ALPHA"), &r);
	assert_int_equal(r.status, 201);
	j = cJSON_ParseWithLength(r.body.data, r.body.len);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "REC-PUT-1");
	assert_int_equal((int)cJSON_GetObjectItem(j, "version")->valuedouble, 1);
	assert_int_equal(cJSON_GetArraySize(j), 2);
	cJSON_Delete(j);
	header_of(&r, "X-Request-Id", rid, sizeof(rid));
	assert_true(rid[0] != '\0');
	gwt_resp_free(&r);

	call("agency-police", "PUT", "/v1/records/REC-PUT-1", hdrs_std(NULL, NULL),
	    minimal("REC-PUT-1", "BETA"), &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.data, "\"version\":2"));
	gwt_resp_free(&r);

	/* The id may be left out of a PUT body: it comes from the path. */
	assert_int_equal(put_json("agency-police", "REC-PUT-2",
	    "{\"managing_area\":\"norfolk\",\"category\":1,\"level\":1}"), 201);

	call("agency-police", "GET", "/v1/records/REC-PUT-1",
	    hdrs_std("check the replace", NULL), NULL, &r);
	assert_int_equal(r.status, 200);
	header_of(&r, "ETag", etag, sizeof(etag));
	assert_string_equal(etag, "\"2\"");
	assert_non_null(strstr(r.body.data, "BETA"));
	assert_null(strstr(r.body.data, "ALPHA"));
	gwt_resp_free(&r);

	/* A client-sent version is ignored: the gateway assigns versions. */
	assert_int_equal(put_json("agency-police", "REC-PUT-1",
	    "{\"id\":\"REC-PUT-1\",\"version\":99,\"managing_area\":\"norfolk\","
	    "\"category\":1,\"level\":1,\"person\":{\"surname\":\"BETA\"}}"), 200);
	assert_int_equal(version_of("REC-PUT-1"), 3);
}

static void
test_required_headers(void **state)
{
	static const char *const no_actor[] = { "X-Visor-Purpose: review",
	    "X-Visor-Justification: x", NULL };
	static const char *const no_purpose[] = { "X-Visor-Actor: S1",
	    "X-Visor-Justification: x", NULL };
	static const char *const bad_purpose[] = { "X-Visor-Actor: S1",
	    "X-Visor-Purpose: curiosity", "X-Visor-Justification: x", NULL };
	static const char *const no_just[] = { "X-Visor-Actor: S1",
	    "X-Visor-Purpose: review", NULL };
	const char *long_just[4];
	char j513[600], j512[700];
	gwt_resp_t r;

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-HDR-1",
	    minimal("REC-HDR-1", "GAMMA")), 201);

	call("agency-police", "GET", "/v1/records/REC-HDR-1", no_actor, NULL, &r);
	assert_error(&r, 400, "X-Visor-Actor");
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-HDR-1", no_actor,
	    minimal("REC-HDR-1", "GAMMA"), &r);
	assert_error(&r, 400, "X-Visor-Actor");
	gwt_resp_free(&r);
	call("agency-police", "GET", "/v1/records/REC-HDR-1", no_purpose, NULL, &r);
	assert_error(&r, 400, "X-Visor-Purpose");
	gwt_resp_free(&r);
	call("agency-police", "GET", "/v1/records/REC-HDR-1", bad_purpose, NULL, &r);
	assert_error(&r, 400, "X-Visor-Purpose");
	gwt_resp_free(&r);
	call("agency-police", "GET", "/v1/records/REC-HDR-1", no_just, NULL, &r);
	assert_error(&r, 400, "X-Visor-Justification");
	gwt_resp_free(&r);
	/* Writes do not need a justification. */
	assert_int_equal(status_of("agency-police", "PUT", "/v1/records/REC-HDR-1",
	    no_just, minimal("REC-HDR-1", "GAMMA")), 200);

	memset(j513, 'j', 513);
	j513[513] = '\0';
	snprintf(j512, sizeof(j512), "X-Visor-Justification: %.512s", j513);
	long_just[0] = "X-Visor-Actor: S1";
	long_just[1] = "X-Visor-Purpose: review";
	long_just[2] = j512;
	long_just[3] = NULL;
	assert_int_equal(status_of("agency-police", "GET", "/v1/records/REC-HDR-1",
	    long_just, NULL), 200);
	snprintf(j512, sizeof(j512), "X-Visor-Justification: %s", j513);
	call("agency-police", "GET", "/v1/records/REC-HDR-1", long_just, NULL, &r);
	assert_error(&r, 400, "512");
	gwt_resp_free(&r);
	/* Staff numbers are printable ASCII of at most 128 bytes. */
	{
		char actor[200];
		const char *h[4] = { actor, "X-Visor-Purpose: review",
		    "X-Visor-Justification: actor bounds", NULL };

		snprintf(actor, sizeof(actor), "X-Visor-Actor: %0128d", 7);
		assert_int_equal(status_of("agency-police", "GET",
		    "/v1/records/REC-HDR-1", h, NULL), 200);
		snprintf(actor, sizeof(actor), "X-Visor-Actor: %0129d", 7);
		call("agency-police", "GET", "/v1/records/REC-HDR-1", h, NULL, &r);
		assert_error(&r, 400, "X-Visor-Actor");
		gwt_resp_free(&r);
		snprintf(actor, sizeof(actor), "X-Visor-Actor: caf\xc3\xa9");
		call("agency-police", "GET", "/v1/records/REC-HDR-1", h, NULL, &r);
		assert_error(&r, 400, "X-Visor-Actor");
		gwt_resp_free(&r);
	}
	/* Every purpose of SPEC section 5 is accepted. */
	{
		static const char *const purposes[] = { "risk-management",
		    "mappa-meeting", "offender-move", "notification",
		    "accommodation", "health-care", "monitoring", "review" };
		char ph[64];
		const char *h[4] = { "X-Visor-Actor: S1", ph,
		    "X-Visor-Justification: every purpose", NULL };
		size_t i;

		for (i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++) {
			snprintf(ph, sizeof(ph), "X-Visor-Purpose: %s", purposes[i]);
			assert_int_equal(status_of("agency-police", "GET",
			    "/v1/records/REC-HDR-1", h, NULL), 200);
		}
	}
}

static void
test_patch_merge(void **state)
{
	static const char *const ct_json[] = { "Content-Type: application/json", NULL };
	static const char *const ct_merge[] = {
		"Content-Type: application/merge-patch+json", NULL };
	gwt_resp_t r;
	cJSON *j, *p;

	(void)state;
	assert_int_equal(put_json("agency-probation", "REC-PATCH-1",
	    "{\"id\":\"REC-PATCH-1\",\"managing_area\":\"norfolk\",\"category\":2,"
	    "\"level\":1,\"person\":{\"surname\":\"DELTA\",\"forenames\":\"Ann\","
	    "\"gender\":\"female\"},\"risk\":{\"rosh\":\"low\"}}"), 201);

	call("agency-probation", "PATCH", "/v1/records/REC-PATCH-1",
	    hdrs_std(NULL, ct_json), "{\"risk\":{\"rosh\":\"high\"}}", &r);
	assert_error(&r, 415, "merge-patch");
	gwt_resp_free(&r);
	assert_int_equal(version_of("REC-PATCH-1"), 1);

	/* Change one member, delete another with null, keep the rest. */
	call("agency-probation", "PATCH", "/v1/records/REC-PATCH-1",
	    hdrs_std(NULL, ct_merge),
	    "{\"person\":{\"forenames\":\"Anne\",\"gender\":null},"
	    "\"risk\":{\"rosh\":\"high\",\"tool\":\"OASys\"}}", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.data, "\"version\":2"));
	gwt_resp_free(&r);
	j = get_record("agency-probation", "REC-PATCH-1");
	assert_non_null(j);
	p = cJSON_GetObjectItem(j, "person");
	assert_string_equal(cJSON_GetObjectItem(p, "surname")->valuestring, "DELTA");
	assert_string_equal(cJSON_GetObjectItem(p, "forenames")->valuestring, "Anne");
	assert_null(cJSON_GetObjectItem(p, "gender"));
	p = cJSON_GetObjectItem(j, "risk");
	assert_string_equal(cJSON_GetObjectItem(p, "rosh")->valuestring, "high");
	assert_string_equal(cJSON_GetObjectItem(p, "tool")->valuestring, "OASys");
	cJSON_Delete(j);

	/* A patch must be an object naming schema fields. */
	call("agency-probation", "PATCH", "/v1/records/REC-PATCH-1",
	    hdrs_std(NULL, ct_merge), "{\"person\":{\"shoe_size\":9}}", &r);
	assert_error(&r, 422, "person.shoe_size");
	gwt_resp_free(&r);
	call("agency-probation", "PATCH", "/v1/records/REC-PATCH-1",
	    hdrs_std(NULL, ct_merge), "[1,2]", &r);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);
	/* Deleting a required core field fails the schema. */
	call("agency-probation", "PATCH", "/v1/records/REC-PATCH-1",
	    hdrs_std(NULL, ct_merge), "{\"category\":null}", &r);
	assert_error(&r, 422, "category");
	gwt_resp_free(&r);
	/* PATCH of a record that does not exist. */
	call("agency-probation", "PATCH", "/v1/records/REC-NOPE-1",
	    hdrs_std(NULL, ct_merge), "{\"risk\":{\"rosh\":\"low\"}}", &r);
	assert_error(&r, 404, NULL);
	gwt_resp_free(&r);
	assert_int_equal(version_of("REC-PATCH-1"), 2);
}

static void
test_body_errors(void **state)
{
	gwt_resp_t r;
	char *big, *deep;
	size_t i, n;
	char err[256];
	int rc;

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-BODY-1",
	    minimal("REC-BODY-1", "EPSILON")), 201);

	/* One byte over the limit: 413, and the client learns it (the
	 * gateway may also close the connection). */
	n = MAX_BODY + 1;
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "{\"id\":\"REC-BODY-1\"", 17);
	big[n - 1] = '}';
	big[n] = '\0';
	rc = gwt_request(&fx.env, &fx.gw, "norfolk", "agency-police", "PUT",
	    "/v1/records/REC-BODY-1", hdrs_std(NULL, NULL), big, n, &r, err,
	    sizeof(err));
	free(big);
	if (rc < 0)
		fail_msg("oversize body: no answer: %s", err);
	assert_int_equal(r.status, 413);
	gwt_resp_free(&r);

	call("agency-police", "PUT", "/v1/records/REC-BODY-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-BODY-1\",", &r);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-BODY-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-BODY-1\",\"managing_area\":\"norfolk\",\"category\":1,"
	    "\"category\":2,\"level\":1}", &r);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-BODY-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-BODY-1\",\"managing_area\":\"norfolk\",\"category\":1,"
	    "\"level\":1,\"person\":{\"surname\":\"BAD\xff\xfe\"}}", &r);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-BODY-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-BODY-1\",\"managing_area\":\"norfolk\",\"category\":1,"
	    "\"level\":1,\"person\":{\"surname\":\"BAD\\ud800\"}}", &r);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-BODY-1", hdrs_std(NULL, NULL),
	    "\"just a string\"", &r);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);

	/* Nesting deeper than the configured 32. */
	deep = malloc(2 * 200 + 64);
	assert_non_null(deep);
	n = (size_t)snprintf(deep, 64, "{\"id\":\"REC-BODY-1\",\"x\":");
	for (i = 0; i < 200; i++)
		deep[n++] = '[';
	for (i = 0; i < 200; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	call("agency-police", "PUT", "/v1/records/REC-BODY-1", hdrs_std(NULL, NULL),
	    deep, &r);
	free(deep);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);

	/* Not JSON at all: 415 for PUT. */
	{
		static const char *const ct[] = { "Content-Type: text/plain", NULL };
		call("agency-police", "PUT", "/v1/records/REC-BODY-1",
		    hdrs_std(NULL, ct), minimal("REC-BODY-1", "EPSILON"), &r);
		assert_error(&r, 415, NULL);
		gwt_resp_free(&r);
	}
	/* Nothing above changed the record. */
	assert_int_equal(version_of("REC-BODY-1"), 1);
	assert_true(gwt_gw_alive(&fx.gw));
}

static void
test_schema_errors(void **state)
{
	gwt_resp_t r;

	(void)state;
	call("agency-police", "PUT", "/v1/records/REC-SCH-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-SCH-1\",\"managing_area\":\"norfolk\",\"category\":1,"
	    "\"level\":1,\"favourite_colour\":\"blue\"}", &r);
	assert_error(&r, 422, "favourite_colour");
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-SCH-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-SCH-1\",\"managing_area\":\"norfolk\",\"category\":1,"
	    "\"level\":1,\"person\":{\"dob\":\"1990-02-30\"}}", &r);
	assert_error(&r, 422, "person.dob");
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-SCH-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-SCH-2\",\"managing_area\":\"norfolk\",\"category\":1,"
	    "\"level\":1}", &r);
	assert_error(&r, 422, "id");
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-SCH-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-SCH-1\",\"managing_area\":\"norfolk\",\"category\":1,"
	    "\"level\":1,\"addresses\":[{\"postcode\":\"NR1 9ZZ\"},"
	    "{\"postcode\":\"NR1 9ZZ\"},{\"postcode\":\"!!\"}]}", &r);
	assert_error(&r, 422, "addresses[2].postcode");
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-SCH-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-SCH-1\",\"managing_area\":\"norfolk\",\"category\":5,"
	    "\"level\":1}", &r);
	assert_error(&r, 422, "category");
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-SCH-1", hdrs_std(NULL, NULL),
	    "{\"id\":\"REC-SCH-1\",\"managing_area\":\"norfolk\",\"level\":1}", &r);
	assert_error(&r, 422, "category");
	gwt_resp_free(&r);
	/* None of them created the record. */
	assert_int_equal(get_status("agency-police", "REC-SCH-1"), 404);
}

static void
test_not_found_and_methods(void **state)
{
	gwt_resp_t r;
	char allow[80];

	(void)state;
	call("agency-police", "GET", "/v1/records/REC-NEVER",
	    hdrs_std("look up", NULL), NULL, &r);
	assert_error(&r, 404, NULL);
	gwt_resp_free(&r);
	call("agency-police", "GET", "/v1/records/REC-NEVER/history",
	    hdrs_std("history check", NULL), NULL, &r);
	assert_error(&r, 404, NULL);
	gwt_resp_free(&r);
	call("agency-police", "DELETE", "/v1/records/REC-NEVER",
	    hdrs_std(NULL, NULL), NULL, &r);
	assert_error(&r, 404, NULL);
	gwt_resp_free(&r);
	call("agency-police", "GET", "/v1/nothing-here", hdrs_std(NULL, NULL),
	    NULL, &r);
	assert_error(&r, 404, NULL);
	gwt_resp_free(&r);

	call("agency-police", "POST", "/v1/records/REC-NEVER", hdrs_std(NULL, NULL),
	    "{}", &r);
	assert_error(&r, 405, NULL);
	header_of(&r, "Allow", allow, sizeof(allow));
	assert_non_null(strstr(allow, "GET"));
	assert_non_null(strstr(allow, "PATCH"));
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-NEVER/history",
	    hdrs_std(NULL, NULL), "{}", &r);
	assert_error(&r, 405, NULL);
	gwt_resp_free(&r);
	call("agency-police", "POST", "/v1/health", hdrs_std(NULL, NULL), "{}", &r);
	assert_error(&r, 405, NULL);
	gwt_resp_free(&r);
	/* Ids are [A-Z0-9-]{3,64}. */
	call("agency-police", "GET", "/v1/records/lower-case",
	    hdrs_std("look up", NULL), NULL, &r);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);
	call("agency-police", "GET", "/v1/records/AB", hdrs_std("look up", NULL),
	    NULL, &r);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);
}

static void
test_if_match(void **state)
{
	static const char *const stale[] = { "If-Match: \"1\"", NULL };
	static const char *const fresh[] = { "If-Match: \"2\"", NULL };
	static const char *const garbage[] = { "If-Match: W/\"x\"", NULL };
	gwt_resp_t r;

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-IFM-1",
	    minimal("REC-IFM-1", "ZETA")), 201);
	assert_int_equal(put_json("agency-police", "REC-IFM-1",
	    minimal("REC-IFM-1", "ETA")), 200);
	call("agency-police", "PUT", "/v1/records/REC-IFM-1", hdrs_std(NULL, stale),
	    minimal("REC-IFM-1", "THETA"), &r);
	assert_error(&r, 409, NULL);
	gwt_resp_free(&r);
	call("agency-police", "PUT", "/v1/records/REC-IFM-1",
	    hdrs_std(NULL, garbage), minimal("REC-IFM-1", "THETA"), &r);
	assert_error(&r, 400, NULL);
	gwt_resp_free(&r);
	assert_int_equal(version_of("REC-IFM-1"), 2);
	call("agency-police", "PUT", "/v1/records/REC-IFM-1", hdrs_std(NULL, fresh),
	    minimal("REC-IFM-1", "THETA"), &r);
	assert_int_equal(r.status, 200);
	gwt_resp_free(&r);
	assert_int_equal(version_of("REC-IFM-1"), 3);
	/* If-Match on a record that does not exist. */
	call("agency-police", "PUT", "/v1/records/REC-IFM-2", hdrs_std(NULL, stale),
	    minimal("REC-IFM-2", "IOTA"), &r);
	assert_error(&r, 409, NULL);
	gwt_resp_free(&r);
	assert_int_equal(get_status("agency-police", "REC-IFM-2"), 404);
}

static void
test_idempotency_key(void **state)
{
	static const char *const k1[] = { "Idempotency-Key: put-key-0001", NULL };
	static const char *const k2[] = { "Idempotency-Key: patch-key-0001",
	    "Content-Type: application/merge-patch+json", NULL };
	gwt_resp_t r1, r2;
	char replay[16];

	(void)state;
	call("agency-police", "PUT", "/v1/records/REC-IDEM-1", hdrs_std(NULL, k1),
	    minimal("REC-IDEM-1", "KAPPA"), &r1);
	assert_int_equal(r1.status, 201);
	call("agency-police", "PUT", "/v1/records/REC-IDEM-1", hdrs_std(NULL, k1),
	    minimal("REC-IDEM-1", "KAPPA"), &r2);
	assert_int_equal(r2.status, 201);
	assert_int_equal(r1.body.len, r2.body.len);
	assert_memory_equal(r1.body.data, r2.body.data, r1.body.len);
	header_of(&r2, "Idempotent-Replay", replay, sizeof(replay));
	assert_string_equal(replay, "true");
	gwt_resp_free(&r1);
	gwt_resp_free(&r2);
	assert_int_equal(version_of("REC-IDEM-1"), 1);
	assert_int_equal(audit_count_op("REC-IDEM-1", "collect"), 1);
	assert_int_equal(audit_count_op("REC-IDEM-1", "alter"), 0);

	/* Same key, other body. */
	call("agency-police", "PUT", "/v1/records/REC-IDEM-1", hdrs_std(NULL, k1),
	    minimal("REC-IDEM-1", "LAMBDA"), &r1);
	assert_error(&r1, 409, NULL);
	gwt_resp_free(&r1);
	/* Same key and body on another record is another request. */
	call("agency-police", "PUT", "/v1/records/REC-IDEM-2", hdrs_std(NULL, k1),
	    minimal("REC-IDEM-2", "KAPPA"), &r1);
	assert_error(&r1, 409, NULL);
	gwt_resp_free(&r1);
	assert_int_equal(get_status("agency-police", "REC-IDEM-2"), 404);
	assert_int_equal(version_of("REC-IDEM-1"), 1);

	/* PATCH: first 200 v2, the retry the same, nothing more changed. */
	call("agency-police", "PATCH", "/v1/records/REC-IDEM-1", hdrs_std(NULL, k2),
	    "{\"risk\":{\"rosh\":\"medium\"}}", &r1);
	assert_int_equal(r1.status, 200);
	call("agency-police", "PATCH", "/v1/records/REC-IDEM-1", hdrs_std(NULL, k2),
	    "{\"risk\":{\"rosh\":\"medium\"}}", &r2);
	assert_int_equal(r2.status, 200);
	assert_int_equal(r1.body.len, r2.body.len);
	assert_memory_equal(r1.body.data, r2.body.data, r1.body.len);
	gwt_resp_free(&r1);
	gwt_resp_free(&r2);
	assert_int_equal(version_of("REC-IDEM-1"), 2);
	assert_int_equal(audit_count_op("REC-IDEM-1", "alter"), 1);
	call("agency-police", "PATCH", "/v1/records/REC-IDEM-1", hdrs_std(NULL, k2),
	    "{\"risk\":{\"rosh\":\"low\"}}", &r1);
	assert_error(&r1, 409, NULL);
	gwt_resp_free(&r1);
	assert_int_equal(version_of("REC-IDEM-1"), 2);

	/* Keys are scoped to the caller: another agency's identical key is
	 * its own. */
	assert_int_equal(status_of("agency-probation", "PUT",
	    "/v1/records/REC-IDEM-3", hdrs_std(NULL, k1),
	    minimal("REC-IDEM-3", "MU")), 201);
}

/* The surname and version police read of id; surname "" when not 200. */
static long
surname_of(const char *id, char *surname, size_t len)
{
	cJSON *j = get_record("agency-police", id);
	long v = -1;

	surname[0] = '\0';
	if (j != NULL) {
		snprintf(surname, len, "%s", json_get_str(cJSON_GetObjectItem(j,
		    "person"), "surname"));
		v = (long)cJSON_GetObjectItem(j, "version")->valuedouble;
	}
	cJSON_Delete(j);
	return v;
}

/*
 * X-Visor-Replay: if-current.  A key's first answer names the version it
 * made; by default a retry gets it whatever happened since (SPEC 5).  With
 * the header it is replayed only until another write moves the record
 * on, then the request runs anew.  An erasure deletes the key: the retry
 * is then a new request.
 */
static void
test_idempotency_replay_if_current(void **state)
{
	static const char *const k[] = { "Idempotency-Key: cur-key-0001", NULL };
	static const char *const kc[] = { "Idempotency-Key: cur-key-0001",
	    "X-Visor-Replay: if-current", NULL };
	static const char *const bad[] = { "Idempotency-Key: cur-key-0001",
	    "X-Visor-Replay: always", NULL };
	const char *const path = "/v1/records/REC-IDEM-CUR";
	char a[512], b[512], replay[16], sn[64];
	gwt_resp_t r;

	(void)state;
	snprintf(a, sizeof(a), "%s", minimal("REC-IDEM-CUR", "ALPHA"));
	snprintf(b, sizeof(b), "%s", minimal("REC-IDEM-CUR", "BETA"));
	assert_int_equal(status_of("agency-police", "PUT", path,
	    hdrs_std(NULL, k), a), 201);
	assert_int_equal(put_json("agency-police", "REC-IDEM-CUR", b), 200);
	/* Without the header: the first answer, and nothing written. */
	call("agency-police", "PUT", path, hdrs_std(NULL, k), a, &r);
	assert_int_equal(r.status, 201);
	header_of(&r, "Idempotent-Replay", replay, sizeof(replay));
	assert_string_equal(replay, "true");
	assert_non_null(strstr(r.body.data, "\"version\":1"));
	gwt_resp_free(&r);
	assert_int_equal(surname_of("REC-IDEM-CUR", sn, sizeof(sn)), 2);
	assert_string_equal(sn, "BETA");
	/* Any other value is refused. */
	call("agency-police", "PUT", path, hdrs_std(NULL, bad), a, &r);
	assert_error(&r, 400, "if-current");
	gwt_resp_free(&r);
	/* With it: run again, then replayed while current. */
	call("agency-police", "PUT", path, hdrs_std(NULL, kc), a, &r);
	assert_int_equal(r.status, 200);
	header_of(&r, "Idempotent-Replay", replay, sizeof(replay));
	assert_string_equal(replay, "");
	gwt_resp_free(&r);
	assert_int_equal(surname_of("REC-IDEM-CUR", sn, sizeof(sn)), 3);
	assert_string_equal(sn, "ALPHA");
	assert_true(gwt_log_wait(&fx.gw, "event=idempotency-stale", 5000));
	call("agency-police", "PUT", path, hdrs_std(NULL, kc), a, &r);
	assert_int_equal(r.status, 200);
	header_of(&r, "Idempotent-Replay", replay, sizeof(replay));
	assert_string_equal(replay, "true");
	assert_non_null(strstr(r.body.data, "\"version\":3"));
	gwt_resp_free(&r);
	/* Erased: the erasure took the key with it, so the retry is a new
	 * PUT, which creates the record from what it sends (no answer about
	 * the erased one is replayed). */
	assert_int_equal(status_of("agency-police", "DELETE", path,
	    hdrs_std("erasure test", NULL), NULL), 200);
	call("agency-police", "PUT", path, hdrs_std(NULL, kc), a, &r);
	assert_int_equal(r.status, 201);
	header_of(&r, "Idempotent-Replay", replay, sizeof(replay));
	assert_string_equal(replay, "");
	assert_non_null(strstr(r.body.data, "\"version\":5"));
	gwt_resp_free(&r);
	assert_int_equal(surname_of("REC-IDEM-CUR", sn, sizeof(sn)), 5);
	assert_string_equal(sn, "ALPHA");
}

static void
test_write_forbidden_field(void **state)
{
	gwt_resp_t r;
	cJSON *before, *after;
	char *body;

	(void)state;
	body = rich_as("REC-FORB-1", 2, 2);
	assert_int_equal(put_json("agency-probation", "REC-FORB-1", body), 201);
	free(body);
	before = get_record("agency-probation", "REC-FORB-1");
	assert_non_null(before);

	/* Police may not write health: the whole patch is refused. */
	{
		static const char *const ct[] = {
			"Content-Type: application/merge-patch+json", NULL };
		call("agency-police", "PATCH", "/v1/records/REC-FORB-1",
		    hdrs_std(NULL, ct), "{\"risk\":{\"rosh\":\"very-high\"},"
		    "\"health\":{\"notes\":[\"rewritten\"]}}", &r);
		assert_error(&r, 403, "health");
		gwt_resp_free(&r);
		/* Housing may write addresses, not risk. */
		call("agency-housing", "PATCH", "/v1/records/REC-FORB-1",
		    hdrs_std(NULL, ct), "{\"addresses\":[{\"type\":\"temporary\","
		    "\"postcode\":\"NR2 1AA\"}],\"risk\":{\"rosh\":\"low\"}}", &r);
		assert_error(&r, 403, "risk");
		gwt_resp_free(&r);
		/* Ems writes em only. */
		call("agency-ems", "PATCH", "/v1/records/REC-FORB-1",
		    hdrs_std(NULL, ct), "{\"person\":{\"surname\":\"CHANGED\"}}", &r);
		assert_error(&r, 403, "person");
		gwt_resp_free(&r);
		/* Education writes nothing. */
		call("agency-education", "PATCH", "/v1/records/REC-FORB-1",
		    hdrs_std(NULL, ct), "{\"risk\":{\"rosh\":\"low\"}}", &r);
		assert_error(&r, 403, NULL);
		gwt_resp_free(&r);
	}
	/* Police may not read health: a police PUT that sends it is
	 * refused, whatever its value (test_put_keeps_unread). */
	{
		cJSON *j = cJSON_Duplicate(before, 1);
		char *s;

		cJSON_DeleteItemFromObject(j, "version");
		cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "health"), "notes",
		    cJSON_CreateStringArray((const char *const[]){ "police note" }, 1));
		s = cJSON_PrintUnformatted(j);
		call("agency-police", "PUT", "/v1/records/REC-FORB-1",
		    hdrs_std(NULL, NULL), s, &r);
		assert_error(&r, 403, "health");
		gwt_resp_free(&r);
		free(s);
		cJSON_Delete(j);
	}
	after = get_record("agency-probation", "REC-FORB-1");
	assert_non_null(after);
	assert_true(cJSON_Compare(before, after, 1));
	cJSON_Delete(after);

	/* The permitted parts work on their own. */
	assert_int_equal(patch_json("agency-housing", "REC-FORB-1",
	    "{\"addresses\":[{\"type\":\"temporary\",\"postcode\":\"NR2 1AA\"}]}"), 200);
	assert_int_equal(patch_json("agency-ems", "REC-FORB-1",
	    "{\"em\":{\"active\":false}}"), 200);
	assert_int_equal(patch_json("agency-health", "REC-FORB-1",
	    "{\"health\":{\"notes\":[\"seen in clinic\"]}}"), 200);
	assert_int_equal(version_of("REC-FORB-1"), 4);
	/* A version in a patch is ignored, as in a PUT (the gateway assigns
	 * versions): it is no field to write.  Before, housing was refused
	 * for writing "version". */
	assert_int_equal(patch_json("agency-housing", "REC-FORB-1",
	    "{\"version\":1,\"addresses\":[{\"type\":\"temporary\","
	    "\"postcode\":\"NR2 1AB\"}]}"), 200);
	assert_int_equal(version_of("REC-FORB-1"), 5);
	/* Each refusal was logged as a deny. */
	assert_true(audit_count_op("REC-FORB-1", "deny") >= 5);
	cJSON_Delete(before);
}

/* Two answers that must not tell a right guess from a wrong one: both
 * status (with a message naming want, if not NULL), the same message.
 * Frees both. */
static void
assert_same_refusal(gwt_resp_t *r1, gwt_resp_t *r2, long status,
    const char *want)
{
	cJSON *j1, *j2;
	const cJSON *m1, *m2, *c1, *c2;

	assert_error(r1, status, want);
	assert_error(r2, status, want);
	j1 = cJSON_ParseWithLength(r1->body.data, r1->body.len);
	j2 = cJSON_ParseWithLength(r2->body.data, r2->body.len);
	m1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j1,
	    "error"), "message");
	m2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j2,
	    "error"), "message");
	assert_true(cJSON_IsString(m1) && cJSON_IsString(m2));
	assert_string_equal(m1->valuestring, m2->valuestring);
	/* The code too: assert_error only sees that there is one. */
	c1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j1,
	    "error"), "code");
	c2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j2,
	    "error"), "code");
	assert_true(cJSON_IsString(c1) && cJSON_IsString(c2));
	assert_string_equal(c1->valuestring, c2->valuestring);
	cJSON_Delete(j1);
	cJSON_Delete(j2);
	gwt_resp_free(r1);
	gwt_resp_free(r2);
}

/* who PUTs its own view of id with path's member set to v (a JSON text) or,
 * with v NULL, with only version dropped; the answer in r. */
static void
put_view(const char *who, const char *id, const char *obj, const char *member,
    const char *v, gwt_resp_t *r)
{
	cJSON *j = get_record(who, id), *o;
	char path[120], *s;

	assert_non_null(j);
	cJSON_DeleteItemFromObject(j, "version");
	if (v != NULL) {
		o = obj != NULL ? cJSON_GetObjectItem(j, obj) : j;
		if (o == NULL) {
			o = cJSON_AddObjectToObject(j, obj);
			assert_non_null(o);
		}
		cJSON_DeleteItemFromObject(o, member);
		cJSON_AddItemToObject(o, member, cJSON_Parse(v));
	}
	s = cJSON_PrintUnformatted(j);
	snprintf(path, sizeof(path), "/v1/records/%s", id);
	call(who, "PUT", path, hdrs_std(NULL, NULL), s, r);
	free(s);
	cJSON_Delete(j);
}

/* A PUT over a stored record replaces what the caller reads whole and
 * keeps the rest.  Before, which fields it changed was found against the
 * whole stored record: a guess equal to a value the caller may not read
 * passed, a wrong one was named in the refusal, so that PUTs read what
 * GETs withheld (housing found a date of birth it reads as a year), and a
 * caller that left out what it could not see removed it. */
static void
test_put_keeps_unread(void **state)
{
	gwt_resp_t r1, r2;
	cJSON *before, *after;
	const cJSON *dob;
	char *body, guess[40];

	(void)state;
	body = rich_as("REC-PUTV-1", 2, 2);
	assert_int_equal(put_json("agency-probation", "REC-PUTV-1", body), 201);
	free(body);
	before = get_record("agency-probation", "REC-PUTV-1");
	assert_non_null(before);
	dob = cJSON_GetObjectItem(cJSON_GetObjectItem(before, "person"), "dob");
	assert_true(cJSON_IsString(dob) && strlen(dob->valuestring) == 10);

	/* Housing reads the date of birth as a year: the right date and a
	 * wrong one get the same answer, naming what was sent. */
	snprintf(guess, sizeof(guess), "\"%s\"", dob->valuestring);
	put_view("agency-housing", "REC-PUTV-1", "person", "dob", guess, &r1);
	put_view("agency-housing", "REC-PUTV-1", "person", "dob",
	    strcmp(dob->valuestring, "1970-01-01") ? "\"1970-01-01\"" :
	    "\"1970-01-02\"", &r2);
	assert_same_refusal(&r1, &r2, 403, "person.dob");
	/* Its view as it reads it holds a year, not a date: not a record. */
	put_view("agency-housing", "REC-PUTV-1", NULL, NULL, NULL, &r1);
	assert_error(&r1, 422, "person.dob");
	gwt_resp_free(&r1);

	/* Police may not read health: the stored notes and other notes get
	 * the same answer. */
	body = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetObjectItem(before,
	    "health"), "notes"));
	assert_non_null(body);
	put_view("agency-police", "REC-PUTV-1", "health", "notes", body, &r1);
	put_view("agency-police", "REC-PUTV-1", "health", "notes",
	    "[\"a guess\"]", &r2);
	free(body);
	assert_same_refusal(&r1, &r2, 403, "health");

	/* Police PUT what they read, with a new risk level: health is kept,
	 * the level changed, nothing else. */
	put_view("agency-police", "REC-PUTV-1", "risk", "rosh", "\"very-high\"",
	    &r1);
	assert_int_equal(r1.status, 200);
	gwt_resp_free(&r1);
	after = get_record("agency-probation", "REC-PUTV-1");
	assert_non_null(after);
	assert_true(cJSON_Compare(cJSON_GetObjectItem(before, "health"),
	    cJSON_GetObjectItem(after, "health"), 1));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(after, "risk"),
	    "rosh")->valuestring, "very-high");
	cJSON_DeleteItemFromObject(after, "version");
	cJSON_DeleteItemFromObject(before, "version");
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(before, "risk"), "rosh",
	    cJSON_CreateString("very-high"));
	assert_true(cJSON_Compare(before, after, 1));
	cJSON_Delete(after);
	cJSON_Delete(before);
	assert_true(audit_count_op("REC-PUTV-1", "deny") >= 5);
}

static void
test_delete_and_history(void **state)
{
	gwt_resp_t r;
	cJSON *j, *vs, *it;
	int n = 0;

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-DEL-1",
	    minimal("REC-DEL-1", "NUSURNAME")), 201);
	assert_int_equal(patch_json("agency-police", "REC-DEL-1",
	    "{\"risk\":{\"rosh\":\"medium\"}}"), 200);

	/* History is a read: it needs a justification (SPEC section 5). */
	call("agency-police", "GET", "/v1/records/REC-DEL-1/history",
	    hdrs_std(NULL, NULL), NULL, &r);
	assert_error(&r, 400, "X-Visor-Justification");
	gwt_resp_free(&r);
	/* History: versions, time, actor, changed paths, never values. */
	call("agency-police", "GET", "/v1/records/REC-DEL-1/history",
	    hdrs_std("history check", NULL), NULL, &r);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body.data, "NUSURNAME"));
	assert_null(strstr(r.body.data, "medium"));
	j = cJSON_ParseWithLength(r.body.data, r.body.len);
	gwt_resp_free(&r);
	assert_non_null(j);
	vs = cJSON_GetObjectItem(j, "versions");
	assert_true(cJSON_IsArray(vs));
	cJSON_ArrayForEach(it, vs) {
		n++;
		assert_int_equal((int)cJSON_GetObjectItem(it, "version")->valuedouble, n);
		assert_true(cJSON_IsString(cJSON_GetObjectItem(it, "time")));
		assert_string_equal(cJSON_GetObjectItem(it, "actor")->valuestring,
		    "urn:visor:norfolk:agency:police");
		assert_true(cJSON_IsArray(cJSON_GetObjectItem(it, "changed")));
	}
	assert_int_equal(n, 2);
	it = cJSON_GetArrayItem(vs, 1);
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(it, "changed"),
	    0)->valuestring, "risk.rosh");
	cJSON_Delete(j);
	/* Another area's agency may not read the record (the default
	 * policy's reads are for local agencies), so finds none. */
	{
		char err[256];
		assert_int_equal(gwt_request(&fx.env, &fx.gw, "suffolk",
		    "agency-police", "GET", "/v1/records/REC-DEL-1/history",
		    hdrs_std("history check", NULL), NULL, 0, &r, err,
		    sizeof(err)), 0);
		assert_error(&r, 404, "no such record");
		gwt_resp_free(&r);
	}

	/* Erase: police only. */
	{
		static const char *const others[] = { "agency-probation",
		    "agency-prison", "agency-housing", "agency-health", "agency-ems",
		    "agency-dwp", "agency-education", "agency-social-care",
		    "agency-youth-justice" };
		size_t i;

		for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
			call(others[i], "DELETE", "/v1/records/REC-DEL-1",
			    hdrs_std(NULL, NULL), NULL, &r);
			assert_error(&r, 403, NULL);
			gwt_resp_free(&r);
		}
	}
	assert_int_equal(version_of("REC-DEL-1"), 2);
	call("agency-police", "DELETE", "/v1/records/REC-DEL-1",
	    hdrs_std(NULL, NULL), NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.data, "\"erased\":true"));
	gwt_resp_free(&r);
	assert_int_equal(get_status("agency-police", "REC-DEL-1"), 404);
	assert_int_equal(get_status("agency-probation", "REC-DEL-1"), 404);
	assert_int_equal(status_of("agency-police", "DELETE", "/v1/records/REC-DEL-1",
	    hdrs_std(NULL, NULL), NULL), 404);
	assert_int_equal(patch_json("agency-police", "REC-DEL-1",
	    "{\"risk\":{\"rosh\":\"low\"}}"), 404);
	/* The history stays, for police only. */
	call("agency-police", "GET", "/v1/records/REC-DEL-1/history",
	    hdrs_std("history check", NULL), NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.data, "\"version\":1"));
	assert_null(strstr(r.body.data, "NUSURNAME"));
	gwt_resp_free(&r);
	{
		long denies = audit_count_op("REC-DEL-1", "deny");

		call("agency-probation", "GET", "/v1/records/REC-DEL-1/history",
		    hdrs_std("history check", NULL), NULL, &r);
		assert_error(&r, 404, "no such record");
		gwt_resp_free(&r);
		/* The refusal is audited, as every refusal is. */
		assert_int_equal(audit_count_op("REC-DEL-1", "deny"), denies + 1);
	}
	/* And the audit log keeps the erasure. */
	assert_int_equal(audit_count_op("REC-DEL-1", "erase"), 1);

	/* The id made again: its owners see the new record's versions, not
	 * the erased one's (before, probation saw them all once the id was
	 * live again); police still see every version. */
	assert_int_equal(put_json("agency-probation", "REC-DEL-1",
	    minimal("REC-DEL-1", "AGAIN")), 201);
	{
		cJSON *h;
		const cJSON *vv, *first;
		int nprob, npol;

		call("agency-probation", "GET", "/v1/records/REC-DEL-1/history",
		    hdrs_std("history check", NULL), NULL, &r);
		assert_int_equal(r.status, 200);
		h = cJSON_ParseWithLength(r.body.data, r.body.len);
		gwt_resp_free(&r);
		assert_non_null(h);
		vv = cJSON_GetObjectItem(h, "versions");
		nprob = cJSON_GetArraySize(vv);
		assert_int_equal(nprob, 1);
		first = cJSON_GetArrayItem(vv, 0);
		assert_string_equal(cJSON_GetObjectItem(first, "op")->valuestring,
		    "put");
		assert_true(cJSON_GetObjectItem(first, "version")->valuedouble > 2);
		cJSON_Delete(h);
		call("agency-police", "GET", "/v1/records/REC-DEL-1/history",
		    hdrs_std("history check", NULL), NULL, &r);
		assert_int_equal(r.status, 200);
		h = cJSON_ParseWithLength(r.body.data, r.body.len);
		gwt_resp_free(&r);
		assert_non_null(h);
		vv = cJSON_GetObjectItem(h, "versions");
		npol = cJSON_GetArraySize(vv);
		assert_true(npol > nprob + 1);
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(vv,
		    npol - 2), "op")->valuestring, "erase");
		cJSON_Delete(h);
	}
}

/* ------------------------------------------------- what each agency sees */

static void
keys_of(const cJSON *o, char *out, size_t outlen)
{
	const char *names[64];
	const cJSON *it;
	size_t n = 0, i, j, off = 0;

	out[0] = '\0';
	if (!cJSON_IsObject(o))
		return;
	cJSON_ArrayForEach(it, o)
		if (n < 64)
			names[n++] = it->string;
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (i = 0; i < n && off < outlen; i++)
		off += (size_t)snprintf(out + off, outlen - off, "%s%s", i ? "," : "",
		    names[i]);
}

static void
assert_keys(const cJSON *o, const char *want, const char *what)
{
	char got[1024];

	keys_of(o, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("%s: keys '%s', want '%s'", what, got, want);
}

/* Every member of got except those in skip (comma-joined) equals the
 * original record's. */
static void
assert_whole_except(const cJSON *got, const char *skip, const char *who)
{
	const cJSON *it;
	char pat[80];

	cJSON_ArrayForEach(it, got) {
		/* Core members are the test's own (id, category, level). */
		if (strcmp(it->string, "version") == 0 ||
		    strcmp(it->string, "id") == 0 ||
		    strcmp(it->string, "category") == 0 ||
		    strcmp(it->string, "level") == 0)
			continue;
		snprintf(pat, sizeof(pat), ",%s,", it->string);
		if (skip != NULL && strstr(skip, pat) != NULL)
			continue;
		if (!cJSON_Compare(it, cJSON_GetObjectItem(fx.rich, it->string), 1))
			fail_msg("%s: %s is not the whole original", who, it->string);
	}
}

typedef struct {
	const char *cert;
	const char *keys;	/* sorted top-level members */
	const char *partial;	/* ",a,b," members checked by hand */
} view_t;

static const view_t views[] = {
	{ "agency-police", "addresses,associates,category,convictions,em,financial,"
	    "id,intelligence,level,licence,managing_area,notification,orders,person,"
	    "risk,rmp,vehicles,version", NULL },
	{ "agency-probation", "addresses,category,convictions,em,health,id,level,"
	    "licence,managing_area,notification,orders,person,risk,rmp,vehicles,"
	    "version", NULL },
	{ "agency-prison", "category,convictions,health,id,level,licence,"
	    "managing_area,notification,orders,person,risk,rmp,version", NULL },
	{ "agency-youth-justice", "addresses,category,convictions,id,level,licence,"
	    "managing_area,notification,orders,person,risk,rmp,version", NULL },
	{ "agency-health", "category,health,id,level,managing_area,person,risk,"
	    "version", ",risk," },
	{ "agency-social-care", "addresses,category,id,level,managing_area,orders,"
	    "person,risk,rmp,version", NULL },
	{ "agency-housing", "addresses,category,id,level,licence,managing_area,"
	    "orders,person,risk,version", ",person,risk,licence,orders," },
	{ "agency-education", "category,id,level,managing_area,orders,person,risk,"
	    "version", ",person,risk,orders," },
	{ "agency-dwp", "addresses,category,id,level,managing_area,person,version",
	    NULL },
	{ "agency-ems", "addresses,category,em,id,level,licence,managing_area,"
	    "person,version", ",licence," },
};

static void
check_partials(const char *cert, const cJSON *got)
{
	const cJSON *p, *o, *orig_o;

	if (strcmp(cert, "agency-health") == 0 ||
	    strcmp(cert, "agency-housing") == 0) {
		p = cJSON_GetObjectItem(got, "risk");
		assert_keys(p, "people_at_risk,rosh", "risk");
		orig_o = cJSON_GetObjectItem(fx.rich, "risk");
		assert_true(cJSON_Compare(cJSON_GetObjectItem(p, "rosh"),
		    cJSON_GetObjectItem(orig_o, "rosh"), 1));
		assert_true(cJSON_Compare(cJSON_GetObjectItem(p, "people_at_risk"),
		    cJSON_GetObjectItem(orig_o, "people_at_risk"), 1));
	}
	if (strcmp(cert, "agency-housing") == 0) {
		p = cJSON_GetObjectItem(got, "person");
		assert_keys(p, "dob,forenames,surname", "housing person");
		assert_string_equal(cJSON_GetObjectItem(p, "dob")->valuestring, "1984");
		assert_string_equal(cJSON_GetObjectItem(p, "surname")->valuestring,
		    "EXAMPLE");
		/* Addresses whole: postcodes not cut to the district. */
		o = cJSON_GetObjectItem(got, "addresses");
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0),
		    "postcode")->valuestring, "NR1 9ZZ");
	}
	if (strcmp(cert, "agency-housing") == 0 ||
	    strcmp(cert, "agency-ems") == 0) {
		p = cJSON_GetObjectItem(got, "licence");
		assert_keys(p, "conditions", "licence");
		assert_true(cJSON_Compare(cJSON_GetObjectItem(p, "conditions"),
		    cJSON_GetObjectItem(cJSON_GetObjectItem(fx.rich, "licence"),
		    "conditions"), 1));
	}
	if (strcmp(cert, "agency-housing") == 0 ||
	    strcmp(cert, "agency-education") == 0) {
		o = cJSON_GetObjectItem(got, "orders");
		assert_int_equal(cJSON_GetArraySize(o), 1);
		assert_keys(cJSON_GetArrayItem(o, 0), "prohibitions", "orders[]");
		assert_true(cJSON_Compare(
		    cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "prohibitions"),
		    cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(fx.rich,
		    "orders"), 0), "prohibitions"), 1));
	}
	if (strcmp(cert, "agency-education") == 0) {
		assert_keys(cJSON_GetObjectItem(got, "person"), "forenames,surname",
		    "education person");
		assert_keys(cJSON_GetObjectItem(got, "risk"), "rosh", "education risk");
	}
}

static void
test_each_agency_view(void **state)
{
	static const int cats[] = { 1, 2, 3 };
	char id[32], *body;
	size_t c, i;
	cJSON *got;
	leaf_t l[64];
	int n;

	(void)state;
	for (c = 0; c < sizeof(cats) / sizeof(cats[0]); c++) {
		snprintf(id, sizeof(id), "REC-VIEW-C%d", cats[c]);
		body = rich_as(id, cats[c], 2);
		assert_int_equal(put_json("agency-probation", id, body), 201);
		free(body);
		for (i = 0; i < sizeof(views) / sizeof(views[0]); i++) {
			got = get_record(views[i].cert, id);
			if (got == NULL)
				fail_msg("%s cannot read %s", views[i].cert, id);
			assert_keys(got, views[i].keys, views[i].cert);
			assert_string_equal(cJSON_GetObjectItem(got, "id")->valuestring, id);
			assert_int_equal((int)cJSON_GetObjectItem(got, "category")->valuedouble,
			    cats[c]);
			assert_whole_except(got, views[i].partial, views[i].cert);
			check_partials(views[i].cert, got);
			cJSON_Delete(got);
		}
	}
	/* The audit entries of those reads name what was withheld: police
	 * never get health, probation get vehicles but not intelligence. */
	n = audit_for("REC-VIEW-C1", l, 64);
	assert_true(n >= 11);
	for (i = 0; i < (size_t)n; i++) {
		if (strcmp(l[i].op, "consult") != 0)
			continue;
		if (strcmp(l[i].actor, "urn:visor:norfolk:agency:police") == 0) {
			assert_non_null(strstr(l[i].withheld, "health"));
			assert_null(strstr(l[i].fields, "health"));
		}
		if (strcmp(l[i].actor, "urn:visor:norfolk:agency:probation") == 0) {
			assert_non_null(strstr(l[i].withheld, "intelligence"));
			assert_non_null(strstr(l[i].fields, "vehicles"));
		}
	}
	/* Another area's agency gets nothing by default: no record. */
	{
		gwt_resp_t r;
		char err[256];

		assert_int_equal(gwt_request(&fx.env, &fx.gw, "suffolk",
		    "agency-police", "GET", "/v1/records/REC-VIEW-C1",
		    hdrs_std("cross-area look", NULL), NULL, 0, &r, err,
		    sizeof(err)), 0);
		assert_error(&r, 404, "no such record");
		gwt_resp_free(&r);
	}
}

/* Police (ct in the quickstart configuration) create id as a rich category
 * 4, level 2 record without health, which police may not write. */
static void
put_cat4_as_police(const char *id)
{
	char *body = rich_as(id, 4, 2);
	cJSON *j = cJSON_Parse(body);

	free(body);
	assert_non_null(j);
	cJSON_DeleteItemFromObject(j, "health");
	body = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	assert_int_equal(put_json("agency-police", id, body), 201);
	free(body);
}

static void
test_category4_clearance(void **state)
{
	char *body = rich_as("REC-CAT4-1", 4, 3);
	cJSON *got;

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-CAT4-1", body), 403);
	free(body);
	/* Police may not write health; the same record without it. */
	{
		cJSON *j = cJSON_Duplicate(fx.rich, 1);
		char *s;

		cJSON_ReplaceItemInObject(j, "id", cJSON_CreateString("REC-CAT4-1"));
		cJSON_ReplaceItemInObject(j, "category", cJSON_CreateNumber(4));
		cJSON_DeleteItemFromObject(j, "health");
		s = cJSON_PrintUnformatted(j);
		assert_int_equal(put_json("agency-police", "REC-CAT4-1", s), 201);
		free(s);
		cJSON_Delete(j);
	}
	/* Police hold ct in the quickstart configuration. */
	got = get_record("agency-police", "REC-CAT4-1");
	assert_non_null(got);
	assert_int_equal((int)cJSON_GetObjectItem(got, "category")->valuedouble, 4);
	assert_non_null(cJSON_GetObjectItem(got, "intelligence"));
	cJSON_Delete(got);
	{
		static const char *const others[] = { "agency-probation",
		    "agency-prison", "agency-housing", "agency-health", "agency-ems",
		    "agency-dwp" };
		gwt_resp_t r, r2;
		size_t i;

		for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
			call(others[i], "GET", "/v1/records/REC-CAT4-1",
			    hdrs_std("cat 4 check", NULL), NULL, &r);
			/* No record, as for an id nobody holds: a 403 said
			 * that the record exists and is one they may not
			 * see (a terrorism case, where only category 4 is
			 * refused). */
			call(others[i], "GET", "/v1/records/REC-CAT4-NONE",
			    hdrs_std("cat 4 check", NULL), NULL, &r2);
			assert_non_null(r.body.data);
			assert_null(strstr(r.body.data, "EXAMPLE"));
			/* Nor the rule, which says what the record is. */
			assert_null(strstr(r.body.data, "category4"));
			assert_same_refusal(&r, &r2, 404, "no such record");
		}
	}
	assert_true(audit_count_op("REC-CAT4-1", "deny") >= 6);
	/* Nor may they learn it, or move it, by writing.  A PUT of the core
	 * alone kept everything else: a right guess at the level changed
	 * nothing and passed (housing may write), a wrong one was refused.
	 * And probation (no ct) could lower the category to 1 and read it
	 * all. */
	{
		static const char *const ct[] = {
			"Content-Type: application/merge-patch+json", NULL };
		gwt_resp_t r1, r2;
		char core[200];
		int lvl;

		for (lvl = 2; lvl <= 3; lvl++) {
			snprintf(core, sizeof(core), "{\"id\":\"REC-CAT4-1\","
			    "\"managing_area\":\"norfolk\",\"category\":4,"
			    "\"level\":%d}", lvl);
			call("agency-housing", "PUT", "/v1/records/REC-CAT4-1",
			    hdrs_std(NULL, NULL), core, lvl == 3 ? &r1 : &r2);
		}
		assert_same_refusal(&r1, &r2, 403, NULL);
		call("agency-probation", "PATCH", "/v1/records/REC-CAT4-1",
		    hdrs_std(NULL, ct), "{\"category\":1}", &r1);
		assert_error(&r1, 404, "no such record to patch");
		gwt_resp_free(&r1);
		call("agency-probation", "PUT", "/v1/records/REC-CAT4-1",
		    hdrs_std(NULL, NULL), "{\"id\":\"REC-CAT4-1\",\"managing_area\":"
		    "\"norfolk\",\"category\":1,\"level\":3}", &r1);
		assert_error(&r1, 403, NULL);
		gwt_resp_free(&r1);
		assert_int_equal(get_status("agency-probation", "REC-CAT4-1"), 404);
		got = get_record("agency-police", "REC-CAT4-1");
		assert_non_null(got);
		assert_int_equal((int)cJSON_GetObjectItem(got, "category")->valuedouble,
		    4);
		assert_int_equal((int)cJSON_GetObjectItem(got, "level")->valuedouble, 2);
		assert_int_equal((int)cJSON_GetObjectItem(got, "version")->valuedouble,
		    1);
		cJSON_Delete(got);
		/* Police, who hold ct, may. */
		assert_int_equal(patch_json("agency-police", "REC-CAT4-1",
		    "{\"level\":3}"), 200);
	}
}

/*
 * A record the caller may not read is not there for it: every answer about
 * it is the one an id nobody holds gets.  Before, a GET, a history read, a
 * PATCH or a transfer of a category 4 record by a caller without ct got
 * 403, which told it that the record exists and, since only category 4
 * is refused to them, that it is a terrorism case; If-Match answers told
 * its version; and housing, which writes addresses, changed a category 4
 * record's addresses without being able to read it (200).  The log keeps
 * the truth: each is a deny entry naming the rule.
 */
static void
test_unreadable_is_absent(void **state)
{
	static const char *const ct[] = {
		"Content-Type: application/merge-patch+json", NULL };
	static const char *const ct_match[] = {
		"Content-Type: application/merge-patch+json", "If-Match: \"7\"",
		NULL };
	static const char *const match[] = { "If-Match: \"9\"", NULL };
	static const char *const addr = "{\"addresses\":[{\"type\":\"temporary\","
	    "\"postcode\":\"NR2 1AA\"}]}";
	static leaf_t l[64];
	gwt_resp_t r1, r2;
	char err[256];
	int n, i, denies = 0;

	(void)state;
	put_cat4_as_police("REC-HIDE-4");

	/* Housing writes addresses, but may not read this record. */
	call("agency-housing", "PATCH", "/v1/records/REC-HIDE-4",
	    hdrs_std(NULL, ct), addr, &r1);
	call("agency-housing", "PATCH", "/v1/records/REC-HIDE-NONE",
	    hdrs_std(NULL, ct), addr, &r2);
	assert_same_refusal(&r1, &r2, 404, "no such record to patch");
	call("agency-housing", "PATCH", "/v1/records/REC-HIDE-4",
	    hdrs_std(NULL, ct_match), addr, &r1);
	call("agency-housing", "PATCH", "/v1/records/REC-HIDE-NONE",
	    hdrs_std(NULL, ct_match), addr, &r2);
	assert_same_refusal(&r1, &r2, 404, "no such record to patch");
	assert_int_equal(version_of("REC-HIDE-4"), 1);

	/* History, as GET (test_category4_clearance). */
	call("agency-probation", "GET", "/v1/records/REC-HIDE-4/history",
	    hdrs_std("history check", NULL), NULL, &r1);
	call("agency-probation", "GET", "/v1/records/REC-HIDE-NONE/history",
	    hdrs_std("history check", NULL), NULL, &r2);
	assert_same_refusal(&r1, &r2, 404, "no such record");

	/* Another area's police may not read it: an erasure, even with a
	 * wrong If-Match, finds nothing (it told the version before). */
	assert_int_equal(gwt_request(&fx.env, &fx.gw, "suffolk", "agency-police",
	    "DELETE", "/v1/records/REC-HIDE-4", hdrs_std(NULL, match), NULL, 0,
	    &r1, err, sizeof(err)), 0);
	assert_int_equal(gwt_request(&fx.env, &fx.gw, "suffolk", "agency-police",
	    "DELETE", "/v1/records/REC-HIDE-NONE", hdrs_std(NULL, match), NULL,
	    0, &r2, err, sizeof(err)), 0);
	assert_same_refusal(&r1, &r2, 404, "no such record");
	assert_int_equal(version_of("REC-HIDE-4"), 1);

	/* A PUT can only be refused (it would create an absent record).
	 * One by a caller that may not create the record is answered as the
	 * PUT of an id nobody holds: If-Match, the body, the policy.  Before,
	 * each got a refusal of its own, "policy does not let this caller
	 * read the record", which told housing, education or another area
	 * that the id is a record it may not see. */
	call("agency-housing", "PUT", "/v1/records/REC-HIDE-4",
	    hdrs_std(NULL, match), minimal("REC-HIDE-4", "GUESS"), &r1);
	call("agency-housing", "PUT", "/v1/records/REC-HIDE-NONE",
	    hdrs_std(NULL, match), minimal("REC-HIDE-NONE", "GUESS"), &r2);
	assert_same_refusal(&r1, &r2, 409, "current version 0");
	call("agency-housing", "PUT", "/v1/records/REC-HIDE-4",
	    hdrs_std(NULL, NULL), minimal("REC-HIDE-4", "GUESS"), &r1);
	call("agency-housing", "PUT", "/v1/records/REC-HIDE-NONE",
	    hdrs_std(NULL, NULL), minimal("REC-HIDE-NONE", "GUESS"), &r2);
	assert_same_refusal(&r1, &r2, 403, "not writable");
	call("agency-education", "PUT", "/v1/records/REC-HIDE-4",
	    hdrs_std(NULL, NULL), minimal("REC-HIDE-4", "GUESS"), &r1);
	call("agency-education", "PUT", "/v1/records/REC-HIDE-NONE",
	    hdrs_std(NULL, NULL), minimal("REC-HIDE-NONE", "GUESS"), &r2);
	assert_same_refusal(&r1, &r2, 403, "no rule permits");
	assert_int_equal(gwt_request(&fx.env, &fx.gw, "suffolk", "agency-police",
	    "PUT", "/v1/records/REC-HIDE-4", hdrs_std(NULL, NULL),
	    minimal("REC-HIDE-4", "GUESS"), strlen(minimal("REC-HIDE-4",
	    "GUESS")), &r1, err, sizeof(err)), 0);
	assert_int_equal(gwt_request(&fx.env, &fx.gw, "suffolk", "agency-police",
	    "PUT", "/v1/records/REC-HIDE-NONE", hdrs_std(NULL, NULL),
	    minimal("REC-HIDE-NONE", "GUESS"), strlen(minimal("REC-HIDE-NONE",
	    "GUESS")), &r2, err, sizeof(err)), 0);
	assert_same_refusal(&r1, &r2, 403, "no rule permits");
	/* Probation, which may create records, is still refused, and told
	 * nothing of the version. */
	call("agency-probation", "PUT", "/v1/records/REC-HIDE-4",
	    hdrs_std(NULL, NULL), minimal("REC-HIDE-4", "GUESS"), &r1);
	assert_error(&r1, 403, "read the record");
	gwt_resp_free(&r1);
	assert_int_equal(version_of("REC-HIDE-4"), 1);
	assert_int_equal(get_status("agency-police", "REC-HIDE-NONE"), 404);

	/* The log has each refusal as a deny, the read ones with the rule
	 * the answers left out. */
	n = audit_for("REC-HIDE-4", l, 64);
	assert_true(n > 0);
	for (i = 0; i < n; i++) {
		if (strcmp(l[i].op, "deny") != 0)
			continue;
		denies++;
		assert_string_equal(l[i].result, "denied");
		if (strcmp(l[i].reason, "history-denied") == 0 ||
		    strcmp(l[i].reason, "write-denied") == 0)
			assert_non_null(strstr(l[i].rules,
			    "read-category4-needs-ct"));
	}
	/* Two PATCHes, the history, the erasure, the five PUTs. */
	assert_int_equal(denies, 9);
	/* Police, who hold ct, still see it all. */
	assert_int_equal(get_status("agency-police", "REC-HIDE-4"), 200);
}

/*
 * The history of a record managed by another area: 403 history-not-owner
 * for a caller that may read the record, in whole or in part (probation,
 * housing); for one that may read nothing of it (category 4 without ct)
 * the answer an id nobody holds gets.
 */
static void
test_history_not_owner_only_for_readers(void **state)
{
	static const char *const elsewhere = "{\"id\":\"%s\","
	    "\"managing_area\":\"suffolk\",\"category\":%d,\"level\":1,"
	    "\"person\":{\"surname\":\"ALPHA\",\"forenames\":\"Test\","
	    "\"dob\":\"1990-01-02\",\"gender\":\"x\"}}";
	char body[512];
	gwt_resp_t r1, r2;

	(void)state;
	snprintf(body, sizeof(body), elsewhere, "REC-HIDE-SFK1", 1);
	assert_int_equal(put_json("agency-police", "REC-HIDE-SFK1", body), 201);
	snprintf(body, sizeof(body), elsewhere, "REC-HIDE-SFK4", 4);
	assert_int_equal(put_json("agency-police", "REC-HIDE-SFK4", body), 201);
	assert_int_equal(get_status("agency-housing", "REC-HIDE-SFK1"), 200);

	call("agency-probation", "GET", "/v1/records/REC-HIDE-SFK1/history",
	    hdrs_std("history check", NULL), NULL, &r1);
	assert_error(&r1, 403, "managing area");
	gwt_resp_free(&r1);
	call("agency-housing", "GET", "/v1/records/REC-HIDE-SFK1/history",
	    hdrs_std("history check", NULL), NULL, &r1);
	assert_error(&r1, 403, "managing area");
	gwt_resp_free(&r1);

	call("agency-probation", "GET", "/v1/records/REC-HIDE-SFK4/history",
	    hdrs_std("history check", NULL), NULL, &r1);
	call("agency-probation", "GET", "/v1/records/REC-HIDE-SFKN/history",
	    hdrs_std("history check", NULL), NULL, &r2);
	assert_same_refusal(&r1, &r2, 404, "no such record");
}

/* visor_policy_denials_total{rule="<rule>"} on the gateway's /metrics, 0
 * while the family has no such line. */
static long
denials_metric(const char *rule)
{
	char series[128];
	double n;

	snprintf(series, sizeof(series), "visor_policy_denials_total{rule=\"%s\"}",
	    rule);
	assert_true(gwt_metric(&fx.gw, series, &n) >= 0);
	return (long)n;
}

/*
 * A refusal answered as a missing record is still a policy denial for the
 * operator: visor_policy_denials_total counts it under the deciding rule,
 * as it did while the answer was 403.  Only the caller is not told.
 */
static void
test_unreadable_counted_as_denial(void **state)
{
	static const char *const ct[] = {
		"Content-Type: application/merge-patch+json", NULL };
	long before;

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-HIDE-M4",
	    minimal("REC-HIDE-M4", "ALPHA")), 201);
	assert_int_equal(patch_json("agency-police", "REC-HIDE-M4",
	    "{\"category\":4}"), 200);
	before = denials_metric("read-category4-needs-ct");
	assert_int_equal(get_status("agency-housing", "REC-HIDE-M4"), 404);
	assert_int_equal(status_of("agency-housing", "PATCH",
	    "/v1/records/REC-HIDE-M4", hdrs_std(NULL, ct),
	    "{\"addresses\":[]}"), 404);
	assert_int_equal(denials_metric("read-category4-needs-ct"),
	    before + 2);
	/* An id nobody holds is no denial. */
	assert_int_equal(get_status("agency-housing", "REC-HIDE-MNONE"), 404);
	assert_int_equal(denials_metric("read-category4-needs-ct"),
	    before + 2);
}

/*
 * A retry of a write made when the caller could read the record: a
 * record it may no longer read is absent for it, as an erased one is, so
 * both run again and find no record (the erasure deleted the erased
 * one's key), with or without X-Visor-Replay: if-current.  Before, one
 * was replayed (200) and the other found no record (404): housing learnt
 * that the record it wrote still exists and is now one it may not see, a
 * terrorism case.
 */
static void
test_unreadable_replays_as_erased(void **state)
{
	static const char *const k4[] = {
		"Content-Type: application/merge-patch+json",
		"Idempotency-Key: hide-replay-4", "X-Visor-Replay: if-current",
		NULL };
	static const char *const ke[] = {
		"Content-Type: application/merge-patch+json",
		"Idempotency-Key: hide-replay-e", "X-Visor-Replay: if-current",
		NULL };
	/* The same keys without the header. */
	static const char *const k4p[] = {
		"Content-Type: application/merge-patch+json",
		"Idempotency-Key: hide-replay-4", NULL };
	static const char *const kep[] = {
		"Content-Type: application/merge-patch+json",
		"Idempotency-Key: hide-replay-e", NULL };
	const char *const *pairs[2][2] = { { k4, ke }, { k4p, kep } };
	/* Probation (no ct) moving each: a transfer's key likewise. */
	static const char *const m4[] = { "X-Visor-Actor: STAFF-4711",
	    "X-Visor-Purpose: offender-move",
	    "X-Visor-Justification: integration test",
	    "Idempotency-Key: hide-move-4", NULL };
	static const char *const me[] = { "X-Visor-Actor: STAFF-4711",
	    "X-Visor-Purpose: offender-move",
	    "X-Visor-Justification: integration test",
	    "Idempotency-Key: hide-move-e", NULL };
	char mv4[200], mve[200];
	int i;
	static const char *const addr = "{\"addresses\":[{\"type\":\"temporary\","
	    "\"postcode\":\"NR2 1AA\"}]}";
	gwt_resp_t r1, r2;
	char h1[16], h2[16];

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-HIDE-R4",
	    minimal("REC-HIDE-R4", "ALPHA")), 201);
	assert_int_equal(put_json("agency-police", "REC-HIDE-RE",
	    minimal("REC-HIDE-RE", "ALPHA")), 201);
	assert_int_equal(status_of("agency-housing", "PATCH",
	    "/v1/records/REC-HIDE-R4", hdrs_std(NULL, k4), addr), 200);
	assert_int_equal(status_of("agency-housing", "PATCH",
	    "/v1/records/REC-HIDE-RE", hdrs_std(NULL, ke), addr), 200);
	snprintf(mv4, sizeof(mv4), "{\"record_id\":\"REC-HIDE-R4\",\"to_area\":"
	    "\"suffolk\",\"purpose\":\"offender-move\",\"justification\":"
	    "\"integration test\"}");
	snprintf(mve, sizeof(mve), "{\"record_id\":\"REC-HIDE-RE\",\"to_area\":"
	    "\"suffolk\",\"purpose\":\"offender-move\",\"justification\":"
	    "\"integration test\"}");
	assert_int_equal(status_of("agency-probation", "POST", "/v1/transfers",
	    m4, mv4), 202);
	assert_int_equal(status_of("agency-probation", "POST", "/v1/transfers",
	    me, mve), 202);
	/* One becomes category 4, the other is erased. */
	assert_int_equal(patch_json("agency-police", "REC-HIDE-R4",
	    "{\"category\":4}"), 200);
	assert_int_equal(status_of("agency-police", "DELETE",
	    "/v1/records/REC-HIDE-RE", hdrs_std(NULL, NULL), NULL), 200);
	assert_int_equal(get_status("agency-housing", "REC-HIDE-R4"), 404);

	for (i = 0; i < 2; i++) {
		call("agency-housing", "PATCH", "/v1/records/REC-HIDE-R4",
		    hdrs_std(NULL, pairs[i][0]), addr, &r1);
		call("agency-housing", "PATCH", "/v1/records/REC-HIDE-RE",
		    hdrs_std(NULL, pairs[i][1]), addr, &r2);
		assert_error(&r1, 404, "no such record to patch");
		assert_error(&r2, 404, "no such record to patch");
		header_of(&r1, "Idempotent-Replay", h1, sizeof(h1));
		header_of(&r2, "Idempotent-Replay", h2, sizeof(h2));
		assert_string_equal(h1, "");
		assert_string_equal(h2, "");
		gwt_resp_free(&r1);
		gwt_resp_free(&r2);
	}
	call("agency-probation", "POST", "/v1/transfers", m4, mv4, &r1);
	call("agency-probation", "POST", "/v1/transfers", me, mve, &r2);
	assert_error(&r1, 404, "no such record");
	assert_error(&r2, 404, "no such record");
	gwt_resp_free(&r1);
	gwt_resp_free(&r2);
	/* Nothing was written: police still see category 4, at version 3. */
	assert_int_equal(version_of("REC-HIDE-R4"), 3);
}

static void
test_non_agency_identities(void **state)
{
	static const char *const who[][2] = { { "norfolk", "auditor" },
	    { "norfolk", "gateway" }, { "suffolk", "gateway" },
	    { "suffolk", "auditor" } };
	const char *methods[] = { "GET", "PUT", "DELETE" };
	gwt_resp_t r;
	char err[256];
	size_t i, m;

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-NONAG-1",
	    minimal("REC-NONAG-1", "OMICRON")), 201);
	for (i = 0; i < sizeof(who) / sizeof(who[0]); i++)
		for (m = 0; m < 3; m++) {
			const char *b = strcmp(methods[m], "PUT") == 0 ?
			    minimal("REC-NONAG-1", "PI") : NULL;
			assert_int_equal(gwt_request(&fx.env, &fx.gw, who[i][0],
			    who[i][1], methods[m], "/v1/records/REC-NONAG-1",
			    hdrs_std("not an agency", NULL), b, b ? strlen(b) : 0,
			    &r, err, sizeof(err)), 0);
			assert_error(&r, 403, NULL);
			assert_null(strstr(r.body.data, "OMICRON"));
			gwt_resp_free(&r);
		}
	assert_int_equal(version_of("REC-NONAG-1"), 1);
	/* Each of the twelve refusals is found by a search for the record
	 * (beside the collect entry and version_of's consult). */
	{
		leaf_t l[32];
		int n = audit_for("REC-NONAG-1", l, 32), k, denied = 0;

		for (k = 0; k < n; k++)
			if (strcmp(l[k].op, "deny") == 0 &&
			    strcmp(l[k].reason, "not-an-agency") == 0)
				denied++;
		assert_int_equal(denied, 12);
	}
}

/* Each successful call is answered only after its audit entry exists: the
 * auditor finds it straight after the answer, with no wait. */
static void
test_answer_after_audit(void **state)
{
	leaf_t l[64];
	gwt_resp_t r;
	int n0, n;

	(void)state;
	n0 = audit_for("REC-AUD-1", l, 64);
	assert_int_equal(n0, 0);

	assert_int_equal(put_json("agency-police", "REC-AUD-1",
	    minimal("REC-AUD-1", "RHO")), 201);
	n = audit_for("REC-AUD-1", l, 64);
	assert_int_equal(n, 1);
	assert_string_equal(l[0].op, "collect");
	assert_int_equal(l[0].version, 1);
	assert_string_equal(l[0].result, "ok");
	assert_string_equal(l[0].actor, "urn:visor:norfolk:agency:police");
	assert_int_equal(strlen(l[0].digest), 64);

	assert_int_equal(patch_json("agency-police", "REC-AUD-1",
	    "{\"risk\":{\"rosh\":\"low\"}}"), 200);
	n = audit_for("REC-AUD-1", l, 64);
	assert_int_equal(n, 2);
	assert_string_equal(l[1].op, "alter");
	assert_int_equal(l[1].version, 2);
	assert_string_equal(l[1].fields, "risk.rosh");

	call("agency-housing", "GET", "/v1/records/REC-AUD-1",
	    hdrs_std("housing check", NULL), NULL, &r);
	assert_int_equal(r.status, 200);
	gwt_resp_free(&r);
	n = audit_for("REC-AUD-1", l, 64);
	assert_int_equal(n, 3);
	assert_string_equal(l[2].op, "consult");
	assert_string_equal(l[2].actor, "urn:visor:norfolk:agency:housing");
	assert_int_equal(l[2].version, 2);
	/* Housing are not given the gender. */
	assert_non_null(strstr(l[2].withheld, "person.gender"));
	assert_null(strstr(l[2].fields, "person.gender"));

	call("agency-police", "GET", "/v1/records/REC-AUD-1/history",
	    hdrs_std("history check", NULL), NULL, &r);
	assert_int_equal(r.status, 200);
	gwt_resp_free(&r);
	n = audit_for("REC-AUD-1", l, 64);
	assert_int_equal(n, 4);
	assert_string_equal(l[3].op, "consult");

	assert_int_equal(status_of("agency-police", "DELETE", "/v1/records/REC-AUD-1",
	    hdrs_std(NULL, NULL), NULL), 200);
	n = audit_for("REC-AUD-1", l, 64);
	assert_int_equal(n, 5);
	assert_string_equal(l[4].op, "erase");
	assert_int_equal(l[4].version, 2);

	/* A denied request is logged too, before its answer. */
	assert_int_equal(put_json("agency-education", "REC-AUD-2",
	    minimal("REC-AUD-2", "SIGMA")), 403);
	n = audit_for("REC-AUD-2", l, 64);
	assert_int_equal(n, 1);
	assert_string_equal(l[0].op, "deny");
}

/* An empty object ("health": {}) holds no field, and what a write changes
 * is found leaf by leaf: before, housing (which writes addresses) and
 * police (which do not write health) could store an empty health group,
 * and the monitoring group, in a record; the policy checked no path and
 * the alter entries named none, yet the stored record (its digest)
 * changed.  Now such a member is not stored: each of these writes stores
 * the record as it was. */
static void
test_empty_object_writes_nothing(void **state)
{
	leaf_t l[16];
	char body[600];
	int n, i;

	(void)state;
	assert_int_equal(put_json("agency-probation", "REC-EMPTY-1",
	    minimal("REC-EMPTY-1", "UPSILON")), 201);
	assert_int_equal(patch_json("agency-housing", "REC-EMPTY-1",
	    "{\"health\":{},\"em\":{}}"), 200);
	/* Police PUT what they read, with an empty health group. */
	snprintf(body, sizeof(body), "%.*s,\"health\":{}}",
	    (int)strlen(minimal("REC-EMPTY-1", "UPSILON")) - 1,
	    minimal("REC-EMPTY-1", "UPSILON"));
	assert_int_equal(put_json("agency-police", "REC-EMPTY-1", body), 200);
	/* Emptying a group the caller writes removes the group. */
	assert_int_equal(patch_json("agency-probation", "REC-EMPTY-1",
	    "{\"risk\":{\"rosh\":\"low\"}}"), 200);
	assert_int_equal(patch_json("agency-probation", "REC-EMPTY-1",
	    "{\"risk\":{\"rosh\":null}}"), 200);

	n = audit_for("REC-EMPTY-1", l, 16);
	assert_int_equal(n, 5);
	assert_string_equal(l[0].op, "collect");
	for (i = 1; i < 3; i++) {
		assert_string_equal(l[i].op, "alter");
		assert_string_equal(l[i].fields, "");
		if (strcmp(l[i].digest, l[0].digest) != 0)
			fail_msg("write %d (fields none) changed the stored "
			    "record: digest %s, was %s", i, l[i].digest,
			    l[0].digest);
	}
	assert_string_equal(l[3].fields, "risk.rosh");
	assert_string_equal(l[4].fields, "risk.rosh");
	assert_string_equal(l[4].digest, l[0].digest);
}

/* A record with nothing beyond the core (a placeholder created before the
 * details are known) is readable by every permitted reader, core only; a
 * record whose only other group a reader may not see stays refused. */
static void
test_core_only_record(void **state)
{
	cJSON *got;
	gwt_resp_t r;
	char err[256];

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-CORE-1",
	    "{\"id\":\"REC-CORE-1\",\"managing_area\":\"norfolk\","
	    "\"category\":2,\"level\":1}"), 201);
	got = get_record("agency-police", "REC-CORE-1");
	assert_non_null(got);
	assert_keys(got, "category,id,level,managing_area,version", "police core");
	cJSON_Delete(got);
	got = get_record("agency-education", "REC-CORE-1");
	assert_non_null(got);
	assert_keys(got, "category,id,level,managing_area,version", "education core");
	cJSON_Delete(got);
	/* No rule for another area's agency: still refused (no record). */
	assert_int_equal(gwt_request(&fx.env, &fx.gw, "suffolk", "agency-police",
	    "GET", "/v1/records/REC-CORE-1", hdrs_std("core look", NULL), NULL, 0,
	    &r, err, sizeof(err)), 0);
	assert_error(&r, 404, "no such record");
	gwt_resp_free(&r);

	/* Core and health: education sees nothing beyond the core. */
	assert_int_equal(put_json("agency-probation", "REC-CORE-2",
	    "{\"id\":\"REC-CORE-2\",\"managing_area\":\"norfolk\","
	    "\"category\":2,\"level\":1,\"health\":{\"notes\":[\"n\"]}}"), 201);
	assert_int_equal(get_status("agency-education", "REC-CORE-2"), 404);
	assert_int_equal(get_status("agency-probation", "REC-CORE-2"), 200);
}

/* The versions in a history as who sees them: their numbers in order
 * into v (at most n), the changed paths of each joined with ',' into
 * changed[i]; returns the count. */
static int
history_seen(const char *who, const char *id, int *v, char (*changed)[1024],
    int n)
{
	char path[120];
	gwt_resp_t r;
	cJSON *j, *it, *p;
	size_t len;
	int k = 0;

	snprintf(path, sizeof(path), "/v1/records/%s/history", id);
	call(who, "GET", path, hdrs_std("history check", NULL), NULL, &r);
	assert_int_equal(r.status, 200);
	j = cJSON_ParseWithLength(r.body.data, r.body.len);
	gwt_resp_free(&r);
	assert_non_null(j);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "versions")) {
		assert_true(k < n);
		v[k] = (int)cJSON_GetObjectItem(it, "version")->valuedouble;
		changed[k][0] = '\0';
		len = 0;
		cJSON_ArrayForEach(p, cJSON_GetObjectItem(it, "changed")) {
			len += (size_t)snprintf(changed[k] + len, sizeof(changed[k]) -
			    len, "%s%s", len > 0 ? "," : "", p->valuestring);
			assert_true(len < sizeof(changed[k]));
		}
		k++;
	}
	cJSON_Delete(j);
	return k;
}

/* The history of id as who reads it: the versions array printed, from
 * one request with query q ("" for none); *next the next_before it gave
 * (0 if none).  The caller frees. */
static char *
history_page(const char *who, const char *id, const char *q, long *next)
{
	char path[160];
	gwt_resp_t r;
	cJSON *j;
	const cJSON *nb;
	char *s;

	snprintf(path, sizeof(path), "/v1/records/%s/history%s", id, q);
	call(who, "GET", path, hdrs_std("history check", NULL), NULL, &r);
	if (r.status != 200)
		fail_msg("%s as %s: %ld %.*s", path, who, r.status,
		    (int)r.body.len, r.body.data);
	j = cJSON_ParseWithLength(r.body.data, r.body.len);
	gwt_resp_free(&r);
	assert_non_null(j);
	nb = cJSON_GetObjectItem(j, "next_before");
	*next = cJSON_IsNumber(nb) ? (long)nb->valuedouble : 0;
	s = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "versions"));
	cJSON_Delete(j);
	assert_non_null(s);
	return s;
}

/* Read id's whole history as who a page of limit versions at a time,
 * newest page first, and check that the pages put together, oldest
 * first, are the history read in one answer. */
static void
history_pages_match(const char *who, const char *id, int limit)
{
	char q[64], *whole, *page;
	cJSON *all, *got, *pj, *it;
	long next, before = 0, guard = 0;

	whole = history_page(who, id, "", &next);
	assert_int_equal(next, 0);
	all = cJSON_Parse(whole);
	got = cJSON_CreateArray();
	do {
		if (before > 0)
			snprintf(q, sizeof(q), "?limit=%d&before=%ld", limit,
			    before);
		else
			snprintf(q, sizeof(q), "?limit=%d", limit);
		page = history_page(who, id, q, &next);
		pj = cJSON_Parse(page);
		free(page);
		assert_true(cJSON_GetArraySize(pj) <= limit);
		/* Older pages go before what was read so far. */
		while ((it = cJSON_GetArrayItem(pj, cJSON_GetArraySize(pj) - 1))
		    != NULL)
			cJSON_InsertItemInArray(got, 0,
			    cJSON_DetachItemViaPointer(pj, it));
		cJSON_Delete(pj);
		assert_true(before == 0 || (next >= 0 && next < before));
		before = next;
		assert_true(++guard < 100);
	} while (before > 0);
	if (!cJSON_Compare(all, got, 1)) {
		char *g = cJSON_PrintUnformatted(got);

		fail_msg("%s, pages of %d: %s\nwhole: %s", who, limit, g, whole);
	}
	cJSON_Delete(all);
	cJSON_Delete(got);
	free(whole);
}

/* visorctl get ID --history --page 2 as Norfolk police, with the
 * justification just (none if NULL); its exit status, out and err. */
static int
visorctl_history(const char *id, const char *just, buf_t *out, buf_t *err)
{
	char url[64], cert[600];
	const char *argv[20];
	size_t n = 0;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d", fx.gw.port);
	snprintf(cert, sizeof(cert), "%s/pki/norfolk/agency-police.crt",
	    fx.env.dir);
	argv[n++] = gwt_prog(&fx.env, "visorctl");
	argv[n++] = "get";
	argv[n++] = id;
	argv[n++] = "--history";
	argv[n++] = "--page";
	argv[n++] = "2";
	argv[n++] = "--gateway";
	argv[n++] = url;
	argv[n++] = "--cert";
	argv[n++] = cert;
	argv[n++] = "--actor";
	argv[n++] = "PC-1";
	argv[n++] = "--purpose";
	argv[n++] = "risk-management";
	if (just != NULL) {
		argv[n++] = "--justification";
		argv[n++] = just;
	}
	argv[n] = NULL;
	buf_init(out, 0);
	buf_init(err, 0);
	return gwt_run(argv, NULL, 0, out, err);
}

/*
 * A history is answered a page at a time: at most limit versions below
 * before, newest pages first.  Each page holds what the whole history
 * shows in it, no more: an erased life stays police-only on every page,
 * and a change within the year stays hidden from housing at a page's
 * first version as elsewhere.  Before, the whole history was read and
 * filtered for every request, about 37 us a version (190 ms for 5,000).
 */
static void
test_history_pages(void **state)
{
	static const char *const who[] = { "agency-police",
		"agency-probation", "agency-housing" };
	static const char *const bad[] = { "?limit=0", "?limit=1001",
		"?before=0", "?before=x", "?limit=-1", "?limit=2&limit=2",
		"?before=3&before=4", "?after=2", "?limit=", "?limit=+1" };
	const char *id = "REC-PAGE-1";
	char path[160], *s;
	gwt_resp_t r;
	long next;
	size_t i;
	int limit;

	(void)state;
	assert_int_equal(put_json("agency-police", id, minimal(id, "PAGEA")), 201);
	assert_int_equal(patch_json("agency-police", id,
	    "{\"person\":{\"dob\":\"1980-01-01\"}}"), 200);
	assert_int_equal(patch_json("agency-police", id,
	    "{\"person\":{\"dob\":\"1980-06-01\"}}"), 200);
	assert_int_equal(patch_json("agency-police", id,
	    "{\"risk\":{\"rosh\":\"medium\"}}"), 200);
	assert_int_equal(status_of("agency-police", "DELETE",
	    "/v1/records/REC-PAGE-1", hdrs_std(NULL, NULL), NULL), 200);
	assert_int_equal(put_json("agency-probation", id, minimal(id, "PAGEB")),
	    201);
	assert_int_equal(patch_json("agency-probation", id,
	    "{\"risk\":{\"rosh\":\"high\"}}"), 200);
	assert_int_equal(patch_json("agency-probation", id,
	    "{\"person\":{\"dob\":\"1981-03-03\"}}"), 200);
	assert_int_equal(patch_json("agency-probation", id,
	    "{\"person\":{\"dob\":\"1981-04-04\"}}"), 200);

	for (i = 0; i < sizeof(who) / sizeof(who[0]); i++)
		for (limit = 1; limit <= 4; limit++)
			history_pages_match(who[i], id, limit);
	/* Nothing of the erased life on an older page for probation. */
	s = history_page("agency-probation", id, "?before=6", &next);
	assert_string_equal(s, "[]");
	free(s);
	s = history_page("agency-police", id, "?before=6&limit=2", &next);
	assert_non_null(strstr(s, "\"version\":5"));
	assert_non_null(strstr(s, "\"op\":\"erase\""));
	assert_int_equal(next, 4);
	free(s);
	/* A cursor below the first version is an empty page. */
	s = history_page("agency-police", id, "?before=1", &next);
	assert_string_equal(s, "[]");
	assert_int_equal(next, 0);
	free(s);

	/* visorctl get --history follows the pages and prints them whole,
	 * as one answer; a refusal is its exit status 1 with the reason. */
	{
		buf_t out, err;
		cJSON *a, *b;
		char *whole;

		assert_int_equal(visorctl_history(id, NULL, &out, &err), 1);
		assert_non_null(strstr(err.data, "X-Visor-Justification"));
		buf_free(&out);
		buf_free(&err);
		if (visorctl_history(id, "history check", &out, &err) != 0)
			fail_msg("visorctl get --history: %s", err.data);
		whole = history_page("agency-police", id, "", &next);
		a = cJSON_Parse(whole);
		b = cJSON_Parse(out.data);
		assert_non_null(b);
		assert_string_equal(cJSON_GetObjectItem(b, "id")->valuestring, id);
		assert_null(cJSON_GetObjectItem(b, "next_before"));
		assert_true(cJSON_GetArraySize(a) > 4);
		assert_true(cJSON_Compare(a, cJSON_GetObjectItem(b, "versions"), 1));
		cJSON_Delete(a);
		cJSON_Delete(b);
		free(whole);
		buf_free(&out);
		buf_free(&err);
	}

	/* Erased again: the police's history pages as well. */
	assert_int_equal(status_of("agency-police", "DELETE",
	    "/v1/records/REC-PAGE-1", hdrs_std(NULL, NULL), NULL), 200);
	for (limit = 1; limit <= 3; limit++)
		history_pages_match("agency-police", id, limit);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "/v1/records/%s/history%s", id,
		    bad[i]);
		call("agency-police", "GET", path, hdrs_std("history check",
		    NULL), NULL, &r);
		if (r.status != 400 || strstr(r.body.data, "bad-query") == NULL)
			fail_msg("%s: %ld %.*s", bad[i], r.status,
			    (int)r.body.len, r.body.data);
		gwt_resp_free(&r);
	}
}

/*
 * A record's history is read as each version was, not only as the record
 * is now.  Before, a category 4 record lowered to category 1 showed its
 * category 4 versions (when, who, which fields) to everyone who may read
 * category 1, and the version that lowered it said that it had been
 * something else.
 */
static void
test_history_by_version(void **state)
{
	int v[16], n;
	char ch[16][1024];

	(void)state;
	/* Police hold ct in the quickstart configuration. */
	assert_int_equal(put_json("agency-police", "REC-HIST-4",
	    "{\"id\":\"REC-HIST-4\",\"managing_area\":\"norfolk\","
	    "\"category\":4,\"level\":2,\"person\":{\"surname\":\"SIGMA\"}}"),
	    201);
	assert_int_equal(patch_json("agency-police", "REC-HIST-4",
	    "{\"rmp\":{\"summary\":\"ct plan\"}}"), 200);
	assert_int_equal(get_status("agency-probation", "REC-HIST-4"), 404);
	assert_int_equal(patch_json("agency-police", "REC-HIST-4",
	    "{\"category\":1}"), 200);
	assert_int_equal(get_status("agency-probation", "REC-HIST-4"), 200);
	assert_int_equal(patch_json("agency-probation", "REC-HIST-4",
	    "{\"rmp\":{\"summary\":\"probation plan\"}}"), 200);

	/* Probation sees only what it could read when it was written. */
	n = history_seen("agency-probation", "REC-HIST-4", v, ch, 16);
	assert_int_equal(n, 1);
	assert_int_equal(v[0], 4);
	assert_string_equal(ch[0], "rmp.summary");
	/* Police saw it all along. */
	n = history_seen("agency-police", "REC-HIST-4", v, ch, 16);
	assert_int_equal(n, 4);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 2);
	assert_string_equal(ch[1], "rmp.summary");
	assert_int_equal(v[2], 3);
	assert_string_equal(ch[2], "category");
	assert_int_equal(v[3], 4);
}

/*
 * A write that changed nothing is left out of the history like one that
 * changed only what the caller does not read.  Before, it was shown (with
 * no changed path), so a caller that may write a field it may not read
 * learnt the stored value by writing a guess: prison writes em but does
 * not read it, and saw its version only when the guess was the value
 * stored.
 */
static void
test_history_no_write_oracle(void **state)
{
	int v[16], n;
	char ch[16][1024];

	(void)state;
	assert_int_equal(put_json("agency-probation", "REC-HIST-EM",
	    "{\"id\":\"REC-HIST-EM\",\"managing_area\":\"norfolk\","
	    "\"category\":2,\"level\":1,\"person\":{\"surname\":\"TAU\"},"
	    "\"em\":{\"active\":true},\"associates\":[\"synthetic\"]}"), 201);
	/* Prison writes em (SPEC 7) but reads no monitoring. */
	assert_int_equal(patch_json("agency-prison", "REC-HIST-EM",
	    "{\"em\":{\"active\":true}}"), 200);	/* the stored value */
	n = history_seen("agency-prison", "REC-HIST-EM", v, ch, 16);
	assert_int_equal(n, 1);
	assert_int_equal(v[0], 1);
	assert_int_equal(patch_json("agency-prison", "REC-HIST-EM",
	    "{\"em\":{\"active\":false}}"), 200);	/* another value */
	n = history_seen("agency-prison", "REC-HIST-EM", v, ch, 16);
	assert_int_equal(n, 1);
	/* Probation writes associates but reads only vehicles of intelligence. */
	assert_int_equal(patch_json("agency-probation", "REC-HIST-EM",
	    "{\"associates\":[\"synthetic\"]}"), 200);
	n = history_seen("agency-probation", "REC-HIST-EM", v, ch, 16);
	assert_int_equal(n, 2);	/* the creation and prison's change of em */
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 3);
	assert_string_equal(ch[1], "em.active");
}

/* A field the caller reads only in part: a change it cannot see (the dob
 * within its year, an order's expiry when housing reads prohibitions) is
 * not listed; one it can see is.  Before, housing's history listed
 * person.dob for a day's correction, and orders for a new expiry date. */
static void
test_history_partial_fields(void **state)
{
	char *body = rich_as("REC-PART-1", 2, 2);
	int v[16], n;
	char ch[16][1024];

	(void)state;
	assert_int_equal(put_json("agency-probation", "REC-PART-1", body), 201);
	free(body);
	assert_int_equal(patch_json("agency-probation", "REC-PART-1",
	    "{\"person\":{\"dob\":\"1984-08-01\"}}"), 200);	/* v2 */
	assert_int_equal(patch_json("agency-probation", "REC-PART-1",
	    "{\"orders\":[{\"type\":\"SHPO\",\"made\":\"2023-02-01\","
	    "\"expires\":\"2029-02-01\",\"prohibitions\":[\"no unsupervised "
	    "contact with children\",\"no internet without monitoring\"]}]}"),
	    200);						/* v3 */
	assert_int_equal(patch_json("agency-probation", "REC-PART-1",
	    "{\"person\":{\"dob\":\"1985-08-01\"}}"), 200);	/* v4 */
	n = history_seen("agency-housing", "REC-PART-1", v, ch, 16);
	assert_int_equal(n, 2);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 4);
	assert_string_equal(ch[1], "person.dob");
	/* Probation reads all three changes. */
	n = history_seen("agency-probation", "REC-PART-1", v, ch, 16);
	assert_int_equal(n, 4);
	assert_string_equal(ch[1], "person.dob");
	assert_string_equal(ch[2], "orders");
}

/* Police without ct and the history of an erased category 4 record.
 * Before, any police of the area read it (when, who, which fields), as if
 * the category no longer mattered once the content was gone.  The erasure
 * keeps the record's core, sealed, for that decision: a category 1
 * record's history stays open to the same police. */
static void
test_erased_history_needs_ct(void **state)
{
	char cfgpath[600], *old;
	cJSON *j, *cl;

	(void)state;
	{
		cJSON *rec = cJSON_Duplicate(fx.rich, 1);
		char *body;

		cJSON_ReplaceItemInObject(rec, "id", cJSON_CreateString("REC-ER4-1"));
		cJSON_ReplaceItemInObject(rec, "category", cJSON_CreateNumber(4));
		cJSON_DeleteItemFromObject(rec, "health");
		body = cJSON_PrintUnformatted(rec);
		assert_int_equal(put_json("agency-police", "REC-ER4-1", body), 201);
		free(body);
		cJSON_Delete(rec);
	}
	assert_int_equal(status_of("agency-police", "DELETE",
	    "/v1/records/REC-ER4-1", hdrs_std("erasure test", NULL), NULL), 200);
	assert_int_equal(status_of("agency-police", "GET",
	    "/v1/records/REC-ER4-1/history", hdrs_std("history check", NULL),
	    NULL), 200);
	/* And a category 1 record, erased too. */
	assert_int_equal(put_json("agency-police", "REC-ER1-1",
	    minimal("REC-ER1-1", "OMEGA")), 201);
	assert_int_equal(status_of("agency-police", "DELETE",
	    "/v1/records/REC-ER1-1", hdrs_std("erasure test", NULL), NULL), 200);

	/* The same police, its ct withdrawn (a reload). */
	snprintf(cfgpath, sizeof(cfgpath), "%s", gwt_path(&fx.env,
	    "norfolk/gateway.json"));
	assert_int_equal(file_read_all(cfgpath, 1 << 20, &old, &(size_t){0}), 0);
	j = gwt_json_load(cfgpath);
	assert_non_null(j);
	cl = cJSON_GetObjectItemCaseSensitive(j, "clearances");
	assert_non_null(cJSON_GetObjectItemCaseSensitive(cl,
	    "urn:visor:norfolk:agency:police"));
	cJSON_DeleteItemFromObjectCaseSensitive(cl,
	    "urn:visor:norfolk:agency:police");
	assert_int_equal(gwt_json_save(cfgpath, j), 0);
	cJSON_Delete(j);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	assert_int_equal(status_of("agency-police", "GET",
	    "/v1/records/REC-ER4-1/history", hdrs_std("history check", NULL),
	    NULL), 404);
	/* The erasure kept the record's category: category 1 stays open. */
	assert_int_equal(status_of("agency-police", "GET",
	    "/v1/records/REC-ER1-1/history", hdrs_std("history check", NULL),
	    NULL), 200);
	assert_int_equal(file_write_atomic(cfgpath, old, strlen(old), 0644), 0);
	free(old);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	assert_int_equal(status_of("agency-police", "GET",
	    "/v1/records/REC-ER4-1/history", hdrs_std("history check", NULL),
	    NULL), 200);
}

/* The version numbers of a history as who sees it, into v (at most n). */
static int
versions_seen(const char *who, const char *id, int *v, int n)
{
	static char changed[16][1024];

	assert_true(n <= 16);
	return history_seen(who, id, v, changed, n);
}

/* Police without ct withdrawn, and the history of an id whose category 4
 * record was erased and then used again for a category 1 record.  The
 * erased record's versions must be refused as its own history is
 * (test_erased_history_needs_ct), not read as the record now is; the new
 * record's versions stay open. */
static void
test_erased_reused_history_needs_ct(void **state)
{
	char cfgpath[600], *old, *text;
	int v[16], n, v2[16], n2;
	cJSON *j, *cl;

	(void)state;
	put_cat4_as_police("REC-ER4-R");
	assert_int_equal(patch_json("agency-police", "REC-ER4-R",
	    "{\"rmp\":{\"summary\":\"ct plan\"}}"), 200);
	assert_int_equal(status_of("agency-police", "DELETE",
	    "/v1/records/REC-ER4-R", hdrs_std("erasure test", NULL), NULL), 200);
	assert_int_equal(put_json("agency-police", "REC-ER4-R",
	    minimal("REC-ER4-R", "NEWLIFE")), 201);
	assert_int_equal(patch_json("agency-police", "REC-ER4-R",
	    "{\"person\":{\"surname\":\"NEWLIFE2\"}}"), 200);
	/* With ct: all of it. */
	n = versions_seen("agency-police", "REC-ER4-R", v, 16);
	assert_int_equal(n, 5);

	snprintf(cfgpath, sizeof(cfgpath), "%s", gwt_path(&fx.env,
	    "norfolk/gateway.json"));
	assert_int_equal(file_read_all(cfgpath, 1 << 20, &old, &(size_t){0}), 0);
	j = cJSON_Parse(old);
	assert_non_null(j);
	cl = cJSON_GetObjectItemCaseSensitive(j, "clearances");
	cJSON_DeleteItemFromObjectCaseSensitive(cl,
	    "urn:visor:norfolk:agency:police");
	text = cJSON_Print(j);
	cJSON_Delete(j);
	assert_int_equal(file_write_atomic(cfgpath, text, strlen(text), 0644), 0);
	free(text);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	n = versions_seen("agency-police", "REC-ER4-R", v, 16);
	/* Erased again: the second erasure (version 6) is of a category 1
	 * record, and must not open the first record's versions either. */
	assert_int_equal(status_of("agency-police", "DELETE",
	    "/v1/records/REC-ER4-R", hdrs_std("erasure test", NULL), NULL), 200);
	n2 = versions_seen("agency-police", "REC-ER4-R", v2, 16);
	assert_int_equal(file_write_atomic(cfgpath, old, strlen(old), 0644), 0);
	free(old);
	assert_int_equal(gwt_gw_hup(&fx.gw), 0);
	/* Nothing of the erased category 4 record (versions 1-3); the new
	 * record's creation and change (4, 5) are there. */
	assert_int_equal(n, 2);
	assert_int_equal(v[0], 4);
	assert_int_equal(v[1], 5);
	assert_int_equal(n2, 3);
	assert_int_equal(v2[0], 4);
	assert_int_equal(v2[1], 5);
	assert_int_equal(v2[2], 6);
	/* With ct back: all of it. */
	assert_int_equal(versions_seen("agency-police", "REC-ER4-R", v, 16), 6);
}

/* A read's entry says what went out reduced.  Before, housing's consult
 * entry listed person.dob as disclosed, nothing saying only the year
 * went. */
static void
test_audit_names_transformed(void **state)
{
	static leaf_t l[64];
	char *body = rich_as("REC-TRF-1", 2, 2);
	cJSON *got;
	int n, i, seen = 0;

	(void)state;
	assert_int_equal(put_json("agency-probation", "REC-TRF-1", body), 201);
	free(body);
	got = get_record("agency-housing", "REC-TRF-1");
	assert_non_null(got);
	cJSON_Delete(got);
	got = get_record("agency-police", "REC-TRF-1");
	assert_non_null(got);
	cJSON_Delete(got);
	n = audit_for("REC-TRF-1", l, 64);
	assert_true(n > 0);
	for (i = 0; i < n; i++) {
		if (strcmp(l[i].op, "consult") != 0)
			continue;
		if (strstr(l[i].actor, ":housing") != NULL) {
			assert_non_null(strstr(l[i].fields, "person.dob"));
			assert_non_null(strstr(l[i].transformed, "person.dob"));
			seen++;
		} else if (strstr(l[i].actor, ":police") != NULL) {
			assert_string_equal(l[i].transformed, "");
			seen++;
		}
	}
	assert_int_equal(seen, 2);
}

/* ------------------------------------------------------- concurrency */

#define WRITERS 8
#define PATCHES_EACH 25

#define NVERSIONS (1 + WRITERS + WRITERS * PATCHES_EACH)

static const char *const writer_field[WRITERS] = { "risk.factors",
    "risk.people_at_risk", "rmp.actions", "licence.conditions", "health.notes",
    "associates", "financial", "rmp.summary" };

typedef struct {
	int index;
	https_client_t *client;
	char url[128];
	int done;
	int conflicts;
	char err[256];
} writer_t;

/* {"risk":{"factors":["w0-init","w0-1",...,"w0-n"]}} for writer w. */
static void
writer_patch(int w, int n, buf_t *b)
{
	const char *f = writer_field[w], *dot = strchr(f, '.');
	int i;

	buf_reset(b);
	if (dot != NULL)
		buf_printf(b, "{\"%.*s\":{\"%s\":", (int)(dot - f), f, dot + 1);
	else
		buf_printf(b, "{\"%s\":", f);
	if (w == WRITERS - 1) {
		buf_printf(b, "\"w%d change %d\"", w, n);
	} else {
		buf_printf(b, "[\"w%d-init\"", w);
		for (i = 1; i <= n; i++)
			buf_printf(b, ",\"w%d-%d\"", w, i);
		buf_puts(b, "]");
	}
	buf_puts(b, dot != NULL ? "}}" : "}");
}

static void *
writer_main(void *arg)
{
	writer_t *wr = arg;
	static const char *const h[] = { "X-Visor-Actor: CONC",
	    "X-Visor-Purpose: risk-management",
	    "Content-Type: application/merge-patch+json", NULL };
	https_response_t resp;
	buf_t body = BUF_INIT;
	int i, tries;

	for (i = 1; i <= PATCHES_EACH; i++) {
		writer_patch(wr->index, i, &body);
		for (tries = 0; tries < 200; tries++) {
			if (https_client_call(wr->client, "PATCH", wr->url, h, body.data,
			    body.len, &resp, wr->err, sizeof(wr->err)) < 0) {
				https_response_free(&resp);
				goto out;
			}
			if (resp.status == 200)
				break;
			if (resp.status != 409) {
				snprintf(wr->err, sizeof(wr->err), "PATCH %d: status %ld: %s",
				    i, resp.status, resp.body.data ? resp.body.data : "");
				https_response_free(&resp);
				goto out;
			}
			wr->conflicts++;
			https_response_free(&resp);
			sleep_ms(1 + rand() % 5);
		}
		https_response_free(&resp);
		if (tries == 200) {
			snprintf(wr->err, sizeof(wr->err), "PATCH %d: always 409", i);
			goto out;
		}
		wr->done++;
	}
out:
	buf_free(&body);
	return NULL;
}

static void
test_concurrent_writers(void **state)
{
	writer_t wr[WRITERS];
	pthread_t th[WRITERS];
	https_client_options_t opt;
	buf_t init = BUF_INIT, b = BUF_INIT;
	char cert[600], key[600], root[600], path[120];
	int w, per[WRITERS], total = 0, v, k;
	unsigned char seen[NVERSIONS + 1];
	gwt_resp_t r;
	cJSON *j, *vs, *it, *ch, *police;

	(void)state;
	/* Version 1 holds every writer's field with its initial value. */
	buf_puts(&init, "{\"id\":\"REC-CONC-1\",\"managing_area\":\"norfolk\","
	    "\"category\":2,\"level\":2,\"person\":{\"surname\":\"TAU\"}}");
	assert_int_equal(put_json("agency-probation", "REC-CONC-1", init.data), 201);
	for (w = 0; w < WRITERS; w++) {
		writer_patch(w, 0, &b);
		assert_int_equal(patch_json("agency-probation", "REC-CONC-1", b.data),
		    200);
	}
	buf_free(&init);
	v = (int)version_of("REC-CONC-1");
	assert_int_equal(v, 1 + WRITERS);

	snprintf(cert, sizeof(cert), "%s", gwt_path(&fx.env,
	    "pki/norfolk/agency-probation.crt"));
	snprintf(key, sizeof(key), "%s", gwt_path(&fx.env,
	    "pki/norfolk/agency-probation.key"));
	snprintf(root, sizeof(root), "%s", gwt_path(&fx.env, "pki/root.crt"));
	memset(&opt, 0, sizeof(opt));
	opt.cert = cert;
	opt.key = key;
	opt.root = root;
	opt.expect_identity = "urn:visor:norfolk:gateway";
	opt.timeout_ms = 30000;
	for (w = 0; w < WRITERS; w++) {
		memset(&wr[w], 0, sizeof(wr[w]));
		wr[w].index = w;
		snprintf(wr[w].url, sizeof(wr[w].url),
		    "https://127.0.0.1:%d/v1/records/REC-CONC-1", fx.gw.port);
		wr[w].client = https_client_new(&opt, wr[w].err, sizeof(wr[w].err));
		assert_non_null(wr[w].client);
	}
	for (w = 0; w < WRITERS; w++)
		assert_int_equal(pthread_create(&th[w], NULL, writer_main, &wr[w]), 0);
	for (w = 0; w < WRITERS; w++)
		pthread_join(th[w], NULL);
	for (w = 0; w < WRITERS; w++) {
		https_client_free(wr[w].client);
		total += wr[w].conflicts;
		if (wr[w].done != PATCHES_EACH)
			fail_msg("writer %d: %d of %d done: %s", w, wr[w].done,
			    PATCHES_EACH, wr[w].err);
	}

	print_message("concurrent writers: %d PATCHes, %d answered 409 and "
	    "retried\n", WRITERS * PATCHES_EACH, total);
	total = 0;
	/* Every change is in the final record (probation do not read
	 * associates and financial: police do). */
	j = get_record("agency-probation", "REC-CONC-1");
	assert_non_null(j);
	police = get_record("agency-police", "REC-CONC-1");
	assert_non_null(police);
	for (w = 0; w < WRITERS; w++) {
		const char *f = writer_field[w], *dot = strchr(f, '.');
		const cJSON *val;
		char name[40];
		char *want, *gotp;

		if (dot != NULL) {
			snprintf(name, sizeof(name), "%.*s", (int)(dot - f), f);
			val = cJSON_GetObjectItem(cJSON_GetObjectItem(j, name), dot + 1);
		} else {
			val = cJSON_GetObjectItem(police, f);
		}
		if (val == NULL)
			fail_msg("writer %d: %s missing from the final record", w, f);
		writer_patch(w, PATCHES_EACH, &b);
		want = strstr(b.data, dot ? dot + 1 : f);
		gotp = cJSON_PrintUnformatted(val);
		assert_non_null(strstr(want, gotp));
		free(gotp);
	}
	assert_int_equal((int)cJSON_GetObjectItem(j, "version")->valuedouble,
	    1 + WRITERS + WRITERS * PATCHES_EACH);
	cJSON_Delete(j);
	cJSON_Delete(police);
	buf_free(&b);

	/* Versions are contiguous, and each one changed exactly one writer's
	 * field: no write was based on a stale version (a lost update would
	 * show as a version that also reverts another writer's field).  Each
	 * reader's history leaves out the versions that changed only what it
	 * may not read (probation: associates, financial; police: health), so
	 * the two together hold every version. */
	memset(per, 0, sizeof(per));
	memset(seen, 0, sizeof(seen));
	for (k = 0; k < 2; k++) {
		snprintf(path, sizeof(path), "/v1/records/REC-CONC-1/history");
		call(k ? "agency-police" : "agency-probation", "GET", path,
		    hdrs_std("history check", NULL), NULL, &r);
		assert_int_equal(r.status, 200);
		j = cJSON_ParseWithLength(r.body.data, r.body.len);
		gwt_resp_free(&r);
		assert_non_null(j);
		vs = cJSON_GetObjectItem(j, "versions");
		assert_true(cJSON_GetArraySize(vs) < NVERSIONS);
		cJSON_ArrayForEach(it, vs) {
			v = (int)cJSON_GetObjectItem(it, "version")->valuedouble;
			assert_true(v >= 1 && v <= NVERSIONS);
			ch = cJSON_GetObjectItem(it, "changed");
			if (v > 1 + WRITERS && cJSON_GetArraySize(ch) != 1)
				fail_msg("version %d changed %d paths", v,
				    cJSON_GetArraySize(ch));
			if (seen[v]++ || v <= 1 + WRITERS)
				continue;
			for (w = 0; w < WRITERS; w++)
				if (strcmp(cJSON_GetArrayItem(ch, 0)->valuestring,
				    writer_field[w]) == 0)
					break;
			if (w == WRITERS)
				fail_msg("version %d changed %s", v,
				    cJSON_GetArrayItem(ch, 0)->valuestring);
			per[w]++;
			total++;
		}
		cJSON_Delete(j);
	}
	for (v = 1; v <= NVERSIONS; v++)
		if (!seen[v])
			fail_msg("version %d is in neither history", v);
	for (w = 0; w < WRITERS; w++)
		assert_int_equal(per[w], PATCHES_EACH);
	assert_int_equal(total, WRITERS * PATCHES_EACH);
	assert_int_equal(audit_count_op("REC-CONC-1", "alter"),
	    WRITERS + WRITERS * PATCHES_EACH);
}

/* ------------------------------------------------- encryption at rest */

static int
file_contains(const char *path, const char *needle, size_t nlen)
{
	char *data = NULL;
	size_t len, i;
	int found = 0;

	if (file_read_all(path, 512 << 20, &data, &len) < 0)
		return -1;
	for (i = 0; !found && len >= nlen && i <= len - nlen; i++)
		found = memcmp(data + i, needle, nlen) == 0;
	free(data);
	return found;
}

static int
scan_dir(const char *dir, const char *needle, int *files, char *hit,
    size_t hitlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	char p[1200];
	int rc = 0, k;

	if (d == NULL)
		return -1;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			rc = scan_dir(p, needle, files, hit, hitlen);
		} else if (S_ISREG(st.st_mode)) {
			(*files)++;
			k = file_contains(p, needle, strlen(needle));
			if (k != 0) {
				snprintf(hit, hitlen, "%s", p);
				rc = 1;
			}
		}
	}
	closedir(d);
	return rc;
}

/* A stretch of the sealed content of each version of id, as stored. */
static int
sealed_versions(const char *id, unsigned char out[][48], int max)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = 0;

	if (sqlite3_open_v2(gwt_path(&fx.env, "norfolk/data/store.db"), &db,
	    SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT content FROM record_versions"
	    " WHERE id = ?1 AND content IS NOT NULL ORDER BY version", -1, &st,
	    NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while (n < max && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) < 16 + 48)
			continue;
		memcpy(out[n++], (const unsigned char *)sqlite3_column_blob(st,
		    0) + 16, 48);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* An erasure, once answered, has left no copy of the record's sealed
 * content in any file of the running gateway's data directory: not in
 * the database, nor in its write-ahead log (which kept the frames that
 * stored it until it next filled). */
static void
test_erasure_at_rest(void **state)
{
	unsigned char ct[4][48];
	char body[2000], p[1200];
	const char *const files[] = { "store.db", "store.db-wal" };
	gwt_resp_t r;
	size_t f;
	int n, v;

	(void)state;
	snprintf(body, sizeof(body), "{\"id\":\"REC-ERA-1\",\"managing_area\":"
	    "\"norfolk\",\"category\":1,\"level\":1,\"person\":{\"surname\":"
	    "\"ERASEME\"},\"risk\":{\"factors\":[\"%0400d\"]}}", 7);
	assert_int_equal(put_json("agency-police", "REC-ERA-1", body), 201);
	assert_int_equal(patch_json("agency-police", "REC-ERA-1",
	    "{\"risk\":{\"rosh\":\"low\"}}"), 200);
	assert_int_equal(patch_json("agency-probation", "REC-ERA-1",
	    "{\"addresses\":[{\"type\":\"home\",\"town\":\"Erasetown\"}]}"),
	    200);
	n = sealed_versions("REC-ERA-1", ct, 4);
	assert_int_equal(n, 3);
	call("agency-police", "DELETE", "/v1/records/REC-ERA-1",
	    hdrs_std(NULL, NULL), NULL, &r);
	assert_int_equal(r.status, 200);
	gwt_resp_free(&r);
	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		snprintf(p, sizeof(p), "%s/%s", gwt_path(&fx.env, "norfolk/data"),
		    files[f]);
		for (v = 0; v < n; v++)
			if (file_contains(p, (const char *)ct[v],
			    sizeof(ct[v])) == 1)
				fail_msg("%s holds version %d of the erased "
				    "record", files[f], v + 1);
	}
	/* The gateway goes on writing and reading. */
	assert_int_equal(put_json("agency-police", "REC-ERA-1",
	    minimal("REC-ERA-1", "AGAIN")), 201);
	assert_int_equal(get_status("agency-police", "REC-ERA-1"), 200);
}

/* The rows of store.db's idempotency table whose key is key. */
static int
idem_rows(const char *key)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;

	if (sqlite3_open_v2(gwt_path(&fx.env, "norfolk/data/store.db"), &db,
	    SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM idempotency"
	    " WHERE key = ?1", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/*
 * An erasure deletes the idempotency keys of the record's writes and
 * transfers, by every caller: the key (visorctl push derives it from the
 * body), the request hash and the answer outlived it for a week.  Nothing
 * of them is left in store.db or its WAL.  A retry with such a key is then
 * a new request: a PATCH or a transfer finds no record, and a PUT, which
 * sends the whole record again, creates it anew, audited as a collection
 * (no replay of an answer about the erased record).  Keys of other
 * records stay.
 */
static void
test_erasure_drops_idempotency(void **state)
{
	static const char *const kput[] = {
		"Idempotency-Key: erase-idem-put-5a1c", NULL };
	static const char *const kpatch[] = {
		"Idempotency-Key: erase-idem-patch-5a1c",
		"Content-Type: application/merge-patch+json", NULL };
	static const char *const kmove[] = {
		"Idempotency-Key: erase-idem-move-5a1c",
		"X-Visor-Justification: integration test", NULL };
	static const char *const kkeep[] = {
		"Idempotency-Key: erase-idem-keep-5a1c", NULL };
	static const char *const keys[] = { "erase-idem-put-5a1c",
		"erase-idem-patch-5a1c", "erase-idem-move-5a1c" };
	const char *const path = "/v1/records/REC-ERA-IDEM";
	const char *const files[] = { "store.db", "store.db-wal" };
	const char *const move = "{\"record_id\":\"REC-ERA-IDEM\",\"to_area\":"
	    "\"suffolk\",\"purpose\":\"offender-move\",\"justification\":"
	    "\"integration test\"}";
	const char *const move_h[] = { "X-Visor-Actor: STAFF-4711",
	    "X-Visor-Purpose: offender-move", kmove[0], kmove[1], NULL };
	const char *const patch = "{\"addresses\":[{\"type\":\"home\","
	    "\"town\":\"Keytown\"}]}";
	char body[512], p[1200], replay[16];
	gwt_resp_t r;
	size_t f, k;

	(void)state;
	snprintf(body, sizeof(body), "%s", minimal("REC-ERA-IDEM", "KEYED"));
	assert_int_equal(status_of("agency-police", "PUT", path,
	    hdrs_std(NULL, kput), body), 201);
	assert_int_equal(status_of("agency-housing", "PATCH", path,
	    hdrs_std(NULL, kpatch), patch), 200);
	assert_int_equal(status_of("agency-police", "POST", "/v1/transfers",
	    move_h, move), 202);
	assert_int_equal(status_of("agency-police", "PUT",
	    "/v1/records/REC-ERA-KEEP", hdrs_std(NULL, kkeep),
	    minimal("REC-ERA-KEEP", "KEPT")), 201);
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		assert_int_equal(idem_rows(keys[k]), 1);

	assert_int_equal(status_of("agency-police", "DELETE", path,
	    hdrs_std(NULL, NULL), NULL), 200);
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		if (idem_rows(keys[k]) != 0)
			fail_msg("the key %s outlived the erasure", keys[k]);
		for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
			snprintf(p, sizeof(p), "%s/%s",
			    gwt_path(&fx.env, "norfolk/data"), files[f]);
			if (file_contains(p, keys[k], strlen(keys[k])) == 1)
				fail_msg("%s holds the key %s", files[f],
				    keys[k]);
		}
	}
	assert_int_equal(idem_rows("erase-idem-keep-5a1c"), 1);
	/* The test finds a key where it is. */
	snprintf(p, sizeof(p), "%s/store.db", gwt_path(&fx.env, "norfolk/data"));
	assert_true(file_contains(p, "erase-idem-keep-5a1c", 20) == 1 ||
	    file_contains(gwt_path(&fx.env, "norfolk/data/store.db-wal"),
	    "erase-idem-keep-5a1c", 20) == 1);

	/* Retries are new requests. */
	call("agency-housing", "PATCH", path, hdrs_std(NULL, kpatch), patch, &r);
	assert_error(&r, 404, "no such record to patch");
	gwt_resp_free(&r);
	call("agency-police", "POST", "/v1/transfers", move_h, move, &r);
	assert_error(&r, 404, NULL);
	gwt_resp_free(&r);
	call("agency-police", "PUT", path, hdrs_std(NULL, kput), body, &r);
	assert_int_equal(r.status, 201);
	header_of(&r, "Idempotent-Replay", replay, sizeof(replay));
	assert_string_equal(replay, "");
	assert_non_null(strstr(r.body.data, "\"version\":4"));
	gwt_resp_free(&r);
	assert_int_equal(audit_count_op("REC-ERA-IDEM", "collect"), 2);
	/* Its key is kept again, for the new record's retries. */
	call("agency-police", "PUT", path, hdrs_std(NULL, kput), body, &r);
	assert_int_equal(r.status, 201);
	header_of(&r, "Idempotent-Replay", replay, sizeof(replay));
	assert_string_equal(replay, "true");
	gwt_resp_free(&r);
	assert_int_equal(version_of("REC-ERA-IDEM"), 4);
}

/* Overwrite the sealed content of every stored version of id in the
 * stopped gateway's store.db, as damage at rest would. */
static void
damage_sealed(const char *id)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open(gwt_path(&fx.env,
	    "norfolk/data/store.db"), &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE record_versions SET"
	    " content = randomblob(length(content)) WHERE id = ?1"
	    " AND content IS NOT NULL", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_true(sqlite3_changes(db) >= 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/*
 * A record whose sealed content no longer opens can still be erased.  Its
 * category and level are sealed with it, so the erasure is decided for
 * every category and level it could have: police (who hold ct) may erase
 * it; a caller that may not read a category 4 record finds none (404, as
 * for any record it may not read), one that may not erase is refused.
 * Before, every erasure of it was 503.
 */
static void
test_erase_unopened(void **state)
{
	static const char *const stale[] = { "If-Match: \"7\"", NULL };
	const char *const path = "/v1/records/REC-BROKEN-1";
	leaf_t l[16];
	gwt_resp_t r;
	int n;

	(void)state;
	assert_int_equal(put_json("agency-police", "REC-BROKEN-1",
	    minimal("REC-BROKEN-1", "BROKEN")), 201);
	assert_int_equal(patch_json("agency-police", "REC-BROKEN-1",
	    "{\"risk\":{\"rosh\":\"low\"}}"), 200);
	/* The gateway keeps current records in memory: damage the file
	 * while it is stopped. */
	assert_int_equal(gwt_gw_stop(&fx.gw), 0);
	damage_sealed("REC-BROKEN-1");
	assert_int_equal(gwt_gw_start(&fx.env, "norfolk", &fx.gw), 0);
	assert_int_equal(get_status("agency-police", "REC-BROKEN-1"), 503);

	/* Probation may not read a category 4 record: none for it. */
	call("agency-probation", "DELETE", path, hdrs_std(NULL, NULL), NULL,
	    &r);
	assert_error(&r, 404, "no such record");
	gwt_resp_free(&r);
	call("agency-police", "DELETE", path, hdrs_std(NULL, stale), NULL, &r);
	assert_error(&r, 409, NULL);
	gwt_resp_free(&r);
	call("agency-police", "DELETE", path, hdrs_std(NULL, NULL), NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.data, "\"erased\":true"));
	gwt_resp_free(&r);
	assert_true(gwt_log_wait(&fx.gw, "event=erase-unreadable", 5000));
	n = audit_for("REC-BROKEN-1", l, 16);
	assert_true(n >= 5);
	assert_string_equal(l[n - 1].op, "erase");
	assert_string_equal(l[n - 1].reason, "content-unreadable");
	assert_int_equal(l[n - 1].version, 2);
	assert_non_null(strstr(l[n - 1].rules, "erase-police"));
	assert_string_equal(l[n - 2].reason, "version-conflict");
	assert_string_equal(l[n - 3].op, "deny");
	assert_string_equal(l[n - 3].reason, "erase-denied");
	assert_int_equal(get_status("agency-police", "REC-BROKEN-1"), 404);
	/* Erased: the id can be used again. */
	assert_int_equal(put_json("agency-police", "REC-BROKEN-1",
	    minimal("REC-BROKEN-1", "AGAIN")), 201);
	assert_int_equal(version_of("REC-BROKEN-1"), 4);
}

/* Store json as record id (category 1, level 1), with its collect entry,
 * straight through the store of the stopped Norfolk gateway: a record
 * written under older rules, which the API would now refuse.  The files
 * are then given back to the data directory's owner (the account the
 * gateway drops to when the tests run as root). */
static void
store_directly(const char *id, const char *json)
{
	const char *data = gwt_path(&fx.env, "norfolk/data");
	store_options_t o;
	store_job_t *j;
	audit_entry_t e;
	char err[256], p[1200];
	struct stat sb;
	struct dirent *de;
	DIR *d;
	store_t *s;

	memset(&o, 0, sizeof(o));
	o.data_dir = data;
	o.area = "norfolk";
	if ((s = store_open(&o, err, sizeof(err))) == NULL)
		fail_msg("store_open: %s", err);
	memset(&e, 0, sizeof(e));
	e.op = "collect";
	e.request_id = "test-legacy";
	e.actor_id = "urn:visor:norfolk:agency:police";
	e.actor_person = "STAFF-4711";
	e.record = id;
	e.version = AUDIT_VERSION_ASSIGNED;
	e.purpose = "risk-management";
	e.result = "ok";
	j = store_job_new();
	assert_int_equal(store_job_put_record(j, id, STORE_VERSION_ABSENT, 1,
	    1, "norfolk", json, strlen(json), "urn:visor:norfolk:agency:police",
	    NULL), 0);
	assert_int_equal(store_job_audit(j, &e), 0);
	assert_int_equal(store_submit_wait(s, j).status, STORE_OK);
	store_close(s);
	assert_int_equal(stat(data, &sb), 0);
	assert_non_null(d = opendir(data));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", data, de->d_name);
		assert_int_equal(chown(p, sb.st_uid, sb.st_gid), 0);
	}
	closedir(d);
}

/*
 * A record stored with a postcode of the shape older rules let through
 * (SPEC-NOTES, postcodes) does not refuse PATCHes that leave it as it is:
 * health writing notes, police the risk.  A PATCH bringing a bad postcode
 * is still refused, and one replacing the address with a good one passes.
 * Before, every PATCH got 422 naming addresses[0].postcode.
 */
static void
test_patch_keeps_old_postcode(void **state)
{
	static const char *const legacy = "{\"id\":\"REC-OLDPC-1\","
	    "\"managing_area\":\"norfolk\",\"category\":1,\"level\":1,"
	    "\"person\":{\"surname\":\"OLDPC\"},\"addresses\":[{\"type\":"
	    "\"home\",\"postcode\":\"NR21AAXYZ\"}]}";
	static const char *const ct[] = {
		"Content-Type: application/merge-patch+json", NULL };
	const char *const path = "/v1/records/REC-OLDPC-1";
	gwt_resp_t r;
	cJSON *j;

	(void)state;
	assert_int_equal(gwt_gw_stop(&fx.gw), 0);
	store_directly("REC-OLDPC-1", legacy);
	assert_int_equal(gwt_gw_start(&fx.env, "norfolk", &fx.gw), 0);
	assert_int_equal(version_of("REC-OLDPC-1"), 1);

	assert_int_equal(patch_json("agency-health", "REC-OLDPC-1",
	    "{\"health\":{\"notes\":[\"seen\"]}}"), 200);
	assert_int_equal(patch_json("agency-police", "REC-OLDPC-1",
	    "{\"risk\":{\"rosh\":\"low\"}}"), 200);
	/* The stored value is kept as it was. */
	j = get_record("agency-police", "REC-OLDPC-1");
	assert_non_null(j);
	assert_string_equal(json_get_str(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(j, "addresses"), 0), "postcode"), "NR21AAXYZ");
	cJSON_Delete(j);
	/* New input is checked in full. */
	call("agency-housing", "PATCH", path, hdrs_std(NULL, ct),
	    "{\"addresses\":[{\"type\":\"home\",\"postcode\":\"NR21AAXYZ\"},"
	    "{\"type\":\"temporary\",\"postcode\":\"IP11AAQQ\"}]}", &r);
	assert_error(&r, 422, "addresses[1].postcode");
	gwt_resp_free(&r);
	/* A PUT sends the whole record: all of it is new input. */
	call("agency-police", "PUT", path, hdrs_std(NULL, NULL), legacy, &r);
	assert_error(&r, 422, "addresses[0].postcode");
	gwt_resp_free(&r);
	assert_int_equal(patch_json("agency-housing", "REC-OLDPC-1",
	    "{\"addresses\":[{\"type\":\"home\",\"postcode\":\"NR2 1AA\"}]}"),
	    200);
	assert_int_equal(version_of("REC-OLDPC-1"), 4);
}

static void
test_encryption_at_rest(void **state)
{
	char surname[64], town[64], body[600], hit[1200];
	int files = 0, wal = 0;
	unsigned r;
	DIR *d;
	struct dirent *de;

	(void)state;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	r = (unsigned)rand();
	snprintf(surname, sizeof(surname), "QZXUNIQUESURNAME%08X", r);
	snprintf(town, sizeof(town), "Xyloville%08X", r);
	snprintf(body, sizeof(body), "{\"id\":\"REC-ENC-1\",\"managing_area\":"
	    "\"norfolk\",\"category\":1,\"level\":1,\"person\":{\"surname\":\"%s\"},"
	    "\"addresses\":[{\"type\":\"home\",\"town\":\"%s\"}]}", surname, town);
	assert_int_equal(put_json("agency-police", "REC-ENC-1", body), 201);
	/* Read back, so that the record passes through every path. */
	assert_int_equal(get_status("agency-police", "REC-ENC-1"), 200);
	assert_int_equal(patch_json("agency-police", "REC-ENC-1",
	    "{\"risk\":{\"rosh\":\"low\"}}"), 200);

	/* While the gateway runs: the database, its WAL and shared memory. */
	if ((d = opendir(gwt_path(&fx.env, "norfolk/data"))) != NULL) {
		while ((de = readdir(d)) != NULL)
			wal += strstr(de->d_name, "-wal") != NULL;
		closedir(d);
	}
	assert_true(wal >= 1);
	if (scan_dir(gwt_path(&fx.env, "norfolk/data"), surname, &files, hit,
	    sizeof(hit)) != 0)
		fail_msg("surname found in %s", hit);
	assert_true(files >= 3);
	files = 0;
	if (scan_dir(gwt_path(&fx.env, "norfolk/data"), town, &files, hit,
	    sizeof(hit)) != 0)
		fail_msg("town found in %s", hit);
	/* Nor in the gateway's log. */
	assert_int_equal(file_contains(fx.gw.log, surname, strlen(surname)), 0);
	/* The test can find it when it is there. */
	assert_int_equal(file_contains(gwt_path(&fx.env, "norfolk/gateway.json"),
	    "norfolk", 7), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_create_then_replace),
		cmocka_unit_test(test_required_headers),
		cmocka_unit_test(test_patch_merge),
		cmocka_unit_test(test_body_errors),
		cmocka_unit_test(test_schema_errors),
		cmocka_unit_test(test_not_found_and_methods),
		cmocka_unit_test(test_if_match),
		cmocka_unit_test(test_idempotency_key),
		cmocka_unit_test(test_idempotency_replay_if_current),
		cmocka_unit_test(test_write_forbidden_field),
		cmocka_unit_test(test_put_keeps_unread),
		cmocka_unit_test(test_delete_and_history),
		cmocka_unit_test(test_history_pages),
		cmocka_unit_test(test_each_agency_view),
		cmocka_unit_test(test_category4_clearance),
		cmocka_unit_test(test_unreadable_is_absent),
		cmocka_unit_test(test_unreadable_replays_as_erased),
		cmocka_unit_test(test_unreadable_counted_as_denial),
		cmocka_unit_test(test_history_not_owner_only_for_readers),
		cmocka_unit_test(test_non_agency_identities),
		cmocka_unit_test(test_answer_after_audit),
		cmocka_unit_test(test_empty_object_writes_nothing),
		cmocka_unit_test(test_core_only_record),
		cmocka_unit_test(test_history_by_version),
		cmocka_unit_test(test_history_partial_fields),
		cmocka_unit_test(test_erased_history_needs_ct),
		cmocka_unit_test(test_erased_reused_history_needs_ct),
		cmocka_unit_test(test_audit_names_transformed),
		cmocka_unit_test(test_history_no_write_oracle),
		cmocka_unit_test(test_concurrent_writers),
		cmocka_unit_test(test_encryption_at_rest),
		cmocka_unit_test(test_erasure_at_rest),
		cmocka_unit_test(test_erasure_drops_idempotency),
		cmocka_unit_test(test_erase_unopened),
		cmocka_unit_test(test_patch_keeps_old_postcode),
	};

	return gwt_exit(cmocka_run_group_tests_name("records", tests,
	    group_setup, group_teardown));
}
