#include "util/log.h"

#include <stdio.h>
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
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, 25, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n != 19) {
		memcpy(out, "0000-00-00T00:00:00.000Z", 25);
		return;
	}
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
		buf_puts(b, v);
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

static void
log_write(buf_t *b)
{
	ssize_t w;
	size_t off = 0;

	buf_append(b, "\n", 1);
	/* One write(2) keeps lines from threads whole. */
	while (b->data != NULL && off < b->len) {
		w = write(STDERR_FILENO, b->data + off, b->len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

static void
log_head(buf_t *b, log_level_t level, const char *event)
{
	char ts[25];

	log_time_rfc3339(ts);
	buf_printf(b, "ts=%s level=%s event=", ts, level_names[level]);
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
		buf_printf(&b, " %s=", k);
		log_append_value(&b, v ? v : "-");
	}
	va_end(ap);
	log_write(&b);
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
	log_write(&b);
	buf_free(&m);
	buf_free(&b);
}
