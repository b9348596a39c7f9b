/*
 * Peer witnessing of the audit log (gateway/witness.h, routes_witness.c;
 * docs/AUDIT.md) on real gateways: after traffic Suffolk holds Norfolk's
 * latest checkpoint; Norfolk's store and checkpoint.last rolled back
 * together to an earlier copy (it starts: its own files agree) is caught
 * by Suffolk at the next send (409, error line, metric, deny entry in
 * Suffolk's own log) and by visorctl audit verify --witness; a forged
 * note, a wrong proof and a non-peer caller are refused; a peer that hangs
 * delays no transfer and no stop.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "crypto/merkle.h"
#include "crypto/note.h"
#include "tests/support/gwtest.h"
#include "tests/support/sleep.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/json.h"

typedef struct {
	gwt_env_t env;
	gwt_gw_t gw[3];
} fx_t;

static int
setup2(void **state)
{
	fx_t *f = calloc(1, sizeof(*f));

	if (f == NULL || gwt_env_setup(&f->env, "norfolk,suffolk") < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
setup3(void **state)
{
	fx_t *f = calloc(1, sizeof(*f));

	if (f == NULL || gwt_env_setup(&f->env, "norfolk,suffolk,essex") < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx_t *f = *state;
	size_t i;
	int rc = 0;

	for (i = 0; i < 3; i++)
		if (gwt_gw_stop_clean(&f->gw[i]) < 0)
			rc = -1;
	gwt_env_cleanup(&f->env);
	free(f);
	return rc;
}

static void
start_gw(fx_t *f, int i, const char *area)
{
	if (gwt_gw_start(&f->env, area, &f->gw[i]) < 0)
		fail_msg("cannot start %s (see %s/%s.log)", area, f->env.dir, area);
}

/* Set audit.witness_interval_s in area's configuration. */
static void
config_witness_interval(fx_t *f, const char *area, unsigned s)
{
	char rel[128];
	const char *path;
	cJSON *j, *a;

	snprintf(rel, sizeof(rel), "%s/gateway.json", area);
	path = gwt_path(&f->env, rel);
	assert_non_null(j = gwt_json_load(path));
	a = cJSON_GetObjectItemCaseSensitive(j, "audit");
	assert_non_null(a);
	cJSON_DeleteItemFromObjectCaseSensitive(a, "witness_interval_s");
	cJSON_AddNumberToObject(a, "witness_interval_s", s);
	assert_int_equal(gwt_json_save(path, j), 0);
	cJSON_Delete(j);
}

static const char *const put_hdrs[] = { "X-Visor-Actor: T100",
    "X-Visor-Purpose: risk-management",
    "X-Visor-Justification: integration test", NULL };
static const char *const move_hdrs[] = { "X-Visor-Actor: T100",
    "X-Visor-Purpose: offender-move",
    "X-Visor-Justification: integration test", NULL };

/* PUT a synthetic record id on gw (managed by norfolk) as its probation. */
static void
put_record(fx_t *f, const gwt_gw_t *gw, const char *id)
{
	buf_t body = BUF_INIT;
	gwt_resp_t r;
	char path[96], err[256];

	buf_printf(&body,
	    "{\"id\":\"%s\",\"managing_area\":\"norfolk\",\"category\":1,"
	    "\"level\":2,\"person\":{\"surname\":\"EXAMPLE\",\"forenames\":"
	    "\"Synthetic\",\"dob\":\"1980-01-02\",\"gender\":\"male\"},"
	    "\"risk\":{\"rosh\":\"high\",\"people_at_risk\":[\"synthetic\"]}}",
	    id);
	snprintf(path, sizeof(path), "/v1/records/%s", id);
	if (gwt_request(&f->env, gw, gw->area, "agency-probation", "PUT", path,
	    put_hdrs, body.data, body.len, &r, err, sizeof(err)) < 0)
		fail_msg("PUT %s: %s", id, err);
	if (r.status != 200 && r.status != 201)
		fail_msg("PUT %s: %ld %s", id, r.status, r.body.data);
	gwt_resp_free(&r);
	buf_free(&body);
}

