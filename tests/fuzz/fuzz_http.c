/*
 * Fuzz target: HTTP request handling as the gateway does it, end to end.
 *
 * Design.  The input is raw bytes on a connection: libevent's evhttp parses
 * them (we do not write an HTTP parser, and we do not fuzz around the one
 * we use), then gen_cb, the route dispatch of gateway/routes.c and the
 * routes run as in production, against a real store (SQLite, its writer
 * thread, the audit log and checkpoints) in a data directory on tmpfs, with
 * the default MAPPA policy.  What is left out is TLS: a server made by
 * server_new_plain (gateway/server.c, the block marked "plain connections
 * (tests only)") accepts plain TCP on a loopback socket and treats each
 * connection as if its handshake had verified an identity the harness
 * chooses.  Paths, record ids (encoded, traversal), query strings of the
 * audit API, the X-Visor-* headers, If-Match, Idempotency-Key,
 * Content-Type and the bodies of PUT, PATCH and POST all come from the
 * input, and several requests may be pipelined on the one connection (so a
 * PUT can be followed by a PATCH, GET or DELETE of the same record).
 *
 * Input: an optional first line "@<role>\n" picks the identity (see
 * identities[]: police, housing, auditor, the Suffolk gateway, ...; an
 * unknown role picks one by its length); the rest is written to the
 * connection as it is.  "@<role>*<n>\n" writes the rest n times over
 * (n up to 1024): a few KiB of input become megabytes of pipelined
 * requests or of one body, which is what the request memory bound
 * (limits.max_request_memory_mib, 1 MiB here, half of it per identity)
 * counts and cuts off.  (evhttp reads little past a request until it is
 * answered, and a healthy tmpfs store answers at once: what one
 * connection holds is, in practice, one body.)  One role is different: after "@peer-signed\n" the
 * input is up to four transfer bodies separated by NUL bytes, and the
 * harness posts each to /v1/peer/transfers as the Suffolk gateway, signed
 * with its real key, so that a hostile peer's bodies get past the
 * signature check into the body reader, the ingress policy, the store and
 * the signed receipt (the fuzzer cannot forge a signature; a peer holding
 * its key can send anything).
 *
 * One input, one connection: the harness writes the bytes, then turns the
 * worker's event loop itself (server_plain_run_once, on this thread) and
 * reads the answers until nothing moves: every byte written, no request
 * waiting for the store, no new request or answer byte for several turns.
 * Then it closes the connection and lets the server see the close, so
 * nothing of one input is left for the next.  A turn waits at most 50 ms;
 * an input that is not settled within 10 s aborts (a hang is a finding).
 *
 * Oracle: sanitizers, and no answer with a 5xx status but libevent's 501
 * and 505 and the 503 sent-at-ahead to a transfer dated in the future (on a healthy tmpfs store every other 5xx is an internal
 * failure: a policy error on a record the schema accepted, an unreadable
 * stored record, ...).  And once the connection is closed and freed,
 * the request memory it counted is all given back: no bytes counted, no
 * identity holding any (server_plain_stats_t), whatever the input did
 * (pipelined, cut off mid-body, cut off by the bound itself).
 *
 * State: every data directory starts with two records (FZ-1, category 2;
 * FZ-4, category 4 level 3) and two transfers with fixed ids (...01
 * delivered, ...02 rejected; see prefill()), so that one GET, PATCH,
 * DELETE or transfer lookup finds something without a PUT before it.  The
 * store then keeps what earlier inputs wrote (records, idempotency keys,
 * the audit log).  To bound that, and the non-determinism it brings, the
 * server is rebuilt on a fresh data directory every RESET_EVERY inputs.
 * New transfers are queued in the outbox but never delivered (no delivery
 * threads run).
 */
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certs/pki.h"
#include "crypto/note.h"
#include "crypto/sig.h"
#include "gateway/audit_entry.h"
#include "gateway/config.h"
#include "gateway/server.h"
#include "gateway/store.h"
#include "policy/mappa_default.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/log.h"

/* The seed of Suffolk's audit key in the harness (32 bytes). */
#define FUZZ_WITNESS_SEED { 0x77, 0x69, 0x74, 0x6e, 0x65, 0x73, 0x73, 0x2d, \
	0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x73, 0x65, 0x65, 0x64, 0x2d, 0x30, 0x31, \
	0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64 }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define RESET_EVERY 2000
