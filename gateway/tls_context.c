#include "gateway/tls_context.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/keyfile.h"
#include "util/fileio.h"

struct tls_context {
	atomic_int refs;
	SSL_CTX *ctx;
	tls_trust_t *trust;
	tls_refused_fn refused;
	long cert_not_after;	/* time_t of the gateway certificate's notAfter */
	long crl_next_update;	/* earliest nextUpdate over the CRLs */
	tls_expiry_t expiry[TLS_EXPIRY_MAX];	/* per loaded file, for metrics */
	size_t n_expiry;
	unsigned long serial;	/* unique per context, never reused */
};

static atomic_ulong next_serial = 1;

static int conn_index = -1;
static void (*conn_free_hook)(tls_conn_t *c);
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void
conn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	tls_conn_t *c = ptr;

	(void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
	if (c == NULL)
		return;
	if (conn_free_hook != NULL)
		conn_free_hook(c);
	tls_context_unref(c->owner);
	free(c);
}

static void
make_indexes(void)
{
	conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free_cb);
}

void
tls_context_set_conn_free_hook(void (*fn)(tls_conn_t *c))
{
	conn_free_hook = fn;
}

tls_conn_t *
tls_conn_get(SSL *ssl)
{
	return SSL_get_ex_data(ssl, conn_index);
}

static void
set_reason(tls_conn_t *c, const char *reason)
{
	if (c != NULL && c->reason[0] == '\0')
		snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

/*
 * Runs for each certificate of the client's chain.  OpenSSL's own checks
 * (chain, validity, CRL) come in as preverify_ok; at the leaf we add the
 * visor identity rules.  Any failure ends the handshake.
 */
static int
verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	tls_conn_t *c = ssl ? tls_conn_get(ssl) : NULL;
	STACK_OF(X509) *chain;
	X509 *leaf, *issuer;
	char reason[48];

	if (c == NULL)
		return 0;
	/* The presented leaf's fingerprint goes into the refusal's log line
	 * and auth-fail entry too: it says which certificate was tried. */
	if (c->cert_sha256[0] == '\0' &&
	    (leaf = X509_STORE_CTX_get0_cert(xs)) != NULL)
		tls_trust_cert_sha256(leaf, c->cert_sha256);
	if (!preverify_ok) {
		set_reason(c, tls_trust_reason(X509_STORE_CTX_get_error(xs)));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) != 0)
		return 1;
	chain = X509_STORE_CTX_get0_chain(xs);
	/* leaf, area CA, root, as tls_trust_verify requires: a longer chain
	 * would let a sub-CA under one area's CA (one issued without a path
	 * length limit) claim another area's CA identity. */
	if (chain == NULL || sk_X509_num(chain) != 3) {
		set_reason(c, "unknown-ca");
		return 0;
	}
	if (c->owner != NULL && tls_trust_chain_revoked(c->owner->trust, chain)) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REVOKED);
		set_reason(c, "revoked");
		return 0;
	}
	leaf = sk_X509_value(chain, 0);
	issuer = sk_X509_value(chain, 1);
	if (tls_trust_check_identity(leaf, issuer, TLS_ROLE_CLIENT, &c->identity,
	    reason, sizeof(reason)) < 0) {
		set_reason(c, reason);
		return 0;
	}
	tls_trust_cert_sha256(leaf, c->cert_sha256);
	/* The verdict lasts until the chain or the leaf's CRL runs out;
	 * tls_context_recheck takes it again after that. */
	c->valid_until = c->owner != NULL ?
	    tls_trust_chain_until(c->owner->trust, chain) : -1;
	c->verified = 1;
	return 1;
}

static void
peer_addr_of(SSL *ssl, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	int fd = SSL_get_fd(ssl);

	out[0] = '\0';
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(s6->sin6_port));
	}
}

/* Map a fatal alert we send to a reason when the verify callback gave none. */
static const char *
alert_reason(int value)
{
	switch (value & 0xff) {
	case SSL3_AD_HANDSHAKE_FAILURE: return "handshake-failure";
	case TLS1_AD_PROTOCOL_VERSION: return "protocol-version";
	case TLS13_AD_CERTIFICATE_REQUIRED: return "no-certificate";
	case SSL3_AD_BAD_CERTIFICATE: return "bad-certificate";
	case SSL3_AD_CERTIFICATE_EXPIRED: return "expired";
	case SSL3_AD_CERTIFICATE_REVOKED: return "revoked";
	case TLS1_AD_UNKNOWN_CA: return "unknown-ca";
	case TLS1_AD_DECODE_ERROR: return "decode-error";
	case TLS1_AD_NO_RENEGOTIATION: return "renegotiation";
	default: return "handshake-error";
	}
}

