/*
 * buf: a growable byte buffer with a hard maximum size.  Sizes travel with
 * the pointer; the contents are always NUL-terminated (not counted in len)
 * so that text can be handed to APIs that want C strings.
 */
#ifndef UTIL_BUF_H
#define UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
	char *data;	/* NUL-terminated; NULL until the first append */
	size_t len;	/* bytes used, not counting the NUL */
	size_t cap;	/* bytes allocated */
	size_t max;	/* appends that would pass this fail; 0 means 64 MiB */
} buf_t;

#define BUF_INIT { NULL, 0, 0, 0 }

/* Set an empty buffer with the given maximum (0: 64 MiB). */
void buf_init(buf_t *b, size_t max);

/* Append len bytes.  Returns 0, or -1 (buffer unchanged) if it would pass max
 * or memory is short. */
int buf_append(buf_t *b, const void *data, size_t len);

/* Make room for extra more bytes (and the NUL) at once, so that a known
 * size costs one allocation rather than a series of doublings.  The
 * contents stay as they are.  0, or -1 if it would pass max or memory is
 * short. */
int buf_grow(buf_t *b, size_t extra);

/* Append a C string. */
int buf_puts(buf_t *b, const char *s);

/* Append formatted text (vsnprintf semantics).  Returns 0 or -1. */
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Empty the buffer, keeping its memory. */
void buf_reset(buf_t *b);

/* Take ownership of the data (caller frees; may be NULL when empty); the
 * buffer is left empty. */
char *buf_steal(buf_t *b, size_t *len);

/* Free the memory, wiping it first (buffers may hold secrets or record
 * plaintext).  buf_free on an empty buffer does nothing. */
void buf_free(buf_t *b);

#endif
