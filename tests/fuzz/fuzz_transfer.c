/*
 * Fuzz target for the transfer wire formats (gateway/transfer_proto.c): the
 * body a peer posts and the receipt wrapper a peer answers with.  The first
 * byte picks which parser sees the rest.  Both must refuse bad input with
 * an error, never crash or leak.  A body that parses has its sent_at read
 * as the receiver reads it (rfc3339_epoch_ms, routes_transfers.c): as the
 * same instant as its canonical form, when it is one entries carry.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/tls_trust.h"
#include "gateway/transfer_proto.h"
#include "util/rfc3339.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	transfer_body_t t;
	transfer_receipt_t r;
	char err[256], canon[25];
	long long ms, ms2;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (transfer_body_parse((const char *)data + 1, size - 1, 32, &t, err,
		    sizeof(err)) == 0) {
			/* an offset or a long fraction has no canonical
			 * form (fuzz_decoders checks those) */
			if (rfc3339_epoch_ms(t.sent_at, &ms) == 0 &&
			    rfc3339_canonical(t.sent_at, canon) == 0 &&
			    (rfc3339_epoch_ms(canon, &ms2) < 0 || ms2 != ms))
				abort();
			transfer_body_free(&t);
		}
	} else {
		/* No trust set: a receipt must then fail at the certificate
		 * check, after the wrapper and PEM parsing ran. */
		(void)transfer_receipt_verify((const char *)data + 1, size - 1, NULL,
		    "urn:visor:suffolk:gateway", "0123456789abcdef0123456789abcdef",
		    "00", &r, err, sizeof(err));
	}
	return 0;
}
