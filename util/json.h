/*
 * json: strict parsing of JSON from outside (request bodies, policy and
 * configuration files, peer responses) on top of cJSON.
 *
 * cJSON alone accepts duplicate keys, invalid UTF-8, trailing bytes and
 * numbers that do not fit a double; a gateway must not.
 */
#ifndef UTIL_JSON_H
#define UTIL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/buf.h"

#define JSON_DEFAULT_MAX_DEPTH 32

/* Parse exactly len bytes (no NUL needed) as one JSON value.  Rejects:
 * trailing non-space bytes, nesting deeper than max_depth (objects and arrays
 * both count), duplicate keys in an object, strings or keys that are not
 * valid UTF-8 (after unescaping) or contain NUL, control characters in a
 * string or as white space, numbers outside RFC 8259's grammar (01, 1., .5,
 * +1) or that are not finite.
 * Returns the tree (caller frees with cJSON_Delete) or NULL with a message in
 * err (always NUL-terminated when errlen > 0). */
cJSON *json_parse_strict(const char *buf, size_t len, int max_depth,
    char *err, size_t errlen);

/* 1 if the bytes are valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int json_utf8_valid(const unsigned char *s, size_t len);

/* If s (avail bytes) starts with a character that changes how the text
 * around it is shown without showing itself, returns its length in bytes
 * (2 or 3) and sets *cp to its code point; 0 otherwise.  These are the
 * bidirectional controls (U+061C, U+200E, U+200F, U+202A to U+202E,
 * U+2066 to U+2069), which can make a terminal show text in another order
 * than it is ("Trojan Source"), and the line and paragraph separators
 * (U+2028, U+2029), which some show as a line break. */
size_t json_utf8_hidden(const unsigned char *s, size_t avail, unsigned *cp);

/* Read an integer member: must be a number with no fraction, within
 * [min, max].  Returns 0 and sets *out, 1 if absent, -1 if present but bad. */
int json_get_int(const cJSON *obj, const char *key, int64_t min, int64_t max,
    int64_t *out);

/* Return the string value of member key, or NULL if absent or not a string. */
const char *json_get_str(const cJSON *obj, const char *key);

/* Append a JSON string (quoted, escaped) to out.  0 or -1. */
int json_append_string(buf_t *out, const char *s);

/* Append JSON text (len bytes, already checked to be JSON) to out with
 * DEL and the C1 controls (U+0080 to U+009F), which JSON lets strings hold
 * raw, and the characters json_utf8_hidden finds, written as \u escapes,
 * and tab, CR and LF, which it lets stand as
 * white space between tokens, as spaces: the same JSON value, on one line,
 * and nothing a terminal takes for a control sequence.  For showing text that came from
 * elsewhere (an audit entry); what is hashed or stored stays as it was.
 * 0 or -1. */
int json_append_displayable(buf_t *out, const char *text, size_t len);

/* Append a JSON array of n strings to out.  0 or -1. */
int json_append_string_array(buf_t *out, const char *const *items, size_t n);

/* Print compactly into a new string from malloc (caller frees with free;
 * never arena memory, see below).  NULL if memory is short. */
char *json_print(const cJSON *v);

/*
 * Request-scoped allocation of cJSON trees.  A request that parses a
 * record, filters it and prints it makes and frees hundreds of small cJSON
 * nodes; with json_arena_init() called once at start (before any thread
 * exists), the cJSON allocations a thread makes between json_arena_begin()
 * and the matching json_arena_end() come from a per-thread arena instead:
 * a bump allocation, a no-op free, and one reset (wiped: trees hold record
 * plaintext) at the end.  Outside a scope, and for large allocations,
 * cJSON uses malloc and free as before.
 *
 * The rule for callers: no cJSON tree or cJSON-allocated string made
 * inside a scope may be used after its json_arena_end, or handed to
 * another thread; print with json_print (plain malloc memory) what must
 * outlive it.  Freeing an arena pointer after its scope ended is a
 * programmer error and aborts.  Scopes nest (only the outermost end
 * resets).  In AddressSanitizer builds the arena poisons what is not
 * handed out, so a use after the scope is reported.
 */
void json_arena_init(void);
void json_arena_begin(void);
void json_arena_end(void);

/* Give this thread's arena memory back (at thread exit; outside any scope). */
void json_arena_release(void);

#endif
