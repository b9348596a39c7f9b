/*
 * visorctl policy: check, explain and test policy files; print the default.
 *
 *   visorctl policy check FILE
 *   visorctl policy explain FILE --as URI [--clearance C]... --purpose P
 *       [--op read|transfer|ingress|write|erase|initiate-transfer]
 *       [--area LOCAL_AREA] [--today YYYY-MM-DD] RECORD.json
 *   visorctl policy test FILE CASES.json
 *   visorctl policy default
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/identity.h"
#include "policy/mappa_default.h"
#include "policy/policy.h"
#include "policy/policy_cases.h"
#include "policy/record_schema.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"
#include "visorctl/commands.h"

#define RECORD_FILE_MAX (256 * 1024)
#define CASES_FILE_MAX (16 * 1024 * 1024)
#define CLEARANCES_MAX 32

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: visorctl policy check FILE\n"
	    "       visorctl policy explain FILE --as URI [--clearance C]... --purpose P\n"
	    "           [--op read|transfer|ingress|write|erase|initiate-transfer]\n"
	    "           [--area LOCAL_AREA] [--today YYYY-MM-DD] RECORD.json\n"
	    "       visorctl policy test FILE CASES.json\n"
	    "       visorctl policy default\n"
	    "\n"
	    "check    validate a policy file; prints its rule count and SHA-256\n"
	    "explain  stdout: exactly the record JSON that would be sent;\n"
	    "         stderr: the decision, field by field and rule by rule.\n"
	    "         --area defaults to the record's managing_area, --today to\n"
	    "         the current UTC date; exit 0 permitted, 1 denied, 2 bad input\n"
	    "test     run expected-outcome cases (docs/POLICY.md); exit 1 on any\n"
	    "         mismatch\n"
	    "default  print the default MAPPA policy (SPEC section 7)\n");
}

static policy_t *
load_policy_file(const char *path)
{
	char err[512];
	policy_t *p;
	char *data;
	size_t len;

	if (file_read_all(path, POLICY_FILE_MAX, &data, &len) < 0) {
		fprintf(stderr, "visorctl policy: cannot read %s\n", path);
		return NULL;
	}
	p = policy_load(data, len, err, sizeof(err));
	free(data);
	if (p == NULL)
		fprintf(stderr, "%s: %s\n", path, err);
	return p;
}

/* A rule that loads but can never apply: said, not refused (the file is
 * valid; its author may not have meant it). */
static void
lint_warn(void *arg, const char *id, const char *why)
{
	fprintf(stderr, "%s: warning: rule %s: %s\n", (const char *)arg, id,
	    why);
}

static int
policy_check_cmd(int argc, char **argv)
{
	policy_t *p;

	if (argc != 3) {
		usage(stderr);
		return 2;
	}
	if ((p = load_policy_file(argv[2])) == NULL)
		return 1;
	printf("%s: ok: %zu rules, sha256 %s\n", argv[2], policy_rule_count(p),
	    policy_hash_hex(p));
	(void)policy_lint(p, lint_warn, argv[2]);
	policy_free(p);
	return 0;
}

static void
print_list(const char *label, const char *const *l, size_t n)
{
	size_t i;

	fprintf(stderr, "%s:", label);
	for (i = 0; i < n; i++)
		fprintf(stderr, " %s", l[i]);
	fprintf(stderr, "%s\n", n ? "" : " (none)");
}

