#include "client/loadgen.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define LAT_MAX (1u << 22)
#define FD_MAX 65536
/* How long after the end of the run a request may still take before it
 * counts as failed and the run ends (loadgen_opts_t.late_s overrides); each
 * request also has libcurl's own 30 s timeout.  Without that timeout
 * libcurl 7.88 leaves an expired timer in place that it never reports
 * again, and the loop below would poll without sleeping (55 instead of
 * 21 us of generator CPU per GET). */
#define LATE_S 10.0

typedef struct {
	CURL *easy;
	struct curl_slist *hdrs;
	const char *const *hdrs_src;	/* what hdrs was built from */
	const char *method;
	int had_body;		/* the previous request sent a body */
	double start;
	char url[512];
	unsigned slot;
	long status;
	int busy;		/* in the multi handle */
} conn_t;

typedef struct {
	double *lat;
	size_t n, cap;
} lat_t;

/* The client certificate and key, read once.  libcurl's OpenSSL backend
 * builds a new SSL_CTX for every new connection and would read and decode
 * both files each time (about 2 ms of CPU per handshake with OpenSSL 3's
 * key decoders): the full-handshake figure would measure that, not the
 * servers.  The CA file libcurl caches itself (CURLOPT_CA_CACHE_TIMEOUT). */
typedef struct {
	X509 *cert;
	STACK_OF(X509) *chain;	/* the certificates after the first */
	EVP_PKEY *key;
} client_id_t;

static int
client_id_load(client_id_t *id, const char *cert, const char *key)
{
	FILE *f;
	X509 *x;
	unsigned long e;

	memset(id, 0, sizeof(*id));
	if ((id->chain = sk_X509_new_null()) == NULL ||
	    (f = fopen(cert, "r")) == NULL)
		return -1;
	id->cert = PEM_read_X509(f, NULL, NULL, NULL);
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(id->chain, x) <= 0) {
			X509_free(x);
			fclose(f);
			return -1;
		}
	fclose(f);
	/* The loop ends at the end of the file (no further PEM block);
	 * anything else is a damaged certificate in the chain. */
	e = ERR_peek_last_error();
	if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
		return -1;
	ERR_clear_error();
	if ((f = fopen(key, "r")) == NULL)
		return -1;
	id->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return id->cert != NULL && id->key != NULL ? 0 : -1;
}

static void
client_id_free(client_id_t *id)
{
	X509_free(id->cert);
	sk_X509_pop_free(id->chain, X509_free);
	EVP_PKEY_free(id->key);
}

static CURLcode
ssl_ctx_cb(CURL *e, void *sslctx, void *userp)
{
	client_id_t *id = userp;
	int i;

	(void)e;
	if (SSL_CTX_use_certificate(sslctx, id->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(sslctx, id->key) != 1)
		return CURLE_SSL_CERTPROBLEM;
	for (i = 0; i < sk_X509_num(id->chain); i++)
		if (SSL_CTX_add1_chain_cert(sslctx, sk_X509_value(id->chain, i)) != 1)
			return CURLE_SSL_CERTPROBLEM;
	/* One recv per TLS record instead of two (its 5-byte header, then
	 * its body): 4-7% less of the generator's CPU per request against
	 * nginx (docs/PERFORMANCE.md).  libcurl 7.88 asks OpenSSL for more
	 * only when the socket is readable or SSL_pending() says so, and
	 * SSL_pending() does not count records read ahead but not yet
	 * opened: drain_read_ahead() below hands those to libcurl. */
	SSL_CTX_set_read_ahead(sslctx, 1);
	return CURLE_OK;
}

/* The event side of the multi handle: libcurl tells us which sockets to
 * watch (socket callback) and when to call back (timer callback); we wait
 * with epoll and hand it only the sockets that are ready.
 *
 * libcurl removes a connection's socket when its request completes and adds
 * it again for the next one: two epoll_ctl calls per request, a tenth of the
 * generator's CPU.  So the epoll set follows libcurl lazily: `reg` is what
 * epoll holds for a descriptor, `want` what libcurl asked for.  A removal
 * only clears `want`; an event on a descriptor nobody wants removes it then
 * (so an idle connection the server closes cannot spin the loop).  libcurl
 * closes sockets through close_cb, which forgets the descriptor, so a new
 * socket on a reused number starts unregistered. */
typedef struct {
	int ep;
	double deadline;	/* when libcurl's timer expires; < 0: none */
	uint32_t *reg, *want;	/* FD_MAX entries each */
	CURL **easy;		/* FD_MAX: the transfer libcurl named last */
} evloop_t;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
ep_set(evloop_t *l, int fd, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.data.fd = fd;
	ev.events = events;
	if (l->reg[fd] == events)
		return 0;
	if (events == 0) {
		epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	} else if (epoll_ctl(l->ep, l->reg[fd] != 0 ? EPOLL_CTL_MOD :
	    EPOLL_CTL_ADD, fd, &ev) < 0) {
		/* Out of step with the kernel (it drops closed descriptors
		 * itself): take whichever call fits. */
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0 &&
		    epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) < 0)
			return -1;
	}
	l->reg[fd] = events;
	return 0;
}

