#include "crypto/note.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/sha256.h"
#include "util/b64.h"
#include "util/guard.h"
#include "util/json.h"

#define ED25519_PUB_LEN 32
#define ED25519_SIG_LEN 64
#define KEY_ID_LEN 4
#define ALG_ED25519 0x01
#define MAX_SIG_LINES 100
#define MAX_NAME_LEN 256
/* Largest signature we will decode from another signer's line. */
#define MAX_FOREIGN_SIG 1024

static const char em_dash[] = "\xe2\x80\x94 ";	/* U+2014 and a space */
#define EM_DASH_LEN 4

struct note_signer {
	char *name;
	EVP_PKEY *key;
	uint8_t id[KEY_ID_LEN];
	uint8_t pub[ED25519_PUB_LEN];
};

struct note_verifier {
	char *name;
	EVP_PKEY *key;
	uint8_t id[KEY_ID_LEN];
};

static void
set_err(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

/* Names we sign with or verify: printable ASCII without space or '+'.
 * (C2SP allows more; the gateway's names are "visor.<area>/audit".) */
static int
own_name_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > MAX_NAME_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '+')
			return 0;
	return 1;
}

/* Names on other signers' lines: non-empty, no space or '+' (the note as a
 * whole has already been checked to be UTF-8 without control bytes). */
static int
foreign_name_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > MAX_NAME_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] == ' ' || s[i] == '+')
			return 0;
	return 1;
}

/* first 4 bytes of SHA-256(name || '\n' || 0x01 || pub) */
static int
key_id(const char *name, size_t nlen, const uint8_t pub[ED25519_PUB_LEN],
    uint8_t id[KEY_ID_LEN])
{
	uint8_t buf[MAX_NAME_LEN + 2 + ED25519_PUB_LEN], h[SHA256_LEN];

	if (nlen > MAX_NAME_LEN)
		return -1;
	memcpy(buf, name, nlen);
	buf[nlen] = '\n';
	buf[nlen + 1] = ALG_ED25519;
	memcpy(buf + nlen + 2, pub, ED25519_PUB_LEN);
	sha256(buf, nlen + 2 + ED25519_PUB_LEN, h);
	memcpy(id, h, KEY_ID_LEN);
	return 0;
}

/* Text of a note: UTF-8, and no control bytes other than '\n'. */
static int
text_valid(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return 0;
	}
	return json_utf8_valid((const unsigned char *)s, len);
}

/* A body we can sign: non-empty, ends in '\n', no blank line. */
static int
body_valid(const char *s, size_t len)
{
	if (len == 0 || s[len - 1] != '\n' || s[0] == '\n')
		return 0;
	if (memmem(s, len, "\n\n", 2) != NULL)
		return 0;
	return text_valid(s, len);
}

note_signer_t *
note_signer_new(const char *name, EVP_PKEY *ed25519_key)
{
	note_signer_t *s = NULL;
	size_t publen = ED25519_PUB_LEN, nlen;

	if (name == NULL || ed25519_key == NULL)
		return NULL;
	nlen = strlen(name);
	ENSURE(own_name_valid(name, nlen), err);
	ENSURE(EVP_PKEY_get_id(ed25519_key) == EVP_PKEY_ED25519, err);
	GUARD_PTR(s = calloc(1, sizeof(*s)), err);
	GUARD_PTR(s->name = strdup(name), err);
	ENSURE(EVP_PKEY_get_raw_public_key(ed25519_key, s->pub, &publen) == 1, err);
	ENSURE(publen == ED25519_PUB_LEN, err);
	GUARD(key_id(name, nlen, s->pub, s->id), err);
	ENSURE(EVP_PKEY_up_ref(ed25519_key) == 1, err);
	s->key = ed25519_key;
	return s;
err:
	note_signer_free(s);
	return NULL;
}

void
note_signer_free(note_signer_t *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	free(s->name);
	free(s);
}

