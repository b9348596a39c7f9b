/*
 * Integration: visorctl gen and visorctl push against a real gateway (issue
 * 4 items 5 and 6): generated records load, a rerun changes nothing, bad
 * input lines are reported by number without stopping the rest, and the CSV
 * examples in adapters/examples/ push with their mappings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tests/support/gwtest.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"

#define GEN_COUNT "200"

typedef struct {
	gwt_env_t env;
	gwt_gw_t gw;
	char url[64];
	char src[512];		/* the source tree (adapters/examples) */
} push_fixture_t;

static push_fixture_t fx;

/* ---------------------------------------------------------------- helpers */

/* visorctl push as pki/norfolk/<agency>.crt with extra arguments (NULL-
 * terminated) and stdin in; returns the exit status. */
static int
push(const char *agency, const char *purpose, const char *const *extra,
    const char *in, size_t inlen, buf_t *out, buf_t *err)
{
	const char *argv[32];
	char cert[600];
	int n = 0;

	snprintf(cert, sizeof(cert), "%s/pki/norfolk/%s.crt", fx.env.dir, agency);
	argv[n++] = gwt_prog(&fx.env, "visorctl");
	argv[n++] = "push";
	argv[n++] = "--gateway";
	argv[n++] = fx.url;
	argv[n++] = "--cert";
	argv[n++] = cert;
	argv[n++] = "--actor";
	argv[n++] = "STAFF-PUSH";
	argv[n++] = "--purpose";
	argv[n++] = purpose;
	while (extra != NULL && *extra != NULL && n < 31)
		argv[n++] = *extra++;
	argv[n] = NULL;
	return gwt_run(argv, in, inlen, out, err);
}

/* A push that must succeed: on another exit status, fail showing what it
 * printed. */
static void
expect_ok(int rc, const char *what, const buf_t *out, const buf_t *err)
{
	if (rc != 0)
		fail_msg("%s: exit %d: %s %s", what, rc,
		    out->data ? out->data : "", err->data ? err->data : "");
}

/* Write a mapping and a CSV export under the test's folder as
 * <stem>-mapping.json and <stem>.csv, and point extra[0..3] at them
 * (extra[4] = NULL; extra must hold 5 or more). */
static void
csv_input(const char *stem, const char *map, size_t maplen, const char *csv,
    size_t csvlen, char mpath[600], char cpath[600], const char **extra)
{
	snprintf(mpath, 600, "%s/%s-mapping.json", fx.env.dir, stem);
	snprintf(cpath, 600, "%s/%s.csv", fx.env.dir, stem);
	assert_int_equal(file_write_atomic(mpath, map, maplen, 0600), 0);
	assert_int_equal(file_write_atomic(cpath, csv, csvlen, 0600), 0);
	extra[0] = "--csv";
	extra[1] = cpath;
	extra[2] = "--mapping";
	extra[3] = mpath;
	extra[4] = NULL;
}

static void
gen(const char *count, const char *seed, buf_t *out)
{
	const char *argv[] = { gwt_prog(&fx.env, "visorctl"), "gen", "--count",
	    count, "--seed", seed, NULL };

	assert_int_equal(gwt_run(argv, NULL, 0, out, NULL), 0);
	assert_non_null(out->data);
}

static cJSON *
get_record(const char *agency, const char *id)
{
	const char *h[] = { "X-Visor-Actor: STAFF-PUSH",
	    "X-Visor-Purpose: risk-management",
	    "X-Visor-Justification: push integration test", NULL };
	char path[120], err[256];
	gwt_resp_t r;
	cJSON *j = NULL;

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	if (gwt_request(&fx.env, &fx.gw, "norfolk", agency, "GET", path, h, NULL,
	    0, &r, err, sizeof(err)) < 0)
		fail_msg("GET %s: %s", id, err);
	if (r.status == 200)
		j = cJSON_ParseWithLength(r.body.data, r.body.len);
	gwt_resp_free(&r);
	return j;
}

static long
get_status(const char *agency, const char *id)
{
	const char *h[] = { "X-Visor-Actor: STAFF-PUSH",
	    "X-Visor-Purpose: risk-management",
	    "X-Visor-Justification: push integration test", NULL };
	char path[120], err[256];
	gwt_resp_t r;
	long s;

	snprintf(path, sizeof(path), "/v1/records/%s", id);
	if (gwt_request(&fx.env, &fx.gw, "norfolk", agency, "GET", path, h, NULL,
	    0, &r, err, sizeof(err)) < 0)
		fail_msg("GET %s: %s", id, err);
	s = r.status;
	gwt_resp_free(&r);
	return s;
}

