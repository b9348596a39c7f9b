/*
 * Unit tests for client/https_client and client/loadgen (the benchmarks'
 * load generator): a tiny TLS server runs in-process (a thread per
 * connection on 127.0.0.1, port 0) with certificates minted here through
 * the OpenSSL API: a root, an area CA (urn:visor:test:ca), a server
 * certificate (urn:visor:test:gateway) and a client certificate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "adapters/gen.h"
#include "client/https_client.h"
#include "client/loadgen.h"
#include "crypto/note.h"
#include "util/fileio.h"

/* --- minting ---------------------------------------------------------------- */

typedef struct {
	X509 *cert;
	EVP_PKEY *key;
} pair_t;

static long serial_next = 1;

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for cn with an optional URI SAN, signed by issuer (NULL:
 * self-signed).  eku: "serverAuth", "clientAuth" or NULL for a CA; "" for
 * an end entity with no EKU extension; "CA:" and an EKU for a CA that also
 * carries that EKU. */
static pair_t
mint(const char *cn, const char *uri, const pair_t *issuer, const char *eku)
{
	pair_t p;
	X509_NAME *name;
	char san[256];

	p.key = EVP_EC_gen("P-256");
	assert_non_null(p.key);
	p.cert = X509_new();
	assert_non_null(p.cert);
	assert_int_equal(X509_set_version(p.cert, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(p.cert),
	    serial_next++), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(p.cert), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(p.cert), 86400));
	assert_int_equal(X509_set_pubkey(p.cert, p.key), 1);
	name = X509_get_subject_name(p.cert);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(p.cert, issuer ?
	    X509_get_subject_name(issuer->cert) : name), 1);
	if (eku == NULL || strncmp(eku, "CA:", 3) == 0) {
		add_ext(p.cert, issuer ? issuer->cert : p.cert,
		    NID_basic_constraints, "critical,CA:TRUE");
		add_ext(p.cert, issuer ? issuer->cert : p.cert, NID_key_usage,
		    eku ? "critical,keyCertSign,cRLSign,digitalSignature" :
		    "critical,keyCertSign,cRLSign");
		if (eku != NULL)
			add_ext(p.cert, issuer->cert, NID_ext_key_usage, eku + 3);
	} else {
		add_ext(p.cert, issuer->cert, NID_basic_constraints,
		    "critical,CA:FALSE");
		add_ext(p.cert, issuer->cert, NID_key_usage,
		    "critical,digitalSignature");
		if (eku[0] != '\0')
			add_ext(p.cert, issuer->cert, NID_ext_key_usage, eku);
	}
	add_ext(p.cert, issuer ? issuer->cert : p.cert,
	    NID_subject_key_identifier, "hash");
	if (uri != NULL) {
		snprintf(san, sizeof(san), "URI:%s", uri);
		add_ext(p.cert, issuer ? issuer->cert : p.cert,
		    NID_subject_alt_name, san);
	}
	assert_true(X509_sign(p.cert, issuer ? issuer->key : p.key,
	    EVP_sha256()) > 0);
	return p;
}

static void
pair_free(pair_t *p)
{
	X509_free(p->cert);
	EVP_PKEY_free(p->key);
}

/* A CRL from ca listing the given certificate (NULL: none), issued
 * last_update seconds from now (negative: in the past), valid a day. */
static X509_CRL *
mint_crl(const pair_t *ca, X509 *revoked, long last_update)
{
	X509_CRL *crl;
	X509_REVOKED *r;
	ASN1_TIME *t;

	crl = X509_CRL_new();
	assert_non_null(crl);
	assert_int_equal(X509_CRL_set_version(crl, 1), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl,
	    X509_get_subject_name(ca->cert)), 1);
	t = X509_gmtime_adj(NULL, last_update);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	t = X509_gmtime_adj(NULL, 86400);
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	if (revoked != NULL) {
		r = X509_REVOKED_new();
		assert_non_null(r);
		assert_int_equal(X509_REVOKED_set_serialNumber(r,
		    X509_get_serialNumber(revoked)), 1);
		t = X509_gmtime_adj(NULL, -30);
		assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
		ASN1_TIME_free(t);
		assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
	}
	assert_int_equal(X509_CRL_sort(crl), 1);
	assert_true(X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0);
	return crl;
}

static char tmpdir[64];

static void
tmp_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

/* Write x and, if chain is set, its issuer after it (a chain file: the
 * server knows only the root, as a gateway may). */