int
note_sign(const note_signer_t *s, const char *body, size_t len, buf_t *out)
{
	uint8_t blob[KEY_ID_LEN + ED25519_SIG_LEN];
	char b64[B64_ENCODED_SIZE(KEY_ID_LEN + ED25519_SIG_LEN)];
	EVP_MD_CTX *ctx = NULL;
	size_t siglen = ED25519_SIG_LEN, start = out->len;
	int ret = -1;

	ENSURE(len <= NOTE_MAX_SIZE && body_valid(body, len), err);
	ENSURE(len + 1 + EM_DASH_LEN + strlen(s->name) + 1 + sizeof(b64) <=
	    NOTE_MAX_SIZE, err);
	GUARD_PTR(ctx = EVP_MD_CTX_new(), err);
	ENSURE(EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1, err);
	ENSURE(EVP_DigestSign(ctx, blob + KEY_ID_LEN, &siglen,
	    (const unsigned char *)body, len) == 1, err);
	ENSURE(siglen == ED25519_SIG_LEN, err);
	memcpy(blob, s->id, KEY_ID_LEN);
	b64_encode(blob, sizeof(blob), b64);
	GUARD(buf_append(out, body, len), err);
	GUARD(buf_printf(out, "\n%s%s %s\n", em_dash, s->name, b64), err);
	ret = 0;
err:
	if (ret != 0 && out->len > start) {
		/* leave out as it was */
		out->len = start;
		out->data[start] = '\0';
	}
	EVP_MD_CTX_free(ctx);
	return ret;
}

int
note_signer_vkey(const note_signer_t *s, buf_t *out)
{
	uint8_t raw[1 + ED25519_PUB_LEN];
	char b64[B64_ENCODED_SIZE(1 + ED25519_PUB_LEN)];

	raw[0] = ALG_ED25519;
	memcpy(raw + 1, s->pub, ED25519_PUB_LEN);
	b64_encode(raw, sizeof(raw), b64);
	return buf_printf(out, "%s+%02x%02x%02x%02x+%s", s->name, s->id[0],
	    s->id[1], s->id[2], s->id[3], b64);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

note_verifier_t *
note_verifier_parse(const char *vkey, size_t len, char *err, size_t errlen)
{
	note_verifier_t *v = NULL;
	const char *p1, *p2, *b;
	uint8_t raw[1 + ED25519_PUB_LEN + 8], id[KEY_ID_LEN], want[KEY_ID_LEN];
	size_t nlen, blen, i;
	long rawlen;

	if (vkey == NULL || len > 4096) {
		set_err(err, errlen, "verifier key missing or too long");
		return NULL;
	}
	while (len > 0 && (vkey[len - 1] == '\n' || vkey[len - 1] == ' ' ||
	    vkey[len - 1] == '\r'))
		len--;
	if ((p1 = memchr(vkey, '+', len)) == NULL ||
	    (p2 = memchr(p1 + 1, '+', len - (size_t)(p1 + 1 - vkey))) == NULL) {
		set_err(err, errlen, "verifier key is not name+id+key");
		return NULL;
	}
	nlen = (size_t)(p1 - vkey);
	if (!own_name_valid(vkey, nlen)) {
		set_err(err, errlen, "verifier key name is empty or has bad characters");
		return NULL;
	}
	if (p2 - p1 - 1 != 2 * KEY_ID_LEN) {
		set_err(err, errlen, "verifier key id is not 8 hex digits");
		return NULL;
	}
	for (i = 0; i < KEY_ID_LEN; i++) {
		int hi = hexval(p1[1 + 2 * i]), lo = hexval(p1[2 + 2 * i]);

		if (hi < 0 || lo < 0) {
			set_err(err, errlen, "verifier key id is not 8 hex digits");
			return NULL;
		}
		id[i] = (uint8_t)(hi << 4 | lo);
	}
	b = p2 + 1;
	blen = len - (size_t)(b - vkey);
	rawlen = b64_decode(b, blen, raw, sizeof(raw));
	if (rawlen != 1 + ED25519_PUB_LEN) {
		set_err(err, errlen, "verifier key is not base64 of 33 bytes");
		return NULL;
	}
	if (raw[0] != ALG_ED25519) {
		set_err(err, errlen, "verifier key algorithm is not Ed25519");
		return NULL;
	}
	if (key_id(vkey, nlen, raw + 1, want) != 0 ||
	    memcmp(want, id, KEY_ID_LEN) != 0) {
		set_err(err, errlen, "verifier key id does not match the key");
		return NULL;
	}
	GUARD_PTR(v = calloc(1, sizeof(*v)), fail);
	GUARD_PTR(v->name = strndup(vkey, nlen), fail);
	memcpy(v->id, id, KEY_ID_LEN);
	GUARD_PTR(v->key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
	    raw + 1, ED25519_PUB_LEN), fail);
	return v;
fail:
	set_err(err, errlen, "cannot load the verifier key");
	note_verifier_free(v);
	return NULL;
}

