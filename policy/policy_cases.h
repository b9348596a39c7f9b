/*
 * policy_cases: expected-outcome cases for a policy (`visorctl policy test`,
 * and the unit test of the default policy through the same code).  The
 * CASES.json format is described in docs/POLICY.md.
 *
 * Pure: the caller reads the files and prints the report.
 */
#ifndef POLICY_POLICY_CASES_H
#define POLICY_POLICY_CASES_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "policy/policy.h"
#include "util/buf.h"

#define POLICY_CASES_MAX 10000

/* Run every case of the CASES.json text (len bytes) against p.  Appends one
 * line per failed case (naming the case and what differed) and a final
 * summary line `N passed, M failed` to report.  Returns 0 with *passed and
 * *failed set, or -1 with a message in err when the cases file itself is
 * malformed (a case that cannot be run is a malformed file, not a failure)
 * or memory is short. */
int policy_cases_run(const policy_t *p, const char *cases_json, size_t len,
    buf_t *report, size_t *passed, size_t *failed, char *err, size_t errlen);

/* Number of values at path in v: "a.b", "a[].b" (every element), "a[2].b"
 * (one element).  0 when absent; -1 when the path is malformed. */
int policy_cases_count_path(const cJSON *v, const char *path);

#endif
