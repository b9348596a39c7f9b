/*
 * csv: an RFC 4180 reader over a buffer in memory, for agency exports.
 *
 * Fields are separated by commas and records by CRLF or LF; a field may be
 * quoted with '"', and then holds commas, CR, LF and doubled quotes ("").
 * Blank lines between records are skipped.  Bounds: field size, fields per
 * record, record size (all configurable).  A field must not hold a NUL byte
 * and must be valid UTF-8.
 *
 * Errors name the line (1-based, physical lines) where they are found and,
 * for a byte out of place (a quote, a CR), its column (1-based, in UTF-8
 * characters); after an error the reader skips the rest of the bad record
 * and resumes at the next one, so one bad record does not stop the rest.
 * The rest is framed as RFC 4180 frames it (an LF inside quotes does not
 * end it; a quote opens a quoted field only at the start of a field, any
 * other quote is taken literally), so the lines of a quoted cell are never
 * read as records.  A quote after white space at the start of a field (a,
 * "x) is malformed: the record is refused, and skipped as if the quote
 * opened a quoted field, as lenient readers take it, so that a cell's
 * later lines ("P,Q") are not read as records.  When the skipped record
 * runs past the error's line the error says through which line; a quoted
 * field that is never closed skips the rest of the input, and says so.
 */
#ifndef ADAPTERS_CSV_H
#define ADAPTERS_CSV_H

#include <stddef.h>

#define CSV_FIELD_MAX_DEFAULT (64u << 10)
#define CSV_FIELDS_MAX_DEFAULT 512
#define CSV_RECORD_MAX_DEFAULT (1u << 20)

typedef struct csv_reader csv_reader_t;

typedef struct {
	size_t max_field;	/* bytes per field; 0: default */
	size_t max_fields;	/* fields per record; 0: default */
	size_t max_record;	/* bytes per record; 0: default */
} csv_limits_t;

/* One record: fields[i] is NUL-terminated, lens[i] its length.  Valid until
 * the next csv_next or csv_reader_free. */
typedef struct {
	size_t n;
	const char *const *fields;
	const size_t *lens;
	size_t line;		/* line where the record starts */
} csv_row_t;

/* A reader over data[0..len) (not copied: must outlive the reader).  lim may
 * be NULL for the defaults.  A UTF-8 byte-order mark at the start is
 * skipped.  NULL if memory is short. */
csv_reader_t *csv_reader_new(const char *data, size_t len,
    const csv_limits_t *lim);

/* Free; NULL does nothing. */
void csv_reader_free(csv_reader_t *r);

/* Read the next record into *row.  Returns 1 for a record, 0 at the end,
 * -1 for a malformed record with "line N: reason" in err (the reader has
 * moved past the whole record; call again for the next). */
int csv_next(csv_reader_t *r, csv_row_t *row, char *err, size_t errlen);

/* The current physical line number (1-based) of the reader. */
size_t csv_line(const csv_reader_t *r);

#endif