static void
traffic(fx_t *f, const gwt_gw_t *gw, const char *prefix, int n)
{
	char id[48];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s-%04d", prefix, i);
		put_record(f, gw, id);
	}
}

/* GET path on gw as pki/<cert_area>/<name>; the status, body into out. */
static long
get_as(fx_t *f, const gwt_gw_t *gw, const char *cert_area, const char *name,
    const char *path, buf_t *out)
{
	gwt_resp_t r;
	char err[256];
	long st;

	if (gwt_request(&f->env, gw, cert_area, name, "GET", path, NULL, NULL, 0,
	    &r, err, sizeof(err)) < 0)
		fail_msg("GET %s: %s", path, err);
	st = r.status;
	if (out != NULL) {
		buf_reset(out);
		buf_append(out, r.body.data ? r.body.data : "", r.body.len);
		buf_append(out, "", 1);
		out->len--;
	}
	gwt_resp_free(&r);
	return st;
}

/* The size of a signed checkpoint note. */
static uint64_t
note_size(const char *note)
{
	const char *end = strstr(note, "\n\n");
	merkle_hash_t root;
	uint64_t size = 0;
	char err[128];

	assert_non_null(end);
	if (checkpoint_parse(note, (size_t)(end - note) + 1, NULL, &size, root,
	    err, sizeof(err)) < 0)
		fail_msg("checkpoint: %s", err);
	return size;
}

/* Wait until gw's checkpoint covers its whole log; that size. */
static uint64_t
checkpoint_settled(fx_t *f, const gwt_gw_t *gw, buf_t *note)
{
	unsigned long long audit;
	long long until = gwt_now_ms() + gwt_ms(15000);
	uint64_t size;

	for (;;) {
		assert_int_equal(gwt_audit_size(&f->env, gw, &audit), 0);
		/* 404 until the first checkpoint over entries is signed. */
		if (get_as(f, gw, gw->area, "auditor", "/v1/audit/checkpoint",
		    note) == 200)
			size = note_size(note->data);
		else
			size = UINT64_MAX;
		/* The health request itself adds no entry. */
		if (size == audit)
			return size;
		if (gwt_now_ms() > until)
			fail_msg("%s: checkpoint %llu, log %llu", gw->area,
			    (unsigned long long)size, audit);
		sleep_ms(100);
	}
}

/* The size of area's checkpoint that gw holds (as gw's auditor), or -1. */
static long long
witnessed_size(fx_t *f, const gwt_gw_t *gw, const char *area)
{
	buf_t out = BUF_INIT;
	char err[128];
	cJSON *j;
	const cJSON *it;
	long long size = -1;
	int64_t v;

	assert_int_equal(get_as(f, gw, gw->area, "auditor",
	    "/v1/audit/witnessed", &out), 200);
	assert_non_null(j = json_parse_strict(out.data, out.len, 8, err,
	    sizeof(err)));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j,
	    "witnessed")) {
		if (strcmp(json_get_str(it, "area"), area) == 0 &&
		    json_get_int(it, "size", 0, INT64_MAX, &v) == 0) {
			size = v;
			/* The note as received: it opens as that size. */
			assert_int_equal(note_size(json_get_str(it,
			    "checkpoint")), (uint64_t)v);
		}
	}
	cJSON_Delete(j);
	buf_free(&out);
	return size;
}

static void
wait_witnessed(fx_t *f, const gwt_gw_t *gw, const char *area, uint64_t want)
{
	long long until = gwt_now_ms() + gwt_ms(20000), got;

	while ((got = witnessed_size(f, gw, area)) != (long long)want) {
		if (gwt_now_ms() > until)
			fail_msg("%s holds %s's checkpoint of size %lld, not "
			    "%llu", gw->area, area, got,
			    (unsigned long long)want);
		sleep_ms(200);
	}
}

/* visorctl audit verify of gw's log as its auditor, witnessed by the
 * gateway witness: the exit status, output in out. */
