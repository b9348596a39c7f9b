#include "certs/pki.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "crypto/identity.h"
#include "crypto/keyfile.h"
#include "crypto/tls_trust.h"
#include "util/fileio.h"

#define PKI_FILE_MAX (16u << 20)
#define PKI_PATH_MAX 4096
#define PKI_CN_MAX 64	/* RFC 5280 ub-common-name */

/* Note the first OpenSSL error, if any, after a message. */
static void
fail_ossl(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[160];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(err, errlen, "%s: %s", what, buf);
	} else {
		snprintf(err, errlen, "%s", what);
	}
	ERR_clear_error();
}

void
pki_ca_clear(pki_ca_t *ca)
{
	if (ca == NULL)
		return;
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	ca->cert = NULL;
	ca->key = NULL;
}

EVP_PKEY *
pki_new_key(char *err, size_t errlen)
{
	EVP_PKEY *k = keyfile_generate("ec");

	if (k == NULL)
		fail_ossl(err, errlen, "cannot generate a P-256 key");
	return k;
}

/* 16 random bytes, top bit clear and first byte non-zero: a positive
 * serial that always encodes in exactly 16 bytes. */
static int
set_random_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn = NULL;
	int rc = -1;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] &= 0x7f;
	if (b[0] == 0)
		b[0] = 0x01;
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
		goto out;
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto out;
	rc = 0;
out:
	BN_free(bn);
	return rc;
}

static int
check_days(int *days, int dflt, char *err, size_t errlen)
{
	if (*days == 0)
		*days = dflt;
	if (*days < 1 || *days > PKI_DAYS_MAX) {
		snprintf(err, errlen, "validity must be 1..%d days", PKI_DAYS_MAX);
		return -1;
	}
	return 0;
}

/* notBefore/notAfter relative to now, in seconds. */
static int
set_validity(X509 *x, long from_s, long to_s)
{
	time_t now = time(NULL);

	if (X509_time_adj_ex(X509_getm_notBefore(x), 0, from_s, &now) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), 0, to_s, &now) == NULL)
		return -1;
	return 0;
}

/* x must not claim a validity its issuer does not have: past the
 * issuer's notAfter the chain fails anyway, and a later date only misleads
 * whoever reads it (certs show, an agency's own expiry alerts).  days is
 * what was asked for, for the message. */
static int
check_within_issuer(const ASN1_TIME *not_after, X509 *issuer, int days,
    char *err, size_t errlen)
{
	int left = 0, secs = 0;

	if (ASN1_TIME_compare(not_after, X509_get0_notAfter(issuer)) <= 0)
		return 0;
	if (ASN1_TIME_diff(&left, &secs, NULL, X509_get0_notAfter(issuer)) != 1)
		left = 0;
	ERR_clear_error();
	if (left < 1)
		snprintf(err, errlen, "the issuing CA expires within a day or has "
		    "expired: rotate it first (docs/OPERATIONS.md 6.3)");
	else
		snprintf(err, errlen, "a validity of %d days would end after the "
		    "issuing CA's own, which has %d days left: give --days %d or "
		    "less, or rotate the CA first (docs/OPERATIONS.md 6.3)", days,
		    left, left);
	return -1;
}

static int
add_name_entry(X509_NAME *n, const char *field, const char *value)
{
	return X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
	    (const unsigned char *)value, -1, -1, 0) == 1 ? 0 : -1;
}

/* A subject: O=visor, OU=<area> if given, CN=cn (cut to 64 bytes). */
static int
set_subject(X509 *x, const char *area, const char *cn)
{
	X509_NAME *n = X509_get_subject_name(x);
	char c[PKI_CN_MAX + 1];

	snprintf(c, sizeof(c), "%s", cn);
	if (add_name_entry(n, "O", "visor") < 0)
		return -1;
	if (area != NULL && area[0] != '\0' && add_name_entry(n, "OU", area) < 0)
		return -1;
	return add_name_entry(n, "CN", c);
}

/* Add an extension from its configuration text, e.g. "critical,CA:TRUE". */
static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static int
push_ia5_name(GENERAL_NAMES *gens, int type, const char *value)
{
	GENERAL_NAME *g;
	ASN1_IA5STRING *s;

	if ((s = ASN1_IA5STRING_new()) == NULL)
		return -1;
	if (ASN1_STRING_set(s, value, (int)strlen(value)) != 1 ||
	    (g = GENERAL_NAME_new()) == NULL) {
		ASN1_IA5STRING_free(s);
		return -1;
	}
	GENERAL_NAME_set0_value(g, type, s);
	if (sk_GENERAL_NAME_push(gens, g) <= 0) {
		GENERAL_NAME_free(g);
		return -1;
	}
	return 0;
}

static int
push_ip_name(GENERAL_NAMES *gens, const char *ip)
{
	GENERAL_NAME *g;
	ASN1_OCTET_STRING *a;

	if ((a = a2i_IPADDRESS(ip)) == NULL)
		return -1;
	if ((g = GENERAL_NAME_new()) == NULL) {
		ASN1_OCTET_STRING_free(a);
		return -1;
	}
	GENERAL_NAME_set0_value(g, GEN_IPADD, a);
	if (sk_GENERAL_NAME_push(gens, g) <= 0) {
		GENERAL_NAME_free(g);
		return -1;
	}
	return 0;
}

/* subjectAltName built entry by entry (never from configuration text, so
 * that no value can inject another entry). */
