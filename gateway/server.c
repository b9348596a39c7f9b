#include "gateway/server.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>

#include <openssl/rand.h>

#include "gateway/audit_entry.h"
#include "gateway/audit_retry.h"
#include "gateway/expiry_watch.h"
#include "gateway/gateway.h"
#include "gateway/fdlimit.h"
#include "gateway/gen.h"
#include "gateway/metrics.h"
#include "gateway/outbox.h"
#include "gateway/privdrop.h"
#include "gateway/ratebucket.h"
#include "gateway/request.h"
#include "gateway/routes.h"
#include "gateway/store.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"

#define DRAIN_TIMEOUT_MS 10000

typedef struct worker worker_t;
typedef struct gw_conn gw_conn_t;

struct worker {
	struct server *srv;
	unsigned index;
	pthread_t thread;
	int started;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct evconnlistener *listener;	/* bound's: set before the threads
					   start, only compared after */
	store_reader_t *reader;
	pthread_mutex_t qlock;
	gw_request_t *qhead, *qtail;
	struct event *qev;
	struct event *stop_ev;
	struct event *drain_ev;
	struct event *logflush_ev;	/* writes the batched request log */
	long long drain_deadline;	/* gw_mono_ms() */
	unsigned nconn, cap;	/* both under balance_mu */
	int paused;		/* at its cap (for the log) */
	int listening;		/* under balance_mu */
	int stopped;		/* under balance_mu: listener gone */
	int accept_paused;	/* under balance_mu: accept() failed, resting */
	struct event *balance_ev;	/* another worker lets this one listen */
	struct event *accept_resume_ev;	/* ends accept_paused */
	uint64_t counter;
	char id_prefix[9];
	int inflight;
	LIST_HEAD(, gw_conn) conns;	/* its TLS connections */
};

struct gw_conn {
	worker_t *w;
	struct bufferevent *bev;
	struct event *deadline;
	gw_request_t *pending;	/* the request being answered, if any */
	int busy;
	int nodelay;
	size_t held;		/* bytes received and not yet answered,
				   counted in request_memory */
	int memory_cut;		/* cut off for it (request_memory_cb) */
	struct request_holder *holder;	/* its identity's share */
	struct evbuffer_cb_entry *input_cb;
	struct event *flush_ev;	/* plain connections only (plain_flush) */
	LIST_ENTRY(gw_conn) link;	/* in w->conns */
};

struct gw_request {
	struct evhttp_request *req;
	worker_t *w;
	gw_conn_t *conn;	/* NULL once the client has gone */
	identity_t identity;	/* copied: the connection may go first */
	char cert_sha256[65];
	gw_gen_t *gen;
	char id[32];
	const char *method;
	char *path;
	struct evkeyvalq query;
	int has_query;
	char *body;
	size_t body_len;
	const char *route;
	int audit_failures;	/* refusals go to the audit log */
	int audited;		/* an entry for this request exists */
	int quiet;		/* no log line of its own: rate-limited,
				   counted in event=rate-limited */
	char audit_record[80];
	int err_status;		/* a refusal waiting for its entry */
	char err_code[48];
	char *err_message;
	void *state;
	void (*state_free)(void *);
	void (*cont)(gw_request_t *, const store_result_t *);
	store_result_t result;
	gw_request_t *qnext;
	struct timespec start;
};

struct server {
	char config_path[1024];
	gateway_t gw;
	struct event_base *main_base;
	struct evhttp *metrics_http;
	struct evconnlistener *metrics_listener;	/* once listening */
	struct event *metrics_resume_ev;	/* after an accept() error */
	struct event *sig_hup, *sig_term, *sig_int;
	struct event *authfail_tick;
	worker_t *workers;
	unsigned n_workers;
	evutil_socket_t listen_fd;
	evutil_socket_t metrics_fd;	/* till server_listen hands it on */
	atomic_int stopping;
	atomic_int workers_done;
	gw_gen_t *first_gen;	/* holds gw.cfg: settings fixed at start */
	ratebucket_t *rate_limits;	/* a token bucket per identity */
};

static struct server *the_server;

/* Plain connections for tests and fuzzing (server_new_plain, at the end of
 * this file): NULL for every worker of a server made by server_new. */
static tls_conn_t *plain_conn_of(const worker_t *w);
static struct x509_st *plain_peer_cert(const worker_t *w);
static void plain_forget(const struct server *s);
static gw_conn_t *plain_conn_find(const worker_t *w,
    const struct bufferevent *bev);
static void plain_flush(const gw_request_t *r);

/* ---------------------------------------------------------------- time */

long long
gw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* For deadlines: a step of the wall clock (NTP, an operator) must not
 * lengthen or cut short a wait. */
long long
gw_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
usec_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (uint64_t)((t1.tv_sec - t0->tv_sec) * 1000000LL +
	    (t1.tv_nsec - t0->tv_nsec) / 1000);
}

/* ------------------------------------------------------ request accessors */

const char *gw_req_method(const gw_request_t *r) { return r->method; }
const char *gw_req_path(const gw_request_t *r) { return r->path; }
const identity_t *gw_req_identity(const gw_request_t *r) { return &r->identity; }
const char *gw_req_cert_hash(const gw_request_t *r) { return r->cert_sha256; }

struct x509_st *
gw_req_peer_cert(const gw_request_t *r)
{
	SSL *ssl;

	if (r->conn == NULL)
		return plain_peer_cert(r->w);
	ssl = bufferevent_openssl_get_ssl(r->conn->bev);
	return ssl ? SSL_get0_peer_certificate(ssl) : NULL;
}
const char *gw_req_id(const gw_request_t *r) { return r->id; }
gateway_t *gw_req_gateway(const gw_request_t *r) { return &r->w->srv->gw; }
struct gw_gen *gw_req_gen(const gw_request_t *r) { return r->gen; }
store_reader_t *gw_req_reader(const gw_request_t *r) { return r->w->reader; }
void *gw_req_state(const gw_request_t *r) { return r->state; }
void gw_req_set_route(gw_request_t *r, const char *route) { r->route = route; }
void gw_req_mark_audited(gw_request_t *r) { r->audited = 1; }

void
gw_req_audit_failures(gw_request_t *r, const char *record)
{
	r->audit_failures = 1;
	snprintf(r->audit_record, sizeof(r->audit_record), "%s",
	    record != NULL ? record : "");
}

const char *
gw_req_audit_record(const gw_request_t *r)
{
	return r->audit_record[0] ? r->audit_record : NULL;
}

const char *
gw_req_query(const gw_request_t *r, const char *key)
{
	return r->has_query ? evhttp_find_header(&r->query, key) : NULL;
}

int
gw_req_query_only(const gw_request_t *r, const char *const *keys)
{
	const struct evkeyval *kv;
	unsigned seen = 0;
	size_t i;

	if (!r->has_query)
		return 0;
	TAILQ_FOREACH(kv, &r->query, next) {
		for (i = 0; keys[i] != NULL && strcmp(keys[i], kv->key) != 0; i++)
			;
		if (keys[i] == NULL || i >= 8 * sizeof(seen) ||
		    (seen & (1u << i)) != 0)
			return -1;
		seen |= 1u << i;
	}
	return 0;
}