static int
verify_witnessed(fx_t *f, const gwt_gw_t *gw, const gwt_gw_t *witness,
    buf_t *out)
{
	char url[64], wurl[64], cert[600];
	const char *argv[] = { gwt_prog(&f->env, "visorctl"), "audit", "verify",
	    "--gateway", url, "--cert", cert, "--no-state", "--witness", wurl,
	    NULL };
	buf_t se = BUF_INIT;
	int rc;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d", gw->port);
	snprintf(wurl, sizeof(wurl), "https://127.0.0.1:%d", witness->port);
	snprintf(cert, sizeof(cert), "%s/pki/%s/auditor.crt", f->env.dir,
	    gw->area);
	buf_reset(out);
	rc = gwt_run(argv, NULL, 0, out, &se);
	if (se.len > 0)
		buf_append(out, se.data, se.len);
	buf_append(out, "", 1);
	out->len--;
	buf_free(&se);
	return rc;
}

/* POST /v1/peer/checkpoints to gw as pki/<cert_area>/<name>, with note, a
 * proof from `from` (proof: a JSON array, "[]" for none). */
static long
post_checkpoint(fx_t *f, const gwt_gw_t *gw, const char *cert_area,
    const char *name, const char *note, uint64_t from, const char *proof,
    buf_t *out)
{
	const char *hdrs[] = { "Content-Type: application/json", NULL };
	buf_t body = BUF_INIT;
	gwt_resp_t r;
	char err[256];
	long st;

	buf_puts(&body, "{\"checkpoint\":");
	json_append_string(&body, note);
	buf_printf(&body, ",\"from\":%llu,\"proof\":%s}",
	    (unsigned long long)from, proof);
	if (gwt_request(&f->env, gw, cert_area, name, "POST",
	    "/v1/peer/checkpoints", hdrs, body.data, body.len, &r, err,
	    sizeof(err)) < 0)
		fail_msg("POST checkpoint: %s", err);
	st = r.status;
	if (out != NULL) {
		buf_reset(out);
		buf_append(out, r.body.data ? r.body.data : "", r.body.len);
		buf_append(out, "", 1);
		out->len--;
	}
	gwt_resp_free(&r);
	buf_free(&body);
	return st;
}

static void
run_ok(const char *const *argv)
{
	buf_t se = BUF_INIT;

	if (gwt_run(argv, NULL, 0, NULL, &se) != 0)
		fail_msg("%s failed: %s", argv[0], se.data ? se.data : "");
	buf_free(&se);
}

/* ---------------------------------------------------------- tests */

/*
 * After traffic, each gateway holds the other's latest checkpoint, as
 * received; this area's auditors see them all, a peer area's auditors
 * their own area's only, an agency nothing; visorctl audit verify
 * --witness passes.
 */
static void
test_witnessed_after_traffic(void **state)
{
	fx_t *f = *state;
	gwt_gw_t *nfk = &f->gw[0], *sfk = &f->gw[1];
	buf_t note = BUF_INIT, out = BUF_INIT;
	uint64_t size;
	double v;
	long st;

	config_witness_interval(f, "norfolk", 1);
	config_witness_interval(f, "suffolk", 1);
	start_gw(f, 0, "norfolk");
	start_gw(f, 1, "suffolk");
	traffic(f, nfk, "NFK-WIT", 5);
	size = checkpoint_settled(f, nfk, &note);
	assert_true(size >= 5);
	wait_witnessed(f, sfk, "norfolk", size);
	assert_true(gwt_log_wait(sfk, "event=peer-checkpoint-witnessed "
	    "peer=norfolk", 5000));
	/* Both ways: a read on Suffolk (a refusal, audited) grows its log. */
	st = get_as(f, sfk, "suffolk", "agency-police",
	    "/v1/records/SFK-NONE-0001", &out);
	assert_true(st >= 400 && st < 500);
	wait_witnessed(f, nfk, "suffolk", checkpoint_settled(f, sfk, &note));
	/* Norfolk's auditor at Suffolk: Norfolk's checkpoint only. */
	assert_int_equal(get_as(f, sfk, "norfolk", "auditor",
	    "/v1/audit/witnessed", &out), 200);
	assert_non_null(strstr(out.data, "\"area\":\"norfolk\""));
	assert_null(strstr(out.data, "\"area\":\"suffolk\""));
	assert_int_equal(get_as(f, sfk, "suffolk", "agency-police",
	    "/v1/audit/witnessed", &out), 403);
	assert_int_equal(get_as(f, sfk, "norfolk", "agency-police",
	    "/v1/audit/witnessed", &out), 403);
	if (verify_witnessed(f, nfk, sfk, &out) != 0)
		fail_msg("verify --witness: %s", out.data);
	assert_non_null(strstr(out.data, "witnessed by"));
	assert_int_equal(gwt_metric(sfk,
	    "visor_peer_log_inconsistent_total{peer=\"norfolk\"}", &v), 1);
	buf_free(&note);
	buf_free(&out);
}

