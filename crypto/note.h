/*
 * note: C2SP signed notes (https://c2sp.org/signed-note) with Ed25519, and
 * C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint).
 *
 * A signed note is the body (text ending in '\n'), a blank line, then one
 * line per signature: "\u2014 <key name> <base64(key id || signature)>\n".
 * key id = first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key).
 * A verifier key is one line "<name>+<key id as 8 hex>+<base64(0x01 || pub)>".
 */
#ifndef CRYPTO_NOTE_H
#define CRYPTO_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "crypto/merkle.h"
#include "util/buf.h"

#define NOTE_MAX_SIZE 65536

typedef struct note_signer note_signer_t;
typedef struct note_verifier note_verifier_t;

/* A signer named name (a valid key name: no spaces, no '+', non-empty; this
 * implementation also keeps its own names to printable ASCII, at most 256
 * bytes) using the Ed25519 key (a reference is taken).  NULL on bad input. */
note_signer_t *note_signer_new(const char *name, EVP_PKEY *ed25519_key);

/* Free; NULL does nothing. */
void note_signer_free(note_signer_t *s);

/* Sign body (len bytes, must end in '\n' and hold no blank line... see
 * C2SP) and append the whole signed note to out.  0 or -1. */
int note_sign(const note_signer_t *s, const char *body, size_t len, buf_t *out);

/* Append the verifier key line (no newline) to out.  0 or -1. */
int note_signer_vkey(const note_signer_t *s, buf_t *out);

/* Parse a verifier key line (trailing '\n' or spaces tolerated).  NULL with a
 * reason in err. */
note_verifier_t *note_verifier_parse(const char *vkey, size_t len, char *err,
    size_t errlen);

/* The key name of a verifier. */
const char *note_verifier_name(const note_verifier_t *v);

/* The key id of a verifier as 8 lower-case hex digits and a NUL in out:
 * one spelling per key, whichever case the vkey line used. */
void note_verifier_key_id(const note_verifier_t *v, char out[9]);

/* Free; NULL does nothing. */
void note_verifier_free(note_verifier_t *v);

/* Check that note (len bytes) is a well-formed signed note carrying a valid
 * signature by v (other signers' lines are ignored; a line by v's name and
 * id that does not verify is an error).  Well-formed: at most NOTE_MAX_SIZE
 * bytes of UTF-8 with no control byte but '\n', ending in '\n'; a non-empty
 * body without blank lines, exactly one blank line, then 1 to 100 lines
 * "\u2014 <name> <base64>" with a name free of spaces and '+' and canonical
 * base64 of more than 4 bytes.  On success sets *body_len to the
 * length of the body (the note's first body_len bytes) and returns 0;
 * otherwise -1 with a reason in err. */
int note_open(const note_verifier_t *v, const char *note, size_t len,
    size_t *body_len, char *err, size_t errlen);

/* Append a checkpoint body "<origin>\n<size>\n<base64 root>\n" to out. */
int checkpoint_format(const char *origin, uint64_t size, const merkle_hash_t root,
    buf_t *out);

/* Parse a checkpoint body (len bytes), requiring the origin line to equal
 * origin (unless NULL) and a decimal size without leading zeros; extension
 * lines after the root are allowed and ignored.  0, or -1 with err. */
int checkpoint_parse(const char *body, size_t len, const char *origin,
    uint64_t *size, merkle_hash_t root, char *err, size_t errlen);

#endif