/* Audit entries with this op (as the auditor, decoded). */
static int
audit_count(const char *op)
{
	const char *none[] = { NULL };
	char path[100], err[256];
	gwt_resp_t r;
	cJSON *doc, *it, *leaf;
	unsigned char *raw;
	long len;
	int n = 0;

	snprintf(path, sizeof(path), "/v1/audit/search?op=%s", op);
	if (gwt_request(&fx.env, &fx.gw, "norfolk", "auditor", "GET", path, none,
	    NULL, 0, &r, err, sizeof(err)) < 0 || r.status != 200) {
		gwt_resp_free(&r);
		return -1;
	}
	doc = cJSON_ParseWithLength(r.body.data, r.body.len);
	gwt_resp_free(&r);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "entries")) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "data"), *o;
		size_t dl;

		if (!cJSON_IsString(d))
			continue;
		dl = strlen(d->valuestring);
		if ((raw = malloc(dl + 1)) == NULL)
			break;
		len = b64_decode(d->valuestring, dl, raw, dl + 1);
		leaf = len > 0 ? cJSON_ParseWithLength((char *)raw, (size_t)len) : NULL;
		free(raw);
		o = cJSON_GetObjectItemCaseSensitive(leaf, "op");
		n += cJSON_IsString(o) && strcmp(o->valuestring, op) == 0;
		cJSON_Delete(leaf);
	}
	cJSON_Delete(doc);
	return n;
}

static long
audit_size(void)
{
	const char *none[] = { NULL };
	char err[256];
	gwt_resp_t r;
	cJSON *j;
	long n = -1;

	if (gwt_request(&fx.env, &fx.gw, "norfolk", "agency-police", "GET",
	    "/v1/health", none, NULL, 0, &r, err, sizeof(err)) == 0 &&
	    r.status == 200 && (j = cJSON_ParseWithLength(r.body.data,
	    r.body.len)) != NULL) {
		n = (long)cJSON_GetObjectItem(j, "audit_size")->valuedouble;
		cJSON_Delete(j);
	}
	gwt_resp_free(&r);
	return n;
}

/* The n-th line (1-based) of text, parsed; caller frees. */
static cJSON *
line_json(const char *text, int n)
{
	const char *p = text, *e;

	while (--n > 0 && (p = strchr(p, '\n')) != NULL)
		p++;
	if (p == NULL)
		return NULL;
	e = strchr(p, '\n');
	return cJSON_ParseWithLength(p, e ? (size_t)(e - p) : strlen(p));
}

static void
assert_same_person(const cJSON *want, const cJSON *got, const char *what)
{
	cJSON *w = cJSON_Duplicate(cJSON_GetObjectItem(want, "person"), 1);
	const cJSON *al = cJSON_GetObjectItem(w, "aliases");
	char *a, *b;

	/* The gateway's filter leaves out an empty array (nothing in it
	 * passes), so "aliases":[] reads back as absent. */
	if (cJSON_IsArray(al) && cJSON_GetArraySize(al) == 0)
		cJSON_DeleteItemFromObject(w, "aliases");
	if (cJSON_Compare(w, cJSON_GetObjectItem(got, "person"), 1)) {
		cJSON_Delete(w);
		return;
	}
	a = cJSON_PrintUnformatted(w);
	b = cJSON_PrintUnformatted(cJSON_GetObjectItem(got, "person"));
	cJSON_Delete(w);
	fail_msg("%s: person differs: sent %s, stored %s", what, a ? a : "-",
	    b ? b : "-");
}

static void
assert_contains(const buf_t *b, const char *needle, const char *what)
{
	if (b->data == NULL || strstr(b->data, needle) == NULL)
		fail_msg("%s does not contain '%s': %s", what, needle,
		    b->data ? b->data : "");
}

/* ------------------------------------------------------------ group setup */

static int group_teardown(void **state);

static int
group_setup(void **state)
{
	const char *src = getenv("VISOR_SRC");

	(void)state;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.src, sizeof(fx.src), "%s", src ? src : ".");
	if (gwt_env_setup(&fx.env, "norfolk,suffolk") < 0)
		goto fail;
	if (gwt_gw_start(&fx.env, "norfolk", &fx.gw) < 0)
		goto fail;
	snprintf(fx.url, sizeof(fx.url), "https://127.0.0.1:%d", fx.gw.port);
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
	memset(&fx, 0, sizeof(fx));
	return rc;
}

