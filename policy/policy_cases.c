/*
 * policy_cases: run expected-outcome cases against a policy.
 */
#include "policy/policy_cases.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "policy/record_schema.h"
#include "util/guard.h"
#include "util/json.h"

#define CASES_DEPTH 16
#define CASES_FILE_MAX (16 * 1024 * 1024)
#define CLEARANCES_MAX 32
#define WRITE_PATHS_MAX 256

static int cerr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
cerr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Count matches of the path suffix starting at seg in v. */
static int
count_from(const cJSON *v, const char *seg)
{
	char name[128];
	const char *dot, *br, *end;
	const cJSON *m, *e;
	size_t n;
	long idx = -2;	/* -2: no brackets, -1: [], else index */
	char *ep;
	int total, c;

	if (*seg == '\0')
		return 1;
	dot = strchr(seg, '.');
	end = dot ? dot : seg + strlen(seg);
	br = memchr(seg, '[', (size_t)(end - seg));
	n = (size_t)((br ? br : end) - seg);
	if (n == 0 || n >= sizeof(name))
		return -1;
	memcpy(name, seg, n);
	name[n] = '\0';
	if (br != NULL) {
		if (end[-1] != ']')
			return -1;
		if (br + 2 == end) {
			idx = -1;
		} else {
			idx = strtol(br + 1, &ep, 10);
			if (ep != end - 1 || idx < 0 || br[1] < '0' || br[1] > '9')
				return -1;
		}
	}
	if (!cJSON_IsObject(v) || (m = cJSON_GetObjectItemCaseSensitive(v, name)) == NULL)
		return 0;
	if (idx == -2)
		return count_from(m, dot ? dot + 1 : "");
	if (!cJSON_IsArray(m))
		return 0;
	if (idx >= 0) {
		if ((e = cJSON_GetArrayItem(m, (int)idx)) == NULL)
			return 0;
		return count_from(e, dot ? dot + 1 : "");
	}
	total = 0;
	cJSON_ArrayForEach(e, m) {
		if ((c = count_from(e, dot ? dot + 1 : "")) < 0)
			return -1;
		total += c;
	}
	return total;
}

/* name(.name)* where each name is [a-z_][a-z0-9_]* optionally followed by [] or [N]. */
static int
path_syntax_ok(const char *p)
{
	size_t n;

	for (;;) {
		for (n = 0; (p[n] >= 'a' && p[n] <= 'z') || p[n] == '_' ||
		    (n > 0 && p[n] >= '0' && p[n] <= '9'); n++)
			;
		if (n == 0 || n >= 128)
			return 0;
		p += n;
		if (*p == '[') {
			p++;
			for (n = 0; p[n] >= '0' && p[n] <= '9'; n++)
				;
			if (n > 6 || p[n] != ']')
				return 0;
			p += n + 1;
		}
		if (*p == '\0')
			return 1;
		if (*p != '.')
			return 0;
		p++;
	}
}

int
policy_cases_count_path(const cJSON *v, const char *path)
{
	if (path == NULL || !path_syntax_ok(path))
		return -1;
	return count_from(v, path);
}

/* The single value at path (index or plain segments only), or NULL. */
static const cJSON *
value_at(const cJSON *v, const char *path)
{
	char seg[128];
	const char *p = path, *dot, *br;
	size_t n;
	char *ep;
	long idx;

	while (v != NULL && *p) {
		dot = strchr(p, '.');
		n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n >= sizeof(seg))
			return NULL;
		memcpy(seg, p, n);
		seg[n] = '\0';
		br = strchr(seg, '[');
		if (br != NULL) {
			idx = strtol(br + 1, &ep, 10);
			if (*ep != ']' || ep[1] != '\0' || idx < 0 || br[1] < '0' || br[1] > '9')
				return NULL;
			seg[br - seg] = '\0';
			v = cJSON_GetObjectItemCaseSensitive(v, seg);
			v = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, (int)idx) : NULL;
		} else {
			v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, seg) : NULL;
		}
		p = dot ? dot + 1 : p + n;
	}
	return v;
}