/*
 * Norfolk's store and checkpoint.last rolled back together to an earlier
 * copy: Norfolk starts (its own files agree), and Suffolk, which holds a
 * later checkpoint, refuses the next one Norfolk sends: 409, an error
 * line, the metric, a deny entry in Suffolk's own log, and the held
 * checkpoint stays.  visorctl audit verify --witness fails.
 */
static void
test_rollback_detected(void **state)
{
	fx_t *f = *state;
	gwt_gw_t *nfk = &f->gw[0], *sfk = &f->gw[1];
	buf_t note = BUF_INIT, out = BUF_INIT;
	char data[600], old[600], line[160];
	uint64_t later;
	double v = 0;
	long long until;

	config_witness_interval(f, "norfolk", 1);
	config_witness_interval(f, "suffolk", 1);
	start_gw(f, 0, "norfolk");
	start_gw(f, 1, "suffolk");
	traffic(f, nfk, "NFK-RB-A", 3);
	wait_witnessed(f, sfk, "norfolk", checkpoint_settled(f, nfk, &note));
	assert_int_equal(gwt_gw_stop_clean(nfk), 0);
	snprintf(data, sizeof(data), "%s/norfolk/data", f->env.dir);
	snprintf(old, sizeof(old), "%s/norfolk/data.old", f->env.dir);
	{
		const char *cp[] = { "cp", "-a", data, old, NULL };
		run_ok(cp);
	}
	start_gw(f, 0, "norfolk");
	traffic(f, nfk, "NFK-RB-B", 8);
	later = checkpoint_settled(f, nfk, &note);
	wait_witnessed(f, sfk, "norfolk", later);
	assert_int_equal(gwt_gw_stop_clean(nfk), 0);
	{
		const char *rm[] = { "rm", "-rf", data, NULL };
		const char *mv[] = { "mv", old, data, NULL };
		run_ok(rm);
		run_ok(mv);
	}
	/* It starts: its store and checkpoint.last agree. */
	start_gw(f, 0, "norfolk");
	snprintf(line, sizeof(line), "event=peer-log-inconsistent peer=norfolk "
	    "held=%llu got=", (unsigned long long)later);
	assert_true(gwt_log_wait(sfk, line, 15000));
	assert_true(gwt_log_wait(nfk, "event=witness-refused peer=suffolk",
	    5000));
	until = gwt_now_ms() + gwt_ms(5000);
	while (gwt_metric(sfk, "visor_peer_log_inconsistent_total"
	    "{peer=\"norfolk\"}", &v) >= 0 && v < 1 && gwt_now_ms() < until)
		sleep_ms(100);
	assert_true(v >= 1);
	/* Held: the later checkpoint, not the rolled-back one, and the one
	 * refused beside it (the evidence, signed by Norfolk's key). */
	assert_int_equal(witnessed_size(f, sfk, "norfolk"), (long long)later);
	until = gwt_now_ms() + gwt_ms(5000);
	do {
		assert_int_equal(get_as(f, sfk, "suffolk", "auditor",
		    "/v1/audit/witnessed", &out), 200);
	} while (strstr(out.data, "\"refused\"") == NULL &&
	    gwt_now_ms() < until && (sleep_ms(100), 1));
	{
		char err[128];
		cJSON *j = json_parse_strict(out.data, out.len, 8, err,
		    sizeof(err));
		const cJSON *w, *ref;

		assert_non_null(j);
		w = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j,
		    "witnessed"), 0);
		assert_non_null(w);
		ref = cJSON_GetObjectItemCaseSensitive(w, "refused");
		assert_non_null(ref);
		assert_true(note_size(json_get_str(ref, "checkpoint")) < later);
		cJSON_Delete(j);
	}
	/* In Suffolk's own log, for its auditors. */
	assert_int_equal(get_as(f, sfk, "suffolk", "auditor",
	    "/v1/audit/search?op=deny", &out), 200);
	assert_non_null(strstr(out.data, "\"size\""));
	{
		/* The entries are base64: look for the reason decoded. */
		char err[128];
		cJSON *j = json_parse_strict(out.data, out.len, 8, err,
		    sizeof(err));
		const cJSON *it;
		int found = 0;

		assert_non_null(j);
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j,
		    "entries")) {
			const char *d = json_get_str(it, "data");
			unsigned char leaf[4096];
			long n = d ? b64_decode(d, strlen(d), leaf,
			    sizeof(leaf) - 1) : -1;

			if (n > 0) {
				leaf[n] = '\0';
				if (strstr((char *)leaf, "peer-log-inconsistent "
				    "rolled-back") != NULL &&
				    strstr((char *)leaf,
				    "urn:visor:norfolk:gateway") != NULL)
					found = 1;
			}
		}
		cJSON_Delete(j);
		assert_true(found);
	}
	/* The auditor of Norfolk, with Suffolk as witness. */
	assert_int_equal(verify_witnessed(f, nfk, sfk, &out), 1);
	assert_non_null(strstr(out.data, "rolled back"));
	buf_free(&note);
	buf_free(&out);
}

