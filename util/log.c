#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"

static log_level_t log_min = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_set_level(log_level_t level)
{
	log_min = level;
}

void
log_time_rfc3339(char out[25])
{
	/* The date and time of day change once a second; a request log line
	 * and an audit batch each want them: format them once per second per
	 * thread. */
	static _Thread_local time_t cached_sec = (time_t)-1;
	static _Thread_local char cached[20];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached_sec) {
		if (gmtime_r(&ts.tv_sec, &tm) == NULL ||
		    strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
			memcpy(out, "0000-00-00T00:00:00.000Z", 25);
			return;
		}
		cached_sec = ts.tv_sec;
	}
	memcpy(out, cached, 19);
	out[19] = '.';
	out[20] = (char)('0' + (ts.tv_nsec / 100000000) % 10);
	out[21] = (char)('0' + (ts.tv_nsec / 10000000) % 10);
	out[22] = (char)('0' + (ts.tv_nsec / 1000000) % 10);
	out[23] = 'Z';
	out[24] = '\0';
}

static void
log_append_value(buf_t *b, const char *v)
{
	const unsigned char *p;
	int quote = (*v == '\0');

	for (p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
			quote = 1;
	if (!quote) {
		buf_append(b, v, (size_t)(p - (const unsigned char *)v));
		return;
	}
	buf_append(b, "\"", 1);
	for (p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p < ' ' || *p == 0x7f)
			buf_printf(b, "\\x%02x", *p);
		else
			buf_append(b, p, 1);
	}
	buf_append(b, "\"", 1);
}

#define LOG_BATCH_MAX (32 * 1024)

static _Thread_local buf_t *batch;

static void
write_all(const char *p, size_t len)
{
	ssize_t w;
	size_t off = 0;

	while (p != NULL && off < len) {
		w = write(STDERR_FILENO, p + off, len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

void
log_thread_flush(void)
{
	if (batch == NULL || batch->len == 0)
		return;
	/* One write(2) of whole lines keeps lines from threads whole. */
	write_all(batch->data, batch->len);
	buf_reset(batch);
}

void
log_thread_batch(int on)
{
	if (on && batch == NULL) {
		if ((batch = malloc(sizeof(*batch))) != NULL)
			buf_init(batch, 2 * LOG_BATCH_MAX);
	} else if (!on && batch != NULL) {
		log_thread_flush();
		buf_free(batch);
		free(batch);
		batch = NULL;
	}
}

static void
log_write(buf_t *b, log_level_t level)
{
	buf_append(b, "\n", 1);
	if (batch != NULL && b->data != NULL) {
		if (batch->len + b->len > LOG_BATCH_MAX)
			log_thread_flush();
		if (buf_append(batch, b->data, b->len) == 0) {
			if (level >= LOG_WARN)
				log_thread_flush();
			return;
		}
		log_thread_flush();
	}
	write_all(b->data, b->len);
}

static void
log_head(buf_t *b, log_level_t level, const char *event)
{
	char ts[25];

	log_time_rfc3339(ts);
	buf_puts(b, "ts=");
	buf_puts(b, ts);
	buf_puts(b, " level=");
	buf_puts(b, level_names[level]);
	buf_puts(b, " event=");
	log_append_value(b, event);
}

void
log_event(log_level_t level, const char *event, ...)
{
	buf_t b;
	va_list ap;
	const char *k, *v;

	if (level < log_min)
		return;
	buf_init(&b, 16384);
	log_head(&b, level, event);
	va_start(ap, event);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		buf_append(&b, " ", 1);
		buf_puts(&b, k);
		buf_append(&b, "=", 1);
		log_append_value(&b, v ? v : "-");
	}
	va_end(ap);
	log_write(&b, level);
	buf_free(&b);
}

void
log_msg(log_level_t level, const char *event, const char *fmt, ...)
{
	buf_t b, m;
	va_list ap;

	if (level < log_min)
		return;
	buf_init(&b, 16384);
	buf_init(&m, 8192);
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	log_head(&b, level, event);
	buf_puts(&b, " msg=");
	log_append_value(&b, m.data ? m.data : "");
	log_write(&b, level);
	buf_free(&m);
	buf_free(&b);
}
