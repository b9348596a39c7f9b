/*
 * The audit bundle checked by a verifier written from the docs alone
 * (tests/indep/verify_bundle.py, Python) and by `visorctl audit
 * verify-bundle`: a real gateway writes a few hundred entries of several
 * ops, visorctl exports a bundle, both verifiers accept it and agree on its
 * size and root, and both refuse each tampered copy, naming the same first
 * bad index where the bundle alone can tell it.
 *
 * Tampered copies are made here with cJSON and OpenSSL only (not with our
 * crypto/ code), so that a fault shared by the exporter and the verifiers
 * cannot hide itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "client/https_client.h"
#include "tests/support/gwtest.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/fileio.h"

#define AREA "norfolk"
#define RECORDS 60

typedef struct {
	gwt_env_t env;
	gwt_gw_t gw;
	char bundle[600];	/* the bundle as exported */
	char vkey[600];		/* pki/norfolk/audit.vkey */
	char script[600];	/* tests/indep/verify_bundle.py */
	long size;		/* entries in the bundle */
	char verified[256];	/* "verified N entries, root R, ..." */
} fx_t;

static fx_t *fx;

static long
request(const char *who, const char *method, const char *id,
    const char *body)
{
	const char *hdrs[] = { "X-Visor-Actor: PC-4711",
	    "X-Visor-Purpose: risk-management",
	    "X-Visor-Justification: independent verification test",
	    "Content-Type: application/merge-patch+json", NULL };
	gwt_resp_t r;
	char path[128], err[256];
	long status = -1;

	if (strcmp(method, "PUT") == 0)
		hdrs[3] = "Content-Type: application/json";
	snprintf(path, sizeof(path), "/v1/records/%s", id);
	memset(&r, 0, sizeof(r));
	if (gwt_request(&fx->env, &fx->gw, AREA, who, method, path, hdrs,
	    body, body != NULL ? strlen(body) : 0, &r, err, sizeof(err)) == 0)
		status = r.status;
	else
		fprintf(stderr, "  %s %s as %s: %s\n", method, path, who, err);
	gwt_resp_free(&r);
	return status;
}

static int
run(const char *const *argv, buf_t *out, buf_t *err)
{
	buf_init(out, 0);
	buf_init(err, 0);
	return gwt_run(argv, NULL, 0, out, err);
}

static const char *
text(const buf_t *b)
{
	return b->data != NULL ? b->data : "";
}

/* The Python verifier; its exit status, out and err. */
static int
run_py(const char *bundle, const char *vkey, buf_t *out, buf_t *err)
{
	const char *argv[] = { "python3", fx->script, bundle, "--vkey", vkey,
	    "--area", AREA, NULL };

	return run(argv, out, err);
}

/* visorctl audit verify-bundle, as a third party without a state. */
static int
run_ctl(const char *bundle, const char *vkey, buf_t *out, buf_t *err)
{
	const char *argv[] = { gwt_prog(&fx->env, "visorctl"), "audit",
	    "verify-bundle", bundle, "--vkey", vkey, "--no-state", NULL };

	return run(argv, out, err);
}

/* 1 if s says "entry I" with I not followed by another digit. */
static int
names_entry(const char *s, long i)
{
	char needle[40];
	const char *p = s;
	size_t n;

	n = (size_t)snprintf(needle, sizeof(needle), "entry %ld", i);
	while ((p = strstr(p, needle)) != NULL) {
		if (p[n] < '0' || p[n] > '9')
			return 1;
		p += n;
	}
	return 0;
}

/* Both verifiers refuse bundle (a file) with vkey: exit status 1, the
 * Python verifier's reason holding py_says and visorctl's ctl_says, and,
 * if bad >= 0, both naming entry bad. */
static void
both_refuse_file(const char *what, const char *bundle, const char *vkey,
    long bad, const char *py_says, const char *ctl_says)
{
	buf_t out, err;
	int rc;

	rc = run_py(bundle, vkey, &out, &err);
	if (rc != 1 || strstr(text(&err), py_says) == NULL ||
	    (bad >= 0 && !names_entry(text(&err), bad)))
		fail_msg("%s: verify_bundle.py exit %d, want 1 saying '%s' "
		    "(entry %ld): %s%s", what, rc, py_says, bad, text(&out),
		    text(&err));
	buf_free(&out);
	buf_free(&err);
	rc = run_ctl(bundle, vkey, &out, &err);
	if (rc != 1 || strstr(text(&err), ctl_says) == NULL ||
	    (bad >= 0 && !names_entry(text(&err), bad)))
		fail_msg("%s: visorctl audit verify-bundle exit %d, want 1 "
		    "saying '%s' (entry %ld): %s%s", what, rc, ctl_says, bad,
		    text(&out), text(&err));
	buf_free(&out);
	buf_free(&err);
}

