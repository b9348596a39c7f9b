/*
 * visorctl audit: the auditor's client for a gateway's audit log (SPEC
 * section 8).  Every answer of the gateway is checked by crypto/audit_verify
 * against the area's verifier key (audit.vkey): the gateway is not trusted.
 *
 *   visorctl audit checkpoint    [common options]
 *   visorctl audit verify        [--state FILE] [common options]
 *   visorctl audit prove         --index I [--size N] [--sender-cert FILE]
 *                                [common options]
 *   visorctl audit search        [--record ID] [--actor URI] [--op OP]
 *                                [--since T] [--until T] [common options]
 *   visorctl audit export FILE   [common options]
 *   visorctl audit verify-bundle FILE [--vkey FILE | --cert FILE]
 *
 * common options: --gateway URL --cert FILE [--key FILE] [--cacert FILE]
 *                 [--vkey FILE] [--crl FILE... | --no-crl]
 *                 [--state FILE | --no-state]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certs/pki.h"
#include "client/https_client.h"
#include "crypto/audit_verify.h"
#include "crypto/identity.h"
#include "crypto/note.h"
#include "crypto/proof_json.h"
#include "crypto/sig.h"
#include "crypto/tls_trust.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/rfc3339.h"
#include "visorctl/cli_client.h"
#include "visorctl/commands.h"

#define PAGE 1000
#define VKEY_FILE_MAX 4096
#define PATH_MAX_LEN 4096
#define URL_MAX 8192
#define SEARCH_WAIT_MS 2000
#define SEARCH_POLL_MS 200

static const char audit_usage[] =
    "usage: visorctl audit checkpoint    [options]\n"
    "       visorctl audit verify        [--state FILE | --no-state]\n"
    "                                    [--witness URL...] [options]\n"
    "       visorctl audit prove         --index I [--size N] [--sender-cert FILE]\n"
    "                                    [options]\n"
    "       visorctl audit search        [--record ID] [--actor URI] [--op OP]\n"
    "                                    [--since T] [--until T] [options]\n"
    "       visorctl audit export FILE   [options]\n"
    "       visorctl audit verify-bundle FILE [--vkey FILE | --cert FILE]\n"
    "                                    [--state FILE | --no-state]\n"
    "\n"
    "options: --gateway URL --cert FILE [--key FILE] [--cacert FILE] [--vkey FILE]\n"
    "         [--crl FILE... | --no-crl] [--state FILE | --no-state]\n"
    "  --cert    the auditor certificate (pki/<area>/auditor.crt)\n"
    "  --key     default: the certificate path with .crt replaced by .key\n"
    "  --cacert  the national root; default: <cert dir>/../root.crt\n"
    "  --vkey    the area's audit verifier key; default: <cert dir>/audit.vkey\n"
    "  --crl     the area CA's CRL, to check the gateway's certificate\n"
    "            (repeatable); default: <cert dir>/crl.pem; without one the\n"
    "            command refuses to connect\n"
    "  --no-crl  connect without a revocation check (a revoked gateway is\n"
    "            accepted; the entries are still checked with the vkey)\n"
    "\n"
    "checkpoint     fetch and verify the latest signed checkpoint\n"
    "verify         fetch every entry, recompute the tree and compare it with\n"
    "               the signed root, and prove the log is an extension of the\n"
    "               last checkpoint verified before, kept in a state file:\n"
    "               --state FILE, by default $XDG_STATE_HOME/visor/audit/\n"
    "               (~/.local/state/visor/audit/) <key name>-<key id>.checkpoint;\n"
    "               --no-state keeps none; with --witness URL (repeatable),\n"
    "               also fetch the checkpoint of this area's log that the\n"
    "               gateway at URL (a peer) witnessed, and fail if the log\n"
    "               is behind it or not consistent with it\n"
    "prove          prove that entry I is in the signed log (or in its first N);\n"
    "               with --sender-cert, also check the signature a transfer\n"
    "               received carries with the sender's gateway certificate\n"
    "search         query the log, then prove every hit against the checkpoint\n"
    "export         write a verified offline bundle (docs/AUDIT.md) to FILE\n"
    "verify-bundle  verify a bundle offline, without the network\n"
    "checkpoint, prove, search, export and verify-bundle (given the key)\n"
    "also read (never write) verify's state (or --state FILE; --no-state:\n"
    "none) and refuse a log that does not extend the checkpoint verified\n"
    "before\n"
    "\n"
    "Exit status: 0 verified, 1 a check failed (the message names the first\n"
    "bad index or the failed proof), 2 bad usage or input.\n";

typedef struct {
	const char *sub;
	const char *file;		/* export / verify-bundle */
	const char *gateway, *cert, *key, *cacert, *vkey, *state;
	const char *record, *actor, *op, *since, *until;
	const char *sender_cert;	/* prove */
	const char *witness[CLI_CRLS_MAX];	/* verify --witness URLs */
	size_t n_witness;
	char since_c[25], until_c[25];	/* canonical forms (search) */
	uint64_t index, size;
	int have_index, have_size;
	/* set up by audit_connect */
	char keybuf[PATH_MAX_LEN], rootbuf[PATH_MAX_LEN], vkeybuf[PATH_MAX_LEN];
	char base[URL_MAX];
	char expect_origin[128];
	char statebuf[PATH_MAX_LEN], statedir[PATH_MAX_LEN];
	int no_state;
	const char *crls[CLI_CRLS_MAX];
	size_t n_crls;
	int no_crl;
	char crlbuf[CLI_PATH_MAX];
	buf_t vkey_line;
	note_verifier_t *v;
	https_client_t *c;
	int progress;
} audit_ctx_t;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int check_verified(audit_ctx_t *a, const audit_checkpoint_t *cp);

/* A message on stderr.  Messages repeat what the gateway sent (an error
 * answer's body, a member name of a malformed answer): shown with its
 * control characters escaped, or a gateway could rewrite the auditor's
 * terminal (a failure redrawn as "verified"). */
static void
fail(const char *fmt, ...)
{
	char line[4096], shown[4 * sizeof(line)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cli_displayable(line, shown, sizeof(shown));
	fprintf(stderr, "visorctl audit: %s\n", shown);
}

static int
parse_u64(const char *s, uint64_t *out)
{
	unsigned long long x;
	char *end;

	if (s == NULL || s[0] < '0' || s[0] > '9' || strlen(s) > 19)
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = x;
	return 0;
}

/* Returns 0, or 2 (usage error, already reported). */
static int
parse_args(audit_ctx_t *a, int argc, char **argv)
{
	int i;

	if (argc < 2) {
		fputs(audit_usage, stderr);
		return 2;
	}
	a->sub = argv[1];
	for (i = 2; i < argc; i++) {
		const char *o = argv[i];
		const char **slot = NULL;

		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			fputs(audit_usage, stdout);
			return 3;
		}
		if (strcmp(o, "--no-state") == 0) {
			a->no_state = 1;
			continue;
		}
		if (strcmp(o, "--no-crl") == 0) {
			a->no_crl = 1;
			continue;
		}
		if (o[0] != '-') {
			if (a->file != NULL) {
				fail("unexpected argument '%s'", o);
				return 2;
			}
			a->file = o;
			continue;
		}
		if (i + 1 >= argc) {
			fail("%s needs a value", o);
			return 2;
		}
		if (strcmp(o, "--gateway") == 0)
			slot = &a->gateway;
		else if (strcmp(o, "--cert") == 0)
			slot = &a->cert;
		else if (strcmp(o, "--key") == 0)
			slot = &a->key;
		else if (strcmp(o, "--crl") == 0) {
			if (a->n_crls == CLI_CRLS_MAX) {
				fail("at most %d --crl", CLI_CRLS_MAX);
				return 2;
			}
			slot = &a->crls[a->n_crls++];
		}
		else if (strcmp(o, "--witness") == 0) {
			if (a->n_witness == CLI_CRLS_MAX) {
				fail("at most %d --witness", CLI_CRLS_MAX);
				return 2;
			}
			slot = &a->witness[a->n_witness++];
		}
		else if (strcmp(o, "--cacert") == 0)
			slot = &a->cacert;
		else if (strcmp(o, "--vkey") == 0)
			slot = &a->vkey;
		else if (strcmp(o, "--state") == 0)
			slot = &a->state;
		else if (strcmp(o, "--record") == 0)
			slot = &a->record;
		else if (strcmp(o, "--actor") == 0)
			slot = &a->actor;
		else if (strcmp(o, "--op") == 0)
			slot = &a->op;
		else if (strcmp(o, "--since") == 0)
			slot = &a->since;
		else if (strcmp(o, "--until") == 0)
			slot = &a->until;
		else if (strcmp(o, "--sender-cert") == 0)
			slot = &a->sender_cert;
		else if (strcmp(o, "--index") == 0) {
			if (parse_u64(argv[++i], &a->index) < 0) {
				fail("--index needs a whole number");
				return 2;
			}
			a->have_index = 1;
			continue;
		} else if (strcmp(o, "--size") == 0) {
			if (parse_u64(argv[++i], &a->size) < 0) {
				fail("--size needs a whole number");
				return 2;
			}
			a->have_size = 1;
			continue;
		} else {
			fail("unknown option %s", o);
			return 2;
		}
		*slot = argv[++i];
	}
	return 0;
}

