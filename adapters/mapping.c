/*
 * mapping: CSV column mapping.  See mapping.h for the file format.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/mapping.h"
#include "util/buf.h"
#include "util/json.h"

#define PATH_SEGS_MAX 8
#define PATH_NAME_MAX 32
#define PATH_INDEX_MAX 63
#define COLUMNS_MAX 512
#define COLUMN_NAME_MAX 256

typedef enum {
	COL_STRING,
	COL_INTEGER,
	COL_NUMBER,
	COL_BOOLEAN,
	COL_DATE,
	COL_LIST
} col_type_t;

typedef enum { DATE_ISO, DATE_DMY_SLASH, DATE_MDY_SLASH, DATE_DMY_DASH } date_fmt_t;

typedef struct {
	char name[PATH_NAME_MAX + 1];
	int index;		/* -1: no index */
} seg_t;

typedef struct {
	seg_t seg[PATH_SEGS_MAX];
	size_t n;
	char text[PATH_SEGS_MAX * (PATH_NAME_MAX + 4)];
} path_t;

typedef struct {
	char *name;		/* header text */
	int ignore;
	path_t path;
	col_type_t type;
	date_fmt_t date_fmt;
	char sep;
	int required;
	const cJSON *values;	/* object or NULL; points into m->doc */
	size_t idx;		/* column index after bind */
} column_t;

typedef struct {
	path_t path;
	const cJSON *value;	/* points into m->doc */
} constant_t;

struct mapping {
	cJSON *doc;
	int patch;
	int unmapped_ignore;
	char *id_column;
	char id_prefix[MAPPING_ID_MAX];
	size_t id_idx;
	column_t *cols;
	size_t n_cols;
	constant_t *consts;
	size_t n_consts;
	size_t n_header;
	int bound;
};

int
mapping_valid_id(const char *s)
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

static char *
dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

/* Parse "a.b[2].c".  0 or -1. */
static int
path_parse(const char *s, path_t *p)
{
	const char *q = s;
	size_t n;
	char *end;
	unsigned long idx;

	memset(p, 0, sizeof(*p));
	if (strlen(s) >= sizeof(p->text))
		return -1;
	memcpy(p->text, s, strlen(s) + 1);
	for (;;) {
		if (p->n == PATH_SEGS_MAX)
			return -1;
		n = 0;
		if (!((q[0] >= 'a' && q[0] <= 'z') || q[0] == '_'))
			return -1;
		while ((q[n] >= 'a' && q[n] <= 'z') || (q[n] >= '0' && q[n] <= '9') ||
		    q[n] == '_')
			n++;
		if (n > PATH_NAME_MAX)
			return -1;
		memcpy(p->seg[p->n].name, q, n);
		p->seg[p->n].name[n] = '\0';
		p->seg[p->n].index = -1;
		q += n;
		if (*q == '[') {
			if (q[1] < '0' || q[1] > '9')
				return -1;
			errno = 0;
			idx = strtoul(q + 1, &end, 10);
			if (errno != 0 || *end != ']' || idx > PATH_INDEX_MAX ||
			    (q[1] == '0' && end != q + 2))
				return -1;
			p->seg[p->n].index = (int)idx;
			q = end + 1;
		}
		p->n++;
		if (*q == '\0')
			return 0;
		if (*q != '.')
			return -1;
		q++;
	}
}

static int
path_equal(const path_t *a, const path_t *b)
{
	return strcmp(a->text, b->text) == 0;
}

void
mapping_free(mapping_t *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n_cols; i++)
		free(m->cols[i].name);
	free(m->cols);
	free(m->consts);
	free(m->id_column);
	cJSON_Delete(m->doc);
	free(m);
}

const char *
mapping_method(const mapping_t *m)
{
	return m->patch ? "PATCH" : "PUT";
}

static int
only_keys(const cJSON *obj, const char *const *keys, char *bad, size_t badlen)
{
	const cJSON *it;
	size_t i;
	int ok;

	cJSON_ArrayForEach(it, obj) {
		ok = 0;
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(it->string, keys[i]) == 0)
				ok = 1;
		if (!ok) {
			snprintf(bad, badlen, "%s", it->string);
			return -1;
		}
	}
	return 0;
}

