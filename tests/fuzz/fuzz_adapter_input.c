/*
 * Fuzz target: the agency-input parsers of adapters/ on arbitrary bytes.
 *
 * The whole input is read as CSV (default and tiny bounds) and as JSON
 * lines.  If it holds a NUL byte, the bytes before it are also loaded as a
 * column mapping and the bytes after it as the CSV it maps: header bound,
 * every row applied and the record printed, and the row's cells (and the
 * whole input) read as messages whose array indices mapping_unshift
 * renumbers.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/csv.h"
#include "adapters/jsonl.h"
#include "adapters/mapping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
read_csv(const char *p, size_t n, const csv_limits_t *lim)
{
	csv_reader_t *r = csv_reader_new(p, n, lim);
	csv_row_t row;
	char err[256];
	size_t i, guard = 0;
	int rc;

	if (r == NULL)
		return;
	while ((rc = csv_next(r, &row, err, sizeof(err))) != 0 &&
	    guard++ < n + 2) {
		if (rc < 0)
			continue;
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

static void
map_csv(const char *map, size_t mlen, const char *csv, size_t clen)
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
	const char *nul;
	csv_limits_t tiny = { 8, 4, 32 };

	read_csv(p, size, NULL);
	read_csv(p, size, &tiny);
	read_jsonl(p, size);
	nul = memchr(p, '\0', size);
	if (nul != NULL)
		map_csv(p, (size_t)(nul - p), nul + 1, size - (size_t)(nul - p) - 1);
	return 0;
}