static int
add_san(X509 *x, const char *uri1, const char *uri2, const char *const *dns,
    size_t n_dns, const char *const *ips, size_t n_ips, char *err, size_t errlen)
{
	GENERAL_NAMES *gens;
	size_t i;
	int rc = -1;

	if (uri1 == NULL && uri2 == NULL && n_dns == 0 && n_ips == 0)
		return 0;
	if ((gens = GENERAL_NAMES_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((uri1 != NULL && push_ia5_name(gens, GEN_URI, uri1) < 0) ||
	    (uri2 != NULL && push_ia5_name(gens, GEN_URI, uri2) < 0)) {
		fail_ossl(err, errlen, "cannot add the URI name");
		goto out;
	}
	for (i = 0; i < n_dns; i++) {
		if (dns[i] == NULL || dns[i][0] == '\0' || strlen(dns[i]) > 253 ||
		    strpbrk(dns[i], " ,/:@") != NULL) {
			snprintf(err, errlen, "bad DNS name '%s'", dns[i] ? dns[i] : "");
			goto out;
		}
		if (push_ia5_name(gens, GEN_DNS, dns[i]) < 0) {
			fail_ossl(err, errlen, "cannot add a DNS name");
			goto out;
		}
	}
	for (i = 0; i < n_ips; i++) {
		if (ips[i] == NULL || push_ip_name(gens, ips[i]) < 0) {
			ERR_clear_error();
			snprintf(err, errlen, "bad IP address '%s'", ips[i] ? ips[i] : "");
			goto out;
		}
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1) {
		fail_ossl(err, errlen, "cannot add subjectAltName");
		goto out;
	}
	rc = 0;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/* The common start of every certificate: version 3, serial, key. */
static X509 *
new_cert(EVP_PKEY *key)
{
	X509 *x;

	if ((x = X509_new()) == NULL)
		return NULL;
	if (X509_set_version(x, X509_VERSION_3) != 1 || set_random_serial(x) < 0 ||
	    X509_set_pubkey(x, key) != 1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

X509 *
pki_make_root(EVP_PKEY *key, int days, char *err, size_t errlen)
{
	X509 *x = NULL;

	if (check_days(&days, PKI_ROOT_DAYS, err, errlen) < 0)
		return NULL;
	if ((x = new_cert(key)) == NULL ||
	    set_subject(x, NULL, "visor national root CA") < 0 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    set_validity(x, -300, (long)days * 86400) < 0 ||
	    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
	    add_san(x, PKI_ROOT_URI, NULL, NULL, 0, NULL, 0, err, errlen) < 0 ||
	    X509_sign(x, key, EVP_sha256()) <= 0) {
		fail_ossl(err, errlen, "cannot build the root certificate");
		X509_free(x);
		return NULL;
	}
	return x;
}

X509 *
pki_make_area_ca(const pki_ca_t *root, EVP_PKEY *key, const char *area,
    int days, char *err, size_t errlen)
{
	char uri[IDENTITY_URI_MAX], cn[PKI_CN_MAX + 1];
	X509 *x = NULL;

	if (area == NULL || !identity_valid_label(area, strlen(area))) {
		snprintf(err, errlen, "bad area name (want [a-z0-9-]{1,32})");
		return NULL;
	}
	if (check_days(&days, PKI_CA_DAYS, err, errlen) < 0)
		return NULL;
	snprintf(uri, sizeof(uri), "urn:visor:%s:ca", area);
	snprintf(cn, sizeof(cn), "visor %s CA", area);
	if ((x = new_cert(key)) == NULL || set_subject(x, area, cn) < 0 ||
	    X509_set_issuer_name(x, X509_get_subject_name(root->cert)) != 1 ||
	    set_validity(x, -300, (long)days * 86400) < 0 ||
	    add_ext(x, root->cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_ext(x, root->cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(x, root->cert, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, root->cert, NID_authority_key_identifier, "keyid:always") < 0 ||
	    add_san(x, uri, NULL, NULL, 0, NULL, 0, err, errlen) < 0 ||
	    X509_sign(x, root->key, EVP_sha256()) <= 0) {
		fail_ossl(err, errlen, "cannot build the area CA certificate");
		X509_free(x);
		return NULL;
	}
	if (check_within_issuer(X509_get0_notAfter(x), root->cert, days, err,
	    errlen) < 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* The area named by an area CA's certificate, into area. */
static int
ca_area(X509 *ca, char area[IDENTITY_PART_MAX])
{
	char uri[IDENTITY_URI_MAX], e[128];
	identity_t id;

	if (pki_cert_uri(ca, uri, sizeof(uri)) < 0 ||
	    identity_parse(uri, strlen(uri), &id, e, sizeof(e)) < 0 ||
	    id.kind != IDENTITY_CA)
		return -1;
	memcpy(area, id.area, IDENTITY_PART_MAX);
	return 0;
}

static void
append_eku(char *out, size_t outlen, const char *name)
{
	size_t n = strlen(out);

	snprintf(out + n, outlen - n, "%s%s", n ? "," : "", name);
}

X509 *
pki_make_leaf(const pki_ca_t *ca, EVP_PKEY *key, const char *identity,
    const pki_leaf_opts_t *opts, char *err, size_t errlen)
{
	static const pki_leaf_opts_t zero;
	char area[IDENTITY_PART_MAX] = "", e[128], eku_text[64] = "";
	identity_t id;
	unsigned eku;
	long from_s, to_s;
	int days;
	X509 *x = NULL;

	if (opts == NULL)
		opts = &zero;
	days = opts->days;
	if (identity == NULL || check_days(&days, PKI_LEAF_DAYS, err, errlen) < 0) {
		if (identity == NULL)
			snprintf(err, errlen, "no identity given");
		return NULL;
	}
	memset(&id, 0, sizeof(id));
	if (!opts->unchecked) {
		if (identity_parse(identity, strlen(identity), &id, e, sizeof(e)) < 0) {
			snprintf(err, errlen, "identity '%s': %s", identity, e);
			return NULL;
		}
		if (id.kind == IDENTITY_CA) {
			snprintf(err, errlen, "identity '%s' is a CA identity; "
			    "use new-area-ca", identity);
			return NULL;
		}
		if (ca_area(ca->cert, area) < 0) {
			snprintf(err, errlen, "the issuing certificate is not an area CA");
			return NULL;
		}
		if (strcmp(area, id.area) != 0) {
			snprintf(err, errlen, "identity '%s' is not of area '%s' "
			    "(an area CA issues only its own area's identities)",
			    identity, area);
			return NULL;
		}
	}
	eku = opts->eku;
	if (eku == 0)
		eku = id.kind == IDENTITY_GATEWAY ?
		    PKI_EKU_SERVER | PKI_EKU_CLIENT : PKI_EKU_CLIENT;
	if (opts->server)
		eku |= PKI_EKU_SERVER;
	if (eku & PKI_EKU_SERVER)
		append_eku(eku_text, sizeof(eku_text), "serverAuth");
	if (eku & PKI_EKU_CLIENT)
		append_eku(eku_text, sizeof(eku_text), "clientAuth");
	if (eku & PKI_EKU_OMIT)
		eku_text[0] = '\0';

	from_s = -300;
	to_s = (long)days * 86400;
	if (opts->not_yet_valid) {
		from_s = 86400;
		to_s += 86400;
	}
	if (opts->expired) {
		from_s = -10L * 86400;
		to_s = -86400;
	}
	if ((x = new_cert(key)) == NULL ||
	    set_subject(x, opts->unchecked ? NULL : id.area, identity) < 0 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
	    set_validity(x, from_s, to_s) < 0 ||
	    add_ext(x, ca->cert, NID_basic_constraints,
	        opts->ca ? "critical,CA:TRUE" : "critical,CA:FALSE") < 0 ||
	    add_ext(x, ca->cert, NID_key_usage, opts->key_usage != NULL ?
	        opts->key_usage : opts->ca ?
	        "critical,digitalSignature,keyCertSign" : "critical,digitalSignature") < 0 ||
	    (eku_text[0] != '\0' &&
	        add_ext(x, ca->cert, NID_ext_key_usage, eku_text) < 0) ||
	    add_ext(x, ca->cert, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always") < 0) {
		fail_ossl(err, errlen, "cannot build the certificate");
		goto fail;
	}
	if (add_san(x, opts->no_uri ? NULL : identity, opts->second_uri,
	    opts->dns, opts->n_dns, opts->ips, opts->n_ips, err, errlen) < 0 ||
	    check_within_issuer(X509_get0_notAfter(x), ca->cert, days, err,
	    errlen) < 0)
		goto fail;
	if (X509_sign(x, ca->key, EVP_sha256()) <= 0) {
		fail_ossl(err, errlen, "cannot sign the certificate");
		goto fail;
	}
	return x;
fail:
	X509_free(x);
	return NULL;
}

long
pki_crl_number(const X509_CRL *crl)
{
	ASN1_INTEGER *n;
	int64_t v = -1;

	n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	if (n == NULL) {
		ERR_clear_error();
		return -1;
	}
	if (ASN1_INTEGER_get_int64(&v, n) != 1 || v < 0 || v > LONG_MAX)
		v = -1;
	ASN1_INTEGER_free(n);
	ERR_clear_error();
	return (long)v;
}

int
pki_crl_lists(const X509_CRL *crl, const ASN1_INTEGER *serial)
{
	STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED((X509_CRL *)crl);
	int i;

	for (i = 0; i < sk_X509_REVOKED_num(revs); i++)
		if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(
		    sk_X509_REVOKED_value(revs, i)), serial) == 0)
			return 1;
	return 0;
}

static int
revoked_entry(X509_CRL *crl, const ASN1_INTEGER *serial, int reason)
{
	X509_REVOKED *r;
	ASN1_TIME *now = NULL;
	ASN1_ENUMERATED *e = NULL;
	int rc = -1;

	if ((r = X509_REVOKED_new()) == NULL)
		return -1;
	if ((now = X509_gmtime_adj(NULL, 0)) == NULL ||
	    X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)serial) != 1 ||
	    X509_REVOKED_set_revocationDate(r, now) != 1)
		goto out;
	/* RFC 5280: reasonCode unspecified should be absent. */
	if (reason != PKI_REASON_UNSPECIFIED) {
		if ((e = ASN1_ENUMERATED_new()) == NULL ||
		    ASN1_ENUMERATED_set(e, reason) != 1 ||
		    X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, 0, 0) != 1)
			goto out;
	}
	if (X509_CRL_add0_revoked(crl, r) != 1)
		goto out;
	r = NULL;
	rc = 0;
out:
	ASN1_ENUMERATED_free(e);
	ASN1_TIME_free(now);
	X509_REVOKED_free(r);
	return rc;
}

X509_CRL *
pki_make_crl(const pki_ca_t *ca, const X509_CRL *prev,
    const ASN1_INTEGER *serial, int reason, int days, char *err, size_t errlen)
{
	STACK_OF(X509_REVOKED) *old;
	X509_CRL *crl = NULL;
	ASN1_INTEGER *num = NULL;
	ASN1_TIME *t = NULL;
	X509V3_CTX ctx;
	X509_EXTENSION *akid = NULL;
	long n = 1;
	int i;

	if (check_days(&days, PKI_CRL_DAYS, err, errlen) < 0)
		return NULL;
	if (serial != NULL && pki_reason_name(reason) == NULL) {
		snprintf(err, errlen, "unknown revocation reason %d", reason);
		return NULL;
	}
	if (prev != NULL) {
		if ((n = pki_crl_number(prev)) < 0 || n >= LONG_MAX - 1) {
			snprintf(err, errlen, "previous CRL has no usable CRL number");
			return NULL;
		}
		n++;
		if (serial != NULL && pki_crl_lists(prev, serial)) {
			snprintf(err, errlen, "certificate already revoked");
			return NULL;
		}
	}
	/* lastUpdate five minutes back, as a certificate's notBefore: a
	 * gateway whose clock is a little behind the CA's would otherwise
	 * refuse the new CRL as not yet valid, and keep the old one without
	 * the revocation.  The revocation date below stays now. */
	if ((crl = X509_CRL_new()) == NULL ||
	    X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 ||
	    (t = X509_gmtime_adj(NULL, -300)) == NULL ||
	    X509_CRL_set1_lastUpdate(crl, t) != 1)
		goto fail;
	/* A new time, not t moved on: t is a UTCTime, which cannot hold a
	 * date past 2049 (crl --days near the 36500 allowed failed). */
	ASN1_TIME_free(t);
	if ((t = X509_gmtime_adj(NULL, (long)days * 86400)) == NULL ||
	    X509_CRL_set1_nextUpdate(crl, t) != 1)
		goto fail;
	if (prev != NULL) {
		old = X509_CRL_get_REVOKED((X509_CRL *)prev);
		for (i = 0; i < sk_X509_REVOKED_num(old); i++) {
			X509_REVOKED *d = X509_REVOKED_dup(sk_X509_REVOKED_value(old, i));
			if (d == NULL || X509_CRL_add0_revoked(crl, d) != 1) {
				X509_REVOKED_free(d);
				goto fail;
			}
		}
	}
	if (serial != NULL && revoked_entry(crl, serial, reason) < 0)
		goto fail;
	if ((num = ASN1_INTEGER_new()) == NULL || ASN1_INTEGER_set(num, n) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
		goto fail;
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	if ((akid = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
	    "keyid:always")) == NULL || X509_CRL_add_ext(crl, akid, -1) != 1)
		goto fail;
	if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca->key, EVP_sha256()) <= 0)
		goto fail;
	X509_EXTENSION_free(akid);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	return crl;
fail:
	fail_ossl(err, errlen, "cannot build the CRL");
	X509_EXTENSION_free(akid);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return NULL;
}

/* ---- files ---- */

static BIO *
read_file_bio(const char *path, char **data, char *err, size_t errlen)
{
	size_t len = 0;
	BIO *mem;

	*data = NULL;
	if (file_read_all(path, PKI_FILE_MAX, data, &len) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (len > INT_MAX || (mem = BIO_new_mem_buf(*data, (int)len)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(*data);
		*data = NULL;
		return NULL;
	}
	return mem;
}

X509 *
pki_load_cert(const char *path, char *err, size_t errlen)
{
	char *data;
	BIO *mem;
	X509 *x;

	if ((mem = read_file_bio(path, &data, err, errlen)) == NULL)
		return NULL;
	x = PEM_read_bio_X509(mem, NULL, NULL, NULL);
	BIO_free(mem);
	free(data);
	ERR_clear_error();
	if (x == NULL)
		snprintf(err, errlen, "%s: not a PEM certificate", path);
	return x;
}

X509_CRL *
pki_load_crl(const char *path, char *err, size_t errlen)
{
	STACK_OF(X509_CRL) *sk;
	X509_CRL *crl;

	if ((sk = tls_trust_read_crls(path, PKI_FILE_MAX, err, errlen)) == NULL)
		return NULL;
	/* A CA writes its crl.pem whole, with one CRL: the next one built on
	 * the first of several would drop the others' revocations. */
	if (sk_X509_CRL_num(sk) != 1) {
		snprintf(err, errlen, "%s: holds %d CRLs; a CA's CRL file holds one",
		    path, sk_X509_CRL_num(sk));
		sk_X509_CRL_pop_free(sk, X509_CRL_free);
		return NULL;
	}
	crl = sk_X509_CRL_shift(sk);
	sk_X509_CRL_free(sk);
	return crl;
}

/* Write mem's bytes to path, mode 0644: atomically over what is there, or
 * with exclusive only if nothing is (EEXIST otherwise, reported). */
static int
write_bio(const char *path, BIO *mem, int exclusive, char *err, size_t errlen)
{
	char *p = NULL;
	long n = BIO_get_mem_data(mem, &p);
	int rc;

	if (n <= 0) {
		snprintf(err, errlen, "%s: cannot write: empty output", path);
		return -1;
	}
	rc = exclusive ? file_create_new(path, p, (size_t)n, 0644) :
	    file_write_atomic(path, p, (size_t)n, 0644);
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot write: %s", path,
		    errno == EEXIST ? "it exists (appeared meanwhile); refusing "
		    "to overwrite" : strerror(errno));
		return -1;
	}
	return 0;
}

static int
write_cert(const char *path, X509 *cert, X509 *chain, int exclusive,
    char *err, size_t errlen)
{
	BIO *mem;
	int rc = -1;

	if ((mem = BIO_new(BIO_s_mem())) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (PEM_write_bio_X509(mem, cert) != 1 ||
	    (chain != NULL && PEM_write_bio_X509(mem, chain) != 1)) {
		fail_ossl(err, errlen, "cannot encode the certificate");
		goto out;
	}
	rc = write_bio(path, mem, exclusive, err, errlen);
out:
	BIO_free(mem);
	return rc;
}

int
pki_write_cert(const char *path, X509 *cert, X509 *chain, char *err,
    size_t errlen)
{
	return write_cert(path, cert, chain, 0, err, errlen);
}

static int
write_crl(const char *path, X509_CRL *crl, int exclusive, char *err,
    size_t errlen)
{
	BIO *mem;
	int rc = -1;

	if ((mem = BIO_new(BIO_s_mem())) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (PEM_write_bio_X509_CRL(mem, crl) != 1)
		fail_ossl(err, errlen, "cannot encode the CRL");
	else
		rc = write_bio(path, mem, exclusive, err, errlen);
	BIO_free(mem);
	return rc;
}

int
pki_write_crl(const char *path, X509_CRL *crl, char *err, size_t errlen)
{
	return write_crl(path, crl, 0, err, errlen);
}

/* A new private key file at path, never over one there: the callers
 * check first for a clear message, but a file that appears after that
 * check (another run at the same moment) must not be written over. */
static int
create_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
	if (keyfile_create_private(path, key) < 0) {
		snprintf(err, errlen, "%s: cannot write: %s", path,
		    errno == EEXIST ? "it exists (appeared meanwhile); refusing "
		    "to overwrite" : strerror(errno));
		return -1;
	}
	return 0;
}

static int
join(char *out, size_t outlen, const char *dir, const char *name, char *err,
    size_t errlen)
{
	if (file_join(out, outlen, dir, name) < 0) {
		snprintf(err, errlen, "path too long: %s/%s", dir, name);
		return -1;
	}
	return 0;
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int
pki_ca_load(const char *dir, const char *name, pki_ca_t *ca, char *err,
    size_t errlen)
{
	char crt[PKI_PATH_MAX], key[PKI_PATH_MAX], f[64];

	memset(ca, 0, sizeof(*ca));
	snprintf(f, sizeof(f), "%s.crt", name);
	if (join(crt, sizeof(crt), dir, f, err, errlen) < 0)
		return -1;
	snprintf(f, sizeof(f), "%s.key", name);
	if (join(key, sizeof(key), dir, f, err, errlen) < 0)
		return -1;
	if ((ca->cert = pki_load_cert(crt, err, errlen)) == NULL)
		return -1;
	if ((ca->key = keyfile_load_private(key, err, errlen)) == NULL)
		goto fail;
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s does not match %s", key, crt);
		goto fail;
	}
	if (X509_check_ca(ca->cert) != 1) {
		snprintf(err, errlen, "%s is not a CA certificate", crt);
		goto fail;
	}
	return 0;
fail:
	pki_ca_clear(ca);
	return -1;
}

int
pki_root_create(const char *dir, int days, char *err, size_t errlen)
{
	char crt[PKI_PATH_MAX], keyp[PKI_PATH_MAX];
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int rc = -1;

	if (join(crt, sizeof(crt), dir, "root.crt", err, errlen) < 0 ||
	    join(keyp, sizeof(keyp), dir, "root.key", err, errlen) < 0)
		return -1;
	if (exists(crt) || exists(keyp)) {
		snprintf(err, errlen, "%s already holds a root (root.crt or root.key); "
		    "refusing to overwrite", dir);
		return -1;
	}
	if (file_mkdirs(dir, 0700) < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
		return -1;
	}
	if ((key = pki_new_key(err, errlen)) == NULL ||
	    (x = pki_make_root(key, days, err, errlen)) == NULL)
		goto out;
	if (create_key(keyp, key, err, errlen) < 0)
		goto out;
	/* The key made here goes again if its certificate cannot follow: a
	 * retry would otherwise be refused, with a root key and no root. */
	if (write_cert(crt, x, NULL, 1, err, errlen) < 0) {
		unlink(keyp);
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int
pki_area_ca_create(const char *root_dir, const char *area,
    const char *out_dir, int days, char *err, size_t errlen)
{
	char crt[PKI_PATH_MAX], keyp[PKI_PATH_MAX], crlp[PKI_PATH_MAX];
	pki_ca_t root = { NULL, NULL }, ca = { NULL, NULL };
	X509_CRL *crl = NULL;
	int rc = -1;

	if (join(crt, sizeof(crt), out_dir, "ca.crt", err, errlen) < 0 ||
	    join(keyp, sizeof(keyp), out_dir, "ca.key", err, errlen) < 0 ||
	    join(crlp, sizeof(crlp), out_dir, "crl.pem", err, errlen) < 0)
		return -1;
	if (exists(crt) || exists(keyp) || exists(crlp)) {
		snprintf(err, errlen, "%s already holds a CA (ca.crt, ca.key or crl.pem); "
		    "refusing to overwrite", out_dir);
		return -1;
	}
	if (pki_ca_load(root_dir, "root", &root, err, errlen) < 0)
		return -1;
	if ((ca.key = pki_new_key(err, errlen)) == NULL ||
	    (ca.cert = pki_make_area_ca(&root, ca.key, area, days, err, errlen)) == NULL ||
	    (crl = pki_make_crl(&ca, NULL, NULL, 0, 0, err, errlen)) == NULL)
		goto out;
	if (file_mkdirs(out_dir, 0700) < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", out_dir, strerror(errno));
		goto out;
	}
	if (create_key(keyp, ca.key, err, errlen) < 0)
		goto out;
	/* What was made here goes again if the rest cannot follow (as in
	 * pki_root_create). */
	if (write_cert(crt, ca.cert, NULL, 1, err, errlen) < 0) {
		unlink(keyp);
		goto out;
	}
	if (write_crl(crlp, crl, 1, err, errlen) < 0) {
		unlink(crt);
		unlink(keyp);
		goto out;
	}
	rc = 0;
out:
	X509_CRL_free(crl);
	pki_ca_clear(&ca);
	pki_ca_clear(&root);
	return rc;
}

static int
prefix_paths(const char *prefix, char crt[PKI_PATH_MAX], char keyp[PKI_PATH_MAX],
    char *err, size_t errlen)
{
	if ((size_t)snprintf(crt, PKI_PATH_MAX, "%s.crt", prefix) >= PKI_PATH_MAX ||
	    (size_t)snprintf(keyp, PKI_PATH_MAX, "%s.key", prefix) >= PKI_PATH_MAX) {
		snprintf(err, errlen, "path too long: %s", prefix);
		return -1;
	}
	return 0;
}

int
pki_issue(const char *ca_dir, const char *identity, const char *prefix,
    const pki_leaf_opts_t *opts, char *err, size_t errlen)
{
	char crt[PKI_PATH_MAX], keyp[PKI_PATH_MAX];
	pki_ca_t ca = { NULL, NULL };
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int rc = -1;

	if (prefix_paths(prefix, crt, keyp, err, errlen) < 0)
		return -1;
	if (exists(crt) || exists(keyp)) {
		snprintf(err, errlen, "%s or %s exists; refusing to overwrite (use renew)",
		    crt, keyp);
		return -1;
	}
	if (pki_ca_load(ca_dir, "ca", &ca, err, errlen) < 0)
		return -1;
	if ((key = pki_new_key(err, errlen)) == NULL ||
	    (x = pki_make_leaf(&ca, key, identity, opts, err, errlen)) == NULL)
		goto out;
	if (create_key(keyp, key, err, errlen) < 0)
		goto out;
	if (write_cert(crt, x, ca.cert, 1, err, errlen) < 0) {
		unlink(keyp);
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	pki_ca_clear(&ca);
	return rc;
}

/* cert must have been signed by ca. */
static int
check_issued_by(const pki_ca_t *ca, X509 *cert, const char *path, char *err,
    size_t errlen)
{
	if (X509_check_issued(ca->cert, cert) != X509_V_OK ||
	    X509_verify(cert, X509_get0_pubkey(ca->cert)) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s was not issued by this CA", path);
		return -1;
	}
	return 0;
}

/* ca_dir's crl.pem (its path into crlp), checked to be signed by ca. */
static X509_CRL *
load_ca_crl(const char *ca_dir, const pki_ca_t *ca, char *crlp, size_t crlplen,
    char *err, size_t errlen)
{
	X509_CRL *crl;

	if (join(crlp, crlplen, ca_dir, "crl.pem", err, errlen) < 0 ||
	    (crl = pki_load_crl(crlp, err, errlen)) == NULL)
		return NULL;
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s is not signed by this CA", crlp);
		X509_CRL_free(crl);
		return NULL;
	}
	return crl;
}

/* Load ca_dir's CA and CRL, build the next CRL, write it. */
static int
update_crl(const char *ca_dir, const char *cert_file, int reason, int days,
    char *err, size_t errlen)
{
	char crlp[PKI_PATH_MAX];
	pki_ca_t ca = { NULL, NULL };
	X509_CRL *prev = NULL, *next = NULL;
	X509 *cert = NULL;
	int rc = -1;

	if (pki_ca_load(ca_dir, "ca", &ca, err, errlen) < 0)
		return -1;
	if ((prev = load_ca_crl(ca_dir, &ca, crlp, sizeof(crlp), err,
	    errlen)) == NULL)
		goto out;
	if (cert_file != NULL) {
		if ((cert = pki_load_cert(cert_file, err, errlen)) == NULL ||
		    check_issued_by(&ca, cert, cert_file, err, errlen) < 0)
			goto out;
	}
	if ((next = pki_make_crl(&ca, prev, cert ? X509_get0_serialNumber(cert) : NULL,
	    reason, days, err, errlen)) == NULL)
		goto out;
	rc = pki_write_crl(crlp, next, err, errlen);
out:
	X509_free(cert);
	X509_CRL_free(prev);
	X509_CRL_free(next);
	pki_ca_clear(&ca);
	return rc;
}

int
pki_revoke(const char *ca_dir, const char *cert_file, int reason,
    char *err, size_t errlen)
{
	if (cert_file == NULL) {
		snprintf(err, errlen, "no certificate given");
		return -1;
	}
	return update_crl(ca_dir, cert_file, reason, 0, err, errlen);
}

int
pki_crl_refresh(const char *ca_dir, int days, char *err, size_t errlen)
{
	return update_crl(ca_dir, NULL, 0, days, err, errlen);
}

/* Copy the extension nid of from into to, if from has it. */
static int
copy_ext(X509 *to, X509 *from, int nid)
{
	int i = X509_get_ext_by_NID(from, nid, -1);

	if (i < 0)
		return 0;
	return X509_add_ext(to, X509_get_ext(from, i), -1) == 1 ? 0 : -1;
}

int
pki_renew(const char *ca_dir, const char *cert_file, int new_key, int days,
    char *old_out, size_t old_outlen, char *err, size_t errlen)
{
	static const int copied[] = { NID_basic_constraints, NID_key_usage,
	    NID_ext_key_usage, NID_subject_alt_name };
	char keyp[PKI_PATH_MAX];
	pki_ca_t ca = { NULL, NULL };
	EVP_PKEY *old_key = NULL, *key = NULL;
	X509 *old = NULL, *x = NULL;
	struct stat key_sb;
	size_t n, i;
	int rc = -1;

	n = strlen(cert_file);
	if (n < 5 || strcmp(cert_file + n - 4, ".crt") != 0 || n >= PKI_PATH_MAX) {
		snprintf(err, errlen, "%s: certificate file must end in .crt "
		    "(its key is the .key beside it)", cert_file);
		return -1;
	}
	memcpy(keyp, cert_file, n - 4);
	memcpy(keyp + n - 4, ".key", 5);
	if (check_days(&days, PKI_LEAF_DAYS, err, errlen) < 0 ||
	    pki_ca_load(ca_dir, "ca", &ca, err, errlen) < 0)
		return -1;
	if ((old = pki_load_cert(cert_file, err, errlen)) == NULL ||
	    check_issued_by(&ca, old, cert_file, err, errlen) < 0)
		goto out;
	/* Before anything is written (the old certificate's copy below). */
	{
		ASN1_TIME *t = X509_time_adj_ex(NULL, 0, (long)days * 86400, NULL);
		int within = t != NULL &&
		    check_within_issuer(t, ca.cert, days, err, errlen) == 0;

		if (t == NULL)
			fail_ossl(err, errlen, "cannot compute the validity");
		ASN1_TIME_free(t);
		if (!within)
			goto out;
	}
	if (X509_check_ca(old) != 0) {
		snprintf(err, errlen, "%s is a CA certificate; renew issues end-entity "
		    "certificates only", cert_file);
		goto out;
	}
	/* A revoked certificate is not renewed: with the same key that would
	 * undo a revocation for key compromise, and with a new one it would
	 * undo the revocation's decision.  Issue afresh (certs issue). */
	{
		char crlp[PKI_PATH_MAX];
		X509_CRL *crl = load_ca_crl(ca_dir, &ca, crlp, sizeof(crlp), err,
		    errlen);
		int listed;

		if (crl == NULL)
			goto out;
		listed = pki_crl_lists(crl, X509_get0_serialNumber(old));
		X509_CRL_free(crl);
		if (listed) {
			snprintf(err, errlen, "%s is revoked (%s); a revoked "
			    "certificate is not renewed: issue a new one with a new "
			    "key (visorctl certs issue)", cert_file, crlp);
			goto out;
		}
	}
	if ((old_key = keyfile_load_private(keyp, err, errlen)) == NULL)
		goto out;
	if (stat(keyp, &key_sb) < 0) {
		snprintf(err, errlen, "%s: %s", keyp, strerror(errno));
		goto out;
	}
	if (X509_check_private_key(old, old_key) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s does not match %s", keyp, cert_file);
		goto out;
	}
	if (new_key) {
		if ((key = pki_new_key(err, errlen)) == NULL)
			goto out;
	} else {
		key = old_key;
		if (!EVP_PKEY_up_ref(key)) {
			key = NULL;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	/* The old certificate is written over below and stays valid: keep it
	 * under its serial, so that it can still be revoked (revoking the
	 * renewed file afterwards revoked the new certificate instead). */
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(old), NULL);
		char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
		int w = hex != NULL ? snprintf(old_out, old_outlen, "%.*s.old-%s.crt",
		    (int)(n - 4), cert_file, hex) : -1;

		OPENSSL_free(hex);
		BN_free(bn);
		if (w < 0 || (size_t)w >= old_outlen) {
			snprintf(err, errlen, "%s: no room for the old certificate's "
			    "file name", cert_file);
			goto out;
		}
		if (pki_write_cert(old_out, old, ca.cert, err, errlen) < 0)
			goto out;
	}
	if ((x = new_cert(key)) == NULL ||
	    X509_set_subject_name(x, X509_get_subject_name(old)) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca.cert)) != 1 ||
	    set_validity(x, -300, (long)days * 86400) < 0)
		goto ossl;
	for (i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
		if (copy_ext(x, old, copied[i]) < 0)
			goto ossl;
	if (add_ext(x, ca.cert, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, ca.cert, NID_authority_key_identifier, "keyid:always") < 0 ||
	    X509_sign(x, ca.key, EVP_sha256()) <= 0)
		goto ossl;
	/* The key first: if the certificate cannot be written, put the old key
	 * back so the pair on disk still matches. */
	if (new_key && keyfile_write_private(keyp, key) < 0) {
		snprintf(err, errlen, "%s: cannot write: %s", keyp, strerror(errno));
		goto out;
	}
	/* Run as root, the new key keeps the old one's owner: a gateway that
	 * dropped to its account re-reads it on SIGHUP. */
	if (new_key && geteuid() == 0 && key_sb.st_uid != 0 &&
	    chown(keyp, key_sb.st_uid, key_sb.st_gid) < 0) {
		snprintf(err, errlen, "%s: cannot give it back to uid %lu: %s",
		    keyp, (unsigned long)key_sb.st_uid, strerror(errno));
		if (keyfile_write_private(keyp, old_key) == 0 &&
		    chown(keyp, key_sb.st_uid, key_sb.st_gid) < 0)
			snprintf(err, errlen, "%s: the old key is back but owned "
			    "by root: %s", keyp, strerror(errno));
		goto out;
	}
	if (pki_write_cert(cert_file, x, ca.cert, err, errlen) < 0) {
		/* The old key back, with its owner, as the certificate is. */
		if (new_key && keyfile_write_private(keyp, old_key) == 0 &&
		    geteuid() == 0 && key_sb.st_uid != 0 &&
		    chown(keyp, key_sb.st_uid, key_sb.st_gid) < 0)
			snprintf(err, errlen, "%s: cannot write the certificate; "
			    "the old key is back but owned by root: %s", keyp,
			    strerror(errno));
		goto out;
	}
	rc = 0;
	goto out;
ossl:
	fail_ossl(err, errlen, "cannot build the renewed certificate");
out:
	X509_free(x);
	X509_free(old);
	EVP_PKEY_free(key);
	EVP_PKEY_free(old_key);
	pki_ca_clear(&ca);
	return rc;
}

/* ---- inspection ---- */

int
pki_cert_uri(X509 *cert, char *uri, size_t urilen)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *found = NULL;
	int i, n = 0, len, rc = -1;

	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL) {
		ERR_clear_error();
		return -1;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_URI) {
			found = g;
			n++;
		}
	}
	if (n == 1) {
		len = ASN1_STRING_length(found->d.uniformResourceIdentifier);
		if (len >= 0 && (size_t)len < urilen) {
			memcpy(uri, ASN1_STRING_get0_data(found->d.uniformResourceIdentifier),
			    (size_t)len);
			uri[len] = '\0';
			rc = memchr(uri, '\0', (size_t)len) == NULL ? 0 : -1;
		}
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

static int
print_name(buf_t *out, const char *label, const X509_NAME *name)
{
	BIO *mem;
	char *p = NULL;
	long n;
	int rc = -1;

	if ((mem = BIO_new(BIO_s_mem())) == NULL)
		return -1;
	/* Every byte outside ASCII escaped (as \C2\9B): a name may come from
	 * anyone, and the C1 controls of UTF-8 drive some terminals. */
	if (X509_NAME_print_ex(mem, name, 0, XN_FLAG_ONELINE) >= 0 &&
	    (n = BIO_get_mem_data(mem, &p)) >= 0 &&
	    buf_printf(out, "%s: %.*s\n", label, (int)n, p) == 0)
		rc = 0;
	BIO_free(mem);
	return rc;
}

static int
print_time(buf_t *out, const char *label, const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return buf_printf(out, "%s: (unreadable)\n", label);
	return buf_printf(out, "%s: %04d-%02d-%02dT%02d:%02d:%02dZ\n", label,
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* "label: value" for a name of a certificate, which may come from anyone:
 * bytes outside printable ASCII, and the backslash, as \xNN, so that no
 * name can break the line, forge another or drive the terminal. */
static int
print_ia5(buf_t *out, const char *label, const ASN1_STRING *s)
{
	const unsigned char *p = ASN1_STRING_get0_data(s);
	int i, n = ASN1_STRING_length(s), rc;

	rc = buf_printf(out, "%s: ", label);
	for (i = 0; i < n && rc == 0; i++) {
		if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\')
			rc = buf_printf(out, "\\x%02x", p[i]);
		else
			rc = buf_append(out, &p[i], 1);
	}
	return rc == 0 ? buf_printf(out, "\n") : -1;
}

static int
print_other_names(buf_t *out, X509 *cert)
{
	GENERAL_NAMES *gens;
	int i, rc = 0;

	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL) {
		ERR_clear_error();
		return 0;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s;
		switch (g->type) {
		case GEN_URI:
			rc = print_ia5(out, "uri", g->d.uniformResourceIdentifier);
			break;
		case GEN_DNS:
			rc = print_ia5(out, "dns", g->d.dNSName);
			break;
		case GEN_IPADD:
			s = g->d.iPAddress;
			if (ASN1_STRING_length(s) == 4 || ASN1_STRING_length(s) == 16) {
				char ip[INET6_ADDRSTRLEN];
				if (inet_ntop(ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6,
				    ASN1_STRING_get0_data(s), ip, sizeof(ip)) != NULL)
					rc = buf_printf(out, "ip: %s\n", ip);
			}
			break;
		default:
			break;
		}
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

int
pki_describe(X509 *cert, buf_t *out)
{
	char uri[IDENTITY_URI_MAX], e[128], fp[65], eku[64] = "";
	const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
	BIGNUM *bn = NULL;
	char *hex = NULL;
	identity_t id;
	uint32_t x;
	int rc = -1;

	if (pki_cert_uri(cert, uri, sizeof(uri)) == 0) {
		if (identity_parse(uri, strlen(uri), &id, e, sizeof(e)) == 0) {
			if (buf_printf(out, "identity: %s\nkind: %s\narea: %s\n", id.uri,
			    identity_kind_name(id.kind), id.area) < 0)
				goto out;
		} else if (buf_printf(out, "identity: (malformed: %s)\n", e) < 0) {
			goto out;
		}
	} else if (buf_puts(out, "identity: (none, or more than one URI)\n") < 0) {
		goto out;
	}
	if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL)
		goto out;
	if (print_name(out, "subject", X509_get_subject_name(cert)) < 0 ||
	    print_name(out, "issuer", X509_get_issuer_name(cert)) < 0 ||
	    buf_printf(out, "serial: %s\n", hex) < 0 ||
	    print_time(out, "not_before", X509_get0_notBefore(cert)) < 0 ||
	    print_time(out, "not_after", X509_get0_notAfter(cert)) < 0)
		goto out;
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0 &&
	    buf_puts(out, "status: expired\n") < 0)
		goto out;
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0 &&
	    buf_puts(out, "status: not yet valid\n") < 0)
		goto out;
	if (buf_printf(out, "ca: %s\n", X509_check_ca(cert) ? "yes" : "no") < 0)
		goto out;
	if (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) {
		x = X509_get_extended_key_usage(cert);
		if (x & XKU_SSL_SERVER)
			append_eku(eku, sizeof(eku), "serverAuth");
		if (x & XKU_SSL_CLIENT)
			append_eku(eku, sizeof(eku), "clientAuth");
		if (eku[0] == '\0')
			append_eku(eku, sizeof(eku), "(other)");
	} else {
		append_eku(eku, sizeof(eku), "(none)");
	}
	if (buf_printf(out, "eku: %s\n", eku) < 0 || print_other_names(out, cert) < 0)
		goto out;
	tls_trust_cert_sha256(cert, fp);
	if (buf_printf(out, "sha256: %s\n", fp) < 0)
		goto out;
	rc = 0;
out:
	ERR_clear_error();
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

static const struct {
	int code;
	const char *name;
} reasons[] = {
	{ PKI_REASON_UNSPECIFIED, "unspecified" },
	{ PKI_REASON_KEY_COMPROMISE, "key-compromise" },
	{ PKI_REASON_AFFILIATION_CHANGED, "affiliation-changed" },
	{ PKI_REASON_SUPERSEDED, "superseded" },
	{ PKI_REASON_CESSATION, "cessation-of-operation" },
};

const char *
pki_reason_name(int reason)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == reason)
			return reasons[i].name;
	return NULL;
}

int
pki_reason_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (strcmp(reasons[i].name, name) == 0)
			return reasons[i].code;
	return -1;
}