/* Default vkey path <cert dir>/audit.vkey. */
static int
default_vkey(const char *cert, char *out, size_t outlen)
{
	return https_beside_cert(cert, "audit.vkey", out, outlen);
}

/* Load the verifier key file into a->v (and its line into a->vkey_line).
 * 0 or 2. */
static int
load_vkey(audit_ctx_t *a, const char *path)
{
	char err[256];
	char *data;
	size_t len;

	if (file_read_all(path, VKEY_FILE_MAX, &data, &len) < 0) {
		fail("cannot read the verifier key %s: %s", path,
		    strerror(errno));
		return 2;
	}
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' ' ||
	    data[len - 1] == '\r'))
		len--;
	buf_init(&a->vkey_line, VKEY_FILE_MAX);
	if (buf_append(&a->vkey_line, data, len) < 0 ||
	    (a->v = note_verifier_parse(data, len, err, sizeof(err))) == NULL) {
		fail("%s: not a verifier key: %s", path, err);
		free(data);
		return 2;
	}
	free(data);
	return 0;
}

/* Resolve paths, load the key, check that it names the certificate's
 * area, and make the client.  0, 1 (cannot connect) or 2 (bad input). */
static int
audit_connect(audit_ctx_t *a)
{
	https_client_options_t opt;
	char gwid[IDENTITY_URI_MAX], err[512];
	identity_t id;
	size_t n;
	int rc;

	if (a->gateway == NULL || a->cert == NULL) {
		fail("--gateway URL and --cert FILE are required");
		return 2;
	}
	if ((a->key == NULL || a->cacert == NULL) &&
	    https_default_paths(a->cert, a->keybuf, sizeof(a->keybuf),
	    a->rootbuf, sizeof(a->rootbuf)) < 0) {
		fail("%s: cannot derive --key/--cacert (give them)", a->cert);
		return 2;
	}
	if (a->key == NULL)
		a->key = a->keybuf;
	if (a->cacert == NULL)
		a->cacert = a->rootbuf;
	if (a->vkey == NULL) {
		if (default_vkey(a->cert, a->vkeybuf, sizeof(a->vkeybuf)) < 0) {
			fail("path too long");
			return 2;
		}
		a->vkey = a->vkeybuf;
	}
	if ((rc = load_vkey(a, a->vkey)) != 0)
		return rc;
	if (cli_cert_identity(a->cert, &id, err, sizeof(err)) < 0) {
		fail("%s: %s", a->cert, err);
		return 2;
	}
	if (id.kind != IDENTITY_AUDITOR)
		fprintf(stderr, "visorctl audit: note: %s is not an auditor "
		    "identity; the gateway will refuse most requests\n", id.uri);
	snprintf(a->expect_origin, sizeof(a->expect_origin), "visor.%s/audit",
	    id.area);
	if (strcmp(note_verifier_name(a->v), a->expect_origin) != 0) {
		fail("%s is the key of %s, not of this area's log %s", a->vkey,
		    note_verifier_name(a->v), a->expect_origin);
		return 2;
	}
	snprintf(gwid, sizeof(gwid), "urn:visor:%s:gateway", id.area);
	/* The area CA's CRL, given or beside the certificate, or --no-crl:
	 * a revoked gateway certificate is refused (the entries' proofs
	 * rest on the audit key, not on the connection, but the auditor
	 * must know), never silently let through. */
	switch (cli_crl_choice(a->cert, gwid, a->no_crl, a->n_crls, a->crlbuf,
	    sizeof(a->crlbuf), "visorctl audit")) {
	case -1:
		return 2;
	case 1:
		a->crls[a->n_crls++] = a->crlbuf;
		break;
	default:
		break;
	}
	n = strlen(a->gateway);
	while (n > 0 && a->gateway[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(a->base) - 64) {
		fail("bad --gateway URL");
		return 2;
	}
	memcpy(a->base, a->gateway, n);
	a->base[n] = '\0';
	memset(&opt, 0, sizeof(opt));
	opt.cert = a->cert;
	opt.key = a->key;
	opt.root = a->cacert;
	opt.expect_identity = gwid;
	opt.max_response = PROOF_JSON_MAX_BODY;
	opt.crls = a->crls;
	opt.n_crls = a->n_crls;
	if (https_global_init() < 0 ||
	    (a->c = https_client_new(&opt, err, sizeof(err))) == NULL) {
		fail("%s", err);
		return 2;
	}
	a->progress = isatty(2);
	return 0;
}

static void
audit_ctx_free(audit_ctx_t *a)
{
	https_client_free(a->c);
	note_verifier_free(a->v);
	buf_free(&a->vkey_line);
}

/* GET base + path; the answer must be 200.  body gets the body (caller
 * frees).  0 or -1 (reported). */
static int
get(audit_ctx_t *a, const char *path, buf_t *body)
{
	https_response_t resp;
	char url[URL_MAX], err[512];
	int w, ret = -1;

	buf_init(body, PROOF_JSON_MAX_BODY);
	w = snprintf(url, sizeof(url), "%s%s", a->base, path);
	if (w < 0 || (size_t)w >= sizeof(url)) {
		fail("URL too long");
		return -1;
	}
	if (https_client_call(a->c, "GET", url, NULL, NULL, 0, &resp, err,
	    sizeof(err)) < 0) {
		fail("%s: %s", path, err);
		goto out;
	}
	if (resp.status != 200) {
		fail("%s: the gateway answered %ld: %.300s", path, resp.status,
		    resp.body.data ? resp.body.data : "");
		goto out;
	}
	if (buf_append(body, resp.body.data ? resp.body.data : "",
	    resp.body.len) < 0) {
		fail("%s: answer too large", path);
		goto out;
	}
	ret = 0;
out:
	https_response_free(&resp);
	return ret;
}

/* Fetch and verify the checkpoint.  note (may be NULL) gets its text. */
static int
fetch_checkpoint(audit_ctx_t *a, audit_checkpoint_t *cp, buf_t *note)
{
	char err[AUDIT_VERIFY_ERR];
	buf_t body;
	int ret = -1;

	if (get(a, "/v1/audit/checkpoint", &body) < 0)
		goto out;
	if (audit_verify_checkpoint(a->v, body.data, body.len, cp, err,
	    sizeof(err)) < 0) {
		fail("the gateway's checkpoint is not valid: %s", err);
		goto out;
	}
	if (note != NULL) {
		buf_init(note, NOTE_MAX_SIZE);
		if (buf_append(note, body.data, body.len) < 0)
			goto out;
	}
	ret = 0;
out:
	buf_free(&body);
	return ret;
}

static void
print_root(const char *label, const merkle_hash_t root)
{
	char b64[B64_ENCODED_SIZE(MERKLE_HASH_LEN)];

	b64_encode(root, MERKLE_HASH_LEN, b64);
	printf("%s%s", label, b64);
}

/* Print a proved entry ("index<TAB>" first when index is not NULL) for a
 * reader: the gateway chose its bytes, so DEL and C1 controls, which JSON
 * lets a string hold raw, are shown as \u escapes, not sent to the
 * terminal (json_append_displayable).  export keeps the exact bytes.
 * 0, or -1 (reported). */
static int
print_entry(const uint64_t *index, const char *leaf, size_t len)
{
	buf_t out = BUF_INIT;

	if ((index != NULL && buf_printf(&out, "%" PRIu64 "\t", *index) < 0) ||
	    json_append_displayable(&out, leaf, len) < 0 ||
	    buf_append(&out, "\n", 1) < 0) {
		buf_free(&out);
		fail("out of memory");
		return -1;
	}
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
	return 0;
}

static int
do_checkpoint(audit_ctx_t *a)
{
	audit_checkpoint_t cp;

	if (fetch_checkpoint(a, &cp, NULL) < 0 || check_verified(a, &cp) < 0)
		return 1;
	printf("origin %s\nsize %" PRIu64 "\n", cp.origin, cp.size);
	print_root("root ", cp.root);
	printf("\nsigned by %s\n", note_verifier_name(a->v));
	return 0;
}

/* ---- verify ---- */

/* Entries whose time is earlier than one before them: not a failure (a
 * gateway before store schema 2 wrote its clock's time even after the
 * clock was set back), but a search by time assumes times never
 * decrease, so the auditor is told. */
static void
note_times_back(uint64_t n, uint64_t first)
{
	if (n == 0)
		return;
	fprintf(stderr, "visorctl audit: note: %" PRIu64 " entr%s carr%s a "
	    "time earlier than an entry before (the first: entry %" PRIu64
	    "); a search by --since or --until can miss %s. visor-gw has "
	    "kept times from going back since 6 December 2026 (store schema "
	    "2): entries written since then should not.\n", n,
	    n == 1 ? "y" : "ies", n == 1 ? "ies" : "y", first,
	    n == 1 ? "it" : "them");
}

typedef struct {
	audit_walk_t w;
	merkle_hash_t *hashes;		/* every leaf hash, to locate a bad one */
	uint64_t n, cap;
	buf_t *bundle;			/* export: also append here */
	char err[AUDIT_VERIFY_ERR];
	int failed;
} walk_ctx_t;

static int
walk_entry(void *ctx, uint64_t index, const uint8_t *leaf, size_t len)
{
	walk_ctx_t *wc = ctx;
	merkle_hash_t *nh;

	if (audit_walk_add(&wc->w, index, leaf, len, wc->err,
	    sizeof(wc->err)) < 0)
		goto bad;
	if (wc->n == wc->cap) {
		uint64_t ncap = wc->cap ? wc->cap * 2 : 4096;

		if ((nh = realloc(wc->hashes, ncap * sizeof(*nh))) == NULL) {
			snprintf(wc->err, sizeof(wc->err), "out of memory");
			goto bad;
		}
		wc->hashes = nh;
		wc->cap = ncap;
	}
	merkle_leaf_hash(leaf, len, wc->hashes[wc->n++]);
	if (wc->bundle != NULL && audit_bundle_add(wc->bundle, index, leaf,
	    len) < 0) {
		snprintf(wc->err, sizeof(wc->err), "bundle too large");
		goto bad;
	}
	return 0;
bad:
	wc->failed = 1;
	return -1;
}

/* Fetch and check entries [0, cp->size) into wc.  0 or -1 (reported). */
static int
walk_all(audit_ctx_t *a, const audit_checkpoint_t *cp, walk_ctx_t *wc)
{
	char path[128], why[AUDIT_VERIFY_ERR];
	uint64_t start, end;
	size_t count;
	buf_t body;
	int rc;

	/* A gateway may answer fewer entries than asked (it stops an answer
	 * at about 4 MiB): ask again from where the answer ends.  An empty
	 * answer would never end the walk and is refused. */
	for (start = 0; start < cp->size; start += count) {
		end = cp->size - start > PAGE ? start + PAGE : cp->size;
		snprintf(path, sizeof(path), "/v1/audit/entries?start=%" PRIu64
		    "&end=%" PRIu64, start, end);
		if (get(a, path, &body) < 0)
			return -1;
		rc = proof_json_entries(body.data, body.len, start,
		    (size_t)(end - start), walk_entry, wc, &count, why,
		    sizeof(why));
		buf_free(&body);
		if (rc < 0) {
			if (a->progress)
				fputc('\n', stderr);
			fail("%s", wc->failed ? wc->err : why);
			if (!wc->failed)
				fprintf(stderr, "visorctl audit: the entries "
				    "page from %" PRIu64 " is malformed\n",
				    start);
			return -1;
		}
		if (count == 0) {
			fail("entry %" PRIu64 ": the gateway sent no entries "
			    "for %" PRIu64 "..%" PRIu64, start, start, end - 1);
			return -1;
		}
		if (a->progress)
			fprintf(stderr, "\rverifying: %" PRIu64 "/%" PRIu64
			    " entries", start + count, cp->size);
	}
	if (a->progress && cp->size > 0)
		fputc('\n', stderr);
	return 0;
}

/* The root of our first m leaves. */
static void
prefix_root(const walk_ctx_t *wc, uint64_t m, merkle_hash_t out)
{
	merkle_frontier_t f;
	uint64_t i;

	merkle_frontier_init(&f);
	for (i = 0; i < m; i++)
		(void)merkle_frontier_append(&f, wc->hashes[i], NULL, NULL);
	merkle_frontier_root(&f, out);
}

/* The entries do not hash to the signed root: find the first bad one by
 * asking for consistency proofs from our prefixes to the signed tree (a
 * proof can only verify for a prefix the signed tree really has, so the
 * gateway cannot hide a bad entry, only point earlier).  Returns the index,
 * or AUDIT_INDEX_NONE if the search could not run. */
static uint64_t
locate_bad(audit_ctx_t *a, const walk_ctx_t *wc, const audit_checkpoint_t *cp)
{
	uint64_t lo = 0, hi = cp->size, mid;
	audit_checkpoint_t at;
	char path[128], why[AUDIT_VERIFY_ERR];
	buf_t body;
	int ok;

	if (wc->n != cp->size)
		return AUDIT_INDEX_NONE;
	/* Invariant: our first lo leaves are in the signed tree, our first hi
	 * are not. */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		memcpy(&at, cp, sizeof(at));
		at.size = mid;
		prefix_root(wc, mid, at.root);
		snprintf(path, sizeof(path), "/v1/audit/proof/consistency?from=%"
		    PRIu64 "&to=%" PRIu64, mid, cp->size);
		if (get(a, path, &body) < 0)
			return AUDIT_INDEX_NONE;
		ok = audit_verify_consistency_answer(body.data, body.len, &at,
		    cp, why, sizeof(why)) == 0;
		buf_free(&body);
		if (ok)
			lo = mid;
		else
			hi = mid;
	}
	return hi - 1;
}

