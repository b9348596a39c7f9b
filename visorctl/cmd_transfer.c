/*
 * visorctl transfer: ask the area gateway to transfer a record to another
 * area's gateway (POST /v1/transfers, SPEC section 9), and follow a
 * transfer (GET /v1/transfers/{id}).
 *
 * The receipt the receiving gateway signed is checked here too, not only by
 * the sending gateway: its certificate must chain to the national root (the
 * area CAs and CRLs are taken from the quickstart layout beside --cert, or
 * from --trust-dir), be urn:visor:<to_area>:gateway, and its signature must
 * verify over the receipt text.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "adapters/mapping.h"
#include "client/https_client.h"
#include "crypto/identity.h"
#include "crypto/tls_trust.h"
#include "gateway/transfer_proto.h"
#include "util/buf.h"
#include "util/json.h"
#include "visorctl/cli_client.h"
#include "visorctl/commands.h"

#define PROG "visorctl transfer"
#define TRUST_FILES_MAX 64
#define POLL_MS 200L

static void
transfer_usage(FILE *f)
{
	fprintf(f,
	    "usage: visorctl transfer ID --to AREA --gateway URL --cert FILE\n"
	    "                         --actor STAFF --justification TEXT\n"
	    "                         [--purpose offender-move] [--wait SECONDS]\n"
	    "                         [--idempotency-key KEY]\n"
	    "       visorctl transfer --status TRANSFER_ID --gateway URL --cert FILE\n"
	    "\n"
	    "Asks the gateway to transfer record ID to the gateway of AREA and\n"
	    "prints the transfer id.  With --wait it then follows the transfer\n"
	    "until it is delivered, rejected or failed (or SECONDS pass) and\n"
	    "prints the receipt, checked here against the national root.\n"
	    "--status shows a transfer's status, attempts and receipt.\n"
	    "\n"
	    "Exit status: 0 queued (without --wait) or delivered with a receipt\n"
	    "that verifies; 1 refused, rejected, failed, still queued after\n"
	    "--wait, or a receipt that does not verify; 2 bad usage.\n"
	    "\n"
	    "%s"
	    "  --to AREA           the receiving area ([a-z0-9-]{1,32})\n"
	    "  --justification T   why (DPA 2018 s.62), at most 512 bytes\n"
	    "  --wait SECONDS      follow the transfer for up to SECONDS\n"
	    "  --idempotency-key K  run again with the same K (after a timeout or\n"
	    "                      a 503), the gateway answers the first transfer\n"
	    "                      id and queues nothing more (1-128 bytes)\n"
	    "  --status TID        show transfer TID instead of starting one\n"
	    "  --trust-dir DIR     folder holding <area>/ca.crt and <area>/crl.pem\n"
	    "                      for the receipt check (default: the folder\n"
	    "                      above the certificate's, as quickstart lays out)\n"
	    "  --json              print the gateway's answer as JSON\n",
	    cli_client_usage);
}

static int
file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The trust set for receipts: root plus every <dir>/<area>/ca.crt and
 * crl.pem.  dir NULL: the parent of the certificate's folder. */
