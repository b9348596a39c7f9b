/* Unit tests for util/: buf, b64, strict JSON, fileio; and crypto/identity. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "crypto/keyfile.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/monotime.h"
#include "util/rfc3339.h"

static void
test_buf_limits(void **state)
{
	buf_t b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "abcd"), 0);
	assert_int_equal(buf_printf(&b, "%d", 1234), 0);
	assert_string_equal(b.data, "abcd1234");
	assert_int_equal(buf_puts(&b, "x"), -1);	/* past max */
	assert_int_equal(b.len, 8);
	buf_free(&b);
	assert_null(b.data);
	/* buf_grow: room at once, contents (and their NUL) unchanged, the
	 * same maximum. */
	buf_init(&b, 64);
	assert_int_equal(buf_grow(&b, 40), 0);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_true(b.cap >= 41);
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_int_equal(buf_grow(&b, 61), 0);
	assert_string_equal(b.data, "abc");
	assert_int_equal(buf_grow(&b, 62), -1);	/* past max */
	assert_string_equal(b.data, "abc");
	buf_free(&b);
}

static void
test_b64_roundtrip_and_strict(void **state)
{
	unsigned char out[16];
	char enc[B64_ENCODED_SIZE(5)];

	(void)state;
	assert_int_equal(b64_encode((const unsigned char *)"hello", 5, enc), 8);
	assert_string_equal(enc, "aGVsbG8=");
	assert_int_equal(b64_decode(enc, 8, out, sizeof(out)), 5);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(b64_decode("aGVsbG8", 7, out, sizeof(out)), -1);
	assert_int_equal(b64_decode("aGVsbG9=", 8, out, sizeof(out)), -1); /* non-canonical */
	assert_int_equal(b64_decode("aGV sbG8", 8, out, sizeof(out)), -1);
	assert_int_equal(b64_decode("aGVsbG8=", 8, out, 4), -1);	/* too small */
	assert_int_equal(b64_decode("", 0, out, sizeof(out)), 0);
}

/* json_parse_strict of a C string. */
static cJSON *
strict(const char *text, char *err, size_t errlen)
{
	return json_parse_strict(text, strlen(text), 4, err, errlen);
}

static void
test_json_strict(void **state)
{
	char err[128];
	cJSON *j;
	char deep[200];
	int i;

	(void)state;
	j = json_parse_strict("{\"a\":1}", 7, 4, err, sizeof(err));
	assert_non_null(j);
	cJSON_Delete(j);
	assert_null(json_parse_strict("{\"a\":1,\"a\":2}", 13, 4, err, sizeof(err)));
	assert_non_null(strstr(err, "duplicate"));
	assert_null(json_parse_strict("{\"a\":1} x", 9, 4, err, sizeof(err)));
	assert_non_null(strstr(err, "trailing"));
	assert_null(json_parse_strict("{\"a\":\"\xc3\x28\"}", 10, 4, err, sizeof(err)));
	assert_non_null(strstr(err, "UTF-8"));
	assert_null(json_parse_strict("{\"a\":\"\\u0000\"}", 14, 4, err, sizeof(err)));
	/* Invalid UTF-8 in a key, and escapes: a valid surrogate pair is
	 * accepted as valid UTF-8; lone or mismatched surrogates are not. */
	assert_null(strict("{\"\xed\xa0\x80\":1}", err, sizeof(err)));
	assert_non_null(strstr(err, "UTF-8"));
	j = strict("{\"a\":\"\\ud83d\\ude00\"}", err, sizeof(err));
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "a")->valuestring,
	    "\xf0\x9f\x98\x80");
	cJSON_Delete(j);
	assert_null(strict("{\"a\":\"\\ud800\"}", err, sizeof(err)));
	assert_null(strict("{\"a\":\"\\udc00\"}", err, sizeof(err)));
	assert_null(strict("{\"a\":\"\\ud800\\u0041\"}", err, sizeof(err)));
	assert_null(strict("{\"\\udc00\":1}", err, sizeof(err)));
	assert_null(json_parse_strict("{\"a\":1e999}", 11, 4, err, sizeof(err)));
	/* What RFC 8259 refuses and cJSON alone accepts: control characters
	 * in strings and as white space, numbers outside the grammar. */
	{
		static const char *const bad[] = { "{\"a\":\"x\001y\"}",
		    "{\"a\":\"x\ty\"}", "\001{\"a\":1}", "{\"a\":\0131}",
		    "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}", "{\"a\":1e}",
		    "{\"a\":1e+}", "{\"a\":.5}", "{\"a\":1.5.3}", "[-01]",
		    "[+1]", "[1,2,03]" };
		static const char *const good[] = { "{\"a\":0}", "{\"a\":-0}",
		    "{\"a\":0.5}", "{\"a\":-12.25e+3}", "{\"a\":1E-5}",
		    "[1,-2,30,4e1]", "{\"a\":\"x\\ty\",\"b\":true}",
		    " \t\r\n{\"a\":[1]}\n" };
		size_t k;

		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			j = strict(bad[k], err, sizeof(err));
			if (j != NULL)
				fail_msg("accepted: %s", bad[k]);
		}
		for (k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
			j = strict(good[k], err, sizeof(err));
			if (j == NULL)
				fail_msg("refused %s: %s", good[k], err);
			cJSON_Delete(j);
		}
	}
	assert_null(json_parse_strict("", 0, 4, err, sizeof(err)));
	for (i = 0; i < 100; i++)
		deep[i] = '[';
	for (i = 100; i < 200; i++)
		deep[i] = ']';
	assert_null(json_parse_strict(deep, 200, 32, err, sizeof(err)));
	assert_non_null(strstr(err, "nesting"));
	j = json_parse_strict(deep + 68, 64, 32, err, sizeof(err));
	assert_non_null(j);
	cJSON_Delete(j);
}