static void
write_cert(const char *name, X509 *x, X509 *chain)
{
	char path[128];
	FILE *f;

	tmp_path(path, sizeof(path), name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	if (chain != NULL)
		assert_int_equal(PEM_write_X509(f, chain), 1);
	fclose(f);
}

static void
write_key(const char *name, EVP_PKEY *k)
{
	char path[128];
	FILE *f;

	tmp_path(path, sizeof(path), name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
}

static void
write_crl(const char *name, X509_CRL *crl)
{
	char path[128];
	FILE *f;

	tmp_path(path, sizeof(path), name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
	fclose(f);
}

/* --- the test server ------------------------------------------------------ */

#define MAX_CONN 512

typedef struct {
	SSL_CTX *ctx;
	int fd;
	int port;
	pthread_t acceptor;
	pthread_t workers[MAX_CONN];
	int conn_fds[MAX_CONN];
	int n_workers;
	pthread_mutex_t mu;
	int handshakes;		/* completed TLS handshakes */
	int requests;		/* requests answered */
	char keys[256][96];	/* idempotency keys seen by /v1/records */
	int n_keys;
	int failed_503;		/* 503s given to records ending in 05 */
	int lost_answers;	/* writes applied and not answered (07) */
	atomic_int stop;	/* read by the acceptor thread */
} server_t;

typedef struct {
	server_t *s;
	int fd;
} conn_arg_t;

static int
read_request(SSL *ssl, char *buf, size_t cap, size_t *hdr_end, size_t *blen,
    char *method, char *path)
{
	size_t n = 0, cl = 0;
	char *end, *p;
	int r;

	for (;;) {
		buf[n] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
		if (n + 1 >= cap)
			return -1;
		r = SSL_read(ssl, buf + n, (int)(cap - 1 - n));
		if (r <= 0)
			return -1;
		n += (size_t)r;
	}
	*hdr_end = (size_t)(end - buf) + 4;
	if ((p = strcasestr(buf, "\r\nContent-Length:")) != NULL && p < end)
		cl = strtoul(p + 17, NULL, 10);
	while (n < *hdr_end + cl) {
		if (n + 1 >= cap)
			return -1;
		r = SSL_read(ssl, buf + n, (int)(cap - 1 - n));
		if (r <= 0)
			return -1;
		n += (size_t)r;
	}
	*blen = cl;
	if (sscanf(buf, "%15s %127s", method, path) != 2)
		return -1;
	return 0;
}

/* Copy the value of request header name (with its ": ") from the header
 * block in buf into out; "" if absent. */
static void
req_header(const char *buf, const char *name, char *out, size_t outlen)
{
	const char *p = strcasestr(buf, name), *e;
	size_t n;

	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(name);
	e = strstr(p, "\r\n");
	n = e ? (size_t)(e - p) : 0;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* A stand-in for the gateway's record routes, for the visorctl tests:
 * PUT/PATCH answer 201/200 once per Idempotency-Key and then replay with
 * "Idempotent-Replay: true"; ids ending in 03 fail the schema (422); ids
 * ending in 05 get 503 twice in a run; ids ending in 07 have their first
 * request applied (its key kept) and the connection closed unanswered,
 * as when an answer is lost (-1); GET of NFK-000404 is 404. */
static int
records_route(server_t *s, const char *buf, const char *method,
    const char *path, char *body, size_t *bodylen, char *extra,
    size_t extralen)
{
	const char *id = path + strlen("/v1/records/");
	char key[96], actor[64], purpose[64], ct[64], just[600];
	size_t n = strlen(id);
	int i, status;

	extra[0] = '\0';
	req_header(buf, "\r\nX-Visor-Actor: ", actor, sizeof(actor));
	req_header(buf, "\r\nX-Visor-Purpose: ", purpose, sizeof(purpose));
	req_header(buf, "\r\nIdempotency-Key: ", key, sizeof(key));
	req_header(buf, "\r\nContent-Type: ", ct, sizeof(ct));
	req_header(buf, "\r\nX-Visor-Justification: ", just, sizeof(just));
	if (actor[0] == '\0' || purpose[0] == '\0') {
		*bodylen = (size_t)snprintf(body, 8192, "{\"error\":{\"code\":"
		    "\"missing-header\",\"message\":\"actor and purpose\","
		    "\"request_id\":\"t0\"}}");
		return 400;
	}
	if (strcmp(method, "GET") == 0) {
		if (strcmp(id, "NFK-000666") == 0) {
			/* A hostile gateway's record: a C1 CSI and a
			 * right-to-left override, raw in strings. */
			*bodylen = (size_t)snprintf(body, 8192, "{\"id\":"
			    "\"%s\",\"name\":\"\xe2\x80\xae" "deifirev"
			    "\xc2\x9b" "2J\"}", id);
			return 200;
		}
		if (strcmp(id, "NFK-000667") == 0) {
			*bodylen = (size_t)snprintf(body, 8192, "\x1b[2Jok"
			    "\xe2\x81\xa6");
			return 403;
		}
		if (strcmp(id, "NFK-000668") == 0) {
			*bodylen = (size_t)snprintf(body, 8192, "ok\x1b[2J");
			return 200;
		}
		if (strcmp(id, "NFK-000404") == 0) {
			*bodylen = (size_t)snprintf(body, 8192, "{\"error\":{"
			    "\"code\":\"not-found\",\"message\":\"no such "
			    "record\",\"request_id\":\"t4\"}}");
			return 404;
		}
		*bodylen = (size_t)snprintf(body, 8192, "{\"id\":\"%s\","
		    "\"purpose\":\"%s\",\"justification\":\"%s\"}", id,
		    purpose, just);
		return 200;
	}
	if (n >= 2 && strcmp(id + n - 2, "03") == 0) {
		*bodylen = (size_t)snprintf(body, 8192, "{\"error\":{\"code\":"
		    "\"schema\",\"message\":\"addresses[0].postcode: not a "
		    "postcode\",\"request_id\":\"t1\"}}");
		return 422;
	}
	if (strcmp(method, "PATCH") == 0 &&
	    strcmp(ct, "application/merge-patch+json") != 0) {
		*bodylen = (size_t)snprintf(body, 8192, "{\"error\":{\"code\":"
		    "\"unsupported-media-type\",\"message\":\"%s\","
		    "\"request_id\":\"t2\"}}", ct);
		return 415;
	}
	pthread_mutex_lock(&s->mu);
	if (n >= 2 && strcmp(id + n - 2, "05") == 0 && s->failed_503 < 2) {
		s->failed_503++;
		pthread_mutex_unlock(&s->mu);
		snprintf(extra, extralen, "Retry-After: 0\r\n");
		*bodylen = (size_t)snprintf(body, 8192, "{\"error\":{\"code\":"
		    "\"audit-unavailable\",\"message\":\"try later\","
		    "\"request_id\":\"t3\"}}");
		return 503;
	}
	status = strcmp(method, "PUT") == 0 ? 201 : 200;
	for (i = 0; i < s->n_keys; i++)
		if (strcmp(s->keys[i], key) == 0) {
			snprintf(extra, extralen, "Idempotent-Replay: true\r\n");
			break;
		}
	if (i == s->n_keys && s->n_keys < 256 && key[0] != '\0') {
		snprintf(s->keys[s->n_keys++], sizeof(s->keys[0]), "%s", key);
		if (n >= 2 && strcmp(id + n - 2, "07") == 0) {
			s->lost_answers++;
			pthread_mutex_unlock(&s->mu);
			return -1;
		}
	}
	pthread_mutex_unlock(&s->mu);
	*bodylen = (size_t)snprintf(body, 8192, "{\"id\":\"%s\",\"version\":1}",
	    id);
	return status;
}

static void *
conn_main(void *argp)
{
	conn_arg_t *a = argp;
	server_t *s = a->s;
	SSL *ssl;
	char buf[16384], method[16], path[128], body[8192], hdr[384];
	char extra[128];
	size_t hend, blen, bodylen;
	int status;

	ssl = SSL_new(s->ctx);
	if (ssl == NULL || SSL_set_fd(ssl, a->fd) != 1 || SSL_accept(ssl) != 1)
		goto out;
	pthread_mutex_lock(&s->mu);
	s->handshakes++;
	pthread_mutex_unlock(&s->mu);
	while (read_request(ssl, buf, sizeof(buf), &hend, &blen, method,
	    path) == 0) {
		status = 200;
		extra[0] = '\0';
		if (strcmp(path, "/silent") == 0) {
			/* Never answer: wait for the client to give up. */
			while (SSL_read(ssl, buf, sizeof(buf)) > 0)
				;
			break;
		}
		if (strcmp(path, "/drop") == 0)
			break;	/* read, then closed unanswered */
		if (strncmp(path, "/v1/records/", 12) == 0) {
			status = records_route(s, buf, method, path, body,
			    &bodylen, extra, sizeof(extra));
			if (status < 0)
				break;
		} else if (strcmp(path, "/big") == 0) {
			memset(body, 'x', 4096);
			bodylen = 4096;
		} else if (strcmp(path, "/v1/status") == 0) {
			/* A hostile gateway's status: control sequences in
			 * strings, escaped and raw (a C1 CSI as UTF-8, a CR
			 * between tokens). */
			bodylen = (size_t)snprintf(body, sizeof(body),
			    "{\"area\":\"nfk\\u001b[2J\",\"version\":"
			    "\"1\xc2\x9b" "31m\xe2\x80\xae" "1.0\",\r"
			    "\"audit_size\":3,\"peers\":"
			    "[{\"area\":\"sfk\",\"url\":\"https://x\\u0007\","
			    "\"last_delivery\":\"error\",\"last_error\":"
			    "\"down\\r\\u001b[1Aall well\"}]}");
		} else if (strcmp(path, "/x/v1/status") == 0) {
			status = 500;
			bodylen = (size_t)snprintf(body, sizeof(body),
			    "\x1b[2Jverified\r\xe2\x81\xa6" "deifirev");
		} else {
			if (strcmp(path, "/status/503") == 0)
				status = 503;
			bodylen = (size_t)snprintf(body, sizeof(body),
			    "{\"method\":\"%s\",\"path\":\"%s\",\"len\":%zu,"
			    "\"ct\":%d}", method, path, blen,
			    strcasestr(buf, "\r\nContent-Type: application/json") != NULL);
		}
		snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d X\r\nContent-Type: "
		    "application/json\r\nX-Test:  yes \r\n%sContent-Length: "
		    "%zu\r\n\r\n", status, extra, bodylen);
		pthread_mutex_lock(&s->mu);
		s->requests++;
		pthread_mutex_unlock(&s->mu);
		/* Two TLS records, which usually arrive together: the load
		 * generator reads ahead and must still see the second one
		 * (drain_read_ahead in client/loadgen.c; without it every
		 * test_loadgen_* request here times out). */
		if (SSL_write(ssl, hdr, (int)strlen(hdr)) <= 0 ||
		    SSL_write(ssl, body, (int)bodylen) <= 0)
			break;
	}
out:
	SSL_free(ssl);
	close(a->fd);
	free(a);
	return NULL;
}

static void *
accept_main(void *argp)
{
	server_t *s = argp;
	conn_arg_t *a;
	int fd;

	for (;;) {
		fd = accept(s->fd, NULL, NULL);
		if (fd < 0 || atomic_load(&s->stop)) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		a = malloc(sizeof(*a));
		assert_non_null(a);
		a->s = s;
		a->fd = fd;
		pthread_mutex_lock(&s->mu);
		if (s->n_workers >= MAX_CONN ||
		    pthread_create(&s->workers[s->n_workers], NULL, conn_main,
		    a) != 0) {
			pthread_mutex_unlock(&s->mu);
			close(fd);
			free(a);
			continue;
		}
		s->conn_fds[s->n_workers++] = fd;
		pthread_mutex_unlock(&s->mu);
	}
}

/* Start a server presenting leaf (with chain) and asking for a client
 * certificate under client_root. */
static server_t *
server_start(const pair_t *leaf, X509 *chain, X509 *client_root, int tls12_only)
{
	server_t *s;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	X509_STORE *st;

	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	pthread_mutex_init(&s->mu, NULL);
	s->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(s->ctx);
	if (tls12_only) {
		assert_int_equal(SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION), 1);
		assert_int_equal(SSL_CTX_set_max_proto_version(s->ctx, TLS1_2_VERSION), 1);
	}
	assert_int_equal(SSL_CTX_use_certificate(s->ctx, leaf->cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, leaf->key), 1);
	if (chain != NULL)
		assert_int_equal(SSL_CTX_add1_chain_cert(s->ctx, chain), 1);
	st = SSL_CTX_get_cert_store(s->ctx);
	assert_int_equal(X509_STORE_add_cert(st, client_root), 1);
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->fd, 64), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s->acceptor, NULL, accept_main, s), 0);
	return s;
}

static void
server_stop(server_t *s)
{
	int i;

	atomic_store(&s->stop, 1);
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->acceptor, NULL);
	close(s->fd);
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->n_workers; i++)
		shutdown(s->conn_fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	for (i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i], NULL);
	SSL_CTX_free(s->ctx);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* --- fixtures --------------------------------------------------------------- */

static pair_t root, ca, server, client, other_root, other_ca, other_server;
static pair_t server_nouri, server_agency, server_wrong_area;
static pair_t server_no_eku, server_is_ca;
static char p_cert[128], p_key[128], p_root[128], p_crl_ok[128],
    p_crl_revoked[128], p_crl_other[128], p_crl_future[128],
    p_crl_old[128], p_crl_expired[128];

/* Set crl's nextUpdate to when and sign it again with the CA's key. */
static void
crl_next_update(X509_CRL *crl, time_t when)
{
	ASN1_TIME *t = ASN1_TIME_set(NULL, when);

	assert_non_null(t);
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	assert_true(X509_CRL_sign(crl, ca.key, EVP_sha256()) > 0);
}

