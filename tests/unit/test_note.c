/* Unit tests for crypto/note: C2SP signed notes and tlog checkpoints. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/sha.h>

#include "crypto/note.h"
#include "util/b64.h"

#define ORIGIN "visor.test-area/audit"

/* The example key and note of the Go reference implementation
 * (golang.org/x/mod/sumdb/note): an independent known answer. */
static const char go_seed_b64[] = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
static const char go_vkey[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char go_text[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
static const char go_note[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

static EVP_PKEY *
key_from_seed(uint8_t fill)
{
	uint8_t seed[32];

	memset(seed, fill, sizeof(seed));
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
}

static EVP_PKEY *
go_key(void)
{
	uint8_t raw[40];

	assert_int_equal(b64_decode(go_seed_b64, strlen(go_seed_b64), raw,
	    sizeof(raw)), 33);
	assert_int_equal(raw[0], 1);
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw + 1, 32);
}

/* A signer, its verifier, and a signed checkpoint in *note. */
typedef struct {
	EVP_PKEY *key;
	note_signer_t *s;
	note_verifier_t *v;
	buf_t note;
	buf_t body;
} fix_t;

static int
setup(void **state)
{
	fix_t *f = calloc(1, sizeof(*f));
	merkle_hash_t root;
	buf_t vk = BUF_INIT;
	char err[128];

	if (f == NULL)
		return -1;
	memset(root, 0xab, sizeof(root));
	f->key = key_from_seed(7);
	f->s = note_signer_new(ORIGIN, f->key);
	if (f->key == NULL || f->s == NULL || note_signer_vkey(f->s, &vk) != 0)
		return -1;
	f->v = note_verifier_parse(vk.data, vk.len, err, sizeof(err));
	buf_free(&vk);
	if (f->v == NULL ||
	    checkpoint_format(ORIGIN, 12345, root, &f->body) != 0 ||
	    note_sign(f->s, f->body.data, f->body.len, &f->note) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fix_t *f = *state;

	note_signer_free(f->s);
	note_verifier_free(f->v);
	EVP_PKEY_free(f->key);
	buf_free(&f->note);
	buf_free(&f->body);
	free(f);
	return 0;
}

static void
test_go_known_answer(void **state)
{
	EVP_PKEY *k = go_key();
	note_signer_t *s;
	note_verifier_t *v;
	buf_t out = BUF_INIT;
	char err[128];
	size_t blen;

	(void)state;
	assert_non_null(k);
	s = note_signer_new("PeterNeumann", k);
	assert_non_null(s);
	assert_int_equal(note_signer_vkey(s, &out), 0);
	assert_string_equal(out.data, go_vkey);
	buf_reset(&out);
	assert_int_equal(note_sign(s, go_text, strlen(go_text), &out), 0);
	assert_string_equal(out.data, go_note);
	v = note_verifier_parse(go_vkey, strlen(go_vkey), err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(note_verifier_name(v), "PeterNeumann");
	assert_int_equal(note_open(v, go_note, strlen(go_note), &blen, err,
	    sizeof(err)), 0);
	assert_int_equal(blen, strlen(go_text));
	buf_free(&out);
	note_verifier_free(v);
	note_signer_free(s);
	EVP_PKEY_free(k);
}

static void
test_vkey_and_key_id(void **state)
{
	fix_t *f = *state;
	buf_t vk = BUF_INIT;
	uint8_t pub[32], in[sizeof(ORIGIN) + 33], h[32], raw[33];
	char want[256], b64[64];
	size_t publen = sizeof(pub), n = strlen(ORIGIN);

	/* key id = SHA-256(name || 0x0A || 0x01 || pub)[0:4], computed here
	 * from scratch. */
	assert_int_equal(EVP_PKEY_get_raw_public_key(f->key, pub, &publen), 1);
	memcpy(in, ORIGIN, n);
	in[n] = 0x0a;
	in[n + 1] = 0x01;
	memcpy(in + n + 2, pub, 32);
	SHA256(in, n + 34, h);
	raw[0] = 1;
	memcpy(raw + 1, pub, 32);
	b64_encode(raw, 33, b64);
	snprintf(want, sizeof(want), "%s+%02x%02x%02x%02x+%s", ORIGIN, h[0],
	    h[1], h[2], h[3], b64);
	assert_int_equal(note_signer_vkey(f->s, &vk), 0);
	assert_string_equal(vk.data, want);
	buf_free(&vk);
}

static void
test_roundtrip(void **state)
{
	fix_t *f = *state;
	merkle_hash_t root, want;
	uint64_t size;
	size_t blen;
	char err[128];

	assert_int_equal(note_open(f->v, f->note.data, f->note.len, &blen, err,
	    sizeof(err)), 0);
	assert_int_equal(blen, f->body.len);
	assert_memory_equal(f->note.data, f->body.data, blen);
	assert_int_equal(checkpoint_parse(f->note.data, blen, ORIGIN, &size,
	    root, err, sizeof(err)), 0);
	assert_int_equal(size, 12345);
	memset(want, 0xab, sizeof(want));
	assert_memory_equal(root, want, 32);
	/* The signature line has the C2SP shape. */
	assert_non_null(strstr(f->note.data, "\n\n\xe2\x80\x94 " ORIGIN " "));
}

static void
test_other_signers_ignored(void **state)
{
	fix_t *f = *state;
	EVP_PKEY *k2 = key_from_seed(9);
	note_signer_t *s2 = note_signer_new("witness.example/w1", k2);
	buf_t both = BUF_INIT, other = BUF_INIT;
	size_t blen;
	char err[128];

	assert_non_null(s2);
	/* A note cosigned by a witness: both lines, either order. */
	assert_int_equal(note_sign(s2, f->body.data, f->body.len, &other), 0);
	assert_int_equal(buf_append(&both, f->note.data, f->note.len), 0);
	assert_int_equal(buf_puts(&both, other.data + f->body.len + 1), 0);
	assert_int_equal(note_open(f->v, both.data, both.len, &blen, err,
	    sizeof(err)), 0);
	assert_int_equal(blen, f->body.len);
	buf_reset(&both);
	assert_int_equal(buf_append(&both, other.data, other.len), 0);
	assert_int_equal(buf_puts(&both, f->note.data + f->body.len + 1), 0);
	assert_int_equal(note_open(f->v, both.data, both.len, &blen, err,
	    sizeof(err)), 0);
	/* Signed only by the witness: no signature by our verifier. */
	assert_int_equal(note_open(f->v, other.data, other.len, &blen, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "no signature"));
	buf_free(&both);
	buf_free(&other);
	note_signer_free(s2);
	EVP_PKEY_free(k2);
}

static void
expect_reject(const fix_t *f, const char *note, size_t len, const char *why)
{
	char err[128] = "";
	size_t blen = 99;

	if (note_open(f->v, note, len, &blen, err, sizeof(err)) != -1)
		fail_msg("note accepted: %s", why);
	assert_int_equal(blen, 0);
	assert_true(err[0] != '\0');
}

static void
test_wrong_key_and_name(void **state)
{
	fix_t *f = *state;
	EVP_PKEY *k2 = key_from_seed(8);
	note_signer_t *same_name = note_signer_new(ORIGIN, k2);
	note_signer_t *other_name;
	note_verifier_t *v2;
	buf_t n2 = BUF_INIT, vk = BUF_INIT;
	char err[128];

	/* Same name, other key: a different key id, so no signature by v. */
	assert_int_equal(note_sign(same_name, f->body.data, f->body.len, &n2), 0);
	expect_reject(f, n2.data, n2.len, "wrong key");
	/* Our key under another name. */
	other_name = note_signer_new("visor.other/audit", f->key);
	assert_non_null(other_name);
	buf_reset(&n2);
	assert_int_equal(note_sign(other_name, f->body.data, f->body.len, &n2), 0);
	expect_reject(f, n2.data, n2.len, "wrong name");
	/* A verifier whose name matches but whose key is another: the line by
	 * name with our key id does not match it, so nothing verifies. */
	assert_int_equal(note_signer_vkey(same_name, &vk), 0);
	v2 = note_verifier_parse(vk.data, vk.len, err, sizeof(err));
	assert_non_null(v2);
	{
		size_t blen;

		assert_int_equal(note_open(v2, f->note.data, f->note.len, &blen,
		    err, sizeof(err)), -1);
	}
	/* Right name and key id but a signature by another key (forged id). */
	{
		buf_t forged = BUF_INIT;
		char *line, *b;
		uint8_t blob[68], id[68];
		char enc[B64_ENCODED_SIZE(68)];

		assert_int_equal(buf_append(&forged, n2.data, n2.len), 0);
		buf_reset(&n2);
		assert_int_equal(note_sign(same_name, f->body.data, f->body.len,
		    &n2), 0);
		line = strstr(n2.data, "\n\n") + 2;
		b = strchr(line + 4, ' ') + 1;
		assert_int_equal(b64_decode(b, strlen(b) - 1, blob, sizeof(blob)), 68);
		line = strstr(f->note.data, "\n\n") + 2;
		assert_int_equal(b64_decode(strchr(line + 4, ' ') + 1,
		    strlen(strchr(line + 4, ' ') + 1) - 1, id, sizeof(id)), 68);
		memcpy(blob, id, 4);	/* our key id, their signature */
		b64_encode(blob, 68, enc);
		buf_reset(&forged);
		assert_int_equal(buf_printf(&forged, "%s\n\xe2\x80\x94 %s %s\n",
		    f->body.data, ORIGIN, enc), 0);
		expect_reject(f, forged.data, forged.len, "forged key id");
		buf_free(&forged);
	}
	buf_free(&n2);
	buf_free(&vk);
	note_verifier_free(v2);
	note_signer_free(same_name);
	note_signer_free(other_name);
	EVP_PKEY_free(k2);
}

static void
test_tampering(void **state)
{
	fix_t *f = *state;
	buf_t t = BUF_INIT;
	size_t i, sigstart = f->body.len + 1;
	char *b;

	/* Every body byte altered. */
	for (i = 0; i < f->body.len - 1; i++) {
		buf_reset(&t);
		assert_int_equal(buf_append(&t, f->note.data, f->note.len), 0);
		t.data[i] = t.data[i] == 'x' ? 'y' : 'x';
		expect_reject(f, t.data, t.len, "altered body");
	}
	/* Every signature character altered (stays base64 or breaks it). */
	b = strchr(f->note.data + sigstart + 4, ' ') + 1;
	for (i = (size_t)(b - f->note.data); i < f->note.len - 1; i++) {
		buf_reset(&t);
		assert_int_equal(buf_append(&t, f->note.data, f->note.len), 0);
		t.data[i] = t.data[i] == 'A' ? 'B' : 'A';
		expect_reject(f, t.data, t.len, "altered signature");
	}
	buf_free(&t);
}

static void
test_malformed(void **state)
{
	fix_t *f = *state;
	const char *sig = f->note.data + f->body.len + 1;	/* "— name b64\n" */
	const char *b64 = strchr(sig + 4, ' ') + 1;
	buf_t t = BUF_INIT;
	size_t i;

	/* missing blank line */
	assert_int_equal(buf_append(&t, f->body.data, f->body.len), 0);
	assert_int_equal(buf_puts(&t, sig), 0);
	expect_reject(f, t.data, t.len, "no blank line");
	/* two blank lines */
	buf_reset(&t);
	assert_int_equal(buf_printf(&t, "%s\n\n%s", f->body.data, sig), 0);
	expect_reject(f, t.data, t.len, "two blank lines");
	/* no final newline */
	expect_reject(f, f->note.data, f->note.len - 1, "no final newline");
	/* CRLF ending */
	buf_reset(&t);
	assert_int_equal(buf_append(&t, f->note.data, f->note.len - 1), 0);
	assert_int_equal(buf_puts(&t, "\r\n"), 0);
	expect_reject(f, t.data, t.len, "CRLF");
	/* signature line with a hyphen, or an en dash, instead of an em dash */
	buf_reset(&t);
	assert_int_equal(buf_printf(&t, "%s\n- %s", f->body.data, sig + 4), 0);
	expect_reject(f, t.data, t.len, "hyphen");
	buf_reset(&t);
	assert_int_equal(buf_printf(&t, "%s\n\xe2\x80\x93 %s", f->body.data,
	    sig + 4), 0);
	expect_reject(f, t.data, t.len, "en dash");
	/* em dash without the space */
	buf_reset(&t);
	assert_int_equal(buf_printf(&t, "%s\n\xe2\x80\x94%s", f->body.data,
	    sig + 4), 0);
	expect_reject(f, t.data, t.len, "no space");
	/* bad base64: padding removed, a stray character, whitespace */
	buf_reset(&t);
	assert_int_equal(buf_append(&t, f->note.data, f->note.len - 2), 0);
	assert_int_equal(buf_puts(&t, "\n"), 0);
	expect_reject(f, t.data, t.len, "unpadded");
	buf_reset(&t);
	assert_int_equal(buf_append(&t, f->note.data, f->note.len - 1), 0);
	assert_int_equal(buf_puts(&t, "!\n"), 0);
	expect_reject(f, t.data, t.len, "stray character");
	buf_reset(&t);
	assert_int_equal(buf_append(&t, f->note.data, (size_t)(b64 - f->note.data)), 0);
	assert_int_equal(buf_puts(&t, " "), 0);
	assert_int_equal(buf_puts(&t, b64), 0);
	expect_reject(f, t.data, t.len, "double space");
	/* signature too short to hold a key id */
	buf_reset(&t);
	assert_int_equal(buf_printf(&t, "%s\n\xe2\x80\x94 " ORIGIN " AAAA\n",
	    f->body.data), 0);
	expect_reject(f, t.data, t.len, "short signature");
	/* no signature lines at all */
	buf_reset(&t);
	assert_int_equal(buf_printf(&t, "%s\n", f->body.data), 0);
	expect_reject(f, t.data, t.len, "no signatures");
	/* empty body */
	buf_reset(&t);
	assert_int_equal(buf_printf(&t, "\n%s", sig), 0);
	expect_reject(f, t.data, t.len, "empty body");
	/* empty name, name with '+' */
	buf_reset(&t);
	assert_int_equal(buf_printf(&t, "%s\n\xe2\x80\x94  %s", f->body.data, b64), 0);
	expect_reject(f, t.data, t.len, "empty name");
	buf_reset(&t);
	assert_int_equal(buf_printf(&t, "%s\n\xe2\x80\x94 a+b %s%s",
	    f->body.data, b64, sig), 0);
	expect_reject(f, t.data, t.len, "name with plus");
	/* a control byte or invalid UTF-8 anywhere */
	buf_reset(&t);
	assert_int_equal(buf_append(&t, f->note.data, f->note.len), 0);
	t.data[2] = '\t';
	expect_reject(f, t.data, t.len, "control byte");
	t.data[2] = (char)0xff;
	expect_reject(f, t.data, t.len, "invalid UTF-8");
	t.data[2] = '\0';
	expect_reject(f, t.data, t.len, "NUL");
	/* empty and oversize */
	expect_reject(f, "", 0, "empty");
	buf_reset(&t);
	for (i = 0; t.len <= NOTE_MAX_SIZE; i++)
		assert_int_equal(buf_printf(&t, "line %zu\n", i), 0);
	assert_int_equal(buf_printf(&t, "\n%s", sig), 0);
	expect_reject(f, t.data, t.len, "oversize");
	/* 100 signature lines pass; 101 fail */
	buf_reset(&t);
	assert_int_equal(buf_append(&t, f->note.data, f->note.len), 0);
	for (i = 1; i < 100; i++)
		assert_int_equal(buf_printf(&t, "\xe2\x80\x94 other%zu %s", i, b64), 0);
	{
		size_t blen;
		char err[128];

		assert_int_equal(note_open(f->v, t.data, t.len, &blen, err,
		    sizeof(err)), 0);
	}
	assert_int_equal(buf_printf(&t, "\xe2\x80\x94 other %s", b64), 0);
	expect_reject(f, t.data, t.len, "101 signatures");
	buf_free(&t);
}

static void
test_sign_rejections(void **state)
{
	fix_t *f = *state;
	buf_t out = BUF_INIT;
	EVP_PKEY *ec;
	static char big[NOTE_MAX_SIZE];

	assert_int_equal(note_sign(f->s, "no newline", 10, &out), -1);
	assert_int_equal(note_sign(f->s, "", 0, &out), -1);
	assert_int_equal(note_sign(f->s, "a\n\nb\n", 5, &out), -1);
	assert_int_equal(note_sign(f->s, "\na\n", 3, &out), -1);
	assert_int_equal(note_sign(f->s, "a\tb\n", 4, &out), -1);
	assert_int_equal(note_sign(f->s, "\xff\n", 2, &out), -1);
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	assert_int_equal(note_sign(f->s, big, sizeof(big), &out), -1);
	assert_int_equal(out.len, 0);
	/* Output buffer limit: nothing left behind. */
	buf_free(&out);
	buf_init(&out, 40);
	assert_int_equal(note_sign(f->s, f->body.data, f->body.len, &out), -1);
	assert_int_equal(out.len, 0);
	buf_free(&out);
	/* Bad signer names and keys. */
	assert_null(note_signer_new("", f->key));
	assert_null(note_signer_new("a b", f->key));
	assert_null(note_signer_new("a+b", f->key));
	assert_null(note_signer_new("a\n", f->key));
	assert_null(note_signer_new(NULL, f->key));
	assert_null(note_signer_new("ok", NULL));
	ec = EVP_EC_gen("P-256");
	assert_non_null(ec);
	assert_null(note_signer_new("ok", ec));
	EVP_PKEY_free(ec);
	note_signer_free(NULL);
	note_verifier_free(NULL);
}

static void
test_verifier_parse(void **state)
{
	note_verifier_t *v;
	char err[128], line[256];

	(void)state;
	/* Trailing newline and spaces tolerated. */
	snprintf(line, sizeof(line), "%s \n", go_vkey);
	v = note_verifier_parse(line, strlen(line), err, sizeof(err));
	assert_non_null(v);
	note_verifier_free(v);
	/* Upper-case hex id accepted; the id reads back in lower case, so
	 * that what is keyed by it (visorctl's state file) is one per key. */
	snprintf(line, sizeof(line), "PeterNeumann+C74F20A3+%s", go_vkey + 22);
	v = note_verifier_parse(line, strlen(line), err, sizeof(err));
	assert_non_null(v);
	{
		char id[9];

		note_verifier_key_id(v, id);
		assert_string_equal(id, "c74f20a3");
	}
	note_verifier_free(v);
#define BAD(s) do { \
	err[0] = '\0'; \
	assert_null(note_verifier_parse((s), strlen(s), err, sizeof(err))); \
	assert_true(err[0] != '\0'); \
} while (0)
	BAD("");
	BAD("PeterNeumann");
	BAD("PeterNeumann+c74f20a3");
	BAD("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
	BAD("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
	BAD("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
	BAD("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
	BAD("PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
	BAD("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T");
	BAD("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW==");
	BAD("PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");	/* alg 2 */
	BAD("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW+x");
	/* Another name for the same key: id mismatch. */
	BAD("PaulNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
#undef BAD
}

static void
test_checkpoint_format_parse(void **state)
{
	merkle_hash_t root, got;
	buf_t b = BUF_INIT;
	uint64_t size;
	char err[128];

	(void)state;
	memset(root, 0x11, sizeof(root));
	assert_int_equal(checkpoint_format(ORIGIN, 0, root, &b), 0);
	assert_string_equal(b.data, ORIGIN "\n0\nERERERERERERERERERERERERERERERERERERERERERE=\n");
	assert_int_equal(checkpoint_parse(b.data, b.len, ORIGIN, &size, got, err,
	    sizeof(err)), 0);
	assert_int_equal(size, 0);
	assert_memory_equal(got, root, 32);
	buf_reset(&b);
	assert_int_equal(checkpoint_format(ORIGIN, UINT64_MAX, root, &b), 0);
	assert_int_equal(checkpoint_parse(b.data, b.len, NULL, &size, got, err,
	    sizeof(err)), 0);
	assert_int_equal(size, UINT64_MAX);
	/* Extension lines are allowed and ignored. */
	assert_int_equal(buf_puts(&b, "ext one\nother ext\n"), 0);
	assert_int_equal(checkpoint_parse(b.data, b.len, ORIGIN, &size, got, err,
	    sizeof(err)), 0);
	assert_int_equal(size, UINT64_MAX);
	buf_free(&b);
	/* Bad origins cannot be formatted. */
	assert_int_equal(checkpoint_format("", 1, root, &b), -1);
	assert_int_equal(checkpoint_format("a\nb", 1, root, &b), -1);
	assert_int_equal(checkpoint_format(NULL, 1, root, &b), -1);
}

static void
test_checkpoint_rejections(void **state)
{
	static const char *bad[] = {
		"",
		ORIGIN "\n",
		ORIGIN "\n5\n",
		ORIGIN "\n5\nERERERERERERERERERERERERERERERERERERERERERE=",	/* no final \n */
		"visor.other/audit\n5\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		"\n5\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "x\n5\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n05\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n00\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n-5\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n+5\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\nfive\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n5.0\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n 5\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n18446744073709551616\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n99999999999999999999\nERERERERERERERERERERERERERERERERERERERERERE=\n",
		ORIGIN "\n5\nEREREREREREREREREREREREREREREREREREREREREQ==\n",	/* 31 bytes */
		ORIGIN "\n5\nERERERERERERERERERERERERERERERERERERERERERERERE=\n",	/* 34 */
		ORIGIN "\n5\nERERERERERERERERERERERERERERERERERERERERERE\n",	/* unpadded */
		ORIGIN "\n5\n\n",
		ORIGIN "\n5\nERERERERERERERERERERERERERERERERERERERERERE=\n\n",	/* empty ext */
		ORIGIN "\r\n5\nERERERERERERERERERERERERERERERERERERERERERE=\n",
	};
	merkle_hash_t root;
	uint64_t size;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (checkpoint_parse(bad[i], strlen(bad[i]), ORIGIN, &size, root,
		    err, sizeof(err)) != -1)
			fail_msg("checkpoint %zu accepted", i);
		assert_true(err[0] != '\0');
	}
	/* An embedded NUL. */
	assert_int_equal(checkpoint_parse(ORIGIN "\n5\0\nERERERERERERERERERERERERERERERERERERERERERE=\n",
	    sizeof(ORIGIN) + 48, ORIGIN, &size, root, err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_known_answer),
		cmocka_unit_test_setup_teardown(test_vkey_and_key_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_signers_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key_and_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_rejections, setup, teardown),
		cmocka_unit_test(test_verifier_parse),
		cmocka_unit_test(test_checkpoint_format_parse),
		cmocka_unit_test(test_checkpoint_rejections),
	};

	return cmocka_run_group_tests_name("note", tests, NULL, NULL);
}
