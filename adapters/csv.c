/*
 * csv: RFC 4180 reader.  See csv.h for the contract.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/csv.h"
#include "util/buf.h"
#include "util/json.h"

struct csv_reader {
	const char *data;
	size_t len;
	size_t pos;
	size_t line;
	size_t line_start;	/* offset of the current physical line */
	csv_limits_t lim;
	buf_t store;		/* field bytes, each followed by NUL */
	size_t *offs;		/* field start offsets into store */
	size_t *lens;
	const char **ptrs;
	size_t cap;		/* entries in offs, lens, ptrs */
	size_t n;
};

csv_reader_t *
csv_reader_new(const char *data, size_t len, const csv_limits_t *lim)
{
	csv_reader_t *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->data = data;
	r->len = data != NULL ? len : 0;
	r->line = 1;
	if (lim != NULL)
		r->lim = *lim;
	if (r->lim.max_field == 0)
		r->lim.max_field = CSV_FIELD_MAX_DEFAULT;
	if (r->lim.max_fields == 0)
		r->lim.max_fields = CSV_FIELDS_MAX_DEFAULT;
	if (r->lim.max_record == 0)
		r->lim.max_record = CSV_RECORD_MAX_DEFAULT;
	/* room for every byte of a maximal record plus one NUL per field */
	buf_init(&r->store, r->lim.max_record + r->lim.max_fields + 1);
	if (r->len >= 3 && memcmp(r->data, "\xef\xbb\xbf", 3) == 0)
		r->pos = r->line_start = 3;
	return r;
}

void
csv_reader_free(csv_reader_t *r)
{
	if (r == NULL)
		return;
	buf_free(&r->store);
	free(r->offs);
	free(r->lens);
	free(r->ptrs);
	free(r);
}

size_t
csv_line(const csv_reader_t *r)
{
	return r->line;
}

/* Count the LF at data[at]: the next physical line starts after it. */
static void
newline_at(csv_reader_t *r, size_t at)
{
	r->line++;
	r->line_start = at + 1;
}

/* The 1-based column (in characters: UTF-8 continuation bytes do not
 * count) of the byte at data[at], on the current physical line. */
static size_t
column_of(const csv_reader_t *r, size_t at)
{
	size_t i, col = 1;

	for (i = r->line_start; i < at && i < r->len; i++)
		if (((unsigned char)r->data[i] & 0xc0) != 0x80)
			col++;
	return col;
}

/* Open a new field slot.  -1 if there are too many or memory is short. */
static int
field_begin(csv_reader_t *r)
{
	size_t ncap;
	void *p;

	if (r->n >= r->lim.max_fields)
		return -1;
	if (r->n == r->cap) {
		ncap = r->cap ? r->cap * 2 : 16;
		if (ncap > r->lim.max_fields)
			ncap = r->lim.max_fields;
		if ((p = realloc(r->offs, ncap * sizeof(*r->offs))) == NULL)
			return -1;
		r->offs = p;
		if ((p = realloc(r->lens, ncap * sizeof(*r->lens))) == NULL)
			return -1;
		r->lens = p;
		if ((p = realloc(r->ptrs, ncap * sizeof(*r->ptrs))) == NULL)
			return -1;
		r->ptrs = p;
		r->cap = ncap;
	}
	r->offs[r->n] = r->store.len;
	r->lens[r->n] = 0;
	r->n++;
	return 0;
}

/* Close the current field: NUL-terminate, check its content. */
static const char *
field_end(csv_reader_t *r)
{
	size_t i = r->n - 1;
	const char *f;

	if (buf_append(&r->store, "", 1) < 0)
		return "record too long";
	f = r->store.data != NULL ? r->store.data + r->offs[i] : "";
	if (memchr(f, '\0', r->lens[i]) != NULL)
		return "NUL byte in field";
	if (!json_utf8_valid((const unsigned char *)f, r->lens[i]))
		return "field is not valid UTF-8";
	return NULL;
}

static const char *
field_add(csv_reader_t *r, const char *p, size_t n)
{
	if (r->lens[r->n - 1] + n > r->lim.max_field)
		return "field too long";
	if (buf_append(&r->store, p, n) < 0)
		return "record too long";
	r->lens[r->n - 1] += n;
	return NULL;
}

/*
 * Skip the rest of a bad record (resynchronise after an error), framing it
 * as RFC 4180 does: an LF ends the record only outside quotes, a quote opens
 * a quoted field only at the start of a field, and any other quote (a stray
 * one, or text after a closing quote) is taken literally.  quoted: the error
 * was found inside a quoted field; field_start: at the start of a field.
 * Skipping to the next physical line instead would read the later lines of
 * a quoted cell in the bad record as records of their own.  Returns 1 if
 * the input ended inside a quoted field (the rest of it is skipped), else 0.
 */
static int
skip_record(csv_reader_t *r, int quoted, int field_start)
{
	char c;

	while (r->pos < r->len) {
		c = r->data[r->pos++];
		if (c == '\n')
			newline_at(r, r->pos - 1);
		if (quoted) {
			if (c == '"') {
				if (r->pos < r->len && r->data[r->pos] == '"')
					r->pos++;
				else
					quoted = 0;
			}
			continue;
		}
		if (c == '\n')
			return 0;
		if (c == '"' && field_start)
			quoted = 1;
		field_start = c == ',';
	}
	return quoted;
}