#define TURN_WAIT_MS 50
#define SETTLE_TURNS 4
#define INPUT_DEADLINE_MS 10000
#define ANSWER_MAX (4u << 20)
#define REPEAT_MAX 1024
#define CLOSE_TURNS 50		/* turns for the server to see a close */

static const struct {
	const char *role;
	const char *uri;
	int peer_cert;		/* present the Suffolk gateway certificate */
} identities[] = {
	{ "police", "urn:visor:norfolk:agency:police", 0 },
	{ "probation", "urn:visor:norfolk:agency:probation", 0 },
	{ "prison", "urn:visor:norfolk:agency:prison", 0 },
	{ "housing", "urn:visor:norfolk:agency:housing:st-martins", 0 },
	{ "health", "urn:visor:norfolk:agency:health", 0 },
	{ "education", "urn:visor:norfolk:agency:education", 0 },
	{ "ems", "urn:visor:norfolk:agency:ems", 0 },
	{ "social-care", "urn:visor:norfolk:agency:social-care", 0 },
	{ "auditor", "urn:visor:norfolk:auditor:lay-adviser-1", 0 },
	{ "peer", "urn:visor:suffolk:gateway", 1 },
	{ "peer-signed", "urn:visor:suffolk:gateway", 1 },
	{ "suffolk-police", "urn:visor:suffolk:agency:police", 0 },
	{ "stranger-gateway", "urn:visor:kent:gateway", 0 },
	{ "self", "urn:visor:norfolk:gateway", 0 },
};
#define N_IDENTITIES (sizeof(identities) / sizeof(identities[0]))

static struct {
	int ready;
	char dir[64];
	char config[256];
	char data[256];
	int listen_fd;
	struct sockaddr_in addr;
	server_t *srv;
	X509 *peer_cert;
	EVP_PKEY *peer_key;	/* Suffolk's gateway key, for peer-signed */
	buf_t signed_req;	/* the requests built for peer-signed */
	buf_t repeated;		/* the input written n times ("*<n>") */
	unsigned long inputs;
	int verbose;		/* FUZZ_HTTP_VERBOSE=1: print the answers */
} h;

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_http: %s: %s\n", what, err ? err : strerror(errno));
	abort();
}

/* A non-blocking connection to the server under test.  libFuzzer's timer
 * (SIGALRM) may interrupt the connect: then wait for it to complete
 * instead of taking the interruption for a failure. */
static int
connect_server(void)
{
	struct pollfd p;
	socklen_t len = sizeof(int);
	int fd, soerr = 0;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&h.addr, sizeof(h.addr)) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		close(fd);
		return -1;
	}
	p.fd = fd;
	p.events = POLLOUT;
	while (poll(&p, 1, 5000) < 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 ||
	    soerr != 0) {
		errno = soerr ? soerr : errno;
		close(fd);
		return -1;
	}
	return fd;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	if (file_write_atomic(path, text, strlen(text), mode) < 0)
		die(path, NULL);
}

static void
prefill_done(void *arg, const store_result_t *res)
{
	atomic_int *done = arg;

	atomic_store(done, res->status == STORE_OK ? 1 : -1);
}

/*
 * What every input finds in the store: two records (category 2, and
 * category 4 level 3) and two transfers with known ids, one delivered with
 * a receipt and one rejected with the peer's error, so that a single
 * GET, PATCH, DELETE or GET /v1/transfers/{id} reaches existing state
 * without a PUT or POST before it.
 */
