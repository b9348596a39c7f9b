/*
 * record_schema: the nominal record of SPEC section 6.
 *
 * The schema is a fixed tree of fields.  Each field has a path in one
 * vocabulary shared by validation errors, policy selectors, audit entries and
 * history: members are joined with '.', and the members of the elements of
 * an array of objects are written with "[]" (`addresses[].postcode`).  Every
 * field belongs to one group of SPEC section 6 (core, identity, location,
 * risk, legal, monitoring, health, intelligence).
 *
 * Pure: no I/O.  Nothing here keeps state; every function is thread-safe.
 */
#ifndef POLICY_RECORD_SCHEMA_H
#define POLICY_RECORD_SCHEMA_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Limits on a record beyond the per-field ones in the table. */
#define RECORD_TEXT_ITEM_MAX 2000	/* bytes per element of a text array */

typedef enum {
	RECORD_GROUP_CORE,
	RECORD_GROUP_IDENTITY,
	RECORD_GROUP_LOCATION,
	RECORD_GROUP_RISK,
	RECORD_GROUP_LEGAL,
	RECORD_GROUP_MONITORING,
	RECORD_GROUP_HEALTH,
	RECORD_GROUP_INTELLIGENCE,
	RECORD_GROUP_COUNT
} record_group_t;

/* What a field holds.  OBJECT and ARRAY_OBJ have child fields; every other
 * type is a leaf (a text array is one leaf: it is never split). */
typedef enum {
	RECORD_T_ID,		/* [A-Z0-9-]{3,64} */
	RECORD_T_AREA,		/* [a-z0-9-]{1,32} */
	RECORD_T_INT_VERSION,	/* integer 1 .. 2^53 */
	RECORD_T_INT_CATEGORY,	/* integer 1 .. 4 */
	RECORD_T_INT_LEVEL,	/* integer 1 .. 3 */
	RECORD_T_TEXT,		/* string, 1 .. arg bytes */
	RECORD_T_DATE,		/* YYYY-MM-DD, a real calendar date */
	RECORD_T_DATE_OR_INDEFINITE,	/* a date or the string "indefinite" */
	RECORD_T_POSTCODE,	/* letters, digits, one space; 5 .. arg bytes */
	RECORD_T_BOOL,
	RECORD_T_ENUM_ADDRESS_TYPE,	/* home, temporary, approved-premises */
	RECORD_T_ENUM_ROSH,	/* low, medium, high, very-high */
	RECORD_T_ENUM_TOOL,	/* ARMS, OASys, RM2000 */
	RECORD_T_ENUM_ORDER_TYPE,	/* SHPO, SHPO-FTR, NO, SRO */
	RECORD_T_ENUM_EM_TYPE,	/* location, alcohol, curfew */
	RECORD_T_ENUM_HANDLING,	/* shareable, police-only */
	RECORD_T_OBJECT,
	RECORD_T_ARRAY_OBJ,	/* at most arg elements, each an object */
	RECORD_T_ARRAY_TEXT	/* at most arg strings of 1..RECORD_TEXT_ITEM_MAX */
} record_type_t;

typedef struct {
	const char *path;	/* "addresses[].postcode" */
	const char *name;	/* member name: "postcode" */
	int parent;		/* index of the parent field, -1 at top level */
	record_type_t type;
	record_group_t group;
	int arg;		/* max length, max elements; 0 if unused */
} record_field_t;

/* The schema table: *n fields, parents always before their children and
 * each field's descendants right after it (so they are one range, see
 * record_field_subtree_end), top level in SPEC order.  Static storage;
 * never freed. */
const record_field_t *record_fields(size_t *n);

/* Index of the field with exactly this path, or -1. */
int record_field_find(const char *path);

/* 1 if the field at index i is a leaf (not OBJECT or ARRAY_OBJ). */
int record_field_is_leaf(size_t i);

/* 1 if field a is field d or one of its ancestors. */
int record_field_covers(size_t a, size_t d);

