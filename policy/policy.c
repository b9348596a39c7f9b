/*
 * policy: loading, validation and evaluation of policy files (SPEC section
 * 7; format in docs/POLICY.md).
 *
 * Loading compiles each rule's field selectors into a per-field bitmask of
 * the selectors that cover that field, and each rule's transforms into a
 * per-field transform, so that evaluation is a walk over the record with a
 * few bit tests per value.  Rules are kept sorted by id: where a decision
 * has to name "the" rule, the choice never depends on file order.
 */
#include "policy/policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto/sha256.h"
#include "policy/record_schema.h"
#include "util/guard.h"
#include "util/json.h"

#define FIELDS_MAX 96		/* the schema has fewer fields than this */
#define SELECTORS_MAX 64	/* one bit each in a uint64_t */
#define LIST_MAX 64		/* entries in one condition list */
#define ID_MAX 64
#define TEXT_MAX 2000		/* description, name */
#define POLICY_DEPTH 8

const char *const policy_purposes[] = {
	"risk-management", "mappa-meeting", "offender-move", "notification",
	"accommodation", "health-care", "monitoring", "review", NULL
};

static const char *const op_names[] = {
	"read", "write", "erase", "transfer", "ingress", "initiate-transfer"
};
#define NOPS ARRAY_LEN(op_names)

/* Ops whose permits name fields, and ops that are all-or-nothing. */
#define OPS_FIELD ((1u << POLICY_OP_READ) | (1u << POLICY_OP_WRITE) | \
	(1u << POLICY_OP_TRANSFER) | (1u << POLICY_OP_INGRESS))
#define OPS_FILTER ((1u << POLICY_OP_READ) | (1u << POLICY_OP_TRANSFER) | \
	(1u << POLICY_OP_INGRESS))

enum {
	TR_NONE,
	TR_DROP,
	TR_DATE_TO_YEAR,
	TR_POSTCODE_TO_DISTRICT
};
static const char *const transform_names[] = {
	"none", "drop", "date-to-year", "postcode-to-district"
};

typedef struct {
	char **v;
	size_t n;
} strset_t;

typedef struct {
	int node;		/* the member of the element, e.g. intelligence[].handling */
	strset_t values;
} where_t;

typedef struct {
	int node;		/* schema field the selector names */
	int array_node;		/* array whose elements "where" tests, or -1 */
	where_t *where;
	size_t nwhere;
} selector_t;

typedef struct {
	char *id;
	char *description;
	int forbid;
	unsigned ops;
	/* conditions; an empty set or zero mask means "any" */
	unsigned caller_kinds;	/* bit per identity_kind_t */
	strset_t agency_types;
	strset_t caller_areas;	/* "@local" means req->local_area */
	strset_t managing_areas;
	unsigned categories;	/* bit per category 1..4 */
	unsigned levels;	/* bit per level 1..3 */
	unsigned purposes;	/* bit per policy_purposes index */
	strset_t clearance;	/* caller must hold all */
	strset_t unless_clearance;	/* applies only if caller lacks one */
	char valid_until[11];	/* "" if none */
	int has_fields;
	selector_t *sel;
	size_t nsel;
	uint64_t cover[FIELDS_MAX];	/* selectors covering each field */
	unsigned char transform[FIELDS_MAX];
} rule_t;

struct policy {
	rule_t *rules;
	size_t nrules;
	char *name;
	char hash[POLICY_HASH_HEX_LEN + 1];
	const record_field_t *fields;
	size_t nfields;
	unsigned char is_leaf[FIELDS_MAX];
	/* children of each field in schema order; index 0 is the top level */
	int first_child[FIELDS_MAX + 1];
	int next_sibling[FIELDS_MAX];
};

/* A list of strings owned by a decision. */
typedef struct {
	char **v;
	unsigned char *owned;	/* 0: a static schema path, not freed */
	size_t n;
	size_t cap;
} strlist_t;

struct policy_decision {
	int allowed;
	cJSON *record;
	char *reason;
	strlist_t disclosed;
	strlist_t withheld;
	strlist_t transformed;
	strlist_t rules;
	strlist_t explain;
	int quiet;		/* no explanation lines */
};

const char *
policy_op_name(policy_op_t op)
{
	if ((unsigned)op >= NOPS)
		return "unknown";
	return op_names[op];
}

int
policy_op_from_name(const char *name)
{
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < NOPS; i++)
		if (strcmp(op_names[i], name) == 0)
			return (int)i;
	return -1;
}

static int
purpose_index(const char *s)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; policy_purposes[i] != NULL; i++)
		if (strcmp(policy_purposes[i], s) == 0)
			return i;
	return -1;
}

int
policy_purpose_valid(const char *s)
{
	return purpose_index(s) >= 0;
}

/* ---- small helpers ---- */

static void
strset_free(strset_t *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int
strset_has(const strset_t *s, const char *x)
{
	size_t i;

	if (x == NULL)
		return 0;
	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i], x) == 0)
			return 1;
	return 0;
}

static void
strlist_free(strlist_t *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->owned[i])
			free(l->v[i]);
	free(l->v);
	free(l->owned);
	memset(l, 0, sizeof(*l));
}

/* Append s; copy it unless it has static storage (schema paths). */
static int
strlist_push(strlist_t *l, const char *s, int is_static)
{
	unsigned char *no;
	char **nv, *c;
	size_t cap;

	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 16;
		if ((nv = realloc(l->v, cap * sizeof(*nv))) == NULL)
			return -1;
		l->v = nv;
		if ((no = realloc(l->owned, cap)) == NULL)
			return -1;
		l->owned = no;
		l->cap = cap;
	}
	if (is_static) {
		c = (char *)(uintptr_t)s;	/* never written or freed */
	} else if ((c = strdup(s)) == NULL) {
		return -1;
	}
	l->owned[l->n] = (unsigned char)!is_static;
	l->v[l->n++] = c;
	return 0;
}

static int
strlist_add(strlist_t *l, const char *s)
{
	return strlist_push(l, s, 0);
}

/* A schema path or rule id that outlives the decision's use of it: schema
 * paths are static; rule ids live as long as the policy, which may not, so
 * only schema paths go through here. */
static int
strlist_add_path(strlist_t *l, const char *schema_path)
{
	return strlist_push(l, schema_path, 1);
}

/* An explanation line, unless the caller asked for none. */
static int explain_addf(policy_decision_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
explain_addf(policy_decision_t *d, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (d->quiet)
		return 0;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return strlist_add(&d->explain, line);
}

static void
rule_clear(rule_t *r)
{
	size_t i, j;

	free(r->id);
	free(r->description);
	strset_free(&r->agency_types);
	strset_free(&r->caller_areas);
	strset_free(&r->managing_areas);
	strset_free(&r->clearance);
	strset_free(&r->unless_clearance);
	for (i = 0; i < r->nsel; i++) {
		for (j = 0; j < r->sel[i].nwhere; j++)
			strset_free(&r->sel[i].where[j].values);
		free(r->sel[i].where);
	}
	free(r->sel);
}

void
policy_free(policy_t *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nrules; i++)
		rule_clear(&p->rules[i]);
	free(p->rules);
	free(p->name);
	free(p);
}

const char *
policy_hash_hex(const policy_t *p)
{
	return p ? p->hash : NULL;
}

size_t
policy_rule_count(const policy_t *p)
{
	return p ? p->nrules : 0;
}

const char *
policy_name(const policy_t *p)
{
	return p && p->name ? p->name : "";
}

/* ---- loading ---- */

typedef struct {
	char *err;
	size_t errlen;
	char where[96];		/* `rule "x"` or `rules[3]` */
} lctx_t;

static int lerr(lctx_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
lerr(lctx_t *l, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (l->errlen == 0)
		return -1;
	if (l->where[0])
		n = snprintf(l->err, l->errlen, "%s: ", l->where);
	if (n < 0 || (size_t)n >= l->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
valid_rule_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' ||
		    s[i] == '.'))
			return 0;
	return 1;
}

static int
label_ok(const char *s)
{
	return identity_valid_label(s, strlen(s));
}

/* Read an array of strings into set, each checked by ok (NULL: any
 * non-empty string up to 64 bytes).  what names the key for errors. */
static int
load_strset(lctx_t *l, const cJSON *v, const char *what, int (*ok)(const char *),
    const char *expect, strset_t *set)
{
	const cJSON *e;
	size_t n, i = 0;

	if (!cJSON_IsArray(v))
		return lerr(l, "%s: not an array", what);
	n = (size_t)cJSON_GetArraySize(v);
	if (n == 0)
		return lerr(l, "%s: empty list (leave the key out to mean any)", what);
	if (n > LIST_MAX)
		return lerr(l, "%s: more than %d entries", what, LIST_MAX);
	if ((set->v = calloc(n, sizeof(char *))) == NULL)
		return lerr(l, "out of memory");
	cJSON_ArrayForEach(e, v) {
		if (!cJSON_IsString(e) || e->valuestring == NULL)
			return lerr(l, "%s[%zu]: not a string", what, i);
		if (ok != NULL ? !ok(e->valuestring) :
		    (e->valuestring[0] == '\0' || strlen(e->valuestring) > 64))
			return lerr(l, "%s[%zu]: \"%s\" is not %s", what, i,
			    e->valuestring, expect);
		if (strset_has(set, e->valuestring))
			return lerr(l, "%s[%zu]: \"%s\" listed twice", what, i,
			    e->valuestring);
		if ((set->v[set->n] = strdup(e->valuestring)) == NULL)
			return lerr(l, "out of memory");
		set->n++;
		i++;
	}
	return 0;
}

