/*
 * b64: standard base64 (RFC 4648 section 4, with padding), strict decoding.
 */
#ifndef UTIL_B64_H
#define UTIL_B64_H

#include <stddef.h>

/* Bytes needed to encode n bytes, including the NUL. */
#define B64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)

/* Encode n bytes into out (at least B64_ENCODED_SIZE(n) bytes), NUL-ended.
 * Returns the encoded length. */
size_t b64_encode(const unsigned char *in, size_t n, char *out);

/* Decode exactly len characters (canonical padding required, no whitespace)
 * into out, of capacity outcap.  Returns the decoded length, or -1 if the
 * input is not canonical base64 or does not fit. */
long b64_decode(const char *in, size_t len, unsigned char *out, size_t outcap);

#endif
