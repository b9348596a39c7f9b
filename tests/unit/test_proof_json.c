/* Unit tests for crypto/proof_json: strict readers of auditor API answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/merkle.h"
#include "crypto/proof_json.h"
#include "util/b64.h"
#include "util/buf.h"

/* base64 of 32 bytes of 0x11, 0x22; 31 and 33 bytes. */
#define H1 "\"ERERERERERERERERERERERERERERERERERERERERERE=\""
#define H2 "\"IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=\""
#define H31 "\"EREREREREREREREREREREREREREREREREREREREREQ==\""
#define H33 "\"ERERERERERERERERERERERERERERERERERERERERERER\""

static void
test_inclusion_valid(void **state)
{
	static const char j[] = "{\"index\":3,\"size\":7,\"proof\":[" H1 "," H2 "]}";
	static const char sp[] = " { \"proof\" : [ ] , \"size\" : 1 , \"index\" : 0 } \n";
	proof_json_inclusion_t p;
	char err[128];

	(void)state;
	assert_int_equal(proof_json_inclusion(j, strlen(j), &p, err, sizeof(err)), 0);
	assert_int_equal(p.index, 3);
	assert_int_equal(p.size, 7);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.proof[0][0], 0x11);
	assert_int_equal(p.proof[0][31], 0x11);
	assert_int_equal(p.proof[1][0], 0x22);
	/* Any member order, whitespace, an empty proof. */
	assert_int_equal(proof_json_inclusion(sp, strlen(sp), &p, err, sizeof(err)), 0);
	assert_int_equal(p.size, 1);
	assert_int_equal(p.n, 0);
}

/* A generated proof, written as the gateway would, reads back and
 * verifies. */
static int
node_fn(void *ctx, unsigned level, uint64_t index, merkle_hash_t out)
{
	merkle_hash_t l, r;
	char leaf[32];
	int n;

	(void)ctx;
	if (level == 0) {
		n = snprintf(leaf, sizeof(leaf), "leaf %llu", (unsigned long long)index);
		merkle_leaf_hash(leaf, (size_t)n, out);
		return 0;
	}
	if (node_fn(ctx, level - 1, 2 * index, l) != 0 ||
	    node_fn(ctx, level - 1, 2 * index + 1, r) != 0)
		return -1;
	merkle_node_hash(l, r, out);
	return 0;
}

static void
write_proof(buf_t *b, const merkle_hash_t *proof, size_t n)
{
	char enc[B64_ENCODED_SIZE(32)];
	size_t i;

	assert_int_equal(buf_puts(b, "\"proof\":["), 0);
	for (i = 0; i < n; i++) {
		b64_encode(proof[i], 32, enc);
		assert_int_equal(buf_printf(b, "%s\"%s\"", i ? "," : "", enc), 0);
	}
	assert_int_equal(buf_puts(b, "]}"), 0);
}

static void
test_generated_roundtrip(void **state)
{
	merkle_hash_t proof[MERKLE_MAX_PROOF], leaf, r1, r2;
	proof_json_inclusion_t ip;
	proof_json_consistency_t cp;
	buf_t b = BUF_INIT;
	char err[128];
	size_t n;

	(void)state;
	assert_int_equal(merkle_inclusion_proof(13, 300, node_fn, NULL, proof, &n), 0);
	assert_int_equal(buf_printf(&b, "{\"index\":13,\"size\":300,"), 0);
	write_proof(&b, proof, n);
	assert_int_equal(proof_json_inclusion(b.data, b.len, &ip, err, sizeof(err)), 0);
	assert_int_equal(merkle_root(300, node_fn, NULL, r2), 0);
	assert_int_equal(node_fn(NULL, 0, 13, leaf), 0);
	assert_int_equal(merkle_verify_inclusion(ip.index, ip.size, leaf,
	    (const merkle_hash_t *)ip.proof, ip.n, r2), 0);
	buf_reset(&b);
	assert_int_equal(merkle_consistency_proof(77, 300, node_fn, NULL, proof, &n), 0);
	assert_int_equal(buf_printf(&b, "{\"from\":77,\"to\":300,"), 0);
	write_proof(&b, proof, n);
	assert_int_equal(proof_json_consistency(b.data, b.len, &cp, err, sizeof(err)), 0);
	assert_int_equal(merkle_root(77, node_fn, NULL, r1), 0);
	assert_int_equal(merkle_verify_consistency(cp.from, cp.to, r1, r2,
	    (const merkle_hash_t *)cp.proof, cp.n), 0);
	buf_free(&b);
}