static int
setup(void **state)
{
	X509_CRL *crl;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/visor-https-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	root = mint("Test Root", NULL, NULL, NULL);
	ca = mint("Test CA", "urn:visor:test:ca", &root, NULL);
	server = mint("gw", "urn:visor:test:gateway", &ca, "serverAuth");
	client = mint("agency", "urn:visor:test:agency:probation", &ca,
	    "clientAuth");
	server_nouri = mint("gw-nouri", NULL, &ca, "serverAuth");
	server_agency = mint("gw-agency", "urn:visor:test:agency:police", &ca,
	    "serverAuth");
	server_wrong_area = mint("gw-area", "urn:visor:suffolk:gateway", &ca,
	    "serverAuth");
	server_no_eku = mint("gw-noeku", "urn:visor:test:gateway", &ca, "");
	server_is_ca = mint("gw-ca", "urn:visor:test:gateway", &ca,
	    "CA:serverAuth");
	other_root = mint("Other Root", NULL, NULL, NULL);
	other_ca = mint("Other CA", "urn:visor:test:ca", &other_root, NULL);
	other_server = mint("gw2", "urn:visor:test:gateway", &other_ca,
	    "serverAuth");
	write_cert("root.crt", root.cert, NULL);
	write_cert("agency.crt", client.cert, ca.cert);
	write_key("agency.key", client.key);
	tmp_path(p_cert, sizeof(p_cert), "agency.crt");
	tmp_path(p_key, sizeof(p_key), "agency.key");
	tmp_path(p_root, sizeof(p_root), "root.crt");
	crl = mint_crl(&ca, NULL, -60);
	write_crl("crl-ok.pem", crl);
	X509_CRL_free(crl);
	crl = mint_crl(&ca, server.cert, -60);
	write_crl("crl-revoked.pem", crl);
	X509_CRL_free(crl);
	crl = mint_crl(&other_ca, NULL, -60);
	write_crl("crl-other.pem", crl);
	X509_CRL_free(crl);
	crl = mint_crl(&ca, NULL, 3600);
	write_crl("crl-future.pem", crl);
	X509_CRL_free(crl);
	/* An older CRL of the same CA, still current, before the revocation;
	 * and one whose nextUpdate has passed. */
	crl = mint_crl(&ca, NULL, -7200);
	write_crl("crl-old.pem", crl);
	X509_CRL_free(crl);
	crl = mint_crl(&ca, NULL, -7200);
	crl_next_update(crl, time(NULL) - 3600);
	write_crl("crl-expired.pem", crl);
	X509_CRL_free(crl);
	tmp_path(p_crl_old, sizeof(p_crl_old), "crl-old.pem");
	tmp_path(p_crl_expired, sizeof(p_crl_expired), "crl-expired.pem");
	tmp_path(p_crl_future, sizeof(p_crl_future), "crl-future.pem");
	tmp_path(p_crl_ok, sizeof(p_crl_ok), "crl-ok.pem");
	tmp_path(p_crl_revoked, sizeof(p_crl_revoked), "crl-revoked.pem");
	tmp_path(p_crl_other, sizeof(p_crl_other), "crl-other.pem");
	return https_global_init();
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	pair_free(&root);
	pair_free(&ca);
	pair_free(&server);
	pair_free(&client);
	pair_free(&server_nouri);
	pair_free(&server_agency);
	pair_free(&server_wrong_area);
	pair_free(&server_no_eku);
	pair_free(&server_is_ca);
	pair_free(&other_root);
	pair_free(&other_ca);
	pair_free(&other_server);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A client from the given files, checking the server against crls (n of
 * them), its kept connections not reused past max_age_s (0: the default). */
static int make_count_sends;	/* the next make_client's count_sends */

static https_client_t *
make_client(const char *cert, const char *key, const char *rootfile,
    const char *expect, const char *const *crls, size_t n, long max_age_s)
{
	https_client_options_t o;
	https_client_t *c;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.count_sends = make_count_sends;
	make_count_sends = 0;
	o.cert = cert;
	o.key = key;
	o.root = rootfile;
	o.expect_identity = expect;
	o.timeout_ms = 10000;
	o.max_response = 1024;
	o.crls = crls;
	o.n_crls = n;
	o.max_conn_age_s = max_age_s;
	c = https_client_new(&o, err, sizeof(err));
	if (c == NULL)
		fail_msg("https_client_new: %s", err);
	return c;
}

/* A client from the given files (the test's own with new_client). */
static https_client_t *
new_client_files(const char *cert, const char *key, const char *rootfile,
    const char *expect, const char *crl)
{
	return make_client(cert, key, rootfile, expect, crl ? &crl : NULL,
	    crl ? 1 : 0, 0);
}

/* A client given two CRL files, in this order. */
static https_client_t *
new_client_crls(const char *expect, const char *crl1, const char *crl2)
{
	const char *crls[2] = { crl1, crl2 };

	return make_client(p_cert, p_key, p_root, expect, crls, 2, 0);
}

static https_client_t *
new_client(const char *expect, const char *crl)
{
	return new_client_files(p_cert, p_key, p_root, expect, crl);
}

/* A call that must get a response; prints the reason otherwise. */
static void
call_ok(https_client_t *c, const char *method, const char *u,
    const char *const *hdrs, const char *body, https_response_t *r)
{
	char err[512];

	if (https_client_call(c, method, u, hdrs, body, body ? strlen(body) : 0,
	    r, err, sizeof(err)) != 0)
		fail_msg("%s %s: %s", method, u, err);
}

static void
url(char *out, size_t n, const server_t *s, const char *path)
{
	snprintf(out, n, "https://127.0.0.1:%d%s", s->port, path);
}

/* Expect a request against s to fail, with no request served. */
static void
expect_refused(server_t *s, https_client_t *c, const char *errpart)
{
	https_response_t r;
	char u[128], err[512];

	url(u, sizeof(u), s, "/v1/health");
	assert_int_equal(https_client_call(c, "PUT", u, NULL, "{}", 2, &r, err,
	    sizeof(err)), -1);
	assert_int_equal(r.status, 0);
	if (errpart != NULL && strstr(err, errpart) == NULL)
		fail_msg("error '%s' does not mention '%s'", err, errpart);
	https_response_free(&r);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->requests, 0);
	pthread_mutex_unlock(&s->mu);
}

/* The server completed exactly this many handshakes and answered exactly
 * this many requests. */
static void
expect_served(server_t *s, int handshakes, int requests)
{
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->handshakes, handshakes);
	assert_int_equal(s->requests, requests);
	pthread_mutex_unlock(&s->mu);
}

/* --- tests ------------------------------------------------------------------ */

static void
test_request_ok_and_keepalive(void **state)
{
	server_t *s;
	https_client_t *c;
	https_response_t r;
	char u[128];
	const char *hdrs[] = { "X-Visor-Actor: P1234", NULL };

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client("urn:visor:test:gateway", NULL);
	url(u, sizeof(u), s, "/v1/echo/NFK-1");
	call_ok(c, "PUT", u, hdrs, "{\"a\":1}", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "application/json");
	assert_string_equal(r.body.data, "{\"method\":\"PUT\",\"path\":"
	    "\"/v1/echo/NFK-1\",\"len\":7,\"ct\":1}");
	assert_string_equal(https_client_peer_identity(c), "urn:visor:test:gateway");
	{
		char v[8];

		assert_int_equal(https_response_header(&r, "x-test", v,
		    sizeof(v)), 0);
		assert_string_equal(v, "yes");
		assert_int_equal(https_response_header(&r, "content-length", v,
		    sizeof(v)), 0);
		assert_string_equal(v, "55");
		assert_int_equal(https_response_header(&r, "X-Tes", v,
		    sizeof(v)), -1);
		assert_string_equal(v, "");
	}
	https_response_free(&r);

	url(u, sizeof(u), s, "/status/503");
	call_ok(c, "GET", u, NULL, NULL, &r);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body.data, "\"method\":\"GET\""));
	https_response_free(&r);

	url(u, sizeof(u), s, "/x");
	call_ok(c, "DELETE", u, NULL, NULL, &r);
	assert_non_null(strstr(r.body.data, "\"method\":\"DELETE\""));
	https_response_free(&r);

	/* three requests, one connection: keep-alive */
	expect_served(s, 1, 3);
	https_client_free(c);
	server_stop(s);
}

/* Two GETs of u by c on a new server s: one handshake, two requests. */
static void
two_on_one_connection(https_client_t *c, const char *u, server_t *s)
{
	https_response_t r;
	int i;

	for (i = 0; i < 2; i++) {
		call_ok(c, "GET", u, NULL, NULL, &r);
		https_response_free(&r);
	}
	expect_served(s, 1, 2);
}

/* A kept-alive connection older than max_conn_age_s is not reused: the
 * next request makes a new handshake, which checks the server's
 * certificate and CRLs again (before, one connection served every request
 * as long as it stayed busy, past the certificate's expiry).  libcurl
 * counts whole seconds and needs the age above the limit: 2.2 s for 1. */
static void
test_connection_max_age(void **state)
{
	server_t *s;
	https_client_t *c;
	https_response_t r;
	char u[128];
	struct timespec ts = { 2, 200000000L };

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = make_client(p_cert, p_key, p_root, NULL, NULL, 0, 1);
	url(u, sizeof(u), s, "/");
	two_on_one_connection(c, u, s);
	nanosleep(&ts, NULL);
	call_ok(c, "GET", u, NULL, NULL, &r);
	https_response_free(&r);
	expect_served(s, 2, 3);
	https_client_free(c);
	server_stop(s);
}

/* A gateway certificate from ca whose notAfter is until. */
static pair_t
mint_short(time_t until)
{
	pair_t p = mint("gw-short", "urn:visor:test:gateway", &ca,
	    "serverAuth");

	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(p.cert), 0, 0,
	    &until));
	assert_true(X509_sign(p.cert, ca.key, EVP_sha256()) > 0);
	return p;
}

/* Wait until the wall clock is past second t. */
static void
sleep_past(time_t t)
{
	struct timespec ts = { 0, 100000000L };

	while (time(NULL) <= t)
		nanosleep(&ts, NULL);
}

/* A kept-alive connection is not used past the verdict on its server:
 * once the server's certificate has passed its notAfter (crl == 0), or the
 * CRL it was checked against its nextUpdate (crl == 1), the next request
 * goes on a new connection, whose handshake refuses the server, and
 * nothing reaches it.  Before, the connection was used until it was
 * max_conn_age_s (60 s) old. */
static void
not_used_past_verdict(int crl)
{
	server_t *s;
	https_client_t *c;
	https_response_t r;
	pair_t leaf = server;
	X509_CRL *x;
	char u[128], err[512], path[128];
	const char *crls[1] = { path };
	time_t until = time(NULL) + 2;

	if (!crl) {
		leaf = mint_short(until);
	} else {
		x = mint_crl(&ca, NULL, -60);
		crl_next_update(x, until);
		write_crl("crl-short.pem", x);
		X509_CRL_free(x);
	}
	tmp_path(path, sizeof(path), "crl-short.pem");
	s = server_start(&leaf, ca.cert, root.cert, 0);
	c = make_client(p_cert, p_key, p_root, NULL, crl ? crls : NULL,
	    crl ? 1 : 0, 0);
	url(u, sizeof(u), s, "/");
	two_on_one_connection(c, u, s);
	sleep_past(until);
	assert_int_equal(https_client_call(c, "GET", u, NULL, NULL, 0, &r, err,
	    sizeof(err)), -1);
	https_response_free(&r);
	if (strstr(err, crl ? "crl-expired" : "expired") == NULL)
		fail_msg("error '%s'", err);
	expect_served(s, 1, 2);
	https_client_free(c);
	server_stop(s);
	if (!crl)
		pair_free(&leaf);
}

static void
test_not_used_past_expiry(void **state)
{
	(void)state;
	not_used_past_verdict(0);
}

static void
test_not_used_past_crl(void **state)
{
	(void)state;
	not_used_past_verdict(1);
}

/* The client's certificate and key given as PEM bytes rather than files:
 * used as given; a pair that does not match, or files and bytes both, or
 * one of the pair alone, refused. */
static void
test_client_pem_pair(void **state)
{
	https_client_options_t o;
	https_client_t *c;
	https_response_t r;
	server_t *s;
	char *cert = NULL, *key = NULL, *other = NULL, u[128], err[256];
	size_t cert_len, key_len, other_len;
	BIO *b;

	(void)state;
	assert_int_equal(file_read_all(p_cert, 1 << 20, &cert, &cert_len), 0);
	assert_int_equal(file_read_all(p_key, 1 << 20, &key, &key_len), 0);
	b = BIO_new(BIO_s_mem());
	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PrivateKey(b, server.key, NULL, NULL, 0,
	    NULL, NULL), 1);
	other_len = (size_t)BIO_get_mem_data(b, &other);
	memset(&o, 0, sizeof(o));
	o.root = p_root;
	o.cert_pem = cert;
	o.cert_pem_len = cert_len;
	o.key_pem = key;
	o.key_pem_len = key_len;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = https_client_new(&o, err, sizeof(err));
	if (c == NULL)
		fail_msg("https_client_new: %s", err);
	url(u, sizeof(u), s, "/");
	call_ok(c, "GET", u, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	https_response_free(&r);
	https_client_free(c);
	server_stop(s);
	o.key_pem = other;
	o.key_pem_len = other_len;
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
	o.key_pem = key;
	o.key_pem_len = key_len;
	o.cert = p_cert;
	o.key = p_key;
	assert_null(https_client_new(&o, err, sizeof(err)));
	o.cert = o.key = NULL;
	o.key_pem = NULL;
	assert_null(https_client_new(&o, err, sizeof(err)));
	BIO_free(b);
	free(cert);
	OPENSSL_cleanse(key, key_len);
	free(key);
}

