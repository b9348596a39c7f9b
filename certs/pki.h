/*
 * pki: the visor certificate hierarchy of SPEC section 3, built with
 * OpenSSL's C API.
 *
 *   national root (self-signed, CA, keyCertSign+cRLSign)
 *     area CA (CA, pathlen 0, URI urn:visor:<area>:ca) + its CRL
 *       gateway, agency and auditor certificates (one URI identity each)
 *
 * Keys are ECDSA P-256, signatures SHA-256, serials 16 random bytes
 * (positive).  Private keys are written through crypto/keyfile.h (mode 0600,
 * atomic); certificates and CRLs are PEM, mode 0644, written atomically.
 *
 * On disk a CA is a folder: root.crt/root.key for the national root,
 * ca.crt/ca.key/crl.pem for an area CA.  An end-entity certificate is
 * PREFIX.crt (the leaf followed by its area CA certificate, so that a TLS
 * peer can send the chain as it is) and PREFIX.key.
 *
 * Every function returns 0 or a pointer on success, and -1 or NULL with a
 * one-line reason in err (errlen > 0) on failure.
 */
#ifndef CERTS_PKI_H
#define CERTS_PKI_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "util/buf.h"

#define PKI_ROOT_DAYS 3650
#define PKI_CA_DAYS 1825
#define PKI_LEAF_DAYS 365
#define PKI_CRL_DAYS 30
#define PKI_DAYS_MAX 36500

#define PKI_ROOT_URI "urn:visor:national:root"

/* Extended key usage bits for pki_leaf_opts_t.eku. */
#define PKI_EKU_CLIENT 0x1u	/* clientAuth */
#define PKI_EKU_SERVER 0x2u	/* serverAuth */
#define PKI_EKU_OMIT 0x4u	/* no EKU extension at all (tests) */

/* A signing CA in memory.  pki_ca_clear frees both and zeroes the struct. */
typedef struct {
	X509 *cert;
	EVP_PKEY *key;
} pki_ca_t;

/* How to build an end-entity certificate.  Zeroed means: PKI_LEAF_DAYS,
 * EKU from the identity kind (gateway: serverAuth and clientAuth; agency and
 * auditor: clientAuth), no extra names.  The test fields mint certificates a
 * gateway must refuse; production callers leave them zero. */
typedef struct {
	int days;			/* 1..PKI_DAYS_MAX; 0: PKI_LEAF_DAYS */
	unsigned eku;			/* PKI_EKU_* bits; 0: from the kind */
	int server;			/* add serverAuth to the kind's EKU */
	const char *const *dns;		/* extra dNSName entries */
	size_t n_dns;
	const char *const *ips;		/* extra iPAddress entries (v4 or v6) */
	size_t n_ips;

	/* tests only */
	int no_uri;			/* leave the URI out of subjectAltName */
	const char *second_uri;		/* a second URI entry */
	int unchecked;			/* put the identity in verbatim: no parse,
					 * no kind or area check against the CA */
	int not_yet_valid;		/* notBefore one day in the future */
	int expired;			/* validity ended yesterday */
	int ca;				/* mark it CA:true (must be refused as a leaf) */
	const char *key_usage;		/* keyUsage text in place of
					 * "critical,digitalSignature" */
} pki_leaf_opts_t;

/* CRL reasons (RFC 5280 CRLReason values). */
#define PKI_REASON_UNSPECIFIED 0
#define PKI_REASON_KEY_COMPROMISE 1
#define PKI_REASON_AFFILIATION_CHANGED 3
#define PKI_REASON_SUPERSEDED 4
#define PKI_REASON_CESSATION 5

/* ---- in memory ---- */

/* Free the certificate and key of ca (either may be NULL); zeroes *ca. */
void pki_ca_clear(pki_ca_t *ca);

/* A new ECDSA P-256 key.  Caller frees. */
EVP_PKEY *pki_new_key(char *err, size_t errlen);

/* A self-signed national root for key: CN "visor national root CA",
 * O "visor", CA:true (critical), keyCertSign+cRLSign, URI PKI_ROOT_URI,
 * valid days (0: PKI_ROOT_DAYS) from now.  Caller frees. */
X509 *pki_make_root(EVP_PKEY *key, int days, char *err, size_t errlen);

/* An area CA certificate for key, signed by root: CN "visor <area> CA",
 * CA:true pathlen:0, keyCertSign+cRLSign, URI urn:visor:<area>:ca.  area must
 * be a valid label.  days 0: PKI_CA_DAYS.  Caller frees. */
X509 *pki_make_area_ca(const pki_ca_t *root, EVP_PKEY *key, const char *area,
    int days, char *err, size_t errlen);

/* An end-entity certificate for key, signed by the area CA, carrying the
 * identity URI (a gateway, agency or auditor of the CA's own area unless
 * opts->unchecked).  opts may be NULL.  Caller frees. */