static int
policy_explain_cmd(int argc, char **argv)
{
	const char *clear[CLEARANCES_MAX];
	const char *as = NULL, *purpose = NULL, *opname = "read", *area = NULL;
	const char *today = NULL, *pfile = NULL, *rfile = NULL;
	char todaybuf[16], err[512];
	policy_decision_t *d = NULL;
	record_paths_t *paths = NULL;
	policy_request_t req;
	policy_t *p = NULL;
	cJSON *rec = NULL;
	identity_t id;
	char *data = NULL, *out;
	const char *const *list;
	size_t len, n, nclear = 0, i;
	int op, rc = 2, r = -1;
	int argi;

	for (argi = 2; argi < argc; argi++) {
		const char *a = argv[argi];

		if (a[0] == '-' && a[1] == '-' && argi + 1 >= argc) {
			fprintf(stderr, "visorctl policy explain: %s needs a value\n", a);
			return 2;
		}
		if (strcmp(a, "--as") == 0)
			as = argv[++argi];
		else if (strcmp(a, "--purpose") == 0)
			purpose = argv[++argi];
		else if (strcmp(a, "--op") == 0)
			opname = argv[++argi];
		else if (strcmp(a, "--area") == 0)
			area = argv[++argi];
		else if (strcmp(a, "--today") == 0)
			today = argv[++argi];
		else if (strcmp(a, "--clearance") == 0) {
			if (nclear == CLEARANCES_MAX) {
				fprintf(stderr, "visorctl policy explain: too many --clearance\n");
				return 2;
			}
			clear[nclear++] = argv[++argi];
		} else if (a[0] == '-') {
			fprintf(stderr, "visorctl policy explain: unknown option %s\n", a);
			return 2;
		} else if (pfile == NULL)
			pfile = a;
		else if (rfile == NULL)
			rfile = a;
		else {
			usage(stderr);
			return 2;
		}
	}
	if (pfile == NULL || rfile == NULL || as == NULL || purpose == NULL) {
		usage(stderr);
		return 2;
	}
	if (identity_parse(as, strlen(as), &id, err, sizeof(err)) < 0) {
		fprintf(stderr, "visorctl policy explain: --as: %s\n", err);
		return 2;
	}
	if (!policy_purpose_valid(purpose)) {
		fprintf(stderr, "visorctl policy explain: --purpose: not one of "
		    "risk-management, mappa-meeting, offender-move, notification, "
		    "accommodation, health-care, monitoring, review\n");
		return 2;
	}
	if ((op = policy_op_from_name(opname)) < 0) {
		fprintf(stderr, "visorctl policy explain: --op: unknown operation %s\n",
		    opname);
		return 2;
	}
	if (today == NULL) {
		time_t now = time(NULL);
		struct tm tm;

		if (gmtime_r(&now, &tm) == NULL ||
		    strftime(todaybuf, sizeof(todaybuf), "%Y-%m-%d", &tm) == 0) {
			fprintf(stderr, "visorctl policy explain: cannot read the clock\n");
			return 2;
		}
		today = todaybuf;
	}
	if (!record_date_valid(today)) {
		fprintf(stderr, "visorctl policy explain: --today: not a date (YYYY-MM-DD)\n");
		return 2;
	}
	if ((p = load_policy_file(pfile)) == NULL)
		goto out;
	if (file_read_all(rfile, RECORD_FILE_MAX, &data, &len) < 0) {
		fprintf(stderr, "visorctl policy explain: cannot read %s (at most "
		    "%d bytes)\n", rfile, RECORD_FILE_MAX);
		goto out;
	}
	if ((rec = json_parse_strict(data, len, JSON_DEFAULT_MAX_DEPTH, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: not valid JSON: %s\n", rfile, err);
		goto out;
	}
	if (record_validate(rec, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", rfile, err);
		goto out;
	}
	if (area == NULL)
		area = json_get_str(rec, "managing_area");
	memset(&req, 0, sizeof(req));
	req.op = (policy_op_t)op;
	req.caller = &id;
	req.clearances = clear;
	req.n_clearances = nclear;
	req.purpose = purpose;
	req.local_area = area;
	req.today = today;
	switch (req.op) {
	case POLICY_OP_READ:
	case POLICY_OP_TRANSFER:
	case POLICY_OP_INGRESS:
		r = policy_filter(p, &req, rec, &d);
		break;
	case POLICY_OP_WRITE:
		/* Writing the whole record, as a PUT that creates it. */
		if ((paths = record_changed_paths(NULL, rec)) == NULL)
			break;
		r = policy_check_write(p, &req, rec, paths->items, paths->count, &d);
		break;
	case POLICY_OP_ERASE:
		r = policy_check_erase(p, &req, rec, &d);
		break;
	case POLICY_OP_INITIATE_TRANSFER:
		r = policy_check_initiate_transfer(p, &req, rec, &d);
		break;
	}
	if (r < 0) {
		fprintf(stderr, "visorctl policy explain: evaluation failed\n");
		goto out;
	}
	list = policy_decision_explanation(d, &n);
	for (i = 0; i < n; i++)
		fprintf(stderr, "%s\n", list[i]);
	list = policy_decision_disclosed(d, &n);
	print_list(req.op == POLICY_OP_WRITE ? "writable" : "disclosed", list, n);
	list = policy_decision_transformed(d, &n);
	if (n > 0)
		print_list("transformed", list, n);
	list = policy_decision_withheld(d, &n);
	print_list(req.op == POLICY_OP_WRITE ? "not writable" : "withheld", list, n);
	list = policy_decision_rules(d, &n);
	print_list("rules", list, n);
	fprintf(stderr, "policy: sha256 %s\n", policy_hash_hex(p));
	fprintf(stderr, "decision: %s: %s\n", policy_decision_allowed(d) ?
	    "permitted" : "denied", policy_decision_reason(d));
	if (policy_decision_record(d) != NULL) {
		if ((out = json_print(policy_decision_record(d))) == NULL) {
			fprintf(stderr, "visorctl policy explain: out of memory\n");
			goto out;
		}
		printf("%s\n", out);
		free(out);
	}
	rc = policy_decision_allowed(d) ? 0 : 1;
out:
	policy_decision_free(d);
	record_paths_free(paths);
	cJSON_Delete(rec);
	free(data);
	policy_free(p);
	return rc;
}

static int
policy_test_cmd(int argc, char **argv)
{
	char err[512];
	buf_t report;
	policy_t *p;
	char *data = NULL;
	size_t len, passed, failed;
	int rc = 2;

	if (argc != 4) {
		usage(stderr);
		return 2;
	}
	if ((p = load_policy_file(argv[2])) == NULL)
		return 2;
	buf_init(&report, 0);
	if (file_read_all(argv[3], CASES_FILE_MAX, &data, &len) < 0) {
		fprintf(stderr, "visorctl policy test: cannot read %s\n", argv[3]);
		goto out;
	}
	if (policy_cases_run(p, data, len, &report, &passed, &failed, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", argv[3], err);
		goto out;
	}
	fputs(report.data ? report.data : "", stdout);
	rc = failed == 0 ? 0 : 1;
out:
	buf_free(&report);
	free(data);
	policy_free(p);
	return rc;
}

int
cmd_policy(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "check") == 0)
		return policy_check_cmd(argc, argv);
	if (strcmp(argv[1], "explain") == 0)
		return policy_explain_cmd(argc, argv);
	if (strcmp(argv[1], "test") == 0)
		return policy_test_cmd(argc, argv);
	if (strcmp(argv[1], "default") == 0) {
		if (argc != 2) {
			usage(stderr);
			return 2;
		}
		fputs(policy_mappa_default_json(), stdout);
		return 0;
	}
	fprintf(stderr, "visorctl policy: unknown subcommand %s\n", argv[1]);
	usage(stderr);
	return 2;
}