const char *
gw_req_header(const gw_request_t *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

const char *
gw_req_body(const gw_request_t *r, size_t *len)
{
	*len = r->body_len;
	return r->body;
}

void
gw_req_set_state(gw_request_t *r, void *state, void (*free_fn)(void *))
{
	if (r->state != NULL && r->state_free != NULL)
		r->state_free(r->state);
	r->state = state;
	r->state_free = free_fn;
}

void
gw_reply_header(gw_request_t *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

/* --------------------------------------------------------------- replies */

static void conn_arm_deadline(gw_conn_t *c);
static void request_memory_release(gw_conn_t *c, size_t keep);

static void
request_free(gw_request_t *r)
{
	if (r->state != NULL && r->state_free != NULL)
		r->state_free(r->state);
	if (r->has_query)
		evhttp_clear_headers(&r->query);
	gw_gen_unref(r->gen);
	free(r->err_message);
	if (r->body != NULL) {
		/* Bodies hold record values: do not leave them in freed memory. */
		explicit_bzero(r->body, r->body_len);
		free(r->body);
	}
	free(r->path);
	free(r);
}

/* bufferevent_openssl writes each chain of the output buffer as its own
 * TLS record, and evhttp leaves the headers and the body in separate
 * chains: two records, two write(2)s and two reads by the client for one
 * small answer.  Joining them (a copy of at most one record's worth) makes
 * it one. */
static void
coalesce_output(gw_request_t *r)
{
	struct evbuffer *ob;
	size_t n;

	if (r->conn == NULL)
		return;
	ob = bufferevent_get_output(r->conn->bev);
	n = evbuffer_get_length(ob);
	if (n > 0 && n <= 16384)
		evbuffer_pullup(ob, -1);
}

void
gw_reply(gw_request_t *r, int status, const char *content_type,
    const char *body, size_t len)
{
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	char status_s[8], us_s[24];
	uint64_t us;

	evhttp_add_header(h, "Content-Type",
	    content_type ? content_type : "application/json");
	evhttp_add_header(h, "X-Request-Id", r->id);
	evhttp_add_header(h, "Cache-Control", "no-store");
	/* Draining: the connection closes after this answer.  A client that
	 * sends its next request as soon as it has an answer would otherwise
	 * keep a request in flight on it until the drain's time is up, and
	 * the one in flight then would be cut off; it now finds the listener
	 * closed and goes elsewhere or waits for the restart. */
	if (atomic_load(&r->w->srv->stopping) &&
	    evhttp_find_header(h, "Connection") == NULL)
		evhttp_add_header(h, "Connection", "close");
	if (out != NULL && len > 0)
		evbuffer_add(out, body, len);
	evhttp_send_reply(r->req, status, NULL, out);
	if (out != NULL)
		evbuffer_free(out);
	coalesce_output(r);
	plain_flush(r);
	us = usec_since(&r->start);
	metrics_request(r->route, status, us);
	snprintf(status_s, sizeof(status_s), "%d", status);
	snprintf(us_s, sizeof(us_s), "%llu", (unsigned long long)us);
	if (!r->quiet)
		log_event(LOG_INFO, "request", "request_id", r->id, "method",
		    r->method, "path", r->path, "status", status_s, "identity",
		    r->identity.uri, "route", r->route ? r->route : "-", "us",
		    us_s, r->conn == NULL ? "client" : NULL, "gone", NULL);
	if (r->conn != NULL) {
		r->conn->busy = 0;
		r->conn->pending = NULL;
		/* What is in the input now is the client's next request. */
		request_memory_release(r->conn, evbuffer_get_length(
		    bufferevent_get_input(r->conn->bev)));
		conn_arm_deadline(r->conn);
	}
	r->w->inflight--;
	request_free(r);
}

static void
reply_error_now(gw_request_t *r, int status, const char *code, const char *msg)
{
	buf_t body;

	/* Room for the message (at most 4 KiB, gw_reply_error) with every
	 * byte escaped as \u00XX: a body cut short would not be JSON. */
	buf_init(&body, 6 * 4096 + 1024);
	buf_puts(&body, "{\"error\":{\"code\":");
	json_append_string(&body, code);
	buf_puts(&body, ",\"message\":");
	json_append_string(&body, msg);
	buf_puts(&body, ",\"request_id\":");
	json_append_string(&body, r->id);
	buf_puts(&body, "}}");
	if (!r->quiet)
		log_event(LOG_INFO, "request-error", "request_id", r->id,
		    "code", code, "message", msg, NULL);
	/* A route may have named the record's version before its audit
	 * entry failed: an error serves no version. */
	evhttp_remove_header(evhttp_request_get_output_headers(r->req), "ETag");
	gw_reply(r, status, "application/json", body.data, body.len);
	buf_free(&body);
}

static void
refusal_logged(gw_request_t *r, const store_result_t *res)
{
	if (res->status != STORE_OK) {
		reply_error_now(r, 503, "audit-unavailable",
		    "the audit log cannot record this request");
		return;
	}
	reply_error_now(r, r->err_status, r->err_code,
	    r->err_message ? r->err_message : "");
}

/* Header values go into the entry only when they are what SPEC allows:
 * a refusal must not let a client write arbitrary bytes into the log. */
static const char *
header_if_sane(gw_request_t *r, const char *name, size_t max)
{
	const char *v = gw_req_header(r, name);
	size_t i, n;

	if (v == NULL || (n = strlen(v)) == 0 || n > max)
		return NULL;
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return NULL;
	return v;
}

void
gw_reply_error(gw_request_t *r, int status, const char *code, const char *fmt,
    ...)
{
	buf_t msg;
	va_list ap;
	audit_entry_t e;
	store_job_t *job;

	buf_init(&msg, 4096);
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (!r->audit_failures || r->audited || status < 400 || status >= 500 ||
	    r->gen == NULL) {
		reply_error_now(r, status, code, msg.data ? msg.data : "");
		buf_free(&msg);
		return;
	}
	/* Log the refusal first; answer once it is durable. */
	memset(&e, 0, sizeof(e));
	e.op = "deny";
	e.request_id = r->id;
	e.actor_id = r->identity.uri;
	e.actor_cert = r->cert_sha256;
	e.actor_person = header_if_sane(r, "X-Visor-Actor", 128);
	e.purpose = header_if_sane(r, "X-Visor-Purpose", 40);
	e.record = gw_req_audit_record(r);
	e.policy = r->gen->policy_hash;
	e.result = status == 409 ? "conflict" : status == 404 ? "not-found" :
	    "refused";
	e.reason = code;
	r->audited = 1;
	r->err_status = status;
	snprintf(r->err_code, sizeof(r->err_code), "%s", code);
	r->err_message = buf_steal(&msg, NULL);
	if ((job = store_job_new()) == NULL || store_job_audit(job, &e) < 0) {
		store_job_free(job);
		reply_error_now(r, 503, "audit-unavailable",
		    "the audit log cannot record this request");
		return;
	}
	gw_submit(r, job, refusal_logged);
}

/* ------------------------------------------------------- async completion */

static void
store_done(void *arg, const store_result_t *res)
{
	gw_request_t *r = arg;
	worker_t *w = r->w;

	r->result = *res;
	r->qnext = NULL;
	pthread_mutex_lock(&w->qlock);
	if (w->qtail != NULL)
		w->qtail->qnext = r;
	else
		w->qhead = r;
	w->qtail = r;
	pthread_mutex_unlock(&w->qlock);
	event_active(w->qev, EV_READ, 0);
}

static void
queue_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	gw_request_t *r, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->qlock);
	r = w->qhead;
	w->qhead = w->qtail = NULL;
	pthread_mutex_unlock(&w->qlock);
	for (; r != NULL; r = next) {
		next = r->qnext;
		r->cont(r, &r->result);
	}
}

void
gw_submit(gw_request_t *r, store_job_t *job,
    void (*cont)(gw_request_t *r, const store_result_t *res))
{
	r->cont = cont;
	store_submit(r->w->srv->gw.store, job, store_done, r);
}

/* ------------------------------------------------------------ connections */

/*
 * Memory held by requests.  Each connection may hold a body of up to
 * limits.max_body_bytes while it arrives and while its request is
 * answered, and one client certificate may open limits.max_connections of
 * them: measured with the defaults, 290 KiB of heap per connection
 * holding 256 KiB of a body, 0.9 GiB for 4,000 connections, and the heap
 * stays that large after they go.  So every byte a connection receives
 * counts in request_memory, and in its identity's share, until its
 * request is answered (or the connection goes).  A connection that
 * receives more while it holds over REQUEST_SMALL_BYTES is cut off, as a
 * slow client is, when the total is past limits.max_request_memory_mib or
 * its identity holds over half of it: one client certificate cannot take
 * it all from the others.  Small requests (a record is a few KiB) still
 * pass, whoever fills the memory with large ones, and the total stays
 * within the limit plus REQUEST_SMALL_BYTES per connection.  libevent
 * 2.1's evhttp cannot answer a request before its body is read, so the
 * cut is a closed connection and a log line, not a status.
 */
#define REQUEST_SMALL_BYTES (32u << 10)

static atomic_size_t request_memory;

/* What the connections of one identity hold.  In the list while it has
 * connections that received a byte. */
struct request_holder {
	char uri[IDENTITY_URI_MAX];
	atomic_size_t held;
	unsigned conns;		/* under holders_mu */
	struct request_holder *next;	/* under holders_mu */
};

static pthread_mutex_t holders_mu = PTHREAD_MUTEX_INITIALIZER;
static struct request_holder *holders;

/* The holder of uri with one more connection, or NULL (out of memory). */
static struct request_holder *
request_holder_get(const char *uri)
{
	struct request_holder *h;

	pthread_mutex_lock(&holders_mu);
	for (h = holders; h != NULL && strcmp(h->uri, uri) != 0; h = h->next)
		;
	if (h == NULL && (h = calloc(1, sizeof(*h))) != NULL) {
		snprintf(h->uri, sizeof(h->uri), "%s", uri);
		h->next = holders;
		holders = h;
	}
	if (h != NULL)
		h->conns++;
	pthread_mutex_unlock(&holders_mu);
	return h;
}

/* One connection of h fewer (h holds nothing of it any more). */
static void
request_holder_put(struct request_holder *h)
{
	struct request_holder **pp;

	if (h == NULL)
		return;
	pthread_mutex_lock(&holders_mu);
	if (--h->conns == 0) {
		for (pp = &holders; *pp != h; pp = &(*pp)->next)
			;
		*pp = h->next;
		free(h);
	}
	pthread_mutex_unlock(&holders_mu);
}

/* Bytes were added to c's input (in c's worker thread). */
static void
request_memory_cb(struct evbuffer *in, const struct evbuffer_cb_info *info,
    void *arg)
{
	gw_conn_t *c = arg;
	const tls_conn_t *tc;
	size_t total, mine, limit;
	evutil_socket_t fd;
	SSL *ssl;
	char held[24], ident[24], used[24], lim[24];

	(void)in;
	if (info->n_added == 0 || c->memory_cut)
		return;
	/* Application bytes come after the handshake: the identity is
	 * known by the first.  (A plain connection of server_new_plain has
	 * the identity its caller set.)  Only while c holds nothing: the
	 * holder must count all that c holds, or the release at the answer
	 * takes from it bytes it never had (after a failed calloc, the
	 * share went below zero and undercounted for as long as the
	 * identity kept a connection). */
	if (c->holder == NULL && c->held == 0) {
		ssl = bufferevent_openssl_get_ssl(c->bev);
		tc = ssl != NULL ? tls_conn_get(ssl) : plain_conn_of(c->w);
		if (tc != NULL)
			c->holder = request_holder_get(tc->identity.uri);
	}
	c->held += info->n_added;
	total = atomic_fetch_add(&request_memory, info->n_added) +
	    info->n_added;
	mine = c->holder == NULL ? c->held :
	    atomic_fetch_add(&c->holder->held, info->n_added) + info->n_added;
	limit = (size_t)the_server->gw.cfg->max_request_memory_mib << 20;
	if (c->held <= REQUEST_SMALL_BYTES ||
	    (total <= limit && mine <= limit / 2))
		return;
	c->memory_cut = 1;
	snprintf(held, sizeof(held), "%zu", c->held);
	snprintf(ident, sizeof(ident), "%zu", mine);
	snprintf(used, sizeof(used), "%zu", total);
	snprintf(lim, sizeof(lim), "%zu", limit);
	log_event(LOG_WARN, "request-memory-full", "identity",
	    c->holder != NULL ? c->holder->uri : "-", "held", held,
	    "identity-held", ident, "in-use", used, "limit", lim, NULL);
	/* evhttp sees EOF and frees the connection (conn_free_hook). */
	if ((fd = bufferevent_getfd(c->bev)) >= 0)
		shutdown(fd, SHUT_RDWR);
}

/* c now holds keep bytes (those of a request not yet answered). */
static void
request_memory_release(gw_conn_t *c, size_t keep)
{
	if (keep > c->held)
		keep = c->held;
	atomic_fetch_sub(&request_memory, c->held - keep);
	if (c->holder != NULL)
		atomic_fetch_sub(&c->holder->held, c->held - keep);
	c->held = keep;
}