/* Report c's refusal to the owner, once. */
static void
report_refused(tls_conn_t *c, SSL *ssl, const char *reason)
{
	set_reason(c, reason);
	peer_addr_of(ssl, c->peer_addr, sizeof(c->peer_addr));
	c->verified = 2;	/* reported */
	/* Through the context the connection was accepted with, which it
	 * keeps alive: a reload since must not lose the refusal. */
	if (c->owner != NULL && c->owner->refused != NULL)
		c->owner->refused(c->reason, c->peer_addr, c->cert_sha256);
}

/* Log each refused handshake once, with the best reason known. */
static void
info_cb(const SSL *cssl, int where, int ret)
{
	SSL *ssl = (SSL *)cssl;
	tls_conn_t *c;
	unsigned long e;

	if ((where & SSL_CB_HANDSHAKE_DONE) && (c = tls_conn_get(ssl)) != NULL) {
		c->handshake_done = 1;
		return;
	}
	/* Plain HTTP (or a proxy's CONNECT) on the TLS port fails the
	 * handshake without an alert, so it would pass unseen below: a
	 * client configured with http:// saw an empty reply and the log said
	 * nothing. */
	if ((where & SSL_CB_EXIT) && ret <= 0) {
		e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    (ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST ||
		    ERR_GET_REASON(e) == SSL_R_HTTPS_PROXY_REQUEST) &&
		    (c = tls_conn_get(ssl)) != NULL && c->verified != 2)
			report_refused(c, ssl, "plain-http");
		return;
	}
	if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_WRITE))
		return;
	if (SSL_alert_type_string(ret)[0] != 'F')
		return;
	if ((c = tls_conn_get(ssl)) == NULL || c->verified == 2)
		return;
	/* A fatal alert after a good handshake is not a refusal.  Asking
	 * SSL_is_init_finished is not enough: OpenSSL 3 raises a fatal
	 * decode_error on a peer that closes without close_notify, and the
	 * connection is back "in init" by the time the alert is reported,
	 * so every such close was logged and audited as a refused
	 * handshake. */
	if (c->verified && (c->handshake_done || SSL_is_init_finished(ssl)))
		return;
	/* Not a byte received: a port check or a connect scan, which offered
	 * no certificate and tried no handshake (OpenSSL raises decode_error
	 * at the EOF).  The owner counts it but does not audit it. */
	if (SSL_get_rbio(ssl) != NULL && BIO_number_read(SSL_get_rbio(ssl)) == 0)
		set_reason(c, TLS_CLOSED_BEFORE_HELLO);
	report_refused(c, ssl, alert_reason(ret));
}

/* The area CA that issued our certificate goes out with it as the chain. */
static int
add_chain(SSL_CTX *ctx, X509 *leaf, const config_t *cfg, char *err,
    size_t errlen)
{
	size_t i;
	BIO *bio;
	X509 *ca;

	for (i = 0; i < cfg->n_cas; i++) {
		if ((bio = BIO_new_file(cfg->tls_cas[i], "r")) == NULL)
			continue;
		ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (ca == NULL)
			continue;
		if (X509_check_issued(ca, leaf) == X509_V_OK) {
			if (SSL_CTX_add1_chain_cert(ctx, ca) != 1) {
				X509_free(ca);
				snprintf(err, errlen, "tls.cas: cannot add chain certificate");
				return -1;
			}
			X509_free(ca);
			return 0;
		}
		X509_free(ca);
	}
	snprintf(err, errlen, "tls.cas: none of the CA certificates issued tls.cert");
	return -1;
}

static void
expiry_add(tls_context_t *t, const char *role, const char *file, long from,
    long when)
{
	tls_expiry_t *e;

	if (t->n_expiry == TLS_EXPIRY_MAX)
		return;
	e = &t->expiry[t->n_expiry++];
	snprintf(e->role, sizeof(e->role), "%s", role);
	snprintf(e->file, sizeof(e->file), "%s", file);
	e->not_before = from;
	e->not_after = when;
}