X509 *pki_make_leaf(const pki_ca_t *ca, EVP_PKEY *key, const char *identity,
    const pki_leaf_opts_t *opts, char *err, size_t errlen);

/* A new CRL signed by ca: the entries of prev (may be NULL), plus serial
 * (may be NULL) revoked now with reason; CRL number prev's + 1 (or 1);
 * lastUpdate now, nextUpdate days (0: PKI_CRL_DAYS) later.  Refuses a
 * serial already listed.  Caller frees. */
X509_CRL *pki_make_crl(const pki_ca_t *ca, const X509_CRL *prev,
    const ASN1_INTEGER *serial, int reason, int days, char *err, size_t errlen);

/* The CRL number of crl, or -1 if absent or too large. */
long pki_crl_number(const X509_CRL *crl);

/* 1 if serial is on crl, else 0. */
int pki_crl_lists(const X509_CRL *crl, const ASN1_INTEGER *serial);

/* ---- files ---- */

/* The first certificate in a PEM file (the leaf of a chain file).  Caller
 * frees. */
X509 *pki_load_cert(const char *path, char *err, size_t errlen);

/* The one CRL of a PEM file (a CA's crl.pem); a file holding several, or
 * anything tls_trust_read_crls refuses, is refused.  Caller frees. */
X509_CRL *pki_load_crl(const char *path, char *err, size_t errlen);

/* Write cert, then chain (may be NULL) as PEM, mode 0644, atomically. */
int pki_write_cert(const char *path, X509 *cert, X509 *chain, char *err,
    size_t errlen);

/* Write crl as PEM, mode 0644, atomically. */
int pki_write_crl(const char *path, X509_CRL *crl, char *err, size_t errlen);

/* Load dir/<name>.crt and dir/<name>.key (which must be mode 0600 and match
 * the certificate) into *ca; name is "root" or "ca".  Caller clears. */
int pki_ca_load(const char *dir, const char *name, pki_ca_t *ca, char *err,
    size_t errlen);

/* Create dir (0700 if missing) and in it root.key and root.crt.  Refuses if
 * either exists. */
int pki_root_create(const char *dir, int days, char *err, size_t errlen);

/* Using the root in root_dir, create out_dir (0700 if missing) and in it
 * ca.key, ca.crt for area and an empty crl.pem (CRL number 1).  Refuses if
 * any of the three exists. */
int pki_area_ca_create(const char *root_dir, const char *area,
    const char *out_dir, int days, char *err, size_t errlen);

/* Using the area CA in ca_dir, write prefix.key (new key) and prefix.crt
 * (leaf and CA certificate) for identity.  Refuses if either exists. */
int pki_issue(const char *ca_dir, const char *identity, const char *prefix,
    const pki_leaf_opts_t *opts, char *err, size_t errlen);

/* Add the certificate in cert_file (issued by the CA in ca_dir) to
 * ca_dir/crl.pem with reason, incrementing the CRL number.  Refuses a
 * certificate of another CA or one already revoked.  A running gateway
 * applies the new CRL at its next SIGHUP. */
int pki_revoke(const char *ca_dir, const char *cert_file, int reason,
    char *err, size_t errlen);

/* Re-sign ca_dir/crl.pem with the same entries, the next CRL number and a
 * fresh nextUpdate (days; 0: PKI_CRL_DAYS).  Run before the CRL expires. */
int pki_crl_refresh(const char *ca_dir, int days, char *err, size_t errlen);

/* Replace cert_file (which must end in ".crt" and be issued by the CA in
 * ca_dir) with a new certificate of the same subject, identity, key usage
 * and names, valid days (0: PKI_LEAF_DAYS) from now.  With new_key, a fresh
 * key replaces the ".key" file beside it; otherwise that key is reused.
 * The old certificate stays valid until it expires or is revoked, so it is
 * kept first as "<name>.old-<SERIAL>.crt" beside cert_file (its path into
 * old_out, size old_outlen), the file to revoke it by. */
int pki_renew(const char *ca_dir, const char *cert_file, int new_key, int days,
    char *old_out, size_t old_outlen, char *err, size_t errlen);

/* ---- inspection ---- */

/* The single URI of cert's subjectAltName into uri (size urilen).  0, or -1
 * if there is none, more than one, or it does not fit. */
int pki_cert_uri(X509 *cert, char *uri, size_t urilen);

/* Append a human description of cert to out: identity, subject, issuer,
 * serial, validity, CA flag, key usage, EKU, other names and SHA-256
 * fingerprint, one "key: value" per line. */
int pki_describe(X509 *cert, buf_t *out);

/* The reason name for a PKI_REASON_* value, or NULL; and back (-1 if
 * unknown).  Names: unspecified, key-compromise, affiliation-changed,
 * superseded, cessation-of-operation. */
const char *pki_reason_name(int reason);
int pki_reason_from_name(const char *name);

#endif