static int
area_or_local(const char *s)
{
	return strcmp(s, "@local") == 0 || label_ok(s);
}

static int
kind_ok(const char *s)
{
	return strcmp(s, "agency") == 0 || strcmp(s, "gateway") == 0 ||
	    strcmp(s, "auditor") == 0;
}

static int
load_intmask(lctx_t *l, const cJSON *v, const char *what, int max, unsigned *mask)
{
	const cJSON *e;
	size_t i = 0;
	int k;

	if (!cJSON_IsArray(v))
		return lerr(l, "%s: not an array", what);
	if (cJSON_GetArraySize(v) == 0)
		return lerr(l, "%s: empty list (leave the key out to mean any)", what);
	cJSON_ArrayForEach(e, v) {
		/* range first: converting an out-of-range double is undefined */
		if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > max ||
		    e->valuedouble != floor(e->valuedouble))
			return lerr(l, "%s[%zu]: not an integer 1..%d", what, i, max);
		k = (int)e->valuedouble;
		if (*mask & (1u << k))
			return lerr(l, "%s[%zu]: %d listed twice", what, i, k);
		*mask |= 1u << k;
		i++;
	}
	return 0;
}

static int
load_when(lctx_t *l, rule_t *r, const cJSON *when)
{
	const cJSON *m;
	strset_t tmp = { NULL, 0 };
	size_t i;

	if (!cJSON_IsObject(when))
		return lerr(l, "when: not an object");
	cJSON_ArrayForEach(m, when) {
		const char *k = m->string;

		if (strcmp(k, "caller_kind") == 0) {
			GUARD(load_strset(l, m, "when.caller_kind", kind_ok,
			    "agency, gateway or auditor", &tmp), err);
			for (i = 0; i < tmp.n; i++)
				r->caller_kinds |= 1u << (strcmp(tmp.v[i], "agency") == 0 ?
				    IDENTITY_AGENCY : strcmp(tmp.v[i], "gateway") == 0 ?
				    IDENTITY_GATEWAY : IDENTITY_AUDITOR);
			strset_free(&tmp);
		} else if (strcmp(k, "agency_type") == 0) {
			GUARD(load_strset(l, m, "when.agency_type",
			    identity_is_agency_type, "an agency type of SPEC section 3",
			    &r->agency_types), err);
		} else if (strcmp(k, "caller_area") == 0) {
			GUARD(load_strset(l, m, "when.caller_area", area_or_local,
			    "an area name or \"@local\"", &r->caller_areas), err);
		} else if (strcmp(k, "managing_area") == 0) {
			GUARD(load_strset(l, m, "when.managing_area", area_or_local,
			    "an area name or \"@local\"", &r->managing_areas), err);
		} else if (strcmp(k, "category") == 0) {
			GUARD(load_intmask(l, m, "when.category", 4, &r->categories), err);
		} else if (strcmp(k, "level") == 0) {
			GUARD(load_intmask(l, m, "when.level", 3, &r->levels), err);
		} else if (strcmp(k, "purpose") == 0) {
			GUARD(load_strset(l, m, "when.purpose", policy_purpose_valid,
			    "a purpose of SPEC section 5", &tmp), err);
			for (i = 0; i < tmp.n; i++)
				r->purposes |= 1u << purpose_index(tmp.v[i]);
			strset_free(&tmp);
		} else if (strcmp(k, "clearance") == 0) {
			GUARD(load_strset(l, m, "when.clearance", label_ok,
			    "a clearance name ([a-z0-9-]{1,32})", &r->clearance), err);
		} else if (strcmp(k, "unless_clearance") == 0) {
			GUARD(load_strset(l, m, "when.unless_clearance", label_ok,
			    "a clearance name ([a-z0-9-]{1,32})", &r->unless_clearance), err);
		} else if (strcmp(k, "valid_until") == 0) {
			if (!cJSON_IsString(m) || !record_date_valid(m->valuestring))
				return lerr(l, "when.valid_until: not a date (YYYY-MM-DD)");
			memcpy(r->valid_until, m->valuestring, 11);
		} else {
			return lerr(l, "when.%s: unknown condition", k);
		}
	}
	return 0;
err:
	strset_free(&tmp);
	return -1;
}

/* Resolve a selector string: a group name (several top-level fields) or a
 * schema path.  Adds selectors to r. */
static int
add_selector(lctx_t *l, rule_t *r, int node, size_t idx)
{
	selector_t *s;

	if (r->nsel >= SELECTORS_MAX)
		return lerr(l, "fields[%zu]: more than %d field selectors", idx,
		    SELECTORS_MAX);
	s = &r->sel[r->nsel++];
	memset(s, 0, sizeof(*s));
	s->node = node;
	s->array_node = -1;
	return 0;
}

static int
load_where(lctx_t *l, const policy_t *p, selector_t *s, const cJSON *w, size_t idx)
{
	const cJSON *m, *e;
	char path[160], what[64];
	int a, f;
	size_t n;

	if (!cJSON_IsObject(w) || cJSON_GetArraySize(w) == 0)
		return lerr(l, "fields[%zu].where: not a non-empty object", idx);
	/* The array whose elements are tested: the selector itself or its
	 * nearest array ancestor. */
	for (a = s->node; a >= 0 && p->fields[a].type != RECORD_T_ARRAY_OBJ;
	    a = p->fields[a].parent)
		;
	if (a < 0)
		return lerr(l, "fields[%zu].where: \"%s\" is not inside an array of "
		    "objects", idx, p->fields[s->node].path);
	s->array_node = a;
	n = (size_t)cJSON_GetArraySize(w);
	if ((s->where = calloc(n, sizeof(*s->where))) == NULL)
		return lerr(l, "out of memory");
	cJSON_ArrayForEach(m, w) {
		snprintf(path, sizeof(path), "%s[].%s", p->fields[a].path, m->string);
		f = record_field_find(path);
		if (f < 0 || p->fields[f].parent != a || !p->is_leaf[f] ||
		    p->fields[f].type == RECORD_T_ARRAY_TEXT ||
		    p->fields[f].type == RECORD_T_BOOL ||
		    p->fields[f].type == RECORD_T_INT_VERSION)
			return lerr(l, "fields[%zu].where.%s: \"%s\" is not a text "
			    "field of the elements of %s", idx, m->string, path,
			    p->fields[a].path);
		/* The tested member must pass with the element, or the
		 * recipient could not filter what it received the same way
		 * (filtering must be idempotent). */
		if (!record_field_covers((size_t)s->node, (size_t)f))
			return lerr(l, "fields[%zu].where.%s: the field tested must be "
			    "selected too (select %s, not %s)", idx, m->string,
			    p->fields[a].path, p->fields[s->node].path);
		s->where[s->nwhere].node = f;
		s->nwhere++;
		snprintf(what, sizeof(what), "fields[%zu].where.%s", idx, m->string);
		if (cJSON_IsString(m)) {
			strset_t *vs = &s->where[s->nwhere - 1].values;

			if ((vs->v = calloc(1, sizeof(char *))) == NULL ||
			    (vs->v[0] = strdup(m->valuestring)) == NULL)
				return lerr(l, "out of memory");
			vs->n = 1;
		} else {
			GUARD(load_strset(l, m, what, NULL, "a non-empty string",
			    &s->where[s->nwhere - 1].values), err);
		}
		/* A value the field cannot hold matches no element: a
		 * misspelt "police_only" in a forbid would forbid nothing
		 * while reading as if it did. */
		if (cJSON_IsString(m) && !record_value_valid((size_t)f, m))
			return lerr(l, "%s: \"%s\" is not a value %s can hold",
			    what, m->valuestring, path);
		n = 0;
		if (cJSON_IsArray(m)) {
			cJSON_ArrayForEach(e, m) {
				if (!record_value_valid((size_t)f, e))
					return lerr(l, "%s[%zu]: \"%s\" is not a "
					    "value %s can hold", what, n,
					    e->valuestring, path);
				n++;
			}
		}
	}
	return 0;
err:
	return -1;
}

/* A field path, also accepting "x[]" for the array field x. */
static int
selector_field(const char *path)
{
	char tmp[160];
	size_t n = strlen(path);
	int node;

	if (n > 2 && n < sizeof(tmp) && strcmp(path + n - 2, "[]") == 0) {
		memcpy(tmp, path, n - 2);
		tmp[n - 2] = '\0';
		node = record_field_find(tmp);
		if (node >= 0 && record_fields(&n)[node].type == RECORD_T_ARRAY_OBJ)
			return node;
		return -1;
	}
	return record_field_find(path);
}