static void
test_any_gateway_when_no_expectation(void **state)
{
	server_t *s;
	https_client_t *c;
	https_response_t r;
	char u[128];

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client(NULL, NULL);
	url(u, sizeof(u), s, "/");
	call_ok(c, "GET", u, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	https_response_free(&r);
	https_client_free(c);
	server_stop(s);
}

/* The client uses the certificate, key and root it checked when it was
 * made, not whatever the files hold when it connects: with the files gone
 * (or replaced, say by a renewal before the reload), it still connects. */
static void
test_client_keeps_checked_files(void **state)
{
	https_client_t *c;
	https_response_t r;
	server_t *s;
	char cert[200], key[200], rootp[200], u[128];

	(void)state;
	tmp_path(cert, sizeof(cert), "gone.crt");
	tmp_path(key, sizeof(key), "gone.key");
	tmp_path(rootp, sizeof(rootp), "gone-root.crt");
	write_cert("gone.crt", client.cert, ca.cert);
	write_key("gone.key", client.key);
	write_cert("gone-root.crt", root.cert, NULL);
	c = new_client_files(cert, key, rootp, "urn:visor:test:gateway", NULL);
	assert_int_equal(unlink(cert), 0);
	assert_int_equal(unlink(key), 0);
	assert_int_equal(unlink(rootp), 0);
	s = server_start(&server, ca.cert, root.cert, 0);
	url(u, sizeof(u), s, "/v1/health");
	call_ok(c, "GET", u, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	https_response_free(&r);
	https_client_free(c);
	server_stop(s);
}

static void
test_wrong_identity_fails(void **state)
{
	server_t *s;
	https_client_t *c;

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client("urn:visor:suffolk:gateway", NULL);
	expect_refused(s, c, "not the expected urn:visor:suffolk:gateway");
	https_client_free(c);
	server_stop(s);
}

static void
test_server_without_uri_fails(void **state)
{
	server_t *s;
	https_client_t *c;

	(void)state;
	s = server_start(&server_nouri, ca.cert, root.cert, 0);
	c = new_client(NULL, NULL);
	expect_refused(s, c, "no-uri");
	https_client_free(c);
	server_stop(s);
}

static void
test_server_not_a_gateway_fails(void **state)
{
	server_t *s;
	https_client_t *c;

	(void)state;
	s = server_start(&server_agency, ca.cert, root.cert, 0);
	c = new_client(NULL, NULL);
	expect_refused(s, c, "not-a-gateway");
	https_client_free(c);
	server_stop(s);
}

/* A gateway certificate is a server's only with serverAuth in its EKU
 * and as an end entity: the delivery of records depends on it. */
static void
test_server_eku_and_ca_checked(void **state)
{
	const struct {
		pair_t *cert;
		const char *want;
	} cases[] = {
		{ &server_no_eku, "bad-eku" },
		{ &server_is_ca, "not-an-end-entity" },
	};
	server_t *s;
	https_client_t *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = server_start(cases[i].cert, ca.cert, root.cert, 0);
		c = new_client("urn:visor:test:gateway", NULL);
		expect_refused(s, c, cases[i].want);
		https_client_free(c);
		server_stop(s);
	}
}

static void
test_server_area_mismatch_fails(void **state)
{
	server_t *s;
	https_client_t *c;

	(void)state;
	/* the test CA minted a suffolk identity: refused even when expected */
	s = server_start(&server_wrong_area, ca.cert, root.cert, 0);
	c = new_client("urn:visor:suffolk:gateway", NULL);
	expect_refused(s, c, "area-mismatch");
	https_client_free(c);
	server_stop(s);
}

static void
test_other_root_fails(void **state)
{
	server_t *s;
	https_client_t *c;

	(void)state;
	s = server_start(&other_server, other_ca.cert, root.cert, 0);
	c = new_client("urn:visor:test:gateway", NULL);
	expect_refused(s, c, "server certificate");
	https_client_free(c);
	server_stop(s);
}

static void
test_tls12_server_fails(void **state)
{
	server_t *s;
	https_client_t *c;

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 1);
	c = new_client("urn:visor:test:gateway", NULL);
	expect_refused(s, c, NULL);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->handshakes, 0);
	pthread_mutex_unlock(&s->mu);
	https_client_free(c);
	server_stop(s);
}

/* A client with CRL crl1 (and crl2, or NULL) is refused by the test server
 * for reason. */
static void
expect_crls_refuse(const char *crl1, const char *crl2, const char *reason)
{
	server_t *s = server_start(&server, ca.cert, root.cert, 0);
	https_client_t *c = crl2 == NULL ?
	    new_client("urn:visor:test:gateway", crl1) :
	    new_client_crls("urn:visor:test:gateway", crl1, crl2);

	expect_refused(s, c, reason);
	https_client_free(c);
	server_stop(s);
}

static void
test_crl(void **state)
{
	server_t *s;
	https_client_t *c;
	https_response_t r;
	char u[128];

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client("urn:visor:test:gateway", p_crl_ok);
	url(u, sizeof(u), s, "/");
	call_ok(c, "GET", u, NULL, NULL, &r);
	https_response_free(&r);
	https_client_free(c);
	server_stop(s);

	expect_crls_refuse(p_crl_revoked, NULL, "revoked");

	/* CRL checking on but no CRL from the server's CA */
	expect_crls_refuse(p_crl_other, NULL, "crl-missing");

	/* A CRL not yet in force is no CRL, as on the gateway's side */
	expect_crls_refuse(p_crl_future, NULL, "crl-not-yet-valid");
}

/* Two CRLs of the server's CA (one kept beside its successor in the
 * configuration): the outcome is the gateway's (OpenSSL uses the current
 * one; revocations are never undone), whatever their order.  The client
 * used the first that matched: an older CRL listed first let a revoked
 * server through, and an expired one listed first refused a good one. */
static void
test_two_crls(void **state)
{
	server_t *s;
	https_client_t *c;
	https_response_t r;
	char u[128];

	(void)state;
	expect_crls_refuse(p_crl_old, p_crl_revoked, "revoked");

	expect_crls_refuse(p_crl_revoked, p_crl_old, "revoked");

	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client_crls("urn:visor:test:gateway", p_crl_expired, p_crl_ok);
	url(u, sizeof(u), s, "/");
	call_ok(c, "GET", u, NULL, NULL, &r);
	https_response_free(&r);
	https_client_free(c);
	server_stop(s);

	/* Only an expired one: refused as before. */
	expect_crls_refuse(p_crl_expired, NULL, "crl-expired");
}

/* The files a and b (and tail, may be NULL) one after another into the
 * temporary file name; its path into out. */
static void
concat_files(char *out, size_t outlen, const char *name, const char *a,
    const char *b, const char *tail)
{
	char *da, *db, *all;
	size_t la, lb, lt = tail ? strlen(tail) : 0;

	tmp_path(out, outlen, name);
	assert_int_equal(file_read_all(a, 1u << 20, &da, &la), 0);
	assert_int_equal(file_read_all(b, 1u << 20, &db, &lb), 0);
	all = malloc(la + lb + lt);
	assert_non_null(all);
	memcpy(all, da, la);
	memcpy(all + la, db, lb);
	if (lt > 0)
		memcpy(all + la + lb, tail, lt);
	assert_int_equal(file_write_atomic(out, all, la + lb + lt, 0644), 0);
	free(all);
	free(da);
	free(db);
}

/* One CRL file holding several CRLs: every one counts, as it does for the
 * gateway.  Only the first was read: another CA's CRL first refused a good
 * server (crl-missing), and a CA's old CRL first let a server its new one
 * revokes through. */
static void
test_crl_file_several(void **state)
{
	server_t *s;
	https_client_t *c;
	https_response_t r;
	https_client_options_t o;
	const char *files[1];
	char u[128], p[128], err[256];
	static const char damaged[] = "-----BEGIN X509 CRL-----\nnot base64\n"
	    "-----END X509 CRL-----\n";

	(void)state;
	concat_files(p, sizeof(p), "crl-other-ok.pem", p_crl_other, p_crl_ok,
	    NULL);
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client("urn:visor:test:gateway", p);
	url(u, sizeof(u), s, "/");
	call_ok(c, "GET", u, NULL, NULL, &r);
	https_response_free(&r);
	https_client_free(c);
	server_stop(s);

	/* The second revokes the server. */
	concat_files(p, sizeof(p), "crl-old-revoked.pem", p_crl_old,
	    p_crl_revoked, NULL);
	expect_crls_refuse(p, NULL, "revoked");
	concat_files(p, sizeof(p), "crl-other-revoked.pem", p_crl_other,
	    p_crl_revoked, NULL);
	expect_crls_refuse(p, NULL, "revoked");

	/* A second CRL of another CA is no CRL for this server, as such a
	 * file alone is: the first still serves, and alone it is missing. */
	concat_files(p, sizeof(p), "crl-ok-other.pem", p_crl_ok, p_crl_other,
	    NULL);
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client("urn:visor:test:gateway", p);
	url(u, sizeof(u), s, "/");
	call_ok(c, "GET", u, NULL, NULL, &r);
	https_response_free(&r);
	https_client_free(c);
	server_stop(s);
	concat_files(p, sizeof(p), "crl-other-other.pem", p_crl_other,
	    p_crl_other, NULL);
	expect_crls_refuse(p, NULL, "crl-missing");

	/* A damaged second CRL refuses the client, as a damaged file does. */
	concat_files(p, sizeof(p), "crl-ok-damaged.pem", p_crl_ok, p_crl_ok,
	    damaged);
	memset(&o, 0, sizeof(o));
	o.cert = p_cert;
	o.key = p_key;
	o.root = p_root;
	files[0] = p;
	o.crls = files;
	o.n_crls = 1;
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "PEM block 3 is damaged"));
}