static void
conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	gw_conn_t *c = arg;
	evutil_socket_t sfd;

	(void)fd;
	(void)what;
	if (c->busy)
		return;
	/* Too slow to send a whole request: cut it off.  evhttp sees the
	 * shutdown as EOF and frees the connection. */
	sfd = bufferevent_getfd(c->bev);
	if (sfd >= 0) {
		log_event(LOG_INFO, "connection-timeout", "reason", "request-deadline", NULL);
		shutdown(sfd, SHUT_RDWR);
	}
}

static void
conn_arm_deadline(gw_conn_t *c)
{
	const config_t *cfg = the_server->gw.cfg;
	struct timeval tv;
	unsigned ms = cfg->header_timeout_ms + cfg->body_timeout_ms;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(c->deadline, &tv);
}

/*
 * Connections are spread over the workers.  They share one listening
 * socket, and libevent accepts until the backlog is empty, so the worker
 * woken first would take a whole burst of connections and, with
 * keep-alive, keep that load on one core while the others idle.  A worker
 * listens only while it is below its share of the connection cap and holds
 * at most BALANCE_SLACK connections more than the least loaded other
 * worker that can still accept.  The counts and the listening states
 * change under balance_mu; only a worker's own thread touches its
 * listener, so a worker that lets another listen again wakes it
 * (balance_ev) to enable its listener itself.
 */
#define BALANCE_SLACK 1

static pthread_mutex_t balance_mu = PTHREAD_MUTEX_INITIALIZER;

/* 1 if w should accept connections now.  balance_mu held. */
static int
worker_should_listen(const worker_t *w)
{
	const struct server *s = w->srv;
	unsigned i, least = UINT_MAX;

	if (w->stopped || w->accept_paused || w->nconn >= w->cap)
		return 0;
	for (i = 0; i < s->n_workers; i++) {
		const worker_t *o = &s->workers[i];

		if (o != w && !o->stopped && !o->accept_paused &&
		    o->nconn < o->cap && o->nconn < least)
			least = o->nconn;
	}
	return least == UINT_MAX || w->nconn <= least + BALANCE_SLACK;
}

/* Count delta connections on w (1 accepted, -1 gone, 0 just look again),
 * enable or disable w's listener to match, and wake the other workers
 * that may listen again.  In w's thread. */
static void
worker_update_listener(worker_t *w, int delta)
{
	const struct server *s = w->srv;
	int want, capped;
	unsigned i;

	pthread_mutex_lock(&balance_mu);
	w->nconn += (unsigned)delta;
	capped = w->nconn >= w->cap;
	want = worker_should_listen(w);
	if (want != w->listening && w->bound != NULL) {
		struct evconnlistener *l = evhttp_bound_socket_get_listener(w->bound);

		if (want)
			evconnlistener_enable(l);
		else
			evconnlistener_disable(l);
		w->listening = want;
	}
	for (i = 0; i < s->n_workers; i++) {
		worker_t *o = &s->workers[i];

		if (o != w && !o->listening && o->balance_ev != NULL &&
		    worker_should_listen(o))
			event_active(o->balance_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&balance_mu);
	if (capped != w->paused) {
		w->paused = capped;
		if (capped)
			log_event(LOG_WARN, "connection-cap", "state", "paused", NULL);
		else
			log_event(LOG_INFO, "connection-cap", "state", "resumed", NULL);
	}
}

static void
worker_balance_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_update_listener(arg, 0);
}

/* w stops accepting for good (shutdown): the others no longer wait for
 * it, and nobody wakes it any more. */
static void
worker_stop_listening(worker_t *w)
{
	pthread_mutex_lock(&balance_mu);
	w->stopped = 1;
	w->listening = 0;
	pthread_mutex_unlock(&balance_mu);
}

/*
 * accept() failing for want of a resource (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) leaves the connection in the backlog, and the listening socket
 * stays readable: with no error callback libevent printed a warning and
 * was woken again at once.  Measured with the soft limit below
 * max_connections: a worker at a whole core and 250,000 "Error from
 * accept() call" lines a second on stderr, the same for the metrics
 * listener in the main loop.  The listener rests ACCEPT_PAUSE_MS instead
 * (the connections wait in the backlog: none is lost) and the failure is
 * logged at most once per ACCEPT_LOG_MS for each listener, with the count
 * of its failures not logged since.  Each listener keeps its own count:
 * with one for both, the metrics listener, which fails first in each
 * second as often as not, hid that the clients' listener failed too.
 */
#define ACCEPT_PAUSE_MS 100
#define ACCEPT_LOG_MS 1000

enum { ACCEPT_API, ACCEPT_METRICS };

static struct {
	pthread_mutex_t lock;
	struct {
		long long last_ms;	/* gw_mono_ms() of its last line; 0: none */
		unsigned long unlogged;	/* its failures since that line */
	} l[2];			/* ACCEPT_API, ACCEPT_METRICS */
} accept_errors = { PTHREAD_MUTEX_INITIALIZER, { { 0, 0 }, { 0, 0 } } };

static void
accept_error_log(int which, int err)
{
	char unlogged[24], pause[16];
	long long now = gw_mono_ms();
	unsigned long n;

	pthread_mutex_lock(&accept_errors.lock);
	if (accept_errors.l[which].last_ms != 0 &&
	    now - accept_errors.l[which].last_ms < ACCEPT_LOG_MS) {
		accept_errors.l[which].unlogged++;
		pthread_mutex_unlock(&accept_errors.lock);
		return;
	}
	n = accept_errors.l[which].unlogged;
	accept_errors.l[which].unlogged = 0;
	accept_errors.l[which].last_ms = now;
	pthread_mutex_unlock(&accept_errors.lock);
	snprintf(unlogged, sizeof(unlogged), "%lu", n);
	snprintf(pause, sizeof(pause), "%d", ACCEPT_PAUSE_MS);
	log_event(LOG_ERROR, "accept-error", "listener", which == ACCEPT_API ?
	    "api" : "metrics", "error", evutil_socket_error_to_string(err),
	    "paused-ms", pause, "unlogged-since", unlogged, NULL);
}

/* An error callback gets the argument of the listener's accept callback,
 * which evhttp owns: the listener is found among the workers' instead. */
static worker_t *
worker_of_listener(const struct evconnlistener *l)
{
	struct server *s = the_server;
	unsigned i;

	for (i = 0; s != NULL && i < s->n_workers; i++)
		if (s->workers[i].listener == l)
			return &s->workers[i];
	return NULL;
}

static void
worker_accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	worker_t *w = worker_of_listener(l);
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };

	(void)arg;
	accept_error_log(ACCEPT_API, err);
	if (w == NULL) {
		/* Not ours (cannot happen): rest it all the same, for good
		 * rather than spin. */
		evconnlistener_disable(l);
		return;
	}
	pthread_mutex_lock(&balance_mu);
	w->accept_paused = 1;
	pthread_mutex_unlock(&balance_mu);
	/* Disables the listener and lets the other workers take over if
	 * they can. */
	worker_update_listener(w, 0);
	event_add(w->accept_resume_ev, &tv);
}

static void
worker_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&balance_mu);
	w->accept_paused = 0;
	pthread_mutex_unlock(&balance_mu);
	worker_update_listener(w, 0);
}

/* c's connection is being freed (its bufferevent is destroyed, before
 * its input buffer). */
static void
conn_free(gw_conn_t *c)
{
	/* The client left while its request waits for the store: the answer
	 * will go nowhere (libevent frees the request when it is sent). */
	if (c->pending != NULL)
		c->pending->conn = NULL;
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
	request_memory_release(c, 0);
	request_holder_put(c->holder);
	LIST_REMOVE(c, link);
	event_free(c->deadline);
	if (c->flush_ev != NULL)
		event_free(c->flush_ev);
	metrics_connection(-1);
	worker_update_listener(c->w, -1);
	free(c);
}

static void
conn_free_hook(tls_conn_t *tc)
{
	if (tc->server_data != NULL)
		conn_free(tc->server_data);
}

/* c on w for bev: its request deadline, the request memory callback, its
 * place in w->conns and in the connection counts.  0, or -1 with none of
 * it set up (c->w stays NULL). */
static int
conn_attach(worker_t *w, gw_conn_t *c, struct bufferevent *bev)
{
	c->bev = bev;
	c->deadline = evtimer_new(w->base, conn_deadline_cb, c);
	c->input_cb = c->deadline == NULL ? NULL : evbuffer_add_cb(
	    bufferevent_get_input(bev), request_memory_cb, c);
	if (c->input_cb == NULL) {
		if (c->deadline != NULL)
			event_free(c->deadline);
		c->deadline = NULL;
		return -1;
	}
	c->w = w;
	LIST_INSERT_HEAD(&w->conns, c, link);
	metrics_connection(1);
	worker_update_listener(w, 1);
	conn_arm_deadline(c);
	return 0;
}

static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
	worker_t *w = arg;
	gw_gen_t *g = gw_gen_current();
	struct bufferevent *bev = NULL;
	tls_conn_t *tc;
	gw_conn_t *c;
	SSL *ssl;

	if (g == NULL)
		return NULL;
	ssl = tls_context_new_ssl(g->tls);
	if (ssl == NULL) {
		gw_gen_unref(g);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		gw_gen_unref(g);
		SSL_free(ssl);
		return NULL;
	}
	gw_gen_unref(g);
	/* With BEV_OPT_CLOSE_ON_FREE, libevent 2.1.12 frees ssl itself when
	 * this fails: freeing it here too would be a double free. */
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		free(c);
		return NULL;
	}
	if (conn_attach(w, c, bev) < 0) {
		bufferevent_free(bev);
		free(c);
		return NULL;
	}
	tc = tls_conn_get(ssl);
	tc->server_data = c;
	return bev;
}

/* --------------------------------------------------------------- requests */

static void handshake_refused(const char *reason, const char *peer_addr,
    const char *cert_sha256);

static const char *
method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_HEAD: return "HEAD";
	default: return "OTHER";
	}
}

static void
request_id(worker_t *w, char out[32])
{
	snprintf(out, 32, "%s-%u-%llu", w->id_prefix, w->index,
	    (unsigned long long)++w->counter);
}

/*
 * RFC 9112 6.3 and 8.6: a request with more than one Content-Length, or one
 * that is not 1*DIGIT, has no framing anyone can agree on.  libevent 2.1
 * frames the body by the first Content-Length and reads it with strtoll
 * (which takes "+2" and "-0"), so "2" then "40" left 38 bytes that a proxy
 * in front would count as body to be parsed here as a second request:
 * request smuggling.  Repeats of one value are refused too (8.6 allows
 * either): no client of ours sends them, and one rule is easier to trust.
 * Transfer-Encoding likewise: libevent decodes "gzip, chunked" as plain
 * chunked, ignoring a coding it does not do (9112 6.1: 501); the one
 * coding taken is "chunked", alone and once.
 * Returns 1 if the framing headers are sound.
 */
