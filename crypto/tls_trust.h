/*
 * tls_trust: the trust set of a gateway or client (national root, area CA
 * certificates, CRLs) and the visor rules of SPEC section 3 applied to a
 * verified peer:
 *
 *   - the chain verifies to the root, within validity, leaf not on its CA's
 *     CRL (OpenSSL's verification with X509_V_FLAG_CRL_CHECK);
 *   - extended key usage fits the role (clientAuth for a client,
 *     serverAuth for a server);
 *   - subjectAltName holds exactly one URI, which parses as an identity;
 *   - the identity's area equals the area of the issuing CA (whose own
 *     certificate carries urn:visor:<area>:ca).
 *
 * A trust set is immutable once built; SIGHUP builds a new one and swaps.
 */
#ifndef CRYPTO_TLS_TRUST_H
#define CRYPTO_TLS_TRUST_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "crypto/identity.h"

/* OpenSSL security level for chains and handshakes: 2 is 112 bits (RSA
 * and DH of 2048 bits, EC of 224, no SHA-1 signatures), set explicitly
 * since a build's default may be 1 (RSA 1024, SHA-1 certificates). */
#define TLS_TRUST_SECURITY_LEVEL 2

/* The largest CRL file a trust set loads: a CRL of a busy area can be
 * large. */
#define TLS_TRUST_CRL_FILE_MAX (16u << 20)

typedef struct tls_trust tls_trust_t;

/* a as a time_t (seconds since 1970, UTC), or -1 if it cannot be read. */
long tls_trust_asn1_time(const ASN1_TIME *a);

typedef enum { TLS_ROLE_CLIENT, TLS_ROLE_SERVER } tls_role_t;

/* Build a trust set from PEM files: the root, the area CA certificates
 * (n_ca) and CRL files (n_crl), each holding one or more CRLs (read as
 * tls_trust_read_crls does).  Every file must load and every CRL in it must
 * be signed by one of the CAs and be current.  NULL with a reason in err. */
tls_trust_t *tls_trust_load(const char *root_file, const char *const *ca_files,
    size_t n_ca, const char *const *crl_files, size_t n_crl, char *err,
    size_t errlen);

/* Every CRL in the PEM file path (at most max bytes), in order; text
 * outside PEM blocks is skipped, as OpenSSL does.  NULL with a reason in err
 * if the file cannot be read, holds no CRL, or holds a PEM block that is
 * not one whole, well-formed CRL (another type, headers, damaged base64 or
 * DER): one bad block refuses the file, so that no CRL in it is silently
 * dropped.  The caller frees with sk_X509_CRL_pop_free(sk, X509_CRL_free). */
STACK_OF(X509_CRL) *tls_trust_read_crls(const char *path, size_t max,
    char *err, size_t errlen);

/* The same for PEM text already read (len bytes at data; path names it
 * in the reasons). */
STACK_OF(X509_CRL) *tls_trust_parse_crls(const char *data, size_t len,
    const char *path, char *err, size_t errlen);

/* The root and every CRL of t, as loaded, in PEM: *root_pem the root,
 * *crls_pem the CRLs one after the other (NULL, length 0, when t has
 * none), each NUL-terminated: to hand a TLS client the trust set that was
 * loaded with t rather than the files again.  The caller frees both.  0,
 * or -1 (out of memory; both NULL then). */
int tls_trust_pem(const tls_trust_t *t, char **root_pem, size_t *root_len,
    char **crls_pem, size_t *crls_len);

/* Free; NULL does nothing. */
void tls_trust_free(tls_trust_t *t);

/* The X509_STORE (root as the only trust anchor, CRLs loaded, CRL checking
 * on).  The area CA certificates are in it too, so that a peer sending only
 * its leaf still chains; without X509_V_FLAG_PARTIAL_CHAIN (never set) they
 * are not anchors.  Flags: X509_V_FLAG_CRL_CHECK | X509_V_FLAG_X509_STRICT.
 * Owned by t; take a reference (X509_STORE_up_ref) to keep it. */
X509_STORE *tls_trust_store(const tls_trust_t *t);

/* The area CA certificates, as untrusted intermediates for chain building.
 * Owned by t. */
STACK_OF(X509) *tls_trust_intermediates(const tls_trust_t *t);

/* Verify cert (with chain_extra, may be NULL, as untrusted certificates) at
 * the current time against t and apply the visor rules for role.  Fills *out
 * on success and returns 0; otherwise -1 and a short reason code in reason:
 * "unknown-ca", "expired", "not-yet-valid", "revoked", "crl-missing"
 * (no current CRL of the issuing CA loaded), "crl-expired" (its CRL is
 * past nextUpdate), "crl-not-yet-valid" (before its CRL's lastUpdate: the
 * clock is behind the CA's), "bad-eku", "no-uri", "multiple-uris", "malformed-uri", "area-mismatch",
 * "bad-signature", "weak-key", "not-an-end-entity", "verify-failed". */
int tls_trust_verify(const tls_trust_t *t, X509 *cert, STACK_OF(X509) *chain_extra,
    tls_role_t role, identity_t *out, char *reason, size_t reasonlen);

/* As tls_trust_verify; on success also *until (when not NULL): the last
 * second (time_t) at which the verdict holds, the earliest notAfter in the
 * chain or the nextUpdate of the CRL covering the leaf, whichever comes
 * first (-1 if unknown: take it again at once). */
int tls_trust_verify_until(const tls_trust_t *t, X509 *cert,
    STACK_OF(X509) *chain_extra, tls_role_t role, identity_t *out, long *until,
    char *reason, size_t reasonlen);

/* The same time for a chain (leaf, area CA, root) OpenSSL has verified
 * against t's store, as a verify callback sees it; -1 if unknown. */
long tls_trust_chain_until(const tls_trust_t *t, STACK_OF(X509) *chain);

/* 1 if any CRL of t signed by the chain's area CA lists its leaf (chain as
 * a verify callback sees it, leaf first).  OpenSSL reads only one CRL per
 * issuer; tls_trust_verify applies this too. */
int tls_trust_chain_revoked(const tls_trust_t *t, STACK_OF(X509) *chain);

/* The visor rules alone, for a chain OpenSSL has already verified: leaf and
 * the certificate that issued it.  0 or -1 with a reason code as above. */
int tls_trust_check_identity(X509 *leaf, X509 *issuer, tls_role_t role,
    identity_t *out, char *reason, size_t reasonlen);

/* Map an OpenSSL X509_V_ERR_* code to one of the reason codes above
 * (X509_V_OK and codes without a closer match give "verify-failed"). */
const char *tls_trust_reason(int x509_verify_error);

/* SHA-256 of the certificate's DER as 64 hex digits and NUL. */
void tls_trust_cert_sha256(X509 *cert, char out[65]);

#endif