/* ------------------------------------------------------------------ tests */

static void
test_gen_is_deterministic(void **state)
{
	buf_t a = BUF_INIT, b = BUF_INIT, c = BUF_INIT;
	const char *p;
	int lines = 0;

	(void)state;
	gen(GEN_COUNT, "1", &a);
	gen(GEN_COUNT, "1", &b);
	gen(GEN_COUNT, "2", &c);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	assert_false(a.len == c.len && memcmp(a.data, c.data, a.len) == 0);
	for (p = a.data; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, 200);
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
}

static void
test_gen_pipe_push(void **state)
{
	buf_t g = BUF_INIT, out = BUF_INIT, err = BUF_INIT;
	cJSON *want, *got;
	int rc, i;

	(void)state;
	gen(GEN_COUNT, "1", &g);
	rc = push("agency-probation", "risk-management", NULL, g.data, g.len, &out,
	    &err);
	expect_ok(rc, "push", &out, &err);
	assert_contains(&out, "200 sent (200 created", "push summary");
	assert_contains(&out, "0 refused", "push summary");
	assert_int_equal(audit_count("collect"), 200);
	assert_int_equal(audit_count("alter"), 0);

	/* Spot checks: what was generated is what is stored. */
	for (i = 1; i <= 200; i += 37) {
		const cJSON *id;

		want = line_json(g.data, i);
		assert_non_null(want);
		id = cJSON_GetObjectItem(want, "id");
		got = get_record("agency-police", id->valuestring);
		if (got == NULL)
			fail_msg("line %d: %s not readable", i, id->valuestring);
		assert_same_person(want, got, id->valuestring);
		assert_int_equal((int)cJSON_GetObjectItem(got, "version")->valuedouble,
		    1);
		cJSON_Delete(want);
		cJSON_Delete(got);
	}
	buf_free(&g);
	buf_free(&out);
	buf_free(&err);
}

static void
test_rerun_is_idempotent(void **state)
{
	buf_t g = BUF_INIT, out = BUF_INIT, err = BUF_INIT;
	long size0, size1;
	cJSON *want, *got;
	int rc;

	(void)state;
	size0 = audit_size();
	assert_true(size0 > 0);
	gen(GEN_COUNT, "1", &g);
	rc = push("agency-probation", "risk-management", NULL, g.data, g.len, &out,
	    &err);
	expect_ok(rc, "rerun", &out, &err);
	assert_contains(&out, "0 sent", "rerun summary");
	assert_contains(&out, "200 unchanged", "rerun summary");
	/* Nothing was written or logged. */
	size1 = audit_size();
	assert_int_equal(size1, size0);
	assert_int_equal(audit_count("collect"), 200);
	assert_int_equal(audit_count("alter"), 0);
	want = line_json(g.data, 200);
	got = get_record("agency-police", cJSON_GetObjectItem(want, "id")->valuestring);
	assert_non_null(got);
	assert_int_equal((int)cJSON_GetObjectItem(got, "version")->valuedouble, 1);
	cJSON_Delete(want);
	cJSON_Delete(got);
	buf_free(&g);
	buf_free(&out);
	buf_free(&err);
}

/* The same content again after other content: pushed A, then B, then A
 * again.  Its Idempotency-Key (method, id, body) is A's first one, whose
 * answer names version 1; the record is at 2 by then.  Before, the gateway
 * replayed "version 1" and push counted A "unchanged" while the record
 * held B.  A replay is only for an answer still current: once the record
 * has moved on, A is written again. */
