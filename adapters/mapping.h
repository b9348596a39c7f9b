/*
 * mapping: turns CSV rows of an agency export into visor records (SPEC
 * section 6) following a column-mapping file.
 *
 * The mapping file is one JSON object (see adapters/examples/ for complete
 * ones):
 *
 *   {
 *     "format": "visor-csv-mapping/1",
 *     "description": "free text",                     (optional)
 *     "method": "PUT" | "PATCH",                      (default "PUT")
 *     "id": {"column": "Case Ref", "prefix": "PRB-"}, (or just "Case Ref")
 *     "constants": {"managing_area": "norfolk", "addresses[0].type": "home"},
 *     "columns": {
 *       "Surname":  {"field": "person.surname"},      (type "string")
 *       "DOB":      {"field": "person.dob", "type": "date",
 *                    "date_format": "DD/MM/YYYY"},
 *       "Category": {"field": "category", "type": "integer"},
 *       "RoSH":     {"field": "risk.rosh",
 *                    "values": {"H": "high", "VH": "very-high"}},
 *       "Conditions": {"field": "licence.conditions", "type": "list",
 *                    "separator": ";"},
 *       "Tagged":   {"field": "em.active", "type": "boolean"},
 *       "Officer":  {"ignore": true}
 *     },
 *     "unmapped": "error" | "ignore"                  (default "error")
 *   }
 *
 * Field paths are names joined by '.', each optionally indexed ("name[2]",
 * index 0..63): "person.surname", "addresses[1].postcode".  Types:
 * string, integer (an optional '-' and decimal digits, nothing else),
 * number (decimal, without a '+' or white space before it), boolean
 * (true/false/yes/no/y/n/1/0), date
 * (date_format YYYY-MM-DD (default), DD/MM/YYYY, MM/DD/YYYY or DD-MM-YYYY;
 * written YYYY-MM-DD) and list (split on separator, default ";", items
 * trimmed, empty items dropped; an array of strings).  "values" maps cell
 * text to the value written (for string and list).  An empty cell (for a
 * list, one with no items) writes nothing unless "required": true, which
 * makes it an error.  Objects and arrays left empty are dropped from the
 * record, so a constant may not be or hold one (nor be "id" or
 * "version").  The id column gives the record id ([A-Z0-9-]{3,64} after
 * the prefix); with PUT it is also written as the record's "id".  With
 * PATCH the record is a JSON merge patch (RFC 7396): arrays such as
 * "addresses" are replaced whole.
 */
#ifndef ADAPTERS_MAPPING_H
#define ADAPTERS_MAPPING_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define MAPPING_FILE_MAX (1u << 20)
#define MAPPING_ID_MAX 65

typedef struct mapping mapping_t;

/* Parse and check a mapping file's bytes.  Returns the mapping (caller
 * frees with mapping_free) or NULL with a reason naming the key in err. */
mapping_t *mapping_load(const char *json, size_t len, char *err,
    size_t errlen);

/* Free; NULL does nothing. */
void mapping_free(mapping_t *m);

/* "PUT" or "PATCH". */
const char *mapping_method(const mapping_t *m);

/* Match the CSV header row (n names) to the mapping: every mapped column
 * and the id column must appear exactly once; with "unmapped": "error" every
 * header column must be mapped or ignored.  Must succeed before
 * mapping_apply.  Returns 0 or -1 with a reason in err. */
int mapping_bind(mapping_t *m, const char *const *header, size_t n, char *err,
    size_t errlen);

/* Turn one row (n fields, as bound) into a record.  On success returns 0,
 * *out the record object (caller frees with cJSON_Delete) and id the record
 * id.  On bad data returns -1 with a reason naming the column in err. */
int mapping_apply(const mapping_t *m, const char *const *fields, size_t n,
    cJSON **out, char id[MAPPING_ID_MAX], char *err, size_t errlen);

/* As mapping_apply; and unless shifts is NULL, *shifts says how the
 * record's arrays were renumbered: an array that lost empty elements (a
 * column for addresses[0] empty, one for addresses[1] not) holds its
 * other elements at lower indices than the mapping gives them, so that
 * what the gateway says of "addresses[0]" is of the mapping's
 * addresses[1].  *shifts is NULL when nothing moved, else an object
 * mapping each such array's path (as the mapping numbers it, e.g.
 * "addresses", "a[1].b") to the mapping's indices of the elements sent,
 * in order; the caller frees it with cJSON_Delete. */
int mapping_apply_indexed(const mapping_t *m, const char *const *fields,
    size_t n, cJSON **out, cJSON **shifts, char id[MAPPING_ID_MAX],
    char *err, size_t errlen);

/* Copy msg (a message about the record mapping_apply_indexed made, such
 * as a gateway's "addresses[0].postcode: not a postcode") into out with
 * the array indices in its field paths renumbered as the mapping numbers
 * them.  Returns 1 if an index changed, 0 if not (out then holds msg as
 * it was; also when shifts is NULL or memory is short).  Truncates to
 * outlen. */
int mapping_unshift(const cJSON *shifts, const char *msg, char *out,
    size_t outlen);

/* 1 if s is a valid record id, [A-Z0-9-]{3,64}. */
int mapping_valid_id(const char *s);

#endif
