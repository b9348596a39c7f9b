/*
 * rfc3339: the one canonical form of a time that audit entries carry, so
 * that times compare as strings.
 */
#ifndef UTIL_RFC3339_H
#define UTIL_RFC3339_H

/* Accepts YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, or that with a .f to .fff
 * fraction, and writes YYYY-MM-DDTHH:MM:SS.mmmZ (25 bytes with NUL): the
 * form of every stored entry time.  0, or -1 if in is none of those or
 * names no real day. */
int rfc3339_canonical(const char *in, char out[25]);

#endif
