#include "crypto/tls_trust.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/membio.h"
#include "util/fileio.h"

/* Certificates are small (a CRL of a busy area can be large: the header's
 * TLS_TRUST_CRL_FILE_MAX). */
#define TRUST_CERT_FILE_MAX (1u << 20)

/* A loaded CRL and the area CA whose key verified it. */
struct trust_crl {
	X509_CRL *crl;
	X509 *ca;			/* a reference into cas */
};

struct tls_trust {
	X509_STORE *store;		/* root, area CAs, CRLs; CRL checking on */
	X509 *root;			/* the one trust anchor */
	STACK_OF(X509) *cas;		/* area CA certificates */
	struct trust_crl *crls;		/* as loaded: listed(), chain_until() */
	size_t n_crls;
};

static void
set_reason(char *reason, size_t reasonlen, const char *code)
{
	if (reason != NULL && reasonlen > 0)
		snprintf(reason, reasonlen, "%s", code);
}

/* After a loop of PEM reads: 1 if it stopped at the end of the input
 * (OpenSSL's "no start line", or no error at all), 0 at a damaged block. */
static int
pem_stopped_at_end(void)
{
	unsigned long e = ERR_peek_last_error();

	return e == 0 || ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/* Every certificate in a PEM file, in order.  NULL with err if the file
 * cannot be read or holds no certificate. */
static STACK_OF(X509) *
read_pem_certs(const char *path, char *err, size_t errlen)
{
	STACK_OF(X509) *sk = NULL;
	char *data = NULL;
	size_t len = 0;
	BIO *mem = NULL;
	X509 *x;

	if (file_read_all(path, TRUST_CERT_FILE_MAX, &data, &len) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (len > INT_MAX || (mem = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (sk = sk_X509_new_null()) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while ((x = PEM_read_bio_X509(mem, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			snprintf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
	}
	if (!pem_stopped_at_end()) {
		snprintf(err, errlen, "%s: damaged PEM certificate", path);
		goto fail;
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		snprintf(err, errlen, "%s: no PEM certificate", path);
		goto fail;
	}
	BIO_free(mem);
	free(data);
	return sk;
fail:
	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	BIO_free(mem);
	free(data);
	return NULL;
}

STACK_OF(X509_CRL) *
tls_trust_read_crls(const char *path, size_t max, char *err, size_t errlen)
{
	STACK_OF(X509_CRL) *sk;
	char *data = NULL;
	size_t len = 0;

	if (file_read_all(path, max, &data, &len) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	sk = tls_trust_parse_crls(data, len, path, err, errlen);
	free(data);
	return sk;
}

STACK_OF(X509_CRL) *
tls_trust_parse_crls(const char *data, size_t len, const char *path,
    char *err, size_t errlen)
{
	STACK_OF(X509_CRL) *sk = NULL;
	X509_CRL *crl;
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	long derlen = 0;
	BIO *mem = NULL;
	int n = 0;

	if (len > INT_MAX || (mem = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (sk = sk_X509_CRL_new_null()) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	/* Every block read here, not with PEM_read_bio_X509_CRL, which skips
	 * blocks of another type: a CRL file holds CRLs and nothing else. */
	while (PEM_read_bio(mem, &name, &header, &der, &derlen) == 1) {
		n++;
		if (strcmp(name, PEM_STRING_X509_CRL) != 0 || header[0] != '\0') {
			snprintf(err, errlen, "%s: not a PEM CRL (PEM block %d)",
			    path, n);
			goto fail;
		}
		p = der;
		if ((crl = d2i_X509_CRL(NULL, &p, derlen)) == NULL ||
		    p != der + derlen) {
			X509_CRL_free(crl);
			snprintf(err, errlen, "%s: CRL %d is damaged", path, n);
			goto fail;
		}
		if (sk_X509_CRL_push(sk, crl) <= 0) {
			X509_CRL_free(crl);
			snprintf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		name = header = NULL;
		der = NULL;
	}
	if (!pem_stopped_at_end()) {
		snprintf(err, errlen, "%s: PEM block %d is damaged", path, n + 1);
		goto fail;
	}
	ERR_clear_error();
	if (sk_X509_CRL_num(sk) == 0) {
		snprintf(err, errlen, "%s: not a PEM CRL", path);
		goto fail;
	}
	BIO_free(mem);
	return sk;
fail:
	ERR_clear_error();
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	sk_X509_CRL_pop_free(sk, X509_CRL_free);
	BIO_free(mem);
	return NULL;
}

int
tls_trust_pem(const tls_trust_t *t, char **root_pem, size_t *root_len,
    char **crls_pem, size_t *crls_len)
{
	BIO *bio = NULL;
	size_t i;

	*root_pem = *crls_pem = NULL;
	*root_len = *crls_len = 0;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(bio, t->root) != 1 ||
	    membio_text(bio, root_pem, root_len) < 0)
		goto fail;
	if (t->n_crls > 0) {
		BIO_free(bio);
		if ((bio = BIO_new(BIO_s_mem())) == NULL)
			goto fail;
		for (i = 0; i < t->n_crls; i++)
			if (PEM_write_bio_X509_CRL(bio, t->crls[i].crl) != 1)
				goto fail;
		if (membio_text(bio, crls_pem, crls_len) < 0)
			goto fail;
	}
	BIO_free(bio);
	return 0;
fail:
	ERR_clear_error();
	BIO_free(bio);
	free(*root_pem);
	free(*crls_pem);
	*root_pem = *crls_pem = NULL;
	*root_len = *crls_len = 0;
	return -1;
}

/* The URIs of a certificate's subjectAltName: the count, and the first in
 * *uri (owned by names, which the caller frees with GENERAL_NAMES_free).
 * -1 if the extension is present but damaged or repeated. */
static int
cert_uris(X509 *cert, GENERAL_NAMES **names, const ASN1_IA5STRING **uri)
{
	GENERAL_NAMES *gens;
	int crit = -1, i, n = 0;

	*names = NULL;
	*uri = NULL;
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL)
		return crit == -1 ? 0 : -1;
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_URI)
			continue;
		if (n == 0)
			*uri = g->d.uniformResourceIdentifier;
		n++;
	}
	*names = gens;
	return n;
}

/* Parse the single URI of an area CA certificate; 0 or -1. */
static int
ca_identity(X509 *ca, identity_t *out)
{
	GENERAL_NAMES *names;
	const ASN1_IA5STRING *uri;
	char e[128];
	int n, rc = -1;

	n = cert_uris(ca, &names, &uri);
	if (n == 1 && identity_parse((const char *)ASN1_STRING_get0_data(uri),
	    (size_t)ASN1_STRING_length(uri), out, e, sizeof(e)) == 0 &&
	    out->kind == IDENTITY_CA)
		rc = 0;
	GENERAL_NAMES_free(names);
	return rc;
}

/* root must be a self-signed CA whose signature verifies. */
static int
check_root(X509 *root, const char *path, char *err, size_t errlen)
{
	EVP_PKEY *pub = X509_get0_pubkey(root);

	if (!(X509_get_extension_flags(root) & EXFLAG_SS) ||
	    X509_check_ca(root) != 1 || pub == NULL ||
	    X509_verify(root, pub) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: not a self-signed root CA certificate", path);
		return -1;
	}
	return 0;
}

/* An area CA: a CA certificate signed directly by root, carrying exactly one
 * URI urn:visor:<area>:ca. */
static int
check_area_ca(X509 *ca, X509 *root, const char *path, char *err, size_t errlen)
{
	identity_t id;

	if (X509_check_ca(ca) != 1 || (X509_get_extension_flags(ca) & EXFLAG_SS)) {
		snprintf(err, errlen, "%s: not an intermediate CA certificate", path);
		return -1;
	}
	if (X509_check_issued(root, ca) != X509_V_OK ||
	    X509_verify(ca, X509_get0_pubkey(root)) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: CA certificate not issued by the root", path);
		return -1;
	}
	if (ca_identity(ca, &id) < 0) {
		snprintf(err, errlen, "%s: CA certificate lacks one urn:visor:<area>:ca URI",
		    path);
		return -1;
	}
	return 0;
}

/* crl must be signed by one of cas and current; that CA into *by. */
static int
check_crl(X509_CRL *crl, STACK_OF(X509) *cas, X509 **by, const char *path,
    char *err, size_t errlen)
{
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	const ASN1_TIME *last = X509_CRL_get0_lastUpdate(crl);
	int i, named = 0;

	/* During an area CA rotation the old and the new CA share a name: the
	 * CRL belongs to whichever of them verifies its signature. */
	for (i = 0; i < sk_X509_num(cas); i++) {
		X509 *ca = sk_X509_value(cas, i);
		if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
			continue;
		named = 1;
		if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1) {
			ERR_clear_error();
			continue;
		}
		if (last == NULL || X509_cmp_current_time(last) >= 0) {
			snprintf(err, errlen, "%s: CRL is not yet valid", path);
			return -1;
		}
		if (next == NULL || X509_cmp_current_time(next) <= 0) {
			snprintf(err, errlen, "%s: CRL has expired (nextUpdate passed)", path);
			return -1;
		}
		*by = ca;
		return 0;
	}
	if (named)
		snprintf(err, errlen, "%s: CRL signature does not verify", path);
	else
		snprintf(err, errlen, "%s: CRL not issued by any of the area CAs", path);
	return -1;
}

tls_trust_t *
tls_trust_load(const char *root_file, const char *const *ca_files,
    size_t n_ca, const char *const *crl_files, size_t n_crl, char *err,
    size_t errlen)
{
	tls_trust_t *t;
	STACK_OF(X509) *sk = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	X509_CRL *crl = NULL;
	size_t i;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((t->store = X509_STORE_new()) == NULL ||
	    (t->cas = sk_X509_new_null()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((sk = read_pem_certs(root_file, err, errlen)) == NULL)
		goto fail;
	if (sk_X509_num(sk) != 1) {
		snprintf(err, errlen, "%s: must hold exactly one root certificate", root_file);
		goto fail;
	}
	t->root = sk_X509_shift(sk);
	sk_X509_free(sk);
	sk = NULL;
	if (check_root(t->root, root_file, err, errlen) < 0)
		goto fail;
	if (X509_STORE_add_cert(t->store, t->root) != 1) {
		snprintf(err, errlen, "%s: cannot add to the trust store", root_file);
		goto fail;
	}
	for (i = 0; i < n_ca; i++) {
		X509 *ca;
		if ((sk = read_pem_certs(ca_files[i], err, errlen)) == NULL)
			goto fail;
		if (sk_X509_num(sk) != 1) {
			snprintf(err, errlen, "%s: must hold exactly one CA certificate",
			    ca_files[i]);
			goto fail;
		}
		ca = sk_X509_value(sk, 0);
		if (check_area_ca(ca, t->root, ca_files[i], err, errlen) < 0)
			goto fail;
		/* In the store so that a peer sending only its leaf still
		 * chains; without X509_V_FLAG_PARTIAL_CHAIN a non-self-signed
		 * certificate is never an anchor, so the root stays the only
		 * one. */
		if (X509_STORE_add_cert(t->store, ca) != 1 || !X509_up_ref(ca)) {
			snprintf(err, errlen, "%s: cannot add to the trust store", ca_files[i]);
			goto fail;
		}
		/* The reference just taken is t->cas's; sk's own goes with sk. */
		if (sk_X509_push(t->cas, ca) <= 0) {
			X509_free(ca);
			snprintf(err, errlen, "%s: cannot add to the trust store", ca_files[i]);
			goto fail;
		}
		sk_X509_pop_free(sk, X509_free);
		sk = NULL;
	}
	for (i = 0; i < n_crl; i++) {
		struct trust_crl *grown;
		char where[PATH_MAX + 16];
		int j, n;

		if ((crls = tls_trust_read_crls(crl_files[i], TLS_TRUST_CRL_FILE_MAX,
		    err, errlen)) == NULL)
			goto fail;
		n = sk_X509_CRL_num(crls);
		if ((grown = realloc(t->crls, (t->n_crls + (size_t)n) *
		    sizeof(*t->crls))) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		t->crls = grown;
		/* Every CRL of the file counts: one left out would leave its
		 * CA's clients without a CRL, or let a revoked one in. */
		for (j = 0; j < n; j++) {
			X509 *by = NULL;

			crl = sk_X509_CRL_shift(crls);
			if (n == 1)
				snprintf(where, sizeof(where), "%s", crl_files[i]);
			else
				snprintf(where, sizeof(where), "%s (CRL %d)",
				    crl_files[i], j + 1);
			if (check_crl(crl, t->cas, &by, where, err, errlen) < 0)
				goto fail;
			if (X509_STORE_add_crl(t->store, crl) != 1) {
				snprintf(err, errlen, "%s: cannot add to the trust store",
				    where);
				goto fail;
			}
			/* Kept, with the CA that signed it: every CRL of an
			 * issuer is searched (listed), and gives how long a
			 * verdict lasts (chain_until). */
			t->crls[t->n_crls].crl = crl;
			t->crls[t->n_crls].ca = by;
			t->n_crls++;
			crl = NULL;
		}
		sk_X509_CRL_free(crls);
		crls = NULL;
	}
	/* Keys and signatures of at least 112 bits of security in every
	 * certificate of a chain, whatever this build's default level (a
	 * handshake sets the SSL_CTX's level, TLS_TRUST_SECURITY_LEVEL too). */
	if (X509_STORE_set_flags(t->store, X509_V_FLAG_CRL_CHECK |
	    X509_V_FLAG_X509_STRICT) != 1) {
		snprintf(err, errlen, "cannot set verification flags");
		goto fail;
	}
	X509_VERIFY_PARAM_set_auth_level(X509_STORE_get0_param(t->store),
	    TLS_TRUST_SECURITY_LEVEL);
	ERR_clear_error();
	return t;
fail:
	ERR_clear_error();
	X509_CRL_free(crl);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	sk_X509_pop_free(sk, X509_free);
	tls_trust_free(t);
	return NULL;
}

void
tls_trust_free(tls_trust_t *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n_crls; i++)
		X509_CRL_free(t->crls[i].crl);
	free(t->crls);
	X509_STORE_free(t->store);
	X509_free(t->root);
	sk_X509_pop_free(t->cas, X509_free);
	free(t);
}

X509_STORE *
tls_trust_store(const tls_trust_t *t)
{
	return t->store;
}

STACK_OF(X509) *
tls_trust_intermediates(const tls_trust_t *t)
{
	return t->cas;
}

long
tls_trust_asn1_time(const ASN1_TIME *a)
{
	struct tm tm;

	if (a == NULL || ASN1_TIME_to_tm(a, &tm) != 1)
		return -1;
	return (long)timegm(&tm);
}

/* The last second at which the verdict on chain (leaf, area CA, root, as
 * verified against t) still holds: the earliest notAfter in the chain, and
 * the latest nextUpdate of the CRLs of t signed by the leaf's issuer (OpenSSL
 * uses a current one while there is one).  -1 if unknown. */
static long
chain_until(const tls_trust_t *t, STACK_OF(X509) *chain)
{
	X509 *issuer = sk_X509_value(chain, 1);
	long until = -1, crl_until = -1, when;
	size_t j;
	int i;

	for (i = 0; i < sk_X509_num(chain); i++) {
		when = tls_trust_asn1_time(X509_get0_notAfter(sk_X509_value(chain, i)));
		if (when < 0)
			return -1;
		if (until < 0 || when < until)
			until = when;
	}
	for (j = 0; j < t->n_crls; j++) {
		if (X509_cmp(t->crls[j].ca, issuer) != 0)
			continue;
		when = tls_trust_asn1_time(X509_CRL_get0_nextUpdate(t->crls[j].crl));
		if (when > crl_until)
			crl_until = when;
	}
	if (crl_until < 0)
		return -1;
	return crl_until < until ? crl_until : until;
}

/* 1 if a CRL of t signed by issuer lists leaf.  OpenSSL reads one CRL per
 * issuer, and of two made in the same second (a new one added beside the
 * old) keeps the first in an order of its own; revocations are never
 * undone, so any CRL of the issuer that lists the leaf refuses it. */
static int
listed(const tls_trust_t *t, X509 *leaf, X509 *issuer)
{
	X509_REVOKED *rev;
	size_t i;

	for (i = 0; i < t->n_crls; i++) {
		if (X509_cmp(t->crls[i].ca, issuer) != 0)
			continue;
		rev = NULL;
		if (X509_CRL_get0_by_cert(t->crls[i].crl, &rev, leaf) != 0)
			return 1;
	}
	return 0;
}

int
tls_trust_chain_revoked(const tls_trust_t *t, STACK_OF(X509) *chain)
{
	if (chain == NULL || sk_X509_num(chain) < 2)
		return 0;
	return listed(t, sk_X509_value(chain, 0), sk_X509_value(chain, 1));
}

long
tls_trust_chain_until(const tls_trust_t *t, STACK_OF(X509) *chain)
{
	if (chain == NULL || sk_X509_num(chain) != 3)
		return -1;
	return chain_until(t, chain);
}

int
tls_trust_verify(const tls_trust_t *t, X509 *cert, STACK_OF(X509) *chain_extra,
    tls_role_t role, identity_t *out, char *reason, size_t reasonlen)
{
	return tls_trust_verify_until(t, cert, chain_extra, role, out, NULL,
	    reason, reasonlen);
}

int
tls_trust_verify_until(const tls_trust_t *t, X509 *cert,
    STACK_OF(X509) *chain_extra, tls_role_t role, identity_t *out, long *until,
    char *reason, size_t reasonlen)
{
	X509_STORE_CTX *ctx;
	STACK_OF(X509) *chain;
	int rc = -1, ok;

	if (cert == NULL) {
		set_reason(reason, reasonlen, "verify-failed");
		return -1;
	}
	/* Checked first: a CA certificate presented as a leaf would otherwise
	 * fail on its own issuer's (the root's) CRL, hiding the real reason. */
	if (X509_check_ca(cert) != 0) {
		set_reason(reason, reasonlen, "not-an-end-entity");
		return -1;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, t->store, cert, chain_extra) != 1) {
		set_reason(reason, reasonlen, "verify-failed");
		goto out;
	}
	ok = X509_verify_cert(ctx);
	if (ok != 1) {
		set_reason(reason, reasonlen, ok < 0 ? "verify-failed" :
		    tls_trust_reason(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	chain = X509_STORE_CTX_get0_chain(ctx);
	/* leaf, area CA, root: nothing else is a valid visor chain (a leaf
	 * signed by the root itself gives a shorter one). */
	if (chain == NULL || sk_X509_num(chain) != 3 ||
	    X509_cmp(sk_X509_value(chain, 2), t->root) != 0) {
		set_reason(reason, reasonlen, "unknown-ca");
		goto out;
	}
	if (listed(t, cert, sk_X509_value(chain, 1))) {
		set_reason(reason, reasonlen, "revoked");
		goto out;
	}
	rc = tls_trust_check_identity(cert, sk_X509_value(chain, 1), role, out,
	    reason, reasonlen);
	if (rc == 0 && until != NULL)
		*until = chain_until(t, chain);
out:
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

int
tls_trust_check_identity(X509 *leaf, X509 *issuer, tls_role_t role,
    identity_t *out, char *reason, size_t reasonlen)
{
	GENERAL_NAMES *names = NULL;
	const ASN1_IA5STRING *uri;
	identity_t id, ca;
	uint32_t want = role == TLS_ROLE_CLIENT ? XKU_SSL_CLIENT : XKU_SSL_SERVER;
	char e[128];
	int n, rc = -1;

	if (leaf == NULL || issuer == NULL) {
		set_reason(reason, reasonlen, "verify-failed");
		return -1;
	}
	if (X509_check_ca(leaf) != 0) {
		set_reason(reason, reasonlen, "not-an-end-entity");
		return -1;
	}
	/* TLS 1.3 signs with the leaf's key (CertificateVerify): a keyUsage
	 * without digitalSignature is refused in either role.  libssl's server
	 * purpose takes keyEncipherment instead, so the outbound client
	 * accepted such a server certificate that the gateway refuses from a
	 * client. */
	if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)) {
		set_reason(reason, reasonlen, "bad-eku");
		return -1;
	}
	/* X509_get_extended_key_usage answers "everything" when the extension
	 * is absent; a visor certificate must name its usage. */
	if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(leaf) & want)) {
		set_reason(reason, reasonlen, "bad-eku");
		return -1;
	}
	n = cert_uris(leaf, &names, &uri);
	if (n < 0 || n > 1) {
		set_reason(reason, reasonlen, "multiple-uris");
		goto out;
	}
	if (n == 0) {
		set_reason(reason, reasonlen, "no-uri");
		goto out;
	}
	if (identity_parse((const char *)ASN1_STRING_get0_data(uri),
	    (size_t)ASN1_STRING_length(uri), &id, e, sizeof(e)) < 0) {
		set_reason(reason, reasonlen, "malformed-uri");
		goto out;
	}
	if (id.kind == IDENTITY_CA) {
		set_reason(reason, reasonlen, "not-an-end-entity");
		goto out;
	}
	if (X509_check_ca(issuer) != 1 || ca_identity(issuer, &ca) < 0) {
		set_reason(reason, reasonlen, "unknown-ca");
		goto out;
	}
	if (strcmp(ca.area, id.area) != 0) {
		set_reason(reason, reasonlen, "area-mismatch");
		goto out;
	}
	if (out != NULL)
		*out = id;
	rc = 0;
out:
	GENERAL_NAMES_free(names);
	ERR_clear_error();
	return rc;
}

const char *
tls_trust_reason(int x509_verify_error)
{
	switch (x509_verify_error) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_REJECTED:
	case X509_V_ERR_INVALID_CA:
	case X509_V_ERR_INVALID_NON_CA:
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
	case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
	case X509_V_ERR_AKID_SKID_MISMATCH:
	case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
	case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
		return "unknown-ca";
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "expired";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "not-yet-valid";
	case X509_V_ERR_CERT_REVOKED:
		return "revoked";
	/* A CRL out of its time leaves the revocation status unknown, and is
	 * refused like a missing one; but it is named, for the operator: a
	 * stale CRL wants re-signing, and one not yet valid means this
	 * clock is behind the CA's (or was stepped back since the CRL was
	 * loaded, which the load refuses). */
	case X509_V_ERR_CRL_HAS_EXPIRED:
		return "crl-expired";
	case X509_V_ERR_CRL_NOT_YET_VALID:
		return "crl-not-yet-valid";
	/* A CRL that cannot be used otherwise (absent, out of scope) leaves
	 * the revocation status unknown: treated as missing. */
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
		return "crl-missing";
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
		return "bad-signature";
	case X509_V_ERR_INVALID_PURPOSE:
		return "bad-eku";
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
	case X509_V_ERR_CA_MD_TOO_WEAK:
		return "weak-key";
	default:
		return "verify-failed";
	}
}

void
tls_trust_cert_sha256(X509 *cert, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 ||
	    mdlen != 32) {
		/* Never leave the caller a half-written string. */
		memset(out, '0', 64);
		out[64] = '\0';
		ERR_clear_error();
		return;
	}
	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[64] = '\0';
}