static void
test_inclusion_rejections(void **state)
{
	static const char *bad[] = {
		"",
		"[]",
		"null",
		"{}",
		"{\"index\":3,\"size\":7}",
		"{\"index\":3,\"proof\":[]}",
		"{\"size\":7,\"proof\":[]}",
		"{\"index\":3,\"size\":7,\"proof\":[],\"extra\":1}",
		"{\"index\":3,\"size\":7,\"proof\":[],\"index\":3}",	/* duplicate */
		"{\"index\":\"3\",\"size\":7,\"proof\":[]}",
		"{\"index\":3,\"size\":true,\"proof\":[]}",
		"{\"index\":3,\"size\":null,\"proof\":[]}",
		"{\"index\":3.5,\"size\":7,\"proof\":[]}",
		"{\"index\":-1,\"size\":7,\"proof\":[]}",
		"{\"index\":3,\"size\":9007199254740992,\"proof\":[]}",	/* 2^53 */
		"{\"index\":3,\"size\":1e300,\"proof\":[]}",
		"{\"index\":7,\"size\":7,\"proof\":[]}",	/* index >= size */
		"{\"index\":0,\"size\":0,\"proof\":[]}",
		"{\"index\":3,\"size\":7,\"proof\":{}}",
		"{\"index\":3,\"size\":7,\"proof\":" H1 "}",
		"{\"index\":3,\"size\":7,\"proof\":null}",
		"{\"index\":3,\"size\":7,\"proof\":[1]}",
		"{\"index\":3,\"size\":7,\"proof\":[null]}",
		"{\"index\":3,\"size\":7,\"proof\":[[" H1 "]]}",
		"{\"index\":3,\"size\":7,\"proof\":[" H31 "]}",
		"{\"index\":3,\"size\":7,\"proof\":[" H33 "]}",
		"{\"index\":3,\"size\":7,\"proof\":[\"\"]}",
		"{\"index\":3,\"size\":7,\"proof\":[\"ERERERERERERERERERERERERERERERERERERERERERE\"]}",
		"{\"index\":3,\"size\":7,\"proof\":[\"ERERERERERERERERERERERERERERERERERERERERERE=\\n\"]}",
		"{\"index\":3,\"size\":7,\"proof\":[\"ERERERERERERERERERERERERERERERERERERERERER-=\"]}",
		"{\"index\":3,\"size\":7,\"proof\":[]} x",
		"{\"index\":3,\"size\":7,\"proof\":[]",
		"{\"index\":3,\"size\":7,\"proof\":[" H1 ",]}",
	};
	proof_json_inclusion_t p;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (proof_json_inclusion(bad[i], strlen(bad[i]), &p, err,
		    sizeof(err)) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
		assert_int_equal(p.n, 0);
	}
	assert_int_equal(proof_json_inclusion(NULL, 0, &p, err, sizeof(err)), -1);
	/* The largest exact integer is accepted. */
	{
		static const char j[] = "{\"index\":9007199254740990,"
		    "\"size\":9007199254740991,\"proof\":[]}";

		assert_int_equal(proof_json_inclusion(j, strlen(j), &p, err,
		    sizeof(err)), 0);
		assert_int_equal(p.size, 9007199254740991ULL);
	}
}