/* Both verifiers accept bundle with vkey and print the same line. */
static void
both_accept_file(const char *what, const char *bundle, const char *vkey,
    const char *want)
{
	buf_t po, pe, co, ce;
	int prc, crc;

	prc = run_py(bundle, vkey, &po, &pe);
	crc = run_ctl(bundle, vkey, &co, &ce);
	if (prc != 0 || crc != 0)
		fail_msg("%s: verify_bundle.py exit %d (%s%s), visorctl exit %d "
		    "(%s%s); want both 0", what, prc, text(&po), text(&pe), crc,
		    text(&co), text(&ce));
	if (strcmp(text(&po), text(&co)) != 0)
		fail_msg("%s: the verifiers disagree:\n  python:   %s  visorctl: %s",
		    what, text(&po), text(&co));
	if (want != NULL && strcmp(text(&po), want) != 0)
		fail_msg("%s: '%s', want '%s'", what, text(&po), want);
	buf_free(&po);
	buf_free(&pe);
	buf_free(&co);
	buf_free(&ce);
}

/* A fresh copy of the exported bundle, parsed. */
static cJSON *
bundle_copy(void)
{
	cJSON *j = gwt_json_load(fx->bundle);

	assert_non_null(j);
	return j;
}

static cJSON *
entries_of(cJSON *b)
{
	cJSON *e = cJSON_GetObjectItemCaseSensitive(b, "entries");

	assert_true(cJSON_IsArray(e));
	return e;
}

/* Write j to <dir>/<name>.json; returns its path (static buffer). */
static const char *
save(const char *name, const cJSON *j)
{
	static char path[700];

	snprintf(path, sizeof(path), "%s/%s.json", fx->env.dir, name);
	assert_int_equal(gwt_json_save(path, j), 0);
	return path;
}

static void
both_refuse(const char *what, cJSON *j, long bad, const char *py_says,
    const char *ctl_says)
{
	both_refuse_file(what, save(what, j), fx->vkey, bad, py_says,
	    ctl_says);
	cJSON_Delete(j);
}

/* Entry i's leaf bytes (malloc'd, *len set). */
static unsigned char *
leaf(cJSON *b, long i, size_t *len)
{
	cJSON *e = cJSON_GetArrayItem(entries_of(b), (int)i);
	const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e,
	    "data"));
	unsigned char *out;
	long n;

	assert_non_null(d);
	assert_non_null(out = malloc(strlen(d)));
	n = b64_decode(d, strlen(d), out, strlen(d));
	assert_true(n > 0);
	*len = (size_t)n;
	return out;
}

static void
set_leaf(cJSON *b, long i, const unsigned char *data, size_t len)
{
	cJSON *e = cJSON_GetArrayItem(entries_of(b), (int)i);
	char *enc = malloc(B64_ENCODED_SIZE(len));

	assert_non_null(enc);
	b64_encode(data, len, enc);
	assert_true(cJSON_ReplaceItemInObjectCaseSensitive(e, "data",
	    cJSON_CreateString(enc)));
	free(enc);
}

/* The checkpoint's body (through the newline before the blank line) and
 * its signature lines, split. */
static void
checkpoint_parts(cJSON *b, char *body, size_t bodycap, char *sigs,
    size_t sigcap)
{
	const char *cp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b,
	    "checkpoint"));
	const char *sep;

	assert_non_null(cp);
	assert_non_null(sep = strstr(cp, "\n\n"));
	assert_true((size_t)(sep - cp) + 2 < bodycap);
	memcpy(body, cp, (size_t)(sep - cp) + 1);
	body[sep - cp + 1] = '\0';
	assert_true(strlen(sep + 2) < sigcap);
	memcpy(sigs, sep + 2, strlen(sep + 2) + 1);
}

static void
set_checkpoint(cJSON *b, const char *body, const char *sigs)
{
	buf_t t;

	buf_init(&t, 0);
	assert_int_equal(buf_printf(&t, "%s\n%s", body, sigs), 0);
	assert_true(cJSON_ReplaceItemInObjectCaseSensitive(b, "checkpoint",
	    cJSON_CreateString(t.data)));
	buf_free(&t);
}