static int
request_framing_ok(struct evhttp_request *req)
{
	const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const struct evkeyval *kv;
	const char *p;
	int seen = 0, te = 0;

	TAILQ_FOREACH(kv, h, next) {
		if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			if (te++ > 0 || strcasecmp(kv->value, "chunked") != 0)
				return 0;
			continue;
		}
		if (strcasecmp(kv->key, "Content-Length") != 0)
			continue;
		if (seen++ > 0 || kv->value[0] == '\0')
			return 0;
		for (p = kv->value; *p != '\0'; p++)
			if (*p < '0' || *p > '9')
				return 0;
	}
	return 1;
}

/* Submit e, an entry no request waits for (a refusal's, or a summary of
 * refusals), with the policy in force: SPEC section 7 puts the policy
 * hash in every entry, a refusal's too.  If the disk fails, it is written
 * later (audit_retry).  The server and its store must exist. */
static void
audit_unwaited(audit_entry_t *e)
{
	gw_gen_t *g = gw_gen_current();

	e->policy = g != NULL ? g->policy_hash : NULL;
	audit_retry_submit(the_server->gw.store, e);
	gw_gen_unref(g);
}

/* ---------------------------------------------------------- rate limits */

/*
 * limits.identity_requests_per_second and identity_request_burst bound the
 * requests of one client identity (the URI of its certificate), whichever
 * worker and connection they come on: one agency's adapter gone wrong
 * would otherwise have every request it makes audited (each 404 is a
 * durable entry) at its own pace, and slow every other agency.  A refused
 * request gets 429 rate-limited with Retry-After: 1, decided before
 * anything is looked up or written and answered a second later
 * (rate_limited); it discloses nothing and changes nothing, so it is
 * not audited one by one (that would grow the log at the flood's pace,
 * the very thing refused), nor logged one by one: each identity's refusals
 * are counted, and at most once a second its count is logged
 * (event=rate-limited) and written to the audit log as one deny entry,
 * result refused-summary, reason rate-limited:<count>.  /v1/health is not
 * counted: it reads nothing and writes nothing, and a monitor sharing a
 * throttled identity must not see the gateway as down.
 */
#define RATE_LIMIT_IDENTITIES 4096

static const struct timeval rate_limit_hold = { 1, 0 };

static void
rate_limited_report(const char *uri, unsigned long refused, int shared)
{
	audit_entry_t e;
	char count[24], reason[48];

	snprintf(count, sizeof(count), "%lu", refused);
	log_event(LOG_WARN, "rate-limited", "identity", uri, "refused", count,
	    shared ? "bucket" : NULL, "shared", NULL);
	if (the_server == NULL || the_server->gw.store == NULL)
		return;
	snprintf(reason, sizeof(reason), "rate-limited:%lu", refused);
	memset(&e, 0, sizeof(e));
	e.op = "deny";
	e.actor_id = shared ? RATEBUCKET_OVERFLOW_ID : uri;
	e.result = "refused-summary";
	e.reason = reason;
	audit_unwaited(&e);
}

static void
rate_limited_flushed(const char *uri, unsigned long refused, void *arg)
{
	(void)arg;
	rate_limited_report(uri, refused,
	    strcmp(uri, RATEBUCKET_OVERFLOW_ID) == 0);
}

/* Write the counts of refusals not yet reported (force: all of them, at
 * a stop), and forget the identities that have refilled. */
static void
rate_limits_flush(server_t *s, int force)
{
	gw_gen_t *g;

	if (s->rate_limits == NULL || (g = gw_gen_current()) == NULL)
		return;
	(void)ratebucket_flush(s->rate_limits,
	    g->cfg->identity_requests_per_second,
	    g->cfg->identity_request_burst, gw_mono_ms() + (force ? 1000 : 0),
	    rate_limited_flushed, NULL);
	gw_gen_unref(g);
}

static void
rate_limited_answer(evutil_socket_t fd, short what, void *arg)
{
	gw_request_t *r = arg;

	(void)fd;
	(void)what;
	gw_reply_header(r, "Retry-After", "1");
	gw_reply_error(r, 429, "rate-limited", "more than %u requests a second "
	    "from %s: try again later", r->gen->cfg->identity_requests_per_second,
	    r->identity.uri);
}

/* 1 if r is over its identity's rate: it is answered 429 a second later.
 * A client that ignores Retry-After and asks again at once (a loop gone
 * wrong, a flood) would otherwise cost a TLS record, a parse and an
 * answer per refusal at its own pace, taken from every other agency;
 * held, each of its connections makes one request a second.  What a held
 * refusal keeps is its connection's request, already counted in the
 * request memory, and a timer.  A refusal during a stop is answered at
 * once; one held before it is answered within its second, which the
 * drain waits for as for any request.  A client that leaves meanwhile
 * is handled as one that leaves while its request waits for the store
 * (conn_free_hook). */
static int
rate_limited(gw_request_t *r)
{
	const config_t *cfg = r->gen->cfg;
	unsigned long report;
	int shared;

	if (r->w->srv->rate_limits == NULL ||
	    strcmp(r->path, "/v1/health") == 0)
		return 0;
	if (ratebucket_take(r->w->srv->rate_limits, r->identity.uri,
	    cfg->identity_requests_per_second, cfg->identity_request_burst,
	    gw_mono_ms(), &report, &shared))
		return 0;
	metrics_rate_limited();
	if (report > 0)
		rate_limited_report(r->identity.uri, report, shared);
	r->quiet = 1;
	if (atomic_load(&r->w->srv->stopping) ||
	    event_base_once(r->w->base, -1, EV_TIMEOUT, rate_limited_answer, r,
	    &rate_limit_hold) < 0)
		rate_limited_answer(-1, 0, r);
	return 1;
}