static int
in_list(const char *const *l, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(l[i], s) == 0)
			return 1;
	return 0;
}

static int
check_strings(const cJSON *a, const char *what, const char *name, char *err,
    size_t errlen)
{
	const cJSON *e;

	if (a == NULL)
		return 0;
	if (!cJSON_IsArray(a))
		return cerr(err, errlen, "case \"%s\": %s: not an array", name, what);
	cJSON_ArrayForEach(e, a)
		if (!cJSON_IsString(e))
			return cerr(err, errlen, "case \"%s\": %s: not an array of "
			    "strings", name, what);
	return 0;
}

static const char *
str_or(const cJSON *obj, const char *key, const char *dflt)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(m) ? m->valuestring : dflt;
}

/* Run one case.  Returns 1 passed, 0 failed (reason in report), -1 bad. */
static int
run_case(const policy_t *p, const cJSON *c, const cJSON *records,
    const cJSON *defaults, size_t idx, buf_t *report, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "as", "clearances", "purpose",
	    "op", "area", "today", "record", "paths", "expect", "present",
	    "absent", "equals", "withheld", "rules", NULL };
	const char *clear[CLEARANCES_MAX];
	const char *wpaths[WRITE_PATHS_MAX];
	const char *name, *as, *expect, *area, *today, *opname;
	const cJSON *m, *rec, *e, *filtered;
	const char *const *list;
	char ierr[256], nbuf[32];
	policy_decision_t *d = NULL;
	policy_request_t req;
	record_paths_t *changed = NULL;
	identity_t id;
	size_t i, n, nclear = 0, nw = 0;
	int op, rc = -1, ok = 1, cnt;

	if (!cJSON_IsObject(c))
		return cerr(err, errlen, "cases[%zu]: not an object", idx);
	snprintf(nbuf, sizeof(nbuf), "cases[%zu]", idx);
	name = str_or(c, "name", nbuf);
	cJSON_ArrayForEach(m, c) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(keys[i], m->string) == 0)
				break;
		if (keys[i] == NULL)
			return cerr(err, errlen, "case \"%s\": %s: unknown key", name,
			    m->string);
	}
	as = str_or(c, "as", NULL);
	if (as == NULL || identity_parse(as, strlen(as), &id, ierr, sizeof(ierr)) < 0)
		return cerr(err, errlen, "case \"%s\": as: missing or not an "
		    "identity URI", name);
	opname = str_or(c, "op", "read");
	if ((op = policy_op_from_name(opname)) < 0)
		return cerr(err, errlen, "case \"%s\": op: unknown \"%s\"", name, opname);
	expect = str_or(c, "expect", NULL);
	if (expect == NULL || (strcmp(expect, "allow") != 0 && strcmp(expect, "deny") != 0))
		return cerr(err, errlen, "case \"%s\": expect: not \"allow\" or "
		    "\"deny\"", name);
	m = cJSON_GetObjectItemCaseSensitive(c, "record");
	rec = cJSON_IsString(m) ? cJSON_GetObjectItemCaseSensitive(records, m->valuestring) : m;
	if (!cJSON_IsObject(rec))
		return cerr(err, errlen, "case \"%s\": record: missing, or not a "
		    "record or the name of one in \"records\"", name);
	if (record_validate(rec, ierr, sizeof(ierr)) < 0)
		return cerr(err, errlen, "case \"%s\": record: %s", name, ierr);
	m = cJSON_GetObjectItemCaseSensitive(c, "clearances");
	GUARD(check_strings(m, "clearances", name, err, errlen), out);
	cJSON_ArrayForEach(e, m) {
		if (nclear == CLEARANCES_MAX)
			return cerr(err, errlen, "case \"%s\": clearances: too many", name);
		clear[nclear++] = e->valuestring;
	}
	for (i = 0; i < 5; i++) {
		static const char *const lists[] = { "present", "absent", "withheld",
		    "rules", "paths" };

		GUARD(check_strings(cJSON_GetObjectItemCaseSensitive(c, lists[i]),
		    lists[i], name, err, errlen), out);
	}
	area = str_or(c, "area", str_or(defaults, "area",
	    str_or(rec, "managing_area", NULL)));
	today = str_or(c, "today", str_or(defaults, "today", NULL));
	if (today == NULL || !record_date_valid(today))
		return cerr(err, errlen, "case \"%s\": today: missing or not a date "
		    "(set it in the case or in \"defaults\")", name);
	memset(&req, 0, sizeof(req));
	req.op = (policy_op_t)op;
	req.caller = &id;
	req.clearances = clear;
	req.n_clearances = nclear;
	req.purpose = str_or(c, "purpose", NULL);
	if (req.purpose == NULL || !policy_purpose_valid(req.purpose))
		return cerr(err, errlen, "case \"%s\": purpose: missing or not a "
		    "purpose of SPEC section 5", name);
	req.local_area = area;
	req.today = today;

	switch (req.op) {
	case POLICY_OP_READ:
	case POLICY_OP_TRANSFER:
	case POLICY_OP_INGRESS:
		if (policy_filter(p, &req, rec, &d) < 0)
			return cerr(err, errlen, "case \"%s\": evaluation failed", name);
		break;
	case POLICY_OP_WRITE:
		m = cJSON_GetObjectItemCaseSensitive(c, "paths");
		if (m != NULL) {
			cJSON_ArrayForEach(e, m) {
				if (nw == WRITE_PATHS_MAX)
					return cerr(err, errlen, "case \"%s\": paths: too "
					    "many", name);
				wpaths[nw++] = e->valuestring;
			}
		} else {
			if ((changed = record_changed_paths(NULL, rec)) == NULL)
				return cerr(err, errlen, "out of memory");
			for (i = 0; i < changed->count && i < WRITE_PATHS_MAX; i++)
				wpaths[nw++] = changed->items[i];
		}
		rc = policy_check_write(p, &req, rec, wpaths, nw, &d);
		record_paths_free(changed);
		if (rc < 0)
			return cerr(err, errlen, "case \"%s\": evaluation failed", name);
		break;
	case POLICY_OP_ERASE:
		if (policy_check_erase(p, &req, rec, &d) < 0)
			return cerr(err, errlen, "case \"%s\": evaluation failed", name);
		break;
	case POLICY_OP_INITIATE_TRANSFER:
		if (policy_check_initiate_transfer(p, &req, rec, &d) < 0)
			return cerr(err, errlen, "case \"%s\": evaluation failed", name);
		break;
	}
	rc = -1;

	if (policy_decision_allowed(d) != (strcmp(expect, "allow") == 0)) {
		ok = 0;
		GUARD(buf_printf(report, "FAIL %s: expected %s, got %s (%s)\n", name,
		    expect, policy_decision_allowed(d) ? "allow" : "deny",
		    policy_decision_reason(d)), out);
	}
	filtered = policy_decision_record(d);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "present")) {
		cnt = policy_cases_count_path(filtered, e->valuestring);
		if (cnt < 0) {
			cerr(err, errlen, "case \"%s\": present: bad path \"%s\"",
			    name, e->valuestring);
			goto out;
		}
		if (cnt == 0) {
			ok = 0;
			GUARD(buf_printf(report, "FAIL %s: %s expected present, is "
			    "absent\n", name, e->valuestring), out);
		}
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "absent")) {
		cnt = policy_cases_count_path(filtered, e->valuestring);
		if (cnt < 0) {
			cerr(err, errlen, "case \"%s\": absent: bad path \"%s\"",
			    name, e->valuestring);
			goto out;
		}
		if (cnt > 0) {
			ok = 0;
			GUARD(buf_printf(report, "FAIL %s: %s expected absent, is "
			    "present\n", name, e->valuestring), out);
		}
	}
	m = cJSON_GetObjectItemCaseSensitive(c, "equals");
	if (m != NULL && !cJSON_IsObject(m)) {
		cerr(err, errlen, "case \"%s\": equals: not an object", name);
		goto out;
	}
	cJSON_ArrayForEach(e, m) {
		const cJSON *v = value_at(filtered, e->string);

		if (v == NULL || !cJSON_Compare(v, e, 1)) {
			char *got = v ? json_print(v) : NULL;

			ok = 0;
			rc = buf_printf(report, "FAIL %s: %s expected a value, got %s\n",
			    name, e->string, got ? got : "nothing");
			free(got);
			GUARD(rc, out);
			rc = -1;
		}
	}
	list = policy_decision_withheld(d, &n);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "withheld"))
		if (!in_list(list, n, e->valuestring)) {
			ok = 0;
			GUARD(buf_printf(report, "FAIL %s: %s expected among the withheld "
			    "paths\n", name, e->valuestring), out);
		}
	list = policy_decision_rules(d, &n);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "rules"))
		if (!in_list(list, n, e->valuestring)) {
			ok = 0;
			GUARD(buf_printf(report, "FAIL %s: rule %s expected among the "
			    "deciding rules\n", name, e->valuestring), out);
		}
	rc = ok;