/* 1 if v is, or holds, an empty object or array (which prune drops). */
static int
holds_empty(const cJSON *v)
{
	const cJSON *c;

	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	if (v->child == NULL)
		return 1;
	for (c = v->child; c != NULL; c = c->next)
		if (holds_empty(c))
			return 1;
	return 0;
}

static int
load_column(mapping_t *m, const cJSON *spec, column_t *c, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "field", "type", "date_format",
	    "separator", "values", "required", "ignore", NULL };
	const cJSON *v;
	const char *s;
	char bad[64];
	size_t i;

	if (!cJSON_IsObject(spec)) {
		snprintf(err, errlen, "columns.\"%s\": must be an object", c->name);
		return -1;
	}
	if (only_keys(spec, keys, bad, sizeof(bad)) < 0) {
		snprintf(err, errlen, "columns.\"%s\": unknown key \"%s\"",
		    c->name, bad);
		return -1;
	}
	v = cJSON_GetObjectItemCaseSensitive(spec, "ignore");
	if (v != NULL) {
		if (!cJSON_IsBool(v) || cJSON_GetArraySize(spec) != 1) {
			snprintf(err, errlen, "columns.\"%s\".ignore: must be true "
			    "and alone", c->name);
			return -1;
		}
		c->ignore = cJSON_IsTrue(v);
		if (!c->ignore) {
			snprintf(err, errlen, "columns.\"%s\".ignore: must be true",
			    c->name);
			return -1;
		}
		return 0;
	}
	s = json_get_str(spec, "field");
	if (s == NULL || path_parse(s, &c->path) < 0) {
		snprintf(err, errlen, "columns.\"%s\".field: want a path like "
		    "\"person.surname\" or \"addresses[0].postcode\"", c->name);
		return -1;
	}
	if (strcmp(c->path.seg[0].name, "version") == 0 ||
	    (c->path.n == 1 && strcmp(c->path.seg[0].name, "id") == 0)) {
		snprintf(err, errlen, "columns.\"%s\".field: \"%s\" is not "
		    "written from a column", c->name, s);
		return -1;
	}
	c->type = COL_STRING;
	if ((v = cJSON_GetObjectItemCaseSensitive(spec, "type")) != NULL) {
		static const char *const names[] = { "string", "integer",
		    "number", "boolean", "date", "list" };
		s = cJSON_GetStringValue(v);
		for (i = 0; s != NULL && i < 6; i++)
			if (strcmp(s, names[i]) == 0)
				break;
		if (s == NULL || i == 6) {
			snprintf(err, errlen, "columns.\"%s\".type: want string, "
			    "integer, number, boolean, date or list", c->name);
			return -1;
		}
		c->type = (col_type_t)i;
	}
	c->date_fmt = DATE_ISO;
	if ((v = cJSON_GetObjectItemCaseSensitive(spec, "date_format")) != NULL) {
		s = cJSON_GetStringValue(v);
		if (c->type != COL_DATE || s == NULL)
			goto bad_date;
		if (strcmp(s, "YYYY-MM-DD") == 0)
			c->date_fmt = DATE_ISO;
		else if (strcmp(s, "DD/MM/YYYY") == 0)
			c->date_fmt = DATE_DMY_SLASH;
		else if (strcmp(s, "MM/DD/YYYY") == 0)
			c->date_fmt = DATE_MDY_SLASH;
		else if (strcmp(s, "DD-MM-YYYY") == 0)
			c->date_fmt = DATE_DMY_DASH;
		else
			goto bad_date;
	}
	c->sep = ';';
	if ((v = cJSON_GetObjectItemCaseSensitive(spec, "separator")) != NULL) {
		s = cJSON_GetStringValue(v);
		if (c->type != COL_LIST || s == NULL || strlen(s) != 1 ||
		    s[0] == '\0') {
			snprintf(err, errlen, "columns.\"%s\".separator: one "
			    "character, for type list only", c->name);
			return -1;
		}
		c->sep = s[0];
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(spec, "values")) != NULL) {
		const cJSON *e;

		if (!cJSON_IsObject(v) || (c->type != COL_STRING &&
		    c->type != COL_LIST)) {
			snprintf(err, errlen, "columns.\"%s\".values: an object "
			    "of strings, for types string and list", c->name);
			return -1;
		}
		cJSON_ArrayForEach(e, v) {
			if (!cJSON_IsString(e)) {
				snprintf(err, errlen, "columns.\"%s\".values.\"%s\": "
				    "must be a string", c->name, e->string);
				return -1;
			}
		}
		c->values = v;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(spec, "required")) != NULL) {
		if (!cJSON_IsBool(v)) {
			snprintf(err, errlen, "columns.\"%s\".required: true or "
			    "false", c->name);
			return -1;
		}
		c->required = cJSON_IsTrue(v);
	}
	(void)m;
	return 0;
