/*
 * record_schema: validation, change detection and merge patch for the
 * nominal record (SPEC section 6).
 */
#include "policy/record_schema.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "util/guard.h"

/* Generated from the SPEC section 6 table: parents precede children. */
static const record_field_t fields[] = {
	{ "id", "id", -1, RECORD_T_ID, RECORD_GROUP_CORE, 64 },	/* 0 */
	{ "version", "version", -1, RECORD_T_INT_VERSION, RECORD_GROUP_CORE, 0 },	/* 1 */
	{ "managing_area", "managing_area", -1, RECORD_T_AREA, RECORD_GROUP_CORE, 32 },	/* 2 */
	{ "category", "category", -1, RECORD_T_INT_CATEGORY, RECORD_GROUP_CORE, 0 },	/* 3 */
	{ "level", "level", -1, RECORD_T_INT_LEVEL, RECORD_GROUP_CORE, 0 },	/* 4 */
	{ "person", "person", -1, RECORD_T_OBJECT, RECORD_GROUP_IDENTITY, 0 },	/* 5 */
	{ "person.surname", "surname", 5, RECORD_T_TEXT, RECORD_GROUP_IDENTITY, 100 },	/* 6 */
	{ "person.forenames", "forenames", 5, RECORD_T_TEXT, RECORD_GROUP_IDENTITY, 200 },	/* 7 */
	{ "person.dob", "dob", 5, RECORD_T_DATE, RECORD_GROUP_IDENTITY, 0 },	/* 8 */
	{ "person.gender", "gender", 5, RECORD_T_TEXT, RECORD_GROUP_IDENTITY, 32 },	/* 9 */
	{ "person.aliases", "aliases", 5, RECORD_T_ARRAY_OBJ, RECORD_GROUP_IDENTITY, 50 },	/* 10 */
	{ "person.aliases[].surname", "surname", 10, RECORD_T_TEXT, RECORD_GROUP_IDENTITY, 100 },	/* 11 */
	{ "person.aliases[].forenames", "forenames", 10, RECORD_T_TEXT, RECORD_GROUP_IDENTITY, 200 },	/* 12 */
	{ "person.pnc_id", "pnc_id", 5, RECORD_T_TEXT, RECORD_GROUP_IDENTITY, 32 },	/* 13 */
	{ "person.photo_ref", "photo_ref", 5, RECORD_T_TEXT, RECORD_GROUP_IDENTITY, 256 },	/* 14 */
	{ "addresses", "addresses", -1, RECORD_T_ARRAY_OBJ, RECORD_GROUP_LOCATION, 50 },	/* 15 */
	{ "addresses[].type", "type", 15, RECORD_T_ENUM_ADDRESS_TYPE, RECORD_GROUP_LOCATION, 0 },	/* 16 */
	{ "addresses[].line1", "line1", 15, RECORD_T_TEXT, RECORD_GROUP_LOCATION, 200 },	/* 17 */
	{ "addresses[].town", "town", 15, RECORD_T_TEXT, RECORD_GROUP_LOCATION, 100 },	/* 18 */
	{ "addresses[].postcode", "postcode", 15, RECORD_T_POSTCODE, RECORD_GROUP_LOCATION, 10 },	/* 19 */
	{ "addresses[].from", "from", 15, RECORD_T_DATE, RECORD_GROUP_LOCATION, 0 },	/* 20 */
	{ "addresses[].to", "to", 15, RECORD_T_DATE, RECORD_GROUP_LOCATION, 0 },	/* 21 */
	{ "risk", "risk", -1, RECORD_T_OBJECT, RECORD_GROUP_RISK, 0 },	/* 22 */
	{ "risk.rosh", "rosh", 22, RECORD_T_ENUM_ROSH, RECORD_GROUP_RISK, 0 },	/* 23 */
	{ "risk.tool", "tool", 22, RECORD_T_ENUM_TOOL, RECORD_GROUP_RISK, 0 },	/* 24 */
	{ "risk.assessed", "assessed", 22, RECORD_T_DATE, RECORD_GROUP_RISK, 0 },	/* 25 */
	{ "risk.factors", "factors", 22, RECORD_T_ARRAY_TEXT, RECORD_GROUP_RISK, 100 },	/* 26 */
	{ "risk.people_at_risk", "people_at_risk", 22, RECORD_T_ARRAY_TEXT, RECORD_GROUP_RISK, 100 },	/* 27 */
	{ "rmp", "rmp", -1, RECORD_T_OBJECT, RECORD_GROUP_RISK, 0 },	/* 28 */
	{ "rmp.summary", "summary", 28, RECORD_T_TEXT, RECORD_GROUP_RISK, 4000 },	/* 29 */
	{ "rmp.actions", "actions", 28, RECORD_T_ARRAY_TEXT, RECORD_GROUP_RISK, 100 },	/* 30 */
	{ "rmp.next_review", "next_review", 28, RECORD_T_DATE, RECORD_GROUP_RISK, 0 },	/* 31 */
	{ "convictions", "convictions", -1, RECORD_T_ARRAY_OBJ, RECORD_GROUP_LEGAL, 200 },	/* 32 */
	{ "convictions[].offence", "offence", 32, RECORD_T_TEXT, RECORD_GROUP_LEGAL, 500 },	/* 33 */
	{ "convictions[].date", "date", 32, RECORD_T_DATE, RECORD_GROUP_LEGAL, 0 },	/* 34 */
	{ "convictions[].court", "court", 32, RECORD_T_TEXT, RECORD_GROUP_LEGAL, 200 },	/* 35 */
	{ "convictions[].sentence", "sentence", 32, RECORD_T_TEXT, RECORD_GROUP_LEGAL, 500 },	/* 36 */
	{ "orders", "orders", -1, RECORD_T_ARRAY_OBJ, RECORD_GROUP_LEGAL, 50 },	/* 37 */
	{ "orders[].type", "type", 37, RECORD_T_ENUM_ORDER_TYPE, RECORD_GROUP_LEGAL, 0 },	/* 38 */
	{ "orders[].made", "made", 37, RECORD_T_DATE, RECORD_GROUP_LEGAL, 0 },	/* 39 */
	{ "orders[].expires", "expires", 37, RECORD_T_DATE, RECORD_GROUP_LEGAL, 0 },	/* 40 */
	{ "orders[].prohibitions", "prohibitions", 37, RECORD_T_ARRAY_TEXT, RECORD_GROUP_LEGAL, 100 },	/* 41 */
	{ "notification", "notification", -1, RECORD_T_OBJECT, RECORD_GROUP_LEGAL, 0 },	/* 42 */
	{ "notification.required", "required", 42, RECORD_T_BOOL, RECORD_GROUP_LEGAL, 0 },	/* 43 */
	{ "notification.since", "since", 42, RECORD_T_DATE, RECORD_GROUP_LEGAL, 0 },	/* 44 */
	{ "notification.until", "until", 42, RECORD_T_DATE_OR_INDEFINITE, RECORD_GROUP_LEGAL, 0 },	/* 45 */
	{ "notification.last_notified", "last_notified", 42, RECORD_T_DATE, RECORD_GROUP_LEGAL, 0 },	/* 46 */
	{ "licence", "licence", -1, RECORD_T_OBJECT, RECORD_GROUP_LEGAL, 0 },	/* 47 */
	{ "licence.end", "end", 47, RECORD_T_DATE, RECORD_GROUP_LEGAL, 0 },	/* 48 */
	{ "licence.conditions", "conditions", 47, RECORD_T_ARRAY_TEXT, RECORD_GROUP_LEGAL, 100 },	/* 49 */
	{ "em", "em", -1, RECORD_T_OBJECT, RECORD_GROUP_MONITORING, 0 },	/* 50 */
	{ "em.active", "active", 50, RECORD_T_BOOL, RECORD_GROUP_MONITORING, 0 },	/* 51 */
	{ "em.type", "type", 50, RECORD_T_ENUM_EM_TYPE, RECORD_GROUP_MONITORING, 0 },	/* 52 */
	{ "em.provider", "provider", 50, RECORD_T_TEXT, RECORD_GROUP_MONITORING, 200 },	/* 53 */
	{ "em.last_alert", "last_alert", 50, RECORD_T_DATE, RECORD_GROUP_MONITORING, 0 },	/* 54 */
	{ "health", "health", -1, RECORD_T_OBJECT, RECORD_GROUP_HEALTH, 0 },	/* 55 */
	{ "health.notes", "notes", 55, RECORD_T_ARRAY_TEXT, RECORD_GROUP_HEALTH, 100 },	/* 56 */
	{ "intelligence", "intelligence", -1, RECORD_T_ARRAY_OBJ, RECORD_GROUP_INTELLIGENCE, 500 },	/* 57 */
	{ "intelligence[].grade", "grade", 57, RECORD_T_TEXT, RECORD_GROUP_INTELLIGENCE, 16 },	/* 58 */
	{ "intelligence[].handling", "handling", 57, RECORD_T_ENUM_HANDLING, RECORD_GROUP_INTELLIGENCE, 0 },	/* 59 */
	{ "intelligence[].date", "date", 57, RECORD_T_DATE, RECORD_GROUP_INTELLIGENCE, 0 },	/* 60 */
	{ "intelligence[].text", "text", 57, RECORD_T_TEXT, RECORD_GROUP_INTELLIGENCE, 4000 },	/* 61 */
	{ "associates", "associates", -1, RECORD_T_ARRAY_TEXT, RECORD_GROUP_INTELLIGENCE, 100 },	/* 62 */
	{ "vehicles", "vehicles", -1, RECORD_T_ARRAY_OBJ, RECORD_GROUP_INTELLIGENCE, 50 },	/* 63 */
	{ "vehicles[].vrm", "vrm", 63, RECORD_T_TEXT, RECORD_GROUP_INTELLIGENCE, 16 },	/* 64 */
	{ "vehicles[].make", "make", 63, RECORD_T_TEXT, RECORD_GROUP_INTELLIGENCE, 64 },	/* 65 */
	{ "vehicles[].colour", "colour", 63, RECORD_T_TEXT, RECORD_GROUP_INTELLIGENCE, 32 },	/* 66 */
	{ "financial", "financial", -1, RECORD_T_ARRAY_TEXT, RECORD_GROUP_INTELLIGENCE, 100 },	/* 67 */
};