static void
test_response_bound(void **state)
{
	server_t *s;
	https_client_t *c;
	https_response_t r;
	char u[128], err[256];

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client(NULL, NULL);
	url(u, sizeof(u), s, "/big");
	assert_int_equal(https_client_call(c, "GET", u, NULL, NULL, 0, &r, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than 1024"));
	https_response_free(&r);
	https_client_free(c);
	server_stop(s);
}

static void
test_bad_requests(void **state)
{
	https_client_t *c;
	https_response_t r;
	char err[256];
	const char *inject[] = { "X-A: b\r\nX-Evil: 1", NULL };
	const char *noname[] = { ": x", NULL };

	(void)state;
	c = new_client(NULL, NULL);
	assert_int_equal(https_client_call(c, "get", "https://127.0.0.1:1/",
	    NULL, NULL, 0, &r, err, sizeof(err)), -1);
	https_response_free(&r);
	assert_int_equal(https_client_call(c, "GET", "https://127.0.0.1:1/",
	    inject, NULL, 0, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad header"));
	https_response_free(&r);
	assert_int_equal(https_client_call(c, "GET", "https://127.0.0.1:1/",
	    noname, NULL, 0, &r, err, sizeof(err)), -1);
	https_response_free(&r);
	/* plain http is not allowed */
	assert_int_equal(https_client_call(c, "GET", "http://127.0.0.1:1/",
	    NULL, NULL, 0, &r, err, sizeof(err)), -1);
	https_response_free(&r);
	/* nobody listening */
	assert_int_equal(https_client_call(c, "GET", "https://127.0.0.1:1/",
	    NULL, NULL, 0, &r, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	https_response_free(&r);
	https_client_free(c);
}

static void
test_new_errors(void **state)
{
	https_client_options_t o;
	char err[256], badkey[128], other[128];
	const char *crls[] = { p_cert };

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_null(https_client_new(NULL, err, sizeof(err)));
	o.cert = p_cert;
	o.key = p_key;
	o.root = "/nonexistent/root.crt";
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/root.crt"));
	o.root = p_key;		/* not a certificate */
	assert_null(https_client_new(&o, err, sizeof(err)));
	o.root = p_root;
	o.expect_identity = "urn:visor:test:agency:police";
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "not a gateway"));
	o.expect_identity = "urn:visor:Bad:gateway";
	assert_null(https_client_new(&o, err, sizeof(err)));
	o.expect_identity = NULL;
	o.crls = crls;		/* a certificate, not a CRL */
	o.n_crls = 1;
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "not a PEM CRL"));
	o.crls = NULL;
	o.n_crls = 0;
	/* a key that does not match the certificate */
	write_key("other.key", server.key);
	tmp_path(other, sizeof(other), "other.key");
	o.key = other;
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
	/* a key readable by others */
	write_key("open.key", client.key);
	tmp_path(badkey, sizeof(badkey), "open.key");
	assert_int_equal(chmod(badkey, 0644), 0);
	o.key = badkey;
	assert_null(https_client_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "0600"));
}

struct batch_state {
	int done;
	int ok;
	int retryable;
	int retried;
	https_batch_t *b;
	char url[128];
};

static void
batch_done(void *arg, const https_result_t *res)
{
	struct batch_state *st = arg;
	https_request_t req;

	st->done++;
	if (res->rc < 0 && res->retryable)
		st->retryable++;
	if (res->rc == 0 && res->resp->status == 200 &&
	    strstr(res->resp->body.data, "\"len\":3") != NULL)
		st->ok++;
	if (res->rc == 0 && res->resp->status == 503 && !st->retried) {
		/* a callback may queue a retry with a delay */
		st->retried = 1;
		req.method = "PATCH";
		req.url = st->url;
		req.headers = NULL;
		req.body = "abc";
		req.len = 3;
		assert_int_equal(https_batch_add(st->b, &req, 20, batch_done,
		    st), 0);
	}
}

static void
test_batch(void **state)
{
	server_t *s;
	https_client_t *c;
	https_batch_t *b;
	https_request_t req;
	struct batch_state st;
	char u[128], err[256];
	int i;

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client("urn:visor:test:gateway", NULL);
	assert_null(https_batch_new(c, 0, err, sizeof(err)));
	b = https_batch_new(c, 4, err, sizeof(err));
	assert_non_null(b);
	memset(&st, 0, sizeof(st));
	st.b = b;
	url(st.url, sizeof(st.url), s, "/v1/echo/X");
	url(u, sizeof(u), s, "/v1/echo/X");
	req.method = "PATCH";
	req.url = u;
	req.headers = NULL;
	req.body = "abc";
	req.len = 3;
	for (i = 0; i < 20; i++)
		assert_int_equal(https_batch_add(b, &req, 0, batch_done, &st), 0);
	url(u, sizeof(u), s, "/status/503");
	assert_int_equal(https_batch_add(b, &req, 0, batch_done, &st), 0);
	req.method = "bad method";
	assert_int_equal(https_batch_add(b, &req, 0, batch_done, &st), -1);
	assert_int_equal(https_batch_pending(b), 21);
	assert_int_equal(https_batch_run(b), 0);
	assert_int_equal(https_batch_pending(b), 0);
	assert_int_equal(st.done, 22);
	assert_int_equal(st.ok, 21);
	pthread_mutex_lock(&s->mu);
	assert_true(s->handshakes >= 1 && s->handshakes <= 4);
	assert_int_equal(s->requests, 22);
	pthread_mutex_unlock(&s->mu);
	https_batch_free(b);
	https_client_free(c);
	server_stop(s);
}

struct sent_state {
	int done, rc, retryable, sends;
};

static void
sent_done(void *arg, const https_result_t *res)
{
	struct sent_state *st = arg;

	st->done++;
	st->rc = res->rc;
	st->retryable = res->retryable;
	st->sends = res->sends;
}

/* One request through a batch; its result in *st. */
static void
batch_one(https_client_t *c, const char *u, struct sent_state *st)
{
	https_batch_t *b;
	https_request_t req;
	char err[256];

	b = https_batch_new(c, 1, err, sizeof(err));
	assert_non_null(b);
	memset(st, 0, sizeof(*st));
	req.method = "PUT";
	req.url = u;
	req.headers = NULL;
	req.body = "{}";
	req.len = 2;
	assert_int_equal(https_batch_add(b, &req, 0, sent_done, st), 0);
	assert_int_equal(https_batch_run(b), 0);
	assert_int_equal(st->done, 1);
	https_batch_free(b);
}

static void *
accept_and_close(void *arg)
{
	int fd = accept(*(int *)arg, NULL, NULL);

	if (fd >= 0)
		close(fd);
	return NULL;
}

/* https_result_t.sends, for a client with count_sends (else -1): 1 when
 * a request went out and no answer came (the server may have acted on
 * it), 0 when the connection or the TLS handshake failed first (the
 * server never had it).  visorctl push counts a replay
 * after the first kind apart from "unchanged"; its test below covers a
 * request libcurl sent twice (sends 2), on a reused connection closed
 * unanswered. */
static void
test_batch_sent(void **state)
{
	server_t *s;
	https_client_t *c;
	struct sent_state st;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	pthread_t th;
	char u[128];
	int fd;

	(void)state;
	/* a client that does not ask has nothing counted */
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client("urn:visor:test:gateway", NULL);
	url(u, sizeof(u), s, "/v1/echo/X");
	batch_one(c, u, &st);
	assert_int_equal(st.rc, 0);
	assert_int_equal(st.sends, -1);
	https_client_free(c);
	server_stop(s);
	make_count_sends = 1;
	c = new_client("urn:visor:test:gateway", NULL);
	/* nothing listening: refused at connect */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(u, sizeof(u), "https://127.0.0.1:%d/v1/records/X",
	    ntohs(sa.sin_port));
	batch_one(c, u, &st);
	assert_int_equal(st.rc, -1);
	assert_int_equal(st.retryable, 1);
	assert_int_equal(st.sends, 0);
	/* connected, then closed during the TLS handshake */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(pthread_create(&th, NULL, accept_and_close, &fd), 0);
	batch_one(c, u, &st);
	pthread_join(th, NULL);
	close(fd);
	assert_int_equal(st.rc, -1);
	assert_int_equal(st.retryable, 1);
	assert_int_equal(st.sends, 0);
	/* the request read by the server, which closes unanswered */
	s = server_start(&server, ca.cert, root.cert, 0);
	url(u, sizeof(u), s, "/drop");
	batch_one(c, u, &st);
	assert_int_equal(st.rc, -1);
	assert_int_equal(st.retryable, 1);
	assert_int_equal(st.sends, 1);
	/* answered, once */
	url(u, sizeof(u), s, "/v1/echo/X");
	batch_one(c, u, &st);
	assert_int_equal(st.rc, 0);
	assert_int_equal(st.sends, 1);
	https_client_free(c);
	server_stop(s);
}

/* The server renews its certificate while a connection made under the
 * old one is kept alive; once the old one expires, a request (the
 * synchronous API, then a batch) does not fail: it goes on a new
 * connection, which meets the new certificate.  The request body goes
 * whole (the echo counts its bytes). */
static void
test_renewed_server_reached(void **state)
{
	server_t *s;
	https_client_t *c;
	https_batch_t *b;
	https_request_t req;
	https_response_t r;
	struct batch_state st;
	pair_t leaf;
	char u[128], err[256];
	int pass;
	time_t until;

	(void)state;
	for (pass = 0; pass < 2; pass++) {
		until = time(NULL) + 2;
		leaf = mint_short(until);
		s = server_start(&leaf, ca.cert, root.cert, 0);
		c = new_client("urn:visor:test:gateway", NULL);
		assert_non_null(b = https_batch_new(c, 2, err, sizeof(err)));
		memset(&st, 0, sizeof(st));
		st.b = b;
		url(u, sizeof(u), s, "/v1/echo/X");
		req = (https_request_t){ .method = "PATCH", .url = u,
		    .body = "abc", .len = 3 };
		if (pass == 0) {
			call_ok(c, "PATCH", u, NULL, "abc", &r);
			https_response_free(&r);
		} else {
			assert_int_equal(https_batch_add(b, &req, 0, batch_done,
			    &st), 0);
			assert_int_equal(https_batch_run(b), 0);
			assert_int_equal(st.ok, 1);
		}
		expect_served(s, 1, 1);
		/* Renewed (new connections only), then the old one expires. */
		assert_int_equal(SSL_CTX_use_certificate(s->ctx, server.cert), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, server.key), 1);
		sleep_past(until);
		if (pass == 0) {
			call_ok(c, "PATCH", u, NULL, "abc", &r);
			assert_int_equal(r.status, 200);
			assert_non_null(strstr(r.body.data, "\"len\":3"));
			https_response_free(&r);
		} else {
			assert_int_equal(https_batch_add(b, &req, 0, batch_done,
			    &st), 0);
			assert_int_equal(https_batch_run(b), 0);
			assert_int_equal(st.done, 2);
			assert_int_equal(st.ok, 2);
		}
		expect_served(s, 2, 2);
		https_batch_free(b);
		https_client_free(c);
		server_stop(s);
		pair_free(&leaf);
	}
}