/* The first certificate in file into the table as role. */
static void
expiry_add_file(tls_context_t *t, const char *role, const char *file)
{
	BIO *bio = BIO_new_file(file, "r");
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	expiry_add(t, role, file,
	    x ? tls_trust_asn1_time(X509_get0_notBefore(x)) : -1,
	    x ? tls_trust_asn1_time(X509_get0_notAfter(x)) : -1);
	X509_free(x);
	BIO_free(bio);
}

/* Every CRL file's earliest nextUpdate into the expiry table (the file can
 * no longer be loaded once any CRL in it is stale), and its latest
 * lastUpdate (the first to be "not yet valid" to a clock set back);
 * returns the earliest nextUpdate. */
static long
crl_min_next_update(tls_context_t *tc, const config_t *cfg)
{
	STACK_OF(X509_CRL) *crls;
	long min = -1, file_min, file_from, t;
	char err[256];
	size_t i;
	int j;

	for (i = 0; i < cfg->n_crls; i++) {
		if ((crls = tls_trust_read_crls(cfg->tls_crls[i],
		    TLS_TRUST_CRL_FILE_MAX, err, sizeof(err))) == NULL)
			continue;
		file_min = file_from = -1;
		for (j = 0; j < sk_X509_CRL_num(crls); j++) {
			t = tls_trust_asn1_time(X509_CRL_get0_nextUpdate(
			    sk_X509_CRL_value(crls, j)));
			if (t >= 0 && (file_min < 0 || t < file_min))
				file_min = t;
			t = tls_trust_asn1_time(X509_CRL_get0_lastUpdate(
			    sk_X509_CRL_value(crls, j)));
			if (t > file_from)
				file_from = t;
		}
		sk_X509_CRL_pop_free(crls, X509_CRL_free);
		expiry_add(tc, "crl", cfg->tls_crls[i], file_from, file_min);
		if (file_min >= 0 && (min < 0 || file_min < min))
			min = file_min;
	}
	return min;
}

tls_context_t *
tls_context_load(const config_t *cfg, tls_refused_fn refused, char *err,
    size_t errlen)
{
	tls_context_t *t;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	BIO *bio = NULL;
	char kerr[256], reason[48];
	identity_t me;

	pthread_once(&index_once, make_indexes);
	if (conn_index < 0) {
		snprintf(err, errlen, "OpenSSL ex_data index allocation failed");
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&t->refs, 1);
	t->serial = atomic_fetch_add(&next_serial, 1);
	t->refused = refused;
	t->trust = tls_trust_load(cfg->tls_root, (const char *const *)cfg->tls_cas,
	    cfg->n_cas, (const char *const *)cfg->tls_crls, cfg->n_crls, err, errlen);
	if (t->trust == NULL)
		goto fail;
	if ((key = keyfile_load_private(cfg->tls_key, kerr, sizeof(kerr))) == NULL) {
		snprintf(err, errlen, "tls.key: %s", kerr);
		goto fail;
	}
	if ((bio = BIO_new_file(cfg->tls_cert, "r")) == NULL ||
	    (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "tls.cert: %s: not a PEM certificate", cfg->tls_cert);
		goto fail;
	}
	/* Our own certificate must pass the rules we apply to peers. */
	if (tls_trust_verify(t->trust, cert, NULL, TLS_ROLE_SERVER, &me, reason,
	    sizeof(reason)) < 0) {
		snprintf(err, errlen, "tls.cert: refused by our own trust set: %s", reason);
		goto fail;
	}
	if (me.kind != IDENTITY_GATEWAY || strcmp(me.area, cfg->area) != 0) {
		snprintf(err, errlen, "tls.cert: identity %s is not urn:visor:%s:gateway",
		    me.uri, cfg->area);
		goto fail;
	}
	/* It is also our client certificate for deliveries to peers (the
	 * outbox), which every peer checks as a client's: refused now rather
	 * than at every delivery. */
	if (cfg->n_peers > 0 && tls_trust_verify(t->trust, cert, NULL,
	    TLS_ROLE_CLIENT, &me, reason, sizeof(reason)) < 0) {
		snprintf(err, errlen, "tls.cert: peers are configured, and as the "
		    "client certificate for deliveries to them it is refused: %s",
		    reason);
		goto fail;
	}
	t->cert_not_after = tls_trust_asn1_time(X509_get0_notAfter(cert));
	expiry_add(t, "gateway", cfg->tls_cert,
	    tls_trust_asn1_time(X509_get0_notBefore(cert)), t->cert_not_after);
	expiry_add_file(t, "root", cfg->tls_root);
	{
		size_t i;

		for (i = 0; i < cfg->n_cas; i++)
			expiry_add_file(t, "ca", cfg->tls_cas[i]);
	}
	t->crl_next_update = crl_min_next_update(t, cfg);
	if ((t->ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto ossl_fail;
	if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION) != 1)
		goto ossl_fail;
	/* Before our certificate goes in, so that the level applies to it
	 * as to the client's chain. */
	SSL_CTX_set_security_level(t->ctx, TLS_TRUST_SECURITY_LEVEL);
	if (SSL_CTX_use_certificate(t->ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(t->ctx, key) != 1 ||
	    SSL_CTX_check_private_key(t->ctx) != 1) {
		snprintf(err, errlen, "tls.key: does not match tls.cert");
		goto fail;
	}
	if (add_chain(t->ctx, cert, cfg, err, errlen) < 0)
		goto fail;
	SSL_CTX_set1_verify_cert_store(t->ctx, tls_trust_store(t->trust));
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
	    verify_cb);
	/* No resumption: every connection runs the full checks, and a new CRL
	 * applies at once.  No renegotiation exists in TLS 1.3. */
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(t->ctx, 0);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_info_callback(t->ctx, info_cb);
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(bio);
	return t;
ossl_fail:
	snprintf(err, errlen, "OpenSSL: %s",
	    ERR_error_string(ERR_get_error(), NULL));
fail:
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(bio);
	if (t->ctx != NULL)
		SSL_CTX_free(t->ctx);
	tls_trust_free(t->trust);
	free(t);
	return NULL;
}