#define NFIELDS ARRAY_LEN(fields)

static const char *const group_names[RECORD_GROUP_COUNT] = {
	"core", "identity", "location", "risk", "legal", "monitoring",
	"health", "intelligence"
};

static const char *const enum_address_type[] = { "home", "temporary", "approved-premises", NULL };
static const char *const enum_rosh[] = { "low", "medium", "high", "very-high", NULL };
static const char *const enum_tool[] = { "ARMS", "OASys", "RM2000", NULL };
static const char *const enum_order_type[] = { "SHPO", "SHPO-FTR", "NO", "SRO", NULL };
static const char *const enum_em_type[] = { "location", "alcohol", "curfew", NULL };
static const char *const enum_handling[] = { "shareable", "police-only", NULL };

const record_field_t *
record_fields(size_t *n)
{
	*n = NFIELDS;
	return fields;
}

/* Field indexes sorted by path, for record_field_find: the write check
 * looks up every changed path of every PUT. */
static uint8_t by_path[NFIELDS];
static pthread_once_t by_path_once = PTHREAD_ONCE_INIT;

static int
cmp_index_path(const void *a, const void *b)
{
	return strcmp(fields[*(const uint8_t *)a].path,
	    fields[*(const uint8_t *)b].path);
}

static void
by_path_init(void)
{
	size_t i;

	for (i = 0; i < NFIELDS; i++)
		by_path[i] = (uint8_t)i;
	qsort(by_path, NFIELDS, sizeof(by_path[0]), cmp_index_path);
}