static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	evloop_t *l = userp;

	(void)socketp;
	if (s < 0 || s >= FD_MAX)
		return -1;
	if (what == CURL_POLL_REMOVE) {
		l->want[s] = 0;
		return 0;
	}
	l->easy[s] = e;
	l->want[s] = (what & CURL_POLL_IN ? EPOLLIN : 0) |
	    (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	return ep_set(l, s, l->want[s]) < 0 ? -1 : 0;
}

static int
close_cb(void *userp, curl_socket_t s)
{
	evloop_t *l = userp;

	if (s >= 0 && s < FD_MAX) {
		if (l->reg[s] != 0)
			epoll_ctl(l->ep, EPOLL_CTL_DEL, s, NULL);
		l->reg[s] = l->want[s] = 0;
		l->easy[s] = NULL;
	}
	return close(s);
}

/* A transfer still reading after libcurl has read from fd may have whole
 * TLS records waiting in OpenSSL's read-ahead buffer, which the socket will
 * not report again (ssl_ctx_cb): let libcurl read on while OpenSSL holds
 * bytes.  Bounded, so that a server streaming without end cannot hold the
 * loop: the next readable event resumes it. */
static void
drain_read_ahead(CURLM *m, evloop_t *l, int fd, int *running)
{
	const struct curl_tlssessioninfo *ti;
	int i;

	for (i = 0; i < 64 && (l->want[fd] & EPOLLIN) && l->easy[fd] != NULL;
	    i++) {
		ti = NULL;
		if (curl_easy_getinfo(l->easy[fd], CURLINFO_TLS_SSL_PTR, &ti) !=
		    CURLE_OK || ti == NULL || ti->backend != CURLSSLBACKEND_OPENSSL ||
		    ti->internals == NULL || !SSL_has_pending(ti->internals))
			return;
		curl_multi_socket_action(m, fd, CURL_CSELECT_IN, running);
	}
}

static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	evloop_t *l = userp;

	(void)m;
	l->deadline = timeout_ms < 0 ? -1 : now_s() + (double)timeout_ms / 1000;
	return 0;
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static size_t
discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
conn_prepare(const loadgen_opts_t *o, conn_t *c, uint64_t k)
{
	loadgen_req_t r;
	char url[512];
	size_t i;

	memset(&r, 0, sizeof(r));
	o->next(o->ctx, c->slot, k, &r);
	/* Set only what changed since this connection's last request: the
	 * generator's own cost per request is what bounds it. */
	if (r.headers != c->hdrs_src || c->hdrs_src == NULL) {
		curl_slist_free_all(c->hdrs);
		c->hdrs = NULL;
		for (i = 0; r.headers != NULL && r.headers[i] != NULL; i++) {
			struct curl_slist *n = curl_slist_append(c->hdrs, r.headers[i]);
			if (n == NULL)
				return -1;
			c->hdrs = n;
		}
		c->hdrs_src = r.headers;
		if (curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs) != CURLE_OK)
			return -1;
	}
	snprintf(url, sizeof(url), "%s%s", o->base_url, r.path);
	if (strcmp(url, c->url) != 0) {
		memcpy(c->url, url, sizeof(url));
		if (curl_easy_setopt(c->easy, CURLOPT_URL, c->url) != CURLE_OK)
			return -1;
	}
	if (r.method != c->method) {
		c->method = r.method;
		if (curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST,
		    strcmp(r.method, "GET") == 0 ? NULL : r.method) != CURLE_OK)
			return -1;
	}
	if (r.body != NULL) {
		if (curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, r.body) != CURLE_OK ||
		    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r.body_len) != CURLE_OK)
			return -1;
		c->had_body = 1;
	} else if (c->had_body) {
		/* POSTFIELDS turned the handle into a POST: back to a request
		 * without a body (the method itself is CUSTOMREQUEST's). */
		if (curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L) != CURLE_OK)
			return -1;
		c->had_body = 0;
	}
	c->start = now_s();
	return 0;
}

