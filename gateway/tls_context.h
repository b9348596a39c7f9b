/*
 * tls_context: the gateway's TLS server context, built from the
 * configuration: TLS 1.3 only, client certificate required and verified
 * against the trust set with the visor rules (crypto/tls_trust.h) during the
 * handshake, no session resumption (so no handshake skips the checks, and a
 * revocation applies to the next connection).
 *
 * A context is immutable and reference counted: SIGHUP builds a new one
 * and swaps it in; connections keep the one they started with.
 */
#ifndef GATEWAY_TLS_CONTEXT_H
#define GATEWAY_TLS_CONTEXT_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "crypto/identity.h"
#include "crypto/tls_trust.h"
#include "gateway/config.h"

typedef struct tls_context tls_context_t;

/* What a connection knows once its handshake is done (attached to the SSL
 * object; freed with it). */
typedef struct {
	int verified;		/* 1: identity below is checked */
	int handshake_done;	/* the handshake completed (info callback) */
	identity_t identity;
	char cert_sha256[65];	/* of the presented leaf, refused or not ("" if none) */
	char reason[48];	/* why the handshake was refused, "" if not */
	char peer_addr[64];
	void *server_data;	/* for the server's per-connection state */
	unsigned long checked_serial;	/* serial of the context that last
					   verified the peer (see
					   tls_context_recheck) */
	long valid_until;	/* time_t: the verdict holds to this second
				   (chain notAfter, CRL nextUpdate); -1:
				   take it again at the next request */
	tls_context_t *owner;	/* the context the connection was accepted
				   with; a reference held until the SSL is
				   freed, so that its refusal is still
				   reported after a reload */
} tls_conn_t;

/* The reason given for a connection that closed before sending a byte:
 * not a handshake that was refused, so not audited (gateway/server.c). */
#define TLS_CLOSED_BEFORE_HELLO "closed-before-hello"

/* Called once for every refused handshake, with the reason code and the
 * peer address (may be ""), from the thread running the connection. */
typedef void (*tls_refused_fn)(const char *reason, const char *peer_addr,
    const char *cert_sha256);

/* Build a context from cfg (certificate, key, trust, CRLs).  Returns NULL with
 * a message in err. */
tls_context_t *tls_context_load(const config_t *cfg, tls_refused_fn refused,
    char *err, size_t errlen);

/* Reference counting: new contexts start with one reference. */
void tls_context_ref(tls_context_t *t);
void tls_context_unref(tls_context_t *t);

/* A new server-side SSL for an accepted connection, with a tls_conn_t
 * attached.  NULL on failure. */
SSL *tls_context_new_ssl(tls_context_t *t);

/* The connection state of ssl (never NULL for an SSL from this module). */
tls_conn_t *tls_conn_get(SSL *ssl);

/* Check that the verified peer of ssl is still accepted by t.  A
 * connection keeps the context it was accepted with; after a reload (new
 * CRL, new CAs) its peer is verified again against t's trust set, once per
 * context, and must keep the same identity.  So it is once a certificate
 * of its chain has expired or the CRL covering it has passed its
 * nextUpdate.  Returns 0 if accepted, -1 with
 * a reason code ("revoked", ...) in reason otherwise. */
int tls_context_recheck(const tls_context_t *t, SSL *ssl, char *reason,
    size_t reasonlen);

/* The trust set in use (owned by t). */
const tls_trust_t *tls_context_trust(const tls_context_t *t);

/* Seconds until the gateway certificate expires; and the earliest CRL
 * nextUpdate (for metrics).  -1 if unknown. */
long tls_context_cert_expiry_s(const tls_context_t *t);
long tls_context_crl_expiry_s(const tls_context_t *t);

/* One loaded certificate or CRL and when it stops being usable. */
#define TLS_EXPIRY_MAX (2 + 2 * CONFIG_MAX_FILES)
typedef struct {
	char role[12];		/* "gateway", "root", "ca" or "crl" */
	char file[1024];	/* the path as configured */
	long not_before;	/* notBefore, or the latest lastUpdate of the
				   file's CRLs (time_t); -1 if unknown */
	long not_after;		/* notAfter, or the CRL's nextUpdate (time_t);
				   -1 if the file could not be read */
} tls_expiry_t;

/* The gateway certificate, the root, every CA certificate and every CRL of
 * the context, in that order, as read when the context was built.  *out
 * points into t (valid while t is).  Returns the count. */
size_t tls_context_expiries(const tls_context_t *t, const tls_expiry_t **out);

/* Set a function called when a tls_conn_t is freed (server bookkeeping). */
void tls_context_set_conn_free_hook(void (*fn)(tls_conn_t *c));

#endif