bad_date:
	snprintf(err, errlen, "columns.\"%s\".date_format: YYYY-MM-DD, "
	    "DD/MM/YYYY, MM/DD/YYYY or DD-MM-YYYY, for type date only", c->name);
	return -1;
}

mapping_t *
mapping_load(const char *json, size_t len, char *err, size_t errlen)
{
	static const char *const keys[] = { "format", "description", "method",
	    "id", "constants", "columns", "unmapped", NULL };
	mapping_t *m;
	const cJSON *v, *it;
	const char *s;
	char why[160];
	size_t i, j, n;

	if (len > MAPPING_FILE_MAX) {
		snprintf(err, errlen, "mapping larger than %u bytes",
		    MAPPING_FILE_MAX);
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->doc = json_parse_strict(json, len, 8, why, sizeof(why));
	if (m->doc == NULL) {
		snprintf(err, errlen, "mapping: %s", why);
		goto fail;
	}
	if (!cJSON_IsObject(m->doc)) {
		snprintf(err, errlen, "mapping: not a JSON object");
		goto fail;
	}
	if (only_keys(m->doc, keys, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "mapping: unknown key \"%s\"", why);
		goto fail;
	}
	s = json_get_str(m->doc, "format");
	if (s == NULL || strcmp(s, "visor-csv-mapping/1") != 0) {
		snprintf(err, errlen, "format: must be \"visor-csv-mapping/1\"");
		goto fail;
	}
	v = cJSON_GetObjectItemCaseSensitive(m->doc, "description");
	if (v != NULL && !cJSON_IsString(v)) {
		snprintf(err, errlen, "description: must be a string");
		goto fail;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(m->doc, "method")) != NULL) {
		s = cJSON_GetStringValue(v);
		if (s != NULL && strcmp(s, "PATCH") == 0)
			m->patch = 1;
		else if (s == NULL || strcmp(s, "PUT") != 0) {
			snprintf(err, errlen, "method: \"PUT\" or \"PATCH\"");
			goto fail;
		}
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(m->doc, "unmapped")) != NULL) {
		s = cJSON_GetStringValue(v);
		if (s != NULL && strcmp(s, "ignore") == 0)
			m->unmapped_ignore = 1;
		else if (s == NULL || strcmp(s, "error") != 0) {
			snprintf(err, errlen, "unmapped: \"error\" or \"ignore\"");
			goto fail;
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(m->doc, "id");
	if (cJSON_IsString(v))
		s = v->valuestring;
	else if (cJSON_IsObject(v)) {
		static const char *const idkeys[] = { "column", "prefix", NULL };
		const char *pre;

		if (only_keys(v, idkeys, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "id: unknown key \"%s\"", why);
			goto fail;
		}
		s = json_get_str(v, "column");
		if ((it = cJSON_GetObjectItemCaseSensitive(v, "prefix")) != NULL) {
			pre = cJSON_GetStringValue(it);
			if (pre == NULL || strlen(pre) > 32) {
				snprintf(err, errlen, "id.prefix: a string of at "
				    "most 32 characters");
				goto fail;
			}
			for (i = 0; pre[i] != '\0'; i++)
				if (!((pre[i] >= 'A' && pre[i] <= 'Z') ||
				    (pre[i] >= '0' && pre[i] <= '9') || pre[i] == '-')) {
					snprintf(err, errlen, "id.prefix: only "
					    "A-Z, 0-9 and '-'");
					goto fail;
				}
			snprintf(m->id_prefix, sizeof(m->id_prefix), "%s", pre);
		}
	} else
		s = NULL;
	if (s == NULL || s[0] == '\0' || strlen(s) > COLUMN_NAME_MAX) {
		snprintf(err, errlen, "id: the name of the id column, or "
		    "{\"column\": name, \"prefix\": text}");
		goto fail;
	}
	if ((m->id_column = dup_str(s)) == NULL)
		goto oom;

	v = cJSON_GetObjectItemCaseSensitive(m->doc, "columns");
	if (!cJSON_IsObject(v) || (n = (size_t)cJSON_GetArraySize(v)) == 0 ||
	    n > COLUMNS_MAX) {
		snprintf(err, errlen, "columns: an object of 1 to %d columns",
		    COLUMNS_MAX);
		goto fail;
	}
	if ((m->cols = calloc(n, sizeof(*m->cols))) == NULL)
		goto oom;
	cJSON_ArrayForEach(it, v) {
		column_t *c = &m->cols[m->n_cols];

		if (it->string[0] == '\0' || strlen(it->string) > COLUMN_NAME_MAX) {
			snprintf(err, errlen, "columns: a column name is empty "
			    "or too long");
			goto fail;
		}
		if ((c->name = dup_str(it->string)) == NULL)
			goto oom;
		m->n_cols++;
		if (load_column(m, it, c, err, errlen) < 0)
			goto fail;
		if (strcmp(c->name, m->id_column) == 0 && !c->ignore) {
			snprintf(err, errlen, "columns.\"%s\": the id column is "
			    "mapped by \"id\"", c->name);
			goto fail;
		}
	}

	if ((v = cJSON_GetObjectItemCaseSensitive(m->doc, "constants")) != NULL) {
		if (!cJSON_IsObject(v)) {
			snprintf(err, errlen, "constants: must be an object");
			goto fail;
		}
		n = (size_t)cJSON_GetArraySize(v);
		if (n > COLUMNS_MAX) {
			snprintf(err, errlen, "constants: too many");
			goto fail;
		}
		if (n > 0 && (m->consts = calloc(n, sizeof(*m->consts))) == NULL)
			goto oom;
		cJSON_ArrayForEach(it, v) {
			constant_t *k = &m->consts[m->n_consts];

			if (path_parse(it->string, &k->path) < 0 ||
			    strcmp(k->path.seg[0].name, "version") == 0 ||
			    (k->path.n == 1 &&
			    strcmp(k->path.seg[0].name, "id") == 0)) {
				snprintf(err, errlen, "constants.\"%s\": not a "
				    "writable field path", it->string);
				goto fail;
			}
			if (holds_empty(it)) {
				snprintf(err, errlen, "constants.\"%s\": empty "
				    "objects and arrays are dropped from records, "
				    "so cannot be written", it->string);
				goto fail;
			}
			k->value = it;
			m->n_consts++;
		}
	}
	/* no two writers of one path */
	for (i = 0; i < m->n_cols; i++) {
		if (m->cols[i].ignore)
			continue;
		for (j = i + 1; j < m->n_cols; j++)
			if (!m->cols[j].ignore &&
			    path_equal(&m->cols[i].path, &m->cols[j].path)) {
				snprintf(err, errlen, "columns.\"%s\" and \"%s\" "
				    "both write %s", m->cols[i].name,
				    m->cols[j].name, m->cols[i].path.text);
				goto fail;
			}
		for (j = 0; j < m->n_consts; j++)
			if (path_equal(&m->cols[i].path, &m->consts[j].path)) {
				snprintf(err, errlen, "columns.\"%s\" and "
				    "constants both write %s", m->cols[i].name,
				    m->cols[i].path.text);
				goto fail;
			}
	}
	return m;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	mapping_free(m);
	return NULL;
}

int
mapping_bind(mapping_t *m, const char *const *header, size_t n, char *err,
    size_t errlen)
{
	size_t i, j;
	int found;

	m->bound = 0;
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (strcmp(header[i], header[j]) == 0) {
				snprintf(err, errlen, "header: column \"%s\" "
				    "appears twice", header[i]);
				return -1;
			}
	found = 0;
	for (i = 0; i < n; i++)
		if (strcmp(header[i], m->id_column) == 0) {
			m->id_idx = i;
			found = 1;
		}
	if (!found) {
		snprintf(err, errlen, "header: no id column \"%s\"",
		    m->id_column);
		return -1;
	}
	for (j = 0; j < m->n_cols; j++) {
		found = 0;
		for (i = 0; i < n; i++)
			if (strcmp(header[i], m->cols[j].name) == 0) {
				m->cols[j].idx = i;
				found = 1;
			}
		if (!found && !m->cols[j].ignore) {
			snprintf(err, errlen, "header: no column \"%s\" (named "
			    "in the mapping)", m->cols[j].name);
			return -1;
		}
	}
	if (!m->unmapped_ignore) {
		for (i = 0; i < n; i++) {
			if (i == m->id_idx)
				continue;
			found = 0;
			for (j = 0; j < m->n_cols; j++)
				if (strcmp(header[i], m->cols[j].name) == 0)
					found = 1;
			if (!found) {
				snprintf(err, errlen, "header: column \"%s\" is "
				    "not in the mapping (map it, ignore it, or "
				    "set \"unmapped\": \"ignore\")", header[i]);
				return -1;
			}
		}
	}
	m->n_header = n;
	m->bound = 1;
	return 0;
}

/* --- building the record ------------------------------------------------- */

/* Put value at path under root; takes ownership of value.  0 or -1. */
static int
set_path(cJSON *root, const path_t *p, cJSON *value)
{
	cJSON *cur = root, *next, *arr;
	size_t i;
	int k, last;

	for (i = 0; i < p->n; i++) {
		last = i + 1 == p->n;
		next = cJSON_GetObjectItemCaseSensitive(cur, p->seg[i].name);
		if (p->seg[i].index < 0) {
			if (last) {
				if (next != NULL)
					goto fail;
				cJSON_AddItemToObject(cur, p->seg[i].name, value);
				return 0;
			}
			if (next == NULL) {
				if ((next = cJSON_AddObjectToObject(cur,
				    p->seg[i].name)) == NULL)
					goto fail;
			} else if (!cJSON_IsObject(next))
				goto fail;
			cur = next;
			continue;
		}
		arr = next;
		if (arr == NULL) {
			if ((arr = cJSON_AddArrayToObject(cur,
			    p->seg[i].name)) == NULL)
				goto fail;
		} else if (!cJSON_IsArray(arr))
			goto fail;
		/* pad with empty objects; empty ones are pruned later */
		for (k = cJSON_GetArraySize(arr); k <= p->seg[i].index; k++) {
			if ((next = cJSON_CreateObject()) == NULL)
				goto fail;
			cJSON_AddItemToArray(arr, next);
		}
		next = cJSON_GetArrayItem(arr, p->seg[i].index);
		if (last) {
			if (!cJSON_IsObject(next) || next->child != NULL)
				goto fail;
			if (!cJSON_ReplaceItemInArray(arr, p->seg[i].index, value))
				goto fail;
			return 0;
		}
		if (!cJSON_IsObject(next))
			goto fail;
		cur = next;
	}
fail:
	cJSON_Delete(value);
	return -1;
}

/* Append i to *kept (made on first use).  0 or -1. */
static int
keep_index(cJSON **kept, int i)
{
	cJSON *v;

	if (*kept == NULL && (*kept = cJSON_CreateArray()) == NULL)
		return -1;
	if ((v = cJSON_CreateNumber(i)) == NULL)
		return -1;
	if (!cJSON_AddItemToArray(*kept, v)) {
		cJSON_Delete(v);
		return -1;
	}
	return 0;
}

/*
 * Drop empty objects and arrays, depth first.  node is at path (as the
 * mapping numbers it, "" for the record).  An array that loses elements
 * but not all shifts the later ones down; unless shifts is NULL, its path
 * then maps to the mapping's indices of the elements kept, in order (see
 * mapping_apply_indexed).  -1 if memory is short.
 */
static int
prune(cJSON *node, const char *path, cJSON *shifts)
{
	cJSON *c, *next, *kept = NULL;
	char sub[PATH_SEGS_MAX * (PATH_NAME_MAX + 4) + 1];
	int i = 0, dropped = 0, n, rc = 0;

	for (c = node->child; c != NULL; c = next, i++) {
		next = c->next;
		if (!cJSON_IsObject(c) && !cJSON_IsArray(c)) {
			if (cJSON_IsArray(node) && shifts != NULL &&
			    keep_index(&kept, i) < 0)
				rc = -1;
			continue;
		}
		if (cJSON_IsArray(node))
			n = snprintf(sub, sizeof(sub), "%s[%d]", path, i);
		else
			n = snprintf(sub, sizeof(sub), "%s%s%s", path,
			    *path ? "." : "", c->string);
		if (n < 0 || (size_t)n >= sizeof(sub))
			sub[0] = '\0';	/* not a mapping path: no shifts */
		if (prune(c, sub, sub[0] ? shifts : NULL) < 0)
			rc = -1;
		if (c->child == NULL) {
			cJSON_Delete(cJSON_DetachItemViaPointer(node, c));
			dropped = 1;
			continue;
		}
		if (cJSON_IsArray(node) && shifts != NULL &&
		    keep_index(&kept, i) < 0)
			rc = -1;
	}
	if (dropped && node->child != NULL && kept != NULL && *path) {
		if (!cJSON_AddItemToObject(shifts, path, kept))
			rc = -1;
		else
			kept = NULL;
	}
	cJSON_Delete(kept);
	return rc;
}

/* Could c be just before a field path's start, inside a longer word or
 * path ("Xaddresses", "a.addresses")?  Then it is not a path's start. */
static int
path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '[' ||
	    c == ']' || c == '-';
}

