/*
 * https_client: the project's HTTPS client over mutually-authenticated TLS
 * (libcurl with its OpenSSL backend).  This is the only module that includes
 * curl/curl.h.
 *
 * Every connection:
 *   - presents the client certificate and key: the PEM bytes read (or
 *     given) and checked when the client was made (a key file without
 *     following a symbolic link, mode 0600 checked on the open file),
 *     handed to curl as they are, never read again from the files;
 *   - trusts only the national root (root); the server sends its area CA as
 *     chain; with CRL files (each holding one or more PEM CRLs, read as
 *     tls_trust_read_crls does), the server's certificate is checked
 *     against every CRL signed by its issuer: one must be current
 *     (lastUpdate passed, nextUpdate not) and none may list it, in the
 *     verify callback below;
 *   - is not used for a request once the verdict on its server has run
 *     out: past the earliest notAfter of the server's chain, or the
 *     nextUpdate of the CRL it was checked against (the latest of the
 *     current ones), a kept-alive connection is dropped before the request
 *     is written, and the request goes on a new connection, whose
 *     handshake checks the server again;
 *   - requires TLS 1.3 and HTTP/1.1 with keep-alive and TCP_NODELAY;
 *   - checks the server's identity during the handshake, in an OpenSSL
 *     verify callback, before any request byte is sent, by the rules the
 *     gateway applies to its own clients (tls_trust_check_identity, as a
 *     server): an end entity, not a CA; serverAuth in its EKU; exactly one
 *     URI subjectAltName, parsing as a gateway identity (crypto/identity.h);
 *     its area that of the CA that issued it (urn:visor:<area>:ca); and, if
 *     expect_identity is set, expect_identity exactly.
 *
 * curl's host name check is turned off: visor peers are named by URI
 * identity (SPEC section 3), not by DNS name, and gateways are reached by
 * address (127.0.0.1 in the quickstart); the URI check above replaces it and
 * is stricter.  TLS session resumption is off so that every new connection
 * runs the full verification (SPEC section 3: resumption must not skip the
 * checks).
 *
 * Threads: https_global_init() is safe to call from any thread, any number
 * of times (pthread_once); https_client_new calls it too.  A client (and a
 * batch made from it) is used by one thread at a time; separate clients may
 * run in separate threads.
 */
#ifndef CLIENT_HTTPS_CLIENT_H
#define CLIENT_HTTPS_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>

#include "util/buf.h"

#define HTTPS_MAX_RESPONSE_DEFAULT (16u << 20)	/* 16 MiB */
#define HTTPS_TIMEOUT_DEFAULT_MS 30000L
#define HTTPS_CONN_MAX_AGE_DEFAULT_S 60L

typedef struct https_client https_client_t;

typedef struct {
	const char *cert;		/* client certificate file, PEM;
					 * may be followed by its area CA,
					 * which is then sent as chain */
	const char *key;		/* its private key file, PEM */
	/* Or the pair as PEM bytes, in place of cert and key (both NULL
	 * then): a caller that loaded them (a gateway's configuration
	 * generation) hands over what it holds, so that the certificate
	 * presented and the key are the ones it signs with, whatever the
	 * files say by now.  Copied; the key copy is wiped when freed. */
	const char *cert_pem;
	size_t cert_pem_len;
	const char *key_pem;
	size_t key_pem_len;
	const char *root;		/* national root file, PEM */
	const char *const *crls;	/* CRL files, PEM, one or more CRLs
					 * each; may be NULL */
	size_t n_crls;
	/* Or the root and the CRLs as PEM bytes, in place of the files
	 * (root NULL, no CRL files then): a gateway hands over the trust
	 * set its configuration generation loaded, so that a delivery
	 * trusts and refuses what an inbound connection does, whatever
	 * the files say by now.  crls_pem holds one or more CRLs (read as
	 * tls_trust_parse_crls does), or is NULL for none.  Copied. */
	const char *root_pem;
	size_t root_pem_len;
	const char *crls_pem;
	size_t crls_pem_len;
	const char *expect_identity;	/* e.g. "urn:visor:suffolk:gateway";
					 * NULL: any gateway identity */
	long timeout_ms;		/* whole request; 0: 30 s */
	long connect_timeout_ms;	/* TCP + TLS; 0: timeout_ms */
	size_t max_response;		/* body bound; 0: 16 MiB */
	int count_sends;		/* count the times each request goes
					 * out (https_result_t.sends): libcurl's
					 * verbose mode, into a callback that
					 * only counts; off, sends is -1 */
	long max_conn_age_s;		/* a kept-alive connection older than
					 * this is not reused: the next
					 * request's handshake checks the
					 * server again (expiry, CRLs); 0:
					 * HTTPS_CONN_MAX_AGE_DEFAULT_S */
} https_client_options_t;

#define HTTPS_MAX_HEADERS (64u << 10)	/* response header block bound */

typedef struct {
	long status;			/* HTTP status, 0 if none */
	buf_t body;			/* the response body (NUL-terminated) */
	char content_type[128];		/* "" if none; truncated if longer */
	buf_t headers;			/* raw header lines of the final
					 * response, "Name: value\r\n"... */
} https_response_t;

/* One request.  headers is NULL or a NULL-terminated array of
 * "Name: value" strings.  When body is non-NULL and no Content-Type header
 * is given, "Content-Type: application/json" is sent. */
typedef struct {
	const char *method;		/* "GET", "PUT", "PATCH", "POST", "DELETE" */
	const char *url;
	const char *const *headers;
	const void *body;		/* may be NULL */
	size_t len;
} https_request_t;

/* Initialise libcurl (curl_global_init) once; later calls return the first
 * result.  Checks that libcurl uses OpenSSL.  Returns 0 or -1. */
