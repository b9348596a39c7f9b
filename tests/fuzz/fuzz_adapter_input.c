/*
 * Fuzz target: the agency-input parsers of adapters/ on arbitrary bytes.
 *
 * The whole input is read as CSV (default and tiny bounds) and as JSON
 * lines.  If it holds a NUL byte, the bytes before it are also loaded as a
 * column mapping and the bytes after it as the CSV it maps: header bound,
 * every row applied and the record printed, and the row's cells read as
 * messages whose array indices mapping_unshift renumbers.  If the CSV
 * holds a NUL byte too, the bytes after it are a gateway's error message
 * (what visorctl push hands mapping_unshift for each row): renumbered into
 * a short and a long buffer, it must differ from the message only in the
 * digits between brackets, and come out whole or cut to the buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/csv.h"
#include "adapters/jsonl.h"
#include "adapters/mapping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The number after tag in err, or 0 if there is none. */
static size_t
number_after(const char *err, const char *tag)
{
	const char *p = strstr(err, tag);

	return p == NULL ? 0 : strtoul(p + strlen(tag), NULL, 10);
}

/*
 * Every line is accounted for: records and errors come in the order of
 * their lines, an error's line is no earlier than where the reader stood,
 * a record never starts on a line an earlier error said it skipped
 * through, nothing follows "skipped to the end of the input", and a
 * column is 1-based.
 */
static void
read_csv(const char *p, size_t n, const csv_limits_t *lim)
{
	csv_reader_t *r = csv_reader_new(p, n, lim);
	csv_row_t row;
	char err[256];
	size_t i, guard = 0, floor = 1, l, through;
	int rc, ended = 0;

	if (r == NULL)
		return;
	while ((rc = csv_next(r, &row, err, sizeof(err))) != 0 &&
	    guard++ < n + 2) {
		if (ended)
			abort();	/* after "skipped to the end" */
		if (rc < 0) {
			if (strncmp(err, "line ", 5) != 0 ||
			    (l = strtoul(err + 5, NULL, 10)) < floor ||
			    (strstr(err, ", column ") != NULL &&
			    number_after(err, ", column ") == 0))
				abort();
			through = number_after(err, "skipped through line ");
			if (strstr(err, "skipped through line ") != NULL &&
			    through <= l)
				abort();
			floor = (through > l ? through : l) + 1;
			ended = strstr(err, "skipped to the end") != NULL;
			continue;
		}
		if (row.line < floor)
			abort();
		floor = row.line + 1;
		for (i = 0; i < row.n; i++)
			if (strlen(row.fields[i]) != row.lens[i])
				abort();
	}
	/* every call consumes input: the loop must have ended by itself */
	if (rc != 0)
		abort();
	csv_reader_free(r);
}

static void
read_jsonl(const char *p, size_t n)
{
	jsonl_reader_t *r = jsonl_reader_new(p, n, 4096, 16);
	cJSON *j;
	size_t line, rawlen;
	const char *raw;
	char err[256];
	int rc;

	if (r == NULL)
		return;
	while ((rc = jsonl_next(r, &j, &line, &raw, &rawlen, err,
	    sizeof(err))) != 0)
		if (rc > 0)
			cJSON_Delete(j);
	jsonl_reader_free(r);
}

/* s without the digits that follow a '[': what renumbering keeps. */
static char *
skeleton(const char *s)
{
	char *o = malloc(strlen(s) + 1), *q = o;

	if (o == NULL)
		abort();
	while (*s != '\0') {
		*q++ = *s;
		if (*s++ == '[')
			while (*s >= '0' && *s <= '9')
				s++;
	}
	*q = '\0';
	return o;
}

/* A hostile message msg about the record whose renumbering is sh. */
static void
unshift_msg(const cJSON *sh, const char *msg)
{
	char small[16], big[8192], *a, *b;
	int rc, rc2;

	rc = mapping_unshift(sh, msg, big, sizeof(big));
	rc2 = mapping_unshift(sh, msg, small, sizeof(small));
	if (rc < 0 || rc > 1 || rc2 != rc || strlen(small) >= sizeof(small) ||
	    strncmp(small, big, sizeof(small) - 1) != 0)
		abort();
	if (rc == 0 && strcmp(big, msg) != 0)
		abort();	/* unchanged means as it was (msg < 4 KiB) */
	a = skeleton(msg);
	b = skeleton(big);
	if (strcmp(a, b) != 0)
		abort();	/* something else than an index changed */
	free(a);
	free(b);
}

static void
map_csv(const char *map, size_t mlen, const char *csv, size_t clen,
    const char *msg)
{
	mapping_t *m;
	csv_reader_t *r;
	csv_row_t row;
	cJSON *rec, *sh;
	char err[256], id[MAPPING_ID_MAX], *s, out[128];
	size_t i;
	int rc;

	if ((m = mapping_load(map, mlen, err, sizeof(err))) == NULL)
		return;
	(void)mapping_method(m);
	if ((r = csv_reader_new(csv, clen, NULL)) == NULL)
		goto out;
	if (csv_next(r, &row, err, sizeof(err)) != 1 ||
	    mapping_bind(m, row.fields, row.n, err, sizeof(err)) < 0)
		goto out;
	while ((rc = csv_next(r, &row, err, sizeof(err))) != 0) {
		if (rc < 0)
			continue;
		if (mapping_apply_indexed(m, row.fields, row.n, &rec, &sh, id,
		    err, sizeof(err)) < 0)
			continue;
		if (!mapping_valid_id(id))
			abort();
		s = cJSON_PrintUnformatted(rec);
		cJSON_free(s);
		for (i = 0; i < row.n; i++)
			if (mapping_unshift(sh, row.fields[i], out,
			    sizeof(out)) < 0 || strlen(out) >= sizeof(out))
				abort();
		if (msg != NULL)
			unshift_msg(sh, msg);
		cJSON_Delete(sh);
		cJSON_Delete(rec);
	}
out:
	csv_reader_free(r);
	mapping_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nul, *nul2, *csv;
	csv_limits_t tiny = { 8, 4, 32 };
	char msg[4096];
	size_t clen, n;

	read_csv(p, size, NULL);
	read_csv(p, size, &tiny);
	read_jsonl(p, size);
	nul = memchr(p, '\0', size);
	if (nul == NULL)
		return 0;
	csv = nul + 1;
	clen = size - (size_t)(nul - p) - 1;
	if ((nul2 = memchr(csv, '\0', clen)) == NULL) {
		map_csv(p, (size_t)(nul - p), csv, clen, NULL);
		return 0;
	}
	/* the message ends at its first NUL or after 4095 bytes */
	n = clen - (size_t)(nul2 - csv) - 1;
	if (n >= sizeof(msg))
		n = sizeof(msg) - 1;
	memcpy(msg, nul2 + 1, n);
	msg[n] = '\0';
	map_csv(p, (size_t)(nul - p), csv, (size_t)(nul2 - csv), msg);
	return 0;
}