int
mapping_unshift(const cJSON *shifts, const char *msg, char *out,
    size_t outlen)
{
	buf_t b = BUF_INIT;
	char prefix[PATH_SEGS_MAX * (PATH_NAME_MAX + 4) + 1];
	const char *p = msg, *q;
	const cJSON *kept, *k;
	size_t n, plen;
	long idx;
	int changed = 0, ok = 1;
	char *end;

	while (*p != '\0' && ok) {
		if (!((*p >= 'a' && *p <= 'z') || *p == '_') ||
		    (p > msg && path_char(p[-1]))) {
			ok = buf_append(&b, p++, 1) == 0;
			continue;
		}
		/* a path: name, [index] maybe, then '.' and another */
		plen = 0;
		prefix[0] = '\0';
		for (;;) {
			for (q = p; (*q >= 'a' && *q <= 'z') ||
			    (*q >= '0' && *q <= '9') || *q == '_'; q++)
				;
			n = (size_t)(q - p);
			if (plen + n + 24 >= sizeof(prefix)) {
				/* longer than any mapping path: as it is */
				ok = ok && buf_append(&b, p, n) == 0;
				p = q;
				break;
			}
			memcpy(prefix + plen, p, n);
			plen += n;
			prefix[plen] = '\0';
			ok = ok && buf_append(&b, p, n) == 0;
			p = q;
			if (*p == '[' && p[1] >= '0' && p[1] <= '9') {
				errno = 0;
				idx = strtol(p + 1, &end, 10);
				if (*end != ']' || errno != 0 || idx < 0)
					break;
				kept = cJSON_GetObjectItemCaseSensitive(shifts,
				    prefix);
				if (cJSON_IsArray(kept) && idx <
				    cJSON_GetArraySize(kept) &&
				    cJSON_IsNumber(k = cJSON_GetArrayItem(kept,
				    (int)idx))) {
					changed |= k->valueint != idx;
					idx = k->valueint;
				}
				plen += (size_t)snprintf(prefix + plen,
				    sizeof(prefix) - plen, "[%ld]", idx);
				ok = ok && buf_printf(&b, "[%ld]", idx) == 0;
				p = end + 1;
			}
			if (*p != '.' || !((p[1] >= 'a' && p[1] <= 'z') ||
			    p[1] == '_'))
				break;
			prefix[plen++] = '.';
			prefix[plen] = '\0';
			ok = ok && buf_append(&b, ".", 1) == 0;
			p++;
		}
	}
	if (!ok || !changed) {
		buf_free(&b);
		snprintf(out, outlen, "%s", msg);
		return 0;
	}
	snprintf(out, outlen, "%.*s", (int)b.len, b.data ? b.data : "");
	buf_free(&b);
	return 1;
}

