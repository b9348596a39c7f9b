/*
 * transfer_proto: the wire forms of SPEC section 9, shared by the sending
 * and the receiving gateway.
 *
 * Transfer body (POST /v1/peer/transfers), exactly these members:
 *   {"transfer_id","from_area","to_area","purpose","justification",
 *    "sent_at","record":{...}}
 * signed by the sender: X-Visor-Signature = base64(signature over the body
 * bytes) with the sender's gateway certificate key.
 *
 * Receipt (the 200 answer), self-contained so anyone holding the national
 * root can check it later:
 *   {"receipt":"<receipt JSON text>","signature":"<base64>",
 *    "certificate":"<receiver gateway certificate, PEM>"}
 * where the receipt text is
 *   {"transfer_id","digest","received_at","receiver","audit_index"}
 * and the signature covers the receipt text's bytes.  digest is the SHA-256
 * (hex) of the transfer body bytes as received.
 */
#ifndef GATEWAY_TRANSFER_PROTO_H
#define GATEWAY_TRANSFER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "crypto/tls_trust.h"
#include "util/buf.h"

#define TRANSFER_ID_LEN 32

/*
 * sent_at: the time the sender queued the transfer (SPEC 9, step 2), as
 * RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SS.fffZ" (the form of audit entry times)
 * from our senders; a receiver takes any RFC 3339 date-time, an offset
 * or a longer fraction included (rfc3339_epoch_ms: SPEC 9 fixes no form,
 * and a refusal is final).  A receiver refuses one that is not such a time (400
 * bad-sent-at, final), and one more than TRANSFER_SENT_AT_SKEW_S ahead of
 * its own clock (503 sent-at-ahead: a 5xx, which every sender retries, SPEC
 * 9, and it is taken once the clocks agree within the skew; a 4xx would
 * be final for a sender of the previous version).  An old one is taken whatever
 * its age: a delivery delayed by an outage carries the time it was
 * queued, up to transfer.deadline_s (30 days at most) before, and a
 * replay is answered by the transfer id, kept for ever, not by its age.
 */
#define TRANSFER_SENT_AT_SKEW_S 300

typedef struct {
	char transfer_id[80];
	char from_area[40];
	char to_area[40];
	char purpose[40];
	char justification[600];
	char sent_at[64];	/* an RFC 3339 date-time: 63 bytes at most */
	cJSON *record;		/* owned; free with transfer_body_free */
} transfer_body_t;

/* A new random transfer id (32 lowercase hex digits and NUL). */
int transfer_new_id(char out[TRANSFER_ID_LEN + 1]);

/* Append the body for these fields and record (compact JSON). */
int transfer_body_build(const transfer_body_t *t, const cJSON *record, buf_t *out);

/* Parse a received body strictly (exact member set, types, bounds, ids).
 * 0, or -1 with a reason in err. */
int transfer_body_parse(const char *body, size_t len, int max_depth,
    transfer_body_t *out, char *err, size_t errlen);
void transfer_body_free(transfer_body_t *t);

/* Build and sign a receipt wrapper. 0 or -1. */
int transfer_receipt_build(const char *transfer_id, const char *digest,
    const char *received_at, const char *receiver, uint64_t audit_index,
    EVP_PKEY *key, const char *cert_pem, buf_t *out);

typedef struct {
	char transfer_id[80];
	char digest[65];
	char received_at[32];
	char receiver[160];
	uint64_t audit_index;
} transfer_receipt_t;

/* Check a receipt wrapper: the certificate verifies against trust as a
 * server identity equal to expect_receiver, the signature verifies, the
 * receipt names expect_transfer_id and expect_digest.  expect_digest may be
 * NULL when the caller does not hold the bytes sent (visorctl): the digest
 * is then only checked to be 64 hex digits.  0, or -1 with err. */
int transfer_receipt_verify(const char *wrapper, size_t len,
    const tls_trust_t *trust, const char *expect_receiver,
    const char *expect_transfer_id, const char *expect_digest,
    transfer_receipt_t *out, char *err, size_t errlen);

#endif
