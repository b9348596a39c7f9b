/*
 * Unit tests for adapters/: the CSV and JSON-lines readers, column mappings
 * (with the examples in adapters/examples/) and the record generator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/csv.h"
#include "adapters/gen.h"
#include "adapters/jsonl.h"
#include "adapters/mapping.h"
#include "policy/record_schema.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"

/* --- CSV --------------------------------------------------------------------- */

/* Read every record of s; the fields of each joined by '|' and records by
 * '\n' into out; errors as "E<line>" records.  Returns the record count. */
static int
csv_all(const char *s, size_t len, const csv_limits_t *lim, buf_t *out,
    char *lasterr, size_t errlen)
{
	csv_reader_t *r = csv_reader_new(s, len, lim);
	csv_row_t row;
	char err[200];
	size_t i;
	int rc, n = 0;

	assert_non_null(r);
	buf_init(out, 0);
	while ((rc = csv_next(r, &row, err, sizeof(err))) != 0) {
		if (rc < 0) {
			assert_int_equal(buf_printf(out, "E{%s}\n", err), 0);
			if (lasterr != NULL)
				snprintf(lasterr, errlen, "%s", err);
		} else {
			assert_int_equal(buf_printf(out, "%zu:", row.line), 0);
			for (i = 0; i < row.n; i++) {
				assert_int_equal(strlen(row.fields[i]), row.lens[i]);
				assert_int_equal(buf_printf(out, "%s%s", i ? "|" : "",
				    row.fields[i]), 0);
			}
			assert_int_equal(buf_puts(out, "\n"), 0);
		}
		n++;
	}
	csv_reader_free(r);
	return n;
}

static void
expect_csv(const char *in, const char *want)
{
	buf_t out;

	csv_all(in, strlen(in), NULL, &out, NULL, 0);
	assert_string_equal(out.data ? out.data : "", want);
	buf_free(&out);
}

static void
test_csv_rfc4180(void **state)
{
	(void)state;
	expect_csv("a,b,c\n1,2,3\n", "1:a|b|c\n2:1|2|3\n");
	expect_csv("a,b\r\n1,2\r\n", "1:a|b\n2:1|2\n");		/* CRLF */
	expect_csv("a,b\n1,2", "1:a|b\n2:1|2\n");		/* no final EOL */
	expect_csv("\"x,y\",\"he said \"\"hi\"\"\"\n",
	    "1:x,y|he said \"hi\"\n");
	/* embedded newlines: the next record's line number accounts for them */
	expect_csv("\"l1\nl2\r\nl3\",z\nnext,1\n", "1:l1\nl2\r\nl3|z\n4:next|1\n");
	expect_csv("a,,\n", "1:a||\n");				/* empty fields */
	expect_csv("a,b,\n", "1:a|b|\n");
	expect_csv("\n\r\n\na\n\n\nb\n", "4:a\n7:b\n");		/* blank lines */
	expect_csv("\xef\xbb\xbfh1,h2\n", "1:h1|h2\n");		/* BOM */
	expect_csv("\"\"\n", "1:\n");				/* one empty quoted */
	expect_csv("caf\xc3\xa9,x\n", "1:caf\xc3\xa9|x\n");	/* UTF-8 */
	expect_csv("", "");
}

static void
test_csv_errors_carry_on(void **state)
{
	(void)state;
	/* each error names its line; the next record still reads */
	expect_csv("ok,1\nba\"d,2\nok,3\n",
	    "1:ok|1\nE{line 2, column 3: quote inside an unquoted field}\n"
	    "3:ok|3\n");
	expect_csv("\"q\"x,1\nok,2\n",
	    "E{line 1, column 4: text after a closing quote}\n2:ok|2\n");
	expect_csv("a\rb\nok\n",
	    "E{line 1, column 2: CR not followed by LF}\n2:ok\n");
	expect_csv("ok\n\"open,\nstill open\n",
	    "1:ok\nE{line 4: quoted field opened on line 2 is not closed}\n");
	expect_csv("\xff\xfe,1\nok\n",
	    "E{line 1: field is not valid UTF-8}\n2:ok\n");
}

static void
test_csv_nul_and_bounds(void **state)
{
	buf_t out;
	char err[200];
	csv_limits_t lim = { 4, 3, 12 };
	static const char nul[] = "a,\"b\0\",c\nok\n";

	(void)state;
	csv_all(nul, sizeof(nul) - 1, NULL, &out, err, sizeof(err));
	assert_string_equal(out.data, "E{line 1: NUL byte in field}\n2:ok\n");
	buf_free(&out);

	csv_all("abcde,1\nok\n", 11, &lim, &out, NULL, 0);
	assert_string_equal(out.data, "E{line 1: field too long}\n2:ok\n");
	buf_free(&out);
	csv_all("a,b,c,d\nok\n", 11, &lim, &out, NULL, 0);
	assert_string_equal(out.data, "E{line 1: too many fields}\n2:ok\n");
	buf_free(&out);
	csv_all("abcd,abcd,abcd,\nok\n", 19, &lim, &out, NULL, 0);
	assert_non_null(strstr(out.data, "E{line 1: "));
	assert_non_null(strstr(out.data, "2:ok\n"));
	buf_free(&out);
	/* quoted field too long across lines */
	csv_all("\"ab\ncdef\"\n", 10, &lim, &out, NULL, 0);
	assert_non_null(strstr(out.data, "field too long"));
	buf_free(&out);
}

/* After an error the reader skips the rest of the bad record as RFC 4180
 * frames it: the lines of a quoted cell later in that record are never read
 * as records of their own (a free-text cell holding "P2,..." would
 * otherwise be pushed as a record). */
