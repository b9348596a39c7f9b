#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/guard.h"

int
json_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		unsigned n, cp, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i <= n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Small objects: compare every pair.  Large ones (a body of the maximum
 * size holds tens of thousands of keys, and every pair would cost seconds of
 * a worker's time): sort the keys and compare neighbours. */
#define JSON_KEYS_PAIRWISE_MAX 32

static int
json_keys_unique(const cJSON *obj, char *err, size_t errlen)
{
	const cJSON *c, *d;
	const char **keys;
	size_t n = 0, i;
	int rc = 0;

	for (c = obj->child; c != NULL; c = c->next)
		n++;
	if (n <= JSON_KEYS_PAIRWISE_MAX) {
		for (c = obj->child; c != NULL; c = c->next)
			for (d = obj->child; d != c; d = d->next)
				if (strcmp(d->string, c->string) == 0) {
					snprintf(err, errlen, "duplicate key \"%.64s\"",
					    c->string);
					return -1;
				}
		return 0;
	}
	if ((keys = malloc(n * sizeof(*keys))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0, c = obj->child; c != NULL; c = c->next)
		keys[i++] = c->string;
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (i = 1; i < n; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0) {
			snprintf(err, errlen, "duplicate key \"%.64s\"", keys[i]);
			rc = -1;
			break;
		}
	free(keys);
	return rc;
}

static int
json_check(const cJSON *v, int depth, int max_depth, char *err, size_t errlen)
{
	const cJSON *c;

	if (cJSON_IsNumber(v) && !isfinite(v->valuedouble)) {
		snprintf(err, errlen, "number out of range");
		return -1;
	}
	/* Strings and keys are valid UTF-8: the whole text was checked
	 * before parsing, and cJSON turns \u escapes into valid UTF-8 or
	 * fails (lone or mismatched surrogates). */
	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	if (depth >= max_depth) {
		snprintf(err, errlen, "nesting deeper than %d", max_depth);
		return -1;
	}
	if (cJSON_IsObject(v) && json_keys_unique(v, err, errlen) < 0)
		return -1;
	for (c = v->child; c != NULL; c = c->next)
		if (json_check(c, depth + 1, max_depth, err, errlen) < 0)
			return -1;
	return 0;
}

/* Strings with an escaped NUL would be cut short by cJSON: refuse them. */
static int
json_has_escaped_nul(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 5 < len; i++)
		if (buf[i] == '\\' && buf[i + 1] == 'u' && buf[i + 2] == '0' &&
		    buf[i + 3] == '0' && buf[i + 4] == '0' && buf[i + 5] == '0') {
			/* count preceding backslashes: \\u0000 is not an escape */
			size_t k = i, bs = 0;
			while (k > 0 && buf[k - 1] == '\\') {
				bs++;
				k--;
			}
			if (bs % 2 == 0)
				return 1;
		}
	return 0;
}

static int
number_char(char c)
{
	return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
	    c == '+' || c == '-';
}

static size_t
digits_end(const char *buf, size_t len, size_t i)
{
	while (i < len && buf[i] >= '0' && buf[i] <= '9')
		i++;
	return i;
}

/* The end of the RFC 8259 number that starts at i, or i if none does:
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static size_t
number_end(const char *buf, size_t len, size_t i)
{
	size_t start = i, j;

	if (i < len && buf[i] == '-')
		i++;
	if (i >= len || buf[i] < '0' || buf[i] > '9')
		return start;
	i = buf[i] == '0' ? i + 1 : digits_end(buf, len, i);
	if (i < len && buf[i] == '.') {
		if ((j = digits_end(buf, len, i + 1)) == i + 1)
			return start;
		i = j;
	}
	if (i < len && (buf[i] == 'e' || buf[i] == 'E')) {
		j = i + 1;
		if (j < len && (buf[j] == '+' || buf[j] == '-'))
			j++;
		if (digits_end(buf, len, j) == j)
			return start;
		i = digits_end(buf, len, j);
	}
	return i;
}

cJSON *
json_parse_strict(const char *buf, size_t len, int max_depth, char *err,
    size_t errlen)
{
	cJSON *root = NULL;
	const char *end = NULL;
	size_t i, depth = 0, maxd = 0;
	int in_str = 0;

	if (errlen > 0)
		err[0] = '\0';
	if (len == 0) {
		snprintf(err, errlen, "empty body");
		return NULL;
	}
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "NUL byte in JSON text");
		return NULL;
	}
	/* Measure nesting before cJSON recurses into it, and refuse what
	 * cJSON lets through but RFC 8259 does not: control characters in a
	 * string or as white space, and numbers outside its grammar. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (in_str) {
			if (c < 0x20) {
				snprintf(err, errlen, "control character in a "
				    "string at byte %zu", i);
				return NULL;
			}
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
			snprintf(err, errlen, "control character at byte %zu", i);
			return NULL;
		} else if ((c == '-' || (c >= '0' && c <= '9')) &&
		    (i == 0 || !number_char(buf[i - 1]))) {
			size_t end_num = number_end(buf, len, i);

			if (end_num == i || (end_num < len &&
			    number_char(buf[end_num]))) {
				snprintf(err, errlen, "malformed number at byte %zu",
				    i);
				return NULL;
			}
			i = end_num - 1;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > maxd)
				maxd = depth;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	if (maxd > (size_t)max_depth) {
		snprintf(err, errlen, "nesting deeper than %d", max_depth);
		return NULL;
	}
	if (json_has_escaped_nul(buf, len)) {
		snprintf(err, errlen, "escaped NUL in string");
		return NULL;
	}
	/* Raw bytes reach strings and keys unchanged, so checking the text
	 * once covers every string (RFC 8259: JSON text is UTF-8). */
	if (!json_utf8_valid((const unsigned char *)buf, len)) {
		snprintf(err, errlen, "string is not valid UTF-8");
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (root == NULL) {
		const char *at = cJSON_GetErrorPtr();
		long off = (at != NULL && at >= buf && at <= buf + len) ?
		    (long)(at - buf) : -1;
		snprintf(err, errlen, "malformed JSON near byte %ld", off);
		return NULL;
	}
	for (; end != NULL && end < buf + len; end++) {
		if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n') {
			snprintf(err, errlen, "trailing bytes after JSON value");
			cJSON_Delete(root);
			return NULL;
		}
	}
	if (json_check(root, 0, max_depth, err, errlen) < 0) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

int
json_get_int(const cJSON *obj, const char *key, int64_t min, int64_t max,
    int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	double d;

	if (v == NULL)
		return 1;
	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	if (d != floor(d) || d < (double)min || d > (double)max ||
	    d < -9007199254740992.0 || d > 9007199254740992.0)
		return -1;
	*out = (int64_t)d;
	return 0;
}

const char *
json_get_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

char *
json_print(const cJSON *v)
{
	size_t cap = 4096;
	char *p;

	/* Into our own buffer (cJSON asks for 5 spare bytes), so that the
	 * text is plain malloc memory whatever cJSON's allocator is. */
	for (;;) {
		if ((p = malloc(cap)) == NULL)
			return NULL;
		if (cJSON_PrintPreallocated((cJSON *)v, p, (int)cap, 0))
			return p;
		explicit_bzero(p, cap);
		free(p);
		if (cap >= ((size_t)64 << 20))
			return NULL;
		cap *= 4;
	}
}

/* ------------------------------------------------------------- arena */

#define ARENA_CHUNK ((size_t)64 * 1024)
#define ARENA_BIG 4096			/* larger requests use malloc */
#define ARENA_MAX ((size_t)8 << 20)	/* per thread, then malloc */
#define ARENA_ALIGN 16

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef struct arena_chunk {
	struct arena_chunk *next;
	size_t size, used;
	unsigned char *data;
} arena_chunk_t;

typedef struct {
	arena_chunk_t *head;	/* chunk being filled first */
	unsigned depth;
	size_t total;
} arena_t;

static _Thread_local arena_t arena;

static int
arena_owns(const void *p)
{
	const arena_chunk_t *c;
	const unsigned char *q = p;

	for (c = arena.head; c != NULL; c = c->next)
		if (q >= c->data && q < c->data + c->size)
			return 1;
	return 0;
}

static void *
arena_alloc(size_t n)
{
	arena_chunk_t *c = arena.head;
	void *p;

	n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (c == NULL || c->size - c->used < n) {
		if (arena.total + ARENA_CHUNK > ARENA_MAX ||
		    (c = malloc(sizeof(*c))) == NULL)
			return NULL;
		if ((c->data = aligned_alloc(ARENA_ALIGN, ARENA_CHUNK)) == NULL) {
			free(c);
			return NULL;
		}
		c->size = ARENA_CHUNK;
		c->used = 0;
		c->next = arena.head;
		arena.head = c;
		arena.total += c->size;
		ARENA_POISON(c->data, c->size);
	}
	p = c->data + c->used;
	c->used += n;
	ARENA_UNPOISON(p, n);
	return p;
}

static void *
hook_malloc(size_t n)
{
	void *p;

	if (arena.depth > 0 && n <= ARENA_BIG && (p = arena_alloc(n)) != NULL)
		return p;
	return malloc(n);
}

static void
hook_free(void *p)
{
	if (p == NULL)
		return;
	if (arena.head != NULL && arena_owns(p)) {
		/* Freed with the scope.  Outside one, an arena pointer has
		 * outlived its scope: the memory is already someone else's. */
		if (arena.depth == 0)
			abort();
		return;
	}
	free(p);
}

void
json_arena_init(void)
{
	cJSON_Hooks h = { hook_malloc, hook_free };

	cJSON_InitHooks(&h);
}

void
json_arena_begin(void)
{
	arena.depth++;
}

void
json_arena_end(void)
{
	arena_chunk_t *c, *next;

	if (arena.depth == 0 || --arena.depth > 0)
		return;
	/* Keep one chunk for the next request; wipe what was used (record
	 * plaintext) and give the rest back. */
	for (c = arena.head; c != NULL; c = next) {
		next = c->next;
		explicit_bzero(c->data, c->used);
		c->used = 0;
		ARENA_POISON(c->data, c->size);
		if (c != arena.head) {
			ARENA_UNPOISON(c->data, c->size);
			free(c->data);
			free(c);
		}
	}
	if (arena.head != NULL) {
		arena.head->next = NULL;
		arena.total = arena.head->size;
	}
}

size_t
json_utf8_hidden(const unsigned char *s, size_t avail, unsigned *cp)
{
	unsigned c;

	if (avail >= 2 && s[0] == 0xd8 && s[1] == 0x9c) {
		*cp = 0x061c;
		return 2;
	}
	if (avail < 3 || s[0] != 0xe2 || (s[1] != 0x80 && s[1] != 0x81) ||
	    s[2] < 0x80 || s[2] > 0xbf)
		return 0;
	c = 0x2000 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3fu);
	if (c == 0x200e || c == 0x200f || (c >= 0x2028 && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069)) {
		*cp = c;
		return 3;
	}
	return 0;
}