/* ------------------------------------------------------------ set-up */

static int
group_setup(void **state)
{
	static fx_t f;
	const char *src = getenv("VISOR_SRC");
	const char *who[] = { "agency-police", "agency-probation",
	    "agency-housing", "agency-health" };
	char id[32], body[512];
	const char *argv[12];
	char url[64], cert[600];
	buf_t out, err;
	int i, k, tries;

	fx = &f;
	snprintf(f.script, sizeof(f.script), "%s/tests/indep/verify_bundle.py",
	    src != NULL ? src : ".");
	{
		const char *chk[] = { "python3", "-c",
		    "import cryptography.hazmat.primitives.asymmetric.ed25519",
		    NULL };

		if (run(chk, &out, &err) != 0) {
			fprintf(stderr, "test_indep_verify: needs python3 with "
			    "the cryptography module (Debian: python3-cryptography;"
			    " scripts/deps.sh test installs it): %s\n", text(&err));
			return -1;
		}
		buf_free(&out);
		buf_free(&err);
	}
	for (tries = 0; tries < 3; tries++) {
		if (gwt_env_setup(&f.env, AREA ",suffolk") != 0)
			return -1;
		if (gwt_gw_start(&f.env, AREA, &f.gw) == 0)
			break;
		gwt_env_cleanup(&f.env);
	}
	if (tries == 3)
		return -1;
	snprintf(f.vkey, sizeof(f.vkey), "%s/pki/%s/audit.vkey", f.env.dir,
	    AREA);

	/* A few hundred entries of several ops: collect, alter, consult
	 * and disclose by several agencies, deny, erase. */
	for (i = 0; i < RECORDS; i++) {
		snprintf(id, sizeof(id), "NFK-IND-%04d", i);
		snprintf(body, sizeof(body), "{\"id\":\"%s\",\"managing_area\":"
		    "\"" AREA "\",\"category\":2,\"level\":2,\"person\":"
		    "{\"surname\":\"EXAMPLE\",\"forenames\":\"Synthetic Person\","
		    "\"dob\":\"1980-01-%02d\"}}", id, i % 28 + 1);
		if (request("agency-police", "PUT", id, body) / 100 != 2)
			return -1;
	}
	for (i = 0; i < RECORDS; i += 2) {
		snprintf(id, sizeof(id), "NFK-IND-%04d", i);
		if (request("agency-police", "PATCH", id,
		    "{\"person\":{\"forenames\":\"Altered Person\"}}") != 200)
			return -1;
	}
	for (i = 0; i < RECORDS; i++) {
		snprintf(id, sizeof(id), "NFK-IND-%04d", i);
		for (k = 0; k < 4; k++)
			if (request(who[k], "GET", id, NULL) < 0)
				return -1;
	}
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "NFK-IND-%04d", i);
		/* housing may not write: a deny entry */
		if (request("agency-housing", "PATCH", id,
		    "{\"person\":{\"forenames\":\"Denied\"}}") / 100 == 2)
			return -1;
	}
	for (i = RECORDS - 5; i < RECORDS; i++) {
		snprintf(id, sizeof(id), "NFK-IND-%04d", i);
		if (request("agency-police", "DELETE", id, NULL) / 100 != 2)
			return -1;
	}

	/* export waits for nothing: it verifies the latest checkpoint, which
	 * covers every entry within the interval (1 s) */
	{
		long ms = gwt_ms(1500);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
	snprintf(f.bundle, sizeof(f.bundle), "%s/bundle.json", f.env.dir);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", f.gw.port);
	snprintf(cert, sizeof(cert), "%s/pki/%s/auditor.crt", f.env.dir, AREA);
	argv[0] = gwt_prog(&f.env, "visorctl");
	argv[1] = "audit";
	argv[2] = "export";
	argv[3] = f.bundle;
	argv[4] = "--gateway";
	argv[5] = url;
	argv[6] = "--cert";
	argv[7] = cert;
	argv[8] = "--no-state";
	argv[9] = NULL;
	if (run(argv, &out, &err) != 0) {
		fprintf(stderr, "visorctl audit export: %s\n", text(&err));
		return -1;
	}
	buf_free(&out);
	buf_free(&err);
	*state = &f;
	return 0;
}

static int
group_teardown(void **state)
{
	int rc = gwt_gw_stop_clean(&fx->gw);

	gwt_env_cleanup(&fx->env);
	return rc;
}

