/*
 * visorctl status: a running gateway's health in plain words, from
 * GET /v1/status (docs/SPEC-NOTES.md), with an auditor or police certificate
 * of the gateway's area.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "client/https_client.h"
#include "util/buf.h"
#include "util/json.h"
#include "visorctl/cli_client.h"
#include "visorctl/commands.h"

#define STATUS_MAX_BODY (1 << 20)

static const char status_usage[] =
    "usage: visorctl status --gateway URL --cert FILE [--key FILE]\n"
    "                       [--cacert FILE] [--crl FILE... | --no-crl]\n"
    "                       [--warn-days N]\n"
    "                       [--checkpoint-warn-s N] [--json]\n"
    "\n"
    "Ask a gateway (https://host:port) for its status with an auditor or\n"
    "police certificate of its area: version, uptime, audit log size and\n"
    "last checkpoint, certificate and CRL expiry, and per peer the outbox\n"
    "and the last delivery.  Problems are listed as warnings in plain words.\n"
    "--key defaults to the certificate's name with .key, --cacert to\n"
    "root.crt one folder above it (the quickstart layout).  The gateway's\n"
    "certificate is checked against its area CA's CRL: --crl FILE\n"
    "(repeatable), by default crl.pem beside the certificate; without one\n"
    "status refuses to connect, unless --no-crl (a revoked gateway is then\n"
    "accepted).  --warn-days\n"
    "(default 30) is how early to warn of certificate expiry (CRLs: 7 days);\n"
    "--checkpoint-warn-s (default 30) how long entries may wait for a signed\n"
    "checkpoint.  --json prints the gateway's answer as it is.\n"
    "Exit status: 0 healthy, 1 warnings, 2 bad usage, 3 no answer or refused.\n";

typedef struct {
	buf_t text;
	int n;
} warnings_t;

static void
warn(warnings_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
warn(warnings_t *w, const char *fmt, ...)
{
	va_list ap;

	buf_puts(&w->text, "  - ");
	va_start(ap, fmt);
	buf_vprintf(&w->text, fmt, ap);
	va_end(ap);
	buf_puts(&w->text, "\n");
	w->n++;
}

/* A number member, or def if absent or not a number. */
static double
num(const cJSON *o, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : def;
}

/*
 * Every string of the gateway's answer made displayable (cli_displayable)
 * before anything of it is printed: a gateway's area, version, peer URL or
 * delivery error could otherwise move the cursor or redraw the operator's
 * terminal.  0 or -1 (out of memory).
 */
static int
displayable_tree(cJSON *n)
{
	cJSON *c;
	char *shown;
	size_t cap;

	if (cJSON_IsString(n) && n->valuestring != NULL) {
		cap = 6 * strlen(n->valuestring) + 1;
		if ((shown = malloc(cap)) == NULL)
			return -1;
		cli_displayable(n->valuestring, shown, cap);
		if (strcmp(shown, n->valuestring) != 0 &&
		    cJSON_SetValuestring(n, shown) == NULL) {
			free(shown);
			return -1;
		}
		free(shown);
		return 0;
	}
	for (c = n->child; c != NULL; c = c->next)
		if (displayable_tree(c) < 0)
			return -1;
	return 0;
}

static const char *
str(const cJSON *o, const char *key, const char *def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : def;
}

static void
print_duration(double s)
{
	long long t = (long long)s;

	if (t >= 86400)
		printf("%lld d %lld h", t / 86400, (t % 86400) / 3600);
	else if (t >= 3600)
		printf("%lld h %lld min", t / 3600, (t % 3600) / 60);
	else if (t >= 60)
		printf("%lld min %lld s", t / 60, t % 60);
	else
		printf("%lld s", t);
}

static const char *
role_words(const char *role)
{
	if (strcmp(role, "gateway") == 0)
		return "the gateway certificate";
	if (strcmp(role, "root") == 0)
		return "the national root certificate";
	if (strcmp(role, "ca") == 0)
		return "the area CA certificate";
	return "the file";
}

static void
check_files(const cJSON *root, long warn_days, warnings_t *w)
{
	const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files"), *f;
	double d;

	cJSON_ArrayForEach(f, files) {
		const char *role = str(f, "role", "?"), *file = str(f, "file", "?");
		int crl = strcmp(role, "crl") == 0;

		d = num(f, "expiry_days", NAN);
		if (isnan(d)) {
			warn(w, "%s %s could not be read for its expiry",
			    crl ? "the CRL" : role_words(role), file);
			continue;
		}
		if (crl && d < 0)
			warn(w, "the CRL %s is out of date: clients of its CA are "
			    "refused; re-sign it (visorctl certs crl) and reload",
			    file);
		else if (crl && d < 7)
			warn(w, "the CRL %s must be re-signed within %.0f days "
			    "(visorctl certs crl), or clients of its CA will be "
			    "refused", file, d);
		else if (!crl && d < 0)
			warn(w, "%s %s has expired", role_words(role), file);
		else if (!crl && d < warn_days)
			warn(w, "%s expires in %.0f days (%s)", role_words(role), d,
			    file);
	}
}