static void
test_csv_resync_after_error(void **state)
{
	buf_t out;
	csv_limits_t lim = { 4, 3, 64 };
	static const char toolong[] = "\"abcd\"\"\nX,Y\nz\"\nok\n";
	static const char toomany[] = "a,b,c,\"x\nP,Q\n\"\nok\n";

	(void)state;
	expect_csv("\"q\"x,\"multi\nP2,injected,row\nend\"\nok,1\n",
	    "E{line 1, column 4: text after a closing quote; skipped through "
	    "line 3}\n4:ok|1\n");
	expect_csv("\xff,\"a\nB,c\nd\"\nok\n",
	    "E{line 1: field is not valid UTF-8; skipped through line 3}\n"
	    "4:ok\n");
	expect_csv("ba\"d,\"m\nX,Y\n\"\nok\n",
	    "E{line 1, column 3: quote inside an unquoted field; skipped "
	    "through line 3}\n4:ok\n");
	expect_csv("a\rb,\"x\nY,Z\n\"\nok\n",
	    "E{line 1, column 2: CR not followed by LF; skipped through line "
	    "3}\n4:ok\n");
	/* a stray quote is literal: the record still ends at its LF */
	expect_csv("x,Isaac \"Ike\" Garside,1\nok\n",
	    "E{line 1, column 9: quote inside an unquoted field}\n2:ok\n");
	expect_csv("x,5'10\",1\nok\n",
	    "E{line 1, column 7: quote inside an unquoted field}\n2:ok\n");
	/* a bad record whose quoted cell is never closed: the rest of the
	 * input is skipped, and the error says so */
	expect_csv("ba\"d,\"m\nX,Y\nok\n",
	    "E{line 1, column 3: quote inside an unquoted field; a quoted "
	    "field is not closed: skipped to the end of the input (line 4)}\n");

	csv_all(toolong, sizeof(toolong) - 1, &lim, &out, NULL, 0);
	assert_string_equal(out.data, "E{line 1: field too long; skipped "
	    "through line 3}\n4:ok\n");
	buf_free(&out);
	csv_all(toomany, sizeof(toomany) - 1, &lim, &out, NULL, 0);
	assert_string_equal(out.data, "E{line 1: too many fields; skipped "
	    "through line 3}\n4:ok\n");
	buf_free(&out);
}

/* RFC 4180: a quoted field starts with its quote.  White space before it
 * (a, "x) is malformed: refused with the line and column, and the record
 * skipped as lenient readers frame it (the quote opening a quoted field),
 * so that the lines of that cell ("P,Q") are not read as a record.
 * Before, "P,Q" was read as a record of its own.  A quote after other text
 * stays literal (the record ends at its LF), and quoted fields, spaces
 * inside unquoted fields and white space after a field still read. */
static void
test_csv_space_before_quote(void **state)
{
	(void)state;
	expect_csv("a, \"x\nP,Q\n\"\nok,1\n",
	    "E{line 1, column 4: white space before the quote that opens a "
	    "field; skipped through line 3}\n4:ok|1\n");
	expect_csv("a,\t\"x\"\nok,1\n",
	    "E{line 1, column 4: white space before the quote that opens a "
	    "field}\n2:ok|1\n");
	/* a doubled quote inside the skipped cell does not close it */
	expect_csv("a, \"x\"\"\nP,Q\n\"\nok\n",
	    "E{line 1, column 4: white space before the quote that opens a "
	    "field; skipped through line 3}\n4:ok\n");
	/* the column counts characters, not bytes; the line is physical */
	expect_csv("ok\n\"l1\nl2\",caf\xc3\xa9, \"x\nP,Q\n\"\nok\n",
	    "1:ok\nE{line 3, column 11: white space before the quote that "
	    "opens a field; skipped through line 5}\n6:ok\n");
	/* after a byte-order mark, the first character is column 1 */
	expect_csv("\xef\xbb\xbf \"x\"\nok\n",
	    "E{line 1, column 2: white space before the quote that opens a "
	    "field}\n2:ok\n");
	/* still accepted */
	expect_csv("a, x ,\"y\" \n", "E{line 1, column 10: text after a "
	    "closing quote}\n");
	expect_csv("a, x,\"P,Q\"\n", "1:a| x|P,Q\n");
	expect_csv("a,x y z,\" q \"\n", "1:a|x y z| q \n");
	expect_csv("a, \n", "1:a| \n");
}

/* --- JSON lines ------------------------------------------------------------- */