/* ------------------------------------------------------------ tests */

/* The real bundle: both accept it, print the same size and root, and
 * those are the checkpoint's; the log is a few hundred entries of the
 * ops written above. */
static void
test_accepts_and_agrees(void **state)
{
	cJSON *b = bundle_copy();
	const char *cp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b,
	    "checkpoint"));
	const char *ops[] = { "collect", "alter", "consult", "deny", "erase" };
	char want[256], root[64];
	long size, i;
	size_t k;

	assert_non_null(cp);
	assert_int_equal(sscanf(cp, "visor." AREA "/audit\n%ld\n%63[^\n]",
	    &size, root), 2);
	assert_true(size >= 300);
	assert_int_equal(cJSON_GetArraySize(entries_of(b)), size);
	for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		char needle[40];
		int seen = 0;

		snprintf(needle, sizeof(needle), "\"op\":\"%s\"", ops[k]);
		for (i = 0; i < size && !seen; i++) {
			size_t len;
			unsigned char *d = leaf(b, i, &len);
			char *s = malloc(len + 1);

			assert_non_null(s);
			memcpy(s, d, len);
			s[len] = '\0';
			seen = strstr(s, needle) != NULL;
			free(s);
			free(d);
		}
		if (!seen)
			fail_msg("no %s entry in the bundle", ops[k]);
	}
	snprintf(want, sizeof(want), "verified %ld entries, root %s, "
	    "checkpoint signed by visor." AREA "/audit\n", size, root);
	both_accept_file("as exported", fx->bundle, fx->vkey, want);
	/* The same bundle written out again by another JSON writer: the
	 * verdict depends on the members, not the layout. */
	both_accept_file("rewritten", save("rewritten", b), fx->vkey, want);
	cJSON_Delete(b);
	fx->size = size;
	snprintf(fx->verified, sizeof(fx->verified), "%s", want);
}

/* One byte of an entry changed. */
static void
test_entry_byte_changed(void **state)
{
	const long i = 117;
	unsigned char *d;
	size_t len;
	char *p;
	cJSON *b;

	/* in a value: still an entry, seq intact; only the root shows it,
	 * and the bundle alone cannot say which entry (docs/AUDIT.md) */
	b = bundle_copy();
	d = leaf(b, i, &len);
	assert_non_null(p = memmem(d, len, "\"time\":\"20", 10));
	p[10] = p[10] == '9' ? '8' : (char)(p[10] + 1);
	set_leaf(b, i, d, len);
	free(d);
	both_refuse("byte-in-value", b, -1, "another root than the signed one",
	    "not to the signed root");

	/* in seq: the entry names another index */
	b = bundle_copy();
	d = leaf(b, i, &len);
	assert_int_equal(memcmp(d, "{\"seq\":117,", 11), 0);
	d[9] = '8';
	set_leaf(b, i, d, len);
	free(d);
	both_refuse("byte-in-seq", b, i, "carries seq 118",
	    "carries seq 118");

	/* the opening brace: no longer a JSON object */
	b = bundle_copy();
	d = leaf(b, i, &len);
	d[0] = '[';
	set_leaf(b, i, d, len);
	free(d);
	both_refuse("byte-brace", b, i, "not valid JSON", "entry 117");

	/* a byte of the last entry */
	b = bundle_copy();
	d = leaf(b, fx->size - 1, &len);
	assert_non_null(p = memmem(d, len, "\"time\":\"20", 10));
	p[12] = p[12] == '0' ? '1' : '0';
	set_leaf(b, fx->size - 1, d, len);
	free(d);
	both_refuse("byte-last", b, -1, "another root", "signed root");
}

/* An entry removed: renumbered, left as listed, or the last one. */
static void
test_entry_removed(void **state)
{
	const long i = 200;
	cJSON *b, *e;
	long k;

	b = bundle_copy();
	e = entries_of(b);
	cJSON_DeleteItemFromArray(e, (int)i);
	for (k = i; k < cJSON_GetArraySize(e); k++)
		cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(e,
		    (int)k), "index", cJSON_CreateNumber((double)k));
	both_refuse("removed-renumbered", b, i, "carries seq 201",
	    "carries seq 201");

	b = bundle_copy();
	cJSON_DeleteItemFromArray(entries_of(b), (int)i);
	both_refuse("removed-listed", b, i, "entry 200:",
	    "expected entry 200 here");

	b = bundle_copy();
	cJSON_DeleteItemFromArray(entries_of(b), (int)(fx->size - 1));
	both_refuse("removed-last", b, fx->size - 1, "missing", "missing");

	/* the first: a log that starts late */
	b = bundle_copy();
	e = entries_of(b);
	cJSON_DeleteItemFromArray(e, 0);
	for (k = 0; k < cJSON_GetArraySize(e); k++)
		cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(e,
		    (int)k), "index", cJSON_CreateNumber((double)k));
	both_refuse("removed-first", b, 0, "carries seq 1", "carries seq 1");
}