static void
test_json_utf8(void **state)
{
	(void)state;
	assert_true(json_utf8_valid((const unsigned char *)"caf\xc3\xa9", 5));
	assert_false(json_utf8_valid((const unsigned char *)"\xc0\xaf", 2));	/* overlong */
	assert_false(json_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3)); /* surrogate */
	assert_false(json_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4));
	assert_false(json_utf8_valid((const unsigned char *)"\xe2\x82", 2));	/* truncated */
}

static void
test_identity_parse(void **state)
{
	identity_t id;
	char err[128];
	static const char *const bad[] = {
		"urn:visor:norfolk", "urn:visor:Norfolk:gateway",
		"urn:visor:norfolk:gateway:x", "urn:visor:norfolk:agency:spy",
		"urn:visor:norfolk:agency:police:a:b", "urn:visor::gateway",
		"urn:other:norfolk:gateway", "urn:visor:norfolk:auditor",
		"urn:visor:norfolk:auditor:Bad", "URN:visor:norfolk:gateway",
		"urn:visor:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:gateway",
		"urn:visor:norfolk:agency:housing:", NULL
	};
	size_t i;

	(void)state;
	assert_int_equal(identity_parse("urn:visor:norfolk:gateway", 25, &id, err, sizeof(err)), 0);
	assert_int_equal(id.kind, IDENTITY_GATEWAY);
	assert_string_equal(id.area, "norfolk");
	assert_int_equal(identity_parse("urn:visor:norfolk:agency:housing:st-martins", 43, &id, err, sizeof(err)), 0);
	assert_int_equal(id.kind, IDENTITY_AGENCY);
	assert_string_equal(id.type, "housing");
	assert_string_equal(id.unit, "st-martins");
	assert_int_equal(identity_parse("urn:visor:suffolk:auditor:lay-adviser-1", 39, &id, err, sizeof(err)), 0);
	assert_int_equal(id.kind, IDENTITY_AUDITOR);
	assert_string_equal(id.unit, "lay-adviser-1");
	for (i = 0; bad[i] != NULL; i++)
		assert_int_equal(identity_parse(bad[i], strlen(bad[i]), &id, err, sizeof(err)), -1);
	assert_int_equal(identity_parse("urn:visor:norfolk:gateway\0x", 27, &id, err, sizeof(err)), -1);
}