struct stop_state {
	int done, stopped;
	atomic_int stop;
};

static void
stop_done(void *arg, const https_result_t *res)
{
	struct stop_state *st = arg;

	st->done++;
	if (res->rc == -1 && res->stopped)
		st->stopped++;
}

static void *
stop_later(void *arg)
{
	struct stop_state *st = arg;
	struct timespec ts = { 0, 300 * 1000000L };

	nanosleep(&ts, NULL);
	atomic_store(&st->stop, 1);
	return NULL;
}

/* https_batch_stop_when: a batch waiting for a server that never answers
 * (the client's timeout is 10 s) ends within about a second of its flag
 * being set; the request in flight and the one not yet due are each
 * completed once, as stopped. */
static void
test_batch_stop_when(void **state)
{
	server_t *s;
	https_client_t *c;
	https_batch_t *b;
	https_request_t req;
	struct stop_state st;
	struct timespec t0, t1;
	pthread_t th;
	char u[128], err[256];
	double took;

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client("urn:visor:test:gateway", NULL);
	b = https_batch_new(c, 4, err, sizeof(err));
	assert_non_null(b);
	memset(&st, 0, sizeof(st));
	atomic_init(&st.stop, 0);
	https_batch_stop_when(b, &st.stop);
	url(u, sizeof(u), s, "/silent");
	req.method = "GET";
	req.url = u;
	req.headers = NULL;
	req.body = NULL;
	req.len = 0;
	assert_int_equal(https_batch_add(b, &req, 0, stop_done, &st), 0);
	assert_int_equal(https_batch_add(b, &req, 60000, stop_done, &st), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pthread_create(&th, NULL, stop_later, &st), 0);
	assert_int_equal(https_batch_run(b), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(th, NULL);
	took = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(took >= 0.3 && took < 3.0);
	assert_int_equal(st.done, 2);
	assert_int_equal(st.stopped, 2);
	assert_int_equal(https_batch_pending(b), 0);
	https_batch_free(b);
	https_client_free(c);
	server_stop(s);
}

static void
test_batch_identity_failure(void **state)
{
	server_t *s;
	https_client_t *c;
	https_batch_t *b;
	https_request_t req;
	struct batch_state st;
	char u[128], err[256];

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	c = new_client("urn:visor:suffolk:gateway", NULL);
	b = https_batch_new(c, 2, err, sizeof(err));
	assert_non_null(b);
	memset(&st, 0, sizeof(st));
	st.b = b;
	url(u, sizeof(u), s, "/");
	req.method = "GET";
	req.url = u;
	req.headers = NULL;
	req.body = NULL;
	req.len = 0;
	assert_int_equal(https_batch_add(b, &req, 0, batch_done, &st), 0);
	assert_int_equal(https_batch_add(b, &req, 0, batch_done, &st), 0);
	assert_int_equal(https_batch_run(b), 0);
	assert_int_equal(st.done, 2);
	assert_int_equal(st.ok, 0);
	assert_int_equal(st.retryable, 0);	/* identity failures are final */
	/* nobody listening: a network failure, worth retrying */
	req.url = "https://127.0.0.1:1/";
	assert_int_equal(https_batch_add(b, &req, 0, batch_done, &st), 0);
	assert_int_equal(https_batch_run(b), 0);
	assert_int_equal(st.done, 3);
	assert_int_equal(st.retryable, 1);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->requests, 0);
	pthread_mutex_unlock(&s->mu);
	https_batch_free(b);
	https_client_free(c);
	server_stop(s);
}

static void
test_cert_uri(void **state)
{
	char uri[160], err[256];

	(void)state;
	assert_int_equal(https_cert_uri(p_cert, uri, sizeof(uri), err,
	    sizeof(err)), 0);
	assert_string_equal(uri, "urn:visor:test:agency:probation");
	assert_int_equal(https_cert_uri(p_root, uri, sizeof(uri), err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "no-uri"));
	assert_int_equal(https_cert_uri(p_key, uri, sizeof(uri), err,
	    sizeof(err)), -1);
	assert_int_equal(https_cert_uri("/nonexistent", uri, sizeof(uri), err,
	    sizeof(err)), -1);
}

static void
test_default_paths(void **state)
{
	char key[64], rt[64];

	(void)state;
	assert_int_equal(https_default_paths("q/pki/norfolk/agency-police.crt",
	    key, sizeof(key), rt, sizeof(rt)), 0);
	assert_string_equal(key, "q/pki/norfolk/agency-police.key");
	assert_string_equal(rt, "q/pki/norfolk/../root.crt");
	assert_int_equal(https_default_paths("a.crt", key, sizeof(key), rt,
	    sizeof(rt)), 0);
	assert_string_equal(key, "a.key");
	assert_string_equal(rt, "../root.crt");
	assert_int_equal(https_default_paths("a.pem", key, sizeof(key), NULL,
	    0), -1);
	assert_int_equal(https_default_paths(".crt", key, sizeof(key), NULL,
	    0), -1);
	assert_int_equal(https_default_paths("a-very-long-name.crt", key, 8,
	    NULL, 0), -1);
}

/* --- visorctl push and get against the stand-in server ------------------ */

/* Run a shell command line; its stdout into out, its exit status back. */
static int
run(const char *cmd, buf_t *out)
{
	FILE *f;
	char chunk[4096];
	size_t n;
	int st;

	buf_init(out, 0);
	f = popen(cmd, "r");
	assert_non_null(f);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(buf_append(out, chunk, n), 0);
	st = pclose(f);
	assert_true(WIFEXITED(st));
	if (out->data == NULL)
		assert_int_equal(buf_puts(out, ""), 0);
	return WEXITSTATUS(st);
}

static void read_stderr(buf_t *b);

/* run, and on an unexpected status fail showing what the command said */
static void
run_expect(const char *cmd, buf_t *out, int want)
{
	buf_t e;
	int st = run(cmd, out);

	if (st != want) {
		buf_init(&e, 0);
		read_stderr(&e);
		fail_msg("%s\nexit %d, want %d\nstdout: %s\nstderr: %s", cmd, st,
		    want, out->data, e.data);
	}
}

static void
expect_in(const buf_t *b, const char *part)
{
	if (strstr(b->data, part) == NULL)
		fail_msg("'%s' not in:\n%s", part, b->data);
}

static void
read_stderr(buf_t *b)
{
	char path[128], *d;
	size_t n;

	tmp_path(path, sizeof(path), "stderr.txt");
	assert_int_equal(file_read_all(path, 1u << 20, &d, &n), 0);
	buf_free(b);
	buf_init(b, 0);
	assert_int_equal(buf_append(b, d, n), 0);
	assert_int_equal(buf_puts(b, ""), 0);
	free(d);
}

/* Put a copy of the CRL file src as crl.pem beside the client certificate
 * (where visorctl looks by default), or with src NULL remove it. */
static void
default_crl(const char *src)
{
	char path[128], *d;
	size_t n;

	tmp_path(path, sizeof(path), "crl.pem");
	if (src == NULL) {
		assert_int_equal(unlink(path), 0);
		return;
	}
	assert_int_equal(file_read_all(src, 1u << 20, &d, &n), 0);
	assert_int_equal(file_write_atomic(path, d, n, 0644), 0);
	free(d);
}

/* The visorctl command line for subcommand sub with the shared client
 * options, then rest; stderr to stderr.txt in the temporary folder. */
static void
ctl(char *cmd, size_t n, const server_t *s, const char *sub, const char *rest)
{
	const char *bin = getenv("VISOR_BIN");
	char errf[128];
	int w;

	tmp_path(errf, sizeof(errf), "stderr.txt");
	w = snprintf(cmd, n, "'%s/visorctl' %s --gateway https://127.0.0.1:%d "
	    "--cert %s --cacert %s --actor P1234 --purpose risk-management %s "
	    "2>%s", bin ? bin : "./bin", sub, s->port, p_cert, p_root, rest,
	    errf);
	assert_true(w > 0 && (size_t)w < n);
}

