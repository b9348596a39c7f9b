#include "client/loadgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

#define LAT_MAX (1u << 22)

typedef struct {
	CURL *easy;
	struct curl_slist *hdrs;
	double start;
	char url[512];
	unsigned slot;
	long status;
} conn_t;

typedef struct {
	double *lat;
	size_t n, cap;
} lat_t;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
	size_t i;

	memset(&r, 0, sizeof(r));
	o->next(o->ctx, c->slot, k, &r);
	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
	for (i = 0; r.headers != NULL && r.headers[i] != NULL; i++) {
		struct curl_slist *n = curl_slist_append(c->hdrs, r.headers[i]);
		if (n == NULL)
			return -1;
		c->hdrs = n;
	}
	snprintf(c->url, sizeof(c->url), "%s%s", o->base_url, r.path);
	if (curl_easy_setopt(c->easy, CURLOPT_URL, c->url) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, r.method) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs) != CURLE_OK)
		return -1;
	if (r.body != NULL) {
		if (curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, r.body) != CURLE_OK ||
		    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r.body_len) != CURLE_OK)
			return -1;
	} else {
		if (curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L) != CURLE_OK ||
		    curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, r.method) != CURLE_OK)
			return -1;
	}
	c->start = now_s();
	return 0;
}

static int
conn_init(const loadgen_opts_t *o, conn_t *c, unsigned slot)
{
	c->slot = slot;
	if ((c->easy = curl_easy_init()) == NULL)
		return -1;
	if (curl_easy_setopt(c->easy, CURLOPT_SSLCERT, o->cert) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_SSLKEY, o->key) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_CAINFO, o->cacert) != CURLE_OK ||
	    /* The benchmark checks the chain but not the name: the servers
	     * are addressed by IP and identify by URI. */
	    curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_3) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, 30000L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c) != CURLE_OK)
		return -1;
	if (o->new_connection &&
	    (curl_easy_setopt(c->easy, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_SSL_SESSIONID_CACHE, 0L) != CURLE_OK))
		return -1;
	return 0;
}

int
loadgen_run(const loadgen_opts_t *o, loadgen_result_t *res, char *err,
    size_t errlen)
{
	CURLM *m = NULL;
	conn_t *conns = NULL;
	lat_t lat = { NULL, 0, 0 };
	uint64_t k = 0;
	double t0, t_end, c0, lat_ms;
	int running = 0, msgs, stop = 0, rc = -1, held = 0;
	unsigned i;
	CURLMsg *msg;
	conn_t *c;
	long status;

	memset(res, 0, sizeof(*res));
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (m = curl_multi_init()) == NULL ||
	    (conns = calloc(o->connections, sizeof(*conns))) == NULL ||
	    (lat.lat = malloc(sizeof(double) * LAT_MAX)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	lat.cap = LAT_MAX;
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o->connections);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)o->connections);
	for (i = 0; i < o->connections; i++) {
		if (conn_init(o, &conns[i], i) < 0 || conn_prepare(o, &conns[i], k++) < 0 ||
		    curl_multi_add_handle(m, conns[i].easy) != CURLM_OK) {
			snprintf(err, errlen, "cannot set up connection %u", i);
			goto out;
		}
	}
	t0 = now_s();
	c0 = cpu_s();
	t_end = t0 + (o->idle_hold_s > 0 ? 3600 : o->duration_s);
	do {
		if (curl_multi_perform(m, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(m, &msgs)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			lat_ms = (now_s() - c->start) * 1000.0;
			if (msg->data.result != CURLE_OK) {
				res->failures++;
				if (res->first_error[0] == '\0')
					snprintf(res->first_error, sizeof(res->first_error),
					    "%s", curl_easy_strerror(msg->data.result));
			} else {
				curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
				    &status);
				if (status >= 200 && status < 300) {
					res->ok++;
					if (lat.n < lat.cap)
						lat.lat[lat.n++] = lat_ms;
				} else {
					res->http_errors++;
					if (res->first_error_status == 0)
						res->first_error_status = status;
				}
			}
			curl_multi_remove_handle(m, msg->easy_handle);
			if (o->idle_hold_s > 0) {
				/* Leave the connection open and idle. */
				held++;
				continue;
			}
			if (stop || now_s() >= t_end) {
				stop = 1;
				continue;
			}
			if (conn_prepare(o, c, k++) < 0 ||
			    curl_multi_add_handle(m, c->easy) != CURLM_OK) {
				res->failures++;
				continue;
			}
		}
		if (o->idle_hold_s > 0 && (unsigned)held == o->connections)
			break;
		if (running > 0 && curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK)
			break;
	} while (running > 0 || (!stop && now_s() < t_end));
	res->elapsed_s = now_s() - t0;
	res->cpu_s = cpu_s() - c0;
	if (o->idle_hold_s > 0) {
		/* All connections sit idle in the multi handle's pool. */
		if (o->on_idle != NULL)
			o->on_idle(o->ctx);
		else {
			struct timespec ts = { (time_t)o->idle_hold_s, 0 };
			nanosleep(&ts, NULL);
		}
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
	for (i = 0; conns != NULL && i < o->connections; i++) {
		if (conns[i].easy != NULL) {
			curl_multi_remove_handle(m, conns[i].easy);
			curl_easy_cleanup(conns[i].easy);
		}
		curl_slist_free_all(conns[i].hdrs);
	}
	free(conns);
	free(lat.lat);
	if (m != NULL)
		curl_multi_cleanup(m);
	return rc;
}
