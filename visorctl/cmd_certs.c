/*
 * visorctl certs: the PKI operations of SPEC section 3 one at a time, for
 * real deployments (quickstart does them all at once for local use).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "certs/pki.h"
#include "util/buf.h"
#include "visorctl/commands.h"

#define CERTS_NAMES_MAX 16

static const char certs_usage[] =
    "usage: visorctl certs <subcommand> [options]\n"
    "\n"
    "  new-root DIR [--days N]\n"
    "      create the national root: DIR/root.crt and DIR/root.key (0600)\n"
    "  new-area-ca --root-dir DIR --area AREA --out DIR [--days N]\n"
    "      create an area CA signed by the root: ca.crt, ca.key (0600) and an\n"
    "      empty crl.pem in the --out folder\n"
    "  issue --ca-dir DIR --identity URI --out PREFIX [--days N] [--server]\n"
    "        [--dns NAME]... [--ip ADDR]...\n"
    "      issue PREFIX.crt (certificate and area CA) and PREFIX.key (0600)\n"
    "      for a gateway, agency or auditor identity of the CA's area;\n"
    "      gateways get serverAuth and clientAuth, others clientAuth (--server\n"
    "      adds serverAuth); --dns/--ip add names for TLS host checks\n"
    "  revoke --ca-dir DIR CERT [--reason R]\n"
    "      add CERT to DIR/crl.pem (R: unspecified, key-compromise,\n"
    "      affiliation-changed, superseded, cessation-of-operation); send the\n"
    "      gateways SIGHUP to apply it\n"
    "  renew --ca-dir DIR CERT [--new-key] [--days N]\n"
    "      replace CERT (a .crt file) with a new certificate for the same\n"
    "      identity; --new-key also replaces the .key beside it\n"
    "  crl --ca-dir DIR [--days N]\n"
    "      re-sign DIR/crl.pem with a fresh nextUpdate (default 30 days)\n"
    "  show CERT\n"
    "      identity, serial, validity, EKU, names and SHA-256 fingerprint\n";

/* Options shared by the subcommands; unused ones stay NULL or 0. */
struct certs_args {
	const char *root_dir, *ca_dir, *area, *out, *identity, *reason;
	const char *pos[2];
	int n_pos;
	int days, server, new_key;
	const char *dns[CERTS_NAMES_MAX], *ips[CERTS_NAMES_MAX];
	size_t n_dns, n_ips;
};

