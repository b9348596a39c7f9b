/*
 * cli_client: shared options of push and get.  See cli_client.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "util/json.h"
#include "visorctl/cli_client.h"

const char cli_client_usage[] =
    "  --gateway URL       https://host:port of the area gateway\n"
    "  --cert FILE         agency certificate (also --as FILE)\n"
    "  --key FILE          its key (default: FILE with .crt -> .key)\n"
    "  --cacert FILE       national root (default: <cert dir>/../root.crt)\n"
    "  --crl FILE          check the gateway against this CRL (repeatable;\n"
    "                      default: its area CA's crl.pem in the quickstart\n"
    "                      layout, <cert dir>/crl.pem for the certificate's\n"
    "                      own area, <cert dir>/../AREA/crl.pem for another;\n"
    "                      without one the command refuses to connect)\n"
    "  --no-crl            connect without any revocation check: a REVOKED\n"
    "                      gateway certificate (a stolen key) is accepted\n"
    "  --gateway-id URI    expected gateway identity (default: the gateway\n"
    "                      of the certificate's own area)\n"
    "  --actor STAFF       the person acted for (X-Visor-Actor)\n"
    "  --purpose P         risk-management, mappa-meeting, offender-move,\n"
    "                      notification, accommodation, health-care,\n"
    "                      monitoring or review (X-Visor-Purpose)\n"
    "  --timeout SECONDS   per request (default 30)\n";

static const char *const purposes[] = { "risk-management", "mappa-meeting",
    "offender-move", "notification", "accommodation", "health-care",
    "monitoring", "review", NULL };

int
cli_valid_purpose(const char *s)
{
	size_t i;

	for (i = 0; purposes[i] != NULL; i++)
		if (strcmp(s, purposes[i]) == 0)
			return 1;
	return 0;
}

int
cli_valid_header_value(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > max ||
	    !json_utf8_valid((const unsigned char *)s, n))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

void
cli_client_init(cli_client_opts_t *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = HTTPS_TIMEOUT_DEFAULT_MS;
}

int
cli_client_option(cli_client_opts_t *o, int argc, char **argv, int *i,
    const char *prog)
{
	const char *a = argv[*i], *v;
	char *end;
	long secs;

	if (strcmp(a, "--no-crl") == 0) {
		o->no_crl = 1;
		return 1;
	}
	if (strcmp(a, "--gateway") != 0 && strcmp(a, "--cert") != 0 &&
	    strcmp(a, "--as") != 0 && strcmp(a, "--key") != 0 &&
	    strcmp(a, "--cacert") != 0 && strcmp(a, "--crl") != 0 &&
	    strcmp(a, "--gateway-id") != 0 && strcmp(a, "--actor") != 0 &&
	    strcmp(a, "--purpose") != 0 && strcmp(a, "--timeout") != 0)
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "%s: %s needs a value\n", prog, a);
		return -1;
	}
	v = argv[++*i];
	if (strcmp(a, "--gateway") == 0)
		o->gateway = v;
	else if (strcmp(a, "--cert") == 0 || strcmp(a, "--as") == 0)
		o->cert = v;
	else if (strcmp(a, "--key") == 0)
		o->key = v;
	else if (strcmp(a, "--cacert") == 0)
		o->cacert = v;
	else if (strcmp(a, "--gateway-id") == 0)
		o->gateway_id = v;
	else if (strcmp(a, "--actor") == 0)
		o->actor = v;
	else if (strcmp(a, "--purpose") == 0)
		o->purpose = v;
	else if (strcmp(a, "--crl") == 0) {
		if (o->n_crls == CLI_CRLS_MAX) {
			fprintf(stderr, "%s: at most %d --crl\n", prog,
			    CLI_CRLS_MAX);
			return -1;
		}
		o->crls[o->n_crls++] = v;
	} else {
		errno = 0;
		secs = strtol(v, &end, 10);
		if (errno != 0 || *end != '\0' || end == v || secs < 1 ||
		    secs > 3600) {
			fprintf(stderr, "%s: --timeout must be 1..3600 seconds\n",
			    prog);
			return -1;
		}
		o->timeout_ms = secs * 1000;
	}
	return 1;
}

int
cli_gateway_crl(const char *cert, const char *gateway_id, char *out,
    size_t outlen, char *err, size_t errlen)
{
	identity_t own, gw;
	char name[IDENTITY_PART_MAX + 16], why[256];

	if (identity_parse(gateway_id, strlen(gateway_id), &gw, why,
	    sizeof(why)) < 0 || gw.kind != IDENTITY_GATEWAY) {
		snprintf(err, errlen, "no CRL to check %s against (not a gateway "
		    "identity, so no area CA to take it from): give its area CA's "
		    "CRL with --crl FILE, or --no-crl to connect without a "
		    "revocation check (a revoked gateway certificate is then "
		    "accepted)", gateway_id);
		return -1;
	}
	if (cli_cert_identity(cert, &own, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s (give --crl FILE)", cert, why);
		return -1;
	}
	/* The quickstart layout, which visorctl certs follows too: the
	 * certificate sits beside its area CA's crl.pem, and every area's
	 * folder beside the others (pki/<area>/). */
	if (strcmp(own.area, gw.area) == 0)
		snprintf(name, sizeof(name), "crl.pem");
	else
		snprintf(name, sizeof(name), "../%s/crl.pem", gw.area);
	if (https_beside_cert(cert, name, out, outlen) < 0) {
		snprintf(err, errlen, "%s: path too long (give --crl FILE)", cert);
		return -1;
	}
	if (access(out, F_OK) < 0) {
		snprintf(err, errlen, "no CRL to check %s against: %s: %s.  Give "
		    "the CRL of the %s area CA with --crl FILE, or --no-crl to "
		    "connect without a revocation check (a revoked gateway "
		    "certificate is then accepted)", gw.uri, out,
		    strerror(errno), gw.area);
		return -1;
	}
	return 0;
}