/* Read and verify the state file: 0 (old filled), 1 no state yet, -1
 * (reported). */
static int
read_state(audit_ctx_t *a, audit_checkpoint_t *old)
{
	char err[AUDIT_VERIFY_ERR];
	char *data;
	size_t len;

	if (file_read_all(a->state, NOTE_MAX_SIZE, &data, &len) < 0) {
		if (errno == ENOENT)
			return 1;
		fail("cannot read the state file %s: %s", a->state,
		    strerror(errno));
		return -1;
	}
	if (audit_verify_checkpoint(a->v, data, len, old, err,
	    sizeof(err)) < 0) {
		fail("the state file %s does not hold a checkpoint signed by "
		    "%s: %s", a->state, note_verifier_name(a->v), err);
		free(data);
		return -1;
	}
	free(data);
	return 0;
}

static int
check_consistency(audit_ctx_t *a, const audit_checkpoint_t *old,
    const audit_checkpoint_t *cp)
{
	char path[128], err[AUDIT_VERIFY_ERR];
	buf_t body = BUF_INIT;
	int rc;

	if (cp->size < old->size || old->size == 0) {
		if (audit_verify_consistency_answer(NULL, 0, old, cp, err,
		    sizeof(err)) < 0) {
			fail("REFUSED: %s", err);
			return -1;
		}
		return 0;
	}
	snprintf(path, sizeof(path), "/v1/audit/proof/consistency?from=%"
	    PRIu64 "&to=%" PRIu64, old->size, cp->size);
	if (get(a, path, &body) < 0) {
		fail("no consistency proof from the last verified checkpoint "
		    "(size %" PRIu64 ")", old->size);
		return -1;
	}
	rc = audit_verify_consistency_answer(body.data, body.len, old, cp, err,
	    sizeof(err));
	buf_free(&body);
	if (rc < 0) {
		fail("REFUSED: %s", err);
		return -1;
	}
	return 0;
}

