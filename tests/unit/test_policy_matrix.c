/* The default MAPPA policy, field by field, against SPEC section 7.
 *
 * A synthetic record holding every field of the schema (every array with
 * several elements, each holding every member) is generated from the schema
 * table itself, so a field added to the schema is covered at once.  The
 * expected outcome of each request is computed by a small reference filter
 * from tables written from SPEC section 7 (not from the policy file), and
 * compared whole with what the engine returns.  A change to the default
 * policy, or to the engine, that lets one more field through to one agency
 * type, under any category, level, clearance, purpose or area, fails here.
 *
 * Dimensions: every agency type (with and without a unit), callers of this
 * area and of another, gateways and auditors as readers; category 1-4,
 * level 1-3, records managed here and elsewhere; clearances none, ct,
 * level3, both; every purpose; read (and policy_read_map, which history and
 * PUT use), write of every schema path, erase, initiate-transfer, transfer
 * (egress for offender-move) and ingress of every field alone; the
 * Bedfordshire cross-area grant of docs/POLICY.md up to and after its
 * valid_until. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "policy/mappa_default.h"
#include "policy/policy.h"
#include "policy/record_schema.h"
#include "util/fileio.h"
#include "util/json.h"

#define TODAY "2026-11-24"
#define NELEM 3			/* elements of each array of objects */
#define MAXF 128

/* What reaches the recipient of one leaf field. */
enum {
	K_NONE,			/* withheld */
	K_WHOLE,		/* passed unchanged */
	K_YEAR,			/* a date reduced to its year */
	K_DISTRICT,		/* a postcode reduced to its outward code */
	K_SHAREABLE		/* on an array: only elements handled "shareable" */
};

static const char *const purposes[] = {
	"risk-management", "mappa-meeting", "offender-move", "notification",
	"accommodation", "health-care", "monitoring", "review", NULL
};

/* Clearance sets tried for every request. */
static const char *const clear_sets[4][2] = {
	{ NULL, NULL }, { "ct", NULL }, { "level3", NULL }, { "ct", "level3" }
};

static int
holds(int set, const char *c)
{
	return (clear_sets[set][0] && strcmp(clear_sets[set][0], c) == 0) ||
	    (clear_sets[set][1] && strcmp(clear_sets[set][1], c) == 0);
}

/* ---- SPEC section 7, written out ---- */

/* The read table.  groups: identity location risk legal monitoring health
 * intelligence; R whole, - none, P the paths listed in part ("path" whole,
 * "path:year" a date as its year).  "Names" are surname and forenames. */
struct spec_read {
	const char *type;
	const char *groups;
	const char *part[8];
};

static const struct spec_read spec_reads[] = {
	{ "police",        "RRRRR-R", { NULL } },
	{ "probation",     "RRRRRRP", { "vehicles", NULL } },
	{ "prison",        "R-RR-R-", { NULL } },
	{ "youth-justice", "RRRR---", { NULL } },
	{ "health",        "R-P--R-", { "risk.rosh", "risk.people_at_risk", NULL } },
	{ "social-care",   "RRRP---", { "orders", NULL } },
	{ "housing",       "PRPP---", { "person.surname", "person.forenames",
	    "person.dob:year", "risk.rosh", "risk.people_at_risk",
	    "licence.conditions", "orders[].prohibitions", NULL } },
	{ "education",     "P-PP---", { "person.surname", "person.forenames",
	    "risk.rosh", "orders[].prohibitions", NULL } },
	{ "dwp",           "RR-----", { NULL } },
	{ "ems",           "RR-PR--", { "licence.conditions", NULL } },
};
#define NTYPES (sizeof(spec_reads) / sizeof(spec_reads[0]))

/* Writes: police, probation and prison every group but health (probation
 * and prison health too); housing addresses; ems em; health health.
 * Groups: core identity location risk legal monitoring health
 * intelligence; Y writable. */
static const struct { const char *type; const char *groups; } spec_writes[] = {
	{ "police",        "YYYYYY-Y" },
	{ "probation",     "YYYYYYYY" },
	{ "prison",        "YYYYYYYY" },
	{ "youth-justice", "--------" },
	{ "health",        "------Y-" },
	{ "social-care",   "--------" },
	{ "housing",       "--Y-----" },	/* location is addresses */
	{ "education",     "--------" },
	{ "dwp",           "--------" },
	{ "ems",           "-----Y--" },	/* monitoring is em */
};

/* ---- the schema ---- */

static const record_field_t *F;
static size_t NF;

static void
schema_init(void)
{
	F = record_fields(&NF);
	assert_true(NF <= MAXF);
}

