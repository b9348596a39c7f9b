/*
 * cli_client: the options push and get share (gateway, certificate files,
 * actor, purpose) and the HTTPS client built from them.
 *
 *   --gateway URL        https://host:port of the area gateway (required)
 *   --cert FILE | --as FILE   the agency certificate (required)
 *   --key FILE           default: the certificate path with .crt -> .key
 *   --cacert FILE        national root; default: <cert dir>/../root.crt
 *   --crl FILE           a CRL to check the gateway against (repeatable);
 *                        default: cli_gateway_crl, and none found refuses
 *   --no-crl             no revocation check at all (said on stderr)
 *   --gateway-id URI     expected gateway identity; default: the gateway
 *                        of the certificate's own area
 *   --actor STAFF        X-Visor-Actor (required)
 *   --purpose P          X-Visor-Purpose (required), SPEC section 5
 *   --timeout SECONDS    per request (default 30)
 */
#ifndef VISORCTL_CLI_CLIENT_H
#define VISORCTL_CLI_CLIENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "client/https_client.h"
#include "crypto/identity.h"

#define CLI_CRLS_MAX 64
#define CLI_PATH_MAX 1024

typedef struct {
	const char *gateway;
	const char *cert;
	const char *key;
	const char *cacert;
	const char *gateway_id;
	const char *actor;
	const char *purpose;
	const char *crls[CLI_CRLS_MAX];
	size_t n_crls;
	int no_crl;
	long timeout_ms;
	int count_sends;	/* https_client_options_t.count_sends */
	char keybuf[CLI_PATH_MAX];
	char rootbuf[CLI_PATH_MAX];
	char crlbuf[CLI_PATH_MAX];
	char expect[160];
} cli_client_opts_t;

/* Usage lines for the shared options. */
extern const char cli_client_usage[];

/* Initialise to defaults. */
void cli_client_init(cli_client_opts_t *o);

/* If argv[*i] is one of the shared options, take it (and its value,
 * advancing *i) and return 1; 0 if it is not ours; -1 with a message on
 * stderr if its value is missing or bad. */
int cli_client_option(cli_client_opts_t *o, int argc, char **argv, int *i,
    const char *prog);

/* Check required options and fill the defaults (key, root, expected
 * identity, and without --crl the CRL cli_gateway_crl finds for it; none
 * found, without --no-crl, is an error).  0, or -1 with a message on
 * stderr. */
int cli_client_finish(cli_client_opts_t *o, const char *prog);

/* The CRL file that checks gateway_id when no --crl is given, in the
 * quickstart layout (SPEC section 3) beside cert: <cert dir>/crl.pem when
 * gateway_id is of cert's own area, else <cert dir>/../<its area>/crl.pem.
 * 0 with the path in out if that file exists; -1 with a message in err
 * saying where it looked and how to go on (--crl FILE, or --no-crl) if it
 * does not, or if gateway_id is not a gateway identity. */
int cli_gateway_crl(const char *cert, const char *gateway_id, char *out,
    size_t outlen, char *err, size_t errlen);

/* The CRL decision every command that connects makes, with its options:
 * --crl and --no-crl together are an error; with --no-crl a warning is
 * printed and 0 returned; with n_crls > 0, 0; otherwise cli_gateway_crl,
 * 1 with its path in out, or -1 with its message on stderr. */
int cli_crl_choice(const char *cert, const char *gateway_id, int no_crl,
    size_t n_crls, char *out, size_t outlen, const char *prog);

/* The identity in the URI of the certificate in file cert (whose area's
 * gateway a command expects).  0, or -1 with a reason in err. */
int cli_cert_identity(const char *cert, identity_t *id, char *err,
    size_t errlen);

/* Build the client; NULL with a message on stderr. */
https_client_t *cli_client_new(const cli_client_opts_t *o, const char *prog);

/* 1 if s is one of the purposes of SPEC section 5. */
int cli_valid_purpose(const char *s);

/* 1 if s may be sent as a header value: 1..max bytes, printable UTF-8 or
 * ASCII, no control characters. */
int cli_valid_header_value(const char *s, size_t max);

/* Copy s into out (truncated to fit, always NUL-terminated when outlen >
 * 0) for a terminal: text that came from elsewhere (cells of the input, a
 * gateway's answers) with C0 controls, DEL and bytes that are not UTF-8
 * written as \xNN, and the C1 controls and the characters json_utf8_hidden
 * finds (bidirectional controls, line and paragraph separators) as \uNNNN:
 * never as a control sequence, nor as text shown in another order. */
void cli_displayable(const char *s, char *out, size_t outlen);

/* Print JSON text that came from a gateway (len bytes) on stdout, then a
 * newline, through json_append_displayable: the same JSON value, with
 * nothing a terminal takes for a control sequence or shows in another
 * order.  Text that is not JSON is not printed: said on stderr after
 * prog.  0, or -1. */
int cli_print_json(const char *prog, const char *text, size_t len);

/* The members of an error answer (SPEC section 5: {"error":{"code",
 * "message","request_id"}}): each set to its string, or NULL when r's body
 * is not such an answer or lacks it.  Returns the parsed body, which holds
 * the strings (free with cJSON_Delete), or NULL (all three NULL). */
cJSON *cli_error_fields(const https_response_t *r, const char **code,
    const char **msg, const char **request_id);

/* Say on stderr, after prog, the error answer r (SPEC section 5: status,
 * code, message, request id), or its first 200 bytes when it is not one;
 * made displayable (cli_displayable). */
void cli_print_error(const char *prog, const https_response_t *r);

#endif
