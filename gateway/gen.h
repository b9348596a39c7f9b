/*
 * gen: one generation of reloadable state (configuration, TLS context,
 * policy).  A request holds a reference to the generation it started with,
 * so a SIGHUP reload never changes the rules under a request.
 */
#ifndef GATEWAY_GEN_H
#define GATEWAY_GEN_H

#include <stdatomic.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gateway/config.h"
#include "gateway/tls_context.h"
#include "policy/policy.h"

typedef struct gw_gen {
	atomic_int refs;
	uint64_t id;		/* 1, 2, ...: load order, never reused */
	config_t *cfg;
	tls_context_t *tls;
	policy_t *policy;
	char policy_hash[65];
	EVP_PKEY *sign_key;	/* the gateway certificate's key: transfer
				   signatures and receipts */
	char *cert_pem;		/* the gateway certificate, PEM */
	X509 *cert;
} gw_gen_t;

/* Load a new generation: configuration file, TLS context, policy.  Returns
 * NULL with err (nothing changed) on any failure. */
gw_gen_t *gw_gen_load(const char *config_path, config_t *cfg_or_null,
    tls_refused_fn refused, char *err, size_t errlen);

/* One warn line (event=policy-lint rule=<id> policy=<file> warning=...)
 * for each rule of g's policy that loads but does not do what it reads as
 * (policy_lint): said, not refused, as visorctl policy check says it.
 * Returns how many. */
size_t gw_gen_log_policy_lint(const gw_gen_t *g);

void gw_gen_ref(gw_gen_t *g);
void gw_gen_unref(gw_gen_t *g);

/* The generation's key as unencrypted PEM (*pem, *len; NUL-terminated), to
 * hand to a TLS client with the certificate cert_pem: the pair loaded and
 * checked together, whatever the files say by now.  The caller wipes
 * (OPENSSL_cleanse) and frees *pem.  0, or -1. */
int gw_gen_key_pem(const gw_gen_t *g, char **pem, size_t *len);

/* The current generation, with a reference taken (release with unref). */
gw_gen_t *gw_gen_current(void);

/* Make g current (the reference passes); the previous one is released. */
void gw_gen_install(gw_gen_t *g);

#endif
