/*
 * visorctl gen: synthetic records as JSON lines on stdout (adapters/gen.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/gen.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "visorctl/commands.h"

static void
gen_usage(FILE *f)
{
	fprintf(f,
	    "usage: visorctl gen [--count N] [--area AREA] [--seed S]\n"
	    "                    [--like norfolk-2021-22 | --like-file FILE]\n"
	    "\n"
	    "Writes N synthetic nominal records (SPEC section 6) as JSON lines on\n"
	    "stdout, the same bytes for the same arguments.  All values are\n"
	    "invented.\n"
	    "  --count N       records to write (default 100; with --like, the\n"
	    "                  table's total, and N must equal it if given)\n"
	    "  --area AREA     managing area and id prefix (default norfolk)\n"
	    "  --seed S        PRNG seed, 0..2^64-1 (default 1)\n"
	    "  --like NAME     category x level counts of a built-in table:\n"
	    "                  norfolk-2021-22 (MAPPA annual report snapshot)\n"
	    "  --like-file F   the same from a JSON file with eligible_on_snapshot\n");
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int
cmd_gen(int argc, char **argv)
{
	const char *area = "norfolk", *like = NULL, *like_file = NULL;
	uint64_t count = 0, seed = 1;
	gen_plan_t plan;
	gen_t *g;
	buf_t out;
	char err[256], *data;
	size_t len;
	int i, rc, have_plan = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			gen_usage(stdout);
			return 0;
		}
		if (v == NULL)
			goto usage;
		if (strcmp(a, "--count") == 0) {
			if (parse_u64(v, &count) < 0 || count == 0 ||
			    count > GEN_COUNT_MAX) {
				fprintf(stderr, "visorctl gen: --count must be "
				    "1..%u\n", GEN_COUNT_MAX);
				return 2;
			}
		} else if (strcmp(a, "--seed") == 0) {
			if (parse_u64(v, &seed) < 0) {
				fprintf(stderr, "visorctl gen: --seed must be a "
				    "non-negative integer\n");
				return 2;
			}
		} else if (strcmp(a, "--area") == 0)
			area = v;
		else if (strcmp(a, "--like") == 0)
			like = v;
		else if (strcmp(a, "--like-file") == 0)
			like_file = v;
		else
			goto usage;
		i++;
	}
	if (like != NULL && like_file != NULL) {
		fprintf(stderr, "visorctl gen: --like and --like-file exclude "
		    "each other\n");
		return 2;
	}
	if (like != NULL) {
		if (gen_plan_builtin(like, &plan) < 0) {
			fprintf(stderr, "visorctl gen: unknown table '%s' (known: "
			    "norfolk-2021-22)\n", like);
			return 2;
		}
		have_plan = 1;
	} else if (like_file != NULL) {
		if (file_read_all(like_file, 1u << 20, &data, &len) < 0) {
			fprintf(stderr, "visorctl gen: %s: %s\n", like_file,
			    strerror(errno));
			return 2;
		}
		rc = gen_plan_from_json(data, len, &plan, err, sizeof(err));
		free(data);
		if (rc < 0) {
			fprintf(stderr, "visorctl gen: %s: %s\n", like_file, err);
			return 2;
		}
		have_plan = 1;
	} else if (count == 0)
		count = 100;
	g = gen_new(area, seed, (size_t)count, have_plan ? &plan : NULL, err,
	    sizeof(err));
	if (g == NULL) {
		fprintf(stderr, "visorctl gen: %s\n", err);
		return 2;
	}
	buf_init(&out, 0);
	while ((rc = gen_next(g, &out)) == 1) {
		if (out.len >= (64u << 10)) {
			if (fwrite(out.data, 1, out.len, stdout) != out.len)
				break;
			buf_reset(&out);
		}
	}
	if (rc == 0 && out.len > 0 &&
	    fwrite(out.data, 1, out.len, stdout) != out.len)
		rc = -1;
	if (rc == 1)
		rc = -1;	/* the write above failed */
	buf_free(&out);
	gen_free(g);
	if (rc < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "visorctl gen: %s\n", rc < 0 ?
		    "out of memory or write error" : strerror(errno));
		return 1;
	}
	return 0;
usage:
	gen_usage(stderr);
	return 2;
}