static int
load_fields(lctx_t *l, const policy_t *p, rule_t *r, const cJSON *fv)
{
	const cJSON *e, *path, *m;
	size_t i = 0, f, before;
	int node, g;

	if (!cJSON_IsArray(fv) || cJSON_GetArraySize(fv) == 0)
		return lerr(l, "fields: not a non-empty array");
	if ((r->sel = calloc(SELECTORS_MAX, sizeof(*r->sel))) == NULL)
		return lerr(l, "out of memory");
	r->has_fields = 1;
	cJSON_ArrayForEach(e, fv) {
		path = e;
		if (cJSON_IsObject(e)) {
			cJSON_ArrayForEach(m, e)
				if (strcmp(m->string, "path") != 0 &&
				    strcmp(m->string, "where") != 0)
					return lerr(l, "fields[%zu].%s: unknown key "
					    "(expected path, where)", i, m->string);
			path = cJSON_GetObjectItemCaseSensitive(e, "path");
			if (path == NULL)
				return lerr(l, "fields[%zu]: missing \"path\"", i);
		}
		if (!cJSON_IsString(path))
			return lerr(l, "fields[%zu]: not a field path, group or "
			    "{\"path\",\"where\"} object", i);
		before = r->nsel;
		node = selector_field(path->valuestring);
		g = record_group_from_name(path->valuestring);
		if (g >= 0 && node < 0 && cJSON_IsObject(e))
			return lerr(l, "fields[%zu]: \"where\" needs a field path, "
			    "not the group \"%s\"", i, path->valuestring);
		if (g >= 0 && !cJSON_IsObject(e)) {
			/* A bare name that is both a group and a field
			 * ("intelligence") means the group; "intelligence[]"
			 * names the field. */
			for (f = 0; f < p->nfields; f++)
				if (p->fields[f].parent == -1 &&
				    (int)p->fields[f].group == g)
					GUARD(add_selector(l, r, (int)f, i), err);
		} else if (node >= 0) {
			GUARD(add_selector(l, r, node, i), err);
		} else {
			return lerr(l, "fields[%zu]: unknown field or group \"%s\"",
			    i, path->valuestring);
		}
		if (cJSON_IsObject(e)) {
			m = cJSON_GetObjectItemCaseSensitive(e, "where");
			if (m != NULL)
				GUARD(load_where(l, p, &r->sel[before], m, i), err);
		}
		i++;
	}
	return 0;
err:
	return -1;
}

static int
load_transform(lctx_t *l, const policy_t *p, rule_t *r, const cJSON *tv)
{
	unsigned char direct[FIELDS_MAX];
	const cJSON *m;
	size_t f, k;
	int node, t, a, covered;

	memset(direct, 0, sizeof(direct));
	if (!cJSON_IsObject(tv))
		return lerr(l, "transform: not an object of field path to transform");
	cJSON_ArrayForEach(m, tv) {
		if ((node = record_field_find(m->string)) < 0)
			return lerr(l, "transform.%s: unknown field", m->string);
		t = -1;
		if (cJSON_IsString(m))
			for (k = 1; k < ARRAY_LEN(transform_names); k++)
				if (strcmp(m->valuestring, transform_names[k]) == 0)
					t = (int)k;
		if (t < 0)
			return lerr(l, "transform.%s: not one of drop, date-to-year, "
			    "postcode-to-district", m->string);
		if (t == TR_DATE_TO_YEAR && p->fields[node].type != RECORD_T_DATE &&
		    p->fields[node].type != RECORD_T_DATE_OR_INDEFINITE)
			return lerr(l, "transform.%s: date-to-year needs a date field",
			    m->string);
		if (t == TR_POSTCODE_TO_DISTRICT &&
		    p->fields[node].type != RECORD_T_POSTCODE)
			return lerr(l, "transform.%s: postcode-to-district needs a "
			    "postcode field", m->string);
		/* Evaluation passes core fields whole to every permitted
		 * reader: a transform of one would load and do nothing. */
		if (p->fields[node].group == RECORD_GROUP_CORE)
			return lerr(l, "transform.%s: core fields always pass whole "
			    "to a permitted reader", m->string);
		covered = 0;
		for (k = 0; k < r->nsel; k++)
			if (record_field_covers((size_t)r->sel[k].node, (size_t)node))
				covered = 1;
		if (!covered)
			return lerr(l, "transform.%s: not among the rule's fields",
			    m->string);
		direct[node] = (unsigned char)t;
	}
	/* Each field takes the transform of itself or its nearest ancestor. */
	for (f = 0; f < p->nfields; f++)
		for (a = (int)f; a >= 0; a = p->fields[a].parent)
			if (direct[a] != TR_NONE) {
				r->transform[f] = direct[a];
				break;
			}
	return 0;
}

static int
load_rule(lctx_t *l, const policy_t *p, rule_t *r, const cJSON *rv, size_t idx)
{
	const cJSON *m, *id, *e;
	size_t f, k;
	int op, core;

	snprintf(l->where, sizeof(l->where), "rules[%zu]", idx);
	if (!cJSON_IsObject(rv))
		return lerr(l, "not an object");
	id = cJSON_GetObjectItemCaseSensitive(rv, "id");
	if (id == NULL)
		return lerr(l, "missing \"id\"");
	if (!cJSON_IsString(id) || !valid_rule_id(id->valuestring))
		return lerr(l, "id: not 1-%d letters, digits, '-', '_' or '.'", ID_MAX);
	snprintf(l->where, sizeof(l->where), "rule \"%s\"", id->valuestring);
	GUARD_PTR(r->id = strdup(id->valuestring), oom);
	cJSON_ArrayForEach(m, rv) {
		const char *k2 = m->string;

		if (strcmp(k2, "id") != 0 && strcmp(k2, "description") != 0 &&
		    strcmp(k2, "effect") != 0 && strcmp(k2, "ops") != 0 &&
		    strcmp(k2, "when") != 0 && strcmp(k2, "fields") != 0 &&
		    strcmp(k2, "transform") != 0)
			return lerr(l, "%s: unknown key (expected id, description, "
			    "effect, ops, when, fields, transform)", k2);
	}
	m = cJSON_GetObjectItemCaseSensitive(rv, "description");
	if (m != NULL) {
		if (!cJSON_IsString(m) || strlen(m->valuestring) > TEXT_MAX)
			return lerr(l, "description: not a string of at most %d bytes",
			    TEXT_MAX);
		GUARD_PTR(r->description = strdup(m->valuestring), oom);
	}
	m = cJSON_GetObjectItemCaseSensitive(rv, "effect");
	if (m == NULL)
		return lerr(l, "missing \"effect\"");
	if (!cJSON_IsString(m) || (strcmp(m->valuestring, "permit") != 0 &&
	    strcmp(m->valuestring, "forbid") != 0))
		return lerr(l, "effect: not \"permit\" or \"forbid\"");
	r->forbid = strcmp(m->valuestring, "forbid") == 0;
	m = cJSON_GetObjectItemCaseSensitive(rv, "ops");
	if (m == NULL)
		return lerr(l, "missing \"ops\"");
	if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) == 0)
		return lerr(l, "ops: not a non-empty array");
	k = 0;
	cJSON_ArrayForEach(e, m) {
		if (!cJSON_IsString(e) || (op = policy_op_from_name(e->valuestring)) < 0)
			return lerr(l, "ops[%zu]: not one of read, write, erase, "
			    "transfer, ingress, initiate-transfer", k);
		if (r->ops & (1u << op))
			return lerr(l, "ops[%zu]: \"%s\" listed twice", k, e->valuestring);
		r->ops |= 1u << op;
		k++;
	}
	if ((r->ops & OPS_FIELD) && (r->ops & ~OPS_FIELD))
		return lerr(l, "ops: erase and initiate-transfer apply to whole "
		    "records and cannot share a rule with field operations");
	m = cJSON_GetObjectItemCaseSensitive(rv, "when");
	if (m != NULL)
		GUARD(load_when(l, r, m), err);
	m = cJSON_GetObjectItemCaseSensitive(rv, "fields");
	if (m != NULL) {
		if (!(r->ops & OPS_FIELD))
			return lerr(l, "fields: erase and initiate-transfer rules "
			    "apply to whole records and take no fields");
		GUARD(load_fields(l, p, r, m), err);
	} else if (!r->forbid && (r->ops & OPS_FIELD)) {
		return lerr(l, "missing \"fields\" (a permit must name what it "
		    "permits)");
	}
	for (k = 0; k < r->nsel; k++) {
		for (f = 0; f < p->nfields; f++)
			if (record_field_covers((size_t)r->sel[k].node, f))
				r->cover[f] |= (uint64_t)1 << k;
		if (r->sel[k].nwhere > 0 && (r->ops & ~OPS_FILTER))
			return lerr(l, "fields: \"where\" applies to read, transfer "
			    "and ingress only");
	}
	if (r->forbid && (r->ops & OPS_FILTER)) {
		core = 0;
		for (f = 0; f < p->nfields; f++)
			if (p->fields[f].group == RECORD_GROUP_CORE && r->cover[f])
				core = 1;
		if (core)
			return lerr(l, "fields: core fields always pass to a permitted "
			    "reader; forbid the whole operation (no \"fields\") instead");
	}
	m = cJSON_GetObjectItemCaseSensitive(rv, "transform");
	if (m != NULL) {
		if (r->forbid)
			return lerr(l, "transform: only a permit can transform");
		if (r->ops & ~OPS_FILTER)
			return lerr(l, "transform: applies to read, transfer and "
			    "ingress only");
		GUARD(load_transform(l, p, r, m), err);
	}
	return 0;
oom:
	return lerr(l, "out of memory");
err:
	return -1;
}

static int
rule_cmp(const void *a, const void *b)
{
	return strcmp(((const rule_t *)a)->id, ((const rule_t *)b)->id);
}