static void
test_visorctl_push_and_get(void **state)
{
	server_t *s;
	gen_t *g;
	buf_t recs, out;
	char jsonl[128], good[128], cmd[4096], args[2048], err[128];
	const char *src = getenv("VISOR_SRC");
	int rc;

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	/* The area CA's current CRL where visorctl looks by default. */
	default_crl(p_crl_ok);
	/* 12 generated records and two bad lines */
	g = gen_new("norfolk", 3, 12, NULL, err, sizeof(err));
	assert_non_null(g);
	buf_init(&recs, 0);
	while ((rc = gen_next(g, &recs)) == 1)
		;
	assert_int_equal(rc, 0);
	gen_free(g);
	assert_int_equal(buf_puts(&recs, "{\"id\":\"lower case\"}\n{oops\n"), 0);
	tmp_path(jsonl, sizeof(jsonl), "recs.jsonl");
	assert_int_equal(file_write_atomic(jsonl, recs.data, recs.len, 0600), 0);
	buf_free(&recs);
	tmp_path(good, sizeof(good), "good.jsonl");
	{
		static const char patches[] = "{\"id\":\"NFK-000001\",\"level\":2}"
		    "\n{\"id\":\"NFK-000002\",\"level\":3}\n";

		assert_int_equal(file_write_atomic(good, patches,
		    sizeof(patches) - 1, 0600), 0);
	}
#define CMD(sub, rest) ctl(cmd, sizeof(cmd), s, sub, rest)

	/* first run: 10 created, one refused, two bad lines, one 503
	 * retried, and one (NFK-000007) whose write was applied and its
	 * answer lost: its retry is answered as a replay of that write,
	 * which push cannot tell from an earlier run's, so it is counted
	 * apart, not as unchanged (before, it was) */
	snprintf(args, sizeof(args), "--jsonl %s --concurrency 4 --retries 3",
	    jsonl);
	CMD("push", args);
	run_expect(cmd, &out, 1);
	expect_in(&out, "push: 14 records: 10 sent (10 created, 0 replaced or "
	    "patched), 0 unchanged, 1 sent or unchanged (an answer lost, its "
	    "retry answered as a replay), 1 refused, 2 bad input\n");
	expect_in(&out, "  refused 422 schema: 1\n    line 3 NFK-000003: "
	    "addresses[0].postcode: not a postcode\n");
	read_stderr(&out);
	expect_in(&out, "line 13: \"id\" missing or not [A-Z0-9-]{3,64}");
	expect_in(&out, "line 14: ");
	buf_free(&out);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->failed_503, 2);
	assert_int_equal(s->lost_answers, 1);
	pthread_mutex_unlock(&s->mu);

	/* the same input again: the content-derived keys make it a replay,
	 * NFK-000007's too, now that no attempt of this run went unanswered */
	CMD("push", args);
	run_expect(cmd, &out, 1);
	expect_in(&out, "push: 14 records: 0 sent (0 created, 0 replaced or "
	    "patched), 11 unchanged, 1 refused, 2 bad input\n");
	buf_free(&out);

	/* merge patches from stdin: new keys, PATCH answered 200 */
	snprintf(args, sizeof(args), "--patch < %s", good);
	CMD("push", args);
	run_expect(cmd, &out, 0);
	expect_in(&out, "push: 2 records: 2 sent (0 created, 2 replaced or "
	    "patched), 0 unchanged, 0 refused, 0 bad input\n");
	buf_free(&out);

	/* CSV through the probation example mapping */
	snprintf(args, sizeof(args), "--csv %s/adapters/examples/probation.csv "
	    "--mapping %s/adapters/examples/probation-mapping.json",
	    src ? src : ".", src ? src : ".");
	CMD("push", args);
	run_expect(cmd, &out, 0);
	expect_in(&out, "push: 4 records: 4 sent (4 created");
	buf_free(&out);

	/* get prints the body; an error status is exit 1 with the message */
	CMD("get NFK-000001", "--justification 'MAPPA review'");
	run_expect(cmd, &out, 0);
	assert_string_equal(out.data, "{\"id\":\"NFK-000001\",\"purpose\":"
	    "\"risk-management\",\"justification\":\"MAPPA review\"}\n");
	buf_free(&out);
	CMD("get NFK-000404", "");
	run_expect(cmd, &out, 1);
	read_stderr(&out);
	expect_in(&out, "visorctl get: 404 not-found: no such record (request t4)");
	buf_free(&out);
	/* Nor does get show a gateway's answer as a control sequence or in
	 * another order: a record's strings, an error answer and an answer
	 * that is not JSON (refused). */
	CMD("get NFK-000666", "");
	run_expect(cmd, &out, 0);
	assert_string_equal(out.data, "{\"id\":\"NFK-000666\",\"name\":"
	    "\"\\u202edeifirev\\u009b2J\"}\n");
	buf_free(&out);
	CMD("get NFK-000667", "");
	run_expect(cmd, &out, 1);
	read_stderr(&out);
	expect_in(&out, "visorctl get: HTTP 403: \\x1b[2Jok\\u2066");
	buf_free(&out);
	CMD("get NFK-000668", "");
	run_expect(cmd, &out, 1);
	assert_int_equal(out.len, 0);
	read_stderr(&out);
	expect_in(&out, "visorctl get: the gateway's answer is not JSON");
	assert_null(memchr(out.data, 0x1b, out.len));
	buf_free(&out);
	snprintf(args, sizeof(args), "--gateway-id urn:visor:other:gateway "
	    "--crl %s", p_crl_ok);
	CMD("get NFK-000001", args);
	run_expect(cmd, &out, 1);
	read_stderr(&out);
	expect_in(&out, "is not the expected urn:visor:other:gateway");
	buf_free(&out);

	/* The area CA's CRL beside the certificate is taken by default: one
	 * that revokes the server refuses it (before, the revoked server was
	 * served), a current one without it lets the get through, and an
	 * explicit --crl takes its place. */
	default_crl(p_crl_revoked);
	CMD("get NFK-000001", "");
	run_expect(cmd, &out, 1);
	read_stderr(&out);
	expect_in(&out, "server certificate: revoked");
	buf_free(&out);
	snprintf(args, sizeof(args), "--crl %s", p_crl_ok);
	CMD("get NFK-000001", args);
	run_expect(cmd, &out, 0);
	buf_free(&out);
	default_crl(p_crl_ok);
	CMD("get NFK-000001", "");
	run_expect(cmd, &out, 0);
	buf_free(&out);
	/* No CRL at all: refused before connecting, saying where it looked
	 * and how to go on (before, the gateway was not checked at all and
	 * a revoked one served); --no-crl connects, saying so. */
	default_crl(NULL);
	CMD("get NFK-000001", "");
	run_expect(cmd, &out, 2);
	read_stderr(&out);
	expect_in(&out, "no CRL to check urn:visor:test:gateway against");
	expect_in(&out, "crl.pem: No such file or directory");
	expect_in(&out, "--crl FILE, or --no-crl");
	buf_free(&out);
	CMD("push", "--jsonl /dev/null");
	run_expect(cmd, &out, 2);
	read_stderr(&out);
	expect_in(&out, "no CRL to check");
	buf_free(&out);
	/* Another area's gateway: that area's CRL, in its own folder beside
	 * the certificate's (the quickstart layout), nothing of this one. */
	CMD("get NFK-000001", "--gateway-id urn:visor:other:gateway");
	run_expect(cmd, &out, 2);
	read_stderr(&out);
	expect_in(&out, "no CRL to check urn:visor:other:gateway against");
	expect_in(&out, "/../other/crl.pem");
	buf_free(&out);
	CMD("get NFK-000001", "--no-crl");
	run_expect(cmd, &out, 0);
	read_stderr(&out);
	expect_in(&out, "WARNING: --no-crl");
	buf_free(&out);
	snprintf(args, sizeof(args), "--no-crl --crl %s", p_crl_ok);
	CMD("get NFK-000001", args);
	run_expect(cmd, &out, 2);
	read_stderr(&out);
	expect_in(&out, "--crl and --no-crl exclude each other");
	buf_free(&out);
	default_crl(p_crl_revoked);
	CMD("get NFK-000001", "--no-crl");
	run_expect(cmd, &out, 0);	/* what --no-crl is documented to do */
	buf_free(&out);
	default_crl(NULL);

	/* usage errors are exit 2 */
	CMD("get lower", "");
	run_expect(cmd, &out, 2);
	buf_free(&out);
	CMD("push", "--purpose shopping");
	run_expect(cmd, &out, 2);
	buf_free(&out);
	CMD("push", "--csv x.csv");
	run_expect(cmd, &out, 2);
	buf_free(&out);
	CMD("push", "--concurrency 0");
	run_expect(cmd, &out, 2);
	buf_free(&out);
#undef CMD
	server_stop(s);
}

/* visorctl status and audit take the area CA's CRL beside the certificate
 * too: a revoked gateway certificate gets no request from them (before,
 * both connected).  A current CRL without it lets them through to the
 * stand-in server, which answers them nonsense.  With no CRL at all they
 * refuse to connect (before, they connected unchecked), unless --no-crl,
 * which also takes a revoked gateway, as documented. */
static void
test_status_audit_default_crl(void **state)
{
	server_t *s;
	buf_t out, vk;
	char cmd[2048], vkey[128], errf[128];
	const char *bin = getenv("VISOR_BIN");
	EVP_PKEY *k;
	note_signer_t *ns;
	int i;

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k);
	ns = note_signer_new("visor.test/audit", k);
	EVP_PKEY_free(k);
	assert_non_null(ns);
	buf_init(&vk, 0);
	assert_int_equal(note_signer_vkey(ns, &vk), 0);
	note_signer_free(ns);
	tmp_path(vkey, sizeof(vkey), "audit.vkey");
	assert_int_equal(file_write_atomic(vkey, vk.data, vk.len, 0644), 0);
	buf_free(&vk);
	tmp_path(errf, sizeof(errf), "stderr.txt");
	for (i = 0; i < 2; i++) {
		const char *sub = i == 0 ? "status" : "audit checkpoint --no-state";

		/* status takes no --vkey */
		snprintf(cmd, sizeof(cmd), "'%s/visorctl' %s --gateway "
		    "https://127.0.0.1:%d --cert %s --cacert %s%s%s 2>%s",
		    bin ? bin : "./bin", sub, s->port, p_cert, p_root,
		    i == 0 ? "" : " --vkey ", i == 0 ? "" : vkey, errf);
		default_crl(p_crl_revoked);
		assert_int_not_equal(run(cmd, &out), 0);
		read_stderr(&out);
		if (strstr(out.data, "server certificate: revoked") == NULL)
			fail_msg("%s: %s", sub, out.data);
		buf_free(&out);
		default_crl(p_crl_ok);
		(void)run(cmd, &out);
		read_stderr(&out);
		if (strstr(out.data, "revoked") != NULL)
			fail_msg("%s with a current CRL: %s", sub, out.data);
		buf_free(&out);
		default_crl(NULL);
		assert_int_equal(run(cmd, &out), 2);
		read_stderr(&out);
		if (strstr(out.data, "no CRL to check urn:visor:test:gateway "
		    "against") == NULL || strstr(out.data, "--no-crl") == NULL)
			fail_msg("%s without a CRL: %s", sub, out.data);
		buf_free(&out);
		default_crl(p_crl_revoked);
		snprintf(cmd, sizeof(cmd), "'%s/visorctl' %s --gateway "
		    "https://127.0.0.1:%d --cert %s --cacert %s%s%s --no-crl 2>%s",
		    bin ? bin : "./bin", sub, s->port, p_cert, p_root,
		    i == 0 ? "" : " --vkey ", i == 0 ? "" : vkey, errf);
		(void)run(cmd, &out);
		read_stderr(&out);
		if (strstr(out.data, "WARNING: --no-crl") == NULL ||
		    strstr(out.data, "revoked") == NULL ||
		    strstr(out.data, "server certificate: revoked") != NULL)
			fail_msg("%s --no-crl: %s", sub, out.data);
		buf_free(&out);
		default_crl(NULL);
	}
	server_stop(s);
}

/* visorctl status shows nothing of a gateway's answer as a control
 * sequence: in its report, with --json, nor in an error answer.  Before,
 * each was printed as it came.  Nor a bidirectional control (U+202E,
 * U+2066), which would have the terminal show the text after it in
 * another order ("deifirev" as "verified"). */