/* A note signed by another key under Norfolk's key name. */
static void
forge_note(uint64_t size, buf_t *out)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	note_signer_t *s;
	merkle_hash_t root;
	buf_t body = BUF_INIT;

	assert_non_null(k);
	memset(root, 0x5a, sizeof(root));
	assert_non_null(s = note_signer_new("visor.norfolk/audit", k));
	assert_int_equal(checkpoint_format("visor.norfolk/audit", size, root,
	    &body), 0);
	buf_reset(out);
	assert_int_equal(note_sign(s, body.data, body.len, out), 0);
	buf_append(out, "", 1);
	out->len--;
	note_signer_free(s);
	EVP_PKEY_free(k);
	buf_free(&body);
}

/*
 * By hand, as Norfolk's gateway (whose own sending is off): a forged note
 * is refused (403) and not held; a proof that does not verify is a fork
 * (409); a proof from another size than held gets the size held back; the
 * right proof moves the held checkpoint on; the earlier one again is a
 * rollback (409).  Not a peer gateway: 403.
 */
static void
test_forged_and_wrong_proof_refused(void **state)
{
	fx_t *f = *state;
	gwt_gw_t *nfk = &f->gw[0], *sfk = &f->gw[1];
	buf_t c1 = BUF_INIT, c2 = BUF_INIT, forged = BUF_INIT, out = BUF_INIT;
	buf_t proof = BUF_INIT, bad = BUF_INIT;
	uint64_t s1, s2;
	char path[128], want[64], err[128];
	const char *p;
	cJSON *j;
	double v = 0;

	config_witness_interval(f, "norfolk", 0);
	start_gw(f, 0, "norfolk");
	start_gw(f, 1, "suffolk");
	assert_true(gwt_log_contains(nfk, "event=witness-off"));
	traffic(f, nfk, "NFK-FP-A", 2);
	s1 = checkpoint_settled(f, nfk, &c1);
	assert_int_equal(post_checkpoint(f, sfk, "norfolk", "gateway", c1.data,
	    0, "[]", &out), 200);
	snprintf(want, sizeof(want), "\"size\":%llu", (unsigned long long)s1);
	assert_non_null(strstr(out.data, want));
	traffic(f, nfk, "NFK-FP-B", 3);
	s2 = checkpoint_settled(f, nfk, &c2);
	assert_true(s2 > s1);

	/* Forged: another key under Norfolk's key name. */
	forge_note(s2 + 10, &forged);
	assert_int_equal(post_checkpoint(f, sfk, "norfolk", "gateway",
	    forged.data, s1, "[]", &out), 403);
	assert_non_null(strstr(out.data, "bad-checkpoint-signature"));
	assert_true(gwt_log_wait(sfk, "event=peer-checkpoint-refused "
	    "peer=norfolk", 5000));
	assert_int_equal(witnessed_size(f, sfk, "norfolk"), (long long)s1);

	/* The real proof from s1 to s2, and one with a hash changed. */
	snprintf(path, sizeof(path), "/v1/audit/proof/consistency?from=%llu"
	    "&to=%llu", (unsigned long long)s1, (unsigned long long)s2);
	assert_int_equal(get_as(f, nfk, "norfolk", "auditor", path, &out), 200);
	assert_non_null(j = json_parse_strict(out.data, out.len, 8, err,
	    sizeof(err)));
	{
		char *t = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j,
		    "proof"));
		cJSON *first;

		buf_puts(&proof, t);
		buf_append(&proof, "", 1);
		proof.len--;
		cJSON_free(t);
		first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j,
		    "proof"), 0);
		assert_non_null(first);
		first->valuestring[0] = first->valuestring[0] == 'A' ? 'B' : 'A';
		t = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j,
		    "proof"));
		buf_puts(&bad, t);
		buf_append(&bad, "", 1);
		bad.len--;
		cJSON_free(t);
	}
	cJSON_Delete(j);
	assert_int_equal(post_checkpoint(f, sfk, "norfolk", "gateway", c2.data,
	    s1, bad.data, &out), 409);
	assert_non_null(strstr(out.data, "peer-log-inconsistent"));
	snprintf(path, sizeof(path), "event=peer-log-inconsistent peer=norfolk "
	    "held=%llu got=%llu", (unsigned long long)s1,
	    (unsigned long long)s2);
	assert_true(gwt_log_wait(sfk, path, 5000));
	assert_int_equal(witnessed_size(f, sfk, "norfolk"), (long long)s1);

	/* From another size than held (a sender that restarted): told the
	 * size held, nothing changes. */
	assert_int_equal(post_checkpoint(f, sfk, "norfolk", "gateway", c2.data,
	    0, "[]", &out), 200);
	assert_non_null(strstr(out.data, want));
	assert_int_equal(witnessed_size(f, sfk, "norfolk"), (long long)s1);

	/* The right proof. */
	assert_int_equal(post_checkpoint(f, sfk, "norfolk", "gateway", c2.data,
	    s1, proof.data, &out), 200);
	assert_int_equal(witnessed_size(f, sfk, "norfolk"), (long long)s2);
	/* The same again: nothing new, no alarm. */
	assert_int_equal(post_checkpoint(f, sfk, "norfolk", "gateway", c2.data,
	    s2, "[]", &out), 200);
	/* The earlier one again: rolled back. */
	assert_int_equal(post_checkpoint(f, sfk, "norfolk", "gateway", c1.data,
	    0, "[]", &out), 409);
	assert_int_equal(witnessed_size(f, sfk, "norfolk"), (long long)s2);
	assert_int_equal(gwt_metric(sfk, "visor_peer_log_inconsistent_total"
	    "{peer=\"norfolk\"}", &v), 0);
	assert_true(v == 2);

	/* Not a peer gateway. */
	assert_int_equal(post_checkpoint(f, sfk, "norfolk", "agency-police",
	    c2.data, s2, "[]", &out), 403);
	assert_int_equal(post_checkpoint(f, sfk, "suffolk", "auditor",
	    c2.data, s2, "[]", &out), 403);
	/* Suffolk's own gateway certificate is not a peer of Suffolk. */
	assert_int_equal(post_checkpoint(f, sfk, "suffolk", "gateway",
	    c2.data, s2, "[]", &out), 403);
	p = out.data;
	assert_non_null(strstr(p, "forbidden"));
	buf_free(&c1);
	buf_free(&c2);
	buf_free(&forged);
	buf_free(&out);
	buf_free(&proof);
	buf_free(&bad);
}

