/*
 * jsonl: JSON lines reader.  See jsonl.h for the contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/jsonl.h"
#include "util/json.h"

struct jsonl_reader {
	const char *data;
	size_t len;
	size_t pos;
	size_t line;		/* line number of the next line to read */
	size_t max_line;
	int max_depth;
};

jsonl_reader_t *
jsonl_reader_new(const char *data, size_t len, size_t max_line, int max_depth)
{
	jsonl_reader_t *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->data = data;
	r->len = data != NULL ? len : 0;
	r->line = 1;
	r->max_line = max_line ? max_line : JSONL_LINE_MAX_DEFAULT;
	r->max_depth = max_depth > 0 ? max_depth : JSON_DEFAULT_MAX_DEPTH;
	if (r->len >= 3 && memcmp(r->data, "\xef\xbb\xbf", 3) == 0)
		r->pos = 3;
	return r;
}

void
jsonl_reader_free(jsonl_reader_t *r)
{
	free(r);
}

static int
blank(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

int
jsonl_next(jsonl_reader_t *r, cJSON **out, size_t *line, const char **raw,
    size_t *rawlen, char *err, size_t errlen)
{
	const char *p, *nl;
	size_t n, lineno;
	char why[160];
	cJSON *j;

	*out = NULL;
	for (;;) {
		if (r->pos >= r->len)
			return 0;
		p = r->data + r->pos;
		nl = memchr(p, '\n', r->len - r->pos);
		n = nl != NULL ? (size_t)(nl - p) : r->len - r->pos;
		lineno = r->line;
		r->pos += n + (nl != NULL);
		r->line++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (!blank(p, n))
			break;
	}
	*line = lineno;
	if (raw != NULL) {
		*raw = p;
		*rawlen = n;
	}
	if (n > r->max_line) {
		snprintf(err, errlen, "line %zu: longer than %zu bytes", lineno,
		    r->max_line);
		return -1;
	}
	j = json_parse_strict(p, n, r->max_depth, why, sizeof(why));
	if (j == NULL) {
		snprintf(err, errlen, "line %zu: %s", lineno, why);
		return -1;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		snprintf(err, errlen, "line %zu: not a JSON object", lineno);
		return -1;
	}
	*out = j;
	return 1;
}