static void
test_push_back_to_earlier_content(void **state)
{
	static const char *const a = "{\"id\":\"NFK-ABA-1\",\"managing_area\":"
	    "\"norfolk\",\"category\":1,\"level\":1,\"person\":{\"surname\":"
	    "\"ALPHA\"}}\n";
	static const char *const b = "{\"id\":\"NFK-ABA-1\",\"managing_area\":"
	    "\"norfolk\",\"category\":1,\"level\":1,\"person\":{\"surname\":"
	    "\"BETA\"}}\n";
	static const char *const seq[] = { "ALPHA", "BETA", "ALPHA", "ALPHA" };
	buf_t out = BUF_INIT, err = BUF_INIT;
	cJSON *got;
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		const char *in = strcmp(seq[i], "ALPHA") == 0 ? a : b;

		buf_reset(&out);
		buf_reset(&err);
		assert_int_equal(push("agency-probation", "risk-management", NULL,
		    in, strlen(in), &out, &err), 0);
		/* The fourth push repeats the third: that answer is current. */
		assert_contains(&out, i == 3 ? "1 unchanged" : "1 sent",
		    "push summary");
		got = get_record("agency-police", "NFK-ABA-1");
		assert_non_null(got);
		assert_string_equal(json_get_str(cJSON_GetObjectItem(got,
		    "person"), "surname"), seq[i]);
		assert_int_equal((int)cJSON_GetObjectItem(got,
		    "version")->valuedouble, i == 3 ? 3 : i + 1);
		cJSON_Delete(got);
	}
	assert_true(gwt_log_wait(&fx.gw, "event=idempotency-stale", 5000));
	buf_free(&out);
	buf_free(&err);
}

static void
test_bad_lines(void **state)
{
	static const char *const bad3 = "{\"id\":\"NFK-BAD-3\", broken";
	static const char *const bad6 = "{\"id\":\"NFK-BAD-6\",\"managing_area\":"
	    "\"norfolk\",\"category\":1,\"level\":1,\"shoe_size\":9}";
	static const char *const bad9 = "[1,2,3]";
	buf_t g = BUF_INIT, file = BUF_INIT, out = BUF_INIT, err = BUF_INIT, all;
	char path[600];
	const char *p, *e, *extra[3];
	int line = 0, rc, good = 0;

	(void)state;
	/* Ten records of their own (ids beyond the 200 above). */
	gen("210", "3", &g);
	for (p = g.data; p != NULL && *p != '\0'; p = e ? e + 1 : NULL) {
		e = strchr(p, '\n');
		if (++line <= 200)
			continue;
		if (line - 200 == 3)
			buf_printf(&file, "%s\n", bad3);
		else if (line - 200 == 6)
			buf_printf(&file, "%s\n", bad6);
		else if (line - 200 == 9)
			buf_printf(&file, "%s\n", bad9);
		else
			buf_append(&file, p, e ? (size_t)(e - p) + 1 : strlen(p));
	}
	snprintf(path, sizeof(path), "%s/bad-lines.jsonl", fx.env.dir);
	assert_int_equal(file_write_atomic(path, file.data, file.len, 0600), 0);
	extra[0] = "--jsonl";
	extra[1] = path;
	extra[2] = NULL;
	rc = push("agency-probation", "risk-management", extra, NULL, 0, &out, &err);
	assert_int_equal(rc, 1);
	buf_init(&all, 0);
	buf_printf(&all, "%s\n%s", out.data ? out.data : "", err.data ? err.data : "");
	assert_contains(&all, "line 3", "push output");
	assert_contains(&all, "line 6", "push output");
	assert_contains(&all, "line 9", "push output");
	assert_contains(&all, "shoe_size", "push output");
	assert_contains(&out, "7 sent (7 created", "push summary");
	assert_null(strstr(all.data, "line 1:"));
	assert_null(strstr(all.data, "line 2:"));

	/* The seven good lines are stored; the bad ones are not. */
	for (line = 1; line <= 10; line++) {
		cJSON *want = line_json(file.data, line), *got;
		const cJSON *id;

		if (line == 3 || line == 6 || line == 9) {
			cJSON_Delete(want);
			continue;
		}
		assert_non_null(want);
		id = cJSON_GetObjectItem(want, "id");
		got = get_record("agency-probation", id->valuestring);
		if (got == NULL)
			fail_msg("good line %d (%s) was not pushed", line, id->valuestring);
		assert_same_person(want, got, id->valuestring);
		good++;
		cJSON_Delete(want);
		cJSON_Delete(got);
	}
	assert_int_equal(good, 7);
	assert_int_equal(get_status("agency-probation", "NFK-BAD-6"), 404);
	assert_int_equal(get_status("agency-probation", "NFK-BAD-3"), 404);
	buf_free(&all);
	buf_free(&g);
	buf_free(&file);
	buf_free(&out);
	buf_free(&err);
}