int
record_field_find(const char *path)
{
	size_t lo = 0, hi = NFIELDS, mid;
	int c;

	if (path == NULL || pthread_once(&by_path_once, by_path_init) != 0)
		return -1;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(path, fields[by_path[mid]].path);
		if (c == 0)
			return by_path[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

int
record_field_is_leaf(size_t i)
{
	return i < NFIELDS && fields[i].type != RECORD_T_OBJECT &&
	    fields[i].type != RECORD_T_ARRAY_OBJ;
}

int
record_field_covers(size_t a, size_t d)
{
	int cur = (int)d;

	if (a >= NFIELDS || d >= NFIELDS)
		return 0;
	while (cur >= 0) {
		if ((size_t)cur == a)
			return 1;
		cur = fields[cur].parent;
	}
	return 0;
}

size_t
record_field_subtree_end(size_t a)
{
	size_t end = a + 1;

	if (a >= NFIELDS)
		return 0;
	while (end < NFIELDS && record_field_covers(a, end))
		end++;
	return end;
}

const char *
record_group_name(record_group_t g)
{
	if ((int)g < 0 || g >= RECORD_GROUP_COUNT)
		return NULL;
	return group_names[g];
}

int
record_group_from_name(const char *name)
{
	int g;

	if (name == NULL)
		return -1;
	for (g = 0; g < RECORD_GROUP_COUNT; g++)
		if (strcmp(group_names[g], name) == 0)
			return g;
	return -1;
}

/* The child of parent (-1: top level) with this member name, or -1.  The
 * table is small and children are contiguous after their parent, so a scan
 * from the parent onwards is cheap. */
static int
child_find(int parent, const char *name)
{
	size_t i;

	for (i = (size_t)(parent + 1); i < NFIELDS; i++)
		if (fields[i].parent == parent && strcmp(fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
record_date_valid(const char *s)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d, i, leap;

	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (i = 0; i < 10; i++) {
		if (i == 4 || i == 7)
			continue;
		if (s[i] < '0' || s[i] > '9')
			return 0;
	}
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1800 || y > 2999 || m < 1 || m > 12 || d < 1)
		return 0;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[m - 1] + (m == 2 && leap))
		return 0;
	return 1;
}

/* ---- validation ---- */

/* The path of the value being checked, with indices: addresses[2].postcode.
 * Bounded: the schema is at most three levels deep. */
typedef struct {
	char path[160];
	char *err;
	size_t errlen;
} vctx_t;

static int verr(vctx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
verr(vctx_t *v, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (v->errlen == 0)
		return -1;
	n = snprintf(v->err, v->errlen, "%s: ", v->path[0] ? v->path : "record");
	if (n < 0 || (size_t)n >= v->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(v->err + n, v->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
in_enum(const char *s, const char *const *vals)
{
	for (; *vals != NULL; vals++)
		if (strcmp(s, *vals) == 0)
			return 1;
	return 0;
}

static const char *const *
enum_of(record_type_t t)
{
	switch (t) {
	case RECORD_T_ENUM_ADDRESS_TYPE: return enum_address_type;
	case RECORD_T_ENUM_ROSH: return enum_rosh;
	case RECORD_T_ENUM_TOOL: return enum_tool;
	case RECORD_T_ENUM_ORDER_TYPE: return enum_order_type;
	case RECORD_T_ENUM_EM_TYPE: return enum_em_type;
	case RECORD_T_ENUM_HANDLING: return enum_handling;
	default: return NULL;
	}
}

static int
valid_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 3 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-'))
			return 0;
	return 1;
}

static int
is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Is s[0..o) an outward code: A9, A99, A9A, AA9, AA99 or AA9A? */
static int
outward_ok(const char *s, size_t o)
{
	size_t i;

	if (o < 2 || o > 4 || !is_upper(s[0]))
		return 0;
	i = is_upper(s[1]) ? 2 : 1;
	if (i >= o || !is_digit(s[i]))
		return 0;
	return o == i + 1 || (o == i + 2 && (is_digit(s[i + 1]) ||
	    is_upper(s[i + 1])));
}

/* The length of the outward code of postcode s, or 0 if s is not one: the
 * outward code, at most one space, then the inward code (9AA).  Checked
 * whole, because postcode-to-district keeps what is before the inward
 * code: with a value of another shape (NR21AAXYZ) it kept more than the
 * district. */
static size_t
postcode_outward_len(const char *s)
{
	size_t n = strlen(s), o;

	if (n < 5 || n > 8)
		return 0;
	if (!is_digit(s[n - 3]) || !is_upper(s[n - 2]) || !is_upper(s[n - 1]))
		return 0;
	o = n - 3;
	if (s[o - 1] == ' ')
		o--;
	return outward_ok(s, o) ? o : 0;
}

int
record_postcode_district(const char *s, char *out, size_t outlen)
{
	size_t o = postcode_outward_len(s);

	/* An outward code alone is its own district (filtering again). */
	if (o == 0 && outward_ok(s, strlen(s)))
		o = strlen(s);
	if (o == 0 || outlen <= o)
		return -1;
	memcpy(out, s, o);
	out[o] = '\0';
	return 0;
}

static int
valid_postcode(const char *s, size_t max)
{
	return strlen(s) <= max && postcode_outward_len(s) > 0;
}

static int validate_object(vctx_t *v, int node, const cJSON *obj,
    const cJSON *prior);

/* Push ".name" or "[i]" onto the path; returns the old length to restore.
 * (Called for every member of every record written: no printf.) */
static size_t
path_push(vctx_t *v, const char *name, int index)
{
	size_t old = strlen(v->path), room = sizeof(v->path) - old, n;
	char num[16], *p = num + sizeof(num);
	unsigned u = index < 0 ? 0 : (unsigned)index;

	if (name != NULL) {
		size_t dot = old > 0;

		n = strlen(name);
		if (dot + n + 1 > room) {
			v->path[old] = '\0';	/* not with the schema's names */
			return old;
		}
		if (dot)
			v->path[old] = '.';
		memcpy(v->path + old + dot, name, n + 1);
		return old;
	}
	*--p = ']';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	*--p = '[';
	n = (size_t)(num + sizeof(num) - p);
	if (n + 1 > room) {
		v->path[old] = '\0';
		return old;
	}
	memcpy(v->path + old, p, n);
	v->path[old + n] = '\0';
	return old;
}

static int
validate_int(vctx_t *v, const cJSON *val, double min, double max)
{
	double d;

	if (!cJSON_IsNumber(val))
		return verr(v, "not a number");
	d = val->valuedouble;
	/* range first: converting an out-of-range double is undefined */
	if (d < -9007199254740992.0 || d > 9007199254740992.0 || d != floor(d))
		return verr(v, "not an integer");
	if (d < min || d > max)
		return verr(v, "out of range %.0f..%.0f", min, max);
	return 0;
}

static int
validate_text(vctx_t *v, const cJSON *val, size_t max)
{
	size_t n;

	if (!cJSON_IsString(val) || val->valuestring == NULL)
		return verr(v, "not a string");
	n = strlen(val->valuestring);
	if (n == 0)
		return verr(v, "empty string");
	if (n > max)
		return verr(v, "longer than %zu bytes", max);
	return 0;
}

static int validate_value(vctx_t *v, int node, const cJSON *val,
    const cJSON *prior);

/* A leaf value that fails today's rules is accepted when prior (the
 * value at the same path, indices included, of the record as stored)
 * is the same: a record validated under older rules (SPEC-NOTES,
 * postcodes) must not stop a write that leaves that value as it is. */
static int
validate_leaf(vctx_t *v, int node, const cJSON *val, const cJSON *prior)
{
	if (validate_value(v, node, val, NULL) == 0)
		return 0;
	if (prior != NULL && cJSON_Compare(val, prior, 1)) {
		if (v->errlen > 0)
			v->err[0] = '\0';
		return 0;
	}
	return -1;
}

static int
validate_value(vctx_t *v, int node, const cJSON *val, const cJSON *prior)
{
	const record_field_t *f = &fields[node];
	const cJSON *e;
	size_t old;
	int i;

	if (prior != NULL && record_field_is_leaf((size_t)node))
		return validate_leaf(v, node, val, prior);

	switch (f->type) {
	case RECORD_T_ID:
		if (!cJSON_IsString(val) || val->valuestring == NULL)
			return verr(v, "not a string");
		if (!valid_id(val->valuestring))
			return verr(v, "does not match [A-Z0-9-]{3,64}");
		return 0;
	case RECORD_T_AREA:
		if (!cJSON_IsString(val) || val->valuestring == NULL)
			return verr(v, "not a string");
		if (!identity_valid_label(val->valuestring, strlen(val->valuestring)))
			return verr(v, "does not match [a-z0-9-]{1,32}");
		return 0;
	case RECORD_T_INT_VERSION:
		return validate_int(v, val, 1, 9007199254740992.0);
	case RECORD_T_INT_CATEGORY:
		return validate_int(v, val, 1, 4);
	case RECORD_T_INT_LEVEL:
		return validate_int(v, val, 1, 3);
	case RECORD_T_TEXT:
		return validate_text(v, val, (size_t)f->arg);
	case RECORD_T_DATE:
		if (!cJSON_IsString(val) || val->valuestring == NULL)
			return verr(v, "not a string");
		if (!record_date_valid(val->valuestring))
			return verr(v, "not a date (YYYY-MM-DD)");
		return 0;
	case RECORD_T_DATE_OR_INDEFINITE:
		if (!cJSON_IsString(val) || val->valuestring == NULL)
			return verr(v, "not a string");
		if (strcmp(val->valuestring, "indefinite") != 0 &&
		    !record_date_valid(val->valuestring))
			return verr(v, "not a date (YYYY-MM-DD) or \"indefinite\"");
		return 0;
	case RECORD_T_POSTCODE:
		if (!cJSON_IsString(val) || val->valuestring == NULL)
			return verr(v, "not a string");
		if (!valid_postcode(val->valuestring, (size_t)f->arg))
			return verr(v, "not a UK postcode (outward code, one optional space, inward code: NR1 1AA)");
		return 0;
	case RECORD_T_BOOL:
		if (!cJSON_IsBool(val))
			return verr(v, "not a boolean");
		return 0;
	case RECORD_T_ENUM_ADDRESS_TYPE:
	case RECORD_T_ENUM_ROSH:
	case RECORD_T_ENUM_TOOL:
	case RECORD_T_ENUM_ORDER_TYPE:
	case RECORD_T_ENUM_EM_TYPE:
	case RECORD_T_ENUM_HANDLING:
		if (!cJSON_IsString(val) || val->valuestring == NULL)
			return verr(v, "not a string");
		if (!in_enum(val->valuestring, enum_of(f->type)))
			return verr(v, "not one of the allowed values");
		return 0;
	case RECORD_T_OBJECT:
		if (!cJSON_IsObject(val))
			return verr(v, "not an object");
		return validate_object(v, node, val,
		    cJSON_IsObject(prior) ? prior : NULL);
	case RECORD_T_ARRAY_OBJ:
	case RECORD_T_ARRAY_TEXT:
		if (!cJSON_IsArray(val))
			return verr(v, "not an array");
		if (cJSON_GetArraySize(val) > f->arg)
			return verr(v, "more than %d elements", f->arg);
		i = 0;
		cJSON_ArrayForEach(e, val) {
			old = path_push(v, NULL, i);
			if (f->type == RECORD_T_ARRAY_OBJ) {
				const cJSON *pe = cJSON_IsArray(prior) ?
				    cJSON_GetArrayItem(prior, i) : NULL;

				if (!cJSON_IsObject(e))
					return verr(v, "not an object");
				GUARD(validate_object(v, node, e,
				    cJSON_IsObject(pe) ? pe : NULL), err);
			} else {
				GUARD(validate_text(v, e, RECORD_TEXT_ITEM_MAX), err);
			}
			v->path[old] = '\0';
			i++;
		}
		return 0;
	}
	return verr(v, "unknown type");
err:
	return -1;
}

static int
validate_object(vctx_t *v, int node, const cJSON *obj, const cJSON *prior)
{
	const cJSON *m;
	size_t old;
	int c;

	cJSON_ArrayForEach(m, obj) {
		old = path_push(v, m->string, 0);
		if (m->string == NULL || (c = child_find(node, m->string)) < 0)
			return verr(v, "unknown field");
		GUARD(validate_value(v, c, m, prior == NULL ? NULL :
		    cJSON_GetObjectItemCaseSensitive(prior, m->string)), err);
		v->path[old] = '\0';
	}
	return 0;
err:
	return -1;
}

int
record_value_valid(size_t i, const cJSON *val)
{
	vctx_t v;

	if (i >= NFIELDS || val == NULL || !record_field_is_leaf(i))
		return 0;
	memset(&v, 0, sizeof(v));	/* errlen 0: no message */
	return validate_value(&v, (int)i, val, NULL) == 0;
}

int
record_validate(const cJSON *rec, char *err, size_t errlen)
{
	return record_validate_patched(rec, NULL, err, errlen);
}

int
record_validate_patched(const cJSON *rec, const cJSON *prior, char *err,
    size_t errlen)
{
	static const char *const required[] = { "id", "managing_area", "category", "level" };
	vctx_t v;
	size_t i;

	memset(&v, 0, sizeof(v));
	v.err = err;
	v.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	if (!cJSON_IsObject(rec))
		return verr(&v, "not an object");
	for (i = 0; i < ARRAY_LEN(required); i++) {
		if (cJSON_GetObjectItemCaseSensitive(rec, required[i]) == NULL) {
			path_push(&v, required[i], 0);
			return verr(&v, "missing");
		}
	}
	return validate_object(&v, -1, rec, cJSON_IsObject(prior) ? prior :
	    NULL);
}

/* ---- path lists ---- */

void
record_paths_free(record_paths_t *p)
{
	if (p == NULL)
		return;
	free(p->items);
	free(p);
}

static int
paths_add(record_paths_t *p, const char *path)
{
	const char **n;
	size_t i, cap;

	for (i = 0; i < p->count; i++)
		if (p->items[i] == path)
			return 0;
	if (p->count == p->cap) {
		cap = p->cap ? p->cap * 2 : 16;
		if ((n = realloc(p->items, cap * sizeof(*n))) == NULL)
			return -1;
		p->items = n;
		p->cap = cap;
	}
	p->items[p->count++] = path;
	return 0;
}

static const cJSON *
member(const cJSON *obj, const char *name)
{
	if (!cJSON_IsObject(obj))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* Compare the field node in two parent objects (either may be NULL). */
static int
changed_walk(record_paths_t *p, int node, const cJSON *a, const cJSON *b)
{
	size_t i;

	for (i = (size_t)(node + 1); i < NFIELDS; i++) {
		const cJSON *va, *vb;

		if (fields[i].parent != node)
			continue;
		if (node == -1 && strcmp(fields[i].path, "version") == 0)
			continue;
		va = member(a, fields[i].name);
		vb = member(b, fields[i].name);
		if (va == NULL && vb == NULL)
			continue;
		if (fields[i].type == RECORD_T_OBJECT &&
		    (va == NULL || cJSON_IsObject(va)) &&
		    (vb == NULL || cJSON_IsObject(vb))) {
			GUARD(changed_walk(p, (int)i, va, vb), err);
			continue;
		}
		if (va == NULL || vb == NULL || !cJSON_Compare(va, vb, 1))
			GUARD(paths_add(p, fields[i].path), err);
	}
	return 0;
err:
	return -1;
}

record_paths_t *
record_changed_paths(const cJSON *old, const cJSON *new_rec)
{
	record_paths_t *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if (changed_walk(p, -1, old, new_rec) < 0) {
		record_paths_free(p);
		return NULL;
	}
	return p;
}

static void
drop_empty_walk(int node, cJSON *obj)
{
	cJSON *m, *next;
	int c;

	for (m = obj->child; m != NULL; m = next) {
		next = m->next;
		if (m->string == NULL || (c = child_find(node, m->string)) < 0 ||
		    fields[c].type != RECORD_T_OBJECT || !cJSON_IsObject(m))
			continue;
		drop_empty_walk(c, m);
		if (m->child == NULL)
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, m));
	}
}

void
record_drop_empty_objects(cJSON *rec)
{
	if (cJSON_IsObject(rec))
		drop_empty_walk(-1, rec);
}

/* ---- merge patch (RFC 7396) ---- */

cJSON *
record_merge_patch(const cJSON *target, const cJSON *patch)
{
	const cJSON *pm, *tm;
	cJSON *out, *merged;

	if (!cJSON_IsObject(patch))
		return cJSON_Duplicate(patch, 1);
	if (cJSON_IsObject(target))
		out = cJSON_Duplicate(target, 1);
	else
		out = cJSON_CreateObject();
	GUARD_PTR(out, err);
	cJSON_ArrayForEach(pm, patch) {
		if (pm->string == NULL)
			goto err;
		if (cJSON_IsNull(pm)) {
			cJSON_DeleteItemFromObjectCaseSensitive(out, pm->string);
			continue;
		}
		tm = cJSON_GetObjectItemCaseSensitive(out, pm->string);
		GUARD_PTR(merged = record_merge_patch(tm, pm), err);
		if (tm != NULL) {
			if (!cJSON_ReplaceItemInObjectCaseSensitive(out, pm->string, merged)) {
				cJSON_Delete(merged);
				goto err;
			}
		} else if (!cJSON_AddItemToObject(out, pm->string, merged)) {
			cJSON_Delete(merged);
			goto err;
		}
	}
	return out;
err:
	cJSON_Delete(out);
	return NULL;
}

static int
patch_walk(record_paths_t *p, int node, const cJSON *patch, char *err,
    size_t errlen)
{
	const char *prefix = node >= 0 ? fields[node].path : "";
	const cJSON *m;
	int c;

	cJSON_ArrayForEach(m, patch) {
		if (m->string == NULL || (c = child_find(node, m->string)) < 0) {
			snprintf(err, errlen, "%s%s%s: unknown field", prefix,
			    prefix[0] ? "." : "", m->string ? m->string : "");
			return -1;
		}
		if (fields[c].type == RECORD_T_OBJECT && cJSON_IsObject(m)) {
			if (patch_walk(p, c, m, err, errlen) < 0)
				return -1;
			continue;
		}
		if (paths_add(p, fields[c].path) < 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

record_paths_t *
record_patch_paths(const cJSON *patch, char *err, size_t errlen)
{
	record_paths_t *p;
	char dummy[1];

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!cJSON_IsObject(patch)) {
		snprintf(err, errlen, "patch: not an object");
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (patch_walk(p, -1, patch, err, errlen) < 0) {
		record_paths_free(p);
		return NULL;
	}
	return p;
}