static void
gen_cb(struct evhttp_request *req, void *arg)
{
	worker_t *w = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	tls_conn_t *tc = ssl ? tls_conn_get(ssl) : plain_conn_of(w);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *p, *q;
	gw_request_t *r;
	int one = 1;

	if (tc == NULL || tc->verified != 1) {
		/* The handshake refuses unverified peers; this is a
		 * connection without TLS, which evhttp makes itself when
		 * bev_cb could not make one (out of memory). */
		evhttp_send_error(req, 403, "Forbidden");
		return;
	}
	/* Refused as libevent refuses a malformed request (SPEC-NOTES, errors
	 * from the HTTP layer): before a route runs or the audit hears of it,
	 * and with "Connection: close" (evhttp_send_error sets it), so the
	 * connection is closed once the 400 is out and the bytes after the
	 * body are never parsed. */
	if (!request_framing_ok(req)) {
		log_event(LOG_WARN, "request-refused", "reason",
		    "framing", "identity", tc->identity.uri, "cert",
		    tc->cert_sha256, NULL);
		evhttp_send_error(req, 400, "Bad Request");
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		evhttp_send_error(req, 503, "Service Unavailable");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	r->req = req;
	r->w = w;
	r->identity = tc->identity;
	memcpy(r->cert_sha256, tc->cert_sha256, sizeof(r->cert_sha256));
	r->conn = ssl != NULL ? tc->server_data : plain_conn_find(w, bev);
	r->gen = gw_gen_current();
	r->method = method_name(evhttp_request_get_command(req));
	request_id(w, r->id);
	w->inflight++;
	if (r->conn != NULL) {
		r->conn->busy = 1;
		r->conn->pending = r;
		event_del(r->conn->deadline);
		if (!r->conn->nodelay) {
			evutil_socket_t fd = bufferevent_getfd(bev);
			/* Without it, Nagle meets delayed ACKs: 40 ms per reply. */
			if (fd >= 0)
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			r->conn->nodelay = 1;
		}
	}
	p = uri ? evhttp_uri_get_path(uri) : NULL;
	r->path = strdup(p ? p : "");
	if (r->path == NULL || r->gen == NULL) {
		r->path = r->path ? r->path : strdup("");
		gw_reply_error(r, 503, "unavailable", "out of memory");
		return;
	}
	/* A connection accepted before a reload is held to the new trust set
	 * (a revocation must not wait for the client to reconnect). */
	{
		char why[48];

		if (ssl != NULL &&
		    tls_context_recheck(r->gen->tls, ssl, why, sizeof(why)) < 0) {
			handshake_refused(why, tc->peer_addr, tc->cert_sha256);
			gw_reply_header(r, "Connection", "close");
			gw_reply_error(r, 403, "certificate-refused",
			    "the client certificate is no longer accepted: %s", why);
			return;
		}
	}
	/* Before the query, the body's copy and the route: a refusal costs
	 * what a health check does. */
	if (rate_limited(r))
		return;
	q = uri ? evhttp_uri_get_query(uri) : NULL;
	TAILQ_INIT(&r->query);
	if (q != NULL) {
		r->has_query = 1;
		/* Values are C strings once decoded: an encoded NUL would cut
		 * one short, and a filter would match on what is left. */
		if (strstr(q, "%00") != NULL ||
		    evhttp_parse_query_str(q, &r->query) < 0) {
			gw_reply_error(r, 400, "bad-query", "malformed query string");
			return;
		}
	}
	r->body_len = evbuffer_get_length(in);
	if ((r->body = malloc(r->body_len + 1)) == NULL) {
		gw_reply_error(r, 503, "unavailable", "out of memory");
		return;
	}
	evbuffer_remove(in, r->body, r->body_len);
	r->body[r->body_len] = '\0';
	routes_dispatch(r);
}

/* ---------------------------------------------------------- auth failures */

/*
 * Refused handshakes are audited one by one up to
 * limits.auth_fail_audit_per_second (default 100) a second.  Past that, a
 * flood (anyone can start handshakes) would grow the log and the disk at
 * the attacker's pace, so the rest of that second is counted per reason
 * and written as one summary entry per reason ("refused-summary", reason
 * "<reason>:<count>").  Metrics and the log count every refusal.
 */
#define AUTHFAIL_REASONS 24

static struct {
	pthread_mutex_t lock;
	long long window_ms;
	unsigned in_window;
	char reason[AUTHFAIL_REASONS][48];
	unsigned long suppressed[AUTHFAIL_REASONS];
} authfail = { PTHREAD_MUTEX_INITIALIZER, 0, 0, {{0}}, {0} };

static void
authfail_submit(const char *result, const char *reason, const char *cert)
{
	audit_entry_t e;

	if (the_server == NULL || the_server->gw.store == NULL)
		return;
	memset(&e, 0, sizeof(e));
	e.op = "auth-fail";
	e.actor_id = "-";
	e.actor_cert = cert;
	e.result = result;
	e.reason = reason;
	audit_unwaited(&e);
}

/* Write the summaries of a finished window.  Called with the lock held. */
static void
authfail_flush_locked(void)
{
	char reason[80];
	size_t i;

	for (i = 0; i < AUTHFAIL_REASONS && authfail.reason[i][0]; i++) {
		if (authfail.suppressed[i] == 0)
			continue;
		snprintf(reason, sizeof(reason), "%s:%lu", authfail.reason[i],
		    authfail.suppressed[i]);
		authfail_submit("refused-summary", reason, NULL);
		authfail.suppressed[i] = 0;
	}
}

static void
handshake_refused(const char *reason, const char *peer_addr,
    const char *cert_sha256)
{
	long long now = gw_mono_ms();	/* a clock set back must not stretch
					 * the window (and hold back its summary) */
	const char *cert = cert_sha256 && cert_sha256[0] ? cert_sha256 : NULL;
	int one_by_one;
	size_t i;

	if (strcmp(reason, TLS_CLOSED_BEFORE_HELLO) == 0) {
		/* A load balancer's port check every second would otherwise
		 * add 86,400 auth-fail entries a day.  Anything sent that is
		 * not a ClientHello is still a refused handshake. */
		metrics_closed_before_hello();
		log_event(LOG_INFO, "connection-closed-before-hello", "peer",
		    peer_addr[0] ? peer_addr : "-", NULL);
		return;
	}
	metrics_handshake_failure(reason);
	pthread_mutex_lock(&authfail.lock);
	if (now - authfail.window_ms >= 1000) {
		authfail_flush_locked();
		authfail.window_ms = now;
		authfail.in_window = 0;
	}
	one_by_one = the_server == NULL ||
	    authfail.in_window < the_server->gw.cfg->auth_fail_audit_per_second;
	if (one_by_one) {
		authfail.in_window++;
	} else {
		for (i = 0; i < AUTHFAIL_REASONS - 1 && authfail.reason[i][0] &&
		    strcmp(authfail.reason[i], reason) != 0; i++)
			;
		if (authfail.reason[i][0] == '\0')
			snprintf(authfail.reason[i], sizeof(authfail.reason[i]), "%s",
			    reason);
		authfail.suppressed[i]++;
	}
	pthread_mutex_unlock(&authfail.lock);
	/* Every refusal gets its log line (the operator's log is rotated and
	 * rate-limited outside); the audit log gets the first ones. */
	log_event(LOG_WARN, "handshake-refused", "reason", reason, "peer",
	    peer_addr[0] ? peer_addr : "-", "cert", cert ? cert : "-", NULL);
	if (one_by_one)
		authfail_submit("refused", reason, cert);
}

/* Certificates and CRLs running out, said in the log (expiry_watch.h);
 * only the main loop's tick touches this. */
static expiry_watch_t expiry_watch;

static void
expiry_tick(void)
{
	const tls_expiry_t *te = NULL;
	gw_gen_t *gen = gw_gen_current();
	size_t n;

	if (gen == NULL)
		return;
	n = tls_context_expiries(gen->tls, &te);
	(void)expiry_watch_check(&expiry_watch, gen->id, te, n,
	    (long)time(NULL), gw_mono_ms());
	gw_gen_unref(gen);
}

/* Once a second from the main loop: a flood that stopped still gets its
 * summary written; and expiry lines. */
static void
authfail_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&authfail.lock);
	if (gw_mono_ms() - authfail.window_ms >= 1000) {
		authfail_flush_locked();
		authfail.window_ms = gw_mono_ms();
		authfail.in_window = 0;
	}
	pthread_mutex_unlock(&authfail.lock);
	if (the_server != NULL) {
		rate_limits_flush(the_server, 0);
		if (the_server->gw.store != NULL)
			audit_retry_tick(the_server->gw.store);
	}
	expiry_tick();
}

/* ----------------------------------------------------------------- workers */

/* How many of w's connections have a reply not yet all handed to the
 * kernel.  A reply leaves gw_reply as bytes in its connection's output
 * buffer; a large one to a slow reader stays there for many turns of the
 * loop, and freeing the connection then cuts it short. */
static unsigned
worker_replies_unsent(worker_t *w)
{
	gw_conn_t *c;
	unsigned n = 0;

	LIST_FOREACH(c, &w->conns, link)
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			n++;
	return n;
}

static void
worker_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	struct timeval tv = { 0, 50000 };

	(void)fd;
	(void)what;
	if (w->inflight <= 0 && worker_replies_unsent(w) == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	if (gw_mono_ms() > w->drain_deadline) {
		char unanswered[16], unsent[16];

		/* What the stop cuts off is said: each of these clients
		 * sees its connection closed without a (whole) answer, and
		 * a write among them may still become durable as the store
		 * closes. */
		snprintf(unanswered, sizeof(unanswered), "%d", w->inflight);
		snprintf(unsent, sizeof(unsent), "%u", worker_replies_unsent(w));
		log_event(LOG_WARN, "drain-timeout", "unanswered", unanswered,
		    "unsent", unsent, NULL);
		event_base_loopexit(w->base, NULL);
		return;
	}
	event_add(w->drain_ev, &tv);
}

static void
worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;

	(void)fd;
	(void)what;
	worker_stop_listening(w);
	if (w->bound != NULL) {
		evhttp_del_accept_socket(w->http, w->bound);
		w->bound = NULL;
	}
	w->drain_deadline = gw_mono_ms() + DRAIN_TIMEOUT_MS;
	worker_drain_cb(-1, 0, w);
}

/* The request log of a worker is batched (log_thread_batch): one write(2)
 * per tenth of a second rather than one per request. */
#define LOG_FLUSH_MS 100

static void
logflush_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;

	(void)fd;
	(void)what;
	log_thread_flush();
	/* The same tick, which runs through a drain too, fails the store
	 * jobs that waited limits.store_wait_max_ms for the writer (a disk
	 * that stalls holds it in one commit): answered 503 with nothing of
	 * them written, instead of holding their clients until the clients'
	 * own timeout (30 s for visorctl).  Any worker's jobs: each done is
	 * safe from any thread. */
	(void)store_expire_waiting(w->srv->gw.store,
	    w->srv->gw.cfg->store_wait_max_ms);
}

static void *
worker_main(void *arg)
{
	worker_t *w = arg;
	struct timeval tv = { 0, LOG_FLUSH_MS * 1000 };

	/* Named for top -H and /proc/PID/task/TID/comm (15 bytes at most). */
	(void)pthread_setname_np(pthread_self(), "gw-worker");
	log_thread_batch(1);
	if (event_add(w->logflush_ev, &tv) < 0)
		log_thread_batch(0);
	event_base_dispatch(w->base);
	log_thread_batch(0);
	json_arena_release();
	atomic_fetch_add(&w->srv->workers_done, 1);
	return NULL;
}

/* An event base whose epoll backend coalesces the re-arming of a
 * connection's events within one loop turn (bufferevent_openssl toggles
 * them several times per request). */
static struct event_base *
worker_base_new(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *b;

	if (ec == NULL)
		return NULL;
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	b = event_base_new_with_config(ec);
	event_config_free(ec);
	return b;
}