static void
check_peers(const cJSON *root, warnings_t *w)
{
	const cJSON *peers = cJSON_GetObjectItemCaseSensitive(root, "peers"), *p;

	printf("peers:\n");
	if (cJSON_GetArraySize(peers) == 0)
		printf("  (none configured)\n");
	cJSON_ArrayForEach(p, peers) {
		const char *area = str(p, "area", "?"), *last;
		double depth = num(p, "outbox_depth", 0);
		double oldest = num(p, "oldest_s", 0);
		double ago = num(p, "last_attempt_s", -1);

		last = str(p, "last_delivery", "none");
		printf("  %-14s %s  outbox %.0f", area, str(p, "url", "?"), depth);
		if (depth > 0) {
			printf(" (oldest ");
			print_duration(oldest);
			printf(")");
		}
		printf("  last delivery: %s", last);
		if (ago >= 0) {
			printf(", ");
			print_duration(ago);
			printf(" ago");
		}
		printf("\n");
		if (strcmp(last, "error") == 0)
			warn(w, "peer %s unreachable: %s (%.0f transfers waiting)",
			    area, str(p, "last_error", "delivery failed"), depth);
		else if (strcmp(last, "rejected") == 0)
			warn(w, "peer %s rejected the last transfer (%s)", area,
			    str(p, "last_error", "4xx"));
		if (depth > 0 && oldest > 300)
			warn(w, "%.0f transfers to %s are waiting, the oldest for "
			    "%.0f s", depth, area, oldest);
	}
}

static int
report(const cJSON *root, long warn_days, long ckpt_warn_s)
{
	warnings_t w;
	double size = num(root, "audit_size", 0);
	double cps = num(root, "checkpoint_size", size);
	double age = num(root, "checkpoint_age_s", -1);
	double uptime = num(root, "uptime_s", 0);
	double cert = num(root, "certificate_expiry_days", NAN);
	double crl = num(root, "crl_expiry_days", NAN);

	memset(&w, 0, sizeof(w));
	printf("gateway:    %s, version %s, up ", str(root, "area", "?"),
	    str(root, "version", "?"));
	print_duration(uptime);
	printf("\naudit log:  %.0f entries; last checkpoint covers %.0f", size, cps);
	if (age >= 0) {
		printf(", signed ");
		print_duration(age);
		printf(" ago\n");
	} else {
		printf(" (none signed since start)\n");
	}
	printf("expiry:     gateway certificate in %.0f days, earliest CRL in "
	    "%.0f days\n", cert, crl);
	/* A quiet log needs no new checkpoint: only unsigned entries count. */
	if (size > cps) {
		double waited = age >= 0 ? age : uptime;

		if (waited > ckpt_warn_s)
			warn(&w, "no checkpoint signed for %.0f s while %.0f audit "
			    "entries wait for one (is the disk full or failing?)",
			    waited, size - cps);
	}
	if (isnan(cert))
		warn(&w, "the gateway certificate expiry is unknown");
	else if (cert < 0)
		warn(&w, "the gateway certificate has expired");
	else if (cert < warn_days)
		warn(&w, "the gateway certificate expires in %.0f days (renew it: "
		    "visorctl certs renew, then reload)", cert);
	check_files(root, warn_days, &w);
	check_peers(root, &w);
	if (w.n == 0) {
		printf("no warnings\n");
	} else {
		printf("warnings:\n%s", w.text.data);
	}
	buf_free(&w.text);
	return w.n == 0 ? 0 : 1;
}