static int
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
digits(const char *s, size_t n, int *out)
{
	size_t i;
	int v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Parse a date in fmt into "YYYY-MM-DD".  0 or -1. */
static int
parse_date(const char *s, size_t len, date_fmt_t fmt, char out[11])
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d;
	char sep = fmt == DATE_DMY_SLASH || fmt == DATE_MDY_SLASH ? '/' : '-';

	if (len != 10)
		return -1;
	if (fmt == DATE_ISO) {
		if (s[4] != '-' || s[7] != '-' || digits(s, 4, &y) < 0 ||
		    digits(s + 5, 2, &mo) < 0 || digits(s + 8, 2, &d) < 0)
			return -1;
	} else {
		if (s[2] != sep || s[5] != sep || digits(s + 6, 4, &y) < 0)
			return -1;
		if (fmt == DATE_MDY_SLASH) {
			if (digits(s, 2, &mo) < 0 || digits(s + 3, 2, &d) < 0)
				return -1;
		} else if (digits(s, 2, &d) < 0 || digits(s + 3, 2, &mo) < 0)
			return -1;
	}
	if (y < 1800 || y > 2200 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y)))
		return -1;
	out[0] = (char)('0' + y / 1000);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = '-';
	out[5] = (char)('0' + mo / 10);
	out[6] = (char)('0' + mo % 10);
	out[7] = '-';
	out[8] = (char)('0' + d / 10);
	out[9] = (char)('0' + d % 10);
	out[10] = '\0';
	return 0;
}

