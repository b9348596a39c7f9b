/*
 * Fuzz target for the strict JSON reader every outside input goes through
 * (util/json.c): duplicate keys, depth, UTF-8, trailing bytes, numbers.
 * An accepted value must print and parse back to an equal tree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	cJSON *j, *k;
	char *s;

	j = json_parse_strict((const char *)data, size, 32, err, sizeof(err));
	if (j == NULL)
		return 0;
	if ((s = json_print(j)) != NULL) {
		k = json_parse_strict(s, strlen(s), 32, err, sizeof(err));
		if (k == NULL || !cJSON_Compare(j, k, 1))
			abort();
		cJSON_Delete(k);
		free(s);
	}
	cJSON_Delete(j);
	return 0;
}