static void
test_csv_examples(void **state)
{
	char csv[700], map[700];
	const char *extra[5];
	buf_t out = BUF_INIT, err = BUF_INIT;
	cJSON *got, *addr;
	const cJSON *risk;
	int rc;

	(void)state;
	snprintf(csv, sizeof(csv), "%s/adapters/examples/probation.csv", fx.src);
	snprintf(map, sizeof(map), "%s/adapters/examples/probation-mapping.json",
	    fx.src);
	extra[0] = "--csv";
	extra[1] = csv;
	extra[2] = "--mapping";
	extra[3] = map;
	extra[4] = NULL;
	rc = push("agency-probation", "risk-management", extra, NULL, 0, &out, &err);
	expect_ok(rc, "probation CSV", &out, &err);
	assert_contains(&out, "0 refused", "probation CSV summary");
	assert_contains(&out, "0 bad input", "probation CSV summary");
	buf_reset(&out);
	buf_reset(&err);

	/* A quoted cell across two lines and "" inside quotes. */
	got = get_record("agency-probation", "NFK-P10233");
	assert_non_null(got);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "person"),
	    "surname")->valuestring, "Garside");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "person"),
	    "forenames")->valuestring, "Isaac \"Ike\"");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "person"),
	    "dob")->valuestring, "1969-07-23");
	risk = cJSON_GetObjectItem(got, "risk");
	assert_string_equal(cJSON_GetObjectItem(risk, "rosh")->valuestring,
	    "very-high");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(risk, "factors")), 2);
	assert_int_equal((int)cJSON_GetObjectItem(got, "category")->valuedouble, 3);
	assert_int_equal((int)cJSON_GetObjectItem(got, "level")->valuedouble, 3);
	cJSON_Delete(got);

	/* Housing's accommodation updates patch the addresses only. */
	snprintf(csv, sizeof(csv), "%s/adapters/examples/housing-accommodation.csv",
	    fx.src);
	snprintf(map, sizeof(map),
	    "%s/adapters/examples/housing-accommodation-mapping.json", fx.src);
	rc = push("agency-housing", "accommodation", extra, NULL, 0, &out, &err);
	expect_ok(rc, "housing CSV", &out, &err);
	assert_contains(&out, "0 refused", "housing CSV summary");
	got = get_record("agency-housing", "NFK-P10231");
	assert_non_null(got);
	addr = cJSON_GetObjectItem(got, "addresses");
	assert_int_equal(cJSON_GetArraySize(addr), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(addr, 0),
	    "postcode")->valuestring, "NR1 3XY");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(addr, 0),
	    "type")->valuestring, "home");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(addr, 1),
	    "type")->valuestring, "approved-premises");
	cJSON_Delete(got);
	/* Everything else probation wrote is still there. */
	got = get_record("agency-probation", "NFK-P10231");
	assert_non_null(got);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "person"),
	    "surname")->valuestring, "Ashcombe");
	assert_int_equal((int)cJSON_GetObjectItem(got, "version")->valuedouble, 2);
	cJSON_Delete(got);
	got = get_record("agency-housing", "NFK-P10232");
	assert_non_null(got);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(got, "addresses")), 1);
	cJSON_Delete(got);

	/* Housing may not create records (it writes addresses only): each
	 * is refused with the policy's 403, and the exit status says so. */
	{
		static const char in[] =
		    "{\"id\":\"NFK-HOUSING-1\",\"managing_area\":\"norfolk\","
		    "\"category\":1,\"level\":1,\"person\":{\"surname\":\"NU\"}}\n"
		    "{\"id\":\"NFK-HOUSING-2\",\"managing_area\":\"norfolk\","
		    "\"category\":1,\"level\":1,\"addresses\":[{\"type\":\"home\"}]}\n";

		buf_reset(&out);
		buf_reset(&err);
		rc = push("agency-housing", "accommodation", NULL, in,
		    sizeof(in) - 1, &out, &err);
		assert_int_equal(rc, 1);
		assert_contains(&out, "2 refused", "refused summary");
		assert_contains(&out, "403", "refused summary");
		assert_int_equal(get_status("agency-police", "NFK-HOUSING-1"), 404);
		assert_int_equal(get_status("agency-police", "NFK-HOUSING-2"), 404);
	}
	buf_free(&out);
	buf_free(&err);
}

/* One record on several lines of the input (an export that lists each
 * change): they must reach the gateway in input order, even with many
 * requests in flight, so that the record ends with its last line.  Before,
 * the lines of one id went out at once on different connections (and a
 * retried one after a later one), and the record could end with an earlier
 * line's content. */
