#include "gateway/transfer_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "crypto/identity.h"
#include "crypto/sig.h"
#include "util/json.h"

int
transfer_new_id(char out[TRANSFER_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[TRANSFER_ID_LEN / 2];
	size_t i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	for (i = 0; i < sizeof(rnd); i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 15];
	}
	out[TRANSFER_ID_LEN] = '\0';
	return 0;
}

int
transfer_body_build(const transfer_body_t *t, const cJSON *record, buf_t *out)
{
	cJSON *o = cJSON_CreateObject(), *rec;
	char *s;
	int rc = -1;

	if (o == NULL)
		return -1;
	if (cJSON_AddStringToObject(o, "transfer_id", t->transfer_id) == NULL ||
	    cJSON_AddStringToObject(o, "from_area", t->from_area) == NULL ||
	    cJSON_AddStringToObject(o, "to_area", t->to_area) == NULL ||
	    cJSON_AddStringToObject(o, "purpose", t->purpose) == NULL ||
	    cJSON_AddStringToObject(o, "justification", t->justification) == NULL ||
	    cJSON_AddStringToObject(o, "sent_at", t->sent_at) == NULL)
		goto out;
	if ((rec = cJSON_Duplicate(record, 1)) == NULL)
		goto out;
	cJSON_AddItemToObject(o, "record", rec);
	if ((s = cJSON_PrintUnformatted(o)) == NULL)
		goto out;
	rc = buf_puts(out, s);
	OPENSSL_cleanse(s, strlen(s));
	free(s);
out:
	cJSON_Delete(o);
	return rc;
}