policy_t *
policy_load(const char *json, size_t len, char *err, size_t errlen)
{
	policy_t *p = NULL;
	cJSON *root = NULL;
	const cJSON *m, *rules, *rv;
	char perr[128], dummy[1];
	lctx_t l;
	size_t i, f;

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	memset(&l, 0, sizeof(l));
	l.err = err;
	l.errlen = errlen;
	err[0] = '\0';
	if (json == NULL) {
		lerr(&l, "no policy text");
		return NULL;
	}
	if (len > POLICY_FILE_MAX) {
		lerr(&l, "policy larger than %d bytes", POLICY_FILE_MAX);
		return NULL;
	}
	if ((root = json_parse_strict(json, len, POLICY_DEPTH, perr, sizeof(perr))) == NULL) {
		lerr(&l, "not valid JSON: %s", perr);
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		lerr(&l, "out of memory");
		goto err;
	}
	p->fields = record_fields(&p->nfields);
	if (p->nfields > FIELDS_MAX) {
		lerr(&l, "schema larger than the policy engine supports");
		goto err;
	}
	for (f = 0; f < p->nfields; f++)
		p->is_leaf[f] = (unsigned char)record_field_is_leaf(f);
	for (f = 0; f <= p->nfields; f++)
		p->first_child[f] = -1;
	for (f = p->nfields; f-- > 0;) {
		p->next_sibling[f] = p->first_child[p->fields[f].parent + 1];
		p->first_child[p->fields[f].parent + 1] = (int)f;
	}
	sha256_hex(json, len, p->hash);
	if (!cJSON_IsObject(root)) {
		lerr(&l, "policy: not a JSON object");
		goto err;
	}
	cJSON_ArrayForEach(m, root) {
		if (strcmp(m->string, "format") != 0 && strcmp(m->string, "name") != 0 &&
		    strcmp(m->string, "description") != 0 &&
		    strcmp(m->string, "rules") != 0) {
			lerr(&l, "%s: unknown key (expected format, name, description, "
			    "rules)", m->string);
			goto err;
		}
	}
	m = cJSON_GetObjectItemCaseSensitive(root, "format");
	if (m == NULL || !cJSON_IsString(m) || strcmp(m->valuestring, "visor-policy/1") != 0) {
		lerr(&l, "format: must be \"visor-policy/1\"");
		goto err;
	}
	m = cJSON_GetObjectItemCaseSensitive(root, "name");
	if (m != NULL) {
		if (!cJSON_IsString(m) || strlen(m->valuestring) > TEXT_MAX) {
			lerr(&l, "name: not a string of at most %d bytes", TEXT_MAX);
			goto err;
		}
		if ((p->name = strdup(m->valuestring)) == NULL) {
			lerr(&l, "out of memory");
			goto err;
		}
	}
	m = cJSON_GetObjectItemCaseSensitive(root, "description");
	if (m != NULL && (!cJSON_IsString(m) || strlen(m->valuestring) > TEXT_MAX * 4)) {
		lerr(&l, "description: not a string of at most %d bytes", TEXT_MAX * 4);
		goto err;
	}
	rules = cJSON_GetObjectItemCaseSensitive(root, "rules");
	if (!cJSON_IsArray(rules)) {
		lerr(&l, "rules: missing or not an array");
		goto err;
	}
	if (cJSON_GetArraySize(rules) > POLICY_RULES_MAX) {
		lerr(&l, "rules: more than %d rules", POLICY_RULES_MAX);
		goto err;
	}
	if (cJSON_GetArraySize(rules) > 0 &&
	    (p->rules = calloc((size_t)cJSON_GetArraySize(rules), sizeof(rule_t))) == NULL) {
		lerr(&l, "out of memory");
		goto err;
	}
	i = 0;
	cJSON_ArrayForEach(rv, rules) {
		p->nrules = i + 1;
		if (load_rule(&l, p, &p->rules[i], rv, i) < 0)
			goto err;
		for (f = 0; f < i; f++)
			if (strcmp(p->rules[f].id, p->rules[i].id) == 0) {
				lerr(&l, "id: used by another rule too");
				goto err;
			}
		i++;
	}
	if (p->nrules > 1)
		qsort(p->rules, p->nrules, sizeof(rule_t), rule_cmp);
	cJSON_Delete(root);
	return p;
err:
	cJSON_Delete(root);
	policy_free(p);
	return NULL;
}

/* ---- evaluation ---- */

typedef enum {
	OUT_PASS,
	OUT_TRANSFORM,
	OUT_WITHHELD
} outcome_t;

/* Why a value was withheld. */
enum {
	WHY_NONE = -1,		/* no permit names it */
	WHY_MIXED = -2		/* aggregated over values with differing reasons */
};
#define WHY_UNFIT 2		/* why_drop: no reduced form (transform_value) */

typedef struct {
	int pass, trans, with;
	int pass_rule;		/* a permit that passed a value whole; -1 core */
	int trans_rule, trans_kind;
	int why_rule;		/* forbid/drop rule index, WHY_NONE, WHY_MIXED */
	int why_drop;		/* 1 if why_rule dropped by transform,
				   WHY_UNFIT if its transform could not
				   reduce the value */
	int seen_with;
} nstat_t;

typedef struct {
	int node;		/* leaf, or an ARRAY_OBJ for a whole element */
	int index;
	int why_rule, why_drop;
} inst_t;

typedef struct {
	const policy_t *p;
	const policy_request_t *req;
	const rule_t **permits;
	size_t npermits;
	const rule_t **forbids;
	size_t nforbids;
	unsigned char *used;	/* per rule index */
	const cJSON *elem[FIELDS_MAX];	/* current element of each array */
	int cur_array, cur_index;
	nstat_t st[FIELDS_MAX];
	inst_t *inst;
	size_t ninst, capinst;
	int noncore_pass;
	int oom;		/* memory ran short */
	int bad;		/* the record does not fit the schema */
} eval_t;

static int
has_clearance(const policy_request_t *req, const char *c)
{
	size_t i;

	for (i = 0; i < req->n_clearances; i++)
		if (req->clearances[i] != NULL && strcmp(req->clearances[i], c) == 0)
			return 1;
	return 0;
}

static int
area_match(const strset_t *s, const char *area, const char *local)
{
	size_t i;

	if (area == NULL)
		return 0;
	for (i = 0; i < s->n; i++) {
		if (strcmp(s->v[i], "@local") == 0) {
			if (local != NULL && strcmp(local, area) == 0)
				return 1;
		} else if (strcmp(s->v[i], area) == 0) {
			return 1;
		}
	}
	return 0;
}

static int
rule_applies(const rule_t *r, const policy_request_t *req, const char *marea,
    int category, int level)
{
	const identity_t *c = req->caller;
	size_t i;
	int pi, lacks;

	if (!(r->ops & (1u << req->op)))
		return 0;
	if (r->caller_kinds && !(r->caller_kinds & (1u << c->kind)))
		return 0;
	if (r->agency_types.n &&
	    (c->kind != IDENTITY_AGENCY || !strset_has(&r->agency_types, c->type)))
		return 0;
	if (r->caller_areas.n && !area_match(&r->caller_areas, c->area, req->local_area))
		return 0;
	if (r->managing_areas.n && !area_match(&r->managing_areas, marea, req->local_area))
		return 0;
	if (r->categories && !(r->categories & (1u << category)))
		return 0;
	if (r->levels && !(r->levels & (1u << level)))
		return 0;
	if (r->purposes) {
		pi = purpose_index(req->purpose);
		if (pi < 0 || !(r->purposes & (1u << pi)))
			return 0;
	}
	for (i = 0; i < r->clearance.n; i++)
		if (!has_clearance(req, r->clearance.v[i]))
			return 0;
	if (r->unless_clearance.n) {
		lacks = 0;
		for (i = 0; i < r->unless_clearance.n; i++)
			if (!has_clearance(req, r->unless_clearance.v[i]))
				lacks = 1;
		if (!lacks)
			return 0;
	}
	if (r->valid_until[0] && strcmp(req->today, r->valid_until) > 0)
		return 0;
	return 1;
}

/* Core fields of the record, checked because conditions depend on them. */
static int
record_core(const cJSON *rec, const char **marea, int *category, int *level)
{
	const cJSON *m;
	int64_t v;

	if (!cJSON_IsObject(rec))
		return -1;
	m = cJSON_GetObjectItemCaseSensitive(rec, "managing_area");
	if (!cJSON_IsString(m) || !label_ok(m->valuestring))
		return -1;
	*marea = m->valuestring;
	if (json_get_int(rec, "category", 1, 4, &v) != 0)
		return -1;
	*category = (int)v;
	if (json_get_int(rec, "level", 1, 3, &v) != 0)
		return -1;
	*level = (int)v;
	return 0;
}

static int
request_ok(const policy_t *p, const policy_request_t *req, const cJSON *record,
    policy_decision_t **out)
{
	if (out != NULL)
		*out = NULL;
	return p != NULL && req != NULL && record != NULL && out != NULL &&
	    req->caller != NULL && req->today != NULL &&
	    record_date_valid(req->today) && (req->clearances != NULL ||
	    req->n_clearances == 0);
}

static void
eval_free(eval_t *e)
{
	free(e->permits);
	free(e->forbids);
	free(e->used);
	free(e->inst);
}

/*
 * SPEC 7: "Category 4 records are visible only to callers holding the
 * clearance ct, whatever the table says", and go only to a gateway holding
 * ct.  The default policy says so with forbids; this holds whatever the
 * file says, so that a policy that leaves those forbids out, narrows them
 * (a purpose, a valid_until) or is written from scratch cannot open a
 * terrorism case to a caller without ct.  Its id cannot be a rule's (':').
 */