static int
conn_init(const loadgen_opts_t *o, conn_t *c, unsigned slot, evloop_t *l,
    client_id_t *id)
{
	c->slot = slot;
	if ((c->easy = curl_easy_init()) == NULL)
		return -1;
	if (curl_easy_setopt(c->easy, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb) !=
	    CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_SSL_CTX_DATA, id) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_CAINFO, o->cacert) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_CA_CACHE_TIMEOUT, 86400L) !=
	    CURLE_OK ||
	    /* The benchmark checks the chain but not the name: the servers
	     * are addressed by IP and identify by URI. */
	    curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_3) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, 30000L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION,
	    (long)CURL_HTTP_VERSION_1_1) != CURLE_OK ||
	    /* No proxy: libcurl would otherwise read the proxy variables of
	     * the environment for every request. */
	    curl_easy_setopt(c->easy, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_CLOSESOCKETFUNCTION, close_cb) !=
	    CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_CLOSESOCKETDATA, l) != CURLE_OK)
		return -1;
	if (o->new_connection &&
	    (curl_easy_setopt(c->easy, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_SSL_SESSIONID_CACHE, 0L) != CURLE_OK))
		return -1;
	return 0;
}

/* What the threads of one run share. */
typedef struct {
	const loadgen_opts_t *o;
	client_id_t id;
	unsigned nthreads;
	atomic_int setup_failed;	/* set before the start barrier,
					   read after it */
	pthread_barrier_t start;	/* set up: the clock starts */
	pthread_barrier_t end;		/* every loop done: the clock stops */
} shared_t;

/* One thread's share: connection slots [first, first + n), requests k =
 * thread, thread + nthreads, ... (so ids and the mix interleave as with
 * one thread). */
typedef struct {
	shared_t *sh;
	unsigned first, n, thread;
	pthread_t tid;
	double t_start;		/* when this thread's clock started */
	uint64_t ok, http_errors, failures;
	long first_error_status;
	char first_error[256];
	lat_t lat;
	int rc;
	char err[256];
} part_t;

static void
part_error(part_t *p, const char *msg)
{
	if (p->first_error[0] == '\0')
		snprintf(p->first_error, sizeof(p->first_error), "%s", msg);
}

static void *
part_main(void *arg)
{
	part_t *p = arg;
	const loadgen_opts_t *o = p->sh->o;
	CURLM *m = NULL;
	conn_t *conns = NULL;
	uint64_t k = p->thread;
	double t_end, lat_ms, late = o->late_s > 0 ? o->late_s : LATE_S;
	int running = 0, msgs, stop = 0, held = 0, active = 0, ready = 0, rc;
	evloop_t l = { -1, -1, NULL, NULL, NULL };
	double left_ms;
	long wait_ms;
	unsigned i;
	CURLMsg *msg;
	conn_t *c;
	long status;

	p->rc = -1;
	if ((m = curl_multi_init()) == NULL ||
	    (conns = calloc(p->n, sizeof(*conns))) == NULL ||
	    (p->lat.lat = malloc(sizeof(double) * (LAT_MAX / p->sh->nthreads))) == NULL ||
	    (l.reg = calloc(FD_MAX, sizeof(*l.reg))) == NULL ||
	    (l.want = calloc(FD_MAX, sizeof(*l.want))) == NULL ||
	    (l.easy = calloc(FD_MAX, sizeof(*l.easy))) == NULL) {
		snprintf(p->err, sizeof(p->err), "out of memory");
		goto setup_done;
	}
	p->lat.cap = LAT_MAX / p->sh->nthreads;
	if ((l.ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		snprintf(p->err, sizeof(p->err), "epoll_create1 failed");
		goto setup_done;
	}
	curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(m, CURLMOPT_SOCKETDATA, &l);
	curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(m, CURLMOPT_TIMERDATA, &l);
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)p->n);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)p->n);
	for (i = 0; i < p->n; i++) {
		if (conn_init(o, &conns[i], p->first + i, &l, &p->sh->id) < 0 ||
		    conn_prepare(o, &conns[i], k) < 0 ||
		    curl_multi_add_handle(m, conns[i].easy) != CURLM_OK) {
			snprintf(p->err, sizeof(p->err),
			    "cannot set up connection %u", p->first + i);
			goto setup_done;
		}
		k += p->sh->nthreads;
		conns[i].busy = 1;
		active++;
	}
	ready = 1;
