/*
 * Fuzz target for the transfer wire formats (gateway/transfer_proto.c): the
 * body a peer posts and the receipt wrapper a peer answers with.  The first
 * byte picks which parser sees the rest.  Both must refuse bad input with
 * an error, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/tls_trust.h"
#include "gateway/transfer_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	transfer_body_t t;
	transfer_receipt_t r;
	char err[256];

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (transfer_body_parse((const char *)data + 1, size - 1, 32, &t, err,
		    sizeof(err)) == 0)
			transfer_body_free(&t);
	} else {
		/* No trust set: a receipt must then fail at the certificate
		 * check, after the wrapper and PEM parsing ran. */
		(void)transfer_receipt_verify((const char *)data + 1, size - 1, NULL,
		    "urn:visor:suffolk:gateway", "0123456789abcdef0123456789abcdef",
		    "00", &r, err, sizeof(err));
	}
	return 0;
}