const char *
note_verifier_name(const note_verifier_t *v)
{
	return v->name;
}

void
note_verifier_key_id(const note_verifier_t *v, char out[9])
{
	snprintf(out, 9, "%02x%02x%02x%02x", v->id[0], v->id[1], v->id[2],
	    v->id[3]);
}

void
note_verifier_free(note_verifier_t *v)
{
	if (v == NULL)
		return;
	EVP_PKEY_free(v->key);
	free(v->name);
	free(v);
}

static int
ed25519_verify(EVP_PKEY *key, const uint8_t *sig, size_t siglen,
    const char *msg, size_t len)
{
	EVP_MD_CTX *ctx;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)msg,
	    len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

int
note_open(const note_verifier_t *v, const char *note, size_t len,
    size_t *body_len, char *err, size_t errlen)
{
	uint8_t blob[KEY_ID_LEN + MAX_FOREIGN_SIG];
	const char *sep, *p, *end;
	size_t blen;
	int lines = 0, verified = 0;

	*body_len = 0;
	if (note == NULL || len == 0 || len > NOTE_MAX_SIZE) {
		set_err(err, errlen, "note is empty or larger than the limit");
		return -1;
	}
	if (note[len - 1] != '\n') {
		set_err(err, errlen, "note does not end with a newline");
		return -1;
	}
	if (!text_valid(note, len)) {
		set_err(err, errlen, "note is not UTF-8 text without control characters");
		return -1;
	}
	/* The body holds no blank line, so the first one is the separator. */
	if ((sep = memmem(note, len, "\n\n", 2)) == NULL) {
		set_err(err, errlen, "note has no blank line before its signatures");
		return -1;
	}
	blen = (size_t)(sep - note) + 1;
	if (note[0] == '\n') {
		set_err(err, errlen, "note body is empty");
		return -1;
	}
	p = sep + 2;
	end = note + len;
	if (p == end) {
		set_err(err, errlen, "note has no signature lines");
		return -1;
	}
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *name, *sp, *b;
		size_t nlen;
		long dlen;

		/* eol exists: the note ends with '\n' */
		if (++lines > MAX_SIG_LINES) {
			set_err(err, errlen, "note has more than 100 signature lines");
			return -1;
		}
		if ((size_t)(eol - p) < EM_DASH_LEN ||
		    memcmp(p, em_dash, EM_DASH_LEN) != 0) {
			set_err(err, errlen, "signature line does not start with an em dash and a space");
			return -1;
		}
		name = p + EM_DASH_LEN;
		if ((sp = memchr(name, ' ', (size_t)(eol - name))) == NULL) {
			set_err(err, errlen, "signature line has no key name and signature");
			return -1;
		}
		nlen = (size_t)(sp - name);
		if (!foreign_name_valid(name, nlen)) {
			set_err(err, errlen, "signature line has a bad key name");
			return -1;
		}
		b = sp + 1;
		dlen = b64_decode(b, (size_t)(eol - b), blob, sizeof(blob));
		if (dlen <= KEY_ID_LEN) {
			set_err(err, errlen, "signature line is not base64 of key id and signature");
			return -1;
		}
		if (nlen == strlen(v->name) && memcmp(name, v->name, nlen) == 0 &&
		    memcmp(blob, v->id, KEY_ID_LEN) == 0) {
			if (dlen != KEY_ID_LEN + ED25519_SIG_LEN ||
			    ed25519_verify(v->key, blob + KEY_ID_LEN,
			    ED25519_SIG_LEN, note, blen) != 0) {
				set_err(err, errlen, "signature by the verifier key does not verify");
				return -1;
			}
			verified = 1;
		}
		p = eol + 1;
	}
	if (!verified) {
		set_err(err, errlen, "note carries no signature by the verifier key");
		return -1;
	}
	*body_len = blen;
	return 0;
}