/* Two entries swapped: their leaves under the same indices, or whole. */
static void
test_entries_swapped(void **state)
{
	cJSON *b, *e, *x, *y;

	b = bundle_copy();
	e = entries_of(b);
	x = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(e, 40), "data");
	y = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(e, 41), "data");
	{
		char *t = x->valuestring;

		x->valuestring = y->valuestring;
		y->valuestring = t;
	}
	both_refuse("swapped-leaves", b, 40, "carries seq 41",
	    "carries seq 41");

	b = bundle_copy();
	e = entries_of(b);
	assert_non_null(x = cJSON_Duplicate(cJSON_GetArrayItem(e, 90), 1));
	assert_non_null(y = cJSON_Duplicate(cJSON_GetArrayItem(e, 250), 1));
	assert_true(cJSON_ReplaceItemInArray(e, 90, y));
	assert_true(cJSON_ReplaceItemInArray(e, 250, x));
	both_refuse("swapped-whole", b, 90, "entry 90:",
	    "expected entry 90 here");
}

/* The checkpoint's size or root edited, with its signature kept. */
static void
test_checkpoint_edited(void **state)
{
	char body[512], sigs[1024], nb[512], origin[64], root[64];
	long size, n;
	unsigned char r[40];
	cJSON *b;

	b = bundle_copy();
	checkpoint_parts(b, body, sizeof(body), sigs, sizeof(sigs));
	assert_int_equal(sscanf(body, "%63[^\n]\n%ld\n%63[^\n]", origin, &size,
	    root), 3);
	cJSON_Delete(b);

	/* smaller, with the entries cut to match: an attacker dropping the
	 * tail; larger */
	for (n = size - 1; n <= size + 1; n += 2) {
		b = bundle_copy();
		snprintf(nb, sizeof(nb), "%s\n%ld\n%s\n", origin, n, root);
		set_checkpoint(b, nb, sigs);
		if (n < size)
			cJSON_DeleteItemFromArray(entries_of(b), (int)n);
		both_refuse(n < size ? "size-smaller" : "size-larger", b, -1,
		    "checkpoint signature", "checkpoint signature");
	}

	/* one bit of the root */
	b = bundle_copy();
	assert_int_equal(b64_decode(root, strlen(root), r, sizeof(r)), 32);
	r[31] ^= 0x80;
	{
		char enc[B64_ENCODED_SIZE(32)];

		b64_encode(r, 32, enc);
		snprintf(nb, sizeof(nb), "%s\n%ld\n%s\n", origin, size, enc);
	}
	set_checkpoint(b, nb, sigs);
	both_refuse("root", b, -1, "checkpoint signature",
	    "checkpoint signature");
}

/* The signature changed: one bit, or another key id on the line. */
static void
test_signature_changed(void **state)
{
	char body[512], sigs[1024], name[64], sig64[200], enc[200], line[400];
	unsigned char raw[100];
	long n;
	int w;
	cJSON *b;

	for (w = 0; w < 2; w++) {
		b = bundle_copy();
		checkpoint_parts(b, body, sizeof(body), sigs, sizeof(sigs));
		assert_int_equal(sscanf(sigs, "\xe2\x80\x94 %63s %199s", name,
		    sig64), 2);
		n = b64_decode(sig64, strlen(sig64), raw, sizeof(raw));
		assert_int_equal(n, 68);
		raw[w == 0 ? 40 : 0] ^= 0x01;	/* the signature, or key id */
		b64_encode(raw, (size_t)n, enc);
		snprintf(line, sizeof(line), "\xe2\x80\x94 %s %s\n", name, enc);
		set_checkpoint(b, body, line);
		both_refuse(w == 0 ? "signature-bit" : "signature-key-id", b,
		    -1, "checkpoint signature", "checkpoint signature");
	}
}