static int
field_of(int parent, const char *name)
{
	size_t i;

	for (i = 0; i < NF; i++)
		if (F[i].parent == parent && strcmp(F[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
is_container(size_t i)
{
	return F[i].type == RECORD_T_OBJECT || F[i].type == RECORD_T_ARRAY_OBJ;
}

/* ---- the synthetic record ---- */

/* A value for leaf i in element e of its array (0 outside arrays), distinct
 * for every leaf and element so that any leak shows. */
static cJSON *
leaf_value(size_t i, int e)
{
	static const char *const postcodes[NELEM] = { "NR1 9ZZ", "IP229ZZ", "EC1A 1BB" };
	static const char *const handling[NELEM] = { "shareable", "police-only", "shareable" };
	char s[64];

	switch (F[i].type) {
	case RECORD_T_TEXT:
		snprintf(s, sizeof(s), "T%zu-%d", i, e);
		return cJSON_CreateString(s);
	case RECORD_T_DATE:
	case RECORD_T_DATE_OR_INDEFINITE:
		snprintf(s, sizeof(s), "%04zu-%02d-%02d", 1900 + i, e + 1, 10 + e);
		return cJSON_CreateString(s);
	case RECORD_T_POSTCODE:
		return cJSON_CreateString(postcodes[e % NELEM]);
	case RECORD_T_BOOL:
		return cJSON_CreateBool(e == 0);
	case RECORD_T_ENUM_ADDRESS_TYPE:
		return cJSON_CreateString(e == 0 ? "home" : "temporary");
	case RECORD_T_ENUM_ROSH:
		return cJSON_CreateString("very-high");
	case RECORD_T_ENUM_TOOL:
		return cJSON_CreateString("OASys");
	case RECORD_T_ENUM_ORDER_TYPE:
		return cJSON_CreateString(e == 0 ? "SHPO" : "SRO");
	case RECORD_T_ENUM_EM_TYPE:
		return cJSON_CreateString("curfew");
	case RECORD_T_ENUM_HANDLING:
		return cJSON_CreateString(handling[e % NELEM]);
	case RECORD_T_ARRAY_TEXT: {
		cJSON *a = cJSON_CreateArray();

		snprintf(s, sizeof(s), "A%zu-%d-x", i, e);
		cJSON_AddItemToArray(a, cJSON_CreateString(s));
		snprintf(s, sizeof(s), "A%zu-%d-y", i, e);
		cJSON_AddItemToArray(a, cJSON_CreateString(s));
		return a;
	}
	default:
		fail_msg("no synthetic value for %s", F[i].path);
	}
	return NULL;
}

/* The members of a container (parent -1: the record) in element e: every
 * non-core child, or those marked in keep (NULL: all); arrays of objects
 * get NELEM elements. */
static cJSON *object_of(int parent, int e, const unsigned char *keep);

static cJSON *
field_value(size_t i, int e, const unsigned char *keep)
{
	cJSON *a;
	int k;

	if (F[i].type == RECORD_T_OBJECT)
		return object_of((int)i, e, keep);
	if (F[i].type == RECORD_T_ARRAY_OBJ) {
		a = cJSON_CreateArray();
		for (k = 0; k < NELEM; k++)
			cJSON_AddItemToArray(a, object_of((int)i, k, keep));
		return a;
	}
	return leaf_value(i, e);
}

static cJSON *
object_of(int parent, int e, const unsigned char *keep)
{
	cJSON *o = cJSON_CreateObject();
	size_t c;

	for (c = 0; c < NF; c++) {
		if (F[c].parent != parent || F[c].group == RECORD_GROUP_CORE)
			continue;
		if (keep != NULL && !keep[c])
			continue;
		cJSON_AddItemToObject(o, F[c].name, field_value(c, e, keep));
	}
	return o;
}

/* The core fields, then the fields marked in keep and their containers
 * (NULL: every field). */
static cJSON *
make_record(int category, int level, const char *marea, const unsigned char *keep)
{
	cJSON *r = cJSON_CreateObject(), *o, *m;
	char err[256];

	cJSON_AddStringToObject(r, "id", "MTX-0001");
	cJSON_AddNumberToObject(r, "version", 7);
	cJSON_AddStringToObject(r, "managing_area", marea);
	cJSON_AddNumberToObject(r, "category", category);
	cJSON_AddNumberToObject(r, "level", level);
	o = object_of(-1, 0, keep);
	while ((m = o->child) != NULL) {
		cJSON_DetachItemViaPointer(o, m);
		cJSON_AddItemToObject(r, m->string, m);
	}
	cJSON_Delete(o);
	if (record_validate(r, err, sizeof(err)) < 0)
		fail_msg("synthetic record does not fit the schema: %s", err);
	return r;
}

/* keep[] for leaf f alone: f and its containers. */
static void
keep_only(size_t f, unsigned char *keep)
{
	int g;

	memset(keep, 0, MAXF);
	for (g = (int)f; g >= 0; g = F[g].parent)
		keep[g] = 1;
}

/* ---- the reference filter ---- */

static cJSON *
reduce(const cJSON *v, int kind)
{
	char s[16];
	size_t n;

	if (kind == K_YEAR) {
		snprintf(s, sizeof(s), "%.4s", v->valuestring);
		return cJSON_CreateString(s);
	}
	/* K_DISTRICT: what is left before the inward code (digit, two
	 * letters) and its optional space */
	n = strlen(v->valuestring) - 3;
	if (n > 0 && v->valuestring[n - 1] == ' ')
		n--;
	snprintf(s, sizeof(s), "%.*s", (int)n, v->valuestring);
	return cJSON_CreateString(s);
}

static cJSON *ref_object(const cJSON *obj, int node, const unsigned char *kinds);

static cJSON *
ref_value(const cJSON *v, int node, const unsigned char *kinds)
{
	const cJSON *el, *h;
	cJSON *out = NULL, *c;

	if (F[node].type == RECORD_T_OBJECT)
		return ref_object(v, node, kinds);
	if (F[node].type == RECORD_T_ARRAY_OBJ) {
		cJSON_ArrayForEach(el, v) {
			if (kinds[node] == K_SHAREABLE) {
				h = cJSON_GetObjectItemCaseSensitive(el, "handling");
				if (!cJSON_IsString(h) || strcmp(h->valuestring, "shareable") != 0)
					continue;
			}
			if ((c = ref_object(el, node, kinds)) == NULL)
				continue;
			if (out == NULL)
				out = cJSON_CreateArray();
			cJSON_AddItemToArray(out, c);
		}
		return out;
	}
	switch (kinds[node]) {
	case K_WHOLE:
		return cJSON_Duplicate(v, 1);
	case K_YEAR:
	case K_DISTRICT:
		return reduce(v, kinds[node]);
	default:
		return NULL;
	}
}

static cJSON *
ref_object(const cJSON *obj, int node, const unsigned char *kinds)
{
	const cJSON *m;
	cJSON *out = NULL, *c;
	int f;

	cJSON_ArrayForEach(m, obj) {
		f = field_of(node, m->string);
		assert_true(f >= 0);
		if ((c = ref_value(m, f, kinds)) == NULL)
			continue;
		if (out == NULL)
			out = cJSON_CreateObject();
		cJSON_AddItemToObject(out, m->string, c);
	}
	return out;
}

/* What the recipient should get of rec; an empty object for nothing. */
static cJSON *
reference(const cJSON *rec, const unsigned char *kinds)
{
	cJSON *r = ref_object(rec, -1, kinds);

	return r != NULL ? r : cJSON_CreateObject();
}

/* kinds[] for a group table row: groups[g - 1] for group g (core always
 * whole), 'P' meaning the listed paths within the group. */
static void
table_kinds(const char *groups, const char *const *part, unsigned char *kinds)
{
	size_t f, k;
	char path[128], *colon;
	int node, kind;

	memset(kinds, K_NONE, MAXF);
	for (f = 0; f < NF; f++) {
		if (F[f].group == RECORD_GROUP_CORE) {
			kinds[f] = K_WHOLE;
			continue;
		}
		if (groups[F[f].group - 1] == 'R') {
			kinds[f] = K_WHOLE;
			continue;
		}
		if (groups[F[f].group - 1] != 'P')
			continue;
		for (k = 0; part[k] != NULL; k++) {
			snprintf(path, sizeof(path), "%s", part[k]);
			kind = K_WHOLE;
			if ((colon = strchr(path, ':')) != NULL) {
				*colon = '\0';
				kind = K_YEAR;
			}
			node = record_field_find(path);
			assert_true(node >= 0);
			if (F[node].group == F[f].group &&
			    record_field_covers((size_t)node, f))
				kinds[f] = (unsigned char)kind;
		}
	}
}

static void
read_kinds(size_t t, unsigned char *kinds)
{
	table_kinds(spec_reads[t].groups, spec_reads[t].part, kinds);
}

/* kinds[] for the transfer rule of SPEC 7: identity, location, risk,
 * legal, monitoring; of intelligence only items handled shareable; never
 * health (nor the other intelligence fields, which have no handling). */
static void
transfer_kinds(unsigned char *kinds)
{
	static const char *const part[] = { "intelligence", NULL };
	int intel = record_field_find("intelligence");

	table_kinds("RRRRR-P", part, kinds);
	kinds[intel] = K_SHAREABLE;
}

/* ---- requests ---- */

typedef struct {
	identity_t id;
	const char *clear[2];
	policy_request_t req;
} caller_t;

static policy_request_t *
caller(caller_t *c, policy_op_t op, const char *uri, const char *purpose, int set)
{
	char err[128];

	memset(c, 0, sizeof(*c));
	if (identity_parse(uri, strlen(uri), &c->id, err, sizeof(err)) < 0)
		fail_msg("bad uri %s: %s", uri, err);
	if (clear_sets[set][0])
		c->clear[c->req.n_clearances++] = clear_sets[set][0];
	if (clear_sets[set][1])
		c->clear[c->req.n_clearances++] = clear_sets[set][1];
	c->req.op = op;
	c->req.caller = &c->id;
	c->req.clearances = c->clear;
	c->req.purpose = purpose;
	c->req.local_area = "norfolk";
	c->req.today = TODAY;
	c->req.no_explanation = 1;
	return &c->req;
}

/* Filter and compare with the expectation (want NULL: refused). */
static void
expect_filter(const policy_t *p, const policy_request_t *req, const cJSON *rec,
    const cJSON *want, const char *what)
{
	policy_decision_t *d = NULL;
	const cJSON *got;
	char *a, *b;

	assert_int_equal(policy_filter(p, req, rec, &d), 0);
	got = policy_decision_record(d);
	if (want == NULL) {
		if (policy_decision_allowed(d) || got != NULL) {
			a = got ? json_print(got) : NULL;
			fail_msg("%s: expected a refusal, got %s", what, a ? a : "allowed");
		}
	} else if (!policy_decision_allowed(d) || !cJSON_Compare(got, want, 1)) {
		a = got ? json_print(got) : NULL;
		b = json_print(want);
		fail_msg("%s: %s\n  expected %s\n  got      %s", what,
		    policy_decision_reason(d), b, a ? a : "(refused)");
	}
	policy_decision_free(d);
}

static const char *
clear_name(int set, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", clear_sets[set][0] ? clear_sets[set][0] : "none",
	    clear_sets[set][1] ? "+" : "", clear_sets[set][1] ? clear_sets[set][1] : "");
	return buf;
}

static const char *const mareas[] = { "norfolk", "suffolk" };

static policy_t *
load_file(const char *rel)
{
	const char *src = getenv("VISOR_SRC");
	char path[1024], err[512];
	policy_t *p;
	char *text;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", src ? src : ".", rel);
	assert_int_equal(file_read_all(path, POLICY_FILE_MAX, &text, &len), 0);
	p = policy_load(text, len, err, sizeof(err));
	free(text);
	if (p == NULL)
		fail_msg("%s: %s", path, err);
	return p;
}

static policy_t *
load_default(void)
{
	const char *j = policy_mappa_default_json();
	char err[512];
	policy_t *p = policy_load(j, strlen(j), err, sizeof(err));

	if (p == NULL)
		fail_msg("default policy: %s", err);
	return p;
}

/* ---- read ---- */

/* Every agency type of this area and of another, for every record shape,
 * clearance set and purpose, under policy p (the default, or the default
 * with the Bedfordshire grant, which changes nothing for these callers);
 * pname names it in failures. */
static void
read_matrix(const policy_t *p, const char *pname)
{
	unsigned char kinds[MAXF], map[MAXF];
	char uri[128], what[400], cl[32];
	caller_t c;
	size_t t, f, u, pu;
	int cat, lvl, ma, set, want, m;

	for (t = 0; t < NTYPES; t++) {
		read_kinds(t, kinds);
		for (cat = 1; cat <= 4; cat++)
		for (lvl = 1; lvl <= 3; lvl++)
		for (ma = 0; ma < 2; ma++) {
			cJSON *rec = make_record(cat, lvl, mareas[ma], NULL);
			cJSON *ref = reference(rec, kinds);

			for (u = 0; u < 3; u++) {
				snprintf(uri, sizeof(uri), u == 0 ?
				    "urn:visor:norfolk:agency:%s" : u == 1 ?
				    "urn:visor:norfolk:agency:%s:unit-7" :
				    "urn:visor:suffolk:agency:%s", spec_reads[t].type);
				for (set = 0; set < 4; set++)
				for (pu = 0; purposes[pu] != NULL; pu++) {
					caller(&c, POLICY_OP_READ, uri, purposes[pu], set);
					/* another area's agencies see nothing; category
					 * 4 needs ct, whatever the table says */
					want = u < 2 && (cat != 4 || holds(set, "ct"));
					snprintf(what, sizeof(what), "%s: read as %s, %s, "
					    "category %d level %d managed by %s, clearances %s",
					    pname, uri, purposes[pu], cat, lvl, mareas[ma],
					    clear_name(set, cl, sizeof(cl)));
					expect_filter(p, &c.req, rec, want ? ref : NULL, what);
					/* what history and PUT go by says the same */
					assert_int_equal(policy_read_map(p, &c.req, rec, map,
					    sizeof(map)), 0);
					for (f = 0; f < NF; f++) {
						if (is_container(f))
							continue;
						m = !want ? POLICY_READ_NONE :
						    kinds[f] == K_WHOLE ? POLICY_READ_WHOLE :
						    kinds[f] == K_NONE ? POLICY_READ_NONE :
						    POLICY_READ_PART;
						if (map[f] != m)
							fail_msg("%s: read map of %s is %d, not %d",
							    what, F[f].path, map[f], m);
					}
				}
			}
			cJSON_Delete(ref);
			cJSON_Delete(rec);
		}
	}
	/* no rule lets a gateway or an auditor read records */
	for (cat = 1; cat <= 4; cat++) {
		static const char *const others[] = { "urn:visor:norfolk:gateway",
		    "urn:visor:suffolk:gateway", "urn:visor:norfolk:auditor:dpo", NULL };
		cJSON *rec = make_record(cat, 2, "norfolk", NULL);

		for (u = 0; others[u] != NULL; u++)
			for (pu = 0; purposes[pu] != NULL; pu++) {
				caller(&c, POLICY_OP_READ, others[u], purposes[pu], 3);
				snprintf(what, sizeof(what), "%s: read as %s", pname, others[u]);
				expect_filter(p, &c.req, rec, NULL, what);
			}
		cJSON_Delete(rec);
	}
}

static void
test_read_matrix(void **state)
{
	policy_t *p;

	(void)state;
	schema_init();
	p = load_default();
	read_matrix(p, "default");
	policy_free(p);
}

/* Reads of one field alone: a record holding nothing a reader may see is
 * refused whole (404 at the gateway), one holding something it may see
 * gives exactly that, with the core. */
static void
test_read_each_field_alone(void **state)
{
	unsigned char kinds[MAXF], keep[MAXF];
	char uri[128], what[256];
	policy_t *p;
	caller_t c;
	size_t t, f;

	(void)state;
	schema_init();
	p = load_default();
	for (t = 0; t < NTYPES; t++) {
		read_kinds(t, kinds);
		snprintf(uri, sizeof(uri), "urn:visor:norfolk:agency:%s", spec_reads[t].type);
		for (f = 0; f < NF; f++) {
			cJSON *rec, *ref;

			if (F[f].group == RECORD_GROUP_CORE || is_container(f))
				continue;
			keep_only(f, keep);
			rec = make_record(2, 2, "norfolk", keep);
			ref = reference(rec, kinds);
			caller(&c, POLICY_OP_READ, uri, "risk-management", 0);
			snprintf(what, sizeof(what), "%s reads %s alone", uri, F[f].path);
			expect_filter(p, &c.req, rec, kinds[f] != K_NONE ? ref : NULL, what);
			cJSON_Delete(ref);
			cJSON_Delete(rec);
		}
	}
	policy_free(p);
}

/* ---- the cross-area grant ---- */

static void
test_bedfordshire_grant_matrix(void **state)
{
	static const char *const days[] = { "2026-11-24", "2027-06-30", "2027-07-01",
	    "2028-01-01", NULL };
	policy_t *p;
	unsigned char kinds[MAXF];
	char uri[128], what[400], cl[32];
	caller_t c;
	size_t t, u, pu, dy;
	int cat, lvl, ma, set, want;

	(void)state;
	schema_init();
	p = load_file("docs/examples/policy-bedfordshire-grant.json");
	/* the grant changes nothing for anyone else */
	read_matrix(p, "bedfordshire grant");
	/* identity, location, risk, legal, monitoring; not health, not
	 * intelligence */
	table_kinds("RRRRR--", (const char *const[]){ NULL }, kinds);
	for (cat = 1; cat <= 4; cat++)
	for (lvl = 1; lvl <= 3; lvl++)
	for (ma = 0; ma < 2; ma++) {
		cJSON *rec = make_record(cat, lvl, mareas[ma], NULL);
		cJSON *ref = reference(rec, kinds);

		for (t = 0; t < NTYPES; t++)
		for (u = 0; u < 2; u++)
		for (set = 0; set < 4; set++)
		for (pu = 0; purposes[pu] != NULL; pu++)
		for (dy = 0; days[dy] != NULL; dy++) {
			snprintf(uri, sizeof(uri), u == 0 ?
			    "urn:visor:bedfordshire:agency:%s" :
			    "urn:visor:bedfordshire:agency:%s:reviews", spec_reads[t].type);
			caller(&c, POLICY_OP_READ, uri, purposes[pu], set);
			c.req.today = days[dy];
			want = strcmp(spec_reads[t].type, "police") == 0 &&
			    holds(set, "ct") && strcmp(purposes[pu], "review") == 0 &&
			    cat == 4 && ma == 0 && strcmp(days[dy], "2027-06-30") <= 0;
			snprintf(what, sizeof(what), "grant: read as %s, %s, category %d "
			    "level %d managed by %s, clearances %s, on %s", uri,
			    purposes[pu], cat, lvl, mareas[ma],
			    clear_name(set, cl, sizeof(cl)), days[dy]);
			expect_filter(p, &c.req, rec, want ? ref : NULL, what);
		}
		cJSON_Delete(ref);
		cJSON_Delete(rec);
	}
	policy_free(p);
}

/* ---- write, erase, initiate-transfer ---- */

static int
is_type(size_t t, const char *type)
{
	return strcmp(spec_reads[t].type, type) == 0;
}

static void
test_write_erase_initiate_matrix(void **state)
{
	policy_decision_t *d;
	record_paths_t *all;
	char uri[128];
	const char *path;
	policy_t *p;
	caller_t c;
	size_t t, f, g, end, u, pu, k;
	int cat, lvl, set, want, all_ok;

	(void)state;
	schema_init();
	p = load_default();
	for (t = 0; t < NTYPES; t++) {
		assert_string_equal(spec_writes[t].type, spec_reads[t].type);
		for (cat = 1; cat <= 4; cat++)
		for (lvl = 1; lvl <= 3; lvl++) {
			cJSON *rec = make_record(cat, lvl, "norfolk", NULL);

			assert_non_null(all = record_changed_paths(NULL, rec));
			for (u = 0; u < 3; u++) {
				snprintf(uri, sizeof(uri), u == 0 ?
				    "urn:visor:norfolk:agency:%s" : u == 1 ?
				    "urn:visor:norfolk:agency:%s:unit-7" :
				    "urn:visor:suffolk:agency:%s", spec_reads[t].type);
				for (set = 0; set < 4; set += 3)
				for (pu = 0; purposes[pu] != NULL; pu++) {
					/* every schema path alone (a container means
					 * every field inside); version is the
					 * gateway's */
					for (f = 0; f < NF; f++) {
						if (strcmp(F[f].path, "version") == 0)
							continue;
						want = u < 2;
						end = record_field_subtree_end(f);
						for (g = f; g < end; g++)
							if (spec_writes[t].groups[F[g].group] != 'Y')
								want = 0;
						caller(&c, POLICY_OP_WRITE, uri, purposes[pu], set);
						path = F[f].path;
						assert_int_equal(policy_check_write(p, &c.req, rec,
						    &path, 1, &d), 0);
						if (policy_decision_allowed(d) != want)
							fail_msg("%s writing %s (category %d level "
							    "%d, %s): %s", uri, path, cat, lvl,
							    purposes[pu], policy_decision_reason(d));
						policy_decision_free(d);
					}
					/* creating the whole record */
					all_ok = u < 2;
					for (k = 0; k < all->count; k++)
						if (spec_writes[t].groups[F[record_field_find(
						    all->items[k])].group] != 'Y')
							all_ok = 0;
					caller(&c, POLICY_OP_WRITE, uri, purposes[pu], set);
					assert_int_equal(policy_check_write(p, &c.req, rec,
					    all->items, all->count, &d), 0);
					assert_int_equal(policy_decision_allowed(d), all_ok);
					policy_decision_free(d);

					/* erase: police (of this area) only */
					caller(&c, POLICY_OP_ERASE, uri, purposes[pu], set);
					assert_int_equal(policy_check_erase(p, &c.req, rec, &d), 0);
					if (policy_decision_allowed(d) != (u < 2 && is_type(t, "police")))
						fail_msg("%s erasing (%s): %s", uri, purposes[pu],
						    policy_decision_reason(d));
					policy_decision_free(d);

					/* initiate a transfer: police and probation (of
					 * this area, for offender-move: POLICY.md) */
					caller(&c, POLICY_OP_INITIATE_TRANSFER, uri,
					    purposes[pu], set);
					assert_int_equal(policy_check_initiate_transfer(p,
					    &c.req, rec, &d), 0);
					want = u < 2 && strcmp(purposes[pu], "offender-move") == 0 &&
					    (is_type(t, "police") || is_type(t, "probation"));
					if (policy_decision_allowed(d) != want)
						fail_msg("%s initiating a transfer (%s): %s",
						    uri, purposes[pu], policy_decision_reason(d));
					policy_decision_free(d);
				}
			}
			record_paths_free(all);
			cJSON_Delete(rec);
		}
	}
	/* gateways and auditors write, erase and start transfers of nothing */
	{
		static const char *const others[] = { "urn:visor:norfolk:gateway",
		    "urn:visor:suffolk:gateway", "urn:visor:norfolk:auditor:dpo", NULL };
		cJSON *rec = make_record(1, 1, "norfolk", NULL);

		path = "addresses";
		for (u = 0; others[u] != NULL; u++) {
			caller(&c, POLICY_OP_WRITE, others[u], "offender-move", 3);
			assert_int_equal(policy_check_write(p, &c.req, rec, &path, 1, &d), 0);
			assert_false(policy_decision_allowed(d));
			policy_decision_free(d);
			caller(&c, POLICY_OP_ERASE, others[u], "offender-move", 3);
			assert_int_equal(policy_check_erase(p, &c.req, rec, &d), 0);
			assert_false(policy_decision_allowed(d));
			policy_decision_free(d);
			caller(&c, POLICY_OP_INITIATE_TRANSFER, others[u], "offender-move", 3);
			assert_int_equal(policy_check_initiate_transfer(p, &c.req, rec, &d), 0);
			assert_false(policy_decision_allowed(d));
			policy_decision_free(d);
		}
		cJSON_Delete(rec);
	}
	policy_free(p);
}

/* ---- transfer and ingress ---- */

static void
test_transfer_ingress_matrix(void **state)
{
	static const char *const recipients[] = { "urn:visor:suffolk:gateway",
	    "urn:visor:bedfordshire:gateway", NULL };
	static const char *const not_gateways[] = { "urn:visor:suffolk:agency:police",
	    "urn:visor:norfolk:agency:police", "urn:visor:suffolk:auditor:dpo", NULL };
	unsigned char kinds[MAXF], keep[MAXF];
	policy_decision_t *d;
	char what[400], cl[32];
	policy_t *p;
	caller_t c, ci;
	size_t r, pu, f;
	int cat, lvl, ma, set, want, intel, handling;

	(void)state;
	schema_init();
	p = load_default();
	transfer_kinds(kinds);
	intel = record_field_find("intelligence");
	handling = record_field_find("intelligence[].handling");
	for (cat = 1; cat <= 4; cat++)
	for (lvl = 1; lvl <= 3; lvl++)
	for (ma = 0; ma < 2; ma++) {
		cJSON *rec = make_record(cat, lvl, mareas[ma], NULL);
		cJSON *ref = reference(rec, kinds);

		for (r = 0; recipients[r] != NULL; r++)
		for (set = 0; set < 4; set++)
		for (pu = 0; purposes[pu] != NULL; pu++) {
			/* our reading of "Level 3 and category 4 transfers
			 * additionally require ... ct" (SPEC-NOTES): level 3
			 * needs level3, category 4 needs ct */
			want = strcmp(purposes[pu], "offender-move") == 0 &&
			    (cat != 4 || holds(set, "ct")) &&
			    (lvl != 3 || holds(set, "level3"));
			caller(&c, POLICY_OP_TRANSFER, recipients[r], purposes[pu], set);
			snprintf(what, sizeof(what), "transfer to %s, %s, category %d "
			    "level %d managed by %s, clearances %s", recipients[r],
			    purposes[pu], cat, lvl, mareas[ma],
			    clear_name(set, cl, sizeof(cl)));
			expect_filter(p, &c.req, rec, want ? ref : NULL, what);
			if (!want)
				continue;
			/* what was sent, the receiver accepts as it is */
			assert_int_equal(policy_filter(p, &c.req, rec, &d), 0);
			caller(&ci, POLICY_OP_INGRESS, "urn:visor:norfolk:gateway",
			    purposes[pu], 0);
			ci.req.local_area = "suffolk";
			expect_filter(p, &ci.req, policy_decision_record(d),
			    policy_decision_record(d), what);
			policy_decision_free(d);
		}
		for (r = 0; not_gateways[r] != NULL; r++) {
			caller(&c, POLICY_OP_TRANSFER, not_gateways[r], "offender-move", 3);
			expect_filter(p, &c.req, rec, NULL, not_gateways[r]);
		}
		/* the whole record carries health and more: refused whole */
		for (pu = 0; purposes[pu] != NULL; pu++) {
			caller(&ci, POLICY_OP_INGRESS, "urn:visor:suffolk:gateway",
			    purposes[pu], 3);
			expect_filter(p, &ci.req, rec, NULL, "ingress of a whole record");
		}
		cJSON_Delete(ref);
		cJSON_Delete(rec);
	}

	/* Ingress of each field alone: accepted exactly when the transfer
	 * rule sends it.  Intelligence items are accepted only when every
	 * one is handled shareable (the generator makes element 1
	 * police-only; without handling an item is not shareable). */
	for (f = 0; f < NF; f++) {
		if (F[f].group == RECORD_GROUP_CORE || is_container(f))
			continue;
		for (cat = 1; cat <= 4; cat++)
		for (lvl = 1; lvl <= 3; lvl++) {
			cJSON *rec;

			keep_only(f, keep);
			rec = make_record(cat, lvl, "suffolk", keep);
			for (pu = 0; purposes[pu] != NULL; pu++) {
				want = kinds[f] == K_WHOLE && F[f].parent != intel &&
				    strcmp(purposes[pu], "offender-move") == 0;
				snprintf(what, sizeof(what), "ingress of %s alone, %s, "
				    "category %d level %d", F[f].path, purposes[pu], cat, lvl);
				caller(&ci, POLICY_OP_INGRESS, "urn:visor:suffolk:gateway",
				    purposes[pu], 0);
				expect_filter(p, &ci.req, rec, want ? rec : NULL, what);
				caller(&ci, POLICY_OP_INGRESS,
				    "urn:visor:suffolk:agency:police", purposes[pu], 3);
				expect_filter(p, &ci.req, rec, NULL, what);
			}
			cJSON_Delete(rec);
			if (F[f].parent != intel)
				continue;
			keep[handling] = 1;
			rec = make_record(cat, lvl, "suffolk", keep);
			caller(&ci, POLICY_OP_INGRESS, "urn:visor:suffolk:gateway",
			    "offender-move", 0);
			snprintf(what, sizeof(what), "ingress of %s with handling", F[f].path);
			expect_filter(p, &ci.req, rec, NULL, what);
			cJSON_DeleteItemFromArray(cJSON_GetObjectItemCaseSensitive(rec,
			    "intelligence"), 1);
			expect_filter(p, &ci.req, rec, rec, what);
			cJSON_Delete(rec);
		}
	}
	policy_free(p);
}

/* ---- the engine: transforms and forbids on every element ---- */

/* The default policy transforms no array member, so a policy that does:
 * each element of each array is reduced, dropped or forbidden alike, a
 * forbid wins over a permit naming a wider path, grants add up (a second
 * rule passing addresses[].to whole), and filtering the result again
 * changes nothing. */
static void
test_transforms_every_element(void **state)
{
	static const char text[] =
	    "{\"format\":\"visor-policy/1\",\"rules\":["
	    "{\"id\":\"a\",\"effect\":\"permit\",\"ops\":[\"read\"],"
	    "\"fields\":[\"location\",\"legal\",\"person.aliases\"],"
	    "\"transform\":{\"addresses[].postcode\":\"postcode-to-district\","
	    "\"addresses[].from\":\"date-to-year\",\"addresses[].to\":\"date-to-year\","
	    "\"orders[].made\":\"date-to-year\",\"convictions\":\"drop\","
	    "\"convictions[].date\":\"date-to-year\","
	    "\"notification.until\":\"date-to-year\"}},"
	    "{\"id\":\"b\",\"effect\":\"permit\",\"ops\":[\"read\"],"
	    "\"fields\":[\"addresses[].to\"]},"
	    "{\"id\":\"f\",\"effect\":\"forbid\",\"ops\":[\"read\"],"
	    "\"fields\":[\"orders[].prohibitions\",\"person.aliases[].surname\"]}]}";
	unsigned char kinds[MAXF];
	char err[256];
	policy_t *p;
	caller_t c;
	cJSON *rec, *ref;
	size_t f;

	(void)state;
	schema_init();
	p = policy_load(text, strlen(text), err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	memset(kinds, K_NONE, sizeof(kinds));
	for (f = 0; f < NF; f++)
		if (F[f].group == RECORD_GROUP_CORE || F[f].group == RECORD_GROUP_LOCATION ||
		    F[f].group == RECORD_GROUP_LEGAL ||
		    record_field_covers((size_t)record_field_find("person.aliases"), f))
			kinds[f] = K_WHOLE;
	kinds[record_field_find("addresses[].postcode")] = K_DISTRICT;
	kinds[record_field_find("addresses[].from")] = K_YEAR;
	kinds[record_field_find("orders[].made")] = K_YEAR;
	kinds[record_field_find("notification.until")] = K_YEAR;
	kinds[record_field_find("convictions[].offence")] = K_NONE;
	kinds[record_field_find("convictions[].court")] = K_NONE;
	kinds[record_field_find("convictions[].sentence")] = K_NONE;
	kinds[record_field_find("convictions[].date")] = K_YEAR;
	kinds[record_field_find("orders[].prohibitions")] = K_NONE;
	kinds[record_field_find("person.aliases[].surname")] = K_NONE;
	rec = make_record(1, 1, "norfolk", NULL);
	ref = reference(rec, kinds);
	caller(&c, POLICY_OP_READ, "urn:visor:norfolk:agency:police", "review", 0);
	expect_filter(p, &c.req, rec, ref, "array transforms");
	expect_filter(p, &c.req, ref, ref, "array transforms, filtered again");
	cJSON_Delete(ref);
	cJSON_Delete(rec);
	policy_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_matrix),
		cmocka_unit_test(test_read_each_field_alone),
		cmocka_unit_test(test_bedfordshire_grant_matrix),
		cmocka_unit_test(test_write_erase_initiate_matrix),
		cmocka_unit_test(test_transfer_ingress_matrix),
		cmocka_unit_test(test_transforms_every_element),
	};

	return cmocka_run_group_tests_name("policy_matrix", tests, NULL, NULL);
}
