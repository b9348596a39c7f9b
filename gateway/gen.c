#include "gateway/gen.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keyfile.h"
#include "crypto/membio.h"
#include "util/fileio.h"
#include "util/log.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#define POLICY_MAX_SIZE (4 << 20)

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint_fast64_t gen_next_id = 1;
static gw_gen_t *gen_current;

gw_gen_t *
gw_gen_load(const char *config_path, config_t *cfg, tls_refused_fn refused,
    char *err, size_t errlen)
{
	gw_gen_t *g;
	char *text = NULL;
	size_t len;
	char perr[512];

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		snprintf(err, errlen, "out of memory");
		config_free(cfg);
		return NULL;
	}
	atomic_init(&g->refs, 1);
	g->id = atomic_fetch_add(&gen_next_id, 1);
	if (cfg == NULL && (cfg = config_load(config_path, err, errlen)) == NULL)
		goto fail;
	g->cfg = cfg;
	if ((g->tls = tls_context_load(cfg, refused, err, errlen)) == NULL)
		goto fail;
	if (file_read_all(cfg->policy, POLICY_MAX_SIZE, &text, &len) < 0) {
		snprintf(err, errlen, "policy: %s: %s", cfg->policy,
		    errno == EINVAL ? "not a regular file" : strerror(errno));
		goto fail;
	}
	if ((g->policy = policy_load(text, len, perr, sizeof(perr))) == NULL) {
		snprintf(err, errlen, "policy: %s: %s", cfg->policy, perr);
		goto fail;
	}
	snprintf(g->policy_hash, sizeof(g->policy_hash), "%s",
	    policy_hash_hex(g->policy));
	free(text);
	text = NULL;
	if ((g->sign_key = keyfile_load_private(cfg->tls_key, perr,
	    sizeof(perr))) == NULL) {
		snprintf(err, errlen, "tls.key: %s", perr);
		goto fail;
	}
	if (file_read_all(cfg->tls_cert, 1 << 20, &g->cert_pem, &len) < 0) {
		snprintf(err, errlen, "tls.cert: %s: %s", cfg->tls_cert, strerror(errno));
		goto fail;
	}
	{
		BIO *bio = BIO_new_mem_buf(g->cert_pem, (int)len);
		g->cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
	}
	if (g->cert == NULL) {
		snprintf(err, errlen, "tls.cert: not a PEM certificate");
		goto fail;
	}
	/* Read apart from the TLS context's copy: a key and certificate
	 * replaced one after the other around a reload must not make the
	 * gateway sign transfers with one and attach the other. */
	if (X509_check_private_key(g->cert, g->sign_key) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "tls.key does not match tls.cert");
		goto fail;
	}
	return g;
fail:
	free(text);
	gw_gen_unref(g);
	return NULL;
}

static void
lint_log(void *arg, const char *id, const char *why)
{
	log_event(LOG_WARN, "policy-lint", "rule", id, "policy",
	    (const char *)arg, "warning", why, NULL);
}

size_t
gw_gen_log_policy_lint(const gw_gen_t *g)
{
	return policy_lint(g->policy, lint_log, g->cfg->policy);
}

void
gw_gen_ref(gw_gen_t *g)
{
	atomic_fetch_add(&g->refs, 1);
}

void
gw_gen_unref(gw_gen_t *g)
{
	if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	policy_free(g->policy);
	EVP_PKEY_free(g->sign_key);
	X509_free(g->cert);
	free(g->cert_pem);
	tls_context_unref(g->tls);
	config_free(g->cfg);
	free(g);
}

int
gw_gen_key_pem(const gw_gen_t *g, char **pem, size_t *len)
{
	BIO *bio;
	int rc = -1;

	*pem = NULL;
	*len = 0;
	/* Secure memory: the BIO's buffer is wiped when freed. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL)
		return -1;
	if (PEM_write_bio_PrivateKey(bio, g->sign_key, NULL, NULL, 0, NULL,
	    NULL) == 1 && membio_text(bio, pem, len) == 0)
		rc = 0;
	ERR_clear_error();
	BIO_free(bio);
	return rc;
}

gw_gen_t *
gw_gen_current(void)
{
	gw_gen_t *g;

	pthread_mutex_lock(&gen_lock);
	g = gen_current;
	if (g != NULL)
		gw_gen_ref(g);
	pthread_mutex_unlock(&gen_lock);
	return g;
}

void
gw_gen_install(gw_gen_t *g)
{
	gw_gen_t *old;

	pthread_mutex_lock(&gen_lock);
	old = gen_current;
	gen_current = g;
	pthread_mutex_unlock(&gen_lock);
	gw_gen_unref(old);
}