static int
worker_init(struct server *s, worker_t *w, unsigned index, char *err,
    size_t errlen)
{
	const config_t *cfg = s->gw.cfg;
	unsigned char rnd[4];
	evutil_socket_t fd;

	w->srv = s;
	w->index = index;
	LIST_INIT(&w->conns);
	pthread_mutex_init(&w->qlock, NULL);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	snprintf(w->id_prefix, sizeof(w->id_prefix), "%02x%02x%02x%02x", rnd[0],
	    rnd[1], rnd[2], rnd[3]);
	w->cap = (cfg->max_connections + s->n_workers - 1) / s->n_workers;
	if ((w->base = worker_base_new()) == NULL ||
	    (w->http = evhttp_new(w->base)) == NULL ||
	    (w->qev = event_new(w->base, -1, 0, queue_drain_cb, w)) == NULL ||
	    (w->stop_ev = event_new(w->base, -1, 0, worker_stop_cb, w)) == NULL ||
	    (w->drain_ev = evtimer_new(w->base, worker_drain_cb, w)) == NULL ||
	    (w->logflush_ev = event_new(w->base, -1, EV_PERSIST, logflush_cb,
	    w)) == NULL ||
	    (w->balance_ev = event_new(w->base, -1, 0, worker_balance_cb,
	    w)) == NULL ||
	    (w->accept_resume_ev = evtimer_new(w->base,
	    worker_accept_resume_cb, w)) == NULL) {
		snprintf(err, errlen, "libevent: cannot create worker %u", index);
		return -1;
	}
	if ((w->reader = store_reader_new(s->gw.store, err, errlen)) == NULL)
		return -1;
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->max_header_bytes);
	evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body_bytes);
	evhttp_set_timeout(w->http, (int)((cfg->idle_timeout_ms + 999) / 1000));
	evhttp_set_bevcb(w->http, bev_cb, w);
	evhttp_set_gencb(w->http, gen_cb, w);
	evhttp_set_default_content_type(w->http, "application/json");
	if ((fd = dup(s->listen_fd)) < 0 ||
	    (w->bound = evhttp_accept_socket_with_handle(w->http, fd)) == NULL) {
		snprintf(err, errlen, "listen: cannot accept on socket: %s",
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	w->listener = evhttp_bound_socket_get_listener(w->bound);
	evconnlistener_set_error_cb(w->listener, worker_accept_error_cb);
	w->listening = 1;
	return 0;
}

static void
worker_fini(worker_t *w)
{
	gw_request_t *r, *next;

	/* Its connections go with evhttp_free (conn_free_hook): they must
	 * neither touch the listener evhttp_free closes nor wake it. */
	worker_stop_listening(w);
	w->bound = NULL;
	if (w->http != NULL)
		evhttp_free(w->http);
	if (w->qev != NULL)
		event_free(w->qev);
	if (w->stop_ev != NULL)
		event_free(w->stop_ev);
	if (w->drain_ev != NULL)
		event_free(w->drain_ev);
	if (w->logflush_ev != NULL)
		event_free(w->logflush_ev);
	if (w->balance_ev != NULL)
		event_free(w->balance_ev);
	if (w->accept_resume_ev != NULL)
		event_free(w->accept_resume_ev);
	store_reader_free(w->reader);
	if (w->base != NULL)
		event_base_free(w->base);
	/* Requests a drain that ran out of time cut off: the store closed
	 * after completing their jobs into this queue, and the loop that
	 * would have answered them has stopped.  Freed unanswered, once the
	 * loop is gone: its connections, freed with it, clear their
	 * request's conn (conn_free_hook), and their evhttp requests went
	 * with them. */
	r = w->qhead;
	w->qhead = w->qtail = NULL;
	for (; r != NULL; r = next) {
		next = r->qnext;
		request_free(r);
	}
	pthread_mutex_destroy(&w->qlock);
}

/* ---------------------------------------------------------------- metrics */

static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	metrics_expiry_t ex[TLS_EXPIRY_MAX];
	const tls_expiry_t *te = NULL;
	metrics_gauges_t g;
	unsigned conns[64];
	struct evbuffer *out;
	gw_gen_t *gen;
	size_t i, n;
	time_t now = time(NULL);
	buf_t b;
	int64_t age;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET ||
	    strcmp(evhttp_request_get_uri(req), "/metrics") != 0) {
		evhttp_send_error(req, 404, "Not Found");
		return;
	}
	memset(&g, 0, sizeof(g));
	g.audit_size = store_audit_size(s->gw.store);
	g.checkpoint_size = store_checkpoint_size(s->gw.store);
	{
		store_stats_t st;
		store_stats(s->gw.store, &st);
		g.store_jobs = st.jobs;
		g.store_commits = st.commits;
		g.store_failed_commits = st.failed_commits;
		g.store_queued = st.queued;
		g.store_oldest_wait_s = (double)st.oldest_wait_ms / 1000.0;
		g.store_wait_expired = st.wait_expired;
	}
	age = store_checkpoint_age_ms(s->gw.store);
	g.checkpoint_age_s = age < 0 ? -1.0 : (double)age / 1000.0;
	g.uptime_s = (double)((gw_mono_ms() - s->gw.started_ms) / 1000);
	gen = gw_gen_current();
	g.cert_expiry_s = gen ? tls_context_cert_expiry_s(gen->tls) : -1;
	g.crl_expiry_s = gen ? tls_context_crl_expiry_s(gen->tls) : -1;
	n = gen ? tls_context_expiries(gen->tls, &te) : 0;
	for (i = 0; i < n; i++) {
		if (te[i].not_after < 0)
			continue;
		ex[g.n_expiry].role = te[i].role;
		ex[g.n_expiry].file = te[i].file;
		ex[g.n_expiry].days = (double)(te[i].not_after - (long)now) / 86400.0;
		g.n_expiry++;
	}
	g.expiry = ex;
	pthread_mutex_lock(&balance_mu);
	for (i = 0; i < s->n_workers && i < sizeof(conns) / sizeof(conns[0]); i++)
		conns[i] = s->workers[i].nconn;
	pthread_mutex_unlock(&balance_mu);
	g.worker_conns = conns;
	g.n_workers = i;
	if (s->gw.outbox != NULL) {
		g.outbox = outbox_metrics;
		g.outbox_ctx = s->gw.outbox;
	}
	buf_init(&b, 0);
	metrics_render(&g, &b);
	out = evbuffer_new();
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4");
	if (out != NULL && b.len > 0)
		evbuffer_add(out, b.data, b.len);
	evhttp_send_reply(req, 200, "OK", out);
	if (out != NULL)
		evbuffer_free(out);
	buf_free(&b);
	/* The generation (and the file names the gauges point at) is released
	 * only once the text is rendered. */
	gw_gen_unref(gen);
}

/* The metrics listener's accept() failed: it rests as a worker's does
 * (worker_accept_error_cb). */
static void
metrics_accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };

	(void)arg;		/* evhttp's (worker_of_listener) */
	accept_error_log(ACCEPT_METRICS, err);
	evconnlistener_disable(l);
	if (the_server != NULL)
		event_add(the_server->metrics_resume_ev, &tv);
}

static void
metrics_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	if (s->metrics_listener != NULL && !atomic_load(&s->stopping))
		evconnlistener_enable(s->metrics_listener);
}

/* ---------------------------------------------------------------- signals */

static void
audit_config_event(struct server *s, const char *result, const char *reason)
{
	audit_entry_t e;
	gw_gen_t *g = gw_gen_current();

	memset(&e, 0, sizeof(e));
	e.op = "config";
	e.actor_id = "-";
	e.result = result;
	e.reason = reason;
	e.policy = g ? g->policy_hash : NULL;
	audit_retry_submit(s->gw.store, &e);
	gw_gen_unref(g);
}

static void
sighup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	char err[512], keys[400], msg[520];
	gw_gen_t *g, *old;

	(void)fd;
	(void)what;
	g = gw_gen_load(s->config_path, NULL, handshake_refused, err, sizeof(err));
	if (g == NULL) {
		log_event(LOG_ERROR, "reload-refused", "error", err, NULL);
		audit_config_event(s, "refused", "reload-invalid");
		return;
	}
	/* Only what is read per request or connection can change: the rest
	 * was used at start (the listener, the workers' limits, the store,
	 * one delivery thread per peer: a peer added by a reload would take
	 * transfers no thread sends).  Taking the file while ignoring part
	 * of it would report a reload that did not happen. */
	if (config_restart_changes(s->gw.cfg, g->cfg, keys, sizeof(keys)) > 0) {
		snprintf(msg, sizeof(msg), "%s cannot change without a restart "
		    "(nothing was reloaded)", keys);
		log_event(LOG_ERROR, "reload-refused", "error", msg, NULL);
		gw_gen_unref(g);
		audit_config_event(s, "refused", "reload-invalid");
		return;
	}
	/* A policy's warnings are said when it comes into force, once: a
	 * reload for a renewed certificate or CRL does not repeat them. */
	if ((old = gw_gen_current()) == NULL ||
	    strcmp(old->policy_hash, g->policy_hash) != 0)
		(void)gw_gen_log_policy_lint(g);
	gw_gen_unref(old);
	gw_gen_install(g);
	log_event(LOG_INFO, "reloaded", "policy", g->policy_hash, NULL);
	audit_config_event(s, "ok", "reload");
}

/* Tell the workers to drain and stop (worker_stop_cb); in the main
 * thread.  0 the first time, -1 if they were told already. */
static int
stop_workers(struct server *s)
{
	unsigned i;

	if (atomic_exchange(&s->stopping, 1))
		return -1;
	/* New connections are refused from now on, not left in the backlog
	 * until the exit resets them: each worker closes its copy of the
	 * listening socket (stop_ev), and this is the last one. */
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	for (i = 0; i < s->n_workers; i++)
		event_active(s->workers[i].stop_ev, EV_READ, 0);
	return 0;
}

static void
sigterm_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	if (atomic_load(&s->stopping))
		return;
	log_event(LOG_INFO, "draining", NULL);
	(void)stop_workers(s);
	event_base_loopexit(s->main_base, NULL);
}

/* ------------------------------------------------------------------ setup */

/* A TCP socket bound to sa, not yet listening: the port is taken while
 * the gateway can still bind below 1024 (before the drop of privileges),
 * and server_run listens on it only once the gateway can serve, so that
 * until then a client is refused at once instead of waiting in the
 * backlog (for as long as opening the store takes) and being reset if the
 * start fails or is stopped.  err: what, then addr and the reason. */
static evutil_socket_t
bound_socket(const char *what, const char *addr, const struct sockaddr *sa,
    socklen_t salen, char *err, size_t errlen)
{
	int one = 1;
	evutil_socket_t fd;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    bind(fd, sa, salen) < 0) {
		snprintf(err, errlen, "%s%s: %s", what, addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The socket of "listen" (bound_socket): a numeric address. */
static evutil_socket_t
listen_socket(const char *host, int port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	char addr[128];

	snprintf(addr, sizeof(addr), "%s:%d", host, port);
	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) < 0) {
		snprintf(err, errlen, "listen: %s is not a numeric address", addr);
		return -1;
	}
	return bound_socket("listen: ", addr, (struct sockaddr *)&ss,
	    (socklen_t)sslen, err, errlen);
}

/* The socket of "metrics_listen" (bound_socket): its host may be a name
 * ("localhost"), resolved and bound as evhttp_bind_socket would (the
 * first address). */
static evutil_socket_t
metrics_socket(const char *host, int port, char *err, size_t errlen)
{
	struct evutil_addrinfo hints, *ai = NULL;
	char portstr[16], addr[128];
	evutil_socket_t fd;
	int rc;

	snprintf(portstr, sizeof(portstr), "%d", port);
	snprintf(addr, sizeof(addr), "%s:%d", host, port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
	if ((rc = evutil_getaddrinfo(host, portstr, &hints, &ai)) != 0 ||
	    ai == NULL) {
		snprintf(err, errlen, "metrics_listen: cannot bind %s: %s", addr,
		    rc != 0 ? evutil_gai_strerror(rc) : "no address");
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		return -1;
	}
	fd = bound_socket("metrics_listen: cannot bind ", addr, ai->ai_addr,
	    (socklen_t)ai->ai_addrlen, err, errlen);
	evutil_freeaddrinfo(ai);
	return fd;
}

/* What server_new and server_new_plain start with: the server and its
 * first generation (configuration, TLS material, policy) loaded and
 * installed.  cfg is taken in every case.  NULL with err set. */
static struct server *
server_alloc(const char *config_path, config_t *cfg, char *err,
    size_t errlen)
{
	struct server *s;
	gw_gen_t *g;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		config_free(cfg);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	the_server = s;
	s->listen_fd = -1;
	if ((s->rate_limits = ratebucket_new(RATE_LIMIT_IDENTITIES)) == NULL) {
		config_free(cfg);
		snprintf(err, errlen, "out of memory");
		free(s);
		the_server = NULL;
		return NULL;
	}
	s->metrics_fd = -1;
	snprintf(s->config_path, sizeof(s->config_path), "%s", config_path);
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() < 0) {
		snprintf(err, errlen, "libevent: no thread support");
		config_free(cfg);
		server_free(s);
		return NULL;
	}
	if ((g = gw_gen_load(config_path, cfg, handshake_refused, err,
	    errlen)) == NULL) {
		server_free(s);
		return NULL;
	}
	(void)gw_gen_log_policy_lint(g);
	gw_gen_install(g);
	/* Fixed-at-start settings come from the first generation, which
	 * stays alive as long as the server. */
	gw_gen_ref(g);
	s->first_gen = g;
	s->gw.cfg = g->cfg;
	s->gw.started_ms = gw_mono_ms();
	return s;
}