static void
test_jsonl(void **state)
{
	static const char in[] =
	    "{\"id\":\"A-1\"}\n"
	    "\n"
	    "{\"id\": \"A-2\", \"x\": [1,2]}\r\n"
	    "{not json}\n"
	    "[1,2]\n"
	    "{\"a\":1,\"a\":2}\n"
	    "{\"s\":\"\xff\"}\n"
	    "  \t \n"
	    "{\"id\":\"A-3\"}";
	jsonl_reader_t *r;
	cJSON *j;
	size_t line, rawlen;
	const char *raw;
	char err[200];

	(void)state;
	r = jsonl_reader_new(in, sizeof(in) - 1, 0, 0);
	assert_non_null(r);
	assert_int_equal(jsonl_next(r, &j, &line, &raw, &rawlen, err, sizeof(err)), 1);
	assert_int_equal(line, 1);
	assert_int_equal(rawlen, 12);
	assert_string_equal(json_get_str(j, "id"), "A-1");
	cJSON_Delete(j);
	assert_int_equal(jsonl_next(r, &j, &line, &raw, &rawlen, err, sizeof(err)), 1);
	assert_int_equal(line, 3);
	assert_int_equal(raw[rawlen - 1], '}');	/* CR not part of the line */
	cJSON_Delete(j);
	assert_int_equal(jsonl_next(r, &j, &line, NULL, NULL, err, sizeof(err)), -1);
	assert_null(j);
	assert_int_equal(strncmp(err, "line 4: ", 8), 0);
	assert_int_equal(jsonl_next(r, &j, &line, NULL, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "line 5: not a JSON object");
	assert_int_equal(jsonl_next(r, &j, &line, NULL, NULL, err, sizeof(err)), -1);
	assert_int_equal(strncmp(err, "line 6: ", 8), 0);	/* duplicate key */
	assert_int_equal(jsonl_next(r, &j, &line, NULL, NULL, err, sizeof(err)), -1);
	assert_int_equal(strncmp(err, "line 7: ", 8), 0);	/* bad UTF-8 */
	assert_int_equal(jsonl_next(r, &j, &line, NULL, NULL, err, sizeof(err)), 1);
	assert_int_equal(line, 9);
	cJSON_Delete(j);
	assert_int_equal(jsonl_next(r, &j, &line, NULL, NULL, err, sizeof(err)), 0);
	jsonl_reader_free(r);

	/* bounds: line length and depth */
	r = jsonl_reader_new("{\"a\":\"0123456789\"}\n{\"a\":{\"b\":{\"c\":1}}}\n{}\n",
	    42, 16, 2);
	assert_non_null(r);
	assert_int_equal(jsonl_next(r, &j, &line, NULL, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "line 1: longer than 16 bytes");
	assert_int_equal(jsonl_next(r, &j, &line, NULL, NULL, err, sizeof(err)), -1);
	assert_int_equal(strncmp(err, "line 2: ", 8), 0);
	assert_int_equal(jsonl_next(r, &j, &line, NULL, NULL, err, sizeof(err)), 1);
	assert_int_equal(line, 3);
	cJSON_Delete(j);
	jsonl_reader_free(r);
	jsonl_reader_free(NULL);
}

/* --- mapping ---------------------------------------------------------------- */

static mapping_t *
load(const char *json, char *err, size_t errlen)
{
	return mapping_load(json, strlen(json), err, errlen);
}

static void
expect_load_error(const char *json, const char *part)
{
	mapping_t *m;
	char err[256];

	err[0] = '\0';
	m = load(json, err, sizeof(err));
	if (m != NULL)
		fail_msg("mapping loaded: %s", json);
	if (strstr(err, part) == NULL)
		fail_msg("error '%s' lacks '%s'", err, part);
}

#define MHEAD "{\"format\":\"visor-csv-mapping/1\",\"id\":\"ref\","

static void
test_mapping_load_errors(void **state)
{
	(void)state;
	expect_load_error("[]", "not a JSON object");
	expect_load_error("{", "mapping:");
	expect_load_error("{\"format\":\"x\"}", "format");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\"}},\"zz\":1}",
	    "unknown key \"zz\"");
	expect_load_error("{\"format\":\"visor-csv-mapping/1\",\"columns\":"
	    "{\"a\":{\"field\":\"x\"}}}", "id:");
	expect_load_error(MHEAD "\"columns\":{}}", "columns:");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"Bad\"}}}",
	    "columns.\"a\".field");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"a[64]\"}}}",
	    "columns.\"a\".field");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"a[01]\"}}}",
	    "columns.\"a\".field");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"a.\"}}}",
	    "columns.\"a\".field");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"version\"}}}",
	    "not written from a column");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\",\"type\":"
	    "\"float\"}}}", "columns.\"a\".type");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\",\"date_format\":"
	    "\"DD/MM/YYYY\"}}}", "date_format");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\",\"type\":"
	    "\"integer\",\"values\":{}}}}", "values");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\",\"values\":"
	    "{\"k\":1}}}}", "values.\"k\"");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\",\"separator\":"
	    "\";\"}}}", "separator");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\",\"bogus\":1}}}",
	    "unknown key \"bogus\"");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\"},\"b\":"
	    "{\"field\":\"x\"}}}", "both write x");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\"}},"
	    "\"constants\":{\"x\":1}}", "constants both write x");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\"}},"
	    "\"constants\":{\"Bad Path\":1}}", "constants.\"Bad Path\"");
	/* an empty object or array would be pruned from every record (with
	 * PATCH, [] would clear the field): refused, not dropped silently */
	expect_load_error("{\"format\":\"visor-csv-mapping/1\",\"id\":\"ref\","
	    "\"method\":\"PATCH\",\"columns\":{\"a\":{\"field\":\"x\"}},"
	    "\"constants\":{\"licence.conditions\":[]}}",
	    "constants.\"licence.conditions\": empty");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\"}},"
	    "\"constants\":{\"em\":{\"active\":true,\"x\":{}}}}",
	    "constants.\"em\": empty");
	/* the id comes from the id column only */
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"field\":\"x\"}},"
	    "\"constants\":{\"id\":\"AAA-1\"}}", "constants.\"id\"");
	expect_load_error(MHEAD "\"columns\":{\"a\":{\"ignore\":false}}}", "ignore");
	expect_load_error(MHEAD "\"columns\":{\"ref\":{\"field\":\"x\"}}}",
	    "id column");
	expect_load_error(MHEAD "\"method\":\"POST\",\"columns\":{\"a\":"
	    "{\"field\":\"x\"}}}", "method");
	expect_load_error(MHEAD "\"unmapped\":\"drop\",\"columns\":{\"a\":"
	    "{\"field\":\"x\"}}}", "unmapped");
	expect_load_error("{\"format\":\"visor-csv-mapping/1\",\"id\":{\"column\":"
	    "\"r\",\"prefix\":\"ab\"},\"columns\":{\"a\":{\"field\":\"x\"}}}",
	    "id.prefix");
}

static const char map1[] =
    "{\"format\":\"visor-csv-mapping/1\",\"id\":{\"column\":\"ref\",\"prefix\":"
    "\"T-\"},\"constants\":{\"managing_area\":\"test\",\"em.provider\":\"P\"},"
    "\"columns\":{"
    "\"cat\":{\"field\":\"category\",\"type\":\"integer\",\"required\":true},"
    "\"score\":{\"field\":\"risk.score\",\"type\":\"number\"},"
    "\"tag\":{\"field\":\"em.active\",\"type\":\"boolean\"},"
    "\"dob\":{\"field\":\"person.dob\",\"type\":\"date\",\"date_format\":"
    "\"DD/MM/YYYY\"},"
    "\"conds\":{\"field\":\"licence.conditions\",\"type\":\"list\",\"separator\":"
    "\"|\"},"
    "\"rosh\":{\"field\":\"risk.rosh\",\"values\":{\"H\":\"high\"}},"
    "\"a1\":{\"field\":\"addresses[1].line1\"},"
    "\"a0\":{\"field\":\"addresses[0].line1\"},"
    "\"junk\":{\"ignore\":true}}}";

static void
test_mapping_apply(void **state)
{
	const char *hdr[] = { "ref", "cat", "score", "tag", "dob", "conds", "rosh",
	    "a0", "a1", "junk" };
	const char *row1[] = { "0001", "2", "3.5", "Yes", "29/02/2000",
	    " one | two ||three ", "H", "", "x", "whatever" };
	const char *row2[] = { "0002", "1", "", "", "", "", "", "", "", "" };
	const char *row3[] = { "0003", "-4", "-0.5", "", "", "", "", "", "", "" };
	mapping_t *m;
	cJSON *rec;
	char id[MAPPING_ID_MAX], err[256], *s;

	(void)state;
	m = load(map1, err, sizeof(err));
	if (m == NULL)
		fail_msg("%s", err);
	assert_string_equal(mapping_method(m), "PUT");
	/* not bound yet */
	assert_int_equal(mapping_apply(m, row1, 10, &rec, id, err, sizeof(err)), -1);
	assert_int_equal(mapping_bind(m, hdr, 10, err, sizeof(err)), 0);
	assert_int_equal(mapping_apply(m, row1, 10, &rec, id, err, sizeof(err)), 0);
	assert_string_equal(id, "T-0001");
	s = cJSON_PrintUnformatted(rec);
	/* addresses[0] was empty: pruned, so the one address moves up */
	assert_string_equal(s, "{\"id\":\"T-0001\",\"managing_area\":\"test\","
	    "\"em\":{\"provider\":\"P\",\"active\":true},\"category\":2,"
	    "\"risk\":{\"score\":3.5,\"rosh\":\"high\"},"
	    "\"person\":{\"dob\":\"2000-02-29\"},"
	    "\"licence\":{\"conditions\":[\"one\",\"two\",\"three\"]},"
	    "\"addresses\":[{\"line1\":\"x\"}]}");
	cJSON_free(s);
	cJSON_Delete(rec);
	assert_int_equal(mapping_apply(m, row2, 10, &rec, id, err, sizeof(err)), 0);
	s = cJSON_PrintUnformatted(rec);
	assert_string_equal(s, "{\"id\":\"T-0002\",\"managing_area\":\"test\","
	    "\"em\":{\"provider\":\"P\"},\"category\":1}");
	cJSON_free(s);
	cJSON_Delete(rec);
	/* a sign is '-' only, and is taken */
	assert_int_equal(mapping_apply(m, row3, 10, &rec, id, err, sizeof(err)), 0);
	s = cJSON_PrintUnformatted(rec);
	assert_string_equal(s, "{\"id\":\"T-0003\",\"managing_area\":\"test\","
	    "\"em\":{\"provider\":\"P\"},\"category\":-4,"
	    "\"risk\":{\"score\":-0.5}}");
	cJSON_free(s);
	cJSON_Delete(rec);
	mapping_free(m);
	mapping_free(NULL);
}

