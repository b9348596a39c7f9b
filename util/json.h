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
 * valid UTF-8 (after unescaping) or contain NUL, numbers that are not finite.
 * Returns the tree (caller frees with cJSON_Delete) or NULL with a message in
 * err (always NUL-terminated when errlen > 0). */
cJSON *json_parse_strict(const char *buf, size_t len, int max_depth,
    char *err, size_t errlen);

/* 1 if the bytes are valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int json_utf8_valid(const unsigned char *s, size_t len);

/* Read an integer member: must be a number with no fraction, within
 * [min, max].  Returns 0 and sets *out, 1 if absent, -1 if present but bad. */
int json_get_int(const cJSON *obj, const char *key, int64_t min, int64_t max,
    int64_t *out);

/* Return the string value of member key, or NULL if absent or not a string. */
const char *json_get_str(const cJSON *obj, const char *key);

/* Append a JSON string (quoted, escaped) to out.  0 or -1. */
int json_append_string(buf_t *out, const char *s);

/* Append a JSON array of n strings to out.  0 or -1. */
int json_append_string_array(buf_t *out, const char *const *items, size_t n);

/* Print compactly into a new string (caller frees with cJSON_free / free). */
char *json_print(const cJSON *v);

#endif