int
json_append_displayable(buf_t *out, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i, from = 0, n;
	unsigned c;

	for (i = 0; i < len; i++) {
		/* Tab, CR and LF can only be white space between tokens (a
		 * string holds none raw): a space is the same JSON, and keeps
		 * the cursor where it is and the text on one line. */
		if (p[i] == '\t' || p[i] == '\r' || p[i] == '\n') {
			if (buf_append(out, text + from, i - from) < 0 ||
			    buf_append(out, " ", 1) < 0)
				return -1;
			from = i + 1;
			continue;
		}
		if (p[i] == 0x7f) {
			c = 0x7f;
			n = 1;
		} else if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 &&
		    p[i + 1] <= 0x9f) {
			c = p[i + 1];
			n = 2;
		} else if ((n = json_utf8_hidden(p + i, len - i, &c)) == 0)
			continue;
		if (buf_append(out, text + from, i - from) < 0 ||
		    buf_printf(out, "\\u%04x", c) < 0)
			return -1;
		i += n - 1;
		from = i + 1;
	}
	return buf_append(out, text + from, len - from);
}

int
json_append_string(buf_t *out, const char *s)
{
	const unsigned char *p;
	int rc = buf_append(out, "\"", 1);

	for (p = (const unsigned char *)s; *p && rc == 0; p++) {
		if (*p == '"' || *p == '\\')
			rc = buf_printf(out, "\\%c", *p);
		else if (*p < 0x20)
			rc = buf_printf(out, "\\u%04x", *p);
		else
			rc = buf_append(out, p, 1);
	}
	return rc == 0 ? buf_append(out, "\"", 1) : -1;
}

int
json_append_string_array(buf_t *out, const char *const *items, size_t n)
{
	size_t i;

	if (buf_append(out, "[", 1) < 0)
		return -1;
	for (i = 0; i < n; i++)
		if ((i > 0 && buf_append(out, ",", 1) < 0) ||
		    json_append_string(out, items[i]) < 0)
			return -1;
	return buf_append(out, "]", 1);
}

void
json_arena_release(void)
{
	arena_chunk_t *c, *next;

	if (arena.depth != 0)
		return;
	for (c = arena.head; c != NULL; c = next) {
		next = c->next;
		ARENA_UNPOISON(c->data, c->size);
		free(c->data);
		free(c);
	}
	arena.head = NULL;
	arena.total = 0;
}