/* A state file name is at most this long (NAME_MAX on the usual file
 * systems is 255). */
#define STATE_NAME_MAX 255
#define STATE_SUFFIX_LEN (sizeof("-01234567.checkpoint") - 1)

/* The key name as it goes into the state file's name: letters, digits,
 * '.', '-' and '_' as they are, every other byte as %XX (the log's own
 * names hold a '/', "visor.norfolk/audit" -> "visor.norfolk%2Faudit").
 * The encoding is one to one, so two keys never share a file, and it
 * never yields a '/'; followed by "-<key id>.checkpoint" the whole name
 * is never "." or "..".  0, or -1 if it would not fit in outlen. */
static int
state_name_encode(const char *name, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t o = 0;

	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
		    *p == '_') {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= outlen)
				return -1;
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

/* The default state file: one per verifier key, named for the key itself
 * (name and id, as parsed), never for the text of the vkey file: the same
 * key written another way (an upper-case id) must find the same state, or
 * a rollback would pass as a first verification.  Under $XDG_STATE_HOME
 * or ~/.local/state, folders made 0700 when create is set (verify, which
 * writes there); the commands that only read it make nothing, and where
 * verify could keep no default state there is none to read.  0, 1 (no
 * state: !create only), or -1 (reported). */
static int
default_state(audit_ctx_t *a, int create)
{
	const char *base = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char safe[STATE_NAME_MAX + 1 - STATE_SUFFIX_LEN], id[9];
	struct stat sb;
	int n;

	if (base != NULL && base[0] == '/')
		n = snprintf(a->statedir, sizeof(a->statedir), "%s/visor/audit",
		    base);
	else if (home != NULL && home[0] == '/')
		n = snprintf(a->statedir, sizeof(a->statedir),
		    "%s/.local/state/visor/audit", home);
	else if (!create)
		return 1;
	else {
		fail("no state file: set HOME or XDG_STATE_HOME, or give "
		    "--state FILE (or --no-state)");
		return -1;
	}
	if (state_name_encode(note_verifier_name(a->v), safe,
	    sizeof(safe)) < 0) {
		if (!create)
			return 1;
		fail("the key name %s is too long for a state file name: give "
		    "--state FILE", note_verifier_name(a->v));
		return -1;
	}
	note_verifier_key_id(a->v, id);
	if (n < 0 || (size_t)n >= sizeof(a->statedir) ||
	    snprintf(a->statebuf, sizeof(a->statebuf), "%s/%s-%s.checkpoint",
	    a->statedir, safe, id) >= (int)sizeof(a->statebuf)) {
		if (!create)
			return 1;
		fail("state file path too long: give --state FILE");
		return -1;
	}
	if (!create && lstat(a->statedir, &sb) < 0 && errno == ENOENT)
		return 1;
	if (create && file_mkdirs(a->statedir, 0700) < 0) {
		fail("cannot make %s for the state file: %s (give --state "
		    "FILE, or --no-state)", a->statedir, strerror(errno));
		return -1;
	}
	/* Whoever may write there could replace the state with an older
	 * checkpoint and hide a rollback: the folder must be this user's
	 * own, a real folder, and writable by nobody else. */
	if (lstat(a->statedir, &sb) < 0 || !S_ISDIR(sb.st_mode) ||
	    sb.st_uid != geteuid() || (sb.st_mode & 022) != 0) {
		fail("%s is not a folder of yours that only you can write: "
		    "the state file cannot be trusted there (give --state "
		    "FILE)", a->statedir);
		return -1;
	}
	a->state = a->statebuf;
	return 0;
}

/* Until this name, the default state file was
 * "<key name, bytes other than [A-Za-z0-9._-] as '_', at most 63>-<the
 * first 8 bytes of SHA-256 of the vkey line, 16 hex>.checkpoint": one per
 * spelling of the key rather than per key.  1 if file is such a name for
 * prefix ("<mangled name>-"), else 0. */
static int
is_legacy_state_name(const char *file, const char *prefix)
{
	size_t plen = strlen(prefix), i;

	if (strncmp(file, prefix, plen) != 0)
		return 0;
	for (i = 0; i < 16; i++) {
		char c = file[plen + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return strcmp(file + plen + 16, ".checkpoint") == 0;
}

/* The default state file does not exist yet: the checkpoints an earlier
 * visorctl kept for this key under the old names (above) are still ones
 * this auditor verified, so an upgrade must not drop them.  Every old file
 * in the state folder that holds a checkpoint signed by this key goes into
 * *olds (caller frees), *nold of them; old files of other keys (an earlier
 * PKI with the same area) do not verify and are left alone.  They are only
 * read: once the new file exists they are no longer consulted.  0 or -1
 * (reported). */
static int
read_legacy_states(audit_ctx_t *a, audit_checkpoint_t **olds, size_t *nold)
{
	const char *name = note_verifier_name(a->v);
	char prefix[80], path[PATH_MAX_LEN], err[AUDIT_VERIFY_ERR];
	audit_checkpoint_t cp, *grown;
	struct dirent *de;
	DIR *d;
	char *data;
	size_t i, len, cap = 0;
	int ret = -1;

	*olds = NULL;
	*nold = 0;
	for (i = 0; name[i] != '\0' && i < 63; i++)
		prefix[i] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
		    "VWXYZ0123456789.-_", name[i]) != NULL ? name[i] : '_';
	prefix[i++] = '-';
	prefix[i] = '\0';
	if ((d = opendir(a->statedir)) == NULL) {
		fail("cannot read the state folder %s: %s", a->statedir,
		    strerror(errno));
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!is_legacy_state_name(de->d_name, prefix))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", a->statedir,
		    de->d_name) >= (int)sizeof(path))
			continue;
		if (file_read_all(path, NOTE_MAX_SIZE, &data, &len) < 0) {
			fail("cannot read the earlier state file %s: %s", path,
			    strerror(errno));
			goto out;
		}
		if (audit_verify_checkpoint(a->v, data, len, &cp, err,
		    sizeof(err)) < 0) {
			free(data);
			continue;
		}
		free(data);
		if (*nold == cap) {
			cap = cap ? cap * 2 : 4;
			if ((grown = realloc(*olds, cap * sizeof(*grown))) ==
			    NULL) {
				fail("out of memory");
				goto out;
			}
			*olds = grown;
		}
		(*olds)[(*nold)++] = cp;
	}
	if (errno != 0) {
		fail("cannot read the state folder %s: %s", a->statedir,
		    strerror(errno));
		goto out;
	}
	ret = 0;
out:
	closedir(d);
	if (ret != 0) {
		free(*olds);
		*olds = NULL;
		*nold = 0;
	}
	return ret;
}

/*
 * checkpoint, prove, search and export keep no state, but must not show a
 * log that the state verify keeps proves rolled back or forked: a gateway
 * holding the area's key could otherwise answer the scheduled verify with
 * the log the auditor saw and a search with another one, entries altered,
 * under a checkpoint of its own that verifies.  So cp must extend the last
 * checkpoint verify kept (or, while that file does not exist yet, each one
 * kept under the earlier names), as in verify.  Only read: only verify,
 * which checks every entry, moves the state on.  0, or -1 (reported).
 */
static int
check_verified(audit_ctx_t *a, const audit_checkpoint_t *cp)
{
	audit_checkpoint_t old, *legacy = NULL;
	size_t nlegacy = 0, i;
	int rc, ret = -1;

	if (a->no_state)
		return 0;
	if (a->state == NULL && (rc = default_state(a, 0)) != 0)
		return rc > 0 ? 0 : -1;
	if ((rc = read_state(a, &old)) < 0)
		return -1;
	if (rc == 0) {
		if (check_consistency(a, &old, cp) < 0)
			goto refused;
		return 0;
	}
	if (a->state == a->statebuf &&
	    read_legacy_states(a, &legacy, &nlegacy) < 0)
		return -1;
	for (i = 0; i < nlegacy; i++)
		if (check_consistency(a, &legacy[i], cp) < 0)
			goto refused;
	ret = 0;
	goto out;
refused:
	fail("the gateway's checkpoint (%" PRIu64 " entries) is not of the "
	    "log verified before (state file %s)", cp->size, a->state);
out:
	free(legacy);
	return ret;
}