static void
test_status_displayable(void **state)
{
	server_t *s;
	buf_t out;
	char cmd[2048], errf[128];
	const char *bin = getenv("VISOR_BIN");
	int i;

	(void)state;
	s = server_start(&server, ca.cert, root.cert, 0);
	default_crl(p_crl_ok);
	tmp_path(errf, sizeof(errf), "stderr.txt");
	for (i = 0; i < 3; i++) {
		snprintf(cmd, sizeof(cmd), "'%s/visorctl' status --gateway "
		    "https://127.0.0.1:%d%s --cert %s --cacert %s%s 2>%s",
		    bin ? bin : "./bin", s->port, i == 2 ? "/x" : "", p_cert,
		    p_root,
		    i == 1 ? " --json" : "", errf);
		(void)run(cmd, &out);
		if (i == 2) {
			buf_free(&out);
			read_stderr(&out);
		}
		if (memchr(out.data, 0x1b, out.len) != NULL ||
		    memchr(out.data, '\r', out.len) != NULL ||
		    memchr(out.data, 0x07, out.len) != NULL ||
		    strstr(out.data, "\xc2\x9b") != NULL ||
		    strstr(out.data, "\xe2\x80\xae") != NULL ||
		    strstr(out.data, "\xe2\x81\xa6") != NULL)
			fail_msg("run %d printed a control character:\n%s", i,
			    out.data);
		expect_in(&out, i == 0 ? "nfk\\x1b[2J" : i == 1 ?
		    "nfk\\u001b[2J" : "\\x1b[2Jverified");
		expect_in(&out, i < 2 ? "31m\\u202e1.0" : "\\u2066deifirev");
		buf_free(&out);
	}
	default_crl(NULL);
	server_stop(s);
}

/* --- the load generator ------------------------------------------------------ */

static void
lg_next(void *ctx, unsigned slot, uint64_t k, loadgen_req_t *out)
{
	(void)slot;
	(void)k;
	out->method = "GET";
	out->path = ctx;
}

static void
expect_no_failures(const loadgen_result_t *r)
{
	if (r->failures != 0)
		fail_msg("failures: %s", r->first_error);
}

/* Options for a run against s with the test's client certificate;
 * base holds the URL. */
static void
lg_opts(server_t *s, loadgen_opts_t *o, char base[64], unsigned conns,
    double secs)
{
	memset(o, 0, sizeof(*o));
	snprintf(base, 64, "https://127.0.0.1:%d", s->port);
	o->base_url = base;
	o->cert = p_cert;
	o->key = p_key;
	o->cacert = p_root;
	o->connections = conns;
	o->duration_s = secs;
	o->next = lg_next;
}

static void
lg_run(server_t *s, const char *path, unsigned conns, double secs, int fresh,
    double late, loadgen_result_t *res)
{
	loadgen_opts_t o;
	char base[64], err[256];

	lg_opts(s, &o, base, conns, secs);
	o.new_connection = fresh;
	o.ctx = (void *)path;
	o.late_s = late;
	if (loadgen_run(&o, res, err, sizeof(err)) != 0)
		fail_msg("loadgen_run: %s", err);
}

/* Keep-alive: two connections carry every request; every answer counted.
 * The server trusts only the root, so the generator must send the area CA
 * after its certificate. */
static void
test_loadgen_keepalive(void **state)
{
	server_t *s = server_start(&server, ca.cert, root.cert, 0);
	loadgen_result_t r;

	(void)state;
	lg_run(s, "/x", 2, 0.3, 0, 0, &r);
	expect_no_failures(&r);
	assert_true(r.ok > 2);
	assert_int_equal(r.http_errors, 0);
	assert_true(r.p50_ms > 0 && r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms);
	assert_true(r.rps > 0 && r.cpu_s > 0);
	expect_served(s, 2, (int)r.ok);
	server_stop(s);
}

/* Requests k of a run with several threads: each k once, each slot
 * within the connections. */
typedef struct {
	pthread_mutex_t mu;
	unsigned char seen[1 << 16];
	unsigned slots_seen;	/* bit per slot */
	int dup, bad_slot;
} ks_t;

static void
lg_next_k(void *ctx, unsigned slot, uint64_t k, loadgen_req_t *out)
{
	ks_t *ks = ctx;

	pthread_mutex_lock(&ks->mu);
	if (slot >= 5)
		ks->bad_slot = 1;
	else
		ks->slots_seen |= 1u << slot;
	if (k < sizeof(ks->seen)) {
		if (ks->seen[k])
			ks->dup = 1;
		ks->seen[k] = 1;
	}
	pthread_mutex_unlock(&ks->mu);
	out->method = "GET";
	out->path = "/x";
}

/* Five connections on three event loops: every connection used and kept,
 * every request numbered once, every answer counted. */
static void
test_loadgen_threads(void **state)
{
	server_t *s = server_start(&server, ca.cert, root.cert, 0);
	loadgen_opts_t o;
	loadgen_result_t r;
	char base[64], err[256];
	ks_t *ks = calloc(1, sizeof(*ks));
	size_t i, n = 0;

	(void)state;
	assert_non_null(ks);
	pthread_mutex_init(&ks->mu, NULL);
	lg_opts(s, &o, base, 5, 0.3);
	o.threads = 3;
	o.next = lg_next_k;
	o.ctx = ks;
	if (loadgen_run(&o, &r, err, sizeof(err)) != 0)
		fail_msg("loadgen_run: %s", err);
	expect_no_failures(&r);
	assert_true(r.ok > 5);
	assert_int_equal(ks->dup, 0);
	assert_int_equal(ks->bad_slot, 0);
	assert_int_equal(ks->slots_seen, 0x1f);
	/* Every request that was built was sent and answered. */
	for (i = 0; i < sizeof(ks->seen); i++)
		n += ks->seen[i];
	assert_int_equal(n, r.ok);
	assert_true(r.cpu_s > 0 && r.elapsed_s >= 0.3);
	expect_served(s, 5, (int)r.ok);
	pthread_mutex_destroy(&ks->mu);
	free(ks);
	server_stop(s);
}

/* A new connection and a full handshake for every request. */
static void
test_loadgen_new_connection(void **state)
{
	server_t *s = server_start(&server, ca.cert, root.cert, 0);
	loadgen_result_t r;

	(void)state;
	lg_run(s, "/x", 1, 0.1, 1, 0, &r);
	expect_no_failures(&r);
	assert_true(r.ok > 0);
	expect_served(s, (int)r.ok, (int)r.ok);
	server_stop(s);
}

/* Answers outside 2xx are errors, not successes, and not in the latencies. */
static void
test_loadgen_http_errors(void **state)
{
	server_t *s = server_start(&server, ca.cert, root.cert, 0);
	loadgen_result_t r;

	(void)state;
	lg_run(s, "/status/503", 2, 0.2, 0, 0, &r);
	assert_int_equal(r.ok, 0);
	assert_int_equal(r.failures, 0);
	assert_true(r.http_errors > 0);
	assert_int_equal(r.first_error_status, 503);
	assert_true(r.p50_ms == 0 && r.p99_ms == 0);
	server_stop(s);
}

/* With expect_status, that status alone is served: the benchmark of
 * absent records counts its 404s, and a 200 there would be an error. */
static void
test_loadgen_expected_status(void **state)
{
	server_t *s = server_start(&server, ca.cert, root.cert, 0);
	loadgen_opts_t o;
	loadgen_result_t r;
	char base[64], err[256];

	(void)state;
	lg_opts(s, &o, base, 2, 0.2);
	o.expect_status = 503;
	o.ctx = (void *)"/status/503";
	if (loadgen_run(&o, &r, err, sizeof(err)) != 0)
		fail_msg("loadgen_run: %s", err);
	expect_no_failures(&r);
	assert_true(r.ok > 0);
	assert_int_equal(r.http_errors, 0);
	assert_true(r.p50_ms > 0);
	o.ctx = (void *)"/x";
	if (loadgen_run(&o, &r, err, sizeof(err)) != 0)
		fail_msg("loadgen_run: %s", err);
	expect_no_failures(&r);
	assert_int_equal(r.ok, 0);
	assert_true(r.http_errors > 0);
	assert_int_equal(r.first_error_status, 200);
	server_stop(s);
}

/* Requests have no timeout of their own: one still unanswered late_s
 * after the end fails, and the run ends instead of waiting. */
static void
test_loadgen_unanswered(void **state)
{
	server_t *s = server_start(&server, ca.cert, root.cert, 0);
	loadgen_result_t r;

	(void)state;
	lg_run(s, "/silent", 2, 0.1, 0, 0.3, &r);
	assert_int_equal(r.ok, 0);
	assert_int_equal(r.failures, 2);
	assert_non_null(strstr(r.first_error, "no answer 0.3 s after the end"));
	/* The run waited for the late limit, and no longer. */
	assert_true(r.elapsed_s >= 0.4 && r.elapsed_s < 5);
	server_stop(s);
}

/* A server the generator does not trust: every attempt fails. */
static void
test_loadgen_untrusted_server(void **state)
{
	server_t *s = server_start(&other_server, other_ca.cert, root.cert, 0);
	loadgen_result_t r;

	(void)state;
	lg_run(s, "/x", 1, 0.1, 0, 0, &r);
	assert_int_equal(r.ok, 0);
	assert_true(r.failures > 0);
	pthread_mutex_lock(&s->mu);
	assert_int_equal(s->requests, 0);
	pthread_mutex_unlock(&s->mu);
	server_stop(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_ok_and_keepalive),
		cmocka_unit_test(test_connection_max_age),
		cmocka_unit_test(test_not_used_past_expiry),
		cmocka_unit_test(test_not_used_past_crl),
		cmocka_unit_test(test_client_pem_pair),
		cmocka_unit_test(test_renewed_server_reached),
		cmocka_unit_test(test_any_gateway_when_no_expectation),
		cmocka_unit_test(test_client_keeps_checked_files),
		cmocka_unit_test(test_wrong_identity_fails),
		cmocka_unit_test(test_server_without_uri_fails),
		cmocka_unit_test(test_server_not_a_gateway_fails),
		cmocka_unit_test(test_server_eku_and_ca_checked),
		cmocka_unit_test(test_server_area_mismatch_fails),
		cmocka_unit_test(test_other_root_fails),
		cmocka_unit_test(test_tls12_server_fails),
		cmocka_unit_test(test_crl),
		cmocka_unit_test(test_two_crls),
		cmocka_unit_test(test_crl_file_several),
		cmocka_unit_test(test_response_bound),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_new_errors),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_batch_identity_failure),
		cmocka_unit_test(test_batch_stop_when),
		cmocka_unit_test(test_batch_sent),
		cmocka_unit_test(test_cert_uri),
		cmocka_unit_test(test_visorctl_push_and_get),
		cmocka_unit_test(test_default_paths),
		cmocka_unit_test(test_status_audit_default_crl),
		cmocka_unit_test(test_status_displayable),
		cmocka_unit_test(test_loadgen_keepalive),
		cmocka_unit_test(test_loadgen_threads),
		cmocka_unit_test(test_loadgen_new_connection),
		cmocka_unit_test(test_loadgen_http_errors),
		cmocka_unit_test(test_loadgen_expected_status),
		cmocka_unit_test(test_loadgen_unanswered),
		cmocka_unit_test(test_loadgen_untrusted_server),
	};

	return cmocka_run_group_tests_name("https_client", tests, setup,
	    teardown);
}
