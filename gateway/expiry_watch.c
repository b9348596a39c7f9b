#include "gateway/expiry_watch.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

static void
rfc3339(long when, char out[32])
{
	struct tm tm;
	time_t t = (time_t)when;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%ld", when);
}

/* What stops working once the file of role has run out, and the fix. */
static const char *
action(const char *role)
{
	if (strcmp(role, "gateway") == 0)
		return "clients and peers refuse this gateway (expired) and it "
		    "cannot deliver transfers: renew it (visorctl certs renew) "
		    "and reload";
	if (strcmp(role, "crl") == 0)
		return "clients of its CA are refused (crl-expired) and the "
		    "next reload is refused: re-sign it (visorctl certs crl), "
		    "publish and reload";
	if (strcmp(role, "ca") == 0)
		return "every certificate it issued is refused: rotate the "
		    "area CA (docs/OPERATIONS.md 6.3)";
	return "every certificate is refused: replace the national root";
}

/* The clock is before the file's notBefore (a CRL's lastUpdate): the
 * load refuses such a file, so the clock went back since, or is behind
 * the issuer's by more than the five minutes the PKI code back-dates. */
static void
say_behind(const tls_expiry_t *e, long now)
{
	char when[32], behind[24];

	rfc3339(e->not_before, when);
	snprintf(behind, sizeof(behind), "%ld", e->not_before - now);
	log_event(LOG_ERROR, "clock-behind", "role", e->role, "file", e->file,
	    "not_before", when, "seconds_behind", behind, "action",
	    strcmp(e->role, "crl") == 0 ?
	    "this clock is before the CRL's lastUpdate: clients of its CA are "
	    "refused (crl-not-yet-valid) until it gets there; the clock was set "
	    "back or is behind the CA's: fix it (NTP)" :
	    "this clock is before the certificate's notBefore: it is refused "
	    "(not-yet-valid) until it gets there; the clock was set back or is "
	    "behind the CA's: fix it (NTP)", NULL);
}

static void
say(const tls_expiry_t *e, int state, long now)
{
	int crl = strcmp(e->role, "crl") == 0;
	char when[32], left[24];

	if (state == 3) {
		say_behind(e, now);
		return;
	}

	rfc3339(e->not_after, when);
	snprintf(left, sizeof(left), "%ld", e->not_after - now);
	if (state == 1 && crl)
		log_event(LOG_WARN, "crl-expiring", "file", e->file,
		    "next_update", when, "seconds_left", left, NULL);
	else if (state == 1)
		log_event(LOG_WARN, "cert-expiring", "role", e->role, "file",
		    e->file, "not_after", when, "seconds_left", left, NULL);
	else if (crl)
		log_event(LOG_ERROR, "crl-expired", "file", e->file,
		    "next_update", when, "action", action(e->role), NULL);
	else
		log_event(LOG_ERROR, "cert-expired", "role", e->role, "file",
		    e->file, "not_after", when, "action", action(e->role), NULL);
}

size_t
expiry_watch_check(expiry_watch_t *w, uint64_t gen, const tls_expiry_t *te,
    size_t n, long now, long long mono_ms)
{
	size_t i, said = 0;
	long warn;
	int state;

	if (w->gen != gen) {
		memset(w, 0, sizeof(*w));
		w->gen = gen;
	}
	for (i = 0; i < n && i < TLS_EXPIRY_MAX; i++) {
		/* A file that could not be read again has no date. */
		if (te[i].not_after < 0)
			continue;
		warn = strcmp(te[i].role, "crl") == 0 ? EXPIRY_WARN_CRL_S :
		    EXPIRY_WARN_CERT_S;
		/* As OpenSSL: expired once the time is not before it. */
		if (te[i].not_before >= 0 && now < te[i].not_before)
			state = 3;
		else if (now >= te[i].not_after)
			state = 2;
		else if (te[i].not_after - now <= warn)
			state = 1;
		else
			state = 0;
		if (state == 0)
			continue;
		if (state == w->e[i].state &&
		    mono_ms - w->e[i].said_ms < EXPIRY_REPEAT_MS)
			continue;
		say(&te[i], state, now);
		w->e[i].state = state;
		w->e[i].said_ms = mono_ms;
		said++;
	}
	return said;
}