int
checkpoint_format(const char *origin, uint64_t size, const merkle_hash_t root,
    buf_t *out)
{
	char b64[B64_ENCODED_SIZE(MERKLE_HASH_LEN)];
	size_t olen;

	if (origin == NULL)
		return -1;
	olen = strlen(origin);
	if (olen == 0 || olen > MAX_NAME_LEN || !text_valid(origin, olen) ||
	    memchr(origin, '\n', olen) != NULL)
		return -1;
	b64_encode(root, MERKLE_HASH_LEN, b64);
	return buf_printf(out, "%s\n%llu\n%s\n", origin, (unsigned long long)size,
	    b64);
}

/* Next line of [*p, end) without its '\n'; -1 if there is no '\n'. */
static int
next_line(const char **p, const char *end, const char **line, size_t *llen)
{
	const char *eol = memchr(*p, '\n', (size_t)(end - *p));

	if (eol == NULL)
		return -1;
	*line = *p;
	*llen = (size_t)(eol - *p);
	*p = eol + 1;
	return 0;
}

int
checkpoint_parse(const char *body, size_t len, const char *origin,
    uint64_t *size, merkle_hash_t root, char *err, size_t errlen)
{
	const char *p = body, *end = body + len, *line;
	uint8_t r[MERKLE_HASH_LEN + 3];
	uint64_t v = 0;
	size_t llen, i;

	if (body == NULL || len == 0 || len > NOTE_MAX_SIZE) {
		set_err(err, errlen, "checkpoint is empty or too large");
		return -1;
	}
	if (body[len - 1] != '\n' || !text_valid(body, len)) {
		set_err(err, errlen, "checkpoint is not newline-terminated UTF-8 text");
		return -1;
	}
	if (next_line(&p, end, &line, &llen) != 0 || llen == 0) {
		set_err(err, errlen, "checkpoint has no origin line");
		return -1;
	}
	if (origin != NULL && (llen != strlen(origin) ||
	    memcmp(line, origin, llen) != 0)) {
		set_err(err, errlen, "checkpoint origin is not the expected one");
		return -1;
	}
	if (next_line(&p, end, &line, &llen) != 0) {
		set_err(err, errlen, "checkpoint has no size line");
		return -1;
	}
	if (llen == 0 || llen > 20 || (llen > 1 && line[0] == '0')) {
		set_err(err, errlen, "checkpoint size is not a canonical decimal number");
		return -1;
	}
	for (i = 0; i < llen; i++) {
		unsigned d;

		if (line[i] < '0' || line[i] > '9') {
			set_err(err, errlen, "checkpoint size is not a canonical decimal number");
			return -1;
		}
		d = (unsigned)(line[i] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			set_err(err, errlen, "checkpoint size is out of range");
			return -1;
		}
		v = v * 10 + d;
	}
	if (next_line(&p, end, &line, &llen) != 0) {
		set_err(err, errlen, "checkpoint has no root hash line");
		return -1;
	}
	if (b64_decode(line, llen, r, sizeof(r)) != MERKLE_HASH_LEN) {
		set_err(err, errlen, "checkpoint root is not base64 of 32 bytes");
		return -1;
	}
	/* Extension lines: non-empty, ignored. */
	while (p < end) {
		if (next_line(&p, end, &line, &llen) != 0 || llen == 0) {
			set_err(err, errlen, "checkpoint has an empty extension line");
			return -1;
		}
	}
	*size = v;
	memcpy(root, r, MERKLE_HASH_LEN);
	return 0;
}