static int
valid_tid(const char *s)
{
	size_t i, n = strlen(s);

	if (n != TRANSFER_ID_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
copy_member(const cJSON *o, const char *key, char *out, size_t outlen,
    char *err, size_t errlen)
{
	const char *v = json_get_str(o, key);

	if (v == NULL) {
		snprintf(err, errlen, "%s: missing or not a string", key);
		return -1;
	}
	if (strlen(v) >= outlen) {
		snprintf(err, errlen, "%s: too long", key);
		return -1;
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int
transfer_body_parse(const char *body, size_t len, int max_depth,
    transfer_body_t *t, char *err, size_t errlen)
{
	static const char *const members[] = { "transfer_id", "from_area",
	    "to_area", "purpose", "justification", "sent_at", "record", NULL };
	cJSON *o;
	const cJSON *it;
	size_t i, n = 0;

	memset(t, 0, sizeof(*t));
	if ((o = json_parse_strict(body, len, max_depth, err, errlen)) == NULL)
		return -1;
	if (!cJSON_IsObject(o)) {
		snprintf(err, errlen, "body must be a JSON object");
		goto fail;
	}
	for (it = o->child; it != NULL; it = it->next, n++) {
		for (i = 0; members[i] != NULL; i++)
			if (strcmp(it->string, members[i]) == 0)
				break;
		if (members[i] == NULL) {
			snprintf(err, errlen, "%.64s: unknown member", it->string);
			goto fail;
		}
	}
	if (n != 7) {
		snprintf(err, errlen, "body must have exactly the 7 members of SPEC section 9");
		goto fail;
	}
	if (copy_member(o, "transfer_id", t->transfer_id, sizeof(t->transfer_id), err, errlen) < 0 ||
	    copy_member(o, "from_area", t->from_area, sizeof(t->from_area), err, errlen) < 0 ||
	    copy_member(o, "to_area", t->to_area, sizeof(t->to_area), err, errlen) < 0 ||
	    copy_member(o, "purpose", t->purpose, sizeof(t->purpose), err, errlen) < 0 ||
	    copy_member(o, "justification", t->justification, sizeof(t->justification), err, errlen) < 0 ||
	    copy_member(o, "sent_at", t->sent_at, sizeof(t->sent_at), err, errlen) < 0)
		goto fail;
	if (!valid_tid(t->transfer_id)) {
		snprintf(err, errlen, "transfer_id: must be 32 lowercase hex digits");
		goto fail;
	}
	if (!identity_valid_label(t->from_area, strlen(t->from_area)) ||
	    !identity_valid_label(t->to_area, strlen(t->to_area))) {
		snprintf(err, errlen, "from_area/to_area: must match [a-z0-9-]{1,32}");
		goto fail;
	}
	if (strlen(t->justification) > 512) {
		snprintf(err, errlen, "justification: at most 512 bytes");
		goto fail;
	}
	t->record = cJSON_DetachItemFromObjectCaseSensitive(o, "record");
	if (!cJSON_IsObject(t->record)) {
		snprintf(err, errlen, "record: must be an object");
		goto fail;
	}
	cJSON_Delete(o);
	return 0;
fail:
	cJSON_Delete(o);
	transfer_body_free(t);
	return -1;
}

void
transfer_body_free(transfer_body_t *t)
{
	if (t == NULL)
		return;
	cJSON_Delete(t->record);
	t->record = NULL;
}

int
transfer_receipt_build(const char *transfer_id, const char *digest,
    const char *received_at, const char *receiver, uint64_t audit_index,
    EVP_PKEY *key, const char *cert_pem, buf_t *out)
{
	buf_t receipt = BUF_INIT, sig = BUF_INIT;
	cJSON *w = NULL;
	char *s = NULL;
	int rc = -1;

	if (buf_printf(&receipt, "{\"transfer_id\":\"%s\",\"digest\":\"%s\","
	    "\"received_at\":\"%s\",\"receiver\":\"%s\",\"audit_index\":%llu}",
	    transfer_id, digest, received_at, receiver,
	    (unsigned long long)audit_index) < 0)
		goto out;
	if (sig_sign(key, receipt.data, receipt.len, &sig) < 0)
		goto out;
	if ((w = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(w, "receipt", receipt.data) == NULL ||
	    cJSON_AddStringToObject(w, "signature", sig.data) == NULL ||
	    cJSON_AddStringToObject(w, "certificate", cert_pem) == NULL ||
	    (s = cJSON_PrintUnformatted(w)) == NULL)
		goto out;
	rc = buf_puts(out, s);
out:
	free(s);
	cJSON_Delete(w);
	buf_free(&receipt);
	buf_free(&sig);
	return rc;
}

int
transfer_receipt_verify(const char *wrapper, size_t len,
    const tls_trust_t *trust, const char *expect_receiver,
    const char *expect_transfer_id, const char *expect_digest,
    transfer_receipt_t *out, char *err, size_t errlen)
{
	cJSON *w = NULL, *r = NULL;
	const char *rtext, *sigb64, *pem, *s;
	X509 *cert = NULL;
	BIO *bio = NULL;
	identity_t id;
	char reason[48];
	int64_t idx;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((w = json_parse_strict(wrapper, len, 4, err, errlen)) == NULL)
		return -1;
	rtext = json_get_str(w, "receipt");
	sigb64 = json_get_str(w, "signature");
	pem = json_get_str(w, "certificate");
	if (rtext == NULL || sigb64 == NULL || pem == NULL) {
		snprintf(err, errlen, "receipt: needs receipt, signature and certificate");
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)strlen(pem))) == NULL ||
	    (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "receipt: certificate is not PEM");
		goto out;
	}
	if (trust == NULL) {
		snprintf(err, errlen, "receipt: no trust set to check it against");
		goto out;
	}
	if (tls_trust_verify(trust, cert, NULL, TLS_ROLE_SERVER, &id, reason,
	    sizeof(reason)) < 0) {
		snprintf(err, errlen, "receipt: signer certificate refused: %s", reason);
		goto out;
	}
	if (strcmp(id.uri, expect_receiver) != 0) {
		snprintf(err, errlen, "receipt: signed by %s, not %s", id.uri,
		    expect_receiver);
		goto out;
	}
	if (sig_verify_cert(cert, rtext, strlen(rtext), sigb64, strlen(sigb64)) < 0) {
		snprintf(err, errlen, "receipt: signature does not verify");
		goto out;
	}
	if ((r = json_parse_strict(rtext, strlen(rtext), 2, err, errlen)) == NULL)
		goto out;
	if ((s = json_get_str(r, "transfer_id")) == NULL ||
	    strcmp(s, expect_transfer_id) != 0) {
		snprintf(err, errlen, "receipt: names another transfer");
		goto out;
	}
	snprintf(out->transfer_id, sizeof(out->transfer_id), "%s", s);
	if ((s = json_get_str(r, "digest")) == NULL || strlen(s) != 64 ||
	    strspn(s, "0123456789abcdef") != 64 ||
	    (expect_digest != NULL && strcmp(s, expect_digest) != 0)) {
		snprintf(err, errlen, "receipt: digest differs from what was sent");
		goto out;
	}
	snprintf(out->digest, sizeof(out->digest), "%s", s);
	if ((s = json_get_str(r, "receiver")) == NULL || strcmp(s, expect_receiver) != 0) {
		snprintf(err, errlen, "receipt: names another receiver");
		goto out;
	}
	snprintf(out->receiver, sizeof(out->receiver), "%s", s);
	if ((s = json_get_str(r, "received_at")) == NULL || strlen(s) >= sizeof(out->received_at)) {
		snprintf(err, errlen, "receipt: bad received_at");
		goto out;
	}
	snprintf(out->received_at, sizeof(out->received_at), "%s", s);
	if (json_get_int(r, "audit_index", 0, INT64_MAX, &idx) != 0) {
		snprintf(err, errlen, "receipt: bad audit_index");
		goto out;
	}
	out->audit_index = (uint64_t)idx;
	rc = 0;
out:
	cJSON_Delete(r);
	cJSON_Delete(w);
	X509_free(cert);
	BIO_free(bio);
	return rc;
}