#define CT_CLEARANCE "ct"
#define BUILTIN_CAT4_ID "builtin:category4-needs-ct"
#define WHOLE_BUILTIN_CAT4 (-3)

/* Select the applicable rules.  Returns the index of an applicable forbid
 * with no fields (the whole operation refused), WHOLE_BUILTIN_CAT4 when
 * none does but the built-in category 4 rule refuses the operation, -1 if
 * neither, -2 on error. */
static int
eval_init(eval_t *e, const policy_t *p, const policy_request_t *req,
    const cJSON *record)
{
	const char *marea;
	int category, level, whole = -1;
	size_t i;

	memset(e, 0, sizeof(*e));
	e->p = p;
	e->req = req;
	e->cur_array = -1;
	if (record_core(record, &marea, &category, &level) < 0)
		return -2;
	if (p->nrules > 0) {
		e->permits = calloc(p->nrules, sizeof(*e->permits));
		e->forbids = calloc(p->nrules, sizeof(*e->forbids));
		e->used = calloc(p->nrules, 1);
		if (e->permits == NULL || e->forbids == NULL || e->used == NULL)
			return -2;
	}
	for (i = 0; i < p->nrules; i++) {
		const rule_t *r = &p->rules[i];

		if (!rule_applies(r, req, marea, category, level))
			continue;
		if (r->forbid) {
			if (!r->has_fields) {
				if (whole < 0)
					whole = (int)i;
			} else {
				e->forbids[e->nforbids++] = r;
			}
		} else {
			e->permits[e->npermits++] = r;
		}
	}
	if (whole < 0 && category == 4 && (req->op == POLICY_OP_READ ||
	    req->op == POLICY_OP_TRANSFER) && !has_clearance(req, CT_CLEARANCE))
		whole = WHOLE_BUILTIN_CAT4;
	return whole;
}

static int
sel_match(const eval_t *e, const rule_t *r, int node)
{
	uint64_t mask = r->cover[node];
	const selector_t *s;
	const cJSON *el, *v;
	size_t k, w;
	int ok;

	for (k = 0; mask != 0; k++, mask >>= 1) {
		if (!(mask & 1))
			continue;
		s = &r->sel[k];
		if (s->nwhere == 0)
			return 1;
		el = e->elem[s->array_node];
		if (el == NULL)
			continue;
		/* An element that lacks a member tested cannot be shown to
		 * be outside a forbid's selection, so a forbid takes it; a
		 * permit passes only elements shown to be inside its own. */
		ok = 1;
		for (w = 0; w < s->nwhere && ok; w++) {
			v = cJSON_GetObjectItemCaseSensitive(el,
			    e->p->fields[s->where[w].node].name);
			ok = cJSON_IsString(v) ? strset_has(&s->where[w].values,
			    v->valuestring) : r->forbid;
		}
		if (ok)
			return 1;
	}
	return 0;
}

static size_t
rule_index(const eval_t *e, const rule_t *r)
{
	return (size_t)(r - e->p->rules);
}

/* Decide one value of leaf field node. */
static outcome_t
eval_leaf(eval_t *e, int node, int *rule, int *kind)
{
	int drop = -1, trans = -1, tkind = TR_NONE;
	size_t i;

	*rule = -1;
	*kind = TR_NONE;
	if (e->p->fields[node].group == RECORD_GROUP_CORE &&
	    e->req->op != POLICY_OP_WRITE)
		return OUT_PASS;
	for (i = 0; i < e->nforbids; i++)
		if (sel_match(e, e->forbids[i], node)) {
			*rule = (int)rule_index(e, e->forbids[i]);
			return OUT_WITHHELD;
		}
	for (i = 0; i < e->npermits; i++) {
		const rule_t *r = e->permits[i];
		int t;

		if (!sel_match(e, r, node))
			continue;
		t = r->transform[node];
		if (t == TR_NONE) {
			*rule = (int)rule_index(e, r);
			return OUT_PASS;
		}
		if (t == TR_DROP) {
			if (drop < 0)
				drop = (int)rule_index(e, r);
		} else if (trans < 0) {
			trans = (int)rule_index(e, r);
			tkind = t;
		}
	}
	if (trans >= 0) {
		*rule = trans;
		*kind = tkind;
		return OUT_TRANSFORM;
	}
	if (drop >= 0) {
		*rule = drop;
		*kind = TR_DROP;
		return OUT_WITHHELD;
	}
	return OUT_WITHHELD;	/* rule -1: nothing permits it */
}

/* The reduced form of v, or NULL: with *unfit set when v has none (it
 * is not a string of the shape the transform reduces), else when memory
 * ran short.  A value of another shape is withheld, never passed whole or
 * cut blindly: the first four bytes of "19-07-1984" are a day and part of
 * a month, and a two-character "84" would pass whole.  The reduced forms
 * themselves reduce to themselves, so that filtering is idempotent. */
static cJSON *
transform_value(const cJSON *v, int kind, int *unfit)
{
	char tmp[16];
	const char *s;
	size_t n;

	*unfit = 0;
	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		*unfit = 1;
		return NULL;
	}
	s = v->valuestring;
	if (kind == TR_DATE_TO_YEAR) {
		/* a date; a year alone (filtered before); "indefinite" (a
		 * notification without end, which says no more reduced) */
		if (strcmp(s, "indefinite") == 0)
			return cJSON_CreateString(s);
		if (record_date_valid(s)) {
			memcpy(tmp, s, 4);
		} else if (strlen(s) == 4) {
			snprintf(tmp, sizeof(tmp), "%s-01-01", s);
			if (!record_date_valid(tmp)) {
				*unfit = 1;
				return NULL;
			}
		} else {
			*unfit = 1;
			return NULL;
		}
		tmp[4] = '\0';
		return cJSON_CreateString(tmp);
	}
	/* postcode-to-district: the outward code.  A value that is neither a
	 * postcode nor a district (stored before the schema checked the
	 * shape whole) keeps only its leading letters, the postcode area
	 * (NR): never more than a district, whatever it holds; one with no
	 * leading capital letter keeps nothing. */
	if (record_postcode_district(s, tmp, sizeof(tmp)) == 0)
		return cJSON_CreateString(tmp);
	for (n = 0; n < 2 && s[n] >= 'A' && s[n] <= 'Z'; n++)
		tmp[n] = s[n];
	tmp[n] = '\0';
	if (n == 0) {
		*unfit = 1;
		return NULL;
	}
	return cJSON_CreateString(tmp);
}

static void
stat_withheld(nstat_t *st, int rule, int drop)
{
	if (!st->seen_with) {
		st->why_rule = rule;
		st->why_drop = drop;
		st->seen_with = 1;
	} else if (st->why_rule != rule || st->why_drop != drop) {
		st->why_rule = WHY_MIXED;
	}
	st->with++;
}

static int
inst_add(eval_t *e, int node, int index, int rule, int drop)
{
	inst_t *n;
	size_t cap;

	if (e->ninst == e->capinst) {
		cap = e->capinst ? e->capinst * 2 : 16;
		if ((n = realloc(e->inst, cap * sizeof(*n))) == NULL)
			return -1;
		e->inst = n;
		e->capinst = cap;
	}
	e->inst[e->ninst].node = node;
	e->inst[e->ninst].index = index;
	e->inst[e->ninst].why_rule = rule;
	e->inst[e->ninst].why_drop = drop;
	e->ninst++;
	return 0;
}

static cJSON *walk_object(eval_t *e, int node, const cJSON *obj);

/* An empty object or array (or element) at container node.  Filtering
 * leaves it out, which is all a reader needs.  Ingress stores the record
 * as it came, so there an empty field is decided as the field it is: one
 * the receiver does not take from the peer ("health": {}, or an
 * intelligence item with no handling) is withheld, and refuses the record
 * as any other withheld field does. */
static void
walk_empty(eval_t *e, int node)
{
	int rule, kind;

	if (e->req->op != POLICY_OP_INGRESS ||
	    eval_leaf(e, node, &rule, &kind) != OUT_WITHHELD)
		return;
	stat_withheld(&e->st[node], rule, kind == TR_DROP);
	if (rule >= 0)
		e->used[rule] = 1;
	if (e->cur_array >= 0 &&
	    inst_add(e, node, e->cur_index, rule, kind == TR_DROP) < 0)
		e->oom = 1;
}

/* The child of node (-1: top) named name, or -1. */
static int
child_of(const policy_t *p, int node, const char *name)
{
	int c;

	for (c = p->first_child[node + 1]; c >= 0; c = p->next_sibling[c])
		if (strcmp(p->fields[c].name, name) == 0)
			return c;
	return -1;
}

/* As child_of, trying hint first: records list their members in schema
 * order (the gateway prints what it stored), so the sibling after the
 * previous match is almost always the one. */
static int
child_of_hint(const policy_t *p, int node, const char *name, int hint)
{
	if (hint >= 0 && strcmp(p->fields[hint].name, name) == 0)
		return hint;
	return child_of(p, node, name);
}