setup_done:
	if (!ready)
		atomic_store(&p->sh->setup_failed, 1);
	pthread_barrier_wait(&p->sh->start);
	/* One thread that could not set up fails the run: the others do
	 * not run it for nothing. */
	if (atomic_load(&p->sh->setup_failed)) {
		pthread_barrier_wait(&p->sh->end);
		goto out;
	}
	p->t_start = now_s();
	t_end = p->t_start + (o->idle_hold_s > 0 ? 3600 : o->duration_s);
	curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
	for (;;) {
		struct epoll_event evs[64];
		int n, j;

		while ((msg = curl_multi_info_read(m, &msgs)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			lat_ms = (now_s() - c->start) * 1000.0;
			if (msg->data.result != CURLE_OK) {
				p->failures++;
				part_error(p, curl_easy_strerror(msg->data.result));
			} else {
				curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
				    &status);
				if (o->expect_status != 0 ?
				    status == o->expect_status :
				    status >= 200 && status < 300) {
					p->ok++;
					if (p->lat.n < p->lat.cap)
						p->lat.lat[p->lat.n++] = lat_ms;
				} else {
					p->http_errors++;
					if (p->first_error_status == 0)
						p->first_error_status = status;
				}
			}
			curl_multi_remove_handle(m, msg->easy_handle);
			c->busy = 0;
			active--;
			if (o->idle_hold_s > 0) {
				/* Leave the connection open and idle. */
				held++;
				continue;
			}
			if (stop || now_s() >= t_end) {
				stop = 1;
				continue;
			}
			/* k moves on whatever happens: next() has had it. */
			rc = conn_prepare(o, c, k) < 0 ||
			    curl_multi_add_handle(m, c->easy) != CURLM_OK;
			k += p->sh->nthreads;
			if (rc) {
				p->failures++;
				part_error(p, "cannot queue the next request");
				continue;
			}
			c->busy = 1;
			active++;
		}
		if (active > 0 && now_s() >= t_end + late) {
			/* Unanswered long after the end: failed, and the run
			 * ends. */
			for (i = 0; i < p->n; i++) {
				char msgbuf[64];

				if (!conns[i].busy)
					continue;
				curl_multi_remove_handle(m, conns[i].easy);
				conns[i].busy = 0;
				active--;
				p->failures++;
				snprintf(msgbuf, sizeof(msgbuf),
				    "no answer %.1f s after the end of the run", late);
				part_error(p, msgbuf);
			}
		}
		if (active == 0)
			break;
		if (o->idle_hold_s > 0 && (unsigned)held == p->n)
			break;
		wait_ms = 100;
		if (l.deadline >= 0) {
			left_ms = (l.deadline - now_s()) * 1000;
			wait_ms = left_ms <= 0 ? 0 : left_ms >= 100 ? 100 :
			    (long)left_ms + 1;
		}
		n = epoll_wait(l.ep, evs, 64, (int)wait_ms);
		for (j = 0; j < n; j++) {
			int fd = evs[j].data.fd;

			if (l.want[fd] == 0) {
				/* Registered lazily and not wanted now. */
				ep_set(&l, fd, 0);
				continue;
			}
			curl_multi_socket_action(m, fd,
			    (evs[j].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
			    (evs[j].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			    (evs[j].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0),
			    &running);
			if (evs[j].events & EPOLLIN)
				drain_read_ahead(m, &l, fd, &running);
		}
		/* libcurl's timer when it is due, whether or not sockets were
		 * ready (when it ran only after an epoll_wait that found
		 * nothing, a due timer waited for a quiet moment). */
		if (l.deadline >= 0 && now_s() >= l.deadline)
			curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	pthread_barrier_wait(&p->sh->end);
	if (o->idle_hold_s > 0) {
		/* All connections sit idle in the multi handle's pool (one
		 * thread in this mode). */
		if (o->on_idle != NULL)
			o->on_idle(o->ctx);
		else {
			struct timespec ts = { (time_t)o->idle_hold_s, 0 };
			nanosleep(&ts, NULL);
		}
	}
	p->rc = 0;
out:
	for (i = 0; conns != NULL && i < p->n; i++) {
		if (conns[i].easy != NULL) {
			curl_multi_remove_handle(m, conns[i].easy);
			curl_easy_cleanup(conns[i].easy);
		}
		curl_slist_free_all(conns[i].hdrs);
	}
	free(conns);
	if (m != NULL)
		curl_multi_cleanup(m);
	if (l.ep >= 0)
		close(l.ep);
	free(l.reg);
	free(l.want);
	free(l.easy);
	return NULL;
}

int
loadgen_run(const loadgen_opts_t *o, loadgen_result_t *res, char *err,
    size_t errlen)
{
	shared_t sh;
	part_t *parts = NULL;
	lat_t lat = { NULL, 0, 0 };
	unsigned i, nt, per, extra, first = 0, barriers = 0;
	double t0, t_stop, c0;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&sh, 0, sizeof(sh));
	atomic_init(&sh.setup_failed, 0);
	sh.o = o;
	nt = o->threads > 0 ? o->threads : 1;
	/* Idle mode holds every connection for on_idle: one thread. */
	if (o->idle_hold_s > 0)
		nt = 1;
	if (nt > o->connections)
		nt = o->connections;
	if (nt == 0) {
		snprintf(err, errlen, "no connections");
		return -1;
	}
	sh.nthreads = nt;
	/* Each transfer allocates and frees buffers of tens of KiB; with
	 * glibc's defaults the heap top is given back and grown again with
	 * brk(2) around every request (a tenth of the generator's CPU, by
	 * perf).  Keep what it once took. */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_TOP_PAD, 16 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	if (client_id_load(&sh.id, o->cert, o->key) < 0) {
		snprintf(err, errlen, "cannot read %s or %s", o->cert, o->key);
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (parts = calloc(nt, sizeof(*parts))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (pthread_barrier_init(&sh.start, NULL, nt + 1) != 0) {
		snprintf(err, errlen, "pthread_barrier_init failed");
		goto out;
	}
	barriers = 1;
	if (pthread_barrier_init(&sh.end, NULL, nt + 1) != 0) {
		snprintf(err, errlen, "pthread_barrier_init failed");
		goto out;
	}
	barriers = 2;
	per = o->connections / nt;
	extra = o->connections % nt;
	for (i = 0; i < nt; i++) {
		parts[i].sh = &sh;
		parts[i].thread = i;
		parts[i].first = first;
		parts[i].n = per + (i < extra ? 1 : 0);
		first += parts[i].n;
	}
	for (i = 0; i < nt; i++) {
		if (pthread_create(&parts[i].tid, NULL, part_main, &parts[i]) != 0) {
			/* The barriers count every thread, and those already
			 * started wait at them: there is no way back. */
			fprintf(stderr, "loadgen: cannot start thread %u\n", i);
			abort();
		}
	}
	pthread_barrier_wait(&sh.start);
	t0 = now_s();
	c0 = cpu_s();
	pthread_barrier_wait(&sh.end);
	t_stop = now_s();
	res->cpu_s = cpu_s() - c0;
	for (i = 0; i < nt; i++) {
		pthread_join(parts[i].tid, NULL);
		/* The run starts with the first thread's clock. */
		if (parts[i].rc == 0 && parts[i].t_start < t0)
			t0 = parts[i].t_start;
	}
	res->elapsed_s = t_stop - t0;
	if (atomic_load(&sh.setup_failed)) {
		/* The thread that failed says why; the others only stood down. */
		snprintf(err, errlen, "a load generator thread could not set up");
		for (i = 0; i < nt; i++)
			if (parts[i].err[0] != '\0') {
				snprintf(err, errlen, "%s", parts[i].err);
				break;
			}
		goto out;
	}
	for (i = 0; i < nt; i++)
		lat.cap += parts[i].lat.n;
	if ((lat.lat = malloc(sizeof(double) * (lat.cap ? lat.cap : 1))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < nt; i++) {
		const part_t *p = &parts[i];

		res->ok += p->ok;
		res->http_errors += p->http_errors;
		res->failures += p->failures;
		if (res->first_error[0] == '\0' && p->first_error[0] != '\0')
			memcpy(res->first_error, p->first_error,
			    sizeof(res->first_error));
		if (res->first_error_status == 0)
			res->first_error_status = p->first_error_status;
		memcpy(lat.lat + lat.n, p->lat.lat, p->lat.n * sizeof(double));
		lat.n += p->lat.n;
	}
	res->rps = res->elapsed_s > 0 ? (double)res->ok / res->elapsed_s : 0;
	if (lat.n > 0) {
		qsort(lat.lat, lat.n, sizeof(double), cmp_double);
		res->p50_ms = lat.lat[lat.n / 2];
		res->p99_ms = lat.lat[(size_t)((double)lat.n * 0.99)];
		res->max_ms = lat.lat[lat.n - 1];
	}
	rc = 0;
out:
	for (i = 0; parts != NULL && i < nt; i++)
		free(parts[i].lat.lat);
	free(parts);
	free(lat.lat);
	if (barriers > 1)
		pthread_barrier_destroy(&sh.end);
	if (barriers > 0)
		pthread_barrier_destroy(&sh.start);
	client_id_free(&sh.id);
	return rc;
}