void
tls_context_ref(tls_context_t *t)
{
	atomic_fetch_add(&t->refs, 1);
}

void
tls_context_unref(tls_context_t *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	/* Every connection made from this context holds a reference (see
	 * tls_context_new_ssl): none is left. */
	SSL_CTX_free(t->ctx);
	tls_trust_free(t->trust);
	free(t);
}

SSL *
tls_context_new_ssl(tls_context_t *t)
{
	SSL *ssl = SSL_new(t->ctx);
	tls_conn_t *c;

	if (ssl == NULL)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    SSL_set_ex_data(ssl, conn_index, c) != 1) {
		free(c);
		SSL_free(ssl);
		return NULL;
	}
	c->checked_serial = t->serial;
	tls_context_ref(t);
	c->owner = t;
	return ssl;
}

int
tls_context_recheck(const tls_context_t *t, SSL *ssl, char *reason,
    size_t reasonlen)
{
	tls_conn_t *c = tls_conn_get(ssl);
	identity_t id;
	long until = -1;

	if (c == NULL || c->verified != 1) {
		snprintf(reason, reasonlen, "verify-failed");
		return -1;
	}
	if (c->checked_serial == t->serial && (long)time(NULL) <= c->valid_until)
		return 0;
	/* Accepted under an older trust set: a CRL or CA change made since
	 * must reach connections kept alive across the reload too.  Or a
	 * certificate of the chain, or the CRL, has run out since: the
	 * connection lasts no longer than the certificate does. */
	if (tls_trust_verify_until(t->trust, SSL_get0_peer_certificate(ssl),
	    SSL_get_peer_cert_chain(ssl), TLS_ROLE_CLIENT, &id, &until, reason,
	    reasonlen) < 0) {
		peer_addr_of(ssl, c->peer_addr, sizeof(c->peer_addr));
		return -1;
	}
	if (strcmp(id.uri, c->identity.uri) != 0) {
		snprintf(reason, reasonlen, "identity-changed");
		peer_addr_of(ssl, c->peer_addr, sizeof(c->peer_addr));
		return -1;
	}
	c->checked_serial = t->serial;
	c->valid_until = until;
	return 0;
}

const tls_trust_t *
tls_context_trust(const tls_context_t *t)
{
	return t->trust;
}

long
tls_context_cert_expiry_s(const tls_context_t *t)
{
	return t->cert_not_after < 0 ? -1 : t->cert_not_after - (long)time(NULL);
}

long
tls_context_crl_expiry_s(const tls_context_t *t)
{
	return t->crl_next_update < 0 ? -1 : t->crl_next_update - (long)time(NULL);
}

size_t
tls_context_expiries(const tls_context_t *t, const tls_expiry_t **out)
{
	*out = t->expiry;
	return t->n_expiry;
}