/* Append to the NUL-terminated message in err (truncating). */
static void err_append(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
err_append(char *err, size_t errlen, const char *fmt, ...)
{
	size_t n = errlen > 0 ? strnlen(err, errlen) : 0;
	va_list ap;

	if (n + 1 >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

/* 1 if data[from..to) is only spaces and tabs. */
static int
only_blanks(const char *s, size_t from, size_t to)
{
	for (; from < to; from++)
		if (s[from] != ' ' && s[from] != '\t')
			return 0;
	return 1;
}

int
csv_next(csv_reader_t *r, csv_row_t *row, char *err, size_t errlen)
{
	const char *why = NULL;
	size_t start, run, i, quote_line, errpos = 0, errline, col, last;
	int quoted = 0, field_start = 0, at_byte = 0, unclosed;
	char c;

	/* blank lines between records */
	for (;;) {
		if (r->pos < r->len && r->data[r->pos] == '\n') {
			newline_at(r, r->pos);
			r->pos++;
		} else if (r->pos + 1 < r->len && r->data[r->pos] == '\r' &&
		    r->data[r->pos + 1] == '\n') {
			newline_at(r, r->pos + 1);
			r->pos += 2;
		} else
			break;
	}
	if (r->pos >= r->len)
		return 0;
	buf_reset(&r->store);
	r->n = 0;
	row->line = r->line;
	start = r->pos;
	for (;;) {
		if (field_begin(r) < 0) {
			why = r->n >= r->lim.max_fields ? "too many fields" :
			    "out of memory";
			field_start = 1;
			goto bad;
		}
		if (r->pos < r->len && r->data[r->pos] == '"') {
			quote_line = r->line;
			quoted = 1;
			r->pos++;
			for (;;) {
				if (r->pos >= r->len) {
					snprintf(err, errlen, "line %zu: quoted "
					    "field opened on line %zu is not "
					    "closed", r->line, quote_line);
					return -1;
				}
				c = r->data[r->pos];
				if (c == '"') {
					if (r->pos + 1 < r->len &&
					    r->data[r->pos + 1] == '"') {
						why = field_add(r, "\"", 1);
						r->pos += 2;
						if (why != NULL)
							goto bad;
						continue;
					}
					r->pos++;
					quoted = 0;
					break;
				}
				/* a run of ordinary bytes at once */
				run = 1;
				while (r->pos + run < r->len &&
				    r->data[r->pos + run] != '"')
					run++;
				for (i = 0; i < run; i++)
					if (r->data[r->pos + i] == '\n')
						newline_at(r, r->pos + i);
				why = field_add(r, r->data + r->pos, run);
				r->pos += run;
				if (why != NULL)
					goto bad;
			}
			if (r->pos < r->len && r->data[r->pos] != ',' &&
			    r->data[r->pos] != '\n' && r->data[r->pos] != '\r') {
				why = "text after a closing quote";
				errpos = r->pos;
				at_byte = 1;
				goto bad;
			}
		} else {
			run = 0;
			while (r->pos + run < r->len) {
				c = r->data[r->pos + run];
				if (c == ',' || c == '\n' || c == '\r')
					break;
				if (c == '"' && only_blanks(r->data, r->pos,
				    r->pos + run)) {
					/* RFC 4180: a quoted field starts with
					 * its quote.  Other readers take this
					 * one as opening a quoted field; the
					 * record is refused, and skipped as
					 * they would frame it, so that lines
					 * of that cell are not read as
					 * records. */
					errpos = r->pos + run;
					at_byte = 1;
					r->pos += run + 1;
					quoted = 1;
					why = "white space before the quote that "
					    "opens a field";
					goto bad;
				}
				if (c == '"') {
					r->pos += run;
					errpos = r->pos;
					at_byte = 1;
					why = "quote inside an unquoted field";
					goto bad;
				}
				run++;
			}
			why = field_add(r, r->data + r->pos, run);
			r->pos += run;
			if (why != NULL)
				goto bad;
		}
		if ((why = field_end(r)) != NULL)
			goto bad;
		if (r->pos - start > r->lim.max_record) {
			why = "record too long";
			goto bad;
		}
		if (r->pos >= r->len)
			break;
		c = r->data[r->pos];
		if (c == ',') {
			r->pos++;
			continue;
		}
		if (c == '\r') {
			if (r->pos + 1 >= r->len || r->data[r->pos + 1] != '\n') {
				why = "CR not followed by LF";
				errpos = r->pos;
				at_byte = 1;
				goto bad;
			}
			r->pos++;
		}
		/* LF: end of record */
		newline_at(r, r->pos);
		r->pos++;
		break;
	}
	for (i = 0; i < r->n; i++)
		r->ptrs[i] = r->store.data + r->offs[i];
	row->n = r->n;
	row->fields = r->ptrs;
	row->lens = r->lens;
	return 1;
bad:
	errline = r->line;
	col = at_byte ? column_of(r, errpos) : 0;
	unclosed = skip_record(r, quoted, field_start);
	/* the last line of the skipped record */
	last = r->pos > 0 && r->data[r->pos - 1] == '\n' && !unclosed ?
	    r->line - 1 : r->line;
	if (col > 0)
		snprintf(err, errlen, "line %zu, column %zu: %s", errline, col,
		    why);
	else
		snprintf(err, errlen, "line %zu: %s", errline, why);
	/* Say which lines were not read, when the record ran on. */
	if (unclosed)
		err_append(err, errlen, "; a quoted field is not "
		    "closed: skipped to the end of the input (line %zu)", last);
	else if (last > errline)
		err_append(err, errlen, "; skipped through line %zu",
		    last);
	return -1;
}