server_t *
server_new(const char *config_path, config_t *cfg, char *err, size_t errlen)
{
	struct server *s;
	store_options_t so;
	privdrop_plan_t plan;
	fdlimit_t fdl;
	gw_gen_t *g;
	unsigned i;

	/* Everything that needs root first: the TLS key and certificates
	 * (server_alloc), the listening sockets.  Then the drop to "user",
	 * before the store opens (its files belong to that account) and
	 * before any byte is read from the network. */
	if ((s = server_alloc(config_path, cfg, err, errlen)) == NULL)
		return NULL;
	g = s->first_gen;
	/* Before anything holds a descriptor for long: clients beyond the
	 * limit would have made accept() fail, and the store and reloads
	 * with it (fdlimit.h). */
	if (fdlimit_ensure(g->cfg, 1, &fdl, err, errlen) < 0)
		goto fail;
	if (fdl.raised) {
		char from[24], to[24], need[24];

		snprintf(from, sizeof(from), "%lu", fdl.soft);
		snprintf(to, sizeof(to), "%lu", fdl.hard);
		snprintf(need, sizeof(need), "%lu", fdl.need);
		log_event(LOG_INFO, "fd-limit", "raised-from", from, "to", to,
		    "need", need, NULL);
	}
	if (privdrop_plan(g->cfg, &plan, err, errlen) < 0 ||
	    privdrop_check_files(g->cfg, &plan, err, errlen) < 0)
		goto fail;
	if ((s->main_base = event_base_new()) == NULL) {
		snprintf(err, errlen, "libevent: cannot create the main loop");
		goto fail;
	}
	if ((s->listen_fd = listen_socket(g->cfg->listen_host,
	    g->cfg->listen_port, err, errlen)) < 0)
		goto fail;
	if (g->cfg->metrics_port != 0) {
		if ((s->metrics_fd = metrics_socket(g->cfg->metrics_host,
		    g->cfg->metrics_port, err, errlen)) < 0)
			goto fail;
		if ((s->metrics_http = evhttp_new(s->main_base)) == NULL) {
			snprintf(err, errlen, "libevent: cannot create the metrics "
			    "listener");
			goto fail;
		}
		evhttp_set_gencb(s->metrics_http, metrics_cb, s);
		if ((s->metrics_resume_ev = evtimer_new(s->main_base,
		    metrics_accept_resume_cb, s)) == NULL) {
			snprintf(err, errlen, "libevent: cannot add a timer");
			goto fail;
		}
	}
	if (privdrop_apply(g->cfg, &plan, err, errlen) < 0)
		goto fail;
	if (plan.drop) {
		char uid_s[24], gid_s[24];

		snprintf(uid_s, sizeof(uid_s), "%lu", (unsigned long)plan.uid);
		snprintf(gid_s, sizeof(gid_s), "%lu", (unsigned long)plan.gid);
		log_event(LOG_INFO, "privileges-dropped", "user", plan.user,
		    "uid", uid_s, "group", plan.group, "gid", gid_s, NULL);
	}
	memset(&so, 0, sizeof(so));
	so.data_dir = g->cfg->data_dir;
	so.area = g->cfg->area;
	so.checkpoint_interval_ms = g->cfg->checkpoint_interval_ms;
	so.outbox_max = g->cfg->outbox_max;
	so.busy_timeout_ms = g->cfg->store_busy_timeout_ms;
	/* 0 MiB turns the cache off (0 bytes would mean the default). */
	so.record_cache_bytes = g->cfg->record_cache_mib == 0 ?
	    STORE_CACHE_NONE : (size_t)g->cfg->record_cache_mib << 20;
	so.idem_keep_ms = (int64_t)g->cfg->idempotency_keep_hours * 3600000;
	if ((s->gw.store = store_open(&so, err, errlen)) == NULL)
		goto fail;
	s->n_workers = g->cfg->threads;
	if ((s->workers = calloc(s->n_workers, sizeof(*s->workers))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < s->n_workers; i++)
		if (worker_init(s, &s->workers[i], i, err, errlen) < 0)
			goto fail;
	{
		struct timeval sec = { 1, 0 };
		if ((s->authfail_tick = event_new(s->main_base, -1, EV_PERSIST,
		    authfail_tick_cb, s)) == NULL ||
		    event_add(s->authfail_tick, &sec) < 0) {
			snprintf(err, errlen, "libevent: cannot add a timer");
			goto fail;
		}
	}
	s->sig_hup = evsignal_new(s->main_base, SIGHUP, sighup_cb, s);
	s->sig_term = evsignal_new(s->main_base, SIGTERM, sigterm_cb, s);
	s->sig_int = evsignal_new(s->main_base, SIGINT, sigterm_cb, s);
	if (s->sig_hup == NULL || s->sig_term == NULL || s->sig_int == NULL ||
	    event_add(s->sig_hup, NULL) < 0 || event_add(s->sig_term, NULL) < 0 ||
	    event_add(s->sig_int, NULL) < 0) {
		snprintf(err, errlen, "libevent: cannot install signal handlers");
		goto fail;
	}
	tls_context_set_conn_free_hook(conn_free_hook);
	if ((s->gw.outbox = outbox_new(&s->gw, err, errlen)) == NULL)
		goto fail;
	return s;
fail:
	server_free(s);
	return NULL;
}

static void
join_workers(server_t *s)
{
	unsigned i;

	for (i = 0; i < s->n_workers; i++)
		if (s->workers[i].started) {
			pthread_join(s->workers[i].thread, NULL);
			s->workers[i].started = 0;
		}
}

/* A start that failed half-way: the workers already running must stop
 * before server_free frees what they use. */
static int
start_failed(server_t *s, const char *what)
{
	unsigned i;

	log_event(LOG_ERROR, "start-failed", "error", what, NULL);
	for (i = 0; i < s->n_workers; i++)
		if (s->workers[i].started)
			event_active(s->workers[i].stop_ev, EV_READ, 0);
	join_workers(s);
	return -1;
}

/* Ready: the port and the metrics port listen from now on, both at once
 * (before the workers' loops run: a socket that does not listen yet would
 * wake them with an error).  0, or -1 with err. */
static int
server_listen(server_t *s, char *err, size_t errlen)
{
	const config_t *cfg = s->gw.cfg;
	struct evhttp_bound_socket *b;

	if (listen(s->listen_fd, 1024) < 0) {
		snprintf(err, errlen, "listen: %s:%d: %s", cfg->listen_host,
		    cfg->listen_port, strerror(errno));
		return -1;
	}
	if (s->metrics_fd < 0)
		return 0;
	if (listen(s->metrics_fd, 128) < 0 ||
	    (b = evhttp_accept_socket_with_handle(s->metrics_http,
	    s->metrics_fd)) == NULL) {
		snprintf(err, errlen, "metrics_listen: %s:%d: %s",
		    cfg->metrics_host, cfg->metrics_port, strerror(errno));
		return -1;
	}
	s->metrics_fd = -1;	/* closed by evhttp_free */
	s->metrics_listener = evhttp_bound_socket_get_listener(b);
	evconnlistener_set_error_cb(s->metrics_listener,
	    metrics_accept_error_cb);
	return 0;
}

int
server_run(server_t *s)
{
	unsigned i;
	char port[16], err[512];
	int rc;

	if (server_listen(s, err, sizeof(err)) < 0)
		return start_failed(s, err);
	for (i = 0; i < s->n_workers; i++) {
		if (pthread_create(&s->workers[i].thread, NULL, worker_main,
		    &s->workers[i]) != 0)
			return start_failed(s, "cannot start worker thread");
		s->workers[i].started = 1;
	}
	if (outbox_start(s->gw.outbox) < 0)
		return start_failed(s, "cannot start the delivery workers");
	snprintf(port, sizeof(port), "%d", s->gw.cfg->listen_port);
	log_event(LOG_INFO, "listening", "area", s->gw.cfg->area, "host",
	    s->gw.cfg->listen_host, "port", port, NULL);
	rc = event_base_dispatch(s->main_base);
	if (rc != 0 || !atomic_load(&s->stopping)) {
		/* The loop that takes SIGTERM is gone, and with it anything
		 * that would stop the workers: stop them here, or the join
		 * below would wait for ever. */
		log_event(LOG_ERROR, "main-loop-failed", "error", rc < 0 ?
		    strerror(errno) : "the main loop ran out of events", NULL);
		rc = -1;
		(void)stop_workers(s);
	}
	join_workers(s);
	/* No handshake is refused any more: the refusals counted in the
	 * last second get their summary now, or the log would count fewer
	 * than there were (authfail_tick_cb runs no more).  The store
	 * writes it before it closes (server_free). */
	pthread_mutex_lock(&authfail.lock);
	authfail_flush_locked();
	pthread_mutex_unlock(&authfail.lock);
	rate_limits_flush(s, 1);
	log_event(LOG_INFO, "stopped", NULL);
	return rc < 0 ? -1 : 0;
}

void
server_free(server_t *s)
{
	unsigned i;

	if (s == NULL)
		return;
	plain_forget(s);
	/* Delivery threads first: they use the store and the TLS context. */
	outbox_free(s->gw.outbox);
	s->gw.outbox = NULL;
	/* The workers' read connections go before the store: its writer's
	 * must be the last connection to close, which copies the WAL back
	 * into the database and removes it (store_destroy).  Nothing reads
	 * any more: the workers' loops have stopped. */
	for (i = 0; s->workers != NULL && i < s->n_workers; i++) {
		store_reader_free(s->workers[i].reader);
		s->workers[i].reader = NULL;
	}
	/* The store drains and signs a last checkpoint before the workers go:
	 * requests still waiting for it (the drain timed out) complete into
	 * their worker's queue, which must still exist.  Their answers are
	 * never sent; the workers' loops have stopped. */
	store_close(s->gw.store);
	s->gw.store = NULL;
	audit_retry_reset();
	for (i = 0; s->workers != NULL && i < s->n_workers; i++)
		worker_fini(&s->workers[i]);
	free(s->workers);
	if (s->metrics_resume_ev != NULL)
		event_free(s->metrics_resume_ev);
	s->metrics_listener = NULL;
	if (s->metrics_http != NULL)
		evhttp_free(s->metrics_http);
	if (s->authfail_tick != NULL)
		event_free(s->authfail_tick);
	if (s->sig_hup != NULL)
		event_free(s->sig_hup);
	if (s->sig_term != NULL)
		event_free(s->sig_term);
	if (s->sig_int != NULL)
		event_free(s->sig_int);
	if (s->main_base != NULL)
		event_base_free(s->main_base);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->metrics_fd >= 0)
		close(s->metrics_fd);
	gw_gen_install(NULL);
	gw_gen_unref(s->first_gen);
	ratebucket_free(s->rate_limits);
	free(s);
	the_server = NULL;
}