/*
 * Suffolk hangs (SIGSTOP: its kernel takes the bytes, nothing answers)
 * while Norfolk's checkpoint grows, so Norfolk's witness sender waits on
 * it (a send on a kept-alive connection, 10 s timeout): a transfer to
 * Essex is delivered at once all the same, and Norfolk stops without
 * waiting for the send.
 */
static void
test_peer_down_no_delay(void **state)
{
	fx_t *f = *state;
	gwt_gw_t *nfk = &f->gw[0], *sfk = &f->gw[1];
	buf_t note = BUF_INIT, out = BUF_INIT;
	const char *hdrs[] = { "X-Visor-Actor: T100",
	    "X-Visor-Purpose: offender-move",
	    "X-Visor-Justification: integration test",
	    "Content-Type: application/json", NULL };
	const char *body = "{\"record_id\":\"NFK-DN-0000\",\"to_area\":"
	    "\"essex\",\"purpose\":\"offender-move\",\"justification\":"
	    "\"integration test\"}";
	char tid[80], path[128], err[256];
	long long t0, took;
	gwt_resp_t r;
	cJSON *j;

	config_witness_interval(f, "norfolk", 1);
	start_gw(f, 0, "norfolk");
	start_gw(f, 1, "suffolk");
	start_gw(f, 2, "essex");
	traffic(f, nfk, "NFK-DN", 1);
	wait_witnessed(f, sfk, "norfolk", checkpoint_settled(f, nfk, &note));
	assert_int_equal(kill(sfk->pid, SIGSTOP), 0);
	/* A new checkpoint: Norfolk sends it, and Suffolk does not answer. */
	traffic(f, nfk, "NFK-DN-X", 2);
	sleep_ms(gwt_ms(3000));
	t0 = gwt_now_ms();
	assert_int_equal(gwt_request(&f->env, nfk, "norfolk", "agency-police",
	    "POST", "/v1/transfers", hdrs, body, strlen(body), &r, err,
	    sizeof(err)), 0);
	assert_int_equal(r.status, 202);
	assert_non_null(j = json_parse_strict(r.body.data, r.body.len, 4, err,
	    sizeof(err)));
	snprintf(tid, sizeof(tid), "%s", json_get_str(j, "transfer_id"));
	cJSON_Delete(j);
	gwt_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/transfers/%s", tid);
	for (;;) {
		assert_int_equal(gwt_request(&f->env, nfk, "norfolk",
		    "agency-police", "GET", path, move_hdrs, NULL, 0, &r, err,
		    sizeof(err)), 0);
		if (strstr(r.body.data, "\"delivered\"") != NULL)
			break;
		gwt_resp_free(&r);
		if (gwt_now_ms() - t0 > gwt_ms(5000))
			fail_msg("the transfer to essex waited on suffolk");
		sleep_ms(50);
	}
	gwt_resp_free(&r);
	took = gwt_now_ms() - t0;
	fprintf(stderr, "  (delivered to essex in %lld ms)\n", took);
	/* The send to Suffolk, on the connection kept alive from the sends
	 * before, is still in flight (it would time out 10 s after it
	 * began): it has not been given up yet, and the stop cuts it off
	 * (without that, the stop waits out its timeout, about 5 s more). */
	assert_false(gwt_log_contains(nfk, "event=witness-peer-unavailable"));
	t0 = gwt_now_ms();
	assert_int_equal(gwt_gw_stop_clean(nfk), 0);
	took = gwt_now_ms() - t0;
	assert_int_equal(kill(sfk->pid, SIGCONT), 0);
	fprintf(stderr, "  (stopped in %lld ms)\n", took);
	assert_true(took < gwt_ms(4000));
	buf_free(&note);
	buf_free(&out);
}

