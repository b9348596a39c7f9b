/*
 * https_client: libcurl over mTLS with the visor identity checks.  See the
 * header for the contract.  The only file that includes curl/curl.h.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "client/https_client.h"
#include "crypto/identity.h"
#include "crypto/tls_trust.h"
#include "util/errmsg.h"
#include "util/fileio.h"

#define PEM_FILE_MAX (1u << 20)
#define CRL_FILE_MAX (64u << 20)

struct https_client {
	/* The PEM bytes checked at creation, handed to curl as they are
	 * (CURLOPT_*_BLOB): no file is opened again behind the checks. */
	char *cert;
	char *key;			/* wiped when freed */
	char *root;
	size_t cert_len, key_len, root_len;
	char *expect;			/* NULL: any gateway */
	STACK_OF(X509_CRL) *crls;	/* NULL when none given */
	long timeout_ms;
	long connect_timeout_ms;
	long max_conn_age_s;
	size_t max_response;
	int count_sends;		/* options: xfer.sends counted */
	CURL *easy;			/* the keep-alive handle of the sync API */
	char peer[IDENTITY_URI_MAX];	/* identity seen on the last handshake */
	char verify_err[256];		/* why the last identity check failed */
	int refused_alert;		/* the fatal alert by which the server
					 * last refused our certificate, 0
					 * none (client_info_cb) */
};

/* One transfer's response collection, bounded. */
struct xfer {
	https_response_t *resp;
	size_t max;
	int too_large;
	int retryable;		/* set by finish_transfer */
	const char *method;	/* of the request, for debug_cb */
	int sends;		/* times the request went out (debug_cb) */
	CURL *easy;		/* the handle running it, for prereq_cb */
	int fresh;		/* on a connection of its own (FRESH_CONNECT) */
	int stale;		/* prereq_cb stopped it: the connection's
				 * verdict on the server ran out */
};

static int ctx_ex_index = -1;
static int ssl_ex_index = -1;	/* long *: the connection's verdict_until */

static void
until_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;

static void
global_init_once(void)
{
	const curl_version_info_data *v;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return;
	v = curl_version_info(CURLVERSION_NOW);
	/* The SSL_CTX callback hands us OpenSSL objects: any other backend
	 * would make the identity check silently absent. */
	if (v == NULL || v->ssl_version == NULL ||
	    strncmp(v->ssl_version, "OpenSSL", 7) != 0) {
		curl_global_cleanup();
		return;
	}
	ctx_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ssl_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, until_free);
	if (ctx_ex_index < 0 || ssl_ex_index < 0) {
		curl_global_cleanup();
		return;
	}
	global_rc = 0;
}

int
https_global_init(void)
{
	if (pthread_once(&global_once, global_init_once) != 0)
		return -1;
	return global_rc;
}

/* --- identity checks in the handshake ------------------------------------ */

/* The single URI subjectAltName of cert, copied into out.  0, or -1 with a
 * reason ("no-uri", "multiple-uris"). */
static int
cert_single_uri(X509 *cert, char *out, size_t outlen, const char **reason)
{
	GENERAL_NAMES *names;
	const GENERAL_NAME *gn;
	const ASN1_IA5STRING *uri = NULL;
	int i, n, count = 0;

	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (names == NULL) {
		*reason = "no-uri";
		return -1;
	}
	n = sk_GENERAL_NAME_num(names);
	for (i = 0; i < n; i++) {
		gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type == GEN_URI) {
			count++;
			uri = gn->d.uniformResourceIdentifier;
		}
	}
	if (count != 1) {
		*reason = count == 0 ? "no-uri" : "multiple-uris";
		GENERAL_NAMES_free(names);
		return -1;
	}
	if (uri->length <= 0 || (size_t)uri->length >= outlen ||
	    memchr(uri->data, '\0', (size_t)uri->length) != NULL) {
		*reason = "malformed-uri";
		GENERAL_NAMES_free(names);
		return -1;
	}
	memcpy(out, uri->data, (size_t)uri->length);
	out[uri->length] = '\0';
	GENERAL_NAMES_free(names);
	return 0;
}

/* The leaf against the configured CRLs: a current CRL from the leaf's issuer,
 * signed by it, must exist, and no CRL signed by it may list the leaf
 * (revocations are never undone: a CRL kept beside its successor must not
 * let a revoked server through, whatever their order).  *crl_until: the
 * latest nextUpdate of the current ones, when the verdict runs out.  Done here rather
 * than through the X509_STORE so that it does not depend on when libcurl
 * builds its store. */
static int
check_crls(const https_client_t *c, X509 *leaf, X509 *issuer,
    long *crl_until, const char **reason)
{
	X509_CRL *crl;
	X509_REVOKED *rev;
	EVP_PKEY *ikey = X509_get0_pubkey(issuer);
	const ASN1_TIME *next;
	const char *stale = NULL;
	long when;
	int i, found = 0, current = 0;

	*crl_until = -1;

	for (i = 0; ikey != NULL && i < sk_X509_CRL_num(c->crls); i++) {
		crl = sk_X509_CRL_value(c->crls, i);
		if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
		    X509_get_issuer_name(leaf)) != 0 ||
		    X509_CRL_verify(crl, ikey) != 1)
			continue;
		found = 1;
		rev = NULL;
		if (X509_CRL_get0_by_cert(crl, &rev, leaf) != 0) {
			ERR_clear_error();
			*reason = "revoked";
			return -1;
		}
		next = X509_CRL_get0_nextUpdate(crl);
		if (next == NULL || X509_cmp_current_time(next) <= 0)
			stale = "crl-expired";
		/* Not yet valid: no CRL, as the gateway takes it (tls_trust.c). */
		else if (X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl)) >= 0)
			stale = "crl-not-yet-valid";
		else {
			current = 1;
			/* The verdict holds while any current CRL does. */
			when = tls_trust_asn1_time(next);
			if (when > *crl_until)
				*crl_until = when;
		}
	}
	ERR_clear_error();
	if (!found) {
		*reason = "crl-missing";
		return -1;
	}
	if (!current) {
		*reason = stale;
		return -1;
	}
	return 0;
}

/* Remember on the connection (ssl) the last second at which the verdict
 * on its server holds (prereq_cb).  0, or -1 out of memory. */