static int
parse_days(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > PKI_DAYS_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

/* 1 if o is one of the space-separated words of allowed. */
static int
option_allowed(const char *allowed, const char *o)
{
	size_t n = strlen(o);
	const char *p = allowed;

	while ((p = strstr(p, o)) != NULL) {
		if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

/* Parse argv[1..] (argv[0] is the subcommand).  allowed lists the options
 * this subcommand takes.  0, or 2 after printing the problem. */
static int
parse_args(int argc, char **argv, const char *allowed, int max_pos,
    struct certs_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char **slot = NULL;

		if (strncmp(o, "--", 2) != 0 || strcmp(o, "--") == 0) {
			if (a->n_pos == max_pos) {
				fprintf(stderr, "visorctl certs %s: unexpected argument '%s'\n",
				    argv[0], o);
				return 2;
			}
			a->pos[a->n_pos++] = o;
			continue;
		}
		if (!option_allowed(allowed, o)) {
			fprintf(stderr, "visorctl certs %s: unknown option '%s'\n", argv[0], o);
			return 2;
		}
		if (strcmp(o, "--server") == 0) {
			a->server = 1;
			continue;
		}
		if (strcmp(o, "--new-key") == 0) {
			a->new_key = 1;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "visorctl certs %s: %s needs a value\n", argv[0], o);
			return 2;
		}
		if (strcmp(o, "--days") == 0) {
			if (parse_days(argv[++i], &a->days) < 0) {
				fprintf(stderr, "visorctl certs %s: --days must be 1..%d\n",
				    argv[0], PKI_DAYS_MAX);
				return 2;
			}
			continue;
		}
		if (strcmp(o, "--dns") == 0 || strcmp(o, "--ip") == 0) {
			int dns = o[2] == 'd';
			size_t *n = dns ? &a->n_dns : &a->n_ips;
			if (*n == CERTS_NAMES_MAX) {
				fprintf(stderr, "visorctl certs %s: at most %d %s names\n",
				    argv[0], CERTS_NAMES_MAX, o);
				return 2;
			}
			(dns ? a->dns : a->ips)[(*n)++] = argv[++i];
			continue;
		}
		if (strcmp(o, "--root-dir") == 0)
			slot = &a->root_dir;
		else if (strcmp(o, "--ca-dir") == 0)
			slot = &a->ca_dir;
		else if (strcmp(o, "--area") == 0)
			slot = &a->area;
		else if (strcmp(o, "--out") == 0)
			slot = &a->out;
		else if (strcmp(o, "--identity") == 0)
			slot = &a->identity;
		else if (strcmp(o, "--reason") == 0)
			slot = &a->reason;
		if (slot == NULL) {
			fprintf(stderr, "visorctl certs %s: unknown option '%s'\n", argv[0], o);
			return 2;
		}
		*slot = argv[++i];
	}
	return 0;
}

static int
need(const char *sub, const char *value, const char *what)
{
	if (value == NULL || value[0] == '\0') {
		fprintf(stderr, "visorctl certs %s: %s is required "
		    "(visorctl certs --help)\n", sub, what);
		return -1;
	}
	return 0;
}

static int
failed(const char *sub, const char *err)
{
	fprintf(stderr, "visorctl certs %s: %s\n", sub, err);
	return 1;
}

static int
certs_new_root(int argc, char **argv)
{
	struct certs_args a;
	char err[512];
	int rc;

	if ((rc = parse_args(argc, argv, "--days", 1, &a)) != 0)
		return rc;
	if (need(argv[0], a.pos[0], "DIR") < 0)
		return 2;
	if (pki_root_create(a.pos[0], a.days, err, sizeof(err)) < 0)
		return failed(argv[0], err);
	printf("national root created: %s/root.crt (key %s/root.key, mode 0600; "
	    "keep it offline)\n", a.pos[0], a.pos[0]);
	return 0;
}

static int
certs_new_area_ca(int argc, char **argv)
{
	struct certs_args a;
	char err[512];
	int rc;

	if ((rc = parse_args(argc, argv, "--root-dir --area --out --days", 0, &a)) != 0)
		return rc;
	if (need(argv[0], a.root_dir, "--root-dir") < 0 ||
	    need(argv[0], a.area, "--area") < 0 || need(argv[0], a.out, "--out") < 0)
		return 2;
	if (pki_area_ca_create(a.root_dir, a.area, a.out, a.days, err, sizeof(err)) < 0)
		return failed(argv[0], err);
	printf("area CA urn:visor:%s:ca created in %s (ca.crt, ca.key, crl.pem)\n",
	    a.area, a.out);
	return 0;
}

static int
certs_issue(int argc, char **argv)
{
	struct certs_args a;
	pki_leaf_opts_t o;
	char err[512];
	int rc;

	if ((rc = parse_args(argc, argv,
	    "--ca-dir --identity --out --days --server --dns --ip", 0, &a)) != 0)
		return rc;
	if (need(argv[0], a.ca_dir, "--ca-dir") < 0 ||
	    need(argv[0], a.identity, "--identity") < 0 ||
	    need(argv[0], a.out, "--out") < 0)
		return 2;
	memset(&o, 0, sizeof(o));
	o.days = a.days;
	o.server = a.server;
	o.dns = a.dns;
	o.n_dns = a.n_dns;
	o.ips = a.ips;
	o.n_ips = a.n_ips;
	if (pki_issue(a.ca_dir, a.identity, a.out, &o, err, sizeof(err)) < 0)
		return failed(argv[0], err);
	printf("issued %s: %s.crt, %s.key (mode 0600)\n", a.identity, a.out, a.out);
	return 0;
}

static int
certs_revoke(int argc, char **argv)
{
	struct certs_args a;
	char err[512];
	int rc, reason = PKI_REASON_UNSPECIFIED;

	if ((rc = parse_args(argc, argv, "--ca-dir --reason", 1, &a)) != 0)
		return rc;
	if (need(argv[0], a.ca_dir, "--ca-dir") < 0 || need(argv[0], a.pos[0], "CERT") < 0)
		return 2;
	if (a.reason != NULL && (reason = pki_reason_from_name(a.reason)) < 0) {
		fprintf(stderr, "visorctl certs revoke: unknown reason '%s' (unspecified, "
		    "key-compromise, affiliation-changed, superseded, "
		    "cessation-of-operation)\n", a.reason);
		return 2;
	}
	if (pki_revoke(a.ca_dir, a.pos[0], reason, err, sizeof(err)) < 0)
		return failed(argv[0], err);
	printf("revoked %s (%s); %s/crl.pem updated.  Send SIGHUP to every gateway "
	    "to apply it.\n", a.pos[0], pki_reason_name(reason), a.ca_dir);
	return 0;
}

static int
certs_renew(int argc, char **argv)
{
	struct certs_args a;
	char err[512], old[4200];
	int rc;

	if ((rc = parse_args(argc, argv, "--ca-dir --new-key --days", 1, &a)) != 0)
		return rc;
	if (need(argv[0], a.ca_dir, "--ca-dir") < 0 || need(argv[0], a.pos[0], "CERT") < 0)
		return 2;
	if (pki_renew(a.ca_dir, a.pos[0], a.new_key, a.days, old, sizeof(old), err,
	    sizeof(err)) < 0)
		return failed(argv[0], err);
	printf("renewed %s%s; the old certificate stays valid until it expires or "
	    "is revoked, and is kept in %s (to revoke it: visorctl certs revoke "
	    "--ca-dir %s %s)\n", a.pos[0], a.new_key ? " with a new key" : "",
	    old, a.ca_dir, old);
	return 0;
}

static int
certs_crl(int argc, char **argv)
{
	struct certs_args a;
	char err[512];
	int rc;

	if ((rc = parse_args(argc, argv, "--ca-dir --days", 0, &a)) != 0)
		return rc;
	if (need(argv[0], a.ca_dir, "--ca-dir") < 0)
		return 2;
	if (pki_crl_refresh(a.ca_dir, a.days, err, sizeof(err)) < 0)
		return failed(argv[0], err);
	printf("%s/crl.pem re-signed; send SIGHUP to every gateway\n", a.ca_dir);
	return 0;
}

static int
certs_show(int argc, char **argv)
{
	struct certs_args a;
	buf_t b = BUF_INIT;
	char err[512];
	X509 *x;
	int rc;

	if ((rc = parse_args(argc, argv, "", 1, &a)) != 0)
		return rc;
	if (need(argv[0], a.pos[0], "CERT") < 0)
		return 2;
	if ((x = pki_load_cert(a.pos[0], err, sizeof(err))) == NULL)
		return failed(argv[0], err);
	rc = pki_describe(x, &b);
	X509_free(x);
	if (rc < 0) {
		buf_free(&b);
		return failed(argv[0], "cannot describe the certificate");
	}
	fputs(b.data, stdout);
	buf_free(&b);
	return 0;
}

int
cmd_certs(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = {
		{ "new-root", certs_new_root },
		{ "new-area-ca", certs_new_area_ca },
		{ "issue", certs_issue },
		{ "revoke", certs_revoke },
		{ "renew", certs_renew },
		{ "crl", certs_crl },
		{ "show", certs_show },
	};
	size_t i;
	int j;

	if (argc < 2) {
		fputs(certs_usage, stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(certs_usage, stdout);
		return 0;
	}
	for (j = 2; j < argc; j++)
		if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
			fputs(certs_usage, stdout);
			return 0;
		}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "visorctl certs: unknown subcommand '%s'\n\n", argv[1]);
	fputs(certs_usage, stderr);
	return 2;
}