/* mapping_apply_indexed says how arrays were renumbered when empty
 * elements were left out, and mapping_unshift puts a message's indices
 * back as the mapping numbers them: only in field paths, only for arrays
 * that moved, nested ones by their mapped path. */
static void
test_mapping_unshift(void **state)
{
	static const char nested[] = "{\"format\":\"visor-csv-mapping/1\","
	    "\"id\":\"ref\",\"columns\":{"
	    "\"x\":{\"field\":\"intelligence[2].items[3].text\"},"
	    "\"y\":{\"field\":\"intelligence[0].items[0].text\"},"
	    "\"z\":{\"field\":\"addresses[4].line1\"}}}";
	const char *hdr[] = { "ref", "cat", "score", "tag", "dob", "conds", "rosh",
	    "a0", "a1", "junk" };
	const char *row1[] = { "0001", "2", "", "", "", "", "", "", "x", "" };
	const char *row2[] = { "0002", "2", "", "", "", "", "", "w", "x", "" };
	const char *nhdr[] = { "ref", "x", "y", "z" };
	const char *nrow[] = { "0003", "deep", "", "" };
	mapping_t *m;
	cJSON *rec, *sh;
	char id[MAPPING_ID_MAX], err[256], out[256], *s;

	(void)state;
	m = load(map1, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(mapping_bind(m, hdr, 10, err, sizeof(err)), 0);
	assert_int_equal(mapping_apply_indexed(m, row1, 10, &rec, &sh, id, err,
	    sizeof(err)), 0);
	assert_non_null(sh);
	s = cJSON_PrintUnformatted(sh);
	assert_string_equal(s, "{\"addresses\":[1]}");
	cJSON_free(s);
	assert_int_equal(mapping_unshift(sh, "addresses[0].line1: too long",
	    out, sizeof(out)), 1);
	assert_string_equal(out, "addresses[1].line1: too long");
	/* in the middle of a message, more than once */
	assert_int_equal(mapping_unshift(sh, "fields addresses[0].line1, "
	    "addresses[0] and x.addresses[0]", out, sizeof(out)), 1);
	assert_string_equal(out, "fields addresses[1].line1, addresses[1] and "
	    "x.addresses[0]");
	/* not a field path of a moved array, or an index not sent */
	assert_int_equal(mapping_unshift(sh, "Xaddresses[0] maddresses[0] "
	    "addresses[1] addresses[-1] addresses[0x] aliases[0] addresses[",
	    out, sizeof(out)), 0);
	assert_string_equal(out, "Xaddresses[0] maddresses[0] addresses[1] "
	    "addresses[-1] addresses[0x] aliases[0] addresses[");
	/* a word longer than any path is copied, not looped on */
	{
		char longword[600];

		memset(longword, 'a', sizeof(longword) - 1);
		longword[sizeof(longword) - 1] = '\0';
		assert_int_equal(mapping_unshift(sh, longword, out,
		    sizeof(out)), 0);
		assert_int_equal(strlen(out), sizeof(out) - 1);
		memcpy(longword + 100, ".addresses[0]", 13);
		assert_int_equal(mapping_unshift(sh, longword, out,
		    sizeof(out)), 0);
	}
	/* truncated to outlen */
	assert_int_equal(mapping_unshift(sh, "addresses[0].line1: too long",
	    out, 12), 1);
	assert_string_equal(out, "addresses[1");
	cJSON_Delete(sh);
	cJSON_Delete(rec);
	/* nothing left out: nothing to renumber */
	assert_int_equal(mapping_apply_indexed(m, row2, 10, &rec, &sh, id, err,
	    sizeof(err)), 0);
	assert_null(sh);
	assert_int_equal(mapping_unshift(NULL, "addresses[0].line1: x", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "addresses[0].line1: x");
	cJSON_Delete(rec);
	mapping_free(m);

	/* nested: the outer index found first, then the inner by it */
	m = load(nested, err, sizeof(err));
	if (m == NULL)
		fail_msg("%s", err);
	assert_int_equal(mapping_bind(m, nhdr, 4, err, sizeof(err)), 0);
	assert_int_equal(mapping_apply_indexed(m, nrow, 4, &rec, &sh, id, err,
	    sizeof(err)), 0);
	s = cJSON_PrintUnformatted(rec);
	assert_string_equal(s, "{\"id\":\"0003\",\"intelligence\":[{\"items\":"
	    "[{\"text\":\"deep\"}]}]}");
	cJSON_free(s);
	s = cJSON_PrintUnformatted(sh);
	assert_string_equal(s, "{\"intelligence[2].items\":[3],"
	    "\"intelligence\":[2]}");
	cJSON_free(s);
	assert_int_equal(mapping_unshift(sh, "intelligence[0].items[0].text: "
	    "empty string", out, sizeof(out)), 1);
	assert_string_equal(out, "intelligence[2].items[3].text: empty string");
	cJSON_Delete(sh);
	cJSON_Delete(rec);
	mapping_free(m);
}

static void
expect_apply_error(mapping_t *m, const char *col, const char *val,
    const char *part)
{
	const char *row[] = { "0001", "2", "", "", "", "", "", "", "", "" };
	static const char *const hdr[] = { "ref", "cat", "score", "tag", "dob",
	    "conds", "rosh", "a0", "a1", "junk" };
	cJSON *rec;
	char id[MAPPING_ID_MAX], err[256];
	size_t i;

	for (i = 0; i < 10; i++)
		if (strcmp(hdr[i], col) == 0)
			row[i] = val;
	assert_int_equal(mapping_apply(m, row, 10, &rec, id, err, sizeof(err)), -1);
	assert_null(rec);
	if (strstr(err, part) == NULL)
		fail_msg("error '%s' lacks '%s'", err, part);
}

static void
test_mapping_apply_errors(void **state)
{
	const char *hdr[] = { "ref", "cat", "score", "tag", "dob", "conds", "rosh",
	    "a0", "a1", "junk" };
	const char *hdr_missing[] = { "ref", "cat" };
	const char *hdr_extra[] = { "ref", "cat", "score", "tag", "dob", "conds",
	    "rosh", "a0", "a1", "junk", "surprise" };
	const char *hdr_dup[] = { "ref", "ref" };
	const char *hdr_noid[] = { "cat" };
	mapping_t *m;
	cJSON *rec;
	char id[MAPPING_ID_MAX], err[256];

	(void)state;
	m = load(map1, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(mapping_bind(m, hdr_missing, 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no column \"score\""));
	assert_int_equal(mapping_bind(m, hdr_extra, 11, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"surprise\" is not in the mapping"));
	assert_int_equal(mapping_bind(m, hdr_dup, 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "appears twice"));
	assert_int_equal(mapping_bind(m, hdr_noid, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no id column"));
	assert_int_equal(mapping_bind(m, hdr, 10, err, sizeof(err)), 0);
	assert_int_equal(mapping_apply(m, hdr, 9, &rec, id, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "9 fields, the header has 10"));
	expect_apply_error(m, "ref", "bad id", "does not make a record id");
	expect_apply_error(m, "ref", "", "does not make a record id");
	expect_apply_error(m, "cat", "", "empty but required");
	expect_apply_error(m, "cat", "2.5", "not an integer");
	expect_apply_error(m, "cat", " 2", "not an integer");
	expect_apply_error(m, "cat", "\t2", "not an integer");
	expect_apply_error(m, "cat", "\n2", "not an integer");
	expect_apply_error(m, "cat", "+2", "not an integer");
	expect_apply_error(m, "cat", "-+2", "not an integer");
	expect_apply_error(m, "cat", "- 2", "not an integer");
	expect_apply_error(m, "cat", "2\t", "not an integer");
	expect_apply_error(m, "score", "\t1.5", "not a number");
	expect_apply_error(m, "score", "+1.5", "not a number");
	expect_apply_error(m, "cat", "99999999999999999999", "not an integer");
	expect_apply_error(m, "score", "nan", "not a number");
	expect_apply_error(m, "score", "1e999", "not a number");
	expect_apply_error(m, "score", "0x10", "not a number");
	expect_apply_error(m, "tag", "maybe", "not yes/no");
	expect_apply_error(m, "dob", "31/02/2001", "not a valid date");
	expect_apply_error(m, "dob", "29/02/1900", "not a valid date");
	expect_apply_error(m, "dob", "2001-02-03", "not a valid date");
	expect_apply_error(m, "rosh", "X", "not one of the mapped values");
	mapping_free(m);

	/* a required list whose cell holds only separators writes nothing:
	 * an error, not a silently missing field */
	m = load(MHEAD "\"columns\":{\"a\":{\"field\":\"licence.conditions\","
	    "\"type\":\"list\",\"required\":true}}}", err, sizeof(err));
	assert_non_null(m);
	{
		const char *h[] = { "ref", "a" };
		const char *r[] = { "AAA", " ; ;" };

		assert_int_equal(mapping_bind(m, h, 2, err, sizeof(err)), 0);
		assert_int_equal(mapping_apply(m, r, 2, &rec, id, err,
		    sizeof(err)), -1);
		assert_null(rec);
		assert_non_null(strstr(err, "empty but required"));
	}
	mapping_free(m);

	/* a constant and a column that collide in shape */
	m = load(MHEAD "\"columns\":{\"a\":{\"field\":\"risk.x\"}},\"constants\":"
	    "{\"risk\":\"flat\"}}", err, sizeof(err));
	assert_non_null(m);
	{
		const char *h[] = { "ref", "a" };
		const char *r[] = { "AAA", "v" };

		assert_int_equal(mapping_bind(m, h, 2, err, sizeof(err)), 0);
		assert_int_equal(mapping_apply(m, r, 2, &rec, id, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "conflicts"));
	}
	mapping_free(m);
}

static char *
read_example(const char *name, size_t *len)
{
	char path[1024];
	const char *src = getenv("VISOR_SRC");
	char *data;

	snprintf(path, sizeof(path), "%s/adapters/examples/%s", src ? src : ".",
	    name);
	if (file_read_all(path, 1u << 20, &data, len) < 0)
		fail_msg("cannot read %s", path);
	return data;
}

/* Load an example pair, convert every row; returns the records as an
 * array (caller frees). */
static cJSON *
convert_example(const char *csvname, const char *mapname, const char **method)
{
	char *csv, *map, err[256], id[MAPPING_ID_MAX];
	size_t clen, mlen;
	mapping_t *m;
	csv_reader_t *r;
	csv_row_t row;
	cJSON *out, *rec;
	int rc;

	csv = read_example(csvname, &clen);
	map = read_example(mapname, &mlen);
	m = mapping_load(map, mlen, err, sizeof(err));
	if (m == NULL)
		fail_msg("%s: %s", mapname, err);
	*method = mapping_method(m);
	r = csv_reader_new(csv, clen, NULL);
	assert_int_equal(csv_next(r, &row, err, sizeof(err)), 1);
	if (mapping_bind(m, row.fields, row.n, err, sizeof(err)) < 0)
		fail_msg("%s: %s", csvname, err);
	out = cJSON_CreateArray();
	while ((rc = csv_next(r, &row, err, sizeof(err))) != 0) {
		if (rc < 0)
			fail_msg("%s: %s", csvname, err);
		if (mapping_apply(m, row.fields, row.n, &rec, id, err,
		    sizeof(err)) < 0)
			fail_msg("%s line %zu: %s", csvname, row.line, err);
		cJSON_AddStringToObject(rec, "_id", id);
		cJSON_AddNumberToObject(rec, "_line", (double)row.line);
		cJSON_AddItemToArray(out, rec);
	}
	*method = strcmp(*method, "PATCH") == 0 ? "PATCH" : "PUT";
	csv_reader_free(r);
	mapping_free(m);
	free(csv);
	free(map);
	return out;
}

static void
test_examples(void **state)
{
	cJSON *recs, *r, *a;
	const char *method;

	(void)state;
	recs = convert_example("probation.csv", "probation-mapping.json", &method);
	assert_string_equal(method, "PUT");
	assert_int_equal(cJSON_GetArraySize(recs), 4);
	r = cJSON_GetArrayItem(recs, 2);
	assert_string_equal(json_get_str(r, "_id"), "NFK-P10233");
	assert_string_equal(json_get_str(r, "id"), "NFK-P10233");
	assert_int_equal(cJSON_GetObjectItem(r, "_line")->valueint, 4);
	assert_string_equal(json_get_str(cJSON_GetObjectItem(r, "person"),
	    "forenames"), "Isaac \"Ike\"");
	assert_string_equal(json_get_str(cJSON_GetObjectItem(r, "person"), "dob"),
	    "1969-07-23");
	a = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "risk"), "factors");
	assert_int_equal(cJSON_GetArraySize(a), 2);
	assert_string_equal(cJSON_GetArrayItem(a, 1)->valuestring,
	    "Impulsivity under stress");
	assert_string_equal(json_get_str(cJSON_GetObjectItem(r, "risk"), "rosh"),
	    "very-high");
	assert_int_equal(cJSON_GetObjectItem(r, "level")->valueint, 3);
	assert_null(cJSON_GetObjectItem(r, "Offender Manager"));
	/* the row after the multi-line one keeps its line number */
	r = cJSON_GetArrayItem(recs, 3);
	assert_int_equal(cJSON_GetObjectItem(r, "_line")->valueint, 7);
	assert_null(cJSON_GetObjectItem(r, "licence"));	/* empty cells */
	/* every converted record passes the gateway's schema */
	cJSON_ArrayForEach(r, recs) {
		char err[256];

		cJSON_DeleteItemFromObject(r, "_id");
		cJSON_DeleteItemFromObject(r, "_line");
		if (record_validate(r, err, sizeof(err)) < 0)
			fail_msg("probation example: %s", err);
	}
	cJSON_Delete(recs);

	recs = convert_example("housing-accommodation.csv",
	    "housing-accommodation-mapping.json", &method);
	assert_string_equal(method, "PATCH");
	assert_int_equal(cJSON_GetArraySize(recs), 3);
	r = cJSON_GetArrayItem(recs, 0);
	assert_null(cJSON_GetObjectItem(r, "id"));	/* a patch names no id */
	assert_string_equal(json_get_str(r, "_id"), "NFK-P10231");
	a = cJSON_GetObjectItem(r, "addresses");
	assert_int_equal(cJSON_GetArraySize(a), 2);
	assert_string_equal(json_get_str(cJSON_GetArrayItem(a, 0), "type"), "home");
	assert_string_equal(json_get_str(cJSON_GetArrayItem(a, 1), "type"),
	    "approved-premises");
	assert_string_equal(json_get_str(cJSON_GetArrayItem(a, 1), "to"),
	    "2026-11-01");
	r = cJSON_GetArrayItem(recs, 1);
	a = cJSON_GetObjectItem(r, "addresses");
	assert_int_equal(cJSON_GetArraySize(a), 1);	/* no previous address */
	assert_int_equal(cJSON_GetArraySize(r), 3);	/* addresses, _id, _line */
	/* each patch touches addresses only (what housing may write), and
	 * applied to a record it still passes the schema */
	cJSON_ArrayForEach(r, recs) {
		record_paths_t *paths;
		cJSON *base, *merged;
		char err[256];

		cJSON_DeleteItemFromObject(r, "_id");
		cJSON_DeleteItemFromObject(r, "_line");
		paths = record_patch_paths(r, err, sizeof(err));
		if (paths == NULL)
			fail_msg("housing example: %s", err);
		assert_int_equal(paths->count, 1);
		assert_string_equal(paths->items[0], "addresses");
		record_paths_free(paths);
		base = cJSON_Parse("{\"id\":\"NFK-P1\",\"managing_area\":"
		    "\"norfolk\",\"category\":1,\"level\":1}");
		merged = record_merge_patch(base, r);
		assert_non_null(merged);
		if (record_validate(merged, err, sizeof(err)) < 0)
			fail_msg("housing example merged: %s", err);
		cJSON_Delete(merged);
		cJSON_Delete(base);
	}
	cJSON_Delete(recs);
}

/* --- generator ----------------------------------------------------------------- */

static void
gen_all(const char *area, uint64_t seed, size_t count, const gen_plan_t *plan,
    buf_t *out)
{
	gen_t *g;
	char err[128];
	int rc;

	g = gen_new(area, seed, count, plan, err, sizeof(err));
	if (g == NULL)
		fail_msg("gen_new: %s", err);
	buf_init(out, 0);
	while ((rc = gen_next(g, out)) == 1)
		;
	assert_int_equal(rc, 0);
	assert_int_equal(gen_next(g, out), 0);
	gen_free(g);
}

static void
test_gen_deterministic(void **state)
{
	buf_t a, b, c;

	(void)state;
	gen_all("norfolk", 42, 50, NULL, &a);
	gen_all("norfolk", 42, 50, NULL, &b);
	gen_all("norfolk", 43, 50, NULL, &c);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	assert_true(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
	/* a shorter run is a prefix of a longer one */
	buf_free(&b);
	gen_all("norfolk", 42, 10, NULL, &b);
	assert_memory_equal(a.data, b.data, b.len);
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
}

static int
is_date(const char *s)
{
	int i;

	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return 0;
	return strncmp(s + 5, "13", 2) < 0 && strncmp(s + 5, "00", 2) > 0 &&
	    strncmp(s + 8, "32", 2) < 0 && strncmp(s + 8, "00", 2) > 0;
}

static int
in_set(const char *s, const char *const *set)
{
	for (; s != NULL && *set != NULL; set++)
		if (strcmp(s, *set) == 0)
			return 1;
	return 0;
}

static void
check_text_array(const cJSON *o, const char *key, int min)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *e;

	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < min)
		fail_msg("%s: want an array of at least %d", key, min);
	cJSON_ArrayForEach(e, a)
		if (!cJSON_IsString(e) || e->valuestring[0] == '\0')
			fail_msg("%s: want strings", key);
}

static void
check_str(const cJSON *o, const char *key)
{
	const char *s = json_get_str(o, key);

	if (s == NULL || s[0] == '\0')
		fail_msg("%s: want a string", key);
}

static void
check_date(const cJSON *o, const char *key)
{
	if (!is_date(json_get_str(o, key)))
		fail_msg("%s: want YYYY-MM-DD, got %s", key,
		    json_get_str(o, key) ? json_get_str(o, key) : "nothing");
}

struct coverage {
	int cat[5], lvl[4], order[4], em[3], handling[2];
	size_t plan[5][4];
};

/* The structural shape of SPEC section 6 for one record. */
static void
check_record(const cJSON *r, const char *prefix, const char *area,
    struct coverage *cov)
{
	static const char *const top[] = { "id", "managing_area", "category",
	    "level", "person", "addresses", "risk", "rmp", "convictions",
	    "orders", "notification", "licence", "em", "health",
	    "intelligence", "associates", "vehicles", "financial", NULL };
	static const char *const addr_types[] = { "home", "temporary",
	    "approved-premises", NULL };
	static const char *const roshes[] = { "low", "medium", "high",
	    "very-high", NULL };
	static const char *const tools[] = { "ARMS", "OASys", "RM2000", NULL };
	static const char *const orders[] = { "SHPO", "SHPO-FTR", "NO", "SRO",
	    NULL };
	static const char *const ems[] = { "location", "alcohol", "curfew", NULL };
	static const char *const handling[] = { "shareable", "police-only", NULL };
	const cJSON *c, *o, *e;
	const char *id, *s;
	int64_t cat, lvl;
	size_t i;

	cJSON_ArrayForEach(c, r)
		if (!in_set(c->string, top))
			fail_msg("unknown top-level field %s", c->string);
	id = json_get_str(r, "id");
	assert_non_null(id);
	assert_true(mapping_valid_id(id));
	assert_int_equal(strncmp(id, prefix, strlen(prefix)), 0);
	assert_int_equal(strlen(id), strlen(prefix) + 6);
	assert_string_equal(json_get_str(r, "managing_area"), area);
	assert_null(cJSON_GetObjectItem(r, "version"));
	assert_int_equal(json_get_int(r, "category", 1, 4, &cat), 0);
	assert_int_equal(json_get_int(r, "level", 1, 3, &lvl), 0);
	assert_false(cat == 3 && lvl == 1);
	cov->cat[cat] = 1;
	cov->lvl[lvl] = 1;
	cov->plan[cat][lvl]++;

	o = cJSON_GetObjectItem(r, "person");
	assert_true(cJSON_IsObject(o));
	check_str(o, "surname");
	check_str(o, "forenames");
	check_date(o, "dob");
	check_str(o, "gender");
	check_str(o, "pnc_id");
	check_str(o, "photo_ref");
	c = cJSON_GetObjectItem(o, "aliases");
	assert_true(cJSON_IsArray(c));
	cJSON_ArrayForEach(e, c) {
		check_str(e, "surname");
		check_str(e, "forenames");
	}

	c = cJSON_GetObjectItem(r, "addresses");
	assert_true(cJSON_IsArray(c) && cJSON_GetArraySize(c) >= 1);
	cJSON_ArrayForEach(e, c) {
		assert_true(in_set(json_get_str(e, "type"), addr_types));
		check_str(e, "line1");
		check_str(e, "town");
		check_str(e, "postcode");
		check_date(e, "from");
		if (cJSON_GetObjectItem(e, "to") != NULL)
			check_date(e, "to");
	}

	o = cJSON_GetObjectItem(r, "risk");
	assert_true(in_set(json_get_str(o, "rosh"), roshes));
	assert_true(in_set(json_get_str(o, "tool"), tools));
	check_date(o, "assessed");
	check_text_array(o, "factors", 1);
	check_text_array(o, "people_at_risk", 1);
	o = cJSON_GetObjectItem(r, "rmp");
	check_str(o, "summary");
	check_text_array(o, "actions", 1);
	check_date(o, "next_review");

	c = cJSON_GetObjectItem(r, "convictions");
	assert_true(cJSON_IsArray(c) && cJSON_GetArraySize(c) >= 1);
	cJSON_ArrayForEach(e, c) {
		check_str(e, "offence");
		check_date(e, "date");
		check_str(e, "court");
		check_str(e, "sentence");
	}
	c = cJSON_GetObjectItem(r, "orders");
	assert_true(cJSON_IsArray(c) && cJSON_GetArraySize(c) >= 1);
	cJSON_ArrayForEach(e, c) {
		s = json_get_str(e, "type");
		assert_true(in_set(s, orders));
		for (i = 0; i < 4; i++)
			if (strcmp(s, orders[i]) == 0)
				cov->order[i] = 1;
		check_date(e, "made");
		check_date(e, "expires");
		check_text_array(e, "prohibitions", 1);
	}
	o = cJSON_GetObjectItem(r, "notification");
	assert_true(cJSON_IsBool(cJSON_GetObjectItem(o, "required")));
	check_date(o, "since");
	s = json_get_str(o, "until");
	assert_true(s != NULL && (strcmp(s, "indefinite") == 0 || is_date(s)));
	check_date(o, "last_notified");
	o = cJSON_GetObjectItem(r, "licence");
	check_date(o, "end");
	check_text_array(o, "conditions", 1);

	o = cJSON_GetObjectItem(r, "em");
	assert_true(cJSON_IsBool(cJSON_GetObjectItem(o, "active")));
	s = json_get_str(o, "type");
	assert_true(in_set(s, ems));
	for (i = 0; i < 3; i++)
		if (strcmp(s, ems[i]) == 0)
			cov->em[i] = 1;
	check_str(o, "provider");
	check_date(o, "last_alert");

	check_text_array(cJSON_GetObjectItem(r, "health"), "notes", 1);

	c = cJSON_GetObjectItem(r, "intelligence");
	assert_true(cJSON_IsArray(c) && cJSON_GetArraySize(c) >= 2);
	cJSON_ArrayForEach(e, c) {
		check_str(e, "grade");
		s = json_get_str(e, "handling");
		assert_true(in_set(s, handling));
		cov->handling[strcmp(s, "shareable") == 0 ? 0 : 1] = 1;
		check_date(e, "date");
		check_str(e, "text");
	}
	check_text_array(r, "associates", 1);
	c = cJSON_GetObjectItem(r, "vehicles");
	assert_true(cJSON_IsArray(c) && cJSON_GetArraySize(c) >= 1);
	cJSON_ArrayForEach(e, c) {
		check_str(e, "vrm");
		check_str(e, "make");
		check_str(e, "colour");
	}
	check_text_array(r, "financial", 1);
}

/* Check every line of out; fills cov. */
static size_t
check_lines(const buf_t *out, const char *prefix, const char *area,
    struct coverage *cov)
{
	jsonl_reader_t *r;
	cJSON *j;
	size_t line, n = 0, rawlen;
	const char *raw;
	char err[200];
	int rc;

	memset(cov, 0, sizeof(*cov));
	r = jsonl_reader_new(out->data, out->len, 0, 0);
	while ((rc = jsonl_next(r, &j, &line, &raw, &rawlen, err,
	    sizeof(err))) != 0) {
		if (rc < 0)
			fail_msg("generated line %s", err);
		/* records of about 1-3 KB */
		assert_true(rawlen >= 1000 && rawlen <= 4096);
		check_record(j, prefix, area, cov);
		if (record_validate(j, err, sizeof(err)) < 0)
			fail_msg("generated line %zu fails the schema: %s", line,
			    err);
		cJSON_Delete(j);
		n++;
	}
	jsonl_reader_free(r);
	return n;
}

static void
test_gen_shapes_and_coverage(void **state)
{
	struct coverage cov;
	buf_t out;
	int i;

	(void)state;
	gen_all("norfolk", 7, 200, NULL, &out);
	assert_int_equal(check_lines(&out, "NFK-", "norfolk", &cov), 200);
	for (i = 1; i <= 4; i++)
		assert_true(cov.cat[i]);
	for (i = 1; i <= 3; i++)
		assert_true(cov.lvl[i]);
	for (i = 0; i < 4; i++)
		assert_true(cov.order[i]);
	for (i = 0; i < 3; i++)
		assert_true(cov.em[i]);
	assert_true(cov.handling[0] && cov.handling[1]);
	assert_non_null(strstr(out.data, "\"id\":\"NFK-000001\""));
	assert_non_null(strstr(out.data, "\"id\":\"NFK-000200\""));
	buf_free(&out);

	gen_all("suffolk", 7, 12, NULL, &out);
	assert_int_equal(check_lines(&out, "SFK-", "suffolk", &cov), 12);
	for (i = 1; i <= 4; i++)
		assert_true(cov.cat[i]);
	buf_free(&out);
	gen_all("west-mercia", 1, 1, NULL, &out);
	assert_int_equal(check_lines(&out, "WES-", "west-mercia", &cov), 1);
	buf_free(&out);
}

/* A copy of the eligible_on_snapshot table of
 * shared/data/mappa-norfolk-2021-22.json. */
static const char norfolk_json[] =
    "{\"area\":\"norfolk\",\"eligible_on_snapshot\":{"
    "\"level_1\":{\"category_1\":1175,\"category_2\":451,\"category_3\":null,"
    "\"total\":1626},"
    "\"level_2\":{\"category_1\":13,\"category_2\":15,\"category_3\":17,"
    "\"total\":45},"
    "\"level_3\":{\"category_1\":0,\"category_2\":2,\"category_3\":2,"
    "\"total\":4},"
    "\"total\":{\"category_1\":1188,\"category_2\":468,\"category_3\":19,"
    "\"total\":1675}}}";

static void
test_gen_like_norfolk(void **state)
{
	gen_plan_t builtin, file;
	struct coverage cov;
	buf_t out;
	char err[128];
	int c, l;

	(void)state;
	assert_int_equal(gen_plan_builtin("norfolk-2021-22", &builtin), 0);
	assert_int_equal(gen_plan_from_json(norfolk_json, strlen(norfolk_json),
	    &file, err, sizeof(err)), 0);
	assert_memory_equal(&builtin, &file, sizeof(builtin));
	assert_int_equal(gen_plan_total(&builtin), 1675);
	gen_all("norfolk", 1, 0, &builtin, &out);
	assert_int_equal(check_lines(&out, "NFK-", "norfolk", &cov), 1675);
	for (c = 1; c <= 4; c++)
		for (l = 1; l <= 3; l++)
			assert_int_equal(cov.plan[c][l], builtin.n[c][l]);
	assert_int_equal(cov.plan[1][1], 1175);
	assert_int_equal(cov.plan[3][2], 17);
	assert_int_equal(cov.plan[4][1] + cov.plan[4][2] + cov.plan[4][3], 0);
	buf_free(&out);
}

static void
test_gen_errors(void **state)
{
	gen_plan_t plan;
	char err[128];

	(void)state;
	assert_null(gen_new("Norfolk", 1, 10, NULL, err, sizeof(err)));
	assert_null(gen_new("", 1, 10, NULL, err, sizeof(err)));
	assert_null(gen_new("norfolk", 1, 0, NULL, err, sizeof(err)));
	assert_null(gen_new("norfolk", 1, GEN_COUNT_MAX + 1u, NULL, err,
	    sizeof(err)));
	assert_int_equal(gen_plan_builtin("norfolk-2020-21", &plan), -1);
	assert_int_equal(gen_plan_builtin("norfolk-2021-22", &plan), 0);
	assert_null(gen_new("norfolk", 1, 10, &plan, err, sizeof(err)));
	assert_non_null(strstr(err, "1675"));
	assert_int_equal(gen_plan_from_json("{", 1, &plan, err, sizeof(err)), -1);
	assert_int_equal(gen_plan_from_json("{}", 2, &plan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "eligible_on_snapshot"));
#define PLAN(body) "{\"eligible_on_snapshot\":{" body "}}"
	static const char *const bad[] = {
		PLAN("\"level_1\":{\"category_1\":1}"),
		PLAN("\"level_1\":{\"category_1\":1,\"category_2\":0,\"category_3\":0,"
		    "\"total\":2},\"level_2\":{\"category_1\":0,\"category_2\":0,"
		    "\"category_3\":0},\"level_3\":{\"category_1\":0,"
		    "\"category_2\":0,\"category_3\":0}"),
		PLAN("\"level_1\":{\"category_1\":-1,\"category_2\":0,\"category_3\":0},"
		    "\"level_2\":{\"category_1\":0,\"category_2\":0,\"category_3\":0},"
		    "\"level_3\":{\"category_1\":0,\"category_2\":0,\"category_3\":0}"),
		PLAN("\"level_1\":{\"category_1\":\"3\",\"category_2\":0,\"category_3\":0},"
		    "\"level_2\":{\"category_1\":0,\"category_2\":0,\"category_3\":0},"
		    "\"level_3\":{\"category_1\":0,\"category_2\":0,\"category_3\":0}"),
		PLAN("\"level_1\":{\"category_1\":0,\"category_2\":0,\"category_3\":0},"
		    "\"level_2\":{\"category_1\":0,\"category_2\":0,\"category_3\":0},"
		    "\"level_3\":{\"category_1\":0,\"category_2\":0,\"category_3\":0}"),
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (gen_plan_from_json(bad[i], strlen(bad[i]), &plan, err,
		    sizeof(err)) == 0)
			fail_msg("plan %zu accepted", i);
	gen_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_rfc4180),
		cmocka_unit_test(test_csv_errors_carry_on),
		cmocka_unit_test(test_csv_nul_and_bounds),
		cmocka_unit_test(test_csv_resync_after_error),
		cmocka_unit_test(test_csv_space_before_quote),
		cmocka_unit_test(test_jsonl),
		cmocka_unit_test(test_mapping_load_errors),
		cmocka_unit_test(test_mapping_apply),
		cmocka_unit_test(test_mapping_apply_errors),
		cmocka_unit_test(test_mapping_unshift),
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_gen_deterministic),
		cmocka_unit_test(test_gen_shapes_and_coverage),
		cmocka_unit_test(test_gen_like_norfolk),
		cmocka_unit_test(test_gen_errors),
	};

	return cmocka_run_group_tests_name("adapters", tests, NULL, NULL);
}