static void
prefill(void)
{
	static const char rec1[] =
	    "{\"id\":\"FZ-1\",\"managing_area\":\"norfolk\",\"category\":2,"
	    "\"level\":2,\"person\":{\"surname\":\"EXAMPLE\",\"forenames\":"
	    "\"Synthetic\",\"dob\":\"1984-07-19\"},\"addresses\":[{\"type\":"
	    "\"home\",\"line1\":\"1 Test Street\",\"town\":\"Norwich\","
	    "\"postcode\":\"NR1 9ZZ\",\"from\":\"2025-03-01\"}],\"risk\":{\"rosh\":"
	    "\"high\",\"people_at_risk\":[\"synthetic\"]},\"orders\":[{\"type\":"
	    "\"SHPO\",\"made\":\"2023-02-01\",\"prohibitions\":[\"synthetic\"]}],"
	    "\"health\":{\"notes\":[\"synthetic\"]},\"intelligence\":[{\"grade\":"
	    "\"B2\",\"handling\":\"police-only\",\"date\":\"2026-01-01\",\"text\":"
	    "\"synthetic\"}]}";
	static const char rec4[] =
	    "{\"id\":\"FZ-4\",\"managing_area\":\"norfolk\",\"category\":4,"
	    "\"level\":3,\"person\":{\"surname\":\"EXAMPLE\",\"dob\":"
	    "\"1990-02-03\"},\"risk\":{\"rosh\":\"very-high\"}}";
	static const char receipt[] =
	    "{\"receipt\":\"{}\",\"signature\":\"AAAA\",\"certificate\":\"-\"}";
	static const char refusal[] =
	    "{\"error\":{\"code\":\"ingress-denied\",\"message\":\"synthetic\"}}";
	store_options_t so;
	store_job_t *job;
	audit_entry_t e1, e4, t[4];
	int i;
	atomic_int done = 0;
	char err[512];
	store_t *st;
	struct timespec pause = { 0, 1000000 };

	memset(&so, 0, sizeof(so));
	so.data_dir = h.data;
	so.area = "norfolk";
	if ((st = store_open(&so, err, sizeof(err))) == NULL)
		die("store_open", err);
	/* Each record write has its entry, as the routes' do: the store
	 * refuses to open records its log never wrote. */
	memset(&e1, 0, sizeof(e1));
	e1.op = "collect";
	e1.actor_id = "urn:visor:norfolk:agency:police";
	e1.record = "FZ-1";
	e1.version = 1;
	e1.result = "ok";
	e4 = e1;
	e4.record = "FZ-4";
	/* And each transfer's status, as the outbox's are (store_writelog.c):
	 * 1 queued then delivered, 2 queued then rejected. */
	for (i = 0; i < 4; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].op = "transfer-out";
		t[i].actor_id = "urn:visor:norfolk:agency:police";
		t[i].record = i < 2 ? "FZ-1" : "FZ-4";
		t[i].transfer = i < 2 ? "00000000000000000000000000000001" :
		    "00000000000000000000000000000002";
		t[i].result = "queued";
	}
	t[1].op = "receipt";
	t[1].result = "ok";
	t[3].result = "rejected";
	if ((job = store_job_new()) == NULL ||
	    store_job_put_record(job, "FZ-1", STORE_VERSION_ABSENT, 2, 2,
	    "norfolk", rec1, sizeof(rec1) - 1, "urn:visor:norfolk:agency:police",
	    "[]") < 0 ||
	    store_job_put_record(job, "FZ-4", STORE_VERSION_ABSENT, 4, 3,
	    "norfolk", rec4, sizeof(rec4) - 1, "urn:visor:norfolk:agency:police",
	    "[]") < 0 ||
	    store_job_outbox_add(job, "00000000000000000000000000000001", "FZ-1",
	    "suffolk", "offender-move", "urn:visor:norfolk:agency:police", "{}", 2,
	    INT64_MAX) < 0 ||
	    store_job_outbox_update(job, "00000000000000000000000000000001",
	    "delivered", 1, 0, receipt, sizeof(receipt) - 1) < 0 ||
	    store_job_outbox_add(job, "00000000000000000000000000000002", "FZ-4",
	    "suffolk", "offender-move", "urn:visor:norfolk:agency:police", "{}", 2,
	    INT64_MAX) < 0 ||
	    store_job_outbox_update(job, "00000000000000000000000000000002",
	    "rejected", 1, 0, refusal, sizeof(refusal) - 1) < 0 ||
	    store_job_audit(job, &e1) < 0 || store_job_audit(job, &e4) < 0 ||
	    store_job_audit(job, &t[0]) < 0 || store_job_audit(job, &t[1]) < 0 ||
	    store_job_audit(job, &t[2]) < 0 || store_job_audit(job, &t[3]) < 0)
		die("prefill", "cannot build the job");
	store_submit(st, job, prefill_done, &done);
	while (atomic_load(&done) == 0)
		nanosleep(&pause, NULL);
	if (atomic_load(&done) < 0)
		die("prefill", "the job failed");
	store_close(st);
}