static void
proof_of(buf_t *b, const char *head, size_t hashes)
{
	size_t i;

	buf_reset(b);
	assert_int_equal(buf_printf(b, "%s\"proof\":[", head), 0);
	for (i = 0; i < hashes; i++)
		assert_int_equal(buf_printf(b, "%s" H1, i ? "," : ""), 0);
	assert_int_equal(buf_puts(b, "]}"), 0);
}

static void
test_proof_length_limit(void **state)
{
	proof_json_inclusion_t ip;
	proof_json_consistency_t cp;
	buf_t b = BUF_INIT;
	char err[128];

	(void)state;
	proof_of(&b, "{\"index\":1,\"size\":2,", 64);
	assert_int_equal(proof_json_inclusion(b.data, b.len, &ip, err, sizeof(err)), 0);
	assert_int_equal(ip.n, 64);
	proof_of(&b, "{\"index\":1,\"size\":2,", 65);
	assert_int_equal(proof_json_inclusion(b.data, b.len, &ip, err, sizeof(err)), -1);
	proof_of(&b, "{\"from\":1,\"to\":2,", 64);
	assert_int_equal(proof_json_consistency(b.data, b.len, &cp, err, sizeof(err)), 0);
	proof_of(&b, "{\"from\":1,\"to\":2,", 65);
	assert_int_equal(proof_json_consistency(b.data, b.len, &cp, err, sizeof(err)), -1);
	buf_free(&b);
}

static void
test_consistency(void **state)
{
	static const char ok[] = "{\"from\":4,\"to\":9,\"proof\":[" H2 "]}";
	static const char eq[] = "{\"from\":9,\"to\":9,\"proof\":[]}";
	static const char *bad[] = {
		"{\"from\":0,\"to\":9,\"proof\":[]}",
		"{\"from\":10,\"to\":9,\"proof\":[]}",
		"{\"from\":4,\"proof\":[]}",
		"{\"to\":9,\"proof\":[]}",
		"{\"from\":4,\"to\":9}",
		"{\"from\":4,\"to\":9,\"proof\":[],\"size\":9}",
		"{\"from\":4,\"to\":\"9\",\"proof\":[]}",
		"{\"from\":-4,\"to\":9,\"proof\":[]}",
		"{\"from\":4,\"to\":9.25,\"proof\":[]}",
		"{\"from\":4,\"to\":18446744073709551615,\"proof\":[]}",
		"{\"from\":4,\"to\":9,\"proof\":[" H31 "]}",
		"{\"from\":4,\"to\":9,\"proof\":[true]}",
		"{\"index\":4,\"size\":9,\"proof\":[]}",
		"[{\"from\":4,\"to\":9,\"proof\":[]}]",
	};
	proof_json_consistency_t p;
	char err[128];
	size_t i;

	(void)state;
	assert_int_equal(proof_json_consistency(ok, strlen(ok), &p, err, sizeof(err)), 0);
	assert_int_equal(p.from, 4);
	assert_int_equal(p.to, 9);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.proof[0][5], 0x22);
	assert_int_equal(proof_json_consistency(eq, strlen(eq), &p, err, sizeof(err)), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (proof_json_consistency(bad[i], strlen(bad[i]), &p, err,
		    sizeof(err)) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
	}
}

typedef struct {
	size_t calls;
	uint64_t last;
	size_t stop_at;	/* return -1 on this call (1-based); 0 never */
	char seen[4][16];
} collect_t;

static int
collect(void *vctx, uint64_t index, const uint8_t *leaf, size_t len)
{
	collect_t *c = vctx;

	c->calls++;
	c->last = index;
	if (c->calls - 1 < 4 && len < 16)
		memcpy(c->seen[c->calls - 1], leaf, len);
	return c->stop_at != 0 && c->calls == c->stop_at ? -1 : 0;
}