/* The end of field a's subtree: the fields a covers are exactly those
 * from a up to (not including) the index returned.  0 if a is out of
 * range. */
size_t record_field_subtree_end(size_t a);

/* Group names: "core", "identity", ...; NULL for an out-of-range value. */
const char *record_group_name(record_group_t g);

/* The group with this name, or -1. */
int record_group_from_name(const char *name);

/* Check a record against SPEC section 6: an object with id, managing_area,
 * category and level (version optional, a positive integer), no unknown
 * fields at any depth, every value of its type, enum, length and count.
 * Returns 0, or -1 with a message in err that starts with the field path
 * (`addresses[2].postcode: not a string`); err is always NUL-terminated when
 * errlen > 0. */
int record_validate(const cJSON *rec, char *err, size_t errlen);

/* As record_validate, for rec made from prior (the record as stored) by a
 * merge patch: a leaf value that fails today's rules passes if prior holds
 * the same value at the same path, array indices included (a value stored
 * under older rules, SPEC-NOTES "Postcodes", that the write leaves as it
 * is).  Every value the write brings, changes or moves is checked in
 * full, and so is the shape (unknown fields, required members).  prior
 * NULL: record_validate. */
int record_validate_patched(const cJSON *rec, const cJSON *prior, char *err,
    size_t errlen);

/* 1 if s is a real calendar date written YYYY-MM-DD (years 1800..2999). */
int record_date_valid(const char *s);

/* The district of a UK postcode, its outward code (NR1, IP22, EC1A), into
 * out: 0, or -1 if s is neither a postcode (outward code, at most one
 * space, inward code 9AA: what the schema accepts) nor an outward code
 * alone, or out is too small. */
int record_postcode_district(const char *s, char *out, size_t outlen);

/* 1 if val is a value leaf field i can hold (its type, enum and length),
 * 0 if not or i is not a leaf. */
int record_value_valid(size_t i, const cJSON *val);

/* An allocated list of field paths (schema paths, no indices).  The strings
 * are static schema paths; only the array is owned. */
typedef struct {
	const char **items;
	size_t count;
	size_t cap;
} record_paths_t;

/* Free a list; NULL is a no-op. */
void record_paths_free(record_paths_t *p);

/* The paths whose value differs between old (NULL: no record yet) and new
 * (NULL: erased).  Objects are compared member by member down to the leaves;
 * arrays are compared whole and reported by their own path (`addresses`, not
 * `addresses[].town`).  `version` is gateway-assigned and never reported.
 * Paths come in schema order.  Members not in the schema are ignored
 * (callers validate both records first).
 * Returns a new list (possibly empty) or NULL when memory is short. */
record_paths_t *record_changed_paths(const cJSON *old, const cJSON *new_rec);

/* Remove from rec every member of an object field (person, risk, health...)
 * that is an empty object, at any depth.  Such a member holds no field:
 * changes are found leaf by leaf (record_changed_paths), and policy and the
 * audit log see only the changed paths, so a write that added one would
 * change the stored record with no path to check or record.  rec NULL is a
 * no-op; members not in the schema are left alone (validate first). */
void record_drop_empty_objects(cJSON *rec);

/* RFC 7396 JSON merge patch: a new tree equal to target with patch applied
 * (target may be NULL, meaning absent).  Neither input is modified.  Returns
 * NULL only when memory is short.  The caller frees with cJSON_Delete. */
cJSON *record_merge_patch(const cJSON *target, const cJSON *patch);

/* The schema paths a merge patch touches: for each member of the patch, the
 * field's path if the value is null, a non-object, or the field is not an
 * object; otherwise the paths inside it, recursively.  Arrays are whole.
 * Returns a new list, or NULL with a message in err if the patch is not an
 * object, names a field not in the schema (`person.foo: unknown field`), or
 * memory is short. */
record_paths_t *record_patch_paths(const cJSON *patch, char *err, size_t errlen);

#endif