static cJSON *
walk_value(eval_t *e, int node, const cJSON *v)
{
	const record_field_t *f = &e->p->fields[node];
	nstat_t *st = &e->st[node];
	cJSON *out = NULL, *c;
	const cJSON *el;
	int rule, kind, idx, saved_array, saved_index, unfit;
	size_t mark;
	outcome_t o;

	if (f->type == RECORD_T_OBJECT) {
		if (!cJSON_IsObject(v)) {
			e->bad = 1;
			return NULL;
		}
		if (v->child == NULL)
			walk_empty(e, node);
		return walk_object(e, node, v);
	}
	if (f->type == RECORD_T_ARRAY_OBJ) {
		if (!cJSON_IsArray(v)) {
			e->bad = 1;
			return NULL;
		}
		if (v->child == NULL)
			walk_empty(e, node);
		saved_array = e->cur_array;
		saved_index = e->cur_index;
		idx = 0;
		cJSON_ArrayForEach(el, v) {
			mark = e->ninst;
			e->elem[node] = el;
			if (saved_array < 0) {
				e->cur_array = node;
				e->cur_index = idx;
			}
			if (!cJSON_IsObject(el))
				e->bad = 1;
			else if (el->child == NULL)
				walk_empty(e, node);
			c = cJSON_IsObject(el) ? walk_object(e, node, el) : NULL;
			if (c != NULL) {
				if (out == NULL && (out = cJSON_CreateArray()) == NULL) {
					cJSON_Delete(c);
					e->oom = 1;
				} else if (!cJSON_AddItemToArray(out, c)) {
					cJSON_Delete(c);
					e->oom = 1;
				}
			} else if (e->ninst > mark && saved_array < 0) {
				/* Nothing of this element passed: name the element. */
				e->ninst = mark;
				if (inst_add(e, node, idx, 0, 0) < 0)
					e->oom = 1;
			}
			idx++;
		}
		e->elem[node] = NULL;
		e->cur_array = saved_array;
		e->cur_index = saved_index;
		return out;
	}
	o = eval_leaf(e, node, &rule, &kind);
	switch (o) {
	case OUT_PASS:
		if (st->pass++ == 0 || st->pass_rule < 0)
			st->pass_rule = rule;
		if (f->group != RECORD_GROUP_CORE)
			e->noncore_pass++;
		if ((out = cJSON_Duplicate(v, 1)) == NULL)
			e->oom = 1;
		return out;
	case OUT_TRANSFORM:
		e->used[rule] = 1;
		if ((out = transform_value(v, kind, &unfit)) == NULL) {
			if (!unfit) {
				e->oom = 1;
				return NULL;
			}
			/* No reduced form: withheld, as the rule's drop. */
			stat_withheld(st, rule, WHY_UNFIT);
			if (e->cur_array >= 0 &&
			    inst_add(e, node, e->cur_index, rule, WHY_UNFIT) < 0)
				e->oom = 1;
			return NULL;
		}
		if (st->trans++ == 0) {
			st->trans_rule = rule;
			st->trans_kind = kind;
		}
		e->noncore_pass++;
		return out;
	case OUT_WITHHELD:
		stat_withheld(st, rule, kind == TR_DROP);
		if (rule >= 0)
			e->used[rule] = 1;
		/* Mark with a non-empty instance so the enclosing element knows
		 * something of it was withheld. */
		if (e->cur_array >= 0 &&
		    inst_add(e, node, e->cur_index, rule, kind == TR_DROP) < 0)
			e->oom = 1;
		return NULL;
	}
	return NULL;
}

static cJSON *
walk_object(eval_t *e, int node, const cJSON *obj)
{
	const cJSON *m;
	cJSON *out = NULL, *c;
	int child, hint = e->p->first_child[node + 1];

	cJSON_ArrayForEach(m, obj) {
		if (m->string == NULL ||
		    (child = child_of_hint(e->p, node, m->string, hint)) < 0) {
			/* Not in the schema: the caller skipped validation. */
			e->bad = 1;
			continue;
		}
		hint = e->p->next_sibling[child];
		c = walk_value(e, child, m);
		if (c == NULL)
			continue;
		if (out == NULL && (out = cJSON_CreateObject()) == NULL) {
			cJSON_Delete(c);
			e->oom = 1;
			continue;
		}
		/* The key is the schema's own name (static, equal to
		 * m->string): no copy per member. */
		if (!cJSON_AddItemToObjectCS(out, e->p->fields[child].name, c)) {
			cJSON_Delete(c);
			e->oom = 1;
		}
	}
	return out;
}

/* Aggregated status of a field over all its values and subfields. */
typedef struct {
	int pass, trans, with;
	int pass_rule;
	int why_rule, why_drop, seen_with;
} agg_t;

static void
agg_merge(agg_t *dst, const agg_t *src)
{
	dst->pass += src->pass;
	dst->trans += src->trans;
	if (src->pass > 0 && dst->pass_rule < 0)
		dst->pass_rule = src->pass_rule;
	if (src->seen_with) {
		if (!dst->seen_with) {
			dst->why_rule = src->why_rule;
			dst->why_drop = src->why_drop;
			dst->seen_with = 1;
		} else if (dst->why_rule != src->why_rule ||
		    dst->why_drop != src->why_drop) {
			dst->why_rule = WHY_MIXED;
		}
	}
	dst->with += src->with;
}

static const char *
why_text(const eval_t *e, int rule, int drop, char *buf, size_t len)
{
	if (rule == WHY_NONE)
		return "no rule permits it";
	if (rule == WHY_MIXED)
		return "several reasons";
	snprintf(buf, len, "%s by rule %s", drop == WHY_UNFIT ?
	    "not a value its transform reduces, withheld" : drop ? "dropped" :
	    "forbidden", e->p->rules[rule].id);
	return buf;
}

/* The path of instance i: the array's path with its index, then the rest. */
static void
inst_path(const eval_t *e, const inst_t *in, char *out, size_t len)
{
	const char *path = e->p->fields[in->node].path;
	const char *br;

	if (e->p->fields[in->node].type == RECORD_T_ARRAY_OBJ) {
		snprintf(out, len, "%s[%d]", path, in->index);
		return;
	}
	/* The outermost array on the path holds the index. */
	br = strstr(path, "[]");
	if (br == NULL) {
		snprintf(out, len, "%s", path);
		return;
	}
	snprintf(out, len, "%.*s[%d]%s", (int)(br - path), path, in->index, br + 2);
}

static int
emit(eval_t *e, policy_decision_t *d, const agg_t *agg, int node)
{
	const record_field_t *f = &e->p->fields[node];
	const agg_t *a = &agg[node];
	char why[128], ip[200];
	size_t i;

	if (a->pass + a->trans + a->with == 0)
		return 0;	/* absent, or empty containers */
	if (a->with == 0 && a->trans == 0) {
		GUARD(strlist_add_path(&d->disclosed, f->path), err);
		if (a->pass_rule >= 0)
			GUARD(explain_addf(d, "%s: disclosed by rule %s",
			    f->path, e->p->rules[a->pass_rule].id), err);
		else
			GUARD(explain_addf(d, "%s: disclosed (core field)",
			    f->path), err);
		return 0;
	}
	if (a->pass == 0 && a->trans == 0 && a->why_rule != WHY_MIXED) {
		GUARD(strlist_add_path(&d->withheld, f->path), err);
		GUARD(explain_addf(d, "%s: withheld: %s", f->path,
		    why_text(e, a->why_rule, a->why_drop, why, sizeof(why))), err);
		return 0;
	}
	if (e->p->is_leaf[node]) {
		const nstat_t *st = &e->st[node];

		if (st->pass > 0 || st->trans > 0)
			GUARD(strlist_add_path(&d->disclosed, f->path), err);
		if (st->trans > 0) {
			GUARD(strlist_add_path(&d->transformed, f->path), err);
			GUARD(explain_addf(d, "%s: %s by rule %s", f->path,
			    transform_names[st->trans_kind],
			    e->p->rules[st->trans_rule].id), err);
		} else if (st->pass > 0 && st->pass_rule >= 0) {
			GUARD(explain_addf(d, "%s: disclosed by rule %s",
			    f->path, e->p->rules[st->pass_rule].id), err);
		}
		if (st->pass == 0 && st->trans == 0) {
			/* every value withheld but for mixed reasons */
			GUARD(strlist_add_path(&d->withheld, f->path), err);
			GUARD(explain_addf(d, "%s: withheld: %s", f->path,
			    why_text(e, st->why_rule, st->why_drop, why, sizeof(why))),
			    err);
			return 0;
		}
		for (i = 0; i < e->ninst; i++) {
			if (e->inst[i].node != node)
				continue;
			inst_path(e, &e->inst[i], ip, sizeof(ip));
			GUARD(strlist_add(&d->withheld, ip), err);
			GUARD(explain_addf(d, "%s: withheld: %s", ip,
			    why_text(e, e->inst[i].why_rule, e->inst[i].why_drop, why,
			    sizeof(why))), err);
		}
		return 0;
	}
	if (f->type == RECORD_T_ARRAY_OBJ) {
		for (i = 0; i < e->ninst; i++) {
			if (e->inst[i].node != node)
				continue;
			inst_path(e, &e->inst[i], ip, sizeof(ip));
			GUARD(strlist_add(&d->withheld, ip), err);
			GUARD(explain_addf(d, "%s: withheld: no field of "
			    "this element is permitted", ip), err);
		}
	}
	for (i = (size_t)node + 1; i < e->p->nfields; i++)
		if (e->p->fields[i].parent == node)
			GUARD(emit(e, d, agg, (int)i), err);
	return 0;
err:
	return -1;
}

static policy_decision_t *
decision_new(void)
{
	return calloc(1, sizeof(policy_decision_t));
}