static const char *
map_value(const column_t *c, const char *s)
{
	const char *v;

	if (c->values == NULL)
		return s;
	v = json_get_str(c->values, s);
	return v;	/* NULL: not in the table */
}

/* Convert one non-empty cell.  NULL with err on bad data. */
static cJSON *
convert(const column_t *c, const char *s, size_t len, char *err, size_t errlen)
{
	char date[11], item[COLUMN_NAME_MAX * 4];
	const char *p, *q, *end, *mv;
	cJSON *arr, *e;
	long long ll;
	double d;
	char *stop;
	size_t n;

	switch (c->type) {
	case COL_STRING:
		if ((mv = map_value(c, s)) == NULL) {
			snprintf(err, errlen, "column \"%s\": \"%.40s\" is not one "
			    "of the mapped values", c->name, s);
			return NULL;
		}
		return cJSON_CreateString(mv);
	case COL_INTEGER:
		/* An optional '-' then digits: strtoll alone also takes
		 * leading white space of any kind and a '+'. */
		p = s[0] == '-' ? s + 1 : s;
		errno = 0;
		ll = strtoll(s, &stop, 10);
		if (*p < '0' || *p > '9' || errno != 0 || stop == s ||
		    *stop != '\0' ||
		    ll < -9007199254740991LL || ll > 9007199254740991LL) {
			snprintf(err, errlen, "column \"%s\": \"%.40s\" is not an "
			    "integer", c->name, s);
			return NULL;
		}
		return cJSON_CreateNumber((double)ll);
	case COL_NUMBER:
		errno = 0;
		d = strtod(s, &stop);
		if (errno != 0 || stop == s || *stop != '\0' || !isfinite(d) ||
		    isspace((unsigned char)s[0]) || s[0] == '+' ||
		    strpbrk(s, "xXnNiI") != NULL) {
			snprintf(err, errlen, "column \"%s\": \"%.40s\" is not a "
			    "number", c->name, s);
			return NULL;
		}
		return cJSON_CreateNumber(d);
	case COL_BOOLEAN:
		if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
		    strcasecmp(s, "y") == 0 || strcmp(s, "1") == 0)
			return cJSON_CreateTrue();
		if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 ||
		    strcasecmp(s, "n") == 0 || strcmp(s, "0") == 0)
			return cJSON_CreateFalse();
		snprintf(err, errlen, "column \"%s\": \"%.40s\" is not yes/no",
		    c->name, s);
		return NULL;
	case COL_DATE:
		if (parse_date(s, len, c->date_fmt, date) < 0) {
			snprintf(err, errlen, "column \"%s\": \"%.40s\" is not a "
			    "valid date", c->name, s);
			return NULL;
		}
		return cJSON_CreateString(date);
	case COL_LIST:
		if ((arr = cJSON_CreateArray()) == NULL)
			return NULL;
		end = s + len;
		for (p = s; p <= end; p = q + 1) {
			q = memchr(p, c->sep, (size_t)(end - p));
			if (q == NULL)
				q = end;
			while (p < q && (*p == ' ' || *p == '\t' || *p == '\n' ||
			    *p == '\r'))
				p++;
			n = (size_t)(q - p);
			while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
			    p[n - 1] == '\n' || p[n - 1] == '\r'))
				n--;
			if (n == 0)
				continue;
			if (n >= sizeof(item)) {
				snprintf(err, errlen, "column \"%s\": a list item "
				    "is too long", c->name);
				cJSON_Delete(arr);
				return NULL;
			}
			memcpy(item, p, n);
			item[n] = '\0';
			if ((mv = map_value(c, item)) == NULL) {
				snprintf(err, errlen, "column \"%s\": \"%.40s\" is "
				    "not one of the mapped values", c->name, item);
				cJSON_Delete(arr);
				return NULL;
			}
			if ((e = cJSON_CreateString(mv)) == NULL) {
				cJSON_Delete(arr);
				return NULL;
			}
			cJSON_AddItemToArray(arr, e);
		}
		return arr;
	}
	return NULL;
}