static tls_trust_t *
receipt_trust(const char *root, const char *cert, const char *dir,
    char *err, size_t errlen)
{
	char base[CLI_PATH_MAX], path[CLI_PATH_MAX + 300], *slash;
	char *cas[TRUST_FILES_MAX], *crls[TRUST_FILES_MAX];
	size_t n_ca = 0, n_crl = 0, i;
	tls_trust_t *t = NULL;
	struct dirent *de;
	DIR *d;

	if (dir != NULL)
		snprintf(base, sizeof(base), "%s", dir);
	else {
		snprintf(base, sizeof(base), "%s", cert);
		if ((slash = strrchr(base, '/')) == NULL)
			snprintf(base, sizeof(base), "..");
		else {
			*slash = '\0';
			if (strlen(base) + 4 >= sizeof(base)) {
				snprintf(err, errlen, "certificate path too long");
				return NULL;
			}
			memcpy(base + strlen(base), "/..", 4);
		}
	}
	if ((d = opendir(base)) == NULL) {
		snprintf(err, errlen, "%.300s: %s (give --trust-dir)", base,
		    strerror(errno));
		return NULL;
	}
	while ((de = readdir(d)) != NULL && n_ca < TRUST_FILES_MAX &&
	    n_crl < TRUST_FILES_MAX) {
		if (!identity_valid_label(de->d_name, strlen(de->d_name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s/ca.crt", base, de->d_name);
		if (!file_exists(path))
			continue;
		if ((cas[n_ca] = strdup(path)) == NULL)
			break;
		n_ca++;
		snprintf(path, sizeof(path), "%s/%s/crl.pem", base, de->d_name);
		if (file_exists(path) && (crls[n_crl] = strdup(path)) != NULL)
			n_crl++;
	}
	closedir(d);
	if (n_ca == 0)
		snprintf(err, errlen, "no area CA certificates (<area>/ca.crt) "
		    "in %.300s (give --trust-dir)", base);
	else
		t = tls_trust_load(root, (const char *const *)cas, n_ca,
		    (const char *const *)crls, n_crl, err, errlen);
	for (i = 0; i < n_ca; i++)
		free(cas[i]);
	for (i = 0; i < n_crl; i++)
		free(crls[i]);
	return t;
}

struct xfer_opts {
	cli_client_opts_t o;
	const char *record_id, *to, *just, *status_id, *trust_dir, *idem;
	long wait_s;
	int json;
};

/* GET /v1/transfers/{tid}.  Returns the parsed answer, or NULL after
 * printing why (*refused = 1 when the gateway answered with an error). */
static cJSON *
fetch_status(https_client_t *c, const struct xfer_opts *x, const char *tid,
    const char *const *hdrs, int *refused)
{
	https_response_t r;
	buf_t url = BUF_INIT;
	char err[512];
	cJSON *j = NULL;

	*refused = 0;
	if (buf_printf(&url, "%.*s/v1/transfers/%s",
	    (int)(strlen(x->o.gateway) -
	    (x->o.gateway[strlen(x->o.gateway) - 1] == '/')), x->o.gateway,
	    tid) < 0)
		return NULL;
	if (https_client_call(c, "GET", url.data, hdrs, NULL, 0, &r, err,
	    sizeof(err)) < 0)
		fprintf(stderr, PROG ": %s\n", err);
	else if (r.status != 200) {
		cli_print_error(PROG, &r);
		*refused = 1;
	} else if ((j = json_parse_strict(r.body.data, r.body.len, 16, err,
	    sizeof(err))) == NULL || !cJSON_IsObject(j) ||
	    json_get_str(j, "status") == NULL) {
		fprintf(stderr, PROG ": the gateway's answer is not a transfer "
		    "status: %s\n", err);
		cJSON_Delete(j);
		j = NULL;
	}
	https_response_free(&r);
	buf_free(&url);
	return j;
}

/* s made displayable in out (cli_displayable): the gateway's answer, and
 * through it a peer's refusal, is shown, never obeyed, by the terminal. */
static const char *
shown(const char *s, char *out, size_t outlen)
{
	cli_displayable(s, out, outlen);
	return out;
}

/* Show a status answer; check the receipt when there is one.  Returns the
 * exit status: 0 delivered and verified or still queued, 1 otherwise. */
static int
show_status(const struct xfer_opts *x, const cJSON *j, int final)
{
	const char *status = json_get_str(j, "status");
	const char *tid = json_get_str(j, "transfer_id");
	const char *to = json_get_str(j, "to_area");
	const char *rid = json_get_str(j, "record_id");
	const cJSON *rc = cJSON_GetObjectItemCaseSensitive(j, "receipt");
	const cJSON *pe = cJSON_GetObjectItemCaseSensitive(j, "error");
	char expect[IDENTITY_URI_MAX], err[512], s1[600], s2[600];
	transfer_receipt_t rec;
	tls_trust_t *trust;
	int64_t attempts = 0;
	char *text;
	int ok;

	json_get_int(j, "attempts", 0, INT64_MAX, &attempts);
	if (x->json) {
		ok = (text = cJSON_PrintUnformatted(j)) != NULL &&
		    cli_print_json(PROG, text, strlen(text)) == 0;
		free(text);
		if (!ok)
			return 1;
	} else {
		printf("transfer   %s\n", shown(tid ? tid : "?", s1, sizeof(s1)));
		if (rid != NULL)
			printf("record     %s -> %s\n", shown(rid, s1, sizeof(s1)),
			    shown(to ? to : "?", s2, sizeof(s2)));
		printf("status     %s (%lld attempt%s)\n",
		    shown(status, s1, sizeof(s1)), (long long)attempts,
		    attempts == 1 ? "" : "s");
	}
	if (strcmp(status, "queued") == 0)
		return final ? 1 : 0;
	if (strcmp(status, "delivered") != 0) {
		if (!x->json && cJSON_IsObject(pe))
			printf("refused    %s: %s\n",
			    shown(json_get_str(pe, "code") ?
			    json_get_str(pe, "code") : "?", s1, sizeof(s1)),
			    shown(json_get_str(pe, "message") ?
			    json_get_str(pe, "message") : "", s2, sizeof(s2)));
		return 1;
	}
	if (!cJSON_IsObject(rc) || to == NULL || tid == NULL ||
	    !identity_valid_label(to, strlen(to))) {
		fprintf(stderr, PROG ": delivered, but the answer carries no "
		    "receipt\n");
		return 1;
	}
	snprintf(expect, sizeof(expect), "urn:visor:%s:gateway", to);
	if ((trust = receipt_trust(x->o.cacert, x->o.cert, x->trust_dir, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, PROG ": cannot check the receipt: %s\n", err);
		return 1;
	}
	if ((text = cJSON_PrintUnformatted(rc)) == NULL) {
		tls_trust_free(trust);
		return 1;
	}
	ok = transfer_receipt_verify(text, strlen(text), trust, expect, tid,
	    NULL, &rec, err, sizeof(err)) == 0;
	free(text);
	tls_trust_free(trust);
	if (!ok) {
		fprintf(stderr, PROG ": the receipt does NOT verify: %s\n", err);
		return 1;
	}
	if (!x->json) {
		printf("receiver   %s\n", shown(rec.receiver, s1, sizeof(s1)));
		printf("received   %s\n", shown(rec.received_at, s2,
		    sizeof(s2)));
		printf("digest     %s (SHA-256 of the bytes received)\n",
		    shown(rec.digest, s2, sizeof(s2)));
		printf("audit      entry %llu of the receiver's audit log\n",
		    (unsigned long long)rec.audit_index);
		printf("signature  verified: signed by %s, certificate chains "
		    "to the national root\n", s1);
	}
	return 0;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Follow tid until it leaves "queued" or wait_s pass; then show it. */
static int
follow(https_client_t *c, const struct xfer_opts *x, const char *tid,
    const char *const *hdrs, long wait_s)
{
	long long until = now_ms() + (long long)wait_s * 1000;
	const char *status;
	cJSON *j;
	int refused, rc;

	for (;;) {
		if ((j = fetch_status(c, x, tid, hdrs, &refused)) == NULL)
			return 1;
		status = json_get_str(j, "status");
		if (strcmp(status, "queued") != 0 || now_ms() >= until)
			break;
		cJSON_Delete(j);
		sleep_ms(POLL_MS);
	}
	rc = show_status(x, j, wait_s > 0);
	if (rc != 0 && strcmp(json_get_str(j, "status"), "queued") == 0)
		fprintf(stderr, PROG ": still queued after %ld s\n", wait_s);
	cJSON_Delete(j);
	return rc;
}

static int
parse_args(struct xfer_opts *x, int argc, char **argv)
{
	char *end;
	int i, k;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			transfer_usage(stdout);
			return 1;
		}
		k = cli_client_option(&x->o, argc, argv, &i, PROG);
		if (k < 0)
			return -1;
		if (k > 0)
			continue;
		if (strcmp(argv[i], "--json") == 0) {
			x->json = 1;
			continue;
		}
		if (argv[i][0] != '-') {
			if (x->record_id != NULL) {
				fprintf(stderr, PROG ": one record ID only\n");
				return -1;
			}
			x->record_id = argv[i];
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, PROG ": unknown option or missing value: "
			    "%s\n", argv[i]);
			return -1;
		}
		if (strcmp(argv[i], "--to") == 0)
			x->to = argv[++i];
		else if (strcmp(argv[i], "--justification") == 0)
			x->just = argv[++i];
		else if (strcmp(argv[i], "--status") == 0)
			x->status_id = argv[++i];
		else if (strcmp(argv[i], "--trust-dir") == 0)
			x->trust_dir = argv[++i];
		else if (strcmp(argv[i], "--idempotency-key") == 0)
			x->idem = argv[++i];
		else if (strcmp(argv[i], "--wait") == 0) {
			errno = 0;
			x->wait_s = strtol(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || end == argv[i] ||
			    x->wait_s < 1 || x->wait_s > 86400) {
				fprintf(stderr, PROG ": --wait must be 1..86400 "
				    "seconds\n");
				return -1;
			}
		} else {
			fprintf(stderr, PROG ": unknown option %s\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

static int
valid_transfer_id(const char *s)
{
	return strlen(s) == TRANSFER_ID_LEN &&
	    strspn(s, "0123456789abcdef") == TRANSFER_ID_LEN;
}

int
cmd_transfer(int argc, char **argv)
{
	struct xfer_opts x;
	const char *hdrs[6];
	char h_actor[160], h_purpose[64], h_just[600], h_idem[160], err[512];
	char tid[TRANSFER_ID_LEN + 1];
	https_client_t *c = NULL;
	https_response_t r;
	buf_t url = BUF_INIT, body = BUF_INIT;
	cJSON *req = NULL, *ans = NULL;
	char *text = NULL;
	const char *s;
	int k, rc = 2;

	memset(&x, 0, sizeof(x));
	cli_client_init(&x.o);
	if ((k = parse_args(&x, argc, argv)) != 0)
		return k > 0 ? 0 : 2;
	/* Transfers have one purpose; following one needs no actor. */
	if (x.o.purpose == NULL)
		x.o.purpose = "offender-move";
	if (x.status_id != NULL) {
		if (x.record_id != NULL || x.to != NULL) {
			fprintf(stderr, PROG ": --status takes no record ID or "
			    "--to\n");
			return 2;
		}
		if (!valid_transfer_id(x.status_id)) {
			fprintf(stderr, PROG ": a transfer id is 32 lowercase hex "
			    "digits\n");
			return 2;
		}
		if (x.o.actor == NULL)
			x.o.actor = "visorctl";
	} else {
		if (x.record_id == NULL || !mapping_valid_id(x.record_id)) {
			fprintf(stderr, PROG ": a record ID ([A-Z0-9-]{3,64}) is "
			    "required\n");
			return 2;
		}
		if (x.to == NULL || !identity_valid_label(x.to, strlen(x.to))) {
			fprintf(stderr, PROG ": --to AREA ([a-z0-9-]{1,32}) is "
			    "required\n");
			return 2;
		}
		if (x.just == NULL || !cli_valid_header_value(x.just, 512)) {
			fprintf(stderr, PROG ": --justification TEXT (1-512 bytes, "
			    "no control characters) is required\n");
			return 2;
		}
		if (x.idem != NULL && !cli_valid_header_value(x.idem, 128)) {
			fprintf(stderr, PROG ": --idempotency-key is 1-128 bytes, "
			    "no control characters\n");
			return 2;
		}
	}
	if (x.status_id != NULL && x.idem != NULL) {
		fprintf(stderr, PROG ": --status takes no --idempotency-key\n");
		return 2;
	}
	if (cli_client_finish(&x.o, PROG) < 0)
		return 2;
	snprintf(h_actor, sizeof(h_actor), "X-Visor-Actor: %s", x.o.actor);
	snprintf(h_purpose, sizeof(h_purpose), "X-Visor-Purpose: %s", x.o.purpose);
	k = 0;
	hdrs[k++] = h_actor;
	hdrs[k++] = h_purpose;
	if (x.just != NULL) {
		snprintf(h_just, sizeof(h_just), "X-Visor-Justification: %s",
		    x.just);
		hdrs[k++] = h_just;
	}
	if (x.idem != NULL) {
		snprintf(h_idem, sizeof(h_idem), "Idempotency-Key: %s", x.idem);
		hdrs[k++] = h_idem;
	}
	hdrs[k] = NULL;
	if ((c = cli_client_new(&x.o, PROG)) == NULL) {
		rc = 1;
		goto out;
	}
	if (x.status_id != NULL) {
		rc = follow(c, &x, x.status_id, hdrs, 0);
		goto out;
	}
	if ((req = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(req, "record_id", x.record_id) == NULL ||
	    cJSON_AddStringToObject(req, "to_area", x.to) == NULL ||
	    cJSON_AddStringToObject(req, "purpose", x.o.purpose) == NULL ||
	    cJSON_AddStringToObject(req, "justification", x.just) == NULL ||
	    (text = cJSON_PrintUnformatted(req)) == NULL ||
	    buf_puts(&body, text) < 0 ||
	    buf_printf(&url, "%.*s/v1/transfers",
	    (int)(strlen(x.o.gateway) -
	    (x.o.gateway[strlen(x.o.gateway) - 1] == '/')), x.o.gateway) < 0) {
		fprintf(stderr, PROG ": out of memory\n");
		rc = 1;
		goto out;
	}
	rc = 1;
	if (https_client_call(c, "POST", url.data, hdrs, body.data, body.len,
	    &r, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		https_response_free(&r);
		goto out;
	}
	if (r.status != 202) {
		cli_print_error(PROG, &r);
		https_response_free(&r);
		goto out;
	}
	ans = json_parse_strict(r.body.data, r.body.len, 4, err, sizeof(err));
	https_response_free(&r);
	if (ans == NULL || (s = json_get_str(ans, "transfer_id")) == NULL ||
	    !valid_transfer_id(s)) {
		fprintf(stderr, PROG ": the gateway accepted the transfer but its "
		    "answer carries no transfer id\n");
		goto out;
	}
	memcpy(tid, s, sizeof(tid));
	printf("%s\n", tid);
	fflush(stdout);
	rc = x.wait_s > 0 ? follow(c, &x, tid, hdrs, x.wait_s) : 0;
out:
	free(text);
	cJSON_Delete(req);
	cJSON_Delete(ans);
	buf_free(&url);
	buf_free(&body);
	https_client_free(c);
	return rc;
}