static int
decision_rules(const eval_t *e, policy_decision_t *d)
{
	size_t i;

	for (i = 0; i < e->p->nrules; i++) {
		if (!e->used[i])
			continue;
		GUARD(strlist_add(&d->rules, e->p->rules[i].id), err);
		if (e->p->rules[i].description != NULL)
			GUARD(explain_addf(d, "rule %s: %s", e->p->rules[i].id,
			    e->p->rules[i].description), err);
	}
	return 0;
err:
	return -1;
}

static int
set_reason(policy_decision_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
set_reason(policy_decision_t *d, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	free(d->reason);
	if ((d->reason = strdup(line)) == NULL)
		return -1;
	return 0;
}

/* On refusal: nothing disclosed, and every non-core top-level field present
 * is withheld. */
static int
deny_all(const eval_t *e, policy_decision_t *d, const cJSON *record)
{
	const cJSON *m;
	int c;

	d->allowed = 0;
	cJSON_Delete(d->record);
	d->record = NULL;
	strlist_free(&d->disclosed);
	strlist_free(&d->transformed);
	strlist_free(&d->withheld);
	cJSON_ArrayForEach(m, record) {
		if (m->string == NULL || (c = child_of(e->p, -1, m->string)) < 0 ||
		    e->p->fields[c].group == RECORD_GROUP_CORE)
			continue;
		GUARD(strlist_add_path(&d->withheld, e->p->fields[c].path), err);
	}
	return 0;
err:
	return -1;
}

int
policy_filter(const policy_t *p, const policy_request_t *req,
    const cJSON *record, policy_decision_t **out)
{
	policy_decision_t *d = NULL;
	agg_t agg[FIELDS_MAX];
	const char *opn;
	eval_t e;
	int whole;
	size_t i;

	if (!request_ok(p, req, record, out) || !(OPS_FILTER & (1u << req->op)))
		return -1;
	opn = policy_op_name(req->op);
	memset(&e, 0, sizeof(e));
	if ((whole = eval_init(&e, p, req, record)) == -2)
		goto err;
	GUARD_PTR(d = decision_new(), err);
	d->quiet = req->no_explanation;
	if (whole >= 0) {
		e.used[whole] = 1;
		GUARD(deny_all(&e, d, record), err);
		GUARD(set_reason(d, "%s forbidden by rule %s", opn, p->rules[whole].id), err);
		GUARD(explain_addf(d, "%s for %s: denied: %s forbidden by "
		    "rule %s", opn, req->caller->uri, opn, p->rules[whole].id), err);
		GUARD(decision_rules(&e, d), err);
		eval_free(&e);
		*out = d;
		return 0;
	}
	if (whole == WHOLE_BUILTIN_CAT4) {
		GUARD(deny_all(&e, d, record), err);
		GUARD(set_reason(d, "%s forbidden: a category 4 record needs "
		    "clearance " CT_CLEARANCE " (built in, whatever the policy "
		    "says)", opn), err);
		GUARD(explain_addf(d, "%s for %s: denied: a category 4 record "
		    "needs clearance " CT_CLEARANCE ", which the caller does not "
		    "hold (built in: no policy rule can grant it)", opn,
		    req->caller->uri), err);
		GUARD(strlist_add(&d->rules, BUILTIN_CAT4_ID), err);
		eval_free(&e);
		*out = d;
		return 0;
	}
	if (e.npermits == 0) {
		GUARD(deny_all(&e, d, record), err);
		GUARD(set_reason(d, "no rule permits %s for this caller and purpose",
		    opn), err);
		GUARD(explain_addf(d, "%s for %s: denied: no rule permits "
		    "%s for this caller, purpose and record", opn, req->caller->uri,
		    opn), err);
		eval_free(&e);
		*out = d;
		return 0;
	}
	for (i = 0; i < p->nfields; i++)
		e.st[i].pass_rule = -1;
	d->record = walk_object(&e, -1, record);
	if (e.oom || e.bad)
		goto err;
	if (d->record == NULL)
		GUARD_PTR(d->record = cJSON_CreateObject(), err);
	/* Sum each field's values into its ancestors (parents come first). */
	memset(agg, 0, sizeof(agg));
	for (i = 0; i < p->nfields; i++) {
		agg[i].pass = e.st[i].pass;
		agg[i].trans = e.st[i].trans;
		agg[i].with = e.st[i].with;
		agg[i].pass_rule = e.st[i].pass > 0 ? e.st[i].pass_rule : -1;
		agg[i].why_rule = e.st[i].why_rule;
		agg[i].why_drop = e.st[i].why_drop;
		agg[i].seen_with = e.st[i].seen_with;
	}
	for (i = p->nfields; i-- > 0;)
		if (p->fields[i].parent >= 0)
			agg_merge(&agg[p->fields[i].parent], &agg[i]);
	for (i = 0; i < p->nfields; i++)
		if (p->fields[i].parent == -1)
			GUARD(emit(&e, d, agg, (int)i), err);
	for (i = 0; i < p->nfields; i++)
		if (e.st[i].pass > 0 && e.st[i].pass_rule >= 0)
			e.used[e.st[i].pass_rule] = 1;

	if (req->op == POLICY_OP_INGRESS) {
		if (d->withheld.n > 0 || d->transformed.n > 0) {
			for (i = 0; i < d->transformed.n; i++)
				GUARD(strlist_add(&d->withheld, d->transformed.v[i]), err);
			strlist_free(&d->disclosed);
			strlist_free(&d->transformed);
			cJSON_Delete(d->record);
			d->record = NULL;
			GUARD(set_reason(d, "ingress refused: %s is not permitted from "
			    "this sender for this purpose", d->withheld.v[0]), err);
		} else {
			d->allowed = 1;
			GUARD(set_reason(d, "ingress permitted"), err);
		}
	} else if (e.noncore_pass == 0 && d->withheld.n > 0) {
		/* Something beyond the core exists and none of it passes.  A
		 * record holding only core fields withholds nothing: a
		 * permitted reader gets its core. */
		GUARD(deny_all(&e, d, record), err);
		GUARD(set_reason(d, "no field beyond the core is permitted"), err);
	} else {
		d->allowed = 1;
		GUARD(set_reason(d, "%s permitted", opn), err);
	}
	GUARD(explain_addf(d, "%s for %s: %s: %zu disclosed, %zu withheld",
	    opn, req->caller->uri, d->allowed ? "allowed" : "denied",
	    d->disclosed.n, d->withheld.n), err);
	/* The summary reads best first. */
	if (d->explain.n > 1) {
		char *last = d->explain.v[d->explain.n - 1];

		memmove(&d->explain.v[1], &d->explain.v[0],
		    (d->explain.n - 1) * sizeof(char *));
		d->explain.v[0] = last;
	}
	if (!d->allowed && req->op != POLICY_OP_INGRESS)
		GUARD(explain_addf(d, "denied: %s", d->reason), err);
	GUARD(decision_rules(&e, d), err);
	eval_free(&e);
	*out = d;
	return 0;
err:
	eval_free(&e);
	policy_decision_free(d);
	return -1;
}

/* Some applicable permit passes every value of leaf f whole: a selector
 * without element conditions, and no transform. */
static int
leaf_permitted_whole(const eval_t *e, size_t f)
{
	const rule_t *r;
	uint64_t mask;
	size_t i, k;

	for (i = 0; i < e->npermits; i++) {
		r = e->permits[i];
		if (r->transform[f] != TR_NONE)
			continue;
		for (mask = r->cover[f], k = 0; mask != 0; k++, mask >>= 1)
			if ((mask & 1) && r->sel[k].nwhere == 0)
				return 1;
	}
	return 0;
}

/* Some applicable permit passes some value of leaf f in some form, and no
 * forbid without element conditions covers it. */
static int
leaf_permitted_some(const eval_t *e, size_t f)
{
	const rule_t *r;
	uint64_t mask;
	size_t i, k;
	int some = 0;

	for (i = 0; i < e->nforbids; i++) {
		r = e->forbids[i];
		for (mask = r->cover[f], k = 0; mask != 0; k++, mask >>= 1)
			if ((mask & 1) && r->sel[k].nwhere == 0)
				return 0;
	}
	for (i = 0; i < e->npermits && !some; i++)
		some = e->permits[i]->cover[f] != 0 &&
		    e->permits[i]->transform[f] != TR_DROP;
	return some;
}

int
policy_read_map(const policy_t *p, const policy_request_t *req,
    const cJSON *record, unsigned char *map, size_t n)
{
	policy_decision_t *unused;
	eval_t e;
	size_t f, g, i, end;
	int forbid, any, all, part;

	if (!request_ok(p, req, record, &unused) || req->op != POLICY_OP_READ ||
	    map == NULL || n < p->nfields)
		return -1;
	if ((forbid = eval_init(&e, p, req, record)) == -2) {
		eval_free(&e);
		return -1;
	}
	any = forbid == -1 && e.npermits > 0;
	for (f = 0; f < p->nfields; f++) {
		map[f] = POLICY_READ_NONE;
		/* Core fields pass to every permitted reader, and to no one
		 * when the read is refused whole. */
		if (p->fields[f].group == RECORD_GROUP_CORE) {
			if (any)
				map[f] = POLICY_READ_WHOLE;
			continue;
		}
		if (!p->is_leaf[f] || !any || !leaf_permitted_some(&e, f))
			continue;
		/* Passed in some form and not forbidden outright; whole when a
		 * permit passes it unreduced and no forbid touches it. */
		map[f] = POLICY_READ_PART;
		if (leaf_permitted_whole(&e, f)) {
			map[f] = POLICY_READ_WHOLE;
			for (i = 0; i < e.nforbids; i++)
				if (e.forbids[i]->cover[f] != 0)
					map[f] = POLICY_READ_PART;
		}
	}
	/* A container is whole when all its leaves are, read in part when
	 * some are read in some form. */
	for (f = 0; f < p->nfields; f++) {
		if (p->is_leaf[f] || p->fields[f].group == RECORD_GROUP_CORE)
			continue;
		end = record_field_subtree_end(f);
		all = any;
		part = 0;
		for (g = f + 1; g < end; g++) {
			if (!p->is_leaf[g])
				continue;
			if (map[g] != POLICY_READ_WHOLE)
				all = 0;
			if (map[g] != POLICY_READ_NONE)
				part = 1;
		}
		map[f] = all ? POLICY_READ_WHOLE : part ? POLICY_READ_PART :
		    POLICY_READ_NONE;
	}
	eval_free(&e);
	return 0;
}

int
policy_check_write(const policy_t *p, const policy_request_t *req,
    const cJSON *record, const char *const *paths, size_t n,
    policy_decision_t **out)
{
	policy_decision_t *d = NULL;
	eval_t e;
	int whole, node, rule, kind, ok;
	size_t i, f, k, end;
	const char *first = NULL;

	if (!request_ok(p, req, record, out) || req->op != POLICY_OP_WRITE ||
	    (paths == NULL && n > 0))
		return -1;
	memset(&e, 0, sizeof(e));
	if ((whole = eval_init(&e, p, req, record)) == -2)
		goto err;
	GUARD_PTR(d = decision_new(), err);
	d->quiet = req->no_explanation;
	if (whole >= 0) {
		e.used[whole] = 1;
		for (i = 0; i < n; i++)
			GUARD(strlist_add(&d->withheld, paths[i]), err);
		GUARD(set_reason(d, "write forbidden by rule %s", p->rules[whole].id), err);
		GUARD(explain_addf(d, "write for %s: denied: forbidden "
		    "by rule %s", req->caller->uri, p->rules[whole].id), err);
		goto done;
	}
	if (e.npermits == 0) {
		for (i = 0; i < n; i++)
			GUARD(strlist_add(&d->withheld, paths[i]), err);
		GUARD(set_reason(d, "no rule permits write for this caller and "
		    "purpose"), err);
		GUARD(explain_addf(d, "write for %s: denied: no rule "
		    "permits write for this caller, purpose and record",
		    req->caller->uri), err);
		goto done;
	}
	for (i = 0; i < n; i++) {
		if (paths[i] == NULL)
			goto err;
		node = record_field_find(paths[i]);
		ok = node >= 0;
		rule = -1;
		end = ok ? record_field_subtree_end((size_t)node) : 0;
		for (f = ok ? (size_t)node : 0; ok && f < end; f++) {
			if (!p->is_leaf[f])
				continue;
			if (eval_leaf(&e, (int)f, &rule, &kind) != OUT_PASS)
				ok = 0;
			if (rule >= 0)
				e.used[rule] = 1;
		}
		if (ok) {
			GUARD(strlist_add(&d->disclosed, paths[i]), err);
			GUARD(explain_addf(d, "%s: writable", paths[i]), err);
			continue;
		}
		if (first == NULL)
			first = paths[i];
		GUARD(strlist_add(&d->withheld, paths[i]), err);
		if (node < 0) {
			GUARD(explain_addf(d, "%s: not a field of the record",
			    paths[i]), err);
		} else {
			char why[128];

			for (k = 0; k < e.nforbids; k++)
				if (e.forbids[k]->cover[node] != 0)
					break;
			GUARD(explain_addf(d, "%s: not writable: %s", paths[i],
			    k < e.nforbids ? why_text(&e, (int)rule_index(&e,
			    e.forbids[k]), 0, why, sizeof(why)) :
			    "no rule permits writing it"), err);
		}
	}
	if (first != NULL) {
		GUARD(set_reason(d, "%s is not writable by this caller", first), err);
	} else {
		d->allowed = 1;
		GUARD(set_reason(d, "write permitted"), err);
	}
	GUARD(explain_addf(d, "write for %s: %s", req->caller->uri,
	    d->reason), err);
done:
	GUARD(decision_rules(&e, d), err);
	eval_free(&e);
	*out = d;
	return 0;
err:
	eval_free(&e);
	policy_decision_free(d);
	return -1;
}

static int
check_whole(const policy_t *p, const policy_request_t *req, const cJSON *record,
    policy_op_t op, policy_decision_t **out)
{
	policy_decision_t *d = NULL;
	const char *opn = policy_op_name(op);
	eval_t e;
	int whole;
	size_t i;

	if (!request_ok(p, req, record, out) || req->op != op)
		return -1;
	memset(&e, 0, sizeof(e));
	if ((whole = eval_init(&e, p, req, record)) == -2)
		goto err;
	GUARD_PTR(d = decision_new(), err);
	d->quiet = req->no_explanation;
	if (whole >= 0) {
		e.used[whole] = 1;
		GUARD(set_reason(d, "%s forbidden by rule %s", opn, p->rules[whole].id), err);
	} else if (e.npermits == 0) {
		GUARD(set_reason(d, "no rule permits %s for this caller and purpose",
		    opn), err);
	} else {
		for (i = 0; i < e.npermits; i++)
			e.used[rule_index(&e, e.permits[i])] = 1;
		d->allowed = 1;
		GUARD(set_reason(d, "%s permitted", opn), err);
	}
	GUARD(explain_addf(d, "%s for %s: %s: %s", opn, req->caller->uri,
	    d->allowed ? "allowed" : "denied", d->reason), err);
	GUARD(decision_rules(&e, d), err);
	eval_free(&e);
	*out = d;
	return 0;
err:
	eval_free(&e);
	policy_decision_free(d);
	return -1;
}

int
policy_check_erase(const policy_t *p, const policy_request_t *req,
    const cJSON *record, policy_decision_t **out)
{
	return check_whole(p, req, record, POLICY_OP_ERASE, out);
}

int
policy_check_initiate_transfer(const policy_t *p, const policy_request_t *req,
    const cJSON *record, policy_decision_t **out)
{
	return check_whole(p, req, record, POLICY_OP_INITIATE_TRANSFER, out);
}

/* ---- decisions ---- */

int
policy_decision_allowed(const policy_decision_t *d)
{
	return d != NULL && d->allowed;
}

const cJSON *
policy_decision_record(const policy_decision_t *d)
{
	return d != NULL && d->allowed ? d->record : NULL;
}

const char *
policy_decision_reason(const policy_decision_t *d)
{
	return d != NULL && d->reason != NULL ? d->reason : "";
}

static const char *const *
list_of(const strlist_t *l, size_t *n)
{
	*n = l->n;
	return (const char *const *)l->v;
}

const char *const *
policy_decision_disclosed(const policy_decision_t *d, size_t *n)
{
	return list_of(&d->disclosed, n);
}

const char *const *
policy_decision_withheld(const policy_decision_t *d, size_t *n)
{
	return list_of(&d->withheld, n);
}

const char *const *
policy_decision_transformed(const policy_decision_t *d, size_t *n)
{
	return list_of(&d->transformed, n);
}

const char *const *
policy_decision_rules(const policy_decision_t *d, size_t *n)
{
	return list_of(&d->rules, n);
}

const char *const *
policy_decision_explanation(const policy_decision_t *d, size_t *n)
{
	return list_of(&d->explain, n);
}

void
policy_decision_free(policy_decision_t *d)
{
	if (d == NULL)
		return;
	cJSON_Delete(d->record);
	free(d->reason);
	strlist_free(&d->disclosed);
	strlist_free(&d->withheld);
	strlist_free(&d->transformed);
	strlist_free(&d->rules);
	strlist_free(&d->explain);
	free(d);
}

size_t
policy_lint(const policy_t *p, void (*warn)(void *arg, const char *id,
    const char *why), void *arg)
{
	const unsigned peer_ops = (1u << POLICY_OP_TRANSFER) |
	    (1u << POLICY_OP_INGRESS);
	size_t i, n = 0;
	const rule_t *r;

	for (i = 0; p != NULL && i < p->nrules; i++) {
		r = &p->rules[i];
		/* Mistakes that open rather than close: each reads as a
		 * restriction and is a grant. */
		if (!r->forbid && r->unless_clearance.n > 0) {
			warn(arg, r->id, "it is a permit with unless_clearance, "
			    "which grants to callers that lack the clearance; "
			    "to grant only to holders, write clearance");
			n++;
		}
		if (r->forbid && r->valid_until[0] != '\0') {
			warn(arg, r->id, "it is a forbid with valid_until: after "
			    "that day it no longer applies, and what it refused "
			    "is open to every permit");
			n++;
		}
		if (r->ops == 0 || (r->ops & ~peer_ops) != 0)
			continue;
		if (r->agency_types.n > 0) {
			warn(arg, r->id, "its ops are transfer or ingress, whose "
			    "caller is a peer gateway, so its agency_type "
			    "condition never holds and the rule never applies");
			n++;
		} else if (r->caller_kinds != 0 &&
		    !(r->caller_kinds & (1u << IDENTITY_GATEWAY))) {
			warn(arg, r->id, "its ops are transfer or ingress, whose "
			    "caller is a peer gateway, but its caller_kind leaves "
			    "out gateways, so the rule never applies");
			n++;
		}
	}
	return n;
}