static int
is_blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

int
mapping_apply(const mapping_t *m, const char *const *fields, size_t n,
    cJSON **out, char id[MAPPING_ID_MAX], char *err, size_t errlen)
{
	return mapping_apply_indexed(m, fields, n, out, NULL, id, err, errlen);
}

int
mapping_apply_indexed(const mapping_t *m, const char *const *fields,
    size_t n, cJSON **out, cJSON **shifts, char id[MAPPING_ID_MAX],
    char *err, size_t errlen)
{
	cJSON *rec, *v, *sh = NULL;
	const column_t *c;
	const char *f;
	size_t i, flen;
	int w;

	*out = NULL;
	if (shifts != NULL)
		*shifts = NULL;
	id[0] = '\0';
	if (!m->bound) {
		snprintf(err, errlen, "mapping not bound to a header");
		return -1;
	}
	if (n != m->n_header) {
		snprintf(err, errlen, "%zu fields, the header has %zu", n,
		    m->n_header);
		return -1;
	}
	f = fields[m->id_idx];
	w = snprintf(id, MAPPING_ID_MAX, "%s%s", m->id_prefix, f);
	if (w < 0 || w >= MAPPING_ID_MAX || !mapping_valid_id(id)) {
		snprintf(err, errlen, "column \"%s\": \"%.70s\" does not make a "
		    "record id ([A-Z0-9-]{3,64})", m->id_column, f);
		id[0] = '\0';
		return -1;
	}
	if ((rec = cJSON_CreateObject()) == NULL)
		goto oom;
	if (!m->patch && cJSON_AddStringToObject(rec, "id", id) == NULL)
		goto oom;
	for (i = 0; i < m->n_consts; i++) {
		if ((v = cJSON_Duplicate(m->consts[i].value, 1)) == NULL)
			goto oom;
		if (set_path(rec, &m->consts[i].path, v) < 0) {
			snprintf(err, errlen, "constants.\"%s\": conflicts with "
			    "another field", m->consts[i].path.text);
			goto fail;
		}
	}
	for (i = 0; i < m->n_cols; i++) {
		c = &m->cols[i];
		if (c->ignore)
			continue;
		f = fields[c->idx];
		flen = strlen(f);
		if (is_blank(f, flen)) {
			if (c->required) {
				snprintf(err, errlen, "column \"%s\": empty but "
				    "required", c->name);
				goto fail;
			}
			continue;
		}
		if (errlen > 0)
			err[0] = '\0';
		if ((v = convert(c, f, flen, err, errlen)) == NULL) {
			if (errlen > 0 && err[0] == '\0')
				goto oom;	/* cJSON could not allocate */
			goto fail;
		}
		if (c->required && cJSON_IsArray(v) && v->child == NULL) {
			/* only separators: pruned below, as an empty cell */
			cJSON_Delete(v);
			snprintf(err, errlen, "column \"%s\": empty but "
			    "required", c->name);
			goto fail;
		}
		if (set_path(rec, &c->path, v) < 0) {
			snprintf(err, errlen, "column \"%s\": %s conflicts with "
			    "another field", c->name, c->path.text);
			goto fail;
		}
	}
	if (shifts != NULL && (sh = cJSON_CreateObject()) == NULL)
		goto oom;
	if (prune(rec, "", sh) < 0) {
		cJSON_Delete(sh);
		goto oom;
	}
	if (sh != NULL && sh->child == NULL) {
		cJSON_Delete(sh);
		sh = NULL;
	}
	if (shifts != NULL)
		*shifts = sh;
	*out = rec;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	cJSON_Delete(rec);
	return -1;
}