static int
set_verdict_until(SSL *ssl, long until)
{
	long *u = SSL_get_ex_data(ssl, ssl_ex_index);

	if (u == NULL) {
		if ((u = malloc(sizeof(*u))) == NULL)
			return -1;
		if (SSL_set_ex_data(ssl, ssl_ex_index, u) != 1) {
			free(u);
			return -1;
		}
	}
	*u = until;
	return 0;
}

/* Identity rules for the server certificate at depth 0 (see the header). */
static int
check_server_identity(https_client_t *c, SSL *ssl, X509_STORE_CTX *sctx)
{
	STACK_OF(X509) *chain;
	X509 *leaf, *issuer;
	identity_t id;
	char why[128];
	const char *reason = NULL;
	long until = -1, when, crl_until = -1;
	int i;

	chain = X509_STORE_CTX_get0_chain(sctx);
	/* leaf, area CA, root: nothing else is a visor chain (a sub-CA under
	 * an area CA could otherwise claim another area's CA identity). */
	if (chain == NULL || sk_X509_num(chain) != 3) {
		reason = "no-issuer";
		goto fail;
	}
	leaf = sk_X509_value(chain, 0);
	issuer = sk_X509_value(chain, 1);
	/* The same rules as the gateway applies to its clients, for a
	 * server: an end entity (not a CA), serverAuth in its EKU, one
	 * well-formed URI, the area of its issuing area CA. */
	if (tls_trust_check_identity(leaf, issuer, TLS_ROLE_SERVER, &id, why,
	    sizeof(why)) < 0) {
		reason = why;
		goto fail;
	}
	if (id.kind != IDENTITY_GATEWAY) {
		reason = "not-a-gateway";
		goto fail;
	}
	if (c->expect != NULL && strcmp(c->expect, id.uri) != 0) {
		snprintf(c->verify_err, sizeof(c->verify_err),
		    "server identity %s is not the expected %s", id.uri,
		    c->expect);
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	if (c->crls != NULL && check_crls(c, leaf, issuer, &crl_until,
	    &reason) < 0) {
		X509_STORE_CTX_set_error(sctx, strcmp(reason, "revoked") == 0 ?
		    X509_V_ERR_CERT_REVOKED : X509_V_ERR_UNABLE_TO_GET_CRL);
		snprintf(c->verify_err, sizeof(c->verify_err),
		    "server certificate: %s", reason);
		return 0;
	}
	/* How long the verdict holds: until the chain's earliest notAfter,
	 * or the CRL's nextUpdate if sooner.  A kept-alive connection is not
	 * used past it (prereq_cb), as the gateway does not serve one past
	 * its client's (tls_context.c). */
	for (i = 0; i < sk_X509_num(chain); i++) {
		when = tls_trust_asn1_time(X509_get0_notAfter(sk_X509_value(chain,
		    i)));
		if (when < 0) {
			until = -1;	/* unknown: not kept */
			break;
		}
		if (i == 0 || when < until)
			until = when;
	}
	if (c->crls != NULL && until >= 0 && crl_until < until)
		until = crl_until;
	if (set_verdict_until(ssl, until) < 0) {
		reason = "out of memory";
		goto fail;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", id.uri);
	return 1;
fail:
	snprintf(c->verify_err, sizeof(c->verify_err),
	    "server certificate: %s", reason ? reason : "verify-failed");
	X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

static int
verify_cb(int preverify_ok, X509_STORE_CTX *sctx)
{
	SSL *ssl;
	SSL_CTX *ctx;
	https_client_t *c;

	ssl = X509_STORE_CTX_get_ex_data(sctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || (ctx = SSL_get_SSL_CTX(ssl)) == NULL)
		return 0;
	c = SSL_CTX_get_ex_data(ctx, ctx_ex_index);
	if (c == NULL)
		return 0;
	if (!preverify_ok) {
		if (c->verify_err[0] == '\0')
			snprintf(c->verify_err, sizeof(c->verify_err),
			    "server certificate: %s",
			    X509_verify_cert_error_string(
			    X509_STORE_CTX_get_error(sctx)));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(sctx) != 0)
		return 1;
	return check_server_identity(c, ssl, sctx);
}

/*
 * Called once the connection for a request is made or taken from the pool,
 * before a byte of the request is written.  The server was verified at the
 * connection's handshake, and that verdict lasts only until a certificate
 * of its chain passes its notAfter, or its CRL its nextUpdate: a kept-alive
 * connection past that point is not used (the request is stopped here and
 * run again on a new connection, whose handshake checks the server again).
 * An unknown verdict counts as one that ran out.
 */
static int
prereq_cb(void *clientp, char *primary_ip, char *local_ip, int primary_port,
    int local_port)
{
	struct xfer *x = clientp;
	struct curl_tlssessioninfo *info = NULL;
	const long *until = NULL;

	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	if (curl_easy_getinfo(x->easy, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK &&
	    info != NULL && info->backend == CURLSSLBACKEND_OPENSSL &&
	    info->internals != NULL)
		until = SSL_get_ex_data(info->internals, ssl_ex_index);
	if (until != NULL && *until >= 0 && (long)time(NULL) <= *until)
		return CURL_PREREQFUNC_OK;
	x->stale = 1;
	return CURL_PREREQFUNC_ABORT;
}

/* Is a fatal alert received one by which the server refuses our
 * certificate at the handshake?  A gateway sends these for a client
 * certificate that fails its checks (docs/PKI.md), before it reads any
 * request. */
static int
alert_refuses_cert(int desc)
{
	switch (desc) {
	case SSL3_AD_BAD_CERTIFICATE:
	case SSL3_AD_UNSUPPORTED_CERTIFICATE:
	case SSL3_AD_CERTIFICATE_REVOKED:
	case SSL3_AD_CERTIFICATE_EXPIRED:
	case SSL3_AD_CERTIFICATE_UNKNOWN:
	case TLS1_AD_UNKNOWN_CA:
	case TLS1_AD_ACCESS_DENIED:
	case TLS13_AD_CERTIFICATE_REQUIRED:
		return 1;
	default:
		return 0;
	}
}

/* Keep the alert by which the server refuses our certificate.  With TLS
 * 1.3 the client's handshake ends before the server has checked its
 * certificate, so the refusal arrives as the answer to the first request;
 * libcurl's own message for it is whatever it noted first on the way
 * (a getpeername() error on a connection already closed, or OpenSSL's
 * text), which does not say that the certificate was refused. */
static void
client_info_cb(const SSL *ssl, int where, int ret)
{
	SSL_CTX *ctx;
	https_client_t *c;

	/* an alert received (SSL_CB_READ_ALERT is two bits: ALERT|READ;
	 * one we send, refusing the server, is ALERT|WRITE) */
	if ((where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT ||
	    SSL_alert_type_string(ret)[0] != 'F' ||
	    !alert_refuses_cert(ret & 0xff) ||
	    (ctx = SSL_get_SSL_CTX(ssl)) == NULL ||
	    (c = SSL_CTX_get_ex_data(ctx, ctx_ex_index)) == NULL)
		return;
	c->refused_alert = ret & 0xff;
}

static CURLcode
ssl_ctx_cb(CURL *curl, void *sslctx, void *userptr)
{
	SSL_CTX *ctx = sslctx;

	(void)curl;
	if (SSL_CTX_set_ex_data(ctx, ctx_ex_index, userptr) != 1)
		return CURLE_SSL_CERTPROBLEM;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
		return CURLE_SSL_CERTPROBLEM;
	/* The server's chain held to the gateway's level (tls_trust.h). */
	SSL_CTX_set_security_level(ctx, TLS_TRUST_SECURITY_LEVEL);
	/* Fail the handshake itself, before any request byte is written. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	/* No resumption: every connection is verified in full. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_info_callback(ctx, client_info_cb);
	return CURLE_OK;
}

/* --- client ---------------------------------------------------------------- */

static char *
dup_str(const char *s)
{
	size_t n;
	char *p;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	if ((p = malloc(n)) != NULL)
		memcpy(p, s, n);
	return p;
}

/* A NUL-terminated copy of len bytes in *out (its length in *outlen).
 * 0, or -1 out of memory. */
static int
dup_bytes(const char *src, size_t len, char **out, size_t *outlen)
{
	if ((*out = malloc(len + 1)) == NULL)
		return -1;
	memcpy(*out, src, len);
	(*out)[len] = '\0';
	*outlen = len;
	return 0;
}

/* Read the certificate and key into c (from opt's files, or copy opt's
 * PEM bytes) and check that they load and match.  A key file is read as
 * keys are (util/fileio.h file_read_private: no symbolic link, mode 0600
 * checked on the open file). */
static int
check_cert_key(https_client_t *c, const https_client_options_t *opt,
    char *err, size_t errlen)
{
	const char *certfile = opt->cert ? opt->cert : "certificate";
	const char *keyfile = opt->key ? opt->key : "key";
	BIO *bio = NULL;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	int rc = -1;

	if (opt->cert_pem != NULL) {
		/* The caller's bytes (a loaded generation's pair): copied, so
		 * that the pair cannot change under the client. */
		if (opt->cert_pem_len == 0 || opt->cert_pem_len > PEM_FILE_MAX ||
		    opt->key_pem_len == 0 || opt->key_pem_len > PEM_FILE_MAX ||
		    dup_bytes(opt->cert_pem, opt->cert_pem_len, &c->cert,
		    &c->cert_len) < 0 ||
		    dup_bytes(opt->key_pem, opt->key_pem_len, &c->key,
		    &c->key_len) < 0) {
			errmsg_set(err, errlen, "certificate or key: empty, "
			    "too large or out of memory");
			goto out;
		}
	} else if (file_read_all(certfile, PEM_FILE_MAX, &c->cert,
	    &c->cert_len) < 0) {
		errmsg_set(err, errlen, "%s: %s", certfile, strerror(errno));
		goto out;
	}
	if ((bio = BIO_new_mem_buf(c->cert, (int)c->cert_len)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		errmsg_set(err, errlen, "%s: not a PEM certificate", certfile);
		goto out;
	}
	BIO_free(bio);
	bio = NULL;
	if (opt->key_pem == NULL && file_read_private(keyfile, PEM_FILE_MAX,
	    &c->key, &c->key_len) < 0) {
		errmsg_set(err, errlen, "%s: %s", keyfile, errno == EPERM ?
		    "key file readable by group or others (want 0600)" :
		    strerror(errno));
		goto out;
	}
	if ((bio = BIO_new_mem_buf(c->key, (int)c->key_len)) == NULL ||
	    (k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		errmsg_set(err, errlen, "%s: not a PEM private key", keyfile);
		goto out;
	}
	if (X509_check_private_key(x, k) != 1) {
		errmsg_set(err, errlen, "%s does not match %s", keyfile, certfile);
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(k);
	X509_free(x);
	return rc;
}

static int
check_root(https_client_t *c, const https_client_options_t *opt, char *err,
    size_t errlen)
{
	const char *rootfile = opt->root != NULL ? opt->root : "root (PEM)";
	BIO *bio = NULL;
	X509 *x = NULL;
	int rc = -1;

	if (opt->root_pem != NULL) {
		if (opt->root_pem_len > PEM_FILE_MAX) {
			errmsg_set(err, errlen, "%s: too large", rootfile);
			return -1;
		}
		if (dup_bytes(opt->root_pem, opt->root_pem_len, &c->root,
		    &c->root_len) < 0) {
			errmsg_set(err, errlen, "out of memory");
			return -1;
		}
	} else if (file_read_all(rootfile, PEM_FILE_MAX, &c->root,
	    &c->root_len) < 0) {
		errmsg_set(err, errlen, "%s: %s", rootfile, strerror(errno));
		return -1;
	}
	if ((bio = BIO_new_mem_buf(c->root, (int)c->root_len)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		errmsg_set(err, errlen, "%s: not a PEM certificate", rootfile);
	else
		rc = 0;
	X509_free(x);
	BIO_free(bio);
	return rc;
}

/* Every CRL of every file: a file may hold several (one per area CA, or a
 * CA's new CRL beside its old), and one left out would refuse a good server
 * (crl-missing) or let a revoked one through.  A CRL from a CA other than
 * the server's is skipped at the handshake, as a file holding only such a
 * CRL is. */
static int
load_crls(https_client_t *c, const https_client_options_t *opt, char *err,
    size_t errlen)
{
	const char *const *files = opt->crls;
	size_t n = opt->crls != NULL ? opt->n_crls : 0;
	STACK_OF(X509_CRL) *sk;
	X509_CRL *crl;
	char why[512];
	size_t i;

	/* The CRLs as PEM bytes (all in one), or one file after another. */
	if (opt->crls_pem != NULL)
		n = 1;
	if (n == 0)
		return 0;
	if (opt->crls_pem != NULL && opt->crls_pem_len > CRL_FILE_MAX) {
		errmsg_set(err, errlen, "CRLs (PEM): too large");
		return -1;
	}
	if ((c->crls = sk_X509_CRL_new_null()) == NULL) {
		errmsg_set(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (opt->crls_pem != NULL)
			sk = tls_trust_parse_crls(opt->crls_pem,
			    opt->crls_pem_len, "CRLs (PEM)", why, sizeof(why));
		else if (files[i] == NULL) {
			errmsg_set(err, errlen, "(null): no file");
			return -1;
		} else
			sk = tls_trust_read_crls(files[i], CRL_FILE_MAX, why,
			    sizeof(why));
		if (sk == NULL) {
			errmsg_set(err, errlen, "%s", why);
			return -1;
		}
		while ((crl = sk_X509_CRL_shift(sk)) != NULL) {
			if (sk_X509_CRL_push(c->crls, crl) <= 0) {
				X509_CRL_free(crl);
				sk_X509_CRL_pop_free(sk, X509_CRL_free);
				errmsg_set(err, errlen, "out of memory");
				return -1;
			}
		}
		sk_X509_CRL_free(sk);
	}
	return 0;
}

https_client_t *
https_client_new(const https_client_options_t *opt, char *err, size_t errlen)
{
	https_client_t *c;
	identity_t id;
	char why[128];

	if (https_global_init() < 0) {
		errmsg_set(err, errlen, "libcurl initialisation failed "
		    "(libcurl must use OpenSSL)");
		return NULL;
	}
	if (opt == NULL || (opt->root == NULL) == (opt->root_pem == NULL) ||
	    (opt->cert_pem == NULL) != (opt->key_pem == NULL) ||
	    (opt->cert_pem == NULL && (opt->cert == NULL || opt->key == NULL)) ||
	    (opt->cert_pem != NULL && (opt->cert != NULL || opt->key != NULL)) ||
	    (opt->crls_pem != NULL && opt->crls != NULL && opt->n_crls > 0)) {
		errmsg_set(err, errlen, "certificate, key and root are required "
		    "(the pair, the root and the CRLs as files or as PEM bytes, "
		    "not both)");
		return NULL;
	}
	if (opt->expect_identity != NULL &&
	    (identity_parse(opt->expect_identity,
	    strlen(opt->expect_identity), &id, why, sizeof(why)) < 0 ||
	    id.kind != IDENTITY_GATEWAY)) {
		errmsg_set(err, errlen, "expected identity %s is not a gateway "
		    "identity", opt->expect_identity);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		errmsg_set(err, errlen, "out of memory");
		return NULL;
	}
	if (check_cert_key(c, opt, err, errlen) < 0 ||
	    check_root(c, opt, err, errlen) < 0)
		goto fail;
	c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms :
	    HTTPS_TIMEOUT_DEFAULT_MS;
	c->connect_timeout_ms = opt->connect_timeout_ms > 0 ?
	    opt->connect_timeout_ms : c->timeout_ms;
	c->count_sends = opt->count_sends != 0;
	c->max_conn_age_s = opt->max_conn_age_s > 0 ? opt->max_conn_age_s :
	    HTTPS_CONN_MAX_AGE_DEFAULT_S;
	c->max_response = opt->max_response > 0 ? opt->max_response :
	    HTTPS_MAX_RESPONSE_DEFAULT;
	if (opt->expect_identity != NULL &&
	    (c->expect = dup_str(opt->expect_identity)) == NULL) {
		errmsg_set(err, errlen, "out of memory");
		goto fail;
	}
	if (load_crls(c, opt, err, errlen) < 0)
		goto fail;
	if ((c->easy = curl_easy_init()) == NULL) {
		errmsg_set(err, errlen, "curl_easy_init failed");
		goto fail;
	}
	return c;
fail:
	https_client_free(c);
	return NULL;
}

void
https_client_free(https_client_t *c)
{
	if (c == NULL)
		return;
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	sk_X509_CRL_pop_free(c->crls, X509_CRL_free);
	free(c->cert);
	if (c->key != NULL) {
		OPENSSL_cleanse(c->key, c->key_len);
		free(c->key);
	}
	free(c->root);
	free(c->expect);
	free(c);
}

const char *
https_client_peer_identity(const https_client_t *c)
{
	return c->peer;
}

void
https_response_free(https_response_t *resp)
{
	if (resp == NULL)
		return;
	buf_free(&resp->body);
	buf_free(&resp->headers);
}

static void
response_init(https_response_t *resp, size_t max)
{
	memset(resp, 0, sizeof(*resp));
	/* write_cb enforces the bound; the buffer's own max is a backstop. */
	buf_init(&resp->body, max);
	buf_init(&resp->headers, HTTPS_MAX_HEADERS);
}

int
https_response_header(const https_response_t *resp, const char *name,
    char *out, size_t outlen)
{
	const char *p, *end, *eol, *v;
	size_t nlen, vlen;

	if (outlen > 0)
		out[0] = '\0';
	if (resp == NULL || resp->headers.data == NULL || name == NULL)
		return -1;
	nlen = strlen(name);
	p = resp->headers.data;
	end = p + resp->headers.len;
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0) {
			v = p + nlen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			vlen = (size_t)(eol - v);
			while (vlen > 0 && (v[vlen - 1] == '\r' ||
			    v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (outlen > 0) {
				if (vlen >= outlen)
					vlen = outlen - 1;
				memcpy(out, v, vlen);
				out[vlen] = '\0';
			}
			return 0;
		}
		p = eol + 1;
	}
	return -1;
}

/* Keep the header lines of the last response only (a 100 or a redirect
 * before it would otherwise mix in): a status line starts a new block. */
static size_t
header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nitems;

	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		buf_reset(&x->resp->headers);
		return n;
	}
	if (n == 2 && ptr[0] == '\r' && ptr[1] == '\n')
		return n;
	if (buf_append(&x->resp->headers, ptr, n) < 0) {
		x->too_large = 1;
		return 0;
	}
	return n;
}

int
https_cert_uri(const char *certfile, char *out, size_t outlen, char *err,
    size_t errlen)
{
	char *pem = NULL;
	size_t len;
	BIO *bio = NULL;
	X509 *x = NULL;
	const char *reason = NULL;
	int rc = -1;

	if (file_read_all(certfile, PEM_FILE_MAX, &pem, &len) < 0) {
		errmsg_set(err, errlen, "%s: %s", certfile, strerror(errno));
		return -1;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		errmsg_set(err, errlen, "%s: not a PEM certificate", certfile);
	else if (cert_single_uri(x, out, outlen, &reason) < 0)
		errmsg_set(err, errlen, "%s: %s", certfile, reason);
	else
		rc = 0;
	X509_free(x);
	BIO_free(bio);
	free(pem);
	return rc;
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nmemb;

	if (n == 0)
		return 0;
	if (x->resp->body.len + n > x->max ||
	    buf_append(&x->resp->body, ptr, n) < 0) {
		x->too_large = 1;
		return 0;	/* makes libcurl stop with CURLE_WRITE_ERROR */
	}
	return n;
}

/* A method is an HTTP token of capitals. */
static int
method_ok(const char *m)
{
	size_t i;

	if (m == NULL || m[0] == '\0' || strlen(m) > 16)
		return 0;
	for (i = 0; m[i] != '\0'; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return 0;
	return 1;
}

/* A header line "Name: value" with no CR, LF or NUL (no injection). */
static int
header_ok(const char *h)
{
	const char *colon;
	size_t i;

	if (h == NULL || (colon = strchr(h, ':')) == NULL || colon == h)
		return 0;
	for (i = 0; h[i] != '\0'; i++)
		if (h[i] == '\r' || h[i] == '\n')
			return 0;
	for (i = 0; h + i < colon; i++)
		if (!isgraph((unsigned char)h[i]))
			return 0;
	return 1;
}

/* Bodies above this ask first (Expect: 100-continue): a server that will
 * refuse the size answers before the body is sent, instead of closing the
 * connection on a client still writing (which then sees a broken pipe,
 * not the 413).  Smaller bodies go at once: a round trip costs more than
 * sending them. */
#define EXPECT_CONTINUE_MIN 65536

/* Build the header list: the caller's, a default Content-Type for bodies,
 * and Expect (100-continue only for large bodies). */
static int
build_headers(const https_request_t *req, struct curl_slist **out)
{
	struct curl_slist *l = NULL, *t;
	size_t i;
	int have_ct = 0;

	*out = NULL;
	if (req->headers != NULL) {
		for (i = 0; req->headers[i] != NULL; i++) {
			if (!header_ok(req->headers[i]))
				goto fail;
			if (strncasecmp(req->headers[i], "Content-Type:", 13) == 0)
				have_ct = 1;
			if ((t = curl_slist_append(l, req->headers[i])) == NULL)
				goto fail;
			l = t;
		}
	}
	if (req->body != NULL && !have_ct) {
		if ((t = curl_slist_append(l, "Content-Type: application/json")) == NULL)
			goto fail;
		l = t;
	}
	if ((t = curl_slist_append(l, req->body != NULL &&
	    req->len > EXPECT_CONTINUE_MIN ? "Expect: 100-continue" :
	    "Expect:")) == NULL)
		goto fail;
	*out = t;
	return 0;
fail:
	curl_slist_free_all(l);
	return -1;
}

/* Count the times the request goes out.  libcurl reports the request's
 * header block (HEADER_OUT) once a write of it has succeeded, the request
 * line first; and it sends the request again, on a fresh connection, when
 * a reused one closes with no answer, which the caller would not otherwise
 * learn: the server may have acted on the first. */
static int
debug_cb(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
	struct xfer *x = arg;
	size_t n;

	(void)e;
	if (type != CURLINFO_HEADER_OUT || x == NULL || x->method == NULL)
		return 0;
	n = strlen(x->method);
	if (size > n + 1 && memcmp(data, x->method, n) == 0 &&
	    data[n] == ' ' && data[n + 1] == '/')
		x->sends++;
	return 0;
}

#define SETOPT(e, o, v) do { if (curl_easy_setopt((e), (o), (v)) != CURLE_OK) goto fail; } while (0)

/* Set every option of one transfer on a fresh or reset handle. */
static int
setup_easy(https_client_t *c, CURL *e, const https_request_t *req,
    struct curl_slist *hdrs, struct xfer *x, char *errbuf)
{
	struct curl_blob blob;

	SETOPT(e, CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(e, CURLOPT_URL, req->url);
	SETOPT(e, CURLOPT_PROTOCOLS_STR, "https");
	SETOPT(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(e, CURLOPT_NOSIGNAL, 1L);
	SETOPT(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SETOPT(e, CURLOPT_TCP_NODELAY, 1L);
	SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	/* The server's certificate and CRL status are checked at the
	 * handshake; prereq_cb keeps a connection from being used past that
	 * verdict's end.  Besides, no connection lives longer than this. */
	SETOPT(e, CURLOPT_MAXLIFETIME_CONN, c->max_conn_age_s);
	SETOPT(e, CURLOPT_SSLVERSION,
	    (long)(CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_DEFAULT));
	/* The bytes checked when the client was made (see the struct); curl
	 * copies the blob descriptions, not the data (NOCOPY), and the
	 * client outlives every handle set up from it. */
	blob.flags = CURL_BLOB_NOCOPY;
	blob.data = c->cert;
	blob.len = c->cert_len;
	SETOPT(e, CURLOPT_SSLCERTTYPE, "PEM");
	SETOPT(e, CURLOPT_SSLCERT_BLOB, &blob);
	blob.data = c->key;
	blob.len = c->key_len;
	SETOPT(e, CURLOPT_SSLKEYTYPE, "PEM");
	SETOPT(e, CURLOPT_SSLKEY_BLOB, &blob);
	blob.data = c->root;
	blob.len = c->root_len;
	SETOPT(e, CURLOPT_CAINFO_BLOB, &blob);
	SETOPT(e, CURLOPT_CAPATH, (char *)NULL);	/* no system CAs */
	SETOPT(e, CURLOPT_SSL_VERIFYPEER, 1L);
	/* The server is identified by its URI SAN (checked in verify_cb), not
	 * by host name: see the header. */
	SETOPT(e, CURLOPT_SSL_VERIFYHOST, 0L);
	SETOPT(e, CURLOPT_SSL_OPTIONS, (long)CURLSSLOPT_NO_PARTIALCHAIN);
	SETOPT(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	SETOPT(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	SETOPT(e, CURLOPT_SSL_CTX_DATA, c);
	/* A pooled connection is not used past the verdict on its server. */
	x->easy = e;
	x->stale = 0;
	SETOPT(e, CURLOPT_PREREQFUNCTION, prereq_cb);
	SETOPT(e, CURLOPT_PREREQDATA, x);
	SETOPT(e, CURLOPT_FRESH_CONNECT, x->fresh ? 1L : 0L);
	SETOPT(e, CURLOPT_HTTPHEADER, hdrs);
	SETOPT(e, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(e, CURLOPT_WRITEDATA, x);
	SETOPT(e, CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(e, CURLOPT_HEADERDATA, x);
	/* debug_cb sees what goes out; verbose output goes only to it.
	 * Only for a client that asked (visorctl push): libcurl formats
	 * every verbose line, and a gateway's deliveries need no count. */
	x->method = req->method;
	x->sends = c->count_sends ? 0 : -1;
	if (c->count_sends) {
		SETOPT(e, CURLOPT_DEBUGFUNCTION, debug_cb);
		SETOPT(e, CURLOPT_DEBUGDATA, x);
		SETOPT(e, CURLOPT_VERBOSE, 1L);
	}
	SETOPT(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max);
	if (req->body != NULL || strcmp(req->method, "PUT") == 0 ||
	    strcmp(req->method, "PATCH") == 0 ||
	    strcmp(req->method, "POST") == 0) {
		SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
		SETOPT(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		if (strcmp(req->method, "POST") != 0)
			SETOPT(e, CURLOPT_CUSTOMREQUEST, req->method);
	} else {
		SETOPT(e, CURLOPT_HTTPGET, 1L);
		if (strcmp(req->method, "GET") != 0)
			SETOPT(e, CURLOPT_CUSTOMREQUEST, req->method);
	}
	return 0;
fail:
	return -1;
}

/* After a transfer: status and content type on success, err otherwise. */
static int
finish_transfer(https_client_t *c, CURL *e, CURLcode cr, struct xfer *x,
    const char *errbuf, char *err, size_t errlen)
{
	char *ct = NULL;
	long status = 0;

	x->retryable = 0;
	if (x->too_large || cr == CURLE_FILESIZE_EXCEEDED) {
		errmsg_set(err, errlen, "response larger than %zu bytes", x->max);
		return -1;
	}
	if (cr == CURLE_ABORTED_BY_CALLBACK && x->stale) {
		/* Not retryable here: the caller runs it again once on a
		 * new connection (x->fresh); on a new one it means the
		 * server's certificate or CRL ran out since the handshake. */
		errmsg_set(err, errlen, "server certificate: its chain or CRL "
		    "ran out on the connection (notAfter or nextUpdate passed)");
		return -1;
	}
	if (cr != CURLE_OK && c->refused_alert != 0) {
		/* Nor will a certificate the server refused. */
		errmsg_set(err, errlen, "the gateway refused this client "
		    "certificate at the TLS handshake (alert: %s): it is "
		    "revoked, expired, or not of an area CA the gateway "
		    "trusts", SSL_alert_desc_string_long(c->refused_alert));
		return -1;
	}
	if (cr != CURLE_OK) {
		/* Network trouble may pass; a failed verification will not. */
		x->retryable = cr == CURLE_COULDNT_CONNECT ||
		    cr == CURLE_OPERATION_TIMEDOUT || cr == CURLE_SEND_ERROR ||
		    cr == CURLE_RECV_ERROR || cr == CURLE_GOT_NOTHING ||
		    cr == CURLE_PARTIAL_FILE || cr == CURLE_COULDNT_RESOLVE_HOST ||
		    (cr == CURLE_SSL_CONNECT_ERROR && c->verify_err[0] == '\0');
		if (c->verify_err[0] != '\0' &&
		    (cr == CURLE_PEER_FAILED_VERIFICATION ||
		    cr == CURLE_SSL_CONNECT_ERROR ||
		    cr == CURLE_SSL_CACERT_BADFILE))
			errmsg_set(err, errlen, "%s", c->verify_err);
		else if (strncmp(errbuf, "getpeername()", 13) == 0)
			/* libcurl's note on a connection the server reset,
			 * not the failure: a gateway that refuses the client
			 * certificate closes it so, and when the reset
			 * overtakes its alert nothing else says why. */
			errmsg_set(err, errlen, "%s: the gateway closed the "
			    "connection without an answer (as it does when "
			    "it refuses this client certificate at the TLS "
			    "handshake: revoked, expired, or not of an area "
			    "CA it trusts; its log says event=handshake-refused "
			    "and why)", curl_easy_strerror(cr));
		else
			errmsg_set(err, errlen, "%s", errbuf[0] ? errbuf :
			    curl_easy_strerror(cr));
		return -1;
	}
	if (curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
	    status < 100 || status > 599) {
		errmsg_set(err, errlen, "no valid HTTP status");
		return -1;
	}
	x->resp->status = status;
	if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK &&
	    ct != NULL)
		snprintf(x->resp->content_type, sizeof(x->resp->content_type),
		    "%s", ct);
	return 0;
}

int
https_client_request(https_client_t *c, const https_request_t *req,
    https_response_t *resp, char *err, size_t errlen)
{
	struct curl_slist *hdrs = NULL;
	struct xfer x;
	char errbuf[CURL_ERROR_SIZE];
	CURLcode cr;
	int rc = -1;

	response_init(resp, c->max_response + 1);
	if (req == NULL || req->url == NULL || !method_ok(req->method)) {
		errmsg_set(err, errlen, "bad request method or URL");
		return -1;
	}
	if (build_headers(req, &hdrs) < 0) {
		errmsg_set(err, errlen, "bad header (want \"Name: value\", no CR/LF)");
		return -1;
	}
	memset(&x, 0, sizeof(x));
	x.resp = resp;
	x.max = c->max_response;
	for (;;) {
		x.too_large = 0;
		errbuf[0] = '\0';
		c->verify_err[0] = '\0';
		c->refused_alert = 0;
		/* reset keeps the live connections: keep-alive across
		 * requests */
		curl_easy_reset(c->easy);
		if (setup_easy(c, c->easy, req, hdrs, &x, errbuf) < 0) {
			errmsg_set(err, errlen, "libcurl refused an option");
			goto out;
		}
		cr = curl_easy_perform(c->easy);
		/* A kept-alive connection past its server's verdict: once
		 * more on a new one (nothing of the request was sent). */
		if (cr == CURLE_ABORTED_BY_CALLBACK && x.stale && !x.fresh) {
			x.fresh = 1;
			buf_reset(&resp->body);
			buf_reset(&resp->headers);
			continue;
		}
		break;
	}
	rc = finish_transfer(c, c->easy, cr, &x, errbuf, err, errlen);
	if (rc < 0)
		resp->status = 0;
out:
	/* the handle must not keep pointers to this call's stack */
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, (char *)NULL);
	curl_easy_setopt(c->easy, CURLOPT_VERBOSE, 0L);
	curl_easy_setopt(c->easy, CURLOPT_DEBUGDATA, (void *)NULL);
	curl_slist_free_all(hdrs);
	return rc;
}

int
https_client_call(https_client_t *c, const char *method, const char *url,
    const char *const *headers, const void *body, size_t len,
    https_response_t *resp, char *err, size_t errlen)
{
	https_request_t req;

	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.len = len;
	return https_client_request(c, &req, resp, err, errlen);
}

/* --- batch (multi interface) ---------------------------------------------- */

struct batch_item {
	struct batch_item *next;
	char *method;
	char *url;
	void *body;			/* NULL when the request had none */
	size_t len;
	struct curl_slist *hdrs;
	long long due_ms;
	https_done_fn done;
	void *arg;
	CURL *easy;			/* while in flight */
	https_response_t resp;
	struct xfer x;
	char errbuf[CURL_ERROR_SIZE];
};

struct https_batch {
	https_client_t *c;
	CURLM *multi;
	size_t max_in_flight;
	size_t in_flight;
	size_t queued;
	struct batch_item *queue;	/* not started, in order of adding */
	struct batch_item *running;
	const atomic_int *stop;		/* https_batch_stop_when */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
item_free(struct batch_item *it)
{
	if (it == NULL)
		return;
	if (it->easy != NULL)
		curl_easy_cleanup(it->easy);
	curl_slist_free_all(it->hdrs);
	free(it->method);
	free(it->url);
	free(it->body);
	https_response_free(&it->resp);
	free(it);
}

https_batch_t *
https_batch_new(https_client_t *c, size_t max_in_flight, char *err,
    size_t errlen)
{
	https_batch_t *b;

	if (c == NULL || max_in_flight < 1 || max_in_flight > 256) {
		errmsg_set(err, errlen, "concurrency must be 1..256");
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		errmsg_set(err, errlen, "out of memory");
		return NULL;
	}
	b->c = c;
	b->max_in_flight = max_in_flight;
	if ((b->multi = curl_multi_init()) == NULL ||
	    curl_multi_setopt(b->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)max_in_flight) != CURLM_OK ||
	    curl_multi_setopt(b->multi, CURLMOPT_MAXCONNECTS,
	    (long)max_in_flight) != CURLM_OK ||
	    curl_multi_setopt(b->multi, CURLMOPT_PIPELINING,
	    (long)CURLPIPE_NOTHING) != CURLM_OK) {
		errmsg_set(err, errlen, "curl_multi_init failed");
		https_batch_free(b);
		return NULL;
	}
	return b;
}

void
https_batch_free(https_batch_t *b)
{
	struct batch_item *it, *next;

	if (b == NULL)
		return;
	for (it = b->running; it != NULL; it = next) {
		next = it->next;
		if (b->multi != NULL && it->easy != NULL)
			curl_multi_remove_handle(b->multi, it->easy);
		item_free(it);
	}
	for (it = b->queue; it != NULL; it = next) {
		next = it->next;
		item_free(it);
	}
	if (b->multi != NULL)
		curl_multi_cleanup(b->multi);
	free(b);
}

size_t
https_batch_pending(const https_batch_t *b)
{
	return b->queued + b->in_flight;
}

int
https_batch_add(https_batch_t *b, const https_request_t *req, long delay_ms,
    https_done_fn done, void *arg)
{
	struct batch_item *it, **tail;
	https_request_t r;

	if (req == NULL || req->url == NULL || !method_ok(req->method) ||
	    done == NULL)
		return -1;
	if ((it = calloc(1, sizeof(*it))) == NULL)
		return -1;
	response_init(&it->resp, b->c->max_response + 1);
	if ((it->method = dup_str(req->method)) == NULL ||
	    (it->url = dup_str(req->url)) == NULL)
		goto fail;
	if (req->body != NULL) {
		if ((it->body = malloc(req->len ? req->len : 1)) == NULL)
			goto fail;
		memcpy(it->body, req->body, req->len);
		it->len = req->len;
	}
	r = *req;
	r.body = it->body;
	if (build_headers(&r, &it->hdrs) < 0)
		goto fail;
	it->due_ms = now_ms() + (delay_ms > 0 ? delay_ms : 0);
	it->done = done;
	it->arg = arg;
	for (tail = &b->queue; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = it;
	b->queued++;
	return 0;
fail:
	item_free(it);
	return -1;
}

static void
complete(https_batch_t *b, struct batch_item *it, int rc, const char *why)
{
	https_result_t res;

	res.rc = rc;
	res.retryable = rc < 0 && it->x.retryable;
	res.sends = it->x.sends;
	res.stopped = 0;
	res.resp = &it->resp;
	res.err = rc == 0 ? "" : why;
	(void)b;
	it->done(it->arg, &res);
	item_free(it);
}

/* Start due queued items while there is room.  Returns the delay in ms
 * until the next not-yet-due item (-1 if none). */
static long
start_due(https_batch_t *b)
{
	struct batch_item **pp, *it;
	https_request_t r;
	long long now = now_ms();
	long wait = -1;

	pp = &b->queue;
	while (*pp != NULL && b->in_flight < b->max_in_flight) {
		it = *pp;
		if (it->due_ms > now) {
			if (wait < 0 || it->due_ms - now < wait)
				wait = (long)(it->due_ms - now);
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		b->queued--;
		r.method = it->method;
		r.url = it->url;
		r.headers = NULL;
		r.body = it->body;
		r.len = it->len;
		it->x.resp = &it->resp;
		it->x.max = b->c->max_response;
		it->x.too_large = 0;
		it->errbuf[0] = '\0';
		b->c->verify_err[0] = '\0';
		b->c->refused_alert = 0;
		if ((it->easy = curl_easy_init()) == NULL ||
		    setup_easy(b->c, it->easy, &r, it->hdrs, &it->x,
		    it->errbuf) < 0 ||
		    curl_easy_setopt(it->easy, CURLOPT_PRIVATE, it) != CURLE_OK ||
		    curl_multi_add_handle(b->multi, it->easy) != CURLM_OK) {
			complete(b, it, -1, "could not start the request");
			continue;
		}
		it->next = b->running;
		b->running = it;
		b->in_flight++;
	}
	return wait;
}

static void
unlink_running(https_batch_t *b, struct batch_item *it)
{
	struct batch_item **pp;

	for (pp = &b->running; *pp != NULL; pp = &(*pp)->next)
		if (*pp == it) {
			*pp = it->next;
			it->next = NULL;
			b->in_flight--;
			return;
		}
}

/* Complete the requests that finished.  Returns how many went back to
 * the queue to run again at once. */
static int
reap(https_batch_t *b)
{
	int again = 0;
	CURLMsg *msg;
	int left;
	struct batch_item *it;
	char *priv;
	char why[320];
	int rc;

	while ((msg = curl_multi_info_read(b->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		priv = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		it = (struct batch_item *)(void *)priv;
		if (it == NULL)
			continue;
		why[0] = '\0';
		if (msg->data.result == CURLE_ABORTED_BY_CALLBACK &&
		    it->x.stale && !it->x.fresh) {
			/* A kept-alive connection past its server's verdict
			 * (prereq_cb): nothing was sent; the request goes
			 * again at once, on a new connection. */
			curl_multi_remove_handle(b->multi, it->easy);
			curl_easy_cleanup(it->easy);
			it->easy = NULL;
			unlink_running(b, it);
			buf_reset(&it->resp.body);
			buf_reset(&it->resp.headers);
			it->x.fresh = 1;
			it->due_ms = now_ms();
			it->next = b->queue;
			b->queue = it;
			b->queued++;
			again++;
			continue;
		}
		rc = finish_transfer(b->c, it->easy, msg->data.result, &it->x,
		    it->errbuf, why, sizeof(why));
		if (rc < 0)
			it->resp.status = 0;
		curl_multi_remove_handle(b->multi, it->easy);
		unlink_running(b, it);
		complete(b, it, rc, why);
	}
	return again;
}

/* Complete every request in flight or queued with rc -1: the multi
 * interface failed (why), or the batch was stopped. */
static void
complete_all(https_batch_t *b, const char *why, int stopped)
{
	struct batch_item *it;
	https_result_t res;

	for (;;) {
		if ((it = b->running) != NULL) {
			curl_multi_remove_handle(b->multi, it->easy);
			unlink_running(b, it);
		} else if ((it = b->queue) != NULL) {
			b->queue = it->next;
			b->queued--;
		} else {
			return;
		}
		res.rc = -1;
		res.retryable = it->x.retryable;
		res.sends = it->x.sends;
		res.stopped = stopped;
		res.resp = &it->resp;
		res.err = why;
		it->done(it->arg, &res);
		item_free(it);
	}
}

void
https_batch_stop_when(https_batch_t *b, const atomic_int *stop)
{
	b->stop = stop;
}

int
https_batch_run(https_batch_t *b)
{
	int still, numfds;
	long wait;
	CURLMcode mc;

	for (;;) {
		if (b->stop != NULL && atomic_load(b->stop)) {
			complete_all(b, "stopped", 1);
			return 1;
		}
		wait = start_due(b);
		if (b->in_flight == 0 && b->queued == 0)
			return 0;
		mc = curl_multi_perform(b->multi, &still);
		if (mc != CURLM_OK)
			goto fail;
		if (reap(b) > 0)
			continue;
		if (b->in_flight == 0 && b->queued == 0)
			return 0;
		if (b->in_flight == 0 && wait < 0)
			continue;	/* items became due meanwhile */
		if (wait < 0 || wait > 1000)
			wait = 1000;
		mc = curl_multi_poll(b->multi, NULL, 0, (int)wait, &numfds);
		if (mc != CURLM_OK)
			goto fail;
	}
fail:
	complete_all(b, curl_multi_strerror(mc), 0);
	return -1;
}

/* --- quickstart paths ------------------------------------------------------- */

int
https_default_paths(const char *cert, char *key, size_t keylen, char *root,
    size_t rootlen)
{
	size_t n;
	const char *slash;
	int w;

	if (cert == NULL || (n = strlen(cert)) < 5 ||
	    strcmp(cert + n - 4, ".crt") != 0)
		return -1;
	if (key != NULL) {
		w = snprintf(key, keylen, "%.*s.key", (int)(n - 4), cert);
		if (w < 0 || (size_t)w >= keylen)
			return -1;
	}
	if (root != NULL) {
		slash = strrchr(cert, '/');
		if (slash == NULL)
			w = snprintf(root, rootlen, "../root.crt");
		else
			w = snprintf(root, rootlen, "%.*s/../root.crt",
			    (int)(slash - cert), cert);
		if (w < 0 || (size_t)w >= rootlen)
			return -1;
	}
	return 0;
}

int
https_beside_cert(const char *cert, const char *name, char *out,
    size_t outlen)
{
	const char *slash = strrchr(cert, '/');
	int w;

	if (slash == NULL)
		w = snprintf(out, outlen, "%s", name);
	else
		w = snprintf(out, outlen, "%.*s/%s", (int)(slash - cert), cert,
		    name);
	return w < 0 || (size_t)w >= outlen ? -1 : 0;
}
