/*
 * jsonl: a JSON lines reader over a buffer in memory: one JSON object per
 * line (LF or CRLF), parsed strictly (util/json.h).  Blank lines are
 * skipped.  Errors name the line; the reader then continues with the next
 * line, so one bad line does not stop the rest.
 */
#ifndef ADAPTERS_JSONL_H
#define ADAPTERS_JSONL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define JSONL_LINE_MAX_DEFAULT (1u << 20)

typedef struct jsonl_reader jsonl_reader_t;

/* A reader over data[0..len) (not copied: must outlive the reader).
 * max_line bounds one line in bytes (0: 1 MiB); max_depth bounds nesting
 * (0: JSON_DEFAULT_MAX_DEPTH).  NULL if memory is short. */
jsonl_reader_t *jsonl_reader_new(const char *data, size_t len, size_t max_line,
    int max_depth);

/* Free; NULL does nothing. */
void jsonl_reader_free(jsonl_reader_t *r);

/* Parse the next line.  Returns 1 with *out (an object; caller frees with
 * cJSON_Delete), *line its line number and, if raw is not NULL, *raw and
 * *rawlen the line's bytes (without the line end; valid while data is);
 * 0 at the end; -1 for a bad line with "line N: reason" in err. */
int jsonl_next(jsonl_reader_t *r, cJSON **out, size_t *line, const char **raw,
    size_t *rawlen, char *err, size_t errlen);

#endif