/* A fresh data directory and a server on it. */
static void
server_up(void)
{
	char err[512];
	buf_t vkey = BUF_INIT;
	config_t *cfg;

	rm_tree(h.data);
	if (mkdir(h.data, 0700) < 0)
		die(h.data, NULL);
	if (store_init_keys(h.data, "norfolk", &vkey, err, sizeof(err)) < 0)
		die("store_init_keys", err);
	buf_free(&vkey);
	prefill();
	if ((cfg = config_load(h.config, err, sizeof(err))) == NULL)
		die("config_load", err);
	if ((h.srv = server_new_plain(h.config, cfg, h.listen_fd, err,
	    sizeof(err))) == NULL)
		die("server_new_plain", err);
}

static void
cleanup(void)
{
	if (!h.ready)
		return;
	server_free(h.srv);
	h.srv = NULL;
	X509_free(h.peer_cert);
	EVP_PKEY_free(h.peer_key);
	buf_free(&h.signed_req);
	buf_free(&h.repeated);
	if (h.listen_fd >= 0)
		close(h.listen_fd);
	rm_tree(h.dir);
	h.ready = 0;
}

static void
setup(void)
{
	char p[256], p2[256], err[512], *cfgtext;
	socklen_t alen = sizeof(h.addr);
	buf_t cfg = BUF_INIT;
	pki_leaf_opts_t leaf = { .days = 20 };
	FILE *f;
	int n;

	h.verbose = getenv("FUZZ_HTTP_VERBOSE") != NULL;
	log_set_level(h.verbose ? LOG_INFO : LOG_ERROR);
	snprintf(h.dir, sizeof(h.dir), "/dev/shm/fuzz_http.XXXXXX");
	if (access("/dev/shm", W_OK) != 0)
		snprintf(h.dir, sizeof(h.dir), "/tmp/fuzz_http.XXXXXX");
	if (mkdtemp(h.dir) == NULL)
		die("mkdtemp", NULL);
	h.listen_fd = -1;
	h.ready = 1;

	/* The PKI: the gateway's own certificate, and Suffolk's for peers. */
	snprintf(p, sizeof(p), "%s/pki", h.dir);
	/* Each certificate within its issuer's validity (pki_issue refuses
	 * one that would outlive it). */
	if (pki_root_create(p, 60, err, sizeof(err)) < 0)
		die("pki_root_create", err);
	snprintf(p2, sizeof(p2), "%s/pki/norfolk", h.dir);
	if (pki_area_ca_create(p, "norfolk", p2, 30, err, sizeof(err)) < 0)
		die("pki_area_ca_create", err);
	snprintf(p2, sizeof(p2), "%s/pki/suffolk", h.dir);
	if (pki_area_ca_create(p, "suffolk", p2, 30, err, sizeof(err)) < 0)
		die("pki_area_ca_create", err);
	snprintf(p, sizeof(p), "%s/pki/norfolk", h.dir);
	snprintf(p2, sizeof(p2), "%s/pki/norfolk/gateway", h.dir);
	if (pki_issue(p, "urn:visor:norfolk:gateway", p2, &leaf, err, sizeof(err)) < 0)
		die("pki_issue", err);
	snprintf(p, sizeof(p), "%s/pki/suffolk", h.dir);
	snprintf(p2, sizeof(p2), "%s/pki/suffolk/gateway", h.dir);
	if (pki_issue(p, "urn:visor:suffolk:gateway", p2, &leaf, err, sizeof(err)) < 0)
		die("pki_issue", err);
	snprintf(p, sizeof(p), "%s/pki/suffolk/gateway.crt", h.dir);
	if ((f = fopen(p, "r")) == NULL ||
	    (h.peer_cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
		die(p, "cannot read the certificate");
	fclose(f);
	snprintf(p, sizeof(p), "%s/pki/suffolk/gateway.key", h.dir);
	if ((f = fopen(p, "r")) == NULL ||
	    (h.peer_key = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		die(p, "cannot read the key");
	fclose(f);
	buf_init(&h.signed_req, 0);
	buf_init(&h.repeated, 0);

	/* Suffolk's audit verifier key, from a fixed seed, so that the seeds
	 * of POST /v1/peer/checkpoints carry notes that verify and reach the
	 * consistency checks (FUZZ_WITNESS_SEED; the seeds were signed with
	 * it). */
	{
		static const unsigned char seed[32] = FUZZ_WITNESS_SEED;
		EVP_PKEY *wk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519,
		    NULL, seed, sizeof(seed));
		note_signer_t *ws = wk ? note_signer_new("visor.suffolk/audit",
		    wk) : NULL;
		buf_t vk = BUF_INIT;

		if (ws == NULL || note_signer_vkey(ws, &vk) < 0 ||
		    buf_append(&vk, "\n", 2) < 0)
			die("witness key", NULL);
		snprintf(p, sizeof(p), "%s/pki/suffolk/audit.vkey", h.dir);
		write_file(p, vk.data, 0644);
		buf_free(&vk);
		note_signer_free(ws);
		EVP_PKEY_free(wk);
	}
	snprintf(p, sizeof(p), "%s/policy.json", h.dir);
	write_file(p, policy_mappa_default_json(), 0644);
	snprintf(h.data, sizeof(h.data), "%s/data", h.dir);

	/* The loopback socket the server accepts on. */
	memset(&h.addr, 0, sizeof(h.addr));
	h.addr.sin_family = AF_INET;
	h.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((h.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(h.listen_fd, (struct sockaddr *)&h.addr, sizeof(h.addr)) < 0 ||
	    listen(h.listen_fd, 16) < 0 ||
	    getsockname(h.listen_fd, (struct sockaddr *)&h.addr, &alen) < 0 ||
	    fcntl(h.listen_fd, F_SETFL, O_NONBLOCK) < 0)
		die("listen", NULL);

	/* The configuration quickstart writes, with small limits where a
	 * limit is what is tested (JSON depth, request memory).  A body may
	 * be 768 KiB: over the half of the 1 MiB of request memory that one
	 * identity may hold, so that one connection can be cut off by the
	 * bound (a body past 768 KiB is refused 413 as before). */
	n = buf_printf(&cfg,
	    "{\"area\":\"norfolk\",\"listen\":\"127.0.0.1:%u\","
	    "\"tls\":{\"cert\":\"%s/pki/norfolk/gateway.crt\","
	    "\"key\":\"%s/pki/norfolk/gateway.key\",\"root\":\"%s/pki/root.crt\","
	    "\"cas\":[\"%s/pki/norfolk/ca.crt\",\"%s/pki/suffolk/ca.crt\"],"
	    "\"crls\":[\"%s/pki/norfolk/crl.pem\",\"%s/pki/suffolk/crl.pem\"]},"
	    "\"policy\":\"%s/policy.json\",\"data_dir\":\"%s\","
	    "\"peers\":[{\"area\":\"suffolk\",\"url\":\"https://127.0.0.1:9\","
	    "\"audit_vkey\":\"%s/pki/suffolk/audit.vkey\"}],"
	    "\"clearances\":{\"urn:visor:norfolk:agency:police\":[\"ct\"],"
	    "\"urn:visor:suffolk:gateway\":[\"ct\",\"level3\"]},"
	    "\"limits\":{\"max_body_bytes\":786432,\"max_header_bytes\":8192,"
	    "\"max_connections\":64,\"header_timeout_ms\":10000,"
	    "\"body_timeout_ms\":30000,\"idle_timeout_ms\":60000,"
	    "\"max_json_depth\":32,\"max_request_memory_mib\":1},"
	    "\"audit\":{\"checkpoint_interval_ms\":1000},"
	    "\"transfer\":{\"deadline_s\":86400,\"max_in_flight_per_peer\":8,"
	    "\"retry_base_ms\":500,\"retry_max_ms\":60000,\"outbox_max\":1000},"
	    "\"threads\":1}",
	    (unsigned)ntohs(h.addr.sin_port), h.dir, h.dir, h.dir, h.dir, h.dir,
	    h.dir, h.dir, h.dir, h.data, h.dir);
	if (n < 0 || (cfgtext = buf_steal(&cfg, NULL)) == NULL)
		die("config", "out of memory");
	snprintf(h.config, sizeof(h.config), "%s/gateway.json", h.dir);
	write_file(h.config, cfgtext, 0644);
	free(cfgtext);
	server_up();
	/* After OpenSSL registered its own exit handler, so that ours (which
	 * stops the store's writer thread) runs first. */
	atexit(cleanup);
}

/* The identity line, if any, and its repeat count (1 without "*<n>");
 * returns how many input bytes it used. */
static size_t
pick_identity(const uint8_t *data, size_t size, size_t *which,
    size_t *repeat)
{
	const uint8_t *nl, *star;
	size_t len, i, used;

	*which = 0;
	*repeat = 1;
	if (size == 0 || data[0] != '@' ||
	    (nl = memchr(data, '\n', size < 64 ? size : 64)) == NULL)
		return 0;
	used = (size_t)(nl - data) + 1;
	len = used - 2;
	if ((star = memchr(data + 1, '*', len)) != NULL) {
		*repeat = 0;
		for (i = (size_t)(star - data) + 1; i < used - 1 &&
		    data[i] >= '0' && data[i] <= '9' && *repeat <= REPEAT_MAX; i++)
			*repeat = *repeat * 10 + (size_t)(data[i] - '0');
		if (*repeat < 1)
			*repeat = 1;
		if (*repeat > REPEAT_MAX)
			*repeat = REPEAT_MAX;
		len = (size_t)(star - data) - 1;
	}
	*which = len % N_IDENTITIES;
	for (i = 0; i < N_IDENTITIES; i++)
		if (strlen(identities[i].role) == len &&
		    memcmp(identities[i].role, data + 1, len) == 0)
			*which = i;
	return used;
}

/* peer-signed: each NUL-separated body (at most four) as a signed POST. */
static void
build_signed(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size, *nul;
	size_t len;
	int i;

	buf_reset(&h.signed_req);
	for (i = 0; i < 4 && p <= end; i++) {
		nul = memchr(p, '\0', (size_t)(end - p));
		len = nul ? (size_t)(nul - p) : (size_t)(end - p);
		if (buf_printf(&h.signed_req, "POST /v1/peer/transfers HTTP/1.1\r\n"
		    "Host: gw\r\nContent-Type: application/json\r\n"
		    "Content-Length: %zu\r\nX-Visor-Signature: ", len) < 0 ||
		    sig_sign(h.peer_key, p, len, &h.signed_req) < 0 ||
		    buf_puts(&h.signed_req, "\r\n\r\n") < 0 ||
		    buf_append(&h.signed_req, p, len) < 0)
			die("build_signed", "out of memory");
		if (nul == NULL)
			break;
		p = nul + 1;
	}
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Walk the answers response by response (status line, headers, then
 * Content-Length bytes of body: libevent always sends it), so that a record
 * value that happens to read "HTTP/1.1 500" is not taken for a status
 * line; abort on a 5xx.  Returns where the walk stopped (an answer cut off
 * by the end of the buffer starts there). */
#define AHEAD "\"code\":\"sent-at-ahead\""

static size_t
check_answers(const char *a, size_t len)
{
	const char *p = a, *end = a + len, *hdr_end, *cl;
	unsigned long long body;
	char *num_end;

	while (end - p >= 12 && memcmp(p, "HTTP/1.", 7) == 0) {
		/* libevent's own 501 (a method we do not allow) and 505 are
		 * answers, not failures; so is the 503 to a transfer whose
		 * sent_at is ahead of the clock (transfer_proto.h: the sender
		 * retries it). */
		if (p[8] == ' ' && p[9] == '5' &&
		    !(p[10] == '0' && (p[11] == '1' || p[11] == '5')) &&
		    !(p[10] == '0' && p[11] == '3' && memmem(p,
		    (size_t)(end - p > 1024 ? 1024 : end - p),
		    AHEAD, sizeof(AHEAD) - 1) != NULL)) {
			fprintf(stderr, "fuzz_http: the gateway answered %.*s\n",
			    (int)(end - p > 600 ? 600 : end - p), p);
			abort();
		}
		if ((hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) == NULL)
			break;
		cl = memmem(p, (size_t)(hdr_end - p), "\r\nContent-Length: ", 18);
		body = cl ? strtoull(cl + 18, &num_end, 10) : 0;
		if (body > (unsigned long long)(end - (hdr_end + 4)))
			break;
		p = hdr_end + 4 + body;
	}
	return (size_t)(p - a);
}

/*
 * libFuzzer only (the replay driver does not call it): no leak check after
 * each input.  The store grows by design from one input to the next (its
 * page cache, the in-memory tree, the writer's queue), so every input
 * would look like a leak and the check would eat most of the time.  Leaks
 * are still caught: LeakSanitizer runs at exit here, after the server is
 * freed, and on every replay of the corpus in the sanitizer build of
 * make test and under make valgrind.
 */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char flag[] = "-detect_leaks=0";
	static char *args[256];
	int i, n = *argc < 254 ? *argc : 254;

	for (i = 0; i < n; i++)
		args[i] = (*argv)[i];
	args[n++] = flag;
	args[n] = NULL;
	*argc = n;
	*argv = args;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char answer[ANSWER_MAX];
	server_plain_stats_t st, last;
	size_t which, repeat, off, sent = 0, got = 0;
	char err[256];
	long long deadline;
	int fd, quiet = 0, i;
	ssize_t n;

	if (!h.ready)
		setup();
	if (++h.inputs % RESET_EVERY == 0) {
		server_free(h.srv);
		h.srv = NULL;
		server_up();
	}
	off = pick_identity(data, size, &which, &repeat);
	if (server_plain_identity(h.srv, identities[which].uri,
	    identities[which].peer_cert ? h.peer_cert : NULL, err, sizeof(err)) < 0)
		die("server_plain_identity", err);
	data += off;
	size -= off;
	if (strcmp(identities[which].role, "peer-signed") == 0) {
		build_signed(data, size);
		data = (const uint8_t *)h.signed_req.data;
		size = h.signed_req.len;
	}
	if (repeat > 1) {
		buf_reset(&h.repeated);
		for (i = 0; (size_t)i < repeat; i++)
			if (buf_append(&h.repeated, data, size) < 0)
				die("repeat", "out of memory");
		data = (const uint8_t *)h.repeated.data;
		size = h.repeated.len;
	}

	if ((fd = connect_server()) < 0)
		die("connect", NULL);
	memset(&last, 0, sizeof(last));
	server_plain_run_once(h.srv, 0, &last);
	/* Under memcheck (make valgrind sets VISOR_VALGRIND) everything is
	 * 20 to 50 times slower. */
	deadline = now_ms() + INPUT_DEADLINE_MS *
	    (getenv("VISOR_VALGRIND") != NULL ? 20 : 1);
	while (quiet < SETTLE_TURNS) {
		int moved = 0;

		if (sent < size) {
			n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
			if (n > 0) {
				sent += (size_t)n;
				moved = 1;
			} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				sent = size;	/* the server closed: the rest is moot */
		}
		server_plain_run_once(h.srv, last.inflight > 0 ? TURN_WAIT_MS : 0, &st);
		while ((n = recv(fd, answer + got, sizeof(answer) - 1 - got, 0)) > 0) {
			got += (size_t)n;
			moved = 1;
			if (got == sizeof(answer) - 1) {
				/* Keep the answer the buffer ends in. */
				size_t done = check_answers(answer, got);

				if (done == 0)
					done = got;	/* one answer bigger than all */
				memmove(answer, answer + done, got - done);
				got -= done;
			}
		}
		if (n == 0 && sent < size)
			sent = size;	/* closed by the server */
		if (st.requests != last.requests || st.inflight != last.inflight)
			moved = 1;
		last = st;
		quiet = (!moved && sent == size && st.inflight == 0) ? quiet + 1 : 0;
		if (now_ms() > deadline) {
			fprintf(stderr, "fuzz_http: input not settled after %d ms "
			    "(%d requests in flight)\n", INPUT_DEADLINE_MS, st.inflight);
			abort();
		}
	}
	close(fd);
	/* Let the server see the close and free the connection: then
	 * nothing of it may still count as request memory. */
	for (i = 0; i < CLOSE_TURNS; i++) {
		server_plain_run_once(h.srv, i < 3 ? 0 : 1, &st);
		if (st.conns == 0 && i >= 2)
			break;
	}
	if (st.conns != 0 || st.request_memory != 0 || st.holders != 0) {
		fprintf(stderr, "fuzz_http: after the close: %u connections, "
		    "%zu bytes of request memory counted, %u identities "
		    "holding some\n", st.conns, st.request_memory, st.holders);
		abort();
	}
	check_answers(answer, got);
	if (h.verbose)
		fprintf(stderr, "---- as %s: %zu bytes in, %zu out\n%.*s\n",
		    identities[which].role, size, got, (int)got, answer);
	return 0;
}