static void
test_same_id_in_input_order(void **state)
{
	static const char *const names[] = { "FIRST", "SECOND", "THIRD" };
	const char *extra[] = { "--concurrency", "16", NULL };
	buf_t in = BUF_INIT, out = BUF_INIT, err = BUF_INIT;
	char id[32];
	cJSON *got;
	int i, k, rc, wrong = 0;

	(void)state;
	for (i = 0; i < 40; i++)
		for (k = 0; k < 3; k++)
			buf_printf(&in, "{\"id\":\"NFK-ORD-%d\",\"managing_area\":"
			    "\"norfolk\",\"category\":1,\"level\":1,\"person\":"
			    "{\"surname\":\"%s\"}}\n", i, names[k]);
	rc = push("agency-probation", "risk-management", extra, in.data, in.len,
	    &out, &err);
	expect_ok(rc, "push", &out, &err);
	assert_contains(&out, "120 sent (40 created, 80 replaced", "push summary");
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "NFK-ORD-%d", i);
		got = get_record("agency-police", id);
		assert_non_null(got);
		if (strcmp(json_get_str(cJSON_GetObjectItem(got, "person"),
		    "surname"), "THIRD") != 0)
			wrong++;
		assert_int_equal((int)cJSON_GetObjectItem(got,
		    "version")->valuedouble, 3);
		cJSON_Delete(got);
	}
	assert_int_equal(wrong, 0);
	buf_free(&in);
	buf_free(&out);
	buf_free(&err);
}

/* --patch with a mapping made for PUT: the row's id names the record and
 * is not part of the patch, as with JSON lines.  Before, "id" went into
 * every patch, and housing (which may write addresses only) was refused
 * 403 on every row. */
static void
test_csv_patch_flag_leaves_id_out(void **state)
{
	static const char map[] =
	    "{\"format\":\"visor-csv-mapping/1\",\"method\":\"PUT\","
	    "\"id\":{\"column\":\"Ref\",\"prefix\":\"NFK-\"},\"columns\":{"
	    "\"Type\":{\"field\":\"addresses[0].type\"},"
	    "\"Postcode\":{\"field\":\"addresses[0].postcode\"}}}";
	static const char csv[] = "Ref,Type,Postcode\nP10234,temporary,IP24 9ZZ\n";
	char mpath[600], cpath[600];
	const char *extra[6];
	buf_t out = BUF_INIT, err = BUF_INIT;
	cJSON *got, *addr;
	int rc;

	(void)state;
	csv_input("put-rows", map, sizeof(map) - 1, csv, sizeof(csv) - 1,
	    mpath, cpath, extra);
	extra[4] = "--patch";
	extra[5] = NULL;
	rc = push("agency-housing", "accommodation", extra, NULL, 0, &out, &err);
	expect_ok(rc, "push --patch", &out, &err);
	assert_contains(&out, "1 sent", "push summary");
	got = get_record("agency-housing", "NFK-P10234");
	assert_non_null(got);
	addr = cJSON_GetObjectItem(got, "addresses");
	assert_int_equal(cJSON_GetArraySize(addr), 1);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(addr, 0),
	    "postcode")->valuestring, "IP24 9ZZ");
	cJSON_Delete(got);
	buf_free(&out);
	buf_free(&err);
}

/* The mapping leaves empty array elements out, so a CSV row whose first
 * address columns are empty sends its second address as addresses[0].
 * The gateway's refusal names that; push reports it as the mapping
 * numbers it, addresses[1], the columns the row filled (before, it said
 * addresses[0], the columns left empty).  A row with nothing left out is
 * reported as the gateway said it. */