out:
	policy_decision_free(d);
	if (rc < 0 && err[0] == '\0')
		cerr(err, errlen, "out of memory");
	return rc;
}

int
policy_cases_run(const policy_t *p, const char *cases_json, size_t len,
    buf_t *report, size_t *passed, size_t *failed, char *err, size_t errlen)
{
	cJSON *root;
	const cJSON *m, *cases, *records, *defaults, *c;
	char perr[128], dummy[1];
	size_t idx = 0;
	int r, rc = -1;

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	*passed = *failed = 0;
	if (p == NULL || cases_json == NULL || report == NULL)
		return cerr(err, errlen, "nothing to run");
	if (len > CASES_FILE_MAX)
		return cerr(err, errlen, "cases file larger than %d bytes", CASES_FILE_MAX);
	if ((root = json_parse_strict(cases_json, len, CASES_DEPTH, perr, sizeof(perr))) == NULL)
		return cerr(err, errlen, "cases: not valid JSON: %s", perr);
	if (!cJSON_IsObject(root)) {
		cerr(err, errlen, "cases: not a JSON object");
		goto out;
	}
	cJSON_ArrayForEach(m, root)
		if (strcmp(m->string, "defaults") != 0 && strcmp(m->string, "records") != 0 &&
		    strcmp(m->string, "cases") != 0 && strcmp(m->string, "description") != 0) {
			cerr(err, errlen, "%s: unknown key (expected description, defaults, "
			    "records, cases)", m->string);
			goto out;
		}
	defaults = cJSON_GetObjectItemCaseSensitive(root, "defaults");
	records = cJSON_GetObjectItemCaseSensitive(root, "records");
	cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
	if ((defaults != NULL && !cJSON_IsObject(defaults)) ||
	    (records != NULL && !cJSON_IsObject(records))) {
		cerr(err, errlen, "defaults and records must be objects");
		goto out;
	}
	if (!cJSON_IsArray(cases) || cJSON_GetArraySize(cases) > POLICY_CASES_MAX) {
		cerr(err, errlen, "cases: missing, not an array or more than %d",
		    POLICY_CASES_MAX);
		goto out;
	}
	cJSON_ArrayForEach(c, cases) {
		r = run_case(p, c, records, defaults, idx++, report, err, errlen);
		if (r < 0)
			goto out;
		if (r)
			(*passed)++;
		else
			(*failed)++;
	}
	if (buf_printf(report, "%zu passed, %zu failed\n", *passed, *failed) < 0) {
		cerr(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}
