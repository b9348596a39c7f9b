/*
 * gen: synthetic nominal records (SPEC section 6) for tests, the demo and
 * benchmarks.  Every value is invented: names come from built-in lists and
 * are combined at random; no real person's data is used.
 *
 * Output is deterministic for (area, seed, count, plan): the generator has
 * its own PRNG (splitmix64) and a fixed reference date, never the clock or
 * rand().  Ids are <PREFIX>-<6 digits> (NFK-000001 for norfolk).  Records
 * carry every field group; across a run of 12 or more records every
 * category 1-4, level 1-3 and order type (SHPO, SHPO-FTR, NO, SRO) appears,
 * and every record holds intelligence items with both handling values.
 * Category 3 is never managed at level 1 (as in MAPPA statistics).
 */
#ifndef ADAPTERS_GEN_H
#define ADAPTERS_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define GEN_COUNT_MAX 10000000u

/* How many records of each MAPPA category (1-4) and level (1-3):
 * n[category][level]; row and column 0 unused. */
typedef struct {
	unsigned n[5][4];
} gen_plan_t;

typedef struct gen gen_t;

/* A plan built into the code by name; "norfolk-2021-22" is the
 * eligible_on_snapshot table of the Norfolk MAPPA annual report 2021-22
 * (shared/data/mappa-norfolk-2021-22.json).  0, or -1 if unknown. */
int gen_plan_builtin(const char *name, gen_plan_t *plan);

/* A plan from such a JSON file: its "eligible_on_snapshot" object,
 * level_L.category_C counts (null: 0), checked against its totals.  0, or
 * -1 with a reason in err. */
int gen_plan_from_json(const char *json, size_t len, gen_plan_t *plan,
    char *err, size_t errlen);

/* Records in a plan. */
size_t gen_plan_total(const gen_plan_t *plan);

/* A generator for count records of area (an identity label, e.g.
 * "norfolk").  With a plan, count must be 0 or the plan's total and the
 * categories and levels follow the plan exactly (in shuffled order).
 * NULL with err on bad arguments. */
gen_t *gen_new(const char *area, uint64_t seed, size_t count,
    const gen_plan_t *plan, char *err, size_t errlen);

/* Free; NULL does nothing. */
void gen_free(gen_t *g);

/* Append the next record to out as one line of JSON ending in "\n".
 * Returns 1, 0 when all count records are done, -1 if out of memory. */
int gen_next(gen_t *g, buf_t *out);

/* The id prefix used for an area ("NFK" for norfolk); out holds 8 bytes. */
void gen_id_prefix(const char *area, char out[8]);

#endif
