/*
 * expiry_watch: says in the log, ahead of time and when it happens, that a
 * certificate or CRL the gateway loaded runs out.  /metrics has the same
 * figures (visor_certificate_expiry_days, visor_crl_expiry_days), but a
 * gateway nobody scrapes only has its log, and once its own certificate
 * has expired its clients and peers only see a refused handshake.
 *
 *   event=cert-expiring role=gateway file=... not_after=... seconds_left=N
 *     (warn) within EXPIRY_WARN_CERT_S of a certificate's notAfter
 *   event=crl-expiring file=... next_update=... seconds_left=N
 *     (warn) within EXPIRY_WARN_CRL_S of a CRL file's earliest nextUpdate
 *   event=cert-expired / event=crl-expired (error) once it has passed,
 *     with what it breaks and what to do (action=...)
 *   event=clock-behind role=... file=... not_before=... seconds_behind=N
 *     (error) while the clock is before a certificate's notBefore or a
 *     CRL file's latest lastUpdate: the clock was set back after the load
 *     (which refuses such a file), and that file's clients are refused as
 *     not-yet-valid / crl-not-yet-valid
 *
 * Each is written at start and at every reload that loads the file again
 * (a reload is when an operator looks), when the file enters the next
 * state, and then once every EXPIRY_REPEAT_MS while it stays there.
 */
#ifndef GATEWAY_EXPIRY_WATCH_H
#define GATEWAY_EXPIRY_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/tls_context.h"

#define EXPIRY_WARN_CERT_S (30L * 86400)	/* as visorctl status, and the
						   suggested alert */
#define EXPIRY_WARN_CRL_S (7L * 86400)
#define EXPIRY_REPEAT_MS (86400LL * 1000)

typedef struct {
	uint64_t gen;			/* the generation the states are for */
	struct {
		int state;		/* 0 current, 1 expiring, 2 expired,
					   3 clock behind */
		long long said_ms;	/* monotonic ms of the last line */
	} e[TLS_EXPIRY_MAX];
} expiry_watch_t;

/* Look at the expiry table te (n entries, tls_context_expiries) of
 * generation gen at wall-clock time now (time_t) and monotonic time
 * mono_ms, and write the lines above that are due.  A new gen starts every
 * file afresh.  w starts zeroed.  Returns how many lines were written. */
size_t expiry_watch_check(expiry_watch_t *w, uint64_t gen,
    const tls_expiry_t *te, size_t n, long now, long long mono_ms);

#endif