/* The words for a refused private file: the keys' say how to name the
 * key, a backup's what whoever owns the folder could have done; an errno
 * the file_read_private family does not give is strerror's. */
static void
test_file_refusal(void **state)
{
	static const struct {
		int e;
		file_refusal_t kind;
		const char *words;	/* the start of them */
	} cases[] = {
		{ EPERM, FILE_REFUSAL_KEY, "key file readable by group or "
		    "others (must be 0600)" },
		{ EPERM, FILE_REFUSAL_IN_FOLDER, "readable by group or others "
		    "(must be 0600)" },
		{ ELOOP, FILE_REFUSAL_KEY, "a symbolic link: name the key file "
		    "itself (" },
		{ ELOOP, FILE_REFUSAL_IN_FOLDER, "a symbolic link, not the file "
		    "itself" },
		{ EINVAL, FILE_REFUSAL_KEY, "not a regular file" },
		{ EINVAL, FILE_REFUSAL_IN_FOLDER, "not a regular file" },
		{ EMLINK, FILE_REFUSAL_KEY, "has another name (a hard link): "
		    "keys are read only" },
		{ EMLINK, FILE_REFUSAL_IN_FOLDER, "has another name (a hard "
		    "link), which whoever owns the folder" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = file_refusal(cases[i].e, cases[i].kind);

		if (strncmp(got, cases[i].words, strlen(cases[i].words)) != 0)
			fail_msg("case %zu: \"%s\"", i, got);
	}
	assert_string_equal(file_refusal(EACCES, FILE_REFUSAL_IN_FOLDER),
	    strerror(EACCES));
	assert_string_equal(file_refusal(ENOENT, FILE_REFUSAL_KEY),
	    strerror(ENOENT));
}

static void
test_fileio_and_keyfile(void **state)
{
	char dir[] = "/tmp/visor-test-XXXXXX";
	char path[256], err[256];
	unsigned char key[32];
	char *data;
	size_t len;
	EVP_PKEY *k, *k2;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(file_join(path, sizeof(path), dir, "a.txt"), 0);
	assert_int_equal(file_write_atomic(path, "hello", 5, 0644), 0);
	assert_int_equal(file_read_all(path, 100, &data, &len), 0);
	assert_int_equal(len, 5);
	free(data);
	assert_int_equal(file_read_all(path, 4, &data, &len), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(file_check_private(path), -1);
	/* file_read_private: mode checked on the open file, no symlinks. */
	assert_int_equal(file_read_private(path, 100, &data, &len), -1);
	assert_int_equal(errno, EPERM);
	chmod(path, 0600);
	assert_int_equal(file_read_private(path, 100, &data, &len), 0);
	free(data);
	{
		char lnk[300];
		assert_int_equal(file_join(lnk, sizeof(lnk), dir, "link"), 0);
		assert_int_equal(symlink(path, lnk), 0);
		assert_int_equal(file_read_private(lnk, 100, &data, &len), -1);
		assert_int_equal(errno, ELOOP);
		unlink(lnk);
		/* Nor a file with a second name (a hard link): by either
		 * name, until the other is gone. */
		assert_int_equal(link(path, lnk), 0);
		assert_int_equal(file_read_private(lnk, 100, &data, &len), -1);
		assert_int_equal(errno, EMLINK);
		assert_int_equal(file_read_private(path, 100, &data, &len), -1);
		assert_int_equal(errno, EMLINK);
		unlink(lnk);
		assert_int_equal(file_read_private(path, 100, &data, &len), 0);
		free(data);
	}
	/* A FIFO planted in a file's place (by the account that owns the
	 * folder) is refused at once: before, the open waited for a writer
	 * for ever, and so did root's backup.  The alarm ends the test run
	 * if it hangs. */
	{
		char fifo[300];

		assert_int_equal(file_join(fifo, sizeof(fifo), dir, "fifo"), 0);
		assert_int_equal(mkfifo(fifo, 0600), 0);
		alarm(10);
		assert_int_equal(file_read_private(fifo, 100, &data, &len), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(file_read_all(fifo, 100, &data, &len), -1);
		alarm(0);
		unlink(fifo);
	}
	unlink(path);
	/* The temporary file is new and unguessable: a symbolic link at the
	 * name it once had (path.tmp.<pid>) does not receive the data. */
	{
		char victim[300], trap[400];
		struct stat sb;

		assert_int_equal(file_join(victim, sizeof(victim), dir, "victim"),
		    0);
		assert_int_equal(file_write_atomic(victim, "", 0, 0600), 0);
		snprintf(trap, sizeof(trap), "%s.tmp.%ld", path, (long)getpid());
		assert_int_equal(symlink(victim, trap), 0);
		assert_int_equal(file_write_atomic(path, "secret", 6, 0600), 0);
		assert_int_equal(file_read_all(victim, 100, &data, &len), 0);
		assert_int_equal(len, 0);
		free(data);
		assert_int_equal(lstat(path, &sb), 0);
		assert_true(S_ISREG(sb.st_mode));
		assert_int_equal(sb.st_mode & 0777, 0600);
		unlink(trap);
		unlink(victim);
		unlink(path);
	}

	/* file_create_new: once, never over what is there. */
	assert_int_equal(file_join(path, sizeof(path), dir, "once"), 0);
	assert_int_equal(file_create_new(path, "first", 5, 0600), 0);
	assert_int_equal(file_create_new(path, "second", 6, 0600), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(file_read_all(path, 100, &data, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "first", 5);
	free(data);
	unlink(path);

	assert_int_equal(file_join(path, sizeof(path), dir, "store.key"), 0);
	assert_int_equal(keyfile_create_aead(path), 0);
	assert_int_equal(keyfile_create_aead(path), -1);	/* never overwrite */
	assert_int_equal(keyfile_load_aead(path, key, err, sizeof(err)), 0);
	chmod(path, 0640);
	assert_int_equal(keyfile_load_aead(path, key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "0600"));
	unlink(path);

	assert_int_equal(file_join(path, sizeof(path), dir, "k.pem"), 0);
	k = keyfile_generate("ed25519");
	assert_non_null(k);
	assert_int_equal(keyfile_write_private(path, k), 0);
	k2 = keyfile_load_private(path, err, sizeof(err));
	assert_non_null(k2);
	assert_int_equal(EVP_PKEY_eq(k, k2), 1);
	EVP_PKEY_free(k2);
	chmod(path, 0644);
	assert_null(keyfile_load_private(path, err, sizeof(err)));
	EVP_PKEY_free(k);
	unlink(path);
	rmdir(dir);
}

/* A search hit's time is compared in the canonical form: compared as
 * given, "08:00:00Z" (08:00:00.000) sorted after 08:00:00.500, a lower
 * case "t" after every canonical time, and "9999" (no time at all) after
 * any since. */
static void
test_rfc3339_in_range(void **state)
{
	char since[25], until[25];

	(void)state;
	assert_int_equal(rfc3339_canonical("2026-12-07T08:00:00Z", since), 0);
	assert_int_equal(rfc3339_canonical("2026-12-07T08:00:00.5Z", until), 0);
	assert_string_equal(until, "2026-12-07T08:00:00.500Z");
	assert_true(rfc3339_in_range("2026-12-07T08:00:00Z", since, until));
	assert_true(rfc3339_in_range("2026-12-07t08:00:00.499z", since, until));
	assert_true(rfc3339_in_range("2026-12-07T08:00:00.000Z", NULL, NULL));
	assert_false(rfc3339_in_range("2026-12-07T08:00:00.500Z", since,
	    until));
	assert_false(rfc3339_in_range("2026-12-07T07:59:59.999Z", since,
	    NULL));
	assert_false(rfc3339_in_range("2026-12-07t09:00:00Z", NULL, until));
	assert_false(rfc3339_in_range("9999", since, NULL));
	assert_false(rfc3339_in_range("", NULL, NULL));
	assert_false(rfc3339_in_range(NULL, since, NULL));
	assert_false(rfc3339_in_range("2026-02-30", NULL, NULL));
}

/* y-m-d and sec seconds into that day, in ms since 1970, by timegm. */
static long long
timegm_ms(int y, int m, int d, int sec)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_sec = sec;
	return (long long)timegm(&tm) * 1000;
}

/* A transfer's sent_at as an instant: against timegm, and what is not a
 * date and time refused. */
static void
test_rfc3339_epoch_ms(void **state)
{
	static const char *const bad[] = { "2026-12-07", "", "2026-12-07T08:00Z",
	    "2026-12-07T08:00:00", "2026-02-29T00:00:00Z",
	    "2026-12-07T24:00:00Z", "2026-12-07T08:00:00.Z",
	    "2026-12-07 08:00:00Z", "+2026-12-07T08:00:00Z",
	    "2026-12-07T08:00:00+0100", "2026-12-07T08:00:00+1:00",
	    "2026-12-07T08:00:00+24:00", "2026-12-07T08:00:00+01:60",
	    "2026-12-07T08:00:00+01", "2026-12-07T08:00:00Z+01:00",
	    "2026-12-07T08:00:00+01:00Z", "2026-12-07T08:00:00.5+01:0", NULL };
	long long ms;
	size_t i;

	(void)state;
	assert_int_equal(rfc3339_epoch_ms("1970-01-01T00:00:00Z", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(rfc3339_epoch_ms("2026-12-07T08:09:10.5Z", &ms), 0);
	assert_int_equal(ms, timegm_ms(2026, 12, 7, 8 * 3600 + 9 * 60 + 10) +
	    500);
	assert_int_equal(rfc3339_epoch_ms("2024-02-29t23:59:59.999z", &ms), 0);
	assert_int_equal(ms, timegm_ms(2024, 2, 29, 86399) + 999);
	assert_int_equal(rfc3339_epoch_ms("1969-12-31T23:59:59Z", &ms), 0);
	assert_int_equal(ms, -1000);
	/* Offsets (RFC 3339 5.6), and fractions past milliseconds: times
	 * another implementation may write. */
	assert_int_equal(rfc3339_epoch_ms("2026-12-07T09:09:10+01:00", &ms), 0);
	assert_int_equal(ms, timegm_ms(2026, 12, 7, 8 * 3600 + 9 * 60 + 10));
	assert_int_equal(rfc3339_epoch_ms("2026-12-07T02:39:10.5-05:30", &ms),
	    0);
	assert_int_equal(ms, timegm_ms(2026, 12, 7, 8 * 3600 + 9 * 60 + 10) +
	    500);
	assert_int_equal(rfc3339_epoch_ms("2026-12-07T08:00:00+00:00", &ms), 0);
	assert_int_equal(ms, timegm_ms(2026, 12, 7, 8 * 3600));
	assert_int_equal(rfc3339_epoch_ms("2026-12-07T08:00:00.123999Z", &ms),
	    0);
	assert_int_equal(ms, timegm_ms(2026, 12, 7, 8 * 3600) + 123);
	for (i = 0; bad[i] != NULL; i++)
		if (rfc3339_epoch_ms(bad[i], &ms) == 0)
			fail_msg("%s taken", bad[i]);
}

static void
test_monotime_after(void **state)
{
	struct timespec now, ts;
	long long d;
	long ms[] = { 0, 1, 999, 1000, 1999, 86400000L };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		monotime_after(&ts, ms[i]);
		/* Normalised, and ms on from a moment at or after now. */
		assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
		d = (long long)(ts.tv_sec - now.tv_sec) * 1000000000LL +
		    (ts.tv_nsec - now.tv_nsec);
		assert_true(d >= (long long)ms[i] * 1000000LL);
		assert_true(d < (long long)ms[i] * 1000000LL + 100000000LL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_limits),
		cmocka_unit_test(test_rfc3339_in_range),
		cmocka_unit_test(test_rfc3339_epoch_ms),
		cmocka_unit_test(test_b64_roundtrip_and_strict),
		cmocka_unit_test(test_json_strict),
		cmocka_unit_test(test_json_utf8),
		cmocka_unit_test(test_identity_parse),
		cmocka_unit_test(test_file_refusal),
		cmocka_unit_test(test_fileio_and_keyfile),
		cmocka_unit_test(test_monotime_after),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