/* A fresh Ed25519 key; its vkey line under name written to path. */
static EVP_PKEY *
new_key(const char *name, const char *path, char *vline, size_t vcap)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	unsigned char pub[33], h[SHA256_DIGEST_LENGTH];
	size_t plen = 32;
	char enc[B64_ENCODED_SIZE(33)];
	buf_t t;

	assert_non_null(k);
	pub[0] = 0x01;
	assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub + 1, &plen), 1);
	buf_init(&t, 0);
	assert_int_equal(buf_printf(&t, "%s\n", name), 0);
	assert_int_equal(buf_append(&t, (const char *)pub, 33), 0);
	SHA256((const unsigned char *)t.data, t.len, h);
	buf_free(&t);
	b64_encode(pub, 33, enc);
	snprintf(vline, vcap, "%s+%02x%02x%02x%02x+%s", name, h[0], h[1], h[2],
	    h[3], enc);
	{
		char file[300];

		snprintf(file, sizeof(file), "%s\n", vline);
		assert_int_equal(file_write_atomic(path, file, strlen(file),
		    0644), 0);
	}
	return k;
}

/* A different key: another area's, one of the same name, and the
 * checkpoint signed again by a key that is not the area's. */
static void
test_different_key(void **state)
{
	char other[700], vline[200], body[512], sigs[1024], line[400];
	char enc[B64_ENCODED_SIZE(68)], path[700], want[256];
	unsigned char blob[68], h[SHA256_DIGEST_LENGTH];
	size_t slen = 64;
	EVP_MD_CTX *ctx;
	EVP_PKEY *k;
	const char *name = "visor." AREA "/audit";
	cJSON *b;
	buf_t t;

	/* suffolk's real key */
	snprintf(other, sizeof(other), "%s/pki/suffolk/audit.vkey",
	    fx->env.dir);
	both_refuse_file("suffolk-key", fx->bundle, other, -1,
	    "visor.suffolk/audit is not visor." AREA "/audit",
	    "not the trusted key");

	/* a key of the same name */
	snprintf(other, sizeof(other), "%s/same-name.vkey", fx->env.dir);
	k = new_key(name, other, vline, sizeof(vline));
	both_refuse_file("same-name-key", fx->bundle, other, -1, "",
	    "not the trusted key");

	/* the checkpoint signed by that key (the bundle saying so too) */
	b = bundle_copy();
	checkpoint_parts(b, body, sizeof(body), sigs, sizeof(sigs));
	buf_init(&t, 0);
	assert_int_equal(buf_printf(&t, "%s\n", name), 0);
	{
		unsigned char pub[33];
		size_t plen = 32;

		pub[0] = 0x01;
		assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub + 1, &plen),
		    1);
		assert_int_equal(buf_append(&t, (const char *)pub, 33), 0);
	}
	SHA256((const unsigned char *)t.data, t.len, h);
	buf_free(&t);
	memcpy(blob, h, 4);
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(ctx, blob + 4, &slen,
	    (const unsigned char *)body, strlen(body)), 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	b64_encode(blob, 68, enc);
	snprintf(line, sizeof(line), "\xe2\x80\x94 %s %s\n", name, enc);
	set_checkpoint(b, body, line);
	/* the bundle still naming the area's key: no signature of it */
	{
		cJSON *c = cJSON_Duplicate(b, 1);

		assert_non_null(c);
		both_refuse("resigned-area-vkey", c, -1, "checkpoint signature",
		    "checkpoint signature");
	}
	assert_true(cJSON_ReplaceItemInObjectCaseSensitive(b, "vkey",
	    cJSON_CreateString(vline)));
	snprintf(path, sizeof(path), "%s", save("resigned", b));
	cJSON_Delete(b);
	/* The forgery is well made: with its own key both accept it ... */
	snprintf(want, sizeof(want), "%s", fx->verified);
	both_accept_file("resigned, its own key", path, other, want);
	/* ... and with the area's key both refuse it. */
	both_refuse_file("resigned", path, fx->vkey, -1, "",
	    "not the trusted key");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts_and_agrees),
		cmocka_unit_test(test_entry_byte_changed),
		cmocka_unit_test(test_entry_removed),
		cmocka_unit_test(test_entries_swapped),
		cmocka_unit_test(test_checkpoint_edited),
		cmocka_unit_test(test_signature_changed),
		cmocka_unit_test(test_different_key),
	};

	if (https_global_init() < 0)
		return 1;
	return gwt_exit(cmocka_run_group_tests_name("indep_verify", tests,
	    group_setup, group_teardown));
}