static void
test_csv_refusal_names_mapped_index(void **state)
{
	static const char map[] =
	    "{\"format\":\"visor-csv-mapping/1\",\"method\":\"PATCH\","
	    "\"id\":{\"column\":\"Ref\",\"prefix\":\"NFK-\"},\"columns\":{"
	    "\"Type0\":{\"field\":\"addresses[0].type\"},"
	    "\"Post0\":{\"field\":\"addresses[0].postcode\"},"
	    "\"Type1\":{\"field\":\"addresses[1].type\"},"
	    "\"Post1\":{\"field\":\"addresses[1].postcode\"}}}";
	static const char csv[] = "Ref,Type0,Post0,Type1,Post1\n"
	    "P10234,,,temporary,NOT A POSTCODE\n"
	    "P10234,home,IP24 9ZZ,temporary,ALSO NOT ONE\n";
	char mpath[600], cpath[600];
	const char *extra[6];
	buf_t out = BUF_INIT, err = BUF_INIT;
	const char *l3;
	int rc;

	(void)state;
	csv_input("shifted", map, sizeof(map) - 1, csv, sizeof(csv) - 1,
	    mpath, cpath, extra);
	rc = push("agency-housing", "accommodation", extra, NULL, 0, &out, &err);
	if (rc != 1)
		fail_msg("exit %d: %s %s", rc, out.data ? out.data : "",
		    err.data ? err.data : "");
	assert_contains(&out, "2 refused", "push summary");
	assert_contains(&out, "line 2 NFK-P10234: addresses[1].postcode: not a "
	    "UK postcode", "shifted refusal");
	assert_contains(&out, "(array indices as in the mapping; empty "
	    "elements were not sent)", "shifted refusal");
	assert_contains(&out, "line 3 NFK-P10234: addresses[1].postcode: not a "
	    "UK postcode", "unshifted refusal");
	if (strstr(out.data, "addresses[0].postcode") != NULL)
		fail_msg("a refusal names the address the row left empty: %s",
		    out.data);
	/* the note only where an index was renumbered */
	l3 = strstr(out.data, "line 3 ");
	if (l3 == NULL || strchr(l3, '\n') == NULL ||
	    strstr(l3, "array indices") != NULL)
		fail_msg("line 3 had nothing left out: %s", out.data);
	buf_free(&out);
	buf_free(&err);
}

static int
has_control(const buf_t *b)
{
	size_t i;

	for (i = 0; b->data != NULL && i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return 1;
		if (c == 0xc2 && i + 1 < b->len &&
		    (unsigned char)b->data[i + 1] >= 0x80 &&
		    (unsigned char)b->data[i + 1] <= 0x9f)
			return 1;
	}
	return 0;
}

/* What push prints comes from the input and the gateway: a control
 * sequence there (ESC, CSI U+009B) is shown escaped, never sent raw to the
 * operator's terminal. */
static void
test_no_control_bytes_in_output(void **state)
{
	static const char map[] =
	    "{\"format\":\"visor-csv-mapping/1\",\"id\":{\"column\":\"Ref\","
	    "\"prefix\":\"NFK-\"},\"columns\":{\"RoSH\":{\"field\":"
	    "\"risk.rosh\",\"values\":{\"H\":\"high\"}}}}";
	static const char csv[] = "Ref,RoSH\nCTL1,\"\x1b[2J\xc2\x9b" "31m\r\"\n";
	static const char jl[] = "{\"id\":\"NFK-CTL-2\",\"managing_area\":"
	    "\"norfolk\",\"category\":1,\"level\":1,\"\\u001b[2J\\u009b\":1}\n";
	char mpath[600], cpath[600];
	const char *extra[5];
	buf_t out = BUF_INIT, err = BUF_INIT;

	(void)state;
	csv_input("ctl", map, sizeof(map) - 1, csv, sizeof(csv) - 1, mpath,
	    cpath, extra);
	assert_int_equal(push("agency-probation", "risk-management", extra, NULL,
	    0, &out, &err), 1);
	assert_contains(&err, "not one of the mapped values", "push errors");
	assert_false(has_control(&out));
	assert_false(has_control(&err));
	buf_reset(&out);
	buf_reset(&err);
	assert_int_equal(push("agency-probation", "risk-management", NULL, jl,
	    sizeof(jl) - 1, &out, &err), 1);
	assert_contains(&out, "refused 422", "push summary");
	assert_false(has_control(&out));
	assert_false(has_control(&err));
	buf_free(&out);
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gen_is_deterministic),
		cmocka_unit_test(test_gen_pipe_push),
		cmocka_unit_test(test_rerun_is_idempotent),
		cmocka_unit_test(test_push_back_to_earlier_content),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_csv_examples),
		cmocka_unit_test(test_same_id_in_input_order),
		cmocka_unit_test(test_csv_patch_flag_leaves_id_out),
		cmocka_unit_test(test_csv_refusal_names_mapped_index),
		cmocka_unit_test(test_no_control_bytes_in_output),
	};

	return gwt_exit(cmocka_run_group_tests_name("push", tests,
	    group_setup, group_teardown));
}