/* Set Suffolk's peers[0] (Norfolk) audit_vkey to path (NULL: remove). */
static void
config_peer_vkey(fx_t *f, const char *path)
{
	const char *cfg = gwt_path(&f->env, "suffolk/gateway.json");
	cJSON *j, *p;

	assert_non_null(j = gwt_json_load(cfg));
	p = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "peers"), 0);
	assert_non_null(p);
	assert_string_equal(json_get_str(p, "area"), "norfolk");
	cJSON_DeleteItemFromObjectCaseSensitive(p, "audit_vkey");
	if (path != NULL)
		cJSON_AddStringToObject(p, "audit_vkey", path);
	assert_int_equal(gwt_json_save(cfg, j), 0);
	cJSON_Delete(j);
}

/* visor-gw --check-config on Suffolk: the exit status; stderr in err. */
static int
check_config(fx_t *f, buf_t *err)
{
	const char *argv[] = { gwt_prog(&f->env, "visor-gw"), "--config",
	    gwt_path(&f->env, "suffolk/gateway.json"), "--check-config", NULL };
	int rc;

	buf_reset(err);
	rc = gwt_run(argv, NULL, 0, NULL, err);
	buf_append(err, "", 1);
	err->len--;
	return rc;
}

/*
 * peers[].audit_vkey: quickstart names each peer's audit.vkey, which
 * loads; another area's key, a missing file or a line that is not a
 * verifier key is refused naming the key; without it the peer is not
 * witnessed, said once at start, and its checkpoints are refused
 * (403 not-witnessed) and not held.
 */