/* ------------------------------------------ plain connections (tests only)
 *
 * For tests and fuzzing (tests/fuzz/fuzz_http.c); nothing main.c calls
 * reaches this block.  A server made by server_new_plain serves plain TCP
 * on a socket its caller listens on, with the identity set by
 * server_plain_identity standing in for what a verified TLS handshake
 * would have given; every byte after the handshake then takes the same
 * path as on a TLS connection: libevent's HTTP parser, gen_cb, the routes,
 * the store's writer thread and the replies, and each connection has its
 * gw_conn_t as a TLS one has (the request deadline, the connection cap,
 * the request memory and its identity's share).  The caller runs the one
 * worker's loop (server_plain_run_once) on its own thread.  What differs
 * from a TLS connection: the connection's bufferevent is a pass-through
 * filter over the socket's (plain_bev_cb: its free_context is what frees
 * the gw_conn_t, as the SSL's ex_data is on TLS), and there is no re-check
 * of the peer after a reload (there is no reload: no signals are
 * installed).
 */

static struct {
	const struct server *srv;	/* the server of server_new_plain */
	tls_conn_t conn;		/* what the "handshake" verified */
	X509 *cert;			/* its certificate, may be NULL */
	struct event *wake;		/* bounds server_plain_run_once */
} plain;

static tls_conn_t *
plain_conn_of(const worker_t *w)
{
	if (plain.srv == NULL || w->srv != plain.srv || plain.conn.verified != 1)
		return NULL;
	return &plain.conn;
}

static struct x509_st *
plain_peer_cert(const worker_t *w)
{
	return plain_conn_of(w) != NULL ? plain.cert : NULL;
}

static void
plain_forget(const struct server *s)
{
	if (plain.srv != s || s == NULL)
		return;
	if (plain.wake != NULL)
		event_free(plain.wake);
	X509_free(plain.cert);
	memset(&plain, 0, sizeof(plain));
}

/* The gw_conn_t of a plain connection (NULL if plain_bev_cb could not
 * make one: evhttp then made its own bufferevent). */
static gw_conn_t *
plain_conn_find(const worker_t *w, const struct bufferevent *bev)
{
	gw_conn_t *c;

	if (plain_conn_of(w) == NULL)
		return NULL;
	LIST_FOREACH(c, &w->conns, link)
		if (c->bev == bev)
			return c;
	return NULL;
}

/* A filter bufferevent passes on what its output holds only as bytes are
 * added while it is enabled for writing; evhttp adds the reply first and
 * enables writing after (be_filter_enable does not pass it on), so a reply
 * sent outside evhttp's read callback stays put until flushed.  The flush
 * runs on the next turn of the loop, not inside gw_reply: evhttp's write
 * callback runs from the flush and may end the request and free the
 * connection while gw_reply still uses them. */
static void
plain_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	gw_conn_t *c = arg;

	(void)fd;
	(void)what;
	bufferevent_flush(c->bev, EV_WRITE, BEV_NORMAL);
}

static void
plain_flush(const gw_request_t *r)
{
	static const struct timeval now = { 0, 0 };

	if (r->conn != NULL && r->conn->flush_ev != NULL)
		evtimer_add(r->conn->flush_ev, &now);
}

/* The filter's free_context: its bufferevent is being destroyed. */
static void
plain_conn_gone(void *arg)
{
	gw_conn_t *c = arg;

	if (c->w != NULL)
		conn_free(c);
	else
		free(c);	/* conn_attach failed */
}

static struct bufferevent *
plain_bev_cb(struct event_base *base, void *arg)
{
	worker_t *w = arg;
	struct bufferevent *sock, *bev;
	gw_conn_t *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL) {
		free(c);
		return NULL;
	}
	if ((bev = bufferevent_filter_new(sock, NULL, NULL,
	    BEV_OPT_CLOSE_ON_FREE, plain_conn_gone, c)) == NULL) {
		bufferevent_free(sock);
		free(c);
		return NULL;
	}
	if (conn_attach(w, c, bev) < 0) {
		bufferevent_free(bev);	/* frees c (plain_conn_gone) */
		return NULL;
	}
	/* If it cannot be made, answers sent from the store's completion
	 * wait for the next bytes written (the harness then sees a hang). */
	c->flush_ev = evtimer_new(base, plain_flush_cb, c);
	return bev;
}

static void
plain_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

server_t *
server_new_plain(const char *config_path, config_t *cfg, int listen_fd,
    char *err, size_t errlen)
{
	struct server *s;
	store_options_t so;
	gw_gen_t *g;
	int rc;

	if (plain.srv != NULL) {
		config_free(cfg);
		snprintf(err, errlen, "a plain server exists already");
		return NULL;
	}
	if ((s = server_alloc(config_path, cfg, err, errlen)) == NULL)
		return NULL;
	g = s->first_gen;
	memset(&so, 0, sizeof(so));
	so.data_dir = g->cfg->data_dir;
	so.area = g->cfg->area;
	so.checkpoint_interval_ms = g->cfg->checkpoint_interval_ms;
	so.idem_keep_ms = (int64_t)g->cfg->idempotency_keep_hours * 3600000;
	so.outbox_max = g->cfg->outbox_max;
	if ((s->gw.store = store_open(&so, err, errlen)) == NULL)
		goto fail;
	s->n_workers = 1;
	if ((s->workers = calloc(1, sizeof(*s->workers))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* The worker listens on a copy of the caller's socket. */
	s->listen_fd = listen_fd;
	rc = worker_init(s, &s->workers[0], 0, err, errlen);
	s->listen_fd = -1;
	if (rc < 0)
		goto fail;
	evhttp_set_bevcb(s->workers[0].http, plain_bev_cb, &s->workers[0]);
	/* No idle timeout from evhttp on a plain connection (its request
	 * deadline is the gw_conn_t's): on a filter bufferevent evhttp's
	 * timeouts are timers libevent could leave in its heap after the
	 * filter was freed (memcheck: reads inside a freed
	 * bufferevent_filter_new block in event_base_loop). */
	evhttp_set_timeout_tv(s->workers[0].http, NULL);
	if ((plain.wake = evtimer_new(s->workers[0].base, plain_wake_cb, NULL)) == NULL) {
		snprintf(err, errlen, "libevent: cannot add a timer");
		goto fail;
	}
	if ((s->gw.outbox = outbox_new(&s->gw, err, errlen)) == NULL)
		goto fail;
	plain.srv = s;
	return s;
fail:
	if (plain.wake != NULL) {
		event_free(plain.wake);
		plain.wake = NULL;
	}
	server_free(s);
	return NULL;
}

int
server_plain_identity(server_t *s, const char *uri, struct x509_st *cert,
    char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	identity_t id;

	if (s == NULL || plain.srv != s) {
		snprintf(err, errlen, "not a server made by server_new_plain");
		return -1;
	}
	plain.conn.verified = 0;
	X509_free(plain.cert);
	plain.cert = NULL;
	if (uri == NULL)
		return 0;
	if (identity_parse(uri, strlen(uri), &id, err, errlen) < 0)
		return -1;
	memset(plain.conn.cert_sha256, '0', 64);
	plain.conn.cert_sha256[64] = '\0';
	if (cert != NULL) {
		if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32 ||
		    X509_up_ref(cert) != 1) {
			snprintf(err, errlen, "cannot hold the certificate");
			return -1;
		}
		for (i = 0; i < mdlen; i++)
			snprintf(plain.conn.cert_sha256 + 2 * i, 3, "%02x", md[i]);
	}
	plain.cert = cert;
	plain.conn.identity = id;
	snprintf(plain.conn.peer_addr, sizeof(plain.conn.peer_addr), "plain");
	plain.conn.verified = 1;
	return 0;
}

int
server_plain_run_once(server_t *s, unsigned wait_ms, server_plain_stats_t *st)
{
	struct request_holder *h;
	struct timeval tv;
	worker_t *w;

	if (s == NULL || plain.srv != s)
		return -1;
	w = &s->workers[0];
	if (wait_ms == 0) {
		if (event_base_loop(w->base, EVLOOP_NONBLOCK) < 0)
			return -1;
	} else {
		tv.tv_sec = wait_ms / 1000;
		tv.tv_usec = (wait_ms % 1000) * 1000;
		if (evtimer_add(plain.wake, &tv) < 0 ||
		    event_base_loop(w->base, EVLOOP_ONCE) < 0) {
			evtimer_del(plain.wake);
			return -1;
		}
		evtimer_del(plain.wake);
	}
	if (st != NULL) {
		st->requests = w->counter;
		st->inflight = w->inflight;
		st->request_memory = atomic_load(&request_memory);
		pthread_mutex_lock(&balance_mu);
		st->conns = w->nconn;
		pthread_mutex_unlock(&balance_mu);
		pthread_mutex_lock(&holders_mu);
		st->holders = 0;
		for (h = holders; h != NULL; h = h->next)
			st->holders++;
		pthread_mutex_unlock(&holders_mu);
	}
	return 0;
}