static void
test_entries_valid(void **state)
{
	/* "abc", "{}", "x" */
	static const char j[] = "{\"entries\":[{\"index\":5,\"data\":\"YWJj\"},"
	    "{\"data\":\"e30=\",\"index\":6},{\"index\":7,\"data\":\"eA==\"}]}";
	static const char empty[] = "{\"entries\":[]}";
	collect_t c;
	size_t count;
	char err[128];

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(proof_json_entries(j, strlen(j), 5, 1000, collect, &c,
	    &count, err, sizeof(err)), 0);
	assert_int_equal(count, 3);
	assert_int_equal(c.calls, 3);
	assert_int_equal(c.last, 7);
	assert_string_equal(c.seen[0], "abc");
	assert_string_equal(c.seen[1], "{}");
	assert_string_equal(c.seen[2], "x");
	memset(&c, 0, sizeof(c));
	assert_int_equal(proof_json_entries(empty, strlen(empty), 0, 1000, collect,
	    &c, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 0);
	assert_int_equal(c.calls, 0);
	/* The callback may stop the walk. */
	memset(&c, 0, sizeof(c));
	c.stop_at = 2;
	assert_int_equal(proof_json_entries(j, strlen(j), 5, 1000, collect, &c,
	    &count, err, sizeof(err)), -1);
	assert_int_equal(c.calls, 2);
	assert_non_null(strstr(err, "caller"));
	/* More entries than asked for. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(proof_json_entries(j, strlen(j), 5, 2, collect, &c,
	    &count, err, sizeof(err)), -1);
	assert_int_equal(c.calls, 0);
}

static void
test_entries_rejections(void **state)
{
	static const char *bad[] = {
		"{}",
		"[]",
		"{\"entries\":{}}",
		"{\"entries\":null}",
		"{\"entries\":[],\"more\":true}",
		"{\"entries\":[1]}",
		"{\"entries\":[[]]}",
		"{\"entries\":[{\"index\":5}]}",
		"{\"entries\":[{\"data\":\"YWJj\"}]}",
		"{\"entries\":[{\"index\":5,\"data\":\"YWJj\",\"x\":1}]}",
		"{\"entries\":[{\"index\":\"5\",\"data\":\"YWJj\"}]}",
		"{\"entries\":[{\"index\":5.5,\"data\":\"YWJj\"}]}",
		"{\"entries\":[{\"index\":-5,\"data\":\"YWJj\"}]}",
		"{\"entries\":[{\"index\":6,\"data\":\"YWJj\"}]}",	/* not start */
		"{\"entries\":[{\"index\":5,\"data\":\"YWJj\"},{\"index\":7,\"data\":\"YWJj\"}]}",
		"{\"entries\":[{\"index\":5,\"data\":\"YWJj\"},{\"index\":5,\"data\":\"YWJj\"}]}",
		"{\"entries\":[{\"index\":5,\"data\":\"\"}]}",
		"{\"entries\":[{\"index\":5,\"data\":\"YWJ\"}]}",
		"{\"entries\":[{\"index\":5,\"data\":\"YW Jj\"}]}",
		"{\"entries\":[{\"index\":5,\"data\":\"YWJj\\n\"}]}",
		"{\"entries\":[{\"index\":5,\"data\":\"YWI=\"}, 3]}",
		"{\"entries\":[{\"index\":5,\"data\":5}]}",
		"{\"entries\":[{\"index\":5,\"data\":null}]}",
		"{\"entries\":[{\"index\":5,\"data\":\"YWJj\"}]",
	};
	collect_t c;
	size_t i, count;
	char err[128];

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&c, 0, sizeof(c));
		err[0] = '\0';
		if (proof_json_entries(bad[i], strlen(bad[i]), 5, 1000, collect,
		    &c, &count, err, sizeof(err)) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
		/* nothing delivered from a bad answer */
		assert_int_equal(c.calls, 0);
		assert_int_equal(count, 0);
	}
	assert_int_equal(proof_json_entries("{\"entries\":[]}", 14,
	    PROOF_JSON_MAX_INT + 1, 10, collect, &c, &count, err, sizeof(err)), -1);
}