/*
 * Runs of verify with one state file take turns: each holds an exclusive
 * lock on "<state file>.lock" from reading the state to writing it.  Two
 * at once would both read the same old checkpoint, and the one that
 * fetched the older checkpoint could finish last and write it over the
 * newer one: the state would move back, and a later rollback or fork of
 * the entries between the two would pass.  Returns the descriptor
 * holding the lock (closing it releases it), or -1 (reported).
 */
static int
lock_state(const char *state)
{
	char path[PATH_MAX_LEN + 8];
	int fd, rc;

	if (snprintf(path, sizeof(path), "%s.lock", state) >=
	    (int)sizeof(path)) {
		fail("state file path too long: %s", state);
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) < 0) {
		fail("cannot open the lock file %s: %s", path, strerror(errno));
		return -1;
	}
	if ((rc = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EWOULDBLOCK) {
		fprintf(stderr, "visorctl audit: waiting for another visorctl "
		    "audit verify using the state file %s\n", state);
		while ((rc = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
			;
	}
	if (rc < 0) {
		fail("cannot lock %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The checkpoint of this area's log that the gateway at url (a peer,
 * which keeps the latest one this area's gateway sent it:
 * docs/AUDIT.md) holds, checked against the log's verified checkpoint
 * cp: it must be signed by the log's key, and the log must extend it (a
 * consistency proof from the audited gateway).  The witness is reached
 * as any gateway under the national root, without a CRL: what it says is
 * trusted for the signature it carries, not for the connection.  0 or -1
 * (reported).
 */
static int
check_witness(audit_ctx_t *a, const char *url, const audit_checkpoint_t *cp)
{
	https_client_options_t opt;
	https_client_t *c = NULL;
	https_response_t resp;
	audit_checkpoint_t w;
	char full[URL_MAX], err[AUDIT_VERIFY_ERR], area[64];
	const char *dot, *slash;
	cJSON *j = NULL;
	const cJSON *it, *list;
	const char *note = NULL;
	size_t n;
	int ret = -1;

	memset(&resp, 0, sizeof(resp));
	/* The audited area, from the origin "visor.<area>/audit". */
	dot = a->expect_origin + 6;
	if ((slash = strchr(dot, '/')) == NULL ||
	    (size_t)(slash - dot) >= sizeof(area)) {
		fail("bad origin %s", a->expect_origin);
		return -1;
	}
	memcpy(area, dot, (size_t)(slash - dot));
	area[slash - dot] = '\0';
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n == 0 || n + 32 >= sizeof(full)) {
		fail("bad --witness URL");
		return -1;
	}
	snprintf(full, sizeof(full), "%.*s/v1/audit/witnessed", (int)n, url);
	memset(&opt, 0, sizeof(opt));
	opt.cert = a->cert;
	opt.key = a->key;
	opt.root = a->cacert;
	opt.max_response = 1u << 20;
	if ((c = https_client_new(&opt, err, sizeof(err))) == NULL) {
		fail("--witness %s: %s", url, err);
		return -1;
	}
	if (https_client_call(c, "GET", full, NULL, NULL, 0, &resp, err,
	    sizeof(err)) < 0) {
		fail("--witness %s: %s", url, err);
		goto out;
	}
	if (resp.status != 200) {
		fail("--witness %s: the witness answered %ld: %.300s", url,
		    resp.status, resp.body.data ? resp.body.data : "");
		goto out;
	}
	if ((j = json_parse_strict(resp.body.data, resp.body.len, 8, err,
	    sizeof(err))) == NULL ||
	    !cJSON_IsArray(list = cJSON_GetObjectItemCaseSensitive(j,
	    "witnessed"))) {
		fail("--witness %s: not a witnessed list", url);
		goto out;
	}
	cJSON_ArrayForEach(it, list) {
		const char *ar = json_get_str(it, "area");

		if (ar != NULL && strcmp(ar, area) == 0)
			note = json_get_str(it, "checkpoint");
	}
	if (note == NULL) {
		fail("--witness %s holds no checkpoint of %s's log (is %s "
		    "configured there with its audit_vkey, and does this "
		    "gateway send its checkpoints?)", url, area, area);
		goto out;
	}
	if (audit_verify_checkpoint(a->v, note, strlen(note), &w, err,
	    sizeof(err)) < 0) {
		fail("REFUSED: the checkpoint --witness %s holds is not one "
		    "of this log: %s", url, err);
		goto out;
	}
	if (w.size > cp->size) {
		fail("REFUSED: --witness %s holds a checkpoint of size %" PRIu64
		    " signed by %s, but the gateway's log has %" PRIu64
		    " entries: the log was rolled back (or cut) after the "
		    "witness saw it", url, w.size, note_verifier_name(a->v),
		    cp->size);
		goto out;
	}
	if (check_consistency(a, &w, cp) < 0) {
		fail("REFUSED: the log is not an extension of the checkpoint "
		    "(size %" PRIu64 ") --witness %s holds: it was forked",
		    w.size, url);
		goto out;
	}
	printf("consistent with the checkpoint (size %" PRIu64 ") witnessed "
	    "by %s\n", w.size, url);
	ret = 0;
out:
	cJSON_Delete(j);
	https_response_free(&resp);
	https_client_free(c);
	return ret;
}

static int
do_verify(audit_ctx_t *a)
{
	audit_checkpoint_t cp, old, *legacy = NULL;
	walk_ctx_t wc;
	buf_t note = BUF_INIT;
	char err[AUDIT_VERIFY_ERR], b64[B64_ENCODED_SIZE(MERKLE_HASH_LEN)];
	uint64_t bad;
	size_t nlegacy = 0, i;
	int have_old = 0, rc, ret = 1, lock = -1;

	memset(&wc, 0, sizeof(wc));
	audit_walk_init(&wc.w);
	if (a->state == NULL && !a->no_state && default_state(a, 1) < 0)
		goto out;
	if (a->state != NULL) {
		if ((lock = lock_state(a->state)) < 0)
			goto out;
		if ((rc = read_state(a, &old)) < 0)
			goto out;
		have_old = rc == 0;
		if (!have_old && a->state == a->statebuf &&
		    read_legacy_states(a, &legacy, &nlegacy) < 0)
			goto out;
		if (nlegacy > 0)
			fprintf(stderr, "visorctl audit: the state file is now "
			    "%s; the %zu checkpoint(s) of this key kept beside "
			    "it under the earlier names are checked too\n",
			    a->state, nlegacy);
		else if (!have_old)
			fprintf(stderr, "visorctl audit: first verification "
			    "with this key: its checkpoint is kept in %s\n",
			    a->state);
	}
	if (fetch_checkpoint(a, &cp, &note) < 0)
		goto out;
	if (have_old && check_consistency(a, &old, &cp) < 0)
		goto out;
	for (i = 0; i < a->n_witness; i++)
		if (check_witness(a, a->witness[i], &cp) < 0)
			goto out;
	/* The log must extend each of them: if they disagree (kept while
	 * the key was written two ways) at most one can be the real log. */
	for (i = 0; i < nlegacy; i++) {
		if (check_consistency(a, &legacy[i], &cp) < 0)
			goto out;
		if (!have_old || legacy[i].size > old.size)
			old = legacy[i];
		have_old = 1;
	}
	if (walk_all(a, &cp, &wc) < 0)
		goto out;
	if (audit_walk_finish(&wc.w, &cp, err, sizeof(err)) < 0) {
		bad = locate_bad(a, &wc, &cp);
		if (bad != AUDIT_INDEX_NONE)
			fail("entry %" PRIu64 ": not the entry the checkpoint "
			    "signs (%s)", bad, err);
		else
			fail("%s", err);
		goto out;
	}
	if (a->state != NULL && file_write_atomic(a->state, note.data,
	    note.len, 0600) < 0) {
		fail("verified, but cannot write the state file %s: %s",
		    a->state, strerror(errno));
		goto out;
	}
	note_times_back(wc.w.times_back, wc.w.first_back);
	b64_encode(cp.root, MERKLE_HASH_LEN, b64);
	printf("verified %" PRIu64 " entries, root %s, checkpoint signed by %s\n",
	    cp.size, b64, note_verifier_name(a->v));
	if (have_old)
		printf("consistent with the last verified checkpoint (size %"
		    PRIu64 ")\n", old.size);
	ret = 0;
out:
	if (lock >= 0)
		close(lock);
	free(wc.hashes);
	free(legacy);
	buf_free(&note);
	return ret;
}

/* ---- prove ---- */

typedef struct {
	buf_t leaf;
} one_leaf_t;

static int
keep_leaf(void *ctx, uint64_t index, const uint8_t *leaf, size_t len)
{
	one_leaf_t *o = ctx;

	(void)index;
	return buf_append(&o->leaf, leaf, len);
}

/* Prove leaf (already fetched, bytes given) at index against cp, in the
 * tree of size leaves (<= cp->size).  0 or -1 (reported). */
static int
prove_leaf(audit_ctx_t *a, uint64_t index, uint64_t size, const uint8_t *leaf,
    size_t len, const audit_checkpoint_t *cp)
{
	char path[160], err[AUDIT_VERIFY_ERR];
	buf_t incl = BUF_INIT, cons = BUF_INIT;
	int ret = -1;

	snprintf(path, sizeof(path), "/v1/audit/proof/inclusion?index=%" PRIu64
	    "&size=%" PRIu64, index, size);
	if (get(a, path, &incl) < 0)
		goto out;
	if (size < cp->size) {
		snprintf(path, sizeof(path), "/v1/audit/proof/consistency?from=%"
		    PRIu64 "&to=%" PRIu64, size, cp->size);
		if (get(a, path, &cons) < 0)
			goto out;
	}
	if (audit_verify_inclusion_at(incl.data, incl.len, cons.data, cons.len,
	    index, size, leaf, len, cp, err, sizeof(err)) < 0) {
		fail("%s", err);
		goto out;
	}
	ret = 0;
out:
	buf_free(&incl);
	buf_free(&cons);
	return ret;
}

/* 32 bytes from 64 lower-case hex digits; 0 or -1. */
static int
hex32(const char *s, unsigned char out[32])
{
	static const char digits[] = "0123456789abcdef";
	const char *hi, *lo;
	size_t i;

	if (s == NULL || strlen(s) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		if (s[2 * i] == '\0' || s[2 * i + 1] == '\0' ||
		    (hi = strchr(digits, s[2 * i])) == NULL ||
		    (lo = strchr(digits, s[2 * i + 1])) == NULL)
			return -1;
		out[i] = (unsigned char)((hi - digits) << 4 | (lo - digits));
	}
	return 0;
}

/*
 * --sender-cert: an entry of a transfer received keeps the sender's
 * X-Visor-Signature over the bytes it names by "digest" (SPEC section 9:
 * "verifiable by anyone holding the national root").  Checked with the
 * certificate in file, which must be the one the receiving gateway
 * verified on the connection and recorded (actor.cert, its SHA-256).
 * Said on stderr; 0, or -1.
 */
static int
check_sender(const audit_ctx_t *a, const char *leaf, size_t len)
{
	const char *sig, *digest, *fp, *id;
	const cJSON *actor;
	unsigned char d[32];
	char have[65], shown[4 * IDENTITY_URI_MAX], why[512];
	X509 *x = NULL;
	cJSON *j;
	int ret = -1;

	j = json_parse_strict(leaf, len, JSON_DEFAULT_MAX_DEPTH, NULL, 0);
	actor = cJSON_GetObjectItemCaseSensitive(j, "actor");
	sig = json_get_str(j, "signature");
	digest = json_get_str(j, "digest");
	fp = json_get_str(actor, "cert");
	id = json_get_str(actor, "id");
	if (sig == NULL || fp == NULL || id == NULL) {
		fail("entry %" PRIu64 ": carries no sender's signature (entries "
		    "of transfers received keep it, since visor-gw of 7 "
		    "December 2026)", a->index);
		goto out;
	}
	if (hex32(digest, d) < 0) {
		fail("entry %" PRIu64 ": its digest is not a SHA-256 in hex",
		    a->index);
		goto out;
	}
	if ((x = pki_load_cert(a->sender_cert, why, sizeof(why))) == NULL) {
		fail("%s", why);
		goto out;
	}
	tls_trust_cert_sha256(x, have);
	if (strcmp(have, fp) != 0) {
		fail("entry %" PRIu64 ": %s is not the certificate the sender "
		    "used (SHA-256 %s; the entry names %s)", a->index,
		    a->sender_cert, have, fp);
		goto out;
	}
	if (sig_verify_digest_cert(x, d, sig, strlen(sig)) < 0) {
		fail("entry %" PRIu64 ": the sender's signature does NOT verify "
		    "with %s", a->index, a->sender_cert);
		goto out;
	}
	cli_displayable(id, shown, sizeof(shown));
	fprintf(stderr, "entry %" PRIu64 ": sender's signature verified: %s "
	    "signed the bytes of SHA-256 %s with the certificate of SHA-256 "
	    "%s\n", a->index, shown, digest, fp);
	ret = 0;
out:
	X509_free(x);
	cJSON_Delete(j);
	return ret;
}

static int
do_prove(audit_ctx_t *a)
{
	audit_checkpoint_t cp;
	one_leaf_t o;
	char path[128], why[AUDIT_VERIFY_ERR];
	uint64_t size;
	size_t count;
	buf_t body;
	int rc, ret = 1;

	buf_init(&o.leaf, PROOF_JSON_MAX_LEAF);
	if (!a->have_index) {
		fail("prove needs --index I");
		ret = 2;
		goto out;
	}
	if (fetch_checkpoint(a, &cp, NULL) < 0 || check_verified(a, &cp) < 0)
		goto out;
	size = a->have_size ? a->size : cp.size;
	if (size == 0 || size > cp.size || a->index >= size) {
		fail("need index < size <= %" PRIu64 " (the signed size); got "
		    "index %" PRIu64 ", size %" PRIu64, cp.size, a->index, size);
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/audit/entries?start=%" PRIu64
	    "&end=%" PRIu64, a->index, a->index + 1);
	if (get(a, path, &body) < 0)
		goto out;
	rc = proof_json_entries(body.data, body.len, a->index, 1, keep_leaf, &o,
	    &count, why, sizeof(why));
	buf_free(&body);
	if (rc < 0 || count != 1) {
		fail("entry %" PRIu64 ": bad entries answer: %s", a->index,
		    rc < 0 ? why : "no entry");
		goto out;
	}
	if (prove_leaf(a, a->index, size, (const uint8_t *)o.leaf.data,
	    o.leaf.len, &cp) < 0)
		goto out;
	if (print_entry(NULL, (const char *)o.leaf.data, o.leaf.len) < 0)
		goto out;
	fprintf(stderr, "entry %" PRIu64 " is in the log of %" PRIu64
	    " entries (checkpoint of %" PRIu64 " signed by %s)\n", a->index,
	    size, cp.size, note_verifier_name(a->v));
	if (a->sender_cert != NULL && check_sender(a, (const char *)o.leaf.data,
	    o.leaf.len) < 0)
		goto out;
	ret = 0;
out:
	buf_free(&o.leaf);
	return ret;
}

/* ---- search ---- */

typedef struct {
	uint64_t index;
	uint8_t *leaf;
	size_t len;
} hit_t;

typedef struct {
	hit_t *hits;
	size_t n, cap;
} hits_t;

static int
keep_hit(void *ctx, uint64_t index, const uint8_t *leaf, size_t len)
{
	hits_t *h = ctx;
	hit_t *nh;

	if (h->n == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64;

		if ((nh = realloc(h->hits, ncap * sizeof(*nh))) == NULL)
			return -1;
		h->hits = nh;
		h->cap = ncap;
	}
	if ((h->hits[h->n].leaf = malloc(len)) == NULL)
		return -1;
	memcpy(h->hits[h->n].leaf, leaf, len);
	h->hits[h->n].len = len;
	h->hits[h->n].index = index;
	h->n++;
	return 0;
}

static int
append_query(buf_t *q, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	if (val == NULL)
		return 0;
	if (buf_printf(q, "%c%s=", q->len ? '&' : '?', key) < 0)
		return -1;
	for (p = (const unsigned char *)val; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~') {
			if (buf_append(q, p, 1) < 0)
				return -1;
		} else if (buf_printf(q, "%%%c%c", hex[*p >> 4],
		    hex[*p & 15]) < 0)
			return -1;
	}
	return 0;
}

/* The gateway may hide hits (a search cannot prove absence) but must not
 * invent them: a hit must match what was asked. */
static int
hit_matches(const audit_ctx_t *a, const hit_t *h)
{
	const cJSON *actor;
	cJSON *j;
	const char *s;
	int ok = 1;

	if ((j = json_parse_strict((const char *)h->leaf, h->len,
	    JSON_DEFAULT_MAX_DEPTH, NULL, 0)) == NULL)
		return 0;
	if (a->record != NULL && ((s = json_get_str(j, "record")) == NULL ||
	    strcmp(s, a->record) != 0))
		ok = 0;
	if (a->op != NULL && ((s = json_get_str(j, "op")) == NULL ||
	    strcmp(s, a->op) != 0))
		ok = 0;
	actor = cJSON_GetObjectItemCaseSensitive(j, "actor");
	if (a->actor != NULL && ((s = json_get_str(actor, "id")) == NULL ||
	    strcmp(s, a->actor) != 0))
		ok = 0;
	/* Compared in the canonical form (util/rfc3339.h), in which the
	 * gateway stores times: since is inclusive, until exclusive, as the
	 * gateway has them.  A time that is not one matches nothing. */
	if ((a->since != NULL || a->until != NULL) &&
	    !rfc3339_in_range(json_get_str(j, "time"),
	    a->since != NULL ? a->since_c : NULL,
	    a->until != NULL ? a->until_c : NULL))
		ok = 0;
	cJSON_Delete(j);
	return ok;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
hits_clear(hits_t *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		free(h->hits[i].leaf);
	h->n = 0;
}

/* Fetch the gateway's checkpoint again, to replace cp, the one the hits so
 * far were proved against.  The new one must extend it (at least as large,
 * proved consistent), or those hits and the later ones would be proved in
 * two different logs, a fork, while the summary names only the last.  0,
 * or -1 (reported). */
static int
refresh_checkpoint(audit_ctx_t *a, audit_checkpoint_t *cp)
{
	audit_checkpoint_t fresh;

	if (fetch_checkpoint(a, &fresh, NULL) < 0)
		return -1;
	/* Same size: the same tree only if the same root (public, so a
	 * plain compare); no proof to ask for. */
	if (fresh.size == cp->size) {
		if (memcmp(fresh.root, cp->root, MERKLE_HASH_LEN) != 0) {
			fail("REFUSED: two checkpoints of %" PRIu64 " entries "
			    "with different roots: the log was forked",
			    cp->size);
			return -1;
		}
		return 0;
	}
	if (check_consistency(a, cp, &fresh) < 0) {
		fail("the gateway's newer checkpoint (%" PRIu64 " entries) "
		    "does not extend the one the search proved hits against "
		    "(%" PRIu64 " entries)", fresh.size, cp->size);
		return -1;
	}
	*cp = fresh;
	return 0;
}

static int
do_search(audit_ctx_t *a)
{
	audit_checkpoint_t cp;
	hits_t h = { NULL, 0, 0 };
	char err[AUDIT_VERIFY_ERR];
	buf_t q = BUF_INIT, path = BUF_INIT, body = BUF_INIT;
	uint64_t size, start = 0, next, bound = 0;
	size_t count, i, proved = 0, skipped = 0, pages = 0;
	long waited;
	int ret = 1, gave_up = 0;

	if ((a->since != NULL && rfc3339_canonical(a->since, a->since_c) < 0) ||
	    (a->until != NULL && rfc3339_canonical(a->until, a->until_c) < 0)) {
		fail("--since and --until take YYYY-MM-DD or "
		    "YYYY-MM-DDTHH:MM:SS[.fff]Z");
		ret = 2;
		goto out;
	}
	if (append_query(&q, "record", a->record) < 0 ||
	    append_query(&q, "actor", a->actor) < 0 ||
	    append_query(&q, "op", a->op) < 0 ||
	    append_query(&q, "since", a->since) < 0 ||
	    append_query(&q, "until", a->until) < 0) {
		fail("query too long");
		goto out;
	}
	/* Later checkpoints (a hit past this one) must extend this one, so
	 * they extend the one verified before too. */
	if (fetch_checkpoint(a, &cp, NULL) < 0 || check_verified(a, &cp) < 0)
		goto out;
	/* Page after page: the gateway answers at most 1000 hits at a time
	 * and says where the next page starts. */
next_page:
	buf_reset(&path);
	buf_free(&body);	/* get() sets it up afresh */
	hits_clear(&h);
	if (buf_printf(&path, "/v1/audit/search%s", q.data ? q.data : "") < 0 ||
	    (start > 0 && buf_printf(&path, "%cstart=%" PRIu64,
	    q.len ? '&' : '?', start) < 0)) {
		fail("query too long");
		goto out;
	}
	if (get(a, path.data, &body) < 0)
		goto out;
	if (audit_search_page(body.data, body.len, keep_hit, &h, &size,
	    &count, &next, err, sizeof(err)) < 0) {
		fail("bad search answer: %s", err);
		goto out;
	}
	if (h.n > 0 && h.hits[0].index < start) {
		fail("entry %" PRIu64 ": returned for a page that starts at %"
		    PRIu64, h.hits[0].index, start);
		goto out;
	}
	/* The search covers the log as it was at the first page: later
	 * entries could otherwise keep a busy query (or a hostile gateway)
	 * paging for ever.  A page may hold fewer than 1000 hits (SPEC 5:
	 * "at most"); audit_search_page has checked that "next" is past its
	 * last hit, so every page moves the search on. */
	if (pages == 0)
		bound = size;
	else if (size < bound) {
		fail("the log shrank from %" PRIu64 " to %" PRIu64 " entries "
		    "between two pages", bound, size);
		goto out;
	}
	pages++;
	for (i = 0; i < h.n; i++) {
		if (!hit_matches(a, &h.hits[i])) {
			fail("entry %" PRIu64 ": returned by the search but does "
			    "not match it", h.hits[i].index);
			goto out;
		}
		/* Entries are signed within the checkpoint interval: wait a
		 * little for a checkpoint that covers a fresh hit.  Once, for
		 * the whole search: hits come in index order, so a wait that
		 * ran out would run out again for each later hit (1,000 hits
		 * a page, SEARCH_WAIT_MS each, had a gateway that stopped
		 * signing hold the auditor for half an hour a page). */
		for (waited = 0; h.hits[i].index >= cp.size && !gave_up &&
		    waited < SEARCH_WAIT_MS; waited += SEARCH_POLL_MS) {
			sleep_ms(SEARCH_POLL_MS);
			if (refresh_checkpoint(a, &cp) < 0)
				goto out;
		}
		if (h.hits[i].index >= cp.size)
			gave_up = 1;
		if (h.hits[i].index >= cp.size) {
			fprintf(stderr, "visorctl audit: note: entry %" PRIu64
			    " is newer than the signed checkpoint (size %"
			    PRIu64 "): not proved, not shown\n",
			    h.hits[i].index, cp.size);
			skipped++;
			continue;
		}
		if (prove_leaf(a, h.hits[i].index, cp.size, h.hits[i].leaf,
		    h.hits[i].len, &cp) < 0)
			goto out;
		if (print_entry(&h.hits[i].index, (const char *)h.hits[i].leaf,
		    h.hits[i].len) < 0)
			goto out;
		proved++;
	}
	if (next > 0 && next < bound) {
		fflush(stdout);
		start = next;
		goto next_page;
	}
	fprintf(stderr, "%zu entries found and proved against the checkpoint "
	    "of %" PRIu64 " signed by %s%s", proved, cp.size,
	    note_verifier_name(a->v), skipped ? " (some too new, see notes)" :
	    "");
	if (pages > 1)
		fprintf(stderr, " (in %zu pages)", pages);
	fputc('\n', stderr);
	ret = 0;
out:
	hits_clear(&h);
	free(h.hits);
	buf_free(&q);
	buf_free(&path);
	buf_free(&body);
	return ret;
}

/* ---- export and verify-bundle ---- */

static int
do_export(audit_ctx_t *a)
{
	audit_checkpoint_t cp;
	walk_ctx_t wc;
	buf_t note = BUF_INIT, out;
	char err[AUDIT_VERIFY_ERR];
	int ret = 1;

	memset(&wc, 0, sizeof(wc));
	audit_walk_init(&wc.w);
	buf_init(&out, AUDIT_BUNDLE_MAX);
	if (a->file == NULL) {
		fail("export needs FILE");
		ret = 2;
		goto out;
	}
	if (fetch_checkpoint(a, &cp, &note) < 0 || check_verified(a, &cp) < 0)
		goto out;
	if (audit_bundle_begin(&out, a->vkey_line.data, note.data,
	    note.len) < 0) {
		fail("cannot start the bundle");
		goto out;
	}
	wc.bundle = &out;
	if (walk_all(a, &cp, &wc) < 0)
		goto out;
	/* Only a log that verifies is exported. */
	if (audit_walk_finish(&wc.w, &cp, err, sizeof(err)) < 0) {
		fail("not exported: %s", err);
		goto out;
	}
	if (audit_bundle_end(&out) < 0 ||
	    file_write_atomic(a->file, out.data, out.len, 0600) < 0) {
		fail("cannot write %s: %s", a->file, strerror(errno));
		goto out;
	}
	note_times_back(wc.w.times_back, wc.w.first_back);
	printf("exported %" PRIu64 " entries to %s, checkpoint signed by %s\n",
	    cp.size, a->file, note_verifier_name(a->v));
	ret = 0;
out:
	free(wc.hashes);
	buf_free(&note);
	buf_free(&out);
	return ret;
}

/*
 * verify-bundle, given the area's key (--vkey or --cert), also holds the
 * bundle against the checkpoint verify kept for that key (the state file,
 * or --state FILE; --no-state: none), as the online commands do: a bundle
 * that covers it must begin with the log verified before, or it was
 * altered or forked.  While the default state file does not exist yet,
 * each checkpoint kept for the key under the earlier names is held against
 * it instead (read_legacy_states, as verify and check_verified do): an
 * upgrade must not turn the auditor's history into a first verification.
 * A bundle older than one of them cannot be held against it offline and
 * is said to be so.  Without a trusted key there is no state to read.
 * Only read, never written: a bundle comes from elsewhere.
 */
static int
do_verify_bundle(audit_ctx_t *a)
{
	audit_bundle_result_t res;
	audit_checkpoint_t old, *olds = NULL;
	merkle_hash_t at_root;
	char err[AUDIT_VERIFY_ERR], b64[B64_ENCODED_SIZE(MERKLE_HASH_LEN)];
	char where[PATH_MAX_LEN + 64];
	char *data = NULL;
	size_t len, nold = 0, i, extended = 0;
	int rc, ret = 2, have_at = 0, legacy = 0;

	if (a->file == NULL) {
		fail("verify-bundle needs FILE");
		return 2;
	}
	if (a->vkey == NULL && a->cert != NULL) {
		if (default_vkey(a->cert, a->vkeybuf, sizeof(a->vkeybuf)) < 0) {
			fail("path too long");
			return 2;
		}
		a->vkey = a->vkeybuf;
	}
	if (a->vkey != NULL && (rc = load_vkey(a, a->vkey)) != 0)
		return rc;
	if (file_read_all(a->file, AUDIT_BUNDLE_MAX, &data, &len) < 0) {
		fail("cannot read %s: %s", a->file, strerror(errno));
		goto out;
	}
	ret = 1;
	if (a->v != NULL && !a->no_state) {
		rc = a->state == NULL ? default_state(a, 0) : 0;
		if (rc < 0 || (rc == 0 && (rc = read_state(a, &old)) < 0))
			goto out;
		if (rc == 0) {
			olds = &old;
			nold = 1;
		} else if (a->state != NULL && a->state == a->statebuf) {
			if (read_legacy_states(a, &olds, &nold) < 0)
				goto out;
			legacy = nold > 0;
		}
	}
	if (legacy) {
		snprintf(where, sizeof(where), "kept under an earlier name in %s",
		    a->statedir);
		fprintf(stderr, "visorctl audit: no state file %s yet; the %zu "
		    "checkpoint(s) of this key kept beside it under the earlier "
		    "names are checked\n", a->state, nold);
	} else if (nold > 0)
		snprintf(where, sizeof(where), "state file %s", a->state);
	/* The root at the first old size comes with the verification; each
	 * further one (several earlier names) takes one more pass. */
	if (audit_bundle_verify_at(data, len, a->v, nold > 0 ? olds[0].size :
	    0, at_root, &have_at, &res, err, sizeof(err)) < 0) {
		fail("%s: %s", a->file, err);
		goto out;
	}
	if (res.key_from_bundle)
		fprintf(stderr, "visorctl audit: WARNING: no --vkey given: the "
		    "bundle was checked with its own key %s; compare its vkey "
		    "line with the area's audit.vkey\n", res.key_name);
	for (i = 0; i < nold; i++) {
		if (olds[i].size == 0)
			continue;
		if (olds[i].size > res.cp.size) {
			fprintf(stderr, "visorctl audit: NOTE: the bundle (%"
			    PRIu64 " entries) is older than the log verified "
			    "before (%" PRIu64 " entries, %s): offline, it cannot "
			    "be held against it\n", res.cp.size, olds[i].size,
			    where);
			continue;
		}
		if (i > 0 && audit_bundle_verify_at(data, len, a->v,
		    olds[i].size, at_root, &have_at, &res, err,
		    sizeof(err)) < 0) {
			fail("%s: %s", a->file, err);
			goto out;
		}
		if (!have_at || memcmp(at_root, olds[i].root,
		    MERKLE_HASH_LEN) != 0) {
			fail("REFUSED: the bundle's first %" PRIu64 " entries are "
			    "not the log verified before (%s): the log was "
			    "altered, rolled back or forked", olds[i].size, where);
			goto out;
		}
		extended++;
	}
	note_times_back(res.times_back, res.first_back);
	b64_encode(res.cp.root, MERKLE_HASH_LEN, b64);
	printf("verified %" PRIu64 " entries, root %s, checkpoint signed by %s%s\n",
	    res.cp.size, b64, res.key_name, extended > 0 ?
	    "; it extends the log verified before" : "");
	ret = 0;
out:
	if (olds != &old)
		free(olds);
	free(data);
	return ret;
}

int
cmd_audit(int argc, char **argv)
{
	audit_ctx_t a;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((rc = parse_args(&a, argc, argv)) != 0)
		return rc == 3 ? 0 : rc;
	if (a.state != NULL && a.no_state) {
		fail("--state and --no-state exclude each other");
		return 2;
	}
	if (a.sender_cert != NULL && strcmp(a.sub, "prove") != 0) {
		fail("--sender-cert goes with prove");
		return 2;
	}
	if (strcmp(a.sub, "--help") == 0 || strcmp(a.sub, "-h") == 0 ||
	    strcmp(a.sub, "help") == 0) {
		fputs(audit_usage, stdout);
		return 0;
	}
	if (strcmp(a.sub, "verify-bundle") == 0) {
		rc = do_verify_bundle(&a);
		audit_ctx_free(&a);
		return rc;
	}
	if (strcmp(a.sub, "checkpoint") != 0 && strcmp(a.sub, "verify") != 0 &&
	    strcmp(a.sub, "prove") != 0 && strcmp(a.sub, "search") != 0 &&
	    strcmp(a.sub, "export") != 0) {
		fail("unknown subcommand '%s'", a.sub);
		fputs(audit_usage, stderr);
		return 2;
	}
	if ((rc = audit_connect(&a)) != 0) {
		audit_ctx_free(&a);
		return rc;
	}
	if (strcmp(a.sub, "checkpoint") == 0)
		rc = do_checkpoint(&a);
	else if (strcmp(a.sub, "verify") == 0)
		rc = do_verify(&a);
	else if (strcmp(a.sub, "prove") == 0)
		rc = do_prove(&a);
	else if (strcmp(a.sub, "search") == 0)
		rc = do_search(&a);
	else
		rc = do_export(&a);
	audit_ctx_free(&a);
	return rc;
}