int
cli_crl_choice(const char *cert, const char *gateway_id, int no_crl,
    size_t n_crls, char *out, size_t outlen, const char *prog)
{
	char err[1024 + CLI_PATH_MAX];

	if (no_crl && n_crls > 0) {
		fprintf(stderr, "%s: --crl and --no-crl exclude each other\n",
		    prog);
		return -1;
	}
	if (no_crl) {
		fprintf(stderr, "%s: WARNING: --no-crl: %s is not checked for "
		    "revocation; a revoked certificate is accepted\n", prog,
		    gateway_id);
		return 0;
	}
	if (n_crls > 0)
		return 0;
	if (cli_gateway_crl(cert, gateway_id, out, outlen, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return -1;
	}
	return 1;
}

int
cli_client_finish(cli_client_opts_t *o, const char *prog)
{
	identity_t id;
	char err[256];

	if (o->gateway == NULL || strncmp(o->gateway, "https://", 8) != 0) {
		fprintf(stderr, "%s: --gateway https://HOST:PORT is required\n",
		    prog);
		return -1;
	}
	if (o->cert == NULL) {
		fprintf(stderr, "%s: --cert FILE is required\n", prog);
		return -1;
	}
	if (o->actor == NULL || !cli_valid_header_value(o->actor, 128)) {
		fprintf(stderr, "%s: --actor STAFF is required (1-128 printable "
		    "characters)\n", prog);
		return -1;
	}
	if (o->purpose == NULL || !cli_valid_purpose(o->purpose)) {
		fprintf(stderr, "%s: --purpose must be one of risk-management, "
		    "mappa-meeting, offender-move, notification, accommodation, "
		    "health-care, monitoring, review\n", prog);
		return -1;
	}
	if ((o->key == NULL || o->cacert == NULL) &&
	    https_default_paths(o->cert, o->keybuf, sizeof(o->keybuf),
	    o->rootbuf, sizeof(o->rootbuf)) < 0) {
		fprintf(stderr, "%s: cannot derive --key/--cacert from %s (it "
		    "does not end in .crt); give them\n", prog, o->cert);
		return -1;
	}
	if (o->key == NULL)
		o->key = o->keybuf;
	if (o->cacert == NULL)
		o->cacert = o->rootbuf;
	if (o->gateway_id == NULL) {
		if (cli_cert_identity(o->cert, &id, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s: %s (give --gateway-id)\n", prog, err);
			return -1;
		}
		snprintf(o->expect, sizeof(o->expect), "urn:visor:%s:gateway",
		    id.area);
		o->gateway_id = o->expect;
	}
	/* Fail closed: the gateway is checked against its area CA's CRL,
	 * given or found, or the operator says in so many words that it is
	 * not (before, without a crl.pem beside the certificate, or with
	 * --gateway-id, a revoked gateway was served silently). */
	switch (cli_crl_choice(o->cert, o->gateway_id, o->no_crl, o->n_crls,
	    o->crlbuf, sizeof(o->crlbuf), prog)) {
	case -1:
		return -1;
	case 1:
		o->crls[o->n_crls++] = o->crlbuf;
		break;
	default:
		break;
	}
	return 0;
}

int
cli_cert_identity(const char *cert, identity_t *id, char *err, size_t errlen)
{
	char uri[IDENTITY_URI_MAX];

	if (https_cert_uri(cert, uri, sizeof(uri), err, errlen) < 0 ||
	    identity_parse(uri, strlen(uri), id, err, errlen) < 0)
		return -1;
	return 0;
}

https_client_t *
cli_client_new(const cli_client_opts_t *o, const char *prog)
{
	https_client_options_t co;
	https_client_t *c;
	char err[512];

	if (https_global_init() < 0) {
		fprintf(stderr, "%s: libcurl initialisation failed\n", prog);
		return NULL;
	}
	memset(&co, 0, sizeof(co));
	co.cert = o->cert;
	co.key = o->key;
	co.root = o->cacert;
	co.crls = o->crls;
	co.n_crls = o->n_crls;
	co.expect_identity = o->gateway_id;
	co.timeout_ms = o->timeout_ms;
	co.count_sends = o->count_sends;
	if ((c = https_client_new(&co, err, sizeof(err))) == NULL)
		fprintf(stderr, "%s: %s\n", prog, err);
	return c;
}

void
cli_displayable(const char *s, char *out, size_t outlen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0, n, plen;
	unsigned cp;
	char esc[8];
	const char *piece;

	if (outlen == 0)
		return;
	while (*u != '\0') {
		if (*u < 0x80)
			n = 1;
		else if (*u >= 0xc2 && *u <= 0xdf)
			n = 2;
		else if (*u >= 0xe0 && *u <= 0xef)
			n = 3;
		else if (*u >= 0xf0 && *u <= 0xf4)
			n = 4;
		else
			n = 0;
		piece = (const char *)u;
		plen = n;
		if (n == 0 || strnlen((const char *)u, n) < n ||
		    !json_utf8_valid(u, n) || *u < 0x20 || *u == 0x7f) {
			n = 1;
			plen = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *u);
			piece = esc;
		} else if (n == 2 && *u == 0xc2 && u[1] <= 0x9f) {
			plen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", u[1]);
			piece = esc;
		} else if (json_utf8_hidden(u, n, &cp) == n) {
			plen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", cp);
			piece = esc;
		}
		if (o + plen >= outlen)
			break;
		memcpy(out + o, piece, plen);
		o += plen;
		u += n;
	}
	out[o] = '\0';
}

int
cli_print_json(const char *prog, const char *text, size_t len)
{
	buf_t shown = BUF_INIT;
	cJSON *j;
	char err[128];
	int rc = -1;

	if ((j = json_parse_strict(text ? text : "", len, JSON_DEFAULT_MAX_DEPTH, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "%s: the gateway's answer is not JSON: %s\n",
		    prog, err);
		return -1;
	}
	cJSON_Delete(j);
	if (json_append_displayable(&shown, text, len) < 0)
		fprintf(stderr, "%s: out of memory\n", prog);
	else if (printf("%.*s\n", (int)shown.len, shown.data ? shown.data :
	    "") >= 0 && fflush(stdout) == 0)
		rc = 0;
	buf_free(&shown);
	return rc;
}

cJSON *
cli_error_fields(const https_response_t *r, const char **code,
    const char **msg, const char **request_id)
{
	cJSON *j;
	const cJSON *e;
	char why[64];

	*code = *msg = *request_id = NULL;
	j = json_parse_strict(r->body.data ? r->body.data : "", r->body.len, 8,
	    why, sizeof(why));
	e = j != NULL ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
	if (cJSON_IsObject(e)) {
		*code = json_get_str(e, "code");
		*msg = json_get_str(e, "message");
		*request_id = json_get_str(e, "request_id");
	}
	return j;
}

void
cli_print_error(const char *prog, const https_response_t *r)
{
	cJSON *j;
	const char *code, *msg, *rid;
	char line[1024], shown[4 * sizeof(line)];

	j = cli_error_fields(r, &code, &msg, &rid);
	if (code != NULL || msg != NULL)
		snprintf(line, sizeof(line), "%ld %s: %s%s%s%s", r->status,
		    code ? code : "error", msg ? msg : "",
		    rid ? " (request " : "", rid ? rid : "", rid ? ")" : "");
	else
		snprintf(line, sizeof(line), "HTTP %ld%s%.200s", r->status,
		    r->body.len ? ": " : "", r->body.len ? r->body.data : "");
	cJSON_Delete(j);
	cli_displayable(line, shown, sizeof(shown));
	fprintf(stderr, "%s: %s\n", prog, shown);
}