static void
test_entries_limits(void **state)
{
	buf_t b = BUF_INIT;
	char *enc;
	uint8_t *leaf;
	collect_t c;
	size_t i, count;
	char err[128];

	(void)state;
	/* 1001 entries: over the hard limit even if the caller asks for more. */
	assert_int_equal(buf_puts(&b, "{\"entries\":["), 0);
	for (i = 0; i < 1001; i++)
		assert_int_equal(buf_printf(&b, "%s{\"index\":%zu,\"data\":\"YWJj\"}",
		    i ? "," : "", i), 0);
	assert_int_equal(buf_puts(&b, "]}"), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(proof_json_entries(b.data, b.len, 0, 5000, collect, &c,
	    &count, err, sizeof(err)), -1);
	assert_int_equal(c.calls, 0);
	/* Leaves of exactly the limit pass; one byte more fails. */
	leaf = calloc(1, PROOF_JSON_MAX_LEAF + 1);
	enc = malloc(B64_ENCODED_SIZE(PROOF_JSON_MAX_LEAF + 1));
	assert_non_null(leaf);
	assert_non_null(enc);
	b64_encode(leaf, PROOF_JSON_MAX_LEAF, enc);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "{\"entries\":[{\"index\":0,\"data\":\"%s\"}]}",
	    enc), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(proof_json_entries(b.data, b.len, 0, 10, collect, &c,
	    &count, err, sizeof(err)), 0);
	assert_int_equal(count, 1);
	b64_encode(leaf, PROOF_JSON_MAX_LEAF + 1, enc);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "{\"entries\":[{\"index\":0,\"data\":\"%s\"}]}",
	    enc), 0);
	assert_int_equal(proof_json_entries(b.data, b.len, 0, 10, collect, &c,
	    &count, err, sizeof(err)), -1);
	/* A whole page of leaves of the limit, as a gateway may answer it
	 * (an entry is at most 64 KiB; a page is 1000 entries), at indices
	 * of many digits: the answer is in bounds, or a log holding such a
	 * page could never be verified. */
	b64_encode(leaf, PROOF_JSON_MAX_LEAF, enc);
	buf_free(&b);
	buf_init(&b, 128u << 20);
	assert_int_equal(buf_puts(&b, "{\"entries\":["), 0);
	for (i = 0; i < PROOF_JSON_MAX_ENTRIES; i++)
		assert_int_equal(buf_printf(&b, "%s{\"index\":%llu,\"data\":"
		    "\"%s\"}", i ? "," : "", (unsigned long long)
		    (PROOF_JSON_MAX_INT - PROOF_JSON_MAX_ENTRIES + i), enc), 0);
	assert_int_equal(buf_puts(&b, "]}"), 0);
	memset(&c, 0, sizeof(c));
	if (proof_json_entries(b.data, b.len, PROOF_JSON_MAX_INT -
	    PROOF_JSON_MAX_ENTRIES, PROOF_JSON_MAX_ENTRIES, collect, &c, &count,
	    err, sizeof(err)) != 0)
		fail_msg("a full page of %zu bytes: %s", b.len, err);
	assert_int_equal(count, PROOF_JSON_MAX_ENTRIES);
	free(leaf);
	free(enc);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inclusion_valid),
		cmocka_unit_test(test_generated_roundtrip),
		cmocka_unit_test(test_inclusion_rejections),
		cmocka_unit_test(test_proof_length_limit),
		cmocka_unit_test(test_consistency),
		cmocka_unit_test(test_entries_valid),
		cmocka_unit_test(test_entries_rejections),
		cmocka_unit_test(test_entries_limits),
	};

	return cmocka_run_group_tests_name("proof_json", tests, NULL, NULL);
}