int https_global_init(void);

/* Create a client.  Every file (or the PEM bytes given instead) is read
 * and checked now (certificate and key match, root and CRLs parse), so
 * that a later request fails only for
 * transport reasons.  The options' strings are copied.  Returns the client
 * (caller frees with https_client_free) or NULL with a reason in err. */
https_client_t *https_client_new(const https_client_options_t *opt, char *err,
    size_t errlen);

/* Free the client and close its connections; NULL does nothing. */
void https_client_free(https_client_t *c);

/* Send one request on the client's keep-alive connection (reused across
 * calls to the same server).  resp is initialised here; the caller frees it
 * with https_response_free whatever the return.  Returns 0 if a response
 * arrived (any status), -1 on a transport, TLS or identity failure or a
 * response larger than max_response, with a reason in err. */
int https_client_request(https_client_t *c, const https_request_t *req,
    https_response_t *resp, char *err, size_t errlen);

/* The same, with the request spelled out (the API of the first sketch). */
int https_client_call(https_client_t *c, const char *method, const char *url,
    const char *const *headers, const void *body, size_t len,
    https_response_t *resp, char *err, size_t errlen);

/* Free the body and headers of a response; the struct itself is the
 * caller's. */
void https_response_free(https_response_t *resp);

/* Copy the value of response header name (case-insensitive; the first if
 * repeated; surrounding spaces trimmed) into out.  Returns 0, or -1 if
 * absent (out then "").  A value longer than outlen-1 is truncated. */
int https_response_header(const https_response_t *resp, const char *name,
    char *out, size_t outlen);

/* The single URI subjectAltName of the first certificate in a PEM file
 * (e.g. the caller's own certificate, to find its area).  Returns 0, or -1
 * with a reason in err. */
int https_cert_uri(const char *certfile, char *out, size_t outlen, char *err,
    size_t errlen);

/* The server identity URI seen on the client's last connection ("" if
 * none yet).  Points into c. */
const char *https_client_peer_identity(const https_client_t *c);

/*
 * Concurrent requests without threads, on libcurl's multi interface: up to
 * max_in_flight requests at once over keep-alive connections to the same
 * server, each with a completion callback.  Callbacks run inside
 * https_batch_run, on the caller's thread; they may add more requests
 * (retries, with a delay).
 */
typedef struct https_batch https_batch_t;

typedef struct {
	int rc;				/* 0: a response arrived; -1: failure */
	int retryable;			/* rc == -1 and the failure was of the
					 * network (connect, timeout, reset),
					 * not of TLS verification or bounds */
	int sends;			/* with count_sends, the times the
					 * request went out (else -1): 0
					 * when the connection, TLS handshake
					 * or first write failed (the server
					 * never had it); more than once when
					 * libcurl sent it again on a fresh
					 * connection after a reused one
					 * closed unanswered.  A send with no
					 * answer (rc == -1 and sends > 0, or
					 * sends > 1) may have been acted on */
	int stopped;			/* rc == -1 because the batch was told
					 * to stop (https_batch_stop_when)
					 * first: the server may or may not
					 * have had the request */
	const https_response_t *resp;	/* valid only during the callback; the
					 * callback may buf_steal resp->body */
	const char *err;		/* reason when rc == -1; "" otherwise.
					 * For a failed identity check it is
					 * the client's last such reason: with
					 * several handshakes failing at once
					 * it may be another request's */
} https_result_t;

typedef void (*https_done_fn)(void *arg, const https_result_t *res);

/* A batch using c's settings (c must outlive the batch).  max_in_flight
 * 1..256.  NULL with err on failure. */
https_batch_t *https_batch_new(https_client_t *c, size_t max_in_flight,
    char *err, size_t errlen);

/* Free; requests not yet finished are dropped without callback.  NULL does
 * nothing. */
void https_batch_free(https_batch_t *b);

/* Queue a request to start no sooner than delay_ms from now.  The request
 * (method, url, headers, body) is copied.  done is called exactly once, from
 * https_batch_run.  Returns 0 or -1 (out of memory, bad request). */
int https_batch_add(https_batch_t *b, const https_request_t *req,
    long delay_ms, https_done_fn done, void *arg);

/* Run until every queued request (including those added by callbacks) has
 * completed.  Returns 0; 1 if it was stopped (https_batch_stop_when); or -1
 * if libcurl's multi interface failed (queued requests are then completed
 * with rc -1). */
int https_batch_run(https_batch_t *b);

/* Make https_batch_run stop within about a second once *stop is non-zero,
 * rather than wait up to the client's timeout for an answer: the requests
 * in flight are cut off and those queued are not started, each completed
 * with rc -1 and stopped set.  stop (NULL: never stop) is read from the
 * thread running the batch and must outlive it. */
void https_batch_stop_when(https_batch_t *b, const atomic_int *stop);

/* Number of requests queued or in flight. */
size_t https_batch_pending(const https_batch_t *b);

/*
 * Default file paths from the quickstart layout (SPEC section 3): for
 * cert = DIR/pki/<area>/agency-x.crt, key = DIR/pki/<area>/agency-x.key
 * (".crt" replaced by ".key"; cert must end in ".crt") and
 * root = DIR/pki/<area>/../root.crt.  Either output may be NULL to skip it.
 * Returns 0, or -1 if cert does not end in ".crt" or an output does not fit.
 */
int https_default_paths(const char *cert, char *key, size_t keylen, char *root,
    size_t rootlen);

/* The path of file name in the folder of cert (name alone when cert has
 * no folder).  0, or -1 if it does not fit. */
int https_beside_cert(const char *cert, const char *name, char *out,
    size_t outlen);

#endif