static int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
cmd_status(int argc, char **argv)
{
	const char *url = NULL, *cert = NULL, *key = NULL, *cacert = NULL;
	char keybuf[4096], rootbuf[4096], full[1200], err[512];
	char gwid[IDENTITY_URI_MAX], crlbuf[CLI_PATH_MAX];
	const char *crls[CLI_CRLS_MAX];
	size_t n_crls = 0;
	identity_t id;
	long warn_days = 30, ckpt_warn = 30;
	https_client_options_t opt;
	https_response_t resp;
	https_client_t *c;
	cJSON *root;
	int i, json = 0, no_crl = 0, rc = 3;
	size_t n;

	for (i = 1; i < argc; i++) {
		const char *o = argv[i];

		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			fputs(status_usage, stdout);
			return 0;
		} else if (strcmp(o, "--json") == 0) {
			json = 1;
		} else if (strcmp(o, "--no-crl") == 0) {
			no_crl = 1;
		} else if (i + 1 >= argc) {
			fprintf(stderr, "visorctl status: unknown option or missing "
			    "value: '%s'\n", o);
			return 2;
		} else if (strcmp(o, "--gateway") == 0) {
			url = argv[++i];
		} else if (strcmp(o, "--cert") == 0) {
			cert = argv[++i];
		} else if (strcmp(o, "--key") == 0) {
			key = argv[++i];
		} else if (strcmp(o, "--cacert") == 0) {
			cacert = argv[++i];
		} else if (strcmp(o, "--crl") == 0) {
			if (n_crls == CLI_CRLS_MAX) {
				fprintf(stderr, "visorctl status: at most %d --crl\n",
				    CLI_CRLS_MAX);
				return 2;
			}
			crls[n_crls++] = argv[++i];
		} else if (strcmp(o, "--warn-days") == 0) {
			if (parse_long(argv[++i], 0, 3650, &warn_days) < 0) {
				fprintf(stderr, "visorctl status: --warn-days must be "
				    "0..3650\n");
				return 2;
			}
		} else if (strcmp(o, "--checkpoint-warn-s") == 0) {
			if (parse_long(argv[++i], 1, 86400, &ckpt_warn) < 0) {
				fprintf(stderr, "visorctl status: --checkpoint-warn-s "
				    "must be 1..86400\n");
				return 2;
			}
		} else {
			fprintf(stderr, "visorctl status: unknown option '%s'\n", o);
			return 2;
		}
	}
	if (url == NULL || cert == NULL) {
		fputs(status_usage, stderr);
		return 2;
	}
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (strncmp(url, "https://", 8) != 0 || n <= 8 || n > 1000) {
		fprintf(stderr, "visorctl status: --gateway must be an https:// URL\n");
		return 2;
	}
	snprintf(full, sizeof(full), "%.*s/v1/status", (int)n, url);
	if ((key == NULL || cacert == NULL) &&
	    https_default_paths(cert, key ? NULL : keybuf, sizeof(keybuf),
	    cacert ? NULL : rootbuf, sizeof(rootbuf)) < 0) {
		fprintf(stderr, "visorctl status: give --key and --cacert (the "
		    "certificate name does not end in .crt)\n");
		return 2;
	}
	if (https_global_init() < 0) {
		fprintf(stderr, "visorctl status: libcurl initialisation failed\n");
		return 3;
	}
	/* The gateway of the certificate's area, as every other command
	 * expects: status is read from no one else. */
	if (cli_cert_identity(cert, &id, err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl status: %s: %s\n", cert, err);
		return 2;
	}
	snprintf(gwid, sizeof(gwid), "urn:visor:%s:gateway", id.area);
	/* Its area CA's CRL, given or beside the certificate, or --no-crl
	 * said out loud: never silently no revocation check. */
	switch (cli_crl_choice(cert, gwid, no_crl, n_crls, crlbuf,
	    sizeof(crlbuf), "visorctl status")) {
	case -1:
		return 2;
	case 1:
		crls[n_crls++] = crlbuf;
		break;
	default:
		break;
	}
	memset(&opt, 0, sizeof(opt));
	opt.cert = cert;
	opt.key = key ? key : keybuf;
	opt.root = cacert ? cacert : rootbuf;
	opt.expect_identity = gwid;
	opt.timeout_ms = 15000;
	opt.max_response = STATUS_MAX_BODY;
	opt.crls = crls;
	opt.n_crls = n_crls;
	if ((c = https_client_new(&opt, err, sizeof(err))) == NULL) {
		fprintf(stderr, "visorctl status: %s\n", err);
		return 2;
	}
	memset(&resp, 0, sizeof(resp));
	if (https_client_call(c, "GET", full, NULL, NULL, 0, &resp, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "visorctl status: no answer from %.*s: %s\n",
		    (int)n, url, err);
		goto out;
	}
	if (resp.status != 200) {
		char shown[1024];

		cli_displayable(resp.body.data ? resp.body.data : "", shown,
		    sizeof(shown));
		fprintf(stderr, "visorctl status: %.*s answered %ld: %s\n", (int)n,
		    url, resp.status, shown);
		goto out;
	}
	if ((root = json_parse_strict(resp.body.data ? resp.body.data : "",
	    resp.body.len, 8, err, sizeof(err))) == NULL ||
	    !cJSON_IsObject(root)) {
		fprintf(stderr, "visorctl status: malformed answer: %s\n",
		    root ? "not an object" : err);
		cJSON_Delete(root);
		goto out;
	}
	if (json) {
		/* The answer as it came, checked to be JSON, with nothing a
		 * terminal takes for a control sequence. */
		buf_t shown = BUF_INIT;

		cJSON_Delete(root);
		if (json_append_displayable(&shown, resp.body.data,
		    resp.body.len) < 0) {
			fprintf(stderr, "visorctl status: out of memory\n");
			buf_free(&shown);
			goto out;
		}
		printf("%.*s\n", (int)shown.len, shown.data ? shown.data : "");
		buf_free(&shown);
		rc = 0;
		goto out;
	}
	if (displayable_tree(root) < 0) {
		fprintf(stderr, "visorctl status: out of memory\n");
		cJSON_Delete(root);
		goto out;
	}
	printf("identity:   %s\n", https_client_peer_identity(c));
	rc = report(root, warn_days, ckpt_warn);
	cJSON_Delete(root);
out:
	https_response_free(&resp);
	https_client_free(c);
	return rc;
}
