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

/* The instant in, an RFC 3339 date-time (section 5.6: a date and time to
 * the second, any fraction, then "Z" or an offset "+HH:MM"/"-HH:MM"), as
 * milliseconds since 1970-01-01T00:00:00Z in *ms: a fraction's digits
 * past the third are dropped, and a leap second (:60) counts as the
 * second after :59.  Wider than rfc3339_canonical, which takes only the
 * UTC forms entries carry: this reads times other programs write
 * (sent_at).  0, or -1 if in is not such a time. */
int rfc3339_epoch_ms(const char *in, long long *ms);

/* 1 if t is a time rfc3339_canonical takes and its canonical form is at
 * or after since and before until (each canonical, or NULL for no
 * bound); 0 otherwise, a t that is not such a time included. */
int rfc3339_in_range(const char *t, const char *since, const char *until);

#endif