static void
test_config_audit_vkey(void **state)
{
	fx_t *f = *state;
	gwt_gw_t *nfk = &f->gw[0], *sfk = &f->gw[1];
	buf_t err = BUF_INIT, note = BUF_INIT, out = BUF_INIT;
	char path[600];

	assert_int_equal(check_config(f, &err), 0);
	snprintf(path, sizeof(path), "%s/pki/suffolk/audit.vkey", f->env.dir);
	config_peer_vkey(f, path);
	assert_int_not_equal(check_config(f, &err), 0);
	assert_non_null(strstr(err.data, "peers[0].audit_vkey"));
	assert_non_null(strstr(err.data, "is not the key of norfolk's audit "
	    "log"));
	snprintf(path, sizeof(path), "%s/pki/norfolk/none.vkey", f->env.dir);
	config_peer_vkey(f, path);
	assert_int_not_equal(check_config(f, &err), 0);
	assert_non_null(strstr(err.data, "peers[0].audit_vkey"));
	snprintf(path, sizeof(path), "%s/pki/norfolk/ca.crt", f->env.dir);
	config_peer_vkey(f, path);
	assert_int_not_equal(check_config(f, &err), 0);
	assert_non_null(strstr(err.data, "peers[0].audit_vkey"));
	config_witness_interval(f, "suffolk", 86401);
	config_peer_vkey(f, NULL);
	assert_int_not_equal(check_config(f, &err), 0);
	assert_non_null(strstr(err.data, "audit.witness_interval_s"));
	config_witness_interval(f, "suffolk", 1);
	assert_int_equal(check_config(f, &err), 0);

	/* Without the key: not witnessed. */
	config_witness_interval(f, "norfolk", 0);
	start_gw(f, 0, "norfolk");
	start_gw(f, 1, "suffolk");
	assert_true(gwt_log_contains(sfk, "event=peer-not-witnessed "
	    "peer=norfolk"));
	traffic(f, nfk, "NFK-NW", 1);
	checkpoint_settled(f, nfk, &note);
	assert_int_equal(post_checkpoint(f, sfk, "norfolk", "gateway",
	    note.data, 0, "[]", &out), 403);
	assert_non_null(strstr(out.data, "not-witnessed"));
	assert_int_equal(witnessed_size(f, sfk, "norfolk"), -1);
	buf_free(&err);
	buf_free(&note);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_witnessed_after_traffic,
		    setup2, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_detected, setup2,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_forged_and_wrong_proof_refused, setup2, teardown),
		cmocka_unit_test_setup_teardown(test_peer_down_no_delay, setup3,
		    teardown),
		cmocka_unit_test_setup_teardown(test_config_audit_vkey, setup2,
		    teardown),
	};

	return gwt_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
